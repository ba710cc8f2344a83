//! The command line as a user meets it: every command's output and exit code, including the
//! error kinds, the generated configs (`init`, config.yaml.example) against `validate` and the
//! JSON Schema, and the README's own walk-through.

mod common;

use common::temp_dir;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The phanes binary built for this test run, in a folder of the test's choosing.
fn phanes(dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_phanes"));
    command.current_dir(dir).env_remove("NO_COLOR");
    command
}

/// Runs phanes in `dir`; returns exit code, stdout and stderr.
fn run(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out: Output = phanes(dir).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs phanes and insists on exit code 0; returns stdout.
fn ok(dir: &Path, args: &[&str]) -> String {
    let (code, stdout, stderr) = run(dir, args);
    assert_eq!(code, 0, "phanes {args:?} failed:\n{stderr}");
    stdout
}

/// Runs phanes and insists on exit code `code`; returns stderr.
fn fails(dir: &Path, args: &[&str], code: i32) -> String {
    let (got, stdout, stderr) = run(dir, args);
    assert_eq!(
        got, code,
        "phanes {args:?}: stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    stderr
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn example_path() -> PathBuf {
    repo().join("config.yaml.example")
}

/// The JSON Schema phanes prints, compiled by an independent validator.
fn schema_validator(dir: &Path) -> jsonschema::Validator {
    let schema: Value = serde_json::from_str(&ok(dir, &["schema"])).expect("schema is JSON");
    jsonschema::validator_for(&schema).expect("phanes schema is a valid JSON Schema")
}

/// A YAML config as the JSON value an editor's schema check sees.
fn yaml_to_json(text: &str) -> Value {
    let yaml: serde_norway::Value = serde_norway::from_str(text).expect("valid YAML");
    serde_json::to_value(yaml).expect("YAML maps to JSON")
}

fn schema_errors(validator: &jsonschema::Validator, instance: &Value) -> Vec<String> {
    validator
        .iter_errors(instance)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

// ---------------------------------------------------------------- init

#[test]
fn init_writes_a_commented_starter_that_validates() {
    let dir = temp_dir("init");
    let (code, stdout, stderr) = run(&dir, &["init", "--profile", "minimal"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.is_empty(), "init writes to the file, not stdout");
    assert!(stderr.contains("wrote phanes.yaml"), "{stderr}");
    let text = std::fs::read_to_string(dir.join("phanes.yaml")).unwrap();
    assert!(text.contains("\nprofile: minimal\n"), "{text}");
    for section in ["baseline:", "user:", "security:", "swap:", "updates:"] {
        assert!(
            text.contains(&format!("\n{section}\n")),
            "{section} in\n{text}"
        );
    }
    // Defaults as values, docs as comments, optional values commented out.
    assert!(text.contains("  size: 1G\n"), "{text}");
    assert!(
        text.contains("  # Size of the swap file; changing it resizes the file"),
        "{text}"
    );
    assert!(text.contains("  # hostname: web1.example.com\n"), "{text}");
    // Quoted, so YAML 1.1 readers do not take it for `false`.
    assert!(text.contains("    permit_root_login: \"no\"\n"), "{text}");
    // It validates as written, from its own folder (phanes.yaml is the default config).
    let valid = ok(&dir, &["validate"]);
    assert_eq!(
        valid,
        "valid: profile minimal with modules baseline, user, security, swap, updates\n"
    );
    // And renders exactly like no config at all: every value is the default.
    let from_file = ok(&dir, &["render"]);
    let empty = temp_dir("init-empty");
    assert_eq!(
        from_file,
        ok(&empty, &["render", "--set", "profile=minimal"])
    );
}

#[test]
fn init_never_overwrites_without_force() {
    let dir = temp_dir("init-exists");
    std::fs::write(dir.join("phanes.yaml"), "swap:\n  size: 2G\n").unwrap();
    let stderr = fails(&dir, &["init"], 1);
    assert!(
        stderr.starts_with("error: phanes.yaml already exists; phanes init never overwrites"),
        "{stderr}"
    );
    assert!(stderr.contains("--force"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(dir.join("phanes.yaml")).unwrap(),
        "swap:\n  size: 2G\n"
    );
    ok(&dir, &["init", "--force"]);
    let text = std::fs::read_to_string(dir.join("phanes.yaml")).unwrap();
    assert!(text.contains("profile: minimal"), "{text}");
    // Only the named file: no temporary files left next to it.
    let names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["phanes.yaml"]);
}

#[test]
fn init_to_stdout_another_path_and_a_users_profile() {
    let dir = temp_dir("init-profile");
    let stdout = ok(&dir, &["init", "--output", "-"]);
    assert!(stdout.contains("profile: minimal"));
    assert!(!dir.join("phanes.yaml").exists());

    // A profile of the user's own, with config defaults: the starter shows the profile's
    // values and only its modules' sections.
    std::fs::create_dir_all(dir.join("conf/profiles")).unwrap();
    std::fs::write(
        dir.join("conf/profiles/small.yaml"),
        "name: small\ndescription: Swap only\nmodules: [swap]\nconfig:\n  swap:\n    size: 4G\n",
    )
    .unwrap();
    ok(
        &dir,
        &["init", "--profile", "small", "--output", "conf/web.yaml"],
    );
    let text = std::fs::read_to_string(dir.join("conf/web.yaml")).unwrap();
    assert!(text.contains("profile: small\n"), "{text}");
    assert!(
        text.contains("\nswap:\n  # Where the swap file lives.\n"),
        "{text}"
    );
    assert!(text.contains("  size: 4G\n"), "{text}");
    assert!(!text.contains("\nbaseline:"), "{text}");
    assert_eq!(
        ok(&dir, &["validate", "--config", "conf/web.yaml"]),
        "valid: profile small with modules swap\n"
    );
}

#[test]
fn init_errors_unknown_profile_and_conflicting_flags() {
    let dir = temp_dir("init-errors");
    let stderr = fails(&dir, &["init", "--profile", "minimla"], 1);
    assert!(stderr.contains("minimla"), "{stderr}");
    assert!(stderr.contains("did you mean \"minimal\"?"), "{stderr}");
    assert!(
        !dir.join("phanes.yaml").exists(),
        "nothing written on error"
    );
    let stderr = fails(&dir, &["init", "--all", "--profile", "minimal"], 2);
    assert!(stderr.contains("cannot be used with"), "{stderr}");
    std::fs::write(dir.join("a-file"), "").unwrap();
    let stderr = fails(&dir, &["init", "--output", "a-file/phanes.yaml"], 1);
    assert!(stderr.starts_with("error: creating a-file"), "{stderr}");
}

// ---------------------------------------------------------------- config.yaml.example

const REGENERATE: &str = "cargo run -- init --all --output - > config.yaml.example";

#[test]
fn config_example_is_up_to_date() {
    let generated = ok(&repo(), &["init", "--all", "--output", "-"]);
    let committed = std::fs::read_to_string(example_path()).unwrap_or_default();
    if generated != committed {
        let first = generated
            .lines()
            .zip(committed.lines())
            .position(|(a, b)| a != b)
            .map(|n| n + 1)
            .unwrap_or_else(|| generated.lines().count().min(committed.lines().count()) + 1);
        panic!(
            "config.yaml.example is out of date (first difference at line {first}); regenerate it with:\n    {REGENERATE}"
        );
    }
}

#[test]
fn config_example_validates() {
    let dir = temp_dir("example-validate");
    let example = example_path();
    let stdout = ok(&dir, &["validate", "--config", example.to_str().unwrap()]);
    assert!(stdout.starts_with("valid: profile minimal"), "{stdout}");
}

/// Every option in the schema, as (indent, name) of the line that sets it.
fn schema_leaves(
    root: &Value,
    schema: &Value,
    depth: usize,
    out: &mut Vec<(usize, String, String)>,
    path: &str,
) {
    let resolve = |s: &Value| -> Value {
        match s.get("$ref").and_then(Value::as_str) {
            Some(r) => root["$defs"][r.trim_start_matches("#/$defs/")].clone(),
            None => s.clone(),
        }
    };
    let target = resolve(schema);
    let Some(properties) = target.get("properties").and_then(Value::as_object) else {
        return;
    };
    for (name, property) in properties {
        let full = format!("{path}.{name}");
        out.push((depth * 2, name.clone(), full.clone()));
        schema_leaves(root, property, depth + 1, out, &full);
        if let Some(items) = property.get("items") {
            // Fields of list entries appear in the commented example entry.
            let item = resolve(items);
            if let Some(fields) = item.get("properties").and_then(Value::as_object) {
                for field in fields.keys() {
                    out.push((usize::MAX, field.clone(), format!("{full}[].{field}")));
                }
            }
        }
    }
}

#[test]
fn config_example_has_every_option_of_the_schema_with_a_doc() {
    let dir = temp_dir("example-options");
    let schema: Value = serde_json::from_str(&ok(&dir, &["schema"])).unwrap();
    let text = std::fs::read_to_string(example_path()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut leaves = Vec::new();
    schema_leaves(&schema, &schema, 0, &mut leaves, "");
    assert!(leaves.len() > 25, "{leaves:?}");
    let mut missing = Vec::new();
    for (indent, name, path) in &leaves {
        let found = lines.iter().position(|line| {
            let body = line.trim_start();
            let at = line.len() - body.len();
            let body = body.strip_prefix("# ").unwrap_or(body);
            let body = body
                .trim_start()
                .strip_prefix("- ")
                .unwrap_or(body.trim_start());
            (*indent == usize::MAX || at == *indent) && (body.starts_with(&format!("{name}:")))
        });
        match found {
            None => missing.push(path.clone()),
            // Options are documented on the line above (list entry fields may have none).
            Some(n) if *indent != usize::MAX && path.matches('.').count() > 1 => {
                assert!(
                    lines[n - 1].trim_start().starts_with('#'),
                    "{path} has no explanation above it"
                );
            }
            Some(_) => {}
        }
    }
    assert!(
        missing.is_empty(),
        "config.yaml.example lacks {missing:?}; regenerate it with:\n    {REGENERATE}"
    );
}

#[test]
fn config_example_commented_entries_are_valid_once_uncommented() {
    let text = std::fs::read_to_string(example_path()).unwrap();
    let mut out = Vec::new();
    let mut in_entry = false;
    for line in text.lines() {
        if line == "  users: []" {
            continue;
        }
        if line == "  # users:" {
            in_entry = true;
        }
        if in_entry && let Some(rest) = line.strip_prefix("  # ") {
            out.push(format!("  {rest}"));
            continue;
        }
        in_entry = false;
        out.push(line.to_string());
    }
    let uncommented = out.join("\n") + "\n";
    assert!(uncommented.contains("\n  users:\n"), "{uncommented}");
    // Every optional value commented out in the example, uncommented too.
    let uncommented = uncommented.replace("  # hostname:", "  hostname:");
    let dir = temp_dir("example-uncommented");
    std::fs::write(dir.join("phanes.yaml"), &uncommented).unwrap();
    ok(&dir, &["validate"]);
    let setup = ok(&dir, &["render"]);
    assert!(
        setup.contains("deploy"),
        "the example user reaches the bundle"
    );
    assert!(setup.contains("web1.example.com"));
}

// ---------------------------------------------------------------- schema

#[test]
fn schema_accepts_the_example_and_the_starter_and_rejects_wrong_types() {
    let dir = temp_dir("schema");
    let validator = schema_validator(&dir);
    let example = yaml_to_json(&std::fs::read_to_string(example_path()).unwrap());
    assert_eq!(schema_errors(&validator, &example), Vec::<String>::new());
    let starter = yaml_to_json(&ok(&dir, &["init", "--output", "-"]));
    assert_eq!(schema_errors(&validator, &starter), Vec::<String>::new());

    let mut wrong = example.clone();
    wrong["swap"]["swappiness"] = Value::String("lots".into());
    let errors = schema_errors(&validator, &wrong);
    assert!(
        errors.iter().any(|e| e.starts_with("/swap/swappiness")),
        "{errors:?}"
    );
    let mut wrong = example.clone();
    wrong["security"]["ssh"]["port"] = Value::from(70000);
    assert!(!validator.is_valid(&wrong), "port out of range");
    let mut wrong = example.clone();
    wrong["security"]["ssh"]["permit_root_login"] = Value::String("yes".into());
    assert!(
        !validator.is_valid(&wrong),
        "`yes` is not a PermitRootLogin phanes allows"
    );
    let mut wrong = example;
    wrong["swap"]["sise"] = Value::String("1G".into());
    assert!(!validator.is_valid(&wrong), "unknown keys are rejected");
    // phanes itself agrees about the wrong type.
    std::fs::write(dir.join("phanes.yaml"), "swap:\n  swappiness: lots\n").unwrap();
    let stderr = fails(&dir, &["validate"], 1);
    assert!(stderr.contains("swap.swappiness: invalid type"), "{stderr}");
}

// ---------------------------------------------------------------- completions and version

#[test]
fn completions_for_each_shell() {
    let dir = temp_dir("completions");
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef phanes"),
        ("fish", "complete -c phanes"),
    ] {
        let script = ok(&dir, &["completions", shell]);
        assert!(script.contains(marker), "{shell}: {script}");
        for command in ["render", "init", "explain", "completions"] {
            assert!(script.contains(command), "{shell} lacks {command}");
        }
    }
    let stderr = fails(&dir, &["completions", "tcsh"], 2);
    assert!(stderr.contains("invalid value 'tcsh'"), "{stderr}");
}

#[test]
fn version_names_the_git_revision() {
    let dir = temp_dir("version");
    let stdout = ok(&dir, &["--version"]);
    let expected = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(repo())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    assert_eq!(
        stdout,
        format!("phanes {} (git {expected})\n", env!("CARGO_PKG_VERSION"))
    );
}

// ---------------------------------------------------------------- the other commands

#[test]
fn help_documents_exit_codes_and_every_command() {
    let dir = temp_dir("help");
    let help = ok(&dir, &["--help"]);
    assert!(help.contains("Exit codes: 0 success; 1"), "{help}");
    for command in [
        "render",
        "list",
        "plan",
        "validate",
        "explain",
        "schema",
        "init",
        "completions",
    ] {
        assert!(
            help.contains(&format!("  {command} ")),
            "{command} in {help}"
        );
    }
    let stderr = fails(&dir, &["rendr"], 2);
    assert!(
        stderr.contains("unrecognized subcommand 'rendr'"),
        "{stderr}"
    );
    assert!(
        stderr.contains("render"),
        "clap suggests the command: {stderr}"
    );
    fails(&dir, &[], 2);
}

#[test]
fn render_list_plan_validate_explain_schema() {
    let dir = temp_dir("commands");
    let setup = ok(&dir, &["render", "--profile", "minimal"]);
    assert!(setup.starts_with("#!/usr/bin/env bash\n"));
    assert!(setup.trim_end().ends_with("main \"$@\""));

    let user_data = ok(
        &dir,
        &["render", "--format", "cloud-init", "--provider", "hetzner"],
    );
    assert!(user_data.starts_with("#cloud-config\n"));
    assert!(user_data.len() <= 32 * 1024);

    let (code, stdout, stderr) = run(&dir, &["render", "--out", "out/minimal"]);
    assert_eq!((code, stdout.as_str()), (0, ""), "{stderr}");
    for file in [
        "setup.sh",
        "user-data.yaml",
        "packer/phanes.pkr.hcl",
        "manifest.json",
        "SHA256SUMS",
    ] {
        assert!(dir.join("out/minimal").join(file).is_file(), "{file}");
        assert!(
            stderr.contains(&format!("wrote out/minimal/{file}")),
            "{stderr}"
        );
    }

    let modules = ok(&dir, &["list", "modules"]);
    for name in ["baseline", "user", "security", "swap", "updates"] {
        assert!(modules.lines().any(|l| l.starts_with(name)), "{modules}");
    }
    let profiles = ok(&dir, &["list", "profiles"]);
    assert!(profiles.starts_with("minimal "), "{profiles}");

    let plan = ok(&dir, &["plan"]);
    assert!(plan.starts_with("profile minimal (minimal)\n"), "{plan}");
    assert!(plan.contains("\nswap:\n"), "{plan}");
    assert!(plan.contains("swap.file"), "{plan}");

    assert!(ok(&dir, &["validate"]).starts_with("valid: profile minimal"));

    let explain = ok(&dir, &["explain", "swap"]);
    assert!(explain.starts_with("swap — "), "{explain}");
    assert!(
        explain.contains("swap.size  (integer | string; default: 1G)"),
        "{explain}"
    );
    assert!(explain.contains("swap.file"), "{explain}");

    // Fields of list entries are explained too.
    let explain = ok(&dir, &["explain", "user"]);
    assert!(
        explain.contains("  user.users[].name  (string; required, no default)"),
        "{explain}"
    );
    assert!(
        explain.contains("  user.users[].sudo  (nopasswd | password | none; default: nopasswd)")
    );

    let schema: Value = serde_json::from_str(&ok(&dir, &["schema"])).unwrap();
    assert_eq!(schema["title"], "Config");
}

#[test]
fn error_kinds_have_their_message_and_exit_code() {
    let dir = temp_dir("errors");
    // Unknown key: file:line:column, the key path, the source line with a caret, a suggestion.
    std::fs::write(dir.join("phanes.yaml"), "baseline:\n  timezon: Etc/UTC\n").unwrap();
    let stderr = fails(&dir, &["validate"], 1);
    assert_eq!(
        stderr,
        "error: phanes.yaml:2:3: baseline: unknown field `timezon`, expected one of `hostname`, \
         `timezone`, `locales`, `default_locale`, `packages`\n   |\n 2 |   timezon: Etc/UTC\n   |   ^\n  \
         help: did you mean `timezone`?\n"
    );
    // Piped stderr never gets colour.
    assert!(!stderr.contains('\x1b'));

    // Out of range, at the value.
    std::fs::write(dir.join("phanes.yaml"), "swap:\n  swappiness: 300\n").unwrap();
    let stderr = fails(&dir, &["render"], 1);
    assert!(
        stderr.starts_with("error: phanes.yaml:2:15: swap.swappiness: 300 is out of range"),
        "{stderr}"
    );

    // A config file that is not there (only the default one may be missing).
    let stderr = fails(&dir, &["validate", "--config", "nope.yaml"], 1);
    assert!(
        stderr.starts_with("error: nope.yaml: cannot read the config file"),
        "{stderr}"
    );

    // --set: bad shape, unknown key.
    std::fs::remove_file(dir.join("phanes.yaml")).unwrap();
    let stderr = fails(&dir, &["render", "--set", "swap.size"], 1);
    assert!(stderr.contains("expected KEY=VALUE"), "{stderr}");
    let stderr = fails(&dir, &["render", "--set", "swap.sise=2G"], 1);
    assert!(stderr.contains("did you mean `size`?"), "{stderr}");

    // Unknown profile and module names get suggestions.
    let stderr = fails(&dir, &["render", "--profile", "minmal"], 1);
    assert!(stderr.contains("did you mean \"minimal\"?"), "{stderr}");
    let stderr = fails(&dir, &["explain", "swpa"], 1);
    assert!(stderr.contains("did you mean \"swap\"?"), "{stderr}");
    let stderr = fails(&dir, &["render", "--modules", "dockr"], 1);
    assert!(stderr.contains("unknown module \"dockr\""), "{stderr}");

    // Output problems.
    let stderr = fails(&dir, &["render", "--format", "archive"], 1);
    assert!(stderr.contains("add --out DIR"), "{stderr}");
    let stderr = fails(&dir, &["render", "--packer-source", "nodot"], 1);
    assert!(stderr.starts_with("error: "), "{stderr}");

    // Usage errors are clap's, exit 2.
    let stderr = fails(&dir, &["render", "--provider", "linode"], 2);
    assert!(stderr.contains("invalid value 'linode'"), "{stderr}");
}

#[test]
fn several_config_errors_are_reported_together() {
    let dir = temp_dir("many-errors");
    std::fs::write(
        dir.join("phanes.yaml"),
        "user:\n  users:\n    - name: root\n    - name: ops\n      sudo: password\nswap:\n  size: 1M\n",
    )
    .unwrap();
    let stderr = fails(&dir, &["validate"], 1);
    for expected in [
        "error: phanes.yaml:3:7: user.users[0].name: root cannot be managed",
        "error: phanes.yaml:5:7: user.users[1].sudo: sudo: password needs a password_hash",
        "error: phanes.yaml:7:3: swap.size: swap size 1M is out of range",
        "error: 3 problems found",
    ] {
        assert!(stderr.contains(expected), "{expected:?} in:\n{stderr}");
    }
}

/// Runs phanes under a pseudo-terminal (util-linux `script`), so stderr is a terminal.
fn on_terminal(dir: &Path, no_color: Option<&str>) -> Option<String> {
    let binary = env!("CARGO_BIN_EXE_phanes");
    let mut command = Command::new("script");
    command
        .args(["-qec", &format!("{binary} validate"), "/dev/null"])
        .current_dir(dir)
        .env_remove("NO_COLOR");
    if let Some(value) = no_color {
        command.env("NO_COLOR", value);
    }
    let out = command.output().ok()?;
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn colour_only_on_a_terminal_and_never_with_no_color() {
    let dir = temp_dir("colour");
    std::fs::write(dir.join("phanes.yaml"), "swap:\n  sise: 1G\n").unwrap();
    let mut piped = phanes(&dir);
    piped.arg("validate");
    let out = piped.output().unwrap();
    assert!(!String::from_utf8_lossy(&out.stderr).contains('\x1b'));
    let Some(tty) = on_terminal(&dir, None) else {
        eprintln!("skipped the terminal half: util-linux `script` is not installed");
        return;
    };
    assert!(tty.contains("\x1b[1;31merror\x1b[0m: "), "{tty:?}");
    let plain = on_terminal(&dir, Some("1")).unwrap();
    assert!(
        plain.contains("error: phanes.yaml:2:3: swap: unknown field `sise`"),
        "{plain:?}"
    );
    assert!(!plain.contains('\x1b'), "{plain:?}");
}

// ---------------------------------------------------------------- the README's walk-through

/// README "Getting started": `phanes init --profile minimal`, edit one value, `phanes render
/// --out out/web`, and the value is in setup.sh.
#[test]
fn readme_walkthrough_init_edit_render() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    for command in [
        "phanes init --profile minimal",
        "phanes validate",
        "phanes render --out out/web",
    ] {
        assert!(
            readme.contains(command),
            "the README no longer says `{command}`"
        );
    }
    let dir = temp_dir("readme");
    ok(&dir, &["init", "--profile", "minimal"]);
    let config = std::fs::read_to_string(dir.join("phanes.yaml")).unwrap();
    assert!(config.contains("  size: 1G\n"));
    std::fs::write(
        dir.join("phanes.yaml"),
        config.replace("  size: 1G\n", "  size: 3G\n"),
    )
    .unwrap();
    ok(&dir, &["validate"]);
    let (code, _, stderr) = run(&dir, &["render", "--out", "out/web"]);
    assert_eq!(code, 0, "{stderr}");
    let setup = std::fs::read_to_string(dir.join("out/web/setup.sh")).unwrap();
    assert!(
        setup.contains("Swap file /swapfile of 3G is active"),
        "the edited size reaches setup.sh"
    );
    let user_data = std::fs::read_to_string(dir.join("out/web/user-data.yaml")).unwrap();
    assert!(user_data.starts_with("#cloud-config"));
}

/// The README's module and profile tables list what `phanes list` lists.
#[test]
fn readme_tables_match_phanes_list() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let dir = temp_dir("readme-tables");
    for line in ok(&dir, &["list", "modules"]).lines() {
        let (name, description) = line.split_once(' ').unwrap();
        let row = format!("| `{name}` | {} |", description.trim());
        assert!(readme.contains(&row), "README lacks the module row {row:?}");
    }
    for line in ok(&dir, &["list", "profiles"]).lines() {
        let name = line.split_whitespace().next().unwrap();
        let modules = line.rsplit_once('[').unwrap().1.trim_end_matches(']');
        let row = format!("| `{name}` | {modules} |");
        assert!(
            readme.contains(&row),
            "README lacks the profile row {row:?}"
        );
    }
}

#[test]
fn a_users_profile_beside_the_config_extends_a_built_in_one_and_plan_shows_the_order() {
    let dir = temp_dir("extends");
    // profiles/ next to the config is where phanes looks by default.
    std::fs::create_dir_all(dir.join("conf/profiles")).unwrap();
    std::fs::write(
        dir.join("conf/profiles/edge.yaml"),
        "name: edge\ndescription: web behind Tailscale, no swap\nextends: web\n\
         modules: [tailscale]\nremove_modules: [swap]\n\
         config:\n  tailscale:\n    advertise_tags: [tag:edge]\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("conf/phanes.yaml"),
        "tailscale:\n  hostname: edge-1\n",
    )
    .unwrap();
    let plan = ok(
        &dir,
        &["plan", "--config", "conf/phanes.yaml", "--profile", "edge"],
    );
    assert!(
        plan.starts_with("profile edge (minimal > web > edge)"),
        "{plan}"
    );
    // Module sections in run order: the registry's, whatever order the profiles list them in.
    let sections: Vec<&str> = plan
        .lines()
        .filter_map(|l| l.strip_suffix(':'))
        .filter(|l| !l.starts_with(' '))
        .collect();
    assert_eq!(
        sections,
        [
            "packages",
            "baseline",
            "user",
            "security",
            "updates",
            "tailscale",
            "docker",
            "caddy"
        ],
        "{plan}"
    );
    // The profile's config default and the user's config both reach the steps.
    assert!(
        plan.contains(
            "The node is connected to the tailnet (BackendState Running), as edge-1, tags tag:edge"
        ),
        "{plan}"
    );
    // tailscaled's port is opened by security, after web's Caddy ports are added.
    assert!(
        plan.contains("UFW allows 41641/udp, 80/tcp, 443/tcp, 443/udp"),
        "{plan}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}
