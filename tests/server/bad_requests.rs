//! Bad requests get the right status and a message over HTTP/2 and HTTP/1.1, and the server
//! keeps serving. Statuses, messages and answers that need no connection are checked in-process
//! in tests/router.rs.

use super::*;

fn error_message(status: StatusCode, body: &Bytes, what: &str) -> String {
    common::error_text(body, &format!("{what} ({status})"))
}

async fn bad_requests_are_refused_and_the_server_keeps_serving(proto: Proto) {
    let server = Server::start();
    let mut client = server.client(proto).await;

    let (status, _, body) = client.post(MUTATE, "application/json", "{not json").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "malformed JSON");
    error_message(status, &body, "malformed JSON");

    let (status, _, body) = client
        .post(
            MUTATE,
            "application/json",
            r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "review without request");
    let msg = error_message(status, &body, "review without request");
    assert!(msg.contains("request"), "{msg}");

    let (status, _, body) = client
        .post(
            MUTATE,
            "text/plain",
            common::fixture_text("pod-create.json"),
        )
        .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "text/plain");
    error_message(status, &body, "text/plain");

    let (status, _, _) = client.get(MUTATE).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "GET /mutate");

    // The same connection still carries reviews after those refusals. (What archgate answers
    // to other kinds and to updates is checked in-process, tests/router.rs.)
    let answer = client.review(MUTATE, "pod-update.json").await;
    assert_envelope(&fixture("pod-update.json"), &answer, "pod-update.json");
    assert_allowed_untouched(&answer, "pod-update.json after the refusals");

    // 4 MiB, over the 3 MiB + 64 KiB limit; on its own connection, which the server may close.
    // Over HTTP/1.1 only the head is sent and the body held back: the server, which reads an
    // oversized body away before answering (tests/oversize.rs), answers after the client has
    // been silent for 2 s.
    let mut big = server.client(proto).await;
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(1);
    let length = (4 * 1024 * 1024).to_string();
    let (status, _, body) = match proto {
        Proto::H2 => {
            drop((tx, rx));
            big.post(MUTATE, "application/json", vec![b' '; 4 * 1024 * 1024])
                .await
        }
        Proto::H1 => {
            let answer = big
                .send(
                    Method::POST,
                    MUTATE,
                    &[
                        ("content-type", "application/json"),
                        ("content-length", &length),
                    ],
                    http_body_util::BodyExt::boxed_unsync(ChannelBody(rx)),
                )
                .await;
            drop(tx);
            answer
        }
    };
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "4 MiB body");
    error_message(status, &body, "4 MiB body");

    // The first connection still works, and so does a new one.
    let (status, _, body) = client.get("/healthz").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(&body[..], b"ok\n");
    let mut fresh = server.client(proto).await;
    let (status, _, _) = fresh.get("/healthz").await;
    assert_eq!(status, StatusCode::OK);
    let answer = fresh
        .review(MUTATE, "pod-create-from-job-mutating.json")
        .await;
    assert!(decoded_patch(&answer).is_some(), "{answer}");

    let metrics = server.metrics().await;
    for reason in ["bad_review", "media_type", "too_large"] {
        assert!(
            metric(
                &metrics,
                "archgate_http_rejected_total",
                &[("reason", reason)]
            )
            .is_some_and(|v| v >= 1.0),
            "archgate_http_rejected_total{{reason={reason:?}}} in\n{metrics}"
        );
    }
}

#[tokio::test]
async fn bad_requests_get_400_415_413_405_over_http2_and_the_server_keeps_serving() {
    bad_requests_are_refused_and_the_server_keeps_serving(Proto::H2).await;
}

#[tokio::test]
async fn bad_requests_get_400_415_413_405_over_http1_and_the_server_keeps_serving() {
    bad_requests_are_refused_and_the_server_keeps_serving(Proto::H1).await;
}

#[tokio::test]
async fn a_4_mib_body_streamed_without_content_length_is_refused_with_413() {
    let server = Server::start();
    let mut client = server.client(Proto::H2).await;
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(4);
    let feeder = tokio::spawn(async move {
        for _ in 0..64 {
            // 64 x 64 KiB = 4 MiB; the server may stop reading, so sending may fail.
            if tx.send(Bytes::from(vec![b' '; 64 * 1024])).await.is_err() {
                break;
            }
        }
    });
    let (status, _, body) = client
        .send(
            Method::POST,
            MUTATE,
            &[("content-type", "application/json")],
            http_body_util::BodyExt::boxed_unsync(ChannelBody(rx)),
        )
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    error_message(status, &body, "streamed 4 MiB");
    feeder.abort();
    let mut fresh = server.client(Proto::H2).await;
    assert_eq!(fresh.get("/healthz").await.0, StatusCode::OK);
}
