//! monitoring: the Netdata agent from Netdata's stable repository (never the nightly channel
//! its installer defaults to) or the distribution, listening on localhost only unless told
//! otherwise, optionally claimed to Netdata Cloud with a token read from a file on the server.

use super::ModuleSpec;
use super::vendor::{self, Repository, Source};
use crate::config::Config;
use crate::config::types::{AbsolutePath, HttpUrl, Port, Ranged};
use crate::diagnostic::Diagnostic;
use serde::{Deserialize, Serialize};

/// The module's entry in the registry.
pub const MODULE: ModuleSpec = ModuleSpec {
    name: "monitoring",
    description: "Netdata monitoring agent (stable channel), on localhost unless opened",
    requires: &[],
    conflicts: &[],
    template: include_str!("../../templates/modules/monitoring.sh.j2"),
    validate,
    packages: |c| vendor::packages(c.monitoring.source, &["netdata"]),
    ports: super::no_ports,
};

/// Netdata's package signing key (learn.netdata.cloud, native packages).
pub const KEY_FINGERPRINT: &str = "6588FDD7B14721FE7C3115E6F9177B5265F56346";

/// Settings of the `monitoring` section.
#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
#[schemars(rename = "MonitoringSettings")]
pub struct Settings {
    /// `vendor`: Netdata's stable repository (current agent). `distro`: the release's netdata
    /// package (Debian 12: 1.37; Ubuntu: universe). Debian 13 has no netdata package: there
    /// the run stops at the package install, saying so, before anything is installed.
    pub source: Source,
    /// Netdata's apt repository (source: vendor), a flat repository. Not set: URL
    /// `https://repo.netdata.cloud/repos/stable/debian/` (or /ubuntu/), suite `CODENAME/`, key
    /// `https://repo.netdata.cloud/netdatabot.gpg.key`.
    pub repository: Repository,
    /// Addresses the dashboard and API listen on (`[web] bind to`). The default keeps it on
    /// localhost: reach it through an SSH tunnel or a reverse proxy with authentication.
    pub bind: Vec<ListenIp>,
    /// Port of the dashboard and API (`[web] default port`).
    pub port: Port,
    /// Connect the agent to Netdata Cloud.
    pub claim: Claim,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            source: Source::Vendor,
            repository: Repository::pinned(KEY_FINGERPRINT),
            bind: ["127.0.0.1", "::1"]
                .iter()
                .map(|a| ListenIp(a.to_string()))
                .collect(),
            port: Ranged(19999),
            claim: Claim::default(),
        }
    }
}

/// Netdata Cloud claiming, through /etc/netdata/claim.conf.
#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Claim {
    /// Claim the agent. The token is never in the config or on a command line: put it in
    /// `token_file` on the server first (cloud-init write_files, or by hand), 0600.
    pub enabled: bool,
    /// File on the server holding the claim token (from Netdata Cloud: Connect Nodes).
    pub token_file: AbsolutePath,
    /// Room IDs to add the node to. Empty: the space's default room.
    pub rooms: Vec<RoomId>,
    /// Netdata Cloud's URL.
    pub url: HttpUrl,
}

impl Default for Claim {
    fn default() -> Self {
        Claim {
            enabled: false,
            token_file: "/etc/phanes/secrets/netdata-claim-token"
                .to_string()
                .try_into()
                .expect("valid built-in path"),
            rooms: Vec::new(),
            url: HttpUrl::try_from("https://app.netdata.cloud".to_string())
                .expect("valid built-in URL"),
        }
    }
}

crate::config::types::validated_string!(
    /// An IP address to listen on.
    ListenIp,
    "an IP address like 127.0.0.1, ::1 or 0.0.0.0",
    |s| s.parse::<std::net::IpAddr>().is_ok()
);

crate::config::types::validated_string!(
    /// A Netdata Cloud room ID: letters, digits and '-'.
    RoomId,
    "a room ID of letters, digits and '-' (a UUID)",
    |s| (1..=64).contains(&s.len()) && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
);

fn validate(config: &Config) -> Vec<Diagnostic> {
    let settings = &config.monitoring;
    let mut problems = Vec::new();
    if settings.bind.is_empty() {
        problems.push(
            Diagnostic::new(
                "config",
                "bind is empty: Netdata would listen on every interface",
            )
            .with_path("monitoring.bind")
            .with_help("use [127.0.0.1, ::1], or list the addresses to listen on"),
        );
    }
    if settings.source == Source::Distro
        && settings.repository != Repository::pinned(KEY_FINGERPRINT)
    {
        problems.push(
            Diagnostic::new(
                "config",
                "monitoring.repository is only used with source: vendor",
            )
            .with_path("monitoring.repository")
            .with_help("remove it, or set monitoring.source: vendor"),
        );
    }
    problems
}
