//! swap: a swap file of the configured size, its fstab entry, and vm.swappiness.

use super::ModuleSpec;
use crate::config::Config;
use crate::config::types::{AbsolutePath, Ranged, Size};
use crate::diagnostic::Diagnostic;
use serde::{Deserialize, Serialize};

/// The module's entry in the registry.
pub const MODULE: ModuleSpec = ModuleSpec {
    name: "swap",
    description: "Swap file of a set size, mounted at boot, with vm.swappiness",
    requires: &[],
    conflicts: &[],
    template: include_str!("../../templates/modules/swap.sh.j2"),
    validate,
    packages: super::no_packages,
    ports: super::no_ports,
};

/// Settings of the `swap` section.
#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
#[schemars(rename = "SwapSettings")]
pub struct Settings {
    /// Size of the swap file; changing it resizes the file on the next run.
    pub size: Size,
    /// Where the swap file lives.
    pub path: AbsolutePath,
    /// vm.swappiness (0-200): lower keeps more in RAM.
    pub swappiness: Ranged<0, 200>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            size: Size(1 << 30),
            path: "/swapfile"
                .to_string()
                .try_into()
                .expect("valid built-in path"),
            swappiness: Ranged(10),
        }
    }
}

/// mkswap refuses files smaller than 40 KiB; anything under 16 MiB is a mistake on a server.
const MIN_SIZE: u64 = 16 << 20;
const MAX_SIZE: u64 = 1 << 40;

fn validate(config: &Config) -> Vec<Diagnostic> {
    let size = config.swap.size.0;
    let mut problems = Vec::new();
    if !(MIN_SIZE..=MAX_SIZE).contains(&size) {
        problems.push(
            Diagnostic::new(
                "config",
                format!(
                    "swap size {} is out of range: expected 16M to 1T",
                    config.swap.size
                ),
            )
            .with_path("swap.size"),
        );
    }
    if !size.is_multiple_of(1 << 20) {
        problems.push(
            Diagnostic::new(
                "config",
                format!(
                    "swap size {} is not a whole number of MiB",
                    config.swap.size
                ),
            )
            .with_path("swap.size")
            .with_help("write it as a number of M or G, like 1536M"),
        );
    }
    problems
}
