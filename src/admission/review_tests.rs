//! Decoding reviews: the envelope checks and the pod's fields, on captured and hostile bodies.

#![allow(clippy::unwrap_used)]
use super::*;
use serde::Serialize;

/// The response as serde derived it before it was written by hand: the reference the
/// hand-written body must equal byte for byte.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SerdeReview<'a> {
    api_version: &'a str,
    kind: &'static str,
    response: SerdeResponse<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SerdeResponse<'a> {
    uid: &'a str,
    allowed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<SerdeStatus<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    patch_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    patch: Option<&'a str>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    warnings: &'a [String],
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    audit_annotations: &'a BTreeMap<&'static str, Cow<'static, str>>,
}

#[derive(Serialize)]
struct SerdeStatus<'a> {
    code: u16,
    message: &'a str,
    reason: &'static str,
}

fn by_serde(r: &ResponseOut, api_version: &str) -> Vec<u8> {
    serde_json::to_vec(&SerdeReview {
        api_version,
        kind: "AdmissionReview",
        response: SerdeResponse {
            uid: &r.uid,
            allowed: r.allowed,
            status: r.status.as_ref().map(|s| SerdeStatus {
                code: s.code,
                message: &s.message,
                reason: s.reason,
            }),
            patch_type: r.patch_type,
            patch: r.patch.as_deref(),
            warnings: &r.warnings,
            audit_annotations: &r.audit_annotations,
        },
    })
    .unwrap()
}

#[test]
fn the_written_review_is_what_serde_writes() {
    let odd = "quote \" backslash \\ newline \n tab \t bell \u{7} é ✓ </script>";
    let mut annotated = ResponseOut::allow("3d37cdfe-8fe9-4c76-8fc2-30e1ab2047d4")
        .with_patch(br#"[{"op":"add","path":"/spec/nodeSelector","value":{"a":"b"}}]"#);
    annotated
        .audit_annotations
        .insert("architectures", "amd64,arm64".into());
    annotated
        .audit_annotations
        .insert("decision", Cow::Owned(odd.to_string()));
    let cases = [
        ResponseOut::allow("uid-1"),
        ResponseOut::allow(odd),
        ResponseOut::allow("uid-2").with_warnings(vec!["one".into(), odd.into()]),
        ResponseOut::deny("uid-3", 403, format!("no node can run it: {odd}")),
        ResponseOut::deny("uid-4", 400, String::new()),
        annotated,
    ];
    for case in &cases {
        for version in SUPPORTED_VERSIONS {
            let ours = case.to_review_json(version);
            assert_eq!(
                String::from_utf8(ours).unwrap(),
                String::from_utf8(by_serde(case, version)).unwrap()
            );
        }
    }
}
