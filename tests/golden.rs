//! The patched pods, byte for byte: every captured pod review's answer at /mutate, compared with
//! the reviewed golden file in tests/fixtures/golden/. Performance work must keep these identical;
//! a change in placement shows up here as a diff to review (regenerate with
//! `ARCHGATE_BLESS=1 cargo test --test golden`).
#![allow(clippy::unwrap_used)]

#[path = "common/fixtures.rs"]
mod fixtures;

use archgate::admission::Admission;
use archgate::platforms::StaticPlatforms;
use archgate::policy::{Policy, Stage};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[tokio::test]
async fn every_captured_pods_patch_is_byte_for_byte_the_reviewed_one() {
    let policy = Policy::load(&root().join("policies/homelab.toml")).unwrap();
    let platforms = StaticPlatforms::load(&root().join("policies/homelab-platforms.toml")).unwrap();
    let admission = Admission::new(Arc::new(policy), Arc::new(platforms));
    let bless = std::env::var_os("ARCHGATE_BLESS").is_some();
    let captured = fixtures::captured_reviews(|n| n.starts_with("pod-create"));
    assert!(captured.len() >= 20, "the captured pod reviews are missing");
    for file in captured {
        let name = file.trim_end_matches(".json").to_string();
        let body = std::fs::read(fixtures::fixture_path(&file)).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let answer = admission
            .review(&body, Stage::Mutate, deadline)
            .await
            .unwrap();
        let review: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
        let patch = match fixtures::decoded_patch_bytes(&review) {
            Some(bytes) => String::from_utf8(bytes).unwrap(),
            None => "(no patch)".to_string(),
        };
        let golden = root()
            .join("tests/fixtures/golden")
            .join(format!("{name}.patch"));
        if bless {
            std::fs::write(&golden, format!("{patch}\n")).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&golden).unwrap_or_else(|_| {
            panic!(
                "{name}: no golden file {}; bless it after review",
                golden.display()
            )
        });
        assert_eq!(format!("{patch}\n"), want, "{name}: the patch changed");
    }
}
