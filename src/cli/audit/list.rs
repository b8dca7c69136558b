//! The audit's reads of the cluster: paginated LISTs (`limit` + `continue`), each page turned
//! into the few facts the audit needs before the next is fetched, so a big cluster is never held
//! whole. Every failure names the verb, the resource and the scope that failed.

use crate::audit::{ObjRef, PodFacts, WorkloadFacts};
use crate::cluster::client::ApiFailure;
use kube::api::{Api, ApiResource, DynamicObject, ListParams};
use kube::core::GroupVersionKind;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::fmt::Debug;

/// Items per LIST page (kubectl's default).
const PAGE: u32 = 500;

/// A resource the audit lists.
#[derive(Debug, Clone, Copy)]
pub struct Resource {
    /// The API group: `apps`, `batch`, or empty for the core group.
    pub group: &'static str,
    /// The API version within the group: `v1`.
    pub version: &'static str,
    /// The kind, as owner references and findings name it: `Deployment`.
    pub kind: &'static str,
    /// The lowercase plural in the resource's URL: `deployments`.
    pub plural: &'static str,
}

/// The workload kinds, parents before the kinds they own (owner chains resolve either way).
pub const WORKLOADS: [Resource; 6] = [
    Resource::apps("Deployment", "deployments"),
    Resource::apps("StatefulSet", "statefulsets"),
    Resource::apps("DaemonSet", "daemonsets"),
    Resource::apps("ReplicaSet", "replicasets"),
    Resource::batch("CronJob", "cronjobs"),
    Resource::batch("Job", "jobs"),
];

impl Resource {
    /// Pods (the core group).
    pub const PODS: Resource = Resource {
        group: "",
        version: "v1",
        kind: "Pod",
        plural: "pods",
    };

    const fn apps(kind: &'static str, plural: &'static str) -> Resource {
        Resource {
            group: "apps",
            version: "v1",
            kind,
            plural,
        }
    }

    const fn batch(kind: &'static str, plural: &'static str) -> Resource {
        Resource {
            group: "batch",
            version: "v1",
            kind,
            plural,
        }
    }

    fn api_resource(&self) -> ApiResource {
        ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk(self.group, self.version, self.kind),
            self.plural,
        )
    }

    /// `pods`, `deployments.apps`: how the API server names a resource in RBAC messages.
    fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
}

/// Why a LIST failed.
#[derive(Debug, thiserror::Error)]
pub enum ListError {
    /// RBAC refused the LIST (HTTP 403).
    #[error("cannot {verb} {resource} {scope}: RBAC forbids it; grant the kubeconfig's user `{verb}` on {resource} (a ClusterRole for the whole cluster, a Role for -n NAMESPACE)")]
    Forbidden {
        /// What was refused: always `list`, the audit's only verb.
        verb: &'static str,
        /// The resource as RBAC names it: `pods`, `deployments.apps`.
        resource: String,
        /// `at cluster scope` or `in namespace NS`.
        scope: String,
        /// The API server's answer.
        #[source]
        source: ApiFailure,
    },
    /// The API server did not accept the credentials (HTTP 401).
    #[error("cannot {verb} {resource} {scope}: the API server rejected the credentials; check the kubeconfig's user (an expired token?)")]
    Unauthorized {
        /// What was refused: always `list`, the audit's only verb.
        verb: &'static str,
        /// The resource as RBAC names it: `pods`, `deployments.apps`.
        resource: String,
        /// `at cluster scope` or `in namespace NS`.
        scope: String,
        /// The API server's answer.
        #[source]
        source: ApiFailure,
    },
    /// Any other failure: the API server unreachable, a timeout, a 5xx.
    #[error("cannot {verb} {resource} {scope}: is the API server reachable from here and the kubeconfig's server address right?")]
    Failed {
        /// What failed: always `list`, the audit's only verb.
        verb: &'static str,
        /// The resource as RBAC names it: `pods`, `deployments.apps`.
        resource: String,
        /// `at cluster scope` or `in namespace NS`.
        scope: String,
        /// The transport error or the API server's answer.
        #[source]
        source: ApiFailure,
    },
}

impl ListError {
    /// True when RBAC refused the request (as opposed to the server being unreachable).
    pub fn is_forbidden(&self) -> bool {
        matches!(self, ListError::Forbidden { .. })
    }
}

/// "at cluster scope" or "in namespace NS".
pub fn scope(namespace: Option<&str>) -> String {
    match namespace {
        Some(ns) => format!("in namespace {ns}"),
        None => "at cluster scope".to_string(),
    }
}

fn failure(e: kube::Error, resource: String, namespace: Option<&str>) -> ListError {
    let verb = "list";
    let scope = scope(namespace);
    let code = match &e {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    };
    let source = ApiFailure(Box::new(e));
    match code {
        Some(403) => ListError::Forbidden {
            verb,
            resource,
            scope,
            source,
        },
        Some(401) => ListError::Unauthorized {
            verb,
            resource,
            scope,
            source,
        },
        _ => ListError::Failed {
            verb,
            resource,
            scope,
            source,
        },
    }
}

/// Every object `api` lists, page by page; `each` sees them one at a time.
pub async fn pages<K>(
    api: Api<K>,
    params: ListParams,
    resource: String,
    namespace: Option<&str>,
    mut each: impl FnMut(K),
) -> Result<(), ListError>
where
    K: Clone + DeserializeOwned + Debug,
{
    let mut params = params.limit(PAGE);
    loop {
        let list = api
            .list(&params)
            .await
            .map_err(|e| failure(e, resource.clone(), namespace))?;
        let next = list.metadata.continue_.filter(|c| !c.is_empty());
        list.items.into_iter().for_each(&mut each);
        match next {
            Some(token) => params.continue_token = Some(token),
            None => return Ok(()),
        }
    }
}

/// Typed API access for `K` in `namespace`, or across all namespaces.
pub fn api<K>(client: &kube::Client, namespace: Option<&str>) -> Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    K::DynamicType: Default,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// Every object of `resource` as JSON with its `kind` and `apiVersion` (list items come without
/// them) and without its managed fields.
pub async fn objects(
    client: &kube::Client,
    resource: &Resource,
    namespace: Option<&str>,
    mut each: impl FnMut(Value),
) -> Result<(), ListError> {
    let ar = resource.api_resource();
    let api: Api<DynamicObject> = match namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
        None => Api::all_with(client.clone(), &ar),
    };
    pages(
        api,
        ListParams::default(),
        resource.qualified(),
        namespace,
        |o| {
            if let Ok(mut v) = serde_json::to_value(o) {
                if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
                    m.remove("managedFields");
                }
                v["kind"] = Value::from(resource.kind);
                v["apiVersion"] = Value::from(resource.api_version());
                each(v);
            }
        },
    )
    .await
}

/// The object as it would be created today: without status, and for a pod without the node
/// the scheduler bound it to.
pub fn as_created(mut object: Value) -> Value {
    if let Some(o) = object.as_object_mut() {
        o.remove("status");
    }
    if let Some(spec) = object.get_mut("spec").and_then(Value::as_object_mut) {
        if object_kind_is_pod(spec) {
            spec.remove("nodeName");
        }
    }
    object
}

fn object_kind_is_pod(spec: &serde_json::Map<String, Value>) -> bool {
    spec.contains_key("containers")
}

/// Who pulls a pod's images: its pull secrets and service account.
pub fn pull_context(pod: &Value) -> crate::platforms::PullContext {
    let secrets = pod
        .pointer("/spec/imagePullSecrets")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|r| r.get("name").and_then(Value::as_str))
        .filter(|n| !n.is_empty())
        .map(str::to_string)
        .collect();
    let account = text(pod, "/spec/serviceAccountName");
    crate::platforms::PullContext {
        namespace: text(pod, "/metadata/namespace"),
        image_pull_secrets: secrets,
        service_account: if account.is_empty() {
            "default".into()
        } else {
            account
        },
    }
}

fn text(v: &Value, pointer: &str) -> String {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// The controller owner reference of an object (the first owner if none is marked controller).
pub fn owner(object: &Value) -> Option<ObjRef> {
    let refs = object.pointer("/metadata/ownerReferences")?.as_array()?;
    let chosen = refs
        .iter()
        .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
        .or_else(|| refs.first())?;
    Some(ObjRef {
        kind: text(chosen, "/kind"),
        name: text(chosen, "/name"),
    })
}

/// A pod's facts, from the pod as listed.
pub fn pod_facts(pod: &Value) -> PodFacts {
    let images = ["/spec/initContainers", "/spec/containers"]
        .iter()
        .filter_map(|p| pod.pointer(p).and_then(Value::as_array))
        .flatten()
        .filter_map(|c| c.get("image").and_then(Value::as_str))
        .map(str::to_string)
        .collect();
    let statuses = ["/status/initContainerStatuses", "/status/containerStatuses"]
        .iter()
        .filter_map(|p| pod.pointer(p).and_then(Value::as_array))
        .flatten();
    let (mut crash_looping, mut restarts) = (false, 0u32);
    for s in statuses {
        crash_looping |=
            s.pointer("/state/waiting/reason").and_then(Value::as_str) == Some("CrashLoopBackOff");
        let count = s.get("restartCount").and_then(Value::as_u64).unwrap_or(0);
        restarts = restarts.saturating_add(u32::try_from(count).unwrap_or(u32::MAX));
    }
    PodFacts {
        namespace: text(pod, "/metadata/namespace"),
        name: text(pod, "/metadata/name"),
        node: Some(text(pod, "/spec/nodeName")).filter(|n| !n.is_empty()),
        owner: owner(pod),
        images,
        phase: text(pod, "/status/phase"),
        crash_looping,
        restarts,
        mirror: pod
            .pointer("/metadata/annotations/kubernetes.io~1config.mirror")
            .is_some(),
    }
}

/// A workload's facts; the template is decoded only for workloads nothing owns, the ones the
/// audit judges (a Deployment's old ReplicaSets are its history, not workloads).
pub fn workload_facts(object: &Value) -> Result<WorkloadFacts, crate::workload::WorkloadError> {
    let owner = owner(object);
    let namespace = text(object, "/metadata/namespace");
    let (template, images) = match owner {
        Some(_) => (None, Vec::new()),
        None => match crate::workload::pod_for(object, &namespace)? {
            Some(wp) => {
                let images = wp
                    .pod
                    .scheduling_containers()
                    .filter_map(|(_, c)| c.image.clone())
                    .collect();
                (Some(wp.pod), images)
            }
            None => (None, Vec::new()),
        },
    };
    Ok(WorkloadFacts {
        kind: text(object, "/kind"),
        namespace,
        name: text(object, "/metadata/name"),
        owner,
        template,
        images,
        decision: None,
    })
}
