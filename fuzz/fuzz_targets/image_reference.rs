//! `ImageRef::parse`, the normaliser every image of every pod goes through.
//!
//! Asserts, for any UTF-8 text:
//! 1. Parsing does not panic.
//! 2. An accepted reference is canonical: its normalised form (`canonical()`, also `Display`)
//!    parses again to an equal value, which prints the same again.
//! 3. `lookup_key()` (what caches and the platforms file are keyed by) parses to the same
//!    registry, repository and digest (the tag too when there is no digest).
//! 4. `name()` is `registry/repository`; the repository is at most 255 bytes, lower case, and
//!    the registry is never `index.docker.io`; a reference with neither tag nor digest gets `latest`.
//! 5. A rejected reference's error quotes the input verbatim (denials show what the user wrote).
#![no_main]

use archgate::image::reference::{ImageRef, ReferenceError, MAX_REPOSITORY_LEN};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let r = match ImageRef::parse(s) {
        Ok(r) => r,
        Err(e) => {
            if !matches!(e, ReferenceError::Empty) {
                assert!(
                    e.to_string().contains(&format!("{s:?}")),
                    "the error does not quote the input: {e}"
                );
            }
            return;
        }
    };
    let canonical = r.canonical();
    assert_eq!(r.to_string(), canonical);
    let again = match ImageRef::parse(&canonical) {
        Ok(again) => again,
        Err(e) => panic!("{s:?} normalises to {canonical:?}, which does not parse: {e}"),
    };
    assert_eq!(again, r, "{s:?} -> {canonical:?} -> a different reference");
    assert_eq!(again.canonical(), canonical, "not a fixed point");

    let key = r.lookup_key();
    let keyed = match ImageRef::parse(&key) {
        Ok(k) => k,
        Err(e) => panic!("lookup key {key:?} of {s:?} does not parse: {e}"),
    };
    assert_eq!(
        (&keyed.registry, &keyed.repository, &keyed.digest),
        (&r.registry, &r.repository, &r.digest),
        "lookup key {key:?}"
    );
    if r.digest.is_none() {
        assert_eq!(keyed.tag, r.tag, "lookup key {key:?}");
    }

    assert_eq!(r.name(), format!("{}/{}", r.registry, r.repository));
    assert!(r.repository.len() <= MAX_REPOSITORY_LEN);
    assert!(!r.repository.bytes().any(|b| b.is_ascii_uppercase()));
    assert_ne!(r.registry, "index.docker.io");
    assert!(r.tag.is_some() || r.digest.is_some());
});
