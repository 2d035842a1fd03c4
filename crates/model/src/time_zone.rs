//! The time zone of mailpush's calendar: the one place that decides where a day starts and how a time is written.
//!
//! Tencent's days (`RequestDate`, `StartDate`/`EndDate`, the daily quota and its reset at midnight, `CreateTime`,
//! `BounceTime`, …) are days of Beijing time (UTC+8): a client that asks for today's statuses at 07:30 Beijing time
//! means mail sent since 00:00 Beijing time, which is 16:00 UTC *yesterday*. mailpush therefore keeps its calendar
//! in one configurable zone (setting `time_zone`, default `Asia/Shanghai`), process-wide: one deployment speaks
//! one calendar, whichever front end, worker or store computes a day. Signatures (TC3's credential date, SigV4's
//! date) are UTC by their specifications and do not follow it ([`utc_date_of`]).
//!
//! The zone database is bundled into the binary (jiff's `tzdb-bundle-always`), so no `/usr/share/zoneinfo` is
//! needed on the host.

use std::sync::{Arc, OnceLock, RwLock};

/// Milliseconds in a (24-hour) day.
const DAY_MS: i64 = 86_400_000;

/// Why a `time_zone` value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("time zone {value:?}: {reason} (an IANA name such as Asia/Shanghai or UTC, or a fixed offset such as +08:00)")]
pub struct TimeZoneError {
    value: String,
    reason: String,
}

/// A calendar zone: an IANA zone (with its daylight-saving rules) or a fixed UTC offset.
#[derive(Debug, Clone)]
pub struct TimeZone {
    name: String,
    zone: jiff::tz::TimeZone,
}

impl PartialEq for TimeZone {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Default for TimeZone {
    /// Beijing time, Tencent's calendar.
    fn default() -> Self {
        TimeZone::parse(Self::DEFAULT_NAME).unwrap_or_else(|_| TimeZone::utc())
    }
}

impl std::fmt::Display for TimeZone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)
    }
}

impl std::str::FromStr for TimeZone {
    type Err = TimeZoneError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TimeZone::parse(s)
    }
}

impl TimeZone {
    /// The default zone: Tencent's days are Beijing time.
    pub const DEFAULT_NAME: &'static str = "Asia/Shanghai";

    /// UTC.
    pub fn utc() -> TimeZone {
        TimeZone {
            name: "UTC".into(),
            zone: jiff::tz::TimeZone::UTC,
        }
    }

    /// Parses an IANA name (`Asia/Shanghai`, `UTC`, `Europe/Berlin`) or a fixed offset (`+08:00`, `-0530`, `+8`,
    /// `UTC+08:00`).
    pub fn parse(raw: &str) -> Result<TimeZone, TimeZoneError> {
        let value = raw.trim();
        let refuse = |reason: &str| TimeZoneError {
            value: raw.to_string(),
            reason: reason.to_string(),
        };
        if value.is_empty() {
            return Err(refuse("empty"));
        }
        let offset_text = value
            .strip_prefix("UTC")
            .or_else(|| value.strip_prefix("GMT"))
            .filter(|rest| rest.starts_with(['+', '-']))
            .unwrap_or(value);
        if offset_text.starts_with(['+', '-']) {
            let seconds = parse_offset(offset_text).ok_or_else(|| refuse("not an offset of at most ±18:00"))?;
            let offset = jiff::tz::Offset::from_seconds(seconds).map_err(|e| refuse(&e.to_string()))?;
            return Ok(TimeZone {
                name: value.to_string(),
                zone: jiff::tz::TimeZone::fixed(offset),
            });
        }
        let zone = jiff::tz::db().get(value).map_err(|_| refuse("unknown zone name"))?;
        Ok(TimeZone {
            name: value.to_string(),
            zone,
        })
    }

    /// The name as configured.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn civil(&self, ms: i64) -> jiff::civil::DateTime {
        let ts = jiff::Timestamp::from_millisecond(ms).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
        self.zone.to_datetime(ts)
    }

    /// Days since 1970-01-01 of the local date of `ms`: the key of a calendar day.
    pub fn day_number(&self, ms: i64) -> i64 {
        days_from_civil(self.civil(ms).date())
    }

    /// The local date of day number `day` as `YYYY-MM-DD`.
    pub fn date_of_day(&self, day: i64) -> String {
        format_date(civil_from_days(day))
    }

    /// The local date of `ms` as `YYYY-MM-DD`.
    pub fn date_of(&self, ms: i64) -> String {
        format_date(self.civil(ms).date())
    }

    /// The local date and time of `ms` as `YYYY-MM-DD HH:MM:SS` (Tencent's time format).
    pub fn datetime_of(&self, ms: i64) -> String {
        let dt = self.civil(ms);
        format!(
            "{} {:02}:{:02}:{:02}",
            format_date(dt.date()),
            dt.hour(),
            dt.minute(),
            dt.second()
        )
    }

    /// The local date and time of `ms` in RFC 3339 with its offset, e.g. `2026-12-06T13:00:00+08:00`.
    pub fn rfc3339_of(&self, ms: i64) -> String {
        let ts = jiff::Timestamp::from_millisecond(ms).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
        let zoned = ts.to_zoned_datetime(self.zone.clone());
        let offset = zoned.offset().seconds();
        let sign = if offset < 0 { '-' } else { '+' };
        let abs = offset.unsigned_abs();
        format!(
            "{}T{:02}:{:02}:{:02}{sign}{:02}:{:02}",
            format_date(zoned.date()),
            zoned.hour(),
            zoned.minute(),
            zoned.second(),
            abs / 3600,
            abs % 3600 / 60
        )
    }

    /// The first millisecond of local day number `day` (a day that starts in a daylight-saving gap starts at the
    /// gap's end).
    fn start_of_day_number(&self, day: i64) -> i64 {
        let date = civil_from_days(day);
        date.to_zoned_datetime(self.zone.clone())
            .map(|z| z.timestamp().as_millisecond())
            .unwrap_or(day * DAY_MS)
    }

    /// The first millisecond of the local day containing `ms`.
    pub fn day_start(&self, ms: i64) -> i64 {
        self.start_of_day_number(self.day_number(ms))
    }

    /// The first millisecond of the local day after the one containing `ms` (where a daily quota resets).
    pub fn next_day_start(&self, ms: i64) -> i64 {
        self.start_of_day_number(self.day_number(ms) + 1)
    }

    /// Parses a local `YYYY-MM-DD` into the half-open millisecond range `[start, end)` of that day.
    pub fn day_range(&self, date: &str) -> Option<(i64, i64)> {
        let d: jiff::civil::Date = date.trim().parse().ok()?;
        if date.trim().len() != 10 {
            return None;
        }
        let day = days_from_civil(d);
        Some((self.start_of_day_number(day), self.start_of_day_number(day + 1)))
    }

    /// Parses a local time `YYYY-MM-DD HH:MM:SS` into milliseconds.
    pub fn parse_datetime(&self, text: &str) -> Option<i64> {
        let text = text.trim();
        if text.len() != 19 {
            return None;
        }
        let dt: jiff::civil::DateTime = text.replace(' ', "T").parse().ok()?;
        dt.to_zoned_datetime(self.zone.clone())
            .ok()
            .map(|z| z.timestamp().as_millisecond())
    }
}

fn parse_offset(text: &str) -> Option<i32> {
    let (sign, rest) = match text.as_bytes().first()? {
        b'+' => (1, &text[1..]),
        b'-' => (-1, &text[1..]),
        _ => return None,
    };
    let (hours, minutes) = match rest.split_once(':') {
        Some((h, m)) => (h, m),
        None if rest.len() == 4 => rest.split_at(2),
        None => (rest, "0"),
    };
    if hours.is_empty() || hours.len() > 2 || minutes.len() > 2 {
        return None;
    }
    let h: i32 = hours.parse().ok()?;
    let m: i32 = minutes.parse().ok()?;
    if m >= 60 || h * 60 + m > 18 * 60 {
        return None;
    }
    Some(sign * (h * 3600 + m * 60))
}

fn format_date(d: jiff::civil::Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), d.month(), d.day())
}

fn days_from_civil(d: jiff::civil::Date) -> i64 {
    let epoch = jiff::civil::date(1970, 1, 1);
    d.since((jiff::Unit::Day, epoch))
        .map(|span| i64::from(span.get_days()))
        .unwrap_or(0)
}

fn civil_from_days(day: i64) -> jiff::civil::Date {
    let epoch = jiff::civil::date(1970, 1, 1);
    jiff::Span::new()
        .try_days(day)
        .ok()
        .and_then(|span| epoch.checked_add(span).ok())
        .unwrap_or(epoch)
}

fn cell() -> &'static RwLock<Arc<TimeZone>> {
    static CURRENT: OnceLock<RwLock<Arc<TimeZone>>> = OnceLock::new();
    CURRENT.get_or_init(|| RwLock::new(Arc::new(TimeZone::default())))
}

/// The process's calendar zone (Beijing time until [`set_current`] is called).
pub fn current() -> Arc<TimeZone> {
    cell()
        .read()
        .map(|z| Arc::clone(&z))
        .unwrap_or_else(|p| Arc::clone(&p.into_inner()))
}

/// Sets the process's calendar zone: done once at start-up from the `time_zone` setting.
pub fn set_current(zone: TimeZone) {
    let mut slot = cell().write().unwrap_or_else(|p| p.into_inner());
    *slot = Arc::new(zone);
}

/// The UTC date of `ms` as `YYYY-MM-DD`, for signature scopes (TC3, SigV4), which are UTC whatever the calendar.
pub fn utc_date_of(ms: i64) -> String {
    TimeZone::utc().date_of(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-12-05 16:30:00 UTC = 2026-12-06 00:30 in Beijing.
    const T: i64 = 1_796_428_800_000 + 16 * 3_600_000 + 30 * 60_000;

    #[test]
    fn beijing_days_start_at_16_utc() {
        let bj = TimeZone::default();
        assert_eq!(bj.name(), "Asia/Shanghai");
        assert_eq!(TimeZone::utc().date_of(T), "2026-12-05");
        assert_eq!(bj.date_of(T), "2026-12-06");
        assert_eq!(bj.datetime_of(T), "2026-12-06 00:30:00");
        assert_eq!(bj.rfc3339_of(T), "2026-12-06T00:30:00+08:00");
        let (start, end) = bj.day_range("2026-12-06").expect("date");
        assert_eq!(start, T - 30 * 60_000);
        assert_eq!(end - start, DAY_MS);
        assert_eq!(bj.day_start(T), start);
        assert_eq!(bj.next_day_start(T), end);
        assert_eq!(bj.date_of_day(bj.day_number(T)), "2026-12-06");
        assert_eq!(bj.parse_datetime("2026-12-06 00:30:00"), Some(T));
    }

    #[test]
    fn fixed_offsets_and_names() {
        for (text, local_epoch, day_start) in [
            ("+08:00", "1970-01-01 08:00:00", -8 * 3_600_000),
            ("-0530", "1969-12-31 18:30:00", -DAY_MS + 5 * 3_600_000 + 1_800_000),
            ("UTC+8", "1970-01-01 08:00:00", -8 * 3_600_000),
            ("+00:00", "1970-01-01 00:00:00", 0),
        ] {
            let z = TimeZone::parse(text).expect(text);
            assert_eq!(z.datetime_of(0), local_epoch, "{text}");
            assert_eq!(z.day_start(0), day_start, "{text}");
        }
        assert!(TimeZone::parse("Mars/Olympus").is_err());
        assert!(TimeZone::parse("+25:00").is_err());
        assert!(TimeZone::parse("").is_err());
        assert_eq!(TimeZone::parse("UTC").expect("utc").date_of(T), "2026-12-05");
    }

    #[test]
    fn daylight_saving_days_have_their_real_length() {
        let berlin = TimeZone::parse("Europe/Berlin").expect("zone");
        let (start, end) = berlin.day_range("2026-03-29").expect("date");
        assert_eq!(end - start, DAY_MS - 3_600_000, "spring forward: 23 hours");
        assert_eq!(berlin.date_of(start), "2026-03-29");
        assert_eq!(berlin.date_of(end - 1), "2026-03-29");
    }

    #[test]
    fn bad_dates_are_refused() {
        let z = TimeZone::default();
        assert!(z.day_range("2026-13-01").is_none());
        assert!(z.day_range("yesterday").is_none());
        assert!(z.day_range("2026-1-1").is_none());
        assert_eq!(utc_date_of(T), "2026-12-05");
    }
}
