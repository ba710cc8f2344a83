//! `phanes schema` and `phanes explain`: the config's JSON Schema, derived from the same typed
//! settings the compiler uses (doc comments become descriptions, `Default` gives defaults), and a
//! readable page per module built from it.

use crate::config::Config;
use crate::modules::ModuleSpec;
use crate::render;
use serde_json::{Map, Value};
use std::fmt::Write;

/// The JSON Schema of the whole config file, for editors (yaml-language-server) and validators.
pub fn schema() -> Value {
    serde_json::to_value(schemars::schema_for!(Config)).expect("schemas serialize")
}

/// Follows a local `$ref` into `$defs`.
fn resolve<'a>(root: &'a Value, schema: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(reference) => reference
            .strip_prefix("#/$defs/")
            .and_then(|name| root["$defs"].get(name))
            .map(|target| resolve(root, target))
            .unwrap_or(schema),
        None => schema,
    }
}

/// A short type name for a property schema.
fn type_name(root: &Value, schema: &Value) -> String {
    if let Some(items) = schema.get("items") {
        return format!("list of {}", type_name(root, items));
    }
    let target = resolve(root, schema);
    if let Some(options) = target.get("enum").or_else(|| target.get("oneOf")) {
        let names: Vec<String> = options
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|o| {
                o.as_str()
                    .map(str::to_string)
                    .or_else(|| o.get("const")?.as_str().map(str::to_string))
            })
            .collect();
        if !names.is_empty() {
            return names.join(" | ");
        }
    }
    match (target.get("type"), target.get("anyOf")) {
        (Some(Value::String(t)), _) => match (target.get("minimum"), target.get("maximum")) {
            (Some(min), Some(max)) => format!("{t} {min}..{max}"),
            _ => t.clone(),
        },
        (Some(Value::Array(types)), _) => types
            .iter()
            .filter_map(Value::as_str)
            .filter(|t| *t != "null")
            .collect::<Vec<_>>()
            .join(" | "),
        (None, Some(Value::Array(options))) => options
            .iter()
            .filter(|o| o.get("type") != Some(&Value::String("null".into())))
            .map(|o| type_name(root, o))
            .collect::<Vec<_>>()
            .join(" | "),
        _ => "value".into(),
    }
}

fn describe(value: &Value) -> String {
    match value {
        Value::Null => "(not set)".into(),
        Value::String(s) => s.clone(),
        other => serde_norway::to_string(other)
            .unwrap_or_default()
            .trim()
            .replace('\n', " "),
    }
}

/// Writes one line per option (recursing into nested sections), with type, default and doc.
fn options(out: &mut String, root: &Value, schema: &Value, prefix: &str, defaults: &Value) {
    let target = resolve(root, schema);
    let empty = Map::new();
    let properties = target
        .get("properties")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    for (name, property) in properties {
        let path = format!("{prefix}.{name}");
        // The section's own defaults first: a shared type (a vendor repository) has different
        // defaults in each module that embeds it.
        let default = defaults
            .get(name.as_str())
            .or_else(|| property.get("default"))
            .unwrap_or(&Value::Null);
        let nested = resolve(root, property);
        if nested.get("properties").is_some()
            && nested.get("type") == Some(&Value::String("object".into()))
        {
            options(out, root, nested, &path, default);
            continue;
        }
        let doc = property
            .get("description")
            .or_else(|| nested.get("description"))
            .and_then(Value::as_str)
            .unwrap_or("");
        let required = target
            .get("required")
            .and_then(Value::as_array)
            .is_some_and(|names| names.iter().any(|n| n == name.as_str()));
        let default = if required && default.is_null() {
            "required, no default".to_string()
        } else {
            format!("default: {}", describe(default))
        };
        let _ = writeln!(out, "  {path}  ({}; {default})", type_name(root, property));
        for line in doc.lines() {
            let _ = writeln!(out, "      {line}");
        }
        // The fields of each entry of a list of objects (`user.users[].name`).
        if let Some(item) = property.get("items").map(|items| resolve(root, items))
            && item.get("properties").is_some()
        {
            options(out, root, item, &format!("{path}[]"), &Value::Null);
        }
    }
}

/// The `phanes explain MODULE` page.
pub fn explain(module: &ModuleSpec) -> anyhow::Result<String> {
    let root = schema();
    let mut out = String::new();
    let _ = writeln!(out, "{} — {}", module.name, module.description);
    let list = |names: &[&str]| {
        if names.is_empty() {
            "-".to_string()
        } else {
            names.join(", ")
        }
    };
    let conflicts: Vec<&str> = module.conflicts.iter().map(|(name, _)| *name).collect();
    let _ = writeln!(
        out,
        "requires: {}    conflicts with: {}",
        list(module.requires),
        list(&conflicts)
    );
    let defaults = serde_json::to_value(Config::default())?;
    let _ = writeln!(
        out,
        "\nOptions (in phanes.yaml under `{}:`; override with --set {}.KEY=VALUE):",
        module.name, module.name
    );
    options(
        &mut out,
        &root,
        &root["properties"][module.name],
        module.name,
        &defaults[module.name],
    );
    let _ = writeln!(
        out,
        "\nSteps with the default settings (each checks the system first, changes only what differs):"
    );
    let env = render::environment()?;
    let ctx = minijinja::context! {
        module => module.name,
        settings => render::value(&defaults[module.name]),
        packages => (module.packages)(&Config::default()),
        module_ports => Vec::<String>::new(),
        config => render::value(&defaults),
    };
    let section = render::render(&env, &render::module_template_id(module.name), ctx)?;
    for (id, description) in crate::cli::step_declarations(&section) {
        let _ = writeln!(out, "  {id:<28} {description}");
    }
    Ok(out)
}

/// What `phanes init` writes: which sections, with which defaults, under which heading.
pub struct Starter<'a> {
    /// Comment lines at the top of the file (without the leading `# `).
    pub header: &'a [String],
    /// `profile:` value to write, if any.
    pub profile: Option<&'a str>,
    /// Config sections (module names) to write, in this order.
    pub sections: &'a [&'a str],
    /// The values to show: `Config::default()` with the profile's `config` overlay, as JSON.
    pub defaults: &'a Value,
}

/// Width that comment paragraphs are wrapped at.
const WRAP: usize = 100;

/// A commented config file: every option of the chosen sections with its doc as a comment and
/// its default as the value. Options without a default (`null`) are commented out with an
/// example, and lists of objects (`user.users`) get a commented example entry. Built from the
/// same JSON Schema as `phanes schema` and `phanes explain`, so a new option appears here
/// without any other change.
pub fn starter(starter: &Starter) -> String {
    let root = schema();
    let mut out = String::new();
    for line in starter.header {
        comment(&mut out, 0, line);
    }
    out.push('\n');
    if let Some(profile) = starter.profile {
        let doc = root["properties"]["profile"]["description"]
            .as_str()
            .unwrap_or("");
        comment(&mut out, 0, doc);
        let _ = writeln!(out, "profile: {}\n", scalar(&Value::String(profile.into())));
    } else {
        let doc = root["properties"]["profile"]["description"]
            .as_str()
            .unwrap_or("");
        comment(&mut out, 0, doc);
        let _ = writeln!(out, "# profile: {}\n", crate::profile::DEFAULT_PROFILE);
    }
    for (i, section) in starter.sections.iter().enumerate() {
        let property = &root["properties"][*section];
        if i > 0 {
            out.push('\n');
        }
        let description = crate::modules::find(section)
            .map(|m| format!("{section}: {}", m.description))
            .unwrap_or_else(|| section.to_string());
        comment(
            &mut out,
            0,
            &format!("{description} (phanes explain {section})"),
        );
        let _ = writeln!(out, "{section}:");
        object(
            &mut out,
            &root,
            resolve(&root, property),
            &starter.defaults[*section],
            2,
        );
    }
    out
}

/// Writes `text` as `# ` comment lines at `indent`, one paragraph, wrapped at [`WRAP`].
fn comment(out: &mut String, indent: usize, text: &str) {
    let pad = " ".repeat(indent);
    for line in wrap(text, WRAP.saturating_sub(indent + 2).max(40)) {
        let _ = writeln!(out, "{pad}# {line}");
    }
}

/// Splits a paragraph into lines of at most `width` characters (longer words stay whole).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.len() + 1 + word.len() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// The doc of a property, with its allowed values when they are a fixed set or range.
fn property_doc(root: &Value, property: &Value) -> String {
    let target = resolve(root, property);
    let doc = property
        .get("description")
        .or_else(|| target.get("description"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let kind = type_name(root, property);
    let fixed_set = target.get("enum").is_some() || target.get("oneOf").is_some();
    let range = target.get("minimum").is_some() && target.get("maximum").is_some();
    if fixed_set || range {
        format!("{doc} [{kind}]").trim().to_string()
    } else {
        doc
    }
}

/// The `$defs` name a property refers to, looking through `Option` and lists.
fn def_name(property: &Value) -> Option<&str> {
    if let Some(reference) = property.get("$ref").and_then(Value::as_str) {
        return reference.strip_prefix("#/$defs/");
    }
    property
        .get("anyOf")?
        .as_array()?
        .iter()
        .find_map(|option| option.get("$ref")?.as_str()?.strip_prefix("#/$defs/"))
}

/// A valid value to show, commented out, for an option that has no default: chosen by the
/// value's type, so every option of that type gets the same example.
fn example(property: &Value) -> Option<Value> {
    let text = match def_name(property)? {
        "AccountName" => "deploy",
        "Hostname" => "web1.example.com",
        "SshPublicKey" => "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIReplaceWithYourOwnKey you@laptop",
        "PasswordHash" => "$y$j9T$replace.with.mkpasswd.output$0123456789abcdefABCDEF",
        "IpNetwork" => "203.0.113.7",
        "FirewallRule" => "443/tcp",
        "OriginPattern" => "origin=Docker",
        "HttpUrl" => "https://mirror.example.com/repository",
        "KeyFingerprint" => "0123456789ABCDEF0123456789ABCDEF01234567",
        "Password" => "replace-with-a-long-random-password",
        "Domain" => "example.com",
        "AbsolutePath" => "/var/www/example",
        _ => return None,
    };
    Some(Value::String(text.into()))
}

/// Writes the properties of an object schema as `key: value` lines at `indent`.
fn object(out: &mut String, root: &Value, schema: &Value, defaults: &Value, indent: usize) {
    let pad = " ".repeat(indent);
    let empty = Map::new();
    let properties = schema
        .get("properties")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    for (name, property) in properties {
        let target = resolve(root, property);
        let value = defaults
            .get(name)
            .or_else(|| property.get("default"))
            .unwrap_or(&Value::Null);
        comment(out, indent, &property_doc(root, property));
        if target.get("properties").is_some() {
            let _ = writeln!(out, "{pad}{name}:");
            object(out, root, target, value, indent + 2);
            continue;
        }
        if value.is_null() {
            let shown = example(property).unwrap_or(Value::Null);
            let _ = writeln!(out, "{pad}# {name}: {}", scalar(&shown));
            continue;
        }
        let _ = writeln!(out, "{pad}{name}: {}", inline(value).unwrap_or_default());
        if inline(value).is_none() {
            block(out, value, indent + 2);
        }
        let item = property.get("items").map(|items| resolve(root, items));
        if let Some(item) = item.filter(|i| i.get("properties").is_some())
            && value.as_array().is_some_and(Vec::is_empty)
        {
            comment(
                out,
                indent,
                &format!(
                    "To add entries, replace `{name}: []` with these lines without their `# `:"
                ),
            );
            let _ = writeln!(out, "{pad}# {name}:");
            example_entry(out, root, item, indent);
        }
    }
}

/// Writes one commented-out list entry of an object schema: required fields and fields without a
/// default get an example, the others their default.
fn example_entry(out: &mut String, root: &Value, item: &Value, indent: usize) {
    let pad = " ".repeat(indent);
    let empty = Map::new();
    let properties = item
        .get("properties")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let required: Vec<&str> = item
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    // Required fields first, so the entry starts with what identifies it.
    let mut names: Vec<&String> = properties.keys().collect();
    names.sort_by_key(|name| !required.contains(&name.as_str()));
    for (i, name) in names.into_iter().enumerate() {
        let property = &properties[name];
        let field_pad = format!("{pad}#   {}", if i == 0 { "- " } else { "  " });
        let doc_pad = format!("{pad}#     ");
        for line in wrap(&property_doc(root, property), WRAP - doc_pad.len() - 2) {
            let _ = writeln!(out, "{doc_pad}# {line}");
        }
        let default = property.get("default").unwrap_or(&Value::Null);
        // A list of keys is the point of an account entry: show one.
        let items_example = property
            .get("items")
            .filter(|items| matches!(def_name(items), Some("SshPublicKey" | "Domain")))
            .and_then(example);
        let value = match (default, items_example) {
            (Value::Array(list), Some(sample)) if list.is_empty() => Value::Array(vec![sample]),
            (Value::Null, Some(sample)) => Value::Array(vec![sample]),
            (Value::Null, _) => example(property).unwrap_or(Value::Null),
            (default, _) => default.clone(),
        };
        match inline(&value) {
            Some(text) => {
                let _ = writeln!(out, "{field_pad}{name}: {text}");
            }
            None => {
                let _ = writeln!(out, "{field_pad}{name}:");
                let mut lines = String::new();
                block(&mut lines, &value, 0);
                for line in lines.lines() {
                    let _ = writeln!(out, "{doc_pad}  {line}");
                }
            }
        }
    }
}

/// A scalar as YAML: plain when every YAML reader (1.1 and 1.2) reads it back as the same
/// string, double-quoted otherwise (`"no"`, `"04:00"`, `"1.5"`).
fn scalar(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::String(s) => {
            let special = [
                "y", "n", "yes", "no", "on", "off", "true", "false", "null", "~",
            ];
            let safe_chars = s
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || " _./@+-$=~:".contains(c));
            let number_like = s.starts_with(|c: char| c.is_ascii_digit() || "+-.".contains(c))
                && s.chars()
                    .all(|c| c.is_ascii_digit() || ":._+-eE".contains(c));
            let plain = !s.is_empty()
                && safe_chars
                && !number_like
                && s.trim() == s
                && !s.starts_with(['-', ':', '~', '$', '@'])
                && !s.ends_with(':')
                && !s.contains(": ")
                && !special.contains(&s.to_ascii_lowercase().as_str());
            if plain {
                s.clone()
            } else {
                serde_json::to_string(s).unwrap_or_default()
            }
        }
        other => other.to_string(),
    }
}

/// A value on one line: scalars, and lists of scalars in flow style (`[a, b]`). `None` for
/// values that need a block (lists of objects, maps).
fn inline(value: &Value) -> Option<String> {
    match value {
        Value::Array(items) => {
            let parts: Option<Vec<String>> = items
                .iter()
                .map(|item| match item {
                    Value::String(s) if s.contains([',', '[', ']', '{', '}']) => {
                        Some(serde_json::to_string(s).unwrap_or_default())
                    }
                    Value::Array(_) | Value::Object(_) => None,
                    other => Some(scalar(other)),
                })
                .collect();
            Some(format!("[{}]", parts?.join(", ")))
        }
        Value::Object(map) if map.is_empty() => Some("{}".into()),
        Value::Object(_) => None,
        other => Some(scalar(other)),
    }
}

/// A value in block style, every line at `indent`.
fn block(out: &mut String, value: &Value, indent: usize) {
    let pad = " ".repeat(indent);
    let text = serde_norway::to_string(value).unwrap_or_default();
    for line in text.lines() {
        let _ = writeln!(out, "{pad}{line}");
    }
}
