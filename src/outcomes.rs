//! What became of a message: its per-recipient status through the API, its events read from the server's SQLite
//! database after the fact (a second connection; WAL lets both work), and the outcomes several suites expect.

use std::path::Path;
use std::time::Duration;

use mailpush_model::{EventKind, MessageId};
use mailpush_store::{BounceType, RecordedEvent, Store, StoreOptions};
use serde_json::{Value, json};

use crate::{ApiClient, today};

/// The `MessageId` of a `SendEmail` reply (panics, with the reply, when it has none).
pub fn message_id(reply: &Value) -> String {
    reply["MessageId"]
        .as_str()
        .unwrap_or_else(|| panic!("no MessageId: {reply}"))
        .to_string()
}

/// The `GetSendEmailStatus` rows of message `id` sent today, one per recipient (none yet: empty).
pub async fn status_of(client: &ApiClient, id: &str) -> Vec<Value> {
    let r = client
        .call(
            "GetSendEmailStatus",
            &json!({ "RequestDate": today(), "MessageId": id, "Offset": 0, "Limit": 100 }),
        )
        .await;
    assert!(r.get("Error").is_none(), "{r}");
    r["EmailStatusList"].as_array().cloned().unwrap_or_default()
}

/// Polls until every recipient of message `id` has a `DeliverStatus` in `wanted`, for at most `timeout`;
/// returns the rows.
pub async fn wait_status(client: &ApiClient, id: &str, wanted: &[i64], timeout: Duration) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let rows = status_of(client, id).await;
        if !rows.is_empty()
            && rows
                .iter()
                .all(|r| wanted.contains(&r["DeliverStatus"].as_i64().unwrap_or(-1)))
        {
            return rows;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "status of {id} never reached {wanted:?}: {rows:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The events of message `id` of the account named `account`, in the database of the server whose data
/// directory is `data_dir` (`mailpush.db` in it).
pub async fn message_events(data_dir: &Path, account: &str, id: &str) -> Vec<RecordedEvent> {
    let url = format!("sqlite:{}", data_dir.join("mailpush.db").display());
    let store = Store::open(&url, StoreOptions::default())
        .await
        .expect("open the server's store");
    let account = store
        .accounts()
        .account_by_name(account)
        .await
        .expect("account")
        .unwrap_or_else(|| panic!("no account {account}"))
        .id;
    let id = MessageId::parse(id).expect("MessageId");
    let events = store.events().message_events(account, &id).await.expect("events");
    store.close().await;
    events
}

/// Asserts that the mail was deferred on each attempt and ended as a soft bounce: the last event is a soft
/// bounce, every one before it a deferral.
pub fn assert_deferred_then_soft_bounce(events: &[RecordedEvent]) {
    let last = events.last().expect("events");
    assert_eq!(last.event.kind, EventKind::Bounce);
    assert_eq!(last.event.bounce_type, Some(BounceType::Soft));
    assert!(
        events[..events.len() - 1]
            .iter()
            .all(|e| e.event.kind == EventKind::Deferred),
        "{events:?}"
    );
}
