//! `archgate lint`: runs [`crate::policy::lint`] over policy files and prints the findings for
//! people (rustc style), as JSON, as SARIF 2.1.0 for code scanning, or as GitHub workflow
//! annotations.

use crate::policy::lint::{lint, Diagnostic, Severity};
use crate::text::line_col;
use anyhow::Context;
use clap::{Args, ValueEnum};
use serde_json::{json, Value};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;

/// `archgate lint`'s options: the policy files, the output format, and whether warnings fail.
#[derive(Debug, Args)]
pub struct LintArgs {
    /// Output format.
    #[arg(long, short = 'f', value_enum, default_value_t)]
    pub format: LintFormat,
    /// Fail (exit 1) on warnings too.
    #[arg(long)]
    pub deny_warnings: bool,
    /// Policy files (TOML).
    #[arg(required = true)]
    pub policies: Vec<PathBuf>,
}

/// `-f`: how `lint` prints its findings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum LintFormat {
    /// rustc-style diagnostics with the source line, coloured on a terminal (unless NO_COLOR).
    #[default]
    Text,
    /// One JSON array: file, severity, code, message, line and column range, help per finding.
    Json,
    /// SARIF 2.1.0, for GitHub code scanning and other SARIF viewers.
    Sarif,
    /// GitHub Actions workflow commands, shown as annotations on the pull request.
    Github,
}

/// One policy file's findings, located.
pub struct FileFindings {
    /// The file's path as given on the command line.
    pub path: String,
    /// The file's text, from which lines and columns are computed and source lines quoted.
    pub source: String,
    /// What `policy::lint` found in it; empty for a clean file.
    pub diagnostics: Vec<Diagnostic>,
}

/// Runs `lint`; returns the exit code (1 on errors, or warnings with `--deny-warnings`).
pub fn run(args: &LintArgs) -> anyhow::Result<u8> {
    let mut files = Vec::new();
    for path in &args.policies {
        let source = std::fs::read_to_string(path).with_context(|| {
            format!(
                "cannot read policy file {}: pass the path of a policy TOML file",
                path.display()
            )
        })?;
        let diagnostics = lint(&source, path);
        files.push(FileFindings {
            path: path.display().to_string(),
            source,
            diagnostics,
        });
    }
    let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let text = match args.format {
        LintFormat::Text => human(&files, color),
        LintFormat::Json => format!("{:#}\n", json_report(&files)),
        LintFormat::Sarif => format!("{:#}\n", sarif(&files)),
        LintFormat::Github => github(&files),
    };
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    let all = files.iter().flat_map(|f| &f.diagnostics);
    let failed = all
        .into_iter()
        .any(|d| d.severity == Severity::Error || args.deny_warnings);
    Ok(u8::from(failed))
}

struct Located<'a> {
    line: usize,
    column: usize,
    end_line: usize,
    end_column: usize,
    text: &'a str,
}

fn locate<'a>(source: &'a str, d: &Diagnostic) -> Located<'a> {
    let (line, column) = line_col(source, d.span.start);
    let (end_line, end_column) = line_col(source, d.span.end.max(d.span.start));
    let text = source.lines().nth(line - 1).unwrap_or("");
    Located {
        line,
        column,
        end_line,
        end_column,
        text,
    }
}

/// rustc-style: the message, the file:line:col, the source line with carets, the help.
pub fn human(files: &[FileFindings], color: bool) -> String {
    let paint = |code: &str, s: &str| {
        if color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    };
    let mut out = String::new();
    let (mut errors, mut warnings) = (0, 0);
    for f in files {
        for d in &f.diagnostics {
            let at = locate(&f.source, d);
            let (word, code) = match d.severity {
                Severity::Error => {
                    errors += 1;
                    ("error", "1;31")
                }
                Severity::Warning => {
                    warnings += 1;
                    ("warning", "1;33")
                }
            };
            let width = at.line.to_string().len();
            let pad = " ".repeat(width);
            let carets = if at.end_line == at.line {
                at.end_column.saturating_sub(at.column).max(1)
            } else {
                at.text.len().saturating_sub(at.column - 1).max(1)
            };
            out.push_str(&format!(
                "{}: {}\n{pad}--> {}:{}:{}\n{pad} |\n{} | {}\n{pad} | {}{}\n",
                paint(code, &format!("{word}[{}]", d.code)),
                d.message,
                f.path,
                at.line,
                at.column,
                at.line,
                at.text,
                " ".repeat(at.column - 1),
                paint(code, &"^".repeat(carets)),
            ));
            if let Some(help) = &d.help {
                out.push_str(&format!("{pad} = help: {help}\n"));
            }
            out.push('\n');
        }
    }
    let count = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
    out.push_str(&format!(
        "{} checked: {}, {}\n",
        count(files.len(), "policy file"),
        count(errors, "error"),
        count(warnings, "warning")
    ));
    out
}

/// `[{file, severity, code, message, line, column, endLine, endColumn, help}]`.
pub fn json_report(files: &[FileFindings]) -> Value {
    let items: Vec<Value> = files
        .iter()
        .flat_map(|f| {
            f.diagnostics.iter().map(|d| {
                let at = locate(&f.source, d);
                json!({
                    "file": f.path, "severity": d.severity.as_str(), "code": d.code,
                    "message": d.message, "line": at.line, "column": at.column,
                    "endLine": at.end_line, "endColumn": at.end_column, "help": d.help,
                })
            })
        })
        .collect();
    Value::Array(items)
}

/// SARIF 2.1.0, one run, one result per diagnostic.
pub fn sarif(files: &[FileFindings]) -> Value {
    let mut rules: Vec<&'static str> = files
        .iter()
        .flat_map(|f| f.diagnostics.iter().map(|d| d.code))
        .collect();
    rules.sort_unstable();
    rules.dedup();
    let results: Vec<Value> = files
        .iter()
        .flat_map(|f| {
            f.diagnostics.iter().map(|d| {
                let at = locate(&f.source, d);
                let text = match &d.help {
                    Some(h) => format!("{} ({h})", d.message),
                    None => d.message.clone(),
                };
                json!({
                    "ruleId": d.code,
                    "level": d.severity.as_str(),
                    "message": {"text": text},
                    "locations": [{"physicalLocation": {
                        "artifactLocation": {"uri": f.path},
                        "region": {"startLine": at.line, "startColumn": at.column,
                                   "endLine": at.end_line, "endColumn": at.end_column.max(at.column + 1)}
                    }}]
                })
            })
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "archgate",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": rules.iter().map(|r| json!({"id": r})).collect::<Vec<_>>(),
            }},
            "results": results,
        }]
    })
}

/// `::error file=p.toml,line=7,col=1,endLine=7,endColumn=5,title=archgate lint (unknown-key)::msg`.
pub fn github(files: &[FileFindings]) -> String {
    // Workflow commands end at a newline and treat % specially; escape as GitHub documents.
    let escape = |s: &str| {
        s.replace('%', "%25")
            .replace('\r', "%0D")
            .replace('\n', "%0A")
    };
    let prop = |s: &str| escape(s).replace(':', "%3A").replace(',', "%2C");
    let mut out = String::new();
    for f in files {
        for d in &f.diagnostics {
            let at = locate(&f.source, d);
            let msg = match &d.help {
                Some(h) => format!("{} ({h})", d.message),
                None => d.message.clone(),
            };
            out.push_str(&format!(
                "::{} file={},line={},col={},endLine={},endColumn={},title={}::{}\n",
                d.severity.as_str(),
                prop(&f.path),
                at.line,
                at.column,
                at.end_line,
                at.end_column,
                prop(&format!("archgate lint ({})", d.code)),
                escape(&msg)
            ));
        }
    }
    out
}
