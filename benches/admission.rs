//! The in-process admission path, bytes in -> bytes out, with the static platforms source:
//! a one-container pod from a real API server capture, and a generated 20-container pod with
//! init containers and GPU limits. Run: `cargo bench --bench admission`.
//!
//! `mutate/*` is the whole path; `stages/*` takes it apart for the ReplicaSet pod and the
//! 20-container pod: decoding the review, the decision alone (warm lookups and the evaluator),
//! building the JSON Patch alone, and encoding the response (patch, base64, envelope).
//! `log_line` is the JSON line every review logs, formatted and thrown away.

#[path = "../tests/common/fixtures.rs"]
mod fixtures;
#[path = "support/review_line.rs"]
mod review_line;

use archgate::admission::review::{self, ObjectIn};
use archgate::admission::{patch, respond, Admission};
use archgate::platforms::StaticPlatforms;
use archgate::pod::Pod;
use archgate::policy::{Policy, Stage, Verdict};
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
    std::fs::read(fixtures::fixture_path(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
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
            // The same review byte for byte as the API server sent it (compact JSON, 3.85 KB).
            "pod_from_replicaset_as_sent",
            fixture("raw/013-mutate-Pod-CREATE-real.request.json"),
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

    let mut group = c.benchmark_group("stages");
    for (name, body) in [&cases[1], &cases[4]] {
        let deadline = Instant::now() + Duration::from_secs(3600);
        let pod = decoded_pod(body);
        let namespace = "shop";
        // The policy and source as one review pins them; taken once, so `decide` measures the
        // decision alone, as before reloads existed.
        let now = admission.snapshot();
        let decision = rt.block_on(now.decide(&pod, namespace, Stage::Mutate, deadline));
        let Verdict::Patch(mutation) = &decision.verdict else {
            panic!("{name}: expected a patch, got {:?}", decision.verdict);
        };
        group.bench_function(format!("{name}/decode"), |b| {
            b.iter(|| review::decode(body).map(|r| r.request.is_some()))
        });
        group.bench_function(format!("{name}/decide"), |b| {
            b.iter(|| rt.block_on(now.decide(&pod, namespace, Stage::Mutate, deadline)))
        });
        group.bench_function(format!("{name}/patch"), |b| {
            b.iter(|| patch::build(&pod, mutation))
        });
        group.bench_function(format!("{name}/encode"), |b| {
            b.iter(|| respond("uid", &pod, &decision).to_review_json("admission.k8s.io/v1"))
        });
    }
    group.finish();

    // The line `archgate serve --log-format json` writes for every review, with the same fields,
    // formatted into a sink that discards it (the writer thread's share is not in this figure).
    let subscriber = tracing_subscriber::fmt()
        .event_format(archgate::logging::json_lines())
        .with_writer(std::io::sink)
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        c.bench_function("log_line", |b| b.iter(|| review_line::log_review_line(17)));
    });

    nodes(c, &rt, &cases[1].1);
}

/// The decision with 15,000 watched nodes (the seed's 14, repeated): a pod that fits (the scan
/// stops at the first node that does) and one no node can take (every node judged, the message
/// grouped).
fn nodes(c: &mut Criterion, rt: &tokio::runtime::Runtime, body: &[u8]) {
    let text = std::fs::read_to_string(root().join("tests/fixtures/nodes/seed-cluster.nodes.json"))
        .unwrap_or_default();
    let seed = archgate::inventory::node::nodes_from_value(
        serde_json::from_str(&text).unwrap_or_default(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let many: Vec<_> = (0..15_000)
        .map(|i| {
            let mut n = seed[i % seed.len()].clone();
            n.name = format!("{}-{i}", n.name);
            n
        })
        .collect();
    let admission = admission();
    admission
        .inventory
        .store(Arc::new(archgate::inventory::Inventory::from_nodes(many)));
    let now = admission.snapshot();
    let deadline = Instant::now() + Duration::from_secs(3600);
    let fits = decoded_pod(body);
    let mut nowhere = decoded_pod(body);
    nowhere.spec.node_selector = Some([("example.com/none".to_string(), "x".to_string())].into());
    let mut group = c.benchmark_group("nodes_15000");
    for (name, pod) in [("fits", &fits), ("fits_nowhere", &nowhere)] {
        let decision = rt.block_on(now.decide(pod, "shop", Stage::Mutate, deadline));
        assert_eq!(
            matches!(decision.verdict, Verdict::Deny(_)),
            name == "fits_nowhere",
            "{name}: {:?}",
            decision.verdict
        );
        group.bench_function(name, |b| {
            b.iter(|| rt.block_on(now.decide(pod, "shop", Stage::Mutate, deadline)))
        });
    }
    group.finish();
}

/// The pod of a review body, as the admission path decodes it.
fn decoded_pod(body: &[u8]) -> Pod {
    let review = review::decode(body).unwrap_or_else(|e| panic!("{e}"));
    match review.request.map(|r| r.object) {
        Some(ObjectIn::Pod(pod)) => *pod,
        other => panic!("not a pod review: {other:?}"),
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
