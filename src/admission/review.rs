//! The admission.k8s.io/v1 AdmissionReview wire format: what the API server sends and what we answer.
//!
//! Requests are decoded by serde_json in one pass, into types that hold only what the decision
//! reads (a pod's object straight into [`Pod`]). The response has its own derived type, not
//! kube-rs's, which serialises `patch` as an array of numbers (kube-rs issue #1781) that the API
//! server rejects: the API wants base64 text.

use super::BadReview;
use crate::pod::Pod;
use base64::Engine;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::collections::BTreeMap;

/// The API versions of AdmissionReview whose request and response shapes we speak.
pub const SUPPORTED_VERSIONS: [&str; 2] = ["admission.k8s.io/v1", "admission.k8s.io/v1beta1"];

/// Decodes a review body in one pass. A review whose pod does not decode is read again as the
/// envelope alone, so the denial can name the pod and say what is wrong with it.
pub fn decode(body: &[u8]) -> Result<ReviewIn<'_>, BadReview> {
    // serde_json checks UTF-8 only in the strings it reads, not in those it skips; a body that
    // is not UTF-8 is not JSON (RFC 8259 8.1).
    if let Err(e) = std::str::from_utf8(body) {
        return Err(BadReview::Malformed(de::Error::custom(format!(
            "the body is not UTF-8 ({e})"
        ))));
    }
    match serde_json::from_slice::<ObjectOnly<ReviewIn<'_>>>(body) {
        Ok(review) => Ok(review.0),
        Err(e) => Ok(
            serde_json::from_slice::<ObjectOnly<LenientReviewIn<'_>>>(body)
                .map_err(|_| BadReview::Malformed(e))?
                .0
                .into(),
        ),
    }
}

/// `T` from a JSON object only: serde's derived structs also read an array, field by field, so
/// `["admission.k8s.io/v1", "AdmissionReview", {...}]` would pass for a review.
pub struct ObjectOnly<T>(pub T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for ObjectOnly<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Object<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for Object<T> {
            type Value = T;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map))
            }
        }
        deserializer
            .deserialize_map(Object(std::marker::PhantomData))
            .map(ObjectOnly)
    }
}

/// An optional field that, when present and not null, must be a JSON object.
fn optional_object<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<T>, D::Error> {
    Option::<ObjectOnly<T>>::deserialize(deserializer).map(|o| o.map(|o| o.0))
}

/// An AdmissionReview as the API server sends it, holding only what archgate reads.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReviewIn<'a> {
    /// admission.k8s.io/v1 (or v1beta1); echoed in the answer.
    pub api_version: Option<String>,
    /// "AdmissionReview".
    pub kind: Option<String>,
    /// The request; a review without one is refused with a 400.
    #[serde(borrow)]
    pub request: Option<RequestIn<'a>>,
}

/// One admission request. `object` is decoded in
/// the same pass as the envelope: straight into a [`Pod`] when `kind` (which the API server writes
/// first) says it is one, kept raw otherwise, so the body is read once.
#[derive(Debug, Default)]
pub struct RequestIn<'a> {
    /// Matches the answer to the request.
    pub uid: String,
    /// The object's group, version and kind.
    pub kind: GroupVersionKind,
    /// "ephemeralcontainers" for `kubectl debug`; None for the object itself.
    pub sub_resource: Option<String>,
    /// The object's name; None for a pod created with only generateName.
    pub name: Option<String>,
    /// The request's namespace.
    pub namespace: Option<String>,
    /// CREATE, UPDATE, DELETE or CONNECT.
    pub operation: String,
    /// The object as it will be stored.
    pub object: ObjectIn<'a>,
    /// The object before an UPDATE, raw.
    pub old_object: Option<&'a RawValue>,
    /// A dry run: nothing is persisted.
    pub dry_run: Option<bool>,
}

/// The request's object, as far as it has been decoded.
#[derive(Debug, Default)]
pub enum ObjectIn<'a> {
    /// The request has no object (or null).
    #[default]
    Absent,
    /// A pod, decoded in the same pass as the envelope.
    Pod(Box<Pod>),
    /// Any other kind, kept as its JSON text.
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
        let mut req = RequestIn::default();
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
                    let is_pod = kind.as_ref().is_some_and(GroupVersionKind::is_pod);
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
struct LenientReviewIn<'a> {
    /// As in [`ReviewIn`].
    pub api_version: Option<String>,
    /// As in [`ReviewIn`].
    pub kind: Option<String>,
    /// As in [`ReviewIn`], with the object kept raw.
    #[serde(borrow, default, deserialize_with = "optional_object")]
    pub request: Option<LenientRequestIn<'a>>,
}

/// [`RequestIn`] with the object kept raw, whatever its kind; the members mean the same.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LenientRequestIn<'a> {
    /// See [`RequestIn`].
    pub uid: String,
    /// See [`RequestIn`].
    pub kind: GroupVersionKind,
    /// See [`RequestIn`].
    pub sub_resource: Option<String>,
    /// See [`RequestIn`].
    pub name: Option<String>,
    /// See [`RequestIn`].
    pub namespace: Option<String>,
    /// See [`RequestIn`].
    #[serde(default)]
    pub operation: String,
    /// The object, raw.
    #[serde(borrow)]
    pub object: Option<&'a RawValue>,
    /// The object before an UPDATE, raw.
    #[serde(borrow, default)]
    pub old_object: Option<&'a RawValue>,
    /// See [`RequestIn`].
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

/// The kind of object a request is about, as `request.kind` names it.
#[derive(Debug, Default, Deserialize)]
#[serde(from = "ObjectOnly<GvkFields>")]
pub struct GroupVersionKind {
    /// The API group; empty for the core group (Pods).
    pub group: String,
    /// "v1", "v1beta1", ...
    pub version: String,
    /// "Pod", "Deployment", ...
    pub kind: String,
}

/// [`GroupVersionKind`] as written, read from an object only.
#[derive(Deserialize)]
struct GvkFields {
    #[serde(default)]
    group: String,
    #[serde(default)]
    version: String,
    #[serde(default)]
    kind: String,
}

impl From<ObjectOnly<GvkFields>> for GroupVersionKind {
    fn from(ObjectOnly(f): ObjectOnly<GvkFields>) -> GroupVersionKind {
        GroupVersionKind {
            group: f.group,
            version: f.version,
            kind: f.kind,
        }
    }
}

impl GroupVersionKind {
    /// Whether this names the core group's Pod, whatever the version.
    pub fn is_pod(&self) -> bool {
        self.group.is_empty() && self.kind == "Pod"
    }

    /// "apps/v1 Deployment", "v1 Pod".
    pub fn describe(&self) -> String {
        if self.group.is_empty() {
            format!("{} {}", self.version, self.kind)
        } else {
            format!("{}/{} {}", self.group, self.version, self.kind)
        }
    }
}

/// The AdmissionResponse we send back. Members that are empty are left out, as the API server
/// writes them.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResponseOut {
    /// The request's uid, which the API server matches the answer by.
    pub uid: String,
    /// Whether the object is admitted.
    pub allowed: bool,
    /// Why a denial was made, shown to whoever created the object.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<StatusOut>,
    /// "JSONPatch" when there is a patch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patch_type: Option<&'static str>,
    /// base64 of the JSON Patch document.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patch: Option<String>,
    /// Warnings kubectl prints, each one line of at most [`MAX_WARNING_CHARS`].
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Written into the API server's audit log beside the request.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub audit_annotations: BTreeMap<&'static str, Cow<'static, str>>,
}

/// A denial's `status`: an HTTP-like code, the message and its reason word.
#[derive(Debug, Serialize)]
pub struct StatusOut {
    /// 403 for a policy decision, 400 for an object that cannot be read, 429 when overloaded.
    pub code: u16,
    /// What the creator reads.
    pub message: String,
    /// "Forbidden", "BadRequest" or "TooManyRequests".
    pub reason: &'static str,
}

/// The whole AdmissionReview around a response.
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
    /// Admits the object as it is.
    pub fn allow(uid: &str) -> ResponseOut {
        ResponseOut {
            uid: uid.to_string(),
            allowed: true,
            ..ResponseOut::default()
        }
    }

    /// A denial; `code` 403 for policy decisions, 400 for objects we cannot read, 429 when
    /// overloaded.
    pub fn deny(uid: &str, code: u16, message: String) -> ResponseOut {
        let reason = match code {
            400 => "BadRequest",
            429 => "TooManyRequests",
            _ => "Forbidden",
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

    /// Adds a JSON Patch document (its JSON text), sent base64-encoded.
    pub fn with_patch(mut self, patch_json: &[u8]) -> ResponseOut {
        self.patch = Some(base64::engine::general_purpose::STANDARD.encode(patch_json));
        self.patch_type = Some("JSONPatch");
        self
    }

    /// Adds warnings, each cut to one line the API server shows as is.
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
        // Strings, numbers and maps of strings always serialise.
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

#[cfg(test)]
#[path = "review_tests.rs"]
mod tests;
