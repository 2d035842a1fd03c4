//! Visible text: what a reader actually sees, as the review measures it.

use crate::html::{self, Event};
use crate::mustache;

/// The visible text of an HTML body.
///
/// Definition: handlebars expressions (`{{…}}`, including placeholders and comments) are
/// removed first; then tags, HTML comments, doctypes and the contents of `<script>` and
/// `<style>` are removed (block-level tags and `<br>` separate words, inline tags like
/// `<b>`/`<span>` do not); character references (`&amp;`, `&nbsp;`, `&#20013;`, `&#x4E2D;`)
/// are decoded; zero-width and control characters are dropped; runs of whitespace collapse
/// to one space and the ends are trimmed. Length is then counted in Unicode scalar values
/// (`chars()`), so each Chinese character counts 1.
///
/// Never panics, whatever the input.
pub fn visible_text_html(html: &str) -> String {
    let masked = mustache::mask(html, &mustache::scan(html));
    visible_from_events(&masked, &html::tokenize(&masked))
}

/// The visible text of a plain-text body: handlebars expressions removed, zero-width and
/// control characters dropped, whitespace collapsed and trimmed (no entity decoding: it
/// is not HTML). Never panics.
pub fn visible_text_plain(text: &str) -> String {
    collapse(&mustache::mask(text, &mustache::scan(text)))
}

/// Visible text from already-tokenized (masked) HTML.
pub(crate) fn visible_from_events(masked: &str, events: &[Event]) -> String {
    let mut raw = String::with_capacity(masked.len() / 2);
    for ev in events {
        match ev {
            Event::Text(r) => decode_entities_into(masked.get(r.clone()).unwrap_or(""), &mut raw),
            Event::Start(tag) if !html::is_inline(&tag.name) => raw.push(' '),
            Event::End { name, .. } if !html::is_inline(name) => raw.push(' '),
            _ => {}
        }
    }
    collapse(&raw)
}

/// Characters that take no space on screen.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{200B}' | '\u{200C}' | '\u{200D}' | '\u{2060}' | '\u{FEFF}' | '\u{00AD}'
    )
}

/// Collapses whitespace runs to one space, drops invisible characters, trims.
pub(crate) fn collapse(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut pending_space = false;
    for c in s.chars() {
        if c.is_whitespace() || c.is_control() {
            pending_space = !out.is_empty();
        } else if !is_invisible(c) {
            if pending_space {
                out.push(' ');
                pending_space = false;
            }
            out.push(c);
        }
    }
    out
}

/// Whether `c` is a CJK ideograph, kana or hangul: each counts as one word.
pub(crate) fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30FF     // hiragana, katakana
        | 0x3100..=0x312F   // bopomofo
        | 0x3400..=0x4DBF   // CJK extension A
        | 0x4E00..=0x9FFF   // CJK unified ideographs
        | 0xAC00..=0xD7AF   // hangul syllables
        | 0xF900..=0xFAFF   // CJK compatibility ideographs
        | 0x20000..=0x3134F // CJK extensions B–G
    )
}

/// Words in `s` for the variable ratio: every CJK character counts 1, and every maximal
/// run of other letters/digits counts 1. Punctuation and spaces count 0.
pub(crate) fn count_words(s: &str) -> usize {
    let mut words = 0;
    let mut in_word = false;
    for c in s.chars() {
        if is_cjk(c) {
            words += 1;
            in_word = false;
        } else if c.is_alphanumeric() {
            if !in_word {
                words += 1;
            }
            in_word = true;
        } else {
            in_word = false;
        }
    }
    words
}

/// Decodes HTML character references in `s`, appending to `out`. Unknown or malformed
/// references are kept literally, as browsers do.
pub(crate) fn decode_entities_into(s: &str, out: &mut String) {
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        match decode_one(after) {
            Some((c, used)) => {
                out.push(c);
                rest = &after[used..];
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
}

/// Decodes the reference at the start of `s` (just after `&`): the char and bytes used.
fn decode_one(s: &str) -> Option<(char, usize)> {
    if let Some(num) = s.strip_prefix('#') {
        let (digits, radix, prefix) = match num.strip_prefix(['x', 'X']) {
            Some(hex) => (hex, 16, 2),
            None => (num, 10, 1),
        };
        let len = digits
            .bytes()
            .take(8)
            .take_while(|b| (*b as char).is_digit(radix))
            .count();
        if len == 0 {
            return None;
        }
        let code = u32::from_str_radix(&digits[..len], radix).ok()?;
        let c = char::from_u32(code).filter(|&c| c != '\0').unwrap_or('\u{FFFD}');
        let semi = usize::from(digits[len..].starts_with(';'));
        return Some((c, prefix + len + semi));
    }
    let len = s.bytes().take(10).take_while(u8::is_ascii_alphanumeric).count();
    if len == 0 || !s[len..].starts_with(';') {
        return None;
    }
    named_entity(&s[..len]).map(|c| (c, len + 1))
}

/// The named references common in email HTML.
fn named_entity(name: &str) -> Option<char> {
    Some(match name {
        "amp" | "AMP" => '&',
        "lt" | "LT" => '<',
        "gt" | "GT" => '>',
        "quot" | "QUOT" => '"',
        "apos" => '\'',
        "nbsp" => '\u{A0}',
        "ensp" => '\u{2002}',
        "emsp" => '\u{2003}',
        "thinsp" => '\u{2009}',
        "zwnj" => '\u{200C}',
        "zwj" => '\u{200D}',
        "shy" => '\u{AD}',
        "copy" => '©',
        "reg" => '®',
        "trade" => '™',
        "hellip" => '…',
        "mdash" => '—',
        "ndash" => '–',
        "lsquo" => '‘',
        "rsquo" => '’',
        "sbquo" => '‚',
        "ldquo" => '“',
        "rdquo" => '”',
        "bdquo" => '„',
        "laquo" => '«',
        "raquo" => '»',
        "bull" => '•',
        "middot" => '·',
        "deg" => '°',
        "times" => '×',
        "divide" => '÷',
        "plusmn" => '±',
        "euro" => '€',
        "yen" => '¥',
        "pound" => '£',
        "cent" => '¢',
        "sect" => '§',
        "para" => '¶',
        "iexcl" => '¡',
        "iquest" => '¿',
        "frac12" => '½',
        "frac14" => '¼',
        "frac34" => '¾',
        "larr" => '←',
        "rarr" => '→',
        "uarr" => '↑',
        "darr" => '↓',
        "hearts" => '♥',
        "check" => '✓',
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_visible_text() {
        let table = [
            ("<p>Hello&nbsp;<b>wor</b>ld</p><p>next</p>", "Hello world next"),
            (
                "<style>p{}</style><script>var a='<b>';</script>Hi<!-- hidden -->!",
                "Hi!",
            ),
            ("Dear {{name}},<br>your code is {{code}}.", "Dear , your code is ."),
            (
                "&lt;tag&gt; &amp;amp; &#20013;&#x6587; &bogus; & alone",
                "<tag> &amp; 中文 &bogus; & alone",
            ),
            ("zero\u{200B}width   \n\t spaces", "zerowidth spaces"),
            ("<title>T</title><td>a</td><td>b</td>", "T a b"),
            ("{{! comment <b> }}text", "text"),
            ("&#0;&#99999999;", "\u{FFFD}\u{FFFD}"),
        ];
        for (src, want) in table {
            assert_eq!(visible_text_html(src), want, "{src}");
        }
    }

    #[test]
    fn plain_visible_text_and_words() {
        assert_eq!(visible_text_plain("  Hi {{name}}\n\nbye &amp; "), "Hi bye &amp;");
        assert_eq!(count_words("Hello, world! 中文字 x2"), 6);
        assert_eq!(count_words("..."), 0);
        assert_eq!(visible_text_html("中文").chars().count(), 2);
    }
}
