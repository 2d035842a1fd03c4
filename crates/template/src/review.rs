//! The automatic review: named rules, actionable reasons, every failure reported at once.

use std::fmt;
use std::str::FromStr;

use handlebars::Template;
use serde::{Deserialize, Serialize};

use crate::html::{self, Event};
use crate::links::{self, Link, LinkKind};
use crate::mustache::{self, Kind, UNSUBSCRIBE_PLACEHOLDER};
use crate::render::{ContentPart, syntax_message};
use crate::text::{collapse, count_words, visible_from_events};
use crate::{ForbiddenCategory, Lexicon, TemplateCategory};

/// A review rule. Its snake_case name ([`ReviewRule::as_str`]) is stable: store it, match
/// on it, show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewRule {
    /// `missing_body`: neither Html nor Text was given.
    MissingBody,
    /// `subject_format`: the Subject is empty, has a line break or is too long.
    SubjectFormat,
    /// `min_text_length`: less visible text than the category requires.
    MinTextLength,
    /// `empty_content`: no visible text, images or placeholders at all (categories without a minimum).
    EmptyContent,
    /// `variable_ratio`: more than one placeholder per [`ReviewConfig::words_per_placeholder`] visible words.
    VariableRatio,
    /// `all_variables`: placeholders and no visible words.
    AllVariables,
    /// `too_many_images`: more `<img>` than [`ReviewConfig::max_images`].
    TooManyImages,
    /// `image_only`: images and no visible words.
    ImageOnly,
    /// `forbidden_content`: a term of the [`Lexicon`].
    ForbiddenContent,
    /// `link_not_allowed`: a link other than the unsubscribe placeholder, and the account does not allow links.
    LinkNotAllowed,
    /// `redirect_link`: a shortener, a `?url=http…` redirect or a meta refresh.
    RedirectLink,
    /// `unsafe_link`: `javascript:`, `vbscript:` or `data:` links, never allowed.
    UnsafeLink,
    /// `malformed_html`: unclosed, mismatched or unterminated tags.
    MalformedHtml,
    /// `invalid_placeholder`: an expression TemplateData can never fill, or invalid syntax.
    InvalidPlaceholder,
}

impl ReviewRule {
    /// Every rule.
    pub const ALL: [ReviewRule; 14] = [
        Self::MissingBody,
        Self::SubjectFormat,
        Self::MinTextLength,
        Self::EmptyContent,
        Self::VariableRatio,
        Self::AllVariables,
        Self::TooManyImages,
        Self::ImageOnly,
        Self::ForbiddenContent,
        Self::LinkNotAllowed,
        Self::RedirectLink,
        Self::UnsafeLink,
        Self::MalformedHtml,
        Self::InvalidPlaceholder,
    ];

    /// The stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MissingBody => "missing_body",
            Self::SubjectFormat => "subject_format",
            Self::MinTextLength => "min_text_length",
            Self::EmptyContent => "empty_content",
            Self::VariableRatio => "variable_ratio",
            Self::AllVariables => "all_variables",
            Self::TooManyImages => "too_many_images",
            Self::ImageOnly => "image_only",
            Self::ForbiddenContent => "forbidden_content",
            Self::LinkNotAllowed => "link_not_allowed",
            Self::RedirectLink => "redirect_link",
            Self::UnsafeLink => "unsafe_link",
            Self::MalformedHtml => "malformed_html",
            Self::InvalidPlaceholder => "invalid_placeholder",
        }
    }
}

impl fmt::Display for ReviewRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The string is not a rule name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown review rule {0:?}")]
pub struct ParseReviewRuleError(pub String);

impl FromStr for ReviewRule {
    type Err = ParseReviewRuleError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str() == s.trim())
            .ok_or_else(|| ParseReviewRuleError(s.to_owned()))
    }
}

/// One failed check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewFinding {
    /// The rule that failed.
    pub rule: ReviewRule,
    /// The part it concerns (`None` for the template as a whole).
    pub part: Option<ContentPart>,
    /// What is wrong and what to do, in English.
    pub reason: String,
    /// The same in Chinese.
    pub reason_zh: String,
}

/// The result of a review: approved when there are no findings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewOutcome {
    /// `findings.is_empty()`.
    pub approved: bool,
    /// Every failed check, Subject first, then Html, then Text.
    pub findings: Vec<ReviewFinding>,
}

impl ReviewOutcome {
    /// The distinct rules that failed, in order of first finding.
    pub fn rules(&self) -> Vec<ReviewRule> {
        let mut rules = Vec::new();
        for f in &self.findings {
            if !rules.contains(&f.rule) {
                rules.push(f.rule);
            }
        }
        rules
    }

    /// Whether `rule` failed.
    pub fn has(&self, rule: ReviewRule) -> bool {
        self.findings.iter().any(|f| f.rule == rule)
    }

    /// All English reasons, one per line (for a stored rejection reason).
    pub fn reasons(&self) -> String {
        self.findings
            .iter()
            .map(|f| f.reason.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// All Chinese reasons, one per line.
    pub fn reasons_zh(&self) -> String {
        self.findings
            .iter()
            .map(|f| f.reason_zh.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Operator-tunable thresholds. Defaults are the Tencent SES numbers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ReviewConfig {
    /// Minimum visible characters for trigger templates (default 0: no minimum).
    pub min_chars_trigger: usize,
    /// Minimum visible characters for notification templates (default 50).
    pub min_chars_notification: usize,
    /// Minimum visible characters for transactional templates (default 50).
    pub min_chars_transactional: usize,
    /// Minimum visible characters for marketing templates (default 150).
    pub min_chars_marketing: usize,
    /// Minimum visible characters for test templates (default 50).
    pub min_chars_test: usize,
    /// Visible words required per placeholder occurrence (default 5: the 1 : 5 ratio).
    pub words_per_placeholder: usize,
    /// Maximum `<img>` tags in Html (default 50).
    pub max_images: usize,
    /// Maximum Subject length in UTF-8 bytes, before rendering (default 998).
    pub max_subject_bytes: usize,
    /// Findings kept per rule and part; the rest are summarised in one more finding (default 10).
    pub max_findings_per_rule: usize,
}

impl Default for ReviewConfig {
    fn default() -> Self {
        Self {
            min_chars_trigger: 0,
            min_chars_notification: 50,
            min_chars_transactional: 50,
            min_chars_marketing: 150,
            min_chars_test: 50,
            words_per_placeholder: 5,
            max_images: 50,
            max_subject_bytes: crate::MAX_SUBJECT_BYTES,
            max_findings_per_rule: 10,
        }
    }
}

impl ReviewConfig {
    /// The minimum visible characters for `category`.
    pub fn min_chars(&self, category: TemplateCategory) -> usize {
        match category {
            TemplateCategory::Trigger => self.min_chars_trigger,
            TemplateCategory::Notification => self.min_chars_notification,
            TemplateCategory::Transactional => self.min_chars_transactional,
            TemplateCategory::Marketing => self.min_chars_marketing,
            TemplateCategory::Test => self.min_chars_test,
        }
    }
}

/// Per-account permissions.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ReviewPolicy {
    /// Allow ordinary links (default `false`: only [`UNSUBSCRIBE_PLACEHOLDER`]).
    pub allow_links: bool,
    /// Allow redirect links (shorteners, `?url=http…`, meta refresh) too (default `false`).
    pub allow_redirect_links: bool,
}

/// What is reviewed. At least one of `html` and `text` is required.
///
/// When both are given both are reviewed, each against every body rule; with no Html,
/// the Text is the visible text. The Subject (optional: Tencent passes it per send) is
/// checked for placeholders, format, forbidden content and links, not for length or ratio.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReviewInput<'a> {
    /// The Subject, if the template has one.
    pub subject: Option<&'a str>,
    /// The HTML body.
    pub html: Option<&'a str>,
    /// The plain-text body.
    pub text: Option<&'a str>,
    /// The template's category.
    pub category: TemplateCategory,
}

impl<'a> ReviewInput<'a> {
    /// An input of `category` with no parts yet.
    pub fn new(category: TemplateCategory) -> Self {
        Self {
            category,
            ..Self::default()
        }
    }

    /// With a Subject.
    pub fn subject(mut self, subject: &'a str) -> Self {
        self.subject = Some(subject);
        self
    }

    /// With an Html body.
    pub fn html(mut self, html: &'a str) -> Self {
        self.html = Some(html);
        self
    }

    /// With a Text body.
    pub fn text(mut self, text: &'a str) -> Self {
        self.text = Some(text);
        self
    }
}

/// A configured reviewer: thresholds and lexicon, built once, shared by every review.
#[derive(Debug, Clone, Default)]
pub struct Reviewer {
    /// Thresholds.
    pub config: ReviewConfig,
    /// Forbidden terms.
    pub lexicon: Lexicon,
}

impl Reviewer {
    /// A reviewer with these thresholds and lexicon.
    pub fn new(config: ReviewConfig, lexicon: Lexicon) -> Self {
        Self { config, lexicon }
    }

    /// Reviews `input` under an account's `policy`.
    pub fn review(&self, input: &ReviewInput<'_>, policy: &ReviewPolicy) -> ReviewOutcome {
        review(input, policy, &self.lexicon, &self.config)
    }
}

/// Reviews a template: runs every rule and reports every failure.
///
/// Per body part (Html and Text are reviewed independently when both are given):
/// - `min_text_length`: visible characters ([`crate::visible_text_html`] /
///   [`crate::visible_text_plain`]) ≥ [`ReviewConfig::min_chars`] for the category.
/// - `variable_ratio`: placeholder occurrences × [`ReviewConfig::words_per_placeholder`] ≤
///   visible words (a CJK character is one word; any other run of letters/digits is one
///   word); `{{unsubscribe_url}}` is not counted.
/// - `all_variables` / `image_only` / `empty_content`: no visible words, and respectively
///   placeholders, images, or nothing at all (the last only where the category has no minimum).
/// - `too_many_images`: `<img>` count ≤ [`ReviewConfig::max_images`].
/// - `forbidden_content`: [`Lexicon::find`] on the visible text (and on the Subject).
/// - `link_not_allowed` / `redirect_link` / `unsafe_link`: `href`/`action`/`formaction`
///   attributes (any value except exactly `{{unsubscribe_url}}`), meta refresh, and
///   `http://`, `https://`, `www.` in visible text. Image `src` is not a link.
/// - `malformed_html`: unterminated tags/comments, unclosed or stray elements, with line
///   and column. Void elements and optional end tags (`p`, `li`, `td`, `tr`, `html`,
///   `body`, …) are not errors.
/// - `invalid_placeholder`: anything but `{{name}}` / `{{! comment }}`, in every part.
///
/// At most [`ReviewConfig::max_findings_per_rule`] findings are listed per rule and part;
/// one more finding counts the rest. Never panics, whatever the input.
pub fn review(
    input: &ReviewInput<'_>,
    policy: &ReviewPolicy,
    lexicon: &Lexicon,
    config: &ReviewConfig,
) -> ReviewOutcome {
    let mut ctx = Ctx {
        config,
        policy,
        lexicon,
        category: input.category,
        findings: Vec::new(),
        counts: Vec::new(),
        cap: config.max_findings_per_rule.max(1),
    };
    if input.html.is_none() && input.text.is_none() {
        ctx.push(
            ReviewRule::MissingBody,
            None,
            "the template has neither an Html nor a Text body; provide at least one".into(),
            "模板既没有 HTML 正文也没有纯文本正文，请至少提供一个".into(),
        );
    }
    if let Some(subject) = input.subject {
        ctx.subject(subject);
    }
    if let Some(html) = input.html {
        ctx.body(ContentPart::Html, html);
    }
    if let Some(text) = input.text {
        ctx.body(ContentPart::Text, text);
    }
    let findings = ctx.finish();
    ReviewOutcome {
        approved: findings.is_empty(),
        findings,
    }
}

struct Ctx<'a> {
    config: &'a ReviewConfig,
    policy: &'a ReviewPolicy,
    lexicon: &'a Lexicon,
    category: TemplateCategory,
    findings: Vec<ReviewFinding>,
    /// Findings per (rule, part), listed or not: one broken template must not produce
    /// (or spend time formatting) thousands of findings.
    counts: Vec<((ReviewRule, Option<ContentPart>), usize)>,
    cap: usize,
}

fn part_zh(part: ContentPart) -> &'static str {
    match part {
        ContentPart::Subject => "主题",
        ContentPart::Html => "HTML 正文",
        ContentPart::Text => "纯文本正文",
    }
}

fn category_zh(category: TemplateCategory) -> &'static str {
    match category {
        TemplateCategory::Trigger => "触发类",
        TemplateCategory::Notification => "通知类",
        TemplateCategory::Transactional => "事务类",
        TemplateCategory::Marketing => "营销类",
        TemplateCategory::Test => "测试类",
    }
}

/// Shortens what we quote back in a reason.
fn snippet(s: &str) -> String {
    const MAX: usize = 60;
    let mut out: String = s.chars().take(MAX).collect();
    if s.chars().nth(MAX).is_some() {
        out.push('…');
    }
    out
}

impl Ctx<'_> {
    fn count(&mut self, rule: ReviewRule, part: Option<ContentPart>) -> &mut usize {
        let key = (rule, part);
        let pos = match self.counts.iter().position(|(k, _)| *k == key) {
            Some(pos) => pos,
            None => {
                self.counts.push((key, 0));
                self.counts.len() - 1
            }
        };
        &mut self.counts[pos].1
    }

    /// Whether (rule, part) already has `cap` findings listed; if so this one is only
    /// counted, and the caller skips building its reason.
    fn is_full(&mut self, rule: ReviewRule, part: ContentPart) -> bool {
        let cap = self.cap;
        let n = self.count(rule, Some(part));
        let full = *n >= cap;
        if full {
            *n += 1;
        }
        full
    }

    fn push(&mut self, rule: ReviewRule, part: Option<ContentPart>, reason: String, reason_zh: String) {
        let cap = self.cap;
        let n = self.count(rule, part);
        *n += 1;
        if *n <= cap {
            self.findings.push(ReviewFinding {
                rule,
                part,
                reason,
                reason_zh,
            });
        }
    }

    /// The findings, plus one summary per (rule, part) that exceeded the cap.
    fn finish(mut self) -> Vec<ReviewFinding> {
        for ((rule, part), n) in std::mem::take(&mut self.counts) {
            if n > self.cap {
                let more = n - self.cap;
                let where_en = part.map(|p| format!("{p}: ")).unwrap_or_default();
                let where_zh = part.map(|p| format!("{}：", part_zh(p))).unwrap_or_default();
                self.findings.push(ReviewFinding {
                    rule,
                    part,
                    reason: format!("{where_en}{more} more {rule} problem(s) not listed"),
                    reason_zh: format!("{where_zh}另有 {more} 处 {rule} 问题未列出"),
                });
            }
        }
        self.findings
    }

    fn at(&mut self, rule: ReviewRule, part: ContentPart, en: String, zh: String) {
        self.push(
            rule,
            Some(part),
            format!("{part}: {en}"),
            format!("{}：{zh}", part_zh(part)),
        );
    }

    /// Placeholder checks shared by every part; returns the scan and the number of
    /// placeholder occurrences counting towards the ratio.
    fn placeholders(&mut self, part: ContentPart, src: &str) -> (Vec<mustache::Mustache>, usize) {
        let found = mustache::scan(src);
        let mut count = 0;
        let mut unsupported = false;
        for m in &found {
            match &m.kind {
                // The unsubscribe link is the service's, not the sender's content.
                Kind::Variable(name) if name != UNSUBSCRIBE_PLACEHOLDER => count += 1,
                Kind::Variable(_) | Kind::Comment => {}
                Kind::Unsupported(why) => {
                    unsupported = true;
                    if self.is_full(ReviewRule::InvalidPlaceholder, part) {
                        continue;
                    }
                    let (line, col) = mustache::line_col(src, m.start);
                    let expr = mustache::expression_text(src, m);
                    self.at(
                        ReviewRule::InvalidPlaceholder,
                        part,
                        format!("{expr} at line {line}, column {col}: {}", why.reason_en()),
                        format!("第 {line} 行第 {col} 列的 {expr}：{}", why.reason_zh()),
                    );
                }
            }
        }
        if !unsupported && let Err(e) = Template::compile(src) {
            // Our scanner found nothing wrong but handlebars disagrees: report its reason.
            let msg = syntax_message(&e);
            self.at(
                ReviewRule::InvalidPlaceholder,
                part,
                format!("invalid template syntax ({msg}); use simple placeholders like {{{{name}}}}"),
                format!("模板语法错误（{msg}），请使用 {{{{name}}}} 这样的简单变量"),
            );
        }
        (found, count)
    }

    fn subject(&mut self, subject: &str) {
        let part = ContentPart::Subject;
        let (found, _) = self.placeholders(part, subject);
        if subject.trim().is_empty() {
            self.at(
                ReviewRule::SubjectFormat,
                part,
                "the Subject is empty".into(),
                "主题为空".into(),
            );
        }
        if subject.contains(['\r', '\n']) {
            self.at(
                ReviewRule::SubjectFormat,
                part,
                "the Subject contains a line break; write it on one line".into(),
                "主题包含换行符，请写成一行".into(),
            );
        }
        let max = self.config.max_subject_bytes;
        if subject.len() > max {
            self.at(
                ReviewRule::SubjectFormat,
                part,
                format!(
                    "the Subject is {} bytes (UTF-8); shorten it to at most {max}",
                    subject.len()
                ),
                format!("主题长度为 {} 字节（UTF-8），请缩短到 {max} 字节以内", subject.len()),
            );
        }
        let visible = collapse(&mustache::mask(subject, &found));
        self.forbidden(part, &visible);
        self.links(part, links::text_links(&visible));
    }

    fn body(&mut self, part: ContentPart, src: &str) {
        let (found, placeholders) = self.placeholders(part, src);
        let masked = mustache::mask(src, &found);
        let (visible, images, found_links) = if part == ContentPart::Html {
            let events = html::tokenize(&masked);
            self.malformed(src, &events);
            let visible = visible_from_events(&masked, &events);
            let images = events
                .iter()
                .filter(|e| matches!(e, Event::Start(t) if t.name == "img"))
                .count();
            let found_links = links::html_links(src, &events, &visible);
            (visible, images, found_links)
        } else {
            let visible = collapse(&masked);
            let found_links = links::text_links(&visible);
            (visible, 0, found_links)
        };
        let chars = visible.chars().count();
        let words = count_words(&visible);
        let min = self.config.min_chars(self.category);
        let (cat, cat_zh) = (self.category, category_zh(self.category));

        if words == 0 && images > 0 {
            self.at(
                ReviewRule::ImageOnly,
                part,
                format!("the body has {images} image(s) and no visible text; add text describing the message"),
                format!("正文只有 {images} 张图片而没有可见文字，请添加说明邮件内容的文字"),
            );
        } else if words == 0 && placeholders > 0 {
            self.at(
                ReviewRule::AllVariables,
                part,
                "the body consists only of placeholders; add fixed text around them".into(),
                "正文只有变量，请在变量前后添加固定文字".into(),
            );
        } else if words == 0 && min == 0 {
            self.at(
                ReviewRule::EmptyContent,
                part,
                "the body has no visible text; add the message text".into(),
                "正文没有可见文字，请添加邮件内容".into(),
            );
        }
        if chars < min {
            self.at(
                ReviewRule::MinTextLength,
                part,
                format!(
                    "visible text is {chars} characters; {cat} templates need at least {min} (placeholders, tags and markup do not count); add more text"
                ),
                format!("可见文字为 {chars} 个字符，{cat_zh}模板至少需要 {min} 个字符（变量、标签不计入），请补充正文"),
            );
        }
        let per = self.config.words_per_placeholder;
        if words > 0 && placeholders > 0 && placeholders.saturating_mul(per) > words {
            let needed = placeholders.saturating_mul(per);
            self.at(
                ReviewRule::VariableRatio,
                part,
                format!(
                    "{placeholders} placeholder(s) for {words} visible word(s); at most 1 placeholder per {per} words is allowed, so add at least {} words or remove placeholders",
                    needed - words
                ),
                format!(
                    "{placeholders} 个变量对应 {words} 个可见词（中文每字计 1），变量与文字之比不得超过 1:{per}，请至少再添加 {} 个词或减少变量",
                    needed - words
                ),
            );
        }
        let max_images = self.config.max_images;
        if images > max_images {
            self.at(
                ReviewRule::TooManyImages,
                part,
                format!("the body has {images} images; at most {max_images} are allowed"),
                format!("正文有 {images} 张图片，最多允许 {max_images} 张"),
            );
        }
        self.forbidden(part, &visible);
        self.links(part, found_links);
    }

    fn malformed(&mut self, src: &str, events: &[Event]) {
        let part = ContentPart::Html;
        for issue in html::balance_issues(events) {
            if self.is_full(ReviewRule::MalformedHtml, part) {
                continue;
            }
            let (line, col) = mustache::line_col(src, issue.offset());
            let (en, zh) = match &issue {
                html::HtmlIssue::UnterminatedTag { tag, .. } => (
                    format!(
                        "tag <{tag}> at line {line}, column {col} is never terminated with '>' (check for an unclosed quote)"
                    ),
                    format!("第 {line} 行第 {col} 列的标签 <{tag}> 没有以 “>” 结束（请检查引号是否闭合）"),
                ),
                html::HtmlIssue::UnterminatedComment { .. } => (
                    format!("comment at line {line}, column {col} is never closed with '-->'"),
                    format!("第 {line} 行第 {col} 列的注释没有以 “-->” 结束"),
                ),
                html::HtmlIssue::Unclosed {
                    tag,
                    closed_by: Some((by, at)),
                    ..
                } => {
                    let (by_line, by_col) = mustache::line_col(src, *at);
                    (
                        format!(
                            "<{tag}> opened at line {line}, column {col} is not closed before </{by}> at line {by_line}, column {by_col}; add </{tag}>"
                        ),
                        format!(
                            "第 {line} 行第 {col} 列的 <{tag}> 在第 {by_line} 行第 {by_col} 列的 </{by}> 之前没有闭合，请添加 </{tag}>"
                        ),
                    )
                }
                html::HtmlIssue::Unclosed {
                    tag, closed_by: None, ..
                } => (
                    format!("<{tag}> opened at line {line}, column {col} is never closed; add </{tag}>"),
                    format!("第 {line} 行第 {col} 列的 <{tag}> 没有闭合，请添加 </{tag}>"),
                ),
                html::HtmlIssue::TooDeep { tag, .. } => (
                    format!(
                        "<{tag}> at line {line}, column {col} is nested more than {} elements deep; close the elements you open",
                        html::MAX_DEPTH
                    ),
                    format!(
                        "第 {line} 行第 {col} 列的 <{tag}> 嵌套超过 {} 层，请闭合已打开的标签",
                        html::MAX_DEPTH
                    ),
                ),
                html::HtmlIssue::UnexpectedClose { tag, .. } => (
                    format!(
                        "</{tag}> at line {line}, column {col} closes an element that is not open; remove it or add the matching <{tag}>"
                    ),
                    format!("第 {line} 行第 {col} 列的 </{tag}> 没有对应的开始标签，请删除或补上 <{tag}>"),
                ),
            };
            self.at(ReviewRule::MalformedHtml, part, en, zh);
        }
    }

    fn forbidden(&mut self, part: ContentPart, visible: &str) {
        let mut by_category: Vec<(ForbiddenCategory, Vec<String>)> = Vec::new();
        for m in self.lexicon.find(visible) {
            match by_category.iter_mut().find(|(c, _)| *c == m.category) {
                Some((_, terms)) => terms.push(m.term),
                None => by_category.push((m.category, vec![m.term])),
            }
        }
        for (category, terms) in by_category {
            let quoted = terms.iter().map(|t| format!("\"{t}\"")).collect::<Vec<_>>().join(", ");
            self.at(
                ReviewRule::ForbiddenContent,
                part,
                format!("forbidden content ({category}): {quoted}; remove it"),
                format!("包含禁止内容（{}）：{quoted}，请删除", category.label_zh()),
            );
        }
    }

    fn links(&mut self, part: ContentPart, found: Vec<Link>) {
        let policy = self.policy;
        for link in found {
            let target = snippet(&link.target);
            let target = if target.is_empty() {
                "(empty)".to_owned()
            } else {
                target
            };
            let place = |src_pos: Option<usize>| src_pos.map(|_| " (in a link attribute)").unwrap_or("");
            match link.kind {
                LinkKind::Unsafe => self.at(
                    ReviewRule::UnsafeLink,
                    part,
                    format!("unsafe link {target}{}: javascript:, vbscript: and data: links are never allowed", place(link.offset)),
                    format!("不安全的链接 {target}：不允许 javascript:、vbscript: 和 data: 链接"),
                ),
                LinkKind::Redirect if !policy.allow_redirect_links => self.at(
                    ReviewRule::RedirectLink,
                    part,
                    format!(
                        "redirect link {target}{}: short links, ?url= redirects and meta refresh hide the destination; link to the final address",
                        place(link.offset)
                    ),
                    format!("跳转链接 {target}：短链接、?url= 跳转和 meta refresh 会隐藏真实地址，请直接链接到最终地址"),
                ),
                _ => {}
            }
            if link.kind != LinkKind::Unsafe && !policy.allow_links {
                self.at(
                    ReviewRule::LinkNotAllowed,
                    part,
                    format!(
                        "link {target}{}: links are not allowed for this account except {{{{{UNSUBSCRIBE_PLACEHOLDER}}}}}; remove it or ask for links to be enabled",
                        place(link.offset)
                    ),
                    format!(
                        "链接 {target}：此账号除 {{{{{UNSUBSCRIBE_PLACEHOLDER}}}}} 外不允许使用链接，请删除或申请开通链接权限"
                    ),
                );
            }
        }
    }
}
