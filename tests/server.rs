//! End-to-end tests of `archgate serve`: the real binary, real TLS, HTTP/2 and HTTP/1.1, and the
//! AdmissionReviews a kube-apiserver v1.24.2 sent (tests/fixtures/admission-reviews).
#![allow(clippy::unwrap_used)]

mod common;

use common::{
    apply_patch, assert_allowed_untouched, assert_envelope, decoded_patch, fixture, full, metric,
    write_certs, write_file, ChannelBody, Client, Proto, ServeOptions, Server,
};
use hyper::body::Bytes;
use hyper::{Method, StatusCode};
use serde_json::{json, Value};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const MUTATE: &str = "/mutate?timeout=5s";
const VALIDATE: &str = "/validate?timeout=5s";
const ARCH_ANNOTATION: &str = "archgate.io/architectures";

/// A policy like the homelab's, without rules.
const PLAIN_POLICY: &str = r#"[cluster]
platforms = ["linux/amd64", "linux/arm64"]

[defaults]
mode = "mutate"
unknown_images = "warn"
"#;

#[path = "server/bad_requests.rs"]
mod bad_requests;
#[path = "server/certificates.rs"]
mod certificates;
#[path = "server/metrics.rs"]
mod metrics;
#[path = "server/placement.rs"]
mod placement;
#[path = "server/shutdown.rs"]
mod shutdown;
#[path = "server/startup.rs"]
mod startup;
