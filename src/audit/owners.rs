//! Who owns a pod in the end: Pod -> ReplicaSet -> Deployment, Pod -> Job -> CronJob.

use super::model::{ObjRef, WorkloadFacts};
use std::collections::HashMap;

/// Owner references of the listed workloads, by (namespace, kind, name).
pub struct Owners<'a> {
    owner_of: HashMap<(&'a str, &'a str, &'a str), Option<&'a ObjRef>>,
}

impl<'a> Owners<'a> {
    /// Indexes the owner references of `workloads` (the listed ones; pods are looked up by theirs).
    pub fn new(workloads: &'a [WorkloadFacts]) -> Owners<'a> {
        let owner_of = workloads
            .iter()
            .map(|w| {
                (
                    (w.namespace.as_str(), w.kind.as_str(), w.name.as_str()),
                    w.owner.as_ref(),
                )
            })
            .collect();
        Owners { owner_of }
    }

    /// The top of the owner chain starting at `owner` (a pod's controller): the last owner the
    /// listed workloads know of. An owner that was not listed (a custom controller's object)
    /// is the top.
    pub fn top(&self, namespace: &str, owner: Option<&ObjRef>) -> Option<ObjRef> {
        let mut current = owner?;
        // Kubernetes' own chains are two deep; the bound keeps a malformed loop finite.
        for _ in 0..8 {
            match self
                .owner_of
                .get(&(namespace, current.kind.as_str(), current.name.as_str()))
            {
                Some(Some(next)) => current = next,
                _ => break,
            }
        }
        Some(current.clone())
    }
}
