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
    node_affinity_ops(pod, mutation, &mut ops);
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

const REQUIRED: &str = "requiredDuringSchedulingIgnoredDuringExecution";
const PREFERRED: &str = "preferredDuringSchedulingIgnoredDuringExecution";

/// Appends the architecture expression to every required term (terms are ORed, so each one must
/// carry it) and the preferred terms, creating whichever parent is missing in one operation.
fn node_affinity_ops(pod: &Pod, mutation: &Mutation, ops: &mut Vec<PatchOp>) {
    let expr = mutation
        .require_archs
        .map(|archs| json!({"key": ARCH_LABEL, "operator": "In", "values": archs.names()}));
    let preferred: Vec<Value> = mutation
        .prefer
        .iter()
        .map(|p| {
            json!({"weight": p.weight, "preference": {"matchExpressions": [
                {"key": ARCH_LABEL, "operator": "In", "values": p.architectures.names()}
            ]}})
        })
        .collect();
    if expr.is_none() && preferred.is_empty() {
        return;
    }
    let required = |expr: &Value| json!({"nodeSelectorTerms": [{"matchExpressions": [expr]}]});
    let mut whole = serde_json::Map::new();
    if let Some(e) = &expr {
        whole.insert(REQUIRED.into(), required(e));
    }
    if !preferred.is_empty() {
        whole.insert(PREFERRED.into(), Value::Array(preferred.clone()));
    }
    let Some(affinity) = &pod.spec.affinity else {
        ops.push(add("/spec/affinity".into(), json!({"nodeAffinity": whole})));
        return;
    };
    let Some(node_affinity) = &affinity.node_affinity else {
        ops.push(add(
            "/spec/affinity/nodeAffinity".into(),
            Value::Object(whole),
        ));
        return;
    };
    let base = "/spec/affinity/nodeAffinity";
    if let Some(e) = &expr {
        match &node_affinity.required_during_scheduling_ignored_during_execution {
            None => ops.push(add(format!("{base}/{REQUIRED}"), required(e))),
            Some(r) if r.node_selector_terms.is_empty() => ops.push(add(
                format!("{base}/{REQUIRED}/nodeSelectorTerms"),
                json!([{"matchExpressions": [e]}]),
            )),
            Some(r) => {
                for (i, t) in r.node_selector_terms.iter().enumerate() {
                    let path = format!("{base}/{REQUIRED}/nodeSelectorTerms/{i}/matchExpressions");
                    match &t.match_expressions {
                        None => ops.push(add(path, json!([e]))),
                        Some(_) => ops.push(add(format!("{path}/-"), e.clone())),
                    }
                }
            }
        }
    }
    if !preferred.is_empty() {
        match &node_affinity.preferred_during_scheduling_ignored_during_execution {
            None => ops.push(add(format!("{base}/{PREFERRED}"), Value::Array(preferred))),
            Some(_) => ops.extend(
                preferred
                    .into_iter()
                    .map(|p| add(format!("{base}/{PREFERRED}/-"), p)),
            ),
        }
    }
}
