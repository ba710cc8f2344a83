//! The module registry: every module's metadata, and how a profile's module list becomes an
//! ordered, conflict-free selection.

pub mod baseline;
pub mod caddy;
pub mod coolify;
pub mod devtools;
pub mod docker;
pub mod monitoring;
pub mod nginx;
pub mod postgres;
pub mod redis;
pub mod security;
pub mod swap;
pub mod tailscale;
pub mod updates;
pub mod user;
pub mod vendor;
pub mod web;

use crate::config::Config;
use crate::diagnostic::Diagnostic;
use anyhow::{Result, bail};
use security::FirewallRule;

/// What the compiler knows about a module. The settings type lives in the module's own file and
/// is a field of [`Config`]; the steps live in its template.
#[derive(Debug)]
pub struct ModuleSpec {
    /// The module's name, also its config section.
    pub name: &'static str,
    /// One line for `phanes list modules` and `explain`.
    pub description: &'static str,
    /// Modules that must run before this one; selecting this module selects them too.
    pub requires: &'static [&'static str],
    /// Modules that cannot share a server with this one, and why.
    pub conflicts: &'static [(&'static str, &'static str)],
    /// The minijinja template that renders the module's steps.
    pub template: &'static str,
    /// Checks across fields that serde cannot express.
    pub validate: fn(&Config) -> Vec<Diagnostic>,
    /// Distribution packages the module needs with these settings. The bundle installs the
    /// union of all modules' packages in one apt run before the first module; each module's
    /// template gets its own list as `packages` for its own check.
    pub packages: fn(&Config) -> Vec<String>,
    /// Inbound ports the module serves to the world with these settings. The security module
    /// opens them in the firewall (when it manages one), and two modules in one profile may not
    /// claim the same one.
    pub ports: fn(&Config) -> Vec<OpenPort>,
}

/// An inbound port a module listens on, and the config key that sets it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenPort {
    /// The config key that sets the port, for error messages.
    pub key: &'static str,
    /// The firewall rule the module needs.
    pub rule: FirewallRule,
}

impl OpenPort {
    /// `port/proto` set by config key `key`.
    pub fn new(key: &'static str, port: i64, proto: &str) -> Self {
        OpenPort {
            key,
            rule: FirewallRule::try_from(format!("{port}/{proto}")).expect("ports are in range"),
        }
    }
}

/// For modules that open no port.
pub fn no_ports(_: &Config) -> Vec<OpenPort> {
    Vec::new()
}

/// The firewall rules the selected modules need, in module order, each once.
pub fn all_ports(modules: &[&ModuleSpec], config: &Config) -> Vec<String> {
    let mut all: Vec<String> = Vec::new();
    for port in modules.iter().flat_map(|m| (m.ports)(config)) {
        let rule = port.rule.to_string();
        if !all.contains(&rule) {
            all.push(rule);
        }
    }
    all
}

/// Fails when two selected modules claim the same port, or one claims the SSH port.
pub fn check_ports(modules: &[&ModuleSpec], config: &Config) -> Result<()> {
    let mut claimed: Vec<(&str, OpenPort)> = Vec::new();
    let ssh = config.security.ssh.port.0;
    for module in modules {
        for port in (module.ports)(config) {
            if modules.iter().any(|m| m.name == "security") && port.rule.covers_tcp(ssh) {
                bail!(
                    "{} ({}) is the SSH port (security.ssh.port): move one of them",
                    port.key,
                    port.rule
                );
            }
            if let Some((other, first)) = claimed.iter().find(|(_, p)| p.rule == port.rule) {
                bail!(
                    "modules {other:?} and {:?} both listen on {}: set {} or {} to another port",
                    module.name,
                    port.rule,
                    first.key,
                    port.key
                );
            }
            claimed.push((module.name, port));
        }
    }
    Ok(())
}

/// For modules that install nothing from the distribution.
pub fn no_packages(_: &Config) -> Vec<String> {
    Vec::new()
}

/// The packages every selected module needs, in module order, each once.
pub fn all_packages(modules: &[&ModuleSpec], config: &Config) -> Vec<String> {
    let mut all: Vec<String> = Vec::new();
    for package in modules.iter().flat_map(|m| (m.packages)(config)) {
        if !all.contains(&package) {
            all.push(package);
        }
    }
    all
}

/// Each package of [`all_packages`] with the first module that wants it, so an install failure
/// can name the module a package is for.
pub fn package_modules(modules: &[&ModuleSpec], config: &Config) -> Vec<(String, &'static str)> {
    let mut owners: Vec<(String, &'static str)> = Vec::new();
    for module in modules {
        for package in (module.packages)(config) {
            if !owners.iter().any(|(p, _)| *p == package) {
                owners.push((package, module.name));
            }
        }
    }
    owners
}

/// Every module, in the order they run. A module's `requires` always come earlier in this list,
/// so filtering it by a selection gives a valid order.
pub const ALL: &[&ModuleSpec] = &[
    &baseline::MODULE,
    &user::MODULE,
    &security::MODULE,
    &swap::MODULE,
    &updates::MODULE,
    &tailscale::MODULE,
    &docker::MODULE,
    &monitoring::MODULE,
    &nginx::MODULE,
    &caddy::MODULE,
    &postgres::MODULE,
    &redis::MODULE,
    &coolify::MODULE,
    &devtools::MODULE,
];

/// Looks a module up by name.
pub fn find(name: &str) -> Option<&'static ModuleSpec> {
    ALL.iter().copied().find(|m| m.name == name)
}

/// Names of every module, for suggestions.
pub fn names() -> Vec<&'static str> {
    ALL.iter().map(|m| m.name).collect()
}

/// Error for a module name that does not exist, with a suggestion.
pub fn unknown(name: &str) -> anyhow::Error {
    let mut message = format!("unknown module {name:?}");
    if let Some(best) = crate::diagnostic::closest(name, &names()) {
        message.push_str(&format!(" (did you mean {best:?}?)"));
    }
    message.push_str(&format!("; modules: {}", names().join(", ")));
    anyhow::anyhow!(message)
}

/// Turns a wanted set of modules into the run order: adds what they require, drops what was
/// excluded, and fails on conflicts or on excluding something another module needs.
pub fn resolve(wanted: &[String], excluded: &[String]) -> Result<Vec<&'static ModuleSpec>> {
    for name in wanted.iter().chain(excluded) {
        if find(name).is_none() {
            return Err(unknown(name));
        }
    }
    let mut selected: Vec<&str> = Vec::new();
    let mut stack: Vec<&str> = wanted
        .iter()
        .map(String::as_str)
        .filter(|n| !excluded.iter().any(|e| e == n))
        .collect();
    while let Some(name) = stack.pop() {
        if selected.contains(&name) {
            continue;
        }
        selected.push(name);
        let spec = find(name).expect("checked above");
        for required in spec.requires {
            if excluded.iter().any(|e| e == required) {
                bail!("module {name:?} requires {required:?}, which is excluded");
            }
            stack.push(required);
        }
    }
    let ordered: Vec<&'static ModuleSpec> = ALL
        .iter()
        .copied()
        .filter(|m| selected.contains(&m.name))
        .collect();
    for module in &ordered {
        for (other, reason) in module.conflicts {
            if ordered.iter().any(|m| m.name == *other) {
                bail!(
                    "modules {:?} and {other:?} cannot be used together: {reason}",
                    module.name
                );
            }
        }
    }
    Ok(ordered)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_order_puts_requirements_first() {
        for (i, module) in ALL.iter().enumerate() {
            for required in module.requires {
                let at = ALL
                    .iter()
                    .position(|m| m.name == *required)
                    .expect("required module exists");
                assert!(
                    at < i,
                    "{} requires {required}, which runs later",
                    module.name
                );
            }
        }
    }

    #[test]
    fn resolve_orders_by_registry_and_rejects_unknown_names() {
        let order = resolve(&["swap".into(), "baseline".into()], &[]).unwrap();
        assert_eq!(
            order.iter().map(|m| m.name).collect::<Vec<_>>(),
            ["baseline", "swap"]
        );
        let err = resolve(&["swpa".into()], &[]).unwrap_err().to_string();
        assert!(err.contains("did you mean \"swap\""), "{err}");
    }
}
