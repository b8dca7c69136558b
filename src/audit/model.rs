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
    pub kind: String,
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
    pub namespace: String,
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
    pub namespace: String,
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
    pub denied: bool,
    pub patched: bool,
    pub rule: Option<String>,
    pub architectures: Vec<String>,
    /// `object` (the workload's own template is patched) or `pods`.
    pub patch_target: &'static str,
    pub patch: Vec<serde_json::Value>,
    pub messages: Vec<String>,
    pub warnings: Vec<String>,
}

/// What is known about one image (keyed by the reference as a pod writes it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageFacts {
    /// The normalised reference (`docker.io/library/nginx:1.27`): findings name images by it.
    pub reference: String,
    pub status: ImageStatus,
}

/// The lookup's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageStatus {
    Resolved(Arc<ImagePlatforms>),
    /// Why the platforms are not known; `transient` when asking later may succeed.
    Unresolved {
        reason: String,
        transient: bool,
    },
}

/// Everything the audit decides from.
pub struct Input<'a> {
    pub inventory: &'a Inventory,
    pub pods: &'a [PodFacts],
    pub workloads: &'a [WorkloadFacts],
    pub images: &'a BTreeMap<String, ImageFacts>,
    /// The policy's `compatible_execution` (arm64 runs arm/v7, amd64 runs 386).
    pub compatible_execution: bool,
}

/// One thing the audit found, about one object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Finding {
    Misplaced(Misplaced),
    WouldDeny(WouldAdmit),
    WouldPatch(WouldAdmit),
    Narrower(Narrower),
    MissingArch(MissingArch),
    Unresolved(Unresolved),
}

/// The kinds of finding, most serious first; `--fail-on` compares against this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FindingKind {
    Misplaced,
    WouldDeny,
    WouldPatch,
    Narrower,
    MissingArch,
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
    pub namespace: String,
    pub name: String,
    pub object_kind: &'static str,
    /// The top owner: `Deployment/web`, `CronJob/backup`; null for a pod nothing owns.
    pub owner: Option<String>,
    pub node: String,
    pub node_architecture: String,
    pub node_os: String,
    pub images: Vec<ImageOnNode>,
    pub crash_looping: bool,
    pub restarts: u32,
    pub phase: String,
}

/// One image of a misplaced pod.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageOnNode {
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
    pub namespace: String,
    pub name: String,
    pub object_kind: String,
    pub rule: Option<String>,
    pub architectures: Vec<String>,
    pub patch_target: &'static str,
    pub patch: Vec<serde_json::Value>,
    pub messages: Vec<String>,
    pub warnings: Vec<String>,
}

/// A workload pinned to fewer architectures than its images and the cluster allow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Narrower {
    pub namespace: String,
    pub name: String,
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
    pub platforms: Vec<String>,
    pub missing: Vec<String>,
    /// How many workloads (and pods nothing owns) use it.
    pub workloads: usize,
    pub used_by: Vec<String>,
}

/// An image whose platforms could not be looked up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Unresolved {
    pub namespace: String,
    pub name: String,
    pub reason: String,
    /// True when asking again later may succeed (a registry down, a timeout, 5xx, 429).
    pub transient: bool,
    pub workloads: usize,
    pub used_by: Vec<String>,
}
