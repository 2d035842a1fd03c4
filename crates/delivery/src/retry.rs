//! When to try a deferred delivery again.

use std::time::Duration;

/// The retry schedule of deferred deliveries.
///
/// `schedule[n - 1]` is the delay after the n-th failed attempt; once the schedule runs out its
/// last value repeats. A delivery still deferred `max_age` after it was queued is bounced by the
/// worker (RFC 5321 §4.5.4.1 suggests giving up after 4–5 days; mailpush, like Tencent, uses 72 h).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Delay after attempt n (index n − 1); the last value repeats.
    pub schedule: Vec<Duration>,
    /// Give up (bounce) once a delivery has been pending this long.
    pub max_age: Duration,
}

const MINUTE: u64 = 60;
const HOUR: u64 = 60 * MINUTE;

impl Default for RetryPolicy {
    /// 1 min, 5 min, 15 min, 30 min, 1 h, 2 h, 4 h, then every 4 h, for at most 72 h.
    fn default() -> Self {
        RetryPolicy {
            schedule: [MINUTE, 5 * MINUTE, 15 * MINUTE, 30 * MINUTE, HOUR, 2 * HOUR, 4 * HOUR]
                .into_iter()
                .map(Duration::from_secs)
                .collect(),
            max_age: Duration::from_secs(72 * HOUR),
        }
    }
}

impl RetryPolicy {
    /// The delay before the next attempt after `attempts` attempts have failed.
    /// `attempts == 0` (nothing tried yet) and an empty schedule give zero delay.
    pub fn delay_after(&self, attempts: u32) -> Duration {
        if attempts == 0 {
            return Duration::ZERO;
        }
        let index = (attempts as usize - 1).min(self.schedule.len().saturating_sub(1));
        self.schedule.get(index).copied().unwrap_or(Duration::ZERO)
    }

    /// True when a delivery first queued `age` ago must not be retried any more.
    pub fn expired(&self, age: Duration) -> bool {
        age >= self.max_age
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_schedule() {
        let p = RetryPolicy::default();
        let mins = |m: u64| Duration::from_secs(m * 60);
        assert_eq!(p.delay_after(0), Duration::ZERO);
        assert_eq!(p.delay_after(1), mins(1));
        assert_eq!(p.delay_after(2), mins(5));
        assert_eq!(p.delay_after(3), mins(15));
        assert_eq!(p.delay_after(4), mins(30));
        assert_eq!(p.delay_after(5), mins(60));
        assert_eq!(p.delay_after(6), mins(120));
        assert_eq!(p.delay_after(7), mins(240));
        assert_eq!(p.delay_after(8), mins(240));
        assert_eq!(p.delay_after(u32::MAX), mins(240));
        assert_eq!(p.max_age, Duration::from_secs(72 * 3600));
        assert!(!p.expired(Duration::from_secs(71 * 3600)));
        assert!(p.expired(Duration::from_secs(72 * 3600)));

        // The whole default schedule fits about 24 attempts into 72 hours.
        let mut total = Duration::ZERO;
        let mut attempts = 0;
        while total < p.max_age {
            attempts += 1;
            total += p.delay_after(attempts);
        }
        assert_eq!(attempts, 24);
    }

    #[test]
    fn custom_and_empty_schedules() {
        let p = RetryPolicy {
            schedule: vec![Duration::from_secs(10)],
            max_age: Duration::from_secs(60),
        };
        assert_eq!(p.delay_after(1), Duration::from_secs(10));
        assert_eq!(p.delay_after(100), Duration::from_secs(10));
        let empty = RetryPolicy {
            schedule: vec![],
            max_age: Duration::from_secs(60),
        };
        assert_eq!(empty.delay_after(3), Duration::ZERO);
    }
}
