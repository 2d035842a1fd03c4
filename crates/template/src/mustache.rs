//! A small scanner for handlebars `{{…}}` expressions.
//!
//! It does not replace handlebars' parser (rendering still uses handlebars); it
//! classifies each expression so the review can say precisely *why* one can never be
//! filled from a `TemplateData` of scalars, and so visible text can exclude placeholders.

/// The placeholder the service fills with the recipient's unsubscribe URL, used as
/// `{{unsubscribe_url}}` (typically `<a href="{{unsubscribe_url}}">`).
///
/// It is the only link a template may contain when its account does not allow links.
/// Callers set it with [`TemplateData::set_unsubscribe_url`](crate::TemplateData::set_unsubscribe_url);
/// sender-supplied TemplateData may not set it (see [`DataPolicy`](crate::DataPolicy)).
pub const UNSUBSCRIBE_PLACEHOLDER: &str = "unsubscribe_url";

/// Names handlebars gives a meaning of its own: `{{this}}` renders the whole context,
/// `{{true}}` a literal, `{{else}}` belongs to a block.
const RESERVED: [&str; 6] = ["this", "else", "true", "false", "null", "undefined"];

/// Why an expression is not a simple placeholder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unsupported {
    /// `{{#each …}}`, `{{/if}}`, `{{^x}}`.
    Block,
    /// `{{else}}`.
    Else,
    /// `{{> partial}}`.
    Partial,
    /// `{{{raw}}}` or `{{&raw}}`: unescaped output.
    Raw,
    /// `{{{{raw}}}}` raw blocks.
    RawBlock,
    /// `{{* decorator}}`.
    Decorator,
    /// `{{helper arg}}`: a helper call with parameters.
    HelperCall,
    /// `{{user.name}}`, `{{../x}}`, `{{@index}}`, `{{[a b]}}`.
    Path,
    /// `{{this}}`, `{{true}}`, …
    Reserved,
    /// `{{}}`.
    Empty,
    /// A name that is not a simple identifier (`{{first-name}}`, `{{1x}}`).
    InvalidName,
    /// `{{` with no matching `}}`.
    Unterminated,
}

impl Unsupported {
    /// Why, in English; says what to do instead.
    pub(crate) fn reason_en(self) -> &'static str {
        match self {
            Self::Block => {
                "block helpers ({{#each}}, {{#if}}, {{/…}}) are not supported: TemplateData holds only scalar values; use simple placeholders like {{name}}"
            }
            Self::Else => {
                "{{else}} belongs to a block helper, which is not supported; use simple placeholders like {{name}}"
            }
            Self::Partial => "partials ({{> name}}) are not supported; put the content in the template itself",
            Self::Raw => {
                "unescaped output ({{{name}}} or {{&name}}) is not allowed; use {{name}}, which is HTML-escaped"
            }
            Self::RawBlock => "raw blocks ({{{{raw}}}}) are not supported",
            Self::Decorator => "decorators ({{* …}}) are not supported",
            Self::HelperCall => {
                "helper calls with arguments are not supported; a placeholder is a single name like {{name}}"
            }
            Self::Path => {
                "paths ({{a.b}}, {{../a}}, {{@index}}, {{[a b]}}) cannot be filled from TemplateData, which holds only top-level scalar values; use a simple name like {{name}}"
            }
            Self::Reserved => {
                "this name is reserved by handlebars (this, else, true, false, null, undefined); rename the placeholder"
            }
            Self::Empty => "empty placeholder {{}}; put a variable name inside",
            Self::InvalidName => {
                "a placeholder name must be a simple identifier: a letter or _ followed by letters, digits or _"
            }
            Self::Unterminated => "'{{' is never closed with '}}'",
        }
    }

    /// Why, in Chinese.
    pub(crate) fn reason_zh(self) -> &'static str {
        match self {
            Self::Block => {
                "不支持块助手（{{#each}}、{{#if}}、{{/…}}）：模板数据只包含简单值，请使用 {{name}} 这样的简单变量"
            }
            Self::Else => "{{else}} 属于块助手，不受支持；请使用 {{name}} 这样的简单变量",
            Self::Partial => "不支持子模板（{{> name}}），请把内容直接写入模板",
            Self::Raw => "不允许不转义输出（{{{name}}} 或 {{&name}}），请使用会做 HTML 转义的 {{name}}",
            Self::RawBlock => "不支持原始块（{{{{raw}}}}）",
            Self::Decorator => "不支持装饰器（{{* …}}）",
            Self::HelperCall => "不支持带参数的助手调用；变量只能是一个名称，如 {{name}}",
            Self::Path => {
                "路径表达式（{{a.b}}、{{../a}}、{{@index}}、{{[a b]}}）无法由只含顶层简单值的模板数据填充，请使用 {{name}} 这样的简单名称"
            }
            Self::Reserved => "该名称是 handlebars 保留字（this、else、true、false、null、undefined），请改名",
            Self::Empty => "空变量 {{}}，请在其中写上变量名",
            Self::InvalidName => "变量名必须是简单标识符：以字母或 _ 开头，后接字母、数字或 _",
            Self::Unterminated => "“{{” 没有对应的 “}}”",
        }
    }
}

/// What one `{{…}}` expression is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A simple placeholder: `{{name}}` (whitespace and `~` allowed inside the braces).
    Variable(String),
    /// `{{! … }}` or `{{!-- … --}}`: renders nothing.
    Comment,
    /// Anything a scalar TemplateData can never satisfy.
    Unsupported(Unsupported),
}

/// One expression and its byte range in the scanned string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mustache {
    pub start: usize,
    pub end: usize,
    pub kind: Kind,
}

/// Whether `name` is a simple identifier usable as a placeholder: a letter (any script)
/// or `_`, then letters, digits or `_`; not a handlebars reserved word.
///
/// Hyphens, dots and the like are refused because handlebars would read them as paths
/// or because they invite typos that fail only at send time.
pub fn is_simple_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c == '_' || c.is_alphabetic());
    first_ok && chars.all(|c| c == '_' || c.is_alphanumeric()) && !RESERVED.contains(&name)
}

/// The placeholder names used in `source`, deduplicated, in order of first use.
///
/// Only simple placeholders (`{{name}}`) are returned; comments, escaped `\{{…}}` and
/// expressions that are not simple placeholders (blocks, helpers, paths, …) are skipped.
/// Never panics, whatever the input.
///
/// ```
/// assert_eq!(
///     mailpush_template::placeholders("Hi {{name}}, code {{ code }}, bye {{name}}"),
///     vec!["name".to_owned(), "code".to_owned()]
/// );
/// ```
pub fn placeholders(source: &str) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    let mut names: Vec<String> = Vec::new();
    for m in scan(source) {
        if let Kind::Variable(name) = m.kind
            && seen.insert(name.clone())
        {
            names.push(name);
        }
    }
    names
}

/// Scans `source` for every `{{…}}` expression.
pub(crate) fn scan(source: &str) -> Vec<Mustache> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(rel) = source.get(from..).and_then(|s| s.find("{{")) {
        let start = from + rel;
        let rest = &source[start..];
        let backslashes = source[..start].bytes().rev().take_while(|&b| b == b'\\').count();
        if backslashes == 1 {
            // `\{{` is handlebars' escape: literal braces, not an expression.
            from = start + if rest.starts_with("{{{{") { 4 } else { 2 };
            continue;
        }
        let (end, kind) = classify(source, start);
        out.push(Mustache { start, end, kind });
        from = end.max(start + 2);
    }
    out
}

/// Classifies the expression opening at `start` (which points at `{{`); returns its end.
fn classify(source: &str, start: usize) -> (usize, Kind) {
    let rest = &source[start..];
    // Nothing after an opener without its closer can close it: the expression runs to
    // the end, which also keeps the scan linear on inputs full of unclosed openers.
    let unclosed = (source.len(), Kind::Unsupported(Unsupported::Unterminated));
    let closing = |open: usize, close: &str| rest[open..].find(close).map(|i| start + open + i + close.len());
    if rest.starts_with("{{{{") {
        return closing(4, "}}}}").map_or(unclosed, |end| (end, Kind::Unsupported(Unsupported::RawBlock)));
    }
    if rest.starts_with("{{{") {
        return closing(3, "}}}").map_or(unclosed, |end| (end, Kind::Unsupported(Unsupported::Raw)));
    }
    let after_tilde = rest[2..].strip_prefix('~').unwrap_or(&rest[2..]);
    if after_tilde.starts_with("!--") {
        let open = rest.len() - after_tilde.len();
        return closing(open, "--}}").map_or(unclosed, |end| (end, Kind::Comment));
    }
    match first_brace_pair(&rest[2..]) {
        None => unclosed,
        // `{{a {{b}}`: the first `{{` is never closed; the scan resumes at the second.
        Some((_, false)) => (start + 2, Kind::Unsupported(Unsupported::Unterminated)),
        Some((i, true)) => (start + 2 + i + 2, Kind::classify_inner(&rest[2..2 + i])),
    }
}

/// The first `}}` (true) or `{{` (false) in `s`, whichever comes first.
fn first_brace_pair(s: &str) -> Option<(usize, bool)> {
    s.as_bytes().windows(2).enumerate().find_map(|(i, w)| match w {
        b"}}" => Some((i, true)),
        b"{{" => Some((i, false)),
        _ => None,
    })
}

impl Kind {
    fn classify_inner(inner: &str) -> Kind {
        let inner = inner.strip_prefix('~').unwrap_or(inner);
        let inner = inner.strip_suffix('~').unwrap_or(inner).trim();
        let unsupported = Kind::Unsupported;
        match inner.chars().next() {
            None => unsupported(Unsupported::Empty),
            Some('!') => Kind::Comment,
            Some('#' | '/' | '^') => unsupported(Unsupported::Block),
            Some('>') => unsupported(Unsupported::Partial),
            Some('&') => unsupported(Unsupported::Raw),
            Some('*') => unsupported(Unsupported::Decorator),
            Some(_) if inner == "else" || inner.starts_with("else ") => unsupported(Unsupported::Else),
            Some(_) if inner.contains(char::is_whitespace) => unsupported(Unsupported::HelperCall),
            Some(_) if inner.contains(['.', '/', '@', '[', ']']) => unsupported(Unsupported::Path),
            Some(_) if inner.contains(['(', ')', '=', '"', '\'']) => unsupported(Unsupported::HelperCall),
            Some(_) if RESERVED.contains(&inner) => unsupported(Unsupported::Reserved),
            Some(_) if is_simple_identifier(inner) => Kind::Variable(inner.to_owned()),
            Some(_) => unsupported(Unsupported::InvalidName),
        }
    }
}

/// The expression as written, for messages: at most 80 characters; an unterminated
/// `{{` shows what follows it up to the end of its line.
pub(crate) fn expression_text(source: &str, m: &Mustache) -> String {
    let end = if matches!(m.kind, Kind::Unsupported(Unsupported::Unterminated)) {
        source[m.start..]
            .find(['\n', '\r'])
            .map_or(source.len(), |i| m.start + i)
    } else {
        m.end
    };
    let text = source.get(m.start..end).unwrap_or("");
    let mut out: String = text.chars().take(80).collect();
    if text.chars().nth(80).is_some() {
        out.push('…');
    }
    out
}

/// `source` with every recognised `{{…}}` expression replaced by spaces of the same byte
/// length, so byte offsets stay valid for the HTML scanner and placeholders never count
/// as visible text. Unterminated `{{` are left in place.
pub(crate) fn mask(source: &str, mustaches: &[Mustache]) -> String {
    let mut out = String::with_capacity(source.len());
    let mut last = 0;
    for m in mustaches {
        if matches!(m.kind, Kind::Unsupported(Unsupported::Unterminated)) || m.start < last {
            continue;
        }
        out.push_str(&source[last..m.start]);
        out.extend(std::iter::repeat_n(' ', m.end - m.start));
        last = m.end;
    }
    out.push_str(&source[last..]);
    out
}

/// 1-based line and column (in characters) of byte `offset` in `source`.
pub(crate) fn line_col(source: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(source.len());
    while !source.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &source[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(s: &str) -> Vec<Kind> {
        scan(s).into_iter().map(|m| m.kind).collect()
    }

    #[test]
    fn classifies_expressions() {
        use Unsupported as U;
        let v = |s: &str| Kind::Variable(s.to_owned());
        let u = Kind::Unsupported;
        let table: &[(&str, Kind)] = &[
            ("{{name}}", v("name")),
            ("{{ name }}", v("name")),
            ("{{~name~}}", v("name")),
            ("{{姓名}}", v("姓名")),
            ("{{_x1}}", v("_x1")),
            ("{{#each items}}", u(U::Block)),
            ("{{/each}}", u(U::Block)),
            ("{{^x}}", u(U::Block)),
            ("{{else}}", u(U::Else)),
            ("{{> footer}}", u(U::Partial)),
            ("{{{raw}}}", u(U::Raw)),
            ("{{&raw}}", u(U::Raw)),
            ("{{{{raw}}}}", u(U::RawBlock)),
            ("{{* inline}}", u(U::Decorator)),
            ("{{lookup a b}}", u(U::HelperCall)),
            ("{{f(x)}}", u(U::HelperCall)),
            ("{{user.name}}", u(U::Path)),
            ("{{../x}}", u(U::Path)),
            ("{{@index}}", u(U::Path)),
            ("{{this}}", u(U::Reserved)),
            ("{{true}}", u(U::Reserved)),
            ("{{}}", u(U::Empty)),
            ("{{ }}", u(U::Empty)),
            ("{{first-name}}", u(U::InvalidName)),
            ("{{1x}}", u(U::InvalidName)),
            ("{{! a comment }}", Kind::Comment),
            ("{{!-- a }} comment --}}", Kind::Comment),
            ("{{name", u(U::Unterminated)),
            ("{{{name}}", u(U::Unterminated)),
            ("{{!-- x }}", u(U::Unterminated)),
        ];
        for (src, want) in table {
            assert_eq!(kinds(src), vec![want.clone()], "{src}");
        }
    }

    #[test]
    fn escapes_and_nesting() {
        assert!(kinds(r"\{{name}}").is_empty());
        assert_eq!(kinds(r"\\{{name}}"), vec![Kind::Variable("name".into())]);
        assert_eq!(
            kinds("{{a {{b}}"),
            vec![Kind::Unsupported(Unsupported::Unterminated), Kind::Variable("b".into())]
        );
        assert_eq!(placeholders("{{a}}{{b}}{{a}}"), vec!["a", "b"]);
    }

    #[test]
    fn expression_text_for_messages() {
        let src = "ab {{name\nnext";
        assert_eq!(expression_text(src, &scan(src)[0]), "{{name");
        let long = format!("{{{{{}}}}}", "x".repeat(100));
        assert_eq!(expression_text(&long, &scan(&long)[0]).chars().count(), 81);
    }

    #[test]
    fn mask_keeps_offsets() {
        let src = "é{{name}}<b>{{! x }}</b>";
        let masked = mask(src, &scan(src));
        assert_eq!(masked.len(), src.len());
        assert_eq!(masked, "é        <b>        </b>");
    }

    #[test]
    fn line_col_counts_chars() {
        assert_eq!(line_col("ab\n中文x", 9), (2, 3));
        assert_eq!(line_col("ab\n中文x", 8), (2, 2));
        assert_eq!(line_col("abc", 0), (1, 1));
        assert_eq!(line_col("中", 1), (1, 1));
    }
}
