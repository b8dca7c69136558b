//! A JSON deserializer for the admission hot path: serde types in, borrowed strings where the
//! text has no escapes, and values the types do not ask for skipped by a scanner instead of being
//! walked token by token.
//!
//! serde_json spends most of a pod review's decode skipping what the decision never reads
//! (managedFields, volumes, env, userInfo); here skipping costs a fraction of that. Everything
//! else (the configuration files, the registry's documents, the lenient second read of a review
//! that failed to decode) stays with serde_json. The grammar is checked everywhere, skipped
//! values included, so malformed JSON is refused exactly as serde_json refuses it.

mod raw;
mod scan;

pub use raw::RawJson;

use scan::{Cursor, Str, MAX_DEPTH};
use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};
use serde::Deserialize;
use std::fmt;

/// What is wrong with a JSON text, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    message: String,
    /// 1-based; 0 until the deserializer knows where the error happened.
    line: usize,
    column: usize,
}

impl Error {
    fn at(message: impl Into<String>, text: &str, pos: usize) -> Error {
        let mut error = Error {
            message: message.into(),
            line: 0,
            column: 0,
        };
        error.locate(text, pos);
        error
    }

    /// Places an error raised by a visitor (a missing field, a wrong type) at the cursor.
    fn locate(&mut self, text: &str, pos: usize) {
        if self.line != 0 {
            return;
        }
        let before = text.get(..pos.min(text.len())).unwrap_or(text);
        self.line = before.matches('\n').count() + 1;
        self.column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            f.write_str(&self.message)
        } else {
            write!(
                f,
                "{} at line {} column {}",
                self.message, self.line, self.column
            )
        }
    }
}

impl std::error::Error for Error {}

impl de::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Error {
        Error {
            message: msg.to_string(),
            line: 0,
            column: 0,
        }
    }
}

/// Decodes a `T` from the whole of `text`.
pub fn from_str<'de, T: Deserialize<'de>>(text: &'de str) -> Result<T, Error> {
    let mut de = Deserializer {
        cursor: Cursor::new(text),
        depth: 0,
    };
    let value = T::deserialize(&mut de).map_err(|e| de.locate(e))?;
    match de.cursor.peek() {
        None => Ok(value),
        Some(_) => Err(de.cursor.error("trailing characters")),
    }
}

pub struct Deserializer<'de> {
    cursor: Cursor<'de>,
    /// Containers open at the cursor.
    depth: usize,
}

impl<'de> Deserializer<'de> {
    fn locate(&self, mut e: Error) -> Error {
        e.locate(self.cursor.text, self.cursor.pos);
        e
    }

    fn enter(&mut self) -> Result<(), Error> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.cursor.error("recursion limit exceeded"));
        }
        Ok(())
    }

    fn number<V: Visitor<'de>>(&mut self, visitor: V) -> Result<V::Value, Error> {
        let (text, integer) = self.cursor.number()?;
        if integer {
            if text == "-0" {
                return visitor.visit_f64(-0.0);
            }
            if let Ok(n) = text.parse::<u64>() {
                return visitor.visit_u64(n);
            }
            if let Ok(n) = text.parse::<i64>() {
                return visitor.visit_i64(n);
            }
        }
        // Integers beyond 64 bits become floats, as serde_json does without arbitrary_precision.
        match text.parse::<f64>() {
            Ok(n) if n.is_finite() => visitor.visit_f64(n),
            _ => Err(self.cursor.error("number out of range")),
        }
    }
}

impl<'de> de::Deserializer<'de> for &mut Deserializer<'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let result = match self.cursor.peek() {
            Some(b'"') => match self.cursor.string()? {
                Str::Borrowed(s) => visitor.visit_borrowed_str(s),
                Str::Owned(s) => visitor.visit_string(s),
            },
            Some(b'{') => {
                self.cursor.pos += 1;
                self.enter()?;
                let value = visitor.visit_map(Entries::new(self))?;
                self.depth -= 1;
                self.cursor.expect(b'}', "`,` or `}`")?;
                Ok(value)
            }
            Some(b'[') => {
                self.cursor.pos += 1;
                self.enter()?;
                let value = visitor.visit_seq(Entries::new(self))?;
                self.depth -= 1;
                self.cursor.expect(b']', "`,` or `]`")?;
                Ok(value)
            }
            Some(b't') => {
                self.cursor.literal("true")?;
                visitor.visit_bool(true)
            }
            Some(b'f') => {
                self.cursor.literal("false")?;
                visitor.visit_bool(false)
            }
            Some(b'n') => {
                self.cursor.literal("null")?;
                visitor.visit_unit()
            }
            Some(b'-' | b'0'..=b'9') => self.number(visitor),
            Some(_) => Err(self.cursor.error("expected value")),
            None => Err(self.cursor.error("EOF while parsing a value")),
        };
        result.map_err(|e| self.locate(e))
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        if self.cursor.peek() == Some(b'n') {
            self.cursor.literal("null")?;
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        if name == raw::TOKEN {
            self.cursor.peek();
            let start = self.cursor.pos;
            self.cursor.skip_value(self.depth)?;
            return visitor.visit_borrowed_str(&self.cursor.text[start..self.cursor.pos]);
        }
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        // Only unit variants spelled as strings: the types decoded here need no more.
        match self.cursor.peek() {
            Some(b'"') => match self.cursor.string()? {
                Str::Borrowed(s) => visitor.visit_enum(s.into_deserializer()),
                Str::Owned(s) => visitor.visit_enum(s.into_deserializer()),
            },
            _ => Err(self.cursor.error("expected a string naming a variant")),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.cursor.skip_value(self.depth)?;
        visitor.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct map struct identifier
    }
}

/// The members of an object or the elements of an array, separated by commas.
struct Entries<'a, 'de> {
    de: &'a mut Deserializer<'de>,
    first: bool,
}

impl<'a, 'de> Entries<'a, 'de> {
    fn new(de: &'a mut Deserializer<'de>) -> Self {
        Entries { de, first: true }
    }

    /// Whether another entry follows (consuming its comma), or the container closes.
    fn has_next(&mut self, close: u8) -> Result<bool, Error> {
        let cursor = &mut self.de.cursor;
        match cursor.peek() {
            Some(b) if b == close => Ok(false),
            Some(b',') if !self.first => {
                cursor.pos += 1;
                Ok(true)
            }
            Some(_) if self.first => {
                self.first = false;
                Ok(true)
            }
            Some(_) if close == b'}' => Err(cursor.error("expected `,` or `}`")),
            Some(_) => Err(cursor.error("expected `,` or `]`")),
            None => Err(cursor.error("EOF while parsing a value")),
        }
    }
}

impl<'de> de::MapAccess<'de> for Entries<'_, 'de> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        if !self.has_next(b'}')? {
            return Ok(None);
        }
        match self.de.cursor.peek() {
            Some(b'"') => seed.deserialize(&mut *self.de).map(Some),
            Some(_) => Err(self.de.cursor.error("key must be a string")),
            None => Err(self.de.cursor.error("EOF while parsing an object")),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        self.de.cursor.expect(b':', "`:`")?;
        seed.deserialize(&mut *self.de)
    }
}

impl<'de> de::SeqAccess<'de> for Entries<'_, 'de> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        if !self.has_next(b']')? {
            return Ok(None);
        }
        seed.deserialize(&mut *self.de).map(Some)
    }
}

#[cfg(test)]
mod tests;
