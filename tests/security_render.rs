//! The security and updates modules: bundles for several option combinations pass bash -n and
//! shellcheck, bad values are rejected with their key path, and the pure bash helpers (rule
//! sets, sshd -T comparison, sudo rule parsing) give the right answers on fixture input. Only
//! the helper block is ever run here, never a bundle: it would change this host's sshd,
//! firewall and apt.

mod common;

use common::output_ok;
use common::render::{block, check_script, helpers, run_bash, shell_err, shell_ok};
use common::temp_dir;
use std::fs;
use std::process::Command;

/// A config with a sudo user `deploy` (with a key) and `ops`, then `security_and_updates`.
fn config_with(security_and_updates: &str) -> String {
    common::render::config_with(&format!("    - name: ops\n{security_and_updates}"))
}

/// The minimal profile's setup.sh with `config` and `sets`.
fn render_ok(config: &str, sets: &[&str]) -> String {
    shell_ok(Some("minimal"), &[], config, sets)
}

/// The error of rendering the minimal profile with `config` and `sets`.
fn render_err(config: &str, sets: &[&str]) -> String {
    shell_err(Some("minimal"), &[], config, sets)
}

#[test]
fn option_combinations_render_and_pass_bash_and_shellcheck() {
    let cases: &[(&str, &str, &[&str], &[&str])] = &[
        (
            "defaults",
            "",
            &[],
            &[
                "Port 22\n",
                "PermitRootLogin no\n",
                "PasswordAuthentication no\n",
                "'UFW allows SSH on 22/tcp",
            ],
        ),
        (
            "port-change",
            "",
            &["security.ssh.port=2222"],
            &[
                "Port 2222\n",
                "SSH listens on port 2222 with password login off",
                "port = 2222\n",
                "security.ssh-listen",
            ],
        ),
        (
            "prohibit-password",
            "security:\n  ssh:\n    permit_root_login: prohibit-password\n    allow_users: [deploy, root]\n    password_authentication: true\n",
            &[],
            &[
                "PermitRootLogin prohibit-password\n",
                "AllowUsers deploy root\n",
                "PasswordAuthentication yes\n",
                "user=deploy,host=localhost",
            ],
        ),
        (
            "firewall-rules",
            "security:\n  firewall:\n    allow: [80/tcp, 443, 51820/udp, \"6000:6007/tcp\"]\n    limit_ssh: true\n",
            &[],
            &[
                "SECURITY_FW_RULES=('80/tcp' '443' '51820/udp' '6000:6007/tcp')",
                "UFW allows 80/tcp, 443, 51820/udp, 6000:6007/tcp",
                "SECURITY_SSH_ACTION='limit'",
            ],
        ),
        (
            "fail2ban-and-firewall-off",
            "security:\n  firewall:\n    enabled: false\n  fail2ban:\n    enabled: false\n",
            &[],
            &["'Packages installed: openssh-server, iproute2'"],
        ),
        (
            "updates-with-reboot",
            "updates:\n  automatic_reboot: true\n  reboot_time: \"03:30\"\n  remove_unused_dependencies: false\n  initial_upgrade: true\n  origins: [origin=Docker, \"o=Debian,n=${distro_codename}-backports\"]\n",
            &[],
            &[
                "Unattended-Upgrade::Automatic-Reboot \"true\";",
                "Unattended-Upgrade::Automatic-Reboot-Time \"03:30\";",
                "Unattended-Upgrade::Remove-Unused-Dependencies \"false\";",
                "        \"o=Debian,n=${distro_codename}-backports\";",
                "updates.initial-upgrade",
                "reboots by itself at 03:30",
            ],
        ),
    ];
    for (name, yaml, sets, wanted) in cases {
        let script = render_ok(&config_with(yaml), sets);
        check_script(name, &script, wanted, &[]);
    }
    let off = render_ok(
        &config_with(
            "security:\n  firewall:\n    enabled: false\n  fail2ban:\n    enabled: false\n",
        ),
        &[],
    );
    for gone in [
        "security.firewall-",
        "security.fail2ban-",
        "python3-systemd",
    ] {
        assert!(
            !off.contains(gone),
            "firewall/fail2ban off still has {gone}"
        );
    }
    // The steps run in the order that keeps the way in open.
    let full = render_ok(
        &config_with("security:\n  firewall:\n    allow: [80/tcp]\n"),
        &[],
    );
    let order = [
        "phanes_step security.firewall-ssh",
        "phanes_step security.firewall-defaults",
        "phanes_step security.firewall-rules",
        "phanes_step security.firewall-enabled",
        "phanes_step security.ssh-config",
        "phanes_step security.ssh-listen",
        "phanes_step security.firewall-prune",
        "phanes_step security.fail2ban-jail",
    ];
    let at: Vec<usize> = order
        .iter()
        .map(|s| full.find(s).unwrap_or_else(|| panic!("missing {s}")))
        .collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "step order {at:?}");
}

#[test]
fn invalid_values_are_rejected_with_their_key_path() {
    let cases: &[(&str, &[&str], &[&str])] = &[
        (
            "",
            &["security.ssh.port=0"],
            &["security.ssh.port: 0 is out of range: expected 1 to 65535"],
        ),
        (
            "security:\n  firewall:\n    allow: [80/icmp]\n",
            &[],
            &[
                "phanes.yaml:9:12:",
                "security.firewall.allow: invalid firewall rule \"80/icmp\"",
            ],
        ),
        (
            "",
            &["updates.reboot_time=25:00"],
            &["updates.reboot_time: invalid value \"25:00\": expected a 24-hour time"],
        ),
        (
            "security:\n  ssh:\n    allow_users: [ops]\n",
            &[],
            &[
                "security.ssh.allow_users: user \"deploy\" has SSH keys (user.users[0].ssh_keys)",
                "help: add \"deploy\" to security.ssh.allow_users",
            ],
        ),
        (
            "security:\n  firewall:\n    allow: [\"6000:6007\"]\n",
            &[],
            &["security.firewall.allow: invalid firewall rule \"6000:6007\""],
        ),
        (
            "security:\n  firewall:\n    allow: [22/tcp]\n",
            &[],
            &["security.firewall.allow[0]: firewall rule 22/tcp includes the SSH port 22"],
        ),
        (
            "security:\n  ssh:\n    permit_root_login: yes\n",
            &[],
            &["security.ssh.permit_root_login"],
        ),
        (
            "security:\n  fail2ban:\n    bantime: forever\n",
            &[],
            &["security.fail2ban.bantime: invalid time \"forever\""],
        ),
        (
            "updates:\n  origins: [\"origin=x\\\"; }; APT::Evil \\\"1\"]\n",
            &[],
            &["updates.origins: invalid value"],
        ),
    ];
    for (yaml, sets, wanted) in cases {
        let err = render_err(&config_with(yaml), sets);
        for want in *wanted {
            assert!(
                err.contains(want),
                "{yaml}{sets:?}: missing {want:?} in\n{err}"
            );
        }
    }
}

#[test]
fn pure_bash_helpers_compute_rule_sets_and_compare_sshd_settings() {
    let script = render_ok(
        &config_with(
            "security:\n  ssh:\n    port: 2222\n    allow_users: [deploy]\n  firewall:\n    allow: [80/tcp, 443]\n    limit_ssh: true\n",
        ),
        &[],
    );
    let block = helpers(&script, "security");
    assert!(
        !block.contains("main \"$@\""),
        "the block must not run anything"
    );
    let dir = temp_dir("security-helpers");

    // The UFW rule sets phanes wants, has, lacks and must remove.
    let added = "Added user rules (see 'ufw status' for running firewall):\n\
                 ufw limit 22/tcp comment 'phanes'\n\
                 ufw allow 443 comment 'phanes'\n\
                 ufw allow 8080/tcp comment 'phanes'\n\
                 ufw allow 80/tcp\n\
                 ufw allow OpenSSH\n";
    fs::write(dir.join("added"), added).unwrap();
    let out = run_bash(
        &block,
        &format!(
            "have=$(security_ufw_phanes_rules <{added})\n\
             echo \"[desired]\"; security_ufw_desired\n\
             echo \"[have]\"; echo \"$have\"\n\
             echo \"[missing]\"; security_lines_missing \"$(security_ufw_desired)\" \"$have\"\n\
             echo \"[stale]\"; security_lines_missing \"$have\" \"$(security_ufw_desired)\"\n\
             echo \"[ssh-now]\"; security_ufw_ssh_needed \"$(printf '22\\n')\"\n",
            added = dir.join("added").display()
        ),
        &dir,
    );
    assert_eq!(
        out,
        "[desired]\nallow 443\nallow 80/tcp\nlimit 2222/tcp\n\
         [have]\nallow 443\nallow 8080/tcp\nlimit 22/tcp\n\
         [missing]\nallow 80/tcp\nlimit 2222/tcp\n\
         [stale]\nallow 8080/tcp\nlimit 22/tcp\n\
         [ssh-now]\nlimit 22/tcp\nlimit 2222/tcp\n"
    );

    // sshd -T output (OpenSSH 9.2, with a 50-cloud-init.conf that adds Port 22) against the drop-in.
    let sshd_t = "port 2222\nport 22\nlogingracetime 30\nmaxauthtries 3\nclientaliveinterval 300\n\
                  clientalivecountmax 2\npermitrootlogin without-password\npubkeyauthentication yes\n\
                  passwordauthentication no\nkbdinteractiveauthentication no\nx11forwarding no\n\
                  permitemptypasswords no\nallowusers deploy\nsubsystem sftp /usr/lib/openssh/sftp-server\n";
    fs::write(dir.join("sshd-T"), sshd_t).unwrap();
    let out = run_bash(
        &block,
        &format!(
            "t=$(<{t})\n\
             conf=${{SECURITY_SSHD_CONF/PermitRootLogin no/PermitRootLogin prohibit-password}}\n\
             echo \"[drift]\"; security_sshd_compare \"$(security_sshd_expected \"$conf\")\" \"$t\"\n\
             echo \"[fixed]\"; security_sshd_compare \"$(security_sshd_expected \"$conf\")\" \"$(grep -vx 'port 22' <<<\"$t\")\"\n\
             echo \"[root]\"; security_sshd_compare \"$(security_sshd_expected \"$SECURITY_SSHD_CONF\")\" \"$(grep -vx 'port 22' <<<\"$t\")\"\n",
            t = dir.join("sshd-T").display()
        ),
        &dir,
    );
    assert_eq!(
        out,
        "[drift]\nport: want 2222, sshd uses 22 2222\n[fixed]\n[root]\npermitrootlogin: want no, sshd uses prohibit-password\n"
    );

    // Include detection, sshd listeners from ss, and sudo rules that give root.
    fs::write(
        dir.join("debian"),
        "# comment\nInclude /etc/ssh/sshd_config.d/*.conf\nKbdInteractiveAuthentication no\n",
    )
    .unwrap();
    fs::write(
        dir.join("in-match"),
        "Port 22\nMatch User x\n  Include /etc/ssh/sshd_config.d/*.conf\n",
    )
    .unwrap();
    fs::write(
        dir.join("ss"),
        "LISTEN 0 128 0.0.0.0:2222 0.0.0.0:* users:((\"sshd\",pid=612,fd=3))\n\
         LISTEN 0 128 [::]:22 [::]:* users:((\"sshd\",pid=612,fd=4),(\"systemd\",pid=1,fd=50))\n\
         LISTEN 0 4096 127.0.0.1:5432 0.0.0.0:* users:((\"postgres\",pid=9,fd=5))\n",
    )
    .unwrap();
    let out = run_bash(
        &block,
        &format!(
            "security_sshd_includes_dropins {d}/debian && echo include-ok\n\
             security_sshd_includes_dropins {d}/in-match || echo include-in-match-refused\n\
             security_ss_sshd_ports <{d}/ss | paste -sd' '\n\
             nopw=$'User deploy may run the following commands on web:\\n    (ALL : ALL) NOPASSWD: ALL'\n\
             pw=$'User ops may run the following commands on web:\\n    (ALL : ALL) ALL'\n\
             some=$'User x may run the following commands on web:\\n    (root) NOPASSWD: /usr/bin/systemctl'\n\
             security_sudo_grants_root \"$nopw\" '!' && echo nopasswd-root\n\
             security_sudo_grants_root \"$pw\" '$y$j9T$salt$hash' && echo password-root\n\
             security_sudo_grants_root \"$pw\" '!*' || echo locked-password-refused\n\
             security_sudo_grants_root \"$some\" '' || echo some-commands-refused\n\
             security_sudo_grants_root 'User y is not allowed to run sudo on web.' x || echo no-sudo-refused\n",
            d = dir.display()
        ),
        &dir,
    );
    assert_eq!(
        out,
        "include-ok\ninclude-in-match-refused\n22 2222\nnopasswd-root\npassword-root\n\
         locked-password-refused\nsome-commands-refused\nno-sudo-refused\n"
    );
    fs::remove_dir_all(dir).unwrap();
}

/// The lockout guard with getent, sudo and the runtime's reporting replaced by stubs that read
/// fixture files: it decides from passwd, shadow, authorized_keys and sudo -l output alone.
#[test]
fn lockout_guard_needs_an_allowed_sudo_user_with_a_key() {
    let dir = temp_dir("security-guard");
    let d = dir.display();
    for name in ["deploy", "ops", "svc", "root"] {
        fs::create_dir_all(dir.join(format!("home/{name}/.ssh"))).unwrap();
    }
    fs::write(
        dir.join("passwd"),
        format!(
            "root:x:0:0:root:{d}/home/root:/bin/bash\n\
             deploy:x:1000:1000::{d}/home/deploy:/bin/bash\n\
             ops:x:1001:1001::{d}/home/ops:/bin/bash\n\
             svc:x:998:998::{d}/home/svc:/usr/sbin/nologin\n"
        ),
    )
    .unwrap();
    fs::write(
        dir.join("shadow"),
        "root:*:1::::::\ndeploy:!:1::::::\nops:!:1::::::\nsvc:!:1::::::\n",
    )
    .unwrap();
    let all = "User x may run the following commands on web:\n    (ALL : ALL) NOPASSWD: ALL\n";
    for name in ["deploy", "ops", "svc"] {
        fs::write(dir.join(format!("sudo-{name}")), all).unwrap();
    }
    let stubs = format!(
        "getent() {{ case $1 in passwd) cat {d}/passwd ;; shadow) grep \"^$2:\" {d}/shadow ;; esac; }}\n\
         sudo() {{ cat {d}/sudo-\"$4\" 2>/dev/null || echo \"User $4 is not allowed to run sudo on web.\"; }}\n\
         phanes_fail() {{ echo \"FAIL: $*\"; return 1; }}\n\
         phanes_log() {{ :; }}\n\
         key() {{ echo 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGx2dGVzdGtleWJsb2I x' >{d}/home/$1/.ssh/authorized_keys; }}\n\
         nokey() {{ printf '# no keys\\n\\n' >{d}/home/$1/.ssh/authorized_keys; }}\n\
         guard() {{ security_lockout_guard && echo \"PASS: $(security_admin_logins | paste -sd' ')\"; }}\n"
    );
    let guard_of = |yaml: &str| {
        let script = render_ok(&config_with(yaml), &[]);
        format!(
            "{}\n{}\n{stubs}",
            helpers(&script, "security"),
            block(&script, "security", "lockout guard")
        )
    };

    let restricted = guard_of("security:\n  ssh:\n    allow_users: [deploy]\n");
    let out = run_bash(
        &restricted,
        &format!(
            "set +e\n\
             nokey deploy; nokey ops; nokey svc; nokey root; guard\n\
             key ops; key svc; guard\n\
             key deploy; guard\n\
             rm {d}/sudo-deploy; guard\ntrue\n"
        ),
        &dir,
    );
    let out = out.replace(&d.to_string(), "D");
    assert_eq!(
        out,
        "FAIL: refusing to disable password/root login: no sudo user with an SSH key exists among allow_users (deploy); add one under user.users (with ssh_keys and sudo), or check that its key is in ~/.ssh/authorized_keys\n\
         FAIL: refusing to disable password/root login: no sudo user with an SSH key exists among allow_users (deploy); add one under user.users (with ssh_keys and sudo), or check that its key is in ~/.ssh/authorized_keys\n\
         PASS: deploy\n\
         FAIL: refusing to disable password/root login: no sudo user with an SSH key exists among allow_users (deploy); add one under user.users (with ssh_keys and sudo), or check that its key is in ~/.ssh/authorized_keys\n",
        "ops is not allowed, svc has no login shell, deploy counts only with key and sudo"
    );

    // Root's own key keeps the way in under prohibit-password, never under `no`.
    fs::write(dir.join("sudo-deploy"), all).unwrap();
    let root_by_key = guard_of("security:\n  ssh:\n    permit_root_login: prohibit-password\n");
    let out = run_bash(
        &root_by_key,
        "set +e\nnokey deploy; nokey ops; nokey svc; key root; guard\nkey ops; guard\ntrue\n",
        &dir,
    );
    assert_eq!(out, "PASS: root\nPASS: root ops\n");
    let out = run_bash(
        &guard_of(""),
        "set +e\nnokey deploy; nokey ops; nokey svc; key root; guard | cut -c1-40\ntrue\n",
        &dir,
    );
    assert_eq!(out, "FAIL: refusing to disable password/root \n");
    fs::remove_dir_all(dir).unwrap();
}

/// A PATH of logging wrappers around the usual text tools, plus fakes of `sshd` (prints the
/// file `sshd-T` in `dir`), `stat` (reports root:root, mode 644) and `iptables` (exit status
/// from the file `iptables-rc`), in `dir`/bin. Every program a bash function starts through
/// PATH appends its name to `dir`/spawned; anything else is "command not found".
fn counting_path(dir: &std::path::Path) -> std::path::PathBuf {
    let bin = dir.join("bin");
    fs::create_dir_all(&bin).unwrap();
    let log = dir.join("spawned");
    let write = |name: &str, body: &str| {
        let path = bin.join(name);
        fs::write(
            &path,
            format!("#!/bin/bash\necho {name} >>'{}'\n{body}\n", log.display()),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    };
    for tool in [
        "awk", "sort", "sed", "cut", "paste", "grep", "cat", "head", "tr", "comm", "mktemp", "wc",
        "uniq", "id", "getent",
    ] {
        let real = output_ok(Command::new("bash").args(["-c", &format!("command -v {tool}")]));
        write(tool, &format!("exec {} \"$@\"", real.trim()));
    }
    write(
        "sshd",
        &format!("/bin/cat '{}'", dir.join("sshd-T").display()),
    );
    write(
        "stat",
        "printf '644 root:root 0:0 %s\\n' \"$(/usr/bin/stat -c %s -- \"${@: -1}\")\"",
    );
    write(
        "iptables",
        &format!("exit \"$(</'{}')\"", dir.join("iptables-rc").display()),
    );
    bin
}

/// The programs `call` starts, with the whole bundle sourced (it defines functions only until
/// `main`), `prepare` run before counting, and PATH made of [`counting_path`] alone.
/// Returns (exit status of `call`, the programs it started in order).
fn spawned_by(
    script: &str,
    dir: &std::path::Path,
    prepare: &str,
    call: &str,
) -> (i32, Vec<String>) {
    let bin = counting_path(dir);
    let bundle = script
        .strip_suffix("main \"$@\"\n")
        .expect("the bundle ends with main");
    fs::write(dir.join("bundle.sh"), bundle).unwrap();
    let log = dir.join("spawned");
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source '{bundle}'\n{prepare}\nPATH='{bin}'\n: >'{log}'\nrc=0\n{call} || rc=$?\nexit \"$rc\"\n",
            bundle = dir.join("bundle.sh").display(),
            bin = bin.display(),
            log = log.display(),
        ))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("command not found"),
        "{call} started a program the test does not wrap: {stderr}"
    );
    let spawned = fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    (out.status.code().unwrap(), spawned)
}

/// The no-op run's checks must be cheap (issue 9): security.ssh-config's check starts `stat`
/// and `sshd -T` once each and compares in bash (it used to start some 80 programs: awk, sort,
/// paste, sed per keyword); UFW's active check reads the kernel's ufw chain with one
/// `iptables` instead of starting Python (`ufw status`).
#[test]
fn no_op_checks_start_few_programs() {
    let script = render_ok(
        &config_with("security:\n  ssh:\n    allow_users: [deploy, ops]\n"),
        &[],
    );
    let dir = temp_dir("security-spawns");
    let dropin = dir.join("00-phanes.conf");
    let prepare = format!(
        "SECURITY_SSHD_DROPIN='{dropin}'\n\
         printf '%s' \"$SECURITY_SSHD_CONF\" >\"$SECURITY_SSHD_DROPIN\"\n\
         {{ security_sshd_expected \"$SECURITY_SSHD_CONF\"; echo 'subsystem sftp /usr/lib/openssh/sftp-server'; }} >'{t}'\n",
        dropin = dropin.display(),
        t = dir.join("sshd-T").display(),
    );
    // Converged: the drop-in is in place and sshd -T reports every value.
    let (rc, spawned) = spawned_by(&script, &dir, &prepare, "security_ssh_config__check");
    assert_eq!((rc, spawned), (0, vec!["stat".into(), "sshd".into()]));
    // Drift in sshd's effective settings (another file adds a Port): named, just as cheaply.
    let drift = format!(
        "{prepare}echo 'port 2200' >>'{}'\n",
        dir.join("sshd-T").display()
    );
    let (rc, spawned) = spawned_by(&script, &dir, &drift, "security_sshd_drift");
    assert_eq!((rc, spawned.clone()), (0, vec!["sshd".into()]));
    let (rc, _) = spawned_by(&script, &dir, &drift, "security_ssh_config__check");
    assert_eq!(rc, 1, "a second Port is drift");
    let out = output_ok(
        Command::new("/bin/bash")
            .arg("-c")
            .arg(format!(
                "source '{}'\n{drift}\nsecurity_sshd_drift",
                dir.join("bundle.sh").display()
            ))
            .env("PATH", counting_path(&dir)),
    );
    assert_eq!(out, "port: want 22, sshd uses 22 2200\n");
    // A changed drop-in is drift without asking sshd.
    let edited = format!("{prepare}echo 'X11Forwarding yes' >>\"$SECURITY_SSHD_DROPIN\"\n");
    let (rc, spawned) = spawned_by(&script, &dir, &edited, "security_ssh_config__check");
    assert_eq!((rc, spawned), (1, vec!["stat".into()]));

    // UFW is active: ENABLED=yes in ufw.conf (read by bash) and its chains in the kernel.
    let ufw = dir.join("ufw.conf");
    for (conf, iptables_rc, want) in [
        ("ENABLED=yes\nLOGLEVEL=low\n", 0, 0),
        ("ENABLED=yes\n", 1, 1),
        ("ENABLED=no\n", 0, 1),
    ] {
        fs::write(&ufw, conf).unwrap();
        fs::write(dir.join("iptables-rc"), iptables_rc.to_string()).unwrap();
        let prepare = format!(
            "SECURITY_UFW_CONF='{}'\nPHANES_SYSTEMD_DIR='{}'\n",
            ufw.display(),
            dir.display()
        );
        let (rc, spawned) = spawned_by(&script, &dir, &prepare, "security_firewall_enabled__check");
        assert_eq!(rc, want, "ufw.conf {conf:?}, iptables exit {iptables_rc}");
        assert!(
            spawned.len() <= 1 && spawned.iter().all(|p| p == "iptables"),
            "the UFW check started {spawned:?}"
        );
    }
    fs::remove_dir_all(dir).unwrap();
}
