//! Secrets in rendered artifacts (issue 8, "secrets"), without a VM: the passwords a config may
//! carry (postgres role passwords, the Redis password, a user's password hash) and the Netdata
//! claim token (never in the config) reach the bundle only as shell-function arguments and
//! variables, and the functions that use them hand them to the real programs on stdin or in the
//! environment, never as an argument (which `ps` would show). Nothing here runs a bundle.

mod common;

use common::render::KEY;
use common::{output_ok, phanes, temp_dir};
use std::fs;
const PG_SECRET: &str = "PgSecret-4f1c9e2a7b";
const REDIS_SECRET: &str = "RedisSecret-8d3b6a0c5e";
const HASH_SECRET: &str =
    "$6$pepper$HashSecret0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOP";

fn config() -> String {
    format!(
        "user:
  users:
    - name: deploy
      ssh_keys: ['{KEY}']
    - name: ops
      sudo: password
      password_hash: '{HASH_SECRET}'
monitoring:
  claim:
    enabled: true
postgres:
  roles:
    - name: app
      password: {PG_SECRET}
    - name: gen
  databases:
    - name: appdb
      owner: app
redis:
  password: {REDIS_SECRET}
"
    )
}

/// Every artifact of the minimal profile plus postgres, redis and monitoring.
fn render(config: &str) -> std::path::PathBuf {
    let dir = temp_dir("secrets");
    let path = dir.join("phanes.yaml");
    fs::write(&path, config).unwrap();
    output_ok(
        phanes()
            .args([
                "render",
                "--modules",
                "postgres,redis,monitoring",
                "--config",
            ])
            .arg(&path)
            .arg("--out")
            .arg(dir.join("out")),
    );
    dir.join("out")
}

/// The one-line function `name() { ... }` or the block from `name() {` to the next `}` line.
fn function(script: &str, name: &str) -> String {
    let start = script
        .find(&format!("\n{name}() {{"))
        .unwrap_or_else(|| panic!("no function {name} in setup.sh"));
    let body = &script[start + 1..];
    let first = body.lines().next().unwrap();
    if first.trim_end().ends_with('}') {
        return first.to_string();
    }
    let end = body.find("\n}\n").expect("function end");
    body[..end + 2].to_string()
}

#[test]
fn secrets_reach_the_bundle_only_as_function_arguments_and_leave_on_stdin_or_env() {
    let out = render(&config());
    let setup = fs::read_to_string(out.join("setup.sh")).unwrap();

    // 1. Where each secret appears in setup.sh: exactly these lines, all shell-function calls
    // or a variable assignment, which run inside bash and start no process with them.
    let allowed: &[(&str, &[&str])] = &[
        (
            PG_SECRET,
            &[
                "postgres_role_app__check() { postgres_role_check 'app' 'PgSecret-4f1c9e2a7b'; }",
                "postgres_role_app__apply() { postgres_role_apply 'app' 'PgSecret-4f1c9e2a7b'; }",
            ],
        ),
        (
            REDIS_SECRET,
            &["REDIS_PASSWORD_CONFIGURED='RedisSecret-8d3b6a0c5e'"],
        ),
        (
            HASH_SECRET,
            &[
                "user_ops_password__check() { user_password_ok 'ops' '$6$pepper$HashSecret0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOP'; }",
                "user_ops_password__apply() { user_password_apply 'ops' '$6$pepper$HashSecret0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOP'; }",
            ],
        ),
    ];
    for (secret, lines) in allowed {
        let found: Vec<&str> = setup.lines().filter(|l| l.contains(secret)).collect();
        assert_eq!(
            found, *lines,
            "{secret} must appear in setup.sh only as these function arguments / assignment"
        );
        // The forms that would put it on a command line.
        for pattern in [
            format!("-a {secret}"),
            format!("-a '{secret}'"),
            format!("--password {secret}"),
            format!("--password='{secret}'"),
            format!("--password '{secret}'"),
            format!("PASSWORD '{secret}'"),
            format!("requirepass '{secret}'"),
            format!("chpasswd {secret}"),
            format!("usermod -p '{secret}'"),
            format!("-p '{secret}'"),
        ] {
            assert!(!setup.contains(&pattern), "setup.sh has {pattern:?}");
        }
    }
    // The generated secrets are never in the bundle: the role without a password and a claim
    // token come from files on the server.
    assert!(setup.contains("postgres_role_gen__apply() { postgres_role_apply 'gen' ''; }"));

    // 2. The functions that receive the secrets pass them on stdin or in the environment.
    let user_apply = function(&setup, "user_password_apply");
    assert!(
        user_apply.contains("printf '%s:%s\\n' \"$1\" \"$2\" | chpasswd --encrypted"),
        "the hash goes to chpasswd on stdin: {user_apply}"
    );
    let user_ok = function(&setup, "user_password_ok");
    assert!(
        user_ok.contains("getent shadow \"$1\"") && !user_ok.contains("getent shadow \"$2\""),
        "the check compares inside bash: {user_ok}"
    );
    let role_apply = function(&setup, "postgres_role_apply");
    assert!(
        role_apply.contains("postgres_role_sql \"$1\" \"$password\" \"$exists\" | postgres_sql"),
        "the role password goes to psql on stdin: {role_apply}"
    );
    let role_check = function(&setup, "postgres_role_check");
    assert!(
        role_check.contains("postgres_role_password \"$1\" \"$2\"; } | postgres_scram_matches"),
        "the check hands the password to the verifier on stdin: {role_check}"
    );
    let scram = function(&setup, "postgres_scram_matches");
    assert!(
        scram.contains("sys.stdin") && !scram.contains("sys.argv"),
        "the verifier reads the password from stdin only: {scram}"
    );
    let sql = function(&setup, "postgres_sql");
    assert!(
        !sql.contains(" -c ") && !sql.contains("--command"),
        "psql reads SQL from stdin, never -c: {sql}"
    );
    let redis_cli = function(&setup, "redis_cli");
    assert!(
        redis_cli.contains("REDISCLI_AUTH=$(redis_password) redis-cli")
            && !redis_cli.contains(" -a "),
        "redis-cli gets the password in REDISCLI_AUTH: {redis_cli}"
    );
    let redis_conf = function(&setup, "redis_conf");
    assert!(
        redis_conf.starts_with("redis_conf() { printf "),
        "requirepass is written by printf (a builtin): {redis_conf}"
    );
    // Nowhere in the bundle is redis-cli given -a, or psql a password argument.
    for (i, line) in setup.lines().enumerate() {
        let code = line.split(" #").next().unwrap_or("");
        assert!(
            !(code.contains("redis-cli") && code.contains(" -a ")),
            "line {}: redis-cli -a: {line}",
            i + 1
        );
        assert!(
            !code.contains("PGPASSWORD=") && !code.contains("--password"),
            "line {}: a password argument or PGPASSWORD: {line}",
            i + 1
        );
        assert!(
            !code.contains("usermod -p") && !code.contains("useradd -p"),
            "line {}: a hash as an argument: {line}",
            i + 1
        );
    }
    // The claim token is read from its file into a variable and printed by a builtin.
    let claim = setup
        .lines()
        .find(|l| l.contains("token=$(tr -d '[:space:]' <\"$NETDATA_CLAIM_TOKEN_FILE\")"))
        .is_some();
    assert!(claim, "the claim token is read from its file");
    for line in setup.lines().filter(|l| l.contains("\"$token\"")) {
        assert!(
            line.trim_start().starts_with("printf ") || line.contains("=~"),
            "the token is used only by printf or a test: {line}"
        );
    }
    // Secret files are made 0600/0700 by phanes_secret.
    let secret_fn = function(&setup, "phanes_secret");
    assert!(
        secret_fn.contains("umask 077") || secret_fn.contains("0600") || secret_fn.contains("0700"),
        "phanes_secret makes private files: {secret_fn}"
    );

    // 3. The other artifacts: user-data carries the bundle in write_files only (never in
    // runcmd); the manifest and checksums never hold a secret.
    let user_data = fs::read_to_string(out.join("user-data.yaml")).unwrap();
    let doc: serde_norway::Value = serde_norway::from_str(&user_data).unwrap();
    let runcmd = serde_norway::to_string(&doc["runcmd"]).unwrap();
    for file in ["manifest.json", "SHA256SUMS", "packer/phanes.pkr.hcl"] {
        let text = fs::read_to_string(out.join(file)).unwrap();
        for (secret, _) in allowed {
            assert!(!text.contains(secret), "{file} holds {secret}");
            assert!(!runcmd.contains(secret), "runcmd holds {secret}");
        }
    }
    fs::remove_dir_all(out.parent().unwrap()).unwrap();
}

#[test]
fn without_passwords_in_the_config_the_bundle_holds_none() {
    let config = format!(
        "user:\n  users:\n    - name: deploy\n      ssh_keys: ['{KEY}']\npostgres:\n  roles:\n    - name: app\n"
    );
    let out = render(&config);
    let setup = fs::read_to_string(out.join("setup.sh")).unwrap();
    assert!(setup.contains("REDIS_PASSWORD_CONFIGURED=''"));
    assert!(setup.contains("postgres_role_app__apply() { postgres_role_apply 'app' ''; }"));
    let redis_password = function(&setup, "redis_password");
    assert!(
        redis_password.contains("phanes_secret redis-password"),
        "generated on the server: {redis_password}"
    );
    fs::remove_dir_all(out.parent().unwrap()).unwrap();
}
