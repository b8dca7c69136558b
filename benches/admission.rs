//! The in-process admission path, bytes in -> bytes out, with the static platforms source:
//! a one-container pod from a real API server capture, and a generated 20-container pod with
//! init containers and GPU limits. Run: `cargo bench --bench admission`.

use archgate::admission::Admission;
use archgate::platforms::StaticPlatforms;
use archgate::policy::{Policy, Stage};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use serde_json::{json, Value};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

// The allocator the archgate binary runs with, so these figures are the server's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn admission() -> Admission {
    let policy =
        Policy::load(&root().join("policies/homelab.toml")).unwrap_or_else(|e| panic!("{e}"));
    let platforms = StaticPlatforms::load(&root().join("policies/homelab-platforms.toml"))
        .unwrap_or_else(|e| panic!("{e}"));
    Admission::new(Arc::new(policy), Arc::new(platforms))
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(root().join("tests/fixtures/admission-reviews").join(name))
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// A review of a pod with 16 app and 4 init containers, half of them asking for an NVIDIA GPU.
fn twenty_containers() -> Vec<u8> {
    let base: Value =
        serde_json::from_slice(&fixture("pod-create-gpu-limit-mutating.json")).unwrap_or_default();
    let images = [
        "registry.example/shop/web:2.3.1",
        "registry.example/ml/cuda-sample:12.2",
        "registry.example/db/postgres:15.2",
        "nginx:1.27",
    ];
    let container = |i: usize| {
        let mut c = base["request"]["object"]["spec"]["containers"][0].clone();
        c["name"] = json!(format!("c{i}"));
        c["image"] = json!(images[i % images.len()]);
        if i % 2 == 1 {
            c["resources"] = json!({});
        }
        c
    };
    let mut review = base.clone();
    let spec = &mut review["request"]["object"]["spec"];
    spec["containers"] = Value::Array((0..16).map(container).collect());
    spec["initContainers"] = Value::Array((16..20).map(container).collect());
    serde_json::to_vec(&review).unwrap_or_default()
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let admission = admission();
    let cases = [
        ("pod_1_container", fixture("pod-create.json")),
        (
            "pod_from_replicaset",
            fixture("pod-create-from-replicaset-mutating.json"),
        ),
        (
            "pod_from_daemonset",
            fixture("pod-create-from-daemonset-durnan-mutating.json"),
        ),
        ("pod_20_containers_gpu", twenty_containers()),
    ];
    let mut group = c.benchmark_group("mutate");
    for (name, body) in &cases {
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_function(*name, |b| {
            b.iter(|| {
                let deadline = Instant::now() + Duration::from_secs(10);
                let answer = rt.block_on(admission.review(body, Stage::Mutate, deadline));
                answer.map(|a| a.body.len()).unwrap_or_default()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
