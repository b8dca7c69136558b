//! A fake Kubernetes API server on 127.0.0.1 (plain HTTP) for the cluster tests, with a
//! kubeconfig pointing at it: it answers LISTs with recorded responses and `?watch=true` with a
//! newline-delimited stream of watch events, as a real API server does.
//!
//! Events are published by the test: the recorded node watch stream one event at a time
//! ([`FakeApiServer::play_recorded`]), or any object ([`FakeApiServer::push`]). Every published
//! event gets the next resourceVersion, and a watch from version V gets every event after V, so
//! a watcher that reconnects misses nothing. The server runs on its own thread and runtime, so
//! tests that block (waiting for a process) do not stall it; dropping it stops everything.
#![allow(clippy::unwrap_used, dead_code)]

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tempfile::TempDir;

/// The longest any one watch response stays open (kube asks for 290 s; tests never need that).
const MAX_WATCH: Duration = Duration::from_secs(60);
/// The longest a held LIST waits for [`FakeApiServer::hold_lists`] to be lifted.
const MAX_HOLD: Duration = Duration::from_secs(30);

pub const NODES: &str = "/api/v1/nodes";
pub const SECRETS: &str = "/api/v1/secrets";
pub const SERVICE_ACCOUNTS: &str = "/api/v1/serviceaccounts";

pub fn nodes_fixture(name: &str) -> PathBuf {
    super::manifest_path("tests/fixtures/nodes").join(name)
}

pub fn cluster_fixture(name: &str) -> Value {
    let path = super::manifest_path("tests/fixtures/cluster").join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

struct Published {
    /// Events in the order published, each tagged with its resource path.
    events: Vec<(&'static str, Value)>,
    /// The last resourceVersion handed out.
    version: u64,
    /// The recorded node watch stream after the LIST, not yet published.
    recorded: VecDeque<Value>,
}

struct Shared {
    lists: HashMap<&'static str, Value>,
    published: Mutex<Published>,
    /// Bumped on every publish; watches wait on it.
    bump: tokio::sync::watch::Sender<u64>,
    /// While true, informer LISTs wait (the startup access check, `limit=1`, is answered).
    hold: tokio::sync::watch::Sender<bool>,
    requests: Mutex<Vec<String>>,
}

/// A running fake API server; stops when dropped.
pub struct FakeApiServer {
    pub addr: SocketAddr,
    pub kubeconfig: PathBuf,
    shared: Arc<Shared>,
    _server: OwnThread,
    _dir: TempDir,
}

impl FakeApiServer {
    /// Serves the seed cluster's recorded node LIST and the Secrets and ServiceAccounts in
    /// tests/fixtures/cluster/; the recorded node watch stream waits for `play_recorded`.
    pub fn start() -> FakeApiServer {
        let node_list: Value = serde_json::from_str(
            &std::fs::read_to_string(nodes_fixture("list-response.json")).unwrap(),
        )
        .unwrap();
        let list_version = version_of(&node_list["metadata"]);
        let recorded = std::fs::read_to_string(nodes_fixture("watch-stream.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            // The stream was recorded from the start; the watch after a LIST sees what follows it.
            .filter(|e| version_of(&e["object"]["metadata"]) > list_version)
            .collect();
        let lists = HashMap::from([
            (NODES, node_list),
            (SECRETS, cluster_fixture("secrets-list.json")),
            (
                SERVICE_ACCOUNTS,
                cluster_fixture("serviceaccounts-list.json"),
            ),
        ]);
        let version = lists
            .values()
            .map(|l| version_of(&l["metadata"]))
            .max()
            .unwrap_or(0);
        let shared = Arc::new(Shared {
            lists,
            published: Mutex::new(Published {
                events: Vec::new(),
                version,
                recorded,
            }),
            bump: tokio::sync::watch::channel(0).0,
            hold: tokio::sync::watch::channel(false).0,
            requests: Mutex::new(Vec::new()),
        });

        let router = axum::Router::new()
            .fallback(handle)
            .with_state(shared.clone());
        let server = OwnThread::serve(router);
        let addr = server.addr;

        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = write_kubeconfig(dir.path(), &format!("http://{addr}"));
        FakeApiServer {
            addr,
            kubeconfig,
            shared,
            _server: server,
            _dir: dir,
        }
    }

    /// Publishes the next `n` events of the recorded node watch stream; returns how many were left.
    pub fn play_recorded(&self, n: usize) -> usize {
        let mut p = self.shared.published.lock().unwrap();
        for _ in 0..n {
            let Some(event) = p.recorded.pop_front() else {
                break;
            };
            publish(&mut p, NODES, event);
        }
        let left = p.recorded.len();
        drop(p);
        self.shared.bump.send_modify(|v| *v += 1);
        left
    }

    /// Publishes a watch event (`ADDED`, `MODIFIED`, `DELETED`) of `object` on `resource`.
    pub fn push(&self, resource: &'static str, kind: &str, object: Value) {
        let mut p = self.shared.published.lock().unwrap();
        publish(&mut p, resource, json!({"type": kind, "object": object}));
        drop(p);
        self.shared.bump.send_modify(|v| *v += 1);
    }

    /// While `held`, informer LISTs get no answer (readiness must wait for them).
    pub fn hold_lists(&self, held: bool) {
        self.shared.hold.send_replace(held);
    }

    /// Every request so far, as `GET /path?query`.
    pub fn requests(&self) -> Vec<String> {
        self.shared.requests.lock().unwrap().clone()
    }
}

/// An axum router served over plain HTTP on 127.0.0.1 from a thread and runtime of its own, so
/// tests that block (waiting for a process) do not stall it. Dropping it ends every open watch
/// and connection.
pub struct OwnThread {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl OwnThread {
    pub fn serve(router: axum::Router) -> OwnThread {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                tokio::select! {
                    _ = axum::serve(listener, router) => {}
                    _ = stopped => {}
                }
            });
            runtime.shutdown_timeout(Duration::from_secs(1));
        });
        OwnThread {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for OwnThread {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A kubeconfig in `dir` whose only context points at `server`.
pub fn write_kubeconfig(dir: &std::path::Path, server: &str) -> PathBuf {
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {server}\n\
         contexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\n\
         current-context: fake\nusers:\n- name: fake\n  user:\n    token: not-a-secret\n"
    );
    let path = dir.join("kubeconfig");
    std::fs::write(&path, text).unwrap();
    path
}

/// A minimal Node as the API server serves it.
pub fn node(name: &str, arch: &str) -> Value {
    json!({
        "kind": "Node",
        "apiVersion": "v1",
        "metadata": {
            "name": name,
            "labels": {
                "kubernetes.io/arch": arch,
                "kubernetes.io/os": "linux",
                "kubernetes.io/hostname": name
            }
        },
        "spec": {},
        "status": {
            "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
            "nodeInfo": {"architecture": arch, "operatingSystem": "linux"}
        }
    })
}

fn version_of(metadata: &Value) -> u64 {
    metadata["resourceVersion"]
        .as_str()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn publish(p: &mut Published, resource: &'static str, mut event: Value) {
    p.version += 1;
    event["object"]["metadata"]["resourceVersion"] = json!(p.version.to_string());
    p.events.push((resource, event));
}

/// `type=X` and `metadata.name=X` field selectors, the ones the tests use.
fn matches(selector: Option<&String>, object: &Value) -> bool {
    let Some(selector) = selector else {
        return true;
    };
    selector.split(',').all(|term| match term.split_once('=') {
        Some(("type", want)) => object["type"].as_str() == Some(want),
        Some(("metadata.name", want)) => object["metadata"]["name"].as_str() == Some(want),
        _ => panic!("fake API server: unsupported field selector {term:?}"),
    })
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    shared.requests.lock().unwrap().push(format!("GET {uri}"));
    let path = uri.path();
    let Some((resource, list)) = shared.lists.get_key_value(path) else {
        let status = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
            "message": format!("the server could not find the requested resource {path}"),
            "reason": "NotFound", "code": 404});
        return (StatusCode::NOT_FOUND, json_body(&status)).into_response();
    };
    let selector = params.get("fieldSelector");
    let watching = matches!(params.get("watch").map(String::as_str), Some("true" | "1"));
    if !watching {
        if params.get("limit").map(String::as_str) != Some("1") {
            let mut held = shared.hold.subscribe();
            let _ = tokio::time::timeout(MAX_HOLD, held.wait_for(|h| !*h)).await;
        }
        let mut body = list.clone();
        let items = body["items"].as_array_mut().unwrap();
        items.retain(|item| matches(selector, item));
        return json_body(&body).into_response();
    }
    let from: u64 = params
        .get("resourceVersion")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(64);
    tokio::spawn(feed_watch(
        shared.clone(),
        resource,
        selector.cloned(),
        from,
        tx,
    ));
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, Infallible>(b), rx))
    });
    Response::builder()
        .header("content-type", "application/json")
        .body(Body::from_stream(stream))
        .unwrap()
}

fn json_body(value: &Value) -> impl IntoResponse {
    (
        [("content-type", "application/json")],
        serde_json::to_vec(value).unwrap(),
    )
}

/// Sends every event after `from` on `resource`, then each new one, until the client goes
/// away, the server stops, or [`MAX_WATCH`] passes.
async fn feed_watch(
    shared: Arc<Shared>,
    resource: &'static str,
    selector: Option<String>,
    mut from: u64,
    tx: tokio::sync::mpsc::Sender<Bytes>,
) {
    let deadline = tokio::time::Instant::now() + MAX_WATCH;
    let mut bump = shared.bump.subscribe();
    loop {
        bump.borrow_and_update();
        let due: Vec<Value> = {
            let p = shared.published.lock().unwrap();
            p.events
                .iter()
                .filter(|(r, e)| *r == resource && version_of(&e["object"]["metadata"]) > from)
                .map(|(_, e)| e.clone())
                .collect()
        };
        for event in due {
            from = version_of(&event["object"]["metadata"]);
            if !matches(selector.as_ref(), &event["object"]) {
                continue;
            }
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
