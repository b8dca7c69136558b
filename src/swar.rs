//! Eight bytes at a time: finding the bytes JSON cares about (quotes, backslashes, control
//! characters) in a `u64` instead of one by one, for the short strings that make up most of an
//! AdmissionReview and of a log line.

/// The byte repeated in each of a word's eight bytes.
pub const fn splat(byte: u8) -> u64 {
    u64::from_ne_bytes([byte; 8])
}

/// The high bit of the lowest zero byte of `word`, and maybe of later ones: enough to find the
/// first with `trailing_zeros`, or to tell whether there is one.
pub const fn zero_bytes(word: u64) -> u64 {
    word.wrapping_sub(splat(1)) & !word & splat(0x80)
}

/// Likewise for the bytes below `n` (at most 0x80).
const fn bytes_below(word: u64, n: u8) -> u64 {
    word.wrapping_sub(splat(n)) & !word & splat(0x80)
}

/// Likewise for the bytes a JSON string must escape: quotes, backslashes, control characters.
#[inline]
pub const fn escape_bytes(word: u64) -> u64 {
    zero_bytes(word ^ splat(b'"')) | zero_bytes(word ^ splat(b'\\')) | bytes_below(word, 0x20)
}

/// Whether a JSON string must escape `b`, one byte at a time.
#[inline]
pub const fn is_escape_byte(b: u8) -> bool {
    b == b'"' || b == b'\\' || b < 0x20
}

/// Whether `s` holds a byte a JSON string must escape: a quote, a backslash or a control character.
pub fn needs_json_escape(s: &[u8]) -> bool {
    let mut chunks = s.chunks_exact(8);
    for chunk in &mut chunks {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(chunk);
        if escape_bytes(u64::from_le_bytes(bytes)) != 0 {
            return true;
        }
    }
    let rest = chunks.remainder();
    // The last bytes: the eight that end the string, in one more word (looking at some twice is
    // harmless); in a string shorter than that, its first and last four; in one shorter still,
    // each byte. Field names and values in logs and patches are mostly short.
    if rest.is_empty() {
        return false;
    }
    let word = match (
        s.last_chunk::<8>(),
        s.first_chunk::<4>(),
        s.last_chunk::<4>(),
    ) {
        (Some(last), _, _) => u64::from_le_bytes(*last),
        (None, Some(first), Some(last)) => {
            u64::from(u32::from_le_bytes(*first)) | u64::from(u32::from_le_bytes(*last)) << 32
        }
        _ => return rest.iter().any(|&b| is_escape_byte(b)),
    };
    escape_bytes(word) != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_are_found_wherever_they_are() {
        let plain = |b: u8| !(b < 0x20 || b == b'"' || b == b'\\');
        for len in 0..20 {
            for at in 0..len {
                for byte in 0..=255u8 {
                    let mut s = vec![b'a'; len];
                    s[at] = byte;
                    assert_eq!(
                        needs_json_escape(&s),
                        !plain(byte),
                        "{byte:#x} at {at} of {len}"
                    );
                }
            }
        }
        assert!(!needs_json_escape("é ✓ </script> a-b_c.d".as_bytes()));
    }
}
