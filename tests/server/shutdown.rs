//! SIGTERM: in-flight requests finish, idle connections close, the process exits 0.

use super::*;

async fn sigterm_lets_an_in_flight_request_finish(proto: Proto) {
    let mut server = Server::start();
    let mut client = server.client(proto).await;
    let body = common::fixture_text("pod-create-from-job-mutating.json").into_bytes();
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(4);
    let (head, tail) = body.split_at(body.len() / 2);
    tx.send(Bytes::copy_from_slice(head)).await.unwrap();
    let request = tokio::spawn(async move {
        client
            .try_send(
                Method::POST,
                MUTATE,
                &[("content-type", "application/json")],
                http_body_util::BodyExt::boxed_unsync(ChannelBody(rx)),
            )
            .await
    });
    // Let the server start reading the body, then ask it to stop.
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.terminate();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        server.wait_exit(Duration::ZERO).is_none(),
        "the server exited with a request in flight\n{}",
        server.output()
    );
    assert!(
        tokio::net::TcpStream::connect(server.addr).await.is_err(),
        "after SIGTERM the port must refuse new connections"
    );
    tx.send(Bytes::copy_from_slice(tail)).await.unwrap();
    drop(tx);
    let (status, _, answer) = tokio::time::timeout(Duration::from_secs(10), request)
        .await
        .unwrap()
        .unwrap()
        .unwrap_or_else(|e| panic!("in-flight request failed: {e:#}\n{}", server.output()));
    assert_eq!(status, StatusCode::OK);
    let answer: Value = serde_json::from_slice(&answer).unwrap();
    assert!(decoded_patch(&answer).is_some(), "{answer}");
    server.assert_exits_0(Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_over_http2_lets_the_in_flight_request_finish_then_exits_0() {
    sigterm_lets_an_in_flight_request_finish(Proto::H2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_over_http1_lets_the_in_flight_request_finish_then_exits_0() {
    sigterm_lets_an_in_flight_request_finish(Proto::H1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_idle_connections_exits_0_within_5_seconds_and_closes_the_port() {
    let mut server = Server::start();
    let mut h1 = server.client(Proto::H1).await;
    let mut h2 = server.client(Proto::H2).await;
    assert_eq!(h1.get("/healthz").await.0, StatusCode::OK);
    assert_eq!(h2.get("/healthz").await.0, StatusCode::OK);
    let started = Instant::now();
    server.terminate();
    let status = server
        .wait_exit(Duration::from_secs(5))
        .unwrap_or_else(|| panic!("still running 5 s after SIGTERM\n{}", server.output()));
    assert!(
        status.success(),
        "exit status {status}\n{}",
        server.output()
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        tokio::net::TcpStream::connect(server.addr).await.is_err(),
        "the port must be closed after exit"
    );
    drop((h1, h2));
}
