//! Namespaces' labels, watched: a reflector over Namespaces behind [`NamespaceSource`], for
//! rules with a `namespace_selector`.
//!
//! A namespace the watch has not delivered yet (created a moment before its first pod) is read
//! once with a GET, as the API server's own webhook `namespaceSelector` does when its informer
//! misses; only when that fails too is it judged by name alone.

use crate::namespace::{Namespace, NamespaceSource};
use futures_util::future::BoxFuture;
use k8s_openapi::api::core::v1::Namespace as NamespaceObject;
use kube::api::Api;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use std::time::Duration;
use tokio::task::JoinHandle;

/// How long one admission waits for the GET of a namespace the watch has not delivered.
const MISS_TIMEOUT: Duration = Duration::from_secs(1);

/// The running Namespace watch; it stops when this is dropped.
pub struct NamespaceWatch {
    store: Store<NamespaceObject>,
    api: Api<NamespaceObject>,
    task: JoinHandle<()>,
}

impl NamespaceWatch {
    /// Watches every Namespace.
    pub fn spawn(client: kube::Client) -> NamespaceWatch {
        let api: Api<NamespaceObject> = Api::all(client);
        let (store, task) = super::secrets::reflect(
            api.clone(),
            watcher::Config::default().any_semantic(),
            "namespaces",
            "the ClusterRole in manifests/base grants it",
        );
        NamespaceWatch { store, api, task }
    }
}

impl Drop for NamespaceWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn to_namespace(name: &str, object: &NamespaceObject) -> Namespace {
    let labels = object.metadata.labels.clone().unwrap_or_default();
    Namespace::with_labels(name, labels.into_iter().collect())
}

impl NamespaceSource for NamespaceWatch {
    fn namespace<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Namespace> {
        Box::pin(async move {
            if let Some(object) = self.store.get(&ObjectRef::new(name)) {
                return to_namespace(name, &object);
            }
            match tokio::time::timeout(MISS_TIMEOUT, self.api.get_opt(name)).await {
                Ok(Ok(Some(object))) => to_namespace(name, &object),
                Ok(Ok(None)) => Namespace::named(name),
                Ok(Err(e)) => {
                    tracing::warn!(namespace = name, error = %e, "cannot read the namespace's labels; judging it by name only");
                    Namespace::named(name)
                }
                Err(_) => {
                    tracing::warn!(
                        namespace = name,
                        "the namespace's labels did not arrive in time; judging it by name only"
                    );
                    Namespace::named(name)
                }
            }
        })
    }
}
