//! The VM benchmark of issue 9: per built-in profile, in fresh Debian 12 guests under TCG, the
//! floor (one `apt-get update` plus one `apt-get install` of exactly the bundle's package set),
//! the bundle's first run, its no-op re-runs and `--dry-run`s, the process spawns of a no-op run
//! and of a dry run (strace), and the time the same guest takes to simply spawn that many
//! processes. Not a test: it asserts only what the figures need (each run succeeds, a no-op run
//! changes nothing) and writes one JSON file per profile, which `scripts/bench.sh --vm` turns into
//! the VM section of BENCHMARKS.md.
//!
//! Method (also written into BENCHMARKS.md by the script): the floor and the bundle each get
//! their own fresh guest from the same image, floor first, because a package install cannot be
//! undone cheaply and a guest that already has the packages (or the apt lists) would flatter the
//! second measurement. Both guests boot with the same bare `#cloud-config` (one login user),
//! wait for cloud-init, for the boot to settle and for apt's own timers to be idle, and every
//! figure is timed inside the guest (`$EPOCHREALTIME` around the command, no SSH round trip).
//!
//! `PHANES_VM_BENCH=1 cargo test --release --test vm_bench -- --nocapture`
//!   `PHANES_VM_BENCH_PROFILES=minimal,web,database` (default; the others need vendor downloads);
//!   `PHANES_VM_BENCH_RUNS=5` runs of each repeated measurement;
//!   `PHANES_VM_BENCH_OUT=DIR` (default `target/vm-bench`): `<profile>.json` per profile.

mod common;
#[path = "support/vm.rs"]
mod vm;

use common::{phanes, temp_dir};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use vm::{BootOptions, Release, SSH_TIMEOUT, TestKey, Vm};

/// The login user of the bare cloud-config; the bundle creates `admin` itself.
const LOGIN: &str = "bench";
const ADMIN: &str = "admin";

/// Runs a command with stdout to OUT and stderr to OUT.err and prints "EXIT MICROSECONDS": the
/// timing happens in the guest, without SSH or sudo in it.
const TIMED: &str = r#"#!/bin/bash
out=$1
shift
s=${EPOCHREALTIME/./}
"$@" >"$out" 2>"$out.err"
rc=$?
e=${EPOCHREALTIME/./}
echo "$rc $((e - s))"
"#;

/// The profiles this machine can run end to end: vendor repositories and installers are not
/// reachable from here, so every service comes from the distribution.
fn profile_config(profile: &str, key: &str) -> Option<String> {
    let base = format!(
        "baseline:
  hostname: phanes-bench
user:
  users:
    - name: {ADMIN}
      ssh_keys: [\"{key}\"]
security:
  fail2ban:
    # The harness's SSH comes from QEMU's gateway: never ban it.
    ignore_addresses: [198.51.100.2]
"
    );
    match profile {
        "minimal" => Some(base),
        "database" => Some(base + "postgres:\n  source: distro\n"),
        "web" => Some(
            base + "docker:\n  source: distro\ncaddy:\n  source: distro\n  tls: internal\n  \
                    sites:\n    - domains: [static.test]\n      root: /srv/static\n",
        ),
        // coolify runs its vendor's installer, dev downloads release binaries: neither is
        // reachable from these guests.
        _ => None,
    }
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_string())
}

/// The package set of the bundle's single apt step, read from the rendered setup.sh (what the
/// guest will run), and checked against `phanes plan`'s description of the same step.
fn bundle_packages(setup: &str, plan: &str) -> Vec<String> {
    let line = setup
        .lines()
        .find(|l| l.starts_with("packages_install__apply() { phanes_apt_install "))
        .expect("setup.sh has a packages.install step");
    let list = line
        .trim_start_matches("packages_install__apply() { phanes_apt_install ")
        .trim_end_matches("; }");
    let packages: Vec<String> = list
        .split_whitespace()
        .map(|w| w.trim_matches('\'').to_string())
        .collect();
    let planned = plan
        .lines()
        .find(|l| l.contains("packages.install"))
        .and_then(|l| l.split_once("installed: "))
        .map(|(_, p)| p.split(", ").map(str::to_string).collect::<Vec<_>>())
        .expect("phanes plan lists packages.install");
    assert_eq!(packages, planned, "setup.sh and phanes plan disagree");
    packages
}

fn render(profile: &str, config: &str) -> (PathBuf, Vec<String>) {
    let dir = temp_dir(&format!("bench-{profile}"));
    fs::write(dir.join("phanes.yaml"), config).unwrap();
    let run = |args: &[&str]| {
        let out = phanes().args(args).current_dir(&dir).output().unwrap();
        assert!(
            out.status.success(),
            "phanes {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    run(&["render", "--profile", profile, "--out", "out"]);
    let plan = run(&["plan", "--profile", profile]);
    let setup = fs::read_to_string(dir.join("out/setup.sh")).unwrap();
    (dir.join("out"), bundle_packages(&setup, &plan))
}

/// A fresh guest with the bare cloud-config, settled (see [`settle`]), with /tmp/timed.
fn boot(name: &str, key: &TestKey) -> Vm {
    let user_data = vm::login_user_data(LOGIN, &key.public_text);
    let mut vm = Vm::boot(
        Release::Bookworm,
        BootOptions {
            user_data: user_data.into(),
            hostname: name.to_string(),
            // Alone on the machine: another TCG guest beside it would be in every figure.
            exclusive: true,
            ..Default::default()
        },
    );
    vm.wait_ssh(LOGIN, &key.private, SSH_TIMEOUT);
    let (status, code) = vm.wait_cloud_init();
    assert_eq!(code, 0, "cloud-init status:\n{status}");
    vm.ssh_ok(&format!(
        "cat > /tmp/timed <<'EOF'\n{TIMED}EOF\nchmod +x /tmp/timed"
    ));
    settle(&vm);
    vm
}

/// Waits until the boot has finished and apt's own timers (apt-daily, apt-daily-upgrade) are not
/// running, so they neither hold apt's lock nor take the CPU during a measurement.
fn settle(vm: &Vm) {
    vm.ssh_ok(
        "systemctl is-system-running --wait >/dev/null || true
         for i in $(seq 360); do
           systemctl is-active -q apt-daily.service apt-daily-upgrade.service || exit 0
           sleep 5
         done
         echo 'apt timers still busy after 30 min' >&2; exit 1",
    );
}

/// Runs `command` as root through /tmp/timed; returns (exit, seconds, stdout).
fn timed(vm: &Vm, command: &str) -> (i32, f64, String) {
    let line = vm.ssh_ok(&format!("sudo -n /tmp/timed /tmp/timed.out {command}"));
    let mut words = line.split_whitespace();
    let exit: i32 = words.next().unwrap().parse().unwrap();
    let us: f64 = words.next().unwrap().parse().unwrap();
    let out = vm.ssh_ok("sudo -n cat /tmp/timed.out");
    (exit, us / 1e6, out)
}

fn loadavg(vm: &Vm) -> String {
    vm.ssh_ok("cut -d' ' -f1-3 /proc/loadavg")
        .trim()
        .to_string()
}

fn host_loadavg() -> String {
    fs::read_to_string("/proc/loadavg")
        .unwrap()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Median, min and max of `runs`, with the runs themselves.
fn stats(runs: &[f64]) -> Value {
    let mut sorted = runs.to_vec();
    sorted.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = sorted.len();
    let median = if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    };
    json!({"median": median, "min": sorted[0], "max": sorted[n - 1], "runs": runs})
}

/// One bundle run with `--json`: each step's status and seconds, and the recap.
struct BundleRun {
    exit: i32,
    wall: f64,
    steps: Vec<(String, String, f64)>,
    recap: Value,
}

fn run_bundle(vm: &Vm, args: &str) -> BundleRun {
    let (exit, wall, out) = timed(vm, &format!("bash /tmp/setup.sh --json {args}"));
    let mut steps = Vec::new();
    let mut recap = Value::Null;
    for line in out.lines() {
        let v: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("bad JSON line {line:?}: {e}"));
        if let Some(r) = v.get("recap") {
            recap = r.clone();
        } else if let Some(step) = v["step"].as_str() {
            let id = if v["kind"] == "handler" {
                format!("handler:{step}")
            } else {
                step.to_string()
            };
            steps.push((
                id,
                v["status"].as_str().unwrap_or_default().to_string(),
                v["seconds"].as_f64().unwrap_or_default(),
            ));
        }
    }
    BundleRun {
        exit,
        wall,
        steps,
        recap,
    }
}

/// Process spawns in an `strace -f` log: programs run (successful execve) and new processes
/// (fork, vfork, clone without CLONE_THREAD), in total and per step. The bundle writes one JSON
/// line per finished step to stdout from its main shell, so what happens between two such
/// writes belongs to the second step; the first bucket also holds the start-up (option parsing,
/// preflight), the last one the recap and the state file.
#[derive(Debug, Default, PartialEq)]
struct Spawns {
    execs: usize,
    forks: usize,
    /// (step, execs, forks), in run order.
    per_step: Vec<(String, usize, usize)>,
}

fn parse_strace(log: &str) -> Spawns {
    let mut spawns = Spawns::default();
    let mut root: Option<&str> = None;
    let (mut execs, mut forks) = (0, 0);
    for line in log.lines() {
        let Some((pid, rest)) = line.trim_start().split_once(' ') else {
            continue;
        };
        let rest = rest.trim_start();
        let root_pid = *root.get_or_insert(pid);
        let failed = rest.contains(") = -1 ") || rest.ends_with("= ?");
        if (rest.starts_with("execve(") || rest.starts_with("<... execve resumed>"))
            && !rest.contains("<unfinished ...>")
            && rest.ends_with(" = 0")
        {
            execs += 1;
        } else if ["clone(", "clone3(", "fork(", "vfork("]
            .iter()
            .any(|s| rest.starts_with(s))
            && !rest.contains("CLONE_THREAD")
            && !failed
        {
            forks += 1;
        } else if pid == root_pid && rest.starts_with("write(1, \"{\\\"") {
            let label = if let Some(after) = rest.split_once("{\\\"step\\\":\\\"") {
                after.1.split("\\\"").next().unwrap_or_default().to_string()
            } else if rest.contains("{\\\"recap\\\"") {
                "(recap)".to_string()
            } else {
                continue;
            };
            spawns.per_step.push((label, execs, forks));
            spawns.execs += execs;
            spawns.forks += forks;
            (execs, forks) = (0, 0);
        }
    }
    if execs + forks > 0 {
        spawns
            .per_step
            .push(("(after the recap)".into(), execs, forks));
        spawns.execs += execs;
        spawns.forks += forks;
    }
    spawns
}

/// Runs the bundle under `strace -f` with `args`; the spawn counts. `--seccomp-bpf` stops the
/// tracee only at the traced calls: without it every syscall stops, and a bash loop reading a
/// file from a pipe (one read per byte) takes minutes under TCG.
fn traced(vm: &Vm, args: &str) -> Spawns {
    let out = vm.ssh(&format!(
        "sudo -n strace -f --seccomp-bpf -qq -s 96 -e signal=none -e trace=execve,fork,vfork,clone,clone3,write \
         -o /tmp/strace.log bash /tmp/setup.sh --json {args} >/dev/null"
    ));
    assert!(
        out.status.code() == Some(0),
        "traced run {args:?} exited {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    parse_strace(&vm.ssh_ok("sudo -n cat /tmp/strace.log"))
}

fn spawns_json(s: &Spawns) -> Value {
    let mut top: Vec<&(String, usize, usize)> = s.per_step.iter().collect();
    top.sort_by_key(|s| std::cmp::Reverse(s.1 + s.2));
    json!({
        "execs": s.execs,
        "forks": s.forks,
        "top_steps": top.iter().take(8).map(|(id, e, f)| json!({"step": id, "execs": e, "forks": f})).collect::<Vec<_>>(),
        "per_step": s.per_step.iter().map(|(id, e, f)| json!({"step": id, "execs": e, "forks": f})).collect::<Vec<_>>(),
    })
}

/// The floor in its own fresh guest: `apt-get update`, then one `apt-get install` of `packages`
/// with the options the bundle's apt calls use (non-interactive, keep config files, recommends
/// as apt's default).
fn floor(profile: &str, key: &TestKey, packages: &[String]) -> Value {
    let started = Instant::now();
    let vm = boot(&format!("floor-{profile}"), key);
    let booted = started.elapsed();
    let load_before = loadavg(&vm);
    let apt = "env DEBIAN_FRONTEND=noninteractive apt-get -y -q -o DPkg::Lock::Timeout=300 \
               -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold";
    let (rc, update, out) = timed(&vm, &format!("{apt} update"));
    assert_eq!(rc, 0, "apt-get update failed:\n{out}");
    let (rc, install, out) = timed(&vm, &format!("{apt} install {}", packages.join(" ")));
    assert_eq!(rc, 0, "apt-get install failed:\n{out}");
    let newly = out
        .lines()
        .find(|l| l.contains("newly installed"))
        .unwrap_or_default()
        .to_string();
    let load_after = loadavg(&vm);
    eprintln!("[vm_bench] {profile} floor: update {update:.1} s, install {install:.1} s ({newly})");
    json!({
        "update_s": update,
        "install_s": install,
        "total_s": update + install,
        "apt_summary": newly,
        "guest_load_before": load_before,
        "guest_load_after": load_after,
        "boot_s": booted.as_secs_f64(),
        "phase_s": started.elapsed().as_secs_f64(),
    })
}

/// The bundle in its own fresh guest: first run, no-op runs, dry runs, spawns, spawn baseline.
fn bundle(profile: &str, key: &TestKey, out: &Path, runs: usize) -> Value {
    let started = Instant::now();
    let vm = boot(&format!("bundle-{profile}"), key);
    let booted = started.elapsed();
    vm.scp_to(&out.join("setup.sh"), "/tmp/setup.sh");
    let guest = json!({
        "kernel": vm.ssh_ok("uname -r").trim(),
        "nproc": vm.ssh_ok("nproc").trim(),
        "memory": vm.ssh_ok("free -m | awk '/^Mem:/ {print $2 \" MiB\"}'").trim(),
        "bash": vm.ssh_ok("bash -c 'echo $BASH_VERSION'").trim(),
        "os": vm.ssh_ok(". /etc/os-release; echo \"$PRETTY_NAME\"").trim(),
    });
    let load_before = loadavg(&vm);

    let first = run_bundle(&vm, "");
    assert_eq!(first.exit, 0, "first run failed: {}", first.recap);
    eprintln!("[vm_bench] {profile} first run: {:.1} s", first.wall);
    let first_steps: Vec<Value> = {
        let mut s: Vec<&(String, String, f64)> = first.steps.iter().collect();
        s.sort_by(|a, b| b.2.partial_cmp(&a.2).unwrap());
        s.iter()
            .take(8)
            .map(|(id, st, secs)| json!({"step": id, "status": st, "seconds": secs}))
            .collect()
    };

    // The first run installs unattended-upgrades and enables apt's timers: let them pass.
    settle(&vm);
    let mut noop = Vec::new();
    let mut per_step: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for i in 0..runs {
        let run = run_bundle(&vm, "");
        let moved: Vec<String> = run
            .steps
            .iter()
            .filter(|(_, s, _)| s != "ok" && s != "skipped")
            .map(|(id, s, _)| format!("{id} ({s})"))
            .collect();
        assert!(
            run.exit == 0 && moved.is_empty(),
            "no-op run {i} is not a no-op: exit {}, {moved:?}",
            run.exit
        );
        for (id, _, secs) in &run.steps {
            per_step.entry(id.clone()).or_default().push(*secs);
        }
        eprintln!("[vm_bench] {profile} no-op run {i}: {:.2} s", run.wall);
        noop.push(run.wall);
    }
    let step_count = per_step.len();
    let mut slow: Vec<(String, f64)> = per_step
        .iter()
        .map(|(id, v)| (id.clone(), stats(v)["median"].as_f64().unwrap()))
        .collect();
    slow.sort_by(|a, b| b.1.partial_cmp(&a.1).unwrap());

    let mut dry = Vec::new();
    for i in 0..runs {
        let run = run_bundle(&vm, "--dry-run");
        assert_eq!(run.exit, 0, "dry run {i} found drift: {}", run.recap);
        eprintln!("[vm_bench] {profile} dry run {i}: {:.2} s", run.wall);
        dry.push(run.wall);
    }
    let load_after = loadavg(&vm);

    // strace from Debian, after the timed runs; then the spawn counts of one traced run each.
    vm.ssh_ok("sudo -n env DEBIAN_FRONTEND=noninteractive apt-get install -y -q strace >/dev/null");
    let noop_spawns = traced(&vm, "");
    let dry_spawns = traced(&vm, "--dry-run");
    eprintln!(
        "[vm_bench] {profile} spawns: no-op {} execs / {} forks, dry-run {} / {}",
        noop_spawns.execs, noop_spawns.forks, dry_spawns.execs, dry_spawns.forks
    );

    // The same number of programs started from a bash loop, in the same guest.
    let n = noop_spawns.execs;
    let mut baseline = Vec::new();
    for _ in 0..runs {
        let (rc, secs, _) = timed(
            &vm,
            &format!("bash -c 'for i in $(seq {n}); do /bin/true; done'"),
        );
        assert_eq!(rc, 0);
        baseline.push(secs);
    }
    let noop_stats = stats(&noop);
    let baseline_stats = stats(&baseline);
    eprintln!(
        "[vm_bench] {profile}: {n} x /bin/true takes {:.2} s (no-op run {:.2} s)",
        baseline_stats["median"], noop_stats["median"]
    );

    json!({
        "guest": guest,
        "guest_load_before": load_before,
        "guest_load_after": load_after,
        "first_run": {
            "wall_s": first.wall,
            "recap": first.recap,
            "slowest_steps": first_steps,
        },
        "noop": noop_stats,
        "noop_steps": step_count,
        "noop_slowest_steps": slow.iter().take(8).map(|(id, s)| json!({"step": id, "median_s": s})).collect::<Vec<_>>(),
        "dry_run": stats(&dry),
        "spawns_noop": spawns_json(&noop_spawns),
        "spawns_dry_run": spawns_json(&dry_spawns),
        "spawn_baseline": {"programs": n, "seconds": baseline_stats},
        "boot_s": booted.as_secs_f64(),
        "phase_s": started.elapsed().as_secs_f64(),
    })
}

#[test]
fn vm_bench() {
    if std::env::var("PHANES_VM_BENCH").as_deref() != Ok("1") {
        eprintln!(
            "VM benchmark not requested (set PHANES_VM_BENCH=1, or run scripts/bench.sh --vm)"
        );
        return;
    }
    let profiles = env_or("PHANES_VM_BENCH_PROFILES", "minimal,web,database");
    let runs: usize = env_or("PHANES_VM_BENCH_RUNS", "5")
        .parse()
        .expect("PHANES_VM_BENCH_RUNS: a number");
    assert!(runs >= 1, "PHANES_VM_BENCH_RUNS must be at least 1");
    let out_dir = PathBuf::from(env_or(
        "PHANES_VM_BENCH_OUT",
        concat!(env!("CARGO_MANIFEST_DIR"), "/target/vm-bench"),
    ));
    fs::create_dir_all(&out_dir).unwrap();
    let key = TestKey::generate();
    for profile in profiles.split(',') {
        let config = profile_config(profile, &key.public_text).unwrap_or_else(|| {
            panic!("{profile}: not runnable in this VM (supported: minimal, database, web)")
        });
        let started = Instant::now();
        let host_load_before = host_loadavg();
        let (out, packages) = render(profile, &config);
        let floor = floor(profile, &key, &packages);
        let bundle = bundle(profile, &key, &out, runs);
        let result = json!({
            "profile": profile,
            "release": "bookworm",
            "runs": runs,
            "packages": packages,
            "config": config.replace(&key.public_text, "<test key>"),
            "host_load_before": host_load_before,
            "host_load_after": host_loadavg(),
            "floor": floor,
            "bundle": bundle,
            "total_s": started.elapsed().as_secs_f64(),
        });
        let path = out_dir.join(format!("{profile}.json"));
        fs::write(&path, serde_json::to_string_pretty(&result).unwrap()).unwrap();
        eprintln!(
            "[vm_bench] {profile} done in {:.0?}: {}",
            Duration::from_secs_f64(started.elapsed().as_secs_f64()),
            path.display()
        );
        fs::remove_dir_all(out.parent().unwrap()).unwrap();
    }
}

#[test]
fn strace_log_is_split_by_step() {
    let log = r#"100 execve("/bin/bash", ["bash", "/tmp/setup.sh"], 0x7ffd /* 20 vars */) = 0
100 clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD, child_tidptr=0x7f) = 101
101 execve("/usr/bin/id", ["id", "-u"], 0x55 /* 20 vars */) = 0
100 write(1, "{\"step\":\"packages.install\",\"module\":\"packages\",\"kind\":\"step\"..., 160) = 160
100 clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD <unfinished ...>
102 execve("/usr/bin/missing", ["missing"], 0x55 /* 20 vars */) = -1 ENOENT (No such file or directory)
102 execve("/usr/bin/dpkg-query", ["dpkg-query"], 0x55 /* 20 vars */ <unfinished ...>
100 <... clone resumed>, child_tidptr=0x7f) = 102
102 <... execve resumed>) = 0
103 clone3({flags=CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|CLONE_THREAD|CLONE_SYSVSEM, child_tid=0x7f}, 88) = 104
102 write(1, "{\"step\":\"not.a.step\"}", 21) = 21
100 write(1, "{\"step\":\"baseline.packages\",\"module\":\"baseline\"..., 150) = 150
100 write(1, "{\"recap\":{\"ok\":2}}\n", 19) = 19
100 vfork() = 105
"#;
    assert_eq!(
        parse_strace(log),
        Spawns {
            execs: 3,
            forks: 3,
            per_step: vec![
                ("packages.install".into(), 2, 1),
                ("baseline.packages".into(), 1, 1),
                ("(recap)".into(), 0, 0),
                ("(after the recap)".into(), 0, 1),
            ],
        }
    );
}

#[test]
fn package_set_comes_from_the_bundle_and_matches_the_plan() {
    let setup = "x\npackages_install__apply() { phanes_apt_install 'curl' 'ufw'; }\n";
    let plan = "packages:\n    1. packages.install   Distribution packages installed: curl, ufw\n";
    assert_eq!(bundle_packages(setup, plan), ["curl", "ufw"]);
    let (_, packages) = render(
        "database",
        &profile_config(
            "database",
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGx2dGVzdGtleWJsb2I k",
        )
        .unwrap(),
    );
    assert!(packages.iter().any(|p| p == "postgresql"), "{packages:?}");
}
