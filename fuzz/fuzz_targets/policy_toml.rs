//! Policy loading (`Policy::from_toml`) and `archgate lint` over arbitrary TOML text.
//!
//! Asserts, for any UTF-8 text:
//! 1. Loading does not panic; an `Invalid` error's line and column point inside the text.
//! 2. A policy that loads is valid TOML.
//! 3. `lint` does not panic, on any text; every diagnostic's span is inside the text, ordered,
//!    and on char boundaries (renderers slice the source with it).
//! 4. When the policy loads, lint reports no `syntax`, `invalid` or `schema` error: lint and
//!    loading agree on what a loadable policy is.
//! 5. Rendering the diagnostics (text, JSON, SARIF, GitHub) does not panic, and the JSON and
//!    SARIF renderings name each diagnostic.
#![no_main]

use archgate::cli::lint::{github, human, json_report, sarif, FileFindings};
use archgate::policy::lint::lint;
use archgate::policy::{Policy, PolicyError};
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(source) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("fuzz/policy.toml");
    let loaded = Policy::from_toml(source, path);
    match &loaded {
        Ok(_) => {
            if let Err(e) = source.parse::<toml::Table>() {
                panic!("a policy loaded from text that is not TOML: {e}");
            }
        }
        Err(PolicyError::Invalid { line, column, .. }) => {
            let lines = source.split('\n').count();
            assert!(*line >= 1 && *line <= lines, "line {line} of {lines}");
            let text = source.split('\n').nth(line - 1).unwrap_or("");
            assert!(
                *column >= 1 && *column <= text.len() + 1,
                "column {column} of a {}-byte line",
                text.len()
            );
        }
        Err(_) => {}
    }

    let diagnostics = lint(source, path);
    for d in &diagnostics {
        assert!(
            d.span.start <= d.span.end && d.span.end <= source.len(),
            "span {:?} outside the {}-byte text ({})",
            d.span,
            source.len(),
            d.code
        );
        assert!(
            source.is_char_boundary(d.span.start) && source.is_char_boundary(d.span.end),
            "span {:?} of {} splits a character",
            d.span,
            d.code
        );
        if loaded.is_ok() {
            assert!(
                !matches!(d.code, "syntax" | "invalid" | "schema"),
                "the policy loads, yet lint says {}: {}",
                d.code,
                d.message
            );
        }
    }
    if loaded.is_err() {
        assert!(
            !diagnostics.is_empty(),
            "loading fails ({}), lint finds nothing",
            loaded.err().map(|e| e.to_string()).unwrap_or_default()
        );
    }

    let files = [FileFindings {
        path: "fuzz/policy.toml".into(),
        source: source.to_string(),
        diagnostics,
    }];
    let _ = human(&files, false);
    let _ = github(&files);
    let json = json_report(&files);
    assert_eq!(
        json.as_array().map(Vec::len),
        Some(files[0].diagnostics.len())
    );
    let sarif = sarif(&files);
    assert_eq!(
        sarif["runs"][0]["results"].as_array().map(Vec::len),
        Some(files[0].diagnostics.len())
    );
});
