//! Rendering setup.sh through the CLI and checking what comes out: the helpers the
//! `*_render` tests share. Nothing here runs a bundle; `run_bash` only sources helper blocks.

use super::{lint, phanes, temp_dir};
use std::fs;
use std::path::Path;
use std::process::{Command, Output};

/// The public key of the `deploy` user in test configs.
pub const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGx2dGVzdGtleWJsb2I deploy@laptop";

/// A config with a sudo user `deploy` (with `KEY`), then `rest` (more users, indented as list
/// items, or other top-level sections).
pub fn config_with(rest: &str) -> String {
    format!("user:\n  users:\n    - name: deploy\n      ssh_keys:\n        - {KEY}\n{rest}")
}

/// Runs phanes `args` with `config` written to a temp file and passed as --config.
pub fn run_with_config(args: &[&str], config: &str) -> Output {
    let dir = temp_dir("with-config");
    let path = dir.join("phanes.yaml");
    fs::write(&path, config).unwrap();
    let out = phanes()
        .args(args)
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    fs::remove_dir_all(dir).unwrap();
    out
}

/// `phanes render --format shell` of `profile` (the default one when `None`) plus `modules`,
/// with `config` and each of `sets` as a --set.
pub fn shell(profile: Option<&str>, modules: &[&str], config: &str, sets: &[&str]) -> Output {
    let mut args = vec!["render", "--format", "shell"];
    if let Some(profile) = profile {
        args.extend(["--profile", profile]);
    }
    for module in modules {
        args.extend(["--modules", module]);
    }
    for set in sets {
        args.extend(["--set", set]);
    }
    run_with_config(&args, config)
}

/// `shell` that must succeed; returns setup.sh.
pub fn shell_ok(profile: Option<&str>, modules: &[&str], config: &str, sets: &[&str]) -> String {
    let out = shell(profile, modules, config, sets);
    assert!(
        out.status.success(),
        "render {profile:?} {modules:?} {sets:?} with\n{config}\nfailed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `shell` that must fail without printing any of a bundle; returns the error output.
pub fn shell_err(profile: Option<&str>, modules: &[&str], config: &str, sets: &[&str]) -> String {
    let out = shell(profile, modules, config, sets);
    assert!(
        !out.status.success(),
        "render {profile:?} {modules:?} {config} {sets:?} should fail"
    );
    assert!(out.stdout.is_empty(), "a failed render printed a bundle");
    String::from_utf8(out.stderr).unwrap()
}

/// Passes `script` through bash -n and shellcheck (as `name`) and checks it has every text of
/// `has` and none of `lacks`.
pub fn check_script(name: &str, script: &str, has: &[&str], lacks: &[&str]) {
    lint(script, name);
    for want in has {
        assert!(script.contains(want), "{name}: missing {want:?}");
    }
    for gone in lacks {
        assert!(!script.contains(gone), "{name}: has {gone:?}");
    }
}

/// The text between `# >>> MODULE: NAME` and `# <<< MODULE: NAME` in a bundle.
pub fn block(script: &str, module: &str, name: &str) -> String {
    let start = script
        .find(&format!("# >>> {module}: {name}"))
        .unwrap_or_else(|| panic!("{module} block {name:?} start"));
    let end = script
        .find(&format!("# <<< {module}: {name}"))
        .unwrap_or_else(|| panic!("{module} block {name:?} end"));
    script[start..end].to_string()
}

/// The block of `module`'s values and pure helpers, with nothing else.
pub fn helpers(script: &str, module: &str) -> String {
    block(script, module, "values and pure helpers")
}

/// Runs `body` in bash (errexit, nounset, pipefail) after sourcing `code` from a file in
/// `dir`; returns stdout, and fails with stdout and stderr when bash does.
pub fn run_bash(code: &str, body: &str, dir: &Path) -> String {
    let path = dir.join("helpers.sh");
    fs::write(&path, code).unwrap();
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "set -euo pipefail\nsource {}\n{body}",
            path.display()
        ))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "helper test failed:\n{body}\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}
