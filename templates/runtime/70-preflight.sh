
# ---------------------------------------------------------------------------
# phanes runtime: preflight (root, supported OS, run lock, interrupted dpkg)
#
# Every refusal exits 3 before anything on the system changes.
# ---------------------------------------------------------------------------

# Internal: prints an error and exits with status $1.
_phanes_die() {
  local rc=$1
  shift
  printf 'phanes: %s\n' "$*" >&2
  exit "$rc"
}

# Internal: refuses to run as anyone but root.
_phanes_require_root() {
  [ "$EUID" -eq 0 ] || _phanes_die 3 "phanes-setup must run as root: sudo bash $0"
}

# Internal: reads the os-release keys phanes needs, without sourcing the file
# (a shell `source` would run whatever the file contains). Sets PHANES_OS_*.
_phanes_read_os_release() {
  local key val pretty='' ubuntu_codename=''
  [ -r "$PHANES_OS_RELEASE" ] || _phanes_die 3 "cannot read $PHANES_OS_RELEASE: unsupported system"
  while IFS='=' read -r key val || [ -n "$key" ]; do
    case $val in
      \"*\" | \'*\') val=${val:1:${#val}-2} ;;
    esac
    # os-release(5) allows shell escapes inside double quotes.
    val=${val//\\\"/\"}
    val=${val//\\\$/\$}
    val=${val//\\\`/\`}
    val=${val//\\\\/\\}
    case $key in
      ID) PHANES_OS_ID=$val ;;
      VERSION_ID) PHANES_OS_VERSION_ID=$val ;;
      VERSION_CODENAME) PHANES_OS_CODENAME=$val ;;
      UBUNTU_CODENAME) ubuntu_codename=$val ;;
      PRETTY_NAME) pretty=$val ;;
    esac
  done <"$PHANES_OS_RELEASE"
  [ -n "$PHANES_OS_CODENAME" ] || PHANES_OS_CODENAME=$ubuntu_codename
  _PHANES_OS_PRETTY=${pretty:-$PHANES_OS_ID $PHANES_OS_VERSION_ID}
}

# Internal: the dpkg architecture (uname as a fallback where dpkg is missing).
_phanes_read_arch() {
  if command -v dpkg >/dev/null 2>&1; then
    PHANES_ARCH=$(dpkg --print-architecture)
  else
    case $(uname -m) in
      x86_64) PHANES_ARCH=amd64 ;;
      aarch64) PHANES_ARCH=arm64 ;;
      *) PHANES_ARCH=$(uname -m) ;;
    esac
  fi
}

# Internal: refuses systems phanes was not written and tested for.
_phanes_check_os() {
  _phanes_read_os_release
  case "$PHANES_OS_ID $PHANES_OS_VERSION_ID" in
    'debian 12' | 'debian 13' | 'ubuntu 22.04' | 'ubuntu 24.04') ;;
    *)
      _phanes_die 3 "unsupported system: ${_PHANES_OS_PRETTY:-unknown}" \
        "(phanes supports Debian 12, 13, Ubuntu 22.04, 24.04)"
      ;;
  esac
  _phanes_read_arch
  case $PHANES_ARCH in
    amd64 | arm64) ;;
    *) _phanes_die 3 "unsupported architecture: $PHANES_ARCH (phanes supports amd64, arm64)" ;;
  esac
}

# Internal: takes the run lock on fd 9 (released when the process exits, even
# on kill -9). --wait / PHANES_WAIT_LOCK=SECONDS waits instead of refusing.
_phanes_take_lock() {
  local pid='' started='' wait=${_PHANES_OPT_WAIT:-0}
  mkdir -p -- "${PHANES_LOCK_FILE%/*}" 2>/dev/null || true
  # <> opens without truncating, so a refused run can still read the holder.
  exec 9<>"$PHANES_LOCK_FILE" || _phanes_die 3 "cannot open the lock file $PHANES_LOCK_FILE"
  if ! flock -n 9; then
    read -r pid started <"$PHANES_LOCK_FILE" || true
    if [ "$wait" -gt 0 ] 2>/dev/null; then
      printf 'phanes: waiting up to %ss for another phanes run (pid %s)\n' \
        "$wait" "${pid:-unknown}" >&2
      flock -w "$wait" 9 || _phanes_die 3 "another phanes run is still in progress" \
        "after ${wait}s (pid ${pid:-unknown}, started ${started:-at an unknown time})"
    else
      _phanes_die 3 "another phanes run is in progress (pid ${pid:-unknown}," \
        "started ${started:-at an unknown time}); use --wait to wait for it"
    fi
  fi
  printf '%s %s\n' "$$" "$_PHANES_START_ISO" >"$PHANES_LOCK_FILE"
}

# Internal: 0 when dpkg was interrupted: its journal holds updates, or a package is
# unpacked, half-configured or half-installed (a killed apt, a power cut, `dpkg --unpack`).
_phanes_dpkg_interrupted() {
  compgen -G "$PHANES_DPKG_DIR/updates/*" >/dev/null ||
    grep -qE '^Status: install (ok|reinstreq) (unpacked|half|trig)' "$PHANES_DPKG_DIR/status" 2>/dev/null
}

# Internal: finishes a dpkg run that was interrupted, which would make every apt step fail;
# retries while another dpkg holds its lock. Half-installed packages are left to
# phanes_apt_install, which reinstalls them.
_phanes_finish_dpkg() {
  local out tries=0
  _phanes_dpkg_interrupted || return 0
  phanes_log "dpkg was interrupted: running dpkg --configure -a"
  while ! out=$(DEBIAN_FRONTEND=noninteractive dpkg --force-confdef --force-confold \
    --configure -a 2>&1); do
    printf '%s\n' "$out" >>"$_PHANES_LOG_FILE"
    tries=$((tries + 1))
    if [[ $out != *lock* ]] || [ "$tries" -ge 60 ]; then
      phanes_warn "dpkg --configure -a failed; apt steps may fail (see the log)"
      return 0
    fi
    sleep 5
  done
  printf '%s\n' "$out" >>"$_PHANES_LOG_FILE"
}
