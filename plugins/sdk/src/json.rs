//! JSON as frontends read it from callers: one rule for every protocol.
//!
//! `serde_json` keeps the last of two equal keys in an object (and serde's
//! derive refuses them only for a struct's own fields), so a body naming
//! `imageRef` twice would mean whichever a reader happens to take. Every
//! frontend reads caller JSON through [`from_slice`], which refuses a
//! repeated key at any depth, naming it and where it is.

use serde::de::{self, DeserializeOwned, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use std::collections::HashSet;
use std::fmt;

/// Decode `bytes` as `T`, refusing an object that repeats a key anywhere.
pub fn from_slice<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, serde_json::Error> {
    check(bytes)?;
    serde_json::from_slice(bytes)
}

/// Check that `bytes` are JSON in which no object repeats a key.
pub fn check(bytes: &[u8]) -> Result<(), serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    Unique { at: String::new() }.deserialize(&mut de)?;
    de.end()
}

/// Walks one value, remembering where it is (`containers[0].env`) for the error.
struct Unique {
    at: String,
}

impl Unique {
    fn child(&self, key: &str) -> Unique {
        Unique {
            at: if self.at.is_empty() {
                key.to_string()
            } else {
                format!("{}.{key}", self.at)
            },
        }
    }
}

impl<'de> DeserializeSeed<'de> for Unique {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Unique {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0usize;
        while seq
            .next_element_seed(Unique {
                at: format!("{}[{i}]", self.at),
            })?
            .is_some()
        {
            i += 1;
        }
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            let child = self.child(&key);
            if !seen.insert(key) {
                return Err(de::Error::custom(format_args!(
                    "duplicate key `{}`",
                    child.at
                )));
            }
            map.next_value_seed(child)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_key_is_refused_at_any_depth_and_named() {
        let top = check(br#"{"imageRef": "a", "imageRef": "b"}"#).expect_err("refused");
        assert!(
            top.to_string().contains("duplicate key `imageRef`"),
            "{top}"
        );
        let deep = check(br#"{"c": [{"env": {"A": "1", "A": "2"}}]}"#).expect_err("refused");
        assert!(
            deep.to_string().contains("duplicate key `c[0].env.A`"),
            "{deep}"
        );
    }

    #[test]
    fn distinct_keys_and_equal_keys_in_sibling_objects_pass() {
        check(br#"{"a": {"x": 1}, "b": {"x": 2}, "l": [{"x": 1}, {"x": 2}]}"#).expect("fine");
        let v: serde_json::Value = from_slice(br#"{"a": 1}"#).expect("decodes");
        assert_eq!(v["a"], 1);
    }

    proptest::proptest! {
        /// Whatever the bytes, the check answers (no panic, no stack
        /// overflow: serde_json's depth limit holds), and what it passes
        /// serde_json reads too.
        #[test]
        fn any_bytes_are_answered_and_what_passes_is_json(
            bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512),
            depth in 0usize..400,
        ) {
            let mut nested = "[".repeat(depth).into_bytes();
            nested.extend_from_slice(&bytes);
            for input in [bytes.as_slice(), nested.as_slice()] {
                if check(input).is_ok() {
                    proptest::prop_assert!(serde_json::from_slice::<serde_json::Value>(input).is_ok());
                }
            }
        }
    }

    #[test]
    fn trailing_bytes_and_bad_json_are_refused() {
        assert!(check(br#"{"a": 1} x"#).is_err());
        assert!(check(b"{").is_err());
    }
}
