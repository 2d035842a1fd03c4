//! Email addresses as mailpush accepts them: an RFC 5321 path that is also a valid RFC 5322 addr-spec,
//! with IDN domains converted to their ASCII (A-label) form, and the `Alias <addr>` mailbox form Tencent uses.

use std::fmt;

/// Why an address was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    /// Empty input.
    #[error("the address is empty")]
    Empty,
    /// CR, LF or NUL anywhere: header injection, never valid.
    #[error("the address contains a line break or NUL")]
    ControlCharacter,
    /// No `@`, or nothing on one side of it.
    #[error("the address needs a local part and a domain separated by @")]
    MissingAt,
    /// The local part breaks RFC 5321 (dot-atom or quoted-string) or is longer than 64 octets.
    #[error("the local part is not valid: {0}")]
    InvalidLocalPart(&'static str),
    /// The domain is not a valid (IDN) host name.
    #[error("the domain is not valid: {0}")]
    InvalidDomain(&'static str),
    /// The whole path is longer than RFC 5321's 254 octets.
    #[error("the address is longer than 254 octets")]
    TooLong,
    /// The display name in `Alias <addr>` is not acceptable.
    #[error("the sender name is not valid: {0}")]
    InvalidDisplayName(&'static str),
}

/// A validated address. The domain is kept lower-case ASCII (IDN converted to punycode);
/// the local part keeps its case because RFC 5321 lets the receiving host decide.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EmailAddress {
    full: String,
    at: usize,
}

const MAX_LOCAL: usize = 64;
const MAX_PATH: usize = 254;
const MAX_DOMAIN: usize = 253;

fn is_atext(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c) || !c.is_ascii()
}

fn validate_local(local: &str) -> Result<(), AddressError> {
    if local.is_empty() {
        return Err(AddressError::MissingAt);
    }
    if local.len() > MAX_LOCAL {
        return Err(AddressError::InvalidLocalPart("longer than 64 octets"));
    }
    if let Some(inner) = local.strip_prefix('"') {
        let inner = inner
            .strip_suffix('"')
            .ok_or(AddressError::InvalidLocalPart("unterminated quoted string"))?;
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some(q) if (' '..='~').contains(&q) => {}
                    _ => return Err(AddressError::InvalidLocalPart("bad quoted pair")),
                },
                '"' => return Err(AddressError::InvalidLocalPart("unescaped quote")),
                c if c.is_ascii_control() => {
                    return Err(AddressError::InvalidLocalPart("control character"));
                }
                _ => {}
            }
        }
        return Ok(());
    }
    for atom in local.split('.') {
        if atom.is_empty() {
            return Err(AddressError::InvalidLocalPart(
                "empty atom (leading, trailing or double dot)",
            ));
        }
        if !atom.chars().all(is_atext) {
            return Err(AddressError::InvalidLocalPart("character not allowed outside quotes"));
        }
    }
    Ok(())
}

/// Converts a (possibly internationalised) domain to lower-case ASCII and checks it is a host name.
pub fn normalize_domain(domain: &str) -> Result<String, AddressError> {
    let domain = domain.strip_suffix('.').unwrap_or(domain);
    if domain.is_empty() {
        return Err(AddressError::MissingAt);
    }
    if domain.starts_with('[') {
        return Err(AddressError::InvalidDomain("address literals are not accepted"));
    }
    let ascii = if domain.is_ascii() {
        domain.to_ascii_lowercase()
    } else {
        idna::domain_to_ascii(domain).map_err(|_| AddressError::InvalidDomain("not a valid internationalised name"))?
    };
    if ascii.len() > MAX_DOMAIN {
        return Err(AddressError::InvalidDomain("longer than 253 octets"));
    }
    let mut labels = 0;
    for label in ascii.split('.') {
        labels += 1;
        if label.is_empty() || label.len() > 63 {
            return Err(AddressError::InvalidDomain("a label is empty or longer than 63 octets"));
        }
        if !label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(AddressError::InvalidDomain(
                "only letters, digits and hyphens are allowed",
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(AddressError::InvalidDomain("a label starts or ends with a hyphen"));
        }
    }
    if labels < 2 {
        return Err(AddressError::InvalidDomain("a fully qualified domain is required"));
    }
    if ascii
        .rsplit('.')
        .next()
        .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(AddressError::InvalidDomain("the top-level label is numeric"));
    }
    Ok(ascii)
}

impl EmailAddress {
    /// Parses and validates `local@domain`. Surrounding spaces are ignored; CR, LF and NUL are refused anywhere.
    pub fn parse(input: &str) -> Result<Self, AddressError> {
        if input.contains(['\r', '\n', '\0']) {
            return Err(AddressError::ControlCharacter);
        }
        let input = input.trim();
        if input.is_empty() {
            return Err(AddressError::Empty);
        }
        let at = input.rfind('@').ok_or(AddressError::MissingAt)?;
        let (local, domain) = (&input[..at], &input[at + 1..]);
        validate_local(local)?;
        let domain = normalize_domain(domain)?;
        let full = format!("{local}@{domain}");
        if full.len() > MAX_PATH {
            return Err(AddressError::TooLong);
        }
        Ok(EmailAddress { at: local.len(), full })
    }

    /// `local@domain`, domain in ASCII.
    pub fn as_str(&self) -> &str {
        &self.full
    }

    /// The part before the `@`.
    pub fn local_part(&self) -> &str {
        &self.full[..self.at]
    }

    /// The domain, lower-case ASCII (punycode for IDN).
    pub fn domain(&self) -> &str {
        &self.full[self.at + 1..]
    }

    /// The domain in Unicode form, for display.
    pub fn domain_unicode(&self) -> String {
        idna::domain_to_unicode(self.domain()).0
    }

    /// A case-insensitive key for matching (suppression lists, per-recipient limits).
    pub fn normalized(&self) -> String {
        self.full.to_lowercase()
    }

    /// True when the local part needs SMTPUTF8 (RFC 6531) to be transmitted.
    pub fn needs_smtputf8(&self) -> bool {
        !self.local_part().is_ascii()
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.full)
    }
}

impl std::str::FromStr for EmailAddress {
    type Err = AddressError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EmailAddress::parse(s)
    }
}

impl TryFrom<String> for EmailAddress {
    type Error = AddressError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        EmailAddress::parse(&s)
    }
}

impl From<EmailAddress> for String {
    fn from(a: EmailAddress) -> String {
        a.full
    }
}

/// An address with an optional display name: `Alias <user@example.com>` or a bare address.
/// Tencent forbids `:` in the alias; mailpush also refuses `<`, `>` and control characters there.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Mailbox {
    /// The display name, without surrounding quotes.
    pub name: Option<String>,
    /// The address.
    pub address: EmailAddress,
}

/// Longest display name accepted, in characters.
const MAX_DISPLAY_NAME: usize = 256;

impl Mailbox {
    /// Parses `Alias <addr>`, `"Alias" <addr>`, `<addr>` or `addr`.
    pub fn parse(input: &str) -> Result<Self, AddressError> {
        if input.contains(['\r', '\n', '\0']) {
            return Err(AddressError::ControlCharacter);
        }
        let input = input.trim();
        let Some(open) = input.rfind('<') else {
            return Ok(Mailbox {
                name: None,
                address: EmailAddress::parse(input)?,
            });
        };
        let rest = &input[open + 1..];
        let addr = rest
            .strip_suffix('>')
            .ok_or(AddressError::InvalidDisplayName("missing closing >"))?;
        let address = EmailAddress::parse(addr)?;
        let raw_name = input[..open].trim();
        let name = raw_name
            .strip_prefix('"')
            .and_then(|n| n.strip_suffix('"'))
            .unwrap_or(raw_name)
            .trim();
        if name.is_empty() {
            return Ok(Mailbox { name: None, address });
        }
        if name.contains(':') {
            return Err(AddressError::InvalidDisplayName("a colon is not allowed in the alias"));
        }
        if name.contains(['<', '>', '"']) || name.chars().any(char::is_control) {
            return Err(AddressError::InvalidDisplayName(
                "<, >, quotes and control characters are not allowed",
            ));
        }
        if name.chars().count() > MAX_DISPLAY_NAME {
            return Err(AddressError::InvalidDisplayName("longer than 256 characters"));
        }
        Ok(Mailbox {
            name: Some(name.to_string()),
            address,
        })
    }

    /// A mailbox without a display name.
    pub fn bare(address: EmailAddress) -> Self {
        Mailbox { name: None, address }
    }
}

impl fmt::Display for Mailbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(n) => write!(f, "{n} <{}>", self.address),
            None => write!(f, "{}", self.address),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_common_forms() {
        for ok in [
            "a@example.com",
            "first.last+tag@sub.example.co.uk",
            "\"quoted local\"@example.com",
            "o'brien@example.org",
            "USER@EXAMPLE.COM",
            "用户@例子.广告",
            "x@münchen.de",
            "a@example.com.",
        ] {
            assert!(EmailAddress::parse(ok).is_ok(), "{ok}");
        }
        let a = EmailAddress::parse("Bob@Example.COM").unwrap();
        assert_eq!(a.as_str(), "Bob@example.com");
        assert_eq!(a.local_part(), "Bob");
        assert_eq!(a.domain(), "example.com");
        assert_eq!(
            EmailAddress::parse("x@münchen.de").unwrap().domain(),
            "xn--mnchen-3ya.de"
        );
        assert_eq!(
            EmailAddress::parse("x@münchen.de").unwrap().domain_unicode(),
            "münchen.de"
        );
    }

    #[test]
    fn refuses_bad_forms() {
        for bad in [
            "",
            "plain",
            "@example.com",
            "a@",
            "a..b@example.com",
            ".a@example.com",
            "a.@example.com",
            "a b@example.com",
            "a@localhost",
            "a@-example.com",
            "a@exa_mple.com",
            "a@[127.0.0.1]",
            "a@example.123",
            "a@example.com\r\nBcc: x@evil.com",
            "a\0@example.com",
            "\"unterminated@example.com",
        ] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad:?}");
        }
        let long_local = format!("{}@example.com", "a".repeat(65));
        assert!(EmailAddress::parse(&long_local).is_err());
        let long_label = format!("a@{}.com", "b".repeat(64));
        assert!(EmailAddress::parse(&long_label).is_err());
    }

    #[test]
    fn mailbox_forms() {
        let m = Mailbox::parse("Acme Support <support@acme.com>").unwrap();
        assert_eq!(m.name.as_deref(), Some("Acme Support"));
        assert_eq!(m.address.as_str(), "support@acme.com");
        assert_eq!(m.to_string(), "Acme Support <support@acme.com>");
        let m = Mailbox::parse("\"腾讯云\" <noreply@mail.qcloud.com>").unwrap();
        assert_eq!(m.name.as_deref(), Some("腾讯云"));
        assert_eq!(Mailbox::parse("<a@b.com>").unwrap().name, None);
        assert_eq!(Mailbox::parse("a@b.com").unwrap().name, None);
        assert!(matches!(
            Mailbox::parse("Bad: Name <a@b.com>"),
            Err(AddressError::InvalidDisplayName(_))
        ));
        assert!(Mailbox::parse("Name <a@b.com").is_err());
        assert!(Mailbox::parse("Name\n <a@b.com>").is_err());
    }

    fn atom() -> impl Strategy<Value = String> {
        "[a-zA-Z0-9!#$%&'*+/=?^_`{|}~-]{1,10}"
    }

    fn label() -> impl Strategy<Value = String> {
        "[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?"
    }

    proptest! {
        #[test]
        fn never_panics(s in "\\PC*") {
            let _ = EmailAddress::parse(&s);
            let _ = Mailbox::parse(&s);
        }

        #[test]
        fn valid_addresses_round_trip(
            atoms in prop::collection::vec(atom(), 1..4),
            labels in prop::collection::vec(label(), 1..4),
            tld in "[a-z]{2,6}",
        ) {
            let local = atoms.join(".");
            let domain = format!("{}.{tld}", labels.join("."));
            let input = format!("{local}@{domain}");
            prop_assume!(input.len() <= 254 && local.len() <= 64);
            let parsed = EmailAddress::parse(&input).unwrap();
            prop_assert_eq!(parsed.as_str(), input.as_str());
            prop_assert_eq!(parsed.local_part(), local.as_str());
            let again = EmailAddress::parse(parsed.as_str()).unwrap();
            prop_assert_eq!(again, parsed);
        }

        #[test]
        fn control_characters_are_always_refused(
            prefix in "[a-z]{0,5}", suffix in "[a-z]{0,5}", c in prop::sample::select(vec!['\r', '\n', '\0'])
        ) {
            let s = format!("{prefix}{c}{suffix}@example.com");
            prop_assert_eq!(EmailAddress::parse(&s), Err(AddressError::ControlCharacter));
            let m = format!("Name{c} <a@example.com>");
            prop_assert_eq!(Mailbox::parse(&m), Err(AddressError::ControlCharacter));
        }
    }
}
