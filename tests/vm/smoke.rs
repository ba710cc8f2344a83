//! Proves the VM harness itself, without phanes: a bare cloud-init user-data boots each release of
//! the tier to `status: done`, the user logs in with its key and has sudo, and a reboot comes back.
//! Run: `PHANES_VM=all cargo test --release --test vm smoke:: -- --nocapture`.

use crate::vm;
use std::time::Instant;
use vm::{BootOptions, Release, SSH_TIMEOUT, TestKey, Vm};

const USER: &str = "phanes-test";

vm_case!(
    bookworm_boot_login_sudo_reboot,
    "smoke",
    Bookworm,
    FullOnly,
    boot_login_sudo_reboot
);

vm_case!(
    trixie_boot_login_sudo_reboot,
    "smoke",
    Trixie,
    FullOnly,
    boot_login_sudo_reboot
);

fn boot_login_sudo_reboot(release: Release) {
    let key = TestKey::generate();
    let user_data = vm::login_user_data(USER, &key.public_text);
    let case = Instant::now();
    vm::ensure_image(release);
    let image_time = case.elapsed();

    let mut vm = Vm::boot(
        release,
        BootOptions {
            user_data: user_data.clone().into(),
            hostname: format!("smoke-{}", release.codename()),
            ..Default::default()
        },
    );
    vm.wait_ssh(USER, &key.private, SSH_TIMEOUT);
    let ssh_time = vm.uptime();

    let (status, code) = vm.wait_cloud_init();
    let cloud_init_time = vm.uptime();
    assert_eq!(code, 0, "cloud-init status:\n{status}");
    assert!(status.contains("status: done"), "{status}");
    // `detail` lists the failing modules on error; `errors` exists from cloud-init 23.4.
    assert!(!status.contains("status: error"), "{status}");
    if let Some(errors) = status.lines().find(|l| l.starts_with("errors:")) {
        assert_eq!(errors.trim(), "errors: []", "{status}");
    }

    // A clean baseline: later tests may blame phanes for any failed unit.
    let state = vm.ssh("systemctl is-system-running --wait");
    let state = String::from_utf8_lossy(&state.stdout);
    assert_eq!(
        state.trim(),
        "running",
        "{}",
        vm.ssh_ok("systemctl --failed --no-pager || true")
    );

    vm.ssh_ok("sudo -n true");
    let os_release = vm.ssh_ok("cat /etc/os-release");
    let want = format!("VERSION_ID=\"{}\"", release.version_id());
    assert!(os_release.lines().any(|l| l == want), "{os_release}");
    assert_eq!(
        vm.ssh_ok("hostname").trim(),
        format!("smoke-{}", release.codename())
    );

    let reboot = Instant::now();
    vm.reboot(SSH_TIMEOUT);
    let reboot_time = reboot.elapsed();
    vm.ssh_ok("sudo -n true");

    report!(
        "[vm_smoke] {}: image {:.1?}, boot to SSH {:.1?}, cloud-init done {:.1?}, \
         reboot to SSH {:.1?}, case total {:.1?}",
        release.codename(),
        image_time,
        ssh_time,
        cloud_init_time,
        reboot_time,
        case.elapsed()
    );
}
