//! `mailpush stats`: an account's sending statistics per UTC day, as `GetStatisticsReport` answers them.

use crate::table::render;
use crate::{AdminError, Report, account_context};
use mailpush_core::Mailpush;
use mailpush_core::StatisticsRequest;
use serde_json::json;

/// `account`'s statistics from `start` to `end` (UTC days, `YYYY-MM-DD`, inclusive; `end` defaults to today and
/// `start` to six days before `end`), optionally only mail from sending domain `domain` or to `receiving`.
pub async fn stats(
    core: &Mailpush,
    account: &str,
    start: Option<&str>,
    end: Option<&str>,
    domain: Option<&str>,
    receiving: Option<&str>,
) -> Result<Report, AdminError> {
    let ctx = account_context(core, account).await?;
    let today = core.now_ms();
    let end = end.map_or_else(|| mailpush_model::clock::date_of(today), str::to_string);
    let start = match start {
        Some(s) => s.to_string(),
        None => {
            let end_ms = mailpush_model::clock::day_range(&end)
                .map(|(from, _)| from)
                .ok_or_else(|| AdminError::Invalid(format!("{end} is not a date like 2026-11-26")))?;
            mailpush_model::clock::date_of(end_ms - 6 * 86_400_000)
        }
    };
    let report = core
        .statistics_report(
            &ctx,
            &StatisticsRequest {
                start_date: start.clone(),
                end_date: end.clone(),
                domain: domain.map(str::to_string),
                receiving_mailbox_type: receiving.map(str::to_string),
            },
        )
        .await?;
    let row = |day: &str, c: &mailpush_model::stats::StatCounters| {
        vec![
            day.to_string(),
            c.requested.to_string(),
            c.accepted.to_string(),
            c.delivered.to_string(),
            c.bounced.to_string(),
            c.dropped.to_string(),
            c.opened.to_string(),
            c.clicked.to_string(),
            c.unsubscribed.to_string(),
            c.complained.to_string(),
        ]
    };
    let mut rows: Vec<Vec<String>> = report.daily.iter().map(|(d, c)| row(d, c)).collect();
    rows.push(row("total", &report.overall));
    let text = render(
        &[
            "DAY",
            "REQUESTED",
            "ACCEPTED",
            "DELIVERED",
            "BOUNCED",
            "DROPPED",
            "OPENED",
            "CLICKED",
            "UNSUBSCRIBED",
            "COMPLAINED",
        ],
        &rows,
        12,
    );
    let counters = |c: &mailpush_model::stats::StatCounters| {
        json!({
            "RequestCount": c.requested, "AcceptedCount": c.accepted, "DeliveredCount": c.delivered,
            "BounceCount": c.bounced, "DroppedCount": c.dropped, "OpenedCount": c.opened,
            "ClickedCount": c.clicked, "UnsubscribeCount": c.unsubscribed, "ComplaintCount": c.complained,
        })
    };
    let daily: Vec<serde_json::Value> = report
        .daily
        .iter()
        .map(|(d, c)| {
            let mut v = counters(c);
            v["SendDate"] = json!(d);
            v
        })
        .collect();
    Ok(Report::new(
        text,
        json!({ "StartDate": start, "EndDate": end, "DailyVolumes": daily, "OverallVolume": counters(&report.overall) }),
    ))
}
