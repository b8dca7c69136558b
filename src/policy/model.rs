//! The policy file as written: TOML mapped onto serde structs that reject unknown keys.
//!
//! Values that have a fixed vocabulary (modes, architectures, platforms, operators) are parsed
//! while deserialising, so a bad value is reported by `toml` with its line and column.

use crate::pod::Toleration;
use serde::Deserialize;
use std::collections::BTreeMap;
use toml::Spanned;

pub use super::names::{
    ArchName, LabelKey, LabelValue, NamespacePattern, PlatformName, ResourceName,
};

/// The whole policy file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySpec {
    /// `[cluster]`: the platforms and node pools the cluster has.
    pub cluster: super::cluster::ClusterSpec,
    /// `[defaults]`: what applies to pods no rule matches; every key has a default.
    #[serde(default)]
    pub defaults: DefaultsSpec,
    /// `[[rules]]`, tried in order; spans locate a rule in error messages.
    #[serde(default)]
    pub rules: Vec<Spanned<RuleSpec>>,
    /// `[gpu.<vendor>]` tables by vendor name; spans locate a vendor in error messages.
    #[serde(default)]
    pub gpu: BTreeMap<String, Spanned<GpuVendorSpec>>,
    /// `[placement]`: templates, lookup timeouts and gating; every key has a default.
    #[serde(default)]
    pub placement: PlacementSpec,
}

/// How archgate places what a single pod review cannot: workload templates, and pods whose
/// images' platforms are not known by the admission deadline.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlacementSpec {
    /// Workload kinds whose pod template gets the architecture affinity at the mutating stage.
    #[serde(default = "default_templates")]
    pub templates: Vec<TemplateKind>,
    /// What the mutating stage does with a pod whose image lookups did not finish in time.
    #[serde(default = "default_on_lookup_timeout")]
    pub on_lookup_timeout: OnLookupTimeout,
    /// How long a gated pod waits for its lookups before `unknown_images` decides ("10m").
    #[serde(default = "default_give_up_after")]
    pub give_up_after: Spanned<String>,
}

impl Default for PlacementSpec {
    fn default() -> Self {
        PlacementSpec {
            templates: default_templates(),
            on_lookup_timeout: default_on_lookup_timeout(),
            give_up_after: default_give_up_after(),
        }
    }
}

fn default_templates() -> Vec<TemplateKind> {
    vec![TemplateKind::DaemonSet]
}

fn default_on_lookup_timeout() -> OnLookupTimeout {
    OnLookupTimeout::Gate
}

fn default_give_up_after() -> Spanned<String> {
    Spanned::new(0..0, "10m".to_string())
}

/// A workload kind with a pod template.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
pub enum TemplateKind {
    /// `DaemonSet`, the default: its pods are bound to nodes, so only its template can be placed.
    DaemonSet,
    /// `Deployment`; its ReplicaSets create the pods from `spec.template`.
    Deployment,
    /// `StatefulSet`, template at `spec.template`.
    StatefulSet,
    /// `ReplicaSet`, template at `spec.template`.
    ReplicaSet,
    /// `Job`, template at `spec.template`.
    Job,
    /// `CronJob`, template at `spec.jobTemplate.spec.template`.
    CronJob,
}

impl TemplateKind {
    /// The kind as Kubernetes spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            TemplateKind::DaemonSet => "DaemonSet",
            TemplateKind::Deployment => "Deployment",
            TemplateKind::StatefulSet => "StatefulSet",
            TemplateKind::ReplicaSet => "ReplicaSet",
            TemplateKind::Job => "Job",
            TemplateKind::CronJob => "CronJob",
        }
    }

    /// The kind named `kind`, if it has a pod template archgate can place.
    pub fn from_kind(kind: &str) -> Option<TemplateKind> {
        [
            TemplateKind::DaemonSet,
            TemplateKind::Deployment,
            TemplateKind::StatefulSet,
            TemplateKind::ReplicaSet,
            TemplateKind::Job,
            TemplateKind::CronJob,
        ]
        .into_iter()
        .find(|k| k.as_str() == kind)
    }
}

/// The mutating stage's answer for a pod whose platforms are not known by the deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnLookupTimeout {
    /// Admit it with a scheduling gate; the placement controller places it when lookups finish.
    Gate,
    /// Decide now, by `unknown_images`.
    Decide,
}

/// Behaviour for pods no rule names.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DefaultsSpec {
    /// `mode`, `mutate` unless set.
    #[serde(default = "default_mode")]
    pub mode: Mode,
    /// `unknown_images`, `warn` unless set.
    #[serde(default = "default_unknown")]
    pub unknown_images: UnknownImages,
    /// `on_overload`, `allow` unless set.
    #[serde(default = "default_overload")]
    pub on_overload: OnOverload,
}

impl Default for DefaultsSpec {
    fn default() -> Self {
        DefaultsSpec {
            mode: default_mode(),
            unknown_images: default_unknown(),
            on_overload: default_overload(),
        }
    }
}

fn default_overload() -> OnOverload {
    OnOverload::Allow
}

/// The answer when archgate has no capacity left before a request's deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnOverload {
    /// Admit the pod unplaced, with a warning: what `failurePolicy: Ignore` would do, but on time.
    Allow,
    /// Reject the pod; the API server's controllers retry it.
    Deny,
}

fn default_mode() -> Mode {
    Mode::Mutate
}

fn default_unknown() -> UnknownImages {
    UnknownImages::Warn
}

/// One rule; the first rule whose match fits a pod decides for it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// Names the rule in messages and decisions; non-empty and unique across rules.
    pub name: String,
    /// Namespace names or `prefix*` patterns; empty matches every namespace.
    #[serde(default)]
    pub namespaces: Vec<NamespacePattern>,
    /// Namespaces by label, as a webhook's `namespaceSelector` picks them.
    pub namespace_selector: Option<SelectorSpec>,
    /// Pods by label; None matches every pod.
    pub pod_selector: Option<SelectorSpec>,
    /// Overrides `defaults.mode` for the pods this rule matches.
    pub mode: Option<Mode>,
    /// The only architectures its pods may run on; None leaves it to images and cluster.
    pub architectures: Option<Vec<ArchName>>,
    /// Overrides `defaults.unknown_images` for the pods this rule matches.
    pub unknown_images: Option<UnknownImages>,
    /// Soft preferences, added as preferredDuringScheduling node affinity; never a requirement.
    #[serde(default)]
    pub prefer: Vec<PreferenceSpec>,
}

/// "Prefer these architectures with this weight."
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreferenceSpec {
    /// The architectures to favour; only those the pod can run on are preferred.
    pub architectures: Vec<ArchName>,
    /// How strongly the scheduler favours them.
    pub weight: Weight,
}

/// A preferredDuringScheduling weight: 1 to 100, as the API requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "i64")]
pub struct Weight(pub i32);

impl TryFrom<i64> for Weight {
    type Error = String;
    fn try_from(w: i64) -> Result<Self, String> {
        match i32::try_from(w) {
            Ok(w @ 1..=100) => Ok(Weight(w)),
            _ => Err(format!(
                "weight {w} is out of range: Kubernetes accepts 1 to 100"
            )),
        }
    }
}

/// A Kubernetes label selector, over the pod's labels or its namespace's.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SelectorSpec {
    /// `match_labels`: each key must have exactly this value.
    #[serde(default)]
    pub match_labels: BTreeMap<LabelKey, LabelValue>,
    /// `match_expressions`, all of which must hold alongside `match_labels`.
    #[serde(default)]
    pub match_expressions: Vec<ExpressionSpec>,
}

/// One `match_expressions` entry: `key operator values`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpressionSpec {
    /// The label the expression tests.
    pub key: LabelKey,
    /// How `key` is tested against `values`.
    pub operator: SelectorOperator,
    /// Required and non-empty for `In`/`NotIn`, forbidden for `Exists`/`DoesNotExist`.
    #[serde(default)]
    pub values: Vec<LabelValue>,
}

/// The operator of a selector expression, as Kubernetes label selectors spell it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum SelectorOperator {
    /// The label is set to one of the values.
    In,
    /// The label is unset or set to none of the values.
    NotIn,
    /// The label is set, to any value.
    Exists,
    /// The label is unset.
    DoesNotExist,
}

/// A GPU vendor: the extended resources that select it and where its nodes are.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GpuVendorSpec {
    /// Extended resources whose request selects this vendor, e.g. `nvidia.com/gpu`; each
    /// resource may belong to one vendor only.
    pub resources: Vec<ResourceName>,
    /// The architectures this vendor's GPU nodes have; pods requesting it are kept to them.
    pub architectures: Vec<ArchName>,
    /// Labels the vendor's nodes carry, added to a requesting pod's nodeSelector.
    #[serde(default)]
    pub node_selector: BTreeMap<LabelKey, LabelValue>,
    /// Taints the vendor's nodes carry, tolerated for a requesting pod unless it already does.
    #[serde(default)]
    pub tolerations: Vec<Toleration>,
}

/// What archgate does with the pods a rule (or the defaults) covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Patch the pod's node affinity; deny when no architecture can run it.
    Mutate,
    /// Never patch; deny pods that could land on a node that cannot run them.
    Validate,
    /// Allow everything, with a warning where `validate` would deny.
    Warn,
    /// Leave the pod alone.
    Off,
}

impl Mode {
    /// The mode as the policy file spells it (`mutate`, `validate`, `warn`, `off`).
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Mutate => "mutate",
            Mode::Validate => "validate",
            Mode::Warn => "warn",
            Mode::Off => "off",
        }
    }
}

/// What an image the platform source does not know means for its pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UnknownImages {
    /// Place the pod by its other images, silently.
    Allow,
    /// Place the pod by its other images and tell the user.
    Warn,
    /// Reject the pod.
    Deny,
}
