//! The node inventory, watched: a reflector over Nodes that rebuilds the
//! [`Inventory`] on every change and swaps it whole into the admission path's `ArcSwap`.
//!
//! The local copy holds [`NodeInfo`] (the few fields the decision reads), not whole Node objects:
//! a Node carries managed fields and its list of cached images, kilobytes each, and the status
//! heartbeats that rewrite it every few minutes change nothing archgate reads. Such updates
//! convert one node, compare, and stop there.

use crate::inventory::node::{node_from_value, NodeListError};
use crate::inventory::{Inventory, NodeInfo};
use arc_swap::ArcSwap;
use futures_util::StreamExt;
use k8s_openapi::api::core::v1::Node;
use kube::api::Api;
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The one conversion from a Node object to what the inventory reads: the same decoder as
/// `kubectl get nodes -o json` output, so a watched node and a node from a file cannot disagree.
pub fn node_info(node: &Node) -> Result<NodeInfo, NodeListError> {
    node_from_value(serde_json::to_value(node)?)
}

/// What one watch event did to the inventory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A full list completed: the first sync, or a relist after the watch lost its place.
    Listed,
    /// A node was added, or changed in a field the inventory reads.
    Applied(String),
    /// The named node was deleted and left the inventory.
    Deleted(String),
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::Listed => f.write_str("listed all nodes"),
            Change::Applied(name) => write!(f, "node {name} added or changed"),
            Change::Deleted(name) => write!(f, "node {name} deleted"),
        }
    }
}

/// The nodes as the watch has seen them: pure state fed with watcher events.
#[derive(Debug, Default)]
pub struct NodeProjection {
    nodes: BTreeMap<String, NodeInfo>,
    /// A (re)list in progress; swapped in whole at `InitDone`, so readers never see half a list.
    relist: Option<BTreeMap<String, NodeInfo>>,
    synced: bool,
}

impl NodeProjection {
    /// Applies one watcher event; `Some` when the inventory changed and must be published.
    pub fn apply(&mut self, event: Event<Node>) -> Option<Change> {
        match event {
            Event::Init => {
                self.relist = Some(BTreeMap::new());
                None
            }
            Event::InitApply(node) => {
                if let Some((name, info)) = convert(&node) {
                    self.relist.get_or_insert_default().insert(name, info);
                }
                None
            }
            Event::InitDone => {
                let listed = self.relist.take().unwrap_or_default();
                let changed = !self.synced || listed != self.nodes;
                self.nodes = listed;
                self.synced = true;
                changed.then_some(Change::Listed)
            }
            // The watcher always lists before it watches; this guards against publishing half a
            // cluster should that ever change.
            Event::Apply(_) | Event::Delete(_) if !self.synced => None,
            Event::Apply(node) => {
                let (name, info) = convert(&node)?;
                if self.nodes.get(&name) == Some(&info) {
                    return None;
                }
                self.nodes.insert(name.clone(), info);
                Some(Change::Applied(name))
            }
            Event::Delete(node) => {
                let name = node.metadata.name?;
                self.nodes.remove(&name).map(|_| Change::Deleted(name))
            }
        }
    }

    /// True once a full list has been applied.
    pub fn is_synced(&self) -> bool {
        self.synced
    }

    /// The inventory of the nodes seen so far.
    pub fn inventory(&self) -> Inventory {
        Inventory::from_nodes(self.nodes.values().cloned().collect())
    }
}

fn convert(node: &Node) -> Option<(String, NodeInfo)> {
    match node_info(node) {
        Ok(info) => Some((info.name.clone(), info)),
        Err(e) => {
            let name = node.metadata.name.as_deref().unwrap_or("<unnamed>");
            tracing::warn!(node = name, error = %e, "cannot read node; leaving it out of the inventory");
            None
        }
    }
}

/// A running node watch; stops when dropped.
pub struct NodeWatch {
    synced: watch::Receiver<bool>,
    task: JoinHandle<()>,
}

impl NodeWatch {
    /// Watches every Node and stores a fresh [`Inventory`] into `inventory` on each change.
    pub fn spawn(client: kube::Client, inventory: Arc<ArcSwap<Inventory>>) -> NodeWatch {
        let (tx, synced) = watch::channel(false);
        let task = tokio::spawn(run(Api::all(client), inventory, tx));
        NodeWatch { synced, task }
    }

    /// Turns true after the first full list; stays true through later relists.
    pub fn synced(&self) -> watch::Receiver<bool> {
        self.synced.clone()
    }
}

impl Drop for NodeWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn run(api: Api<Node>, inventory: Arc<ArcSwap<Inventory>>, synced: watch::Sender<bool>) {
    // `any_semantic` lets the first list come from the API server's cache, as informers do,
    // instead of a quorum read of every node from etcd.
    let config = watcher::Config::default().any_semantic();
    let mut events = std::pin::pin!(watcher::watcher(api, config).default_backoff());
    let mut projection = NodeProjection::default();
    // The watcher retries with backoff and never ends; the loop lives as long as the task.
    while let Some(event) = events.next().await {
        let event = match event {
            Ok(event) => event,
            Err(e) => {
                tracing::warn!(error = %e, "node watch failed; retrying with backoff (is the API server reachable, and may archgate list and watch nodes?)");
                continue;
            }
        };
        let Some(change) = projection.apply(event) else {
            continue;
        };
        let now = projection.inventory();
        tracing::info!(
            architectures = %now.archs.names().join(","),
            nodes = now.nodes.len(),
            change = %change,
            "node inventory updated"
        );
        inventory.store(Arc::new(now));
        if projection.is_synced() && !*synced.borrow() {
            synced.send_replace(true);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::arch::Arch;

    fn node(name: &str, arch: &str) -> Node {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "labels": {"kubernetes.io/arch": arch, "kubernetes.io/os": "linux"}},
            "status": {"allocatable": {"cpu": "4"}}
        }))
        .unwrap()
    }

    fn synced(nodes: &[Node]) -> NodeProjection {
        let mut p = NodeProjection::default();
        assert_eq!(p.apply(Event::Init), None);
        for n in nodes {
            assert_eq!(p.apply(Event::InitApply(n.clone())), None);
        }
        assert_eq!(p.apply(Event::InitDone), Some(Change::Listed));
        p
    }

    #[test]
    fn nothing_is_published_before_the_first_full_list() {
        let mut p = NodeProjection::default();
        p.apply(Event::Init);
        p.apply(Event::InitApply(node("a", "amd64")));
        assert!(!p.is_synced());
        assert_eq!(p.apply(Event::Apply(node("b", "arm64"))), None);
        assert_eq!(p.apply(Event::InitDone), Some(Change::Listed));
        assert_eq!(p.inventory().archs.names(), ["amd64"]);
    }

    #[test]
    fn a_node_with_a_new_architecture_adds_it_and_its_deletion_removes_it() {
        let mut p = synced(&[node("a", "amd64"), node("b", "arm64")]);
        let added = p.apply(Event::Apply(node("v", "riscv64")));
        assert_eq!(added, Some(Change::Applied("v".into())));
        assert!(p.inventory().archs.contains(Arch::Riscv64));
        let deleted = p.apply(Event::Delete(node("v", "riscv64")));
        assert_eq!(deleted, Some(Change::Deleted("v".into())));
        assert_eq!(p.inventory().archs.names(), ["amd64", "arm64"]);
    }

    #[test]
    fn an_update_that_changes_nothing_the_inventory_reads_is_not_a_change() {
        let mut p = synced(&[node("a", "amd64")]);
        let mut heartbeat = node("a", "amd64");
        heartbeat.metadata.resource_version = Some("999".into());
        assert_eq!(p.apply(Event::Apply(heartbeat)), None);
        assert_eq!(p.apply(Event::Delete(node("gone", "amd64"))), None);
    }

    #[test]
    fn a_relist_replaces_the_nodes_whole_and_an_identical_one_is_no_change() {
        let mut p = synced(&[node("a", "amd64"), node("b", "arm64")]);
        p.apply(Event::Init);
        p.apply(Event::InitApply(node("a", "amd64")));
        p.apply(Event::InitApply(node("b", "arm64")));
        assert_eq!(p.apply(Event::InitDone), None);
        p.apply(Event::Init);
        p.apply(Event::InitApply(node("a", "amd64")));
        assert_eq!(p.apply(Event::InitDone), Some(Change::Listed));
        assert_eq!(p.inventory().archs.names(), ["amd64"]);
    }
}
