//! `serve --shutdown-delay`: after SIGTERM the pod is still in the Service's endpoints for a few
//! seconds, so archgate fails /readyz but keeps answering, new connections included, until the
//! delay is over; only then does it close the port, finish what is in flight and exit 0.
#![allow(clippy::unwrap_used)]

mod common;

use common::{decoded_patch, fixture_text, ChannelBody, Proto, ServeOptions, Server};
use hyper::body::Bytes;
use hyper::{Method, StatusCode};
use serde_json::Value;
use std::time::{Duration, Instant};

const MUTATE: &str = "/mutate?timeout=5s";
const DELAY: Duration = Duration::from_secs(2);

fn start(delay: &str) -> Server {
    Server::start_with(
        ServeOptions {
            extra_args: vec!["--shutdown-delay".into(), delay.into()],
            ..ServeOptions::default()
        },
        tempfile::tempdir().unwrap(),
    )
}

/// GET `path` on a connection opened for it.
async fn get_new(server: &Server, path: &str) -> (StatusCode, Bytes) {
    let (status, _, body) = server.client(Proto::H2).await.get(path).await;
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn during_the_shutdown_delay_readyz_fails_and_new_connections_are_served_then_the_port_closes_and_it_exits_0(
) {
    let mut server = start("2s");
    assert_eq!(
        get_new(&server, "/readyz").await.0,
        StatusCode::OK,
        "ready before SIGTERM\n{}",
        server.output()
    );

    let signalled = Instant::now();
    server.terminate();
    let out = server.output_containing("draining");
    assert!(
        out.contains("draining"),
        "no draining log line after SIGTERM\n{out}"
    );

    // Within the delay: not ready, yet a new connection gets a real review answered.
    let (status, body) = get_new(&server, "/readyz").await;
    assert_eq!(
        status,
        StatusCode::SERVICE_UNAVAILABLE,
        "/readyz during the delay: {}",
        String::from_utf8_lossy(&body)
    );
    for proto in [Proto::H2, Proto::H1] {
        let mut client = server.client(proto).await;
        let answer = client
            .review(MUTATE, "pod-create-from-job-mutating.json")
            .await;
        assert!(decoded_patch(&answer).is_some(), "{proto:?}: {answer}");
    }
    // A review that is still in flight when the delay ends, to see the closed port while the
    // process is still there.
    let mut client = server.client(Proto::H2).await;
    let body = fixture_text("pod-create-from-job-mutating.json").into_bytes();
    let (head, tail) = body.split_at(body.len() / 2);
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(4);
    tx.send(Bytes::copy_from_slice(head)).await.unwrap();
    let in_flight = tokio::spawn(async move {
        client
            .try_send(
                Method::POST,
                MUTATE,
                &[("content-type", "application/json")],
                http_body_util::BodyExt::boxed_unsync(ChannelBody(rx)),
            )
            .await
    });
    assert!(
        signalled.elapsed() < DELAY,
        "the checks within the delay took {:?}, longer than the delay itself",
        signalled.elapsed()
    );

    // After the delay: the port is closed while the in-flight review is still being answered.
    let out = server.output_containing("no new connections");
    assert!(
        out.contains("shutdown delay over") && out.contains("no new connections"),
        "no end of the delay logged\n{out}"
    );
    assert!(
        signalled.elapsed() >= DELAY,
        "the port closed {:?} after SIGTERM, before the {DELAY:?} delay",
        signalled.elapsed()
    );
    assert!(
        server.wait_exit(Duration::ZERO).is_none(),
        "exited with a review in flight\n{}",
        server.output()
    );
    assert!(
        tokio::net::TcpStream::connect(server.addr).await.is_err(),
        "new connections must be refused once the delay is over"
    );
    tx.send(Bytes::copy_from_slice(tail)).await.unwrap();
    drop(tx);
    let (status, _, answer) = tokio::time::timeout(Duration::from_secs(10), in_flight)
        .await
        .unwrap()
        .unwrap()
        .unwrap_or_else(|e| panic!("in-flight review failed: {e:#}\n{}", server.output()));
    assert_eq!(
        status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&answer)
    );
    let answer: Value = serde_json::from_slice(&answer).unwrap();
    assert!(decoded_patch(&answer).is_some(), "{answer}");

    server.assert_exits_0(Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_sigterm_skips_the_rest_of_the_shutdown_delay() {
    let mut server = start("60s");
    server.terminate();
    let out = server.output_containing("draining");
    assert!(out.contains("draining"), "no draining log line\n{out}");
    assert!(
        server.wait_exit(Duration::from_millis(500)).is_none(),
        "exited at once despite the 60 s delay\n{}",
        server.output()
    );
    server.terminate();
    server.assert_exits_0(Duration::from_secs(5));
}

#[test]
fn a_shutdown_delay_that_is_not_a_duration_is_refused() {
    let output = std::process::Command::new(common::bin())
        // No --dev: were the value accepted, this must still exit (no policy) rather than serve.
        .args(["serve", "--shutdown-delay", "5"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--shutdown-delay") && stderr.contains("not a duration"),
        "{stderr}"
    );
}
