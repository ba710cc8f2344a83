//! bundle.tar.gz, manifest.json and SHA256SUMS: what was shipped, for audits and pinning.
//! All byte-for-byte reproducible: sorted entries, fixed mtime/uid/mode, gzip without a time.

use super::Artifact;
use crate::bundle::Section;
use crate::compile::{Compilation, hex};
use anyhow::Result;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// manifest.json: version, profile, modules, config hash and the hash of every artifact so far.
pub fn manifest(c: &Compilation, artifacts: &[Artifact]) -> Result<String> {
    let files: BTreeMap<&str, String> = artifacts
        .iter()
        .map(|a| (a.path.as_str(), hex(&Sha256::digest(&a.bytes))))
        .collect();
    let manifest = serde_json::json!({
        "phanes_version": crate::VERSION,
        "profile": c.profile.name,
        "profile_lineage": c.profile.lineage,
        "modules": c.modules.iter().map(|m| m.name).collect::<Vec<_>>(),
        "config_sha256": c.config_sha256,
        "files": files,
    });
    Ok(serde_json::to_string_pretty(&manifest)? + "\n")
}

/// bundle.tar.gz with setup.sh, each module's section and the manifest.
pub fn tarball(setup: &str, sections: &[Section], manifest: &str) -> Result<Artifact> {
    let mut entries: Vec<(String, &[u8], u32)> = vec![
        ("phanes/setup.sh".into(), setup.as_bytes(), 0o755),
        ("phanes/manifest.json".into(), manifest.as_bytes(), 0o644),
    ];
    for (i, section) in sections.iter().enumerate() {
        entries.push((
            format!("phanes/modules/{:02}-{}.sh", i + 1, section.module),
            section.text.as_bytes(),
            0o644,
        ));
    }
    entries.sort();
    let mut builder = tar::Builder::new(Vec::new());
    builder.mode(tar::HeaderMode::Deterministic);
    for (path, bytes, mode) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(mode);
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        header.set_entry_type(tar::EntryType::Regular);
        builder.append_data(&mut header, &path, bytes)?;
    }
    let tar = builder.into_inner()?;
    Ok(Artifact {
        path: "bundle.tar.gz".into(),
        bytes: super::cloud_init::gzip(&tar),
        executable: false,
    })
}

/// SHA256SUMS in `sha256sum -c` format, sorted by path.
pub fn sha256sums(artifacts: &[Artifact]) -> Artifact {
    let mut lines: Vec<String> = artifacts
        .iter()
        .map(|a| format!("{}  {}\n", hex(&Sha256::digest(&a.bytes)), a.path))
        .collect();
    lines.sort_by(|a, b| a[66..].cmp(&b[66..]));
    Artifact::text("SHA256SUMS", lines.concat())
}
