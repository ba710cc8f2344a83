//! What every module that installs vendor software shares: the choice between the vendor's apt
//! repository and the distribution's packages, and the repository's location and key, which
//! users behind a mirror override. The bundle sets a repository up with the runtime's
//! `phanes_vendor_repo_check`/`phanes_vendor_repo_apply` (templates/runtime/55-vendor-repo.sh).

use crate::config::types::{HttpUrl, KeyFingerprint};
use serde::{Deserialize, Serialize};

/// Where a module's software comes from.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// The vendor's signed apt repository (key in /etc/apt/keyrings, deb822 source).
    #[default]
    Vendor,
    /// The distribution's own packages (older, but no third-party repository).
    Distro,
}

/// A vendor apt repository. Empty values mean the vendor's own, as the module's docs list.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
#[schemars(rename = "VendorRepository")]
pub struct Repository {
    /// Base URL of the repository (the `URIs:` of the deb822 source), used as-is on every
    /// release; set it to use a mirror. Not set: the vendor's.
    pub url: Option<HttpUrl>,
    /// URL of the repository's signing key (armored or binary OpenPGP). Not set: the vendor's.
    pub key_url: Option<HttpUrl>,
    /// Fingerprint the signing key must have (40 hex digits); the step fails, changing
    /// nothing, when the downloaded key does not have it. `null`: any OpenPGP public key is
    /// accepted, and HTTPS is the only guard. A mirror that signs with its own key needs its
    /// fingerprint here.
    pub key_fingerprint: Option<KeyFingerprint>,
}

impl Repository {
    /// A repository at the vendor's location, whose key must have `fingerprint`.
    pub fn pinned(fingerprint: &str) -> Self {
        Repository {
            url: None,
            key_url: None,
            key_fingerprint: Some(
                KeyFingerprint::try_from(fingerprint.to_string()).expect("valid built-in key"),
            ),
        }
    }
}

/// Distribution packages the runtime's vendor repository helper needs (download, verify).
pub const REPO_TOOLS: &[&str] = &["ca-certificates", "curl", "gpg"];

/// `REPO_TOOLS` when `source` is vendor, plus `distro` otherwise.
pub fn packages(source: Source, distro: &[&str]) -> Vec<String> {
    match source {
        Source::Vendor => REPO_TOOLS.iter().map(|p| p.to_string()).collect(),
        Source::Distro => distro.iter().map(|p| p.to_string()).collect(),
    }
}
