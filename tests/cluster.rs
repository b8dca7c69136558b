//! The cluster watches against a fake API server on loopback (no API server runs in CI): the node
//! reflector over the seed cluster's recorded LIST and watch stream, readiness, the pull-secret
//! reflectors, and `archgate serve --inventory ...` as a real process over HTTPS.
#![allow(clippy::unwrap_used)]

mod common;

use arc_swap::ArcSwap;
use archgate::arch::Arch;
use archgate::cli::cluster_args::{ClusterArgs, InventoryMode};
use archgate::cluster::client::{self, ConfigOrigin};
use archgate::cluster::NodeWatch;
use archgate::inventory::{Inventory, InventorySource};
use archgate::platforms::{PullContext, PullSecretKind};
use archgate::policy::Policy;
use common::apiserver::{self, FakeApiServer, NODES, SECRETS};
use common::{homelab_policy, Proto};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// How long any one expected change may take to show.
const WITHIN: Duration = Duration::from_secs(10);
const STATIC_LINE: &str = "using the policy's static node inventory";

/// Polls `check` every 20 ms until it holds, for at most [`WITHIN`].
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + WITHIN;
    while !check() {
        assert!(Instant::now() < deadline, "{what}: not within {WITHIN:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn policy() -> Policy {
    Policy::load(&homelab_policy()).unwrap()
}

fn static_inventory() -> Arc<ArcSwap<Inventory>> {
    Arc::new(ArcSwap::from_pointee(policy().static_inventory()))
}

async fn watch_nodes(api: &FakeApiServer) -> (NodeWatch, Arc<ArcSwap<Inventory>>) {
    let connection = client::connect(ConfigOrigin::Flag(api.kubeconfig.clone()))
        .await
        .unwrap();
    let inventory = static_inventory();
    let watch = NodeWatch::spawn(connection.client, inventory.clone());
    let mut synced = watch.synced();
    tokio::time::timeout(WITHIN, synced.wait_for(|s| *s))
        .await
        .expect("no first node sync")
        .unwrap();
    (watch, inventory)
}

fn label<'a>(inv: &'a Inventory, node: &str, key: &str) -> Option<&'a str> {
    inv.node(node)?.labels.get(key).map(String::as_str)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_reflector_builds_the_seed_clusters_inventory_and_follows_the_recorded_stream() {
    let api = FakeApiServer::start();
    let (_watch, inventory) = watch_nodes(&api).await;
    let inv = inventory.load_full();
    assert_eq!(inv.source, InventorySource::Nodes);
    assert_eq!(inv.archs.names(), ["amd64", "arm64"]);
    assert_eq!(inv.nodes.len(), 14);
    assert_eq!(inv.nodes_with(Arch::Arm64).count(), 5);
    let elminster = inv.node("elminster").unwrap();
    assert_eq!(elminster.extended_resources, ["nvidia.com/gpu"]);
    assert_eq!(elminster.taints[0].key, "nvidia.com/gpu");
    assert_eq!(elminster.taints[0].effect, "NoSchedule");

    // The recorded stream: regis gets a rack label, laeral (arm64) joins and leaves, regis loses it.
    api.play_recorded(1);
    eventually("regis labelled rack-2", || {
        label(&inventory.load(), "regis", "example.com/rack") == Some("rack-2")
    })
    .await;
    api.play_recorded(1);
    eventually("laeral added", || {
        let inv = inventory.load();
        inv.nodes.len() == 15 && inv.nodes_with(Arch::Arm64).count() == 6
    })
    .await;
    api.play_recorded(1);
    eventually("laeral deleted", || {
        inventory.load().node("laeral").is_none()
    })
    .await;
    assert_eq!(
        inventory.load().archs.names(),
        ["amd64", "arm64"],
        "arm64 stays: four Pis are left"
    );
    assert_eq!(api.play_recorded(1), 0, "the recorded stream is played out");
    eventually("regis unlabelled", || {
        label(&inventory.load(), "regis", "example.com/rack").is_none()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_with_a_new_architecture_adds_it_and_deleting_the_last_such_node_removes_it() {
    let api = FakeApiServer::start();
    let (_watch, inventory) = watch_nodes(&api).await;
    api.push(NODES, "ADDED", apiserver::node("visionfive", "riscv64"));
    eventually("riscv64 in the inventory", || {
        inventory.load().archs.contains(Arch::Riscv64)
    })
    .await;
    api.push(NODES, "ADDED", apiserver::node("visionfive-2", "riscv64"));
    api.push(NODES, "DELETED", apiserver::node("visionfive", "riscv64"));
    eventually("visionfive gone", || {
        inventory.load().node("visionfive").is_none()
    })
    .await;
    assert!(
        inventory.load().archs.contains(Arch::Riscv64),
        "one riscv64 node is left"
    );
    api.push(NODES, "DELETED", apiserver::node("visionfive-2", "riscv64"));
    eventually("riscv64 gone with its last node", || {
        inventory.load().archs.names() == ["amd64", "arm64"]
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_waits_for_the_first_node_list_and_the_static_inventory_serves_until_then() {
    let api = FakeApiServer::start();
    api.hold_lists(true);
    let args = ClusterArgs {
        inventory: InventoryMode::Watch,
        pull_secrets: false,
        kubeconfig: Some(api.kubeconfig.clone()),
    };
    let cluster = args.start(&policy(), false).await.unwrap();
    assert!(cluster.watches_nodes());
    let ready = Arc::new(AtomicBool::new(false));
    cluster.ready_when_synced(ready.clone());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !ready.load(Ordering::Acquire),
        "ready before the first list"
    );
    assert_eq!(cluster.inventory().load().source, InventorySource::Policy);
    api.hold_lists(false);
    eventually("ready after the first list", || {
        ready.load(Ordering::Acquire)
    })
    .await;
    assert_eq!(cluster.inventory().load().source, InventorySource::Nodes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_secrets_are_the_pods_then_its_service_accounts_skipping_missing_and_wrong_types() {
    let api = FakeApiServer::start();
    let args = ClusterArgs {
        inventory: InventoryMode::Static,
        pull_secrets: true,
        kubeconfig: Some(api.kubeconfig.clone()),
    };
    let cluster = args.start(&policy(), false).await.unwrap();
    assert!(!cluster.watches_nodes());
    let ready = Arc::new(AtomicBool::new(false));
    cluster.ready_when_synced(ready.clone());
    eventually("pull-secret watches synced", || {
        ready.load(Ordering::Acquire)
    })
    .await;
    let secrets = cluster.pull_secrets().unwrap();
    let names = |pull: &PullContext| -> Vec<(String, String, PullSecretKind)> {
        secrets
            .secrets_for(pull)
            .into_iter()
            .map(|s| (s.namespace, s.name, s.kind))
            .collect()
    };
    let pod = |ns: &str, own: &[&str], account: &str| PullContext {
        namespace: ns.into(),
        image_pull_secrets: own.iter().map(|s| s.to_string()).collect(),
        service_account: account.into(),
    };
    let apps = |name: &str, kind| ("apps".to_string(), name.to_string(), kind);
    use PullSecretKind::{DockerCfg, DockerConfigJson};

    // Pod: an Opaque secret, regcred, a missing one; account builder: legacy, gone, web-tls, regcred.
    let builder = pod("apps", &["not-a-pull-secret", "regcred", "gone"], "builder");
    assert_eq!(
        names(&builder),
        [apps("regcred", DockerConfigJson), apps("legacy", DockerCfg)]
    );
    assert_eq!(names(&pod("apps", &[], "")), [apps("legacy", DockerCfg)]);
    assert_eq!(
        names(&pod("other", &["regcred"], "default")),
        [("other".into(), "regcred".into(), DockerConfigJson)]
    );
    let data = &secrets.secrets_for(&pod("other", &["regcred"], "default"))[0].data;
    let config: Value = serde_json::from_slice(data).unwrap();
    assert!(
        config["auths"]["registry.other.internal"].is_object(),
        "{config}"
    );
    assert!(names(&pod("apps", &["regcred"], "nobody")).len() == 1);

    // A secret created later is seen without a restart, in its place in the order.
    api.push(
        SECRETS,
        "ADDED",
        json!({"kind": "Secret", "apiVersion": "v1", "type": "kubernetes.io/dockerconfigjson",
               "metadata": {"namespace": "apps", "name": "gone"},
               "data": {".dockerconfigjson": "eyJhdXRocyI6e319"}}),
    );
    eventually("the new secret is used", || names(&builder).len() == 3).await;
    assert_eq!(
        names(&builder),
        [
            apps("regcred", DockerConfigJson),
            apps("gone", DockerConfigJson),
            apps("legacy", DockerCfg)
        ]
    );
    // Only pull secrets cross the wire: every Secrets request carries a type field selector.
    let secret_requests: Vec<_> = api
        .requests()
        .into_iter()
        .filter(|r| r.starts_with("GET /api/v1/secrets"))
        .collect();
    assert!(!secret_requests.is_empty());
    for request in &secret_requests {
        assert!(
            request.contains("fieldSelector=type%3Dkubernetes.io%2Fdocker"),
            "{request}"
        );
    }
}

/// `archgate serve` as a process, with a clean cluster environment: no KUBECONFIG, no in-cluster
/// variables, HOME an empty directory. Killed on drop.
struct Serve {
    child: Child,
    output: Arc<Mutex<String>>,
    lines: mpsc::Receiver<String>,
    ca: PathBuf,
    _dir: TempDir,
}

impl Serve {
    /// With the homelab policy.
    fn spawn(platforms: Option<&Path>, args: &[&str]) -> Serve {
        Serve::spawn_policy(&homelab_policy(), platforms, args)
    }

    fn spawn_policy(policy: &Path, platforms: Option<&Path>, args: &[&str]) -> Serve {
        let dir = tempfile::tempdir().unwrap();
        let certs = dir.path().join("certs");
        common::write_certs(&certs);
        let home = dir.path().join("home");
        std::fs::create_dir(&home).unwrap();
        let mut child = Command::new(common::bin())
            .arg("serve")
            .arg("--policy")
            .arg(policy)
            .arg("--platforms")
            .arg(platforms.map_or_else(common::homelab_platforms, Path::to_path_buf))
            .arg("--tls-cert")
            .arg(certs.join("tls.crt"))
            .arg("--tls-key")
            .arg(certs.join("tls.key"))
            .args(["--listen", "127.0.0.1:0", "--log-format", "json"])
            .args(args)
            .env_remove("KUBECONFIG")
            .env_remove("KUBERNETES_SERVICE_HOST")
            .env_remove("KUBERNETES_SERVICE_PORT")
            .env("HOME", &home)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let output = Arc::new(Mutex::new(String::new()));
        let (tx, lines) = mpsc::channel();
        for pipe in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let (output, tx) = (output.clone(), tx.clone());
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    output.lock().unwrap().push_str(&format!("{line}\n"));
                    let _ = tx.send(line);
                }
            });
        }
        Serve {
            child,
            output,
            lines,
            ca: certs.join("ca.crt"),
            _dir: dir,
        }
    }

    /// Waits for the `listening` line; panics with the output if the process exits or is slow.
    fn listening(&self) -> SocketAddr {
        let deadline = Instant::now() + WITHIN;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some(addr) = common::listening_addr(&line) {
                        return addr;
                    }
                }
                Err(_) => panic!("archgate serve is not listening:\n{}", self.output()),
            }
        }
    }

    /// Waits for the process to exit on its own within [`WITHIN`].
    fn exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + WITHIN;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // Let the readers take the last lines.
                std::thread::sleep(Duration::from_millis(100));
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "archgate serve still runs after {WITHIN:?}:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    /// The output once it contains `needle`, or as it is after [`WITHIN`].
    fn output_containing(&self, needle: &str) -> String {
        common::output_containing(|| self.output(), needle, WITHIN)
    }

    async fn client(&self, addr: SocketAddr) -> common::Client {
        common::Client::connect(addr, &self.ca, "localhost", Proto::H2)
            .await
            .unwrap()
    }

    /// Polls /readyz until it answers 200 (the first node list is in), for at most [`WITHIN`].
    async fn wait_ready(&self, client: &mut common::Client) {
        let deadline = Instant::now() + WITHIN;
        while client.get("/readyz").await.0 != 200 {
            assert!(Instant::now() < deadline, "never ready:\n{}", self.output());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `archgate serve --inventory watch` against `api` with `policy` and `platforms`, listening
    /// and ready (it has the seed cluster's nodes); with a client.
    async fn watching(
        api: &FakeApiServer,
        policy: &Path,
        platforms: &Path,
    ) -> (Serve, common::Client) {
        let kubeconfig = api.kubeconfig.to_str().unwrap();
        let serve = Serve::spawn_policy(
            policy,
            Some(platforms),
            &["--inventory", "watch", "--kubeconfig", kubeconfig],
        );
        let addr = serve.listening();
        let mut client = serve.client(addr).await;
        serve.wait_ready(&mut client).await;
        (serve, client)
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn watch_against_an_unreachable_api_server_fails_startup_naming_what_to_check() {
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = apiserver::write_kubeconfig(dir.path(), &format!("http://127.0.0.1:{port}"));
    let started = Instant::now();
    let mut serve = Serve::spawn(
        None,
        &[
            "--inventory",
            "watch",
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
        ],
    );
    let status = serve.exit();
    let output = serve.output();
    assert!(!status.success(), "{output}");
    assert!(started.elapsed() < WITHIN, "{output}");
    for expected in [
        "cannot list nodes",
        &format!("127.0.0.1:{port}"),
        "--kubeconfig",
        "reachable",
        "--inventory static",
    ] {
        assert!(output.contains(expected), "no {expected:?} in:\n{output}");
    }
    assert!(!output.contains("\"listening\""), "{output}");
}

#[test]
fn watch_without_any_cluster_configuration_fails_startup_saying_where_it_looked() {
    let mut serve = Serve::spawn(None, &["--inventory", "watch"]);
    let status = serve.exit();
    let output = serve.output();
    assert!(!status.success(), "{output}");
    for expected in [
        "--inventory watch needs a cluster configuration",
        "KUBECONFIG",
    ] {
        assert!(output.contains(expected), "no {expected:?} in:\n{output}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_without_cluster_configuration_serves_the_static_inventory_and_says_so_once() {
    let serve = Serve::spawn(None, &[]);
    let addr = serve.listening();
    let mut client = serve.client(addr).await;
    let (status, _, _) = client.get("/readyz").await;
    assert_eq!(status, 200, "{}", serve.output());
    let answer = client
        .review("/mutate?timeout=10s", "pod-create-from-job-mutating.json")
        .await;
    assert_eq!(answer["response"]["allowed"], true);
    let output = serve.output();
    assert_eq!(output.matches(STATIC_LINE).count(), 1, "{output}");
    assert!(
        output.contains("no cluster configuration found"),
        "{output}"
    );
}

/// `pod-create.json` with its one container's image replaced by `image`.
fn pod_review(image: &str) -> Value {
    let mut review = common::fixture("pod-create.json");
    review["request"]["object"]["spec"]["containers"][0]["image"] = json!(image);
    review
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_riscv64_only_pod_is_denied_until_a_riscv64_node_joins_then_placed_there() {
    let api = FakeApiServer::start();
    api.hold_lists(true);
    let dir = tempfile::tempdir().unwrap();
    let platforms = common::write_file(
        dir.path(),
        "platforms.toml",
        "[images]\n\"registry.invalid/riscv-only:1\" = [\"linux/riscv64\"]\n",
    );
    let kubeconfig = api.kubeconfig.to_str().unwrap();
    let serve = Serve::spawn(
        Some(&platforms),
        &["--inventory", "watch", "--kubeconfig", kubeconfig],
    );
    let addr = serve.listening();
    let mut client = serve.client(addr).await;
    let (status, _, _) = client.get("/readyz").await;
    assert_eq!(status, 503, "ready before the first node list");
    api.hold_lists(false);
    serve.wait_ready(&mut client).await;

    let review = pod_review("registry.invalid/riscv-only:1");
    let answer = client.review_value("/mutate?timeout=10s", &review).await;
    assert_eq!(answer["response"]["allowed"], false, "{answer}");
    let message = answer["response"]["status"]["message"].as_str().unwrap();
    assert!(message.contains("riscv64"), "{message}");

    api.push(NODES, "ADDED", apiserver::node("visionfive", "riscv64"));
    let deadline = Instant::now() + WITHIN;
    let answer = loop {
        let answer = client.review_value("/mutate?timeout=10s", &review).await;
        if answer["response"]["allowed"] == true {
            break answer;
        }
        assert!(
            Instant::now() < deadline,
            "still denied:\n{answer}\n{}",
            serve.output()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let pod = common::apply_patch(&review["request"]["object"], &answer);
    let terms = &pod["spec"]["affinity"]["nodeAffinity"]
        ["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"];
    assert_eq!(
        terms[0]["matchExpressions"],
        json!([{"key": "kubernetes.io/arch", "operator": "In", "values": ["riscv64"]}]),
        "{pod}"
    );
    let output = serve.output_containing("amd64,arm64,riscv64");
    assert!(output.contains("amd64,arm64,riscv64"), "{output}");
}

fn warnings(answer: &Value) -> Vec<String> {
    answer["response"]["warnings"]
        .as_array()
        .map(|w| {
            w.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemonset_pods_are_validated_against_the_watched_node_they_are_bound_to_never_re_placed() {
    let api = FakeApiServer::start();
    let dir = tempfile::tempdir().unwrap();
    let platforms = common::write_file(
        dir.path(),
        "platforms.toml",
        "[images]\n\"registry.example/monitoring/node-exporter:1.5.0\" = [\"linux/amd64\"]\n",
    );
    let (serve, mut client) = Serve::watching(&api, &homelab_policy(), &platforms).await;

    // Bound to durnan (an arm64 Pi) by matchFields metadata.name, by a DaemonSet whose template
    // archgate did not place: refused, naming the node and the image, never re-placed.
    let answer = client
        .review(
            "/mutate?timeout=10s",
            "pod-create-from-daemonset-durnan-mutating.json",
        )
        .await;
    let response = &answer["response"];
    assert_eq!(response["allowed"], false, "{answer}");
    assert!(
        response.get("patch").is_none_or(Value::is_null),
        "a bound pod is never given affinity: {answer}"
    );
    let message = response["status"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("is bound to arm64 nodes durnan, where it fails with exec format error")
            && message.contains(
                "image registry.example/monitoring/node-exporter:1.5.0 (container \"node-exporter\") is built for linux/amd64"
            ),
        "{answer}\n{}",
        serve.output()
    );

    // Bound to khelben (amd64): the image runs there; nothing to say.
    let answer = client
        .review(
            "/mutate?timeout=10s",
            "pod-create-from-daemonset-khelben-mutating.json",
        )
        .await;
    let response = &answer["response"];
    assert_eq!(response["allowed"], true, "{answer}");
    assert!(response.get("patch").is_none_or(Value::is_null), "{answer}");
    assert!(warnings(&answer).is_empty(), "{answer}");

    // The DaemonSet itself would run on every arm64 node: warned, naming them.
    let answer = client
        .review("/validate?timeout=10s", "daemonset-create.json")
        .await;
    assert_eq!(answer["response"]["allowed"], true, "{answer}");
    let w = warnings(&answer);
    assert!(
        w.iter()
            .any(|w| w.contains("arm64 nodes durnan, elaith") && w.contains("exec format error")),
        "{answer}"
    );

    // A policy in validate mode denies the durnan pod at /validate, naming the node.
    let text = std::fs::read_to_string(homelab_policy()).unwrap();
    assert!(text.contains("mode = \"mutate\""));
    let validate = common::write_file(
        dir.path(),
        "validate.toml",
        &text.replacen("mode = \"mutate\"", "mode = \"validate\"", 1),
    );
    let (serve, mut client) = Serve::watching(&api, &validate, &platforms).await;
    let answer = client
        .review(
            "/validate?timeout=10s",
            "pod-create-from-daemonset-durnan.json",
        )
        .await;
    assert_eq!(answer["response"]["allowed"], false, "{answer}");
    let message = answer["response"]["status"]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(
        message.contains("durnan") && message.contains("arm64"),
        "{answer}\n{}",
        serve.output()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_amd64_only_daemonset_is_placed_at_its_template_over_https_once() {
    let api = FakeApiServer::start();
    let dir = tempfile::tempdir().unwrap();
    let platforms = common::write_file(
        dir.path(),
        "platforms.toml",
        "[images]\n\"registry.example/monitoring/node-exporter:1.5.0\" = [\"linux/amd64\"]\n",
    );
    let (serve, mut client) = Serve::watching(&api, &homelab_policy(), &platforms).await;

    let mut review = common::fixture("daemonset-create.json");
    let answer = client.review_value("/mutate?timeout=10s", &review).await;
    assert_eq!(answer["response"]["allowed"], true, "{answer}");
    let placed = common::apply_patch(&review["request"]["object"], &answer);
    let template = &placed["spec"]["template"];
    assert_eq!(
        template["spec"]["affinity"]["nodeAffinity"]
            ["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"],
        json!([{"matchExpressions": [{"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]}]}]),
        "{answer}\n{}",
        serve.output()
    );
    assert_eq!(
        template["metadata"]["annotations"]["archgate.io/architectures"],
        "amd64"
    );
    // Everything else in the DaemonSet is as written.
    let mut unplaced = placed.clone();
    unplaced["spec"]["template"]["spec"]
        .as_object_mut()
        .unwrap()
        .remove("affinity");
    unplaced["spec"]["template"]["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("annotations");
    assert_eq!(unplaced, review["request"]["object"]);

    // Reinvoked on the placed DaemonSet: nothing more to add.
    review["request"]["object"] = placed.clone();
    let answer = client.review_value("/mutate?timeout=10s", &review).await;
    assert!(
        answer["response"].get("patch").is_none_or(Value::is_null),
        "{answer}"
    );
    // The validating stage agrees: every node the placed template reaches runs the image.
    let answer = client.review_value("/validate?timeout=10s", &review).await;
    assert_eq!(answer["response"]["allowed"], true, "{answer}");
    assert!(warnings(&answer).is_empty(), "{answer}");

    // An UPDATE that changes no template (a label on the DaemonSet) is left alone.
    review["request"]["operation"] = json!("UPDATE");
    review["request"]["oldObject"] = placed.clone();
    review["request"]["object"]["metadata"]["labels"] = json!({"team": "observability"});
    let answer = client.review_value("/mutate?timeout=10s", &review).await;
    assert_eq!(answer["response"]["allowed"], true, "{answer}");
    assert!(
        answer["response"].get("patch").is_none_or(Value::is_null),
        "{answer}"
    );

    // A DaemonSet no node can run is refused at apply, naming the image and its platforms.
    let s390x = common::write_file(
        dir.path(),
        "s390x.toml",
        "[images]\n\"registry.example/monitoring/node-exporter:1.5.0\" = [\"linux/s390x\"]\n",
    );
    let (_serve, mut client) = Serve::watching(&api, &homelab_policy(), &s390x).await;
    let answer = client
        .review("/mutate?timeout=10s", "daemonset-create.json")
        .await;
    assert_eq!(answer["response"]["allowed"], false, "{answer}");
    let message = answer["response"]["status"]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(
        message.contains(
            "image registry.example/monitoring/node-exporter:1.5.0 (container \"node-exporter\") is built for linux/s390x"
        ),
        "{message}"
    );
}
