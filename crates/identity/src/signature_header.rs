//! The `DKIM-Signature` header field as mailpush writes it (RFC 6376 §3.5): one tag group per line, `b=` last
//! with nothing after its value, folded only inside the base64.
//!
//! Why not the writer of mail-auth: it ends the field with `;` and may fold between the last base64 character
//! and that `;` (`b=…\r\n\t;`). Verifiers disagree on how to blank `b=` then: Mail::DKIM and mail-auth accept
//! it, dkimpy (Mailman, authheaders, dkimpy-milter) rejects every such signature. With `b=` last and no
//! trailing `;`, every verifier blanks it to the same bytes, `…; b=`.

use mail_auth::common::headers::HeaderStream;
use memchr::memchr;
use std::fmt::Write as _;

/// Longest line of the folded header, folding whitespace included (RFC 5322 recommends 78).
const LINE: usize = 76;

/// The tags of one signature, all computed except `b=`.
pub(crate) struct SignatureTags<'a> {
    /// `a=`: `rsa-sha256` or `ed25519-sha256`.
    pub algorithm: &'a str,
    /// `d=`, ASCII (A-labels).
    pub domain: &'a str,
    /// `s=`.
    pub selector: &'a str,
    /// `t=`, Unix seconds.
    pub timestamp: u64,
    /// `h=`, in the order the signer hashed them.
    pub headers: &'a [String],
    /// `bh=`, base64.
    pub body_hash: &'a str,
}

/// The header field up to and including the empty `b=`: its relaxed form ([`relaxed`]) is what the signature
/// covers, and [`complete`] appends the signature to it.
pub(crate) fn unsigned_header(tags: &SignatureTags<'_>) -> String {
    let mut out = String::with_capacity(256 + 360);
    let _ = write!(
        out,
        "DKIM-Signature: v=1; a={}; c=relaxed/relaxed; d={}; s={}; t={};\r\n\th=",
        tags.algorithm, tags.domain, tags.selector, tags.timestamp
    );
    // Not folded: some verifiers keep whitespace around the names of h= (a dozen names fit a line of 998).
    out.push_str(&tags.headers.join(":"));
    let _ = write!(out, ";\r\n\tbh={};\r\n\tb=", tags.body_hash);
    out
}

/// `unsigned` followed by the base64 signature `b`, folded inside the base64, and the field's CRLF.
pub(crate) fn complete(mut unsigned: String, b: &str) -> String {
    // The first line already holds "\tb=".
    let mut room = LINE - 3;
    let mut rest = b;
    while !rest.is_empty() {
        let take = rest.len().min(room);
        unsigned.push_str(&rest[..take]);
        rest = &rest[take..];
        if !rest.is_empty() {
            unsigned.push_str("\r\n\t");
            room = LINE - 1;
        }
    }
    unsigned.push_str("\r\n");
    unsigned
}

/// The relaxed canonical form of one header field (RFC 6376 §3.4.2) without its CRLF, as the signature covers
/// its own field: name lower-cased, unfolded, runs of whitespace as one space, none around the colon or at the end.
pub(crate) fn relaxed(field: &str) -> Vec<u8> {
    let (name, value) = field.split_once(':').unwrap_or((field, ""));
    let mut out = Vec::with_capacity(field.len());
    out.extend(name.trim().bytes().map(|b| b.to_ascii_lowercase()));
    out.push(b':');
    let mut space = false;
    let mut started = false;
    for b in value.bytes() {
        match b {
            b'\r' | b'\n' => {}
            b' ' | b'\t' => space = true,
            _ => {
                if space && started {
                    out.push(b' ');
                }
                started = true;
                space = false;
                out.push(b);
            }
        }
    }
    out
}

/// The header fields of a message as mail-auth's canonicalisation takes them: each name, and its value from after
/// the colon through the CRLF that ends the field (continuation lines included); then the body after the empty
/// line. A line without a colon is a field with that name and no value.
pub(crate) struct HeaderFields<'x> {
    message: &'x [u8],
    pos: usize,
    body: usize,
}

impl<'x> HeaderFields<'x> {
    pub(crate) fn new(message: &'x [u8]) -> Self {
        HeaderFields {
            message,
            pos: 0,
            body: message.len(),
        }
    }
}

impl<'x> HeaderStream<'x> for HeaderFields<'x> {
    fn next_header(&mut self) -> Option<(&'x [u8], &'x [u8])> {
        let rest = self.message.get(self.pos..)?;
        if rest.is_empty() {
            return None;
        }
        if rest.starts_with(b"\r\n") || rest.starts_with(b"\n") {
            self.body = self.pos + if rest.starts_with(b"\r\n") { 2 } else { 1 };
            self.pos = self.message.len();
            return None;
        }
        // The field ends at a line end not followed by whitespace (folding).
        let mut end = rest.len();
        let mut i = 0;
        while let Some(nl) = memchr(b'\n', &rest[i..]) {
            let after = i + nl + 1;
            if !matches!(rest.get(after), Some(b' ' | b'\t')) {
                end = after;
                break;
            }
            i = after;
        }
        let field = &rest[..end];
        self.pos += end;
        if self.pos >= self.message.len() {
            self.body = self.message.len();
        }
        Some(match memchr(b':', field) {
            Some(colon) => (&field[..colon], &field[colon + 1..]),
            None => (field, &b""[..]),
        })
    }

    fn body(&mut self) -> &'x [u8] {
        while self.next_header().is_some() {}
        self.message.get(self.body..).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(headers: &[String]) -> SignatureTags<'_> {
        SignatureTags {
            algorithm: "rsa-sha256",
            domain: "example.com",
            selector: "mp2026r2",
            timestamp: 1_800_000_000,
            headers,
            body_hash: "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
        }
    }

    #[test]
    fn b_is_last_and_nothing_follows_its_value() {
        let headers: Vec<String> = ["From", "To", "Subject"].iter().map(|s| s.to_string()).collect();
        let b = "A".repeat(344); // an RSA-2048 signature in base64
        let field = complete(unsigned_header(&tags(&headers)), &b);
        assert!(field.ends_with("AAAA\r\n"), "{field:?}");
        let after_b = &field[field.find("b=A").expect("b= tag")..];
        assert!(!after_b.contains(';'), "no tag or ';' after b=: {after_b:?}");
        assert_eq!(after_b.matches('A').count(), 344);
        for line in field
            .split("\r\n")
            .filter(|l| l.starts_with("\tb=") || !l.contains('='))
        {
            assert!(line.len() <= LINE, "line of b= too long: {line:?}");
        }
        // Blanking b= the way every verifier does gives exactly the unsigned header.
        let blanked = &field[..field.find("b=").expect("b=") + 2];
        assert_eq!(blanked, unsigned_header(&tags(&headers)));
    }

    #[test]
    fn header_names_stay_on_one_line() {
        let headers: Vec<String> = crate::keys::SIGNED_HEADERS.iter().map(|s| s.to_string()).collect();
        let field = unsigned_header(&tags(&headers));
        assert!(
            field.contains(&format!("\r\n\th={};\r\n", headers.join(":"))),
            "{field:?}"
        );
        let relaxed = String::from_utf8(relaxed(&field)).expect("ascii");
        assert!(relaxed.ends_with("; b="), "{relaxed:?}");
        assert!(!relaxed.contains("  ") && !relaxed.contains('\t') && !relaxed.contains('\r'));
    }

    #[test]
    fn header_fields_split_like_the_verifiers() {
        let msg = b"From: a@example.com\r\nSubject: one\r\n two\r\nbroken line\r\nTo: b@example.org\r\n\r\nbody\r\n";
        let mut fields = HeaderFields::new(msg);
        let mut seen = Vec::new();
        while let Some((name, value)) = fields.next_header() {
            seen.push((
                String::from_utf8_lossy(name).into_owned(),
                String::from_utf8_lossy(value).into_owned(),
            ));
        }
        assert_eq!(
            seen,
            vec![
                ("From".to_string(), " a@example.com\r\n".to_string()),
                ("Subject".to_string(), " one\r\n two\r\n".to_string()),
                ("broken line\r\n".to_string(), String::new()),
                ("To".to_string(), " b@example.org\r\n".to_string()),
            ]
        );
        assert_eq!(fields.body(), b"body\r\n");
        assert_eq!(HeaderFields::new(b"From: a\r\n").body(), b"");
    }

    #[test]
    fn relaxed_form_unfolds_and_squeezes_whitespace() {
        assert_eq!(
            relaxed("DKIM-Signature:  v=1;\r\n\ta=x;  \t b= \r\n\t"),
            b"dkim-signature:v=1; a=x; b=".to_vec()
        );
        assert_eq!(relaxed("Subject:hi"), b"subject:hi".to_vec());
    }
}
