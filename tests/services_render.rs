//! The service modules (docker, monitoring, nginx, caddy, postgres, redis) and the vendor
//! repository helper: bundles for several option combinations pass bash -n and shellcheck,
//! hostile or invalid values are rejected with their key path, and the pure bash helpers
//! (firewall rule generation, managed blocks, SQL quoting, config merging) give the right
//! answers. Nothing here runs a bundle: only helper blocks are sourced, and the vendor
//! repository helper writes into a temp dir.

mod common;

use common::render::{check_script, helpers, run_bash, shell_err, shell_ok};
use common::{lint, temp_dir};
use std::fs;
use std::path::Path;
use std::process::Command;

/// A config with a sudo user `deploy` (with a key) and `app`, then `rest`.
fn config_with(rest: &str) -> String {
    common::render::config_with(&format!("    - name: app\n{rest}"))
}

/// setup.sh of the minimal profile plus `modules`, with `config` and `sets`.
fn render_ok(modules: &[&str], config: &str, sets: &[&str]) -> String {
    shell_ok(Some("minimal"), modules, config, sets)
}

/// The error of rendering the minimal profile plus `modules`, with `config` and `sets`.
fn render_err(modules: &[&str], config: &str, sets: &[&str]) -> String {
    shell_err(Some("minimal"), modules, config, sets)
}

/// One render case: modules, config (after the users), --set values, texts the bundle has,
/// texts it must not have.
struct Case<'a> {
    name: &'a str,
    modules: &'a [&'a str],
    yaml: &'a str,
    sets: &'a [&'a str],
    has: &'a [&'a str],
    lacks: &'a [&'a str],
}

fn check_cases(cases: &[Case]) {
    for case in cases {
        let script = render_ok(case.modules, &config_with(case.yaml), case.sets);
        check_script(case.name, &script, case.has, case.lacks);
    }
}

/// An error case: modules, config (after the users), --set values, texts the error has.
type ErrorCase<'a> = (&'a [&'a str], &'a str, &'a [&'a str], &'a [&'a str]);

/// Renders `yaml` (after the users) and checks every wanted text is in the error.
fn check_errors(cases: &[ErrorCase]) {
    for (modules, yaml, sets, wanted) in cases {
        let err = render_err(modules, &config_with(yaml), sets);
        for want in *wanted {
            assert!(
                err.contains(want),
                "{yaml}{sets:?}: missing {want:?} in\n{err}"
            );
        }
    }
}

/// The runtime files a helper test needs, read from the templates.
fn runtime(files: &[&str]) -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates/runtime");
    files
        .iter()
        .map(|f| fs::read_to_string(dir.join(f)).unwrap())
        .collect::<Vec<_>>()
        .join("\n")
}

// ---------------------------------------------------------------- docker

#[test]
fn docker_renders_for_each_source_and_option() {
    check_cases(&[
        Case {
            name: "docker-vendor",
            modules: &["docker"],
            yaml: "",
            sets: &[],
            has: &[
                "phanes_step docker.conflicts",
                "phanes_step docker.repository",
                "DOCKER_REPO_KEY_FPR='9DC858229FC7DD38854AE2D88D81803C0EBFCD88'",
                "DOCKER_ENGINE_PACKAGES=(docker-ce docker-ce-cli containerd.io docker-buildx-plugin docker-compose-plugin)",
                "\"max-size\": \"10m\"",
                "\"max-file\": \"3\"",
                "DOCKER_UFW_INTEGRATION=true",
                "'Packages installed: ca-certificates, curl, gpg'",
            ],
            lacks: &["phanes_step docker.compose", "phanes_step docker.group"],
        },
        Case {
            name: "docker-distro",
            modules: &["docker"],
            yaml: "docker:\n  source: distro\n  users: [deploy, app]\n  ufw_integration: false\n",
            sets: &[],
            has: &[
                "phanes_step docker.compose",
                "docker-compose-v2 docker-compose",
                "'Packages installed: docker.io'",
                "DOCKER_USERS=('deploy' 'app')",
                "'In group docker: deploy, app'",
                "DOCKER_UFW_INTEGRATION=false",
            ],
            lacks: &[
                "phanes_step docker.repository",
                "DOCKER_REPO_URL",
                "docker.conflicts",
            ],
        },
        Case {
            name: "docker-mirror-daemon",
            modules: &["docker"],
            yaml: "docker:\n  repository:\n    url: http://10.0.2.2:8080/docker\n    key_url: http://10.0.2.2:8080/key.asc\n    key_fingerprint: null\n  log_max_size: 50m\n  log_max_file: 5\n  daemon:\n    live-restore: true\n    dns: [1.1.1.1, 9.9.9.9]\n    default-address-pools:\n      - {base: 10.201.0.0/16, size: 24}\n  allow_published: [80/tcp, 443]\n",
            sets: &[],
            has: &[
                "DOCKER_REPO_URL='http://10.0.2.2:8080/docker'",
                "DOCKER_REPO_KEY_URL='http://10.0.2.2:8080/key.asc'",
                "DOCKER_REPO_KEY_FPR=''",
                "  \"default-address-pools\": [{\"base\": \"10.201.0.0/16\", \"size\": 24}],\n  \"dns\": [\"1.1.1.1\", \"9.9.9.9\"],\n  \"live-restore\": true\n}\n'",
                "\"max-size\": \"50m\"",
                "DOCKER_UFW_ALLOW=('80/tcp' '443')",
            ],
            lacks: &[],
        },
    ]);
}

#[test]
fn docker_rejects_hostile_and_invalid_values() {
    check_errors(&[
        (
            &["docker"],
            "docker:\n  users: [ghost]\n",
            &[],
            &["docker.users[0]: ghost is not in user.users"],
        ),
        (
            &["docker"],
            "docker:\n  daemon:\n    iptables: false\n",
            &[],
            &["docker.daemon.iptables: daemon.json key iptables cannot be set"],
        ),
        (
            &["docker"],
            "docker:\n  daemon:\n    log-driver: local\n",
            &[],
            &["docker.daemon.log-driver"],
        ),
        (
            &["docker"],
            "docker:\n  daemon:\n    data-root: \"/srv/$(reboot)\"\n",
            &[],
            &["docker.daemon", "may hold only letters"],
        ),
        (
            &["docker"],
            "docker:\n  daemon:\n    Bad_Key: 1\n",
            &[],
            &["docker.daemon.Bad_Key: invalid value \"Bad_Key\": expected a daemon.json key"],
        ),
        (
            &[],
            "",
            &["docker.log_max_size=10M;id"],
            &["docker.log_max_size: invalid value"],
        ),
        (
            &[],
            "",
            &["docker.repository.url=https://x.example/$(id)"],
            &["docker.repository.url: invalid value"],
        ),
        (
            &[],
            "",
            &["docker.repository.key_fingerprint=ABCD"],
            &["docker.repository.key_fingerprint: invalid key fingerprint"],
        ),
        (
            &[],
            "",
            &["docker.allow_published=[80/icmp]"],
            &["docker.allow_published"],
        ),
        (&[], "", &["docker.source=snap"], &["docker.source"]),
    ]);
}

#[test]
fn docker_ufw_block_filters_published_ports_and_merges_into_after_rules() {
    let script = render_ok(
        &["docker"],
        &config_with("docker:\n  allow_published: [80/tcp, 443, \"6000:6007/udp\"]\n"),
        &[],
    );
    let code = format!(
        "{}\n{}",
        runtime(&["45-blocks.sh"]),
        helpers(&script, "docker")
    );
    let dir = temp_dir("docker-ufw");
    let after = "# ufw after.rules\n*filter\n:ufw-after-input - [0:0]\nCOMMIT\n";
    fs::write(dir.join("after.rules"), after).unwrap();
    let out = run_bash(
        &code,
        &format!(
            "docker_ufw_block\n\
             echo '[merged]'\n\
             once=$(docker_after_rules_wanted \"$(<{d}/after.rules)\"; echo x); once=${{once%x}}\n\
             twice=$(docker_after_rules_wanted \"$once\"; echo x); twice=${{twice%x}}\n\
             [[ $once == \"$twice\" ]] && echo idempotent\n\
             grep -c '^# BEGIN phanes docker$' <<<\"$once\"\n\
             head -n4 <<<\"$once\"\n\
             echo '[off]'\n\
             DOCKER_UFW_INTEGRATION=false\n\
             off=$(docker_after_rules_wanted \"$once\"; echo x); off=${{off%x}}\n\
             grep -c 'DOCKER-USER' <<<\"$off\" || true\n",
            d = dir.display()
        ),
        &dir,
    );
    assert_eq!(
        out,
        "*filter\n\
         :ufw-user-forward - [0:0]\n\
         :ufw-docker-logging-deny - [0:0]\n\
         :DOCKER-USER - [0:0]\n\
         -A DOCKER-USER -j ufw-user-forward\n\
         -A DOCKER-USER -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN\n\
         -A DOCKER-USER -s 10.0.0.0/8 -j RETURN\n\
         -A DOCKER-USER -s 172.16.0.0/12 -j RETURN\n\
         -A DOCKER-USER -s 192.168.0.0/16 -j RETURN\n\
         -A DOCKER-USER -p tcp -m tcp --dport 80 -j RETURN\n\
         -A DOCKER-USER -p tcp -m tcp --dport 443 -j RETURN\n\
         -A DOCKER-USER -p udp -m udp --dport 443 -j RETURN\n\
         -A DOCKER-USER -p udp -m udp --dport 6000:6007 -j RETURN\n\
         -A DOCKER-USER -d 10.0.0.0/8 -j ufw-docker-logging-deny\n\
         -A DOCKER-USER -d 172.16.0.0/12 -j ufw-docker-logging-deny\n\
         -A DOCKER-USER -d 192.168.0.0/16 -j ufw-docker-logging-deny\n\
         -A DOCKER-USER -j RETURN\n\
         -A ufw-docker-logging-deny -m limit --limit 3/min --limit-burst 10 -j LOG --log-prefix \"[UFW DOCKER BLOCK] \"\n\
         -A ufw-docker-logging-deny -j DROP\n\
         COMMIT\n\
         [merged]\nidempotent\n1\n\
         # ufw after.rules\n*filter\n:ufw-after-input - [0:0]\nCOMMIT\n\
         [off]\n0\n"
    );
    // Where iptables-restore can parse rules here, the merged file is what ufw would load.
    let parses = Command::new("iptables-restore")
        .args(["--test", "--noflush", "/dev/null"])
        .output()
        .is_ok_and(|o| o.status.success());
    if parses {
        let merged = run_bash(
            &code,
            &format!(
                "docker_after_rules_wanted \"$(<{}/after.rules)\"",
                dir.display()
            ),
            &dir,
        );
        fs::write(dir.join("merged.rules"), merged).unwrap();
        let out = Command::new("iptables-restore")
            .args(["--test", "--noflush"])
            .arg(dir.join("merged.rules"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    fs::remove_dir_all(dir).unwrap();
}

// ---------------------------------------------------------------- vendor repositories

/// The vendor repository helper against keys made here with gpg, fetched from file:// URLs into
/// a temp dir: deb822 source, armored key, fingerprint pinning, a binary key armored, a wrong
/// key refused without changing anything, and a new key URL noticed by the check.
#[test]
fn vendor_repository_helper_sets_up_key_and_source_and_refuses_a_wrong_key() {
    assert!(
        Command::new("gpg").arg("--version").output().is_ok(),
        "gpg is needed to make test keys: apt-get install gpg"
    );
    let dir = temp_dir("vendor-repo");
    let d = dir.display();
    let code = runtime(&[
        "10-core.sh",
        "40-files.sh",
        "45-blocks.sh",
        "50-apt.sh",
        "55-vendor-repo.sh",
    ]);
    // Two throwaway signing keys, exported armored and binary.
    let keys = run_bash(
        "",
        &format!(
            "export GNUPGHOME={d}/gnupg; mkdir -m 0700 $GNUPGHOME\n\
             for k in good other; do\n\
               gpg --batch --quiet --passphrase '' --quick-gen-key \"$k <$k@example.com>\" ed25519 sign never 2>/dev/null\n\
               gpg --batch --armor --export \"$k@example.com\" >{d}/$k.asc\n\
               gpg --batch --export \"$k@example.com\" >{d}/$k.bin\n\
               gpg --batch --with-colons --fingerprint \"$k@example.com\" | awk -F: '$1 == \"fpr\" {{ print $10; exit }}'\n\
             done\n\
             gpgconf --kill all 2>/dev/null || true\n"
        ),
        &dir,
    );
    let fprs: Vec<&str> = keys.lines().collect();
    assert_eq!(fprs.len(), 2, "{keys}");
    let (good, other) = (fprs[0], fprs[1]);
    let owner = if run_bash("", "id -u", &dir).trim() == "0" {
        "root:root"
    } else {
        ""
    };
    let env = format!(
        "PHANES_APT_KEYRINGS_DIR={d}/keyrings PHANES_APT_SOURCES_DIR={d}/sources PHANES_ARCH=amd64\n\
         PHANES_RUN_DIR={d}/run; mkdir -p $PHANES_RUN_DIR {d}/sources; : >$PHANES_RUN_DIR/apt-updated\n\
         repo() {{ phanes_vendor_repo_\"$1\" acme https://repo.example.com/debian bookworm stable \"$2\" \"$3\" 2>/dev/null; }}\n"
    );
    // The source text, whatever the owner.
    let out = run_bash(
        &code,
        &format!(
            "{env}phanes_vendor_sources acme https://repo.example.com/debian bookworm stable arm64 https://repo.example.com/key.asc {good}\n\
             phanes_vendor_sources flat https://repo.example.com/flat/ 'bookworm/' '' amd64 https://repo.example.com/key.asc ''\n\
             phanes_vendor_key_fingerprints {d}/good.asc\n\
             phanes_vendor_key_fingerprints {d}/good.bin\n\
             phanes_vendor_key_fingerprints {d}/run || echo not-a-key\n"
        ),
        &dir,
    );
    let k = dir.join("keyrings").display().to_string();
    assert_eq!(
        out,
        format!(
            "# Managed by phanes: edits here are replaced on the next run.\n\
             # Signing key: https://repo.example.com/key.asc (fingerprint {good})\n\
             Types: deb\nURIs: https://repo.example.com/debian\nSuites: bookworm\nComponents: stable\n\
             Architectures: arm64\nSigned-By: {k}/acme.asc\n\
             # Managed by phanes: edits here are replaced on the next run.\n\
             # Signing key: https://repo.example.com/key.asc (fingerprint not pinned)\n\
             Types: deb\nURIs: https://repo.example.com/flat/\nSuites: bookworm/\n\
             Architectures: amd64\nSigned-By: {k}/flat.asc\n\
             {good}\n{good}\nnot-a-key\n"
        )
    );
    if owner.is_empty() {
        eprintln!("skipped the apply half: files are written root:root, and this is not root");
        fs::remove_dir_all(dir).unwrap();
        return;
    }
    let out = run_bash(
        &code,
        &format!(
            "{env}set +e\n\
             echo legacy >{d}/sources/acme.list\n\
             repo check file://{d}/good.asc {good} || echo check-fails-first\n\
             repo apply file://{d}/other.asc {good}; echo \"wrong key: $?\"\n\
             phanes_vendor_repo_apply acme https://repo.example.com/debian bookworm stable file://{d}/other.asc {good} 2>&1 >/dev/null | grep -c 'the key from file://.*/other.asc has fingerprint {other}, not {good}: the acme repository was not set up'\n\
             ls {d}/keyrings {d}/sources | grep -c acme\n\
             repo apply file://{d}/good.bin {good}; echo \"binary key: $?\"\n\
             head -n1 {d}/keyrings/acme.asc\n\
             [[ -e {d}/sources/acme.list ]] || echo legacy-list-removed\n\
             [[ -e $PHANES_RUN_DIR/apt-updated ]] || echo apt-update-due\n\
             repo check file://{d}/good.bin {good} && echo converged\n\
             repo check file://{d}/good.asc {good} || echo new-key-url-noticed\n\
             repo check file://{d}/good.bin {other} || echo other-fingerprint-noticed\n\
             repo apply file://{d}/nothing-here.asc ''; echo \"no key: $?\"\n\
             repo apply file://{d}/other.asc ''; repo check file://{d}/other.asc '' && echo unpinned-ok\n\
             stat -c '%a' {d}/keyrings/acme.asc {d}/sources/acme.sources\n"
        ),
        &dir,
    );
    assert_eq!(
        out,
        "check-fails-first\nwrong key: 1\n1\n1\nbinary key: 0\n-----BEGIN PGP PUBLIC KEY BLOCK-----\n\
         legacy-list-removed\napt-update-due\nconverged\nnew-key-url-noticed\nother-fingerprint-noticed\n\
         no key: 1\nunpinned-ok\n644\n644\n",
        "after a wrong key only the legacy list is there (1 entry named acme)"
    );
    fs::remove_dir_all(dir).unwrap();
}

// ---------------------------------------------------------------- nginx and caddy

const SITES: &str = "  sites:\n    - domains: [example.com, www.example.com]\n      root: /var/www/example\n    - domains: [\"*.app.example.com\"]\n      proxy: 8080\n";

#[test]
fn web_servers_render_sites_and_open_their_ports() {
    let nginx = format!("nginx:\n{SITES}");
    let caddy = format!("caddy:\n  email: admin@example.com\n{SITES}");
    let both =
        format!("{nginx}caddy:\n  http_port: 8081\n  https_port: 8443\n  tls: internal\n{SITES}");
    check_cases(&[
        Case {
            name: "nginx",
            modules: &["nginx"],
            yaml: &nginx,
            sets: &[],
            has: &[
                "NGINX_FILES['sites-available/phanes-example.com.conf']=",
                "    server_name example.com www.example.com;\n    root /var/www/example;\n",
                "NGINX_FILES['sites-available/phanes-_.app.example.com.conf']=",
                "        proxy_pass http://127.0.0.1:8080;\n",
                "NGINX_FILES['conf.d/phanes-websocket.conf']=",
                "NGINX_ROOTS=('/var/www/example')",
                "SECURITY_FW_RULES=('80/tcp' '443/tcp')",
                "'UFW allows 80/tcp, 443/tcp'",
            ],
            lacks: &["caddy"],
        },
        Case {
            name: "nginx-no-sites",
            modules: &["nginx"],
            yaml: "nginx:\n  remove_default_site: false\n",
            sets: &[],
            has: &[
                "declare -A NGINX_FILES=()\n",
                "NGINX_REMOVE_DEFAULT=false",
                "'nginx has no phanes sites (nginx -t",
            ],
            lacks: &["phanes-websocket", "\nNGINX_FILES["],
        },
        Case {
            name: "caddy",
            modules: &["caddy"],
            yaml: &caddy,
            sets: &[],
            has: &[
                "\temail admin@example.com\n",
                "example.com, www.example.com {\n\troot * /var/www/example\n\tfile_server\n}\n",
                "*.app.example.com {\n\treverse_proxy 127.0.0.1:8080\n}\n",
                "CADDY_REPO_KEY_FPR='65760C51EDEA2017CEA2CA15155B6D79CA56EA34'",
                "SECURITY_FW_RULES=('80/tcp' '443/tcp' '443/udp')",
                "phanes_step caddy.repository",
            ],
            lacks: &["\ttls internal"],
        },
        Case {
            name: "caddy-distro-http",
            modules: &["caddy"],
            yaml: &caddy,
            sets: &["caddy.source=distro", "caddy.tls=off"],
            has: &[
                "http://example.com, http://www.example.com {",
                "'Packages installed: caddy'",
                "SECURITY_FW_RULES=('80/tcp')",
            ],
            lacks: &["phanes_step caddy.repository", "CADDY_REPO_URL"],
        },
        Case {
            name: "nginx-and-caddy-apart",
            modules: &["nginx", "caddy"],
            yaml: &both,
            sets: &["security.firewall.allow=[80/tcp, 9000/tcp]"],
            has: &[
                "\thttp_port 8081\n\thttps_port 8443\n",
                "\ttls internal\n",
                "SECURITY_FW_RULES=('80/tcp' '9000/tcp' '443/tcp' '8081/tcp' '8443/tcp' '8443/udp')",
            ],
            lacks: &[],
        },
        Case {
            name: "web-firewall-off",
            modules: &["nginx"],
            yaml: &nginx,
            sets: &["security.firewall.enabled=false"],
            has: &["nginx.sites"],
            lacks: &["security.firewall-rules"],
        },
    ]);
}

#[test]
fn web_servers_reject_bad_sites_and_port_clashes() {
    check_errors(&[
        (
            &["nginx"],
            "nginx:\n  sites:\n    - domains: [a.example.com]\n      root: /var/www/a\n      proxy: 8080\n",
            &[],
            &[
                "nginx.sites[0]: a site has either root (static files) or proxy (a local port), not both",
            ],
        ),
        (
            &["nginx"],
            "nginx:\n  sites:\n    - domains: []\n",
            &[],
            &[
                "nginx.sites[0]: a site needs root",
                "nginx.sites[0].domains: a site needs at least one domain",
            ],
        ),
        (
            &["caddy"],
            "caddy:\n  sites:\n    - domains: [a.example.com]\n      proxy: 1\n    - domains: [b.example.com, A.example.com]\n      proxy: 2\n",
            &[],
            &[
                "caddy.sites[1].domains[1]: domain A.example.com is already served by caddy.sites[0]",
            ],
        ),
        (
            &["caddy"],
            "caddy:\n  sites:\n    - domains: [\"$(reboot).example.com\"]\n      proxy: 1\n",
            &[],
            &["caddy.sites[0].domains: invalid value \"$(reboot).example.com\""],
        ),
        (
            &["caddy"],
            "caddy:\n  sites:\n    - domains: [\"a.com {\\n}\\nevil.com\"]\n      proxy: 1\n",
            &[],
            &["caddy.sites[0].domains: invalid value"],
        ),
        (
            &["nginx"],
            "nginx:\n  sites:\n    - domains: [a.com]\n      root: \"/var/www/a; include /etc/shadow\"\n",
            &[],
            &["nginx.sites[0].root: invalid value"],
        ),
        (
            &["nginx"],
            "nginx:\n  sites:\n    - domains: [a.com]\n      proxy: 70000\n",
            &[],
            &["nginx.sites[0].proxy: 70000 is out of range"],
        ),
        (
            &["caddy"],
            "caddy:\n  email: \"x@y.com\\n\\tadmin off\"\n",
            &[],
            &["caddy.email: invalid value"],
        ),
        (&["caddy"], "", &["caddy.tls=maybe"], &["caddy.tls"]),
        (
            &["nginx", "caddy"],
            "",
            &[],
            &[
                "modules \"nginx\" and \"caddy\" both listen on 80/tcp: set nginx.http_port or caddy.http_port to another port",
            ],
        ),
        (
            &["nginx"],
            "",
            &["nginx.http_port=22"],
            &["nginx.http_port (22/tcp) is the SSH port"],
        ),
        (
            &["nginx"],
            "",
            &["nginx.https_port=80"],
            &["nginx.https_port: http_port and https_port must differ"],
        ),
    ]);
}

/// nginx's drift list against a fixture /etc/nginx: content, links, stale phanes sites, the
/// default site and missing roots are all seen; the hand-made site is left alone.
#[test]
fn nginx_drift_sees_every_managed_file() {
    let dir = temp_dir("nginx-drift");
    if run_bash("", "id -u", &dir).trim() != "0" {
        eprintln!("skipped: the managed files are compared as root:root");
        return;
    }
    let script = render_ok(&["nginx"], &config_with(&format!("nginx:\n{SITES}")), &[]);
    let code = format!(
        "{}\n{}",
        runtime(&["10-core.sh", "40-files.sh"]),
        helpers(&script, "nginx")
    );
    let d = dir.display();
    let out = run_bash(
        &code,
        &format!(
            "NGINX_DIR={d}/nginx; NGINX_ROOTS=({d}/www)\n\
             mkdir -p $NGINX_DIR/sites-available $NGINX_DIR/sites-enabled $NGINX_DIR/conf.d\n\
             ln -s ../sites-available/default $NGINX_DIR/sites-enabled/default\n\
             echo mine >$NGINX_DIR/sites-available/handmade.conf\n\
             echo old >$NGINX_DIR/sites-available/phanes-old.example.com.conf\n\
             ln -s ../sites-available/phanes-old.example.com.conf $NGINX_DIR/sites-enabled/phanes-old.example.com.conf\n\
             nginx_drift | sort\n\
             echo '[converged]'\n\
             for rel in \"${{!NGINX_FILES[@]}}\"; do printf '%s' \"${{NGINX_FILES[$rel]}}\" >$NGINX_DIR/$rel\n\
               [[ $rel != sites-available/* ]] || ln -s ../$rel $NGINX_DIR/sites-enabled/${{rel#sites-available/}}; done\n\
             rm $NGINX_DIR/sites-enabled/default $NGINX_DIR/*/phanes-old.example.com.conf; mkdir {d}/www\n\
             nginx_drift\n"
        ),
        &dir,
    );
    assert_eq!(
        out.replace(&d.to_string(), "D"),
        "content conf.d/phanes-websocket.conf\n\
         content sites-available/phanes-_.app.example.com.conf\n\
         content sites-available/phanes-example.com.conf\n\
         default site enabled\n\
         link phanes-_.app.example.com.conf\n\
         link phanes-example.com.conf\n\
         missing root D/www\n\
         stale sites-available/phanes-old.example.com.conf\n\
         stale sites-enabled/phanes-old.example.com.conf\n\
         [converged]\n"
    );
    fs::remove_dir_all(dir).unwrap();
}

// ---------------------------------------------------------------- postgres

const PG: &str = "postgres:\n  version: 17\n  listen_addresses: [localhost, 10.0.0.5]\n  hba:\n    - {database: app, user: app, address: 10.0.0.0/8}\n    - {database: all, user: all, address: \"2001:db8::1\"}\n  roles:\n    - name: app\n    - name: report_ro\n      password: correct-horse-battery\n  databases:\n    - {name: app, owner: app}\n";

#[test]
fn postgres_renders_roles_databases_and_rules() {
    check_cases(&[
        Case {
            name: "postgres-vendor",
            modules: &["postgres"],
            yaml: PG,
            sets: &[],
            has: &[
                "POSTGRES_SERVER_PACKAGE='postgresql-17'",
                "listen_addresses = '\\''localhost,10.0.0.5'\\''\n",
                "password_encryption = '\\''scram-sha-256'\\''",
                "host    app    app    10.0.0.0/8    scram-sha-256\nhost    all    all    2001:db8::1/128    scram-sha-256\n",
                "\"$PHANES_OS_CODENAME-pgdg\" main",
                "'https://www.postgresql.org/media/keys/ACCC4CF8.asc' 'B97B0AFCAA1A47F044F244A07FCC7D46ACCC4CF8'",
                "postgres_role_app__check() { postgres_role_check 'app' ''; }",
                "postgres_role_report_ro__apply() { postgres_role_apply 'report_ro' 'correct-horse-battery'; }",
                "phanes_step postgres.database_app 'Database app exists, owned by app'",
            ],
            lacks: &[],
        },
        Case {
            name: "postgres-distro-defaults",
            modules: &["postgres"],
            yaml: "",
            sets: &["postgres.source=distro"],
            has: &[
                "'Packages installed: postgresql, postgresql-common'",
                "POSTGRES_VERSION=''",
                "listen_addresses = '\\''localhost'\\''",
                "'pg_hba.conf has no phanes rules",
            ],
            lacks: &[
                "postgres.repository",
                "postgres.role_",
                "postgres_database_check",
            ],
        },
        Case {
            name: "postgres-distro-version",
            modules: &["postgres"],
            yaml: "",
            sets: &[
                "postgres.source=distro",
                "postgres.version=15",
                "postgres.port=5433",
            ],
            has: &[
                "'Packages installed: postgresql-15, postgresql-common'",
                "port = 5433\n",
            ],
            lacks: &[],
        },
    ]);
}

#[test]
fn postgres_rejects_names_and_passwords_that_could_escape() {
    check_errors(&[
        (
            &["postgres"],
            "postgres:\n  roles:\n    - name: \"app\\\"; DROP TABLE x; --\"\n",
            &[],
            &["postgres.roles[0].name: invalid value"],
        ),
        (
            &["postgres"],
            "postgres:\n  roles:\n    - name: Admin\n",
            &[],
            &["postgres.roles[0].name: invalid value \"Admin\""],
        ),
        (
            &["postgres"],
            "postgres:\n  roles:\n    - name: postgres\n",
            &[],
            &["postgres.roles[0].name: invalid value \"postgres\""],
        ),
        (
            &["postgres"],
            "postgres:\n  roles:\n    - name: app\n      password: \"it's-a-long-password\"\n",
            &[],
            &["postgres.roles[0].password: invalid value"],
        ),
        (
            &["postgres"],
            "postgres:\n  roles:\n    - name: app\n      password: short\n",
            &[],
            &["postgres.roles[0].password"],
        ),
        (
            &["postgres"],
            "postgres:\n  databases:\n    - {name: app, owner: ghost}\n",
            &[],
            &["postgres.databases[0].owner: owner ghost is not in postgres.roles"],
        ),
        (
            &["postgres"],
            "postgres:\n  hba:\n    - {database: all, user: all, address: \"0.0.0.0/0 trust\"}\n",
            &[],
            &["postgres.hba[0].address: invalid value"],
        ),
        (
            &["postgres"],
            "postgres:\n  hba:\n    - {database: \"all,replication\", user: all, address: 10.0.0.0/8}\n",
            &[],
            &["postgres.hba[0].database: invalid value"],
        ),
        (
            &["postgres"],
            "",
            &["postgres.listen_addresses=[\"localhost'; ssl = off; '\"]"],
            &["postgres.listen_addresses"],
        ),
        (
            &["postgres"],
            "",
            &["postgres.listen_addresses=[]"],
            &["postgres.listen_addresses: listen_addresses is empty"],
        ),
        (
            &["postgres"],
            "",
            &["postgres.version=9"],
            &["postgres.version: 9 is out of range"],
        ),
        (
            &["postgres"],
            "postgres:\n  roles:\n    - name: app\n    - name: app\n",
            &[],
            &["postgres.roles[1].name: role app is listed twice"],
        ),
    ]);
}

/// SQL quoting: whatever a name or password holds, it stays one identifier or one literal.
#[test]
fn postgres_sql_quoting_keeps_values_inert() {
    let script = render_ok(&["postgres"], &config_with(PG), &[]);
    let dir = temp_dir("postgres-sql");
    // A verifier built the way PostgreSQL builds one (RFC 7677: salt, 4096 iterations,
    // StoredKey:ServerKey); the VM test checks the real server's.
    let make_verifier = "import base64, hashlib, hmac, sys
pw = sys.stdin.buffer.read().rstrip(b'\\n')
salt = b'0123456789abcdef'
salted = hashlib.pbkdf2_hmac('sha256', pw, salt, 4096)
client = hmac.new(salted, b'Client Key', hashlib.sha256).digest()
server = hmac.new(salted, b'Server Key', hashlib.sha256).digest()
b = lambda x: base64.b64encode(x).decode()
print('SCRAM-SHA-256$4096:%s$%s:%s' % (b(salt), b(hashlib.sha256(client).digest()), b(server)))";
    let out = run_bash(
        &helpers(&script, "postgres"),
        &format!(
            "SCRAM_VERIFIER={}\n{}",
            phanes::render::quote(make_verifier),
            "postgres_ident 'app'; echo\n\
         postgres_ident 'a\"b'; echo\n\
         postgres_literal \"it's\"; echo\n\
         postgres_literal \"x'; DROP ROLE postgres; --\"; echo\n\
         postgres_literal 'back\\slash'; echo\n\
         postgres_role_sql app \"p'w\" ''\n\
         postgres_role_sql app pw 1\n\
         v=$(python3 -c \"$SCRAM_VERIFIER\" <<<'s3cr\\et pw')\n\
         printf '%s\\n%s' \"$v\" 's3cr\\et pw' | postgres_scram_matches && echo right-matches\n\
         printf '%s\\n%s' \"$v\" 's3cr\\et pv' | postgres_scram_matches || echo wrong-refused\n\
         printf '%s\\n%s' \"md5abc\" 's3cr\\et pw' | postgres_scram_matches || echo md5-refused\n\
         printf '%s\\n%s' 'SCRAM-SHA-256$x' 'pw' | postgres_scram_matches || echo garbage-refused\n"
        ),
        &dir,
    );
    assert_eq!(
        out,
        "\"app\"\n\"a\"\"b\"\n'it''s'\n'x''; DROP ROLE postgres; --'\n'back\\slash'\n\
         CREATE ROLE \"app\" WITH LOGIN PASSWORD 'p''w';\n\
         ALTER ROLE \"app\" WITH LOGIN PASSWORD 'pw';\n\
         right-matches\nwrong-refused\nmd5-refused\ngarbage-refused\n"
    );
    fs::remove_dir_all(dir).unwrap();
}

// ---------------------------------------------------------------- redis

#[test]
fn redis_renders_and_rejects_bad_values() {
    check_cases(&[
        Case {
            name: "redis-defaults",
            modules: &["redis"],
            yaml: "",
            sets: &[],
            has: &[
                "bind 127.0.0.1 -::1\nport 6379\nprotected-mode yes\nmaxmemory 0\nmaxmemory-policy noeviction\n",
                "REDIS_PASSWORD_CONFIGURED=''",
                "REDISCLI_AUTH=$(redis_password) redis-cli",
                "generated, in /etc/phanes/secrets/redis-password",
            ],
            lacks: &["redis-cli -a", "\nrequirepass "],
        },
        Case {
            name: "redis-options",
            modules: &["redis"],
            yaml: "redis:\n  bind: [10.0.0.5]\n  port: 6380\n  password: correct-horse-battery\n  maxmemory: 256M\n  maxmemory_policy: allkeys-lru\n",
            sets: &[],
            has: &[
                "bind 10.0.0.5\nport 6380\n",
                "maxmemory 268435456\nmaxmemory-policy allkeys-lru\n",
                "REDIS_HOST='10.0.0.5'",
                "REDIS_PASSWORD_CONFIGURED='correct-horse-battery'",
            ],
            lacks: &[],
        },
    ]);
    check_errors(&[
        (
            &["redis"],
            "redis:\n  password: \"pass word with spaces\"\n",
            &[],
            &["redis.password: invalid value"],
        ),
        (
            &["redis"],
            "redis:\n  bind: [\"127.0.0.1\\nrename-command CONFIG x\"]\n",
            &[],
            &["redis.bind: invalid value"],
        ),
        (
            &["redis"],
            "",
            &["redis.bind=[]"],
            &["redis.bind: bind is empty"],
        ),
        (
            &["redis"],
            "",
            &["redis.maxmemory_policy=lru"],
            &["redis.maxmemory_policy"],
        ),
        (
            &["redis"],
            "",
            &["redis.maxmemory=1K"],
            &["redis.maxmemory: maxmemory 1K is below 1M"],
        ),
    ]);
}

/// The include goes last, exactly once, whatever redis.conf looked like.
#[test]
fn redis_include_is_the_last_line() {
    let script = render_ok(&["redis"], &config_with(""), &[]);
    let dir = temp_dir("redis-include");
    let out = run_bash(
        &helpers(&script, "redis"),
        "conf=$'bind 127.0.0.1 -::1\\ninclude /etc/redis/phanes.conf\\nmaxmemory 1gb\\n\\n'\n\
         once=$(redis_main_wanted \"$conf\"; echo x); once=${once%x}\n\
         twice=$(redis_main_wanted \"$once\"; echo x); twice=${twice%x}\n\
         printf '%s' \"$once\"\n\
         [[ $once == \"$twice\" ]] && echo idempotent\n",
        &dir,
    );
    assert_eq!(
        out,
        "bind 127.0.0.1 -::1\nmaxmemory 1gb\n\
         # phanes: keep this include last (Redis keeps the last value of a directive)\n\
         include /etc/redis/phanes.conf\nidempotent\n"
    );
    fs::remove_dir_all(dir).unwrap();
}

// ---------------------------------------------------------------- monitoring

#[test]
fn monitoring_renders_and_rejects_bad_values() {
    check_cases(&[
        Case {
            name: "monitoring-vendor",
            modules: &["monitoring"],
            yaml: "",
            sets: &[],
            has: &[
                "url=\"https://repo.netdata.cloud/repos/stable/$PHANES_OS_ID/\"",
                "NETDATA_REPO_ARGS=(netdata \"$url\" \"$PHANES_OS_CODENAME/\" ''",
                "'https://repo.netdata.cloud/netdatabot.gpg.key' '6588FDD7B14721FE7C3115E6F9177B5265F56346'",
                "NETDATA_BIND='127.0.0.1 ::1'",
                "NETDATA_PORT=19999",
            ],
            lacks: &["monitoring.claim", "kickstart"],
        },
        Case {
            name: "monitoring-distro-claim",
            modules: &["monitoring"],
            yaml: "monitoring:\n  source: distro\n  bind: [0.0.0.0]\n  port: 29999\n  claim:\n    enabled: true\n    token_file: /root/netdata-token\n    rooms: [3f1c2a9e-1b2c-4d5e-8f90-123456789abc]\n",
            sets: &[],
            has: &[
                "'Packages installed: netdata'",
                "NETDATA_CLAIM_TOKEN_FILE='/root/netdata-token'",
                "printf '\\trooms = %s\\n' '3f1c2a9e-1b2c-4d5e-8f90-123456789abc'",
                "NETDATA_BIND='0.0.0.0'",
            ],
            lacks: &["monitoring.repository", "--claim-token"],
        },
    ]);
    check_errors(&[
        (
            &["monitoring"],
            "",
            &["monitoring.bind=[\"127.0.0.1\\n[web]\"]"],
            &["monitoring.bind: invalid value"],
        ),
        (
            &["monitoring"],
            "",
            &["monitoring.bind=[]"],
            &["monitoring.bind: bind is empty"],
        ),
        (
            &["monitoring"],
            "monitoring:\n  claim:\n    rooms: [\"a,b\"]\n",
            &[],
            &["monitoring.claim.rooms: invalid value"],
        ),
        (
            &["monitoring"],
            "monitoring:\n  claim:\n    token_file: relative/token\n",
            &[],
            &["monitoring.claim.token_file: invalid value"],
        ),
        (
            &["monitoring"],
            "monitoring:\n  source: distro\n  repository:\n    url: https://mirror.example.com/netdata/\n",
            &[],
            &["monitoring.repository: monitoring.repository is only used with source: vendor"],
        ),
    ]);
}

/// netdata.conf keeps what it has; [web] gets the bind and port, Debian's older option goes;
/// listeners are judged from `ss -Htln` lines.
#[test]
fn monitoring_sets_netdata_conf_keys_and_checks_listeners() {
    let script = render_ok(&["monitoring"], &config_with(""), &[]);
    let dir = temp_dir("netdata-conf");
    let debian = "# netdata configuration\n[global]\n\trun as user = netdata\n\tbind socket to IP = 127.0.0.1\n\n[web]\n\t# bind to = *\n\tweb files owner = root\n";
    fs::write(dir.join("netdata.conf"), debian).unwrap();
    fs::write(
        dir.join("ss-local"),
        "LISTEN 0 4096 127.0.0.1:19999 0.0.0.0:*\nLISTEN 0 4096 [::1]:19999 [::]:*\nLISTEN 0 128 0.0.0.0:22 0.0.0.0:*\n",
    )
    .unwrap();
    fs::write(dir.join("ss-public"), "LISTEN 0 4096 *:19999 *:*\n").unwrap();
    // Netdata 1.37 given a bare ::1 listens on 127.0.0.1 alone: a missing address fails too.
    fs::write(
        dir.join("ss-partial"),
        "LISTEN 0 4096 127.0.0.1:19999 0.0.0.0:*\n",
    )
    .unwrap();
    let out = run_bash(
        &helpers(&script, "monitoring"),
        &format!(
            "once=$(netdata_conf_wanted \"$(<{d}/netdata.conf)\"; echo x); once=${{once%x}}\n\
             twice=$(netdata_conf_wanted \"$once\"; echo x); twice=${{twice%x}}\n\
             printf '%s' \"$once\"\n\
             [[ $once == \"$twice\" ]] && echo idempotent\n\
             echo '[empty]'; netdata_conf_wanted ''\n\
             netdata_listeners_ok <{d}/ss-local && echo local-ok\n\
             netdata_listeners_ok <{d}/ss-public || echo public-refused\n\
             netdata_listeners_ok <{d}/ss-partial || echo partial-refused\n\
             netdata_listeners_ok </dev/null || echo none-refused\n",
            d = dir.display()
        ),
        &dir,
    );
    assert_eq!(
        out,
        "# netdata configuration\n[global]\n\trun as user = netdata\n\n[web]\n\
         \tbind to = 127.0.0.1 [::1]\n\tweb files owner = root\n\tdefault port = 19999\n\
         idempotent\n[empty]\n[web]\n\tbind to = 127.0.0.1 [::1]\n\tdefault port = 19999\n\
         local-ok\npublic-refused\npartial-refused\nnone-refused\n"
    );
    fs::remove_dir_all(dir).unwrap();
}

// ---------------------------------------------------------------- all together

/// Every module in one bundle (the web servers on different ports): no two define the same
/// function, and the whole passes bash -n and shellcheck.
#[test]
fn every_module_in_one_bundle() {
    let yaml = format!(
        "docker:\n  users: [deploy]\nnginx:\n  http_port: 8080\n  https_port: 8443\n{SITES}caddy:\n{SITES}{PG}"
    );
    let modules = [
        "docker",
        "monitoring",
        "nginx",
        "caddy",
        "postgres",
        "redis",
    ];
    let script = render_ok(&modules, &config_with(&yaml), &[]);
    lint(&script, "everything");
    let mut seen = std::collections::BTreeSet::new();
    for line in script.lines() {
        if let Some(name) = line.strip_suffix("() {").filter(|n| !n.contains(' ')) {
            assert!(seen.insert(name.to_string()), "{name} is defined twice");
        }
    }
    let order: Vec<usize> = modules
        .iter()
        .map(|m| script.find(&format!("  phanes_module {m}\n")).unwrap())
        .collect();
    assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        "module order {order:?}"
    );
    assert!(
        script.contains("SECURITY_FW_RULES=('8080/tcp' '8443/tcp' '80/tcp' '443/tcp' '443/udp')")
    );
}
