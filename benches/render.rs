//! Render benchmarks (issue 9): compile + render every artifact through the library, in memory.
//!
//! - `compile_render/<profile>`: each built-in profile, as `phanes render --out` does it minus the
//!   file writes; `compile_render/all-modules`: the minimal profile plus every module in
//!   `phanes::modules::ALL` that can go together (not coolify), with the settings they need.
//! - `stages/compile`, `stages/render_all`: the all-modules case split into its two calls.
//! - `environment/parse`: building the template environment alone (`phanes::render::environment`).
//! - `users/<n>` (1, 10, 100, 1000): the minimal profile with n entries in `user.users`, to show it grows
//!   linearly, not quadratically, with the config.
//!
//! Every case reads an explicit config file written into a private temporary folder, so a
//! `phanes.yaml` or `profiles/` in the working directory cannot change what is measured.
//! `scripts/bench.sh` runs this and turns criterion's estimates into BENCHMARKS.md.

use std::hint::black_box;
use std::path::{Path, PathBuf};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use phanes::compile::{Request, compile};
use phanes::targets::{TargetOptions, render_all};

const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGx2dGVzdGtleWJsb2I bench@laptop";

/// What the all-modules profile needs on top of the defaults: nginx and caddy both default to
/// 80/443, so caddy moves aside (the same `--set`s as in BENCHMARKS.md's size table).
pub const ALL_MODULES_SETS: &[&str] = &["caddy.http_port=8080", "caddy.https_port=8443"];

/// Modules the all-modules profile cannot hold: coolify conflicts with nginx and caddy (its
/// Traefik owns 80 and 443); it is measured as the coolify built-in profile.
pub const ALL_MODULES_LEFT_OUT: &[&str] = &["coolify"];

/// A private, empty folder for config files and (empty) user profiles.
fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("phanes-bench-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("profiles")).expect("creating the scratch folder");
    dir
}

fn write_config(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("writing a bench config");
    path
}

fn request(dir: &Path, config: PathBuf, profile: &str) -> Request {
    Request {
        config: Some(config),
        profiles_dir: Some(dir.join("profiles")),
        profile: Some(profile.to_string()),
        sets: Vec::new(),
        modules: Vec::new(),
        skip_modules: Vec::new(),
    }
}

fn all_modules_request(dir: &Path) -> Request {
    let mut r = request(dir, write_config(dir, "empty.yaml", "{}\n"), "minimal");
    r.modules = phanes::modules::ALL
        .iter()
        .map(|m| m.name.to_string())
        .filter(|m| !ALL_MODULES_LEFT_OUT.contains(&m.as_str()))
        .collect();
    r.sets = ALL_MODULES_SETS.iter().map(|s| s.to_string()).collect();
    r
}

fn users_config(n: usize) -> String {
    let mut text = String::from("profile: minimal\nuser:\n  users:\n");
    for i in 0..n {
        text.push_str(&format!(
            "    - name: user{i}\n      groups: [adm]\n      ssh_keys:\n        - {KEY}\n"
        ));
    }
    text
}

/// compile + render_all, checking once up front that the case is valid.
fn compile_and_render(r: &Request, options: &TargetOptions) -> usize {
    let c = compile(r).expect("the bench config compiles");
    let artifacts = render_all(&c, options).expect("the bench config renders");
    artifacts.iter().map(|a| a.bytes.len()).sum()
}

fn options() -> TargetOptions {
    TargetOptions {
        provider: phanes::targets::cloud_init::Provider::Generic,
        bundle_url: None,
        packer_source: Default::default(),
    }
}

fn bench_profiles(c: &mut Criterion) {
    let dir = scratch();
    let options = options();
    let mut group = c.benchmark_group("compile_render");
    let empty = write_config(&dir, "empty.yaml", "{}\n");
    for (name, _) in phanes::profile::BUILT_IN {
        let r = request(&dir, empty.clone(), name);
        compile_and_render(&r, &options);
        group.bench_function(*name, |b| {
            b.iter(|| compile_and_render(black_box(&r), &options))
        });
    }
    let r = all_modules_request(&dir);
    compile_and_render(&r, &options);
    group.bench_function("all-modules", |b| {
        b.iter(|| compile_and_render(black_box(&r), &options))
    });
    group.finish();
}

/// Where the all-modules time goes: compile (config, profile, template environment) vs render_all.
fn bench_stages(c: &mut Criterion) {
    let dir = scratch();
    let options = options();
    let r = all_modules_request(&dir);
    let mut group = c.benchmark_group("stages");
    group.bench_function("compile", |b| {
        b.iter(|| compile(black_box(&r)).expect("compiles"))
    });
    let compiled = compile(&r).expect("compiles");
    group.bench_function("render_all", |b| {
        b.iter(|| render_all(black_box(&compiled), &options).expect("renders"))
    });
    group.finish();
}

fn bench_environment(c: &mut Criterion) {
    let mut group = c.benchmark_group("environment");
    group.bench_function("parse", |b| {
        b.iter(|| phanes::render::environment().expect("templates parse"))
    });
    group.finish();
}

fn bench_users(c: &mut Criterion) {
    let dir = scratch();
    let options = options();
    let mut group = c.benchmark_group("users");
    for n in [1usize, 10, 100, 1000] {
        let config = write_config(&dir, &format!("users-{n}.yaml"), &users_config(n));
        let r = request(&dir, config, "minimal");
        compile_and_render(&r, &options);
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &r, |b, r| {
            b.iter(|| compile_and_render(black_box(r), &options))
        });
    }
    group.finish();
}

criterion_group!(
    benches,
    bench_profiles,
    bench_stages,
    bench_environment,
    bench_users
);
criterion_main!(benches);
