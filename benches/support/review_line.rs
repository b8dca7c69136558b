//! The line `archgate serve` logs for every review (src/server/routes.rs), with the values it
//! logs for the byte-exact ReplicaSet pod: shared by the `log_line` bench and
//! examples/log_loop.rs so both measure the same event.

pub fn log_review_line(elapsed_us: u64) {
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
        elapsed_us,
        "admission review"
    );
}
