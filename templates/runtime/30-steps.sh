
# ---------------------------------------------------------------------------
# phanes runtime: step and handler registration (the API module templates call)
#
# phanes_register (generated) calls phanes_module for each module in order;
# each module function registers its steps and handlers. Registration only
# records names: nothing on the system is read or changed here.
# ---------------------------------------------------------------------------

# Registered items, in run order: a module's steps, then its handlers.
_PHANES_I_ID=() _PHANES_I_MOD=() _PHANES_I_DESC=() _PHANES_I_KIND=() _PHANES_I_SEL=()
_PHANES_MODULE_ORDER=()
declare -A _PHANES_MODULES=() _PHANES_STEP_IDX=() _PHANES_HANDLERS=()
_PHANES_CUR_MODULE=''
# Handlers of the module being registered; appended after its last step.
_PHANES_CUR_HANDLERS=() _PHANES_CUR_HANDLER_DESCS=()

# Internal: a defect in the generated bundle itself; nothing has run yet.
_phanes_bundle_error() {
  printf 'phanes: bundle error: %s\n' "$*" >&2
  exit 3
}

# phanes_module NAME: registers module NAME by calling phanes_module__NAME.
phanes_module() {
  local name=$1 i
  [[ $name =~ ^[a-z0-9_]+$ ]] || _phanes_bundle_error "invalid module name '$name'"
  declare -F "phanes_module__$name" >/dev/null ||
    _phanes_bundle_error "module '$name' has no phanes_module__$name function"
  [ -z "${_PHANES_MODULES[$name]:-}" ] || _phanes_bundle_error "module '$name' registered twice"
  _PHANES_MODULES[$name]=1
  _PHANES_MODULE_ORDER+=("$name")
  _PHANES_CUR_MODULE=$name
  _PHANES_CUR_HANDLERS=() _PHANES_CUR_HANDLER_DESCS=()
  "phanes_module__$name"
  for i in "${!_PHANES_CUR_HANDLERS[@]}"; do
    _phanes_add_item "${_PHANES_CUR_HANDLERS[i]}" "${_PHANES_CUR_HANDLER_DESCS[i]}" handler
  done
  _PHANES_CUR_MODULE=''
}

# phanes_step ID DESCRIPTION: registers step ID (functions <ID with . and - as _>__check/__apply/[__skip]).
phanes_step() {
  local id=$1 desc=${2:-$1} base
  [ -n "$_PHANES_CUR_MODULE" ] || _phanes_bundle_error "phanes_step $id outside a module"
  [[ $id =~ ^[a-z0-9][a-z0-9._-]*$ ]] || _phanes_bundle_error "invalid step id '$id'"
  [ -z "${_PHANES_STEP_IDX[$id]:-}" ] || _phanes_bundle_error "step '$id' registered twice"
  base=${id//[.-]/_}
  declare -F "${base}__check" >/dev/null || _phanes_bundle_error "step '$id' has no ${base}__check"
  declare -F "${base}__apply" >/dev/null || _phanes_bundle_error "step '$id' has no ${base}__apply"
  _PHANES_STEP_IDX[$id]=${#_PHANES_I_ID[@]}
  _phanes_add_item "$id" "$desc" step
}

# phanes_handler NAME DESCRIPTION: registers handler__NAME, run after the module's steps when notified.
phanes_handler() {
  local name=$1 desc=${2:-$1}
  [ -n "$_PHANES_CUR_MODULE" ] || _phanes_bundle_error "phanes_handler $name outside a module"
  [[ $name =~ ^[a-z0-9_]+$ ]] || _phanes_bundle_error "invalid handler name '$name'"
  [ -z "${_PHANES_HANDLERS[$name]:-}" ] || _phanes_bundle_error "handler '$name' registered twice"
  declare -F "handler__$name" >/dev/null ||
    _phanes_bundle_error "handler '$name' has no handler__$name function"
  _PHANES_HANDLERS[$name]=$_PHANES_CUR_MODULE
  _PHANES_CUR_HANDLERS+=("$name")
  _PHANES_CUR_HANDLER_DESCS+=("$desc")
}

# phanes_notify NAME: marks handler NAME pending (persisted, so a killed run still runs it next time).
phanes_notify() {
  local name=$1
  if [ -z "${_PHANES_HANDLERS[$name]:-}" ]; then
    phanes_fail "phanes_notify: unknown handler '$name'"
    return 1
  fi
  mkdir -p -- "$PHANES_STATE_DIR/pending"
  : >"$PHANES_STATE_DIR/pending/$name"
  phanes_log "handler $name notified"
}

# Internal: appends one item (step or handler) to the run order.
_phanes_add_item() {
  _PHANES_I_ID+=("$1")
  _PHANES_I_DESC+=("$2")
  _PHANES_I_KIND+=("$3")
  _PHANES_I_MOD+=("$_PHANES_CUR_MODULE")
  _PHANES_I_SEL+=(1)
}

# Internal: --list output (module, id, description), as text or JSON lines.
_phanes_list() {
  local i w_mod=6 w_id=4 id jm ji jd
  for i in "${!_PHANES_I_ID[@]}"; do
    id=${_PHANES_I_ID[i]}
    [ "${_PHANES_I_KIND[i]}" = handler ] && id="handler:$id"
    [ ${#_PHANES_I_MOD[i]} -le "$w_mod" ] || w_mod=${#_PHANES_I_MOD[i]}
    [ ${#id} -le "$w_id" ] || w_id=${#id}
  done
  for i in "${!_PHANES_I_ID[@]}"; do
    id=${_PHANES_I_ID[i]}
    if [ "$_PHANES_OPT_JSON" = 1 ]; then
      _phanes_json_str jm "${_PHANES_I_MOD[i]}"
      _phanes_json_str ji "$id"
      _phanes_json_str jd "${_PHANES_I_DESC[i]}"
      printf '{"module":%s,"step":%s,"kind":"%s","description":%s}\n' \
        "$jm" "$ji" "${_PHANES_I_KIND[i]}" "$jd"
      continue
    fi
    [ "${_PHANES_I_KIND[i]}" = handler ] && id="handler:$id"
    printf '%-*s  %-*s  %s\n' "$w_mod" "${_PHANES_I_MOD[i]}" "$w_id" "$id" "${_PHANES_I_DESC[i]}"
  done
}
