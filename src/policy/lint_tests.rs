//! Lint rules on small policies: each finding, where it points, and what it suggests.
#![allow(clippy::unwrap_used)]

use super::*;

const CLUSTER: &str = "[cluster]\nplatforms = [\"linux/amd64\", \"linux/arm64\"]\n";

fn lint_text(text: &str) -> Vec<Diagnostic> {
    lint(text, Path::new("p.toml"))
}

fn codes(ds: &[Diagnostic]) -> Vec<&'static str> {
    ds.iter().map(|d| d.code).collect()
}

#[test]
fn the_shipped_homelab_policy_is_clean() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies/homelab.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(lint_text(&text), []);
}

#[test]
fn every_unknown_key_is_reported_at_its_position_with_a_suggestion() {
    let text = format!(
        "{CLUSTER}[defaults]\nmood = \"mutate\"\n[[rules]]\nname = \"r\"\nnamespace = [\"a\"]\n"
    );
    let ds = lint_text(&text);
    assert_eq!(codes(&ds), ["unknown-key", "unknown-key"]);
    assert_eq!(&text[ds[0].span.clone()], "mood");
    assert_eq!(ds[0].help.as_deref(), Some("did you mean `mode`?"));
    assert_eq!(ds[1].help.as_deref(), Some("did you mean `namespaces`?"));
}

#[test]
fn load_errors_keep_their_message_and_position() {
    let text = format!("{CLUSTER}[[rules]]\nname = \"r\"\narchitectures = [\"aarch64\"]\n");
    let ds = lint_text(&text);
    assert_eq!(codes(&ds), ["schema"]);
    assert!(
        ds[0].message.contains("did you mean `arm64`"),
        "{:?}",
        ds[0]
    );
    assert!(text[ds[0].span.clone()].contains("aarch64"));
    let ds = lint_text(&format!(
        "{CLUSTER}[[rules]]\nname = \"r\"\nnamespaces = [\"Bad_NS\"]\n"
    ));
    assert!(ds[0].message.contains("not a namespace name"), "{ds:?}");
    let ds = lint_text("[cluster\n");
    assert_eq!(codes(&ds), ["syntax"]);
    let ds = lint_text(&format!(
        "{CLUSTER}[[rules]]\nname = \"a\"\n[[rules]]\nname = \"a\"\n"
    ));
    assert_eq!(codes(&ds), ["invalid"]);
    assert!(ds[0].message.contains("two rules are named"), "{ds:?}");
}

#[test]
fn a_rule_after_a_catch_all_or_a_wider_rule_is_shadowed() {
    let ds = lint_text(&format!(
        "{CLUSTER}[[rules]]\nname = \"all\"\n[[rules]]\nname = \"db\"\nnamespaces = [\"db\"]\n"
    ));
    assert_eq!(codes(&ds), ["shadowed-rule"]);
    assert!(ds[0].message.contains("catch-all rule \"all\""), "{ds:?}");
    let ds = lint_text(&format!(
        "{CLUSTER}[[rules]]\nname = \"teams\"\nnamespaces = [\"team-*\"]\n[[rules]]\nname = \"a\"\nnamespaces = [\"team-a\"]\npod_selector = {{ match_labels = {{ app = \"x\" }} }}\n"
    ));
    assert_eq!(codes(&ds), ["shadowed-rule"]);
    let ds = lint_text(&format!(
        "{CLUSTER}[[rules]]\nname = \"db\"\npod_selector = {{ match_labels = {{ app = \"db\" }} }}\n[[rules]]\nname = \"ns\"\nnamespaces = [\"x\"]\n"
    ));
    assert_eq!(ds, [], "a narrower earlier rule shadows nothing");
}

#[test]
fn contradictions_conflicts_and_missing_architectures_are_warnings() {
    let ds = lint_text(&format!(
        "{CLUSTER}[[rules]]\nname = \"never\"\npod_selector = {{ match_labels = {{ app = \"a\" }}, match_expressions = [{{ key = \"app\", operator = \"NotIn\", values = [\"a\"] }}] }}\n"
    ));
    assert_eq!(codes(&ds), ["unsatisfiable-selector"]);
    let ds = lint_text(&format!(
        "{CLUSTER}[[rules]]\nname = \"pi\"\narchitectures = [\"arm64\", \"riscv64\"]\n[gpu.nvidia]\nresources = [\"nvidia.com/gpus\"]\narchitectures = [\"amd64\", \"s390x\"]\n"
    ));
    assert_eq!(
        codes(&ds),
        [
            "architecture-not-in-cluster",
            "conflicting-requirements",
            "gpu-architecture-not-in-cluster",
            "unknown-resource"
        ]
    );
    assert_eq!(
        ds[3].help.as_deref(),
        Some("did you mean `nvidia.com/gpu`?")
    );
    assert!(ds.iter().all(|d| d.severity == Severity::Warning));
}

#[test]
fn the_key_table_matches_the_model() {
    // Every key lint knows loads (no "unknown field"), so its suggestions are always valid keys.
    let text = String::from(
        "[cluster]\nplatforms = [\"linux/amd64\"]\n[defaults]\nmode = \"mutate\"\nunknown_images = \"warn\"\n[[rules]]\nname = \"r\"\nnamespaces = [\"a\"]\nmode = \"mutate\"\narchitectures = [\"amd64\"]\nunknown_images = \"warn\"\n[rules.pod_selector]\nmatch_labels = { a = \"b\" }\nmatch_expressions = [{ key = \"k\", operator = \"In\", values = [\"v\"] }]\n[gpu.n]\nresources = [\"nvidia.com/gpu\"]\narchitectures = [\"amd64\"]\nnode_selector = { a = \"b\" }\ntolerations = [{ key = \"k\", operator = \"Equal\", value = \"v\", effect = \"NoSchedule\", toleration_seconds = 5 }]\n"
    );
    let policy = Policy::from_toml(&text, Path::new("p.toml"));
    assert!(policy.is_ok(), "{policy:?}");
}

#[test]
fn namespace_selectors_are_linted_like_pod_selectors() {
    // Unknown keys inside it, spelt as Kubernetes spells them, get the policy's spelling.
    let text = format!(
        "{CLUSTER}[[rules]]\nname = \"r\"\n[rules.namespace_selector]\nmatchLabels = {{ team = \"a\" }}\n"
    );
    let ds = lint_text(&text);
    assert_eq!(codes(&ds), ["unknown-key"]);
    assert_eq!(&text[ds[0].span.clone()], "matchLabels");
    assert_eq!(ds[0].help.as_deref(), Some("did you mean `match_labels`?"));
    // Free-form label keys are not "unknown".
    let ds = lint_text(&format!(
        "{CLUSTER}[[rules]]\nname = \"r\"\nnamespace_selector = {{ match_labels = {{ \"team.example/x\" = \"a\" }} }}\n"
    ));
    assert_eq!(ds, []);
    // Impossible: contradictory requirements, or no name label.
    let text = format!(
        "{CLUSTER}[[rules]]\nname = \"never\"\nnamespace_selector = {{ match_expressions = [{{ key = \"team\", operator = \"Exists\" }}, {{ key = \"team\", operator = \"DoesNotExist\" }}] }}\n[[rules]]\nname = \"nameless\"\nnamespace_selector = {{ match_expressions = [{{ key = \"kubernetes.io/metadata.name\", operator = \"DoesNotExist\" }}] }}\n"
    );
    let ds = lint_text(&text);
    assert_eq!(
        codes(&ds),
        ["unsatisfiable-selector", "unsatisfiable-selector"]
    );
    assert!(ds[0].message.contains("namespace_selector"), "{:?}", ds[0]);
    assert!(ds[1].message.contains("every namespace"), "{:?}", ds[1]);
    assert!(text[ds[0].span.clone()].starts_with("{ match_expressions"));
    // Shadowing sees namespace selectors: a broader earlier one hides a narrower later one,
    // and a rule with a namespace selector does not shadow one without.
    let ds = lint_text(&format!(
        "{CLUSTER}[[rules]]\nname = \"teams\"\nnamespace_selector = {{ match_expressions = [{{ key = \"team\", operator = \"Exists\" }}] }}\n[[rules]]\nname = \"team-a\"\nnamespace_selector = {{ match_labels = {{ team = \"a\" }} }}\n[[rules]]\nname = \"all\"\n"
    ));
    assert_eq!(codes(&ds), ["shadowed-rule"]);
    assert!(ds[0].message.contains("\"team-a\""), "{:?}", ds[0]);
}

#[test]
fn pools_and_variant_labels_are_linted() {
    let typo = format!("{CLUSTER}[[cluster.pools]]\nname = \"spot\"\nplatfrom = \"linux/arm64\"\n");
    let ds = lint_text(&typo);
    assert_eq!(codes(&ds), ["unknown-key"]);
    assert_eq!(ds[0].help.as_deref(), Some("did you mean `platform`?"));
    let clean = format!(
        "{CLUSTER}[[cluster.pools]]\nname = \"spot\"\nplatform = \"linux/arm64\"\nlabels = {{ \"pool\" = \"spot\" }}\ntaints = [{{ key = \"spot\", effect = \"NoSchedule\" }}]\nresources = [\"nvidia.com/gpu\"]\n[cluster.variant_labels]\n\"cpu=zen4\" = \"v4\"\n"
    );
    assert_eq!(lint_text(&clean), []);
    let cpu = format!(
        "{CLUSTER}[[cluster.pools]]\nname = \"spot\"\nplatform = \"linux/arm64\"\nresources = [\"cpu\"]\n"
    );
    assert_eq!(
        codes(&lint_text(&cpu)),
        ["schema"],
        "not an extended resource"
    );
    let effect = format!(
        "{CLUSTER}[[cluster.pools]]\nname = \"spot\"\nplatform = \"linux/arm64\"\ntaints = [{{ key = \"k\", effect = \"NoScheduel\" }}]\n"
    );
    assert_eq!(codes(&lint_text(&effect)), ["schema"]);
    let contradicting = format!(
        "{CLUSTER}[[cluster.pools]]\nname = \"spot\"\nplatform = \"linux/arm64\"\nlabels = {{ \"kubernetes.io/arch\" = \"amd64\" }}\n"
    );
    let ds = lint_text(&contradicting);
    assert_eq!(codes(&ds), ["invalid"]);
    assert!(
        ds[0]
            .message
            .contains("label kubernetes.io/arch=amd64 contradicts its platform linux/arm64"),
        "{ds:?}"
    );
    let variant = format!("{CLUSTER}[cluster.variant_labels]\n\"cpu=zen4\" = \"fast\"\n");
    let ds = lint_text(&variant);
    assert!(
        ds[0].message.contains("`fast` is not a CPU variant"),
        "{ds:?}"
    );
}
