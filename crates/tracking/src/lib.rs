//! Engagement tracking without storage: signed, URL-safe tokens naming what an open pixel, a click redirect or
//! an unsubscribe link is about, and the HTML rewriting that puts them into a mail (click redirects on links,
//! the open pixel, the unsubscribe footer).
//!
//! A token is `base64url(payload) "." base64url(HMAC-SHA256(key, payload))`. The payload carries the kind,
//! the account, the message, the recipient and (for clicks) the target URL or (for unsubscribes) the sending
//! domain, so the public endpoints need no lookup to know what a request is about, and nobody can make
//! mailpush redirect to a URL it did not sign (no open redirect).

pub mod footer;
pub mod html;

pub use footer::{FooterLanguage, footer_html, footer_text};
pub use html::{add_open_pixel, rewrite_links};

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Longest token accepted by [`TokenKey::decode`] (a click token carries its URL: 8 KB covers any sane link).
pub const MAX_TOKEN_LEN: usize = 8 * 1024;

/// What a token is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenKind {
    /// The open pixel.
    Open,
    /// A click redirect to this URL (http or https).
    Click(String),
    /// An unsubscribe link binding the recipient to this sending domain.
    Unsubscribe(String),
}

/// The signed content of a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// What it is for.
    pub kind: TokenKind,
    /// The sending account.
    pub account_id: i64,
    /// The message (MessageId text).
    pub message_id: String,
    /// The recipient address.
    pub recipient: String,
}

/// The HMAC key tokens are signed with (derived by the caller from the master key).
pub struct TokenKey {
    key: hmac::Key,
}

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(…)")
    }
}

const SEP: char = '\n';

impl TokenKey {
    /// A key from secret bytes (at least 32 bytes of entropy expected).
    pub fn new(secret: &[u8]) -> TokenKey {
        TokenKey {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
        }
    }

    /// Encodes and signs `token`.
    pub fn encode(&self, token: &Token) -> String {
        let (tag, extra) = match &token.kind {
            TokenKind::Open => ("o", ""),
            TokenKind::Click(url) => ("c", url.as_str()),
            TokenKind::Unsubscribe(domain) => ("u", domain.as_str()),
        };
        let payload = format!(
            "{tag}{SEP}{}{SEP}{}{SEP}{}{SEP}{extra}",
            token.account_id, token.message_id, token.recipient
        );
        let sig = hmac::sign(&self.key, payload.as_bytes());
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(payload),
            URL_SAFE_NO_PAD.encode(sig.as_ref())
        )
    }

    /// Verifies and decodes a token; `None` for anything not signed by this key, malformed or too long.
    pub fn decode(&self, text: &str) -> Option<Token> {
        if text.len() > MAX_TOKEN_LEN {
            return None;
        }
        let (payload, sig) = text.split_once('.')?;
        let payload = URL_SAFE_NO_PAD.decode(payload).ok()?;
        let sig = URL_SAFE_NO_PAD.decode(sig).ok()?;
        hmac::verify(&self.key, &payload, &sig).ok()?;
        let payload = String::from_utf8(payload).ok()?;
        let mut parts = payload.splitn(5, SEP);
        let tag = parts.next()?;
        let account_id = parts.next()?.parse().ok()?;
        let message_id = parts.next()?.to_string();
        let recipient = parts.next()?.to_string();
        let extra = parts.next()?.to_string();
        let kind = match tag {
            "o" => TokenKind::Open,
            "c" if is_http_url(&extra) => TokenKind::Click(extra),
            "u" if !extra.is_empty() => TokenKind::Unsubscribe(extra),
            _ => return None,
        };
        Some(Token {
            kind,
            account_id,
            message_id,
            recipient,
        })
    }
}

/// Whether `url` is an absolute http(s) URL without control characters (the only links rewritten or followed).
pub fn is_http_url(url: &str) -> bool {
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    (lower.starts_with("http://") || lower.starts_with("https://"))
        && url.len() > 8
        && !url.chars().any(|c| c.is_control() || c == ' ')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> TokenKey {
        TokenKey::new(b"0123456789abcdef0123456789abcdef")
    }

    fn token(kind: TokenKind) -> Token {
        Token {
            kind,
            account_id: 7,
            message_id: "0192-abc".into(),
            recipient: "a@example.com".into(),
        }
    }

    #[test]
    fn round_trip_every_kind() {
        for kind in [
            TokenKind::Open,
            TokenKind::Click("https://example.com/a?b=c&d=e#f".into()),
            TokenKind::Unsubscribe("sender.example".into()),
        ] {
            let t = token(kind);
            let text = key().encode(&t);
            assert!(text.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)));
            assert_eq!(key().decode(&text), Some(t));
        }
    }

    #[test]
    fn tampered_or_foreign_tokens_are_refused() {
        let text = key().encode(&token(TokenKind::Click("https://example.com/".into())));
        let foreign = TokenKey::new(b"another key another key another k");
        assert_eq!(foreign.decode(&text), None);
        // Swap the payload for one naming another URL, keep the signature.
        let (_, sig) = text.split_once('.').unwrap();
        let evil = URL_SAFE_NO_PAD.encode("c\n7\n0192-abc\na@example.com\nhttps://evil.example/");
        assert_eq!(key().decode(&format!("{evil}.{sig}")), None);
        assert_eq!(key().decode("garbage"), None);
        assert_eq!(key().decode(""), None);
        assert_eq!(key().decode(&"a".repeat(MAX_TOKEN_LEN + 1)), None);
        let mut flipped = text.into_bytes();
        flipped[3] = if flipped[3] == b'A' { b'B' } else { b'A' };
        assert_eq!(key().decode(&String::from_utf8(flipped).unwrap()), None);
    }

    #[test]
    fn a_signed_non_http_click_is_refused() {
        let text = key().encode(&token(TokenKind::Click("javascript:alert(1)".into())));
        assert_eq!(key().decode(&text), None);
    }

    proptest::proptest! {
        #[test]
        fn decode_never_panics(s in "\\PC{0,200}") {
            let _ = key().decode(&s);
        }
    }
}
