//! `archgate lint`'s rules: policy source text in, diagnostics with byte spans out (pure).
//!
//! Loading is [`Policy::from_toml`]'s job and its errors are reported as they are; lint adds
//! what loading cannot say: every unknown key at once with a "did you mean", and rules that are
//! legal but wrong (shadowed, unsatisfiable, conflicting, naming architectures or GPU resources
//! the cluster does not have).

use super::model::{PolicySpec, RuleSpec};
use super::{Policy, PolicyError};
use crate::arch::ArchSet;
use crate::text::edit_distance;
use selectors::{covers, unsatisfiable, unsatisfiable_for_namespaces};
use std::collections::BTreeSet;
use std::ops::Range;
use std::path::Path;
use toml::Spanned;

/// How bad a finding is; ordered so the worst sorts last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Legal but probably wrong (a shadowed rule, an architecture the cluster lacks); fails lint
    /// only with `--deny-warnings`.
    Warning,
    /// The policy would not load (syntax, schema or invalid value); lint fails.
    Error,
}

impl Severity {
    /// The severity as printed: `warning` or `error`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// One finding, located by a byte range of the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// How bad the finding is.
    pub severity: Severity,
    /// A stable identifier ("unknown-key", "shadowed-rule", ...).
    pub code: &'static str,
    /// The finding, in one sentence.
    pub message: String,
    /// Byte range of the source it is about; empty (`0..0`) when it has no location.
    pub span: Range<usize>,
    /// What to do about it.
    pub help: Option<String>,
}

impl Diagnostic {
    fn new(severity: Severity, code: &'static str, span: Range<usize>, message: String) -> Self {
        Diagnostic {
            severity,
            code,
            message,
            span,
            help: None,
        }
    }

    fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

#[path = "lint_selectors.rs"]
mod selectors;

#[path = "lint_keys.rs"]
mod keys;
use keys::{free_form, known_keys};

/// Extended resources GPU device plugins advertise, for "did you mean" on a misspelt one.
const KNOWN_GPU_RESOURCES: &[&str] = &[
    "nvidia.com/gpu",
    "amd.com/gpu",
    "gpu.intel.com/i915",
    "gpu.intel.com/xe",
    "habana.ai/gaudi",
    "aws.amazon.com/neuron",
    "google.com/tpu",
];

/// Lints policy source; `path` only names it in messages loading produces.
pub fn lint(source: &str, path: &Path) -> Vec<Diagnostic> {
    let tree = match Tree::parse(source) {
        Ok(tree) => tree,
        Err(e) => {
            let span = e.span().unwrap_or(0..0);
            let span = span.start.min(source.len())..span.end.min(source.len());
            return vec![Diagnostic::new(
                Severity::Error,
                "syntax",
                span,
                e.message().trim().to_string(),
            )];
        }
    };
    match Policy::from_toml(source, path) {
        Ok(policy) => match toml::from_str::<PolicySpec>(source) {
            Ok(spec) => semantic(&policy, &spec, &tree),
            Err(e) => vec![from_toml_error(&e, source)],
        },
        Err(PolicyError::Invalid {
            line,
            column,
            message,
            ..
        }) => {
            let start = offset_of(source, line, column);
            let end = source[start..]
                .find('\n')
                .map_or(source.len(), |n| start + n);
            vec![Diagnostic::new(
                Severity::Error,
                "invalid",
                start..end,
                message,
            )]
        }
        Err(_) => {
            let mut out = Vec::new();
            unknown_keys(&tree, "", &mut out);
            if out.is_empty() {
                if let Err(e) = toml::from_str::<PolicySpec>(source) {
                    out.push(from_toml_error(&e, source));
                }
            }
            out
        }
    }
}

/// The known word closest to `word`: lint allows a wider distance than loading's hints, since
/// a short key like `mood` is two edits from `mode`.
fn suggest(word: &str, known: &[&'static str]) -> Option<&'static str> {
    let limit = (word.chars().count() / 3).max(2);
    known
        .iter()
        .map(|k| (edit_distance(word, k), *k))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

fn from_toml_error(e: &toml::de::Error, source: &str) -> Diagnostic {
    let span = e.span().unwrap_or(0..0);
    let span = span.start.min(source.len())..span.end.min(source.len());
    Diagnostic::new(
        Severity::Error,
        "schema",
        span,
        e.message().trim().to_string(),
    )
}

fn offset_of(source: &str, line: usize, column: usize) -> usize {
    let start: usize = source
        .split_inclusive('\n')
        .take(line.saturating_sub(1))
        .map(str::len)
        .sum();
    (start + column.saturating_sub(1)).min(source.len())
}

/// Every unknown key under `table`, with the closest known one.
fn unknown_keys(node: &Spanned<Tree>, table: &str, out: &mut Vec<Diagnostic>) {
    match node.get_ref() {
        Tree::Table(entries) => {
            for (key, value) in entries {
                let k = key.get_ref();
                let child = if table.is_empty() {
                    k.clone()
                } else if table == "gpu" {
                    "gpu.*".to_string()
                } else {
                    format!("{table}.{k}")
                };
                let known = known_keys(table);
                if !free_form(table) && !known.contains(&k.as_str()) {
                    let what = if table.is_empty() {
                        "at the top level".to_string()
                    } else {
                        format!("in [{}]", table.replace(".*", ".<name>"))
                    };
                    let mut d = Diagnostic::new(
                        Severity::Error,
                        "unknown-key",
                        key.span(),
                        format!("unknown key `{k}` {what}"),
                    );
                    d = match suggest(k, known) {
                        Some(s) => d.help(format!("did you mean `{s}`?")),
                        None => d.help(format!("expected one of: {}", known.join(", "))),
                    };
                    out.push(d);
                    continue;
                }
                unknown_keys(value, &child, out);
            }
        }
        Tree::Array(items) => items.iter().for_each(|i| unknown_keys(i, table, out)),
        Tree::Leaf => {}
    }
}

/// Findings on a policy that loads.
fn semantic(policy: &Policy, spec: &PolicySpec, tree: &Spanned<Tree>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let cluster = policy.cluster_archs;
    let rule_node = |i: usize, key: &str| -> Option<Range<usize>> {
        let rules = tree.get_ref().get("rules")?;
        match rules.get_ref() {
            Tree::Array(items) => items.get(i)?.get_ref().get(key).map(Spanned::span),
            _ => None,
        }
    };
    let rules: Vec<&Spanned<RuleSpec>> = spec.rules.iter().collect();
    for (j, rj) in rules.iter().enumerate() {
        let r = rj.get_ref();
        let name_span = rule_node(j, "name").unwrap_or_else(|| rj.span());
        if let Some((i, ri)) = rules[..j]
            .iter()
            .enumerate()
            .find(|(_, ri)| covers(ri.get_ref(), r))
        {
            let earlier = &ri.get_ref().name;
            let catch_all = ri.get_ref().namespaces.is_empty()
                && ri.get_ref().namespace_selector.is_none()
                && ri.get_ref().pod_selector.is_none();
            let why = if catch_all {
                format!("the earlier catch-all rule \"{earlier}\" matches every pod")
            } else {
                format!("the earlier rule \"{earlier}\" matches every pod it matches")
            };
            out.push(
                Diagnostic::new(
                    Severity::Warning,
                    "shadowed-rule",
                    name_span.clone(),
                    format!("rule \"{}\" can never match: {why}", r.name),
                )
                .help(format!(
                    "rules are tried in order and the first match wins: move it before rule #{} or narrow \"{earlier}\"",
                    i + 1
                )),
            );
        }
        let impossible = [
            (
                "namespace_selector",
                r.namespace_selector
                    .as_ref()
                    .and_then(unsatisfiable_for_namespaces),
            ),
            (
                "pod_selector",
                r.pod_selector.as_ref().and_then(unsatisfiable),
            ),
        ];
        for (field, why) in impossible {
            if let Some(why) = why {
                out.push(
                    Diagnostic::new(
                        Severity::Warning,
                        "unsatisfiable-selector",
                        rule_node(j, field).unwrap_or_else(|| name_span.clone()),
                        format!("rule \"{}\" can never match: its {field} {why}", r.name),
                    )
                    .help("a label cannot satisfy both requirements; remove one"),
                );
            }
        }
        let mut seen = BTreeSet::new();
        for ns in &r.namespaces {
            if !seen.insert(&ns.0) {
                out.push(Diagnostic::new(
                    Severity::Warning,
                    "duplicate-namespace",
                    rule_node(j, "namespaces").unwrap_or_else(|| name_span.clone()),
                    format!("rule \"{}\" lists namespace `{}` twice", r.name, ns.0),
                ));
            }
        }
        let archs: Option<ArchSet> = r
            .architectures
            .as_ref()
            .map(|a| a.iter().map(|n| n.0).collect());
        if let Some(archs) = archs {
            let missing = archs.minus(cluster);
            if !missing.is_empty() {
                out.push(
                    Diagnostic::new(
                        Severity::Warning,
                        "architecture-not-in-cluster",
                        rule_node(j, "architectures").unwrap_or_else(|| name_span.clone()),
                        format!("rule \"{}\" allows {missing}, which no node of the cluster has (cluster: {cluster})", r.name),
                    )
                    .help("remove it, or add the platform to cluster.platforms"),
                );
            }
            for g in &policy.gpus {
                if archs
                    .intersect(g.architectures)
                    .intersect(cluster)
                    .is_empty()
                {
                    out.push(
                        Diagnostic::new(
                            Severity::Warning,
                            "conflicting-requirements",
                            rule_node(j, "architectures").unwrap_or_else(|| name_span.clone()),
                            format!(
                                "rule \"{}\" allows {archs} but gpu.{} nodes are {}: every pod it matches that requests {} is denied",
                                r.name, g.name, g.architectures, g.resources.join(" or ")
                            ),
                        )
                        .help("let the rule allow an architecture the GPU nodes have"),
                    );
                }
            }
        }
        if r.mode == Some(super::model::Mode::Off)
            && (r.architectures.is_some() || r.unknown_images.is_some())
        {
            out.push(
                Diagnostic::new(
                    Severity::Warning,
                    "unused-setting",
                    rule_node(j, "mode").unwrap_or_else(|| name_span.clone()),
                    format!("rule \"{}\" has mode \"off\": its architectures and unknown_images are never used", r.name),
                )
                .help("remove them, or choose another mode"),
            );
        }
    }
    for (name, g) in &spec.gpu {
        let vendor_archs: ArchSet = g.get_ref().architectures.iter().map(|a| a.0).collect();
        let missing = vendor_archs.minus(cluster);
        let span = gpu_node(tree, name, "architectures").unwrap_or_else(|| g.span());
        if !missing.is_empty() {
            out.push(
                Diagnostic::new(
                    Severity::Warning,
                    "gpu-architecture-not-in-cluster",
                    span,
                    format!("gpu.{name} lists {missing}, which no node of the cluster has (cluster: {cluster})"),
                )
                .help("list the architectures of this vendor's GPU nodes only"),
            );
        }
        for res in &g.get_ref().resources {
            if KNOWN_GPU_RESOURCES.contains(&res.0.as_str()) {
                continue;
            }
            if let Some(s) = suggest(&res.0, KNOWN_GPU_RESOURCES) {
                out.push(
                    Diagnostic::new(
                        Severity::Warning,
                        "unknown-resource",
                        gpu_node(tree, name, "resources").unwrap_or_else(|| g.span()),
                        format!("gpu.{name}: `{}` is not a resource any known GPU device plugin advertises", res.0),
                    )
                    .help(format!("did you mean `{s}`?")),
                );
            }
        }
    }
    out
}

fn gpu_node(tree: &Spanned<Tree>, vendor: &str, key: &str) -> Option<Range<usize>> {
    let g = tree.get_ref().get("gpu")?.get_ref().get(vendor)?;
    g.get_ref().get(key).map(Spanned::span)
}

/// A label requirement: key, operator, values.
/// The TOML document as a tree of spanned keys, to point at any key (from toml_edit, which
/// keeps every key's position; serde's view keeps only values').
#[derive(Debug)]
enum Tree {
    Table(Vec<(Spanned<String>, Spanned<Tree>)>),
    Array(Vec<Spanned<Tree>>),
    Leaf,
}

impl Tree {
    fn parse(source: &str) -> Result<Spanned<Tree>, toml_edit::TomlError> {
        let doc = toml_edit::ImDocument::parse(source)?;
        Ok(spanned(0..source.len(), Tree::from_table(doc.as_table())))
    }

    fn from_table(t: &toml_edit::Table) -> Tree {
        let entries = t.iter().map(|(k, item)| {
            let key_span = t.key(k).and_then(toml_edit::Key::span).unwrap_or(0..0);
            let span = item.span().unwrap_or_else(|| key_span.clone());
            (
                spanned(key_span, k.to_string()),
                spanned(span, Tree::from_item(item)),
            )
        });
        Tree::Table(entries.collect())
    }

    fn from_item(item: &toml_edit::Item) -> Tree {
        use toml_edit::{Item, Value};
        match item {
            Item::Table(t) => Tree::from_table(t),
            Item::ArrayOfTables(a) => Tree::Array(
                a.iter()
                    .map(|t| spanned(t.span().unwrap_or(0..0), Tree::from_table(t)))
                    .collect(),
            ),
            Item::Value(Value::InlineTable(t)) => {
                let entries = t.iter().map(|(k, v)| {
                    let key_span = t.key(k).and_then(toml_edit::Key::span).unwrap_or(0..0);
                    let span = v.span().unwrap_or_else(|| key_span.clone());
                    let item = Item::Value(v.clone());
                    (
                        spanned(key_span, k.to_string()),
                        spanned(span, Tree::from_item(&item)),
                    )
                });
                Tree::Table(entries.collect())
            }
            Item::Value(Value::Array(a)) => Tree::Array(
                a.iter()
                    .map(|v| {
                        let item = Item::Value(v.clone());
                        spanned(v.span().unwrap_or(0..0), Tree::from_item(&item))
                    })
                    .collect(),
            ),
            _ => Tree::Leaf,
        }
    }

    fn get(&self, key: &str) -> Option<&Spanned<Tree>> {
        match self {
            Tree::Table(entries) => entries
                .iter()
                .find(|(k, _)| k.get_ref() == key)
                .map(|(_, v)| v),
            _ => None,
        }
    }
}

fn spanned<T>(span: Range<usize>, value: T) -> Spanned<T> {
    Spanned::new(span, value)
}

#[cfg(test)]
#[path = "lint_tests.rs"]
mod tests;
