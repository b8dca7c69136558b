//! Certificate rotation: a swapped Secret is served to new connections, garbage is rejected once.

use super::*;

/// Writes pair `from` into `dir/<data>` and points `dir/..data` at it atomically, the way the
/// kubelet updates a Secret volume.
fn swap_secret_data(dir: &Path, data: &str, cert_pem: &[u8], key_pem: &[u8]) {
    let target = dir.join(data);
    std::fs::create_dir(&target).unwrap();
    std::fs::write(target.join("tls.crt"), cert_pem).unwrap();
    std::fs::write(target.join("tls.key"), key_pem).unwrap();
    let tmp = dir.join("..data_tmp");
    std::os::unix::fs::symlink(data, &tmp).unwrap();
    std::fs::rename(&tmp, dir.join("..data")).unwrap();
}

async fn wait_for<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if check().await {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: not within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_swapped_certificate_is_served_to_new_connections_while_an_open_connection_keeps_working()
{
    let dir = tempfile::tempdir().unwrap();
    let gen_a = dir.path().join("gen-a");
    let gen_b = dir.path().join("gen-b");
    write_certs(&gen_a);
    write_certs(&gen_b);
    let read = |p: &Path| std::fs::read(p).unwrap();
    let secret = dir.path().join("secret");
    std::fs::create_dir(&secret).unwrap();
    swap_secret_data(
        &secret,
        "..2026_a",
        &read(&gen_a.join("tls.crt")),
        &read(&gen_a.join("tls.key")),
    );
    std::os::unix::fs::symlink("..data/tls.crt", secret.join("tls.crt")).unwrap();
    std::os::unix::fs::symlink("..data/tls.key", secret.join("tls.key")).unwrap();
    let ca_a = gen_a.join("ca.crt");
    let ca_b = gen_b.join("ca.crt");

    let server = Server::start_with(
        ServeOptions {
            tls: Some((secret.join("tls.crt"), secret.join("tls.key"), ca_a.clone())),
            ..ServeOptions::default()
        },
        dir,
    );
    let addr = server.addr;

    // One HTTP/2 connection, reviewing in a loop through both swaps.
    let mut old = server.client(Proto::H2).await;
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicUsize::new(0));
    let traffic = {
        let (stop, ok) = (stop.clone(), ok.clone());
        tokio::spawn(async move {
            let body = common::fixture_text("pod-create-from-job-mutating.json");
            let started = Instant::now();
            for i in 0..20_000 {
                if stop.load(Ordering::Acquire) || started.elapsed() > Duration::from_secs(60) {
                    break;
                }
                let (status, _, answer) = old
                    .try_send(
                        Method::POST,
                        MUTATE,
                        &[("content-type", "application/json")],
                        full(body.clone()),
                    )
                    .await
                    .map_err(|e| format!("request {i} on the old connection failed: {e:#}"))?;
                if status != StatusCode::OK {
                    return Err(format!("request {i}: HTTP {status}"));
                }
                let v: Value = serde_json::from_slice(&answer).map_err(|e| e.to_string())?;
                if decoded_patch(&v).is_none() {
                    return Err(format!("request {i}: no patch in {v}"));
                }
                ok.fetch_add(1, Ordering::AcqRel);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Ok::<_, String>(())
        })
    };
    wait_for("traffic starts", Duration::from_secs(5), || async {
        ok.load(Ordering::Acquire) > 0
    })
    .await;

    // Pair B, with a different CA.
    swap_secret_data(
        server.dir.path().join("secret").as_path(),
        "..2026_b",
        &read(&server.dir.path().join("gen-b/tls.crt")),
        &read(&server.dir.path().join("gen-b/tls.key")),
    );
    wait_for(
        "a new connection verifies with CA B",
        Duration::from_secs(10),
        || {
            let ca_b = ca_b.clone();
            async move {
                Client::connect(addr, &ca_b, "localhost", Proto::H2)
                    .await
                    .is_ok()
            }
        },
    )
    .await;
    assert!(
        Client::connect(addr, &ca_a, "localhost", Proto::H2)
            .await
            .is_err(),
        "after the swap the server must no longer present pair A"
    );
    let mut b = Client::connect(addr, &ca_b, "127.0.0.1", Proto::H1)
        .await
        .unwrap();
    let answer = b.review(MUTATE, "pod-create-from-job-mutating.json").await;
    assert!(decoded_patch(&answer).is_some());
    let during_first = ok.load(Ordering::Acquire);

    // A garbage certificate: rejected, pair B stays in service.
    swap_secret_data(
        server.dir.path().join("secret").as_path(),
        "..2026_c",
        b"this is not a certificate\n",
        &read(&server.dir.path().join("gen-b/tls.key")),
    );
    wait_for(
        "archgate_tls_reloads_total{result=\"error\"} >= 1",
        Duration::from_secs(10),
        || async {
            let m = metrics_with(&server, &ca_b).await;
            metric(&m, "archgate_tls_reloads_total", &[("result", "error")])
                .is_some_and(|v| v >= 1.0)
        },
    )
    .await;
    let mut again = Client::connect(addr, &ca_b, "localhost", Proto::H2)
        .await
        .unwrap_or_else(|e| panic!("pair B must stay in service: {e:#}\n{}", server.output()));
    assert_eq!(again.get("/healthz").await.0, StatusCode::OK);
    let m = metrics_with(&server, &ca_b).await;
    assert!(
        metric(&m, "archgate_tls_reloads_total", &[("result", "ok")]).is_some_and(|v| v >= 1.0),
        "{m}"
    );

    // Let the old connection run a little longer past the second swap, then stop it.
    wait_for(
        "the old connection keeps answering",
        Duration::from_secs(5),
        || async { ok.load(Ordering::Acquire) > during_first + 5 },
    )
    .await;
    stop.store(true, Ordering::Release);
    let result = tokio::time::timeout(Duration::from_secs(15), traffic)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(result, Ok(()), "{}", server.output());
    assert!(ok.load(Ordering::Acquire) > 10);
}

/// GET /metrics over a new connection verified with `ca`.
async fn metrics_with(server: &Server, ca: &Path) -> String {
    let mut c = Client::connect(server.addr, ca, "localhost", Proto::H2)
        .await
        .unwrap();
    let (status, _, body) = c.get("/metrics").await;
    assert_eq!(status, StatusCode::OK);
    String::from_utf8(body.to_vec()).unwrap()
}

#[tokio::test]
async fn a_certificate_rewritten_in_place_with_garbage_is_rejected_once_not_retried_in_a_loop() {
    // `archgate certs --out DIR` and serve DIR/tls.crt directly: the watched directory holds the
    // files themselves. Reading them must not count as a change.
    let server = Server::start();
    let certs = server.dir.path().join("certs");
    let ca = certs.join("ca.crt");
    std::fs::write(certs.join("tls.crt"), "garbage\n").unwrap();
    wait_for(
        "archgate_tls_reloads_total{result=\"error\"} >= 1",
        Duration::from_secs(10),
        || async {
            let m = metrics_with(&server, &ca).await;
            metric(&m, "archgate_tls_reloads_total", &[("result", "error")])
                .is_some_and(|v| v >= 1.0)
        },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let first = metric(
        &metrics_with(&server, &ca).await,
        "archgate_tls_reloads_total",
        &[("result", "error")],
    )
    .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let later = metric(
        &metrics_with(&server, &ca).await,
        "archgate_tls_reloads_total",
        &[("result", "error")],
    )
    .unwrap();
    assert_eq!(
        first,
        later,
        "nothing changed on disk for 2 s, yet the bad pair was reloaded {} more times\n{}",
        later - first,
        server.output()
    );
}
