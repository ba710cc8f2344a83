
# ---------------------------------------------------------------------------
# phanes runtime: main (the run's life: environment, log, record, exit code)
# ---------------------------------------------------------------------------

_PHANES_T0=0 _PHANES_START_ISO='' _PHANES_ACTION=run _PHANES_OS_PRETTY=''
# Logs kept in $PHANES_LOG_DIR.
_PHANES_KEEP_LOGS=30

# Internal: a predictable environment for the commands steps run.
_phanes_init_env() {
  local d
  for d in /usr/local/sbin /usr/local/bin /usr/sbin /usr/bin /sbin /bin; do
    case ":$PATH:" in *":$d:"*) ;; *) PATH="$PATH:$d" ;; esac
  done
  export PATH
  # C locale: commands' output is parsed; also makes ${#var} count bytes.
  export LC_ALL=C
  export DEBIAN_FRONTEND=noninteractive
  umask 022
}

# Internal: EXIT trap: removes the per-run scratch dir.
_phanes_on_exit() {
  if [ -n "$PHANES_RUN_DIR" ] && [ -d "$PHANES_RUN_DIR" ]; then
    rm -rf -- "$PHANES_RUN_DIR"
  fi
}

# Internal: INT/TERM trap. Pending handlers stay persisted for the next run.
_phanes_on_signal() {
  trap - INT TERM
  phanes_log "interrupted by $2"
  printf '\nphanes: interrupted by %s; run again to finish (pending reloads are remembered)\n' "$2" >&2
  exit "$1"
}

# Internal: the per-run scratch dir, the run log (+ latest.log) and the traps.
_phanes_open_run() {
  local stamp
  PHANES_RUN_DIR=$(mktemp -d "${TMPDIR:-/tmp}/phanes-run.XXXXXX")
  trap _phanes_on_exit EXIT
  trap '_phanes_on_signal 130 SIGINT' INT
  trap '_phanes_on_signal 143 SIGTERM' TERM
  _PHANES_MSG_FILE=$PHANES_RUN_DIR/step.msg
  _PHANES_WARN_FILE=$PHANES_RUN_DIR/step.warn
  if ! mkdir -p -- "$PHANES_LOG_DIR" || ! chmod 0700 -- "$PHANES_LOG_DIR"; then
    _phanes_die 3 "cannot create the log folder $PHANES_LOG_DIR"
  fi
  _phanes_utc stamp '%Y%m%dT%H%M%SZ'
  _PHANES_LOG_FILE=$PHANES_LOG_DIR/$stamp-$$.log
  (umask 077 && : >"$_PHANES_LOG_FILE") || _phanes_die 3 "cannot write $_PHANES_LOG_FILE"
  ln -sfn -- "${_PHANES_LOG_FILE##*/}" "$PHANES_LOG_DIR/latest.log"
  _phanes_prune_logs
  {
    printf 'phanes %s, profile %s, modules: %s\n' "$PHANES_VERSION" "$PHANES_PROFILE" "$PHANES_MODULES"
    printf 'config sha256 %s; started %s; pid %s; dry-run %s\n' "$PHANES_CONFIG_SHA256" \
      "$_PHANES_START_ISO" "$$" "$PHANES_DRY_RUN"
    printf 'system: %s (%s %s %s, %s)\n' "$_PHANES_OS_PRETTY" "$PHANES_OS_ID" \
      "$PHANES_OS_VERSION_ID" "$PHANES_OS_CODENAME" "$PHANES_ARCH"
  } >>"$_PHANES_LOG_FILE"
}

# Internal: keeps the newest $_PHANES_KEEP_LOGS run logs (names sort by time).
_phanes_prune_logs() {
  local logs=("$PHANES_LOG_DIR"/[0-9]*-[0-9]*.log)
  if [ ${#logs[@]} -gt "$_PHANES_KEEP_LOGS" ]; then
    rm -f -- "${logs[@]:0:${#logs[@]}-$_PHANES_KEEP_LOGS}"
  fi
}

# Internal: writes last-run.json (last-check.json for a dry-run) atomically.
# Args: exit code, total microseconds.
_phanes_write_record() {
  local rc=$1 secs file tmp steps dry=false IFS=,
  [ "$PHANES_DRY_RUN" = 0 ] || dry=true
  file=$PHANES_STATE_DIR/last-run.json
  [ "$PHANES_DRY_RUN" = 0 ] || file=$PHANES_STATE_DIR/last-check.json
  _phanes_json_secs secs "$2"
  steps="${_PHANES_RESULTS[*]}"
  mkdir -p -- "$PHANES_STATE_DIR" || return 0
  tmp=$(mktemp "$PHANES_STATE_DIR/.phanes.XXXXXX") || return 0
  local jv jp js jl
  _phanes_json_str jv "$PHANES_VERSION"
  _phanes_json_str jp "$PHANES_PROFILE"
  _phanes_json_str js "$PHANES_CONFIG_SHA256"
  _phanes_json_str jl "$_PHANES_LOG_FILE"
  printf '{"version":%s,"profile":%s,"config_sha256":%s,"started":"%s","seconds":%s,"dry_run":%s,"exit":%d,"log":%s,"counts":{"ok":%d,"changed":%d,"failed":%d,"skipped":%d,"would_change":%d,"not_run":%d,"warnings":%d},"steps":[%s]}\n' \
    "$jv" "$jp" "$js" "$_PHANES_START_ISO" "$secs" "$dry" "$rc" "$jl" \
    "$_PHANES_N_OK" "$_PHANES_N_CHANGED" "$_PHANES_N_FAILED" "$_PHANES_N_SKIPPED" \
    "$_PHANES_N_WOULD" "$_PHANES_N_NOT_RUN" "$_PHANES_WARNINGS" "$steps" >"$tmp"
  if ! chmod 0644 -- "$tmp" || ! mv -f -- "$tmp" "$file"; then
    rm -f -- "$tmp"
  fi
}

# Internal: the exit code of a finished run.
_phanes_exit_code() {
  if [ "$_PHANES_N_FAILED" -gt 0 ]; then
    printf -v "$1" 1
  elif [ "$PHANES_DRY_RUN" = 1 ] && [ "$_PHANES_N_WOULD" -gt 0 ]; then
    printf -v "$1" 2
  else
    printf -v "$1" 0
  fi
}

# main ARGS...: the bundle's entry point, called on its last line.
main() {
  local rc t1
  _phanes_init_env
  _phanes_parse_args "$@"
  case $_PHANES_ACTION in
    help) _phanes_help && exit 0 ;;
    version) printf 'phanes-setup %s (profile %s)\n' "$PHANES_VERSION" "$PHANES_PROFILE" && exit 0 ;;
  esac
  declare -F phanes_register >/dev/null || _phanes_bundle_error "no phanes_register function"
  phanes_register
  _phanes_select
  if [ "$_PHANES_ACTION" = list ]; then
    _phanes_list
    exit 0
  fi
  _phanes_init_colors
  _phanes_now_us _PHANES_T0
  _phanes_utc _PHANES_START_ISO '%Y-%m-%dT%H:%M:%SZ'
  _phanes_require_root
  _phanes_check_os
  _phanes_take_lock
  _phanes_open_run
  # A dpkg interrupted earlier is finished before any step; a dry run only says so.
  if [ "$PHANES_DRY_RUN" = 0 ]; then
    _phanes_finish_dpkg
  elif _phanes_dpkg_interrupted; then
    phanes_warn "dpkg was interrupted; a real run will finish it (dpkg --configure -a)"
  fi
  _phanes_run_all
  _phanes_exit_code rc
  _phanes_now_us t1
  _phanes_print_recap "$rc" $((t1 - _PHANES_T0))
  _phanes_write_record "$rc" $((t1 - _PHANES_T0))
  phanes_log "finished with exit $rc"
  exit "$rc"
}
