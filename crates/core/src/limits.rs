//! Sending limits wired to the store: the admission limits every enqueue is checked against
//! (inside the store's transaction, so that api processes sharing one database agree), per-account overrides,
//! reputation levels of sending domains and the account's daily quota, and the usage report behind
//! `GetSendQuota`.
//!
//! Core API for other features (batch sending): [`Mailpush::admission_limits`] gives the limits to pass to
//! `Queue::enqueue_limited`; [`Mailpush::send_quota`] says how many more recipients the account may send today;
//! a refused enqueue is `StoreError::Limit(LimitRefusal)`, mapped to its Tencent code by `CoreError::to_api`.

use crate::Env;
use mailpush_model::ErrorCode;
use mailpush_model::limits::{AccountLimitOverrides, AdmissionLimits};
use mailpush_quota::{ReputationLevel, account_daily_quota};
use mailpush_store::LimitRefusal;
use std::sync::Arc;

use crate::{AccountContext, CoreError};

/// One sending domain's reputation as `ListEmailIdentities` and `GetSendQuota` show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainReputation {
    /// The domain.
    pub domain: String,
    /// `CurrentReputationLevel` (1–20).
    pub level: u8,
    /// `DailyQuota` of that level.
    pub daily_quota: u64,
}

/// Changes to an account's limit overrides, one per field of [`AccountLimitOverrides`]: `Some(None)` clears the
/// field (back to the default), `None` leaves it as it is.
pub(crate) struct LimitChanges {
    pub(crate) sends_per_second: Option<Option<i64>>,
    pub(crate) per_recipient_per_hour: Option<Option<i64>>,
    pub(crate) daily_cap: Option<Option<i64>>,
}

/// The highest level and its quota (`MaxReputationLevel` / `MaxDailyQuota`).
pub const MAX_LEVEL: u8 = 20;

/// What `GetSendQuota` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendQuota {
    /// Recipients admitted today (UTC).
    pub sent_today: i64,
    /// Today's quota: the domains' level quotas summed, capped by `daily_cap`.
    pub daily_quota: i64,
    /// Recipients the account may still send today.
    pub remaining_today: i64,
    /// The cap in force (override or default).
    pub daily_cap: i64,
    /// Messages per second in force.
    pub sends_per_second: i64,
    /// Mails per recipient per sliding hour in force.
    pub per_recipient_per_hour: i64,
    /// Verified sending domains with their levels.
    pub domains: Vec<DomainReputation>,
}

/// The Tencent refusal for a limit the store applied.
pub(crate) fn refusal_to_api(r: &LimitRefusal) -> mailpush_model::ApiError {
    let code = match r {
        LimitRefusal::Rate { .. } => ErrorCode::RequestLimitExceeded,
        LimitRefusal::RecipientHourly { .. } => ErrorCode::FailedOperationFrequencyLimit,
        LimitRefusal::Daily { .. } => ErrorCode::FailedOperationExceedSendLimit,
    };
    mailpush_model::ApiError::new(code, r.to_string())
}

impl CoreError {
    /// True for a refusal the caller can act on (a rule or a sending limit), as opposed to an internal failure
    /// worth logging.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            CoreError::Refused(_) | CoreError::Store(crate::error::StorageError(mailpush_store::StoreError::Limit(_)))
        )
    }
}

/// Sending limits, daily quotas and reputation levels at admission.
pub struct Limits {
    pub(crate) env: Env,
    pub(crate) identities: Arc<crate::identity::Identities>,
}

impl Limits {
    pub(crate) async fn admission_limits(&self, account: &AccountContext) -> Result<AdmissionLimits, CoreError> {
        let s = &self.env.settings;
        let levels = match self.identities.state.domain_levels.get(&account.id) {
            Some(hit) => hit,
            None => {
                let read = Arc::new(self.env.store.limits().verified_domain_levels(account.id).await?);
                self.identities.state.domain_levels.put(account.id, read.clone());
                read
            }
        };
        let level_quota = account_daily_quota(levels.iter().map(|(_, l)| level_of(*l)), u64::MAX);
        Ok(AdmissionLimits {
            sends_per_second: s.limit_sends_per_second,
            per_recipient_per_hour: s.limit_per_recipient_per_hour,
            daily_cap: s.limit_daily_cap,
            level_quota: i64::try_from(level_quota).unwrap_or(i64::MAX),
        })
    }

    pub(crate) async fn send_quota(&self, account: &AccountContext) -> Result<SendQuota, CoreError> {
        let s = &self.env.settings;
        let usage = self.env.store.limits().account_usage(account.id).await?;
        let domains: Vec<DomainReputation> = self
            .env
            .store
            .limits()
            .verified_domain_levels(account.id)
            .await?
            .into_iter()
            .map(|(domain, l)| {
                let level = level_of(l);
                DomainReputation {
                    domain,
                    level: level.get(),
                    daily_quota: level.daily_quota(),
                }
            })
            .collect();
        let o = usage.overrides;
        let daily_cap = o.daily_cap.unwrap_or(s.limit_daily_cap);
        let level_sum: u64 = domains.iter().map(|d| d.daily_quota).sum();
        let daily_quota = i64::try_from(level_sum).unwrap_or(i64::MAX).min(daily_cap);
        let sent_today = usage.sent_on_day_of(self.env.clock.now_ms());
        Ok(SendQuota {
            sent_today,
            daily_quota,
            remaining_today: (daily_quota - sent_today).max(0),
            daily_cap,
            sends_per_second: o.sends_per_second.unwrap_or(s.limit_sends_per_second),
            per_recipient_per_hour: o.per_recipient_per_hour.unwrap_or(s.limit_per_recipient_per_hour),
            domains,
        })
    }

    pub(crate) async fn reputations(
        &self,
        account: &AccountContext,
        domains: &[&str],
    ) -> Result<Vec<DomainReputation>, CoreError> {
        let stored = self.env.store.limits().domain_levels(account.id).await?;
        Ok(domains
            .iter()
            .map(|domain| {
                let level = stored
                    .iter()
                    .find(|(d, _)| d.eq_ignore_ascii_case(domain))
                    .map_or(ReputationLevel::NEW, |(_, l)| level_of(*l));
                DomainReputation {
                    domain: (*domain).to_string(),
                    level: level.get(),
                    daily_quota: level.daily_quota(),
                }
            })
            .collect())
    }

    pub(crate) async fn domain_reputation(
        &self,
        account: &AccountContext,
        domain: &str,
    ) -> Result<DomainReputation, CoreError> {
        let level = self
            .env
            .store
            .limits()
            .domain_levels(account.id)
            .await?
            .into_iter()
            .find(|(d, _)| d.eq_ignore_ascii_case(domain))
            .map_or(ReputationLevel::NEW, |(_, l)| level_of(l));
        Ok(DomainReputation {
            domain: domain.to_string(),
            level: level.get(),
            daily_quota: level.daily_quota(),
        })
    }

    pub(crate) async fn set_account_limits(
        &self,
        name: &str,
        changes: LimitChanges,
    ) -> Result<AccountLimitOverrides, CoreError> {
        let account = self.env.operator_account(name).await?;
        let LimitChanges {
            sends_per_second,
            per_recipient_per_hour,
            daily_cap,
        } = changes;
        for v in [sends_per_second, per_recipient_per_hour, daily_cap]
            .into_iter()
            .flatten()
            .flatten()
        {
            if v < 0 {
                return Err(CoreError::refused(
                    ErrorCode::InvalidParameterValue,
                    "limits must not be negative",
                ));
            }
        }
        let mut o = self.env.store.limits().account_usage(account.id).await?.overrides;
        if let Some(v) = sends_per_second {
            o.sends_per_second = v;
        }
        if let Some(v) = per_recipient_per_hour {
            o.per_recipient_per_hour = v;
        }
        if let Some(v) = daily_cap {
            o.daily_cap = v;
        }
        self.env.store.limits().set_account_limits(account.id, o).await?;
        Ok(o)
    }

    pub(crate) async fn set_domain_level(&self, domain: &str, level: u8) -> Result<(), CoreError> {
        let Some(row) = self.env.store.identities().identity_for_admin(domain).await? else {
            return Err(CoreError::Config(format!("no sending domain {domain}")));
        };
        let level = ReputationLevel::new(level);
        self.env
            .store
            .limits()
            .set_domain_level(
                row.account_id,
                &row.domain,
                i64::from(level.get()),
                self.env.clock.now_ms(),
            )
            .await?;
        self.identities.forget_send_gate();
        Ok(())
    }
}

fn level_of(stored: i64) -> ReputationLevel {
    ReputationLevel::new(u8::try_from(stored.clamp(1, 20)).unwrap_or(1))
}
