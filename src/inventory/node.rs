//! The fields of a Node the inventory reads, and decoding of `kubectl get nodes -o json` output
//! (a List or NodeList), a single Node, or a raw LIST response.

use crate::arch::Arch;
use serde::Deserialize;
use std::collections::BTreeMap;

/// One node as the inventory sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeInfo {
    /// `metadata.name`, or "pool NAME" for a node a `[[cluster.pools]]` entry would bring.
    pub name: String,
    /// `kubernetes.io/arch`, when it names an architecture archgate knows.
    pub arch: Option<Arch>,
    /// The label value as written, for messages about unknown architectures.
    pub arch_label: String,
    /// `kubernetes.io/os` (else `status.nodeInfo.operatingSystem`); `linux` when neither says.
    pub os: String,
    /// `metadata.labels`, which pods' node selectors and affinity are matched against.
    pub labels: BTreeMap<String, String>,
    /// `spec.taints`, which a pod must tolerate to be scheduled there.
    pub taints: Vec<Taint>,
    /// Allocatable extended resources with a non-zero quantity (`nvidia.com/gpu`, ...).
    pub extended_resources: Vec<String>,
    /// `spec.unschedulable` (cordoned): only DaemonSet pods land there.
    pub unschedulable: bool,
    /// The CPU variant the node declares (`v3` for an x86-64-v3 CPU), from Node Feature
    /// Discovery's labels or a pool's platform; `None` when nothing says.
    pub variant: Option<String>,
}

/// The label Node Feature Discovery puts on a node for each CPUID flag its CPU has.
const NFD_CPUID: &str = "feature.node.kubernetes.io/cpu-cpuid.";

/// The x86-64 microarchitecture level Node Feature Discovery's CPUID labels show. NFD leaves
/// out the flags every x86-64 CPU has (SSE4.2, POPCNT, ...), so each level is read from the
/// flags that first appear with it: AVX-512 for v4, AVX2 with FMA for v3, AVX for v2.
fn amd64_level(labels: &BTreeMap<String, String>) -> Option<&'static str> {
    let has = |flag: &str| {
        labels
            .get(&format!("{NFD_CPUID}{flag}"))
            .map(String::as_str)
            == Some("true")
    };
    if ["AVX512F", "AVX512BW", "AVX512CD", "AVX512DQ", "AVX512VL"]
        .iter()
        .all(|f| has(f))
    {
        Some("v4")
    } else if has("AVX2") && has("FMA3") {
        Some("v3")
    } else if has("AVX") {
        Some("v2")
    } else if labels.keys().any(|k| k.starts_with(NFD_CPUID)) {
        // NFD ran and found none of them: a baseline CPU.
        Some("v1")
    } else {
        None
    }
}

/// One `spec.taints` entry of a node (or of a declared pool).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Taint {
    /// The taint key, e.g. `nvidia.com/gpu`.
    pub key: String,
    /// The taint value; None for a taint without one.
    #[serde(default)]
    pub value: Option<String>,
    /// `NoSchedule`, `PreferNoSchedule` or `NoExecute`.
    pub effect: String,
}

/// Why node JSON could not be read as nodes.
#[derive(Debug, thiserror::Error)]
pub enum NodeListError {
    /// The value (or a list item) does not decode as a Node.
    #[error("not a Node, NodeList or List of Nodes: {0}")]
    Decode(#[from] serde_json::Error),
    /// A list holds an object of another kind (as `kubectl get all -o json` prints).
    #[error("item {index} is a {kind}, not a Node")]
    NotANode {
        /// 0-based position in `items`.
        index: usize,
        /// The item's `kind`.
        kind: String,
    },
}

#[derive(Deserialize)]
struct RawNode {
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    metadata: RawMeta,
    #[serde(default)]
    spec: RawSpec,
    #[serde(default)]
    status: RawStatus,
}

#[derive(Default, Deserialize)]
struct RawMeta {
    #[serde(default)]
    name: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

#[derive(Default, Deserialize)]
struct RawSpec {
    #[serde(default)]
    taints: Vec<Taint>,
    #[serde(default)]
    unschedulable: bool,
}

#[derive(Default, Deserialize)]
struct RawStatus {
    #[serde(default)]
    allocatable: BTreeMap<String, String>,
    #[serde(default, rename = "nodeInfo")]
    node_info: Option<RawNodeInfo>,
}

#[derive(Deserialize)]
struct RawNodeInfo {
    #[serde(default)]
    architecture: String,
    #[serde(default, rename = "operatingSystem")]
    operating_system: String,
}

impl From<RawNode> for NodeInfo {
    fn from(n: RawNode) -> NodeInfo {
        let label = |k: &str| n.metadata.labels.get(k).cloned();
        let info = n.status.node_info.as_ref();
        let arch_label = label("kubernetes.io/arch")
            .or_else(|| info.map(|i| i.architecture.clone()))
            .unwrap_or_default();
        let os = label("kubernetes.io/os")
            .or_else(|| info.map(|i| i.operating_system.clone()))
            .unwrap_or_else(|| "linux".to_string());
        let extended_resources = n
            .status
            .allocatable
            .iter()
            .filter(|(k, v)| is_extended_resource(k) && v.as_str() != "0")
            .map(|(k, _)| k.clone())
            .collect();
        let arch = Arch::from_name(&arch_label);
        let variant = match arch {
            Some(Arch::Amd64) => amd64_level(&n.metadata.labels).map(str::to_string),
            _ => None,
        };
        NodeInfo {
            name: n.metadata.name,
            arch,
            arch_label,
            os,
            labels: n.metadata.labels,
            taints: n.spec.taints,
            extended_resources,
            unschedulable: n.spec.unschedulable,
            variant,
        }
    }
}

impl NodeInfo {
    /// `node.kubernetes.io/windows-build` ("10.0.17763"), which Windows nodes carry and images
    /// must match.
    pub fn windows_build(&self) -> Option<&str> {
        self.labels
            .get("node.kubernetes.io/windows-build")
            .map(String::as_str)
    }
}

/// Kubernetes' extended resources: a domain-prefixed name outside the kubernetes.io domains.
pub fn is_extended_resource(name: &str) -> bool {
    match name.split_once('/') {
        Some((domain, _)) => domain != "kubernetes.io" && !domain.ends_with(".kubernetes.io"),
        None => false,
    }
}

/// Decodes one Node object.
pub fn node_from_value(value: serde_json::Value) -> Result<NodeInfo, NodeListError> {
    let raw: RawNode = serde_json::from_value(value)?;
    Ok(raw.into())
}

/// Decodes a Node, a NodeList, or a List of Nodes (as `kubectl get nodes -o json|yaml` prints).
pub fn nodes_from_value(value: serde_json::Value) -> Result<Vec<NodeInfo>, NodeListError> {
    let Some(items) = value.get("items").and_then(|i| i.as_array()) else {
        return Ok(vec![node_from_value(value)?]);
    };
    items
        .iter()
        .enumerate()
        .map(|(index, item)| {
            let raw: RawNode = serde_json::from_value(item.clone())?;
            match raw.kind.as_deref() {
                None | Some("Node") => Ok(raw.into()),
                Some(kind) => Err(NodeListError::NotANode {
                    index,
                    kind: kind.to_string(),
                }),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::Inventory;

    #[test]
    fn the_seed_clusters_nodes_give_its_architectures_gpus_and_taints() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/nodes/seed-cluster.nodes.json"
        );
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let value: serde_json::Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
        let nodes = nodes_from_value(value).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(nodes.len(), 14);
        let inv = Inventory::from_nodes(nodes);
        assert_eq!(inv.archs.names(), ["amd64", "arm64"]);
        assert_eq!(inv.nodes_with(Arch::Arm64).count(), 5);
        let elminster = inv
            .node("elminster")
            .unwrap_or_else(|| panic!("no elminster"));
        assert_eq!(elminster.extended_resources, ["nvidia.com/gpu"]);
        assert_eq!(elminster.taints[0].key, "nvidia.com/gpu");
        let durnan = inv.node("durnan").unwrap_or_else(|| panic!("no durnan"));
        assert_eq!(
            durnan
                .labels
                .get("node.kubernetes.io/instance-type")
                .map(String::as_str),
            Some("raspberry-pi")
        );
        assert!(
            durnan.extended_resources.is_empty(),
            "hugepages are not extended resources"
        );
    }
}
