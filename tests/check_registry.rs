//! `archgate check` with the registry options `serve` takes (`--registry-config`,
//! `--docker-config`), against Docker's reference registry (Debian `docker-registry`) on loopback:
//! the image's platforms come from its registry, the static platforms file still wins for the
//! images it lists, and a registry that is down leaves the image unknown (a warning, exit 0).
#![allow(clippy::unwrap_used)]

mod common;

use common::registry::{docker_config, free_port, Auth, Registry, OCI_MANIFEST};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// How long one `archgate check` run may take (a lookup times out after 3 s by default).
const RUN_TIMEOUT: Duration = Duration::from_secs(30);

fn insecure(host: &str) -> String {
    format!("[registries.\"{host}\"]\ninsecure = true\n")
}

/// A single-container pod running `image`, in the default namespace.
fn pod_manifest(dir: &Path, image: &str) -> PathBuf {
    let pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "report", "namespace": "shop"},
        "spec": {"containers": [{"name": "report", "image": image}]},
    });
    common::write_file(dir, "pod.json", &pod.to_string())
}

/// Runs the built binary with `args` (killed after [`RUN_TIMEOUT`]); returns (exit code, stdout,
/// stderr).
fn archgate(args: &[&Path]) -> (i32, String, String) {
    common::run_bounded(args, RUN_TIMEOUT)
}

/// `archgate check --policy policies/homelab.toml [--platforms P] --registry-config R
/// --docker-config D -o json POD`, off the async runtime; returns (exit code, the one object's
/// report, stderr).
async fn check(
    platforms: Option<&Path>,
    registry_config: &Path,
    docker_config: &Path,
    pod: &Path,
) -> (i32, Value, String) {
    let mut args: Vec<PathBuf> = vec!["check".into(), "--policy".into(), common::homelab_policy()];
    if let Some(p) = platforms {
        args.extend(["--platforms".into(), p.to_path_buf()]);
    }
    args.extend([
        "--registry-config".into(),
        registry_config.to_path_buf(),
        "--docker-config".into(),
        docker_config.to_path_buf(),
        "-o".into(),
        "json".into(),
        pod.to_path_buf(),
    ]);
    let (code, stdout, stderr) = tokio::task::spawn_blocking(move || {
        let args: Vec<&Path> = args.iter().map(PathBuf::as_path).collect();
        archgate(&args)
    })
    .await
    .unwrap();
    let report: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("{e}: stdout {stdout:?}, stderr {stderr:?}"));
    let objects = report["objects"].as_array().unwrap();
    assert_eq!(objects.len(), 1, "{report}");
    (code, objects[0].clone(), stderr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_places_a_pod_by_what_its_registry_says() {
    let reg = Registry::start(
        false,
        Auth::Htpasswd(vec![("ci".into(), "Check-Secret-Pw".into())]),
    );
    reg.push_image("shop/report", "0.9.0", "linux/arm64", OCI_MANIFEST)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let config = common::write_file(dir.path(), "registries.toml", &insecure(&reg.host));
    let docker = common::write_file(
        dir.path(),
        "config.json",
        &docker_config(&reg.host, "ci", "Check-Secret-Pw"),
    );
    let image = format!("{}/shop/report:0.9.0", reg.host);
    let pod = pod_manifest(dir.path(), &image);

    let (code, object, stderr) = check(None, &config, &docker, &pod).await;
    assert_eq!(code, 0, "{object}\n{stderr}");
    assert_eq!(object["decision"], "patch", "{object}\n{}", reg.log());
    assert_eq!(object["architectures"], json!(["arm64"]), "{object}");
    assert_eq!(object["warnings"], json!([]), "{object}");
    assert!(
        reg.manifest_requests("HEAD", "shop/report") + reg.manifest_requests("GET", "shop/report")
            >= 1,
        "the registry was asked: {}",
        reg.log()
    );
    assert!(
        !stderr.contains("Check-Secret-Pw"),
        "a credential leaked: {stderr}"
    );

    // The static platforms file wins for the images it lists (Layered, as in `serve`).
    let platforms = common::write_file(
        dir.path(),
        "platforms.toml",
        &format!("[images]\n\"{image}\" = [\"linux/amd64\"]\n"),
    );
    let (code, object, stderr) = check(Some(&platforms), &config, &docker, &pod).await;
    assert_eq!(code, 0, "{object}\n{stderr}");
    assert_eq!(object["decision"], "patch", "{object}");
    assert_eq!(object["architectures"], json!(["amd64"]), "{object}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_with_a_registry_that_is_down_warns_the_image_is_unknown() {
    // Nothing listens on this port: every request is refused.
    let host = format!("127.0.0.1:{}", free_port());
    let dir = tempfile::tempdir().unwrap();
    let config = common::write_file(dir.path(), "registries.toml", &insecure(&host));
    let docker = common::write_file(
        dir.path(),
        "config.json",
        &docker_config(&host, "ci", "Down-Secret-Pw"),
    );
    let image = format!("{host}/shop/report:0.9.0");
    let pod = pod_manifest(dir.path(), &image);
    let started = Instant::now();
    let (code, object, stderr) = check(None, &config, &docker, &pod).await;
    // The policy's unknown_images = "warn": a warning, never a denial.
    assert_eq!(code, 0, "{object}\n{stderr}");
    assert_ne!(object["decision"], "deny", "{object}");
    let warnings = object["warnings"].as_array().unwrap();
    assert!(
        warnings.iter().any(|w| {
            let w = w.as_str().unwrap_or_default();
            w.contains(&format!("platforms of image {image}"))
                && w.contains("could not be looked up")
        }),
        "the unknown-image warning: {object}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "a refused connection fails fast: {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ca_in_the_system_store_is_trusted_without_a_ca_file() {
    let reg = Registry::start(true, Auth::None);
    reg.push_image("team/app", "1", "linux/arm64", OCI_MANIFEST)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let pod = pod_manifest(dir.path(), &format!("{}/team/app:1", reg.host));
    // Named, so the guard lets archgate ask a loopback address; no ca_file.
    let config = common::write_file(
        dir.path(),
        "registries.toml",
        &format!("[registries.\"{}\"]\n", reg.host),
    );
    let ca = reg.ca.clone().unwrap();
    let run = |cert_file: &Path| {
        let out = Command::new(common::bin())
            .args(["check", "--policy"])
            .arg(common::homelab_policy())
            .arg("--registry-config")
            .arg(&config)
            .arg(&pod)
            .env("SSL_CERT_FILE", cert_file)
            .env_remove("SSL_CERT_DIR")
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // The home CA installed in the system store (here: SSL_CERT_FILE) is trusted.
    let trusted = run(&ca);
    assert!(
        trusted.starts_with("patch  Pod shop/report  [arm64]"),
        "{trusted}"
    );
    // A store without it: the registry's certificate is not trusted, and the image is unknown.
    let empty = common::write_file(dir.path(), "empty.pem", "");
    let untrusted = run(&empty);
    assert!(untrusted.contains("could not be looked up"), "{untrusted}");
}
