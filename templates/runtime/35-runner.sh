
# ---------------------------------------------------------------------------
# phanes runtime: the step runner
#
# Per step: skip? -> check -> ok; else apply, check again -> changed or failed.
# A step never counts as done unless its check passes afterwards. Handlers run
# after their module's last step, only when a pending marker exists.
# ---------------------------------------------------------------------------

_PHANES_N_OK=0 _PHANES_N_CHANGED=0 _PHANES_N_FAILED=0 _PHANES_N_SKIPPED=0
_PHANES_N_WOULD=0 _PHANES_N_NOT_RUN=0
_PHANES_TOTAL=0 _PHANES_POS=0 _PHANES_POS_WIDTH=3 _PHANES_STOP=0
# Exit status of the last _phanes_call; result of the last _phanes_apply_step.
_PHANES_RC=0 _PHANES_STATUS='' _PHANES_MSG=''
# Handlers handled this run: ok, failed or dry (the final sweep skips the last two).
declare -A _PHANES_HANDLER_SEEN=()
# One JSON object per finished item, for last-run.json.
_PHANES_RESULTS=()

# Internal: ERR trap inside step subshells: says in the log where a step stopped.
# Args: status, line, command. A failing function reports as "return N": the
# line then points at the call.
_phanes_trace_err() {
  local where="bundle line $2 in ${FUNCNAME[1]:-?}"
  if [ "${FUNCNAME[1]:-}" = _phanes_call ]; then
    # The step function itself returned non-zero ($fn is _phanes_call's local).
    printf 'phanes: %s: %s returned %d\n' "$_PHANES_PHASE" "${fn:-?}" "$1" >&2
  elif [[ $3 == return* ]]; then
    printf 'phanes: %s: exit %d at %s\n' "$_PHANES_PHASE" "$1" "$where" >&2
  else
    printf 'phanes: %s: exit %d at %s: %s\n' "$_PHANES_PHASE" "$1" "$where" "$3" >&2
  fi
}

# Internal: runs function $1 (phase $2) in a subshell with errexit on; status in _PHANES_RC.
# Its stdout goes to file $3 (default the run log), stderr to the run log, stdin is
# empty, and the lock fd is closed (a daemon it starts must not hold the run lock).
# Must be called as a plain command, never under if/&&/||/!: bash ignores errexit
# inside anything called from such a context, even an explicit `set -e`.
_phanes_call() {
  local fn=$1 phase=$2 out=${3:-$_PHANES_LOG_FILE}
  printf -- '--- %s: %s\n' "$phase" "$fn" >>"$_PHANES_LOG_FILE"
  set +e
  (
    _PHANES_IN_STEP=1
    _PHANES_PHASE=$phase
    trap '_phanes_trace_err "$?" "$LINENO" "$BASH_COMMAND"' ERR
    set -e
    "$fn"
  ) >>"$out" 2>>"$_PHANES_LOG_FILE" </dev/null 9>&-
  _PHANES_RC=$?
  set -e
}

# Internal: the last 20 lines the current item (log header $2) wrote to the log,
# without phase markers. The header goes through the environment: awk -v would
# interpret backslashes in it.
_phanes_log_tail() {
  printf -v "$1" '%s' "$(PHANES_TAIL_MARKER=$2 awk '
    $0 == ENVIRON["PHANES_TAIL_MARKER"] { f = 1; n = 0; next }
    f && !/^--- (skip|check|apply|re-check|handler): / { buf[n++ % 20] = $0 }
    END { for (k = (n > 20 ? n - 20 : 0); k < n; k++) print buf[k % 20] }
  ' "$_PHANES_LOG_FILE")"
}

# Internal: starts an item: log header and fresh message/warning files.
_phanes_item_begin() {
  printf '=== %s %s: %s\n' "$1" "$2" "$3" >>"$_PHANES_LOG_FILE"
  : >"$_PHANES_MSG_FILE"
  : >"$_PHANES_WARN_FILE"
}

# Internal: the message the item left with phanes_fail (lines joined by "; ").
_phanes_item_message() {
  local lines=() line out=''
  mapfile -t lines <"$_PHANES_MSG_FILE"
  for line in "${lines[@]}"; do
    out+="${out:+; }$line"
  done
  printf -v "$1" '%s' "$out"
}

# Internal: counts, prints and records one finished item.
# Args: index, position label, status, display text, microseconds, message.
_phanes_finish_item() {
  local i=$1 pos=$2 status=$3 text=$4 us=$5 msg=$6 tail='' warn jid jst secs
  case $status in
    ok) _PHANES_N_OK=$((_PHANES_N_OK + 1)) ;;
    changed) _PHANES_N_CHANGED=$((_PHANES_N_CHANGED + 1)) ;;
    failed) _PHANES_N_FAILED=$((_PHANES_N_FAILED + 1)) ;;
    skipped) _PHANES_N_SKIPPED=$((_PHANES_N_SKIPPED + 1)) ;;
    would-change) _PHANES_N_WOULD=$((_PHANES_N_WOULD + 1)) ;;
  esac
  _phanes_print_item "$pos" "${_PHANES_I_ID[i]}" "$text" "$us"
  _phanes_json_item "${_PHANES_I_ID[i]}" "${_PHANES_I_MOD[i]}" "${_PHANES_I_KIND[i]}" \
    "$status" "$us" "$msg"
  if [ "$status" = failed ]; then
    _phanes_log_tail tail "=== ${_PHANES_I_KIND[i]} ${_PHANES_I_ID[i]}: ${_PHANES_I_DESC[i]}"
    _phanes_print_detail "${_PHANES_I_DESC[i]}" "$msg" "$tail"
    phanes_log "${_PHANES_I_ID[i]} failed: $msg"
    if [ "$_PHANES_OPT_KEEP_GOING" = 0 ]; then _PHANES_STOP=1; fi
  fi
  if [ -s "$_PHANES_WARN_FILE" ]; then
    while IFS= read -r warn; do
      _PHANES_WARNINGS=$((_PHANES_WARNINGS + 1))
      _phanes_print_warning "${_PHANES_I_ID[i]}" "$warn"
    done <"$_PHANES_WARN_FILE"
  fi
  _phanes_json_str jid "${_PHANES_I_ID[i]}"
  _phanes_json_str jst "$status"
  _phanes_json_secs secs "$us"
  _PHANES_RESULTS+=("{\"step\":$jid,\"kind\":\"${_PHANES_I_KIND[i]}\",\"status\":$jst,\"seconds\":$secs}")
}

# Internal: runs step number $1 of the registered items.
_phanes_run_step() {
  local i=$1 id=${_PHANES_I_ID[$1]} base t0 t1 status='' text msg='' reason='' pos
  base=${id//[.-]/_}
  _PHANES_POS=$((_PHANES_POS + 1))
  pos="$_PHANES_POS/$_PHANES_TOTAL"
  _phanes_now_us t0
  _phanes_item_begin step "$id" "${_PHANES_I_DESC[i]}"
  if declare -F "${base}__skip" >/dev/null; then
    : >"$PHANES_RUN_DIR/skip.out"
    _phanes_call "${base}__skip" skip "$PHANES_RUN_DIR/skip.out"
    reason=''
    IFS= read -r reason <"$PHANES_RUN_DIR/skip.out" || true
    # A skip must say why: success without a reason (`[[ -f x ]] || echo why`) runs the step.
    if [ "$_PHANES_RC" = 0 ] && [ -n "$reason" ]; then
      status=skipped msg=$reason
    fi
  fi
  if [ -z "$status" ]; then
    _phanes_call "${base}__check" check
    if [ "$_PHANES_RC" = 0 ]; then
      status=ok
    elif [ "$PHANES_DRY_RUN" = 1 ]; then
      status=would-change
    else
      _phanes_apply_step "$base"
      status=$_PHANES_STATUS msg=$_PHANES_MSG
    fi
  fi
  _phanes_now_us t1
  text=$status
  [ "$status" != skipped ] || text="skipped${reason:+: $reason}"
  _phanes_finish_item "$i" "$pos" "$status" "${text//-/ }" $((t1 - t0)) "$msg"
}

# Internal: apply, then check again; result in _PHANES_STATUS and _PHANES_MSG.
_phanes_apply_step() {
  local base=$1
  _PHANES_STATUS=failed _PHANES_MSG=''
  : >"$_PHANES_MSG_FILE"
  _phanes_call "${base}__apply" apply
  if [ "$_PHANES_RC" != 0 ]; then
    _phanes_item_message _PHANES_MSG
    [ -n "$_PHANES_MSG" ] || _PHANES_MSG="apply failed (exit $_PHANES_RC)"
    return 0
  fi
  : >"$_PHANES_MSG_FILE"
  _phanes_call "${base}__check" re-check
  if [ "$_PHANES_RC" = 0 ]; then
    _PHANES_STATUS=changed
  else
    _phanes_item_message _PHANES_MSG
    _PHANES_MSG="check still fails after apply${_PHANES_MSG:+: $_PHANES_MSG}"
  fi
}

# Internal: runs handler item $1 when its pending marker exists.
_phanes_run_handler() {
  local i=$1 name=${_PHANES_I_ID[$1]} marker t0 t1 status msg=''
  marker="$PHANES_STATE_DIR/pending/$name"
  [ -e "$marker" ] || return 0
  _phanes_now_us t0
  _phanes_item_begin handler "$name" "${_PHANES_I_DESC[i]}"
  if [ "$PHANES_DRY_RUN" = 1 ]; then
    _PHANES_HANDLER_SEEN[$name]=dry
    _phanes_now_us t1
    _phanes_finish_item "$i" '' would-change 'would run' $((t1 - t0)) 'pending: would run'
    return 0
  fi
  _phanes_call "handler__$name" handler
  if [ "$_PHANES_RC" = 0 ]; then
    rm -f -- "$marker"
    status=changed
    _PHANES_HANDLER_SEEN[$name]=ok
  else
    status=failed
    _PHANES_HANDLER_SEEN[$name]=failed
    _phanes_item_message msg
    [ -n "$msg" ] || msg="handler failed (exit $_PHANES_RC); it stays pending for the next run"
  fi
  _phanes_now_us t1
  _phanes_finish_item "$i" '' "$status" "$status" $((t1 - t0)) "$msg"
}

# Internal: runs every selected item in order, then any handler a later module notified.
_phanes_run_all() {
  local i
  for i in "${!_PHANES_I_ID[@]}"; do
    [ "${_PHANES_I_SEL[i]}" = 1 ] || continue
    if [ "$_PHANES_STOP" = 1 ]; then
      [ "${_PHANES_I_KIND[i]}" != step ] || _PHANES_N_NOT_RUN=$((_PHANES_N_NOT_RUN + 1))
      continue
    fi
    if [ "${_PHANES_I_KIND[i]}" = step ]; then
      _phanes_run_step "$i"
    else
      _phanes_run_handler "$i"
    fi
  done
  [ "$_PHANES_STOP" = 0 ] || return 0
  # A step may notify a handler of a module that already finished: run it now
  # (again, if it ran and was notified since), but never retry a failed one.
  for i in "${!_PHANES_I_ID[@]}"; do
    if [ "${_PHANES_I_SEL[i]}" != 1 ] || [ "${_PHANES_I_KIND[i]}" != handler ]; then continue; fi
    case ${_PHANES_HANDLER_SEEN[${_PHANES_I_ID[i]}]:-} in failed | dry) continue ;; esac
    [ "$_PHANES_STOP" = 0 ] || break
    _phanes_run_handler "$i"
  done
}
