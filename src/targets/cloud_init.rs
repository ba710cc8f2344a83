//! user-data.yaml: a `#cloud-config` that installs the bundle as /usr/local/sbin/phanes-setup and
//! runs it once, at first boot, after cloud-init has installed its own packages.
//!
//! For AWS (16 KiB) it is user-data.yaml.gz instead: the same `#cloud-config` without its
//! comments, with the bundle minified ([`crate::bundle::shrink::minify`]: the same program,
//! without comments and with short internal names) as plain text, gzip-compressed as a whole. cloud-init recognises gzip by its magic bytes and
//! decompresses before parsing, and one compression of the whole is smaller than the bundle's
//! gz+b64 inside YAML (base64 costs a third).

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

/// Where the gzip-compressed user-data goes under `--out` (`--provider aws`): binary, for
/// `aws ec2 run-instances --user-data fileb://user-data.yaml.gz` or Terraform's
/// `user_data_base64 = filebase64("user-data.yaml.gz")`.
pub const GZ_PATH: &str = "user-data.yaml.gz";

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
    /// Whether the user-data is submitted gzip-compressed as a whole ([`GZ_PATH`]).
    pub fn compressed(self) -> bool {
        self == Provider::Aws
    }

    /// The provider's name as its users write it, for messages.
    pub fn display_name(self) -> &'static str {
        match self {
            Provider::Hetzner => "Hetzner",
            Provider::Digitalocean => "DigitalOcean",
            Provider::Aws => "AWS",
            Provider::Generic => "generic",
        }
    }

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

/// The script as a YAML literal block under `content:`, each line indented by `indent` (past
/// the list item's keys).
fn literal(setup: &str, indent: &str) -> Payload {
    let literal: String = setup.lines().map(|l| format!("{indent}{l}\n")).collect();
    Payload {
        encoding: None,
        content: format!("|\n{}", literal.trim_end_matches('\n')),
    }
}

/// gzip as small as it gets (Zopfli: about 4% smaller than zlib's best, for some 0.2 s), for
/// the user-data AWS limits to 16 KiB. The header has no timestamp: reproducible.
pub fn gzip_smallest(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    zopfli::compress(
        zopfli::Options::default(),
        zopfli::Format::Gzip,
        bytes,
        &mut out,
    )
    .expect("writing to memory");
    out
}

/// Picks whichever is smaller: gz+b64, or the script as a YAML literal block.
fn payload(setup: &str) -> Payload {
    let compressed = base64::engine::general_purpose::STANDARD.encode(gzip(setup.as_bytes()));
    let literal = literal(setup, "   ");
    if compressed.len() < literal.content.len() {
        Payload {
            encoding: Some("gz+b64"),
            content: compressed,
        }
    } else {
        literal
    }
}

/// The bundle AWS's user-data carries: `setup` minified ([`crate::bundle::shrink::minify`]),
/// with the config's values and the profile's name and description as the user's text.
pub fn aws_bundle(c: &Compilation, setup: &str) -> Result<String> {
    let user_text = format!(
        "{} {} {}",
        serde_json::to_string(&c.config)?,
        c.profile.name,
        c.profile.description
    );
    Ok(crate::bundle::shrink::minify(setup, &user_text))
}

/// Renders user-data.yaml around the bundle and checks the provider limit.
pub fn artifact(c: &Compilation, setup: &str, provider: Provider) -> Result<Artifact> {
    // AWS: the bundle minified (no comments, short internal names; see shrink::minify) and no
    // comment in the YAML either: every byte counts against 16 KiB.
    let minified;
    let (setup, payload) = if provider.compressed() {
        minified = aws_bundle(c, setup)?;
        (minified.as_str(), literal(&minified, "  "))
    } else {
        (setup, payload(setup))
    };
    let manages_hostname =
        c.modules.iter().any(|m| m.name == "baseline") && c.config.baseline.hostname.is_some();
    let ctx = context! {
        version => crate::VERSION,
        profile => &c.profile.name,
        setup_sha256 => crate::compile::hex(&sha2::Sha256::digest(setup.as_bytes())),
        encoding => payload.encoding,
        content => payload.content,
        preserve_hostname => manages_hostname,
        compact => provider.compressed(),
    };
    let text = render::render(&c.env, "targets/user-data.yaml", ctx)?;
    let (path, bytes) = if provider.compressed() {
        (GZ_PATH, gzip_smallest(text.as_bytes()))
    } else {
        (PATH, text.into_bytes())
    };
    if let Some(limit) = provider.limit()
        && bytes.len() > limit
    {
        bail!(
            "{path} is {} bytes, over the {} limit of {limit} bytes by {}; leave out modules (--skip-module) or use a provider with a larger limit",
            bytes.len(),
            provider.display_name(),
            bytes.len() - limit
        );
    }
    Ok(Artifact {
        path: path.to_string(),
        bytes,
        executable: false,
    })
}

use sha2::Digest;
