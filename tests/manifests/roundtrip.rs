//! The typed round trip: a document is deserialized into its struct, serialized back and
//! compared with the original, so unknown or misspelt fields fail, naming the file, the document
//! and the JSON path.

use super::*;

/// Appends every JSON path of `orig` that `back` does not hold with the same value.
fn dropped(orig: &Value, back: &Value, path: &str, out: &mut Vec<String>) {
    match (orig, back) {
        (Value::Object(o), Value::Object(b)) => {
            for (k, v) in o {
                let p = format!("{path}.{k}");
                match b.get(k) {
                    None => out.push(format!(
                        "{p} is not a field of the typed struct (unknown or misspelt)"
                    )),
                    Some(bv) => dropped(v, bv, &p, out),
                }
            }
        }
        (Value::Array(o), Value::Array(b)) if o.len() == b.len() => {
            for (i, (ov, bv)) in o.iter().zip(b).enumerate() {
                dropped(ov, bv, &format!("{path}[{i}]"), out);
            }
        }
        (o, b) if o == b => {}
        (o, b) => out.push(format!(
            "{path} reads back as {b} instead of {o} (wrong type or shape)"
        )),
    }
}

/// The JSON paths in `v` where an object has the key `key` (to place a serde "unknown field"
/// error from a `deny_unknown_fields` struct).
fn paths_of_key(v: &Value, key: &str, path: &str, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                let p = format!("{path}.{k}");
                if k == key {
                    out.push(p.clone());
                }
                paths_of_key(v, key, &p, out);
            }
        }
        Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                paths_of_key(v, key, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// Deserializes `value` into `T`, serializes it back and reports every field `T` did not keep.
fn roundtrip_value<T: DeserializeOwned + Serialize>(value: &Value) -> Result<T, String> {
    let typed: T = serde_json::from_value(value.clone()).map_err(|e| {
        let msg = e.to_string();
        let mut paths = Vec::new();
        if let Some(field) = msg
            .strip_prefix("unknown field `")
            .and_then(|rest| rest.split('`').next())
        {
            paths_of_key(value, field, "$", &mut paths);
        }
        if paths.is_empty() {
            format!("does not parse as {}: {msg}", std::any::type_name::<T>())
        } else {
            format!("{}: {msg}", paths.join(", "))
        }
    })?;
    let back = normalise(serde_json::to_value(&typed).unwrap());
    let mut diffs = Vec::new();
    dropped(value, &back, "$", &mut diffs);
    if diffs.is_empty() {
        Ok(typed)
    } else {
        Err(diffs.join("; "))
    }
}

pub(crate) fn roundtrip<T: DeserializeOwned + Serialize>(doc: &Doc) -> Result<T, String> {
    roundtrip_value(&doc.value).map_err(|e| format!("{}: {e}", doc.at()))
}

/// The typed check for one document, by (apiVersion, kind). Anything not listed fails: a new
/// kind in manifests/ needs a type here.
pub(crate) fn check_typed(doc: &Doc) -> Result<(), String> {
    fn ok<T>(r: Result<T, String>) -> Result<(), String> {
        r.map(|_| ())
    }
    if doc.value.is_array() {
        return ok(roundtrip::<Vec<JsonPatchOp>>(doc));
    }
    match (doc.api_version(), doc.kind()) {
        ("v1", "Namespace") => ok(roundtrip::<Namespace>(doc)),
        ("v1", "ServiceAccount") => ok(roundtrip::<ServiceAccount>(doc)),
        ("v1", "Service") => ok(roundtrip::<Service>(doc)),
        ("v1", "ConfigMap") => ok(roundtrip::<ConfigMap>(doc)),
        ("v1", "Secret") => ok(roundtrip::<Secret>(doc)),
        ("apps/v1", "Deployment") => ok(roundtrip::<Deployment>(doc)),
        ("policy/v1", "PodDisruptionBudget") => ok(roundtrip::<PodDisruptionBudget>(doc)),
        ("rbac.authorization.k8s.io/v1", "ClusterRole") => ok(roundtrip::<ClusterRole>(doc)),
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding") => {
            ok(roundtrip::<ClusterRoleBinding>(doc))
        }
        ("rbac.authorization.k8s.io/v1", "Role") => ok(roundtrip::<Role>(doc)),
        ("rbac.authorization.k8s.io/v1", "RoleBinding") => ok(roundtrip::<RoleBinding>(doc)),
        ("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration") => {
            ok(roundtrip::<MutatingWebhookConfiguration>(doc))
        }
        ("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration") => {
            ok(roundtrip::<ValidatingWebhookConfiguration>(doc))
        }
        // Not in k8s-openapi: local structs below.
        ("kustomize.config.k8s.io/v1beta1", "Kustomization")
        | ("kustomize.config.k8s.io/v1alpha1", "Component") => ok(roundtrip::<Kustomization>(doc)),
        ("cert-manager.io/v1", "Issuer") => ok(roundtrip::<Issuer>(doc)),
        ("cert-manager.io/v1", "Certificate") => ok(roundtrip::<Certificate>(doc)),
        ("monitoring.coreos.com/v1", "ServiceMonitor") => ok(roundtrip::<ServiceMonitor>(doc)),
        ("monitoring.coreos.com/v1", "PrometheusRule") => ok(roundtrip::<PrometheusRule>(doc)),
        (av, kind) => Err(format!(
            "{}: no typed check for apiVersion {av:?} kind {kind:?}: add a k8s-openapi type or a \
             local struct to tests/manifests/types.rs",
            doc.at()
        )),
    }
}

#[test]
fn every_manifest_parses_into_its_typed_struct_with_no_unknown_field() {
    let mut errs = Vec::new();
    let mut count = 0;
    let files = yaml_files(&manifests());
    assert!(files.len() >= 10, "found only {} YAML files", files.len());
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let docs = match parse_stream(&rel(f), &text) {
            Ok(d) => d,
            Err(e) => {
                errs.push(e);
                continue;
            }
        };
        if docs.is_empty() {
            errs.push(format!("{}: no YAML document", rel(f)));
        }
        for d in &docs {
            count += 1;
            if let Err(e) = check_typed(d) {
                errs.push(e);
            }
            // Kustomizations carry patches inline: those are documents too.
            if is_kustomization_file(f) {
                let Ok(k) = roundtrip::<Kustomization>(d) else {
                    continue;
                };
                for (i, p) in k.patches.iter().flatten().enumerate() {
                    if let Some(inline) = &p.patch {
                        let label = format!("{} patches[{i}] (inline)", rel(f));
                        match parse_stream(&label, inline) {
                            Err(e) => errs.push(e),
                            Ok(inner) => {
                                for d in inner {
                                    count += 1;
                                    if let Err(e) = check_typed(&d) {
                                        errs.push(e);
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    eprintln!("{count} documents in {} files checked", files.len());
    fail_on(errs);
}

/// The checker itself: a misspelt field is reported with its file, document and JSON path, in a
/// k8s-openapi type and in a local struct alike.
#[test]
fn the_round_trip_names_misspelt_fields() {
    let yaml = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\n---\n\
                apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: x\nspec:\n  replicas: 2\n  \
                template:\n    spec:\n      containers:\n        - name: c\n          \
                securityContext:\n            readOnlyRootFilesytem: true\n";
    let docs = parse_stream("inline.yaml", yaml).unwrap();
    assert!(check_typed(&docs[0]).is_ok());
    let e = check_typed(&docs[1]).unwrap_err();
    assert!(
        e.contains("inline.yaml document 2 (apps/v1 Deployment x)")
            && e.contains(
                "$.spec.template.spec.containers[0].securityContext.readOnlyRootFilesytem"
            ),
        "{e}"
    );
    let sm = "apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata:\n  name: s\n  \
              lables: {a: b}\nspec:\n  selector: {}\n  endpoints:\n    - port: https\n      \
              tlsConfig:\n        insecureSkipVerfy: true\n";
    let doc = &parse_stream("sm.yaml", sm).unwrap()[0];
    let e = check_typed(doc).unwrap_err();
    assert!(
        e.contains("sm.yaml document 1")
            && e.contains("$.spec.endpoints[0].tlsConfig.insecureSkipVerfy"),
        "{e}"
    );
    let mut fixed = doc.value.clone();
    fixed["spec"]["endpoints"][0]["tlsConfig"] = serde_json::json!({"insecureSkipVerify": true});
    let Err(e) = roundtrip_value::<ServiceMonitor>(&fixed) else {
        panic!("metadata.lables went unnoticed");
    };
    assert!(e.contains("$.metadata.lables"), "{e}");
    // Duplicate keys are errors, not "last one wins".
    assert!(parse_stream("dup.yaml", "a: 1\na: 2\n").is_err());
    // A wrong kind of value is reported too.
    let bad = parse_stream("t.yaml", "apiVersion: v1\nkind: Service\nmetadata:\n  name: s\nspec:\n  ports:\n    - port: \"443\"\n").unwrap();
    assert!(check_typed(&bad[0]).is_err());
}
