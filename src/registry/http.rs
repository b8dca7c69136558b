//! Building the HTTP client for one trust configuration: TLS roots (public plus an optional CA),
//! redirects and name resolution vetted by the [`Guard`], no environment proxies; and reading
//! what a transport error means.

use super::client::ClientBuildError;
use super::config::RegistryConfig;
use super::guard::{Guard, GuardError};
use std::sync::Arc;

pub(super) fn guard_refusal(e: &reqwest::Error) -> Option<GuardError> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    // Bounded by the error chain's length.
    while let Some(err) = source {
        if let Some(g) = err.downcast_ref::<GuardError>() {
            return Some(g.clone());
        }
        source = err.source();
    }
    None
}

/// The innermost cause, which says what went wrong (refused, TLS, DNS) without the URL.
pub(super) fn transport_reason(e: &reqwest::Error) -> String {
    let mut last = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(err) = source {
        last = err.to_string();
        source = err.source();
    }
    last
}

/// Whether the TLS handshake itself failed: a certificate nobody here trusts, a name it does not
/// cover, plain HTTP answering where HTTPS was spoken. Configuration, not weather.
pub(super) fn is_tls_failure(e: &reqwest::Error) -> bool {
    let mut source = std::error::Error::source(e);
    while let Some(err) = source {
        if is_rustls(err) {
            return true;
        }
        source = err.source();
    }
    false
}

/// A rustls error, or I/O errors wrapping one (hyper and tokio-rustls nest them, and an I/O
/// error's `source` skips the error it wraps).
fn is_rustls(err: &(dyn std::error::Error + 'static)) -> bool {
    if err.downcast_ref::<rustls::Error>().is_some() {
        return true;
    }
    match err
        .downcast_ref::<std::io::Error>()
        .and_then(|io| io.get_ref())
    {
        Some(inner) => is_rustls(inner),
        None => false,
    }
}

/// The certificates every registry is trusted through: the system's store (honouring
/// `SSL_CERT_FILE` and `SSL_CERT_DIR`, so a home CA installed there is trusted), and the
/// compiled-in public roots for systems, or images, that have none. Read once per client.
pub(super) fn system_roots() -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let native = rustls_native_certs::load_native_certs();
    for e in &native.errors {
        tracing::warn!(error = %e, "cannot read part of the system's CA certificates");
    }
    let (added, ignored) = roots.add_parsable_certificates(native.certs);
    tracing::debug!(
        added,
        ignored,
        "trusting the system's CA certificates for registries"
    );
    roots
}

pub(super) fn http_client(
    config: &RegistryConfig,
    guard: &Arc<Guard>,
    system: &rustls::RootCertStore,
    extra_ca: Option<&[u8]>,
    host: &str,
) -> Result<reqwest::Client, ClientBuildError> {
    let ca_err = |reason: String| ClientBuildError::Ca {
        host: host.to_string(),
        reason,
    };
    let mut roots = system.clone();
    if let Some(pem) = extra_ca {
        for cert in rustls_pemfile::certs(&mut &pem[..]) {
            let cert = cert.map_err(|e| ca_err(e.to_string()))?;
            roots.add(cert).map_err(|e| ca_err(e.to_string()))?;
        }
    }
    let mut tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| ClientBuildError::Http(e.to_string()))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let redirect_guard = Arc::clone(guard);
    let redirects = reqwest::redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() >= 5 {
            return attempt.error("more than 5 redirects");
        }
        let host = match (attempt.url().host_str(), attempt.url().port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_string(),
            (None, _) => return attempt.error("redirect without a host"),
        };
        match redirect_guard.check_other(&host) {
            Ok(()) => attempt.follow(),
            Err(e) => attempt.error(e),
        }
    });
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .dns_resolver(Arc::new(GuardedResolver(Arc::clone(guard))))
        .redirect(redirects)
        // Environment proxies would connect on our behalf, past the guard's address checks.
        .no_proxy()
        // Each request sets its own limit (`Endpoint::request_timeout`), which bounds connecting
        // too; this only caps a connection attempt no request waits for any more.
        .connect_timeout(config.timeouts.request.max(config.timeouts.background))
        .user_agent(concat!("archgate/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| ClientBuildError::Http(e.to_string()))
}

/// Resolves names with the system resolver and keeps only addresses the guard allows, so the
/// connection goes exactly where the check said (no second lookup to race).
struct GuardedResolver(Arc<Guard>);

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let guard = Arc::clone(&self.0);
        Box::pin(async move {
            let host = name.as_str().to_string();
            let addrs = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let mut allowed = Vec::new();
            let mut refused = None;
            for addr in addrs {
                match guard.check_ip(&host, addr.ip()) {
                    Ok(()) => allowed.push(addr),
                    Err(e) => refused = Some(e),
                }
            }
            match (allowed.is_empty(), refused) {
                (true, Some(e)) => Err(Box::new(e) as Box<dyn std::error::Error + Send + Sync>),
                _ => Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs),
            }
        })
    }
}
