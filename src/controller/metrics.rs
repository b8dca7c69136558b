//! The placement controller's metrics, on the server's registry.

use prometheus::{Histogram, HistogramOpts, IntCounterVec, IntGauge, Opts, Registry};

/// Seconds from a pod's creation (gated) to its release.
const GATE_BUCKETS: [f64; 12] = [
    0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0,
];

/// What the controller counts.
#[derive(Clone)]
pub struct PlacementMetrics {
    /// Gated pods the leading controller is working on now.
    pub gated: IntGauge,
    /// Time from gate to release.
    pub gate_seconds: Histogram,
    /// Releases and give-ups, by outcome (placed, unplaced, stays_gated).
    pub outcomes: IntCounterVec,
    /// 1 while this replica leads.
    pub leader: IntGauge,
}

impl PlacementMetrics {
    /// Registers the collectors on `registry`.
    pub fn register(registry: &Registry) -> Result<PlacementMetrics, prometheus::Error> {
        let gated = IntGauge::new(
            "archgate_placement_gated_pods",
            "Pods held by archgate's scheduling gate that the leading controller is placing now",
        )?;
        let gate_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "archgate_placement_gate_duration_seconds",
                "Time from a gated pod's creation to archgate releasing its gate",
            )
            .buckets(GATE_BUCKETS.to_vec()),
        )?;
        let outcomes = IntCounterVec::new(
            Opts::new(
                "archgate_placement_outcomes_total",
                "Gated pods decided by the controller: placed, unplaced (gave up, unknown_images allows), stays_gated (gave up, or no node can run it)",
            ),
            &["outcome"],
        )?;
        let leader = IntGauge::new(
            "archgate_placement_leader",
            "1 while this replica runs the placement controller",
        )?;
        registry.register(Box::new(gated.clone()))?;
        registry.register(Box::new(gate_seconds.clone()))?;
        registry.register(Box::new(outcomes.clone()))?;
        registry.register(Box::new(leader.clone()))?;
        Ok(PlacementMetrics {
            gated,
            gate_seconds,
            outcomes,
            leader,
        })
    }
}
