//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

pub mod render;
pub mod server;
pub mod standins;

/// A config that exercises every branch of the baseline, user and swap templates.
pub const FULL_CONFIG: &str = "\
baseline:
  hostname: web1.example.com
  timezone: Europe/Berlin
  locales: [en_US.UTF-8, de_DE.UTF-8]
  default_locale: en_US.UTF-8
user:
  users:
    - name: deploy
      groups: [adm, www-data]
      ssh_keys:
        - ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGx2dGVzdGtleWJsb2I deploy@laptop
    - name: ops
      sudo: password
      password_hash: $6$saltsalt$0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ
swap:
  size: 512M
  swappiness: 20
";

/// The phanes binary built for this test run.
pub fn phanes() -> Command {
    Command::new(env!("CARGO_BIN_EXE_phanes"))
}

/// A fresh, empty folder for one test.
pub fn temp_dir(name: &str) -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("phanes-test-{name}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Renders every artifact into `dir`, with `config` as phanes.yaml when given.
pub fn render_to(dir: &Path, args: &[&str], config: Option<&str>) {
    let mut command = phanes();
    command
        .arg("render")
        .args(args)
        .arg("--out")
        .arg(dir.join("."));
    if let Some(config) = config {
        let path = dir.join("phanes.yaml");
        std::fs::write(&path, config).unwrap();
        command.arg("--config").arg(path);
    }
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "render {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `bash -n` and `shellcheck -s bash` on a rendered bundle; a missing tool fails with its
/// install command.
pub fn lint(script: &str, name: &str) {
    let dir = temp_dir(name);
    let path = dir.join("setup.sh");
    std::fs::write(&path, script).unwrap();
    for (program, args) in [("bash", vec!["-n"]), ("shellcheck", vec!["-s", "bash"])] {
        let out = Command::new(program)
            .args(&args)
            .arg(&path)
            .output()
            .unwrap_or_else(|e| panic!("{program} is missing ({e}): apt-get install {program}"));
        assert!(
            out.status.success(),
            "{program} {name}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    std::fs::remove_dir_all(dir).unwrap();
}

/// Runs `command`, which must succeed; returns its stdout. A failure shows the command and
/// its stderr.
pub fn output_ok(command: &mut Command) -> String {
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The sha256 of the file at `path`, in lower-case hex as sha256sum prints it.
pub fn sha256(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    assert!(out.status.success(), "sha256sum {}", path.display());
    String::from_utf8(out.stdout).unwrap()[..64].to_string()
}
