//! JSON Patch (RFC 6902) operations for a [`Mutation`], built from the pod's shape directly.
//!
//! Operations are derived from which parent objects exist, never from a diff of two documents:
//! absent parents are created whole, existing lists are appended to, so a patch never replaces
//! anything the user wrote. archgate only ever adds, so the builders return json-patch's
//! [`AddOperation`]s; [`document`] makes them the [`Patch`] the API server receives.

use crate::arch::ArchSet;
use crate::pod::Pod;
use crate::policy::evaluate::{Mutation, ARCH_ANNOTATION, ARCH_LABEL};
use crate::policy::gate::{GATE, GATED_LABEL, GATED_VALUE, PLACEMENT_ANNOTATION};
use base64::Engine;
use json_patch::jsonptr::{Pointer, PointerBuf};
use json_patch::{AddOperation, Patch, PatchOperation};
use serde_json::{json, Map, Value};

/// An `add` of `value` at the pointer made of `tokens`, each escaped as RFC 6901 says
/// (`kubernetes.io/arch` becomes `kubernetes.io~1arch`).
fn add<'t>(tokens: impl IntoIterator<Item = &'t str>, value: Value) -> AddOperation {
    AddOperation {
        path: PointerBuf::from_tokens(tokens),
        value,
    }
}

/// The JSON Patch document of `ops`, in order.
pub fn document(ops: Vec<AddOperation>) -> Patch {
    Patch(ops.into_iter().map(PatchOperation::Add).collect())
}

/// The JSON text of `patch`, as the API server receives it (base64-encoded in the response).
pub fn to_json(patch: &Patch) -> Vec<u8> {
    // Values and pointers always serialise: a map's keys are strings.
    serde_json::to_vec(patch).unwrap_or_else(|_| b"[]".to_vec())
}

/// Why a patch could not be decoded or applied as the API server would.
#[derive(Debug, thiserror::Error)]
pub enum PatchError {
    /// The response, or the patch in it, is not the JSON it should be.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// The response's `patch` is not base64.
    #[error(transparent)]
    Base64(#[from] base64::DecodeError),
    /// The patch does not apply to the object.
    #[error(transparent)]
    Apply(#[from] json_patch::PatchError),
}

/// The JSON Patch of an AdmissionReview response body, decoded from its base64 text as the API
/// server decodes it (empty when the response has none).
pub fn of_response(body: &[u8]) -> Result<Patch, PatchError> {
    let response: Value = serde_json::from_slice(body)?;
    let Some(text) = response.pointer("/response/patch").and_then(Value::as_str) else {
        return Ok(Patch::default());
    };
    let bytes = base64::engine::general_purpose::STANDARD.decode(text)?;
    Ok(serde_json::from_slice(&bytes)?)
}

/// The operations that apply `mutation` to `pod`.
pub fn build(pod: &Pod, mutation: &Mutation) -> Vec<AddOperation> {
    let mut ops = Vec::new();
    node_affinity_ops(pod, mutation, &mut ops);
    if !mutation.node_selector.is_empty() {
        match &pod.spec.node_selector {
            None => {
                // A later entry for the same key wins, as it would in a map.
                let map: Map<String, Value> = mutation
                    .node_selector
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
                    .collect();
                ops.push(add(["spec", "nodeSelector"], Value::Object(map)));
            }
            Some(_) => ops.extend(
                mutation
                    .node_selector
                    .iter()
                    .map(|(k, v)| add(["spec", "nodeSelector", k], Value::from(v.as_str()))),
            ),
        }
    }
    if !mutation.tolerations.is_empty() {
        // A toleration is a struct of strings: it always serialises.
        let values = mutation
            .tolerations
            .iter()
            .map(|t| serde_json::to_value(t).unwrap_or(Value::Null));
        match &pod.spec.tolerations {
            None => ops.push(add(["spec", "tolerations"], values.collect())),
            Some(_) => ops.extend(values.map(|v| add(["spec", "tolerations", "-"], v))),
        }
    }
    if let Some(value) = &mutation.annotation {
        let exists = pod.metadata.annotations.is_some();
        ops.push(map_entry("annotations", exists, ARCH_ANNOTATION, value));
    }
    ops
}

/// The operations that gate `pod`: archgate's scheduling gate, the label the placement
/// controller watches, and the annotation that says why. Nothing when it is gated already
/// (a reinvocation).
pub fn gate(pod: &Pod, reason: &str) -> Vec<AddOperation> {
    if pod.has_gate(GATE) {
        return Vec::new();
    }
    let gate = json!({ "name": GATE });
    let gate_op = match &pod.spec.scheduling_gates {
        None => add(["spec", "schedulingGates"], json!([gate])),
        Some(_) => add(["spec", "schedulingGates", "-"], gate),
    };
    let labels = pod.metadata.labels.is_some();
    let annotations = pod.metadata.annotations.is_some();
    vec![
        gate_op,
        map_entry("labels", labels, GATED_LABEL, GATED_VALUE),
        map_entry("annotations", annotations, PLACEMENT_ANNOTATION, reason),
    ]
}

/// A pod's operations moved under a workload's template at `prefix` ("/spec/template"; the
/// root for a pod itself). Without `metadata` (a template's, or a pod sent without it) the
/// metadata is added whole, with the maps the pod's operations create: their parent does not
/// exist.
pub fn under(ops: Vec<AddOperation>, prefix: &Pointer, has_metadata: bool) -> Vec<AddOperation> {
    let mut metadata = Map::new();
    let mut out = Vec::with_capacity(ops.len());
    for op in ops {
        let member = match op.path.split_front() {
            Some((first, rest))
                if !has_metadata && first.decoded() == "metadata" && rest.count() == 1 =>
            {
                rest.first()
            }
            _ => None,
        };
        match member {
            Some(member) => {
                metadata.insert(member.decoded().into_owned(), op.value);
            }
            None => out.push(AddOperation {
                path: prefix.concat(&op.path),
                value: op.value,
            }),
        }
    }
    if !metadata.is_empty() {
        out.push(AddOperation {
            path: prefix.with_trailing_token("metadata"),
            value: Value::Object(metadata),
        });
    }
    out
}

/// Sets `key` to the string `value` in the metadata map `map` ("labels", "annotations"),
/// creating the map when it does not `exist`.
pub fn map_entry(map: &str, exists: bool, key: &str, value: &str) -> AddOperation {
    if exists {
        add(["metadata", map, key], Value::from(value))
    } else {
        add(["metadata", map], json!({ key: value }))
    }
}

const REQUIRED: &str = "requiredDuringSchedulingIgnoredDuringExecution";
const PREFERRED: &str = "preferredDuringSchedulingIgnoredDuringExecution";

/// `{"key":"kubernetes.io/arch","operator":"In","values":[...]}`.
fn arch_expression(archs: ArchSet) -> Value {
    let values: Vec<&str> = archs.iter().map(|a| a.as_str()).collect();
    json!({ "key": ARCH_LABEL, "operator": "In", "values": values })
}

/// Appends the architecture expression to every required term (terms are ORed, so each one must
/// carry it) and the preferred terms, creating whichever parent is missing in one operation.
fn node_affinity_ops(pod: &Pod, mutation: &Mutation, ops: &mut Vec<AddOperation>) {
    let expr = mutation.require_archs.map(arch_expression);
    let preferred: Vec<Value> = mutation
        .prefer
        .iter()
        .map(|p| {
            json!({
                "preference": { "matchExpressions": [arch_expression(p.architectures)] },
                "weight": p.weight,
            })
        })
        .collect();
    if expr.is_none() && preferred.is_empty() {
        return;
    }
    let required_terms = |e: &Value| json!({ "nodeSelectorTerms": [{ "matchExpressions": [e] }] });
    let existing = pod.spec.affinity.as_ref();
    let Some(node_affinity) = existing.and_then(|a| a.node_affinity.as_ref()) else {
        let mut whole = Map::new();
        if !preferred.is_empty() {
            whole.insert(PREFERRED.into(), Value::Array(preferred));
        }
        if let Some(e) = &expr {
            whole.insert(REQUIRED.into(), required_terms(e));
        }
        ops.push(match existing {
            None => add(["spec", "affinity"], json!({ "nodeAffinity": whole })),
            Some(_) => add(["spec", "affinity", "nodeAffinity"], Value::Object(whole)),
        });
        return;
    };
    let base = ["spec", "affinity", "nodeAffinity"];
    if let Some(e) = &expr {
        match &node_affinity.required_during_scheduling_ignored_during_execution {
            None => ops.push(add(base.into_iter().chain([REQUIRED]), required_terms(e))),
            Some(r) if r.node_selector_terms.is_empty() => ops.push(add(
                base.into_iter().chain([REQUIRED, "nodeSelectorTerms"]),
                json!([{ "matchExpressions": [e] }]),
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
                    let index = i.to_string();
                    let term = [REQUIRED, "nodeSelectorTerms", &index, "matchExpressions"];
                    let path = base.into_iter().chain(term);
                    match &t.match_expressions {
                        None => ops.push(add(path, json!([e]))),
                        Some(_) => ops.push(add(path.chain(["-"]), e.clone())),
                    }
                }
            }
        }
    }
    if !preferred.is_empty() {
        let path = base.into_iter().chain([PREFERRED]);
        match &node_affinity.preferred_during_scheduling_ignored_during_execution {
            None => ops.push(add(path, Value::Array(preferred))),
            Some(_) => ops.extend(
                preferred
                    .into_iter()
                    .map(|p| add(path.clone().chain(["-"]), p)),
            ),
        }
    }
}
