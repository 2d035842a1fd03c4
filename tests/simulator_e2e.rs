//! The mailbox simulator through the real `mailpush serve` (production settings, no dev mode): mail to
//! `…@simulator.mailpush` never reaches any MX and gets the outcome its mailbox stands for, recorded as a real one
//! would be (statuses, events, suppression).

use mailpush_model::EventKind;
use mailpush_store::RecordedEvent;
use mailpush_suite::outcomes::{message_id, status_of};
use mailpush_suite::*;
use serde_json::{Value, json};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(15);

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

fn status_for<'a>(rows: &'a [Value], rcpt: &str) -> &'a Value {
    rows.iter()
        .find(|r| r["ToEmailAddress"] == rcpt)
        .unwrap_or_else(|| panic!("no status for {rcpt}: {rows:?}"))
}

async fn events_of(world: &MailWorld, id: &str) -> Vec<RecordedEvent> {
    outcomes::message_events(world.dir.path(), "shop", id).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulator_mailboxes_produce_their_outcomes_without_sending() {
    let world = mail_world(&[]).await;
    let creds = create_account(&world.env, "shop").await;
    let server = ServerProcess::start("mailpush", &["serve"], &world.env).await;
    let client = ApiClient::new(&server.api_addr, &creds);
    verified_sender(&client, &world.dns, "noreply@shop.example.com").await;

    let rcpts = [
        "success@simulator.mailpush",
        "bounce@simulator.mailpush",
        "complaint@simulator.mailpush",
        "ooto@simulator.mailpush",
        "suppressionlist@simulator.mailpush",
    ];
    let sent = send(&client, &rcpts).await;
    let id = message_id(&sent);
    // suppressionlist@ is screened at admission like a blacklisted recipient (SendStatus 1007).
    let deadline = tokio::time::Instant::now() + WAIT;
    let (rows, events) = loop {
        let rows = status_of(&client, &id).await;
        let events = events_of(&world, &id).await;
        let settled = rows.len() == 5 && rows.iter().all(|r| r["DeliverStatus"] != 0);
        if settled && events.iter().any(|e| e.event.kind == EventKind::SpamReport) {
            break (rows, events);
        }
        assert!(tokio::time::Instant::now() < deadline, "{rows:?} {events:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        status_for(&rows, "success@simulator.mailpush")["DeliverStatus"],
        1,
        "{rows:?}"
    );
    assert_eq!(
        status_for(&rows, "ooto@simulator.mailpush")["DeliverStatus"],
        1,
        "{rows:?}"
    );
    let complaint = status_for(&rows, "complaint@simulator.mailpush");
    assert_eq!(complaint["DeliverStatus"], 1, "{rows:?}");
    assert_eq!(complaint["UserComplainted"], true, "{rows:?}");
    let bounce = status_for(&rows, "bounce@simulator.mailpush");
    assert_eq!(bounce["DeliverStatus"], 3, "{rows:?}");
    assert!(
        bounce["DeliverMessage"]
            .as_str()
            .unwrap_or_default()
            .contains("550 5.1.1"),
        "{rows:?}"
    );
    assert_eq!(
        status_for(&rows, "suppressionlist@simulator.mailpush")["DeliverStatus"],
        2,
        "{rows:?}"
    );
    let kinds = |rcpt: &str| -> Vec<EventKind> {
        events
            .iter()
            .filter(|e| e.event.recipient == rcpt)
            .map(|e| e.event.kind)
            .collect()
    };
    assert_eq!(kinds("success@simulator.mailpush"), vec![EventKind::Delivered]);
    assert_eq!(kinds("bounce@simulator.mailpush"), vec![EventKind::Bounce]);
    assert_eq!(
        kinds("complaint@simulator.mailpush"),
        vec![EventKind::Delivered, EventKind::SpamReport]
    );
    assert_eq!(kinds("suppressionlist@simulator.mailpush"), vec![EventKind::Dropped]);
    // Nothing left the machine.
    assert_eq!(world.sink.message_count(), 0);

    // As after real ones: the hard bounce is on the global blacklist, the complainant on the account's own.
    for (rcpt, list_action) in [
        ("bounce@simulator.mailpush", "ListBlackEmailAddress"),
        ("complaint@simulator.mailpush", "ListCustomBlacklist"),
    ] {
        let again = send(&client, &[rcpt]).await;
        assert_eq!(
            ApiClient::error_code(&again).as_deref(),
            Some("FailedOperation.EmailAddrInBlacklist"),
            "{rcpt}: {again} ({list_action})"
        );
    }
    let alone = send(&client, &["suppressionlist@simulator.mailpush"]).await;
    assert_eq!(
        ApiClient::error_code(&alone).as_deref(),
        Some("FailedOperation.EmailAddrInBlacklist"),
        "{alone}"
    );
    server.kill().await;
}
