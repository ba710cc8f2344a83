//! security: SSH hardening through a drop-in read before every other sshd config file, a UFW
//! firewall that opens the SSH port before it is enabled, and a fail2ban jail for sshd that
//! reads the journal. Password and root login are only restricted once a sudo user can log in
//! with a key (checked on the server, at run time).

use super::ModuleSpec;
use crate::config::Config;
use crate::config::types::{AccountName, IpNetwork, Port, Ranged};
use crate::diagnostic::Diagnostic;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt;

/// The module's entry in the registry.
pub const MODULE: ModuleSpec = ModuleSpec {
    name: "security",
    description: "SSH hardening, UFW firewall and fail2ban, without locking anyone out",
    requires: &[],
    conflicts: &[],
    template: include_str!("../../templates/modules/security.sh.j2"),
    validate,
    packages,
    ports: super::no_ports,
};

/// sshd and `ss` always; UFW and fail2ban (with journal support) when phanes manages them.
fn packages(config: &Config) -> Vec<String> {
    let settings = &config.security;
    let mut list = vec!["openssh-server", "iproute2"];
    if settings.firewall.enabled {
        list.push("ufw");
    }
    if settings.fail2ban.enabled {
        list.extend(["fail2ban", "python3-systemd"]);
    }
    list.into_iter().map(String::from).collect()
}

/// Settings of the `security` section.
#[derive(Clone, Debug, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
#[schemars(rename = "SecuritySettings")]
pub struct Settings {
    /// sshd settings, written to /etc/ssh/sshd_config.d/00-phanes.conf (the distro's
    /// sshd_config is never rewritten).
    pub ssh: Ssh,
    /// UFW: deny incoming except SSH and the listed rules; allow outgoing.
    pub firewall: Firewall,
    /// fail2ban jail for sshd, reading the systemd journal.
    pub fail2ban: Fail2ban,
}

/// How sshd accepts logins.
#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Ssh {
    /// Port sshd listens on. On a change the firewall opens the new port first, sshd moves,
    /// and only then is the old port's phanes rule removed.
    pub port: Port,
    /// Root login over SSH: `no`, or `prohibit-password` (keys only; Coolify needs it).
    pub permit_root_login: RootLogin,
    /// Allow password logins. Turning this off only happens when a sudo user already has an
    /// SSH key on the server; otherwise the step fails and changes nothing.
    pub password_authentication: bool,
    /// Only these accounts may log in over SSH (sshd AllowUsers). Empty: not restricted. Must
    /// name every user in user.users that has SSH keys.
    pub allow_users: Vec<AccountName>,
}

impl Default for Ssh {
    fn default() -> Self {
        Ssh {
            port: Ranged(22),
            permit_root_login: RootLogin::No,
            password_authentication: false,
            allow_users: Vec::new(),
        }
    }
}

/// sshd's PermitRootLogin values phanes allows (never `yes`).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
pub enum RootLogin {
    /// root cannot log in over SSH at all.
    #[default]
    #[serde(rename = "no")]
    No,
    /// root can log in with a key, never with a password.
    #[serde(rename = "prohibit-password")]
    ProhibitPassword,
}

impl fmt::Display for RootLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RootLogin::No => "no",
            RootLogin::ProhibitPassword => "prohibit-password",
        })
    }
}

/// The UFW firewall.
#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Firewall {
    /// Manage UFW. `false` leaves the firewall alone (nothing is installed, enabled or undone).
    pub enabled: bool,
    /// Extra inbound rules besides SSH: `80/tcp`, `443` (tcp and udp), `51820/udp`,
    /// `6000:6007/tcp`. phanes marks its rules with the comment `phanes` and removes the ones
    /// no longer listed; rules added by hand are left alone.
    pub allow: Vec<FirewallRule>,
    /// Rate-limit the SSH port (`ufw limit`: the 6th new connection within 30 s from one
    /// address is dropped, and every dropped retry restarts the window). Off by default: with
    /// key-only logins and fail2ban, guessing is already stopped, while the limit also locks out
    /// legitimate automation that opens many connections (deploy scripts, Ansible, Packer, CI).
    pub limit_ssh: bool,
}

impl Default for Firewall {
    fn default() -> Self {
        Firewall {
            enabled: true,
            allow: Vec::new(),
            limit_ssh: false,
        }
    }
}

/// The fail2ban sshd jail.
#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Fail2ban {
    /// Manage fail2ban. `false` leaves it alone (nothing is installed or undone).
    pub enabled: bool,
    /// Failed logins within `findtime` that get an address banned.
    pub maxretry: Ranged<1, 100>,
    /// Window in which `maxretry` failures count: a number with s, m, h, d or w (`10m`).
    pub findtime: Duration,
    /// How long a ban lasts: a number with s, m, h, d or w (`1h`).
    pub bantime: Duration,
    /// Addresses or networks never banned (besides localhost): your office, a CI runner, a
    /// bastion. An address that retries SSH while the server is still being set up gets banned.
    pub ignore_addresses: Vec<IpNetwork>,
}

impl Default for Fail2ban {
    fn default() -> Self {
        let duration = |s: &str| Duration::try_from(s.to_string()).expect("valid built-in time");
        Fail2ban {
            enabled: true,
            maxretry: Ranged(5),
            findtime: duration("10m"),
            bantime: duration("1h"),
            ignore_addresses: Vec::new(),
        }
    }
}

/// A fail2ban time: a whole number with an optional unit s, m, h, d or w (`600`, `10m`, `1h`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(try_from = "DurationInput", into = "String")]
pub struct Duration(String);

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
enum DurationInput {
    Seconds(u64),
    Text(String),
}

impl Duration {
    /// What a valid value looks like, for error messages and docs.
    pub const EXPECTED: &'static str =
        "a time like 600, 10m, 1h, 1d or 1w (a whole number, then s, m, h, d or w)";

    /// The length in seconds.
    pub fn seconds(&self) -> u64 {
        let (number, unit) = self
            .0
            .split_at(self.0.trim_end_matches(char::is_alphabetic).len());
        let factor = match unit {
            "m" => 60,
            "h" => 3600,
            "d" => 86_400,
            "w" => 604_800,
            _ => 1,
        };
        number.parse::<u64>().unwrap_or(0) * factor
    }
}

impl TryFrom<String> for Duration {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let number = s.trim_end_matches(['s', 'm', 'h', 'd', 'w']);
        let unit_len = s.len() - number.len();
        let shaped = unit_len <= 1
            && (1..=9).contains(&number.len())
            && number.chars().all(|c| c.is_ascii_digit())
            && !number.starts_with('0');
        if shaped {
            Ok(Duration(s))
        } else {
            Err(format!(
                "invalid time {s:?}: expected {}",
                Duration::EXPECTED
            ))
        }
    }
}

impl TryFrom<DurationInput> for Duration {
    type Error = String;
    fn try_from(input: DurationInput) -> Result<Self, String> {
        match input {
            DurationInput::Seconds(n) => Duration::try_from(n.to_string()),
            DurationInput::Text(s) => Duration::try_from(s),
        }
    }
}

impl From<Duration> for String {
    fn from(d: Duration) -> String {
        d.0
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One inbound firewall rule: `PORT`, `PORT/tcp`, `PORT/udp` or `FIRST:LAST/tcp|udp` (ufw needs
/// a protocol for a range). Stored in ufw's own spelling, so it compares with `ufw show added`.
#[derive(
    Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(try_from = "RuleInput", into = "String")]
pub struct FirewallRule(String);

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
enum RuleInput {
    Port(i64),
    Text(String),
}

impl FirewallRule {
    /// What a valid value looks like, for error messages and docs.
    pub const EXPECTED: &'static str = "a port rule like 80/tcp, 443 (tcp and udp), 51820/udp or a range like 6000:6007/tcp (ports 1-65535)";

    /// The rule as written to ufw: `80/tcp`, `443`, `6000:6007/tcp`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The port part (`80`, `6000:6007`).
    pub fn ports(&self) -> &str {
        self.0.split('/').next().unwrap_or("")
    }

    /// Whether this rule opens TCP port `port`.
    pub fn covers_tcp(&self, port: i64) -> bool {
        let tcp = !self.0.ends_with("/udp");
        let (first, last) = match self.ports().split_once(':') {
            Some((a, b)) => (a.parse().unwrap_or(0), b.parse().unwrap_or(0)),
            None => {
                let p = self.ports().parse().unwrap_or(0);
                (p, p)
            }
        };
        tcp && (first..=last).contains(&port)
    }

    fn parse(text: &str) -> Option<String> {
        let port = |s: &str| -> Option<u16> {
            let ok = !s.is_empty() && s.len() <= 5 && s.chars().all(|c| c.is_ascii_digit());
            ok.then(|| s.parse::<u16>().ok())
                .flatten()
                .filter(|p| *p > 0)
        };
        let (ports, proto) = match text.split_once('/') {
            Some((ports, proto)) => (ports, Some(proto)),
            None => (text, None),
        };
        if !matches!(proto, None | Some("tcp") | Some("udp")) {
            return None;
        }
        let ports = match ports.split_once(':') {
            Some((first, last)) => {
                let (first, last) = (port(first)?, port(last)?);
                if first >= last || proto.is_none() {
                    return None;
                }
                format!("{first}:{last}")
            }
            None => port(ports)?.to_string(),
        };
        Some(match proto {
            Some(proto) => format!("{ports}/{proto}"),
            None => ports,
        })
    }
}

impl TryFrom<RuleInput> for FirewallRule {
    type Error = String;
    fn try_from(input: RuleInput) -> Result<Self, String> {
        let text = match input {
            RuleInput::Port(n) => n.to_string(),
            RuleInput::Text(s) => s,
        };
        FirewallRule::parse(text.trim())
            .map(FirewallRule)
            .ok_or_else(|| {
                format!(
                    "invalid firewall rule {text:?}: expected {}",
                    FirewallRule::EXPECTED
                )
            })
    }
}

impl TryFrom<String> for FirewallRule {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        FirewallRule::try_from(RuleInput::Text(s))
    }
}

impl From<FirewallRule> for String {
    fn from(rule: FirewallRule) -> String {
        rule.0
    }
}

impl fmt::Display for FirewallRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn validate(config: &Config) -> Vec<Diagnostic> {
    let settings = &config.security;
    let mut problems = Vec::new();
    let allowed: BTreeSet<&str> = settings
        .ssh
        .allow_users
        .iter()
        .map(AccountName::as_str)
        .collect();
    if !allowed.is_empty() {
        for (i, user) in config.user.users.iter().enumerate() {
            if user.ssh_keys.is_empty() || allowed.contains(user.name.as_str()) {
                continue;
            }
            problems.push(
                Diagnostic::new(
                    "config",
                    format!(
                        "user {:?} has SSH keys (user.users[{i}].ssh_keys) but is not in security.ssh.allow_users, so sshd would refuse their login",
                        user.name.as_str()
                    ),
                )
                .with_path("security.ssh.allow_users")
                .with_help(format!("add {:?} to security.ssh.allow_users", user.name.as_str())),
            );
        }
        if settings.ssh.permit_root_login == RootLogin::ProhibitPassword
            && !allowed.contains("root")
        {
            problems.push(
                Diagnostic::new(
                    "config",
                    "permit_root_login: prohibit-password has no effect: root is not in allow_users, so sshd refuses root anyway",
                )
                .with_path("security.ssh.permit_root_login")
                .with_help("add root to security.ssh.allow_users, or set permit_root_login: no"),
            );
        }
    }
    let mut seen = BTreeSet::new();
    for (i, user) in settings.ssh.allow_users.iter().enumerate() {
        if !seen.insert(user.as_str()) {
            problems.push(
                Diagnostic::new("config", format!("{:?} is listed twice", user.as_str()))
                    .with_path(format!("security.ssh.allow_users[{i}]")),
            );
        }
    }
    let ssh_port = settings.ssh.port.0;
    let mut rules = BTreeSet::new();
    for (i, rule) in settings.firewall.allow.iter().enumerate() {
        let path = format!("security.firewall.allow[{i}]");
        if !rules.insert(rule.as_str()) {
            problems.push(
                Diagnostic::new("config", format!("firewall rule {rule} is listed twice"))
                    .with_path(path.clone()),
            );
        }
        if rule.covers_tcp(ssh_port) {
            problems.push(
                Diagnostic::new(
                    "config",
                    format!("firewall rule {rule} includes the SSH port {ssh_port}, which phanes opens itself"),
                )
                .with_path(path)
                .with_help("remove it; security.firewall.limit_ssh chooses between limit and allow for SSH"),
            );
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(s: &str) -> Result<FirewallRule, String> {
        FirewallRule::try_from(s.to_string())
    }

    #[test]
    fn firewall_rules_are_normalised_or_rejected() {
        assert_eq!(rule("80/tcp").unwrap().as_str(), "80/tcp");
        assert_eq!(rule("0443").unwrap().as_str(), "443");
        assert_eq!(rule("6000:6007/udp").unwrap().as_str(), "6000:6007/udp");
        for bad in [
            "80/icmp",
            "0",
            "65536",
            "6000:6007",
            "7:6/tcp",
            "80/tcp;id",
            "",
            "80 /tcp",
            "a/tcp",
            "80/",
            "1:1/tcp",
        ] {
            assert!(rule(bad).is_err(), "{bad:?}");
        }
        assert!(rule("6000:6007/tcp").unwrap().covers_tcp(6001));
        assert!(!rule("22/udp").unwrap().covers_tcp(22));
        assert!(rule("22").unwrap().covers_tcp(22));
    }

    #[test]
    fn durations_have_a_unit_or_are_seconds() {
        let d = |s: &str| Duration::try_from(s.to_string());
        assert_eq!(d("10m").unwrap().seconds(), 600);
        assert_eq!(d("1h").unwrap().seconds(), 3600);
        assert_eq!(d("90").unwrap().seconds(), 90);
        for bad in ["", "m", "10x", "1.5h", "-1", "10mm", "0", "01h", "1h30m"] {
            assert!(d(bad).is_err(), "{bad:?}");
        }
    }
}
