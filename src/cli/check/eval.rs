//! One object through the webhook, offline: the mutating stage, its patch applied as the API
//! server applies it, then the validating stage on the patched pod. `check` and `test` both call
//! [`Evaluator::object`]; the decisions themselves come from [`Admission`], never from here.

use super::input::SourceRef;
use crate::admission::patch::{self, PatchError};
use crate::admission::pipeline::{api_server_pipeline, Passage, PodPassageError, StageAnswer};
use crate::admission::{respond, respond_with, Admission, Snapshot};
use crate::namespace::{NamespaceSource, StaticNamespaces};
use crate::policy::{Decision, Outcome, Stage, Verdict};
use crate::workload::{self, WorkloadError};
use serde_json::Value;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

/// The API server's default webhook timeout; offline sources answer long before it.
const DEADLINE: Duration = Duration::from_secs(10);

/// Why one object could not be evaluated (the file is named by the caller's [`SourceRef`]).
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// The object's pods cannot be read: no `kind`, a workload without its pod template, or a
    /// pod that does not decode.
    #[error(transparent)]
    Workload(#[from] WorkloadError),
    /// A captured AdmissionReview the webhook would answer with HTTP 400 (a body that does not
    /// decode, no `request`, an apiVersion other than v1).
    #[error("not an AdmissionReview archgate can replay: {0}")]
    Review(#[source] crate::admission::BadReview),
    /// The mutating webhook's patch cannot be decoded or does not apply to the object.
    #[error("the patch cannot be applied as the API server would: {0}")]
    Patch(#[source] PatchError),
    /// The pod does not decode, before or after its patch, or the patch does not apply to it.
    #[error(transparent)]
    Pod(#[from] PodPassageError),
    /// The workload, once the mutating webhook's patch is applied, no longer has pods to read.
    #[error("the workload has no pod template after its patch")]
    NoTemplate,
    /// The async runtime that evaluations (and their registry lookups) run on cannot start.
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
}

impl From<PatchError> for EvalError {
    fn from(e: PatchError) -> EvalError {
        EvalError::Patch(e)
    }
}

impl From<json_patch::PatchError> for EvalError {
    fn from(e: json_patch::PatchError) -> EvalError {
        EvalError::Patch(e.into())
    }
}

/// What the patch of a report applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchTarget {
    /// The object itself (a Pod, or the pod of a replayed AdmissionReview).
    Object,
    /// The pods a workload's controller creates; the workload itself is never mutated.
    Pods,
}

impl PatchTarget {
    /// The target as `-o json` and `-o patch` write it in `patchTarget`: `object` or `pods`.
    pub fn as_str(self) -> &'static str {
        match self {
            PatchTarget::Object => "object",
            PatchTarget::Pods => "pods",
        }
    }
}

/// The result for one object, as every output format reports it.
#[derive(Debug, Clone)]
pub struct Report {
    /// The object's `apiVersion` (a replayed review's: its `request.object`'s); empty if none.
    pub api_version: String,
    /// The object's `kind` (a replayed review's: the kind of its object); empty if none.
    pub kind: String,
    /// The object's namespace, `--namespace` when its metadata names none; empty for a
    /// cluster-scoped kind without pods.
    pub namespace: String,
    /// `metadata.name`; empty when the object has none.
    pub name: String,
    /// Where in the input the object was found.
    pub source: SourceRef,
    /// What the webhooks decided; `skip` for an object without pods.
    pub decision: Outcome,
    /// The policy mode that applied (`mutate`, `validate`, `warn`, `off`); None when no
    /// decision was made.
    pub mode: Option<&'static str>,
    /// The name of the policy rule that matched; None when no rule did.
    pub rule: Option<String>,
    /// The architectures the pods may be placed on (`amd64`, `arm64`, ...); empty when none
    /// or nothing was decided.
    pub architectures: Vec<String>,
    /// The mutating webhook's JSON Patch operations, one JSON object each; empty when there
    /// is none.
    pub patch: Vec<Value>,
    /// What `patch` applies to: the object itself or its pods.
    pub patch_target: PatchTarget,
    /// The warnings the webhooks return, as kubectl would print them.
    pub warnings: Vec<String>,
    /// Why the object was denied or skipped, in the webhook's words.
    pub messages: Vec<String>,
    /// The object as given.
    pub object: Value,
    /// The object admission patches, before: a Pod itself, a workload whose template is placed
    /// (`patch_target` object), or the pod a workload's controller creates (`patch_target` pods).
    pub pod_before: Option<Value>,
    /// The same with the mutating webhook's patch applied; None when no pod went through.
    pub pod_after: Option<Value>,
    /// The AdmissionReview response of the mutating webhook (`-o review`).
    pub review: Option<Vec<u8>>,
}

impl Report {
    fn new(object: Value, source: SourceRef, namespace: &str) -> Report {
        let text = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or_default().to_string();
        let meta = object.get("metadata");
        let ns = text(meta.and_then(|m| m.get("namespace")));
        Report {
            api_version: text(object.get("apiVersion")),
            kind: text(object.get("kind")),
            namespace: if ns.is_empty() {
                namespace.to_string()
            } else {
                ns
            },
            name: text(meta.and_then(|m| m.get("name"))),
            source,
            decision: Outcome::Skip,
            mode: None,
            rule: None,
            architectures: Vec::new(),
            patch: Vec::new(),
            patch_target: PatchTarget::Object,
            warnings: Vec::new(),
            messages: Vec::new(),
            object,
            pod_before: None,
            pod_after: None,
            review: None,
        }
    }

    /// "shop/web", or "web" for cluster-scoped skipped kinds, "<unnamed>" without a name.
    pub fn display_name(&self) -> String {
        let name = if self.name.is_empty() {
            "<unnamed>"
        } else {
            &self.name
        };
        if self.namespace.is_empty() {
            name.to_string()
        } else {
            format!("{}/{name}", self.namespace)
        }
    }
}

/// Runs objects through one [`Admission`], on a small runtime of its own.
pub struct Evaluator {
    admission: Admission,
    runtime: tokio::runtime::Runtime,
    default_namespace: String,
    /// The namespaces given (`--namespaces`), and the Namespace objects met so far.
    namespaces: Arc<RwLock<StaticNamespaces>>,
}

impl Evaluator {
    /// Evaluates with `admission`; `namespaces` are what rules with a `namespace_selector` see
    /// (plus every Namespace object evaluated before the objects in it).
    pub fn new(
        admission: Admission,
        default_namespace: &str,
        namespaces: StaticNamespaces,
    ) -> Result<Evaluator, EvalError> {
        // I/O too: a registry source makes HTTP requests.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(EvalError::Runtime)?;
        let namespaces = Arc::new(RwLock::new(namespaces));
        admission.set_namespaces(Arc::clone(&namespaces) as Arc<dyn NamespaceSource>);
        Ok(Evaluator {
            admission,
            runtime,
            default_namespace: default_namespace.to_string(),
            namespaces,
        })
    }

    /// Evaluates one object as the webhooks would at its creation.
    pub fn object(&self, object: Value, source: SourceRef) -> Result<Report, EvalError> {
        self.namespaces
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert_object(&object);
        let mut report = Report::new(object, source, &self.default_namespace);
        if report.kind == "AdmissionReview" {
            self.runtime.block_on(self.replay(&mut report))?;
            return Ok(report);
        }
        let Some(wp) = workload::pod_for(&report.object, &self.default_namespace)? else {
            report.namespace = meta_namespace(&report.object);
            report.messages.push(format!(
                "{} has no pods: nothing for archgate to place",
                report.kind
            ));
            return Ok(report);
        };
        report.namespace.clone_from(&wp.namespace);
        // Both stages of one object decide with one policy, as one request to the webhook does.
        let now = self.admission.snapshot();
        if wp.is_pod() {
            self.runtime.block_on(self.admit(&now, &mut report, wp))?;
        } else if now.policy.placement.places_template(&wp.kind) {
            self.runtime
                .block_on(self.admit_template(&now, &mut report, wp))?;
        } else {
            report.patch_target = PatchTarget::Pods;
            self.runtime.block_on(self.admit(&now, &mut report, wp))?;
        }
        Ok(report)
    }

    /// A workload whose template the mutating webhook places: the workload itself through both
    /// webhooks (the validating one judges its pods as the API server will send them). When the
    /// template is left as it is, its pods are reported as [`Evaluator::admit`] reports them.
    async fn admit_template(
        &self,
        now: &Snapshot,
        report: &mut Report,
        wp: workload::WorkloadPod,
    ) -> Result<(), EvalError> {
        let deadline = Instant::now() + DEADLINE;
        let ns = wp.namespace.as_str();
        let passage = api_server_pipeline(&report.object, |stage, object: &Value| {
            let read = workload::pod_for(object, ns);
            let object = object.clone();
            async move {
                let pods = read?.ok_or(EvalError::NoTemplate)?;
                Ok::<_, EvalError>(match stage {
                    Stage::Mutate => {
                        let (decision, ops) =
                            now.place_template(&object, &pods.pod, ns, deadline).await;
                        StageAnswer::new(decision, patch::document(ops))
                    }
                    Stage::Validate => {
                        let decision = now.decide_template(&pods.pod_json, ns, deadline).await;
                        StageAnswer::new(decision, json_patch::Patch::default())
                    }
                })
            }
        })
        .await?;
        if passage.patch.is_empty() && passage.validate.is_some() {
            report.patch_target = PatchTarget::Pods;
            return self.admit(now, report, wp).await;
        }
        let review = respond_with("", &passage.patch, &passage.mutate);
        report.review = Some(review.to_review_json("admission.k8s.io/v1"));
        report.pod_before = Some(report.object.clone());
        fill(report, &passage);
        Ok(())
    }

    /// Mutating webhook, patch, validating webhook: the path a pod takes through the API server.
    async fn admit(
        &self,
        now: &Snapshot,
        report: &mut Report,
        wp: workload::WorkloadPod,
    ) -> Result<(), EvalError> {
        let deadline = Instant::now() + DEADLINE;
        let passage = now
            .pod_passage(&wp.pod_json, &wp.namespace, deadline)
            .await?;
        let review = respond("", &wp.pod, &passage.mutate);
        report.review = Some(review.to_review_json("admission.k8s.io/v1"));
        report.pod_before = Some(wp.pod_json);
        fill(report, &passage);
        Ok(())
    }

    /// A captured AdmissionReview, answered as the API server would have it answered: the
    /// review through both webhooks, each answering the review around the object as it stands.
    /// `-o review` prints the answer of the webhook that decided (the mutating one unless the
    /// validating one denied).
    async fn replay(&self, report: &mut Report) -> Result<(), EvalError> {
        let captured = &report.object;
        let object = captured.pointer("/request/object").cloned();
        let passage = api_server_pipeline(&object.clone().unwrap_or(Value::Null), |stage, o| {
            let mut review = captured.clone();
            if let Some(slot) = review.pointer_mut("/request/object") {
                *slot = o.clone();
            }
            async move {
                let body = serde_json::to_vec(&review).map_err(PatchError::from)?;
                let answer = self
                    .admission
                    .review(&body, stage, Instant::now() + DEADLINE)
                    .await
                    .map_err(EvalError::Review)?;
                Ok::<_, EvalError>(StageAnswer {
                    denied: answer.summary.decision == Outcome::Deny,
                    patch: patch::of_response(&answer.body)?,
                    answer,
                })
            }
        })
        .await?;
        let mut first = passage.mutate;
        let decided = match passage.validate {
            Some(second) if second.summary.decision == Outcome::Deny => second,
            Some(second) => {
                // Warnings from either webhook reach the user; the mutating answer carries the patch.
                if let (Some(a), Some(b)) = (first.decision.as_mut(), &second.decision) {
                    a.add_warnings(&b.warnings);
                }
                if first.summary.decision == Outcome::Skip {
                    first.summary = second.summary;
                    first.decision = second.decision;
                }
                first
            }
            None => first,
        };
        let s = &decided.summary;
        report.api_version = object
            .as_ref()
            .and_then(|o| o.get("apiVersion"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        report.kind.clone_from(&s.kind);
        report.namespace.clone_from(&s.namespace);
        report.name.clone_from(&s.name);
        report.decision = s.decision;
        report.rule.clone_from(&s.rule);
        report.architectures = split_archs(&s.architectures);
        if let Some(d) = &decided.decision {
            report.mode = Some(d.mode.as_str());
            report.warnings.clone_from(&d.warnings);
            if report.decision == Outcome::Allow && !d.warnings.is_empty() {
                report.decision = Outcome::Warn;
            }
        }
        report.messages.extend(s.message.clone());
        if s.decision != Outcome::Deny {
            report.patch = patch_values(&passage.patch)?;
            report.pod_after = object.is_some().then_some(passage.after);
        } else {
            report.pod_after.clone_from(&object);
        }
        report.pod_before = object;
        report.review = Some(decided.body);
        Ok(())
    }
}

/// A patch's operations as JSON, as the reports show them.
fn patch_values(patch: &json_patch::Patch) -> Result<Vec<Value>, PatchError> {
    Ok(patch
        .iter()
        .map(serde_json::to_value)
        .collect::<Result<_, _>>()?)
}

/// The report of an object's passage through both webhooks.
fn fill(report: &mut Report, passage: &Passage<Decision>) {
    let d = passage.decided();
    report.decision = passage.outcome();
    report.mode = Some(d.mode.as_str());
    report.rule.clone_from(&d.rule);
    report.architectures = names(&d);
    report.warnings.clone_from(&d.warnings);
    if let Verdict::Deny(m) = &d.verdict {
        report.messages.push(m.clone());
    }
    report.patch = patch_values(&passage.patch).unwrap_or_default();
    report.pod_after = Some(passage.after.clone());
}

fn names(d: &Decision) -> Vec<String> {
    d.architectures
        .names()
        .into_iter()
        .map(String::from)
        .collect()
}

fn split_archs(s: &str) -> Vec<String> {
    s.split(',')
        .filter(|a| !a.is_empty())
        .map(String::from)
        .collect()
}

fn meta_namespace(object: &Value) -> String {
    object
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}
