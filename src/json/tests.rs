#![allow(clippy::unwrap_used)]
//! The deserializer against serde_json: the same values from the same texts, the same refusals.

use super::*;
use serde_json::Value;
use std::collections::BTreeMap;

/// Every admission review fixture decodes to the same `Value` as serde_json decodes it.
#[test]
fn fixtures_decode_as_serde_json_decodes_them() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut checked = 0;
    for sub in ["admission-reviews", "admission-reviews/raw"] {
        for entry in std::fs::read_dir(dir.join(sub)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let ours: Value = from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let theirs: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(ours, theirs, "{}", path.display());
            checked += 1;
        }
    }
    assert!(checked > 40, "only {checked} fixtures");
}

#[test]
fn scalars_strings_and_numbers_match_serde_json() {
    let texts = [
        r#"{"s":"a\"b\\c\/d\b\f\n\r\t\u0041\u00e9\ud83d\ude00","e":"","u":18446744073709551615,"i":-9223372036854775808,"big":18446744073709551616,"f":-1.5e-3,"z":0,"t":true,"n":null,"a":[[],{}]}"#,
        " [ 1 , 2.0 , -0 ] ",
        "\"\\u0000\"",
    ];
    for text in texts {
        let ours: Value = from_str(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        let theirs: Value = serde_json::from_str(text).unwrap();
        assert_eq!(ours, theirs, "{text}");
    }
}

#[test]
fn malformed_texts_are_refused_with_a_position() {
    let bad = [
        ("", "EOF while parsing a value at line 1 column 1"),
        ("{\"a\":1,}", "key must be a string at line 1 column 8"),
        ("[1,]", "expected value at line 1 column 4"),
        ("[1 2]", "expected `,` or `]` at line 1 column 4"),
        ("{\"a\" 1}", "expected `:` at line 1 column 6"),
        ("{\"a\":1} x", "trailing characters at line 1 column 9"),
        ("{\n  \"a\": tru\n}", "expected `true` at line 2 column 8"),
        ("\"abc", "EOF while parsing a string at line 1 column 5"),
        ("1e999", "number out of range at line 1 column 6"),
    ];
    for (text, want) in bad {
        let err = from_str::<Value>(text).unwrap_err();
        assert_eq!(err.to_string(), want, "{text:?}");
        assert!(serde_json::from_str::<Value>(text).is_err(), "{text:?}");
    }
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
struct Probe<'a> {
    name: String,
    #[serde(default)]
    count: u8,
    labels: Option<BTreeMap<String, String>>,
    #[serde(borrow)]
    raw: Option<RawJson<'a>>,
    kind: Option<Kind>,
}

#[derive(Debug, Deserialize, PartialEq)]
enum Kind {
    Pod,
    Node,
}

#[test]
fn structs_skip_unknown_members_and_keep_raw_text() {
    let text = r#"{"managedFields":[{"f:spec":{"f:containers":{"k:{\"name\":\"web\"}":{}}}}],
        "name":"web","count":3,"labels":{"app":"web"},"raw": {"a": [1, {"b": null}]} ,"kind":"Pod","extra":[true,false,null,-1.5]}"#;
    let probe: Probe = from_str(text).unwrap();
    assert_eq!(probe.name, "web");
    assert_eq!(probe.count, 3);
    assert_eq!(probe.labels.unwrap()["app"], "web");
    assert_eq!(probe.raw.unwrap().get(), r#"{"a": [1, {"b": null}]}"#);
    assert_eq!(probe.kind, Some(Kind::Pod));
}

#[test]
fn visitor_errors_name_the_field_and_the_place() {
    let err = from_str::<Probe>(r#"{"count":300,"name":"x"}"#).unwrap_err();
    assert!(
        err.to_string().starts_with("invalid value: integer `300`"),
        "{err}"
    );
    assert!(err.to_string().ends_with("at line 1 column 13"), "{err}");
    let err = from_str::<Probe>(r#"{"count":1}"#).unwrap_err();
    assert_eq!(err.to_string(), "missing field `name` at line 1 column 11");
    let err = from_str::<Probe>(r#"{"name":"x","kind":"Job"}"#).unwrap_err();
    assert!(err.to_string().contains("unknown variant `Job`"), "{err}");
}

#[test]
fn deep_nesting_is_refused_not_overflowed() {
    for open in ["[", "{\"a\":"] {
        let text = open.repeat(10_000);
        let err = from_str::<Value>(&text).unwrap_err();
        assert!(err.to_string().contains("recursion limit"), "{err}");
        let err = from_str::<serde::de::IgnoredAny>(&text).unwrap_err();
        assert!(err.to_string().contains("recursion limit"), "{err}");
    }
}

/// Every prefix and every single-byte corruption of a real review: never a panic, and accepted
/// exactly when serde_json accepts it.
#[test]
fn truncated_and_corrupted_reviews_agree_with_serde_json() {
    let text = include_str!("../../tests/fixtures/admission-reviews/pod-create-gpu-limit.json");
    let verdicts_agree = |t: &str| {
        let ours = from_str::<Value>(t).is_ok();
        let theirs = serde_json::from_str::<Value>(t).is_ok();
        assert_eq!(ours, theirs, "disagree on {t:?}");
    };
    for end in (0..text.len()).filter(|&i| text.is_char_boundary(i)) {
        verdicts_agree(&text[..end]);
    }
    for (i, _) in text.char_indices().step_by(7) {
        for replacement in ["\"", "{", "]", ",", ":", "\\", "x", "\u{1}", "9"] {
            let mut corrupted = text.to_string();
            corrupted.replace_range(
                i..i + text[i..].chars().next().map_or(1, char::len_utf8),
                replacement,
            );
            verdicts_agree(&corrupted);
        }
    }
}
