//! `--inventory`, `--pull-secrets`, `--kubeconfig`: how `archgate serve` learns the cluster it
//! guards, and the startup rules around it.
//!
//! `auto` (the default) watches Nodes when a cluster configuration exists and otherwise serves
//! the policy's static inventory, saying so once; an explicit `watch` (or `--pull-secrets`) that
//! cannot reach the API server stops startup with a message that says what to check, rather
//! than serving decisions about a cluster archgate cannot see.

use crate::cluster::client::{self, Access, ClientError, Connection};
use crate::cluster::namespaces::NamespaceWatch;
use crate::cluster::nodes::NodeWatch;
use crate::cluster::secrets::PullSecretWatch;
use crate::inventory::Inventory;
use crate::namespace::NamespaceSource;
use crate::platforms::PullSecrets;
use crate::policy::Policy;
use arc_swap::ArcSwap;
use clap::{Args, ValueEnum};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How long startup waits for the API server to answer the access check.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the node inventory comes from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum InventoryMode {
    /// The policy's `[cluster] platforms`.
    Static,
    /// The cluster's Nodes, watched; startup fails when the API server cannot be reached.
    Watch,
    /// Watch when a kubeconfig or in-cluster configuration exists, else static.
    #[default]
    Auto,
}

/// How `serve` learns the cluster it guards: the node inventory, pull secrets, the kubeconfig.
#[derive(Debug, Clone, Args)]
pub struct ClusterArgs {
    /// Node inventory: static (the policy's [cluster] platforms), watch (the cluster's Nodes), or
    /// auto (watch when a cluster configuration exists, else static; static with --dev).
    #[arg(long, value_enum, default_value_t = InventoryMode::Auto)]
    pub inventory: InventoryMode,
    /// Watch Secrets and ServiceAccounts for registry credentials (imagePullSecrets). Needs RBAC
    /// to get/list/watch secrets and serviceaccounts (manifests/components/pull-secrets).
    #[arg(long)]
    pub pull_secrets: bool,
    /// kubeconfig file [default: $KUBECONFIG, ~/.kube/config, or the in-cluster service account].
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
}

/// Why `serve` cannot start with the cluster it was asked to use.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// `--inventory watch` or `--pull-secrets` needs a cluster, and no configuration exists.
    #[error("{needed} needs a cluster configuration and none was found: pass --kubeconfig FILE, set KUBECONFIG, or run in a pod with a service account token{hint}")]
    NoConfiguration {
        /// The option that needs the cluster: `--inventory watch` or `--pull-secrets`.
        needed: &'static str,
        /// What else to try, appended to the message (`; or use --inventory static`), or empty.
        hint: &'static str,
    },
    /// The configuration does not load, or the API server does not answer in time or refuses
    /// a list.
    #[error(transparent)]
    Client(#[from] ClientError),
}

/// The started watches, or none when the static inventory is used. Dropping it stops them.
pub struct Cluster {
    inventory: Arc<ArcSwap<Inventory>>,
    /// The API client, when archgate talks to a cluster at all.
    client: Option<kube::Client>,
    nodes: Option<NodeWatch>,
    namespaces: Option<Arc<NamespaceWatch>>,
    pull_secrets: Option<PullSecretWatch>,
}

impl ClusterArgs {
    /// Decides static or watch, checks access within [`STARTUP_TIMEOUT`] when the cluster is
    /// used, and starts the watches. `dev` (`serve --dev`) makes `auto` mean static, so the
    /// quick start never depends on whatever cluster a laptop's kubeconfig points at.
    pub async fn start(&self, policy: &Policy, dev: bool) -> Result<Cluster, ClusterError> {
        // The policy's inventory serves until the first node list arrives.
        let inventory = Arc::new(ArcSwap::from_pointee(policy.static_inventory()));
        let origin = client::detect(self.kubeconfig.as_deref());
        let static_reason = match (self.inventory, &origin) {
            (InventoryMode::Watch, _) => None,
            (InventoryMode::Static, _) => Some("--inventory static"),
            (InventoryMode::Auto, _) if dev && self.kubeconfig.is_none() => Some("--dev"),
            (InventoryMode::Auto, None) => Some("no cluster configuration found (no --kubeconfig, KUBECONFIG, ~/.kube/config or in-cluster service account)"),
            (InventoryMode::Auto, Some(_)) => None,
        };
        if let Some(reason) = static_reason {
            tracing::info!(
                architectures = %policy.cluster_archs.names().join(","),
                reason,
                "using the policy's static node inventory (cluster.platforms)"
            );
        }
        let watch_nodes = static_reason.is_none();
        if !watch_nodes && !self.pull_secrets {
            return Ok(Cluster {
                inventory,
                client: None,
                nodes: None,
                namespaces: None,
                pull_secrets: None,
            });
        }
        let Some(origin) = origin else {
            return Err(ClusterError::NoConfiguration {
                needed: if watch_nodes {
                    "--inventory watch"
                } else {
                    "--pull-secrets"
                },
                hint: if watch_nodes {
                    "; or use --inventory static"
                } else {
                    ""
                },
            });
        };
        let connection = client::connect(origin).await?;
        if watch_nodes {
            match connection.check(&[Access::Nodes], STARTUP_TIMEOUT).await {
                Ok(()) => {}
                // `auto` found a configuration but not a working cluster: keep serving on the
                // static inventory and let the watch retry; /readyz says not ready meanwhile.
                Err(e) if self.inventory == InventoryMode::Auto => tracing::warn!(
                    error = %chain(&e),
                    "cannot list nodes yet; serving the policy's static inventory and retrying"
                ),
                Err(e) => return Err(e.into()),
            }
        }
        if self.pull_secrets {
            connection
                .check(&[Access::PullSecrets], STARTUP_TIMEOUT)
                .await?;
        }
        Ok(start_watches(
            connection,
            inventory,
            watch_nodes,
            self.pull_secrets,
        ))
    }
}

fn start_watches(
    connection: Connection,
    inventory: Arc<ArcSwap<Inventory>>,
    watch_nodes: bool,
    pull_secrets: bool,
) -> Cluster {
    let from = connection.origin.to_string();
    let Connection { client, url, .. } = connection;
    let nodes = watch_nodes.then(|| {
        tracing::info!(api_server = %url, config = %from, "watching nodes; the policy's static inventory serves until the first list");
        NodeWatch::spawn(client.clone(), inventory.clone())
    });
    // Namespaces' labels go with the cluster watch: a policy reload may add a namespace_selector.
    let namespaces = watch_nodes.then(|| Arc::new(NamespaceWatch::spawn(client.clone())));
    let pull_secrets = pull_secrets.then(|| {
        tracing::info!(api_server = %url, config = %from, "watching pull secrets and service accounts");
        PullSecretWatch::spawn(client.clone())
    });
    Cluster {
        inventory,
        client: Some(client),
        nodes,
        namespaces,
        pull_secrets,
    }
}

impl Cluster {
    /// The inventory the admission path reads; the node watch swaps it whole on every change.
    pub fn inventory(&self) -> Arc<ArcSwap<Inventory>> {
        self.inventory.clone()
    }

    /// The watched pull secrets, when `--pull-secrets` is on.
    pub fn pull_secrets(&self) -> Option<Arc<dyn PullSecrets>> {
        self.pull_secrets
            .as_ref()
            .map(|w| w.pull_secrets() as Arc<dyn PullSecrets>)
    }

    /// The watched namespaces, when the cluster is watched.
    pub fn namespaces(&self) -> Option<Arc<dyn NamespaceSource>> {
        self.namespaces
            .as_ref()
            .map(|w| Arc::clone(w) as Arc<dyn NamespaceSource>)
    }

    /// The API client, when the cluster is watched.
    pub fn client(&self) -> Option<kube::Client> {
        self.client.clone()
    }

    /// True when the inventory comes from a node watch.
    pub fn watches_nodes(&self) -> bool {
        self.nodes.is_some()
    }

    /// Sets `ready` once every watch has its first full list; at once when there is none.
    pub fn ready_when_synced(&self, ready: Arc<AtomicBool>) {
        let nodes = self.nodes.as_ref().map(NodeWatch::synced);
        let secrets = self
            .pull_secrets
            .as_ref()
            .map(PullSecretWatch::pull_secrets);
        if nodes.is_none() && secrets.is_none() {
            ready.store(true, Ordering::Release);
            return;
        }
        // Waits on channels only; it ends with the first sync or when the watches stop.
        tokio::spawn(async move {
            if let Some(mut synced) = nodes {
                if synced.wait_for(|s| *s).await.is_err() {
                    return;
                }
            }
            if let Some(secrets) = secrets {
                secrets.synced().await;
            }
            ready.store(true, Ordering::Release);
            tracing::info!("cluster watches synced; ready");
        });
    }
}

/// An error and its causes on one line, for log fields.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
