//! RBAC: what archgate reads, the few writes it makes, and bindings to its ServiceAccount.

use super::*;

fn grants(rule: &PolicyRule, resource: &str) -> bool {
    (has(&rule.api_groups, "")) && has(&rule.resources, resource)
}

pub(crate) fn check_rbac(b: &Bundle, ctx: &Ctx, own_ns: &str, errs: &mut Vec<String>) {
    let mut roles: Vec<(String, String, Vec<PolicyRule>)> = Vec::new();
    for (d, r) in b.all::<ClusterRole>("ClusterRole") {
        roles.push((
            d.at(),
            r.metadata.name.unwrap_or_default(),
            r.rules.unwrap_or_default(),
        ));
    }
    for (d, r) in b.all::<Role>("Role") {
        roles.push((
            d.at(),
            r.metadata.name.unwrap_or_default(),
            r.rules.unwrap_or_default(),
        ));
    }
    let all_rules: Vec<&PolicyRule> = roles.iter().flat_map(|(_, _, r)| r).collect();
    // Nodes for the inventory, Namespaces for rules that pick namespaces by label.
    for resource in ["nodes", "namespaces"] {
        for verb in ["get", "list", "watch"] {
            if !all_rules
                .iter()
                .any(|r| grants(r, resource) && r.verbs.iter().any(|v| v == verb))
            {
                errs.push(format!("{}: no role grants {verb} on {resource}", ctx.what));
            }
        }
    }
    // The placement controller releases gated pods, explains it in Events and holds a Lease;
    // those are the only writes archgate makes.
    let writes: &[(&str, &str)] = &[
        ("pods", "patch"),
        ("events", "create"),
        ("leases", "create"),
        ("leases", "update"),
    ];
    let leases =
        |r: &PolicyRule| has(&r.api_groups, "coordination.k8s.io") && has(&r.resources, "leases");
    for (d, r) in b.all::<ClusterRole>("ClusterRole") {
        if r.rules.unwrap_or_default().iter().any(leases) {
            errs.push(format!(
                "{}: grants leases cluster-wide: the placement controller's Lease needs a Role in archgate's namespace only",
                d.at()
            ));
        }
    }
    for (resource, verb) in [("pods", "watch"), ("pods", "patch"), ("events", "create")]
        .into_iter()
        .chain([
            ("leases", "get"),
            ("leases", "create"),
            ("leases", "update"),
        ])
    {
        let granted = |r: &&PolicyRule| {
            (grants(r, resource) || (resource == "leases" && leases(r)))
                && r.verbs.iter().any(|v| v == verb)
        };
        if !all_rules.iter().any(granted) {
            errs.push(format!(
                "{}: no role grants {verb} on {resource} (the placement controller)",
                ctx.what
            ));
        }
    }
    // The misplaced-pods watch: every bound pod, listed then watched, and an Event on each.
    for (resource, verb) in [("pods", "list"), ("pods", "watch"), ("events", "create")] {
        if !all_rules
            .iter()
            .any(|r| grants(r, resource) && r.verbs.iter().any(|v| v == verb))
        {
            errs.push(format!(
                "{}: no role grants {verb} on {resource} (the misplaced-pods watch)",
                ctx.what
            ));
        }
    }
    for (at, name, rules) in &roles {
        for r in rules {
            let resources = r.resources.clone().unwrap_or_default();
            let stray = r.verbs.iter().find(|v| {
                !matches!(v.as_str(), "get" | "list" | "watch")
                    && !resources
                        .iter()
                        .all(|res| writes.contains(&(res.as_str(), v.as_str())))
            });
            if let Some(verb) = stray {
                errs.push(format!(
                    "{at}: grants {verb} on {resources:?}: archgate only reads, and writes only \
                     pods (patch), events (create) and its Lease (create, update)"
                ));
            }

            if has(&r.api_groups, "*") && r.api_groups.iter().flatten().any(|g| g == "*") {
                errs.push(format!("{at}: grants on every API group"));
            }
            for sensitive in ["secrets", "serviceaccounts"] {
                if grants(r, sensitive) && !(ctx.pull_secrets && name == "archgate-pull-secrets") {
                    errs.push(format!(
                        "{at}: grants {sensitive}: only components/pull-secrets may (role \
                         archgate-pull-secrets)"
                    ));
                }
            }
        }
    }
    if ctx.pull_secrets {
        let ok = roles.iter().any(|(_, n, rules)| {
            n == "archgate-pull-secrets"
                && ["secrets", "serviceaccounts"].iter().all(|res| {
                    rules.iter().any(|r| {
                        grants(r, res)
                            && ["get", "list", "watch"]
                                .iter()
                                .all(|v| r.verbs.iter().any(|x| x == v))
                    })
                })
        });
        if !ok {
            errs.push(format!(
                "{}: pull-secrets expected, but no archgate-pull-secrets role grants get/list/watch on secrets and serviceaccounts",
                ctx.what
            ));
        }
    }
    // Bindings bind roles that exist to archgate's ServiceAccount.
    let sa = b
        .all::<ServiceAccount>("ServiceAccount")
        .into_iter()
        .filter_map(|(_, s)| s.metadata.name)
        .collect::<Vec<_>>();
    let role_names: BTreeSet<&str> = roles.iter().map(|(_, n, _)| n.as_str()).collect();
    let mut bound: BTreeSet<String> = BTreeSet::new();
    let bindings = b
        .all::<ClusterRoleBinding>("ClusterRoleBinding")
        .into_iter()
        .map(|(d, rb)| (d.at(), rb.role_ref, rb.subjects))
        .chain(
            b.all::<RoleBinding>("RoleBinding")
                .into_iter()
                .map(|(d, rb)| (d.at(), rb.role_ref, rb.subjects)),
        );
    for (at, role_ref, subjects) in bindings {
        if !role_names.contains(role_ref.name.as_str()) {
            errs.push(format!(
                "{at}: roleRef {} is not a role in these manifests",
                role_ref.name
            ));
        }
        bound.insert(role_ref.name.clone());
        for s in subjects.iter().flatten() {
            if s.kind != "ServiceAccount"
                || !sa.contains(&s.name)
                || s.namespace.as_deref() != Some(own_ns)
            {
                errs.push(format!(
                    "{at}: subject {} {}/{} is not archgate's ServiceAccount {own_ns}/{sa:?}",
                    s.kind,
                    s.namespace.as_deref().unwrap_or(""),
                    s.name
                ));
            }
        }
    }
    for (at, name, _) in &roles {
        if !bound.contains(name) {
            errs.push(format!("{at}: role {name} is bound to nothing"));
        }
    }
}
