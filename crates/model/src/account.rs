//! Per-account and per-sender settings: TLS required, content screening, default unsubscribe options.

/// An account's TLS requirements.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsRequiredSettings {
    /// Every mail of the account requires TLS.
    pub account: bool,
    /// The sender addresses whose mail requires TLS, by address.
    pub senders: Vec<String>,
}

/// How an account's custom (`Simple`) and SMTP mail is screened at admission.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
#[cfg_attr(feature = "sqlx", derive(sqlx::FromRow))]
pub struct ScreeningPolicy {
    /// Mail scoring below this (0–10) is refused; `None`: not scored at admission.
    pub min_score: Option<f64>,
    /// The template review's rules (lexicon, links) apply to custom content and SMTP mail.
    pub review_content: bool,
}

/// A sender address's default `Unsubscribe` option.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "sqlx", derive(sqlx::FromRow))]
pub struct UnsubscribeConfigRow {
    /// The sender address (lowercase).
    pub address: String,
    /// The `Unsubscribe` code as given ("0"–"12").
    pub unsubscribe_config: String,
    /// 1 = in force, 0 = off.
    pub status: i32,
    /// When it was created, Unix ms.
    pub created_ms: i64,
}
