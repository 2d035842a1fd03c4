//! Suppression end to end through the real `mailpush serve`: hard bounces feed the global blacklist, the
//! retry deadline turns a deferral into a soft bounce, custom blacklists, auto-suspend; events are checked in
//! the process's SQLite database.

use mailpush_model::EventKind;
use mailpush_store::{BounceType, RecordedEvent};
use mailpush_suite::outcomes::{message_id, wait_status};
use mailpush_suite::*;
use mailpush_testkit::{DnsAuthority, SinkMx, SinkReply};
use serde_json::{Value, json};
use std::net::Ipv4Addr;
use std::time::Duration;

struct World {
    dir: tempfile::TempDir,
    _dns: DnsAuthority,
    sink: SinkMx,
    server: ServerProcess,
    client: ApiClient,
    env: std::collections::HashMap<String, String>,
}

async fn world(extra: &[(&str, String)]) -> World {
    let dns = DnsAuthority::start().await.expect("dns");
    let sink = SinkMx::start_default().await.expect("sink");
    dns.add_mx("example.org", 10, "mx.example.org");
    dns.add_a("mx.example.org", Ipv4Addr::LOCALHOST);
    let dir = temp_dir();
    let mut vars = vec![
        ("MAILPUSH_DNS_SERVERS", dns.addr().to_string()),
        ("MAILPUSH_DELIVERY_PORT", sink.addr().port().to_string()),
        ("MAILPUSH_RETRY_SCHEDULE_SECS", "1".to_string()),
    ];
    vars.extend(extra.iter().cloned());
    let env = base_env(dir.path(), &vars);
    let creds = create_account(&env, "shop").await;
    let server = ServerProcess::start("mailpush", &["serve"], &env).await;
    let client = ApiClient::new(&server.api_addr, &creds);
    verified_sender(&client, &dns, "noreply@shop.example.com").await;
    World {
        dir,
        _dns: dns,
        sink,
        server,
        client,
        env,
    }
}

async fn send(client: &ApiClient, to: &[&str]) -> Value {
    client
        .call(
            "SendEmail",
            &json!({
                "FromEmailAddress": "noreply@shop.example.com",
                "Destination": to,
                "Subject": "Hi",
                "Simple": { "Html": b64(b"<b>hi</b>"), "Text": b64(b"hi") },
            }),
        )
        .await
}

/// The events of one message, read from the server's database (a second connection; WAL lets both work).
async fn events_of(w: &World, id: &str) -> Vec<RecordedEvent> {
    outcomes::message_events(w.dir.path(), "shop", id).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hard_bounce_blacklists_the_address_for_later_sends() {
    let w = world(&[]).await;
    w.sink
        .set_reply("gone@example.org", SinkReply::reply(550, "5.1.1 no such user here"));
    let first = message_id(&send(&w.client, &["gone@example.org"]).await);
    wait_status(&w.client, &first, &[3], Duration::from_secs(30)).await;
    let events = events_of(&w, &first).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].event.kind, EventKind::Bounce);
    assert_eq!(events[0].event.bounce_type, Some(BounceType::Hard));
    assert!(events[0].event.reason.contains("5.1.1"), "{events:?}");

    // Alone: the request is refused.
    let refused = send(&w.client, &["Gone@example.org"]).await;
    assert_eq!(
        ApiClient::error_code(&refused).as_deref(),
        Some("FailedOperation.EmailAddrInBlacklist"),
        "{refused}"
    );

    // With another recipient: that one goes, the blacklisted one is recorded with SendStatus 1007.
    let mixed = message_id(&send(&w.client, &["gone@example.org", "alice@example.org"]).await);
    let rows = wait_status(&w.client, &mixed, &[1, 2], Duration::from_secs(30)).await;
    let row = |who: &str| rows.iter().find(|r| r["ToEmailAddress"] == who).cloned().expect(who);
    assert_eq!(row("gone@example.org")["SendStatus"], 1007, "{rows:?}");
    assert_eq!(row("gone@example.org")["DeliverStatus"], 2, "{rows:?}");
    assert_eq!(row("alice@example.org")["SendStatus"], 0, "{rows:?}");
    wait_status(&w.client, &mixed, &[1, 2], Duration::from_secs(30)).await;
    let mut kinds: Vec<(String, EventKind)> = events_of(&w, &mixed)
        .await
        .into_iter()
        .map(|e| (e.event.recipient, e.event.kind))
        .collect();
    kinds.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        kinds,
        vec![
            ("alice@example.org".to_string(), EventKind::Delivered),
            ("gone@example.org".to_string(), EventKind::Dropped)
        ]
    );
    assert_eq!(w.sink.rcpt_attempts("gone@example.org"), 1, "never tried again");

    // ListBlackEmailAddress shows it; DeleteBlackList lifts it.
    let list = w
        .client
        .call(
            "ListBlackEmailAddress",
            &json!({ "StartDate": today(), "EndDate": today(), "Offset": 0, "Limit": 10 }),
        )
        .await;
    assert_eq!(list["TotalCount"], 1, "{list}");
    assert_eq!(list["BlackList"][0]["EmailAddress"], "gone@example.org");
    assert!(
        list["BlackList"][0]["IspDesc"].as_str().unwrap_or("").contains("5.1.1"),
        "{list}"
    );
    assert!(
        list["BlackList"][0]["BounceTime"]
            .as_str()
            .unwrap_or("")
            .starts_with(&today()),
        "{list}"
    );
    let del = w
        .client
        .call("DeleteBlackList", &json!({ "EmailAddressList": ["gone@example.org"] }))
        .await;
    assert!(del.get("Error").is_none(), "{del}");
    w.sink.set_reply("gone@example.org", SinkReply::Accept);
    let again = message_id(&send(&w.client, &["gone@example.org"]).await);
    wait_status(&w.client, &again, &[1], Duration::from_secs(30)).await;
    w.server.terminate().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn always_451_ends_as_a_soft_bounce_at_the_deadline() {
    let w = world(&[("MAILPUSH_MAX_DELIVERY_SECONDS", "3".to_string())]).await;
    w.sink
        .set_reply("busy@example.org", SinkReply::reply(451, "4.3.0 try again later"));
    let id = message_id(&send(&w.client, &["busy@example.org"]).await);
    let rows = wait_status(&w.client, &id, &[3], Duration::from_secs(40)).await;
    let msg = rows[0]["DeliverMessage"].as_str().unwrap_or("");
    assert!(msg.contains("gave up") && msg.contains("451"), "{rows:?}");
    assert!(
        w.sink.rcpt_attempts("busy@example.org") >= 2,
        "retried before giving up"
    );
    let events = events_of(&w, &id).await;
    outcomes::assert_deferred_then_soft_bounce(&events);
    // A soft bounce does not blacklist.
    w.sink.set_reply("busy@example.org", SinkReply::Accept);
    let next = message_id(&send(&w.client, &["busy@example.org"]).await);
    wait_status(&w.client, &next, &[1], Duration::from_secs(30)).await;
    w.server.terminate().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_blacklist_actions_block_sends() {
    let w = world(&[]).await;
    let c = &w.client;
    let created = c
        .call(
            "CreateCustomBlacklist",
            &json!({ "Emails": ["a@example.org", "b@example.org", "a@example.org", "not-an-address"] }),
        )
        .await;
    assert_eq!(created["TotalCount"], 4, "{created}");
    assert_eq!(created["ValidCount"], 2, "{created}");
    assert_eq!(created["RepeatCount"], 1, "{created}");
    assert_eq!(created["InvalidCount"], 1, "{created}");
    let refused = send(c, &["a@example.org"]).await;
    assert_eq!(
        ApiClient::error_code(&refused).as_deref(),
        Some("FailedOperation.EmailAddrInBlacklist")
    );

    let list = c
        .call("ListCustomBlacklist", &json!({ "Offset": 0, "Limit": 10, "Status": 1 }))
        .await;
    assert_eq!(list["TotalCount"], 2, "{list}");
    let entry = list["Data"]
        .as_array()
        .and_then(|d| d.iter().find(|e| e["Email"] == "a@example.org"))
        .cloned()
        .expect("a@ listed");
    assert_eq!(entry["Status"], 1);
    assert_eq!(entry["ExpireDate"], "");

    // Moving the entry to an already-expired date lifts the block.
    let upd = c
        .call(
            "UpdateCustomBlackList",
            &json!({ "Id": entry["Id"], "Email": "a@example.org", "ExpireDate": "2020-01-01" }),
        )
        .await;
    assert!(upd.get("Error").is_none(), "{upd}");
    let expired = c
        .call("ListCustomBlacklist", &json!({ "Offset": 0, "Limit": 10, "Status": 0 }))
        .await;
    assert_eq!(expired["TotalCount"], 1, "{expired}");
    assert_eq!(expired["Data"][0]["ExpireDate"], "2020-01-01");
    let ok = send(c, &["a@example.org"]).await;
    assert!(ok.get("Error").is_none(), "{ok}");

    let missing = c
        .call(
            "UpdateCustomBlackList",
            &json!({ "Id": 999_999, "Email": "x@example.org" }),
        )
        .await;
    assert_eq!(
        ApiClient::error_code(&missing).as_deref(),
        Some("InvalidParameterValue"),
        "{missing}"
    );
    let del = c
        .call("DeleteCustomBlackList", &json!({ "Emails": ["b@example.org"] }))
        .await;
    assert!(del.get("Error").is_none(), "{del}");
    let ok = send(c, &["b@example.org"]).await;
    assert!(ok.get("Error").is_none(), "{ok}");
    w.server.terminate().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_blacklisted_recipients_suspend_the_account() {
    let w = world(&[("MAILPUSH_REPUTATION_MIN_SENDS", "4".to_string())]).await;
    let c = &w.client;
    let created = c
        .call("CreateCustomBlacklist", &json!({ "Emails": ["x@example.org"] }))
        .await;
    assert!(created.get("Error").is_none(), "{created}");
    // 3 clean recipients, then 1 hit out of 4 (25% ≥ 8%): suspended.
    let ok = send(c, &["r1@example.org", "r2@example.org"]).await;
    assert!(ok.get("Error").is_none(), "{ok}");
    let hit = send(c, &["r3@example.org", "x@example.org"]).await;
    assert!(hit.get("Error").is_none(), "the request itself passes: {hit}");
    let refused = send(c, &["r4@example.org"]).await;
    assert_eq!(
        ApiClient::error_code(&refused).as_deref(),
        Some("FailedOperation.HighRejectionRate"),
        "{refused}"
    );
    let listed = mailpush_cli(&w.env, &["account", "list", "--json"]).await;
    assert!(listed.contains("\"Suspended\":true"), "{listed}");
    // The operator resumes it.
    mailpush_cli(&w.env, &["account", "resume", "shop"]).await;
    let listed = mailpush_cli(&w.env, &["account", "list", "--json"]).await;
    assert!(listed.contains("\"Suspended\":false"), "{listed}");
    let _ = &w.sink;
    w.server.terminate().await;
}
