//! What a decision is made of: the stage asking, the facts about each image, and the verdict
//! with the mutation that places a pod. [`super::evaluate`] computes them.

use super::model::Mode;
use super::outcome::Outcome;
use super::Preference;
use crate::arch::ArchSet;
use crate::platforms::Lookup;
use crate::pod::{ContainerKind, Toleration};

/// Which admission stage is asking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// `/mutate`: the pod may still be changed.
    Mutate,
    /// `/validate`: the pod as it will be stored, after every mutating webhook.
    Validate,
}

/// One container's image and what the platform source said about it.
#[derive(Debug, Clone)]
pub struct ImageFacts<'a> {
    /// The container's name.
    pub container: &'a str,
    /// Whether it is an init, sidecar, app or ephemeral container.
    pub kind: ContainerKind,
    /// The image reference as the pod spec writes it.
    pub image: &'a str,
    /// What is known about the image's platforms.
    pub status: ImageStatus,
}

/// What is known about one image.
#[derive(Debug, Clone)]
pub enum ImageStatus {
    /// The reference is valid; the platform source's answer.
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
    /// New value of the [`super::evaluate::ARCH_ANNOTATION`] annotation, when it differs from
    /// the pod's.
    pub annotation: Option<String>,
}

impl Mutation {
    /// Whether the mutation adds nothing: the pod is placed as it is.
    pub fn is_empty(&self) -> bool {
        self.require_archs.is_none()
            && self.prefer.is_empty()
            && self.node_selector.is_empty()
            && self.tolerations.is_empty()
            && self.annotation.is_none()
    }
}

/// What archgate answers for one pod at one stage.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Admit the pod as it is (warnings, if any, are in the [`Decision`]).
    Allow,
    /// Admit the pod with this mutation applied.
    Patch(Mutation),
    /// Admit the pod behind archgate's scheduling gate: some image lookups did not finish in
    /// time, and the placement controller places it when they do. The text says which and why.
    Gate(String),
    /// Refuse the pod; the text says why and what to do.
    Deny(String),
}

/// The outcome of evaluating one pod at one stage.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// What archgate answers.
    pub verdict: Verdict,
    /// The mode that decided (the rule's, else the policy's default).
    pub mode: Mode,
    /// The rule that matched, if any.
    pub rule: Option<String>,
    /// Architectures that can run every image and satisfy the pod, policy and cluster.
    pub architectures: ArchSet,
    /// Shown by kubectl beside the answer.
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

    /// Adds `more` warnings (another webhook's, for one object), each at most once.
    pub fn add_warnings(&mut self, more: &[String]) {
        for warning in more {
            if !self.warnings.contains(warning) {
                self.warnings.push(warning.clone());
            }
        }
    }
}
