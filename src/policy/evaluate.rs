//! The decision: a pure function from a pod, its images' platforms, the cluster inventory and the
//! policy to a verdict.
//!
//! The same function answers `/mutate` and `/validate` (and the offline commands). A mode acts at
//! one stage: `mutate` patches at the mutating stage, `validate` and `warn` judge at the validating
//! stage. A `mutate` pod that reaches validation unplaced (the mutating webhook was skipped) is
//! denied there, so a failed-open mutating webhook cannot let a pod through unchecked.

use super::demands::{bound_problem, gpu_needs, missing_preferences, requested_vendors};
use super::explain::{describe_images, describe_toleration};
use super::model::{Mode, UnknownImages};
use super::nodes;
use super::{gate, Policy, Preference, Rule};
use crate::arch::ArchSet;
use crate::inventory::Inventory;
use crate::namespace::Namespace;
use crate::platforms::Lookup;
use crate::pod::{ContainerKind, Pod, Toleration};

pub use super::demands::demanded_archs;
pub use super::ephemeral::evaluate_ephemeral;
pub use super::outcome::Outcome;

/// The annotation that records archgate's decision on a pod.
pub const ARCH_ANNOTATION: &str = "archgate.io/architectures";
/// The node label the scheduler matches architectures on.
pub const ARCH_LABEL: &str = "kubernetes.io/arch";

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
    /// Preferred node affinity terms to add (weight, architectures).
    pub prefer: Vec<Preference>,
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
            && self.prefer.is_empty()
            && self.node_selector.is_empty()
            && self.tolerations.is_empty()
            && self.annotation.is_none()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Allow,
    Patch(Mutation),
    /// Admit the pod behind archgate's scheduling gate: some image lookups did not finish in
    /// time, and the placement controller places it when they do. The text says which and why.
    Gate(String),
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
    /// The outcome this decision is reported as.
    pub fn outcome(&self) -> Outcome {
        match &self.verdict {
            Verdict::Deny(_) => Outcome::Deny,
            Verdict::Patch(_) => Outcome::Patch,
            Verdict::Gate(_) => Outcome::Gate,
            Verdict::Allow if !self.warnings.is_empty() => Outcome::Warn,
            Verdict::Allow => Outcome::Allow,
        }
    }
}

/// Deny reasons and warnings collected while evaluating.
#[derive(Default)]
pub(super) struct Findings {
    /// Reasons to deny (warnings in `warn` mode).
    pub(super) problems: Vec<String>,
    /// Always warnings.
    pub(super) notes: Vec<String>,
}

/// Decides for a pod in `namespace` (its labels matter to rules with a `namespace_selector`) whose scheduling containers' images are `images`.
pub fn evaluate(
    policy: &Policy,
    inventory: &Inventory,
    pod: &Pod,
    namespace: &Namespace,
    images: &[ImageFacts<'_>],
    stage: Stage,
) -> Decision {
    let (rule, mode) = rule_and_mode(policy, pod, namespace);
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
    // The mutating stage already placed (or gated) this pod; a lookup that finished since must
    // not turn its answer around. Only pods the mutating webhook never saw are judged again.
    if mode == Mode::Mutate
        && stage == Stage::Validate
        && (pod.has_gate(gate::GATE) || pod.annotation(ARCH_ANNOTATION).is_some())
    {
        return decision(Verdict::Allow, ArchSet::EMPTY, Vec::new());
    }
    let who = pod.display_name(&namespace.name);
    let compat = policy.compatible_execution;
    let os = nodes::pod_os(pod, images);
    if os != "linux" {
        // The policy places linux pods; another OS's are judged only against nodes of theirs.
        if !acting || nodes::left_alone(policy, inventory, os) {
            return decision(Verdict::Allow, ArchSet::EMPTY, Vec::new());
        }
        let archs = images.iter().fold(ArchSet::ALL, |s, i| match &i.status {
            ImageStatus::Resolved(Lookup::Found(p)) => s.intersect(p.archs_on(os)),
            _ => s,
        });
        let demand = nodes::demand(pod, os, archs, images, &[], &[]);
        let arch = |a| nodes::arch_reason(a, os, images, compat, None, &[], ArchSet::ALL);
        let found = nodes::judge(policy, inventory, &demand, &who, &arch);
        return match found.problem {
            Some(p) if mode != Mode::Warn => {
                decision(Verdict::Deny(deny_message(&[p])), archs, found.notes)
            }
            p => decision(
                Verdict::Allow,
                archs,
                p.into_iter().chain(found.notes).collect(),
            ),
        };
    }
    let cluster_archs = inventory.archs.union(policy.cluster.pool_archs);
    let unknown = rule
        .and_then(|r| r.unknown_images)
        .unwrap_or(policy.default_unknown_images);
    let gating =
        acting && mode == Mode::Mutate && gate::applies(policy, pod, &namespace.name, images);

    let mut found = Findings::default();
    let supported = image_archs(images, unknown, gating, compat, &mut found);
    let rule_archs = rule.and_then(|r| r.architectures).unwrap_or(ArchSet::ALL);
    let vendors = requested_vendors(policy, pod);
    let gpu_archs = vendors
        .iter()
        .fold(ArchSet::ALL, |s, (_, v)| s.intersect(v.architectures));
    let demanded = demanded_archs(pod);
    let candidates = supported
        .intersect(cluster_archs)
        .intersect(rule_archs)
        .intersect(gpu_archs)
        .intersect(demanded);

    if candidates.is_empty() {
        let mut limits = vec![format!("the cluster has {cluster_archs}")];
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
        found.problems.push(format!(
            "pod {who} cannot run on any node: {}; {}. Build the images for a common architecture or relax the pod's node constraints",
            describe_images(images, ArchSet::ALL, cluster_archs, compat),
            limits.join("; ")
        ));
    }

    let (gpu_selector, gpu_tolerations) = gpu_needs(pod, &vendors, &who, &mut found.problems);
    let bound = pod.is_bound();
    if !bound && !candidates.is_empty() && acting && !gating {
        let demand = nodes::demand(pod, os, candidates, images, &gpu_selector, &gpu_tolerations);
        let arch = |a| nodes::arch_reason(a, os, images, compat, rule, &vendors, demanded);
        let judged = nodes::judge(policy, inventory, &demand, &who, &arch);
        found.problems.extend(judged.problem);
        found.notes.extend(judged.notes);
    }
    let reachable = cluster_archs.intersect(demanded);
    let needs_archs = !bound && !candidates.is_empty() && !reachable.is_subset(candidates);
    let needs_gpu = !bound && (!gpu_selector.is_empty() || !gpu_tolerations.is_empty());
    if bound && !candidates.is_empty() && !gating {
        if let Some(problem) = bound_problem(
            &policy.cluster,
            inventory,
            pod,
            images,
            supported,
            &who,
            compat,
        ) {
            // A bound pod cannot be re-placed. One aimed at a known node that cannot run it is
            // denied in mutate and validate modes (its controller retries, the user reads why);
            // where the node is not known (a static inventory, a template), only validate mode
            // denies. A mirror pod runs already: the kubelet is told, never refused.
            let certain = problem.pinned && !pod.is_mirror();
            if mode == Mode::Validate || (mode == Mode::Mutate && certain) {
                found.problems.push(problem.message);
            } else {
                found.notes.push(problem.message);
            }
        }
    }

    if mode == Mode::Mutate && acting {
        if !found.problems.is_empty() {
            return decision(
                Verdict::Deny(deny_message(&found.problems)),
                candidates,
                found.notes,
            );
        }
        if gating {
            return decision(Verdict::Gate(gate::reason(images)), candidates, found.notes);
        }
        let annotation = candidates.joined();
        let (node_selector, tolerations) = if needs_gpu {
            (gpu_selector, gpu_tolerations)
        } else {
            Default::default()
        };
        let mutation = Mutation {
            require_archs: needs_archs.then_some(candidates),
            prefer: if bound {
                Vec::new()
            } else {
                missing_preferences(rule, pod, candidates)
            },
            node_selector,
            tolerations,
            annotation: (!bound && pod.annotation(ARCH_ANNOTATION) != Some(&*annotation))
                .then(|| annotation.into_owned()),
        };
        let verdict = if mutation.is_empty() {
            Verdict::Allow
        } else {
            Verdict::Patch(mutation)
        };
        return decision(verdict, candidates, found.notes);
    }

    if needs_archs {
        let lacking = reachable.minus(candidates);
        let names = candidates.names();
        found.problems.push(format!(
            "pod {who} can be scheduled on {lacking} nodes, which cannot run it: {}; add nodeSelector {ARCH_LABEL}: {} or required node affinity {ARCH_LABEL} In [{}]",
            describe_images(images, lacking, cluster_archs, compat),
            names.first().copied().unwrap_or_default(),
            names.join(", ")
        ));
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
        found.problems.push(format!(
            "pod {who} requests a GPU but lacks {}",
            missing.join(" and ")
        ));
    }
    if !acting {
        if found.problems.is_empty() {
            return decision(Verdict::Allow, candidates, Vec::new());
        }
        let msg = format!(
            "{} (archgate's mutating webhook did not place this pod: check that it is installed and running)",
            deny_message(&found.problems)
        );
        return decision(Verdict::Deny(msg), candidates, Vec::new());
    }
    match mode {
        Mode::Validate if !found.problems.is_empty() => decision(
            Verdict::Deny(deny_message(&found.problems)),
            candidates,
            found.notes,
        ),
        _ => {
            found.problems.extend(found.notes);
            decision(Verdict::Allow, candidates, found.problems)
        }
    }
}

/// The rule that decides for the pod, and the mode it (or the defaults) sets.
pub(super) fn rule_and_mode<'p>(
    policy: &'p Policy,
    pod: &Pod,
    namespace: &Namespace,
) -> (Option<&'p Rule>, Mode) {
    let rule = policy.rule_for(namespace, pod.labels());
    (
        rule,
        rule.and_then(|r| r.mode).unwrap_or(policy.default_mode),
    )
}

pub(super) fn deny_message(problems: &[String]) -> String {
    format!("archgate: {}", problems.join("; "))
}

/// The architectures every image runs on, with unknown and invalid images reported per policy.
/// With `gating`, failed lookups are left to the placement controller and reported nowhere.
pub(super) fn image_archs(
    images: &[ImageFacts<'_>],
    unknown: UnknownImages,
    gating: bool,
    compat: bool,
    found: &mut Findings,
) -> ArchSet {
    let mut supported = ArchSet::ALL;
    for img in images {
        // Only messages name the image: most images resolve and need none.
        let what = || {
            format!(
                "image {} ({} \"{}\")",
                img.image,
                img.kind.as_str(),
                img.container
            )
        };
        match &img.status {
            ImageStatus::Resolved(Lookup::Found(p)) => {
                supported = supported.intersect(p.archs(compat))
            }
            ImageStatus::Resolved(Lookup::NotFound) => match unknown {
                UnknownImages::Allow => {}
                UnknownImages::Warn => found.notes.push(format!(
                    "platforms of {} are unknown; it is placed by its other images",
                    what()
                )),
                UnknownImages::Deny => found.problems.push(format!(
                    "platforms of {} are unknown; add it to the platforms source",
                    what()
                )),
            },
            ImageStatus::Resolved(Lookup::Unavailable(_)) if gating => {}
            ImageStatus::Resolved(Lookup::Failed(why) | Lookup::Unavailable(why)) => {
                let msg = format!("platforms of {} could not be looked up: {why}", what());
                match unknown {
                    UnknownImages::Deny => found.problems.push(msg),
                    _ => found.notes.push(msg),
                }
            }
            ImageStatus::Invalid(why) => found.problems.push(format!(
                "{} \"{}\": {why}",
                img.kind.as_str(),
                img.container
            )),
        }
    }
    supported
}
