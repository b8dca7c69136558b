//! The fake API server's object store: paths, writes with the real server's answers, LISTs.

use super::select::Selector;
use super::validation::{self, put};
use super::{group, json_body, kind_of, qualified, Coll, Target};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};

/// A refused request, answered as a `Status`.
#[derive(Debug)]
pub struct Fail {
    pub code: StatusCode,
    pub reason: &'static str,
    pub message: String,
    pub details: Value,
}

impl Fail {
    pub fn new(code: StatusCode, reason: &'static str, message: String, details: Value) -> Fail {
        Fail {
            code,
            reason,
            message,
            details,
        }
    }

    pub fn of(
        t: &Target,
        name: &str,
        code: StatusCode,
        reason: &'static str,
        message: String,
    ) -> Fail {
        let mut details = json!({"name": name, "kind": t.coll.1});
        if !group(&t.coll).is_empty() {
            details["group"] = json!(group(&t.coll));
        }
        Fail::new(code, reason, message, details)
    }

    pub fn invalid(t: &Target, name: &str, message: String) -> Fail {
        let code = StatusCode::UNPROCESSABLE_ENTITY;
        Fail::of(t, name, code, "Invalid", message)
    }

    pub fn not_found(t: &Target, name: &str) -> Fail {
        let message = format!("{} {name:?} not found", qualified(&t.coll));
        Fail::of(t, name, StatusCode::NOT_FOUND, "NotFound", message)
    }

    pub fn conflict(t: &Target, name: &str) -> Fail {
        let message = format!(
            "Operation cannot be fulfilled on {} {name:?}: the object has been modified; \
             please apply your changes to the latest version and try again",
            qualified(&t.coll)
        );
        Fail::of(t, name, StatusCode::CONFLICT, "Conflict", message)
    }

    pub fn bad_request(message: String) -> Fail {
        Fail::new(StatusCode::BAD_REQUEST, "BadRequest", message, json!({}))
    }
}

impl IntoResponse for Fail {
    fn into_response(self) -> Response {
        let body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {},
            "status": "Failure", "message": self.message, "reason": self.reason,
            "details": self.details, "code": self.code.as_u16()});
        (self.code, json_body(&body)).into_response()
    }
}

/// One write, as watchers see it: `old` is the object before (the deleted one for DELETED).
pub struct Change {
    pub coll: Coll,
    pub ns: String,
    pub version: u64,
    pub deleted: bool,
    pub old: Option<Value>,
    pub new: Value,
}

#[derive(Default)]
pub struct Store {
    /// (collection, namespace, name) -> object
    pub objects: BTreeMap<(Coll, String, String), Value>,
    pub changes: Vec<Change>,
    pub version: u64,
    pub fail_patches: usize,
    pub serial: u64,
    /// Resources (plural) whose LISTs and WATCHes RBAC refuses.
    pub forbidden: Vec<String>,
    /// The most items one LIST page holds, whatever `limit` asks (a server may return fewer).
    pub max_page: Option<usize>,
}

/// Refuses a body that is not an object; gives one without metadata an empty one.
fn with_metadata(obj: &mut Value) -> Result<(), Fail> {
    let Some(map) = obj.as_object_mut() else {
        return Err(Fail::bad_request(format!("not a JSON object: {obj}")));
    };
    let meta = map.entry("metadata").or_insert_with(|| json!({}));
    if !meta.is_object() {
        *meta = json!({});
    }
    Ok(())
}

pub fn key(t: &Target, name: &str) -> (Coll, String, String) {
    (t.coll.clone(), t.ns.clone(), name.to_string())
}

impl Store {
    /// A pseudo-random number from a counter mixed with the clock (splitmix64).
    pub fn random(&mut self) -> u64 {
        self.serial += 1;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64;
        let mut z = nanos ^ self.serial.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn record(&mut self, t: &Target, deleted: bool, old: Option<Value>, new: Value) {
        let (coll, ns, version) = (t.coll.clone(), t.ns.clone(), self.version);
        self.changes.push(Change {
            coll,
            ns,
            version,
            deleted,
            old,
            new,
        });
    }

    pub fn create(&mut self, t: &Target, mut obj: Value) -> Result<Value, Fail> {
        with_metadata(&mut obj)?;
        let mut name = obj["metadata"]["name"].as_str().unwrap_or("").to_string();
        if let (true, Some(prefix)) = (name.is_empty(), obj["metadata"]["generateName"].as_str()) {
            // The real server's alphabet: no vowels, no look-alike digits.
            const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
            while name.is_empty() || self.objects.contains_key(&key(t, &name)) {
                let r = self.random();
                let suffix: String = (0..5)
                    .map(|i| ALPHABET[((r >> (i * 8)) % ALPHABET.len() as u64) as usize] as char)
                    .collect();
                name = format!("{prefix}{suffix}");
            }
        }
        let kind = kind_of(&t.coll.1).unwrap_or("Object");
        if name.is_empty() {
            let message = format!(
                "{kind} \"\" is invalid: metadata.name: Required value: \
                 name or generateName is required"
            );
            return Err(Fail::invalid(t, "", message));
        }
        if self.objects.contains_key(&key(t, &name)) {
            let message = format!("{} {name:?} already exists", qualified(&t.coll));
            return Err(Fail::of(
                t,
                &name,
                StatusCode::CONFLICT,
                "AlreadyExists",
                message,
            ));
        }
        let spec = &obj["spec"];
        let gated = !validation::sem_eq(&spec["schedulingGates"], &Value::Null);
        if t.coll.1 == "pods" && gated && spec["nodeName"].as_str().is_some_and(|n| !n.is_empty()) {
            let message = format!(
                "Pod {name:?} is invalid: spec.nodeName: Forbidden: \
                 cannot be set until all schedulingGates have been cleared"
            );
            return Err(Fail::invalid(t, &name, message));
        }
        self.version += 1;
        let (a, b) = (self.random(), self.random());
        let uid = format!(
            "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            b >> 52,
            b & 0xffff_ffff_ffff
        );
        let now = time::OffsetDateTime::now_utc();
        let created = format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            now.year(),
            now.month() as u8,
            now.day(),
            now.hour(),
            now.minute(),
            now.second()
        );
        let api_version = t
            .coll
            .0
            .trim_start_matches("/api/")
            .trim_start_matches("/apis/");
        put(&mut obj, "apiVersion", &json!(api_version));
        if obj["kind"].is_null() && kind != "Object" {
            put(&mut obj, "kind", &json!(kind));
        }
        let meta = &mut obj["metadata"];
        put(meta, "name", &json!(name));
        if !t.ns.is_empty() {
            put(meta, "namespace", &json!(t.ns));
        }
        put(meta, "uid", &json!(uid));
        put(meta, "creationTimestamp", &json!(created));
        put(meta, "resourceVersion", &json!(self.version.to_string()));
        self.objects.insert(key(t, &name), obj.clone());
        self.record(t, false, None, obj.clone());
        Ok(obj)
    }

    /// PUT: like the real registry, Leases and Events are created by a PUT (true: created), and a
    /// Lease is replaced only with a resourceVersion (`AllowUnconditionalUpdate` is false).
    pub fn replace(
        &mut self,
        t: &Target,
        name: &str,
        mut obj: Value,
    ) -> Result<(bool, Value), Fail> {
        with_metadata(&mut obj)?;
        let body_name = obj["metadata"]["name"].as_str().unwrap_or(name);
        if body_name != name {
            let message = format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            );
            return Err(Fail::bad_request(message));
        }
        let resource = t.coll.1.as_str();
        if !self.objects.contains_key(&key(t, name)) && ["leases", "events"].contains(&resource) {
            put(&mut obj["metadata"], "name", &json!(name));
            put(&mut obj["metadata"], "resourceVersion", &Value::Null);
            return self.create(t, obj).map(|created| (true, created));
        }
        let version = obj["metadata"]["resourceVersion"].as_str().unwrap_or("");
        if resource == "leases" && version.is_empty() && self.objects.contains_key(&key(t, name)) {
            let message = format!(
                "{} {name:?} is invalid: metadata.resourceVersion: Invalid value: 0x0: \
                 must be specified for an update",
                qualified(&t.coll)
            );
            return Err(Fail::invalid(t, name, message));
        }
        self.update(t, name, obj).map(|updated| (false, updated))
    }

    /// The end of every PUT and PATCH: `new` replaces the stored object.
    pub fn update(&mut self, t: &Target, name: &str, mut new: Value) -> Result<Value, Fail> {
        with_metadata(&mut new)?;
        let old = self
            .objects
            .get(&key(t, name))
            .ok_or_else(|| Fail::not_found(t, name))?
            .clone();
        let old_version = &old["metadata"]["resourceVersion"];
        match new["metadata"]["resourceVersion"].as_str() {
            Some(v) if !v.is_empty() && Some(v) != old_version.as_str() => {
                return Err(Fail::conflict(t, name))
            }
            _ => {}
        }
        for k in [
            "name",
            "namespace",
            "uid",
            "creationTimestamp",
            "resourceVersion",
        ] {
            put(&mut new["metadata"], k, &old["metadata"][k]);
        }
        if t.sub.as_deref() == Some("status") {
            let status = new["status"].take();
            new = old.clone();
            put(&mut new, "status", &status);
        } else if t.coll.1 == "pods" {
            // A Pod's status is written only through /status.
            put(&mut new, "status", &old["status"]);
            let errors = validation::validate_pod_update(&old, &new);
            if !errors.is_empty() {
                let message = validation::invalid_message("Pod", name, &errors);
                let causes: Vec<Value> = errors
                    .iter()
                    .map(|e| json!({"reason": e.reason, "message": e.body, "field": e.field}))
                    .collect();
                let details = json!({"name": name, "kind": "Pod", "causes": causes});
                return Err(Fail::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "Invalid",
                    message,
                    details,
                ));
            }
        }
        if new == old {
            return Ok(old); // a no-op write keeps the resourceVersion and tells no watcher
        }
        self.version += 1;
        put(
            &mut new["metadata"],
            "resourceVersion",
            &json!(self.version.to_string()),
        );
        self.objects.insert(key(t, name), new.clone());
        self.record(t, false, Some(old), new.clone());
        Ok(new)
    }

    pub fn patch(
        &mut self,
        t: &Target,
        name: &str,
        content_type: &str,
        body: &[u8],
    ) -> Result<Value, Fail> {
        if t.coll.1 == "pods" && self.fail_patches > 0 {
            self.fail_patches -= 1;
            return Err(Fail::conflict(t, name));
        }
        let mut doc = self
            .objects
            .get(&key(t, name))
            .ok_or_else(|| Fail::not_found(t, name))?
            .clone();
        let patch: Value =
            serde_json::from_slice(body).map_err(|e| Fail::bad_request(e.to_string()))?;
        match content_type.split(';').next().unwrap_or("").trim() {
            "application/json-patch+json" => {
                let ops: json_patch::Patch =
                    serde_json::from_value(patch).map_err(|e| Fail::bad_request(e.to_string()))?;
                json_patch::patch(&mut doc, &ops).map_err(|e| {
                    // apiserver's jsonPatcher: NewGenericServerResponse(422, ...) with the cause.
                    let message = "the server rejected our request due to an error in our request";
                    let cause =
                        json!({"reason": "UnexpectedServerResponse", "message": e.to_string()});
                    let details = json!({"causes": [cause]});
                    Fail::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "Invalid",
                        message.into(),
                        details,
                    )
                })?;
            }
            "application/merge-patch+json" | "application/strategic-merge-patch+json" => {
                json_patch::merge(&mut doc, &patch)
            }
            other => {
                let message = format!(
                    "the body of the request was in an unknown format - accepted media types \
                     include: application/json-patch+json, application/merge-patch+json, \
                     application/strategic-merge-patch+json (got {other:?})"
                );
                return Err(Fail::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "UnsupportedMediaType",
                    message,
                    json!({}),
                ));
            }
        }
        self.update(t, name, doc)
    }

    pub fn delete(&mut self, t: &Target, name: &str) -> Result<Value, Fail> {
        let mut obj = self
            .objects
            .remove(&key(t, name))
            .ok_or_else(|| Fail::not_found(t, name))?;
        self.version += 1;
        put(
            &mut obj["metadata"],
            "resourceVersion",
            &json!(self.version.to_string()),
        );
        self.record(t, true, Some(obj.clone()), obj.clone());
        Ok(obj)
    }

    pub fn items<'a>(
        &'a self,
        t: &'a Target,
        sel: &'a Selector,
    ) -> impl Iterator<Item = &'a Value> + 'a {
        self.objects
            .iter()
            .filter(move |((coll, ns, _), _)| *coll == t.coll && (t.ns.is_empty() || *ns == t.ns))
            .map(|(_, v)| v)
            .filter(move |v| sel.matches(v))
    }

    pub fn list(&self, t: &Target, sel: &Selector, params: &HashMap<String, String>) -> Value {
        let all: Vec<&Value> = self.items(t, sel).collect();
        let from: usize = params
            .get("continue")
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let limit = params
            .get("limit")
            .and_then(|l| l.parse().ok())
            .filter(|&l: &usize| l > 0);
        let limit = match (limit, self.max_page) {
            (Some(l), Some(m)) => Some(l.min(m)),
            (l, m) => l.or(m),
        };
        let to = limit.map_or(all.len(), |l| from.saturating_add(l).min(all.len()));
        let items: Vec<&Value> = all.get(from..to).unwrap_or(&[]).to_vec();
        let mut metadata = json!({"resourceVersion": self.version.to_string()});
        if to < all.len() {
            metadata["continue"] = json!(to.to_string());
            metadata["remainingItemCount"] = json!(all.len() - to);
        }
        let kind = kind_of(&t.coll.1).map_or("List".to_string(), |k| format!("{k}List"));
        let api_version = t
            .coll
            .0
            .trim_start_matches("/api/")
            .trim_start_matches("/apis/");
        json!({"kind": kind, "apiVersion": api_version, "metadata": metadata, "items": items})
    }
}
