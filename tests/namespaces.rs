//! Rules that pick namespaces by label (`namespace_selector`): fed by the Namespace watch in
//! `archgate serve` (against the fake API server), by `--namespaces` and the manifests' own
//! Namespace objects in `archgate check`, and by `namespace_labels` in `archgate test`.
#![allow(clippy::unwrap_used)]

mod common;

use common::kubeapi::{self, KubeApi};
use common::{ServeOptions, Server};
use serde_json::{json, Value};
use std::process::Command;
use std::time::{Duration, Instant};

/// Namespaces labelled `archgate.io/mode=off` are left alone; `team` namespaces prefer the Pis.
const POLICY: &str = r#"
[cluster]
platforms = ["linux/amd64", "linux/arm64"]

[defaults]
mode = "mutate"
unknown_images = "warn"

[[rules]]
name = "opted-out"
mode = "off"
namespace_selector = { match_labels = { "archgate.io/mode" = "off" } }

[[rules]]
name = "teams"
namespace_selector = { match_expressions = [{ key = "team", operator = "Exists" }] }
prefer = [{ architectures = ["arm64"], weight = 50 }]
"#;

const PLATFORMS: &str = "[images]\n\"nginx:1.27\" = [\"linux/amd64\", \"linux/arm64\"]\n";

fn namespace(name: &str, labels: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}})
}

/// The rule the mutating webhook names for a pod created in `ns` (`None`: no rule, or `off`).
async fn rule_for(server: &Server, ns: &str) -> Option<String> {
    let mut client = server.client(common::Proto::H2).await;
    let pod = kubeapi::pod(ns, "web", "nginx:1.27");
    let answer = client
        .review_value("/mutate?timeout=2s", &kubeapi::create_review(&pod))
        .await;
    assert_eq!(answer["response"]["allowed"], true, "{answer}");
    answer["response"]["auditAnnotations"]["rule"]
        .as_str()
        .map(String::from)
}

/// Polls [`rule_for`] until it is `want`, for at most 10 s.
async fn wait_for_rule(server: &Server, ns: &str, want: Option<&str>) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = rule_for(server, ns).await;
        if got.as_deref() == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{ns}: rule {got:?}, want {want:?}\n{}",
            server.output()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_selects_namespaces_by_their_labels_as_the_watch_sees_them() {
    let api = KubeApi::start();
    api.create(
        "/api/v1/namespaces",
        namespace("quiet", json!({"archgate.io/mode": "off"})),
    );
    api.create(
        "/api/v1/namespaces",
        namespace("web", json!({"team": "web"})),
    );
    api.create("/api/v1/namespaces", namespace("shop", json!({})));
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(
        ServeOptions {
            policy: Some(common::write_file(dir.path(), "policy.toml", POLICY)),
            platforms: Some(common::write_file(dir.path(), "platforms.toml", PLATFORMS)),
            inventory: Some("watch"),
            extra_args: vec!["--kubeconfig".into(), api.kubeconfig.clone().into()],
            ..ServeOptions::default()
        },
        dir,
    );
    server.output_containing("cluster watches synced");
    assert_eq!(rule_for(&server, "quiet").await, None);
    assert_eq!(rule_for(&server, "web").await.as_deref(), Some("teams"));
    assert_eq!(rule_for(&server, "shop").await, None);
    // A namespace created a moment before its first pod: the watch may not have it yet, and it
    // is read with a GET rather than judged by its name alone.
    api.create(
        "/api/v1/namespaces",
        namespace("fresh", json!({"team": "data"})),
    );
    assert_eq!(rule_for(&server, "fresh").await.as_deref(), Some("teams"));
    // Relabelled: the next pod follows the new labels.
    api.delete("/api/v1/namespaces/shop");
    api.create(
        "/api/v1/namespaces",
        namespace("shop", json!({"team": "shop"})),
    );
    wait_for_rule(&server, "shop", Some("teams")).await;
    // The policy's selector only ever reads labels: a namespace nobody created is by name only.
    assert_eq!(rule_for(&server, "nowhere").await, None);
    let namespaces = api
        .requests()
        .into_iter()
        .filter(|r| r.contains("/api/v1/namespaces") && !r.contains("/pods"))
        .collect::<Vec<_>>();
    assert!(
        namespaces.iter().any(|r| r.contains("watch")),
        "namespaces are watched: {namespaces:?}"
    );
}

fn check(dir: &std::path::Path, extra: &[&str], manifests: &str) -> String {
    let policy = common::write_file(dir, "policy.toml", POLICY);
    let platforms = common::write_file(dir, "platforms.toml", PLATFORMS);
    let input = common::write_file(dir, "in.yaml", manifests);
    let out = Command::new(common::bin())
        .arg("check")
        .arg("--policy")
        .arg(&policy)
        .arg("--platforms")
        .arg(&platforms)
        .args(extra)
        .arg(&input)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap()
}

const PODS: &str = "apiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: web}\nspec: {containers: [{name: c, image: nginx:1.27}]}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: b, namespace: quiet}\nspec: {containers: [{name: c, image: nginx:1.27}]}\n";

#[test]
fn check_reads_namespace_labels_from_a_file_and_from_the_manifests() {
    let dir = tempfile::tempdir().unwrap();
    // Without labels, neither selector matches: both pods get the defaults.
    let plain = check(dir.path(), &["-o", "json"], PODS);
    let report: Value = serde_json::from_str(&plain).unwrap();
    let rules = |r: &Value| -> Vec<Value> {
        r["objects"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|o| o["kind"] == "Pod")
            .map(|o| o["rule"].clone())
            .collect()
    };
    assert_eq!(rules(&report), [Value::Null, Value::Null], "{plain}");
    // `kubectl get namespaces -o yaml` output.
    let list = "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Namespace, metadata: {name: web, labels: {team: web}}}\n- {apiVersion: v1, kind: Namespace, metadata: {name: quiet, labels: {archgate.io/mode: \"off\"}}}\n";
    let file = common::write_file(dir.path(), "namespaces.yaml", list);
    let given = check(
        dir.path(),
        &["-o", "json", "--namespaces", file.to_str().unwrap()],
        PODS,
    );
    let report: Value = serde_json::from_str(&given).unwrap();
    assert_eq!(
        rules(&report),
        [json!("teams"), json!("opted-out")],
        "{given}"
    );
    // The manifests' own Namespace objects count for the objects after them.
    let inline = format!(
        "apiVersion: v1\nkind: Namespace\nmetadata: {{name: web, labels: {{team: web}}}}\n---\n{PODS}"
    );
    let report: Value = serde_json::from_str(&check(dir.path(), &["-o", "json"], &inline)).unwrap();
    assert_eq!(rules(&report), [json!("teams"), Value::Null]);
    // A namespaces file that holds none is an error that says what to pass.
    let wrong = common::write_file(
        dir.path(),
        "nodes.yaml",
        "apiVersion: v1\nkind: List\nitems: []\n",
    );
    let out = Command::new(common::bin())
        .args(["check", "--policy"])
        .arg(dir.path().join("policy.toml"))
        .arg("--namespaces")
        .arg(&wrong)
        .arg(dir.path().join("in.yaml"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("kubectl get namespaces -o yaml"),
        "{stderr}"
    );
}

#[test]
fn test_suites_give_namespace_labels_per_suite_and_per_case() {
    let dir = tempfile::tempdir().unwrap();
    common::write_file(dir.path(), "policy.toml", POLICY);
    common::write_file(dir.path(), "platforms.toml", PLATFORMS);
    let pod = "input = \"\"\"\napiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec: {containers: [{name: c, image: nginx:1.27}]}\n\"\"\"\n";
    // The `teams` rule's preference is what shows the labels were seen.
    let prefers = "object = { spec = { affinity = { nodeAffinity = { preferredDuringSchedulingIgnoredDuringExecution = [{ weight = 50 }] } } } }\n";
    let suite = format!(
        "policy = \"policy.toml\"\nplatforms = \"platforms.toml\"\nnamespace = \"apps\"\nnamespace_labels = {{ team = \"apps\" }}\n\n\
         [[cases]]\nname = \"a team namespace prefers the Pis\"\n{pod}[cases.expect]\ndecision = \"patch\"\n{prefers}\n\
         [[cases]]\nname = \"an opted-out namespace is left alone\"\nnamespace_labels = {{ \"archgate.io/mode\" = \"off\" }}\n{pod}[cases.expect]\ndecision = \"allow\"\n\n\
         [[cases]]\nname = \"a case's labels replace the suite's\"\nnamespace_labels = {{}}\n{pod}[cases.expect]\n{prefers}"
    );
    let path = common::write_file(dir.path(), "ns.archgate-test.toml", &suite);
    let out = Command::new(common::bin())
        .arg("test")
        .arg(&path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout
            .lines()
            .any(|l| l.trim_start().starts_with("ok") && l.contains("a team namespace")),
        "{stdout}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.trim_start().starts_with("ok") && l.contains("opted-out")),
        "{stdout}"
    );
    // Without the suite's `team` label the third gets no preference, so its expectation fails.
    assert!(
        stdout.contains("FAIL  a case's labels replace the suite's")
            && stdout.contains("2 passed, 1 failed"),
        "{stdout}"
    );
    assert_eq!(out.status.code(), Some(1));
}
