//! From command-line request to a checked compilation: config layers, profile, module order.
//! Everything that can be wrong with the input is found here, before any output is written.

use crate::config::{self, Config, Layer};
use crate::diagnostic::Diagnostic;
use crate::modules::{self, ModuleSpec};
use crate::profile::{self, Profile, ProfileSource};
use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use std::path::PathBuf;

/// The config file read when `--config` is not given (if it exists).
pub const DEFAULT_CONFIG: &str = "phanes.yaml";

/// What the user asked for.
#[derive(Debug, Default, Clone)]
pub struct Request {
    /// `--config`; when `None`, `phanes.yaml` is read if present.
    pub config: Option<PathBuf>,
    /// `--profiles-dir`: where user profiles are looked up.
    pub profiles_dir: Option<PathBuf>,
    /// `--profile`; when `None`, the config's `profile`, else minimal.
    pub profile: Option<String>,
    /// `--set KEY=VALUE` overrides, in order.
    pub sets: Vec<String>,
    /// Extra modules on top of the profile's.
    pub modules: Vec<String>,
    /// Modules to leave out.
    pub skip_modules: Vec<String>,
}

/// A checked, ready-to-render compilation.
pub struct Compilation {
    /// The template environment, every template parsed.
    pub env: minijinja::Environment<'static>,
    /// `--profile`; when `None`, the config's `profile`, else minimal.
    pub profile: Profile,
    /// The selected modules, in run order.
    pub modules: Vec<&'static ModuleSpec>,
    /// The effective config after every layer.
    pub config: Config,
    /// sha256 of the effective config in canonical YAML.
    pub config_sha256: String,
}

/// Loads and checks everything a render needs.
pub fn compile(request: &Request) -> Result<Compilation> {
    let (config_path, user_layer) = read_user_config(request)?;
    let profiles_dir = request.profiles_dir.clone().or_else(|| {
        Some(profile::default_user_dir(
            config_path.as_deref().unwrap_or(DEFAULT_CONFIG.as_ref()),
        ))
    });
    let source = ProfileSource {
        user_dir: profiles_dir,
    };
    // The profile name may itself come from the config file or --set.
    let name = match &request.profile {
        Some(name) => name.clone(),
        None => {
            let layers: Vec<Layer> = user_layer.iter().map(clone_layer).collect();
            let (config, _) = config::assemble(&layers, &request.sets)?;
            config
                .profile
                .unwrap_or_else(|| profile::DEFAULT_PROFILE.to_string())
        }
    };
    let profile = source.load(&name)?;
    let mut layers: Vec<Layer> = profile.config_layers.iter().map(clone_layer).collect();
    layers.extend(user_layer.iter().map(clone_layer));
    let (config, effective) = config::assemble(&layers, &request.sets)?;
    let mut wanted = profile.modules.clone();
    wanted.extend(request.modules.iter().cloned());
    let modules = modules::resolve(&wanted, &request.skip_modules)?;
    modules::check_ports(&modules, &config)?;
    let canonical =
        serde_norway::to_string(&effective).context("serializing the effective config")?;
    let config_sha256 = hex(&Sha256::digest(canonical.as_bytes()));
    tracing::debug!(profile = %profile.name, modules = ?modules.iter().map(|m| m.name).collect::<Vec<_>>(), "compiled");
    Ok(Compilation {
        env: crate::render::environment()?,
        profile,
        modules,
        config,
        config_sha256,
    })
}

fn clone_layer(layer: &Layer) -> Layer {
    Layer {
        origin: layer.origin.clone(),
        text: layer.text.clone(),
        nested_under: layer.nested_under,
    }
}

fn read_user_config(request: &Request) -> Result<(Option<PathBuf>, Option<Layer>)> {
    let (path, required) = match &request.config {
        Some(path) => (path.clone(), true),
        None => (PathBuf::from(DEFAULT_CONFIG), false),
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let origin = path.display().to_string();
            Ok((
                Some(path),
                Some(Layer {
                    origin,
                    text,
                    nested_under: None,
                }),
            ))
        }
        Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => {
            tracing::debug!("no {DEFAULT_CONFIG}: using the built-in defaults");
            Ok((None, None))
        }
        Err(e) => Err(Diagnostic::new(
            path.display().to_string(),
            format!("cannot read the config file: {e}"),
        )
        .into()),
    }
}

/// Lowercase hex of a digest.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
