//! Kubernetes Events on pods, written by the placement controller (the webhook never writes:
//! its `sideEffects: None` stays true). `kubectl describe pod` shows them.
//!
//! An Event that cannot be written is logged and dropped: it explains a decision, it never makes
//! one, so nothing waits on it.

use chrono::Utc;
use k8s_openapi::api::core::v1::{Event, ObjectReference};
use kube::api::{Api, PostParams};

/// Whether an Event reports ordinary progress or something a person should look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// Ordinary progress: a pod gated, or placed.
    Normal,
    /// Something a person should look at: a misplaced pod, a pod the controller gave up on.
    Warning,
}

/// The pod an Event is about.
#[derive(Debug, Clone)]
pub struct PodRef {
    /// The pod's namespace, where the Event is written.
    pub namespace: String,
    /// The pod's name.
    pub name: String,
    /// The pod's `metadata.uid`, so the Event is about this pod and not a later one of the same
    /// name; None when unknown.
    pub uid: Option<String>,
}

/// Writes Events as `archgate` from one replica.
#[derive(Clone)]
pub struct EventRecorder {
    client: kube::Client,
    instance: String,
}

impl EventRecorder {
    /// A recorder reporting as `instance` (this replica's name).
    pub fn new(client: kube::Client, instance: &str) -> EventRecorder {
        EventRecorder {
            client,
            instance: instance.to_string(),
        }
    }

    /// Writes one Event on `pod`; failures are logged, never returned.
    pub async fn publish(&self, pod: &PodRef, kind: EventType, reason: &str, message: &str) {
        let event = event(pod, kind, reason, message, &self.instance);
        let api: Api<Event> = Api::namespaced(self.client.clone(), &pod.namespace);
        if let Err(e) = api.create(&PostParams::default(), &event).await {
            tracing::warn!(namespace = %pod.namespace, pod = %pod.name, reason, error = %e, "cannot write the Event");
        }
    }
}

/// The Event object, as `kubectl describe` reads it.
fn event(pod: &PodRef, kind: EventType, reason: &str, message: &str, instance: &str) -> Event {
    let now = k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(Utc::now());
    // The API server caps an Event's message at 1 KiB.
    let message: String = message.chars().take(1000).collect();
    Event {
        metadata: kube::api::ObjectMeta {
            generate_name: Some(format!("{}.", pod.name)),
            namespace: Some(pod.namespace.clone()),
            ..Default::default()
        },
        involved_object: ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Pod".into()),
            name: Some(pod.name.clone()),
            namespace: Some(pod.namespace.clone()),
            uid: pod.uid.clone(),
            ..ObjectReference::default()
        },
        reason: Some(reason.into()),
        message: Some(message),
        type_: Some(
            match kind {
                EventType::Normal => "Normal",
                EventType::Warning => "Warning",
            }
            .into(),
        ),
        source: Some(k8s_openapi::api::core::v1::EventSource {
            component: Some("archgate".into()),
            host: None,
        }),
        reporting_component: Some("archgate.io/placement-controller".into()),
        reporting_instance: Some(instance.into()),
        first_timestamp: Some(now.clone()),
        last_timestamp: Some(now),
        count: Some(1),
        ..Event::default()
    }
}
