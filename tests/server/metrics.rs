//! `/metrics`: reviews counted by endpoint and decision.

use super::*;

#[tokio::test]
async fn metrics_count_reviews_by_endpoint_and_decision_with_sub_millisecond_buckets() {
    let server = Server::start();
    let mut client = server.client(Proto::H2).await;
    assert_eq!(client.get("/healthz").await.0, StatusCode::OK);
    let (status, _, body) = client.get("/readyz").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(&body[..], b"ready\n");

    for _ in 0..3 {
        client
            .review(MUTATE, "pod-create-from-job-mutating.json")
            .await;
    }
    client
        .review(MUTATE, "pod-create-from-daemonset-durnan-mutating.json")
        .await;
    client.review(VALIDATE, "pod-create-from-job.json").await;
    client
        .review(VALIDATE, "pod-create-nodeselector-arm64.json")
        .await;

    let (status, headers, body) = client.get("/metrics").await;
    assert_eq!(status, StatusCode::OK);
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    let text = String::from_utf8(body.to_vec()).unwrap();
    let reviews = |endpoint, decision| {
        metric(
            &text,
            "archgate_admission_reviews_total",
            &[("endpoint", endpoint), ("decision", decision)],
        )
    };
    assert_eq!(reviews("mutate", "patch"), Some(3.0), "{text}");
    assert_eq!(reviews("mutate", "allow"), Some(1.0), "{text}");
    assert_eq!(reviews("validate", "deny"), Some(1.0), "{text}");
    assert_eq!(reviews("validate", "allow"), Some(1.0), "{text}");
    assert_eq!(
        metric(
            &text,
            "archgate_admission_duration_seconds_count",
            &[("endpoint", "mutate")]
        ),
        Some(4.0),
        "{text}"
    );
    assert_eq!(
        metric(
            &text,
            "archgate_admission_duration_seconds_count",
            &[("endpoint", "validate")]
        ),
        Some(2.0),
        "{text}"
    );
    let sub_ms: Vec<f64> = text
        .lines()
        .filter(|l| {
            l.starts_with("archgate_admission_duration_seconds_bucket")
                && l.contains("endpoint=\"mutate\"")
        })
        .filter_map(|l| l.split("le=\"").nth(1)?.split('"').next()?.parse().ok())
        .filter(|le: &f64| *le < 0.001)
        .collect();
    assert!(
        sub_ms.len() >= 2,
        "latency buckets below 1 ms, got {sub_ms:?}:\n{text}"
    );
    assert!(text.contains("archgate_build_info"), "{text}");
}
