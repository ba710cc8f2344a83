//! The typed configuration and how it is assembled from layers: built-in defaults, then the
//! profile chain's `config`, then the user's file, then each `--set`. Every layer is checked on
//! its own first, so an error points at the file and line that caused it.

pub mod types;

use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::modules;
use serde::{Deserialize, Serialize};
use serde_norway::{Mapping, Value};

/// The whole configuration: one section per module, each with safe defaults.
#[derive(Clone, Debug, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Profile to render when `--profile` is not given.
    pub profile: Option<String>,
    /// Settings of the `baseline` module.
    pub baseline: modules::baseline::Settings,
    /// Settings of the `user` module.
    pub user: modules::user::Settings,
    /// Settings of the `security` module.
    pub security: modules::security::Settings,
    /// Settings of the `swap` module.
    pub swap: modules::swap::Settings,
    /// Settings of the `updates` module.
    pub updates: modules::updates::Settings,
    /// Settings of the `docker` module.
    pub docker: modules::docker::Settings,
    /// Settings of the `monitoring` module.
    pub monitoring: modules::monitoring::Settings,
    /// Settings of the `nginx` module.
    pub nginx: modules::nginx::Settings,
    /// Settings of the `caddy` module.
    pub caddy: modules::caddy::Settings,
    /// Settings of the `postgres` module.
    pub postgres: modules::postgres::Settings,
    /// Settings of the `redis` module.
    pub redis: modules::redis::Settings,
    /// Settings of the `tailscale` module.
    pub tailscale: modules::tailscale::Settings,
    /// Settings of the `coolify` module.
    pub coolify: modules::coolify::Settings,
    /// Settings of the `devtools` module.
    pub devtools: modules::devtools::Settings,
}

/// A YAML document holding (part of) a config, and where it came from.
#[derive(Debug, Clone)]
pub struct Layer {
    /// File name or description used in error messages.
    pub origin: String,
    /// The YAML text.
    pub text: String,
    /// Key under which the config sits in the document (`config` in a profile), if any.
    pub nested_under: Option<&'static str>,
}

impl Layer {
    /// Parses the layer, reporting type errors and unknown keys with their position.
    fn parse(&self) -> Result<Value, Diagnostic> {
        let diagnostic = |e: &serde_norway::Error| {
            let d = Diagnostic::from_yaml(&self.origin, Some(&self.text), e);
            match self.nested_under {
                Some(key) if !d.path.starts_with(key) => {
                    let path = if d.path.is_empty() {
                        key.to_string()
                    } else {
                        format!("{key}.{}", d.path)
                    };
                    d.with_path(path)
                }
                _ => d,
            }
        };
        // The typed parse comes first: it reads the text, so serde reports line and column, and
        // it rejects a document that is not a mapping as such, where the untyped parse below
        // would first resolve a tag like `!!int` somewhere inside it and report that under no
        // key path. An empty document is the one thing the typed parse refuses that is fine.
        let typed = if self.nested_under.is_none() {
            serde_norway::from_str::<Config>(&self.text).map(drop)
        } else {
            #[derive(Deserialize, schemars::JsonSchema)]
            struct Nested {
                #[serde(default)]
                #[allow(dead_code)]
                config: Option<Config>,
            }
            serde_norway::from_str::<Nested>(&self.text).map(drop)
        };
        let document = serde_norway::from_str::<Value>(&self.text);
        if let Ok(Value::Null) = document {
            return Ok(Value::Mapping(Mapping::new()));
        }
        typed.map_err(|e| diagnostic(&e))?;
        let value = match (self.nested_under, document.map_err(|e| diagnostic(&e))?) {
            (None, v) => v,
            (Some(key), Value::Mapping(mut m)) => {
                m.remove(key).unwrap_or(Value::Mapping(Mapping::new()))
            }
            (Some(_), _) => return Ok(Value::Mapping(Mapping::new())),
        };
        Ok(value)
    }
}

/// Builds the effective config from layers (lowest priority first) and `--set` overrides.
/// Returns the config and its YAML form (for the manifest's hash).
pub fn assemble(layers: &[Layer], sets: &[String]) -> Result<(Config, Value), Diagnostics> {
    // Start from the defaults, so `--set` can index their lists and the hash covers everything.
    let mut merged = serde_norway::to_value(Config::default()).expect("defaults serialize");
    let mut problems = Vec::new();
    for layer in layers {
        match layer.parse() {
            Ok(value) => merge(&mut merged, value, ""),
            Err(d) => problems.push(d),
        }
    }
    if !problems.is_empty() {
        return Err(Diagnostics(problems));
    }
    for set in sets {
        apply_set(&mut merged, set)?;
    }
    // Each layer was checked from its text, where a plain scalar such as `12` or `false` is
    // accepted for a string option; the merged value keeps it as a number or boolean, so read it
    // back the same way, through YAML text, instead of failing with no key path.
    let config: Config = serde_norway::from_value(merged.clone()).or_else(|_| {
        let text = serde_norway::to_string(&merged)
            .map_err(|e| Diagnostic::from_yaml("config", None, &e))?;
        serde_norway::from_str(&text).map_err(|e| Diagnostic::from_yaml("config", None, &e))
    })?;
    let user_file = layers.iter().rev().find(|l| l.nested_under.is_none());
    let problems: Vec<Diagnostic> = modules::ALL
        .iter()
        .flat_map(|m| (m.validate)(&config))
        .map(|mut d| {
            if let Some(file) = user_file {
                if let Some(set) = sets
                    .iter()
                    .rev()
                    .find(|s| s.starts_with(&format!("{}=", d.path)))
                {
                    d.origin = format!("--set {set}");
                } else {
                    d.origin = file.origin.clone();
                    d = d.located_in(&file.text);
                }
            }
            d
        })
        .collect();
    if !problems.is_empty() {
        return Err(Diagnostics(problems));
    }
    Ok((config, merged))
}

/// Mappings a layer replaces as a whole instead of merging key by key: per-architecture
/// checksums belong to one version, so `sha256: {amd64: X}` written with a new version must not
/// keep the default version's arm64 checksum.
const REPLACED_WHOLE: &[&str] = &[
    "devtools.go.sha256",
    "devtools.rust.sha256",
    "devtools.uv.sha256",
];

/// Deep-merges `overlay` into `base` (at key path `path`): mappings merge key by key (except
/// [`REPLACED_WHOLE`]), anything else replaces.
fn merge(base: &mut Value, overlay: Value, path: &str) {
    match (base, overlay) {
        (Value::Mapping(base), Value::Mapping(overlay)) if !REPLACED_WHOLE.contains(&path) => {
            for (key, value) in overlay {
                let child = match key.as_str() {
                    Some(name) if path.is_empty() => name.to_string(),
                    Some(name) => format!("{path}.{name}"),
                    None => String::new(),
                };
                match base.get_mut(&key) {
                    Some(existing) => merge(existing, value, &child),
                    None => {
                        base.insert(key, value);
                    }
                }
            }
        }
        (base, overlay) => *base = overlay,
    }
}

/// Applies one `--set key.path=value`. The value is read as YAML (`2G`, `22`, `[a, b]`, `true`),
/// falling back to a plain string. Numeric segments index lists: `user.users.0.name=alice`.
fn apply_set(merged: &mut Value, set: &str) -> Result<(), Diagnostic> {
    let origin = format!("--set {set}");
    let Some((path, raw)) = set.split_once('=') else {
        return Err(Diagnostic::new(
            origin,
            "expected KEY=VALUE, like swap.size=2G",
        ));
    };
    let segments: Vec<&str> = path.split('.').collect();
    if segments.iter().any(|s| s.is_empty()) {
        return Err(Diagnostic::new(
            origin,
            format!("{path:?} is not a key path: expected names separated by dots, like swap.size"),
        ));
    }
    let value: Value =
        serde_norway::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_string()));
    let mut candidate = merged.clone();
    let mut node = &mut candidate;
    for (i, segment) in segments.iter().enumerate() {
        let so_far = segments[..=i].join(".");
        node = match node {
            Value::Sequence(items) => {
                let index: usize = segment.parse().map_err(|_| {
                    Diagnostic::new(
                        &origin,
                        format!("{so_far}: a list needs a numeric index here"),
                    )
                })?;
                let len = items.len();
                items.get_mut(index).ok_or_else(|| {
                    Diagnostic::new(
                        &origin,
                        format!(
                            "{so_far}: index {index} is out of range (the list has {len} items)"
                        ),
                    )
                })?
            }
            other => {
                if !other.is_mapping() {
                    *other = Value::Mapping(Mapping::new());
                }
                let map = other.as_mapping_mut().expect("just made a mapping");
                map.entry(Value::String(segment.to_string()))
                    .or_insert(Value::Null)
            }
        };
    }
    *node = value;
    serde_norway::from_value::<Config>(candidate.clone()).map_err(|e| {
        let d = Diagnostic::from_yaml(&origin, None, &e);
        let path = if d.path.is_empty() {
            path.to_string()
        } else {
            d.path.clone()
        };
        d.with_path(path)
    })?;
    *merged = candidate;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(text: &str) -> Layer {
        Layer {
            origin: "phanes.yaml".into(),
            text: text.into(),
            nested_under: None,
        }
    }

    fn error(layers: &[Layer], sets: &[&str]) -> String {
        let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
        assemble(layers, &sets).map(|_| ()).unwrap_err().to_string()
    }

    /// Every path in REPLACED_WHOLE is a mapping of the defaults (a renamed option would
    /// otherwise silently merge again), and a layer's map there replaces it whole.
    #[test]
    fn replaced_whole_paths_exist_and_are_replaced() {
        for path in REPLACED_WHOLE {
            let mut merged = serde_norway::to_value(Config::default()).unwrap();
            let lookup = |v: &Value| {
                path.split('.')
                    .try_fold(v.clone(), |v, key| v.get(key).cloned())
            };
            let default = lookup(&merged).unwrap_or_else(|| panic!("{path} is not in the config"));
            assert!(default.get("arm64").is_some(), "{path}: {default:?}");
            let layer = path.rsplit('.').fold(
                serde_norway::from_str::<Value>("{amd64: abc}").unwrap(),
                |v, key| {
                    let mut m = serde_norway::Mapping::new();
                    m.insert(Value::from(key), v);
                    Value::Mapping(m)
                },
            );
            merge(&mut merged, layer, "");
            let replaced = lookup(&merged).unwrap();
            assert_eq!(
                replaced,
                serde_norway::from_str::<Value>("{amd64: abc}").unwrap(),
                "{path}"
            );
        }
    }

    #[test]
    fn unknown_key_names_path_position_and_suggestion() {
        let e = error(&[user("baseline:\n  hostnme: web\n")], &[]);
        assert!(
            e.starts_with("phanes.yaml:2:3: baseline: unknown field `hostnme`"),
            "{e}"
        );
        assert!(e.contains("did you mean `hostname`?"), "{e}");
        assert!(e.contains(" 2 |   hostnme: web"), "{e}");
    }

    #[test]
    fn wrong_type_and_out_of_range_are_reported_with_position() {
        let e = error(&[user("swap:\n  swappiness: lots\n")], &[]);
        assert!(
            e.starts_with("phanes.yaml:2:15: swap.swappiness: invalid type: string \"lots\""),
            "{e}"
        );
        let e = error(&[user("swap:\n  swappiness: 300\n")], &[]);
        assert!(
            e.contains("swap.swappiness: 300 is out of range: expected 0 to 200"),
            "{e}"
        );
        let e = error(&[user("baseline:\n  hostname: \"web;reboot\"\n")], &[]);
        assert!(
            e.contains("phanes.yaml:2:13: baseline.hostname: invalid value \"web;reboot\""),
            "{e}"
        );
    }

    #[test]
    fn cross_field_errors_point_into_the_file() {
        let e = error(&[user("# swap\nswap:\n  size: 1M\n")], &[]);
        assert!(
            e.starts_with("phanes.yaml:3:3: swap.size: swap size 1M is out of range"),
            "{e}"
        );
    }

    #[test]
    fn set_overrides_and_reports_its_own_errors() {
        let (config, _) =
            assemble(&[user("swap:\n  size: 2G\n")], &["swap.size=512M".into()]).unwrap();
        assert_eq!(config.swap.size.0, 512 << 20);
        let e = error(&[], &["swap.sise=1G"]);
        assert!(
            e.starts_with("--set swap.sise=1G: swap: unknown field `sise`"),
            "{e}"
        );
        assert!(e.contains("did you mean `size`?"), "{e}");
        assert!(error(&[], &["swap.size"]).contains("expected KEY=VALUE"));
        assert!(error(&[], &["user.users.3.name=x"]).contains("index 3 is out of range"));
    }

    #[test]
    fn layers_merge_maps_and_replace_lists() {
        let profile = Layer {
            origin: "profile".into(),
            text: "name: p\nconfig:\n  swap:\n    size: 4G\n    swappiness: 5\n".into(),
            nested_under: Some("config"),
        };
        let (config, _) = assemble(&[profile, user("swap:\n  size: 2G\n")], &[]).unwrap();
        assert_eq!((config.swap.size.0, config.swap.swappiness.0), (2 << 30, 5));
    }
}
