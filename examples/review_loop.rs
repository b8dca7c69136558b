//! Runs `Admission::review` on one review body N times, for counting instructions with callgrind:
//! unlike wall time on a shared VM, instruction counts repeat exactly, so a change of a few
//! percent shows. benches/instructions.sh runs it twice (N and N + 1000) and prints the
//! difference per review, which leaves out start-up and policy loading.
//!
//! `cargo run --release --example review_loop -- N [BODY]` (BODY defaults to the byte-exact
//! ReplicaSet pod review); prints the total response bytes so the work cannot be optimised away.

use archgate::admission::Admission;
use archgate::platforms::StaticPlatforms;
use archgate::policy::{Policy, Stage};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

// The server's allocator: allocation is part of what is counted.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let runs: usize = args.next().unwrap_or_else(|| "1000".into()).parse()?;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let body_path = args.next().map_or_else(
        || {
            root.join(
                "tests/fixtures/admission-reviews/raw/013-mutate-Pod-CREATE-real.request.json",
            )
        },
        Into::into,
    );
    let body = std::fs::read(&body_path)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", body_path.display()))?;
    let policy = Policy::load(&root.join("policies/homelab.toml"))?;
    let platforms = StaticPlatforms::load(&root.join("policies/homelab-platforms.toml"))?;
    let admission = Admission::new(Arc::new(policy), Arc::new(platforms));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()?;
    let deadline = Instant::now() + Duration::from_secs(3600);
    let mut bytes = 0;
    for _ in 0..runs {
        bytes += runtime
            .block_on(admission.review(&body, Stage::Mutate, deadline))?
            .body
            .len();
    }
    println!("{bytes}");
    Ok(())
}
