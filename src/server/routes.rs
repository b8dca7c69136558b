//! HTTP routes: the two admission endpoints, health, readiness and metrics.

use super::metrics::Metrics;
use super::oversize;
use crate::admission::Admission;
use crate::policy::Stage;
use axum::body::Body;
use axum::extract::{FromRequest, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The largest review body accepted. The API server caps objects at ~1.5 MiB; a review carries
/// object and oldObject, so 3 MiB plus envelope covers every legitimate request.
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024 + 64 * 1024;
/// The API server's default when the webhook configuration sets no timeoutSeconds.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// What every route shares, behind one `Arc`.
pub struct AppState {
    /// The admission pipeline both review endpoints answer with.
    pub admission: Admission,
    /// Where reviews are counted and timed; /metrics renders it.
    pub metrics: Metrics,
    /// Set once reviews may be answered (at once, or when the cluster watches first sync); /readyz
    /// reads it.
    pub ready: Arc<AtomicBool>,
    /// Set once shutdown begins. Kept apart from `ready` because the cluster watches set `ready`
    /// when they sync, which may happen after SIGTERM and must not make a draining pod ready.
    pub draining: Arc<AtomicBool>,
    /// Reviews that may be evaluated at once; the rest queue until their deadline.
    pub capacity: Capacity,
}

/// A semaphore of review permits that knows how many it started with, so the in-flight gauge
/// is read off it when scraped instead of kept up to date by every review.
pub struct Capacity {
    permits: tokio::sync::Semaphore,
    total: usize,
}

impl Capacity {
    /// Room for `total` reviews evaluated at once (`--max-in-flight`, else [`default_capacity`]).
    pub fn new(total: usize) -> Capacity {
        Capacity {
            permits: tokio::sync::Semaphore::new(total),
            total,
        }
    }

    /// Permits held now: reviews being evaluated.
    fn in_use(&self) -> usize {
        self.total.saturating_sub(self.permits.available_permits())
    }
}

/// Reviews in flight per CPU before new ones queue. Evaluation costs microseconds, so this only
/// binds when lookups stall (a slow registry) or the machine is overwhelmed, and it keeps memory
/// and queueing bounded then.
pub const IN_FLIGHT_PER_CPU: usize = 256;

/// The default capacity: [`IN_FLIGHT_PER_CPU`] for each CPU this process may use.
pub fn default_capacity() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get()) * IN_FLIGHT_PER_CPU
}

/// The routes: POST /mutate and /validate, GET /healthz, /readyz and /metrics; any other path
/// gets a JSON 404 that lists them.
pub fn router(state: AppState) -> Router {
    // Shared behind one Arc: extracting the state then costs one reference count per request.
    let state = Arc::new(state);
    Router::new()
        .route("/mutate", post(mutate))
        .route("/validate", post(validate))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such endpoint: use POST /mutate or /validate, GET /healthz, /readyz or /metrics") })
        .with_state(state)
}

/// Every error body looks alike: `{"error": "..."}` with the right status.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }

    fn reason(&self) -> &'static str {
        match self.status {
            StatusCode::PAYLOAD_TOO_LARGE => "too_large",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "media_type",
            StatusCode::NOT_FOUND => "not_found",
            _ => "bad_request",
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.message }).to_string();
        (
            self.status,
            [(header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response()
    }
}

/// A review as the API server sends it: a JSON body of bounded size, and the `?timeout=` it
/// appends to the webhook's URL.
pub struct ReviewRequest {
    body: bytes::Bytes,
    timeout: Option<Duration>,
}

impl<S: Send + Sync> FromRequest<S> for ReviewRequest {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let mime = content_type.split(';').next().unwrap_or("").trim();
        if !mime.eq_ignore_ascii_case("application/json") {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("content type {content_type:?} is not accepted: send the AdmissionReview as application/json"),
            ));
        }
        let timeout = req.uri().query().and_then(timeout_param);
        let mut body: Body = req.into_body();
        // The declared Content-Length, as hyper read it: refused before a byte is kept.
        let declared = usize::try_from(axum::body::HttpBody::size_hint(&body).lower());
        if declared.map_or(true, |n| n > MAX_BODY_BYTES) {
            return Err(too_large(body).await);
        }
        let mut buf = bytes::BytesMut::with_capacity(declared.unwrap_or(0));
        while let Some(frame) = http_body_util::BodyExt::frame(&mut body).await {
            let frame = frame.map_err(|e| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    format!("cannot read request body: {e}"),
                )
            })?;
            if let Some(data) = frame.data_ref() {
                if buf.len() + data.len() > MAX_BODY_BYTES {
                    return Err(too_large(body).await);
                }
                buf.extend_from_slice(data);
            }
        }
        Ok(ReviewRequest {
            body: buf.freeze(),
            timeout,
        })
    }
}

/// The 413, once the rest of the body is out of the way ([`oversize::linger`]).
async fn too_large(body: Body) -> ApiError {
    oversize::linger(body).await;
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("request body exceeds {MAX_BODY_BYTES} bytes, more than any AdmissionReview the API server sends"),
    )
}

/// The `timeout` parameter of a query string (`timeout=10s`); the API server writes nothing
/// there that needs percent-decoding.
fn timeout_param(query: &str) -> Option<Duration> {
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix("timeout="))
        .and_then(parse_go_duration)
}

type MaybeReview = Result<ReviewRequest, ApiError>;

async fn mutate(state: State<Arc<AppState>>, review: MaybeReview) -> Result<Response, ApiError> {
    answer(state, review, Stage::Mutate).await
}

async fn validate(state: State<Arc<AppState>>, review: MaybeReview) -> Result<Response, ApiError> {
    answer(state, review, Stage::Validate).await
}

async fn answer(
    State(state): State<Arc<AppState>>,
    review: MaybeReview,
    stage: Stage,
) -> Result<Response, ApiError> {
    let ReviewRequest { body, timeout } = review.inspect_err(|e| {
        state
            .metrics
            .rejected
            .with_label_values(&[e.reason()])
            .inc();
    })?;
    let started = Instant::now();
    let endpoint = super::metrics::endpoint(stage);
    let timeout = timeout.unwrap_or(DEFAULT_TIMEOUT);
    // Answer with a margin: the API server counts network time against the same timeout.
    let deadline = started + timeout.mul_f32(0.8);
    // Queue for capacity only until the deadline; then answer per the policy's `on_overload`
    // rather than let the API server time out. Only a review that has to wait pays for the timer
    // and the queue gauge.
    let permit = match state.capacity.permits.try_acquire() {
        Ok(permit) => Some(permit),
        Err(_) => {
            state.metrics.queued.inc();
            let waited =
                tokio::time::timeout_at(deadline.into(), state.capacity.permits.acquire()).await;
            state.metrics.queued.dec();
            waited.ok().and_then(Result::ok)
        }
    };
    let result = match permit {
        Some(_permit) => state.admission.review(&body, stage, deadline).await,
        None => {
            state
                .metrics
                .overloaded
                .with_label_values(&[endpoint])
                .inc();
            state.admission.overloaded(&body)
        }
    };
    let answer = result.map_err(|e| {
        state
            .metrics
            .rejected
            .with_label_values(&["bad_review"])
            .inc();
        tracing::warn!(endpoint, error = %e, "rejected request");
        ApiError::new(StatusCode::BAD_REQUEST, e.to_string())
    })?;
    let s = &answer.summary;
    let elapsed = started.elapsed();
    state.metrics.reviewed(stage, s.decision, elapsed);
    // Plain &str fields: recorded as strings, not formatted through Display.
    tracing::info!(
        endpoint,
        uid = s.uid.as_str(),
        namespace = s.namespace.as_str(),
        pod = s.name.as_str(),
        kind = s.kind.as_str(),
        operation = s.operation.as_str(),
        dry_run = s.dry_run,
        decision = s.decision.as_str(),
        rule = s.rule.as_deref().unwrap_or(""),
        architectures = &*s.architectures,
        reason = s.message.as_deref().unwrap_or(""),
        elapsed_us = elapsed.as_micros() as u64,
        "admission review"
    );
    Ok(([(header::CONTENT_TYPE, "application/json")], answer.body).into_response())
}

async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    if state.draining.load(Ordering::Acquire) {
        (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response()
    } else if state.ready.load(Ordering::Acquire) {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n").into_response()
    }
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let in_use = state.capacity.in_use();
    state
        .metrics
        .in_flight
        .set(i64::try_from(in_use).unwrap_or(i64::MAX));
    let dropped = &state.metrics.log_lines_dropped;
    dropped.inc_by(crate::logging::sink::dropped_lines().saturating_sub(dropped.get()));
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}

/// Parses the Go duration the API server appends (`10s`, `500ms`, `1m30s`).
pub fn parse_go_duration(s: &str) -> Option<Duration> {
    let mut total = Duration::ZERO;
    let mut rest = s.trim();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let num_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let value: f64 = rest[..num_end].parse().ok()?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        rest = &rest[unit_end..];
        total += Duration::try_from_secs_f64(value * scale).ok()?;
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations_parse_as_the_api_server_writes_them() {
        assert_eq!(parse_go_duration("10s"), Some(Duration::from_secs(10)));
        assert_eq!(parse_go_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_go_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_go_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_go_duration("10"), None);
        assert_eq!(parse_go_duration("s"), None);
        assert_eq!(parse_go_duration(""), None);
        assert_eq!(parse_go_duration("5x"), None);
    }

    #[test]
    fn the_timeout_is_read_from_anywhere_in_the_query() {
        assert_eq!(timeout_param("timeout=10s"), Some(Duration::from_secs(10)));
        assert_eq!(
            timeout_param("dryRun=true&timeout=500ms"),
            Some(Duration::from_millis(500))
        );
        assert_eq!(timeout_param("timeout="), None);
        assert_eq!(timeout_param("timeouts=1s"), None);
        assert_eq!(timeout_param(""), None);
    }
}
