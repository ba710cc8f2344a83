//! user-data.yaml: a `#cloud-config` that installs the bundle as /usr/local/sbin/phanes-setup and
//! runs it once, at first boot, after cloud-init has installed its own packages.
//!
//! For AWS (16 KiB) it is user-data.yaml.gz instead: the same `#cloud-config` without its
//! comments, with the bundle minified ([`crate::bundle::shrink::minify`]: the same program,
//! without comments and with short internal names) as plain text, gzip-compressed as a whole. cloud-init recognises gzip by its magic bytes and
//! decompresses before parsing, and one compression of the whole is smaller than the bundle's
//! gz+b64 inside YAML (base64 costs a third).
//!
//! With `--bundle-url` it carries no bundle at all: a small runcmd downloads setup.sh from where
//! the user put it, checks its sha256 against the one rendered here and only then installs and
//! runs it. Any profile fits any provider that way (AWS's 16 KiB included); it is how Ignition
//! (`config.replace` with a `verification.hash`) answers the same limit.

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

/// Where the server downloads setup.sh at first boot (`--bundle-url`): an http(s) URL of
/// printable ASCII with none of the characters RFC 3986 excludes, so it is the same text in
/// YAML, in a shell argument and in a comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleUrl(String);

impl BundleUrl {
    /// The URL as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for BundleUrl {
    type Err = String;

    fn from_str(url: &str) -> Result<Self, String> {
        let Some(rest) = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"))
        else {
            return Err(format!(
                "{url:?} is not an http:// or https:// URL (the server downloads setup.sh from it at first boot; for S3, a presigned https URL)"
            ));
        };
        if rest.is_empty() || rest.starts_with('/') {
            return Err(format!("{url:?} has no host"));
        }
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        if authority.contains('@') {
            return Err(format!(
                "{url:?} carries a user name or password, which the download does not send; use a URL that needs none (for S3, a presigned one)"
            ));
        }
        if let Some(bad) = url
            .chars()
            .find(|c| !c.is_ascii_graphic() || "\"<>\\^`{|}".contains(*c))
        {
            return Err(format!(
                "{url:?} contains {bad:?}, which a URL cannot hold unencoded (percent-encode it)"
            ));
        }
        Ok(BundleUrl(url.to_string()))
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

/// Renders user-data.yaml around the bundle (or, with `bundle_url`, around its download) and
/// checks the provider limit.
pub fn artifact(
    c: &Compilation,
    setup: &str,
    provider: Provider,
    bundle_url: Option<&BundleUrl>,
) -> Result<Artifact> {
    // A fetched bundle leaves user-data small: plain YAML for every provider.
    let compressed = provider.compressed() && bundle_url.is_none();
    // AWS: the bundle minified (no comments, short internal names; see shrink::minify) and no
    // comment in the YAML either: every byte counts against 16 KiB.
    let minified;
    let (setup, payload) = if compressed {
        minified = aws_bundle(c, setup)?;
        (minified.as_str(), Some(literal(&minified, "  ")))
    } else if bundle_url.is_some() {
        (setup, None)
    } else {
        (setup, Some(payload(setup)))
    };
    let manages_hostname =
        c.modules.iter().any(|m| m.name == "baseline") && c.config.baseline.hostname.is_some();
    let ctx = context! {
        version => crate::VERSION,
        profile => &c.profile.name,
        setup_sha256 => crate::compile::hex(&sha2::Sha256::digest(setup.as_bytes())),
        encoding => payload.as_ref().and_then(|p| p.encoding),
        content => payload.as_ref().map(|p| p.content.as_str()),
        preserve_hostname => manages_hostname,
        compact => compressed,
        fetch_url => bundle_url.map(BundleUrl::as_str),
    };
    let text = render::render(&c.env, "targets/user-data.yaml", ctx)?;
    let (path, bytes) = if compressed {
        (GZ_PATH, gzip_smallest(text.as_bytes()))
    } else {
        (PATH, text.into_bytes())
    };
    if let Some(limit) = provider.limit()
        && bytes.len() > limit
    {
        bail!(
            "{path} is {} bytes, over the {} limit of {limit} bytes by {}; put setup.sh where the server can download it and pass its URL with --bundle-url (user-data then pins its sha256 instead of carrying it), leave out modules (--skip-module), or use a provider with a larger limit",
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
