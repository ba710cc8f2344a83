//! What nginx and caddy share: the sites a web server serves, and their checks.

use crate::config::types::{AbsolutePath, Domain, Port};
use crate::diagnostic::Diagnostic;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One site: the names it answers to, and either a folder of static files or a local port it
/// passes requests on to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Site {
    /// Domains the site answers to (`example.com`, `*.example.com`). The first one names the
    /// site's config file.
    pub domains: Vec<Domain>,
    /// Serve static files from this folder (created, empty, when missing). Either `root` or
    /// `proxy`.
    #[serde(default)]
    pub root: Option<AbsolutePath>,
    /// Pass requests on to this port on 127.0.0.1 (a reverse proxy, with the Host,
    /// X-Forwarded-* and WebSocket upgrade headers). Either `root` or `proxy`.
    #[serde(default)]
    pub proxy: Option<Port>,
}

/// The file-name stem of a site: its first domain, `*` spelt `_`.
pub fn site_id(site: &Site) -> String {
    site.domains
        .first()
        .map(|d| d.as_str().replace('*', "_"))
        .unwrap_or_default()
}

/// Checks `sites` under `section` (`nginx`, `caddy`): root or proxy, domains present and unique.
pub fn validate_sites(section: &str, sites: &[Site]) -> Vec<Diagnostic> {
    let mut problems = Vec::new();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for (i, site) in sites.iter().enumerate() {
        let path = format!("{section}.sites[{i}]");
        match (&site.root, &site.proxy) {
            (Some(_), Some(_)) => problems.push(
                Diagnostic::new(
                    "config",
                    "a site has either root (static files) or proxy (a local port), not both",
                )
                .with_path(path.clone()),
            ),
            (None, None) => problems.push(
                Diagnostic::new(
                    "config",
                    "a site needs root (a folder of static files) or proxy (a local port)",
                )
                .with_path(path.clone())
                .with_help("add `root: /var/www/site` or `proxy: 8080`"),
            ),
            _ => {}
        }
        if site.domains.is_empty() {
            problems.push(
                Diagnostic::new("config", "a site needs at least one domain")
                    .with_path(format!("{path}.domains")),
            );
        }
        for (j, domain) in site.domains.iter().enumerate() {
            let name = domain.as_str().to_ascii_lowercase();
            if let Some(first) = seen.insert(name, i) {
                problems.push(
                    Diagnostic::new(
                        "config",
                        format!("domain {domain} is already served by {section}.sites[{first}]"),
                    )
                    .with_path(format!("{path}.domains[{j}]")),
                );
            }
        }
    }
    problems
}
