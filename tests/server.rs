//! End-to-end tests of `archgate serve`: the real binary, real TLS, HTTP/2 and HTTP/1.1, and the
//! AdmissionReviews a kube-apiserver v1.24.2 sent (tests/fixtures/admission-reviews).
#![allow(clippy::unwrap_used)]

mod common;

use common::{
    apply_patch, decoded_patch, fixture, full, manifest_path, metric, write_certs, write_file,
    ChannelBody, Client, Proto, ServeOptions, Server,
};
use hyper::body::Bytes;
use hyper::{Method, StatusCode};
use serde_json::{json, Value};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const MUTATE: &str = "/mutate?timeout=5s";
const VALIDATE: &str = "/validate?timeout=5s";
const ARCH_ANNOTATION: &str = "archgate.io/architectures";

/// What the homelab policy and platforms must do to one mutating fixture.
struct Placement {
    /// Architectures every required node selector term must get (`None`: affinity untouched).
    archs: Option<&'static [&'static str]>,
    /// The archgate.io/architectures annotation the pod must carry.
    annotation: &'static str,
    /// nodeSelector entries the pod must get.
    node_selector: &'static [(&'static str, &'static str)],
}

/// Expectations worked out by hand from policies/homelab.toml and homelab-platforms.toml
/// (cluster amd64+arm64, default mode mutate). `None`: allowed without a patch.
fn expected_placement(name: &str) -> Option<Placement> {
    const AMD64: &[&str] = &["amd64"];
    let amd64_only = Placement {
        archs: Some(AMD64),
        annotation: "amd64",
        node_selector: &[],
    };
    let annotate_only = |annotation| Placement {
        archs: None,
        annotation,
        node_selector: &[],
    };
    match name {
        // cleanup:1.0.3 runs on amd64, arm64 and arm/v7: every node can run it.
        "pod-create-from-cronjob-job-mutating.json" => Some(annotate_only("amd64,arm64")),
        // DaemonSet pods are bound to their node by the controller: left alone.
        "pod-create-from-daemonset-durnan-mutating.json"
        | "pod-create-from-daemonset-khelben-mutating.json" => None,
        // report:0.9.0 is amd64 only.
        "pod-create-from-job-mutating.json" => Some(amd64_only),
        // init container migrate:2.3.1 is amd64 only; web:2.3.1 is amd64+arm64.
        "pod-create-from-replicaset-mutating.json"
        | "pod-create-from-replicaset-2-mutating.json"
        | "pod-create-from-replicaset-scaleup-mutating.json" => Some(amd64_only),
        // postgres:15.2 is amd64+arm64 and the pod's nodeSelector already says amd64.
        "pod-create-from-statefulset-mutating.json" => Some(annotate_only("amd64")),
        // cuda-sample is amd64+arm64 but nvidia.com/gpu nodes are amd64 and labelled; the pod
        // already tolerates the GPU taint.
        "pod-create-gpu-limit-mutating.json" => Some(Placement {
            archs: Some(AMD64),
            annotation: "amd64",
            node_selector: &[("nvidia.com/gpu.present", "true")],
        }),
        // team/app@sha256:8aba... is amd64 only.
        "pod-create-imagepullsecret-digest-mutating.json" => Some(amd64_only),
        // edge-agent is arm64 only and the pod's nodeSelector says arm64.
        "pod-create-nodeselector-arm64-mutating.json" => Some(annotate_only("arm64")),
        // team/app:1.5.0@sha256:88c4... is amd64+arm64 (found by digest).
        "pod-create-tag-and-digest-mutating.json" => Some(annotate_only("amd64,arm64")),
        // inference:2.0.0 is amd64 only: both ORed terms get the requirement.
        "pod-create-two-nodeselectorterms-mutating.json" => Some(amd64_only),
        other => panic!("no expectation for new fixture {other}: add one to expected_placement"),
    }
}

fn mutating_pod_fixtures() -> Vec<String> {
    let dir = manifest_path("tests/fixtures/admission-reviews");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("pod-create-") && n.ends_with("-mutating.json"))
        .collect();
    names.sort();
    assert!(
        names.len() >= 10,
        "expected the captured mutating fixtures, found {names:?}"
    );
    names
}

fn required_terms(pod: &Value) -> Vec<Value> {
    pod.pointer("/spec/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution/nodeSelectorTerms")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// Checks the answer's envelope: apiVersion, kind and uid echoed.
fn assert_envelope(review: &Value, answer: &Value, what: &str) {
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

fn assert_allowed_untouched(answer: &Value, what: &str) {
    let r = &answer["response"];
    assert_eq!(r["allowed"], true, "{what}: allowed: {answer}");
    assert!(r.get("patch").is_none(), "{what}: no patch: {answer}");
    assert!(
        r.get("patchType").is_none(),
        "{what}: no patchType: {answer}"
    );
    assert!(r.get("status").is_none(), "{what}: no status: {answer}");
}

/// Sends every pod CREATE fixture of the mutating webhook over `proto`, checks the patched pod,
/// then re-sends the patched pod (reinvocation) and checks nothing more is added.
async fn every_mutating_fixture_is_placed_over(proto: Proto) {
    let server = Server::start();
    let mut client = server.client(proto).await;
    for name in mutating_pod_fixtures() {
        let review = fixture(&name);
        let original = &review["request"]["object"];
        let answer = client.review(MUTATE, &name).await;
        assert_envelope(&review, &answer, &name);
        let response = &answer["response"];
        assert_eq!(response["allowed"], true, "{name}: {answer}");
        assert!(response.get("status").is_none(), "{name}: {answer}");

        let Some(expected) = expected_placement(&name) else {
            assert_allowed_untouched(&answer, &name);
            continue;
        };
        let ops = decoded_patch(&answer).unwrap_or_else(|| panic!("{name}: no patch: {answer}"));
        for op in ops.as_array().unwrap() {
            assert_eq!(op["op"], "add", "{name}: archgate only adds: {ops}");
        }
        let patched = apply_patch(original, &answer);

        // Node affinity.
        let before = required_terms(original);
        let after = required_terms(&patched);
        match expected.archs {
            None => assert_eq!(
                patched["spec"]["affinity"], original["spec"]["affinity"],
                "{name}: affinity must be untouched"
            ),
            Some(archs) => {
                let want = json!({"key": "kubernetes.io/arch", "operator": "In", "values": archs});
                assert!(!after.is_empty(), "{name}: no required terms in {patched}");
                assert_eq!(
                    after.len(),
                    before.len().max(1),
                    "{name}: terms are kept, never added to or removed"
                );
                for (i, term) in after.iter().enumerate() {
                    let exprs = term["matchExpressions"].as_array().unwrap_or_else(|| {
                        panic!("{name}: term {i} has no matchExpressions: {term}")
                    });
                    let arch_exprs: Vec<&Value> = exprs
                        .iter()
                        .filter(|e| e["key"] == "kubernetes.io/arch" && *e != &want)
                        .collect();
                    assert!(
                        exprs.contains(&want),
                        "{name}: term {i} lacks {want}: {term}"
                    );
                    // What the user wrote is still there, in order, before archgate's requirement.
                    if let Some(old) = before.get(i) {
                        let old_exprs = old["matchExpressions"]
                            .as_array()
                            .cloned()
                            .unwrap_or_default();
                        assert_eq!(
                            &exprs[..old_exprs.len()],
                            &old_exprs[..],
                            "{name}: term {i}"
                        );
                        assert_eq!(term["matchFields"], old["matchFields"], "{name}: term {i}");
                        let old_arch = old_exprs
                            .iter()
                            .filter(|e| e["key"] == "kubernetes.io/arch")
                            .count();
                        assert_eq!(arch_exprs.len(), old_arch, "{name}: term {i}");
                    }
                }
            }
        }
        if name == "pod-create-two-nodeselectorterms-mutating.json" {
            assert_eq!(after.len(), 2, "{name}: both terms kept");
        }

        // nodeSelector: the user's entries kept, the expected ones added.
        let mut want_selector = original["spec"]["nodeSelector"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        for (k, v) in expected.node_selector {
            want_selector.insert((*k).to_string(), json!(v));
        }
        if want_selector.is_empty() {
            assert!(
                patched["spec"].get("nodeSelector").is_none(),
                "{name}: no nodeSelector expected: {}",
                patched["spec"]["nodeSelector"]
            );
        } else {
            assert_eq!(
                patched["spec"]["nodeSelector"],
                Value::Object(want_selector),
                "{name}: nodeSelector"
            );
        }

        // The decision annotation; other metadata untouched.
        assert_eq!(
            patched["metadata"]["annotations"][ARCH_ANNOTATION], expected.annotation,
            "{name}: annotation in {}",
            patched["metadata"]
        );
        assert_eq!(
            patched["metadata"]["labels"], original["metadata"]["labels"],
            "{name}"
        );
        // Containers and tolerations (the GPU pod already tolerates nvidia.com/gpu) untouched.
        for field in ["containers", "initContainers", "tolerations"] {
            assert_eq!(
                patched["spec"][field], original["spec"][field],
                "{name}: spec.{field}"
            );
        }

        // Reinvocation: the API server may call the webhook again with the patched pod.
        let mut again = review.clone();
        again["request"]["object"] = patched.clone();
        let second = client.review_value(MUTATE, &again).await;
        assert_envelope(&again, &second, &format!("{name} reinvoked"));
        assert_allowed_untouched(&second, &format!("{name} reinvoked"));
    }
    drop(client);
    let output = server.output_containing("admission review");
    assert!(
        output.contains("admission review"),
        "reviews are logged\n{output}"
    );
}

#[tokio::test]
async fn every_mutating_pod_fixture_is_placed_over_http2_and_reinvocation_adds_nothing() {
    every_mutating_fixture_is_placed_over(Proto::H2).await;
}

#[tokio::test]
async fn every_mutating_pod_fixture_is_placed_over_http1_and_reinvocation_adds_nothing() {
    every_mutating_fixture_is_placed_over(Proto::H1).await;
}

#[tokio::test]
async fn the_patch_is_sent_as_base64_json_patch_text_not_an_array_of_numbers() {
    let server = Server::start();
    let mut client = server.client(Proto::H2).await;
    let (status, _, body) = client
        .post(
            MUTATE,
            "application/json",
            common::fixture_text("pod-create-from-job-mutating.json"),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let answer: Value = serde_json::from_slice(&body).unwrap();
    assert!(
        answer["response"]["patch"].is_string(),
        "patch must be a JSON string: {answer}"
    );
    let ops = decoded_patch(&answer).unwrap();
    assert_eq!(
        ops,
        json!([
            {"op": "add", "path": "/spec/affinity", "value": {"nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]}]}
                ]}}}},
            {"op": "add", "path": "/metadata/annotations", "value": {"archgate.io/architectures": "amd64"}}
        ])
    );
    assert_eq!(answer["response"]["auditAnnotations"]["decision"], "patch");
    assert_eq!(
        answer["response"]["auditAnnotations"]["architectures"],
        "amd64"
    );
}

/// A policy like the homelab's, without rules.
const PLAIN_POLICY: &str = r#"[cluster]
platforms = ["linux/amd64", "linux/arm64"]

[defaults]
mode = "mutate"
unknown_images = "warn"
"#;

#[tokio::test]
async fn a_pod_whose_images_share_no_architecture_is_denied_with_403_naming_each_image_and_its_platforms(
) {
    let dir = tempfile::tempdir().unwrap();
    let policy = write_file(dir.path(), "policy.toml", PLAIN_POLICY);
    let platforms = write_file(
        dir.path(),
        "platforms.toml",
        r#"[images]
"registry.example/shop/migrate:2.3.1" = ["linux/amd64"]
"registry.example/shop/web:2.3.1" = ["linux/arm64", "linux/arm/v7"]
"#,
    );
    let server = Server::start_policy(&policy, &platforms, dir);
    let mut client = server.client(Proto::H2).await;
    // Init container migrate (amd64 only) and container web (arm64 only).
    let name = "pod-create-from-replicaset-mutating.json";
    let review = fixture(name);
    for path in [MUTATE, VALIDATE] {
        let answer = client.review(path, name).await;
        assert_envelope(&review, &answer, name);
        let r = &answer["response"];
        assert_eq!(r["allowed"], false, "{path}: {answer}");
        assert_eq!(r["status"]["code"], 403, "{path}: {answer}");
        assert!(r.get("patch").is_none(), "{path}: a denial has no patch");
        let message = r["status"]["message"].as_str().unwrap();
        for (image, platform) in [
            ("registry.example/shop/migrate:2.3.1", "linux/amd64"),
            ("registry.example/shop/web:2.3.1", "linux/arm64"),
        ] {
            let part = message
                .split("; ")
                .find(|p| p.contains(image))
                .unwrap_or_else(|| panic!("{path}: message does not name {image}: {message}"));
            assert!(
                part.contains(platform),
                "{path}: {image} should be said to be built for {platform}: {part:?} in {message}"
            );
        }
        if path == MUTATE {
            assert_eq!(r["auditAnnotations"]["decision"], "deny", "{answer}");
        }
    }
    let metrics = server.metrics().await;
    assert!(
        metric(
            &metrics,
            "archgate_admission_reviews_total",
            &[("endpoint", "mutate"), ("decision", "deny")]
        )
        .is_some_and(|v| v >= 1.0),
        "{metrics}"
    );
}

#[tokio::test]
async fn validate_allows_pods_that_already_carry_their_placement_without_a_patch() {
    let server = Server::start();
    let mut client = server.client(Proto::H2).await;
    for name in [
        // nodeSelector arm64 for an arm64-only image.
        "pod-create-nodeselector-arm64.json",
        // nodeSelector amd64 for an amd64+arm64 image.
        "pod-create-from-statefulset.json",
        // Multi-arch image: nothing to constrain.
        "pod-create-tag-and-digest.json",
        "pod-create-from-cronjob-job.json",
        // DaemonSet pod bound to its node.
        "pod-create-from-daemonset-durnan.json",
    ] {
        let answer = client.review(VALIDATE, name).await;
        assert_envelope(&fixture(name), &answer, name);
        assert_allowed_untouched(&answer, name);
    }
    // And what /mutate produced passes /validate.
    let mut review = fixture("pod-create-from-job.json");
    let mutated = client.review_value(MUTATE, &review).await;
    review["request"]["object"] = apply_patch(&review["request"]["object"], &mutated);
    let answer = client.review_value(VALIDATE, &review).await;
    assert_allowed_untouched(&answer, "mutated pod-create-from-job at /validate");
}

#[tokio::test]
async fn validate_denies_an_unplaced_amd64_only_pod_when_the_mutating_webhook_was_skipped() {
    let server = Server::start();
    let mut client = server.client(Proto::H1).await;
    for name in [
        "pod-create-from-job.json",
        "pod-create-imagepullsecret-digest.json",
        "pod-create-from-replicaset.json",
    ] {
        let answer = client.review(VALIDATE, name).await;
        assert_envelope(&fixture(name), &answer, name);
        let r = &answer["response"];
        assert_eq!(r["allowed"], false, "{name}: {answer}");
        assert_eq!(r["status"]["code"], 403, "{name}: {answer}");
        assert!(r.get("patch").is_none(), "{name}: {answer}");
        let message = r["status"]["message"].as_str().unwrap();
        assert!(message.contains("arm64"), "{name}: {message}");
        assert!(
            message.contains("kubernetes.io/arch"),
            "{name}: says how to fix: {message}"
        );
        assert!(
            message.contains("mutating webhook"),
            "{name}: says the mutating webhook was skipped: {message}"
        );
    }
}

fn error_message(status: StatusCode, body: &Bytes, what: &str) -> String {
    let v: Value = serde_json::from_slice(body).unwrap_or_else(|e| {
        panic!(
            "{what}: {status} body is not JSON ({e}): {}",
            String::from_utf8_lossy(body)
        )
    });
    let msg = v["error"]
        .as_str()
        .unwrap_or_else(|| panic!("{what}: no error string in {v}"));
    assert!(!msg.is_empty(), "{what}: empty error");
    msg.to_string()
}

async fn bad_requests_are_refused_and_the_server_keeps_serving(proto: Proto) {
    let server = Server::start();
    let mut client = server.client(proto).await;

    let (status, _, body) = client.post(MUTATE, "application/json", "{not json").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "malformed JSON");
    error_message(status, &body, "malformed JSON");

    let (status, _, body) = client
        .post(
            MUTATE,
            "application/json",
            r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "review without request");
    let msg = error_message(status, &body, "review without request");
    assert!(msg.contains("request"), "{msg}");

    let (status, _, body) = client
        .post(
            MUTATE,
            "text/plain",
            common::fixture_text("pod-create.json"),
        )
        .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "text/plain");
    error_message(status, &body, "text/plain");

    let (status, _, _) = client.get(MUTATE).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "GET /mutate");

    // A kind archgate knows nothing of (a Service): allowed with a warning, never denied (a
    // denial would block the kind cluster-wide), and not an HTTP error.
    let mut service = fixture("deployment-create.json");
    service["request"]["kind"] = json!({"group": "", "version": "v1", "kind": "Service"});
    let (status, _, body) = client
        .post(
            MUTATE,
            "application/json",
            serde_json::to_vec(&service).unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let answer: Value = serde_json::from_slice(&body).unwrap();
    assert_envelope(&service, &answer, "service");
    assert_eq!(answer["response"]["allowed"], true, "{answer}");
    let warning = answer["response"]["warnings"][0]
        .as_str()
        .unwrap_or_default();
    assert!(
        warning.contains("v1 Service") && warning.contains("allowed it unchecked"),
        "{answer}"
    );
    assert!(answer["response"].get("patch").is_none());
    let metrics = server.metrics().await;
    assert_eq!(
        common::metric(
            &metrics,
            "archgate_admission_reviews_total",
            &[("endpoint", "mutate"), ("decision", "unhandled")]
        ),
        Some(1.0),
        "{metrics}"
    );

    // A Deployment at the mutating webhook: its template is left alone (only DaemonSets are
    // placed by default).
    let answer = client.review(MUTATE, "deployment-create.json").await;
    assert_eq!(answer["response"]["allowed"], true, "{answer}");
    assert!(answer["response"].get("patch").is_none(), "{answer}");

    // Updates never change scheduling: allowed untouched at both endpoints.
    for name in [
        "pod-update-label.json",
        "pod-update.json",
        "pod-update-ephemeralcontainers.json",
    ] {
        for path in [MUTATE, VALIDATE] {
            let answer = client.review(path, name).await;
            assert_envelope(&fixture(name), &answer, name);
            assert_allowed_untouched(&answer, &format!("{name} at {path}"));
        }
    }

    // 4 MiB, over the 3 MiB + 64 KiB limit; on its own connection, which the server may close.
    // Over HTTP/1.1 only the head is sent and the body held back: the server, which reads an
    // oversized body away before answering (tests/oversize.rs), answers after the client has
    // been silent for 2 s.
    let mut big = server.client(proto).await;
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(1);
    let length = (4 * 1024 * 1024).to_string();
    let (status, _, body) = match proto {
        Proto::H2 => {
            drop((tx, rx));
            big.post(MUTATE, "application/json", vec![b' '; 4 * 1024 * 1024])
                .await
        }
        Proto::H1 => {
            let answer = big
                .send(
                    Method::POST,
                    MUTATE,
                    &[
                        ("content-type", "application/json"),
                        ("content-length", &length),
                    ],
                    http_body_util::BodyExt::boxed_unsync(ChannelBody(rx)),
                )
                .await;
            drop(tx);
            answer
        }
    };
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "4 MiB body");
    error_message(status, &body, "4 MiB body");

    // The first connection still works, and so does a new one.
    let (status, _, body) = client.get("/healthz").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(&body[..], b"ok\n");
    let mut fresh = server.client(proto).await;
    let (status, _, _) = fresh.get("/healthz").await;
    assert_eq!(status, StatusCode::OK);
    let answer = fresh
        .review(MUTATE, "pod-create-from-job-mutating.json")
        .await;
    assert!(decoded_patch(&answer).is_some(), "{answer}");

    let metrics = server.metrics().await;
    for reason in ["bad_review", "media_type", "too_large"] {
        assert!(
            metric(
                &metrics,
                "archgate_http_rejected_total",
                &[("reason", reason)]
            )
            .is_some_and(|v| v >= 1.0),
            "archgate_http_rejected_total{{reason={reason:?}}} in\n{metrics}"
        );
    }
}

#[tokio::test]
async fn bad_requests_get_400_415_413_405_over_http2_and_the_server_keeps_serving() {
    bad_requests_are_refused_and_the_server_keeps_serving(Proto::H2).await;
}

#[tokio::test]
async fn bad_requests_get_400_415_413_405_over_http1_and_the_server_keeps_serving() {
    bad_requests_are_refused_and_the_server_keeps_serving(Proto::H1).await;
}

#[tokio::test]
async fn a_4_mib_body_streamed_without_content_length_is_refused_with_413() {
    let server = Server::start();
    let mut client = server.client(Proto::H2).await;
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(4);
    let feeder = tokio::spawn(async move {
        for _ in 0..64 {
            // 64 x 64 KiB = 4 MiB; the server may stop reading, so sending may fail.
            if tx.send(Bytes::from(vec![b' '; 64 * 1024])).await.is_err() {
                break;
            }
        }
    });
    let (status, _, body) = client
        .send(
            Method::POST,
            MUTATE,
            &[("content-type", "application/json")],
            http_body_util::BodyExt::boxed_unsync(ChannelBody(rx)),
        )
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    error_message(status, &body, "streamed 4 MiB");
    feeder.abort();
    let mut fresh = server.client(Proto::H2).await;
    assert_eq!(fresh.get("/healthz").await.0, StatusCode::OK);
}

#[tokio::test]
async fn metrics_count_reviews_by_endpoint_and_decision_with_sub_millisecond_buckets() {
    let server = Server::start();
    let mut client = server.client(Proto::H2).await;
    assert_eq!(client.get("/healthz").await.0, StatusCode::OK);
    let (status, _, body) = client.get("/readyz").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(&body[..], b"ready\n");

    for _ in 0..3 {
        client
            .review(MUTATE, "pod-create-from-job-mutating.json")
            .await;
    }
    client
        .review(MUTATE, "pod-create-from-daemonset-durnan-mutating.json")
        .await;
    client.review(VALIDATE, "pod-create-from-job.json").await;
    client
        .review(VALIDATE, "pod-create-nodeselector-arm64.json")
        .await;

    let (status, headers, body) = client.get("/metrics").await;
    assert_eq!(status, StatusCode::OK);
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    let text = String::from_utf8(body.to_vec()).unwrap();
    let reviews = |endpoint, decision| {
        metric(
            &text,
            "archgate_admission_reviews_total",
            &[("endpoint", endpoint), ("decision", decision)],
        )
    };
    assert_eq!(reviews("mutate", "patch"), Some(3.0), "{text}");
    assert_eq!(reviews("mutate", "allow"), Some(1.0), "{text}");
    assert_eq!(reviews("validate", "deny"), Some(1.0), "{text}");
    assert_eq!(reviews("validate", "allow"), Some(1.0), "{text}");
    assert_eq!(
        metric(
            &text,
            "archgate_admission_duration_seconds_count",
            &[("endpoint", "mutate")]
        ),
        Some(4.0),
        "{text}"
    );
    assert_eq!(
        metric(
            &text,
            "archgate_admission_duration_seconds_count",
            &[("endpoint", "validate")]
        ),
        Some(2.0),
        "{text}"
    );
    let sub_ms: Vec<f64> = text
        .lines()
        .filter(|l| {
            l.starts_with("archgate_admission_duration_seconds_bucket")
                && l.contains("endpoint=\"mutate\"")
        })
        .filter_map(|l| l.split("le=\"").nth(1)?.split('"').next()?.parse().ok())
        .filter(|le: &f64| *le < 0.001)
        .collect();
    assert!(
        sub_ms.len() >= 2,
        "latency buckets below 1 ms, got {sub_ms:?}:\n{text}"
    );
    assert!(text.contains("archgate_build_info"), "{text}");
}

/// Writes pair `from` into `dir/<data>` and points `dir/..data` at it atomically, the way the
/// kubelet updates a Secret volume.
fn swap_secret_data(dir: &Path, data: &str, cert_pem: &[u8], key_pem: &[u8]) {
    let target = dir.join(data);
    std::fs::create_dir(&target).unwrap();
    std::fs::write(target.join("tls.crt"), cert_pem).unwrap();
    std::fs::write(target.join("tls.key"), key_pem).unwrap();
    let tmp = dir.join("..data_tmp");
    std::os::unix::fs::symlink(data, &tmp).unwrap();
    std::fs::rename(&tmp, dir.join("..data")).unwrap();
}

async fn wait_for<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if check().await {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: not within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_swapped_certificate_is_served_to_new_connections_while_an_open_connection_keeps_working()
{
    let dir = tempfile::tempdir().unwrap();
    let gen_a = dir.path().join("gen-a");
    let gen_b = dir.path().join("gen-b");
    write_certs(&gen_a);
    write_certs(&gen_b);
    let read = |p: &Path| std::fs::read(p).unwrap();
    let secret = dir.path().join("secret");
    std::fs::create_dir(&secret).unwrap();
    swap_secret_data(
        &secret,
        "..2026_a",
        &read(&gen_a.join("tls.crt")),
        &read(&gen_a.join("tls.key")),
    );
    std::os::unix::fs::symlink("..data/tls.crt", secret.join("tls.crt")).unwrap();
    std::os::unix::fs::symlink("..data/tls.key", secret.join("tls.key")).unwrap();
    let ca_a = gen_a.join("ca.crt");
    let ca_b = gen_b.join("ca.crt");

    let server = Server::start_with(
        ServeOptions {
            tls: Some((secret.join("tls.crt"), secret.join("tls.key"), ca_a.clone())),
            ..ServeOptions::default()
        },
        dir,
    );
    let addr = server.addr;

    // One HTTP/2 connection, reviewing in a loop through both swaps.
    let mut old = server.client(Proto::H2).await;
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicUsize::new(0));
    let traffic = {
        let (stop, ok) = (stop.clone(), ok.clone());
        tokio::spawn(async move {
            let body = common::fixture_text("pod-create-from-job-mutating.json");
            let started = Instant::now();
            for i in 0..20_000 {
                if stop.load(Ordering::Acquire) || started.elapsed() > Duration::from_secs(60) {
                    break;
                }
                let (status, _, answer) = old
                    .try_send(
                        Method::POST,
                        MUTATE,
                        &[("content-type", "application/json")],
                        full(body.clone()),
                    )
                    .await
                    .map_err(|e| format!("request {i} on the old connection failed: {e:#}"))?;
                if status != StatusCode::OK {
                    return Err(format!("request {i}: HTTP {status}"));
                }
                let v: Value = serde_json::from_slice(&answer).map_err(|e| e.to_string())?;
                if decoded_patch(&v).is_none() {
                    return Err(format!("request {i}: no patch in {v}"));
                }
                ok.fetch_add(1, Ordering::AcqRel);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Ok::<_, String>(())
        })
    };
    wait_for("traffic starts", Duration::from_secs(5), || async {
        ok.load(Ordering::Acquire) > 0
    })
    .await;

    // Pair B, with a different CA.
    swap_secret_data(
        server.dir.path().join("secret").as_path(),
        "..2026_b",
        &read(&server.dir.path().join("gen-b/tls.crt")),
        &read(&server.dir.path().join("gen-b/tls.key")),
    );
    wait_for(
        "a new connection verifies with CA B",
        Duration::from_secs(10),
        || {
            let ca_b = ca_b.clone();
            async move {
                Client::connect(addr, &ca_b, "localhost", Proto::H2)
                    .await
                    .is_ok()
            }
        },
    )
    .await;
    assert!(
        Client::connect(addr, &ca_a, "localhost", Proto::H2)
            .await
            .is_err(),
        "after the swap the server must no longer present pair A"
    );
    let mut b = Client::connect(addr, &ca_b, "127.0.0.1", Proto::H1)
        .await
        .unwrap();
    let answer = b.review(MUTATE, "pod-create-from-job-mutating.json").await;
    assert!(decoded_patch(&answer).is_some());
    let during_first = ok.load(Ordering::Acquire);

    // A garbage certificate: rejected, pair B stays in service.
    swap_secret_data(
        server.dir.path().join("secret").as_path(),
        "..2026_c",
        b"this is not a certificate\n",
        &read(&server.dir.path().join("gen-b/tls.key")),
    );
    wait_for(
        "archgate_tls_reloads_total{result=\"error\"} >= 1",
        Duration::from_secs(10),
        || async {
            let m = metrics_with(&server, &ca_b).await;
            metric(&m, "archgate_tls_reloads_total", &[("result", "error")])
                .is_some_and(|v| v >= 1.0)
        },
    )
    .await;
    let mut again = Client::connect(addr, &ca_b, "localhost", Proto::H2)
        .await
        .unwrap_or_else(|e| panic!("pair B must stay in service: {e:#}\n{}", server.output()));
    assert_eq!(again.get("/healthz").await.0, StatusCode::OK);
    let m = metrics_with(&server, &ca_b).await;
    assert!(
        metric(&m, "archgate_tls_reloads_total", &[("result", "ok")]).is_some_and(|v| v >= 1.0),
        "{m}"
    );

    // Let the old connection run a little longer past the second swap, then stop it.
    wait_for(
        "the old connection keeps answering",
        Duration::from_secs(5),
        || async { ok.load(Ordering::Acquire) > during_first + 5 },
    )
    .await;
    stop.store(true, Ordering::Release);
    let result = tokio::time::timeout(Duration::from_secs(15), traffic)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(result, Ok(()), "{}", server.output());
    assert!(ok.load(Ordering::Acquire) > 10);
}

/// GET /metrics over a new connection verified with `ca`.
async fn metrics_with(server: &Server, ca: &Path) -> String {
    let mut c = Client::connect(server.addr, ca, "localhost", Proto::H2)
        .await
        .unwrap();
    let (status, _, body) = c.get("/metrics").await;
    assert_eq!(status, StatusCode::OK);
    String::from_utf8(body.to_vec()).unwrap()
}

#[tokio::test]
async fn a_certificate_rewritten_in_place_with_garbage_is_rejected_once_not_retried_in_a_loop() {
    // `archgate certs --out DIR` and serve DIR/tls.crt directly: the watched directory holds the
    // files themselves. Reading them must not count as a change.
    let server = Server::start();
    let certs = server.dir.path().join("certs");
    let ca = certs.join("ca.crt");
    std::fs::write(certs.join("tls.crt"), "garbage\n").unwrap();
    wait_for(
        "archgate_tls_reloads_total{result=\"error\"} >= 1",
        Duration::from_secs(10),
        || async {
            let m = metrics_with(&server, &ca).await;
            metric(&m, "archgate_tls_reloads_total", &[("result", "error")])
                .is_some_and(|v| v >= 1.0)
        },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let first = metric(
        &metrics_with(&server, &ca).await,
        "archgate_tls_reloads_total",
        &[("result", "error")],
    )
    .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let later = metric(
        &metrics_with(&server, &ca).await,
        "archgate_tls_reloads_total",
        &[("result", "error")],
    )
    .unwrap();
    assert_eq!(
        first,
        later,
        "nothing changed on disk for 2 s, yet the bad pair was reloaded {} more times\n{}",
        later - first,
        server.output()
    );
}

async fn sigterm_lets_an_in_flight_request_finish(proto: Proto) {
    let mut server = Server::start();
    let mut client = server.client(proto).await;
    let body = common::fixture_text("pod-create-from-job-mutating.json").into_bytes();
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(4);
    let (head, tail) = body.split_at(body.len() / 2);
    tx.send(Bytes::copy_from_slice(head)).await.unwrap();
    let request = tokio::spawn(async move {
        client
            .try_send(
                Method::POST,
                MUTATE,
                &[("content-type", "application/json")],
                http_body_util::BodyExt::boxed_unsync(ChannelBody(rx)),
            )
            .await
    });
    // Let the server start reading the body, then ask it to stop.
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.terminate();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        server.wait_exit(Duration::ZERO).is_none(),
        "the server exited with a request in flight\n{}",
        server.output()
    );
    assert!(
        tokio::net::TcpStream::connect(server.addr).await.is_err(),
        "after SIGTERM the port must refuse new connections"
    );
    tx.send(Bytes::copy_from_slice(tail)).await.unwrap();
    drop(tx);
    let (status, _, answer) = tokio::time::timeout(Duration::from_secs(10), request)
        .await
        .unwrap()
        .unwrap()
        .unwrap_or_else(|e| panic!("in-flight request failed: {e:#}\n{}", server.output()));
    assert_eq!(status, StatusCode::OK);
    let answer: Value = serde_json::from_slice(&answer).unwrap();
    assert!(decoded_patch(&answer).is_some(), "{answer}");
    server.assert_exits_0(Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_over_http2_lets_the_in_flight_request_finish_then_exits_0() {
    sigterm_lets_an_in_flight_request_finish(Proto::H2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_over_http1_lets_the_in_flight_request_finish_then_exits_0() {
    sigterm_lets_an_in_flight_request_finish(Proto::H1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_idle_connections_exits_0_within_5_seconds_and_closes_the_port() {
    let mut server = Server::start();
    let mut h1 = server.client(Proto::H1).await;
    let mut h2 = server.client(Proto::H2).await;
    assert_eq!(h1.get("/healthz").await.0, StatusCode::OK);
    assert_eq!(h2.get("/healthz").await.0, StatusCode::OK);
    let started = Instant::now();
    server.terminate();
    let status = server
        .wait_exit(Duration::from_secs(5))
        .unwrap_or_else(|| panic!("still running 5 s after SIGTERM\n{}", server.output()));
    assert!(
        status.success(),
        "exit status {status}\n{}",
        server.output()
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        tokio::net::TcpStream::connect(server.addr).await.is_err(),
        "the port must be closed after exit"
    );
    drop((h1, h2));
}

/// Runs `archgate serve` with a policy text and expects it to fail before listening.
fn serve_with_bad_policy(policy_text: &str, platforms_text: Option<&str>) -> (String, String) {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    write_certs(&certs);
    let policy = write_file(dir.path(), "bad-policy.toml", policy_text);
    let platforms = match platforms_text {
        Some(t) => write_file(dir.path(), "bad-platforms.toml", t),
        None => common::homelab_platforms(),
    };
    let mut child = Command::new(common::bin())
        .arg("serve")
        .arg("--policy")
        .arg(&policy)
        .arg("--platforms")
        .arg(&platforms)
        .arg("--tls-cert")
        .arg(certs.join("tls.crt"))
        .arg("--tls-key")
        .arg(certs.join("tls.key"))
        .args(["--listen", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "archgate serve with a bad file is still running after 10 s\nstdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !status.success(),
        "must exit non-zero, got {status}\n{stderr}"
    );
    assert!(
        !stdout.contains("\"listening\"") && !stdout.contains("listening"),
        "must never start listening:\n{stdout}"
    );
    let named = match platforms_text {
        Some(_) => platforms,
        None => policy,
    };
    assert!(
        stderr.contains(&*named.to_string_lossy()),
        "stderr must name the file {}:\n{stderr}",
        named.display()
    );
    (stdout, stderr)
}

#[test]
fn serve_refuses_a_policy_with_an_unknown_key_naming_file_line_column_and_key() {
    let (_, stderr) = serve_with_bad_policy(
        "[cluster]\nplatforms = [\"linux/amd64\"]\n\n[defaults]\nmode = \"mutate\"\nunknown_imagez = \"warn\"\n",
        None,
    );
    assert!(stderr.contains("unknown field"), "{stderr}");
    assert!(stderr.contains("unknown_imagez"), "{stderr}");
    assert!(stderr.contains("line 6"), "line of the key:\n{stderr}");
    assert!(stderr.contains("column 1"), "column of the key:\n{stderr}");
}

#[test]
fn serve_refuses_a_policy_with_a_wrong_type_naming_file_line_and_column() {
    let (_, stderr) =
        serve_with_bad_policy("# comment\n[cluster]\nplatforms = \"linux/amd64\"\n", None);
    assert!(stderr.contains("invalid type"), "{stderr}");
    assert!(stderr.contains("line 3"), "line of the value:\n{stderr}");
    assert!(
        stderr.contains("column 13"),
        "column of the value:\n{stderr}"
    );
}

#[test]
fn serve_refuses_a_platforms_file_with_an_unknown_key() {
    let (_, stderr) = serve_with_bad_policy(
        PLAIN_POLICY,
        Some("[image]\n\"docker.io/library/nginx:1.27\" = [\"linux/amd64\"]\n"),
    );
    assert!(stderr.contains("unknown field"), "{stderr}");
    assert!(stderr.contains("image"), "{stderr}");
    assert!(stderr.contains("line 1"), "{stderr}");
}

#[test]
fn certs_writes_a_ca_a_certificate_and_a_key_readable_by_its_owner_only() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("new/certs");
    write_certs(&out);
    for (file, begin) in [
        ("ca.crt", "-----BEGIN CERTIFICATE-----"),
        ("tls.crt", "-----BEGIN CERTIFICATE-----"),
        ("tls.key", "-----BEGIN PRIVATE KEY-----"),
    ] {
        let text = std::fs::read_to_string(out.join(file)).unwrap();
        assert!(text.starts_with(begin), "{file}: {text}");
        assert!(text.trim_end().ends_with("-----"), "{file}: {text}");
    }
    let mode = std::fs::metadata(out.join("tls.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "tls.key mode {:o}", mode & 0o777);
    let ca = std::fs::read(out.join("ca.crt")).unwrap();
    assert_eq!(
        rustls_pemfile::certs(&mut &ca[..]).count(),
        1,
        "ca.crt holds one certificate"
    );
}

#[tokio::test]
async fn the_generated_certificate_verifies_as_localhost_and_as_127_0_0_1_over_both_protocols() {
    let server = Server::start();
    for name in ["localhost", "127.0.0.1"] {
        for proto in [Proto::H2, Proto::H1] {
            let mut c = Client::connect(server.addr, &server.ca, name, proto)
                .await
                .unwrap_or_else(|e| panic!("{name} {proto:?}: {e:#}"));
            assert_eq!(
                c.get("/healthz").await.0,
                StatusCode::OK,
                "{name} {proto:?}"
            );
        }
    }
    assert!(
        Client::connect(server.addr, &server.ca, "archgate.example", Proto::H2)
            .await
            .is_err(),
        "a name not in the certificate must not verify"
    );
}
