//! What the cluster has: which architectures, GPU resources and taints its nodes carry.
//!
//! The policy's `[cluster]` table is the static inventory (offline commands, and the fallback
//! before a node watch has synced); a list of Node objects gives the real one.

pub mod fit;
pub mod node;
pub mod placement;

use crate::arch::{Arch, ArchSet};
pub use node::{NodeInfo, NodeListError, Taint};

/// Where an inventory came from, for logs and messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InventorySource {
    /// The policy's `cluster.platforms`.
    Policy,
    /// Node objects (a watch, or `--nodes FILE`).
    Nodes,
}

/// The cluster as the decision sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Inventory {
    /// Architectures that at least one node has.
    pub archs: ArchSet,
    /// The nodes, when known; empty for the static inventory.
    pub nodes: Vec<NodeInfo>,
    /// Whether this came from the policy or from Node objects.
    pub source: InventorySource,
}

impl Inventory {
    /// The static inventory the policy declares (`[cluster] platforms`): architectures, no nodes.
    pub fn declared(archs: ArchSet) -> Inventory {
        Inventory {
            archs,
            nodes: Vec::new(),
            source: InventorySource::Policy,
        }
    }

    /// The inventory of a set of nodes: linux nodes with a known architecture count.
    pub fn from_nodes(nodes: Vec<NodeInfo>) -> Inventory {
        let archs = nodes
            .iter()
            .filter(|n| n.os == "linux")
            .filter_map(|n| n.arch)
            .collect();
        Inventory {
            archs,
            nodes,
            source: InventorySource::Nodes,
        }
    }

    /// The node named `name`, when nodes are known.
    pub fn node(&self, name: &str) -> Option<&NodeInfo> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// Names of the nodes with architecture `arch`.
    pub fn nodes_with(&self, arch: Arch) -> impl Iterator<Item = &NodeInfo> {
        self.nodes.iter().filter(move |n| n.arch == Some(arch))
    }
}
