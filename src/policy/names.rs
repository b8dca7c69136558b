//! Names a policy file writes, checked while it is read: architectures and platforms against
//! what nodes report, namespace patterns, label keys and values and resource names against
//! Kubernetes' syntax, so a bad one is reported with its line and column.

use crate::arch::Arch;
use crate::image::Platform;
use serde::Deserialize;

/// An architecture name, checked against the ones Kubernetes nodes report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct ArchName(pub Arch);

impl TryFrom<String> for ArchName {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        if let Some(a) = Arch::from_name(&s) {
            return Ok(ArchName(a));
        }
        let hint = Arch::suggest(&s).map_or(String::new(), |a| format!(" (did you mean `{a}`?)"));
        let known: Vec<&str> = Arch::ALL.iter().map(|a| a.as_str()).collect();
        Err(format!(
            "unknown architecture `{s}`{hint}; use a kubernetes.io/arch value: {}",
            known.join(", ")
        ))
    }
}

/// "os/arch[/variant]" as in `docker buildx --platform`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct PlatformName {
    /// The platform as written, with its variant if any.
    pub platform: Platform,
    /// Its architecture, checked to be one Kubernetes nodes report.
    pub arch: Arch,
}

impl TryFrom<String> for PlatformName {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let platform: Platform = s.parse().map_err(|e| format!("{e}"))?;
        let arch = Arch::from_name(&platform.architecture).ok_or_else(|| {
            let hint = Arch::suggest(&platform.architecture).map_or(String::new(), |a| {
                format!(" (did you mean `{}/{a}`?)", platform.os)
            });
            format!("platform `{s}` names an architecture Kubernetes nodes do not report{hint}")
        })?;
        Ok(PlatformName { platform, arch })
    }
}

/// A namespace name, or a prefix ending in `*` ("team-*").
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct NamespacePattern(pub String);

impl TryFrom<String> for NamespacePattern {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let name = s.strip_suffix('*').unwrap_or(&s);
        let prefix_ok = s.ends_with('*') && (name.is_empty() || is_dns_label_prefix(name));
        if prefix_ok || is_dns_label(name) {
            Ok(NamespacePattern(s))
        } else {
            Err(format!(
                "`{s}` is not a namespace name: use lowercase letters, digits and '-', at most 63 characters, starting and ending with a letter or digit (a trailing '*' matches a prefix)"
            ))
        }
    }
}

impl NamespacePattern {
    /// Whether `namespace` is this name, or starts with this pattern's prefix.
    pub fn matches(&self, namespace: &str) -> bool {
        match self.0.strip_suffix('*') {
            Some(prefix) => namespace.starts_with(prefix),
            None => self.0 == namespace,
        }
    }
}

/// A label key: optional DNS-subdomain prefix and '/', then a name of up to 63 characters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(try_from = "String")]
pub struct LabelKey(pub String);

impl TryFrom<String> for LabelKey {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let (prefix, name) = match s.split_once('/') {
            Some((p, n)) => (Some(p), n),
            None => (None, s.as_str()),
        };
        let prefix_ok = prefix.is_none_or(is_dns_subdomain);
        if prefix_ok && is_label_name(name) && !name.is_empty() {
            Ok(LabelKey(s))
        } else {
            Err(format!(
                "`{s}` is not a valid label key: an optional DNS prefix and '/', then up to 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
            ))
        }
    }
}

/// A label value: empty, or up to 63 characters as a label name.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct LabelValue(pub String);

impl TryFrom<String> for LabelValue {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        if s.is_empty() || is_label_name(&s) {
            Ok(LabelValue(s))
        } else {
            Err(format!(
                "`{s}` is not a valid label value: up to 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
            ))
        }
    }
}

/// An extended resource name such as `nvidia.com/gpu`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct ResourceName(pub String);

impl TryFrom<String> for ResourceName {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        match s.split_once('/') {
            Some((domain, name))
                if is_dns_subdomain(domain) && is_label_name(name) && !name.is_empty() =>
            {
                Ok(ResourceName(s))
            }
            _ => Err(format!(
                "`{s}` is not an extended resource name: use `domain/name`, e.g. nvidia.com/gpu"
            )),
        }
    }
}

fn is_label_name(s: &str) -> bool {
    let alnum = |c: char| c.is_ascii_alphanumeric();
    s.is_empty()
        || (s.len() <= 63
            && s.starts_with(alnum)
            && s.ends_with(alnum)
            && s.chars().all(|c| alnum(c) || matches!(c, '-' | '_' | '.')))
}

fn is_dns_label(s: &str) -> bool {
    is_dns_label_prefix(s) && !s.ends_with('-')
}

fn is_dns_label_prefix(s: &str) -> bool {
    let ok = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    !s.is_empty() && s.len() <= 63 && s.starts_with(ok) && s.chars().all(|c| ok(c) || c == '-')
}

fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns_label)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_patterns_match_names_and_prefixes() {
        let exact =
            NamespacePattern::try_from("databases".to_string()).unwrap_or_else(|e| panic!("{e}"));
        assert!(exact.matches("databases"));
        assert!(!exact.matches("databases-2"));
        let prefix =
            NamespacePattern::try_from("team-*".to_string()).unwrap_or_else(|e| panic!("{e}"));
        assert!(prefix.matches("team-a"));
        assert!(!prefix.matches("other"));
        assert!(NamespacePattern::try_from("Kube_System".to_string()).is_err());
        assert!(NamespacePattern::try_from("-x".to_string()).is_err());
    }

    #[test]
    fn label_keys_values_and_resources_follow_kubernetes_syntax() {
        assert!(LabelKey::try_from("app.kubernetes.io/name".to_string()).is_ok());
        assert!(LabelKey::try_from("tier".to_string()).is_ok());
        assert!(LabelKey::try_from("bad key".to_string()).is_err());
        assert!(LabelKey::try_from("/name".to_string()).is_err());
        assert!(LabelValue::try_from(String::new()).is_ok());
        assert!(LabelValue::try_from("-x".to_string()).is_err());
        assert!(ResourceName::try_from("nvidia.com/gpu".to_string()).is_ok());
        assert!(ResourceName::try_from("gpu".to_string()).is_err());
    }

    #[test]
    fn architecture_names_suggest_the_kubernetes_spelling() {
        let err = ArchName::try_from("aarch64".to_string())
            .err()
            .unwrap_or_default();
        assert!(err.contains("did you mean `arm64`"), "{err}");
    }
}
