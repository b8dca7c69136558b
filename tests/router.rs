//! The HTTP routes in-process: `archgate::server::routes::router` driven with tower's `oneshot`,
//! no socket and no TLS. Status codes and messages of bad requests, health and readiness, and
//! reviews answered. What needs a connection (HTTP/1.1 and HTTP/2, the server serving on after a
//! bad request, a body streamed without a Content-Length) is in tests/server/bad_requests.rs.
#![allow(clippy::unwrap_used)]

#[path = "common/fixtures.rs"]
mod fixtures;

use archgate::admission::Admission;
use archgate::platforms::StaticPlatforms;
use archgate::policy::Policy;
use archgate::server::metrics::Metrics;
use archgate::server::routes::{router, AppState, Capacity, MAX_BODY_BYTES};
use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use axum::Router;
use fixtures::{assert_allowed_untouched, assert_envelope, decoded_patch, fixture, metric};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tower::ServiceExt;

const MUTATE: &str = "/mutate?timeout=5s";
const VALIDATE: &str = "/validate?timeout=5s";

/// The router as `archgate serve` builds it, with the homelab policy and platforms (what
/// `common::Server::start` runs), and the flags it shares with the server.
struct App {
    router: Router,
    ready: Arc<AtomicBool>,
    draining: Arc<AtomicBool>,
}

impl App {
    fn new() -> App {
        let policy = Policy::load(&fixtures::homelab_policy()).unwrap();
        let platforms = StaticPlatforms::load(&fixtures::homelab_platforms()).unwrap();
        let ready = Arc::new(AtomicBool::new(true));
        let draining = Arc::new(AtomicBool::new(false));
        let router = router(AppState {
            admission: Admission::new(Arc::new(policy), Arc::new(platforms)),
            metrics: Metrics::new().unwrap(),
            ready: ready.clone(),
            draining: draining.clone(),
            capacity: Capacity::new(16),
        });
        App {
            router,
            ready,
            draining,
        }
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Body>,
    ) -> (StatusCode, HeaderMap, Bytes) {
        let mut request = Request::builder().method(method).uri(path);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = self
            .router
            .clone()
            .oneshot(request.body(body.into()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, headers, body)
    }

    async fn post(
        &self,
        path: &str,
        content_type: &str,
        body: impl Into<Body>,
    ) -> (StatusCode, HeaderMap, Bytes) {
        self.send(
            Method::POST,
            path,
            &[(header::CONTENT_TYPE.as_str(), content_type)],
            body,
        )
        .await
    }

    async fn get(&self, path: &str) -> (StatusCode, HeaderMap, Bytes) {
        self.send(Method::GET, path, &[], Body::empty()).await
    }

    /// `review` posted as JSON to `path`: must be a 200 with a JSON AdmissionReview.
    async fn review_value(&self, path: &str, review: &Value) -> Value {
        let body = serde_json::to_vec(review).unwrap();
        let (status, headers, body) = self.post(path, "application/json", body).await;
        fixtures::answered_review(status, &headers, &body, path)
    }

    /// The captured review `name` posted to `path`.
    async fn review(&self, path: &str, name: &str) -> Value {
        self.review_value(path, &fixture(name)).await
    }

    async fn metrics(&self) -> String {
        let (status, _, body) = self.get("/metrics").await;
        assert_eq!(status, StatusCode::OK);
        String::from_utf8(body.to_vec()).unwrap()
    }

    /// `archgate_http_rejected_total{reason}`, 0 when not yet counted.
    async fn rejected(&self, reason: &str) -> f64 {
        let metrics = self.metrics().await;
        metric(
            &metrics,
            "archgate_http_rejected_total",
            &[("reason", reason)],
        )
        .unwrap_or(0.0)
    }
}

/// The `error` string of a JSON error body, which must come as JSON.
fn error_message(status: StatusCode, headers: &HeaderMap, body: &Bytes, what: &str) -> String {
    assert_eq!(
        headers[header::CONTENT_TYPE],
        "application/json",
        "{what}: content type of the {status} answer"
    );
    fixtures::error_text(body, &format!("{what} ({status})"))
}

#[tokio::test]
async fn malformed_json_is_a_400_with_an_error_at_both_endpoints() {
    let app = App::new();
    for path in [MUTATE, VALIDATE] {
        let (status, headers, body) = app.post(path, "application/json", "{not json").await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "malformed JSON at {path}");
        let msg = error_message(status, &headers, &body, "malformed JSON");
        assert!(msg.contains("not an AdmissionReview"), "{msg}");
    }
    assert_eq!(app.rejected("bad_review").await, 2.0);
}

#[tokio::test]
async fn json_that_is_not_an_admission_review_is_a_400() {
    let app = App::new();
    for (what, body) in [
        (
            "an array",
            r#"["admission.k8s.io/v1","AdmissionReview",{}]"#,
        ),
        ("a string", r#""AdmissionReview""#),
        (
            "a request that is not an object",
            r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":"pod"}"#,
        ),
    ] {
        let (status, headers, body) = app.post(MUTATE, "application/json", body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{what}");
        let msg = error_message(status, &headers, &body, what);
        assert!(msg.contains("not an AdmissionReview"), "{what}: {msg}");
    }
    assert_eq!(app.rejected("bad_review").await, 3.0);
}

#[tokio::test]
async fn a_review_without_request_is_a_400_that_says_so() {
    let app = App::new();
    let (status, headers, body) = app
        .post(
            MUTATE,
            "application/json",
            r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "review without request");
    let msg = error_message(status, &headers, &body, "review without request");
    assert!(msg.contains("request"), "{msg}");
    assert_eq!(app.rejected("bad_review").await, 1.0);
}

#[tokio::test]
async fn a_body_that_is_not_application_json_is_a_415() {
    let app = App::new();
    let review = fixtures::fixture_text("pod-create.json");
    let (status, headers, body) = app.post(MUTATE, "text/plain", review.clone()).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "text/plain");
    let msg = error_message(status, &headers, &body, "text/plain");
    assert!(
        msg.contains("text/plain") && msg.contains("application/json"),
        "{msg}"
    );
    // No content type at all.
    let (status, headers, body) = app.send(Method::POST, VALIDATE, &[], review).await;
    assert_eq!(
        status,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "no content type"
    );
    error_message(status, &headers, &body, "no content type");
    assert_eq!(app.rejected("media_type").await, 2.0);

    // Parameters and case do not matter.
    let answer = app
        .post(
            MUTATE,
            "Application/JSON; charset=utf-8",
            fixtures::fixture_text("pod-create.json"),
        )
        .await;
    assert_eq!(answer.0, StatusCode::OK, "application/json with a charset");
}

#[tokio::test]
async fn a_4_mib_body_with_its_content_length_is_a_413() {
    let app = App::new();
    let size = 4 * 1024 * 1024;
    assert!(size > MAX_BODY_BYTES);
    let length = size.to_string();
    let (status, headers, body) = app
        .send(
            Method::POST,
            MUTATE,
            &[
                ("content-type", "application/json"),
                ("content-length", &length),
            ],
            vec![b' '; size],
        )
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "4 MiB body");
    let msg = error_message(status, &headers, &body, "4 MiB body");
    assert!(msg.contains(&MAX_BODY_BYTES.to_string()), "{msg}");
    assert_eq!(app.rejected("too_large").await, 1.0);
    // The largest body accepted is read (and, being blanks, is not JSON: a 400, not a 413).
    let (status, _, _) = app
        .post(MUTATE, "application/json", vec![b' '; MAX_BODY_BYTES])
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "a body of the limit");
}

#[tokio::test]
async fn a_wrong_method_is_a_405() {
    let app = App::new();
    for path in [MUTATE, VALIDATE] {
        let (status, _, _) = app.get(path).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "GET {path}");
    }
    for path in ["/healthz", "/readyz", "/metrics"] {
        let (status, _, _) = app.send(Method::POST, path, &[], Body::empty()).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "POST {path}");
    }
}

#[tokio::test]
async fn an_unknown_path_is_a_404_naming_the_endpoints() {
    let app = App::new();
    for (method, path) in [
        (Method::GET, "/"),
        (Method::POST, "/admit"),
        (Method::POST, "/mutate/pods"),
    ] {
        let (status, headers, body) = app
            .send(
                method.clone(),
                path,
                &[("content-type", "application/json")],
                "{}",
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}");
        let msg = error_message(status, &headers, &body, path);
        assert!(
            msg.contains("/mutate") && msg.contains("/validate") && msg.contains("/healthz"),
            "{msg}"
        );
    }
}

#[tokio::test]
async fn healthz_is_ok_and_readyz_follows_ready_and_draining() {
    let app = App::new();
    let (status, _, body) = app.get("/healthz").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(&body[..], b"ok\n");

    let (status, _, body) = app.get("/readyz").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(&body[..], b"ready\n");

    app.ready.store(false, Ordering::Release);
    let (status, _, body) = app.get("/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(&body[..], b"not ready\n");

    // Draining wins over ready: a pod shutting down leaves the Service's endpoints.
    app.ready.store(true, Ordering::Release);
    app.draining.store(true, Ordering::Release);
    let (status, _, body) = app.get("/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(&body[..], b"shutting down\n");
    // Alive all the while.
    let (status, _, body) = app.get("/healthz").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(&body[..], b"ok\n");
}

#[tokio::test]
async fn a_pod_review_is_answered_200_with_its_uid_and_a_patch() {
    let app = App::new();
    let name = "pod-create-from-job-mutating.json";
    let answer = app.review(MUTATE, name).await;
    assert_envelope(&fixture(name), &answer, name);
    assert_eq!(answer["response"]["allowed"], true, "{answer}");
    let ops = decoded_patch(&answer).unwrap_or_else(|| panic!("no patch: {answer}"));
    assert!(!ops.as_array().unwrap().is_empty(), "{ops}");

    let name = "pod-create-nodeselector-arm64.json";
    let answer = app.review(VALIDATE, name).await;
    assert_envelope(&fixture(name), &answer, name);
    assert_allowed_untouched(&answer, name);

    // A denial is an answer too: 200, the uid, and the 403 inside the review.
    let name = "pod-create-from-job.json";
    let answer = app.review(VALIDATE, name).await;
    assert_envelope(&fixture(name), &answer, name);
    assert_eq!(answer["response"]["allowed"], false, "{answer}");
    assert_eq!(answer["response"]["status"]["code"], 403, "{answer}");

    // Each counted once, by endpoint and decision.
    let metrics = app.metrics().await;
    for (endpoint, decision) in [
        ("mutate", "patch"),
        ("validate", "allow"),
        ("validate", "deny"),
    ] {
        assert_eq!(
            metric(
                &metrics,
                "archgate_admission_reviews_total",
                &[("endpoint", endpoint), ("decision", decision)]
            ),
            Some(1.0),
            "{endpoint} {decision}: {metrics}"
        );
    }
}

// Moved from tests/server/bad_requests.rs: what archgate answers does not depend on the
// protocol that carried the review.

#[tokio::test]
async fn a_kind_archgate_does_not_know_is_allowed_with_a_warning() {
    let app = App::new();
    // A kind archgate knows nothing of (a Service): allowed with a warning, never denied (a
    // denial would block the kind cluster-wide), and not an HTTP error.
    let mut service = fixture("deployment-create.json");
    service["request"]["kind"] = json!({"group": "", "version": "v1", "kind": "Service"});
    let answer = app.review_value(MUTATE, &service).await;
    assert_envelope(&service, &answer, "service");
    assert_eq!(answer["response"]["allowed"], true, "{answer}");
    let warning = answer["response"]["warnings"][0]
        .as_str()
        .unwrap_or_default();
    assert!(
        warning.contains("v1 Service") && warning.contains("allowed it unchecked"),
        "{answer}"
    );
    assert!(answer["response"].get("patch").is_none());
    let metrics = app.metrics().await;
    assert_eq!(
        metric(
            &metrics,
            "archgate_admission_reviews_total",
            &[("endpoint", "mutate"), ("decision", "unhandled")]
        ),
        Some(1.0),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_deployment_at_the_mutating_webhook_is_left_alone() {
    let app = App::new();
    // Its template is left alone (only DaemonSets are placed by default).
    let answer = app.review(MUTATE, "deployment-create.json").await;
    assert_eq!(answer["response"]["allowed"], true, "{answer}");
    assert!(answer["response"].get("patch").is_none(), "{answer}");
}

#[tokio::test]
async fn pod_updates_are_allowed_untouched_at_both_endpoints() {
    let app = App::new();
    // Updates never change scheduling.
    for name in [
        "pod-update-label.json",
        "pod-update.json",
        "pod-update-ephemeralcontainers.json",
    ] {
        for path in [MUTATE, VALIDATE] {
            let answer = app.review(path, name).await;
            assert_envelope(&fixture(name), &answer, name);
            assert_allowed_untouched(&answer, &format!("{name} at {path}"));
        }
    }
}
