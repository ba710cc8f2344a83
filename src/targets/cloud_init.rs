//! user-data.yaml: a `#cloud-config` that installs the bundle as /usr/local/sbin/phanes-setup and
//! runs it once, at first boot, after cloud-init has installed its own packages.

use super::Artifact;
use crate::compile::Compilation;
use crate::render;
use anyhow::{Result, bail};
use base64::Engine;
use clap::ValueEnum;
use flate2::{Compression, GzBuilder};
use minijinja::context;
use std::io::Write;

/// Where the user-data goes under `--out`.
pub const PATH: &str = "user-data.yaml";

/// Where the user-data is pasted; each provider limits its size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Provider {
    /// Hetzner Cloud: 32 KiB
    Hetzner,
    /// DigitalOcean: 64 KiB, plain text only
    Digitalocean,
    /// AWS EC2: 16 KiB before base64
    Aws,
    /// no provider limit is checked
    Generic,
}

impl Provider {
    /// The provider's documented limit in bytes of user-data as submitted.
    pub fn limit(self) -> Option<usize> {
        match self {
            Provider::Hetzner => Some(32 * 1024),
            Provider::Digitalocean => Some(64 * 1024),
            Provider::Aws => Some(16 * 1024),
            Provider::Generic => None,
        }
    }
}

/// How the bundle is carried inside `write_files`.
struct Payload {
    encoding: Option<&'static str>,
    content: String,
}

/// gzip with no timestamp and a fixed level, so the output is reproducible.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), Compression::best());
    encoder.write_all(bytes).expect("writing to memory");
    encoder.finish().expect("writing to memory")
}

/// Picks whichever is smaller: gz+b64, or the script as a YAML literal block.
fn payload(setup: &str) -> Payload {
    let compressed = base64::engine::general_purpose::STANDARD.encode(gzip(setup.as_bytes()));
    let literal: String = setup.lines().map(|l| format!("      {l}\n")).collect();
    if compressed.len() < literal.len() {
        Payload {
            encoding: Some("gz+b64"),
            content: compressed,
        }
    } else {
        Payload {
            encoding: None,
            content: format!("|\n{}", literal.trim_end_matches('\n')),
        }
    }
}

/// Renders user-data.yaml around the bundle and checks the provider limit.
pub fn artifact(c: &Compilation, setup: &str, provider: Provider) -> Result<Artifact> {
    let payload = payload(setup);
    let manages_hostname =
        c.modules.iter().any(|m| m.name == "baseline") && c.config.baseline.hostname.is_some();
    let ctx = context! {
        version => crate::VERSION,
        profile => &c.profile.name,
        setup_sha256 => crate::compile::hex(&sha2::Sha256::digest(setup.as_bytes())),
        encoding => payload.encoding,
        content => payload.content,
        preserve_hostname => manages_hostname,
    };
    let text = render::render(&c.env, "targets/user-data.yaml", ctx)?;
    if let Some(limit) = provider.limit()
        && text.len() > limit
    {
        bail!(
            "user-data is {} bytes, over the {provider:?} limit of {limit} bytes by {}; leave out modules (--skip-module) or use a provider with a larger limit",
            text.len(),
            text.len() - limit
        );
    }
    Ok(Artifact {
        path: PATH.to_string(),
        bytes: text.into_bytes(),
        executable: false,
    })
}

use sha2::Digest;
