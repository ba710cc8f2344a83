//! setup.sh: the bundle itself, for `sudo bash setup.sh` over SSH.

use super::Artifact;

/// Where the bundle goes under `--out`.
pub const PATH: &str = "setup.sh";

/// The bundle as an executable artifact.
pub fn artifact(setup: &str) -> Artifact {
    Artifact {
        path: PATH.to_string(),
        bytes: setup.as_bytes().to_vec(),
        executable: true,
    }
}
