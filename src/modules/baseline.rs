//! baseline: host name and /etc/hosts, time zone, locales, base packages.

use super::ModuleSpec;
use crate::config::Config;
use crate::config::types::{Hostname, Locale, PackageName, Timezone};
use crate::diagnostic::Diagnostic;
use serde::{Deserialize, Serialize};

/// The module's entry in the registry.
pub const MODULE: ModuleSpec = ModuleSpec {
    name: "baseline",
    description: "Host name, time zone, locales and base packages",
    requires: &[],
    conflicts: &[],
    template: include_str!("../../templates/modules/baseline.sh.j2"),
    validate,
    packages,
    ports: super::no_ports,
};

/// The configured packages plus what the steps themselves use (locale-gen, zoneinfo).
fn packages(config: &Config) -> Vec<String> {
    let mut list: Vec<String> = config
        .baseline
        .packages
        .iter()
        .map(|p| p.to_string())
        .collect();
    for needed in ["locales", "tzdata"] {
        if !list.iter().any(|p| p == needed) {
            list.push(needed.to_string());
        }
    }
    list
}

/// Settings of the `baseline` section.
#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
#[schemars(rename = "BaselineSettings")]
pub struct Settings {
    /// Host name to set (and map to 127.0.1.1 in /etc/hosts). Empty keeps the provider's name.
    pub hostname: Option<Hostname>,
    /// Time zone, a name under /usr/share/zoneinfo.
    pub timezone: Timezone,
    /// Locales to generate.
    pub locales: Vec<Locale>,
    /// System default LANG; must be one of `locales` (or C.UTF-8).
    pub default_locale: Locale,
    /// Packages every server gets.
    pub packages: Vec<PackageName>,
}

impl Default for Settings {
    fn default() -> Self {
        let parse = |s: &str| s.to_string().try_into().expect("valid built-in default");
        Settings {
            hostname: None,
            timezone: parse_timezone("Etc/UTC"),
            locales: vec![parse("en_US.UTF-8")],
            default_locale: parse("en_US.UTF-8"),
            packages: [
                "ca-certificates",
                "curl",
                "gnupg",
                "htop",
                "less",
                "rsync",
                "unzip",
            ]
            .into_iter()
            .map(|p| p.to_string().try_into().expect("valid built-in package"))
            .collect(),
        }
    }
}

fn parse_timezone(s: &str) -> Timezone {
    s.to_string().try_into().expect("valid built-in time zone")
}

/// Locales that exist without being generated.
pub const BUILTIN_LOCALES: &[&str] = &["C", "C.UTF-8", "C.utf8", "POSIX"];

fn validate(config: &Config) -> Vec<Diagnostic> {
    let settings = &config.baseline;
    let default = settings.default_locale.as_str();
    let listed = settings.locales.iter().any(|l| l.as_str() == default);
    if listed || BUILTIN_LOCALES.contains(&default) {
        return Vec::new();
    }
    vec![Diagnostic::new(
        "config",
        format!("default locale {default:?} is not in baseline.locales, so it would not be generated"),
    )
    .with_path("baseline.default_locale")
    .with_help(format!("add {default:?} to baseline.locales"))]
}
