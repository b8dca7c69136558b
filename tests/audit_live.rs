//! `archgate serve` with the node watch on also watches bound pods: the seed cluster's workloads
//! (tests/fixtures/cluster/audit-objects.json) on the stateful fake API server, their images in
//! Docker's registry on loopback, and `archgate_misplaced_pods{namespace}` scraped from /metrics
//! as pods are bound and deleted; a pod that becomes misplaced gets a log line and an Event.
#![allow(clippy::unwrap_used)]

mod common;

use common::audit::Cluster;
use common::{metric, ServeOptions, Server};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// Scrapes /metrics until `done` holds for it (10 s at most); returns the last scrape.
async fn until(server: &Server, what: &str, done: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = server.metrics().await;
        if done(&text) {
            return text;
        }
        if Instant::now() > deadline {
            panic!("{what} within 10 s:\n{text}\n{}", server.output());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn misplaced(text: &str, namespace: &str) -> Option<f64> {
    metric(text, "archgate_misplaced_pods", &[("namespace", namespace)])
}

/// The first Event on pod `ns/name` (10 s at most: whichever replica leads writes it).
async fn event_on(c: &Cluster, ns: &str, name: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let events = c.api.list(&format!("/api/v1/namespaces/{ns}/events"));
        if let Some(e) = events.iter().find(|e| e["involvedObject"]["name"] == name) {
            return e.clone();
        }
        if Instant::now() > deadline {
            panic!("no Event on {ns}/{name} within 10 s: {events:#?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn serve(c: &Cluster) -> Server {
    Server::start_with(
        ServeOptions {
            platforms: Some(common::write_file(c.dir.path(), "none.toml", "[images]\n")),
            inventory: Some("watch"),
            extra_args: vec![
                "--kubeconfig".into(),
                c.api.kubeconfig.clone().into(),
                "--registry-config".into(),
                c.registry_config.clone().into(),
            ],
            ..ServeOptions::default()
        },
        tempfile::tempdir().unwrap(),
    )
}

/// A pod of `image` bound to `node`, as the scheduler leaves it.
fn bound(ns: &str, name: &str, image: &str, node: &str) -> Value {
    let mut pod = common::kubeapi::pod(ns, name, image);
    pod["spec"]["nodeName"] = json!(node);
    pod["status"] = json!({"phase": "Running"});
    pod
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_misplaced_pods_gauge_follows_pods_as_they_are_bound_and_deleted() {
    let c = Cluster::start().await;
    let server = serve(&c);
    // A second replica counts too, but only the placement controller's leader writes Events.
    let second = serve(&c);
    // The seed cluster's three misplaced pods, each in its namespace; the rest are fine.
    let text = until(&server, "the seed cluster's misplaced pods", |t| {
        misplaced(t, "edge") == Some(1.0)
            && misplaced(t, "shop") == Some(1.0)
            && misplaced(t, "tools") == Some(1.0)
    })
    .await;
    assert_eq!(misplaced(&text, "monitoring"), None, "{text}");
    until(&second, "the second replica's count", |t| {
        misplaced(t, "edge") == Some(1.0) && misplaced(t, "shop") == Some(1.0)
    })
    .await;
    assert_eq!(misplaced(&text, "kube-system"), None, "{text}");
    let requests = c.api.requests();
    assert!(
        requests.iter().any(|r| r.starts_with("GET /api/v1/pods?")
            && r.contains("fieldSelector=spec.nodeName%21%3D")),
        "only bound pods are asked for: {requests:#?}"
    );

    // A new amd64-only pod lands on a Pi.
    let image = format!("{}/shop/report:0.9.0", c.host);
    c.api.create(
        "/api/v1/namespaces/shop/pods",
        bound("shop", "report-adhoc", &image, "jarlaxle"),
    );
    until(&server, "the new pod counted", |t| {
        misplaced(t, "shop") == Some(2.0)
    })
    .await;
    let event = event_on(&c, "shop", "report-adhoc").await;
    assert_eq!(event["reason"], "Misplaced");
    assert_eq!(event["type"], "Warning");
    let message = event["message"].as_str().unwrap();
    assert!(
        message.contains("node jarlaxle is linux/arm64 and cannot run image")
            && message.contains("built for linux/amd64"),
        "{message}"
    );
    let log = server.output_containing("\"pod\":\"report-adhoc\"");
    assert!(
        log.lines()
            .any(|l| l.contains("pod is misplaced") && l.contains("report-adhoc")),
        "{log}"
    );

    // A pod whose image runs there is not counted; deleted pods leave the count.
    c.api.create(
        "/api/v1/namespaces/shop/pods",
        bound(
            "shop",
            "web-adhoc",
            &format!("{}/shop/web:2.3.1", c.host),
            "jarlaxle",
        ),
    );
    c.api.delete("/api/v1/namespaces/shop/pods/report-adhoc");
    c.api.delete("/api/v1/namespaces/tools/pods/debug-report");
    let text = until(&server, "the deletions counted", |t| {
        misplaced(t, "shop") == Some(1.0) && misplaced(t, "tools").is_none()
    })
    .await;
    assert_eq!(misplaced(&text, "edge"), Some(1.0));
    until(&second, "the second replica's deletions", |t| {
        misplaced(t, "tools").is_none()
    })
    .await;
    let events = c.api.list("/api/v1/namespaces/shop/events");
    let about = |name: &str| {
        events
            .iter()
            .filter(|e| e["reason"] == "Misplaced" && e["involvedObject"]["name"] == name)
            .count()
    };
    assert_eq!(
        (
            about("report-adhoc"),
            about("report-5d8f7b6c9-xk2lp"),
            about("web-adhoc")
        ),
        (1, 1, 0),
        "one Event per misplaced pod, from one of the two replicas: {events:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_that_is_down_counts_no_pod_as_misplaced() {
    let mut c = Cluster::start().await;
    drop(c.registry.take());
    let server = serve(&c);
    // The watch has listed (the log says so) and judged: nothing is known to be misplaced.
    common::output_containing(
        || server.output(),
        "watching bound pods",
        Duration::from_secs(10),
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let text = server.metrics().await;
    assert!(!text.contains("archgate_misplaced_pods{"), "{text}");
}

/// `VmRSS` and `VmHWM` (peak) of process `pid`, in KiB.
fn rss_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap()
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// `archgate serve` holding `pods` bound pods (of 200 images over 50 namespaces, every tenth on
/// a node its image cannot run on): (misplaced counted, RSS KiB, peak RSS KiB) once the gauge
/// has them all.
async fn serve_with_pods(pods: usize) -> (f64, u64, u64) {
    let api = common::kubeapi::KubeApi::start();
    let dir = tempfile::tempdir().unwrap();
    let mut platforms = String::from("[images]\n");
    for i in 0..200 {
        let archs = if i % 10 == 0 {
            "\"linux/amd64\""
        } else {
            "\"linux/amd64\", \"linux/arm64\""
        };
        platforms.push_str(&format!(
            "\"registry.example/team-{}/app-{i}:1.{i}.0\" = [{archs}]\n",
            i % 50
        ));
    }
    let platforms = common::write_file(dir.path(), "platforms.toml", &platforms);
    let pis = ["durnan", "elaith", "jarlaxle", "mirt", "volo"];
    for i in 0..pods {
        let image = i % 200;
        let ns = format!("team-{}", image % 50);
        let name = format!("app-{image}-7d9f8c6b5-{i:05}");
        let mut pod = bound(
            &ns,
            &name,
            &format!("registry.example/{ns}/app-{image}:1.{image}.0"),
            pis[i % 5],
        );
        pod["metadata"]["labels"] = json!({"app.kubernetes.io/name": format!("app-{image}"), "pod-template-hash": "7d9f8c6b5"});
        pod["metadata"]["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "name": format!("app-{image}-7d9f8c6b5"), "uid": "5b0c3e4a-1f2d-4c6b-8a9e-0d1c2b3a4f5e", "controller": true}]);
        pod["spec"]["containers"][0]["resources"] =
            json!({"requests": {"cpu": "100m", "memory": "128Mi"}});
        pod["status"]["containerStatuses"] = json!([{"name": "app", "ready": true, "restartCount": 0,
            "image": format!("registry.example/{ns}/app-{image}:1.{image}.0"), "imageID": "", "state": {"running": {"startedAt": "2026-12-01T10:00:00Z"}}}]);
        api.create(&format!("/api/v1/namespaces/{ns}/pods"), pod);
    }
    let server = Server::start_with(
        ServeOptions {
            platforms: Some(platforms),
            inventory: Some("watch"),
            extra_args: vec!["--kubeconfig".into(), api.kubeconfig.clone().into()],
            ..ServeOptions::default()
        },
        tempfile::tempdir().unwrap(),
    );
    let expected = (pods / 10) as f64;
    let deadline = Instant::now() + Duration::from_secs(120);
    let counted = loop {
        let text = server.metrics().await;
        let sum: f64 = (0..50)
            .filter_map(|n| misplaced(&text, &format!("team-{n}")))
            .sum();
        if sum >= expected || Instant::now() > deadline {
            break sum;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // Settled: the list is done and judged; what is held now is what stays.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (rss, peak) = rss_kib(server.pid());
    (counted, rss, peak)
}

/// The memory figures in BENCHMARKS.md ("Misplaced pods: memory"):
/// `cargo test --release --test audit_live -- --ignored --nocapture memory`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: run it by name (BENCHMARKS.md)"]
async fn memory_with_ten_thousand_bound_pods() {
    for pods in [0, 10_000] {
        let (counted, rss, peak) = serve_with_pods(pods).await;
        println!(
            "{pods} bound pods: {counted} misplaced counted, RSS {rss} KiB, peak RSS {peak} KiB"
        );
        assert_eq!(counted, (pods / 10) as f64);
    }
}
