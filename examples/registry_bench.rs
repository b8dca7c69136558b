//! Registry path, memory and start-up figures for issue 6, driven by benches/registry.sh and
//! benches/startup.sh (which start the registry and the server and stop them on exit).
//!
//! ```text
//! registry_bench free-port
//! registry_bench push     --registry HOST --n N [--parallel 32]
//! registry_bench measure  --registry HOST --config REGISTRY_TOML --log REGISTRY_LOG --n N
//! registry_bench serve    --url https://127.0.0.1:PORT --ca CA --pid PID --registry HOST --n N
//! registry_bench startup  --bin ARCHGATE --ca CA --runs 20 -- SERVE_ARGS...
//! ```
//!
//! `push` puts N distinct single-platform images (`bench/img:iK`, distinct config blobs, one shared
//! layer), the images the other phases ask for first time (`cold*`, `burst-*`) and one OCI index
//! into a local `docker-registry`, through the distribution API. `measure` looks images up through
//! `RegistrySource`, the code `archgate serve` runs. `serve` sends admission reviews to a running
//! `archgate serve` and reads its RSS. `startup` times start to the first 200 from GET /readyz.

use anyhow::{anyhow, bail, ensure, Context};
use archgate::cli::registry_args::RegistryArgs;
use archgate::image::ImageRef;
use archgate::platforms::{Lookup, LookupRequest, PlatformSource, PullContext};
use archgate::registry::RegistrySource;
use futures_util::stream::{self, StreamExt};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

// The same allocator as the archgate binary, so RSS is measured with the same heap.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const REPO: &str = "bench/img";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// Images looked up once each on a fresh source for the cold figure.
const COLD: usize = 20;
/// Lookups of one cached image for the warm figure.
const WARM: usize = 20_000;
/// Concurrent lookups of one uncached image.
const BURST: usize = 1_000;
/// How long the registry may take to write its access log after a request finishes.
const SETTLE: Duration = Duration::from_millis(300);

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

fn required(args: &[String], name: &str) -> anyhow::Result<String> {
    arg(args, name).ok_or_else(|| anyhow!("{name} is required"))
}

fn number(args: &[String], name: &str, default: usize) -> anyhow::Result<usize> {
    match arg(args, name) {
        Some(v) => v.parse().with_context(|| format!("{name} {v}")),
        None => Ok(default),
    }
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let command = args.get(1).map(String::as_str).unwrap_or("");
    if command == "free-port" {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        println!("{port}");
        return Ok(());
    }
    if command == "startup" {
        return startup(&args);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match command {
        "push" => runtime.block_on(push(&args)),
        "measure" => runtime.block_on(measure(&args)),
        "serve" => runtime.block_on(serve(&args)),
        other => bail!("unknown command {other:?}: push, measure, serve, startup or free-port"),
    }
}

fn sha256(bytes: &[u8]) -> String {
    let hex: String = Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256:{hex}")
}

/// VmRSS of a process, in KiB.
fn rss_kib(pid: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .ok_or_else(|| anyhow!("no VmRSS in /proc/{pid}/status"))?;
    Ok(line
        .split_whitespace()
        .nth(1)
        .ok_or_else(|| anyhow!("bad VmRSS line {line:?}"))?
        .parse()?)
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn fmt_duration(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us < 1_000.0 {
        format!("{us:.1} us")
    } else if us < 1_000_000.0 {
        format!("{:.2} ms", us / 1_000.0)
    } else {
        format!("{:.2} s", us / 1e6)
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn row(figure: &str, value: &str) {
    println!("| {figure} | {value} |");
}

// ---------------------------------------------------------------------------------------------
// push

struct Pusher {
    http: reqwest::Client,
    base: String,
}

impl Pusher {
    fn new(registry: &str) -> anyhow::Result<Pusher> {
        Ok(Pusher {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()?,
            base: format!("http://{registry}"),
        })
    }

    /// Waits until the registry answers GET /v2/ (bounded: 15 s).
    async fn wait_ready(&self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(r) = self.http.get(format!("{}/v2/", self.base)).send().await {
                if r.status().is_success() {
                    return Ok(());
                }
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        bail!("the registry at {} did not answer within 15 s", self.base)
    }

    /// Uploads a blob (POST, then PUT with `digest=`); returns its digest.
    async fn blob(&self, bytes: &[u8]) -> anyhow::Result<String> {
        let digest = sha256(bytes);
        let resp = self
            .http
            .post(format!("{}/v2/{REPO}/blobs/uploads/", self.base))
            .send()
            .await?;
        ensure!(
            resp.status().as_u16() == 202,
            "blob upload start: {}",
            resp.status()
        );
        let location = resp
            .headers()
            .get("location")
            .ok_or_else(|| anyhow!("blob upload without Location"))?
            .to_str()?
            .to_string();
        let location = if location.starts_with("http") {
            location
        } else {
            format!("{}{location}", self.base)
        };
        let sep = if location.contains('?') { '&' } else { '?' };
        let resp = self
            .http
            .put(format!("{location}{sep}digest={digest}"))
            .header("content-type", "application/octet-stream")
            .body(bytes.to_vec())
            .send()
            .await?;
        ensure!(
            resp.status().as_u16() == 201,
            "blob upload: {}",
            resp.status()
        );
        Ok(digest)
    }

    /// PUTs a manifest or index under `reference`; returns its digest.
    async fn manifest(
        &self,
        reference: &str,
        media_type: &str,
        bytes: Vec<u8>,
    ) -> anyhow::Result<String> {
        let digest = sha256(&bytes);
        let resp = self
            .http
            .put(format!("{}/v2/{REPO}/manifests/{reference}", self.base))
            .header("content-type", media_type)
            .body(bytes)
            .send()
            .await?;
        ensure!(
            resp.status().as_u16() == 201,
            "manifest {reference}: {} {}",
            resp.status(),
            resp.text().await.unwrap_or_default()
        );
        Ok(digest)
    }

    /// One single-platform image under `tag` with its own config blob; returns (digest, size).
    async fn image(
        &self,
        tag: &str,
        arch: &str,
        layer: &(String, usize),
    ) -> anyhow::Result<(String, usize)> {
        let config = serde_json::to_vec(&json!({
            "os": "linux", "architecture": arch,
            "rootfs": {"type": "layers", "diff_ids": []},
            "config": {"Labels": {"bench.image": tag}},
        }))?;
        let config_digest = self.blob(&config).await?;
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "size": config.len(), "digest": config_digest},
            "layers": [{"mediaType": OCI_LAYER, "size": layer.1, "digest": layer.0}],
        }))?;
        let size = manifest.len();
        Ok((self.manifest(tag, OCI_MANIFEST, manifest).await?, size))
    }
}

fn arch_of(i: usize) -> &'static str {
    if i % 2 == 0 {
        "amd64"
    } else {
        "arm64"
    }
}

async fn push(args: &[String]) -> anyhow::Result<()> {
    let registry = required(args, "--registry")?;
    let n = number(args, "--n", 10_000)?;
    let parallel = number(args, "--parallel", 32)?.max(1);
    let pusher = Arc::new(Pusher::new(&registry)?);
    pusher.wait_ready().await?;
    let started = Instant::now();
    let layer_bytes = b"archgate bench: one tiny layer shared by every image".to_vec();
    let layer = Arc::new((pusher.blob(&layer_bytes).await?, layer_bytes.len()));
    let mut tags: Vec<String> = (0..n).map(|i| format!("i{i}")).collect();
    tags.extend((0..COLD).map(|i| format!("cold{i}")));
    tags.push("burst-tag".into());
    tags.push("burst-digest".into());
    let total = tags.len();
    let results: Vec<anyhow::Result<()>> = stream::iter(tags.into_iter().enumerate())
        .map(|(i, tag)| {
            let pusher = Arc::clone(&pusher);
            let layer = Arc::clone(&layer);
            async move {
                tokio::spawn(async move { pusher.image(&tag, arch_of(i), &layer).await.map(drop) })
                    .await?
            }
        })
        .buffer_unordered(parallel)
        .collect()
        .await;
    let failed: Vec<_> = results.into_iter().filter_map(Result::err).collect();
    if let Some(e) = failed.first() {
        bail!("{} of {total} pushes failed; first: {e:#}", failed.len());
    }
    // One multi-platform OCI index: two children pushed by digest, labelled.
    let mut entries = Vec::new();
    for (i, arch) in ["amd64", "arm64"].iter().enumerate() {
        let child = format!("multi-child-{i}");
        let (digest, size) = pusher.image(&child, arch, &layer).await?;
        entries.push(json!({
            "mediaType": OCI_MANIFEST, "digest": digest, "size": size,
            "platform": {"os": "linux", "architecture": arch},
        }));
    }
    let index = serde_json::to_vec(
        &json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}),
    )?;
    pusher.manifest("multi", OCI_INDEX, index).await?;
    println!(
        "pushed {total} single-platform images ({n} for the cache, {COLD} cold, 2 burst) and 1 OCI index to {registry}/{REPO} in {} ({parallel} in parallel)",
        fmt_duration(started.elapsed())
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// measure: in process, through RegistrySource

fn source(config: &Path, metrics: Option<&prometheus::Registry>) -> anyhow::Result<RegistrySource> {
    let args = RegistryArgs {
        registry_config: Some(config.to_path_buf()),
        docker_config: None,
    };
    Ok(args.registry_source(None, metrics)?)
}

async fn lookup(source: &RegistrySource, image: &ImageRef) -> Lookup {
    let pull = PullContext::default();
    source
        .lookup(LookupRequest {
            image,
            patient: false,
            pull: &pull,
        })
        .await
}

fn parse(image: &str) -> anyhow::Result<ImageRef> {
    ImageRef::parse(image).map_err(|e| anyhow!("{image}: {e}"))
}

/// Sum of `archgate_registry_requests_total` over every label.
fn registry_requests(metrics: &prometheus::Registry) -> u64 {
    metrics
        .gather()
        .iter()
        .filter(|f| f.name() == "archgate_registry_requests_total")
        .flat_map(|f| f.get_metric().iter())
        .map(|m| m.get_counter().get_value() as u64)
        .sum()
}

/// Requests in the registry's access log: (HEAD manifests, GET manifests, GET blobs).
fn access_log_counts(log: &Path) -> anyhow::Result<(usize, usize, usize)> {
    let text = std::fs::read_to_string(log).with_context(|| format!("{}", log.display()))?;
    let count = |needle: &str| text.lines().filter(|l| l.contains(needle)).count();
    Ok((
        count(&format!("\"HEAD /v2/{REPO}/manifests/")),
        count(&format!("\"GET /v2/{REPO}/manifests/")),
        count(&format!("\"GET /v2/{REPO}/blobs/")),
    ))
}

/// Lookups of `images`, `parallel` at a time; returns how many were found and the wall time.
async fn look_up_all(
    source: &Arc<RegistrySource>,
    images: Vec<ImageRef>,
    parallel: usize,
) -> (usize, Vec<String>, Duration) {
    let started = Instant::now();
    let results: Vec<Lookup> = stream::iter(images)
        .map(|image| {
            let source = Arc::clone(source);
            async move {
                tokio::spawn(async move { lookup(&source, &image).await })
                    .await
                    .unwrap_or_else(|e| Lookup::Failed(e.to_string().into()))
            }
        })
        .buffer_unordered(parallel)
        .collect()
        .await;
    let elapsed = started.elapsed();
    let mut found = 0;
    let mut failures = Vec::new();
    for r in results {
        match r {
            Lookup::Found(_) => found += 1,
            Lookup::NotFound => failures.push("not found".to_string()),
            Lookup::Failed(m) | Lookup::Unavailable(m) => failures.push(m.to_string()),
        }
    }
    (found, failures, elapsed)
}

/// BURST concurrent lookups of one image; returns (found, wall time).
async fn burst(source: &Arc<RegistrySource>, image: &ImageRef) -> (usize, Duration) {
    let started = Instant::now();
    let tasks: Vec<_> = (0..BURST)
        .map(|_| {
            let source = Arc::clone(source);
            let image = image.clone();
            tokio::spawn(async move { lookup(&source, &image).await })
        })
        .collect();
    let mut found = 0;
    for t in tasks {
        if let Ok(Lookup::Found(_)) = t.await {
            found += 1;
        }
    }
    (found, started.elapsed())
}

async fn measure(args: &[String]) -> anyhow::Result<()> {
    let registry = required(args, "--registry")?;
    let config = PathBuf::from(required(args, "--config")?);
    let log = PathBuf::from(required(args, "--log")?);
    let n = number(args, "--n", 10_000)?;
    let parallel = number(args, "--parallel", 64)?.max(1);
    let image = |tag: &str| parse(&format!("{registry}/{REPO}:{tag}"));

    println!("| figure | value |\n|---|---|");
    // (d) RSS idle, then with every image cached.
    let metrics = prometheus::Registry::new();
    let main = Arc::new(source(&config, Some(&metrics))?);
    let idle = rss_kib("self")?;
    row(
        "RSS idle (runtime + RegistrySource built, no lookup)",
        &mib(idle),
    );
    let images = (0..n)
        .map(|i| image(&format!("i{i}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let (found, failures, took) = look_up_all(&main, images.clone(), parallel).await;
    if let Some(f) = failures.first() {
        bail!("{} of {n} lookups failed; first: {f}", failures.len());
    }
    let filled = rss_kib("self")?;
    let requests = registry_requests(&metrics);
    row(
        &format!("look up {n} distinct images, {parallel} at a time"),
        &format!(
            "{found} found in {} ({:.0} lookups/s), {requests} registry requests",
            fmt_duration(took),
            n as f64 / took.as_secs_f64()
        ),
    );
    row(&format!("RSS with {n} images cached"), &mib(filled));
    row(
        "RSS growth per cached image",
        &format!(
            "{:.2} KiB",
            (filled.saturating_sub(idle)) as f64 / n.max(1) as f64
        ),
    );
    // The source does not expose its entry count: a second pass that asks the registry nothing
    // shows every image is still cached (tags within tag_ttl, platforms within platforms_ttl).
    let (found_again, _, took_again) = look_up_all(&main, images, parallel).await;
    let asked = registry_requests(&metrics) - requests;
    row(
        &format!("second pass over the {n} (cache check)"),
        &format!(
            "{found_again} found in {}, {asked} registry requests (0 = all {n} cached)",
            fmt_duration(took_again)
        ),
    );
    row("RSS after the second pass", &mib(rss_kib("self")?));

    // (b) cold: a fresh source per image, its first lookup (new connection included).
    let mut cold = Vec::with_capacity(COLD);
    for i in 0..COLD {
        let fresh = source(&config, None)?;
        let img = image(&format!("cold{i}"))?;
        let started = Instant::now();
        let r = lookup(&fresh, &img).await;
        cold.push(started.elapsed());
        ensure!(matches!(r, Lookup::Found(_)), "cold lookup of {img}: {r:?}");
    }
    cold.sort();
    row(
        &format!(
            "cold lookup by tag (fresh source, HEAD + GET manifest + GET config), median of {COLD}"
        ),
        &format!(
            "{} (min {}, max {})",
            fmt_duration(percentile(&cold, 0.5)),
            fmt_duration(cold[0]),
            fmt_duration(cold[COLD - 1])
        ),
    );
    let fresh = source(&config, None)?;
    let multi = image("multi")?;
    let started = Instant::now();
    let r = lookup(&fresh, &multi).await;
    let index_cold = started.elapsed();
    let platforms = match &r {
        Lookup::Found(p) => p.describe(),
        other => bail!("lookup of {multi}: {other:?}"),
    };
    row(
        "cold lookup of the OCI index (fresh source, HEAD + GET index)",
        &format!("{} -> {platforms}", fmt_duration(index_cold)),
    );

    // Warm: one cached image, asked again and again.
    let warm_image = image("i0")?;
    let mut warm = Vec::with_capacity(WARM);
    for _ in 0..WARM {
        let started = Instant::now();
        let r = lookup(&main, &warm_image).await;
        warm.push(started.elapsed());
        ensure!(matches!(r, Lookup::Found(_)), "warm lookup: {r:?}");
    }
    warm.sort();
    row(
        &format!("warm lookup (cached tag + platforms), median of {WARM}"),
        &format!(
            "{} (p99 {})",
            fmt_duration(percentile(&warm, 0.5)),
            fmt_duration(percentile(&warm, 0.99))
        ),
    );

    // (c) cold bursts: BURST concurrent lookups of one uncached image, by tag and by digest.
    for (what, tag) in [("by tag", "burst-tag"), ("by digest", "burst-digest")] {
        let img = if tag == "burst-digest" {
            // The digest, learned without touching `main`'s cache.
            let probe = reqwest::Client::new()
                .head(format!("http://{registry}/v2/{REPO}/manifests/{tag}"))
                .header("accept", OCI_MANIFEST)
                .send()
                .await?;
            let digest = probe
                .headers()
                .get("docker-content-digest")
                .ok_or_else(|| anyhow!("no digest for {tag}"))?
                .to_str()?
                .to_string();
            parse(&format!("{registry}/{REPO}@{digest}"))?
        } else {
            image(tag)?
        };
        tokio::time::sleep(SETTLE).await;
        let before = access_log_counts(&log)?;
        let metric_before = registry_requests(&metrics);
        let (found, took) = burst(&main, &img).await;
        tokio::time::sleep(SETTLE).await;
        let after = access_log_counts(&log)?;
        let metric = registry_requests(&metrics) - metric_before;
        row(
            &format!("cold burst {what}: {BURST} concurrent lookups of one uncached image"),
            &format!(
                "{found}/{BURST} answered in {}; registry served {} HEAD + {} GET manifest, {} GET blob (source counted {metric} requests)",
                fmt_duration(took),
                after.0 - before.0,
                after.1 - before.1,
                after.2 - before.2,
            ),
        );
    }
    row("RSS at the end", &mib(rss_kib("self")?));
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// serve: the real webhook process

fn https_client(ca: &Path) -> anyhow::Result<reqwest::Client> {
    let pem = std::fs::read(ca).with_context(|| format!("{}", ca.display()))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut &pem[..]) {
        roots.add(cert?)?;
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .timeout(Duration::from_secs(15))
        .build()?)
}

async fn serve(args: &[String]) -> anyhow::Result<()> {
    let url = required(args, "--url")?;
    let ca = PathBuf::from(required(args, "--ca")?);
    let pid = required(args, "--pid")?;
    let registry = required(args, "--registry")?;
    let n = number(args, "--n", 10_000)?;
    let parallel = number(args, "--parallel", 64)?.max(1);
    let fixture = arg(args, "--fixture")
        .unwrap_or_else(|| "tests/fixtures/admission-reviews/pod-create.json".into());
    let template = std::fs::read_to_string(&fixture).with_context(|| fixture.clone())?;
    let placeholder = "\"image\":\"registry.invalid/busybox:1.36\"";
    ensure!(
        template.contains(placeholder),
        "{fixture} no longer names {placeholder}"
    );
    let http = Arc::new(https_client(&ca)?);

    let idle = rss_kib(&pid)?;
    let reviews = || send_reviews(&http, &url, &template, placeholder, &registry, n, parallel);
    let (patched, took) = reviews().await?;
    let filled = rss_kib(&pid)?;
    let requests = server_registry_requests(&http, &url).await?;
    let (patched_again, took_again) = reviews().await?;
    let again = rss_kib(&pid)?;
    let requests_again = server_registry_requests(&http, &url).await? - requests;
    println!("| figure | value |\n|---|---|");
    row(
        "archgate serve RSS idle (TLS, HTTP server, registry source)",
        &mib(idle),
    );
    row(
        &format!("{n} admission reviews, each a different image, {parallel} at a time"),
        &format!(
            "all 200 in {} ({:.0} reviews/s); {patched} patched; {requests} registry requests",
            fmt_duration(took),
            n as f64 / took.as_secs_f64()
        ),
    );
    row(
        &format!("archgate serve RSS with {n} images cached"),
        &mib(filled),
    );
    row(
        &format!("the same {n} reviews again (all cached)"),
        &format!(
            "all 200 in {} ({:.0} reviews/s); {patched_again} patched; {requests_again} registry requests",
            fmt_duration(took_again),
            n as f64 / took_again.as_secs_f64()
        ),
    );
    row("archgate serve RSS after the second pass", &mib(again));
    Ok(())
}

async fn server_registry_requests(http: &reqwest::Client, url: &str) -> anyhow::Result<f64> {
    let metrics = http
        .get(format!("{url}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    Ok(metrics
        .lines()
        .filter(|l| l.starts_with("archgate_registry_requests_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum())
}

/// N reviews, review K naming image iK; returns (how many got a patch, wall time).
async fn send_reviews(
    http: &Arc<reqwest::Client>,
    url: &str,
    template: &str,
    placeholder: &str,
    registry: &str,
    n: usize,
    parallel: usize,
) -> anyhow::Result<(usize, Duration)> {
    let started = Instant::now();
    let results: Vec<anyhow::Result<bool>> = stream::iter(0..n)
        .map(|i| {
            let http = Arc::clone(http);
            let body = template.replace(
                placeholder,
                &format!("\"image\":\"{registry}/{REPO}:i{i}\""),
            );
            let url = format!("{url}/mutate?timeout=10s");
            async move {
                let resp = http
                    .post(url)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await?;
                ensure!(
                    resp.status().is_success(),
                    "/mutate answered {}",
                    resp.status()
                );
                let review: serde_json::Value = serde_json::from_slice(&resp.bytes().await?)?;
                // A found image gets a node-affinity patch; an unknown one would get only a warning.
                Ok(review["response"]["patch"].is_string())
            }
        })
        .buffer_unordered(parallel)
        .collect()
        .await;
    let took = started.elapsed();
    let mut patched = 0;
    let mut errors = Vec::new();
    for r in results {
        match r {
            Ok(true) => patched += 1,
            Ok(false) => {}
            Err(e) => errors.push(e),
        }
    }
    if let Some(e) = errors.first() {
        bail!("{} of {n} reviews failed; first: {e:#}", errors.len());
    }
    Ok((patched, took))
}

// ---------------------------------------------------------------------------------------------
// startup: time from spawning `archgate serve` to the first 200 from GET /readyz

fn startup(args: &[String]) -> anyhow::Result<()> {
    let bin = required(args, "--bin")?;
    let ca = PathBuf::from(required(args, "--ca")?);
    let runs = number(args, "--runs", 20)?.max(1);
    let label = arg(args, "--label").unwrap_or_else(|| "archgate serve".into());
    let serve_args: Vec<String> = match args.iter().position(|a| a == "--") {
        Some(i) => args[i + 1..].to_vec(),
        None => bail!("give the serve arguments after --"),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let http = https_client(&ca)?;
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let url = format!("https://127.0.0.1:{port}/readyz");
        let started = Instant::now();
        let mut child = Command::new(&bin)
            .args(&serve_args)
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot start {bin}"))?;
        let ready = runtime.block_on(async {
            let deadline = started + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(r) = http
                    .get(&url)
                    .timeout(Duration::from_millis(500))
                    .send()
                    .await
                {
                    if r.status().as_u16() == 200 {
                        return Some(started.elapsed());
                    }
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            None
        });
        let _ = child.kill();
        let _ = child.wait();
        times.push(ready.ok_or_else(|| anyhow!("{label} was not ready within 10 s"))?);
    }
    times.sort();
    println!(
        "| {label}: start to first 200 from /readyz, {runs} starts | median {} (min {}, max {}) |",
        fmt_duration(percentile(&times, 0.5)),
        fmt_duration(times[0]),
        fmt_duration(times[runs - 1])
    );
    Ok(())
}
