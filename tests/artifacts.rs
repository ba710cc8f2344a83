//! Every artifact of every built-in profile, checked by the tools that consume it: bash and
//! shellcheck for setup.sh, cloud-init's schema for user-data, Packer for the fragment. Plus
//! reproducibility, error reporting and what happens to hostile input.

mod common;

use common::{FULL_CONFIG, output_ok, phanes, render_to, temp_dir};
use std::fs;
use std::path::Path;
use std::process::Command;

/// Runs a validator, failing with its install command when it is missing.
fn validator(program: &str, package: &str) -> Command {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .unwrap();
    assert!(
        found.status.success(),
        "{program} is missing: install it with `apt-get install {package}`"
    );
    Command::new(program)
}

fn assert_ok(command: &mut Command, what: &str) {
    let out = command.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Keys cloud-init 22.4's schema accepts silently even when misspelt, so check them ourselves.
const CLOUD_CONFIG_KEYS: &[&str] = &["write_files", "runcmd", "preserve_hostname"];

fn validate_outputs(dir: &Path) {
    let setup = dir.join("setup.sh");
    assert_ok(
        Command::new("bash").arg("-n").arg(&setup),
        "bash -n setup.sh",
    );
    assert_ok(
        validator("shellcheck", "shellcheck")
            .args(["-s", "bash"])
            .arg(&setup),
        "shellcheck setup.sh",
    );

    let user_data = dir.join("user-data.yaml");
    let text = fs::read_to_string(&user_data).unwrap();
    assert!(
        text.starts_with("#cloud-config\n"),
        "user-data must start with #cloud-config"
    );
    let doc: serde_norway::Value = serde_norway::from_str(&text).unwrap();
    for key in doc.as_mapping().unwrap().keys() {
        let key = key.as_str().unwrap();
        assert!(
            CLOUD_CONFIG_KEYS.contains(&key),
            "unexpected top-level key {key} in user-data"
        );
    }
    assert_ok(
        validator("cloud-init", "cloud-init")
            .args(["schema", "--config-file"])
            .arg(&user_data),
        "cloud-init schema",
    );

    // The fragment inside a wrapper with a null source, so validate checks every provisioner.
    let packer = temp_dir("packer");
    fs::copy(
        dir.join("packer/phanes.pkr.hcl"),
        packer.join("phanes.pkr.hcl"),
    )
    .unwrap();
    fs::copy(dir.join("packer/setup.sh"), packer.join("setup.sh")).unwrap();
    fs::write(
        packer.join("check.pkr.hcl"),
        "source \"null\" \"check\" {\n  communicator = \"none\"\n}\n",
    )
    .unwrap();
    assert_ok(
        validator("packer", "packer")
            .arg("validate")
            .arg(".")
            .current_dir(&packer),
        "packer validate",
    );
    assert_ok(
        Command::new("packer")
            .args(["fmt", "-check", "."])
            .current_dir(&packer),
        "packer fmt -check",
    );
    fs::remove_dir_all(packer).unwrap();
}

#[test]
fn every_built_in_profile_passes_the_real_validators() {
    for (profile, _) in phanes::profile::BUILT_IN {
        for config in [None, Some(FULL_CONFIG)] {
            let dir = temp_dir(&format!("validators-{profile}"));
            render_to(
                &dir,
                &["--profile", profile, "--packer-source", "null.check"],
                config,
            );
            validate_outputs(&dir);
            fs::remove_dir_all(dir).unwrap();
        }
    }
}

#[test]
fn rendering_twice_gives_identical_artifacts() {
    let (a, b) = (temp_dir("repro-a"), temp_dir("repro-b"));
    render_to(&a, &["--profile", "minimal"], Some(FULL_CONFIG));
    render_to(&b, &["--profile", "minimal"], Some(FULL_CONFIG));
    let sums = fs::read_to_string(a.join("SHA256SUMS")).unwrap();
    assert_eq!(sums, fs::read_to_string(b.join("SHA256SUMS")).unwrap());
    for name in [
        "bundle.tar.gz",
        "user-data.yaml",
        "setup.sh",
        "manifest.json",
    ] {
        assert!(
            sums.contains(&format!("  {name}\n")),
            "SHA256SUMS lists {name}"
        );
        assert_eq!(
            fs::read(a.join(name)).unwrap(),
            fs::read(b.join(name)).unwrap(),
            "{name} differs"
        );
    }
    assert_ok(
        Command::new("sha256sum")
            .args(["-c", "--quiet", "SHA256SUMS"])
            .current_dir(&a),
        "sha256sum -c",
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(a.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["profile"], "minimal");
    assert_eq!(
        manifest["modules"],
        serde_json::json!(["baseline", "user", "security", "swap", "updates"])
    );
    let listing = Command::new("tar")
        .args(["-tzvf"])
        .arg(a.join("bundle.tar.gz"))
        .output()
        .unwrap();
    let listing = String::from_utf8(listing.stdout).unwrap();
    assert!(
        listing.contains("phanes/setup.sh") && listing.contains("phanes/modules/01-baseline.sh"),
        "{listing}"
    );
    assert!(
        listing.lines().all(|l| l.contains("1970-01-01")),
        "fixed mtimes:\n{listing}"
    );
    fs::remove_dir_all(a).unwrap();
    fs::remove_dir_all(b).unwrap();
}

#[test]
fn render_without_config_uses_the_embedded_defaults() {
    let dir = temp_dir("defaults");
    let script = output_ok(
        phanes()
            .args(["render", "--profile", "minimal"])
            .current_dir(&dir),
    );
    assert!(script.starts_with("#!/usr/bin/env bash\n"));
    assert!(
        script.trim_end().ends_with("main \"$@\""),
        "main must be the last line"
    );
    assert!(script.contains("phanes_step baseline.timezone 'Time zone is Etc/UTC'"));
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_failed_render_leaves_no_partial_output() {
    let dir = temp_dir("partial");
    let out = dir.join("out");
    let status = phanes()
        .args([
            "render",
            "--profile",
            "minimal",
            "--set",
            "swap.size=1M",
            "--out",
        ])
        .arg(&out)
        .current_dir(&dir)
        .output()
        .unwrap();
    assert_eq!(status.status.code(), Some(1));
    assert!(
        !out.exists(),
        "nothing may be written when the input is invalid"
    );
    // Over a provider's size limit: also an error before anything is written.
    let status = phanes()
        .args([
            "render",
            "--profile",
            "minimal",
            "--provider",
            "aws",
            "--out",
        ])
        .arg(&out)
        .current_dir(&dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&status.stderr);
    if !status.status.success() {
        assert!(
            stderr.contains("over the AWS limit of 16384 bytes"),
            "{stderr}"
        );
        assert!(!out.exists());
    }
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn config_errors_name_the_key_position_and_fix() {
    let dir = temp_dir("errors");
    let cases: &[(&str, &[&str], &str)] = &[
        (
            "baseline:\n  timezon: Etc/UTC\n",
            &[],
            "phanes.yaml:2:3: baseline: unknown field `timezon`",
        ),
        (
            "baseline:\n  timezon: Etc/UTC\n",
            &[],
            "help: did you mean `timezone`?",
        ),
        (
            "swap:\n  swappiness: high\n",
            &[],
            "phanes.yaml:2:15: swap.swappiness: invalid type: string \"high\", expected i64",
        ),
        (
            "swap:\n  swappiness: 201\n",
            &[],
            "swap.swappiness: 201 is out of range: expected 0 to 200",
        ),
        (
            "user:\n  users:\n    - name: Bad.Name\n",
            &[],
            "phanes.yaml:3:13: user.users[0].name: invalid value \"Bad.Name\"",
        ),
        (
            "user:\n  users:\n    - name: ok\n      sudo: nopassword\n",
            &[],
            "help: did you mean `nopasswd`?",
        ),
        (
            "",
            &["--set", "swap.size"],
            "--set swap.size: expected KEY=VALUE",
        ),
        (
            "",
            &["--set", "swap.sizee=2G"],
            "--set swap.sizee=2G: swap: unknown field `sizee`",
        ),
        // Not a mapping, even with a tag inside that alone would not resolve.
        (
            "- !!int }\n",
            &[],
            "phanes.yaml:1:1: the config must be a mapping of module names to their options (such as `baseline:`), found sequence",
        ),
        // serde's Rust struct names do not reach the user.
        (
            "baseline: 5\n",
            &[],
            "phanes.yaml:1:11: baseline: invalid type: integer `5`, expected a mapping of options (`key: value` lines)",
        ),
        (
            "user:\n  users:\n    - 5\n",
            &[],
            "user.users[0]: invalid type: integer `5`, expected a mapping of options",
        ),
        (
            "",
            &["--profile", "listy"],
            "profiles/listy.yaml:1:1: invalid type: sequence, expected a profile: a mapping with name, description and modules",
        ),
        ("", &["--profile", "webb"], "unknown profile \"webb\""),
        (
            "",
            &["--modules", "swapp"],
            "unknown module \"swapp\" (did you mean \"swap\"?)",
        ),
    ];
    fs::create_dir_all(dir.join("profiles")).unwrap();
    fs::write(dir.join("profiles/listy.yaml"), "- a\n- b\n").unwrap();
    for (config, args, expected) in cases {
        fs::write(dir.join("phanes.yaml"), config).unwrap();
        let out = phanes()
            .arg("validate")
            .args(*args)
            .current_dir(&dir)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{config:?} {args:?}: {stderr}");
        assert!(
            stderr.contains(expected),
            "{config:?} {args:?}: expected {expected:?} in:\n{stderr}"
        );
    }
    fs::remove_dir_all(dir).unwrap();
}

/// Text that would run a command, end a quote or add a YAML key if pasted unescaped.
const HOSTILE: &[&str] = &[
    "it's",
    "$(touch /tmp/phanes-pwned)",
    "`touch /tmp/phanes-pwned`",
    "a\nb",
    "key: value",
    "# comment",
    "\"",
    "${x}",
];

#[test]
fn hostile_strings_are_rejected_or_inert() {
    let dir = temp_dir("hostile");
    let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGx2dGVzdGtleWJsb2I";
    for hostile in HOSTILE {
        // Shaped fields reject it outright.
        for field in [
            "baseline.hostname",
            "baseline.timezone",
            "user.users.0.name",
            "user.users.0.shell",
            "swap.path",
        ] {
            let config = "user:\n  users:\n    - name: deploy\n";
            fs::write(dir.join("phanes.yaml"), config).unwrap();
            let value = serde_json::to_string(hostile).unwrap();
            let out = phanes()
                .args(["validate", "--set", &format!("{field}={value}")])
                .current_dir(&dir)
                .output()
                .unwrap();
            assert_eq!(
                out.status.code(),
                Some(1),
                "{field}={hostile:?} must be rejected"
            );
        }
        // A key comment is free text: it must come out single-quoted in bash.
        if hostile.contains('\n') {
            continue;
        }
        let config = format!(
            "user:\n  users:\n    - name: deploy\n      ssh_keys: [{}]\n",
            serde_json::to_string(&format!("{key} {hostile}")).unwrap()
        );
        fs::write(dir.join("phanes.yaml"), &config).unwrap();
        output_ok(phanes().args(["render", "--out", "out"]).current_dir(&dir));
        let script = fs::read_to_string(dir.join("out/setup.sh")).unwrap();
        let quoted = phanes::render::quote(&format!("{key} {hostile}"));
        assert!(
            script.contains(&quoted),
            "{hostile:?} must appear only single-quoted"
        );
        assert_ok(
            Command::new("bash").arg("-n").arg(dir.join("out/setup.sh")),
            "bash -n",
        );
        let user_data: serde_norway::Value =
            serde_norway::from_str(&fs::read_to_string(dir.join("out/user-data.yaml")).unwrap())
                .unwrap();
        assert_eq!(
            user_data.as_mapping().unwrap().len(),
            2,
            "no key may be added to user-data"
        );
    }
    // Newlines in a key are refused: authorized_keys is one key per line.
    let config = format!(
        "user:\n  users:\n    - name: deploy\n      ssh_keys: [\"{key} a\\nssh-rsa AAAA\"]\n"
    );
    fs::write(dir.join("phanes.yaml"), config).unwrap();
    let out = phanes().arg("validate").current_dir(&dir).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    // A user profile's description ends up in comments: it cannot break out of them.
    fs::create_dir_all(dir.join("profiles")).unwrap();
    fs::write(
        dir.join("profiles/evil.yaml"),
        "name: evil\ndescription: \"x\\ntouch /tmp/phanes-pwned\\n\"\nextends: minimal\n",
    )
    .unwrap();
    fs::write(dir.join("phanes.yaml"), "").unwrap();
    output_ok(
        phanes()
            .args(["render", "--profile", "evil", "--out", "evil"])
            .current_dir(&dir),
    );
    let script = fs::read_to_string(dir.join("evil/setup.sh")).unwrap();
    assert!(
        !script.lines().any(|l| l.starts_with("touch")),
        "a description must stay inside its comment"
    );
    let hcl = fs::read_to_string(dir.join("evil/packer/phanes.pkr.hcl")).unwrap();
    assert!(!hcl.lines().any(|l| l.starts_with("touch")));
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn plan_lists_the_ordered_steps_with_configured_values() {
    let dir = temp_dir("plan");
    fs::write(dir.join("phanes.yaml"), FULL_CONFIG).unwrap();
    let stdout = output_ok(
        phanes()
            .args(["plan", "--profile", "minimal"])
            .current_dir(&dir),
    );
    let baseline = stdout.find("baseline.packages").expect("baseline steps");
    let user = stdout.find("user.deploy.keys").expect("user steps");
    let swap = stdout.find("swap.file").expect("swap steps");
    assert!(baseline < user && user < swap, "{stdout}");
    assert!(stdout.contains("Host name is web1"), "{stdout}");
    assert!(
        stdout.contains("Swap file /swapfile of 512M is active"),
        "{stdout}"
    );
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn explain_documents_every_option_with_its_default_and_schema_covers_every_module() {
    let schema = phanes().arg("schema").output().unwrap();
    assert!(schema.status.success());
    let schema: serde_json::Value = serde_json::from_slice(&schema.stdout).unwrap();
    for module in phanes::modules::ALL {
        assert!(
            schema["properties"].get(module.name).is_some(),
            "schema lacks {}",
            module.name
        );
        let out = phanes().args(["explain", module.name]).output().unwrap();
        let page = String::from_utf8(out.stdout).unwrap();
        assert!(
            out.status.success() && page.starts_with(&format!("{} — ", module.name)),
            "{page}"
        );
        let defaults = serde_json::to_value(phanes::config::Config::default()).unwrap();
        let mut keys: Vec<String> = Vec::new();
        collect_leaf_keys(&defaults[module.name], module.name, &mut keys);
        for key in keys {
            assert!(
                page.contains(&format!("  {key}  (")),
                "explain {} does not document {key}:\n{page}",
                module.name
            );
        }
    }
    let page =
        String::from_utf8(phanes().args(["explain", "swap"]).output().unwrap().stdout).unwrap();
    assert!(
        page.contains("swap.size  (integer | string; default: 1G)"),
        "{page}"
    );
    assert!(
        page.contains("swap.file                    Swap file /swapfile of 1G is active"),
        "{page}"
    );
    let out = phanes().args(["explain", "swapp"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("did you mean \"swap\"?"));
}

/// Dotted paths of every non-object value in a defaults tree.
fn collect_leaf_keys(value: &serde_json::Value, prefix: &str, keys: &mut Vec<String>) {
    match value.as_object() {
        Some(map) => map
            .iter()
            .for_each(|(k, v)| collect_leaf_keys(v, &format!("{prefix}.{k}"), keys)),
        None => keys.push(prefix.to_string()),
    }
}

/// What bash defines after sourcing `code` (the runtime only defines; nothing runs): its
/// functions (`declare -f`) and the phanes variables.
fn bash_definitions(code: &str) -> String {
    let (functions, variables) = bash_defines(code);
    let variables: Vec<&str> = variables
        .lines()
        .filter(|l| l.contains(" PHANES") || l.contains(" _PHANES"))
        .collect();
    format!("{functions}{}", variables.join("\n"))
}

/// Sources `code` in a clean bash and returns (`declare -f`, `declare -p` without bash's own
/// changing variables).
/// The attributes and values (sorted) of the variables in `declare -p` output `of` whose names
/// `other` (the same kind of output) does not have.
fn renamed_values(of: &str, other: &str) -> Vec<(String, String)> {
    // `declare -a NAME=(...)`; a value can span lines, so entries start at "\ndeclare ".
    let entries = |text: &str| -> Vec<(String, String, String)> {
        text.split("\ndeclare ")
            .map(|e| {
                let e = e.trim_start_matches("declare ").trim_end();
                let (attributes, rest) = e.split_once(' ').unwrap();
                let (name, value) = rest.split_once('=').unwrap_or((rest, ""));
                (attributes.into(), name.into(), value.into())
            })
            .collect()
    };
    let others: std::collections::BTreeSet<String> =
        entries(other).into_iter().map(|(_, n, _)| n).collect();
    let mut values: Vec<(String, String)> = entries(of)
        .into_iter()
        .filter(|(_, name, _)| !others.contains(name))
        .map(|(attributes, _, value)| (attributes, value))
        .collect();
    values.sort();
    values
}

fn bash_defines(code: &str) -> (String, String) {
    let dir = temp_dir("definitions");
    fs::write(dir.join("code.sh"), code).unwrap();
    let script = "source ./code.sh; declare -f >functions; declare -p >variables";
    output_ok(
        Command::new("env")
            .args([
                "-i",
                "PATH=/usr/bin:/bin",
                "bash",
                "--norc",
                "--noprofile",
                "-c",
                script,
            ])
            .current_dir(&dir),
    );
    let functions = fs::read_to_string(dir.join("functions")).unwrap();
    // Bash's own variables change from one shell to the next (SECONDS, RANDOM, BASH_*).
    let dynamic = [
        "_",
        "BASHPID",
        "EPOCHREALTIME",
        "EPOCHSECONDS",
        "LINENO",
        "RANDOM",
        "SECONDS",
        "SRANDOM",
        "PIPESTATUS",
        "FUNCNAME",
        "PPID",
        "SHLVL",
        "PWD",
        "OLDPWD",
    ];
    let variables = fs::read_to_string(dir.join("variables"))
        .unwrap()
        .lines()
        .filter(|l| {
            let name = l
                .split_whitespace()
                .nth(2)
                .and_then(|n| n.split('=').next())
                .unwrap_or("");
            !name.starts_with("BASH") && !dynamic.contains(&name)
        })
        .collect::<Vec<_>>()
        .join("\n");
    fs::remove_dir_all(dir).unwrap();
    (functions, variables)
}

#[test]
fn compacting_runtime_files_changes_no_definition() {
    for (name, text) in phanes::bundle::RUNTIME_FILES {
        let compact = phanes::bundle::shrink::compact(text);
        assert!(
            compact.len() < text.len(),
            "{name}: nothing compacted (is the lexer unsure of something in it?)"
        );
        assert_eq!(
            bash_definitions(text),
            bash_definitions(&compact),
            "{name}: compacting changed the code"
        );
    }
}

/// `declare -f` output split into functions: name → definition.
fn functions_of(declare_f: &str) -> std::collections::BTreeMap<String, String> {
    let mut out = std::collections::BTreeMap::new();
    let mut current: Option<(String, String)> = None;
    for line in declare_f.lines() {
        if let Some(name) = line.strip_suffix(" () ") {
            if let Some((n, body)) = current.take() {
                out.insert(n, body);
            }
            current = Some((name.to_string(), String::new()));
        }
        if let Some((_, body)) = current.as_mut() {
            body.push_str(line);
            body.push('\n');
        }
    }
    if let Some((n, body)) = current {
        out.insert(n, body);
    }
    out
}

/// The configs the shrinking proof runs on: every built-in profile with the defaults and with
/// [`FULL_CONFIG`], and minimal plus each module that is not in a built-in profile.
fn shrink_cases() -> Vec<(String, Option<&'static str>, Vec<String>)> {
    let mut cases = Vec::new();
    let mut covered = std::collections::BTreeSet::new();
    for (profile, _) in phanes::profile::BUILT_IN {
        for config in [None, Some(FULL_CONFIG)] {
            cases.push((profile.to_string(), config, vec![]));
        }
        let dir = temp_dir("shrink-cases");
        let c = compile_case(profile, None, &[], &dir);
        fs::remove_dir_all(dir).unwrap();
        covered.extend(c.modules.iter().map(|m| m.name));
    }
    for module in phanes::modules::ALL {
        if !covered.contains(module.name) {
            cases.push(("minimal".into(), None, vec![module.name.to_string()]));
        }
    }
    cases
}

fn compile_case(
    profile: &str,
    config: Option<&str>,
    modules: &[String],
    dir: &Path,
) -> phanes::compile::Compilation {
    let path = config.map(|text| {
        let path = dir.join("phanes.yaml");
        fs::write(&path, text).unwrap();
        path
    });
    let request = phanes::compile::Request {
        config: path,
        profile: Some(profile.to_string()),
        modules: modules.to_vec(),
        ..Default::default()
    };
    phanes::compile::compile(&request).unwrap_or_else(|e| panic!("{profile} + {modules:?}: {e:?}"))
}

/// The shipped bundle is the readable one compacted and without the functions nothing reaches:
/// bash defines the same variables, every function it keeps identically, every step, handler
/// and module entry point, and every function the bundle or any kept function names (directly,
/// or as `prefix$x`).
#[test]
fn shrinking_bundles_keeps_every_definition_that_is_reached() {
    for (profile, config, modules) in shrink_cases() {
        let case = format!("{profile} + {modules:?} (config: {})", config.is_some());
        let dir = temp_dir("shrink");
        let c = compile_case(&profile, config, &modules, &dir);
        let shipped = phanes::bundle::setup_sh(&c, &phanes::bundle::sections(&c).unwrap()).unwrap();
        let readable = phanes::bundle::readable_setup_sh(&c).unwrap();
        // The lexer was sure of every section (unsure, it leaves the text as it is).
        for section in phanes::bundle::readable_sections(&c).unwrap() {
            let compact = phanes::bundle::shrink::compact(&section.text);
            assert!(
                compact.len() < section.text.len(),
                "{case}: module {} was not compacted",
                section.module
            );
        }
        fs::remove_dir_all(dir).unwrap();
        let without_main = |s: &str| {
            s.strip_suffix("main \"$@\"\n")
                .unwrap_or_else(|| panic!("{case}: the bundle ends with main"))
                .to_string()
        };
        assert!(
            shipped.len() * 10 < readable.len() * 8,
            "{case}: shipped {} bytes, readable {}: less than 20% shrunk",
            shipped.len(),
            readable.len()
        );
        let (shipped_f, shipped_v) = bash_defines(&without_main(&shipped));
        let (readable_f, readable_v) = bash_defines(&without_main(&readable));
        assert_eq!(shipped_v, readable_v, "{case}: variables differ");
        let kept = functions_of(&shipped_f);
        let all = functions_of(&readable_f);
        for (name, body) in &kept {
            assert_eq!(Some(body), all.get(name), "{case}: {name} changed");
        }
        // The entry points the runtime calls by built names, and every name the shipped text
        // mentions anywhere (top-level code, strings, function bodies), are defined.
        let entry = |f: &str| {
            ["main", "phanes_register"].contains(&f)
                || ["phanes_module__", "handler__"]
                    .iter()
                    .any(|p| f.starts_with(p))
                || ["__check", "__apply", "__skip"]
                    .iter()
                    .any(|s| f.ends_with(s))
        };
        for name in all.keys().filter(|f| entry(f)) {
            assert!(kept.contains_key(name), "{case}: {name} was left out");
        }
        for word in shipped.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
            assert!(
                !all.contains_key(word) || kept.contains_key(word),
                "{case}: the bundle names {word}, which was left out"
            );
        }
        for (name, body) in &kept {
            let words: Vec<&str> = body
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .filter(|w| !w.is_empty())
                .collect();
            for word in &words {
                assert!(
                    !all.contains_key(*word) || kept.contains_key(*word),
                    "{case}: {name} names {word}, which was left out"
                );
            }
            for (i, _) in body.match_indices('$') {
                let prefix: String = body[..i]
                    .chars()
                    .rev()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect();
                if prefix.is_empty() {
                    continue;
                }
                for other in all.keys().filter(|f| f.starts_with(&prefix)) {
                    assert!(
                        kept.contains_key(other),
                        "{case}: {name} calls {prefix}$..., and {other} was left out"
                    );
                }
            }
        }
    }
}

/// Renders `profile` (with `config`) for `provider` into a fresh folder; the render itself
/// fails when the user-data is over the provider's limit.
fn render_for(profile: &str, config: Option<&str>, provider: &str) -> std::path::PathBuf {
    let dir = temp_dir(&format!("provider-{profile}-{provider}"));
    render_to(
        &dir,
        &[
            "--profile",
            profile,
            "--provider",
            provider,
            "--format",
            "cloud-init",
        ],
        config,
    );
    dir
}

/// Hetzner's 32 KiB with room to spare: with the defaults, at least 2 KiB left for the user's
/// own settings; with [`FULL_CONFIG`] (two users, locales, a host name) still under the limit
/// (the render fails when it is not).
#[test]
fn every_built_in_profile_fits_hetzner_with_room_to_spare() {
    for (profile, _) in phanes::profile::BUILT_IN {
        for config in [None, Some(FULL_CONFIG)] {
            let dir = render_for(profile, config, "hetzner");
            let size = fs::metadata(dir.join("user-data.yaml")).unwrap().len();
            let room = if config.is_some() { 0 } else { 2 * 1024 };
            assert!(
                size <= 32 * 1024 - room,
                "{profile} (config: {}): user-data is {size} bytes, less than {room} bytes under Hetzner's 32 KiB",
                config.is_some()
            );
            fs::remove_dir_all(dir).unwrap();
        }
    }
}

/// `--provider aws` writes user-data.yaml.gz: the whole `#cloud-config` gzip-compressed, which
/// cloud-init's own loader takes for a cloud-config, whose schema passes, and which carries
/// setup.sh byte for byte.
#[test]
fn aws_user_data_is_gzip_that_cloud_init_loads_as_cloud_config() {
    let dir = render_for("minimal", None, "aws");
    let gz = dir.join("user-data.yaml.gz");
    let size = fs::metadata(&gz).unwrap().len();
    assert!(
        size <= 16 * 1024,
        "minimal: {size} bytes, over AWS's 16 KiB"
    );
    assert!(
        !dir.join("user-data.yaml").exists(),
        "aws gets the compressed file only"
    );
    // Python's gzip module, then cloud-init's own loader (the one it runs at boot).
    let plain = dir.join("user-data.yaml");
    let python = "import gzip, sys; open(sys.argv[2], 'wb').write(gzip.open(sys.argv[1]).read())";
    assert_ok(
        Command::new("python3")
            .args(["-c", python])
            .arg(&gz)
            .arg(&plain),
        "python3 gzip",
    );
    let loader = "\
import sys
from cloudinit import user_data, util
data = open(sys.argv[1], 'rb').read()
parts = [p for p in user_data.UserDataProcessor({}).process(data).walk() if not p.is_multipart()]
assert [p.get_content_type() for p in parts] == ['text/cloud-config'], [p.get_content_type() for p in parts]
cfg = util.load_yaml(parts[0].get_payload(decode=True))
sys.stdout.write(cfg['write_files'][0]['content'])
";
    // cloud-init's modules live in the system Python, whatever python3 is first on PATH.
    let loaded = output_ok(
        validator("/usr/bin/python3", "cloud-init")
            .args(["-c", loader])
            .arg(&gz),
    );
    let shell = temp_dir("aws-shell");
    render_to(&shell, &["--profile", "minimal", "--format", "shell"], None);
    let c = compile_case("minimal", None, &[], &shell);
    assert_eq!(
        loaded,
        phanes::targets::cloud_init::aws_bundle(
            &c,
            &fs::read_to_string(shell.join("setup.sh")).unwrap()
        )
        .unwrap(),
        "the bundle in the AWS user-data is setup.sh minified"
    );
    assert_ok(
        validator("cloud-init", "cloud-init")
            .args(["schema", "--config-file"])
            .arg(&plain),
        "cloud-init schema (decompressed AWS user-data)",
    );
    fs::remove_dir_all(dir).unwrap();
    fs::remove_dir_all(shell).unwrap();
}

/// Issue 9's target for minimal holds with users of its own too ([`FULL_CONFIG`]: two users, one
/// with a password, two locales, a host name): AWS's 16 KiB. The minified bundle's shorter
/// module globals won it back after issue 8's runtime growth (16,410 bytes before them).
#[test]
fn minimal_with_users_fits_aws() {
    let dir = render_for("minimal", Some(FULL_CONFIG), "aws");
    fs::remove_dir_all(dir).unwrap();
}

/// Issue 9's AWS target with the bundle inside, not met: the web profile is over 16 KiB even with
/// the minified AWS bundle (17,957 bytes with the defaults); the bundle itself must shrink by
/// about 9%. With `--bundle-url` every built-in profile fits (tests/bundle_url.rs). Run with
/// `cargo test --release --test artifacts -- --ignored`.
#[test]
#[ignore = "issue 9: web with the bundle inside is over AWS's 16 KiB (--bundle-url fits)"]
fn web_fits_aws() {
    let dir = render_for("web", None, "aws");
    fs::remove_dir_all(dir).unwrap();
}

/// Runs `bundle` as `setup.sh` in a folder of its own (so `$0` reads the same) with `args`;
/// returns stdout and stderr.
fn run_bundle(bundle: &str, args: &[&str]) -> String {
    let dir = temp_dir("run-bundle");
    fs::write(dir.join("setup.sh"), bundle).unwrap();
    let out = Command::new("bash")
        .arg("setup.sh")
        .args(args)
        .current_dir(&dir)
        .output()
        .unwrap();
    fs::remove_dir_all(dir).unwrap();
    assert!(out.status.success(), "bash setup.sh {args:?} failed");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The AWS bundle (issue 9: 16 KiB) is setup.sh minified: smaller, no comments, no long
/// internal names, and the same program: bash -n passes, it defines as many functions and the
/// same public PHANES_* values, and `--list` (every step's check and apply function is looked
/// up when steps register), `--list --json`, `--help` and `--version` print the same.
#[test]
fn aws_bundle_runs_as_setup_sh() {
    for (profile, config, modules) in shrink_cases() {
        let case = format!("{profile} + {modules:?} (config: {})", config.is_some());
        let dir = temp_dir("aws-bundle");
        let c = compile_case(&profile, config, &modules, &dir);
        fs::remove_dir_all(dir).unwrap();
        let setup = phanes::bundle::setup_sh(&c, &phanes::bundle::sections(&c).unwrap()).unwrap();
        let aws = phanes::targets::cloud_init::aws_bundle(&c, &setup).unwrap();
        assert!(
            aws.len() * 10 < setup.len() * 9,
            "{case}: {} of {} bytes",
            aws.len(),
            setup.len()
        );
        assert!(aws.starts_with("#!/usr/bin/env bash\n"));
        // Comments go (lines of file content in quotes stay, "# Managed by phanes").
        for long in [
            "# phanes-setup, generated",
            "# shellcheck",
            "# --- module:",
            "# >>> ",
        ] {
            assert!(!aws.contains(long), "{case}: {long} is left");
        }
        let mut words = aws.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'));
        if let Some(word) = words.find(|w| w.starts_with("_phanes_") || w.starts_with("_PHANES_")) {
            panic!("{case}: {word} is left");
        }
        assert!(!aws.contains("phanes_step"), "{case}: phanes_step is left");
        for args in [
            &["--list"][..],
            &["--list", "--json"],
            &["--help"],
            &["--version"],
        ] {
            assert_eq!(
                run_bundle(&setup, args),
                run_bundle(&aws, args),
                "{case}: {args:?}"
            );
        }
        let without_main = |b: &str| b.strip_suffix("main \"$@\"\n").unwrap().to_string();
        let (functions, variables) = bash_defines(&without_main(&setup));
        let (aws_functions, aws_variables) = bash_defines(&without_main(&aws));
        assert_eq!(
            functions_of(&functions).len(),
            functions_of(&aws_functions).len(),
            "{case}: functions"
        );
        let public = |v: &str| -> Vec<String> {
            v.lines()
                .filter(|l| l.contains(" PHANES_"))
                .map(str::to_string)
                .collect()
        };
        assert_eq!(public(&variables), public(&aws_variables), "{case}");
        // Renamed variables keep their values: the variables only one bundle has (the old
        // names and the new ones) hold the same values with the same attributes.
        let (only_setup, only_aws) = (
            renamed_values(&variables, &aws_variables),
            renamed_values(&aws_variables, &variables),
        );
        assert!(!only_setup.is_empty(), "{case}: no variable was renamed");
        assert_eq!(only_setup, only_aws, "{case}: renamed variables' values");
        assert_ok(
            Command::new("bash").args(["-n", "-c", &aws]),
            &format!("{case}: bash -n"),
        );
    }
}
