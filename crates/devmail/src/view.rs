//! A stored message as a reader sees it: its header fields in order, the text and HTML bodies.

use serde::Serialize;

/// One header field, decoded (RFC 2047 words) where mail-parser can.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Header {
    /// The field name as written.
    pub name: String,
    /// The value, unfolded.
    pub value: String,
}

/// The parts of a message a reader looks at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct MessageView {
    /// Every header field, in order.
    pub headers: Vec<Header>,
    /// The first text/plain body (none: empty).
    pub text: String,
    /// The first text/html body (none: empty).
    pub html: String,
}

impl MessageView {
    /// Parses `raw`; a message mail-parser cannot read gives an empty view (the raw form stays available).
    pub fn parse(raw: &[u8]) -> MessageView {
        let Some(msg) = mail_parser::MessageParser::default().parse(raw) else {
            return MessageView::default();
        };
        let headers = raw_headers(raw);
        MessageView {
            headers,
            text: msg.body_text(0).map(|t| t.into_owned()).unwrap_or_default(),
            html: msg.body_html(0).map(|t| t.into_owned()).unwrap_or_default(),
        }
    }

    /// The first field named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.clone())
    }
}

/// The header section's fields, unfolded, with encoded words decoded.
fn raw_headers(raw: &[u8]) -> Vec<Header> {
    let text = String::from_utf8_lossy(raw);
    let head = match text.find("\r\n\r\n").or_else(|| text.find("\n\n")) {
        Some(end) => &text[..end],
        None => &text[..],
    };
    let mut out: Vec<Header> = Vec::new();
    for line in head.split('\n').map(|l| l.trim_end_matches('\r')) {
        if line.starts_with([' ', '\t']) {
            if let Some(last) = out.last_mut() {
                last.value.push(' ');
                last.value.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            out.push(Header {
                name: name.trim().to_string(),
                value: value.trim().to_string(),
            });
        }
    }
    for h in &mut out {
        h.value = decode_words(&h.value);
    }
    out
}

/// RFC 2047 encoded words in an unstructured value, decoded through mail-parser.
fn decode_words(value: &str) -> String {
    if !value.contains("=?") {
        return value.to_string();
    }
    let probe = format!("Subject: {value}\r\n\r\n");
    mail_parser::MessageParser::default()
        .parse(probe.as_bytes())
        .and_then(|m| m.subject().map(str::to_string))
        .unwrap_or_else(|| value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_text_and_html() {
        let raw = b"From: A <a@x.test>\r\nSubject: =?utf-8?B?5L2g5aW9?=\r\nDKIM-Signature: v=1;\r\n\ta=rsa-sha256\r\n\
MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n\
--b\r\nContent-Type: text/html\r\n\r\n<p>hi</p>\r\n--b--\r\n";
        let v = MessageView::parse(raw);
        assert_eq!(v.header("subject").as_deref(), Some("你好"));
        assert_eq!(v.header("DKIM-Signature").as_deref(), Some("v=1; a=rsa-sha256"));
        assert_eq!(v.text.trim(), "hi");
        assert_eq!(v.html.trim(), "<p>hi</p>");
    }
}
