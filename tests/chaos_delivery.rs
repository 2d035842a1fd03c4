//! Hostile receivers against the real `mailpush serve`: MX hosts that accept connections and never greet
//! (tarpits) must not delay other mail, and a receiver that never answers the final dot must not get the same
//! mail again every lease period. Bounds are generous: these check outcomes, not speed.

use mailpush_suite::*;
use mailpush_testkit::{DnsAuthority, SinkMx, Tarpit};
use serde_json::{Value, json};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

/// A sink on 127.0.0.1 and a tarpit on 127.0.0.2 listening on the same port (mailpush dials one port on
/// every MX host).
async fn sink_and_tarpit() -> (SinkMx, Tarpit) {
    for _ in 0..20 {
        let sink = SinkMx::start_default().await.expect("sink");
        let addr = SocketAddr::from((Ipv4Addr::new(127, 0, 0, 2), sink.port()));
        if let Ok(tarpit) = Tarpit::start(addr).await {
            return (sink, tarpit);
        }
    }
    panic!("no port free on both 127.0.0.1 and 127.0.0.2");
}

struct World {
    dir: tempfile::TempDir,
    dns: DnsAuthority,
    server: ServerProcess,
    client: ApiClient,
}

async fn world(sink: &SinkMx, extra: &[(&str, String)]) -> World {
    let dns = DnsAuthority::start().await.expect("dns");
    dns.add_mx("healthy.example", 10, "mx.healthy.example");
    dns.add_a("mx.healthy.example", Ipv4Addr::LOCALHOST);
    let dir = temp_dir();
    let mut vars = vec![
        ("MAILPUSH_DNS_SERVERS", dns.addr().to_string()),
        ("MAILPUSH_DELIVERY_PORT", sink.port().to_string()),
        ("MAILPUSH_RETRY_SCHEDULE_SECS", "1".to_string()),
        ("MAILPUSH_LIMIT_SENDS_PER_SECOND", "1000000".to_string()),
    ];
    vars.extend(extra.iter().cloned());
    let env = base_env(dir.path(), &vars);
    let creds = create_account(&env, "shop").await;
    let server = ServerProcess::start("mailpush", &["serve"], &env).await;
    let client = ApiClient::new(&server.api_addr, &creds);
    verified_sender(&client, &dns, "noreply@shop.example.com").await;
    World {
        dir,
        dns,
        server,
        client,
    }
}

async fn send(client: &ApiClient, to: &str, subject: &str) -> String {
    let r = client
        .call(
            "SendEmail",
            &json!({
                "FromEmailAddress": "noreply@shop.example.com",
                "Destination": [to],
                "Subject": subject,
                "Simple": { "Text": b64(b"hello") },
            }),
        )
        .await;
    r["MessageId"].as_str().unwrap_or_else(|| panic!("{r}")).to_string()
}

async fn status(client: &ApiClient, id: &str) -> Value {
    let r = client
        .call(
            "GetSendEmailStatus",
            &json!({ "RequestDate": today(), "MessageId": id, "Offset": 0, "Limit": 10 }),
        )
        .await;
    r["EmailStatusList"][0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tarpit_receivers_do_not_delay_other_mail() {
    let (sink, tarpit) = sink_and_tarpit().await;
    let w = world(&sink, &[]).await;
    for i in 0..40 {
        let domain = format!("tarpit{i}.example");
        w.dns.add_mx(&domain, 10, &format!("mx.{domain}"));
        w.dns.add_a(&format!("mx.{domain}"), Ipv4Addr::new(127, 0, 0, 2));
    }
    // 40 domains whose MX never greets, 8 mails each, queued first.
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..40 {
        for j in 0..8 {
            let client = w.client.clone();
            tasks.spawn(async move { send(&client, &format!("user{j}@tarpit{i}.example"), "stuck").await });
        }
    }
    let mut stuck = Vec::new();
    while let Some(id) = tasks.join_next().await {
        stuck.push(id.expect("send task"));
    }
    assert_eq!(stuck.len(), 320);
    // The worker is busy with them now.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while tarpit.accepted() == 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(tarpit.accepted() > 0, "the tarpit mail is being delivered");

    // Then 50 mails to a healthy domain: all delivered within 15 s, although the tarpits hold their
    // connections for the 30 s greeting timeout.
    for k in 0..50 {
        send(&w.client, &format!("reader{k}@healthy.example"), "healthy").await;
    }
    let got = sink.wait_for_count(50, Duration::from_secs(15)).await;
    assert!(
        got.is_ok(),
        "healthy mail waited behind the tarpits: {} of 50 delivered within 15 s (tarpit connections: {})",
        sink.message_count(),
        tarpit.accepted()
    );
    // A tarpit mail is still queued or deferred, never bounced.
    let s = status(&w.client, &stuck[0]).await;
    assert!([0, 8].contains(&s["DeliverStatus"].as_i64().unwrap_or(-1)), "{s}");
    // Killed, not terminated: a graceful stop waits for the transactions in flight, and those towards the
    // tarpits end only at their greeting timeout.
    w.server.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_never_answers_the_final_dot_gets_the_mail_a_few_times_only() {
    let sink = SinkMx::start_default().await.expect("sink");
    sink.set_silent_after_data(true);
    // The lease is far shorter than the data timeout: only renewal keeps a second claim from sending again.
    let w = world(
        &sink,
        &[
            ("MAILPUSH_LEASE_SECONDS", "2".to_string()),
            ("MAILPUSH_DATA_TIMEOUT_SECS", "6".to_string()),
        ],
    )
    .await;
    let id = send(&w.client, "reader@healthy.example", "silent").await;
    sink.wait_for_messages(1, Duration::from_secs(10))
        .await
        .expect("the first send");
    // Three lease periods pass while the first send waits for its reply.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        sink.message_count(),
        1,
        "sent again while the first send was in progress"
    );

    // The status says the result is unknown; retries stop after a few attempts.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    let final_status = loop {
        let s = status(&w.client, &id).await;
        // 3: final, given up as a soft bounce.
        if s["DeliverStatus"] == 3 || tokio::time::Instant::now() > deadline {
            break s;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let message = final_status["DeliverMessage"].as_str().unwrap_or_default().to_string();
    assert!(message.contains("status unknown"), "{final_status}");
    assert!(message.contains("may have it"), "{final_status}");
    let copies = sink.message_count();
    assert!((2..=3).contains(&copies), "{copies} copies sent: {final_status}");
    // And no more after that.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(sink.message_count(), copies);
    w.server.terminate().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_beyond_the_account_share_waits_its_turn_instead_of_being_deferred() {
    let sink = SinkMx::start_default().await.expect("sink");
    // A receiver that scans each message for 300 ms: of four slots the account may hold two, so it delivers
    // about 7 mails a second and most of a burst of 60 waits for a place, for up to nine seconds.
    sink.set_data_delay(Duration::from_millis(300));
    let w = world(
        &sink,
        &[
            ("MAILPUSH_WORKER_CONCURRENCY", "4".to_string()),
            ("MAILPUSH_WORKER_ACCOUNT_SHARE", "50".to_string()),
        ],
    )
    .await;
    // One at a time, faster than they are delivered: each is accepted while the ones before it wait (a
    // burst accepted all at once fills the worker's hand-off at once and queues the rest for its claims).
    for i in 0..60 {
        send(&w.client, &format!("reader{i}@healthy.example"), "burst").await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    sink.wait_for_count(60, Duration::from_secs(60))
        .await
        .expect("the burst delivered");
    // Every mail went out on its first attempt: none was deferred for want of a place while the account's
    // mail kept moving (deferred, it waited 5 s more and came out of order).
    let url = format!("sqlite:{}", w.dir.path().join("mailpush.db").display());
    let db = sqlx::SqlitePool::connect(&url)
        .await
        .expect("open the server's database");
    // The outcomes are written in batches, a moment after the sink has the mail.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let attempts = loop {
        let attempts: Vec<(i64, String)> = sqlx::query_as("SELECT attempt, reply FROM delivery_attempts")
            .fetch_all(&db)
            .await
            .expect("read the attempts");
        if attempts.len() >= 60 || tokio::time::Instant::now() > deadline {
            break attempts;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(attempts.len(), 60, "{attempts:?}");
    assert!(
        attempts.iter().all(|(attempt, _)| *attempt == 1),
        "deferred: {:?}",
        attempts.iter().filter(|(a, _)| *a != 1).collect::<Vec<_>>()
    );
    w.server.terminate().await;
}
