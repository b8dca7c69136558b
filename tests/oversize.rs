//! Oversized bodies get their 413 whatever the client does: an HTTP/1.1 client that writes its
//! whole body before reading (Python's urllib, many proxies) reads the 413 instead of a reset
//! connection; over HTTP/2 the body is read away too, so the stream ends as the client ends it
//! (no RST_STREAM, which curl 7.88 reports as a framing error), and past the bound the answer is
//! followed by RST_STREAM(NO_ERROR) (RFC 9113 8.1), never CANCEL.
#![allow(clippy::unwrap_used)]

mod common;

use common::Server;
use rustls::pki_types::ServerName;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const BODY: usize = 40 * 1024 * 1024;

async fn tls(server: &Server, alpn: &[u8]) -> tokio_rustls::client::TlsStream<TcpStream> {
    let connector = common::tls_connector(&server.ca, alpn).unwrap();
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let name = ServerName::try_from("localhost".to_string()).unwrap();
    connector.connect(name, tcp).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http1_client_that_sends_the_whole_body_first_reads_the_413() {
    let server = Server::start();
    let mut stream = tls(&server, b"http/1.1").await;
    let head = format!(
        "POST /mutate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {BODY}\r\n\r\n"
    );
    let exchange = async {
        stream.write_all(head.as_bytes()).await?;
        // Every byte written before a byte is read: without the server reading the body away,
        // this write blocks or fails once the socket buffers are full.
        let chunk = vec![b' '; 1024 * 1024];
        for _ in 0..BODY / chunk.len() {
            stream.write_all(&chunk).await?;
        }
        stream.flush().await?;
        let mut answer = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = stream.read(&mut buf).await?;
            answer.extend_from_slice(&buf[..n]);
            if n == 0 || answer.windows(4).any(|w| w == b"\r\n\r\n") && answer.ends_with(b"}") {
                return Ok::<_, std::io::Error>(answer);
            }
        }
    };
    let answer = tokio::time::timeout(Duration::from_secs(30), exchange)
        .await
        .expect("no answer within 30 s")
        .expect("the connection was torn down before the answer");
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert!(text.contains("request body exceeds"), "{text}");
}

/// Sends `size` bytes of body over HTTP/2 as flow control allows; returns the answer's status
/// and body, how many bytes the server took, and how it ended the stream when it reset it.
async fn h2_post(server: &Server, size: usize) -> (u16, String, usize, Option<h2::Reason>) {
    let stream = tls(server, b"h2").await;
    let (client, connection) = h2::client::handshake(stream).await.unwrap();
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let mut client = client.ready().await.unwrap();
    let request = axum::http::Request::post("https://localhost/mutate")
        .header("content-type", "application/json")
        .header("content-length", size.to_string())
        .body(())
        .unwrap();
    let (response, mut body) = client.send_request(request, false).unwrap();
    let feeder = tokio::spawn(async move {
        let mut sent = 0;
        while sent < size {
            body.reserve_capacity((size - sent).min(64 * 1024));
            match std::future::poll_fn(|cx| body.poll_capacity(cx)).await {
                Some(Ok(n)) => {
                    let end = sent + n >= size;
                    if body.send_data(vec![b' '; n].into(), end).is_err() {
                        break;
                    }
                    sent += n;
                }
                _ => break,
            }
        }
        let reset = tokio::time::timeout(
            Duration::from_millis(500),
            std::future::poll_fn(|cx| body.poll_reset(cx)),
        )
        .await;
        (sent, reset.ok().and_then(Result::ok))
    });
    let response = tokio::time::timeout(Duration::from_secs(30), response)
        .await
        .expect("no answer within 30 s")
        .unwrap();
    let status = response.status().as_u16();
    let mut answer = response.into_body();
    let mut text = Vec::new();
    while let Some(chunk) = answer.data().await {
        text.extend_from_slice(&chunk.unwrap());
    }
    let (sent, reset) = tokio::time::timeout(Duration::from_secs(30), feeder)
        .await
        .expect("the request stream never ended")
        .unwrap();
    (
        status,
        String::from_utf8_lossy(&text).into_owned(),
        sent,
        reset,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http2_oversized_body_is_read_away_and_answered_413_without_a_reset() {
    let server = Server::start();
    let (status, text, sent, reset) = h2_post(&server, BODY).await;
    assert_eq!(status, 413, "{text}");
    assert!(text.contains("request body exceeds"), "{text}");
    assert_eq!(sent, BODY, "the whole body was taken");
    assert_eq!(reset, None, "the stream ended as the client ended it");
    // Past the bound (64 MiB), the answer comes at once and the stream ends with NO_ERROR.
    let (status, _, sent, reset) = h2_post(&server, 200 * 1024 * 1024).await;
    assert_eq!(status, 413);
    assert!(sent < 200 * 1024 * 1024);
    assert_eq!(reset, Some(h2::Reason::NO_ERROR));
    let mut fresh = server.client(common::Proto::H2).await;
    assert_eq!(fresh.get("/healthz").await.0, 200);
}
