//! `--namespace`, `--lease-duration`: where `archgate serve` runs its placement controller, and
//! the startup rule around gating: a pod is gated only when a controller will release it.

use crate::admission::Admission;
use crate::controller::metrics::PlacementMetrics;
use crate::controller::{ControllerConfig, PlacementController};
use crate::policy::gate::{GATED_LABEL, GATED_VALUE};
use crate::policy::model::OnLookupTimeout;
use crate::policy::Policy;
use clap::Args;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use std::time::Duration;

/// Where the service account's namespace is mounted in a pod.
const SERVICE_ACCOUNT_NAMESPACE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

#[derive(Debug, Clone, Args)]
pub struct PlacementArgs {
    /// archgate's own namespace: its pods are never gated, and the placement controller's Lease
    /// lives there [default: the service account's namespace, else "archgate"].
    #[arg(long, env = "ARCHGATE_NAMESPACE", value_name = "NS")]
    pub namespace: Option<String>,
    /// How long the placement controller's Lease holds without renewal: when the leading replica
    /// dies, another takes over within this time ("15s").
    #[arg(long, value_name = "DURATION", default_value = "15s", value_parser = |s: &str| {
        crate::text::parse_duration(s)
            .filter(|d| *d >= Duration::from_secs(1))
            .ok_or_else(|| format!("{s:?} is not a duration of at least 1s: write e.g. \"15s\""))
    })]
    pub lease_duration: Duration,
}

impl PlacementArgs {
    /// archgate's namespace: the flag, the mounted service account's, or "archgate".
    pub fn namespace(&self) -> String {
        self.namespace
            .clone()
            .or_else(|| {
                std::fs::read_to_string(SERVICE_ACCOUNT_NAMESPACE)
                    .ok()
                    .map(|s| s.trim().to_string())
            })
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "archgate".into())
    }

    /// Readies `policy` for this server: its own namespace is never gated, and gating is off
    /// when no controller could release a gated pod (no cluster, or RBAC that forbids it), so
    /// nothing is ever left waiting on a controller that does not run.
    pub async fn prepare(&self, policy: &mut Policy, client: Option<&kube::Client>) {
        policy.placement.never_gate.push(self.namespace());
        if policy.placement.on_lookup_timeout != OnLookupTimeout::Gate {
            return;
        }
        let why = match client {
            None => Some("archgate does not watch a cluster (--inventory static or no cluster configuration), so no controller would release a gated pod".to_string()),
            Some(client) => self.check_access(client).await.err(),
        };
        if let Some(why) = why {
            tracing::warn!(reason = %why, "pods whose image lookups do not finish in time are decided at once (unknown_images), not gated");
            policy.placement.on_lookup_timeout = OnLookupTimeout::Decide;
        }
    }

    /// Whether RBAC lets the controller list gated pods and read its Lease.
    async fn check_access(&self, client: &kube::Client) -> Result<(), String> {
        let probe = async {
            let selector = format!("{GATED_LABEL}={GATED_VALUE}");
            Api::<Pod>::all(client.clone())
                .list_metadata(&ListParams::default().labels(&selector).limit(1))
                .await
                .map_err(|e| format!("cannot list pods ({e}): grant archgate get/list/watch/patch on pods (manifests/base/rbac.yaml)"))?;
            Api::<Lease>::namespaced(client.clone(), &self.namespace())
                .get_opt(crate::controller::lease::LEASE_NAME)
                .await
                .map_err(|e| format!("cannot read Leases in {} ({e}): grant archgate get/create/update on leases there (manifests/base/rbac.yaml)", self.namespace()))?;
            Ok(())
        };
        tokio::time::timeout(super::cluster_args::STARTUP_TIMEOUT, probe)
            .await
            .unwrap_or_else(|_| {
                Err("the API server did not answer the controller's access check".into())
            })
    }

    /// Starts the controller when gating is on and the cluster is watched.
    pub fn start(
        &self,
        client: Option<kube::Client>,
        admission: &Admission,
        registry: &prometheus::Registry,
    ) -> anyhow::Result<Option<PlacementController>> {
        let Some(client) = client else {
            return Ok(None);
        };
        if admission.policy.placement.on_lookup_timeout != OnLookupTimeout::Gate {
            return Ok(None);
        }
        let metrics = PlacementMetrics::register(registry)?;
        let config = ControllerConfig {
            namespace: self.namespace(),
            identity: identity(),
            lease_duration: self.lease_duration,
        };
        tracing::info!(namespace = %config.namespace, identity = %config.identity, "placement controller started; one replica leads at a time");
        Ok(Some(PlacementController::spawn(
            client,
            admission.clone(),
            config,
            metrics,
        )))
    }
}

/// This replica: the pod's name (its hostname in Kubernetes) and the process id.
fn identity() -> String {
    let host = std::env::var("POD_NAME")
        .or_else(|_| std::env::var("HOSTNAME"))
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "archgate".into());
    format!("{host}_{}", std::process::id())
}
