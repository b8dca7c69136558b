//! The decision and the patch on plain values: each case applies the produced patch to the pod
//! and asserts on the resulting pod, as the API server would apply it.
#![allow(clippy::unwrap_used)]

use super::patch;
use crate::image::Platform;
use crate::inventory::Inventory;
use crate::namespace::Namespace;
use crate::platforms::{ImagePlatforms, Lookup};
use crate::pod::{ContainerKind, Pod};
use crate::policy::evaluate::Mutation;
use crate::policy::evaluate::{
    evaluate, Decision, ImageFacts, ImageStatus, Stage, Verdict, ARCH_ANNOTATION,
};
use crate::policy::Policy;
use serde_json::{json, Value};
use std::path::Path;
use std::sync::Arc;

mod cluster;
mod gpus_and_rules;
mod nodes;
use gpus_and_rules::GPU;
mod placement;
mod swap;

const CLUSTER: &str = r#"
[cluster]
platforms = ["linux/amd64", "linux/arm64"]
"#;

fn policy(extra: &str) -> Policy {
    Policy::from_toml(&format!("{CLUSTER}{extra}"), Path::new("test.toml")).unwrap()
}

/// A pod with one container per image, plus `spec` merged in.
fn pod(images: &[&str], spec: Value) -> Value {
    let containers: Vec<Value> = images
        .iter()
        .enumerate()
        .map(|(i, img)| json!({"name": format!("c{i}"), "image": img}))
        .collect();
    let mut pod =
        json!({"metadata": {"name": "p", "namespace": "shop"}, "spec": {"containers": containers}});
    if let (Some(dst), Value::Object(src)) = (pod["spec"].as_object_mut(), spec) {
        dst.extend(src);
    }
    pod
}

/// Platforms per image; an image missing here is unknown to the source.
fn facts<'a>(p: &'a Pod, known: &[(&str, &[&str])]) -> Vec<ImageFacts<'a>> {
    p.scheduling_containers()
        .map(|(kind, c)| {
            let image = c.image.as_deref().unwrap_or("");
            let status = match known.iter().find(|(name, _)| *name == image) {
                Some((_, ps)) => {
                    // "windows/amd64@10.0.20348.2340" carries an os.version.
                    let ps: Vec<Platform> = ps
                        .iter()
                        .map(|s| match s.split_once('@') {
                            Some((p, version)) => Platform {
                                os_version: Some(version.to_string()),
                                ..p.parse().unwrap()
                            },
                            None => s.parse().unwrap(),
                        })
                        .collect();
                    ImageStatus::Resolved(Lookup::Found(Arc::new(ImagePlatforms::new(ps))))
                }
                None if image.contains(' ') => {
                    ImageStatus::Invalid(format!("invalid image reference {image:?}"))
                }
                // A registry that answers, but not with platforms.
                None if image.starts_with("private/") => {
                    ImageStatus::Resolved(Lookup::Failed("registry refused access (401)".into()))
                }
                // A registry that does not answer in time.
                None if image.starts_with("slow/") => ImageStatus::Resolved(Lookup::Unavailable(
                    "timed out before the admission deadline".into(),
                )),
                None => ImageStatus::Resolved(Lookup::NotFound),
            };
            ImageFacts {
                container: &c.name,
                kind,
                image,
                status,
            }
        })
        .collect()
}

/// Evaluates and, for a patch, applies it: returns the decision and the pod as the API server stores it.
fn decide(
    policy: &Policy,
    pod_json: &Value,
    known: &[(&str, &[&str])],
    stage: Stage,
) -> (Decision, Value) {
    decide_in(policy, &policy.static_inventory(), pod_json, known, stage)
}

/// [`decide`] against a given inventory.
fn decide_in(
    policy: &Policy,
    inventory: &Inventory,
    pod_json: &Value,
    known: &[(&str, &[&str])],
    stage: Stage,
) -> (Decision, Value) {
    let p: Pod = serde_json::from_value(pod_json.clone()).unwrap();
    let images = facts(&p, known);
    let decision = evaluate(
        policy,
        inventory,
        &p,
        &Namespace::named("shop"),
        &images,
        stage,
    );
    let mut out = pod_json.clone();
    if let Verdict::Patch(_) | Verdict::Gate(_) = &decision.verdict {
        // Through the bytes the webhook sends, so they are what is applied.
        let sent = patch::to_json(&patch::document(super::pod_ops(&p, &decision)));
        let ops: json_patch::Patch = serde_json::from_slice(&sent).unwrap();
        json_patch::patch(&mut out, &ops).unwrap();
    }
    (decision, out)
}

fn required_terms(pod: &Value) -> Vec<Value> {
    pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        ["nodeSelectorTerms"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn arch_expr(values: &[&str]) -> Value {
    json!({"key": "kubernetes.io/arch", "operator": "In", "values": values})
}

const MULTI: &[&str] = &["linux/amd64", "linux/arm64", "linux/arm/v7"];
const AMD64: &[&str] = &["linux/amd64"];
const ARM64: &[&str] = &["linux/arm64"];

#[test]
fn a_multi_arch_pod_is_only_annotated() {
    let p = pod(&["nginx:1"], json!({}));
    let (d, out) = decide(&policy(""), &p, &[("nginx:1", MULTI)], Stage::Mutate);
    assert_eq!(d.outcome().as_str(), "patch");
    assert!(out["spec"].get("affinity").is_none());
    assert_eq!(
        out["metadata"]["annotations"]["archgate.io/architectures"],
        "amd64,arm64"
    );
}

#[test]
fn an_amd64_only_image_gets_required_affinity_created_from_nothing() {
    let p = pod(&["app:1"], json!({}));
    let (d, out) = decide(&policy(""), &p, &[("app:1", AMD64)], Stage::Mutate);
    assert_eq!(d.outcome().as_str(), "patch");
    assert_eq!(
        required_terms(&out),
        vec![json!({"matchExpressions": [arch_expr(&["amd64"])]})]
    );
}

#[test]
fn the_candidate_set_is_the_intersection_over_init_and_app_containers() {
    let mut p = pod(&["web:1"], json!({}));
    p["spec"]["initContainers"] = json!([{"name": "migrate", "image": "migrate:1"}]);
    let (d, out) = decide(
        &policy(""),
        &p,
        &[("web:1", MULTI), ("migrate:1", AMD64)],
        Stage::Mutate,
    );
    assert_eq!(d.architectures.names(), ["amd64"]);
    assert_eq!(
        required_terms(&out)[0]["matchExpressions"][0],
        arch_expr(&["amd64"])
    );
}

#[test]
fn every_existing_term_gets_the_expression_and_nothing_is_widened() {
    let p = pod(
        &["inference:2"],
        json!({"affinity": {"podAntiAffinity": {"x": 1}, "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "kubernetes.io/arch", "operator": "In", "values": ["arm64"]}]},
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["khelben"]}]}
        ]}}}}),
    );
    let (d, out) = decide(&policy(""), &p, &[("inference:2", AMD64)], Stage::Mutate);
    assert_eq!(d.outcome().as_str(), "patch");
    let terms = required_terms(&out);
    // The arm64 term keeps its own expression and can no longer match: terms are ORed.
    assert_eq!(terms[0]["matchExpressions"].as_array().unwrap().len(), 2);
    assert_eq!(terms[0]["matchExpressions"][1], arch_expr(&["amd64"]));
    assert_eq!(terms[1]["matchExpressions"], json!([arch_expr(&["amd64"])]));
    assert_eq!(terms[1]["matchFields"][0]["values"], json!(["khelben"]));
    assert_eq!(
        out["spec"]["affinity"]["podAntiAffinity"],
        json!({"x": 1}),
        "other affinity is kept"
    );
}

#[test]
fn a_pod_whose_own_terms_already_exclude_what_its_images_lack_gets_no_affinity() {
    let p = pod(
        &["multi:1"],
        json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "kubernetes.io/arch", "operator": "NotIn", "values": ["amd64"]}]}
        ]}}}}),
    );
    let (d, out) = decide(&policy(""), &p, &[("multi:1", MULTI)], Stage::Mutate);
    assert_eq!(d.architectures.names(), ["arm64"]);
    assert_eq!(required_terms(&out), required_terms(&p));
}

#[test]
fn missing_parents_are_created_at_the_right_depth() {
    let cases = [
        json!({"affinity": {"podAffinity": {}}}),
        json!({"affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": []}}}),
        json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": []}}}}),
    ];
    for spec in cases {
        let p = pod(&["app:1"], spec.clone());
        let (_, out) = decide(&policy(""), &p, &[("app:1", AMD64)], Stage::Mutate);
        assert_eq!(
            required_terms(&out),
            vec![json!({"matchExpressions": [arch_expr(&["amd64"])]})],
            "{spec}"
        );
    }
}

#[test]
fn a_second_pass_over_the_patched_pod_adds_nothing() {
    let p = pod(&["app:1"], json!({"tolerations": []}));
    let pol = policy(GPU);
    let mut p = p;
    p["spec"]["containers"][0]["resources"] = json!({"limits": {"nvidia.com/gpu": "1"}});
    let (_, once) = decide(&pol, &p, &[("app:1", MULTI)], Stage::Mutate);
    let (d, twice) = decide(&pol, &once, &[("app:1", MULTI)], Stage::Mutate);
    assert_eq!(d.verdict, Verdict::Allow, "{d:?}");
    assert_eq!(once, twice);
    let (d, _) = decide(&pol, &once, &[("app:1", MULTI)], Stage::Validate);
    assert_eq!(d.verdict, Verdict::Allow);
}

#[test]
fn reinvocation_after_another_webhook_changed_an_image_narrows_again() {
    let p = pod(&["app:1"], json!({}));
    let (_, once) = decide(&policy(""), &p, &[("app:1", MULTI)], Stage::Mutate);
    let mut changed = once.clone();
    changed["spec"]["containers"][0]["image"] = json!("app:2");
    let (d, twice) = decide(&policy(""), &changed, &[("app:2", ARM64)], Stage::Mutate);
    assert_eq!(d.outcome().as_str(), "patch");
    assert_eq!(
        required_terms(&twice)[0]["matchExpressions"],
        json!([arch_expr(&["arm64"])])
    );
    assert_eq!(
        twice["metadata"]["annotations"]["archgate.io/architectures"],
        "arm64"
    );
    let (d, _) = decide(&policy(""), &twice, &[("app:2", ARM64)], Stage::Mutate);
    assert_eq!(d.verdict, Verdict::Allow);
}

#[test]
fn no_common_architecture_is_denied_naming_each_image_and_the_pods_demand() {
    let p = pod(
        &["app:1", "edge:1"],
        json!({"nodeSelector": {"kubernetes.io/arch": "arm64"}}),
    );
    let (d, _) = decide(
        &policy(""),
        &p,
        &[("app:1", AMD64), ("edge:1", ARM64)],
        Stage::Mutate,
    );
    let Verdict::Deny(msg) = &d.verdict else {
        panic!("{d:?}")
    };
    assert!(
        msg.starts_with("archgate: pod shop/p cannot run on any node"),
        "{msg}"
    );
    assert!(
        msg.contains("image app:1 (container \"c0\") is built for linux/amd64"),
        "{msg}"
    );
    assert!(
        msg.contains("image edge:1 (container \"c1\") is built for linux/arm64"),
        "{msg}"
    );
    assert!(msg.contains("nodeSelector/affinity allows arm64"), "{msg}");
    assert!(msg.contains("the cluster has amd64, arm64"), "{msg}");
}

#[test]
fn an_image_for_an_architecture_the_cluster_lacks_is_denied() {
    let p = pod(&["s390:1"], json!({}));
    let (d, _) = decide(
        &policy(""),
        &p,
        &[("s390:1", &["linux/s390x"])],
        Stage::Mutate,
    );
    assert!(
        matches!(d.verdict, Verdict::Deny(ref m) if m.contains("linux/s390x")),
        "{d:?}"
    );
}

#[test]
fn unknown_images_follow_the_policy() {
    let p = pod(&["known:1", "mystery:1"], json!({}));
    let known: &[(&str, &[&str])] = &[("known:1", AMD64)];
    let (d, out) = decide(
        &policy("[defaults]\nunknown_images = \"warn\"\n"),
        &p,
        known,
        Stage::Mutate,
    );
    assert!(
        d.warnings[0].contains("platforms of image mystery:1 (container \"c1\") are unknown"),
        "{:?}",
        d.warnings
    );
    assert_eq!(
        required_terms(&out)[0]["matchExpressions"],
        json!([arch_expr(&["amd64"])]),
        "placed by the known image"
    );
    let (d, _) = decide(
        &policy("[defaults]\nunknown_images = \"allow\"\n"),
        &p,
        known,
        Stage::Mutate,
    );
    assert!(d.warnings.is_empty());
    let (d, _) = decide(
        &policy("[defaults]\nunknown_images = \"deny\"\n"),
        &p,
        known,
        Stage::Mutate,
    );
    assert!(
        matches!(d.verdict, Verdict::Deny(ref m) if m.contains("mystery:1")),
        "{d:?}"
    );
}

#[test]
fn an_invalid_image_reference_is_denied_naming_the_container() {
    let p = pod(&["bad image"], json!({}));
    let (d, _) = decide(&policy(""), &p, &[], Stage::Mutate);
    assert!(
        matches!(d.verdict, Verdict::Deny(ref m) if m.contains("container \"c0\"") && m.contains("bad image")),
        "{d:?}"
    );
}

#[test]
fn bound_pods_are_never_given_affinity() {
    let p = pod(&["app:1"], json!({"nodeName": "durnan"}));
    let (d, out) = decide(&policy(""), &p, &[("app:1", AMD64)], Stage::Mutate);
    assert_eq!(d.verdict, Verdict::Allow);
    assert_eq!(out, p);
    assert!(
        d.warnings[0].contains("bound to its node"),
        "{:?}",
        d.warnings
    );
    let mut ds = pod(&["app:1"], json!({}));
    ds["metadata"]["ownerReferences"] =
        json!([{"kind": "DaemonSet", "name": "x", "controller": true}]);
    let (d, out) = decide(&policy(""), &ds, &[("app:1", AMD64)], Stage::Mutate);
    assert_eq!((d.verdict, out), (Verdict::Allow, ds));
}

#[test]
fn existing_annotations_get_an_escaped_key_and_existing_tolerations_are_appended_to() {
    let mut p = pod(
        &["cuda:12"],
        json!({"tolerations": [{"key": "other", "operator": "Exists"}]}),
    );
    p["metadata"]["annotations"] = json!({"team": "ml"});
    p["spec"]["containers"][0]["resources"] = json!({"limits": {"nvidia.com/gpu": 1}});
    let parsed: Pod = serde_json::from_value(p.clone()).unwrap();
    let (d, out) = decide(&policy(GPU), &p, &[("cuda:12", MULTI)], Stage::Mutate);
    let Verdict::Patch(m) = &d.verdict else {
        panic!("{d:?}")
    };
    let paths: Vec<String> = patch::build(&parsed, m)
        .into_iter()
        .map(|o| o.path.to_string())
        .collect();
    assert!(
        paths.contains(&"/metadata/annotations/archgate.io~1architectures".to_string()),
        "{paths:?}"
    );
    assert!(
        paths.contains(&"/spec/tolerations/-".to_string()),
        "{paths:?}"
    );
    assert_eq!(
        out["metadata"]["annotations"],
        json!({"team": "ml", "archgate.io/architectures": "amd64"})
    );
    assert_eq!(out["spec"]["tolerations"].as_array().unwrap().len(), 2);
}

#[test]
fn map_keys_are_escaped_in_paths_as_rfc_6901_says() {
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"annotations": {}},
        "spec": {"nodeSelector": {}, "containers": [{"name": "c", "image": "x"}]}
    }))
    .unwrap();
    let mutation = Mutation {
        node_selector: vec![("a~b/c".into(), "v".into())],
        annotation: Some("amd64".into()),
        ..Mutation::default()
    };
    let ops = patch::build(&pod, &mutation);
    let paths: Vec<&str> = ops.iter().map(|op| op.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/spec/nodeSelector/a~0b~1c",
            "/metadata/annotations/archgate.io~1architectures"
        ]
    );
}

#[test]
fn container_kinds_are_named_in_messages() {
    assert_eq!(ContainerKind::Init.as_str(), "init container");
}
