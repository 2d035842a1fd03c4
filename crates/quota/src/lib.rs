//! Sending limits as Tencent SES defines them, as pure policy: the reputation-level table and how a domain moves
//! between levels, the account's daily quota, and the per-account / per-recipient limits. Counting lives in the
//! store (so several nodes sharing one database agree); this crate decides what the counts mean.

#![warn(missing_docs)]

use serde::{Deserialize, Serialize};

/// Daily quota of each reputation level, Tencent's table (index 0 = level 1).
pub const LEVEL_QUOTAS: [u64; 20] = [
    500, 1_000, 2_000, 5_000, 10_000, 20_000, 40_000, 60_000, 80_000, 100_000, 150_000, 200_000, 300_000, 400_000,
    500_000, 600_000, 700_000, 800_000, 900_000, 1_000_000,
];

/// A sending domain's reputation level, 1 (new domain, 500/day) to 20 (1,000,000/day).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ReputationLevel(u8);

impl ReputationLevel {
    /// The level of a newly verified domain.
    pub const NEW: ReputationLevel = ReputationLevel(1);
    /// The highest level.
    pub const MAX: ReputationLevel = ReputationLevel(20);

    /// A level, clamped to 1..=20.
    pub fn new(level: u8) -> Self {
        ReputationLevel(level.clamp(1, 20))
    }

    /// The level number.
    pub fn get(self) -> u8 {
        self.0
    }

    /// Mails per day this level allows.
    pub fn daily_quota(self) -> u64 {
        LEVEL_QUOTAS[usize::from(self.0 - 1)]
    }

    /// One level up (saturating).
    pub fn up(self) -> Self {
        ReputationLevel::new(self.0.saturating_add(1))
    }

    /// One level down (saturating at 1).
    pub fn down(self) -> Self {
        ReputationLevel::new(self.0.saturating_sub(1))
    }
}

/// Per-account limits; defaults are Tencent's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AccountLimits {
    /// Sends (API calls or SMTP messages) per second.
    pub sends_per_second: u32,
    /// Mails to one recipient address in any sliding hour.
    pub per_recipient_per_hour: u32,
    /// Upper bound of the daily quota, whatever the domains' levels add up to.
    pub daily_cap: u64,
}

impl Default for AccountLimits {
    fn default() -> Self {
        AccountLimits {
            sends_per_second: 20,
            per_recipient_per_hour: 10,
            daily_cap: 300_000,
        }
    }
}

/// The account's daily quota: the sum of its sending domains' level quotas, capped.
pub fn account_daily_quota(levels: impl IntoIterator<Item = ReputationLevel>, cap: u64) -> u64 {
    levels
        .into_iter()
        .map(ReputationLevel::daily_quota)
        .sum::<u64>()
        .min(cap)
}

/// Delivery quality of one domain over the evaluation window.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct DomainQuality {
    /// Recipients settled in the window (delivered + bounced; mail still queued says nothing yet).
    pub sent: u64,
    /// Delivered recipients.
    pub delivered: u64,
    /// Recipients that bounced as bad addresses (no such user / domain: enhanced code 5.1.x).
    pub invalid: u64,
    /// Hard and soft bounces that ended undelivered.
    pub bounced: u64,
    /// Complaints (spam reports).
    pub complaints: u64,
    /// The largest single day's volume in the window, to judge quota use.
    pub peak_day_volume: u64,
}

/// Thresholds for level changes; the defaults follow common mailbox-provider guidance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LevelPolicy {
    /// Share of the current quota the peak day must have used before the level goes up.
    pub min_quota_use: f64,
    /// Minimum delivered / sent.
    pub min_delivered_rate: f64,
    /// Maximum invalid / sent.
    pub max_invalid_rate: f64,
    /// Maximum bounced / sent.
    pub max_bounce_rate: f64,
    /// Maximum complaints / sent.
    pub max_complaint_rate: f64,
}

impl Default for LevelPolicy {
    fn default() -> Self {
        LevelPolicy {
            min_quota_use: 0.8,
            min_delivered_rate: 0.95,
            max_invalid_rate: 0.03,
            max_bounce_rate: 0.03,
            max_complaint_rate: 0.001,
        }
    }
}

/// What an evaluation decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LevelChange {
    /// Quality is good and most of the quota was used: raise now.
    Up(ReputationLevel),
    /// Quality dropped: lower (applied from the next day).
    Down(ReputationLevel),
    /// Keep the level.
    Keep,
}

fn rate(part: u64, whole: u64) -> f64 {
    if whole == 0 { 0.0 } else { part as f64 / whole as f64 }
}

impl LevelPolicy {
    /// True when the quality figures are within every threshold (volume not considered).
    pub fn quality_ok(&self, q: &DomainQuality) -> bool {
        q.sent == 0
            || (rate(q.delivered, q.sent) >= self.min_delivered_rate
                && rate(q.invalid, q.sent) <= self.max_invalid_rate
                && rate(q.bounced, q.sent) <= self.max_bounce_rate
                && rate(q.complaints, q.sent) <= self.max_complaint_rate)
    }

    /// Decides the level change for a domain at `level` with quality `q`.
    pub fn evaluate(&self, level: ReputationLevel, q: &DomainQuality) -> LevelChange {
        if !self.quality_ok(q) {
            return if level > ReputationLevel::NEW {
                LevelChange::Down(level.down())
            } else {
                LevelChange::Keep
            };
        }
        let used = rate(q.peak_day_volume, level.daily_quota());
        if used >= self.min_quota_use && level < ReputationLevel::MAX {
            LevelChange::Up(level.up())
        } else {
            LevelChange::Keep
        }
    }
}

/// Why a send is refused by a limit; core maps each to its Tencent code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitExceeded {
    /// More than `sends_per_second` in one second (RequestLimitExceeded).
    #[error("more than {limit} sends in one second")]
    Rate {
        /// The limit.
        limit: u32,
    },
    /// The recipient already got `limit` mails in the last hour (FailedOperation.FrequencyLimit, status 1006).
    #[error("{recipient} already received {limit} mails in the last hour")]
    RecipientHourly {
        /// The address.
        recipient: String,
        /// The limit.
        limit: u32,
    },
    /// Today's quota is used up (FailedOperation.ExceedSendLimit, status 1010).
    #[error("the daily quota of {quota} mails is used up")]
    Daily {
        /// The quota.
        quota: u64,
    },
}

/// An in-process token bucket for the per-account rate: a fast path that refuses obvious floods without a
/// database round trip. It never admits more than the shared store count would, because the store is checked too.
pub type LocalRateLimiter = governor::DefaultKeyedRateLimiter<i64>;

/// Builds the fast-path limiter for `per_second` sends per account.
pub fn local_rate_limiter(per_second: u32) -> LocalRateLimiter {
    let per_second = std::num::NonZeroU32::new(per_second.max(1)).unwrap_or(std::num::NonZeroU32::MIN);
    governor::RateLimiter::keyed(governor::Quota::per_second(per_second))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_table() {
        assert_eq!(ReputationLevel::NEW.daily_quota(), 500);
        assert_eq!(ReputationLevel::new(13).daily_quota(), 300_000);
        assert_eq!(ReputationLevel::MAX.daily_quota(), 1_000_000);
        assert_eq!(ReputationLevel::new(0), ReputationLevel::NEW);
        assert_eq!(ReputationLevel::new(99), ReputationLevel::MAX);
        assert_eq!(ReputationLevel::MAX.up(), ReputationLevel::MAX);
        assert_eq!(ReputationLevel::NEW.down(), ReputationLevel::NEW);
    }

    #[test]
    fn account_quota_is_summed_and_capped() {
        let lv = |n| ReputationLevel::new(n);
        assert_eq!(account_daily_quota([lv(1), lv(2)], 300_000), 1_500);
        assert_eq!(account_daily_quota([lv(20), lv(20)], 300_000), 300_000);
        assert_eq!(account_daily_quota([], 300_000), 0);
    }

    #[test]
    fn levels_move_with_volume_and_quality() {
        let p = LevelPolicy::default();
        let good = DomainQuality {
            sent: 1000,
            delivered: 990,
            peak_day_volume: 450,
            ..Default::default()
        };
        assert_eq!(
            p.evaluate(ReputationLevel::NEW, &good),
            LevelChange::Up(ReputationLevel::new(2))
        );
        let quiet = DomainQuality {
            peak_day_volume: 100,
            ..good
        };
        assert_eq!(p.evaluate(ReputationLevel::NEW, &quiet), LevelChange::Keep);
        let bouncy = DomainQuality {
            bounced: 80,
            delivered: 900,
            ..good
        };
        assert_eq!(
            p.evaluate(ReputationLevel::new(5), &bouncy),
            LevelChange::Down(ReputationLevel::new(4))
        );
        assert_eq!(p.evaluate(ReputationLevel::NEW, &bouncy), LevelChange::Keep);
        let complained = DomainQuality { complaints: 5, ..good };
        assert!(!p.quality_ok(&complained));
    }
}
