//! The admission.k8s.io/v1 AdmissionReview wire format: what the API server sends and what we answer.
//!
//! Only the fields the decision needs are decoded, in one pass over the body.
//! The response is built by hand because kube-rs serialises `patch` as an array of numbers
//! (kube-rs issue #1781), which the API server rejects: the API wants base64 text.

use super::{trim, BadReview};
use crate::pod::Pod;
use base64::Engine;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::collections::BTreeMap;

/// The API versions of AdmissionReview whose request and response shapes we speak.
pub const SUPPORTED_VERSIONS: [&str; 2] = ["admission.k8s.io/v1", "admission.k8s.io/v1beta1"];

/// Decodes a review body: a pod's from its [`trim`]med copy when it has the API server's shape,
/// anything else in one pass over the whole body. A review whose pod does not decode is read again
/// as the envelope alone, so the denial can name the pod and say what is wrong with it.
pub fn decode(body: &[u8]) -> Result<ReviewIn<'_>, BadReview> {
    match trim::trim(body).and_then(|trimmed| decode_trimmed(&trimmed)) {
        Some(review) => Ok(review),
        None => decode_whole(body),
    }
}

/// Decodes the whole body, every member of it read by serde_json.
pub(super) fn decode_whole(body: &[u8]) -> Result<ReviewIn<'_>, BadReview> {
    // Validating UTF-8 once up front lets serde_json skip it for every string it reads.
    let decoded = match std::str::from_utf8(body) {
        Ok(text) => serde_json::from_str(text),
        Err(_) => serde_json::from_slice(body),
    };
    match decoded {
        Ok(review) => Ok(review),
        Err(e) => Ok(serde_json::from_slice::<LenientReviewIn<'_>>(body)
            .map_err(|_| BadReview::Malformed(e))?
            .into()),
    }
}

/// A pod's review decoded from its [`trim`]med copy; `None` sends the caller to the whole body.
/// The result may outlive the copy: trim keeps neither a raw object nor an oldObject, the only
/// parts that borrow.
pub(super) fn decode_trimmed<'a>(trimmed: &[u8]) -> Option<ReviewIn<'a>> {
    let review: ReviewIn<'_> = serde_json::from_str(std::str::from_utf8(trimmed).ok()?).ok()?;
    let request = match review.request {
        None => None,
        Some(q) => Some(RequestIn {
            object: match q.object {
                ObjectIn::Pod(pod) => ObjectIn::Pod(pod),
                ObjectIn::Absent => ObjectIn::Absent,
                ObjectIn::Raw(_) => return None,
            },
            old_object: match q.old_object {
                None => None,
                Some(_) => return None,
            },
            uid: q.uid,
            kind: q.kind,
            sub_resource: q.sub_resource,
            name: q.name,
            namespace: q.namespace,
            operation: q.operation,
            dry_run: q.dry_run,
        }),
    };
    Some(ReviewIn {
        api_version: review.api_version,
        kind: review.kind,
        request,
    })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReviewIn<'a> {
    pub api_version: Option<String>,
    pub kind: Option<String>,
    #[serde(borrow)]
    pub request: Option<RequestIn<'a>>,
}

/// One admission request. `object` is decoded in the same pass as the envelope: straight into a
/// [`Pod`] when `kind` (which the API server writes first) says it is one, kept raw otherwise.
/// Skipping over a pod's managedFields dominates the admission path, so it is done once.
#[derive(Debug)]
pub struct RequestIn<'a> {
    pub uid: String,
    pub kind: GroupVersionKind,
    pub sub_resource: Option<String>,
    pub name: Option<String>,
    pub namespace: Option<String>,
    pub operation: String,
    pub object: ObjectIn<'a>,
    pub old_object: Option<&'a RawValue>,
    pub dry_run: Option<bool>,
}

/// The request's object, as far as it has been decoded.
#[derive(Debug)]
pub enum ObjectIn<'a> {
    Absent,
    Pod(Box<Pod>),
    Raw(&'a RawValue),
}

impl<'de: 'a, 'a> Deserialize<'de> for RequestIn<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(RequestVisitor(std::marker::PhantomData))
    }
}

struct RequestVisitor<'a>(std::marker::PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for RequestVisitor<'a> {
    type Value = RequestIn<'a>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an admission request object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RequestIn<'a>, A::Error> {
        let (mut uid, mut kind) = (None, None::<GroupVersionKind>);
        let mut req = RequestIn {
            uid: String::new(),
            kind: GroupVersionKind::default(),
            sub_resource: None,
            name: None,
            namespace: None,
            operation: String::new(),
            object: ObjectIn::Absent,
            old_object: None,
            dry_run: None,
        };
        while let Some(Key(key)) = map.next_key()? {
            match &*key {
                "uid" => uid = Some(map.next_value()?),
                "kind" => kind = Some(map.next_value()?),
                "subResource" => req.sub_resource = map.next_value()?,
                "name" => req.name = map.next_value()?,
                "namespace" => req.namespace = map.next_value()?,
                "operation" => {
                    req.operation = map.next_value::<Option<String>>()?.unwrap_or_default()
                }
                "dryRun" => req.dry_run = map.next_value()?,
                "oldObject" => req.old_object = map.next_value()?,
                "object" => {
                    let is_pod = kind
                        .as_ref()
                        .is_some_and(|k| k.group.is_empty() && k.kind == "Pod");
                    req.object = if is_pod {
                        map.next_value::<Option<Pod>>()?
                            .map_or(ObjectIn::Absent, |p| ObjectIn::Pod(Box::new(p)))
                    } else {
                        map.next_value::<Option<&'a RawValue>>()?
                            .map_or(ObjectIn::Absent, ObjectIn::Raw)
                    };
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        req.uid = uid.ok_or_else(|| de::Error::missing_field("uid"))?;
        req.kind = kind.ok_or_else(|| de::Error::missing_field("kind"))?;
        Ok(req)
    }
}

/// A member name, borrowed from the body unless it holds escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a member name")
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(s)))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(s.to_string())))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

/// The envelope with `object` kept raw whatever it is: read only when the one-pass decode failed,
/// so a pod that does not decode still gets a denial that names it and says why.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LenientReviewIn<'a> {
    pub api_version: Option<String>,
    pub kind: Option<String>,
    #[serde(borrow)]
    pub request: Option<LenientRequestIn<'a>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LenientRequestIn<'a> {
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

impl<'a> From<LenientReviewIn<'a>> for ReviewIn<'a> {
    fn from(r: LenientReviewIn<'a>) -> ReviewIn<'a> {
        ReviewIn {
            api_version: r.api_version,
            kind: r.kind,
            request: r.request.map(|q| RequestIn {
                uid: q.uid,
                kind: q.kind,
                sub_resource: q.sub_resource,
                name: q.name,
                namespace: q.namespace,
                operation: q.operation,
                object: q.object.map_or(ObjectIn::Absent, ObjectIn::Raw),
                old_object: q.old_object,
                dry_run: q.dry_run,
            }),
        }
    }
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
    /// base64 of the JSON Patch document, as a JSON string literal: base64 never needs escaping,
    /// so the serialiser copies it instead of checking every byte of the longest field.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patch: Option<Box<RawValue>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub audit_annotations: BTreeMap<&'static str, Cow<'static, str>>,
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
        let mut literal = String::with_capacity(patch_json.len() * 4 / 3 + 6);
        literal.push('"');
        base64::engine::general_purpose::STANDARD.encode_string(patch_json, &mut literal);
        literal.push('"');
        // A quoted base64 string is always a valid JSON value.
        self.patch = RawValue::from_string(literal).ok();
        self.patch_type = self.patch.as_ref().map(|_| "JSONPatch");
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
        // Room for the whole body up front: growing from serde_json's default reallocates it
        // three or four times.
        let mut body = Vec::with_capacity(
            256 + self.patch.as_ref().map_or(0, |p| p.get().len())
                + self.status.as_ref().map_or(0, |s| s.message.len())
                + self.warnings.iter().map(String::len).sum::<usize>(),
        );
        // Serialising these plain structs cannot fail; an empty body would be rejected loudly.
        match serde_json::to_writer(&mut body, &review) {
            Ok(()) => body,
            Err(_) => Vec::new(),
        }
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
