//! Automatic reputation levels of sending domains: the policy is `mailpush_quota::LevelPolicy`
//! (thresholds from the `level_*` settings); its inputs come from the store — today's admitted recipients per
//! sending domain (`deliveries`) and delivered / bounced / bad-address / complaint counts from the event log.
//!
//! - **Up, at once:** when a domain's recipients today reach `level_min_quota_use_percent` of its level's quota
//!   and the last 24 hours' settled recipients (at least `level_min_sample`) meet every quality threshold.
//! - **Down, on the next day:** once per UTC day, the previous day's quality is judged; a domain below a
//!   threshold (with at least `level_min_sample` settled recipients) goes down one level (never below 1).
//!
//! Every change is a compare-and-set in the store (the level must still be what was read; a day is evaluated
//! once), so the evaluation is idempotent and any number of workers may run it at once. It runs in a periodic
//! task ([`Mailpush::start_level_evaluator`], started next to the worker by `serve` and `mailpush-worker`).

use crate::Env;
use std::collections::HashMap;
use std::sync::Arc;

use crate::background::{FirstPass, spawn_periodic};
use mailpush_model::clock::{DAY_MS, day_start};
use mailpush_quota::{DomainQuality, LevelChange, LevelPolicy, ReputationLevel};
use mailpush_store::DomainOutcomes;

use crate::{AccountContext, CoreError};

/// One level change the evaluation made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LevelMove {
    /// The account.
    pub account_id: i64,
    /// The sending domain.
    pub domain: String,
    /// Level before.
    pub from: u8,
    /// Level after.
    pub to: u8,
}

/// The running evaluator; `shutdown` stops it (a pass in progress finishes first).
pub type LevelEvaluatorHandle = crate::background::BackgroundTask;

fn quality(o: Option<&DomainOutcomes>, peak_day_volume: u64) -> DomainQuality {
    let o = o.cloned().unwrap_or_default();
    let n = |v: i64| u64::try_from(v).unwrap_or(0);
    DomainQuality {
        // Settled recipients: mail still queued or deferred says nothing about quality yet.
        sent: n(o.delivered) + n(o.bounced),
        delivered: n(o.delivered),
        invalid: n(o.bad_address),
        bounced: n(o.bounced),
        complaints: n(o.complaints),
        peak_day_volume,
    }
}

/// Reputation level evaluation.
pub struct Levels {
    pub(crate) env: Env,
    pub(crate) accounts: Arc<crate::accounts::Accounts>,
    pub(crate) identities: Arc<crate::identity::Identities>,
}

impl Levels {
    pub(crate) fn level_policy(&self) -> LevelPolicy {
        let s = &self.env.settings;
        LevelPolicy {
            min_quota_use: s.level_min_quota_use_percent / 100.0,
            min_delivered_rate: s.level_min_delivered_percent / 100.0,
            max_invalid_rate: s.level_max_invalid_percent / 100.0,
            max_bounce_rate: s.level_max_bounce_percent / 100.0,
            max_complaint_rate: s.level_max_complaint_percent / 100.0,
        }
    }

    pub(crate) fn start_level_evaluator(self: &Arc<Self>) -> LevelEvaluatorHandle {
        spawn_periodic(
            self,
            self.env.settings.level_eval_secs,
            FirstPass::AfterPeriod,
            |core, _| async move {
                match core.evaluate_levels().await {
                    Ok(moves) => {
                        for m in moves {
                            tracing::info!(account = m.account_id, domain = %m.domain, from = m.from, to = m.to,
                            "reputation level changed");
                        }
                    }
                    Err(e) => tracing::error!(error = %e, "reputation level evaluation failed"),
                }
            },
        )
    }

    pub(crate) async fn evaluate_levels(&self) -> Result<Vec<LevelMove>, CoreError> {
        let mut moves = Vec::new();
        for account in self.accounts.list_accounts().await? {
            moves.extend(self.evaluate_account_levels(&account).await?);
        }
        Ok(moves)
    }

    /// Compare-and-set of `domain`'s level from `from` to `to`; `evaluated_day` marks the day a down move
    /// judged. False when another evaluator changed it first.
    async fn change_level(
        &self,
        account: &AccountContext,
        domain: &str,
        from: ReputationLevel,
        to: ReputationLevel,
        now: i64,
        evaluated_day: Option<i64>,
    ) -> Result<bool, CoreError> {
        let (from, to) = (i64::from(from.get()), i64::from(to.get()));
        Ok(self
            .env
            .store
            .warmup()
            .change_domain_level(account.id, domain, from, to, now, evaluated_day)
            .await?)
    }

    pub(crate) async fn evaluate_account_levels(&self, account: &AccountContext) -> Result<Vec<LevelMove>, CoreError> {
        let store = &self.env.store;
        let levels = store.limits().verified_domain_levels(account.id).await?;
        if levels.is_empty() {
            return Ok(Vec::new());
        }
        let policy = self.level_policy();
        let min_sample = self.env.settings.level_min_sample;
        let now = self.env.clock.now_ms();
        let today = day_start(now);
        let evaluated: HashMap<String, i64> = store
            .warmup()
            .domain_reputation_state(account.id)
            .await?
            .into_iter()
            .map(|(d, _, day)| (d, day))
            .collect();
        let mut moves = Vec::new();
        let mut yesterday: Option<Vec<DomainOutcomes>> = None;
        let mut current = Vec::with_capacity(levels.len());

        // Down, once per UTC day, on the previous day's quality.
        for (domain, stored) in levels {
            let level = ReputationLevel::new(u8::try_from(stored.clamp(1, 20)).unwrap_or(1));
            if evaluated.get(&domain).copied().unwrap_or(0) >= today {
                current.push((domain, level));
                continue;
            }
            if yesterday.is_none() {
                yesterday = Some(
                    store
                        .warmup()
                        .domain_outcomes(account.id, today - DAY_MS, today)
                        .await?,
                );
            }
            let q = quality(yesterday.iter().flatten().find(|o| o.domain == domain), 0);
            let next = match policy.evaluate(level, &q) {
                LevelChange::Down(l) if q.sent >= min_sample => l,
                _ => level,
            };
            let changed = self
                .change_level(account, &domain, level, next, now, Some(today))
                .await?;
            if changed && next != level {
                moves.push(LevelMove {
                    account_id: account.id,
                    domain: domain.clone(),
                    from: level.get(),
                    to: next.get(),
                });
                current.push((domain, next));
            } else if changed {
                current.push((domain, level));
            } else {
                // Another worker evaluated it meanwhile: leave the domain to the next pass.
                continue;
            }
        }

        // Up, at once, when most of today's quota is used with good quality over the last 24 hours.
        let volume: HashMap<String, i64> = store
            .warmup()
            .domain_volume(account.id, today, today + DAY_MS)
            .await?
            .into_iter()
            .collect();
        let mut recent: Option<Vec<DomainOutcomes>> = None;
        for (domain, level) in current {
            let used = u64::try_from(volume.get(&domain).copied().unwrap_or(0)).unwrap_or(0);
            if level == ReputationLevel::MAX || (used as f64) < policy.min_quota_use * level.daily_quota() as f64 {
                continue;
            }
            if recent.is_none() {
                recent = Some(
                    store
                        .warmup()
                        .domain_outcomes(account.id, now - DAY_MS, now + 1)
                        .await?,
                );
            }
            let q = quality(recent.iter().flatten().find(|o| o.domain == domain), used);
            let LevelChange::Up(next) = policy.evaluate(level, &q) else {
                continue;
            };
            if q.sent < min_sample {
                continue;
            }
            let changed = self.change_level(account, &domain, level, next, now, None).await?;
            if changed {
                moves.push(LevelMove {
                    account_id: account.id,
                    domain,
                    from: level.get(),
                    to: next.get(),
                });
            }
        }
        if !moves.is_empty() {
            self.identities.forget_send_gate();
        }
        Ok(moves)
    }
}
