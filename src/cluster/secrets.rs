//! Registry credentials, watched: reflectors over pull Secrets and ServiceAccounts behind
//! [`PullSecrets`], so an admission request reads a local copy and never calls the API server.
//!
//! Secrets are watched with a field selector per pull-secret type (two watches) rather than all
//! Secrets filtered here: the API server then never sends, and archgate never holds, the
//! cluster's other secrets — service-account tokens, TLS keys, and Helm release secrets of
//! hundreds of kilobytes each. The RBAC needed is the same either way.

use crate::platforms::{PullContext, PullSecret, PullSecretKind, PullSecrets};
use futures_util::StreamExt;
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use kube::api::Api;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::ResourceExt;
use serde::de::DeserializeOwned;
use std::sync::Arc;
use tokio::task::JoinHandle;

/// Where the permission for these watches comes from.
const RBAC: &str = "see manifests/components/pull-secrets";

/// The field selector of the `kubernetes.io/dockerconfigjson` watch.
pub const DOCKER_CONFIG_JSON_FIELD: &str = "type=kubernetes.io/dockerconfigjson";
/// The field selector of the legacy `kubernetes.io/dockercfg` watch.
pub const DOCKER_CFG_FIELD: &str = "type=kubernetes.io/dockercfg";

/// Each pull-secret kind with its Secret `type` and the data key kubelet reads.
const KINDS: [(PullSecretKind, &str, &str); 2] = [
    (
        PullSecretKind::DockerConfigJson,
        "kubernetes.io/dockerconfigjson",
        ".dockerconfigjson",
    ),
    (
        PullSecretKind::DockerCfg,
        "kubernetes.io/dockercfg",
        ".dockercfg",
    ),
];

/// A Secret's registry credentials, when it is a pull secret with its data key present.
pub fn pull_secret(secret: &Secret) -> Option<PullSecret> {
    let secret_type = secret.type_.as_deref()?;
    let (kind, _, key) = KINDS.into_iter().find(|(_, t, _)| *t == secret_type)?;
    let data = secret.data.as_ref()?.get(key)?;
    Some(PullSecret {
        namespace: secret.namespace()?,
        name: secret.name_any(),
        service_account: None,
        kind,
        data: Arc::from(data.0.as_slice()),
    })
}

/// Local copies of the cluster's pull Secrets and ServiceAccounts.
#[derive(Clone)]
pub struct WatchedPullSecrets {
    docker_config_json: Store<Secret>,
    docker_cfg: Store<Secret>,
    accounts: Store<ServiceAccount>,
}

impl WatchedPullSecrets {
    /// Reads from stores that something else keeps current (the watches, or a test).
    pub fn from_stores(
        docker_config_json: Store<Secret>,
        docker_cfg: Store<Secret>,
        accounts: Store<ServiceAccount>,
    ) -> WatchedPullSecrets {
        WatchedPullSecrets {
            docker_config_json,
            docker_cfg,
            accounts,
        }
    }

    /// Resolves once all three stores hold a full list (immediately after that).
    pub async fn synced(&self) {
        // A dropped writer means its watch stopped; there is nothing more to wait for.
        let _ = self.docker_config_json.wait_until_ready().await;
        let _ = self.docker_cfg.wait_until_ready().await;
        let _ = self.accounts.wait_until_ready().await;
    }

    fn secret(&self, namespace: &str, name: &str) -> Option<PullSecret> {
        let key = ObjectRef::new(name).within(namespace);
        self.docker_config_json
            .get(&key)
            .or_else(|| self.docker_cfg.get(&key))
            .and_then(|s| pull_secret(&s))
    }
}

impl PullSecrets for WatchedPullSecrets {
    fn secrets_for(&self, pull: &PullContext) -> Vec<PullSecret> {
        let account_name = match pull.service_account.as_str() {
            "" => "default",
            name => name,
        };
        let account = self
            .accounts
            .get(&ObjectRef::new(account_name).within(&pull.namespace));
        let from_account = account
            .iter()
            .flat_map(|sa| sa.image_pull_secrets.iter().flatten())
            .map(|r| (r.name.as_str(), true));
        let mut names: Vec<(&str, bool)> = Vec::new();
        // Kubelet's order: the pod's own list, then the service account's; a name listed twice
        // is tried once (as the pod's).
        for (name, via_account) in pull
            .image_pull_secrets
            .iter()
            .map(|n| (n.as_str(), false))
            .chain(from_account)
        {
            if !name.is_empty() && !names.iter().any(|(n, _)| *n == name) {
                names.push((name, via_account));
            }
        }
        names
            .into_iter()
            .filter_map(|(name, via_account)| {
                let mut secret = self.secret(&pull.namespace, name)?;
                if via_account {
                    secret.service_account = Some(account_name.to_string());
                }
                Some(secret)
            })
            .collect()
    }
}

/// The running Secret and ServiceAccount watches; they stop when this is dropped.
pub struct PullSecretWatch {
    secrets: Arc<WatchedPullSecrets>,
    tasks: Vec<JoinHandle<()>>,
}

impl PullSecretWatch {
    /// Watches pull Secrets (both types) and ServiceAccounts in every namespace.
    pub fn spawn(client: kube::Client) -> PullSecretWatch {
        let json = watcher::Config::default()
            .any_semantic()
            .fields(DOCKER_CONFIG_JSON_FIELD);
        let cfg = watcher::Config::default()
            .any_semantic()
            .fields(DOCKER_CFG_FIELD);
        let (json_store, json_task) = reflect(Api::all(client.clone()), json, "secrets", RBAC);
        let (cfg_store, cfg_task) = reflect(Api::all(client.clone()), cfg, "secrets", RBAC);
        let (accounts, accounts_task) = reflect(
            Api::all(client),
            watcher::Config::default().any_semantic(),
            "serviceaccounts",
            RBAC,
        );
        PullSecretWatch {
            secrets: Arc::new(WatchedPullSecrets::from_stores(
                json_store, cfg_store, accounts,
            )),
            tasks: vec![json_task, cfg_task, accounts_task],
        }
    }

    /// The credentials lookup the registry client uses.
    pub fn pull_secrets(&self) -> Arc<WatchedPullSecrets> {
        self.secrets.clone()
    }
}

impl Drop for PullSecretWatch {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Runs a reflector over `api` into a new store; `what` names the resource in logs, and
/// `rbac` says where the permission to list and watch it comes from.
pub(super) fn reflect<K>(
    api: Api<K>,
    config: watcher::Config,
    what: &'static str,
    rbac: &'static str,
) -> (Store<K>, JoinHandle<()>)
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let (store, writer) = reflector::store();
    let task = tokio::spawn(async move {
        let events = watcher::watcher(api, config)
            .default_backoff()
            // Managed fields are most of a small object's size and nothing here reads them.
            .modify(|o: &mut K| o.managed_fields_mut().clear())
            .reflect(writer);
        let mut events = std::pin::pin!(events);
        // The watcher retries with backoff and never ends; the loop lives as long as the task.
        while let Some(event) = events.next().await {
            if let Err(e) = event {
                tracing::warn!(resource = what, error = %e, "watch failed; retrying with backoff (may archgate list and watch {what}? {rbac})");
            }
        }
    });
    (store, task)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use kube::runtime::reflector::store::Writer;
    use kube::runtime::watcher::Event;

    fn secret(ns: &str, name: &str, ty: &str, key: &str) -> Secret {
        serde_json::from_value(serde_json::json!({
            "metadata": {"namespace": ns, "name": name},
            "type": ty,
            "data": {key: "e30="}
        }))
        .unwrap()
    }

    fn stores(secrets: &[Secret], accounts: &[ServiceAccount]) -> WatchedPullSecrets {
        let mut json = Writer::<Secret>::default();
        let mut cfg = Writer::<Secret>::default();
        let mut sa = Writer::<ServiceAccount>::default();
        for s in secrets {
            // Both stores see everything: the lookup must still check the type.
            json.apply_watcher_event(&Event::Apply(s.clone()));
            cfg.apply_watcher_event(&Event::Apply(s.clone()));
        }
        for a in accounts {
            sa.apply_watcher_event(&Event::Apply(a.clone()));
        }
        WatchedPullSecrets::from_stores(json.as_reader(), cfg.as_reader(), sa.as_reader())
    }

    #[test]
    fn the_pods_secrets_come_first_then_the_accounts_each_once_and_others_are_skipped() {
        let account: ServiceAccount = serde_json::from_value(serde_json::json!({
            "metadata": {"namespace": "apps", "name": "builder"},
            "imagePullSecrets": [{"name": "legacy"}, {"name": "regcred"}, {"name": "tls"}]
        }))
        .unwrap();
        let s = stores(
            &[
                secret(
                    "apps",
                    "regcred",
                    "kubernetes.io/dockerconfigjson",
                    ".dockerconfigjson",
                ),
                secret("apps", "legacy", "kubernetes.io/dockercfg", ".dockercfg"),
                secret("apps", "tls", "kubernetes.io/tls", "tls.crt"),
                secret(
                    "other",
                    "mirror",
                    "kubernetes.io/dockerconfigjson",
                    ".dockerconfigjson",
                ),
            ],
            &[account],
        );
        let pull = PullContext {
            namespace: "apps".into(),
            image_pull_secrets: vec!["missing".into(), "regcred".into(), "mirror".into()],
            service_account: "builder".into(),
        };
        let got: Vec<_> = s
            .secrets_for(&pull)
            .into_iter()
            .map(|p| (p.name, p.kind, p.service_account))
            .collect();
        assert_eq!(
            got,
            [
                (
                    "regcred".to_string(),
                    PullSecretKind::DockerConfigJson,
                    None
                ),
                (
                    "legacy".to_string(),
                    PullSecretKind::DockerCfg,
                    Some("builder".to_string())
                )
            ]
        );
    }
}
