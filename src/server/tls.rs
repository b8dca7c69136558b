//! TLS for the webhook: rustls with ALPN h2 and http/1.1, and a certificate that is reloaded from
//! disk without a restart.
//!
//! Kubernetes updates a mounted Secret by swapping the `..data` symlink in its directory, so the
//! directory is watched, not the files. A new pair that fails to load or does not match keeps the
//! old certificate in service.

use super::reload::{FileWatch, WatchError};
use arc_swap::ArcSwap;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Why a certificate and key cannot be put in service.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file cannot be read, or its PEM is malformed.
    #[error("cannot read {what} {path}: {source}")]
    Read {
        /// `certificate` or `private key`.
        what: &'static str,
        /// The certificate or key file.
        path: PathBuf,
        /// Why reading or parsing it failed.
        #[source]
        source: std::io::Error,
    },
    /// The certificate file holds no PEM certificate (a key or another file passed instead).
    #[error("{path} holds no PEM certificate: pass the serving certificate (tls.crt)")]
    NoCertificate {
        /// The certificate file.
        path: PathBuf,
    },
    /// The key file holds no PEM private key.
    #[error(
        "{path} holds no PEM private key: pass the key that matches the certificate (tls.key)"
    )]
    NoKey {
        /// The key file.
        path: PathBuf,
    },
    /// rustls cannot use the private key (an unsupported algorithm or encoding).
    #[error("private key {path} is not usable: {source}")]
    BadKey {
        /// The key file.
        path: PathBuf,
        /// rustls's reason.
        #[source]
        source: rustls::Error,
    },
    /// The key and the certificate are not a pair.
    #[error("private key {key} does not belong to certificate {cert}")]
    Mismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
    },
    /// The certificate's directory cannot be watched for changes.
    #[error("certificate: {0}")]
    Watch(#[from] WatchError),
    /// rustls rejects the server configuration.
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Builds a certified key from PEM bytes; `cert_path`/`key_path` only name them in errors.
pub fn certified_key(
    cert_pem: &[u8],
    key_pem: &[u8],
    cert_path: &Path,
    key_path: &Path,
) -> Result<CertifiedKey, TlsError> {
    let chain: Vec<_> = rustls_pemfile::certs(&mut &cert_pem[..])
        .collect::<Result<_, _>>()
        .map_err(|source| TlsError::Read {
            what: "certificate",
            path: cert_path.to_path_buf(),
            source,
        })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: cert_path.to_path_buf(),
        });
    }
    let key = rustls_pemfile::private_key(&mut &key_pem[..])
        .map_err(|source| TlsError::Read {
            what: "private key",
            path: key_path.to_path_buf(),
            source,
        })?
        .ok_or_else(|| TlsError::NoKey {
            path: key_path.to_path_buf(),
        })?;
    let signer = provider()
        .key_provider
        .load_private_key(key)
        .map_err(|source| TlsError::BadKey {
            path: key_path.to_path_buf(),
            source,
        })?;
    let certified = CertifiedKey::new(chain, signer);
    certified.keys_match().map_err(|_| TlsError::Mismatch {
        cert: cert_path.to_path_buf(),
        key: key_path.to_path_buf(),
    })?;
    Ok(certified)
}

/// Reads a certificate and key pair from disk.
pub fn load_pair(cert: &Path, key: &Path) -> Result<CertifiedKey, TlsError> {
    let read = |what, path: &Path| {
        std::fs::read(path).map_err(|source| TlsError::Read {
            what,
            path: path.to_path_buf(),
            source,
        })
    };
    certified_key(
        &read("certificate", cert)?,
        &read("private key", key)?,
        cert,
        key,
    )
}

/// Serves whichever certificate is current; swapped atomically on reload.
#[derive(Debug)]
pub struct ReloadingResolver {
    current: ArcSwap<CertifiedKey>,
}

impl ReloadingResolver {
    /// A resolver serving `initial` until the first [`replace`](Self::replace).
    pub fn new(initial: CertifiedKey) -> Arc<ReloadingResolver> {
        Arc::new(ReloadingResolver {
            current: ArcSwap::from_pointee(initial),
        })
    }

    /// Puts `key` in service for new handshakes; open connections keep the certificate they began
    /// with.
    pub fn replace(&self, key: CertifiedKey) {
        self.current.store(Arc::new(key));
    }

    /// The DER of the leaf certificate in service, to tell whether a reload changed anything.
    pub fn leaf_der(&self) -> Vec<u8> {
        self.current
            .load()
            .cert
            .first()
            .map(|c| c.as_ref().to_vec())
            .unwrap_or_default()
    }
}

impl ResolvesServerCert for ReloadingResolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

/// A rustls server configuration offering TLS 1.3 and 1.2, HTTP/2 and HTTP/1.1.
pub fn server_config(resolver: Arc<ReloadingResolver>) -> Result<Arc<ServerConfig>, TlsError> {
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Watches the directories of `cert` and `key` ([`super::reload::watch`]) and reloads the pair
/// into `resolver` when they change. Returns the watch, which stops when dropped.
pub fn watch(
    resolver: Arc<ReloadingResolver>,
    cert: PathBuf,
    key: PathBuf,
    on_reload: impl Fn(Result<(), &TlsError>) + Send + 'static,
) -> Result<FileWatch, TlsError> {
    let paths = [cert.clone(), key.clone()];
    let watch = super::reload::watch(&paths, move || match load_pair(&cert, &key) {
        Ok(pair) => {
            let changed =
                pair.cert.first().map(|c| c.as_ref()) != Some(resolver.leaf_der().as_slice());
            if changed {
                resolver.replace(pair);
                on_reload(Ok(()));
            }
        }
        Err(e) => on_reload(Err(&e)),
    })?;
    Ok(watch)
}
