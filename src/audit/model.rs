//! What the audit reads (facts the shell gathered from the cluster and the registries) and what
//! it reports (one [`Finding`] per object), as plain data.

use crate::inventory::Inventory;
use crate::platforms::ImagePlatforms;
use crate::pod::Pod;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;

/// A controller named by an owner reference: `ReplicaSet/web-7d9f`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjRef {
    /// The owner's `kind`: `ReplicaSet`, `Job`, `Deployment`, or a custom controller's kind.
    pub kind: String,
    /// The owner's name, in the pod's (or workload's) namespace: owner references never cross
    /// namespaces.
    pub name: String,
}

impl std::fmt::Display for ObjRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.kind, self.name)
    }
}

/// The few fields of a running pod the audit reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodFacts {
    /// `metadata.namespace`.
    pub namespace: String,
    /// `metadata.name`.
    pub name: String,
    /// `spec.nodeName`; None while the pod is not scheduled.
    pub node: Option<String>,
    /// The controller owner reference, when the pod has one.
    pub owner: Option<ObjRef>,
    /// Init and app container images, as written in the spec.
    pub images: Vec<String>,
    /// `status.phase` (`Running`, `Succeeded`, ...).
    pub phase: String,
    /// A container is waiting in `CrashLoopBackOff` now.
    pub crash_looping: bool,
    /// Restarts summed over its containers.
    pub restarts: u32,
    /// A static pod's mirror (the kubelet runs it; nobody creates it through the API).
    pub mirror: bool,
}

/// A workload (or a ReplicaSet or Job, which may be a workload's part) as the audit reads it.
#[derive(Debug, Clone)]
pub struct WorkloadFacts {
    /// `Deployment`, `StatefulSet`, `DaemonSet`, `Job`, `CronJob`, `ReplicaSet`, or `Pod` for a
    /// pod nothing owns.
    pub kind: String,
    /// `metadata.namespace`.
    pub namespace: String,
    /// `metadata.name`.
    pub name: String,
    /// The controller owner reference: a ReplicaSet's Deployment, a Job's CronJob.
    pub owner: Option<ObjRef>,
    /// The pod its controller creates (from `workload::pod_for`); only for workloads nothing
    /// owns, the ones the audit judges.
    pub template: Option<Pod>,
    /// The images of that pod, as written.
    pub images: Vec<String>,
    /// What the admission pipeline would do to it created today, when asked.
    pub decision: Option<Decided>,
}

/// The admission pipeline's answer for one workload, as `check` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decided {
    /// The validating stage would refuse it: reported as a would-deny finding.
    pub denied: bool,
    /// The mutating stage would patch it in a way that changes where its pods can go; a patch that
    /// only restates the existing pin is not counted.
    pub patched: bool,
    /// The name of the policy rule that matched; None when no rule did.
    pub rule: Option<String>,
    /// The architectures its pods would be placed on.
    pub architectures: Vec<String>,
    /// `object` (the workload's own template is patched) or `pods`.
    pub patch_target: &'static str,
    /// The RFC 6902 operations the mutating webhook would return.
    pub patch: Vec<serde_json::Value>,
    /// Why it would be denied, as the API server would show them.
    pub messages: Vec<String>,
    /// Warnings the API server would show to whoever creates it.
    pub warnings: Vec<String>,
}

/// What is known about one image (keyed by the reference as a pod writes it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageFacts {
    /// The normalised reference (`docker.io/library/nginx:1.27`): findings name images by it.
    pub reference: String,
    /// Whether its platforms were found, and what they are.
    pub status: ImageStatus,
}

/// The lookup's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageStatus {
    /// The platforms the image is built for.
    Resolved(Arc<ImagePlatforms>),
    /// Why the platforms are not known; `transient` when asking later may succeed.
    Unresolved {
        /// Why the lookup failed, as the registry client or the platforms file says.
        reason: String,
        /// Asking again later may succeed (a registry down, a timeout, 5xx, 429).
        transient: bool,
    },
}

/// Everything the audit decides from.
pub struct Input<'a> {
    /// The cluster's nodes, as listed.
    pub inventory: &'a Inventory,
    /// Every listed pod, bound or not.
    pub pods: &'a [PodFacts],
    /// Every listed workload: the ones nothing owns are judged, the others only resolve owner
    /// chains.
    pub workloads: &'a [WorkloadFacts],
    /// What is known about each image, keyed by the reference as pods and templates write it.
    pub images: &'a BTreeMap<String, ImageFacts>,
    /// The policy's `compatible_execution` (arm64 runs arm/v7, amd64 runs 386).
    pub compatible_execution: bool,
}

/// One thing the audit found, about one object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Finding {
    /// A pod bound to a node that cannot run one of its images.
    Misplaced(Misplaced),
    /// A workload the policy would refuse if it were created today.
    WouldDeny(WouldAdmit),
    /// A workload whose pods the policy would place differently if it were created today.
    WouldPatch(WouldAdmit),
    /// A workload pinned to fewer architectures than its images and the cluster allow.
    Narrower(Narrower),
    /// An image that lacks a build for an architecture the cluster has.
    MissingArch(MissingArch),
    /// An image whose platforms could not be looked up.
    Unresolved(Unresolved),
}

/// The kinds of finding, most serious first; `--fail-on` compares against this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FindingKind {
    /// See [`Finding::Misplaced`]: the most serious, a pod that may be crash-looping now.
    Misplaced,
    /// See [`Finding::WouldDeny`].
    WouldDeny,
    /// See [`Finding::WouldPatch`].
    WouldPatch,
    /// See [`Finding::Narrower`].
    Narrower,
    /// See [`Finding::MissingArch`].
    MissingArch,
    /// See [`Finding::Unresolved`]: the least serious, nothing is known to be wrong.
    Unresolved,
}

impl FindingKind {
    /// Every kind, in report order.
    pub const ALL: [FindingKind; 6] = [
        FindingKind::Misplaced,
        FindingKind::WouldDeny,
        FindingKind::WouldPatch,
        FindingKind::Narrower,
        FindingKind::MissingArch,
        FindingKind::Unresolved,
    ];

    /// The name in JSON and in the text report.
    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::Misplaced => "misplaced",
            FindingKind::WouldDeny => "would-deny",
            FindingKind::WouldPatch => "would-patch",
            FindingKind::Narrower => "narrower",
            FindingKind::MissingArch => "missing-arch",
            FindingKind::Unresolved => "unresolved",
        }
    }
}

impl Finding {
    /// Which kind of finding this is, for ordering, counting and `--fail-on`.
    pub fn kind(&self) -> FindingKind {
        match self {
            Finding::Misplaced(_) => FindingKind::Misplaced,
            Finding::WouldDeny(_) => FindingKind::WouldDeny,
            Finding::WouldPatch(_) => FindingKind::WouldPatch,
            Finding::Narrower(_) => FindingKind::Narrower,
            Finding::MissingArch(_) => FindingKind::MissingArch,
            Finding::Unresolved(_) => FindingKind::Unresolved,
        }
    }

    /// The object's namespace (empty for images) and name.
    pub fn object(&self) -> (&str, &str) {
        match self {
            Finding::Misplaced(m) => (&m.namespace, &m.name),
            Finding::WouldDeny(w) | Finding::WouldPatch(w) => (&w.namespace, &w.name),
            Finding::Narrower(n) => (&n.namespace, &n.name),
            Finding::MissingArch(m) => (&m.namespace, &m.name),
            Finding::Unresolved(u) => (&u.namespace, &u.name),
        }
    }
}

/// A pod bound to a node that cannot run one of its images.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Misplaced {
    /// The pod's namespace.
    pub namespace: String,
    /// The pod's name.
    pub name: String,
    /// Always `Pod`.
    pub object_kind: &'static str,
    /// The top owner: `Deployment/web`, `CronJob/backup`; null for a pod nothing owns.
    pub owner: Option<String>,
    /// The node the pod is bound to.
    pub node: String,
    /// The node's `kubernetes.io/arch` label.
    pub node_architecture: String,
    /// The node's `kubernetes.io/os` label.
    pub node_os: String,
    /// Each init and app container image, whether or not it runs on the node.
    pub images: Vec<ImageOnNode>,
    /// A container is waiting in `CrashLoopBackOff` now.
    pub crash_looping: bool,
    /// Restarts summed over the pod's containers.
    pub restarts: u32,
    /// `status.phase` (`Running`, `Pending`, ...).
    pub phase: String,
}

/// One image of a misplaced pod.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageOnNode {
    /// The reference as the pod writes it.
    pub image: String,
    /// `linux/amd64`, ...; empty when the image is unresolved.
    pub platforms: Vec<String>,
    /// Whether it runs on the pod's node; null when unresolved.
    pub runs_on_node: Option<bool>,
}

/// What the policy would do to a workload's pods if the workload were created today.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WouldAdmit {
    /// The workload's namespace.
    pub namespace: String,
    /// The workload's name.
    pub name: String,
    /// `Deployment`, `StatefulSet`, `DaemonSet`, `CronJob`, or a ReplicaSet, Job or Pod that
    /// nothing owns.
    pub object_kind: String,
    /// The name of the policy rule that matched; None when no rule did.
    pub rule: Option<String>,
    /// The architectures the pods would be placed on.
    pub architectures: Vec<String>,
    /// `pods` (the patch applies to the pods its controller creates) or `object` (to the object
    /// itself: a Pod nothing owns, or a template the policy's `[placement] templates` places).
    pub patch_target: &'static str,
    /// The RFC 6902 operations the mutating webhook would return, as `check` prints them.
    pub patch: Vec<serde_json::Value>,
    /// Why it would be denied.
    pub messages: Vec<String>,
    /// Warnings the API server would show.
    pub warnings: Vec<String>,
}

/// A workload pinned to fewer architectures than its images and the cluster allow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Narrower {
    /// The workload's namespace.
    pub namespace: String,
    /// The workload's name.
    pub name: String,
    /// `Deployment`, `StatefulSet`, `DaemonSet`, `CronJob`, or a ReplicaSet, Job or Pod that
    /// nothing owns.
    pub object_kind: String,
    /// The architectures its nodeSelector and affinity admit.
    pub pinned_to: Vec<String>,
    /// The cluster's architectures every image runs on (and with the GPUs it asks for).
    pub images_run_on: Vec<String>,
    /// What it could also run on: `imagesRunOn` minus `pinnedTo`.
    pub could_also_run_on: Vec<String>,
}

/// An image that lacks an architecture the cluster has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MissingArch {
    /// Always empty: images are not namespaced.
    pub namespace: String,
    /// The normalised image reference.
    pub name: String,
    /// The image's platforms (`linux/arm64`, ...).
    pub platforms: Vec<String>,
    /// The cluster's architectures it has no build for (compatible execution counts when allowed).
    pub missing: Vec<String>,
    /// How many workloads (and pods nothing owns) use it.
    pub workloads: usize,
    /// The workloads using it, as `namespace/Kind/name`; a pod counts as its top owner.
    pub used_by: Vec<String>,
}

/// An image whose platforms could not be looked up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Unresolved {
    /// Always empty: images are not namespaced.
    pub namespace: String,
    /// The normalised image reference.
    pub name: String,
    /// Why the lookup failed, as the registry client or the platforms file says.
    pub reason: String,
    /// True when asking again later may succeed (a registry down, a timeout, 5xx, 429).
    pub transient: bool,
    /// How many workloads (and pods nothing owns) use it.
    pub workloads: usize,
    /// The workloads using it, as `namespace/Kind/name`; a pod counts as its top owner.
    pub used_by: Vec<String>,
}
