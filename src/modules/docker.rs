//! docker: Docker CE with buildx and the compose plugin from Docker's apt repository (packages
//! that conflict with it removed first), or the distribution's docker.io; daemon.json with log
//! rotation, validated before Docker restarts; users in the docker group; and UFW rules that
//! also filter published container ports, which Docker otherwise routes around the firewall.

use super::ModuleSpec;
use super::security::FirewallRule;
use super::vendor::{self, Repository, Source};
use crate::config::Config;
use crate::config::types::{AccountName, Ranged};
use crate::diagnostic::Diagnostic;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// The module's entry in the registry.
pub const MODULE: ModuleSpec = ModuleSpec {
    name: "docker",
    description: "Docker Engine with the compose plugin, log rotation, and published ports behind UFW",
    requires: &[],
    conflicts: &[],
    template: include_str!("../../templates/modules/docker.sh.j2"),
    validate,
    packages: |c| vendor::packages(c.docker.source, &["docker.io"]),
    ports: super::no_ports,
};

/// Docker's signing key (docs.docker.com/engine/install/debian).
pub const KEY_FINGERPRINT: &str = "9DC858229FC7DD38854AE2D88D81803C0EBFCD88";

/// Settings of the `docker` section.
#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
#[schemars(rename = "DockerSettings")]
pub struct Settings {
    /// `vendor`: docker-ce, docker-ce-cli, containerd.io, docker-buildx-plugin and
    /// docker-compose-plugin from Docker's repository, after removing the packages that conflict
    /// with them (docker.io, docker-compose, podman-docker, containerd, runc). `distro`: the
    /// release's docker.io, plus its compose v2 package where it has one (Ubuntu:
    /// docker-compose-v2; Debian 12 has only compose v1, so `docker compose` is skipped there).
    pub source: Source,
    /// Docker's apt repository (source: vendor). Not set: URL
    /// `https://download.docker.com/linux/debian` (or /ubuntu), key URL + /gpg, suite the
    /// release's codename, component stable.
    pub repository: Repository,
    /// Accounts added to the docker group. Membership is root-equivalent: the Docker socket
    /// can start a container that mounts /. Each must be in user.users.
    pub users: Vec<AccountName>,
    /// Size at which a container's log file is rotated (json-file `max-size`): a number with
    /// k, m or g. Docker's own default is unlimited.
    pub log_max_size: LogSize,
    /// Rotated log files kept per container (json-file `max-file`). Both apply to containers
    /// created after the change.
    pub log_max_file: Ranged<1, 100>,
    /// More daemon.json settings, merged in: keys of lowercase letters, digits and '-';
    /// values booleans, numbers, strings (letters, digits, spaces and ._:/@=,+-), and lists
    /// and maps of them; like `live-restore: true` or `default-address-pools: [{base:
    /// 10.201.0.0/16, size: 24}]`. `log-driver` and `log-opts` come from the settings above;
    /// `iptables` cannot be turned off (it would break container networking).
    pub daemon: BTreeMap<DaemonKey, DaemonValue>,
    /// Make UFW filter published container ports too. Docker publishes ports (`-p 8080:80`)
    /// through its own iptables rules, which bypass UFW's. With this on, phanes adds a
    /// DOCKER-USER block to /etc/ufw/after.rules (between `# BEGIN phanes docker` markers):
    /// new connections from outside to containers are dropped (and logged, rate-limited),
    /// except to the ports in `allow_published`, to ports opened with `ufw route allow`, and
    /// from the private networks 10.0.0.0/8, 172.16.0.0/12 and 192.168.0.0/16. Container
    /// traffic out, and replies, pass. Off: the block is removed. Needs security's firewall
    /// (nothing happens where UFW is not installed). IPv4 only, like Docker's default.
    pub ufw_integration: bool,
    /// Container ports reachable from anywhere while `ufw_integration` is on: `80/tcp`,
    /// `443` (tcp and udp), `6000:6007/tcp`. These are the ports inside the container (the
    /// right-hand side of `-p 8080:80`), as UFW sees forwarded traffic after Docker's
    /// address translation. Ports published to 127.0.0.1 only need nothing here. Coolify
    /// publishes its proxy (80, 443), dashboard (host 8000, container 8080), realtime (6001)
    /// and terminal (6002): the coolify profile lists 80/tcp, 443, 8080/tcp and 6001:6002/tcp.
    pub allow_published: Vec<FirewallRule>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            source: Source::Vendor,
            repository: Repository::pinned(KEY_FINGERPRINT),
            users: Vec::new(),
            log_max_size: LogSize("10m".into()),
            log_max_file: Ranged(3),
            daemon: BTreeMap::new(),
            ufw_integration: true,
            allow_published: Vec::new(),
        }
    }
}

crate::config::types::validated_string!(
    /// A json-file log size: a whole number with k, m or g (`10m`).
    LogSize,
    "a whole number with k, m or g, like 10m",
    |s| {
        let number = s.trim_end_matches(['k', 'm', 'g']);
        s.len() == number.len() + 1
            && (1..=6).contains(&number.len())
            && number.chars().all(|c| c.is_ascii_digit())
            && !number.starts_with('0')
    }
);

crate::config::types::validated_string!(
    /// A daemon.json key: lowercase letters, digits and '-'.
    DaemonKey,
    "a daemon.json key of lowercase letters, digits and '-', like live-restore",
    |s| {
        (1..=64).contains(&s.len())
            && s.starts_with(|c: char| c.is_ascii_lowercase())
            && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    }
);

/// A daemon.json value of safe shape: booleans, numbers, strings of letters, digits, spaces
/// and `._:/@=,+-`, and lists and maps of them (map keys: letters, digits, '_', '.', '-').
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(try_from = "Value", into = "Value")]
pub struct DaemonValue(Value);

fn safe_daemon_value(value: &Value, depth: usize) -> Result<(), String> {
    if depth > 4 {
        return Err("nested too deep (at most 4 levels)".into());
    }
    match value {
        Value::Null => Err("null is not a daemon.json value here".into()),
        Value::Bool(_) | Value::Number(_) => Ok(()),
        Value::String(s) => {
            let ok = s.len() <= 256
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || " ._:/@=,+-".contains(c));
            ok.then_some(()).ok_or_else(|| {
                format!("string {s:?} may hold only letters, digits, spaces and ._:/@=,+-")
            })
        }
        Value::Array(items) if items.len() <= 64 => items
            .iter()
            .try_for_each(|item| safe_daemon_value(item, depth + 1)),
        Value::Object(map) if map.len() <= 64 => map.iter().try_for_each(|(key, item)| {
            let ok = (1..=64).contains(&key.len())
                && key
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
            if !ok {
                return Err(format!(
                    "key {key:?} may hold only letters, digits, '_', '.' and '-'"
                ));
            }
            safe_daemon_value(item, depth + 1)
        }),
        _ => Err("lists and maps hold at most 64 entries".into()),
    }
}

impl TryFrom<Value> for DaemonValue {
    type Error = String;
    fn try_from(value: Value) -> Result<Self, String> {
        safe_daemon_value(&value, 0)
            .map(|()| DaemonValue(value))
            .map_err(|e| format!("invalid daemon.json value: {e}"))
    }
}

impl From<DaemonValue> for Value {
    fn from(value: DaemonValue) -> Value {
        value.0
    }
}

fn validate(config: &Config) -> Vec<Diagnostic> {
    let settings = &config.docker;
    let mut problems = Vec::new();
    for (i, user) in settings.users.iter().enumerate() {
        if !config.user.users.iter().any(|u| u.name == *user) {
            problems.push(
                Diagnostic::new(
                    "config",
                    format!("{user} is not in user.users, so phanes would not create the account"),
                )
                .with_path(format!("docker.users[{i}]"))
                .with_help(format!("add an entry `- name: {user}` under user.users")),
            );
        }
    }
    for key in settings.daemon.keys() {
        let why = match key.as_str() {
            "log-driver" | "log-opts" => "is set from docker.log_max_size and docker.log_max_file",
            "iptables" | "ip6tables" => {
                "cannot be set: turning it off breaks container networking and the UFW integration"
            }
            _ => continue,
        };
        problems.push(
            Diagnostic::new("config", format!("daemon.json key {key} {why}"))
                .with_path(format!("docker.daemon.{key}")),
        );
    }
    if settings.source == Source::Distro
        && settings.repository != Repository::pinned(KEY_FINGERPRINT)
    {
        problems.push(
            Diagnostic::new(
                "config",
                "docker.repository is only used with source: vendor",
            )
            .with_path("docker.repository")
            .with_help("remove it, or set docker.source: vendor"),
        );
    }
    problems
}
