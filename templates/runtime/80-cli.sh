
# ---------------------------------------------------------------------------
# phanes runtime: command line (flags and their PHANES_* environment twins,
# for cloud-init and Packer where passing flags is awkward)
# ---------------------------------------------------------------------------

_PHANES_OPT_LIST=0 _PHANES_OPT_KEEP_GOING=0 _PHANES_OPT_COLOR=1 _PHANES_OPT_QUIET=0
_PHANES_OPT_JSON=0 _PHANES_OPT_WAIT=0 _PHANES_OPT_ONLY='' _PHANES_OPT_SKIP=''
PHANES_DRY_RUN=${PHANES_DRY_RUN:-0}

# Internal: usage errors exit 3, like every refusal to run.
_phanes_usage_error() {
  printf 'phanes: %s (see --help)\n' "$*" >&2
  exit 3
}

# Internal: --help text.
_phanes_help() {
  cat <<EOF
phanes-setup $PHANES_VERSION (profile $PHANES_PROFILE, modules: $PHANES_MODULES)
Usage: sudo bash $0 [options]
  --dry-run, --check  run the checks only, list what would change (exit 2 if anything would)
  --only/--skip LIST  run only / skip these steps or modules (comma-separated; see --list)
  --list              print the steps
  --keep-going        go on after a failed step
  --wait[=SECONDS]    wait for another phanes run (default 600s) instead of exiting
  --no-color, --quiet (-q), --json (JSON lines), --version (-V), --help (-h)
Each option has a PHANES_* twin (PHANES_DRY_RUN=1, PHANES_WAIT_LOCK=SECONDS...); also PHANES_APT_NO_RECOMMENDS=1.
Exit status: 0 converged, 1 a step failed, 2 dry-run found changes, 3 refused to run
(not root, unsupported system, another run in progress, bad usage).
EOF
}

# Internal: 1 when an environment flag is set to a true value.
_phanes_env_flag() {
  case ${1:-} in
    1 | true | yes | on) printf -v "$2" 1 ;;
    *) ;;
  esac
}

# Internal: reads the PHANES_* environment, then the flags (flags win).
# Sets _PHANES_ACTION to run, list, help or version.
_phanes_parse_args() {
  local dry=0
  _PHANES_ACTION=run
  _phanes_env_flag "$PHANES_DRY_RUN" dry
  _phanes_env_flag "${PHANES_KEEP_GOING:-}" _PHANES_OPT_KEEP_GOING
  _phanes_env_flag "${PHANES_QUIET:-}" _PHANES_OPT_QUIET
  _phanes_env_flag "${PHANES_JSON:-}" _PHANES_OPT_JSON
  case ${PHANES_NO_COLOR:-} in 1 | true | yes | on) _PHANES_OPT_COLOR=0 ;; esac
  _PHANES_OPT_ONLY=${PHANES_ONLY:-}
  _PHANES_OPT_SKIP=${PHANES_SKIP:-}
  _PHANES_OPT_WAIT=${PHANES_WAIT_LOCK:-0}
  while [ $# -gt 0 ]; do
    case $1 in
      --dry-run | --check) dry=1 ;;
      --only | --skip)
        [ $# -ge 2 ] || _phanes_usage_error "$1 needs a comma-separated list"
        _phanes_add_filter "$1" "$2"
        shift
        ;;
      --only=* | --skip=*) _phanes_add_filter "${1%%=*}" "${1#*=}" ;;
      --list) _PHANES_ACTION=list ;;
      --keep-going) _PHANES_OPT_KEEP_GOING=1 ;;
      --wait) _PHANES_OPT_WAIT=600 ;;
      --wait=*) _PHANES_OPT_WAIT=${1#*=} ;;
      --no-color | --no-colour) _PHANES_OPT_COLOR=0 ;;
      --quiet | -q) _PHANES_OPT_QUIET=1 ;;
      --json) _PHANES_OPT_JSON=1 ;;
      --help | -h) _PHANES_ACTION=help ;;
      --version | -V) _PHANES_ACTION=version ;;
      *) _phanes_usage_error "unknown option '$1'" ;;
    esac
    shift
  done
  [[ $_PHANES_OPT_WAIT =~ ^[0-9]+$ ]] || _phanes_usage_error "--wait needs a number of seconds"
  # Exported: module code and phanes_secret look at it.
  export PHANES_DRY_RUN=$dry
}

# Internal: appends a --only/--skip list.
_phanes_add_filter() {
  [ -n "$2" ] || _phanes_usage_error "$1 needs a comma-separated list"
  if [ "$1" = --only ]; then
    _PHANES_OPT_ONLY+=",$2"
  else
    _PHANES_OPT_SKIP+=",$2"
  fi
}

# Internal: checks every --only/--skip name against the registered modules and
# steps, then marks the selected items. Unknown names are usage errors.
_phanes_select() {
  local name i sel mod total=0 names=()
  local -A only=() skip=() module_selected=()
  IFS=', ' read -r -a names <<<"$_PHANES_OPT_ONLY"
  for name in "${names[@]}"; do [ -z "$name" ] || only[$name]=1; done
  IFS=', ' read -r -a names <<<"$_PHANES_OPT_SKIP"
  for name in "${names[@]}"; do [ -z "$name" ] || skip[$name]=1; done
  for name in "${!only[@]}" "${!skip[@]}"; do
    if [ -z "${_PHANES_MODULES[$name]:-}" ] && [ -z "${_PHANES_STEP_IDX[$name]:-}" ]; then
      _phanes_usage_error "unknown step or module '$name' in --only/--skip;" \
        "modules: ${_PHANES_MODULE_ORDER[*]}; --list shows the steps"
    fi
  done
  for i in "${!_PHANES_I_ID[@]}"; do
    [ "${_PHANES_I_KIND[i]}" = step ] || continue
    mod=${_PHANES_I_MOD[i]}
    sel=1
    if [ ${#only[@]} -gt 0 ] && [ -z "${only[${_PHANES_I_ID[i]}]:-}" ] &&
      [ -z "${only[$mod]:-}" ]; then
      sel=0
    fi
    if [ -n "${skip[${_PHANES_I_ID[i]}]:-}" ] || [ -n "${skip[$mod]:-}" ]; then sel=0; fi
    _PHANES_I_SEL[i]=$sel
    if [ "$sel" = 1 ]; then
      module_selected[$mod]=1
      total=$((total + 1))
    fi
  done
  # A module's handlers run when at least one of its steps does.
  for i in "${!_PHANES_I_ID[@]}"; do
    if [ "${_PHANES_I_KIND[i]}" = handler ]; then
      _PHANES_I_SEL[i]=${module_selected[${_PHANES_I_MOD[i]}]:-0}
    fi
  done
  _PHANES_TOTAL=$total
  _PHANES_POS_WIDTH=$((${#total} * 2 + 1))
}
