//! Unit tests of the audit rules, on plain values.
#![allow(clippy::unwrap_used)]

use super::*;
use crate::image::Platform;
use crate::inventory::node::node_from_value;
use crate::inventory::Inventory;
use serde_json::json;
use std::sync::Arc;

fn node(name: &str, os: &str, arch: &str, extra: serde_json::Value) -> NodeInfo {
    let mut n = json!({
        "metadata": {"name": name, "labels": {"kubernetes.io/arch": arch, "kubernetes.io/os": os}},
        "status": {"allocatable": {"cpu": "4"}}
    });
    if let Some(gpu) = extra.get("gpu") {
        n["status"]["allocatable"][gpu.as_str().unwrap()] = json!("1");
    }
    node_from_value(n).unwrap()
}

fn cluster() -> Inventory {
    Inventory::from_nodes(vec![
        node("x1", "linux", "amd64", json!({})),
        node("gpu1", "linux", "amd64", json!({"gpu": "nvidia.com/gpu"})),
        node("pi1", "linux", "arm64", json!({})),
        node("win1", "windows", "amd64", json!({})),
    ])
}

fn platforms(names: &[&str]) -> ImageStatus {
    let list = names
        .iter()
        .map(|p| {
            let parts: Vec<&str> = p.split('/').collect();
            Platform::new(parts[0], parts[1], parts.get(2).copied())
        })
        .collect();
    ImageStatus::Resolved(Arc::new(ImagePlatforms::new(list)))
}

fn images(entries: &[(&str, ImageStatus)]) -> BTreeMap<String, ImageFacts> {
    entries
        .iter()
        .map(|(image, status)| {
            let facts = ImageFacts {
                reference: format!("registry.example/{image}"),
                status: status.clone(),
            };
            (image.to_string(), facts)
        })
        .collect()
}

fn pod(name: &str, node: &str, image: &str, owner: Option<(&str, &str)>) -> PodFacts {
    PodFacts {
        namespace: "shop".into(),
        name: name.into(),
        node: Some(node.into()),
        owner: owner.map(|(kind, name)| ObjRef {
            kind: kind.into(),
            name: name.into(),
        }),
        images: vec![image.into()],
        phase: "Running".into(),
        ..PodFacts::default()
    }
}

fn workload(
    kind: &str,
    name: &str,
    spec: serde_json::Value,
    owner: Option<ObjRef>,
) -> WorkloadFacts {
    let template: Option<Pod> = owner
        .is_none()
        .then(|| serde_json::from_value(json!({"spec": spec})).unwrap());
    let images = template
        .iter()
        .flat_map(|p| {
            p.scheduling_containers()
                .filter_map(|(_, c)| c.image.clone())
        })
        .collect();
    WorkloadFacts {
        kind: kind.into(),
        namespace: "shop".into(),
        name: name.into(),
        owner,
        template,
        images,
        decision: None,
    }
}

fn run(
    inventory: &Inventory,
    pods: &[PodFacts],
    workloads: &[WorkloadFacts],
    images: &BTreeMap<String, ImageFacts>,
    compatible_execution: bool,
) -> Vec<Finding> {
    audit(&Input {
        inventory,
        pods,
        workloads,
        images,
        compatible_execution,
    })
}

fn kinds(findings: &[Finding]) -> Vec<(&'static str, String)> {
    findings
        .iter()
        .map(|f| (f.kind().as_str(), f.object().1.to_string()))
        .collect()
}

#[test]
fn an_amd64_only_pod_on_a_pi_is_misplaced_and_names_its_deployment() {
    let inv = cluster();
    let imgs = images(&[("report:1", platforms(&["linux/amd64"]))]);
    let rs_owner = Some(ObjRef {
        kind: "Deployment".into(),
        name: "report".into(),
    });
    let workloads = [
        workload(
            "Deployment",
            "report",
            json!({"containers": [{"image": "report:1"}]}),
            None,
        ),
        workload("ReplicaSet", "report-5d8f", json!({}), rs_owner),
    ];
    let mut crashing = pod(
        "report-5d8f-x",
        "pi1",
        "report:1",
        Some(("ReplicaSet", "report-5d8f")),
    );
    crashing.crash_looping = true;
    crashing.restarts = 7;
    let fine = pod(
        "report-5d8f-y",
        "x1",
        "report:1",
        Some(("ReplicaSet", "report-5d8f")),
    );
    let found = run(&inv, &[crashing, fine], &workloads, &imgs, false);
    let Some(Finding::Misplaced(m)) = found.first() else {
        panic!("{found:?}")
    };
    assert_eq!(m.name, "report-5d8f-x");
    assert_eq!(m.owner.as_deref(), Some("Deployment/report"));
    assert_eq!(
        (m.node.as_str(), m.node_architecture.as_str()),
        ("pi1", "arm64")
    );
    assert!(m.crash_looping);
    assert_eq!(m.restarts, 7);
    assert_eq!(m.images[0].runs_on_node, Some(false));
    assert_eq!(m.images[0].platforms, ["linux/amd64"]);
    // The image lacks arm64, which the cluster has; used by one workload (the pods are its).
    let missing: Vec<_> = found
        .iter()
        .filter_map(|f| match f {
            Finding::MissingArch(m) => Some((m.missing.clone(), m.workloads)),
            _ => None,
        })
        .collect();
    assert_eq!(missing, [(vec!["arm64".to_string()], 1)]);
}

#[test]
fn an_image_that_is_not_known_never_makes_a_pod_misplaced() {
    let inv = cluster();
    let down = ImageStatus::Unresolved {
        reason: "registry.example: connection refused".into(),
        transient: true,
    };
    let imgs = images(&[("app:1", down)]);
    let found = run(&inv, &[pod("app", "pi1", "app:1", None)], &[], &imgs, false);
    assert_eq!(
        kinds(&found),
        [("unresolved", "registry.example/app:1".into())]
    );
    let Finding::Unresolved(u) = &found[0] else {
        panic!()
    };
    assert!(u.transient);
    assert_eq!(u.used_by, ["shop/Pod/app"]);
}

#[test]
fn compatible_execution_lets_an_arm_v7_image_run_on_arm64() {
    let inv = cluster();
    let imgs = images(&[("tool:1", platforms(&["linux/amd64", "linux/arm/v7"]))]);
    let pods = [pod("tool", "pi1", "tool:1", None)];
    let strict = run(&inv, &pods, &[], &imgs, false);
    assert_eq!(kinds(&strict)[0], ("misplaced", "tool".into()));
    let compatible = run(&inv, &pods, &[], &imgs, true);
    assert!(
        kinds(&compatible).iter().all(|(k, _)| *k != "misplaced"),
        "{compatible:?}"
    );
}

#[test]
fn a_linux_image_on_a_windows_node_is_misplaced_by_its_os() {
    let inv = cluster();
    let imgs = images(&[("web:1", platforms(&["linux/amd64", "linux/arm64"]))]);
    let found = run(
        &inv,
        &[pod("web", "win1", "web:1", None)],
        &[],
        &imgs,
        false,
    );
    let Some(Finding::Misplaced(m)) = found.first() else {
        panic!("{found:?}")
    };
    assert_eq!(m.node_os, "windows");
}

#[test]
fn completed_unbound_and_gone_node_pods_are_never_misplaced() {
    let inv = cluster();
    let imgs = images(&[("report:1", platforms(&["linux/amd64"]))]);
    let mut done = pod("done", "pi1", "report:1", None);
    done.phase = "Succeeded".into();
    let mut pending = pod("pending", "pi1", "report:1", None);
    pending.node = None;
    let gone = pod("gone", "deleted-node", "report:1", None);
    let found = run(&inv, &[done, pending, gone], &[], &imgs, false);
    assert!(
        kinds(&found).iter().all(|(k, _)| *k != "misplaced"),
        "{found:?}"
    );
}

#[test]
fn a_workload_pinned_to_amd64_with_multi_arch_images_is_narrower() {
    let inv = cluster();
    let imgs = images(&[
        ("web:1", platforms(&["linux/amd64", "linux/arm64"])),
        ("amd:1", platforms(&["linux/amd64"])),
    ]);
    let pinned = json!({"nodeSelector": {"kubernetes.io/arch": "amd64"}, "containers": [{"image": "web:1"}]});
    let affinity = json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
        {"nodeSelectorTerms": [{"matchExpressions": [{"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]}]}]}}},
        "containers": [{"image": "web:1"}]});
    let gpu = json!({"containers": [{"image": "web:1", "resources": {"limits": {"nvidia.com/gpu": "1"}}}],
        "nodeSelector": {"kubernetes.io/arch": "amd64"}});
    let single = json!({"nodeSelector": {"kubernetes.io/arch": "amd64"}, "containers": [{"image": "amd:1"}]});
    let broken = json!({"nodeSelector": {"kubernetes.io/arch": "arm64"}, "containers": [{"image": "amd:1"}]});
    let free = json!({"containers": [{"image": "web:1"}]});
    let workloads = [
        workload("Deployment", "web", pinned, None),
        workload("StatefulSet", "by-affinity", affinity, None),
        workload("Deployment", "gpu", gpu, None),
        workload("Deployment", "single", single, None),
        workload("Deployment", "broken", broken, None),
        workload("Deployment", "free", free, None),
    ];
    let found = run(&inv, &[], &workloads, &imgs, false);
    let narrower: Vec<_> = found
        .iter()
        .filter_map(|f| match f {
            Finding::Narrower(n) => Some((
                n.name.as_str(),
                n.pinned_to.clone(),
                n.could_also_run_on.clone(),
            )),
            _ => None,
        })
        .collect();
    let amd = vec!["amd64".to_string()];
    let arm = vec!["arm64".to_string()];
    // The GPU workload's only GPU nodes are amd64; `single` has nowhere else to go; `broken`
    // is pinned where its image cannot run (would-deny's business); `free` is not pinned.
    assert_eq!(
        narrower,
        [("by-affinity", amd.clone(), arm.clone()), ("web", amd, arm)]
    );
}

#[test]
fn decisions_become_would_deny_and_would_patch_and_allow_is_quiet() {
    let inv = cluster();
    let imgs = images(&[("web:1", platforms(&["linux/amd64", "linux/arm64"]))]);
    let spec = json!({"containers": [{"image": "web:1"}]});
    let decided = |denied, patched| Decided {
        denied,
        patched,
        rule: None,
        architectures: vec!["amd64".into()],
        patch_target: "pods",
        patch: Vec::new(),
        messages: Vec::new(),
        warnings: Vec::new(),
    };
    let mut workloads = [
        workload("Deployment", "a-denied", spec.clone(), None),
        workload("Deployment", "b-patched", spec.clone(), None),
        workload("Deployment", "c-allowed", spec, None),
    ];
    workloads[0].decision = Some(decided(true, false));
    workloads[1].decision = Some(decided(false, true));
    workloads[2].decision = Some(decided(false, false));
    let found = run(&inv, &[], &workloads, &imgs, false);
    assert_eq!(
        kinds(&found),
        [
            ("would-deny", "a-denied".into()),
            ("would-patch", "b-patched".into())
        ]
    );
}

#[test]
fn a_cronjobs_pods_are_counted_once_as_the_cronjob() {
    let workloads = [
        workload(
            "CronJob",
            "backup",
            json!({"containers": [{"image": "b:1"}]}),
            None,
        ),
        workload(
            "Job",
            "backup-1",
            json!({}),
            Some(ObjRef {
                kind: "CronJob".into(),
                name: "backup".into(),
            }),
        ),
    ];
    let owners = owners::Owners::new(&workloads);
    let job = ObjRef {
        kind: "Job".into(),
        name: "backup-1".into(),
    };
    assert_eq!(
        owners.top("shop", Some(&job)).unwrap().to_string(),
        "CronJob/backup"
    );
    // An owner nobody listed (a custom controller's object) is the top.
    let custom = ObjRef {
        kind: "Rollout".into(),
        name: "web".into(),
    };
    assert_eq!(owners.top("shop", Some(&custom)), Some(custom));
}

#[test]
fn an_x86_64_v3_image_on_a_node_nfd_says_is_v2_is_misplaced() {
    let p = match platforms(&["linux/amd64/v3"]) {
        ImageStatus::Resolved(p) => p,
        other => panic!("{other:?}"),
    };
    let amd64 = |name: &str, flags: &[&str]| {
        let mut labels: serde_json::Map<String, serde_json::Value> = flags
            .iter()
            .map(|f| {
                (
                    format!("feature.node.kubernetes.io/cpu-cpuid.{f}"),
                    json!("true"),
                )
            })
            .collect();
        labels.insert("kubernetes.io/arch".into(), json!("amd64"));
        node_from_value(json!({"metadata": {"name": name, "labels": labels}})).unwrap()
    };
    let old = amd64("old", &["AVX"]);
    let new = amd64("new", &["AVX", "AVX2", "FMA3"]);
    let unknown = amd64("plain", &[]);
    assert!(!runs_on(&p, &old, false));
    assert!(runs_on(&p, &new, false));
    assert!(
        runs_on(&p, &unknown, false),
        "nothing declared: not held against it"
    );
}
