
# ---------------------------------------------------------------------------
# phanes runtime: terminal output (step lines, warnings, recap, JSON lines)
#
# Human output goes to stdout; with --json, stdout carries only JSON lines.
# Colour only on a TTY, and never with --no-color, PHANES_NO_COLOR or NO_COLOR.
# ---------------------------------------------------------------------------

_PHANES_C_OK='' _PHANES_C_CHANGED='' _PHANES_C_FAILED='' _PHANES_C_SKIPPED=''
_PHANES_C_DIM='' _PHANES_C_RESET=''

# Internal: sets the colour codes once the flags are known.
_phanes_init_colors() {
  if [ "$_PHANES_OPT_COLOR" = 1 ] && [ -z "${NO_COLOR:-}" ] && [ -t 1 ] &&
    [ "$_PHANES_OPT_JSON" = 0 ]; then
    _PHANES_C_OK=$'\e[32m' _PHANES_C_CHANGED=$'\e[33m' _PHANES_C_FAILED=$'\e[1;31m'
    _PHANES_C_SKIPPED=$'\e[36m' _PHANES_C_DIM=$'\e[2m' _PHANES_C_RESET=$'\e[0m'
  fi
}

# Internal: colour code for a status into variable $1.
_phanes_status_color() {
  case $2 in
    ok) printf -v "$1" '%s' "$_PHANES_C_OK" ;;
    changed | would*) printf -v "$1" '%s' "$_PHANES_C_CHANGED" ;;
    failed) printf -v "$1" '%s' "$_PHANES_C_FAILED" ;;
    *) printf -v "$1" '%s' "$_PHANES_C_SKIPPED" ;;
  esac
}

# Internal: prints one finished item.
# Args: position label ("7/31" or "" for a handler), id, status, microseconds.
_phanes_print_item() {
  local pos=$1 id=$2 status=$3 us=$4 secs color label
  [ "$_PHANES_OPT_JSON" = 1 ] && return 0
  if [ "$_PHANES_OPT_QUIET" = 1 ] && [ "$status" != failed ]; then
    return 0
  fi
  _phanes_fmt_secs secs "$us"
  _phanes_status_color color "$status"
  if [ -n "$pos" ]; then
    printf -v label '[%*s]' "$_PHANES_POS_WIDTH" "$pos"
  else
    printf -v label '[%*s]' "$_PHANES_POS_WIDTH" '+'
    id="handler $id"
  fi
  printf '%s %s ... %s%s%s %s(%ss)%s\n' "$label" "$id" "$color" "${status//-/ }" \
    "$_PHANES_C_RESET" "$_PHANES_C_DIM" "$secs" "$_PHANES_C_RESET"
}

# Internal: prints the detail lines under a failed or skipped item.
# Args: description, message, log-tail text (may be empty).
_phanes_print_detail() {
  local desc=$1 msg=$2 tail=$3 line
  [ "$_PHANES_OPT_JSON" = 1 ] && return 0
  printf '      %s\n' "$desc"
  if [ -n "$msg" ]; then
    while IFS= read -r line; do
      printf '      %s%s%s\n' "$_PHANES_C_FAILED" "$line" "$_PHANES_C_RESET"
    done <<<"$msg"
  fi
  if [ -n "$tail" ]; then
    printf '      %slast lines of its output:%s\n' "$_PHANES_C_DIM" "$_PHANES_C_RESET"
    while IFS= read -r line; do
      printf '      | %s\n' "$line"
    done <<<"$tail"
  fi
}

# Internal: prints a warning (step id may be empty) as text or as a JSON line.
_phanes_print_warning() {
  local step=$1 msg=$2 js jm
  if [ "${_PHANES_OPT_JSON:-0}" = 1 ]; then
    _phanes_json_str js "$step"
    _phanes_json_str jm "$msg"
    printf '{"warning":%s,"step":%s}\n' "$jm" "$js"
  else
    printf '%swarning:%s %s%s\n' "$_PHANES_C_CHANGED" "$_PHANES_C_RESET" \
      "${step:+$step: }" "$msg"
  fi
}

# Internal: one JSON line for a finished item.
# Args: id, module, kind (step|handler), status, microseconds, message.
_phanes_json_item() {
  local jid jmod jmsg secs
  [ "$_PHANES_OPT_JSON" = 1 ] || return 0
  _phanes_json_str jid "$1"
  _phanes_json_str jmod "$2"
  _phanes_json_str jmsg "$6"
  _phanes_json_secs secs "$5"
  printf '{"step":%s,"module":%s,"kind":"%s","status":"%s","seconds":%s,"message":%s}\n' \
    "$jid" "$jmod" "$3" "$4" "$secs" "$jmsg"
}

# Internal: the recap line(s) at the end of a run.
# Args: exit code, total microseconds.
_phanes_print_recap() {
  local rc=$1 us=$2 secs note notes=() jnotes='' j color dry=false
  if [ -n "$PHANES_RUN_DIR" ] && [ -d "$PHANES_RUN_DIR/notes" ]; then
    for note in "$PHANES_RUN_DIR"/notes/*; do
      [ -f "$note" ] || continue
      IFS= read -r j <"$note" || true
      notes+=("$j")
    done
  fi
  if [ "$_PHANES_OPT_JSON" = 1 ]; then
    _phanes_json_secs secs "$us"
    for note in "${notes[@]}"; do
      _phanes_json_str j "$note"
      jnotes+="${jnotes:+,}$j"
    done
    _phanes_json_str j "$_PHANES_LOG_FILE"
    if [ "$PHANES_DRY_RUN" = 1 ]; then dry=true; fi
    printf '{"recap":{"ok":%d,"changed":%d,"failed":%d,"skipped":%d,"would_change":%d,' \
      "$_PHANES_N_OK" "$_PHANES_N_CHANGED" "$_PHANES_N_FAILED" "$_PHANES_N_SKIPPED" \
      "$_PHANES_N_WOULD"
    printf '"not_run":%d,"warnings":%d,"dry_run":%s,"seconds":%s,"exit":%d,"log":%s,"notes":[%s]}}\n' \
      "$_PHANES_N_NOT_RUN" "$_PHANES_WARNINGS" "$dry" \
      "$secs" "$rc" "$j" "$jnotes"
    return 0
  fi
  for note in "${notes[@]}"; do
    printf 'note: %s\n' "$note"
  done
  if [ "$_PHANES_N_NOT_RUN" -gt 0 ]; then
    printf '%sstopped at the first failure: %d step(s) not run (--keep-going runs them anyway)%s\n' \
      "$_PHANES_C_FAILED" "$_PHANES_N_NOT_RUN" "$_PHANES_C_RESET"
  fi
  _phanes_fmt_secs secs "$us"
  color=$_PHANES_C_OK
  if [ "$_PHANES_N_FAILED" -gt 0 ]; then
    color=$_PHANES_C_FAILED
  elif [ "$_PHANES_N_CHANGED" -gt 0 ] || [ "$_PHANES_N_WOULD" -gt 0 ]; then
    color=$_PHANES_C_CHANGED
  fi
  printf '%sphanes: ok=%d changed=%d failed=%d skipped=%d' "$color" \
    "$_PHANES_N_OK" "$_PHANES_N_CHANGED" "$_PHANES_N_FAILED" "$_PHANES_N_SKIPPED"
  if [ "$_PHANES_WARNINGS" -gt 0 ]; then printf ' warnings=%d' "$_PHANES_WARNINGS"; fi
  if [ "$PHANES_DRY_RUN" = 1 ]; then printf ' (dry-run: would change=%d)' "$_PHANES_N_WOULD"; fi
  printf ' in %ss%s — log: %s\n' "$secs" "$_PHANES_C_RESET" "$_PHANES_LOG_FILE"
}
