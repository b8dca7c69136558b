//! Manifests, image indexes and Docker manifest lists as a registry serves them
//! (`registry::manifest::parse`), with a Content-Type chosen by the fuzzer, and the functions that
//! read what `parse` returns.
//!
//! Input: the first byte picks the Content-Type (none, each media type archgate knows, plain
//! `application/json`, or the text up to the first newline), its top bit adds `; charset=utf-8`;
//! the rest is the body.
//!
//! Asserts:
//! 1. `parse` does not panic; on a document that serde_json reads as an object, what it returns
//!    is what the document says: the media type in the body wins over the header; an index type
//!    gives an index with the document's `manifests` (same count and digests), a manifest type the
//!    document's `config`, a schema1 type the document's `architecture` (normalised, on linux),
//!    and `UnsupportedType` names the type it did not know.
//! 2. `index_platforms` over an index: no duplicate platforms, no `unknown` (attestation)
//!    platform, at least one platform or unlabelled entry; `NestedIndex` names a listed index.
//! 3. `config_platform` (the same bytes as an image config) gives a platform with os and
//!    architecture.
//! 4. `verify_digest` accepts the body's own sha256 digest and rejects any other, without panic.
#![no_main]

use archgate::image::Platform;
use archgate::registry::manifest::{
    config_platform, index_platforms, is_attestation, parse, sha256_digest, verify_digest,
    Document, ManifestError, DOCKER_LIST, DOCKER_SCHEMA1, DOCKER_SCHEMA1_SIGNED, DOCKER_SCHEMA2,
    OCI_INDEX, OCI_MANIFEST,
};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

const MEDIA_TYPES: [&str; 6] = [
    DOCKER_LIST,
    OCI_INDEX,
    DOCKER_SCHEMA2,
    OCI_MANIFEST,
    DOCKER_SCHEMA1_SIGNED,
    DOCKER_SCHEMA1,
];

fn split(data: &[u8]) -> (Option<String>, &[u8]) {
    let Some((&first, rest)) = data.split_first() else {
        return (None, data);
    };
    let (base, body) = match first & 0x7f {
        0 => return (None, rest),
        n @ 1..=6 => (MEDIA_TYPES[usize::from(n) - 1].to_string(), rest),
        7 => ("application/json".to_string(), rest),
        _ => {
            let end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
            (
                String::from_utf8_lossy(&rest[..end]).into_owned(),
                rest.get(end + 1..).unwrap_or_default(),
            )
        }
    };
    if first & 0x80 != 0 {
        (Some(format!("{base}; charset=utf-8")), body)
    } else {
        (Some(base), body)
    }
}

fn check_document(
    content_type: Option<&str>,
    value: &Value,
    doc: &Result<Document, ManifestError>,
) {
    let header = content_type.map(|c| c.split(';').next().unwrap_or(c).trim());
    let effective = match value.get("mediaType") {
        Some(Value::String(s)) => Some(s.as_str()),
        _ => header,
    }
    .unwrap_or("");
    let is_index = effective == DOCKER_LIST || effective == OCI_INDEX;
    let is_image = effective == DOCKER_SCHEMA2 || effective == OCI_MANIFEST;
    let is_schema1 = effective == DOCKER_SCHEMA1 || effective == DOCKER_SCHEMA1_SIGNED;
    match doc {
        Ok(Document::Index(entries)) => {
            assert!(!is_image && !is_schema1, "a {effective} read as an index");
            let listed = value["manifests"]
                .as_array()
                .expect("an index from no `manifests`");
            assert_eq!(listed.len(), entries.len(), "entries");
            for (d, v) in entries.iter().zip(listed) {
                assert_eq!(Some(d.digest.as_str()), v["digest"].as_str(), "digest");
            }
        }
        Ok(Document::Image { config }) => {
            assert!(
                !is_index && !is_schema1,
                "a {effective} read as an image manifest"
            );
            assert_eq!(
                Some(config.digest.as_str()),
                value["config"]["digest"].as_str()
            );
        }
        Ok(Document::Schema1(p)) => {
            assert!(!is_index && !is_image, "a {effective} read as schema1");
            let arch = value["architecture"]
                .as_str()
                .expect("schema1 from no architecture");
            assert_eq!(*p, Platform::new("linux", arch, None));
        }
        Err(ManifestError::UnsupportedType(t)) => {
            assert!(!MEDIA_TYPES.contains(&t.as_str()), "{t} is supported");
            assert_eq!(t, effective, "UnsupportedType names another type");
        }
        Err(_) => {}
    }
}

fuzz_target!(|data: &[u8]| {
    let (content_type, body) = split(data);
    let doc = parse(content_type.as_deref(), body);
    if let Ok(value @ Value::Object(_)) = serde_json::from_slice::<Value>(body) {
        check_document(content_type.as_deref(), &value, &doc);
    }
    if let Ok(Document::Index(entries)) = &doc {
        match index_platforms(entries) {
            Ok((platforms, unlabelled)) => {
                assert!(!platforms.is_empty() || !unlabelled.is_empty());
                for (i, p) in platforms.iter().enumerate() {
                    assert!(!p.is_unknown(), "attestation platform {p} listed");
                    assert!(!platforms[..i].contains(p), "{p} listed twice");
                }
                for d in &unlabelled {
                    assert!(d.platform.is_none() && !is_attestation(d));
                }
            }
            Err(ManifestError::NestedIndex(digest)) => {
                assert!(entries.iter().any(|d| d.digest == digest
                    && (d.media_type == DOCKER_LIST || d.media_type == OCI_INDEX)));
            }
            Err(ManifestError::NoPlatforms) => {
                assert!(entries.iter().all(is_attestation));
            }
            Err(e) => panic!("index_platforms: unexpected {e}"),
        }
    }
    if let Ok(p) = config_platform(body) {
        assert!(!p.os.is_empty() && !p.architecture.is_empty());
    }
    let digest = sha256_digest(body);
    assert_eq!(verify_digest(&digest, body), Ok(()));
    if let Some(text) = content_type.as_deref() {
        if text != digest {
            assert!(verify_digest(text, body).is_err());
        }
    }
});
