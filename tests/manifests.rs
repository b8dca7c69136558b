//! manifests/: every YAML document parses into its typed struct with no field dropped (unknown
//! or misspelt fields fail, naming the file, the document and the JSON path), every kustomization
//! names files that exist, and the objects keep the invariants an operator relies on (the issue's
//! "manifests/" section and manifests/README.md, "Choices").
//!
//! k8s-openapi structs ignore unknown fields, so a document is deserialized into its struct,
//! serialized back and compared with the original: whatever the struct did not keep is reported.
//! Kustomizations, JSON6902 patches, cert-manager and Prometheus Operator objects are not in
//! k8s-openapi; they get local structs with `deny_unknown_fields` (and the same comparison, which
//! catches unknown fields in the k8s-openapi parts they embed, such as `metadata`).
//!
//! The invariants are checked on the files (the base, with the overlays' and components' patches
//! applied here where it matters). When `kubectl` is on PATH, each overlay (and one with both
//! components) is also built with `kubectl kustomize` and the output checked the same way; CI
//! has no kubectl, and then the file-level checks are the test (the skip is printed).
#![allow(clippy::unwrap_used)]

use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, RuleWithOperations, ValidatingWebhookConfiguration,
    WebhookClientConfig,
};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, Namespace, PodSpec, Secret, Service, ServiceAccount,
};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

// ---------------------------------------------------------------------------------------------
// Loading
// ---------------------------------------------------------------------------------------------

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// One YAML document: where it came from and its content as JSON (nulls dropped).
#[derive(Clone)]
struct Doc {
    /// The file, relative to the repository (or "kubectl kustomize overlays/x").
    file: String,
    /// 1-based position in the file's document stream.
    index: usize,
    value: Value,
}

impl Doc {
    fn str_at(&self, pointer: &str) -> &str {
        self.value
            .pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or("")
    }
    fn api_version(&self) -> &str {
        self.str_at("/apiVersion")
    }
    fn kind(&self) -> &str {
        self.str_at("/kind")
    }
    fn name(&self) -> &str {
        self.str_at("/metadata/name")
    }
    /// "manifests/base/deployment.yaml document 1 (apps/v1 Deployment archgate)"
    fn at(&self) -> String {
        if self.value.is_array() {
            return format!("{} document {} (JSON6902 patch)", self.file, self.index);
        }
        format!(
            "{} document {} ({} {} {})",
            self.file,
            self.index,
            self.api_version(),
            self.kind(),
            self.name()
        )
    }
}

/// Drops nulls (`key:` with no value) so they do not count as fields the typed struct lost.
fn normalise(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, normalise(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(normalise).collect()),
        v => v,
    }
}

/// Splits a multi-document YAML stream. Parsing goes through serde_yaml_ng's own Value first so
/// duplicate keys are an error rather than "last one wins".
fn parse_stream(file: &str, text: &str) -> Result<Vec<Doc>, String> {
    let mut docs = Vec::new();
    for (i, de) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
        let yaml = serde_yaml_ng::Value::deserialize(de)
            .map_err(|e| format!("{file} document {}: not valid YAML: {e}", i + 1))?;
        if yaml.is_null() {
            continue; // an empty document (a trailing `---`)
        }
        let value = serde_json::to_value(&yaml)
            .map_err(|e| format!("{file} document {}: not representable as JSON: {e}", i + 1))?;
        docs.push(Doc {
            file: file.to_string(),
            index: i + 1,
            value: normalise(value),
        });
    }
    Ok(docs)
}

/// Every *.yaml / *.yml under `dir`, sorted; `certs/` directories (git-ignored key material)
/// are not manifests.
fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                if p.file_name().is_some_and(|n| n != "certs") {
                    stack.push(p);
                }
            } else if p.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn rel(p: &Path) -> String {
    p.strip_prefix(repo())
        .unwrap_or(p)
        .to_string_lossy()
        .into_owned()
}

fn load(p: &Path) -> Vec<Doc> {
    let text = std::fs::read_to_string(p).unwrap();
    parse_stream(&rel(p), &text).unwrap_or_else(|e| panic!("{e}"))
}

fn is_kustomization_file(p: &Path) -> bool {
    p.file_name()
        .is_some_and(|n| n == "kustomization.yaml" || n == "kustomization.yml")
}

// ---------------------------------------------------------------------------------------------
// Typed round trip: unknown fields rejected
// ---------------------------------------------------------------------------------------------

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

fn roundtrip<T: DeserializeOwned + Serialize>(doc: &Doc) -> Result<T, String> {
    roundtrip_value(&doc.value).map_err(|e| format!("{}: {e}", doc.at()))
}

/// The typed check for one document, by (apiVersion, kind). Anything not listed fails: a new
/// kind in manifests/ needs a type here.
fn check_typed(doc: &Doc) -> Result<(), String> {
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
             local struct to tests/manifests.rs",
            doc.at()
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// Local structs for what k8s-openapi lacks. Only the fields the manifests use (and a few close
// relatives); `deny_unknown_fields` makes anything else an error. Options need no
// skip_serializing_if: the comparison only asks whether the original's fields came back.
// ---------------------------------------------------------------------------------------------

#[derive(Deserialize, Serialize, Clone)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Kustomization {
    api_version: String,
    kind: String,
    namespace: Option<String>,
    labels: Option<Vec<KustomizeLabels>>,
    resources: Option<Vec<String>>,
    components: Option<Vec<String>>,
    patches: Option<Vec<KustomizePatch>>,
    config_map_generator: Option<Vec<Generator>>,
    secret_generator: Option<Vec<Generator>>,
    images: Option<Vec<KustomizeImage>>,
}

#[derive(Deserialize, Serialize, Clone)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct KustomizeLabels {
    pairs: BTreeMap<String, String>,
    include_selectors: Option<bool>,
    include_templates: Option<bool>,
}

#[derive(Deserialize, Serialize, Clone)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct KustomizePatch {
    path: Option<String>,
    patch: Option<String>,
    target: Option<PatchTarget>,
}

#[derive(Deserialize, Serialize, Clone)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PatchTarget {
    group: Option<String>,
    version: Option<String>,
    kind: Option<String>,
    name: Option<String>,
    namespace: Option<String>,
    label_selector: Option<String>,
    annotation_selector: Option<String>,
}

#[derive(Deserialize, Serialize, Clone)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Generator {
    name: String,
    namespace: Option<String>,
    behavior: Option<String>,
    #[serde(rename = "type")]
    type_: Option<String>,
    files: Option<Vec<String>>,
    literals: Option<Vec<String>>,
    envs: Option<Vec<String>>,
    options: Option<GeneratorOptions>,
}

impl Generator {
    /// (key in the object, file path) of each `files` entry: `key=path` or `path`.
    fn file_entries(&self) -> Vec<(String, String)> {
        self.files
            .iter()
            .flatten()
            .map(|f| match f.split_once('=') {
                Some((k, p)) => (k.to_string(), p.to_string()),
                None => (basename(f).to_string(), f.clone()),
            })
            .collect()
    }
}

#[derive(Deserialize, Serialize, Clone)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct GeneratorOptions {
    disable_name_suffix_hash: Option<bool>,
    immutable: Option<bool>,
    labels: Option<BTreeMap<String, String>>,
    annotations: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize, Serialize, Clone)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct KustomizeImage {
    name: String,
    new_name: Option<String>,
    new_tag: Option<String>,
    digest: Option<String>,
}

/// One JSON6902 operation (a patch file is a list of them).
#[derive(Deserialize, Serialize, Clone)]
#[serde(deny_unknown_fields)]
struct JsonPatchOp {
    op: String,
    path: String,
    value: Option<Value>,
    from: Option<String>,
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Issuer {
    api_version: String,
    kind: String,
    metadata: ObjectMeta,
    spec: IssuerSpec,
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct IssuerSpec {
    self_signed: Option<SelfSignedIssuer>,
    ca: Option<CaIssuer>,
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct SelfSignedIssuer {
    crl_distribution_points: Option<Vec<String>>,
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CaIssuer {
    secret_name: String,
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Certificate {
    api_version: String,
    kind: String,
    metadata: ObjectMeta,
    spec: CertificateSpec,
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CertificateSpec {
    secret_name: String,
    common_name: Option<String>,
    dns_names: Option<Vec<String>>,
    duration: Option<String>,
    renew_before: Option<String>,
    // cert-manager spells it `isCA`, which camelCase renaming would make `isCa`.
    #[serde(rename = "isCA")]
    is_ca: Option<bool>,
    usages: Option<Vec<String>>,
    private_key: Option<CertificatePrivateKey>,
    issuer_ref: IssuerRef,
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CertificatePrivateKey {
    algorithm: Option<String>,
    size: Option<u32>,
    encoding: Option<String>,
    rotation_policy: Option<String>,
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct IssuerRef {
    name: String,
    kind: Option<String>,
    group: Option<String>,
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ServiceMonitor {
    api_version: String,
    kind: String,
    metadata: ObjectMeta,
    spec: ServiceMonitorSpec,
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ServiceMonitorSpec {
    selector: LabelSelector,
    namespace_selector: Option<MonitorNamespaceSelector>,
    job_label: Option<String>,
    endpoints: Vec<MonitorEndpoint>,
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct MonitorNamespaceSelector {
    any: Option<bool>,
    match_names: Option<Vec<String>>,
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct MonitorEndpoint {
    port: Option<String>,
    target_port: Option<IntOrString>,
    scheme: Option<String>,
    path: Option<String>,
    interval: Option<String>,
    scrape_timeout: Option<String>,
    honor_labels: Option<bool>,
    tls_config: Option<MonitorTlsConfig>,
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct MonitorTlsConfig {
    insecure_skip_verify: Option<bool>,
    server_name: Option<String>,
    ca: Option<SecretOrConfigMapKey>,
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct SecretOrConfigMapKey {
    secret: Option<KeyRef>,
    config_map: Option<KeyRef>,
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct KeyRef {
    name: String,
    key: String,
    optional: Option<bool>,
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PrometheusRule {
    api_version: String,
    kind: String,
    metadata: ObjectMeta,
    spec: PrometheusRuleSpec,
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PrometheusRuleSpec {
    groups: Vec<RuleGroup>,
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RuleGroup {
    name: String,
    interval: Option<String>,
    rules: Vec<AlertRule>,
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct AlertRule {
    alert: Option<String>,
    record: Option<String>,
    expr: String,
    #[serde(rename = "for")]
    for_: Option<String>,
    labels: Option<BTreeMap<String, String>>,
    annotations: Option<BTreeMap<String, String>>,
}

// ---------------------------------------------------------------------------------------------
// A set of objects to check invariants on
// ---------------------------------------------------------------------------------------------

struct Bundle {
    docs: Vec<Doc>,
}

impl Bundle {
    fn of_kind(&self, kind: &str) -> Vec<&Doc> {
        self.docs.iter().filter(|d| d.kind() == kind).collect()
    }

    /// All objects of `kind`, typed (the round trip has already passed by now).
    fn all<T: DeserializeOwned + Serialize>(&self, kind: &str) -> Vec<(&Doc, T)> {
        self.of_kind(kind)
            .into_iter()
            .map(|d| (d, roundtrip::<T>(d).unwrap_or_else(|e| panic!("{e}"))))
            .collect()
    }

    /// The one object of `kind`; a missing or second one is an error.
    fn one<T: DeserializeOwned + Serialize>(
        &self,
        kind: &str,
        what: &str,
        errs: &mut Vec<String>,
    ) -> Option<(&Doc, T)> {
        let mut all = self.all::<T>(kind);
        match all.len() {
            1 => all.pop(),
            0 => {
                errs.push(format!("{what}: no {kind}"));
                None
            }
            n => {
                errs.push(format!("{what}: {n} {kind} objects, expected one"));
                None
            }
        }
    }
}

/// How the objects were obtained, for the checks that differ between the files and a build.
struct Ctx {
    /// "manifests/base" or "kubectl kustomize overlays/x".
    what: String,
    /// The base kustomization when checking files: its generators and labels are not objects yet.
    base: Option<Kustomization>,
    /// Whether Secret access (the pull-secrets component) is expected.
    pull_secrets: bool,
}

fn basename(p: &str) -> &str {
    p.rsplit('/').next().unwrap_or(p)
}

fn has(list: &Option<Vec<String>>, want: &str) -> bool {
    list.iter().flatten().any(|x| x == want || x == "*")
}

fn selector_matches(sel: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    sel.match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v))
        && sel.match_expressions.iter().flatten().all(|e| {
            let val = labels.get(&e.key);
            let in_values = val.is_some_and(|v| e.values.iter().flatten().any(|x| x == v));
            match e.operator.as_str() {
                "In" => in_values,
                "NotIn" => !in_values,
                "Exists" => val.is_some(),
                "DoesNotExist" => val.is_none(),
                _ => false,
            }
        })
}

fn namespace_labels(name: &str) -> BTreeMap<String, String> {
    BTreeMap::from([("kubernetes.io/metadata.name".to_string(), name.to_string())])
}

/// The value of `--flag=value` or `--flag value`.
fn arg<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
    args.iter().enumerate().find_map(|(i, a)| {
        if let Some(v) = a.strip_prefix(flag).and_then(|r| r.strip_prefix('=')) {
            Some(v)
        } else if a == flag {
            args.get(i + 1).map(String::as_str)
        } else {
            None
        }
    })
}

/// The labels an object carries once built: its own plus, for files, the base's `labels:`.
fn effective_labels(meta: &ObjectMeta, ctx: &Ctx) -> BTreeMap<String, String> {
    let mut labels = meta.labels.clone().unwrap_or_default();
    if let Some(base) = &ctx.base {
        for l in base.labels.iter().flatten() {
            labels.extend(l.pairs.clone());
        }
    }
    labels
}

// ---------------------------------------------------------------------------------------------
// Invariants
// ---------------------------------------------------------------------------------------------

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

fn check_webhooks(b: &Bundle, ctx: &Ctx, own_ns: &str, errs: &mut Vec<String>) {
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

/// The container named archgate (or the only one).
fn archgate_container(spec: &PodSpec) -> Option<&Container> {
    spec.containers
        .iter()
        .find(|c| c.name == "archgate")
        .or(spec.containers.first())
}

fn port_resolves(c: &Container, port: &IntOrString) -> bool {
    c.ports.iter().flatten().any(|p| match port {
        IntOrString::Int(n) => p.container_port == *n,
        IntOrString::String(name) => p.name.as_deref() == Some(name.as_str()),
    })
}

/// Checks the Deployment and returns its pod template labels.
fn check_deployment(
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

const TLS_SECRET: &str = "archgate-tls";

fn check_pdb(b: &Bundle, ctx: &Ctx, labels: &BTreeMap<String, String>, errs: &mut Vec<String>) {
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

fn check_service(
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

fn grants(rule: &PolicyRule, resource: &str) -> bool {
    (has(&rule.api_groups, "")) && has(&rule.resources, resource)
}

fn check_rbac(b: &Bundle, ctx: &Ctx, own_ns: &str, errs: &mut Vec<String>) {
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
fn check_monitoring(b: &Bundle, ctx: &Ctx, own_ns: &str, errs: &mut Vec<String>) {
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

fn check_bundle(b: &Bundle, ctx: &Ctx) -> Vec<String> {
    let mut errs = Vec::new();
    for d in &b.docs {
        if let Err(e) = check_typed(d) {
            errs.push(e);
        }
    }
    if !errs.is_empty() {
        return errs;
    }
    let Some((ns_doc, ns)) = b.one::<Namespace>("Namespace", &ctx.what, &mut errs) else {
        return errs;
    };
    let own_ns = ns.metadata.name.clone().unwrap_or_default();
    if let Some(base) = &ctx.base {
        if base.namespace.as_deref() != Some(own_ns.as_str()) {
            errs.push(format!(
                "manifests/base/kustomization.yaml: namespace is {:?}, but {} names {own_ns:?}",
                base.namespace,
                ns_doc.at()
            ));
        }
    }
    // Every namespaced object lives in archgate's namespace.
    for d in &b.docs {
        let cluster_scoped = matches!(
            d.kind(),
            "Namespace"
                | "ClusterRole"
                | "ClusterRoleBinding"
                | "MutatingWebhookConfiguration"
                | "ValidatingWebhookConfiguration"
        );
        let ns = d.str_at("/metadata/namespace");
        if cluster_scoped && !ns.is_empty() {
            errs.push(format!("{}: cluster-scoped, but sets a namespace", d.at()));
        }
        if !cluster_scoped && ns != own_ns {
            errs.push(format!(
                "{}: namespace is {ns:?}, expected {own_ns:?}",
                d.at()
            ));
        }
    }
    check_webhooks(b, ctx, &own_ns, &mut errs);
    if let Some((labels, c, _)) = check_deployment(b, ctx, &own_ns, &mut errs) {
        check_pdb(b, ctx, &labels, &mut errs);
        check_service(b, ctx, &labels, &c, &mut errs);
    }
    check_rbac(b, ctx, &own_ns, &mut errs);
    check_monitoring(b, ctx, &own_ns, &mut errs);
    errs
}

fn fail_on(errs: Vec<String>) {
    assert!(
        errs.is_empty(),
        "{} problem(s):\n  - {}",
        errs.len(),
        errs.join("\n  - ")
    );
}

fn manifests() -> PathBuf {
    repo().join("manifests")
}

fn kustomization(dir: &Path) -> Kustomization {
    let docs = load(&dir.join("kustomization.yaml"));
    assert_eq!(docs.len(), 1, "{}: one document expected", dir.display());
    roundtrip::<Kustomization>(&docs[0]).unwrap_or_else(|e| panic!("{e}"))
}

fn base_bundle() -> Bundle {
    let mut docs = Vec::new();
    for f in yaml_files(&manifests().join("base")) {
        if !is_kustomization_file(&f) {
            docs.extend(load(&f));
        }
    }
    Bundle { docs }
}

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

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------
// kubectl kustomize, when kubectl is there
// ---------------------------------------------------------------------------------------------

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
