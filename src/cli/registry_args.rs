//! `--registry-config` and `--docker-config`: the registry options every command that resolves
//! images shares, and the one function that turns them into the platform source.

use crate::platforms::{Layered, PlatformSource, PullSecrets, StaticPlatforms};
use crate::registry::client::{Client, ClientBuildError};
use crate::registry::credentials::{CredentialsError, Keyring};
use crate::registry::metrics::RegistryMetrics;
use crate::registry::{RegistryConfig, RegistryConfigError, RegistrySource};
use clap::Args;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Debug, Clone, Default, Args)]
pub struct RegistryArgs {
    /// Registry client configuration (TOML): per-registry CA, plain HTTP and mirror, allow/deny
    /// lists, timeouts, cache. Given (or with --docker-config), images are looked up in their
    /// registries; the static platforms file still wins for the images it lists.
    #[arg(long, value_name = "FILE")]
    pub registry_config: Option<PathBuf>,
    /// Node-wide registry credentials, in the ~/.docker/config.json format; tried after the pod's
    /// and its service account's pull secrets.
    #[arg(long, value_name = "FILE")]
    pub docker_config: Option<PathBuf>,
}

/// Why the registry options could not be turned into a source.
#[derive(Debug, thiserror::Error)]
pub enum RegistryArgsError {
    #[error(transparent)]
    Config(#[from] RegistryConfigError),
    #[error("cannot read --docker-config {path}: {source}")]
    DockerConfigRead {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("--docker-config: {0}")]
    DockerConfig(#[from] CredentialsError),
    #[error("registry client: {0}")]
    Client(#[from] ClientBuildError),
    #[error("cannot register the registry metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

impl RegistryArgs {
    /// Are registry lookups on? Either option turns them on.
    pub fn enabled(&self) -> bool {
        self.registry_config.is_some() || self.docker_config.is_some()
    }

    /// The platform source for these options: the static platforms first (when given), then the
    /// registry (when enabled). `pull_secrets` is the cluster's Secrets and ServiceAccounts
    /// (None without a cluster); the registry's metrics are registered on `metrics`.
    pub fn build_source(
        &self,
        static_platforms: Option<StaticPlatforms>,
        pull_secrets: Option<Arc<dyn PullSecrets>>,
        metrics: &prometheus::Registry,
    ) -> Result<Arc<dyn PlatformSource>, RegistryArgsError> {
        let static_source = static_platforms.map(|p| Arc::new(p) as Arc<dyn PlatformSource>);
        if !self.enabled() {
            return Ok(static_source.unwrap_or_else(|| Arc::new(StaticPlatforms::default())));
        }
        let registry: Arc<dyn PlatformSource> =
            Arc::new(self.registry_source(pull_secrets, Some(metrics))?);
        Ok(match static_source {
            Some(first) => Arc::new(Layered::new(vec![first, registry])),
            None => registry,
        })
    }

    /// The registry source alone; without `metrics` its collectors are not exported.
    pub fn registry_source(
        &self,
        pull_secrets: Option<Arc<dyn PullSecrets>>,
        metrics: Option<&prometheus::Registry>,
    ) -> Result<RegistrySource, RegistryArgsError> {
        let config = match &self.registry_config {
            Some(path) => RegistryConfig::load(path)?,
            None => RegistryConfig::default(),
        };
        let keyring = match &self.docker_config {
            Some(path) => {
                let bytes =
                    std::fs::read(path).map_err(|source| RegistryArgsError::DockerConfigRead {
                        path: path.clone(),
                        source,
                    })?;
                Keyring::from_config_json(
                    &bytes,
                    &format!("--docker-config file {}", path.display()),
                )?
            }
            None => Keyring::default(),
        };
        let configured = config
            .registries
            .iter()
            .flat_map(|(host, c)| std::iter::once(host.clone()).chain(c.mirror.clone()))
            .chain(
                config
                    .allow
                    .iter()
                    .filter(|a| !a.starts_with("*."))
                    .cloned(),
            );
        let registry_metrics = match metrics {
            Some(m) => RegistryMetrics::register(m, configured.collect::<Vec<_>>())?,
            None => RegistryMetrics::unregistered(),
        };
        let client = Client::new(config, registry_metrics)?;
        Ok(RegistrySource::new(client, keyring, pull_secrets))
    }
}
