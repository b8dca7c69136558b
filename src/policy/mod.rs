//! The placement policy: its TOML model, loading with line:column errors, and the pure evaluator.

pub mod cluster;
mod decision;
mod demands;
mod ephemeral;
pub mod evaluate;
pub mod explain;
pub mod gate;
pub mod lint;
pub mod model;
mod names;
mod nodes;
mod outcome;

use crate::arch::ArchSet;
use crate::namespace::Namespace;
use crate::pod::Toleration;
use crate::text::line_col;
use model::{ExpressionSpec, Mode, NamespacePattern, PolicySpec, SelectorOperator, UnknownImages};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

pub use evaluate::{evaluate, Decision, ImageFacts, ImageStatus, Outcome, Stage, Verdict};

/// Why a policy could not be loaded. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The file could not be read.
    #[error("cannot read policy file {path}: {source}")]
    Read {
        /// The file that could not be read.
        path: PathBuf,
        /// Why reading failed.
        #[source]
        source: std::io::Error,
    },
    /// The text is not TOML or does not fit the schema (an unknown key, a wrong type, a bad
    /// value); the message, from `toml`, says where.
    #[error("policy file {path}: {message}")]
    Parse {
        /// The policy file.
        path: PathBuf,
        /// `toml`'s error, with its line, column and source excerpt.
        message: String,
    },
    /// A value is wrong (a duplicate rule name, an architecture the cluster lacks, a bad duration);
    /// located in the file.
    #[error("policy file {path}:{line}:{column}: {message}")]
    Invalid {
        /// The policy file.
        path: PathBuf,
        /// 1-based line of the offending table or value.
        line: usize,
        /// 1-based column on that line, counted in bytes.
        column: usize,
        /// What is wrong and how to fix it.
        message: String,
    },
}

/// A loaded, checked policy, built once and shared by every request.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Architectures the cluster's nodes have: `cluster.platforms` and the linux pools.
    pub cluster_archs: ArchSet,
    /// Pools that may scale from zero, and labels that declare CPU variants.
    pub cluster: cluster::Cluster,
    /// Whether arm64 nodes may run 32-bit arm images and amd64 nodes 386 images.
    pub compatible_execution: bool,
    /// `defaults.mode`: what happens to pods no rule matches.
    pub default_mode: Mode,
    /// `defaults.unknown_images`, for pods no rule (or a rule without the key) matches.
    pub default_unknown_images: UnknownImages,
    /// `defaults.on_overload`: the answer when archgate cannot decide before the deadline.
    pub on_overload: model::OnOverload,
    /// The rules in file order; the first that matches a pod decides for it.
    pub rules: Vec<Rule>,
    /// The `[gpu.*]` vendors, in name order.
    pub gpus: Vec<GpuVendor>,
    /// The compiled `[placement]` table.
    pub placement: Placement,
}

/// The compiled `[placement]` table.
#[derive(Debug, Clone)]
pub struct Placement {
    /// Workload kinds whose templates the mutating stage places.
    pub templates: Vec<model::TemplateKind>,
    /// What the mutating stage does when lookups miss the admission deadline.
    pub on_lookup_timeout: model::OnLookupTimeout,
    /// How long a gated pod waits for its lookups before `unknown_images` decides.
    pub give_up_after: std::time::Duration,
    /// Namespaces whose pods are never gated: the control plane's, and archgate's own once
    /// `serve` knows it (a gate there could wait on archgate to start archgate).
    pub never_gate: Vec<String>,
}

impl Placement {
    /// Whether the mutating stage places templates of `kind`.
    pub fn places_template(&self, kind: &str) -> bool {
        model::TemplateKind::from_kind(kind).is_some_and(|k| self.templates.contains(&k))
    }
}

/// A compiled rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// The rule's unique name, used in messages.
    pub name: String,
    /// Namespace names or `prefix*` patterns; empty matches every namespace.
    pub namespaces: Vec<NamespacePattern>,
    /// Over the namespace's labels.
    pub namespace_selector: Option<LabelSelector>,
    /// Over the pod's labels.
    pub selector: Option<LabelSelector>,
    /// The rule's mode; None falls back to `defaults.mode`.
    pub mode: Option<Mode>,
    /// The only architectures the rule allows; None allows any.
    pub architectures: Option<ArchSet>,
    /// The rule's `unknown_images`; None falls back to the default.
    pub unknown_images: Option<UnknownImages>,
    /// Weighted preferences, added as preferred node affinity.
    pub prefer: Vec<Preference>,
}

/// A weighted architecture preference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Preference {
    /// The preferred architectures.
    pub architectures: ArchSet,
    /// The preferredDuringScheduling weight, 1 to 100.
    pub weight: i32,
}

/// A compiled label selector: every requirement must hold.
#[derive(Debug, Clone, Default)]
pub struct LabelSelector {
    requirements: Vec<(String, SelectorOperator, BTreeSet<String>)>,
}

/// A compiled GPU vendor.
#[derive(Debug, Clone)]
pub struct GpuVendor {
    /// The vendor's key under `[gpu]`, used in messages.
    pub name: String,
    /// Extended resource names (`nvidia.com/gpu`) whose request selects this vendor.
    pub resources: Vec<String>,
    /// The architectures of this vendor's GPU nodes.
    pub architectures: ArchSet,
    /// Labels added to a requesting pod's nodeSelector unless it already sets them.
    pub node_selector: BTreeMap<String, String>,
    /// Tolerations added to a requesting pod unless it already has covering ones.
    pub tolerations: Vec<Toleration>,
}

impl Policy {
    /// The inventory this policy declares (`[cluster] platforms`), for when no Node is watched.
    pub fn static_inventory(&self) -> crate::inventory::Inventory {
        crate::inventory::Inventory::declared(self.cluster_archs)
    }

    /// Reads and checks a policy file.
    pub fn load(path: &Path) -> Result<Policy, PolicyError> {
        let source = std::fs::read_to_string(path).map_err(|source| PolicyError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Policy::from_toml(&source, path)
    }

    /// Parses and checks policy text; `path` only names it in errors.
    pub fn from_toml(source: &str, path: &Path) -> Result<Policy, PolicyError> {
        let spec: PolicySpec = toml::from_str(source).map_err(|e| PolicyError::Parse {
            path: path.to_path_buf(),
            message: e.to_string().trim_end().to_string(),
        })?;
        Policy::compile(spec, source, path)
    }

    fn compile(spec: PolicySpec, source: &str, path: &Path) -> Result<Policy, PolicyError> {
        let invalid = |span: std::ops::Range<usize>, message: String| {
            let (line, column) = line_col(source, span.start);
            PolicyError::Invalid {
                path: path.to_path_buf(),
                line,
                column,
                message,
            }
        };
        let cluster = cluster::compile(&spec.cluster).map_err(|(span, m)| invalid(span, m))?;
        let cluster_archs = cluster.archs;

        let mut names = BTreeSet::new();
        let mut rules = Vec::with_capacity(spec.rules.len());
        for spanned in &spec.rules {
            let r = spanned.get_ref();
            let err = |m: String| invalid(spanned.span(), m);
            if r.name.trim().is_empty() {
                return Err(err("every rule needs a non-empty `name`".into()));
            }
            if !names.insert(r.name.clone()) {
                return Err(err(format!("two rules are named \"{}\": names identify rules in messages, make them unique", r.name)));
            }
            let architectures = r
                .architectures
                .as_ref()
                .map(|a| a.iter().map(|n| n.0).collect::<ArchSet>());
            if let Some(archs) = architectures {
                if archs.intersect(cluster_archs).is_empty() {
                    return Err(err(format!(
                        "rule \"{}\" allows {archs}, but the cluster has only {cluster_archs}: every pod it matches would be denied",
                        r.name
                    )));
                }
            }
            let compile = |field: &str, spec: &Option<model::SelectorSpec>| {
                spec.as_ref()
                    .map(|s| LabelSelector::compile(s, field))
                    .transpose()
                    .map_err(|m| err(format!("rule \"{}\": {m}", r.name)))
            };
            rules.push(Rule {
                name: r.name.clone(),
                namespaces: r.namespaces.clone(),
                namespace_selector: compile("namespace_selector", &r.namespace_selector)?,
                selector: compile("pod_selector", &r.pod_selector)?,
                mode: r.mode,
                architectures,
                unknown_images: r.unknown_images,
                prefer: r
                    .prefer
                    .iter()
                    .map(|p| Preference {
                        architectures: p.architectures.iter().map(|a| a.0).collect(),
                        weight: p.weight.0,
                    })
                    .collect(),
            });
        }

        let mut owners: BTreeMap<&str, &str> = BTreeMap::new();
        let mut gpus = Vec::with_capacity(spec.gpu.len());
        for (name, spanned) in &spec.gpu {
            let g = spanned.get_ref();
            let err = |m: String| invalid(spanned.span(), m);
            if g.resources.is_empty() {
                return Err(err(format!("gpu.{name}: list at least one extended resource in `resources`, e.g. [\"nvidia.com/gpu\"]")));
            }
            for res in &g.resources {
                if let Some(other) = owners.insert(&res.0, name) {
                    return Err(err(format!("gpu.{name}: resource {} is already claimed by gpu.{other}; a resource selects one vendor", res.0)));
                }
            }
            let architectures: ArchSet = g.architectures.iter().map(|a| a.0).collect();
            if architectures.intersect(cluster_archs).is_empty() {
                return Err(err(format!(
                    "gpu.{name}: its nodes are {architectures}, but the cluster has only {cluster_archs}: no pod requesting it could run"
                )));
            }
            gpus.push(GpuVendor {
                name: name.clone(),
                resources: g.resources.iter().map(|r| r.0.clone()).collect(),
                architectures,
                node_selector: g
                    .node_selector
                    .iter()
                    .map(|(k, v)| (k.0.clone(), v.0.clone()))
                    .collect(),
                tolerations: g.tolerations.clone(),
            });
        }

        let give_up = &spec.placement.give_up_after;
        let give_up_after = crate::text::parse_duration(give_up.get_ref())
            .filter(|d| !d.is_zero())
            .ok_or_else(|| {
                invalid(
                    give_up.span(),
                    format!(
                        "placement.give_up_after {:?} is not a duration: write e.g. \"10m\", \"90s\" or \"1h\"",
                        give_up.get_ref()
                    ),
                )
            })?;
        let placement = Placement {
            templates: spec.placement.templates.clone(),
            on_lookup_timeout: spec.placement.on_lookup_timeout,
            give_up_after,
            never_gate: vec!["kube-system".into(), "kube-node-lease".into()],
        };

        Ok(Policy {
            placement,
            cluster_archs,
            cluster,
            compatible_execution: spec.cluster.compatible_execution,
            default_mode: spec.defaults.mode,
            default_unknown_images: spec.defaults.unknown_images,
            on_overload: spec.defaults.on_overload,
            rules,
            gpus,
        })
    }

    /// The first rule that matches a pod in `namespace` with `labels`.
    pub fn rule_for(
        &self,
        namespace: &Namespace,
        labels: &BTreeMap<String, String>,
    ) -> Option<&Rule> {
        self.rules.iter().find(|r| r.matches(namespace, labels))
    }

    /// Whether some rule picks namespaces by label: only then are namespaces' labels looked up.
    pub fn selects_namespaces_by_label(&self) -> bool {
        self.rules.iter().any(|r| r.namespace_selector.is_some())
    }

    /// The GPU vendor a resource name selects.
    pub fn gpu_for(&self, resource: &str) -> Option<&GpuVendor> {
        self.gpus
            .iter()
            .find(|g| g.resources.iter().any(|r| r == resource))
    }
}

impl Rule {
    /// Whether the rule applies to a pod with `labels` in `namespace`: its name patterns,
    /// namespace selector and pod selector must all match (absent ones match everything).
    pub fn matches(&self, namespace: &Namespace, labels: &BTreeMap<String, String>) -> bool {
        let named = self.namespaces.is_empty()
            || self.namespaces.iter().any(|p| p.matches(&namespace.name));
        named
            && self
                .namespace_selector
                .as_ref()
                .is_none_or(|s| s.matches(&namespace.labels))
            && self.selector.as_ref().is_none_or(|s| s.matches(labels))
    }
}

impl LabelSelector {
    /// `field` names the selector in messages (`pod_selector`, `namespace_selector`).
    fn compile(spec: &model::SelectorSpec, field: &str) -> Result<LabelSelector, String> {
        let mut requirements = Vec::new();
        for (k, v) in &spec.match_labels {
            requirements.push((
                k.0.clone(),
                SelectorOperator::In,
                BTreeSet::from([v.0.clone()]),
            ));
        }
        for ExpressionSpec {
            key,
            operator,
            values,
        } in &spec.match_expressions
        {
            let has_values = !values.is_empty();
            let needs_values = matches!(operator, SelectorOperator::In | SelectorOperator::NotIn);
            if has_values != needs_values {
                return Err(format!(
                    "{field} expression on `{}`: {operator:?} {}",
                    key.0,
                    if needs_values {
                        "needs at least one value"
                    } else {
                        "takes no values"
                    }
                ));
            }
            requirements.push((
                key.0.clone(),
                *operator,
                values.iter().map(|v| v.0.clone()).collect(),
            ));
        }
        Ok(LabelSelector { requirements })
    }

    /// Whether `labels` meet every requirement; an empty selector matches all labels.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|(key, op, values)| {
            let v = labels.get(key);
            match op {
                SelectorOperator::In => v.is_some_and(|v| values.contains(v)),
                SelectorOperator::NotIn => v.is_none_or(|v| !values.contains(v)),
                SelectorOperator::Exists => v.is_some(),
                SelectorOperator::DoesNotExist => v.is_none(),
            }
        })
    }
}

#[cfg(test)]
#[path = "mod_tests.rs"]
mod tests;
