//! What a rule's selectors can match, for the linter: whether an earlier rule's selectors match
//! everything a later one's do (so the later rule never decides), and whether a selector can
//! match anything at all.

use super::super::model::{RuleSpec, SelectorOperator, SelectorSpec};
use crate::namespace::NAME_LABEL;
use std::collections::{BTreeMap, BTreeSet};

type Requirement = (String, SelectorOperator, BTreeSet<String>);

fn requirements(s: &SelectorSpec) -> Vec<Requirement> {
    let labels = s.match_labels.iter().map(|(k, v)| {
        (
            k.0.clone(),
            SelectorOperator::In,
            BTreeSet::from([v.0.clone()]),
        )
    });
    let exprs = s.match_expressions.iter().map(|e| {
        let values = e.values.iter().map(|v| v.0.clone()).collect();
        (e.key.0.clone(), e.operator, values)
    });
    labels.chain(exprs).collect()
}

/// Whether every pod `later` matches is matched by `earlier` too.
pub(super) fn covers(earlier: &RuleSpec, later: &RuleSpec) -> bool {
    let ns_ok = earlier.namespaces.is_empty()
        || (!later.namespaces.is_empty()
            && later.namespaces.iter().all(|q| {
                earlier
                    .namespaces
                    .iter()
                    .any(|p| match p.0.strip_suffix('*') {
                        Some(prefix) => q.0.trim_end_matches('*').starts_with(prefix),
                        None => p.0 == q.0,
                    })
            }));
    ns_ok
        && selector_covers(&earlier.namespace_selector, &later.namespace_selector)
        && selector_covers(&earlier.pod_selector, &later.pod_selector)
}

/// Whether every label set `later` selects is selected by `earlier` (absent: everything).
fn selector_covers(earlier: &Option<SelectorSpec>, later: &Option<SelectorSpec>) -> bool {
    let Some(sel) = earlier else {
        return true;
    };
    let want = requirements(sel);
    let have = later.as_ref().map(requirements).unwrap_or_default();
    want.iter().all(|w| have.iter().any(|h| implies(h, w)))
}

/// Whether a label set satisfying `h` always satisfies `w`.
fn implies(h: &Requirement, w: &Requirement) -> bool {
    use SelectorOperator::*;
    if h.0 != w.0 {
        return false;
    }
    match (h.1, w.1) {
        (In, In) => h.2.is_subset(&w.2),
        (In | Exists, Exists) => true,
        (In, NotIn) => h.2.is_disjoint(&w.2),
        (NotIn, NotIn) => w.2.is_subset(&h.2),
        (DoesNotExist, NotIn | DoesNotExist) => true,
        _ => false,
    }
}

/// Why no label set can satisfy a selector, if none can.
pub(super) fn unsatisfiable(s: &SelectorSpec) -> Option<String> {
    use SelectorOperator::*;
    let mut by_key: BTreeMap<String, Vec<Requirement>> = BTreeMap::new();
    for r in requirements(s) {
        by_key.entry(r.0.clone()).or_default().push(r);
    }
    for (key, reqs) in by_key {
        let mut allowed: Option<BTreeSet<String>> = None;
        let (mut exists, mut absent) = (false, false);
        for (_, op, values) in &reqs {
            match op {
                In => {
                    exists = true;
                    allowed = Some(match allowed {
                        Some(a) => a.intersection(values).cloned().collect(),
                        None => values.clone(),
                    });
                }
                Exists => exists = true,
                DoesNotExist => absent = true,
                NotIn => {}
            }
        }
        if let Some(a) = allowed.as_mut() {
            for (_, op, values) in &reqs {
                if *op == NotIn {
                    a.retain(|v| !values.contains(v));
                }
            }
        }
        if exists && absent {
            return Some(format!("label `{key}` must both exist and not exist"));
        }
        if allowed.is_some_and(|a| a.is_empty()) {
            return Some(format!(
                "no value of label `{key}` satisfies every requirement on it"
            ));
        }
    }
    None
}

/// Why no namespace can satisfy a `namespace_selector`, if none can: as [`unsatisfiable`], and
/// every namespace has the label holding its name.
pub(super) fn unsatisfiable_for_namespaces(s: &SelectorSpec) -> Option<String> {
    let absent_name = requirements(s)
        .iter()
        .any(|(key, op, _)| key == NAME_LABEL && *op == SelectorOperator::DoesNotExist);
    if absent_name {
        return Some(format!(
            "requires label `{NAME_LABEL}` to be absent, and the API server puts it on every namespace"
        ));
    }
    unsatisfiable(s)
}
