//! The devtools module at render time: bundles for each runtime combination pass bash -n and
//! shellcheck and carry the configured versions, checksums and URLs; the verified-download
//! runtime is only in bundles that download; bad versions, checksums, URLs and a Rust user
//! outside user.users are rejected with their key path. Nothing here runs a bundle
//! (tests/devtools_runtime.rs does, in a sandbox).

mod common;

use common::render::{check_script, config_with, shell_err, shell_ok};
use common::{lint, phanes};

/// setup.sh of the default profile plus devtools, with `yaml` after the users and `sets`.
fn render_ok(yaml: &str, sets: &[&str]) -> String {
    shell_ok(None, &["devtools"], &config_with(yaml), sets)
}

/// The error of rendering the default profile plus devtools, with `yaml` after the users.
fn render_err(yaml: &str, sets: &[&str]) -> String {
    shell_err(None, &["devtools"], &config_with(yaml), sets)
}

const ALL_ON: &str = "devtools:
  packages: [jq, libssl-dev]
  node: {enabled: true, major: 22}
  go: {enabled: true}
  rust: {enabled: true, user: deploy, toolchain: 1.91.1, profile: default}
  uv: {enabled: true}
";

#[test]
fn every_runtime_renders_with_its_pinned_version_and_checksums() {
    let script = render_ok(ALL_ON, &[]);
    let has = [
        // Packages: the fixed ones, gpg for the vendor repository, the extra ones.
        "devtools_packages__check() { phanes_pkgs_installed 'git' 'build-essential' 'pkg-config' 'ca-certificates' 'curl' 'gpg' 'jq' 'libssl-dev'; }",
        "DEVTOOLS_NODE_REPO_URL='https://deb.nodesource.com/node_22.x'",
        "DEVTOOLS_NODE_KEY_FPR='6F71F525282841EEDAF851B42F59B5F99B1BE0B4'",
        "phanes_vendor_repo_check nodesource \"$DEVTOOLS_NODE_REPO_URL\" nodistro main",
        "[[ $out == \"ii ${DEVTOOLS_NODE_MAJOR}.\"* ]]",
        "DEVTOOLS_GO_VERSION='1.25.5'",
        "declare -A DEVTOOLS_GO_SHA256=([amd64]='9e9b755d63b36acf30c12a9a3fc379243714c1c6d3dd72861da637f336ebb35b' [arm64]='b00b694903d126c588c378e72d3545549935d3982635ba3f7a964c9fa23fe3b9')",
        "[[ $version == \"go$DEVTOOLS_GO_VERSION\" ]]",
        "DEVTOOLS_RUST_USER='deploy'",
        "DEVTOOLS_RUST_TOOLCHAIN='1.91.1'",
        "DEVTOOLS_RUST_PROFILE='default'",
        "[amd64]='20a06e644b0d9bd2fbdbfd52d42540bdde820ea7df86e92e533c073da0cdd43c'",
        "DEVTOOLS_UV_VERSION='0.12.1'",
        "[arm64]='769d373e146692c639b5fbaae33b331c297a32e03d30448772051902df52bbf4'",
        // The verified-download runtime is carried.
        "phanes_install_tree() {",
        "phanes_install_files() {",
        "phanes_download_verified() {",
        // Step descriptions name the configured versions.
        "phanes_step devtools.go 'Go 1.25.5 in /usr/local/go",
        "phanes_step devtools.rust 'rustup for deploy with default toolchain 1.91.1 (default profile",
        "phanes_step devtools.uv 'uv 0.12.1 and uvx",
        "phanes_step devtools.node 'Node.js 22.x installed",
    ];
    check_script("devtools-all", &script, &has, &[]);
    // devtools runs after the minimal profile's modules.
    let register = &script[script.find("phanes_register() {").unwrap()..];
    assert!(
        register.find("phanes_module updates").unwrap()
            < register.find("phanes_module devtools").unwrap()
    );
}

#[test]
fn each_runtime_alone_passes_the_linters() {
    for (name, yaml) in [
        ("node", "devtools:\n  node: {enabled: true}\n"),
        ("go", "devtools:\n  go: {enabled: true}\n"),
        ("rust", "devtools:\n  rust: {enabled: true, user: deploy}\n"),
        ("uv", "devtools:\n  uv: {enabled: true}\n"),
    ] {
        let script = render_ok(yaml, &[]);
        lint(&script, &format!("devtools-{name}"));
        assert!(
            script.contains(&format!("devtools_{name}__check()")),
            "{name}"
        );
    }
}

#[test]
fn without_runtimes_only_git_and_build_tools_are_installed() {
    let script = render_ok("", &[]);
    check_script(
        "devtools-default",
        &script,
        &[
            "devtools_packages__check() { phanes_pkgs_installed 'git' 'build-essential' 'pkg-config' 'ca-certificates' 'curl'; }",
        ],
        &[
            "phanes_install_tree",
            "phanes_download_verified",
            "DEVTOOLS_GO_",
            "nodesource",
            "devtools.rust",
            "devtools.uv",
        ],
    );
    // And the minimal profile alone carries no download runtime either.
    let out = phanes()
        .args(["render", "--format", "shell"])
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&out.stdout).contains("phanes_download_verified"));
}

#[test]
fn node_from_the_distribution_and_mirrors_with_their_own_checksums() {
    let script = render_ok(
        "devtools:
  node: {enabled: true, source: distro}
  go:
    enabled: true
    version: 1.26rc1
    url: http://127.0.0.1:8080/go
    sha256: {amd64: AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA, arm64: null}
  uv:
    enabled: true
    url: https://mirror.example.com/uv
",
        &[],
    );
    check_script(
        "devtools-mirror",
        &script,
        &[
            "'nodejs' 'npm'",
            "DEVTOOLS_GO_VERSION='1.26rc1'",
            "DEVTOOLS_GO_URL='http://127.0.0.1:8080/go'",
            "[amd64]='AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' [arm64]='')",
            "DEVTOOLS_UV_URL='https://mirror.example.com/uv'",
        ],
        &["nodesource", "'gpg'", "devtools.node_repository"],
    );
}

#[test]
fn bad_versions_checksums_urls_and_users_are_rejected_with_their_key() {
    let cases: &[(&str, &[&str], &[&str])] = &[
        (
            "devtools:\n  go: {enabled: true, version: \"1.25;id\"}\n",
            &[],
            &["devtools.go.version", "expected a Go version like 1.25.5"],
        ),
        (
            "devtools:\n  go: {enabled: true, version: go1.25.5}\n",
            &[],
            &["devtools.go.version"],
        ),
        (
            "devtools:\n  uv: {enabled: true, version: \"0.12\"}\n",
            &[],
            &["devtools.uv.version", "a version like 1.28.2"],
        ),
        (
            "devtools:\n  rust: {enabled: true, user: deploy, toolchain: latest}\n",
            &[],
            &["devtools.rust.toolchain", "a Rust toolchain"],
        ),
        (
            "devtools:\n  go:\n    sha256: {amd64: abc}\n",
            &[],
            &[
                "devtools.go.sha256.amd64",
                "expected a sha256 checksum: 64 hex digits",
            ],
        ),
        (
            "",
            &["devtools.uv.sha256.arm64=$(touch /tmp/pwned)"],
            &["devtools.uv.sha256.arm64", "64 hex digits"],
        ),
        (
            "devtools:\n  go: {url: \"https://go.dev/dl;reboot\"}\n",
            &[],
            &["devtools.go.url", "an http:// or https:// URL"],
        ),
        (
            "devtools:\n  node: {major: 12}\n",
            &[],
            &[
                "devtools.node.major",
                "12 is out of range: expected 18 to 40",
            ],
        ),
        (
            "devtools:\n  rust: {enabled: true, user: ghost}\n",
            &[],
            &[
                "devtools.rust.user: ghost is not in user.users",
                "add an entry `- name: ghost` under user.users",
            ],
        ),
        (
            "devtools:\n  rust: {enabled: true}\n",
            &[],
            &["devtools.rust.user: Rust is enabled, but for no user"],
        ),
        // A known version with the default version's checksums: the known ones are named.
        (
            "devtools:\n  go: {enabled: true, version: 1.24.6}\n",
            &[],
            &[
                "devtools.go.sha256: these are the checksums of go 1.25.5, but the version is 1.24.6",
                "amd64: bbca37cc395c974ffa4893ee35819ad23ebb27426df87af92e93a9ec66ef8712",
            ],
        ),
        // `--set` edits one key: the other architecture keeps the default version's checksum,
        // and the message says which one.
        (
            "devtools:\n  go: {enabled: true}\n",
            &[
                "devtools.go.version=1.24.6",
                "devtools.go.sha256.amd64=bbca37cc395c974ffa4893ee35819ad23ebb27426df87af92e93a9ec66ef8712",
            ],
            &["devtools.go.sha256: arm64 is the checksum of go 1.25.5, but the version is 1.24.6"],
        ),
        // An unknown version with the default checksums, then with none at all.
        (
            "devtools:\n  uv: {enabled: true, version: 0.13.0}\n",
            &[],
            &[
                "devtools.uv.sha256: these are the checksums of uv 0.12.1, but the version is 0.13.0",
            ],
        ),
        (
            "devtools:\n  rust:\n    enabled: true\n    user: deploy\n    rustup_version: 1.29.0\n    sha256: {amd64: null, arm64: null}\n",
            &[],
            &[
                "devtools.rust.sha256: no checksum for rustup-init 1.29.0: phanes downloads nothing unverified",
                "set devtools.rust.sha256.amd64 and .arm64",
            ],
        ),
        (
            "devtools:\n  node:\n    source: distro\n    repository: {url: https://mirror.example.com/node}\n",
            &[],
            &["devtools.node.repository is only used with source: vendor"],
        ),
        (
            "devtools:\n  go: {enabled: true, verison: 1.25.5}\n",
            &[],
            &["verison", "version"],
        ),
    ];
    for (yaml, sets, wanted) in cases {
        let err = render_err(yaml, sets);
        for want in *wanted {
            assert!(
                err.contains(want),
                "{yaml}{sets:?}: missing {want:?} in\n{err}"
            );
        }
    }
    // A runtime that is off is not checked for checksums (the defaults stay usable).
    render_ok("devtools:\n  go: {version: 1.24.6}\n", &[]);
}

/// A config's `sha256` map replaces the default one as a whole: written with a new version and
/// only the amd64 checksum (an amd64-only fleet), it renders, and arm64 has no checksum left
/// (the step would refuse to download there) instead of the default version's.
#[test]
fn a_checksum_map_in_the_config_replaces_the_default_one() {
    let amd64 = "bbca37cc395c974ffa4893ee35819ad23ebb27426df87af92e93a9ec66ef8712";
    let setup = render_ok(
        &format!(
            "devtools:\n  go:\n    enabled: true\n    version: 1.24.6\n    sha256: {{amd64: {amd64}}}\n"
        ),
        &[],
    );
    assert!(
        setup.contains(amd64),
        "the configured checksum is in the bundle"
    );
    for (version, amd64, arm64) in phanes::modules::devtools::GO_RELEASES {
        if *version != "1.24.6" {
            assert!(
                !setup.contains(amd64) && !setup.contains(arm64),
                "go {version}'s checksums stay out"
            );
        }
    }
}

#[test]
fn explain_devtools_lists_the_runtimes_and_their_pins() {
    let out = phanes().args(["explain", "devtools"]).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for want in [
        "devtools.go.version",
        "devtools.go.sha256.amd64",
        "devtools.node.major",
        "devtools.rust.user",
        "devtools.uv.url",
        "6F71F525282841EEDAF851B42F59B5F99B1BE0B4",
    ] {
        assert!(text.contains(want), "missing {want:?}\n{text}");
    }
}
