//! Driving whole profiles in a booted guest, shared by the VM tests that boot one
//! (tests/vm/services.rs, tests/vm/app_profiles.rs): the config every case starts from, rendering
//! with user profiles beside the config, booting through cloud-init to a converged first run,
//! applying a changed config, drift and repair, and reaching published ports from the host.
//! Used with `mod common;` and `#[path = "support/profiles.rs"] mod profiles;` next to `vm`
//! and `guest`.
#![allow(dead_code)] // each test binary uses a different part

use crate::common::{phanes, temp_dir};
use crate::guest::{Run, converged, run_bundle};
use crate::vm::{BootOptions, Release, TestKey, Vm};
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The user every case logs in as.
pub const ADMIN: &str = "admin";
/// Boot plus a first run that installs the services (apt under TCG is slow, and slower still on
/// a loaded host: the dev profile's first run took over 30 minutes with two guests and builds
/// sharing 2 cores).
pub const FIRST_RUN_TIMEOUT: Duration = Duration::from_secs(2700);
pub const BUNDLE: &str = "bash /tmp/setup.sh";

/// What every case's config starts with: the admin user the harness logs in as.
pub fn base_config(key: &str, hostname: &str) -> String {
    format!(
        "baseline:
  hostname: {hostname}
user:
  users:
    - name: {ADMIN}
      ssh_keys: [\"{key}\"]
security:
  fail2ban:
    # The harness polls SSH before the bundle has made the user: without this, fail2ban bans it.
    ignore_addresses: [198.51.100.2]
"
    )
}

/// Renders `profile` with `config` (and the profiles in `profiles`, name → YAML) into a folder.
pub fn render(profile: &str, config: &str, profiles: &[(&str, &str)]) -> PathBuf {
    render_with(profile, config, profiles, &[])
}

/// [`render`] with more `phanes render` arguments; returns the `out` folder inside a fresh
/// folder of its own (remove its parent when done).
pub fn render_with(
    profile: &str,
    config: &str,
    profiles: &[(&str, &str)],
    extra: &[&str],
) -> PathBuf {
    let dir = temp_dir(&format!("render-{profile}"));
    fs::write(dir.join("phanes.yaml"), config).unwrap();
    if !profiles.is_empty() {
        fs::create_dir_all(dir.join("profiles")).unwrap();
        for (name, yaml) in profiles {
            fs::write(dir.join("profiles").join(format!("{name}.yaml")), yaml).unwrap();
        }
    }
    let out = phanes()
        .args(["render", "--profile", profile, "--out", "out"])
        .args(extra)
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "render failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir.join("out")
}

/// Boots `release` with the rendered user-data and waits for cloud-init to have run the bundle.
pub fn boot_with(
    release: Release,
    out: &Path,
    name: &str,
    key: &TestKey,
    forwards: Vec<(u16, u16)>,
) -> Vm {
    // AWS's is gzip-compressed (render --provider aws); cloud-init takes either.
    let user_data = fs::read(out.join("user-data.yaml.gz"))
        .or_else(|_| fs::read(out.join("user-data.yaml")))
        .unwrap();
    let mut vm = Vm::boot(
        release,
        BootOptions {
            user_data,
            hostname: format!("{name}-{}", release.codename()),
            forwards,
            ..Default::default()
        },
    );
    vm.wait_ssh(ADMIN, &key.private, FIRST_RUN_TIMEOUT);
    let (status, code) = vm.wait_cloud_init();
    assert_eq!(code, 0, "cloud-init status:\n{status}");
    let log = vm.ssh_ok("sudo -n cat /var/log/cloud-init-output.log");
    let recap = log
        .lines()
        .find(|l| l.starts_with("phanes: ok="))
        .unwrap_or_else(|| panic!("no recap in:\n{log}"));
    assert!(recap.contains(" failed=0 "), "{recap}\n{log}");
    println!(
        "[{}] {name} on {}: first boot converged at {:.0?}: {recap}",
        env!("CARGO_CRATE_NAME"),
        release.codename(),
        vm.uptime()
    );
    vm.scp_to(&out.join("setup.sh"), "/tmp/setup.sh");
    vm
}

/// Copies a newly rendered bundle over and runs it; it must succeed.
pub fn apply(vm: &Vm, out: &Path) -> Run {
    vm.scp_to(&out.join("setup.sh"), "/tmp/setup.sh");
    let run = run_bundle(vm, BUNDLE, "");
    assert_eq!(run.exit, 0, "{}", run.raw);
    run
}

/// Names of the handlers that ran in `run`.
pub fn handlers_run(run: &Run) -> BTreeSet<String> {
    run.steps
        .iter()
        .filter(|(id, s)| s == "changed" && id.starts_with("handler:"))
        .map(|(id, _)| id.trim_start_matches("handler:").to_string())
        .collect()
}

pub fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// The addresses with a TCP listener on `port`, as `ss` prints them.
pub fn listeners(vm: &Vm, port: u16) -> BTreeSet<String> {
    vm.ssh_ok(&format!("ss -Htln 'sport = :{port}'"))
        .lines()
        .filter_map(|l| l.split_whitespace().nth(3).map(str::to_string))
        .collect()
}

/// Each unit's main PID, to tell a restart (new PID) from a reload or nothing (same PID).
pub fn main_pids(vm: &Vm, units: &[&str]) -> BTreeMap<String, String> {
    units
        .iter()
        .map(|u| {
            let pid = vm.ssh_ok(&format!("systemctl show -p MainPID --value {u}"));
            assert_ne!(pid.trim(), "0", "{u} is not running");
            (u.to_string(), pid.trim().to_string())
        })
        .collect()
}

/// Breaks each thing, checks that `--dry-run` names exactly those steps, repairs, converges.
pub fn drift_and_repair(vm: &Vm, breakage: &[(&str, &str)]) {
    for (command, _) in breakage {
        vm.ssh_ok(command);
    }
    let dry = run_bundle(vm, BUNDLE, "--dry-run");
    assert_eq!(dry.exit, 2, "dry-run must report drift:\n{}", dry.raw);
    let expected: BTreeSet<String> = breakage.iter().map(|(_, s)| s.to_string()).collect();
    assert_eq!(
        dry.with_status("would-change"),
        expected,
        "dry-run must name exactly the drifted steps:\n{}",
        dry.raw
    );
    let repair = run_bundle(vm, BUNDLE, "");
    assert_eq!(repair.exit, 0, "repair failed:\n{}", repair.raw);
    assert_eq!(
        repair.with_status("changed"),
        expected,
        "the repair changes exactly the drifted steps:\n{}",
        repair.raw
    );
    converged(vm, BUNDLE).unwrap();
}

/// An HTTP GET from the host to a forwarded port: the body, or None when nothing answers in
/// time (a firewall drop).
pub fn host_http_get(port: u16, path: &str) -> Option<String> {
    let addr = ("127.0.0.1", port);
    let mut stream = TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], addr.1)),
        Duration::from_secs(5),
    )
    .ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: test\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    // Servers answer a 1.0 request as 1.0 or 1.1 (busybox httpd says 1.1): any version counts.
    let status = head.lines().next()?;
    (status.starts_with("HTTP/1.") && status.split_whitespace().nth(1) == Some("200"))
        .then(|| body.to_string())
}

pub fn curl(vm: &Vm, args: &str) -> String {
    vm.ssh_ok(&format!("curl -fsS --max-time 20 {args}"))
}

/// A container image from the guest's busybox-static, with nothing from a registry: httpd
/// on port 8080 serving one file, published on 8088.
pub fn start_container(vm: &Vm) {
    vm.ssh_ok(&format!(
        "set -e; {}
         sudo -n docker run -d --restart unless-stopped --name web -p 8088:8080 phanes/busybox httpd -f -p 8080 -h /www >/dev/null",
        busybox_image("sudo -n ", "phanes/busybox", "container-page")
    ));
    assert_eq!(curl(vm, "http://127.0.0.1:8088/").trim(), "container-page");
}

/// Shell lines that import IMAGE from the guest's busybox-static (installed first), its
/// entrypoint busybox and /www/index.html holding PAGE, with nothing from a registry. `sudo`
/// prefixes the commands that need root ("" when the lines run as root).
pub fn busybox_image(sudo: &str, image: &str, page: &str) -> String {
    format!(
        "{sudo}env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq busybox-static >/dev/null
         d=$(mktemp -d); mkdir -p \"$d/bin\" \"$d/www\"; cp /bin/busybox \"$d/bin/\"; echo {page} >\"$d/www/index.html\"
         {sudo}tar -C \"$d\" -c . | {sudo}docker import -c 'ENTRYPOINT [\"/bin/busybox\"]' - {image} >/dev/null
         rm -rf \"$d\""
    )
}
