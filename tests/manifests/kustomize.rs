//! Kustomizations name files that exist, and every manifest is used; when kubectl is on PATH,
//! `kubectl kustomize` of each overlay keeps the invariants.

use super::*;

/// Every path a kustomization names exists, and every manifest is used by some kustomization.
/// The self-managed overlay's certs/ is the user's (`archgate certs` output): it may be missing,
/// but then it must be git-ignored.
#[test]
fn kustomization_references_exist() {
    let mut errs = Vec::new();
    let mut used: BTreeSet<PathBuf> = BTreeSet::new();
    let files = yaml_files(&manifests());
    for f in files.iter().filter(|f| is_kustomization_file(f)) {
        let dir = f.parent().unwrap();
        let file = rel(f);
        let k = kustomization(dir);
        let exists_dir = |r: &str, want_kind: &str, errs: &mut Vec<String>| {
            let p = dir.join(r);
            let kf = p.join("kustomization.yaml");
            if !kf.is_file() {
                errs.push(format!("{file}: {r} has no kustomization.yaml"));
            } else if kustomization(&p).kind != want_kind {
                errs.push(format!("{file}: {r} is not a {want_kind}"));
            }
        };
        for r in k.resources.iter().flatten() {
            let p = dir.join(r);
            if p.is_dir() {
                exists_dir(r, "Kustomization", &mut errs);
            } else if p.is_file() {
                used.insert(p.canonicalize().unwrap());
            } else {
                errs.push(format!("{file}: resource {r} does not exist"));
            }
        }
        for c in k.components.iter().flatten() {
            exists_dir(c, "Component", &mut errs);
        }
        for (i, p) in k.patches.iter().flatten().enumerate() {
            if let Some(path) = &p.path {
                let full = dir.join(path);
                if full.is_file() {
                    used.insert(full.canonicalize().unwrap());
                } else {
                    errs.push(format!("{file}: patches[{i}].path {path} does not exist"));
                }
            }
        }
        let gitignore = std::fs::read_to_string(dir.join(".gitignore")).unwrap_or_default();
        let ignored = |path: &str| {
            let first = path.split('/').next().unwrap_or(path);
            gitignore
                .lines()
                .map(str::trim)
                .any(|l| l == format!("{first}/") || l == first || l == format!("/{first}/"))
        };
        let generators = k
            .config_map_generator
            .iter()
            .flatten()
            .map(|g| ("configMapGenerator", g))
            .chain(
                k.secret_generator
                    .iter()
                    .flatten()
                    .map(|g| ("secretGenerator", g)),
            );
        for (kind, g) in generators {
            for (_, path) in g.file_entries() {
                if dir.join(&path).is_file() {
                    continue;
                }
                let user_certs = file.ends_with("overlays/self-managed/kustomization.yaml")
                    && path.starts_with("certs/");
                if !user_certs {
                    errs.push(format!(
                        "{file}: {kind} {} file {path} does not exist",
                        g.name
                    ));
                } else if !ignored(&path) {
                    errs.push(format!(
                        "{file}: {kind} {} reads {path} (private key material), but {}/.gitignore \
                         does not ignore it",
                        g.name,
                        rel(dir)
                    ));
                }
            }
            for env in g.envs.iter().flatten() {
                if !dir.join(env).is_file() {
                    errs.push(format!(
                        "{file}: {kind} {} env file {env} does not exist",
                        g.name
                    ));
                }
            }
        }
    }
    for f in files.iter().filter(|f| !is_kustomization_file(f)) {
        if !used.contains(&f.canonicalize().unwrap()) {
            errs.push(format!(
                "{}: no kustomization lists it (resources or patches), so it is never applied",
                rel(f)
            ));
        }
    }
    fail_on(errs);
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let p = entry.unwrap().path();
        let dest = to.join(p.file_name().unwrap());
        if p.is_dir() {
            if p.file_name().is_some_and(|n| n != "certs") {
                copy_dir(&p, &dest);
            }
        } else {
            std::fs::copy(&p, &dest).unwrap();
        }
    }
}

fn kubectl() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("kubectl"))
        .find(|p| p.is_file())
}

#[test]
fn kustomize_build_of_each_overlay_keeps_the_invariants() {
    let Some(kubectl) = kubectl() else {
        eprintln!(
            "kubectl is not on PATH: `kubectl kustomize` of the overlays is NOT checked; the \
             file-level tests in this file (typed parse of every manifest, invariants of the base \
             with the overlays' and components' patches applied, references) are the test"
        );
        return;
    };
    // A copy, with what an operator adds: the certificates and the filled-in caBundle.
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("manifests");
    copy_dir(&manifests(), &root);
    let certs = root.join("overlays/self-managed/certs");
    std::fs::create_dir_all(&certs).unwrap();
    for f in ["ca.crt", "tls.crt", "tls.key"] {
        std::fs::write(certs.join(f), format!("dummy {f}\n")).unwrap();
    }
    let patch = root.join("overlays/self-managed/caBundle-patch.yaml");
    let text = std::fs::read_to_string(&patch).unwrap();
    std::fs::write(
        &patch,
        text.replace("REPLACE_WITH_BASE64_CA", "ZHVtbXkgQ0E="),
    )
    .unwrap();
    // Both optional components on top of cert-manager.
    let all = root.join("overlays/everything");
    std::fs::create_dir_all(&all).unwrap();
    std::fs::write(
        all.join("kustomization.yaml"),
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - \
         ../cert-manager\ncomponents:\n  - ../../components/pull-secrets\n  - \
         ../../components/monitoring\n",
    )
    .unwrap();

    let mut errs = Vec::new();
    for (overlay, pull_secrets, tls_secret, monitoring) in [
        ("self-managed", false, true, false),
        ("cert-manager", false, false, false),
        ("everything", true, false, true),
    ] {
        let what = format!("kubectl kustomize overlays/{overlay}");
        let out = Command::new(&kubectl)
            .arg("kustomize")
            .arg(root.join("overlays").join(overlay))
            .output()
            .unwrap();
        if !out.status.success() {
            errs.push(format!(
                "{what} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
            continue;
        }
        let docs = match parse_stream(&what, &String::from_utf8_lossy(&out.stdout)) {
            Ok(d) => d,
            Err(e) => {
                errs.push(e);
                continue;
            }
        };
        let b = Bundle { docs };
        let ctx = Ctx {
            what: what.clone(),
            base: None,
            pull_secrets,
        };
        let e = check_bundle(&b, &ctx);
        let typed_ok = e.is_empty();
        errs.extend(e);
        if !typed_ok {
            continue;
        }
        // The TLS Secret comes from the overlay: a generated Secret or a Certificate.
        let secret = b
            .all::<Secret>("Secret")
            .into_iter()
            .any(|(_, s)| s.metadata.name.as_deref() == Some(TLS_SECRET));
        let cert = b
            .all::<Certificate>("Certificate")
            .into_iter()
            .any(|(_, c)| c.spec.secret_name == TLS_SECRET);
        if secret != tls_secret || cert == tls_secret {
            errs.push(format!(
                "{what}: {TLS_SECRET} should come from {}",
                if tls_secret {
                    "a Secret"
                } else {
                    "a Certificate"
                }
            ));
        }
        for kind in [
            "MutatingWebhookConfiguration",
            "ValidatingWebhookConfiguration",
        ] {
            for d in b.of_kind(kind) {
                let injected = !d
                    .str_at("/metadata/annotations/cert-manager.io~1inject-ca-from")
                    .is_empty();
                let bundled = d.value["webhooks"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .all(|h| h.pointer("/clientConfig/caBundle").is_some());
                if !(injected || bundled) {
                    errs.push(format!("{}: no caBundle and no CA injection", d.at()));
                }
            }
        }
        let args = b.of_kind("Deployment")[0].value["spec"]["template"]["spec"]["containers"][0]
            ["args"]
            .clone();
        let has_flag = args
            .as_array()
            .into_iter()
            .flatten()
            .any(|a| a == "--pull-secrets");
        if has_flag != pull_secrets {
            errs.push(format!("{what}: --pull-secrets in args is {has_flag}"));
        }
        let has_monitor = !b.of_kind("ServiceMonitor").is_empty();
        if has_monitor != monitoring {
            errs.push(format!("{what}: ServiceMonitor present is {has_monitor}"));
        }
    }
    fail_on(errs);
}
