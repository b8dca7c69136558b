//! Label and field selectors, and what a selective watcher sees of a change.

use super::store::Change;
use super::validation::put;
use serde_json::{json, Value};
use std::collections::HashMap;

/// One requirement of a label or field selector.
#[derive(Debug, Clone)]
pub enum Req {
    Eq(String, String),
    Ne(String, String),
    Exists(String),
    Absent(String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
}

pub fn parse_selector(text: &str) -> Vec<Req> {
    let (mut terms, mut depth, mut start) = (Vec::new(), 0, 0);
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                terms.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    terms.push(&text[start..]);
    let set = |s: &str| -> Vec<String> {
        s.trim()
            .trim_start_matches('(')
            .trim_end_matches(')')
            .split(',')
            .map(|v| v.trim().to_string())
            .collect()
    };
    terms
        .into_iter()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| {
            let kv = |(k, v): (&str, &str)| (k.trim().to_string(), v.trim().to_string());
            if let Some(k) = t.strip_prefix('!') {
                Req::Absent(k.trim().to_string())
            } else if let Some((k, v)) = t.split_once("!=").map(kv) {
                Req::Ne(k, v)
            } else if let Some((k, v)) = t.split_once("==").or_else(|| t.split_once('=')).map(kv) {
                Req::Eq(k, v)
            } else if let Some((k, v)) = t.split_once(" notin ") {
                Req::NotIn(k.trim().to_string(), set(v))
            } else if let Some((k, v)) = t.split_once(" in ") {
                Req::In(k.trim().to_string(), set(v))
            } else {
                Req::Exists(t.to_string())
            }
        })
        .collect()
}

pub fn req_matches(req: &Req, get: impl Fn(&str) -> Option<String>) -> bool {
    match req {
        Req::Eq(k, v) => get(k).as_ref() == Some(v),
        Req::Ne(k, v) => get(k).as_ref() != Some(v),
        Req::Exists(k) => get(k).is_some(),
        Req::Absent(k) => get(k).is_none(),
        Req::In(k, vs) => get(k).is_some_and(|x| vs.contains(&x)),
        Req::NotIn(k, vs) => get(k).is_none_or(|x| !vs.contains(&x)),
    }
}

/// `labelSelector` and `fieldSelector` of a LIST or WATCH.
#[derive(Debug, Default, Clone)]
pub struct Selector {
    labels: Vec<Req>,
    fields: Vec<Req>,
}

impl Selector {
    pub fn from_params(params: &HashMap<String, String>) -> Selector {
        let get = |k: &str| params.get(k).map(|s| parse_selector(s)).unwrap_or_default();
        Selector {
            labels: get("labelSelector"),
            fields: get("fieldSelector"),
        }
    }

    pub fn matches(&self, obj: &Value) -> bool {
        let label = |k: &str| obj["metadata"]["labels"][k].as_str().map(str::to_string);
        // A field that is not set compares as "" (`spec.nodeName=` selects unscheduled pods).
        let field = |path: &str| {
            let v = path.split('.').fold(obj, |v, k| &v[k]);
            Some(match v {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            })
        };
        self.labels.iter().all(|r| req_matches(r, label))
            && self.fields.iter().all(|r| req_matches(r, field))
    }
}

/// The watch event `change` is for a watcher with `sel`, if any: an object that stops matching
/// is DELETED for it (with its last matching content), one that starts matching is ADDED.
pub fn watch_event(change: &Change, sel: &Selector) -> Option<Value> {
    let was = change.old.as_ref().is_some_and(|o| sel.matches(o));
    let is = !change.deleted && sel.matches(&change.new);
    let (kind, mut object) = match (was, is) {
        (true, true) => ("MODIFIED", change.new.clone()),
        (false, true) => ("ADDED", change.new.clone()),
        (true, false) => ("DELETED", change.old.clone().unwrap()),
        (false, false) => return None,
    };
    put(
        &mut object["metadata"],
        "resourceVersion",
        &json!(change.version.to_string()),
    );
    Some(json!({"type": kind, "object": object}))
}
