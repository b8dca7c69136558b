//! The floor: archgate's own TLS and HTTP stack (rustls, ALPN h2 + http/1.1, TCP_NODELAY,
//! hyper-util) answering every POST with one fixed AdmissionReview response, doing no admission
//! work at all. benches/load.sh drives it beside `archgate serve` to show what the stack costs.
//!
//! `cargo run --release --example floor -- --listen 127.0.0.1:9443 --tls-cert C --tls-key K`

use archgate::server::{self, tls};
use axum::http::header;
use axum::routing::post;
use axum::Router;
use std::net::SocketAddr;
use std::path::PathBuf;

// The same allocator as the archgate binary, so the comparison is of work, not of mallocs.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const ANSWER: &str = r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"00000000-0000-0000-0000-000000000000","allowed":true}}"#;

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let listen: SocketAddr = arg(&args, "--listen")
        .unwrap_or_else(|| "127.0.0.1:9443".into())
        .parse()?;
    let cert = PathBuf::from(
        arg(&args, "--tls-cert").ok_or_else(|| anyhow::anyhow!("--tls-cert FILE is required"))?,
    );
    let key = PathBuf::from(
        arg(&args, "--tls-key").ok_or_else(|| anyhow::anyhow!("--tls-key FILE is required"))?,
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let resolver = tls::ReloadingResolver::new(tls::load_pair(&cert, &key)?);
        let config = tls::server_config(resolver)?;
        // Reads the body as archgate does, so the floor pays for receiving the review too.
        let answer = |_body: axum::body::Bytes| async {
            ([(header::CONTENT_TYPE, "application/json")], ANSWER)
        };
        let router = Router::new()
            .route("/mutate", post(answer))
            .route("/validate", post(answer));
        let listener = tokio::net::TcpListener::bind(listen).await?;
        println!("floor listening on {}", listener.local_addr()?);
        server::serve(listener, config, router, server::shutdown_signal()).await;
        Ok(())
    })
}
