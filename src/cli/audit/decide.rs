//! What the policy would do to each workload created today: `check`'s [`Evaluator`] (the
//! webhook's own pipeline, both stages) over the cluster's inventory and the images the audit
//! resolved.

use super::resolve::Resolved;
use crate::admission::Admission;
use crate::audit::{Decided, ImageFacts, WorkloadFacts};
use crate::cli::check::eval::{EvalError, Evaluator, Report};
use crate::cli::check::input::SourceRef;
use crate::inventory::placement::eligible_nodes;
use crate::inventory::Inventory;
use crate::namespace::StaticNamespaces;
use crate::pod::Pod;
use crate::policy::model::OnLookupTimeout;
use crate::policy::{Outcome, Policy};
use crate::workload::{self, WorkloadPod};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Fills in `decision` for each workload whose object is in `objects` (same index). Must run
/// outside an async runtime: the evaluator drives its own.
pub fn decide(
    mut policy: Policy,
    images: &BTreeMap<String, ImageFacts>,
    inventory: Inventory,
    namespaces: StaticNamespaces,
    workloads: &mut [WorkloadFacts],
    objects: Vec<Option<Value>>,
) -> Result<(), EvalError> {
    // There is no placement controller to wait for: decide as it does when it gives up.
    policy.placement.on_lookup_timeout = OnLookupTimeout::Decide;
    let admission = Admission::new(Arc::new(policy), Arc::new(Resolved::new(images)));
    admission.inventory.store(Arc::new(inventory.clone()));
    let evaluator = Evaluator::new(admission, "default", namespaces)?;
    for (index, (w, object)) in workloads.iter_mut().zip(objects).enumerate() {
        let Some(object) = object else { continue };
        let source = SourceRef {
            file: "cluster".into(),
            document: index,
            item: None,
        };
        let report = match evaluator.object(object, source) {
            Ok(report) => report,
            Err(e) => {
                // One unreadable template does not stop the audit of the others.
                eprintln!(
                    "warning: {} {}/{}: cannot evaluate: {e}",
                    w.kind, w.namespace, w.name
                );
                continue;
            }
        };
        let patched = report.decision == Outcome::Patch && moves(&report, &inventory);
        w.decision = Some(Decided {
            denied: report.decision == Outcome::Deny,
            patched,
            rule: report.rule,
            architectures: report.architectures,
            patch_target: report.patch_target.as_str(),
            patch: report.patch,
            messages: report.messages,
            warnings: report.warnings,
        });
    }
    Ok(())
}

/// Whether a patch changes where the pods can go: the nodes that admit them, or the nodes they
/// prefer. A patch that only restates a pin (an affinity for the architectures the pod could
/// reach anyway, an annotation) changes nothing an operator would notice, and is not reported.
fn moves(report: &Report, inventory: &Inventory) -> bool {
    let (Some(before), Some(after)) = (&report.pod_before, &report.pod_after) else {
        return true;
    };
    let (Some(before), Some(after)) = (pod_of(before), pod_of(after)) else {
        return true;
    };
    let names = |pod: &Pod| -> Vec<String> {
        eligible_nodes(inventory, pod)
            .into_iter()
            .map(|n| n.name.clone())
            .collect()
    };
    let preferred = |pod: &Value| {
        pod.pointer("/spec/affinity/nodeAffinity/preferredDuringSchedulingIgnoredDuringExecution")
            .cloned()
    };
    names(&before.pod) != names(&after.pod)
        || preferred(&before.pod_json) != preferred(&after.pod_json)
}

/// The pod an object (a Pod, or a workload whose template was patched) stands for.
fn pod_of(object: &Value) -> Option<WorkloadPod> {
    workload::pod_for(object, "default").ok().flatten()
}
