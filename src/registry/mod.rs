//! Live image platforms from the image's own registry (the OCI distribution API), behind the
//! [`PlatformSource`] seam.
//!
//! One lookup: pick credentials as kubelet would (pod secrets, service account secrets, the node's
//! docker config, then anonymous), answer from the caches any of those credentials has unlocked,
//! else resolve once for all concurrent askers (tag by HEAD, index or manifest by GET only for a
//! digest not known, config blob for a single-platform image), bounded by the lookup timeout.
//! A configured mirror is asked first; when it fails, the image's own registry (unless
//! `mirror_only`), as containerd does, within the same timeout.

pub mod auth;
pub mod cache;
pub mod client;
pub mod config;
pub mod credentials;
mod error;
mod fetch;
pub mod guard;
mod http;
pub mod manifest;
pub mod metrics;

use crate::image::ImageRef;
use crate::platforms::{
    ImagePlatforms, Lookup, LookupFailure, LookupFuture, LookupRequest, PlatformSource,
    PullSecretKind, PullSecrets,
};
use cache::{Caches, Failure, SingleFlight};
use client::{Client, Endpoint, FetchError};
use credentials::{Credential, Keyring, Scope};
use futures_util::FutureExt;
use manifest::ManifestError;
use std::hash::{Hash, Hasher};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

pub use config::{RegistryConfig, RegistryConfigError};

/// Why one image's platforms could not be learned. The message names the image and what to do.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LookupError {
    /// A request for the tag, manifest or config failed.
    #[error("image {image}: {source}")]
    Fetch {
        /// The image, in canonical form (`docker.io/library/nginx:1.27`).
        image: String,
        /// Why the request failed.
        #[source]
        source: FetchError,
    },
    /// A manifest, index or config arrived but is bad (too large, malformed, altered).
    #[error("image {image}: {source}")]
    Document {
        /// The image, in canonical form (`docker.io/library/nginx:1.27`).
        image: String,
        /// What is wrong with the document.
        #[source]
        source: ManifestError,
    },
    /// An index entry without a platform could not be fetched to learn its platform.
    #[error("image {image}: index entry {digest} cannot be read ({source})")]
    Child {
        /// The image, in canonical form (`docker.io/library/nginx:1.27`).
        image: String,
        /// The entry's digest.
        digest: String,
        /// Why fetching it failed.
        #[source]
        source: FetchError,
    },
    /// The registry gave neither a `Docker-Content-Digest` header nor a body for the tag.
    #[error(
        "image {image}: {host} answered the tag without a Docker-Content-Digest header or body"
    )]
    NoDigest {
        /// The image, in canonical form (`docker.io/library/nginx:1.27`).
        image: String,
        /// The registry host that answered, as `host` or `host:port`.
        host: String,
    },
    /// The lookup (mirror and fallback together) outlasted its timeout.
    #[error("image {image}: no answer from the registry within {timeout_ms} ms (timeouts.{key} in the registry config)")]
    Timeout {
        /// The image, in canonical form (`docker.io/library/nginx:1.27`).
        image: String,
        /// The timeout that ran out, in milliseconds.
        timeout_ms: u128,
        /// `lookup`, or `background` for the placement controller's lookups.
        key: &'static str,
    },
    /// There was no host to ask: the lookup had no route at all.
    #[error("image {image}: no registry host may be asked")]
    NoRoute {
        /// The image, in canonical form (`docker.io/library/nginx:1.27`).
        image: String,
    },
    /// The lookup panicked (a bug); it fails like any error and is cached as one.
    #[error("image {image}: the registry lookup failed unexpectedly ({reason})")]
    Panicked {
        /// The image, in canonical form (`docker.io/library/nginx:1.27`).
        image: String,
        /// The panic's message.
        reason: String,
    },
}

impl LookupError {
    /// A mirror failing this way is passed over for the registry itself.
    fn is_mirror_failure(&self) -> bool {
        match self {
            LookupError::Fetch { source, .. } | LookupError::Child { source, .. } => {
                source.is_mirror_failure()
            }
            _ => false,
        }
    }

    /// Asking again later may succeed: the registry was slow, unreachable or overloaded.
    fn is_transient(&self) -> bool {
        match self {
            LookupError::Fetch { source, .. } | LookupError::Child { source, .. } => {
                source.is_transient()
            }
            LookupError::Timeout { .. } => true,
            LookupError::Document { .. }
            | LookupError::NoDigest { .. }
            | LookupError::NoRoute { .. }
            | LookupError::Panicked { .. } => false,
        }
    }

    /// What went wrong, without the image's name.
    fn cause(&self) -> String {
        match self {
            LookupError::Fetch { source, .. } => source.to_string(),
            LookupError::Child { digest, source, .. } => {
                format!("index entry {digest} cannot be read ({source})")
            }
            other => other.to_string(),
        }
    }
}

/// The registry platform source.
pub struct RegistrySource {
    inner: Arc<Inner>,
}

/// One flight's answer: the platforms, or why not.
type Resolved = Result<Arc<ImagePlatforms>, Failure>;

struct Inner {
    client: Client,
    caches: Caches,
    /// Keyed by image, candidate routes, and patience: a patient lookup does not join an
    /// admission's, which gives up sooner.
    flights: SingleFlight<(String, u64, bool), Resolved>,
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
        let endpoints = match self.client.endpoints(&image.registry) {
            Ok(eps) => eps,
            Err(e) => {
                return Lookup::Failed(LookupFailure::caused_by(format!("image {image}: {e}"), e))
            }
        };
        let config = self.client.config();
        let routes: Vec<Route> = endpoints
            .into_iter()
            .map(|mut ep| {
                if request.patient {
                    ep.request_timeout = config.timeouts.background;
                }
                self.route(&request, ep)
            })
            .collect();
        for route in &routes {
            if let Some(p) = self.cached(&route.ep, &image, &route.scopes).await {
                return Lookup::Found(p);
            }
        }
        let key = image.lookup_key();
        let candidates = hash_of(&routes);
        // The negative cache spares the registry a rollout's worth of admission lookups; the
        // placement controller's retries are already spaced out and want a fresh answer.
        if !request.patient {
            if let Some(failure) = self.caches.failure(&key, candidates).await {
                return failure.lookup();
            }
        }
        let patient = request.patient;
        let work = Arc::clone(&self).resolve(routes, image, candidates, patient);
        let result = self
            .flights
            .run((key, candidates, patient), work, |reason| {
                Err(Failure {
                    reason: format!("the registry lookup failed unexpectedly ({reason})").into(),
                    transient: false,
                })
            })
            .await;
        match result {
            Ok(p) => Lookup::Found(p),
            Err(failure) => failure.lookup(),
        }
    }

    /// One host to ask, with the credentials to try there in kubelet's order: pod secrets,
    /// service account's, node config; then anonymous.
    fn route(&self, request: &LookupRequest<'_>, ep: Endpoint) -> Route {
        let mut keyrings = Vec::new();
        if let Some(source) = &self.pull_secrets {
            for secret in source.secrets_for(request.pull) {
                let origin = match &secret.service_account {
                    Some(account) => format!(
                        "service account {0}/{account}'s pull secret {0}/{1}",
                        secret.namespace, secret.name
                    ),
                    None => format!("pull secret {}/{}", secret.namespace, secret.name),
                };
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
        let credentials =
            credentials::candidates(keyrings.iter().chain([&self.node_keyring]), &name);
        let mut scopes: Vec<Scope> = credentials.iter().map(Credential::scope).collect();
        scopes.push(Scope::Anonymous);
        Route {
            ep,
            credentials,
            scopes,
        }
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

    /// One flight: each host in turn (a mirror, then the registry itself when the mirror fails),
    /// all within the lookup timeout. The first answer is cached under its host and scope, and a
    /// failure under the whole candidate set.
    async fn resolve(
        self: Arc<Self>,
        routes: Vec<Route>,
        image: ImageRef,
        candidates: u64,
        patient: bool,
    ) -> Resolved {
        // A flight that finished between this caller's cache miss and its joining has already
        // filled the cache: look again rather than ask the registry twice.
        for route in &routes {
            if let Some(p) = self.cached(&route.ep, &image, &route.scopes).await {
                return Ok(p);
            }
        }
        let metrics = &self.client.metrics;
        metrics.in_flight.inc();
        let timeouts = &self.client.config().timeouts;
        let timeout = if patient {
            timeouts.background
        } else {
            timeouts.lookup
        };
        // (mirror host, why it failed), when the registry itself was asked after it.
        let mut mirror_failed: Option<(String, LookupError)> = None;
        let attempts = async {
            let mut routes = routes.iter().peekable();
            while let Some(route) = routes.next() {
                let fallback = routes.peek().is_some();
                match self.attempt(route, &image).await {
                    Ok(p) => {
                        tracing::debug!(image = %image, host = %route.ep.host, mirror = route.ep.mirror, "registry answered");
                        return Ok(p);
                    }
                    Err(e) if route.ep.mirror && fallback && e.is_mirror_failure() => {
                        tracing::debug!(image = %image, mirror = %route.ep.host, error = %e, "mirror failed; asking the registry itself");
                        mirror_failed = Some((route.ep.host.clone(), e));
                    }
                    Err(e) => return Err((e, route.ep.mirror && !fallback)),
                }
            }
            Err((
                LookupError::NoRoute {
                    image: image.to_string(),
                },
                false,
            ))
        };
        // A panic (a bug, say on some registry's odd answer) fails the lookup like any other
        // failure, so it is answered and cached for the negative TTL, not retried by every pod.
        let attempts = AssertUnwindSafe(attempts).catch_unwind();
        let result = match tokio::time::timeout(timeout, attempts).await {
            Ok(Ok(r)) => r,
            Ok(Err(panic)) => {
                let reason = cache::panic_reason(&*panic).to_owned();
                tracing::error!(image = %image, reason, "registry lookup panicked");
                Err((
                    LookupError::Panicked {
                        image: image.to_string(),
                        reason,
                    },
                    false,
                ))
            }
            Err(_) => Err((
                LookupError::Timeout {
                    image: image.to_string(),
                    timeout_ms: timeout.as_millis(),
                    key: if patient { "background" } else { "lookup" },
                },
                false,
            )),
        };
        metrics.in_flight.dec();
        let (e, only_mirror) = match result {
            Ok(p) => return Ok(p),
            Err(e) => e,
        };
        let transient = e.is_transient();
        let mut message = e.to_string();
        if let Some((mirror, why)) = mirror_failed {
            message.push_str(&format!(
                " (asked after the mirror {mirror}, which failed: {})",
                why.cause()
            ));
        } else if only_mirror && self.client.config().host(&image.registry).mirror_only {
            message.push_str(&format!(
                " (the mirror of {}; mirror_only = true, so {} itself is not asked)",
                image.registry, image.registry
            ));
        }
        tracing::debug!(error = %message, transient, "registry lookup failed");
        let failure = Failure {
            reason: LookupFailure::caused_by(message, e),
            transient,
        };
        self.caches
            .put_failure(&image.lookup_key(), candidates, failure.clone())
            .await;
        Err(failure)
    }

    /// One host: each of its credentials in turn, then anonymously.
    async fn attempt(
        &self,
        route: &Route,
        image: &ImageRef,
    ) -> Result<Arc<ImagePlatforms>, LookupError> {
        let mut last = None;
        for credential in route.credentials.iter().map(Some).chain([None]) {
            match self.fetch(&route.ep, image, credential).await {
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
                host: route.ep.host.clone(),
                status: 401,
                origin: None,
            }),
        })
    }
}

/// One host to ask for an image and what to present there.
struct Route {
    ep: Endpoint,
    credentials: Vec<Credential>,
    /// The credentials' cache scopes, then anonymous.
    scopes: Vec<Scope>,
}

fn hash_of(routes: &[Route]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for route in routes {
        route.ep.host.hash(&mut h);
        route.scopes.hash(&mut h);
    }
    h.finish()
}
