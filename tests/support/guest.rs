//! Driving a phanes bundle inside a booted guest: one run with `--json` parsed into step
//! statuses, the convergence verdict (a second run changes nothing, a dry run finds no drift),
//! and fresh logins from the host. Used with `#[path = "support/guest.rs"] mod guest;` next to
//! `vm`.
#![allow(dead_code)] // each test binary uses a different part

use crate::vm::Vm;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};

/// One run of the bundle in the guest with `--json`: each step's status, and the exit code.
pub struct Run {
    pub exit: i32,
    pub steps: Vec<(String, String)>,
    pub recap: Value,
    pub raw: String,
}

impl Run {
    pub fn with_status(&self, status: &str) -> BTreeSet<String> {
        self.steps
            .iter()
            .filter(|(id, s)| s == status && !id.starts_with("handler:"))
            .map(|(id, _)| id.clone())
            .collect()
    }
}

/// Runs the installed or copied bundle as root and parses its JSON lines.
pub fn run_bundle(vm: &Vm, bundle: &str, args: &str) -> Run {
    let out = vm.ssh(&format!("sudo -n {bundle} --json {args}"));
    let raw = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut steps = Vec::new();
    let mut recap = Value::Null;
    for line in raw.lines() {
        let v: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("bad JSON line {line:?}: {e}"));
        if let Some(r) = v.get("recap") {
            recap = r.clone();
        } else if v.get("warning").is_some() {
            continue;
        } else {
            let id = v["step"].as_str().unwrap().to_string();
            let id = if v["kind"] == "handler" {
                format!("handler:{id}")
            } else {
                id
            };
            steps.push((id, v["status"].as_str().unwrap().to_string()));
        }
    }
    Run {
        exit: out.status.code().unwrap_or(-1),
        steps,
        recap,
        raw: raw + &String::from_utf8_lossy(&out.stderr),
    }
}

/// The harness's convergence verdict: a second run changes nothing and fails nothing, and a dry
/// run finds no drift. Returns an error naming the offending steps.
pub fn converged(vm: &Vm, bundle: &str) -> Result<(), String> {
    let again = run_bundle(vm, bundle, "");
    let moved: Vec<String> = again
        .steps
        .iter()
        .filter(|(_, s)| s != "ok" && s != "skipped")
        .map(|(id, s)| format!("{id} ({s})"))
        .collect();
    if again.exit != 0 || !moved.is_empty() {
        return Err(format!(
            "not idempotent: exit {}, steps not ok: {}\n{}",
            again.exit,
            moved.join(", "),
            again.raw
        ));
    }
    let dry = run_bundle(vm, bundle, "--dry-run");
    if dry.exit != 0 {
        return Err(format!(
            "dry-run after convergence exited {}: {:?}",
            dry.exit,
            dry.with_status("would-change")
        ));
    }
    Ok(())
}

/// A fresh SSH login from the host, not through the harness's shared connection: `options` are
/// extra ssh options, `port` the forwarded host port.
pub fn ssh_from_host(key: &Path, user: &str, port: u16, options: &[&str], command: &str) -> Output {
    Command::new("ssh")
        .args([
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "BatchMode=yes",
        ])
        .args(["-o", "ConnectTimeout=20", "-o", "IdentitiesOnly=yes", "-i"])
        .arg(key)
        .args(options)
        .args([
            "-p",
            &port.to_string(),
            &format!("{user}@127.0.0.1"),
            command,
        ])
        .output()
        .expect("run ssh")
}
