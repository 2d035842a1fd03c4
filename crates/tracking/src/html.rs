//! HTML rewriting for tracking: a small attribute scanner, not a parser. It rewrites `href` attribute values
//! that are absolute http(s) URLs and leaves everything else byte for byte.

use crate::is_http_url;

/// Rewrites every `href="http(s)://…"` (double, single or unquoted) through `redirect`, which gets the
/// link's URL (HTML entities `&amp;` decoded) and returns the replacement URL (inserted as is: it must not
/// need HTML escaping). Other links (mailto:, relative, anchors) are untouched. Returns the new HTML and the
/// number of links rewritten.
pub fn rewrite_links(html: &str, mut redirect: impl FnMut(&str) -> String) -> (String, usize) {
    let bytes = html.as_bytes();
    let lower = html.to_ascii_lowercase();
    let mut out = String::with_capacity(html.len() + 256);
    let mut copied = 0;
    let mut count = 0;
    let mut search = 0;
    while let Some(pos) = lower[search..].find("href") {
        let start = search + pos;
        search = start + 4;
        // An attribute name starts after whitespace (`<a href`, `<a\nhref`, `… title="x" href`).
        if start == 0 || !bytes[start - 1].is_ascii_whitespace() {
            continue;
        }
        let mut i = start + 4;
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= bytes.len() || bytes[i] != b'=' {
            continue;
        }
        i += 1;
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= bytes.len() {
            break;
        }
        let (value_start, value_end, next) = match bytes[i] {
            q @ (b'"' | b'\'') => match html[i + 1..].find(q as char) {
                Some(len) => (i + 1, i + 1 + len, i + 2 + len),
                None => break,
            },
            _ => {
                let len = html[i..]
                    .find(|c: char| c.is_ascii_whitespace() || c == '>')
                    .unwrap_or(html.len() - i);
                (i, i + len, i + len)
            }
        };
        search = next;
        let raw = html[value_start..value_end].trim();
        let url = raw.replace("&amp;", "&");
        if !is_http_url(&url) {
            continue;
        }
        out.push_str(&html[copied..value_start]);
        out.push_str(&redirect(&url));
        copied = value_end;
        count += 1;
    }
    out.push_str(&html[copied..]);
    (out, count)
}

/// Adds a 1×1 image loading `pixel_url` just before `</body>` (or at the end when there is none).
pub fn add_open_pixel(html: &str, pixel_url: &str) -> String {
    let img = format!(
        "<img src=\"{pixel_url}\" width=\"1\" height=\"1\" alt=\"\" style=\"display:block;border:0;width:1px;height:1px\">"
    );
    insert_before_body_end(html, &img)
}

/// Inserts `fragment` before the last `</body>` (case-insensitive), or appends it.
pub fn insert_before_body_end(html: &str, fragment: &str) -> String {
    match html.to_ascii_lowercase().rfind("</body") {
        Some(i) => format!("{}{fragment}{}", &html[..i], &html[i..]),
        None => format!("{html}{fragment}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_http_links_only() {
        let html = r##"<p><a href="https://a.example/x?y=1&amp;z=2">A</a> <a HREF='http://b.example'>B</a>
<a href=https://c.example/>C</a> <a href="mailto:x@y.z">M</a> <a href="#top">T</a> <a data-href="https://d">D</a></p>"##;
        let (out, n) = rewrite_links(html, |u| format!("https://t.example/c/{}", u.len()));
        assert_eq!(n, 3);
        assert!(out.contains(r#"href="https://t.example/c/27""#), "{out}");
        assert!(out.contains("HREF='https://t.example/c/16'"));
        assert!(out.contains("href=https://t.example/c/18>"));
        assert!(out.contains(r#"href="mailto:x@y.z""#));
        assert!(out.contains(r#"data-href="https://d""#));
    }

    #[test]
    fn unterminated_attribute_is_left_alone() {
        let html = "<a href=\"https://x.example";
        assert_eq!(rewrite_links(html, |_| "Z".into()), (html.to_string(), 0));
    }

    #[test]
    fn pixel_goes_before_body_end() {
        assert_eq!(
            insert_before_body_end("<html><BODY>x</BODY></html>", "P"),
            "<html><BODY>xP</BODY></html>"
        );
        assert_eq!(insert_before_body_end("x", "P"), "xP");
        assert!(add_open_pixel("<p>x</p>", "https://t/o/1").contains("src=\"https://t/o/1\""));
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,300}") {
            let _ = rewrite_links(&s, |u| u.to_string());
            let _ = add_open_pixel(&s, "u");
        }
    }
}
