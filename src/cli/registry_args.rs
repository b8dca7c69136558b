//! `--registry-config` and `--docker-config`: the registry options every command that resolves
//! images shares, and the one function that turns them into the platform source.

use crate::platforms::{Layered, PlatformSource, PullSecrets, StaticPlatforms};
use crate::registry::client::{Client, ClientBuildError};
use crate::registry::credentials::{CredentialsError, Keyring};
use crate::registry::metrics::RegistryMetrics;
use crate::registry::{RegistryConfig, RegistryConfigError, RegistrySource};
use clap::Args;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The registry options `serve`, `check` and `audit` share; with neither set, no registry is
/// asked.
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
    /// The `--registry-config` file does not load.
    #[error(transparent)]
    Config(#[from] RegistryConfigError),
    /// The `--docker-config` file cannot be read.
    #[error("cannot read --docker-config {path}: {source}")]
    DockerConfigRead {
        /// The `--docker-config` path.
        path: PathBuf,
        /// Why reading it failed.
        #[source]
        source: std::io::Error,
    },
    /// The `--docker-config` file is not a usable Docker config.json.
    #[error("--docker-config: {0}")]
    DockerConfig(#[from] CredentialsError),
    /// The registry HTTP client cannot be built (a registry's CA file that holds no certificate).
    #[error("registry client: {0}")]
    Client(#[from] ClientBuildError),
    /// The registry metrics cannot be registered (a name registered twice).
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
        let static_layer = static_platforms.map(|p| Arc::new(p) as Arc<dyn PlatformSource>);
        let registry = if self.enabled() {
            let source = self.registry_source(pull_secrets, Some(metrics))?;
            Some(Arc::new(source) as Arc<dyn PlatformSource>)
        } else {
            None
        };
        Ok(Layered::stack(static_layer, registry))
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
            Some(path) => parse_docker_config(path, std::fs::read(path))?,
            None => Keyring::default(),
        };
        let registry_metrics = match metrics {
            Some(m) => RegistryMetrics::register(m, configured_hosts(&config))?,
            None => RegistryMetrics::unregistered(),
        };
        Ok(new_registry_source(
            config,
            keyring,
            registry_metrics,
            pull_secrets,
        )?)
    }
}

/// The node-wide credentials of a `--docker-config` file at `path`, from `read` (its bytes, or
/// why it could not be read).
pub fn parse_docker_config(
    path: &Path,
    read: std::io::Result<Vec<u8>>,
) -> Result<Keyring, RegistryArgsError> {
    let bytes = read.map_err(|source| RegistryArgsError::DockerConfigRead {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(Keyring::from_config_json(
        &bytes,
        &format!("--docker-config file {}", path.display()),
    )?)
}

/// The hosts a registry configuration names (registries, their mirrors, exact `allow` entries):
/// they get their own `registry` label in the metrics.
pub fn configured_hosts(config: &RegistryConfig) -> Vec<String> {
    config
        .registries
        .iter()
        .flat_map(|(host, c)| std::iter::once(host.clone()).chain(c.mirror.clone()))
        .chain(
            config
                .allow
                .iter()
                .filter(|a| !a.starts_with("*."))
                .cloned(),
        )
        .collect()
}

/// A registry source over a loaded configuration and node-wide credentials; its caches start
/// empty.
pub fn new_registry_source(
    config: RegistryConfig,
    keyring: Keyring,
    metrics: RegistryMetrics,
    pull_secrets: Option<Arc<dyn PullSecrets>>,
) -> Result<RegistrySource, ClientBuildError> {
    let client = Client::new(config, metrics)?;
    Ok(RegistrySource::new(client, keyring, pull_secrets))
}
