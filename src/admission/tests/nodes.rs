//! Placement that sees the whole node (issue 20): taints, selectors, extended resources, cordons,
//! pools that scale from zero, Windows and CPU variants, against the seed cluster's Nodes and
//! tests/fixtures/nodes/seed-extended.nodes.json (a Windows node, an NFD-labelled x86-64-v3
//! node, a cordoned Pi).

use super::*;
use crate::inventory::node::nodes_from_value;

fn nodes(file: &str) -> Inventory {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/nodes")
        .join(file);
    let value: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    Inventory::from_nodes(nodes_from_value(value).unwrap())
}

fn seed() -> Inventory {
    nodes("seed-cluster.nodes.json")
}

fn extended() -> Inventory {
    nodes("seed-extended.nodes.json")
}

const X_AMD64: (&str, &[&str]) = ("homelab/x:1", &["linux/amd64"]);
const X_MULTI: (&str, &[&str]) = ("homelab/x:1", &["linux/amd64", "linux/arm64"]);

fn gpu_selector() -> Value {
    json!({"nodeSelector": {"nvidia.com/gpu.present": "true"}})
}

fn denial(d: &Decision) -> &str {
    match &d.verdict {
        Verdict::Deny(m) => m,
        other => panic!("expected a denial, got {other:?} ({:?})", d.warnings),
    }
}

#[test]
fn a_pod_whose_only_matching_node_is_tainted_is_denied_with_reasons_grouped_by_node() {
    let p = pod(&["homelab/x:1"], gpu_selector());
    let (d, _) = decide_in(&policy(""), &seed(), &p, &[X_AMD64], Stage::Mutate);
    assert_eq!(
        denial(&d),
        "archgate: pod shop/p cannot be scheduled on any node: elminster: tainted nvidia.com/gpu:NoSchedule (the pod does not tolerate it); 5 arm64 nodes: the image homelab/x:1 has no arm64 build; 8 nodes: no label nvidia.com/gpu.present=true. Change the pod's nodeSelector, affinity, tolerations or resources, or add a node (or a [[cluster.pools]] entry) that fits"
    );
    // A multi-arch image: the Pis lack the label too.
    let (d, _) = decide_in(&policy(""), &seed(), &p, &[X_MULTI], Stage::Mutate);
    assert!(
        denial(&d).contains("elminster: tainted nvidia.com/gpu:NoSchedule (the pod does not tolerate it); 13 nodes: no label nvidia.com/gpu.present=true."),
        "{d:?}"
    );
}

#[test]
fn validate_mode_denies_and_warn_mode_warns_with_the_same_words() {
    let p = pod(&["homelab/x:1"], gpu_selector());
    let validate = policy("[defaults]\nmode = \"validate\"\n");
    let (d, _) = decide_in(&validate, &seed(), &p, &[X_MULTI], Stage::Validate);
    assert!(denial(&d).contains("cannot be scheduled on any node: elminster: tainted"));
    let warn = policy("[defaults]\nmode = \"warn\"\n");
    let (d, out) = decide_in(&warn, &seed(), &p, &[X_MULTI], Stage::Validate);
    assert_eq!(d.verdict, Verdict::Allow);
    assert_eq!(out, p, "warn mode never patches");
    assert!(
        d.warnings.iter().any(
            |w| w.starts_with("pod shop/p cannot be scheduled on any node: elminster: tainted")
        ),
        "{:?}",
        d.warnings
    );
}

#[test]
fn the_tolerations_archgate_adds_count_and_a_toleration_the_pod_has_too() {
    // Asking for the GPU: archgate adds the vendor's selector and toleration, and elminster fits.
    let gpu = pod(
        &["homelab/x:1"],
        json!({"containers": [{"name": "c0", "image": "homelab/x:1",
            "resources": {"limits": {"nvidia.com/gpu": "1"}}}]}),
    );
    let (d, out) = decide_in(&policy(GPU), &seed(), &gpu, &[X_AMD64], Stage::Mutate);
    assert!(matches!(d.verdict, Verdict::Patch(_)), "{d:?}");
    assert!(out["spec"]["tolerations"].is_array(), "{out}");
    let mut tolerating = pod(&["homelab/x:1"], gpu_selector());
    tolerating["spec"]["tolerations"] =
        json!([{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]);
    let (d, _) = decide_in(&policy(""), &seed(), &tolerating, &[X_AMD64], Stage::Mutate);
    assert!(!matches!(d.verdict, Verdict::Deny(_)), "{d:?}");
}

#[test]
fn an_extended_resource_no_node_offers_is_denied_unless_a_pool_offers_it() {
    let fpga = pod(
        &["homelab/x:1"],
        json!({"containers": [{"name": "c0", "image": "homelab/x:1",
            "resources": {"limits": {"xilinx.com/fpga": "1", "cpu": "1"}}}]}),
    );
    let (d, _) = decide_in(&policy(""), &seed(), &fpga, &[X_AMD64], Stage::Mutate);
    assert!(
        denial(&d).contains("elminster: tainted nvidia.com/gpu:NoSchedule (the pod does not tolerate it); 3 nodes: tainted node-role.kubernetes.io/control-plane:NoSchedule (the pod does not tolerate it); 5 nodes: no xilinx.com/fpga to offer; 5 arm64 nodes: the image homelab/x:1 has no arm64 build."),
        "{d:?}"
    );
    let pooled = policy(
        "[[cluster.pools]]\nname = \"fpga\"\nplatform = \"linux/amd64\"\nresources = [\"xilinx.com/fpga\"]\n",
    );
    let (d, _) = decide_in(&pooled, &seed(), &fpga, &[X_AMD64], Stage::Mutate);
    assert!(matches!(d.verdict, Verdict::Patch(_)), "{d:?}");
    // The static inventory names no node: nothing to judge.
    let pol = policy("");
    let (d, _) = decide_in(
        &pol,
        &pol.static_inventory(),
        &fpga,
        &[X_AMD64],
        Stage::Mutate,
    );
    assert!(matches!(d.verdict, Verdict::Patch(_)), "{d:?}");
    assert!(d.warnings.is_empty(), "{:?}", d.warnings);
}

#[test]
fn a_pod_that_fits_only_a_cordoned_node_is_admitted_with_a_warning() {
    let p = pod(
        &["homelab/x:1"],
        json!({"nodeSelector": {"example.com/camera": "true"}}),
    );
    let (d, _) = decide_in(&policy(""), &extended(), &p, &[X_MULTI], Stage::Mutate);
    assert!(!matches!(d.verdict, Verdict::Deny(_)), "{d:?}");
    assert_eq!(
        d.warnings,
        ["pod shop/p fits only nodes that take no pods now: laeral (cordoned); it stays Pending until one does"]
    );
}

#[test]
fn a_pool_that_scales_from_zero_counts_as_an_architecture_the_cluster_has() {
    let amd64_only = Inventory::from_nodes(
        seed()
            .nodes
            .into_iter()
            .filter(|n| n.arch_label == "amd64")
            .collect(),
    );
    let p = pod(&["homelab/pi:1"], json!({}));
    let arm = &[("homelab/pi:1", &["linux/arm64"][..])];
    let (d, _) = decide_in(&policy(""), &amd64_only, &p, arm, Stage::Mutate);
    assert!(denial(&d).contains("the cluster has amd64"), "{d:?}");
    let pooled = policy(
        "[[cluster.pools]]\nname = \"pi-spot\"\nplatform = \"linux/arm64\"\nlabels = { \"node.kubernetes.io/instance-type\" = \"raspberry-pi\" }\ntaints = [{ key = \"spot\", value = \"true\", effect = \"NoSchedule\" }]\n",
    );
    let (d, out) = decide_in(&pooled, &amd64_only, &p, arm, Stage::Mutate);
    // The pool is tainted and the pod does not tolerate it: no node, not even the pool, fits.
    assert!(
        denial(&d)
            .contains("pool pi-spot: tainted spot=true:NoSchedule (the pod does not tolerate it)"),
        "{d:?}"
    );
    let mut tolerating = p.clone();
    tolerating["spec"]["tolerations"] = json!([{"key": "spot", "operator": "Exists"}]);
    let (d, out2) = decide_in(&pooled, &amd64_only, &tolerating, arm, Stage::Mutate);
    assert!(matches!(d.verdict, Verdict::Patch(_)), "{d:?}");
    assert_eq!(
        out2["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
            ["nodeSelectorTerms"][0]["matchExpressions"][0]["values"],
        json!(["arm64"])
    );
    assert_eq!(out, p);
}

#[test]
fn windows_pods_are_left_alone_by_a_linux_cluster_and_judged_where_windows_nodes_are() {
    let win = pod(&["mcr/iis:1"], json!({}));
    let image = &[("mcr/iis:1", &["windows/amd64@10.0.20348.2340"][..])];
    // No Windows node or pool: not archgate's business, and never "no linux nodes".
    let (d, out) = decide_in(&policy(""), &seed(), &win, image, Stage::Mutate);
    assert_eq!(
        (&d.verdict, d.warnings.len()),
        (&Verdict::Allow, 0),
        "{d:?}"
    );
    assert_eq!(out, win);
    // gauntlgrym runs Windows build 10.0.20348, tainted os=windows.
    let mut tolerating = win.clone();
    tolerating["spec"]["tolerations"] =
        json!([{"key": "os", "operator": "Equal", "value": "windows", "effect": "NoSchedule"}]);
    let (d, out) = decide_in(&policy(""), &extended(), &tolerating, image, Stage::Mutate);
    assert_eq!(
        (&d.verdict, d.warnings.len()),
        (&Verdict::Allow, 0),
        "{d:?}"
    );
    assert_eq!(out, tolerating, "Windows pods are judged, never patched");
    let old = &[("mcr/iis:1", &["windows/amd64@10.0.17763.5458"][..])];
    let (d, _) = decide_in(&policy(""), &extended(), &tolerating, old, Stage::Mutate);
    assert!(
        denial(&d).contains("gauntlgrym: Windows build 10.0.20348, which the image mcr/iis:1 was not built for; 16 nodes: runs linux"),
        "{d:?}"
    );
    // spec.os says so even before the image is known.
    let mut declared = pod(&["mcr/unknown:1"], json!({"os": {"name": "windows"}}));
    declared["spec"]["nodeSelector"] = json!({"kubernetes.io/os": "windows"});
    let (d, _) = decide_in(&policy(""), &extended(), &declared, &[], Stage::Mutate);
    assert!(
        denial(&d).contains("gauntlgrym: tainted os=windows:NoSchedule"),
        "{d:?}"
    );
}

#[test]
fn a_linux_pod_with_a_windows_only_image_is_told_the_image_has_no_linux_build() {
    let mut p = pod(&["mcr/iis:1"], json!({"os": {"name": "linux"}}));
    p["spec"]["os"] = json!({"name": "linux"});
    let image = &[("mcr/iis:1", &["windows/amd64"][..])];
    let (d, _) = decide_in(&policy(""), &seed(), &p, image, Stage::Mutate);
    let msg = denial(&d);
    assert!(
        msg.contains(
            "image mcr/iis:1 (container \"c0\") is built for windows/amd64: it has no linux build"
        ),
        "{msg}"
    );
    assert!(!msg.contains("no linux nodes"), "{msg}");
}

#[test]
fn an_image_built_only_for_x86_64_v3_is_matched_to_nodes_that_declare_it() {
    let v3 = &[("homelab/fast:1", &["linux/amd64/v3"][..])];
    let p = pod(&["homelab/fast:1"], json!({}));
    // Only blackstaff says (through NFD); the other amd64 nodes say nothing: admitted, and told.
    let (d, _) = decide_in(&policy(""), &extended(), &p, v3, Stage::Mutate);
    assert!(matches!(d.verdict, Verdict::Patch(_)), "{d:?}");
    assert_eq!(
        d.warnings,
        ["pod shop/p has an image built for amd64/v3 only, and nothing says which CPU variant nodes danilo, drizzt, khelben, regis and 1 more have: label them with Node Feature Discovery or declare [cluster] variant_labels"]
    );
    // The policy says the GPU boxes are v2: they are where it would fail.
    let labelled = policy(
        "[cluster.variant_labels]\n\"gpu.vendor=amd\" = \"v2\"\n\"gpu.vendor=intel\" = \"v2\"\n",
    );
    let (d, _) = decide_in(&labelled, &extended(), &p, v3, Stage::Mutate);
    assert!(
        d.warnings.iter().any(|w| w
            == "pod shop/p may be scheduled on nodes whose CPUs cannot run it: 3 nodes: CPU amd64/v2, the image homelab/fast:1 needs amd64/v3; add a nodeSelector or node affinity for the CPUs it needs"),
        "{:?}",
        d.warnings
    );
    // With only v2 nodes to go to, it is denied.
    let mut only_gpu = p.clone();
    only_gpu["spec"]["nodeSelector"] = json!({"gpu.vendor": "amd"});
    let (d, _) = decide_in(&labelled, &extended(), &only_gpu, v3, Stage::Mutate);
    assert!(
        denial(&d).contains("2 nodes: CPU amd64/v2, the image homelab/fast:1 needs amd64/v3"),
        "{d:?}"
    );
}

#[test]
fn a_daemonset_pod_bound_to_a_windows_node_or_a_slower_cpu_is_denied() {
    let pinned = |node: &str| {
        let mut p = pod(
            &["homelab/x:1"],
            json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}
            ]}}}}),
        );
        p["metadata"]["ownerReferences"] =
            json!([{"kind": "DaemonSet", "name": "agent", "controller": true}]);
        p
    };
    let (d, _) = decide_in(
        &policy(""),
        &extended(),
        &pinned("gauntlgrym"),
        &[X_AMD64],
        Stage::Mutate,
    );
    assert!(
        denial(&d).contains("is bound to windows/amd64 nodes gauntlgrym, where it fails with exec format error: image homelab/x:1 (container \"c0\") is built for linux/amd64"),
        "{d:?}"
    );
    let (d, _) = decide_in(
        &policy(""),
        &extended(),
        &pinned("regis"),
        &[X_AMD64],
        Stage::Mutate,
    );
    assert_eq!(d.verdict, Verdict::Allow, "{d:?}");
    let v3 = &[("homelab/x:1", &["linux/amd64/v3"][..])];
    let labelled = policy("[cluster.variant_labels]\n\"gpu.vendor=amd\" = \"v2\"\n");
    let (d, _) = decide_in(
        &labelled,
        &extended(),
        &pinned("khelben"),
        v3,
        Stage::Mutate,
    );
    assert!(
        denial(&d).contains("is bound to amd64 nodes khelben"),
        "{d:?}"
    );
    let (d, _) = decide_in(
        &labelled,
        &extended(),
        &pinned("blackstaff"),
        v3,
        Stage::Mutate,
    );
    assert_eq!(d.verdict, Verdict::Allow, "{d:?}");
}
