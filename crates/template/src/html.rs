//! A tolerant HTML tokenizer and tag-balance checker.
//!
//! Deliberately small: enough to find visible text, images, link attributes and
//! unclosed/mismatched tags in email HTML, without rejecting common valid HTML
//! (html/head/body, tables, inline styles, optional end tags like `</p>` and `</td>`).

use std::ops::Range;

/// One attribute; `value` is a byte range into the tokenized string (quotes excluded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Attr {
    pub name: String,
    pub value: Option<Range<usize>>,
}

/// A start tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StartTag {
    /// Lowercase tag name.
    pub name: String,
    pub attrs: Vec<Attr>,
    pub self_closing: bool,
    pub start: usize,
}

impl StartTag {
    /// The value range of attribute `name` (lowercase), if present with a value.
    pub fn attr(&self, name: &str) -> Option<Range<usize>> {
        self.attrs.iter().find(|a| a.name == name).and_then(|a| a.value.clone())
    }
}

/// A structural problem found while tokenizing or balancing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HtmlIssue {
    /// `<div class="x"` with no `>` (or an unterminated quoted attribute).
    UnterminatedTag { tag: String, offset: usize },
    /// `<!--` with no `-->`.
    UnterminatedComment { offset: usize },
    /// A start tag never closed; `closed_by` is the end tag that implicitly closed it, if any.
    Unclosed {
        tag: String,
        offset: usize,
        closed_by: Option<(String, usize)>,
    },
    /// An end tag with no matching open element.
    UnexpectedClose { tag: String, offset: usize },
    /// Elements nested deeper than [`MAX_DEPTH`]; balance is not checked past this point.
    TooDeep { tag: String, offset: usize },
}

/// Nesting depth beyond which balance checking stops (browsers cap the tree near here
/// too); it also bounds the work per end tag on hostile input.
pub(crate) const MAX_DEPTH: usize = 512;

impl HtmlIssue {
    pub fn offset(&self) -> usize {
        match self {
            Self::UnterminatedTag { offset, .. }
            | Self::UnterminatedComment { offset }
            | Self::Unclosed { offset, .. }
            | Self::UnexpectedClose { offset, .. }
            | Self::TooDeep { offset, .. } => *offset,
        }
    }
}

/// Tokenizer output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Event {
    /// Character data (entities not decoded).
    Text(Range<usize>),
    Start(StartTag),
    End {
        name: String,
        start: usize,
    },
    /// Contents of `<script>`/`<style>`: never visible.
    Hidden(Range<usize>),
    Issue(HtmlIssue),
}

/// Elements that never have an end tag.
const VOID: &[&str] = &[
    "area", "base", "basefont", "br", "col", "command", "embed", "frame", "hr", "img", "input", "keygen", "link",
    "meta", "param", "source", "track", "wbr",
];

/// Elements whose end tag HTML lets authors omit: closing them implicitly is not an error.
const OPTIONAL_END: &[&str] = &[
    "html", "head", "body", "p", "li", "dt", "dd", "option", "optgroup", "tr", "td", "th", "thead", "tbody", "tfoot",
    "colgroup", "caption", "rb", "rt", "rtc", "rp",
];

/// Inline elements: they do not separate words in visible text.
const INLINE: &[&str] = &[
    "a", "abbr", "b", "bdi", "bdo", "big", "cite", "code", "data", "del", "dfn", "em", "font", "i", "ins", "kbd",
    "label", "mark", "q", "s", "samp", "small", "span", "strike", "strong", "sub", "sup", "time", "tt", "u", "var",
];

pub(crate) fn is_void(name: &str) -> bool {
    VOID.contains(&name)
}

pub(crate) fn is_inline(name: &str) -> bool {
    INLINE.contains(&name)
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b':' | b'.')
}

/// Finds `needle` (ASCII) in `hay[from..]` ignoring ASCII case.
fn find_ascii_ci(hay: &str, from: usize, needle: &str) -> Option<usize> {
    let h = hay.as_bytes();
    let n = needle.as_bytes();
    if n.is_empty() || from >= h.len() || h.len() - from < n.len() {
        return None;
    }
    (from..=h.len() - n.len()).find(|&i| h[i..i + n.len()].eq_ignore_ascii_case(n))
}

/// Tokenizes `src`. Never panics; problems come out as [`Event::Issue`].
pub(crate) fn tokenize(src: &str) -> Vec<Event> {
    let b = src.as_bytes();
    let n = b.len();
    let mut events = Vec::new();
    let mut i = 0;
    let mut text_start = 0;
    let flush = |events: &mut Vec<Event>, from: usize, to: usize| {
        if from < to {
            events.push(Event::Text(from..to));
        }
    };
    while i < n {
        let Some(rel) = src[i..].find('<') else { break };
        i += rel;
        let next = b.get(i + 1).copied();
        match next {
            Some(b'!') | Some(b'?') => {
                flush(&mut events, text_start, i);
                let (close, skip) = if src[i..].starts_with("<!--") {
                    ("-->", 4)
                } else if src[i..].starts_with("<![CDATA[") {
                    ("]]>", 9)
                } else {
                    (">", 2)
                };
                match src[i + skip..].find(close) {
                    Some(k) => i = i + skip + k + close.len(),
                    None => {
                        let issue = if close == ">" {
                            HtmlIssue::UnterminatedTag {
                                tag: "!".into(),
                                offset: i,
                            }
                        } else {
                            HtmlIssue::UnterminatedComment { offset: i }
                        };
                        events.push(Event::Issue(issue));
                        i = n;
                    }
                }
                text_start = i;
            }
            Some(b'/') if b.get(i + 2).is_some_and(u8::is_ascii_alphabetic) => {
                flush(&mut events, text_start, i);
                let name_end = (i + 2..n).find(|&j| !is_name_byte(b[j])).unwrap_or(n);
                let name = src[i + 2..name_end].to_ascii_lowercase();
                match src[name_end..].find('>') {
                    Some(k) => {
                        events.push(Event::End { name, start: i });
                        i = name_end + k + 1;
                    }
                    None => {
                        events.push(Event::Issue(HtmlIssue::UnterminatedTag {
                            tag: format!("/{name}"),
                            offset: i,
                        }));
                        i = n;
                    }
                }
                text_start = i;
            }
            Some(c) if c.is_ascii_alphabetic() => {
                flush(&mut events, text_start, i);
                match start_tag(src, i) {
                    Ok((tag, end)) => {
                        let name = tag.name.clone();
                        let self_closing = tag.self_closing;
                        let tag_start = tag.start;
                        events.push(Event::Start(tag));
                        i = end;
                        let raw = matches!(name.as_str(), "script" | "style" | "title" | "textarea");
                        if raw && !self_closing {
                            // Raw text: markup inside is not markup (`if (a<b)` in a script).
                            let close = format!("</{name}");
                            match find_ascii_ci(src, i, &close) {
                                Some(k) => {
                                    let range = i..k;
                                    if matches!(name.as_str(), "script" | "style") {
                                        events.push(Event::Hidden(range));
                                    } else if !range.is_empty() {
                                        events.push(Event::Text(range));
                                    }
                                    i = k;
                                }
                                None => {
                                    events.push(Event::Issue(HtmlIssue::Unclosed {
                                        tag: name,
                                        offset: tag_start,
                                        closed_by: None,
                                    }));
                                    events.push(Event::Hidden(i..n));
                                    i = n;
                                }
                            }
                        }
                    }
                    Err(issue) => {
                        events.push(Event::Issue(issue));
                        i = n;
                    }
                }
                text_start = i;
            }
            _ => i += 1, // a literal '<' ("a < b")
        }
    }
    flush(&mut events, text_start, n);
    events
}

/// Parses the start tag at `start` (pointing at `<`); returns it and the offset after `>`.
fn start_tag(src: &str, start: usize) -> Result<(StartTag, usize), HtmlIssue> {
    let b = src.as_bytes();
    let n = b.len();
    let mut j = start + 1;
    while j < n && is_name_byte(b[j]) {
        j += 1;
    }
    let name = src[start + 1..j].to_ascii_lowercase();
    let unterminated = |name: &str| HtmlIssue::UnterminatedTag {
        tag: name.to_owned(),
        offset: start,
    };
    let mut attrs = Vec::new();
    let mut self_closing = false;
    loop {
        while j < n && b[j].is_ascii_whitespace() {
            j += 1;
        }
        if j >= n {
            return Err(unterminated(&name));
        }
        match b[j] {
            b'>' => {
                j += 1;
                break;
            }
            b'/' if b.get(j + 1) == Some(&b'>') => {
                self_closing = true;
                j += 2;
                break;
            }
            b'/' | b'=' => {
                j += 1;
                continue;
            }
            _ => {}
        }
        let name_start = j;
        while j < n
            && !b[j].is_ascii_whitespace()
            && b[j] != b'='
            && b[j] != b'>'
            && !(b[j] == b'/' && b.get(j + 1) == Some(&b'>'))
        {
            j += 1;
        }
        let attr_name = src[name_start..j].to_ascii_lowercase();
        let mut k = j;
        while k < n && b[k].is_ascii_whitespace() {
            k += 1;
        }
        let mut value = None;
        if k < n && b[k] == b'=' {
            k += 1;
            while k < n && b[k].is_ascii_whitespace() {
                k += 1;
            }
            if k < n && (b[k] == b'"' || b[k] == b'\'') {
                let quote = b[k] as char;
                let Some(q) = src[k + 1..].find(quote) else {
                    return Err(unterminated(&name));
                };
                value = Some(k + 1..k + 1 + q);
                k = k + 1 + q + 1;
            } else {
                let vs = k;
                while k < n && !b[k].is_ascii_whitespace() && b[k] != b'>' {
                    k += 1;
                }
                value = Some(vs..k);
            }
            j = k;
        }
        attrs.push(Attr { name: attr_name, value });
    }
    Ok((
        StartTag {
            name,
            attrs,
            self_closing,
            start,
        },
        j,
    ))
}

/// Whether starting `new` implicitly ends the open `top` (`<li>a<li>b`): keeps long
/// lists of unclosed `<p>`/`<li>`/`<td>` flat instead of "nested".
fn implied_close(new: &str, top: &str) -> bool {
    match new {
        "p" => top == "p",
        "li" => top == "li",
        "dt" | "dd" => matches!(top, "dt" | "dd"),
        "option" => top == "option",
        "td" | "th" => matches!(top, "td" | "th"),
        "tr" => matches!(top, "td" | "th" | "tr"),
        _ => false,
    }
}

/// Checks tag balance over tokenized events; returns issues in source order.
pub(crate) fn balance_issues(events: &[Event]) -> Vec<HtmlIssue> {
    let mut issues = Vec::new();
    let mut stack: Vec<(&str, usize)> = Vec::new();
    // The tokenizer reports an unclosed <script>/<style> itself (it swallows the rest).
    let mut raw_unclosed = None;
    for ev in events {
        match ev {
            Event::Issue(issue) => {
                if let HtmlIssue::Unclosed {
                    offset,
                    closed_by: None,
                    ..
                } = issue
                {
                    raw_unclosed = Some(*offset);
                }
                issues.push(issue.clone());
            }
            Event::Start(tag) => {
                if !tag.self_closing && !is_void(&tag.name) {
                    while stack.last().is_some_and(|(top, _)| implied_close(&tag.name, top)) {
                        stack.pop();
                    }
                    if stack.len() >= MAX_DEPTH {
                        issues.push(HtmlIssue::TooDeep {
                            tag: tag.name.clone(),
                            offset: tag.start,
                        });
                        issues.sort_by_key(HtmlIssue::offset);
                        return issues;
                    }
                    stack.push((&tag.name, tag.start));
                }
            }
            Event::End { name, start } => {
                if is_void(name) {
                    continue; // `</br>` is tolerated by every browser.
                }
                match stack.iter().rposition(|(open, _)| open == name) {
                    Some(pos) => {
                        for (open, offset) in stack.drain(pos + 1..) {
                            if !OPTIONAL_END.contains(&open) {
                                issues.push(HtmlIssue::Unclosed {
                                    tag: open.to_owned(),
                                    offset,
                                    closed_by: Some((name.clone(), *start)),
                                });
                            }
                        }
                        stack.pop();
                    }
                    None => issues.push(HtmlIssue::UnexpectedClose {
                        tag: name.clone(),
                        offset: *start,
                    }),
                }
            }
            Event::Text(_) | Event::Hidden(_) => {}
        }
    }
    for (open, offset) in stack {
        if !OPTIONAL_END.contains(&open) && raw_unclosed != Some(offset) {
            issues.push(HtmlIssue::Unclosed {
                tag: open.to_owned(),
                offset,
                closed_by: None,
            });
        }
    }
    issues.sort_by_key(HtmlIssue::offset);
    issues
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issues(src: &str) -> Vec<HtmlIssue> {
        balance_issues(&tokenize(src))
    }

    #[test]
    fn accepts_common_valid_html() {
        let ok = [
            "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>T</title><style>p{color:red}</style></head><body><p>Hi</p></body></html>",
            "<table style=\"width:100%\"><tr><td>a<td>b</tr><tr><td>c</td></tr></table>",
            "<ul><li>one<li>two</ul><p>para<p>another",
            "<p>line<br>break<br/><img src=x alt='a > b'><hr></p>",
            "<div/><script>if (a<b && c>d) {}</script><!-- <div> -->",
            "a < b and c > d",
            "<P>Upper</p>",
            "<input disabled><label for=x>X</label></br>",
        ];
        for src in ok {
            assert_eq!(issues(src), vec![], "{src}");
        }
    }

    #[test]
    fn reports_problems_with_positions() {
        assert_eq!(
            issues("<div><b>x</div>"),
            vec![HtmlIssue::Unclosed {
                tag: "b".into(),
                offset: 5,
                closed_by: Some(("div".into(), 9))
            }]
        );
        assert_eq!(
            issues("<div>x"),
            vec![HtmlIssue::Unclosed {
                tag: "div".into(),
                offset: 0,
                closed_by: None
            }]
        );
        assert_eq!(
            issues("x</span>"),
            vec![HtmlIssue::UnexpectedClose {
                tag: "span".into(),
                offset: 1
            }]
        );
        assert_eq!(
            issues("<a href=\"x"),
            vec![HtmlIssue::UnterminatedTag {
                tag: "a".into(),
                offset: 0
            }]
        );
        assert_eq!(issues("<!-- x"), vec![HtmlIssue::UnterminatedComment { offset: 0 }]);
        assert_eq!(issues(&"<p>x".repeat(MAX_DEPTH * 2)), vec![]);
        assert_eq!(
            issues(&format!("<table>{}</table>", "<tr><td>x<td>y".repeat(MAX_DEPTH))),
            vec![]
        );
        let deep = "<div>".repeat(MAX_DEPTH + 1);
        assert_eq!(
            issues(&deep),
            vec![HtmlIssue::TooDeep {
                tag: "div".into(),
                offset: MAX_DEPTH * 5
            }]
        );
        assert_eq!(
            issues("<script>x"),
            vec![HtmlIssue::Unclosed {
                tag: "script".into(),
                offset: 0,
                closed_by: None
            }]
        );
    }

    #[test]
    fn attributes() {
        let evs = tokenize("<a HREF='u v' data-x=1 checked>");
        let Some(Event::Start(tag)) = evs.first() else {
            panic!("no start tag")
        };
        assert_eq!(tag.name, "a");
        assert_eq!(tag.attr("href"), Some(9..12));
        assert_eq!(tag.attr("data-x"), Some(21..22));
        assert_eq!(tag.attrs.len(), 3);
    }
}
