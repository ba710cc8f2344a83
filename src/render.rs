//! The minijinja environment: every template, embedded at build time and parsed once, with the
//! filters that make config values safe in bash, YAML and HCL.

use crate::modules;
use anyhow::{Context, Result};
use minijinja::syntax::SyntaxConfig;
use minijinja::value::Serde;
use minijinja::{Environment, UndefinedBehavior, Value};

/// Target templates (the wrappers around the bundle), by template id.
pub const TARGET_TEMPLATES: &[(&str, &str)] = &[
    (
        "targets/setup.sh",
        include_str!("../templates/targets/setup.sh.j2"),
    ),
    (
        "targets/user-data.yaml",
        include_str!("../templates/targets/user-data.yaml.j2"),
    ),
    (
        "targets/phanes.pkr.hcl",
        include_str!("../templates/targets/phanes.pkr.hcl.j2"),
    ),
];

/// Builds the environment with every module and target template loaded.
pub fn environment() -> Result<Environment<'static>> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    // Escaping is explicit, per value, with the filters below; minijinja's automatic JSON escaping
    // of *.yaml templates would quote whole blocks.
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
    let syntax = SyntaxConfig::builder()
        .trim_blocks(true)
        .lstrip_blocks(true)
        .keep_trailing_newline(true)
        .build()
        .expect("the default delimiters are valid");
    env.set_syntax(syntax);
    env.add_filter("sh", shell_quote);
    env.add_filter("comment", comment_safe);
    env.add_filter("json", json_string);
    env.add_filter("hcl", hcl_string);
    env.add_filter("bytes", size_in_bytes);
    for module in modules::ALL {
        env.add_template_owned(module_template_id(module.name), module.template)
            .with_context(|| format!("template of module {} (a phanes bug)", module.name))?;
    }
    for (id, source) in TARGET_TEMPLATES {
        env.add_template(id, source)
            .with_context(|| format!("template {id} (a phanes bug)"))?;
    }
    Ok(env)
}

/// Turns any serializable value into a template value.
pub fn value<T: serde::Serialize>(v: T) -> Value {
    Value::from(Serde(v))
}

/// The template id of a module's steps.
pub fn module_template_id(name: &str) -> String {
    format!("modules/{name}.sh")
}

/// Renders a template, naming it in any error (template errors are phanes bugs).
pub fn render(env: &Environment<'static>, id: &str, context: Value) -> Result<String> {
    env.get_template(id)
        .and_then(|t| t.render(context))
        .map_err(|e| anyhow::anyhow!("rendering {id} failed (a phanes bug): {e:#}"))
}

/// Quotes a value for bash: strings in single quotes (a `'` becomes `'\''`), numbers and bools
/// as they are, lists as space-separated quoted words. Nothing inside can end the quote.
pub fn shell_quote(value: Value) -> String {
    if let Some(s) = value.as_str() {
        return quote(s);
    }
    if value.is_number() || matches!(value.kind(), minijinja::value::ValueKind::Bool) {
        return value.to_string();
    }
    if let Ok(iter) = value.try_iter() {
        return iter.map(shell_quote).collect::<Vec<_>>().join(" ");
    }
    if value.is_none() || value.is_undefined() {
        return "''".to_string();
    }
    quote(&value.to_string())
}

/// Single-quotes a string for bash.
pub fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Makes text safe inside a `#` comment line: control characters (newlines) become spaces.
fn comment_safe(value: Value) -> String {
    let text = value
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| value.to_string());
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// A config size (`2G`) as a number of bytes.
fn size_in_bytes(value: Value) -> Result<u64, minijinja::Error> {
    let text = value.to_string();
    crate::config::types::Size::parse(&text).ok_or_else(|| {
        minijinja::Error::new(
            minijinja::ErrorKind::InvalidOperation,
            format!("{text:?} is not a size"),
        )
    })
}

/// A JSON string literal, which is also a valid double-quoted YAML scalar.
fn json_string(value: Value) -> String {
    let text = value
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| value.to_string());
    serde_json::to_string(&text).expect("strings always serialize")
}

/// A double-quoted HCL string: JSON escaping plus HCL's own template markers `${` and `%{`.
pub fn hcl_string(value: Value) -> String {
    json_string(value).replace("${", "$${").replace("%{", "%%{")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_parses() {
        environment().expect("all templates parse");
    }

    #[test]
    fn shell_quote_keeps_hostile_text_inert() {
        assert_eq!(shell_quote(Value::from("it's $(id)")), r"'it'\''s $(id)'");
        assert_eq!(shell_quote(Value::from(vec!["a b", "c"])), "'a b' 'c'");
        assert_eq!(shell_quote(Value::from(42)), "42");
    }

    #[test]
    fn hcl_and_comment_filters_escape_their_markers() {
        assert_eq!(hcl_string(Value::from("${x} %{y}\"")), r#""$${x} %%{y}\"""#);
        assert_eq!(comment_safe(Value::from("a\nrm -rf /")), "a rm -rf /");
    }
}
