//! A stateful fake Kubernetes API server on 127.0.0.1 (plain HTTP), with a kubeconfig pointing
//! at it, for tests that run the real `archgate serve` against something that behaves like a
//! cluster: objects are created, read, replaced, patched and deleted, and watched.
//!
//! Every path of the shapes `/api/v1/[namespaces/NS/]RESOURCE[/NAME[/SUB]]` and
//! `/apis/GROUP/VERSION/[namespaces/NS/]RESOURCE[/NAME[/SUB]]` is served from one store keyed by
//! (collection prefix, resource, namespace, name), seeded with the seed cluster's Nodes. One
//! resourceVersion counter is bumped by every write. LISTs and WATCHes honour label and field
//! selectors, and a watcher sees an object leave (DELETED) or enter (ADDED) its label selector as
//! the real server's watch cache shows it. Pod updates are refused as the real `ValidatePodUpdate`
//! refuses them ([`validation`]); as in the real registry, a PUT creates a missing Lease or Event
//! and a Lease is only replaced with a resourceVersion. The server runs on its own thread and
//! runtime, so tests that block do not stall it; dropping it stops everything.
//!
//! Not modelled: defaulting and admission (a Pod is stored as sent), graceful deletion (DELETE
//! removes at once), server-side apply, strategic merge (treated as an RFC 7386 merge patch),
//! watch bookmarks and `410 Gone`.
#![allow(clippy::unwrap_used, dead_code)]

mod select;
mod store;
pub mod validation;

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use select::{watch_event, Selector};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use store::{key, Fail, Store};
use tempfile::TempDir;
use validation::put;

/// The longest any one watch stays open (kube asks for up to 290 s; tests never need that).
const MAX_WATCH: Duration = Duration::from_secs(60);

/// (collection prefix `/api/v1` or `/apis/GROUP/VERSION`, resource plural)
type Coll = (String, String);

/// A parsed request path; `ns` is empty for cluster-scoped paths and all-namespace collections.
#[derive(Debug, Clone)]
struct Target {
    coll: Coll,
    ns: String,
    name: Option<String>,
    sub: Option<String>,
}

fn parse_path(path: &str) -> Option<Target> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (prefix, rest) = match segs.as_slice() {
        ["api", v, rest @ ..] => (format!("/api/{v}"), rest),
        ["apis", g, v, rest @ ..] => (format!("/apis/{g}/{v}"), rest),
        _ => return None,
    };
    let (ns, rest) = match rest {
        ["namespaces", ns, rest @ ..] if !rest.is_empty() => (ns.to_string(), rest),
        _ => (String::new(), rest),
    };
    let (resource, name, sub) = match rest {
        [r] => (r, None, None),
        [r, n] => (r, Some(n.to_string()), None),
        [r, n, s] => (r, Some(n.to_string()), Some(s.to_string())),
        _ => return None,
    };
    let coll = (prefix, resource.to_string());
    Some(Target {
        coll,
        ns,
        name,
        sub,
    })
}

fn group(coll: &Coll) -> &str {
    coll.0
        .strip_prefix("/apis/")
        .map_or("", |gv| gv.split('/').next().unwrap_or(""))
}

/// `pods`, `leases.coordination.k8s.io`: how the real server names a resource in messages.
fn qualified(coll: &Coll) -> String {
    match group(coll) {
        "" => coll.1.clone(),
        g => format!("{}.{g}", coll.1),
    }
}

fn kind_of(resource: &str) -> Option<&'static str> {
    Some(match resource {
        "pods" => "Pod",
        "nodes" => "Node",
        "events" => "Event",
        "leases" => "Lease",
        "namespaces" => "Namespace",
        "secrets" => "Secret",
        "serviceaccounts" => "ServiceAccount",
        "configmaps" => "ConfigMap",
        _ => return None,
    })
}

struct Shared {
    store: Mutex<Store>,
    /// Bumped after every write; watches wait on it.
    bump: tokio::sync::watch::Sender<u64>,
    requests: Mutex<Vec<String>>,
}

impl Shared {
    fn write<T>(&self, f: impl FnOnce(&mut Store) -> T) -> T {
        let out = f(&mut self.store.lock().unwrap());
        self.bump.send_modify(|v| *v += 1);
        out
    }
}

/// A running stateful fake API server; stops when dropped.
pub struct KubeApi {
    pub addr: SocketAddr,
    pub kubeconfig: PathBuf,
    shared: Arc<Shared>,
    _server: super::apiserver::OwnThread,
    _dir: TempDir,
}

fn target(path: &str) -> Target {
    parse_path(path).unwrap_or_else(|| panic!("fake API server: not an API path: {path}"))
}

impl KubeApi {
    /// Serves the seed cluster's Nodes (tests/fixtures/nodes/list-response.json) and nothing else.
    pub fn start() -> KubeApi {
        let path = super::apiserver::nodes_fixture("list-response.json");
        let list: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let mut store = Store::default();
        let nodes = target("/api/v1/nodes");
        let version = |v: &Value| {
            v["resourceVersion"]
                .as_str()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        store.version = version(&list["metadata"]);
        for mut node in list["items"].as_array().unwrap().iter().cloned() {
            store.version = store.version.max(version(&node["metadata"]));
            put(&mut node, "kind", &json!("Node"));
            put(&mut node, "apiVersion", &json!("v1"));
            let name = node["metadata"]["name"].as_str().unwrap().to_string();
            store.objects.insert(key(&nodes, &name), node);
        }
        let shared = Arc::new(Shared {
            store: Mutex::new(store),
            bump: tokio::sync::watch::channel(0).0,
            requests: Mutex::new(Vec::new()),
        });

        let router = axum::Router::new()
            .fallback(handle)
            .with_state(shared.clone());
        let server = super::apiserver::OwnThread::serve(router);
        let addr = server.addr;
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = super::apiserver::write_kubeconfig(dir.path(), &format!("http://{addr}"));
        KubeApi {
            addr,
            kubeconfig,
            shared,
            _server: server,
            _dir: dir,
        }
    }

    /// Creates `object` in a collection (`/api/v1/namespaces/default/pods`) as a POST would.
    pub fn create(&self, collection_path: &str, object: Value) -> Value {
        let t = target(collection_path);
        self.shared
            .write(|s| s.create(&t, object))
            .unwrap_or_else(|f| panic!("fake API server: create in {collection_path}: {f:?}"))
    }

    /// The object at `item_path` (`/api/v1/namespaces/default/pods/x`), if there is one.
    pub fn get(&self, item_path: &str) -> Option<Value> {
        let t = target(item_path);
        let store = self.shared.store.lock().unwrap();
        store
            .objects
            .get(&key(&t, t.name.as_deref().unwrap_or("")))
            .cloned()
    }

    /// Deletes the object at `item_path` (watchers see DELETED); panics if there is none.
    pub fn delete(&self, item_path: &str) {
        let t = target(item_path);
        let name = t.name.clone().unwrap_or_default();
        self.shared
            .write(|s| s.delete(&t, &name))
            .unwrap_or_else(|f| panic!("fake API server: delete {item_path}: {f:?}"));
    }

    /// Every object in a collection (all namespaces for `/api/v1/pods`).
    pub fn list(&self, collection_path: &str) -> Vec<Value> {
        let t = target(collection_path);
        let store = self.shared.store.lock().unwrap();
        store.items(&t, &Selector::default()).cloned().collect()
    }

    /// Every request so far, as `METHOD /path?query`.
    pub fn requests(&self) -> Vec<String> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// LISTs and WATCHes of `resource` (a plural: `pods`) are refused with 403, as RBAC does.
    pub fn forbid(&self, resource: &str) {
        self.shared
            .store
            .lock()
            .unwrap()
            .forbidden
            .push(resource.to_string());
    }

    /// No LIST page holds more than `n` items, so clients must follow `continue`.
    pub fn set_max_page(&self, n: usize) {
        self.shared.store.lock().unwrap().max_page = Some(n);
    }

    /// Creates each item of a `kind: List` in its collection (by its apiVersion, kind and
    /// namespace), as `kubectl create -f` would.
    pub fn create_all(&self, list: &Value) {
        for item in list["items"].as_array().unwrap() {
            let api_version = item["apiVersion"].as_str().unwrap();
            let prefix = if api_version.contains('/') {
                format!("/apis/{api_version}")
            } else {
                format!("/api/{api_version}")
            };
            let plural = format!("{}s", item["kind"].as_str().unwrap().to_lowercase());
            let ns = item["metadata"]["namespace"].as_str().unwrap();
            self.create(&format!("{prefix}/namespaces/{ns}/{plural}"), item.clone());
        }
    }

    /// The next `n` PATCH requests to pods fail with 409 Conflict.
    pub fn set_fail_patches(&self, n: usize) {
        self.shared.store.lock().unwrap().fail_patches = n;
    }
}

/// The AdmissionReview the API server sends for creating `pod`.
pub fn create_review(pod: &Value) -> Value {
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "0d2ad8f1-2a55-4b1b-9b6e-6f1f3d0c8a11",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
            "requestResource": {"group": "", "version": "v1", "resource": "pods"},
            "name": pod["metadata"]["name"],
            "namespace": pod["metadata"]["namespace"],
            "operation": "CREATE",
            "userInfo": {"username": "kubernetes-admin"},
            "object": pod,
            "oldObject": null,
            "dryRun": false,
            "options": {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1"}
        }
    })
}

/// A minimal valid Pod with one container `app` running `image`.
pub fn pod(namespace: &str, name: &str, image: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"containers": [{"name": "app", "image": image}]}})
}

fn json_body(value: &Value) -> impl IntoResponse {
    (
        [("content-type", "application/json")],
        serde_json::to_vec(value).unwrap(),
    )
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    headers: HeaderMap,
    uri: Uri,
    Query(params): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    shared
        .requests
        .lock()
        .unwrap()
        .push(format!("{method} {uri}"));
    let Some(t) = parse_path(uri.path()) else {
        let message = format!(
            "the server could not find the requested resource {}",
            uri.path()
        );
        return Fail::new(StatusCode::NOT_FOUND, "NotFound", message, json!({})).into_response();
    };
    let watching = matches!(params.get("watch").map(String::as_str), Some("true" | "1"));
    let name = t.name.clone().unwrap_or_default();
    let parsed =
        || serde_json::from_slice::<Value>(&body).map_err(|e| Fail::bad_request(e.to_string()));
    let refused = shared.store.lock().unwrap().forbidden.contains(&t.coll.1);
    if refused && method == Method::GET && t.name.is_none() {
        let verb = if watching { "watch" } else { "list" };
        let scope = if t.ns.is_empty() {
            "at the cluster scope".to_string()
        } else {
            format!("in the namespace {:?}", t.ns)
        };
        let message = format!(
            "{} is forbidden: User \"system:serviceaccount:audit:reader\" cannot {verb} \
             resource {:?} in API group {:?} {scope}",
            qualified(&t.coll),
            t.coll.1,
            group(&t.coll)
        );
        let details = json!({"kind": t.coll.1, "group": group(&t.coll)});
        return Fail::new(StatusCode::FORBIDDEN, "Forbidden", message, details).into_response();
    }
    let result = match (method, t.name.is_some()) {
        (Method::GET, false) if watching => return watch(shared, t, &params),
        (Method::GET, false) => {
            let store = shared.store.lock().unwrap();
            Ok(store.list(&t, &Selector::from_params(&params), &params))
        }
        (Method::GET, true) => {
            let store = shared.store.lock().unwrap();
            store
                .objects
                .get(&key(&t, &name))
                .cloned()
                .ok_or_else(|| Fail::not_found(&t, &name))
        }
        (Method::POST, false) => match parsed().and_then(|obj| shared.write(|s| s.create(&t, obj)))
        {
            Ok(created) => return (StatusCode::CREATED, json_body(&created)).into_response(),
            Err(fail) => Err(fail),
        },
        (Method::PUT, true) => {
            match parsed().and_then(|o| shared.write(|s| s.replace(&t, &name, o))) {
                Ok((true, created)) => {
                    return (StatusCode::CREATED, json_body(&created)).into_response()
                }
                replaced => replaced.map(|(_, object)| object),
            }
        }
        (Method::PATCH, true) => {
            let content_type = headers
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            shared.write(|s| s.patch(&t, &name, content_type, &body))
        }
        (Method::DELETE, true) => shared.write(|s| s.delete(&t, &name)),
        (method, _) => Err(Fail::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            format!("the server does not allow this method on the requested resource ({method})"),
            json!({}),
        )),
    };
    match result {
        Ok(object) => json_body(&object).into_response(),
        Err(fail) => fail.into_response(),
    }
}

fn watch(shared: Arc<Shared>, t: Target, params: &HashMap<String, String>) -> Response {
    let sel = Selector::from_params(params);
    let timeout = params
        .get("timeoutSeconds")
        .and_then(|s| s.parse().ok())
        .map_or(MAX_WATCH, |s| Duration::from_secs(s).min(MAX_WATCH));
    let from: u64 = params
        .get("resourceVersion")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(64);
    tokio::spawn(feed_watch(shared, t, sel, from, timeout, tx));
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, Infallible>(b), rx))
    });
    Response::builder()
        .header("content-type", "application/json")
        .body(Body::from_stream(stream))
        .unwrap()
}

/// Sends every matching change after `from` (from version 0: the current objects as ADDED), then
/// each new one, until the client goes away, the server stops, or `timeout` passes.
async fn feed_watch(
    shared: Arc<Shared>,
    t: Target,
    sel: Selector,
    mut from: u64,
    timeout: Duration,
    tx: tokio::sync::mpsc::Sender<Bytes>,
) {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut bump = shared.bump.subscribe();
    let mut due: Vec<Value> = Vec::new();
    if from == 0 {
        let store = shared.store.lock().unwrap();
        due.extend(
            store
                .items(&t, &sel)
                .map(|o| json!({"type": "ADDED", "object": o})),
        );
        from = store.version;
    }
    loop {
        bump.borrow_and_update();
        {
            let store = shared.store.lock().unwrap();
            let fresh = store.changes.iter().filter(|c| {
                c.version > from && c.coll == t.coll && (t.ns.is_empty() || c.ns == t.ns)
            });
            due.extend(fresh.filter_map(|c| watch_event(c, &sel)));
            from = store.version;
        }
        for event in due.drain(..) {
            let mut line = serde_json::to_vec(&event).unwrap();
            line.push(b'\n');
            if tx.send(Bytes::from(line)).await.is_err() {
                return;
            }
        }
        tokio::select! {
            changed = bump.changed() => if changed.is_err() { return },
            _ = tokio::time::sleep_until(deadline) => return,
            _ = tx.closed() => return,
        }
    }
}
