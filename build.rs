//! Embeds the bash runtime: every `templates/runtime/*.sh`, in file-name order, so adding a
//! runtime file needs no code change. Also sets `PHANES_GIT_REV` for `phanes --version`.

use std::{env, fs, path::Path, process::Command};

fn main() {
    git_revision();
    let dir = Path::new("templates/runtime");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut files: Vec<String> = fs::read_dir(dir)
        .expect("templates/runtime exists")
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|name| name.ends_with(".sh"))
        .collect();
    files.sort();
    let mut code = String::from(
        "/// The runtime files, in the order they are concatenated.\npub const RUNTIME_FILES: &[(&str, &str)] = &[\n",
    );
    for name in &files {
        println!("cargo:rerun-if-changed={}/{name}", dir.display());
        code.push_str(&format!(
            "    ({name:?}, include_str!(concat!(env!(\"CARGO_MANIFEST_DIR\"), \"/templates/runtime/{name}\"))),\n"
        ));
    }
    code.push_str("];\n");
    let out = Path::new(&env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("runtime_files.rs");
    fs::write(out, code).expect("write runtime_files.rs");
}

/// Sets `PHANES_GIT_REV` to `git rev-parse --short HEAD`, or "unknown" when git is missing or
/// this is not a checkout (a crate tarball). Reruns when HEAD moves.
fn git_revision() {
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|out| out.status.success())
            .and_then(|out| String::from_utf8(out.stdout).ok())
            .map(|text| text.trim().to_string())
            .filter(|text| !text.is_empty())
    };
    let revision = git(&["rev-parse", "--short", "HEAD"]).unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=PHANES_GIT_REV={revision}");
    if let Some(git_dir) = git(&["rev-parse", "--git-dir"]) {
        // HEAD changes on checkout; logs/HEAD on every commit, reset or checkout.
        for file in ["HEAD", "logs/HEAD"] {
            let path = Path::new(&git_dir).join(file);
            if path.exists() {
                println!("cargo:rerun-if-changed={}", path.display());
            }
        }
    }
}
