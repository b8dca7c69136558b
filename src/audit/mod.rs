//! The live-cluster audit as a pure function: nodes, pods, workloads, image lookups and the
//! policy's decisions in, one [`Finding`] per object out. No I/O: `archgate audit` and the
//! misplaced-pods gauge of `archgate serve` ([`live`]) gather the facts and call in here.

pub mod live;
pub mod model;
pub mod owners;

#[cfg(test)]
mod tests;

use crate::arch::ArchSet;
use crate::inventory::{placement, NodeInfo};
use crate::platforms::ImagePlatforms;
use crate::pod::{Pod, Toleration};
pub use model::*;
use owners::Owners;
use std::collections::{BTreeMap, BTreeSet};

/// Every finding, in report order: by kind (most serious first), then namespace and name.
pub fn audit(input: &Input) -> Vec<Finding> {
    let owners = Owners::new(input.workloads);
    let users = users(input, &owners);
    let mut findings = Vec::new();
    for pod in input.pods {
        if let Some(m) = misplaced(input, &owners, pod) {
            findings.push(Finding::Misplaced(m));
        }
    }
    for w in input.workloads.iter().filter(|w| w.owner.is_none()) {
        let resolved = w.images.iter().all(|i| resolved(input, i).is_some());
        if !resolved {
            // A decision about an image archgate cannot see would be a guess: the image is
            // reported as unresolved instead.
            continue;
        }
        findings.extend(decided(w));
        findings.extend(narrower(input, w).map(Finding::Narrower));
    }
    let mut seen = BTreeSet::new();
    for facts in input.images.values() {
        if !seen.insert(facts.reference.as_str()) {
            continue;
        }
        let used_by: Vec<String> = users
            .get(facts.reference.as_str())
            .map(|u| u.iter().cloned().collect())
            .unwrap_or_default();
        findings.extend(image_finding(input, facts, used_by));
    }
    findings.sort_by(|a, b| {
        (a.kind(), a.object().0, a.object().1).cmp(&(b.kind(), b.object().0, b.object().1))
    });
    findings
}

/// Whether an image with `platforms` runs on `node`: its linux architectures (or those it runs
/// on by compatible execution, when the policy allows it) for a linux node, an exact
/// os/architecture platform otherwise.
pub fn runs_on(platforms: &ImagePlatforms, node: &NodeInfo, compatible_execution: bool) -> bool {
    match node.arch {
        Some(arch) if node.os == "linux" => {
            // A node that declares a CPU variant (Node Feature Discovery) below what every
            // build of the image needs fails too, with an illegal instruction.
            let variant_ok = match (platforms.min_variant("linux", arch), &node.variant) {
                (Some(need), Some(has)) => crate::image::runs_variant(has, need) != Some(false),
                _ => true,
            };
            platforms.archs(compatible_execution).contains(arch) && variant_ok
        }
        _ => platforms
            .platforms
            .iter()
            .any(|p| p.os == node.os && p.architecture == node.arch_label),
    }
}

/// The images of a pod bound to `node` that cannot run there; empty when every image that is
/// known runs (an unknown image is never held against a pod).
pub fn misfits<'a>(
    images: impl IntoIterator<Item = (&'a str, Option<&'a ImagePlatforms>)>,
    node: &NodeInfo,
    compatible_execution: bool,
) -> Vec<&'a str> {
    images
        .into_iter()
        .filter(|(_, p)| p.is_some_and(|p| !runs_on(p, node, compatible_execution)))
        .map(|(image, _)| image)
        .collect()
}

fn resolved<'a>(input: &'a Input, image: &str) -> Option<&'a ImagePlatforms> {
    match &input.images.get(image)?.status {
        ImageStatus::Resolved(p) => Some(p),
        ImageStatus::Unresolved { .. } => None,
    }
}

fn reference<'a>(input: &'a Input, image: &'a str) -> &'a str {
    input
        .images
        .get(image)
        .map_or(image, |f| f.reference.as_str())
}

/// Image reference -> the workloads using it, as `namespace/Kind/name`.
fn users<'a>(input: &'a Input, owners: &Owners) -> BTreeMap<&'a str, BTreeSet<String>> {
    let mut users: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for w in input.workloads.iter().filter(|w| w.owner.is_none()) {
        for image in &w.images {
            let name = format!("{}/{}/{}", w.namespace, w.kind, w.name);
            users
                .entry(reference(input, image))
                .or_default()
                .insert(name);
        }
    }
    for pod in input.pods {
        let top = owners.top(&pod.namespace, pod.owner.as_ref());
        let name = match &top {
            Some(o) => format!("{}/{o}", pod.namespace),
            None => format!("{}/Pod/{}", pod.namespace, pod.name),
        };
        for image in &pod.images {
            users
                .entry(reference(input, image))
                .or_default()
                .insert(name.clone());
        }
    }
    users
}

fn misplaced(input: &Input, owners: &Owners, pod: &PodFacts) -> Option<Misplaced> {
    // A pod that completed has shown it runs where it ran.
    if pod.phase == "Succeeded" {
        return None;
    }
    let node = input.inventory.node(pod.node.as_deref()?)?;
    let known = pod.images.iter().map(|i| (i.as_str(), resolved(input, i)));
    if misfits(known, node, input.compatible_execution).is_empty() {
        return None;
    }
    let images = pod
        .images
        .iter()
        .map(|i| {
            let p = resolved(input, i);
            ImageOnNode {
                image: i.clone(),
                platforms: p.map(platform_names).unwrap_or_default(),
                runs_on_node: p.map(|p| runs_on(p, node, input.compatible_execution)),
            }
        })
        .collect();
    Some(Misplaced {
        namespace: pod.namespace.clone(),
        name: pod.name.clone(),
        object_kind: "Pod",
        owner: owners
            .top(&pod.namespace, pod.owner.as_ref())
            .map(|o| o.to_string()),
        node: node.name.clone(),
        node_architecture: node.arch_label.clone(),
        node_os: node.os.clone(),
        images,
        crash_looping: pod.crash_looping,
        restarts: pod.restarts,
        phase: pod.phase.clone(),
    })
}

fn platform_names(p: &ImagePlatforms) -> Vec<String> {
    p.platforms.iter().map(ToString::to_string).collect()
}

fn decided(w: &WorkloadFacts) -> Option<Finding> {
    let d = w.decision.as_ref()?;
    let finding = WouldAdmit {
        namespace: w.namespace.clone(),
        name: w.name.clone(),
        object_kind: w.kind.clone(),
        rule: d.rule.clone(),
        architectures: d.architectures.clone(),
        patch_target: d.patch_target,
        patch: d.patch.clone(),
        messages: d.messages.clone(),
        warnings: d.warnings.clone(),
    };
    if d.denied {
        Some(Finding::WouldDeny(finding))
    } else if d.patched {
        Some(Finding::WouldPatch(finding))
    } else {
        None
    }
}

/// A workload whose nodeSelector and affinity leave out architectures that its images, the
/// cluster and the extended resources it asks for (GPUs) would all allow.
fn narrower(input: &Input, w: &WorkloadFacts) -> Option<Narrower> {
    let template = w.template.as_ref()?;
    let mut images = ArchSet::ALL;
    for image in &w.images {
        images = images.intersect(resolved(input, image)?.archs(input.compatible_execution));
    }
    let wanted: Vec<&str> = template
        .scheduling_containers()
        .flat_map(|(_, c)| c.requested_resources())
        .collect();
    // Nodes that have what it asks for, whatever its selectors say.
    let capable = archs_of(input.inventory.nodes.iter().filter(|n| {
        wanted
            .iter()
            .all(|r| n.extended_resources.iter().any(|e| e == r))
    }));
    let possible = capable.intersect(images);
    // Taints are the nodes' choice, not the workload's pin: tolerate them all to see the pin.
    let mut pinned_pod: Pod = template.clone();
    pinned_pod.spec.tolerations = Some(vec![Toleration {
        operator: Some("Exists".into()),
        ..Toleration::default()
    }]);
    let pinned = archs_of(
        placement::eligible_nodes(input.inventory, &pinned_pod)
            .into_iter()
            .filter(|n| !n.unschedulable),
    );
    let more = possible.minus(pinned);
    // A pin that leaves no node its images run on is a broken workload, not a narrow one: the
    // misplaced and would-deny findings report it.
    if pinned.intersect(possible).is_empty() || more.is_empty() {
        return None;
    }
    let names = |s: ArchSet| s.names().into_iter().map(String::from).collect();
    Some(Narrower {
        namespace: w.namespace.clone(),
        name: w.name.clone(),
        object_kind: w.kind.clone(),
        pinned_to: names(pinned),
        images_run_on: names(possible),
        could_also_run_on: names(more),
    })
}

fn archs_of<'a>(nodes: impl Iterator<Item = &'a NodeInfo>) -> ArchSet {
    nodes
        .filter(|n| n.os == "linux")
        .filter_map(|n| n.arch)
        .collect()
}

fn image_finding(input: &Input, facts: &ImageFacts, used_by: Vec<String>) -> Option<Finding> {
    match &facts.status {
        ImageStatus::Unresolved { reason, transient } => Some(Finding::Unresolved(Unresolved {
            namespace: String::new(),
            name: facts.reference.clone(),
            reason: reason.clone(),
            transient: *transient,
            workloads: used_by.len(),
            used_by,
        })),
        ImageStatus::Resolved(p) => {
            let missing = input
                .inventory
                .archs
                .minus(p.archs(input.compatible_execution));
            if missing.is_empty() {
                return None;
            }
            Some(Finding::MissingArch(MissingArch {
                namespace: String::new(),
                name: facts.reference.clone(),
                platforms: platform_names(p),
                missing: missing.names().into_iter().map(String::from).collect(),
                workloads: used_by.len(),
                used_by,
            }))
        }
    }
}
