//! The audit report: a table per kind of finding with a summary line (text), the stable
//! `AuditReport` document (json, yaml; docs/audit-json.md), or markdown tables for a PR or wiki.

use crate::audit::{Finding, FindingKind};
use clap::ValueEnum;
use serde::Serialize;
use std::io::Write;

/// `-o`: what `audit` prints.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Tables per kind of finding for people, and a summary line.
    #[default]
    Text,
    /// An AuditReport document (schema in docs/audit-json.md).
    Json,
    /// The same AuditReport document, as YAML.
    Yaml,
    /// Markdown tables, for a pull request or a wiki page.
    Markdown,
}

/// The whole report, as `-o json` and `-o yaml` write it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Document<'a> {
    /// Always `archgate.io/v1alpha1`; the document's fields are only ever added to.
    pub api_version: &'static str,
    /// Always `AuditReport`.
    pub kind: &'static str,
    /// What was read from the cluster.
    pub cluster: ClusterFacts,
    /// The namespace audited (`-n`), or null for all namespaces.
    pub namespace: Option<String>,
    /// How many findings of each kind; every kind is present, zero or not.
    pub summary: Summary,
    /// One finding per object, by kind (most serious first), then namespace and name.
    pub findings: &'a [Finding],
}

/// What was read.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterFacts {
    /// The API server's URL, from the kubeconfig.
    pub server: String,
    /// Nodes listed.
    pub nodes: usize,
    /// The architectures of the cluster's linux nodes (`kubernetes.io/arch` names).
    pub architectures: Vec<String>,
    /// Pods listed, in the namespace audited or in all of them.
    pub pods: usize,
    /// Workloads judged: the ones nothing owns (a Deployment, not the ReplicaSets it owns).
    pub workloads: usize,
    /// Distinct image references, normalised.
    pub images: usize,
}

/// Findings per kind.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Summary {
    /// Pods bound to a node that cannot run one of their images.
    pub misplaced: usize,
    /// Workloads the policy would refuse if created today.
    #[serde(rename = "would-deny")]
    pub would_deny: usize,
    /// Workloads the policy would patch if created today.
    #[serde(rename = "would-patch")]
    pub would_patch: usize,
    /// Workloads pinned to fewer architectures than their images and the cluster allow.
    pub narrower: usize,
    /// Images lacking an architecture the cluster has.
    #[serde(rename = "missing-arch")]
    pub missing_arch: usize,
    /// Images whose platforms could not be looked up.
    pub unresolved: usize,
}

impl Summary {
    /// Counts `findings` by kind.
    pub fn of(findings: &[Finding]) -> Summary {
        let mut s = Summary::default();
        for f in findings {
            *s.slot(f.kind()) += 1;
        }
        s
    }

    fn slot(&mut self, kind: FindingKind) -> &mut usize {
        match kind {
            FindingKind::Misplaced => &mut self.misplaced,
            FindingKind::WouldDeny => &mut self.would_deny,
            FindingKind::WouldPatch => &mut self.would_patch,
            FindingKind::Narrower => &mut self.narrower,
            FindingKind::MissingArch => &mut self.missing_arch,
            FindingKind::Unresolved => &mut self.unresolved,
        }
    }

    /// "2 misplaced, 0 would-deny, ..." for the summary line.
    pub fn line(&self, cluster: &ClusterFacts) -> String {
        let mut s = *self;
        let counts: Vec<String> = FindingKind::ALL
            .iter()
            .map(|k| format!("{} {}", *s.slot(*k), k.as_str()))
            .collect();
        format!(
            "{} ({} nodes: {}; {} pods, {} workloads, {} images)",
            counts.join(", "),
            cluster.nodes,
            cluster.architectures.join(", "),
            cluster.pods,
            cluster.workloads,
            cluster.images
        )
    }
}

/// Writes `doc` in `format` to `out`.
pub fn write(out: &mut impl Write, doc: &Document, format: Format) -> anyhow::Result<()> {
    match format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut *out, doc)?;
            writeln!(out)?;
        }
        Format::Yaml => serde_yaml_ng::to_writer(&mut *out, doc)?,
        Format::Text => text(out, doc)?,
        Format::Markdown => markdown(out, doc)?,
    }
    out.flush()?;
    Ok(())
}

/// A kind's section title and column names.
fn header(kind: FindingKind) -> (&'static str, &'static [&'static str]) {
    match kind {
        FindingKind::Misplaced => (
            "Misplaced pods (bound to a node that cannot run an image)",
            &[
                "NAMESPACE",
                "POD",
                "OWNER",
                "NODE",
                "CANNOT RUN THERE",
                "STATE",
            ],
        ),
        FindingKind::WouldDeny => (
            "Would be denied if created today",
            &["NAMESPACE", "WORKLOAD", "RULE", "WHY"],
        ),
        FindingKind::WouldPatch => (
            "Would be patched if created today",
            &["NAMESPACE", "WORKLOAD", "ARCHITECTURES", "PATCHES"],
        ),
        FindingKind::Narrower => (
            "Pinned narrower than their images",
            &["NAMESPACE", "WORKLOAD", "PINNED TO", "COULD ALSO RUN ON"],
        ),
        FindingKind::MissingArch => (
            "Images lacking an architecture the cluster has",
            &["IMAGE", "PLATFORMS", "MISSING", "WORKLOADS"],
        ),
        FindingKind::Unresolved => (
            "Images whose platforms could not be looked up",
            &["IMAGE", "WHY", "WORKLOADS"],
        ),
    }
}

/// One finding's cells, in [`header`]'s order.
fn row(f: &Finding) -> Vec<String> {
    let or_dash = |s: &str| {
        if s.is_empty() {
            "-".into()
        } else {
            s.to_string()
        }
    };
    match f {
        Finding::Misplaced(m) => {
            let misfits: Vec<String> = m
                .images
                .iter()
                .filter(|i| i.runs_on_node == Some(false))
                .map(|i| format!("{} ({})", i.image, i.platforms.join(", ")))
                .collect();
            let state = if m.crash_looping {
                format!("CrashLoopBackOff, {} restarts", m.restarts)
            } else {
                format!("{}, {} restarts", or_dash(&m.phase), m.restarts)
            };
            vec![
                m.namespace.clone(),
                m.name.clone(),
                m.owner.clone().unwrap_or_else(|| "-".into()),
                format!("{} ({}/{})", m.node, m.node_os, m.node_architecture),
                misfits.join("; "),
                state,
            ]
        }
        Finding::WouldDeny(w) => vec![
            w.namespace.clone(),
            format!("{}/{}", w.object_kind, w.name),
            w.rule.clone().unwrap_or_else(|| "-".into()),
            w.messages.join(" "),
        ],
        Finding::WouldPatch(w) => vec![
            w.namespace.clone(),
            format!("{}/{}", w.object_kind, w.name),
            or_dash(&w.architectures.join(", ")),
            if w.object_kind == "Pod" {
                "the pod".into()
            } else if w.patch_target == "object" {
                "the workload".into()
            } else {
                "its pods".into()
            },
        ],
        Finding::Narrower(n) => vec![
            n.namespace.clone(),
            format!("{}/{}", n.object_kind, n.name),
            n.pinned_to.join(", "),
            n.could_also_run_on.join(", "),
        ],
        Finding::MissingArch(m) => vec![
            m.name.clone(),
            m.platforms.join(", "),
            m.missing.join(", "),
            m.workloads.to_string(),
        ],
        Finding::Unresolved(u) => vec![u.name.clone(), u.reason.clone(), u.workloads.to_string()],
    }
}

fn groups(findings: &[Finding]) -> impl Iterator<Item = (FindingKind, Vec<&Finding>)> {
    FindingKind::ALL.into_iter().filter_map(|k| {
        let of: Vec<&Finding> = findings.iter().filter(|f| f.kind() == k).collect();
        (!of.is_empty()).then_some((k, of))
    })
}

fn text(out: &mut impl Write, doc: &Document) -> std::io::Result<()> {
    for (kind, findings) in groups(doc.findings) {
        let (title, columns) = header(kind);
        writeln!(out, "{} ({}): {title}", kind.as_str(), findings.len())?;
        let rows: Vec<Vec<String>> = findings.into_iter().map(row).collect();
        let mut widths: Vec<usize> = columns.iter().map(|c| c.chars().count()).collect();
        for r in &rows {
            for (w, cell) in widths.iter_mut().zip(r) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let line = |cells: Vec<&str>| {
            let last = cells.len().saturating_sub(1);
            let padded: Vec<String> = cells
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    if i == last {
                        c.to_string()
                    } else {
                        format!("{c:<0$}", widths[i])
                    }
                })
                .collect();
            format!("  {}", padded.join("  "))
        };
        writeln!(out, "{}", line(columns.to_vec()))?;
        for r in &rows {
            writeln!(out, "{}", line(r.iter().map(String::as_str).collect()))?;
        }
        writeln!(out)?;
    }
    if doc.findings.is_empty() {
        writeln!(out, "Nothing found: every pod runs where its images can.")?;
    }
    writeln!(out, "{}", doc.summary.line(&doc.cluster))
}

fn markdown(out: &mut impl Write, doc: &Document) -> std::io::Result<()> {
    writeln!(out, "# archgate audit of {}\n", doc.cluster.server)?;
    writeln!(out, "{}\n", doc.summary.line(&doc.cluster))?;
    let cell = |s: &str| s.replace('|', "\\|").replace('\n', " ");
    for (kind, findings) in groups(doc.findings) {
        let (title, columns) = header(kind);
        writeln!(
            out,
            "## {title}: {} (`{}`)\n",
            findings.len(),
            kind.as_str()
        )?;
        writeln!(out, "| {} |", columns.join(" | "))?;
        writeln!(out, "|{}", "---|".repeat(columns.len()))?;
        for f in findings {
            let cells: Vec<String> = row(f).iter().map(|c| cell(c)).collect();
            writeln!(out, "| {} |", cells.join(" | "))?;
        }
        writeln!(out)?;
    }
    Ok(())
}
