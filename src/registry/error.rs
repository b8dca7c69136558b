//! Why a registry request failed, in words a pod's creator can act on (no transport detail:
//! the log has it).

use super::guard::GuardError;
use super::manifest::MAX_DOCUMENT_BYTES;

/// Why one request, or its authentication, failed. Never carries a credential.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FetchError {
    #[error(transparent)]
    Guard(#[from] GuardError),
    #[error("{host} refused access ({status}): {}", rejected_hint(.origin.as_deref()))]
    Unauthorized {
        host: String,
        status: u16,
        /// Where the rejected credential came from ("pull secret apps/regcred"); `None` when
        /// the request was anonymous. Never the username or password.
        origin: Option<String>,
    },
    #[error("{host} has no {what} (404): check the image name, tag and digest")]
    NotFound { host: String, what: String },
    #[error("{host} answered {status} for {what}")]
    Status {
        host: String,
        status: u16,
        what: String,
    },
    #[error("{host} did not answer within {timeout_ms} ms")]
    Timeout { host: String, timeout_ms: u128 },
    /// The reason stays in archgate's log: a pod creator learning "connection refused on port
    /// 22" could map the network archgate sits in.
    #[error("{}", transport_message(.host, *.retryable))]
    Transport {
        host: String,
        reason: String,
        /// Not a TLS failure (a certificate nobody trusts, plain HTTP where HTTPS was spoken),
        /// which no retry mends.
        retryable: bool,
    },
    #[error("{host}: the {what} is larger than {MAX_DOCUMENT_BYTES} bytes")]
    TooLarge { host: String, what: String },
    #[error("token service {realm} for {host} failed: {reason}")]
    Token {
        host: String,
        realm: String,
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
