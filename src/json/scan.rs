//! Byte-level scanning: whitespace, strings, numbers and whole values skipped without being built.
//!
//! Skipping is where a review's decode spends most of its time (a pod's managedFields, volumes,
//! env, the requester's userInfo), so it validates the grammar as it goes but never recurses and
//! finds the end of a string eight bytes at a time.

use super::Error;

/// Nesting deeper than this is refused, as serde_json refuses it: no pod comes close.
pub const MAX_DEPTH: usize = 128;

/// A cursor over a JSON text that is already known to be UTF-8.
pub struct Cursor<'de> {
    pub text: &'de str,
    pub pos: usize,
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// Flags bytes of `w` equal to `b`; the lowest flagged byte is always a true match.
fn bytes_equal(w: u64, b: u8) -> u64 {
    let x = w ^ (ONES * u64::from(b));
    x.wrapping_sub(ONES) & !x & HIGHS
}

/// The index of the first `"`, `\` or control character at or after `i`, or the text's length.
fn string_special(bytes: &[u8], mut i: usize) -> usize {
    while let Some(chunk) = bytes.get(i..i + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let w = u64::from_le_bytes(word);
        let control = w.wrapping_sub(ONES * 0x20) & !w & HIGHS;
        let found = bytes_equal(w, b'"') | bytes_equal(w, b'\\') | control;
        if found != 0 {
            return i + (found.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while let Some(&b) = bytes.get(i) {
        if b == b'"' || b == b'\\' || b < 0x20 {
            return i;
        }
        i += 1;
    }
    i
}

/// A string's contents: borrowed from the text when it has no escapes.
pub enum Str<'de> {
    Borrowed(&'de str),
    Owned(String),
}

impl<'de> Cursor<'de> {
    pub fn new(text: &'de str) -> Cursor<'de> {
        Cursor { text, pos: 0 }
    }

    fn bytes(&self) -> &'de [u8] {
        self.text.as_bytes()
    }

    pub fn error(&self, msg: impl Into<String>) -> Error {
        Error::at(msg, self.text, self.pos)
    }

    /// The next byte after whitespace, without consuming it.
    pub fn peek(&mut self) -> Option<u8> {
        let bytes = self.bytes();
        while let Some(&b) = bytes.get(self.pos) {
            match b {
                b' ' | b'\n' | b'\r' | b'\t' => self.pos += 1,
                _ => return Some(b),
            }
        }
        None
    }

    /// Consumes `b` (after whitespace) or fails saying what was expected.
    pub fn expect(&mut self, b: u8, what: &str) -> Result<(), Error> {
        match self.peek() {
            Some(found) if found == b => {
                self.pos += 1;
                Ok(())
            }
            Some(_) => Err(self.error(format!("expected {what}"))),
            None => Err(self.error(format!("EOF while parsing: expected {what}"))),
        }
    }

    /// Consumes the literal `word` (`true`, `false`, `null`) at the cursor.
    pub fn literal(&mut self, word: &str) -> Result<(), Error> {
        if self.text[self.pos..].starts_with(word) {
            self.pos += word.len();
            Ok(())
        } else {
            Err(self.error(format!("expected `{word}`")))
        }
    }

    /// Reads the string whose opening quote is at the cursor.
    pub fn string(&mut self) -> Result<Str<'de>, Error> {
        let bytes = self.bytes();
        let start = self.pos + 1;
        let end = string_special(bytes, start);
        match bytes.get(end) {
            Some(b'"') => {
                self.pos = end + 1;
                Ok(Str::Borrowed(&self.text[start..end]))
            }
            Some(b'\\') => {
                let mut out = String::with_capacity(end - start + 16);
                out.push_str(&self.text[start..end]);
                self.pos = end;
                self.unescape_rest(&mut out)?;
                Ok(Str::Owned(out))
            }
            Some(_) => {
                self.pos = end;
                Err(self.error("control character in string"))
            }
            None => {
                self.pos = end;
                Err(self.error("EOF while parsing a string"))
            }
        }
    }

    /// Continues a string at an escape, appending to `out`, through the closing quote.
    fn unescape_rest(&mut self, out: &mut String) -> Result<(), Error> {
        let bytes = self.bytes();
        loop {
            match bytes.get(self.pos) {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(());
                }
                Some(b'\\') => {
                    let escaped = bytes.get(self.pos + 1).copied();
                    self.pos += 2;
                    let c = match escaped {
                        Some(b'"') => '"',
                        Some(b'\\') => '\\',
                        Some(b'/') => '/',
                        Some(b'b') => '\u{8}',
                        Some(b'f') => '\u{c}',
                        Some(b'n') => '\n',
                        Some(b'r') => '\r',
                        Some(b't') => '\t',
                        Some(b'u') => self.unicode_escape()?,
                        Some(_) => {
                            self.pos -= 1;
                            return Err(self.error("invalid escape"));
                        }
                        None => return Err(self.error("EOF while parsing a string")),
                    };
                    out.push(c);
                }
                Some(_) => {
                    let end = string_special(bytes, self.pos);
                    if end == self.pos {
                        return Err(self.error("control character in string"));
                    }
                    out.push_str(&self.text[self.pos..end]);
                    self.pos = end;
                }
                None => return Err(self.error("EOF while parsing a string")),
            }
        }
    }

    /// The character of a `\uXXXX` escape (the cursor just past the `u`), joining surrogate pairs.
    fn unicode_escape(&mut self) -> Result<char, Error> {
        let first = self.hex4()?;
        let code = match first {
            0xD800..=0xDBFF => {
                if !self.text[self.pos..].starts_with("\\u") {
                    return Err(self.error("lone leading surrogate in hex escape"));
                }
                self.pos += 2;
                let second = self.hex4()?;
                if !(0xDC00..=0xDFFF).contains(&second) {
                    return Err(self.error("invalid surrogate pair in hex escape"));
                }
                0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
            }
            0xDC00..=0xDFFF => return Err(self.error("lone trailing surrogate in hex escape")),
            code => code,
        };
        char::from_u32(code).ok_or_else(|| self.error("invalid unicode code point"))
    }

    fn hex4(&mut self) -> Result<u32, Error> {
        let digits = self
            .text
            .get(self.pos..self.pos + 4)
            .filter(|d| d.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| self.error("invalid hex escape"))?;
        self.pos += 4;
        u32::from_str_radix(digits, 16).map_err(|_| self.error("invalid hex escape"))
    }

    /// Skips the string whose opening quote is at the cursor, checking its escapes.
    fn skip_string(&mut self) -> Result<(), Error> {
        let bytes = self.bytes();
        let mut i = self.pos + 1;
        loop {
            i = string_special(bytes, i);
            match bytes.get(i) {
                Some(b'"') => {
                    self.pos = i + 1;
                    return Ok(());
                }
                Some(b'\\') => match bytes.get(i + 1) {
                    Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => i += 2,
                    // Surrogates are not paired up in a string nobody reads, as serde_json
                    // does not either: only the hex digits are checked.
                    Some(b'u') => {
                        self.pos = i + 2;
                        self.hex4()?;
                        i = self.pos;
                    }
                    _ => {
                        self.pos = i + 1;
                        return Err(self.error("invalid escape"));
                    }
                },
                Some(_) => {
                    self.pos = i;
                    return Err(self.error("control character in string"));
                }
                None => {
                    self.pos = i;
                    return Err(self.error("EOF while parsing a string"));
                }
            }
        }
    }

    /// The text of the number at the cursor, checked against JSON's grammar, and whether it is an
    /// integer (no fraction, no exponent).
    pub fn number(&mut self) -> Result<(&'de str, bool), Error> {
        let bytes = self.bytes();
        let start = self.pos;
        let mut i = start;
        let digits = |i: &mut usize| {
            let from = *i;
            while bytes.get(*i).is_some_and(u8::is_ascii_digit) {
                *i += 1;
            }
            *i > from
        };
        if bytes.get(i) == Some(&b'-') {
            i += 1;
        }
        match bytes.get(i) {
            Some(b'0') => i += 1,
            Some(b'1'..=b'9') => {
                digits(&mut i);
            }
            _ => {
                self.pos = i;
                return Err(self.error("invalid number"));
            }
        }
        let mut integer = true;
        if bytes.get(i) == Some(&b'.') {
            i += 1;
            integer = false;
            if !digits(&mut i) {
                self.pos = i;
                return Err(self.error("invalid number: expected a digit after `.`"));
            }
        }
        if matches!(bytes.get(i), Some(b'e' | b'E')) {
            i += 1;
            integer = false;
            if matches!(bytes.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
            if !digits(&mut i) {
                self.pos = i;
                return Err(self.error("invalid number: expected a digit in the exponent"));
            }
        }
        self.pos = i;
        Ok((&self.text[start..i], integer))
    }

    /// Skips one whole value at the cursor (after whitespace), checking its grammar, without
    /// recursion: `depth` is how deep the cursor already is.
    pub fn skip_value(&mut self, depth: usize) -> Result<(), Error> {
        // One bit per open container: 1 for an object, 0 for an array.
        let mut stack: u128 = 0;
        let mut open = 0usize;
        'value: loop {
            match self.peek() {
                Some(b'"') => self.skip_string()?,
                Some(b'{') => {
                    self.pos += 1;
                    if self.peek() == Some(b'}') {
                        self.pos += 1;
                    } else {
                        open += 1;
                        if depth + open > MAX_DEPTH {
                            return Err(self.error("recursion limit exceeded"));
                        }
                        stack = (stack << 1) | 1;
                        self.skip_key()?;
                        continue 'value;
                    }
                }
                Some(b'[') => {
                    self.pos += 1;
                    if self.peek() == Some(b']') {
                        self.pos += 1;
                    } else {
                        open += 1;
                        if depth + open > MAX_DEPTH {
                            return Err(self.error("recursion limit exceeded"));
                        }
                        stack <<= 1;
                        continue 'value;
                    }
                }
                Some(b't') => self.literal("true")?,
                Some(b'f') => self.literal("false")?,
                Some(b'n') => self.literal("null")?,
                Some(b'-' | b'0'..=b'9') => {
                    self.number()?;
                }
                Some(_) => return Err(self.error("expected value")),
                None => return Err(self.error("EOF while parsing a value")),
            }
            // After a value: close containers until one continues with a comma.
            loop {
                if open == 0 {
                    return Ok(());
                }
                let in_object = stack & 1 == 1;
                match self.peek() {
                    Some(b',') => {
                        self.pos += 1;
                        if in_object {
                            self.skip_key()?;
                        }
                        continue 'value;
                    }
                    Some(b'}') if in_object => {}
                    Some(b']') if !in_object => {}
                    Some(_) if in_object => return Err(self.error("expected `,` or `}`")),
                    Some(_) => return Err(self.error("expected `,` or `]`")),
                    None => return Err(self.error("EOF while parsing a value")),
                }
                self.pos += 1;
                stack >>= 1;
                open -= 1;
            }
        }
    }

    /// Skips `"key":` inside an object.
    fn skip_key(&mut self) -> Result<(), Error> {
        match self.peek() {
            Some(b'"') => self.skip_string()?,
            Some(_) => return Err(self.error("key must be a string")),
            None => return Err(self.error("EOF while parsing an object")),
        }
        self.expect(b':', "`:`")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn string_special_finds_the_first_quote_backslash_or_control_byte() {
        let cases = [
            ("abcdefghij\"", 10),
            ("\"", 0),
            ("abcdefg\\h", 7),
            ("abcdefgh\u{1}", 8),
            ("héllo wörld, ünïcode\"", "héllo wörld, ünïcode".len()),
            ("no end", 6),
            ("0123456789abcdef0123\t", 20),
        ];
        for (text, want) in cases {
            assert_eq!(string_special(text.as_bytes(), 0), want, "{text:?}");
        }
    }

    /// Skipping agrees with serde_json on what is valid JSON, and ends where the value ends.
    #[test]
    fn skipping_accepts_exactly_what_serde_json_accepts() {
        let valid = [
            r#"{"a":[1,-2.5e+3,true,false,null,{"b":{}},[]],"c":"x\"y\\z\u00e9\ud83d\ude00"}"#,
            " [ 1 , 2 ] ",
            r#""""#,
            "0",
            "-0.0e0",
            r#"{"managedFields":[{"f:metadata":{"f:labels":{".":{}}}}]}"#,
        ];
        for text in valid {
            let mut c = Cursor::new(text);
            c.skip_value(0).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(c.peek(), None, "{text}");
            serde_json::from_str::<serde::de::IgnoredAny>(text).unwrap();
        }
        let invalid = [
            "",
            "[",
            "[1,]",
            "[1 2]",
            "{\"a\" 1}",
            "{\"a\":1,}",
            "{1:2}",
            "[}",
            "{]",
            "tru",
            "nul",
            "01x",
            "-",
            "1.",
            "1e",
            "\"abc",
            "\"a\\x\"",
            "\"\\u12\"",
            "\"a\u{1}\"",
            "{\"a\":[1,{\"b\":2]}}",
            "[1]]",
        ];
        for text in invalid {
            let mut c = Cursor::new(text);
            let ours = c.skip_value(0).and_then(|()| match c.peek() {
                None => Ok(()),
                Some(_) => Err(c.error("trailing characters")),
            });
            assert!(ours.is_err(), "{text:?} accepted");
            assert!(
                serde_json::from_str::<serde::de::IgnoredAny>(text).is_err(),
                "{text:?} is valid JSON after all"
            );
        }
    }

    #[test]
    fn nesting_is_bounded_without_recursion() {
        let deep = "[".repeat(100_000);
        let err = Cursor::new(&deep).skip_value(0).unwrap_err();
        assert!(err.to_string().contains("recursion limit"), "{err}");
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        Cursor::new(&ok).skip_value(0).unwrap();
    }

    #[test]
    fn strings_borrow_unless_escaped() {
        let mut c = Cursor::new(r#""plain" "a\nb\u00e9\ud83d\ude00c""#);
        assert!(matches!(c.string().unwrap(), Str::Borrowed("plain")));
        c.peek();
        match c.string().unwrap() {
            Str::Owned(s) => assert_eq!(s, "a\nbé😀c"),
            Str::Borrowed(s) => panic!("borrowed {s}"),
        }
    }
}
