//! The policy and source are swapped while serving (`serve` reloads them): a review decides with
//! the pair in service when it started, whatever lands while it waits on a lookup.

use super::*;
use crate::admission::{Admission, BadReview};
use crate::image::Platform;
use crate::platforms::{LookupFuture, LookupRequest, PlatformSource};
use std::time::{Duration, Instant};
use tokio::sync::{oneshot, Notify};

/// Knows every image as amd64-only, but answers only when the test says so.
struct HeldSource {
    asked: Arc<Notify>,
    release: std::sync::Mutex<Option<oneshot::Receiver<()>>>,
}

impl PlatformSource for HeldSource {
    fn lookup<'a>(&'a self, _request: LookupRequest<'a>) -> LookupFuture<'a> {
        let release = self.release.lock().unwrap().take();
        self.asked.notify_one();
        Box::pin(async move {
            if let Some(release) = release {
                let _ = release.await;
            }
            let amd64: Platform = "linux/amd64".parse().unwrap();
            Lookup::Found(Arc::new(ImagePlatforms::new(vec![amd64])))
        })
    }
}

fn review_body() -> Vec<u8> {
    serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "u1",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "namespace": "shop",
            "operation": "CREATE",
            "object": pod(&["app:1"], json!({})),
        }
    }))
    .unwrap()
}

fn patched(body: &[u8]) -> bool {
    let answer: Value = serde_json::from_slice(body).unwrap();
    answer["response"].get("patch").is_some()
}

#[tokio::test]
async fn a_review_in_flight_keeps_the_policy_it_started_with() {
    let asked = Arc::new(Notify::new());
    let (release, held) = oneshot::channel();
    let source = HeldSource {
        asked: asked.clone(),
        release: std::sync::Mutex::new(Some(held)),
    };
    let admission = Admission::new(Arc::new(policy("")), Arc::new(source));
    let deadline = Instant::now() + Duration::from_secs(5);
    let in_flight = {
        let admission = admission.clone();
        tokio::spawn(async move {
            admission
                .review(&review_body(), Stage::Mutate, deadline)
                .await
                .unwrap()
        })
    };
    asked.notified().await;
    // Lands while the first review waits on its lookup.
    admission.set_policy(Arc::new(policy("[defaults]\nmode = \"off\"\n")));
    release.send(()).unwrap();
    let first = in_flight.await.unwrap();
    assert!(
        patched(&first.body),
        "the review in flight decided with the new policy: {}",
        String::from_utf8_lossy(&first.body)
    );
    let second = admission
        .review(&review_body(), Stage::Mutate, deadline)
        .await
        .unwrap();
    assert!(
        !patched(&second.body),
        "a new review must see the new policy: {}",
        String::from_utf8_lossy(&second.body)
    );
}

/// A static platforms source from its text.
fn platforms(text: &str) -> Arc<dyn PlatformSource> {
    let platforms = crate::platforms::StaticPlatforms::from_toml(text, Path::new("p.toml"));
    Arc::new(platforms.unwrap())
}

#[tokio::test]
async fn a_new_source_answers_new_reviews() {
    let admission = Admission::new(Arc::new(policy("")), platforms("[images]\n"));
    let deadline = Instant::now() + Duration::from_secs(5);
    let review = |admission: Admission| async move {
        let body = review_body();
        let answer = admission.review(&body, Stage::Mutate, deadline).await;
        answer.unwrap().summary.architectures.into_owned()
    };
    assert_eq!(review(admission.clone()).await, "amd64,arm64");
    admission.set_source(platforms(
        "[images]\n\"docker.io/library/app:1\" = [\"linux/arm64\"]\n",
    ));
    assert_eq!(review(admission.clone()).await, "arm64");
}

#[test]
fn a_new_policy_brings_its_cluster_platforms_unless_nodes_are_watched() {
    let admission = Admission::new(Arc::new(policy("")), platforms("[images]\n"));
    let arm64_only = || {
        let text = "[cluster]\nplatforms = [\"linux/arm64\"]\n";
        Arc::new(Policy::from_toml(text, Path::new("p.toml")).unwrap())
    };
    admission.set_policy(arm64_only());
    assert_eq!(admission.inventory.load().archs.joined(), "arm64");

    let nodes = Inventory {
        source: crate::inventory::InventorySource::Nodes,
        ..policy("").static_inventory()
    };
    admission.inventory.store(Arc::new(nodes));
    admission.set_policy(arm64_only());
    let inventory = admission.inventory.load();
    assert_eq!(inventory.source, crate::inventory::InventorySource::Nodes);
    assert_eq!(inventory.archs.joined(), "amd64,arm64");
}

/// When there is no capacity left, a review is answered by the policy's `on_overload` after the
/// same envelope checks as any other: the same decoder, the same versions.
#[test]
fn an_overloaded_answer_checks_the_envelope_like_any_other() {
    let source = crate::platforms::StaticPlatforms::default();
    let admission = Admission::new(Arc::new(policy("")), Arc::new(source));
    let answer = admission.overloaded(&review_body()).unwrap();
    let body: Value = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(body["response"]["uid"], "u1");
    assert_eq!(body["response"]["allowed"], true);
    assert_eq!(answer.summary.namespace, "shop");
    let mut old = serde_json::from_slice::<Value>(&review_body()).unwrap();
    old["apiVersion"] = json!("admission.k8s.io/v2");
    let refused = admission.overloaded(&serde_json::to_vec(&old).unwrap());
    assert!(matches!(refused, Err(BadReview::Version(_))), "{refused:?}");
    assert!(matches!(
        admission.overloaded(b"[\"admission.k8s.io/v1\", \"AdmissionReview\"]"),
        Err(BadReview::Malformed(_))
    ));
}
