//! The mutating and validating webhook configurations: versions, side effects, timeouts,
//! namespaces excluded, failure policies, rules and the Service they call.

use super::*;

/// The common view of a mutating and a validating webhook.
struct Hook<'a> {
    at: String,
    admission_review_versions: &'a [String],
    side_effects: &'a str,
    timeout_seconds: Option<i32>,
    match_policy: Option<&'a str>,
    namespace_selector: Option<&'a LabelSelector>,
    client: &'a WebhookClientConfig,
}

fn rule_covers(rules: &[RuleWithOperations], group: &str, resource: &str, op: &str) -> bool {
    rules.iter().any(|r| {
        has(&r.api_groups, group)
            && has(&r.api_versions, "v1")
            && (r
                .resources
                .iter()
                .flatten()
                .any(|x| x == resource || x == "*/*")
                || (!resource.contains('/') && has(&r.resources, resource)))
            && has(&r.operations, op)
    })
}

fn check_hook(hook: &Hook, own_ns: &str, svc: Option<&Service>, errs: &mut Vec<String>) {
    let at = &hook.at;
    if hook.admission_review_versions != ["v1"] {
        errs.push(format!(
            "{at}: admissionReviewVersions is {:?}, expected [\"v1\"] (archgate answers v1 only)",
            hook.admission_review_versions
        ));
    }
    if hook.side_effects != "None" {
        errs.push(format!(
            "{at}: sideEffects is {:?}, expected None (archgate has none; dry-run requests need it)",
            hook.side_effects
        ));
    }
    match hook.timeout_seconds {
        Some(t) if (1..=10).contains(&t) && t < 30 => {}
        Some(t) => errs.push(format!(
            "{at}: timeoutSeconds is {t}, expected 1..=10 (the API allows at most 30, and every \
             pod create waits this long on an unreachable archgate)"
        )),
        None => errs.push(format!(
            "{at}: timeoutSeconds is not set: set it explicitly (1..=10)"
        )),
    }
    if hook.match_policy.is_some_and(|m| m != "Equivalent") {
        errs.push(format!(
            "{at}: matchPolicy is {:?}, expected Equivalent",
            hook.match_policy
        ));
    }
    match hook.namespace_selector {
        None => errs.push(format!(
            "{at}: no namespaceSelector: kube-system, kube-node-lease and {own_ns} must be excluded"
        )),
        Some(sel) => {
            for ns in ["kube-system", "kube-node-lease", own_ns] {
                if selector_matches(sel, &namespace_labels(ns)) {
                    errs.push(format!(
                        "{at}: namespaceSelector does not exclude namespace {ns:?} (by its \
                         kubernetes.io/metadata.name label)"
                    ));
                }
            }
            if !selector_matches(sel, &namespace_labels("default")) {
                errs.push(format!(
                    "{at}: namespaceSelector excludes the namespace \"default\": the webhook \
                     would not see ordinary workloads"
                ));
            }
        }
    }
    match (&hook.client.service, &hook.client.url) {
        (Some(s), None) => {
            if let Some(svc) = svc {
                let meta = &svc.metadata;
                if Some(&s.name) != meta.name.as_ref()
                    || Some(&s.namespace) != meta.namespace.as_ref()
                {
                    errs.push(format!(
                        "{at}: clientConfig.service is {}/{}, but the Service is {}/{}",
                        s.namespace,
                        s.name,
                        meta.namespace.as_deref().unwrap_or(""),
                        meta.name.as_deref().unwrap_or("")
                    ));
                }
                let port = s.port.unwrap_or(443);
                let ports: Vec<i32> = svc
                    .spec
                    .iter()
                    .flat_map(|s| s.ports.iter().flatten())
                    .map(|p| p.port)
                    .collect();
                if !ports.contains(&port) {
                    errs.push(format!(
                        "{at}: clientConfig.service.port {port} is not a port of the Service ({ports:?})"
                    ));
                }
            }
        }
        _ => errs.push(format!(
            "{at}: clientConfig must name the archgate Service (and no url)"
        )),
    }
}

pub(crate) fn check_webhooks(b: &Bundle, ctx: &Ctx, own_ns: &str, errs: &mut Vec<String>) {
    let svc = b.one::<Service>("Service", &ctx.what, errs).map(|(_, s)| s);
    if let Some((doc, m)) =
        b.one::<MutatingWebhookConfiguration>("MutatingWebhookConfiguration", &ctx.what, errs)
    {
        let hooks = m.webhooks.clone().unwrap_or_default();
        if hooks.is_empty() {
            errs.push(format!("{}: no webhooks", doc.at()));
        }
        for (i, h) in hooks.iter().enumerate() {
            let at = format!("{} webhooks[{i}] {}", doc.at(), h.name);
            let rules = h.rules.clone().unwrap_or_default();
            check_hook(
                &Hook {
                    at: at.clone(),
                    admission_review_versions: &h.admission_review_versions,
                    side_effects: &h.side_effects,
                    timeout_seconds: h.timeout_seconds,
                    match_policy: h.match_policy.as_deref(),
                    namespace_selector: h.namespace_selector.as_ref(),
                    client: &h.client_config,
                },
                own_ns,
                svc.as_ref(),
                errs,
            );
            if h.failure_policy.as_deref() != Some("Ignore") {
                errs.push(format!(
                    "{at}: failurePolicy is {:?}, expected Ignore (a down archgate must not stop \
                     pod creation; manifests/README.md, Choices)",
                    h.failure_policy
                ));
            }
            if h.reinvocation_policy.as_deref() != Some("IfNeeded") {
                errs.push(format!(
                    "{at}: reinvocationPolicy is {:?}, expected IfNeeded (re-run after another \
                     webhook adds containers)",
                    h.reinvocation_policy
                ));
            }
            if !rule_covers(&rules, "", "pods", "CREATE") {
                errs.push(format!("{at}: rules do not cover pods CREATE"));
            }
            // DaemonSets are placed at their template, at apply and at every template change.
            for op in ["CREATE", "UPDATE"] {
                if !rule_covers(&rules, "apps", "daemonsets", op) {
                    errs.push(format!("{at}: rules do not cover apps daemonsets {op}"));
                }
            }
            if h.client_config
                .service
                .as_ref()
                .and_then(|s| s.path.as_deref())
                != Some("/mutate")
            {
                errs.push(format!("{at}: clientConfig.service.path is not /mutate"));
            }
        }
    }
    if let Some((doc, v)) =
        b.one::<ValidatingWebhookConfiguration>("ValidatingWebhookConfiguration", &ctx.what, errs)
    {
        let hooks = v.webhooks.clone().unwrap_or_default();
        if hooks.is_empty() {
            errs.push(format!("{}: no webhooks", doc.at()));
        }
        for (i, h) in hooks.iter().enumerate() {
            let at = format!("{} webhooks[{i}] {}", doc.at(), h.name);
            let rules = h.rules.clone().unwrap_or_default();
            check_hook(
                &Hook {
                    at: at.clone(),
                    admission_review_versions: &h.admission_review_versions,
                    side_effects: &h.side_effects,
                    timeout_seconds: h.timeout_seconds,
                    match_policy: h.match_policy.as_deref(),
                    namespace_selector: h.namespace_selector.as_ref(),
                    client: &h.client_config,
                },
                own_ns,
                svc.as_ref(),
                errs,
            );
            // A documented choice (webhooks.yaml, manifests/README.md): set explicitly.
            if !matches!(h.failure_policy.as_deref(), Some("Ignore" | "Fail")) {
                errs.push(format!(
                    "{at}: failurePolicy is {:?}: set Ignore or Fail explicitly and say why",
                    h.failure_policy
                ));
            }
            let mut wanted = vec![
                ("", "pods", "CREATE"),
                ("", "pods/ephemeralcontainers", "UPDATE"),
            ];
            for r in ["deployments", "statefulsets", "daemonsets", "replicasets"] {
                wanted.push(("apps", r, "CREATE"));
                wanted.push(("apps", r, "UPDATE"));
            }
            for r in ["jobs", "cronjobs"] {
                wanted.push(("batch", r, "CREATE"));
                wanted.push(("batch", r, "UPDATE"));
            }
            for (g, r, op) in wanted {
                if !rule_covers(&rules, g, r, op) {
                    let group = if g.is_empty() { "core" } else { g };
                    errs.push(format!("{at}: rules do not cover {group} {r} {op}"));
                }
            }
            if h.client_config
                .service
                .as_ref()
                .and_then(|s| s.path.as_deref())
                != Some("/validate")
            {
                errs.push(format!("{at}: clientConfig.service.path is not /validate"));
            }
        }
    }
}

#[test]
fn a_cold_lookup_fits_in_the_webhook_deadline_and_a_slow_one_is_gated() {
    let base = manifests().join("base");
    let text = std::fs::read_to_string(base.join("registries.toml")).unwrap();
    let config =
        archgate::registry::RegistryConfig::from_toml(&text, &base.join("registries.toml"))
            .unwrap_or_else(|e| panic!("base/registries.toml: {e}"));
    let hooks = std::fs::read_to_string(base.join("webhooks.yaml")).unwrap();
    let timeouts: Vec<u64> = hooks
        .lines()
        .filter_map(|l| l.trim().strip_prefix("timeoutSeconds:"))
        .map(|v| v.trim().parse().unwrap())
        .collect();
    assert_eq!(timeouts.len(), 2, "{hooks}");
    for t in timeouts {
        // archgate answers by 80% of the API server's timeout.
        let deadline = std::time::Duration::from_secs(t) * 4 / 5;
        assert!(
            config.timeouts.lookup < deadline,
            "timeouts.lookup {:?} does not fit the {t} s webhook's {deadline:?} deadline",
            config.timeouts.lookup
        );
    }
}
