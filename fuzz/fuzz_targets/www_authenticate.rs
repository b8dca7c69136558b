//! The `WWW-Authenticate` challenge of a registry's 401 (`registry::auth::parse_challenge`).
//!
//! Structured input (`arbitrary`): either raw header text, or a challenge built from parts.
//!
//! Asserts:
//! 1. Raw text: no panic; the answer does not change with surrounding whitespace or the case of
//!    the scheme (RFC 7235: schemes are case-insensitive); a `Basic` scheme always answers Basic.
//! 2. A Bearer challenge written as RFC 7235 says (`realm`, `service`, `scope` and other
//!    parameters in any order and case, quoted-string values with `\"` and `\\` escapes, commas
//!    and spaces, optional whitespace around `,`) parses back to its realm, service and scope
//!    (compared trimmed: the parser trims values, which no registry's URL or scope minds).
#![no_main]

use arbitrary::Arbitrary;
use archgate::registry::auth::{parse_challenge, Challenge};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
enum Input {
    Raw(String),
    Built(Built),
}

#[derive(Debug, Arbitrary)]
struct Built {
    scheme_case: u8,
    realm: String,
    service: Option<String>,
    scope: Option<String>,
    extra: Vec<(String, String)>,
    /// Which params are quoted (bit per position) when their value allows a token.
    unquoted: u8,
    rotate: u8,
    spaces: u8,
    key_case: u8,
}

fn quoted(v: &str) -> String {
    let mut out = String::from("\"");
    for c in v.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

fn is_tchar(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

fn recase(s: &str, bits: u8) -> String {
    s.chars()
        .enumerate()
        .map(|(i, c)| {
            if bits >> (i % 8) & 1 == 1 {
                c.to_ascii_uppercase()
            } else {
                c
            }
        })
        .collect()
}

fn check_raw(s: &str) {
    let got = parse_challenge(s);
    assert_eq!(
        parse_challenge(&format!(" \t{s} \t")),
        got,
        "whitespace around {s:?}"
    );
    let trimmed = s.trim();
    if let Some((scheme, rest)) = trimmed.split_once(' ') {
        if scheme.is_ascii() {
            for scheme in [scheme.to_ascii_uppercase(), scheme.to_ascii_lowercase()] {
                assert_eq!(
                    parse_challenge(&format!("{scheme} {rest}")),
                    got,
                    "scheme case {s:?}"
                );
            }
            if scheme.eq_ignore_ascii_case("basic") {
                assert_eq!(got, Some(Challenge::Basic));
            }
        }
    }
}

fn check_built(b: &Built) {
    let mut params: Vec<(String, String)> = vec![("realm".into(), b.realm.clone())];
    if let Some(s) = &b.service {
        params.push(("service".into(), s.clone()));
    }
    if let Some(s) = &b.scope {
        params.push(("scope".into(), s.clone()));
    }
    for (k, v) in b.extra.iter().take(4) {
        let known = ["realm", "service", "scope"]
            .iter()
            .any(|n| k.eq_ignore_ascii_case(n));
        if !k.is_empty() && k.chars().all(is_tchar) && !known {
            params.push((k.clone(), v.clone()));
        }
    }
    let n = params.len();
    params.rotate_left(usize::from(b.rotate) % n);
    let written: Vec<String> = params
        .iter()
        .enumerate()
        .map(|(i, (k, v))| {
            let token = !v.is_empty() && v.chars().all(is_tchar);
            let value = if token && b.unquoted >> (i % 8) & 1 == 1 {
                v.clone()
            } else {
                quoted(v)
            };
            format!("{}={value}", recase(k, b.key_case))
        })
        .collect();
    let sep = match b.spaces % 4 {
        0 => ",",
        1 => ", ",
        2 => " , ",
        _ => ",\t",
    };
    let scheme = recase("Bearer", b.scheme_case);
    let header = format!("{scheme} {}", written.join(sep));
    let want = Challenge::Bearer {
        realm: b.realm.trim().to_string(),
        service: b.service.as_ref().map(|s| s.trim().to_string()),
        scope: b.scope.as_ref().map(|s| s.trim().to_string()),
    };
    assert_eq!(parse_challenge(&header), Some(want), "{header:?}");
}

fuzz_target!(|input: Input| match input {
    Input::Raw(s) => check_raw(&s),
    Input::Built(b) => check_built(&b),
});
