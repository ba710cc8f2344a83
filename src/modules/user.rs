//! user: login accounts with their shell, groups, sudo rule and SSH keys.

use super::ModuleSpec;
use crate::config::Config;
use crate::config::types::{AbsolutePath, AccountName, SshPublicKey};
use crate::diagnostic::Diagnostic;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// The module's entry in the registry.
pub const MODULE: ModuleSpec = ModuleSpec {
    name: "user",
    description: "Login users with SSH keys, groups and sudo",
    requires: &[],
    conflicts: &[],
    template: include_str!("../../templates/modules/user.sh.j2"),
    validate,
    packages: super::no_packages,
    ports: super::no_ports,
};

/// Settings of the `user` section.
#[derive(Clone, Debug, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
#[schemars(rename = "UserSettings")]
pub struct Settings {
    /// The accounts to create or update.
    pub users: Vec<UserAccount>,
}

/// One login account.
#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UserAccount {
    /// The login name.
    pub name: AccountName,
    /// Login shell; it must exist (install it with baseline.packages).
    #[serde(default = "default_shell")]
    pub shell: AbsolutePath,
    /// Supplementary groups (created when missing). phanes adds, never removes, memberships.
    #[serde(default)]
    pub groups: Vec<AccountName>,
    /// What the user may do with sudo.
    #[serde(default)]
    pub sudo: SudoMode,
    /// Public keys phanes manages in the user's authorized_keys; keys added by hand are kept.
    #[serde(default)]
    pub ssh_keys: Vec<SshPublicKey>,
    /// crypt(3) hash for the account password (needed for `sudo: password`). Never a clear text.
    #[serde(default)]
    pub password_hash: Option<PasswordHash>,
}

fn default_shell() -> AbsolutePath {
    "/bin/bash"
        .to_string()
        .try_into()
        .expect("valid built-in shell")
}

/// What the user may do with sudo.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum SudoMode {
    /// Every command, without a password (the common setup for key-only servers).
    #[default]
    Nopasswd,
    /// Every command, asking for the account password.
    Password,
    /// No sudo rule from phanes.
    None,
}

crate::config::types::validated_string!(
    /// A crypt(3) password hash such as `$6$salt$hash` or `$y$...` (yescrypt).
    PasswordHash,
    "a crypt(3) hash like $6$... or $y$... (make one with `mkpasswd -m yescrypt`), not a clear-text password",
    |s| s.starts_with('$') && s.len() >= 20 && s.chars().all(|c| c.is_ascii_alphanumeric() || "$./=".contains(c))
);

fn validate(config: &Config) -> Vec<Diagnostic> {
    let mut problems = Vec::new();
    let mut seen = BTreeSet::new();
    for (i, user) in config.user.users.iter().enumerate() {
        if !seen.insert(user.name.as_str()) {
            problems.push(
                Diagnostic::new(
                    "config",
                    format!("user {:?} is listed twice", user.name.as_str()),
                )
                .with_path(format!("user.users[{i}].name")),
            );
        }
        if user.name.as_str() == "root" {
            problems.push(
                Diagnostic::new("config", "root cannot be managed as a login user here")
                    .with_path(format!("user.users[{i}].name"))
                    .with_help("create a named user with sudo instead"),
            );
        }
        if user.sudo == SudoMode::Password && user.password_hash.is_none() {
            problems.push(
                Diagnostic::new(
                    "config",
                    "sudo: password needs a password_hash, or the user could never use sudo",
                )
                .with_path(format!("user.users[{i}].sudo"))
                .with_help("set password_hash (mkpasswd -m yescrypt) or use sudo: nopasswd"),
            );
        }
    }
    problems
}
