//! Loading policies: the shipped one, errors with line and column, and what rules match.

use super::*;

fn load(text: &str) -> Result<Policy, String> {
    Policy::from_toml(text, Path::new("p.toml")).map_err(|e| e.to_string())
}

const CLUSTER: &str = "[cluster]\nplatforms = [\"linux/amd64\", \"linux/arm64\"]\n";

#[test]
fn the_shipped_homelab_policy_loads_and_encodes_the_seed_cluster() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies/homelab.toml");
    let p = Policy::load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(p.cluster_archs.names(), ["amd64", "arm64"]);
    let none = BTreeMap::new();
    assert_eq!(
        p.rule_for(&Namespace::named("kube-system"), &none)
            .and_then(|r| r.mode),
        Some(Mode::Off)
    );
    let db = p
        .rule_for(&Namespace::named("databases"), &none)
        .and_then(|r| r.architectures);
    assert_eq!(db.map(|a| a.names()), Some(vec!["amd64"]));
    for res in ["nvidia.com/gpu", "amd.com/gpu", "gpu.intel.com/i915"] {
        let vendor = p
            .gpu_for(res)
            .unwrap_or_else(|| panic!("{res} has no vendor"));
        assert_eq!(
            vendor.architectures.names(),
            ["amd64"],
            "{res}: GPU workloads never on arm64"
        );
    }
}

#[test]
fn unknown_keys_and_wrong_types_are_errors_with_line_and_column() {
    let err = load(&format!("{CLUSTER}[defaults]\nmood = \"mutate\"\n"))
        .err()
        .unwrap_or_default();
    assert!(
        err.contains("line 4, column 1") && err.contains("unknown field `mood`"),
        "{err}"
    );
    let err = load(&format!("{CLUSTER}[defaults]\nmode = 3\n"))
        .err()
        .unwrap_or_default();
    assert!(
        err.contains("line 4, column 8") && err.contains("mode"),
        "{err}"
    );
    let err = load(&format!("{CLUSTER}[defaults]\nmode = \"mutat\"\n"))
        .err()
        .unwrap_or_default();
    assert!(err.contains("unknown variant `mutat`"), "{err}");
    let err = load("[cluster]\nplatforms = [\"linux/amd46\"]\n")
        .err()
        .unwrap_or_default();
    assert!(
        err.contains("line 2") && err.contains("did you mean `linux/amd64`"),
        "{err}"
    );
    let err = load("[defaults]\nmode = \"off\"\n")
        .err()
        .unwrap_or_default();
    assert!(err.contains("missing field `cluster`"), "{err}");
}

#[test]
fn impossible_values_are_errors_that_name_the_rule() {
    let rule = |body: &str| {
        load(&format!("{CLUSTER}[[rules]]\n{body}\n"))
            .err()
            .unwrap_or_default()
    };
    let err = rule("name = \"s390\"\narchitectures = [\"s390x\"]");
    assert!(
        err.starts_with("policy file p.toml:3:1:") && err.contains("rule \"s390\" allows s390x"),
        "{err}"
    );
    let err = rule("name = \"x\"\nnamespaces = [\"Bad_NS\"]");
    assert!(err.contains("not a namespace name"), "{err}");
    let err = rule(
        "name = \"x\"\npod_selector = { match_expressions = [{ key = \"a\", operator = \"In\" }] }",
    );
    assert!(err.contains("needs at least one value"), "{err}");
    let err = rule("name = \"x\"\narchitectures = [\"aarch64\"]");
    assert!(err.contains("did you mean `arm64`"), "{err}");
    let err = load(&format!(
        "{CLUSTER}[[rules]]\nname = \"a\"\n[[rules]]\nname = \"a\"\n"
    ))
    .err()
    .unwrap_or_default();
    assert!(err.contains("two rules are named \"a\""), "{err}");
    let err = load(&format!("{CLUSTER}[cluster.extra]\n"))
        .err()
        .unwrap_or_default();
    assert!(err.contains("unknown field `extra`"), "{err}");
}

#[test]
fn gpu_vendors_are_checked() {
    let gpu = |body: &str| load(&format!("{CLUSTER}{body}")).err().unwrap_or_default();
    let err = gpu("[gpu.a]\nresources = [\"x.com/gpu\"]\narchitectures = [\"amd64\"]\n[gpu.b]\nresources = [\"x.com/gpu\"]\narchitectures = [\"amd64\"]\n");
    assert!(err.contains("already claimed by gpu.a"), "{err}");
    let err = gpu("[gpu.a]\nresources = [\"gpu\"]\narchitectures = [\"amd64\"]\n");
    assert!(err.contains("not an extended resource name"), "{err}");
    let err = gpu("[gpu.a]\nresources = [\"x.com/gpu\"]\narchitectures = [\"riscv64\"]\n");
    assert!(err.contains("no pod requesting it could run"), "{err}");
    let err = gpu("[gpu.a]\nresources = [\"x.com/gpu\"]\narchitectures = [\"amd64\"]\ntolerations = [{ key = \"k\", oprator = \"Exists\" }]\n");
    assert!(err.contains("unknown field `oprator`"), "{err}");
}

#[test]
fn label_selectors_match_as_kubernetes_does() {
    let p = load(&format!(
        "{CLUSTER}[[rules]]\nname = \"r\"\npod_selector = {{ match_labels = {{ app = \"db\" }}, match_expressions = [{{ key = \"tier\", operator = \"NotIn\", values = [\"test\"] }}, {{ key = \"legacy\", operator = \"DoesNotExist\" }}] }}\n"
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    let labels = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>()
    };
    let ns = Namespace::named("ns");
    assert!(p.rule_for(&ns, &labels(&[("app", "db")])).is_some());
    assert!(p
        .rule_for(&ns, &labels(&[("app", "db"), ("tier", "prod")]))
        .is_some());
    assert!(p
        .rule_for(&ns, &labels(&[("app", "db"), ("tier", "test")]))
        .is_none());
    assert!(p
        .rule_for(&ns, &labels(&[("app", "db"), ("legacy", "")]))
        .is_none());
    assert!(p.rule_for(&ns, &labels(&[("app", "web")])).is_none());
}

#[test]
fn namespace_selectors_match_the_namespaces_labels_and_name_label() {
    let p = load(&format!(
        "{CLUSTER}[[rules]]\nname = \"off\"\nmode = \"off\"\nnamespace_selector = {{ match_labels = {{ \"archgate.io/mode\" = \"off\" }} }}\n[[rules]]\nname = \"teams\"\nnamespaces = [\"team-*\"]\nnamespace_selector = {{ match_expressions = [{{ key = \"team\", operator = \"Exists\" }}] }}\n[[rules]]\nname = \"by-name\"\nnamespace_selector = {{ match_expressions = [{{ key = \"kubernetes.io/metadata.name\", operator = \"In\", values = [\"legacy\"] }}] }}\n"
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(p.selects_namespaces_by_label());
    let none = BTreeMap::new();
    let ns = |name: &str, pairs: &[(&str, &str)]| {
        let labels = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Namespace::with_labels(name, labels)
    };
    let rule = |n: &Namespace| p.rule_for(n, &none).map(|r| r.name.as_str());
    assert_eq!(
        rule(&ns("anything", &[("archgate.io/mode", "off")])),
        Some("off")
    );
    assert_eq!(rule(&ns("team-a", &[("team", "a")])), Some("teams"));
    // Both the name pattern and the selector must hold.
    assert_eq!(rule(&ns("team-b", &[])), None);
    assert_eq!(rule(&ns("shop", &[("team", "a")])), None);
    assert_eq!(rule(&Namespace::named("legacy")), Some("by-name"));
    let err = load(&format!("{CLUSTER}[[rules]]\nname = \"x\"\nnamespace_selector = {{ match_expressions = [{{ key = \"a\", operator = \"Exists\", values = [\"b\"] }}] }}\n")).err().unwrap_or_default();
    assert!(
        err.contains("namespace_selector expression on `a`") && err.contains("takes no values"),
        "{err}"
    );
    let err = load(&format!("{CLUSTER}[[rules]]\nname = \"x\"\nnamespace_selector = {{ matchLabels = {{ a = \"b\" }} }}\n")).err().unwrap_or_default();
    assert!(err.contains("unknown field `matchLabels`"), "{err}");
    assert!(!load(CLUSTER)
        .map(|p| p.selects_namespaces_by_label())
        .unwrap_or(true));
}
