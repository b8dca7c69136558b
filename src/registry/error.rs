//! Why a registry request failed, in words a pod's creator can act on (no transport detail:
//! the log has it).

use super::guard::GuardError;
use super::manifest::MAX_DOCUMENT_BYTES;

/// Why one request, or its authentication, failed. Never carries a credential.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FetchError {
    /// The guard refused the host or the address it resolves to, before any request.
    #[error(transparent)]
    Guard(#[from] GuardError),
    /// The registry (or its token service) rejected the credential, or the lack of one.
    #[error("{host} refused access ({status}): {}", rejected_hint(.origin.as_deref()))]
    Unauthorized {
        /// The registry host, as `host` or `host:port`.
        host: String,
        /// The HTTP status it answered: 401 or 403.
        status: u16,
        /// Where the rejected credential came from ("pull secret apps/regcred"); `None` when
        /// the request was anonymous. Never the username or password.
        origin: Option<String>,
    },
    /// The registry answered 404: no such repository, tag or digest (or it hides a private one).
    #[error("{host} has no {what} (404): check the image name, tag and digest")]
    NotFound {
        /// The registry host, as `host` or `host:port`.
        host: String,
        /// What was asked for: "tag 1.2", "manifest sha256:..." or "image config sha256:...".
        what: String,
    },
    /// Any other unsuccessful HTTP status; 429 and 5xx count as transient.
    #[error("{host} answered {status} for {what}")]
    Status {
        /// The registry host, as `host` or `host:port`.
        host: String,
        /// The HTTP status code.
        status: u16,
        /// What was asked for: "tag 1.2", "manifest sha256:..." or "image config sha256:...".
        what: String,
    },
    /// The request (or reading its body) outlasted the endpoint's request timeout.
    #[error("{host} did not answer within {timeout_ms} ms")]
    Timeout {
        /// The registry host, as `host` or `host:port`.
        host: String,
        /// The timeout that ran out, in milliseconds.
        timeout_ms: u128,
    },
    /// The connection failed (refused, reset, DNS, TLS).
    ///
    /// The reason stays in archgate's log: a pod creator learning "connection refused on port
    /// 22" could map the network archgate sits in.
    #[error("{}", transport_message(.host, *.retryable))]
    Transport {
        /// The registry host, as `host` or `host:port`.
        host: String,
        /// The transport error, for the log only (see above).
        reason: String,
        /// Not a TLS failure (a certificate nobody trusts, plain HTTP where HTTPS was spoken),
        /// which no retry mends.
        retryable: bool,
    },
    /// A body exceeded [`MAX_DOCUMENT_BYTES`]; reading stopped there.
    #[error("{host}: the {what} is larger than {MAX_DOCUMENT_BYTES} bytes")]
    TooLarge {
        /// The registry host, as `host` or `host:port`.
        host: String,
        /// Which body: "manifest", "image config" or "token response".
        what: String,
    },
    /// The token service a Bearer challenge named could not give a token.
    #[error("token service {realm} for {host} failed: {reason}")]
    Token {
        /// The registry host whose challenge named the service.
        host: String,
        /// The token service's URL, from the challenge.
        realm: String,
        /// What went wrong: a bad realm, an unexpected status, an answer without a token.
        reason: String,
    },
}

fn transport_message(host: &str, retryable: bool) -> String {
    if retryable {
        format!("cannot reach {host}: check that the registry is up and that archgate's network may reach it (archgate's log says why)")
    } else {
        format!("the TLS handshake with {host} failed: trust its CA (ca_file under [registries.\"{host}\"] in the registry config, or the system's CA store), or set insecure = true there if it speaks plain HTTP")
    }
}

impl FetchError {
    /// Worth asking the next host when a mirror fails this way: it is down, slow, broken or
    /// does not hold the image (a pull-through cache that cannot reach its upstream).
    pub fn is_mirror_failure(&self) -> bool {
        match self {
            FetchError::Guard(_)
            | FetchError::Timeout { .. }
            | FetchError::Transport { .. }
            | FetchError::NotFound { .. }
            | FetchError::Token { .. } => true,
            FetchError::Status { status, .. } => *status >= 500 || *status == 429,
            FetchError::Unauthorized { .. } | FetchError::TooLarge { .. } => false,
        }
    }

    /// Asking again later may succeed: the host was slow, unreachable or overloaded.
    pub fn is_transient(&self) -> bool {
        match self {
            FetchError::Timeout { .. } => true,
            FetchError::Transport { retryable, .. } => *retryable,
            FetchError::Status { status, .. } => *status >= 500 || *status == 429,
            FetchError::Guard(_)
            | FetchError::Unauthorized { .. }
            | FetchError::NotFound { .. }
            | FetchError::TooLarge { .. }
            | FetchError::Token { .. } => false,
        }
    }

    /// Worth trying the next credential: the registry said no to this one, or pretends the
    /// repository does not exist (as some do to hide private repositories).
    pub fn is_access(&self) -> bool {
        matches!(
            self,
            FetchError::Unauthorized { .. }
                | FetchError::NotFound { .. }
                | FetchError::Token { .. }
        )
    }
}

/// What to do about a refusal: names where rejected credentials came from, never what they are.
fn rejected_hint(origin: Option<&str>) -> String {
    match origin {
        Some("") => "the credentials were rejected; check their username and password".into(),
        Some(origin) => format!(
            "the credentials were rejected (from {origin}); check the username and password there"
        ),
        None => "no credentials matched this registry; add an imagePullSecret or --docker-config entry for it".into(),
    }
}
