//! Domain warm-up end to end through the real `mailpush serve`, the testkit sink and DNS, and the test
//! clock: a new domain with a day-1 allowance of N = 5 and N + 3 marketing mails queued delivers 5 today and holds
//! 3 (queued, DeliverMessage saying so, counted in GetSendQuota and /metrics); a trigger mail queued behind them
//! goes out first the next day, then the held mail in acceptance order.

use mailpush_suite::*;
use mailpush_testkit::{DnsAuthority, SinkMx};
use serde_json::{Value, json};
use std::net::Ipv4Addr;
use std::time::Duration;

const SENDER: &str = "news@fresh.example.com";

fn mail(subject: &str, to: &str, trigger: i64) -> Value {
    json!({
        "FromEmailAddress": SENDER,
        "Destination": [to],
        "Subject": subject,
        "Simple": { "Text": b64(b"hello") },
        "TriggerType": trigger,
    })
}

async fn ok(client: &ApiClient, action: &str, params: Value) -> Value {
    let r = client.call(action, &params).await;
    assert!(r.get("Error").is_none(), "{action}: {r}");
    r
}

fn subjects(sink: &SinkMx) -> Vec<String> {
    sink.messages()
        .iter()
        .map(|m| m.parsed().expect("parse").subject().unwrap_or_default().to_string())
        .collect()
}

/// The statuses of mail requested on the UTC day containing `at_ms`.
async fn status(client: &ApiClient, at_ms: i64) -> Vec<Value> {
    let date = mailpush_model::clock::date_of(at_ms);
    let r = ok(
        client,
        "GetSendEmailStatus",
        json!({ "RequestDate": date, "Offset": 0, "Limit": 100 }),
    )
    .await;
    r["EmailStatusList"].as_array().cloned().unwrap_or_default()
}

/// Polls the statuses of the day of `at_ms` until `n` are delivered (the sink sees a mail just before its outcome
/// is recorded); returns them.
async fn delivered_count(client: &ApiClient, at_ms: i64, n: usize) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let rows = status(client, at_ms).await;
        if rows.iter().filter(|r| r["DeliverStatus"] == 1).count() == n {
            return rows;
        }
        assert!(tokio::time::Instant::now() < deadline, "never {n} delivered: {rows:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_domain_delivers_its_allowance_and_the_rest_the_next_day_trigger_first() {
    let dns = DnsAuthority::start().await.expect("dns");
    let sink = SinkMx::start_default().await.expect("sink");
    dns.add_mx("example.org", 10, "mx.example.org");
    dns.add_a("mx.example.org", Ipv4Addr::LOCALHOST);
    let dir = temp_dir();
    let clock = TestClock::new(dir.path());
    let env = base_env(
        dir.path(),
        &[
            ("MAILPUSH_DNS_SERVERS", dns.addr().to_string()),
            ("MAILPUSH_DELIVERY_PORT", sink.addr().port().to_string()),
            ("MAILPUSH_WARMUP_DOMAIN_RAMP", "5,10".to_string()),
            ("MAILPUSH_WARMUP_TRIGGER_RESERVE_PERCENT", "0".to_string()),
            // One SMTP transaction at a time: the sink sees mail in claim order.
            ("MAILPUSH_WORKER_CONCURRENCY", "1".to_string()),
            clock.env(),
        ],
    );
    let creds = create_account(&env, "fresh").await;
    let server = ServerProcess::start("mailpush", &["serve"], &env).await;
    let client = ApiClient::new(&server.api_addr, &creds).on_clock(&clock);
    verified_sender(&client, &dns, SENDER).await;

    // Day 1: 8 marketing mails, allowance 5.
    for i in 0..8 {
        ok(
            &client,
            "SendEmail",
            mail(&format!("m{i}"), &format!("user{i}@example.org"), 0),
        )
        .await;
    }
    sink.wait_for_count(5, Duration::from_secs(30))
        .await
        .expect("5 delivered");
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(
        subjects(&sink),
        ["m0", "m1", "m2", "m3", "m4"],
        "the allowance, in order"
    );

    let day1 = clock.now_ms();
    let rows = delivered_count(&client, day1, 5).await;
    let held: Vec<&Value> = rows.iter().filter(|r| r["DeliverStatus"] == 0).collect();
    assert_eq!(held.len(), 3, "{rows:?}");
    for r in &held {
        assert_eq!(r["SendStatus"], 0, "not refused: {r}");
        assert!(
            r["DeliverMessage"]
                .as_str()
                .unwrap_or("")
                .starts_with("held for warm-up"),
            "{r}"
        );
    }
    let q = ok(&client, "GetSendQuota", json!({})).await;
    let w = &q["Warmup"][0];
    assert_eq!(w["IdentityName"], "fresh.example.com", "{q}");
    assert_eq!(
        (w["WarmupDay"].clone(), w["WarmupAllowance"].clone()),
        (json!(1), json!(5)),
        "{q}"
    );
    assert_eq!((w["SentToday"].clone(), w["Held"].clone()), (json!(5), json!(3)), "{q}");
    let metrics = metrics_until(&server.api_addr, |m| {
        m.contains("mailpush_domain_warmup_held{account=\"fresh\",domain=\"fresh.example.com\"} 3")
            && m.contains("mailpush_domain_warmup_allowance{account=\"fresh\",domain=\"fresh.example.com\"} 5")
    })
    .await;
    assert!(
        metrics.contains("mailpush_domain_warmup_held{account=\"fresh\",domain=\"fresh.example.com\"} 3"),
        "{metrics}"
    );
    assert!(metrics.contains("mailpush_domain_warmup_allowance{account=\"fresh\",domain=\"fresh.example.com\"} 5"));

    // A trigger mail queued behind the held marketing mail: today's allowance is used up, so it waits too...
    ok(&client, "SendEmail", mail("code", "user99@example.org", 1)).await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(sink.message_count(), 5);

    // ... and on day 2 (allowance 10) it goes out first, then the held mail in acceptance order.
    clock.advance(86_400_000).await;
    sink.wait_for_count(9, Duration::from_secs(30))
        .await
        .expect("9 delivered");
    assert_eq!(subjects(&sink)[5..], ["code", "m5", "m6", "m7"]);
    let rows = delivered_count(&client, day1, 9).await;
    assert_eq!(rows.len(), 9, "{rows:?}");
    let q = ok(&client, "GetSendQuota", json!({})).await;
    let w = &q["Warmup"][0];
    assert_eq!(
        (w["WarmupDay"].clone(), w["WarmupAllowance"].clone()),
        (json!(2), json!(10)),
        "{q}"
    );
    assert_eq!((w["SentToday"].clone(), w["Held"].clone()), (json!(4), json!(0)), "{q}");
    server.kill().await;
}
