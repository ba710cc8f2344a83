//! `render --bundle-url URL`: user-data that pins setup.sh by its sha256 instead of carrying it,
//! for profiles over a provider's limit (AWS's 16 KiB). Checked as its users would: the file
//! cloud-init's schema takes, the download command exactly as cloud-init writes it (its own
//! `shellify`) run against a local server, and the refusals (a changed bundle, a missing one,
//! a URL that is not one) with nothing half done. tests/vm/aws.rs boots it.

mod common;

use common::server::Server;
use common::{output_ok, phanes, render_to, sha256, temp_dir};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Where cloud-init installs the bundle on the server.
const INSTALLED: &str = "/usr/local/sbin/phanes-setup";
const AWS_LIMIT: u64 = 16 * 1024;

fn user_data(dir: &Path) -> serde_norway::Value {
    serde_norway::from_str(&fs::read_to_string(dir.join("user-data.yaml")).unwrap()).unwrap()
}

/// The runcmd entry as argv: `sh -c SCRIPT phanes-fetch URL SHA256 DEST`.
fn fetch_argv(doc: &serde_norway::Value) -> Vec<String> {
    let runcmd = doc["runcmd"].as_sequence().expect("runcmd is a list");
    assert_eq!(runcmd.len(), 1, "one command: {runcmd:?}");
    runcmd[0]
        .as_sequence()
        .expect("the command is an argv list, run without a shell")
        .iter()
        .map(|v| v.as_str().expect("every argument is a string").to_string())
        .collect()
}

/// Every built-in profile, the larger ones included, fits AWS this way: plain YAML that
/// cloud-init's schema accepts, holding no bundle, only the URL and setup.sh's sha256.
#[test]
fn every_built_in_profile_fits_aws_with_a_bundle_url() {
    let url = "https://example-bucket.s3.eu-central-1.amazonaws.com/web/setup.sh?X-Amz-Expires=3600&X-Amz-Signature=0123abcd";
    for (profile, _) in phanes::profile::BUILT_IN {
        let dir = temp_dir(&format!("bundle-url-{profile}"));
        render_to(
            &dir,
            &[
                "--profile",
                profile,
                "--provider",
                "aws",
                "--bundle-url",
                url,
            ],
            None,
        );
        assert!(
            !dir.join("user-data.yaml.gz").exists(),
            "{profile}: a fetched bundle needs no compression"
        );
        let size = fs::metadata(dir.join("user-data.yaml")).unwrap().len();
        assert!(size <= AWS_LIMIT, "{profile}: {size} bytes");
        let doc = user_data(&dir);
        let keys: Vec<&str> = doc
            .as_mapping()
            .unwrap()
            .keys()
            .map(|k| k.as_str().unwrap())
            .collect();
        assert!(
            keys.iter()
                .all(|k| ["runcmd", "preserve_hostname"].contains(k)),
            "{profile}: no write_files, nothing but the download: {keys:?}"
        );
        let argv = fetch_argv(&doc);
        assert_eq!(argv[..2], ["sh", "-c"]);
        assert_eq!(
            argv[3..],
            [
                "phanes-fetch".to_string(),
                url.to_string(),
                sha256(&dir.join("setup.sh")),
                INSTALLED.to_string()
            ],
            "{profile}: the URL as given, setup.sh's sha256, where it goes"
        );
        let out = Command::new("cloud-init")
            .args(["schema", "--config-file"])
            .arg(dir.join("user-data.yaml"))
            .output()
            .expect("cloud-init is missing: apt-get install cloud-init");
        assert!(
            out.status.success(),
            "{profile}: cloud-init schema: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if *profile == "minimal" {
            let script = dir.join("fetch.sh");
            fs::write(&script, &argv[2]).unwrap();
            output_ok(Command::new("shellcheck").args(["-s", "sh"]).arg(&script));
        }
        fs::remove_dir_all(dir).unwrap();
    }
}

/// The download command of a rendered user-data, with the URL, checksum and destination
/// swapped for test ones, turned into the script cloud-init runs by cloud-init's own code
/// (`util.shellify`, as cc_runcmd does).
struct Fetch {
    dir: PathBuf,
    server: Server,
    /// `sh -c SCRIPT phanes-fetch`, as rendered; the URL, checksum and destination follow.
    command: Vec<String>,
}

const SHELLIFY: &str = "\
import json, sys
from cloudinit import util
cmd = json.loads(sys.argv[1])
sys.stdout.write(util.shellify(cmd))
";

/// A stand-in bundle: records that it ran, with which PHANES_NO_COLOR, next to itself.
const STUB: &str = "#!/bin/sh\nprintf 'ran %s\\n' \"$PHANES_NO_COLOR\" >\"$0.ran\"\n";

impl Fetch {
    fn new(name: &str) -> Fetch {
        let dir = temp_dir(name);
        render_to(
            &dir.join("out"),
            &[
                "--profile",
                "minimal",
                "--format",
                "cloud-init",
                "--bundle-url",
                "https://example.org/setup.sh",
            ],
            None,
        );
        let server = Server::start(
            &dir.join("served"),
            &dir.join("requests.log"),
            &dir.join("flaky"),
        );
        fs::create_dir_all(dir.join("sbin")).unwrap();
        let mut command = fetch_argv(&user_data(&dir.join("out")));
        command.truncate(4);
        Fetch {
            command,
            dir,
            server,
        }
    }

    fn dest(&self) -> PathBuf {
        self.dir.join("sbin/phanes-setup")
    }

    /// Runs the download of `url`, expecting `sum`, the way cloud-init would.
    fn run(&self, url: &str, sum: &str, env: &[(&str, &str)]) -> Output {
        let mut argv = self.command.clone();
        argv.extend([
            url.to_string(),
            sum.to_string(),
            self.dest().display().to_string(),
        ]);
        let cmd = serde_json::to_string(&vec![argv]).unwrap();
        let script = output_ok(
            Command::new("/usr/bin/python3")
                .args(["-c", SHELLIFY])
                .arg(cmd),
        );
        let path = self.dir.join("runcmd");
        fs::write(&path, script).unwrap();
        Command::new("sh")
            .arg(&path)
            .current_dir(&self.dir)
            .envs(env.iter().copied())
            .output()
            .unwrap()
    }

    fn serve(&self, name: &str, text: &str) -> String {
        let path = self.server.root.join(name);
        fs::write(&path, text).unwrap();
        sha256(&path)
    }

    /// Nothing was installed, nothing ran, and no temporary file is left beside the target.
    fn assert_untouched(&self) {
        let left: Vec<_> = fs::read_dir(self.dir.join("sbin"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(left.is_empty(), "left behind: {left:?}");
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The rendered bundle is downloaded, installed 0700 and run once, with PHANES_NO_COLOR=1;
/// shell text in the URL stays text; a first 503 is retried.
#[test]
fn bundle_url_installs_and_runs_the_pinned_bundle() {
    let fetch = Fetch::new("bundle-url-good");
    let sum = fetch.serve("setup.sh", STUB);
    fs::write(
        fetch.dir.join("flaky"),
        "/setup.sh?sig=$(touch$IFS'PWNED')\n",
    )
    .unwrap();
    let url = fetch.server.url("setup.sh?sig=$(touch$IFS'PWNED')");
    let out = fetch.run(&url, &sum, &[("PHANES_FETCH_DELAY", "0")]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(fs::read_to_string(fetch.dest()).unwrap(), STUB);
    assert_eq!(
        fs::metadata(fetch.dest()).unwrap().permissions().mode() & 0o7777,
        0o700
    );
    assert_eq!(
        fs::read_to_string(fetch.dir.join("sbin/phanes-setup.ran")).unwrap(),
        "ran 1\n",
        "the bundle ran once, without colours"
    );
    assert!(
        !fetch.dir.join("PWNED").exists(),
        "the URL was run as shell"
    );
    assert_eq!(
        fetch.server.requests().len(),
        2,
        "one 503, then the download: {:?}",
        fetch.server.requests()
    );
    fs::remove_dir_all(&fetch.dir).unwrap();
}

/// A bundle that is not the rendered one (changed, or replaced at the URL) never runs and is
/// not installed; the message has both checksums and leaves a presigned URL's query out.
#[test]
fn bundle_url_refuses_a_bundle_with_another_sha256() {
    let fetch = Fetch::new("bundle-url-changed");
    let want = fetch.serve("setup.sh", STUB);
    let got = fetch.serve("setup.sh", &format!("{STUB}touch PWNED\n"));
    let url = fetch.server.url("setup.sh?X-Amz-Signature=secret123");
    let out = fetch.run(&url, &want, &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("has sha256 {got}, not {want}")) && err.contains("nothing ran"),
        "{err}"
    );
    assert!(
        !err.contains("secret123"),
        "the signature is printed: {err}"
    );
    assert!(!fetch.dir.join("PWNED").exists());
    fetch.assert_untouched();
    fs::remove_dir_all(&fetch.dir).unwrap();
}

/// A 404 (or an expired presigned URL's 403) will not get better: one request, a clear
/// message, nothing installed. A server that cannot be reached is tried PHANES_FETCH_TRIES
/// times.
#[test]
fn bundle_url_reports_a_missing_bundle_without_running_anything() {
    let mut fetch = Fetch::new("bundle-url-missing");
    let want = fetch.serve("other.sh", STUB);
    let out = fetch.run(&fetch.server.url("setup.sh?sig=secret123"), &want, &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("cannot download the bundle from http://127.0.0.1:")
            && err.contains("/setup.sh: HTTP 404")
            && err.contains("no bundle after 1 attempt(s): nothing ran")
            && !err.contains("secret123"),
        "{err}"
    );
    assert_eq!(fetch.server.requests(), ["/setup.sh?sig=secret123"]);
    fetch.assert_untouched();

    let url = fetch.server.url("setup.sh");
    fetch.server.stop();
    let out = fetch.run(
        &url,
        &want,
        &[("PHANES_FETCH_TRIES", "2"), ("PHANES_FETCH_DELAY", "0")],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.matches("cannot download the bundle").count() == 2
            && err.contains("no bundle after 2 attempt(s): nothing ran"),
        "{err}"
    );
    fetch.assert_untouched();
    fs::remove_dir_all(&fetch.dir).unwrap();
}

/// A URL the server could not use, or that could carry YAML or shell syntax unencoded, is a
/// usage error naming the option, and nothing is written.
#[test]
fn bundle_url_rejects_what_is_not_a_plain_url() {
    for (url, why) in [
        ("s3://bucket/setup.sh", "is not an http:// or https:// URL"),
        ("https://", "has no host"),
        (
            "https://user:pw@example.org/setup.sh",
            "carries a user name or password",
        ),
        ("https://example.org/a b", "contains ' '"),
        ("https://example.org/a\n- [reboot]", "contains '\\n'"),
        ("https://example.org/\"x", "contains '\"'"),
        ("https://example.org/a\\b", "contains '\\\\'"),
    ] {
        let err = failed_render(&["--bundle-url", url], 2);
        assert!(
            err.contains("--bundle-url") && err.contains(why),
            "{url:?}: {err}"
        );
    }
}

/// Runs `phanes render ARGS --out DIR`, which must exit with `code` and write nothing; returns
/// its stderr.
fn failed_render(args: &[&str], code: i32) -> String {
    let dir = temp_dir("bundle-url-failed");
    let out = phanes()
        .arg("render")
        .args(args)
        .arg("--out")
        .arg(dir.join("out"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(code), "{args:?}: {err}");
    assert!(!dir.join("out").exists(), "{args:?}: something was written");
    fs::remove_dir_all(dir).unwrap();
    err
}

/// Without `--bundle-url`, a profile over AWS's limit (dev, the largest built-in one: about
/// 19 KB with the bundle inside) fails before writing anything, with the size and the way out.
#[test]
fn over_the_aws_limit_the_error_names_bundle_url() {
    let err = failed_render(&["--profile", "dev", "--provider", "aws"], 1);
    assert!(
        err.contains("user-data.yaml.gz is ")
            && err.contains("over the AWS limit of 16384 bytes")
            && err.contains("--bundle-url"),
        "{err}"
    );
}

/// `render --out` says what is left to do: which file to upload where, and the sha256 the
/// user-data will accept; the URL's query (a presigned signature) stays off the terminal.
#[test]
fn render_with_a_bundle_url_says_what_to_upload() {
    let dir = temp_dir("bundle-url-hint-upload");
    let out = phanes()
        .args([
            "render",
            "--profile",
            "web",
            "--provider",
            "aws",
            "--bundle-url",
            "https://bucket.example/web/setup.sh?X-Amz-Signature=secret123",
            "--out",
        ])
        .arg(dir.join("out"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let want = format!(
        "user-data.yaml downloads setup.sh from https://bucket.example/web/setup.sh at first boot and runs it only if its sha256 is {}: upload {} there",
        sha256(&dir.join("out/setup.sh")),
        dir.join("out/setup.sh").display()
    );
    assert!(err.lines().any(|l| l == want), "{err}");
    assert!(!err.contains("secret123"), "{err}");
    fs::remove_dir_all(dir).unwrap();
}
