//! Decisions that depend on the cluster's nodes: bound pods, DaemonSet coverage, compatible
//! execution, preferences and ephemeral containers, against the seed cluster's real Node objects.

use super::*;
use crate::inventory::node::nodes_from_value;
use crate::namespace::Namespace;
use crate::policy::evaluate::evaluate_ephemeral;

fn seed() -> Inventory {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/nodes/seed-cluster.nodes.json"
    );
    let value: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    Inventory::from_nodes(nodes_from_value(value).unwrap())
}

fn daemonset_pod(images: &[&str], spec: Value) -> Value {
    let mut p = pod(images, spec);
    p["metadata"]["ownerReferences"] =
        json!([{"kind": "DaemonSet", "name": "node-exporter", "controller": true}]);
    p
}

#[test]
fn a_daemonset_pod_bound_to_a_pi_with_an_amd64_image_is_denied_naming_the_node_and_image() {
    let p = daemonset_pod(
        &["exporter:1"],
        json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["durnan"]}]}
        ]}}}}),
    );
    let (d, out) = decide_in(
        &policy(""),
        &seed(),
        &p,
        &[("exporter:1", AMD64)],
        Stage::Mutate,
    );
    let Verdict::Deny(msg) = &d.verdict else {
        panic!("a pod aimed at a node that cannot run it is refused: {d:?}")
    };
    assert_eq!(out, p, "a bound pod is never re-placed");
    assert!(
        msg.contains("is bound to arm64 nodes durnan, where it fails with exec format error"),
        "{msg}"
    );
    assert!(
        msg.contains("image exporter:1 (container \"c0\") is built for linux/amd64"),
        "{msg}"
    );
    // Warn mode tells, never refuses.
    let warn = policy("[defaults]\nmode = \"warn\"\n");
    let (d, _) = decide_in(
        &warn,
        &seed(),
        &p,
        &[("exporter:1", AMD64)],
        Stage::Validate,
    );
    assert_eq!(d.verdict, Verdict::Allow);
    assert!(d.warnings[0].contains("durnan"), "{:?}", d.warnings);
    let (d, _) = decide_in(
        &policy(""),
        &seed(),
        &p,
        &[("exporter:1", MULTI)],
        Stage::Mutate,
    );
    assert_eq!(
        d.verdict,
        Verdict::Allow,
        "a multi-arch image covers the Pi"
    );
    assert!(d.warnings.is_empty(), "{:?}", d.warnings);
}

#[test]
fn a_mirror_pod_on_an_incompatible_node_is_warned_never_refused() {
    let mut p = pod(&["app:1"], json!({"nodeName": "khelben"}));
    p["metadata"]["annotations"] = json!({"kubernetes.io/config.mirror": "abc"});
    let (d, _) = decide_in(&policy(""), &seed(), &p, &[("app:1", ARM64)], Stage::Mutate);
    assert_eq!(d.verdict, Verdict::Allow);
    assert!(d.warnings[0].contains("khelben"), "{:?}", d.warnings);
}

#[test]
fn validate_mode_denies_a_daemonset_that_does_not_cover_its_nodes() {
    let pol = policy("[defaults]\nmode = \"validate\"\n");
    let template = daemonset_pod(
        &["exporter:1"],
        json!({"tolerations": [{"operator": "Exists"}]}),
    );
    let (d, _) = decide_in(
        &pol,
        &seed(),
        &template,
        &[("exporter:1", AMD64)],
        Stage::Validate,
    );
    let Verdict::Deny(msg) = &d.verdict else {
        panic!("{d:?}")
    };
    assert!(
        msg.contains("would run on arm64 nodes durnan, elaith, jarlaxle, mirt and 1 more"),
        "{msg}"
    );
    assert!(
        msg.contains("image exporter:1 (container \"c0\") is built for linux/amd64"),
        "{msg}"
    );
}

#[test]
fn a_pod_with_node_name_on_an_incompatible_node_is_denied_naming_it() {
    let p = pod(&["app:1"], json!({"nodeName": "khelben"}));
    let (d, _) = decide_in(&policy(""), &seed(), &p, &[("app:1", ARM64)], Stage::Mutate);
    let Verdict::Deny(msg) = &d.verdict else {
        panic!("{d:?}")
    };
    assert!(msg.contains("is bound to amd64 nodes khelben"), "{msg}");
}

#[test]
fn an_image_for_platforms_no_node_has_says_so() {
    let p = pod(&["old:1"], json!({}));
    let (d, _) = decide_in(
        &policy(""),
        &seed(),
        &p,
        &[("old:1", &["linux/arm/v7", "linux/s390x"])],
        Stage::Mutate,
    );
    let Verdict::Deny(msg) = &d.verdict else {
        panic!("{d:?}")
    };
    assert!(
        msg.contains("there are no arm/v7 or s390x nodes in this cluster"),
        "{msg}"
    );
}

#[test]
fn compatible_execution_lets_arm64_run_arm_v7_and_amd64_run_386() {
    let compat = Policy::from_toml(
        "[cluster]\nplatforms = [\"linux/amd64\", \"linux/arm64\"]\ncompatible_execution = true\n",
        Path::new("compat.toml"),
    )
    .unwrap();
    let p = pod(&["old:1"], json!({}));
    let (d, out) = decide(&compat, &p, &[("old:1", &["linux/arm/v7"])], Stage::Mutate);
    assert_eq!(
        required_terms(&out)[0]["matchExpressions"],
        json!([arch_expr(&["arm64"])]),
        "{d:?}"
    );
    let (d, _) = decide(&compat, &p, &[("old:1", &["linux/386"])], Stage::Mutate);
    assert_eq!(d.architectures.names(), ["amd64"]);
    let (d, _) = decide(
        &policy(""),
        &p,
        &[("old:1", &["linux/arm/v7"])],
        Stage::Mutate,
    );
    assert!(
        matches!(d.verdict, Verdict::Deny(_)),
        "off by default: {d:?}"
    );
}

const PREFER: &str = r#"
[[rules]]
name = "web prefers the Pis"
[rules.pod_selector]
match_labels = { tier = "web" }
[[rules.prefer]]
architectures = ["arm64"]
weight = 50
"#;

#[test]
fn a_preference_is_added_as_preferred_affinity_never_as_a_requirement() {
    let mut p = pod(&["web:1"], json!({}));
    p["metadata"]["labels"] = json!({"tier": "web"});
    let (d, out) = decide(&policy(PREFER), &p, &[("web:1", MULTI)], Stage::Mutate);
    assert_eq!(d.outcome().as_str(), "patch");
    let na = &out["spec"]["affinity"]["nodeAffinity"];
    assert!(
        na.get("requiredDuringSchedulingIgnoredDuringExecution")
            .is_none(),
        "{na}"
    );
    assert_eq!(
        na["preferredDuringSchedulingIgnoredDuringExecution"],
        json!([{"weight": 50, "preference": {"matchExpressions": [arch_expr(&["arm64"])]}}])
    );
    let (d, again) = decide(&policy(PREFER), &out, &[("web:1", MULTI)], Stage::Mutate);
    assert_eq!((d.verdict, &again), (Verdict::Allow, &out), "idempotent");
    // An amd64-only image: the preference for arm64 cannot apply, the requirement stays amd64.
    let (_, amd) = decide(&policy(PREFER), &p, &[("web:1", AMD64)], Stage::Mutate);
    let na = &amd["spec"]["affinity"]["nodeAffinity"];
    assert!(
        na.get("preferredDuringSchedulingIgnoredDuringExecution")
            .is_none(),
        "{na}"
    );
    assert_eq!(
        required_terms(&amd)[0]["matchExpressions"],
        json!([arch_expr(&["amd64"])])
    );
}

#[test]
fn required_and_preferred_are_created_together_beside_existing_preferences() {
    let mut p = pod(
        &["web:1"],
        json!({"affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 10, "preference": {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}}
        ]}}}),
    );
    p["metadata"]["labels"] = json!({"tier": "web"});
    let pol = policy(&PREFER.replace("[\"arm64\"]", "[\"amd64\"]"));
    let (_, out) = decide(&pol, &p, &[("web:1", AMD64)], Stage::Mutate);
    let na = &out["spec"]["affinity"]["nodeAffinity"];
    assert_eq!(
        na["preferredDuringSchedulingIgnoredDuringExecution"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        required_terms(&out)[0]["matchExpressions"],
        json!([arch_expr(&["amd64"])])
    );
}

fn ephemeral(policy: &Policy, inventory: &Inventory, node: &str, image: &[&str]) -> Decision {
    let p: Pod = serde_json::from_value(json!({
        "metadata": {"name": "arm64-only"},
        "spec": {"nodeName": node, "containers": [{"name": "app", "image": "edge:1"}],
                 "ephemeralContainers": [{"name": "debugger", "image": "shell:1"}]}
    }))
    .unwrap();
    let platforms: Vec<Platform> = image.iter().map(|s| s.parse().unwrap()).collect();
    let images: Vec<ImageFacts> = p
        .ephemeral_containers()
        .map(|(kind, c)| ImageFacts {
            container: &c.name,
            kind,
            image: "shell:1",
            status: ImageStatus::Resolved(Lookup::Found(Arc::new(ImagePlatforms::new(
                platforms.clone(),
            )))),
        })
        .collect();
    evaluate_ephemeral(
        policy,
        inventory,
        &p,
        &Namespace::named("shop"),
        &images,
        Stage::Validate,
    )
}

#[test]
fn an_ephemeral_container_is_checked_against_the_node_its_pod_runs_on() {
    let inv = seed();
    let d = ephemeral(&policy(""), &inv, "durnan", AMD64);
    let Verdict::Deny(msg) = &d.verdict else {
        panic!("{d:?}")
    };
    assert!(msg.contains("would run on node durnan (arm64)"), "{msg}");
    assert!(
        msg.contains("image shell:1 (ephemeral container \"debugger\")"),
        "{msg}"
    );
    assert_eq!(
        ephemeral(&policy(""), &inv, "durnan", MULTI).verdict,
        Verdict::Allow
    );
    let warn = ephemeral(
        &policy("[defaults]\nmode = \"warn\"\n"),
        &inv,
        "durnan",
        AMD64,
    );
    assert_eq!((warn.verdict, warn.warnings.len()), (Verdict::Allow, 1));
}
