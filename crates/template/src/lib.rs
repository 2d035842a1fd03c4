//! mailpush templates: the automatic review engine, `TemplateData` validation and
//! handlebars rendering.
//!
//! This crate is pure: no I/O, no storage, no async. Storage and the HTTP actions
//! (CreateEmailTemplate, SendEmail, …) are wired by `mailpush-core`.
//!
//! # Review
//! [`review`] (or a [`Reviewer`]) checks a template against named [`ReviewRule`]s and
//! reports *every* failing rule at once in a [`ReviewOutcome`]; each [`ReviewFinding`]
//! carries a reason in English and Chinese a person can act on.
//!
//! # Rendering
//! [`CompiledTemplate::compile`] parses Subject/Html/Text once; [`CompiledTemplate::render`]
//! fills them from a validated [`TemplateData`]. Values are HTML-escaped in Html, left as
//! they are in Text and Subject, and a placeholder the data lacks is an error
//! ([`RenderError::MissingVariable`]), never an empty string. [`TemplateCache`] keeps
//! compiled templates for reuse across sends.
//!
//! # Definitions used throughout
//! - **Placeholder**: `{{name}}` where `name` is a simple identifier (see [`placeholders`]).
//!   Anything else handlebars would treat as a helper, block, partial, path or raw output
//!   is rejected, because `TemplateData` only ever holds scalars.
//! - **Visible text**: see [`visible_text_html`] and [`visible_text_plain`]; its length is
//!   counted in Unicode characters (a Chinese character counts 1).
//! - **Variable ratio**: each placeholder *occurrence* (except `{{unsubscribe_url}}`) needs
//!   [`ReviewConfig::words_per_placeholder`] (default 5) visible *words*, where every CJK
//!   character is one word and every other run of letters/digits is one word:
//!   `occurrences × 5 ≤ words`. Placeholders and no words at all is `all_variables`.
//! - **TemplateData**: a JSON object of strings, numbers and booleans; `null` is refused
//!   (it would render as an empty string, which strict rendering exists to prevent).
//! - **Unsubscribe link**: `{{unsubscribe_url}}` ([`UNSUBSCRIBE_PLACEHOLDER`]), filled by the
//!   service, is the only link a template may carry unless its account allows links.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod cache;
mod category;
mod data;
mod html;
mod lexicon;
mod lexicon_default;
mod links;
mod mustache;
mod render;
mod review;
mod text;

pub use cache::{CacheStats, TemplateCache, TemplateKey};
pub use category::{ParseCategoryError, TemplateCategory};
pub use data::{DataPolicy, TemplateData, TemplateDataError};
pub use lexicon::{ForbiddenCategory, Lexicon, LexiconError, LexiconMatch, ParseForbiddenCategoryError};
pub use mustache::{UNSUBSCRIBE_PLACEHOLDER, is_simple_identifier, placeholders};
pub use render::{CompiledTemplate, ContentPart, MAX_SUBJECT_BYTES, RenderError, RenderedContent, TemplateError};
pub use review::{
    ParseReviewRuleError, ReviewConfig, ReviewFinding, ReviewInput, ReviewOutcome, ReviewPolicy, ReviewRule, Reviewer,
    review,
};
pub use text::{visible_text_html, visible_text_plain};
