//! Ephemeral containers (`kubectl debug`): judged against the node their pod runs on.

use super::demands::demanded_archs;
use super::evaluate::{
    deny_message, image_archs, rule_and_mode, Decision, Findings, ImageFacts, Stage, Verdict,
};
use super::explain::describe_images;
use super::model::Mode;
use super::Policy;
use crate::arch::ArchSet;
use crate::inventory::Inventory;
use crate::namespace::Namespace;
use crate::pod::Pod;

/// Checks ephemeral containers (`kubectl debug`) against the node their pod runs on. They never
/// change scheduling, so this only allows, warns or denies, at the validating stage.
pub fn evaluate_ephemeral(
    policy: &Policy,
    inventory: &Inventory,
    pod: &Pod,
    namespace: &Namespace,
    images: &[ImageFacts<'_>],
    stage: Stage,
) -> Decision {
    let (rule, mode) = rule_and_mode(policy, pod, namespace);
    let mut decision = Decision {
        verdict: Verdict::Allow,
        mode,
        rule: rule.map(|r| r.name.clone()),
        architectures: ArchSet::EMPTY,
        warnings: Vec::new(),
    };
    if mode == Mode::Off || stage == Stage::Mutate {
        return decision;
    }
    let unknown = rule
        .and_then(|r| r.unknown_images)
        .unwrap_or(policy.default_unknown_images);
    let mut found = Findings::default();
    let supported = image_archs(
        images,
        unknown,
        false,
        policy.compatible_execution,
        &mut found,
    );
    // Where the pod runs: its node's architecture when the inventory knows the node, else every
    // architecture the pod could have been placed on.
    let node = pod
        .spec
        .node_name
        .as_deref()
        .and_then(|n| inventory.node(n));
    let running_on = match node.and_then(|n| n.arch) {
        Some(a) => ArchSet::of([a]),
        None => inventory.archs.intersect(demanded_archs(pod)),
    };
    decision.architectures = running_on;
    if !running_on.is_subset(supported) {
        let lacking = running_on.minus(supported);
        let place = node.map_or_else(
            || format!("{lacking} nodes"),
            |n| format!("node {} ({lacking})", n.name),
        );
        found.problems.push(format!(
            "ephemeral container for pod {} would run on {place}, which its image cannot: {}",
            pod.display_name(&namespace.name),
            describe_images(
                images,
                lacking,
                inventory.archs,
                policy.compatible_execution
            )
        ));
    }
    match (mode, found.problems.is_empty()) {
        (Mode::Warn, _) | (_, true) => {
            found.problems.extend(found.notes);
            decision.warnings = found.problems;
        }
        _ => {
            decision.verdict = Verdict::Deny(deny_message(&found.problems));
            decision.warnings = found.notes;
        }
    }
    decision
}
