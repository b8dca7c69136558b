//! Overload: with every slot taken by a review stuck on a registry that never answers, a new
//! review waits only until its own deadline and then gets the policy's `on_overload` answer, in
//! time for the API server.
#![allow(clippy::unwrap_used)]

mod common;

use common::registry::Silent;
use common::{fixture, metric, write_file, Proto, ServeOptions, Server};
use serde_json::Value;
use std::time::{Duration, Instant};

/// `archgate serve --max-in-flight 1` whose registry lookups go to a listener that never answers.
fn server(silent: &Silent, on_overload: &str) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let homelab = std::fs::read_to_string(common::homelab_policy()).unwrap();
    let policy = homelab.replace(
        "unknown_images = \"warn\"",
        &format!("unknown_images = \"warn\"\non_overload = \"{on_overload}\""),
    );
    let policy = write_file(dir.path(), "policy.toml", &policy);
    let registries = write_file(
        dir.path(),
        "registries.toml",
        &format!(
            "[registries.\"{}\"]\ninsecure = true\n[timeouts]\nlookup = \"30s\"\nrequest = \"30s\"\n",
            silent.addr
        ),
    );
    let options = ServeOptions {
        policy: Some(policy),
        platforms: Some(common::homelab_platforms()),
        extra_args: vec![
            "--max-in-flight".into(),
            "1".into(),
            "--registry-config".into(),
            registries.into(),
        ],
        ..ServeOptions::default()
    };
    Server::start_with(options, dir)
}

/// A pod review whose only image lives on the silent registry.
fn stuck_review(silent: &Silent, uid: &str) -> Value {
    let mut review = fixture("pod-create.json");
    review["request"]["uid"] = uid.into();
    review["request"]["object"]["spec"]["containers"][0]["image"] =
        format!("{}/shop/slow:1", silent.addr).into();
    review
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_review_that_finds_no_capacity_is_answered_per_policy_before_its_deadline() {
    let silent = Silent::start().await;
    let server = server(&silent, "allow");
    let mut first = server.client(Proto::H2).await;
    let mut second = server.client(Proto::H2).await;

    // The first review holds the only slot until its own deadline (80% of 3 s).
    let review = stuck_review(&silent, "holder");
    let holder =
        tokio::spawn(async move { first.review_value("/mutate?timeout=3s", &review).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let metrics = server.metrics().await;
    let in_flight = metric(&metrics, "archgate_admission_in_flight", &[]);
    assert_eq!(in_flight, Some(1.0), "{metrics}");

    let started = Instant::now();
    let answer = second
        .review_value("/mutate?timeout=1s", &stuck_review(&silent, "queued"))
        .await;
    let waited = started.elapsed();
    assert!(
        waited < Duration::from_millis(1000),
        "answered after {waited:?}, past the 1s timeout"
    );
    assert!(
        waited >= Duration::from_millis(700),
        "it queued until its deadline: {waited:?}"
    );
    assert_eq!(answer["response"]["uid"], "queued");
    assert_eq!(answer["response"]["allowed"], true, "{answer}");
    assert!(answer["response"].get("patch").is_none());
    let warning = answer["response"]["warnings"][0]
        .as_str()
        .unwrap_or_default();
    assert!(warning.contains("overloaded"), "{answer}");

    let held = holder.await.unwrap();
    assert_eq!(held["response"]["allowed"], true, "{held}");
    let warning = held["response"]["warnings"][0].as_str().unwrap_or_default();
    assert!(warning.contains("could not be looked up"), "{held}");

    let metrics = server.metrics().await;
    let overloaded = metric(
        &metrics,
        "archgate_admission_overloaded_total",
        &[("endpoint", "mutate")],
    );
    assert_eq!(overloaded, Some(1.0), "{metrics}");
    assert_eq!(
        metric(&metrics, "archgate_admission_queued", &[]),
        Some(0.0)
    );
    let in_flight = metric(&metrics, "archgate_admission_in_flight", &[]);
    assert_eq!(in_flight, Some(0.0), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_strict_policy_denies_with_429_when_overloaded() {
    let silent = Silent::start().await;
    let server = server(&silent, "deny");
    let mut first = server.client(Proto::H1).await;
    let mut second = server.client(Proto::H1).await;
    let review = stuck_review(&silent, "holder");
    let holder =
        tokio::spawn(async move { first.review_value("/validate?timeout=2s", &review).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let answer = second
        .review_value("/validate?timeout=1s", &stuck_review(&silent, "queued"))
        .await;
    assert_eq!(answer["response"]["allowed"], false, "{answer}");
    assert_eq!(answer["response"]["status"]["code"], 429, "{answer}");
    assert!(answer["response"]["status"]["message"]
        .as_str()
        .unwrap_or_default()
        .contains("overloaded"));
    holder.await.unwrap();
}
