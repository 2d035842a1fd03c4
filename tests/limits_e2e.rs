//! Admission limits across nodes: two API nodes sharing one PostgreSQL database,
//! hammered concurrently, together admit no more than the account's daily quota and no more than the
//! per-recipient hourly limit. Needs `MAILPUSH_TEST_POSTGRES_URL`; skipped with a notice when it is unset.
//! Also checks `GetSendQuota` and `ListEmailIdentities` levels through the real `mailpush serve` (SQLite).

use mailpush_suite::*;
use mailpush_testkit::DnsAuthority;
use serde_json::{Value, json};

fn mail(to: &str) -> Value {
    json!({
        "FromEmailAddress": "news@brand.example.com",
        "Destination": [to],
        "Subject": "hi",
        "Simple": { "Text": b64(b"hello") },
        "TriggerType": 0,
    })
}

/// Sends `n` mails (recipient chosen by `to(i)`) spread over `clients`, all at once; returns how many were
/// accepted and the error codes of the others.
async fn hammer(clients: &[ApiClient], n: usize, to: impl Fn(usize) -> String) -> (usize, Vec<String>) {
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        let client = clients[i % clients.len()].clone();
        let body = mail(&to(i));
        tasks.spawn(async move { client.call("SendEmail", &body).await });
    }
    let mut ok = 0;
    let mut codes = Vec::new();
    while let Some(r) = tasks.join_next().await {
        let r = r.expect("task");
        match ApiClient::error_code(&r) {
            None => ok += 1,
            Some(code) => codes.push(code),
        }
    }
    (ok, codes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_api_processes_on_one_postgres_share_the_limits() {
    let Some(schema) = PgSchema::create("limits_e2e").await else {
        return;
    };
    let url = schema.url.clone();

    let dns = DnsAuthority::start().await.expect("dns");
    // The nodes' workers deliver what was admitted: to a sink that accepts, so no recipient bounces (a bounce
    // would blacklist it and turn the limit refusals below into blacklist refusals).
    let sink = mailpush_testkit::SinkMx::start_default().await.expect("sink");
    dns.add_mx("dest.example.net", 10, "mx.dest.example.net");
    dns.add_a("mx.dest.example.net", std::net::Ipv4Addr::LOCALHOST);
    let dir = temp_dir();
    let env = base_env(
        dir.path(),
        &[
            ("MAILPUSH_DATABASE_URL", url),
            ("MAILPUSH_DNS_SERVERS", dns.addr().to_string()),
            ("MAILPUSH_DELIVERY_PORT", sink.addr().port().to_string()),
        ],
    );
    let creds = create_account(&env, "brand").await;
    // The rate limit is not under test here (real time moves): lift it for this account.
    mailpush_cli(&env, &["account", "set", "brand", "--sends-per-second", "100000"]).await;
    // Two API nodes: `mailpush serve` processes (the same API code as `mailpush-api`, whose binary a root
    // integration test cannot count on being built).
    let a = ServerProcess::start("mailpush", &["serve"], &env).await;
    let b = ServerProcess::start("mailpush", &["serve"], &env).await;
    let clients = [ApiClient::new(&a.api_addr, &creds), ApiClient::new(&b.api_addr, &creds)];
    verified_sender(&clients[0], &dns, "news@brand.example.com").await;

    // Per recipient: 40 mails to one address at once through both nodes → exactly 10.
    let (ok, codes) = hammer(&clients, 40, |_| "one@dest.example.net".into()).await;
    assert_eq!(ok, 10, "per-recipient hourly limit across nodes: {codes:?}");
    assert!(codes.iter().all(|c| c == "FailedOperation.FrequencyLimit"), "{codes:?}");

    // Daily quota (level 1 = 500 recipients, 10 used above): 600 distinct recipients → exactly 490 more.
    let (ok, codes) = hammer(&clients, 600, |i| format!("user{i}@dest.example.net")).await;
    assert_eq!(ok, 490, "daily quota across nodes");
    assert!(
        codes.iter().all(|c| c == "FailedOperation.ExceedSendLimit"),
        "{codes:?}"
    );

    let q = clients[1].call("GetSendQuota", &json!({})).await;
    assert_eq!(q["SentToday"], 500, "{q}");
    assert_eq!(q["RemainingToday"], 0, "{q}");
    a.kill().await;
    b.kill().await;
    schema.drop_schema().await;
}

#[tokio::test]
async fn send_quota_and_reputation_levels_are_readable() {
    let dns = DnsAuthority::start().await.expect("dns");
    let dir = temp_dir();
    let env = base_env(dir.path(), &[("MAILPUSH_DNS_SERVERS", dns.addr().to_string())]);
    let creds = create_account(&env, "brand").await;
    let server = ServerProcess::start("mailpush", &["serve"], &env).await;
    let client = ApiClient::new(&server.api_addr, &creds);
    verified_sender(&client, &dns, "news@brand.example.com").await;

    let list = client.call("ListEmailIdentities", &json!({})).await;
    assert_eq!(list["EmailIdentities"][0]["CurrentReputationLevel"], 1, "{list}");
    assert_eq!(list["EmailIdentities"][0]["DailyQuota"], 500, "{list}");
    assert_eq!(list["MaxReputationLevel"], 1, "{list}");
    assert_eq!(list["MaxDailyQuota"], 500, "{list}");

    let r = client.call("SendEmail", &mail("someone@dest.example.net")).await;
    assert!(r.get("Error").is_none(), "{r}");
    let q = client.call("GetSendQuota", &json!({})).await;
    assert_eq!(q["SentToday"], 1, "{q}");
    assert_eq!(q["DailyQuota"], 500, "{q}");
    assert_eq!(q["RemainingToday"], 499, "{q}");
    assert_eq!(q["SendsPerSecond"], 20, "{q}");
    assert_eq!(q["PerRecipientPerHour"], 10, "{q}");
    assert_eq!(q["Domains"][0]["IdentityName"], "brand.example.com", "{q}");

    // The operator raises the domain to level 3 (2,000/day).
    mailpush_cli(
        &env,
        &["account", "set", "brand", "--domain-level", "brand.example.com=3"],
    )
    .await;
    let list = client.call("ListEmailIdentities", &json!({})).await;
    assert_eq!(list["EmailIdentities"][0]["CurrentReputationLevel"], 3, "{list}");
    assert_eq!(list["MaxDailyQuota"], 2000, "{list}");
    let q = client.call("GetSendQuota", &json!({})).await;
    assert_eq!(q["DailyQuota"], 2000, "{q}");
    server.kill().await;
}
