//! Registry authentication, the parts without I/O: the `WWW-Authenticate` challenge of a 401,
//! the token endpoint's answer, and the cache of `Authorization` headers that lets later requests
//! skip the 401 round trip until the token expires.

use super::credentials::Scope;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What a registry asked for in its 401.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// Send the credential itself as `Authorization: Basic` (impossible with an identity token).
    Basic,
    /// Get a token from the token service first, and send it as `Authorization: Bearer`.
    Bearer {
        /// The token service's URL.
        realm: String,
        /// `service`, passed on to the token service; None when the challenge has none.
        service: Option<String>,
        /// `scope` to ask for; None means `repository:<repo>:pull`.
        scope: Option<String>,
    },
}

/// Parses `Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="..."`
/// or `Basic realm="..."`. Quoted values may hold commas.
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    let params = parse_params(rest);
    let get = |k: &str| {
        params
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(k))
            .map(|(_, v)| v.clone())
    };
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Challenge::Basic);
    }
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some(Challenge::Bearer {
            realm: get("realm")?,
            service: get("service"),
            scope: get("scope"),
        });
    }
    None
}

fn parse_params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    // Bounded by the header's length: every iteration consumes at least one character.
    while chars.peek().is_some() {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            value = chars.by_ref().take_while(|c| *c != ',').collect();
        }
        out.push((key.trim().to_string(), value.trim().to_string()));
    }
    out
}

/// A token endpoint's answer: `token` (or OAuth2 `access_token`) and its lifetime.
#[derive(Debug, serde::Deserialize)]
pub struct TokenResponse {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

impl TokenResponse {
    /// The bearer token and how long to reuse it (`default_ttl` when the answer does not say;
    /// a few seconds are kept in hand so a token never expires on its way to the registry).
    pub fn into_token(self, default_ttl: Duration) -> Option<(String, Duration)> {
        let token = self.token.or(self.access_token).filter(|t| !t.is_empty())?;
        let ttl = self
            .expires_in
            .map_or(default_ttl, Duration::from_secs)
            .saturating_sub(Duration::from_secs(5))
            .max(Duration::from_secs(1));
        Some((token, ttl))
    }
}

type AuthKey = (String, String, Scope);

/// `Authorization` header values by (registry host, repository, credential scope).
#[derive(Debug)]
pub struct AuthCache {
    entries: Mutex<HashMap<AuthKey, (String, Instant)>>,
    max_entries: usize,
}

impl AuthCache {
    /// An empty cache holding at most `max_entries` headers (at least one).
    pub fn new(max_entries: usize) -> AuthCache {
        AuthCache {
            entries: Mutex::new(HashMap::new()),
            max_entries: max_entries.max(1),
        }
    }

    /// The header to send for `repository` on `host` as `scope`, unless none or expired.
    pub fn get(&self, host: &str, repository: &str, scope: Scope) -> Option<String> {
        let entries = self.entries.lock().ok()?;
        let (header, until) = entries.get(&(host.to_string(), repository.to_string(), scope))?;
        (Instant::now() < *until).then(|| header.clone())
    }

    /// Remembers `header` for `ttl`; when full, expired entries go, and if none had, all do.
    pub fn put(&self, host: &str, repository: &str, scope: Scope, header: String, ttl: Duration) {
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if entries.len() >= self.max_entries {
            let now = Instant::now();
            entries.retain(|_, (_, until)| *until > now);
            if entries.len() >= self.max_entries {
                // Dropping every token costs one extra 401 round trip each; cheap and bounded.
                entries.clear();
            }
        }
        entries.insert(
            (host.to_string(), repository.to_string(), scope),
            (header, Instant::now() + ttl),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_of_real_registries() {
        let hub = r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull""#;
        assert_eq!(
            parse_challenge(hub),
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/nginx:pull".into()),
            })
        );
        let multi = r#"Bearer realm="https://r/token",scope="repository:a/b:pull,push""#;
        assert!(
            matches!(parse_challenge(multi), Some(Challenge::Bearer { scope: Some(s), .. }) if s == "repository:a/b:pull,push")
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(parse_challenge("Bearer service=\"x\""), None, "no realm");
        assert_eq!(parse_challenge("Negotiate"), None);
    }

    #[test]
    fn tokens_expire_with_a_default_and_a_margin() {
        let t: TokenResponse = serde_json::from_str(r#"{"token":"abc","expires_in":300}"#)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            t.into_token(Duration::from_secs(60)),
            Some(("abc".into(), Duration::from_secs(295)))
        );
        let t: TokenResponse =
            serde_json::from_str(r#"{"access_token":"x"}"#).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            t.into_token(Duration::from_secs(60)).map(|t| t.1),
            Some(Duration::from_secs(55))
        );
        let t: TokenResponse =
            serde_json::from_str(r#"{"token":""}"#).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(t.into_token(Duration::from_secs(60)), None);
    }

    #[test]
    fn cache_is_keyed_by_credential_scope_and_expires() {
        let c = AuthCache::new(2);
        c.put(
            "h",
            "r",
            Scope::Anonymous,
            "Bearer a".into(),
            Duration::from_secs(60),
        );
        assert_eq!(
            c.get("h", "r", Scope::Anonymous).as_deref(),
            Some("Bearer a")
        );
        assert_eq!(c.get("h", "r", Scope::Credential([1; 16])), None);
        c.put(
            "h",
            "s",
            Scope::Anonymous,
            "Bearer b".into(),
            Duration::ZERO,
        );
        assert_eq!(c.get("h", "s", Scope::Anonymous), None);
        c.put(
            "h",
            "t",
            Scope::Anonymous,
            "Bearer c".into(),
            Duration::from_secs(60),
        );
        assert_eq!(
            c.get("h", "t", Scope::Anonymous).as_deref(),
            Some("Bearer c")
        );
    }
}
