//! The service modules and the built-in service profiles on a real booted Debian, per release of
//! the tier: each profile boots through cloud-init with `source: distro` (vendor repositories are
//! not reachable from here), its services answer as configured from inside and outside the
//! guest, a second run changes nothing, drift is found and repaired, and a changed setting
//! restarts or reloads only the service it concerns. The vendor code path runs against a local
//! signed apt repository served from the host (dummy packages made with equivs, a test key made
//! with gpg), through the same repository options a user behind a mirror sets.
//!
//! `PHANES_VM=all cargo test --release --test vm services:: -- --nocapture` runs web on Debian 12
//! and database and vendor on Debian 13; `PHANES_VM=full` runs each case on both.

use crate::{common, guest, profiles, vm};
use common::temp_dir;
use guest::{converged, run_bundle};
use profiles::{
    ADMIN, BUNDLE, apply, base_config, boot_with, curl, drift_and_repair, handlers_run,
    host_http_get, listeners, main_pids, render, set, start_container,
};
use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Instant;
use vm::{BootOptions, HttpServer, Release, SSH_TIMEOUT, TestKey, Vm};

// ------------------------------------------------------------------------------------ web

/// The web profile's config: Docker and Caddy from the distribution, Caddy with its local CA
/// serving a static site and a reverse proxy to a backend on 127.0.0.1:9000.
fn web_config(key: &str, extra: &str) -> String {
    format!(
        "{}docker:
  source: distro
  users: [{ADMIN}]
  daemon:
    live-restore: true
{extra}caddy:
  source: distro
  tls: internal
  sites:
    - domains: [static.test]
      root: /srv/static
    - domains: [app.test]
      proxy: 9000
",
        base_config(key, "phanes-web")
    )
}

/// The web profile extended with nginx (ports set apart from Caddy's) and, where the release
/// packages it, Netdata: a user profile in the folder beside the config.
fn web_plus(release: Release) -> &'static str {
    match release {
        // Debian 13 has no netdata package (see netdata_not_packaged).
        Release::Trixie => {
            "name: web-plus\ndescription: web, plus nginx on 8081\nextends: web\nmodules: [nginx]\n"
        }
        _ => {
            "name: web-plus\ndescription: web, plus nginx on 8081 and Netdata\nextends: web\nmodules: [nginx, monitoring]\n"
        }
    }
}

fn web_plus_config(release: Release, key: &str, docker_extra: &str, nginx_site: &str) -> String {
    let config = format!(
        "{}nginx:
  http_port: 8081
  https_port: 8444
  sites:
    - domains: [nginx.test]
      root: {nginx_site}
    - domains: [proxy.test]
      proxy: 9000
",
        web_config(key, docker_extra)
    );
    if has_netdata(release) {
        config + "monitoring:\n  source: distro\n"
    } else {
        config
    }
}

/// Whether the release packages Netdata (Debian 13 does not).
fn has_netdata(release: Release) -> bool {
    release != Release::Trixie
}

/// The web servers and, where the release has it, Netdata: the units a change must not restart.
fn web_units(release: Release) -> Vec<&'static str> {
    let mut units = vec!["docker", "caddy", "nginx"];
    if has_netdata(release) {
        units.push("netdata");
    }
    units
}

/// Netdata on loopback only: it answers there, and not on the public interface.
fn prove_netdata_on_loopback(vm: &Vm) {
    vm.ssh_ok("curl -fsS --max-time 20 -o /dev/null http://127.0.0.1:19999/api/v1/info");
    let public =
        vm.ssh_ok("ip -4 -o route get 198.51.100.2 | sed -n 's/.* src \\([0-9.]*\\).*/\\1/p'");
    let refused = vm.ssh(&format!(
        "curl -sS --max-time 10 http://{}:19999/api/v1/info",
        public.trim()
    ));
    assert!(
        !refused.status.success(),
        "Netdata must not answer on {public}"
    );
    assert_eq!(
        listeners(vm, 19999),
        set(&["127.0.0.1:19999", "[::1]:19999"])
    );
}

/// Where the release has no netdata package, `source: distro` stops at the package install,
/// naming the package and its module, before anything is installed.
fn netdata_not_packaged(vm: &Vm, key: &TestKey) {
    let out = render(
        "web-netdata",
        &format!(
            "{}monitoring:\n  source: distro\n",
            web_config(&key.public_text, "")
        ),
        &[(
            "web-netdata",
            "name: web-netdata\ndescription: web with Netdata\nextends: web\nmodules: [monitoring]\n",
        )],
    );
    vm.scp_to(&out.join("setup.sh"), "/tmp/netdata.sh");
    let run = run_bundle(vm, "bash /tmp/netdata.sh", "--only packages.install");
    assert_eq!(run.exit, 1, "{}", run.raw);
    assert!(
        run.raw.contains(
            "netdata (for monitoring) (apt has no installation candidate); nothing was installed"
        ),
        "{}",
        run.raw
    );
    assert!(
        !vm.ssh_ok("dpkg-query -W -f '${db:Status-Abbrev}' netdata 2>/dev/null || true")
            .starts_with("ii")
    );
    fs::remove_dir_all(out.parent().unwrap()).unwrap();
}

fn web_case(release: Release) {
    let started = Instant::now();
    let key = TestKey::generate();
    let out = render("web", &web_config(&key.public_text, ""), &[]);
    let published = vm::free_port();
    let vm = boot_with(release, &out, "web", &key, vec![(published, 8088)]);
    converged(&vm, BUNDLE).unwrap();

    // Docker: the daemon answers, with the settings from daemon.json, for admin too.
    assert_eq!(vm.ssh_ok("systemctl is-active docker").trim(), "active");
    assert_eq!(
        vm.ssh_ok(
            "sudo -n -u admin docker info --format '{{.LoggingDriver}} {{.LiveRestoreEnabled}}'"
        )
        .trim(),
        "json-file true"
    );
    let run = run_bundle(&vm, BUNDLE, "");
    let compose = run
        .steps
        .iter()
        .find(|(id, _)| id == "docker.compose")
        .cloned();
    match release {
        // Debian 12 packages compose v1 only: the step says so and is skipped.
        Release::Bookworm => assert_eq!(compose.map(|c| c.1).as_deref(), Some("skipped")),
        _ => {
            assert_eq!(compose.map(|c| c.1).as_deref(), Some("ok"));
            vm.ssh_ok("docker compose version");
        }
    }

    // Caddy: HTTPS from its local CA for the static site and the reverse proxy.
    vm.ssh_ok("echo static-page | sudo -n tee /srv/static/index.html >/dev/null");
    vm.ssh_ok(
        "sudo -n mkdir -p /srv/backend && echo backend-page | sudo -n tee /srv/backend/index.html >/dev/null
         sudo -n systemd-run --unit=backend python3 -m http.server 9000 --bind 127.0.0.1 --directory /srv/backend
         for i in $(seq 30); do curl -fs http://127.0.0.1:9000/ >/dev/null && break; sleep 1; done",
    );
    assert_eq!(
        curl(
            &vm,
            "-k --resolve static.test:443:127.0.0.1 https://static.test/"
        )
        .trim(),
        "static-page"
    );
    assert_eq!(
        curl(&vm, "-k --resolve app.test:443:127.0.0.1 https://app.test/").trim(),
        "backend-page"
    );
    let ufw = vm.ssh_ok("sudo -n ufw status");
    for port in ["22/tcp", "80/tcp", "443/tcp", "443/udp"] {
        assert!(
            ufw.lines().any(|l| l.starts_with(&format!("{port} "))),
            "ufw must allow {port}:\n{ufw}"
        );
    }

    // A published container port is not reachable from outside until it is allowed.
    start_container(&vm);
    assert_eq!(
        host_http_get(published, "/"),
        None,
        "UFW's DOCKER-USER block must drop outside traffic to a published port"
    );

    drift_and_repair(
        &vm,
        &[
            (
                "sudo -n sed -i 's/10m/50m/' /etc/docker/daemon.json",
                "docker.daemon-json",
            ),
            ("sudo -n gpasswd -d admin docker", "docker.group"),
            (
                "sudo -n sed -i '/^# BEGIN phanes docker/,/^# END phanes docker/d' /etc/ufw/after.rules",
                "docker.ufw",
            ),
            ("sudo -n systemctl stop caddy", "caddy.service"),
            (
                "echo '# edited' | sudo -n tee -a /etc/caddy/Caddyfile >/dev/null",
                "caddy.config",
            ),
        ],
    );
    assert_eq!(
        host_http_get(published, "/"),
        None,
        "the repaired block drops again"
    );

    // web-plus: a user profile extending web adds nginx and Netdata; nothing else restarts.
    let before = main_pids(&vm, &["docker", "caddy"]);
    let plus = render(
        "web-plus",
        &web_plus_config(release, &key.public_text, "", "/srv/nginx"),
        &[("web-plus", web_plus(release))],
    );
    let run = apply(&vm, &plus);
    assert_eq!(main_pids(&vm, &["docker", "caddy"]), before, "{}", run.raw);
    converged(&vm, BUNDLE).unwrap();
    vm.ssh_ok("echo nginx-page | sudo -n tee /srv/nginx/index.html >/dev/null");
    assert_eq!(
        curl(
            &vm,
            "--resolve nginx.test:8081:127.0.0.1 http://nginx.test:8081/"
        )
        .trim(),
        "nginx-page"
    );
    assert_eq!(
        curl(
            &vm,
            "--resolve proxy.test:8081:127.0.0.1 http://proxy.test:8081/"
        )
        .trim(),
        "backend-page"
    );
    assert!(vm.ssh_ok("sudo -n ufw status").contains("8081/tcp"));
    if has_netdata(release) {
        prove_netdata_on_loopback(&vm);
    } else {
        netdata_not_packaged(&vm, &key);
    }

    let mut breakage = vec![
        ("sudo -n systemctl stop nginx", "nginx.service"),
        (
            "sudo -n rm /etc/nginx/sites-enabled/phanes-proxy.test.conf",
            "nginx.sites",
        ),
    ];
    if has_netdata(release) {
        breakage.push((
            "sudo -n sed -i 's/^\\s*bind to = .*/\tbind to = 0.0.0.0/' /etc/netdata/netdata.conf",
            "monitoring.config",
        ));
    }
    drift_and_repair(&vm, &breakage);

    // Allowing the container's port changes the firewall only: UFW reloads, nothing restarts,
    // and the published port answers from outside.
    let allowed = "  allow_published: [8080/tcp]\n";
    let before = main_pids(&vm, &web_units(release));
    let allow = render(
        "web-plus",
        &web_plus_config(release, &key.public_text, allowed, "/srv/nginx"),
        &[("web-plus", web_plus(release))],
    );
    let run = apply(&vm, &allow);
    assert_eq!(
        run.with_status("changed"),
        set(&["docker.ufw"]),
        "{}",
        run.raw
    );
    assert_eq!(
        handlers_run(&run),
        set(&["docker_ufw_reload"]),
        "{}",
        run.raw
    );
    assert_eq!(main_pids(&vm, &web_units(release)), before, "{}", run.raw);
    assert_eq!(
        host_http_get(published, "/").as_deref().map(str::trim),
        Some("container-page"),
        "an allowed published port answers from outside"
    );

    // A daemon.json option: Docker restarts, the web servers keep their processes, and
    // live-restore keeps the container (and its allowed port) up through the restart.
    let docker_extra = format!("  log_max_size: 20m\n{allowed}");
    let changed = render(
        "web-plus",
        &web_plus_config(release, &key.public_text, &docker_extra, "/srv/nginx"),
        &[("web-plus", web_plus(release))],
    );
    let run = apply(&vm, &changed);
    assert_eq!(
        run.with_status("changed"),
        set(&["docker.daemon-json"]),
        "{}",
        run.raw
    );
    assert_eq!(handlers_run(&run), set(&["docker_restart"]), "{}", run.raw);
    let after = main_pids(&vm, &web_units(release));
    assert_ne!(after["docker"], before["docker"], "Docker must restart");
    for unit in &web_units(release)[1..] {
        assert_eq!(after[*unit], before[*unit], "{unit} must not restart");
    }
    assert!(vm.ssh_ok("cat /etc/docker/daemon.json").contains("\"20m\""));
    assert_eq!(
        host_http_get(published, "/").as_deref().map(str::trim),
        Some("container-page"),
        "the allowed port answers after Docker's live-restore restart"
    );

    // A site change in each web server: each reloads (same main PID), nothing restarts.
    let before = main_pids(&vm, &web_units(release));
    vm.ssh_ok("sudo -n mkdir -p /srv/nginx2 && echo nginx-page-2 | sudo -n tee /srv/nginx2/index.html >/dev/null");
    let sites = render(
        "web-plus",
        &web_plus_config(release, &key.public_text, &docker_extra, "/srv/nginx2").replace(
            "domains: [static.test]",
            "domains: [static.test, www.static.test]",
        ),
        &[("web-plus", web_plus(release))],
    );
    let run = apply(&vm, &sites);
    assert_eq!(
        run.with_status("changed"),
        set(&["caddy.config", "nginx.sites"]),
        "{}",
        run.raw
    );
    assert_eq!(
        handlers_run(&run),
        set(&["caddy_reload", "nginx_reload"]),
        "{}",
        run.raw
    );
    assert_eq!(main_pids(&vm, &web_units(release)), before);
    assert_eq!(
        curl(
            &vm,
            "--resolve nginx.test:8081:127.0.0.1 http://nginx.test:8081/"
        )
        .trim(),
        "nginx-page-2"
    );
    assert_eq!(
        curl(
            &vm,
            "-k --resolve www.static.test:443:127.0.0.1 https://www.static.test/"
        )
        .trim(),
        "static-page"
    );
    converged(&vm, BUNDLE).unwrap();
    report!(
        "[vm_services] web on {}: {:.0?}",
        release.codename(),
        started.elapsed()
    );
    for dir in [out, plus, allow, changed, sites] {
        fs::remove_dir_all(dir.parent().unwrap()).unwrap();
    }
}

// ------------------------------------------------------------------------------- database

const APP_PASSWORD: &str = "First-pass-0123";
const APP_PASSWORD_2: &str = "Second-pass-4567";

fn database_config(key: &str, app_password: &str, maxmemory: &str) -> String {
    format!(
        "{}postgres:
  source: distro
  roles:
    - name: app
      password: {app_password}
    - name: report
  databases:
    - name: appdb
      owner: app
  hba:
    - database: appdb
      user: app
      address: 127.0.0.1
    - database: postgres
      user: report
      address: 127.0.0.1
redis:
  maxmemory: {maxmemory}
",
        base_config(key, "phanes-db")
    )
}

/// `psql` over TCP on localhost as ROLE with PASSWORD (in the environment, as a client would).
fn psql(vm: &Vm, role: &str, password: &str, database: &str) -> std::process::Output {
    vm.ssh(&format!(
        "PGPASSWORD='{password}' psql -X -h 127.0.0.1 -U {role} -d {database} -tAc 'SELECT current_user'"
    ))
}

fn assert_login(vm: &Vm, role: &str, password: &str, database: &str) {
    let out = psql(vm, role, password, database);
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == role,
        "{role} must log in to {database}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn assert_refused(vm: &Vm, role: &str, password: &str, database: &str) {
    let out = psql(vm, role, password, database);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("password authentication failed"),
        "{role} with a wrong password must be refused: {err}"
    );
}

fn redis_secret(vm: &Vm) -> String {
    let mode = vm.ssh_ok("sudo -n stat -c '%a %U' /etc/phanes/secrets/redis-password");
    assert_eq!(mode.trim(), "600 root");
    vm.ssh_ok("sudo -n cat /etc/phanes/secrets/redis-password")
}

fn database_case(release: Release) {
    let started = Instant::now();
    let key = TestKey::generate();
    let out = render(
        "database",
        &database_config(&key.public_text, APP_PASSWORD, "64M"),
        &[],
    );
    let vm = boot_with(release, &out, "database", &key, vec![]);
    converged(&vm, BUNDLE).unwrap();

    // PostgreSQL: the configured role with its password, over TCP on localhost; a wrong one is
    // refused; the generated role's password is a root-only secret.
    assert_login(&vm, "app", APP_PASSWORD, "appdb");
    assert_refused(&vm, "app", "not-the-password", "appdb");
    let mode = vm.ssh_ok("sudo -n stat -c '%a %U' /etc/phanes/secrets/postgres-role-report");
    assert_eq!(mode.trim(), "600 root");
    let report = vm.ssh_ok("sudo -n cat /etc/phanes/secrets/postgres-role-report");
    assert_login(&vm, "report", &report, "postgres");
    let owner = vm.ssh_ok("sudo -n -u postgres psql -X -tAc \"SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'appdb'\"");
    assert_eq!(owner.trim(), "app");
    assert_eq!(listeners(&vm, 5432), set(&["127.0.0.1:5432", "[::1]:5432"]));

    // Redis: PONG with its password, NOAUTH without, maxmemory as configured.
    let password = redis_secret(&vm);
    let cli = |args: &str| {
        vm.ssh_ok(&format!(
            "REDISCLI_AUTH='{password}' redis-cli --no-auth-warning {args}"
        ))
    };
    assert_eq!(cli("ping").trim(), "PONG");
    assert!(vm.ssh_ok("redis-cli ping 2>&1").contains("NOAUTH"));
    assert_eq!(cli("config get maxmemory").lines().nth(1), Some("67108864"));

    drift_and_repair(
        &vm,
        &[
            (
                "echo \"ALTER ROLE app PASSWORD 'changed-behind-our-back'\" | sudo -n -u postgres psql -X -q",
                "postgres.role_app",
            ),
            (
                "sudo -n sed -i '/^# BEGIN phanes postgres/,/^# END phanes postgres/d' /etc/postgresql/*/main/pg_hba.conf",
                "postgres.hba",
            ),
            (
                "sudo -n sed -i 's/^port = .*/port = 5433/' /etc/postgresql/*/main/conf.d/phanes.conf",
                "postgres.config",
            ),
            (
                "sudo -n sed -i '/^include \\/etc\\/redis\\/phanes.conf$/d' /etc/redis/redis.conf",
                "redis.config",
            ),
            ("sudo -n systemctl stop redis-server", "redis.service"),
        ],
    );
    assert_login(&vm, "app", APP_PASSWORD, "appdb");
    assert_eq!(cli("ping").trim(), "PONG");

    // A new password and maxmemory: the role changes without a PostgreSQL restart, Redis
    // restarts, and nothing else.
    let pg_unit =
        vm.ssh_ok("systemctl list-units --plain --no-legend 'postgresql@*' | awk '{print $1}'");
    let units = [pg_unit.trim(), "redis-server"];
    let before = main_pids(&vm, &units);
    let changed = render(
        "database",
        &database_config(&key.public_text, APP_PASSWORD_2, "128M"),
        &[],
    );
    let run = apply(&vm, &changed);
    assert_eq!(
        run.with_status("changed"),
        set(&["postgres.role_app", "redis.config"]),
        "{}",
        run.raw
    );
    assert_eq!(handlers_run(&run), set(&["redis_restart"]), "{}", run.raw);
    let after = main_pids(&vm, &units);
    assert_eq!(
        after[units[0]], before[units[0]],
        "PostgreSQL must not restart"
    );
    assert_ne!(
        after["redis-server"], before["redis-server"],
        "Redis must restart"
    );
    assert_login(&vm, "app", APP_PASSWORD_2, "appdb");
    assert_refused(&vm, "app", APP_PASSWORD, "appdb");
    assert_eq!(
        cli("config get maxmemory").lines().nth(1),
        Some("134217728")
    );
    converged(&vm, BUNDLE).unwrap();

    // Secrets stay out of the logs phanes writes.
    let logs = vm.ssh_ok("sudo -n sh -c 'cat /var/log/phanes/*.log /var/lib/phanes/last-run.json /var/log/cloud-init-output.log'");
    for secret in [APP_PASSWORD, APP_PASSWORD_2, report.trim(), password.trim()] {
        assert!(!logs.contains(secret), "a secret is in the logs");
    }
    report!(
        "[vm_services] database on {}: {:.0?}",
        release.codename(),
        started.elapsed()
    );
    fs::remove_dir_all(out.parent().unwrap()).unwrap();
    fs::remove_dir_all(changed.parent().unwrap()).unwrap();
}

// --------------------------------------------------------------------- vendor repositories

/// A vendor repository as the local stand-in serves it: folder, suite, component ("" for a flat
/// repository) and the dummy packages in it.
struct LocalRepo {
    dir: &'static str,
    suite: String,
    component: &'static str,
    packages: &'static [&'static str],
}

fn local_repos(release: Release) -> Vec<LocalRepo> {
    let codename = release.codename();
    vec![
        LocalRepo {
            dir: "docker",
            suite: codename.to_string(),
            component: "stable",
            packages: &[
                "docker-ce",
                "docker-ce-cli",
                "containerd.io",
                "docker-buildx-plugin",
                "docker-compose-plugin",
            ],
        },
        LocalRepo {
            dir: "caddy",
            suite: "any-version".into(),
            component: "main",
            packages: &["caddy"],
        },
        LocalRepo {
            dir: "netdata",
            suite: format!("{codename}/"),
            component: "",
            packages: &["netdata"],
        },
        LocalRepo {
            dir: "pgdg",
            suite: format!("{codename}-pgdg"),
            component: "main",
            packages: &["postgresql-17"],
        },
    ]
}

fn run_host(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn require(tool: &str, package: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "{tool} is needed for the local apt repository: apt-get install -y {package}"
    );
}

/// Builds signed apt repositories with dummy packages under `root`, signed with a fresh test key;
/// returns its fingerprint. `root/key.asc` is the public key.
fn build_local_repos(root: &Path, repos: &[LocalRepo]) -> String {
    require("equivs-build", "equivs");
    require("apt-ftparchive", "apt-utils");
    require("gpg", "gpg");
    let gnupg = root.join(".gnupg");
    fs::create_dir_all(&gnupg).unwrap();
    let gpg = |args: &[&str]| {
        let mut cmd = Command::new("gpg");
        cmd.arg("--homedir").arg(&gnupg).args([
            "--batch",
            "--quiet",
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            "",
        ]);
        cmd.args(args);
        cmd
    };
    run_host(&mut gpg(&[
        "--quick-gen-key",
        "phanes test repository <repo@phanes.invalid>",
        "ed25519",
        "sign",
        "never",
    ]));
    let colons = run_host(&mut gpg(&["--with-colons", "--list-keys"]));
    let fingerprint = colons
        .lines()
        .find_map(|l| {
            l.strip_prefix("fpr:")
                .map(|r| r.trim_matches(':').to_string())
        })
        .expect("fingerprint");
    let key = run_host(&mut gpg(&["--armor", "--export"]));
    fs::write(root.join("key.asc"), key).unwrap();

    let build = root.join(".build");
    fs::create_dir_all(&build).unwrap();
    for repo in repos {
        let base = root.join(repo.dir);
        let (pool, index_dir, release_dir) = if repo.component.is_empty() {
            let flat = base.join(&repo.suite);
            (flat.clone(), flat.clone(), flat)
        } else {
            let dists = base.join("dists").join(&repo.suite);
            (
                base.join("pool"),
                dists.join(repo.component).join("binary-amd64"),
                dists,
            )
        };
        fs::create_dir_all(&pool).unwrap();
        fs::create_dir_all(&index_dir).unwrap();
        for package in repo.packages {
            fs::write(
                build.join(format!("{package}.ctl")),
                format!("Package: {package}\nVersion: 99.0-phanes\nArchitecture: all\nMaintainer: phanes tests <repo@phanes.invalid>\nDescription: stand-in for {package} (phanes tests)\n"),
            )
            .unwrap();
            run_host(
                Command::new("equivs-build")
                    .arg(format!("{package}.ctl"))
                    .current_dir(&build),
            );
            let deb = format!("{package}_99.0-phanes_all.deb");
            fs::rename(build.join(&deb), pool.join(&deb)).unwrap();
        }
        // File names in the index are relative to the repository's URI, flat or not.
        let scan = if repo.component.is_empty() {
            repo.suite.trim_end_matches('/')
        } else {
            "pool"
        };
        let packages = run_host(
            Command::new("apt-ftparchive")
                .args(["packages", scan])
                .current_dir(&base),
        );
        fs::write(index_dir.join("Packages"), packages).unwrap();
        let suite = repo.suite.trim_end_matches('/');
        let mut release = Command::new("apt-ftparchive");
        release.args([
            "-o",
            &format!("APT::FTPArchive::Release::Suite={suite}"),
            "-o",
            &format!("APT::FTPArchive::Release::Codename={suite}"),
            "-o",
            "APT::FTPArchive::Release::Architectures=amd64",
        ]);
        if !repo.component.is_empty() {
            release.args([
                "-o",
                &format!("APT::FTPArchive::Release::Components={}", repo.component),
            ]);
        }
        let text = run_host(release.args(["release", "."]).current_dir(&release_dir));
        fs::write(release_dir.join("Release"), text).unwrap();
        let release_file = release_dir.join("Release");
        run_host(
            gpg(&["--clearsign", "-o"])
                .arg(release_dir.join("InRelease"))
                .arg(&release_file),
        );
        run_host(
            gpg(&["--detach-sign", "--armor", "-o"])
                .arg(release_dir.join("Release.gpg"))
                .arg(&release_file),
        );
    }
    fs::remove_dir_all(&gnupg).ok();
    fs::remove_dir_all(&build).unwrap();
    fingerprint
}

/// The four vendor modules pointed at the local repositories, the way a user behind a mirror
/// sets them.
fn vendor_config(key: &str, url: &str, fingerprint: &str, docker_fingerprint: &str) -> String {
    format!(
        "{}docker:
  repository: {{url: '{url}/docker', key_url: '{url}/key.asc', key_fingerprint: {docker_fingerprint}}}
caddy:
  repository: {{url: '{url}/caddy', key_url: '{url}/key.asc', key_fingerprint: {fingerprint}}}
monitoring:
  repository: {{url: '{url}/netdata', key_url: '{url}/key.asc', key_fingerprint: {fingerprint}}}
postgres:
  version: 17
  repository: {{url: '{url}/pgdg', key_url: '{url}/key.asc', key_fingerprint: {fingerprint}}}
",
        base_config(key, "phanes-vendor")
    )
}

const VENDOR_STEPS: &str = "packages.install,docker.conflicts,docker.repository,docker.engine,caddy.repository,caddy.install,monitoring.repository,monitoring.install,postgres.repository,postgres.install";

fn vendor_case(release: Release) {
    let started = Instant::now();
    let root = temp_dir("apt-repo");
    let repos = local_repos(release);
    let fingerprint = build_local_repos(&root, &repos);
    let server = HttpServer::serve(&root);
    let url = server.guest_url();
    let key = TestKey::generate();
    let render_vendor = |docker_fingerprint: &str| {
        profiles::render_with(
            "minimal",
            &vendor_config(&key.public_text, &url, &fingerprint, docker_fingerprint),
            &[],
            &[
                "--modules",
                "docker,caddy,monitoring,postgres",
                "--format",
                "shell",
            ],
        )
    };
    // A guest with just a login: these steps need nothing else.
    let user_data = vm::login_user_data(ADMIN, &key.public_text);
    let mut vm = Vm::boot(
        release,
        BootOptions {
            user_data: user_data.into(),
            hostname: format!("vendor-{}", release.codename()),
            ..Default::default()
        },
    );
    vm.wait_ssh(ADMIN, &key.private, SSH_TIMEOUT);
    let only = format!("--only {VENDOR_STEPS}");

    // A key that is not the pinned one: the step fails, says why, and configures nothing.
    let wrong = "9DC858229FC7DD38854AE2D88D81803C0EBFCD88";
    let out = render_vendor(wrong);
    vm.scp_to(&out.join("setup.sh"), "/tmp/setup.sh");
    let run = run_bundle(&vm, BUNDLE, "--only packages.install,docker.repository");
    assert_eq!(run.exit, 1, "{}", run.raw);
    assert_eq!(
        run.with_status("failed"),
        set(&["docker.repository"]),
        "{}",
        run.raw
    );
    assert!(
        run.raw
            .contains(&format!("has fingerprint {fingerprint}, not {wrong}")),
        "the failure names both fingerprints:\n{}",
        run.raw
    );
    let leftovers = vm.ssh_ok(
        "ls -A /etc/apt/keyrings /etc/apt/sources.list.d 2>/dev/null | grep -c 'docker' || true",
    );
    assert_eq!(
        leftovers.trim(),
        "0",
        "nothing of the docker repository may be left"
    );

    // The right key: repositories, keys and packages, exactly as documented.
    let out = render_vendor(&fingerprint);
    vm.scp_to(&out.join("setup.sh"), "/tmp/setup.sh");
    let run = run_bundle(&vm, BUNDLE, &only);
    assert_eq!(run.exit, 0, "{}", run.raw);
    for (repo, name) in repos.iter().zip(["docker", "caddy", "netdata", "pgdg"]) {
        let components = if repo.component.is_empty() {
            String::new()
        } else {
            format!("Components: {}\n", repo.component)
        };
        assert_eq!(
            vm.ssh_ok(&format!("cat /etc/apt/sources.list.d/{name}.sources")),
            format!(
                "# Managed by phanes: edits here are replaced on the next run.\n# Signing key: {url}/key.asc (fingerprint {fingerprint})\nTypes: deb\nURIs: {url}/{}\nSuites: {}\n{components}Architectures: amd64\nSigned-By: /etc/apt/keyrings/{name}.asc\n",
                repo.dir, repo.suite
            )
        );
        let key_file = vm.ssh_ok(&format!("stat -c '%a %U' /etc/apt/keyrings/{name}.asc; gpg --show-keys --with-colons /etc/apt/keyrings/{name}.asc | grep ^fpr | head -1"));
        assert!(
            key_file.starts_with("644 root\n") && key_file.contains(&fingerprint),
            "{key_file}"
        );
        for package in repo.packages {
            let policy = vm.ssh_ok(&format!("LC_ALL=C apt-cache policy {package}"));
            assert!(
                policy.contains("Installed: 99.0-phanes")
                    && policy.contains(&format!("{url}/{}", repo.dir)),
                "{package} must be installed from the local {name} repository:\n{policy}"
            );
        }
    }
    let again = run_bundle(&vm, BUNDLE, &only);
    let moved: Vec<_> = again.steps.iter().filter(|(_, s)| s != "ok").collect();
    assert!(
        again.exit == 0 && moved.is_empty(),
        "a second run changes nothing: {moved:?}\n{}",
        again.raw
    );
    drop(vm);
    drop(server);
    report!(
        "[vm_services] vendor repositories on {}: {:.0?}",
        release.codename(),
        started.elapsed()
    );
    fs::remove_dir_all(&root).unwrap();
    fs::remove_dir_all(out.parent().unwrap()).unwrap();
}

// ------------------------------------------------------------------------------------ tests

// CI's budget is guest CPU time: it runs web on Debian 12 (the only release with Netdata) and the
// database and vendor cases on Debian 13 (PostgreSQL 17); `PHANES_VM=full` runs all six.

vm_case!(bookworm_web, "web", Bookworm, Always, web_case);

vm_case!(trixie_web, "web", Trixie, FullOnly, web_case);

vm_case!(
    bookworm_database,
    "database",
    Bookworm,
    FullOnly,
    database_case
);

vm_case!(trixie_database, "database", Trixie, Always, database_case);

vm_case!(bookworm_vendor, "vendor", Bookworm, FullOnly, vendor_case);

vm_case!(trixie_vendor, "vendor", Trixie, Always, vendor_case);
