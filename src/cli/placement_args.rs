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

/// Where `serve` runs its placement controller: its namespace and its Lease's duration.
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

    /// Decides once, at startup, what every policy this server loads needs: its own namespace,
    /// and whether a placement controller can release gated pods (a cluster is watched, RBAC
    /// allows it, and `policy`, the policy it starts with, gates at all). Apply the outcome to
    /// each policy with [`Preparation::apply`]; reloads do not ask the API server again.
    pub async fn prepare(&self, policy: &Policy, client: Option<&kube::Client>) -> Preparation {
        let controller = if policy.placement.on_lookup_timeout != OnLookupTimeout::Gate {
            Err("the policy archgate started with does not gate (on_lookup_timeout = \"decide\"), so no placement controller runs; restart archgate to start one".to_string())
        } else {
            match client {
                None => Err("archgate does not watch a cluster (--inventory static or no cluster configuration), so no controller would release a gated pod".to_string()),
                Some(client) => self.check_access(client).await,
            }
        };
        Preparation {
            namespace: self.namespace(),
            controller,
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

    /// Starts the controller when `preparation` found that one can run. It runs until dropped,
    /// whatever later reloads of the policy say, so pods gated before a reload that turns gating
    /// off are still released.
    pub fn start(
        &self,
        client: Option<kube::Client>,
        admission: &Admission,
        preparation: &Preparation,
        registry: &prometheus::Registry,
    ) -> anyhow::Result<Option<PlacementController>> {
        let Some(client) = client else {
            return Ok(None);
        };
        if preparation.controller.is_err() {
            return Ok(None);
        }
        let metrics = PlacementMetrics::register(registry)?;
        let config = ControllerConfig {
            namespace: preparation.namespace.clone(),
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

/// What [`PlacementArgs::prepare`] decided at startup, applied to each policy `serve` loads.
#[derive(Debug, Clone)]
pub struct Preparation {
    /// archgate's own namespace: its pods are never gated.
    namespace: String,
    /// Whether a placement controller runs, or why not.
    controller: Result<(), String>,
}

impl Preparation {
    /// Readies `policy` for this server: its own namespace is never gated, and gating is off
    /// when no controller releases gated pods, so nothing is ever left waiting on a controller
    /// that does not run. Returns why when it turned gating off.
    pub fn apply<'a>(&'a self, policy: &mut Policy) -> Option<&'a str> {
        policy.placement.never_gate.push(self.namespace.clone());
        if policy.placement.on_lookup_timeout != OnLookupTimeout::Gate {
            return None;
        }
        let why = self.controller.as_ref().err()?;
        policy.placement.on_lookup_timeout = OnLookupTimeout::Decide;
        Some(why)
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::path::Path;

    fn policy(placement: &str) -> Policy {
        let text = format!("[cluster]\nplatforms = [\"linux/amd64\"]\n{placement}");
        Policy::from_toml(&text, Path::new("test.toml")).unwrap()
    }

    #[tokio::test]
    async fn a_policy_that_does_not_gate_at_startup_keeps_every_reloaded_policy_from_gating() {
        let args = PlacementArgs {
            namespace: Some("archgate".into()),
            lease_duration: Duration::from_secs(15),
        };
        let start = policy("[placement]\non_lookup_timeout = \"decide\"\n");
        let preparation = args.prepare(&start, None).await;
        assert!(preparation.controller.is_err());
        let mut reloaded = policy("");
        assert_eq!(reloaded.placement.on_lookup_timeout, OnLookupTimeout::Gate);
        let why = preparation.apply(&mut reloaded).map(str::to_string);
        assert!(why.is_some_and(|w| w.contains("restart archgate")));
        assert_eq!(
            reloaded.placement.on_lookup_timeout,
            OnLookupTimeout::Decide
        );
        assert_eq!(reloaded.placement.never_gate.last().unwrap(), "archgate");
    }

    #[test]
    fn a_running_controller_leaves_gating_as_each_policy_says() {
        let preparation = Preparation {
            namespace: "ops".into(),
            controller: Ok(()),
        };
        let mut gates = policy("");
        assert_eq!(preparation.apply(&mut gates), None);
        assert_eq!(gates.placement.on_lookup_timeout, OnLookupTimeout::Gate);
        assert_eq!(gates.placement.never_gate.last().unwrap(), "ops");
        let mut decides = policy("[placement]\non_lookup_timeout = \"decide\"\n");
        assert_eq!(preparation.apply(&mut decides), None);
        assert_eq!(decides.placement.on_lookup_timeout, OnLookupTimeout::Decide);
    }

    #[tokio::test]
    async fn without_a_cluster_a_gating_policy_is_switched_to_decide_at_once() {
        let args = PlacementArgs {
            namespace: Some("archgate".into()),
            lease_duration: Duration::from_secs(15),
        };
        let mut start = policy("");
        let preparation = args.prepare(&start, None).await;
        let why = preparation.apply(&mut start).map(str::to_string);
        assert!(why.is_some_and(|w| w.contains("does not watch a cluster")));
        assert_eq!(start.placement.on_lookup_timeout, OnLookupTimeout::Decide);
    }
}
