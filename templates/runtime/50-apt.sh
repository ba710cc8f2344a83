
# ---------------------------------------------------------------------------
# phanes runtime: apt
#
# One `apt-get update` per run at most (plus one after a source is added), and
# only when something must be installed, so a converged re-run never touches
# the network. Markers live in $PHANES_RUN_DIR because applies run in subshells.
# ---------------------------------------------------------------------------

# Packages the last _phanes_pkgs_missing found not installed.
_PHANES_APT_TODO=()
# Package -> the module that wants it (set by the bundle), for error messages.
declare -gA PHANES_PKG_MODULE=()

# Internal: apt-get with the options every phanes call uses (noninteractive,
# wait for the dpkg lock instead of failing, keep existing config files).
_phanes_apt_get() {
  DEBIAN_FRONTEND=noninteractive apt-get -y -q \
    -o DPkg::Lock::Timeout=300 \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$@"
}

# Internal: the PKG arguments that are not installed ("ii"), into array
# _PHANES_APT_TODO, with one dpkg-query call (an "arch" suffix is ignored).
_phanes_pkgs_missing() {
  local out pkg status
  local -A have=()
  _PHANES_APT_TODO=()
  out=$(LC_ALL=C dpkg-query -W -f='${Package} ${db:Status-Abbrev}\n' -- "$@" 2>/dev/null) || true
  while read -r pkg status; do
    [ "$status" != ii ] || have[$pkg]=1
  done <<<"$out"
  for pkg in "$@"; do
    [ -n "${have[${pkg%%:*}]:-}" ] || _PHANES_APT_TODO+=("$pkg")
  done
}

# phanes_pkgs_installed PKG...: 0 when every PKG is installed (dpkg status "ii") and no install was cut short.
phanes_pkgs_installed() {
  _phanes_pkgs_missing "$@"
  [ ${#_PHANES_APT_TODO[@]} -eq 0 ] && [ ! -e "$PHANES_STATE_DIR/apt-pending" ]
}

# phanes_apt_sources_changed: makes the next install run `apt-get update` again (call after adding a source).
phanes_apt_sources_changed() {
  rm -f -- "$PHANES_RUN_DIR/apt-updated"
}

# phanes_apt_update: runs `apt-get update` unless this run already did (and no source changed since).
phanes_apt_update() {
  [ ! -e "$PHANES_RUN_DIR/apt-updated" ] || return 0
  _phanes_apt_try update || return 1
  : >"$PHANES_RUN_DIR/apt-updated"
}

# Internal: apt-get ARGS with retries; a failure names apt's own first error (what it could
# not reach, for one).
_phanes_apt_try() {
  local why
  phanes_retry 3 _phanes_apt_get "$@" 2>&1 | tee "$PHANES_RUN_DIR/apt.out" && return 0
  why=$(grep -m1 -e '^E: ' -e '^W: Failed' "$PHANES_RUN_DIR/apt.out") || true
  phanes_fail "apt-get $* failed${why:+: ${why#?: }}"
}

# Internal: fails, before anything is installed, naming the packages apt has no candidate for
# on this release (and the module each is for); retrying would not help them. Other problems
# are left to the install, which reports and retries them. Args: apt-get's install arguments;
# the plan is left in _PHANES_APT_SIM.
_phanes_apt_installable() {
  local out pkg list=''
  out=$(LC_ALL=C _phanes_apt_get --simulate "$@" 2>&1) && _PHANES_APT_SIM=$out && return 0
  while read -r pkg; do
    [ -n "$pkg" ] || continue
    list+="${list:+, }$pkg${PHANES_PKG_MODULE[$pkg]:+ (for ${PHANES_PKG_MODULE[$pkg]})}"
  done < <(sed -n -e "s/^E: Unable to locate package \(.*\)\$/\1/p" -e "s/^E: Package '\(.*\)' has no installation candidate\$/\1/p" <<<"$out")
  [ -n "$list" ] || return 0
  phanes_fail "not available on ${_PHANES_OS_PRETTY:-this system}: $list (apt has no installation candidate); nothing was installed (use the module's vendor source, or leave the module out)"
}

# phanes_apt_install PKG...: installs the missing PKGs (recommends unless PHANES_APT_NO_RECOMMENDS=1), with retries.
# The packages apt adds besides PKGs are listed in $PHANES_STATE_DIR/apt-pending, synced before
# apt runs: after a kill or a power cut the next install adds what is missing of them, reinstalls
# what dpkg left half-installed, and marks them automatically installed again.
phanes_apt_install() {
  local opts=() f=$PHANES_STATE_DIR/apt-pending pend=() pkg st v _PHANES_APT_SIM=''
  local -A arg=()
  for pkg; do arg[${pkg%%:*}]=1; done
  [ ! -e "$f" ] || while read -r pkg; do [ -z "$pkg" ] || pend+=("$pkg") arg[$pkg]=1; done <"$f"
  _phanes_pkgs_missing "$@" "${pend[@]}"
  if [ ${#_PHANES_APT_TODO[@]} -gt 0 ]; then
    phanes_apt_update || return 1
    [ "${PHANES_APT_NO_RECOMMENDS:-0}" != 1 ] || opts+=(--no-install-recommends)
    _phanes_apt_installable "${opts[@]}" install "${_PHANES_APT_TODO[@]}" || return 1
    # Fresh installs are "Inst PKG (VERSION ...", upgrades "Inst PKG [OLD] (...".
    while read -r st pkg v; do
      [[ $st != Inst || $v != \(* || -n ${arg[$pkg]:-} ]] || pend+=("$pkg") arg[$pkg]=1
    done <<<"$_PHANES_APT_SIM"
    # Written and synced before apt runs (a failure here stops the step: errexit).
    mkdir -p -- "${f%/*}"
    printf '%s\n' "${pend[@]}" >"$f.new"
    mv -f -- "$f.new" "$f"
    sync
    _phanes_apt_try "${opts[@]}" install "${_PHANES_APT_TODO[@]}" || return 1
  fi
  [ ${#pend[@]} -eq 0 ] || apt-mark auto "${pend[@]}" >/dev/null
  rm -f -- "$f"
}

# phanes_apt_remove PKG...: removes the PKGs that are installed (config files kept).
phanes_apt_remove() {
  local pkg todo=()
  local -A missing=()
  _phanes_pkgs_missing "$@"
  for pkg in "${_PHANES_APT_TODO[@]}"; do missing[$pkg]=1; done
  for pkg in "$@"; do
    [ -n "${missing[$pkg]:-}" ] || todo+=("$pkg")
  done
  [ ${#todo[@]} -gt 0 ] || return 0
  _phanes_apt_try remove "${todo[@]}"
}
