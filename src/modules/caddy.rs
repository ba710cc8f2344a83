//! caddy: Caddy from its Cloudsmith repository (or the distribution's package), serving the
//! configured sites with automatic HTTPS, from a Caddyfile phanes owns. `caddy validate` tests
//! the candidate before it replaces the old one; Caddy reloads without dropping connections.

use super::vendor::{self, Repository, Source};
use super::web::{self, Site};
use super::{ModuleSpec, OpenPort};
use crate::config::Config;
use crate::config::types::{Email, Port, Ranged};
use crate::diagnostic::Diagnostic;
use serde::{Deserialize, Serialize};

/// The module's entry in the registry.
pub const MODULE: ModuleSpec = ModuleSpec {
    name: "caddy",
    description: "Caddy web server with automatic HTTPS for static sites and reverse proxies",
    requires: &[],
    conflicts: &[],
    template: include_str!("../../templates/modules/caddy.sh.j2"),
    validate,
    packages: |c| vendor::packages(c.caddy.source, &["caddy"]),
    ports,
};

fn ports(config: &Config) -> Vec<OpenPort> {
    let settings = &config.caddy;
    let mut ports = vec![OpenPort::new(
        "caddy.http_port",
        settings.http_port.0,
        "tcp",
    )];
    if settings.tls != Tls::Off {
        ports.push(OpenPort::new(
            "caddy.https_port",
            settings.https_port.0,
            "tcp",
        ));
        // HTTP/3.
        ports.push(OpenPort::new(
            "caddy.https_port",
            settings.https_port.0,
            "udp",
        ));
    }
    ports
}

/// The Cloudsmith key that signs Caddy's stable repository.
pub const KEY_FINGERPRINT: &str = "65760C51EDEA2017CEA2CA15155B6D79CA56EA34";

/// Settings of the `caddy` section.
#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
#[schemars(rename = "CaddySettings")]
pub struct Settings {
    /// `vendor`: Caddy's stable repository on Cloudsmith (current releases). `distro`: the
    /// release's caddy package (Debian 12: 2.6; not in Ubuntu 22.04).
    pub source: Source,
    /// Caddy's apt repository (source: vendor). Not set: URL
    /// `https://dl.cloudsmith.io/public/caddy/stable/deb/debian` (for Debian and Ubuntu alike),
    /// key `https://dl.cloudsmith.io/public/caddy/stable/gpg.key`, suite any-version, component
    /// main.
    pub repository: Repository,
    /// Port for HTTP (and the ACME HTTP challenge); opened in the firewall.
    pub http_port: Port,
    /// Port for HTTPS; opened in the firewall (tcp, and udp for HTTP/3) unless `tls: off`.
    pub https_port: Port,
    /// `auto`: certificates from Let's Encrypt or ZeroSSL for every domain (the domains must
    /// point at this server and both ports be reachable from the internet; `localhost` and IP
    /// names get Caddy's local CA). `internal`: certificates from Caddy's local CA for every
    /// site (tests, private networks). `off`: plain HTTP only.
    pub tls: Tls,
    /// Contact address for the ACME account (expiry warnings). Not set: none.
    pub email: Option<Email>,
    /// The sites, in /etc/caddy/Caddyfile, which phanes owns (the package's example
    /// Caddyfile is replaced).
    pub sites: Vec<Site>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            source: Source::Vendor,
            repository: Repository::pinned(KEY_FINGERPRINT),
            http_port: Ranged(80),
            https_port: Ranged(443),
            tls: Tls::Auto,
            email: None,
            sites: Vec::new(),
        }
    }
}

/// Where Caddy's certificates come from.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Tls {
    /// Public ACME certificates (Caddy's automatic HTTPS).
    #[default]
    Auto,
    /// Caddy's own local CA.
    Internal,
    /// No HTTPS.
    Off,
}

fn validate(config: &Config) -> Vec<Diagnostic> {
    let settings = &config.caddy;
    let mut problems = web::validate_sites("caddy", &settings.sites);
    if settings.http_port == settings.https_port {
        problems.push(
            Diagnostic::new("config", "http_port and https_port must differ")
                .with_path("caddy.https_port"),
        );
    }
    if settings.source == Source::Distro
        && settings.repository != Repository::pinned(KEY_FINGERPRINT)
    {
        problems.push(
            Diagnostic::new(
                "config",
                "caddy.repository is only used with source: vendor",
            )
            .with_path("caddy.repository")
            .with_help("remove it, or set caddy.source: vendor"),
        );
    }
    problems
}
