
# ---------------------------------------------------------------------------
# phanes runtime: files and secrets
#
# Files are compared byte for byte and written only when content, mode or
# owner differ: temp file in the same folder, validated, fsynced, renamed. A
# reader (sshd, nginx, a reboot) sees the old file or the new one, never half.
# ---------------------------------------------------------------------------

# phanes_file_matches PATH MODE OWNER CONTENT: 0 when PATH is a regular file with exactly CONTENT, MODE (0644) and OWNER (user:group).
phanes_file_matches() {
  local path=$1 mode=$2 owner=$3 content=$4 st cur LC_ALL=C
  [ -f "$path" ] && [ ! -L "$path" ] || return 1
  st=$(stat -c '%a %U:%G %u:%g %s' -- "$path" 2>/dev/null) || return 1
  read -r -a st <<<"$st"
  # Mode as numbers, so 0644, 644 and 00644 compare equal.
  [ $((8#${st[0]})) -eq $((8#$mode)) ] || return 1
  [ "$owner" = "${st[1]}" ] || [ "$owner" = "${st[2]}" ] || return 1
  # The size check also catches a NUL byte, where read would stop early.
  [ "${st[3]}" -eq "${#content}" ] || return 1
  cur=''
  IFS= read -r -d '' cur <"$path" || true
  [ "$cur" = "$content" ]
}

# phanes_file_write PATH MODE OWNER CONTENT [VALIDATOR ARGS...]: writes PATH atomically when it differs; the validator gets the temp path last.
phanes_file_write() {
  local path=$1 mode=$2 owner=$3 content=$4 dir tmp out
  shift 4
  if phanes_file_matches "$path" "$mode" "$owner" "$content"; then
    return 0
  fi
  dir=${path%/*}
  [ -n "$dir" ] || dir=/
  if [ ! -d "$dir" ]; then
    # umask 022 (set by main): new folders are 0755.
    mkdir -p -- "$dir" || { phanes_fail "cannot create folder $dir"; return 1; }
  fi
  # A temp file left here by a killed run goes (runs never overlap: the run lock).
  # mktemp makes the file 0600: content is never readable by others mid-write.
  rm -f -- "$dir"/.phanes.??????
  tmp=$(mktemp "$dir/.phanes.XXXXXX") || { phanes_fail "cannot create a temp file in $dir"; return 1; }
  if ! printf '%s' "$content" >"$tmp" || ! chmod "$mode" -- "$tmp" ||
    ! chown "$owner" -- "$tmp"; then
    rm -f -- "$tmp"
    phanes_fail "cannot write $path (mode $mode, owner $owner)"
    return 1
  fi
  if [ $# -gt 0 ] && ! out=$("$@" "$tmp" 2>&1); then
    rm -f -- "$tmp"
    printf '%s\n' "$out" >&2
    phanes_fail "$path not changed: '$*' rejected it: ${out//$'\n'/ }"
    return 1
  fi
  sync -- "$tmp" 2>/dev/null || true
  # -T: if PATH is a folder, fail instead of moving the file into it.
  if ! mv -fT -- "$tmp" "$path"; then
    rm -f -- "$tmp"
    phanes_fail "cannot move the new $path into place"
    return 1
  fi
  phanes_log "wrote $path"
}

# phanes_file_absent PATH: 0 when PATH does not exist (not even as a dangling symlink).
phanes_file_absent() {
  [ ! -e "$1" ] && [ ! -L "$1" ]
}

# phanes_file_remove PATH: removes the file or symlink PATH if present.
phanes_file_remove() {
  if ! phanes_file_absent "$1"; then
    rm -f -- "$1" || { phanes_fail "cannot remove $1"; return 1; }
    phanes_log "removed $1"
  fi
}

# phanes_secret NAME [LENGTH]: prints the path of secret NAME, generating it (alphanumeric, default 32) the first time.
# Dry-run only prints the path; the value is never printed or passed as an argument.
phanes_secret() {
  local name=$1 len=${2:-32} file value='' chunk tmp
  [[ $name =~ ^[A-Za-z0-9_][A-Za-z0-9._-]*$ ]] || { phanes_fail "invalid secret name '$name'"; return 1; }
  file="$PHANES_SECRETS_DIR/$name"
  if [ -s "$file" ] || [ "${PHANES_DRY_RUN:-0}" = 1 ]; then
    printf '%s\n' "$file"
    return 0
  fi
  if ! mkdir -p -- "$PHANES_SECRETS_DIR" || ! chmod 0700 -- "$PHANES_SECRETS_DIR"; then
    phanes_fail "cannot create $PHANES_SECRETS_DIR"
    return 1
  fi
  while [ ${#value} -lt "$len" ]; do
    chunk=$(head -c 512 /dev/urandom | LC_ALL=C tr -dc 'A-Za-z0-9') ||
      { phanes_fail "cannot read /dev/urandom"; return 1; }
    value+=$chunk
  done
  tmp=$(mktemp "$PHANES_SECRETS_DIR/.phanes.XXXXXX") || { phanes_fail "cannot write secret $name"; return 1; }
  # printf is a builtin: the value never shows in a process listing.
  if ! printf '%s' "${value:0:len}" >"$tmp" || ! chmod 0600 -- "$tmp" ||
    ! chown root:root -- "$tmp" || ! mv -fT -- "$tmp" "$file"; then
    rm -f -- "$tmp"
    phanes_fail "cannot write secret $name"
    return 1
  fi
  phanes_log "generated secret $file"
  printf '%s\n' "$file"
}
