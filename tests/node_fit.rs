//! Placement that sees the whole node, end to end: the real `archgate serve` binary over HTTPS,
//! watching the seed cluster's Nodes plus a Windows node, an NFD-labelled x86-64-v3 node and a
//! cordoned Pi (tests/fixtures/nodes/seed-extended.nodes.json) on a fake API server, with a pool
//! that scales from zero declared in the policy. Messages are asserted word for word.
#![allow(clippy::unwrap_used)]

mod common;

use common::kubeapi::{self, KubeApi};
use common::{ServeOptions, Server};
use serde_json::{json, Value};

const POLICY: &str = r#"
[cluster]
platforms = ["linux/amd64", "linux/arm64"]

[[cluster.pools]]
name = "riscv-spot"
platform = "linux/riscv64"
taints = [{ key = "spot", value = "true", effect = "NoSchedule" }]
"#;

const PLATFORMS: &str = r#"
[images]
"homelab/x:1" = ["linux/amd64"]
"homelab/multi:1" = ["linux/amd64", "linux/arm64"]
"homelab/fast:1" = ["linux/amd64/v3"]
"homelab/riscv:1" = ["linux/riscv64"]
"mcr.microsoft.com/windows/servercore/iis:ltsc2022" = ["windows/amd64"]
"#;

/// The stateful fake API server with the seed's 14 Nodes and the three extra ones.
fn api() -> KubeApi {
    let api = KubeApi::start();
    let path = common::manifest_path("tests/fixtures/nodes/seed-extended.nodes.json");
    let list: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    for node in list["items"].as_array().unwrap() {
        let name = node["metadata"]["name"].as_str().unwrap();
        if ["gauntlgrym", "blackstaff", "laeral"].contains(&name) {
            api.create("/api/v1/nodes", node.clone());
        }
    }
    api
}

fn serve(api: &KubeApi) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let policy = common::write_file(dir.path(), "policy.toml", POLICY);
    let platforms = common::write_file(dir.path(), "platforms.toml", PLATFORMS);
    Server::start_with(
        ServeOptions {
            policy: Some(policy),
            platforms: Some(platforms),
            inventory: Some("watch"),
            extra_args: vec!["--kubeconfig".into(), api.kubeconfig.clone().into()],
            ..ServeOptions::default()
        },
        dir,
    )
}

fn pod(image: &str, spec: Value) -> Value {
    let mut p = kubeapi::pod("shop", "p", image);
    if let (Some(dst), Value::Object(src)) = (p["spec"].as_object_mut(), spec) {
        dst.extend(src);
    }
    p
}

/// The mutating webhook's answer for `pod`.
async fn mutate(server: &Server, pod: &Value) -> Value {
    let mut client = server.client(common::Proto::H2).await;
    let answer = client
        .review_value("/mutate", &kubeapi::create_review(pod))
        .await;
    answer["response"].clone()
}

fn message(response: &Value) -> &str {
    assert_eq!(response["allowed"], false, "{response}");
    response["status"]["message"].as_str().unwrap()
}

fn warnings(response: &Value) -> Vec<&str> {
    response["warnings"]
        .as_array()
        .map(|w| w.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_judges_unbound_pods_against_every_watched_node_and_the_declared_pools() {
    let api = api();
    let server = serve(&api);
    server.output_containing("\"nodes\":17");

    // The issue's case: a GPU node selector without the toleration.
    let gpu = pod(
        "homelab/x:1",
        json!({"nodeSelector": {"nvidia.com/gpu.present": "true"}}),
    );
    assert_eq!(
        message(&mutate(&server, &gpu).await),
        "archgate: pod shop/p cannot be scheduled on any node: elminster: tainted nvidia.com/gpu:NoSchedule (the pod does not tolerate it); pool riscv-spot: the image homelab/x:1 has no riscv64 build; gauntlgrym: runs windows; 6 arm64 nodes: the image homelab/x:1 has no arm64 build; 9 nodes: no label nvidia.com/gpu.present=true. Change the pod's nodeSelector, affinity, tolerations or resources, or add a node (or a [[cluster.pools]] entry) that fits"
    );

    // Only the cordoned Pi has a camera: admitted, with a warning.
    let camera = pod(
        "homelab/multi:1",
        json!({"nodeSelector": {"example.com/camera": "true"}}),
    );
    let response = mutate(&server, &camera).await;
    assert_eq!(response["allowed"], true, "{response}");
    assert_eq!(
        warnings(&response),
        ["pod shop/p fits only nodes that take no pods now: laeral (cordoned); it stays Pending until one does"]
    );

    // riscv64 has no node now, only a pool: placed there when the pod tolerates the pool's taint.
    let riscv = pod(
        "homelab/riscv:1",
        json!({"tolerations": [{"key": "spot", "operator": "Exists"}]}),
    );
    let response = mutate(&server, &riscv).await;
    assert_eq!(response["allowed"], true, "{response}");
    assert_eq!(response["patchType"], "JSONPatch", "{response}");
    let untolerated = pod("homelab/riscv:1", json!({}));
    assert_eq!(
        message(&mutate(&server, &untolerated).await),
        "archgate: pod shop/p cannot be scheduled on any node: pool riscv-spot: tainted spot=true:NoSchedule (the pod does not tolerate it); gauntlgrym: runs windows; 6 arm64 nodes: the image homelab/riscv:1 has no arm64 build; 10 amd64 nodes: the image homelab/riscv:1 has no amd64 build. Change the pod's nodeSelector, affinity, tolerations or resources, or add a node (or a [[cluster.pools]] entry) that fits"
    );

    // A Windows pod that tolerates the Windows node's taint: allowed untouched.
    let iis = pod(
        "mcr.microsoft.com/windows/servercore/iis:ltsc2022",
        json!({"os": {"name": "windows"}, "nodeSelector": {"kubernetes.io/os": "windows"},
               "tolerations": [{"key": "os", "value": "windows", "effect": "NoSchedule"}]}),
    );
    let response = mutate(&server, &iis).await;
    assert_eq!(response["allowed"], true, "{response}");
    assert!(response["patch"].is_null(), "never patched: {response}");
    assert!(warnings(&response).is_empty(), "{response}");

    // An x86-64-v3 image: only blackstaff declares its CPU; the rest are named in a warning.
    let fast = pod("homelab/fast:1", json!({}));
    let response = mutate(&server, &fast).await;
    assert_eq!(response["allowed"], true, "{response}");
    assert_eq!(
        warnings(&response),
        ["pod shop/p has an image built for amd64/v3 only, and nothing says which CPU variant nodes danilo, drizzt, khelben, regis and 1 more have: label them with Node Feature Discovery or declare [cluster] variant_labels"]
    );
}
