//! Prometheus metrics, registered on a registry passed in (no globals). Labels are bounded:
//! endpoint, decision, reason, result; never a pod or image name.

use crate::policy::{Outcome, Stage};
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts,
    Registry, TextEncoder,
};
use std::time::Duration;

/// Seconds; the admission path usually answers in well under a millisecond.
const LATENCY_BUCKETS: [f64; 16] = [
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 10.0,
];

/// The webhook's metrics and the registry /metrics renders; cloning shares them.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// `archgate_admission_reviews_total{endpoint,decision}`: AdmissionReviews answered.
    pub reviews: IntCounterVec,
    /// `archgate_admission_duration_seconds{endpoint}`: from the request body read to the response.
    pub latency: HistogramVec,
    /// `archgate_http_rejected_total{reason}`: requests refused before or instead of a review
    /// (`too_large`, `media_type`, `not_found`, `bad_request`, `bad_review`).
    pub rejected: IntCounterVec,
    /// `archgate_admission_in_flight`: reviews being answered now; set from the capacity when
    /// scraped.
    pub in_flight: IntGauge,
    /// `archgate_admission_queued`: reviews waiting for capacity (`--max-in-flight`) now.
    pub queued: IntGauge,
    /// `archgate_admission_overloaded_total{endpoint}`: reviews answered per the policy's
    /// `on_overload` because no capacity freed up before their deadline.
    pub overloaded: IntCounterVec,
    /// `archgate_tls_reloads_total{result}`: serving certificate reloads (`ok`, `error`).
    pub tls_reloads: IntCounterVec,
    /// Configuration files reloaded, by file (policy, platforms, registry_config, docker_config)
    /// and result (ok, error).
    pub config_reloads: IntCounterVec,
    /// Log lines dropped because stdout was not read fast enough; brought up to date from the
    /// log sink's count when scraped.
    pub log_lines_dropped: IntCounter,
    /// Series of `reviews` and `latency` resolved once per endpoint: looking labels up costs a
    /// hash and a lock on every review otherwise.
    mutate: StageSeries,
    validate: StageSeries,
}

#[derive(Clone)]
struct StageSeries {
    latency: Histogram,
    /// Indexed by the outcome's place in [`Outcome::ALL`].
    decisions: [IntCounter; Outcome::ALL.len()],
}

impl StageSeries {
    fn new(reviews: &IntCounterVec, latency: &HistogramVec, endpoint: &str) -> StageSeries {
        StageSeries {
            latency: latency.with_label_values(&[endpoint]),
            decisions: Outcome::ALL.map(|d| reviews.with_label_values(&[endpoint, d.as_str()])),
        }
    }
}

/// The `endpoint` label of a stage.
pub fn endpoint(stage: Stage) -> &'static str {
    match stage {
        Stage::Mutate => "mutate",
        Stage::Validate => "validate",
    }
}

impl Metrics {
    /// Creates every metric (and `archgate_build_info`) on a registry of its own; fails only if two
    /// share a name.
    pub fn new() -> Result<Metrics, prometheus::Error> {
        let registry = Registry::new();
        let reviews = IntCounterVec::new(
            Opts::new(
                "archgate_admission_reviews_total",
                "AdmissionReviews answered, by endpoint and decision",
            ),
            &["endpoint", "decision"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "archgate_admission_duration_seconds",
                "Time from request body read to response, by endpoint",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["endpoint"],
        )?;
        let rejected = IntCounterVec::new(
            Opts::new(
                "archgate_http_rejected_total",
                "Requests refused before review, by HTTP status reason",
            ),
            &["reason"],
        )?;
        let in_flight =
            IntGauge::new("archgate_admission_in_flight", "Reviews being answered now")?;
        let queued = IntGauge::new(
            "archgate_admission_queued",
            "Reviews waiting for capacity (--max-in-flight) now",
        )?;
        let overloaded = IntCounterVec::new(
            Opts::new(
                "archgate_admission_overloaded_total",
                "Reviews answered per the policy's on_overload because no capacity freed up before their deadline",
            ),
            &["endpoint"],
        )?;
        let tls_reloads = IntCounterVec::new(
            Opts::new(
                "archgate_tls_reloads_total",
                "Serving certificate reloads, by result",
            ),
            &["result"],
        )?;
        let config_reloads = IntCounterVec::new(
            Opts::new(
                "archgate_config_reloads_total",
                "Configuration file reloads, by file and result",
            ),
            &["file", "result"],
        )?;
        let log_lines_dropped = IntCounter::new(
            "archgate_log_lines_dropped_total",
            "Log lines dropped because the log output was not read fast enough (admission never waits on logging)",
        )?;
        let build = IntGauge::with_opts(
            Opts::new(
                "archgate_build_info",
                "Always 1; the version label says which archgate runs",
            )
            .const_label("version", env!("CARGO_PKG_VERSION")),
        )?;
        build.set(1);
        registry.register(Box::new(reviews.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        registry.register(Box::new(rejected.clone()))?;
        registry.register(Box::new(in_flight.clone()))?;
        registry.register(Box::new(queued.clone()))?;
        registry.register(Box::new(overloaded.clone()))?;
        registry.register(Box::new(tls_reloads.clone()))?;
        registry.register(Box::new(config_reloads.clone()))?;
        registry.register(Box::new(log_lines_dropped.clone()))?;
        registry.register(Box::new(build))?;
        let series = |stage| StageSeries::new(&reviews, &latency, endpoint(stage));
        let (mutate, validate) = (series(Stage::Mutate), series(Stage::Validate));
        Ok(Metrics {
            mutate,
            validate,
            registry,
            reviews,
            latency,
            rejected,
            in_flight,
            queued,
            overloaded,
            tls_reloads,
            config_reloads,
            log_lines_dropped,
        })
    }

    /// Counts one answered review and observes its latency.
    pub fn reviewed(&self, stage: Stage, decision: Outcome, elapsed: Duration) {
        let series = match stage {
            Stage::Mutate => &self.mutate,
            Stage::Validate => &self.validate,
        };
        if let Some(i) = Outcome::ALL.iter().position(|o| *o == decision) {
            series.decisions[i].inc();
        }
        series.latency.observe(elapsed.as_secs_f64());
    }

    /// The registry other parts (the registry client) register their collectors on, so one
    /// /metrics shows them all.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        // Encoding counters and histograms into a Vec cannot fail.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}
