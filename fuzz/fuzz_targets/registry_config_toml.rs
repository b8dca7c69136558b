//! `RegistryConfig::from_toml` (`--registry-config`) over arbitrary TOML text.
//!
//! Asserts, for any UTF-8 text:
//! 1. Loading does not panic; an `Invalid` error's line and column point inside the text.
//! 2. A configuration that loads came from valid TOML, and holds only what the loader promises:
//!    lower-case allow and deny entries, positive timeouts and TTLs, at least one cache entry,
//!    registry keys that are lower-case hosts under their canonical name (`docker.io`, not
//!    `index.docker.io`), lower-case mirrors, and `mirror_only` only with a mirror.
//! 3. `host()` finds each configured registry under any of its Docker Hub aliases.
//!
//! `ca_file` is read from disk, so a value that is not a plain file name (which resolves under a
//! directory that does not exist) is skipped: `/dev/zero` is no parser bug.
#![no_main]

use archgate::registry::config::canonical_host;
use archgate::registry::{RegistryConfig, RegistryConfigError};
use libfuzzer_sys::fuzz_target;
use std::path::Path;
use std::time::Duration;

/// Whether every `ca_file` in the document is a plain file name.
fn ca_files_are_plain(v: &toml::Value) -> bool {
    match v {
        toml::Value::Table(t) => t.iter().all(|(k, v)| {
            let plain = |s: &str| {
                !s.is_empty()
                    && s != ".."
                    && s.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
            };
            (k != "ca_file" || v.as_str().is_some_and(plain)) && ca_files_are_plain(v)
        }),
        toml::Value::Array(a) => a.iter().all(ca_files_are_plain),
        _ => true,
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(source) = std::str::from_utf8(data) else {
        return;
    };
    let table = source.parse::<toml::Table>();
    if let Ok(t) = &table {
        if !ca_files_are_plain(&toml::Value::Table(t.clone())) {
            return;
        }
    }
    let path = Path::new("/nonexistent-archgate-fuzz/registries.toml");
    let config = match RegistryConfig::from_toml(source, path) {
        Ok(config) => config,
        Err(RegistryConfigError::Invalid { line, column, .. }) => {
            let lines = source.split('\n').count();
            assert!(line >= 1 && line <= lines, "line {line} of {lines}");
            let text = source.split('\n').nth(line - 1).unwrap_or("");
            assert!(
                column >= 1 && column <= text.len() + 1,
                "column {column} of a {}-byte line",
                text.len()
            );
            return;
        }
        Err(_) => return,
    };
    if let Err(e) = &table {
        panic!("a registry config loaded from text that is not TOML: {e}");
    }
    for entry in config.allow.iter().chain(&config.deny) {
        assert_eq!(*entry, entry.to_ascii_lowercase(), "entry not lower-cased");
        assert!(!entry.is_empty(), "empty host pattern");
    }
    let t = &config.timeouts;
    let c = &config.cache;
    for d in [
        t.lookup,
        t.request,
        t.background,
        c.tag_ttl,
        c.platforms_ttl,
        c.negative_ttl,
        c.token_ttl,
    ] {
        assert!(d > Duration::ZERO, "a zero duration loaded");
    }
    assert!(c.max_entries >= 1);
    for (host, entry) in &config.registries {
        assert!(!host.is_empty());
        assert_eq!(
            *host,
            host.to_ascii_lowercase(),
            "registry key not lower-cased"
        );
        assert_eq!(canonical_host(host), host, "registry key not canonical");
        if let Some(m) = &entry.mirror {
            assert_eq!(*m, m.to_ascii_lowercase(), "mirror not lower-cased");
        }
        assert!(
            !entry.mirror_only || entry.mirror.is_some(),
            "mirror_only without a mirror"
        );
        assert_eq!(config.host(host), *entry);
        if host == "docker.io" {
            assert_eq!(config.host("index.docker.io"), *entry);
            assert_eq!(config.host("registry-1.docker.io"), *entry);
        }
    }
});
