//! The Service and the PodDisruptionBudget select the Deployment's pods.

use super::*;

pub(crate) fn check_pdb(
    b: &Bundle,
    ctx: &Ctx,
    labels: &BTreeMap<String, String>,
    errs: &mut Vec<String>,
) {
    let Some((doc, p)) = b.one::<PodDisruptionBudget>("PodDisruptionBudget", &ctx.what, errs)
    else {
        return;
    };
    let spec = p.spec.unwrap_or_default();
    match &spec.selector {
        Some(s) if selector_matches(s, labels) && s != &LabelSelector::default() => {}
        _ => errs.push(format!(
            "{}: spec.selector does not select the Deployment's pods",
            doc.at()
        )),
    }
    // With 2 replicas, minAvailable 2 (or maxUnavailable 0) would block every node drain.
    let blocks = matches!(spec.min_available, Some(IntOrString::Int(n)) if n >= 2)
        || matches!(spec.max_unavailable, Some(IntOrString::Int(0)));
    if blocks || (spec.min_available.is_none() && spec.max_unavailable.is_none()) {
        errs.push(format!(
            "{}: expected minAvailable 1 (or maxUnavailable >= 1): keep one replica, let drains \
             proceed",
            doc.at()
        ));
    }
}

pub(crate) fn check_service(
    b: &Bundle,
    ctx: &Ctx,
    labels: &BTreeMap<String, String>,
    c: &Container,
    errs: &mut Vec<String>,
) {
    let Some((doc, s)) = b.one::<Service>("Service", &ctx.what, errs) else {
        return;
    };
    let spec = s.spec.unwrap_or_default();
    let sel = spec.selector.clone().unwrap_or_default();
    if sel.is_empty() || !sel.iter().all(|(k, v)| labels.get(k) == Some(v)) {
        errs.push(format!(
            "{}: spec.selector {sel:?} does not select the Deployment's pods",
            doc.at()
        ));
    }
    for p in spec.ports.iter().flatten() {
        let target = p.target_port.clone().unwrap_or(IntOrString::Int(p.port));
        if !port_resolves(c, &target) {
            errs.push(format!(
                "{}: port {} targets {target:?}, which is not a port of container {}",
                doc.at(),
                p.port,
                c.name
            ));
        }
        if p.name.is_none() {
            errs.push(format!(
                "{}: port {} has no name (the ServiceMonitor refers to it by name)",
                doc.at(),
                p.port
            ));
        }
    }
}
