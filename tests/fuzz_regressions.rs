//! Inputs the fuzz targets in fuzz/ found (minimised with `cargo fuzz tmin`), each with the
//! property it broke. See FUZZING.md.
#![allow(clippy::unwrap_used)]

#[path = "common/fixtures.rs"]
mod fixtures;

use archgate::admission::review;
use archgate::admission::{Admission, BadReview};
use archgate::cli::test::{run, TestArgs};
use archgate::image::Platform;
use archgate::platforms::StaticPlatforms;
use archgate::policy::{Policy, Stage};
use archgate::registry::credentials::Keyring;
use std::path::Path;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

/// admission_review: a body that is not UTF-8 is not JSON (RFC 8259 section 8.1), and malformed
/// JSON is a 400. The decoder skipped the members it ignores without checking them, so a review
/// with an invalid byte in, say, `userInfo` was answered as if it were well formed.
#[test]
fn admission_review_rejects_a_body_that_is_not_utf8() {
    // As `cargo fuzz tmin` left it: an invalid byte in a member name nobody reads.
    let minimised: &[u8] = b"{\"\":{\"\x8b\":{}}}";
    assert!(serde_json::from_slice::<serde_json::Value>(minimised).is_err());
    assert!(matches!(
        review::decode(minimised),
        Err(BadReview::Malformed(_))
    ));

    // The same in a real review, in a value archgate ignores.
    let review: &[u8] = b"{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\",\
        \"request\":{\"uid\":\"705ab4f5-6393-11e8-b7cc-42010a800002\",\
        \"kind\":{\"group\":\"\",\"version\":\"v1\",\"kind\":\"Pod\"},\"operation\":\"CREATE\",\
        \"userInfo\":{\"username\":\"\xff\xfe\"},\
        \"object\":{\"metadata\":{\"name\":\"web\"},\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":\"nginx\"}]}}}}";
    assert!(serde_json::from_slice::<serde_json::Value>(review).is_err());
    assert!(matches!(
        review::decode(review),
        Err(BadReview::Malformed(_))
    ));
}

/// admission_review: an AdmissionReview, its request and the request's kind are JSON objects.
/// serde's derived structs also read an array, field by field, so `[apiVersion, kind,
/// request]` was answered as a review, and `"kind": ["", "v1", "Pod"]` as a Pod.
#[test]
fn admission_review_rejects_arrays_in_place_of_objects() {
    let top = br#"["admission.k8s.io/v1","AdmissionReview",{"uid":"u1","kind":{"group":"","version":"v1","kind":"Pod"},"operation":"CREATE"}]"#;
    assert!(matches!(review::decode(top), Err(BadReview::Malformed(_))));
    let kind = br#"{"apiVersion":"admission.k8s.io/v1","request":{"uid":"u1","kind":["","v1","Pod"],"operation":"CREATE"}}"#;
    assert!(matches!(review::decode(kind), Err(BadReview::Malformed(_))));
    let request = br#"{"apiVersion":"admission.k8s.io/v1","request":["u1",{"group":"","version":"v1","kind":"Pod"}]}"#;
    assert!(matches!(
        review::decode(request),
        Err(BadReview::Malformed(_))
    ));
    // Objects still decode.
    let fine = br#"{"apiVersion":"admission.k8s.io/v1","request":{"uid":"u1","kind":{"group":"","version":"v1","kind":"Pod"},"operation":"CREATE"}}"#;
    assert_eq!(review::decode(fine).unwrap().request.unwrap().uid, "u1");
}

/// admission_review: the JSON Patch archgate answers must apply to the object it was sent, or
/// the API server fails the request. A pod without `metadata` got
/// `add /metadata/annotations`, whose parent does not exist; templates without metadata were
/// already handled (`patch::under`), pods were not.
#[tokio::test]
async fn admission_review_patch_applies_to_a_pod_without_metadata() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let policy = Policy::load(&root.join("policies/homelab.toml")).unwrap();
    let platforms = StaticPlatforms::load(&root.join("policies/homelab-platforms.toml")).unwrap();
    let admission = Admission::new(Arc::new(policy), Arc::new(platforms));
    let body = br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u1","kind":{"group":"","version":"v1","kind":"Pod"},"namespace":"shop","operation":"CREATE","object":{"spec":{"containers":[{"name":"c","image":"registry.example/monitoring/node-exporter:1.5.0"}]}}}}"#;
    let deadline = Instant::now() + Duration::from_secs(10);
    let answer = admission
        .review(body, Stage::Mutate, deadline)
        .await
        .unwrap();
    let out: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
    let patch = fixtures::decoded_patch(&out).expect("a patch");
    let patch: json_patch::Patch = serde_json::from_value(patch).unwrap();
    let sent: serde_json::Value = serde_json::from_slice(body).unwrap();
    let mut object = sent["request"]["object"].clone();
    json_patch::patch(&mut object, &patch).unwrap();
    assert_eq!(
        object["metadata"]["annotations"]["archgate.io/architectures"],
        "amd64,arm64"
    );
}

/// platform: normalising a platform twice must not move it (index entries are normalised,
/// policies parsed, and the two compared). `normalize_arm64_variant` strips one trailing ".0",
/// so "4.0.0" became "v4.0", and that, normalised again, "v4".
#[test]
fn platform_arm64_variant_normalises_in_one_round() {
    // As `cargo fuzz tmin` left it (os empty: the OCI fields of an index entry).
    let once = Platform::from_oci("", "arm64", Some("4.0.0"), None);
    let twice = Platform::from_oci(&once.os, &once.architecture, once.variant.as_deref(), None);
    assert_eq!(twice, once);

    // The platform string the fuzzer started from: parse, display, parse must be stable.
    let parsed: Platform = "linux/arm64/v9.0.0".parse().unwrap();
    let again: Platform = parsed.to_string().parse().unwrap();
    assert_eq!(again, parsed);
    assert_eq!(again.to_string(), parsed.to_string());

    // v8 in any spelling is the arm64 baseline.
    assert_eq!(Platform::new("linux", "arm64", Some("8.0.0")).variant, None);
}

/// docker_config: the `*` glob kubelet's key matching uses was backtracking, exponential in the
/// number of `*`s of a key. Pull-secret keys and image hosts both come from tenants (the key
/// from a Secret, the host from a pod's image), so one pod could hold an admission worker for
/// hours. Found by review of the target's `-timeout`, confirmed by the docker_config target.
#[test]
fn docker_config_lookup_is_not_exponential_in_a_keys_stars() {
    let config =
        br#"{"auths":{"*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b.io":{"username":"u","password":"p"}}}"#;
    let ring = Keyring::from_config_json(config, "pull secret tenant/evil").unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let found =
            ring.lookup("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.io/x");
        let _ = tx.send(found.len());
    });
    // Microseconds when linear; without the fix, longer than anyone waits.
    match rx.recv_timeout(Duration::from_secs(5)) {
        Ok(found) => assert_eq!(found, 0),
        Err(_) => panic!("lookup still globbing after 5 s"),
    }

    // What the glob must still do: `*` any run within a label, `?` one character.
    let ring = Keyring::from_config_json(
        br#"{"auths":{"*a*b?.io":{"username":"u","password":"p"}}}"#,
        "s",
    )
    .unwrap();
    assert_eq!(ring.lookup("xxaxxbz.io/x").len(), 1);
    assert_eq!(ring.lookup("ab.io/x").len(), 0);
    assert_eq!(ring.lookup("abz.sub.io/x").len(), 0);
}

/// test_suite: the JUnit report must be XML whatever a suite holds. `xml()` drops control
/// characters but keeps U+FFFE and U+FFFF, which XML 1.0 does not allow (its Char production),
/// so a suite with one in a case name, or in a line a parse error quotes, made a report CI
/// cannot read.
#[test]
fn test_suite_junit_report_holds_only_xml_characters() {
    let dir = tempfile::tempdir().unwrap();
    // As `cargo fuzz tmin` left it: the TOML error quotes the line, U+FFFF and all.
    let broken = dir.path().join("broken.archgate-test.toml");
    std::fs::write(&broken, "\t\u{ffff}\t\u{feff}?\tp").unwrap();
    // And in a case name, in a suite that runs.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let named = dir.path().join("named.archgate-test.toml");
    std::fs::write(
        &named,
        format!(
            "policy = {:?}\n[[cases]]\nname = \"odd \\uFFFE\\uFFFF name\"\n\
             input = \"apiVersion: v1\\nkind: Service\\nmetadata: {{name: s}}\\n\"\n\
             expect = {{ decision = \"skip\" }}\n",
            root.join("policies/homelab.toml").display().to_string()
        ),
    )
    .unwrap();
    let junit = dir.path().join("junit.xml");
    run(&TestArgs {
        junit: Some(junit.clone()),
        paths: vec![broken, named],
    })
    .unwrap();
    let report = std::fs::read_to_string(&junit).unwrap();
    assert!(report.contains("<testcase"), "{report}");
    let bad: Vec<char> = report
        .chars()
        .filter(|c| {
            !matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..)
        })
        .collect();
    assert!(
        bad.is_empty(),
        "characters XML does not allow: {bad:?}\n{report}"
    );
}
