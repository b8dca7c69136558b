//! `archgate serve` reloads its configuration files without a restart: the policy (`--policy`),
//! the static platforms file (`--platforms`), the registry configuration (`--registry-config`)
//! and the node-wide credentials (`--docker-config`).
//!
//! Their directories are watched ([`crate::server::reload`]); a file whose bytes did not change
//! does nothing. A file that does not load keeps the previous configuration in service: the
//! loader's message (file, line and column) is logged at error level. Every reload is counted in
//! `archgate_config_reloads_total{file,result}`. What is replaced is swapped atomically in the
//! [`Admission`]: requests in flight finish with what they started with.
//!
//! The platform source is two layers, kept apart here so each is replaced alone: the static file
//! (rebuilt when it changes; the registry source and its caches stay), then the registry (rebuilt
//! when either of its files changes what archgate uses, with empty caches).

use super::placement_args::Preparation;
use super::registry_args::{
    configured_hosts, new_registry_source, parse_docker_config, RegistryArgs, RegistryArgsError,
};
use crate::admission::Admission;
use crate::platforms::{
    Layered, PlatformSource, PullSecrets, StaticPlatforms, StaticPlatformsError,
};
use crate::policy::{Policy, PolicyError};
use crate::registry::credentials::Keyring;
use crate::registry::metrics::RegistryMetrics;
use crate::registry::{RegistryConfig, RegistryConfigError};
use crate::server::reload::{self, FileWatch, Tracked, WatchError};
use prometheus::IntCounterVec;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A reloadable file, as the `file` label of `archgate_config_reloads_total` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigFile {
    /// The policy file (`--policy`).
    Policy,
    /// The static platforms file (`--platforms`).
    Platforms,
    /// The registry client configuration (`--registry-config`).
    RegistryConfig,
    /// The node-wide registry credentials (`--docker-config`).
    DockerConfig,
}

impl ConfigFile {
    /// The value of the `file` label.
    pub fn label(self) -> &'static str {
        match self {
            ConfigFile::Policy => "policy",
            ConfigFile::Platforms => "platforms",
            ConfigFile::RegistryConfig => "registry_config",
            ConfigFile::DockerConfig => "docker_config",
        }
    }
}

/// The text of a file as read, or why not; a file that is not UTF-8 is a read error, as it is
/// for `read_to_string`.
fn text(read: std::io::Result<Vec<u8>>) -> std::io::Result<String> {
    String::from_utf8(read?).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

/// A policy file at `path`, from what reading it gave.
pub fn parse_policy(path: &Path, read: std::io::Result<Vec<u8>>) -> Result<Policy, PolicyError> {
    let text = text(read).map_err(|source| PolicyError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    Policy::from_toml(&text, path)
}

/// A static platforms file at `path`, from what reading it gave.
pub fn parse_platforms(
    path: &Path,
    read: std::io::Result<Vec<u8>>,
) -> Result<StaticPlatforms, StaticPlatformsError> {
    let text = text(read).map_err(|source| StaticPlatformsError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    StaticPlatforms::from_toml(&text, path)
}

/// A registry configuration at `path`, from what reading it gave.
pub fn parse_registry_config(
    path: &Path,
    read: std::io::Result<Vec<u8>>,
) -> Result<RegistryConfig, RegistryConfigError> {
    let text = text(read).map_err(|source| RegistryConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    RegistryConfig::from_toml(&text, path)
}

/// The registry layer of the platform source, and what it was built from: rebuilt whole when
/// either file changes, from the other's last good content.
pub struct RegistryLayer {
    config_file: Option<Tracked>,
    docker_file: Option<Tracked>,
    config: RegistryConfig,
    keyring: Keyring,
    metrics: RegistryMetrics,
    pull_secrets: Option<Arc<dyn PullSecrets>>,
    source: Arc<dyn PlatformSource>,
}

impl RegistryLayer {
    /// Reads the files `args` names and builds the registry source, its metrics registered on
    /// `registry`; `None` when registry lookups are off.
    pub fn load(
        args: &RegistryArgs,
        pull_secrets: Option<Arc<dyn PullSecrets>>,
        registry: &prometheus::Registry,
    ) -> Result<Option<RegistryLayer>, RegistryArgsError> {
        if !args.enabled() {
            return Ok(None);
        }
        let mut config_file = args.registry_config.clone().map(Tracked::new);
        let config = match &mut config_file {
            Some(file) => file.load(parse_registry_config)?,
            None => RegistryConfig::default(),
        };
        let mut docker_file = args.docker_config.clone().map(Tracked::new);
        let keyring = match &mut docker_file {
            Some(file) => file.load(parse_docker_config)?,
            None => Keyring::default(),
        };
        let metrics = RegistryMetrics::register(registry, configured_hosts(&config))?;
        let source = new_registry_source(
            config.clone(),
            keyring.clone(),
            metrics.clone(),
            pull_secrets.clone(),
        )?;
        Ok(Some(RegistryLayer {
            config_file,
            docker_file,
            config,
            keyring,
            metrics,
            pull_secrets,
            source: Arc::new(source),
        }))
    }

    /// The registry source in service.
    pub fn source(&self) -> Arc<dyn PlatformSource> {
        Arc::clone(&self.source)
    }

    /// Reads both files again and rebuilds the source when either changed and loads. Returns
    /// whether the source was replaced.
    fn reload(&mut self, reloads: &IntCounterVec) -> bool {
        let mut changed = Vec::new();
        let mut config = None;
        if let Some(file) = &mut self.config_file {
            match file.load_if_changed(parse_registry_config) {
                Some(Ok(c)) => {
                    config = Some(c);
                    changed.push((ConfigFile::RegistryConfig, file.path().to_path_buf()));
                }
                Some(Err(e)) => failed(reloads, ConfigFile::RegistryConfig, file.path(), &e),
                None => {}
            }
        }
        let mut keyring = None;
        if let Some(file) = &mut self.docker_file {
            match file.load_if_changed(parse_docker_config) {
                Some(Ok(k)) => {
                    keyring = Some(k);
                    changed.push((ConfigFile::DockerConfig, file.path().to_path_buf()));
                }
                Some(Err(e)) => failed(reloads, ConfigFile::DockerConfig, file.path(), &e),
                None => {}
            }
        }
        if changed.is_empty() {
            return false;
        }
        let config = config.unwrap_or_else(|| self.config.clone());
        let keyring = keyring.unwrap_or_else(|| self.keyring.clone());
        // An edit that changes nothing archgate uses (a comment, a ConfigMap re-applied as it
        // was) keeps the caches: emptying them sends every pod's images to the registries at once.
        if config == self.config && keyring == self.keyring {
            for (file, path) in &changed {
                succeeded(
                    reloads,
                    *file,
                    path,
                    "reloaded; nothing archgate uses changed, so the registry source and its caches are kept",
                );
            }
            return false;
        }
        let metrics = self.metrics.with_configured(configured_hosts(&config));
        match new_registry_source(
            config.clone(),
            keyring.clone(),
            metrics,
            self.pull_secrets.clone(),
        ) {
            Ok(source) => {
                self.config = config;
                self.keyring = keyring;
                self.source = Arc::new(source);
                for (file, path) in &changed {
                    succeeded(
                        reloads,
                        *file,
                        path,
                        "reloaded; the registry source was rebuilt, and its caches start empty",
                    );
                }
                true
            }
            Err(e) => {
                for (file, path) in &changed {
                    failed(reloads, *file, path, &e);
                }
                false
            }
        }
    }
}

/// What `serve` read from its files at startup, and the files, to read again when they change.
pub struct ConfigFiles {
    /// `None` for the bundled policy of `--dev`.
    pub policy: Option<Tracked>,
    /// `None` without `--platforms`.
    pub platforms: Option<Tracked>,
    /// The static layer of the platform source in service.
    pub static_layer: Option<Arc<dyn PlatformSource>>,
    /// The registry layer, when registry lookups are on.
    pub registry: Option<RegistryLayer>,
}

impl ConfigFiles {
    /// The platform source of both layers, static first.
    pub fn source(&self) -> Arc<dyn PlatformSource> {
        Layered::stack(
            self.static_layer.clone(),
            self.registry.as_ref().map(RegistryLayer::source),
        )
    }
}

/// Puts what changed on disk in service in an [`Admission`].
pub struct Reloader {
    admission: Admission,
    preparation: Preparation,
    reloads: IntCounterVec,
    files: ConfigFiles,
}

impl Reloader {
    /// A reloader for `admission`, which serves what `files` read at startup; every reloaded
    /// policy gets `preparation`, as the first did.
    pub fn new(
        admission: Admission,
        preparation: Preparation,
        reloads: IntCounterVec,
        files: ConfigFiles,
    ) -> Reloader {
        Reloader {
            admission,
            preparation,
            reloads,
            files,
        }
    }

    /// The files watched: every file given on the command line.
    fn paths(&self) -> Vec<PathBuf> {
        let files = &self.files;
        let registry = files.registry.as_ref();
        [
            files.policy.as_ref(),
            files.platforms.as_ref(),
            registry.and_then(|r| r.config_file.as_ref()),
            registry.and_then(|r| r.docker_file.as_ref()),
        ]
        .into_iter()
        .flatten()
        .map(|t| t.path().to_path_buf())
        .collect()
    }

    /// Watches the files and reloads them on change until the returned watch is dropped;
    /// `None` when there is no file to watch (`--dev` alone).
    pub fn watch(mut self) -> Result<Option<FileWatch>, WatchError> {
        let paths = self.paths();
        if paths.is_empty() {
            return Ok(None);
        }
        reload::watch(&paths, move || self.check()).map(Some)
    }

    /// Reads every file again and puts in service what changed and loads.
    pub fn check(&mut self) {
        if let Some(file) = &mut self.files.policy {
            match file.load_if_changed(parse_policy) {
                Some(Ok(mut policy)) => {
                    if let Some(why) = self.preparation.apply(&mut policy) {
                        tracing::warn!(path = %file.path().display(), reason = %why, "the reloaded policy gates pods whose image lookups do not finish in time, but no placement controller runs: they are decided at once (unknown_images)");
                    }
                    self.admission.set_policy(Arc::new(policy));
                    succeeded(&self.reloads, ConfigFile::Policy, file.path(), "reloaded");
                }
                Some(Err(e)) => failed(&self.reloads, ConfigFile::Policy, file.path(), &e),
                None => {}
            }
        }
        let mut source_changed = false;
        if let Some(file) = &mut self.files.platforms {
            match file.load_if_changed(parse_platforms) {
                Some(Ok(platforms)) => {
                    let what = format!(
                        "reloaded ({} images); the registry source and its caches are kept",
                        platforms.len()
                    );
                    self.files.static_layer = Some(Arc::new(platforms));
                    source_changed = true;
                    succeeded(&self.reloads, ConfigFile::Platforms, file.path(), &what);
                }
                Some(Err(e)) => failed(&self.reloads, ConfigFile::Platforms, file.path(), &e),
                None => {}
            }
        }
        if let Some(registry) = &mut self.files.registry {
            source_changed |= registry.reload(&self.reloads);
        }
        if source_changed {
            self.admission.set_source(self.files.source());
        }
    }
}

/// Counts and logs a file put in service.
fn succeeded(reloads: &IntCounterVec, file: ConfigFile, path: &Path, what: &str) {
    reloads.with_label_values(&[file.label(), "ok"]).inc();
    tracing::info!(file = file.label(), path = %path.display(), "configuration file {what}");
}

/// Counts and logs a file that did not load; what was in service stays.
fn failed(reloads: &IntCounterVec, file: ConfigFile, path: &Path, error: &dyn std::fmt::Display) {
    reloads.with_label_values(&[file.label(), "error"]).inc();
    tracing::error!(file = file.label(), path = %path.display(), error = %error, "configuration file not reloaded: still serving the previous one");
}

#[cfg(test)]
mod tests;
