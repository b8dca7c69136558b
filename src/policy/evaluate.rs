//! The decision: a pure function from a pod, its images' platforms and the policy to a verdict.
//!
//! The same function answers `/mutate` and `/validate` (and the offline commands). A mode acts at
//! one stage: `mutate` patches at the mutating stage, `validate` and `warn` judge at the validating
//! stage. A `mutate` pod that reaches validation unplaced (the mutating webhook was skipped) is
//! denied there, so a failed-open mutating webhook cannot let a pod through unchecked.

use super::arch::{Arch, ArchSet};
use super::model::{Mode, UnknownImages};
use super::{GpuVendor, Policy};
use crate::inventory::Inventory;
use crate::platforms::{ImagePlatforms, Lookup};
use crate::pod::{ContainerKind, Pod, Toleration};
use std::fmt::Write;

/// The annotation that records archgate's decision on a pod.
pub const ARCH_ANNOTATION: &str = "archgate.io/architectures";
/// The node label the scheduler matches architectures on.
pub const ARCH_LABEL: &str = "kubernetes.io/arch";
const BETA_ARCH_LABEL: &str = "beta.kubernetes.io/arch";

/// Which admission stage is asking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Mutate,
    Validate,
}

/// One container's image and what the platform source said about it.
#[derive(Debug, Clone)]
pub struct ImageFacts<'a> {
    pub container: &'a str,
    pub kind: ContainerKind,
    pub image: &'a str,
    pub status: ImageStatus,
}

#[derive(Debug, Clone)]
pub enum ImageStatus {
    Resolved(Lookup),
    /// The reference itself is malformed; the message says how.
    Invalid(String),
}

/// What to add to the pod; the patch builder turns it into JSON Patch operations.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Mutation {
    /// Append `kubernetes.io/arch In [...]` to every required node selector term.
    pub require_archs: Option<ArchSet>,
    /// Entries to add to `spec.nodeSelector`.
    pub node_selector: Vec<(String, String)>,
    /// Tolerations to append.
    pub tolerations: Vec<Toleration>,
    /// New value of the [`ARCH_ANNOTATION`] annotation, when it differs from the pod's.
    pub annotation: Option<String>,
}

impl Mutation {
    pub fn is_empty(&self) -> bool {
        self.require_archs.is_none()
            && self.node_selector.is_empty()
            && self.tolerations.is_empty()
            && self.annotation.is_none()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Allow,
    Patch(Mutation),
    Deny(String),
}

/// The outcome of evaluating one pod at one stage.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub verdict: Verdict,
    pub mode: Mode,
    /// The rule that matched, if any.
    pub rule: Option<String>,
    /// Architectures that can run every image and satisfy the pod, policy and cluster.
    pub architectures: ArchSet,
    pub warnings: Vec<String>,
}

impl Decision {
    /// "allow", "patch", "deny" or "warn", as metrics, logs and `check` report it.
    pub fn label(&self) -> &'static str {
        match &self.verdict {
            Verdict::Deny(_) => "deny",
            Verdict::Patch(_) => "patch",
            Verdict::Allow if !self.warnings.is_empty() => "warn",
            Verdict::Allow => "allow",
        }
    }
}

/// Decides for a pod in `namespace` whose scheduling containers' images are `images`.
pub fn evaluate(
    policy: &Policy,
    inventory: &Inventory,
    pod: &Pod,
    namespace: &str,
    images: &[ImageFacts<'_>],
    stage: Stage,
) -> Decision {
    let rule = policy.rule_for(namespace, pod.labels());
    let mode = rule.and_then(|r| r.mode).unwrap_or(policy.default_mode);
    let decision = |verdict, architectures, warnings| Decision {
        verdict,
        mode,
        rule: rule.map(|r| r.name.clone()),
        architectures,
        warnings,
    };
    let acting = match (mode, stage) {
        (Mode::Off, _) | (Mode::Validate | Mode::Warn, Stage::Mutate) => {
            return decision(Verdict::Allow, ArchSet::EMPTY, Vec::new())
        }
        (Mode::Mutate, Stage::Mutate) | (Mode::Validate | Mode::Warn, Stage::Validate) => true,
        (Mode::Mutate, Stage::Validate) => false,
    };
    let unknown_images = rule
        .and_then(|r| r.unknown_images)
        .unwrap_or(policy.default_unknown_images);
    let who = pod.display_name(namespace);

    let mut problems = Vec::new();
    let mut notes = Vec::new();
    let mut supported = ArchSet::ALL;
    for img in images {
        match &img.status {
            ImageStatus::Resolved(Lookup::Found(p)) => {
                supported = supported.intersect(p.linux_archs)
            }
            ImageStatus::Resolved(Lookup::NotFound) => {
                let msg = format!(
                    "platforms of image {} ({} \"{}\") are unknown",
                    img.image,
                    img.kind.as_str(),
                    img.container
                );
                match unknown_images {
                    UnknownImages::Allow => {}
                    UnknownImages::Warn => {
                        notes.push(format!("{msg}; it is placed by its other images"))
                    }
                    UnknownImages::Deny => {
                        problems.push(format!("{msg}; add it to the platforms source"))
                    }
                }
            }
            ImageStatus::Resolved(Lookup::Failed(why)) => {
                let msg = format!(
                    "platforms of image {} could not be looked up: {why}",
                    img.image
                );
                match unknown_images {
                    UnknownImages::Deny => problems.push(msg),
                    _ => notes.push(msg),
                }
            }
            ImageStatus::Invalid(why) => problems.push(format!(
                "{} \"{}\": {why}",
                img.kind.as_str(),
                img.container
            )),
        }
    }

    let rule_archs = rule.and_then(|r| r.architectures).unwrap_or(ArchSet::ALL);
    let vendors = requested_vendors(policy, pod);
    let gpu_archs = vendors
        .iter()
        .fold(ArchSet::ALL, |s, (_, v)| s.intersect(v.architectures));
    let demanded = demanded_archs(pod);
    let candidates = supported
        .intersect(inventory.archs)
        .intersect(rule_archs)
        .intersect(gpu_archs)
        .intersect(demanded);

    if candidates.is_empty() {
        let mut why = format!("pod {who} cannot run on any node:");
        describe_images(&mut why, images, ArchSet::ALL);
        let mut limits = vec![format!("the cluster has {}", inventory.archs)];
        if demanded != ArchSet::ALL {
            limits.push(format!("the pod's nodeSelector/affinity allows {demanded}"));
        }
        if let Some(r) = rule.filter(|r| r.architectures.is_some()) {
            limits.push(format!("policy rule \"{}\" allows {rule_archs}", r.name));
        }
        for (resource, v) in &vendors {
            limits.push(format!(
                "{resource} ({} GPUs) is on {} nodes",
                v.name, v.architectures
            ));
        }
        let _ = write!(
            why,
            "; {}. Build the images for a common architecture or relax the pod's node constraints",
            limits.join("; ")
        );
        problems.push(why);
    }

    // What the pod lacks to be kept off nodes that cannot run it.
    let mut gpu_selector = Vec::new();
    let mut gpu_tolerations: Vec<Toleration> = Vec::new();
    let pod_selector = pod.spec.node_selector.as_ref();
    for (resource, vendor) in &vendors {
        for (k, v) in &vendor.node_selector {
            match pod_selector.and_then(|s| s.get(k)) {
                Some(have) if have == v => {}
                Some(have) => problems.push(format!(
                    "pod {who} requests {resource} but its nodeSelector {k}={have} contradicts the {} GPU nodes' {k}={v}",
                    vendor.name
                )),
                None => gpu_selector.push((k.clone(), v.clone())),
            }
        }
        for t in &vendor.tolerations {
            let have = pod
                .spec
                .tolerations
                .iter()
                .flatten()
                .chain(&gpu_tolerations);
            if !have.into_iter().any(|h| h.covers(t)) {
                gpu_tolerations.push(t.clone());
            }
        }
    }
    let reachable = inventory.archs.intersect(demanded);
    let needs_archs = !candidates.is_empty() && !reachable.is_subset(candidates);
    let bound = pod.is_bound();
    if bound && needs_archs {
        // A bound pod is judged where it runs, which the node inventory knows; here we only warn.
        notes.push(format!(
            "pod {who} is bound to its node; it can run only on {candidates} nodes"
        ));
    }
    let needs_archs = needs_archs && !bound;
    let needs_gpu = !bound && (!gpu_selector.is_empty() || !gpu_tolerations.is_empty());

    if mode == Mode::Mutate && acting {
        if !problems.is_empty() {
            return decision(Verdict::Deny(deny_message(&problems)), candidates, notes);
        }
        let annotation = candidates.names().join(",");
        let mutation = Mutation {
            require_archs: needs_archs.then_some(candidates),
            node_selector: if needs_gpu { gpu_selector } else { Vec::new() },
            tolerations: if needs_gpu {
                gpu_tolerations
            } else {
                Vec::new()
            },
            annotation: (pod.annotation(ARCH_ANNOTATION) != Some(annotation.as_str()) && !bound)
                .then_some(annotation),
        };
        let verdict = if mutation.is_empty() {
            Verdict::Allow
        } else {
            Verdict::Patch(mutation)
        };
        return decision(verdict, candidates, notes);
    }

    if needs_archs {
        let mut why = format!(
            "pod {who} can be scheduled on {} nodes, which cannot run it:",
            reachable.minus(candidates)
        );
        describe_images(&mut why, images, reachable.minus(candidates));
        let names = candidates.names();
        let _ = write!(
            why,
            "; add nodeSelector {ARCH_LABEL}: {} or required node affinity {ARCH_LABEL} In [{}]",
            names.first().copied().unwrap_or_default(),
            names.join(", ")
        );
        problems.push(why);
    }
    if needs_gpu {
        let mut missing: Vec<String> = gpu_selector
            .iter()
            .map(|(k, v)| format!("nodeSelector {k}={v}"))
            .collect();
        missing.extend(
            gpu_tolerations
                .iter()
                .map(|t| format!("toleration {}", describe_toleration(t))),
        );
        problems.push(format!(
            "pod {who} requests a GPU but lacks {}",
            missing.join(" and ")
        ));
    }
    if !acting {
        if problems.is_empty() {
            return decision(Verdict::Allow, candidates, Vec::new());
        }
        let msg = format!("{} (archgate's mutating webhook did not place this pod: check that it is installed and running)", deny_message(&problems));
        return decision(Verdict::Deny(msg), candidates, Vec::new());
    }
    match mode {
        Mode::Validate if !problems.is_empty() => {
            decision(Verdict::Deny(deny_message(&problems)), candidates, notes)
        }
        _ => {
            problems.extend(notes);
            decision(Verdict::Allow, candidates, problems)
        }
    }
}

fn deny_message(problems: &[String]) -> String {
    format!("archgate: {}", problems.join("; "))
}

/// Appends " image X (container "c") is built for linux/amd64" for every image that cannot run on
/// some architecture of `lacking` (all images with known platforms when `lacking` is ALL).
fn describe_images(out: &mut String, images: &[ImageFacts<'_>], lacking: ArchSet) {
    let mut first = true;
    for img in images {
        if let ImageStatus::Resolved(Lookup::Found(p)) = &img.status {
            if lacking != ArchSet::ALL && lacking.is_subset(p.linux_archs) {
                continue;
            }
            let sep = if first { " " } else { "; " };
            first = false;
            let _ = write!(
                out,
                "{sep}image {} ({} \"{}\") is built for {}",
                img.image,
                img.kind.as_str(),
                img.container,
                platforms_text(p)
            );
        }
    }
}

fn platforms_text(p: &ImagePlatforms) -> String {
    if p.platforms.is_empty() {
        "no platform".to_string()
    } else {
        p.describe()
    }
}

fn describe_toleration(t: &Toleration) -> String {
    let part = |o: &Option<String>| o.clone().unwrap_or_default();
    format!(
        "{}:{}:{}",
        part(&t.key),
        t.operator.clone().unwrap_or_else(|| "Equal".into()),
        part(&t.effect)
    )
}

/// GPU vendors the pod's scheduling containers ask for, with the resource that selected each.
fn requested_vendors<'p>(policy: &'p Policy, pod: &'p Pod) -> Vec<(&'p str, &'p GpuVendor)> {
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

fn requirement_archs(operator: &str, values: &[String]) -> ArchSet {
    let listed: ArchSet = values.iter().filter_map(|v| Arch::from_name(v)).collect();
    match operator {
        "In" => listed,
        "NotIn" => ArchSet::ALL.minus(listed),
        "DoesNotExist" => ArchSet::EMPTY,
        _ => ArchSet::ALL,
    }
}
