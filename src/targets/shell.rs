//! setup.sh: the bundle itself, for `sudo bash setup.sh` over SSH.

use super::Artifact;

pub const PATH: &str = "setup.sh";

pub fn artifact(setup: &str) -> Artifact {
    Artifact {
        path: PATH.to_string(),
        bytes: setup.as_bytes().to_vec(),
        executable: true,
    }
}
