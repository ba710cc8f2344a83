//! The devtools downloads run for real, in a sandbox: the bundle phanes renders, with only the
//! devtools module registered, downloads stand-in Go and uv tarballs from a python HTTP server
//! on 127.0.0.1 and installs them under a temp dir (PHANES_DEVTOOLS_PREFIX, never the host's
//! /usr/local). It proves: the right checksum installs; a wrong one fails the step with a message
//! naming the URL and both checksums, leaves the previous install byte for byte and no temp
//! files; a version change re-installs; a second run changes nothing and needs no network; a
//! download that fails at first is retried.

mod common;

use common::render::shell_ok;
use common::server::Server;
use common::standins::{self, go_release};
use common::{output_ok, temp_dir};
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// This machine's dpkg architecture, as the bundle's preflight reads it.
fn host_arch() -> String {
    let out = Command::new("dpkg")
        .arg("--print-architecture")
        .output()
        .expect("dpkg");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// The uv target triple of this machine.
fn host_triple() -> &'static str {
    if host_arch() == "arm64" {
        "aarch64-unknown-linux-gnu"
    } else {
        "x86_64-unknown-linux-gnu"
    }
}

/// A stand-in uv release `version`, served for both architectures; returns the sha256 of this
/// machine's tarball.
fn uv_release(server: &Server, scratch: &Path, version: &str) -> String {
    standins::uv_release(server, scratch, version, host_triple())
}

/// What one run printed.
struct Run {
    code: i32,
    out: String,
}

impl Run {
    fn status_of(&self, id: &str) -> String {
        let pat = format!("] {id} ... ");
        let line = self
            .out
            .lines()
            .find(|l| l.contains(&pat))
            .unwrap_or_else(|| panic!("no line for {id}\n{}", self.out));
        let rest = line.split(" ... ").nth(1).unwrap();
        rest.rsplit_once(" (").unwrap().0.to_string()
    }
    fn expect(&self, code: i32) -> &Run {
        assert_eq!(self.code, code, "exit status\n{}", self.out);
        self
    }
}

/// A sandbox: a temp dir with the stand-in server and the tools' prefix.
struct Sandbox {
    dir: PathBuf,
    server: Server,
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

impl Sandbox {
    fn new(name: &str) -> Sandbox {
        let dir = temp_dir(name);
        let server = Server::start(
            &dir.join("www"),
            &dir.join("requests.log"),
            &dir.join("flaky"),
        );
        Sandbox { dir, server }
    }
    fn p(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }
    fn prefix(&self) -> PathBuf {
        self.p("usr/local")
    }

    /// Renders setup.sh with `yaml` and keeps only the devtools module registered.
    fn render(&self, yaml: &str) {
        let script = shell_ok(None, &["devtools"], yaml, &[]);
        let at = script
            .rfind("phanes_register() {")
            .expect("phanes_register");
        let bundle = format!(
            "{}phanes_register() {{\n  phanes_module devtools\n}}\n\nmain \"$@\"\n",
            &script[..at]
        );
        fs::write(self.p("setup.sh"), bundle).unwrap();
    }

    /// Runs the bundle with every system path in the sandbox.
    fn run(&self, args: &[&str]) -> Run {
        // The fake dpkg-query reports these as installed (devtools.packages is then ok).
        fs::create_dir_all(self.p("root")).unwrap();
        fs::write(
            self.p("root/installed"),
            "git\nbuild-essential\npkg-config\nca-certificates\ncurl\n",
        )
        .unwrap();
        let fixtures = Path::new(ROOT).join("tests/fixtures/runtime");
        let out = Command::new("bash")
            .arg(self.p("setup.sh"))
            .args(args)
            .env_clear()
            .env(
                "PATH",
                format!(
                    "{}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    fixtures.join("bin").display()
                ),
            )
            .env("DEMO_ROOT", self.p("root"))
            .env("PHANES_LOG_DIR", self.p("log"))
            .env("PHANES_STATE_DIR", self.p("state"))
            .env("PHANES_LOCK_FILE", self.p("run/phanes.lock"))
            .env("PHANES_SECRETS_DIR", self.p("secrets"))
            .env("PHANES_DPKG_DIR", self.p("dpkg"))
            .env("PHANES_SYSTEMD_DIR", self.p("no-systemd"))
            .env("PHANES_OS_RELEASE", fixtures.join("os-release/debian-12"))
            .env("PHANES_DEVTOOLS_PREFIX", self.prefix())
            .env("PHANES_PROFILE_D", self.p("etc/profile.d"))
            .env(
                "PHANES_APT_PREFERENCES_DIR",
                self.p("etc/apt/preferences.d"),
            )
            .stdin(Stdio::null())
            .output()
            .unwrap();
        Run {
            code: out.status.code().unwrap_or(-1),
            out: format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        }
    }

    /// Every file, folder and link under the prefix and profile.d: path -> (mode, content).
    fn snapshot(&self) -> BTreeMap<String, (u32, Vec<u8>)> {
        fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, (u32, Vec<u8>)>) {
            let Ok(entries) = fs::read_dir(dir) else {
                return;
            };
            for entry in entries {
                let path = entry.unwrap().path();
                let meta = fs::symlink_metadata(&path).unwrap();
                let rel = path.strip_prefix(base).unwrap().display().to_string();
                let content = if meta.is_file() {
                    fs::read(&path).unwrap()
                } else {
                    Vec::new()
                };
                out.insert(rel, (meta.permissions().mode(), content));
                if meta.is_dir() {
                    walk(base, &path, out);
                }
            }
        }
        let mut out = BTreeMap::new();
        walk(&self.dir, &self.prefix(), &mut out);
        walk(&self.dir, &self.p("etc/profile.d"), &mut out);
        out
    }

    /// Names under the prefix that a download or unpack left behind.
    fn leftovers(&self) -> Vec<String> {
        self.snapshot()
            .into_keys()
            .filter(|p| p.contains(".phanes"))
            .collect()
    }
}

/// The config for Go `go` and uv `uv` (version, sha256), downloaded from `sb`'s server.
fn config(sb: &Sandbox, go: Option<(&str, &str)>, uv: Option<(&str, &str)>) -> String {
    let mut yaml = String::from("devtools:\n");
    if let Some((version, sum)) = go {
        yaml += &format!(
            "  go:\n    enabled: true\n    version: {version}\n    url: {}\n    sha256: {{amd64: {sum}, arm64: {sum}}}\n",
            sb.server.url("go")
        );
    }
    if let Some((version, sum)) = uv {
        yaml += &format!(
            "  uv:\n    enabled: true\n    version: {version}\n    url: {}\n    sha256: {{amd64: {sum}, arm64: {sum}}}\n",
            sb.server.url("uv")
        );
    }
    yaml
}

#[test]
fn right_checksum_installs_and_a_second_run_needs_nothing() {
    let mut sb = Sandbox::new("devtools-install");
    let go = go_release(&sb.server, &sb.dir, "1.25.5");
    let uv = uv_release(&sb.server, &sb.dir, "0.12.1");
    sb.render(&config(&sb, Some(("1.25.5", &go)), Some(("0.12.1", &uv))));

    let first = sb.run(&[]);
    first.expect(0);
    assert_eq!(first.status_of("devtools.packages"), "ok");
    assert_eq!(first.status_of("devtools.go"), "changed");
    assert_eq!(first.status_of("devtools.uv"), "changed");
    let prefix = sb.prefix();
    assert_eq!(
        fs::read_to_string(prefix.join("go/VERSION")).unwrap(),
        "go1.25.5\ntime 2025-12-02T00:00:00Z\n"
    );
    assert_eq!(
        output_ok(Command::new(prefix.join("go/bin/go")).arg("version")),
        "go version go1.25.5 linux/amd64\n"
    );
    assert_eq!(
        output_ok(Command::new(prefix.join("bin/uv")).arg("--version")),
        "uv 0.12.1 (stand-in)\n"
    );
    assert_eq!(
        fs::metadata(prefix.join("bin/uvx"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o755
    );
    let profile = fs::read_to_string(sb.p("etc/profile.d/phanes-go.sh")).unwrap();
    assert!(
        profile.contains(&format!("PATH=\"$PATH:{}/go/bin\"", prefix.display())),
        "{profile}"
    );
    // The profile snippet is valid sh and adds Go's bin once.
    let path = Command::new("sh")
        .arg("-c")
        .arg(format!(
            ". {0}; . {0}; printf %s \"$PATH\"",
            sb.p("etc/profile.d/phanes-go.sh").display()
        ))
        .env("PATH", "/usr/bin:/bin")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&path.stdout),
        format!("/usr/bin:/bin:{}/go/bin", prefix.display())
    );
    assert_eq!(sb.leftovers(), Vec::<String>::new());
    assert_eq!(sb.server.requests().len(), 2, "{:?}", sb.server.requests());

    // Converged: the second run only checks, and without the server.
    let before = sb.snapshot();
    sb.server.stop();
    let second = sb.run(&[]);
    second.expect(0);
    assert_eq!(second.status_of("devtools.go"), "ok");
    assert_eq!(second.status_of("devtools.uv"), "ok");
    assert!(second.out.contains("changed=0 failed=0"), "{}", second.out);
    assert_eq!(sb.snapshot(), before);
    sb.run(&["--dry-run"]).expect(0);
}

#[test]
fn wrong_checksum_fails_and_leaves_the_previous_install_intact() {
    let sb = Sandbox::new("devtools-mismatch");
    let go = go_release(&sb.server, &sb.dir, "1.25.5");
    let uv = uv_release(&sb.server, &sb.dir, "0.12.1");
    sb.render(&config(&sb, Some(("1.25.5", &go)), Some(("0.12.1", &uv))));
    sb.run(&[]).expect(0);
    let before = sb.snapshot();

    // New versions are served, but the config pins other checksums.
    let go_new = go_release(&sb.server, &sb.dir, "1.24.6");
    let uv_new = uv_release(&sb.server, &sb.dir, "0.13.0");
    let wrong = "0123456789abcdef".repeat(4);
    sb.render(&config(
        &sb,
        Some(("1.24.6", &wrong)),
        Some(("0.13.0", &wrong)),
    ));
    let run = sb.run(&["--keep-going"]);
    run.expect(1);
    assert_eq!(run.status_of("devtools.go"), "failed");
    assert_eq!(run.status_of("devtools.uv"), "failed");
    let (arch, triple) = (host_arch(), host_triple());
    for (url, got) in [
        (
            sb.server.url(&format!("go/go1.24.6.linux-{arch}.tar.gz")),
            &go_new,
        ),
        (
            sb.server.url(&format!("uv/0.13.0/uv-{triple}.tar.gz")),
            &uv_new,
        ),
    ] {
        let message = format!(
            "checksum mismatch for {url}: expected sha256 {wrong}, got {got}; nothing was installed"
        );
        assert!(
            run.out.contains(&message),
            "missing {message:?}\n{}",
            run.out
        );
    }
    // Byte for byte as before, and nothing left behind.
    assert_eq!(sb.snapshot(), before);
    assert_eq!(sb.leftovers(), Vec::<String>::new());
    // The drift is still reported.
    sb.run(&["--dry-run"]).expect(2);
}

#[test]
fn a_version_change_reinstalls_then_converges() {
    let sb = Sandbox::new("devtools-upgrade");
    let go = go_release(&sb.server, &sb.dir, "1.25.5");
    let uv = uv_release(&sb.server, &sb.dir, "0.12.1");
    sb.render(&config(&sb, Some(("1.25.5", &go)), Some(("0.12.1", &uv))));
    sb.run(&[]).expect(0);
    assert!(sb.prefix().join("go/src/only-in-this-release").exists());

    let go_new = go_release(&sb.server, &sb.dir, "1.24.6");
    let uv_new = uv_release(&sb.server, &sb.dir, "0.13.0");
    sb.render(&config(
        &sb,
        Some(("1.24.6", &go_new)),
        Some(("0.13.0", &uv_new)),
    ));
    // A dry run sees the drift first, and changes nothing.
    sb.run(&["--dry-run"]).expect(2);
    let run = sb.run(&[]);
    run.expect(0);
    assert_eq!(run.status_of("devtools.go"), "changed");
    assert_eq!(run.status_of("devtools.uv"), "changed");
    let prefix = sb.prefix();
    assert!(
        fs::read_to_string(prefix.join("go/VERSION"))
            .unwrap()
            .starts_with("go1.24.6\n")
    );
    // The whole tree was replaced, not unpacked over the old one.
    assert_eq!(
        fs::read_to_string(prefix.join("go/src/only-in-this-release")).unwrap(),
        "1.24.6"
    );
    assert_eq!(
        output_ok(Command::new(prefix.join("bin/uv")).arg("--version")),
        "uv 0.13.0 (stand-in)\n"
    );
    assert_eq!(sb.leftovers(), Vec::<String>::new());
    let again = sb.run(&[]);
    again.expect(0);
    assert_eq!(again.status_of("devtools.go"), "ok");
    assert_eq!(again.status_of("devtools.uv"), "ok");
}

#[test]
fn a_failing_download_is_retried_with_backoff() {
    let sb = Sandbox::new("devtools-retry");
    let uv = uv_release(&sb.server, &sb.dir, "0.12.1");
    fs::write(
        sb.p("flaky"),
        format!("/uv/0.12.1/uv-{}.tar.gz\n", host_triple()),
    )
    .unwrap();
    sb.render(&config(&sb, None, Some(("0.12.1", &uv))));
    let run = sb.run(&[]);
    run.expect(0);
    assert_eq!(run.status_of("devtools.uv"), "changed");
    // Two requests for the one file: the 503, then the retry (after the backoff's sleep).
    let requests = sb.server.requests();
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert_eq!(requests[0], requests[1]);
    let log = fs::read_to_string(sb.p("log/latest.log")).unwrap_or_default();
    assert!(
        log.contains("try 1/4 failed") || run.out.contains("try 1/4 failed"),
        "the retry is logged\n{log}\n{}",
        run.out
    );
    assert_eq!(sb.leftovers(), Vec::<String>::new());
}
