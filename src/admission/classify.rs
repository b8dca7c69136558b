//! Classify: what a decoded review is about. Its envelope checked, the kind of object
//! ([`Target`]), and the pod it stands for ([`Subject`]): the pod itself, or a workload's
//! template as the pod its controller will create.

use super::review::{ObjectIn, RequestIn, ReviewIn, SUPPORTED_VERSIONS};
use super::BadReview;
use crate::pod::Pod;

/// The review's apiVersion (the first supported one when it names none) and its request: the
/// checks every answer starts with.
pub(super) fn envelope<'r, 'a>(
    review: &'r ReviewIn<'a>,
) -> Result<(&'r str, &'r RequestIn<'a>), BadReview> {
    let api_version = review
        .api_version
        .as_deref()
        .unwrap_or(SUPPORTED_VERSIONS[0]);
    if !SUPPORTED_VERSIONS.contains(&api_version) {
        return Err(BadReview::Version(api_version.to_string()));
    }
    let request = review.request.as_ref().ok_or(BadReview::NoRequest)?;
    Ok((api_version, request))
}

/// What kind of object a review is about, as far as archgate is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Target {
    Pod,
    /// The `pods/ephemeralcontainers` subresource (`kubectl debug`).
    Ephemeral,
    /// A controller with a pod template.
    Workload,
}

impl Target {
    pub(super) fn of(group: &str, kind: &str, sub_resource: Option<&str>) -> Option<Target> {
        match (group, kind, sub_resource) {
            ("", "Pod", None) => Some(Target::Pod),
            ("", "Pod", Some("ephemeralcontainers")) => Some(Target::Ephemeral),
            ("apps", "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet", None)
            | ("batch", "Job" | "CronJob", None) => Some(Target::Workload),
            _ => None,
        }
    }
}

/// What a review is about: a pod (or a workload's template as the pod it stands for), its
/// namespace, and for a workload the object and its pod as JSON.
pub(super) struct Subject {
    pub(super) pod: Pod,
    pub(super) namespace: String,
    pub(super) template: Option<Template>,
}

/// A workload, which a template patch applies to, and the pod its controller would create.
pub(super) struct Template {
    pub(super) object: serde_json::Value,
    pub(super) pod: serde_json::Value,
}

/// The pod a review is about and its namespace. Pods are decoded straight into the few fields the
/// decision reads; workloads go through their template.
pub(super) fn read_pod(
    target: Target,
    object: ObjectIn<'_>,
    request_ns: Option<&str>,
) -> Result<Subject, ReadError> {
    let raw = match object {
        ObjectIn::Pod(pod) => return Ok(with_namespace(*pod, request_ns)),
        ObjectIn::Raw(raw) => raw.get(),
        ObjectIn::Absent => return Err(ReadError::Absent),
    };
    if target == Target::Workload {
        let object: serde_json::Value = serde_json::from_str(raw)?;
        return match crate::workload::pod_for(&object, request_ns.unwrap_or("default"))? {
            Some(w) => Ok(Subject {
                pod: w.pod,
                namespace: w.namespace,
                template: Some(Template {
                    object,
                    pod: w.pod_json,
                }),
            }),
            None => Err(ReadError::NoTemplate),
        };
    }
    let pod: Pod = serde_json::from_str(raw)?;
    Ok(with_namespace(pod, request_ns))
}

/// Why a review's object could not be read as a pod (or a workload's pod template).
#[derive(Debug, thiserror::Error)]
pub(super) enum ReadError {
    #[error("the review has no request.object")]
    Absent,
    #[error("it has no pod template")]
    NoTemplate,
    #[error(transparent)]
    Workload(#[from] crate::workload::WorkloadError),
    #[error("{0}")]
    Json(#[from] serde_json::Error),
}

/// A pod and its namespace: the request's, else the pod's own, else "default".
fn with_namespace(pod: Pod, request_ns: Option<&str>) -> Subject {
    let namespace = request_ns
        .or(pod.metadata.namespace.as_deref())
        .filter(|ns| !ns.is_empty())
        .unwrap_or("default")
        .to_string();
    Subject {
        pod,
        namespace,
        template: None,
    }
}
