//! The admission path from request bytes to response bytes: decode, resolve images, evaluate,
//! encode. The server, `check` and the benches all call [`Admission::review`].

mod classify;
pub mod patch;
pub mod pipeline;
mod resolve;
pub mod review;
mod template;

use crate::inventory::{Inventory, InventorySource};
use crate::namespace::{Namespace, NamespaceSource, StaticNamespaces};
use crate::platforms::PlatformSource;
use crate::pod::Pod;
use crate::policy::evaluate::{evaluate, evaluate_ephemeral, Decision, Outcome, Stage, Verdict};
use crate::policy::model::OnOverload;
use crate::policy::Policy;
use arc_swap::ArcSwap;
use classify::{envelope, read_pod, Subject, Target};
use json_patch::jsonptr::Pointer;
use json_patch::AddOperation;
use review::{ObjectIn, ResponseOut};
use std::borrow::Cow;
use std::sync::Arc;
use std::time::Instant;
use template::template_changed;

/// A request the API server should not have sent: answered with an HTTP 400, not a review.
#[derive(Debug, thiserror::Error)]
pub enum BadReview {
    /// The body is not JSON, or not an AdmissionReview.
    #[error("request body is not an AdmissionReview: {0}")]
    Malformed(#[source] serde_json::Error),
    /// The review carries no request to answer.
    #[error("AdmissionReview has no `request`: send the review the API server built, with request.uid and request.object")]
    NoRequest,
    /// A version of AdmissionReview archgate does not speak.
    #[error("AdmissionReview apiVersion {0:?} is not supported: configure the webhook with admissionReviewVersions [v1]")]
    Version(String),
}

/// What happened to one review, for logs and metrics.
#[derive(Debug, Clone)]
pub struct Summary {
    /// The request's uid.
    pub uid: String,
    /// The object's namespace (the request's, else the object's, else "default").
    pub namespace: String,
    /// The object's name, or its generateName prefix for a pod created with one.
    pub name: String,
    /// The object's kind ("Pod", "Deployment", ...).
    pub kind: String,
    /// CREATE, UPDATE, ...
    pub operation: String,
    /// A dry run (`kubectl --dry-run=server`): nothing is persisted.
    pub dry_run: bool,
    /// What archgate answered.
    pub decision: Outcome,
    /// The policy rule that decided, if one matched.
    pub rule: Option<String>,
    /// The architectures the pod may run on, comma-separated; empty when not evaluated.
    pub architectures: Cow<'static, str>,
    /// The denial's or the warning's text, for the log line.
    pub message: Option<String>,
}

/// The answer: the full AdmissionReview response body and its summary.
#[derive(Debug)]
pub struct Answer {
    /// The AdmissionReview response, as sent to the API server.
    pub body: Vec<u8>,
    /// What happened, for logs and metrics.
    pub summary: Summary,
    /// The evaluator's decision when a pod was evaluated.
    pub decision: Option<Decision>,
}

/// Everything the admission path needs, shared by every request. The policy and the platform
/// source can be replaced while serving (`serve` reloads them when their files change); each
/// request decides with the pair it started with ([`Admission::snapshot`]).
#[derive(Clone)]
pub struct Admission {
    policy: Arc<ArcSwap<Policy>>,
    /// Swapped whole when the node watch sees a change; readers never wait.
    pub inventory: Arc<ArcSwap<Inventory>>,
    source: Arc<ArcSwap<SourceSlot>>,
    namespaces: Arc<ArcSwap<NamespacesSlot>>,
}

/// The platform source behind an [`ArcSwap`], which needs a sized type.
struct SourceSlot(Arc<dyn PlatformSource>);

/// Where namespaces' labels come from, behind an [`ArcSwap`] for the same reason.
struct NamespacesSlot(Arc<dyn NamespaceSource>);

/// The configuration one request decides with, taken once when it starts: a reload that lands
/// meanwhile changes the next request, never this one. The inventory is not pinned: it follows
/// the node watch as it always has.
#[derive(Clone)]
pub struct Snapshot {
    /// The policy in service when the request started.
    pub policy: Arc<Policy>,
    /// The platform source in service when the request started.
    pub source: Arc<dyn PlatformSource>,
    inventory: Arc<ArcSwap<Inventory>>,
    namespaces: Arc<dyn NamespaceSource>,
}

impl Admission {
    /// An admission path over the policy's static inventory.
    pub fn new(policy: Arc<Policy>, source: Arc<dyn PlatformSource>) -> Admission {
        let inventory = Arc::new(ArcSwap::from_pointee(policy.static_inventory()));
        Admission {
            policy: Arc::new(ArcSwap::new(policy)),
            inventory,
            source: Arc::new(ArcSwap::from_pointee(SourceSlot(source))),
            namespaces: Arc::new(ArcSwap::from_pointee(NamespacesSlot(Arc::new(
                StaticNamespaces::default(),
            )))),
        }
    }

    /// Where namespaces' labels come from from now on (the Namespace watch, Namespace objects
    /// from files); until set, every namespace is known by name only.
    pub fn set_namespaces(&self, namespaces: Arc<dyn NamespaceSource>) {
        self.namespaces.store(Arc::new(NamespacesSlot(namespaces)));
    }

    /// The policy in service now.
    pub fn policy(&self) -> Arc<Policy> {
        self.policy.load_full()
    }

    /// The platform source in service now.
    pub fn source(&self) -> Arc<dyn PlatformSource> {
        Arc::clone(&self.source.load().0)
    }

    /// Puts `policy` in service for the requests that start from now on. While the inventory is
    /// the policy's `[cluster] platforms` (no node watch, or none listed yet), it becomes the new
    /// policy's; an inventory of watched Nodes stays.
    pub fn set_policy(&self, policy: Arc<Policy>) {
        self.inventory.rcu(|current| {
            if current.source == InventorySource::Policy {
                Arc::new(policy.static_inventory())
            } else {
                Arc::clone(current)
            }
        });
        self.policy.store(policy);
    }

    /// Puts `source` in service for the requests that start from now on.
    pub fn set_source(&self, source: Arc<dyn PlatformSource>) {
        self.source.store(Arc::new(SourceSlot(source)));
    }

    /// The policy and source in service now, for one request (or one round of the placement
    /// controller) to decide with from start to end.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            policy: self.policy(),
            source: self.source(),
            inventory: Arc::clone(&self.inventory),
            namespaces: Arc::clone(&self.namespaces.load().0),
        }
    }
}

impl Snapshot {
    /// The namespace `name` as rules see it. Its labels are looked up only when a rule picks
    /// namespaces by label.
    pub async fn namespace(&self, name: &str) -> Namespace {
        if self.policy.selects_namespaces_by_label() {
            self.namespaces.namespace(name).await
        } else {
            Namespace::named(name)
        }
    }

    /// Decides for one pod at `stage`: resolves its images (bounded by `deadline`) and evaluates.
    pub async fn decide(
        &self,
        pod: &Pod,
        namespace: &str,
        stage: Stage,
        deadline: Instant,
    ) -> Decision {
        let images = self
            .resolve(pod.scheduling_containers(), pod, namespace, deadline, false)
            .await;
        evaluate(
            &self.policy,
            &self.inventory.load(),
            pod,
            &self.namespace(namespace).await,
            &images,
            stage,
        )
    }

    /// Ephemeral containers added by this UPDATE, checked against the node the pod runs on.
    async fn decide_ephemeral(
        &self,
        pod: &Pod,
        old: Option<&Pod>,
        namespace: &str,
        deadline: Instant,
    ) -> Decision {
        let existed =
            |name: &str| old.is_some_and(|o| o.ephemeral_containers().any(|(_, c)| c.name == name));
        let added = pod
            .ephemeral_containers()
            .filter(|(_, c)| !existed(&c.name));
        let images = self.resolve(added, pod, namespace, deadline, false).await;
        evaluate_ephemeral(
            &self.policy,
            &self.inventory.load(),
            pod,
            &self.namespace(namespace).await,
            &images,
            Stage::Validate,
        )
    }
}

impl Admission {
    /// The answer when there is no capacity left before the request's deadline: the policy's
    /// `on_overload`, without evaluating anything.
    pub fn overloaded(&self, body: &[u8]) -> Result<Answer, BadReview> {
        let review = review::decode(body)?;
        let (api_version, req) = envelope(&review)?;
        let (response, decision) = match self.policy().on_overload {
            OnOverload::Allow => (
                ResponseOut::allow(&req.uid).with_warnings(vec![
                    "archgate was overloaded and admitted this object without checking where it can run".into(),
                ]),
                Outcome::Warn,
            ),
            OnOverload::Deny => (
                ResponseOut::deny(
                    &req.uid,
                    429,
                    "archgate is overloaded and could not check this object in time; retry shortly".into(),
                ),
                Outcome::Deny,
            ),
        };
        let summary = Summary {
            uid: req.uid.clone(),
            namespace: req.namespace.clone().unwrap_or_default(),
            name: req.name.clone().unwrap_or_default(),
            kind: req.kind.kind.clone(),
            operation: req.operation.clone(),
            dry_run: req.dry_run.unwrap_or(false),
            decision,
            rule: None,
            architectures: Cow::Borrowed(""),
            message: Some("overloaded".into()),
        };
        Ok(Answer {
            body: response.to_review_json(api_version),
            summary,
            decision: None,
        })
    }

    /// Answers one AdmissionReview body at `stage`; lookups still pending at `deadline` count as
    /// failed, so the answer always comes before the API server gives up.
    pub async fn review(
        &self,
        body: &[u8],
        stage: Stage,
        deadline: Instant,
    ) -> Result<Answer, BadReview> {
        let mut review = review::decode(body)?;
        let api_version = envelope(&review)?.0.to_owned();
        let mut req = review.request.take().ok_or(BadReview::NoRequest)?;
        // From here on this request decides with the policy and source in service now.
        let now = self.snapshot();
        // The uid, name and operation move into the summary, which has them from here on.
        let mut summary = Summary {
            uid: std::mem::take(&mut req.uid),
            namespace: req.namespace.clone().unwrap_or_default(),
            name: req.name.take().unwrap_or_default(),
            kind: req.kind.kind.clone(),
            operation: std::mem::take(&mut req.operation),
            dry_run: req.dry_run.unwrap_or(false),
            decision: Outcome::Skip,
            rule: None,
            architectures: Cow::Borrowed(""),
            message: None,
        };
        let finish = |response: ResponseOut, summary: Summary, decision| Answer {
            body: response.to_review_json(&api_version),
            summary,
            decision,
        };

        let target = Target::of(&req.kind.group, &req.kind.kind, req.sub_resource.as_deref());
        // A kind archgate does not handle (a rule added by mistake, a CRD) is allowed: a denial
        // would block that whole kind cluster-wide. The warning and the metric say so.
        let Some(target) = target else {
            let msg = format!(
                "archgate evaluates Pods and workloads with pod templates; it was sent {} {} and allowed it unchecked: remove this kind from the webhook configuration's rules",
                req.kind.describe(),
                summary.name
            );
            summary.decision = Outcome::Unhandled;
            summary.message = Some(msg.clone());
            let response = ResponseOut::allow(&summary.uid).with_warnings(vec![msg]);
            return Ok(finish(response, summary, None));
        };
        // Scheduling fields are immutable after CREATE: an UPDATE can only add ephemeral
        // containers or change a workload's template.
        let relevant = match target {
            Target::Pod => summary.operation == "CREATE",
            Target::Ephemeral => summary.operation == "UPDATE" && stage == Stage::Validate,
            // The mutating stage places the templates of the kinds the policy names; the
            // validating stage judges every template. An UPDATE that leaves the template as it
            // was (a scale, a status, a label) is left alone, so nothing rolls for nothing.
            Target::Workload => {
                (stage == Stage::Validate || now.policy.placement.places_template(&summary.kind))
                    && (summary.operation == "CREATE"
                        || (summary.operation == "UPDATE" && template_changed(&req)))
            }
        };
        if !relevant {
            return Ok(finish(ResponseOut::allow(&summary.uid), summary, None));
        }
        if matches!(req.object, ObjectIn::Absent) {
            let msg = "archgate: the review has no request.object to evaluate".to_string();
            return Ok(finish(denied(&mut summary, 400, msg), summary, None));
        };
        let object = std::mem::replace(&mut req.object, ObjectIn::Absent);
        let Subject {
            pod,
            namespace,
            template,
        } = match read_pod(target, object, req.namespace.as_deref()) {
            Ok(found) => found,
            Err(why) => {
                let msg = format!(
                    "archgate cannot read {} {}/{}: {why}",
                    req.kind.kind, summary.namespace, summary.name
                );
                return Ok(finish(denied(&mut summary, 400, msg), summary, None));
            }
        };
        summary.namespace.clone_from(&namespace);
        if summary.name.is_empty() {
            summary.name = pod.shown_name();
        }

        let (decision, ops) = match (target, template) {
            (_, Some(t)) if stage == Stage::Mutate => {
                now.place_template(&t.object, &pod, &namespace, deadline)
                    .await
            }
            (_, Some(t)) => (
                now.decide_template(&t.pod, &namespace, deadline).await,
                Vec::new(),
            ),
            (Target::Ephemeral, None) => {
                let old: Option<Pod> = req
                    .old_object
                    .and_then(|o| serde_json::from_str(o.get()).ok());
                let decision = now
                    .decide_ephemeral(&pod, old.as_ref(), &namespace, deadline)
                    .await;
                (decision, Vec::new())
            }
            (_, None) => {
                let decision = now.decide(&pod, &namespace, stage, deadline).await;
                let ops = pod_ops(&pod, &decision);
                (decision, ops)
            }
        };
        let response = respond_with(&summary.uid, &patch::document(ops), &decision);
        summary.decision = decision.outcome();
        summary.rule.clone_from(&decision.rule);
        summary.architectures = decision.architectures.joined();
        if let Verdict::Deny(m) = &decision.verdict {
            summary.message = Some(m.clone());
        }
        Ok(finish(response, summary, Some(decision)))
    }
}

/// The operations a pod's decision makes: its placement, or its gate.
pub fn pod_ops(pod: &Pod, decision: &Decision) -> Vec<AddOperation> {
    let ops = match &decision.verdict {
        Verdict::Allow | Verdict::Deny(_) => return Vec::new(),
        Verdict::Patch(mutation) => patch::build(pod, mutation),
        Verdict::Gate(reason) => patch::gate(pod, reason),
    };
    // A pod sent without `metadata` gets it whole: its members' parents do not exist.
    patch::under(ops, Pointer::root(), pod.metadata.present)
}

/// Records a denial in the summary and builds its response.
fn denied(summary: &mut Summary, code: u16, msg: String) -> ResponseOut {
    summary.decision = Outcome::Deny;
    summary.message = Some(msg.clone());
    ResponseOut::deny(&summary.uid, code, msg)
}

/// Encodes a decision as an AdmissionResponse, with the patch, warnings and audit annotations.
pub fn respond(uid: &str, pod: &Pod, decision: &Decision) -> ResponseOut {
    respond_with(uid, &patch::document(pod_ops(pod, decision)), decision)
}

/// Encodes a decision whose patch is already built (a pod's, or a template's).
pub fn respond_with(uid: &str, patch: &json_patch::Patch, decision: &Decision) -> ResponseOut {
    let mut response = match &decision.verdict {
        Verdict::Deny(message) => ResponseOut::deny(uid, 403, message.clone()),
        _ if patch.is_empty() => ResponseOut::allow(uid),
        _ => ResponseOut::allow(uid).with_patch(&patch::to_json(patch)),
    }
    .with_warnings(decision.warnings.clone());
    if matches!(
        decision.verdict,
        Verdict::Deny(_) | Verdict::Patch(_) | Verdict::Gate(_)
    ) {
        let audit = &mut response.audit_annotations;
        audit.insert("decision", Cow::Borrowed(decision.outcome().as_str()));
        audit.insert("architectures", decision.architectures.joined());
        if let Some(rule) = &decision.rule {
            audit.insert("rule", Cow::Owned(rule.clone()));
        }
    }
    response
}

#[cfg(test)]
mod tests;
