//! The Deployment: replicas spread over nodes, probes, the listener, security context,
//! resources, termination, live lookups, and the mounts its flags read.

use super::*;

/// The container named archgate (or the only one).
fn archgate_container(spec: &PodSpec) -> Option<&Container> {
    spec.containers
        .iter()
        .find(|c| c.name == "archgate")
        .or(spec.containers.first())
}

pub(crate) fn port_resolves(c: &Container, port: &IntOrString) -> bool {
    c.ports.iter().flatten().any(|p| match port {
        IntOrString::Int(n) => p.container_port == *n,
        IntOrString::String(name) => p.name.as_deref() == Some(name.as_str()),
    })
}

/// Checks the Deployment and returns its pod template labels.
pub(crate) fn check_deployment(
    b: &Bundle,
    ctx: &Ctx,
    own_ns: &str,
    errs: &mut Vec<String>,
) -> Option<(BTreeMap<String, String>, Container, PodSpec)> {
    let (doc, d) = b.one::<Deployment>("Deployment", &ctx.what, errs)?;
    let at = doc.at();
    if d.metadata.namespace.as_deref() != Some(own_ns) {
        errs.push(format!(
            "{at}: namespace is {:?}, expected {own_ns:?}",
            d.metadata.namespace
        ));
    }
    let Some(spec) = d.spec.as_ref() else {
        errs.push(format!("{at}: no spec"));
        return None;
    };
    if spec.replicas.unwrap_or(1) < 2 {
        errs.push(format!(
            "{at}: spec.replicas is {:?}, expected at least 2 (one node down must leave a replica)",
            spec.replicas
        ));
    }
    let labels = spec
        .template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    if !selector_matches(&spec.selector, &labels) {
        errs.push(format!(
            "{at}: spec.selector does not match the pod template's labels"
        ));
    }
    let Some(pod) = spec.template.spec.as_ref() else {
        errs.push(format!("{at}: no pod template spec"));
        return None;
    };

    // Spread over nodes.
    let spread = pod.topology_spread_constraints.iter().flatten().any(|t| {
        t.topology_key == "kubernetes.io/hostname"
            && t.label_selector
                .as_ref()
                .is_some_and(|s| selector_matches(s, &labels))
    });
    let anti = pod
        .affinity
        .as_ref()
        .and_then(|a| a.pod_anti_affinity.as_ref())
        .is_some_and(|a| {
            let term_ok = |t: &k8s_openapi::api::core::v1::PodAffinityTerm| {
                t.topology_key == "kubernetes.io/hostname"
                    && t.label_selector
                        .as_ref()
                        .is_some_and(|s| selector_matches(s, &labels))
            };
            a.required_during_scheduling_ignored_during_execution
                .iter()
                .flatten()
                .any(term_ok)
                || a.preferred_during_scheduling_ignored_during_execution
                    .iter()
                    .flatten()
                    .any(|w| term_ok(&w.pod_affinity_term))
        });
    if !spread && !anti {
        errs.push(format!(
            "{at}: replicas are not spread over nodes: no topologySpreadConstraint or pod \
             anti-affinity on kubernetes.io/hostname that selects the pod's own labels"
        ));
    }

    // Service account.
    for (_, sa) in b.all::<ServiceAccount>("ServiceAccount") {
        if pod.service_account_name != sa.metadata.name {
            errs.push(format!(
                "{at}: serviceAccountName is {:?}, but the ServiceAccount is {:?}",
                pod.service_account_name, sa.metadata.name
            ));
        }
    }

    let Some(c) = archgate_container(pod) else {
        errs.push(format!("{at}: no containers"));
        return None;
    };
    let cat = format!("{at} container {}", c.name);

    // Probes.
    for (name, probe, path) in [
        ("readinessProbe", &c.readiness_probe, "/readyz"),
        ("livenessProbe", &c.liveness_probe, "/healthz"),
    ] {
        match probe.as_ref().and_then(|p| p.http_get.as_ref()) {
            None => errs.push(format!("{cat}: no {name} with httpGet {path}")),
            Some(g) => {
                if g.path.as_deref() != Some(path) {
                    errs.push(format!(
                        "{cat}: {name} path is {:?}, expected {path}",
                        g.path
                    ));
                }
                if g.scheme.as_deref() != Some("HTTPS") {
                    errs.push(format!(
                        "{cat}: {name} scheme is {:?}, expected HTTPS (archgate serves TLS only)",
                        g.scheme
                    ));
                }
                if !port_resolves(c, &g.port) {
                    errs.push(format!(
                        "{cat}: {name} port {:?} is not a container port",
                        g.port
                    ));
                }
            }
        }
    }

    // The listener and the container port agree.
    let args = c.args.clone().unwrap_or_default();
    match arg(&args, "--listen").and_then(|l| l.rsplit(':').next()?.parse::<i32>().ok()) {
        Some(p) if port_resolves(c, &IntOrString::Int(p)) => {}
        Some(p) => errs.push(format!(
            "{cat}: --listen port {p} is not a declared containerPort"
        )),
        None => errs.push(format!("{cat}: no --listen=ADDR:PORT argument")),
    }

    // Security: the container's setting wins over the pod's.
    let psc = pod.security_context.as_ref();
    let csc = c.security_context.as_ref();
    let non_root = csc
        .and_then(|s| s.run_as_non_root)
        .or(psc.and_then(|s| s.run_as_non_root));
    if non_root != Some(true) {
        errs.push(format!("{cat}: runAsNonRoot is not true"));
    }
    let uid = csc
        .and_then(|s| s.run_as_user)
        .or(psc.and_then(|s| s.run_as_user));
    if uid == Some(0) {
        errs.push(format!("{cat}: runAsUser is 0 (root)"));
    }
    if csc.and_then(|s| s.read_only_root_filesystem) != Some(true) {
        errs.push(format!(
            "{cat}: securityContext.readOnlyRootFilesystem is not true"
        ));
    }
    if csc.and_then(|s| s.allow_privilege_escalation) != Some(false) {
        errs.push(format!(
            "{cat}: securityContext.allowPrivilegeEscalation is not false"
        ));
    }
    if csc.and_then(|s| s.privileged) == Some(true) {
        errs.push(format!("{cat}: securityContext.privileged is true"));
    }
    let drops_all = csc
        .and_then(|s| s.capabilities.as_ref())
        .is_some_and(|c| c.drop.iter().flatten().any(|d| d == "ALL"));
    if !drops_all {
        errs.push(format!("{cat}: capabilities do not drop ALL"));
    }
    let seccomp = csc
        .and_then(|s| s.seccomp_profile.as_ref())
        .or(psc.and_then(|s| s.seccomp_profile.as_ref()))
        .map(|p| p.type_.as_str());
    if seccomp != Some("RuntimeDefault") {
        errs.push(format!(
            "{cat}: seccompProfile is {seccomp:?}, expected RuntimeDefault"
        ));
    }
    if pod.host_network == Some(true) || pod.host_pid == Some(true) {
        errs.push(format!("{at}: hostNetwork/hostPID set"));
    }

    // Resources.
    let requests = c
        .resources
        .as_ref()
        .and_then(|r| r.requests.clone())
        .unwrap_or_default();
    for r in ["cpu", "memory"] {
        if !requests.contains_key(r) {
            errs.push(format!("{cat}: resources.requests.{r} is not set"));
        }
    }

    // Termination: after SIGTERM archgate keeps serving for --shutdown-delay, while the pod
    // leaves the Service's endpoints (without it, the API server's calls in those seconds are
    // refused and their pods admitted unplaced), then drains for up to 30 s. The kubelet's
    // SIGKILL must come after both.
    let delay = match arg(&args, "--shutdown-delay") {
        None => {
            errs.push(format!(
                "{cat}: no --shutdown-delay: archgate would close its port while the Service \
                 still sends it reviews"
            ));
            None
        }
        Some(v) => match archgate::text::parse_duration(v) {
            Some(d) if !d.is_zero() => Some(d),
            _ => {
                errs.push(format!(
                    "{cat}: --shutdown-delay={v} is not a positive duration"
                ));
                None
            }
        },
    };
    let grace = pod.termination_grace_period_seconds.unwrap_or(30);
    let needed = delay.unwrap_or_default().as_secs_f64() + 30.0;
    if grace as f64 <= needed {
        errs.push(format!(
            "{at}: terminationGracePeriodSeconds {grace} leaves no room after the {:?} \
             --shutdown-delay and archgate's 30 s drain: make it more than {needed} s",
            delay.unwrap_or_default()
        ));
    }

    // Live image lookups: the main job, on in the shipped install.
    if arg(&args, "--registry-config").is_none() {
        errs.push(format!(
            "{cat}: no --registry-config: archgate would never ask a registry, and every image \
             outside the static platforms file would be placed by nothing"
        ));
    }
    // Its own namespace (never gated, the Lease's home) comes from the downward API.
    let from_field = |name: &str, path: &str| {
        c.env.iter().flatten().any(|e| {
            e.name == name
                && e.value_from
                    .as_ref()
                    .and_then(|v| v.field_ref.as_ref())
                    .is_some_and(|f| f.field_path == path)
        })
    };
    if !from_field("ARCHGATE_NAMESPACE", "metadata.namespace") {
        errs.push(format!(
            "{cat}: env ARCHGATE_NAMESPACE is not the pod's metadata.namespace (downward API)"
        ));
    }

    check_mounts(b, ctx, &cat, pod, c, &args, errs);
    Some((labels, c.clone(), pod.clone()))
}

/// --policy/--platforms come from the policy ConfigMap, --tls-cert/--tls-key from the TLS
/// Secret, each through a mount that holds the file.
fn check_mounts(
    b: &Bundle,
    ctx: &Ctx,
    cat: &str,
    pod: &PodSpec,
    c: &Container,
    args: &[String],
    errs: &mut Vec<String>,
) {
    let volume_for = |path: &str| {
        let m = c
            .volume_mounts
            .iter()
            .flatten()
            .filter(|m| path.starts_with(&format!("{}/", m.mount_path.trim_end_matches('/'))))
            .max_by_key(|m| m.mount_path.len())?;
        let v = pod.volumes.iter().flatten().find(|v| v.name == m.name)?;
        Some((m.clone(), v.clone()))
    };
    for flag in ["--policy", "--platforms", "--registry-config"] {
        let Some(path) = arg(args, flag) else {
            errs.push(format!("{cat}: no {flag} argument"));
            continue;
        };
        let Some((m, v)) = volume_for(path) else {
            errs.push(format!("{cat}: {flag}={path} is under no volume mount"));
            continue;
        };
        let Some(cm) = v.config_map.as_ref() else {
            errs.push(format!(
                "{cat}: {flag}={path} is on volume {}, which is not a ConfigMap",
                v.name
            ));
            continue;
        };
        if m.read_only != Some(true) {
            errs.push(format!("{cat}: mount {} is not readOnly", m.name));
        }
        let key = &path[m.mount_path.trim_end_matches('/').len() + 1..];
        match &ctx.base {
            // Files: the ConfigMap comes from the base's configMapGenerator.
            Some(base) => {
                let generator = base
                    .config_map_generator
                    .iter()
                    .flatten()
                    .find(|g| g.name == cm.name);
                match generator {
                    None => errs.push(format!(
                        "{cat}: volume {} mounts ConfigMap {:?}, which manifests/base/kustomization.yaml does not generate",
                        v.name, cm.name
                    )),
                    Some(g) => {
                        if !g.file_entries().iter().any(|(k, _)| k == key) {
                            errs.push(format!(
                                "{cat}: {flag}={path}: the generated ConfigMap {} has no key {key}",
                                cm.name
                            ));
                        }
                    }
                }
            }
            // A build: the ConfigMap is an object (with its hash suffix, which the volume follows).
            None => {
                let found = b
                    .all::<ConfigMap>("ConfigMap")
                    .into_iter()
                    .find(|(_, o)| o.metadata.name.as_deref() == Some(cm.name.as_str()));
                match found {
                    None => errs.push(format!(
                        "{cat}: volume {} mounts ConfigMap {:?}, which the build does not contain",
                        v.name, cm.name
                    )),
                    Some((_, o)) => {
                        if !o.data.as_ref().is_some_and(|d| d.contains_key(key)) {
                            errs.push(format!(
                                "{cat}: {flag}={path}: ConfigMap {} has no key {key}",
                                cm.name
                            ));
                        }
                    }
                }
            }
        }
    }
    for flag in ["--tls-cert", "--tls-key"] {
        let Some(path) = arg(args, flag) else {
            errs.push(format!("{cat}: no {flag} argument"));
            continue;
        };
        let Some((m, v)) = volume_for(path) else {
            errs.push(format!("{cat}: {flag}={path} is under no volume mount"));
            continue;
        };
        let Some(s) = v.secret.as_ref() else {
            errs.push(format!(
                "{cat}: {flag}={path} is on volume {}, which is not a Secret",
                v.name
            ));
            continue;
        };
        if s.secret_name.as_deref() != Some(TLS_SECRET) {
            errs.push(format!(
                "{cat}: the TLS volume mounts Secret {:?}, expected {TLS_SECRET} (what both \
                 overlays create)",
                s.secret_name
            ));
        }
        if m.sub_path.is_some() {
            errs.push(format!(
                "{cat}: mount {} uses subPath: the kubelet never updates it, so certificate \
                 renewals would not reach archgate",
                m.name
            ));
        }
        if let Some(mode) = s.default_mode {
            if mode & 0o007 != 0 {
                errs.push(format!(
                    "{cat}: Secret volume defaultMode {mode:#o} lets every user read the private key"
                ));
            }
        }
        let key = &path[m.mount_path.trim_end_matches('/').len() + 1..];
        if !matches!(key, "tls.crt" | "tls.key") {
            errs.push(format!(
                "{cat}: {flag}={path}: key {key} is not tls.crt/tls.key of a kubernetes.io/tls Secret"
            ));
        }
    }
}
