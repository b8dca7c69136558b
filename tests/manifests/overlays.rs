//! The base, the components and the overlays, checked on the files with their JSON6902 patches
//! applied here.

use super::*;

/// Applies a kustomization's inline or file JSON6902 patches to the matching documents.
fn apply_json6902(dir: &Path, k: &Kustomization, docs: &mut [Doc], errs: &mut Vec<String>) {
    for (i, p) in k.patches.iter().flatten().enumerate() {
        let at = format!("{} patches[{i}]", rel(&dir.join("kustomization.yaml")));
        let text = match (&p.path, &p.patch) {
            (Some(path), None) => std::fs::read_to_string(dir.join(path)).unwrap_or_default(),
            (None, Some(inline)) => inline.clone(),
            _ => {
                errs.push(format!("{at}: needs exactly one of path and patch"));
                continue;
            }
        };
        let Ok(parsed) = parse_stream(&at, &text) else {
            errs.push(format!("{at}: the patch is not valid YAML"));
            continue;
        };
        for pd in &parsed {
            if !pd.value.is_array() {
                continue; // a strategic merge patch, checked by its typed round trip
            }
            // The self-managed placeholder is filled before applying, as its README says.
            let mut value = pd.value.clone();
            if let Some(arr) = value.as_array_mut() {
                for op in arr {
                    if op.get("value").and_then(Value::as_str) == Some("REPLACE_WITH_BASE64_CA") {
                        op["value"] = Value::String("ZHVtbXkgQ0E=".into());
                    }
                }
            }
            let patch: json_patch::Patch = serde_json::from_value(value).unwrap();
            let Some(t) = &p.target else {
                errs.push(format!("{at}: a JSON6902 patch needs a target"));
                continue;
            };
            let mut hit = false;
            for d in docs.iter_mut() {
                let group_version = match (&t.group, &t.version) {
                    (Some(g), Some(v)) if !g.is_empty() => format!("{g}/{v}"),
                    (_, Some(v)) => v.clone(),
                    _ => d.api_version().to_string(),
                };
                if t.kind.as_deref().is_some_and(|k| k != d.kind())
                    || t.name.as_deref().is_some_and(|n| n != d.name())
                    || group_version != d.api_version()
                {
                    continue;
                }
                hit = true;
                if let Err(e) = json_patch::patch(&mut d.value, &patch) {
                    errs.push(format!("{at}: does not apply to {}: {e}", d.at()));
                }
                d.file = format!("{} patched by {at}", d.file);
            }
            if !hit {
                errs.push(format!("{at}: the target matches no object"));
            }
        }
    }
}

#[test]
fn base_keeps_the_invariants() {
    let base_dir = manifests().join("base");
    let ctx = Ctx {
        what: "manifests/base".into(),
        base: Some(kustomization(&base_dir)),
        pull_secrets: false,
    };
    let b = base_bundle();
    let mut errs = check_bundle(&b, &ctx);
    // The base leaves the caBundle to the overlays.
    for d in b
        .of_kind("MutatingWebhookConfiguration")
        .into_iter()
        .chain(b.of_kind("ValidatingWebhookConfiguration"))
    {
        for (i, h) in d.value["webhooks"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            if h.pointer("/clientConfig/caBundle").is_some() {
                errs.push(format!(
                    "{} webhooks[{i}]: caBundle set in the base; the overlays provide it",
                    d.at()
                ));
            }
        }
    }
    fail_on(errs);
}

#[test]
fn pull_secrets_component_adds_the_flag_and_the_secret_rbac_only() {
    let dir = manifests().join("components/pull-secrets");
    let k = kustomization(&dir);
    assert_eq!(k.kind, "Component", "{}: not a Component", rel(&dir));
    let mut b = base_bundle();
    let mut errs = Vec::new();
    apply_json6902(&dir, &k, &mut b.docs, &mut errs);
    for r in k.resources.iter().flatten() {
        b.docs.extend(load(&dir.join(r)));
    }
    let ctx = Ctx {
        what: "manifests/base + components/pull-secrets".into(),
        base: Some(kustomization(&manifests().join("base"))),
        pull_secrets: true,
    };
    errs.extend(check_bundle(&b, &ctx));
    let dep = b.of_kind("Deployment")[0];
    let args = dep.value["spec"]["template"]["spec"]["containers"][0]["args"].clone();
    if !args
        .as_array()
        .into_iter()
        .flatten()
        .any(|a| a == "--pull-secrets")
    {
        errs.push(format!("{}: no --pull-secrets in args {args}", dep.at()));
    }
    fail_on(errs);
}

#[test]
fn registry_credentials_component_mounts_the_docker_config_secret() {
    let dir = manifests().join("components/registry-credentials");
    let k = kustomization(&dir);
    assert_eq!(k.kind, "Component", "{}: not a Component", rel(&dir));
    let mut b = base_bundle();
    let mut errs = Vec::new();
    apply_json6902(&dir, &k, &mut b.docs, &mut errs);
    let ctx = Ctx {
        what: "manifests/base + components/registry-credentials".into(),
        base: Some(kustomization(&manifests().join("base"))),
        pull_secrets: false,
    };
    errs.extend(check_bundle(&b, &ctx));
    let dep = b.of_kind("Deployment")[0];
    let spec = &dep.value["spec"]["template"]["spec"];
    let args: Vec<&str> = spec["containers"][0]["args"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let path = args
        .iter()
        .find_map(|a| a.strip_prefix("--docker-config="))
        .unwrap_or_else(|| panic!("no --docker-config in {args:?}"));
    let mount = spec["containers"][0]["volumeMounts"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|m| path.starts_with(&format!("{}/", m["mountPath"].as_str().unwrap_or("-"))))
        .unwrap_or_else(|| panic!("{path} is under no volume mount"));
    assert_eq!(mount["readOnly"], true);
    let volume = spec["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|v| v["name"] == mount["name"])
        .unwrap();
    assert_eq!(
        volume["secret"]["secretName"],
        "archgate-registry-credentials"
    );
    fail_on(errs);
}

#[test]
fn self_managed_overlay_provides_the_tls_secret_and_the_ca_bundle() {
    let dir = manifests().join("overlays/self-managed");
    let k = kustomization(&dir);
    let mut errs = Vec::new();
    let file = rel(&dir.join("kustomization.yaml"));
    if !k.resources.iter().flatten().any(|r| r == "../../base") {
        errs.push(format!("{file}: does not build on ../../base"));
    }
    match k
        .secret_generator
        .iter()
        .flatten()
        .find(|g| g.name == TLS_SECRET)
    {
        None => errs.push(format!("{file}: no secretGenerator for {TLS_SECRET}")),
        Some(g) => {
            if g.type_.as_deref() != Some("kubernetes.io/tls") {
                errs.push(format!("{file}: {TLS_SECRET} type is {:?}", g.type_));
            }
            let keys: Vec<String> = g.file_entries().into_iter().map(|(k, _)| k).collect();
            for key in ["tls.crt", "tls.key"] {
                if !keys.iter().any(|k| k == key) {
                    errs.push(format!("{file}: {TLS_SECRET} has no key {key}"));
                }
            }
            if g.namespace.as_deref() != Some("archgate") {
                errs.push(format!(
                    "{file}: {TLS_SECRET} namespace is {:?}",
                    g.namespace
                ));
            }
            if g.options.as_ref().and_then(|o| o.disable_name_suffix_hash) != Some(true) {
                errs.push(format!(
                    "{file}: {TLS_SECRET} gets a hash suffix: renewals would roll the Deployment \
                     instead of reloading in place"
                ));
            }
        }
    }
    // The placeholder is there for the README's sed, and is not base64: an unfilled patch is
    // rejected at apply instead of installing a bogus CA.
    let patch = std::fs::read_to_string(dir.join("caBundle-patch.yaml")).unwrap();
    if !patch.contains("value: REPLACE_WITH_BASE64_CA") {
        errs.push(format!(
            "{}: no REPLACE_WITH_BASE64_CA placeholder for the README's sed",
            rel(&dir.join("caBundle-patch.yaml"))
        ));
    }
    let mut b = base_bundle();
    apply_json6902(&dir, &k, &mut b.docs, &mut errs);
    for kind in [
        "MutatingWebhookConfiguration",
        "ValidatingWebhookConfiguration",
    ] {
        for d in b.of_kind(kind) {
            for (i, h) in d.value["webhooks"]
                .as_array()
                .into_iter()
                .flatten()
                .enumerate()
            {
                if h.pointer("/clientConfig/caBundle").is_none() {
                    errs.push(format!(
                        "{} webhooks[{i}]: no caBundle after the patch",
                        d.at()
                    ));
                }
            }
            // And the patched objects still parse.
            if let Err(e) = check_typed(d) {
                errs.push(e);
            }
        }
    }
    fail_on(errs);
}

#[test]
fn cert_manager_overlay_issues_the_tls_secret_and_injects_the_ca() {
    let dir = manifests().join("overlays/cert-manager");
    let k = kustomization(&dir);
    let file = rel(&dir.join("kustomization.yaml"));
    let mut errs = Vec::new();
    if !k.resources.iter().flatten().any(|r| r == "../../base") {
        errs.push(format!("{file}: does not build on ../../base"));
    }
    let mut certs = Vec::new();
    let mut issuers = Vec::new();
    for r in k
        .resources
        .iter()
        .flatten()
        .filter(|r| !r.starts_with(".."))
    {
        for d in load(&dir.join(r)) {
            match d.kind() {
                "Certificate" => certs.push(roundtrip::<Certificate>(&d).unwrap()),
                "Issuer" => issuers.push(roundtrip::<Issuer>(&d).unwrap()),
                _ => {}
            }
        }
    }
    let Some(cert) = certs.iter().find(|c| c.spec.secret_name == TLS_SECRET) else {
        panic!("{file}: no Certificate writes the Secret {TLS_SECRET}");
    };
    let cert_name = cert.metadata.name.clone().unwrap_or_default();
    let ns = cert.metadata.namespace.clone().unwrap_or_default();
    if ns != "archgate" {
        errs.push(format!("Certificate {cert_name}: namespace {ns:?}"));
    }
    let dns = cert.spec.dns_names.clone().unwrap_or_default();
    for want in ["archgate.archgate.svc"] {
        if !dns.iter().any(|d| d == want) {
            errs.push(format!(
                "Certificate {cert_name}: dnsNames {dns:?} lack {want}, the name the API server dials"
            ));
        }
    }
    let issuer = &cert.spec.issuer_ref;
    if issuer.kind.as_deref().unwrap_or("Issuer") == "Issuer"
        && !issuers
            .iter()
            .any(|i| i.metadata.name.as_deref() == Some(issuer.name.as_str()))
    {
        errs.push(format!(
            "Certificate {cert_name}: issuerRef {} is not an Issuer in the overlay",
            issuer.name
        ));
    }
    let want = format!("{ns}/{cert_name}");
    for kind in [
        "MutatingWebhookConfiguration",
        "ValidatingWebhookConfiguration",
    ] {
        let annotated = k.patches.iter().flatten().any(|p| {
            let Some(text) = &p.patch else { return false };
            parse_stream("patch", text)
                .unwrap_or_default()
                .iter()
                .any(|d| {
                    d.kind() == kind
                        && d.str_at("/metadata/annotations/cert-manager.io~1inject-ca-from") == want
                })
        });
        if !annotated {
            errs.push(format!(
                "{file}: no patch annotates the {kind} with cert-manager.io/inject-ca-from: {want}"
            ));
        }
    }
    fail_on(errs);
}
