//! Writes the admission path's log line N times through archgate's JSON logging (the
//! subscriber, formatter and batching sink `archgate serve` installs), for instruction counts:
//!
//! ```text
//! cargo build --release --example log_loop
//! valgrind --tool=callgrind target/release/examples/log_loop 1000 >/dev/null
//! valgrind --tool=callgrind target/release/examples/log_loop 3000 >/dev/null
//! ```
//!
//! The difference of the two totals / 2000 is the cost of one line.

fn main() -> anyhow::Result<()> {
    let n: u64 = match std::env::args().nth(1) {
        Some(arg) => arg.parse()?,
        None => 1000,
    };
    let _flush = archgate::logging::init(archgate::logging::LogFormat::Json)?;
    for i in 0..n {
        // The fields and values src/server/routes.rs logs for the byte-exact ReplicaSet pod.
        tracing::info!(
            endpoint = "mutate",
            uid = "3d37cdfe-8fe9-4c76-8fc2-30e1ab2047d4",
            namespace = "shop",
            pod = "web-68fd9d67f4-<generated>",
            kind = "Pod",
            operation = "CREATE",
            dry_run = false,
            decision = "patch",
            rule = "",
            architectures = "amd64",
            reason = "",
            elapsed_us = i,
            "admission review"
        );
    }
    Ok(())
}
