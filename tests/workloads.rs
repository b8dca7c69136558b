//! Workloads before their pods, ephemeral containers and dry runs, over real HTTPS with the
//! AdmissionReviews a kube-apiserver v1.24.2 sent for them.
#![allow(clippy::unwrap_used)]

mod common;

use common::{fixture, write_file, Proto, Server};
use serde_json::Value;

const VALIDATE: &str = "/validate?timeout=5s";
const MUTATE: &str = "/mutate?timeout=5s";

const PLATFORMS_SPLIT: &str = r#"[images]
"registry.example/shop/web:2.3.1" = ["linux/amd64"]
"registry.example/shop/web:2.4.0-rc1" = ["linux/s390x"]
"registry.example/shop/migrate:2.3.1" = ["linux/arm64"]
"registry.example/monitoring/node-exporter:1.5.0" = ["linux/amd64"]
"registry.example/tools/debug-shell:1.2" = ["linux/amd64"]
"registry.example/team/edge-agent:0.3.1" = ["linux/arm64"]
"#;

/// A server with the homelab policy (or `mode` as its default) and the given platforms.
fn server(platforms: &str, mode: &str) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let homelab = std::fs::read_to_string(common::homelab_policy()).unwrap();
    let policy = write_file(
        dir.path(),
        "policy.toml",
        &homelab.replace("mode = \"mutate\"", &format!("mode = \"{mode}\"")),
    );
    let platforms = write_file(dir.path(), "platforms.toml", platforms);
    Server::start_policy(&policy, &platforms, dir)
}

fn homelab_platforms() -> String {
    std::fs::read_to_string(common::homelab_platforms()).unwrap()
}

fn response(answer: &Value) -> &Value {
    &answer["response"]
}

fn message(answer: &Value) -> String {
    response(answer)["status"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn every_workload_of_the_homelab_is_allowed_at_validation_and_never_patched() {
    let server = server(&homelab_platforms(), "mutate");
    let mut client = server.client(Proto::H2).await;
    for name in [
        "deployment-create.json",
        "statefulset-create.json",
        "daemonset-create.json",
        "job-create.json",
        "cronjob-create.json",
        "replicaset-create.json",
        "job-create-by-cronjob-controller.json",
    ] {
        for path in [MUTATE, VALIDATE] {
            let answer = client.review(path, name).await;
            assert_eq!(
                response(&answer)["allowed"],
                true,
                "{name} at {path}: {answer}"
            );
            assert!(
                response(&answer).get("patch").is_none(),
                "{name}: templates are never mutated: {answer}"
            );
        }
    }
}

#[tokio::test]
async fn a_deployment_whose_images_share_no_architecture_fails_at_apply_time() {
    let server = server(PLATFORMS_SPLIT, "mutate");
    let mut client = server.client(Proto::H2).await;
    let answer = client.review(VALIDATE, "deployment-create.json").await;
    assert_eq!(response(&answer)["allowed"], false, "{answer}");
    assert_eq!(response(&answer)["status"]["code"], 403);
    let msg = message(&answer);
    assert!(msg.contains("cannot run on any node"), "{msg}");
    assert!(
        msg.contains(
            "registry.example/shop/web:2.3.1 (container \"web\") is built for linux/amd64"
        ),
        "{msg}"
    );
    assert!(msg.contains("registry.example/shop/migrate:2.3.1 (init container \"migrate\") is built for linux/arm64"), "{msg}");
    assert_eq!(
        response(&answer)["auditAnnotations"]["decision"],
        "deny",
        "{answer}"
    );
}

#[tokio::test]
async fn a_dry_run_gets_the_same_answer_as_the_real_thing() {
    let server = server(PLATFORMS_SPLIT, "mutate");
    let mut client = server.client(Proto::H1).await;
    let dry = client
        .review(VALIDATE, "deployment-create-dryrun.json")
        .await;
    assert_eq!(
        fixture("deployment-create-dryrun.json")["request"]["dryRun"],
        true
    );
    assert_eq!(response(&dry)["allowed"], false, "{dry}");
    assert!(
        message(&dry).contains("there are no s390x nodes in this cluster"),
        "{dry}"
    );
    let mut real = fixture("deployment-create-dryrun.json");
    real["request"]["dryRun"] = Value::Bool(false);
    let answer = client.review_value(VALIDATE, &real).await;
    assert_eq!(response(&answer)["status"], response(&dry)["status"]);
}

#[tokio::test]
async fn a_daemonset_whose_image_misses_an_architecture_is_warned_or_denied_per_mode() {
    let server_warn = server(PLATFORMS_SPLIT, "mutate");
    let mut client = server_warn.client(Proto::H2).await;
    let answer = client.review(VALIDATE, "daemonset-create.json").await;
    assert_eq!(response(&answer)["allowed"], true, "{answer}");
    let warnings = response(&answer)["warnings"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let w = warnings.first().and_then(Value::as_str).unwrap_or_default();
    assert!(
        w.contains("arm64 nodes") && w.contains("exec format error"),
        "{answer}"
    );
    assert!(
        !w.starts_with("Warning:") && w.chars().count() <= 256,
        "API limits: {w}"
    );

    let server_deny = server(PLATFORMS_SPLIT, "validate");
    let mut client = server_deny.client(Proto::H2).await;
    let answer = client.review(VALIDATE, "daemonset-create.json").await;
    assert_eq!(response(&answer)["allowed"], false, "{answer}");
    assert!(message(&answer).contains("node-exporter:1.5.0"), "{answer}");
}

#[tokio::test]
async fn a_scale_update_of_a_replicaset_is_not_re_evaluated_but_a_template_change_is() {
    let server = server(PLATFORMS_SPLIT, "mutate");
    let mut client = server.client(Proto::H2).await;
    let scale = client
        .review(VALIDATE, "replicaset-update-scale.json")
        .await;
    assert_eq!(
        response(&scale)["allowed"],
        true,
        "the template did not change: {scale}"
    );
    let mut changed = fixture("replicaset-update-scale.json");
    changed["request"]["object"]["spec"]["template"]["metadata"]["labels"]["rev"] =
        Value::from("2");
    let answer = client.review_value(VALIDATE, &changed).await;
    assert_eq!(response(&answer)["allowed"], false, "{answer}");
}

#[tokio::test]
async fn an_ephemeral_container_is_checked_against_where_its_pod_runs() {
    let server = server(PLATFORMS_SPLIT, "mutate");
    let mut client = server.client(Proto::H2).await;
    let name = "pod-update-ephemeralcontainers.json";
    let answer = client.review(MUTATE, name).await;
    assert_eq!(
        response(&answer)["allowed"],
        true,
        "never patched at the mutating stage: {answer}"
    );
    assert!(response(&answer).get("patch").is_none());
    let answer = client.review(VALIDATE, name).await;
    assert_eq!(response(&answer)["allowed"], false, "{answer}");
    let msg = message(&answer);
    assert!(
        msg.contains("ephemeral container") && msg.contains("arm64"),
        "{msg}"
    );
    assert!(
        msg.contains("registry.example/tools/debug-shell:1.2 (ephemeral container \"debugger"),
        "{msg}"
    );

    let homelab = self::server(&homelab_platforms(), "mutate");
    let mut client = homelab.client(Proto::H2).await;
    let answer = client.review(VALIDATE, name).await;
    assert_eq!(
        response(&answer)["allowed"],
        true,
        "debug-shell is multi-arch there: {answer}"
    );
}
