//! What the API server does with an object on its way in, as one function: archgate's mutating
//! webhook, its JSON Patch applied, then archgate's validating webhook on the patched object.
//!
//! `check` (objects and replayed reviews), `archgate test` and the webhook's own judgement of a
//! workload's pods all run [`api_server_pipeline`], so none of them can drift from the order the
//! API server keeps: a denial stops the object, and validation sees the object as patched.

use super::{patch, pod_ops, Snapshot};
use crate::pod::Pod;
use crate::policy::{Decision, Outcome, Stage, Verdict};
use json_patch::Patch;
use serde::Deserialize;
use serde_json::Value;
use std::future::Future;
use std::time::Instant;

/// One webhook's answer, as far as the API server acts on it.
#[derive(Debug)]
pub struct StageAnswer<A> {
    /// The object is refused: the API server calls no further webhook.
    pub denied: bool,
    /// What to apply to the object before the next webhook sees it (empty for none).
    pub patch: Patch,
    /// The answer itself, for the caller to report.
    pub answer: A,
}

impl StageAnswer<Decision> {
    /// A decision, with the patch it sends: denied when its verdict is.
    pub fn new(decision: Decision, patch: Patch) -> StageAnswer<Decision> {
        StageAnswer {
            denied: matches!(decision.verdict, Verdict::Deny(_)),
            patch,
            answer: decision,
        }
    }

    /// A decision about a pod, with the operations it makes on `pod`.
    pub fn of_pod(pod: &Pod, decision: Decision) -> StageAnswer<Decision> {
        let patch = patch::document(pod_ops(pod, &decision));
        StageAnswer::new(decision, patch)
    }
}

/// An object's passage through both webhooks.
#[derive(Debug)]
pub struct Passage<A> {
    /// The object as the API server stores it: patched, or as given when it was denied.
    pub after: Value,
    /// The mutating webhook's patch, which made `after`.
    pub patch: Patch,
    /// The mutating webhook's answer.
    pub mutate: A,
    /// The validating webhook's answer; `None` when the mutating webhook denied.
    pub validate: Option<A>,
}

/// Runs `object` through `webhook` at the mutating stage, applies its patch as the API server
/// does, and runs the result through `webhook` at the validating stage. `webhook` reads what it
/// needs of the object before its future starts (an `async` closure's future would borrow the
/// object, and a future that does is not `Send` to the server's runtime).
pub async fn api_server_pipeline<A, E, F, Fut>(object: &Value, webhook: F) -> Result<Passage<A>, E>
where
    F: Fn(Stage, &Value) -> Fut,
    Fut: Future<Output = Result<StageAnswer<A>, E>>,
    E: From<json_patch::PatchError>,
{
    let first = webhook(Stage::Mutate, object).await?;
    if first.denied {
        return Ok(Passage {
            after: object.clone(),
            patch: Patch::default(),
            mutate: first.answer,
            validate: None,
        });
    }
    let mut after = object.clone();
    json_patch::patch(&mut after, &first.patch)?;
    let second = webhook(Stage::Validate, &after).await?;
    Ok(Passage {
        after,
        patch: first.patch,
        mutate: first.answer,
        validate: Some(second.answer),
    })
}

impl Passage<Decision> {
    /// The decision that stands for the whole passage: a denial by either webhook (the first
    /// one's if both), else the mutating webhook's, with the warnings of both.
    pub fn decided(&self) -> Decision {
        let denied = |d: &&Decision| matches!(d.verdict, Verdict::Deny(_));
        let mut decided = self
            .validate
            .as_ref()
            .filter(denied)
            .unwrap_or(&self.mutate)
            .clone();
        if let Some(v) = &self.validate {
            decided.add_warnings(&v.warnings);
            if decided.architectures.is_empty() {
                decided.architectures = v.architectures;
            }
        }
        decided
    }

    /// How the passage is reported: deny, gate, patch (when the object changed), else allow or
    /// warn.
    pub fn outcome(&self) -> Outcome {
        let decided = self.decided();
        match decided.outcome() {
            Outcome::Deny | Outcome::Gate => decided.outcome(),
            _ if !self.patch.is_empty() => Outcome::Patch,
            _ if decided.warnings.is_empty() => Outcome::Allow,
            _ => Outcome::Warn,
        }
    }
}

/// Why a pod given as JSON could not pass through the pipeline.
#[derive(Debug, thiserror::Error)]
pub enum PodPassageError {
    /// The pod (as given, or as patched) is not a pod archgate can read.
    #[error("the pod does not decode: {0}")]
    Pod(#[from] serde_json::Error),
    /// The mutating webhook's patch does not apply to the pod.
    #[error("the patch does not apply to the pod: {0}")]
    Patch(#[from] json_patch::PatchError),
}

impl Snapshot {
    /// A pod, given as the JSON the API server would send, through both webhooks.
    pub async fn pod_passage(
        &self,
        pod: &Value,
        namespace: &str,
        deadline: Instant,
    ) -> Result<Passage<Decision>, PodPassageError> {
        api_server_pipeline(pod, |stage, json: &Value| {
            let pod = Pod::deserialize(json);
            async move {
                let pod = pod?;
                let decision = self.decide(&pod, namespace, stage, deadline).await;
                Ok(StageAnswer::of_pod(&pod, decision))
            }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;
    use std::sync::Mutex;

    /// A webhook that adds `stage` under /seen at the mutating stage, denies when told, and
    /// records every object it is sent.
    fn webhook<'a>(
        deny_at: Option<Stage>,
        sent: &'a Mutex<Vec<(Stage, Value)>>,
    ) -> impl Fn(
        Stage,
        &Value,
    ) -> std::future::Ready<Result<StageAnswer<Stage>, json_patch::PatchError>>
           + 'a {
        move |stage, object| {
            sent.lock().unwrap().push((stage, object.clone()));
            let patch = match stage {
                Stage::Mutate => serde_json::from_value(json!([
                    {"op": "add", "path": "/seen", "value": "mutate"}
                ]))
                .unwrap(),
                Stage::Validate => Patch::default(),
            };
            std::future::ready(Ok(StageAnswer {
                denied: deny_at == Some(stage),
                patch,
                answer: stage,
            }))
        }
    }

    #[tokio::test]
    async fn validation_sees_the_object_as_the_mutating_patch_left_it() {
        let sent = Mutex::new(Vec::new());
        let passage = api_server_pipeline(&json!({"a": 1}), webhook(None, &sent))
            .await
            .unwrap();
        assert_eq!(passage.after, json!({"a": 1, "seen": "mutate"}));
        assert_eq!(passage.patch.len(), 1);
        assert_eq!(
            (passage.mutate, passage.validate),
            (Stage::Mutate, Some(Stage::Validate))
        );
        let sent = sent.into_inner().unwrap();
        assert_eq!(sent[0], (Stage::Mutate, json!({"a": 1})));
        assert_eq!(
            sent[1],
            (Stage::Validate, json!({"a": 1, "seen": "mutate"}))
        );
    }

    #[tokio::test]
    async fn a_mutating_denial_stops_the_object_unpatched() {
        let sent = Mutex::new(Vec::new());
        let passage = api_server_pipeline(&json!({"a": 1}), webhook(Some(Stage::Mutate), &sent))
            .await
            .unwrap();
        assert_eq!(passage.after, json!({"a": 1}));
        assert!(passage.patch.is_empty());
        assert_eq!(passage.validate, None);
        assert_eq!(sent.into_inner().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_patch_that_does_not_apply_is_an_error_not_a_validation() {
        let sent = Mutex::new(Vec::new());
        let result = api_server_pipeline(&json!([1]), webhook(None, &sent)).await;
        assert!(result.is_err());
        assert_eq!(sent.into_inner().unwrap().len(), 1);
    }
}
