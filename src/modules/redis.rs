//! redis: the distribution's Redis, configured through /etc/redis/phanes.conf, which the
//! package's redis.conf includes on its last line (Redis keeps the last value it reads, so
//! nothing after the include can override phanes). The password is generated on the server
//! unless given, and only ever read from a file or passed in REDISCLI_AUTH.

use super::ModuleSpec;
use crate::config::Config;
use crate::config::types::{Password, Port, Ranged, Size};
use crate::diagnostic::Diagnostic;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The module's entry in the registry.
pub const MODULE: ModuleSpec = ModuleSpec {
    name: "redis",
    description: "Redis with a password, bound to localhost, with a memory limit",
    requires: &[],
    conflicts: &[],
    template: include_str!("../../templates/modules/redis.sh.j2"),
    validate,
    packages: |_| vec!["redis-server".to_string()],
    ports: super::no_ports,
};

/// Settings of the `redis` section.
#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
#[schemars(rename = "RedisSettings")]
pub struct Settings {
    /// Addresses Redis listens on (`bind`). `::1` may be missing on the server (it is bound
    /// when available). Containers cannot reach a loopback-bound Redis.
    pub bind: Vec<BindAddress>,
    /// TCP port.
    pub port: Port,
    /// The password (`requirepass`). Not set: generated on the server into
    /// /etc/phanes/secrets/redis-password (recommended: a password here ends up in cloud-init
    /// user-data, which the provider's metadata service serves to every process on the
    /// server). A change is applied on the next run.
    pub password: Option<Password>,
    /// Memory limit for data (`maxmemory`), like 256M. Not set: no limit.
    pub maxmemory: Option<Size>,
    /// What Redis does at the limit: `noeviction` (refuse writes: job queues, sessions) or an
    /// eviction policy (`allkeys-lru` for a pure cache).
    pub maxmemory_policy: EvictionPolicy,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            bind: ["127.0.0.1", "::1"]
                .iter()
                .map(|a| BindAddress(a.to_string()))
                .collect(),
            port: Ranged(6379),
            password: None,
            maxmemory: None,
            maxmemory_policy: EvictionPolicy::Noeviction,
        }
    }
}

crate::config::types::validated_string!(
    /// An IP address Redis binds to.
    BindAddress,
    "an IP address like 127.0.0.1 or ::1",
    |s| s.parse::<std::net::IpAddr>().is_ok()
);

/// Redis' maxmemory-policy values.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum EvictionPolicy {
    /// Return errors when memory is full.
    #[default]
    Noeviction,
    /// Evict the least recently used keys.
    AllkeysLru,
    /// Evict the least frequently used keys.
    AllkeysLfu,
    /// Evict random keys.
    AllkeysRandom,
    /// Evict the least recently used keys that have an expiry.
    VolatileLru,
    /// Evict the least frequently used keys that have an expiry.
    VolatileLfu,
    /// Evict random keys that have an expiry.
    VolatileRandom,
    /// Evict the keys closest to expiry.
    VolatileTtl,
}

impl fmt::Display for EvictionPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = serde_json::to_value(self).ok();
        f.write_str(text.as_ref().and_then(|v| v.as_str()).unwrap_or(""))
    }
}

fn validate(config: &Config) -> Vec<Diagnostic> {
    let settings = &config.redis;
    let mut problems = Vec::new();
    if settings.bind.is_empty() {
        problems.push(
            Diagnostic::new(
                "config",
                "bind is empty: Redis would listen on every interface",
            )
            .with_path("redis.bind")
            .with_help("use [127.0.0.1, ::1], or list the addresses to listen on"),
        );
    }
    if let Some(size) = settings.maxmemory
        && size.0 < 1 << 20
    {
        problems.push(
            Diagnostic::new(
                "config",
                format!("maxmemory {size} is below 1M: Redis could not hold anything"),
            )
            .with_path("redis.maxmemory"),
        );
    }
    problems
}
