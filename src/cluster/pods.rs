//! Bound pods, watched, for `archgate_misplaced_pods{namespace}`: a watch of the pods that have
//! a node (`spec.nodeName!=`), each reduced on arrival to the few fields the judgement reads
//! ([`BoundPod`]), their images looked up in the background through the server's platform
//! source, and [`MisplacedPods`] judging them against the node inventory. A pod that becomes
//! misplaced gets one warning log line and one Event.

use super::events::{EventRecorder, EventType, PodRef};
use crate::audit::live::{Became, BoundPod, MisplacedPods};
use crate::image::ImageRef;
use crate::inventory::Inventory;
use crate::platforms::{ImagePlatforms, Lookup, LookupRequest, PlatformSource, PullContext};
use arc_swap::ArcSwap;
use futures_util::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use prometheus::{IntGaugeVec, Opts};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinHandle;

/// Pods the scheduler (or a controller) has bound to a node.
pub const BOUND: &str = "spec.nodeName!=";
/// How often every pod is judged again (the inventory may have changed) and failed lookups are
/// retried.
const SWEEP: Duration = Duration::from_secs(60);
/// Image lookups in flight at once.
const LOOKUPS: usize = 4;

/// What the watch asks the server for at each judgement: its platform source and the policy's
/// `compatible_execution`, both of which a reload may change.
pub struct Current {
    /// Where images are looked up: the server's platform source, as of the last reload.
    pub source: Arc<dyn PlatformSource>,
    /// The policy's `compatible_execution` (arm64 runs arm/v7, amd64 runs 386).
    pub compatible_execution: bool,
}

/// A function giving the [`Current`] source and policy choice.
pub type CurrentFn = Arc<dyn Fn() -> Current + Send + Sync>;

/// The gauge: misplaced pods by namespace.
pub fn gauge(registry: &prometheus::Registry) -> Result<IntGaugeVec, prometheus::Error> {
    let gauge = IntGaugeVec::new(
        Opts::new(
            "archgate_misplaced_pods",
            "Pods bound to a node that cannot run one of their images, by namespace",
        ),
        &["namespace"],
    )?;
    registry.register(Box::new(gauge.clone()))?;
    Ok(gauge)
}

/// The fields of a Pod the judgement reads; None for a pod without a node or name.
pub fn bound_pod(pod: &Pod) -> Option<BoundPod> {
    let spec = pod.spec.as_ref()?;
    let node = spec.node_name.clone().filter(|n| !n.is_empty())?;
    let images = spec
        .init_containers
        .iter()
        .flatten()
        .chain(&spec.containers)
        .filter_map(|c| c.image.clone())
        .collect();
    Some(BoundPod {
        namespace: pod.metadata.namespace.clone()?,
        name: pod.metadata.name.clone()?,
        uid: pod.metadata.uid.clone(),
        node,
        images,
        pull: PullContext {
            namespace: pod.metadata.namespace.clone().unwrap_or_default(),
            image_pull_secrets: spec
                .image_pull_secrets
                .iter()
                .flatten()
                .map(|r| r.name.clone())
                .filter(|n| !n.is_empty())
                .collect(),
            service_account: spec
                .service_account_name
                .clone()
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "default".into()),
        },
        succeeded: pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Succeeded"),
    })
}

/// A running watch of bound pods; stops when dropped.
pub struct MisplacedWatch {
    task: JoinHandle<()>,
}

impl Drop for MisplacedWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl MisplacedWatch {
    /// Watches bound pods in every namespace and keeps `gauge` current; `events`, when given,
    /// writes an Event on each misplaced pod, once, while `leading` is true (or always without
    /// it), so that of several replicas only the placement controller's leader writes.
    pub fn spawn(
        client: kube::Client,
        inventory: Arc<ArcSwap<Inventory>>,
        current: CurrentFn,
        gauge: IntGaugeVec,
        events: Option<EventRecorder>,
        leading: Option<Arc<AtomicBool>>,
    ) -> MisplacedWatch {
        let shell = Shell {
            inventory,
            current,
            gauge,
            events,
            leading,
            evented: HashSet::new(),
            state: MisplacedPods::default(),
            known: HashMap::new(),
            asked: HashSet::new(),
            published: BTreeSet::new(),
            limit: Arc::new(Semaphore::new(LOOKUPS)),
        };
        MisplacedWatch {
            task: tokio::spawn(shell.run(Api::all(client))),
        }
    }
}

struct Shell {
    inventory: Arc<ArcSwap<Inventory>>,
    current: CurrentFn,
    gauge: IntGaugeVec,
    events: Option<EventRecorder>,
    leading: Option<Arc<AtomicBool>>,
    /// Misplaced pods this replica has written an Event on.
    evented: HashSet<(String, String)>,
    state: MisplacedPods,
    /// Platforms of the images looked up so far.
    known: HashMap<String, Arc<ImagePlatforms>>,
    /// Images asked for since the last sweep (in flight, or failed: retried at the sweep).
    asked: HashSet<String>,
    /// Namespaces with a gauge series.
    published: BTreeSet<String>,
    limit: Arc<Semaphore>,
}

impl Shell {
    async fn run(mut self, api: Api<Pod>) {
        let config = watcher::Config::default().fields(BOUND).any_semantic();
        let mut events = std::pin::pin!(watcher::watcher(api, config).default_backoff());
        let (tx, mut found) = mpsc::channel::<(String, Arc<ImagePlatforms>)>(256);
        let mut sweep = tokio::time::interval(SWEEP);
        let mut relist: Option<BTreeSet<(String, String)>> = None;
        let mut synced = false;
        loop {
            tokio::select! {
                event = events.next() => {
                    let Some(event) = event else { return };
                    match event {
                        Ok(event) => self.apply(event, &mut relist, &mut synced, &tx),
                        Err(e) => tracing::warn!(error = %e, "pod watch failed; retrying with backoff (may archgate list and watch pods?)"),
                    }
                }
                Some((image, platforms)) = found.recv() => {
                    self.known.insert(image, platforms);
                    self.judge(None);
                }
                _ = sweep.tick() => if synced {
                    self.asked.clear();
                    let used: HashSet<String> =
                        self.state.images().keys().map(|i| i.to_string()).collect();
                    self.known.retain(|i, _| used.contains(i));
                    self.ask(&tx);
                    // Nodes come and go: every pod is judged against today's inventory.
                    self.judge(None);
                },
            }
        }
    }

    fn apply(
        &mut self,
        event: Event<Pod>,
        relist: &mut Option<BTreeSet<(String, String)>>,
        synced: &mut bool,
        tx: &mpsc::Sender<(String, Arc<ImagePlatforms>)>,
    ) {
        match event {
            Event::Init => *relist = Some(BTreeSet::new()),
            Event::InitApply(pod) => {
                if let Some(b) = bound_pod(&pod) {
                    let key = (b.namespace.clone(), b.name.clone());
                    relist.get_or_insert_default().insert(key);
                    self.state.upsert(b);
                }
            }
            Event::InitDone => {
                let listed = relist.take().unwrap_or_default();
                self.state.retain(&listed);
                *synced = true;
                tracing::info!(
                    pods = self.state.len(),
                    "watching bound pods for misplaced ones"
                );
                self.ask(tx);
                self.judge(None);
            }
            Event::Apply(pod) => {
                let Some(b) = bound_pod(&pod) else { return };
                let (ns, name) = (b.namespace.clone(), b.name.clone());
                self.state.upsert(b);
                if *synced {
                    self.ask(tx);
                    self.judge(Some((&ns, &name)));
                }
            }
            Event::Delete(pod) => {
                if let (Some(ns), Some(name)) = (&pod.metadata.namespace, &pod.metadata.name) {
                    self.state.remove(ns, name);
                    self.publish();
                }
            }
        }
    }

    /// Starts a lookup for each image no pod has had an answer for yet.
    fn ask(&mut self, tx: &mpsc::Sender<(String, Arc<ImagePlatforms>)>) {
        let wanted: Vec<(String, PullContext)> = self
            .state
            .images()
            .into_iter()
            .filter(|(i, _)| !self.known.contains_key(*i) && !self.asked.contains(*i))
            .map(|(i, p)| (i.to_string(), p.clone()))
            .collect();
        if wanted.is_empty() {
            return;
        }
        let source = (self.current)().source;
        for (image, pull) in wanted {
            self.asked.insert(image.clone());
            let (source, tx, limit) = (Arc::clone(&source), tx.clone(), Arc::clone(&self.limit));
            tokio::spawn(async move {
                let Ok(_permit) = limit.acquire_owned().await else {
                    return;
                };
                let Ok(reference) = ImageRef::parse(&image) else {
                    return;
                };
                let request = LookupRequest {
                    image: &reference,
                    // Nobody waits on it: the source may take its background timeout.
                    patient: true,
                    pull: &pull,
                };
                if let Lookup::Found(platforms) = source.lookup(request).await {
                    let _ = tx.send((image, platforms)).await;
                }
            });
        }
    }

    fn judge(&mut self, only: Option<(&str, &str)>) {
        let inventory = self.inventory.load();
        let compatible = (self.current)().compatible_execution;
        let became = self.state.judge(&inventory, &self.known, compatible, only);
        for b in &became {
            log(b);
        }
        self.explain();
        self.publish();
    }

    /// One Event on each misplaced pod that has none from this replica, while it leads (a new
    /// leader explains the pods misplaced before it led).
    fn explain(&mut self) {
        let Some(events) = &self.events else { return };
        let misplaced: HashSet<(String, String)> = self
            .state
            .misplaced()
            .map(|b| (b.namespace.clone(), b.name.clone()))
            .collect();
        // A pod that recovers and fails again is explained again.
        self.evented.retain(|k| misplaced.contains(k));
        if !self
            .leading
            .as_ref()
            .is_none_or(|l| l.load(Ordering::Acquire))
        {
            return;
        }
        for b in self.state.misplaced() {
            let key = (b.namespace.clone(), b.name.clone());
            if self.evented.insert(key) {
                event(events.clone(), b);
            }
        }
    }

    fn publish(&mut self) {
        let now = self.state.by_namespace();
        for gone in self.published.iter().filter(|ns| !now.contains_key(*ns)) {
            let _ = self.gauge.remove_label_values(&[gone]);
        }
        for (ns, count) in &now {
            self.gauge.with_label_values(&[ns]).set(*count);
        }
        self.published = now.into_keys().collect();
    }
}

fn images_of(b: &Became) -> String {
    let images: Vec<String> = b
        .images
        .iter()
        .map(|(image, platforms)| format!("{image} (built for {platforms})"))
        .collect();
    images.join(", ")
}

/// Every replica logs the pods it sees become misplaced.
fn log(b: &Became) {
    tracing::warn!(
        namespace = %b.namespace,
        pod = %b.name,
        node = %b.node,
        node_platform = %b.node_platform,
        images = %images_of(b),
        "pod is misplaced: its node cannot run an image (exec format error)"
    );
}

fn event(events: EventRecorder, b: &Became) {
    let message = format!(
        "node {} is {} and cannot run image {}: the container fails with exec format error. Move the workload to a node that can (or build the image for {}); `archgate audit -n {}` lists every such pod",
        b.node,
        b.node_platform,
        images_of(b),
        b.node_platform,
        b.namespace
    );
    let pod = PodRef {
        namespace: b.namespace.clone(),
        name: b.name.clone(),
        uid: b.uid.clone(),
    };
    // An Event explains; nothing waits on it.
    tokio::spawn(async move {
        events
            .publish(&pod, EventType::Warning, "Misplaced", &message)
            .await;
    });
}
