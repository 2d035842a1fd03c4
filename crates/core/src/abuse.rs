//! `GetAbuseReport` as the Tencent SDK models it: complaints in a `StartTime`..`EndTime` period (dates or
//! times of the calendar zone), filterable by sending domain, sender, recipient domain (`Mta`), recipient and
//! template, each with the mail it was about.

use mailpush_model::ErrorCode;
use mailpush_model::reputation::AbuseRow;
use mailpush_model::time_zone;
use mailpush_store::AbuseFilter;

use crate::stats::MAX_REPORT_DAYS;
use crate::stats::Statistics;
use crate::{AccountContext, CoreError};

/// Most complaints one `GetAbuseReport` page returns (the SDK's documented default `Limit`).
pub const MAX_ABUSE_LIMIT: i64 = 1000;

/// A `GetAbuseReport` request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AbuseQuery {
    /// `StartTime`: `YYYY-MM-DD` (from that day's start) or `YYYY-MM-DD HH:MM:SS`.
    pub start_time: String,
    /// `EndTime`: `YYYY-MM-DD` (to that day's end, inclusive) or `YYYY-MM-DD HH:MM:SS` (inclusive).
    pub end_time: String,
    /// `FromDomain`.
    pub from_domain: Option<String>,
    /// `FromAddress`.
    pub from_address: Option<String>,
    /// `Mta`: the recipient's domain.
    pub mta: Option<String>,
    /// `ToAddress`.
    pub to_address: Option<String>,
    /// `TemplateId`.
    pub template_id: Option<String>,
    /// `Offset`.
    pub offset: i64,
    /// `Limit`.
    pub limit: i64,
}

fn refuse(code: ErrorCode, message: impl Into<String>) -> CoreError {
    CoreError::refused(code, message)
}

/// `[start, end)` of a `StartTime` (start of its day for a date) or `EndTime` (end of its day for a date, the
/// second after it for a time).
fn period_bound(field: &str, raw: &str, end: bool) -> Result<i64, CoreError> {
    let zone = time_zone::current();
    let bad = || {
        refuse(
            ErrorCode::InvalidParameterValueWrongDate,
            format!("{field} {raw:?} must be a date like 2026-11-26 or a time like 2026-11-26 08:00:00"),
        )
    };
    if let Some((start, stop)) = zone.day_range(raw) {
        return Ok(if end { stop } else { start });
    }
    let at = zone.parse_datetime(raw).ok_or_else(bad)?;
    Ok(if end { at + 1000 } else { at })
}

fn lower(v: &Option<String>) -> String {
    v.as_deref().map(|s| s.trim().to_ascii_lowercase()).unwrap_or_default()
}

impl Statistics {
    pub(crate) async fn abuse_reports(
        &self,
        account: &AccountContext,
        q: &AbuseQuery,
    ) -> Result<(Vec<AbuseRow>, i64), CoreError> {
        let from_ms = period_bound("StartTime", &q.start_time, false)?;
        let to_ms = period_bound("EndTime", &q.end_time, true)?;
        if to_ms <= from_ms {
            return Err(refuse(
                ErrorCode::InvalidParameterValueWrongDate,
                format!("EndTime {} is before StartTime {}", q.end_time, q.start_time),
            ));
        }
        if (to_ms - from_ms) / mailpush_model::clock::DAY_MS > MAX_REPORT_DAYS {
            return Err(refuse(
                ErrorCode::FailedOperationNotSupportDate,
                format!("a report spans at most {MAX_REPORT_DAYS} days"),
            ));
        }
        if !(1..=MAX_ABUSE_LIMIT).contains(&q.limit) {
            return Err(refuse(
                ErrorCode::FailedOperationInvalidLimit,
                format!("Limit must be between 1 and {MAX_ABUSE_LIMIT}"),
            ));
        }
        if q.offset < 0 {
            return Err(refuse(ErrorCode::InvalidParameterValue, "Offset must not be negative"));
        }
        let template_id = match q.template_id.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
            None => -1,
            Some(t) => t.parse::<i64>().ok().filter(|id| *id > 0).ok_or_else(|| {
                refuse(
                    ErrorCode::InvalidParameterValue,
                    format!("TemplateId {t:?} is not a template id"),
                )
            })?,
        };
        let filter = AbuseFilter {
            from_ms,
            to_ms,
            from_domain: lower(&q.from_domain),
            from_address: lower(&q.from_address),
            recipient_domain: lower(&q.mta),
            recipient: lower(&q.to_address),
            template_id,
            offset: q.offset,
            limit: q.limit,
        };
        Ok(self.env.store.abuse().abuse_reports(account.id, &filter).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_are_days_or_times_of_the_calendar() {
        time_zone::set_current(mailpush_model::TimeZone::default());
        // 2026-12-06 in Beijing starts at 2026-12-05 16:00 UTC.
        let start = period_bound("StartTime", "2026-12-06", false).expect("date");
        assert_eq!(start, 1_796_428_800_000 + 16 * 3_600_000);
        assert_eq!(
            period_bound("EndTime", "2026-12-06", true).expect("date"),
            start + 86_400_000
        );
        assert_eq!(
            period_bound("StartTime", "2026-12-06 08:00:00", false).expect("time"),
            start + 8 * 3_600_000
        );
        assert_eq!(
            period_bound("EndTime", "2026-12-06 08:00:00", true).expect("time"),
            start + 8 * 3_600_000 + 1000,
            "an end time is inclusive"
        );
        assert!(period_bound("StartTime", "yesterday", false).is_err());
        assert!(period_bound("StartTime", "2026-12-06 8:00", false).is_err());
    }
}
