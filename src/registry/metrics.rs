//! The registry client's Prometheus metrics, registered on the server's registry. The `registry`
//! label is a host the operator configured (or a well-known public registry), else `other`, so a
//! pod spec cannot grow the label set.

use prometheus::{GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry};
use std::collections::BTreeSet;

const BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0,
];

/// Public registries people pull from, named in metrics without configuration.
const WELL_KNOWN: [&str; 9] = [
    "docker.io",
    "ghcr.io",
    "quay.io",
    "gcr.io",
    "registry.k8s.io",
    "public.ecr.aws",
    "mcr.microsoft.com",
    "registry.gitlab.com",
    "nvcr.io",
];

/// The registry client's collectors, and which hosts get their own `registry` label.
#[derive(Clone)]
pub struct RegistryMetrics {
    /// HTTP requests by registry and outcome (ok, not_found, unauthorized, error, timeout, refused).
    pub requests: IntCounterVec,
    /// HTTP request latency by registry.
    pub latency: HistogramVec,
    /// Cache hits, misses and evictions by cache (tags, platforms, failures).
    pub cache: IntCounterVec,
    /// Image lookups waiting on a registry now (one per flight, however many pods joined it).
    pub in_flight: IntGauge,
    /// Docker Hub's `RateLimit-Remaining`, by registry.
    pub rate_limit_remaining: GaugeVec,
    known: BTreeSet<String>,
}

impl RegistryMetrics {
    /// Creates and registers the collectors; `configured` are the hosts that get their own label.
    pub fn register(
        registry: &Registry,
        configured: impl IntoIterator<Item = String>,
    ) -> Result<RegistryMetrics, prometheus::Error> {
        let requests = IntCounterVec::new(
            Opts::new(
                "archgate_registry_requests_total",
                "HTTP requests to registries, by registry and outcome",
            ),
            &["registry", "outcome"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "archgate_registry_request_duration_seconds",
                "Time for one HTTP request to a registry, by registry",
            )
            .buckets(BUCKETS.to_vec()),
            &["registry"],
        )?;
        let cache = IntCounterVec::new(
            Opts::new(
                "archgate_registry_cache_total",
                "Registry cache events, by cache (tags, platforms, failures) and event (hit, miss, eviction)",
            ),
            &["cache", "event"],
        )?;
        let in_flight = IntGauge::new(
            "archgate_registry_lookups_in_flight",
            "Image lookups waiting on a registry now",
        )?;
        let rate_limit_remaining = GaugeVec::new(
            Opts::new(
                "archgate_registry_rate_limit_remaining",
                "Pulls left in the registry's rate-limit window (Docker Hub RateLimit-Remaining)",
            ),
            &["registry"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        registry.register(Box::new(cache.clone()))?;
        registry.register(Box::new(in_flight.clone()))?;
        registry.register(Box::new(rate_limit_remaining.clone()))?;
        let mut known: BTreeSet<String> = WELL_KNOWN.iter().map(ToString::to_string).collect();
        known.extend(configured);
        Ok(RegistryMetrics {
            requests,
            latency,
            cache,
            in_flight,
            rate_limit_remaining,
            known,
        })
    }

    /// A throwaway set, for sources built without a metrics registry (tests, offline commands).
    pub fn unregistered() -> RegistryMetrics {
        // Registering on a fresh registry cannot collide.
        match RegistryMetrics::register(&Registry::new(), []) {
            Ok(m) => m,
            Err(e) => unreachable!("fresh metrics registry rejected a collector: {e}"),
        }
    }

    /// The same collectors, with `configured` as the hosts that get their own label: for a
    /// registry source rebuilt from a reloaded configuration (collectors register only once).
    pub fn with_configured(&self, configured: impl IntoIterator<Item = String>) -> RegistryMetrics {
        let mut known: BTreeSet<String> = WELL_KNOWN.iter().map(ToString::to_string).collect();
        known.extend(configured);
        RegistryMetrics {
            known,
            ..self.clone()
        }
    }

    /// The bounded label for a registry host.
    pub fn label<'a>(&self, host: &'a str) -> &'a str {
        if self.known.contains(host) {
            host
        } else {
            "other"
        }
    }

    /// Counts one `event` (hit, miss, eviction) of `cache` (tags, platforms, failures).
    pub fn cache_event(&self, cache: &str, event: &str) {
        self.cache.with_label_values(&[cache, event]).inc();
    }
}
