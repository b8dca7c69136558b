//! JSON Patch (RFC 6902) operations for a [`Mutation`], built from the pod's shape directly.
//!
//! Operations are derived from which parent objects exist, never from a diff of two documents:
//! absent parents are created whole, existing lists are appended to, so a patch never replaces
//! anything the user wrote.

use crate::pod::Pod;
use crate::policy::evaluate::{Mutation, ARCH_ANNOTATION, ARCH_LABEL};
use serde::Serialize;
use serde_json::{json, Value};

/// One JSON Patch operation; archgate only ever adds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PatchOp {
    pub op: &'static str,
    pub path: String,
    pub value: Value,
}

fn add(path: String, value: Value) -> PatchOp {
    PatchOp {
        op: "add",
        path,
        value,
    }
}

/// Escapes a map key for use as a JSON Pointer segment (`kubernetes.io/arch` -> `kubernetes.io~1arch`).
pub fn escape_pointer(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// The operations that apply `mutation` to `pod`.
pub fn build(pod: &Pod, mutation: &Mutation) -> Vec<PatchOp> {
    let mut ops = Vec::new();
    if let Some(archs) = mutation.require_archs {
        let expr = json!({"key": ARCH_LABEL, "operator": "In", "values": archs.names()});
        arch_ops(pod, expr, &mut ops);
    }
    if !mutation.node_selector.is_empty() {
        match &pod.spec.node_selector {
            None => {
                let map: serde_json::Map<String, Value> = mutation
                    .node_selector
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
                    .collect();
                ops.push(add("/spec/nodeSelector".into(), Value::Object(map)));
            }
            Some(_) => {
                for (k, v) in &mutation.node_selector {
                    ops.push(add(
                        format!("/spec/nodeSelector/{}", escape_pointer(k)),
                        Value::from(v.as_str()),
                    ));
                }
            }
        }
    }
    if !mutation.tolerations.is_empty() {
        let values = mutation
            .tolerations
            .iter()
            .map(|t| serde_json::to_value(t).unwrap_or(Value::Null));
        match &pod.spec.tolerations {
            None => ops.push(add(
                "/spec/tolerations".into(),
                Value::Array(values.collect()),
            )),
            Some(_) => ops.extend(values.map(|v| add("/spec/tolerations/-".into(), v))),
        }
    }
    if let Some(value) = &mutation.annotation {
        match &pod.metadata.annotations {
            None => ops.push(add(
                "/metadata/annotations".into(),
                json!({ ARCH_ANNOTATION: value }),
            )),
            Some(_) => ops.push(add(
                format!("/metadata/annotations/{}", escape_pointer(ARCH_ANNOTATION)),
                Value::from(value.as_str()),
            )),
        }
    }
    ops
}

/// Appends the architecture expression to every required term (terms are ORed, so each one must
/// carry it), creating whichever parent is missing.
fn arch_ops(pod: &Pod, expr: Value, ops: &mut Vec<PatchOp>) {
    const REQUIRED: &str = "requiredDuringSchedulingIgnoredDuringExecution";
    let term = json!({"matchExpressions": [expr.clone()]});
    let Some(affinity) = &pod.spec.affinity else {
        ops.push(add(
            "/spec/affinity".into(),
            json!({"nodeAffinity": {REQUIRED: {"nodeSelectorTerms": [term]}}}),
        ));
        return;
    };
    let Some(node_affinity) = &affinity.node_affinity else {
        ops.push(add(
            "/spec/affinity/nodeAffinity".into(),
            json!({REQUIRED: {"nodeSelectorTerms": [term]}}),
        ));
        return;
    };
    let base = format!("/spec/affinity/nodeAffinity/{REQUIRED}");
    let Some(required) = &node_affinity.required_during_scheduling_ignored_during_execution else {
        ops.push(add(base, json!({"nodeSelectorTerms": [term]})));
        return;
    };
    if required.node_selector_terms.is_empty() {
        ops.push(add(format!("{base}/nodeSelectorTerms"), json!([term])));
        return;
    }
    for (i, t) in required.node_selector_terms.iter().enumerate() {
        let path = format!("{base}/nodeSelectorTerms/{i}/matchExpressions");
        match &t.match_expressions {
            None => ops.push(add(path, json!([expr.clone()]))),
            Some(_) => ops.push(add(format!("{path}/-"), expr.clone())),
        }
    }
}
