//! packer/phanes.pkr.hcl: one `build` block that uploads the bundle, runs it, proves with
//! `--dry-run` that it converged, then cleans the machine for imaging. Valid for Packer 1.6.6
//! (no `required_plugins`, no file `content`) and for current Packer.

use super::Artifact;
use crate::compile::Compilation;
use crate::render;
use anyhow::Result;
use minijinja::context;
use std::str::FromStr;

/// Where the fragment goes under `--out`.
pub const PATH: &str = "packer/phanes.pkr.hcl";
/// The copy of setup.sh the fragment uploads, found through `${path.root}`.
pub const SETUP_PATH: &str = "packer/setup.sh";

/// The user's Packer source as `TYPE.NAME`, e.g. `hcloud.base` or `amazon-ebs.web`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceName(String);

impl FromStr for SourceName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let ident = |p: &str| {
            !p.is_empty()
                && p.starts_with(|c: char| c.is_ascii_alphabetic())
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        };
        match s.split_once('.') {
            Some((kind, name)) if ident(kind) && ident(name) => Ok(SourceName(s.to_string())),
            _ => Err(format!(
                "{s:?} is not a Packer source: expected TYPE.NAME like hcloud.base or amazon-ebs.web"
            )),
        }
    }
}

impl Default for SourceName {
    fn default() -> Self {
        SourceName("null.phanes".to_string())
    }
}

/// Renders the fragment and the copy of setup.sh it uploads.
pub fn artifacts(c: &Compilation, setup: &str, source: &SourceName) -> Result<Vec<Artifact>> {
    let ctx = context! {
        version => crate::VERSION,
        profile => &c.profile.name,
        source => &source.0,
    };
    let text = render::render(&c.env, "targets/phanes.pkr.hcl", ctx)?;
    Ok(vec![
        Artifact {
            path: PATH.to_string(),
            bytes: text.into_bytes(),
            executable: false,
        },
        Artifact {
            path: SETUP_PATH.to_string(),
            bytes: setup.as_bytes().to_vec(),
            executable: true,
        },
    ])
}
