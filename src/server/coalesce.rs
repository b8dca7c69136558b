//! The TLS stream as HTTP/2 sees it: without vectored writes, so that answers are coalesced.
//!
//! h2 copies a DATA frame into its 16 KiB write buffer only when the payload is under its chain
//! threshold: 256 bytes when the transport says it writes vectored, 1,024 when it does not. A
//! larger payload is kept aside and written with the buffer ahead of it, and nothing more can be
//! buffered until that write is done: every such answer costs the connection a `writev` of its
//! own. tokio-rustls says it writes vectored, so every admission answer with a patch (650 bytes
//! for one architecture) took its own system call, where the API server's concurrent reviews on
//! one connection could share one. Vectored writes buy a TLS stream nothing anyway: rustls copies
//! the slices into records either way. Answers over 1 KiB are written in two calls instead of one.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Passes everything through to `S`, but answers `false` to `is_write_vectored`.
pub struct Unvectored<S>(pub S);

impl<S: AsyncRead + Unpin> AsyncRead for Unvectored<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Unvectored<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn passes_bytes_both_ways_and_claims_no_vectored_writes() {
        let (a, b) = tokio::io::duplex(64);
        let (mut a, mut b) = (Unvectored(a), Unvectored(b));
        assert!(
            !a.is_write_vectored(),
            "h2 would chain payloads over 256 bytes"
        );
        a.write_all(b"review").await.unwrap();
        a.flush().await.unwrap();
        let mut got = [0u8; 6];
        b.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"review");
        b.write_all(b"answer").await.unwrap();
        b.shutdown().await.unwrap();
        let mut back = Vec::new();
        a.read_to_end(&mut back).await.unwrap();
        assert_eq!(back, b"answer");
    }
}
