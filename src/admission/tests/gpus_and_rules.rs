//! GPU vendors (selector, tolerations, architectures, contradictions) and rules and modes
//! (first match, off, validate, warn, a mutate pod that reaches validation unplaced).

use super::*;

pub(super) const GPU: &str = r#"
[gpu.nvidia]
resources = ["nvidia.com/gpu"]
architectures = ["amd64"]
node_selector = { "nvidia.com/gpu.present" = "true" }
tolerations = [{ key = "nvidia.com/gpu", operator = "Exists", effect = "NoSchedule" }]
"#;

#[test]
fn a_gpu_request_adds_the_vendors_selector_tolerations_and_architecture() {
    let mut p = pod(&["cuda:12"], json!({"nodeSelector": {"disk": "ssd"}}));
    p["spec"]["containers"][0]["resources"] = json!({"requests": {"nvidia.com/gpu": "1"}});
    let (d, out) = decide(&policy(GPU), &p, &[("cuda:12", MULTI)], Stage::Mutate);
    assert_eq!(d.architectures.names(), ["amd64"]);
    assert_eq!(
        out["spec"]["nodeSelector"],
        json!({"disk": "ssd", "nvidia.com/gpu.present": "true"})
    );
    assert_eq!(
        out["spec"]["tolerations"],
        json!([{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}])
    );
    assert_eq!(
        required_terms(&out)[0]["matchExpressions"],
        json!([arch_expr(&["amd64"])])
    );
}

#[test]
fn a_gpu_pod_whose_node_selector_contradicts_the_vendor_is_denied() {
    let mut p = pod(
        &["cuda:12"],
        json!({"nodeSelector": {"nvidia.com/gpu.present": "false"}}),
    );
    p["spec"]["containers"][0]["resources"] = json!({"limits": {"nvidia.com/gpu": "1"}});
    let (d, _) = decide(&policy(GPU), &p, &[("cuda:12", MULTI)], Stage::Mutate);
    assert!(
        matches!(d.verdict, Verdict::Deny(ref m) if m.contains("contradicts")),
        "{d:?}"
    );
}

#[test]
fn a_gpu_on_an_arm64_only_image_is_denied() {
    let mut p = pod(&["edge:1"], json!({}));
    p["spec"]["containers"][0]["resources"] = json!({"limits": {"nvidia.com/gpu": "1"}});
    let (d, _) = decide(&policy(GPU), &p, &[("edge:1", ARM64)], Stage::Mutate);
    assert!(
        matches!(d.verdict, Verdict::Deny(ref m) if m.contains("nvidia.com/gpu (nvidia GPUs) is on amd64 nodes")),
        "{d:?}"
    );
}

const RULES: &str = r#"
[[rules]]
name = "system"
namespaces = ["kube-*"]
mode = "off"

[[rules]]
name = "databases"
architectures = ["amd64"]
[rules.pod_selector]
match_labels = { tier = "db" }

[[rules]]
name = "shop validates"
namespaces = ["shop"]
mode = "validate"
"#;

#[test]
fn the_first_matching_rule_decides() {
    let pol = policy(RULES);
    let mut p = pod(&["pg:15"], json!({}));
    p["metadata"]["labels"] = json!({"tier": "db"});
    let (d, out) = decide(&pol, &p, &[("pg:15", MULTI)], Stage::Mutate);
    assert_eq!(d.rule.as_deref(), Some("databases"));
    assert_eq!(
        required_terms(&out)[0]["matchExpressions"],
        json!([arch_expr(&["amd64"])])
    );
    // Same pod without the label: the "shop validates" rule, which never patches.
    let p = pod(&["app:1"], json!({}));
    let (d, _) = decide(&pol, &p, &[("app:1", AMD64)], Stage::Mutate);
    assert_eq!(
        (d.rule.as_deref(), &d.verdict),
        (Some("shop validates"), &Verdict::Allow)
    );
}

#[test]
fn off_mode_leaves_the_pod_untouched() {
    let pol = policy("[[rules]]\nname = \"off\"\nnamespaces = [\"shop\"]\nmode = \"off\"\n");
    let p = pod(
        &["app:1"],
        json!({"nodeSelector": {"kubernetes.io/arch": "arm64"}}),
    );
    for stage in [Stage::Mutate, Stage::Validate] {
        let (d, out) = decide(&pol, &p, &[("app:1", AMD64)], stage);
        assert_eq!((d.verdict, d.warnings.len()), (Verdict::Allow, 0));
        assert_eq!(out, p);
    }
}

#[test]
fn validate_mode_denies_an_unconstrained_pod_at_validation_and_says_what_to_add() {
    let pol = policy("[defaults]\nmode = \"validate\"\n");
    let p = pod(&["app:1"], json!({}));
    let (d, _) = decide(&pol, &p, &[("app:1", AMD64)], Stage::Mutate);
    assert_eq!(d.verdict, Verdict::Allow, "validate never patches");
    let (d, _) = decide(&pol, &p, &[("app:1", AMD64)], Stage::Validate);
    let Verdict::Deny(msg) = &d.verdict else {
        panic!("{d:?}")
    };
    assert!(msg.contains("can be scheduled on arm64 nodes"), "{msg}");
    assert!(
        msg.contains("add nodeSelector kubernetes.io/arch: amd64"),
        "{msg}"
    );
    let fixed = pod(
        &["app:1"],
        json!({"nodeSelector": {"kubernetes.io/arch": "amd64"}}),
    );
    let (d, _) = decide(&pol, &fixed, &[("app:1", AMD64)], Stage::Validate);
    assert_eq!(d.verdict, Verdict::Allow);
}

#[test]
fn warn_mode_allows_with_a_warning() {
    let pol = policy("[defaults]\nmode = \"warn\"\n");
    let p = pod(
        &["app:1"],
        json!({"nodeSelector": {"kubernetes.io/arch": "arm64"}}),
    );
    let (d, _) = decide(&pol, &p, &[("app:1", AMD64)], Stage::Validate);
    assert_eq!(d.verdict, Verdict::Allow);
    assert_eq!(d.outcome().as_str(), "warn");
    assert!(
        d.warnings[0].contains("cannot run on any node"),
        "{:?}",
        d.warnings
    );
}

#[test]
fn a_mutate_mode_pod_that_reaches_validation_unplaced_is_denied() {
    let p = pod(&["app:1"], json!({}));
    let (d, _) = decide(&policy(""), &p, &[("app:1", AMD64)], Stage::Validate);
    assert!(
        matches!(d.verdict, Verdict::Deny(ref m) if m.contains("mutating webhook did not place this pod")),
        "{d:?}"
    );
    let (_, placed) = decide(&policy(""), &p, &[("app:1", AMD64)], Stage::Mutate);
    let (d, _) = decide(&policy(""), &placed, &[("app:1", AMD64)], Stage::Validate);
    assert_eq!((d.verdict, d.warnings.len()), (Verdict::Allow, 0));
}
