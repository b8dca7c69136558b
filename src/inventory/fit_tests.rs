//! The node judgement on plain values: one test per reason a node is ruled out or held.

use super::*;
use crate::inventory::node::nodes_from_value;
use crate::pod::Pod;
use serde_json::json;

fn node(v: serde_json::Value) -> NodeInfo {
    nodes_from_value(v)
        .unwrap_or_default()
        .pop()
        .unwrap_or_else(|| panic!("no node"))
}

fn amd64(name: &str) -> serde_json::Value {
    json!({"kind": "Node", "metadata": {"name": name, "labels": {
        "kubernetes.io/arch": "amd64", "kubernetes.io/os": "linux"}}})
}

fn with(mut v: serde_json::Value, path: &[&str], value: serde_json::Value) -> serde_json::Value {
    let mut at = &mut v;
    for p in &path[..path.len() - 1] {
        at = at
            .as_object_mut()
            .map(|o| o.entry(p.to_string()).or_insert(json!({})))
            .unwrap_or_else(|| panic!("not an object"));
    }
    at[path[path.len() - 1]] = value;
    v
}

fn demand<'a>() -> Demand<'a> {
    Demand {
        os: "linux",
        archs: ArchSet::of([Arch::Amd64]),
        ..Demand::default()
    }
}

fn no_variant(_: &NodeInfo) -> Option<&str> {
    None
}

fn one_misfit<'a>(n: &'a NodeInfo, d: &'a Demand<'_>) -> Misfit<'a> {
    let fit = judge([n], d, no_variant);
    assert!(fit.fits.is_empty(), "{fit:?}");
    fit.misfits
        .into_iter()
        .next()
        .map(|(_, m)| m)
        .unwrap_or_else(|| panic!("no misfit"))
}

#[test]
fn a_plain_node_of_the_right_architecture_fits() {
    let n = node(amd64("a"));
    assert_eq!(judge([&n], &demand(), no_variant).fits.len(), 1);
}

#[test]
fn the_os_and_the_architecture_come_first() {
    let win = node(with(
        amd64("w"),
        &["metadata", "labels", "kubernetes.io/os"],
        json!("windows"),
    ));
    assert_eq!(one_misfit(&win, &demand()), Misfit::Os("windows"));
    let arm = node(with(
        amd64("p"),
        &["metadata", "labels", "kubernetes.io/arch"],
        json!("arm64"),
    ));
    assert_eq!(one_misfit(&arm, &demand()), Misfit::Arch(Some(Arch::Arm64)));
}

#[test]
fn node_selector_affinity_and_match_fields_rule_nodes_out() {
    let n = node(amd64("a"));
    let mut d = demand();
    d.node_selector.insert("gpu".into(), "true".into());
    assert_eq!(
        one_misfit(&n, &d),
        Misfit::Label {
            key: "gpu",
            value: "true"
        }
    );
    let pod: Pod = serde_json::from_value(
        json!({"spec": {"containers": [], "affinity": {"nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["b"]}]}]}}}}}),
    )
    .unwrap_or_default();
    let d = Demand {
        terms: pod.required_terms(),
        ..demand()
    };
    assert_eq!(one_misfit(&n, &d), Misfit::Affinity);
    let b = node(amd64("b"));
    assert_eq!(judge([&b], &d, no_variant).fits.len(), 1);
}

#[test]
fn taints_keep_pods_off_unless_tolerated_and_prefer_no_schedule_never_does() {
    let taint =
        |effect: &str| json!([{"key": "nvidia.com/gpu", "value": "present", "effect": effect}]);
    let n = node(with(amd64("e"), &["spec", "taints"], taint("NoSchedule")));
    let plain = demand();
    let m = one_misfit(&n, &plain);
    assert_eq!(
        m.reason(&|_| String::new()),
        "tainted nvidia.com/gpu=present:NoSchedule (the pod does not tolerate it)"
    );
    let mut d = demand();
    d.tolerations.push(Toleration {
        key: Some("nvidia.com/gpu".into()),
        operator: Some("Exists".into()),
        ..Toleration::default()
    });
    assert_eq!(judge([&n], &d, no_variant).fits.len(), 1);
    let soft = node(with(
        amd64("s"),
        &["spec", "taints"],
        taint("PreferNoSchedule"),
    ));
    assert_eq!(judge([&soft], &demand(), no_variant).fits.len(), 1);
}

#[test]
fn cordoned_and_not_ready_nodes_hold_the_pod_rather_than_refuse_it() {
    let cordoned = node(with(amd64("c"), &["spec", "unschedulable"], json!(true)));
    let not_ready = node(with(
        amd64("n"),
        &["spec", "taints"],
        json!([{"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}]),
    ));
    let plain = demand();
    let fit = judge([&cordoned, &not_ready], &plain, no_variant);
    assert!(fit.fits.is_empty() && fit.misfits.is_empty(), "{fit:?}");
    assert_eq!(
        describe_held(&fit.held),
        "c (cordoned), n (node.kubernetes.io/not-ready:NoSchedule)"
    );
}

#[test]
fn extended_resources_must_be_offered() {
    let n = node(with(
        amd64("g"),
        &["status", "allocatable"],
        json!({"amd.com/gpu": "1", "cpu": "4"}),
    ));
    let d = Demand {
        resources: vec!["nvidia.com/gpu"],
        ..demand()
    };
    assert_eq!(one_misfit(&n, &d), Misfit::Resource("nvidia.com/gpu"));
    let d = Demand {
        resources: vec!["amd.com/gpu"],
        ..demand()
    };
    assert_eq!(judge([&n], &d, no_variant).fits.len(), 1);
}

#[test]
fn cpu_variants_are_matched_where_nodes_declare_them_and_said_where_they_do_not() {
    let v2 = node(with(
        amd64("old"),
        &[
            "metadata",
            "labels",
            "feature.node.kubernetes.io/cpu-cpuid.AVX",
        ],
        json!("true"),
    ));
    let mut v3 = with(
        amd64("new"),
        &[
            "metadata",
            "labels",
            "feature.node.kubernetes.io/cpu-cpuid.AVX2",
        ],
        json!("true"),
    );
    v3 = with(
        v3,
        &[
            "metadata",
            "labels",
            "feature.node.kubernetes.io/cpu-cpuid.FMA3",
        ],
        json!("true"),
    );
    let v3 = node(v3);
    let plain = node(amd64("plain"));
    assert_eq!(v2.variant.as_deref(), Some("v2"));
    assert_eq!(v3.variant.as_deref(), Some("v3"));
    let d = Demand {
        variants: vec![(Arch::Amd64, "v3".into(), "x:1")],
        ..demand()
    };
    let fit = judge([&v2, &v3, &plain], &d, |n| n.variant.as_deref());
    let fits: Vec<&str> = fit.fits.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(fits, ["new", "plain"]);
    assert_eq!(
        describe(&fit.misfits, &|_| String::new()),
        "old: CPU amd64/v2, the image x:1 needs amd64/v3"
    );
    assert_eq!(fit.unchecked.len(), 1, "plain says nothing: {fit:?}");
    let baseline = Demand {
        variants: vec![(Arch::Amd64, "v1".into(), "x:1")],
        ..demand()
    };
    assert!(judge([&plain], &baseline, no_variant).unchecked.is_empty());
}

#[test]
fn windows_builds_must_match_the_image() {
    let n = node(json!({"kind": "Node", "metadata": {"name": "w", "labels": {
        "kubernetes.io/arch": "amd64", "kubernetes.io/os": "windows",
        "node.kubernetes.io/windows-build": "10.0.17763"}}}));
    let d = Demand {
        os: "windows",
        builds: vec![(vec!["10.0.20348.2340".into()], "win:1")],
        ..demand()
    };
    assert_eq!(
        one_misfit(&n, &d).reason(&|_| String::new()),
        "Windows build 10.0.17763, which the image win:1 was not built for"
    );
    let d = Demand {
        os: "windows",
        builds: vec![(vec!["10.0.17763.5458".into()], "win:1")],
        ..demand()
    };
    assert_eq!(judge([&n], &d, no_variant).fits.len(), 1);
}

#[test]
fn reasons_group_with_the_nearest_miss_first() {
    let nodes: Vec<NodeInfo> = (0..3)
        .map(|i| node(amd64(&format!("a{i}"))))
        .chain((0..2).map(|i| {
            node(with(
                amd64(&format!("p{i}")),
                &["metadata", "labels", "kubernetes.io/arch"],
                json!("arm64"),
            ))
        }))
        .collect();
    let mut d = demand();
    d.node_selector.insert("gpu".into(), "true".into());
    let fit = judge(&nodes, &d, no_variant);
    assert_eq!(
        describe(&fit.misfits, &|a| format!("the image x has no {a} build")),
        "2 arm64 nodes: the image x has no arm64 build; 3 nodes: no label gpu=true"
    );
}
