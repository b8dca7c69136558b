//! The scheduling-gate fallback end to end: the real `archgate serve` binary, a real
//! docker-registry behind a loopback proxy that can stall, and a fake API server that refuses
//! pod updates the real kube-apiserver refuses. The mutating webhook gates a pod whose lookup
//! did not finish in time; the test creates it as the API server would; the placement controller
//! places and ungates it once the registry answers, or gives up per the policy.
#![allow(clippy::unwrap_used)]

mod common;

use common::kubeapi::{self, KubeApi};
use common::registry::{Registry, Silent, OCI_MANIFEST};
use common::{ServeOptions, Server};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long the controller may take to decide in these tests.
const WITHIN: Duration = Duration::from_secs(40);

/// A loopback TCP proxy to `upstream` that holds every new connection for a while before
/// forwarding it: forever until [`Stall::recover`], or a fixed delay ([`Stall::delaying`]).
struct Stall {
    addr: SocketAddr,
    /// Milliseconds each new connection waits; `u64::MAX` holds it unanswered.
    delay_ms: Arc<AtomicU64>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Stall {
    async fn start(upstream: SocketAddr) -> Stall {
        Stall::delaying(upstream, u64::MAX).await
    }

    async fn delaying(upstream: SocketAddr, delay_ms: u64) -> Stall {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let delay = Arc::new(AtomicU64::new(delay_ms));
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let per_connection = delay.clone();
        tokio::spawn(async move {
            let mut held = Vec::new();
            loop {
                let accepted = tokio::select! {
                    _ = &mut stopped => return,
                    accepted = listener.accept() => accepted,
                };
                let Ok((mut client, _)) = accepted else {
                    return;
                };
                let wait = per_connection.load(Ordering::SeqCst);
                if wait == u64::MAX {
                    held.push(client);
                    continue;
                }
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(wait)).await;
                    if let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
        });
        Stall {
            addr,
            delay_ms: delay,
            _stop: stop,
        }
    }

    fn recover(&self) {
        self.delay_ms.store(0, Ordering::SeqCst);
    }
}

const POLICY: &str = r#"
[cluster]
platforms = ["linux/amd64", "linux/arm64"]

[defaults]
mode = "mutate"
unknown_images = "warn"

[[rules]]
name = "strict"
namespaces = ["strict"]
unknown_images = "deny"

[placement]
give_up_after = "GIVE_UP"
"#;

/// `archgate serve` watching `api`, asking registries at `hosts` over plain HTTP with a 1 s
/// lookup timeout.
fn serve(api: &KubeApi, hosts: &[SocketAddr], give_up: &str) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let policy = common::write_file(
        dir.path(),
        "policy.toml",
        &POLICY.replace("GIVE_UP", give_up),
    );
    let platforms = common::write_file(dir.path(), "platforms.toml", "[images]\n");
    let mut registries = String::from(
        "[timeouts]\nlookup = \"1s\"\nrequest = \"1s\"\nbackground = \"20s\"\n[cache]\nnegative_ttl = \"1s\"\n",
    );
    for host in hosts {
        registries.push_str(&format!("[registries.\"{host}\"]\ninsecure = true\n"));
    }
    let registry_config = common::write_file(dir.path(), "registries.toml", &registries);
    Server::start_with(
        ServeOptions {
            policy: Some(policy),
            platforms: Some(platforms),
            inventory: Some("watch"),
            extra_args: vec![
                "--kubeconfig".into(),
                api.kubeconfig.clone().into(),
                "--registry-config".into(),
                registry_config.into(),
                "--namespace".into(),
                "archgate".into(),
                "--lease-duration".into(),
                "2s".into(),
            ],
            env: vec![("ARCHGATE_LOG".into(), "archgate=debug".into())],
            ..ServeOptions::default()
        },
        dir,
    )
}

/// What the API server does with a pod create: the mutating webhook, its patch, the validating
/// webhook, then the pod stored. Returns the stored pod (or the denial's answer as an error).
async fn create(server: &Server, api: &KubeApi, pod: Value) -> Value {
    let mut client = server.client(common::Proto::H2).await;
    let answer = client
        .review_value("/mutate?timeout=2s", &kubeapi::create_review(&pod))
        .await;
    assert_eq!(answer["response"]["allowed"], true, "{answer}");
    let admitted = common::apply_patch(&pod, &answer);
    let verdict = client
        .review_value("/validate?timeout=2s", &kubeapi::create_review(&admitted))
        .await;
    assert_eq!(verdict["response"]["allowed"], true, "{verdict}");
    let ns = pod["metadata"]["namespace"].as_str().unwrap();
    api.create(&format!("/api/v1/namespaces/{ns}/pods"), admitted)
}

fn gated(pod: &Value) -> bool {
    pod["spec"]["schedulingGates"]
        .as_array()
        .is_some_and(|g| g.iter().any(|g| g["name"] == "archgate.io/placement"))
}

/// The stored pod once archgate has released it from its gate, polled for at most [`WITHIN`].
async fn released(api: &KubeApi, path: &str, server: &Server) -> Value {
    let deadline = Instant::now() + WITHIN;
    loop {
        let pod = api.get(path).unwrap_or(Value::Null);
        if !pod.is_null() && !gated(&pod) {
            return pod;
        }
        assert!(
            Instant::now() < deadline,
            "{path} still gated after {WITHIN:?}: {pod}\n{}",
            server.output()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn event_reasons(api: &KubeApi, ns: &str, pod: &str) -> Vec<String> {
    api.list(&format!("/api/v1/namespaces/{ns}/events"))
        .iter()
        .filter(|e| e["involvedObject"]["name"] == pod)
        .filter_map(|e| e["reason"].as_str().map(String::from))
        .collect()
}

/// Waits for an Event with `reason` on the pod, for at most [`WITHIN`].
async fn wait_for_event(api: &KubeApi, ns: &str, pod: &str, reason: &str, server: &Server) {
    let deadline = Instant::now() + WITHIN;
    while !event_reasons(api, ns, pod).contains(&reason.to_string()) {
        assert!(
            Instant::now() < deadline,
            "no {reason} Event on {ns}/{pod}:\n{}",
            server.output()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn affinity(pod: &Value) -> &Value {
    &pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        ["nodeSelectorTerms"]
}

/// A fake API server, a registry holding `app/web:1.0` for `platform`, and a stalled proxy in
/// front of it; `image` names the image through the proxy. Bind every field: the registry stops
/// when its binding is dropped.
struct Stalled {
    api: KubeApi,
    _registry: Registry,
    stall: Stall,
    image: String,
}

async fn stalled(platform: &str) -> Stalled {
    let api = KubeApi::start();
    let registry = Registry::plain();
    registry
        .push_image("app/web", "1.0", platform, OCI_MANIFEST)
        .await;
    let stall = Stall::start(registry.host.parse().unwrap()).await;
    let image = format!("{}/app/web:1.0", stall.addr);
    Stalled {
        api,
        _registry: registry,
        stall,
        image,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_gated_on_a_stalled_registry_is_placed_and_ungated_when_it_recovers() {
    let Stalled {
        api,
        stall,
        image,
        _registry,
    } = stalled("linux/amd64").await;
    let server = serve(&api, &[stall.addr], "10m");

    let mut pod = common::kubeapi::pod("shop", "web-1", &image);
    pod["metadata"]["labels"] = json!({"app": "web"});
    pod["spec"]["affinity"] = json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
        {"nodeSelectorTerms": [{"matchExpressions": [{"key": "gpu.vendor", "operator": "Exists"}]}]}}});
    let stored = create(&server, &api, pod).await;
    assert!(gated(&stored), "{stored}\n{}", server.output());
    assert_eq!(
        stored["metadata"]["labels"]["archgate.io/placement"],
        "gated"
    );
    let why = stored["metadata"]["annotations"]["archgate.io/placement"]
        .as_str()
        .unwrap();
    assert!(why.contains(&image), "{why}");

    // A gated pod deleted before its registry answers is dropped quietly.
    let doomed = create(
        &server,
        &api,
        common::kubeapi::pod("shop", "doomed", &image),
    )
    .await;
    assert!(gated(&doomed));
    api.delete("/api/v1/namespaces/shop/pods/doomed");

    // archgate's own namespace and kube-system never wait on archgate: decided at once.
    for ns in ["archgate", "kube-system"] {
        let mut client = server.client(common::Proto::H2).await;
        let pod = common::kubeapi::pod(ns, "own", &image);
        let answer = client
            .review_value("/mutate?timeout=2s", &kubeapi::create_review(&pod))
            .await;
        let admitted = common::apply_patch(&pod, &answer);
        assert!(!gated(&admitted), "{ns}: {answer}");
    }

    tokio::time::sleep(Duration::from_secs(2)).await;
    let still = api.get("/api/v1/namespaces/shop/pods/web-1").unwrap();
    assert!(
        gated(&still),
        "no placement while the registry stalls: {still}"
    );
    stall.recover();
    let placed = released(&api, "/api/v1/namespaces/shop/pods/web-1", &server).await;
    // The gated pod's own term keeps its requirement and gains the architecture.
    assert_eq!(
        affinity(&placed),
        &json!([{"matchExpressions": [
            {"key": "gpu.vendor", "operator": "Exists"},
            {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]}
        ]}]),
        "{placed}"
    );
    assert_eq!(placed["metadata"]["labels"], json!({"app": "web"}));
    assert_eq!(
        placed["metadata"]["annotations"]["archgate.io/architectures"],
        "amd64"
    );
    let note = placed["metadata"]["annotations"]["archgate.io/placement"]
        .as_str()
        .unwrap();
    assert!(note.contains("placed on amd64"), "{note}");
    // The Event follows the release.
    wait_for_event(&api, "shop", "web-1", "ArchgatePlaced", &server).await;
    let reasons = event_reasons(&api, "shop", "web-1");
    assert!(reasons.contains(&"ArchgateGated".into()), "{reasons:?}");
    let metrics = server.metrics().await;
    assert_eq!(
        common::metric(
            &metrics,
            "archgate_placement_outcomes_total",
            &[("outcome", "placed")]
        ),
        Some(1.0),
        "{metrics}"
    );
    assert!(
        !api.requests()
            .iter()
            .any(|r| r.starts_with("PATCH /api/v1/namespaces/shop/pods/doomed")),
        "{:?}",
        api.requests()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conflicting_update_is_retried_from_a_fresh_read() {
    let Stalled {
        api,
        stall,
        image,
        _registry,
    } = stalled("linux/arm64").await;
    let server = serve(&api, &[stall.addr], "10m");
    let stored = create(&server, &api, common::kubeapi::pod("shop", "web-2", &image)).await;
    assert!(gated(&stored), "{stored}");
    api.set_fail_patches(2);
    stall.recover();
    let placed = released(&api, "/api/v1/namespaces/shop/pods/web-2", &server).await;
    assert_eq!(
        affinity(&placed),
        &json!([{"matchExpressions": [{"key": "kubernetes.io/arch", "operator": "In", "values": ["arm64"]}]}])
    );
    let patches = api
        .requests()
        .iter()
        .filter(|r| r.starts_with("PATCH /api/v1/namespaces/shop/pods/web-2"))
        .count();
    assert_eq!(patches, 3, "two conflicts, then the update");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_deadline_warn_releases_unplaced_and_deny_keeps_the_pod_gated() {
    let api = KubeApi::start();
    let silent = Silent::start().await;
    let server = serve(&api, &[silent.addr], "3s");
    let image = format!("{}/app/never:1.0", silent.addr);
    let lenient = create(
        &server,
        &api,
        common::kubeapi::pod("shop", "lenient", &image),
    )
    .await;
    let strict = create(
        &server,
        &api,
        common::kubeapi::pod("strict", "strict", &image),
    )
    .await;
    assert!(gated(&lenient) && gated(&strict), "{lenient}\n{strict}");

    // unknown_images = "warn": released unplaced, with an Event saying so.
    let released = released(&api, "/api/v1/namespaces/shop/pods/lenient", &server).await;
    assert!(released["spec"].get("affinity").is_none(), "{released}");
    let note = released["metadata"]["annotations"]["archgate.io/placement"]
        .as_str()
        .unwrap();
    assert!(note.contains("gave up"), "{note}");
    wait_for_event(&api, "shop", "lenient", "ArchgateGaveUp", &server).await;

    // unknown_images = "deny": still gated, and told why.
    wait_for_event(&api, "strict", "strict", "ArchgateGaveUp", &server).await;
    let kept = api.get("/api/v1/namespaces/strict/pods/strict").unwrap();
    assert!(gated(&kept), "{kept}");
    let metrics = server.metrics().await;
    for outcome in ["unplaced", "stays_gated"] {
        assert_eq!(
            common::metric(
                &metrics,
                "archgate_placement_outcomes_total",
                &[("outcome", outcome)]
            ),
            Some(1.0),
            "{outcome}: {metrics}"
        );
    }
}

/// The Lease's holder, once there is one.
async fn holder(api: &KubeApi) -> String {
    let deadline = Instant::now() + WITHIN;
    loop {
        let lease = api.get(
            "/apis/coordination.k8s.io/v1/namespaces/archgate/leases/archgate-placement-controller",
        );
        if let Some(h) = lease
            .as_ref()
            .and_then(|l| l["spec"]["holderIdentity"].as_str())
        {
            return h.to_string();
        }
        assert!(Instant::now() < deadline, "nobody took the Lease");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_leader_dies_the_other_replica_takes_over_within_the_lease() {
    let Stalled {
        api,
        stall,
        image,
        _registry,
    } = stalled("linux/amd64").await;
    let mut replicas = vec![
        serve(&api, &[stall.addr], "10m"),
        serve(&api, &[stall.addr], "10m"),
    ];
    let leader = holder(&api).await;
    let index = replicas
        .iter()
        .position(|s| leader.ends_with(&format!("_{}", s.pid())))
        .unwrap_or_else(|| panic!("the holder {leader} is neither replica"));
    let survivor = replicas.remove(1 - index);
    let stored = create(
        &survivor,
        &api,
        common::kubeapi::pod("shop", "web-3", &image),
    )
    .await;
    assert!(gated(&stored));
    // SIGKILL: no chance to give the Lease up.
    drop(replicas);
    stall.recover();
    let placed = released(&api, "/api/v1/namespaces/shop/pods/web-3", &survivor).await;
    assert_eq!(
        placed["metadata"]["annotations"]["archgate.io/architectures"],
        "amd64"
    );
    let now = holder(&api).await;
    assert!(now.ends_with(&format!("_{}", survivor.pid())), "{now}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_too_slow_for_admission_is_waited_for_by_the_controller() {
    let api = KubeApi::start();
    let registry = Registry::plain();
    registry
        .push_image("app/slow", "1.0", "linux/arm64", OCI_MANIFEST)
        .await;
    // Every connection waits 3 s: beyond the 1 s admission lookup, within the 20 s background one.
    let slow = Stall::delaying(registry.host.parse().unwrap(), 3000).await;
    let server = serve(&api, &[slow.addr], "10m");
    let image = format!("{}/app/slow:1.0", slow.addr);
    let stored = create(
        &server,
        &api,
        common::kubeapi::pod("shop", "slow-1", &image),
    )
    .await;
    assert!(gated(&stored), "{stored}\n{}", server.output());
    let placed = released(&api, "/api/v1/namespaces/shop/pods/slow-1", &server).await;
    assert_eq!(
        affinity(&placed),
        &json!([{"matchExpressions": [{"key": "kubernetes.io/arch", "operator": "In", "values": ["arm64"]}]}]),
        "{placed}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_stopped_by_sigterm_gives_its_lease_up() {
    let api = KubeApi::start();
    let mut server = serve(&api, &[], "10m");
    let leader = holder(&api).await;
    assert!(leader.ends_with(&format!("_{}", server.pid())), "{leader}");
    server.terminate();
    server.assert_exits_0(Duration::from_secs(20));
    let lease = api
        .get(
            "/apis/coordination.k8s.io/v1/namespaces/archgate/leases/archgate-placement-controller",
        )
        .unwrap();
    assert!(
        lease["spec"]
            .get("holderIdentity")
            .is_none_or(Value::is_null),
        "the next replica must not wait for the lease to expire: {lease}"
    );
}
