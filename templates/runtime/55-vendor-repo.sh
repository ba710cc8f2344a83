
# ---------------------------------------------------------------------------
# phanes runtime: vendor apt repositories
#
# A vendor repository is its signing key in /etc/apt/keyrings/NAME.asc (armored:
# Debian 13's sqv rejects GnuPG keybox files) and a deb822 source
# /etc/apt/sources.list.d/NAME.sources whose Signed-By names that key, so the key
# is trusted for that repository only. The check reads the two files and never
# the network; the source records the key's URL, so a new key_url downloads again.
#
# optional: only in bundles whose modules call these functions.
# ---------------------------------------------------------------------------

PHANES_APT_KEYRINGS_DIR="${PHANES_APT_KEYRINGS_DIR:-/etc/apt/keyrings}"
PHANES_APT_SOURCES_DIR="${PHANES_APT_SOURCES_DIR:-/etc/apt/sources.list.d}"

# Internal: primary-key fingerprints from `gpg --with-colons` output on stdin, one a line; fails when there is none, or a secret key.
_phanes_vendor_primary_fprs() {
  awk -F: '
    $1 == "sec" || $1 == "ssb" { secret = 1 }
    $1 == "pub" { want = 1; next }
    $1 == "fpr" && want { print toupper($10); found = 1 }
    { want = 0 }
    END { exit (secret || !found) }'
}

# phanes_vendor_key_fingerprints FILE: prints the primary fingerprints of the OpenPGP public key(s) in FILE; fails when FILE holds none.
phanes_vendor_key_fingerprints() {
  local home out rc=0
  home=$(mktemp -d) || return 1
  out=$(LC_ALL=C gpg --homedir "$home" --batch --no-autostart --with-colons --show-keys "$1" 2>/dev/null) || rc=$?
  rm -rf -- "$home"
  [[ $rc == 0 ]] || return 1
  _phanes_vendor_primary_fprs <<<"$out"
}

# phanes_vendor_key_ok FILE FINGERPRINT: 0 when FILE is an armored OpenPGP public key and, unless FINGERPRINT is empty, has that primary fingerprint.
phanes_vendor_key_ok() {
  local fprs
  [[ -f $1 ]] && grep -q '^-----BEGIN PGP PUBLIC KEY BLOCK-----' "$1" || return 1
  fprs=$(phanes_vendor_key_fingerprints "$1") || return 1
  [[ -z $2 ]] || grep -qxF -- "$2" <<<"$fprs"
}

# phanes_vendor_sources NAME URL SUITES COMPONENTS ARCH KEY_URL FINGERPRINT: prints the deb822 source (no Components line for a flat repository).
phanes_vendor_sources() {
  printf '# Managed by phanes: edits here are replaced on the next run.\n'
  printf '# Signing key: %s (fingerprint %s)\n' "$6" "${7:-not pinned}"
  printf 'Types: deb\nURIs: %s\nSuites: %s\n' "$2" "$3"
  [[ -z $4 ]] || printf 'Components: %s\n' "$4"
  printf 'Architectures: %s\nSigned-By: %s/%s.asc\n' "$5" "$PHANES_APT_KEYRINGS_DIR" "$1"
}

# phanes_vendor_repo_check NAME URL SUITES COMPONENTS KEY_URL FINGERPRINT [ARCH]: 0 when the key and the source are in place (and no legacy NAME.list).
phanes_vendor_repo_check() {
  local name=$1 sources
  sources=$(phanes_vendor_sources "$name" "$2" "$3" "$4" "${7:-$PHANES_ARCH}" "$5" "$6"; echo x)
  phanes_file_absent "$PHANES_APT_SOURCES_DIR/$name.list" &&
    phanes_file_matches "$PHANES_APT_SOURCES_DIR/$name.sources" 0644 root:root "${sources%x}" &&
    phanes_vendor_key_ok "$PHANES_APT_KEYRINGS_DIR/$name.asc" "$6"
}

# phanes_vendor_repo_apply NAME URL SUITES COMPONENTS KEY_URL FINGERPRINT [ARCH]: downloads and verifies the key, writes key and source, removes NAME.list.
phanes_vendor_repo_apply() {
  local name=$1 url=$2 suites=$3 components=$4 key_url=$5 fpr=$6 arch=${7:-$PHANES_ARCH}
  local tmp home fprs key sources
  if ! { mkdir -p -- "$PHANES_APT_KEYRINGS_DIR" && chmod 0755 -- "$PHANES_APT_KEYRINGS_DIR"; }; then
    phanes_fail "cannot create $PHANES_APT_KEYRINGS_DIR"
    return 1
  fi
  tmp=$(mktemp "$PHANES_APT_KEYRINGS_DIR/.phanes.XXXXXX") || { phanes_fail "cannot create a temp file in $PHANES_APT_KEYRINGS_DIR"; return 1; }
  if ! phanes_retry 3 curl -fsSL --connect-timeout 20 --max-time 120 -o "$tmp" "$key_url"; then
    rm -f -- "$tmp"
    phanes_fail "cannot download the signing key of the $name repository from $key_url"
    return 1
  fi
  if ! grep -q '^-----BEGIN PGP PUBLIC KEY BLOCK-----' "$tmp"; then
    # A binary key: armor it (import into a throwaway keyring, export armored).
    home=$(mktemp -d)
    if gpg --homedir "$home" --batch --no-autostart --quiet --import "$tmp" 2>/dev/null; then
      gpg --homedir "$home" --batch --no-autostart --armor --export >"$tmp" 2>/dev/null || : >"$tmp"
    else
      : >"$tmp"
    fi
    rm -rf -- "$home"
  fi
  if ! fprs=$(phanes_vendor_key_fingerprints "$tmp"); then
    rm -f -- "$tmp"
    phanes_fail "$key_url is not an OpenPGP public key: the $name repository was not set up"
    return 1
  fi
  if [[ -n $fpr ]] && ! grep -qxF -- "$fpr" <<<"$fprs"; then
    rm -f -- "$tmp"
    phanes_fail "the key from $key_url has fingerprint ${fprs//$'\n'/, }, not $fpr: the $name repository was not set up (a mirror with its own key needs its fingerprint in $name.repository.key_fingerprint)"
    return 1
  fi
  key=$(cat -- "$tmp"; echo x)
  rm -f -- "$tmp"
  phanes_file_write "$PHANES_APT_KEYRINGS_DIR/$name.asc" 0644 root:root "${key%x}" || return 1
  sources=$(phanes_vendor_sources "$name" "$url" "$suites" "$components" "$arch" "$key_url" "$fpr"; echo x)
  phanes_file_write "$PHANES_APT_SOURCES_DIR/$name.sources" 0644 root:root "${sources%x}" || return 1
  phanes_file_remove "$PHANES_APT_SOURCES_DIR/$name.list" || return 1
  phanes_apt_sources_changed
  phanes_log "vendor repository $name: $url $suites ${components:-(flat)}, key $key_url (${fprs//$'\n'/, })"
}
