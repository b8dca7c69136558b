//! The fields of a Pod that placement decisions read, decoded straight from the API server's JSON.
//!
//! Decoding the full k8s-openapi `Pod` costs several times more than these few fields, and the
//! patch builder needs to know which parent objects are absent (`affinity`, `tolerations`,
//! `metadata.annotations`), which `Option`s here say directly.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A Pod as the decision sees it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Pod {
    /// `metadata`; defaulted when absent, with [`ObjectMeta::present`] false.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// `spec`; defaulted when absent, so a pod without one reads as having no containers.
    #[serde(default)]
    pub spec: PodSpec,
}

/// The pod's `metadata`: names for messages, labels that choose a rule, annotations the patch
/// may add to, and owners that tell whether a controller binds the pod to nodes.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectMeta {
    /// `metadata.name`; None (or empty) for a pod the API server has not named yet.
    pub name: Option<String>,
    /// `metadata.generateName`: the prefix a generated name will start with, shown in messages.
    pub generate_name: Option<String>,
    /// `metadata.namespace`; the admission request's namespace wins when both are given.
    pub namespace: Option<String>,
    /// `metadata.labels`; None when the pod sets none (a patch must then create the map).
    pub labels: Option<BTreeMap<String, String>>,
    /// `metadata.annotations`; None when the pod sets none (a patch must then create the map).
    pub annotations: Option<BTreeMap<String, String>>,
    /// `metadata.ownerReferences`; the one marked `controller` says who created the pod.
    pub owner_references: Option<Vec<OwnerReference>>,
    /// The object had a `metadata` member: a patch may add under it. False for a pod sent
    /// without one (the default), which a patch must give `metadata` whole.
    #[serde(skip_deserializing, default = "present")]
    pub present: bool,
}

fn present() -> bool {
    true
}

/// One `metadata.ownerReferences` entry.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OwnerReference {
    /// The owner's kind, e.g. `ReplicaSet` or `DaemonSet`; empty when the API omits it.
    #[serde(default)]
    pub kind: String,
    /// The owner's name; empty when the API omits it.
    #[serde(default)]
    pub name: String,
    /// `controller`: true for the one owner that manages the pod; None counts as false.
    pub controller: Option<bool>,
}

/// The pod's `spec`: its containers and everything that steers where it is scheduled.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodSpec {
    /// `spec.containers`, the app containers; empty when the JSON has none.
    #[serde(default)]
    pub containers: Vec<Container>,
    /// `spec.initContainers`; their images must run on the chosen node too.
    pub init_containers: Option<Vec<Container>>,
    /// `spec.ephemeralContainers`: debug containers added to a running pod, checked only.
    pub ephemeral_containers: Option<Vec<Container>>,
    /// `spec.nodeSelector`; None when the pod sets none (a patch must then create the map).
    pub node_selector: Option<BTreeMap<String, String>>,
    /// `spec.affinity`; None when the pod sets none (a patch must then add it whole).
    pub affinity: Option<Affinity>,
    /// `spec.tolerations`; None when the pod sets none (a patch must then create the list).
    pub tolerations: Option<Vec<Toleration>>,
    /// `spec.nodeName`: set when the pod is already bound; empty counts as unset.
    pub node_name: Option<String>,
    /// `spec.imagePullSecrets`: the secrets registry lookups use, before the service account's.
    pub image_pull_secrets: Option<Vec<LocalObjectReference>>,
    /// `spec.serviceAccountName`; None or empty means `default`, whose pull secrets also count.
    pub service_account_name: Option<String>,
    /// `spec.schedulingGates`; None when the pod has none (a patch must then create the list).
    pub scheduling_gates: Option<Vec<SchedulingGate>>,
    /// `spec.os`: the OS the pod's author says it needs (`linux`, `windows`).
    pub os: Option<PodOs>,
}

/// `spec.os`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct PodOs {
    /// The OS name, `linux` or `windows`; empty counts as unset.
    #[serde(default)]
    pub name: String,
}

/// A scheduling gate: the scheduler leaves the pod alone until every gate is removed.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SchedulingGate {
    /// The gate's name; archgate's own gate is [`crate::policy::gate::GATE`].
    #[serde(default)]
    pub name: String,
}

/// A reference by name to an object in the pod's namespace (here, a pull secret).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct LocalObjectReference {
    /// The object's name; empty entries are skipped.
    #[serde(default)]
    pub name: String,
}

/// One container, init, app or ephemeral: its image is what decides the architectures.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Container {
    /// `name`, used in messages; empty when the JSON omits it.
    #[serde(default)]
    pub name: String,
    /// `image` as written in the pod; None for a container without one (nothing to look up).
    pub image: Option<String>,
    /// `imagePullPolicy` (`Always`, `IfNotPresent`, `Never`); None means Kubernetes' default.
    pub image_pull_policy: Option<String>,
    /// `resources`; read only for extended resources such as GPUs.
    pub resources: Option<Resources>,
}

/// A container's `resources`, with quantities kept as raw JSON (strings or numbers).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Resources {
    /// `limits`: resource name to quantity; None when unset.
    pub limits: Option<BTreeMap<String, serde_json::Value>>,
    /// `requests`: resource name to quantity; None when unset.
    pub requests: Option<BTreeMap<String, serde_json::Value>>,
}

/// `spec.affinity`; only node affinity matters to placement.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Affinity {
    /// `nodeAffinity`; None when the pod's affinity is only about other pods.
    pub node_affinity: Option<NodeAffinity>,
}

/// `spec.affinity.nodeAffinity`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeAffinity {
    /// Hard constraints: the pod may only go to nodes matching one of these terms.
    pub required_during_scheduling_ignored_during_execution: Option<NodeSelector>,
    /// Soft constraints the scheduler weighs; archgate's preferences are added here.
    pub preferred_during_scheduling_ignored_during_execution: Option<Vec<PreferredSchedulingTerm>>,
}

/// One weighted soft node affinity term.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct PreferredSchedulingTerm {
    /// 1 to 100, how much the scheduler favours nodes matching `preference`.
    #[serde(default)]
    pub weight: i32,
    /// The term a node should match.
    #[serde(default)]
    pub preference: NodeSelectorTerm,
}

/// A required node selector: a node must match at least one term (the terms are ORed).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeSelector {
    /// The terms; a node matching any of them qualifies.
    #[serde(default)]
    pub node_selector_terms: Vec<NodeSelectorTerm>,
}

/// One node selector term: all its requirements must hold (they are ANDed).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeSelectorTerm {
    /// Requirements on node labels; None when the term has none.
    pub match_expressions: Option<Vec<Requirement>>,
    /// Requirements on node fields (only `metadata.name` in practice); None when there are none.
    pub match_fields: Option<Vec<Requirement>>,
}

/// A node selector requirement: `key operator values`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Requirement {
    /// The node label (or field) the requirement is about.
    pub key: String,
    /// `In`, `NotIn`, `Exists`, `DoesNotExist`, `Gt` or `Lt`.
    pub operator: String,
    /// What `operator` compares against; empty (and left out when serialized) for `Exists`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
}

/// A pod toleration, as the API spells it; policies write `toleration_seconds` in TOML.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Toleration {
    /// The taint key tolerated; None with operator `Exists` tolerates every taint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// `Equal` (the default when None) or `Exists`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<String>,
    /// The taint value to match under `Equal`; None with `Exists`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// `NoSchedule`, `PreferNoSchedule` or `NoExecute`; None tolerates every effect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effect: Option<String>,
    /// How long a `NoExecute` taint is tolerated before eviction, in seconds; None means forever.
    #[serde(
        default,
        rename = "tolerationSeconds",
        alias = "toleration_seconds",
        skip_serializing_if = "Option::is_none"
    )]
    pub toleration_seconds: Option<i64>,
}

impl Toleration {
    /// Whether this toleration already tolerates every taint `wanted` tolerates, so adding
    /// `wanted` would change nothing.
    pub fn covers(&self, wanted: &Toleration) -> bool {
        let exists = self.operator.as_deref() == Some("Exists");
        let key_ok = match (&self.key, exists) {
            (None, true) => true,
            (key, _) => key == &wanted.key,
        };
        let value_ok =
            exists || (wanted.operator.as_deref() != Some("Exists") && self.value == wanted.value);
        let effect_ok = self.effect.is_none() || self.effect == wanted.effect;
        let seconds_ok = self.toleration_seconds.is_none()
            || self.toleration_seconds == wanted.toleration_seconds;
        key_ok && value_ok && effect_ok && seconds_ok
    }
}

/// A pod's "namespace/name", see [`Pod::display_name`].
pub struct DisplayName<'a> {
    pod: &'a Pod,
    namespace: &'a str,
}

impl std::fmt::Display for DisplayName<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/", self.namespace)?;
        self.pod.write_name(f)
    }
}

/// Where a container sits in the pod: the patch never touches ephemeral containers'
/// scheduling (they join a pod that is already bound).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerKind {
    /// An init container, which runs to completion before the app containers start.
    Init,
    /// An app container from `spec.containers`.
    App,
    /// An ephemeral (debug) container, checked but never used to place the pod.
    Ephemeral,
}

impl ContainerKind {
    /// The kind as messages name it: "init container", "container", "ephemeral container".
    pub fn as_str(self) -> &'static str {
        match self {
            ContainerKind::Init => "init container",
            ContainerKind::App => "container",
            ContainerKind::Ephemeral => "ephemeral container",
        }
    }
}

impl Pod {
    /// "namespace/name" for messages; generated pods have no name yet at mutation time.
    /// Written only when a message is.
    pub fn display_name<'a>(&'a self, namespace: &'a str) -> DisplayName<'a> {
        DisplayName {
            pod: self,
            namespace,
        }
    }

    /// The pod's name, or what it will be named after: `web-7d9f-<generated>`.
    pub fn shown_name(&self) -> String {
        let mut name = String::new();
        // Writing to a String cannot fail.
        let _ = self.write_name(&mut name);
        name
    }

    fn write_name(&self, out: &mut impl std::fmt::Write) -> std::fmt::Result {
        match (&self.metadata.name, &self.metadata.generate_name) {
            (Some(n), _) if !n.is_empty() => out.write_str(n),
            (_, Some(g)) => write!(out, "{g}<generated>"),
            _ => out.write_str("<unnamed>"),
        }
    }

    /// Init and app containers, the ones whose images decide placement.
    pub fn scheduling_containers(&self) -> impl Iterator<Item = (ContainerKind, &Container)> {
        let init = self.spec.init_containers.iter().flatten();
        init.map(|c| (ContainerKind::Init, c))
            .chain(self.spec.containers.iter().map(|c| (ContainerKind::App, c)))
    }

    /// Ephemeral containers, which are checked but never change scheduling.
    pub fn ephemeral_containers(&self) -> impl Iterator<Item = (ContainerKind, &Container)> {
        let eph = self.spec.ephemeral_containers.iter().flatten();
        eph.map(|c| (ContainerKind::Ephemeral, c))
    }

    /// `metadata.labels`, empty when the pod sets none; rules select pods by them.
    pub fn labels(&self) -> &BTreeMap<String, String> {
        static EMPTY: BTreeMap<String, String> = BTreeMap::new();
        self.metadata.labels.as_ref().unwrap_or(&EMPTY)
    }

    /// The value of annotation `key`, None when the pod lacks it.
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.metadata
            .annotations
            .as_ref()?
            .get(key)
            .map(String::as_str)
    }

    /// The controller that owns this pod, if any ("DaemonSet", "ReplicaSet", ...).
    pub fn controller_kind(&self) -> Option<&str> {
        self.metadata
            .owner_references
            .iter()
            .flatten()
            .find(|o| o.controller == Some(true))
            .map(|o| o.kind.as_str())
    }

    /// Pods whose node is already chosen (or chosen by their controller per node): changing
    /// their affinity would contradict where they run, so they are checked, never re-placed.
    pub fn is_bound(&self) -> bool {
        self.node_name().is_some()
            || self.controller_kind() == Some("DaemonSet")
            || self.is_mirror()
    }

    /// `spec.nodeName`, when set: the node the pod is bound to.
    pub fn node_name(&self) -> Option<&str> {
        self.spec.node_name.as_deref().filter(|n| !n.is_empty())
    }

    /// A static pod's mirror, which the kubelet creates for a pod it already runs.
    pub fn is_mirror(&self) -> bool {
        self.annotation("kubernetes.io/config.mirror").is_some()
    }

    /// Whether `spec.schedulingGates` holds a gate named `name`.
    pub fn has_gate(&self, name: &str) -> bool {
        self.spec
            .scheduling_gates
            .iter()
            .flatten()
            .any(|g| g.name == name)
    }

    /// The preferred node affinity terms, empty when the pod has none.
    pub fn preferred_terms(&self) -> &[PreferredSchedulingTerm] {
        self.spec
            .affinity
            .as_ref()
            .and_then(|a| a.node_affinity.as_ref())
            .and_then(|n| {
                n.preferred_during_scheduling_ignored_during_execution
                    .as_deref()
            })
            .unwrap_or(&[])
    }

    /// The required node selector terms, empty when the pod has none.
    pub fn required_terms(&self) -> &[NodeSelectorTerm] {
        self.spec
            .affinity
            .as_ref()
            .and_then(|a| a.node_affinity.as_ref())
            .and_then(|n| {
                n.required_during_scheduling_ignored_during_execution
                    .as_ref()
            })
            .map_or(&[], |s| s.node_selector_terms.as_slice())
    }
}

impl Container {
    /// `imagePullPolicy: Always`, or a `:latest`/untagged image, which Kubernetes pulls always.
    pub fn pulls_always(&self) -> bool {
        match self.image_pull_policy.as_deref() {
            Some(policy) => policy == "Always",
            None => self.image.as_deref().is_some_and(|i| {
                let name = i.rsplit('/').next().unwrap_or(i);
                !i.contains('@') && (!name.contains(':') || name.ends_with(":latest"))
            }),
        }
    }

    /// Extended resources this container asks for with a non-zero quantity, in limits or requests.
    pub fn requested_resources(&self) -> impl Iterator<Item = &str> {
        let r = self.resources.as_ref();
        let limits = r.and_then(|r| r.limits.as_ref()).into_iter().flatten();
        let requests = r.and_then(|r| r.requests.as_ref()).into_iter().flatten();
        limits
            .chain(requests)
            .filter(|(_, q)| !is_zero_quantity(q))
            .map(|(k, _)| k.as_str())
    }
}

/// Quantities arrive as strings ("1", "0", "500m") or, from hand-written JSON, numbers.
fn is_zero_quantity(q: &serde_json::Value) -> bool {
    match q {
        serde_json::Value::String(s) => {
            let digits = s.trim_end_matches(|c: char| c.is_ascii_alphabetic());
            digits.parse::<f64>().is_ok_and(|v| v == 0.0)
        }
        serde_json::Value::Number(n) => n.as_f64() == Some(0.0),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toleration(key: &str, op: &str, effect: Option<&str>) -> Toleration {
        Toleration {
            key: Some(key.into()),
            operator: Some(op.into()),
            effect: effect.map(Into::into),
            ..Toleration::default()
        }
    }

    #[test]
    fn an_exists_toleration_covers_the_same_key_with_any_effect_when_it_names_none() {
        let wanted = toleration("nvidia.com/gpu", "Exists", Some("NoSchedule"));
        assert!(toleration("nvidia.com/gpu", "Exists", Some("NoSchedule")).covers(&wanted));
        assert!(toleration("nvidia.com/gpu", "Exists", None).covers(&wanted));
        assert!(!toleration("nvidia.com/gpu", "Exists", Some("NoExecute")).covers(&wanted));
        assert!(!toleration("amd.com/gpu", "Exists", None).covers(&wanted));
        let everything = Toleration {
            operator: Some("Exists".into()),
            ..Toleration::default()
        };
        assert!(everything.covers(&wanted));
    }

    #[test]
    fn names_for_messages_say_what_the_pod_will_be_called() {
        let pod = |name: Option<&str>, generate: Option<&str>| Pod {
            metadata: ObjectMeta {
                name: name.map(Into::into),
                generate_name: generate.map(Into::into),
                ..ObjectMeta::default()
            },
            ..Pod::default()
        };
        let named = pod(Some("web-0"), Some("web-"));
        assert_eq!(named.shown_name(), "web-0");
        assert_eq!(named.display_name("shop").to_string(), "shop/web-0");
        let generated = pod(Some(""), Some("web-7d9f-"));
        assert_eq!(generated.shown_name(), "web-7d9f-<generated>");
        assert_eq!(
            generated.display_name("shop").to_string(),
            "shop/web-7d9f-<generated>"
        );
        assert_eq!(pod(None, None).display_name("x").to_string(), "x/<unnamed>");
    }

    #[test]
    fn zero_quantities_are_not_requests() {
        let c: Container = serde_json::from_value(serde_json::json!({
            "name": "c",
            "resources": {"limits": {"nvidia.com/gpu": "0", "amd.com/gpu": 1}, "requests": {"gpu.intel.com/i915": "1"}}
        }))
        .unwrap_or_default();
        let got: Vec<&str> = c.requested_resources().collect();
        assert_eq!(got, ["amd.com/gpu", "gpu.intel.com/i915"]);
    }
}
