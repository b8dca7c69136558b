//! Whether a node can take a pod that is not yet bound, and if not, why: the static parts of
//! kube-scheduler's filters (NodeUnschedulable, NodeAffinity, TaintToleration, and
//! NodeResourcesFit for extended resources no node offers) beside archgate's own (OS,
//! architecture, CPU variant, Windows build), as a pure function over the nodes.
//!
//! Conditions that pass by themselves (a cordon, a node not ready) hold a node rather than rule
//! it out: a pod that fits only such nodes waits, it is not refused.

use super::placement::{term_matches, tolerated};
use super::{NodeInfo, Taint};
use crate::arch::{Arch, ArchSet};
use crate::image::runs_variant;
use crate::pod::{NodeSelectorTerm, Toleration};
use std::collections::BTreeMap;
use std::fmt::Write;

/// What a pod asks of a node, with what archgate adds to it (GPU selector, tolerations).
#[derive(Debug, Clone, Default)]
pub struct Demand<'a> {
    /// The OS the pod runs on: `linux`, `windows`.
    pub os: &'a str,
    /// The architectures that can run every image, within the pod's, policy's and GPU limits.
    pub archs: ArchSet,
    /// The pod's nodeSelector plus the GPU vendor's labels archgate would add.
    pub node_selector: BTreeMap<String, String>,
    /// Required node affinity terms (ORed); empty for none.
    pub terms: &'a [NodeSelectorTerm],
    /// The pod's tolerations plus the GPU vendor's ones archgate would add.
    pub tolerations: Vec<Toleration>,
    /// Extended resources the pod requests.
    pub resources: Vec<&'a str>,
    /// Per architecture, the lowest CPU variant an image needs, and the image.
    pub variants: Vec<(Arch, String, &'a str)>,
    /// Windows builds (`os.version`s) an image was built for, and the image; none for an
    /// image that names no build.
    pub builds: Vec<(Vec<String>, &'a str)>,
}

/// Why a node cannot take the pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Misfit<'a> {
    /// The node runs another OS.
    Os(&'a str),
    /// The node's architecture is not among the demand's (`None`: a label archgate does not know).
    Arch(Option<Arch>),
    /// The node lacks a `nodeSelector` label.
    Label {
        /// The selector's key.
        key: &'a str,
        /// The value the selector wants.
        value: &'a str,
    },
    /// No required node affinity term matches.
    Affinity,
    /// The node has a taint the pod does not tolerate (not a condition taint: those hold).
    Taint(&'a Taint),
    /// The node does not offer an extended resource the pod requests (given).
    Resource(&'a str),
    /// The node's CPU variant is lower than an image needs.
    Variant {
        /// The node's `arch/variant`, e.g. `amd64/v2`.
        has: String,
        /// The `arch/variant` the image needs, e.g. `amd64/v3`.
        need: String,
        /// The image that needs it.
        image: &'a str,
    },
    /// The node's Windows build is not one the image was built for.
    Build {
        /// The node's `node.kubernetes.io/windows-build`, e.g. `10.0.17763`.
        has: &'a str,
        /// The image built for other builds.
        image: &'a str,
    },
}

/// Why a node that fits cannot take the pod right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hold<'a> {
    /// `spec.unschedulable`: an operator cordoned the node, and may uncordon it.
    Cordoned,
    /// A taint the node lifecycle controller sets and lifts (`node.kubernetes.io/not-ready`).
    Condition(&'a Taint),
}

/// The nodes judged.
#[derive(Debug, Default)]
pub struct Fit<'a> {
    /// Nodes that can take the pod now; judging may stop at the first.
    pub fits: Vec<&'a NodeInfo>,
    /// Nodes that fit but cannot take it now, and why: the pod would wait for them.
    pub held: Vec<(&'a NodeInfo, Hold<'a>)>,
    /// Nodes that can never take it as it stands, each with the first reason found.
    pub misfits: Vec<(&'a NodeInfo, Misfit<'a>)>,
    /// Fitting nodes whose CPU variant nothing declares while an image needs one above the
    /// architecture's baseline: counted as fits, and said.
    pub unchecked: Vec<(&'a NodeInfo, String)>,
}

/// The variant a node of `arch` is taken to have when nothing declares one: x86-64 v1, 32-bit
/// arm v7 (what `linux/arm` means), arm64 v8.
fn baseline(arch: Arch) -> &'static str {
    match arch {
        Arch::Arm => "v7",
        Arch::Arm64 => "v8",
        _ => "v1",
    }
}

/// Judges the nodes, up to the first that fits when no CPU variant is in question (`fits`
/// then holds that one); `variant_of` says which CPU variant a node declares.
pub fn judge<'a>(
    nodes: impl IntoIterator<Item = &'a NodeInfo>,
    demand: &'a Demand<'_>,
    variant_of: impl Fn(&'a NodeInfo) -> Option<&'a str>,
) -> Fit<'a> {
    let mut fit = Fit::default();
    for node in nodes {
        match misfit(node, demand, &variant_of) {
            Err(m) => fit.misfits.push((node, m)),
            Ok(unchecked) => {
                if let Some(need) = unchecked {
                    fit.unchecked.push((node, need));
                }
                match hold(node, demand) {
                    Some(h) => fit.held.push((node, h)),
                    None => fit.fits.push(node),
                }
                // One fitting node settles it unless CPU variants are in question, whose
                // warnings name every node: a big cluster is not scanned per pod.
                if !fit.fits.is_empty() && demand.variants.is_empty() {
                    return fit;
                }
            }
        }
    }
    fit
}

/// The first reason `node` cannot take the pod, in the order users fix them: what the images
/// need of the node's OS and architecture, what the pod asks, then the CPU. `Ok(Some(variant))`
/// when it fits but the variant the images need could not be checked.
fn misfit<'a>(
    node: &'a NodeInfo,
    demand: &'a Demand<'_>,
    variant_of: &impl Fn(&'a NodeInfo) -> Option<&'a str>,
) -> Result<Option<String>, Misfit<'a>> {
    if node.os != demand.os {
        return Err(Misfit::Os(&node.os));
    }
    if !node.arch.is_some_and(|a| demand.archs.contains(a)) {
        return Err(Misfit::Arch(node.arch));
    }
    if let Some((key, value)) = demand
        .node_selector
        .iter()
        .find(|(k, v)| node.labels.get(*k) != Some(*v))
    {
        return Err(Misfit::Label { key, value });
    }
    if !demand.terms.is_empty() && !demand.terms.iter().any(|t| term_matches(t, node)) {
        return Err(Misfit::Affinity);
    }
    if let Some(t) = node
        .taints
        .iter()
        .find(|t| !is_condition(t) && !tolerated(t, &demand.tolerations, false))
    {
        return Err(Misfit::Taint(t));
    }
    if let Some(r) = demand
        .resources
        .iter()
        .find(|r| !node.extended_resources.iter().any(|e| e == *r))
    {
        return Err(Misfit::Resource(r));
    }
    cpu_misfit(node, demand, variant_of)
}

/// Whether the node's OS, architecture, CPU variant and Windows build run the images, whatever
/// the pod asks: for pods already bound to their node. A variant nothing declares passes.
pub fn runs_images<'a>(
    node: &'a NodeInfo,
    demand: &'a Demand<'_>,
    variant_of: impl Fn(&'a NodeInfo) -> Option<&'a str>,
) -> bool {
    node.os == demand.os
        && node.arch.is_some_and(|a| demand.archs.contains(a))
        && cpu_misfit(node, demand, &variant_of).is_ok()
}

/// The Windows build and CPU variant checks.
fn cpu_misfit<'a>(
    node: &'a NodeInfo,
    demand: &'a Demand<'_>,
    variant_of: &impl Fn(&'a NodeInfo) -> Option<&'a str>,
) -> Result<Option<String>, Misfit<'a>> {
    if let Some((_, image)) = demand.builds.iter().find(|(builds, _)| {
        node.windows_build().is_some_and(|b| {
            !builds
                .iter()
                .any(|v| v == b || v.starts_with(&format!("{b}.")))
        })
    }) {
        return Err(Misfit::Build {
            has: node.windows_build().unwrap_or_default(),
            image,
        });
    }
    let mut unchecked = None;
    for (arch, need, image) in demand
        .variants
        .iter()
        .filter(|(a, _, _)| node.arch == Some(*a))
    {
        match variant_of(node) {
            Some(has) if runs_variant(has, need) == Some(false) => {
                return Err(Misfit::Variant {
                    has: format!("{arch}/{has}"),
                    need: format!("{arch}/{need}"),
                    image,
                });
            }
            Some(_) => {}
            None if runs_variant(baseline(*arch), need) == Some(false) => {
                unchecked = Some(format!("{arch}/{need}"));
            }
            None => {}
        }
    }
    Ok(unchecked)
}

/// Node lifecycle taints: they come and go with the node's conditions.
fn is_condition(taint: &Taint) -> bool {
    taint.key.starts_with("node.kubernetes.io/")
        || taint.key == "node.cloudprovider.kubernetes.io/uninitialized"
}

fn hold<'a>(node: &'a NodeInfo, demand: &Demand<'_>) -> Option<Hold<'a>> {
    if node.unschedulable {
        return Some(Hold::Cordoned);
    }
    node.taints
        .iter()
        .find(|t| is_condition(t) && !tolerated(t, &demand.tolerations, false))
        .map(Hold::Condition)
}

/// "key=value:Effect", as `kubectl taint` writes it.
pub fn describe_taint(t: &Taint) -> String {
    match t.value.as_deref().filter(|v| !v.is_empty()) {
        Some(v) => format!("{}={v}:{}", t.key, t.effect),
        None => format!("{}:{}", t.key, t.effect),
    }
}

impl Misfit<'_> {
    /// How far the node got through the checks: among equally many nodes, the one that got
    /// furthest is the nearest miss.
    fn depth(&self) -> u8 {
        match self {
            Misfit::Os(_) => 0,
            Misfit::Arch(_) => 1,
            Misfit::Label { .. } => 2,
            Misfit::Affinity => 3,
            Misfit::Taint(_) => 4,
            Misfit::Resource(_) => 5,
            Misfit::Build { .. } => 6,
            Misfit::Variant { .. } => 7,
        }
    }

    /// What the message says about the nodes this keeps out; `arch` words an architecture
    /// the images or limits rule out.
    fn reason(&self, arch: &dyn Fn(Arch) -> String) -> String {
        match self {
            Misfit::Os(os) => format!("runs {os}"),
            Misfit::Arch(Some(a)) => arch(*a),
            Misfit::Arch(None) => "an architecture archgate does not know".to_string(),
            Misfit::Label { key, value } => format!("no label {key}={value}"),
            Misfit::Affinity => "outside the pod's required node affinity".to_string(),
            Misfit::Taint(t) => format!(
                "tainted {} (the pod does not tolerate it)",
                describe_taint(t)
            ),
            Misfit::Resource(r) => format!("no {r} to offer"),
            Misfit::Variant { has, need, image } => {
                format!("CPU {has}, the image {image} needs {need}")
            }
            Misfit::Build { has, image } => {
                format!("Windows build {has}, which the image {image} was not built for")
            }
        }
    }
}

/// The misfits grouped by reason, the reasons with fewest nodes first and, among those, the
/// nodes that got furthest (one node is named: the nearest miss): "elminster: tainted nvidia.com/gpu:NoSchedule (the pod does not tolerate
/// it); 5 arm64 nodes: the image x has no arm64 build; 8 nodes: no label gpu=true".
pub fn describe(misfits: &[(&NodeInfo, Misfit<'_>)], arch: &dyn Fn(Arch) -> String) -> String {
    // Grouped by the misfit itself, so a big cluster's nodes cost a comparison each, and the
    // words are written once per group.
    let mut groups: Vec<(&Misfit<'_>, &NodeInfo, usize)> = Vec::new();
    for (node, m) in misfits {
        match groups.iter_mut().find(|(g, _, _)| *g == m) {
            Some((_, _, count)) => *count += 1,
            None => groups.push((m, node, 1)),
        }
    }
    groups.sort_by_key(|(m, _, count)| (*count, std::cmp::Reverse(m.depth())));
    let mut out = String::new();
    for (m, first, count) in groups {
        let sep = if out.is_empty() { "" } else { "; " };
        let reason = m.reason(arch);
        let _ = match (count, m) {
            (1, _) => write!(out, "{sep}{}: {reason}", first.name),
            (_, Misfit::Arch(Some(a))) => write!(out, "{sep}{count} {a} nodes: {reason}"),
            _ => write!(out, "{sep}{count} nodes: {reason}"),
        };
    }
    out
}

/// "mirt (cordoned), volo (node.kubernetes.io/not-ready:NoSchedule)".
pub fn describe_held(held: &[(&NodeInfo, Hold<'_>)]) -> String {
    let parts: Vec<String> = held
        .iter()
        .map(|(n, h)| match h {
            Hold::Cordoned => format!("{} (cordoned)", n.name),
            Hold::Condition(t) => format!("{} ({})", n.name, describe_taint(t)),
        })
        .collect();
    parts.join(", ")
}

#[cfg(test)]
#[path = "fit_tests.rs"]
mod tests;
