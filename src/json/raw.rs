//! A value kept as its JSON text, to be decoded later only if needed (a workload's template, an
//! UPDATE's oldObject).

use serde::de::{self, Deserialize, Deserializer, Visitor};
use std::fmt;

/// The name by which [`super::Deserializer`] recognises a request for raw text.
pub(super) const TOKEN: &str = "$archgate::json::RawJson";

/// The exact text of one JSON value, borrowed from the body. Only [`super::from_str`] produces it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawJson<'a>(pub &'a str);

impl<'a> RawJson<'a> {
    pub fn get(&self) -> &'a str {
        self.0
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for RawJson<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Text;
        impl<'de> Visitor<'de> for Text {
            type Value = &'de str;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value, read by archgate's JSON deserializer")
            }
            fn visit_borrowed_str<E: de::Error>(self, text: &'de str) -> Result<&'de str, E> {
                Ok(text)
            }
        }
        deserializer
            .deserialize_newtype_struct(TOKEN, Text)
            .map(RawJson)
    }
}
