//! Tests of the bash runtime library (templates/runtime/*.sh).
//!
//! Each test assembles a synthetic bundle the way the compiler does (header,
//! runtime files in name order, fixture modules, `phanes_register`, `main "$@"`)
//! and runs it with bash. Fixture steps only touch a temp dir: every system path
//! the runtime uses is pointed there through its PHANES_* override, and apt-get,
//! dpkg-query and systemctl are fakes from tests/fixtures/runtime/bin.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn fixtures() -> PathBuf {
    Path::new(ROOT).join("tests/fixtures/runtime")
}

/// The bundle text: header, runtime files in filename order, modules, register, main.
fn bundle_text(modules: &[&str]) -> String {
    let mut out = String::from(concat!(
        "#!/usr/bin/env bash\n",
        "# shellcheck disable=SC2317 # step functions are called by name\n",
        "# phanes 0.1.0 — profile test — synthetic bundle for tests/runtime.rs\n",
        "PHANES_VERSION='0.1.0'\n",
        "PHANES_PROFILE='test'\n",
    ));
    out += &format!("PHANES_MODULES='{}'\n", modules.join(" "));
    out += "PHANES_CONFIG_SHA256='0123abcd'\n";
    let mut runtime: Vec<PathBuf> = fs::read_dir(Path::new(ROOT).join("templates/runtime"))
        .expect("templates/runtime")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "sh"))
        .collect();
    runtime.sort();
    assert!(!runtime.is_empty(), "no runtime files");
    for file in runtime {
        out += &fs::read_to_string(file).unwrap();
    }
    for m in modules {
        out += &fs::read_to_string(fixtures().join(format!("modules/{m}.sh"))).unwrap();
    }
    out += "phanes_register() {\n";
    for m in modules {
        out += &format!("  phanes_module {m}\n");
    }
    out += "}\nmain \"$@\"\n";
    out
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn from(out: Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
    fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
    fn expect(&self, code: i32) -> &Run {
        assert_eq!(
            self.code, code,
            "exit status\n--- stdout\n{}--- stderr\n{}",
            self.stdout, self.stderr
        );
        self
    }
    fn has(&self, needle: &str) -> &Run {
        assert!(
            self.all().contains(needle),
            "output lacks {needle:?}\n--- stdout\n{}--- stderr\n{}",
            self.stdout,
            self.stderr
        );
        self
    }
    fn lacks(&self, needle: &str) -> &Run {
        assert!(
            !self.all().contains(needle),
            "output has {needle:?}\n{}",
            self.all()
        );
        self
    }
    /// The step line for `id`, e.g. "[1/5] demo.file ... changed (0.0s)".
    fn line(&self, id: &str) -> String {
        let pat = format!("] {id} ... ");
        self.stdout
            .lines()
            .find(|l| l.contains(&pat))
            .unwrap_or_else(|| panic!("no line for {id}\n{}", self.stdout))
            .to_string()
    }
    fn status_of(&self, id: &str) -> String {
        let line = self.line(id);
        let rest = line.split(" ... ").nth(1).unwrap();
        rest.rsplit_once(" (").unwrap().0.to_string()
    }
}

/// A temp dir holding one bundle and everything its runs touch.
struct Sandbox {
    dir: PathBuf,
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

impl Sandbox {
    fn new(modules: &[&str]) -> Sandbox {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "phanes-runtime-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("root")).unwrap();
        // Readable by "nobody" for the not-root test.
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        let sb = Sandbox { dir };
        fs::write(sb.bundle(), bundle_text(modules)).unwrap();
        fs::set_permissions(sb.bundle(), fs::Permissions::from_mode(0o644)).unwrap();
        sb
    }
    fn bundle(&self) -> PathBuf {
        self.dir.join("setup.sh")
    }
    fn p(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }
    fn read(&self, rel: &str) -> String {
        fs::read_to_string(self.p(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
    }
    fn os_release(name: &str) -> PathBuf {
        fixtures().join("os-release").join(name)
    }
    /// A clean environment with every path in the sandbox; "PATH+" prepends to PATH.
    fn set_env(&self, cmd: &mut Command, env: &[(&str, &str)]) {
        cmd.env_clear()
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            .env("DEMO_ROOT", self.p("root"))
            .env("DEMO_FAKE_BIN", fixtures().join("bin"))
            .env("PHANES_LOG_DIR", self.p("log"))
            .env("PHANES_STATE_DIR", self.p("state"))
            .env("PHANES_LOCK_FILE", self.p("run/phanes.lock"))
            .env("PHANES_SECRETS_DIR", self.p("secrets"))
            .env("PHANES_DPKG_DIR", self.p("dpkg"))
            .env("PHANES_SYSTEMD_DIR", self.p("no-systemd"))
            .env("PHANES_OS_RELEASE", Self::os_release("debian-12"))
            .stdin(Stdio::null());
        for (k, v) in env {
            if *k == "PATH+" {
                cmd.env("PATH", format!("{v}:/usr/sbin:/usr/bin:/sbin:/bin"));
            } else {
                cmd.env(k, v);
            }
        }
    }
    /// `[prefix...] bash <bundle> args...` in the sandbox environment.
    fn command(&self, prefix: &[&str], args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut all: Vec<&str> = prefix.to_vec();
        all.push("bash");
        let mut cmd = Command::new(all[0]);
        cmd.args(&all[1..]).arg(self.bundle()).args(args);
        self.set_env(&mut cmd, env);
        cmd
    }
    fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        Run::from(self.command(&[], args, env).output().expect("bash"))
    }
    fn run(&self, args: &[&str]) -> Run {
        self.run_env(args, &[])
    }
    /// Every file under log/ (the run logs), concatenated.
    fn all_logs(&self) -> String {
        let mut out = String::new();
        for e in fs::read_dir(self.p("log")).unwrap() {
            let p = e.unwrap().path();
            if p.is_file() && !p.is_symlink() {
                out += &fs::read_to_string(p).unwrap();
            }
        }
        out
    }
}

fn mode(p: &Path) -> u32 {
    fs::symlink_metadata(p).unwrap().mode() & 0o7777
}

const DEMO_CONF: &str = "# demo\ngreeting = hello\n\n";

#[test]
fn first_run_changes_second_run_is_all_ok() {
    let sb = Sandbox::new(&["demo", "after"]);
    let r = sb.run(&[]);
    r.expect(0)
        .has("phanes: ok=1 changed=6 failed=0 skipped=1 warnings=1")
        .has("log: ");
    assert_eq!(r.status_of("demo.file"), "changed");
    assert_eq!(r.status_of("demo.nested"), "changed");
    assert_eq!(r.status_of("demo.gone"), "ok");
    assert_eq!(r.status_of("demo.skipme"), "skipped: not on this machine");
    assert!(r.line("demo.file").starts_with("[1/7] demo.file"));
    assert!(r.line("after.file").starts_with("[6/7] after.file"));
    r.has("warning: after.file: after.txt was missing");
    // phanes_retry tried again after a failure.
    assert_eq!(r.status_of("after.retry"), "changed");
    assert_eq!(sb.read("root/tries"), "try\ntry\n");
    // The apply's own output goes to the log, not the terminal.
    r.lacks("writing demo.conf");
    assert!(!sb.p("root/skipped-step-ran").exists());
    // Byte-exact content (trailing blank line kept), mode and owner.
    let conf = sb.p("root/etc/demo.conf");
    assert_eq!(fs::read_to_string(&conf).unwrap(), DEMO_CONF);
    assert_eq!(mode(&conf), 0o644);
    assert_eq!(fs::metadata(&conf).unwrap().uid(), 0);
    assert_eq!(mode(&sb.p("root/etc/deep/er/nested.conf")), 0o600);
    assert_eq!(mode(&sb.p("root/etc/deep")), 0o755);

    let started = Instant::now();
    let again = sb.run(&[]);
    again
        .expect(0)
        .has("phanes: ok=6 changed=0 failed=0 skipped=1 in")
        .lacks("handler demo_reload");
    for id in [
        "demo.file",
        "demo.nested",
        "demo.gone",
        "demo.secret",
        "after.file",
        "after.retry",
    ] {
        assert_eq!(again.status_of(id), "ok", "{id}");
    }
    // A converged re-run is quick (no apt, few forks).
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn every_supported_system_passes_preflight() {
    for os in ["debian-12", "debian-13", "ubuntu-22.04", "ubuntu-24.04"] {
        let sb = Sandbox::new(&["demo"]);
        let release = Sandbox::os_release(os);
        let r = sb.run_env(&[], &[("PHANES_OS_RELEASE", release.to_str().unwrap())]);
        r.expect(0).has("changed=4");
        let log = sb.read("log/latest.log");
        let id = os.split('-').next().unwrap();
        assert!(log.contains(&format!("({id} ")), "{os}: {log}");
    }
}

#[test]
fn unsupported_system_is_refused_before_any_change() {
    let sb = Sandbox::new(&["demo"]);
    let release = Sandbox::os_release("centos-9");
    let r = sb.run_env(&[], &[("PHANES_OS_RELEASE", release.to_str().unwrap())]);
    r.expect(3).has(
        "unsupported system: CentOS Stream 9 (phanes supports Debian 12, 13, Ubuntu 22.04, 24.04)",
    );
    assert!(!sb.p("root/etc").exists());
    assert!(!sb.p("log").exists());
}

#[test]
fn os_release_is_parsed_not_executed() {
    let sb = Sandbox::new(&["demo"]);
    let pwned = sb.p("pwned");
    let hostile = format!(
        "ID=debian\nVERSION_ID=\"12\"\nPRETTY_NAME=\"$(touch {0})\"\nEVIL=`touch {0}`\n",
        pwned.display()
    );
    fs::write(sb.p("os-release"), hostile).unwrap();
    let path = sb.p("os-release");
    sb.run_env(&[], &[("PHANES_OS_RELEASE", path.to_str().unwrap())])
        .expect(0);
    assert!(!pwned.exists(), "os-release content was executed");
}

#[test]
fn dry_run_reports_exactly_the_drifted_step() {
    let sb = Sandbox::new(&["demo", "after"]);
    sb.run(&[]).expect(0);
    sb.run(&["--dry-run"])
        .expect(0)
        .has("(dry-run: would change=0)");

    let conf = sb.p("root/etc/demo.conf");
    fs::write(&conf, "# demo\ngreeting = edited by hand\n").unwrap();
    let r = sb.run(&["--check"]);
    r.expect(2).has("(dry-run: would change=1)");
    assert_eq!(r.status_of("demo.file"), "would change");
    let drifted: Vec<&str> = r
        .stdout
        .lines()
        .filter(|l| l.contains("would change ("))
        .collect();
    assert_eq!(drifted.len(), 1, "{}", r.stdout);
    // Dry-run changed nothing, and PHANES_DRY_RUN=1 does the same.
    assert_eq!(
        fs::read_to_string(&conf).unwrap(),
        "# demo\ngreeting = edited by hand\n"
    );
    sb.run_env(&[], &[("PHANES_DRY_RUN", "1")]).expect(2);
    assert!(sb.p("state/last-check.json").exists());

    // The step and the handler it notifies.
    sb.run(&[]).expect(0).has("changed=2");
    assert_eq!(fs::read_to_string(&conf).unwrap(), DEMO_CONF);
}

#[test]
fn mode_and_owner_drift_is_repaired() {
    let sb = Sandbox::new(&["demo"]);
    sb.run(&[]).expect(0);
    let conf = sb.p("root/etc/demo.conf");
    fs::set_permissions(&conf, fs::Permissions::from_mode(0o666)).unwrap();
    let r = sb.run(&["--dry-run"]);
    r.expect(2);
    assert_eq!(r.status_of("demo.file"), "would change");
    assert_eq!(sb.run(&[]).expect(0).status_of("demo.file"), "changed");
    assert_eq!(mode(&conf), 0o644);

    let chown = Command::new("chown")
        .args(["65534:65534", conf.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(chown.success());
    assert_eq!(sb.run(&[]).expect(0).status_of("demo.file"), "changed");
    let meta = fs::metadata(&conf).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (0, 0));
}

#[test]
fn failure_stops_by_default_and_shows_message_and_log_tail() {
    let sb = Sandbox::new(&["demo", "broken", "after"]);
    let r = sb.run(&[]);
    r.expect(1)
        .has("A step whose apply reports a failure")
        .has("disk is full (simulated)")
        .has("| apply detail line for the log tail")
        .has("| trying to fix the thing")
        .has("stopped at the first failure: 4 step(s) not run")
        .has("failed=1")
        .lacks("broken.noop ...")
        .lacks("after.file ...");
    assert_eq!(r.status_of("broken.fails"), "failed");
    assert!(!sb.p("root/after.txt").exists());
    // The handler of a module whose steps all finished still ran.
    assert_eq!(sb.read("root/reloads"), "reload\n");
}

#[test]
fn keep_going_runs_every_step_and_names_each_failure() {
    let sb = Sandbox::new(&["broken", "after"]);
    for (args, env) in [
        (vec!["--keep-going"], vec![]),
        (vec![], vec![("PHANES_KEEP_GOING", "1")]),
    ] {
        let r = sb.run_env(&args, &env);
        r.expect(1)
            .has("check still fails after apply")
            .has("| this apply does nothing")
            .has("apply failed (exit 1)")
            .has("broken_exits__apply: false")
            .has("failed=3")
            .lacks("not run");
        assert_eq!(r.status_of("broken.noop"), "failed");
        assert_eq!(r.status_of("broken.exits"), "failed");
        assert!(sb.p("root/after.txt").exists());
        // The failing command stopped the apply (errexit inside steps).
        assert!(!sb.p("root/never-there-either").exists());
        assert!(!sb.p("root/broken-fixed").exists());
    }
}

#[test]
fn only_and_skip_select_by_step_and_by_module() {
    let sb = Sandbox::new(&["demo", "broken", "after"]);
    let r = sb.run(&["--only", "demo.file"]);
    r.expect(0).has("changed=2"); // the step and its handler
    assert!(r.line("demo.file").starts_with("[1/1]"));
    r.lacks("demo.nested").lacks("after.file");

    let r = sb.run(&["--only=after"]);
    r.expect(0).has("changed=2").lacks("demo.file ...");
    assert!(sb.p("root/after.txt").exists());

    sb.run(&["--skip", "broken"]).expect(0);
    sb.run_env(&[], &[("PHANES_SKIP", "broken")]).expect(0);
    sb.run_env(&[], &[("PHANES_ONLY", "demo,after")]).expect(0);
    let r = sb.run(&["--skip", "broken.fails,broken.noop,broken.exits"]);
    r.expect(0).lacks("broken.");
    sb.run(&["--only", "broken.noop"]).expect(1);

    sb.run(&["--only", "nope"])
        .expect(3)
        .has("unknown step or module 'nope'")
        .has("modules: demo broken after");
    sb.run(&["--skip", "demo.fil"]).expect(3).has("'demo.fil'");
    sb.run(&["--frobnicate"])
        .expect(3)
        .has("unknown option '--frobnicate'");
}

#[test]
fn list_help_and_version_need_no_root() {
    let sb = Sandbox::new(&["demo", "after"]);
    let nobody = [
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
    ];
    let out = sb.command(&nobody, &["--list"], &[]).output().unwrap();
    let r = Run::from(out);
    r.expect(0);
    let lines: Vec<Vec<&str>> = r
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines[0][..2], ["demo", "demo.file"]);
    assert_eq!(lines[0][2..].join(" "), "demo.conf says hello");
    assert!(lines.iter().any(|l| l[..2] == ["after", "after.file"]));
    assert!(lines.iter().any(|l| l[1] == "handler:demo_reload"));

    let r = Run::from(sb.command(&nobody, &["--version"], &[]).output().unwrap());
    r.expect(0);
    assert_eq!(r.stdout, "phanes-setup 0.1.0 (profile test)\n");
    let r = Run::from(sb.command(&nobody, &["--help"], &[]).output().unwrap());
    r.expect(0)
        .has("--dry-run")
        .has("--keep-going")
        .has("Exit status");
}

#[test]
fn quiet_prints_only_failures_warnings_and_the_recap() {
    let sb = Sandbox::new(&["demo", "broken", "after"]);
    let r = sb.run_env(&["--quiet", "--skip", "broken.noop,broken.exits"], &[]);
    r.expect(1);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert!(
        lines[0].contains("] broken.fails ... failed"),
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains("demo.file"));
    assert!(
        lines
            .last()
            .unwrap()
            .starts_with("phanes: ok=1 changed=4 failed=1")
    );
    let r = sb.run_env(&["--keep-going"], &[("PHANES_QUIET", "1")]);
    r.expect(1)
        .has("warning: after.file: after.txt was missing")
        .lacks("demo.file")
        .lacks("after.file ...");
}

#[test]
fn json_lines_parse_and_counts_match() {
    let sb = Sandbox::new(&["demo", "broken", "after"]);
    let msg = "quote \" backslash \\ tab \t bell \u{7} done";
    let r = sb.run_env(&["--json", "--keep-going"], &[("DEMO_FAIL_MSG", msg)]);
    r.expect(1);
    let values: Vec<serde_json::Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let (recap, items) = values.split_last().unwrap();
    let recap = &recap["recap"];
    let count = |status: &str| items.iter().filter(|v| v["status"] == status).count() as u64;
    for (key, status) in [
        ("ok", "ok"),
        ("changed", "changed"),
        ("failed", "failed"),
        ("skipped", "skipped"),
        ("would_change", "would-change"),
    ] {
        assert_eq!(recap[key].as_u64(), Some(count(status)), "{key}: {recap}");
    }
    assert_eq!(recap["failed"], 3);
    assert_eq!(recap["exit"], 1);
    assert!(recap["seconds"].as_f64().is_some());
    let fails = items.iter().find(|v| v["step"] == "broken.fails").unwrap();
    assert_eq!(fails["module"], "broken");
    assert_eq!(fails["status"], "failed");
    assert_eq!(fails["message"], msg);
    assert!(fails["seconds"].as_f64().is_some());
    let handler = items.iter().find(|v| v["kind"] == "handler").unwrap();
    assert_eq!(handler["step"], "demo_reload");

    let dry = sb.run(&["--json", "--dry-run", "--skip", "broken"]);
    dry.expect(0);
    let last: serde_json::Value = serde_json::from_str(dry.stdout.lines().last().unwrap()).unwrap();
    assert_eq!(last["recap"]["would_change"], 0);
    assert_eq!(last["recap"]["dry_run"], true);
}

#[test]
fn colour_only_on_a_tty_and_never_with_no_color() {
    let sb = Sandbox::new(&["demo"]);
    // Through a pipe: never colour.
    sb.run(&[]).expect(0).lacks("\x1b[");
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("script(1) missing: TTY colour cases skipped");
        return;
    }
    // script(1) gives the bundle a pseudo-terminal.
    let on_tty = |env: &[(&str, &str)], flag: &str| {
        let line = format!("bash {} {flag}", sb.bundle().display());
        let mut cmd = Command::new("script");
        cmd.args(["-qec", &line, "/dev/null"]);
        sb.set_env(&mut cmd, env);
        Run::from(cmd.output().unwrap())
    };
    on_tty(&[], "").expect(0).has("\x1b[");
    on_tty(&[("NO_COLOR", "1")], "").expect(0).lacks("\x1b[");
    on_tty(&[], "--no-color").expect(0).lacks("\x1b[");
    on_tty(&[("PHANES_NO_COLOR", "1")], "")
        .expect(0)
        .lacks("\x1b[");
}

#[test]
fn not_root_is_refused() {
    let sb = Sandbox::new(&["demo"]);
    let nobody = [
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
    ];
    let r = Run::from(sb.command(&nobody, &[], &[]).output().unwrap());
    r.expect(3).has("phanes-setup must run as root: sudo");
    assert!(!sb.p("root/etc").exists());
}

#[test]
fn a_held_lock_refuses_a_second_run() {
    let sb = Sandbox::new(&["demo"]);
    let lock = sb.p("run/phanes.lock");
    fs::create_dir_all(lock.parent().unwrap()).unwrap();
    // One process that takes the lock and then becomes `sleep` (keeping the fd).
    let mut holder = Command::new("bash")
        .args([
            "-c",
            "exec 9<>\"$1\"; flock 9; echo '4242 2026-01-01T00:00:00Z' >\"$1\"; exec sleep 60",
            "holder",
            lock.to_str().unwrap(),
        ])
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let free = Command::new("flock")
            .args(["-n", lock.to_str().unwrap(), "true"])
            .status()
            .unwrap()
            .success();
        if !free {
            break;
        }
        assert!(Instant::now() < deadline, "holder never took the lock");
        std::thread::sleep(Duration::from_millis(20));
    }
    let r = sb.run(&[]);
    let waited = sb.run(&["--wait=1"]);
    // Release by PID before asserting, so a failure leaves no stray process.
    Command::new("kill")
        .arg(holder.id().to_string())
        .status()
        .unwrap();
    holder.wait().unwrap();
    r.expect(3)
        .has("another phanes run is in progress (pid 4242, started 2026-01-01T00:00:00Z)");
    assert!(!sb.p("root/etc").exists());
    waited.expect(3).has("still in progress after 1s");
    sb.run(&[]).expect(0);
}

#[test]
fn handler_runs_once_after_its_module() {
    let sb = Sandbox::new(&["demo", "after"]);
    let r = sb.run(&[]);
    r.expect(0);
    // Notified by two steps, run once, after the module's last step.
    assert_eq!(sb.read("root/reloads"), "reload\n");
    let pos = |needle: &str| r.stdout.find(needle).unwrap();
    assert!(pos("demo.secret ...") < pos("handler demo_reload ... changed"));
    assert!(pos("handler demo_reload") < pos("after.file ..."));
    assert!(!sb.p("state/pending/demo_reload").exists());
    assert!(sb.read("log/latest.log").contains("reloading demo"));
    sb.run(&[]).expect(0);
    assert_eq!(sb.read("root/reloads"), "reload\n");
}

#[test]
fn pending_handler_from_a_killed_run_is_picked_up() {
    let sb = Sandbox::new(&["demo"]);
    sb.run(&[]).expect(0);
    // What a run killed between the file write and the reload leaves behind.
    fs::write(sb.p("state/pending/demo_reload"), "").unwrap();
    sb.run(&["--dry-run"])
        .expect(2)
        .has("handler demo_reload ... would run")
        .has("would change=1");
    assert!(sb.p("state/pending/demo_reload").exists());
    sb.run(&[])
        .expect(0)
        .has("handler demo_reload ... changed")
        .has("changed=1");
    assert_eq!(sb.read("root/reloads"), "reload\nreload\n");
    assert!(!sb.p("state/pending/demo_reload").exists());
}

#[test]
fn a_failed_handler_stays_pending_until_it_succeeds() {
    let sb = Sandbox::new(&["demo"]);
    let r = sb.run_env(&[], &[("DEMO_HANDLER_FAIL", "1")]);
    r.expect(1)
        .has("handler demo_reload ... failed")
        .has("demo refused to reload")
        .has("| reloading demo");
    assert!(sb.p("state/pending/demo_reload").exists());
    sb.run(&[])
        .expect(0)
        .has("handler demo_reload ... changed")
        .has("changed=1");
    assert!(!sb.p("state/pending/demo_reload").exists());
}

#[test]
fn a_handler_notified_by_a_later_module_runs_at_the_end() {
    let sb = Sandbox::new(&["demo", "after"]);
    let r = sb.run_env(&[], &[("DEMO_NOTIFY_FROM_AFTER", "1")]);
    r.expect(0);
    assert_eq!(sb.read("root/reloads"), "reload\nreload\n");
    let last = r.stdout.rfind("handler demo_reload ... changed").unwrap();
    assert!(last > r.stdout.find("after.retry ...").unwrap());
    assert!(!sb.p("state/pending/demo_reload").exists());
}

fn temp_files(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".phanes."))
        .collect()
}

#[test]
fn writes_are_atomic_and_a_rejected_file_leaves_the_target_untouched() {
    let sb = Sandbox::new(&["demo"]);
    sb.run(&[]).expect(0);
    let conf = sb.p("root/etc/demo.conf");
    let inode = fs::metadata(&conf).unwrap().ino();

    let r = sb.run_env(&[], &[("DEMO_GREETING", "bad")]);
    r.expect(1).has("greeting must not be bad");
    assert_eq!(r.status_of("demo.file"), "failed");
    assert_eq!(fs::read_to_string(&conf).unwrap(), DEMO_CONF);
    assert_eq!(fs::metadata(&conf).unwrap().ino(), inode);
    assert!(temp_files(&sb.p("root/etc")).is_empty());

    sb.run_env(&[], &[("DEMO_GREETING", "world")]).expect(0);
    assert_eq!(
        fs::read_to_string(&conf).unwrap(),
        "# demo\ngreeting = world\n\n"
    );
    // Renamed into place: a new inode, never the old file rewritten in place.
    assert_ne!(fs::metadata(&conf).unwrap().ino(), inode);
    assert!(temp_files(&sb.p("root/etc")).is_empty());
}

#[test]
fn run_log_and_record() {
    let sb = Sandbox::new(&["demo"]);
    fs::create_dir_all(sb.p("log")).unwrap();
    for i in 0..35 {
        fs::write(sb.p(&format!("log/20000101T0000{i:02}Z-1.log")), "old").unwrap();
    }
    let r = sb.run(&[]);
    r.expect(0);
    assert_eq!(mode(&sb.p("log")), 0o700);
    let latest = fs::read_link(sb.p("log/latest.log")).unwrap();
    assert!(r.stdout.contains(&latest.to_string_lossy().into_owned()));
    let log = sb.read("log/latest.log");
    assert!(log.contains("writing demo.conf"), "{log}");
    assert!(log.contains("=== step demo.file: demo.conf says hello"));
    let logs = fs::read_dir(sb.p("log"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name() != "latest.log")
        .count();
    assert_eq!(logs, 30, "only the newest 30 logs are kept");

    let rec: serde_json::Value = serde_json::from_str(&sb.read("state/last-run.json")).unwrap();
    assert_eq!(rec["version"], "0.1.0");
    assert_eq!(rec["profile"], "test");
    assert_eq!(rec["config_sha256"], "0123abcd");
    assert_eq!(rec["exit"], 0);
    assert_eq!(rec["counts"]["changed"], 4);
    assert_eq!(rec["counts"]["skipped"], 1);
    assert!(rec["started"].as_str().unwrap().ends_with('Z'));
    let steps = rec["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 6);
    assert_eq!(steps[0]["step"], "demo.file");
    assert_eq!(steps[0]["status"], "changed");
    assert!(temp_files(&sb.p("state")).is_empty());
}

#[test]
fn secrets_are_private_and_never_shown() {
    let sb = Sandbox::new(&["demo"]);
    let first = sb.run(&[]);
    first.expect(0);
    let secret = sb.p("secrets/demo_token");
    let value = fs::read_to_string(&secret).unwrap();
    assert_eq!(value.len(), 40);
    assert!(value.chars().all(|c| c.is_ascii_alphanumeric()));
    assert_eq!(mode(&secret), 0o600);
    assert_eq!(mode(&sb.p("secrets")), 0o700);
    assert_eq!(fs::metadata(&secret).unwrap().uid(), 0);
    let env = sb.read("root/etc/app.env");
    assert_eq!(env, format!("TOKEN_FILE={}\n", secret.display()));

    let second = sb.run(&["--json"]);
    second.expect(0);
    assert_eq!(
        fs::read_to_string(&secret).unwrap(),
        value,
        "kept across runs"
    );
    for text in [first.all(), second.all(), sb.all_logs()] {
        assert!(!text.contains(&value), "secret value leaked");
    }
}

#[test]
fn apt_and_services_go_through_the_helpers() {
    let sb = Sandbox::new(&["system"]);
    let fake = fixtures().join("bin");
    let path = [("PATH+", fake.to_str().unwrap())];
    let r = sb.run_env(&[], &path);
    r.expect(0)
        .has("changed=4")
        .has("note: systemd is not running (image build?): services enabled, not started");
    let calls = sb.read("root/apt-calls");
    let updates = calls.lines().filter(|l| l.ends_with(" update")).count();
    assert_eq!(updates, 2, "one update, plus one after the source: {calls}");
    assert!(calls.contains("-o DPkg::Lock::Timeout=300"));
    assert!(calls.contains("--force-confold"));
    assert!(calls.contains("install fake-a fake-b\n"));
    assert!(!calls.contains("--no-install-recommends"));
    assert!(
        sb.read("root/systemctl-calls")
            .contains("enable -- fake.service")
    );

    // Converged: no apt-get at all, no note.
    let again = sb.run_env(&[], &path);
    again.expect(0).has("changed=0").lacks("note:");
    assert_eq!(sb.read("root/apt-calls"), calls);

    // Only the missing package is installed, without recommends when asked.
    let sb = Sandbox::new(&["system"]);
    fs::write(sb.p("root/installed"), "fake-a\n").unwrap();
    sb.run_env(
        &["--only", "system.pkgs"],
        &[path[0], ("PHANES_APT_NO_RECOMMENDS", "1")],
    )
    .expect(0);
    let calls = sb.read("root/apt-calls");
    assert!(
        calls.contains("--no-install-recommends install fake-b\n"),
        "{calls}"
    );
}

#[test]
fn a_skip_without_a_reason_runs_the_step_and_no_reason_carries_over() {
    // demo.skipme skips with a reason just before quiet.file, whose skip succeeds silently.
    let sb = Sandbox::new(&["demo", "quiet"]);
    let r = sb.run(&[]);
    assert_eq!(r.status_of("demo.skipme"), "skipped: not on this machine");
    assert_eq!(r.status_of("quiet.file"), "changed");
    assert_eq!(sb.read("root/quiet.txt"), "quiet");
    assert_eq!(sb.run(&[]).status_of("quiet.file"), "ok");
}

#[test]
fn a_package_apt_cannot_install_here_fails_before_anything_is_installed() {
    let sb = Sandbox::new(&["system"]);
    let fake = fixtures().join("bin");
    fs::write(sb.p("root/unavailable"), "fake-b\n").unwrap();
    sb.run_env(&["--only", "system.pkgs"], &[("PATH+", fake.to_str().unwrap())])
        .expect(1)
        .has("not available on Debian GNU/Linux 12 (bookworm): fake-b (apt has no installation candidate); nothing was installed");
    let calls = sb.read("root/apt-calls");
    assert_eq!(
        calls.lines().filter(|l| l.contains(" install ")).count(),
        1,
        "only the simulation runs, once (no retries): {calls}"
    );
    assert!(!sb.p("root/installed").exists(), "nothing may be installed");
}

#[test]
fn interrupted_dpkg_is_reported_by_a_dry_run() {
    let sb = Sandbox::new(&["demo"]);
    fs::create_dir_all(sb.p("dpkg/updates")).unwrap();
    fs::write(sb.p("dpkg/updates/0001"), "").unwrap();
    sb.run(&["--dry-run"])
        .has("warning: dpkg was interrupted")
        .has("warnings=1");
}

#[test]
fn bundle_passes_bash_n_and_shellcheck() {
    let sb = Sandbox::new(&["demo", "broken", "after", "system"]);
    let n = Command::new("bash")
        .arg("-n")
        .arg(sb.bundle())
        .output()
        .unwrap();
    assert!(n.status.success(), "{}", String::from_utf8_lossy(&n.stderr));
    let sc = match Command::new("shellcheck")
        .args(["-s", "bash"])
        .arg(sb.bundle())
        .output()
    {
        Ok(out) => out,
        Err(_) => panic!("install shellcheck: apt-get install shellcheck"),
    };
    assert!(
        sc.status.success(),
        "shellcheck:\n{}",
        String::from_utf8_lossy(&sc.stdout)
    );
}

#[test]
fn a_cut_off_bundle_runs_nothing() {
    let sb = Sandbox::new(&["demo"]);
    let text = bundle_text(&["demo"]);
    // Drop the last line (`main "$@"`), as a download cut short would.
    let cut = &text[..text.trim_end().rfind('\n').unwrap() + 1];
    fs::write(sb.bundle(), cut).unwrap();
    let r = sb.run(&[]);
    r.expect(0);
    assert!(r.stdout.is_empty() && r.stderr.is_empty(), "{}", r.all());
    assert!(!sb.p("root/etc").exists() && !sb.p("log").exists());
}

/// A killed `apt-get install` (power cut, SIGKILL) leaves dependencies missing or marked as
/// installed by hand: the packages apt is about to add are listed in apt-pending before apt
/// runs, the package checks fail while the list exists, and the next install adds what is
/// missing of them and marks them automatically installed again.
#[test]
fn a_killed_install_is_finished_and_its_dependencies_marked_auto() {
    let sb = Sandbox::new(&["system"]);
    let fake = fixtures().join("bin");
    let path = [("PATH+", fake.to_str().unwrap())];
    fs::write(sb.p("root/deps"), "fake-dep\nfake-rec\n").unwrap();
    fs::write(sb.p("root/die"), "").unwrap();
    let r = sb.run_env(&["--only", "system.pkgs"], &path);
    r.expect(1);
    let calls = sb.read("root/apt-calls");
    assert!(
        calls.contains("apt-pending:\nfake-dep\nfake-rec\n"),
        "the list is written before apt runs, without the packages asked for: {calls}"
    );
    assert_eq!(sb.read("state/apt-pending"), "fake-dep\nfake-rec\n");
    // fake-a and fake-b are installed now, but the install did not finish.
    sb.run_env(&["--only", "system.pkgs", "--dry-run"], &path)
        .expect(2);

    fs::remove_file(sb.p("root/die")).unwrap();
    fs::write(sb.p("root/apt-calls"), "").unwrap();
    let r = sb.run_env(&["--only", "system.pkgs"], &path);
    r.expect(0);
    assert_eq!(r.status_of("system.pkgs"), "changed");
    let calls = sb.read("root/apt-calls");
    assert!(
        calls.contains("install fake-dep fake-rec\n"),
        "the missing dependencies are installed: {calls}"
    );
    assert!(
        calls.ends_with("apt-mark auto fake-dep fake-rec\n"),
        "and marked auto: {calls}"
    );
    assert!(!sb.p("state/apt-pending").exists());
    fs::write(sb.p("root/apt-calls"), "").unwrap();
    sb.run_env(&["--only", "system.pkgs"], &path)
        .expect(0)
        .has("changed=0");
    assert_eq!(
        sb.read("root/apt-calls"),
        "",
        "converged: apt is not called"
    );
}

#[test]
fn an_unreachable_archive_fails_the_step_with_apts_own_reason() {
    let sb = Sandbox::new(&["system"]);
    let fake = fixtures().join("bin");
    fs::write(sb.p("root/offline"), "").unwrap();
    let r = sb.run_env(
        &["--only", "system.pkgs"],
        &[("PATH+", fake.to_str().unwrap())],
    );
    r.expect(1).has(
        "apt-get install fake-a fake-b failed: Failed to fetch http://deb.debian.org/debian/pool/main/f/fake-a/fake-a_1.0_amd64.deb  Could not connect to deb.debian.org:80",
    );
    assert!(!sb.p("root/installed").exists());
    // With the network back, the next run installs them (the list of what apt was about to
    // add is empty here: no dependencies).
    fs::remove_file(sb.p("root/offline")).unwrap();
    sb.run_env(
        &["--only", "system.pkgs"],
        &[("PATH+", fake.to_str().unwrap())],
    )
    .expect(0);
    assert!(!sb.p("state/apt-pending").exists());
}

#[test]
fn a_package_left_unpacked_is_configured_first_but_not_in_a_dry_run() {
    let sb = Sandbox::new(&["demo"]);
    let fake = fixtures().join("bin");
    let path = [("PATH+", fake.to_str().unwrap())];
    fs::create_dir_all(sb.p("dpkg/updates")).unwrap();
    fs::write(
        sb.p("dpkg/status"),
        "Package: pv\nStatus: install ok unpacked\n\nPackage: tree\nStatus: install ok installed\n",
    )
    .unwrap();
    sb.run_env(&["--dry-run"], &path)
        .has("warning: dpkg was interrupted");
    assert!(
        !sb.p("root/dpkg-calls").exists(),
        "a dry run changes nothing"
    );
    sb.run_env(&[], &path).expect(0);
    assert!(sb.read("root/dpkg-calls").contains("--configure -a"));
    assert!(
        sb.all_logs()
            .contains("dpkg was interrupted: running dpkg --configure -a")
    );
}

#[test]
fn a_temp_file_left_by_a_killed_write_is_removed_with_the_next_write() {
    let sb = Sandbox::new(&["demo"]);
    fs::create_dir_all(sb.p("root/etc")).unwrap();
    fs::write(sb.p("root/etc/.phanes.Ab3dE9"), "# demo\ngree").unwrap();
    sb.run(&[]).expect(0);
    assert!(temp_files(&sb.p("root/etc")).is_empty());
    assert_eq!(sb.read("root/etc/demo.conf"), DEMO_CONF);
}
