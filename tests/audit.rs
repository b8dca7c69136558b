//! `archgate audit` against the seed cluster: the stateful fake API server holding recorded
//! workloads and pods (tests/fixtures/cluster/audit-objects.json) and Docker's registry on
//! loopback holding their images. The real binary runs; stdout and the exit code are asserted.
#![allow(clippy::unwrap_used)]

mod common;

use common::audit::{arg, run, Cluster};
use serde_json::{json, Value};

/// (kind, namespace, name) of every finding, in report order.
fn found(report: &Value) -> Vec<(String, String, String)> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let s = |k: &str| f[k].as_str().unwrap().to_string();
            (s("kind"), s("namespace"), s("name"))
        })
        .collect()
}

fn finding<'a>(report: &'a Value, kind: &str, name: &str) -> &'a Value {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == kind && f["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} finding for {name}: {report:#}"))
}

fn json_report(out: &str, err: &str) -> Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("{e}: stdout {out:?}, stderr {err:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_cluster_audit_finds_each_kind_exactly_through_paginated_lists() {
    let c = Cluster::start().await;
    // Two items a page: every LIST of more must follow `continue`.
    c.api.set_max_page(2);
    let registry = c.registry.as_ref().unwrap();
    let asked = |repo: &str| {
        registry.manifest_requests("GET", repo) + registry.manifest_requests("HEAD", repo)
    };
    let before = (asked("shop/report"), asked("team/edge-agent"));
    let (code, out, err) = c.audit(&["-o", "json"]).await;
    assert_eq!(code, 1, "misplaced pods fail the audit by default\n{err}");
    let report = json_report(&out, &err);
    let r = |name: &str| format!("{}/{name}", c.host);
    let expected: Vec<(String, String, String)> = [
        ("misplaced", "edge", "sensor-ui-7c9d5f6b8-mn4vb".to_string()),
        ("misplaced", "shop", "report-5d8f7b6c9-xk2lp".into()),
        ("misplaced", "tools", "debug-report".into()),
        ("would-deny", "edge", "sensor-ui".into()),
        ("would-patch", "shop", "report".into()),
        ("would-patch", "tools", "debug-report".into()),
        ("narrower", "shop", "web".into()),
        ("missing-arch", "", r("edge/sensor-ui:1.0")),
        ("missing-arch", "", r("shop/report:0.9.0")),
        ("missing-arch", "", r("team/edge-agent:0.3.1")),
        ("unresolved", "", r("tools/scratch:1.0")),
    ]
    .into_iter()
    .map(|(k, ns, n)| (k.to_string(), ns.to_string(), n))
    .collect();
    assert_eq!(found(&report), expected, "{report:#}");

    let m = finding(&report, "misplaced", "report-5d8f7b6c9-xk2lp");
    assert_eq!(m["owner"], "Deployment/report");
    assert_eq!(
        (m["node"].clone(), m["nodeArchitecture"].clone()),
        (json!("durnan"), json!("arm64"))
    );
    assert_eq!(m["crashLooping"], true);
    assert_eq!(m["restarts"], 14);
    assert_eq!(
        m["images"],
        json!([{"image": r("shop/report:0.9.0"), "platforms": ["linux/amd64"], "runsOnNode": false}])
    );
    let bare = finding(&report, "misplaced", "debug-report");
    assert_eq!(bare["owner"], Value::Null, "a pod nothing owns");
    assert_eq!(
        (bare["crashLooping"].clone(), bare["phase"].clone()),
        (json!(false), json!("Failed"))
    );

    let deny = finding(&report, "would-deny", "sensor-ui");
    assert_eq!(deny["objectKind"], "Deployment");
    let why = deny["messages"][0].as_str().unwrap();
    assert!(
        why.contains("cannot run on any node") && why.contains("linux/amd64"),
        "{why}"
    );
    let patch = finding(&report, "would-patch", "report");
    assert_eq!(patch["architectures"], json!(["amd64"]));
    assert_eq!(patch["patchTarget"], "pods");

    let narrower = finding(&report, "narrower", "web");
    assert_eq!(narrower["pinnedTo"], json!(["amd64"]));
    assert_eq!(narrower["couldAlsoRunOn"], json!(["arm64"]));

    let missing = finding(&report, "missing-arch", &r("shop/report:0.9.0"));
    assert_eq!(missing["missing"], json!(["arm64"]));
    assert_eq!(missing["workloads"], 2);
    assert_eq!(
        missing["usedBy"],
        json!(["shop/Deployment/report", "tools/Pod/debug-report"]),
        "pods are counted by their top owner, the Deployment"
    );
    let unresolved = finding(&report, "unresolved", &r("tools/scratch:1.0"));
    assert!(
        unresolved["reason"]
            .as_str()
            .unwrap()
            .contains("has no tag 1.0"),
        "{unresolved}"
    );
    assert_eq!(unresolved["transient"], false);

    assert_eq!(report["apiVersion"], "archgate.io/v1alpha1");
    assert_eq!(report["kind"], "AuditReport");
    assert_eq!(
        report["summary"],
        json!({"misplaced": 3, "would-deny": 1, "would-patch": 2, "narrower": 1, "missing-arch": 3, "unresolved": 1})
    );
    assert_eq!(report["cluster"]["nodes"], 14);
    assert_eq!(report["cluster"]["pods"], 13);
    assert_eq!(report["cluster"]["workloads"], 9);
    assert_eq!(
        report["cluster"]["architectures"],
        json!(["amd64", "arm64"])
    );

    let requests = c.api.requests();
    for resource in ["nodes", "pods", "deployments", "replicasets"] {
        assert!(
            requests
                .iter()
                .any(|q| q.contains(&format!("/{resource}?")) && q.contains("continue=")),
            "{resource} were listed page by page: {requests:#?}"
        );
    }
    assert!(
        requests.iter().all(|q| q.starts_with("GET ")),
        "read-only: {requests:#?}"
    );
    // Each image was looked up once, however many pods and workloads use it: the image of four
    // objects cost what the image of two did (both single-platform manifests).
    let report_image = asked("shop/report") - before.0;
    assert!(report_image >= 1, "{}", registry.log());
    assert_eq!(
        report_image,
        asked("team/edge-agent") - before.1,
        "{}",
        registry.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_on_sets_the_exit_code_and_a_quiet_namespace_exits_zero() {
    let c = Cluster::start().await;
    let (code, _, err) = c.audit(&["-o", "json", "--fail-on", "none"]).await;
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = c.audit(&["-o", "json", "--fail-on", "would-deny"]).await;
    assert_eq!(code, 1, "{err}");
    // In `shop` without its misplaced pod's namespace-mates: still one misplaced pod there.
    let (code, out, err) = c.audit(&["-n", "shop", "-o", "json"]).await;
    assert_eq!(code, 1, "{err}");
    let report = json_report(&out, &err);
    assert_eq!(report["namespace"], "shop");
    assert!(
        found(&report)
            .iter()
            .all(|(_, ns, _)| ns == "shop" || ns.is_empty()),
        "{report:#}"
    );
    // The DaemonSet's namespace has nothing to say, and says so.
    let (code, out, err) = c.audit(&["-n", "monitoring"]).await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.starts_with("Nothing found"), "{out}");
    assert!(out.contains("0 misplaced, 0 would-deny"), "{out}");
    let requests = c.api.requests();
    assert!(
        requests
            .iter()
            .any(|q| q.contains("/namespaces/monitoring/pods?")),
        "-n lists in the namespace: {requests:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_markdown_and_yaml_carry_the_same_findings() {
    let c = Cluster::start().await;
    let (code, text, err) = c.audit(&[]).await;
    assert_eq!(code, 1, "{err}");
    assert!(text.starts_with("misplaced (3): "), "{text}");
    let header = text.lines().nth(1).unwrap();
    for column in [
        "NAMESPACE",
        "POD",
        "OWNER",
        "NODE",
        "CANNOT RUN THERE",
        "STATE",
    ] {
        assert!(header.contains(column), "{header}");
    }
    assert!(
        text.lines().any(|l| l.contains("report-5d8f7b6c9-xk2lp")
            && l.contains("durnan (linux/arm64)")
            && l.contains("CrashLoopBackOff, 14 restarts")),
        "{text}"
    );
    let last = text.lines().last().unwrap();
    assert_eq!(
        last,
        "3 misplaced, 1 would-deny, 2 would-patch, 1 narrower, 3 missing-arch, 1 unresolved \
         (14 nodes: amd64, arm64; 13 pods, 9 workloads, 8 images)"
    );
    assert!(
        !err.contains('\u{1b}'),
        "no progress bar without a terminal: {err:?}"
    );

    let (_, markdown, _) = c.audit(&["-o", "markdown"]).await;
    assert!(
        markdown.starts_with("# archgate audit of http://127.0.0.1:"),
        "{markdown}"
    );
    assert!(
        markdown.contains("## Pinned narrower than their images: 1 (`narrower`)"),
        "{markdown}"
    );
    assert!(
        markdown.contains("| shop | Deployment/web | amd64 | arm64 |"),
        "{markdown}"
    );

    let (_, yaml, _) = c.audit(&["-o", "yaml"]).await;
    let (_, json_out, _) = c.audit(&["-o", "json"]).await;
    let from_yaml: Value = serde_yaml_ng::from_str(&yaml).unwrap();
    let from_json: Value = serde_json::from_str(&json_out).unwrap();
    assert_eq!(from_yaml, from_json);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_that_is_down_leaves_images_unresolved_never_misplaced() {
    let mut c = Cluster::start().await;
    drop(c.registry.take());
    let (code, out, err) = c.audit(&["-o", "json"]).await;
    assert_eq!(code, 0, "nothing is known to be misplaced\n{err}");
    let report = json_report(&out, &err);
    let kinds: Vec<String> = found(&report).into_iter().map(|(k, _, _)| k).collect();
    assert_eq!(kinds, vec!["unresolved"; 8], "{report:#}");
    let one = finding(
        &report,
        "unresolved",
        &format!("{}/shop/report:0.9.0", c.host),
    );
    assert_eq!(one["transient"], true, "{one}");
    assert_eq!(one["workloads"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rbac_refusing_a_list_exits_2_naming_the_verb_and_resource() {
    let c = Cluster::start().await;
    c.api.forbid("pods");
    let (code, out, err) = c.audit(&[]).await;
    assert_eq!(code, 2, "{out}\n{err}");
    assert_eq!(out, "", "nothing on stdout but a report");
    assert!(
        err.contains("cannot list pods at cluster scope: RBAC forbids it"),
        "{err}"
    );
    assert!(
        err.contains("HTTP 403 Forbidden"),
        "the API server's answer follows: {err}"
    );
    let (code, _, err) = c.audit(&["-n", "shop"]).await;
    assert_eq!(code, 2);
    assert!(err.contains("cannot list pods in namespace shop"), "{err}");

    // Pull secrets are optional: without RBAC for them, the audit runs with --docker-config.
    let c = Cluster::start().await;
    c.api.forbid("secrets");
    let (code, out, err) = c.audit(&["-o", "json"]).await;
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("cannot list secrets at cluster scope"),
        "{err}"
    );
    assert_eq!(json_report(&out, &err)["summary"]["misplaced"], 3);
}

#[test]
fn without_a_usable_kubeconfig_it_exits_2_saying_what_to_check() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let args = vec!["audit".into(), "--kubeconfig".into(), arg(&missing)];
    let (code, out, err) = run(&args);
    assert_eq!(code, 2, "{err}");
    assert_eq!(out, "");
    assert!(
        err.contains("cannot load the kubeconfig given with --kubeconfig"),
        "{err}"
    );
}

/// The README's example report, between its `audit-example` markers.
fn readme_example() -> String {
    let readme = std::fs::read_to_string(common::manifest_path("README.md")).unwrap();
    let start = readme.find("<!-- audit-example -->\n```\n").unwrap() + 27;
    let end = start
        + readme[start..]
            .find("```\n<!-- /audit-example -->")
            .unwrap();
    readme[start..end].to_string()
}

#[test]
fn the_readme_shows_what_the_seed_cluster_gives() {
    let api = common::kubeapi::KubeApi::start();
    api.create_all(&common::audit::objects("registry.example"));
    let platforms = common::manifest_path("tests/fixtures/cluster/audit-platforms.toml");
    let args: Vec<String> = vec![
        "audit".into(),
        "--kubeconfig".into(),
        arg(&api.kubeconfig),
        "--policy".into(),
        arg(&common::homelab_policy()),
        "--platforms".into(),
        arg(&platforms),
    ];
    let (code, out, err) = run(&args);
    assert_eq!(code, 1, "{err}");
    if std::env::var_os("ARCHGATE_PRINT_EXAMPLE").is_some() {
        println!("{out}");
    }
    assert_eq!(
        out,
        readme_example(),
        "README.md's example is stale: ARCHGATE_PRINT_EXAMPLE=1 cargo test --test audit readme -- --nocapture"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn context_picks_the_kubeconfigs_cluster() {
    let c = Cluster::start().await;
    // The current context points at nothing; `--context fake` at the fake API server.
    let text = std::fs::read_to_string(&c.api.kubeconfig).unwrap();
    let two = text
        .replace("current-context: fake", "current-context: dead")
        .replace(
            "contexts:\n",
            "contexts:\n- name: dead\n  context:\n    cluster: dead\n    user: fake\n",
        )
        .replace(
            "clusters:\n",
            "clusters:\n- name: dead\n  cluster:\n    server: http://127.0.0.1:1\n",
        );
    let kubeconfig = common::write_file(c.dir.path(), "two-contexts", &two);
    let registry_config = arg(&c.registry_config);
    let base = move |context: Option<&str>| {
        let mut args = vec!["audit".to_string(), "--kubeconfig".into(), arg(&kubeconfig)];
        args.extend(["--policy".into(), arg(&common::homelab_policy())]);
        args.extend(["--registry-config".into(), registry_config.clone()]);
        if let Some(name) = context {
            args.extend(["--context".into(), name.into()]);
        }
        args
    };
    let (code, out, err) = tokio::task::spawn_blocking(move || {
        let ok = run(&base(Some("fake")));
        let dead = run(&base(None));
        let missing = run(&base(Some("nope")));
        (ok, dead, missing)
    })
    .await
    .map(|(ok, dead, missing)| {
        assert_eq!(
            dead.0, 2,
            "the current context's server is down: {}",
            dead.2
        );
        assert!(
            dead.2.contains("cannot list nodes at cluster scope"),
            "{}",
            dead.2
        );
        assert_eq!(missing.0, 2, "{}", missing.2);
        ok
    })
    .unwrap();
    assert_eq!(code, 1, "{err}");
    assert!(out.starts_with("misplaced (3)"), "{out}");
}
