//! Conformance cases for SES v2 configuration sets (migration 0033): sets, event destinations, message tags, and
//! the callback state of the events of an account with an enabled destination; on SQLite and (with
//! `MAILPUSH_TEST_POSTGRES_URL`) PostgreSQL.

use mailpush_model::EventKind;
use mailpush_store::{
    AccountId, CallbackEvent, EventDestinationRow, MessageTagsRow, NewEvent, NewMessage, Store, StoreError,
};

const T0: i64 = 1_764_158_400_000;

#[macro_use]
mod common;
use common::{Ctx, DAY};

conformance!(sets_destinations_and_tags, enabled_destinations_make_events_pending,);

fn dest(set: &str, name: &str, enabled: i64, types: &str) -> EventDestinationRow {
    EventDestinationRow {
        set_name: set.into(),
        name: name.into(),
        enabled,
        url: "https://hooks.example.com/ses".into(),
        event_types: types.into(),
    }
}

async fn sets_destinations_and_tags(ctx: Ctx) {
    let store = &ctx.store;
    let a = common::account(store, "a", T0).await;
    let b = common::account(store, "b", T0).await;
    let sets = store.configuration_sets();
    sets.create_set(a.id, "marketing", T0).await.expect("create");
    sets.create_set(a.id, "alerts", T0 + 1).await.expect("create");
    sets.create_set(b.id, "marketing", T0)
        .await
        .expect("another account, the same name");
    assert!(matches!(
        sets.create_set(a.id, "marketing", T0).await,
        Err(StoreError::Conflict(_))
    ));
    let names: Vec<String> = sets
        .sets(a.id)
        .await
        .expect("list")
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, ["alerts", "marketing"]);
    assert_eq!(
        sets.set(a.id, "alerts").await.expect("get").map(|s| s.created_ms),
        Some(T0 + 1)
    );
    assert!(sets.set(a.id, "nope").await.expect("get").is_none());
    // Options: '{}' until set, then replaced whole; another account's set of the same name keeps its own.
    assert_eq!(
        sets.set(a.id, "marketing").await.expect("get").expect("set").options,
        "{}"
    );
    let options = r#"{"SendingOptions":{"SendingEnabled":false}}"#;
    sets.set_options(a.id, "marketing", options).await.expect("options");
    assert_eq!(
        sets.set(a.id, "marketing").await.expect("get").expect("set").options,
        options
    );
    assert_eq!(
        sets.set(b.id, "marketing").await.expect("get").expect("set").options,
        "{}"
    );
    assert!(matches!(
        sets.set_options(a.id, "nope", options).await,
        Err(StoreError::NotFound)
    ));

    sets.create_destination(a.id, &dest("marketing", "hook", 1, "DELIVERY,BOUNCE"))
        .await
        .expect("destination");
    sets.create_destination(a.id, &dest("alerts", "hook", 0, "OPEN"))
        .await
        .expect("destination");
    assert!(matches!(
        sets.create_destination(a.id, &dest("marketing", "hook", 1, "OPEN"))
            .await,
        Err(StoreError::Conflict(_))
    ));
    sets.update_destination(a.id, &dest("alerts", "hook", 1, "OPEN,CLICK"))
        .await
        .expect("update");
    assert!(matches!(
        sets.update_destination(a.id, &dest("alerts", "ghost", 1, "OPEN")).await,
        Err(StoreError::NotFound)
    ));
    let all = sets.destinations(a.id, None).await.expect("all");
    assert_eq!(
        all,
        vec![
            dest("alerts", "hook", 1, "OPEN,CLICK"),
            dest("marketing", "hook", 1, "DELIVERY,BOUNCE")
        ]
    );
    assert_eq!(sets.destinations(a.id, Some("marketing")).await.expect("one").len(), 1);
    assert!(sets.destinations(b.id, None).await.expect("b").is_empty());

    let row = MessageTagsRow {
        message_id: "m1".into(),
        set_name: "marketing".into(),
        tags: r#"{"campaign":"spring"}"#.into(),
        source: "n@shop.example.com".into(),
        subject: "Spring".into(),
        created_ms: T0 + 7,
    };
    sets.put_message_tags(a.id, &row).await.expect("tags");
    let tags = sets.message_tags(&["m1", "m2"]).await.expect("read");
    assert_eq!(tags, vec![row]);
    assert!(sets.message_tags(&[]).await.expect("none").is_empty());

    sets.delete_destination(a.id, "alerts", "hook").await.expect("delete");
    assert!(matches!(
        sets.delete_destination(a.id, "alerts", "hook").await,
        Err(StoreError::NotFound)
    ));
    sets.delete_set(a.id, "marketing").await.expect("delete set");
    assert!(
        sets.destinations(a.id, Some("marketing"))
            .await
            .expect("gone")
            .is_empty()
    );
    assert!(matches!(
        sets.delete_set(a.id, "marketing").await,
        Err(StoreError::NotFound)
    ));
    assert!(sets.set(b.id, "marketing").await.expect("b's").is_some());
}

/// Sends one mail of `account` to r@example.org and records its delivery; returns it with the callbacks due then.
async fn deliver_one(store: &Store, account: AccountId) -> (NewMessage, Vec<CallbackEvent>) {
    let m = common::message(
        account,
        "n@shop.example.com",
        T0,
        T0 + DAY,
        vec![common::to("r@example.org")],
    );
    store.queue().enqueue(m.clone()).await.expect("enqueue");
    let delivered = NewEvent {
        reason: "250 ok".into(),
        ..common::event(account, &m.id, "r@example.org", EventKind::Delivered, T0 + 1000)
    };
    store.events().record_events(&[delivered]).await.expect("event");
    let due = store.callbacks().due_callbacks(T0 + DAY, 10).await.expect("due");
    (m, due)
}

async fn enabled_destinations_make_events_pending(ctx: Ctx) {
    let store = &ctx.store;
    let a = common::account(store, "a", T0).await;
    let (_, due) = deliver_one(store, a.id).await;
    // No callback URL, no destination: nothing to post.
    assert!(due.is_empty());

    let sets = store.configuration_sets();
    sets.create_set(a.id, "marketing", T0).await.expect("set");
    sets.create_destination(a.id, &dest("marketing", "off", 0, "DELIVERY"))
        .await
        .expect("disabled");
    let (_, due) = deliver_one(store, a.id).await;
    assert!(due.is_empty(), "disabled");

    sets.create_destination(a.id, &dest("marketing", "on", 1, "DELIVERY"))
        .await
        .expect("enabled");
    let (third, due) = deliver_one(store, a.id).await;
    assert_eq!(due.len(), 1, "{due:?}");
    assert_eq!(due[0].event.event.message_id, third.id);
}
