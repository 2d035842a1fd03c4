//! Warm-up: a new sending domain or source IP starts with a small daily allowance that grows day by day, so
//! mailbox providers see a sender's volume ramp up instead of a sudden flood. Mail over today's allowance is
//! not refused: it waits in the queue for the next days. This crate is the plan; the store's claim
//! (`Warmup::claim_with_warmup`, wired by core from the `warmup_domain_ramp` setting) applies it per sending domain.

#![warn(missing_docs)]

use serde::{Deserialize, Serialize};

/// The default ramp: roughly doubling for the first week, then growing more slowly, reaching unlimited volume on
/// day 30. Index 0 is the first day of sending.
pub const DEFAULT_RAMP: [u64; 29] = [
    50, 100, 200, 400, 800, 1_500, 2_500, 4_000, 6_000, 8_000, 10_000, 13_000, 16_000, 20_000, 25_000, 30_000, 37_000,
    45_000, 55_000, 65_000, 80_000, 95_000, 115_000, 140_000, 170_000, 200_000, 240_000, 290_000, 350_000,
];

/// Why a plan is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// A day's allowance is smaller than the day before.
    #[error("day {day}'s allowance is smaller than the previous day's")]
    Decreasing {
        /// 1-based day.
        day: usize,
    },
    /// A day with allowance 0 would stall the queue for good.
    #[error("day {day} allows nothing")]
    Zero {
        /// 1-based day.
        day: usize,
    },
}

/// A warm-up plan: the allowance of each day since the subject (domain or IP) started sending; after the last
/// day, unlimited.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WarmupPlan {
    days: Vec<u64>,
}

impl Default for WarmupPlan {
    fn default() -> Self {
        WarmupPlan {
            days: DEFAULT_RAMP.to_vec(),
        }
    }
}

/// Milliseconds in a day.
#[cfg(test)]
const DAY_MS: i64 = 86_400_000;

impl WarmupPlan {
    /// A plan from daily allowances; they must be positive and non-decreasing. An empty plan means no warm-up.
    pub fn new(days: Vec<u64>) -> Result<Self, PlanError> {
        for (i, d) in days.iter().enumerate() {
            if *d == 0 {
                return Err(PlanError::Zero { day: i + 1 });
            }
            if i > 0 && *d < days[i - 1] {
                return Err(PlanError::Decreasing { day: i + 1 });
            }
        }
        Ok(WarmupPlan { days })
    }

    /// No warm-up: unlimited from the first day.
    pub fn none() -> Self {
        WarmupPlan { days: Vec::new() }
    }

    /// The daily allowances.
    pub fn days(&self) -> &[u64] {
        &self.days
    }

    /// Today's allowance for a subject that started sending on the UTC day containing `started_ms`;
    /// `None` means unlimited (the ramp is over).
    pub fn allowance(&self, started_ms: i64, now_ms: i64) -> Option<u64> {
        let day = (mailpush_model::clock::day_number(now_ms) - mailpush_model::clock::day_number(started_ms)).max(0);
        usize::try_from(day).ok().and_then(|d| self.days.get(d).copied())
    }

    /// How many more mails may go today, given `sent_today`; `None` = unlimited.
    pub fn remaining(&self, started_ms: i64, now_ms: i64, sent_today: u64) -> Option<u64> {
        self.allowance(started_ms, now_ms).map(|a| a.saturating_sub(sent_today))
    }

    /// The first day (1-based) from which sending is unlimited.
    pub fn full_volume_day(&self) -> usize {
        self.days.len() + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_764_115_200_000; // a UTC midnight

    #[test]
    fn default_ramp_reaches_full_volume_in_about_30_days() {
        // The assertions name UTC days: the calendar zone is set to UTC for them.
        mailpush_model::time_zone::set_current(mailpush_model::TimeZone::utc());
        let p = WarmupPlan::default();
        assert_eq!(p.full_volume_day(), 30);
        assert_eq!(p.allowance(T0, T0), Some(50));
        assert_eq!(p.allowance(T0 + 3_600_000, T0 + DAY_MS - 1), Some(50), "same UTC day");
        assert_eq!(p.allowance(T0, T0 + DAY_MS), Some(100), "rolls over at midnight");
        assert_eq!(p.allowance(T0, T0 + 29 * DAY_MS), None);
        assert!(WarmupPlan::new(DEFAULT_RAMP.to_vec()).is_ok());
    }

    #[test]
    fn remaining_and_validation() {
        let p = WarmupPlan::new(vec![10, 20]).unwrap();
        assert_eq!(p.remaining(T0, T0, 7), Some(3));
        assert_eq!(p.remaining(T0, T0, 12), Some(0));
        assert_eq!(p.remaining(T0, T0 + 2 * DAY_MS, 1_000_000), None);
        assert_eq!(WarmupPlan::new(vec![10, 5]), Err(PlanError::Decreasing { day: 2 }));
        assert_eq!(WarmupPlan::new(vec![0]), Err(PlanError::Zero { day: 1 }));
        assert_eq!(WarmupPlan::none().allowance(T0, T0), None);
    }
}
