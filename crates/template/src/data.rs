//! TemplateData: the per-send values filling a template's placeholders.

use handlebars::Context;
use serde_json::{Map, Value};

use crate::UNSUBSCRIBE_PLACEHOLDER;

/// How strictly sender-supplied TemplateData is checked.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct DataPolicy {
    /// Reject string values containing HTML markup (`<` followed by a letter, `/`, `!` or
    /// `?`, e.g. `<script>`, `<a`, `</b>`, `<!--`). Default `true`, as the Tencent API
    /// does. When `false`, such values are accepted and still rendered safely: escaped in
    /// Html, verbatim in Text and Subject.
    pub reject_html: bool,
    /// Allow keys the service fills itself ([`UNSUBSCRIBE_PLACEHOLDER`]). Default `false`:
    /// the unsubscribe placeholder is the one link review lets through, so a sender must
    /// not be able to point it elsewhere.
    pub allow_reserved_keys: bool,
}

impl Default for DataPolicy {
    fn default() -> Self {
        Self {
            reject_html: true,
            allow_reserved_keys: false,
        }
    }
}

/// Why TemplateData was refused.
///
/// Suggested Tencent mapping (done in `mailpush-core`): `NotJson` →
/// `FailedOperation.WrongContentJson`; every other variant →
/// `InvalidParameterValue.InValidTemplateData`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateDataError {
    /// The text is not valid JSON.
    #[error("TemplateData is not valid JSON: {0}")]
    NotJson(String),
    /// Valid JSON, but not an object (`[]`, `"x"`, `3`).
    #[error("TemplateData must be a JSON object of name/value pairs")]
    NotAnObject,
    /// A value is an object or array; only strings, numbers and booleans are allowed.
    #[error("TemplateData value {0:?} is an object or array; only strings, numbers and booleans are allowed")]
    NestedValue(String),
    /// A value is `null`, which would render as an empty string.
    #[error("TemplateData value {0:?} is null; give a string, number or boolean")]
    NullValue(String),
    /// A string value contains HTML markup and the policy rejects it.
    #[error("TemplateData value {0:?} contains HTML markup")]
    HtmlInValue(String),
    /// A key the service fills itself.
    #[error("TemplateData key {0:?} is reserved: the service fills it")]
    ReservedKey(String),
}

/// Validated per-send values: a JSON object whose values are strings, numbers or booleans.
///
/// `null` is refused ([`TemplateDataError::NullValue`]) rather than rendered as an empty
/// string, for the same reason a missing value is an error. Keys that no placeholder uses
/// are allowed and ignored. Cheap to render from repeatedly: the handlebars context is
/// built once here, not per render.
#[derive(Debug, Clone)]
pub struct TemplateData {
    context: Context,
}

impl Default for TemplateData {
    fn default() -> Self {
        Self::empty()
    }
}

impl TemplateData {
    /// No values: renders templates without placeholders.
    pub fn empty() -> Self {
        Self {
            context: Context::from(Value::Object(Map::new())),
        }
    }

    /// Parses and validates the TemplateData JSON string of a send request.
    pub fn parse(json: &str, policy: &DataPolicy) -> Result<Self, TemplateDataError> {
        let value: Value = serde_json::from_str(json).map_err(|e| TemplateDataError::NotJson(e.to_string()))?;
        Self::from_value(value, policy)
    }

    /// Validates an already-parsed JSON value.
    pub fn from_value(value: Value, policy: &DataPolicy) -> Result<Self, TemplateDataError> {
        let Value::Object(map) = value else {
            return Err(TemplateDataError::NotAnObject);
        };
        for (key, value) in &map {
            check_entry(key, value, policy)?;
        }
        Ok(Self {
            context: Context::from(Value::Object(map)),
        })
    }

    /// Builds data from `(name, value)` pairs, validated like [`TemplateData::parse`].
    pub fn from_pairs<I, K, V>(pairs: I, policy: &DataPolicy) -> Result<Self, TemplateDataError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<Value>,
    {
        let map: Map<String, Value> = pairs.into_iter().map(|(k, v)| (k.into(), v.into())).collect();
        Self::from_value(Value::Object(map), policy)
    }

    /// Sets the service-filled [`UNSUBSCRIBE_PLACEHOLDER`] value (no policy checks: the
    /// service generates it).
    pub fn set_unsubscribe_url(&mut self, url: impl Into<String>) {
        if let Value::Object(map) = self.context.data_mut() {
            map.insert(UNSUBSCRIBE_PLACEHOLDER.to_owned(), Value::String(url.into()));
        }
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.as_map().and_then(|m| m.get(key))
    }

    /// Whether `key` has a value.
    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        self.as_map().map_or(0, Map::len)
    }

    /// Whether there are no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The keys, in sorted order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.as_map().into_iter().flat_map(|m| m.keys().map(String::as_str))
    }

    fn as_map(&self) -> Option<&Map<String, Value>> {
        self.context.data().as_object()
    }

    pub(crate) fn context(&self) -> &Context {
        &self.context
    }
}

fn check_entry(key: &str, value: &Value, policy: &DataPolicy) -> Result<(), TemplateDataError> {
    if !policy.allow_reserved_keys && key == UNSUBSCRIBE_PLACEHOLDER {
        return Err(TemplateDataError::ReservedKey(key.to_owned()));
    }
    match value {
        Value::Null => Err(TemplateDataError::NullValue(key.to_owned())),
        Value::Array(_) | Value::Object(_) => Err(TemplateDataError::NestedValue(key.to_owned())),
        Value::String(s) if policy.reject_html && contains_markup(s) => {
            Err(TemplateDataError::HtmlInValue(key.to_owned()))
        }
        Value::String(_) | Value::Number(_) | Value::Bool(_) => Ok(()),
    }
}

/// `<` followed by a letter, `/`, `!` or `?`: the start of a tag, end tag, comment or
/// processing instruction. A bare `<` ("a < b", "<3") is text, not markup.
fn contains_markup(s: &str) -> bool {
    s.as_bytes()
        .windows(2)
        .any(|w| w[0] == b'<' && (w[1].is_ascii_alphabetic() || matches!(w[1], b'/' | b'!' | b'?')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_table() {
        let strict = DataPolicy::default();
        let table: &[(&str, Result<usize, TemplateDataError>)] = &[
            (r#"{"name":"张三","code":1234,"vip":true,"ratio":1.5}"#, Ok(4)),
            ("{}", Ok(0)),
            (r#"{"a":"a < b, <3"}"#, Ok(1)),
            ("", Err(TemplateDataError::NotJson(String::new()))),
            ("{name:1}", Err(TemplateDataError::NotJson(String::new()))),
            ("[1]", Err(TemplateDataError::NotAnObject)),
            (r#""x""#, Err(TemplateDataError::NotAnObject)),
            (r#"{"a":{"b":1}}"#, Err(TemplateDataError::NestedValue("a".into()))),
            (r#"{"a":[1]}"#, Err(TemplateDataError::NestedValue("a".into()))),
            (r#"{"a":null}"#, Err(TemplateDataError::NullValue("a".into()))),
            (
                r#"{"a":"<script>x</script>"}"#,
                Err(TemplateDataError::HtmlInValue("a".into())),
            ),
            (r#"{"a":"x</b>"}"#, Err(TemplateDataError::HtmlInValue("a".into()))),
            (r#"{"a":"<!-- x"}"#, Err(TemplateDataError::HtmlInValue("a".into()))),
            (
                r#"{"unsubscribe_url":"https://evil"}"#,
                Err(TemplateDataError::ReservedKey("unsubscribe_url".into())),
            ),
        ];
        for (json, want) in table {
            let got = TemplateData::parse(json, &strict).map(|d| d.len());
            match (got, want) {
                (Err(TemplateDataError::NotJson(_)), Err(TemplateDataError::NotJson(_))) => {}
                (got, want) => assert_eq!(&got, want, "{json}"),
            }
        }
    }

    #[test]
    fn lenient_policy_and_accessors() {
        let lenient = DataPolicy {
            reject_html: false,
            allow_reserved_keys: true,
        };
        let data = TemplateData::parse(r#"{"a":"<script>","unsubscribe_url":"u"}"#, &lenient).expect("lenient accepts");
        assert_eq!(data.get("a"), Some(&Value::String("<script>".into())));
        assert_eq!(data.keys().collect::<Vec<_>>(), vec!["a", "unsubscribe_url"]);
        let mut data = TemplateData::from_pairs([("n", 1)], &DataPolicy::default()).expect("valid");
        data.set_unsubscribe_url("https://u.example/x");
        assert!(data.contains_key(UNSUBSCRIBE_PLACEHOLDER));
        assert!(TemplateData::empty().is_empty());
    }
}
