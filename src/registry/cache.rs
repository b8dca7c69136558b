//! What registries told us, kept so the admission path rarely waits on one:
//!
//! - tag -> digest, short-lived (a tag moves);
//! - digest -> platforms, long-lived and bounded (content-addressed, so it never goes stale);
//! - failures, briefly, so a broken registry is not hammered by every pod of a rollout;
//! - one flight per key, so concurrent lookups of an uncached image share one registry request.
//!
//! Every answer is keyed by the credential [`Scope`] it was obtained with: a private image learned
//! with one namespace's secret is served only to requests that hold the same secret.

use super::credentials::Scope;
use super::metrics::RegistryMetrics;
use crate::platforms::{ImagePlatforms, LookupFailure};
use futures_util::future::{BoxFuture, FutureExt, Shared};
use moka::notification::RemovalCause;
use std::any::Any;
use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// (registry host, repository, tag or digest, who learned it).
pub type Key = (String, String, String, Scope);

/// The three caches, sized and timed by the registry configuration.
pub struct Caches {
    tags: moka::future::Cache<Key, String>,
    platforms: moka::future::Cache<Key, Arc<ImagePlatforms>>,
    failures: moka::future::Cache<(String, u64), Failure>,
    metrics: RegistryMetrics,
}

impl Caches {
    /// Empty caches, each bounded by `max_entries` and living for its configured TTL.
    pub fn new(config: &super::config::CacheConfig, metrics: RegistryMetrics) -> Caches {
        Caches {
            tags: moka::future::Cache::builder()
                .max_capacity(config.max_entries)
                .time_to_live(config.tag_ttl)
                .eviction_listener(on_evict(metrics.clone(), "tags"))
                .build(),
            platforms: moka::future::Cache::builder()
                .max_capacity(config.max_entries)
                .time_to_live(config.platforms_ttl)
                .eviction_listener(on_evict(metrics.clone(), "platforms"))
                .build(),
            failures: moka::future::Cache::builder()
                .max_capacity(config.max_entries)
                .time_to_live(config.negative_ttl)
                .eviction_listener(on_evict(metrics.clone(), "failures"))
                .build(),
            metrics,
        }
    }

    /// The digest a tag pointed at, as seen by any of `scopes`, within the tag TTL.
    pub async fn tag(
        &self,
        host: &str,
        repo: &str,
        tag: &str,
        scopes: &[Scope],
    ) -> Option<(String, Scope)> {
        for scope in scopes {
            let key = (host.to_string(), repo.to_string(), tag.to_string(), *scope);
            if let Some(digest) = self.tags.get(&key).await {
                self.metrics.cache_event("tags", "hit");
                return Some((digest, *scope));
            }
        }
        self.metrics.cache_event("tags", "miss");
        None
    }

    /// Remembers that `tag` pointed at `digest` when asked as `scope`, for the tag TTL.
    pub async fn put_tag(&self, host: &str, repo: &str, tag: &str, scope: Scope, digest: String) {
        let key = (host.to_string(), repo.to_string(), tag.to_string(), scope);
        self.tags.insert(key, digest).await;
    }

    /// The platforms of a digest, as learned by any of `scopes`.
    pub async fn platforms(
        &self,
        host: &str,
        repo: &str,
        digest: &str,
        scopes: &[Scope],
    ) -> Option<Arc<ImagePlatforms>> {
        for scope in scopes {
            let key = (
                host.to_string(),
                repo.to_string(),
                digest.to_string(),
                *scope,
            );
            if let Some(p) = self.platforms.get(&key).await {
                self.metrics.cache_event("platforms", "hit");
                return Some(p);
            }
        }
        self.metrics.cache_event("platforms", "miss");
        None
    }

    /// Remembers a digest's platforms as learned by `scope`, for the platforms TTL.
    pub async fn put_platforms(
        &self,
        host: &str,
        repo: &str,
        digest: &str,
        scope: Scope,
        p: Arc<ImagePlatforms>,
    ) {
        let key = (
            host.to_string(),
            repo.to_string(),
            digest.to_string(),
            scope,
        );
        self.platforms.insert(key, p).await;
    }

    /// A recent failure of this exact lookup (same image, same credentials to try).
    pub async fn failure(&self, image_key: &str, candidates: u64) -> Option<Failure> {
        let hit = self
            .failures
            .get(&(image_key.to_string(), candidates))
            .await;
        self.metrics
            .cache_event("failures", if hit.is_some() { "hit" } else { "miss" });
        hit
    }

    /// Remembers a failed lookup for the negative TTL, so it is not retried by every pod.
    pub async fn put_failure(&self, image_key: &str, candidates: u64, failure: Failure) {
        self.failures
            .insert((image_key.to_string(), candidates), failure)
            .await;
    }
}

/// Why a lookup failed, and whether asking again later may succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The error for the pod's creator (it names the image, and a failed mirror when there was
    /// one), with the registry error behind it.
    pub reason: LookupFailure,
    /// Slow, unreachable or overloaded, rather than an answer that will not change.
    pub transient: bool,
}

impl Failure {
    /// The answer a platform source gives for it.
    pub fn lookup(&self) -> crate::platforms::Lookup {
        let reason = self.reason.clone();
        if self.transient {
            crate::platforms::Lookup::Unavailable(reason)
        } else {
            crate::platforms::Lookup::Failed(reason)
        }
    }
}

/// Counts entries pushed out by the size bound (not those that merely expired).
fn on_evict<K, V>(
    metrics: RegistryMetrics,
    name: &'static str,
) -> impl Fn(Arc<K>, V, RemovalCause) + Send + Sync + 'static {
    move |_key, _value, cause| {
        if cause == RemovalCause::Size {
            metrics.cache_event(name, "eviction");
        }
    }
}

/// Concurrent callers with the same key share one run of the work. The work runs on its own task,
/// so a caller that gives up (the admission deadline) does not cancel it for the others, and its
/// result still reaches the cache for the next pod.
pub struct SingleFlight<K, V> {
    flights: Arc<Flights<K, V>>,
}

type Flights<K, V> = Mutex<HashMap<K, Shared<BoxFuture<'static, V>>>>;

/// The map is whole after any panic (an insert or a remove either happened or did not), so a
/// panic elsewhere while it was held must not make every later lookup fail.
fn lock<K, V>(
    flights: &Flights<K, V>,
) -> MutexGuard<'_, HashMap<K, Shared<BoxFuture<'static, V>>>> {
    flights.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Owned by a flight's task: removes the flight from the map when the task ends, however it ends
/// (the work returns or panics, or the runtime drops the task), so a key is never left joined to
/// a run that is over.
struct Landing<K: Hash + Eq, V> {
    flights: Arc<Flights<K, V>>,
    key: K,
}

impl<K: Hash + Eq, V> Drop for Landing<K, V> {
    fn drop(&mut self) {
        let removed = lock(&self.flights).remove(&self.key);
        // Outside the lock: this may be the last handle on the flight, and dropping it runs code.
        drop(removed);
    }
}

impl<K, V> Default for SingleFlight<K, V> {
    fn default() -> Self {
        SingleFlight {
            flights: Arc::new(Mutex::new(HashMap::new())),
        }
    }
}

impl<K, V> SingleFlight<K, V>
where
    K: Hash + Eq + Clone + Send + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// Runs `work` unless a run for `key` is under way, and returns that run's result. If the
    /// task dies (a panic in `work`), `failed` builds every caller's answer from the panic's
    /// message, and the next call for `key` runs `work` anew.
    pub async fn run<F>(&self, key: K, work: F, failed: fn(&str) -> V) -> V
    where
        F: Future<Output = V> + Send + 'static,
    {
        let flight = {
            let mut flights = lock(&self.flights);
            match flights.get(&key) {
                Some(flight) => flight.clone(),
                None => {
                    let landing = Landing {
                        flights: Arc::clone(&self.flights),
                        key: key.clone(),
                    };
                    // Spawned on the first poll, below, once the lock is released: a runtime that
                    // is shutting down drops a new task on the spot, and its landing takes the lock.
                    let flight = async move {
                        let task = tokio::spawn(async move {
                            let _landing = landing;
                            work.await
                        });
                        task.await.unwrap_or_else(|e| {
                            let reason = match e.try_into_panic() {
                                Ok(payload) => panic_reason(&*payload).to_owned(),
                                Err(_) => "its task was cancelled".to_owned(),
                            };
                            tracing::error!(reason, "a shared lookup's task failed");
                            failed(&reason)
                        })
                    }
                    .boxed()
                    .shared();
                    flights.insert(key, flight.clone());
                    flight
                }
            }
        };
        flight.await
    }

    /// Flights under way now.
    pub fn len(&self) -> usize {
        lock(&self.flights).len()
    }

    /// Whether no flight is under way.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What a panic said, when it said it in words (`panic!`, `expect`, an index out of bounds).
pub fn panic_reason(payload: &(dyn Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("a panic without a message")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[tokio::test]
    async fn concurrent_callers_share_one_run() {
        let flights: Arc<SingleFlight<String, u32>> = Arc::new(SingleFlight::default());
        let runs = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..100 {
            let flights = Arc::clone(&flights);
            let runs = Arc::clone(&runs);
            tasks.push(tokio::spawn(async move {
                let work = async move {
                    runs.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    7
                };
                flights.run("k".to_string(), work, |_| 0).await
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap_or(0), 7);
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert!(flights.is_empty(), "finished flights leave the map");
    }

    type Answer = Result<u32, String>;

    fn failed(reason: &str) -> Answer {
        Err(format!("failed: {reason}"))
    }

    /// Runs one flight for "k", giving up after 5 s so that a hang fails the test.
    async fn run_k(
        flights: &SingleFlight<String, Answer>,
        work: impl Future<Output = Answer> + Send + 'static,
    ) -> Answer {
        tokio::time::timeout(
            Duration::from_secs(5),
            flights.run("k".into(), work, failed),
        )
        .await
        .unwrap_or_else(|_| panic!("no answer within 5 s"))
    }

    #[tokio::test]
    async fn a_panicking_flight_leaves_no_entry_behind() {
        let flights = SingleFlight::default();
        let answer = run_k(&flights, async { panic!("boom") }).await;
        assert!(answer.is_err(), "{answer:?}");
        assert_eq!(flights.len(), 0, "the panicked flight is still in the map");
    }

    #[tokio::test]
    async fn every_caller_of_a_panicking_flight_gets_a_failure_naming_the_panic() {
        let flights = Arc::new(SingleFlight::default());
        let go = Arc::new(tokio::sync::Notify::new());
        let runs = Arc::new(AtomicUsize::new(0));
        let joined = Arc::new(AtomicUsize::new(0));
        let mut callers = Vec::new();
        for _ in 0..3 {
            let flights = Arc::clone(&flights);
            let (go, runs, joined) = (Arc::clone(&go), Arc::clone(&runs), Arc::clone(&joined));
            callers.push(tokio::spawn(async move {
                let work = async move {
                    runs.fetch_add(1, Ordering::SeqCst);
                    go.notified().await;
                    panic!("boom");
                };
                // On this one-thread runtime the caller joins the flight before it next yields.
                joined.fetch_add(1, Ordering::SeqCst);
                run_k(&flights, work).await
            }));
        }
        while joined.load(Ordering::SeqCst) < 3 {
            tokio::task::yield_now().await;
        }
        go.notify_one();
        for caller in callers {
            let answer = caller
                .await
                .unwrap_or_else(|e| panic!("a caller died: {e}"));
            assert_eq!(answer, Err("failed: boom".to_string()));
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1, "the callers shared one run");
    }

    #[tokio::test]
    async fn after_a_panic_the_next_call_runs_the_work_again() {
        let flights = SingleFlight::default();
        let first = run_k(&flights, async { panic!("boom") }).await;
        assert!(first.is_err(), "{first:?}");
        let second = run_k(&flights, async { Ok(7) }).await;
        assert_eq!(second, Ok(7), "the key is stuck on the panicked flight");
    }

    #[tokio::test]
    async fn answers_are_only_served_to_their_scope() {
        let caches = Caches::new(
            &super::super::config::RegistryConfig::default().cache,
            RegistryMetrics::unregistered(),
        );
        let secret = Scope::Credential([7; 16]);
        caches
            .put_tag("h", "r", "1", secret, "sha256:aa".into())
            .await;
        assert_eq!(caches.tag("h", "r", "1", &[Scope::Anonymous]).await, None);
        assert_eq!(
            caches
                .tag(
                    "h",
                    "r",
                    "1",
                    &[Scope::Credential([1; 16]), secret, Scope::Anonymous]
                )
                .await,
            Some(("sha256:aa".into(), secret))
        );
    }
}
