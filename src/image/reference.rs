//! Container image references, normalised the way Docker and containerd do it
//! (a port of distribution/reference `ParseNormalizedNamed`).
//!
//! Policies and lookups must treat `nginx`, `docker.io/nginx` and
//! `index.docker.io/library/nginx:latest` as the same image, otherwise a rule
//! written against one spelling is bypassed by another. Every reference is
//! therefore reduced to an explicit registry, a full repository path, and a tag
//! and/or digest before anything else looks at it.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

const DEFAULT_REGISTRY: &str = "docker.io";
const LEGACY_DEFAULT_REGISTRY: &str = "index.docker.io";
const OFFICIAL_REPO_PREFIX: &str = "library/";
const DEFAULT_TAG: &str = "latest";
const LOCALHOST: &str = "localhost";

/// Longest repository path (after normalisation, without registry, tag or
/// digest) that distribution accepts.
pub const MAX_REPOSITORY_LEN: usize = 255;

const MAX_TAG_LEN: usize = 128;
const MIN_DIGEST_HEX_LEN: usize = 32;

/// Why a string is not a usable image reference.
///
/// Every variant except [`ReferenceError::Empty`] carries the offending input
/// so that admission denials can quote exactly what the user wrote.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    /// The reference is the empty string.
    #[error("invalid image reference \"\": reference is empty")]
    Empty,
    /// The normalised repository path is longer than [`MAX_REPOSITORY_LEN`].
    #[error("invalid image reference {0:?}: repository name must not be more than 255 characters")]
    TooLong(String),
    /// The reference does not have the overall `[registry/]repository[:tag][@digest]` shape
    /// (missing repository, whitespace or control characters).
    #[error(
        "invalid image reference {0:?}: invalid reference format, expected [registry[:port]/]repository[:tag][@algorithm:hex]"
    )]
    InvalidFormat(String),
    /// The reference is a bare 64-character hex string, which Docker reserves for image IDs.
    #[error(
        "invalid image reference {0:?}: cannot specify 64-byte hexadecimal strings, use repository@sha256:<hex>"
    )]
    HexIdentifier(String),
    /// The registry is not a host name, IPv4 address or bracketed IPv6 address with an optional numeric port.
    #[error(
        "invalid image reference {0:?}: registry must be a host name, IPv4 address or [IPv6] address with an optional numeric port"
    )]
    InvalidRegistry(String),
    /// The repository path contains upper-case letters.
    #[error("invalid image reference {0:?}: repository name must be lowercase")]
    UppercaseRepository(String),
    /// A repository path component is empty or uses characters or separators that are not allowed.
    #[error(
        "invalid image reference {0:?}: repository path components must be lowercase letters and digits separated by '.', '_', '__' or dashes, joined by single '/'"
    )]
    InvalidRepository(String),
    /// The tag is empty, too long or contains characters that are not allowed.
    #[error(
        "invalid image reference {0:?}: tag must be 1 to 128 characters of [A-Za-z0-9_.-] and must not start with '.' or '-'"
    )]
    InvalidTag(String),
    /// The digest is malformed or has the wrong length for its algorithm.
    #[error(
        "invalid image reference {0:?}: digest must be sha256:<64 lowercase hex> or sha512:<128 lowercase hex>"
    )]
    InvalidDigest(String),
    /// The digest is well formed but uses an algorithm other than sha256 or sha512.
    #[error(
        "invalid image reference {0:?}: unsupported digest algorithm, only sha256 and sha512 are accepted"
    )]
    UnsupportedDigest(String),
}

/// A fully normalised image reference.
///
/// Built only by [`ImageRef::parse`], so the fields always hold a valid,
/// canonical reference unless a caller mutates them afterwards.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageRef {
    /// Registry host with optional port, e.g. `docker.io`, `ghcr.io`, `localhost:5000`, `[::1]:5000`.
    pub registry: String,
    /// Repository path within the registry, e.g. `library/nginx`, `acme/api`.
    pub repository: String,
    /// Tag; `latest` when neither tag nor digest was given, kept alongside a digest when both were.
    pub tag: Option<String>,
    /// Digest as `algorithm:hex`, e.g. `sha256:<64 lowercase hex>`.
    pub digest: Option<String>,
}

impl ImageRef {
    /// Parses and normalises a reference exactly as `docker pull` / containerd would.
    pub fn parse(s: &str) -> Result<ImageRef, ReferenceError> {
        if s.is_empty() {
            return Err(ReferenceError::Empty);
        }
        let owned = || s.to_owned();
        // Checked on the raw input: distribution refuses these before splitting
        // because they are ambiguous with image IDs.
        if is_hex_identifier(s) {
            return Err(ReferenceError::HexIdentifier(owned()));
        }
        if s.starts_with([':', '@', '/']) || has_space_or_control(s) {
            return Err(ReferenceError::InvalidFormat(owned()));
        }

        // Neither names nor tags may contain '@', so the first one starts the digest.
        let (name_and_tag, digest) = match split_at_byte(s, b'@') {
            Some((name, digest)) => (name, Some(digest)),
            None => (s, None),
        };
        let (registry, remainder) = split_docker_domain(name_and_tag);
        // The registry is already split off and paths cannot contain ':', so
        // the first ':' left starts the tag.
        let (path, tag) = match split_at_byte(&remainder, b':') {
            Some((path, tag)) => (path, Some(tag)),
            None => (&*remainder, None),
        };

        // Same order as distribution: upper case is the most common mistake and
        // deserves its own message before any generic grammar failure.
        if has_uppercase(path) {
            return Err(ReferenceError::UppercaseRepository(owned()));
        }
        if registry != DEFAULT_REGISTRY && !is_valid_registry(registry) {
            return Err(ReferenceError::InvalidRegistry(owned()));
        }
        if !path.as_bytes().split(|&b| b == b'/').all(is_path_component) {
            return Err(ReferenceError::InvalidRepository(owned()));
        }
        if path.len() > MAX_REPOSITORY_LEN {
            return Err(ReferenceError::TooLong(owned()));
        }
        if let Some(tag) = tag {
            if !is_valid_tag(tag) {
                return Err(ReferenceError::InvalidTag(owned()));
            }
        }
        if let Some(digest) = digest {
            validate_digest(digest).map_err(|make| make(owned()))?;
        }

        let tag = match (tag, digest) {
            (None, None) => Some(DEFAULT_TAG.to_owned()),
            (tag, _) => tag.map(str::to_owned),
        };
        Ok(ImageRef {
            registry: registry.to_owned(),
            repository: path.to_owned(),
            tag,
            digest: digest.map(str::to_owned),
        })
    }

    /// Fully qualified form: `docker.io/library/nginx:1.27`,
    /// `ghcr.io/acme/api@sha256:…`, or `reg/repo:tag@sha256:…` when both are set.
    pub fn canonical(&self) -> String {
        let mut out = self.name();
        if let Some(tag) = &self.tag {
            out.push(':');
            out.push_str(tag);
        }
        if let Some(digest) = &self.digest {
            out.push('@');
            out.push_str(digest);
        }
        out
    }

    /// `registry/repository` without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// What identifies the image content for lookups: `reg/repo@digest` when a
    /// digest is present (the digest wins over a tag), else `reg/repo:tag`.
    pub fn lookup_key(&self) -> String {
        let (separator, version) = match (&self.digest, &self.tag) {
            (Some(digest), _) => ('@', digest.as_str()),
            (None, Some(tag)) => (':', tag.as_str()),
            // Only reachable if a caller cleared both fields by hand; the
            // runtime would pull `latest` in that case, so key it the same way.
            (None, None) => (':', DEFAULT_TAG),
        };
        // Built by hand rather than with format!: this runs for every image of every pod.
        let mut key =
            String::with_capacity(self.registry.len() + self.repository.len() + version.len() + 2);
        key.push_str(&self.registry);
        key.push('/');
        key.push_str(&self.repository);
        key.push(separator);
        key.push_str(version);
        key
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.canonical())
    }
}

impl FromStr for ImageRef {
    type Err = ReferenceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ImageRef::parse(s)
    }
}

/// Splits `name[:tag]` into registry and `path[:tag]` using Docker's heuristic
/// for whether the first component is a host.
fn split_docker_domain(name: &str) -> (&str, Cow<'_, str>) {
    let (registry, remote) = match split_at_byte(name, b'/') {
        // A single component can never be a host: "localhost:5000" alone is
        // the image "localhost" with tag "5000", as in Docker.
        None => (DEFAULT_REGISTRY, name),
        Some((first, rest)) => {
            if first == LOCALHOST {
                (first, rest)
            } else if first == LEGACY_DEFAULT_REGISTRY {
                (DEFAULT_REGISTRY, rest)
            } else if first.bytes().any(|b| b == b'.' || b == b':') || has_uppercase(first) {
                // Repository paths are lowercase, so an upper-case first
                // component can only be meant as a host.
                (first, rest)
            } else {
                (DEFAULT_REGISTRY, name)
            }
        }
    };
    let remote = if registry == DEFAULT_REGISTRY && !remote.bytes().any(|b| b == b'/') {
        Cow::Owned([OFFICIAL_REPO_PREFIX, remote].concat())
    } else {
        Cow::Borrowed(remote)
    };
    (registry, remote)
}

/// `str::split_once` around an ASCII byte. References are short, shorter than the set-up of the
/// `char` searcher, and splitting them was a third of parsing one.
fn split_at_byte(s: &str, byte: u8) -> Option<(&str, &str)> {
    let at = s.bytes().position(|b| b == byte)?;
    // An ASCII byte is a char boundary on both sides.
    Some((s.get(..at)?, s.get(at + 1..)?))
}

/// Whitespace or a control character anywhere; byte by byte when the reference is ASCII, as
/// nearly all are.
fn has_space_or_control(s: &str) -> bool {
    if s.is_ascii() {
        s.bytes().any(|b| b <= b' ' || b == 0x7f)
    } else {
        s.chars().any(|c| c.is_whitespace() || c.is_control())
    }
}

fn has_uppercase(s: &str) -> bool {
    if s.is_ascii() {
        s.bytes().any(|b| b.is_ascii_uppercase())
    } else {
        s.chars().any(char::is_uppercase)
    }
}

fn is_hex_identifier(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(is_lower_hex)
}

fn is_lower_hex(b: u8) -> bool {
    b.is_ascii_digit() || (b'a'..=b'f').contains(&b)
}

/// `host[:port]` where host is a DNS-like name, IPv4 address or `[IPv6]`
/// (no zone identifiers), and port is any run of digits, as distribution allows.
fn is_valid_registry(registry: &str) -> bool {
    let (host_ok, port) = if let Some(rest) = registry.strip_prefix('[') {
        match rest.split_once(']') {
            Some((addr, after)) => (is_ipv6_literal(addr), after),
            None => return false,
        }
    } else {
        let end = registry
            .bytes()
            .position(|b| b == b':')
            .unwrap_or(registry.len());
        let (host, port) = registry.split_at(end);
        (is_domain_name(host), port)
    };
    let port_ok = port.is_empty()
        || port
            .strip_prefix(':')
            .is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    host_ok && port_ok
}

/// Deliberately loose, like distribution: only the character set is checked,
/// which excludes zone identifiers and IPv4-mapped forms.
fn is_ipv6_literal(addr: &str) -> bool {
    !addr.is_empty() && addr.bytes().all(|b| b.is_ascii_hexdigit() || b == b':')
}

fn is_domain_name(host: &str) -> bool {
    host.as_bytes()
        .split(|&c| c == b'.')
        .all(|b| match (b.first(), b.last()) {
            (Some(first), Some(last)) => {
                first.is_ascii_alphanumeric()
                    && last.is_ascii_alphanumeric()
                    && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
            }
            _ => false,
        })
}

/// `[a-z0-9]+` runs joined by exactly one of `.`, `_`, `__` or a run of `-`.
fn is_path_component(b: &[u8]) -> bool {
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    let mut i = 0;
    loop {
        let start = i;
        while i < b.len() && alnum(b[i]) {
            i += 1;
        }
        if i == start {
            // Empty component, leading separator, or separator not followed by
            // an alphanumeric run.
            return false;
        }
        if i == b.len() {
            return true;
        }
        match b[i] {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if b.get(i) == Some(&b'_') {
                    i += 1;
                }
            }
            b'-' => {
                while b.get(i) == Some(&b'-') {
                    i += 1;
                }
            }
            _ => return false,
        }
    }
}

/// `[\w][\w.-]{0,127}`.
fn is_valid_tag(tag: &str) -> bool {
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let b = tag.as_bytes();
    match b.split_first() {
        Some((first, rest)) => {
            b.len() <= MAX_TAG_LEN
                && word(*first)
                && rest.iter().all(|c| word(*c) || *c == b'.' || *c == b'-')
        }
        None => false,
    }
}

type ErrorCtor = fn(String) -> ReferenceError;

/// Checks the digest grammar first so that garbage is reported as malformed
/// rather than as an unsupported algorithm.
fn validate_digest(digest: &str) -> Result<(), ErrorCtor> {
    let Some((algorithm, encoded)) = digest.split_once(':') else {
        return Err(ReferenceError::InvalidDigest);
    };
    let grammar_ok = is_digest_algorithm(algorithm)
        && encoded.len() >= MIN_DIGEST_HEX_LEN
        && encoded.bytes().all(|b| b.is_ascii_hexdigit());
    if !grammar_ok {
        return Err(ReferenceError::InvalidDigest);
    }
    let expected_len = match algorithm {
        "sha256" => 64,
        "sha512" => 128,
        _ => return Err(ReferenceError::UnsupportedDigest),
    };
    // Registries address content by lowercase hex only; an upper-case digest
    // would never match the stored manifest.
    if encoded.len() == expected_len && encoded.bytes().all(is_lower_hex) {
        Ok(())
    } else {
        Err(ReferenceError::InvalidDigest)
    }
}

/// `[A-Za-z][A-Za-z0-9]*` components joined by one of `+ . _ -`.
fn is_digest_algorithm(algorithm: &str) -> bool {
    algorithm.split(['+', '.', '_', '-']).all(|part| {
        let b = part.as_bytes();
        b.first().is_some_and(u8::is_ascii_alphabetic) && b.iter().all(u8::is_ascii_alphanumeric)
    })
}

#[cfg(test)]
#[path = "reference_tests.rs"]
mod tests;
