//! The soak's load and its watch, driven by benches/soak.sh (which starts the registry, pushes
//! the images, starts `archgate serve` and swaps its files every minute).
//!
//! ```text
//! soak --url https://127.0.0.1:PORT --ca CA [--ca CA2] --pid PID --registry HOST
//!      [--images 10000] [--rate 100] [--seconds 600] [--sample 10] [--warmup 60]
//!      [--missing-every 10] [--rss-growth-mib 32]
//! ```
//!
//! Sends `--rate` admission reviews per second at a fixed pace over HTTP/2: most name one of a
//! hot set of 1,000 images, every fifth the next of all `--images` images in turn (`bench/img:iK`,
//! pushed by `registry_bench push`; the cache is smaller than the set, so it evicts and fetches
//! all along), and every `--missing-every`th an image the registry does not have (negative
//! cache entries). Every
//! `--sample` seconds it prints RSS, open file descriptors, threads, reviews in flight, p50/p99
//! latency of the window, and the requests that failed. It fails when any request failed (not
//! 200, not allowed, or no answer) or when RSS grew more than `--rss-growth-mib` past its size at
//! the end of the warm-up.

use anyhow::{anyhow, bail, Context};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const REPO: &str = "bench/img";
/// Images most reviews name: the working set a cluster's pods share.
const HOT: u64 = 1000;
const PLACEHOLDER: &str = "\"image\":\"registry.invalid/busybox:1.36\"";

struct Args {
    url: String,
    cas: Vec<PathBuf>,
    pid: String,
    registry: String,
    images: u64,
    rate: u64,
    seconds: u64,
    sample: u64,
    warmup: u64,
    missing_every: u64,
    rss_growth_mib: u64,
}

fn parse_args() -> anyhow::Result<Args> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let all = |name: &str| -> Vec<String> {
        args.windows(2)
            .filter(|w| w[0] == name)
            .map(|w| w[1].clone())
            .collect()
    };
    let one = |name: &str| all(name).pop();
    let required = |name: &str| one(name).ok_or_else(|| anyhow!("{name} is required"));
    let number = |name: &str, default: u64| -> anyhow::Result<u64> {
        one(name).map_or(Ok(default), |v| {
            v.parse().with_context(|| format!("{name} {v}"))
        })
    };
    Ok(Args {
        url: required("--url")?,
        cas: all("--ca").into_iter().map(PathBuf::from).collect(),
        pid: required("--pid")?,
        registry: required("--registry")?,
        images: number("--images", 10_000)?.max(1),
        rate: number("--rate", 100)?.max(1),
        seconds: number("--seconds", 600)?,
        sample: number("--sample", 10)?.max(1),
        warmup: number("--warmup", 60)?,
        missing_every: number("--missing-every", 10)?.max(2),
        rss_growth_mib: number("--rss-growth-mib", 32)?,
    })
}

/// A client that trusts every given CA: the certificate is swapped between two sets.
fn client(cas: &[PathBuf]) -> anyhow::Result<reqwest::Client> {
    let mut roots = rustls::RootCertStore::empty();
    for ca in cas {
        let pem = std::fs::read(ca).with_context(|| format!("{}", ca.display()))?;
        for cert in rustls_pemfile::certs(&mut &pem[..]) {
            roots.add(cert?)?;
        }
    }
    let mut tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    tls.alpn_protocols = vec![b"h2".to_vec()];
    Ok(reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .http2_prior_knowledge()
        .timeout(Duration::from_secs(15))
        .build()?)
}

fn proc_status(pid: &str, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn open_fds(pid: &str) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count)
}

async fn metric(http: &reqwest::Client, url: &str, name: &str) -> f64 {
    let text = match http.get(format!("{url}/metrics")).send().await {
        Ok(r) => r.text().await.unwrap_or_default(),
        Err(_) => return f64::NAN,
    };
    // From 0.0: an empty f64 sum is -0.0.
    text.lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .fold(0.0, |a, b| a + b)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len().saturating_sub(1)) as f64 * p).round() as usize;
    sorted.get(i).copied().unwrap_or_default()
}

/// What the load has seen since the last sample.
#[derive(Default)]
struct Window {
    latencies: Vec<Duration>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let template = std::fs::read_to_string("tests/fixtures/admission-reviews/pod-create.json")?;
    if !template.contains(PLACEHOLDER) {
        bail!("the fixture no longer names {PLACEHOLDER}");
    }
    let http = client(&args.cas)?;
    let window = Arc::new(Mutex::new(Window::default()));
    let failed = Arc::new(AtomicU64::new(0));
    let sent = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let first_failure = Arc::new(Mutex::new(None::<String>));

    let load = {
        let (http, window, failed, sent) =
            (http.clone(), window.clone(), failed.clone(), sent.clone());
        let done = done.clone();
        let first_failure = first_failure.clone();
        let url = format!("{}/mutate?timeout=10s", args.url);
        let (registry, images, missing_every) =
            (args.registry.clone(), args.images, args.missing_every);
        let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / args.rate as f64));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        async move {
            let mut k: u64 = 0;
            loop {
                tick.tick().await;
                k += 1;
                // Most pods come from a hot set the cache keeps; every fifth names the next of
                // all the images, so the cache (smaller than the set) keeps evicting and
                // fetching; every `missing_every`th names an image the registry lacks.
                let image = if k % missing_every == 0 {
                    format!("{registry}/{REPO}:missing{}", k % 997)
                } else if k % 5 == 1 {
                    format!("{registry}/{REPO}:i{}", (k / 5) % images)
                } else {
                    format!("{registry}/{REPO}:i{}", k % HOT.min(images))
                };
                let body = template.replace(PLACEHOLDER, &format!("\"image\":\"{image}\""));
                let (http, url, window, failed) =
                    (http.clone(), url.clone(), window.clone(), failed.clone());
                let (first_failure, done) = (first_failure.clone(), done.clone());
                sent.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(async move {
                    let started = Instant::now();
                    let outcome = async {
                        let resp = http
                            .post(&url)
                            .header("content-type", "application/json")
                            .body(body)
                            .send()
                            .await?;
                        let status = resp.status();
                        let review: serde_json::Value =
                            serde_json::from_slice(&resp.bytes().await?)?;
                        if !status.is_success() || review["response"]["allowed"] != true {
                            bail!("{status}: {review}");
                        }
                        Ok(())
                    }
                    .await;
                    let took = started.elapsed();
                    done.fetch_add(1, Ordering::Relaxed);
                    match outcome {
                        Ok(()) => window
                            .lock()
                            .map(|mut w| w.latencies.push(took))
                            .unwrap_or(()),
                        Err(e) => {
                            failed.fetch_add(1, Ordering::Relaxed);
                            if let Ok(mut f) = first_failure.lock() {
                                f.get_or_insert_with(|| format!("{e:#}"));
                            }
                        }
                    }
                });
            }
        }
    };
    let load = tokio::spawn(load);

    println!("| t (s) | RSS (MiB) | fds | threads | in flight | reloads | p50 (ms) | p99 (ms) | sent | failed |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let started = Instant::now();
    let mut baseline: Option<u64> = None;
    let mut peak_after_warmup = 0;
    let mut samples = tokio::time::interval(Duration::from_secs(args.sample));
    samples.tick().await;
    while started.elapsed() < Duration::from_secs(args.seconds) {
        samples.tick().await;
        let mut lat =
            std::mem::take(&mut window.lock().map_err(|_| anyhow!("poisoned"))?.latencies);
        lat.sort_unstable();
        let rss = proc_status(&args.pid, "VmRSS:");
        if rss == 0 {
            bail!("archgate serve (pid {}) is gone", args.pid);
        }
        let t = started.elapsed().as_secs();
        if t >= args.warmup {
            baseline.get_or_insert(rss);
            peak_after_warmup = peak_after_warmup.max(rss);
        }
        println!(
            "| {t} | {:.1} | {} | {} | {} | {} | {:.2} | {:.2} | {} | {} |",
            rss as f64 / 1024.0,
            open_fds(&args.pid),
            proc_status(&args.pid, "Threads:"),
            metric(&http, &args.url, "archgate_admission_in_flight").await,
            metric(&http, &args.url, "archgate_config_reloads_total").await
                + metric(&http, &args.url, "archgate_tls_reloads_total").await,
            percentile(&lat, 0.5).as_secs_f64() * 1e3,
            percentile(&lat, 0.99).as_secs_f64() * 1e3,
            sent.load(Ordering::Relaxed),
            failed.load(Ordering::Relaxed),
        );
    }
    load.abort();
    // The last requests finish (each has a 15 s limit) before the verdict.
    let answered = || done.load(Ordering::Relaxed) >= sent.load(Ordering::Relaxed);
    let deadline = Instant::now() + Duration::from_secs(16);
    while !answered() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let growth = peak_after_warmup.saturating_sub(baseline.unwrap_or(peak_after_warmup));
    println!(
        "\n{} reviews sent, {} failed; RSS after warm-up {:.1} MiB, peak {:.1} MiB (+{:.1} MiB, bound {} MiB)",
        sent.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed),
        baseline.unwrap_or(0) as f64 / 1024.0,
        peak_after_warmup as f64 / 1024.0,
        growth as f64 / 1024.0,
        args.rss_growth_mib
    );
    if failed.load(Ordering::Relaxed) > 0 {
        let first = first_failure.lock().map(|f| f.clone()).unwrap_or_default();
        bail!("requests failed; the first: {}", first.unwrap_or_default());
    }
    if growth > args.rss_growth_mib * 1024 {
        bail!("RSS grew {:.1} MiB after warm-up", growth as f64 / 1024.0);
    }
    Ok(())
}
