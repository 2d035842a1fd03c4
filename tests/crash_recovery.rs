//! Durability: a mail whose MessageId was returned survives SIGKILL of the server under load and reaches a final
//! state after a restart, on SQLite and on PostgreSQL. Lost mails fail the test; duplicates (a mail sent but
//! not yet recorded at the kill goes out again: at-least-once) are counted and bounded.

use mailpush_suite::*;
use mailpush_testkit::{DnsAuthority, SinkMx};
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;
use std::time::Duration;

const MESSAGES: usize = 1000;
const CLIENTS: usize = 16;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_accepted_message_survives_sigkill() {
    sigkill_under_load(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_accepted_message_survives_sigkill_on_postgres() {
    let Some(schema) = PgSchema::create("crash_recovery").await else {
        return;
    };
    sigkill_under_load(Some(schema.url.clone())).await;
    schema.drop_schema().await;
}

/// Mails sent again after the kill at most: the worker's in-flight transactions and the outcomes not yet written.
const MAX_DUPLICATES: usize = 20;

async fn sigkill_under_load(database_url: Option<String>) {
    let dns = DnsAuthority::start().await.expect("dns");
    let sink = SinkMx::start_default().await.expect("sink");
    dns.add_mx("example.org", 10, "mx.example.org");
    dns.add_a("mx.example.org", Ipv4Addr::LOCALHOST);
    let dir = temp_dir();
    let mut vars = vec![
        ("MAILPUSH_DNS_SERVERS", dns.addr().to_string()),
        ("MAILPUSH_DELIVERY_PORT", sink.addr().port().to_string()),
        ("MAILPUSH_RETRY_SCHEDULE_SECS", "1".to_string()),
        // Few concurrent transactions, so a backlog is certainly queued or in flight at the kill.
        ("MAILPUSH_WORKER_CONCURRENCY", "2".to_string()),
        // A burst of sends: the per-second admission limit is not under test here.
        ("MAILPUSH_LIMIT_SENDS_PER_SECOND", "1000000".to_string()),
        // On PostgreSQL the restarted node takes the killed one's deliveries over when their lease ends.
        ("MAILPUSH_LEASE_SECONDS", "3".to_string()),
    ];
    if let Some(url) = database_url {
        vars.push(("MAILPUSH_DATABASE_URL", url));
    }
    let env = base_env(dir.path(), &vars);
    let creds = create_account(&env, "shop").await;
    let server = ServerProcess::start("mailpush", &["serve"], &env).await;
    let client = ApiClient::new(&server.api_addr, &creds);
    verified_sender(&client, &dns, "noreply@shop.example.com").await;
    // More mail than a new domain's daily quota (level 1 = 500): start this one at the top level.
    mailpush_cli(
        &env,
        &["account", "set", "shop", "--domain-level", "shop.example.com=20"],
    )
    .await;

    // The days the mail is requested on: a run that crosses midnight (UTC) finds part of it under each.
    let first_day = today();
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in (c..MESSAGES).step_by(CLIENTS) {
                let r = client
                    .call(
                        "SendEmail",
                        &json!({
                            "FromEmailAddress": "noreply@shop.example.com",
                            "Destination": [format!("user{i}@example.org")],
                            "Subject": format!("Message {i}"),
                            "Simple": { "Text": b64(format!("body {i}").as_bytes()) },
                        }),
                    )
                    .await;
                ids.push(r["MessageId"].as_str().unwrap_or_else(|| panic!("{r}")).to_string());
            }
            ids
        }));
    }
    let mut accepted = HashSet::new();
    for t in tasks {
        accepted.extend(t.await.expect("client task"));
    }
    assert_eq!(accepted.len(), MESSAGES);
    server.kill().await;
    let delivered_before_restart = sink.messages().len();
    assert!(
        delivered_before_restart < MESSAGES,
        "the kill must find work queued or in flight"
    );

    let server = ServerProcess::start("mailpush", &["serve"], &env).await;
    let client = ApiClient::new(&server.api_addr, &creds);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let mut statuses: HashMap<String, i64> = HashMap::new();
        let mut days = vec![first_day.clone(), today()];
        days.dedup();
        for day in &days {
            let mut offset = 0;
            loop {
                let r = client
                    .call(
                        "GetSendEmailStatus",
                        &json!({ "RequestDate": day, "Offset": offset, "Limit": 100 }),
                    )
                    .await;
                let rows = r["EmailStatusList"]
                    .as_array()
                    .cloned()
                    .unwrap_or_else(|| panic!("{r}"));
                for row in &rows {
                    statuses.insert(
                        row["MessageId"].as_str().unwrap().to_string(),
                        row["DeliverStatus"].as_i64().unwrap(),
                    );
                }
                if rows.len() < 100 {
                    break;
                }
                offset += 100;
            }
        }
        let missing: Vec<_> = accepted.iter().filter(|id| !statuses.contains_key(*id)).collect();
        assert!(missing.is_empty(), "accepted MessageIds lost: {missing:?}");
        let pending = accepted.iter().filter(|id| statuses[*id] != 1).count();
        if pending == 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{pending} messages never delivered after the restart"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // Every recipient got its mail; a message in flight at the kill may arrive twice (at-least-once).
    let mut copies: HashMap<String, usize> = HashMap::new();
    for m in sink.messages() {
        for r in m.rcpt_to {
            *copies.entry(r).or_insert(0) += 1;
        }
    }
    assert_eq!(copies.len(), MESSAGES, "lost: {}", MESSAGES - copies.len());
    let duplicates: usize = copies.values().map(|n| n - 1).sum();
    eprintln!("SIGKILL under load: 0 lost, {duplicates} duplicated of {MESSAGES}");
    assert!(duplicates <= MAX_DUPLICATES, "{duplicates} mails sent twice");
    server.terminate().await;
}
