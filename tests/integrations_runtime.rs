//! The coolify module's installer steps, run for real against a stand-in: the rendered bundle's
//! functions are sourced (without its `main` line), Coolify's installer is replaced by a script
//! served by python3's http.server on 127.0.0.1 that records its arguments, environment
//! and the process list, `docker` is a fake on PATH, and every path the steps touch (temp
//! folder, password file, home) points into a temp dir. Nothing on the host is changed.

mod common;

use common::render::shell_ok;
use common::server::Server;
use common::{sha256, temp_dir};
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// The stand-in for Coolify's install.sh: writes down how it was called, changes nothing.
const STANDIN: &str = r#"#!/bin/bash
{
  printf 'argc=%s\n' "$#"
  for a in "$@"; do printf 'arg=%s\n' "$a"; done
  for v in ROOT_USERNAME ROOT_USER_EMAIL ROOT_USER_PASSWORD AUTOUPDATE HOME USER; do
    printf 'env:%s=%s\n' "$v" "${!v-(unset)}"
  done
  printf 'pwd=%s\n' "$PWD"
  if [ -t 0 ]; then echo stdin=tty; else echo stdin=redirected; fi
} >"$STANDIN_RECORD"
ps -eo args >"$STANDIN_RECORD.ps"
tr '\0' ' ' </proc/$$/cmdline >"$STANDIN_RECORD.argv"
tr '\0' ' ' </proc/$PPID/cmdline >>"$STANDIN_RECORD.argv"
echo "stand-in installer ran"
"#;

/// A fake docker: the coolify container's image (FAKE_COOLIFY_IMAGE) and the server version.
const FAKE_DOCKER: &str = r#"#!/bin/bash
case $1 in
  inspect) [ -z "${FAKE_COOLIFY_IMAGE:-}" ] || echo "$FAKE_COOLIFY_IMAGE" ;;
  version) echo "${FAKE_DOCKER_VERSION:-27.3.1}" ;;
esac
"#;

const PASSWORD: &str = "Stand-in-Pw-7c1e9a";

/// Everything one test needs: the sandbox folder, the served stand-in, the bundle's functions.
struct Stage {
    dir: PathBuf,
    server: Server,
    sha256: String,
}

impl Stage {
    fn new(name: &str) -> Stage {
        let dir = temp_dir(name);
        for sub in ["srv", "bin", "tmp", "home", "secrets"] {
            fs::create_dir_all(dir.join(sub)).unwrap();
        }
        fs::write(dir.join("srv/install.sh"), STANDIN).unwrap();
        fs::write(dir.join("bin/docker"), FAKE_DOCKER).unwrap();
        fs::set_permissions(dir.join("bin/docker"), fs::Permissions::from_mode(0o755)).unwrap();
        let server = Server::start(&dir.join("srv"), &dir.join("http.log"), &dir.join("flaky"));
        let sha256 = sha256(&dir.join("srv/install.sh"));
        Stage {
            dir,
            server,
            sha256,
        }
    }

    /// Renders the minimal profile + coolify with `coolify_yaml` (indented under `coolify:`)
    /// and writes its functions, without the `main` line, to lib.sh.
    fn render(&self, coolify_yaml: &str) {
        let config = format!(
            "coolify:\n  installer_url: {}\n{coolify_yaml}",
            self.server.url("install.sh")
        );
        let bundle = shell_ok(Some("minimal"), &["coolify"], &config, &[]);
        let functions = bundle
            .strip_suffix("main \"$@\"\n")
            .expect("the bundle ends with main \"$@\"");
        fs::write(self.dir.join("lib.sh"), functions).unwrap();
    }

    /// Sources lib.sh, points the module's paths into the sandbox, then runs `body` (errexit
    /// off, so a failing step's status can be printed). Returns (stdout, stderr).
    fn bash(&self, body: &str, env: &[(&str, &str)]) -> (String, String) {
        let d = self.dir.display();
        let script = format!(
            "source {d}/lib.sh\nset +e\n\
             COOLIFY_ROOT_PASSWORD_FILE={d}/secrets/coolify-root-password\n\
             COOLIFY_HOME={d}/home\nCOOLIFY_ENV_FILE={d}/home/.env\n{body}\n"
        );
        fs::write(self.dir.join("body.sh"), script).unwrap();
        let mut command = Command::new("bash");
        command
            .arg(self.dir.join("body.sh"))
            .env("PATH", format!("{d}/bin:/usr/sbin:/usr/bin:/sbin:/bin"))
            .env("TMPDIR", self.dir.join("tmp"))
            .env("STANDIN_RECORD", self.dir.join("record"))
            .stdin(Stdio::null());
        for (k, v) in env {
            command.env(k, v);
        }
        let out = command.output().unwrap();
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn requests(&self) -> usize {
        self.server
            .requests()
            .iter()
            .filter(|path| *path == "/install.sh")
            .count()
    }

    fn leftovers(&self) -> Vec<String> {
        fs::read_dir(self.dir.join("tmp"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    }

    fn write_password(&self) {
        let path = self.dir.join("secrets/coolify-root-password");
        let mut file = fs::File::create(&path).unwrap();
        file.write_all(PASSWORD.as_bytes()).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    }
}

impl Drop for Stage {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn installer_runs_verified_with_the_pinned_version_and_secrets_only_in_its_environment() {
    let stage = Stage::new("coolify-installer");
    stage.render(&format!(
        "  version: 4.3.19\n  installer_sha256: {}\n  root_user:\n    enabled: true\n    username: ops\n    email: ops@example.com\n",
        stage.sha256.to_uppercase()
    ));
    stage.write_password();
    let (out, err) = stage.bash(
        "coolify_docker__check && echo docker-ok\n\
         coolify_install__check || echo not-installed\n\
         coolify_install__apply; echo \"apply=$?\"",
        &[],
    );
    assert!(out.contains("docker-ok\nnot-installed\n"), "{out}{err}");
    assert!(
        out.contains("stand-in installer ran\napply=0\n"),
        "{out}{err}"
    );
    let record = fs::read_to_string(stage.dir.join("record")).unwrap();
    let home = stage.dir.join("home");
    assert_eq!(
        record,
        format!(
            "argc=1\narg=4.3.19\n\
             env:ROOT_USERNAME=ops\nenv:ROOT_USER_EMAIL=ops@example.com\nenv:ROOT_USER_PASSWORD={PASSWORD}\n\
             env:AUTOUPDATE=false\nenv:HOME={}\nenv:USER=root\npwd=/\nstdin=redirected\n",
            home.display()
        )
    );
    // While the installer ran, no process had the password on its command line.
    let ps = fs::read_to_string(stage.dir.join("record.ps")).unwrap();
    assert!(
        ps.contains("4.3.19"),
        "the listing shows the installer: {ps}"
    );
    assert!(
        !ps.contains(PASSWORD),
        "the password is in a process listing:\n{ps}"
    );
    let argv = fs::read_to_string(stage.dir.join("record.argv")).unwrap();
    assert!(argv.contains("timeout 1800 bash"), "{argv}");
    assert!(argv.ends_with("install.sh 4.3.19 "), "{argv}");
    assert!(!argv.contains(PASSWORD));
    assert_eq!(stage.requests(), 1);
    assert!(stage.leftovers().is_empty(), "{:?}", stage.leftovers());
    // The check reads the running container's tag (and the .env the installer writes).
    fs::write(home.join(".env"), "APP_ID=x\n").unwrap();
    let check = "coolify_install__check && echo installed || echo not-installed";
    for (image, want) in [
        ("ghcr.io/coollabsio/coolify:4.3.19", "installed"),
        ("ghcr.io/coollabsio/coolify:4.3.18", "not-installed"),
        ("", "not-installed"),
    ] {
        let (out, _) = stage.bash(check, &[("FAKE_COOLIFY_IMAGE", image)]);
        assert_eq!(out.trim(), want, "{image}");
    }
    let (out, _) = stage.bash(
        "coolify_docker__check || echo too-old; coolify_docker__apply; echo \"apply=$?\"",
        &[("FAKE_DOCKER_VERSION", "20.10.24")],
    );
    assert_eq!(out, "too-old\napply=1\n");
}

#[test]
fn a_wrong_or_missing_checksum_or_a_downgrade_runs_nothing() {
    let stage = Stage::new("coolify-refusals");
    let wrong = "0".repeat(64);
    stage.render(&format!("  installer_sha256: {wrong}\n"));
    let (out, err) = stage.bash("coolify_install__apply; echo \"apply=$?\"", &[]);
    assert_eq!(out, "apply=1\n", "{err}");
    let port = stage.server.port;
    assert!(
        err.contains(&format!(
            "Coolify's installer from http://127.0.0.1:{port}/install.sh has sha256 {}, not {wrong} (coolify.installer_sha256): nothing was run",
            stage.sha256
        )),
        "{err}"
    );
    assert_eq!(stage.requests(), 1, "downloaded once");
    assert!(!stage.dir.join("record").exists(), "the installer ran");
    assert!(stage.leftovers().is_empty(), "{:?}", stage.leftovers());

    // No pin at all: refused before anything is downloaded.
    stage.render("");
    let (out, err) = stage.bash("coolify_install__apply; echo \"apply=$?\"", &[]);
    assert_eq!(out, "apply=1\n", "{err}");
    assert!(
        err.contains(
            "coolify.installer_sha256 is not set, and phanes runs no downloaded script unchecked"
        ),
        "{err}"
    );
    assert_eq!(stage.requests(), 1, "nothing more was downloaded");

    // A newer Coolify than the pin: no downgrade, nothing downloaded.
    stage.render(&format!("  installer_sha256: {}\n", stage.sha256));
    let (out, err) = stage.bash(
        "coolify_install__apply; echo \"apply=$?\"",
        &[("FAKE_COOLIFY_IMAGE", "ghcr.io/coollabsio/coolify:4.3.20")],
    );
    assert_eq!(out, "apply=1\n", "{err}");
    assert!(
        err.contains("Coolify 4.3.20 is installed, newer than coolify.version 4.3.19: phanes does not downgrade"),
        "{err}"
    );
    assert_eq!(stage.requests(), 1);
    assert!(!stage.dir.join("record").exists(), "the installer ran");
    // An older one is upgraded: the installer runs with the pinned version.
    let (out, err) = stage.bash(
        "coolify_install__apply; echo \"apply=$?\"",
        &[(
            "FAKE_COOLIFY_IMAGE",
            "ghcr.io/coollabsio/coolify:4.0.0-beta.434",
        )],
    );
    assert!(out.ends_with("apply=0\n"), "{out}{err}");
    let record = fs::read_to_string(stage.dir.join("record")).unwrap();
    assert!(record.starts_with("argc=1\narg=4.3.19\n"), "{record}");
    // No root user configured: none of its variables reach the installer.
    assert!(
        record.contains("env:ROOT_USER_PASSWORD=(unset)"),
        "{record}"
    );
}

#[test]
fn a_missing_root_password_is_generated_private_and_strong() {
    let stage = Stage::new("coolify-password");
    stage.render(&format!(
        "  installer_sha256: {}\n  root_user:\n    enabled: true\n    email: ops@example.com\n",
        stage.sha256
    ));
    let is_root = Command::new("id").arg("-u").output().unwrap().stdout == b"0\n";
    if !is_root {
        eprintln!("skipped: the password file is written root:root, and this is not root");
        return;
    }
    let (out, err) = stage.bash(
        "coolify_root_password__check || echo missing\n\
         coolify_root_password__apply && coolify_root_password__check && echo generated\n\
         stat -c '%a' \"$COOLIFY_ROOT_PASSWORD_FILE\"",
        &[],
    );
    assert_eq!(out, "missing\ngenerated\n600\n", "{err}");
    let password = fs::read_to_string(stage.dir.join("secrets/coolify-root-password")).unwrap();
    let groups: Vec<&str> = password.split('-').collect();
    assert_eq!(groups.len(), 3, "{password}");
    assert!(
        groups
            .iter()
            .all(|g| g.len() == 8 && g.chars().all(|c| c.is_ascii_alphanumeric()))
    );
    assert!(password.chars().any(|c| c.is_ascii_uppercase()));
    assert!(password.chars().any(|c| c.is_ascii_lowercase()));
    assert!(password.chars().any(|c| c.is_ascii_digit()));
    // Readable by others: refused, not overwritten.
    let path = stage.dir.join("secrets/coolify-root-password");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    let (out, err) = stage.bash(
        "coolify_root_password__check || coolify_root_password__apply; echo \"apply=$?\"",
        &[],
    );
    assert_eq!(out, "apply=1\n");
    assert!(
        err.contains("must be owned by root and readable by nobody else"),
        "{err}"
    );
    assert_eq!(fs::read_to_string(&path).unwrap(), password);
}
