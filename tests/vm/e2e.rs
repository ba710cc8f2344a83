//! The proof on a real booted Debian: the minimal profile (the base of every other), on each
//! release of the tier, through the three ways in (cloud-init, bash over SSH, Packer), with
//! idempotence, drift detection and repair, reboots, option changes, and each module's own proof
//! from inside the guest. The service profiles are proven in services.rs.
//!
//! `PHANES_VM=quick cargo test --release --test vm e2e:: -- --nocapture` runs Debian 12 only;
//! `PHANES_VM=all` adds Debian 13, `PHANES_VM=full` Packer on Debian 13 too. `PHANES_VM_PROFILE=<name>` runs the battery on another profile.

use crate::{guest, profiles, vm};
use guest::{converged, run_bundle, ssh_from_host};
use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;
use vm::{BootOptions, Coverage, Release, SSH_TIMEOUT, TestKey, Vm};

/// The admin user every case's config creates; the harness logs in as this user.
const ADMIN: &str = "admin";
/// A second sudo user with the same key, so a case can remove admin's key and still get in.
const SPARE: &str = "spare";
/// Boot plus the first run of the bundle (apt installs under TCG are slow).
const FIRST_RUN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1200);

/// The config a case renders: every module option that a VM can observe, set away from its default.
fn test_config(key: &str, swap: &str) -> String {
    format!(
        "baseline:
  hostname: phanes-e2e
  timezone: Europe/Berlin
  locales: [en_US.UTF-8, de_DE.UTF-8]
  default_locale: de_DE.UTF-8
  packages: [ca-certificates, curl, less]
user:
  users:
    - name: {ADMIN}
      groups: [adm]
      ssh_keys: [\"{key}\"]
    - name: {SPARE}
      ssh_keys: [\"{key}\"]
swap:
  size: {swap}
  swappiness: 15
security:
  fail2ban:
    # The harness polls SSH before the bundle has made the user: without this, fail2ban bans it.
    ignore_addresses: [198.51.100.2]
"
    )
}

/// Renders `profile` with `config` (and a Packer fragment for the null builder) into a fresh folder.
fn render(profile: &str, config: &str, extra: &[&str]) -> PathBuf {
    let args = [&["--packer-source", "null.vm"], extra].concat();
    profiles::render_with(profile, config, &[], &args)
}

/// Each module's proof, from inside the guest, as the configured user.
fn prove_modules(vm: &Vm, key: &Path, swap_bytes: u64) {
    vm.ssh_ok("sudo -n true");
    assert_eq!(vm.ssh_ok("hostname").trim(), "phanes-e2e");
    assert_eq!(vm.ssh_ok("cat /etc/hostname").trim(), "phanes-e2e");
    assert!(
        vm.ssh_ok("cat /etc/hosts")
            .lines()
            .any(|l| l == "127.0.1.1\tphanes-e2e")
    );
    assert_eq!(
        vm.ssh_ok("readlink -f /etc/localtime").trim(),
        "/usr/share/zoneinfo/Europe/Berlin"
    );
    assert_eq!(
        vm.ssh_ok("timedatectl show -p Timezone --value").trim(),
        "Europe/Berlin"
    );
    let locales = vm.ssh_ok("locale -a");
    for want in ["en_US.utf8", "de_DE.utf8"] {
        assert!(
            locales.lines().any(|l| l == want),
            "{want} missing from locale -a:\n{locales}"
        );
    }
    assert_eq!(
        vm.ssh_ok("cat /etc/default/locale").trim(),
        "LANG=de_DE.UTF-8"
    );
    assert!(vm.ssh_ok("id -nG").split_whitespace().any(|g| g == "adm"));
    let swaps = vm.ssh_ok("sudo -n swapon --show=NAME,SIZE --bytes --noheadings");
    let line = swaps
        .lines()
        .find(|l| l.starts_with("/swapfile "))
        .unwrap_or_else(|| panic!("no swap: {swaps}"));
    let size: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    // swapon reports the usable size: the file minus one page for the swap header.
    assert!(
        size <= swap_bytes && size + 64 * 1024 >= swap_bytes,
        "swap is {size} bytes, want {swap_bytes}"
    );
    assert_eq!(vm.ssh_ok("cat /proc/sys/vm/swappiness").trim(), "15");
    prove_security(vm, key);
}

/// security and updates, from inside and from outside the guest.
fn prove_security(vm: &Vm, key: &Path) {
    let effective = vm.ssh_ok("sudo -n sshd -T -C user=admin,host=localhost,addr=127.0.0.1");
    for want in [
        "passwordauthentication no",
        "permitrootlogin no",
        "port 22",
        "pubkeyauthentication yes",
    ] {
        assert!(
            effective.lines().any(|l| l == want),
            "sshd -T lacks {want:?}"
        );
    }
    // From outside: no password login is offered, and root cannot log in even with a key.
    let password = ssh_from_host(
        key,
        ADMIN,
        vm.ssh_port(),
        &["-o", "PubkeyAuthentication=no"],
        "true",
    );
    let stderr = String::from_utf8_lossy(&password.stderr);
    assert!(!password.status.success(), "password login must be refused");
    assert!(
        stderr.contains("Permission denied (publickey)"),
        "only publickey may be offered: {stderr}"
    );
    vm.ssh_ok("sudo -n install -d -m 0700 /root/.ssh");
    vm.ssh_ok("sudo -n cp /home/admin/.ssh/authorized_keys /root/.ssh/authorized_keys");
    assert!(
        !ssh_from_host(key, "root", vm.ssh_port(), &[], "true")
            .status
            .success(),
        "root login must be refused, even with a key"
    );
    vm.ssh_ok("sudo -n rm -f /root/.ssh/authorized_keys");
    let ufw = vm.ssh_ok("sudo -n ufw status");
    assert!(ufw.lines().any(|l| l == "Status: active"), "{ufw}");
    let ports: BTreeSet<&str> = ufw
        .lines()
        .skip_while(|l| !l.starts_with("--"))
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(
        ports,
        BTreeSet::from(["22/tcp"]),
        "ufw must allow exactly the SSH port:\n{ufw}"
    );
    vm.ssh_ok("sudo -n fail2ban-client status sshd");
    assert_eq!(vm.ssh_ok("systemctl is-active fail2ban").trim(), "active");
    assert_eq!(
        vm.ssh_ok("apt-config dump APT::Periodic::Unattended-Upgrade")
            .trim(),
        "APT::Periodic::Unattended-Upgrade \"1\";"
    );
    assert_eq!(
        vm.ssh_ok("systemctl is-enabled apt-daily-upgrade.timer")
            .trim(),
        "enabled"
    );
    let origins = vm.ssh_ok("apt-config dump Unattended-Upgrade::Origins-Pattern");
    assert!(
        origins.contains("label=Debian-Security"),
        "security origins must apply:\n{origins}"
    );
}

/// The lockout guard on the real system: with no sudo user holding a key, turning password login
/// off is refused and nothing changes. One root command, which puts the keys back on exit.
fn lockout_guard_refuses(vm: &Vm, bundle: &str) {
    let script = format!(
        "d=/etc/ssh/sshd_config.d/00-phanes.conf
         trap 'mv /root/ak.admin /home/admin/.ssh/authorized_keys; mv /root/ak.spare /home/spare/.ssh/authorized_keys' EXIT
         mv /home/admin/.ssh/authorized_keys /root/ak.admin; mv /home/spare/.ssh/authorized_keys /root/ak.spare
         sed -i 's/^MaxAuthTries .*/MaxAuthTries 9/' $d; cp $d /root/before.conf
         {bundle} --only security.ssh-config --no-color; echo \"exit=$?\"
         cmp $d /root/before.conf && echo unchanged"
    );
    let out = vm.ssh(&format!(
        "sudo -n bash -c {}",
        phanes::render::quote(&script)
    ));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("refusing to disable password/root login"),
        "the guard must refuse:\n{text}"
    );
    assert!(
        text.contains("exit=1") && text.contains("unchanged"),
        "the step fails and changes nothing:\n{text}"
    );
}

/// Breaks one thing per module, checks that `--dry-run` names exactly those steps, repairs them.
fn drift_and_repair(vm: &mut Vm, key: &Path, bundle: &str) {
    let breakage = [
        (
            "sudo -n ln -sfn /usr/share/zoneinfo/UTC /etc/localtime",
            "baseline.timezone",
        ),
        ("sudo -n hostname drifted", "baseline.hostname"),
        ("sudo -n swapoff /swapfile", "swap.file"),
        ("sudo -n sysctl -q -w vm.swappiness=60", "swap.swappiness"),
        ("sudo -n sed -i '\\#^/swapfile #d' /etc/fstab", "swap.fstab"),
        (
            "sudo -n truncate -s 0 /home/admin/.ssh/authorized_keys",
            "user.admin.keys",
        ),
        ("sudo -n gpasswd -d admin adm", "user.admin.groups"),
        (
            "sudo -n systemctl stop fail2ban",
            "security.fail2ban-service",
        ),
        (
            "sudo -n ufw allow 8080/tcp comment phanes",
            "security.firewall-prune",
        ),
        (
            "sudo -n sed -i 's/^MaxAuthTries .*/MaxAuthTries 6/' /etc/ssh/sshd_config.d/00-phanes.conf",
            "security.ssh-config",
        ),
    ];
    // admin's key goes away: continue as the spare user, who has the same key.
    vm.wait_ssh(SPARE, key, SSH_TIMEOUT);
    for (command, _) in breakage {
        vm.ssh_ok(command);
    }
    let dry = run_bundle(vm, bundle, "--dry-run");
    assert_eq!(
        dry.exit, 2,
        "dry-run must report drift with exit 2:\n{}",
        dry.raw
    );
    let expected: BTreeSet<String> = breakage.iter().map(|(_, step)| step.to_string()).collect();
    assert_eq!(
        dry.with_status("would-change"),
        expected,
        "dry-run must name exactly the drifted steps:\n{}",
        dry.raw
    );
    assert!(
        dry.with_status("changed").is_empty(),
        "a dry run changes nothing"
    );
    let repair = run_bundle(vm, bundle, "");
    assert_eq!(repair.exit, 0, "repair run failed:\n{}", repair.raw);
    assert_eq!(
        repair.with_status("changed"),
        expected,
        "the repair run changes exactly the drifted steps"
    );
    vm.wait_ssh(ADMIN, key, SSH_TIMEOUT);
    converged(vm, bundle).unwrap();
}

/// The cloud-init way, then bash by hand (idempotence, drift, reboot, an option change), on one guest.
fn cloud_init_and_bash(release: Release, profile: &str) {
    let started = Instant::now();
    let key = TestKey::generate();
    let out = render(profile, &test_config(&key.public_text, "256M"), &[]);
    let user_data = fs::read_to_string(out.join("user-data.yaml")).unwrap();
    let port_2222 = vm::free_port();
    let mut vm = Vm::boot(
        release,
        BootOptions {
            user_data: user_data.into(),
            hostname: format!("{profile}-{}", release.codename()),
            forwards: vec![(port_2222, 2222)],
            ..Default::default()
        },
    );
    // The user exists only if the bundle ran: logging in with the key proves the user module.
    vm.wait_ssh(ADMIN, &key.private, FIRST_RUN_TIMEOUT);
    let (status, code) = vm.wait_cloud_init();
    assert_eq!(code, 0, "cloud-init status:\n{status}");
    assert!(status.contains("status: done"), "{status}");
    let log = vm.ssh_ok("sudo -n cat /var/log/cloud-init-output.log");
    let recap = log
        .lines()
        .find(|l| l.starts_with("phanes: ok="))
        .unwrap_or_else(|| panic!("no recap in:\n{log}"));
    assert!(recap.contains(" failed=0 "), "{recap}");
    let first_boot = vm.uptime();

    // The installed copy and a copy sent over SSH are the same bundle.
    vm.scp_to(&out.join("setup.sh"), "/tmp/setup.sh");
    assert_eq!(
        vm.ssh_ok("sudo -n sha256sum /usr/local/sbin/phanes-setup | cut -d' ' -f1"),
        vm.ssh_ok("sha256sum /tmp/setup.sh | cut -d' ' -f1")
    );
    let bundle = "bash /tmp/setup.sh";
    converged(&vm, bundle).unwrap();
    prove_modules(&vm, &key.private, 256 << 20);

    // The harness can fail: a check that never passes is reported, naming its step.
    vm.ssh_ok("sed 's/^main \"\\$@\"$/swap_swappiness__check() { false; }\\nmain \"$@\"/' /tmp/setup.sh >/tmp/broken.sh");
    let verdict =
        converged(&vm, "bash /tmp/broken.sh").expect_err("a broken check must fail the harness");
    assert!(verdict.contains("swap.swappiness (failed)"), "{verdict}");

    lockout_guard_refuses(&vm, bundle);
    let repair = run_bundle(&vm, bundle, "");
    assert_eq!(
        repair.with_status("changed"),
        BTreeSet::from(["security.ssh-config".to_string()]),
        "{}",
        repair.raw
    );
    drift_and_repair(&mut vm, &key.private, bundle);

    // Survives a reboot: swap from fstab, host name kept by cloud-init.
    vm.reboot(SSH_TIMEOUT);
    prove_modules(&vm, &key.private, 256 << 20);
    converged(&vm, "/usr/local/sbin/phanes-setup").unwrap();

    // Changing an option and re-running applies it.
    let resized = render(profile, &test_config(&key.public_text, "384M"), &[]);
    vm.scp_to(&resized.join("setup.sh"), "/tmp/setup.sh");
    let run = run_bundle(&vm, bundle, "");
    assert_eq!(run.exit, 0, "{}", run.raw);
    assert_eq!(
        run.with_status("changed"),
        BTreeSet::from(["swap.file".to_string()]),
        "{}",
        run.raw
    );
    prove_modules(&vm, &key.private, 384 << 20);
    converged(&vm, bundle).unwrap();

    // One change of each option kind at once: a number (SSH port), a list (firewall rules), a
    // string (time zone), an enum (root login), a bool (automatic reboots). The SSH port moves
    // without locking anyone out: this session stays up, and a new one gets in on the new port.
    let changed = format!(
        "{}  ssh:\n    port: 2222\n    permit_root_login: prohibit-password\n  firewall:\n    allow: [80/tcp]\nupdates:\n  automatic_reboot: true\n",
        test_config(&key.public_text, "384M")
            .replace("timezone: Europe/Berlin", "timezone: Etc/UTC")
    );
    let moved = render(profile, &changed, &[]);
    vm.scp_to(&moved.join("setup.sh"), "/tmp/setup.sh");
    let run = run_bundle(&vm, bundle, "");
    assert_eq!(run.exit, 0, "{}", run.raw);
    for step in [
        "baseline.timezone",
        "security.ssh-config",
        "security.ssh-listen",
        "security.firewall-rules",
        "updates.policy",
    ] {
        assert!(
            run.with_status("changed").contains(step),
            "{step} must apply the change:\n{}",
            run.raw
        );
    }
    assert_eq!(
        vm.ssh_ok("timedatectl show -p Timezone --value").trim(),
        "Etc/UTC"
    );
    let listening = vm.ssh_ok("ss -Htln");
    assert!(
        listening.contains(":2222 ") && !listening.contains(":22 "),
        "sshd must listen on 2222 only:\n{listening}"
    );
    let ufw = vm.ssh_ok("sudo -n ufw status");
    assert!(
        ufw.contains("2222/tcp")
            && ufw.contains("80/tcp")
            && !ufw.lines().any(|l| l.starts_with("22/tcp")),
        "{ufw}"
    );
    let effective = vm.ssh_ok("sudo -n sshd -T -C user=admin,host=localhost,addr=127.0.0.1");
    assert!(
        effective
            .lines()
            .any(|l| l == "permitrootlogin without-password"),
        "{effective}"
    );
    assert!(
        vm.ssh_ok("apt-config dump Unattended-Upgrade::Automatic-Reboot")
            .contains("\"true\"")
    );
    let fresh = ssh_from_host(&key.private, ADMIN, port_2222, &[], "sudo -n true");
    assert!(
        fresh.status.success(),
        "a new login on port 2222 must work: {}",
        String::from_utf8_lossy(&fresh.stderr)
    );
    converged(&vm, bundle).unwrap();
    fs::remove_dir_all(moved.parent().unwrap()).unwrap();
    report!(
        "[vm_e2e] {profile} on {}: first boot converged at {:.0?}, case total {:.0?}; recap: {recap}",
        release.codename(),
        first_boot,
        started.elapsed()
    );
    let _ = run.recap;
    fs::remove_dir_all(out.parent().unwrap()).unwrap();
    fs::remove_dir_all(resized.parent().unwrap()).unwrap();
}

/// The Packer way: `packer build` with the rendered fragment and a null source pointed at a fresh
/// guest; afterwards the image cleanup must have run (a reboot gets a new machine-id).
fn packer_build(release: Release, profile: &str) {
    let started = Instant::now();
    let key = TestKey::generate();
    let out = render(profile, &test_config(&key.public_text, "256M"), &[]);
    let user_data = vm::login_user_data("packer", &key.public_text);
    let mut vm = Vm::boot(
        release,
        BootOptions {
            user_data: user_data.into(),
            hostname: format!("packer-{}", release.codename()),
            ..Default::default()
        },
    );
    vm.wait_ssh("packer", &key.private, SSH_TIMEOUT);
    let machine_id = vm.ssh_ok("cat /etc/machine-id");
    let packer_dir = out.join("packer");
    fs::write(
        packer_dir.join("source.pkr.hcl"),
        format!(
            "source \"null\" \"vm\" {{\n  communicator         = \"ssh\"\n  ssh_host             = \"127.0.0.1\"\n  ssh_port             = {}\n  ssh_username         = \"packer\"\n  ssh_private_key_file = \"{}\"\n}}\n",
            vm.ssh_port(),
            key.private.display()
        ),
    )
    .unwrap();
    let build = Command::new("packer")
        .args(["build", "-color=false", "."])
        .current_dir(&packer_dir)
        .env("PACKER_LOG", "0")
        .output()
        .expect("run packer (apt-get install packer)");
    let log = String::from_utf8_lossy(&build.stdout);
    assert!(
        build.status.success(),
        "packer build failed:\n{log}{}",
        String::from_utf8_lossy(&build.stderr)
    );
    assert!(
        log.contains("phanes: ok="),
        "the bundle's recap must be in packer's output:\n{log}"
    );
    assert!(log.contains("phanes: image cleaned"), "{log}");
    // The guest as an image would boot: cloud-init runs as a new instance with a new identity.
    vm.reboot(SSH_TIMEOUT);
    vm.wait_ssh(ADMIN, &key.private, SSH_TIMEOUT);
    let (status, code) = vm.wait_cloud_init();
    assert_eq!(code, 0, "{status}");
    assert_ne!(
        vm.ssh_ok("cat /etc/machine-id"),
        machine_id,
        "the image's machine-id must be reset"
    );
    converged(&vm, "/usr/local/sbin/phanes-setup").unwrap();
    report!(
        "[vm_e2e] packer {profile} on {}: {:.0?}",
        release.codename(),
        started.elapsed()
    );
    fs::remove_dir_all(out.parent().unwrap()).unwrap();
}

/// The full battery runs on minimal, the base every other profile extends; the service profiles
/// have their own cases in services.rs. `PHANES_VM_PROFILE` picks another profile.
fn profiles() -> Vec<String> {
    match std::env::var("PHANES_VM_PROFILE") {
        Ok(p) if !p.is_empty() => vec![p],
        _ => vec!["minimal".to_string()],
    }
}

fn for_each_case(case: &str, release: Release, coverage: Coverage, run: fn(Release, &str)) {
    if vm::case_runs(case, release, coverage) {
        for profile in profiles() {
            run(release, &profile);
        }
    }
}

#[test]
fn bookworm_cloud_init_and_bash() {
    for_each_case(
        "cloud-init and bash",
        Release::Bookworm,
        Coverage::Always,
        cloud_init_and_bash,
    );
}

#[test]
fn trixie_cloud_init_and_bash() {
    for_each_case(
        "cloud-init and bash",
        Release::Trixie,
        Coverage::FullOnly,
        cloud_init_and_bash,
    );
}

#[test]
fn bookworm_packer() {
    for_each_case(
        "Packer",
        Release::Bookworm,
        Coverage::FullOnly,
        packer_build,
    );
}

/// Packer runs the same bundle as cloud-init through another door: `all` (CI) takes that door on
/// Debian 12 only; `full` takes it on Debian 13 too.
#[test]
fn trixie_packer() {
    for_each_case("Packer", Release::Trixie, Coverage::FullOnly, packer_build);
}
