//! Validated value types. Every string a user writes that ends up in the bundle goes through one of
//! these, so a bad value is rejected while the config is parsed — with its key path and file
//! position, because serde reports both for errors raised inside `Deserialize`.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Declares a string newtype that only deserializes when `$check` accepts it.
/// `$expected` completes the sentence "expected ...".
macro_rules! validated_string {
    ($(#[$doc:meta])* $name:ident, $expected:literal, $check:expr) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, ::serde::Serialize, ::serde::Deserialize, ::schemars::JsonSchema)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// What a valid value looks like, for error messages and docs.
            pub const EXPECTED: &'static str = $expected;

            /// The value as written in the config.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = String;
            fn try_from(value: String) -> Result<Self, String> {
                let check: fn(&str) -> bool = $check;
                if check(&value) {
                    Ok(Self(value))
                } else {
                    Err(format!("invalid value {:?}: expected {}", value, $expected))
                }
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}
pub(crate) use validated_string;

fn all_chars(s: &str, allowed: impl Fn(char) -> bool) -> bool {
    !s.is_empty() && s.chars().all(allowed)
}

fn is_dns_label(label: &str) -> bool {
    (1..=63).contains(&label.len())
        && all_chars(label, |c| c.is_ascii_alphanumeric() || c == '-')
        && !label.starts_with('-')
        && !label.ends_with('-')
}

validated_string!(
    /// A host name: DNS labels separated by dots.
    Hostname,
    "a host name of letters, digits and '-', labels separated by '.', at most 253 characters",
    |s| s.len() <= 253 && s.split('.').all(is_dns_label)
);

validated_string!(
    /// A Linux user or group name that sudoers and useradd both accept (no dots: sudo ignores
    /// files in /etc/sudoers.d whose names contain one).
    AccountName,
    "a lowercase account name: a letter or '_', then letters, digits, '_' or '-', at most 32 characters",
    |s| s.len() <= 32
        && s.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && all_chars(s, |c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
);

validated_string!(
    /// An IANA time zone name as found under /usr/share/zoneinfo.
    Timezone,
    "a time zone name like Etc/UTC or Europe/Berlin",
    |s| s.len() <= 64
        && !s.starts_with('/')
        && !s.contains("..")
        && all_chars(s, |c| c.is_ascii_alphanumeric() || "/_+-".contains(c))
);

validated_string!(
    /// A glibc locale name such as en_US.UTF-8 or C.UTF-8.
    Locale,
    "a locale name like en_US.UTF-8 or de_DE.UTF-8",
    |s| s.len() <= 64
        && s.starts_with(|c: char| c.is_ascii_alphabetic())
        && all_chars(s, |c| c.is_ascii_alphanumeric() || "_.@-".contains(c))
);

validated_string!(
    /// A Debian package name (Debian Policy 5.6.7).
    PackageName,
    "a Debian package name: lowercase letters, digits, '+', '-' and '.', starting with a letter or digit",
    |s| s.len() >= 2
        && s.len() <= 128
        && s.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && all_chars(s, |c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.".contains(c))
);

validated_string!(
    /// An absolute path without spaces, quotes or shell metacharacters.
    AbsolutePath,
    "an absolute path of letters, digits and '/_.-' (no spaces, no '..')",
    |s| s.starts_with('/')
        && s.len() <= 255
        && !s.split('/').any(|part| part == "..")
        && all_chars(s, |c| c.is_ascii_alphanumeric() || "/_.-".contains(c))
);

fn is_ip_network(s: &str) -> bool {
    let (address, prefix) = s.split_once('/').unwrap_or((s, ""));
    let Ok(ip) = address.parse::<std::net::IpAddr>() else {
        return false;
    };
    let max = if ip.is_ipv4() { 32 } else { 128 };
    prefix.is_empty() || prefix.parse::<u8>().is_ok_and(|p| p <= max)
}

validated_string!(
    /// An IPv4 or IPv6 address, optionally with a /prefix.
    IpNetwork,
    "an IP address or network like 203.0.113.7, 198.51.100.0/24 or 2001:db8::/32",
    is_ip_network
);

/// Key types OpenSSH accepts in authorized_keys (sshd(8) "AUTHORIZED_KEYS FILE FORMAT").
pub const SSH_KEY_TYPES: &[&str] = &[
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
    "ssh-ed25519-cert-v01@openssh.com",
    "ssh-rsa-cert-v01@openssh.com",
    "ecdsa-sha2-nistp256-cert-v01@openssh.com",
    "ecdsa-sha2-nistp384-cert-v01@openssh.com",
    "ecdsa-sha2-nistp521-cert-v01@openssh.com",
    "sk-ssh-ed25519-cert-v01@openssh.com",
    "sk-ecdsa-sha2-nistp256-cert-v01@openssh.com",
];

fn is_ssh_public_key(s: &str) -> bool {
    let mut parts = s.splitn(3, ' ');
    let (Some(kind), Some(blob)) = (parts.next(), parts.next()) else {
        return false;
    };
    let comment = parts.next().unwrap_or("");
    SSH_KEY_TYPES.contains(&kind)
        && blob.len() >= 16
        && all_chars(blob, |c| c.is_ascii_alphanumeric() || "+/=".contains(c))
        && comment.chars().all(|c| !c.is_control())
}

validated_string!(
    /// One OpenSSH public key line: `type base64 [comment]`, no options, on one line.
    SshPublicKey,
    "an OpenSSH public key on one line: '<type> <base64> [comment]' with type ssh-ed25519, ssh-rsa, ecdsa-sha2-nistp256/384/521 or an sk-/cert variant",
    is_ssh_public_key
);

impl SshPublicKey {
    /// The `type base64` part that identifies the key, without its comment.
    pub fn identity(&self) -> String {
        self.0.splitn(3, ' ').take(2).collect::<Vec<_>>().join(" ")
    }
}

fn is_http_url(s: &str) -> bool {
    let rest = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"));
    let Some(rest) = rest else { return false };
    let host = rest.split(['/', ':']).next().unwrap_or("");
    s.len() <= 512
        && !host.is_empty()
        && (host.split('.').all(is_dns_label) || host.parse::<std::net::Ipv4Addr>().is_ok())
        && all_chars(rest, |c| {
            c.is_ascii_alphanumeric() || "-._~/:%+=@".contains(c)
        })
        && !rest.split('/').any(|part| part == "..")
}

validated_string!(
    /// An http:// or https:// URL without spaces, quotes or shell metacharacters.
    HttpUrl,
    "an http:// or https:// URL like https://mirror.example.com/docker/linux/debian (letters, digits and -._~/:%+=@ only)",
    is_http_url
);

validated_string!(
    /// A DNS name a web server answers to: a host name, or `*.` and a host name.
    Domain,
    "a domain like example.com, app.example.com or *.example.com",
    |s| {
        let name = s.strip_prefix("*.").unwrap_or(s);
        s.len() <= 253 && name.split('.').all(is_dns_label)
    }
);

validated_string!(
    /// A password given in the config: printable ASCII without spaces, quotes, backslashes,
    /// `$` or backticks, 12 to 128 characters. It ends up in the cloud provider's user-data,
    /// which the metadata service serves to anything on the server: prefer generated ones.
    Password,
    "a password of 12 to 128 characters: letters, digits and !#%*+,-./:=?@^_~ (no spaces, quotes, backslashes, $ or backticks)",
    |s| (12..=128).contains(&s.len())
        && all_chars(s, |c| c.is_ascii_alphanumeric() || "!#%*+,-./:=?@^_~".contains(c))
);

validated_string!(
    /// A PostgreSQL role or database name phanes creates: lowercase, so it never needs quoting to
    /// be found again, and never a system name.
    PgIdentifier,
    "a lowercase name of letters, digits and '_', starting with a letter or '_', at most 63 characters, not postgres, template0/1 or pg_*",
    |s| s.len() <= 63
        && s.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && all_chars(s, |c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !s.starts_with("pg_")
        && !["postgres", "template0", "template1", "public", "all", "replication", "sameuser", "samerole"].contains(&s)
);

validated_string!(
    /// An e-mail address of plain shape (for ACME account contact).
    Email,
    "an e-mail address like admin@example.com",
    |s| s.len() <= 254
        && s.split_once('@').is_some_and(|(local, domain)| {
            all_chars(local, |c| c.is_ascii_alphanumeric() || "._+-".contains(c))
                && domain.contains('.')
                && domain.split('.').all(is_dns_label)
        })
);

/// The fingerprint of an OpenPGP key: 40 hex digits (spaces allowed when written), stored in
/// upper case without spaces, as `gpg --with-colons` prints it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(try_from = "String", into = "String")]
pub struct KeyFingerprint(String);

impl KeyFingerprint {
    /// What a valid value looks like, for error messages and docs.
    pub const EXPECTED: &'static str = "a full OpenPGP key fingerprint: 40 hex digits, spaces allowed (like 9DC8 5822 9FC7 DD38 854A  E2D8 8D81 803C 0EBF CD88)";

    /// The value as written in the config.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for KeyFingerprint {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let compact: String = s.chars().filter(|c| *c != ' ').collect();
        if compact.len() == 40 && compact.chars().all(|c| c.is_ascii_hexdigit()) {
            Ok(KeyFingerprint(compact.to_ascii_uppercase()))
        } else {
            Err(format!(
                "invalid key fingerprint {s:?}: expected {}",
                KeyFingerprint::EXPECTED
            ))
        }
    }
}

impl From<KeyFingerprint> for String {
    fn from(value: KeyFingerprint) -> String {
        value.0
    }
}

impl fmt::Display for KeyFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A size in bytes, written as `512M`, `2G`, `1.5G` or a plain number of bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(try_from = "SizeInput", into = "String")]
pub struct Size(pub u64);

/// What a size may be written as in YAML: a number of bytes or a string with a unit.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
enum SizeInput {
    Bytes(u64),
    Text(String),
}

impl Size {
    /// What a valid value looks like, for error messages and docs.
    pub const EXPECTED: &'static str =
        "a size like 512M, 2G or 1.5G (units K, M, G, T; powers of 1024), or a number of bytes";

    /// Size in whole MiB, rounded up.
    pub fn mib(self) -> u64 {
        self.0.div_ceil(1 << 20)
    }

    /// Parses `2G`, `512M`, `1.5G` or a plain number into bytes.
    pub fn parse(text: &str) -> Option<u64> {
        let text = text.trim();
        let (number, unit) = match text.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
            Some((i, _)) => text.split_at(i),
            None => (text, ""),
        };
        let shift = match unit
            .to_ascii_uppercase()
            .trim_end_matches("IB")
            .trim_end_matches('B')
        {
            "" => 0,
            "K" => 10,
            "M" => 20,
            "G" => 30,
            "T" => 40,
            _ => return None,
        };
        let value: f64 = number.trim().parse().ok()?;
        if !value.is_finite() || value < 0.0 {
            return None;
        }
        let bytes = value * (1u64 << shift) as f64;
        (bytes <= u64::MAX as f64).then_some(bytes as u64)
    }
}

impl TryFrom<SizeInput> for Size {
    type Error = String;
    fn try_from(input: SizeInput) -> Result<Self, String> {
        match input {
            SizeInput::Bytes(n) => Ok(Size(n)),
            SizeInput::Text(t) => Size::parse(&t)
                .map(Size)
                .ok_or_else(|| format!("invalid size {t:?}: expected {}", Size::EXPECTED)),
        }
    }
}

impl From<Size> for String {
    fn from(size: Size) -> String {
        size.to_string()
    }
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [(u32, &str); 4] = [(40, "T"), (30, "G"), (20, "M"), (10, "K")];
        for (shift, unit) in UNITS {
            if self.0 >= 1 << shift && self.0.is_multiple_of(1 << shift) {
                return write!(f, "{}{unit}", self.0 >> shift);
            }
        }
        write!(f, "{}", self.0)
    }
}

/// An integer that must lie in an inclusive range, checked during deserialization so the error
/// carries its position. `Ranged<1, 65535>` is a TCP port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "i64")]
pub struct Ranged<const MIN: i64, const MAX: i64>(pub i64);

impl<const MIN: i64, const MAX: i64> TryFrom<i64> for Ranged<MIN, MAX> {
    type Error = String;
    fn try_from(value: i64) -> Result<Self, String> {
        if (MIN..=MAX).contains(&value) {
            Ok(Self(value))
        } else {
            Err(format!("{value} is out of range: expected {MIN} to {MAX}"))
        }
    }
}

impl<const MIN: i64, const MAX: i64> From<Ranged<MIN, MAX>> for i64 {
    fn from(value: Ranged<MIN, MAX>) -> i64 {
        value.0
    }
}

impl<const MIN: i64, const MAX: i64> schemars::JsonSchema for Ranged<MIN, MAX> {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        format!("Integer{MIN}To{MAX}").into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({ "type": "integer", "minimum": MIN, "maximum": MAX })
    }
}

/// A TCP or UDP port number.
pub type Port = Ranged<1, 65535>;

#[cfg(test)]
mod tests {
    use super::*;

    fn accepts<T: TryFrom<String>>(s: &str) -> bool {
        T::try_from(s.to_string()).is_ok()
    }

    #[test]
    fn hostile_strings_are_rejected_by_every_shape() {
        for bad in [
            "a b", "a'b", "$(id)", "`id`", "a\nb", "a: b", "#x", "a;b", "",
        ] {
            assert!(!accepts::<Hostname>(bad), "{bad:?}");
            assert!(!accepts::<AccountName>(bad), "{bad:?}");
            assert!(!accepts::<Timezone>(bad), "{bad:?}");
            assert!(!accepts::<Locale>(bad), "{bad:?}");
            assert!(!accepts::<PackageName>(bad), "{bad:?}");
            assert!(!accepts::<AbsolutePath>(bad), "{bad:?}");
            assert!(!accepts::<HttpUrl>(bad), "{bad:?}");
            assert!(!accepts::<Domain>(bad), "{bad:?}");
            assert!(!accepts::<Password>(bad), "{bad:?}");
            assert!(!accepts::<PgIdentifier>(bad), "{bad:?}");
            assert!(!accepts::<KeyFingerprint>(bad), "{bad:?}");
        }
    }

    #[test]
    fn common_values_are_accepted() {
        assert!(accepts::<Hostname>("web-1.example.com"));
        assert!(accepts::<AccountName>("deploy"));
        assert!(!accepts::<AccountName>("first.last"));
        assert!(accepts::<Timezone>("America/Argentina/Buenos_Aires"));
        assert!(accepts::<Locale>("sr_RS.UTF-8@latin"));
        assert!(accepts::<PackageName>("g++"));
        assert!(accepts::<AbsolutePath>("/bin/bash"));
        assert!(!accepts::<AbsolutePath>("/bin/../etc"));
        assert!(accepts::<HttpUrl>(
            "https://download.docker.com/linux/debian"
        ));
        assert!(accepts::<HttpUrl>("http://10.0.2.2:8080/repo/"));
        assert!(!accepts::<HttpUrl>("ftp://example.com/x"));
        assert!(!accepts::<HttpUrl>("https://example.com/a b"));
        assert!(!accepts::<HttpUrl>("https://example.com/$(id)"));
        assert!(!accepts::<HttpUrl>("https:///x"));
        assert!(accepts::<Domain>("*.example.com"));
        assert!(!accepts::<Domain>("a.*.example.com"));
        assert!(accepts::<Password>("correct-horse-battery"));
        assert!(!accepts::<Password>("short"));
        assert!(!accepts::<Password>("with'quote-long-enough"));
        assert!(accepts::<PgIdentifier>("app_1"));
        for bad in ["App", "1app", "postgres", "pg_read", "a-b", "a\"b"] {
            assert!(!accepts::<PgIdentifier>(bad), "{bad:?}");
        }
        let fpr = KeyFingerprint::try_from(
            "9dc8 5822 9FC7 DD38 854A  E2D8 8D81 803C 0EBF CD88".to_string(),
        )
        .unwrap();
        assert_eq!(fpr.as_str(), "9DC858229FC7DD38854AE2D88D81803C0EBFCD88");
        assert!(!accepts::<KeyFingerprint>("0EBFCD88"));
    }

    #[test]
    fn ssh_keys_of_every_kind_are_accepted_and_garbage_is_not() {
        let blob = "AAAAC3NzaC1lZDI1NTE5AAAAIGx2dGVzdGtleWJsb2I";
        for kind in SSH_KEY_TYPES {
            assert!(accepts::<SshPublicKey>(&format!("{kind} {blob} me@laptop")));
        }
        assert!(!accepts::<SshPublicKey>(
            "ssh-dss AAAAB3NzaC1kc3MAAACBAP me"
        ));
        assert!(!accepts::<SshPublicKey>(&format!(
            "ssh-ed25519 {blob} a\nssh-rsa x"
        )));
        assert!(!accepts::<SshPublicKey>(
            "ssh-ed25519 $(reboot)AAAAAAAAAAAAAAA"
        ));
    }

    #[test]
    fn sizes_parse_with_units() {
        assert_eq!(Size::parse("2G"), Some(2 << 30));
        assert_eq!(Size::parse("512M"), Some(512 << 20));
        assert_eq!(Size::parse("1.5g"), Some(3 << 29));
        assert_eq!(Size::parse("2GiB"), Some(2 << 30));
        assert_eq!(Size::parse("2X"), None);
        assert_eq!(Size(2 << 30).to_string(), "2G");
        assert_eq!(Size(3 << 29).to_string(), "1536M");
    }
}
