//! The one update that releases a gated pod, as a pure function: the placement the mutating stage
//! would have patched in, archgate's scheduling gate and label removed, and the annotation that
//! says how it was decided, guarded by `test` operations on the resourceVersion and the gate.
//!
//! Only what the API server lets change on a gated pod is touched (KEP-3838): node affinity
//! expressions appended to each existing required term (or the affinity created), nodeSelector
//! entries added, tolerations appended, preferred terms, metadata. The patch builder already
//! adds and never replaces, so the pod's own choices stay as they are.

use crate::admission::patch;
use crate::pod::Pod;
use crate::policy::evaluate::Verdict;
use crate::policy::gate::{GATE, GATED_LABEL, PLACEMENT_ANNOTATION};
use json_patch::jsonptr::PointerBuf;
use json_patch::{Patch, PatchOperation, RemoveOperation, TestOperation};
use serde_json::Value;

/// The JSON Patch that releases `pod` (whose stored form has `resource_version`) per `verdict`,
/// recording `note` in the placement annotation. `None` when the verdict keeps it gated (a
/// denial, or a lookup still pending) or archgate's gate is gone already.
pub fn release(pod: &Pod, resource_version: &str, verdict: &Verdict, note: &str) -> Option<Patch> {
    let index = pod
        .spec
        .scheduling_gates
        .iter()
        .flatten()
        .position(|g| g.name == GATE)?;
    let placement = match verdict {
        Verdict::Patch(mutation) => patch::build(pod, mutation),
        Verdict::Allow => Vec::new(),
        Verdict::Gate(_) | Verdict::Deny(_) => return None,
    };
    let annotations = pod.metadata.annotations.is_some()
        || placement
            .iter()
            .any(|op| op.path.as_str() == "/metadata/annotations");
    let test = |path: PointerBuf, value: &str| {
        PatchOperation::Test(TestOperation {
            path,
            value: Value::from(value),
        })
    };
    let remove = |path: PointerBuf| PatchOperation::Remove(RemoveOperation { path });
    let gate = index.to_string();
    let mut ops = vec![test(
        PointerBuf::from_tokens(["metadata", "resourceVersion"]),
        resource_version,
    )];
    ops.extend(placement.into_iter().map(PatchOperation::Add));
    ops.push(test(
        PointerBuf::from_tokens(["spec", "schedulingGates", &gate, "name"]),
        GATE,
    ));
    ops.push(remove(PointerBuf::from_tokens([
        "spec",
        "schedulingGates",
        &gate,
    ])));
    if pod.labels().contains_key(GATED_LABEL) {
        ops.push(remove(PointerBuf::from_tokens([
            "metadata",
            "labels",
            GATED_LABEL,
        ])));
    }
    let note = patch::map_entry("annotations", annotations, PLACEMENT_ANNOTATION, note);
    ops.push(PatchOperation::Add(note));
    Some(Patch(ops))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::arch::{Arch, ArchSet};
    use crate::policy::evaluate::Mutation;
    use serde_json::json;

    fn gated(spec: Value) -> Value {
        let mut pod = json!({
            "metadata": {"name": "web-1", "namespace": "shop", "resourceVersion": "42",
                "labels": {"app": "web", GATED_LABEL: "gated"},
                "annotations": {PLACEMENT_ANNOTATION: "waiting for the platforms of image x"}},
            "spec": {"containers": [{"name": "c", "image": "x"}],
                "schedulingGates": [{"name": "example.com/other"}, {"name": GATE}]}
        });
        if let (Some(dst), Value::Object(src)) = (pod["spec"].as_object_mut(), spec) {
            dst.extend(src);
        }
        pod
    }

    fn apply(pod: &Value, patch: &Patch) -> Value {
        let mut out = pod.clone();
        json_patch::patch(&mut out, patch).unwrap();
        out
    }

    fn amd64() -> Verdict {
        Verdict::Patch(Mutation {
            require_archs: Some(ArchSet::of([Arch::Amd64])),
            annotation: Some("amd64".into()),
            ..Mutation::default()
        })
    }

    #[test]
    fn a_placed_pod_gets_its_affinity_and_loses_only_archgates_gate_and_label() {
        let json = gated(
            json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
            {"nodeSelectorTerms": [{"matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}]}]}}}}),
        );
        let pod: Pod = serde_json::from_value(json.clone()).unwrap();
        let ops = release(&pod, "42", &amd64(), "placed on amd64").unwrap();
        let out = apply(&json, &ops);
        assert_eq!(
            out["spec"]["schedulingGates"],
            json!([{"name": "example.com/other"}])
        );
        assert_eq!(out["metadata"]["labels"], json!({"app": "web"}));
        assert_eq!(
            out["metadata"]["annotations"][PLACEMENT_ANNOTATION],
            "placed on amd64"
        );
        assert_eq!(
            out["metadata"]["annotations"]["archgate.io/architectures"],
            "amd64"
        );
        // Appended to the existing term, which keeps its own requirement first.
        assert_eq!(
            out["spec"]["affinity"]["nodeAffinity"]
                ["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"],
            json!([{"matchExpressions": [
                {"key": "disk", "operator": "In", "values": ["ssd"]},
                {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]}
            ]}])
        );
    }

    #[test]
    fn a_stale_read_fails_the_resource_version_test() {
        let json = gated(json!({}));
        let pod: Pod = serde_json::from_value(json.clone()).unwrap();
        let patch = release(&pod, "41", &Verdict::Allow, "unplaced").unwrap();
        assert!(json_patch::patch(&mut json.clone(), &patch).is_err());
    }

    #[test]
    fn denied_or_still_pending_pods_stay_gated_and_ungated_pods_are_left_alone() {
        let pod: Pod = serde_json::from_value(gated(json!({}))).unwrap();
        assert!(release(&pod, "42", &Verdict::Deny("no".into()), "").is_none());
        assert!(release(&pod, "42", &Verdict::Gate("waiting".into()), "").is_none());
        let mut free = gated(json!({}));
        free["spec"]["schedulingGates"] = json!([]);
        let pod: Pod = serde_json::from_value(free).unwrap();
        assert!(release(&pod, "42", &Verdict::Allow, "").is_none());
    }

    #[test]
    fn an_allowed_pod_without_annotations_gets_them_created() {
        let mut json = gated(json!({}));
        json["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("annotations");
        let pod: Pod = serde_json::from_value(json.clone()).unwrap();
        let out = apply(
            &json,
            &release(&pod, "42", &Verdict::Allow, "unplaced").unwrap(),
        );
        assert_eq!(
            out["metadata"]["annotations"],
            json!({PLACEMENT_ANNOTATION: "unplaced"})
        );
        let placed = apply(&json, &release(&pod, "42", &amd64(), "placed").unwrap());
        assert_eq!(
            placed["metadata"]["annotations"],
            json!({PLACEMENT_ANNOTATION: "placed", "archgate.io/architectures": "amd64"})
        );
    }
}
