//! The keys each table of a policy accepts, for `lint`'s "did you mean".

/// Keys each table of the policy accepts, for "did you mean" (loading rejects the rest).
pub(super) fn known_keys(table: &str) -> &'static [&'static str] {
    match table {
        "" => &["cluster", "defaults", "rules", "gpu", "placement"],
        "placement" => &["templates", "on_lookup_timeout", "give_up_after"],
        "cluster" => &[
            "platforms",
            "compatible_execution",
            "pools",
            "variant_labels",
        ],
        "cluster.pools" => &["name", "platform", "labels", "taints", "resources"],
        "cluster.pools.taints" => &["key", "value", "effect"],
        "defaults" => &["mode", "unknown_images", "on_overload"],
        "rules" => &[
            "name",
            "namespaces",
            "namespace_selector",
            "pod_selector",
            "mode",
            "architectures",
            "unknown_images",
            "prefer",
        ],
        "rules.prefer" => &["architectures", "weight"],
        "rules.pod_selector" | "rules.namespace_selector" => &["match_labels", "match_expressions"],
        "rules.pod_selector.match_expressions" | "rules.namespace_selector.match_expressions" => {
            &["key", "operator", "values"]
        }
        "gpu.*" => &["resources", "architectures", "node_selector", "tolerations"],
        "gpu.*.tolerations" => &["key", "operator", "value", "effect", "toleration_seconds"],
        _ => &[],
    }
}

/// Tables whose keys are free-form (names, labels).
pub(super) fn free_form(table: &str) -> bool {
    matches!(
        table,
        "gpu"
            | "gpu.*.node_selector"
            | "cluster.variant_labels"
            | "cluster.pools.labels"
            | "rules.pod_selector.match_labels"
            | "rules.namespace_selector.match_labels"
    )
}
