//! Pods whose lookups did not finish in time are gated; workload templates are placed at the
//! mutating stage. Each case applies the patch and asserts on the object the API server stores.

use super::*;
use crate::admission::Admission;
use crate::namespace::Namespace;
use crate::platforms::StaticPlatforms;
use crate::policy::gate::{GATE, GATED_LABEL, PLACEMENT_ANNOTATION};
use std::time::{Duration, Instant};

#[test]
fn a_pod_whose_lookup_fails_is_gated_with_its_reason() {
    let p = pod(&["slow/app:1", "tool:1"], json!({}));
    let (d, out) = decide(&policy(""), &p, &[("tool:1", AMD64)], Stage::Mutate);
    let Verdict::Gate(reason) = &d.verdict else {
        panic!("{d:?}")
    };
    assert_eq!(d.outcome().as_str(), "gate");
    assert_eq!(out["spec"]["schedulingGates"], json!([{"name": GATE}]));
    assert_eq!(out["metadata"]["labels"][GATED_LABEL], "gated");
    let why = out["metadata"]["annotations"][PLACEMENT_ANNOTATION]
        .as_str()
        .unwrap();
    assert_eq!(why, reason);
    assert!(
        why.contains("image slow/app:1 (container \"c0\"): timed out"),
        "{why}"
    );
    assert!(
        out["spec"].get("affinity").is_none(),
        "placed later, not now"
    );

    // A reinvocation of the gated pod changes nothing.
    let (d, again) = decide(&policy(""), &out, &[("tool:1", AMD64)], Stage::Mutate);
    assert!(matches!(d.verdict, Verdict::Gate(_)), "{d:?}");
    assert_eq!(again, out);
}

#[test]
fn a_gate_joins_the_pods_own_gates_labels_and_annotations() {
    let mut p = pod(
        &["slow/app:1"],
        json!({"schedulingGates": [{"name": "example.com/x"}]}),
    );
    p["metadata"]["labels"] = json!({"app": "web"});
    p["metadata"]["annotations"] = json!({"note": "kept"});
    let (_, out) = decide(&policy(""), &p, &[], Stage::Mutate);
    assert_eq!(
        out["spec"]["schedulingGates"],
        json!([{"name": "example.com/x"}, {"name": GATE}])
    );
    assert_eq!(out["metadata"]["labels"]["app"], "web");
    assert_eq!(out["metadata"]["labels"][GATED_LABEL], "gated");
    assert_eq!(out["metadata"]["annotations"]["note"], "kept");
}

#[test]
fn pods_that_must_never_wait_on_archgate_are_decided_at_once() {
    let slow = [("tool:1", AMD64)];
    // Bound to a node already: the scheduler is not asked.
    let bound = pod(&["slow/app:1"], json!({"nodeName": "khelben"}));
    let (d, _) = decide(&policy(""), &bound, &slow, Stage::Mutate);
    assert!(!matches!(d.verdict, Verdict::Gate(_)), "{d:?}");
    // The control plane's namespaces (and archgate's own, added by `serve`).
    let p = pod(&["slow/app:1"], json!({}));
    let p: Pod = serde_json::from_value(p).unwrap();
    let images = facts(&p, &slow);
    let pol = policy("");
    let inv = pol.static_inventory();
    for ns in ["kube-system", "kube-node-lease"] {
        let d = evaluate(
            &pol,
            &inv,
            &p,
            &Namespace::named(ns),
            &images,
            Stage::Mutate,
        );
        assert!(!matches!(d.verdict, Verdict::Gate(_)), "{ns}: {d:?}");
    }
    let mut own = pol.clone();
    own.placement.never_gate.push("archgate".into());
    let d = evaluate(
        &own,
        &inv,
        &p,
        &Namespace::named("archgate"),
        &images,
        Stage::Mutate,
    );
    assert!(!matches!(d.verdict, Verdict::Gate(_)), "{d:?}");
    let d = evaluate(
        &own,
        &inv,
        &p,
        &Namespace::named("shop"),
        &images,
        Stage::Mutate,
    );
    assert!(matches!(d.verdict, Verdict::Gate(_)), "{d:?}");
}

#[test]
fn without_gating_a_failed_lookup_is_decided_by_unknown_images() {
    let p = pod(&["slow/app:1"], json!({}));
    let decide_now = policy("[placement]\non_lookup_timeout = \"decide\"\n");
    let (d, out) = decide(&decide_now, &p, &[], Stage::Mutate);
    assert!(matches!(d.verdict, Verdict::Patch(_)), "{d:?}");
    assert!(out["spec"].get("schedulingGates").is_none());
    assert!(
        d.warnings[0].contains("could not be looked up"),
        "{:?}",
        d.warnings
    );
    // validate and warn modes never patch, so never gate.
    let validate = policy("[defaults]\nmode = \"validate\"\n");
    let (d, _) = decide(&validate, &p, &[], Stage::Mutate);
    assert_eq!(d.verdict, Verdict::Allow);
}

#[test]
fn a_registry_that_answered_no_decides_at_once_instead_of_gating() {
    let p = pod(&["private/app:1"], json!({}));
    let (d, out) = decide(&policy(""), &p, &[], Stage::Mutate);
    assert!(matches!(d.verdict, Verdict::Patch(_)), "{d:?}");
    assert!(out["spec"].get("schedulingGates").is_none(), "{out}");
    assert!(
        d.warnings[0].contains("refused access (401)"),
        "{:?}",
        d.warnings
    );
}

#[test]
fn an_image_that_runs_nowhere_is_denied_even_while_another_lookup_is_pending() {
    let p = pod(&["slow/app:1", "old:1"], json!({}));
    let (d, _) = decide(
        &policy(""),
        &p,
        &[("old:1", &["linux/s390x"])],
        Stage::Mutate,
    );
    assert!(matches!(d.verdict, Verdict::Deny(_)), "{d:?}");
}

#[test]
fn the_validating_stage_agrees_with_the_mutating_stage() {
    // Gated: the controller decides later.
    let p = pod(&["slow/app:1"], json!({}));
    let (_, gated) = decide(&policy(""), &p, &[], Stage::Mutate);
    let (d, _) = decide(
        &policy(""),
        &gated,
        &[("slow/app:1", AMD64)],
        Stage::Validate,
    );
    assert_eq!(d.verdict, Verdict::Allow, "{d:?}");
    // Admitted unplaced because the lookup had not finished; it finished before /validate.
    let decide_now = policy("[placement]\non_lookup_timeout = \"decide\"\n");
    let (_, admitted) = decide(&decide_now, &p, &[], Stage::Mutate);
    let (d, _) = decide(
        &decide_now,
        &admitted,
        &[("slow/app:1", AMD64)],
        Stage::Validate,
    );
    assert_eq!(d.verdict, Verdict::Allow, "{d:?}");
    // A pod the mutating webhook never saw is still judged.
    let (d, _) = decide(&decide_now, &p, &[("slow/app:1", AMD64)], Stage::Validate);
    assert!(matches!(d.verdict, Verdict::Deny(_)), "{d:?}");
}

/// The captured DaemonSet review, with the static platforms of the example policy.
fn daemonset_review(image_platforms: &str) -> (Admission, Value) {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/admission-reviews/daemonset-create.json"
    );
    let review: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let platforms = format!(
        "[images]\n\"registry.example/monitoring/node-exporter:1.5.0\" = {image_platforms}\n"
    );
    let source = StaticPlatforms::from_toml(&platforms, Path::new("p.toml")).unwrap();
    let admission = Admission::new(Arc::new(policy("")), Arc::new(source));
    (admission, review)
}

/// Sends `review` to `stage` and returns the response and the object with its patch applied.
fn send(admission: &Admission, review: &Value, stage: Stage) -> (Value, Value) {
    let body = serde_json::to_vec(review).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let answer = runtime
        .block_on(admission.review(&body, stage, deadline))
        .unwrap();
    let response: Value = serde_json::from_slice(&answer.body).unwrap();
    let mut object = review["request"]["object"].clone();
    let ops = super::patch::of_response(&answer.body).unwrap();
    json_patch::patch(&mut object, &ops).unwrap();
    (response["response"].clone(), object)
}

#[test]
fn an_amd64_only_daemonset_gets_the_affinity_on_its_template_once() {
    let (admission, mut review) = daemonset_review("[\"linux/amd64\"]");
    let (response, placed) = send(&admission, &review, Stage::Mutate);
    assert_eq!(response["allowed"], true);
    let template = &placed["spec"]["template"];
    assert_eq!(
        template["spec"]["affinity"]["nodeAffinity"]
            ["requiredDuringSchedulingIgnoredDuringExecution"],
        json!({"nodeSelectorTerms": [{"matchExpressions": [
            {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]}
        ]}]})
    );
    assert_eq!(
        template["metadata"]["annotations"][ARCH_ANNOTATION],
        "amd64"
    );
    assert_eq!(template["metadata"]["labels"]["app"], "node-exporter");

    // Reinvoked with its own patch applied: nothing more.
    review["request"]["object"] = placed.clone();
    let (response, again) = send(&admission, &review, Stage::Mutate);
    assert!(response.get("patch").is_none(), "{response}");
    assert_eq!(again, placed);
    // The validating stage allows the placed template.
    let (response, _) = send(&admission, &review, Stage::Validate);
    assert_eq!(response["allowed"], true, "{response}");

    // An UPDATE that leaves the template alone (a label on the DaemonSet) is not patched,
    // even when the user's manifest never had the affinity.
    let mut update = review.clone();
    update["request"]["operation"] = json!("UPDATE");
    update["request"]["oldObject"] = placed.clone();
    update["request"]["object"]["metadata"]["labels"] = json!({"team": "ops"});
    let (response, _) = send(&admission, &update, Stage::Mutate);
    assert!(response.get("patch").is_none(), "{response}");
    // A template change re-resolves.
    update["request"]["object"]["spec"]["template"]["spec"]["containers"][0]["image"] =
        json!("registry.example/monitoring/node-exporter:1.5.0");
    update["request"]["object"]["spec"]["template"]["spec"]["affinity"] = json!(null);
    let (response, replaced) = send(&admission, &update, Stage::Mutate);
    assert!(response.get("patch").is_some(), "{response}");
    assert_eq!(
        replaced["spec"]["template"]["spec"]["affinity"],
        placed["spec"]["template"]["spec"]["affinity"]
    );
}

#[test]
fn a_multi_arch_daemonset_is_left_alone_and_one_that_runs_nowhere_is_denied() {
    let (admission, review) = daemonset_review("[\"linux/amd64\", \"linux/arm64\"]");
    let (response, placed) = send(&admission, &review, Stage::Mutate);
    assert_eq!(response["allowed"], true);
    assert!(
        placed["spec"]["template"]["spec"].get("affinity").is_none(),
        "every node can run it: {placed}"
    );

    let (admission, review) = daemonset_review("[\"linux/s390x\"]");
    let (response, _) = send(&admission, &review, Stage::Mutate);
    assert_eq!(response["allowed"], false);
    let msg = response["status"]["message"].as_str().unwrap();
    assert!(
        msg.contains("image registry.example/monitoring/node-exporter:1.5.0 (container \"node-exporter\") is built for linux/s390x"),
        "{msg}"
    );
}

#[test]
fn templates_of_kinds_the_policy_does_not_name_are_never_patched() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/admission-reviews/deployment-create.json"
    );
    let review: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let source = StaticPlatforms::default();
    let admission = Admission::new(Arc::new(policy("")), Arc::new(source));
    let (response, object) = send(&admission, &review, Stage::Mutate);
    assert!(response.get("patch").is_none(), "{response}");
    assert_eq!(object, review["request"]["object"]);
    // Opted in, the same Deployment's template is placed; a template every node can run gets
    // nothing, not even the annotation.
    let opted = policy("[placement]\ntemplates = [\"DaemonSet\", \"Deployment\"]\n");
    let admission = Admission::new(
        Arc::new(opted.clone()),
        Arc::new(StaticPlatforms::default()),
    );
    let (response, _) = send(&admission, &review, Stage::Mutate);
    assert!(response.get("patch").is_none(), "{response}");
    let amd64 = "[images]\n\"registry.example/shop/web:2.3.1\" = [\"linux/amd64\"]\n";
    let source = StaticPlatforms::from_toml(amd64, Path::new("p.toml")).unwrap();
    let admission = Admission::new(Arc::new(opted), Arc::new(source));
    let (response, object) = send(&admission, &review, Stage::Mutate);
    assert!(response.get("patch").is_some(), "{response}");
    assert_eq!(
        object["spec"]["template"]["metadata"]["annotations"][ARCH_ANNOTATION],
        "amd64"
    );
    assert_eq!(
        required_terms(&object["spec"]["template"]),
        [
            json!({"matchExpressions": [{"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]}]})
        ]
    );
}
