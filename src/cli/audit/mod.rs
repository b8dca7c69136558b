//! `archgate audit`: what in a running cluster is misplaced, would be refused or patched, or
//! could use more of the cluster. Read-only: it LISTs and never writes.
//!
//! The shell gathers facts ([`list`]: paginated LISTs; [`resolve`]: each image once), asks the
//! webhook's pipeline about each workload ([`decide`]), and hands everything to the pure
//! [`crate::audit::audit`]; [`output`] writes the report.

pub mod decide;
pub mod list;
pub mod output;
pub mod resolve;

use super::registry_args::RegistryArgs;
use crate::audit::{self, Finding, FindingKind, ImageFacts, Input, PodFacts, WorkloadFacts};
use crate::cluster::client::{self, ConfigOrigin};
use crate::cluster::nodes::node_info;
use crate::inventory::{Inventory, NodeInfo};
use crate::namespace::StaticNamespaces;
use crate::platforms::{PullContext, PullSecrets, StaticPlatforms};
use crate::policy::Policy;
use clap::{Args, ValueEnum};
use k8s_openapi::api::core::v1::{Namespace, Node};
use kube::api::{Api, ListParams};
use list::{ListError, Resource};
use output::{ClusterFacts, Document, Format, Summary};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

/// `archgate audit`'s options: which cluster and namespaces, how images are looked up, what is
/// reported and what fails the run.
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// kubeconfig file [default: $KUBECONFIG, ~/.kube/config, or the in-cluster service account].
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use instead of its current one.
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
    /// Audit one namespace (Nodes are read cluster-wide either way).
    #[arg(
        long,
        short = 'n',
        value_name = "NS",
        conflicts_with = "all_namespaces"
    )]
    pub namespace: Option<String>,
    /// Audit every namespace (the default).
    #[arg(long, short = 'A')]
    pub all_namespaces: bool,
    /// Policy file (TOML): with it, each workload's template goes through the webhook's pipeline
    /// (would-deny, would-patch findings) and its `compatible_execution` applies.
    #[arg(long)]
    pub policy: Option<PathBuf>,
    /// Static platforms file (TOML): image reference -> platforms, asked before any registry.
    /// Without it and without the registry options every image is unresolved.
    #[arg(long, value_name = "FILE")]
    pub platforms: Option<PathBuf>,
    /// How images are looked up in their registries; with neither these options nor
    /// `--platforms`, every image is unresolved.
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value_t)]
    pub output: Format,
    /// Exit 1 when there is a finding of this kind or a more serious one; `none` never does.
    #[arg(long, value_enum, default_value_t)]
    pub fail_on: FailOn,
}

/// The least serious finding that makes the audit fail.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum FailOn {
    /// Fail on a pod bound to a node that cannot run one of its images.
    #[default]
    Misplaced,
    /// Fail on a misplaced pod, or on a workload the policy would refuse if created today.
    WouldDeny,
    /// Never fail: report only.
    None,
}

impl FailOn {
    fn fails(self, kind: FindingKind) -> bool {
        match self {
            FailOn::Misplaced => kind <= FindingKind::Misplaced,
            FailOn::WouldDeny => kind <= FindingKind::WouldDeny,
            FailOn::None => false,
        }
    }
}

/// Why the audit could not run (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// No cluster configuration at all: no --kubeconfig, KUBECONFIG, ~/.kube/config or
    /// in-cluster service account.
    #[error("no cluster configuration found: pass --kubeconfig FILE, set KUBECONFIG, or run in a pod with a service account token")]
    NoConfiguration,
    /// The configuration found does not load, or no client can be built from it.
    #[error(transparent)]
    Client(#[from] client::ClientError),
    /// Listing nodes, pods, workloads or pull secrets failed (RBAC, credentials, reachability).
    #[error(transparent)]
    List(#[from] ListError),
    /// The async runtime the reads run on could not start.
    #[error("cannot start the async runtime")]
    Runtime(#[source] std::io::Error),
}

/// What the audit read from the cluster and the registries.
struct Gathered {
    server: String,
    nodes: Vec<NodeInfo>,
    pods: Vec<PodFacts>,
    workloads: Vec<WorkloadFacts>,
    /// Each workload's object as it would be created today (for the policy), by index.
    objects: Vec<Option<Value>>,
    images: BTreeMap<String, ImageFacts>,
    namespaces: StaticNamespaces,
}

/// Runs `audit`; returns the exit code (0 nothing at or above `--fail-on`, 1 findings).
pub fn run(args: AuditArgs) -> anyhow::Result<u8> {
    let policy = args.policy.as_deref().map(Policy::load).transpose()?;
    let platforms = args
        .platforms
        .as_deref()
        .map(StaticPlatforms::load)
        .transpose()?;
    let origin = client::detect(args.kubeconfig.as_deref()).ok_or(AuditError::NoConfiguration)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(AuditError::Runtime)?;
    let by_label = policy
        .as_ref()
        .is_some_and(Policy::selects_namespaces_by_label);
    let mut g = runtime.block_on(gather(&args, origin, platforms, by_label))?;
    drop(runtime);
    let inventory = Inventory::from_nodes(std::mem::take(&mut g.nodes));
    let compatible_execution = policy.as_ref().is_some_and(|p| p.compatible_execution);
    if let Some(policy) = policy {
        let objects = std::mem::take(&mut g.objects);
        let namespaces = std::mem::take(&mut g.namespaces);
        decide::decide(
            policy,
            &g.images,
            inventory.clone(),
            namespaces,
            &mut g.workloads,
            objects,
        )?;
    }
    let findings = audit::audit(&Input {
        inventory: &inventory,
        pods: &g.pods,
        workloads: &g.workloads,
        images: &g.images,
        compatible_execution,
    });
    let references: std::collections::BTreeSet<&str> =
        g.images.values().map(|f| f.reference.as_str()).collect();
    let doc = Document {
        api_version: "archgate.io/v1alpha1",
        kind: "AuditReport",
        cluster: ClusterFacts {
            server: g.server.clone(),
            nodes: inventory.nodes.len(),
            architectures: inventory
                .archs
                .names()
                .into_iter()
                .map(String::from)
                .collect(),
            pods: g.pods.len(),
            workloads: g.workloads.iter().filter(|w| w.owner.is_none()).count(),
            images: references.len(),
        },
        namespace: namespace(&args).map(str::to_string),
        summary: Summary::of(&findings),
        findings: &findings,
    };
    output::write(
        &mut std::io::BufWriter::new(std::io::stdout().lock()),
        &doc,
        args.output,
    )?;
    Ok(exit_code(&findings, args.fail_on))
}

/// 1 when a finding is at or above `fail_on`, else 0.
pub fn exit_code(findings: &[Finding], fail_on: FailOn) -> u8 {
    u8::from(findings.iter().any(|f| fail_on.fails(f.kind())))
}

fn namespace(args: &AuditArgs) -> Option<&str> {
    args.namespace.as_deref().filter(|_| !args.all_namespaces)
}

async fn gather(
    args: &AuditArgs,
    origin: ConfigOrigin,
    platforms: Option<StaticPlatforms>,
    namespaces_by_label: bool,
) -> anyhow::Result<Gathered> {
    let connection = client::connect_context(origin, args.context.as_deref()).await?;
    let client = &connection.client;
    let ns = namespace(args);
    let mut nodes = Vec::new();
    list::pages(
        Api::<Node>::all(client.clone()),
        ListParams::default(),
        "nodes".into(),
        None,
        |n| match node_info(&n) {
            Ok(info) => nodes.push(info),
            Err(e) => eprintln!("warning: cannot read a node, leaving it out: {e}"),
        },
    )
    .await
    .map_err(AuditError::from)?;

    let mut g = Gathered {
        server: connection.url.clone(),
        nodes,
        pods: Vec::new(),
        workloads: Vec::new(),
        objects: Vec::new(),
        images: BTreeMap::new(),
        namespaces: StaticNamespaces::default(),
    };
    let mut wanted: BTreeMap<String, PullContext> = BTreeMap::new();
    list::objects(client, &Resource::PODS, ns, |pod| {
        let facts = list::pod_facts(&pod);
        let pull = list::pull_context(&pod);
        for image in &facts.images {
            wanted.entry(image.clone()).or_insert_with(|| pull.clone());
        }
        // A pod nothing owns is its own workload: judged as if created today.
        if facts.owner.is_none() && !facts.mirror {
            add_workload(&mut g, list::as_created(pod), &mut wanted);
        }
        g.pods.push(facts);
    })
    .await
    .map_err(AuditError::from)?;
    for resource in &list::WORKLOADS {
        list::objects(client, resource, ns, |object| {
            add_workload(&mut g, list::as_created(object), &mut wanted);
        })
        .await
        .map_err(AuditError::from)?;
    }
    if namespaces_by_label {
        let result = list::pages(
            Api::<Namespace>::all(client.clone()),
            ListParams::default(),
            "namespaces".into(),
            None,
            |n| {
                if let Ok(mut v) = serde_json::to_value(n) {
                    v["kind"] = Value::from("Namespace");
                    g.namespaces.insert_object(&v);
                }
            },
        )
        .await;
        if let Err(e) = result {
            eprintln!("warning: {e}; rules with a namespace_selector see namespaces by name only");
        }
    }
    let registry = args.registry.enabled();
    let pull_secrets: Option<Arc<dyn PullSecrets>> = if registry {
        match resolve::pull_secrets(client, ns).await {
            Ok(secrets) => Some(Arc::new(secrets)),
            Err(e) if e.is_forbidden() => {
                eprintln!("note: {e}; images are looked up with --docker-config credentials only");
                None
            }
            Err(e) => return Err(AuditError::from(e).into()),
        }
    } else {
        None
    };
    let source =
        args.registry
            .build_source(platforms, pull_secrets, &prometheus::Registry::new())?;
    g.images = resolve::resolve(source, wanted, registry).await;
    Ok(g)
}

fn add_workload(g: &mut Gathered, object: Value, wanted: &mut BTreeMap<String, PullContext>) {
    match list::workload_facts(&object) {
        Ok(facts) => {
            if let Some(template) = &facts.template {
                let pull = PullContext::of_pod(template, &facts.namespace);
                for image in &facts.images {
                    wanted.entry(image.clone()).or_insert_with(|| pull.clone());
                }
            }
            let judged = facts.owner.is_none() && facts.template.is_some();
            g.objects.push(judged.then_some(object));
            g.workloads.push(facts);
        }
        Err(e) => eprintln!("warning: {e}; left out of the audit"),
    }
}
