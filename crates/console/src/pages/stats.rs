//! Statistics: per-day charts of the rollup (filter by sending domain and receiving mailbox domain), the
//! domains' reputation levels, daily quota and warm-up, bounce-rate warnings.

use super::day;
use crate::ConsoleError;
use crate::auth::Page;
use crate::chart::{Series, line_chart};
use axum::extract::Query;
use axum::response::Response;
use mailpush_core::StatisticsRequest;
use serde::Deserialize;
use serde_json::json;

const DAY_MS: i64 = 86_400_000;

#[derive(Deserialize, Default)]
pub(crate) struct StatsQuery {
    domain: Option<String>,
    receiving: Option<String>,
    days: Option<i64>,
}

/// The statistics page.
pub(crate) async fn show(page: Page, Query(q): Query<StatsQuery>) -> Result<Response, ConsoleError> {
    let account = page.account()?;
    let days = q.days.unwrap_or(14).clamp(1, 90);
    let now = page.core().now_ms();
    let domain = q.domain.filter(|d| !d.is_empty());
    let receiving = q.receiving.filter(|d| !d.is_empty());
    let report = page
        .core()
        .statistics_report(
            account,
            &StatisticsRequest {
                start_date: day(now - (days - 1) * DAY_MS),
                end_date: day(now),
                domain: domain.clone(),
                receiving_mailbox_type: receiving.clone(),
            },
        )
        .await?;
    let lang = page.lang;
    let labels: Vec<String> = report.daily.iter().map(|(d, _)| d.clone()).collect();
    type Pick = fn(&mailpush_model::stats::StatCounters) -> i64;
    let picks: [(&str, &str, Pick); 7] = [
        ("requested", "#2457d6", |c| c.requested),
        ("delivered", "#16814a", |c| c.delivered),
        ("bounced", "#c0392b", |c| c.bounced),
        ("opened", "#7b4bd6", |c| c.opened),
        ("clicked", "#0f9bb0", |c| c.clicked),
        ("unsubscribed", "#b76e00", |c| c.unsubscribed),
        ("complained", "#8a1c4a", |c| c.complained),
    ];
    let series: Vec<Series> = picks
        .iter()
        .map(|(key, color, pick)| Series {
            label: lang.t(key),
            color,
            values: report.daily.iter().map(|(_, c)| pick(c)).collect(),
        })
        .collect();
    let totals: serde_json::Map<String, serde_json::Value> = picks
        .iter()
        .map(|(key, _, pick)| ((*key).to_string(), json!(pick(&report.overall))))
        .collect();
    let quota = page.core().send_quota(account).await?;
    let warmup = page.core().domain_warmup(account).await?;
    let (identities, _) = page.core().list_identities(account, 0, 100).await?;
    let reputation: Vec<_> = quota
        .domains
        .iter()
        .map(|d| {
            let w = warmup.iter().find(|w| w.domain.eq_ignore_ascii_case(&d.domain));
            let text = match w.and_then(|w| w.day.zip(w.allowance)) {
                Some((day, allowance)) => lang.t("warmup_day").replace("{day}", &day.to_string()).replace(
                    "{allowance}",
                    &format!("{} / {allowance}", w.map_or(0, |w| w.sent_today)),
                ),
                None => lang.t("warmup_done").to_string(),
            };
            json!({ "domain": d.domain, "level": d.level, "quota": d.daily_quota, "warmup": text })
        })
        .collect();
    let warnings: Vec<String> = page
        .core()
        .reputation_warnings(account)
        .await?
        .iter()
        .filter(|w| w.cleared_ms.is_none())
        .map(|w| format!("{}: {:.1}% > {:.1}%", w.kind, w.rate, w.threshold))
        .collect();
    let ctx = json!({
        "chart": line_chart(&labels, &series), "series": picks.iter().map(|p| p.0).collect::<Vec<_>>(),
        "totals": totals, "days": days, "domain": domain, "receiving": receiving.unwrap_or_default(),
        "domains": identities.iter().map(|d| d.domain.clone()).collect::<Vec<_>>(),
        "quota": { "daily_quota": quota.daily_quota, "sent_today": quota.sent_today, "remaining_today": quota.remaining_today },
        "reputation": reputation, "warnings": warnings,
    });
    page.render("stats.html", "stats", ctx).await
}
