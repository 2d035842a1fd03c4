//! Conformance cases for the event log, on SQLite and (with `MAILPUSH_TEST_POSTGRES_URL`) PostgreSQL.

use mailpush_model::{EventKind, MessageId};
use mailpush_store::{Account, BounceType, NewEvent};

const T0: i64 = 1_700_000_000_000;

#[macro_use]
mod common;
use common::Ctx;

conformance!(events_round_trip_scoped_by_account);

fn event(account: &Account, id: &MessageId, kind: EventKind, at_ms: i64) -> NewEvent {
    common::event(account.id, id, "rcpt@example.com", kind, at_ms)
}

async fn events_round_trip_scoped_by_account(ctx: Ctx) {
    let store = &ctx.store;
    let events = store.events();
    let a = common::account(store, "a", T0).await;
    let b = common::account(store, "b", T0).await;
    let m = MessageId::generate();
    let mut bounce = event(&a, &m, EventKind::Bounce, T0 + 2);
    bounce.reason = "550 5.1.1 no such user".into();
    bounce.bounce_type = Some(BounceType::Hard);
    let mut click = event(&a, &m, EventKind::Click, T0 + 3);
    click.link = Some("https://example.com/x".into());
    click.user_agent = Some("UA/1".into());
    let written = vec![event(&a, &m, EventKind::Deferred, T0 + 1), bounce, click];
    events.record_events(&written).await.expect("record");
    events.record_events(&[]).await.expect("empty batch is a no-op");

    let read = events.message_events(a.id, &m).await.expect("read");
    assert_eq!(read.iter().map(|e| e.event.clone()).collect::<Vec<_>>(), written);
    assert!(read.windows(2).all(|w| w[0].id < w[1].id));
    // Another account sees nothing of it.
    assert!(events.message_events(b.id, &m).await.expect("read b").is_empty());

    let window = events.account_events(a.id, T0 + 2, T0 + 3, 10).await.expect("window");
    assert_eq!(window.len(), 1);
    assert_eq!(window[0].event.kind, EventKind::Bounce);
}
