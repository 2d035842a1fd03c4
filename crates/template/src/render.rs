//! Compiling and rendering templates with handlebars.

use std::fmt;
use std::sync::{Arc, LazyLock};

use handlebars::{Handlebars, RenderErrorReason, Template};

use crate::TemplateData;
use crate::mustache::{self, Kind};

/// The longest rendered Subject, in bytes of UTF-8: RFC 5322's line limit.
pub const MAX_SUBJECT_BYTES: usize = 998;

/// Which part of a template something refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContentPart {
    /// The Subject line.
    Subject,
    /// The HTML body.
    Html,
    /// The plain-text body.
    Text,
}

impl ContentPart {
    /// `"subject"`, `"html"` or `"text"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Subject => "subject",
            Self::Html => "html",
            Self::Text => "text",
        }
    }
}

impl fmt::Display for ContentPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Subject => "Subject",
            Self::Html => "Html",
            Self::Text => "Text",
        })
    }
}

/// Compiling a template failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// Neither Html nor Text was given.
    #[error("a template needs an Html or a Text body")]
    MissingBody,
    /// An expression other than a simple `{{name}}` placeholder.
    #[error("{part} line {line}, column {column}: {expression}: {reason}")]
    UnsupportedExpression {
        /// The part containing it.
        part: ContentPart,
        /// The expression as written (at most 80 characters).
        expression: String,
        /// 1-based line.
        line: usize,
        /// 1-based column, in characters.
        column: usize,
        /// Why it cannot be used.
        reason: &'static str,
    },
    /// handlebars refused the syntax.
    #[error("{part}: invalid template syntax: {message}")]
    Syntax {
        /// The part.
        part: ContentPart,
        /// handlebars' message.
        message: String,
    },
}

/// Rendering failed. Rendering never substitutes an empty string for a missing value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// A placeholder has no value in the TemplateData.
    #[error("TemplateData has no value for placeholder {{{{{0}}}}}")]
    MissingVariable(String),
    /// The rendered Subject exceeds [`MAX_SUBJECT_BYTES`].
    #[error("rendered Subject is {bytes} bytes; the limit is {max}")]
    SubjectTooLong {
        /// Its length in bytes.
        bytes: usize,
        /// The limit.
        max: usize,
    },
    /// The rendered Subject contains CR or LF (header injection).
    #[error("rendered Subject contains a line break")]
    SubjectHasLineBreak,
    /// Any other handlebars failure (not expected for compiled templates).
    #[error("{part}: rendering failed: {message}")]
    Engine {
        /// The part.
        part: ContentPart,
        /// handlebars' message.
        message: String,
    },
}

/// The filled-in template, ready for MIME building.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedContent {
    /// The Subject line (checked: ≤ [`MAX_SUBJECT_BYTES`], no CR/LF).
    pub subject: String,
    /// The HTML body, values HTML-escaped.
    pub html: Option<String>,
    /// The plain-text body, values verbatim.
    pub text: Option<String>,
}

/// Name each registry registers its single template under.
const TPL: &str = "t";

/// Registries without handlebars' built-in helpers: with them, `{{len}}` or `{{not}}`
/// would call a helper instead of reading a variable. Strict mode makes a missing value an
/// error. Built once; per-template registries are cheap clones.
static HTML_REGISTRY: LazyLock<Handlebars<'static>> = LazyLock::new(|| registry(true));
static PLAIN_REGISTRY: LazyLock<Handlebars<'static>> = LazyLock::new(|| registry(false));

fn registry(escape_html: bool) -> Handlebars<'static> {
    let mut hb = Handlebars::new();
    for helper in [
        "if", "unless", "each", "with", "lookup", "raw", "log", "eq", "ne", "gt", "gte", "lt", "lte", "and", "or",
        "not", "len",
    ] {
        hb.unregister_helper(helper);
    }
    hb.set_strict_mode(true);
    if escape_html {
        hb.register_escape_fn(handlebars::html_escape);
    } else {
        hb.register_escape_fn(handlebars::no_escape);
    }
    hb
}

/// One compiled part: its registry and the placeholders it needs.
#[derive(Debug)]
struct Part {
    which: ContentPart,
    registry: Handlebars<'static>,
    names: Vec<String>,
}

impl Part {
    fn compile(which: ContentPart, source: &str) -> Result<Part, TemplateError> {
        let mut names = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for m in mustache::scan(source) {
            match m.kind {
                Kind::Variable(name) => {
                    if seen.insert(name.clone()) {
                        names.push(name);
                    }
                }
                Kind::Comment => {}
                Kind::Unsupported(why) => {
                    let (line, column) = mustache::line_col(source, m.start);
                    let expression = mustache::expression_text(source, &m);
                    return Err(TemplateError::UnsupportedExpression {
                        part: which,
                        expression,
                        line,
                        column,
                        reason: why.reason_en(),
                    });
                }
            }
        }
        let template = Template::compile(source).map_err(|e| TemplateError::Syntax {
            part: which,
            message: syntax_message(&e),
        })?;
        let mut registry = if which == ContentPart::Html {
            HTML_REGISTRY.clone()
        } else {
            PLAIN_REGISTRY.clone()
        };
        registry.register_template(TPL, template);
        Ok(Part { which, registry, names })
    }

    fn render(&self, data: &TemplateData) -> Result<String, RenderError> {
        // Checked up front so the error names the first missing placeholder in source
        // order, whatever handlebars would report.
        if let Some(missing) = self.names.iter().find(|n| !data.contains_key(n)) {
            return Err(RenderError::MissingVariable(missing.clone()));
        }
        self.registry
            .render_with_context(TPL, data.context())
            .map_err(|e| match e.reason() {
                RenderErrorReason::MissingVariable(name) => {
                    RenderError::MissingVariable(name.clone().unwrap_or_else(|| "?".to_owned()))
                }
                other => RenderError::Engine {
                    part: self.which,
                    message: other.to_string(),
                },
            })
    }
}

/// handlebars' error, on one line, with its position.
pub(crate) fn syntax_message(e: &handlebars::TemplateError) -> String {
    match e.pos() {
        Some((line, column)) => format!("line {line}, column {column}: {}", e.reason()),
        None => e.reason().to_string(),
    }
}

/// A template compiled once, rendered many times. Cloning is cheap (shared `Arc`s), and
/// it is `Send + Sync`, so one instance serves every thread.
///
/// Only simple `{{name}}` placeholders (and `{{! comments }}`) are accepted: blocks,
/// helpers, partials, paths and raw `{{{…}}}` output are refused at compile time, the same
/// rule the review applies, because TemplateData only holds scalars.
#[derive(Debug, Clone)]
pub struct CompiledTemplate {
    subject: Arc<Part>,
    html: Option<Arc<Part>>,
    text: Option<Arc<Part>>,
}

impl CompiledTemplate {
    /// Compiles a Subject and at least one of Html and Text.
    pub fn compile(subject: &str, html: Option<&str>, text: Option<&str>) -> Result<Self, TemplateError> {
        if html.is_none() && text.is_none() {
            return Err(TemplateError::MissingBody);
        }
        Ok(Self {
            subject: Arc::new(Part::compile(ContentPart::Subject, subject)?),
            html: html
                .map(|h| Part::compile(ContentPart::Html, h).map(Arc::new))
                .transpose()?,
            text: text
                .map(|t| Part::compile(ContentPart::Text, t).map(Arc::new))
                .transpose()?,
        })
    }

    /// The same bodies with another Subject; only the Subject is compiled.
    ///
    /// Tencent's SendEmail passes the Subject per request while the template (Html/Text)
    /// is stored: cache the template by id and version, then attach each send's Subject.
    pub fn with_subject(&self, subject: &str) -> Result<Self, TemplateError> {
        Ok(Self {
            subject: Arc::new(Part::compile(ContentPart::Subject, subject)?),
            ..self.clone()
        })
    }

    /// Fills the template from `data`.
    ///
    /// Values are HTML-escaped in Html and inserted verbatim in Text and Subject. Fails
    /// with [`RenderError::MissingVariable`] if any placeholder lacks a value, and checks
    /// the rendered Subject (≤ [`MAX_SUBJECT_BYTES`] bytes, no CR/LF).
    pub fn render(&self, data: &TemplateData) -> Result<RenderedContent, RenderError> {
        let subject = self.subject.render(data)?;
        if subject.contains(['\r', '\n']) {
            return Err(RenderError::SubjectHasLineBreak);
        }
        if subject.len() > MAX_SUBJECT_BYTES {
            return Err(RenderError::SubjectTooLong {
                bytes: subject.len(),
                max: MAX_SUBJECT_BYTES,
            });
        }
        Ok(RenderedContent {
            subject,
            html: self.html.as_ref().map(|p| p.render(data)).transpose()?,
            text: self.text.as_ref().map(|p| p.render(data)).transpose()?,
        })
    }

    /// Every placeholder name the template uses (Subject, Html, Text), deduplicated, in
    /// order of first use.
    pub fn placeholders(&self) -> Vec<&str> {
        let mut names: Vec<&str> = Vec::new();
        let parts = [Some(&self.subject), self.html.as_ref(), self.text.as_ref()];
        for name in parts.into_iter().flatten().flat_map(|p| p.names.iter()) {
            if !names.contains(&name.as_str()) {
                names.push(name);
            }
        }
        names
    }

    /// Whether the template has an Html body.
    pub fn has_html(&self) -> bool {
        self.html.is_some()
    }

    /// Whether the template has a Text body.
    pub fn has_text(&self) -> bool {
        self.text.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DataPolicy;

    fn data(json: &str) -> TemplateData {
        TemplateData::parse(
            json,
            &DataPolicy {
                reject_html: false,
                allow_reserved_keys: false,
            },
        )
        .expect("valid data")
    }

    #[test]
    fn is_send_sync_and_cheap_to_clone() {
        fn assert_send_sync<T: Send + Sync + Clone>() {}
        assert_send_sync::<CompiledTemplate>();
    }

    #[test]
    fn helper_names_are_plain_variables() {
        let t = CompiledTemplate::compile("{{len}}", None, Some("{{not}} {{if}}x")).expect("compiles");
        let out = t.render(&data(r#"{"len":"L","not":"N","if":"I"}"#)).expect("renders");
        assert_eq!(out.subject, "L");
        assert_eq!(out.text.as_deref(), Some("N Ix"));
    }

    #[test]
    fn compile_errors() {
        assert_eq!(
            CompiledTemplate::compile("s", None, None).err(),
            Some(TemplateError::MissingBody)
        );
        let err = CompiledTemplate::compile("s", Some("<p>\n {{#each items}}x{{/each}}</p>"), None).err();
        assert!(
            matches!(
                err,
                Some(TemplateError::UnsupportedExpression {
                    part: ContentPart::Html,
                    line: 2,
                    column: 2,
                    ..
                })
            ),
            "{err:?}"
        );
        let err = CompiledTemplate::compile("{{a.b}}", None, Some("x")).err();
        assert!(matches!(
            err,
            Some(TemplateError::UnsupportedExpression {
                part: ContentPart::Subject,
                ..
            })
        ));
    }

    #[test]
    fn with_subject_shares_bodies() {
        let t = CompiledTemplate::compile("a", Some("<p>{{x}}</p>"), None).expect("compiles");
        let t2 = t.with_subject("b {{y}}").expect("compiles");
        assert_eq!(t2.placeholders(), vec!["y", "x"]);
        let out = t2.render(&data(r#"{"x":1,"y":"Y"}"#)).expect("renders");
        assert_eq!((out.subject.as_str(), out.html.as_deref()), ("b Y", Some("<p>1</p>")));
        assert!(Arc::ptr_eq(
            t.html.as_ref().expect("html"),
            t2.html.as_ref().expect("html")
        ));
    }
}
