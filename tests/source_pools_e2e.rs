//! Source IPs end to end through a real `mailpush serve`: a domain assigned to a dedicated pool
//! (`mailpush domain pool`) goes out only from that pool's addresses, the other domain from the shared pool
//! (`source_ips`), spread over its members; the warm-up of new source IPs holds what is over today's allowance
//! (status deferred, "held for warm-up") and sends it the next (simulated) day; `GetSendQuota` shows the
//! per-IP counts. Sources are loopback addresses (127.0.0.2–5), all local on Linux.

use std::{collections::BTreeSet, net::IpAddr, time::Duration};

use mailpush_suite::*;
use mailpush_testkit::{DnsAuthority, SinkMx};
use serde_json::{Value, json};

const DAY_MS: i64 = 86_400_000;

fn mail(from: &str, to: &str) -> Value {
    json!({
        "FromEmailAddress": from,
        "Destination": [to],
        "Subject": "hi",
        "Simple": { "Text": b64(b"hello") },
        "TriggerType": 1,
    })
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("ip")
}

/// Sources of the mail of one sender; the return path is a VERP address at the sender's domain.
/// The source addresses mail of `sender` arrived from (its envelope sender is at `bounce.<its domain>`).
fn sources_of(sink: &SinkMx, sender: &str) -> BTreeSet<IpAddr> {
    let return_path = format!("bounce.{}", sender.rsplit('@').next().unwrap_or(sender));
    sink.messages()
        .iter()
        .filter(|m| m.mail_from.rsplit('@').next() == Some(return_path.as_str()))
        .map(|m| m.peer.ip())
        .collect()
}

async fn statuses(client: &ApiClient, date: &str) -> Vec<Value> {
    let r = client
        .call(
            "GetSendEmailStatus",
            &json!({ "RequestDate": date, "Offset": 0, "Limit": 100 }),
        )
        .await;
    assert!(r.get("Error").is_none(), "{r}");
    r["EmailStatusList"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn dedicated_pools_and_ip_warmup_through_serve() {
    let dns = DnsAuthority::start().await.expect("dns");
    let sink = SinkMx::start_default().await.expect("sink");
    dns.add_mx("dest.example.net", 10, "mx.dest.example.net");
    dns.add_a("mx.dest.example.net", std::net::Ipv4Addr::LOCALHOST);
    let dir = temp_dir();
    let clock = TestClock::new(dir.path());
    // Noon of the (simulated) day: the test never straddles a UTC midnight by accident.
    let now = clock.now_ms();
    clock
        .advance((DAY_MS - now.rem_euclid(DAY_MS) + DAY_MS / 2) % DAY_MS)
        .await;
    let env = base_env(
        dir.path(),
        &[
            ("MAILPUSH_DNS_SERVERS", dns.addr().to_string()),
            ("MAILPUSH_DELIVERY_PORT", sink.addr().port().to_string()),
            ("MAILPUSH_SOURCE_IPS", "127.0.0.2,127.0.0.3".to_string()),
            ("MAILPUSH_SOURCE_POOLS", "vip=127.0.0.4,127.0.0.5".to_string()),
            // Day 1: 3 recipients per address; day 2: 6.
            ("MAILPUSH_WARMUP_IP_RAMP", "3,6".to_string()),
            clock.env(),
        ],
    );
    let creds = create_account(&env, "brand").await;
    let server = ServerProcess::start("mailpush", &["serve"], &env).await;
    let client = ApiClient::new(&server.api_addr, &creds).on_clock(&clock);
    verified_sender(&client, &dns, "news@brand.example.com").await;
    verified_sender(&client, &dns, "news@vip.example.com").await;
    let out = mailpush_cli(&env, &["domain", "pool", "vip.example.com", "vip"]).await;
    assert!(out.contains("vip"), "{out}");

    // The dedicated pool: 4 mails, only from 127.0.0.4 / .5, both used.
    for i in 0..4 {
        let r = client
            .call(
                "SendEmail",
                &mail("news@vip.example.com", &format!("v{i}@dest.example.net")),
            )
            .await;
        assert!(r.get("Error").is_none(), "{r}");
    }
    sink.wait_for_messages(4, Duration::from_secs(30))
        .await
        .expect("vip mail delivered");
    assert_eq!(
        sources_of(&sink, "news@vip.example.com"),
        BTreeSet::from([ip("127.0.0.4"), ip("127.0.0.5")])
    );

    // The shared pool: 2 addresses × 3 today = 6 go out, the other 2 are held for warm-up.
    for i in 0..8 {
        let r = client
            .call(
                "SendEmail",
                &mail("news@brand.example.com", &format!("s{i}@dest.example.net")),
            )
            .await;
        assert!(r.get("Error").is_none(), "{r}");
    }
    sink.wait_for_messages(10, Duration::from_secs(30))
        .await
        .expect("shared mail delivered");
    assert_eq!(
        sources_of(&sink, "news@brand.example.com"),
        BTreeSet::from([ip("127.0.0.2"), ip("127.0.0.3")])
    );
    let date = mailpush_model::clock::date_of(clock.now_ms());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let held = loop {
        let held: Vec<Value> = statuses(&client, &date)
            .await
            .into_iter()
            .filter(|s| s["DeliverStatus"] == 8)
            .collect();
        if held.len() == 2 || tokio::time::Instant::now() > deadline {
            break held;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(held.len(), 2, "{held:?}");
    for s in &held {
        assert!(
            s["DeliverMessage"].as_str().unwrap_or("").contains("held for warm-up"),
            "{s}"
        );
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(sink.message_count(), 10, "nothing over the allowance went out");

    let q = client.call("GetSendQuota", &json!({})).await;
    let ips = q["SourceIps"].as_array().cloned().unwrap_or_default();
    assert_eq!(ips.len(), 4, "{q}");
    for entry in &ips {
        assert_eq!(entry["WarmupDay"], 1, "{entry}");
        assert_eq!(entry["WarmupAllowance"], 3, "{entry}");
        match entry["Pool"].as_str() {
            Some("shared") => {
                assert_eq!(entry["SentToday"], 3, "{entry}");
                assert_eq!(entry["RemainingToday"], 0, "{entry}");
            }
            Some("vip") => assert_eq!(entry["SentToday"], 2, "{entry}"),
            other => panic!("unexpected pool {other:?}: {q}"),
        }
    }
    let metrics = metrics_until(&server.api_addr, |m| {
        m.contains("mailpush_source_ip_sent_today{ip=\"127.0.0.2\",pool=\"shared\"} 3")
    })
    .await;
    assert!(
        metrics.contains("mailpush_source_ip_sent_today{ip=\"127.0.0.2\",pool=\"shared\"} 3"),
        "{metrics}"
    );

    // The next day (6 per address): the held mail goes out, from the shared pool.
    clock.advance(DAY_MS).await;
    sink.wait_for_messages(12, Duration::from_secs(60))
        .await
        .expect("held mail delivered the next day");
    assert_eq!(
        sources_of(&sink, "news@brand.example.com"),
        BTreeSet::from([ip("127.0.0.2"), ip("127.0.0.3")])
    );
    // The outcomes are recorded just after the sink's 250: wait for them.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let delivered = loop {
        let n = statuses(&client, &date)
            .await
            .iter()
            .filter(|s| s["DeliverStatus"] == 1)
            .count();
        if n == 12 || tokio::time::Instant::now() > deadline {
            break n;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(delivered, 12);
    server.kill().await;
}
