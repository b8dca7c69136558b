//! The offline commands (`check`, `lint`, `test`, `completions`) run as the built binary on the
//! fixtures in tests/fixtures/check/ and the real AdmissionReview captures: stdout, JSON fields and
//! exit codes (0 allowed, 1 denied or failed, 2 usage or input errors), plus a fuzz-style run of
//! truncated and mutated inputs that must never panic.
#![allow(clippy::unwrap_used)]

use serde_json::Value;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const POLICY: &str = "policies/homelab.toml";
const PLATFORMS: &str = "policies/homelab-platforms.toml";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn archgate(args: &[&str]) -> Output {
    archgate_stdin(args, None)
}

fn archgate_stdin(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_archgate"))
        .args(args)
        .current_dir(root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    // Writing may fail when the command exits without reading stdin; that is fine here.
    let _ = input.write_all(stdin.unwrap_or_default());
    drop(input);
    child.wait_with_output().unwrap()
}

fn check(extra: &[&str]) -> Output {
    let mut args = vec!["check", "--policy", POLICY, "--platforms", PLATFORMS];
    args.extend_from_slice(extra);
    archgate(&args)
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

fn json_objects(o: &Output) -> (Value, Vec<Value>) {
    let doc: Value =
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(o)));
    let objects = doc["objects"].as_array().unwrap().clone();
    (doc, objects)
}

fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} in {objects:#?}"))
}

#[test]
fn check_evaluates_every_workload_kind_as_the_pod_its_controller_creates() {
    let out = check(&["-o", "json", "tests/fixtures/check/workloads"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let (doc, objects) = json_objects(&out);
    assert_eq!(doc["kind"], "CheckReport");
    assert_eq!(doc["summary"]["errors"], 0);
    let web = find(&objects, "Deployment", "web");
    assert_eq!(web["apiVersion"], "apps/v1");
    assert_eq!(web["namespace"], "shop");
    assert_eq!(web["decision"], "patch");
    assert_eq!(web["architectures"], serde_json::json!(["amd64"]));
    assert_eq!(web["patchTarget"], "pods");
    assert_eq!(
        web["source"]["file"],
        "tests/fixtures/check/workloads/deployment.json"
    );
    assert!(web["patch"]
        .as_array()
        .unwrap()
        .iter()
        .any(|op| op["path"] == "/spec/affinity"));
    for (kind, name) in [
        ("StatefulSet", "db"),
        ("ReplicaSet", "web-68fd9d67f4"),
        ("Job", "report-once"),
        ("CronJob", "nightly-cleanup"),
        ("DaemonSet", "node-exporter"),
    ] {
        let o = find(&objects, kind, name);
        assert_ne!(o["decision"], "deny", "{o:#}");
        assert_ne!(o["decision"], "skip", "{o:#}");
    }
    // A DaemonSet pod is bound to its node: never given affinity.
    let ds = find(&objects, "DaemonSet", "node-exporter");
    assert!(ds["patch"]
        .as_array()
        .unwrap()
        .iter()
        .all(|op| op["path"] != "/spec/affinity"));
    // multi-document YAML and kind: List
    let svc = find(&objects, "Service", "web");
    assert_eq!(svc["decision"], "skip");
    let db = find(&objects, "Pod", "db");
    assert_eq!(db["rule"], "heavy databases on amd64");
    assert_eq!(db["source"]["document"], 2);
    assert_eq!(db["source"]["item"], 1);
    let edge = find(&objects, "Pod", "edge");
    assert_eq!(edge["namespace"], "default", "no namespace in metadata");
    assert_eq!(edge["architectures"], serde_json::json!(["arm64"]));
}

#[test]
fn check_text_is_one_line_per_object_and_a_summary() {
    let out = check(&["tests/fixtures/check/workloads", "-n", "team-a"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("patch  Deployment shop/web  [amd64]  its pods get affinity kubernetes.io/arch In [amd64]"), "{text}");
    assert!(
        text.contains("Pod team-a/edge"),
        "--namespace is the fallback: {text}"
    );
    assert!(text.contains("skip   Service shop/web"), "{text}");
    assert!(
        !text.contains('\x1b'),
        "no colour when stdout is not a terminal"
    );
    let last = text.lines().last().unwrap();
    assert!(last.starts_with("10 objects in 7 files:"), "{last}");
}

#[test]
fn a_denial_exits_1_and_says_why() {
    let out = check(&["tests/fixtures/check/denied"]);
    assert_eq!(code(&out), 1, "{}", stdout(&out));
    assert!(
        stdout(&out).contains("deny   Pod ml/gpu-on-pi"),
        "{}",
        stdout(&out)
    );
    assert!(
        stdout(&out).contains("cannot run on any node"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn warnings_fail_only_with_fail_on_warn() {
    let out = check(&["tests/fixtures/check/warned.yaml"]);
    assert_eq!(code(&out), 0);
    assert!(stdout(&out).contains("are unknown"), "{}", stdout(&out));
    let out = check(&["--fail-on", "warn", "tests/fixtures/check/warned.yaml"]);
    assert_eq!(code(&out), 1);
}

#[test]
fn parse_errors_exit_2_naming_file_document_and_line_and_keep_the_good_objects() {
    let out = check(&["-o", "json", "tests/fixtures/check/broken/bad.yaml"]);
    assert_eq!(code(&out), 2);
    let err = stderr(&out);
    assert!(
        err.contains("tests/fixtures/check/broken/bad.yaml: document 1, line 11"),
        "{err}"
    );
    let (doc, objects) = json_objects(&out);
    assert_eq!(objects.len(), 1);
    assert_eq!(doc["errors"][0]["document"], 1);
    assert_eq!(doc["errors"][0]["line"], 11);
}

#[test]
fn usage_and_missing_inputs_exit_2() {
    assert_eq!(code(&check(&["no/such/dir"])), 2);
    assert_eq!(
        code(&archgate(&["check", "tests/fixtures/check/warned.yaml"])),
        2
    );
    assert_eq!(
        code(&check(&["-o", "xml", "tests/fixtures/check/warned.yaml"])),
        2
    );
    let out = archgate(&["check", "--policy", "nope.toml", "x.yaml"]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("nope.toml"), "{}", stderr(&out));
}

#[test]
fn stdin_is_read_for_dash() {
    let pod = b"apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: shop}\nspec:\n  containers: [{name: c, image: registry.example/shop/report:0.9.0}]\n";
    let args = [
        "check",
        "--policy",
        POLICY,
        "--platforms",
        PLATFORMS,
        "-o",
        "json",
        "-",
    ];
    let out = archgate_stdin(&args, Some(pod));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let (_, objects) = json_objects(&out);
    assert_eq!(objects[0]["source"]["file"], "-");
    assert_eq!(objects[0]["decision"], "patch");
}

#[test]
fn a_captured_admission_review_is_replayed_and_its_response_printed() {
    let review = "tests/fixtures/admission-reviews/pod-create-gpu-limit-mutating.json";
    let out = check(&["-o", "review", review]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let response: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(response["kind"], "AdmissionReview");
    assert_eq!(response["response"]["allowed"], true);
    assert_eq!(response["response"]["patchType"], "JSONPatch");
    let captured: Value =
        serde_json::from_str(&std::fs::read_to_string(root().join(review)).unwrap()).unwrap();
    assert_eq!(response["response"]["uid"], captured["request"]["uid"]);
    let out = check(&["-o", "json", review]);
    let (_, objects) = json_objects(&out);
    assert_eq!(objects[0]["kind"], "Pod");
    assert_eq!(objects[0]["decision"], "patch");
    assert!(objects[0]["patch"]
        .as_array()
        .unwrap()
        .iter()
        .any(|op| op["path"] == "/spec/nodeSelector"));
}

#[test]
fn a_replayed_workload_review_gets_the_validating_webhooks_verdict_as_the_api_server_would() {
    let review = "tests/fixtures/admission-reviews/deployment-create.json";
    let out = check(&["-o", "json", review]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let (_, objects) = json_objects(&out);
    assert_eq!(objects[0]["kind"], "Deployment");
    assert_eq!(objects[0]["decision"], "allow", "{}", objects[0]);
    assert_eq!(objects[0]["architectures"], serde_json::json!(["amd64"]));

    let split = "tests/fixtures/check/replay/split-platforms.toml";
    let args = [
        "check",
        "--policy",
        POLICY,
        "--platforms",
        split,
        "-o",
        "review",
        review,
    ];
    let out = archgate(&args);
    assert_eq!(code(&out), 1, "a denial at /validate: {}", stdout(&out));
    let response: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(response["response"]["allowed"], false, "{response}");
    let message = response["response"]["status"]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(message.contains("cannot run on any node"), "{message}");
}

#[test]
fn yaml_patch_and_diff_show_the_admitted_objects() {
    let out = check(&["-o", "yaml", "tests/fixtures/check/workloads/mixed.yaml"]);
    assert_eq!(code(&out), 0);
    let text = stdout(&out);
    let docs: Vec<Value> = text
        .split("---\n")
        .filter(|d| !d.trim().is_empty())
        .map(|d| serde_yaml_ng::from_str(d).unwrap())
        .collect();
    assert_eq!(docs.len(), 4, "{text}");
    assert_eq!(
        docs[1]["metadata"]["annotations"]["archgate.io/architectures"],
        "arm64"
    );
    let out = check(&[
        "-o",
        "patch",
        "tests/fixtures/check/workloads/deployment.json",
    ]);
    let line: Value = serde_json::from_str(stdout(&out).lines().next().unwrap()).unwrap();
    assert_eq!(line["patchTarget"], "pods");
    let out = check(&[
        "-o",
        "diff",
        "tests/fixtures/check/workloads/deployment.json",
    ]);
    let text = stdout(&out);
    assert!(
        text.contains("pods of Deployment shop/web (as admitted)"),
        "{text}"
    );
    assert!(text.contains("- key: kubernetes.io/arch"), "{text}");
    assert!(text.ends_with('\n'));
}

#[test]
fn nodes_replace_the_policys_cluster() {
    let out = check(&[
        "--nodes",
        "tests/fixtures/nodes/seed-cluster.nodes.yaml",
        "-o",
        "json",
        "tests/fixtures/check/workloads/mixed.yaml",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = check(&["--nodes", "tests/fixtures/check/bad-policy.toml", "x"]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("nodes file"), "{}", stderr(&out));
}

#[test]
fn with_nodes_check_judges_every_node_and_names_why_none_fits() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("report.yaml");
    std::fs::write(
        &manifest,
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: report, namespace: shop}\nspec:\n  selector: {matchLabels: {app: report}}\n  template:\n    metadata: {labels: {app: report}}\n    spec:\n      nodeSelector: {nvidia.com/gpu.present: \"true\"}\n      containers: [{name: report, image: registry.example/shop/report:0.9.0}]\n",
    )
    .unwrap();
    let out = check(&[
        "--nodes",
        "tests/fixtures/nodes/seed-extended.nodes.json",
        manifest.to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 1, "{}", stdout(&out));
    assert!(
        stdout(&out).contains("pod shop/report-<generated> cannot be scheduled on any node: elminster: tainted nvidia.com/gpu:NoSchedule (the pod does not tolerate it); gauntlgrym: runs windows; 6 arm64 nodes: the image registry.example/shop/report:0.9.0 has no arm64 build; 9 nodes: no label nvidia.com/gpu.present=true."),
        "{}",
        stdout(&out)
    );
    // Without nodes, only architectures are known: the same Deployment passes.
    let out = check(&[manifest.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", stdout(&out));
}

#[test]
fn a_directory_of_many_manifests_is_checked_file_by_file() {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..1500 {
        let pod = format!("apiVersion: v1\nkind: Pod\nmetadata: {{name: p{i}, namespace: shop}}\nspec:\n  containers: [{{name: c, image: nginx:1.27}}]\n");
        std::fs::write(dir.path().join(format!("p{i:05}.yaml")), pod).unwrap();
    }
    let started = Instant::now();
    let out = check(&["-o", "json", dir.path().to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let (doc, objects) = json_objects(&out);
    assert_eq!(doc["summary"]["files"], 1500);
    assert_eq!(objects.len(), 1500);
    assert_eq!(objects[0]["name"], "p0", "sorted by path");
    assert!(started.elapsed() < Duration::from_secs(60));
}

#[test]
fn lint_passes_the_shipped_policy_and_points_at_mistakes() {
    let out = archgate(&["lint", POLICY]);
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    let out = archgate(&["lint", "tests/fixtures/check/bad-policy.toml"]);
    assert_eq!(code(&out), 1);
    let text = stdout(&out);
    assert!(
        text.contains("error[unknown-key]: unknown key `mood` in [defaults]"),
        "{text}"
    );
    assert!(
        text.contains("--> tests/fixtures/check/bad-policy.toml:5:1"),
        "{text}"
    );
    assert!(text.contains("5 | mood = \"mutate\"\n  | ^^^^"), "{text}");
    assert!(text.contains("did you mean `mode`?"), "{text}");
    let out = archgate(&[
        "lint",
        "-f",
        "github",
        "tests/fixtures/check/bad-policy.toml",
    ]);
    assert!(
        stdout(&out).starts_with("::error file=tests/fixtures/check/bad-policy.toml,line=5,col=1,"),
        "{}",
        stdout(&out)
    );
    let out = archgate(&["lint", "-f", "json", "tests/fixtures/check/bad-policy.toml"]);
    let items: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(items[0]["code"], "unknown-key");
    assert_eq!(items[0]["line"], 5);
}

#[test]
fn lint_warnings_fail_only_with_deny_warnings_and_sarif_is_2_1_0() {
    let policy = "tests/fixtures/check/warn-policy.toml";
    let out = archgate(&["lint", policy]);
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    assert!(
        stdout(&out).contains("warning[shadowed-rule]"),
        "{}",
        stdout(&out)
    );
    assert_eq!(code(&archgate(&["lint", "--deny-warnings", policy])), 1);
    let out = archgate(&["lint", "-f", "sarif", policy]);
    let sarif: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(sarif["version"], "2.1.0");
    let result = &sarif["runs"][0]["results"][0];
    assert_eq!(result["ruleId"], "shadowed-rule");
    assert_eq!(result["level"], "warning");
    assert_eq!(
        result["locations"][0]["physicalLocation"]["region"]["startLine"],
        8
    );
    assert_eq!(code(&archgate(&["lint", "no-such.toml"])), 2);
}

#[test]
fn the_homelab_suite_passes_and_writes_junit() {
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("junit.xml");
    let out = archgate(&["test", "--junit", junit.to_str().unwrap(), "policies/tests"]);
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    assert!(stdout(&out)
        .lines()
        .last()
        .unwrap()
        .ends_with(" passed, 0 failed"));
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("<testsuites name=\"archgate\""), "{xml}");
    assert!(xml.contains("failures=\"0\""), "{xml}");
}

#[test]
fn a_failing_case_exits_1_with_a_diff_of_the_mutation() {
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("junit.xml");
    let out = archgate(&[
        "test",
        "--junit",
        junit.to_str().unwrap(),
        "tests/fixtures/check/suites",
    ]);
    assert_eq!(code(&out), 1);
    let text = stdout(&out);
    assert!(
        text.contains("FAIL  expects the wrong architecture"),
        "{text}"
    );
    assert!(
        text.contains("-            - arm64\n") || text.contains("- arm64"),
        "{text}"
    );
    assert!(
        text.contains("+            - amd64") || text.contains("+ "),
        "{text}"
    );
    assert!(text.contains("1 passed, 1 failed"), "{text}");
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("<failure message="), "{xml}");
    assert_eq!(code(&archgate(&["test", "no/such/dir"])), 2);
}

#[test]
fn completions_and_help_examples() {
    for shell in ["bash", "zsh", "fish"] {
        let out = archgate(&["completions", shell]);
        assert_eq!(code(&out), 0);
        assert!(stdout(&out).contains("archgate"), "{shell}");
    }
    for sub in ["serve", "certs", "check", "lint", "test", "completions"] {
        let out = archgate(&[sub, "--help"]);
        assert!(
            stdout(&out).contains("Example"),
            "{sub} --help shows an example"
        );
    }
}

/// A deterministic pseudo-random sequence (xorshift), so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Truncations and byte mutations of `seed`: cut anywhere, flip, duplicate or delete a span,
/// insert a YAML/TOML metacharacter.
fn mutants(seed: &str, count: usize, rng: &mut Rng) -> Vec<Vec<u8>> {
    const META: &[&[u8]] = &[
        b":", b"-", b"[", b"]", b"{", b"}", b"\"", b"'", b"\n", b"#", b"=", b"*", b"&a", b"!!",
        b"---\n", b"\t", b"\xff",
    ];
    let bytes = seed.as_bytes();
    (0..count)
        .map(|i| {
            let mut b = bytes.to_vec();
            match i % 4 {
                0 => b.truncate(rng.below(b.len())),
                1 => {
                    for _ in 0..1 + rng.below(4) {
                        let at = rng.below(b.len());
                        let m = META[rng.below(META.len())];
                        b.splice(at..at, m.iter().copied());
                    }
                }
                2 => {
                    let at = rng.below(b.len());
                    let len = rng.below(20).min(b.len() - at);
                    b.drain(at..at + len);
                }
                _ => {
                    let at = rng.below(b.len());
                    b[at] = (rng.next() & 0xff) as u8;
                }
            }
            b
        })
        .collect()
}

fn assert_survives(label: &str, out: &Output, elapsed: Duration) {
    let err = stderr(out);
    assert!(
        matches!(code(out), 0..=2),
        "{label}: exit {:?}: {err}",
        out.status
    );
    assert!(!err.contains("panicked"), "{label}: {err}");
    assert!(
        elapsed < Duration::from_secs(10),
        "{label}: took {elapsed:?}"
    );
}

#[test]
fn truncated_and_mutated_inputs_never_panic() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let dir = tempfile::tempdir().unwrap();
    let read = |p: &str| std::fs::read_to_string(root().join(p)).unwrap();

    let manifests = read("tests/fixtures/check/workloads/mixed.yaml");
    for (i, m) in mutants(&manifests, 300, &mut rng).iter().enumerate() {
        let started = Instant::now();
        let args = [
            "check",
            "--policy",
            POLICY,
            "--platforms",
            PLATFORMS,
            "-o",
            "json",
            "-",
        ];
        let out = archgate_stdin(&args, Some(m));
        assert_survives(&format!("check #{i}"), &out, started.elapsed());
    }

    let policy = read(POLICY);
    let file = dir.path().join("policy.toml");
    for (i, m) in mutants(&policy, 300, &mut rng).iter().enumerate() {
        std::fs::write(&file, m).unwrap();
        let started = Instant::now();
        let out = archgate(&["lint", file.to_str().unwrap()]);
        assert_survives(&format!("lint #{i}"), &out, started.elapsed());
    }

    let suite = read("policies/tests/homelab.archgate-test.toml")
        .replace(
            "../homelab.toml",
            &root().join(POLICY).display().to_string(),
        )
        .replace(
            "../homelab-platforms.toml",
            &root().join(PLATFORMS).display().to_string(),
        )
        .replace(
            "manifests/gpu-nvidia.yaml",
            &root()
                .join("policies/tests/manifests/gpu-nvidia.yaml")
                .display()
                .to_string(),
        );
    let file = dir.path().join("s.archgate-test.toml");
    for (i, m) in mutants(&suite, 300, &mut rng).iter().enumerate() {
        std::fs::write(&file, m).unwrap();
        let started = Instant::now();
        let out = archgate(&["test", file.to_str().unwrap()]);
        assert_survives(&format!("test #{i}"), &out, started.elapsed());
    }
}
