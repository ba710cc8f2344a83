//! phanes compiles a server profile into artifacts that bring a fresh VPS to a secure, working
//! state: an idempotent bash bundle, a `#cloud-config` that runs it at first boot, a Packer
//! fragment, and a reproducible archive with its manifest.
//!
//! The data's way through: [`compile`] (config layers, profile, module order) → [`bundle`]
//! (runtime + module sections) → [`targets`] (one file per artifact kind) → [`output`].

#![warn(missing_docs)]
// Diagnostics are large but only travel on the error path, once per run.
#![allow(clippy::result_large_err)]

pub mod bundle;
pub mod cli;
pub mod compile;
pub mod config;
pub mod diagnostic;
pub mod explain;
pub mod modules;
pub mod output;
pub mod profile;
pub mod render;
pub mod targets;

/// The phanes version, stamped into every artifact.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
