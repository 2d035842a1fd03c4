//! Conformance of the TLS-RPT counters and report claims (migration 0041) on SQLite and, when
//! `MAILPUSH_TEST_POSTGRES_URL` is set, PostgreSQL.

use mailpush_store::{TlsRptCount, TlsRptPending};

#[macro_use]
mod common;
use common::Ctx;

conformance!(counters_add_up_per_key, each_report_is_claimed_once);

const DAY: i64 = 20_000;

fn count(domain: &str, result_type: &str, sessions: i64) -> TlsRptCount {
    TlsRptCount {
        day: DAY,
        policy_domain: domain.into(),
        policy_type: "sts".into(),
        policy_strings: "version: STSv1\nmode: enforce\nmx: mx.example.com\nmax_age: 86400".into(),
        mx_hosts: "mx.example.com".into(),
        result_type: result_type.into(),
        sending_ip: String::new(),
        receiving_mx: if result_type.is_empty() {
            String::new()
        } else {
            "mx.example.com".into()
        },
        receiving_ip: if result_type.is_empty() {
            String::new()
        } else {
            "192.0.2.7".into()
        },
        reason_code: String::new(),
        sessions,
    }
}

async fn counters_add_up_per_key(ctx: Ctx) {
    let rpt = ctx.store.tls_rpt();
    rpt.add(&[
        count("example.com", "", 3),
        count("example.com", "certificate-not-trusted", 1),
    ])
    .await
    .expect("add");
    // A second node (or flush) adds to the same rows.
    rpt.add(&[count("example.com", "", 2), count("example.org", "", 1)])
        .await
        .expect("add again");
    rpt.add(&[]).await.expect("nothing to add");
    let rows = rpt.counts(DAY, "example.com").await.expect("counts");
    assert_eq!(
        rows,
        vec![
            count("example.com", "", 5),
            count("example.com", "certificate-not-trusted", 1)
        ]
    );
    assert_eq!(rpt.counts(DAY + 1, "example.com").await.expect("other day"), vec![]);
    let long = "x".repeat(1_500);
    let mut big = count("example.net", "validation-failure", 1);
    big.reason_code = long.clone();
    rpt.add(&[big.clone()]).await.expect("long reason");
    assert_eq!(
        rpt.counts(DAY, "example.net").await.expect("counts")[0].reason_code,
        long
    );
}

async fn each_report_is_claimed_once(ctx: Ctx) {
    let rpt = ctx.store.tls_rpt();
    rpt.add(&[count("example.com", "", 1), count("example.org", "", 1)])
        .await
        .expect("add");
    let mut today = count("example.com", "", 1);
    today.day = DAY + 1;
    rpt.add(&[today]).await.expect("add today");
    let pending = |day: i64, domain: &str| TlsRptPending {
        day,
        policy_domain: domain.into(),
    };
    assert_eq!(
        rpt.unreported(DAY + 1, 10).await.expect("unreported"),
        vec![pending(DAY, "example.com"), pending(DAY, "example.org")],
        "only ended days, oldest first"
    );
    assert_eq!(rpt.unreported(DAY + 1, 1).await.expect("limited").len(), 1);
    assert!(rpt.claim_report(DAY, "example.com", "r1", 1).await.expect("claim"));
    assert!(
        !rpt.claim_report(DAY, "example.com", "r2", 2)
            .await
            .expect("claimed before")
    );
    assert_eq!(
        rpt.unreported(DAY + 1, 10).await.expect("unreported"),
        vec![pending(DAY, "example.org")]
    );
    rpt.finish_report(DAY, "example.com", "sent").await.expect("finish");
    assert_eq!(
        rpt.report(DAY, "example.com").await.expect("report"),
        Some(("r1".to_string(), "sent".to_string()))
    );
    assert_eq!(rpt.report(DAY, "example.org").await.expect("none"), None);
    assert!(
        rpt.finish_report(DAY, "example.org", "sent").await.is_err(),
        "not claimed"
    );
}
