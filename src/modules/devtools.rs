//! devtools: git and the build tools always, and the language runtimes the config turns on:
//! Node.js from NodeSource's signed repository with a pinned major (or the distribution's),
//! Go from the official tarball, rustup with a pinned toolchain for one user, and uv. Every
//! download is pinned by version and sha256 per architecture and verified before anything is
//! unpacked (templates/runtime/57-download.sh); a version change in the config is installed on
//! the next run, and a failed download leaves the previous install as it was.

use super::ModuleSpec;
use super::vendor::{self, Repository, Source};
use crate::config::Config;
use crate::config::types::{AccountName, HttpUrl, PackageName, Ranged};
use crate::diagnostic::Diagnostic;
use serde::{Deserialize, Serialize};

/// The module's entry in the registry.
pub const MODULE: ModuleSpec = ModuleSpec {
    name: "devtools",
    description: "git, build tools, and pinned, verified language runtimes: Node.js, Go, Rust, uv",
    requires: &[],
    conflicts: &[],
    template: include_str!("../../templates/modules/devtools.sh.j2"),
    validate,
    packages,
    ports: super::no_ports,
};

/// NodeSource's repository signing key (nodesource/distributions; the key at
/// <https://deb.nodesource.com/gpgkey/nodesource-repo.gpg.key>).
pub const NODESOURCE_KEY_FINGERPRINT: &str = "6F71F525282841EEDAF851B42F59B5F99B1BE0B4";

/// Go releases whose official tarball checksums phanes carries: (version, amd64, arm64), from
/// <https://go.dev/dl/?mode=json>. The first is the default.
pub const GO_RELEASES: &[(&str, &str, &str)] = &[
    (
        "1.25.5",
        "9e9b755d63b36acf30c12a9a3fc379243714c1c6d3dd72861da637f336ebb35b",
        "b00b694903d126c588c378e72d3545549935d3982635ba3f7a964c9fa23fe3b9",
    ),
    (
        "1.24.6",
        "bbca37cc395c974ffa4893ee35819ad23ebb27426df87af92e93a9ec66ef8712",
        "124ea6033a8bf98aa9fbab53e58d134905262d45a022af3a90b73320f3c3afd5",
    ),
];

/// rustup-init releases phanes carries checksums for: (version, x86_64, aarch64), the
/// `rustup-init.sha256` files next to each binary. The first is the default.
pub const RUSTUP_RELEASES: &[(&str, &str, &str)] = &[(
    "1.28.2",
    "20a06e644b0d9bd2fbdbfd52d42540bdde820ea7df86e92e533c073da0cdd43c",
    "e3853c5a252fca15252d07cb23a1bdd9377a8c6f3efa01531109281ae47f841c",
)];

/// uv releases phanes carries checksums for: (version, x86_64, aarch64 linux-gnu tarballs),
/// the `.sha256` files of the GitHub release. The first is the default.
pub const UV_RELEASES: &[(&str, &str, &str)] = &[(
    "0.12.1",
    "90b2f223fb69d19db49e117da601f64978593417988530aa733d456141b4bcbb",
    "769d373e146692c639b5fbaae33b331c297a32e03d30448772051902df52bbf4",
)];

/// Distribution packages every devtools install gets.
pub const BASE_PACKAGES: &[&str] = &[
    "git",
    "build-essential",
    "pkg-config",
    "ca-certificates",
    "curl",
];

fn packages(config: &Config) -> Vec<String> {
    let settings = &config.devtools;
    let mut all: Vec<String> = BASE_PACKAGES.iter().map(|p| p.to_string()).collect();
    if settings.node.enabled {
        all.extend(vendor::packages(settings.node.source, &["nodejs", "npm"]));
    }
    for package in &settings.packages {
        all.push(package.to_string());
    }
    let mut seen = Vec::new();
    all.retain(|p| {
        let new = !seen.contains(p);
        seen.push(p.clone());
        new
    });
    all
}

/// Settings of the `devtools` section.
#[derive(Clone, Debug, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
#[schemars(rename = "DevtoolsSettings")]
pub struct Settings {
    /// More distribution packages to install besides git, build-essential, pkg-config,
    /// ca-certificates and curl (which are always installed), like `[libssl-dev, jq]`.
    pub packages: Vec<PackageName>,
    /// Node.js (off unless enabled).
    pub node: Node,
    /// Go from the official tarball, in /usr/local/go (off unless enabled).
    pub go: Go,
    /// Rust through rustup, for one user (off unless enabled).
    pub rust: Rust,
    /// uv, Astral's Python package and project manager, which also installs Python versions
    /// (`uv python install 3.13`); in /usr/local/bin (off unless enabled).
    pub uv: Uv,
}

/// Node.js settings.
#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
#[schemars(rename = "DevtoolsNode")]
pub struct Node {
    /// Install Node.js.
    pub enabled: bool,
    /// `vendor`: nodejs (with npm) from NodeSource's repository for `major`, pinned there
    /// (/etc/apt/preferences.d/phanes-nodesource), so a change of `major` installs that major
    /// on the next run, also downwards. `distro`: the release's nodejs and npm (Debian 12:
    /// 18, Debian 13: 20); `major` is not used.
    pub source: Source,
    /// Node.js major version from NodeSource, like 22 or 24 (even majors are the LTS lines).
    pub major: Ranged<18, 40>,
    /// NodeSource's apt repository (source: vendor). Not set: URL
    /// `https://deb.nodesource.com/node_MAJOR.x` (a mirror's URL is used as-is, so it must serve
    /// the configured major), key `https://deb.nodesource.com/gpgkey/nodesource-repo.gpg.key`,
    /// suite nodistro, component main.
    pub repository: Repository,
}

impl Default for Node {
    fn default() -> Self {
        Node {
            enabled: false,
            source: Source::Vendor,
            major: Ranged(24),
            repository: Repository::pinned(NODESOURCE_KEY_FINGERPRINT),
        }
    }
}

/// The sha256 of a download for each architecture phanes supports.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
#[schemars(rename = "DevtoolsChecksums")]
pub struct Checksums {
    /// sha256 of the amd64 (x86_64) download. `null`: the step fails on amd64.
    pub amd64: Option<Sha256>,
    /// sha256 of the arm64 (aarch64) download. `null`: the step fails on arm64.
    pub arm64: Option<Sha256>,
}

impl Checksums {
    /// The built-in checksums of `version` in `releases` (version, amd64, arm64), if known.
    pub fn known(version: &str, releases: &[(&str, &str, &str)]) -> Option<Checksums> {
        let (_, amd64, arm64) = releases.iter().find(|(v, _, _)| *v == version)?;
        Some(Checksums {
            amd64: Some(Sha256(amd64.to_string())),
            arm64: Some(Sha256(arm64.to_string())),
        })
    }

    /// The built-in checksums of the first (default) release in `releases`.
    fn default_of(releases: &[(&str, &str, &str)]) -> Checksums {
        Checksums::known(releases[0].0, releases).expect("the default release is known")
    }
}

/// Go settings.
#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
#[schemars(rename = "DevtoolsGo")]
pub struct Go {
    /// Install Go in /usr/local/go (its bin on every login shell's PATH through
    /// /etc/profile.d/phanes-go.sh).
    pub enabled: bool,
    /// Go version, like 1.25.5. A change replaces /usr/local/go on the next run.
    pub version: GoVersion,
    /// sha256 of `go<version>.linux-<arch>.tar.gz`, per architecture (listed on go.dev/dl).
    /// The defaults are those of the default version; set them with the version (phanes
    /// refuses a version with another version's checksums, and names the ones it knows). The
    /// map you write replaces the defaults whole: an architecture left out has no checksum.
    pub sha256: Checksums,
    /// Where the tarballs are downloaded from: `<url>/go<version>.linux-<arch>.tar.gz`. Set it
    /// to use a mirror.
    pub url: HttpUrl,
}

impl Default for Go {
    fn default() -> Self {
        Go {
            enabled: false,
            version: GoVersion(GO_RELEASES[0].0.into()),
            sha256: Checksums::default_of(GO_RELEASES),
            url: HttpUrl::try_from("https://go.dev/dl".to_string()).expect("valid URL"),
        }
    }
}

/// Rust settings.
#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
#[schemars(rename = "DevtoolsRust")]
pub struct Rust {
    /// Install rustup and a toolchain for `user`.
    pub enabled: bool,
    /// The account that gets rustup (in ~/.rustup and ~/.cargo, with ~/.cargo/bin added to
    /// its PATH by rustup). Must be in user.users.
    pub user: Option<AccountName>,
    /// The default toolchain: `stable`, `beta`, `nightly`, a release like 1.91.1 or 1.91, or a
    /// dated channel like nightly-2025-11-01. A change installs it and makes it the default on
    /// the next run. Toolchains come from static.rust-lang.org through rustup, which verifies
    /// them against their signed-over-HTTPS manifests.
    pub toolchain: Toolchain,
    /// rustup profile for new toolchains: `minimal` (rustc, cargo, rust-std) or `default`
    /// (adds clippy, rustfmt and the docs).
    pub profile: RustProfile,
    /// rustup-init version, downloaded once to install rustup (rustup then updates itself).
    pub rustup_version: ToolVersion,
    /// sha256 of rustup-init per architecture (the `rustup-init.sha256` beside it). The
    /// defaults are those of the default version; set them with the version (the map you
    /// write replaces them whole).
    pub sha256: Checksums,
    /// Where rustup-init is downloaded from: `<url>/<version>/<target>/rustup-init`.
    pub url: HttpUrl,
}

impl Default for Rust {
    fn default() -> Self {
        Rust {
            enabled: false,
            user: None,
            toolchain: Toolchain("stable".into()),
            profile: RustProfile::Minimal,
            rustup_version: ToolVersion(RUSTUP_RELEASES[0].0.into()),
            sha256: Checksums::default_of(RUSTUP_RELEASES),
            url: HttpUrl::try_from("https://static.rust-lang.org/rustup/archive".to_string())
                .expect("valid URL"),
        }
    }
}

/// rustup's installation profiles.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum RustProfile {
    /// rustc, cargo and the standard library.
    #[default]
    Minimal,
    /// Also clippy, rustfmt and the documentation.
    Default,
}

/// uv settings.
#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
#[schemars(rename = "DevtoolsUv")]
pub struct Uv {
    /// Install uv and uvx in /usr/local/bin.
    pub enabled: bool,
    /// uv version, like 0.12.1. A change replaces both binaries on the next run.
    pub version: ToolVersion,
    /// sha256 of `uv-<target>.tar.gz` per architecture (the `.sha256` beside it on the
    /// release). The defaults are those of the default version; set them with the version (the
    /// map you write replaces them whole).
    pub sha256: Checksums,
    /// Where the release tarballs are downloaded from: `<url>/<version>/uv-<target>.tar.gz`.
    pub url: HttpUrl,
}

impl Default for Uv {
    fn default() -> Self {
        Uv {
            enabled: false,
            version: ToolVersion(UV_RELEASES[0].0.into()),
            sha256: Checksums::default_of(UV_RELEASES),
            url: HttpUrl::try_from("https://github.com/astral-sh/uv/releases/download".to_string())
                .expect("valid URL"),
        }
    }
}

fn is_number(s: &str) -> bool {
    (1..=4).contains(&s.len())
        && s.chars().all(|c| c.is_ascii_digit())
        && (s == "0" || !s.starts_with('0'))
}

crate::config::types::validated_string!(
    /// A sha256 checksum: 64 hex digits.
    Sha256,
    "a sha256 checksum: 64 hex digits",
    |s| s.len() == 64 && s.chars().all(|c| c.is_ascii_hexdigit())
);

crate::config::types::validated_string!(
    /// A Go release: 1.MINOR, 1.MINOR.PATCH, or a pre-release like 1.26rc1.
    GoVersion,
    "a Go version like 1.25.5 (or 1.26rc1)",
    |s| {
        let (release, pre) = match s.find(['r', 'b']) {
            Some(at) => s.split_at(at),
            None => (s, ""),
        };
        let pre_ok = pre.is_empty()
            || ["rc", "beta"]
                .iter()
                .any(|p| pre.strip_prefix(p).is_some_and(is_number));
        let parts: Vec<&str> = release.split('.').collect();
        pre_ok
            && parts.first() == Some(&"1")
            && (2..=3).contains(&parts.len())
            && parts.iter().all(|p| is_number(p))
    }
);

crate::config::types::validated_string!(
    /// A release version MAJOR.MINOR.PATCH.
    ToolVersion,
    "a version like 1.28.2 (three numbers separated by dots)",
    |s| {
        let parts: Vec<&str> = s.split('.').collect();
        parts.len() == 3 && parts.iter().all(|p| is_number(p))
    }
);

crate::config::types::validated_string!(
    /// A rustup toolchain name.
    Toolchain,
    "a Rust toolchain: stable, beta, nightly, a release like 1.91.1 or 1.91, or a channel with a date like nightly-2025-11-01",
    |s| {
        let (channel, date) = match s.split_once('-') {
            Some((c, d)) => (c, Some(d)),
            None => (s, None),
        };
        let channel_ok = ["stable", "beta", "nightly"].contains(&channel) || {
            let parts: Vec<&str> = channel.split('.').collect();
            parts.first() == Some(&"1")
                && (2..=3).contains(&parts.len())
                && parts.iter().all(|p| is_number(p))
        };
        let date_ok = date.is_none_or(|d| {
            let parts: Vec<&str> = d.split('-').collect();
            parts.len() == 3
                && [4, 2, 2]
                    .iter()
                    .zip(&parts)
                    .all(|(n, p)| p.len() == *n && p.chars().all(|c| c.is_ascii_digit()))
        });
        channel_ok && date_ok
    }
);

fn validate(config: &Config) -> Vec<Diagnostic> {
    let settings = &config.devtools;
    let mut problems = Vec::new();
    if settings.rust.enabled {
        match &settings.rust.user {
            None => problems.push(
                Diagnostic::new("config", "Rust is enabled, but for no user")
                    .with_path("devtools.rust.user")
                    .with_help("set devtools.rust.user to an account listed in user.users"),
            ),
            Some(user) if !config.user.users.iter().any(|u| u.name == *user) => problems.push(
                Diagnostic::new(
                    "config",
                    format!("{user} is not in user.users, so phanes would not create the account"),
                )
                .with_path("devtools.rust.user")
                .with_help(format!("add an entry `- name: {user}` under user.users")),
            ),
            Some(_) => {}
        }
    }
    let downloads = [
        (
            "go",
            "go",
            settings.go.enabled,
            settings.go.version.as_str(),
            &settings.go.sha256,
            GO_RELEASES,
        ),
        (
            "rust",
            "rustup-init",
            settings.rust.enabled,
            settings.rust.rustup_version.as_str(),
            &settings.rust.sha256,
            RUSTUP_RELEASES,
        ),
        (
            "uv",
            "uv",
            settings.uv.enabled,
            settings.uv.version.as_str(),
            &settings.uv.sha256,
            UV_RELEASES,
        ),
    ];
    for (key, what, enabled, version, sums, releases) in downloads {
        if !enabled {
            continue;
        }
        let path = format!("devtools.{key}.sha256");
        let help = match Checksums::known(version, releases) {
            Some(Checksums {
                amd64: Some(amd64),
                arm64: Some(arm64),
            }) => format!("for {what} {version}: amd64: {amd64}, arm64: {arm64}"),
            _ => {
                format!("set {path}.amd64 and .arm64 to the sha256 of {what} {version}'s downloads")
            }
        };
        if sums.amd64.is_none() && sums.arm64.is_none() {
            problems.push(
                Diagnostic::new(
                    "config",
                    format!(
                        "no checksum for {what} {version}: phanes downloads nothing unverified"
                    ),
                )
                .with_path(path)
                .with_help(help),
            );
        } else if let Some((other, amd64, arm64)) = releases.iter().find_map(|(v, a, b)| {
            let same = |sum: &Option<Sha256>, known: &str| {
                sum.as_ref().is_some_and(|s| s.as_str() == known)
            };
            let (amd64, arm64) = (same(&sums.amd64, a), same(&sums.arm64, b));
            (*v != version && (amd64 || arm64)).then_some((v, amd64, arm64))
        }) {
            let which = match (amd64, arm64) {
                (true, true) => format!("these are the checksums of {what} {other}"),
                (true, false) => format!("amd64 is the checksum of {what} {other}"),
                _ => format!("arm64 is the checksum of {what} {other}"),
            };
            problems.push(
                Diagnostic::new(
                    "config",
                    format!(
                        "{which}, but the version is {version}: the download would fail its check"
                    ),
                )
                .with_path(path)
                .with_help(help),
            );
        }
    }
    if settings.node.source == Source::Distro
        && settings.node.repository != Repository::pinned(NODESOURCE_KEY_FINGERPRINT)
    {
        problems.push(
            Diagnostic::new(
                "config",
                "devtools.node.repository is only used with source: vendor",
            )
            .with_path("devtools.node.repository")
            .with_help("remove it, or set devtools.node.source: vendor"),
        );
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok<T: TryFrom<String>>(s: &str) -> bool {
        T::try_from(s.to_string()).is_ok()
    }

    #[test]
    fn version_shapes() {
        for good in ["1.25.5", "1.24", "1.26rc1", "1.26beta2"] {
            assert!(ok::<GoVersion>(good), "{good}");
        }
        for bad in [
            "2.0", "1.25.5.1", "1.025", "go1.25", "1.25rc", "1.25;id", "", "1.x",
        ] {
            assert!(!ok::<GoVersion>(bad), "{bad}");
        }
        for good in ["stable", "nightly", "1.91.1", "1.91", "nightly-2025-11-01"] {
            assert!(ok::<Toolchain>(good), "{good}");
        }
        for bad in [
            "latest",
            "1.91.1.1",
            "nightly-2025-1-01",
            "stable;id",
            "2.0",
        ] {
            assert!(!ok::<Toolchain>(bad), "{bad}");
        }
        assert!(ok::<ToolVersion>("0.12.1"));
        assert!(!ok::<ToolVersion>("0.12"));
        assert!(ok::<Sha256>(GO_RELEASES[0].1));
        assert!(!ok::<Sha256>(&GO_RELEASES[0].1[1..]));
        assert!(!ok::<Sha256>(&format!("{}g", &GO_RELEASES[0].1[1..])));
    }

    #[test]
    fn defaults_are_the_default_release_checksums() {
        let go = Go::default();
        assert_eq!(go.version.as_str(), GO_RELEASES[0].0);
        assert_eq!(go.sha256.amd64.unwrap().as_str(), GO_RELEASES[0].1);
        assert_eq!(Checksums::known("1.99.0", GO_RELEASES), None);
        assert!(validate(&Config::default()).is_empty());
    }
}
