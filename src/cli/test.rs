//! `archgate test`: policy test suites (`*.archgate-test.toml`, or `.yaml`/`.yml`). Each case's
//! manifests go through `check`'s [`Evaluator`], so a suite tests exactly what the webhook does.
//! The format is documented in the README ("archgate test").

use super::check::eval::{Evaluator, Report};
use super::check::input::{self, SourceRef};
use crate::namespace::{Namespace, StaticNamespaces};
use crate::platforms::{PlatformSource, StaticPlatforms};
use crate::policy::Outcome;
use crate::policy::Policy;
use anyhow::Context;
use clap::Args;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// `archgate test`'s options: the suites to run and where to write a JUnit report.
#[derive(Debug, Args)]
pub struct TestArgs {
    /// Write a JUnit XML report here.
    #[arg(long)]
    pub junit: Option<PathBuf>,
    /// Suite files, or directories searched recursively for *.archgate-test.{toml,yaml,yml}.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
}

/// A suite file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuiteSpec {
    /// The policy under test, relative to the suite file.
    pub policy: String,
    /// The image platforms the cases see; without it every image is unknown.
    pub platforms: Option<PlatformsSpec>,
    /// Nodes (`kubectl get nodes -o yaml` output), relative to the suite file, instead of the
    /// policy's `[cluster]` platforms.
    pub nodes: Option<String>,
    /// Namespace for objects whose metadata names none; `default` when unset.
    pub namespace: Option<String>,
    /// Labels of the namespace the cases' objects are in, for rules with a `namespace_selector`.
    pub namespace_labels: Option<BTreeMap<String, String>>,
    /// The `[[cases]]`; a suite without any fails.
    #[serde(default)]
    pub cases: Vec<CaseSpec>,
}

/// A platforms file path, or the same `[images]` table inline.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum PlatformsSpec {
    /// A platforms file, relative to the suite file.
    File(String),
    /// The platforms file's content, written in the suite.
    Inline {
        /// Image reference -> platform strings (`linux/arm/v7`), as in the file's `[images]`.
        images: BTreeMap<String, Vec<String>>,
    },
}

/// One `[[cases]]` entry: its input, what it sets instead of the suite, and what to expect.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseSpec {
    /// Names the case in the output and the JUnit report.
    pub name: String,
    /// Manifests inline: YAML/JSON text (any number of documents) or one object as a table.
    pub input: Option<InputSpec>,
    /// Or a manifest file, relative to the suite file.
    pub input_file: Option<String>,
    /// Replaces the suite's `platforms` for this case (the two are not merged).
    pub platforms: Option<PlatformsSpec>,
    /// Replaces the suite's `nodes` for this case.
    pub nodes: Option<String>,
    /// Replaces the suite's `namespace` for this case.
    pub namespace: Option<String>,
    /// Replaces the suite's `namespace_labels` for this case.
    pub namespace_labels: Option<BTreeMap<String, String>>,
    /// `[cases.expect]`: what every object of the input must get.
    pub expect: Expect,
}

/// Manifests written in the suite: as text, or as one object.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum InputSpec {
    /// YAML or JSON text, any number of documents.
    Text(String),
    /// One object, written as a TOML table or a YAML mapping.
    Object(Value),
}

/// What every object of the case must get.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// allow, patch, gate, deny, warn, skip or unhandled (a misspelt one is an error naming the
    /// valid ones).
    pub decision: Option<Outcome>,
    /// The architectures the pods may be placed on, all of them, in any order.
    pub architectures: Option<Vec<String>>,
    /// A substring of one of the messages or warnings.
    pub message: Option<String>,
    /// The admitted pod, or the parts of it that matter (a subset match).
    pub object: Option<InputSpec>,
}

/// One case's outcome.
pub struct CaseResult {
    /// The case's name; `(suite)` for a suite that could not be loaded.
    pub name: String,
    /// What did not match or could not run, one message each; empty when the case passed.
    pub failures: Vec<String>,
    /// How long the case took, wall-clock.
    pub seconds: f64,
}

/// One suite file's results, a `<testsuite>` of the JUnit report.
pub struct SuiteResult {
    /// The suite file, as given or found in a directory.
    pub file: String,
    /// Its cases in file order; one failed `(suite)` case when the suite could not be loaded.
    pub cases: Vec<CaseResult>,
}

/// Whether a file is a suite by its name.
pub fn is_suite(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    [
        ".archgate-test.toml",
        ".archgate-test.yaml",
        ".archgate-test.yml",
    ]
    .iter()
    .any(|s| name.ends_with(s))
}

fn find(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
        let entries = std::fs::read_dir(dir)
            .with_context(|| format!("cannot read directory {}", dir.display()))?;
        for entry in entries {
            let path = entry
                .with_context(|| format!("cannot read directory {}", dir.display()))?
                .path();
            if path.is_dir() {
                walk(&path, out)?;
            } else if is_suite(&path) {
                out.push(path);
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut found = Vec::new();
            walk(p, &mut found)?;
            found.sort();
            out.extend(found);
        } else if p.is_file() {
            out.push(p.clone());
        } else {
            anyhow::bail!(
                "{}: no such file or directory: pass suite files or directories holding *.archgate-test.toml",
                p.display()
            );
        }
    }
    if out.is_empty() {
        anyhow::bail!("no test suites found: name suite files *.archgate-test.toml (or .yaml)");
    }
    Ok(out)
}

/// Runs `test`; returns the exit code (1 when any case failed).
pub fn run(args: &TestArgs) -> anyhow::Result<u8> {
    let suites = find(&args.paths)?;
    let mut results = Vec::new();
    let (mut passed, mut failed) = (0, 0);
    for path in &suites {
        let file = path.display().to_string();
        println!("suite {file}");
        let cases = match run_suite(path) {
            Ok(cases) => cases,
            Err(e) => vec![CaseResult {
                name: "(suite)".into(),
                failures: vec![format!("{e:#}")],
                seconds: 0.0,
            }],
        };
        for c in &cases {
            if c.failures.is_empty() {
                passed += 1;
                println!("  ok    {}", c.name);
            } else {
                failed += 1;
                println!("  FAIL  {}", c.name);
                for f in &c.failures {
                    for line in f.lines() {
                        println!("        {line}");
                    }
                }
            }
        }
        results.push(SuiteResult { file, cases });
    }
    println!("{passed} passed, {failed} failed");
    if let Some(path) = &args.junit {
        std::fs::write(path, junit(&results))
            .with_context(|| format!("cannot write the JUnit report {}", path.display()))?;
    }
    Ok(u8::from(failed > 0))
}

fn run_suite(path: &Path) -> anyhow::Result<Vec<CaseResult>> {
    let what = || format!("test suite {}", path.display());
    let text = std::fs::read_to_string(path).with_context(what)?;
    let spec: SuiteSpec = if path.extension().is_some_and(|e| e == "toml") {
        toml::from_str(&text).with_context(what)?
    } else {
        serde_yaml_ng::from_str(&text).with_context(what)?
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let policy = Policy::load(&dir.join(&spec.policy)).with_context(what)?;
    if spec.cases.is_empty() {
        anyhow::bail!("{}: no [[cases]]: add at least one case", path.display());
    }
    let mut out = Vec::new();
    for case in &spec.cases {
        let started = Instant::now();
        let failures = match run_case(&spec, case, &policy, dir, path) {
            Ok(f) => f,
            Err(e) => vec![format!("{e:#}")],
        };
        out.push(CaseResult {
            name: case.name.clone(),
            failures,
            seconds: started.elapsed().as_secs_f64(),
        });
    }
    Ok(out)
}

fn platforms(spec: Option<&PlatformsSpec>, dir: &Path) -> anyhow::Result<Arc<dyn PlatformSource>> {
    let p = match spec {
        None => StaticPlatforms::default(),
        Some(PlatformsSpec::File(f)) => StaticPlatforms::load(&dir.join(f))?,
        Some(PlatformsSpec::Inline { images }) => {
            // The inline table is the platforms file's `[images]`; it is loaded by the same code.
            let mut toml = String::from("[images]\n");
            for (image, list) in images {
                let key = serde_json::to_string(image)?;
                let values = serde_json::to_string(list)?;
                toml.push_str(&format!("{key} = {values}\n"));
            }
            StaticPlatforms::from_toml(&toml, Path::new("inline platforms"))?
        }
    };
    Ok(Arc::new(p))
}

fn run_case(
    suite: &SuiteSpec,
    case: &CaseSpec,
    policy: &Policy,
    dir: &Path,
    path: &Path,
) -> anyhow::Result<Vec<String>> {
    let source = platforms(case.platforms.as_ref().or(suite.platforms.as_ref()), dir)?;
    let nodes = case
        .nodes
        .as_ref()
        .or(suite.nodes.as_ref())
        .map(|n| dir.join(n));
    let admission = super::check::admission(policy.clone(), source, nodes.as_deref())?;
    let namespace = case
        .namespace
        .as_deref()
        .or(suite.namespace.as_deref())
        .unwrap_or("default");
    let mut namespaces = StaticNamespaces::default();
    if let Some(labels) = case
        .namespace_labels
        .as_ref()
        .or(suite.namespace_labels.as_ref())
    {
        namespaces.insert(Namespace::with_labels(namespace, labels.clone()));
    }
    let evaluator = Evaluator::new(admission, namespace, namespaces)?;
    let (file, objects) = match (&case.input, &case.input_file) {
        (Some(InputSpec::Object(v)), None) => (
            path.display().to_string(),
            vec![(
                v.clone(),
                SourceRef {
                    file: path.display().to_string(),
                    document: 0,
                    item: None,
                },
            )],
        ),
        (Some(InputSpec::Text(t)), None) => (
            path.display().to_string(),
            parse(&path.display().to_string(), t)?,
        ),
        (None, Some(f)) => {
            let p = dir.join(f);
            let text = std::fs::read_to_string(&p)
                .with_context(|| format!("case input_file {}", p.display()))?;
            let name = p.display().to_string();
            (name.clone(), parse(&name, &text)?)
        }
        _ => anyhow::bail!("give the case exactly one of `input` and `input_file`"),
    };
    if objects.is_empty() {
        anyhow::bail!("the case's input ({file}) holds no objects");
    }
    let expected_object = match &case.expect.object {
        None => None,
        Some(InputSpec::Object(v)) => Some(v.clone()),
        Some(InputSpec::Text(t)) => {
            Some(serde_yaml_ng::from_str::<Value>(t).context("expect.object is not YAML or JSON")?)
        }
    };
    let mut failures = Vec::new();
    for (value, source) in objects {
        let report = evaluator.object(value, source)?;
        failures.extend(compare(&case.expect, expected_object.as_ref(), &report));
    }
    Ok(failures)
}

fn parse(file: &str, text: &str) -> anyhow::Result<Vec<(Value, SourceRef)>> {
    let (docs, err) = input::documents(file, text);
    if let Some(e) = err {
        return Err(e.into());
    }
    Ok(docs.into_iter().map(|d| (d.value, d.source)).collect())
}

/// What differs between the expectation and the report, one message per difference.
pub fn compare(expect: &Expect, object: Option<&Value>, r: &Report) -> Vec<String> {
    let who = format!("{} {}", r.kind, r.display_name());
    let mut out = Vec::new();
    if let Some(d) = &expect.decision {
        if *d != r.decision {
            let why = r
                .messages
                .iter()
                .chain(&r.warnings)
                .cloned()
                .collect::<Vec<_>>()
                .join("; ");
            out.push(format!(
                "{who}: expected decision {d}, got {} {why}",
                r.decision
            ));
        }
    }
    if let Some(a) = &expect.architectures {
        let (mut want, mut got) = (a.clone(), r.architectures.clone());
        want.sort();
        got.sort();
        if want != got {
            out.push(format!(
                "{who}: expected architectures [{}], got [{}]",
                want.join(", "),
                got.join(", ")
            ));
        }
    }
    if let Some(m) = &expect.message {
        if !r
            .messages
            .iter()
            .chain(&r.warnings)
            .any(|x| x.contains(m.as_str()))
        {
            out.push(format!(
                "{who}: no message or warning contains {m:?}; got: {:?}",
                r.messages.iter().chain(&r.warnings).collect::<Vec<_>>()
            ));
        }
    }
    if let Some(want) = object {
        let got = r.pod_after.as_ref().unwrap_or(&r.object);
        let pruned = prune(got, want);
        if &pruned != want {
            let a = serde_yaml_ng::to_string(want).unwrap_or_default();
            let b = serde_yaml_ng::to_string(&pruned).unwrap_or_default();
            let diff = similar::TextDiff::from_lines(&a, &b)
                .unified_diff()
                .header("expected", "admitted")
                .to_string();
            out.push(format!("{who}: the admitted object differs:\n{diff}"));
        }
    }
    out
}

/// `got` restricted to the keys `want` names, so an expectation lists only what matters.
fn prune(got: &Value, want: &Value) -> Value {
    match (got, want) {
        (Value::Object(g), Value::Object(w)) => Value::Object(
            w.iter()
                .filter_map(|(k, wv)| g.get(k).map(|gv| (k.clone(), prune(gv, wv))))
                .collect(),
        ),
        (Value::Array(g), Value::Array(w)) if g.len() == w.len() => {
            Value::Array(g.iter().zip(w).map(|(gv, wv)| prune(gv, wv)).collect())
        }
        _ => got.clone(),
    }
}

fn xml(s: &str) -> String {
    s.chars()
        // XML 1.0's Char production (no U+FFFE, U+FFFF or surrogates), without control characters.
        .filter(|c| {
            matches!(c, '\n' | '\t')
                || (!c.is_control()
                    && matches!(c, '\u{20}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..))
        })
        .collect::<String>()
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// JUnit XML, one `<testsuite>` per suite file.
pub fn junit(suites: &[SuiteResult]) -> String {
    let total: usize = suites.iter().map(|s| s.cases.len()).sum();
    let failed = |cases: &[CaseResult]| cases.iter().filter(|c| !c.failures.is_empty()).count();
    let all_failed: usize = suites.iter().map(|s| failed(&s.cases)).sum();
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"archgate\" tests=\"{total}\" failures=\"{all_failed}\">\n"
    );
    for s in suites {
        out.push_str(&format!(
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\">\n",
            xml(&s.file),
            s.cases.len(),
            failed(&s.cases)
        ));
        for c in &s.cases {
            let head = format!(
                "    <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\"",
                xml(&s.file),
                xml(&c.name),
                c.seconds
            );
            if c.failures.is_empty() {
                out.push_str(&format!("{head}/>\n"));
            } else {
                let first = c.failures[0].lines().next().unwrap_or_default();
                out.push_str(&format!(
                    "{head}>\n      <failure message=\"{}\">{}</failure>\n    </testcase>\n",
                    xml(first),
                    xml(&c.failures.join("\n"))
                ));
            }
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}
