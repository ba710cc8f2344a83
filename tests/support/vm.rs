//! Booted-VM harness for the end-to-end tests: a real Debian guest under QEMU (TCG), seeded with
//! NoCloud user-data, driven over SSH through a port forwarded on 127.0.0.1.
//!
//! The recipe and the reasons behind each choice are in /work/shared/TESTING.md. In short:
//! - images come from `tests/e2e/build-image.sh`, cached under `$PHANES_VM_CACHE`
//!   (default `<repo>/target/vm-cache`); every boot writes to its own qcow2 overlay;
//! - the guest network is QEMU user mode in 198.51.100.0/24, so the host is untouched and the
//!   guest reaches a host server on `127.0.0.1:PORT` as `http://198.51.100.2:PORT`;
//! - failures panic (so `Drop` can tell a failed test from a passed one, keep the run dir and say
//!   where the serial console and the guest's logs are);
//! - every QEMU and HTTP server is stopped by its own PID, never by name.
//!
//! Use from an integration test with `#[path = "support/vm.rs"] mod vm;` and gate every test on
//! [`vm_tests_enabled`].
#![allow(dead_code)] // each test binary uses a different part of the harness

use std::fs;
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::sleep;
use std::time::{Duration, Instant};

/// QEMU's user-mode gateway in the guest network: the host as the guest sees it.
pub const GUEST_GATEWAY: &str = "198.51.100.2";
const GUEST_NET: &str = "198.51.100.0/24";
/// TCG boots take ~40 s; give slow CI machines room.
pub const SSH_TIMEOUT: Duration = Duration::from_secs(300);

/// `println!` for a case's timings and verdicts, written past libtest's output capture so that
/// CI's log (which runs without `--nocapture`) shows where its minutes went.
#[allow(unused_macros)] // not every binary that includes this file reports
macro_rules! report {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// A `#cloud-config` that only makes `user`, a passwordless-sudo login with `public_key`: the
/// guest the harness logs into when phanes is run by hand rather than by cloud-init.
#[allow(dead_code)] // not every binary that includes this file boots such a guest
pub fn login_user_data(user: &str, public_key: &str) -> String {
    format!(
        "#cloud-config\nusers:\n  - name: {user}\n    shell: /bin/bash\n    \
         sudo: ALL=(ALL) NOPASSWD:ALL\n    ssh_authorized_keys:\n      - {public_key}\n"
    )
}

/// `#[test] fn $test`: runs `$run(Release::$release)` when the tier runs `$case` there
/// ([`case_runs`] with `Coverage::$coverage`).
#[allow(unused_macros)] // not every binary that includes this file has cases
macro_rules! vm_case {
    ($test:ident, $case:literal, $release:ident, $coverage:ident, $run:expr) => {
        #[test]
        fn $test() {
            let release = $crate::vm::Release::$release;
            if $crate::vm::case_runs($case, release, $crate::vm::Coverage::$coverage) {
                $run(release);
            }
        }
    };
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);
static IMAGE_LOCK: Mutex<()> = Mutex::new(());

/// How many Debian releases the VM tests cover, from env `PHANES_VM`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tier {
    /// `PHANES_VM=quick`: bookworm only, for development loops.
    Quick,
    /// `PHANES_VM=all`: bookworm and trixie (the README's test command and CI). Cases marked
    /// `Coverage::FullOnly` on a release are left out, to fit CI's budget.
    All,
    /// `PHANES_VM=full`: as `all`, with every case on both releases.
    Full,
}

impl Tier {
    pub fn releases(self) -> &'static [Release] {
        match self {
            Tier::Quick => &[Release::Bookworm],
            Tier::All | Tier::Full => &[Release::Bookworm, Release::Trixie],
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Release {
    Bookworm,
    Trixie,
}

impl Release {
    pub fn codename(self) -> &'static str {
        match self {
            Release::Bookworm => "bookworm",
            Release::Trixie => "trixie",
        }
    }

    /// `VERSION_ID` in the guest's /etc/os-release.
    pub fn version_id(self) -> &'static str {
        match self {
            Release::Bookworm => "12",
            Release::Trixie => "13",
        }
    }
}

/// Which tiers run a case on a release. CI (`all`) has 90 minutes on 2 cores, so cases that prove
/// code shared by both releases run on one of them there; `full` runs every case everywhere.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Coverage {
    /// Every tier that boots the release (`quick` boots Debian 12 only).
    Always,
    /// `PHANES_VM=full` only.
    FullOnly,
}

/// Whether this run's tier runs `case` on `release`; says why not (on stderr, past libtest's
/// capture) when it does not, so a skipped case is never mistaken for a passed one.
pub fn case_runs(case: &str, release: Release, coverage: Coverage) -> bool {
    let Some(tier) = vm_tests_enabled() else {
        return false;
    };
    let runs =
        tier.releases().contains(&release) && (coverage == Coverage::Always || tier == Tier::Full);
    if !runs {
        let _ = writeln!(
            std::io::stderr(),
            "{case} on {}: not in PHANES_VM={tier:?} ({})",
            release.codename(),
            match coverage {
                Coverage::Always => "PHANES_VM=all runs it",
                Coverage::FullOnly => "PHANES_VM=full runs it",
            }
        );
    }
    runs
}

/// The tier requested through `PHANES_VM`, or `None` (after printing why) when VM tests are off.
/// An unknown value panics rather than silently skipping.
pub fn vm_tests_enabled() -> Option<Tier> {
    match std::env::var("PHANES_VM").as_deref() {
        Ok("quick") => Some(Tier::Quick),
        Ok("all") => Some(Tier::All),
        Ok("full") => Some(Tier::Full),
        Ok("off") | Ok("") | Err(_) => {
            // Straight to stderr: libtest captures println!, and a skip must be visible.
            let _ = writeln!(
                std::io::stderr(),
                "VM tests not requested (set PHANES_VM=quick|all|full)"
            );
            None
        }
        Ok(other) => panic!("PHANES_VM={other:?}: expected quick, all, full or off"),
    }
}

fn repo_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Fails with the command that installs a missing host tool, so a bare machine says what it lacks.
fn require_tool(tool: &str, install: &str) {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false);
    assert!(found, "{tool} not found on PATH; install it: {install}");
}

fn require_vm_tools() {
    for (tool, install) in [
        // qemu-utils on these machines comes from backports, and qemu-system-x86 must match it.
        (
            "qemu-system-x86_64",
            "apt-get install -y -t bookworm-backports qemu-system-x86",
        ),
        (
            "qemu-img",
            "apt-get install -y -t bookworm-backports qemu-utils",
        ),
        ("mmdebstrap", "apt-get install -y mmdebstrap"),
        ("cloud-localds", "apt-get install -y cloud-image-utils"),
        ("ssh", "apt-get install -y openssh-client"),
        ("scp", "apt-get install -y openssh-client"),
        ("ssh-keygen", "apt-get install -y openssh-client"),
    ] {
        require_tool(tool, install);
    }
}

/// A built base image: boot `kernel` + `initrd` with `base` (raw ext4, never written) as root.
#[derive(Clone, Debug)]
pub struct ImagePaths {
    pub dir: PathBuf,
    pub base: PathBuf,
    pub kernel: PathBuf,
    pub initrd: PathBuf,
}

/// Builds (or reuses from the cache) the base image of `release`. Panics on failure.
pub fn ensure_image(release: Release) -> ImagePaths {
    require_vm_tools();
    let script = repo_dir().join("tests/e2e/build-image.sh");
    // One folder per version of the recipe: checkouts with different recipes (worktrees,
    // branches) sharing a cache keep their own images instead of rebuilding each other's.
    let recipe = {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(fs::read(&script).expect("read build-image.sh"));
        digest[..6]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    let cache = std::env::var_os("PHANES_VM_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_dir().join("target/vm-cache"))
        .join(format!("recipe-{recipe}"));
    let _guard = IMAGE_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let started = Instant::now();
    let status = Command::new("bash")
        .arg(&script)
        .arg(release.codename())
        .arg(&cache)
        .status()
        .expect("run tests/e2e/build-image.sh");
    assert!(
        status.success(),
        "build-image.sh {} failed: {status}",
        release.codename()
    );
    eprintln!(
        "[vm] image {} ready in {:.1?}",
        release.codename(),
        started.elapsed()
    );
    let dir = cache.join(release.codename());
    ImagePaths {
        base: dir.join("base.img"),
        kernel: dir.join("vmlinuz"),
        initrd: dir.join("initrd.img"),
        dir,
    }
}

/// A loopback TCP port that was free a moment ago (bind to port 0, read it back, release it).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

fn run_checked(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Kills a child by its own PID: SIGTERM, a grace period, then SIGKILL; always reaps it.
fn stop_child(child: &mut Child, grace: Duration) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// An ed25519 key pair made with ssh-keygen, for the user the test's user-data creates.
pub struct TestKey {
    dir: PathBuf,
    pub private: PathBuf,
    pub public: PathBuf,
    /// The `ssh-ed25519 AAAA... comment` line, for `ssh_authorized_keys`.
    pub public_text: String,
}

impl TestKey {
    pub fn generate() -> TestKey {
        require_tool("ssh-keygen", "apt-get install -y openssh-client");
        let dir = run_dir("key");
        let private = dir.join("id_ed25519");
        run_checked(
            Command::new("ssh-keygen")
                .args([
                    "-q",
                    "-t",
                    "ed25519",
                    "-N",
                    "",
                    "-C",
                    "phanes-vm-test",
                    "-f",
                ])
                .arg(&private),
        );
        let public = dir.join("id_ed25519.pub");
        let public_text = fs::read_to_string(&public)
            .expect("read public key")
            .trim()
            .to_string();
        TestKey {
            dir,
            private,
            public,
            public_text,
        }
    }
}

impl Drop for TestKey {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Stops QEMUs left behind by test processes that died without running `Drop` (SIGKILL, abort).
/// Only PIDs recorded in our own run dirs, whose owning test process (the `<pid>` in the dir
/// name) is gone and whose command line still names that dir, so nothing else is touched.
/// How many guests may run at once on this machine, across every test process (TCG guests are
/// CPU-bound: more than one per core slows every guest past its timeouts). `PHANES_VM_SLOTS`
/// overrides the default of 2.
fn vm_slots() -> usize {
    std::env::var("PHANES_VM_SLOTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(2)
}

/// Waits for a free guest slot: an exclusive lock on one of the slot files in /tmp, held until
/// the returned file is dropped (the kernel drops it when the process dies, too). `exclusive`:
/// waits for every slot, taken in order (so two exclusive takers cannot deadlock).
fn take_vm_slots(name: &str, exclusive: bool) -> Vec<fs::File> {
    let dir = Path::new("/tmp/phanes-vm-slots");
    fs::create_dir_all(dir).expect("create /tmp/phanes-vm-slots");
    let open = |slot: usize| {
        fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(format!("slot-{slot}")))
            .expect("open a VM slot file")
    };
    if exclusive {
        eprintln!("[vm] {name}: waiting for all {} VM slots", vm_slots());
        return (0..vm_slots())
            .map(|slot| {
                let file = open(slot);
                file.lock().expect("lock a VM slot file");
                file
            })
            .collect();
    }
    let mut waited = false;
    loop {
        for slot in 0..vm_slots() {
            let file = open(slot);
            if file.try_lock().is_ok() {
                return vec![file];
            }
        }
        if !waited {
            eprintln!("[vm] {name}: all {} VM slots are busy, waiting", vm_slots());
            waited = true;
        }
        sleep(Duration::from_secs(3));
    }
}

fn reap_orphans() {
    let Ok(entries) = fs::read_dir(repo_dir().join("target/vm-runs")) else {
        return;
    };
    for dir in entries.flatten().map(|e| e.path()) {
        let name = dir
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let owner = name.rsplit('-').nth(1).and_then(|p| p.parse::<u32>().ok());
        let qemu = fs::read_to_string(dir.join("qemu.pid"))
            .ok()
            .and_then(|p| p.trim().parse::<u32>().ok());
        let (Some(owner), Some(qemu)) = (owner, qemu) else {
            continue;
        };
        let cmdline = fs::read(format!("/proc/{qemu}/cmdline")).unwrap_or_default();
        let ours = String::from_utf8_lossy(&cmdline).contains(&*dir.to_string_lossy());
        if ours && !Path::new(&format!("/proc/{owner}")).exists() {
            eprintln!(
                "[vm] stopping orphaned QEMU pid {qemu} of {}",
                dir.display()
            );
            let _ = Command::new("kill")
                .args(["-KILL", &qemu.to_string()])
                .status();
        }
    }
}

/// A fresh directory `target/vm-runs/<name>-<pid>-<n>`.
fn run_dir(name: &str) -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let dir = repo_dir()
        .join("target/vm-runs")
        .join(format!("{name}-{}-{n}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    dir
}

pub struct BootOptions {
    /// The user-data, `#cloud-config` or any other format cloud-init accepts (bytes: AWS's is
    /// gzip-compressed).
    pub user_data: Vec<u8>,
    /// meta-data `local-hostname`; also names the run dir.
    pub hostname: String,
    pub memory_mb: u32,
    /// Extra `(host_port, guest_port)` TCP forwards, on 127.0.0.1 (see [`free_port`]).
    pub forwards: Vec<(u16, u16)>,
    /// Holds every guest slot, so no other guest runs beside this one (benchmarks: two TCG
    /// guests on two cores slow each other down).
    pub exclusive: bool,
}

impl Default for BootOptions {
    fn default() -> Self {
        BootOptions {
            user_data: Vec::new(),
            hostname: "phanes-test".into(),
            memory_mb: 2048,
            forwards: Vec::new(),
            exclusive: false,
        }
    }
}

/// A running guest. Dropping it stops QEMU; see the module docs for what is kept on failure.
pub struct Vm {
    pub release: Release,
    dir: PathBuf,
    ssh_port: u16,
    qemu: Child,
    login: Option<(String, PathBuf)>,
    booted: Instant,
    /// The machine-wide guest slots this VM holds (see [`take_vm_slots`]); released on drop.
    _slots: Vec<fs::File>,
}

impl Vm {
    /// Starts QEMU on a fresh overlay of `release`'s base image with a NoCloud seed made from
    /// `opts`. Returns once QEMU runs; use [`Vm::wait_ssh`] to wait for the guest.
    pub fn boot(release: Release, opts: BootOptions) -> Vm {
        reap_orphans();
        let image = ensure_image(release);
        let slots = take_vm_slots(&opts.hostname, opts.exclusive);
        let dir = run_dir(&opts.hostname);
        run_checked(
            Command::new("qemu-img")
                .args(["create", "-q", "-f", "qcow2", "-F", "raw", "-b"])
                .arg(&image.base)
                .arg(dir.join("disk.qcow2")),
        );
        fs::write(dir.join("user-data"), &opts.user_data).expect("write user-data");
        let instance_id = dir.file_name().unwrap().to_string_lossy().into_owned();
        fs::write(
            dir.join("meta-data"),
            format!(
                "instance-id: {instance_id}\nlocal-hostname: {}\n",
                opts.hostname
            ),
        )
        .expect("write meta-data");
        run_checked(Command::new("cloud-localds").current_dir(&dir).args([
            "seed.img",
            "user-data",
            "meta-data",
        ]));

        // The free port can be taken between our probe and QEMU's bind: retry with another.
        for _attempt in 0..3 {
            let ssh_port = free_port();
            let mut qemu = spawn_qemu(&image, &dir, &opts, ssh_port);
            sleep(Duration::from_secs(1));
            if let Ok(Some(status)) = qemu.try_wait() {
                let log = fs::read_to_string(dir.join("qemu.log")).unwrap_or_default();
                if log.contains("forwarding") {
                    continue;
                }
                panic!("QEMU exited at start ({status}):\n{log}");
            }
            fs::write(dir.join("qemu.pid"), qemu.id().to_string()).expect("write qemu.pid");
            eprintln!(
                "[vm] {} booting {}: pid {}, ssh 127.0.0.1:{ssh_port}, dir {}",
                opts.hostname,
                release.codename(),
                qemu.id(),
                dir.display()
            );
            return Vm {
                release,
                dir,
                ssh_port,
                qemu,
                login: None,
                booted: Instant::now(),
                _slots: slots,
            };
        }
        panic!("QEMU could not bind a forwarded port after 3 attempts");
    }

    pub fn ssh_port(&self) -> u16 {
        self.ssh_port
    }

    pub fn serial_log_path(&self) -> PathBuf {
        self.dir.join("serial.log")
    }

    /// This VM's run dir (overlay, seed, serial log, fetched guest logs).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Time since QEMU was started (or last restarted by a reboot).
    pub fn uptime(&self) -> Duration {
        self.booted.elapsed()
    }

    /// Waits until `user` can log in with `key` and run a command; later calls log in the same way.
    pub fn wait_ssh(&mut self, user: &str, key: &Path, timeout: Duration) {
        self.login = Some((user.to_string(), key.to_path_buf()));
        self.wait_ssh_until(timeout, |_| true);
    }

    fn wait_ssh_until(&mut self, timeout: Duration, ready: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + timeout;
        let mut last = String::new();
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.qemu.try_wait() {
                panic!(
                    "QEMU exited ({status}) while waiting for SSH\n{}",
                    self.where_to_look()
                );
            }
            // Each attempt opens exactly one connection, the master; the probe runs through it.
            match self.start_master() {
                Ok(()) => {
                    let out = self.ssh("cat /proc/sys/kernel/random/boot_id");
                    let stdout = String::from_utf8_lossy(&out.stdout).trim().to_string();
                    if out.status.success() && ready(&stdout) {
                        return;
                    }
                    self.stop_master();
                    last = String::from_utf8_lossy(&out.stderr).trim().to_string();
                }
                Err(e) => last = e,
            }
            // At most 5 new connections per 30 s: `ufw limit` drops the 6th, and every dropped
            // attempt restarts its window, so faster polling would lock the harness out for good.
            sleep(Duration::from_secs(6));
        }
        panic!(
            "no SSH on 127.0.0.1:{} after {timeout:?} (last error: {last})\n{}",
            self.ssh_port,
            self.where_to_look()
        );
    }

    /// Opens a background master connection for the current login (stdio detached, so no
    /// `output()` waits on it); it ends with the guest or with [`Vm::stop_master`].
    fn start_master(&self) -> Result<(), String> {
        // stdio must not be a pipe: the backgrounded master would hold it open.
        let status = self
            .ssh_base("ssh")
            .args([
                "-o",
                "ControlMaster=yes",
                "-o",
                "ControlPersist=yes",
                "-f",
                "-N",
            ])
            .args(["-p", &self.ssh_port.to_string()])
            .arg(self.destination())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map_err(|e| e.to_string())?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("ssh master connection failed ({status})"))
        }
    }

    /// Closes the master connection (before a reboot, so no command waits on a dead one).
    fn stop_master(&self) {
        let _ = self
            .ssh_base("ssh")
            .args(["-O", "exit", "-p", &self.ssh_port.to_string()])
            .arg(self.destination())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }

    fn ssh_base(&self, program: &str) -> Command {
        let (_, key) = self
            .login
            .as_ref()
            .expect("call wait_ssh first: it sets the user and key");
        let mut cmd = Command::new(program);
        cmd.arg("-i").arg(key).args([
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "BatchMode=yes",
            "-o",
            "ConnectTimeout=10",
            "-o",
            "LogLevel=ERROR",
            // A guest that reboots or hangs mid-command must not hang the test forever.
            "-o",
            "ServerAliveInterval=5",
            "-o",
            "ServerAliveCountMax=6",
        ]);
        // Commands share the master connection `start_master` opens when there is one: the
        // guest's firewall rate-limits new SSH connections (ufw limit: 6 per 30 s), as a real
        // server's does. Without a master, ssh connects directly.
        cmd.arg("-o")
            .arg(format!("ControlPath={}/cm-%r", self.dir.display()));
        cmd.stdin(Stdio::null());
        cmd
    }

    fn destination(&self) -> String {
        format!("{}@127.0.0.1", self.login.as_ref().unwrap().0)
    }

    /// Runs `cmd` (a shell command line) in the guest as the logged-in user.
    pub fn ssh(&self, cmd: &str) -> Output {
        self.ssh_base("ssh")
            .args(["-p", &self.ssh_port.to_string()])
            .arg(self.destination())
            .arg(cmd)
            .output()
            .expect("run ssh")
    }

    /// Like [`Vm::ssh`], but panics with the output and the log locations unless `cmd` exits 0;
    /// returns stdout.
    pub fn ssh_ok(&self, cmd: &str) -> String {
        let out = self.ssh(cmd);
        if !out.status.success() {
            panic!(
                "guest command failed ({}): {cmd}\n--- stdout\n{}--- stderr\n{}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                self.where_to_look()
            );
        }
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Copies a local file or directory (recursively) to `remote` in the guest.
    pub fn scp_to(&self, local: &Path, remote: &str) {
        let out = self
            .ssh_base("scp")
            .args(["-r", "-P", &self.ssh_port.to_string()])
            .arg(local)
            .arg(format!("{}:{remote}", self.destination()))
            .output()
            .expect("run scp");
        assert!(
            out.status.success(),
            "scp {} -> {remote} failed: {}\n{}",
            local.display(),
            String::from_utf8_lossy(&out.stderr),
            self.where_to_look()
        );
    }

    /// Waits for cloud-init to finish; returns `cloud-init status --long`'s text and exit code
    /// (0 done, 1 error, 2 recoverable errors on cloud-init >= 23.4, 124 timed out).
    pub fn wait_cloud_init(&self) -> (String, i32) {
        let out = self.ssh("timeout 1200 cloud-init status --wait --long");
        let code = out.status.code().unwrap_or(-1);
        if code == 255 {
            panic!(
                "ssh failed during cloud-init status --wait: {}\n{}",
                String::from_utf8_lossy(&out.stderr),
                self.where_to_look()
            );
        }
        (String::from_utf8_lossy(&out.stdout).into_owned(), code)
    }

    /// Reboots the guest (same QEMU process, same overlay) and waits until SSH answers from the
    /// new boot, told apart from the old one by the kernel's boot_id.
    pub fn reboot(&mut self, timeout: Duration) {
        let old = self.ssh_ok("cat /proc/sys/kernel/random/boot_id");
        let old = old.trim().to_string();
        // The connection drops as the guest goes down, so the exit status says nothing.
        let _ = self.ssh("sudo -n systemctl reboot");
        self.stop_master();
        self.booted = Instant::now();
        self.wait_ssh_until(timeout, |id| id != old);
    }

    /// The kernel's boot_id: tells one boot from the next.
    pub fn boot_id(&self) -> String {
        self.ssh_ok("cat /proc/sys/kernel/random/boot_id")
            .trim()
            .to_string()
    }

    /// Waits for SSH from a boot other than `old` (see [`Vm::boot_id`]), after a reboot the
    /// guest started itself, e.g. a power cut through `/proc/sysrq-trigger`.
    pub fn wait_new_boot(&mut self, old: &str, timeout: Duration) {
        self.stop_master();
        self.booted = Instant::now();
        self.wait_ssh_until(timeout, |id| id != old);
    }

    /// Copies /var/log/phanes/, the cloud-init logs and the boot's journal into `<run dir>/guest-logs`.
    pub fn fetch_logs(&self) -> anyhow::Result<PathBuf> {
        anyhow::ensure!(self.login.is_some(), "no SSH login yet");
        let dest = self.dir.join("guest-logs");
        fs::create_dir_all(&dest)?;
        let tar = self.ssh(
            "sudo -n tar -C / -cf - --ignore-failed-read var/log/phanes \
             var/log/cloud-init.log var/log/cloud-init-output.log 2>/dev/null",
        );
        let mut untar = Command::new("tar")
            .arg("-xf")
            .arg("-")
            .arg("-C")
            .arg(&dest)
            .stdin(Stdio::piped())
            .spawn()?;
        untar.stdin.take().unwrap().write_all(&tar.stdout)?;
        anyhow::ensure!(untar.wait()?.success(), "unpacking guest logs failed");
        let journal = self.ssh("sudo -n journalctl -b --no-pager");
        fs::write(dest.join("journal.txt"), &journal.stdout)?;
        Ok(dest)
    }

    fn where_to_look(&self) -> String {
        let serial = fs::read(self.serial_log_path()).unwrap_or_default();
        let serial = strip_terminal_codes(&String::from_utf8_lossy(&serial));
        let lines: Vec<&str> = serial.lines().collect();
        let tail = lines[lines.len().saturating_sub(25)..].join("\n");
        format!(
            "run dir: {}\nserial log: {} (last lines below)\n{tail}",
            self.dir.display(),
            self.serial_log_path().display()
        )
    }
}

/// Drops the escape sequences getty and systemd write to the serial console, so a panic message
/// quoting it stays readable.
fn strip_terminal_codes(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\x1b' => match chars.next() {
                // CSI: parameters up to a final byte in @..~
                Some('[') => while chars.next().is_some_and(|c| !('@'..='~').contains(&c)) {},
                // OSC: up to BEL or ESC \
                Some(']') => while chars.next().is_some_and(|c| c != '\x07' && c != '\x1b') {},
                _ => {}
            },
            '\n' | '\t' => out.push(c),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

fn spawn_qemu(image: &ImagePaths, dir: &Path, opts: &BootOptions, ssh_port: u16) -> Child {
    let mut netdev = format!("user,id=n0,net={GUEST_NET},hostfwd=tcp:127.0.0.1:{ssh_port}-:22");
    for (host, guest) in &opts.forwards {
        netdev.push_str(&format!(",hostfwd=tcp:127.0.0.1:{host}-:{guest}"));
    }
    let log = fs::File::create(dir.join("qemu.log")).expect("create qemu.log");
    // No -no-reboot: a guest reboot then restarts in the same process, on the same overlay.
    // KVM hangs guests on these machines, hence TCG.
    Command::new("qemu-system-x86_64")
        .args(["-accel", "tcg", "-smp", "2", "-m"])
        .arg(opts.memory_mb.to_string())
        .args(["-display", "none", "-monitor", "none", "-serial"])
        .arg(format!("file:{}", dir.join("serial.log").display()))
        .arg("-kernel")
        .arg(&image.kernel)
        .arg("-initrd")
        .arg(&image.initrd)
        .args(["-append", "console=ttyS0 root=/dev/vda rw"])
        .arg("-drive")
        .arg(format!(
            "file={},format=qcow2,if=virtio",
            dir.join("disk.qcow2").display()
        ))
        .arg("-drive")
        .arg(format!(
            "file={},format=raw,if=virtio,readonly=on",
            dir.join("seed.img").display()
        ))
        .args(["-netdev", &netdev, "-device", "virtio-net-pci,netdev=n0"])
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("dup qemu.log"))
        .stderr(log)
        .spawn()
        .expect("start qemu-system-x86_64")
}

impl Drop for Vm {
    fn drop(&mut self) {
        let failed = std::thread::panicking();
        let logs = if failed && self.qemu.try_wait().ok().flatten().is_none() {
            self.fetch_logs().map_err(|e| e.to_string())
        } else {
            Err("not fetched".into())
        };
        if self.login.is_some() {
            self.stop_master();
        }
        stop_child(&mut self.qemu, Duration::from_secs(10));
        if failed || std::env::var_os("PHANES_VM_KEEP").is_some() {
            eprintln!(
                "[vm] kept {}\n[vm]   serial log: {}\n[vm]   guest logs: {}",
                self.dir.display(),
                self.serial_log_path().display(),
                match logs {
                    Ok(p) => p.display().to_string(),
                    Err(e) => format!("({e})"),
                }
            );
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// `python3 -m http.server` on 127.0.0.1, serving a directory to the guest (e.g. an apt repo).
pub struct HttpServer {
    pub port: u16,
    child: Child,
}

impl HttpServer {
    pub fn serve(dir: &Path) -> HttpServer {
        require_tool("python3", "apt-get install -y python3");
        let port = free_port();
        let mut child = Command::new("python3")
            .args(["-m", "http.server", "--bind", "127.0.0.1", "--directory"])
            .arg(dir)
            .arg(port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start python3 -m http.server");
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline || matches!(child.try_wait(), Ok(Some(_))) {
                stop_child(&mut child, Duration::from_secs(1));
                panic!("http.server for {} did not listen on {port}", dir.display());
            }
            sleep(Duration::from_millis(100));
        }
        HttpServer { port, child }
    }

    pub fn host_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The same server as the guest reaches it through QEMU's gateway.
    pub fn guest_url(&self) -> String {
        format!("http://{GUEST_GATEWAY}:{}", self.port)
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        stop_child(&mut self.child, Duration::from_secs(2));
    }
}
