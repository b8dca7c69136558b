//! The captured AdmissionReviews (tests/fixtures/admission-reviews) and reading archgate's
//! answers: the patch, the envelope, Prometheus samples. Part of `common` (re-exported there),
//! and small enough to be included alone with `#[path = "common/fixtures.rs"]` by tests that
//! need nothing else.
#![allow(clippy::unwrap_used, dead_code)]

use base64::Engine;
use serde_json::Value;
use std::path::{Path, PathBuf};

pub fn manifest_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

pub fn homelab_policy() -> PathBuf {
    manifest_path("policies/homelab.toml")
}

pub fn homelab_platforms() -> PathBuf {
    manifest_path("policies/homelab-platforms.toml")
}

/// The captured AdmissionReviews a kube-apiserver v1.24.2 sent (INDEX.md there says which is
/// which).
pub fn captured_reviews_dir() -> PathBuf {
    manifest_path("tests/fixtures/admission-reviews")
}

pub fn fixture_path(name: &str) -> PathBuf {
    captured_reviews_dir().join(name)
}

/// The file names of the captured reviews (`*.json` in [`captured_reviews_dir`], not `raw/`)
/// that `keep` accepts, sorted. For `fixture_path`, `fixture_text` and `fixture`.
pub fn captured_reviews(keep: impl Fn(&str) -> bool) -> Vec<String> {
    let dir = captured_reviews_dir();
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json") && keep(n))
        .collect();
    names.sort();
    names
}

pub fn fixture_text(name: &str) -> String {
    std::fs::read_to_string(fixture_path(name))
        .unwrap_or_else(|e| panic!("cannot read fixture {name}: {e}"))
}

pub fn fixture(name: &str) -> Value {
    serde_json::from_str(&fixture_text(name))
        .unwrap_or_else(|e| panic!("fixture {name} is not JSON: {e}"))
}

/// The bytes of an answered review's JSON Patch (`response.patch`, base64-decoded), if it has
/// one, as archgate wrote them (for byte-for-byte comparisons). Checks that the patch is base64
/// text with patchType JSONPatch.
pub fn decoded_patch_bytes(answer: &Value) -> Option<Vec<u8>> {
    let response = &answer["response"];
    let patch = response.get("patch")?;
    let text = patch
        .as_str()
        .unwrap_or_else(|| panic!("response.patch must be base64 text, got {patch}"));
    assert_eq!(
        response["patchType"], "JSONPatch",
        "patchType of a patched response"
    );
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap_or_else(|e| panic!("response.patch is not base64 ({e}): {text}"));
    Some(bytes)
}

/// The decoded JSON Patch of an answered review (`response.patch`), if it has one. Checks that
/// the patch is base64 text with patchType JSONPatch, and holds a JSON array.
pub fn decoded_patch(answer: &Value) -> Option<Value> {
    let bytes = decoded_patch_bytes(answer)?;
    let ops: Value = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
        panic!(
            "response.patch does not decode to JSON ({e}): {}",
            String::from_utf8_lossy(&bytes)
        )
    });
    assert!(ops.is_array(), "JSON Patch must be an array, got {ops}");
    Some(ops)
}

/// Checks an answer's envelope: apiVersion, kind and uid echoed from `review`.
pub fn assert_envelope(review: &Value, answer: &Value, what: &str) {
    assert_eq!(
        answer["apiVersion"], review["apiVersion"],
        "{what}: apiVersion"
    );
    assert_eq!(answer["kind"], "AdmissionReview", "{what}: kind");
    assert_eq!(
        answer["response"]["uid"], review["request"]["uid"],
        "{what}: uid echoed"
    );
}

/// Checks that an answer allows the object and changes nothing: no patch, no status.
pub fn assert_allowed_untouched(answer: &Value, what: &str) {
    let r = &answer["response"];
    assert_eq!(r["allowed"], true, "{what}: allowed: {answer}");
    assert!(r.get("patch").is_none(), "{what}: no patch: {answer}");
    assert!(
        r.get("patchType").is_none(),
        "{what}: no patchType: {answer}"
    );
    assert!(r.get("status").is_none(), "{what}: no status: {answer}");
}

/// `object` with the answered review's patch applied (unchanged when there is no patch).
pub fn apply_patch(object: &Value, answer: &Value) -> Value {
    let mut doc = object.clone();
    if let Some(ops) = decoded_patch(answer) {
        let patch: json_patch::Patch = serde_json::from_value(ops.clone())
            .unwrap_or_else(|e| panic!("not a JSON Patch ({e}): {ops}"));
        json_patch::patch(&mut doc, &patch)
            .unwrap_or_else(|e| panic!("patch {ops} does not apply to the object: {e}"));
    }
    doc
}

/// The value of the sample `name{labels...}` in Prometheus text, when exactly matched by
/// `labels` (other labels of the sample are ignored).
pub fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let (series_name, series_labels) = match series.split_once('{') {
            Some((n, rest)) => (n, rest.trim_end_matches('}')),
            None => (series, ""),
        };
        if series_name != name {
            continue;
        }
        let have: Vec<(&str, &str)> = series_labels
            .split(',')
            .filter(|kv| !kv.is_empty())
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.trim(), v.trim().trim_matches('"')))
            .collect();
        if labels.iter().all(|l| have.contains(l)) {
            return value.trim().parse().ok();
        }
    }
    None
}

/// The `error` string of a JSON error body (`{"error": "..."}`), which must not be empty; `what`
/// names the request in failures.
pub fn error_text(body: &[u8], what: &str) -> String {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_else(|e| {
        panic!(
            "{what}: the error body is not JSON ({e}): {}",
            String::from_utf8_lossy(body)
        )
    });
    let msg = v["error"]
        .as_str()
        .unwrap_or_else(|| panic!("{what}: no error string in {v}"));
    assert!(!msg.is_empty(), "{what}: empty error");
    msg.to_string()
}

/// The AdmissionReview of an answer to a review: a 200 with JSON, else the test fails naming
/// `what` and the body.
pub fn answered_review(
    status: hyper::StatusCode,
    headers: &hyper::HeaderMap,
    body: &[u8],
    what: &str,
) -> Value {
    assert_eq!(
        status,
        hyper::StatusCode::OK,
        "{what}: {}",
        String::from_utf8_lossy(body)
    );
    assert_eq!(
        headers
            .get(hyper::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok()),
        Some("application/json"),
        "{what}: content type of the answer"
    );
    serde_json::from_slice(body).unwrap_or_else(|e| {
        panic!(
            "{what}: the answer is not JSON ({e}): {}",
            String::from_utf8_lossy(body)
        )
    })
}
