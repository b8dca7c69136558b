//! The seed cluster with workloads for `archgate audit`: the stateful fake API server holding
//! tests/fixtures/cluster/audit-objects.json, and Docker's registry on loopback holding their
//! images (all but `tools/scratch`, which is missing on purpose).
#![allow(clippy::unwrap_used, dead_code)]

use super::kubeapi::KubeApi;
use super::registry::{Registry, OCI_INDEX, OCI_MANIFEST};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tempfile::TempDir;

/// How long one `archgate audit` run may take.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// The images of the fixture and their platforms.
pub const IMAGES: [(&str, &str, &[&str]); 7] = [
    ("shop/web", "2.3.1", &["linux/amd64", "linux/arm64"]),
    ("shop/report", "0.9.0", &["linux/amd64"]),
    (
        "monitoring/node-exporter",
        "1.5.0",
        &["linux/amd64", "linux/arm64"],
    ),
    ("team/edge-agent", "0.3.1", &["linux/arm64"]),
    ("edge/sensor-ui", "1.0", &["linux/amd64"]),
    ("shop/cleanup", "1.0.3", &["linux/amd64", "linux/arm64"]),
    (
        "k8s/kube-apiserver",
        "v1.30.2",
        &["linux/amd64", "linux/arm64"],
    ),
];

/// A running seed cluster and registry, and a directory for option files.
pub struct Cluster {
    pub api: KubeApi,
    pub registry: Option<Registry>,
    /// `127.0.0.1:PORT`, as the fixture's images name the registry.
    pub host: String,
    pub dir: TempDir,
    /// A registry configuration that lets archgate ask the loopback registry over plain HTTP.
    pub registry_config: PathBuf,
}

impl Cluster {
    /// Starts both and loads the fixture, its images naming this registry.
    pub async fn start() -> Cluster {
        let registry = Registry::plain();
        for (repo, tag, platforms) in IMAGES {
            if let [only] = platforms {
                registry.push_image(repo, tag, only, OCI_MANIFEST).await;
            } else {
                let mut entries = Vec::new();
                for p in platforms {
                    entries.push(registry.child_descriptor(repo, p, true).await);
                }
                registry.push_index(repo, tag, OCI_INDEX, entries).await;
            }
        }
        let host = registry.host.clone();
        let api = KubeApi::start();
        api.create_all(&objects(&host));
        let dir = tempfile::tempdir().unwrap();
        let registry_config = super::write_file(
            dir.path(),
            "registries.toml",
            &format!("[registries.\"{host}\"]\ninsecure = true\n"),
        );
        Cluster {
            api,
            registry: Some(registry),
            host,
            dir,
            registry_config,
        }
    }

    /// `archgate audit --kubeconfig K --policy homelab --registry-config R ARGS`, off the async
    /// runtime; (exit code, stdout, stderr).
    pub async fn audit(&self, args: &[&str]) -> (i32, String, String) {
        let mut all: Vec<String> = vec![
            "audit".into(),
            "--kubeconfig".into(),
            self.api.kubeconfig.display().to_string(),
            "--policy".into(),
            super::homelab_policy().display().to_string(),
            "--registry-config".into(),
            self.registry_config.display().to_string(),
        ];
        all.extend(args.iter().map(|a| a.to_string()));
        tokio::task::spawn_blocking(move || run(&all))
            .await
            .unwrap()
    }
}

/// The fixture's objects, `REGISTRY` replaced by `host`.
pub fn objects(host: &str) -> Value {
    let path = super::manifest_path("tests/fixtures/cluster/audit-objects.json");
    let text = std::fs::read_to_string(path).unwrap();
    serde_json::from_str(&text.replace("REGISTRY", host)).unwrap()
}

/// Runs the built binary with `args` (killed after [`RUN_TIMEOUT`]).
pub fn run(args: &[String]) -> (i32, String, String) {
    super::run_bounded(args, RUN_TIMEOUT)
}

/// `path` as a string, for argument lists.
pub fn arg(path: &Path) -> String {
    path.display().to_string()
}
