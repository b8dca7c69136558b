//! The node-level judgement for a pod not yet bound to a node: of the watched nodes and the
//! policy's pools, which ones it can land on as the scheduler would judge them, and what to tell
//! its author when none can (or only a cordoned one, or one whose CPU nothing describes).

use super::evaluate::{ImageFacts, ImageStatus};
use super::{GpuVendor, Policy, Rule};
use crate::arch::{Arch, ArchSet};
use crate::inventory::fit::{self, Demand, Fit, Misfit};
use crate::inventory::node::is_extended_resource;
use crate::inventory::{Inventory, InventorySource, NodeInfo};
use crate::platforms::Lookup;
use crate::pod::{DisplayName, Pod, Toleration};

/// What the judgement found: a reason to deny (a warning in `warn` mode), and warnings.
#[derive(Debug, Default)]
pub(super) struct NodeFindings {
    pub(super) problem: Option<String>,
    pub(super) notes: Vec<String>,
}

/// The OS a pod runs on: its `spec.os`, else `windows` when every image whose platforms are
/// known has Windows builds and no Linux one, else `linux`.
pub(super) fn pod_os<'a>(pod: &'a Pod, images: &[ImageFacts<'_>]) -> &'a str {
    if let Some(os) = pod.spec.os.as_ref().filter(|o| !o.name.is_empty()) {
        return &os.name;
    }
    let mut found = images.iter().filter_map(|i| match &i.status {
        ImageStatus::Resolved(Lookup::Found(p)) => Some(p),
        _ => None,
    });
    let first = found.next();
    let windows_only = |p: &std::sync::Arc<crate::platforms::ImagePlatforms>| {
        p.linux_archs.is_empty() && p.platforms.iter().any(|pl| pl.os == "windows")
    };
    if first.is_some_and(windows_only) && found.all(windows_only) {
        "windows"
    } else {
        "linux"
    }
}

/// The nodes a decision judges: those of a node inventory (not the static one, which names no
/// node) and the policy's pools. `None` when there are none to judge.
fn nodes<'a>(
    policy: &'a Policy,
    inventory: &'a Inventory,
) -> Option<impl Iterator<Item = &'a NodeInfo> + Clone> {
    let watched = inventory.source == InventorySource::Nodes;
    (watched && !(inventory.nodes.is_empty() && policy.cluster.pools.is_empty()))
        .then(|| inventory.nodes.iter().chain(&policy.cluster.pools))
}

/// What a pod asks of a node on `os`, where its images run on `archs`, with archgate's own
/// additions (`selector`, `tolerations`).
pub(super) fn demand<'a>(
    pod: &'a Pod,
    os: &'a str,
    archs: ArchSet,
    images: &[ImageFacts<'a>],
    selector: &[(String, String)],
    tolerations: &[Toleration],
) -> Demand<'a> {
    let mut node_selector = pod.spec.node_selector.clone().unwrap_or_default();
    node_selector.extend(selector.iter().cloned());
    let mut all_tolerations = pod.spec.tolerations.clone().unwrap_or_default();
    all_tolerations.extend(tolerations.iter().cloned());
    let mut resources: Vec<&str> = Vec::new();
    for (_, c) in pod.scheduling_containers() {
        for r in c.requested_resources().filter(|r| is_extended_resource(r)) {
            if !resources.contains(&r) {
                resources.push(r);
            }
        }
    }
    let mut variants = Vec::new();
    let mut builds = Vec::new();
    for img in images {
        let ImageStatus::Resolved(Lookup::Found(p)) = &img.status else {
            continue;
        };
        for arch in archs.iter() {
            if let Some(v) = p.min_variant(os, arch) {
                variants.push((arch, v.to_string(), img.image));
            }
        }
        if os == "windows" {
            let b = p.windows_builds();
            if !b.is_empty() {
                builds.push((b, img.image));
            }
        }
    }
    Demand {
        os,
        archs,
        node_selector,
        terms: pod.required_terms(),
        tolerations: all_tolerations,
        resources,
        variants,
        builds,
    }
}

/// Judges `demand` against the cluster's nodes and pools; `arch` words why an architecture
/// is ruled out.
pub(super) fn judge<'a>(
    policy: &'a Policy,
    inventory: &'a Inventory,
    demand: &Demand<'_>,
    who: &DisplayName<'_>,
    arch: &dyn Fn(Arch) -> String,
) -> NodeFindings {
    let mut out = NodeFindings::default();
    let Some(nodes) = nodes(policy, inventory) else {
        return out;
    };
    let Fit {
        fits,
        held,
        misfits,
        unchecked,
    } = fit::judge(nodes, demand, |n| policy.cluster.variant_of(n));
    if fits.is_empty() && held.is_empty() {
        out.problem = Some(format!(
            "pod {who} cannot be scheduled on any node: {}. Change the pod's nodeSelector, affinity, tolerations or resources, or add a node (or a [[cluster.pools]] entry) that fits",
            fit::describe(&misfits, arch)
        ));
        return out;
    }
    if fits.is_empty() {
        out.notes.push(format!(
            "pod {who} fits only nodes that take no pods now: {}; it stays Pending until one does",
            fit::describe_held(&held)
        ));
    }
    let slow: Vec<(&NodeInfo, Misfit<'_>)> = misfits
        .into_iter()
        .filter(|(_, m)| matches!(m, Misfit::Variant { .. }))
        .collect();
    if !slow.is_empty() {
        out.notes.push(format!(
            "pod {who} may be scheduled on nodes whose CPUs cannot run it: {}; add a nodeSelector or node affinity for the CPUs it needs",
            fit::describe(&slow, arch)
        ));
    }
    if let Some((_, need)) = unchecked.first() {
        let names: Vec<&NodeInfo> = unchecked.iter().map(|(n, _)| *n).collect();
        out.notes.push(format!(
            "pod {who} has an image built for {need} only, and nothing says which CPU variant nodes {} have: label them with Node Feature Discovery or declare [cluster] variant_labels",
            super::explain::node_names(&names)
        ));
    }
    out
}

/// Whether a pod on another OS than linux is left alone: neither the nodes nor the pools have
/// that OS, so the policy (which places linux pods) has nothing to say about it.
pub(super) fn left_alone(policy: &Policy, inventory: &Inventory, os: &str) -> bool {
    nodes(policy, inventory).is_none_or(|mut n| !n.any(|n| n.os == os))
}

/// Why nodes of `arch` are ruled out for a linux pod: the first image without a build for it,
/// else the rule, a GPU vendor, or the pod's own constraints.
pub(super) fn arch_reason(
    arch: Arch,
    os: &str,
    images: &[ImageFacts<'_>],
    compat: bool,
    rule: Option<&Rule>,
    vendors: &[(&str, &GpuVendor)],
    demanded: ArchSet,
) -> String {
    let lacking: Vec<&str> = images
        .iter()
        .filter(|i| match &i.status {
            ImageStatus::Resolved(Lookup::Found(p)) => {
                let archs = if os == "linux" {
                    p.archs(compat)
                } else {
                    p.archs_on(os)
                };
                !archs.contains(arch)
            }
            _ => false,
        })
        .map(|i| i.image)
        .collect();
    let os_arch = if os == "linux" {
        arch.to_string()
    } else {
        format!("{os}/{arch}")
    };
    match lacking.as_slice() {
        [one] => return format!("the image {one} has no {os_arch} build"),
        [_, ..] => return format!("the images {} have no {os_arch} build", lacking.join(", ")),
        [] => {}
    }
    if let Some(r) = rule.filter(|r| r.architectures.is_some_and(|a| !a.contains(arch))) {
        return format!(
            "policy rule \"{}\" allows {}",
            r.name,
            r.architectures.unwrap_or_default()
        );
    }
    if let Some((resource, v)) = vendors
        .iter()
        .find(|(_, v)| !v.architectures.contains(arch))
    {
        return format!(
            "{resource} ({} GPUs) is on {} nodes",
            v.name, v.architectures
        );
    }
    if !demanded.contains(arch) {
        return format!("the pod's nodeSelector/affinity allows {demanded}");
    }
    "the pod's images cannot run there".to_string()
}
