//! Pull credentials: docker `config.json` / legacy `.dockercfg` parsing, and kubelet's rules for
//! which entries apply to an image (`credentialprovider.BasicDockerKeyring`).
//!
//! Matching, as kubelet does it: a key is `host[:port][/path]` (scheme and a `/v1/` or `/v2/`
//! suffix dropped); it matches an image when the host has as many labels, each label matches
//! (`*` is one label), the ports are equal, and the key's path is a prefix of the repository.
//! Keys are tried most specific first; when nothing matches a Docker Hub image, the
//! `index.docker.io` entry is used. Every match is tried in order, then anonymous.

use base64::Engine;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::Arc;

/// A username and password (or token), and where it came from. `Debug` never shows the secret.
/// Two credentials are equal when username and password are, wherever they came from.
#[derive(Clone)]
pub struct Credential {
    /// The registry username; empty for an identity token. Safe to log, unlike the password.
    pub username: String,
    password: String,
    /// `password` is an OAuth2 refresh token (docker config `identitytoken`): exchanged at the
    /// token service, never sent to a registry as a password.
    identity_token: bool,
    /// Its source, for messages: "pull secret apps/regcred", "--docker-config file F".
    origin: Arc<str>,
}

impl PartialEq for Credential {
    fn eq(&self, other: &Credential) -> bool {
        self.username == other.username
            && self.password == other.password
            && self.identity_token == other.identity_token
    }
}

impl Eq for Credential {}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Credential({}, <redacted>, {})",
            self.username, self.origin
        )
    }
}

impl Credential {
    /// A username and password (or access token) with no origin yet; see [`Self::with_origin`].
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Credential {
        Credential {
            username: username.into(),
            password: password.into(),
            identity_token: false,
            origin: Arc::from(""),
        }
    }

    /// An identity token (`identitytoken` in a docker config, as `docker login` stores it for
    /// registries with OAuth2): a refresh token for the registry's token service.
    pub fn identity_token(token: impl Into<String>) -> Credential {
        Credential {
            identity_token: true,
            ..Credential::new("", token)
        }
    }

    /// The refresh token, when this credential is an identity token.
    pub fn refresh_token(&self) -> Option<&str> {
        self.identity_token.then_some(self.password.as_str())
    }

    /// The same credential, named as coming from `origin`.
    pub fn with_origin(mut self, origin: &str) -> Credential {
        self.origin = Arc::from(origin);
        self
    }

    /// Where this credential came from ("" when not known). Safe for messages and logs.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The value of an `Authorization: Basic` header; `None` for an identity token, which
    /// registries take only at their token service.
    pub fn basic_header(&self) -> Option<String> {
        if self.identity_token {
            return None;
        }
        let raw = format!("{}:{}", self.username, self.password);
        Some(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        ))
    }

    /// A stable, irreversible name for this credential: the cache key of what it unlocked.
    pub fn scope(&self) -> Scope {
        let mut h = Sha256::new();
        h.update(self.username.as_bytes());
        h.update([0]);
        h.update(self.password.as_bytes());
        h.update([u8::from(self.identity_token)]);
        let digest = h.finalize();
        let mut id = [0u8; 16];
        id.copy_from_slice(&digest[..16]);
        Scope::Credential(id)
    }
}

/// Who a registry answer was obtained as: the cache never serves it to anyone else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Obtained with no credential: anyone may be served it.
    Anonymous,
    /// The first 16 bytes of sha256(username NUL password).
    Credential([u8; 16]),
}

/// Why a docker config could not be read. Messages say where, never what: a secret's bytes
/// must not reach a log line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialsError {
    /// The config is not JSON of the expected shape.
    #[error("{origin}: not a docker config ({reason} at line {line} column {column})")]
    Json {
        /// Where the config came from ("pull secret apps/regcred", a file path).
        origin: String,
        /// The kind of JSON error ("invalid JSON", "unexpected value"), never the text.
        reason: &'static str,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
    },
    /// An entry's `auth` does not decode to `user:password`.
    #[error("{origin}: entry for {key}: `auth` is not base64 of user:password")]
    BadAuth {
        /// Where the config came from ("pull secret apps/regcred", a file path).
        origin: String,
        /// The entry's registry key, e.g. `https://index.docker.io/v1/`.
        key: String,
    },
}

/// One config entry as written (both formats share it).
#[derive(serde::Deserialize, Default)]
struct Entry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
}

#[derive(serde::Deserialize)]
struct ConfigJson {
    #[serde(default)]
    auths: BTreeMap<String, Entry>,
}

/// The credentials of one source (a secret, or the node's config file), keyed as kubelet keys them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Keyring {
    /// (key, credential), most specific key first.
    entries: Vec<(String, Credential)>,
}

impl Keyring {
    /// `~/.docker/config.json` / `kubernetes.io/dockerconfigjson`: `{"auths": {host: entry}}`.
    pub fn from_config_json(bytes: &[u8], origin: &str) -> Result<Keyring, CredentialsError> {
        let parsed: ConfigJson =
            serde_json::from_slice(bytes).map_err(|e| json_error(&e, origin))?;
        Keyring::from_entries(parsed.auths, origin)
    }

    /// Legacy `.dockercfg` / `kubernetes.io/dockercfg`: `{host: entry}`.
    pub fn from_dockercfg(bytes: &[u8], origin: &str) -> Result<Keyring, CredentialsError> {
        let parsed: BTreeMap<String, Entry> =
            serde_json::from_slice(bytes).map_err(|e| json_error(&e, origin))?;
        Keyring::from_entries(parsed, origin)
    }

    fn from_entries(
        entries: BTreeMap<String, Entry>,
        origin: &str,
    ) -> Result<Keyring, CredentialsError> {
        let mut out = Vec::with_capacity(entries.len());
        for (location, entry) in entries {
            let bad = || CredentialsError::BadAuth {
                origin: origin.to_string(),
                key: location.clone(),
            };
            let credential = match (&entry.auth, &entry.username, &entry.password) {
                (Some(auth), _, _) if !auth.is_empty() => {
                    let raw = base64::engine::general_purpose::STANDARD
                        .decode(auth.trim())
                        .map_err(|_| bad())?;
                    let raw = String::from_utf8(raw).map_err(|_| bad())?;
                    let (user, pass) = raw.split_once(':').ok_or_else(bad)?;
                    Credential::new(user, pass)
                }
                (_, Some(user), Some(pass)) => Credential::new(user.clone(), pass.clone()),
                // An identity token alone is an OAuth2 refresh token (docker login to some
                // registries), exchanged at the token service as Docker's client does.
                _ => match &entry.identitytoken {
                    Some(token) if !token.is_empty() => Credential::identity_token(token.clone()),
                    _ => continue,
                },
            };
            out.push((normalise_key(&location), credential.with_origin(origin)));
        }
        // Reverse lexical order puts "quay.io/coreos" before "quay.io", as kubelet does.
        out.sort_by(|a, b| b.0.cmp(&a.0));
        Ok(Keyring { entries: out })
    }

    /// Whether the source holds no usable entry.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The credentials for `image` (`host[:port]/repository`), in the order to try them.
    pub fn lookup(&self, image: &str) -> Vec<Credential> {
        let matched: Vec<Credential> = self
            .entries
            .iter()
            .filter(|(key, _)| key_matches(key, image))
            .map(|(_, c)| c.clone())
            .collect();
        if !matched.is_empty() || !is_docker_hub(image) {
            return matched;
        }
        self.entries
            .iter()
            .filter(|(key, _)| key == "index.docker.io")
            .map(|(_, c)| c.clone())
            .collect()
    }
}

/// Every credential to try for `image`, over several sources in order, without repeats.
pub fn candidates<'k>(
    keyrings: impl IntoIterator<Item = &'k Keyring>,
    image: &str,
) -> Vec<Credential> {
    let mut out: Vec<Credential> = Vec::new();
    for keyring in keyrings {
        for c in keyring.lookup(image) {
            if !out.contains(&c) {
                out.push(c);
            }
        }
    }
    out
}

fn json_error(e: &serde_json::Error, origin: &str) -> CredentialsError {
    // serde_json's own message can quote the offending value, which may be a password.
    let reason = match e.classify() {
        serde_json::error::Category::Io => "read error",
        serde_json::error::Category::Syntax => "invalid JSON",
        serde_json::error::Category::Data => "unexpected value",
        serde_json::error::Category::Eof => "unexpected end",
    };
    CredentialsError::Json {
        origin: origin.to_string(),
        reason,
        line: e.line(),
        column: e.column(),
    }
}

/// `https://index.docker.io/v1/` -> `index.docker.io`; `quay.io/coreos` stays.
fn normalise_key(location: &str) -> String {
    let rest = location
        .strip_prefix("https://")
        .or_else(|| location.strip_prefix("http://"))
        .unwrap_or(location);
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let path = path
        .strip_prefix("v1/")
        .or_else(|| path.strip_prefix("v2/"))
        .unwrap_or(path);
    let path = path.trim_end_matches('/');
    let path = if path == "v1" || path == "v2" {
        ""
    } else {
        path
    };
    let host = host.to_ascii_lowercase();
    if path.is_empty() {
        host
    } else {
        format!("{host}/{path}")
    }
}

/// kubelet's `URLsMatchStr`: same label count, each label globbed, same port, path prefix.
fn key_matches(key: &str, image: &str) -> bool {
    let (key_host, key_path) = key.split_once('/').unwrap_or((key, ""));
    let (img_host, img_path) = image.split_once('/').unwrap_or((image, ""));
    let (key_name, key_port) = super::config::split_host_port(key_host);
    let (img_name, img_port) = super::config::split_host_port(img_host);
    if key_port != img_port || !img_path.starts_with(key_path) {
        return false;
    }
    let key_labels: Vec<&str> = key_name.split('.').collect();
    let img_labels: Vec<&str> = img_name.split('.').collect();
    key_labels.len() == img_labels.len()
        && key_labels
            .iter()
            .zip(&img_labels)
            .all(|(k, i)| glob(k.as_bytes(), i.as_bytes()))
}

/// `*` and `?` within one label (Go's `filepath.Match` without classes). Greedy with one
/// backtrack point, the last `*`, so the time is at most pattern x text whatever the pattern:
/// keys come from tenants' pull secrets and labels from their pods' images.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    // Where the last `*` was, and where in the text it would resume.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == b'?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                // Let the last `*` take one more character and try again from there.
                Some((sp, st)) => {
                    star = Some((sp, st + 1));
                    p = sp + 1;
                    t = st + 1;
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

fn is_docker_hub(image: &str) -> bool {
    let host = image.split('/').next().unwrap_or("");
    host == "docker.io" || host == "index.docker.io"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(json: &str) -> Keyring {
        Keyring::from_config_json(json.as_bytes(), "test").unwrap_or_else(|e| panic!("{e}"))
    }

    fn users(creds: &[Credential]) -> Vec<&str> {
        creds.iter().map(|c| c.username.as_str()).collect()
    }

    #[test]
    fn kubelet_matching_rules() {
        let k = ring(
            r#"{"auths": {
                "*.kubernetes.io": {"username": "wild", "password": "p"},
                "quay.io": {"username": "quay", "password": "p"},
                "quay.io/coreos": {"username": "coreos", "password": "p"},
                "registry.internal:5000": {"username": "port", "password": "p"},
                "https://index.docker.io/v1/": {"auth": "aHViOnNlY3JldA=="}
            }}"#,
        );
        assert_eq!(users(&k.lookup("registry.kubernetes.io/pause")), ["wild"]);
        // `*` is one label, not several.
        assert!(k.lookup("a.registry.kubernetes.io/pause").is_empty());
        assert_eq!(users(&k.lookup("quay.io/coreos/etcd")), ["coreos", "quay"]);
        assert_eq!(users(&k.lookup("quay.io/other/x")), ["quay"]);
        assert_eq!(
            users(&k.lookup("registry.internal:5000/team/app")),
            ["port"]
        );
        // Ports must match, both ways.
        assert!(k.lookup("registry.internal/team/app").is_empty());
        assert!(k.lookup("quay.io:443/coreos/etcd").is_empty());
        // Docker Hub images fall back to the index.docker.io entry.
        assert_eq!(users(&k.lookup("docker.io/library/nginx")), ["hub"]);
        assert!(k.lookup("ghcr.io/acme/api").is_empty());
    }

    #[test]
    fn sources_are_tried_in_order_without_repeats() {
        let pod = ring(r#"{"auths": {"ghcr.io": {"username": "pod", "password": "1"}}}"#);
        let sa = ring(
            r#"{"auths": {"ghcr.io/acme": {"username": "sa", "password": "2"}, "ghcr.io": {"username": "pod", "password": "1"}}}"#,
        );
        let node = ring(r#"{"auths": {"ghcr.io": {"username": "node", "password": "3"}}}"#);
        let found = candidates([&pod, &sa, &node], "ghcr.io/acme/api");
        assert_eq!(users(&found), ["pod", "sa", "node"]);
        // A credential in two sources is named after the first.
        let pod = Keyring::from_config_json(
            br#"{"auths": {"ghcr.io": {"username": "pod", "password": "1"}}}"#,
            "pull secret apps/regcred",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let found = candidates([&pod, &sa], "ghcr.io/acme/api");
        let origins: Vec<&str> = found.iter().map(Credential::origin).collect();
        assert_eq!(origins, ["pull secret apps/regcred", "test"]);
    }

    #[test]
    fn legacy_dockercfg_and_errors_that_never_quote_secrets() {
        let k = Keyring::from_dockercfg(
            br#"{"quay.io": {"auth": "dTpzM2NyZXQ=", "email": "x@y"}}"#,
            "secret ns/old",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(users(&k.lookup("quay.io/a/b")), ["u"]);
        let err = Keyring::from_config_json(
            br#"{"auths": {"quay.io": {"auth": 12345678}}}"#,
            "node config",
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(
            err.contains("node config") && !err.contains("12345678"),
            "{err}"
        );
        let err =
            Keyring::from_config_json(br#"{"auths": {"quay.io": {"auth": "!!!hunter2"}}}"#, "s")
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
        assert!(
            err.contains("not base64") && !err.contains("hunter2"),
            "{err}"
        );
        assert!(!format!("{:?}", Credential::new("u", "hunter2")).contains("hunter2"));
        assert_ne!(
            Credential::new("u", "a").scope(),
            Credential::new("u", "b").scope()
        );
    }
}
