
# ---------------------------------------------------------------------------
# phanes runtime: verified downloads
#
# Everything that is not an apt package is pinned by version and sha256. A
# download goes to a temp file beside its target (curl, retried with backoff),
# is checked against the pinned sha256, and only then unpacked into a temp dir
# beside the target and renamed into place: a failed download or a wrong
# checksum leaves the previous install as it was, and no temp files behind.
#
# optional: only in bundles whose modules call these functions.
# ---------------------------------------------------------------------------

# Internal: downloads $1 into file $2 (which must not exist yet), retrying with backoff.
_phanes_fetch() {
  phanes_retry 4 curl -fsSL --connect-timeout 20 --max-time 900 -o "$2" -- "$1"
}

# phanes_download_verified URL SHA256 DEST: downloads URL to DEST (mode 0644) when its sha256 is SHA256; fails naming URL, expected and actual checksum, leaving DEST as it was.
phanes_download_verified() {
  local url=$1 want=${2,,} dest=$3 tmp got
  if [[ -z $want ]]; then
    phanes_fail "no sha256 is configured for $url on $PHANES_ARCH: nothing is downloaded unverified"
    return 1
  fi
  if ! mkdir -p -- "${dest%/*}" || ! tmp=$(mktemp "${dest%/*}/.phanes-download.XXXXXX"); then
    phanes_fail "cannot create a temp file in ${dest%/*}"
    return 1
  fi
  if ! _phanes_fetch "$url" "$tmp"; then
    rm -f -- "$tmp"
    phanes_fail "cannot download $url"
    return 1
  fi
  got=$(sha256sum <"$tmp") || got=''
  got=${got%% *}
  if [[ $got != "$want" ]]; then
    rm -f -- "$tmp"
    phanes_fail "checksum mismatch for $url: expected sha256 $want, got ${got:-nothing}; nothing was installed"
    return 1
  fi
  chmod 0644 -- "$tmp" && mv -f -- "$tmp" "$dest"
}

# Internal: makes a temp dir beside TARGET ($1) holding TARBALL URL ($2, sha256 $3) unpacked in tree/; prints its path.
_phanes_stage_tarball() {
  local target=$1 parent stage
  parent=$(dirname -- "$target")
  if ! mkdir -p -- "$parent" || ! stage=$(mktemp -d "$parent/.${target##*/}.phanes-new.XXXXXX"); then
    phanes_fail "cannot create a temp dir in $parent"
    return 1
  fi
  if ! phanes_download_verified "$2" "$3" "$stage/download.tar.gz"; then
    rm -rf -- "$stage"
    return 1
  fi
  if ! mkdir -- "$stage/tree" ||
    ! tar -xzf "$stage/download.tar.gz" -C "$stage/tree" --no-same-owner --no-same-permissions; then
    rm -rf -- "$stage"
    phanes_fail "cannot unpack $2 (sha256 matched): nothing was installed"
    return 1
  fi
  rm -f -- "$stage/download.tar.gz"
  printf '%s\n' "$stage"
}

# phanes_install_tree URL SHA256 TOP TARGET: replaces directory TARGET with folder TOP of the verified .tar.gz at URL (the old TARGET is kept until the new one is in place).
phanes_install_tree() {
  local url=$1 sum=$2 top=$3 target=$4 stage old=''
  stage=$(_phanes_stage_tarball "$target" "$url" "$sum") || return 1
  if [[ ! -d $stage/tree/$top ]]; then
    rm -rf -- "$stage"
    phanes_fail "$url has no folder $top: nothing was installed"
    return 1
  fi
  chmod 0755 -- "$stage/tree/$top"
  if [[ -e $target || -L $target ]]; then
    old="$stage/old"
    mv -- "$target" "$old" || { rm -rf -- "$stage"; phanes_fail "cannot move $target aside"; return 1; }
  fi
  if ! mv -- "$stage/tree/$top" "$target"; then
    [[ -z $old ]] || mv -- "$old" "$target"
    rm -rf -- "$stage"
    phanes_fail "cannot move the new $top into $target: the old one was put back"
    return 1
  fi
  rm -rf -- "$stage"
  phanes_log "installed $url (sha256 $sum) as $target"
}

# phanes_install_files URL SHA256 TOP DIR FILE...: installs each FILE from folder TOP of the verified .tar.gz at URL into DIR, mode 0755, each by an atomic rename.
phanes_install_files() {
  local url=$1 sum=$2 top=$3 dir=$4 stage file
  shift 4
  stage=$(_phanes_stage_tarball "$dir/${1:-file}" "$url" "$sum") || return 1
  for file in "$@"; do
    if [[ ! -f $stage/tree/$top/$file ]]; then
      rm -rf -- "$stage"
      phanes_fail "$url has no $top/$file: nothing was installed"
      return 1
    fi
    chmod 0755 -- "$stage/tree/$top/$file"
  done
  for file in "$@"; do
    mv -f -- "$stage/tree/$top/$file" "$dir/$file" || { rm -rf -- "$stage"; phanes_fail "cannot install $dir/$file"; return 1; }
  done
  rm -rf -- "$stage"
  phanes_log "installed $* from $url (sha256 $sum) into $dir"
}
