//! Every captured pod review placed over both protocols, denials that name each image, and the
//! validating stage's checks.

use super::*;

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
    let names =
        common::captured_reviews(|n| n.starts_with("pod-create-") && n.ends_with("-mutating.json"));
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
