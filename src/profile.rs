//! Profiles: named module lists with config defaults. Built-in ones are embedded in the binary;
//! users add their own as `<name>.yaml` in a profiles folder (next to their config by default).

use crate::config::Layer;
use crate::diagnostic::{Diagnostic, Diagnostics, closest};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Built-in profiles, embedded at build time.
pub const BUILT_IN: &[(&str, &str)] = &[
    ("minimal", include_str!("../profiles/minimal.yaml")),
    ("web", include_str!("../profiles/web.yaml")),
    ("database", include_str!("../profiles/database.yaml")),
    ("coolify", include_str!("../profiles/coolify.yaml")),
    ("dev", include_str!("../profiles/dev.yaml")),
];

/// The profile used when neither `--profile` nor the config names one.
pub const DEFAULT_PROFILE: &str = "minimal";

/// A profile file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileFile {
    name: String,
    description: String,
    #[serde(default)]
    extends: Option<String>,
    /// Modules this profile adds to the one it extends.
    #[serde(default)]
    modules: Vec<String>,
    /// Modules this profile removes from the one it extends.
    #[serde(default)]
    remove_modules: Vec<String>,
    /// Config defaults; the user's config overrides them. Checked by the config loader.
    #[serde(default)]
    #[allow(dead_code)]
    config: Option<serde_norway::Value>,
}

/// A profile with its `extends` chain resolved.
#[derive(Debug)]
pub struct Profile {
    /// The profile name, as in `--profile`.
    pub name: String,
    /// One line for `phanes list profiles`.
    pub description: String,
    /// The chain from the root ancestor to this profile, e.g. `["minimal", "web"]`.
    pub lineage: Vec<String>,
    /// The modules, after `extends`, `modules` and `remove_modules`.
    pub modules: Vec<String>,
    /// Each profile's config section as a layer, ancestors first.
    pub config_layers: Vec<Layer>,
}

/// Where profiles are looked up: a user folder (optional) before the built-in set.
pub struct ProfileSource {
    /// The user's profiles folder, if any.
    pub user_dir: Option<PathBuf>,
}

/// A profile found, before its `extends` is followed.
struct Found {
    origin: String,
    text: String,
}

impl ProfileSource {
    /// Names of all available profiles, user ones first, each once.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .user_files()
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        for (name, _) in BUILT_IN {
            if !names.iter().any(|n| n == name) {
                names.push(name.to_string());
            }
        }
        names
    }

    fn user_files(&self) -> Vec<(String, PathBuf)> {
        let Some(dir) = &self.user_dir else {
            return Vec::new();
        };
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Vec::new();
        };
        let mut files: Vec<(String, PathBuf)> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
            .filter_map(|p| Some((p.file_stem()?.to_str()?.to_string(), p.clone())))
            .collect();
        files.sort();
        files
    }

    fn find(&self, name: &str) -> Result<Found, Diagnostic> {
        if !is_profile_name(name) {
            return Err(Diagnostic::new(
                "profile",
                format!(
                    "{name:?} is not a profile name: expected lowercase letters, digits and '-'"
                ),
            ));
        }
        if let Some((_, path)) = self.user_files().into_iter().find(|(n, _)| n == name) {
            let text = std::fs::read_to_string(&path).map_err(|e| {
                Diagnostic::new(
                    path.display().to_string(),
                    format!("cannot read profile: {e}"),
                )
            })?;
            return Ok(Found {
                origin: path.display().to_string(),
                text,
            });
        }
        if let Some((_, text)) = BUILT_IN.iter().find(|(n, _)| *n == name) {
            return Ok(Found {
                origin: format!("built-in profile {name}"),
                text: text.to_string(),
            });
        }
        let names = self.names();
        let candidates: Vec<&str> = names.iter().map(String::as_str).collect();
        let mut d = Diagnostic::new(
            "profile",
            format!("unknown profile {name:?}; profiles: {}", names.join(", ")),
        );
        if let Some(best) = closest(name, &candidates) {
            d = d.with_help(format!("did you mean {best:?}?"));
        }
        Err(d)
    }

    /// Loads a profile and everything it extends.
    pub fn load(&self, name: &str) -> Result<Profile, Diagnostics> {
        let mut chain: Vec<(ProfileFile, Found)> = Vec::new();
        let mut next = Some(name.to_string());
        while let Some(current) = next {
            if chain.iter().any(|(p, _)| p.name == current) {
                let names: Vec<&str> = chain.iter().map(|(p, _)| p.name.as_str()).collect();
                return Err(Diagnostic::new(
                    "profile",
                    format!(
                        "profiles extend each other in a loop: {} -> {current}",
                        names.join(" -> ")
                    ),
                )
                .into());
            }
            let found = self.find(&current)?;
            let file: ProfileFile = serde_norway::from_str(&found.text)
                .map_err(|e| Diagnostic::from_yaml(&found.origin, Some(&found.text), &e))?;
            if file.name != current {
                return Err(Diagnostic::new(
                    &found.origin,
                    format!(
                        "the file is named {current:?} but says name: {:?}",
                        file.name
                    ),
                )
                .with_path("name")
                .located_in(&found.text)
                .into());
            }
            next = file.extends.clone();
            chain.push((file, found));
        }
        chain.reverse();
        let mut modules: Vec<String> = Vec::new();
        for (file, found) in &chain {
            for (key, list) in [
                ("modules", &file.modules),
                ("remove_modules", &file.remove_modules),
            ] {
                for (i, module) in list.iter().enumerate() {
                    if crate::modules::find(module).is_none() {
                        let message = crate::modules::unknown(module).to_string();
                        return Err(Diagnostic::new(&found.origin, message)
                            .with_path(format!("{key}[{i}]"))
                            .located_in(&found.text)
                            .into());
                    }
                }
            }
            modules.retain(|m| !file.remove_modules.contains(m));
            for module in &file.modules {
                if !modules.contains(module) {
                    modules.push(module.clone());
                }
            }
        }
        let (leaf, _) = chain.last().expect("at least the requested profile");
        Ok(Profile {
            name: leaf.name.clone(),
            description: leaf.description.clone(),
            lineage: chain.iter().map(|(p, _)| p.name.clone()).collect(),
            modules,
            config_layers: chain
                .iter()
                .map(|(_, found)| Layer {
                    origin: found.origin.clone(),
                    text: found.text.clone(),
                    nested_under: Some("config"),
                })
                .collect(),
        })
    }
}

fn is_profile_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// The default user profiles folder: `profiles/` next to the config file.
pub fn default_user_dir(config_path: &Path) -> PathBuf {
    config_path
        .parent()
        .unwrap_or(Path::new("."))
        .join("profiles")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_built_in_profile_loads() {
        let source = ProfileSource { user_dir: None };
        for (name, _) in BUILT_IN {
            let profile = source.load(name).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(!profile.modules.is_empty());
        }
    }

    #[test]
    fn user_profile_extends_a_built_in_one_and_removes_a_module() {
        let dir = std::env::temp_dir().join(format!("phanes-profile-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("lean.yaml"),
            "name: lean\ndescription: no swap\nextends: minimal\nremove_modules: [swap]\n",
        )
        .unwrap();
        let profile = ProfileSource {
            user_dir: Some(dir.clone()),
        }
        .load("lean")
        .unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(profile.lineage, ["minimal", "lean"]);
        assert!(!profile.modules.contains(&"swap".to_string()));
        assert!(profile.modules.contains(&"user".to_string()));
    }

    #[test]
    fn unknown_profile_suggests_the_closest() {
        let e = ProfileSource { user_dir: None }
            .load("minimall")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("unknown profile \"minimall\"") && e.contains("did you mean \"minimal\"?"),
            "{e}"
        );
    }
}
