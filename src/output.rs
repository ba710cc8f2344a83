//! Writes artifacts under `--out`. Everything was rendered in memory first; each file is written
//! to a temporary name in its folder and renamed, so a reader never sees half a file and a failed
//! render leaves the previous output untouched.

use crate::targets::Artifact;
use anyhow::{Context, Result};
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Writes each artifact under `dir`, each atomically; creates folders as needed.
pub fn write_all(dir: &Path, artifacts: &[Artifact]) -> Result<()> {
    for artifact in artifacts {
        let path = dir.join(&artifact.path);
        let parent = path.parent().expect("artifact paths are relative files");
        fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        let temp = parent.join(format!(
            ".{}.tmp-{}",
            path.file_name().and_then(|n| n.to_str()).unwrap_or("out"),
            std::process::id()
        ));
        let result = (|| -> Result<()> {
            let mut file = fs::File::create(&temp)?;
            file.write_all(&artifact.bytes)?;
            let mode = if artifact.executable { 0o755 } else { 0o644 };
            file.set_permissions(fs::Permissions::from_mode(mode))?;
            file.sync_all()?;
            fs::rename(&temp, &path)?;
            Ok(())
        })();
        if result.is_err() {
            let _ = fs::remove_file(&temp);
        }
        result.with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
