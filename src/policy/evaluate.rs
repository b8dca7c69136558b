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
use super::{gate, GpuVendor, Policy, Rule};
use crate::arch::ArchSet;
use crate::inventory::Inventory;
use crate::namespace::Namespace;
use crate::platforms::Lookup;
use crate::pod::{DisplayName, Pod, Toleration};

pub use super::decision::{Decision, ImageFacts, ImageStatus, Mutation, Stage, Verdict};
pub use super::demands::demanded_archs;
pub use super::ephemeral::evaluate_ephemeral;
pub use super::outcome::Outcome;

/// The annotation that records archgate's decision on a pod.
pub const ARCH_ANNOTATION: &str = "archgate.io/architectures";
/// The node label the scheduler matches architectures on.
pub const ARCH_LABEL: &str = "kubernetes.io/arch";

/// Deny reasons and warnings collected while evaluating.
#[derive(Default)]
pub(super) struct Findings {
    /// Reasons to deny (warnings in `warn` mode).
    pub(super) problems: Vec<String>,
    /// Always warnings.
    pub(super) notes: Vec<String>,
}

/// What one stage does for a pod, by the mode that decides for it: the whole mode x stage
/// matrix in one place. A stage with nothing to do has no action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    /// `mutate` at the mutating stage: patch the pod, gate it, or deny it.
    Place,
    /// `validate` (`deny`) and `warn` at the validating stage: judge the pod as written.
    Judge { deny: bool },
    /// `mutate` at the validating stage, for a pod the mutating webhook never placed (it was
    /// skipped, or failed open): deny what cannot run, and say why it was not placed.
    Catch,
}

impl Action {
    fn of(mode: Mode, stage: Stage, pod: &Pod) -> Option<Action> {
        match (mode, stage) {
            (Mode::Off, _) | (Mode::Validate | Mode::Warn, Stage::Mutate) => None,
            (Mode::Mutate, Stage::Mutate) => Some(Action::Place),
            (Mode::Validate, Stage::Validate) => Some(Action::Judge { deny: true }),
            (Mode::Warn, Stage::Validate) => Some(Action::Judge { deny: false }),
            // Placed (or gated) by the mutating stage: a lookup that finished since must not
            // turn its answer around.
            (Mode::Mutate, Stage::Validate)
                if pod.has_gate(gate::GATE) || pod.annotation(ARCH_ANNOTATION).is_some() =>
            {
                None
            }
            (Mode::Mutate, Stage::Validate) => Some(Action::Catch),
        }
    }

    /// Whether a problem found is a denial (else a warning).
    fn denies(self) -> bool {
        !matches!(self, Action::Judge { deny: false })
    }
}

/// Decides for a pod in `namespace` (its labels matter to rules with a `namespace_selector`)
/// whose scheduling containers' images are `images`.
pub fn evaluate(
    policy: &Policy,
    inventory: &Inventory,
    pod: &Pod,
    namespace: &Namespace,
    images: &[ImageFacts<'_>],
    stage: Stage,
) -> Decision {
    let (rule, mode) = rule_and_mode(policy, pod, namespace);
    let decision = |(verdict, architectures, warnings)| Decision {
        verdict,
        mode,
        rule: rule.map(|r| r.name.clone()),
        architectures,
        warnings,
    };
    let Some(action) = Action::of(mode, stage, pod) else {
        return decision((Verdict::Allow, ArchSet::EMPTY, Vec::new()));
    };
    let who = pod.display_name(&namespace.name);
    let os = nodes::pod_os(pod, images);
    if os != "linux" {
        // The policy places linux pods; another OS's are judged only against nodes of theirs.
        if action == Action::Catch || nodes::left_alone(policy, inventory, os) {
            return decision((Verdict::Allow, ArchSet::EMPTY, Vec::new()));
        }
        return decision(judge_other_os(
            policy, inventory, pod, &who, os, images, action,
        ));
    }
    let gating = action == Action::Place && gate::applies(policy, pod, &namespace.name, images);
    let mut c = Candidates::of(policy, inventory, pod, rule, images, gating, &who);
    let bound = pod.is_bound();
    if !bound && !c.archs.is_empty() && action != Action::Catch && !gating {
        let compat = policy.compatible_execution;
        let demand = nodes::demand(
            pod,
            os,
            c.archs,
            images,
            &c.gpu_selector,
            &c.gpu_tolerations,
        );
        let arch = |a| nodes::arch_reason(a, os, images, compat, rule, &c.vendors, c.demanded);
        let judged = nodes::judge(policy, inventory, &demand, &who, &arch);
        c.found.problems.extend(judged.problem);
        c.found.notes.extend(judged.notes);
    }
    if bound && !c.archs.is_empty() && !gating {
        let compat = policy.compatible_execution;
        let cluster = &policy.cluster;
        if let Some(problem) =
            bound_problem(cluster, inventory, pod, images, c.supported, &who, compat)
        {
            // A bound pod cannot be re-placed. One aimed at a known node that cannot run it is
            // denied in mutate and validate modes (its controller retries, the user reads why);
            // where the node is not known (a static inventory, a template), only validate mode
            // denies. A mirror pod runs already: the kubelet is told, never refused.
            let certain = problem.pinned && !pod.is_mirror();
            let denied = match action {
                Action::Judge { deny } => deny,
                Action::Place | Action::Catch => certain,
            };
            if denied {
                c.found.problems.push(problem.message);
            } else {
                c.found.notes.push(problem.message);
            }
        }
    }
    decision(match action {
        Action::Place if gating && c.found.problems.is_empty() => {
            (Verdict::Gate(gate::reason(images)), c.archs, c.found.notes)
        }
        Action::Place => place(pod, rule, c),
        Action::Judge { .. } | Action::Catch => judge(pod, images, c, action, &who),
    })
}

/// What the pod may run on: the architectures its images, the cluster, the rule, its GPUs and
/// its own constraints all allow, with what ruled the others out.
struct Candidates<'p> {
    /// Whether images run on architectures they can execute but were not built for.
    compat: bool,
    /// The architectures of the cluster's nodes and pools.
    cluster: ArchSet,
    /// The architectures every image runs on.
    supported: ArchSet,
    /// The architectures the pod's own nodeSelector and affinity allow.
    demanded: ArchSet,
    /// What all of the above allow.
    archs: ArchSet,
    /// The GPU vendors the pod asks for, with the resource that named each.
    vendors: Vec<(&'p str, &'p GpuVendor)>,
    /// The GPU vendors' node selector entries the pod lacks.
    gpu_selector: Vec<(String, String)>,
    /// The GPU vendors' tolerations the pod lacks.
    gpu_tolerations: Vec<Toleration>,
    found: Findings,
}

impl<'p> Candidates<'p> {
    fn of(
        policy: &'p Policy,
        inventory: &Inventory,
        pod: &'p Pod,
        rule: Option<&Rule>,
        images: &[ImageFacts<'_>],
        gating: bool,
        who: &DisplayName<'_>,
    ) -> Candidates<'p> {
        let compat = policy.compatible_execution;
        let cluster = inventory.archs.union(policy.cluster.pool_archs);
        let unknown = rule
            .and_then(|r| r.unknown_images)
            .unwrap_or(policy.default_unknown_images);
        let mut found = Findings::default();
        let supported = image_archs(images, unknown, gating, compat, &mut found);
        let rule_archs = rule.and_then(|r| r.architectures).unwrap_or(ArchSet::ALL);
        let vendors = requested_vendors(policy, pod);
        let gpu_archs = vendors
            .iter()
            .fold(ArchSet::ALL, |s, (_, v)| s.intersect(v.architectures));
        let demanded = demanded_archs(pod);
        let archs = supported
            .intersect(cluster)
            .intersect(rule_archs)
            .intersect(gpu_archs)
            .intersect(demanded);
        if archs.is_empty() {
            let mut limits = vec![format!("the cluster has {cluster}")];
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
                describe_images(images, ArchSet::ALL, cluster, compat),
                limits.join("; ")
            ));
        }
        let (gpu_selector, gpu_tolerations) = gpu_needs(pod, &vendors, who, &mut found.problems);
        Candidates {
            compat,
            cluster,
            supported,
            demanded,
            archs,
            vendors,
            gpu_selector,
            gpu_tolerations,
            found,
        }
    }

    /// Whether the pod could be scheduled on nodes that cannot run it, as written.
    fn needs_archs(&self, pod: &Pod) -> bool {
        let reachable = self.cluster.intersect(self.demanded);
        !pod.is_bound() && !self.archs.is_empty() && !reachable.is_subset(self.archs)
    }

    /// Whether the pod lacks its GPU vendor's node selector or tolerations.
    fn needs_gpu(&self, pod: &Pod) -> bool {
        !pod.is_bound() && (!self.gpu_selector.is_empty() || !self.gpu_tolerations.is_empty())
    }
}

/// The mutating stage's answer: a denial for what no placement can fix, else the mutation that
/// places the pod (nothing when it is placed as it is).
fn place(pod: &Pod, rule: Option<&Rule>, c: Candidates<'_>) -> (Verdict, ArchSet, Vec<String>) {
    if !c.found.problems.is_empty() {
        let message = deny_message(&c.found.problems);
        return (Verdict::Deny(message), c.archs, c.found.notes);
    }
    let bound = pod.is_bound();
    let annotation = c.archs.joined();
    let (needs_archs, needs_gpu) = (c.needs_archs(pod), c.needs_gpu(pod));
    let (node_selector, tolerations) = if needs_gpu {
        (c.gpu_selector, c.gpu_tolerations)
    } else {
        Default::default()
    };
    let mutation = Mutation {
        require_archs: needs_archs.then_some(c.archs),
        prefer: if bound {
            Vec::new()
        } else {
            missing_preferences(rule, pod, c.archs)
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
    (verdict, c.archs, c.found.notes)
}

/// The validating stage's answer for a pod as written: what would let it onto nodes that cannot
/// run it is a problem, denied or warned as `action` says.
fn judge(
    pod: &Pod,
    images: &[ImageFacts<'_>],
    mut c: Candidates<'_>,
    action: Action,
    who: &DisplayName<'_>,
) -> (Verdict, ArchSet, Vec<String>) {
    if c.needs_archs(pod) {
        let lacking = c.cluster.intersect(c.demanded).minus(c.archs);
        let names = c.archs.names();
        c.found.problems.push(format!(
            "pod {who} can be scheduled on {lacking} nodes, which cannot run it: {}; add nodeSelector {ARCH_LABEL}: {} or required node affinity {ARCH_LABEL} In [{}]",
            describe_images(images, lacking, c.cluster, c.compat),
            names.first().copied().unwrap_or_default(),
            names.join(", ")
        ));
    }
    if c.needs_gpu(pod) {
        let mut missing: Vec<String> = c
            .gpu_selector
            .iter()
            .map(|(k, v)| format!("nodeSelector {k}={v}"))
            .collect();
        missing.extend(
            c.gpu_tolerations
                .iter()
                .map(|t| format!("toleration {}", describe_toleration(t))),
        );
        c.found.problems.push(format!(
            "pod {who} requests a GPU but lacks {}",
            missing.join(" and ")
        ));
    }
    let Findings {
        mut problems,
        notes,
    } = c.found;
    match action {
        Action::Catch if problems.is_empty() => (Verdict::Allow, c.archs, Vec::new()),
        Action::Catch => {
            let message = format!(
                "{} (archgate's mutating webhook did not place this pod: check that it is installed and running)",
                deny_message(&problems)
            );
            (Verdict::Deny(message), c.archs, Vec::new())
        }
        _ if action.denies() && !problems.is_empty() => {
            (Verdict::Deny(deny_message(&problems)), c.archs, notes)
        }
        _ => {
            problems.extend(notes);
            (Verdict::Allow, c.archs, problems)
        }
    }
}

/// A pod another OS than linux runs (Windows): judged against the nodes of its OS only.
fn judge_other_os(
    policy: &Policy,
    inventory: &Inventory,
    pod: &Pod,
    who: &DisplayName<'_>,
    os: &str,
    images: &[ImageFacts<'_>],
    action: Action,
) -> (Verdict, ArchSet, Vec<String>) {
    let archs = images.iter().fold(ArchSet::ALL, |s, i| match &i.status {
        ImageStatus::Resolved(Lookup::Found(p)) => s.intersect(p.archs_on(os)),
        _ => s,
    });
    let compat = policy.compatible_execution;
    let demand = nodes::demand(pod, os, archs, images, &[], &[]);
    let arch = |a| nodes::arch_reason(a, os, images, compat, None, &[], ArchSet::ALL);
    let found = nodes::judge(policy, inventory, &demand, who, &arch);
    match found.problem {
        Some(p) if action.denies() => (Verdict::Deny(deny_message(&[p])), archs, found.notes),
        p => (
            Verdict::Allow,
            archs,
            p.into_iter().chain(found.notes).collect(),
        ),
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

#[cfg(test)]
#[path = "evaluate_tests.rs"]
mod tests;
