//! Building the RFC 5322 / MIME message from a [`MessageSpec`] with mail-builder.
//!
//! Structure: `text/plain` or `text/html` alone; `multipart/alternative` when both; wrapped in
//! `multipart/mixed` when there are attachments. Non-ASCII header text (subject, display names,
//! extra header values) is RFC 2047-encoded by mail-builder; attachment names are RFC 2231-encoded
//! in `Content-Disposition` (with an RFC 2047 `name` on `Content-Type` for old clients).

use mail_builder::{
    MessageBuilder,
    encoders::Base64Encoder,
    headers::{HeaderType, address::Address, date::Date, message_id::MessageId, raw::Raw, text::Text},
    mime::{BodyPart, MimePart},
};
use mailpush_model::{EmailAddress, Mailbox, MessageSpec};

/// Why a message could not be built.
#[derive(Debug, thiserror::Error)]
pub enum MimeError {
    /// An extra header has a name outside RFC 5322 `ftext` or a value with CR, LF or NUL.
    #[error("header {name:?} is not valid: {reason}")]
    InvalidHeader {
        /// The offending header name.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An extra header would duplicate or override one the builder writes (From, Date, Bcc, Content-Type …).
    #[error("header {0:?} is set by mailpush and cannot be given as an extra header")]
    ReservedHeader(String),
    /// `message_id_header` is not `<left@right>`.
    #[error("the Message-ID {0:?} is not of the form <id@domain>")]
    InvalidMessageId(String),
    /// The subject contains a line break (header injection).
    #[error("the subject contains a line break")]
    InvalidSubject,
    /// Writing the message failed (cannot happen for an in-memory buffer, kept for completeness).
    #[error("writing the message failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Headers written by [`build_mime`] itself, or forbidden outright (`Bcc` must never reach a header), lower case.
pub const RESERVED_HEADERS: &[&str] = &[
    "from",
    "to",
    "cc",
    "bcc",
    "reply-to",
    "subject",
    "date",
    "message-id",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
    "content-disposition",
    "sender",
    "return-path",
];

/// Builds the full message (headers and body) for `spec`, CRLF line endings, ready for DKIM
/// signing and DATA.
pub fn build_mime(spec: &MessageSpec) -> Result<Vec<u8>, MimeError> {
    if spec.subject.contains(['\r', '\n', '\0']) {
        return Err(MimeError::InvalidSubject);
    }
    let message_id = message_id_value(&spec.message_id_header)?;

    let mut builder = MessageBuilder::new()
        .from(mailbox(&spec.from))
        .subject(Text::new(spec.subject.as_str()))
        // mail-builder wants seconds; the model keeps milliseconds.
        .date(Date::new(spec.date_ms.div_euclid(1000)))
        .message_id(MessageId::new(message_id));
    if !spec.to.is_empty() {
        builder = builder.to(address_list(&spec.to));
    }
    if !spec.cc.is_empty() {
        builder = builder.cc(address_list(&spec.cc));
    }
    if !spec.reply_to.is_empty() {
        let list = spec.reply_to.iter().map(mailbox).collect::<Vec<_>>();
        builder = builder.reply_to(Address::new_list(list));
    }
    builder = builder.header("MIME-Version", Raw::new("1.0"));

    for (name, value) in &spec.headers {
        check_extra_header(name, value)?;
        // Raw keeps ASCII values byte-for-byte (URLs in List-Unsubscribe must not be re-encoded);
        // only non-ASCII values need RFC 2047.
        let value: HeaderType<'_> = if value.is_ascii() {
            Raw::new(value.as_str()).into()
        } else {
            Text::new(value.as_str()).into()
        };
        builder = builder.header(name.as_str(), value);
    }

    if let Some(text) = &spec.text {
        builder = builder.text_body(text.as_str());
    }
    if let Some(html) = &spec.html {
        builder = builder.html_body(html.as_str());
    }
    for attachment in &spec.attachments {
        let part = attachment_part(&attachment.filename, &attachment.content_type, &attachment.content)?;
        builder.attachments.get_or_insert_with(Vec::new).push(part);
    }

    Ok(builder.write_to_vec()?)
}

fn mailbox(m: &Mailbox) -> Address<'_> {
    Address::new_address(m.name.as_deref(), m.address.as_str())
}

fn address_list(list: &[EmailAddress]) -> Address<'_> {
    Address::new_list(
        list.iter()
            .map(|a| Address::new_address(None::<&str>, a.as_str()))
            .collect(),
    )
}

/// Strips the angle brackets and checks the id cannot break the header.
fn message_id_value(header: &str) -> Result<&str, MimeError> {
    let bad = || MimeError::InvalidMessageId(header.to_string());
    let inner = header
        .trim()
        .strip_prefix('<')
        .and_then(|s| s.strip_suffix('>'))
        .ok_or_else(bad)?;
    let valid_chars = inner.bytes().all(|b| b.is_ascii_graphic() && b != b'<' && b != b'>');
    match inner.split_once('@') {
        Some((l, r)) if valid_chars && !l.is_empty() && !r.is_empty() => Ok(inner),
        _ => Err(bad()),
    }
}

fn check_extra_header(name: &str, value: &str) -> Result<(), MimeError> {
    let invalid = |reason| MimeError::InvalidHeader {
        name: name.to_string(),
        reason,
    };
    if name.is_empty() || !name.bytes().all(|b| (33..=126).contains(&b) && b != b':') {
        return Err(invalid("the name must be printable ASCII without ':'"));
    }
    if value.contains(['\r', '\n', '\0']) {
        return Err(invalid("the value contains a line break or NUL"));
    }
    let lower = name.to_ascii_lowercase();
    if RESERVED_HEADERS.contains(&lower.as_str()) {
        return Err(MimeError::ReservedHeader(name.to_string()));
    }
    Ok(())
}

/// An attachment part: always base64 (so text attachments keep their exact bytes and line
/// endings). Written as a raw part because mail-builder's header writers neither produce
/// RFC 2231 parameters nor fold long parameter lists under 78 columns.
fn attachment_part(filename: &str, content_type: &str, content: &[u8]) -> Result<MimePart<'static>, MimeError> {
    let mime_type = sanitize_mime_type(content_type).unwrap_or_else(|| content_type_for(filename));
    let name: String = filename.chars().filter(|c| !c.is_control()).collect();
    let mut part = String::with_capacity(content.len() * 4 / 3 + content.len() / 38 + 512);
    part.push_str("Content-Type: ");
    part.push_str(mime_type);
    part.push_str(";\r\n ");
    part.push_str(&param_rfc2047("name", &name));
    part.push_str("\r\nContent-Disposition: attachment;\r\n ");
    part.push_str(&param_rfc2231("filename", &name));
    part.push_str("\r\nContent-Transfer-Encoding: base64\r\n\r\n");
    let encoded = Base64Encoder::new().wrap_lines().encode(content)?;
    // Base64 output is ASCII; the multipart writer adds the CRLF before the next boundary.
    part.push_str(String::from_utf8_lossy(&encoded).trim_end());
    Ok(MimePart::raw(BodyPart::Text(part.into())))
}

/// Longest ASCII parameter value written as one plain quoted string.
const PLAIN_PARAM_MAX: usize = 60;

fn is_plain_param(value: &str) -> bool {
    value.len() <= PLAIN_PARAM_MAX
        && value
            .bytes()
            .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
}

/// `key="value"`, or for non-ASCII values RFC 2047 encoded-words inside the quotes, folded
/// (not standard inside parameters, but what older clients such as Outlook read for `name`).
fn param_rfc2047(key: &str, value: &str) -> String {
    if value.is_ascii() {
        let escaped = value.replace('\\', "\\\\").replace('"', "\\\"");
        return format!("{key}=\"{escaped}\"");
    }
    let mut words = Vec::new();
    let mut chunk = String::new();
    for ch in value.chars() {
        // 42 bytes of UTF-8 make a 68-character encoded-word: with ` name="` the line stays under 78.
        if chunk.len() + ch.len_utf8() > 42 {
            words.push(encoded_word(&chunk));
            chunk.clear();
        }
        chunk.push(ch);
    }
    if !chunk.is_empty() {
        words.push(encoded_word(&chunk));
    }
    format!("{key}=\"{}\"", words.join("\r\n "))
}

fn encoded_word(text: &str) -> String {
    let b64 = Base64Encoder::new().encode(text.as_bytes()).unwrap_or_default();
    format!("=?utf-8?B?{}?=", String::from_utf8_lossy(&b64))
}

/// `key="value"` for short plain ASCII, otherwise RFC 2231 `key*=utf-8''percent-encoded`, split
/// into folded continuations `key*0*=…; key*1*=…` so no line passes 78 columns.
fn param_rfc2231(key: &str, value: &str) -> String {
    if is_plain_param(value) {
        return format!("{key}=\"{value}\"");
    }
    let mut pieces = Vec::new();
    let mut piece = String::new();
    for ch in value.chars() {
        let mut buf = [0u8; 4];
        let mut enc = String::new();
        for b in ch.encode_utf8(&mut buf).bytes() {
            if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
                enc.push(b as char);
            } else {
                enc.push_str(&format!("%{b:02X}"));
            }
        }
        // Split only between characters: RFC 2231 allows splitting inside a multi-byte
        // character, but some decoders do not.
        if piece.len() + enc.len() > 54 && !piece.is_empty() {
            pieces.push(std::mem::take(&mut piece));
        }
        piece.push_str(&enc);
    }
    pieces.push(piece);
    if pieces.len() == 1 {
        return format!("{key}*=utf-8''{}", pieces[0]);
    }
    pieces
        .iter()
        .enumerate()
        .map(|(i, p)| format!("{key}*{i}*={}{p}", if i == 0 { "utf-8''" } else { "" }))
        .collect::<Vec<_>>()
        .join(";\r\n ")
}

/// `type/subtype` from a sender-given content type, parameters dropped; `None` when malformed.
fn sanitize_mime_type(ct: &str) -> Option<&str> {
    let main = ct.split(';').next()?.trim();
    let (t, s) = main.split_once('/')?;
    let token = |x: &str| {
        !x.is_empty()
            && x.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    (token(t) && token(s)).then_some(main)
}

/// The MIME type for a file name, by its extension (case-insensitive);
/// `application/octet-stream` when unknown.
pub fn content_type_for(filename: &str) -> &'static str {
    let Some((_, ext)) = filename.rsplit_once('.') else {
        return "application/octet-stream";
    };
    match ext.to_ascii_lowercase().as_str() {
        "txt" | "text" | "log" => "text/plain",
        "csv" => "text/csv",
        "tsv" => "text/tab-separated-values",
        "htm" | "html" => "text/html",
        "css" => "text/css",
        "md" | "markdown" => "text/markdown",
        "ics" => "text/calendar",
        "vcf" | "vcard" => "text/vcard",
        "xml" => "application/xml",
        "json" => "application/json",
        "js" | "mjs" => "text/javascript",
        "yaml" | "yml" => "application/yaml",
        "pdf" => "application/pdf",
        "rtf" => "application/rtf",
        "doc" => "application/msword",
        "dot" => "application/msword",
        "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "xls" => "application/vnd.ms-excel",
        "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "ppt" => "application/vnd.ms-powerpoint",
        "pptx" => "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "odt" => "application/vnd.oasis.opendocument.text",
        "ods" => "application/vnd.oasis.opendocument.spreadsheet",
        "odp" => "application/vnd.oasis.opendocument.presentation",
        "epub" => "application/epub+zip",
        "zip" => "application/zip",
        "gz" | "tgz" => "application/gzip",
        "tar" => "application/x-tar",
        "bz2" => "application/x-bzip2",
        "xz" => "application/x-xz",
        "7z" => "application/x-7z-compressed",
        "rar" => "application/vnd.rar",
        "eml" => "message/rfc822",
        "png" => "image/png",
        "jpg" | "jpeg" | "jpe" => "image/jpeg",
        "gif" => "image/gif",
        "bmp" => "image/bmp",
        "webp" => "image/webp",
        "svg" => "image/svg+xml",
        "ico" => "image/vnd.microsoft.icon",
        "tif" | "tiff" => "image/tiff",
        "heic" => "image/heic",
        "avif" => "image/avif",
        "mp3" => "audio/mpeg",
        "wav" => "audio/wav",
        "ogg" | "oga" => "audio/ogg",
        "m4a" => "audio/mp4",
        "flac" => "audio/flac",
        "aac" => "audio/aac",
        "mp4" | "m4v" => "video/mp4",
        "mov" => "video/quicktime",
        "avi" => "video/x-msvideo",
        "webm" => "video/webm",
        "mkv" => "video/x-matroska",
        "mpeg" | "mpg" => "video/mpeg",
        "woff" => "font/woff",
        "woff2" => "font/woff2",
        "ttf" => "font/ttf",
        "otf" => "font/otf",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mail_parser::{MessageParser, MimeHeaders};
    use mailpush_model::Attachment;

    fn spec() -> MessageSpec {
        MessageSpec {
            from: Mailbox::parse("腾讯云 Support <noreply@mail.example.com>").unwrap(),
            to: vec![
                EmailAddress::parse("alice@example.org").unwrap(),
                EmailAddress::parse("bob@example.net").unwrap(),
            ],
            cc: vec![EmailAddress::parse("carol@example.org").unwrap()],
            reply_to: vec![Mailbox::parse("Help Desk <help@example.com>").unwrap()],
            subject: "你好, world — ünïcödé subject that is long enough to need folding over several lines".to_string(),
            html: Some("<p>Hello <b>你好</b></p>".to_string()),
            text: Some("Hello 你好\n.\nA line with a dot above.".to_string()),
            attachments: vec![
                Attachment {
                    filename: "报告 2026.pdf".to_string(),
                    content_type: "application/pdf".to_string(),
                    content: (0..=255u8).cycle().take(3000).collect(),
                },
                Attachment {
                    filename: "notes.txt".to_string(),
                    content_type: "text/plain".to_string(),
                    content: b"line one\nline two\r\nno newline at end".to_vec(),
                },
            ],
            headers: vec![
                ("X-Campaign".to_string(), "spring-2026".to_string()),
                ("X-Note".to_string(), "résumé".to_string()),
            ],
            message_id_header: "<mp-0123456789abcdef0123456789abcdef@mail.example.com>".to_string(),
            date_ms: 1_767_225_600_123,
        }
    }

    #[test]
    fn round_trips_through_mail_parser() {
        let raw = build_mime(&spec()).unwrap();
        let msg = MessageParser::default().parse(&raw).unwrap();

        let from = msg.from().unwrap().first().unwrap();
        assert_eq!(from.name(), Some("腾讯云 Support"));
        assert_eq!(from.address(), Some("noreply@mail.example.com"));

        let to: Vec<_> = msg.to().unwrap().iter().filter_map(|a| a.address()).collect();
        assert_eq!(to, ["alice@example.org", "bob@example.net"]);
        let cc: Vec<_> = msg.cc().unwrap().iter().filter_map(|a| a.address()).collect();
        assert_eq!(cc, ["carol@example.org"]);
        let rt = msg.reply_to().unwrap().first().unwrap();
        assert_eq!(rt.name(), Some("Help Desk"));
        assert_eq!(rt.address(), Some("help@example.com"));

        assert_eq!(msg.subject(), Some(spec().subject.as_str()));
        assert_eq!(
            msg.message_id(),
            Some("mp-0123456789abcdef0123456789abcdef@mail.example.com")
        );
        assert_eq!(msg.date().unwrap().to_timestamp(), 1_767_225_600);
        assert_eq!(msg.header_raw("MIME-Version").map(str::trim), Some("1.0"));
        assert_eq!(msg.header_raw("X-Campaign").map(str::trim), Some("spring-2026"));
        // mail-parser leaves unknown headers encoded: decode the value as if it were a subject.
        let note = msg.header_raw("X-Note").unwrap().trim();
        assert!(note.starts_with("=?utf-8?"));
        let probe = format!("Subject: {note}\r\n\r\n");
        let probe = MessageParser::default().parse(probe.as_bytes()).unwrap();
        assert_eq!(probe.subject(), Some("résumé"));
        assert!(msg.header_raw("Bcc").is_none());

        let ct = msg.content_type().unwrap();
        assert_eq!((ct.ctype(), ct.subtype()), ("multipart", Some("mixed")));
        assert_eq!(msg.body_text(0).unwrap().replace("\r\n", "\n"), spec().text.unwrap());
        assert_eq!(msg.body_html(0).unwrap(), spec().html.unwrap());

        let atts: Vec<_> = msg.attachments().collect();
        assert_eq!(atts.len(), 2);
        assert_eq!(atts[0].attachment_name(), Some("报告 2026.pdf"));
        let act = atts[0].content_type().unwrap();
        assert_eq!((act.ctype(), act.subtype()), ("application", Some("pdf")));
        assert_eq!(atts[0].contents(), spec().attachments[0].content.as_slice());
        assert_eq!(atts[1].attachment_name(), Some("notes.txt"));
        assert_eq!(atts[1].contents(), spec().attachments[1].content.as_slice());

        // Every line fits SMTP's limit, and the message is CRLF throughout.
        let text = String::from_utf8(raw.clone()).unwrap();
        assert!(text.split("\r\n").all(|l| l.len() <= 998 && !l.contains('\n')));
        assert!(text.contains("filename*="), "RFC 2231 name expected");
    }

    #[test]
    fn alternative_without_attachments_and_single_bodies() {
        let mut s = spec();
        s.attachments.clear();
        let raw = build_mime(&s).unwrap();
        let msg = MessageParser::default().parse(&raw).unwrap();
        let ct = msg.content_type().unwrap();
        assert_eq!((ct.ctype(), ct.subtype()), ("multipart", Some("alternative")));
        assert_eq!(msg.attachments().count(), 0);

        s.html = None;
        let raw = build_mime(&s).unwrap();
        let msg = MessageParser::default().parse(&raw).unwrap();
        let ct = msg.content_type().unwrap();
        assert_eq!((ct.ctype(), ct.subtype()), ("text", Some("plain")));

        s.text = None;
        s.html = Some("<p>only html</p>".into());
        s.to.clear();
        s.cc.clear();
        s.reply_to.clear();
        let raw = build_mime(&s).unwrap();
        let msg = MessageParser::default().parse(&raw).unwrap();
        let ct = msg.content_type().unwrap();
        assert_eq!((ct.ctype(), ct.subtype()), ("text", Some("html")));
        assert!(msg.to().is_none() && msg.cc().is_none() && msg.reply_to().is_none());
    }

    #[test]
    fn long_utf8_attachment_names_use_continuations() {
        let mut s = spec();
        let name = format!("{}.pdf", "季度销售报表".repeat(8));
        s.attachments = vec![Attachment {
            filename: name.clone(),
            content_type: String::new(),
            content: vec![1, 2, 3],
        }];
        let raw = build_mime(&s).unwrap();
        let text = String::from_utf8(raw.clone()).unwrap();
        assert!(text.contains("filename*1*="));
        assert!(text.split("\r\n").all(|l| l.len() <= 78), "{text}");
        let msg = MessageParser::default().parse(&raw).unwrap();
        let att = msg.attachments().next().unwrap();
        assert_eq!(att.attachment_name(), Some(name.as_str()));
        // The legacy RFC 2047 `name` decodes to the same.
        assert_eq!(att.content_type().unwrap().attribute("name"), Some(name.as_str()));
        // No content type given: derived from the extension.
        assert_eq!(att.content_type().unwrap().subtype(), Some("pdf"));
    }

    #[test]
    fn refuses_header_injection_and_reserved_headers() {
        let mut s = spec();
        s.headers = vec![("X-Bad".into(), "a\r\nBcc: evil@example.com".into())];
        assert!(matches!(build_mime(&s), Err(MimeError::InvalidHeader { .. })));
        s.headers = vec![("Bad Name".into(), "x".into())];
        assert!(matches!(build_mime(&s), Err(MimeError::InvalidHeader { .. })));
        s.headers = vec![("bcc".into(), "evil@example.com".into())];
        assert!(matches!(build_mime(&s), Err(MimeError::ReservedHeader(_))));
        s.headers.clear();
        s.subject = "a\r\nBcc: x@example.com".into();
        assert!(matches!(build_mime(&s), Err(MimeError::InvalidSubject)));
        let mut s = spec();
        s.message_id_header = "no-brackets@example.com".into();
        assert!(matches!(build_mime(&s), Err(MimeError::InvalidMessageId(_))));
        s.message_id_header = "<a b@example.com>".into();
        assert!(matches!(build_mime(&s), Err(MimeError::InvalidMessageId(_))));
    }

    #[test]
    fn content_types_by_extension() {
        assert_eq!(content_type_for("a.PDF"), "application/pdf");
        assert_eq!(content_type_for("photo.jpeg"), "image/jpeg");
        assert_eq!(content_type_for("photo.JPG"), "image/jpeg");
        assert_eq!(content_type_for("data.csv"), "text/csv");
        assert_eq!(content_type_for("archive.tar.gz"), "application/gzip");
        assert_eq!(
            content_type_for("sheet.xlsx"),
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        );
        assert_eq!(content_type_for("noext"), "application/octet-stream");
        assert_eq!(content_type_for("weird.zzz"), "application/octet-stream");
        assert_eq!(content_type_for(""), "application/octet-stream");
        assert_eq!(sanitize_mime_type("text/plain; charset=gbk"), Some("text/plain"));
        assert_eq!(sanitize_mime_type("nonsense"), None);
        assert_eq!(sanitize_mime_type("a/b\r\nX: y"), None);
    }
}
