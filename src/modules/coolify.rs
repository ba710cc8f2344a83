//! coolify: Coolify's official installer, downloaded, checked against a sha256 pinned in the
//! config and only then run, non-interactively, for a pinned Coolify version, after Docker CE
//! (the docker module, which this module requires). The optional root user's password is
//! generated on the server and handed to the installer in its environment, never on a command
//! line or in user-data. The check reads the version of the running `coolify` container.

use super::ModuleSpec;
use crate::config::Config;
use crate::config::types::{AbsolutePath, Email, HttpUrl};
use crate::diagnostic::Diagnostic;
use serde::{Deserialize, Serialize};

/// The module's entry in the registry.
pub const MODULE: ModuleSpec = ModuleSpec {
    name: "coolify",
    description: "Coolify (self-hosted PaaS) from its official installer, pinned by version and sha256",
    requires: &["docker"],
    conflicts: &[
        (
            "nginx",
            "Coolify's own proxy (Traefik, in Docker) owns ports 80 and 443; serve sites through Coolify instead",
        ),
        (
            "caddy",
            "Coolify's own proxy (Traefik, in Docker) owns ports 80 and 443; serve sites through Coolify instead",
        ),
    ],
    template: include_str!("../../templates/modules/coolify.sh.j2"),
    validate,
    // What the installer would otherwise apt-get itself (curl wget git jq openssl), installed
    // by phanes' apt helper (lock waits, one update per run) instead.
    packages: |_| {
        ["ca-certificates", "curl", "wget", "git", "jq", "openssl"]
            .iter()
            .map(|p| p.to_string())
            .collect()
    },
    // Coolify's ports (80, 443, 8000, 6001, 6002) are published by Docker, which routes them
    // around UFW's input rules: the docker module's DOCKER-USER block (ufw_integration,
    // allow_published) is what filters them, so no UFW input rule is opened here.
    ports: super::no_ports,
};

/// The Coolify version installed by default.
pub const DEFAULT_VERSION: &str = "4.3.19";

/// Settings of the `coolify` section.
#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
#[schemars(rename = "CoolifySettings")]
pub struct Settings {
    /// Coolify version to install (the installer's first argument), like 4.3.19 or
    /// 4.0.0-beta.434. A higher version in the config upgrades on the next run (the installer
    /// runs again); a lower one is refused (Coolify migrates its database forward only).
    pub version: CoolifyVersion,
    /// Where the installer script is downloaded from. Coolify's CDN serves its newest
    /// installer here, so its sha256 changes when Coolify publishes a new one; a URL of a
    /// fixed revision (`https://raw.githubusercontent.com/coollabsio/coolify/<commit>/scripts/install.sh`)
    /// or your own copy keeps the pin stable.
    pub installer_url: HttpUrl,
    /// sha256 of the installer script (64 hex digits). Required: the step fails, running
    /// nothing, until it is set, and whenever the download does not match it. Review the
    /// script, then take the value from `curl -fsSL <installer_url> | sha256sum`.
    pub installer_sha256: Option<Sha256>,
    /// Let Coolify update itself. Off (the installer gets AUTOUPDATE=false) keeps the pinned
    /// version; on, the check accepts any installed version, and the pin only chooses the
    /// first one.
    pub auto_update: bool,
    /// The first (root) account of the dashboard, created by the installer. Off: Coolify asks
    /// for it on the first visit to the dashboard (port 8000), so register right away.
    pub root_user: RootUser,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            version: CoolifyVersion(DEFAULT_VERSION.to_string()),
            installer_url: HttpUrl::try_from(
                "https://cdn.coollabs.io/coolify/install.sh".to_string(),
            )
            .expect("valid built-in URL"),
            installer_sha256: None,
            auto_update: false,
            root_user: RootUser::default(),
        }
    }
}

/// The dashboard's root account.
#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
#[schemars(rename = "CoolifyRootUser")]
pub struct RootUser {
    /// Create the root account at install time (ROOT_USERNAME, ROOT_USER_EMAIL and
    /// ROOT_USER_PASSWORD in the installer's environment). Only the first install creates
    /// it; later changes are made in the dashboard.
    pub enabled: bool,
    /// The account's user name.
    pub username: RootUsername,
    /// The account's e-mail address (its login). Required when enabled.
    pub email: Option<Email>,
    /// File on the server holding the password: generated there (24 random letters and
    /// digits in three dash-separated groups, 0600 root) when missing, or put there by you
    /// first. Never in the config: user-data is readable from the provider's metadata
    /// service. Note that Coolify's installer copies it into /data/coolify/source/.env.
    pub password_file: AbsolutePath,
}

impl Default for RootUser {
    fn default() -> Self {
        RootUser {
            enabled: false,
            username: RootUsername("admin".to_string()),
            email: None,
            password_file: "/etc/phanes/secrets/coolify-root-password"
                .to_string()
                .try_into()
                .expect("valid built-in path"),
        }
    }
}

crate::config::types::validated_string!(
    /// A Coolify release: `4.3.19`, `4.0.0-beta.434`.
    CoolifyVersion,
    "a Coolify version like 4.3.19 or 4.0.0-beta.434 (no leading v)",
    |s| {
        let (core, pre) = match s.split_once('-') {
            Some((core, pre)) => (core, Some(pre)),
            None => (s, None),
        };
        let numbers = |t: &str| {
            !t.is_empty() && t.len() <= 6 && t.chars().all(|c| c.is_ascii_digit())
        };
        s.len() <= 40
            && core.split('.').count() == 3
            && core.split('.').all(numbers)
            && pre.is_none_or(|p| {
                p.split_once('.').is_some_and(|(word, n)| {
                    !word.is_empty()
                        && word.chars().all(|c| c.is_ascii_lowercase())
                        && numbers(n)
                })
            })
    }
);

crate::config::types::validated_string!(
    /// A sha256 digest: 64 hex digits.
    Sha256,
    "a sha256 digest: 64 hex digits, as `sha256sum` prints them",
    |s| s.len() == 64 && s.chars().all(|c| c.is_ascii_hexdigit())
);

crate::config::types::validated_string!(
    /// Coolify's root user name: letters, digits, '_' and '-', 3 to 64 characters.
    RootUsername,
    "a user name of 3 to 64 letters, digits, '_' and '-'",
    |s| (3..=64).contains(&s.len())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
);

fn validate(config: &Config) -> Vec<Diagnostic> {
    let root = &config.coolify.root_user;
    let mut problems = Vec::new();
    if root.enabled && root.email.is_none() {
        problems.push(
            Diagnostic::new(
                "config",
                "root_user is enabled but has no e-mail address (the dashboard login)",
            )
            .with_path("coolify.root_user.email")
            .with_help("set coolify.root_user.email, or root_user.enabled: false"),
        );
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accepts<T: TryFrom<String>>(s: &str) -> bool {
        T::try_from(s.to_string()).is_ok()
    }

    #[test]
    fn versions_digests_and_names_are_shaped() {
        for good in ["4.3.19", "4.0.0-beta.434", "10.0.1-rc.2"] {
            assert!(accepts::<CoolifyVersion>(good), "{good:?}");
        }
        for bad in [
            "v4.3.19",
            "4.3",
            "4.3.x",
            "latest",
            "4.0.0-beta",
            "4.0.0-Beta.1",
            "4.3.19;id",
            "4.0.0-beta.1.2",
        ] {
            assert!(!accepts::<CoolifyVersion>(bad), "{bad:?}");
        }
        assert!(accepts::<Sha256>(&"aB".repeat(32)));
        assert!(!accepts::<Sha256>(&"a".repeat(63)));
        assert!(!accepts::<Sha256>(&"g".repeat(64)));
        assert!(accepts::<RootUsername>("admin_1"));
        for bad in ["ab", "root user", "x'y", "a$(id)"] {
            assert!(!accepts::<RootUsername>(bad), "{bad:?}");
        }
    }
}
