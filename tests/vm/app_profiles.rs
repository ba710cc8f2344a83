//! The dev and coolify built-in profiles on a real booted Debian: each boots through cloud-init
//! with its user-data to a converged state, a second run changes nothing, and each module proves
//! itself from inside and outside the guest. The downloads that are not reachable from here run
//! against stand-ins served from the host's loopback through the options a mirror sets: Go and
//! uv tarballs laid out as the real releases (tests/common/standins.rs), and a Coolify installer
//! that records its arguments and environment and leaves what the real one leaves (a running
//! `coolify` container, tagged with the version, publishing the dashboard on 8000).
//!
//! coolify on Debian 13 in `PHANES_VM=all`; dev on Debian 12 and 13 in `PHANES_VM=full` only,
//! until it has passed once. Coolify needs Docker 24+, which Debian 12's docker.io (20.10) is
//! not, and Docker CE's repository is not reachable here: no coolify case on Debian 12.
//!
//! `PHANES_VM=all cargo test --release --test vm app_profiles:: -- --nocapture`

use crate::{common, guest, profiles, vm};
use common::server::Server;
use common::standins::{go_release, uv_release};
use common::{sha256, temp_dir};
use guest::{converged, run_bundle};
use profiles::{
    ADMIN, BUNDLE, apply, base_config, boot_with, busybox_image, drift_and_repair, handlers_run,
    host_http_get, render, set,
};
use std::fs;
use std::time::Instant;
use vm::{GUEST_GATEWAY, Release, TestKey, Vm};

/// The guest is x86_64 whatever the host is (QEMU TCG).
const GUEST_TRIPLE: &str = "x86_64-unknown-linux-gnu";

/// A stand-in download server and the URL the guest reaches it at.
fn serve(name: &str) -> (Server, String, std::path::PathBuf) {
    let dir = temp_dir(name);
    let server = Server::start(
        &dir.join("srv"),
        &dir.join("requests.log"),
        &dir.join("flaky"),
    );
    let url = format!("http://{GUEST_GATEWAY}:{}", server.port);
    (server, url, dir)
}

fn count(server: &Server, path: &str) -> usize {
    server.requests().iter().filter(|p| *p == path).count()
}

// ------------------------------------------------------------------------------------ dev

/// The dev profile's config: Docker and Node.js from the distribution (the vendor repositories
/// are not reachable), Go and uv pinned to the stand-ins on the host.
fn dev_config(key: &str, url: &str, go: (&str, &str), uv: (&str, &str)) -> String {
    format!(
        "{}docker:
  source: distro
  users: [{ADMIN}]
devtools:
  node:
    source: distro
  go:
    version: {}
    url: {url}/go
    sha256: {{amd64: {}}}
  uv:
    version: {}
    url: {url}/uv
    sha256: {{amd64: {}}}
",
        base_config(key, "phanes-dev"),
        go.0,
        go.1,
        uv.0,
        uv.1
    )
}

/// Go and uv as the admin user sees them in a login shell (Go's PATH comes from
/// /etc/profile.d/phanes-go.sh).
fn tool_versions(vm: &Vm) -> (String, String) {
    let go = vm.ssh_ok("bash -lc 'command -v go && go version'");
    let uv = vm.ssh_ok("bash -lc 'command -v uv && uv --version'");
    (go, uv)
}

/// Every file of the installed Go tree and uv: name, mode, owner, size, mtime, inode and
/// content hash, and what is in /usr/local (a staging folder left behind would show there).
fn installed_snapshot(vm: &Vm) -> String {
    vm.ssh_ok(
        "sudo -n sh -c 'cd /usr/local && find go bin/uv bin/uvx | LC_ALL=C sort | xargs stat -c \"%n %a %U %s %Y %i\"
         find go bin/uv bin/uvx -type f | LC_ALL=C sort | xargs sha256sum; ls -A /usr/local'",
    )
}

fn dev_case(release: Release) {
    let started = Instant::now();
    let (server, url, dir) = serve("dev-downloads");
    let go = go_release(&server, &dir, "1.25.5");
    let uv = uv_release(&server, &dir, "0.12.1", GUEST_TRIPLE);
    let go_new = go_release(&server, &dir, "1.24.6");
    let uv_new = uv_release(&server, &dir, "0.13.0", GUEST_TRIPLE);
    let key = TestKey::generate();
    let config = |go_pin: (&str, &str), uv_pin: (&str, &str)| {
        dev_config(&key.public_text, &url, go_pin, uv_pin)
    };
    let out = render("dev", &config(("1.25.5", &go), ("0.12.1", &uv)), &[]);
    let vm = boot_with(release, &out, "dev", &key, vec![]);
    converged(&vm, BUNDLE).unwrap();
    let go_tarball = "/go/go1.25.5.linux-amd64.tar.gz";
    assert_eq!(count(&server, go_tarball), 1, "{:?}", server.requests());

    // The pinned versions, for the admin user, through the PATH the module sets.
    let (go_out, uv_out) = tool_versions(&vm);
    assert_eq!(
        go_out,
        "/usr/local/go/bin/go\ngo version go1.25.5 linux/amd64\n"
    );
    assert_eq!(uv_out, "/usr/local/bin/uv\nuv 0.12.1 (stand-in)\n");
    // Docker answers the admin user (group docker); Node.js from the release runs.
    let docker = vm.ssh_ok("sudo -n -u admin docker version --format '{{.Server.Version}}'");
    assert!(
        docker
            .trim()
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_digit()),
        "{docker}"
    );
    let node = vm.ssh_ok("node -e 'console.log(process.version)'");
    assert!(node.starts_with('v'), "{node}");
    vm.ssh_ok("npm --version");

    // A wrong checksum for a new version: the step fails naming the URL and both checksums,
    // and the installed tree stays as it was, byte for byte, with nothing left beside it.
    let before = installed_snapshot(&vm);
    let wrong = render("dev", &config(("1.24.6", &go), ("0.12.1", &uv)), &[]);
    vm.scp_to(&wrong.join("setup.sh"), "/tmp/setup.sh");
    let run = run_bundle(&vm, BUNDLE, "");
    assert_eq!(run.exit, 1, "{}", run.raw);
    assert_eq!(
        run.with_status("failed"),
        set(&["devtools.go"]),
        "{}",
        run.raw
    );
    assert_eq!(run.with_status("changed"), set(&[]), "{}", run.raw);
    assert!(
        run.raw.contains(&format!(
            "checksum mismatch for {url}/go/go1.24.6.linux-amd64.tar.gz: expected sha256 {go}, got {go_new}; nothing was installed"
        )),
        "the failure names the URL and both checksums:\n{}",
        run.raw
    );
    assert_eq!(installed_snapshot(&vm), before);
    assert_eq!(tool_versions(&vm), (go_out, uv_out));

    // A version change: only the two download steps change, nothing else runs.
    let changed = render(
        "dev",
        &config(("1.24.6", &go_new), ("0.13.0", &uv_new)),
        &[],
    );
    let run = apply(&vm, &changed);
    assert_eq!(
        run.with_status("changed"),
        set(&["devtools.go", "devtools.uv"]),
        "{}",
        run.raw
    );
    assert_eq!(handlers_run(&run), set(&[]), "{}", run.raw);
    assert_eq!(
        tool_versions(&vm),
        (
            "/usr/local/go/bin/go\ngo version go1.24.6 linux/amd64\n".to_string(),
            "/usr/local/bin/uv\nuv 0.13.0 (stand-in)\n".to_string()
        )
    );
    // The old tree was replaced, not overlaid.
    assert_eq!(
        vm.ssh_ok("cat /usr/local/go/src/only-in-this-release"),
        "1.24.6"
    );

    // Drift: the Go tree removed behind phanes' back is found and put back.
    drift_and_repair(&vm, &[("sudo -n rm -rf /usr/local/go", "devtools.go")]);
    assert!(vm.ssh_ok("bash -lc 'go version'").contains("go1.24.6"));
    report!(
        "[vm_profiles] dev on {}: {:.0?} ({:.0?} of it with the guest up)",
        release.codename(),
        started.elapsed(),
        vm.uptime()
    );
    drop(vm);
    drop(server);
    for d in [out, wrong, changed] {
        fs::remove_dir_all(d.parent().unwrap()).unwrap();
    }
    fs::remove_dir_all(dir).unwrap();
}

// -------------------------------------------------------------------------------- coolify

const COOLIFY_VERSION: &str = "4.3.19";
/// Where the stand-in installer writes down how it was called, in the guest.
const RECORD: &str = "/var/lib/coolify-standin";

/// The stand-in for Coolify's install.sh: records its arguments, the settings phanes passes in
/// its environment, whether stdin is a terminal, its own and its parent's command line and the
/// process list; then leaves what the real installer leaves for phanes' check
/// (/data/coolify/source/.env, a running container `coolify` tagged with the version), that
/// container serving the dashboard port (8080 inside, 8000 on the host) as Coolify's does.
fn standin_installer() -> String {
    format!(
        r#"#!/bin/bash
# Stand-in for Coolify's installer (phanes tests).
set -eu
mkdir -p {RECORD}
{{
  printf 'argc=%s\n' "$#"
  for a in "$@"; do printf 'arg=%s\n' "$a"; done
  for v in ROOT_USERNAME ROOT_USER_EMAIL ROOT_USER_PASSWORD AUTOUPDATE HOME USER; do
    printf 'env:%s=%s\n' "$v" "${{!v-(unset)}}"
  done
  if [ -t 0 ]; then echo stdin=tty; else echo stdin=redirected; fi
}} >{RECORD}/record
echo "$1" >>{RECORD}/runs
ps -eo args >{RECORD}/ps
{{ tr '\0' ' ' </proc/$$/cmdline; echo; tr '\0' ' ' </proc/$PPID/cmdline; echo; }} >{RECORD}/argv
mkdir -p /data/coolify/source
echo 'APP_ID=stand-in' >/data/coolify/source/.env
{}
docker rm -f coolify >/dev/null 2>&1 || true
docker run -d --restart unless-stopped --name coolify -p 8000:8080 "ghcr.io/coollabsio/coolify:$1" httpd -f -p 8080 -h /www >/dev/null
echo "stand-in installer ran for Coolify $1"
"#,
        busybox_image("", "\"ghcr.io/coollabsio/coolify:$1\"", "coolify-dashboard")
    )
}

fn coolify_config(key: &str, installer_url: &str, installer_sha256: &str) -> String {
    format!(
        "{}docker:
  source: distro
coolify:
  version: {COOLIFY_VERSION}
  installer_url: {installer_url}
  installer_sha256: {installer_sha256}
  root_user:
    enabled: true
    username: ops
    email: ops@example.com
",
        base_config(key, "phanes-coolify")
    )
}

fn coolify_case(release: Release) {
    let started = Instant::now();
    let (server, url, dir) = serve("coolify-installer");
    let installer = server.root.join("install.sh");
    fs::write(&installer, standin_installer()).unwrap();
    let installer_sha256 = sha256(&installer);
    let key = TestKey::generate();
    let out = render(
        "coolify",
        &coolify_config(
            &key.public_text,
            &format!("{url}/install.sh"),
            &installer_sha256,
        ),
        &[],
    );
    let dashboard = vm::free_port();
    let vm = boot_with(release, &out, "coolify", &key, vec![(dashboard, 8000)]);
    converged(&vm, BUNDLE).unwrap();

    // The installer ran once, verified, for the pinned version, non-interactively; a second run
    // (converged's) neither downloaded nor ran it again.
    assert_eq!(count(&server, "/install.sh"), 1, "{:?}", server.requests());
    assert_eq!(
        vm.ssh_ok(&format!("sudo -n cat {RECORD}/runs")),
        format!("{COOLIFY_VERSION}\n")
    );
    let secret = "/etc/phanes/secrets/coolify-root-password";
    assert_eq!(
        vm.ssh_ok(&format!("sudo -n stat -c '%a %U %G' {secret}"))
            .trim(),
        "600 root root"
    );
    let password = vm.ssh_ok(&format!("sudo -n cat {secret}"));
    let password = password.trim();
    assert!(password.len() >= 20, "a generated password: {password:?}");
    let record = vm.ssh_ok(&format!("sudo -n cat {RECORD}/record"));
    assert_eq!(
        record,
        format!(
            "argc=1\narg={COOLIFY_VERSION}\nenv:ROOT_USERNAME=ops\nenv:ROOT_USER_EMAIL=ops@example.com\n\
             env:ROOT_USER_PASSWORD={password}\nenv:AUTOUPDATE=false\nenv:HOME=/root\nenv:USER=root\n\
             stdin=redirected\n"
        )
    );
    // The password reached it only through its environment: on no command line, its own, its
    // parent's or any process's while it ran, and in none of the logs.
    let argv = vm.ssh_ok(&format!("sudo -n cat {RECORD}/argv"));
    assert!(
        argv.lines()
            .next()
            .unwrap_or("")
            .ends_with(&format!("install.sh {COOLIFY_VERSION} ")),
        "{argv}"
    );
    let ps = vm.ssh_ok(&format!("sudo -n cat {RECORD}/ps"));
    assert!(
        ps.contains(&format!("install.sh {COOLIFY_VERSION}")),
        "{ps}"
    );
    for (what, text) in [("argv", &argv), ("process list", &ps)] {
        assert!(!text.contains(password), "the password is in the {what}");
    }
    let logs = vm.ssh_ok(
        "sudo -n sh -c 'cat /var/log/phanes/*.log /var/lib/phanes/last-run.json /var/log/cloud-init-output.log'",
    );
    assert!(!logs.contains(password), "the password is in the logs");

    // Coolify's SSH access as root by key, and Docker from the release, new enough.
    assert_eq!(
        vm.ssh_ok("sudo -n sshd -T | grep -i '^permitrootlogin'")
            .trim(),
        "permitrootlogin without-password"
    );
    let docker = vm.ssh_ok("sudo -n docker version --format '{{.Server.Version}}'");
    let major: u32 = docker
        .trim()
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    assert!(major >= 24, "Docker {docker}");

    // The dashboard's published port answers from outside: allow_published lets the container
    // port through DOCKER-USER.
    assert_eq!(
        host_http_get(dashboard, "/").as_deref().map(str::trim),
        Some("coolify-dashboard"),
        "the dashboard port must answer from the host"
    );
    report!(
        "[vm_profiles] coolify on {}: {:.0?} ({:.0?} of it with the guest up)",
        release.codename(),
        started.elapsed(),
        vm.uptime()
    );
    drop(vm);
    drop(server);
    fs::remove_dir_all(out.parent().unwrap()).unwrap();
    fs::remove_dir_all(dir).unwrap();
}

// ------------------------------------------------------------------------------------ tests

vm_case!(coolify_trixie, "coolify", Trixie, FullOnly, coolify_case);

#[test]
fn coolify_bookworm() {
    if vm::vm_tests_enabled().is_some() {
        report!(
            "[vm_profiles] coolify on bookworm: not run: Coolify needs Docker 24+, Debian 12's docker.io is 20.10, and Docker CE's repository is not reachable here"
        );
    }
}

// `PHANES_VM=full` only: the dev profile installs about 660 packages (npm's recommends), near
// an hour of guest CPU per release, more than CI's budget holds beside the other cases.
vm_case!(dev_trixie, "dev", Trixie, FullOnly, dev_case);

vm_case!(dev_bookworm, "dev", Bookworm, FullOnly, dev_case);

/// The stand-in installer passes bash -n and shellcheck (on the host, without a guest).
#[test]
fn standin_installer_parses() {
    common::lint(&standin_installer(), "coolify-standin");
}
