//! Conformance cases for DMARC aggregate reports (migration 0032): a report is stored once per (organisation,
//! report id), its rows are summed per day, source IP and organisation, scoped by account and domain; on SQLite
//! and (with `MAILPUSH_TEST_POSTGRES_URL`) PostgreSQL.

use mailpush_store::{Account, DmarcDailyRow, NewDmarcReport, NewDmarcRow};

/// 2025-12-06 00:00 UTC.
const T0: i64 = 1_764_979_200_000;
const DAY0: i64 = T0 / 86_400_000;

#[macro_use]
mod common;
use common::Ctx;

conformance!(
    reports_are_stored_once_and_summed_per_day_ip_and_org,
    reports_are_scoped_by_account_domain_and_days,
);

fn row(
    account: &Account,
    domain: &str,
    day: i64,
    ip: &str,
    count: i64,
    aligned: (bool, bool),
    disp: &str,
) -> NewDmarcRow {
    let (dkim, spf) = aligned;
    NewDmarcRow {
        account_id: account.id,
        domain: domain.into(),
        day,
        source_ip: ip.into(),
        count,
        disposition: disp.into(),
        dkim_aligned: dkim,
        spf_aligned: spf,
        dkim_result: if dkim { "pass" } else { "fail" }.into(),
        spf_result: if spf { "pass" } else { "softfail" }.into(),
        header_from: domain.into(),
    }
}

fn report(org: &str, id: &str, rows: Vec<NewDmarcRow>) -> NewDmarcReport {
    NewDmarcReport {
        org_name: org.into(),
        org_email: format!("dmarc@{org}"),
        report_id: id.into(),
        policy_domain: "shop.example".into(),
        begin_ms: T0,
        end_ms: T0 + 86_399_000,
        received_ms: T0 + 90_000_000,
        rows,
    }
}

async fn reports_are_stored_once_and_summed_per_day_ip_and_org(ctx: Ctx) {
    let store = &ctx.store;
    let reports = store.dmarc_reports();
    let a = common::account(store, "a", T0).await;
    let google = report(
        "google.com",
        "g-1",
        vec![
            row(&a, "shop.example", DAY0, "192.0.2.1", 10, (true, true), "none"),
            row(&a, "shop.example", DAY0, "192.0.2.1", 4, (true, false), "none"),
            row(&a, "shop.example", DAY0, "192.0.2.1", 3, (false, false), "quarantine"),
            row(&a, "shop.example", DAY0, "2001:db8::1", 2, (false, false), "reject"),
        ],
    );
    assert!(reports.record(&google).await.unwrap());
    // The same report again (a resend): nothing written.
    assert!(!reports.record(&google).await.unwrap());
    // Another organisation may reuse the id.
    let yahoo = report(
        "yahoo.com",
        "g-1",
        vec![row(&a, "shop.example", DAY0, "192.0.2.1", 5, (false, true), "none")],
    );
    assert!(reports.record(&yahoo).await.unwrap());

    let mut rows = reports.daily(a.id, "shop.example", DAY0, DAY0).await.unwrap();
    rows.sort_by(|x, y| (x.day, &x.source_ip, &x.org_name).cmp(&(y.day, &y.source_ip, &y.org_name)));
    let expected = |ip: &str, org: &str, m, dkim, spf, pass, q, r| DmarcDailyRow {
        day: DAY0,
        source_ip: ip.into(),
        org_name: org.into(),
        messages: m,
        dkim_aligned: dkim,
        spf_aligned: spf,
        dmarc_pass: pass,
        quarantined: q,
        rejected: r,
    };
    assert_eq!(
        rows,
        vec![
            expected("192.0.2.1", "google.com", 17, 14, 10, 14, 3, 0),
            expected("192.0.2.1", "yahoo.com", 5, 0, 5, 5, 0, 0),
            expected("2001:db8::1", "google.com", 2, 0, 0, 0, 0, 2),
        ]
    );
}

async fn reports_are_scoped_by_account_domain_and_days(ctx: Ctx) {
    let store = &ctx.store;
    let a = common::account(store, "a", T0).await;
    let b = common::account(store, "b", T0).await;
    let r = report(
        "google.com",
        "g-2",
        vec![
            row(&a, "shop.example", DAY0, "192.0.2.1", 1, (true, true), "none"),
            row(&a, "shop.example", DAY0 + 1, "192.0.2.1", 2, (true, true), "none"),
            row(&a, "news.example", DAY0, "192.0.2.1", 4, (true, true), "none"),
            row(&b, "other.example", DAY0, "192.0.2.1", 8, (true, true), "none"),
        ],
    );
    assert!(store.dmarc_reports().record(&r).await.unwrap());
    let days = |rows: Vec<DmarcDailyRow>| rows.iter().map(|r| (r.day, r.messages)).collect::<Vec<_>>();
    let reports = store.dmarc_reports();
    assert_eq!(
        days(reports.daily(a.id, "shop.example", DAY0, DAY0 + 1).await.unwrap()),
        vec![(DAY0, 1), (DAY0 + 1, 2)]
    );
    assert_eq!(
        days(reports.daily(a.id, "shop.example", DAY0 + 1, DAY0 + 5).await.unwrap()),
        vec![(DAY0 + 1, 2)]
    );
    assert_eq!(
        days(reports.daily(a.id, "news.example", DAY0, DAY0).await.unwrap()),
        vec![(DAY0, 4)]
    );
    assert!(
        reports
            .daily(a.id, "other.example", DAY0, DAY0)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        days(reports.daily(b.id, "other.example", DAY0, DAY0).await.unwrap()),
        vec![(DAY0, 8)]
    );
}
