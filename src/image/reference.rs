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
mod tests {
    use super::*;

    macro_rules! ff64 {
        () => {
            "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"
        };
    }
    macro_rules! ff128 {
        () => {
            "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"
        };
    }
    macro_rules! be17 {
        () => {
            "be178c0543eb17f5f3043021c9e5fcf30285e557a4fc309cce97ff9ca6182912"
        };
    }
    macro_rules! dbcc {
        () => {
            "dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c"
        };
    }
    macro_rules! busy {
        () => {
            "86e0e091d0da6bde2456dbb48306f3956bbeb2eae1b5b9a43045843f69fe4aaa"
        };
    }

    /// (input, registry, repository, tag, digest, canonical)
    type Valid = (
        &'static str,
        &'static str,
        &'static str,
        Option<&'static str>,
        Option<&'static str>,
        &'static str,
    );

    #[rustfmt::skip]
    const VALID: &[Valid] = &[
        // reference_test.go TestReferenceParse, with ParseNormalizedNamed semantics.
        ("test_com", "docker.io", "library/test_com", Some("latest"), None, "docker.io/library/test_com:latest"),
        ("test.com:tag", "docker.io", "library/test.com", Some("tag"), None, "docker.io/library/test.com:tag"),
        ("test.com:5000", "docker.io", "library/test.com", Some("5000"), None, "docker.io/library/test.com:5000"),
        ("test.com/repo:tag", "test.com", "repo", Some("tag"), None, "test.com/repo:tag"),
        ("test:5000/repo", "test:5000", "repo", Some("latest"), None, "test:5000/repo:latest"),
        ("test:5000/repo:tag", "test:5000", "repo", Some("tag"), None, "test:5000/repo:tag"),
        (concat!("test:5000/repo@sha256:", ff64!()), "test:5000", "repo", None, Some(concat!("sha256:", ff64!())), concat!("test:5000/repo@sha256:", ff64!())),
        (concat!("test:5000/repo:tag@sha256:", ff64!()), "test:5000", "repo", Some("tag"), Some(concat!("sha256:", ff64!())), concat!("test:5000/repo:tag@sha256:", ff64!())),
        ("lowercase:Uppercase", "docker.io", "library/lowercase", Some("Uppercase"), None, "docker.io/library/lowercase:Uppercase"),
        ("sub-dom1.foo.com/bar/baz/quux", "sub-dom1.foo.com", "bar/baz/quux", Some("latest"), None, "sub-dom1.foo.com/bar/baz/quux:latest"),
        ("sub-dom1.foo.com/bar/baz/quux:some-long-tag", "sub-dom1.foo.com", "bar/baz/quux", Some("some-long-tag"), None, "sub-dom1.foo.com/bar/baz/quux:some-long-tag"),
        ("b.gcr.io/test.example.com/my-app:test.example.com", "b.gcr.io", "test.example.com/my-app", Some("test.example.com"), None, "b.gcr.io/test.example.com/my-app:test.example.com"),
        ("xn--n3h.com/myimage:xn--n3h.com", "xn--n3h.com", "myimage", Some("xn--n3h.com"), None, "xn--n3h.com/myimage:xn--n3h.com"),
        (concat!("xn--7o8h.com/myimage:xn--7o8h.com@sha512:", ff128!()), "xn--7o8h.com", "myimage", Some("xn--7o8h.com"), Some(concat!("sha512:", ff128!())), concat!("xn--7o8h.com/myimage:xn--7o8h.com@sha512:", ff128!())),
        ("foo_bar.com:8080", "docker.io", "library/foo_bar.com", Some("8080"), None, "docker.io/library/foo_bar.com:8080"),
        ("foo/foo_bar.com:8080", "docker.io", "foo/foo_bar.com", Some("8080"), None, "docker.io/foo/foo_bar.com:8080"),
        ("192.168.1.1", "docker.io", "library/192.168.1.1", Some("latest"), None, "docker.io/library/192.168.1.1:latest"),
        ("192.168.1.1:tag", "docker.io", "library/192.168.1.1", Some("tag"), None, "docker.io/library/192.168.1.1:tag"),
        ("192.168.1.1:5000", "docker.io", "library/192.168.1.1", Some("5000"), None, "docker.io/library/192.168.1.1:5000"),
        ("192.168.1.1/repo", "192.168.1.1", "repo", Some("latest"), None, "192.168.1.1/repo:latest"),
        ("192.168.1.1:5000/repo", "192.168.1.1:5000", "repo", Some("latest"), None, "192.168.1.1:5000/repo:latest"),
        ("192.168.1.1:5000/repo:5050", "192.168.1.1:5000", "repo", Some("5050"), None, "192.168.1.1:5000/repo:5050"),
        ("[2001:db8::1]/repo", "[2001:db8::1]", "repo", Some("latest"), None, "[2001:db8::1]/repo:latest"),
        ("[2001:db8:1:2:3:4:5:6]/repo:tag", "[2001:db8:1:2:3:4:5:6]", "repo", Some("tag"), None, "[2001:db8:1:2:3:4:5:6]/repo:tag"),
        ("[2001:db8::1]:5000/repo", "[2001:db8::1]:5000", "repo", Some("latest"), None, "[2001:db8::1]:5000/repo:latest"),
        ("[2001:db8::1]:5000/repo:tag", "[2001:db8::1]:5000", "repo", Some("tag"), None, "[2001:db8::1]:5000/repo:tag"),
        (concat!("[2001:db8::1]:5000/repo@sha256:", ff64!()), "[2001:db8::1]:5000", "repo", None, Some(concat!("sha256:", ff64!())), concat!("[2001:db8::1]:5000/repo@sha256:", ff64!())),
        (concat!("[2001:db8::1]:5000/repo:tag@sha256:", ff64!()), "[2001:db8::1]:5000", "repo", Some("tag"), Some(concat!("sha256:", ff64!())), concat!("[2001:db8::1]:5000/repo:tag@sha256:", ff64!())),
        ("[2001:db8::]:5000/repo", "[2001:db8::]:5000", "repo", Some("latest"), None, "[2001:db8::]:5000/repo:latest"),
        ("[::1]:5000/repo", "[::1]:5000", "repo", Some("latest"), None, "[::1]:5000/repo:latest"),
        // normalize_test.go TestValidateReferenceName (valid).
        ("docker/docker", "docker.io", "docker/docker", Some("latest"), None, "docker.io/docker/docker:latest"),
        ("library/debian", "docker.io", "library/debian", Some("latest"), None, "docker.io/library/debian:latest"),
        ("debian", "docker.io", "library/debian", Some("latest"), None, "docker.io/library/debian:latest"),
        ("docker.io/docker/docker", "docker.io", "docker/docker", Some("latest"), None, "docker.io/docker/docker:latest"),
        ("docker.io/library/debian", "docker.io", "library/debian", Some("latest"), None, "docker.io/library/debian:latest"),
        ("docker.io/debian", "docker.io", "library/debian", Some("latest"), None, "docker.io/library/debian:latest"),
        ("index.docker.io/docker/docker", "docker.io", "docker/docker", Some("latest"), None, "docker.io/docker/docker:latest"),
        ("index.docker.io/library/debian", "docker.io", "library/debian", Some("latest"), None, "docker.io/library/debian:latest"),
        ("index.docker.io/debian", "docker.io", "library/debian", Some("latest"), None, "docker.io/library/debian:latest"),
        ("127.0.0.1:5000/docker/docker", "127.0.0.1:5000", "docker/docker", Some("latest"), None, "127.0.0.1:5000/docker/docker:latest"),
        ("127.0.0.1:5000/library/debian", "127.0.0.1:5000", "library/debian", Some("latest"), None, "127.0.0.1:5000/library/debian:latest"),
        ("127.0.0.1:5000/debian", "127.0.0.1:5000", "debian", Some("latest"), None, "127.0.0.1:5000/debian:latest"),
        ("192.168.0.1", "docker.io", "library/192.168.0.1", Some("latest"), None, "docker.io/library/192.168.0.1:latest"),
        ("192.168.0.1:80", "docker.io", "library/192.168.0.1", Some("80"), None, "docker.io/library/192.168.0.1:80"),
        ("192.168.0.1:8/debian", "192.168.0.1:8", "debian", Some("latest"), None, "192.168.0.1:8/debian:latest"),
        ("192.168.0.2:25000/debian", "192.168.0.2:25000", "debian", Some("latest"), None, "192.168.0.2:25000/debian:latest"),
        ("thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev", "docker.io", "library/thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev", Some("latest"), None, "docker.io/library/thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev:latest"),
        ("[fc00::1]:5000/docker", "[fc00::1]:5000", "docker", Some("latest"), None, "[fc00::1]:5000/docker:latest"),
        ("[fc00::1]:5000/docker/docker", "[fc00::1]:5000", "docker/docker", Some("latest"), None, "[fc00::1]:5000/docker/docker:latest"),
        ("[fc00:1:2:3:4:5:6:7]:5000/library/debian", "[fc00:1:2:3:4:5:6:7]:5000", "library/debian", Some("latest"), None, "[fc00:1:2:3:4:5:6:7]:5000/library/debian:latest"),
        ("docker.io/1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a", "docker.io", "library/1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a", Some("latest"), None, "docker.io/library/1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a:latest"),
        ("Docker/docker", "Docker", "docker", Some("latest"), None, "Docker/docker:latest"),
        ("DOCKER/docker", "DOCKER", "docker", Some("latest"), None, "DOCKER/docker:latest"),
        // normalize_test.go TestValidateRemoteName (valid).
        ("docker-rules/docker", "docker.io", "docker-rules/docker", Some("latest"), None, "docker.io/docker-rules/docker:latest"),
        ("docker---rules/docker", "docker.io", "docker---rules/docker", Some("latest"), None, "docker.io/docker---rules/docker:latest"),
        ("doc/docker", "docker.io", "doc/docker", Some("latest"), None, "docker.io/doc/docker:latest"),
        ("d/docker", "docker.io", "d/docker", Some("latest"), None, "docker.io/d/docker:latest"),
        ("jess/t", "docker.io", "jess/t", Some("latest"), None, "docker.io/jess/t:latest"),
        ("dock__er/docker", "docker.io", "dock__er/docker", Some("latest"), None, "docker.io/dock__er/docker:latest"),
        // normalize_test.go TestParseRepositoryInfo.
        ("fooo/bar", "docker.io", "fooo/bar", Some("latest"), None, "docker.io/fooo/bar:latest"),
        ("index.docker.io/fooo/bar", "docker.io", "fooo/bar", Some("latest"), None, "docker.io/fooo/bar:latest"),
        ("ubuntu", "docker.io", "library/ubuntu", Some("latest"), None, "docker.io/library/ubuntu:latest"),
        ("nonlibrary/ubuntu", "docker.io", "nonlibrary/ubuntu", Some("latest"), None, "docker.io/nonlibrary/ubuntu:latest"),
        ("other/library", "docker.io", "other/library", Some("latest"), None, "docker.io/other/library:latest"),
        ("127.0.0.1:8000/private/moonbase", "127.0.0.1:8000", "private/moonbase", Some("latest"), None, "127.0.0.1:8000/private/moonbase:latest"),
        ("127.0.0.1:8000/privatebase", "127.0.0.1:8000", "privatebase", Some("latest"), None, "127.0.0.1:8000/privatebase:latest"),
        ("example.com/private/moonbase", "example.com", "private/moonbase", Some("latest"), None, "example.com/private/moonbase:latest"),
        ("example.com/privatebase", "example.com", "privatebase", Some("latest"), None, "example.com/privatebase:latest"),
        ("example.com:8000/private/moonbase", "example.com:8000", "private/moonbase", Some("latest"), None, "example.com:8000/private/moonbase:latest"),
        ("example.com:8000/privatebasee", "example.com:8000", "privatebasee", Some("latest"), None, "example.com:8000/privatebasee:latest"),
        ("ubuntu-12.04-base", "docker.io", "library/ubuntu-12.04-base", Some("latest"), None, "docker.io/library/ubuntu-12.04-base:latest"),
        ("index.docker.io/library/ubuntu-12.04-base", "docker.io", "library/ubuntu-12.04-base", Some("latest"), None, "docker.io/library/ubuntu-12.04-base:latest"),
        ("docker.io/foo", "docker.io", "library/foo", Some("latest"), None, "docker.io/library/foo:latest"),
        ("library/foo/bar", "docker.io", "library/foo/bar", Some("latest"), None, "docker.io/library/foo/bar:latest"),
        ("store/foo/bar", "docker.io", "store/foo/bar", Some("latest"), None, "docker.io/store/foo/bar:latest"),
        ("Foo/bar", "Foo", "bar", Some("latest"), None, "Foo/bar:latest"),
        ("FOO/bar", "FOO", "bar", Some("latest"), None, "FOO/bar:latest"),
        // normalize_test.go TestParseReferenceWithTagAndDigest.
        (concat!("busybox:latest@sha256:", busy!()), "docker.io", "library/busybox", Some("latest"), Some(concat!("sha256:", busy!())), concat!("docker.io/library/busybox:latest@sha256:", busy!())),
        // normalize_test.go TestParseAnyReference (named forms).
        ("redis", "docker.io", "library/redis", Some("latest"), None, "docker.io/library/redis:latest"),
        ("redis:latest", "docker.io", "library/redis", Some("latest"), None, "docker.io/library/redis:latest"),
        (concat!("redis@sha256:", dbcc!()), "docker.io", "library/redis", None, Some(concat!("sha256:", dbcc!())), concat!("docker.io/library/redis@sha256:", dbcc!())),
        (concat!("docker.io/library/redis@sha256:", dbcc!()), "docker.io", "library/redis", None, Some(concat!("sha256:", dbcc!())), concat!("docker.io/library/redis@sha256:", dbcc!())),
        ("dmcgowan/myapp", "docker.io", "dmcgowan/myapp", Some("latest"), None, "docker.io/dmcgowan/myapp:latest"),
        ("docker.io/mcgowan/myapp:latest", "docker.io", "mcgowan/myapp", Some("latest"), None, "docker.io/mcgowan/myapp:latest"),
        (concat!("dmcgowan/myapp@sha256:", dbcc!()), "docker.io", "dmcgowan/myapp", None, Some(concat!("sha256:", dbcc!())), concat!("docker.io/dmcgowan/myapp@sha256:", dbcc!())),
        ("dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9", "docker.io", "library/dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9", Some("latest"), None, "docker.io/library/dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9:latest"),
        ("dbcc1", "docker.io", "library/dbcc1", Some("latest"), None, "docker.io/library/dbcc1:latest"),
        // normalize_test.go TestNormalizedSplitHostname.
        ("test.com/foo", "test.com", "foo", Some("latest"), None, "test.com/foo:latest"),
        ("test_com/foo", "docker.io", "test_com/foo", Some("latest"), None, "docker.io/test_com/foo:latest"),
        ("docker/migrator", "docker.io", "docker/migrator", Some("latest"), None, "docker.io/docker/migrator:latest"),
        ("test.com:8080/foo", "test.com:8080", "foo", Some("latest"), None, "test.com:8080/foo:latest"),
        ("test-com:8080/foo", "test-com:8080", "foo", Some("latest"), None, "test-com:8080/foo:latest"),
        ("xn--n3h.com:18080/foo", "xn--n3h.com:18080", "foo", Some("latest"), None, "xn--n3h.com:18080/foo:latest"),
        ("docker.io/library/foo/bar", "docker.io", "library/foo/bar", Some("latest"), None, "docker.io/library/foo/bar:latest"),
        // regexp_test.go TestFullNameRegexp / TestReferenceRegexp (matching forms).
        ("localhost/foo", "localhost", "foo", Some("latest"), None, "localhost/foo:latest"),
        ("localhost:8080/bar", "localhost:8080", "bar", Some("latest"), None, "localhost:8080/bar:latest"),
        (concat!("localhost:8080@sha256:", be17!()), "docker.io", "library/localhost", Some("8080"), Some(concat!("sha256:", be17!())), concat!("docker.io/library/localhost:8080@sha256:", be17!())),
        (concat!("localhost:8080/name@sha256:", be17!()), "localhost:8080", "name", None, Some(concat!("sha256:", be17!())), concat!("localhost:8080/name@sha256:", be17!())),
        (concat!("localhost@sha256:", be17!()), "docker.io", "library/localhost", None, Some(concat!("sha256:", be17!())), concat!("docker.io/library/localhost@sha256:", be17!())),
        (concat!("registry.com:8080/myapp:tag2@sha256:", be17!()), "registry.com:8080", "myapp", Some("tag2"), Some(concat!("sha256:", be17!())), concat!("registry.com:8080/myapp:tag2@sha256:", be17!())),
        ("aa-a/a", "docker.io", "aa-a/a", Some("latest"), None, "docker.io/aa-a/a:latest"),
        ("a/a/a/a", "docker.io", "a/a/a/a", Some("latest"), None, "docker.io/a/a/a/a:latest"),
        ("example.com/xn--7o8h.com/myimage", "example.com", "xn--7o8h.com/myimage", Some("latest"), None, "example.com/xn--7o8h.com/myimage:latest"),
        ("example.com/some_separator__underscore/myimage", "example.com", "some_separator__underscore/myimage", Some("latest"), None, "example.com/some_separator__underscore/myimage:latest"),
        ("do__cker/docker", "docker.io", "do__cker/docker", Some("latest"), None, "docker.io/do__cker/docker:latest"),
        ("registry.io/foo/project--id.module--name.ver---sion--name", "registry.io", "foo/project--id.module--name.ver---sion--name", Some("latest"), None, "registry.io/foo/project--id.module--name.ver---sion--name:latest"),
        ("Asdf.com/foo/bar", "Asdf.com", "foo/bar", Some("latest"), None, "Asdf.com/foo/bar:latest"),
        // Shapes seen in Kubernetes pod specs.
        ("nginx:1.27", "docker.io", "library/nginx", Some("1.27"), None, "docker.io/library/nginx:1.27"),
        ("ghcr.io/acme/api:v1.2.3", "ghcr.io", "acme/api", Some("v1.2.3"), None, "ghcr.io/acme/api:v1.2.3"),
        (concat!("ghcr.io/acme/api@sha256:", be17!()), "ghcr.io", "acme/api", None, Some(concat!("sha256:", be17!())), concat!("ghcr.io/acme/api@sha256:", be17!())),
        ("localhost:5000/foo:dev", "localhost:5000", "foo", Some("dev"), None, "localhost:5000/foo:dev"),
        ("[::1]:5000/foo", "[::1]:5000", "foo", Some("latest"), None, "[::1]:5000/foo:latest"),
        ("[2001:db8::1]/foo", "[2001:db8::1]", "foo", Some("latest"), None, "[2001:db8::1]/foo:latest"),
        ("registry.k8s.io/pause:3.9", "registry.k8s.io", "pause", Some("3.9"), None, "registry.k8s.io/pause:3.9"),
        ("quay.io/prometheus/node-exporter:v1.8.2", "quay.io", "prometheus/node-exporter", Some("v1.8.2"), None, "quay.io/prometheus/node-exporter:v1.8.2"),
        ("nginx:_private", "docker.io", "library/nginx", Some("_private"), None, "docker.io/library/nginx:_private"),
    ];

    use ReferenceError as E;
    type Ctor = fn(String) -> ReferenceError;

    #[rustfmt::skip]
    const INVALID: &[(&str, Ctor)] = &[
        // reference_test.go TestReferenceParse (errors).
        (":justtag", E::InvalidFormat),
        (concat!("@sha256:", ff64!()), E::InvalidFormat),
        ("repo@sha256:ffffffffffffffffffffffffffffffffff", E::InvalidDigest),
        (concat!("validname@invaliddigest:", ff64!()), E::UnsupportedDigest),
        ("Uppercase:tag", E::UppercaseRepository),
        ("test:5000/Uppercase/lowercase:tag", E::UppercaseRepository),
        ("aa/asdf$$^/aa", E::InvalidRepository),
        ("[2001:db8::1]", E::InvalidRepository),
        ("[2001:db8::1]:5000", E::InvalidRepository),
        ("[2001:db8::1]:tag", E::InvalidRepository),
        ("[fe80::1%eth0]:5000/repo", E::InvalidRegistry),
        ("[fe80::1%@invalidzone]:5000/repo", E::InvalidRepository),
        // normalize_test.go TestValidateReferenceName (invalid).
        ("https://github.com/docker/docker", E::InvalidRegistry),
        ("docker/Docker", E::UppercaseRepository),
        ("-docker", E::InvalidRepository),
        ("-docker/docker", E::InvalidRepository),
        ("-docker.io/docker/docker", E::InvalidRegistry),
        ("docker///docker", E::InvalidRepository),
        ("docker.io/docker/Docker", E::UppercaseRepository),
        ("docker.io/docker///docker", E::InvalidRepository),
        ("[fc00::1]", E::InvalidRepository),
        ("[fc00::1]:5000", E::InvalidRepository),
        ("fc00::1:5000/debian", E::InvalidRegistry),
        ("[fe80::1%eth0]:5000/debian", E::InvalidRegistry),
        ("[2001:db8:3:4::192.0.2.33]:5000/debian", E::InvalidRegistry),
        ("1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a", E::HexIdentifier),
        // normalize_test.go TestValidateRemoteName (invalid). A '.' in the first
        // component makes Docker read it as a registry, hence InvalidRegistry.
        ("docker-/docker", E::InvalidRepository),
        ("-docker-/docker", E::InvalidRepository),
        ("____/____", E::InvalidRepository),
        ("_docker/_docker", E::InvalidRepository),
        ("dock..er/docker", E::InvalidRegistry),
        ("dock_.er/docker", E::InvalidRegistry),
        ("dock-.er/docker", E::InvalidRegistry),
        ("docker/", E::InvalidRepository),
        ("this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255_this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255_this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255_this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255/docker", E::TooLong),
        // normalize_test.go TestInvalidReferenceComponents.
        ("-foo", E::InvalidRepository),
        ("busybox:-foo", E::InvalidTag),
        ("busybox@foo", E::InvalidDigest),
        // regexp_test.go TestFullNameRegexp / TestReferenceRegexp (non-matching forms).
        ("a/a/a/a/", E::InvalidRepository),
        ("a//a/a", E::InvalidRepository),
        ("foo.com/", E::InvalidRepository),
        ("foo.com:http/bar", E::InvalidRegistry),
        ("a^a", E::InvalidRepository),
        ("asdf$$^/aa", E::InvalidRepository),
        ("a-/a/a/a", E::InvalidRepository),
        ("foo.com/a-/a/a", E::InvalidRepository),
        ("foo/bar-", E::InvalidRepository),
        ("foo/-bar", E::InvalidRepository),
        ("_foo/bar", E::InvalidRepository),
        ("foo_bar.com:8080/app", E::InvalidRegistry),
        ("docker_/docker_", E::InvalidRepository),
        ("example.com/__underscore/myimage", E::InvalidRepository),
        ("example.com/..dots/myimage", E::InvalidRepository),
        ("example.com/.dots/myimage", E::InvalidRepository),
        ("example.com/nodouble..dots/myimage", E::InvalidRepository),
        ("docker./docker", E::InvalidRegistry),
        (".docker/docker", E::InvalidRegistry),
        ("do..cker/docker", E::InvalidRegistry),
        ("do__cker:8080/docker", E::InvalidRegistry),
        ("Foo/FarB", E::UppercaseRepository),
        ("registry.com:8080/myapp@sha256:badbadbadbad", E::InvalidDigest),
        ("registry.com:8080/myapp:invalid~tag", E::InvalidTag),
        ("bad_hostname.com:8080/myapp:tag", E::InvalidRegistry),
        (concat!("localhost:http/name@sha256:", be17!()), E::InvalidRegistry),
        ("registry.com:8080/myapp@bad", E::InvalidDigest),
        ("registry.com:8080/myapp@2bad", E::InvalidDigest),
        // Required by the admission webhook on top of distribution's tables.
        ("Nginx", E::UppercaseRepository),
        (" nginx", E::InvalidFormat),
        ("nginx ", E::InvalidFormat),
        ("ngi nx:1", E::InvalidFormat),
        ("nginx:1.27\n", E::InvalidFormat),
        ("nginx\t", E::InvalidFormat),
        ("/nginx", E::InvalidFormat),
        ("nginx:", E::InvalidTag),
        ("nginx@", E::InvalidDigest),
        ("nginx:1.27@", E::InvalidDigest),
        ("a//b", E::InvalidRepository),
        (":tag", E::InvalidFormat),
        ("nginx:.hidden", E::InvalidTag),
        ("nginx:a:b", E::InvalidTag),
        ("nginx:tag/x", E::InvalidRegistry),
        ("localhost:5000/", E::InvalidRepository),
        ("nginx@sha256", E::InvalidDigest),
        ("nginx@sha256:", E::InvalidDigest),
        (concat!("nginx@SHA256:", ff64!()), E::UnsupportedDigest),
        (concat!("nginx@md5:", ff64!()), E::UnsupportedDigest),
        ("nginx@sha256:FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF", E::InvalidDigest),
        (concat!("nginx@sha256:", ff64!(), "0"), E::InvalidDigest),
        (concat!("nginx@sha512:", ff64!()), E::InvalidDigest),
        (concat!("nginx@sha256:", ff64!(), "@x"), E::InvalidDigest),
        ("nginx@sha256:zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz", E::InvalidDigest),
        // No '.', ':' or upper case, so "[]" is a path component, not a host.
        ("[]/foo", E::InvalidRepository),
        ("[::1/foo", E::InvalidRegistry),
        ("[::1]5000/foo", E::InvalidRegistry),
        ("[::1]::5000/foo", E::InvalidRegistry),
        ("example.com:/foo", E::InvalidRegistry),
        ("ngînx", E::InvalidRepository),
    ];

    #[test]
    fn valid_references_normalise_like_distribution() {
        for &(input, registry, repository, tag, digest, canonical) in VALID {
            let parsed = ImageRef::parse(input)
                .unwrap_or_else(|e| panic!("{input:?} should parse, got {e}"));
            assert_eq!(parsed.registry, registry, "registry of {input:?}");
            assert_eq!(parsed.repository, repository, "repository of {input:?}");
            assert_eq!(parsed.tag.as_deref(), tag, "tag of {input:?}");
            assert_eq!(parsed.digest.as_deref(), digest, "digest of {input:?}");
            assert_eq!(parsed.canonical(), canonical, "canonical of {input:?}");
            assert_eq!(parsed.to_string(), canonical, "Display of {input:?}");
        }
    }

    #[test]
    fn canonical_form_is_a_fixed_point() {
        for &(input, ..) in VALID {
            let Ok(first) = ImageRef::parse(input) else {
                panic!("{input:?} should parse");
            };
            let again = ImageRef::parse(&first.canonical());
            assert_eq!(
                again.as_ref(),
                Ok(&first),
                "re-parsing canonical of {input:?}"
            );
        }
    }

    #[test]
    fn invalid_references_are_rejected_with_the_right_error() {
        let mismatches: Vec<String> = INVALID
            .iter()
            .filter_map(|&(input, ctor)| {
                let got = ImageRef::parse(input);
                let want = Err(ctor(input.to_owned()));
                (got != want).then(|| format!("{input:?}: got {got:?}, want {want:?}"))
            })
            .collect();
        assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
        assert_eq!(ImageRef::parse(""), Err(ReferenceError::Empty));
    }

    #[test]
    fn table_sizes_cover_the_ported_suites() {
        assert!(VALID.len() + INVALID.len() >= 60);
    }

    #[test]
    fn repository_length_limit_matches_distribution() {
        // reference_test.go: 128 "a/" plus "a" is too long.
        let too_long = format!("{}a:tag", "a/".repeat(128));
        assert_eq!(
            ImageRef::parse(&too_long),
            Err(ReferenceError::TooLong(too_long.clone()))
        );

        // Exactly 255 characters of path is still fine; the tag does not count.
        let at_limit = format!("{}a:tag-puts-this-over-max", "a/".repeat(127));
        let parsed = ImageRef::parse(&at_limit);
        let Ok(parsed) = parsed else {
            panic!("{at_limit:?} should parse: {parsed:?}");
        };
        assert_eq!(parsed.registry, "docker.io");
        assert_eq!(parsed.repository.len(), 255);
        assert_eq!(parsed.tag.as_deref(), Some("tag-puts-this-over-max"));

        // The "library/" prefix counts, as in distribution.
        let single = "a".repeat(250);
        assert_eq!(
            ImageRef::parse(&single),
            Err(ReferenceError::TooLong(single.clone()))
        );
        assert!(ImageRef::parse(&"a".repeat(247)).is_ok());
    }

    #[test]
    fn tag_length_limit() {
        let ok = format!("nginx:{}", "t".repeat(128));
        assert!(ImageRef::parse(&ok).is_ok());
        let too_long = format!("nginx:{}", "t".repeat(129));
        assert_eq!(
            ImageRef::parse(&too_long),
            Err(ReferenceError::InvalidTag(too_long.clone()))
        );
    }

    #[test]
    fn registry_grammar_matches_domain_regexp() {
        // regexp_test.go TestDomainRegexp.
        let cases = [
            ("test.com", true),
            ("test.com:10304", true),
            ("test.com:http", false),
            ("localhost", true),
            ("localhost:8080", true),
            ("a", true),
            ("a.b", true),
            ("ab.cd.com", true),
            ("a-b.com", true),
            ("-ab.com", false),
            ("ab-.com", false),
            ("ab.c-om", true),
            ("ab.-com", false),
            ("ab.com-", false),
            ("0101.com", true),
            ("001a.com", true),
            ("b.gbc.io:443", true),
            ("b.gbc.io", true),
            ("xn--n3h.com", true),
            ("Asdf.com", true),
            ("192.168.1.1:75050", true),
            ("192.168.1.1:750050", true),
            ("[fd00:1:2::3]:75050", true),
            ("[fd00:1:2::3]75050", false),
            ("[fd00:1:2::3]::75050", false),
            ("[fd00:1:2::3%eth0]:75050", false),
            ("[fd00123123123]:75050", true),
            ("[2001:0db8:85a3:0000:0000:8a2e:0370:7334]:75050", true),
            ("[2001:0db8:85a3:0000:0000:8a2e:0370:7334]:750505", true),
            ("fd00:1:2::3:75050", false),
            ("", false),
            ("a..b", false),
            ("[]", false),
        ];
        for (input, expected) in cases {
            assert_eq!(is_valid_registry(input), expected, "registry {input:?}");
        }
    }

    #[test]
    fn hex_identifier_rule_matches_identifier_regexp() {
        // regexp_test.go TestIdentifierRegexp.
        assert!(is_hex_identifier(
            "da304e823d8ca2b9d863a3c897baeb852ba21ea9a9f1414736394ae7fcaf9821"
        ));
        assert!(!is_hex_identifier(
            "7EC43B381E5AEFE6E04EFB0B3F0693FF2A4A50652D64AEC573905F2DB5889A1C"
        ));
        assert!(!is_hex_identifier(
            "da304e823d8ca2b9d863a3c897baeb852ba21ea9a9f1414736394ae7fcaf"
        ));
        assert!(!is_hex_identifier(
            "sha256:da304e823d8ca2b9d863a3c897baeb852ba21ea9a9f1414736394ae7fcaf9821"
        ));
        assert!(!is_hex_identifier(
            "da304e823d8ca2b9d863a3c897baeb852ba21ea9a9f1414736394ae7fcaf98218482"
        ));
        // Upper-case 64-hex is not an identifier, but it is not a valid repository either.
        let upper = "7EC43B381E5AEFE6E04EFB0B3F0693FF2A4A50652D64AEC573905F2DB5889A1C";
        assert_eq!(
            ImageRef::parse(upper),
            Err(ReferenceError::UppercaseRepository(upper.to_owned()))
        );
    }

    #[test]
    fn name_and_lookup_key() {
        let Ok(tagged) = ImageRef::parse("nginx:1.27") else {
            panic!("nginx:1.27")
        };
        assert_eq!(tagged.name(), "docker.io/library/nginx");
        assert_eq!(tagged.lookup_key(), "docker.io/library/nginx:1.27");

        let Ok(untagged) = ImageRef::parse("ghcr.io/acme/api") else {
            panic!("ghcr.io/acme/api")
        };
        assert_eq!(untagged.lookup_key(), "ghcr.io/acme/api:latest");

        let both = concat!("ghcr.io/acme/api:v1@sha256:", be17!());
        let Ok(both) = ImageRef::parse(both) else {
            panic!("tag+digest")
        };
        assert_eq!(both.name(), "ghcr.io/acme/api");
        assert_eq!(
            both.lookup_key(),
            concat!("ghcr.io/acme/api@sha256:", be17!())
        );
        assert_eq!(
            both.canonical(),
            concat!("ghcr.io/acme/api:v1@sha256:", be17!())
        );

        let cleared = ImageRef {
            tag: None,
            digest: None,
            ..tagged
        };
        assert_eq!(cleared.lookup_key(), "docker.io/library/nginx:latest");
    }

    #[test]
    fn spellings_of_the_same_image_are_equal() {
        let spellings = [
            "nginx",
            "nginx:latest",
            "library/nginx",
            "docker.io/nginx",
            "docker.io/library/nginx:latest",
            "index.docker.io/nginx",
            "index.docker.io/library/nginx:latest",
        ];
        let parsed: Vec<_> = spellings.iter().map(|s| ImageRef::parse(s)).collect();
        for (s, p) in spellings.iter().zip(&parsed) {
            assert_eq!(p, &parsed[0], "{s:?}");
        }
    }

    #[test]
    fn from_str_matches_parse() {
        assert_eq!("redis".parse::<ImageRef>(), ImageRef::parse("redis"));
        assert_eq!("Redis".parse::<ImageRef>(), ImageRef::parse("Redis"));
    }

    #[test]
    fn error_messages_quote_the_reference_and_say_what_is_wrong() {
        let msg = |s: &str| match ImageRef::parse(s) {
            Err(e) => e.to_string(),
            Ok(r) => panic!("{s:?} unexpectedly parsed as {r}"),
        };
        assert_eq!(
            msg("Nginx"),
            r#"invalid image reference "Nginx": repository name must be lowercase"#
        );
        assert_eq!(msg(""), r#"invalid image reference "": reference is empty"#);
        assert!(msg("nginx:").contains(r#""nginx:": tag must be"#));
        assert!(msg("nginx@").contains(r#""nginx@": digest must be"#));
        assert!(
            msg("x@md5:ffffffffffffffffffffffffffffffff").contains("unsupported digest algorithm")
        );
        assert!(
            msg("1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a")
                .contains("cannot specify 64-byte hexadecimal strings")
        );
        assert!(msg("a//b").contains(r#""a//b": repository path components"#));
        assert!(msg("ex ample").contains(r#""ex ample": invalid reference format"#));
        assert!(msg("https://x/y").contains(r#""https://x/y": registry must be"#));
        assert!(
            msg(&format!("{}a", "a/".repeat(130))).contains("must not be more than 255 characters")
        );
        // Control characters are escaped rather than written raw into logs.
        assert!(msg("nginx\n").contains(r#""nginx\n""#));
    }
}
