//! Request bodies as JSON values, refusing an object that repeats a key. serde_json keeps the last value of
//! a repeated key silently; a client (or a proxy in between) that sends `{"Destination": [...], …,
//! "Destination": [...]}` must learn that one of them was ignored, not have mail sent to the other list.

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::fmt;

/// Why a body was refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum JsonError {
    /// An object names this key twice.
    DuplicateKey(String),
    /// Not JSON at all (serde_json's message).
    Syntax(String),
}

/// Marks our own error among serde_json's, so it can be told apart from a syntax error.
const DUPLICATE: &str = "\u{0}duplicate key\u{0}";

/// Parses `body` like `serde_json::from_slice::<Value>`, refusing repeated keys at any depth.
pub(crate) fn parse_strict(body: &[u8]) -> Result<Value, JsonError> {
    match serde_json::from_slice::<Strict>(body) {
        Ok(Strict(v)) => Ok(v),
        Err(e) => {
            let text = e.to_string();
            match text.strip_prefix(DUPLICATE) {
                Some(rest) => {
                    let key = rest.split(DUPLICATE).next().unwrap_or_default().to_string();
                    Err(JsonError::DuplicateKey(key))
                }
                None => Err(JsonError::Syntax(text)),
            }
        }
    }
}

struct Strict(Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(Strict(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                return Err(de::Error::custom(format!("{DUPLICATE}{key}{DUPLICATE}")));
            }
            let Strict(v) = map.next_value()?;
            out.insert(key, v);
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_values_as_serde_json_without_duplicates() {
        for text in [
            r#"{"a":1,"b":[true,null,-2,3.5,"x"],"c":{"d":{}},"e":18446744073709551615}"#,
            "[]",
            r#""é\u00e9""#,
        ] {
            let ours = parse_strict(text.as_bytes()).expect("valid");
            let theirs: Value = serde_json::from_str(text).expect("valid");
            assert_eq!(ours, theirs, "{text}");
        }
    }

    #[test]
    fn repeated_keys_are_refused_at_any_depth() {
        assert_eq!(
            parse_strict(br#"{"Destination":["a@x"],"Subject":"s","Destination":["b@y"]}"#),
            Err(JsonError::DuplicateKey("Destination".into()))
        );
        assert_eq!(
            parse_strict(br#"{"Template":{"TemplateID":1,"TemplateID":2}}"#),
            Err(JsonError::DuplicateKey("TemplateID".into()))
        );
        assert_eq!(
            parse_strict(br#"[{"a":1},{"a":2,"a":3}]"#),
            Err(JsonError::DuplicateKey("a".into()))
        );
        // Same key in sibling objects is fine; so are keys differing only in case.
        assert!(parse_strict(br#"[{"a":1},{"a":2,"A":3}]"#).is_ok());
    }

    #[test]
    fn syntax_errors_stay_syntax_errors() {
        assert!(matches!(parse_strict(b"{\"a\": "), Err(JsonError::Syntax(_))));
        assert!(matches!(parse_strict(b"{\"a\":1} x"), Err(JsonError::Syntax(_))));
    }
}
