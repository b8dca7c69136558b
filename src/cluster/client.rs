//! Connecting to the Kubernetes API: `--kubeconfig FILE`, else `KUBECONFIG` or `~/.kube/config`,
//! else the in-cluster service account (what `kube::Config::infer` tries, in that order).
//!
//! "There is no cluster here" is told apart from "the configuration here does not work": the first
//! lets `--inventory auto` fall back to the policy's static inventory, the second is an error that
//! names the configuration it tried.

use k8s_openapi::api::core::v1::{Node, Secret, ServiceAccount};
use kube::api::{Api, ListParams};
use kube::config::{Config, InferConfigError, KubeConfigOptions, Kubeconfig, KubeconfigError};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where a client configuration was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigOrigin {
    /// `--kubeconfig FILE`.
    Flag(PathBuf),
    /// The `KUBECONFIG` environment variable (a list of files).
    KubeconfigEnv,
    /// `~/.kube/config`.
    HomeKubeconfig(PathBuf),
    /// `KUBERNETES_SERVICE_HOST` and the mounted service account token.
    InCluster,
}

impl fmt::Display for ConfigOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigOrigin::Flag(path) => write!(f, "--kubeconfig {}", path.display()),
            ConfigOrigin::KubeconfigEnv => f.write_str("$KUBECONFIG"),
            ConfigOrigin::HomeKubeconfig(path) => write!(f, "{}", path.display()),
            ConfigOrigin::InCluster => f.write_str("the in-cluster service account"),
        }
    }
}

/// A failed API call, shown as its cause alone: kube's own messages repeat their source.
#[derive(Debug)]
pub struct ApiFailure(pub Box<kube::Error>);

impl fmt::Display for ApiFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let kube::Error::Api(status) = self.0.as_ref() {
            return write!(
                f,
                "HTTP {} {}: {}",
                status.code, status.reason, status.message
            );
        }
        // The innermost cause is the one a person can act on ("Connection refused").
        let mut cause: &(dyn std::error::Error + 'static) = self.0.as_ref();
        while let Some(next) = cause.source() {
            cause = next;
        }
        write!(f, "{cause}")
    }
}

impl std::error::Error for ApiFailure {}

/// Why no working client could be made for the configuration found, each naming where it came
/// from so the message says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The `--kubeconfig` file does not load.
    #[error("cannot load the kubeconfig given with --kubeconfig {}", path.display())]
    Kubeconfig {
        /// The `--kubeconfig` path.
        path: PathBuf,
        /// kube's reason.
        #[source]
        source: Box<KubeconfigError>,
    },
    /// The configuration found (KUBECONFIG, ~/.kube/config or in-cluster) does not load.
    #[error("cannot load the cluster configuration found in {origin}: fix it, or pass --kubeconfig FILE")]
    Infer {
        /// Where it was found.
        origin: ConfigOrigin,
        /// kube's reason.
        #[source]
        source: Box<InferConfigError>,
    },
    /// With `--context`: the kubeconfig, or that context in it, does not load.
    #[error("cannot load the kubeconfig context asked for from {origin}: check --context against `kubectl config get-contexts`")]
    Context {
        /// Where the kubeconfig was found.
        origin: ConfigOrigin,
        /// kube's reason.
        #[source]
        source: Box<KubeconfigError>,
    },
    /// The configuration loaded, but kube cannot build a client from it.
    #[error("cannot build a Kubernetes client for {url} (from {origin})")]
    Build {
        /// The API server's URL, from the configuration.
        url: String,
        /// Where the configuration was found.
        origin: ConfigOrigin,
        /// kube's reason.
        #[source]
        source: ApiFailure,
    },
    /// The startup access check got no answer within its timeout.
    #[error("the Kubernetes API server at {url} (from {origin}) did not answer within {timeout:?}: check that it is reachable from here, or run with --inventory static")]
    Timeout {
        /// The API server's URL, from the configuration.
        url: String,
        /// Where the configuration was found.
        origin: ConfigOrigin,
        /// How long the check waited.
        timeout: Duration,
    },
    /// The startup access check's LIST failed: rejected credentials, RBAC, or no connection.
    #[error(
        "cannot list {resource} from the Kubernetes API server at {url} (from {origin}): {hint}"
    )]
    Access {
        /// What could not be listed: `nodes`, `secrets` or `serviceaccounts`.
        resource: &'static str,
        /// The API server's URL, from the configuration.
        url: String,
        /// Where the configuration was found.
        origin: ConfigOrigin,
        /// What to check, chosen by the failure (401, 403, other refusal, no connection).
        hint: &'static str,
        /// The API server's answer or the transport error.
        #[source]
        source: ApiFailure,
    },
}

/// A client and where its configuration came from, for messages.
#[derive(Clone)]
pub struct Connection {
    /// The client, for every request and watch.
    pub client: kube::Client,
    /// Where its configuration came from.
    pub origin: ConfigOrigin,
    /// The API server's URL, as messages name it.
    pub url: String,
}

/// Which cluster configuration exists, without loading it: `None` when there is none at all.
pub fn detect(kubeconfig: Option<&Path>) -> Option<ConfigOrigin> {
    if let Some(path) = kubeconfig {
        return Some(ConfigOrigin::Flag(path.to_path_buf()));
    }
    // Same rules as kube: a KUBECONFIG of only empty entries counts as unset.
    let env_set = std::env::var_os("KUBECONFIG")
        .is_some_and(|v| std::env::split_paths(&v).any(|p| !p.as_os_str().is_empty()));
    if env_set {
        return Some(ConfigOrigin::KubeconfigEnv);
    }
    // kube finds the home directory through $HOME on unix; so does this.
    if let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        let path = Path::new(&home).join(".kube").join("config");
        if path.is_file() {
            return Some(ConfigOrigin::HomeKubeconfig(path));
        }
    }
    std::env::var_os("KUBERNETES_SERVICE_HOST").map(|_| ConfigOrigin::InCluster)
}

/// Loads the configuration `origin` names and builds a client from it (no request is sent).
pub async fn connect(origin: ConfigOrigin) -> Result<Connection, ClientError> {
    connect_context(origin, None).await
}

/// [`connect`], with the kubeconfig's context `context` instead of its current one (`--context`;
/// meaningless for the in-cluster service account, which has no contexts).
pub async fn connect_context(
    origin: ConfigOrigin,
    context: Option<&str>,
) -> Result<Connection, ClientError> {
    let options = KubeConfigOptions {
        context: context.map(str::to_string),
        ..KubeConfigOptions::default()
    };
    let config = match &origin {
        ConfigOrigin::Flag(path) => {
            let kubeconfig = |source| ClientError::Kubeconfig {
                path: path.clone(),
                source: Box::new(source),
            };
            let file = Kubeconfig::read_from(path).map_err(kubeconfig)?;
            Config::from_custom_kubeconfig(file, &options)
                .await
                .map_err(kubeconfig)?
        }
        ConfigOrigin::KubeconfigEnv | ConfigOrigin::HomeKubeconfig(_) if context.is_some() => {
            Config::from_kubeconfig(&options)
                .await
                .map_err(|source| ClientError::Context {
                    origin: origin.clone(),
                    source: Box::new(source),
                })?
        }
        _ => Config::infer().await.map_err(|source| ClientError::Infer {
            origin: origin.clone(),
            source: Box::new(source),
        })?,
    };
    let url = config.cluster_url.to_string();
    // kube builds its rustls config with the process-wide provider; make sure it is ring (the one
    // the server uses) even if another dependency compiled in a second provider. Installing fails
    // only when one is already installed, which is just as good.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = kube::Client::try_from(config).map_err(|e| ClientError::Build {
        url: url.clone(),
        origin: origin.clone(),
        source: ApiFailure(Box::new(e)),
    })?;
    Ok(Connection {
        client,
        origin,
        url,
    })
}

/// What a watch needs to list; checked once at startup so a missing Role fails loudly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// The node watch (`--inventory watch`, or `auto` with a cluster): list nodes.
    Nodes,
    /// `--pull-secrets`: list secrets of type dockerconfigjson, and serviceaccounts.
    PullSecrets,
}

impl Connection {
    /// Lists one object of each kind `needs` names, within `timeout` in total: proves the API
    /// server is reachable, the credentials work, and RBAC lets archgate list what it watches.
    pub async fn check(&self, needs: &[Access], timeout: Duration) -> Result<(), ClientError> {
        let probe = async {
            for need in needs {
                self.probe(*need).await?;
            }
            Ok(())
        };
        tokio::time::timeout(timeout, probe)
            .await
            .unwrap_or_else(|_| {
                Err(ClientError::Timeout {
                    url: self.url.clone(),
                    origin: self.origin.clone(),
                    timeout,
                })
            })
    }

    async fn probe(&self, need: Access) -> Result<(), ClientError> {
        let one = ListParams::default().limit(1);
        let (resource, result) = match need {
            Access::Nodes => (
                "nodes",
                Api::<Node>::all(self.client.clone())
                    .list(&one)
                    .await
                    .map(drop),
            ),
            Access::PullSecrets => {
                let secrets = Api::<Secret>::all(self.client.clone())
                    .list(&one.clone().fields(super::secrets::DOCKER_CONFIG_JSON_FIELD))
                    .await
                    .map(drop);
                match secrets {
                    Ok(()) => (
                        "serviceaccounts",
                        Api::<ServiceAccount>::all(self.client.clone())
                            .list(&one)
                            .await
                            .map(drop),
                    ),
                    Err(e) => ("secrets", Err(e)),
                }
            }
        };
        result.map_err(|e| {
            let hint = match &e {
                kube::Error::Api(s) if s.code == 401 => {
                    "the credentials were rejected: check the kubeconfig user or the service account token"
                }
                kube::Error::Api(s) if s.code == 403 => {
                    "forbidden: grant archgate's service account get/list/watch on it (manifests/base/rbac.yaml; secrets and serviceaccounts: manifests/components/pull-secrets)"
                }
                kube::Error::Api(_) => "the API server refused the request",
                _ => "is the API server reachable from here and the kubeconfig's server address right? Or run with --inventory static",
            };
            ClientError::Access {
                resource,
                url: self.url.clone(),
                origin: self.origin.clone(),
                hint,
                source: ApiFailure(Box::new(e)),
            }
        })
    }
}
