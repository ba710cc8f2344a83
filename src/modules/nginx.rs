//! nginx: the distribution's nginx with one file per site in sites-available (linked from
//! sites-enabled), tested with `nginx -t` with the candidates in place and rolled back when it
//! fails, then reloaded (Debian's reload does not test the config itself).

use super::web::{self, Site};
use super::{ModuleSpec, OpenPort};
use crate::config::Config;
use crate::config::types::{Port, Ranged};
use crate::diagnostic::Diagnostic;
use serde::{Deserialize, Serialize};

/// The module's entry in the registry.
pub const MODULE: ModuleSpec = ModuleSpec {
    name: "nginx",
    description: "nginx web server with static sites and reverse proxies, tested before reload",
    requires: &[],
    conflicts: &[],
    template: include_str!("../../templates/modules/nginx.sh.j2"),
    validate,
    packages: |_| vec!["nginx".to_string()],
    ports,
};

fn ports(config: &Config) -> Vec<OpenPort> {
    vec![
        OpenPort::new("nginx.http_port", config.nginx.http_port.0, "tcp"),
        OpenPort::new("nginx.https_port", config.nginx.https_port.0, "tcp"),
    ]
}

/// Settings of the `nginx` section.
#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
#[schemars(rename = "NginxSettings")]
pub struct Settings {
    /// Port the sites are served on (plain HTTP); opened in the firewall.
    pub http_port: Port,
    /// HTTPS port, opened in the firewall for the TLS server blocks a certificate tool adds
    /// (certbot --nginx); phanes' own sites serve plain HTTP. Put caddy in front, or use caddy
    /// instead, for automatic HTTPS.
    pub https_port: Port,
    /// Remove the distribution's default site (sites-enabled/default, the welcome page that
    /// answers every unknown name).
    pub remove_default_site: bool,
    /// The sites, each in /etc/nginx/sites-available/phanes-FIRST-DOMAIN.conf. Sites phanes
    /// made that are no longer listed are removed.
    pub sites: Vec<Site>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            http_port: Ranged(80),
            https_port: Ranged(443),
            remove_default_site: true,
            sites: Vec::new(),
        }
    }
}

fn validate(config: &Config) -> Vec<Diagnostic> {
    let settings = &config.nginx;
    let mut problems = web::validate_sites("nginx", &settings.sites);
    if settings.http_port == settings.https_port {
        problems.push(
            Diagnostic::new("config", "http_port and https_port must differ")
                .with_path("nginx.https_port"),
        );
    }
    problems
}
