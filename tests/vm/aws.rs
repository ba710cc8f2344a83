//! The AWS way in, booted: `render --provider aws` writes user-data.yaml.gz, the whole
//! `#cloud-config` gzip-compressed with the bundle minified inside (src/bundle/shrink.rs,
//! `minify`: no comments, short internal names). That file is what EC2 hands cloud-init; the
//! NoCloud seed here carries the same bytes, and cloud-init decompresses them the same way.
//!
//! The minified bundle is a different text from setup.sh, so it is proven as a program of its
//! own: it converges the minimal profile at first boot with a config of the size AWS users
//! write (two users, one with a password; two locales; a host name), a second run and a dry
//! run find nothing, drift is repaired by it, and setup.sh run afterwards agrees that the
//! server is converged (both bundles want the same state).
//!
//! With `--bundle-url` (every profile over the limit), user-data carries no bundle: cloud-init
//! downloads setup.sh from a server on the host, checks its sha256 and runs it; the `*_fetched`
//! cases boot the web profile that way.
//!
//! `PHANES_VM=full cargo test --release --test vm aws:: -- --nocapture`

use crate::{common, guest, profiles, vm};
use common::sha256;
use flate2::read::GzDecoder;
use guest::{converged, run_bundle};
use profiles::{ADMIN, BUNDLE, base_config, boot_with, drift_and_repair, render_with};
use std::collections::BTreeSet;
use std::fs;
use std::io::Read;
use std::time::Instant;
use vm::{HttpServer, Release, TestKey};

/// Where cloud-init installs the bundle (templates/targets/user-data.yaml.j2).
const INSTALLED: &str = "/usr/local/sbin/phanes-setup";
/// AWS's limit on user-data, before its base64.
const AWS_LIMIT: usize = 16 * 1024;
/// A second user who needs a password for sudo (`openssl passwd -6`, not a real secret).
const OPS_HASH: &str = "$6$phanesawstest$eIkKVqGRH6S7AM25IMetjGsxP71f70SCcsbHQZPXK97sYE9KO7R7E5F13slutdm1DKPbDqyiDAipMFXmgC/lY.";

/// The README's AWS example config, with the harness's key and address.
fn config(key: &str) -> String {
    format!(
        "baseline:
  hostname: aws-minimal
  timezone: Europe/Berlin
  locales: [en_US.UTF-8, de_DE.UTF-8]
  default_locale: en_US.UTF-8
user:
  users:
    - name: {ADMIN}
      ssh_keys: [\"{key}\"]
    - name: ops
      groups: [adm]
      sudo: password
      password_hash: '{OPS_HASH}'
swap:
  size: 256M
  swappiness: 20
security:
  fail2ban:
    # The harness polls SSH before the bundle has made the user: without this, fail2ban bans it.
    ignore_addresses: [198.51.100.2]
"
    )
}

/// The sha256 of the bundle cloud-init installed in the guest.
fn installed_sha256(vm: &vm::Vm) -> String {
    vm.ssh_ok(&format!("sudo -n sha256sum {INSTALLED} | cut -d' ' -f1"))
        .trim()
        .to_string()
}

/// The bundle inside the compressed user-data: the `content` of its one `write_files` entry.
fn bundle_inside(gz: &[u8]) -> String {
    let mut text = String::new();
    GzDecoder::new(gz).read_to_string(&mut text).unwrap();
    assert!(text.starts_with("#cloud-config\n"), "{text}");
    let doc: serde_norway::Value = serde_norway::from_str(&text).unwrap();
    let entry = &doc["write_files"][0];
    assert_eq!(entry["path"].as_str(), Some(INSTALLED));
    entry["content"].as_str().unwrap().to_string()
}

fn aws_minimal(release: Release) {
    let started = Instant::now();
    let key = TestKey::generate();
    let out = render_with(
        "minimal",
        &config(&key.public_text),
        &[],
        &["--provider", "aws"],
    );
    let gz = fs::read(out.join("user-data.yaml.gz")).unwrap();
    assert!(
        gz.len() <= AWS_LIMIT,
        "{} bytes: over AWS's limit",
        gz.len()
    );
    assert!(!out.join("user-data.yaml").exists());
    let minified = bundle_inside(&gz);
    let setup = fs::read_to_string(out.join("setup.sh")).unwrap();
    assert!(
        minified.len() < setup.len() && minified != setup,
        "the AWS bundle is setup.sh minified"
    );

    // boot_with waits for admin, who exists only if the bundle ran, and for a recap without
    // a failed step in cloud-init's output.
    let vm = boot_with(release, &out, "aws", &key, Vec::new());

    // What cloud-init installed is the minified bundle, byte for byte.
    let copy = out.join("minified.sh");
    fs::write(&copy, &minified).unwrap();
    assert_eq!(
        installed_sha256(&vm),
        sha256(&copy),
        "{INSTALLED} is not the bundle of user-data.yaml.gz"
    );

    // The minified bundle, run again, finds the server converged: no step changes, no drift.
    converged(&vm, INSTALLED).unwrap();

    // What it set up is what the config says.
    assert_eq!(vm.ssh_ok("hostname").trim(), "aws-minimal");
    assert_eq!(
        vm.ssh_ok("timedatectl show -p Timezone --value").trim(),
        "Europe/Berlin"
    );
    let locales = vm.ssh_ok("locale -a");
    for locale in ["en_US.utf8", "de_DE.utf8"] {
        assert!(locales.lines().any(|l| l == locale), "{locale}:\n{locales}");
    }
    assert_eq!(
        vm.ssh_ok("sudo -n getent shadow ops | cut -d: -f2").trim(),
        OPS_HASH
    );
    let groups = vm.ssh_ok("id -nG ops");
    assert!(groups.split_whitespace().any(|g| g == "adm"), "{groups}");
    let rules = vm.ssh_ok("sudo -n sudo -l -U ops");
    assert!(
        rules
            .lines()
            .any(|l| l.trim() == "(ALL : ALL) ALL" || l.trim() == "(ALL) ALL")
            && !rules.contains("NOPASSWD"),
        "ops needs a password for sudo:\n{rules}"
    );
    assert_eq!(vm.ssh_ok("cat /proc/sys/vm/swappiness").trim(), "20");
    assert!(vm.ssh_ok("cat /proc/swaps").contains("/swapfile"));
    let effective = vm.ssh_ok("sudo -n sshd -T -C user=admin,host=localhost,addr=127.0.0.1");
    for line in ["passwordauthentication no", "permitrootlogin no"] {
        assert!(effective.lines().any(|l| l == line), "{line}:\n{effective}");
    }

    // Drift is found and repaired by the minified bundle itself.
    vm.ssh_ok(&format!("sudo -n cp {INSTALLED} /tmp/setup.sh"));
    drift_and_repair(
        &vm,
        &[
            ("sudo -n sysctl -q -w vm.swappiness=60", "swap.swappiness"),
            ("sudo -n gpasswd -d ops adm", "user.ops.groups"),
            (
                "sudo -n sed -i 's/^MaxAuthTries .*/MaxAuthTries 6/' /etc/ssh/sshd_config.d/00-phanes.conf",
                "security.ssh-config",
            ),
            (
                "sudo -n ln -sfn /usr/share/zoneinfo/UTC /etc/localtime",
                "baseline.timezone",
            ),
        ],
    );

    // setup.sh, the readable bundle of the same config, wants exactly this state too.
    vm.scp_to(&out.join("setup.sh"), "/tmp/setup.sh");
    let run = run_bundle(&vm, BUNDLE, "");
    assert_eq!(run.exit, 0, "{}", run.raw);
    assert_eq!(
        run.with_status("changed"),
        BTreeSet::new(),
        "setup.sh finds what the AWS bundle did converged:\n{}",
        run.raw
    );
    println!(
        "[vm_aws] minimal on {}: user-data.yaml.gz {} bytes; case total {:.0?}",
        release.codename(),
        gz.len(),
        started.elapsed()
    );
    fs::remove_dir_all(out.parent().unwrap()).unwrap();
}

/// `--provider aws --bundle-url` with the web profile, which is over AWS's limit with the bundle
/// inside: the guest downloads setup.sh from the host (through QEMU's gateway), installs exactly
/// it and converges, Docker and Caddy running; the query string of a presigned URL is passed
/// through untouched and stays out of the log. Docker and Caddy come from Debian's archive
/// (`source: distro`): their vendor repositories are not reachable here.
fn aws_fetched(release: Release) {
    let started = Instant::now();
    let key = TestKey::generate();
    let served = common::temp_dir("aws-fetched-served");
    let server = HttpServer::serve(&served);
    let url = format!(
        "{}/web/setup.sh?X-Amz-Signature=presigned-secret",
        server.guest_url()
    );
    let config = base_config(&key.public_text, "aws-fetched")
        + "docker:\n  source: distro\ncaddy:\n  source: distro\n";
    let out = render_with(
        "web",
        &config,
        &[],
        &["--provider", "aws", "--bundle-url", &url],
    );
    let user_data = fs::read(out.join("user-data.yaml")).unwrap();
    assert!(user_data.len() <= AWS_LIMIT && !out.join("user-data.yaml.gz").exists());
    fs::create_dir_all(served.join("web")).unwrap();
    fs::copy(out.join("setup.sh"), served.join("web/setup.sh")).unwrap();

    let vm = boot_with(release, &out, "aws-fetched", &key, Vec::new());
    assert_eq!(
        installed_sha256(&vm),
        sha256(&out.join("setup.sh")),
        "{INSTALLED} is not the setup.sh the user-data pins"
    );
    assert_eq!(
        vm.ssh_ok(&format!("sudo -n stat -c '%a %U' {INSTALLED}"))
            .trim(),
        "700 root"
    );
    let log = vm.ssh_ok("sudo -n cat /var/log/cloud-init-output.log");
    assert!(
        !log.contains("presigned-secret") && !log.contains("cannot download"),
        "{log}"
    );
    converged(&vm, INSTALLED).unwrap();
    assert_eq!(vm.ssh_ok("hostname").trim(), "aws-fetched");
    assert_eq!(
        vm.ssh_ok("systemctl is-active docker caddy").trim(),
        "active\nactive"
    );
    drop(server);
    println!(
        "[vm_aws] fetched web on {}: user-data.yaml {} bytes; case total {:.0?}",
        release.codename(),
        user_data.len(),
        started.elapsed()
    );
    fs::remove_dir_all(out.parent().unwrap()).unwrap();
    fs::remove_dir_all(served).unwrap();
}

vm_case!(
    bookworm_fetched,
    "AWS user-data with --bundle-url",
    Bookworm,
    FullOnly,
    aws_fetched
);
vm_case!(
    trixie_fetched,
    "AWS user-data with --bundle-url",
    Trixie,
    FullOnly,
    aws_fetched
);
vm_case!(
    bookworm_minimal,
    "AWS user-data",
    Bookworm,
    FullOnly,
    aws_minimal
);
vm_case!(
    trixie_minimal,
    "AWS user-data",
    Trixie,
    FullOnly,
    aws_minimal
);
