//! postgres: PostgreSQL of a chosen major from PGDG (or the release's own), its listen address
//! and port in a conf.d file phanes owns, scram-sha-256 pg_hba rules in a managed block, and
//! roles and databases created idempotently. Role passwords are generated on the server into
//! /etc/phanes/secrets/ unless the config gives them; SQL reaches psql on stdin, names are
//! validated and double-quoted, passwords single-quoted, so nothing in them can end the quote.

use super::ModuleSpec;
use super::vendor::{self, Repository, Source};
use crate::config::Config;
use crate::config::types::{IpNetwork, Password, PgIdentifier, Port, Ranged};
use crate::diagnostic::Diagnostic;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// The module's entry in the registry.
pub const MODULE: ModuleSpec = ModuleSpec {
    name: "postgres",
    description: "PostgreSQL with scram-sha-256 access rules, roles and databases",
    requires: &[],
    conflicts: &[],
    template: include_str!("../../templates/modules/postgres.sh.j2"),
    validate,
    packages,
    ports: super::no_ports,
};

/// The distribution's server package, or the repository tools for PGDG; python3 for role checks.
fn packages(config: &Config) -> Vec<String> {
    let settings = &config.postgres;
    let server = server_package(settings);
    let mut list = vendor::packages(settings.source, &[server.as_str()]);
    if settings.source == Source::Distro {
        list.push("postgresql-common".into());
    }
    // The role checks verify passwords against PostgreSQL's SCRAM verifiers with python3 (in
    // every cloud image already, as cloud-init's interpreter).
    if !settings.roles.is_empty() {
        list.push("python3".into());
    }
    list
}

/// `postgresql-17`, or the `postgresql` metapackage (the newest major) when no version is set.
pub fn server_package(settings: &Settings) -> String {
    match settings.version {
        Some(v) => format!("postgresql-{}", v.0),
        None => "postgresql".into(),
    }
}

/// The PGDG signing key (www.postgresql.org/media/keys/ACCC4CF8.asc).
pub const KEY_FINGERPRINT: &str = "B97B0AFCAA1A47F044F244A07FCC7D46ACCC4CF8";

/// Settings of the `postgres` section.
#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
#[schemars(rename = "PostgresSettings")]
pub struct Settings {
    /// Major version, like 17. Not set: PGDG's newest (vendor), or the release's own
    /// (distro: Debian 12 has 15, Debian 13 17, Ubuntu 22.04 14, Ubuntu 24.04 16; with
    /// `source: distro` a version must be the release's).
    pub version: Option<Ranged<10, 99>>,
    /// `vendor`: the PostgreSQL project's apt repository (apt.postgresql.org, every
    /// supported major). `distro`: the release's packages.
    pub source: Source,
    /// The PGDG apt repository (source: vendor). Not set: URL
    /// `https://apt.postgresql.org/pub/repos/apt`, key
    /// `https://www.postgresql.org/media/keys/ACCC4CF8.asc`, suite CODENAME-pgdg, component main.
    pub repository: Repository,
    /// listen_addresses: `localhost`, IP addresses of this server, or `*` (every interface;
    /// open the port with security.firewall.allow and add hba rules for remote clients).
    pub listen_addresses: Vec<ListenAddress>,
    /// TCP port (a change restarts PostgreSQL).
    pub port: Port,
    /// pg_hba.conf rules phanes adds (in a `# BEGIN phanes postgres` block after the
    /// distribution's rules, which already let local roles in with their password):
    /// `host DATABASE USER ADDRESS scram-sha-256`.
    pub hba: Vec<HbaRule>,
    /// Login roles. A role without `password` gets a generated one in
    /// /etc/phanes/secrets/postgres-role-NAME (read it there as root).
    pub roles: Vec<Role>,
    /// Databases, each owned by a role.
    pub databases: Vec<Database>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            version: None,
            source: Source::Vendor,
            repository: Repository::pinned(KEY_FINGERPRINT),
            listen_addresses: vec![ListenAddress("localhost".into())],
            port: Ranged(5432),
            hba: Vec::new(),
            roles: Vec::new(),
            databases: Vec::new(),
        }
    }
}

/// One `host` line of pg_hba.conf, with scram-sha-256.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HbaRule {
    /// A database name, or `all`.
    pub database: HbaName,
    /// A role name, or `all`.
    pub user: HbaName,
    /// Client address or network, like 10.0.0.0/8 (an address alone means just that host).
    pub address: IpNetwork,
}

/// A login role.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Role {
    /// Its name: lowercase letters, digits and '_'.
    pub name: PgIdentifier,
    /// The role's password. Not set: generated on the server (recommended: a password here
    /// ends up in cloud-init user-data, which the provider's metadata service serves to every
    /// process on the server). A change is applied on the next run.
    #[serde(default)]
    pub password: Option<Password>,
}

/// A database and its owner.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Database {
    /// Its name: lowercase letters, digits and '_'.
    pub name: PgIdentifier,
    /// The owning role; must be in postgres.roles.
    pub owner: PgIdentifier,
}

crate::config::types::validated_string!(
    /// A database or role name in pg_hba.conf: any existing one (`postgres` too, unlike the
    /// names phanes creates), or one of pg_hba's keywords (`all`, `sameuser`, `samerole`,
    /// `replication`), which mean what PostgreSQL documents.
    HbaName,
    "all, or a PostgreSQL name (lowercase letters, digits and '_', starting with a letter or '_')",
    |s| s.len() <= 63
        && s.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
);

crate::config::types::validated_string!(
    /// `localhost`, `*` or an IP address.
    ListenAddress,
    "localhost, * or an IP address",
    |s| s == "localhost" || s == "*" || s.parse::<std::net::IpAddr>().is_ok()
);

fn validate(config: &Config) -> Vec<Diagnostic> {
    let settings = &config.postgres;
    let mut problems = Vec::new();
    if settings.listen_addresses.is_empty() {
        problems.push(
            Diagnostic::new("config", "listen_addresses is empty: PostgreSQL would only take local socket connections, and phanes' checks use TCP")
                .with_path("postgres.listen_addresses")
                .with_help("use [localhost]"),
        );
    }
    let mut roles = BTreeSet::new();
    for (i, role) in settings.roles.iter().enumerate() {
        if !roles.insert(role.name.as_str()) {
            problems.push(
                Diagnostic::new("config", format!("role {} is listed twice", role.name))
                    .with_path(format!("postgres.roles[{i}].name")),
            );
        }
    }
    let mut databases = BTreeSet::new();
    for (i, db) in settings.databases.iter().enumerate() {
        if !databases.insert(db.name.as_str()) {
            problems.push(
                Diagnostic::new("config", format!("database {} is listed twice", db.name))
                    .with_path(format!("postgres.databases[{i}].name")),
            );
        }
        if !roles.contains(db.owner.as_str()) {
            problems.push(
                Diagnostic::new(
                    "config",
                    format!("owner {} is not in postgres.roles", db.owner),
                )
                .with_path(format!("postgres.databases[{i}].owner"))
                .with_help(format!("add `- name: {}` under postgres.roles", db.owner)),
            );
        }
    }
    if settings.source == Source::Distro
        && settings.repository != Repository::pinned(KEY_FINGERPRINT)
    {
        problems.push(
            Diagnostic::new(
                "config",
                "postgres.repository is only used with source: vendor",
            )
            .with_path("postgres.repository")
            .with_help("remove it, or set postgres.source: vendor"),
        );
    }
    problems
}
