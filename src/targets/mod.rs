//! The artifacts: each target wraps the same bundle for its consumer. One file per target.

pub mod archive;
pub mod cloud_init;
pub mod packer;
pub mod shell;

use crate::bundle;
use crate::compile::Compilation;
use anyhow::Result;
use clap::ValueEnum;

/// One output file, relative to `--out`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    /// Relative path under `--out`.
    pub path: String,
    /// The content.
    pub bytes: Vec<u8>,
    /// Written with mode 0755 instead of 0644.
    pub executable: bool,
}

impl Artifact {
    fn text(path: &str, text: String) -> Self {
        Artifact {
            path: path.to_string(),
            bytes: text.into_bytes(),
            executable: false,
        }
    }
}

/// Which artifact `--format` picks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// setup.sh, the bash bundle
    Shell,
    /// user-data.yaml, the #cloud-config (user-data.yaml.gz with --provider aws and no --bundle-url)
    CloudInit,
    /// packer/phanes.pkr.hcl and the setup.sh it uploads
    Packer,
    /// bundle.tar.gz, manifest.json and SHA256SUMS
    Archive,
}

/// Options that shape the targets.
#[derive(Debug, Clone)]
pub struct TargetOptions {
    /// Whose user-data size limit to check.
    pub provider: cloud_init::Provider,
    /// Where the server downloads setup.sh at first boot, instead of user-data carrying it.
    pub bundle_url: Option<cloud_init::BundleUrl>,
    /// The Packer source the fragment builds.
    pub packer_source: packer::SourceName,
}

/// Renders every artifact, in memory. Nothing is written until all of them succeeded.
pub fn render_all(c: &Compilation, options: &TargetOptions) -> Result<Vec<Artifact>> {
    let sections = bundle::sections(c)?;
    let setup = bundle::setup_sh(c, &sections)?;
    let mut artifacts = vec![shell::artifact(&setup)];
    artifacts.push(cloud_init::artifact(
        c,
        &setup,
        options.provider,
        options.bundle_url.as_ref(),
    )?);
    artifacts.extend(packer::artifacts(c, &setup, &options.packer_source)?);
    let manifest = archive::manifest(c, &artifacts)?;
    let tarball = archive::tarball(&setup, &sections, &manifest)?;
    artifacts.push(Artifact::text("manifest.json", manifest));
    artifacts.push(tarball);
    artifacts.push(archive::sha256sums(&artifacts));
    Ok(artifacts)
}

/// The artifacts one `--format` stands for.
pub fn select(artifacts: Vec<Artifact>, format: Format) -> Vec<Artifact> {
    let wanted = |path: &str| match format {
        Format::Shell => path == shell::PATH,
        Format::CloudInit => path == cloud_init::PATH || path == cloud_init::GZ_PATH,
        Format::Packer => path.starts_with("packer/"),
        Format::Archive => ["bundle.tar.gz", "manifest.json", "SHA256SUMS"].contains(&path),
    };
    artifacts.into_iter().filter(|a| wanted(&a.path)).collect()
}
