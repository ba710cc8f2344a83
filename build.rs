//! Embeds the bash runtime: every `templates/runtime/*.sh`, in file-name order, so adding a
//! runtime file needs no code change.

use std::{env, fs, path::Path};

fn main() {
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
