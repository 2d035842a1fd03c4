//! Admission limits: the defaults one enqueue is checked against and the per-account overrides.

/// The limits one enqueue is checked against: the configured defaults (per-account overrides stored with
/// the store's `Limits::set_account_limits` replace them inside the transaction) and the account's reputation quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdmissionLimits {
    /// Default requests (messages) per second per account.
    pub sends_per_second: i64,
    /// Default mails per recipient address in any sliding hour.
    pub per_recipient_per_hour: i64,
    /// Default cap of the daily quota.
    pub daily_cap: i64,
    /// The sum of the account's verified domains' reputation quotas (before the cap).
    pub level_quota: i64,
}

/// Per-account overrides of the defaults; `None` = the configured default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "sqlx", derive(sqlx::FromRow))]
pub struct AccountLimitOverrides {
    /// Messages per second.
    pub sends_per_second: Option<i64>,
    /// Mails per recipient per sliding hour.
    pub per_recipient_per_hour: Option<i64>,
    /// Cap of the daily quota.
    pub daily_cap: Option<i64>,
}
