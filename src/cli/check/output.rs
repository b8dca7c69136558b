//! The formats of `archgate check`: each report is written as soon as it is known (JSON too:
//! the document is streamed), so output memory does not grow with the number of manifests.

use super::eval::{PatchTarget, Report};
use super::input::InputError;
use crate::policy::Outcome;
use clap::ValueEnum;
use serde_json::{json, Value};
use std::io::{self, Write};

/// `-o`: what `check` prints.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// One line per object for people, and a summary.
    #[default]
    Text,
    /// A CheckReport document (schema in docs/check-json.md).
    Json,
    /// The objects as the API server would store them.
    Yaml,
    /// The JSON Patch of each object, one JSON object per line.
    Patch,
    /// A unified diff of each pod before and after admission.
    Diff,
    /// The mutating webhook's AdmissionReview response, one per line.
    Review,
}

/// How many objects got each decision.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    /// Inputs read (stdin counts as one file).
    pub files: usize,
    /// Objects allowed as they are.
    pub allow: usize,
    /// Objects admitted with a patch, to themselves or to their pods.
    pub patch: usize,
    /// Objects denied.
    pub deny: usize,
    /// Objects allowed unchanged but with warnings (a patched one counts under `patch`).
    pub warn: usize,
    /// Objects archgate leaves alone: no pods, a kind it does not handle, or gated.
    pub skip: usize,
    /// Input errors: paths, files or objects that could not be read, parsed or evaluated.
    pub errors: usize,
    /// Objects with at least one warning, whatever their decision (`--fail-on warn`).
    pub warned: usize,
}

impl Tally {
    /// Counts one object's decision; `warnings` is how many warnings it got.
    pub fn add(&mut self, decision: Outcome, warnings: usize) {
        if warnings > 0 {
            self.warned += 1;
        }
        match decision {
            Outcome::Allow => self.allow += 1,
            Outcome::Patch => self.patch += 1,
            Outcome::Deny => self.deny += 1,
            Outcome::Warn => self.warn += 1,
            Outcome::Gate | Outcome::Skip | Outcome::Unhandled => self.skip += 1,
        }
    }

    /// Objects reported, whatever their decision; input errors are not counted.
    pub fn objects(&self) -> usize {
        self.allow + self.patch + self.deny + self.warn + self.skip
    }

    /// "7 objects in 3 files: 2 allow, 3 patch, 1 deny, 0 warn, 1 skip, 0 errors".
    pub fn line(&self) -> String {
        format!(
            "{} objects in {} files: {} allow, {} patch, {} deny, {} warn, {} skip, {} errors",
            self.objects(),
            self.files,
            self.allow,
            self.patch,
            self.deny,
            self.warn,
            self.skip,
            self.errors
        )
    }
}

/// Writes reports in one format.
pub struct Printer<W: Write> {
    out: W,
    format: Format,
    color: bool,
    written: usize,
    errors: Vec<Value>,
}

impl<W: Write> Printer<W> {
    /// Writes to `out` in `format`; `color` puts ANSI colours on the text format's decisions.
    pub fn new(out: W, format: Format, color: bool) -> Printer<W> {
        Printer {
            out,
            format,
            color,
            written: 0,
            errors: Vec::new(),
        }
    }

    /// Writes one report; `flush` when a progress bar shares the terminal.
    pub fn report(&mut self, r: &Report, flush: bool) -> io::Result<()> {
        match self.format {
            Format::Text => writeln!(self.out, "{}", text_line(r, self.color))?,
            Format::Json => {
                let sep = if self.written == 0 { "" } else { ",\n" };
                write!(self.out, "{sep}{}", report_json(r))?;
            }
            Format::Yaml => write!(self.out, "{}", yaml(r))?,
            Format::Patch if !r.patch.is_empty() => {
                let line = json!({
                    "source": r.source, "kind": r.kind, "namespace": r.namespace,
                    "name": r.name, "patchTarget": r.patch_target.as_str(), "patch": r.patch,
                });
                writeln!(self.out, "{line}")?;
            }
            Format::Diff => write!(self.out, "{}", diff(r))?,
            Format::Review => {
                if let Some(body) = &r.review {
                    self.out.write_all(body)?;
                    writeln!(self.out)?;
                }
            }
            Format::Patch => {}
        }
        self.written += 1;
        if flush {
            self.out.flush()?;
        }
        Ok(())
    }

    /// Input errors go to stderr (by the caller) and, in JSON, into the document's `errors`.
    pub fn error(&mut self, e: &InputError) {
        if self.format == Format::Json {
            let (file, document, line, column) = match e {
                InputError::Parse {
                    file,
                    document,
                    line,
                    column,
                    ..
                } => (file.clone(), Some(*document), Some(*line), Some(*column)),
                InputError::Object { file, document, .. } => {
                    (file.clone(), Some(*document), None, None)
                }
                InputError::Missing { path } | InputError::Read { path, .. } => {
                    (path.clone(), None, None, None)
                }
            };
            self.errors.push(json!({
                "file": file, "document": document, "line": line, "column": column,
                "message": e.to_string(),
            }));
        }
    }

    /// Writes what comes before the first report: the opening of the JSON document.
    pub fn start(&mut self) -> io::Result<()> {
        if self.format == Format::Json {
            writeln!(
                self.out,
                "{{\"apiVersion\":\"archgate.io/v1alpha1\",\"kind\":\"CheckReport\",\"objects\":["
            )?;
        }
        Ok(())
    }

    /// Writes what follows the last report (the text summary line, or the JSON document's
    /// `errors` and `summary`) and flushes.
    pub fn finish(&mut self, tally: &Tally) -> io::Result<()> {
        match self.format {
            Format::Json => {
                let summary = json!({
                    "files": tally.files, "objects": tally.objects(), "allow": tally.allow,
                    "patch": tally.patch, "deny": tally.deny, "warn": tally.warn,
                    "skip": tally.skip, "errors": tally.errors,
                });
                let errors = Value::Array(std::mem::take(&mut self.errors));
                writeln!(self.out, "\n],\"errors\":{errors},\"summary\":{summary}}}")?;
            }
            Format::Text => writeln!(self.out, "{}", tally.line())?,
            _ => {}
        }
        self.out.flush()
    }
}

/// The JSON of one report (the `objects[]` element of the documented schema).
pub fn report_json(r: &Report) -> Value {
    json!({
        "apiVersion": r.api_version,
        "kind": r.kind,
        "namespace": r.namespace,
        "name": r.name,
        "source": r.source,
        "decision": r.decision,
        "mode": r.mode,
        "rule": r.rule,
        "architectures": r.architectures,
        "patchTarget": r.patch_target.as_str(),
        "patch": r.patch,
        "warnings": r.warnings,
        "messages": r.messages,
    })
}

/// `patch   Deployment shop/web  [amd64]  pods get affinity kubernetes.io/arch In [amd64]`.
pub fn text_line(r: &Report, color: bool) -> String {
    let word = format!("{:<5}", r.decision);
    let word = if color {
        let code = match r.decision {
            Outcome::Deny => "1;31",
            Outcome::Warn => "33",
            Outcome::Patch => "36",
            Outcome::Allow => "32",
            Outcome::Gate | Outcome::Skip | Outcome::Unhandled => "2",
        };
        format!("\x1b[{code}m{word}\x1b[0m")
    } else {
        word
    };
    let archs = if r.architectures.is_empty() {
        String::new()
    } else {
        format!("  [{}]", r.architectures.join(","))
    };
    let why = why(r);
    let sep = if why.is_empty() { "" } else { "  " };
    format!("{word}  {} {}{archs}{sep}{why}", r.kind, r.display_name())
}

/// Why the object got its decision, in one line.
pub fn why(r: &Report) -> String {
    let mut parts: Vec<String> = Vec::new();
    match r.decision {
        Outcome::Deny | Outcome::Skip => parts.extend(r.messages.iter().cloned()),
        Outcome::Patch => {
            let who = match r.patch_target {
                PatchTarget::Pods => "its pods get ",
                PatchTarget::Object if r.kind != "Pod" => "its template gets ",
                PatchTarget::Object => "gets ",
            };
            parts.push(format!("{who}{}", describe_patch(&r.patch)));
            parts.extend(r.warnings.iter().map(|w| format!("warning: {w}")));
        }
        Outcome::Warn => parts.extend(r.warnings.iter().cloned()),
        _ if r.mode == Some("off") => parts.push("mode off".into()),
        _ => {}
    }
    if let Some(rule) = &r.rule {
        parts.push(format!("rule \"{rule}\""));
    }
    parts.join("; ")
}

/// "affinity kubernetes.io/arch In [amd64], nodeSelector gpu.vendor=amd, 1 toleration".
pub fn describe_patch(ops: &[Value]) -> String {
    let mut parts = Vec::new();
    let mut tolerations = 0;
    let mut annotation = None;
    for op in ops {
        let path = op.get("path").and_then(Value::as_str).unwrap_or_default();
        // A workload's template patch reads as its pods' would.
        let path = ["/spec/jobTemplate/spec/template", "/spec/template"]
            .iter()
            .find_map(|prefix| path.strip_prefix(prefix))
            .unwrap_or(path);
        let value = op.get("value").unwrap_or(&Value::Null);
        if path.starts_with("/spec/affinity") {
            if let Some(archs) = find_arch_values(value) {
                let text = format!("affinity kubernetes.io/arch In [{archs}]");
                if !parts.contains(&text) {
                    parts.push(text);
                }
            }
        } else if path.starts_with("/spec/nodeSelector") {
            match value {
                Value::Object(m) => parts.extend(
                    m.iter()
                        .map(|(k, v)| format!("nodeSelector {k}={}", v.as_str().unwrap_or(""))),
                ),
                v => {
                    let key = path.rsplit('/').next().unwrap_or("").replace("~1", "/");
                    parts.push(format!("nodeSelector {key}={}", v.as_str().unwrap_or("")));
                }
            }
        } else if path.starts_with("/spec/tolerations") {
            tolerations += value.as_array().map_or(1, Vec::len);
        } else if path.starts_with("/metadata/annotations") {
            annotation = find_annotation(value);
        }
    }
    if tolerations > 0 {
        let s = if tolerations == 1 { "" } else { "s" };
        parts.push(format!("{tolerations} toleration{s}"));
    }
    if parts.is_empty() {
        if let Some(a) = annotation {
            parts.push(format!("annotation archgate.io/architectures={a}"));
        }
    }
    parts.join(", ")
}

fn find_arch_values(v: &Value) -> Option<String> {
    match v {
        Value::Object(m) if m.get("key").and_then(Value::as_str) == Some("kubernetes.io/arch") => {
            let vals = m.get("values")?.as_array()?;
            let names: Vec<&str> = vals.iter().filter_map(Value::as_str).collect();
            Some(names.join(", "))
        }
        Value::Object(m) => m.values().find_map(find_arch_values),
        Value::Array(a) => a.iter().find_map(find_arch_values),
        _ => None,
    }
}

fn find_annotation(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Object(m) => m
            .get("archgate.io/architectures")
            .and_then(Value::as_str)
            .map(String::from),
        _ => None,
    }
}

fn to_yaml(v: &Value) -> String {
    serde_yaml_ng::to_string(v).unwrap_or_else(|e| format!("# cannot print as YAML: {e}\n"))
}

/// The object as the API server would store it: a Pod patched, a workload whose template the
/// policy places patched, anything else as given, with a comment saying what happened.
fn yaml(r: &Report) -> String {
    let (comment, body) = match (r.decision, r.patch_target) {
        (Outcome::Deny, _) => (format!("# denied: {}\n", r.messages.join("; ")), &r.object),
        (_, PatchTarget::Object) => (String::new(), r.pod_after.as_ref().unwrap_or(&r.object)),
        (Outcome::Patch, PatchTarget::Pods) => (
            format!(
                "# not mutated; its pods get {} (see -o diff)\n",
                describe_patch(&r.patch)
            ),
            &r.object,
        ),
        _ => (String::new(), &r.object),
    };
    let comment = comment.replace('\n', " ").trim_end().to_string();
    let comment = if comment.is_empty() {
        comment
    } else {
        format!("{comment}\n")
    };
    format!("---\n{comment}{}", to_yaml(body))
}

/// A unified diff of the pod before and after admission; empty when nothing changes.
fn diff(r: &Report) -> String {
    let (Some(before), Some(after)) = (&r.pod_before, &r.pod_after) else {
        return String::new();
    };
    if before == after {
        return String::new();
    }
    let (a, b) = (to_yaml(before), to_yaml(after));
    let what = match r.patch_target {
        PatchTarget::Pods => format!("pods of {} {}", r.kind, r.display_name()),
        PatchTarget::Object => format!("{} {}", r.kind, r.display_name()),
    };
    let at = format!("{}#{}", r.source.file, r.source.document);
    let mut text = similar::TextDiff::from_lines(&a, &b)
        .unified_diff()
        .context_radius(3)
        .header(
            &format!("{at} {what} (as written)"),
            &format!("{at} {what} (as admitted)"),
        )
        .to_string();
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text
}
