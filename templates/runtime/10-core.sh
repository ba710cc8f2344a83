
# ---------------------------------------------------------------------------
# phanes runtime: core (strict mode, paths, logging, small helpers)
#
# The runtime only defines functions and sets shell options: nothing runs until
# `main "$@"` on the bundle's last line, so a cut-off download does nothing.
# ---------------------------------------------------------------------------

# -E lets the ERR trap set inside step subshells reach into step functions;
# inherit_errexit makes `x=$(a; b)` stop at a failing `a` too (bash >= 4.4).
set -Eeuo pipefail
shopt -s inherit_errexit

# Paths, overridable from the environment (the tests point them at a temp dir).
PHANES_LOG_DIR="${PHANES_LOG_DIR:-/var/log/phanes}"
PHANES_STATE_DIR="${PHANES_STATE_DIR:-/var/lib/phanes}"
PHANES_LOCK_FILE="${PHANES_LOCK_FILE:-/run/lock/phanes.lock}"
PHANES_OS_RELEASE="${PHANES_OS_RELEASE:-/etc/os-release}"
PHANES_SECRETS_DIR="${PHANES_SECRETS_DIR:-/etc/phanes/secrets}"
# Test hooks: where dpkg keeps its state and the "systemd is PID 1" marker.
PHANES_DPKG_DIR="${PHANES_DPKG_DIR:-/var/lib/dpkg}"
PHANES_SYSTEMD_DIR="${PHANES_SYSTEMD_DIR:-/run/systemd/system}"
# Per-run scratch dir (markers shared between step subshells); made by main.
PHANES_RUN_DIR=''
# OS facts, set by preflight.
PHANES_OS_ID=''
PHANES_OS_VERSION_ID=''
PHANES_OS_CODENAME=''
PHANES_ARCH=''

# Run log of this run; empty until main opens it.
_PHANES_LOG_FILE=''
# Set to 1 inside a step's subshell: helpers then report through files.
_PHANES_IN_STEP=0
# Files a running step reports through (set per step by the runner).
_PHANES_MSG_FILE=''
_PHANES_WARN_FILE=''
# Warnings printed by the main shell itself (steps' are counted by the runner).
_PHANES_WARNINGS=0

# Microseconds since the epoch, without a fork ($EPOCHREALTIME, bash >= 5).
_phanes_now_us() {
  printf -v "$1" '%s' "${EPOCHREALTIME//[!0-9]/}"
}

# Formats a microsecond duration as seconds with one decimal ("0.4").
_phanes_fmt_secs() {
  local us=$2
  printf -v "$1" '%d.%d' $((us / 1000000)) $((us / 100000 % 10))
}

# Formats a microsecond duration as JSON seconds with millisecond precision.
_phanes_json_secs() {
  local us=$2
  printf -v "$1" '%d.%03d' $((us / 1000000)) $((us / 1000 % 1000))
}

# UTC timestamp into variable $1 with strftime format $2, without forking date.
_phanes_utc() {
  TZ=UTC0 printf -v "$1" "%($2)T" -1
}

# phanes_log MSG: appends MSG to the run log only (never the terminal).
phanes_log() {
  if [ -n "$_PHANES_LOG_FILE" ]; then
    printf 'phanes: %s\n' "$*" >>"$_PHANES_LOG_FILE"
  fi
  return 0
}

# phanes_warn MSG: shows a warning on the terminal, in the log and in the recap count.
phanes_warn() {
  phanes_log "warning: $*"
  if [ "$_PHANES_IN_STEP" = 1 ] && [ -n "$_PHANES_WARN_FILE" ]; then
    # A step's output goes to the log: the runner prints these under its line.
    printf '%s\n' "$*" >>"$_PHANES_WARN_FILE"
  else
    _PHANES_WARNINGS=$((_PHANES_WARNINGS + 1))
    _phanes_print_warning "" "$*"
  fi
  return 0
}

# phanes_fail MSG: records MSG as the reason the running step failed; returns 1.
phanes_fail() {
  if [ "$_PHANES_IN_STEP" = 1 ] && [ -n "$_PHANES_MSG_FILE" ]; then
    printf '%s\n' "$*" >>"$_PHANES_MSG_FILE"
  fi
  printf 'phanes: fail: %s\n' "$*" >&2
  return 1
}

# phanes_retry N CMD...: runs CMD up to N times, sleeping 1s, 2s, 4s... between tries.
phanes_retry() {
  local tries=$1 try=1 delay=1 rc=0
  shift
  while :; do
    "$@" && return 0
    rc=$?
    if [ "$try" -ge "$tries" ]; then
      printf 'phanes: gave up after %d tries (exit %d): %s\n' "$tries" "$rc" "$*" >&2
      return "$rc"
    fi
    printf 'phanes: try %d/%d failed (exit %d), retrying in %ds: %s\n' \
      "$try" "$tries" "$rc" "$delay" "$*" >&2
    sleep "$delay"
    try=$((try + 1))
    delay=$((delay * 2))
  done
}

# Internal: remembers a note the recap shows once (e.g. services not started).
_phanes_note() {
  [ -n "$PHANES_RUN_DIR" ] || return 0
  mkdir -p -- "$PHANES_RUN_DIR/notes"
  printf '%s\n' "$2" >"$PHANES_RUN_DIR/notes/$1"
}

# Internal: JSON string literal of $2 (quotes included) into variable $1.
_phanes_json_str() {
  local s=$2 i hex c rep
  s=${s//\\/\\\\}
  s=${s//\"/\\\"}
  if [[ $s == *[[:cntrl:]]* ]]; then
    s=${s//$'\n'/\\n}
    s=${s//$'\r'/\\r}
    s=${s//$'\t'/\\t}
    for i in {1..31}; do
      printf -v hex '%02x' "$i"
      printf -v c '%b' "\\x$hex"
      [[ $s == *"$c"* ]] || continue
      printf -v rep '\\u00%s' "$hex"
      s=${s//"$c"/$rep}
    done
    s=${s//$'\x7f'/\\u007f}
  fi
  printf -v "$1" '"%s"' "$s"
}
