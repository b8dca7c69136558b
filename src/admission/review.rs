//! The admission.k8s.io/v1 AdmissionReview wire format: what the API server sends and what we answer.
//!
//! Only the fields the decision needs are decoded; `object` stays raw until we know it is a Pod.
//! The response is built by hand because kube-rs serialises `patch` as an array of numbers
//! (kube-rs issue #1781), which the API server rejects: the API wants base64 text.

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::collections::BTreeMap;

/// The API versions of AdmissionReview whose request and response shapes we speak.
pub const SUPPORTED_VERSIONS: [&str; 2] = ["admission.k8s.io/v1", "admission.k8s.io/v1beta1"];

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReviewIn<'a> {
    pub api_version: Option<String>,
    pub kind: Option<String>,
    #[serde(borrow)]
    pub request: Option<RequestIn<'a>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestIn<'a> {
    pub uid: String,
    pub kind: GroupVersionKind,
    pub sub_resource: Option<String>,
    pub name: Option<String>,
    pub namespace: Option<String>,
    #[serde(default)]
    pub operation: String,
    #[serde(borrow)]
    pub object: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub old_object: Option<&'a RawValue>,
    #[serde(default)]
    pub dry_run: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
pub struct GroupVersionKind {
    #[serde(default)]
    pub group: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub kind: String,
}

impl GroupVersionKind {
    /// "apps/v1 Deployment", "v1 Pod".
    pub fn describe(&self) -> String {
        if self.group.is_empty() {
            format!("{} {}", self.version, self.kind)
        } else {
            format!("{}/{} {}", self.group, self.version, self.kind)
        }
    }
}

/// The AdmissionResponse we send back.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResponseOut {
    pub uid: String,
    pub allowed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<StatusOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patch_type: Option<&'static str>,
    /// base64 of the JSON Patch document.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patch: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub audit_annotations: BTreeMap<&'static str, String>,
}

#[derive(Debug, Serialize)]
pub struct StatusOut {
    pub code: u16,
    pub message: String,
    pub reason: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ReviewOut<'a> {
    api_version: &'a str,
    kind: &'static str,
    response: &'a ResponseOut,
}

/// The API server truncates longer warnings; we cut them ourselves so the cut is on a char boundary.
pub const MAX_WARNING_CHARS: usize = 256;

impl ResponseOut {
    pub fn allow(uid: &str) -> ResponseOut {
        ResponseOut {
            uid: uid.to_string(),
            allowed: true,
            ..ResponseOut::default()
        }
    }

    /// A denial; `code` 403 for policy decisions, 400 for objects we cannot read.
    pub fn deny(uid: &str, code: u16, message: String) -> ResponseOut {
        let reason = if code == 400 {
            "BadRequest"
        } else {
            "Forbidden"
        };
        ResponseOut {
            uid: uid.to_string(),
            allowed: false,
            status: Some(StatusOut {
                code,
                message,
                reason,
            }),
            ..ResponseOut::default()
        }
    }

    pub fn with_patch(mut self, patch_json: &[u8]) -> ResponseOut {
        self.patch_type = Some("JSONPatch");
        self.patch = Some(base64::engine::general_purpose::STANDARD.encode(patch_json));
        self
    }

    pub fn with_warnings(mut self, warnings: Vec<String>) -> ResponseOut {
        self.warnings = warnings.into_iter().map(|w| short_warning(&w)).collect();
        self
    }

    /// The whole AdmissionReview body, echoing the request's apiVersion.
    pub fn to_review_json(&self, api_version: &str) -> Vec<u8> {
        let review = ReviewOut {
            api_version,
            kind: "AdmissionReview",
            response: self,
        };
        // Serialising these plain structs cannot fail; an empty body would be rejected loudly.
        serde_json::to_vec(&review).unwrap_or_default()
    }
}

/// A warning the API will show as is: no "Warning:" prefix, one line, at most 256 characters.
pub fn short_warning(text: &str) -> String {
    let text = text
        .trim_start_matches("Warning:")
        .trim()
        .replace(['\n', '\r'], " ");
    if text.chars().count() <= MAX_WARNING_CHARS {
        return text;
    }
    let mut out: String = text.chars().take(MAX_WARNING_CHARS - 3).collect();
    out.push_str("...");
    out
}
