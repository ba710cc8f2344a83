//! Reliability under faults, in booted Debian guests (issue 8): two guests side by side.
//!
//! - The **reference** guest runs the minimal profile (plus a few packages) once, without
//!   interruption, while a second run is refused and a third waits for it (concurrency), with
//!   the process list sampled for the user's password hash (secrets); its fingerprint (every
//!   managed file's sha256, mode and owner, the package set with versions and dpkg states,
//!   apt's auto marks, swap, users, ufw, `sshd -T`, services, leftovers) is the reference. Then,
//!   on the same guest: the dpkg lock held by another process, an interrupted dpkg, the archive
//!   unreachable mid-run, and the lockout sequences (keys rotated, password login on, user
//!   renamed, password login off, SSH port moved), each followed by a fresh SSH login.
//! - The **kill** guest runs the same bundle and SIGKILLs it (its whole process group: bash,
//!   apt, dpkg, maintainer scripts) at many points: during apt's downloads, dpkg's unpacks and
//!   configures, and after each step (some right after a step's line, some a moment into the
//!   next step, to land inside file writes); once it cuts the power (`sysrq b`: no sync) in the
//!   middle of dpkg. Each kill's next run resumes from the state the kill left. The last run
//!   must converge and the fingerprint must equal the reference byte for byte.
//!
//! `PHANES_VM=full cargo test --release --test vm faults:: -- --nocapture`: both releases, a kill
//! point after every step (about an hour of guest CPU per release). `PHANES_VM=all` (CI) runs
//! Debian 12 with a kill point after every 4th step, to fit its budget.

use crate::{common, guest, profiles, vm};
use common::temp_dir;
use guest::{converged, run_bundle, ssh_from_host};
use serde_json::Value;
use std::fs;
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};
use vm::{BootOptions, Release, SSH_TIMEOUT, TestKey, Vm};

/// The harness's own login, made by cloud-init: phanes never manages it.
const TESTER: &str = "tester";
/// A crypt(3) hash (`openssl passwd -6`): the secret of the minimal profile's config.
const HASH: &str = "$6$phanesfaultsalt$.5E1x7kZ9tgQIqWsOHZVSETI3MOTbuxS2vF88hnKCld2Hu/T0qyRl2tGgd7u7Wixvd0bBn9EnC5QqPSfBZ62w/";
/// The default package list plus two packages with dependencies of their own.
const PACKAGES: &str = "ca-certificates, curl, gnupg, htop, less, rsync, unzip, locales, tzdata, whois, python3-pyinotify";

/// The config: `user` with `key`, the packages plus `extra`, and `security` lines.
fn config(user: &str, key: &str, extra: &str, security: &str) -> String {
    format!(
        "baseline:
  hostname: phanes-faults
  packages: [{PACKAGES}{extra}]
user:
  users:
    - name: {user}
      groups: [adm]
      password_hash: \"{HASH}\"
      ssh_keys: [\"{key}\"]
swap:
  size: 256M
security:
  fail2ban:
    ignore_addresses: [198.51.100.2]
{security}"
    )
}

/// Copies `config`'s setup.sh into the guest as root-only `/root/NAME`.
fn install_bundle(vm: &Vm, config: &str, name: &str) {
    let out = profiles::render_with("minimal", config, &[], &[]);
    upload_root_only(vm, &out.join("setup.sh"), name);
    fs::remove_dir_all(out.parent().unwrap()).unwrap();
}

/// Writes a root-only helper script into the guest as `/root/NAME`.
fn put_script(vm: &Vm, name: &str, text: &str) {
    let dir = temp_dir("faults-script");
    fs::write(dir.join(name), text).unwrap();
    upload_root_only(vm, &dir.join(name), name);
    fs::remove_dir_all(dir).unwrap();
}

fn upload_root_only(vm: &Vm, local: &Path, name: &str) {
    vm.scp_to(local, "/tmp/phanes-upload.sh");
    vm.ssh_ok(&format!(
        "sudo -n install -m 0700 /tmp/phanes-upload.sh /root/{name} && rm /tmp/phanes-upload.sh"
    ));
}

/// What a converged guest looks like: compared line by line between the two guests.
const FINGERPRINT: &str = r#"#!/bin/bash
export LC_ALL=C
echo "== managed files (mode owner sha256)"
for f in /etc/ssh/sshd_config /etc/ssh/sshd_config.d/* /etc/sudoers.d/* /etc/fail2ban/jail.d/* \
  /etc/apt/apt.conf.d/* /etc/sysctl.d/* /etc/ufw/user.rules /etc/ufw/user6.rules /etc/ufw/ufw.conf \
  /etc/default/ufw /etc/default/locale /etc/locale.gen /etc/hostname /etc/hosts /etc/fstab \
  /etc/timezone /home/*/.ssh/authorized_keys; do
  # cloud-init's own file for the harness login, stamped with the time it was written.
  [ "$f" != /etc/sudoers.d/90-cloud-init-users ] || continue
  [ -e "$f" ] && echo "$(stat -c '%a %U:%G' "$f") $(sha256sum "$f")"
done
echo "== leftovers (temp files, interrupted-install list, pending handlers)"
find / -xdev \( -name '.phanes.*' -o -path /var/lib/phanes/apt-pending \) -print 2>/dev/null
ls /var/lib/phanes/pending 2>/dev/null
echo "== dpkg --audit"
dpkg --audit
echo "== packages"
dpkg-query -W -f '${Package} ${Version} ${db:Status-Abbrev}\n'
echo "== apt-mark showauto"
apt-mark showauto
echo "== swap"
swapon --show=NAME,SIZE --bytes --noheadings
stat -c '%a %U:%G %s' /swapfile
cat /proc/sys/vm/swappiness
echo "== users"
getent passwd admin
id admin
getent shadow admin | cut -d: -f2 | sha256sum
echo "== host"
hostname
readlink /etc/localtime
locale -a
echo "== ufw"
ufw status verbose
echo "== sshd -T"
sshd -T -C user=admin,host=localhost,addr=127.0.0.1 | sort
echo "== services"
systemctl is-active ssh fail2ban ufw apt-daily.timer apt-daily-upgrade.timer
systemctl is-enabled ssh fail2ban ufw apt-daily.timer apt-daily-upgrade.timer
"#;

fn fingerprint(vm: &Vm) -> String {
    vm.ssh_ok("sudo -n bash /root/fingerprint.sh")
}

fn sha256_hex(text: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The lines only one side has, for a readable failure.
fn diff(a: &str, b: &str) -> String {
    let left: Vec<&str> = a.lines().collect();
    let right: Vec<&str> = b.lines().collect();
    let mut out = String::new();
    for l in &left {
        if !right.contains(l) {
            out += &format!("- {l}\n");
        }
    }
    for l in &right {
        if !left.contains(l) {
            out += &format!("+ {l}\n");
        }
    }
    out
}

/// Starts `bash /root/setup.sh --json ARGS` detached; its output, stderr and exit code go to
/// /root/NAME.{out,err,rc}.
fn start_background(vm: &Vm, name: &str, args: &str) {
    vm.ssh_ok(&format!(
        "sudo -n rm -f /root/{name}.rc && sudo -n setsid -f bash -c 'bash /root/setup.sh --json {args} >/root/{name}.out 2>/root/{name}.err; echo $? >/root/{name}.rc' </dev/null >/dev/null 2>&1"
    ));
}

fn wait_background(vm: &Vm, name: &str, timeout: Duration) -> i32 {
    let deadline = Instant::now() + timeout;
    loop {
        let out = vm.ssh(&format!("sudo -n cat /root/{name}.rc"));
        if let Ok(rc) = String::from_utf8_lossy(&out.stdout).trim().parse() {
            return rc;
        }
        assert!(Instant::now() < deadline, "{name} did not finish");
        std::thread::sleep(Duration::from_secs(5));
    }
}

/// (step id, status) of each step line of a --json output.
fn statuses(json: &str) -> Vec<(String, String)> {
    json.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v.get("step").is_some() && v["kind"] == "step")
        .map(|v| {
            (
                v["step"].as_str().unwrap().to_string(),
                v["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Both guests get the same host name and keys, so their fingerprints can be equal.
struct Keys {
    harness: TestKey,
    k1: TestKey,
    k2: TestKey,
}

fn boot(release: Release, harness: &TestKey, forwards: Vec<(u16, u16)>) -> Vm {
    let user_data = vm::login_user_data(TESTER, &harness.public_text);
    let mut vm = Vm::boot(
        release,
        BootOptions {
            user_data: user_data.into(),
            hostname: "phanes-faults".into(),
            forwards,
            ..Default::default()
        },
    );
    vm.wait_ssh(TESTER, &harness.private, SSH_TIMEOUT);
    let (status, code) = vm.wait_cloud_init();
    assert_eq!(code, 0, "cloud-init: {status}");
    put_script(&vm, "fingerprint.sh", FINGERPRINT);
    vm
}

fn login(key: &Path, user: &str, port: u16) -> Result<(), String> {
    let out = ssh_from_host(key, user, port, &[], "sudo -n true");
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// The reference guest: the uninterrupted run (with concurrency and secrets), its fingerprint
/// sent to the kill guest, then the apt/dpkg, network and lockout cases.
fn reference(release: Release, keys: &Keys, tx: mpsc::Sender<String>) {
    let started = Instant::now();
    let Keys { harness, k1, k2 } = keys;
    let port_2222 = vm::free_port();
    let vm = boot(release, harness, vec![(port_2222, 2222)]);
    let base = config("admin", &k1.public_text, "", "");
    install_bundle(&vm, &base, "setup.sh");
    let booted = started.elapsed();

    // --- secrets: the process list, sampled every 0.2 s while the runs below go on.
    vm.ssh_ok(
        "sudo -n setsid -f bash -c 'echo $$ >/root/sampler.pid; while :; do ps -eo args >>/root/ps.samples; echo --- >>/root/ps.samples; sleep 0.2; done' </dev/null >/dev/null 2>&1",
    );

    // --- concurrency: A is the first run; B starts while A holds the lock and is refused;
    // C starts with --wait, waits, then finds everything done.
    let t = Instant::now();
    start_background(&vm, "a", "");
    let deadline = Instant::now() + Duration::from_secs(120);
    while vm
        .ssh("sudo -n flock -n /run/lock/phanes.lock true")
        .status
        .success()
    {
        assert!(Instant::now() < deadline, "run A never took the lock");
        std::thread::sleep(Duration::from_millis(500));
    }
    let b = vm.ssh("sudo -n bash /root/setup.sh --json");
    let b_err = String::from_utf8_lossy(&b.stderr).into_owned();
    assert_eq!(b.status.code(), Some(3), "a second run is refused: {b_err}");
    assert!(
        b_err.contains("another phanes run is in progress (pid "),
        "the refusal says why: {b_err}"
    );
    assert!(b.stdout.is_empty(), "a refused run runs no step");
    start_background(&vm, "c", "--wait=3000");
    let a_rc = wait_background(&vm, "a", Duration::from_secs(3000));
    let first_run = t.elapsed();
    let a_out = vm.ssh_ok("sudo -n cat /root/a.out /root/a.err");
    assert_eq!(a_rc, 0, "the first run converges:\n{a_out}");
    let c_rc = wait_background(&vm, "c", Duration::from_secs(600));
    let c_out = vm.ssh_ok("sudo -n cat /root/c.out");
    let c_err = vm.ssh_ok("sudo -n cat /root/c.err");
    assert_eq!(c_rc, 0, "the waiting run succeeds:\n{c_out}{c_err}");
    assert!(
        c_err.contains("waiting up to 3000s for another phanes run"),
        "{c_err}"
    );
    let moved: Vec<_> = statuses(&c_out)
        .into_iter()
        .filter(|(_, s)| s != "ok" && s != "skipped")
        .collect();
    assert!(
        moved.is_empty(),
        "the waiting run finds nothing to do: {moved:?}"
    );
    vm.ssh_ok("sudo -n sh -c 'kill $(cat /root/sampler.pid)'");
    let bundle = "bash /root/setup.sh";
    converged(&vm, bundle).unwrap();
    let reference = fingerprint(&vm);
    tx.send(reference.clone()).unwrap();
    report!(
        "[vm_faults] reference on {}: boot {booted:.0?}, first run {first_run:.0?}; fingerprint sha256 {} ({} lines)",
        release.codename(),
        sha256_hex(&reference),
        reference.lines().count()
    );

    // --- secrets: the hash is in no sampled command line, log, record or output.
    let dir = temp_dir("faults-secret");
    fs::write(dir.join("secret"), HASH).unwrap();
    vm.scp_to(&dir.join("secret"), "/tmp/phanes-secret");
    fs::remove_dir_all(dir).unwrap();
    vm.ssh_ok("sudo -n install -m 0600 /tmp/phanes-secret /root/secret && rm /tmp/phanes-secret");
    let samples = vm.ssh_ok("sudo -n grep -c '^---$' /root/ps.samples");
    let leaks = vm.ssh(
        "sudo -n grep -rlF -f /root/secret /root/ps.samples /root/a.out /root/a.err /root/c.out /root/c.err /var/log/phanes /var/lib/phanes /var/log/cloud-init-output.log",
    );
    assert_eq!(
        leaks.status.code(),
        Some(1),
        "the password hash leaked into: {}",
        String::from_utf8_lossy(&leaks.stdout)
    );
    // The hash reached the system (so the samples covered a run that handled it).
    vm.ssh_ok("sudo -n sh -c 'getent shadow admin | cut -d: -f2 | grep -qxF -f /root/secret'");
    let modes = vm.ssh_ok(
        "sudo -n find /var/log/phanes /etc/phanes \\( -type f -o -type d \\) -exec stat -c '%a %U %n' {} + 2>/dev/null || true",
    );
    for line in modes.lines() {
        let mode = line.split(' ').next().unwrap();
        assert!(
            matches!(mode, "700" | "600") && line.contains(" root "),
            "logs and secrets are root's only: {line}"
        );
    }
    report!(
        "[vm_faults] secrets: {} ps samples during the first runs, logs, records and outputs: no password hash; {} log/secret paths 0600/0700 root",
        samples.trim(),
        modes.lines().count()
    );

    // --- the dpkg lock held by another process (unattended-upgrades at first boot): the
    // run waits for it, then installs.
    let with_tree = config("admin", &k1.public_text, ", tree", "");
    install_bundle(&vm, &with_tree, "setup.sh");
    vm.ssh_ok(
        "sudo -n setsid -f python3 -c 'import fcntl, time; f = open(\"/var/lib/dpkg/lock-frontend\", \"w\"); fcntl.lockf(f, fcntl.LOCK_EX); open(\"/root/locked\", \"w\").close(); time.sleep(90)' </dev/null >/dev/null 2>&1",
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while !vm.ssh("sudo -n test -e /root/locked").status.success() {
        assert!(Instant::now() < deadline, "the lock holder did not start");
        std::thread::sleep(Duration::from_millis(500));
    }
    let t = Instant::now();
    let run = run_bundle(&vm, bundle, "");
    let waited = t.elapsed();
    assert_eq!(run.exit, 0, "the run waits for the dpkg lock:\n{}", run.raw);
    assert!(run.with_status("changed").contains("packages.install"));
    let log = vm.ssh_ok("sudo -n cat /var/log/phanes/latest.log");
    assert!(
        waited >= Duration::from_secs(80),
        "the install can only have finished after the lock was released (90 s): {waited:?}\n{log}"
    );
    assert_eq!(
        vm.ssh_ok("dpkg-query -W -f '${db:Status-Abbrev}' tree"),
        "ii "
    );
    let said = log
        .lines()
        .find(|l| l.contains("lock-frontend"))
        .unwrap_or("(apt printed nothing about the lock)");
    report!(
        "[vm_faults] dpkg lock held 90 s: the run waited and succeeded in {waited:.0?}; log: {said}"
    );

    // --- an interrupted dpkg (a package unpacked, never configured): a dry run only warns,
    // a real run finishes it before the first step.
    vm.ssh_ok("cd /tmp && apt-get download -q pv >/dev/null && sudo -n dpkg --unpack /tmp/pv_*.deb >/dev/null");
    assert_eq!(
        vm.ssh_ok("dpkg-query -W -f '${db:Status-Abbrev}' pv"),
        "iU "
    );
    let dry = run_bundle(&vm, bundle, "--dry-run");
    assert_eq!(dry.recap["warnings"], 1, "{}", dry.raw);
    assert!(dry.raw.contains("dpkg was interrupted"), "{}", dry.raw);
    assert_eq!(
        vm.ssh_ok("dpkg-query -W -f '${db:Status-Abbrev}' pv"),
        "iU ",
        "a dry run changes nothing"
    );
    let run = run_bundle(&vm, bundle, "");
    assert_eq!(run.exit, 0, "{}", run.raw);
    assert_eq!(
        vm.ssh_ok("dpkg-query -W -f '${db:Status-Abbrev}' pv"),
        "ii "
    );
    let log = vm.ssh_ok("sudo -n cat /var/log/phanes/latest.log");
    assert!(
        log.contains("dpkg was interrupted: running dpkg --configure -a"),
        "{log}"
    );
    report!(
        "[vm_faults] interrupted dpkg: dry run warned and changed nothing; the run repaired it first"
    );

    // --- the archive unreachable mid-run (apt's proxy refuses connections): the step names
    // what it could not reach, nothing is half-configured, and with the network back the
    // next run converges.
    let with_ncdu = config("admin", &k1.public_text, ", tree, ncdu", "");
    install_bundle(&vm, &with_ncdu, "setup.sh");
    vm.ssh_ok("echo 'Acquire::http::Proxy \"http://127.0.0.1:9/\";' | sudo -n tee /etc/apt/apt.conf.d/99phanes-test-proxy >/dev/null");
    let run = run_bundle(&vm, bundle, "");
    assert_eq!(run.exit, 1, "{}", run.raw);
    let failed: Vec<Value> = run
        .raw
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["status"] == "failed")
        .collect();
    assert_eq!(failed.len(), 1, "{}", run.raw);
    assert_eq!(failed[0]["step"], "packages.install");
    let message = failed[0]["message"].as_str().unwrap().to_string();
    assert!(
        message.contains("Failed to fetch http://deb.debian.org/")
            && message.contains("127.0.0.1:9"),
        "the step names what it could not reach: {message}"
    );
    assert!(
        run.recap["not_run"].as_u64().unwrap() > 0,
        "the run stops at the failure"
    );
    assert_eq!(
        vm.ssh_ok("sudo -n dpkg --audit"),
        "",
        "nothing half-configured"
    );
    assert!(
        !vm.ssh("dpkg-query -W -f '${db:Status-Abbrev}' ncdu 2>/dev/null | grep -q '^ii'")
            .status
            .success()
    );
    vm.ssh_ok("sudo -n rm /etc/apt/apt.conf.d/99phanes-test-proxy");
    let run = run_bundle(&vm, bundle, "");
    assert_eq!(run.exit, 0, "{}", run.raw);
    assert_eq!(
        vm.ssh_ok("dpkg-query -W -f '${db:Status-Abbrev}' ncdu"),
        "ii "
    );
    converged(&vm, bundle).unwrap();
    report!(
        "[vm_faults] archive unreachable: packages.install failed with \"{message}\"; converged with the network back"
    );

    // --- lockout sequences: after each run a fresh SSH login as the configured user works.
    let extra = ", tree, ncdu";
    let steps: [(&str, String, &TestKey, &str, u16); 5] = [
        (
            "keys rotated",
            config("admin", &k2.public_text, extra, ""),
            k2,
            "admin",
            vm.ssh_port(),
        ),
        (
            "password login on",
            config(
                "admin",
                &k2.public_text,
                extra,
                "  ssh:\n    password_authentication: true\n",
            ),
            k2,
            "admin",
            vm.ssh_port(),
        ),
        (
            "user renamed",
            config(
                "ops",
                &k2.public_text,
                extra,
                "  ssh:\n    password_authentication: true\n",
            ),
            k2,
            "ops",
            vm.ssh_port(),
        ),
        (
            "password login off",
            config("ops", &k2.public_text, extra, ""),
            k2,
            "ops",
            vm.ssh_port(),
        ),
        (
            "SSH port moved",
            config("ops", &k2.public_text, extra, "  ssh:\n    port: 2222\n"),
            k2,
            "ops",
            port_2222,
        ),
    ];
    for (case, cfg, key, user, port) in steps {
        install_bundle(&vm, &cfg, "setup.sh");
        let run = run_bundle(&vm, bundle, "");
        assert_eq!(run.exit, 0, "{case}: {}", run.raw);
        if let Err(e) = login(&key.private, user, port) {
            panic!("{case}: {user} cannot log in with its key on port {port}: {e}");
        }
        match case {
            "keys rotated" => assert!(
                login(&k1.private, "admin", port).is_err(),
                "the rotated-out key must no longer log in"
            ),
            "password login off" => {
                let out = ssh_from_host(
                    &key.private,
                    user,
                    port,
                    &["-o", "PubkeyAuthentication=no"],
                    "true",
                );
                let err = String::from_utf8_lossy(&out.stderr);
                assert!(
                    err.contains("Permission denied (publickey)"),
                    "only keys are offered: {err}"
                );
            }
            _ => {}
        }
        report!(
            "[vm_faults] lockout, {case}: run converged, {user} logs in with its key on port {port}"
        );
    }
    converged(&vm, bundle).unwrap();
    report!(
        "[vm_faults] reference guest on {}: {:.0?} in all",
        release.codename(),
        started.elapsed()
    );
}

/// Runs the bundle, waits for WHEN, sleeps DELAY, then kills the run's process group (or cuts
/// the power). Prints "killed N" (N item lines were printed) or "finished RC".
const KILL_AT: &str = r#"#!/bin/bash
when=$1 delay=$2 action=$3
out=/root/run.out
: >"$out"
setsid bash /root/setup.sh --json >"$out" 2>>/root/run.err </dev/null &
pid=$!
lines() { grep -c '"kind"' "$out"; }
hit() {
  case $when in
    lines:*) [ "$(lines)" -ge "${when#lines:}" ] ;;
    download) pgrep -f -- 'confold install ' >/dev/null && [ -n "$(ls /var/cache/apt/archives/partial)" ] ;;
    unpack) pgrep -f -- 'dpkg .*--unpack' >/dev/null ;;
    configure) pgrep -f -- 'dpkg .*--configure' >/dev/null ;;
  esac
}
while kill -0 "$pid" 2>/dev/null; do
  reason=$when
  # Never let an apt point run past packages.install: kill there instead.
  if hit || { [[ $when != lines:* ]] && [ "$(lines)" -ge 1 ] && reason=missed; }; then
    sleep "$delay"
    if [ "$action" = power ]; then
      echo 1 >/proc/sys/kernel/sysrq
      echo b >/proc/sysrq-trigger
    fi
    pgid=$(ps -o pgid= "$pid" | tr -d ' ')
    kill -9 -- "-$pgid"
    wait "$pid" 2>/dev/null
    echo "killed $(lines) $reason"
    exit 0
  fi
  sleep 0.05
done
wait "$pid"
echo "finished $?"
"#;

/// The kill guest: SIGKILL at many points, one power cut, then the fingerprint. `every`: kill
/// after every `every`th step (1 under `PHANES_VM=full`).
fn kill_guest(release: Release, keys: &Keys, rx: mpsc::Receiver<String>, every: usize) {
    let started = Instant::now();
    let Keys { harness, k1, .. } = keys;
    let mut vm = boot(release, harness, Vec::new());
    install_bundle(&vm, &config("admin", &k1.public_text, "", ""), "setup.sh");
    put_script(&vm, "kill-at.sh", KILL_AT);
    let list = vm.ssh_ok("sudo -n bash /root/setup.sh --list --json");
    let steps = list
        .lines()
        .filter(|l| l.contains("\"kind\":\"step\""))
        .count();
    assert!(steps > 20, "{list}");

    let mut points: Vec<(String, f64, &str)> = vec![
        ("download".into(), 2.0, "kill"),
        ("unpack".into(), 0.5, "kill"),
        ("unpack".into(), 4.0, "power"),
        ("configure".into(), 1.0, "kill"),
        ("unpack".into(), 0.0, "kill"),
    ];
    for k in (1..steps).filter(|k| k % every == 0) {
        points.push((format!("lines:{k}"), [0.0, 0.2, 0.6][k % 3], "kill"));
    }
    let (mut tried, mut clean, mut missed, mut finished_early) = (0, 0, 0, false);
    let mut report = Vec::new();
    for (when, delay, action) in &points {
        let old_boot = if *action == "power" {
            vm.boot_id()
        } else {
            String::new()
        };
        let out = vm.ssh(&format!(
            "sudo -n bash /root/kill-at.sh {when} {delay} {action}"
        ));
        if *action == "power" {
            vm.wait_new_boot(&old_boot, SSH_TIMEOUT);
            tried += 1;
            report.push(format!("power cut at {when}+{delay}s"));
            continue;
        }
        let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert!(out.status.success(), "kill-at {when}: {text}");
        if text.starts_with("finished") {
            finished_early = true;
            report.push(format!("{when}: the run finished first ({text})"));
            break;
        }
        tried += 1;
        if text.ends_with("missed") {
            missed += 1;
        }
        // What the killed run printed: a step that failed before the kill is a finding.
        let printed = vm.ssh_ok("sudo -n cat /root/run.out");
        let failed: Vec<_> = statuses(&printed)
            .into_iter()
            .filter(|(_, s)| s == "failed")
            .collect();
        if failed.is_empty() {
            clean += 1;
        }
        report.push(format!(
            "{when}+{delay}s: {text}; failed before the kill: {failed:?}"
        ));
    }
    // The points tried, printed before any verdict, so a failure still shows them.
    for line in &report {
        report!("[vm_faults]   {line}");
    }
    let last = run_bundle(&vm, "bash /root/setup.sh", "");
    assert_eq!(
        last.exit, 0,
        "the run after the last kill converges:\n{}",
        last.raw
    );
    converged(&vm, "bash /root/setup.sh").unwrap();
    let fp = fingerprint(&vm);
    let reference = rx
        .recv()
        .expect("the reference guest failed before its fingerprint");
    report!(
        "[vm_faults] kill guest on {}: {tried} kill points (incl. 1 power cut; after every {}; {missed} apt points fell back to the end of packages.install), {clean} of the resumed runs had no failed step before their own kill{}; fingerprint sha256 {}; {:.0?} in all",
        release.codename(),
        match every {
            1 => "step".to_string(),
            n => format!("{n}th of {steps} steps"),
        },
        if finished_early {
            " (a run finished before its kill point)"
        } else {
            ""
        },
        sha256_hex(&fp),
        started.elapsed()
    );
    // Past libtest's capture at once: CI's log shows only the end of a long run.
    if fp != reference {
        report!(
            "[vm_faults] fingerprint differs:\n{}",
            diff(&reference, &fp)
        );
    }
    assert!(
        fp == reference,
        "after {tried} kills the state differs from the uninterrupted run:\n{}",
        diff(&reference, &fp)
    );
    assert_eq!(
        clean,
        tried - 1,
        "every resumed run went on without a failed step"
    );
    report!("[vm_faults] all {tried} kill points converged to the reference fingerprint");
}

fn faults(release: Release) {
    let started = Instant::now();
    // CI's tier samples the step kill points (the apt and power points all stay) to fit its
    // budget; `full` kills after every step.
    let every = match vm::vm_tests_enabled() {
        Some(vm::Tier::Full) => 1,
        _ => 4,
    };
    let (tx, rx) = mpsc::channel();
    let keys = std::sync::Arc::new(Keys {
        harness: TestKey::generate(),
        k1: TestKey::generate(),
        k2: TestKey::generate(),
    });
    let ref_keys = keys.clone();
    let reference = std::thread::spawn(move || reference(release, &ref_keys, tx));
    let killer = std::thread::spawn(move || kill_guest(release, &keys, rx, every));
    let k = killer.join();
    let r = reference.join();
    if let Err(e) = r {
        std::panic::resume_unwind(e);
    }
    if let Err(e) = k {
        std::panic::resume_unwind(e);
    }
    report!(
        "[vm_faults] {}: both guests done in {:.0?}",
        release.codename(),
        started.elapsed()
    );
}

vm_case!(bookworm_faults, "faults", Bookworm, Always, faults);
vm_case!(trixie_faults, "faults", Trixie, FullOnly, faults);
