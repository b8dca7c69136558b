//! The `--registry-config` file: per-registry TLS, plain HTTP and mirrors, which registries may be
//! contacted, timeouts, cache lifetimes and size. Loaded once, checked with line:column errors.
//!
//! ```toml
//! allow = ["docker.io", "ghcr.io", "*.internal:5000"]   # empty or absent: any registry
//! deny = ["registry.evil.example", "10.0.0.0/8"]
//!
//! [timeouts]
//! lookup = "3s"     # one image, every request included
//! request = "2s"    # one HTTP request, connect included
//!
//! [cache]
//! tag_ttl = "1m"
//! platforms_ttl = "24h"
//! negative_ttl = "10s"
//! token_ttl = "60s"
//! max_entries = 10000
//!
//! [registries."registry.internal:5000"]
//! ca_file = "/etc/archgate/registry-ca.crt"
//! insecure = false
//! mirror = "mirror.internal:5000"
//! ```

use crate::text::line_col;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::Spanned;

/// Why the registry configuration could not be loaded. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum RegistryConfigError {
    /// The file could not be read.
    #[error("cannot read registry config {path}: {source}")]
    Read {
        /// The file that could not be read.
        path: PathBuf,
        /// Why reading failed.
        #[source]
        source: std::io::Error,
    },
    /// The text is not TOML or does not fit the schema; the message, from `toml`, says where.
    #[error("registry config {path}: {message}")]
    Parse {
        /// The registry config file.
        path: PathBuf,
        /// `toml`'s error, with its line, column and source excerpt.
        message: String,
    },
    /// A value is wrong (a bad host pattern, duration or CA file); located in the file.
    #[error("registry config {path}:{line}:{column}: {message}")]
    Invalid {
        /// The registry config file.
        path: PathBuf,
        /// 1-based line of the offending value.
        line: usize,
        /// 1-based column on that line, counted in bytes.
        column: usize,
        /// What is wrong and how to fix it.
        message: String,
    },
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Spec {
    #[serde(default)]
    allow: Vec<Spanned<String>>,
    #[serde(default)]
    deny: Vec<Spanned<String>>,
    #[serde(default)]
    timeouts: TimeoutsSpec,
    #[serde(default)]
    cache: CacheSpec,
    #[serde(default)]
    registries: BTreeMap<Spanned<String>, Spanned<HostSpec>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct TimeoutsSpec {
    lookup: Option<Spanned<String>>,
    request: Option<Spanned<String>>,
    background: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct CacheSpec {
    tag_ttl: Option<Spanned<String>>,
    platforms_ttl: Option<Spanned<String>>,
    negative_ttl: Option<Spanned<String>>,
    token_ttl: Option<Spanned<String>>,
    max_entries: Option<Spanned<u64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HostSpec {
    ca_file: Option<PathBuf>,
    #[serde(default)]
    insecure: bool,
    mirror: Option<String>,
    #[serde(default)]
    mirror_only: bool,
}

/// How long things may take and live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timeouts {
    /// One image lookup, all its requests included. Well inside the admission deadline (80% of
    /// the webhook's timeout), so a slow registry fails the lookup, not the webhook call.
    pub lookup: Duration,
    /// One HTTP request, connection and TLS handshake included.
    pub request: Duration,
    /// One lookup by the placement controller for a gated pod, which no admission deadline
    /// bounds: a registry too slow for admission (seconds per connection) still answers here.
    /// Each of its requests may take all of it.
    pub background: Duration,
}

/// Cache lifetimes and bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheConfig {
    /// tag -> digest: a tag moves, so this is short; `imagePullPolicy: Always` never sees older.
    pub tag_ttl: Duration,
    /// digest -> platforms: content-addressed, so long-lived.
    pub platforms_ttl: Duration,
    /// Failures, so a broken registry is not asked again by every pod of a rollout.
    pub negative_ttl: Duration,
    /// Registry tokens that come without `expires_in`.
    pub token_ttl: Duration,
    /// Entries per cache (tags, platforms, failures each).
    pub max_entries: u64,
}

/// What the configuration says about one registry host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostConfig {
    /// PEM bundle trusted for this host in addition to the public roots.
    pub ca_pem: Option<Vec<u8>>,
    /// Where `ca_pem` came from, for messages.
    pub ca_file: Option<PathBuf>,
    /// Plain HTTP instead of HTTPS.
    pub insecure: bool,
    /// Ask this host first (a pull-through cache); the registry itself when it fails.
    pub mirror: Option<String>,
    /// Never ask the registry itself, only `mirror` (air-gapped clusters).
    pub mirror_only: bool,
}

/// The checked registry configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryConfig {
    /// Host patterns that may be contacted; empty means any (the deny rules still apply).
    pub allow: Vec<String>,
    /// Host patterns and CIDR networks that may never be contacted.
    pub deny: Vec<String>,
    /// `[timeouts]`: lookup, request and background limits.
    pub timeouts: Timeouts,
    /// `[cache]`: lifetimes and size of the tag, platform, failure and token caches.
    pub cache: CacheConfig,
    /// By registry host (`docker.io` for Docker Hub, whatever it was written as).
    pub registries: BTreeMap<String, HostConfig>,
}

impl Default for RegistryConfig {
    fn default() -> RegistryConfig {
        RegistryConfig {
            allow: Vec::new(),
            deny: Vec::new(),
            timeouts: Timeouts {
                lookup: Duration::from_secs(3),
                request: Duration::from_secs(2),
                background: Duration::from_secs(60),
            },
            cache: CacheConfig {
                tag_ttl: Duration::from_secs(60),
                platforms_ttl: Duration::from_secs(24 * 3600),
                negative_ttl: Duration::from_secs(10),
                token_ttl: Duration::from_secs(60),
                max_entries: 10_000,
            },
            registries: BTreeMap::new(),
        }
    }
}

impl RegistryConfig {
    /// Reads and checks the `--registry-config` file.
    pub fn load(path: &Path) -> Result<RegistryConfig, RegistryConfigError> {
        let source = std::fs::read_to_string(path).map_err(|source| RegistryConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        RegistryConfig::from_toml(&source, path)
    }

    /// Parses configuration text; `path` names it in errors, and relative `ca_file`s are read
    /// from its directory.
    pub fn from_toml(source: &str, path: &Path) -> Result<RegistryConfig, RegistryConfigError> {
        let spec: Spec = toml::from_str(source).map_err(|e| RegistryConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string().trim_end().to_string(),
        })?;
        let invalid = |span: std::ops::Range<usize>, message: String| {
            let (line, column) = line_col(source, span.start);
            RegistryConfigError::Invalid {
                path: path.to_path_buf(),
                line,
                column,
                message,
            }
        };
        let mut config = RegistryConfig::default();
        for entry in &spec.allow {
            check_pattern(entry.get_ref(), false).map_err(|m| invalid(entry.span(), m))?;
            config.allow.push(entry.get_ref().to_ascii_lowercase());
        }
        for entry in &spec.deny {
            check_pattern(entry.get_ref(), true).map_err(|m| invalid(entry.span(), m))?;
            config.deny.push(entry.get_ref().to_ascii_lowercase());
        }
        let duration = |value: &Option<Spanned<String>>, default: Duration, key: &str| {
            match value
        {
            None => Ok(default),
            Some(v) => parse_duration(v.get_ref())
                .filter(|d| !d.is_zero())
                .ok_or_else(|| {
                    invalid(
                        v.span(),
                        format!("{key} = {:?}: write a positive duration such as \"500ms\", \"3s\", \"5m\" or \"1h\"", v.get_ref()),
                    )
                }),
        }
        };
        let t = &spec.timeouts;
        config.timeouts.lookup = duration(&t.lookup, config.timeouts.lookup, "timeouts.lookup")?;
        config.timeouts.request =
            duration(&t.request, config.timeouts.request, "timeouts.request")?;
        config.timeouts.background = duration(
            &t.background,
            config.timeouts.background,
            "timeouts.background",
        )?;
        let c = &spec.cache;
        config.cache.tag_ttl = duration(&c.tag_ttl, config.cache.tag_ttl, "cache.tag_ttl")?;
        config.cache.platforms_ttl = duration(
            &c.platforms_ttl,
            config.cache.platforms_ttl,
            "cache.platforms_ttl",
        )?;
        config.cache.negative_ttl = duration(
            &c.negative_ttl,
            config.cache.negative_ttl,
            "cache.negative_ttl",
        )?;
        config.cache.token_ttl = duration(&c.token_ttl, config.cache.token_ttl, "cache.token_ttl")?;
        if let Some(max) = &c.max_entries {
            if *max.get_ref() == 0 {
                return Err(invalid(
                    max.span(),
                    "cache.max_entries must be at least 1".into(),
                ));
            }
            config.cache.max_entries = *max.get_ref();
        }
        let base = path.parent().unwrap_or(Path::new("."));
        for (host, spec) in spec.registries {
            let name = host.get_ref().to_ascii_lowercase();
            if !is_host_port(&name) {
                return Err(invalid(host.span(), format!("registries.\"{}\": not a registry host: write host or host:port, e.g. \"registry.internal:5000\"", host.get_ref())));
            }
            let span = spec.span();
            let spec = spec.into_inner();
            if let Some(mirror) = &spec.mirror {
                if !is_host_port(mirror) {
                    return Err(invalid(span, format!("registries.\"{name}\".mirror = {mirror:?}: write host or host:port, e.g. \"mirror.internal:5000\"")));
                }
            }
            if spec.mirror_only && spec.mirror.is_none() {
                return Err(invalid(span, format!("registries.\"{name}\".mirror_only = true needs a mirror: add mirror = \"host[:port]\"")));
            }
            let ca_pem = match &spec.ca_file {
                None => None,
                Some(file) => {
                    let file = base.join(file);
                    let pem = std::fs::read(&file).map_err(|e| {
                        invalid(
                            span.clone(),
                            format!(
                                "registries.\"{name}\".ca_file: cannot read {}: {e}",
                                file.display()
                            ),
                        )
                    })?;
                    if !pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") {
                        return Err(invalid(
                            span,
                            format!(
                                "registries.\"{name}\".ca_file: {} holds no PEM certificate",
                                file.display()
                            ),
                        ));
                    }
                    Some(pem)
                }
            };
            let entry = HostConfig {
                ca_pem,
                ca_file: spec.ca_file.map(|f| base.join(f)),
                insecure: spec.insecure,
                mirror: spec.mirror.map(|m| m.to_ascii_lowercase()),
                mirror_only: spec.mirror_only,
            };
            let key = canonical_host(&name).to_string();
            if config.registries.insert(key.clone(), entry).is_some() {
                return Err(invalid(
                    host.span(),
                    format!("registries.\"{name}\": {key} is configured twice"),
                ));
            }
        }
        Ok(config)
    }

    /// The configuration of one registry host (defaults when it has none).
    pub fn host(&self, host: &str) -> HostConfig {
        self.registries
            .get(canonical_host(host))
            .cloned()
            .unwrap_or_default()
    }
}

/// Docker Hub answers to several names; the configuration and images use `docker.io`.
pub fn canonical_host(host: &str) -> &str {
    match host {
        "index.docker.io" | "registry-1.docker.io" => "docker.io",
        other => other,
    }
}

/// `host`, `host:port` or `[v6]:port`: what a registry key, mirror or allow entry may be.
fn is_host_port(s: &str) -> bool {
    let (host, port) = split_host_port(s);
    let host_ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:[]*".contains(&b));
    host_ok && port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// Splits `host[:port]`, keeping IPv6 brackets on the host.
pub fn split_host_port(s: &str) -> (&str, Option<&str>) {
    if s.starts_with('[') {
        return match s.find(']') {
            Some(end) => {
                let (host, rest) = s.split_at(end + 1);
                (host, rest.strip_prefix(':'))
            }
            None => (s, None),
        };
    }
    match s.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => (host, Some(port)),
        _ => (s, None),
    }
}

fn check_pattern(entry: &str, cidr_allowed: bool) -> Result<(), String> {
    if cidr_allowed && entry.contains('/') {
        return super::guard::Network::parse(entry)
            .map(|_| ())
            .ok_or_else(|| {
                format!("{entry:?} is not a network: write it as 10.0.0.0/8 or fd00::/8")
            });
    }
    let wildcard_ok = entry
        .strip_prefix("*.")
        .map_or(!entry.contains('*'), |rest| !rest.contains('*'));
    if is_host_port(entry) && wildcard_ok {
        Ok(())
    } else {
        Err(format!("{entry:?} is not a registry host pattern: write host, host:port or *.domain (one label)"))
    }
}

pub use crate::text::parse_duration;

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<RegistryConfig, String> {
        RegistryConfig::from_toml(text, Path::new("registries.toml")).map_err(|e| e.to_string())
    }

    #[test]
    fn the_issue_example_loads_and_defaults_fill_the_rest() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let ca = dir.path().join("ca.crt");
        std::fs::write(
            &ca,
            "-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let text = format!(
            "[registries.\"registry.internal:5000\"]\nca_file = {:?}\ninsecure = false\nmirror = \"mirror.internal:5000\"\n",
            ca.display()
        );
        let config = load(&text).unwrap_or_else(|e| panic!("{e}"));
        let host = config.host("registry.internal:5000");
        assert_eq!(host.mirror.as_deref(), Some("mirror.internal:5000"));
        assert!(
            !host.mirror_only,
            "upstream is the fallback unless mirror_only"
        );
        assert!(host.ca_pem.is_some());
        assert!(!host.insecure);
        assert_eq!(config.timeouts.lookup, Duration::from_secs(3));
        assert_eq!(config.host("other.example"), HostConfig::default());
    }

    #[test]
    fn docker_hub_spellings_share_one_entry() {
        let config = load("[registries.\"index.docker.io\"]\nmirror = \"127.0.0.1:5000\"\n")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            config.host("docker.io").mirror.as_deref(),
            Some("127.0.0.1:5000")
        );
    }

    #[test]
    fn durations_lists_and_sizes_are_checked_with_line_and_column() {
        let config = load("allow = [\"*.internal:5000\", \"docker.io\"]\ndeny = [\"10.0.0.0/8\"]\n[timeouts]\nlookup = \"500ms\"\n[cache]\ntag_ttl = \"5m\"\nmax_entries = 3\n")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.timeouts.lookup, Duration::from_millis(500));
        assert_eq!(config.cache.tag_ttl, Duration::from_secs(300));
        assert_eq!(config.cache.max_entries, 3);
        let err = load("[timeouts]\nlookup = \"3 seconds\"\n")
            .err()
            .unwrap_or_default();
        assert!(
            err.starts_with("registry config registries.toml:2:10:"),
            "{err}"
        );
        let err = load("deny = [\"10.0.0.0/99\"]\n").err().unwrap_or_default();
        assert!(
            err.contains("1:9") && err.contains("not a network"),
            "{err}"
        );
        let err = load("allow = [\"*.*.example\"]\n")
            .err()
            .unwrap_or_default();
        assert!(err.contains("one label"), "{err}");
        let err = load("[registries.\"a:5000\"]\ninsecur = true\n")
            .err()
            .unwrap_or_default();
        assert!(err.contains("unknown field `insecur`"), "{err}");
        let err = load("[registries.\"a\"]\nca_file = \"/nonexistent/ca.crt\"\n")
            .err()
            .unwrap_or_default();
        assert!(err.contains("cannot read /nonexistent/ca.crt"), "{err}");
    }

    #[test]
    fn mirror_only_needs_a_mirror() {
        let config = load("[registries.\"docker.io\"]\nmirror = \"m:5000\"\nmirror_only = true\n")
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(config.host("docker.io").mirror_only);
        let err = load("[registries.\"docker.io\"]\nmirror_only = true\n")
            .err()
            .unwrap_or_default();
        assert!(err.contains("mirror_only = true needs a mirror"), "{err}");
    }
}
