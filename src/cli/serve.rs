//! `archgate serve`: load the policy and platforms, then run the HTTPS webhook until SIGTERM,
//! reloading the certificate and the configuration files when they change.

use super::reload::{self, ConfigFiles, RegistryLayer, Reloader};
use crate::admission::Admission;
use crate::cluster::events::EventRecorder;
use crate::cluster::pods::{self, MisplacedWatch};
use crate::logging::{self, LogFormat};
use crate::platforms::{PlatformSource, StaticPlatforms};
use crate::policy::Policy;
use crate::server::reload::Tracked;
use crate::server::{self, metrics::Metrics, routes, tls};
use anyhow::Context;
use clap::Args;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// The example policy and platforms shipped in policies/, served by `--dev`.
const DEV_POLICY: &str = include_str!("../../policies/homelab.toml");
const DEV_PLATFORMS: &str = include_str!("../../policies/homelab-platforms.toml");

/// `archgate serve`'s options: configuration files, TLS, where to listen, capacity, shutdown, and
/// the cluster.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Policy file (TOML); see policies/README.md. Reloaded when it changes on disk.
    #[arg(long, required_unless_present = "dev")]
    pub policy: Option<PathBuf>,
    /// Serving certificate (PEM); reloaded when it changes on disk.
    #[arg(long, required_unless_present = "dev", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// Private key of the serving certificate (PEM).
    #[arg(long, required_unless_present = "dev", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Address to listen on [default: 0.0.0.0:8443, or 127.0.0.1:8443 with --dev].
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Static platforms file (TOML): image reference -> platforms. Reloaded when it changes on
    /// disk.
    #[arg(long)]
    pub platforms: Option<PathBuf>,
    /// Serve on localhost with an in-memory self-signed certificate and the bundled example
    /// policy and platforms (each can still be overridden).
    #[arg(long)]
    pub dev: bool,
    /// Log format [default: json, or text with --dev].
    #[arg(long, value_enum)]
    pub log_format: Option<LogFormat>,
    /// Reviews evaluated at once; more wait until their deadline, then get the policy's
    /// `on_overload` answer [default: 256 per CPU].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_in_flight: Option<u32>,
    /// After SIGTERM or SIGINT, fail /readyz but keep serving, new connections included, for
    /// this long ("5s", "500ms") before draining, while the pod leaves the Service's endpoints.
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = |s: &str| {
        crate::text::parse_duration(s)
            .ok_or_else(|| format!("{s:?} is not a duration: write e.g. \"5s\" or \"500ms\""))
    })]
    pub shutdown_delay: std::time::Duration,
    /// Where the node inventory and pull secrets come from (`--inventory`, `--pull-secrets`).
    #[command(flatten)]
    pub cluster: super::cluster_args::ClusterArgs,
    /// How images are looked up in their registries (`--registry-config`, `--docker-config`).
    #[command(flatten)]
    pub registry: super::registry_args::RegistryArgs,
    /// Where the placement controller runs (`--namespace`, `--lease-duration`).
    #[command(flatten)]
    pub placement: super::placement_args::PlacementArgs,
}

/// Runs `serve` until SIGTERM or SIGINT and the drain after it; every error is a startup
/// failure.
pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let format = args.log_format.unwrap_or(if args.dev {
        LogFormat::Text
    } else {
        LogFormat::Json
    });
    // Held until the process ends: dropping it writes the log lines still buffered.
    let _log_flush = logging::init(format).context("cannot start the log writer thread")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(args))
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    // Each file is read once through its tracker, so what is in service is exactly what the
    // reloader later compares the file with.
    let mut policy_file = args.policy.clone().map(Tracked::new);
    let mut policy = match &mut policy_file {
        Some(file) => file.load(reload::parse_policy)?,
        None => Policy::from_toml(DEV_POLICY, Path::new("policies/homelab.toml (bundled)"))?,
    };
    // Before the platform source: a registry source takes `cluster.pull_secrets()`.
    let cluster = args.cluster.start(&policy, args.dev).await?;
    // Decided once: a reloaded policy gets the same preparation, without asking the API server.
    let preparation = args
        .placement
        .prepare(&policy, cluster.client().as_ref())
        .await;
    if let Some(why) = preparation.apply(&mut policy) {
        tracing::warn!(reason = %why, "pods whose image lookups do not finish in time are decided at once (unknown_images), not gated");
    }
    let mut platforms_file = args.platforms.clone().map(Tracked::new);
    let platforms = match &mut platforms_file {
        Some(file) => Some(file.load(reload::parse_platforms)?),
        None if args.dev => Some(StaticPlatforms::from_toml(
            DEV_PLATFORMS,
            Path::new("policies/homelab-platforms.toml (bundled)"),
        )?),
        None => None,
    };
    if args.platforms.is_none() && !args.dev && !args.registry.enabled() {
        tracing::warn!("no --platforms file: every image is unknown, and the policy's unknown_images setting decides");
    }
    let images = platforms.as_ref().map_or(0, StaticPlatforms::len);
    let metrics = Metrics::new().context("cannot register metrics")?;
    let files = ConfigFiles {
        policy: policy_file,
        platforms: platforms_file,
        static_layer: platforms.map(|p| Arc::new(p) as Arc<dyn PlatformSource>),
        registry: RegistryLayer::load(&args.registry, cluster.pull_secrets(), metrics.registry())?,
    };
    let mut admission = Admission::new(Arc::new(policy), files.source());
    admission.inventory = cluster.inventory();
    if let Some(namespaces) = cluster.namespaces() {
        admission.set_namespaces(namespaces);
    }
    // Stopped, and its Lease given up, when serving ends.
    let controller = args.placement.start(
        cluster.client(),
        &admission,
        &preparation,
        metrics.registry(),
    )?;
    // Dropped (stopped) when serving ends.
    let leading = controller.as_ref().map(|c| c.leading());
    let _misplaced = watch_misplaced(&cluster, &admission, &metrics, leading)?;
    let reloader = Reloader::new(
        admission.clone(),
        preparation,
        metrics.config_reloads.clone(),
        files,
    );
    // Dropped (no longer watched) when serving ends.
    let _config_watch = reloader.watch()?;

    let (resolver, _watcher) = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => {
            let pair = tls::load_pair(cert, key)?;
            let resolver = tls::ReloadingResolver::new(pair);
            let reloads = metrics.tls_reloads.clone();
            let on_reload = move |result: Result<(), &tls::TlsError>| match result {
                Ok(()) => {
                    reloads.with_label_values(&["ok"]).inc();
                    tracing::info!("reloaded the serving certificate");
                }
                Err(e) => {
                    reloads.with_label_values(&["error"]).inc();
                    tracing::error!(error = %e, "new serving certificate rejected; still serving the previous one");
                }
            };
            let watcher = tls::watch(resolver.clone(), cert.clone(), key.clone(), on_reload)?;
            (resolver, Some(watcher))
        }
        _ => {
            let dev = super::certs::generate(
                &["localhost".into()],
                &["127.0.0.1".parse()?, "::1".parse()?],
                30,
            )
            .context("cannot generate the development certificate")?;
            let pair = tls::certified_key(
                dev.cert_pem.as_bytes(),
                dev.key_pem.as_bytes(),
                Path::new("<dev>"),
                Path::new("<dev>"),
            )?;
            (tls::ReloadingResolver::new(pair), None)
        }
    };
    let tls_config = tls::server_config(resolver)?;

    let default_listen: SocketAddr = if args.dev {
        ([127, 0, 0, 1], 8443).into()
    } else {
        ([0, 0, 0, 0], 8443).into()
    };
    let addr = args.listen.unwrap_or(default_listen);
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| {
        format!(
            "cannot listen on {addr}: is another process using it? choose another with --listen"
        )
    })?;
    let bound = listener
        .local_addr()
        .context("cannot read the listening address")?;
    let ready = Arc::new(AtomicBool::new(false));
    let draining = Arc::new(AtomicBool::new(false));
    let router = routes::router(routes::AppState {
        admission,
        metrics,
        ready: ready.clone(),
        draining: draining.clone(),
        capacity: routes::Capacity::new(
            args.max_in_flight
                .map_or_else(routes::default_capacity, |n| n as usize),
        ),
    });
    // Ready now, or after the first node (and pull-secret) list when the cluster is watched.
    cluster.ready_when_synced(ready.clone());
    tracing::info!(addr = %bound, images, "listening");
    if args.dev {
        print_dev_help(bound);
    }
    let shutdown = server::drain_signal(args.shutdown_delay, draining);
    server::serve(listener, tls_config, router, shutdown).await;
    if let Some(controller) = &controller {
        controller.shutdown().await;
    }
    tracing::info!("stopped");
    Ok(())
}

/// With the node watch on, bound pods are judged as `archgate audit` judges them:
/// `archgate_misplaced_pods{namespace}`, and a log line and an Event per pod that becomes
/// misplaced (written by the placement controller's leader, when it runs).
fn watch_misplaced(
    cluster: &super::cluster_args::Cluster,
    admission: &Admission,
    metrics: &Metrics,
    leading: Option<Arc<std::sync::atomic::AtomicBool>>,
) -> anyhow::Result<Option<MisplacedWatch>> {
    let Some(client) = cluster.client().filter(|_| cluster.watches_nodes()) else {
        return Ok(None);
    };
    let gauge =
        pods::gauge(metrics.registry()).context("cannot register the misplaced-pods gauge")?;
    let admission = admission.clone();
    let current: pods::CurrentFn = Arc::new(move || pods::Current {
        source: admission.source(),
        compatible_execution: admission.policy().compatible_execution,
    });
    let instance = std::env::var("POD_NAME").unwrap_or_else(|_| "archgate".into());
    let events = EventRecorder::new(client.clone(), &instance);
    Ok(Some(MisplacedWatch::spawn(
        client,
        cluster.inventory(),
        current,
        gauge,
        Some(events),
        leading,
    )))
}

fn print_dev_help(addr: SocketAddr) {
    println!(
        "\narchgate is serving the bundled homelab policy on https://{addr} (self-signed certificate).\n\
         Send it a pod the way the API server would:\n\n  \
         curl -sk -H 'Content-Type: application/json' --data @tests/fixtures/admission-reviews/pod-create.json 'https://{addr}/mutate?timeout=10s'\n\n\
         The answer's response.patch is base64 JSON Patch; decode it with: | jq -r .response.patch | base64 -d\n\
         Metrics: curl -sk https://{addr}/metrics   Stop: Ctrl-C\n"
    );
}
