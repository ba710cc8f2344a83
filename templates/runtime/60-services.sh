
# ---------------------------------------------------------------------------
# phanes runtime: services, systemd and containers
#
# In a chroot image build (Packer) systemd is not PID 1: services are enabled
# so they start on first boot, but not started, and the recap says so.
# ---------------------------------------------------------------------------

# phanes_has_systemd: 0 when systemd is PID 1 (so services can be started now).
phanes_has_systemd() {
  [ -d "$PHANES_SYSTEMD_DIR" ]
}

# phanes_in_container: 0 inside a container (docker, podman, LXC, nspawn...).
phanes_in_container() {
  [ -e /.dockerenv ] || [ -e /run/.containerenv ] && return 0
  command -v systemd-detect-virt >/dev/null 2>&1 && systemd-detect-virt --container --quiet
}

# phanes_service_active NAME: 0 when unit NAME is running.
phanes_service_active() {
  systemctl is-active --quiet -- "$1"
}

# phanes_service_enabled NAME: 0 when unit NAME starts at boot (works without a running systemd).
phanes_service_enabled() {
  systemctl is-enabled --quiet -- "$1"
}

# phanes_service_enabled_running NAME: the check for phanes_service_enable_start (enabled, and active where systemd runs).
phanes_service_enabled_running() {
  phanes_service_enabled "$1" || return 1
  ! phanes_has_systemd || phanes_service_active "$1"
}

# Internal: records the recap note for services that could not be started.
_phanes_note_no_systemd() {
  _phanes_note no-systemd "systemd is not running (image build?): services enabled, not started"
  phanes_log "systemd is not running: $1 enabled, not started"
}

# phanes_service_enable_start NAME: enables unit NAME and starts it where systemd runs.
phanes_service_enable_start() {
  if phanes_has_systemd; then
    systemctl enable --now -- "$1" || { phanes_fail "cannot enable and start $1"; return 1; }
  else
    systemctl enable -- "$1" || { phanes_fail "cannot enable $1"; return 1; }
    _phanes_note_no_systemd "$1"
  fi
}

# phanes_service_reload NAME: reloads (or restarts, if it cannot reload) NAME if it is running; for handlers.
phanes_service_reload() {
  if ! phanes_has_systemd; then
    _phanes_note_no_systemd "$1"
    return 0
  fi
  systemctl try-reload-or-restart -- "$1" || { phanes_fail "cannot reload $1"; return 1; }
}

# phanes_service_restart NAME: restarts NAME where systemd runs; for handlers.
phanes_service_restart() {
  if ! phanes_has_systemd; then
    _phanes_note_no_systemd "$1"
    return 0
  fi
  systemctl restart -- "$1" || { phanes_fail "cannot restart $1"; return 1; }
}
