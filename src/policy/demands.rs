//! What a pod demands beyond its images: its own node constraints, the GPU vendors it asks for,
//! the nodes a bound pod is aimed at, and the rule's preferences it lacks. Pure functions over
//! the pod, the policy and the inventory, which [`super::evaluate`] combines.

use super::cluster::Cluster;
use super::evaluate::{ImageFacts, ARCH_LABEL};
use super::explain::{describe_images, node_names};
use super::{GpuVendor, Policy, Preference, Rule};
use crate::arch::{Arch, ArchSet};
use crate::inventory::fit::runs_images;
use crate::inventory::placement::{eligible_nodes, pinned_nodes};
use crate::inventory::{Inventory, NodeInfo};
use crate::pod::{DisplayName, Pod, Toleration};

/// The beta spelling of [`ARCH_LABEL`], which old manifests still use.
const BETA_ARCH_LABEL: &str = "beta.kubernetes.io/arch";

/// The GPU vendors' node selector entries and tolerations the pod lacks; contradictions go to
/// `problems`.
pub(super) fn gpu_needs(
    pod: &Pod,
    vendors: &[(&str, &GpuVendor)],
    who: &DisplayName<'_>,
    problems: &mut Vec<String>,
) -> (Vec<(String, String)>, Vec<Toleration>) {
    let mut selector = Vec::new();
    let mut tolerations: Vec<Toleration> = Vec::new();
    let pod_selector = pod.spec.node_selector.as_ref();
    for (resource, vendor) in vendors {
        for (k, v) in &vendor.node_selector {
            match pod_selector.and_then(|s| s.get(k)) {
                Some(have) if have == v => {}
                Some(have) => problems.push(format!(
                    "pod {who} requests {resource} but its nodeSelector {k}={have} contradicts the {} GPU nodes' {k}={v}",
                    vendor.name
                )),
                None => selector.push((k.clone(), v.clone())),
            }
        }
        for t in &vendor.tolerations {
            let mut have = pod.spec.tolerations.iter().flatten().chain(&tolerations);
            if !have.any(|h| h.covers(t)) {
                tolerations.push(t.clone());
            }
        }
    }
    (selector, tolerations)
}

/// Nodes a bound pod is aimed at that its images cannot run on.
pub(super) struct BoundProblem {
    pub(super) message: String,
    /// The pod is pinned to named nodes the inventory knows (nodeName, a DaemonSet pod's
    /// per-node affinity), not merely able to land on some of an architecture's nodes.
    pub(super) pinned: bool,
}

/// For a pod bound to nodes (nodeName, a DaemonSet's per-node affinity, or a DaemonSet template
/// spanning every eligible node): which of those nodes its images cannot run on.
pub(super) fn bound_problem(
    cluster: &Cluster,
    inventory: &Inventory,
    pod: &Pod,
    images: &[ImageFacts<'_>],
    supported: ArchSet,
    who: &DisplayName<'_>,
    compat: bool,
) -> Option<BoundProblem> {
    // What the node itself must be (OS, architecture, CPU variant): a bound pod's selectors
    // and tolerations were the scheduler's or the DaemonSet controller's business.
    let demand = super::nodes::demand(pod, "linux", supported, images, &[], &[]);
    let runs = |n: &&NodeInfo| runs_images(n, &demand, |n| cluster.variant_of(n));
    if inventory.nodes.is_empty() {
        // Static inventory: no node names, only architectures.
        let lacking = inventory
            .archs
            .intersect(demanded_archs(pod))
            .minus(supported);
        return (!lacking.is_empty()).then(|| BoundProblem {
            message: format!(
                "pod {who} is bound to its node and may run on {lacking} nodes, where it fails with exec format error: {}",
                describe_images(images, lacking, inventory.archs, compat)
            ),
            pinned: false,
        });
    }
    let pinned = pinned_nodes(pod);
    let (nodes, place): (Vec<&NodeInfo>, &str) = match &pinned {
        Some(names) => (
            names.iter().filter_map(|n| inventory.node(n)).collect(),
            "is bound to",
        ),
        None => (eligible_nodes(inventory, pod), "would run on"),
    };
    let uncovered: Vec<&NodeInfo> = nodes.into_iter().filter(|n| !runs(n)).collect();
    if uncovered.is_empty() {
        return None;
    }
    let archs: Vec<String> = {
        let mut a: Vec<String> = uncovered
            .iter()
            .map(|n| match n.os.as_str() {
                "linux" => n.arch_label.clone(),
                os => format!("{os}/{}", n.arch_label),
            })
            .collect();
        a.sort_unstable();
        a.dedup();
        a
    };
    let lacking = uncovered
        .iter()
        .filter_map(|n| n.arch)
        .collect::<ArchSet>()
        .minus(supported);
    let message = format!(
        "pod {who} {place} {} nodes {}, where it fails with exec format error: {}",
        archs.join(", "),
        node_names(&uncovered),
        describe_images(
            images,
            if lacking.is_empty() {
                ArchSet::ALL
            } else {
                lacking
            },
            inventory.archs,
            compat
        )
    );
    Some(BoundProblem {
        message,
        pinned: pinned.is_some(),
    })
}

/// The rule's preferences, narrowed to the candidates, that the pod does not already carry.
pub(super) fn missing_preferences(
    rule: Option<&Rule>,
    pod: &Pod,
    candidates: ArchSet,
) -> Vec<Preference> {
    let Some(rule) = rule else { return Vec::new() };
    rule.prefer
        .iter()
        .map(|p| Preference {
            architectures: p.architectures.intersect(candidates),
            weight: p.weight,
        })
        .filter(|p| !p.architectures.is_empty())
        .filter(|p| {
            !pod.preferred_terms().iter().any(|t| {
                let exprs = t.preference.match_expressions.as_deref().unwrap_or(&[]);
                t.weight == p.weight
                    && exprs.len() == 1
                    && exprs[0].key == ARCH_LABEL
                    && exprs[0].operator == "In"
                    && exprs[0]
                        .values
                        .iter()
                        .filter_map(|v| Arch::from_name(v))
                        .collect::<ArchSet>()
                        == p.architectures
            })
        })
        .collect()
}

/// GPU vendors the pod's scheduling containers ask for, with the resource that selected each.
pub(super) fn requested_vendors<'p>(
    policy: &'p Policy,
    pod: &'p Pod,
) -> Vec<(&'p str, &'p GpuVendor)> {
    let mut out: Vec<(&str, &GpuVendor)> = Vec::new();
    for (_, c) in pod.scheduling_containers() {
        for res in c.requested_resources() {
            if let Some(v) = policy.gpu_for(res) {
                if !out.iter().any(|(_, o)| o.name == v.name) {
                    out.push((res, v));
                }
            }
        }
    }
    out
}

/// The architectures the pod's own nodeSelector and required node affinity allow.
pub fn demanded_archs(pod: &Pod) -> ArchSet {
    let mut allowed = ArchSet::ALL;
    if let Some(sel) = &pod.spec.node_selector {
        for key in [ARCH_LABEL, BETA_ARCH_LABEL] {
            if let Some(v) = sel.get(key) {
                allowed = allowed
                    .intersect(Arch::from_name(v).map_or(ArchSet::EMPTY, |a| ArchSet::of([a])));
            }
        }
    }
    let terms = pod.required_terms();
    if !terms.is_empty() {
        // Terms are ORed; the requirements inside one term are ANDed.
        let union = terms.iter().fold(ArchSet::EMPTY, |acc, term| {
            let exprs = term.match_expressions.iter().flatten();
            let term_archs = exprs
                .filter(|r| r.key == ARCH_LABEL || r.key == BETA_ARCH_LABEL)
                .fold(ArchSet::ALL, |s, r| {
                    s.intersect(requirement_archs(&r.operator, &r.values))
                });
            acc.union(term_archs)
        });
        allowed = allowed.intersect(union);
    }
    allowed
}

pub(super) fn requirement_archs(operator: &str, values: &[String]) -> ArchSet {
    let listed: ArchSet = values.iter().filter_map(|v| Arch::from_name(v)).collect();
    match operator {
        "In" => listed,
        "NotIn" => ArchSet::ALL.minus(listed),
        "DoesNotExist" => ArchSet::EMPTY,
        _ => ArchSet::ALL,
    }
}
