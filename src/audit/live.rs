//! The misplaced-pods view `archgate serve` keeps: bound pods (only the fields the judgement
//! reads), each judged against its node as `archgate audit` judges it, counted per namespace.
//! Pure state: the pod watch feeds it and turns what it reports into a gauge, logs and Events.

use super::misfits;
use crate::inventory::Inventory;
use crate::platforms::{ImagePlatforms, PullContext};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

/// A pod bound to a node, as the watch keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoundPod {
    /// `metadata.namespace`.
    pub namespace: String,
    /// `metadata.name`.
    pub name: String,
    /// `metadata.uid`, for the Event's involved object; None when the pod carries none.
    pub uid: Option<String>,
    /// `spec.nodeName`: the node the pod is bound to.
    pub node: String,
    /// Init and app container images, as written.
    pub images: Vec<String>,
    /// Who pulls them (pull secrets, service account), for the registry lookup.
    pub pull: PullContext,
    /// A completed pod has shown it runs where it ran.
    pub succeeded: bool,
}

/// A pod that has just become misplaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Became {
    /// The pod's namespace.
    pub namespace: String,
    /// The pod's name.
    pub name: String,
    /// The pod's `metadata.uid`, for the Event's involved object.
    pub uid: Option<String>,
    /// The node it is bound to.
    pub node: String,
    /// The node's `os/architecture` (`linux/arm64`), as the log line and the Event say it.
    pub node_platform: String,
    /// The images that cannot run there, each with its platforms.
    pub images: Vec<(String, String)>,
}

#[derive(Debug)]
struct Entry {
    pod: BoundPod,
    /// What makes it misplaced, while it is.
    misplaced: Option<Became>,
}

/// Bound pods by (namespace, name), each with its last judgement.
#[derive(Debug, Default)]
pub struct MisplacedPods {
    pods: HashMap<(String, String), Entry>,
}

impl MisplacedPods {
    /// Adds or replaces a pod; its judgement is kept when nothing it reads changed.
    pub fn upsert(&mut self, pod: BoundPod) {
        let key = (pod.namespace.clone(), pod.name.clone());
        match self.pods.get_mut(&key) {
            Some(e) if e.pod == pod => {}
            Some(e) => e.pod = pod,
            None => {
                self.pods.insert(
                    key,
                    Entry {
                        pod,
                        misplaced: None,
                    },
                );
            }
        }
    }

    /// Forgets a deleted pod, and its place in the misplaced count.
    pub fn remove(&mut self, namespace: &str, name: &str) {
        self.pods.remove(&(namespace.to_string(), name.to_string()));
    }

    /// Keeps only the pods named in `listed` (after a relist).
    pub fn retain(&mut self, listed: &BTreeSet<(String, String)>) {
        self.pods.retain(|k, _| listed.contains(k));
    }

    /// How many pods are held.
    pub fn len(&self) -> usize {
        self.pods.len()
    }

    /// True when no pod is held.
    pub fn is_empty(&self) -> bool {
        self.pods.is_empty()
    }

    /// Every image some held pod runs, with who pulls it first.
    pub fn images(&self) -> BTreeMap<&str, &PullContext> {
        let mut out = BTreeMap::new();
        for e in self.pods.values() {
            for image in &e.pod.images {
                out.entry(image.as_str()).or_insert(&e.pod.pull);
            }
        }
        out
    }

    /// Judges every pod (or only `only`) against `inventory`, with the platforms `known` holds
    /// (an image it lacks counts for nothing); returns the pods that became misplaced.
    pub fn judge(
        &mut self,
        inventory: &Inventory,
        known: &HashMap<String, Arc<ImagePlatforms>>,
        compatible_execution: bool,
        only: Option<(&str, &str)>,
    ) -> Vec<Became> {
        let mut became = Vec::new();
        let mut one = |e: &mut Entry| {
            let node = inventory.node(&e.pod.node);
            let misfits: Vec<&str> = match node {
                Some(node) if !e.pod.succeeded => misfits(
                    e.pod
                        .images
                        .iter()
                        .map(|i| (i.as_str(), known.get(i).map(|p| p.as_ref()))),
                    node,
                    compatible_execution,
                ),
                _ => Vec::new(),
            };
            let now = match node {
                Some(node) if !misfits.is_empty() => Some(Became {
                    namespace: e.pod.namespace.clone(),
                    name: e.pod.name.clone(),
                    uid: e.pod.uid.clone(),
                    node: node.name.clone(),
                    node_platform: format!("{}/{}", node.os, node.arch_label),
                    images: misfits
                        .iter()
                        .map(|i| {
                            let p = known.get(*i).map(|p| p.describe()).unwrap_or_default();
                            (i.to_string(), p)
                        })
                        .collect(),
                }),
                _ => None,
            };
            if let (Some(b), None) = (&now, &e.misplaced) {
                became.push(b.clone());
            }
            e.misplaced = now;
        };
        match only {
            Some((ns, name)) => {
                if let Some(e) = self.pods.get_mut(&(ns.to_string(), name.to_string())) {
                    one(e);
                }
            }
            None => self.pods.values_mut().for_each(one),
        }
        became
    }

    /// The pods misplaced now, with what makes them so.
    pub fn misplaced(&self) -> impl Iterator<Item = &Became> {
        self.pods.values().filter_map(|e| e.misplaced.as_ref())
    }

    /// Misplaced pods per namespace (namespaces without any are absent).
    pub fn by_namespace(&self) -> BTreeMap<String, i64> {
        let mut out = BTreeMap::new();
        for e in self.pods.values().filter(|e| e.misplaced.is_some()) {
            *out.entry(e.pod.namespace.clone()).or_insert(0) += 1;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::image::Platform;
    use crate::inventory::node::node_from_value;

    fn inventory() -> Inventory {
        let node = |name: &str, arch: &str| {
            node_from_value(serde_json::json!({"metadata": {"name": name, "labels":
                {"kubernetes.io/arch": arch, "kubernetes.io/os": "linux"}}}))
            .unwrap()
        };
        Inventory::from_nodes(vec![node("x1", "amd64"), node("pi1", "arm64")])
    }

    fn pod(name: &str, node: &str, image: &str) -> BoundPod {
        BoundPod {
            namespace: "shop".into(),
            name: name.into(),
            uid: None,
            node: node.into(),
            images: vec![image.into()],
            pull: PullContext::default(),
            succeeded: false,
        }
    }

    fn known() -> HashMap<String, Arc<ImagePlatforms>> {
        let amd = ImagePlatforms::new(vec![Platform::new("linux", "amd64", None)]);
        HashMap::from([("report:1".to_string(), Arc::new(amd))])
    }

    #[test]
    fn a_pod_becomes_misplaced_once_and_leaves_the_count_when_deleted() {
        let (inv, known) = (inventory(), known());
        let mut m = MisplacedPods::default();
        m.upsert(pod("a", "pi1", "report:1"));
        m.upsert(pod("b", "x1", "report:1"));
        m.upsert(pod("c", "pi1", "unknown:1"));
        let became = m.judge(&inv, &known, false, None);
        assert_eq!(became.len(), 1);
        assert_eq!(became[0].name, "a");
        assert_eq!(became[0].node_platform, "linux/arm64");
        assert_eq!(
            became[0].images,
            [("report:1".into(), "linux/amd64".into())]
        );
        assert_eq!(m.by_namespace(), BTreeMap::from([("shop".into(), 1)]));
        assert_eq!(
            m.misplaced().map(|b| b.name.as_str()).collect::<Vec<_>>(),
            ["a"]
        );
        // Judged again: still misplaced, not news.
        assert!(m.judge(&inv, &known, false, None).is_empty());
        m.upsert(pod("a", "pi1", "report:1"));
        assert!(m.judge(&inv, &known, false, Some(("shop", "a"))).is_empty());
        m.remove("shop", "a");
        assert!(m.by_namespace().is_empty());
        assert_eq!(m.len(), 2);
    }

    #[test]
    fn a_relist_drops_the_pods_it_no_longer_lists() {
        let mut m = MisplacedPods::default();
        m.upsert(pod("a", "pi1", "report:1"));
        m.upsert(pod("b", "x1", "report:1"));
        m.retain(&BTreeSet::from([("shop".to_string(), "b".to_string())]));
        assert_eq!(m.len(), 1);
        assert_eq!(m.images().keys().copied().collect::<Vec<_>>(), ["report:1"]);
    }
}
