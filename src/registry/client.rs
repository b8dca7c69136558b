//! The HTTP shell: one request to a registry, the 401 challenge answered (Bearer token or Basic),
//! bodies read with a size cap, every connection vetted by the [`Guard`] (names through the
//! resolver, literal addresses and redirects before they are followed), and metrics recorded.

use super::auth::{parse_challenge, AuthCache, Challenge, TokenResponse};
use super::config::{canonical_host, RegistryConfig};
use super::credentials::{Credential, Scope};
use super::guard::{Guard, GuardError};
use super::http::{guard_refusal, http_client, is_tls_failure, system_roots, transport_reason};
use super::manifest::MAX_DOCUMENT_BYTES;
use super::metrics::RegistryMetrics;
use reqwest::header::{HeaderMap, ACCEPT, AUTHORIZATION, WWW_AUTHENTICATE};
use reqwest::{Method, StatusCode};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

pub use super::error::FetchError;

/// Where one registry is reached: the host asked (a mirror, perhaps) and how.
#[derive(Clone)]
pub struct Endpoint {
    /// As configured and named in messages and cache keys: `docker.io`, `mirror.internal:5000`.
    pub host: String,
    /// A configured mirror, asked before the image's own registry.
    pub mirror: bool,
    /// `https://registry-1.docker.io`, `http://127.0.0.1:5000`.
    base: String,
    http: reqwest::Client,
    /// One request's limit, connecting included: `timeouts.request`, or `timeouts.background`
    /// for the placement controller's lookups.
    pub request_timeout: std::time::Duration,
}

/// The registry HTTP client: TLS per configured host, the guard, tokens, metrics.
pub struct Client {
    config: RegistryConfig,
    guard: Arc<Guard>,
    default_http: reqwest::Client,
    by_host: HashMap<String, reqwest::Client>,
    auth: AuthCache,
    /// The `archgate_registry_*` metrics every request records.
    pub metrics: RegistryMetrics,
}

/// Why the client could not be built (a CA file that rustls refuses).
#[derive(Debug, thiserror::Error)]
pub enum ClientBuildError {
    /// A host's `ca_file` has a bad PEM block or a certificate rustls refuses.
    #[error("registry CA for {host}: {reason}: give a PEM file of CA certificates in ca_file")]
    Ca {
        /// The `[registries]` key whose CA was refused.
        host: String,
        /// What rustls or the PEM parser said.
        reason: String,
    },
    /// rustls or reqwest could not build the client (their message given).
    #[error("cannot build the HTTP client: {0}")]
    Http(String),
}

impl Client {
    /// Builds the guard from `config`'s lists and one HTTP client per host with its own CA.
    pub fn new(
        config: RegistryConfig,
        metrics: RegistryMetrics,
    ) -> Result<Client, ClientBuildError> {
        let configured: Vec<String> = config
            .registries
            .iter()
            .flat_map(|(host, c)| std::iter::once(host.clone()).chain(c.mirror.clone()))
            .collect();
        let guard = Arc::new(Guard::new(&config.allow, &config.deny, &configured));
        let system = system_roots();
        let default_http = http_client(&config, &guard, &system, None, "default")?;
        let mut by_host = HashMap::new();
        for (host, c) in &config.registries {
            if let Some(pem) = &c.ca_pem {
                let http = http_client(&config, &guard, &system, Some(pem), host)?;
                by_host.insert(host.clone(), http);
            }
        }
        let auth = AuthCache::new(usize::try_from(config.cache.max_entries).unwrap_or(usize::MAX));
        Ok(Client {
            config,
            guard,
            default_http,
            by_host,
            auth,
            metrics,
        })
    }

    /// The configuration the client was built from.
    pub fn config(&self) -> &RegistryConfig {
        &self.config
    }

    /// Where to ask for images of `registry`, in order: its mirror when one is configured, then
    /// (unless `mirror_only`) the registry itself, as containerd falls back. A host the guard
    /// refuses is left out; when every host is refused, the first refusal is the error.
    pub fn endpoints(&self, registry: &str) -> Result<Vec<Endpoint>, GuardError> {
        let own = self.config.host(registry);
        let mut hosts = Vec::with_capacity(2);
        if let Some(mirror) = &own.mirror {
            hosts.push((mirror.clone(), true));
        }
        if own.mirror.is_none() || !own.mirror_only {
            hosts.push((registry.to_string(), false));
        }
        let mut out = Vec::with_capacity(hosts.len());
        let mut refused = None;
        for (host, mirror) in hosts {
            match self.endpoint(&host, mirror) {
                Ok(ep) => out.push(ep),
                Err(e) => {
                    tracing::debug!(host = %host, error = %e, "registry host refused by the guard");
                    refused.get_or_insert(e);
                }
            }
        }
        match (out.is_empty(), refused) {
            (true, Some(e)) => Err(e),
            _ => Ok(out),
        }
    }

    /// One host, with its own `[registries]` settings (TLS, insecure).
    fn endpoint(&self, host: &str, mirror: bool) -> Result<Endpoint, GuardError> {
        let settings = self.config.host(host);
        self.guard.check_registry(host)?;
        let dial = match canonical_host(host) {
            "docker.io" => "registry-1.docker.io".to_string(),
            other => other.to_string(),
        };
        let scheme = if settings.insecure { "http" } else { "https" };
        let http = self
            .by_host
            .get(canonical_host(host))
            .unwrap_or(&self.default_http)
            .clone();
        Ok(Endpoint {
            host: host.to_string(),
            mirror,
            base: format!("{scheme}://{dial}"),
            http,
            request_timeout: self.config.timeouts.request,
        })
    }

    /// Sends `method /v2/{repo}/{path}`, answering an auth challenge with `credential` (or
    /// anonymously), and returns the final response whatever its status.
    pub async fn send(
        &self,
        ep: &Endpoint,
        repo: &str,
        method: Method,
        path: &str,
        credential: Option<&Credential>,
    ) -> Result<reqwest::Response, FetchError> {
        let scope = credential.map_or(Scope::Anonymous, Credential::scope);
        let url = format!("{}/v2/{repo}/{path}", ep.base);
        let cached = self.auth.get(&ep.host, repo, scope);
        let resp = self
            .once(ep, method.clone(), &url, cached.as_deref())
            .await?;
        if resp.status() != StatusCode::UNAUTHORIZED {
            return Ok(resp);
        }
        let challenge = resp
            .headers()
            .get(WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_challenge);
        let basic = challenge == Some(Challenge::Basic);
        let header = match challenge {
            Some(Challenge::Basic) => match credential.and_then(Credential::basic_header) {
                Some(header) => header,
                // An identity token is no password: a Basic registry cannot take it.
                None => return Err(unauthorized(&ep.host, 401, credential)),
            },
            Some(Challenge::Bearer {
                realm,
                service,
                scope: asked,
            }) => {
                let asked = asked.unwrap_or_else(|| format!("repository:{repo}:pull"));
                let (token, ttl) = self
                    .token(ep, &realm, service.as_deref(), &asked, credential)
                    .await?;
                let header = format!("Bearer {token}");
                self.auth.put(&ep.host, repo, scope, header.clone(), ttl);
                header
            }
            None => return Err(unauthorized(&ep.host, 401, credential)),
        };
        let resp = self.once(ep, method, &url, Some(&header)).await?;
        if basic && resp.status().is_success() {
            let ttl = self.config.cache.token_ttl;
            self.auth.put(&ep.host, repo, scope, header, ttl);
        }
        match resp.status() {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                Err(unauthorized(&ep.host, resp.status().as_u16(), credential))
            }
            _ => Ok(resp),
        }
    }

    /// Asks the token service named in a Bearer challenge.
    async fn token(
        &self,
        ep: &Endpoint,
        realm: &str,
        service: Option<&str>,
        scope: &str,
        credential: Option<&Credential>,
    ) -> Result<(String, std::time::Duration), FetchError> {
        let fail = |reason: String| FetchError::Token {
            host: ep.host.clone(),
            realm: realm.to_string(),
            reason,
        };
        let url = reqwest::Url::parse(realm).map_err(|_| fail("the realm is not a URL".into()))?;
        let realm_host = match (url.host_str(), url.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_string(),
            (None, _) => return Err(fail("the realm has no host".into())),
        };
        self.guard.check_other(&realm_host)?;
        let req = match credential.and_then(Credential::refresh_token) {
            // Docker's OAuth2 flow for identity tokens: a refresh-token grant, POSTed as a form.
            Some(refresh) => {
                let mut form = vec![
                    ("grant_type", "refresh_token"),
                    ("refresh_token", refresh),
                    ("client_id", "archgate"),
                    ("scope", scope),
                ];
                form.extend(service.map(|s| ("service", s)));
                ep.http.post(url).form(&form)
            }
            None => {
                let mut req = ep.http.get(url).query(&[("scope", scope)]);
                if let Some(service) = service {
                    req = req.query(&[("service", service)]);
                }
                match credential.and_then(Credential::basic_header) {
                    Some(header) => req.header(AUTHORIZATION, header),
                    None => req,
                }
            }
        };
        let started = Instant::now();
        let resp = req.send().await;
        let resp = self.record(ep, started, resp)?;
        match resp.status() {
            s if s.is_success() => {}
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                return Err(unauthorized(&ep.host, resp.status().as_u16(), credential))
            }
            s => return Err(fail(format!("it answered {}", s.as_u16()))),
        }
        let body = self.body(ep, resp, "token response").await?;
        let parsed: TokenResponse = serde_json::from_slice(&body)
            .map_err(|_| fail("its answer is not a token response".into()))?;
        parsed
            .into_token(self.config.cache.token_ttl)
            .ok_or_else(|| fail("its answer holds no token".into()))
    }

    async fn once(
        &self,
        ep: &Endpoint,
        method: Method,
        url: &str,
        authorization: Option<&str>,
    ) -> Result<reqwest::Response, FetchError> {
        let mut req = ep
            .http
            .request(method, url)
            .timeout(ep.request_timeout)
            .header(ACCEPT, super::manifest::ACCEPT);
        if let Some(a) = authorization {
            req = req.header(AUTHORIZATION, a);
        }
        let started = Instant::now();
        let resp = req.send().await;
        self.record(ep, started, resp)
    }

    /// Records metrics for one answered (or failed) request and turns transport errors into ours.
    fn record(
        &self,
        ep: &Endpoint,
        started: Instant,
        resp: Result<reqwest::Response, reqwest::Error>,
    ) -> Result<reqwest::Response, FetchError> {
        let label = self.metrics.label(canonical_host(&ep.host));
        self.metrics
            .latency
            .with_label_values(&[label])
            .observe(started.elapsed().as_secs_f64());
        let (outcome, result) = match resp {
            Ok(r) => {
                record_rate_limit(&self.metrics, label, r.headers());
                let outcome = match r.status().as_u16() {
                    200..=299 => "ok",
                    401 | 403 => "unauthorized",
                    404 => "not_found",
                    _ => "error",
                };
                (outcome, Ok(r))
            }
            Err(e) => match guard_refusal(&e) {
                Some(g) => {
                    tracing::info!(host = %ep.host, refusal = ?g, "registry host refused by the guard");
                    ("refused", Err(FetchError::Guard(g)))
                }
                None if e.is_timeout() => (
                    "timeout",
                    Err(FetchError::Timeout {
                        host: ep.host.clone(),
                        timeout_ms: ep.request_timeout.as_millis(),
                    }),
                ),
                None => {
                    let reason = transport_reason(&e);
                    tracing::warn!(host = %ep.host, reason, "cannot reach the registry");
                    (
                        "error",
                        Err(FetchError::Transport {
                            host: ep.host.clone(),
                            reason,
                            retryable: !is_tls_failure(&e),
                        }),
                    )
                }
            },
        };
        self.metrics
            .requests
            .with_label_values(&[label, outcome])
            .inc();
        result
    }

    /// Reads a body, refusing more than [`MAX_DOCUMENT_BYTES`] without buffering it all.
    pub async fn body(
        &self,
        ep: &Endpoint,
        mut resp: reqwest::Response,
        what: &str,
    ) -> Result<Vec<u8>, FetchError> {
        let too_large = || FetchError::TooLarge {
            host: ep.host.clone(),
            what: what.to_string(),
        };
        if resp
            .content_length()
            .is_some_and(|n| n > MAX_DOCUMENT_BYTES as u64)
        {
            return Err(too_large());
        }
        let mut out = Vec::new();
        // Bounded: each chunk adds bytes and we stop past the cap.
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    if out.len() + chunk.len() > MAX_DOCUMENT_BYTES {
                        return Err(too_large());
                    }
                    out.extend_from_slice(&chunk);
                }
                Ok(None) => return Ok(out),
                Err(e) if e.is_timeout() => {
                    return Err(FetchError::Timeout {
                        host: ep.host.clone(),
                        timeout_ms: ep.request_timeout.as_millis(),
                    })
                }
                Err(e) => {
                    return Err(FetchError::Transport {
                        host: ep.host.clone(),
                        reason: transport_reason(&e),
                        retryable: !is_tls_failure(&e),
                    })
                }
            }
        }
    }
}

fn unauthorized(host: &str, status: u16, credential: Option<&Credential>) -> FetchError {
    FetchError::Unauthorized {
        host: host.to_string(),
        status,
        origin: credential.map(|c| c.origin().to_string()),
    }
}

fn record_rate_limit(metrics: &RegistryMetrics, label: &str, headers: &HeaderMap) {
    // Docker Hub: `ratelimit-remaining: 76;w=21600`.
    let remaining = headers
        .get("ratelimit-remaining")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .and_then(|v| v.trim().parse::<f64>().ok());
    if let Some(n) = remaining {
        metrics
            .rate_limit_remaining
            .with_label_values(&[label])
            .set(n);
    }
}
