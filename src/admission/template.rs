//! Workload templates: judged at the validating stage as the pods their controller creates, and
//! placed at the mutating stage for the kinds the policy's `[placement] templates` names.

use super::review::{ObjectIn, RequestIn};
use super::{patch, Snapshot};
use crate::pod::Pod;
use crate::policy::evaluate::{evaluate, Decision, Mutation, Stage, Verdict};
use json_patch::jsonptr::Pointer;
use json_patch::AddOperation;
use std::time::Instant;

impl Snapshot {
    /// A workload's template, judged as the pods its controller will create: each through
    /// both webhooks as the API server will send it (in `mutate` mode, whether the mutating
    /// webhook can place it; otherwise whether it is safe as written). `pod` is the template's
    /// pod as JSON. The template itself is never patched here (GitOps tools would see drift).
    pub async fn decide_template(
        &self,
        pod: &serde_json::Value,
        namespace: &str,
        deadline: Instant,
    ) -> Decision {
        match self.pod_passage(pod, namespace, deadline).await {
            Ok(passage) => {
                let mut decision = passage.decided();
                if !matches!(decision.verdict, Verdict::Deny(_)) {
                    decision.verdict = Verdict::Allow;
                }
                decision
            }
            // The template decoded as a pod before; only archgate's own patch can fail it.
            Err(e) => Decision {
                verdict: Verdict::Deny(format!(
                    "archgate cannot judge this pod template: {e}; please report it"
                )),
                mode: self.policy.default_mode,
                rule: None,
                architectures: crate::arch::ArchSet::EMPTY,
                warnings: Vec::new(),
            },
        }
    }

    /// The mutating stage for a workload whose kind the policy places at its template: the
    /// template gets the same architecture affinity its pods would, so its controller creates
    /// pods only for nodes that can run them (a DaemonSet's pods are each bound to one node
    /// before archgate sees them). Returns the decision and the operations on the workload.
    pub async fn place_template(
        &self,
        object: &serde_json::Value,
        template: &Pod,
        namespace: &str,
        deadline: Instant,
    ) -> (Decision, Vec<AddOperation>) {
        // Placed as its pods will be placed, before any controller binds them to a node.
        let mut unbound = template.clone();
        unbound.metadata.owner_references = None;
        let images = self
            .resolve(
                unbound.scheduling_containers(),
                &unbound,
                namespace,
                deadline,
                false,
            )
            .await;
        let mut decision = evaluate(
            &self.policy,
            &self.inventory.load(),
            &unbound,
            &self.namespace(namespace).await,
            &images,
            Stage::Mutate,
        );
        // The annotation alone is no reason to change a template: every node can run it.
        if let Verdict::Patch(m) = &decision.verdict {
            let placement = Mutation {
                annotation: None,
                ..m.clone()
            };
            if placement.is_empty() {
                decision.verdict = Verdict::Allow;
            }
        }
        let ops = match &decision.verdict {
            Verdict::Patch(mutation) => {
                let kind = object.get("kind").and_then(serde_json::Value::as_str);
                let prefix = crate::workload::template_pointer(kind.unwrap_or_default());
                let has_metadata = prefix
                    .and_then(|p| object.pointer(&format!("{p}/metadata")))
                    .is_some_and(serde_json::Value::is_object);
                let ops = patch::build(&unbound, mutation);
                match prefix.and_then(|p| Pointer::parse(p).ok()) {
                    Some(p) => patch::under(ops, p, has_metadata),
                    None => Vec::new(),
                }
            }
            Verdict::Gate(reason) => {
                // A template cannot wait behind a gate; its pods can, one by one.
                decision.warnings.push(format!(
                    "archgate left the pod template as it is, {reason}; its pods are placed one by one as they are created"
                ));
                decision.verdict = Verdict::Allow;
                Vec::new()
            }
            Verdict::Allow | Verdict::Deny(_) => Vec::new(),
        };
        (decision, ops)
    }
}

/// Whether an UPDATE changed the pod template (a scale or status change did not).
pub(super) fn template_changed(req: &RequestIn<'_>) -> bool {
    let template = |raw: Option<&serde_json::value::RawValue>| {
        let v: serde_json::Value = raw.and_then(|r| serde_json::from_str(r.get()).ok())?;
        let spec = v.get("spec")?;
        spec.get("template")
            .or_else(|| spec.get("jobTemplate"))
            .cloned()
    };
    let object = match req.object {
        ObjectIn::Raw(raw) => Some(raw),
        _ => None,
    };
    req.old_object.is_none() || template(object) != template(req.old_object)
}
