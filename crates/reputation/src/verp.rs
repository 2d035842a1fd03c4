//! Signed addresses that route feedback back to the message it is about.
//!
//! - **VERP return path** `mpb-<token>@<sending domain>`: the `MAIL FROM` of every outgoing message. The
//!   sending domain's MX record points at mailpush's inbound MX, so bounces (DSNs) and most feedback loops come
//!   back to it, and the sending domain's SPF record covers the return path. The token names the message.
//! - **Mailto unsubscribe** `mpu-<token>@<bounce MX host>`: the `mailto:` of `List-Unsubscribe`. Its token
//!   names the message and is bound to one recipient.
//!
//! A token is lowercase base32 (RFC 4648 alphabet, no padding) of the 16 bytes of the MessageId followed by
//! an 80-bit HMAC-SHA256 tag (key derived by the caller from the master key; the kind, and for unsubscribes the
//! recipient, are inside the MAC). 42 characters: the local part stays far below RFC 5321's 64, and since it
//! is case-insensitive-safe, an MTA that lowercases (or uppercases) local parts does not break it.

use aws_lc_rs::{constant_time, hmac};
use mailpush_model::MessageId;

/// Local-part prefix of VERP return paths.
pub const BOUNCE_PREFIX: &str = "mpb-";
/// Local-part prefix of mailto-unsubscribe addresses.
pub const UNSUBSCRIBE_PREFIX: &str = "mpu-";
/// Local part of the complaint (feedback loop) address, `fbl@<bounce MX host>`.
pub const COMPLAINT_LOCAL_PART: &str = "fbl";

const TAG_LEN: usize = 10;
const ID_LEN: usize = 16;
const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// What an address on the inbound MX is for, once its token verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InboundAddress {
    /// A VERP return path: feedback about this message.
    ReturnPath(MessageId),
    /// A mailto unsubscribe of this message's recipient whose tag is bound to it (see [`VerpKey::unsubscribe_matches`]).
    Unsubscribe {
        /// The message.
        message_id: MessageId,
        /// The tag to match against the message's recipients.
        tag: [u8; TAG_LEN],
    },
    /// The complaint (feedback loop) address.
    Complaints,
}

/// The HMAC key of VERP and mailto-unsubscribe tokens.
pub struct VerpKey {
    key: hmac::Key,
}

impl std::fmt::Debug for VerpKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("VerpKey(…)")
    }
}

impl VerpKey {
    /// A key from secret bytes (32 bytes derived from the master key expected).
    pub fn new(secret: &[u8]) -> VerpKey {
        VerpKey {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
        }
    }

    fn tag(&self, kind: &[u8], id: &[u8; ID_LEN], recipient: &str) -> [u8; TAG_LEN] {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(kind);
        ctx.update(&[0]);
        ctx.update(id);
        ctx.update(recipient.to_ascii_lowercase().as_bytes());
        let sig = ctx.sign();
        let mut tag = [0u8; TAG_LEN];
        tag.copy_from_slice(&sig.as_ref()[..TAG_LEN]);
        tag
    }

    /// The VERP return path of `message` sent from `domain`; `None` for a MessageId mailpush did not generate.
    pub fn return_path(&self, message: &MessageId, domain: &str) -> Option<String> {
        let id = id_bytes(message)?;
        let token = encode_token(&id, &self.tag(b"bounce", &id, ""));
        Some(format!("{BOUNCE_PREFIX}{token}@{domain}"))
    }

    /// The mailto-unsubscribe address of `recipient` of `message`, at the inbound MX host `host`.
    pub fn unsubscribe_address(&self, message: &MessageId, recipient: &str, host: &str) -> Option<String> {
        let id = id_bytes(message)?;
        let token = encode_token(&id, &self.tag(b"unsubscribe", &id, recipient));
        Some(format!("{UNSUBSCRIBE_PREFIX}{token}@{host}"))
    }

    /// Whether an [`InboundAddress::Unsubscribe`] tag was made for `recipient` of `message`.
    pub fn unsubscribe_matches(&self, message: &MessageId, tag: &[u8; TAG_LEN], recipient: &str) -> bool {
        let Some(id) = id_bytes(message) else { return false };
        constant_time::verify_slices_are_equal(&self.tag(b"unsubscribe", &id, recipient), tag).is_ok()
    }

    /// What `address` (an inbound `RCPT TO`) is for: `None` unless it is one of mailpush's addresses with a
    /// valid token (or the complaint address at one of `complaint_hosts`). Case-insensitive; never panics.
    pub fn parse_address(&self, address: &str, complaint_hosts: &[&str]) -> Option<InboundAddress> {
        let (local, domain) = address.trim().rsplit_once('@')?;
        let local = local.to_ascii_lowercase();
        if local == COMPLAINT_LOCAL_PART {
            return complaint_hosts
                .iter()
                .any(|h| !h.is_empty() && h.eq_ignore_ascii_case(domain.trim_end_matches('.')))
                .then_some(InboundAddress::Complaints);
        }
        if let Some(token) = local.strip_prefix(BOUNCE_PREFIX) {
            let (id, tag) = decode_token(token)?;
            let expected = self.tag(b"bounce", &id, "");
            constant_time::verify_slices_are_equal(&expected, &tag).ok()?;
            return Some(InboundAddress::ReturnPath(message_id(&id)));
        }
        if let Some(token) = local.strip_prefix(UNSUBSCRIBE_PREFIX) {
            let (id, tag) = decode_token(token)?;
            return Some(InboundAddress::Unsubscribe {
                message_id: message_id(&id),
                tag,
            });
        }
        None
    }
}

fn id_bytes(message: &MessageId) -> Option<[u8; ID_LEN]> {
    let hex = MessageId::parse(message.as_str())?
        .as_str()
        .strip_prefix("mp-")?
        .to_string();
    let mut out = [0u8; ID_LEN];
    for (i, pair) in hex.as_bytes().chunks(2).enumerate() {
        let s = std::str::from_utf8(pair).ok()?;
        *out.get_mut(i)? = u8::from_str_radix(s, 16).ok()?;
    }
    Some(out)
}

fn message_id(id: &[u8; ID_LEN]) -> MessageId {
    let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
    MessageId::from_stored(format!("mp-{hex}"))
}

fn encode_token(id: &[u8; ID_LEN], tag: &[u8; TAG_LEN]) -> String {
    let mut bytes = Vec::with_capacity(ID_LEN + TAG_LEN);
    bytes.extend_from_slice(id);
    bytes.extend_from_slice(tag);
    base32_lower(&bytes)
}

fn decode_token(token: &str) -> Option<([u8; ID_LEN], [u8; TAG_LEN])> {
    let bytes = base32_decode(token)?;
    if bytes.len() != ID_LEN + TAG_LEN {
        return None;
    }
    let mut id = [0u8; ID_LEN];
    let mut tag = [0u8; TAG_LEN];
    id.copy_from_slice(&bytes[..ID_LEN]);
    tag.copy_from_slice(&bytes[ID_LEN..]);
    Some((id, tag))
}

fn base32_lower(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 8 / 5 + 1);
    let mut buffer: u32 = 0;
    let mut bits = 0;
    for &b in bytes {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((buffer >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((buffer << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// Decodes [`base32_lower`] text, any case; `None` on a foreign character or a token longer than any we make.
fn base32_decode(text: &str) -> Option<Vec<u8>> {
    if text.len() > 64 {
        return None;
    }
    let mut out = Vec::with_capacity(text.len() * 5 / 8);
    let mut buffer: u32 = 0;
    let mut bits = 0;
    for c in text.bytes() {
        let v = ALPHABET.iter().position(|&a| a == c.to_ascii_lowercase())? as u32;
        buffer = (buffer << 5) | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push(((buffer >> bits) & 0xff) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> VerpKey {
        VerpKey::new(b"0123456789abcdef0123456789abcdef")
    }

    #[test]
    fn return_paths_round_trip_in_any_case() {
        let id = MessageId::generate();
        let rp = key().return_path(&id, "shop.example.com").unwrap();
        let (local, domain) = rp.split_once('@').unwrap();
        assert_eq!(domain, "shop.example.com");
        assert!(local.len() <= 64 && local.starts_with("mpb-"), "{local}");
        assert!(
            local
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        );
        assert_eq!(
            key().parse_address(&rp, &[]),
            Some(InboundAddress::ReturnPath(id.clone()))
        );
        assert_eq!(
            key().parse_address(&rp.to_ascii_uppercase(), &[]),
            Some(InboundAddress::ReturnPath(id))
        );
    }

    #[test]
    fn forged_or_foreign_tokens_are_refused() {
        let id = MessageId::generate();
        let rp = key().return_path(&id, "d.example").unwrap();
        assert_eq!(
            VerpKey::new(b"another key another key another k").parse_address(&rp, &[]),
            None
        );
        // Flip one character of the token.
        let mut bytes = rp.clone().into_bytes();
        bytes[6] = if bytes[6] == b'a' { b'b' } else { b'a' };
        assert_eq!(key().parse_address(&String::from_utf8(bytes).unwrap(), &[]), None);
        assert_eq!(key().parse_address("postmaster@d.example", &["d.example"]), None);
        assert_eq!(key().parse_address("mpb-@d.example", &[]), None);
        assert_eq!(key().parse_address("mpb-0189@d.example", &[]), None);
        assert_eq!(key().parse_address("no-at-sign", &[]), None);
    }

    #[test]
    fn unsubscribe_addresses_are_bound_to_their_recipient() {
        let id = MessageId::generate();
        let addr = key()
            .unsubscribe_address(&id, "Bob@Example.com", "mx.mailpush.test")
            .unwrap();
        let Some(InboundAddress::Unsubscribe { message_id, tag }) = key().parse_address(&addr, &[]) else {
            panic!("{addr}");
        };
        assert_eq!(message_id, id);
        assert!(key().unsubscribe_matches(&id, &tag, "bob@example.com"));
        assert!(!key().unsubscribe_matches(&id, &tag, "alice@example.com"));
        assert!(!key().unsubscribe_matches(&MessageId::generate(), &tag, "bob@example.com"));
    }

    #[test]
    fn the_complaint_address_only_at_the_given_hosts() {
        assert_eq!(
            key().parse_address("FBL@MX.Mailpush.test", &["mx.mailpush.test"]),
            Some(InboundAddress::Complaints)
        );
        assert_eq!(key().parse_address("fbl@other.test", &["mx.mailpush.test"]), None);
        assert_eq!(key().parse_address("fbl@", &[""]), None);
    }

    #[test]
    fn base32_round_trip() {
        for n in 0..40 {
            let bytes: Vec<u8> = (0..n).map(|i| (i * 37 + 11) as u8).collect();
            let text = base32_lower(&bytes);
            assert_eq!(base32_decode(&text).unwrap(), bytes);
        }
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(s in "\\PC{0,120}") {
            let _ = key().parse_address(&s, &["mx.example"]);
        }

        #[test]
        fn parse_never_panics_on_prefixed_garbage(s in "[a-z2-7A-Z0-9]{0,70}") {
            let _ = key().parse_address(&format!("mpb-{s}@x"), &[]);
            let _ = key().parse_address(&format!("mpu-{s}@x"), &[]);
        }
    }
}
