//! Manifest documents, parsed without I/O: which media types to ask for, what an index or manifest
//! says about platforms, and the checks (size, digest, shape) that turn a bad document into a
//! clear error rather than a wrong answer.

use crate::image::Platform;
use serde::Deserialize;
use sha2::{Digest, Sha256, Sha512};

/// Docker manifest list: one entry per platform, like an OCI index.
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// OCI image index: one entry per platform (plus attestations, which are skipped).
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker schema 2 image manifest: one platform, named in its config blob.
pub const DOCKER_SCHEMA2: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// OCI image manifest: one platform, named in its config blob.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// Docker schema 1 manifest, signed; it names its architecture itself (linux only).
pub const DOCKER_SCHEMA1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";
/// Docker schema 1 manifest, unsigned; it names its architecture itself (linux only).
pub const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";

/// Every type in one Accept header: registries answer 404 for a tag whose type is not listed.
pub const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.v1+prettyjws;q=0.5, application/vnd.docker.distribution.manifest.v1+json;q=0.5";

/// Manifests, indexes and image configs larger than this are refused (the distribution registry
/// itself caps manifests at 4 MiB).
pub const MAX_DOCUMENT_BYTES: usize = 4 * 1024 * 1024;

/// What is wrong with a document; the caller adds which image it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    /// The document exceeds [`MAX_DOCUMENT_BYTES`] and was not parsed.
    #[error("the {what} is larger than {MAX_DOCUMENT_BYTES} bytes")]
    TooLarge {
        /// Which document: "manifest" or "image config".
        what: &'static str,
    },
    /// The document is not JSON, or lacks what its type requires (`manifests`, `config`).
    #[error("the {what} is not valid JSON of its kind: {reason}")]
    Malformed {
        /// Which document: "manifest", "schema1 manifest" or "image config".
        what: &'static str,
        /// The JSON parser's message, or which required member is missing.
        reason: String,
    },
    /// The media type is neither an index nor a manifest, and the document's shape is neither.
    #[error("the registry served media type {0:?}, which is not an image manifest or index")]
    UnsupportedType(String),
    /// An index entry is itself an index (its digest given), which archgate does not follow.
    #[error(
        "the index lists another index ({0}); nested indexes are not supported: push a flat index"
    )]
    NestedIndex(String),
    /// Every index entry is an attestation (or there are none): nothing to run.
    #[error("the index lists no runnable platform (only attestations or nothing)")]
    NoPlatforms,
    /// The bytes do not hash to the digest they were fetched by.
    #[error("content does not match its digest {expected} (got {actual}): the registry or a proxy altered it")]
    DigestMismatch {
        /// The digest the content was fetched by.
        expected: String,
        /// The digest of what arrived, in the same algorithm.
        actual: String,
    },
    /// The digest's algorithm is neither `sha256` nor `sha512`.
    #[error("unsupported digest {0:?}")]
    UnsupportedDigest(String),
}

/// A content descriptor from an index or manifest.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Descriptor {
    /// `mediaType`: whether the entry is a manifest or (refused) a nested index; empty when absent.
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    /// The content's digest (`sha256:<hex>`), by which it is fetched and verified.
    pub digest: String,
    /// `size` in bytes as the descriptor declares it; 0 when absent.
    #[serde(default)]
    pub size: u64,
    /// The entry's platform; None for entries whose manifest must be read to learn it.
    #[serde(default)]
    pub platform: Option<OciPlatform>,
    /// `annotations`; `vnd.docker.reference.type` marks a BuildKit attestation.
    #[serde(default)]
    pub annotations: std::collections::BTreeMap<String, String>,
}

/// A platform as an index entry or image config spells it, before normalisation.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct OciPlatform {
    /// `os`, e.g. `linux`; empty when absent.
    #[serde(default)]
    pub os: String,
    /// `architecture`, e.g. `arm64`; empty when absent.
    #[serde(default)]
    pub architecture: String,
    /// `variant`, e.g. `v8` or `v7`; None when absent.
    #[serde(default)]
    pub variant: Option<String>,
    /// `os.version`, set by Windows images (`10.0.17763.1234`); None elsewhere.
    #[serde(rename = "os.version", default)]
    pub os_version: Option<String>,
}

impl OciPlatform {
    fn to_platform(&self) -> Platform {
        Platform::from_oci(
            &self.os,
            &self.architecture,
            self.variant.as_deref(),
            self.os_version.as_deref(),
        )
    }
}

/// A parsed manifest document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Document {
    /// An image index / manifest list: one entry per platform.
    Index(Vec<Descriptor>),
    /// A single-platform image: the platform is in its config blob.
    Image {
        /// The config blob's descriptor, fetched to read the platform.
        config: Descriptor,
    },
    /// A legacy schema1 manifest names its platform itself.
    Schema1(Platform),
}

#[derive(Deserialize)]
struct Raw {
    #[serde(rename = "schemaVersion", default)]
    schema_version: u32,
    #[serde(rename = "mediaType", default)]
    media_type: Option<String>,
    manifests: Option<Vec<Descriptor>>,
    config: Option<Descriptor>,
    architecture: Option<String>,
}

/// Parses a manifest body; `content_type` is the response's Content-Type, used when the document
/// does not say its own media type.
pub fn parse(content_type: Option<&str>, body: &[u8]) -> Result<Document, ManifestError> {
    if body.len() > MAX_DOCUMENT_BYTES {
        return Err(ManifestError::TooLarge { what: "manifest" });
    }
    let raw: Raw = serde_json::from_slice(body).map_err(|e| ManifestError::Malformed {
        what: "manifest",
        reason: e.to_string(),
    })?;
    let header = content_type.map(|c| c.split(';').next().unwrap_or(c).trim().to_string());
    let media_type = raw.media_type.clone().or(header).unwrap_or_default();
    let malformed = |reason: &str| ManifestError::Malformed {
        what: "manifest",
        reason: reason.to_string(),
    };
    match media_type.as_str() {
        DOCKER_LIST | OCI_INDEX => {
            Ok(Document::Index(raw.manifests.ok_or_else(|| {
                malformed("an index without `manifests`")
            })?))
        }
        DOCKER_SCHEMA2 | OCI_MANIFEST => Ok(Document::Image {
            config: raw
                .config
                .ok_or_else(|| malformed("a manifest without `config`"))?,
        }),
        DOCKER_SCHEMA1 | DOCKER_SCHEMA1_SIGNED => schema1(&raw),
        // Registries that serve `application/json` or nothing: go by the document's shape.
        _ if raw.manifests.is_some() => Ok(Document::Index(raw.manifests.unwrap_or_default())),
        _ if raw.config.is_some() && raw.schema_version == 2 => Ok(Document::Image {
            config: raw.config.ok_or_else(|| malformed("no config"))?,
        }),
        _ if raw.schema_version == 1 => schema1(&raw),
        other => Err(ManifestError::UnsupportedType(other.to_string())),
    }
}

fn schema1(raw: &Raw) -> Result<Document, ManifestError> {
    match raw.architecture.as_deref() {
        Some(arch) if !arch.is_empty() => Ok(Document::Schema1(Platform::from_oci(
            "linux", arch, None, None,
        ))),
        _ => Err(ManifestError::Malformed {
            what: "schema1 manifest",
            reason: "no `architecture`".into(),
        }),
    }
}

/// Is this index entry an attestation (BuildKit provenance/SBOM), not a runnable image?
pub fn is_attestation(d: &Descriptor) -> bool {
    d.annotations.contains_key("vnd.docker.reference.type")
        || d.platform
            .as_ref()
            .is_some_and(|p| p.to_platform().is_unknown())
}

/// What an index says: the platforms its entries carry, and the entries without a platform whose
/// manifests must be read to learn theirs.
pub fn index_platforms(
    entries: &[Descriptor],
) -> Result<(Vec<Platform>, Vec<Descriptor>), ManifestError> {
    let mut platforms = Vec::new();
    let mut unlabelled = Vec::new();
    for d in entries.iter().filter(|d| !is_attestation(d)) {
        if d.media_type == DOCKER_LIST || d.media_type == OCI_INDEX {
            return Err(ManifestError::NestedIndex(d.digest.clone()));
        }
        match &d.platform {
            Some(p) => {
                let platform = p.to_platform();
                if !platforms.contains(&platform) {
                    platforms.push(platform);
                }
            }
            None => unlabelled.push(d.clone()),
        }
    }
    if platforms.is_empty() && unlabelled.is_empty() {
        return Err(ManifestError::NoPlatforms);
    }
    Ok((platforms, unlabelled))
}

/// The platform in an image config blob.
pub fn config_platform(body: &[u8]) -> Result<Platform, ManifestError> {
    if body.len() > MAX_DOCUMENT_BYTES {
        return Err(ManifestError::TooLarge {
            what: "image config",
        });
    }
    let p: OciPlatform = serde_json::from_slice(body).map_err(|e| ManifestError::Malformed {
        what: "image config",
        reason: e.to_string(),
    })?;
    if p.os.is_empty() || p.architecture.is_empty() {
        return Err(ManifestError::Malformed {
            what: "image config",
            reason: "no `os` or `architecture`".into(),
        });
    }
    Ok(p.to_platform())
}

/// Checks content against the digest it was asked for.
pub fn verify_digest(expected: &str, body: &[u8]) -> Result<(), ManifestError> {
    let actual = match expected.split_once(':') {
        Some(("sha256", _)) => format!("sha256:{}", hex(&Sha256::digest(body))),
        Some(("sha512", _)) => format!("sha512:{}", hex(&Sha512::digest(body))),
        _ => return Err(ManifestError::UnsupportedDigest(expected.to_string())),
    };
    if actual == expected {
        Ok(())
    } else {
        Err(ManifestError::DigestMismatch {
            expected: expected.to_string(),
            actual,
        })
    }
}

/// `sha256:<hex>` of a body, as a registry names it.
pub fn sha256_digest(body: &[u8]) -> String {
    format!("sha256:{}", hex(&Sha256::digest(body)))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!(
            "{}/tests/fixtures/image-indexes/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn names(platforms: &[Platform]) -> Vec<String> {
        platforms.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn manifest_list_platforms_normalised_with_windows_versions_kept() {
        let body = fixture("hello-world-latest.manifest-list.json");
        verify_digest(
            "sha256:97a379f4f88575512824f3b352bc03cd75e239179eea0fecc38e597b2209f49a",
            &body,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let Ok(Document::Index(entries)) = parse(None, &body) else {
            panic!("a manifest list")
        };
        let (platforms, unlabelled) = index_platforms(&entries).unwrap_or_else(|e| panic!("{e}"));
        assert!(unlabelled.is_empty());
        let n = names(&platforms);
        assert!(
            n.contains(&"linux/arm64".to_string()),
            "arm64/v8 is arm64: {n:?}"
        );
        assert!(n.contains(&"linux/arm/v5".to_string()));
        let windows: Vec<_> = platforms.iter().filter(|p| p.os == "windows").collect();
        assert_eq!(windows.len(), 2, "two windows versions are two platforms");
        assert!(windows.iter().all(|p| p.os_version.is_some()));
    }

    #[test]
    fn attestations_are_dropped() {
        let body = fixture("postgres-17.11.oci-index-with-attestations.json");
        let Ok(Document::Index(entries)) = parse(Some(OCI_INDEX), &body) else {
            panic!("an index")
        };
        assert_eq!(entries.len(), 16);
        let (platforms, _) = index_platforms(&entries).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(platforms.len(), 8);
        assert!(platforms.iter().all(|p| !p.is_unknown()));
    }

    #[test]
    fn single_images_schema1_and_configs() {
        let body = fixture("hello-world-linux-amd64.schema2-manifest.json");
        assert!(matches!(parse(None, &body), Ok(Document::Image { .. })));
        let config = fixture("hello-world-linux-amd64.config.reformatted.json");
        assert_eq!(
            config_platform(&config).map(|p| p.to_string()),
            Ok("linux/amd64".into())
        );
        let s1 = fixture("hello-world.schema1-signed-manifest.json");
        assert!(
            matches!(parse(Some(DOCKER_SCHEMA1_SIGNED), &s1), Ok(Document::Schema1(p)) if p.architecture == "amd64")
        );
    }

    #[test]
    fn bad_documents_are_errors_not_answers() {
        assert!(matches!(
            parse(None, b"{not json"),
            Err(ManifestError::Malformed { .. })
        ));
        let big = vec![b' '; MAX_DOCUMENT_BYTES + 1];
        assert_eq!(
            parse(None, &big),
            Err(ManifestError::TooLarge { what: "manifest" })
        );
        let nested = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{{"mediaType":"{OCI_INDEX}","digest":"sha256:aa","size":1}}]}}"#
        );
        let Ok(Document::Index(entries)) = parse(None, nested.as_bytes()) else {
            panic!("an index")
        };
        assert!(matches!(
            index_platforms(&entries),
            Err(ManifestError::NestedIndex(_))
        ));
        assert!(matches!(
            verify_digest(&sha256_digest(b"a"), b"b"),
            Err(ManifestError::DigestMismatch { .. })
        ));
        assert!(matches!(
            parse(Some("text/html"), b"{}"),
            Err(ManifestError::UnsupportedType(_))
        ));
    }
}
