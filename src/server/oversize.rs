//! Answering a request body that is too large so that every client reads the answer.
//!
//! HTTP/1.1: closing a connection with unread request bytes makes the kernel reset it, and a
//! client that sends its whole body before reading (Python's urllib, many proxies) then sees the
//! reset instead of the 413. HTTP/2: an answer before the request's end is followed by
//! RST_STREAM(NO_ERROR) (RFC 9113 8.1, sent by h2), which some clients still in use treat as a
//! failure (curl 7.88 reports "Stream error in the HTTP/2 framing layer" and drops the 413).
//! So on both the rest of the body is read and discarded first, within bounds, as nginx's
//! lingering close does; past them the answer goes out anyway.

use axum::body::Body;
use http_body_util::BodyExt;
use std::time::Duration;

/// At most this much of an oversized body is read to deliver the 413; past it the answer goes
/// out at once (an HTTP/1.1 client still writing may then see a reset, as from any server).
const LINGER_BYTES: u64 = 64 * 1024 * 1024;
/// Reading it stops when the client sends nothing for this long...
const LINGER_IDLE: Duration = Duration::from_secs(2);
/// ...or after this long in all, so a slow sender cannot hold a connection.
const LINGER_TOTAL: Duration = Duration::from_secs(10);

/// Reads the unread rest of an oversized request away, within [`LINGER_BYTES`], a pause of
/// [`LINGER_IDLE`] and [`LINGER_TOTAL`] in all.
pub async fn linger(mut body: Body) {
    if axum::body::HttpBody::size_hint(&body).lower() > LINGER_BYTES {
        return;
    }
    let mut read: u64 = 0;
    let drain = async {
        loop {
            match tokio::time::timeout(LINGER_IDLE, body.frame()).await {
                Ok(Some(Ok(frame))) => {
                    read += frame.data_ref().map_or(0, |d| d.len() as u64);
                    if read > LINGER_BYTES {
                        return;
                    }
                }
                // The end, an error, or silence: nothing more to wait for.
                Ok(Some(Err(_)) | None) | Err(_) => return,
            }
        }
    };
    let _ = tokio::time::timeout(LINGER_TOTAL, drain).await;
}
