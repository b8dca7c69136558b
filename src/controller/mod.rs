//! The placement controller: it finishes what the mutating webhook could not within the
//! admission deadline. Pods the webhook gated (`archgate.io/placement`) are watched by label,
//! their lookups retried with backoff through the same platform source (and caches) as the
//! webhook, and each is released in one update: the placement added, the gate removed.
//!
//! One replica leads at a time ([`lease`]); the webhook serves on every replica regardless.
//! The decision is the webhook's own ([`crate::policy::evaluate`] at the mutating stage); past
//! the policy's `give_up_after`, `unknown_images` decides: allow and warn release the pod
//! unplaced, deny keeps it gated. Every outcome is an Event on the pod.

pub mod lease;
pub mod metrics;
pub mod ungate;

use crate::admission::Admission;
use crate::cluster::events::{EventRecorder, EventType, PodRef};
use crate::policy::evaluate::{evaluate, Stage, Verdict};
use crate::policy::gate::{self, GATE, GATED_LABEL, GATED_VALUE, PLACEMENT_ANNOTATION};
use crate::policy::model::OnLookupTimeout;
use crate::policy::Policy;
use futures_util::StreamExt;
use k8s_openapi::api::core::v1::Pod as KubePod;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use lease::LeaseLock;
use metrics::PlacementMetrics;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::{JoinHandle, JoinSet};

/// How long one round of lookups may take before the pod waits for the next round: longer than
/// a patient lookup (`timeouts.background`, 60 s by default), which bounds it first.
const LOOKUP_WAIT: Duration = Duration::from_secs(90);
/// Retry backoff for a pod whose lookups are still failing: doubles from the first to the last.
const BACKOFF: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(60));

/// Where the controller runs and how it competes for the lead.
#[derive(Debug, Clone)]
pub struct ControllerConfig {
    /// archgate's namespace, where the Lease lives.
    pub namespace: String,
    /// This replica, in the Lease and in Events.
    pub identity: String,
    /// How long a Lease holds without renewal; renewed every third of it.
    pub lease_duration: Duration,
}

/// What every pod task shares.
struct Context {
    client: kube::Client,
    admission: Admission,
    events: EventRecorder,
    metrics: PlacementMetrics,
}

/// The running controller; stops (and gives up its Lease) when dropped.
pub struct PlacementController {
    task: JoinHandle<()>,
    lock: Arc<LeaseLock>,
    leading: Arc<AtomicBool>,
}

impl Drop for PlacementController {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl PlacementController {
    /// Competes for the Lease and places gated pods while leading.
    pub fn spawn(
        client: kube::Client,
        admission: Admission,
        config: ControllerConfig,
        metrics: PlacementMetrics,
    ) -> PlacementController {
        let context = Arc::new(Context {
            events: EventRecorder::new(client.clone(), &config.identity),
            client,
            admission,
            metrics,
        });
        let lock = Arc::new(LeaseLock::new(
            context.client.clone(),
            &config.namespace,
            &config.identity,
            config.lease_duration,
        ));
        let leading = Arc::new(AtomicBool::new(false));
        PlacementController {
            task: tokio::spawn(compete(
                context,
                Arc::clone(&lock),
                config,
                Arc::clone(&leading),
            )),
            lock,
            leading,
        }
    }

    /// True while this replica holds the Lease: what only one replica should do (write an Event
    /// about a pod) it does while this is true.
    pub fn leading(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.leading)
    }

    /// Stops, and gives the Lease up when this replica holds it, so another replica leads at once
    /// instead of after the lease duration (a rollout, a drain).
    pub async fn shutdown(&self) {
        self.task.abort();
        match tokio::time::timeout(Duration::from_secs(2), self.lock.release()).await {
            Ok(Ok(())) => tracing::info!("placement controller stopped; Lease released"),
            Ok(Err(e)) => tracing::warn!(error = %e, "cannot release the placement controller's Lease; another replica takes over when it expires"),
            Err(_) => tracing::warn!("releasing the placement controller's Lease timed out; another replica takes over when it expires"),
        }
    }
}

/// Aborts a task when dropped: the pod tasks must end with the leadership that runs them, also
/// when the competing task itself is aborted.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Follows until the Lease is ours, leads until it is not, and again.
async fn compete(
    context: Arc<Context>,
    lock: Arc<LeaseLock>,
    config: ControllerConfig,
    leading: Arc<AtomicBool>,
) {
    let retry = (config.lease_duration / 3).max(Duration::from_millis(200));
    loop {
        match lock.acquire_or_renew().await {
            Ok(true) => {}
            Ok(false) => {
                tokio::time::sleep(retry).await;
                continue;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot read or take the placement controller's Lease; retrying");
                tokio::time::sleep(retry).await;
                continue;
            }
        }
        tracing::info!(identity = %config.identity, namespace = %config.namespace, "leading the placement controller");
        context.metrics.leader.set(1);
        leading.store(true, Ordering::Release);
        let work = AbortOnDrop(tokio::spawn(lead(context.clone())));
        let mut renewed = Instant::now();
        loop {
            tokio::time::sleep(retry).await;
            match lock.acquire_or_renew().await {
                Ok(true) => renewed = Instant::now(),
                Ok(false) => break,
                // Keep leading through a blip, but stop before another replica may take over.
                Err(e) if renewed.elapsed() < config.lease_duration * 2 / 3 => {
                    tracing::warn!(error = %e, "cannot renew the placement controller's Lease; retrying");
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot renew the placement controller's Lease");
                    break;
                }
            }
        }
        // Aborting drops every pod task, and with it its count in the gated gauge.
        drop(work);
        context.metrics.leader.set(0);
        leading.store(false, Ordering::Release);
        tracing::warn!(identity = %config.identity, "no longer leading the placement controller");
    }
}

/// Watches gated pods and runs one task per pod until it is released, deleted or settled.
async fn lead(context: Arc<Context>) {
    let api: Api<KubePod> = Api::all(context.client.clone());
    let selector = format!("{GATED_LABEL}={GATED_VALUE}");
    let mut events = watcher::watcher(api, watcher::Config::default().labels(&selector))
        .default_backoff()
        .boxed();
    // Aborted with the JoinSet when leadership ends.
    let mut tasks: JoinSet<Finished> = JoinSet::new();
    let mut working: HashMap<tokio::task::Id, (String, String)> = HashMap::new();
    let mut busy: HashSet<(String, String)> = HashSet::new();
    // Pods that can never be placed (no node runs them): left gated, not retried on every event.
    let mut settled: HashSet<String> = HashSet::new();
    loop {
        tokio::select! {
            event = events.next() => match event {
                Some(Ok(Event::Apply(pod) | Event::InitApply(pod))) => {
                    let (Some(ns), Some(name)) = (pod.metadata.namespace.clone(), pod.metadata.name.clone()) else { continue };
                    let uid = pod.metadata.uid.clone().unwrap_or_default();
                    let key = (ns.clone(), name.clone());
                    if settled.contains(&uid) || busy.contains(&key) {
                        continue;
                    }
                    let handle = tasks.spawn(place(context.clone(), ns, name));
                    working.insert(handle.id(), key.clone());
                    busy.insert(key);
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => tracing::warn!(error = %e, "watch of gated pods failed; retrying"),
                None => return,
            },
            Some(done) = tasks.join_next_with_id() => {
                let id = match &done {
                    Ok((id, _)) => *id,
                    Err(e) => e.id(),
                };
                if let Some(key) = working.remove(&id) {
                    busy.remove(&key);
                    match done {
                        Ok((_, Finished::Settled(uid))) => { settled.insert(uid); }
                        Ok(_) => {}
                        Err(e) => tracing::error!(namespace = %key.0, pod = %key.1, error = %e, "placing a gated pod failed unexpectedly; it is retried at its next change"),
                    }
                }
            }
        }
    }
}

/// `policy` as it decides at the give-up deadline: failed lookups go to `unknown_images`.
fn giving_up(policy: &Policy) -> Policy {
    let mut policy = policy.clone();
    policy.placement.on_lookup_timeout = OnLookupTimeout::Decide;
    policy
}

/// How one pod's task ended.
enum Finished {
    /// Released, deleted, or no longer gated by archgate.
    Done,
    /// Left gated for good (the pod uid): no node can run it.
    Settled(String),
}

/// Counts a pod as gated while its task runs.
struct GatedGuard(PlacementMetrics);

impl Drop for GatedGuard {
    fn drop(&mut self) {
        self.0.gated.dec();
    }
}

/// Places one gated pod: lookups retried with backoff until they answer or the give-up deadline
/// passes, then the one update that releases it (retried from a fresh read on a conflict).
async fn place(context: Arc<Context>, namespace: String, name: String) -> Finished {
    let api: Api<KubePod> = Api::namespaced(context.client.clone(), &namespace);
    let mut backoff = BACKOFF.0;
    let mut guard = None;
    let mut told_give_up = false;
    // Updates refused in a row: a conflict is retried at once, but one that keeps coming (a
    // validation the update fails every time) must not become a busy loop on the API server.
    let mut refused = 0u32;
    loop {
        let stored = match api.get_opt(&name).await {
            Ok(Some(stored)) => stored,
            // Deleted while gated: nothing to do, nothing to say.
            Ok(None) => return Finished::Done,
            Err(e) => {
                tracing::warn!(%namespace, pod = %name, error = %e, "cannot read the gated pod; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF.1);
                continue;
            }
        };
        let Some(pod) = serde_json::to_value(&stored)
            .ok()
            .and_then(|v| serde_json::from_value::<crate::pod::Pod>(v).ok())
        else {
            tracing::error!(%namespace, pod = %name, "cannot read the gated pod's spec; leaving it gated");
            return Finished::Done;
        };
        if !pod.has_gate(GATE) {
            return Finished::Done;
        }
        // Each round decides with the policy and source in service now: a reload applies to
        // pods already gated, and one that turns gating off releases them.
        let now = context.admission.snapshot();
        let policy = &*now.policy;
        let who = PodRef {
            namespace: namespace.clone(),
            name: name.clone(),
            uid: stored.metadata.uid.clone(),
        };
        if guard.is_none() {
            context.metrics.gated.inc();
            guard = Some(GatedGuard(context.metrics.clone()));
            let why = pod
                .annotation(PLACEMENT_ANNOTATION)
                .unwrap_or("its image lookups did not finish in time");
            let message = format!(
                "archgate holds the pod from scheduling until it knows where its images run: {why}"
            );
            context
                .events
                .publish(&who, EventType::Normal, "ArchgateGated", &message)
                .await;
        }
        let created = stored.metadata.creation_timestamp.as_ref().map(|t| t.0);
        let age = || {
            created
                .and_then(|t| (chrono::Utc::now() - t).to_std().ok())
                .unwrap_or_default()
        };
        // A round of lookups ends by the give-up deadline; past it, only answers already known
        // (or at once) count.
        let left = policy.placement.give_up_after.saturating_sub(age());
        let wait = if left.is_zero() {
            Duration::from_secs(1)
        } else {
            left.min(LOOKUP_WAIT)
        };
        let images = now
            .resolve_gated(&pod, &namespace, Instant::now() + wait)
            .await;
        let age = age();
        let give_up = age >= policy.placement.give_up_after;
        let pending = images.iter().any(|i| gate::unavailable(i).is_some());
        let given_up;
        let deciding = if give_up {
            given_up = giving_up(policy);
            &given_up
        } else {
            policy
        };
        let inventory = context.admission.inventory.load();
        let decision = evaluate(
            deciding,
            &inventory,
            &pod,
            &now.namespace(&namespace).await,
            &images,
            Stage::Mutate,
        );
        match &decision.verdict {
            Verdict::Gate(_) => {
                let left = policy.placement.give_up_after.saturating_sub(age);
                tokio::time::sleep(backoff.min(left).max(Duration::from_millis(100))).await;
                backoff = (backoff * 2).min(BACKOFF.1);
                continue;
            }
            Verdict::Deny(message) => {
                if !told_give_up {
                    told_give_up = true;
                    context
                        .metrics
                        .outcomes
                        .with_label_values(&["stays_gated"])
                        .inc();
                    let next = if pending {
                        "it stays gated and is placed if the lookups succeed later"
                    } else {
                        "it stays gated: delete it, or fix what the message names and create it again"
                    };
                    let text = format!("{message}; {next}");
                    tracing::warn!(%namespace, pod = %name, reason = %text, "a gated pod cannot be placed");
                    context
                        .events
                        .publish(&who, EventType::Warning, "ArchgateGaveUp", &text)
                        .await;
                }
                if !pending {
                    return Finished::Settled(stored.metadata.uid.clone().unwrap_or_default());
                }
                tokio::time::sleep(BACKOFF.1).await;
                continue;
            }
            Verdict::Allow | Verdict::Patch(_) => {}
        }
        let archs = decision.architectures.joined();
        let (note, reason, kind, outcome) = if pending {
            let text = format!("gave up after {}s waiting for image lookups; released unplaced by the images that did resolve ({archs}): {}", age.as_secs(), decision.warnings.join("; "));
            (text, "ArchgateGaveUp", EventType::Warning, "unplaced")
        } else {
            let text = format!("placed on {archs} after its image lookups completed");
            (text, "ArchgatePlaced", EventType::Normal, "placed")
        };
        let rv = stored.metadata.resource_version.clone().unwrap_or_default();
        let Some(patch) = ungate::release(&pod, &rv, &decision.verdict, &note) else {
            return Finished::Done;
        };
        match api
            .patch(&name, &PatchParams::default(), &Patch::Json::<()>(patch))
            .await
        {
            Ok(_) => {
                context.metrics.gate_seconds.observe(age.as_secs_f64());
                context.metrics.outcomes.with_label_values(&[outcome]).inc();
                tracing::info!(%namespace, pod = %name, architectures = %archs, outcome, "released a gated pod");
                context.events.publish(&who, kind, reason, &note).await;
                return Finished::Done;
            }
            Err(kube::Error::Api(s)) if s.code == 404 => return Finished::Done,
            // The pod changed since it was read (409, or the resourceVersion test failed): read
            // it again at once. Anything else waits for the backoff.
            Err(kube::Error::Api(s)) if (s.code == 409 || s.code == 422) && refused < 3 => {
                refused += 1;
                tracing::debug!(%namespace, pod = %name, message = %s.message, "the gated pod changed; reading it again");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => {
                refused = 0;
                tracing::warn!(%namespace, pod = %name, error = %e, "cannot release the gated pod; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF.1);
            }
        }
    }
}
