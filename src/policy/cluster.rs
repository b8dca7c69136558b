//! The policy's `[cluster]` table: the platforms its nodes have, node pools that may scale from
//! zero, and node labels that declare CPU variants. Compiled into what the decision reads.

use super::model::{LabelKey, LabelValue, PlatformName, ResourceName};
use crate::arch::ArchSet;
use crate::inventory::{NodeInfo, Taint};
use serde::Deserialize;
use std::collections::BTreeMap;
use toml::Spanned;

/// What the cluster's nodes are, used until (and where) a live node inventory is not available.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSpec {
    /// `platforms`: the linux `os/arch[/variant]` of the nodes, e.g. `["linux/amd64"]`; must
    /// not be empty (other systems go in `pools`).
    pub platforms: Spanned<Vec<PlatformName>>,
    /// arm64 nodes run linux/arm (v6, v7) images and amd64 nodes linux/386 images, as containerd
    /// allows when the CPU can; off by default because not every arm64 CPU runs 32-bit code.
    #[serde(default)]
    pub compatible_execution: bool,
    /// Node pools an autoscaler (cluster-autoscaler, Karpenter) may create nodes in, possibly
    /// from zero: they count as places a pod can go whether or not they have nodes now.
    #[serde(default)]
    pub pools: Vec<Spanned<PoolSpec>>,
    /// `"label=value" = "v3"`: nodes carrying the label have that CPU variant.
    #[serde(default)]
    pub variant_labels: BTreeMap<String, Spanned<String>>,
}

/// One `[[cluster.pools]]` entry: what a node of the pool will look like.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolSpec {
    /// Names the pool in messages ("pool NAME"); non-empty and unique.
    pub name: String,
    /// "linux/arm64", "linux/amd64/v3", "windows/amd64".
    pub platform: PlatformName,
    /// Labels its nodes will carry; `kubernetes.io/arch` and `kubernetes.io/os` are added from
    /// `platform` (and must agree with it when given).
    #[serde(default)]
    pub labels: BTreeMap<LabelKey, LabelValue>,
    /// Taints its nodes will carry, which a pod must tolerate to go there.
    #[serde(default)]
    pub taints: Vec<TaintSpec>,
    /// Extended resources its nodes offer ("nvidia.com/gpu").
    #[serde(default)]
    pub resources: Vec<ResourceName>,
}

/// A taint as `kubectl taint` and Node objects spell it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaintSpec {
    /// The taint key, e.g. `nvidia.com/gpu`.
    pub key: String,
    /// The taint value; None for a taint without one.
    #[serde(default)]
    pub value: Option<String>,
    /// What the taint does to pods that do not tolerate it.
    pub effect: TaintEffect,
}

/// The effects Kubernetes accepts on a taint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum TaintEffect {
    /// New pods that do not tolerate the taint are not scheduled on the node.
    NoSchedule,
    /// The scheduler avoids the node for pods that do not tolerate the taint, but may use it.
    PreferNoSchedule,
    /// Pods that do not tolerate the taint are not scheduled there, and running ones are evicted.
    NoExecute,
}

impl TaintEffect {
    fn as_str(self) -> &'static str {
        match self {
            TaintEffect::NoSchedule => "NoSchedule",
            TaintEffect::PreferNoSchedule => "PreferNoSchedule",
            TaintEffect::NoExecute => "NoExecute",
        }
    }
}

/// A node label that declares a CPU variant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VariantLabel {
    /// The node label key, e.g. `example.com/cpu-level`.
    pub key: String,
    /// The label value that declares the variant.
    pub value: String,
    /// The CPU variant nodes with the label have (`v3`, `v8.2`).
    pub variant: String,
}

/// The compiled `[cluster]` table.
#[derive(Debug, Clone, Default)]
pub struct Cluster {
    /// Linux architectures of the declared platforms and pools.
    pub archs: ArchSet,
    /// Linux architectures of the pools alone, which count beside a live inventory's.
    pub pool_archs: ArchSet,
    /// Each pool as the node it would bring, named "pool NAME".
    pub pools: Vec<NodeInfo>,
    /// From `variant_labels`; they take precedence over a node's own variant.
    pub variant_labels: Vec<VariantLabel>,
}

impl Cluster {
    /// The CPU variant `node` declares: the policy's labels first, then what the node says.
    pub fn variant_of<'a>(&'a self, node: &'a NodeInfo) -> Option<&'a str> {
        self.variant_labels
            .iter()
            .find(|l| node.labels.get(&l.key) == Some(&l.value))
            .map(|l| l.variant.as_str())
            .or(node.variant.as_deref())
    }
}

/// Compiles `[cluster]`; an error carries the span it is about and the message.
pub fn compile(spec: &ClusterSpec) -> Result<Cluster, (std::ops::Range<usize>, String)> {
    let platforms = &spec.platforms;
    let archs: ArchSet = platforms.get_ref().iter().map(|p| p.arch).collect();
    if archs.is_empty() {
        return Err((
            platforms.span(),
            "cluster.platforms is empty: list the os/arch of your nodes, e.g. [\"linux/amd64\", \"linux/arm64\"]".into(),
        ));
    }
    if let Some(p) = platforms
        .get_ref()
        .iter()
        .find(|p| p.platform.os != "linux")
    {
        return Err((
            platforms.span(),
            format!("cluster.platforms: `{}` is not a linux platform; declare nodes of other systems as [[cluster.pools]] with platform = \"{}\"", p.platform, p.platform),
        ));
    }
    let mut pools: Vec<NodeInfo> = Vec::with_capacity(spec.pools.len());
    let mut pool_archs = ArchSet::EMPTY;
    for spanned in &spec.pools {
        let pool = pool(spanned.get_ref()).map_err(|m| (spanned.span(), m))?;
        if pools.iter().any(|p| p.name == pool.name) {
            return Err((
                spanned.span(),
                format!(
                    "two cluster.pools are named \"{}\": make the names unique",
                    spanned.get_ref().name
                ),
            ));
        }
        if pool.os == "linux" {
            pool_archs = pool_archs.union(pool.arch.into_iter().collect());
        }
        pools.push(pool);
    }
    let mut variant_labels = Vec::with_capacity(spec.variant_labels.len());
    for (label, variant) in &spec.variant_labels {
        let (key, value) = label.split_once('=').ok_or_else(|| {
            (
                variant.span(),
                format!("cluster.variant_labels: `{label}` is not \"label=value\", e.g. \"example.com/cpu-level=v3\" = \"v3\""),
            )
        })?;
        if crate::image::variant_rank(variant.get_ref()).is_none() {
            return Err((
                variant.span(),
                format!("cluster.variant_labels.\"{label}\": `{}` is not a CPU variant: write \"v2\", \"v3\", \"v7\", \"v8.2\"", variant.get_ref()),
            ));
        }
        variant_labels.push(VariantLabel {
            key: key.to_string(),
            value: value.to_string(),
            variant: variant.get_ref().clone(),
        });
    }
    Ok(Cluster {
        archs: archs.union(pool_archs),
        pool_archs,
        pools,
        variant_labels,
    })
}

fn pool(spec: &PoolSpec) -> Result<NodeInfo, String> {
    let name = spec.name.trim();
    if name.is_empty() {
        return Err("every cluster.pools entry needs a non-empty `name`".into());
    }
    let platform = &spec.platform.platform;
    let mut labels: BTreeMap<String, String> = spec
        .labels
        .iter()
        .map(|(k, v)| (k.0.clone(), v.0.clone()))
        .collect();
    for (key, want) in [
        ("kubernetes.io/arch", &platform.architecture),
        ("kubernetes.io/os", &platform.os),
    ] {
        match labels.get(key) {
            Some(have) if have != want => {
                return Err(format!(
                "cluster.pools \"{name}\": label {key}={have} contradicts its platform {platform}"
            ))
            }
            Some(_) => {}
            None => {
                labels.insert(key.to_string(), want.clone());
            }
        }
    }
    Ok(NodeInfo {
        name: format!("pool {name}"),
        arch: Some(spec.platform.arch),
        arch_label: platform.architecture.clone(),
        os: platform.os.clone(),
        labels,
        taints: spec
            .taints
            .iter()
            .map(|t| Taint {
                key: t.key.clone(),
                value: t.value.clone(),
                effect: t.effect.as_str().to_string(),
            })
            .collect(),
        extended_resources: spec.resources.iter().map(|r| r.0.clone()).collect(),
        unschedulable: false,
        variant: platform.variant.clone(),
    })
}
