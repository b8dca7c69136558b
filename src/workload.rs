//! Which pod a Kubernetes object stands for: a Pod is itself; a Deployment, StatefulSet,
//! DaemonSet, ReplicaSet, Job or CronJob stands for the pods its controller creates from its
//! template.
//!
//! This is the one place that knows controllers. `check`, `test` and the webhook's `/validate`
//! (for workload reviews) all ask [`pod_for`], so a template is evaluated exactly as the pod the
//! API server will later send: in the workload's namespace, with the template's labels, and owned
//! by the controller that creates it. The owner matters: a DaemonSet pod is bound to its node
//! ([`Pod::is_bound`]) and is checked, never given affinity.

use crate::pod::Pod;
use serde_json::{json, Map, Value};

/// The pod an object stands for, ready to be evaluated.
#[derive(Debug, Clone)]
pub struct WorkloadPod {
    /// The object's kind ("Pod", "Deployment", ...).
    pub kind: String,
    /// The object's name (empty when it has none, e.g. a Pod with only `generateName`).
    pub name: String,
    /// The object's namespace, or the fallback when its metadata has none.
    pub namespace: String,
    /// The decoded pod.
    pub pod: Pod,
    /// The pod as JSON, as the API server would send it in an AdmissionReview (patches apply to it).
    pub pod_json: Value,
}

impl WorkloadPod {
    /// Whether the object is a Pod itself (not a template that a controller turns into pods).
    pub fn is_pod(&self) -> bool {
        self.kind == "Pod"
    }
}

/// Why an object that should have pods does not describe one.
#[derive(Debug, thiserror::Error)]
pub enum WorkloadError {
    /// The object lacks `kind` (or it is empty), so which pods it has cannot be told.
    #[error("the object has no `kind`: every Kubernetes manifest needs apiVersion and kind")]
    NoKind,
    /// A controller kind whose object lacks the pod template its pods are made from.
    #[error("{kind} {name} has no {path}: add the pod template the controller creates pods from")]
    NoTemplate {
        /// The object's kind, e.g. `Deployment`.
        kind: String,
        /// The object's name; empty when it has none.
        name: String,
        /// Where the template should be, dotted (`spec.template`).
        path: String,
    },
    /// The pod (or pod template) does not decode as a pod, e.g. a field has the wrong type.
    #[error("{kind} {name}: its pod is not readable: {source}")]
    BadPod {
        /// The object's kind, e.g. `Pod` or `Deployment`.
        kind: String,
        /// The object's name; empty when it has none.
        name: String,
        /// Why decoding failed.
        #[source]
        source: serde_json::Error,
    },
}

/// Where a controller keeps its pod template (a JSON Pointer), and which controller kind owns
/// the pods it makes.
fn template_of(kind: &str) -> Option<(&'static str, &'static str)> {
    const TEMPLATE: &str = "/spec/template";
    match kind {
        // A Deployment's pods are created (and owned) by its ReplicaSet, a CronJob's by its Job.
        "Deployment" => Some((TEMPLATE, "ReplicaSet")),
        "CronJob" => Some(("/spec/jobTemplate/spec/template", "Job")),
        "StatefulSet" => Some((TEMPLATE, "StatefulSet")),
        "DaemonSet" => Some((TEMPLATE, "DaemonSet")),
        "ReplicaSet" => Some((TEMPLATE, "ReplicaSet")),
        "Job" => Some((TEMPLATE, "Job")),
        _ => None,
    }
}

/// Where `kind` keeps its pod template, as a JSON Pointer ("/spec/template").
pub fn template_pointer(kind: &str) -> Option<&'static str> {
    template_of(kind).map(|(pointer, _)| pointer)
}

/// Whether objects of `kind` have pods archgate would evaluate.
pub fn has_pods(kind: &str) -> bool {
    kind == "Pod" || template_of(kind).is_some()
}

/// The pod `object` stands for; `None` for kinds that have no pods (Services, ConfigMaps, ...).
/// `default_namespace` is used when the object's metadata names none, as kubectl does.
pub fn pod_for(
    object: &Value,
    default_namespace: &str,
) -> Result<Option<WorkloadPod>, WorkloadError> {
    let kind = object
        .get("kind")
        .and_then(Value::as_str)
        .filter(|k| !k.is_empty())
        .ok_or(WorkloadError::NoKind)?;
    let meta = object.get("metadata");
    let text = |key: &str| {
        meta.and_then(|m| m.get(key))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let name = text("name").unwrap_or_default().to_string();
    let namespace = text("namespace").unwrap_or(default_namespace).to_string();

    let pod_json = if kind == "Pod" {
        let mut pod = object.clone();
        set_namespace(&mut pod, &namespace);
        pod
    } else {
        let Some((path, owner_kind)) = template_of(kind) else {
            return Ok(None);
        };
        let template = object
            .pointer(path)
            .filter(|t| t.is_object())
            .ok_or_else(|| WorkloadError::NoTemplate {
                kind: kind.to_string(),
                name: name.clone(),
                path: path[1..].replace('/', "."),
            })?;
        pod_from_template(template, kind, &name, &namespace, owner_kind)
    };
    let pod: Pod =
        serde_json::from_value(pod_json.clone()).map_err(|source| WorkloadError::BadPod {
            kind: kind.to_string(),
            name: name.clone(),
            source,
        })?;
    Ok(Some(WorkloadPod {
        kind: kind.to_string(),
        name,
        namespace,
        pod,
        pod_json,
    }))
}

/// The pod a controller would create from `template`: its labels and annotations, a generated
/// name, the namespace, and a controller owner reference.
fn pod_from_template(
    template: &Value,
    kind: &str,
    name: &str,
    namespace: &str,
    owner_kind: &str,
) -> Value {
    let template_meta = template.get("metadata").and_then(Value::as_object);
    let mut meta = Map::new();
    // Controllers name pods after themselves; the exact suffix is the API server's choice.
    let base = if name.is_empty() {
        kind.to_lowercase()
    } else {
        name.to_string()
    };
    meta.insert("generateName".into(), Value::from(format!("{base}-")));
    meta.insert("namespace".into(), Value::from(namespace));
    for key in ["labels", "annotations"] {
        if let Some(v) = template_meta
            .and_then(|m| m.get(key))
            .filter(|v| v.is_object())
        {
            meta.insert(key.into(), v.clone());
        }
    }
    let owner_api = match owner_kind {
        "Job" => "batch/v1",
        _ => "apps/v1",
    };
    meta.insert(
        "ownerReferences".into(),
        json!([{
            "apiVersion": owner_api,
            "kind": owner_kind,
            "name": base,
            "controller": true,
            "blockOwnerDeletion": true,
        }]),
    );
    let spec = template.get("spec").cloned().unwrap_or_else(|| json!({}));
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec})
}

fn set_namespace(pod: &mut Value, namespace: &str) {
    if let Some(obj) = pod.as_object_mut() {
        let meta = obj.entry("metadata").or_insert_with(|| json!({}));
        if let Some(meta) = meta.as_object_mut() {
            meta.insert("namespace".into(), Value::from(namespace));
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// The `request.object` of a captured AdmissionReview.
    fn captured(name: &str) -> Value {
        let path = format!(
            "{}/tests/fixtures/admission-reviews/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(&path).unwrap();
        let review: Value = serde_json::from_str(&text).unwrap();
        review["request"]["object"].clone()
    }

    fn images(w: &WorkloadPod) -> Vec<String> {
        w.pod
            .scheduling_containers()
            .map(|(_, c)| c.image.clone().unwrap_or_default())
            .collect()
    }

    #[test]
    fn a_deployment_stands_for_a_replicaset_pod_with_its_template() {
        let w = pod_for(&captured("deployment-create.json"), "default")
            .unwrap()
            .unwrap();
        assert_eq!((w.kind.as_str(), w.name.as_str()), ("Deployment", "web"));
        assert_eq!(w.namespace, "shop");
        assert_eq!(w.pod.controller_kind(), Some("ReplicaSet"));
        assert_eq!(w.pod.labels().get("app").map(String::as_str), Some("web"));
        assert_eq!(w.pod.spec.init_containers.as_ref().map(Vec::len), Some(1));
        assert!(!w.pod.is_bound());
        assert!(!w.is_pod());
        assert_eq!(w.pod_json["metadata"]["namespace"], "shop");
    }

    #[test]
    fn a_daemonset_template_is_evaluated_as_a_bound_daemonset_pod() {
        let w = pod_for(&captured("daemonset-create.json"), "default")
            .unwrap()
            .unwrap();
        assert_eq!(w.pod.controller_kind(), Some("DaemonSet"));
        assert!(w.pod.is_bound());
    }

    #[test]
    fn a_cronjob_stands_for_the_pod_of_its_jobs() {
        let w = pod_for(&captured("cronjob-create.json"), "default")
            .unwrap()
            .unwrap();
        assert_eq!(w.pod.controller_kind(), Some("Job"));
        assert_eq!(images(&w), ["registry.example/shop/cleanup:1.0.3"]);
    }

    #[test]
    fn statefulsets_replicasets_and_jobs_own_their_pods_themselves() {
        for (file, kind) in [
            ("statefulset-create.json", "StatefulSet"),
            ("replicaset-create.json", "ReplicaSet"),
            ("job-create.json", "Job"),
        ] {
            let w = pod_for(&captured(file), "default").unwrap().unwrap();
            assert_eq!(w.kind, kind, "{file}");
            assert_eq!(w.pod.controller_kind(), Some(kind), "{file}");
            assert!(!images(&w).is_empty(), "{file}");
        }
    }

    #[test]
    fn a_pod_is_itself_and_takes_the_fallback_namespace_only_when_it_has_none() {
        let pod = captured("pod-create.json");
        let w = pod_for(&pod, "elsewhere").unwrap().unwrap();
        assert!(w.is_pod());
        assert_eq!(w.namespace, pod["metadata"]["namespace"].as_str().unwrap());
        let bare = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c", "image": "nginx"}]}});
        let w = pod_for(&bare, "team-a").unwrap().unwrap();
        assert_eq!(w.namespace, "team-a");
        assert_eq!(w.pod.metadata.namespace.as_deref(), Some("team-a"));
    }

    #[test]
    fn kinds_without_pods_are_none_and_broken_workloads_are_errors() {
        let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}});
        assert!(pod_for(&svc, "default").unwrap().is_none());
        let err = pod_for(&json!({"metadata": {}}), "default").unwrap_err();
        assert!(matches!(err, WorkloadError::NoKind));
        let no_template = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "d"}, "spec": {}});
        let err = pod_for(&no_template, "default").unwrap_err().to_string();
        assert!(err.contains("Deployment d has no spec.template"), "{err}");
        let bad = json!({"apiVersion": "v1", "kind": "Pod", "spec": {"containers": 3}});
        assert!(matches!(
            pod_for(&bad, "default"),
            Err(WorkloadError::BadPod { .. })
        ));
    }
}
