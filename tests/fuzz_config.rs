//! Property-based test of the compiler against random and hostile configs (issue 8, "bad input").
//!
//! Each case is a config fed to the library API (`compile::compile` with the config in a temp
//! file, then `targets::render_all`), with a random set of the service modules on top of the
//! minimal profile. Three kinds of case:
//! - a rich valid config with a few key paths (taken from `explain::schema()`, so every known
//!   option and list-entry field is reachable) set to random or hostile values;
//! - random YAML text built from YAML's own tokens (anchors, tags, flow and block collections);
//! - a valid config's text with hostile fragments spliced in at random places.
//!
//! Properties:
//! - compile and render never panic;
//! - a rejected config is reported through a diagnostic naming a known key path (or, for YAML
//!   that does not parse or is not a mapping, its line and column);
//! - every rendered setup.sh passes `bash -n` (every 20th success, and every success that
//!   carries a hostile value into the bundle);
//! - user-data is `#cloud-config` YAML with only the expected top-level keys and carries exactly
//!   the rendered setup.sh;
//! - the Packer HCL has balanced quotes and braces and no `${` / `%{` other than `${path.root}`;
//! - canary: hostile values carry `touch /tmp/phanes-canary-PID-N` in every quoting context;
//!   whenever one reaches the bundle, `env -i PATH=/usr/bin:/bin bash setup.sh --list` (which
//!   only registers and prints the steps) runs it, and the canary file must never appear.
//!
//! `PHANES_FUZZ_CASES` sets the number of cases (default 300); `PHANES_FUZZ_SEED` (a number)
//! replays a run. The figures are printed at the end (`cargo test --test fuzz_config --
//! --nocapture`).

mod common;

use common::temp_dir;
use phanes::compile::{Request, compile};
use phanes::diagnostic::{Diagnostic, Diagnostics};
use phanes::targets::{Artifact, TargetOptions, cloud_init, packer, render_all};
use proptest::prelude::*;
use proptest::test_runner::{Config as PtConfig, RngAlgorithm, TestRng, TestRunner};
use serde_json::{Map, Value};
use std::collections::BTreeSet;
use std::io::Read;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Service modules added on top of the minimal profile, each with probability 1/2.
const EXTRA_MODULES: &[&str] = &[
    "docker",
    "monitoring",
    "nginx",
    "caddy",
    "postgres",
    "redis",
];

/// A config that sets every list the modules have, so mutations inside entries land somewhere.
/// caddy is moved off nginx's ports so both can be in one bundle.
const RICH: &str = r#"
baseline:
  hostname: web1.example.com
  timezone: Europe/Berlin
  locales: [en_US.UTF-8, de_DE.UTF-8]
  default_locale: en_US.UTF-8
user:
  users:
    - name: deploy
      groups: [adm, www-data]
      ssh_keys:
        - ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGx2dGVzdGtleWJsb2I deploy@laptop
    - name: ops
      sudo: password
      password_hash: $6$saltsalt$0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ
security:
  ssh:
    allow_users: [deploy]
  firewall:
    allow: [51820/udp]
  fail2ban:
    ignore_addresses: [203.0.113.7]
swap:
  size: 512M
updates:
  origins: [origin=Docker]
docker:
  users: [deploy]
  allow_published: [8000/tcp]
  daemon:
    live-restore: true
monitoring:
  claim:
    enabled: true
    rooms: [room1]
nginx:
  sites:
    - domains: [example.com]
      root: /var/www/example
caddy:
  http_port: 8080
  https_port: 8443
  email: admin@example.com
  sites:
    - domains: [app.example.com]
      proxy: 3000
postgres:
  roles:
    - name: app
      password: pg-pass-0123456
  databases:
    - name: appdb
      owner: app
  hba:
    - address: 10.0.0.0/8
      database: appdb
      user: app
redis:
  password: redis-pass-0123456
  maxmemory: 256M
"#;

/// The canary file a hostile value would create if it ever ran.
fn canary_path(n: usize) -> String {
    format!("/tmp/phanes-canary-{}-{n}", std::process::id())
}

/// The marker that shows a hostile value reached the bundle.
fn canary_marker() -> String {
    format!("phanes-canary-{}-", std::process::id())
}

/// Hostile values: the canary command in every quoting and expansion context a shell, YAML,
/// cloud-init, HCL or a config file could be fooled by. `C` is replaced by the canary path.
const HOSTILE_TEMPLATES: &[&str] = &[
    "$(touch C)",
    "`touch C`",
    "'; touch C; '",
    "\"; touch C; \"",
    "'\"$(touch C)\"'",
    "x\ntouch C\n",
    "x\r\ntouch C #",
    "x; touch C",
    "x && touch C",
    "x | touch C",
    "${IFS}$(touch${IFS}C)",
    "${x:-$(touch C)}",
    "$((`touch C`))",
    "%{ if true }$(touch C)%{ endif }",
    "${path.root}$(touch C)",
    "\\'$(touch C)\\'",
    "x: $(touch C)",
    "- $(touch C)",
    "# $(touch C)",
    "{{ '$(touch C)' }}",
    "{% raw %}$(touch C){% endraw %}",
    "EOF\ntouch C\nEOF",
    "x\u{0}$(touch C)",
    "\u{2028}$(touch C)\u{2029}",
    "é漢字🙂 $(touch C)",
    "<(touch C)",
    ">(touch C)",
    "!(touch C)",
    "\\\n$(touch C)",
    "$'\\x27'$(touch C)",
];

/// Other hostile fragments without a command: quoting breakers, YAML and HCL syntax, control
/// characters, and non-ASCII.
const HOSTILE_FRAGMENTS: &[&str] = &[
    "'",
    "\"",
    "`",
    "\\",
    "$",
    "${",
    "%{",
    "}",
    "{",
    "]",
    "[",
    ": ",
    " #",
    "#",
    "\n",
    "\r",
    "\t",
    "\u{0}",
    "\u{7}",
    "\u{1b}[31m",
    "&a",
    "*a",
    "!!binary",
    "|",
    ">",
    "---",
    "...",
    "\u{feff}",
    "\u{202e}",
    "é",
    "漢",
    "🙂",
    "\u{ffff}",
    " ",
    "",
    "~",
    "null",
    "yes",
    "0x1F",
    "1e400",
    "-1",
    "0777",
    ".inf",
    "=",
    ",",
    "*",
    "?",
    "..",
    "/",
    "../../etc/passwd",
];

/// A hostile string: a canary command (with a slot for its number), a fragment, a very long
/// string, or arbitrary unicode.
fn hostile_string() -> impl Strategy<Value = String> {
    let canary = (
        0..HOSTILE_TEMPLATES.len(),
        prop::sample::select(VALID_PREFIXES),
    )
        .prop_map(|(i, prefix)| format!("{prefix}{}", HOSTILE_TEMPLATES[i]));
    let fragments = prop::collection::vec(prop::sample::select(HOSTILE_FRAGMENTS), 1..6)
        .prop_map(|parts| parts.concat());
    let mixed = (
        prop::sample::select(VALID_PREFIXES),
        prop::sample::select(HOSTILE_FRAGMENTS),
        prop::sample::select(VALID_PREFIXES),
    )
        .prop_map(|(a, b, c)| format!("{a}{b}{c}"));
    let long = (1usize..5, prop::sample::select(HOSTILE_FRAGMENTS))
        .prop_map(|(k, f)| format!("a{}", f.repeat(k * 5000).replace('\0', "x")));
    prop_oneof![
        4 => canary,
        2 => fragments,
        2 => mixed,
        1 => long,
        1 => any::<String>(),
        1 => "\\PC{0,40}",
    ]
}

/// Beginnings that look valid for common option types, so a hostile tail gets past a prefix check.
const VALID_PREFIXES: &[&str] = &[
    "",
    "deploy",
    "web1.example.com",
    "/var/www/x",
    "https://mirror.example.com/x",
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGx2dGVzdGtleWJsb2I ",
    "$6$salt$",
    "80/tcp",
    "10.0.0.0/8",
    "en_US.UTF-8",
    "Europe/Berlin",
    "origin=Docker",
    "512M",
    "1h",
    "04:00",
];

const SSH_KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGx2dGVzdGtleWJsb2I";

/// Plain values of the common option types, so that some mutated configs are still valid.
fn benign_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        prop::sample::select(VALID_PREFIXES).prop_map(|s| Value::String(s.to_string())),
        prop::sample::select(vec![0i64, 1, 10, 22, 80, 2222, 8081]).prop_map(Value::from),
        any::<bool>().prop_map(Value::Bool),
        Just(Value::Array(Vec::new())),
        Just(Value::Null),
    ]
}

/// Any value a YAML document could hold at a key.
fn any_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        6 => hostile_string().prop_map(Value::String),
        1 => Just(Value::Null),
        1 => any::<bool>().prop_map(Value::Bool),
        2 => any::<i64>().prop_map(Value::from),
        2 => prop::sample::select(vec![0i64, -1, 1, 22, 65535, 65536, 200, 201, 100, 101])
            .prop_map(Value::from),
        1 => any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        1 => Just(Value::from(u64::MAX)),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(prop_oneof![hostile_string(), "[a-z_]{1,12}"], inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Every key path of the config schema: `swap.size`, `user.users[].ssh_keys`, ...
fn key_paths() -> Vec<String> {
    let schema = phanes::explain::schema();
    let mut paths = Vec::new();
    walk_schema(&schema, &schema, "", &mut paths, 0);
    paths
}

fn resolve<'a>(root: &'a Value, schema: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => r
            .strip_prefix("#/$defs/")
            .and_then(|name| root["$defs"].get(name))
            .map(|t| resolve(root, t))
            .unwrap_or(schema),
        None => schema,
    }
}

/// The object schemas a property can be (directly, through `$ref`, or one of `anyOf`).
fn object_variants<'a>(root: &'a Value, schema: &'a Value) -> Vec<&'a Value> {
    let target = resolve(root, schema);
    let mut out = Vec::new();
    if target.get("properties").is_some() {
        out.push(target);
    }
    for key in ["anyOf", "oneOf", "allOf"] {
        for option in target
            .get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            out.extend(object_variants(root, option));
        }
    }
    out
}

fn walk_schema(root: &Value, schema: &Value, prefix: &str, out: &mut Vec<String>, depth: usize) {
    if depth > 8 {
        return;
    }
    for object in object_variants(root, schema) {
        for (name, property) in object["properties"].as_object().into_iter().flatten() {
            let path = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}.{name}")
            };
            out.push(path.clone());
            walk_schema(root, property, &path, out, depth + 1);
            let target = resolve(root, property);
            if let Some(items) = target.get("items") {
                walk_schema(root, items, &format!("{path}[]"), out, depth + 1);
            }
        }
    }
}

/// Sets `path` (`[]` or `[N]` name a list entry, made when missing) to `value` in `doc`.
fn set_path(doc: &mut Value, path: &str, value: Value) {
    let mut node = doc;
    let parts: Vec<&str> = path.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        let last = i == parts.len() - 1;
        let (name, entry) = match part.split_once('[') {
            Some((name, index)) => (name, Some(index.trim_end_matches(']').parse().unwrap_or(0))),
            None => (*part, None),
        };
        if !node.is_object() {
            *node = Value::Object(Map::new());
        }
        let map = node.as_object_mut().unwrap();
        if last && entry.is_none() {
            map.insert(name.to_string(), value);
            return;
        }
        let child = map.entry(name.to_string()).or_insert(Value::Null);
        if let Some(index) = entry {
            if !child.is_array() {
                *child = Value::Array(Vec::new());
            }
            let list = child.as_array_mut().unwrap();
            while list.len() <= index {
                list.push(Value::Object(Map::new()));
            }
            node = &mut list[index];
            if last {
                *node = value;
                return;
            }
        } else {
            node = child;
        }
    }
}

/// One fuzz case.
#[derive(Debug, Clone)]
enum Case {
    /// The rich config with these key paths set to these values.
    Mutated(Vec<(String, Value)>),
    /// Random YAML text.
    RawYaml(String),
    /// The rich config's text with fragments inserted at byte offsets (clamped to char bounds).
    Spliced(Vec<(usize, String)>),
}

#[derive(Debug, Clone)]
struct Input {
    case: Case,
    modules: Vec<&'static str>,
    packer_source: String,
}

/// YAML tokens for random documents.
const YAML_TOKENS: &[&str] = &[
    "swap",
    "size",
    "user",
    "users",
    "name",
    "baseline",
    "security",
    "ssh",
    "port",
    "profile",
    "postgres",
    "roles",
    "redis",
    "password",
    "docker",
    "daemon",
    "nginx",
    "sites",
    ":",
    ": ",
    "- ",
    "\n",
    "\n  ",
    "\n    ",
    "[",
    "]",
    "{",
    "}",
    ", ",
    "&a ",
    "*a",
    "<<: *a",
    "!!str ",
    "!!int ",
    "!!map ",
    "!tag ",
    "? ",
    "---\n",
    "...\n",
    "|\n",
    ">-\n",
    "'",
    "\"",
    "#",
    "%YAML 1.2\n",
    "1",
    "-1",
    "0x10",
    "1e9",
    "~",
    "null",
    "true",
    "no",
    "2G",
    "\t",
    "\u{0}",
    "é",
    "$(touch C)",
];

fn raw_yaml() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(YAML_TOKENS), 0..60).prop_map(|t| t.concat())
}

fn input() -> impl Strategy<Value = Input> {
    let paths = key_paths();
    let value = prop_oneof![1 => any_value(), 1 => benign_value()];
    let mutation = (prop::sample::select(paths), value);
    // Values the validators accept that still carry shell, YAML and HCL syntax: the comment of
    // an SSH key is free text, passwords allow `#%*+,-./:=?@^_~`.
    let accepted = prop_oneof![
        3 => (0..HOSTILE_TEMPLATES.len()).prop_map(|i| (
            "user.users[0].ssh_keys".to_string(),
            Value::Array(vec![Value::String(format!("{SSH_KEY} {}", HOSTILE_TEMPLATES[i]))])
        )),
        1 => hostile_string().prop_map(|h| (
            "user.users[0].ssh_keys".to_string(),
            Value::Array(vec![Value::String(format!("{SSH_KEY} {h}"))])
        )),
        1 => "[A-Za-z0-9!#%*+,./:=?@^_~-]{12,40}"
            .prop_map(|p| ("postgres.roles[0].password".to_string(), Value::String(p))),
        1 => "[A-Za-z0-9!#%*+,./:=?@^_~-]{12,40}"
            .prop_map(|p| ("redis.password".to_string(), Value::String(p))),
    ];
    let case = prop_oneof![
        6 => prop::collection::vec(mutation, 0..3).prop_map(Case::Mutated),
        3 => prop::collection::vec(accepted, 1..3).prop_map(Case::Mutated),
        1 => raw_yaml().prop_map(Case::RawYaml),
        2 => prop::collection::vec((0usize..RICH.len(), hostile_string()), 1..3)
            .prop_map(Case::Spliced),
    ];
    let modules = prop::sample::subsequence(EXTRA_MODULES, 0..=EXTRA_MODULES.len());
    let packer_source = prop_oneof![
        4 => Just("null.phanes".to_string()),
        1 => "[a-z][a-z0-9_-]{0,8}\\.[a-z][a-z0-9_-]{0,8}",
        1 => hostile_string(),
    ];
    (case, modules, packer_source).prop_map(|(case, modules, packer_source)| Input {
        case,
        modules,
        packer_source,
    })
}

/// The config text of a case; `n` numbers its canaries.
fn config_text(case: &Case, n: usize) -> String {
    let canary = canary_path(n);
    let text = match case {
        Case::Mutated(mutations) => {
            let mut doc: Value = serde_norway::from_str(RICH).unwrap();
            for (path, value) in mutations {
                set_path(&mut doc, path, value.clone());
            }
            serde_norway::to_string(&doc).unwrap()
        }
        Case::RawYaml(text) => text.clone(),
        Case::Spliced(inserts) => {
            let mut text = RICH.to_string();
            for (at, fragment) in inserts {
                let mut at = (*at).min(text.len());
                while !text.is_char_boundary(at) {
                    at -= 1;
                }
                text.insert_str(at, fragment);
            }
            text
        }
    };
    text.replace("touch C", &format!("touch {canary}"))
        .replace("touch${IFS}C", &format!("touch${{IFS}}{canary}"))
}

/// A rejected config must point at a known key path, or (for YAML that is not a config at all)
/// at a line and column.
fn check_error(err: &anyhow::Error, known: &BTreeSet<String>, text: &str) -> Result<(), String> {
    let diagnostics: Vec<Diagnostic> = if let Some(d) = err.downcast_ref::<Diagnostics>() {
        d.0.clone()
    } else if let Some(d) = err.downcast_ref::<Diagnostic>() {
        vec![d.clone()]
    } else {
        // Cross-module checks (ports) are plain errors: they must name the key paths in words.
        let message = format!("{err:#}");
        return if known
            .iter()
            .any(|p| p.contains('.') && message.contains(p.as_str()))
        {
            Ok(())
        } else {
            Err(format!("error names no key path: {message}"))
        };
    };
    if diagnostics.is_empty() {
        return Err("an empty list of diagnostics".into());
    }
    for d in &diagnostics {
        let normalized = normalize(&d.path);
        let named = !normalized.is_empty()
            && (known.contains(&normalized)
                || known.iter().any(|k| {
                    normalized.starts_with(&format!("{k}."))
                        || normalized.starts_with(&format!("{k}["))
                }));
        // Paths inside free-form maps (docker.daemon.KEY) name their map.
        if named {
            continue;
        }
        if d.position.is_some()
            && (d.path.is_empty()
                || d.message.starts_with("the config must be a mapping")
                || !DATA_ERRORS.iter().any(|m| d.message.contains(m)))
        {
            // A document that does not parse, or is not a mapping, has no key path to name.
            // YAML syntax errors (any message that is not one of serde's data errors) are
            // located by line and column. (Their diagnostic's path is
            // the bare key on the error's line, such as `ssh` for `security.ssh`, and for a
            // scalar document like `a:b` the text before the colon: no key path.)
            figures_root_errors();
            continue;
        }
        // Problems of the whole document, which has no key path.
        if d.path.is_empty() && DOCUMENT_ERRORS.iter().any(|m| d.message.contains(m)) {
            figures_root_errors();
            continue;
        }
        // An unknown top-level key is reported at the root with the key in the message.
        if d.path.is_empty() && d.message.starts_with("unknown field") {
            continue;
        }
        return Err(format!(
            "diagnostic without a known key path (path {:?}):\n{}\n--- config ---\n{}",
            d.path,
            d.render(false),
            truncate(text)
        ));
    }
    Ok(())
}

/// serde's messages about the data (as opposed to YAML syntax): these must name a key path.
const DATA_ERRORS: &[&str] = &[
    "invalid type",
    "invalid value",
    "unknown field",
    "missing field",
    "invalid length",
    "unknown variant",
    "duplicate field",
];

/// Messages about a whole document rather than a key.
const DOCUMENT_ERRORS: &[&str] = &[
    "more than one document",
    "recursion limit",
    "repetition limit",
];

static ROOT_ERRORS: AtomicUsize = AtomicUsize::new(0);

fn figures_root_errors() {
    ROOT_ERRORS.fetch_add(1, Ordering::Relaxed);
}

/// `user.users[3].name` -> `user.users[].name`.
fn normalize(path: &str) -> String {
    let mut out = String::new();
    let mut in_index = false;
    for c in path.chars() {
        match c {
            '[' => {
                in_index = true;
                out.push_str("[]");
            }
            ']' => in_index = false,
            _ if in_index => {}
            _ => out.push(c),
        }
    }
    out
}

fn truncate(text: &str) -> String {
    if text.len() > 2000 {
        let mut at = 2000;
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        format!("{}... ({} bytes)", &text[..at], text.len())
    } else {
        text.to_string()
    }
}

fn artifact<'a>(artifacts: &'a [Artifact], path: &str) -> &'a Artifact {
    artifacts
        .iter()
        .find(|a| a.path == path)
        .unwrap_or_else(|| panic!("no {path} among the artifacts"))
}

/// user-data: `#cloud-config`, YAML, only the expected keys, and the bundle byte for byte.
fn check_user_data(text: &str, setup: &str) -> Result<(), String> {
    if !text.starts_with("#cloud-config\n") {
        return Err("user-data does not start with #cloud-config".into());
    }
    let doc: serde_norway::Value =
        serde_norway::from_str(text).map_err(|e| format!("user-data is not YAML: {e}"))?;
    let map = doc.as_mapping().ok_or("user-data is not a mapping")?;
    for key in map.keys() {
        let key = key.as_str().unwrap_or("<not a string>");
        if !["write_files", "runcmd", "preserve_hostname"].contains(&key) {
            return Err(format!("unexpected top-level key {key:?} in user-data"));
        }
    }
    let file = &map["write_files"][0];
    let content = file["content"]
        .as_str()
        .ok_or("write_files[0] has no content")?;
    let carried = match file.get("encoding").and_then(|e| e.as_str()) {
        Some("gz+b64") => {
            use base64::Engine;
            let gz = base64::engine::general_purpose::STANDARD
                .decode(content)
                .map_err(|e| format!("bad base64: {e}"))?;
            let mut out = String::new();
            flate2::read::GzDecoder::new(&gz[..])
                .read_to_string(&mut out)
                .map_err(|e| format!("bad gzip: {e}"))?;
            out
        }
        None => format!("{content}\n"),
        Some(other) => return Err(format!("unexpected encoding {other}")),
    };
    if carried.trim_end_matches('\n') != setup.trim_end_matches('\n') {
        return Err("user-data does not carry the rendered setup.sh".into());
    }
    if map["runcmd"][0][2].as_str() != Some("/usr/local/sbin/phanes-setup") {
        return Err("runcmd does not run /usr/local/sbin/phanes-setup".into());
    }
    Ok(())
}

/// HCL: quotes and braces balance (outside comments and strings), and `${` / `%{` appear in
/// strings only as `${path.root}` (template directives would run code at Packer's side).
fn check_hcl(text: &str) -> Result<(), String> {
    let mut depth: i64 = 0;
    for (n, line) in text.lines().enumerate() {
        let mut chars = line.chars().peekable();
        let mut in_string = false;
        let mut rest = String::new();
        while let Some(c) = chars.next() {
            if in_string {
                match c {
                    '\\' => {
                        chars.next();
                    }
                    '"' => in_string = false,
                    '$' | '%' if chars.peek() == Some(&'{') => {
                        rest = chars.clone().collect();
                        if c == '%' || !rest.starts_with("{path.root}") {
                            return Err(format!(
                                "line {}: template sequence {c}{{ in a string: {line}",
                                n + 1
                            ));
                        }
                    }
                    '$' | '%' if chars.peek() == Some(&c) => {
                        // `$${` / `%%{` are HCL's escapes for a literal sequence.
                        chars.next();
                        if chars.peek() == Some(&'{') {
                            chars.next();
                        }
                    }
                    _ => {}
                }
                continue;
            }
            match c {
                '#' => break,
                '/' if chars.peek() == Some(&'/') => break,
                '"' => in_string = true,
                '{' | '[' => depth += 1,
                '}' | ']' => depth -= 1,
                _ => {}
            }
            if depth < 0 {
                return Err(format!("line {}: closing bracket without opening", n + 1));
            }
        }
        let _ = rest;
        if in_string {
            return Err(format!("line {}: unterminated string: {line}", n + 1));
        }
    }
    if depth != 0 {
        return Err(format!("unbalanced braces: depth {depth} at the end"));
    }
    Ok(())
}

/// Counters printed at the end.
#[derive(Default)]
struct Figures {
    cases: AtomicUsize,
    rendered: AtomicUsize,
    rejected: AtomicUsize,
    bash_checked: AtomicUsize,
    hostile_in_bundle: AtomicUsize,
    canary_runs: AtomicUsize,
    packer_sources_accepted: AtomicUsize,
}

/// Checks one rendered bundle with bash: `bash -n`, and with a canary, `--list` in a clean
/// environment; the canary file must not exist afterwards.
fn check_bundle_with_bash(dir: &Path, setup: &str, canary: Option<&str>) -> Result<(), String> {
    let path = dir.join("setup.sh");
    std::fs::write(&path, setup).unwrap();
    let out = Command::new("bash").arg("-n").arg(&path).output().unwrap();
    if !out.status.success() {
        return Err(format!(
            "bash -n failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    if let Some(canary) = canary {
        // Only a bundle that ends in `main "$@"` (whose --list mode registers and prints) is run.
        if !setup.trim_end().ends_with("main \"$@\"") {
            return Err("setup.sh does not end with main \"$@\"; not running it".into());
        }
        let out = Command::new("env")
            .args(["-i", "PATH=/usr/bin:/bin", "bash"])
            .arg(&path)
            .arg("--list")
            .current_dir(dir)
            .output()
            .unwrap();
        let created = Path::new(canary).exists();
        let _ = std::fs::remove_file(canary);
        if created {
            return Err(format!("CANARY {canary} was created: a hostile value ran"));
        }
        if !out.status.success() {
            return Err(format!(
                "setup.sh --list failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    Ok(())
}

fn run_case(
    input: &Input,
    n: usize,
    known: &BTreeSet<String>,
    dir: &Path,
    figures: &Figures,
) -> Result<(), String> {
    figures.cases.fetch_add(1, Ordering::Relaxed);
    let text = config_text(&input.case, n);
    let config_path = dir.join("phanes.yaml");
    std::fs::write(&config_path, &text).unwrap();
    let request = Request {
        config: Some(config_path),
        profiles_dir: Some(dir.join("no-profiles")),
        profile: Some("minimal".into()),
        modules: input.modules.iter().map(|m| m.to_string()).collect(),
        ..Request::default()
    };
    let compilation = match compile(&request) {
        Ok(c) => c,
        Err(err) => {
            figures.rejected.fetch_add(1, Ordering::Relaxed);
            if std::env::var_os("PHANES_FUZZ_VERBOSE").is_some() {
                let message = format!("{err:#}");
                eprintln!("rejected: {}", message.lines().next().unwrap_or(""));
            }
            return check_error(&err, known, &text);
        }
    };
    let packer_source = match input.packer_source.parse::<packer::SourceName>() {
        Ok(source) => {
            figures
                .packer_sources_accepted
                .fetch_add(1, Ordering::Relaxed);
            source
        }
        Err(message) if !message.is_empty() => packer::SourceName::default(),
        Err(_) => return Err("an empty error for a bad --packer-source".into()),
    };
    let options = TargetOptions {
        provider: cloud_init::Provider::Generic,
        bundle_url: None,
        packer_source,
    };
    let artifacts = render_all(&compilation, &options)
        .map_err(|e| format!("render failed after a successful compile: {e:#}"))?;
    let rendered = figures.rendered.fetch_add(1, Ordering::Relaxed) + 1;
    let setup = String::from_utf8(artifact(&artifacts, "setup.sh").bytes.clone())
        .map_err(|_| "setup.sh is not UTF-8")?;
    let user_data = String::from_utf8(artifact(&artifacts, cloud_init::PATH).bytes.clone())
        .map_err(|_| "user-data is not UTF-8")?;
    let hcl = String::from_utf8(artifact(&artifacts, packer::PATH).bytes.clone())
        .map_err(|_| "HCL is not UTF-8")?;
    check_user_data(&user_data, &setup)?;
    check_hcl(&hcl)?;
    if artifact(&artifacts, packer::SETUP_PATH).bytes != setup.as_bytes() {
        return Err("packer/setup.sh differs from setup.sh".into());
    }
    let hostile = setup.contains(&canary_marker());
    if hostile {
        figures.hostile_in_bundle.fetch_add(1, Ordering::Relaxed);
    }
    if hostile || rendered % 20 == 1 {
        let canary = canary_path(n);
        check_bundle_with_bash(dir, &setup, hostile.then_some(canary.as_str()))
            .map_err(|e| format!("{e}\n--- config ---\n{}", truncate(&text)))?;
        figures.bash_checked.fetch_add(1, Ordering::Relaxed);
        if hostile {
            figures.canary_runs.fetch_add(1, Ordering::Relaxed);
        }
    }
    Ok(())
}

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

#[test]
fn random_and_hostile_configs() {
    let cases = env_number("PHANES_FUZZ_CASES").unwrap_or(300) as u32;
    let seed = env_number("PHANES_FUZZ_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
    });
    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let config = PtConfig {
        cases,
        failure_persistence: None,
        // Shrinking re-runs bash; a few hundred steps are enough to get a small config.
        max_shrink_iters: 300,
        ..PtConfig::default()
    };
    let mut runner = TestRunner::new_with_rng(
        config,
        TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes),
    );
    let known: BTreeSet<String> = key_paths().into_iter().collect();
    assert!(
        known.contains("swap.size") && known.contains("user.users[].name"),
        "key paths from the schema: {known:?}"
    );
    let dir = temp_dir("cases");
    let figures = Figures::default();
    let counter = AtomicUsize::new(0);
    let started = std::time::Instant::now();
    let result = runner.run(&input(), |input| {
        let n = counter.fetch_add(1, Ordering::Relaxed);
        let t = std::time::Instant::now();
        let result = run_case(&input, n, &known, &dir, &figures);
        if std::env::var_os("PHANES_FUZZ_VERBOSE").is_some() && t.elapsed().as_millis() > 100 {
            let what: String = format!("{:?}", input.case).chars().take(200).collect();
            eprintln!(
                "slow case ({:?}, {} modules): {what}",
                t.elapsed(),
                input.modules.len()
            );
        }
        result.map_err(TestCaseError::fail)
    });
    let _ = std::fs::remove_dir_all(&dir);
    let get = |c: &AtomicUsize| c.load(Ordering::Relaxed);
    println!(
        "fuzz_config: seed {seed}; {} cases run ({} requested, {} key paths) in {:.1}s: {} rendered, {} rejected with a key path or position; {} bundles through bash -n; {} carried a hostile value into setup.sh, each run with --list: canary never created; {} --packer-source values accepted (of which the default 'null.phanes' most)",
        get(&figures.cases),
        cases,
        known.len(),
        started.elapsed().as_secs_f64(),
        get(&figures.rendered),
        get(&figures.rejected),
        get(&figures.bash_checked),
        get(&figures.hostile_in_bundle),
        get(&figures.packer_sources_accepted),
    );
    if let Err(e) = result {
        panic!("fuzz_config failed (replay with PHANES_FUZZ_SEED={seed}): {e}");
    }
    assert!(
        get(&figures.rendered) > 0 && get(&figures.rejected) > 0,
        "the generator should produce both valid and invalid configs"
    );
}

/// A document built to expand exponentially through aliases must be refused or parsed in
/// bounded time, not hang or exhaust memory.
#[test]
fn alias_bomb_is_bounded() {
    let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..12 {
        let p = i - 1;
        text.push_str(&format!(
            "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
        ));
    }
    text.push_str("swap:\n  size: *a11\n");
    let dir = temp_dir("bomb");
    let path = dir.join("phanes.yaml");
    std::fs::write(&path, &text).unwrap();
    let started = std::time::Instant::now();
    let result = compile(&Request {
        config: Some(path),
        profile: Some("minimal".into()),
        ..Request::default()
    });
    let _ = std::fs::remove_dir_all(&dir);
    assert!(result.is_err(), "an alias bomb must be rejected");
    assert!(
        started.elapsed().as_secs() < 10,
        "rejecting it took {:?}",
        started.elapsed()
    );
}
