//! JSON Patch (RFC 6902) operations for a [`Mutation`], built from the pod's shape directly.
//!
//! Operations are derived from which parent objects exist, never from a diff of two documents:
//! absent parents are created whole, existing lists are appended to, so a patch never replaces
//! anything the user wrote. Values are written as JSON text straight away (keys in the order
//! serde_json's maps sort them), not built as `serde_json::Value` trees: this runs for every
//! patched pod.

use crate::pod::Pod;
use crate::policy::arch::ArchSet;
use crate::policy::evaluate::{Mutation, ARCH_ANNOTATION, ARCH_LABEL};
use serde::Serialize;
use serde_json::value::RawValue;
use std::collections::BTreeMap;

/// One JSON Patch operation; archgate only ever adds.
#[derive(Debug, Clone, Serialize)]
pub struct PatchOp {
    pub op: &'static str,
    pub path: String,
    pub value: Box<RawValue>,
}

fn add(path: String, value: String) -> PatchOp {
    PatchOp {
        op: "add",
        path,
        // Every value is built below from JSON text this module writes; an invalid one would be
        // a bug here, and `null` keeps the patch well-formed while tests catch it.
        value: RawValue::from_string(value).unwrap_or_else(|_| null()),
    }
}

fn null() -> Box<RawValue> {
    RawValue::from_string("null".into()).unwrap_or_default()
}

/// A JSON string literal.
fn quoted(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
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
                // A later entry for the same key wins, as it would in a map.
                let map: BTreeMap<&str, &str> = mutation
                    .node_selector
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                let members: Vec<String> = map
                    .iter()
                    .map(|(k, v)| format!("{}:{}", quoted(k), quoted(v)))
                    .collect();
                ops.push(add(
                    "/spec/nodeSelector".into(),
                    format!("{{{}}}", members.join(",")),
                ));
            }
            Some(_) => {
                for (k, v) in &mutation.node_selector {
                    ops.push(add(
                        format!("/spec/nodeSelector/{}", escape_pointer(k)),
                        quoted(v),
                    ));
                }
            }
        }
    }
    if !mutation.tolerations.is_empty() {
        // Through a Value so the members come out sorted, as in every patch archgate has sent.
        let values = mutation.tolerations.iter().map(|t| {
            serde_json::to_value(t)
                .and_then(|v| serde_json::to_string(&v))
                .unwrap_or_else(|_| "null".into())
        });
        match &pod.spec.tolerations {
            None => {
                let all: Vec<String> = values.collect();
                ops.push(add(
                    "/spec/tolerations".into(),
                    format!("[{}]", all.join(",")),
                ));
            }
            Some(_) => ops.extend(values.map(|v| add("/spec/tolerations/-".into(), v))),
        }
    }
    if let Some(value) = &mutation.annotation {
        match &pod.metadata.annotations {
            None => ops.push(add(
                "/metadata/annotations".into(),
                format!("{{{}:{}}}", quoted(ARCH_ANNOTATION), quoted(value)),
            )),
            Some(_) => ops.push(add(
                format!("/metadata/annotations/{}", escape_pointer(ARCH_ANNOTATION)),
                quoted(value),
            )),
        }
    }
    ops
}

const REQUIRED: &str = "requiredDuringSchedulingIgnoredDuringExecution";
const PREFERRED: &str = "preferredDuringSchedulingIgnoredDuringExecution";

/// `{"key":"kubernetes.io/arch","operator":"In","values":[...]}`.
fn arch_expression(archs: ArchSet) -> String {
    let values: Vec<String> = archs.names().iter().map(|a| quoted(a)).collect();
    format!(
        r#"{{"key":{},"operator":"In","values":[{}]}}"#,
        quoted(ARCH_LABEL),
        values.join(",")
    )
}

/// Appends the architecture expression to every required term (terms are ORed, so each one must
/// carry it) and the preferred terms, creating whichever parent is missing in one operation.
fn node_affinity_ops(pod: &Pod, mutation: &Mutation, ops: &mut Vec<PatchOp>) {
    let expr = mutation.require_archs.map(arch_expression);
    let preferred: Vec<String> = mutation
        .prefer
        .iter()
        .map(|p| {
            format!(
                r#"{{"preference":{{"matchExpressions":[{}]}},"weight":{}}}"#,
                arch_expression(p.architectures),
                p.weight
            )
        })
        .collect();
    if expr.is_none() && preferred.is_empty() {
        return;
    }
    let required =
        |expr: &str| format!(r#"{{"nodeSelectorTerms":[{{"matchExpressions":[{expr}]}}]}}"#);
    let preferred_list = |terms: &[String]| format!("[{}]", terms.join(","));
    // Members in sorted order: "preferred..." before "required...".
    let mut members = Vec::new();
    if !preferred.is_empty() {
        members.push(format!(
            "{}:{}",
            quoted(PREFERRED),
            preferred_list(&preferred)
        ));
    }
    if let Some(e) = &expr {
        members.push(format!("{}:{}", quoted(REQUIRED), required(e)));
    }
    let whole = format!("{{{}}}", members.join(","));
    let Some(affinity) = &pod.spec.affinity else {
        ops.push(add(
            "/spec/affinity".into(),
            format!(r#"{{"nodeAffinity":{whole}}}"#),
        ));
        return;
    };
    let Some(node_affinity) = &affinity.node_affinity else {
        ops.push(add("/spec/affinity/nodeAffinity".into(), whole));
        return;
    };
    let base = "/spec/affinity/nodeAffinity";
    if let Some(e) = &expr {
        match &node_affinity.required_during_scheduling_ignored_during_execution {
            None => ops.push(add(format!("{base}/{REQUIRED}"), required(e))),
            Some(r) if r.node_selector_terms.is_empty() => ops.push(add(
                format!("{base}/{REQUIRED}/nodeSelectorTerms"),
                format!(r#"[{{"matchExpressions":[{e}]}}]"#),
            )),
            Some(r) => {
                for (i, t) in r.node_selector_terms.iter().enumerate() {
                    let path = format!("{base}/{REQUIRED}/nodeSelectorTerms/{i}/matchExpressions");
                    match &t.match_expressions {
                        None => ops.push(add(path, format!("[{e}]"))),
                        Some(_) => ops.push(add(format!("{path}/-"), e.clone())),
                    }
                }
            }
        }
    }
    if !preferred.is_empty() {
        match &node_affinity.preferred_during_scheduling_ignored_during_execution {
            None => ops.push(add(
                format!("{base}/{PREFERRED}"),
                preferred_list(&preferred),
            )),
            Some(_) => ops.extend(
                preferred
                    .into_iter()
                    .map(|p| add(format!("{base}/{PREFERRED}/-"), p)),
            ),
        }
    }
}
