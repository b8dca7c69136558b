//! `archgate check`: a dry run. Manifests (or captured AdmissionReviews) go through the same
//! [`Admission`] the webhook serves, offline, and each object's decision is printed.
//!
//! The shell here reads one file at a time and writes each report as soon as it is known;
//! [`eval`] runs an object through both webhook stages, [`input`] parses, [`output`] formats.

pub mod eval;
pub mod input;
pub mod output;

use super::registry_args::RegistryArgs;
use crate::admission::Admission;
use crate::inventory::{node::nodes_from_value, Inventory};
use crate::namespace::StaticNamespaces;
use crate::platforms::{PlatformSource, StaticPlatforms};
use crate::policy::Policy;
use anyhow::Context;
use clap::{Args, ValueEnum};
use eval::Evaluator;
use input::InputError;
use output::{Format, Printer, Tally};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `archgate check`'s options: the policy, where platforms, nodes and namespaces come from, the
/// output, and the manifests.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Policy file (TOML); see policies/README.md.
    #[arg(long)]
    pub policy: PathBuf,
    /// Where image platforms come from (`--platforms`, `--registry-config`, `--docker-config`).
    #[command(flatten)]
    pub source: SourceArgs,
    /// Cluster nodes (`kubectl get nodes -o yaml` or `-o json` output) instead of the policy's
    /// `[cluster]` platforms.
    #[arg(long)]
    pub nodes: Option<PathBuf>,
    /// Namespace for objects whose metadata names none.
    #[arg(long, short = 'n', default_value = "default")]
    pub namespace: String,
    /// Namespaces with their labels (`kubectl get namespaces -o yaml` output), for rules with a
    /// `namespace_selector`. Namespace objects among the manifests count too, for the objects
    /// after them; any other namespace has only its `kubernetes.io/metadata.name` label.
    #[arg(long, value_name = "FILE")]
    pub namespaces: Option<PathBuf>,
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value_t)]
    pub output: Format,
    /// Exit 1 on denials only (`deny`), or on warnings too (`warn`).
    #[arg(long, value_enum, default_value_t)]
    pub fail_on: FailOn,
    /// Manifest files, directories (searched recursively for *.yaml, *.yml, *.json), or - for stdin.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
}

/// Where image platforms come from: the static file and the registry options `serve` takes.
#[derive(Debug, Clone, Args)]
pub struct SourceArgs {
    /// Static platforms file (TOML): image reference -> platforms. Without it (and without the
    /// registry options) every image is unknown and the policy's `unknown_images` decides.
    #[arg(long)]
    pub platforms: Option<PathBuf>,
    /// How images are looked up in their registries (`--registry-config`, `--docker-config`).
    #[command(flatten)]
    pub registry: RegistryArgs,
}

impl SourceArgs {
    /// The platform source these options name, built as `serve` builds it: the static file first,
    /// then the registry. Offline there is no cluster, so no pull secrets, and the registry's
    /// metrics go to a registry nobody scrapes.
    pub fn source(&self) -> anyhow::Result<Arc<dyn PlatformSource>> {
        let platforms = self
            .platforms
            .as_deref()
            .map(StaticPlatforms::load)
            .transpose()?;
        let source = self
            .registry
            .build_source(platforms, None, &prometheus::Registry::new())?;
        Ok(source)
    }
}

/// `--fail-on`: which results make `check` exit 1.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum FailOn {
    /// Exit 1 when an object is denied.
    #[default]
    Deny,
    /// Exit 1 also when an object gets a warning.
    Warn,
}

/// The webhook's admission path over `policy`, with the inventory of `nodes` when given.
/// Offline there is no placement controller to wait for, so a failed lookup is decided at once,
/// as the controller decides when it gives up (`unknown_images`).
pub fn admission(
    mut policy: Policy,
    source: Arc<dyn PlatformSource>,
    nodes: Option<&Path>,
) -> anyhow::Result<Admission> {
    policy.placement.on_lookup_timeout = crate::policy::model::OnLookupTimeout::Decide;
    let admission = Admission::new(Arc::new(policy), source);
    if let Some(path) = nodes {
        admission.inventory.store(Arc::new(load_nodes(path)?));
    }
    Ok(admission)
}

/// Reads `kubectl get nodes -o yaml|json` output.
pub fn load_nodes(path: &Path) -> anyhow::Result<Inventory> {
    let what = || {
        format!(
            "nodes file {}: pass the output of `kubectl get nodes -o yaml`",
            path.display()
        )
    };
    let text = std::fs::read_to_string(path).with_context(what)?;
    let value: serde_json::Value = serde_yaml_ng::from_str(&text).with_context(what)?;
    let nodes = nodes_from_value(value).with_context(what)?;
    Ok(Inventory::from_nodes(nodes))
}

/// Reads `kubectl get namespaces -o yaml|json` output (or any manifests holding Namespaces).
pub fn load_namespaces(path: &Path) -> anyhow::Result<StaticNamespaces> {
    let what = || {
        format!(
            "namespaces file {}: pass the output of `kubectl get namespaces -o yaml`",
            path.display()
        )
    };
    let text = std::fs::read_to_string(path).with_context(what)?;
    let (documents, error) = input::documents(&path.display().to_string(), &text);
    if let Some(e) = error {
        return Err(anyhow::Error::new(e).context(what()));
    }
    let mut namespaces = StaticNamespaces::default();
    let found = documents
        .iter()
        .filter(|d| namespaces.insert_object(&d.value))
        .count();
    if found == 0 {
        anyhow::bail!("{}: it holds no Namespace object", what());
    }
    Ok(namespaces)
}

/// Runs `check`; returns the exit code (0 allowed, 1 denied, 2 input errors).
pub fn run(args: CheckArgs) -> anyhow::Result<u8> {
    let policy = Policy::load(&args.policy)?;
    let admission = admission(policy, args.source.source()?, args.nodes.as_deref())?;
    let inputs = input::expand(&args.paths)?;
    let namespaces = match &args.namespaces {
        Some(path) => load_namespaces(path)?,
        None => StaticNamespaces::default(),
    };
    let evaluator = Evaluator::new(admission, &args.namespace, namespaces)?;
    let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let mut printer = Printer::new(
        std::io::BufWriter::new(std::io::stdout().lock()),
        args.output,
        color,
    );
    let mut tally = Tally::default();
    let mut progress = Progress::new(inputs.len());
    printer.start()?;
    for input in &inputs {
        tally.files += 1;
        progress.tick(&input.name());
        let mut errors = Vec::new();
        match input::read(input) {
            Err(e) => errors.push(e),
            Ok(text) => {
                let (documents, parse_error) = input::documents(&input.name(), &text);
                drop(text);
                for doc in documents {
                    let source = doc.source.clone();
                    match evaluator.object(doc.value, doc.source) {
                        Ok(report) => {
                            tally.add(report.decision, report.warnings.len());
                            progress.suspend(|| printer.report(&report, progress.visible()))?;
                        }
                        Err(e) => errors.push(InputError::Object {
                            file: source.file,
                            document: source.document,
                            message: e.to_string(),
                        }),
                    }
                }
                errors.extend(parse_error);
            }
        }
        for e in errors {
            tally.errors += 1;
            progress.suspend(|| eprintln!("error: {e}"));
            printer.error(&e);
        }
    }
    progress.finish();
    printer.finish(&tally)?;
    if args.output != Format::Text && args.output != Format::Json {
        eprintln!("{}", tally.line());
    }
    Ok(exit_code(&tally, args.fail_on))
}

/// 2 for input errors, 1 for denials (or warnings with `--fail-on warn`), else 0.
pub fn exit_code(tally: &Tally, fail_on: FailOn) -> u8 {
    if tally.errors > 0 {
        2
    } else if tally.deny > 0 || (fail_on == FailOn::Warn && tally.warned > 0) {
        1
    } else {
        0
    }
}

/// A progress bar on stderr, shown only on a terminal and only once the run takes a moment.
struct Progress {
    total: usize,
    done: usize,
    started: Instant,
    bar: Option<indicatif::ProgressBar>,
    enabled: bool,
}

impl Progress {
    const AFTER: Duration = Duration::from_millis(500);

    fn new(total: usize) -> Progress {
        Progress {
            total,
            done: 0,
            started: Instant::now(),
            bar: None,
            enabled: total > 1 && std::io::stderr().is_terminal(),
        }
    }

    fn tick(&mut self, name: &str) {
        if self.enabled && self.bar.is_none() && self.started.elapsed() > Self::AFTER {
            let bar = indicatif::ProgressBar::new(self.total as u64);
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{bar:30} {pos}/{len} files {elapsed} {wide_msg}",
            ) {
                bar.set_style(style);
            }
            bar.set_position(self.done as u64);
            self.bar = Some(bar);
        }
        if let Some(bar) = &self.bar {
            bar.set_position(self.done as u64);
            bar.set_message(name.to_string());
        }
        self.done += 1;
    }

    fn visible(&self) -> bool {
        self.bar.is_some()
    }

    fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        match &self.bar {
            Some(bar) => bar.suspend(f),
            None => f(),
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        let _ = std::io::stderr().flush();
    }
}
