//! Identifiers. MessageIds are time-ordered (UUIDv7) so queue and status indexes stay append-mostly.

use std::fmt;

/// The id `SendEmail` returns and `GetSendEmailStatus` takes. Also the VERP key and the bulk id of callbacks.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct MessageId(String);

/// Prefix of every MessageId, so a stray id is recognisable in logs and bounce addresses.
const PREFIX: &str = "mp-";

impl MessageId {
    /// A new, unique, time-ordered id.
    pub fn generate() -> Self {
        MessageId(format!("{PREFIX}{}", uuid::Uuid::now_v7().simple()))
    }

    /// Accepts an id that has the shape mailpush generates (prefix + 32 hex digits); anything else is foreign.
    pub fn parse(s: &str) -> Option<Self> {
        let hex = s.strip_prefix(PREFIX)?;
        (hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()))
            .then(|| MessageId(s.to_string()))
    }

    /// Wraps a stored id without checking it (store rows were checked on the way in).
    pub fn from_stored(s: String) -> Self {
        MessageId(s)
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The RFC 5322 `Message-ID` header value for mail sent from `domain`.
    pub fn header_value(&self, domain: &str) -> String {
        format!("<{}@{domain}>", self.0)
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A new RequestId in the UUID form Tencent uses.
pub fn request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// An account's row id.
pub type AccountId = i64;

/// A template's row id (Tencent `TemplateID`). Never reused after a delete.
pub type TemplateId = i64;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_parse_and_sort_by_time() {
        let a = MessageId::generate();
        let b = MessageId::generate();
        assert!(MessageId::parse(a.as_str()).is_some());
        assert!(a < b);
        assert!(MessageId::parse("mp-xyz").is_none());
        assert!(MessageId::parse("other-0123456789abcdef0123456789abcdef").is_none());
        assert_eq!(a.header_value("example.com"), format!("<{a}@example.com>"));
    }
}
