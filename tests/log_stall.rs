//! A log reader that stops reading (a stuck log shipper, a full pipe) never holds up an
//! admission: archgate drops log lines and counts them, keeps answering reviews and /healthz,
//! and still ends within its drain bound on SIGTERM.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Client, Proto};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_log_reader_drops_lines_and_never_stops_admission_or_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    common::write_certs(&certs);
    let mut child = Command::new(common::bin())
        .arg("serve")
        .arg("--policy")
        .arg(common::homelab_policy())
        .arg("--platforms")
        .arg(common::homelab_platforms())
        .arg("--tls-cert")
        .arg(certs.join("tls.crt"))
        .arg("--tls-key")
        .arg(certs.join("tls.key"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--inventory",
            "static",
            "--log-format",
            "json",
        ])
        // Every crate at trace: a flood of lines for each request.
        .env("ARCHGATE_LOG", "trace")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Read up to the listening line, then never again: the pipe fills (64 KiB), then the sink.
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let addr = loop {
        let mut line = String::new();
        assert!(
            stdout.read_line(&mut line).unwrap() > 0,
            "no listening line"
        );
        if let Some(addr) = common::listening_addr(&line) {
            break addr;
        }
    };
    let ca = certs.join("ca.crt");
    let mut client = Client::connect(addr, &ca, "localhost", Proto::H2)
        .await
        .unwrap();
    let started = Instant::now();
    let mut dropped = 0.0;
    let mut reviews = 0;
    // Until lines are being dropped (the sink is full), and then some.
    while started.elapsed() < Duration::from_secs(60) {
        for _ in 0..50 {
            let answer = tokio::time::timeout(
                Duration::from_secs(5),
                client.review("/mutate", "pod-create-from-job-mutating.json"),
            )
            .await
            .expect("a review went unanswered while the log reader stalled");
            assert_eq!(answer["response"]["allowed"], true, "{answer}");
            reviews += 1;
        }
        let (status, _, body) =
            tokio::time::timeout(Duration::from_secs(5), client.get("/metrics"))
                .await
                .expect("/metrics went unanswered");
        assert_eq!(status, 200);
        dropped = common::metric(
            &String::from_utf8_lossy(&body),
            "archgate_log_lines_dropped_total",
            &[],
        )
        .unwrap_or(0.0);
        if dropped > 1000.0 {
            break;
        }
    }
    assert!(
        dropped > 1000.0,
        "{reviews} reviews and only {dropped} lines dropped"
    );
    // Still answering, on a new connection too.
    let mut fresh = Client::connect(addr, &ca, "localhost", Proto::H1)
        .await
        .unwrap();
    let health = tokio::time::timeout(Duration::from_secs(5), fresh.get("/healthz"))
        .await
        .expect("/healthz went unanswered");
    assert_eq!(health.0, 200);
    // SIGTERM: no shutdown delay here, so the drain bound and the log flush bound (2 s) apply.
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "archgate did not exit after SIGTERM with its log stalled"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}");
    drop(stdout);
}
