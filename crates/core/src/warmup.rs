//! Warm-up of new sending domains, wired: the plan comes from `warmup_domain_ramp` (validated by
//! `mailpush_warmup::WarmupPlan`), the worker claims through `Warmup::claim_with_warmup` (the allowance is
//! counted per (account, sending domain, UTC day) inside the claim transaction; mail over it stays queued, held
//! until the next day), and this module reports the per-domain figures for `GetSendQuota` and `/metrics`.

use crate::Env;
use mailpush_model::clock::DAY_MS;
use mailpush_store::WarmupRamp;
use mailpush_warmup::WarmupPlan;

use crate::{AccountContext, CoreError, Settings};

/// One sending domain's warm-up today, as `GetSendQuota` shows it (`Warmup` entries).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainWarmup {
    /// The sending domain.
    pub domain: String,
    /// Day of the warm-up (1 = the first sending day); `None` before the domain ever sent.
    pub day: Option<i64>,
    /// Today's allowance; `None` = unlimited (warm-up over or disabled).
    pub allowance: Option<i64>,
    /// Deliveries that used today's allowance.
    pub sent_today: i64,
    /// Deliveries held for a later day's allowance.
    pub held: i64,
}

/// The ramp the worker enforces, or `None` when warm-up is disabled (`warmup_domain_ramp` empty).
pub fn ramp_from_settings(s: &Settings) -> Result<Option<WarmupRamp>, CoreError> {
    let plan = WarmupPlan::new(s.warmup_domain_ramp.clone())
        .map_err(|e| CoreError::Config(format!("warmup_domain_ramp: {e}")))?;
    if plan.days().is_empty() {
        return Ok(None);
    }
    if s.warmup_trigger_reserve_percent > 100 {
        return Err(CoreError::Config("warmup_trigger_reserve_percent must be 0-100".into()));
    }
    Ok(Some(WarmupRamp {
        days: plan.days().to_vec(),
        trigger_reserve_percent: s.warmup_trigger_reserve_percent,
    }))
}

/// Warm-up progress per domain.
pub struct Warmup {
    pub(crate) env: Env,
}

impl Warmup {
    pub(crate) async fn domain_warmup(&self, account: &AccountContext) -> Result<Vec<DomainWarmup>, CoreError> {
        let ramp = ramp_from_settings(&self.env.settings)?;
        let now = self.env.clock.now_ms();
        let today = mailpush_model::clock::day_start(now);
        let store = &self.env.store;
        let rows = store.warmup().domain_warmup(account.id).await?;
        let held = store.warmup().held_by_domain(account.id).await?;
        let mut domains: Vec<String> = store
            .limits()
            .verified_domain_levels(account.id)
            .await?
            .into_iter()
            .map(|(d, _)| d)
            .collect();
        domains.extend(rows.iter().map(|r| r.domain.clone()));
        domains.extend(held.iter().map(|(d, _)| d.clone()));
        domains.retain(|d| !d.is_empty());
        domains.sort();
        domains.dedup();
        Ok(domains
            .into_iter()
            .map(|domain| {
                let row = rows.iter().find(|r| r.domain == domain);
                // A domain that never sent starts today when it does.
                let first = row.map_or(today, |r| r.first_day_ms);
                DomainWarmup {
                    day: row.map(|r| (today - r.first_day_ms).div_euclid(DAY_MS) + 1),
                    allowance: ramp.as_ref().and_then(|p| p.allowance(first, today)),
                    sent_today: row.map_or(0, |r| r.sent_on_day_of(now)),
                    held: held.iter().find(|(d, _)| *d == domain).map_or(0, |(_, n)| *n),
                    domain,
                }
            })
            .collect())
    }
}
