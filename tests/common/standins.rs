//! Stand-ins for the devtools downloads: tarballs laid out as the real Go and uv releases, with
//! tiny shell scripts for binaries that print their version, served by [`super::server`]. Used by
//! the host-side sandbox (tests/devtools_runtime.rs) and the booted VM (tests/vm/app_profiles.rs).

use super::server::Server;
use super::sha256;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

/// Writes `files` (path, content; executable when the content starts with #!) under a fresh
/// folder and packs them into `tarball`. Returns its sha256.
pub fn make_tarball(scratch: &Path, tarball: &Path, files: &[(&str, &str)]) -> String {
    let tree = scratch.join(format!(
        "tree-{}",
        tarball.file_name().unwrap().to_string_lossy()
    ));
    let _ = fs::remove_dir_all(&tree);
    for (path, content) in files {
        let file = tree.join(path);
        fs::create_dir_all(file.parent().unwrap()).unwrap();
        fs::write(&file, content).unwrap();
        let mode = if content.starts_with("#!") {
            0o755
        } else {
            0o644
        };
        fs::set_permissions(&file, fs::Permissions::from_mode(mode)).unwrap();
    }
    fs::create_dir_all(tarball.parent().unwrap()).unwrap();
    let status = Command::new("tar")
        .arg("-czf")
        .arg(tarball)
        .arg("-C")
        .arg(&tree)
        .arg(".")
        .status()
        .unwrap();
    assert!(status.success());
    sha256(tarball)
}

/// A stand-in Go release `version`, served for both architectures; returns its sha256.
pub fn go_release(server: &Server, scratch: &Path, version: &str) -> String {
    let files = [
        (
            "go/VERSION",
            format!("go{version}\ntime 2025-12-02T00:00:00Z\n"),
        ),
        (
            "go/bin/go",
            format!("#!/bin/sh\necho \"go version go{version} linux/amd64\"\n"),
        ),
        ("go/src/only-in-this-release", version.to_string()),
    ];
    let files: Vec<(&str, &str)> = files.iter().map(|(p, c)| (*p, c.as_str())).collect();
    let first = server
        .root
        .join(format!("go/go{version}.linux-amd64.tar.gz"));
    let sum = make_tarball(scratch, &first, &files);
    fs::copy(
        &first,
        server
            .root
            .join(format!("go/go{version}.linux-arm64.tar.gz")),
    )
    .unwrap();
    sum
}
/// A stand-in uv release `version` (`uv --version` prints `uv VERSION (stand-in)`), laid out as
/// the real `uv-<triple>.tar.gz` (folder `uv-<triple>` holding uv and uvx), served for both
/// architectures under `uv/VERSION/`; returns the sha256 of `want`'s tarball.
pub fn uv_release(server: &Server, scratch: &Path, version: &str, want: &str) -> String {
    let mut sum = String::new();
    for triple in ["x86_64-unknown-linux-gnu", "aarch64-unknown-linux-gnu"] {
        let uv = format!("#!/bin/sh\necho \"uv {version} (stand-in)\"\n");
        let uvx = "#!/bin/sh\necho uvx\n".to_string();
        let top = format!("uv-{triple}");
        let files = [(format!("{top}/uv"), uv), (format!("{top}/uvx"), uvx)];
        let files: Vec<(&str, &str)> = files
            .iter()
            .map(|(p, c)| (p.as_str(), c.as_str()))
            .collect();
        let tarball = server.root.join(format!("uv/{version}/uv-{triple}.tar.gz"));
        let got = make_tarball(scratch, &tarball, &files);
        if triple == want {
            sum = got;
        }
    }
    sum
}
