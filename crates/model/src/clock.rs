//! Time as mailpush sees it: Unix milliseconds from a `Clock` that tests can drive.
//! Dates (`RequestDate`, daily quotas) are days of the process's calendar zone (`time_zone`, see [`crate::time_zone`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// A source of the current time in Unix milliseconds. Limits, leases, retries and warm-up read time only through it.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;
}

/// The real clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    }
}

/// A clock that moves only when told to, for tests of windows, days and schedules.
#[derive(Debug, Default)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    /// A clock standing at `ms`.
    pub fn new(ms: i64) -> Arc<Self> {
        Arc::new(ManualClock(AtomicI64::new(ms)))
    }

    /// Moves the clock forward by `ms`.
    pub fn advance(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }

    /// Sets the clock.
    pub fn set(&self, ms: i64) {
        self.0.store(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// The system clock shifted by an offset read from a file: how tests move the clock of a real `mailpush`
/// process (setting `test_clock_file`). The file holds the offset in milliseconds as decimal text; it is re-read at
/// most every 50 ms of real time, so a change is seen within that. A missing or unreadable file means offset 0.
/// Never configure this in production.
#[derive(Debug)]
pub struct OffsetFileClock {
    path: std::path::PathBuf,
    offset_ms: AtomicI64,
    checked_at_ms: AtomicI64,
}

impl OffsetFileClock {
    /// How long a read offset is trusted, in real milliseconds.
    pub const RECHECK_MS: i64 = 50;

    /// A clock reading its offset from `path`.
    pub fn new(path: impl Into<std::path::PathBuf>) -> Arc<Self> {
        let clock = OffsetFileClock {
            path: path.into(),
            offset_ms: AtomicI64::new(0),
            checked_at_ms: AtomicI64::new(i64::MIN),
        };
        clock.reload();
        clock.checked_at_ms.store(SystemClock.now_ms(), Ordering::Relaxed);
        Arc::new(clock)
    }

    fn reload(&self) {
        let offset = std::fs::read_to_string(&self.path)
            .ok()
            .and_then(|s| s.trim().parse::<i64>().ok())
            .unwrap_or(0);
        self.offset_ms.store(offset, Ordering::Relaxed);
    }

    /// Writes `offset_ms` to `path` atomically (temporary file + rename), for tests driving a clock.
    pub fn write_offset(path: &std::path::Path, offset_ms: i64) -> std::io::Result<()> {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, offset_ms.to_string())?;
        std::fs::rename(&tmp, path)
    }
}

impl Clock for OffsetFileClock {
    fn now_ms(&self) -> i64 {
        let real = SystemClock.now_ms();
        let checked = self.checked_at_ms.load(Ordering::Relaxed);
        if real.saturating_sub(checked) >= Self::RECHECK_MS
            && self
                .checked_at_ms
                .compare_exchange(checked, real, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.reload();
        }
        real + self.offset_ms.load(Ordering::Relaxed)
    }
}

/// A shared clock handle.
pub type SharedClock = Arc<dyn Clock>;

/// Milliseconds in a day.
pub const DAY_MS: i64 = 86_400_000;

/// The calendar date of `ms` as `YYYY-MM-DD` (in the process's time zone).
pub fn date_of(ms: i64) -> String {
    crate::time_zone::current().date_of(ms)
}

/// Parses a calendar `YYYY-MM-DD` into the half-open millisecond range `[start, end)` of that day.
pub fn day_range(date: &str) -> Option<(i64, i64)> {
    crate::time_zone::current().day_range(date)
}

/// The start of the calendar day containing `ms`.
pub fn day_start(ms: i64) -> i64 {
    crate::time_zone::current().day_start(ms)
}

/// The start of the calendar day after the one containing `ms`: where daily quotas and allowances reset.
pub fn next_day_start(ms: i64) -> i64 {
    crate::time_zone::current().next_day_start(ms)
}

/// The calendar day number (days since 1970-01-01) of `ms`: the key of daily rollups and counters.
pub fn day_number(ms: i64) -> i64 {
    crate::time_zone::current().day_number(ms)
}

/// The date of calendar day number `day` as `YYYY-MM-DD`.
pub fn date_of_day(day: i64) -> String {
    crate::time_zone::current().date_of_day(day)
}

/// `ms` as Tencent writes times, `YYYY-MM-DD HH:MM:SS`, in the process's time zone.
pub fn datetime_of(ms: i64) -> String {
    crate::time_zone::current().datetime_of(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(date_of(0), "1970-01-01");
        let (s, e) = day_range("2026-11-26").unwrap();
        assert_eq!(date_of(s), "2026-11-26");
        assert_eq!(date_of(e - 1), "2026-11-26");
        assert_eq!(date_of(e), "2026-11-27");
        assert_eq!(day_start(s + 5000), s);
        assert!(day_range("2026-13-01").is_none());
        assert!(day_range("yesterday").is_none());
    }

    #[test]
    fn offset_file_clock_follows_its_file() {
        let dir = std::env::temp_dir().join(format!("mp-clock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("offset");
        let clock = OffsetFileClock::new(&path);
        let before = SystemClock.now_ms();
        assert!((clock.now_ms() - before).abs() < 5_000, "no file means no offset");
        OffsetFileClock::write_offset(&path, DAY_MS).expect("write offset");
        std::thread::sleep(std::time::Duration::from_millis(2 * OffsetFileClock::RECHECK_MS as u64));
        assert!(clock.now_ms() - SystemClock.now_ms() > DAY_MS - 5_000);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn manual_clock_moves() {
        let c = ManualClock::new(1000);
        c.advance(500);
        assert_eq!(c.now_ms(), 1500);
    }
}
