//! Which nodes a pod can land on: the scheduler's label, field and taint rules, as a pure
//! function over the inventory. Used to check pods that are bound to nodes (DaemonSet pods,
//! `nodeName`) instead of re-placing them.

use super::{Inventory, NodeInfo, Taint};
use crate::pod::{NodeSelectorTerm, Pod, Requirement, Toleration};
use std::collections::BTreeMap;

/// Taints the DaemonSet controller tolerates on every pod it creates.
const DAEMONSET_TOLERATED: [&str; 7] = [
    "node.kubernetes.io/not-ready",
    "node.kubernetes.io/unreachable",
    "node.kubernetes.io/disk-pressure",
    "node.kubernetes.io/memory-pressure",
    "node.kubernetes.io/pid-pressure",
    "node.kubernetes.io/unschedulable",
    "node.kubernetes.io/network-unavailable",
];

/// The node names a pod is pinned to: `spec.nodeName`, or a `metadata.name In [...]` field
/// requirement in every required term (how the DaemonSet controller binds its pods).
pub fn pinned_nodes(pod: &Pod) -> Option<Vec<String>> {
    if let Some(name) = pod.spec.node_name.as_deref().filter(|n| !n.is_empty()) {
        return Some(vec![name.to_string()]);
    }
    let terms = pod.required_terms();
    if terms.is_empty() {
        return None;
    }
    let mut names = Vec::new();
    for term in terms {
        let field = term
            .match_fields
            .iter()
            .flatten()
            .find(|r| r.key == "metadata.name" && r.operator == "In")?;
        names.extend(field.values.iter().cloned());
    }
    Some(names)
}

/// The nodes whose labels, name and taints admit `pod`.
pub fn eligible_nodes<'a>(inventory: &'a Inventory, pod: &Pod) -> Vec<&'a NodeInfo> {
    let daemon = pod.controller_kind() == Some("DaemonSet");
    let tolerations = pod.spec.tolerations.as_deref().unwrap_or(&[]);
    inventory
        .nodes
        .iter()
        .filter(|n| daemon || !n.unschedulable)
        .filter(|n| selector_matches(pod.spec.node_selector.as_ref(), &n.labels))
        .filter(|n| {
            let terms = pod.required_terms();
            terms.is_empty() || terms.iter().any(|t| term_matches(t, n))
        })
        .filter(|n| n.taints.iter().all(|t| tolerated(t, tolerations, daemon)))
        .collect()
}

fn selector_matches(
    selector: Option<&BTreeMap<String, String>>,
    labels: &BTreeMap<String, String>,
) -> bool {
    selector.is_none_or(|s| s.iter().all(|(k, v)| labels.get(k) == Some(v)))
}

pub(super) fn term_matches(term: &NodeSelectorTerm, node: &NodeInfo) -> bool {
    let exprs_ok = term
        .match_expressions
        .iter()
        .flatten()
        .all(|r| requirement_matches(r, node.labels.get(&r.key).map(String::as_str)));
    let fields_ok = term.match_fields.iter().flatten().all(|r| {
        let value = (r.key == "metadata.name").then_some(node.name.as_str());
        requirement_matches(r, value)
    });
    exprs_ok && fields_ok
}

fn requirement_matches(r: &Requirement, value: Option<&str>) -> bool {
    let number = |s: &str| s.parse::<i64>().ok();
    match r.operator.as_str() {
        "In" => value.is_some_and(|v| r.values.iter().any(|x| x == v)),
        "NotIn" => value.is_none_or(|v| !r.values.iter().any(|x| x == v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" | "Lt" => {
            let (Some(v), Some(limit)) = (
                value.and_then(number),
                r.values.first().and_then(|x| number(x)),
            ) else {
                return false;
            };
            if r.operator == "Gt" {
                v > limit
            } else {
                v < limit
            }
        }
        _ => false,
    }
}

/// Whether a taint keeps the pod off the node: only NoSchedule and NoExecute do.
pub(super) fn tolerated(taint: &Taint, tolerations: &[Toleration], daemon: bool) -> bool {
    if taint.effect == "PreferNoSchedule"
        || (daemon && DAEMONSET_TOLERATED.contains(&taint.key.as_str()))
    {
        return true;
    }
    tolerations.iter().any(|t| {
        let exists = t.operator.as_deref() == Some("Exists");
        let key_ok = match t.key.as_deref() {
            None | Some("") => exists,
            Some(k) => k == taint.key,
        };
        let value_ok =
            exists || t.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or("");
        let effect_ok = t
            .effect
            .as_deref()
            .is_none_or(|e| e.is_empty() || e == taint.effect);
        key_ok && value_ok && effect_ok
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::node::nodes_from_value;

    fn seed() -> Inventory {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/nodes/seed-cluster.nodes.json"
        );
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let value = serde_json::from_str(&text).unwrap_or_default();
        Inventory::from_nodes(nodes_from_value(value).unwrap_or_default())
    }

    fn pod(v: serde_json::Value) -> Pod {
        serde_json::from_value(v).unwrap_or_default()
    }

    fn names(nodes: Vec<&NodeInfo>) -> Vec<&str> {
        nodes.into_iter().map(|n| n.name.as_str()).collect()
    }

    #[test]
    fn a_plain_pod_avoids_tainted_control_plane_and_gpu_nodes() {
        let inv = seed();
        let got = names(eligible_nodes(
            &inv,
            &pod(serde_json::json!({"spec": {"containers": []}})),
        ));
        assert_eq!(got.len(), 10, "{got:?}");
        assert!(
            !got.contains(&"bruenor") && !got.contains(&"elminster"),
            "{got:?}"
        );
    }

    #[test]
    fn a_daemonset_pod_with_no_tolerations_still_skips_nodes_tainted_by_other_keys() {
        let inv = seed();
        let ds = pod(serde_json::json!({
            "metadata": {"ownerReferences": [{"kind": "DaemonSet", "name": "x", "controller": true}]},
            "spec": {"containers": [], "tolerations": [{"operator": "Exists"}]}
        }));
        assert_eq!(eligible_nodes(&inv, &ds).len(), 14, "tolerates everything");
        let selective = pod(serde_json::json!({
            "spec": {"containers": [], "nodeSelector": {"node.kubernetes.io/instance-type": "raspberry-pi"}}
        }));
        assert_eq!(
            names(eligible_nodes(&inv, &selective)),
            ["durnan", "elaith", "jarlaxle", "mirt", "volo"]
        );
    }

    #[test]
    fn pinned_nodes_come_from_node_name_or_match_fields() {
        let by_name = pod(serde_json::json!({"spec": {"containers": [], "nodeName": "durnan"}}));
        assert_eq!(pinned_nodes(&by_name), Some(vec!["durnan".to_string()]));
        let by_fields = pod(
            serde_json::json!({"spec": {"containers": [], "affinity": {"nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["khelben"]}]}
            ]}}}}}),
        );
        assert_eq!(pinned_nodes(&by_fields), Some(vec!["khelben".to_string()]));
        assert_eq!(
            pinned_nodes(&pod(serde_json::json!({"spec": {"containers": []}}))),
            None
        );
    }
}
