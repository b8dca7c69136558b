//! The misplaced-pods store alone with 10,000 bound pods: how much it holds and how long a full
//! judgement takes (BENCHMARKS.md, "Misplaced pods: memory").
//! `cargo run --release --example misplaced_pods [PODS]`

use archgate::audit::live::{BoundPod, MisplacedPods};
use archgate::image::Platform;
use archgate::inventory::node::node_from_value;
use archgate::inventory::Inventory;
use archgate::platforms::{ImagePlatforms, PullContext};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

/// This process's resident set, in KiB (Linux).
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let pods: usize = std::env::args().nth(1).map_or(Ok(10_000), |a| a.parse())?;
    let nodes = [
        "durnan", "elaith", "jarlaxle", "mirt", "volo", "regis", "wulfgar",
    ];
    let inventory = Inventory::from_nodes(
        nodes
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let arch = if i < 5 { "arm64" } else { "amd64" };
                node_from_value(serde_json::json!({"metadata": {"name": n, "labels":
                    {"kubernetes.io/arch": arch, "kubernetes.io/os": "linux"}}}))
            })
            .collect::<Result<_, _>>()?,
    );
    let image = |i: usize| format!("registry.example/team-{}/app-{i}:1.{i}.0", i % 50);
    let mut known = HashMap::new();
    for i in 0..200 {
        let mut platforms = vec![Platform::new("linux", "amd64", None)];
        if i % 10 != 0 {
            platforms.push(Platform::new("linux", "arm64", None));
        }
        known.insert(image(i), Arc::new(ImagePlatforms::new(platforms)));
    }
    let before = rss_kib();
    let mut store = MisplacedPods::default();
    for i in 0..pods {
        let namespace = format!("team-{}", i % 200 % 50);
        store.upsert(BoundPod {
            name: format!("app-{}-7d9f8c6b5-{i:05}", i % 200),
            uid: Some(format!("5b0c3e4a-1f2d-4c6b-8a9e-{i:012}")),
            node: nodes[i % nodes.len()].to_string(),
            images: vec![image(i % 200)],
            pull: PullContext {
                namespace: namespace.clone(),
                image_pull_secrets: Vec::new(),
                service_account: "default".into(),
            },
            namespace,
            succeeded: false,
        });
    }
    let started = Instant::now();
    let became = store.judge(&inventory, &known, false, None);
    let judged = started.elapsed();
    let after = rss_kib();
    println!(
        "{pods} pods held: RSS +{} KiB ({} bytes a pod); first judgement {judged:?}, {} misplaced",
        after.saturating_sub(before),
        after.saturating_sub(before) * 1024 / pods.max(1) as u64,
        became.len()
    );
    let started = Instant::now();
    store.judge(&inventory, &known, false, None);
    println!("judging all {pods} again: {:?}", started.elapsed());
    Ok(())
}
