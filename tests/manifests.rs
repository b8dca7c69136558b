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
// Checking a bundle; the checks themselves are in manifests/ by feature
// ---------------------------------------------------------------------------------------------

/// The TLS Secret both overlays create and the Deployment mounts.
const TLS_SECRET: &str = "archgate-tls";

/// Every check on a bundle: typed round trip first, then namespaces, webhooks, Deployment (with
/// its PodDisruptionBudget and Service), RBAC and monitoring.
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

// ---------------------------------------------------------------------------------------------
// By feature; every module sees the helpers above (and these) through `use super::*`
// ---------------------------------------------------------------------------------------------

use deployment::{check_deployment, port_resolves};
use monitoring::check_monitoring;
use rbac::check_rbac;
use roundtrip::{check_typed, roundtrip};
use service::{check_pdb, check_service};
use types::*;
use webhooks::check_webhooks;

#[path = "manifests/deployment.rs"]
mod deployment;
#[path = "manifests/kustomize.rs"]
mod kustomize;
#[path = "manifests/monitoring.rs"]
mod monitoring;
#[path = "manifests/overlays.rs"]
mod overlays;
#[path = "manifests/rbac.rs"]
mod rbac;
#[path = "manifests/roundtrip.rs"]
mod roundtrip;
#[path = "manifests/service.rs"]
mod service;
#[path = "manifests/types.rs"]
mod types;
#[path = "manifests/webhooks.rs"]
mod webhooks;
