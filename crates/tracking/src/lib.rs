//! Engagement tracking without storage: signed, URL-safe tokens naming what an open pixel, a click redirect or
//! an unsubscribe link is about, and the HTML rewriting that puts them into a mail (click redirects on links,
//! the open pixel, the unsubscribe footer).
//!
//! A token is `base64url(nonce ‖ AES-256-GCM(payload))`, with keys derived from the tracking secret. The
//! payload carries the kind, the account, the message, the recipient and (for clicks) the target URL or (for
//! unsubscribes) the sending domain, so the public endpoints need no lookup to know what a request is about;
//! it is encrypted so that a forwarded link does not show the recipient's address, and authenticated so that
//! nobody can make mailpush redirect to a URL it did not issue (no open redirect). The nonce is synthetic
//! (an HMAC of the payload under its own key): equal payloads give equal tokens, nothing else repeats it.
//!
//! Links sent before encryption carry the legacy form `base64url(payload) "." base64url(HMAC-SHA256(key,
//! payload))`; [`TokenKey::decode`] still accepts it (never issued any more).

#![warn(missing_docs)]

pub mod footer;
pub mod html;

pub use footer::{FooterLanguage, footer_html, footer_text};
pub use html::{add_open_pixel, rewrite_links};

use aws_lc_rs::{aead, hmac};
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

/// The keys tokens are sealed with (derived from a secret the caller derives from the master key).
pub struct TokenKey {
    /// Verifies legacy (signed, readable) tokens.
    key: hmac::Key,
    /// Encrypts and authenticates tokens.
    aead: aead::LessSafeKey,
    /// Derives each token's nonce from its payload.
    nonce: hmac::Key,
}

/// Associated data of every sealed token (binds the ciphertext to its use).
const AAD: &[u8] = b"mailpush tracking token v2";

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(…)")
    }
}

const SEP: char = '\n';

impl TokenKey {
    /// A key from secret bytes (at least 32 bytes of entropy expected).
    pub fn new(secret: &[u8]) -> TokenKey {
        let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
        let enc = hmac::sign(&key, b"mailpush tracking token encryption key");
        let nonce = hmac::sign(&key, b"mailpush tracking token nonce key");
        // HMAC-SHA256 output is exactly an AES-256 key: this cannot fail.
        let unbound = aead::UnboundKey::new(&aead::AES_256_GCM, enc.as_ref()).expect("a 32-byte AES-256 key");
        TokenKey {
            key,
            aead: aead::LessSafeKey::new(unbound),
            nonce: hmac::Key::new(hmac::HMAC_SHA256, nonce.as_ref()),
        }
    }

    /// Encodes and encrypts `token`.
    pub fn encode(&self, token: &Token) -> String {
        let payload = payload_of(token);
        let mut nonce = [0u8; aead::NONCE_LEN];
        nonce.copy_from_slice(&hmac::sign(&self.nonce, payload.as_bytes()).as_ref()[..aead::NONCE_LEN]);
        let mut sealed = payload.into_bytes();
        // Sealing with a valid key only fails for inputs beyond GCM's 64 GB limit; never let the clear payload
        // out if it did: a token that decodes to nothing is a dead link, not a leak.
        if self
            .aead
            .seal_in_place_append_tag(
                aead::Nonce::assume_unique_for_key(nonce),
                aead::Aad::from(AAD),
                &mut sealed,
            )
            .is_err()
        {
            return String::new();
        }
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        URL_SAFE_NO_PAD.encode(out)
    }

    /// The legacy signed (readable) form, for tests of links sent before encryption.
    #[cfg(test)]
    fn encode_legacy(&self, token: &Token) -> String {
        let payload = payload_of(token);
        let sig = hmac::sign(&self.key, payload.as_bytes());
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(payload),
            URL_SAFE_NO_PAD.encode(sig.as_ref())
        )
    }

    /// Verifies and decodes a token (either form); `None` for anything not issued with this key, malformed or
    /// too long.
    pub fn decode(&self, text: &str) -> Option<Token> {
        if text.len() > MAX_TOKEN_LEN {
            return None;
        }
        let payload = match text.split_once('.') {
            // Legacy: readable payload and its signature.
            Some((payload, sig)) => {
                let payload = URL_SAFE_NO_PAD.decode(payload).ok()?;
                let sig = URL_SAFE_NO_PAD.decode(sig).ok()?;
                hmac::verify(&self.key, &payload, &sig).ok()?;
                payload
            }
            None => {
                let raw = URL_SAFE_NO_PAD.decode(text).ok()?;
                if raw.len() < aead::NONCE_LEN + aead::AES_256_GCM.tag_len() {
                    return None;
                }
                let (nonce, sealed) = raw.split_at(aead::NONCE_LEN);
                let nonce = aead::Nonce::try_assume_unique_for_key(nonce).ok()?;
                let mut sealed = sealed.to_vec();
                let plain = self.aead.open_in_place(nonce, aead::Aad::from(AAD), &mut sealed).ok()?;
                plain.to_vec()
            }
        };
        parse_payload(payload)
    }
}

/// The payload text of `token`: fields separated by [`SEP`].
fn payload_of(token: &Token) -> String {
    let (tag, extra) = match &token.kind {
        TokenKind::Open => ("o", ""),
        TokenKind::Click(url) => ("c", url.as_str()),
        TokenKind::Unsubscribe(domain) => ("u", domain.as_str()),
    };
    format!(
        "{tag}{SEP}{}{SEP}{}{SEP}{}{SEP}{extra}",
        token.account_id, token.message_id, token.recipient
    )
}

/// Reads a verified payload back.
fn parse_payload(payload: Vec<u8>) -> Option<Token> {
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

    /// One token kind of each sort, the click to `url`.
    fn every_kind(url: &str) -> [TokenKind; 3] {
        [
            TokenKind::Open,
            TokenKind::Click(url.into()),
            TokenKind::Unsubscribe("sender.example".into()),
        ]
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
        for kind in every_kind("https://example.com/a?b=c&d=e#f") {
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
        // Legacy form: swap the payload for one naming another URL, keep the signature.
        let legacy = key().encode_legacy(&token(TokenKind::Click("https://example.com/".into())));
        let (_, sig) = legacy.split_once('.').unwrap();
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
    fn tokens_do_not_reveal_the_recipient() {
        let t = token(TokenKind::Unsubscribe("sender.example".into()));
        let text = key().encode(&t);
        assert!(!text.contains('.'), "the new form has no readable part: {text}");
        let raw = URL_SAFE_NO_PAD.decode(&text).expect("base64url");
        for needle in [&b"a@example.com"[..], b"example.com", b"0192-abc", b"sender.example"] {
            assert!(!raw.windows(needle.len()).any(|w| w == needle), "{needle:?} readable");
        }
        assert_eq!(key().decode(&text), Some(t));
    }

    #[test]
    fn links_sent_before_encryption_still_work() {
        for kind in every_kind("https://example.com/x") {
            let t = token(kind);
            let legacy = key().encode_legacy(&t);
            assert!(legacy.contains('.'));
            assert_eq!(key().decode(&legacy), Some(t.clone()));
            assert_eq!(
                TokenKey::new(b"another key another key another k").decode(&legacy),
                None
            );
        }
    }

    #[test]
    fn a_tampered_sealed_token_is_refused() {
        let text = key().encode(&token(TokenKind::Click("https://example.com/".into())));
        let mut raw = URL_SAFE_NO_PAD.decode(&text).unwrap();
        let last = raw.len() - 20;
        raw[last] ^= 1;
        assert_eq!(key().decode(&URL_SAFE_NO_PAD.encode(&raw)), None);
        assert_eq!(key().decode(&URL_SAFE_NO_PAD.encode(&raw[..20])), None);
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
