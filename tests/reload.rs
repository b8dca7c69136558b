//! End-to-end tests of configuration reloads in `archgate serve`: the real binary over real TLS,
//! its policy and platforms files edited on disk (in place, and by a Kubernetes-style `..data`
//! symlink swap) while it serves.
#![allow(clippy::unwrap_used)]

mod common;

use common::{decoded_patch, metric, write_file, Client, Proto, Server};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const MUTATE: &str = "/mutate?timeout=5s";
/// How long a reload may take to show in answers: a debounce of 150 ms, then a read.
const RELOAD_WITHIN: Duration = Duration::from_secs(10);

/// A pod in `shop` whose only image (`registry.example/shop/report:0.9.0`) runs on amd64 only:
/// placed on amd64 while the policy mutates there.
const SHOP_POD: &str = "pod-create-from-job-mutating.json";
/// A pod in `default` whose only image (`registry.invalid/busybox:1.36`) no platforms file lists.
const UNKNOWN_IMAGE_POD: &str = "pod-create.json";

const POLICY: &str = r#"[cluster]
platforms = ["linux/amd64", "linux/arm64"]

[defaults]
mode = "mutate"
unknown_images = "warn"
"#;

/// POLICY with the shop left alone.
fn policy_shop_off() -> String {
    format!("{POLICY}\n[[rules]]\nname = \"shop is left alone\"\nnamespaces = [\"shop\"]\nmode = \"off\"\n")
}

/// Line 5 is a table header without its closing bracket.
const BROKEN_POLICY: &str = r#"[cluster]
platforms = ["linux/amd64", "linux/arm64"]

[defaults]
[[rules]
mode = "mutate"
"#;

const PLATFORMS: &str = r#"[images]
"registry.example/shop/report:0.9.0" = ["linux/amd64"]
"#;

fn platforms_with_busybox() -> String {
    format!("{PLATFORMS}\"registry.invalid/busybox:1.36\" = [\"linux/arm64\"]\n")
}

/// Whether the answer patches the pod.
fn patched(answer: &Value) -> bool {
    decoded_patch(answer).is_some()
}

/// The architectures an answer's audit annotations name ("" when none).
fn architectures(answer: &Value) -> &str {
    answer["response"]["auditAnnotations"]["architectures"]
        .as_str()
        .unwrap_or_default()
}

/// Reviews `fixture` until `done` says the answer is the one expected, or `within` passes.
async fn answer_until(
    client: &mut Client,
    fixture: &str,
    within: Duration,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let answer = client.review(MUTATE, fixture).await;
        if done(&answer) || Instant::now() > deadline {
            return answer;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn reloads(metrics: &str, file: &str, result: &str) -> Option<f64> {
    metric(
        metrics,
        "archgate_config_reloads_total",
        &[("file", file), ("result", result)],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_edit_is_applied_to_new_reviews_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let policy = write_file(dir.path(), "policy.toml", POLICY);
    let platforms = write_file(dir.path(), "platforms.toml", PLATFORMS);
    let server = Server::start_policy(&policy, &platforms, dir);
    let mut client = server.client(Proto::H2).await;
    let before = client.review(MUTATE, SHOP_POD).await;
    assert!(patched(&before), "shop's pod is placed at first: {before}");

    std::fs::write(&policy, policy_shop_off()).unwrap();
    let after = answer_until(&mut client, SHOP_POD, RELOAD_WITHIN, |a| !patched(a)).await;
    assert!(
        !patched(&after),
        "the rule turning shop off is not applied: {after}\n{}",
        server.output()
    );
    assert_eq!(after["response"]["allowed"], true);
    let metrics = server.metrics().await;
    assert_eq!(reloads(&metrics, "policy", "ok"), Some(1.0), "{metrics}");
    assert_eq!(reloads(&metrics, "policy", "error"), None, "{metrics}");
    let log = server.output_containing("configuration file reloaded");
    assert!(log.contains("configuration file reloaded"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_policy_is_kept_out_and_named_then_its_fix_is_applied() {
    let dir = tempfile::tempdir().unwrap();
    let policy = write_file(dir.path(), "policy.toml", POLICY);
    let platforms = write_file(dir.path(), "platforms.toml", PLATFORMS);
    let server = Server::start_policy(&policy, &platforms, dir);
    let mut client = server.client(Proto::H2).await;

    std::fs::write(&policy, BROKEN_POLICY).unwrap();
    let log = server.output_containing("configuration file not reloaded");
    let line = log
        .lines()
        .find(|l| l.contains("configuration file not reloaded"))
        .unwrap_or_else(|| panic!("no error logged for the broken policy:\n{log}"));
    let entry: Value = serde_json::from_str(line).unwrap();
    assert_eq!(entry["level"], "ERROR", "{line}");
    assert_eq!(entry["file"], "policy", "{line}");
    let error = entry["error"].as_str().unwrap();
    assert!(
        error.contains(&policy.display().to_string()) && error.contains("line 5, column"),
        "the error must name the file and line:column: {error}"
    );
    // The policy in service is still the first one.
    let answer = client.review(MUTATE, SHOP_POD).await;
    assert!(
        patched(&answer),
        "the broken policy changed answers: {answer}"
    );
    let metrics = server.metrics().await;
    assert_eq!(reloads(&metrics, "policy", "error"), Some(1.0), "{metrics}");
    assert_eq!(reloads(&metrics, "policy", "ok"), None, "{metrics}");

    std::fs::write(&policy, policy_shop_off()).unwrap();
    let fixed = answer_until(&mut client, SHOP_POD, RELOAD_WITHIN, |a| !patched(a)).await;
    assert!(!patched(&fixed), "the fixed policy is not applied: {fixed}");
    let metrics = server.metrics().await;
    assert_eq!(reloads(&metrics, "policy", "ok"), Some(1.0), "{metrics}");
    assert_eq!(reloads(&metrics, "policy", "error"), Some(1.0), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_platforms_edit_makes_an_unknown_image_known() {
    let dir = tempfile::tempdir().unwrap();
    let policy = write_file(dir.path(), "policy.toml", POLICY);
    let platforms = write_file(dir.path(), "platforms.toml", PLATFORMS);
    let server = Server::start_policy(&policy, &platforms, dir);
    let mut client = server.client(Proto::H2).await;
    let before = client.review(MUTATE, UNKNOWN_IMAGE_POD).await;
    assert_eq!(
        architectures(&before),
        "amd64,arm64",
        "an unknown image restricts nothing: {before}"
    );

    std::fs::write(&platforms, platforms_with_busybox()).unwrap();
    let after = answer_until(&mut client, UNKNOWN_IMAGE_POD, RELOAD_WITHIN, |a| {
        architectures(a) == "arm64"
    })
    .await;
    assert_eq!(
        architectures(&after),
        "arm64",
        "the reloaded platforms are not used: {after}\n{}",
        server.output()
    );
    let patch = decoded_patch(&after).unwrap().to_string();
    assert!(
        patch.contains("kubernetes.io/arch") && patch.contains("arm64"),
        "placed on arm64: {patch}"
    );
    assert!(after["response"].get("warnings").is_none(), "{after}");
    let metrics = server.metrics().await;
    assert_eq!(reloads(&metrics, "platforms", "ok"), Some(1.0), "{metrics}");
    assert_eq!(reloads(&metrics, "policy", "ok"), None, "{metrics}");
}

/// Writes `files` into `dir/<data>` and points `dir/..data` at it atomically, the way the
/// kubelet updates a ConfigMap volume.
fn swap_configmap_data(dir: &Path, data: &str, files: &[(&str, &str)]) {
    let target = dir.join(data);
    std::fs::create_dir(&target).unwrap();
    for (name, text) in files {
        std::fs::write(target.join(name), text).unwrap();
    }
    let tmp = dir.join("..data_tmp");
    std::os::unix::fs::symlink(data, &tmp).unwrap();
    std::fs::rename(&tmp, dir.join("..data")).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configmap_data_symlink_swap_is_seen() {
    let dir = tempfile::tempdir().unwrap();
    let mount = dir.path().join("config");
    std::fs::create_dir(&mount).unwrap();
    swap_configmap_data(
        &mount,
        "..2026_01_01_00_00_00.1",
        &[("policy.toml", POLICY), ("platforms.toml", PLATFORMS)],
    );
    let link = |name: &str| -> PathBuf {
        let path = mount.join(name);
        std::os::unix::fs::symlink(format!("..data/{name}"), &path).unwrap();
        path
    };
    let (policy, platforms) = (link("policy.toml"), link("platforms.toml"));
    let server = Server::start_policy(&policy, &platforms, dir);
    let mut client = server.client(Proto::H1).await;
    let before = client.review(MUTATE, SHOP_POD).await;
    assert!(patched(&before), "shop's pod is placed at first: {before}");

    let shop_off = policy_shop_off();
    swap_configmap_data(
        &mount,
        "..2026_01_01_00_05_00.2",
        &[("policy.toml", &shop_off), ("platforms.toml", PLATFORMS)],
    );
    let after = answer_until(&mut client, SHOP_POD, RELOAD_WITHIN, |a| !patched(a)).await;
    assert!(
        !patched(&after),
        "the swapped policy is not applied: {after}\n{}",
        server.output()
    );
    let metrics = server.metrics().await;
    assert_eq!(reloads(&metrics, "policy", "ok"), Some(1.0), "{metrics}");
    // The platforms file came along with the same bytes: nothing to reload, nothing counted.
    assert_eq!(reloads(&metrics, "platforms", "ok"), None, "{metrics}");
}
