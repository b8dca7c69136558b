//! What the real kube-apiserver refuses on a Pod update (PUT or PATCH, not `/status`), on plain
//! JSON: a port of `ValidatePodUpdate` and its helpers (`validateOnlyAddedTolerations`,
//! `validateOnlyDeletedSchedulingGates`, `validateNodeSelectorMutation`,
//! `validateNodeAffinityMutation`, `validateNodeSelectorTermHasOnlyAdditions`) from
//! kubernetes/kubernetes `pkg/apis/core/validation/validation.go`.
//!
//! Go's semantic equality is approximated on JSON: `null`, a missing key and `[]` are equal, and
//! so is `{}` under keys that are Go maps or plain structs (`nodeSelector`, `resources`, ...).
//! Values in "Invalid value" texts are printed as JSON (Go prints `%#v` for structs).

use serde_json::{json, Map, Value};
use std::fmt;

/// One `field.Error`: `{field}: {body}` as the API server prints it.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    pub field: String,
    /// The StatusCause reason: `FieldValueForbidden`, `FieldValueInvalid`, `FieldValueRequired`.
    pub reason: &'static str,
    /// What follows the field path: `Forbidden: ...`, `Invalid value: V: ...`, `Required value`.
    pub body: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.body)
    }
}

impl FieldError {
    fn new(field: impl Into<String>, reason: &'static str, body: String) -> FieldError {
        let field = field.into();
        FieldError {
            field,
            reason,
            body,
        }
    }
}

fn forbidden(field: impl Into<String>, detail: impl fmt::Display) -> FieldError {
    FieldError::new(field, "FieldValueForbidden", format!("Forbidden: {detail}"))
}

fn invalid(field: impl Into<String>, value: &Value, detail: &str) -> FieldError {
    let shown = match value {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    };
    let body = format!("Invalid value: {shown}: {detail}");
    FieldError::new(field, "FieldValueInvalid", body)
}

/// The Status message: `Pod "x" is invalid: e` or `Pod "x" is invalid: [e1, e2]`.
pub fn invalid_message(kind: &str, name: &str, errors: &[FieldError]) -> String {
    let all: Vec<String> = errors.iter().map(ToString::to_string).collect();
    match all.as_slice() {
        [one] => format!("{kind} {name:?} is invalid: {one}"),
        _ => format!("{kind} {name:?} is invalid: [{}]", all.join(", ")),
    }
}

/// Keys whose Go type is a map or a non-pointer struct: `{}` there equals absent.
const EMPTY_IS_ABSENT: &[&str] = &[
    "nodeSelector",
    "labels",
    "annotations",
    "resources",
    "limits",
    "requests",
    "overhead",
    "matchLabels",
];

fn norm(v: &Value, key: &str) -> Option<Value> {
    match v {
        Value::Null => None,
        Value::Array(a) if a.is_empty() => None,
        Value::Array(a) => Some(Value::Array(
            a.iter()
                .map(|x| norm(x, "").unwrap_or(Value::Null))
                .collect(),
        )),
        Value::Object(o) => {
            let m: Map<String, Value> = o
                .iter()
                .filter_map(|(k, x)| norm(x, k).map(|x| (k.clone(), x)))
                .collect();
            (!m.is_empty() || !EMPTY_IS_ABSENT.contains(&key)).then_some(Value::Object(m))
        }
        other => Some(other.clone()),
    }
}

/// `apiequality.Semantic.DeepEqual` on JSON, as far as this fake needs it.
pub fn sem_eq(a: &Value, b: &Value) -> bool {
    norm(a, "") == norm(b, "")
}

fn arr(v: &Value) -> &[Value] {
    v.as_array().map(Vec::as_slice).unwrap_or(&[])
}

/// Sets `obj[key]` to `value`, or removes the key when `value` is null.
pub fn put(obj: &mut Value, key: &str, value: &Value) {
    if let Some(map) = obj.as_object_mut() {
        if value.is_null() {
            map.remove(key);
        } else {
            map.insert(key.to_string(), value.clone());
        }
    }
}

const UPDATABLE: &str = "`spec.containers[*].image`,`spec.initContainers[*].image`,\
`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),\
`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

/// `ValidatePodUpdate(new, old)`: what the real server refuses when `old` is replaced by `new`.
pub fn validate_pod_update(old: &Value, new: &Value) -> Vec<FieldError> {
    let (os, ns) = (&old["spec"], &new["spec"]);
    let mut errs = Vec::new();
    for key in ["containers", "initContainers"] {
        let (o, n) = (arr(&os[key]), arr(&ns[key]));
        if o.len() != n.len() {
            errs.push(forbidden(
                format!("spec.{key}"),
                "pod updates may not add or remove containers",
            ));
            return errs;
        }
        for (i, c) in n.iter().enumerate() {
            let image = c["image"].as_str().unwrap_or("");
            if image.is_empty() {
                let body = "Required value".to_string();
                errs.push(FieldError::new(
                    format!("spec.{key}[{i}].image"),
                    "FieldValueRequired",
                    body,
                ));
            } else if image.trim() != image {
                let detail = "must not have leading or trailing whitespace";
                errs.push(invalid(
                    format!("spec.{key}[{i}].image"),
                    &c["image"],
                    detail,
                ));
            }
        }
    }

    let (old_deadline, deadline) = (&os["activeDeadlineSeconds"], &ns["activeDeadlineSeconds"]);
    let field = "spec.activeDeadlineSeconds";
    if let Some(n) = deadline.as_i64() {
        let refused = match old_deadline.as_i64() {
            _ if !(0..=i64::from(i32::MAX)).contains(&n) => {
                "must be between 0 and 2147483647, inclusive"
            }
            Some(o) if o < n => "must be less than or equal to previous value",
            _ => "",
        };
        if !refused.is_empty() {
            errs.push(invalid(field, deadline, refused));
            return errs;
        }
    } else if !old_deadline.is_null() {
        let detail = "must not update from a positive integer to nil value";
        errs.push(invalid(field, &Value::Null, detail));
    }

    // validateOnlyAddedTolerations: every old toleration is still there (tolerationSeconds aside).
    let without_seconds = |t: &Value| {
        let mut t = t.clone();
        put(&mut t, "tolerationSeconds", &Value::Null);
        t
    };
    let kept: Vec<Value> = arr(&ns["tolerations"])
        .iter()
        .map(without_seconds)
        .collect();
    let dropped = |o: &Value| !kept.iter().any(|n| sem_eq(&without_seconds(o), n));
    if arr(&os["tolerations"]).iter().any(dropped) {
        let detail = "existing toleration can not be modified except its tolerationSeconds";
        errs.push(forbidden("spec.tolerations", detail));
    }

    // validateOnlyDeletedSchedulingGates
    let old_gates: Vec<&Value> = arr(&os["schedulingGates"])
        .iter()
        .map(|g| &g["name"])
        .collect();
    for (i, gate) in arr(&ns["schedulingGates"]).iter().enumerate() {
        if !old_gates.contains(&&gate["name"]) {
            let name = gate["name"].as_str().unwrap_or("");
            errs.push(forbidden(
                format!("spec.schedulingGates[{i}].name"),
                format_args!("only deletion is allowed, but found new scheduling gate '{name}'"),
            ));
        }
    }

    if sem_eq(os, ns) {
        return errs;
    }
    // Munge the updatable fields back to their old values, then nothing else may differ.
    let mut munged = ns.clone();
    for key in ["containers", "initContainers"] {
        if let Some(list) = munged[key].as_array_mut() {
            for (i, c) in list.iter_mut().enumerate() {
                put(c, "image", &os[key][i]["image"]);
            }
        }
    }
    for key in ["activeDeadlineSeconds", "schedulingGates", "tolerations"] {
        put(&mut munged, key, &os[key]);
    }
    let grace = "terminationGracePeriodSeconds";
    if os[grace].as_i64().is_some_and(|g| g < 0) && munged[grace].as_i64() == Some(1) {
        put(&mut munged, grace, &os[grace]);
    }

    if !arr(&os["schedulingGates"]).is_empty() {
        if !sem_eq(&munged["nodeSelector"], &os["nodeSelector"]) {
            let (new_selector, old_selector) = (&munged["nodeSelector"], &os["nodeSelector"]);
            errs.extend(node_selector_mutation(new_selector, old_selector));
            put(&mut munged, "nodeSelector", &os["nodeSelector"]);
        }
        let old_na = &os["affinity"]["nodeAffinity"];
        let new_na = munged["affinity"]["nodeAffinity"].clone();
        if !sem_eq(old_na, &new_na) {
            errs.extend(node_affinity_mutation(&new_na, old_na));
            let new_affinity = &munged["affinity"];
            if new_affinity.is_null() {
                if !old_na.is_null() {
                    put(&mut munged, "affinity", &json!({"nodeAffinity": old_na}));
                }
            } else if os["affinity"].is_null()
                && new_affinity["podAffinity"].is_null()
                && new_affinity["podAntiAffinity"].is_null()
            {
                put(&mut munged, "affinity", &Value::Null);
            } else {
                put(&mut munged["affinity"], "nodeAffinity", old_na);
            }
        }
    }

    if !sem_eq(&munged, os) {
        let mut diff = Vec::new();
        diff_paths("spec", os, &munged, &mut diff);
        let detail = format!(
            "pod updates may not change fields other than {UPDATABLE}\n{}",
            diff.join("\n")
        );
        errs.push(forbidden("spec", detail));
    }
    errs
}

/// `validateNodeSelectorMutation`: existing entries may be neither changed nor removed.
fn node_selector_mutation(new: &Value, old: &Value) -> Option<FieldError> {
    let old = old.as_object()?;
    old.iter().any(|(k, v)| new.get(k) != Some(v)).then(|| {
        let detail = "only additions to spec.nodeSelector are allowed (no mutations or deletions)";
        invalid("spec.nodeSelector", new, detail)
    })
}

/// `validateNodeAffinityMutation`: with an old required node selector, the term count stays and
/// each term only gains requirements.
fn node_affinity_mutation(new: &Value, old: &Value) -> Vec<FieldError> {
    let req = "requiredDuringSchedulingIgnoredDuringExecution";
    if old[req].is_null() {
        return Vec::new();
    }
    let path = format!("spec.affinity.nodeAffinity.{req}.nodeSelectorTerms");
    let old_terms = arr(&old[req]["nodeSelectorTerms"]);
    let new_terms = arr(&new[req]["nodeSelectorTerms"]);
    if !old_terms.is_empty() && old_terms.len() != new_terms.len() {
        let detail = "no additions/deletions to non-empty NodeSelectorTerms list are allowed";
        return vec![invalid(path, &Value::Array(new_terms.to_vec()), detail)];
    }
    let detail = "only additions are allowed (no mutations or deletions)";
    (0..old_terms.len())
        .filter(|&i| !term_has_only_additions(&new_terms[i], &old_terms[i]))
        .map(|i| invalid(format!("{path}[{i}]"), &new_terms[i], detail))
        .collect()
}

/// `validateNodeSelectorTermHasOnlyAdditions`
fn term_has_only_additions(new: &Value, old: &Value) -> bool {
    let lists = ["matchExpressions", "matchFields"];
    if lists.iter().all(|k| arr(&old[k]).is_empty()) {
        return lists.iter().all(|k| arr(&new[k]).is_empty());
    }
    lists.iter().all(|k| {
        let (o, n) = (arr(&old[k]), arr(&new[k]));
        n.len() >= o.len() && n.iter().zip(o).all(|(n, o)| sem_eq(n, o))
    })
}

/// The paths where `a` and `b` differ, one `path: old -> new` line each (Go prints a cmp.Diff).
fn diff_paths(path: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
    if sem_eq(a, b) {
        return;
    }
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let (va, vb) = (&a[k.as_str()], &b[k.as_str()]);
                diff_paths(&format!("{path}.{k}"), va, vb, out);
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (va, vb)) in x.iter().zip(y).enumerate() {
                diff_paths(&format!("{path}[{i}]"), va, vb, out);
            }
        }
        _ => out.push(format!("  {path}: {a} -> {b}")),
    }
}

#[cfg(test)]
#[rustfmt::skip] // one case a line
mod tests {
    use super::*;

    const NA: &str = "/spec/affinity/nodeAffinity";
    const TERMS: &str = concat!("/spec/affinity/nodeAffinity/",
        "requiredDuringSchedulingIgnoredDuringExecution/nodeSelectorTerms");
    const PATH: &str = concat!("spec.affinity.nodeAffinity.",
        "requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms");
    const CHANGED: &str = "pod updates may not change fields other than";

    fn pod(gates: Value) -> Value {
        json!({"metadata": {"name": "p", "labels": {"a": "1"}}, "spec": {
            "containers": [{"name": "c", "image": "nginx:1"}],
            "schedulingGates": gates,
            "nodeSelector": {"kubernetes.io/os": "linux"},
            "tolerations": [{"key": "k", "operator": "Exists", "effect": "NoExecute",
                "tolerationSeconds": 30}],
            "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": [
                    {"key": "a", "operator": "In", "values": ["x"]}]}]}}}
        }})
    }

    fn gated() -> Value { pod(json!([{"name": "a"}, {"name": "b"}])) }

    fn ungated() -> Value { pod(json!([])) }

    /// `old` with the value at JSON pointer `at` set (removed when null).
    fn set(old: &Value, at: &str, value: Value) -> Value {
        let mut new = old.clone();
        let (parent, key) = at.rsplit_once('/').unwrap();
        let key = key.replace("~1", "/").replace("~0", "~");
        put(new.pointer_mut(parent).unwrap(), &key, &value);
        new
    }

    /// Setting `at` to `value` in `old` is accepted.
    fn ok(old: &Value, at: &str, value: Value) {
        let errs = validate_pod_update(old, &set(old, at, value));
        assert!(errs.is_empty(), "{at}: {errs:?}");
    }

    /// Setting `at` to `value` in `old` is refused for `field` with `text`; returns the errors.
    fn no(old: &Value, at: &str, value: Value, field: &str, text: &str) -> Vec<FieldError> {
        let errs = validate_pod_update(old, &set(old, at, value));
        let found = errs.iter().any(|e| e.field == field && e.body.contains(text));
        assert!(found, "{at}: expected {field}: ...{text}... in {errs:?}");
        errs
    }

    #[test]
    fn scheduling_gates_may_only_be_removed() {
        ok(&gated(), "/spec/schedulingGates", json!([{"name": "b"}]));
        ok(&gated(), "/spec/schedulingGates", Value::Null);
        no(&gated(), "/spec/schedulingGates", json!([{"name": "a"}, {"name": "c"}]),
            "spec.schedulingGates[1].name",
            "only deletion is allowed, but found new scheduling gate 'c'");
        let errs = no(&ungated(), "/spec/schedulingGates", json!([{"name": "a"}]),
            "spec.schedulingGates[0].name", "found new scheduling gate 'a'");
        assert_eq!(invalid_message("Pod", "p", &errs), "Pod \"p\" is invalid: \
            spec.schedulingGates[0].name: Forbidden: \
            only deletion is allowed, but found new scheduling gate 'a'");
    }

    #[test]
    fn gated_node_selector_takes_only_additions() {
        ok(&gated(), "/spec/nodeSelector/gpu", json!("nvidia"));
        no(&gated(), "/spec/nodeSelector/kubernetes.io~1os", json!("windows"),
            "spec.nodeSelector",
            "only additions to spec.nodeSelector are allowed (no mutations or deletions)");
        no(&gated(), "/spec/nodeSelector", Value::Null, "spec.nodeSelector", "only additions");
    }

    #[test]
    fn gated_required_node_affinity_terms_only_grow() {
        let extra = json!({"key": "b", "operator": "Exists"});
        let field = json!([{"key": "metadata.name", "operator": "In", "values": ["n"]}]);
        let mut new = set(&gated(), &format!("{TERMS}/0/matchFields"), field);
        let exprs = new.pointer_mut(&format!("{TERMS}/0/matchExpressions")).unwrap();
        exprs.as_array_mut().unwrap().push(extra.clone());
        // Preferred terms may change freely.
        let preferred = json!([{"weight": 1, "preference": {"matchExpressions": [extra]}}]);
        ok(&new, &format!("{NA}/preferredDuringSchedulingIgnoredDuringExecution"), preferred);
        assert_eq!(validate_pod_update(&gated(), &new), []);

        let term = gated().pointer(&format!("{TERMS}/0")).unwrap().clone();
        let count = "no additions/deletions to non-empty NodeSelectorTerms list are allowed";
        no(&gated(), TERMS, json!([term, term]), PATH, count);
        no(&gated(), "/spec/affinity", Value::Null, PATH, count);
        no(&gated(), &format!("{TERMS}/0/matchExpressions/0/values"), json!(["y"]),
            &format!("{PATH}[0]"), "only additions are allowed (no mutations or deletions)");
        // An old term with neither list may not gain any.
        no(&set(&gated(), TERMS, json!([{}])), TERMS, json!([{"matchExpressions": [extra]}]),
            &format!("{PATH}[0]"), "only additions are allowed");
        // Without an old required node selector anything goes.
        ok(&set(&gated(), "/spec/affinity", Value::Null), "/spec/affinity", json!({"nodeAffinity":
            {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{}, {}]}}}));
    }

    #[test]
    fn ungated_pod_node_selector_and_affinity_are_immutable() {
        ok(&ungated(), "/metadata/labels/b", json!("2"));
        no(&ungated(), "/spec/nodeSelector/gpu", json!("x"), "spec", CHANGED);
        let field = json!([{"key": "metadata.name", "operator": "In", "values": ["n"]}]);
        no(&ungated(), &format!("{TERMS}/0/matchFields"), field, "spec", CHANGED);
    }

    #[test]
    fn tolerations_may_only_be_added() {
        let more = json!({"key": "other", "operator": "Exists"});
        let old = ungated();
        ok(&old, "/spec/tolerations", json!([old["spec"]["tolerations"][0], more]));
        ok(&old, "/spec/tolerations/0/tolerationSeconds", json!(10));
        let modified = "existing toleration can not be modified except its tolerationSeconds";
        no(&old, "/spec/tolerations", json!([more]), "spec.tolerations", modified);
        no(&old, "/spec/tolerations/0/effect", json!("NoSchedule"), "spec.tolerations", modified);
    }

    #[test]
    fn other_spec_changes_are_refused_but_images_and_deadline_are_not() {
        let mut new = set(&gated(), "/spec/containers/0/image", json!("nginx:2"));
        new = set(&new, "/spec/activeDeadlineSeconds", json!(30));
        new = set(&new, "/spec/schedulingGates", json!([]));
        new = set(&new, "/metadata/annotations", json!({"x": "y"}));
        assert_eq!(validate_pod_update(&gated(), &new), []);

        let errs = no(&gated(), "/spec/nodeName", json!("node-1"), "spec",
            "may not change fields other than `spec.containers[*].image`");
        assert!(errs[0].body.ends_with("\n  spec.nodeName: null -> \"node-1\""), "{errs:?}");
        no(&gated(), "/spec/containers/0/command", json!(["sh"]), "spec", CHANGED);
        no(&gated(), "/spec/containers", json!([]), "spec.containers",
            "pod updates may not add or remove containers");
        no(&gated(), "/spec/containers/0/image", json!(""),
            "spec.containers[0].image", "Required value");
        let deadline = set(&gated(), "/spec/activeDeadlineSeconds", json!(30));
        no(&deadline, "/spec/activeDeadlineSeconds", json!(60), "spec.activeDeadlineSeconds",
            "must be less than or equal to previous value");
    }
}
