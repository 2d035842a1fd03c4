//! Templates as stored and listed (Tencent `TemplateStatus`, `TemplateID`) and the per-account content permissions.

use crate::ids::{AccountId, TemplateId};

/// Tencent `TemplateStatus`, stored as its wire value (INTEGER).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "sqlx", derive(sqlx::Type))]
#[repr(i32)]
pub enum TemplateStatus {
    /// Approved: may send.
    Approved = 0,
    /// Waiting for (manual) review.
    Reviewing = 1,
    /// Rejected: `review_reason` says why.
    Rejected = 2,
}

impl TemplateStatus {
    /// The wire value (`TemplateStatus` of the Tencent API).
    pub fn code(self) -> i32 {
        self as i32
    }
}

/// Per-account permissions over content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "sqlx", derive(sqlx::FromRow))]
pub struct AccountPolicy {
    /// May send custom content (`Simple`) rather than only approved templates (default `false`, as Tencent).
    pub allow_simple_content: bool,
    /// Templates may carry links other than the unsubscribe placeholder (default `false`).
    pub allow_links: bool,
}

/// A stored template with its content.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "sqlx", derive(sqlx::FromRow))]
pub struct StoredTemplate {
    /// `TemplateID`.
    pub id: TemplateId,
    /// The owning account.
    pub account_id: AccountId,
    /// `TemplateName`.
    pub name: String,
    /// The category's name.
    pub category: String,
    /// The HTML body.
    pub html: Option<String>,
    /// The text body.
    pub text: Option<String>,
    /// Review state.
    pub status: TemplateStatus,
    /// `ReviewReason`.
    pub review_reason: String,
    /// Content version: 1 at creation, +1 per edit.
    pub version: i64,
    /// `CreatedTimestamp`, Unix ms.
    pub created_ms: i64,
    /// Last content edit, Unix ms.
    pub updated_ms: i64,
}

/// A template without its content (listings).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "sqlx", derive(sqlx::FromRow))]
pub struct TemplateSummary {
    /// `TemplateID`.
    pub id: TemplateId,
    /// The owning account.
    pub account_id: AccountId,
    /// `TemplateName`.
    pub name: String,
    /// The category's name.
    pub category: String,
    /// Review state.
    pub status: TemplateStatus,
    /// `ReviewReason`.
    pub review_reason: String,
    /// Content version.
    pub version: i64,
    /// `CreatedTimestamp`, Unix ms.
    pub created_ms: i64,
    /// Last content edit, Unix ms.
    pub updated_ms: i64,
}

/// One page of an account's templates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplatePage {
    /// The page, newest first.
    pub templates: Vec<TemplateSummary>,
    /// How many templates the account has in total.
    pub total: i64,
}
