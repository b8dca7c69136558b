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

#[path = "../benches/support/review_line.rs"]
mod review_line;

fn main() -> anyhow::Result<()> {
    let n: u64 = match std::env::args().nth(1) {
        Some(arg) => arg.parse()?,
        None => 1000,
    };
    let _flush = archgate::logging::init(archgate::logging::LogFormat::Json)?;
    for i in 0..n {
        review_line::log_review_line(i);
    }
    Ok(())
}
