//! The ServiceMonitor and PrometheusRule (components/monitoring) against the Service and the
//! metrics archgate exports.

use super::*;

/// archgate's metric names, from the sources that register them.
fn known_metrics() -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for f in [
        "src/server/metrics.rs",
        "src/registry/metrics.rs",
        "src/controller/metrics.rs",
        "src/cluster/pods.rs",
    ] {
        let text = std::fs::read_to_string(repo().join(f)).unwrap();
        for part in text.split('"').skip(1).step_by(2) {
            if part.starts_with("archgate_")
                && part.chars().all(|c| c.is_ascii_lowercase() || c == '_')
            {
                out.insert(part.to_string());
            }
        }
    }
    assert!(
        out.contains("archgate_admission_duration_seconds"),
        "metric names not found in src/: {out:?}"
    );
    out
}

/// The ServiceMonitor and PrometheusRule (components/monitoring), when present.
pub(crate) fn check_monitoring(b: &Bundle, ctx: &Ctx, own_ns: &str, errs: &mut Vec<String>) {
    let svc = b
        .all::<Service>("Service")
        .into_iter()
        .next()
        .map(|(_, s)| s);
    for (d, sm) in b.all::<ServiceMonitor>("ServiceMonitor") {
        let at = d.at();
        if sm.metadata.namespace.as_deref() != Some(own_ns) {
            errs.push(format!("{at}: namespace is not {own_ns}"));
        }
        if let Some(names) = sm
            .spec
            .namespace_selector
            .as_ref()
            .and_then(|n| n.match_names.as_ref())
        {
            if !names.iter().any(|n| n == own_ns) {
                errs.push(format!(
                    "{at}: namespaceSelector.matchNames {names:?} leaves out {own_ns}"
                ));
            }
        }
        let Some(svc) = &svc else {
            // Files: the component is checked against the base's Service in monitoring_component.
            continue;
        };
        let labels = effective_labels(&svc.metadata, ctx);
        if !selector_matches(&sm.spec.selector, &labels)
            || sm.spec.selector == LabelSelector::default()
        {
            errs.push(format!(
                "{at}: spec.selector does not select the archgate Service (its labels: {labels:?})"
            ));
        }
        let port_names: Vec<String> = svc
            .spec
            .iter()
            .flat_map(|s| s.ports.iter().flatten())
            .filter_map(|p| p.name.clone())
            .collect();
        if sm.spec.endpoints.is_empty() {
            errs.push(format!("{at}: no endpoints"));
        }
        for (i, e) in sm.spec.endpoints.iter().enumerate() {
            let eat = format!("{at} endpoints[{i}]");
            match &e.port {
                Some(p) if port_names.contains(p) => {}
                p => errs.push(format!(
                    "{eat}: port {p:?} is not a named port of the Service ({port_names:?})"
                )),
            }
            if e.scheme.as_deref() != Some("https") {
                errs.push(format!("{eat}: scheme is {:?}, expected https", e.scheme));
            }
            if e.path.as_deref().unwrap_or("/metrics") != "/metrics" {
                errs.push(format!("{eat}: path is {:?}, expected /metrics", e.path));
            }
            let tls = e.tls_config.as_ref();
            let skip = tls.and_then(|t| t.insecure_skip_verify) == Some(true);
            let ca = tls.and_then(|t| t.ca.as_ref());
            match (skip, ca) {
                (true, None) => {}
                (false, Some(ca)) => {
                    // Verification: the CA must exist with both overlays, and the name the
                    // certificate carries must be given (Prometheus dials pod IPs).
                    if tls.and_then(|t| t.server_name.as_deref()).is_none() {
                        errs.push(format!(
                            "{eat}: tlsConfig verifies but sets no serverName: the certificate \
                             names the Service, Prometheus dials pod IPs"
                        ));
                    }
                    if let Some(s) = &ca.secret {
                        if s.name == TLS_SECRET && s.key == "ca.crt" {
                            errs.push(format!(
                                "{eat}: tlsConfig.ca is {TLS_SECRET}/ca.crt, which the \
                                 self-managed overlay's Secret does not have (tls.crt, tls.key)"
                            ));
                        }
                    }
                }
                _ => errs.push(format!(
                    "{eat}: tlsConfig must either verify with a CA or set insecureSkipVerify: true \
                     (and say why)"
                )),
            }
        }
    }

    let known = known_metrics();
    for (d, pr) in b.all::<PrometheusRule>("PrometheusRule") {
        let at = d.at();
        if pr.metadata.namespace.as_deref() != Some(own_ns) {
            errs.push(format!("{at}: namespace is not {own_ns}"));
        }
        let mut names = BTreeSet::new();
        let mut exprs = Vec::new();
        for g in &pr.spec.groups {
            for r in &g.rules {
                let name = r.alert.clone().or(r.record.clone()).unwrap_or_default();
                let rat = format!("{at} group {} rule {name}", g.name);
                if r.alert.is_some() == r.record.is_some() {
                    errs.push(format!("{rat}: needs exactly one of alert and record"));
                }
                if !names.insert(name.clone()) {
                    errs.push(format!("{rat}: duplicate name"));
                }
                if r.alert.is_some() {
                    let sev = r.labels.as_ref().and_then(|l| l.get("severity"));
                    if !matches!(
                        sev.map(String::as_str),
                        Some("critical" | "warning" | "info")
                    ) {
                        errs.push(format!("{rat}: severity label is {sev:?}"));
                    }
                    let ann = r.annotations.clone().unwrap_or_default();
                    for a in ["summary", "description"] {
                        if !ann.contains_key(a) {
                            errs.push(format!("{rat}: no {a} annotation"));
                        }
                    }
                }
                let mut depth = 0i32;
                for ch in r.expr.chars() {
                    match ch {
                        '(' | '{' | '[' => depth += 1,
                        ')' | '}' | ']' => depth -= 1,
                        _ => {}
                    }
                    if depth < 0 {
                        break;
                    }
                }
                if depth != 0 {
                    errs.push(format!("{rat}: unbalanced brackets in expr"));
                }
                // Every archgate_* series must be one archgate exports.
                for token in r
                    .expr
                    .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .filter(|t| t.starts_with("archgate_"))
                {
                    let base = ["_bucket", "_sum", "_count"]
                        .iter()
                        .find_map(|s| token.strip_suffix(s).filter(|b| known.contains(*b)))
                        .unwrap_or(token);
                    if !known.contains(base) {
                        errs.push(format!(
                            "{rat}: expr uses {token}, which archgate does not export (known: \
                             {known:?})"
                        ));
                    }
                }
                exprs.push(r.expr.clone());
            }
        }
        // The alerts the issue asks for.
        let wanted: [(&str, &[&str]); 5] = [
            (
                "webhook denials",
                &["archgate_admission_reviews_total", "decision=\"deny\""],
            ),
            (
                "p99 admission latency above 100 ms",
                &[
                    "histogram_quantile(0.99",
                    "archgate_admission_duration_seconds_bucket",
                    "> 0.1",
                ],
            ),
            (
                "registry lookups failing",
                &["archgate_registry_requests_total"],
            ),
            (
                "TLS reload errors",
                &["archgate_tls_reloads_total", "result=\"error\""],
            ),
            (
                "no ready replicas",
                &[
                    "kube_deployment_status_replicas_available",
                    "deployment=\"archgate\"",
                    "== 0",
                ],
            ),
        ];
        for (what, needles) in wanted {
            if !exprs.iter().any(|e| needles.iter().all(|n| e.contains(n))) {
                errs.push(format!(
                    "{at}: no alert on {what} (an expr containing {needles:?})"
                ));
            }
        }
    }
}

#[test]
fn monitoring_component_matches_the_service_and_archgate_metrics() {
    let dir = manifests().join("components/monitoring");
    let k = kustomization(&dir);
    assert_eq!(k.kind, "Component", "{}: not a Component", rel(&dir));
    let mut b = base_bundle();
    for r in k.resources.iter().flatten() {
        b.docs.extend(load(&dir.join(r)));
    }
    assert!(!b.of_kind("ServiceMonitor").is_empty(), "no ServiceMonitor");
    assert!(!b.of_kind("PrometheusRule").is_empty(), "no PrometheusRule");
    let ctx = Ctx {
        what: "manifests/base + components/monitoring".into(),
        base: Some(kustomization(&manifests().join("base"))),
        pull_secrets: false,
    };
    fail_on(check_bundle(&b, &ctx));
}
