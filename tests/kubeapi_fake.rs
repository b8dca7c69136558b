//! The stateful fake API server (tests/common/kubeapi.rs) driven by the real kube client: what
//! archgate's controller does against a cluster (gated pods listed and watched by label, JSON
//! patches guarded by a resourceVersion test, Leases, Events) must behave as on a real server.
#![allow(clippy::unwrap_used)]

mod common;

use common::kubeapi::{self, KubeApi};
use futures_util::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Event, Node, Pod};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use serde_json::{json, Value};
use std::time::Duration;

const GATED: &str = "archgate.io/placement=gated";
const REQ: &str = "requiredDuringSchedulingIgnoredDuringExecution";
const TERMS: &str = concat!(
    "/spec/affinity/nodeAffinity/",
    "requiredDuringSchedulingIgnoredDuringExecution/nodeSelectorTerms"
);
const POD_PATH: &str = "/api/v1/namespaces/default/pods";

fn names<K: kube::Resource>(items: Vec<K>) -> Vec<String> {
    items
        .iter()
        .map(|o| o.meta().name.clone().unwrap())
        .collect()
}

async fn client(api: &KubeApi) -> kube::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let kubeconfig = kube::config::Kubeconfig::read_from(&api.kubeconfig).unwrap();
    let options = kube::config::KubeConfigOptions::default();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .unwrap();
    kube::Client::try_from(config).unwrap()
}

/// A pod held by archgate's scheduling gate, with one required node affinity term.
fn gated_pod(name: &str) -> Pod {
    let mut pod = kubeapi::pod("default", name, "nginx:1.27");
    pod["metadata"]["labels"] = json!({"archgate.io/placement": "gated"});
    pod["spec"]["schedulingGates"] = json!([{"name": "archgate.io/placement"}]);
    pod["spec"]["affinity"] = json!({"nodeAffinity": {REQ: {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]}]}
    ]}}});
    serde_json::from_value(pod).unwrap()
}

/// The API error `result` must be, with `code` and `reason`.
fn refused<T: std::fmt::Debug>(
    result: Result<T, kube::Error>,
    code: u16,
    reason: &str,
) -> kube::core::ErrorResponse {
    match result {
        Err(kube::Error::Api(e)) if e.code == code && e.reason == reason => e,
        other => panic!("expected {code} {reason}, got {other:?}"),
    }
}

/// The next watcher event that is not part of the initial listing, within 10 s.
async fn next_change<S>(events: &mut S) -> watcher::Event<Pod>
where
    S: futures_util::Stream<Item = Result<watcher::Event<Pod>, watcher::Error>> + Unpin,
{
    tokio::time::timeout(Duration::from_secs(10), events.next())
        .await
        .expect("no watch event within 10 s")
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn gated_pod_is_listed_watched_and_released_by_json_patch() {
    let server = KubeApi::start();
    let client = client(&server).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let all: Api<Pod> = Api::all(client.clone());

    let created = pods
        .create(&PostParams::default(), &gated_pod("web"))
        .await
        .unwrap();
    assert!(created.metadata.uid.is_some() && created.metadata.creation_timestamp.is_some());
    server.create(POD_PATH, kubeapi::pod("default", "plain", "nginx"));
    let listed = all
        .list(&ListParams::default().labels(GATED))
        .await
        .unwrap();
    assert_eq!(names(listed.items), ["web"]);
    let one = all.list(&ListParams::default().limit(1)).await.unwrap();
    assert_eq!(one.items.len(), 1);
    assert!(
        one.metadata.continue_.is_some(),
        "a limited LIST says there is more"
    );

    let mut events = watcher(all.clone(), watcher::Config::default().labels(GATED)).boxed();
    let mut initial = Vec::new();
    loop {
        match next_change(&mut events).await {
            watcher::Event::InitApply(p) => initial.push(p.metadata.name.unwrap()),
            watcher::Event::InitDone => break,
            _ => {}
        }
    }
    assert_eq!(initial, ["web"]);

    // archgate's release: add a requirement to the term, drop the gate, only if nothing changed.
    let version = created.metadata.resource_version.clone().unwrap();
    let release = |version: &str| -> Patch<Value> {
        let ops = json!([
            {"op": "test", "path": "/metadata/resourceVersion", "value": version},
            {"op": "add", "path": format!("{TERMS}/0/matchExpressions/-"),
             "value": {"key": "kubernetes.io/arch", "operator": "In", "values": ["arm64"]}},
            {"op": "remove", "path": "/spec/schedulingGates"}
        ]);
        Patch::Json(serde_json::from_value(ops).unwrap())
    };
    let released = pods
        .patch("web", &PatchParams::default(), &release(&version))
        .await
        .unwrap();
    assert!(released.spec.as_ref().unwrap().scheduling_gates.is_none());
    assert_ne!(
        released.metadata.resource_version.as_deref(),
        Some(version.as_str())
    );
    match next_change(&mut events).await {
        watcher::Event::Apply(p) => {
            assert_eq!(
                p.metadata.resource_version,
                released.metadata.resource_version
            );
            assert!(p.spec.unwrap().scheduling_gates.is_none());
        }
        other => panic!("expected Apply after the patch, got {other:?}"),
    }

    // The same patch again: the resourceVersion test fails, as on a real server (422).
    let pp = PatchParams::default();
    refused(
        pods.patch("web", &pp, &release(&version)).await,
        422,
        "Invalid",
    );

    // Gates can only be removed after creation.
    let add_gate: Patch<Value> = Patch::Json(
        serde_json::from_value(
            json!([{"op": "add", "path": "/spec/schedulingGates", "value": [{"name": "again"}]}]),
        )
        .unwrap(),
    );
    let gate = refused(pods.patch("web", &pp, &add_gate).await, 422, "Invalid");
    assert_eq!(
        gate.message,
        "Pod \"web\" is invalid: spec.schedulingGates[0].name: Forbidden: \
         only deletion is allowed, but found new scheduling gate 'again'"
    );
    // Without gates the node selector and affinity are immutable again.
    let affinity: Patch<Value> = Patch::Merge(json!({"spec": {"nodeSelector": {"gpu": "none"}}}));
    let frozen = refused(pods.patch("web", &pp, &affinity).await, 422, "Invalid");
    let changed = "spec: Forbidden: pod updates may not change fields other than";
    assert!(frozen.message.contains(changed), "{frozen:?}");

    // Dropping the label takes the pod out of the watcher's selector: it sees a Delete.
    let unlabel: Patch<Value> =
        Patch::Merge(json!({"metadata": {"labels": {"archgate.io/placement": null}}}));
    pods.patch("web", &pp, &unlabel).await.unwrap();
    match next_change(&mut events).await {
        watcher::Event::Delete(p) => assert_eq!(p.metadata.name.as_deref(), Some("web")),
        other => panic!("expected Delete after unlabelling, got {other:?}"),
    }
    let requests = server.requests();
    assert!(
        requests
            .iter()
            .any(|r| r.starts_with("GET /api/v1/pods?") && r.contains("watch=true")),
        "{requests:?}"
    );
    assert!(requests
        .iter()
        .any(|r| r.starts_with("PATCH /api/v1/namespaces/default/pods/web")));
}

#[tokio::test]
async fn failed_patches_and_missing_pods() {
    let server = KubeApi::start();
    let pods: Api<Pod> = Api::namespaced(client(&server).await, "default");
    server.create(POD_PATH, kubeapi::pod("default", "p", "busybox"));
    server.set_fail_patches(1);
    let label: Patch<Value> = Patch::Merge(json!({"metadata": {"labels": {"a": "b"}}}));
    let pp = PatchParams::default();
    refused(pods.patch("p", &pp, &label).await, 409, "Conflict");
    pods.patch("p", &pp, &label).await.unwrap();
    assert_eq!(
        server.get("/api/v1/namespaces/default/pods/p").unwrap()["metadata"]["labels"]["a"],
        "b"
    );

    let missing = refused(pods.get("nope").await, 404, "NotFound");
    assert_eq!(missing.message, "pods \"nope\" not found");
    let again: Pod = serde_json::from_value(kubeapi::pod("default", "p", "x")).unwrap();
    refused(
        pods.create(&PostParams::default(), &again).await,
        409,
        "AlreadyExists",
    );

    server.delete("/api/v1/namespaces/default/pods/p");
    assert!(server.list("/api/v1/pods").is_empty());
}

#[tokio::test]
async fn leases_replace_with_optimistic_concurrency() {
    let server = KubeApi::start();
    let leases: Api<Lease> = Api::namespaced(client(&server).await, "archgate");
    let lease: Lease = serde_json::from_value(json!({
        "metadata": {"name": "archgate-controller"},
        "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15}
    }))
    .unwrap();
    let created = leases.create(&PostParams::default(), &lease).await.unwrap();
    let mut mine = leases.get("archgate-controller").await.unwrap();
    assert_eq!(
        mine.metadata.resource_version,
        created.metadata.resource_version
    );
    mine.spec.as_mut().unwrap().holder_identity = Some("b".into());
    let (name, pp) = ("archgate-controller", PostParams::default());
    let replaced = leases.replace(name, &pp, &mine).await.unwrap();
    assert_eq!(replaced.spec.unwrap().holder_identity.as_deref(), Some("b"));

    // `mine` still carries the old resourceVersion; without one a Lease is not replaced at all.
    let conflict = refused(leases.replace(name, &pp, &mine).await, 409, "Conflict");
    mine.metadata.resource_version = None;
    refused(leases.replace(name, &pp, &mine).await, 422, "Invalid");
    // A PUT creates a missing Lease, as the real registry does.
    mine.metadata.name = Some("other".into());
    assert!(leases.replace("other", &pp, &mine).await.is_ok());
    assert_eq!(
        conflict.message,
        "Operation cannot be fulfilled on leases.coordination.k8s.io \"archgate-controller\": the \
         object has been modified; please apply your changes to the latest version and try again"
    );
}

#[tokio::test]
async fn events_are_created_with_generated_names_and_nodes_are_seeded() {
    let server = KubeApi::start();
    let client = client(&server).await;
    let events: Api<Event> = Api::namespaced(client.clone(), "default");
    let event: Event = serde_json::from_value(json!({
        "metadata": {"generateName": "web."},
        "involvedObject": {"kind": "Pod", "namespace": "default", "name": "web"},
        "reason": "Placed", "message": "placed on arm64", "type": "Normal"
    }))
    .unwrap();
    let created = events.create(&PostParams::default(), &event).await.unwrap();
    let name = created.metadata.name.unwrap();
    assert!(
        name.starts_with("web.") && name.len() == "web.".len() + 5,
        "{name}"
    );
    assert_eq!(created.metadata.namespace.as_deref(), Some("default"));
    let by_object = ListParams::default().fields("involvedObject.name=web,type=Normal");
    assert_eq!(events.list(&by_object).await.unwrap().items.len(), 1);

    let nodes: Api<Node> = Api::all(client);
    let listed = nodes.list(&ListParams::default()).await.unwrap();
    assert_eq!(listed.items.len(), server.list("/api/v1/nodes").len());
    assert!(listed.items.len() > 1);
    let control_plane = ListParams::default().labels("node-role.kubernetes.io/control-plane");
    let control_plane = names(nodes.list(&control_plane).await.unwrap().items);
    assert!(
        control_plane.contains(&"bruenor".to_string()),
        "{control_plane:?}"
    );
}
