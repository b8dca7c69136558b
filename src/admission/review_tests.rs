//! Decoding reviews: the envelope checks and the pod's fields, on captured and hostile bodies.

#![allow(clippy::unwrap_used)]
use super::*;
use serde_json::{json, Value};

fn written(r: &ResponseOut, api_version: &str) -> Value {
    serde_json::from_slice(&r.to_review_json(api_version)).unwrap()
}

#[test]
fn the_review_holds_only_the_members_it_has_and_echoes_the_version() {
    let odd = "quote \" backslash \\ newline \n tab \t bell \u{7} é ✓ </script>";
    for version in SUPPORTED_VERSIONS {
        assert_eq!(
            written(&ResponseOut::allow(odd), version),
            json!({"apiVersion": version, "kind": "AdmissionReview",
                "response": {"uid": odd, "allowed": true}})
        );
        assert_eq!(
            written(&ResponseOut::deny("uid-3", 403, odd.into()), version)["response"],
            json!({"uid": "uid-3", "allowed": false,
                "status": {"code": 403, "message": odd, "reason": "Forbidden"}})
        );
    }
    assert_eq!(
        written(
            &ResponseOut::deny("uid-4", 400, String::new()),
            "admission.k8s.io/v1"
        )["response"]["status"]["reason"],
        "BadRequest"
    );
    let warned = ResponseOut::allow("uid-2").with_warnings(vec!["one".into(), odd.into()]);
    let warnings = &written(&warned, "admission.k8s.io/v1")["response"]["warnings"];
    assert_eq!(warnings, &json!(["one", odd.replace('\n', " ")]));
}

#[test]
fn the_patch_is_base64_json_patch_text_beside_its_type_and_audit_annotations() {
    let patch = br#"[{"op":"add","path":"/spec/nodeSelector","value":{"a":"b"}}]"#;
    let mut annotated = ResponseOut::allow("uid-5").with_patch(patch);
    annotated
        .audit_annotations
        .insert("architectures", "amd64,arm64".into());
    let response = &written(&annotated, "admission.k8s.io/v1")["response"];
    assert_eq!(response["patchType"], "JSONPatch");
    let decoded = crate::admission::patch::of_response(&annotated.to_review_json("v1")).unwrap();
    assert_eq!(decoded, serde_json::from_slice(patch).unwrap());
    assert_eq!(
        response["auditAnnotations"],
        json!({"architectures": "amd64,arm64"})
    );
}
