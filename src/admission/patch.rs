//! JSON Patch (RFC 6902) operations for a [`Mutation`], built from the pod's shape directly.
//!
//! Operations are derived from which parent objects exist, never from a diff of two documents:
//! absent parents are created whole, existing lists are appended to, so a patch never replaces
//! anything the user wrote. Values are written as JSON text straight away (keys in the order
//! serde_json's maps sort them), not built as `serde_json::Value` trees: this runs for every
//! patched pod.

use crate::arch::ArchSet;
use crate::pod::Pod;
use crate::policy::evaluate::{Mutation, ARCH_ANNOTATION, ARCH_LABEL};
use crate::policy::gate::{GATE, GATED_LABEL, GATED_VALUE, PLACEMENT_ANNOTATION};
use serde::ser::{Error as _, SerializeStruct};
use serde::{Serialize, Serializer};
use serde_json::value::RawValue;
use std::collections::BTreeMap;

/// One JSON Patch operation; archgate only ever adds.
#[derive(Debug, Clone)]
pub struct PatchOp {
    pub op: &'static str,
    pub path: String,
    /// The value as JSON text, written by this module.
    pub value: String,
}

fn add(path: String, value: String) -> PatchOp {
    PatchOp {
        op: "add",
        path,
        value,
    }
}

/// For `check` and the tests, which handle patches as JSON values. The admission path writes
/// the document with [`to_json`] instead.
impl Serialize for PatchOp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let value = RawValue::from_string(self.value.clone()).map_err(S::Error::custom)?;
        let mut op = serializer.serialize_struct("PatchOp", 3)?;
        op.serialize_field("op", self.op)?;
        op.serialize_field("path", &self.path)?;
        op.serialize_field("value", &value)?;
        op.end()
    }
}

/// The JSON Patch document the API server receives, byte for byte what serialising `ops` with
/// serde_json gives, without checking again the values this module just wrote.
pub fn to_json(ops: &[PatchOp]) -> Vec<u8> {
    let size: usize = ops.iter().map(|o| o.path.len() + o.value.len() + 32).sum();
    let mut out = Vec::with_capacity(size + 2);
    out.push(b'[');
    for (i, op) in ops.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(br#"{"op":""#);
        out.extend_from_slice(op.op.as_bytes());
        out.extend_from_slice(br#"","path":"#);
        // Paths carry map keys from the policy, which may need escaping.
        json_string(&mut out, &op.path);
        out.extend_from_slice(br#","value":"#);
        out.extend_from_slice(op.value.as_bytes());
        out.push(b'}');
    }
    out.push(b']');
    out
}

/// A JSON string literal appended to `out`, escaped as serde_json escapes it.
pub(super) fn json_string(out: &mut Vec<u8>, s: &str) {
    // Writing a string into a Vec cannot fail.
    let _ = serde_json::to_writer(out, s);
}

/// A JSON string literal.
fn quoted(s: &str) -> String {
    serde_json::Value::from(s).to_string()
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
                ops.push(add("/spec/tolerations".into(), array(&all)));
            }
            Some(_) => ops.extend(values.map(|v| add("/spec/tolerations/-".into(), v))),
        }
    }
    if let Some(value) = &mutation.annotation {
        let exists = pod.metadata.annotations.is_some();
        ops.push(map_entry(
            "/metadata/annotations",
            exists,
            ARCH_ANNOTATION,
            value,
        ));
    }
    ops
}

/// The operations that gate `pod`: archgate's scheduling gate, the label the placement
/// controller watches, and the annotation that says why. Nothing when it is gated already
/// (a reinvocation).
pub fn gate(pod: &Pod, reason: &str) -> Vec<PatchOp> {
    if pod.has_gate(GATE) {
        return Vec::new();
    }
    let gate = object_of("name", &quoted(GATE));
    let gate_op = match &pod.spec.scheduling_gates {
        None => add("/spec/schedulingGates".into(), array(&[gate])),
        Some(_) => add("/spec/schedulingGates/-".into(), gate),
    };
    let labels = pod.metadata.labels.is_some();
    let annotations = pod.metadata.annotations.is_some();
    vec![
        gate_op,
        map_entry("/metadata/labels", labels, GATED_LABEL, GATED_VALUE),
        map_entry(
            "/metadata/annotations",
            annotations,
            PLACEMENT_ANNOTATION,
            reason,
        ),
    ]
}

/// A pod's operations moved under a workload's template at `prefix` ("/spec/template"). A
/// template without `metadata` gets it whole, with the maps the pod's operations create.
pub fn under(ops: Vec<PatchOp>, prefix: &str, has_metadata: bool) -> Vec<PatchOp> {
    let mut metadata = serde_json::Map::new();
    let mut out = Vec::with_capacity(ops.len());
    for op in ops {
        match op.path.strip_prefix("/metadata/") {
            Some(member) if !has_metadata => {
                let value = serde_json::from_str(&op.value).unwrap_or(serde_json::Value::Null);
                metadata.insert(member.replace("~1", "/").replace("~0", "~"), value);
            }
            _ => out.push(PatchOp {
                path: format!("{prefix}{}", op.path),
                ..op
            }),
        }
    }
    if !metadata.is_empty() {
        out.push(add(
            format!("{prefix}/metadata"),
            serde_json::Value::Object(metadata).to_string(),
        ));
    }
    out
}

/// Sets `key` to the string `value` in the map at `parent`, creating the map when absent.
pub fn map_entry(parent: &str, exists: bool, key: &str, value: &str) -> PatchOp {
    if exists {
        add(format!("{parent}/{}", escape_pointer(key)), quoted(value))
    } else {
        let mut map = serde_json::Map::new();
        map.insert(key.to_string(), serde_json::Value::from(value));
        add(
            parent.to_string(),
            serde_json::Value::Object(map).to_string(),
        )
    }
}

/// Where [`ARCH_ANNOTATION`] goes when the pod has annotations: the key as a JSON Pointer segment.
pub const ANNOTATION_PATH: &str = "/metadata/annotations/archgate.io~1architectures";

const REQUIRED: &str = "requiredDuringSchedulingIgnoredDuringExecution";
const PREFERRED: &str = "preferredDuringSchedulingIgnoredDuringExecution";

/// Appends `{"key":"kubernetes.io/arch","operator":"In","values":[...]}` to `out`. The label and
/// the architecture names are fixed identifiers that need no escaping.
fn push_arch_expression(out: &mut String, archs: ArchSet) {
    out.push_str(r#"{"key":""#);
    out.push_str(ARCH_LABEL);
    out.push_str(r#"","operator":"In","values":["#);
    for (i, arch) in archs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('"');
        out.push_str(arch.as_str());
        out.push('"');
    }
    out.push_str("]}");
}

/// `{"nodeSelectorTerms":[{"matchExpressions":[expr]}]}`.
fn required_terms(expr: &str) -> String {
    let mut out = String::with_capacity(expr.len() + 48);
    out.push_str(r#"{"nodeSelectorTerms":[{"matchExpressions":["#);
    out.push_str(expr);
    out.push_str("]}]}");
    out
}

/// `{"name":value}`, for a member name that needs no escape and a value already written as JSON.
/// Every patched pod gets one or two of these: `format!` took three times as long.
fn object_of(name: &str, value: &str) -> String {
    let mut out = String::with_capacity(name.len() + value.len() + 5);
    out.push_str("{\"");
    out.push_str(name);
    out.push_str("\":");
    out.push_str(value);
    out.push('}');
    out
}

/// A JSON array of already-written values.
fn array(items: &[String]) -> String {
    let mut out = String::with_capacity(items.iter().map(|i| i.len() + 1).sum::<usize>() + 2);
    out.push('[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(item);
    }
    out.push(']');
    out
}

/// Appends the architecture expression to every required term (terms are ORed, so each one must
/// carry it) and the preferred terms, creating whichever parent is missing in one operation.
fn node_affinity_ops(pod: &Pod, mutation: &Mutation, ops: &mut Vec<PatchOp>) {
    let expr = mutation.require_archs.map(|archs| {
        let mut out = String::with_capacity(96);
        push_arch_expression(&mut out, archs);
        out
    });
    let preferred: Vec<String> = mutation
        .prefer
        .iter()
        .map(|p| {
            let mut out = String::with_capacity(128);
            out.push_str(r#"{"preference":{"matchExpressions":["#);
            push_arch_expression(&mut out, p.architectures);
            out.push_str(r#"]},"weight":"#);
            out.push_str(&p.weight.to_string());
            out.push('}');
            out
        })
        .collect();
    if expr.is_none() && preferred.is_empty() {
        return;
    }
    // Members in sorted order: "preferred..." before "required...".
    let mut whole = String::with_capacity(256);
    whole.push('{');
    if !preferred.is_empty() {
        whole.push('"');
        whole.push_str(PREFERRED);
        whole.push_str("\":");
        whole.push_str(&array(&preferred));
    }
    if let Some(e) = &expr {
        if !preferred.is_empty() {
            whole.push(',');
        }
        whole.push('"');
        whole.push_str(REQUIRED);
        whole.push_str("\":");
        whole.push_str(&required_terms(e));
    }
    whole.push('}');
    let Some(affinity) = &pod.spec.affinity else {
        ops.push(add(
            "/spec/affinity".into(),
            object_of("nodeAffinity", &whole),
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
            None => ops.push(add(format!("{base}/{REQUIRED}"), required_terms(e))),
            Some(r) if r.node_selector_terms.is_empty() => ops.push(add(
                format!("{base}/{REQUIRED}/nodeSelectorTerms"),
                format!(r#"[{{"matchExpressions":[{e}]}}]"#),
            )),
            Some(r) => {
                for (i, t) in r.node_selector_terms.iter().enumerate() {
                    // An empty term matches no node: a requirement added to it would widen the
                    // pod to that architecture's nodes (and the API refuses it on a gated pod).
                    if t.match_expressions.as_ref().is_none_or(Vec::is_empty)
                        && t.match_fields.as_ref().is_none_or(Vec::is_empty)
                    {
                        continue;
                    }
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
            None => ops.push(add(format!("{base}/{PREFERRED}"), array(&preferred))),
            Some(_) => ops.extend(
                preferred
                    .into_iter()
                    .map(|p| add(format!("{base}/{PREFERRED}/-"), p)),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn string_literals_are_written_as_serde_json_writes_them() {
        for s in [
            "",
            "kubernetes.io/arch",
            "/spec/affinity/nodeAffinity",
            "quote \" and backslash \\",
            "tab\tnew line\ncontrol \u{1} delete \u{7f}",
            "ünïcödé ✓ 😀",
            "a long value without anything to escape, longer than a word or two",
        ] {
            let expected = serde_json::to_string(s).unwrap();
            let mut out = b"prefix".to_vec();
            json_string(&mut out, s);
            assert_eq!(out, [b"prefix".as_slice(), expected.as_bytes()].concat());
            assert_eq!(quoted(s), expected);
        }
    }
}
