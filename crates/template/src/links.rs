//! Link detection: URLs in text, link attributes in HTML, redirect and unsafe links.

use crate::UNSUBSCRIBE_PLACEHOLDER;
use crate::html::{Event, StartTag};
use crate::mustache::{self, Kind};

/// Attributes that make the element navigate somewhere.
const LINK_ATTRS: &[&str] = &["href", "action", "formaction", "xlink:href", "ping"];

/// URL shorteners and well-known open redirectors: the destination is hidden.
const REDIRECT_HOSTS: &[&str] = &[
    "bit.ly",
    "t.cn",
    "t.co",
    "tinyurl.com",
    "goo.gl",
    "ow.ly",
    "is.gd",
    "v.gd",
    "buff.ly",
    "rebrand.ly",
    "cutt.ly",
    "s.id",
    "dwz.cn",
    "url.cn",
    "suo.im",
    "w.url.cn",
    "tb.cn",
    "u.nu",
    "shorturl.at",
    "rb.gy",
    "tiny.cc",
    "lnkd.in",
];

/// Query parameters conventionally carrying a redirect target.
const REDIRECT_PARAMS: &[&str] = &[
    "url",
    "u",
    "r",
    "redirect",
    "redirect_url",
    "redirect_uri",
    "redirecturl",
    "redir",
    "return",
    "return_url",
    "returnurl",
    "goto",
    "go",
    "target",
    "to",
    "next",
    "dest",
    "destination",
    "jump",
    "link",
    "out",
    "continue",
    "forward",
    "q",
];

/// One link found in a template part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Link {
    /// What was found (the URL or attribute value), for the reason.
    pub target: String,
    /// Where, as a byte offset into the part's source; `None` for URLs found in
    /// visible text, which has no source position.
    pub offset: Option<usize>,
    pub kind: LinkKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LinkKind {
    /// An ordinary link: refused unless the account allows links.
    Plain,
    /// A redirect (shortener, `?url=http…`, meta refresh): hides the destination.
    Redirect,
    /// `javascript:`, `vbscript:`, `data:`: never allowed.
    Unsafe,
}

/// Whether `value` is exactly the unsubscribe placeholder (spaces around it allowed).
pub(crate) fn is_unsubscribe_placeholder(value: &str) -> bool {
    let value = value.trim();
    let found = mustache::scan(value);
    matches!(found.as_slice(), [m] if m.start == 0 && m.end == value.len()
        && m.kind == Kind::Variable(UNSUBSCRIBE_PLACEHOLDER.to_owned()))
}

/// Links in HTML: link attributes (any value except the unsubscribe placeholder),
/// `<meta http-equiv=refresh>`, and URLs in visible text.
///
/// `src` is the original HTML (attribute values are read from it so placeholders are
/// visible); events come from the masked copy, whose byte offsets are identical.
/// Image sources, backgrounds and stylesheets are not links: images have their own rules.
pub(crate) fn html_links(src: &str, events: &[Event], visible: &str) -> Vec<Link> {
    let mut links = Vec::new();
    for ev in events {
        let Event::Start(tag) = ev else { continue };
        for attr in &tag.attrs {
            if !LINK_ATTRS.contains(&attr.name.as_str()) {
                continue;
            }
            let raw = attr.value.clone().and_then(|r| src.get(r)).unwrap_or("");
            if is_unsubscribe_placeholder(raw) {
                continue;
            }
            let mut decoded = String::new();
            crate::text::decode_entities_into(raw.trim(), &mut decoded);
            links.push(Link {
                kind: classify(&decoded),
                target: decoded,
                offset: Some(tag.start),
            });
        }
        if let Some(link) = meta_refresh(src, tag) {
            links.push(link);
        }
    }
    links.extend(text_links(visible));
    links
}

/// `<meta http-equiv="refresh" content="0;url=…">` sends the reader elsewhere.
fn meta_refresh(src: &str, tag: &StartTag) -> Option<Link> {
    if tag.name != "meta" {
        return None;
    }
    let equiv = tag.attr("http-equiv").and_then(|r| src.get(r))?;
    if !equiv.trim().eq_ignore_ascii_case("refresh") {
        return None;
    }
    let content = tag.attr("content").and_then(|r| src.get(r)).unwrap_or("");
    Some(Link {
        target: content.trim().to_owned(),
        offset: Some(tag.start),
        kind: LinkKind::Redirect,
    })
}

/// Links written out in (visible) text.
pub(crate) fn text_links(visible: &str) -> Vec<Link> {
    text_urls(visible)
        .into_iter()
        .map(|(_, url)| Link {
            kind: classify(&url),
            target: url,
            offset: None,
        })
        .collect()
}

/// URLs written out in text: `http://…`, `https://…`, `www.…`; (byte offset, url).
pub(crate) fn text_urls(text: &str) -> Vec<(usize, String)> {
    let lower = text.to_ascii_lowercase();
    let b = lower.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let rest = &b[i..];
        let scheme = rest.starts_with(b"http://") || rest.starts_with(b"https://");
        let www = rest.starts_with(b"www.")
            && rest.get(4).is_some_and(u8::is_ascii_alphanumeric)
            && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || matches!(b[i - 1], b'.' | b'/' | b'-' | b'@')));
        if scheme || www {
            let end = (i..b.len()).find(|&j| is_url_end(b[j])).unwrap_or(b.len());
            found.push((
                i,
                text[i..end].trim_end_matches(['.', ',', ';', ':', '!', '?']).to_owned(),
            ));
            i = end;
        } else {
            i += 1;
        }
    }
    found
}

/// Bytes that end a URL written in text (non-ASCII too: `访问https://a.cn了解`).
fn is_url_end(b: u8) -> bool {
    b.is_ascii_whitespace() || !b.is_ascii() || matches!(b, b'"' | b'\'' | b'<' | b'>' | b'(' | b')' | b'[' | b']')
}

/// Classifies a link target.
pub(crate) fn classify(target: &str) -> LinkKind {
    // Browsers ignore tabs/newlines inside URLs: `java\tscript:` still runs.
    let compact: String = target
        .chars()
        .filter(|c| !c.is_whitespace() && !c.is_control())
        .flat_map(char::to_lowercase)
        .collect();
    if ["javascript:", "vbscript:", "data:"]
        .iter()
        .any(|s| compact.starts_with(s))
    {
        return LinkKind::Unsafe;
    }
    if is_redirect(&compact) {
        LinkKind::Redirect
    } else {
        LinkKind::Plain
    }
}

/// Shortener hosts, or a query parameter carrying another URL.
fn is_redirect(url: &str) -> bool {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let after_scheme = after_scheme.strip_prefix("//").unwrap_or(after_scheme);
    let authority = after_scheme.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = host_port.split(':').next().unwrap_or("");
    if REDIRECT_HOSTS
        .iter()
        .any(|h| host == *h || host.strip_suffix(h).is_some_and(|p| p.ends_with('.')))
    {
        return true;
    }
    let Some((_, query)) = url.split_once('?') else {
        return false;
    };
    let query = query.split('#').next().unwrap_or("");
    query.split('&').any(|pair| {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        REDIRECT_PARAMS.contains(&name)
            && ["http:", "https:", "//", "%2f%2f", "http%3a", "https%3a", "www."]
                .iter()
                .any(|p| value.starts_with(p))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_urls_in_text() {
        let urls: Vec<String> =
            text_urls("Visit https://Example.com/a?b=1. or www.shop.cn, 访问http://x.cn了解 email@www.x")
                .into_iter()
                .map(|(_, u)| u)
                .collect();
        assert_eq!(urls, vec!["https://Example.com/a?b=1", "www.shop.cn", "http://x.cn"]);
        assert!(text_urls("no links, www. here, wwwx.com").is_empty());
    }

    #[test]
    fn classifies_targets() {
        assert_eq!(classify("https://example.com/page"), LinkKind::Plain);
        assert_eq!(classify("mailto:a@b.c"), LinkKind::Plain);
        assert_eq!(classify("java\tscript:alert(1)"), LinkKind::Unsafe);
        assert_eq!(classify("https://bit.ly/abc"), LinkKind::Redirect);
        assert_eq!(classify("https://x.t.cn/abc"), LinkKind::Redirect);
        assert_eq!(classify("https://unt.cn/abc"), LinkKind::Plain);
        assert_eq!(
            classify("https://a.com/r?url=https%3A%2F%2Fevil.com"),
            LinkKind::Redirect
        );
        assert_eq!(classify("https://a.com/r?next=/home"), LinkKind::Plain);
    }

    #[test]
    fn unsubscribe_placeholder_exact() {
        assert!(is_unsubscribe_placeholder("{{unsubscribe_url}}"));
        assert!(is_unsubscribe_placeholder(" {{ unsubscribe_url }} "));
        assert!(!is_unsubscribe_placeholder("{{unsubscribe_url}}x"));
        assert!(!is_unsubscribe_placeholder("https://a/?u={{unsubscribe_url}}"));
        assert!(!is_unsubscribe_placeholder("{{link}}"));
    }
}
