//! Image references: what parses, how it normalises, and what is refused with which message.

use super::*;

#[macro_use]
#[path = "reference_cases.rs"]
mod cases;
use cases::{INVALID, VALID};

#[test]
fn valid_references_normalise_like_distribution() {
    for &(input, registry, repository, tag, digest, canonical) in VALID {
        let parsed =
            ImageRef::parse(input).unwrap_or_else(|e| panic!("{input:?} should parse, got {e}"));
        assert_eq!(parsed.registry, registry, "registry of {input:?}");
        assert_eq!(parsed.repository, repository, "repository of {input:?}");
        assert_eq!(parsed.tag.as_deref(), tag, "tag of {input:?}");
        assert_eq!(parsed.digest.as_deref(), digest, "digest of {input:?}");
        assert_eq!(parsed.canonical(), canonical, "canonical of {input:?}");
        assert_eq!(parsed.to_string(), canonical, "Display of {input:?}");
    }
}

#[test]
fn canonical_form_is_a_fixed_point() {
    for &(input, ..) in VALID {
        let Ok(first) = ImageRef::parse(input) else {
            panic!("{input:?} should parse");
        };
        let again = ImageRef::parse(&first.canonical());
        assert_eq!(
            again.as_ref(),
            Ok(&first),
            "re-parsing canonical of {input:?}"
        );
    }
}

#[test]
fn invalid_references_are_rejected_with_the_right_error() {
    let mismatches: Vec<String> = INVALID
        .iter()
        .filter_map(|&(input, ctor)| {
            let got = ImageRef::parse(input);
            let want = Err(ctor(input.to_owned()));
            (got != want).then(|| format!("{input:?}: got {got:?}, want {want:?}"))
        })
        .collect();
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
    assert_eq!(ImageRef::parse(""), Err(ReferenceError::Empty));
}

#[test]
fn table_sizes_cover_the_ported_suites() {
    assert!(VALID.len() + INVALID.len() >= 60);
}

#[test]
fn repository_length_limit_matches_distribution() {
    // reference_test.go: 128 "a/" plus "a" is too long.
    let too_long = format!("{}a:tag", "a/".repeat(128));
    assert_eq!(
        ImageRef::parse(&too_long),
        Err(ReferenceError::TooLong(too_long.clone()))
    );

    // Exactly 255 characters of path is still fine; the tag does not count.
    let at_limit = format!("{}a:tag-puts-this-over-max", "a/".repeat(127));
    let parsed = ImageRef::parse(&at_limit);
    let Ok(parsed) = parsed else {
        panic!("{at_limit:?} should parse: {parsed:?}");
    };
    assert_eq!(parsed.registry, "docker.io");
    assert_eq!(parsed.repository.len(), 255);
    assert_eq!(parsed.tag.as_deref(), Some("tag-puts-this-over-max"));

    // The "library/" prefix counts, as in distribution.
    let single = "a".repeat(250);
    assert_eq!(
        ImageRef::parse(&single),
        Err(ReferenceError::TooLong(single.clone()))
    );
    assert!(ImageRef::parse(&"a".repeat(247)).is_ok());
}

#[test]
fn tag_length_limit() {
    let ok = format!("nginx:{}", "t".repeat(128));
    assert!(ImageRef::parse(&ok).is_ok());
    let too_long = format!("nginx:{}", "t".repeat(129));
    assert_eq!(
        ImageRef::parse(&too_long),
        Err(ReferenceError::InvalidTag(too_long.clone()))
    );
}

#[test]
fn registry_grammar_matches_domain_regexp() {
    // regexp_test.go TestDomainRegexp.
    let cases = [
        ("test.com", true),
        ("test.com:10304", true),
        ("test.com:http", false),
        ("localhost", true),
        ("localhost:8080", true),
        ("a", true),
        ("a.b", true),
        ("ab.cd.com", true),
        ("a-b.com", true),
        ("-ab.com", false),
        ("ab-.com", false),
        ("ab.c-om", true),
        ("ab.-com", false),
        ("ab.com-", false),
        ("0101.com", true),
        ("001a.com", true),
        ("b.gbc.io:443", true),
        ("b.gbc.io", true),
        ("xn--n3h.com", true),
        ("Asdf.com", true),
        ("192.168.1.1:75050", true),
        ("192.168.1.1:750050", true),
        ("[fd00:1:2::3]:75050", true),
        ("[fd00:1:2::3]75050", false),
        ("[fd00:1:2::3]::75050", false),
        ("[fd00:1:2::3%eth0]:75050", false),
        ("[fd00123123123]:75050", true),
        ("[2001:0db8:85a3:0000:0000:8a2e:0370:7334]:75050", true),
        ("[2001:0db8:85a3:0000:0000:8a2e:0370:7334]:750505", true),
        ("fd00:1:2::3:75050", false),
        ("", false),
        ("a..b", false),
        ("[]", false),
    ];
    for (input, expected) in cases {
        assert_eq!(is_valid_registry(input), expected, "registry {input:?}");
    }
}

#[test]
fn hex_identifier_rule_matches_identifier_regexp() {
    // regexp_test.go TestIdentifierRegexp.
    assert!(is_hex_identifier(
        "da304e823d8ca2b9d863a3c897baeb852ba21ea9a9f1414736394ae7fcaf9821"
    ));
    assert!(!is_hex_identifier(
        "7EC43B381E5AEFE6E04EFB0B3F0693FF2A4A50652D64AEC573905F2DB5889A1C"
    ));
    assert!(!is_hex_identifier(
        "da304e823d8ca2b9d863a3c897baeb852ba21ea9a9f1414736394ae7fcaf"
    ));
    assert!(!is_hex_identifier(
        "sha256:da304e823d8ca2b9d863a3c897baeb852ba21ea9a9f1414736394ae7fcaf9821"
    ));
    assert!(!is_hex_identifier(
        "da304e823d8ca2b9d863a3c897baeb852ba21ea9a9f1414736394ae7fcaf98218482"
    ));
    // Upper-case 64-hex is not an identifier, but it is not a valid repository either.
    let upper = "7EC43B381E5AEFE6E04EFB0B3F0693FF2A4A50652D64AEC573905F2DB5889A1C";
    assert_eq!(
        ImageRef::parse(upper),
        Err(ReferenceError::UppercaseRepository(upper.to_owned()))
    );
}

#[test]
fn name_and_lookup_key() {
    let Ok(tagged) = ImageRef::parse("nginx:1.27") else {
        panic!("nginx:1.27")
    };
    assert_eq!(tagged.name(), "docker.io/library/nginx");
    assert_eq!(tagged.lookup_key(), "docker.io/library/nginx:1.27");

    let Ok(untagged) = ImageRef::parse("ghcr.io/acme/api") else {
        panic!("ghcr.io/acme/api")
    };
    assert_eq!(untagged.lookup_key(), "ghcr.io/acme/api:latest");

    let both = concat!("ghcr.io/acme/api:v1@sha256:", be17!());
    let Ok(both) = ImageRef::parse(both) else {
        panic!("tag+digest")
    };
    assert_eq!(both.name(), "ghcr.io/acme/api");
    assert_eq!(
        both.lookup_key(),
        concat!("ghcr.io/acme/api@sha256:", be17!())
    );
    assert_eq!(
        both.canonical(),
        concat!("ghcr.io/acme/api:v1@sha256:", be17!())
    );

    let cleared = ImageRef {
        tag: None,
        digest: None,
        ..tagged
    };
    assert_eq!(cleared.lookup_key(), "docker.io/library/nginx:latest");
}

#[test]
fn spellings_of_the_same_image_are_equal() {
    let spellings = [
        "nginx",
        "nginx:latest",
        "library/nginx",
        "docker.io/nginx",
        "docker.io/library/nginx:latest",
        "index.docker.io/nginx",
        "index.docker.io/library/nginx:latest",
    ];
    let parsed: Vec<_> = spellings.iter().map(|s| ImageRef::parse(s)).collect();
    for (s, p) in spellings.iter().zip(&parsed) {
        assert_eq!(p, &parsed[0], "{s:?}");
    }
}

#[test]
fn from_str_matches_parse() {
    assert_eq!("redis".parse::<ImageRef>(), ImageRef::parse("redis"));
    assert_eq!("Redis".parse::<ImageRef>(), ImageRef::parse("Redis"));
}

#[test]
fn error_messages_quote_the_reference_and_say_what_is_wrong() {
    let msg = |s: &str| match ImageRef::parse(s) {
        Err(e) => e.to_string(),
        Ok(r) => panic!("{s:?} unexpectedly parsed as {r}"),
    };
    assert_eq!(
        msg("Nginx"),
        r#"invalid image reference "Nginx": repository name must be lowercase"#
    );
    assert_eq!(msg(""), r#"invalid image reference "": reference is empty"#);
    assert!(msg("nginx:").contains(r#""nginx:": tag must be"#));
    assert!(msg("nginx@").contains(r#""nginx@": digest must be"#));
    assert!(msg("x@md5:ffffffffffffffffffffffffffffffff").contains("unsupported digest algorithm"));
    assert!(
        msg("1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a")
            .contains("cannot specify 64-byte hexadecimal strings")
    );
    assert!(msg("a//b").contains(r#""a//b": repository path components"#));
    assert!(msg("ex ample").contains(r#""ex ample": invalid reference format"#));
    assert!(msg("https://x/y").contains(r#""https://x/y": registry must be"#));
    assert!(msg(&format!("{}a", "a/".repeat(130))).contains("must not be more than 255 characters"));
    // Control characters are escaped rather than written raw into logs.
    assert!(msg("nginx\n").contains(r#""nginx\n""#));
}
