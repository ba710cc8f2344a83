//! updates: unattended-upgrades with phanes' own apt.conf.d file on top of the distro's
//! (50unattended-upgrades is never edited), the apt timers, and an optional first full upgrade.

use super::ModuleSpec;
use crate::config::Config;
use crate::diagnostic::Diagnostic;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// The module's entry in the registry.
pub const MODULE: ModuleSpec = ModuleSpec {
    name: "updates",
    description: "Automatic security updates with unattended-upgrades",
    requires: &[],
    conflicts: &[],
    template: include_str!("../../templates/modules/updates.sh.j2"),
    validate,
    packages: |_| vec!["unattended-upgrades".to_string()],
    ports: super::no_ports,
};

/// Settings of the `updates` section.
#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
#[schemars(rename = "UpdatesSettings")]
pub struct Settings {
    /// Reboot by itself when an update needs it (a new kernel or libc), at `reboot_time`.
    pub automatic_reboot: bool,
    /// Local time (HH:MM, 24-hour) for an automatic reboot.
    pub reboot_time: ClockTime,
    /// Remove packages that updates left unneeded (apt autoremove).
    pub remove_unused_dependencies: bool,
    /// Extra Origins-Pattern entries for unattended-upgrades, such as `origin=Docker` or
    /// `site=apt.postgresql.org`. The distro's security updates are always included, so
    /// this is empty by default.
    pub origins: Vec<OriginPattern>,
    /// Run one full `apt-get dist-upgrade` on the first run (remembered in
    /// /var/lib/phanes, so later runs never upgrade outside unattended-upgrades).
    pub initial_upgrade: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            automatic_reboot: false,
            reboot_time: ClockTime("04:00".into()),
            remove_unused_dependencies: true,
            origins: Vec::new(),
            initial_upgrade: false,
        }
    }
}

crate::config::types::validated_string!(
    /// A 24-hour clock time `HH:MM`.
    ClockTime,
    "a 24-hour time HH:MM, like 04:00 or 23:30",
    |s| {
        s.len() == 5
            && s.as_bytes()[2] == b':'
            && s[..2].chars().chain(s[3..].chars()).all(|c| c.is_ascii_digit())
            && s[..2].parse::<u8>().is_ok_and(|h| h < 24)
            && s[3..].parse::<u8>().is_ok_and(|m| m < 60)
    }
);

/// Keys unattended-upgrades accepts in an Origins-Pattern entry (long and short forms).
const ORIGIN_KEYS: &[&str] = &[
    "origin",
    "o",
    "label",
    "l",
    "archive",
    "a",
    "suite",
    "codename",
    "n",
    "component",
    "c",
    "site",
];

crate::config::types::validated_string!(
    /// One unattended-upgrades Origins-Pattern entry: comma-separated `key=value` pairs, where the
    /// value may use `${distro_id}` and `${distro_codename}`. No quotes, `;`, braces or newlines, so
    /// it cannot break out of its apt.conf string.
    OriginPattern,
    "comma-separated key=value pairs like origin=Docker or o=Debian,n=${distro_codename}-backports, with keys origin, label, archive, suite, codename, component, site (or o, l, a, n, c)",
    |s| {
        let pair_ok = |pair: &str| {
            let Some((key, value)) = pair.split_once('=') else {
                return false;
            };
            let value = value.replace("${distro_id}", "").replace("${distro_codename}", "");
            ORIGIN_KEYS.contains(&key)
                && !pair.ends_with('=')
                && value.chars().all(|c| c.is_ascii_alphanumeric() || " .:_/+~*-".contains(c))
        };
        s.len() <= 200 && !s.trim().is_empty() && s.split(',').all(pair_ok)
    }
);

fn validate(config: &Config) -> Vec<Diagnostic> {
    let mut seen = BTreeSet::new();
    let mut problems = Vec::new();
    for (i, origin) in config.updates.origins.iter().enumerate() {
        if !seen.insert(origin.0.as_str()) {
            problems.push(
                Diagnostic::new("config", format!("origin {:?} is listed twice", origin.0))
                    .with_path(format!("updates.origins[{i}]")),
            );
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_times_are_checked() {
        let t = |s: &str| ClockTime::try_from(s.to_string()).is_ok();
        assert!(t("04:00") && t("23:59") && t("00:00"));
        for bad in [
            "25:00", "24:00", "4:00", "04:60", "04-00", "now", "+1:00", "04:0a",
        ] {
            assert!(!t(bad), "{bad:?}");
        }
    }

    #[test]
    fn origin_patterns_cannot_break_out_of_apt_strings() {
        let o = |s: &str| OriginPattern::try_from(s.to_string()).is_ok();
        assert!(o("origin=Docker"));
        assert!(o("o=Debian,n=${distro_codename}-backports"));
        assert!(o("site=apt.postgresql.org"));
        assert!(o("origin=Docker,label=Docker CE"));
        for bad in [
            "",
            "Docker",
            "origin=",
            "foo=bar",
            "origin=a\";",
            "origin=a\nb",
            "origin=${x}",
            "origin=a};",
            "o=a,,",
        ] {
            assert!(!o(bad), "{bad:?}");
        }
    }
}
