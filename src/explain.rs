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
        let default = property.get("default").unwrap_or(&defaults[name.as_str()]);
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
        let _ = writeln!(
            out,
            "  {path}  ({}; default: {})",
            type_name(root, property),
            describe(default)
        );
        for line in doc.lines() {
            let _ = writeln!(out, "      {line}");
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
        config => render::value(&defaults),
    };
    let section = render::render(&env, &render::module_template_id(module.name), ctx)?;
    for (id, description) in crate::cli::step_declarations(&section) {
        let _ = writeln!(out, "  {id:<28} {description}");
    }
    Ok(out)
}
