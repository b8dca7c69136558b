//! Finding where a JSON value ends without decoding it, 64 bytes at a step.
//!
//! Most of an AdmissionReview is members the decision never reads (a pod's managedFields, its
//! volumes, the requesting user). serde_json reads past them a token at a time, which was half of
//! the review's decode. Here a block of 64 bytes is classified at once with SIMD compares (the
//! `wide` crate: safe, SSE2 on every x86-64 and NEON on arm64, plain code elsewhere), and strings
//! are told from structure with simdjson's bit tricks, so skipping a nested value costs a few
//! operations per 64 bytes.
//!
//! What is skipped is matched for brackets and strings but not otherwise checked: a value that is
//! not JSON inside a skipped member goes unnoticed. The API server only sends JSON it has parsed.

use crate::swar::{escape_bytes, is_escape_byte, splat, zero_bytes};
use wide::u8x16;

/// The index just past the value that starts at `at` in `body` (no leading whitespace), or
/// `None` when the body ends first or there is no value there. Only the values skipped are ever
/// classified, each from its own first byte: the walk reads the rest itself (an index of the
/// whole body, built up front, spent a third of its work on bytes nobody skipped).
pub fn value_end(body: &[u8], at: usize) -> Option<usize> {
    match *body.get(at)? {
        b'{' | b'[' => container_end(body, at),
        b'"' => string_end(body, at + 1),
        _ => {
            let len = body[at..]
                .iter()
                .position(|&c| matches!(c, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'))
                .unwrap_or(body.len() - at);
            (len > 0).then_some(at + len)
        }
    }
}

/// The index just past the bracket that closes the object or array opening at `at`. The bracket
/// is outside any string (the caller found it as a value), so the blocks from it on start
/// outside one too.
fn container_end(body: &[u8], at: usize) -> Option<usize> {
    // `{}` and `[]` (an empty securityContext, emptyDir, status) need no block at all.
    if matches!(body.get(at + 1), Some(b'}' | b']')) {
        return Some(at + 2);
    }
    // Carried from block to block: whether the block ends inside a string (all ones or
    // zero), and whether its last byte is an unescaped backslash (1 or 0).
    let (mut in_string, mut escape) = (0u64, 0u64);
    let mut depth = 0u32;
    let mut from = at;
    loop {
        let rest = body.get(from..).filter(|rest| !rest.is_empty())?;
        let block = match rest.first_chunk::<64>() {
            Some(whole) => Block::classify(whole),
            None => {
                let mut padded = [b' '; 64];
                padded[..rest.len()].copy_from_slice(rest);
                Block::classify(&padded)
            }
        };
        let escaped = escaped(block.backslashes, &mut escape);
        let strings = prefix_xor(block.quotes & !escaped) ^ in_string;
        in_string = 0u64.wrapping_sub(strings >> 63);
        let (opens, closes) = (block.opens & !strings, block.closes & !strings);
        if closes.count_ones() < depth {
            // The value cannot end in this block.
            depth = depth + opens.count_ones() - closes.count_ones();
        } else {
            let mut brackets = opens | closes;
            while brackets != 0 {
                let bit = brackets & brackets.wrapping_neg();
                if opens & bit != 0 {
                    depth += 1;
                } else {
                    depth = depth.checked_sub(1)?;
                    if depth == 0 {
                        return Some(from + bit.trailing_zeros() as usize + 1);
                    }
                }
                brackets ^= bit;
            }
        }
        from += 64;
    }
}

/// The index just past the closing quote of the string whose contents start at `at`.
pub fn string_end(b: &[u8], mut at: usize) -> Option<usize> {
    loop {
        at = quote_or_backslash(b, at)?;
        if b[at] == b'"' {
            return Some(at + 1);
        }
        at += 2;
    }
}

/// Like [`string_end`], but `None` when a backslash or a control character comes before the
/// closing quote: the end of a string that reads as written, found in the same pass that tells
/// it needs nothing done. Member names are read this way (one spelled with escapes cannot be told
/// from another, and serde_json refuses a control character), and most string values.
pub fn plain_string_end(b: &[u8], mut at: usize) -> Option<usize> {
    while let Some(chunk) = b.get(at..at + 8) {
        let word = u64::from_le_bytes(chunk.try_into().ok()?);
        let found = escape_bytes(word);
        if found != 0 {
            let at = at + (found.trailing_zeros() / 8) as usize;
            return (b[at] == b'"').then_some(at + 1);
        }
        at += 8;
    }
    let at = at + b.get(at..)?.iter().position(|&c| is_escape_byte(c))?;
    (b[at] == b'"').then_some(at + 1)
}

/// The index of the first quote or backslash from `at`.
fn quote_or_backslash(b: &[u8], mut at: usize) -> Option<usize> {
    // Eight bytes at a time: most strings here are short, too short for SIMD to pay.
    while let Some(chunk) = b.get(at..at + 8) {
        let word = u64::from_le_bytes(chunk.try_into().ok()?);
        let found = zero_bytes(word ^ splat(b'"')) | zero_bytes(word ^ splat(b'\\'));
        if found != 0 {
            return Some(at + (found.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    Some(at + b.get(at..)?.iter().position(|&c| c == b'"' || c == b'\\')?)
}

/// Bit i of each mask stands for byte i of a 64-byte block.
struct Block {
    quotes: u64,
    backslashes: u64,
    opens: u64,
    closes: u64,
}

impl Block {
    fn classify(bytes: &[u8; 64]) -> Block {
        let mut block = Block {
            quotes: 0,
            backslashes: 0,
            opens: 0,
            closes: 0,
        };
        for (i, lane) in bytes.chunks_exact(16).enumerate() {
            let mut array = [0u8; 16];
            array.copy_from_slice(lane);
            let v = u8x16::new(array);
            // '[' and '{' differ only in bit 5, as do ']' and '}'.
            let folded = v | u8x16::splat(0x20);
            let mask = |m: u8x16| u64::from(m.to_bitmask()) << (16 * i);
            block.quotes |= mask(v.simd_eq(u8x16::splat(b'"')));
            block.backslashes |= mask(v.simd_eq(u8x16::splat(b'\\')));
            block.opens |= mask(folded.simd_eq(u8x16::splat(b'{')));
            block.closes |= mask(folded.simd_eq(u8x16::splat(b'}')));
        }
        block
    }
}

/// The bytes escaped by a backslash: the second of each pair in a run of backslashes, and the byte
/// after a run of odd length (simdjson's `find_escaped`). `carry` says whether the previous block
/// ended in such a backslash, and is set for the next.
fn escaped(backslashes: u64, carry: &mut u64) -> u64 {
    const EVEN: u64 = 0x5555_5555_5555_5555;
    if backslashes | *carry == 0 {
        // Most blocks of a review: nothing escaped, nothing carried.
        return 0;
    }
    let backslashes = backslashes & !*carry;
    let follows_escape = (backslashes << 1) | *carry;
    let odd_starts = backslashes & !EVEN & !follows_escape;
    let (runs_from_even, overflow) = odd_starts.overflowing_add(backslashes);
    *carry = u64::from(overflow);
    (EVEN ^ (runs_from_even << 1)) & follows_escape
}

/// Bit i is the parity of bits 0..=i: set from an opening quote up to its closing quote.
fn prefix_xor(mut bits: u64) -> u64 {
    for shift in [1, 2, 4, 8, 16, 32] {
        bits ^= bits << shift;
    }
    bits
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Where serde_json says the value at the start of `text` ends.
    fn serde_end(text: &str) -> Option<usize> {
        let mut values =
            serde_json::Deserializer::from_str(text).into_iter::<serde::de::IgnoredAny>();
        values.next()?.ok()?;
        Some(values.byte_offset())
    }

    #[test]
    fn values_end_where_serde_json_says() {
        let long = "x".repeat(200);
        let cases = [
            r#"{}"#.to_string(),
            r#"[]"#.to_string(),
            r#""""#.to_string(),
            r#"{"a":[1,2,{"b":"c"}],"d":null}"#.to_string(),
            // managedFields keys hold brackets and escaped quotes.
            r#"{"k:{\"name\":\"x\"}":{"f:a":{}},"b":"]}"}"#.to_string(),
            // Runs of backslashes, odd and even, before quotes.
            r#"["\\",{"\\\"":"\\\\\"]"}]"#.to_string(),
            // Strings and runs of backslashes across 64-byte blocks.
            format!(r#"{{"a":"{long}","b":[{{"c":"{long}\"}}"}}]}}"#),
            format!(r#"["{}\\",["]"]]"#, "\\".repeat(40)),
            format!(r#"["{}\"]"]"#, "\\".repeat(40)),
            "12.5e3".to_string(),
            "true".to_string(),
            r#""a\"b""#.to_string(),
        ];
        for case in &cases {
            assert_eq!(
                serde_end(case),
                Some(case.len()),
                "not one JSON value: {case}"
            );
            for tail in ["", ",", " ,1", "]", "}"] {
                let text = format!("{case}{tail}");
                assert_eq!(value_end(text.as_bytes(), 0), Some(case.len()), "{text}");
            }
        }
    }

    #[test]
    fn every_value_of_a_review_ends_where_serde_json_says() {
        let body = include_str!(
            "../../tests/fixtures/admission-reviews/raw/013-mutate-Pod-CREATE-real.request.json"
        );
        // Every object, array and string in the body (and some bytes inside strings that look
        // like one, which serde_json rejects).
        for (start, c) in body.char_indices() {
            if matches!(c, '{' | '[' | '"') {
                if let Some(end) = serde_end(&body[start..]) {
                    assert_eq!(
                        value_end(body.as_bytes(), start),
                        Some(start + end),
                        "at {start}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_plain_string_ends_where_a_string_ends_unless_it_holds_an_escape_or_control() {
        for len in 0..20 {
            for at in 0..len {
                for byte in 0..=255u8 {
                    let mut s = vec![b'a'; len];
                    s[at] = byte;
                    s.extend_from_slice(b"\"x\\\"\"");
                    let end = string_end(&s, 0);
                    let plain = end.filter(|&end| !crate::swar::needs_json_escape(&s[..end - 1]));
                    assert_eq!(plain_string_end(&s, 0), plain, "{byte:#x} at {at} of {len}");
                }
            }
        }
        assert_eq!(plain_string_end(b"abc", 0), None, "no closing quote");
    }

    #[test]
    fn values_the_input_cuts_short_have_no_end() {
        for text in [
            r#"{"a":[1,2"#,
            r#"["#,
            r#""abc"#,
            r#""abc\""#,
            r#"{"a":"}"#,
            "",
            "]",
        ] {
            assert_eq!(value_end(text.as_bytes(), 0), None, "{text}");
        }
        let body = include_bytes!(
            "../../tests/fixtures/admission-reviews/raw/013-mutate-Pod-CREATE-real.request.json"
        );
        let end = value_end(body, 0).unwrap();
        for cut in 1..end {
            assert_eq!(value_end(&body[..cut], 0), None, "cut at {cut}");
        }
    }
}
