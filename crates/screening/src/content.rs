//! What a MIME message is made of, as far as screening cares: its parts, attachments, links, images and HTML
//! problems. The parser (mail-parser) never panics on bad input; a message it cannot read at all is
//! reported as such.

use mail_parser::{MessageParser, MimeHeaders, PartType};

/// One attachment, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MimeAttachment {
    /// Its file name (`attachment-N` when it has none).
    pub name: String,
    /// Its bytes after transfer decoding.
    pub content: Vec<u8>,
}

/// The facts of a message the checks judge.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContentFacts {
    /// Subject.
    pub subject: String,
    /// Whether a `text/plain` part is present.
    pub has_text: bool,
    /// Whether a `text/html` part is present.
    pub has_html: bool,
    /// Characters of the plain-text part.
    pub text_chars: usize,
    /// Visible characters of the HTML part (tags, scripts and styles removed).
    pub html_visible_chars: usize,
    /// Bytes of the HTML part.
    pub html_bytes: usize,
    /// `<img>` elements.
    pub images: usize,
    /// Link targets (`href` of the HTML, URLs of the text), each once, in order.
    pub links: Vec<String>,
    /// Whether a `List-Unsubscribe` header is present.
    pub list_unsubscribe: bool,
    /// What is wrong with the HTML's structure (unclosed or stray tags).
    pub html_problems: Vec<String>,
    /// Attachment names.
    pub attachments: Vec<String>,
}

/// Every attachment of `raw` (attached files and inline parts with a name), decoded. Nested messages'
/// attachments are included; a message that cannot be parsed has none.
pub fn attachments(raw: &[u8]) -> Vec<MimeAttachment> {
    let Some(msg) = MessageParser::default().parse(raw) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    collect_attachments(&msg, &mut out);
    out
}

fn collect_attachments(msg: &mail_parser::Message<'_>, out: &mut Vec<MimeAttachment>) {
    for part in msg.attachments() {
        if let PartType::Message(inner) = &part.body {
            collect_attachments(inner, out);
        }
        let name = part
            .attachment_name()
            .map_or_else(|| format!("attachment-{}", out.len() + 1), str::to_string);
        out.push(MimeAttachment {
            name,
            content: part.contents().to_vec(),
        });
    }
}

/// Reads the facts of `raw`; `None` if it is not a message at all.
pub fn analyze(raw: &[u8]) -> Option<ContentFacts> {
    let msg = MessageParser::default().parse(raw)?;
    let mut facts = ContentFacts {
        subject: msg.subject().unwrap_or_default().to_string(),
        list_unsubscribe: msg.header_raw("List-Unsubscribe").is_some(),
        ..Default::default()
    };
    let mut text = String::new();
    let mut html = String::new();
    for part in &msg.parts {
        if part.attachment_name().is_some() {
            continue;
        }
        match &part.body {
            PartType::Text(t) if !facts.has_text => {
                facts.has_text = true;
                text = t.to_string();
            }
            PartType::Html(h) if !facts.has_html => {
                facts.has_html = true;
                html = h.to_string();
            }
            _ => {}
        }
    }
    facts.attachments = msg
        .attachments()
        .map(|p| p.attachment_name().unwrap_or("(no name)").to_string())
        .collect();
    facts.text_chars = text.trim().chars().count();
    facts.html_bytes = html.len();
    facts.html_visible_chars = visible_text(&html).chars().count();
    facts.images = count_tags(&html, "img");
    let mut links = hrefs(&html);
    links.extend(text_urls(&text));
    let mut seen = std::collections::HashSet::new();
    links.retain(|l| seen.insert(l.clone()));
    facts.links = links;
    facts.html_problems = html_problems(&html);
    Some(facts)
}

/// The text a reader sees of `html`: tags, comments, `<script>` and `<style>` removed, whitespace collapsed.
pub fn visible_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len() / 2);
    let lower = html.to_ascii_lowercase();
    let mut i = 0;
    let bytes = html.as_bytes();
    while i < bytes.len() {
        if bytes[i] == b'<' {
            let rest = &lower[i..];
            let skip_to = if rest.starts_with("<!--") {
                rest.find("-->").map(|e| e + 3)
            } else if rest.starts_with("<script") {
                rest.find("</script")
                    .and_then(|e| rest[e..].find('>').map(|g| e + g + 1))
            } else if rest.starts_with("<style") {
                rest.find("</style")
                    .and_then(|e| rest[e..].find('>').map(|g| e + g + 1))
            } else {
                rest.find('>').map(|e| e + 1)
            };
            i += skip_to.unwrap_or(rest.len());
            out.push(' ');
            continue;
        }
        let next = lower[i..].find('<').map_or(bytes.len(), |n| i + n);
        out.push_str(&html[i..next]);
        i = next;
    }
    out.replace("&nbsp;", " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Opening tags named `name` (`<name` followed by a space, `/` or `>`).
fn count_tags(html: &str, name: &str) -> usize {
    let lower = html.to_ascii_lowercase();
    let open = format!("<{name}");
    lower
        .match_indices(&open)
        .filter(|(i, _)| {
            lower[i + open.len()..]
                .chars()
                .next()
                .is_some_and(|c| c.is_whitespace() || c == '/' || c == '>')
        })
        .count()
}

/// `href` values of `html`.
fn hrefs(html: &str) -> Vec<String> {
    let lower = html.to_ascii_lowercase();
    let mut out = Vec::new();
    for (i, _) in lower.match_indices("href") {
        let rest = html[i + 4..].trim_start();
        let Some(rest) = rest.strip_prefix('=') else { continue };
        let rest = rest.trim_start();
        let value = match rest.chars().next() {
            Some(q @ ('"' | '\'')) => rest[1..].split(q).next().unwrap_or(""),
            _ => rest.split(|c: char| c.is_whitespace() || c == '>').next().unwrap_or(""),
        };
        let value = value.trim();
        if !value.is_empty() && !value.starts_with('#') {
            out.push(value.replace("&amp;", "&"));
        }
    }
    out
}

/// `http(s)://` URLs in plain text.
fn text_urls(text: &str) -> Vec<String> {
    text.split(|c: char| c.is_whitespace() || c == '<' || c == '>' || c == '"')
        .filter(|w| w.starts_with("http://") || w.starts_with("https://"))
        .map(|w| w.trim_end_matches(['.', ',', ')', ';']).to_string())
        .collect()
}

/// Elements HTML lets authors leave open, and void elements (never closed).
const OPTIONAL_CLOSE: &[&str] = &[
    "html", "head", "body", "p", "li", "dt", "dd", "tr", "td", "th", "thead", "tbody", "tfoot", "option", "colgroup",
    "caption", "rt", "rp", "optgroup",
];
const VOID: &[&str] = &[
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr", "param",
    "keygen", "!doctype",
];

/// Structural problems of `html`: closing tags that close nothing and elements left open (those HTML lets
/// authors leave open excepted). Mailbox providers render broken markup unpredictably and filters score it.
pub fn html_problems(html: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let mut stack: Vec<String> = Vec::new();
    let lower = html.to_ascii_lowercase();
    let mut rest = lower.as_str();
    while let Some(start) = rest.find('<') {
        rest = &rest[start + 1..];
        if rest.starts_with("!--") {
            rest = rest.find("-->").map_or("", |e| &rest[e + 3..]);
            continue;
        }
        let Some(end) = rest.find('>') else {
            problems.push("a tag is never closed with '>'".to_string());
            break;
        };
        let tag = &rest[..end];
        rest = &rest[end + 1..];
        let closing = tag.starts_with('/');
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '!')
            .collect();
        if name.is_empty() || VOID.contains(&name.as_str()) || tag.ends_with('/') {
            continue;
        }
        if matches!(name.as_str(), "script" | "style") && !closing {
            let close = format!("</{name}");
            rest = rest.find(&close).map_or("", |e| &rest[e..]);
        }
        if !closing {
            stack.push(name);
            continue;
        }
        match stack.iter().rposition(|open| *open == name) {
            Some(pos) => {
                for left in stack.drain(pos..).skip(1) {
                    if !OPTIONAL_CLOSE.contains(&left.as_str()) {
                        problems.push(format!("<{left}> is not closed before </{name}>"));
                    }
                }
            }
            None => problems.push(format!("</{name}> closes no open element")),
        }
    }
    for left in stack {
        if !OPTIONAL_CLOSE.contains(&left.as_str()) {
            problems.push(format!("<{left}> is never closed"));
        }
    }
    problems.truncate(10);
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIXED: &str = "From: a@shop.example.com\r\nTo: b@example.org\r\nSubject: Order\r\n\
List-Unsubscribe: <mailto:u@shop.example.com>\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\n\
Content-Type: multipart/alternative; boundary=\"b2\"\r\n\r\n--b2\r\n\
Content-Type: text/plain; charset=utf-8\r\n\r\nYour order shipped: https://shop.example.com/o/1.\r\n--b2\r\n\
Content-Type: text/html; charset=utf-8\r\n\r\n<p>Your order <a href=\"https://shop.example.com/o/1\">shipped</a>\
<img src=\"https://shop.example.com/l.png\"></p>\r\n--b2--\r\n--b1\r\n\
Content-Type: application/pdf; name=\"invoice.pdf\"\r\nContent-Disposition: attachment; filename=\"invoice.pdf\"\r\n\
Content-Transfer-Encoding: base64\r\n\r\nSGVsbG8=\r\n--b1--\r\n";

    #[test]
    fn facts_of_a_multipart_message() {
        let f = analyze(MIXED.as_bytes()).unwrap();
        assert!(f.has_text && f.has_html && f.list_unsubscribe);
        assert_eq!(f.subject, "Order");
        assert_eq!(f.images, 1);
        assert_eq!(f.links, ["https://shop.example.com/o/1"]);
        assert_eq!(f.attachments, ["invoice.pdf"]);
        assert!(f.html_problems.is_empty(), "{:?}", f.html_problems);
        let a = attachments(MIXED.as_bytes());
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].name, "invoice.pdf");
        assert_eq!(a[0].content, b"Hello");
    }

    #[test]
    fn html_structure() {
        assert!(html_problems("<html><body><p>a<p>b<br><img src=x></body></html>").is_empty());
        assert!(html_problems("<div><b>x</b></div><!-- <div> -->").is_empty());
        assert_eq!(
            html_problems("<div><span>x</div>"),
            ["<span> is not closed before </div>"]
        );
        assert_eq!(html_problems("x</b>"), ["</b> closes no open element"]);
        assert_eq!(html_problems("<table><tr><td>x"), ["<table> is never closed"]);
        assert_eq!(html_problems("<a href=x"), ["a tag is never closed with '>'"]);
    }

    #[test]
    fn visible_text_skips_markup() {
        assert_eq!(
            visible_text("<style>p{}</style><p>Hello&nbsp;<b>you</b></p><script>x()</script><!-- c -->!"),
            "Hello you !"
        );
    }

    #[test]
    fn garbage_is_not_a_panic() {
        for raw in [
            &b""[..],
            b"\xff\xfe",
            b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n",
        ] {
            let _ = analyze(raw);
            let _ = attachments(raw);
        }
    }
}
