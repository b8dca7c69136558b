//! The namespace a pod is created in, as rules see it: its name and its labels. Rules pick
//! namespaces by name (`namespaces`) or by label (`namespace_selector`). The labels come from the
//! cluster (the Namespace watch in `cluster::namespaces`) when archgate serves, and from
//! Namespace objects in files for `check` and `archgate test`.

use futures_util::future::BoxFuture;
use std::collections::{BTreeMap, HashMap};
use std::sync::{PoisonError, RwLock};

/// The label the API server puts on every namespace (Kubernetes 1.21+), holding its name.
pub const NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// A namespace's name and labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespace {
    /// `metadata.name`, what a rule's `namespaces` lists.
    pub name: String,
    /// The namespace's labels, always including [`NAME_LABEL`]; `namespace_selector` matches them.
    pub labels: BTreeMap<String, String>,
}

impl Namespace {
    /// A namespace known by name only: it carries the one label every namespace has.
    pub fn named(name: &str) -> Namespace {
        Namespace::with_labels(name, BTreeMap::new())
    }

    /// A namespace with its object's labels. The name label is set as the API server sets it,
    /// whatever the object says.
    pub fn with_labels(name: &str, mut labels: BTreeMap<String, String>) -> Namespace {
        labels.insert(NAME_LABEL.to_string(), name.to_string());
        Namespace {
            name: name.to_string(),
            labels,
        }
    }
}

/// Where namespaces' labels come from.
pub trait NamespaceSource: Send + Sync {
    /// The namespace `name`, by name only when nothing more is known about it.
    fn namespace<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Namespace>;
}

/// Namespaces read from Namespace objects (`check --namespaces FILE`, the manifests checked);
/// any other namespace is known by name only.
#[derive(Debug, Clone, Default)]
pub struct StaticNamespaces(HashMap<String, Namespace>);

impl StaticNamespaces {
    /// Keeps `namespace`, replacing an earlier one of the same name.
    pub fn insert(&mut self, namespace: Namespace) {
        self.0.insert(namespace.name.clone(), namespace);
    }

    /// Keeps `object` when it is a Namespace with a name; returns whether it was one.
    pub fn insert_object(&mut self, object: &serde_json::Value) -> bool {
        if object.get("kind").and_then(|k| k.as_str()) != Some("Namespace") {
            return false;
        }
        let meta = object.get("metadata");
        let Some(name) = meta.and_then(|m| m.get("name")).and_then(|n| n.as_str()) else {
            return false;
        };
        let labels = meta
            .and_then(|m| m.get("labels"))
            .and_then(|l| l.as_object())
            .map(|l| {
                l.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        self.insert(Namespace::with_labels(name, labels));
        true
    }

    /// The namespace `name`, by name only when no object named it.
    pub fn get(&self, name: &str) -> Namespace {
        self.0
            .get(name)
            .cloned()
            .unwrap_or_else(|| Namespace::named(name))
    }
}

impl NamespaceSource for StaticNamespaces {
    fn namespace<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Namespace> {
        Box::pin(std::future::ready(self.get(name)))
    }
}

/// Namespaces learnt while reading manifests (`check` meets a Namespace before the pods in it,
/// as `kubectl apply` needs it first).
impl NamespaceSource for RwLock<StaticNamespaces> {
    fn namespace<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Namespace> {
        let known = self.read().unwrap_or_else(PoisonError::into_inner);
        Box::pin(std::future::ready(known.get(name)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_objects_give_labels_and_the_name_label_is_the_servers() {
        let mut known = StaticNamespaces::default();
        let object = serde_json::json!({
            "apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": "shop", "labels": {"team": "web", NAME_LABEL: "forged"}}
        });
        assert!(known.insert_object(&object));
        assert!(
            !known.insert_object(&serde_json::json!({"kind": "Pod", "metadata": {"name": "x"}}))
        );
        let shop = known.get("shop");
        assert_eq!(shop.labels.get("team").map(String::as_str), Some("web"));
        assert_eq!(
            shop.labels.get(NAME_LABEL).map(String::as_str),
            Some("shop")
        );
        let other = known.get("other");
        assert_eq!(other, Namespace::named("other"));
        assert_eq!(other.labels.len(), 1);
    }
}
