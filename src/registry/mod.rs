//! Live image platforms from the image's own registry (the OCI distribution API), behind the
//! [`PlatformSource`] seam.
//!
//! One lookup: pick credentials as kubelet would (pod secrets, service account secrets, the node's
//! docker config, then anonymous), answer from the caches any of those credentials has unlocked,
//! else resolve once for all concurrent askers (tag by HEAD, index or manifest by GET only for a
//! digest not known, config blob for a single-platform image), bounded by the lookup timeout.

pub mod auth;
pub mod cache;
pub mod client;
pub mod config;
pub mod credentials;
pub mod guard;
pub mod manifest;
pub mod metrics;

use crate::image::ImageRef;
use crate::platforms::{
    ImagePlatforms, Lookup, LookupFuture, LookupRequest, PlatformSource, PullSecretKind,
    PullSecrets,
};
use cache::{Caches, SingleFlight};
use client::{Client, Endpoint, FetchError};
use credentials::{Credential, Keyring, Scope};
use manifest::{Document, ManifestError};
use reqwest::{Method, StatusCode};
use std::hash::{Hash, Hasher};
use std::sync::Arc;

pub use config::{RegistryConfig, RegistryConfigError};

/// Why one image's platforms could not be learned. The message names the image and what to do.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LookupError {
    #[error("image {image}: {source}")]
    Fetch {
        image: String,
        #[source]
        source: FetchError,
    },
    #[error("image {image}: {source}")]
    Document {
        image: String,
        #[source]
        source: ManifestError,
    },
    #[error("image {image}: index entry {digest} cannot be read ({source})")]
    Child {
        image: String,
        digest: String,
        #[source]
        source: FetchError,
    },
    #[error(
        "image {image}: {host} answered the tag without a Docker-Content-Digest header or body"
    )]
    NoDigest { image: String, host: String },
    #[error("image {image}: no answer from the registry within the {timeout_ms} ms lookup timeout (timeouts.lookup in the registry config)")]
    Timeout { image: String, timeout_ms: u128 },
}

/// The registry platform source.
pub struct RegistrySource {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client,
    caches: Caches,
    flights: SingleFlight<(String, u64), Result<Arc<ImagePlatforms>, Arc<str>>>,
    node_keyring: Keyring,
    pull_secrets: Option<Arc<dyn PullSecrets>>,
}

impl RegistrySource {
    /// `node_keyring` is the `--docker-config` file's credentials; `pull_secrets` the cluster's.
    pub fn new(
        client: Client,
        node_keyring: Keyring,
        pull_secrets: Option<Arc<dyn PullSecrets>>,
    ) -> RegistrySource {
        let caches = Caches::new(&client.config().cache, client.metrics.clone());
        RegistrySource {
            inner: Arc::new(Inner {
                client,
                caches,
                flights: SingleFlight::default(),
                node_keyring,
                pull_secrets,
            }),
        }
    }
}

impl PlatformSource for RegistrySource {
    fn lookup<'a>(&'a self, request: LookupRequest<'a>) -> LookupFuture<'a> {
        Box::pin(Arc::clone(&self.inner).lookup(request))
    }
}

impl Inner {
    async fn lookup(self: Arc<Self>, request: LookupRequest<'_>) -> Lookup {
        let image = request.image.clone();
        let ep = match self.client.endpoint(&image.registry) {
            Ok(ep) => ep,
            Err(e) => return Lookup::Failed(format!("image {image}: {e}")),
        };
        let credentials = self.credentials(&request, &ep);
        let mut scopes: Vec<Scope> = credentials.iter().map(Credential::scope).collect();
        scopes.push(Scope::Anonymous);
        if let Some(p) = self.cached(&ep, &image, &scopes).await {
            return Lookup::Found(p);
        }
        let key = image.lookup_key();
        let candidates = hash_of(&scopes);
        if let Some(message) = self.caches.failure(&key, candidates).await {
            return Lookup::Failed(message.to_string());
        }
        let work = Arc::clone(&self).resolve(ep, image, credentials, scopes, candidates);
        let result = self
            .flights
            .run((key, candidates), work, || {
                Err(Arc::from("the registry lookup task failed unexpectedly"))
            })
            .await;
        match result {
            Ok(p) => Lookup::Found(p),
            Err(message) => Lookup::Failed(message.to_string()),
        }
    }

    /// Credentials to try, in kubelet's order: pod secrets, service account's, node config.
    fn credentials(&self, request: &LookupRequest<'_>, ep: &Endpoint) -> Vec<Credential> {
        let mut keyrings = Vec::new();
        if let Some(source) = &self.pull_secrets {
            for secret in source.secrets_for(request.pull) {
                let origin = format!("pull secret {}/{}", secret.namespace, secret.name);
                let parsed = match secret.kind {
                    PullSecretKind::DockerConfigJson => {
                        Keyring::from_config_json(&secret.data, &origin)
                    }
                    PullSecretKind::DockerCfg => Keyring::from_dockercfg(&secret.data, &origin),
                };
                match parsed {
                    Ok(k) => keyrings.push(k),
                    Err(e) => tracing::warn!(error = %e, "skipping an unreadable pull secret"),
                }
            }
        }
        // Credentials belong to the host actually asked: a mirror has its own.
        let name = format!("{}/{}", ep.host, request.image.repository);
        credentials::candidates(keyrings.iter().chain([&self.node_keyring]), &name)
    }

    /// The answer already learned by any of `scopes`, without a registry request.
    async fn cached(
        &self,
        ep: &Endpoint,
        image: &ImageRef,
        scopes: &[Scope],
    ) -> Option<Arc<ImagePlatforms>> {
        let repo = &image.repository;
        let (digest, scopes) = match (&image.digest, &image.tag) {
            (Some(d), _) => (d.clone(), scopes.to_vec()),
            (None, Some(tag)) => {
                let (digest, scope) = self.caches.tag(&ep.host, repo, tag, scopes).await?;
                (digest, vec![scope])
            }
            (None, None) => return None,
        };
        self.caches
            .platforms(&ep.host, repo, &digest, &scopes)
            .await
    }

    /// One flight: each credential in turn, then anonymous; the first that works is cached
    /// under its scope, and a failure under the whole candidate set.
    async fn resolve(
        self: Arc<Self>,
        ep: Endpoint,
        image: ImageRef,
        credentials: Vec<Credential>,
        scopes: Vec<Scope>,
        candidates: u64,
    ) -> Result<Arc<ImagePlatforms>, Arc<str>> {
        // A flight that finished between this caller's cache miss and its joining has already
        // filled the cache: look again rather than ask the registry twice.
        if let Some(p) = self.cached(&ep, &image, &scopes).await {
            return Ok(p);
        }
        let metrics = &self.client.metrics;
        metrics.in_flight.inc();
        let timeout = self.client.config().timeouts.lookup;
        let attempts = async {
            let mut last = None;
            for credential in credentials.iter().map(Some).chain([None]) {
                match self.fetch(&ep, &image, credential).await {
                    Ok(p) => return Ok(p),
                    Err(LookupError::Fetch { source, .. }) if source.is_access() => {
                        // Keep the first refusal with credentials: it says more than anonymous's.
                        if last.is_none() || credential.is_some() {
                            last = Some(source);
                        }
                    }
                    Err(e) => return Err(e),
                }
            }
            Err(LookupError::Fetch {
                image: image.to_string(),
                source: last.unwrap_or(FetchError::Unauthorized {
                    host: ep.host.clone(),
                    status: 401,
                    hint: "",
                }),
            })
        };
        let result = match tokio::time::timeout(timeout, attempts).await {
            Ok(r) => r,
            Err(_) => Err(LookupError::Timeout {
                image: image.to_string(),
                timeout_ms: timeout.as_millis(),
            }),
        };
        metrics.in_flight.dec();
        match result {
            Ok(p) => Ok(p),
            Err(e) => {
                let message: Arc<str> = Arc::from(e.to_string());
                tracing::debug!(error = %message, "registry lookup failed");
                self.caches
                    .put_failure(&image.lookup_key(), candidates, Arc::clone(&message))
                    .await;
                Err(message)
            }
        }
    }

    /// Resolves one image with one credential (or anonymously).
    async fn fetch(
        &self,
        ep: &Endpoint,
        image: &ImageRef,
        credential: Option<&Credential>,
    ) -> Result<Arc<ImagePlatforms>, LookupError> {
        let scope = credential.map_or(Scope::Anonymous, Credential::scope);
        let repo = &image.repository;
        let name = image.to_string();
        let fetch_err = |source| LookupError::Fetch {
            image: name.clone(),
            source,
        };
        let digest = match (&image.digest, &image.tag) {
            (Some(d), _) => d.clone(),
            (None, tag) => {
                let tag = tag.as_deref().unwrap_or("latest");
                let path = format!("manifests/{tag}");
                let resp = self
                    .client
                    .send(ep, repo, Method::HEAD, &path, credential)
                    .await
                    .map_err(fetch_err)?;
                let resp = check_status(ep, resp, &format!("tag {tag}")).map_err(fetch_err)?;
                let digest = match header_digest(&resp) {
                    Some(d) => d,
                    // A registry that does not send the digest on HEAD: read the manifest.
                    None => {
                        let resp = self
                            .client
                            .send(ep, repo, Method::GET, &path, credential)
                            .await
                            .map_err(fetch_err)?;
                        let resp =
                            check_status(ep, resp, &format!("tag {tag}")).map_err(fetch_err)?;
                        let body = self
                            .client
                            .body(ep, resp, "manifest")
                            .await
                            .map_err(fetch_err)?;
                        if body.is_empty() {
                            return Err(LookupError::NoDigest {
                                image: name,
                                host: ep.host.clone(),
                            });
                        }
                        manifest::sha256_digest(&body)
                    }
                };
                self.caches
                    .put_tag(&ep.host, repo, tag, scope, digest.clone())
                    .await;
                if let Some(p) = self
                    .caches
                    .platforms(&ep.host, repo, &digest, &[scope])
                    .await
                {
                    return Ok(p);
                }
                digest
            }
        };
        let platforms = self.platforms_of(ep, image, &digest, credential).await?;
        let platforms = Arc::new(ImagePlatforms::new(platforms));
        self.caches
            .put_platforms(&ep.host, repo, &digest, scope, Arc::clone(&platforms))
            .await;
        Ok(platforms)
    }

    /// GETs the manifest `digest` and reads its platforms (children and config blobs as needed).
    async fn platforms_of(
        &self,
        ep: &Endpoint,
        image: &ImageRef,
        digest: &str,
        credential: Option<&Credential>,
    ) -> Result<Vec<crate::image::Platform>, LookupError> {
        let name = image.to_string();
        let doc_err = |source| LookupError::Document {
            image: name.clone(),
            source,
        };
        let (doc, _) = self.document(ep, image, digest, credential).await?;
        match doc {
            Document::Schema1(p) => Ok(vec![p]),
            Document::Image { config } => Ok(vec![
                self.config_platform(ep, image, &config.digest, credential)
                    .await?,
            ]),
            Document::Index(entries) => {
                let (mut platforms, unlabelled) =
                    manifest::index_platforms(&entries).map_err(doc_err)?;
                for child in unlabelled {
                    let child_err = |source| LookupError::Child {
                        image: name.clone(),
                        digest: child.digest.clone(),
                        source,
                    };
                    let (doc, _) = match self.document(ep, image, &child.digest, credential).await {
                        Ok(d) => d,
                        Err(LookupError::Fetch { source, .. }) => return Err(child_err(source)),
                        Err(e) => return Err(e),
                    };
                    let platform = match doc {
                        Document::Image { config } => {
                            self.config_platform(ep, image, &config.digest, credential)
                                .await?
                        }
                        Document::Schema1(p) => p,
                        Document::Index(_) => {
                            return Err(doc_err(ManifestError::NestedIndex(child.digest.clone())))
                        }
                    };
                    if !platform.is_unknown() && !platforms.contains(&platform) {
                        platforms.push(platform);
                    }
                }
                Ok(platforms)
            }
        }
    }

    async fn document(
        &self,
        ep: &Endpoint,
        image: &ImageRef,
        digest: &str,
        credential: Option<&Credential>,
    ) -> Result<(Document, Vec<u8>), LookupError> {
        let path = format!("manifests/{digest}");
        let (content_type, body) = self
            .get_verified(ep, image, &path, "manifest", digest, credential)
            .await?;
        let doc = manifest::parse(content_type.as_deref(), &body).map_err(|source| {
            LookupError::Document {
                image: image.to_string(),
                source,
            }
        })?;
        Ok((doc, body))
    }

    async fn config_platform(
        &self,
        ep: &Endpoint,
        image: &ImageRef,
        digest: &str,
        credential: Option<&Credential>,
    ) -> Result<crate::image::Platform, LookupError> {
        let path = format!("blobs/{digest}");
        let (_, body) = self
            .get_verified(ep, image, &path, "image config", digest, credential)
            .await?;
        manifest::config_platform(&body).map_err(|source| LookupError::Document {
            image: image.to_string(),
            source,
        })
    }

    /// GETs a manifest or blob (`kind`, for messages) by digest and checks the body against the
    /// digest, returning the content type and the body.
    async fn get_verified(
        &self,
        ep: &Endpoint,
        image: &ImageRef,
        path: &str,
        kind: &str,
        digest: &str,
        credential: Option<&Credential>,
    ) -> Result<(Option<String>, Vec<u8>), LookupError> {
        let fetch_err = |source| LookupError::Fetch {
            image: image.to_string(),
            source,
        };
        let resp = self
            .client
            .send(ep, &image.repository, Method::GET, path, credential)
            .await
            .map_err(fetch_err)?;
        let resp = check_status(ep, resp, &format!("{kind} {digest}")).map_err(fetch_err)?;
        let content_type = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let kind = if path.starts_with("blobs/") {
            "image config"
        } else {
            "manifest"
        };
        let body = self.client.body(ep, resp, kind).await.map_err(fetch_err)?;
        // Schema1 digests cover the payload without its signatures: not checkable from the body.
        let schema1 = content_type
            .as_deref()
            .is_some_and(|c| c.starts_with(manifest::DOCKER_SCHEMA1));
        if !schema1 {
            manifest::verify_digest(digest, &body).map_err(|source| LookupError::Document {
                image: image.to_string(),
                source,
            })?;
        }
        Ok((content_type, body))
    }
}

fn check_status(
    ep: &Endpoint,
    resp: reqwest::Response,
    what: &str,
) -> Result<reqwest::Response, FetchError> {
    match resp.status() {
        s if s.is_success() => Ok(resp),
        StatusCode::NOT_FOUND => Err(FetchError::NotFound {
            host: ep.host.clone(),
            what: what.to_string(),
        }),
        s => Err(FetchError::Status {
            host: ep.host.clone(),
            status: s.as_u16(),
            what: what.to_string(),
        }),
    }
}

fn header_digest(resp: &reqwest::Response) -> Option<String> {
    let d = resp.headers().get("docker-content-digest")?.to_str().ok()?;
    d.contains(':').then(|| d.to_string())
}

fn hash_of(scopes: &[Scope]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    scopes.hash(&mut h);
    h.finish()
}
