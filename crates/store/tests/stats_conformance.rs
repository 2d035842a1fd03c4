//! Conformance cases for statistics and the rest of the feedback loop (migration 0011): the daily rollup agrees
//! with the event log, per-recipient bodies are purged at the final state, the template id reaches callbacks,
//! complaints, unsubscribe configs and warnings; on SQLite and (with `MAILPUSH_TEST_POSTGRES_URL`) PostgreSQL.

use mailpush_model::{EventKind, SendStatus};
use mailpush_store::{
    Account, AsyncBounce, AttemptResult, BounceType, CallbackResult, CallbackState, NewEvent, NewMessage, NewRecipient,
    NewWarning, StatCounters, Store, StoreError, StoreOptions, UnsubscribeConfigRow,
};

/// Midday, so that T0 ± a few hours stays on one UTC day.
const T0: i64 = 1_764_158_400_000;

#[macro_use]
mod common;
use common::{Ctx, DAY, rcpt, stats, to};

conformance!(
    rollup_agrees_with_the_event_log,
    recipient_bodies_are_purged_at_the_final_state,
    recipient_bodies_are_kept_with_retain_bodies,
    contents_of_several_messages_in_one_read,
    template_id_reaches_callback_events,
    only_accounts_with_callbacks_have_due_events,
    complaints_page_newest_first,
    unsubscribe_configs_crud,
    warnings_are_raised_once_and_cleared,
);

fn message(account: &Account, from: &str, at: i64, recipients: Vec<NewRecipient>) -> NewMessage {
    common::message(account.id, from, at, at + 10 * DAY, recipients)
}

/// Claims everything due at `now` and reports `result(recipient)` for each.
async fn deliver(store: &Store, now: i64, result: impl Fn(&str) -> AttemptResult) {
    assert!(
        common::deliver_due(store, 100, now, now + 1, None, result)
            .await
            .iter()
            .all(|a| *a)
    );
}

fn engagement(account: &Account, m: &NewMessage, recipient: &str, kind: EventKind, at: i64) -> NewEvent {
    NewEvent {
        link: (kind == EventKind::Click).then(|| "https://shop.example/x".to_string()),
        ..common::event(account.id, &m.id, recipient, kind, at)
    }
}

async fn rollup_agrees_with_the_event_log(ctx: Ctx) {
    let store = &ctx.store;
    let a = common::account(store, "a", T0).await;
    let other = common::account(store, "other", T0).await;
    let m = message(
        &a,
        "news@shop.example",
        T0,
        vec![
            to("ok@gmail.com"),
            to("gone@gmail.com"),
            to("slow@yahoo.com"),
            rcpt("listed@yahoo.com", SendStatus::Blacklisted),
        ],
    );
    store.queue().enqueue(m.clone()).await.expect("enqueue");
    // Another account's mail never shows in a's report.
    store
        .queue()
        .enqueue(message(&other, "x@other.example", T0, vec![to("ok@gmail.com")]))
        .await
        .expect("enqueue other");
    deliver(store, T0, |r| match r {
        "gone@gmail.com" => AttemptResult::Rejected {
            reply: "550 5.1.1 no such user".into(),
        },
        "slow@yahoo.com" => AttemptResult::Deferred {
            reply: "451 later".into(),
            retry_at_ms: T0 + DAY,
        },
        _ => AttemptResult::Delivered { reply: "250 ok".into() },
    })
    .await;
    // Two opens and two clicks of one recipient count once each; unsubscribe and complaint count.
    store
        .events()
        .record_events(&[
            engagement(&a, &m, "ok@gmail.com", EventKind::Open, T0 + 10),
            engagement(&a, &m, "ok@gmail.com", EventKind::Open, T0 + 11),
            engagement(&a, &m, "ok@gmail.com", EventKind::Click, T0 + 12),
        ])
        .await
        .expect("events");
    store
        .events()
        .record_events(&[
            engagement(&a, &m, "ok@gmail.com", EventKind::Click, T0 + 13),
            engagement(&a, &m, "ok@gmail.com", EventKind::Unsubscribe, T0 + 14),
            engagement(&a, &m, "ok@gmail.com", EventKind::SpamReport, T0 + 15),
        ])
        .await
        .expect("more events");
    // The deferred one is delivered the next day: it counts on that day.
    deliver(store, T0 + DAY, |_| AttemptResult::Delivered { reply: "250 ok".into() }).await;

    let day1 = stats(store, &a, T0, T0, None, None).await;
    assert_eq!(
        day1,
        StatCounters {
            requested: 4,
            accepted: 3,
            delivered: 1,
            opened: 1,
            clicked: 1,
            bounced: 1,
            unsubscribed: 1,
            dropped: 1,
            complained: 1,
        }
    );
    let both = stats(store, &a, T0, T0 + DAY, None, None).await;
    assert_eq!(both.delivered, 2);
    assert_eq!(both.requested, 4);
    // The event log says the same, kind by kind.
    let events = store
        .events()
        .account_events(a.id, T0 - DAY, T0 + 2 * DAY, 1000)
        .await
        .expect("events");
    let count = |k: EventKind| events.iter().filter(|e| e.event.kind == k).count() as i64;
    assert_eq!(both.delivered, count(EventKind::Delivered));
    assert_eq!(both.bounced, count(EventKind::Bounce));
    assert_eq!(both.dropped, count(EventKind::Dropped));
    assert_eq!(both.unsubscribed, count(EventKind::Unsubscribe));
    assert_eq!(both.complained, count(EventKind::SpamReport));
    assert_eq!(count(EventKind::Open), 2, "both opens are in the log");
    // Filters.
    let gmail = stats(store, &a, T0, T0 + DAY, None, Some("gmail.com")).await;
    assert_eq!((gmail.requested, gmail.delivered, gmail.bounced), (2, 1, 1));
    let yahoo = stats(store, &a, T0, T0 + DAY, Some("shop.example"), Some("yahoo.com")).await;
    assert_eq!(
        (yahoo.requested, yahoo.accepted, yahoo.delivered, yahoo.dropped),
        (2, 1, 1, 1)
    );
    assert_eq!(
        stats(store, &a, T0, T0 + DAY, Some("other.example"), None).await,
        StatCounters::default()
    );
    let day2 = stats(store, &a, T0 + DAY, T0 + DAY, None, None).await;
    assert_eq!((day2.requested, day2.delivered), (0, 1));
}

async fn bodies(store: &Store, m: &NewMessage) -> Vec<String> {
    let all = ["a@y.example".to_string(), "b@y.example".to_string()];
    let mut got: Vec<String> = store
        .queue()
        .recipient_bodies(&m.id, &all)
        .await
        .expect("bodies")
        .into_iter()
        .map(|(r, _)| r)
        .collect();
    got.sort();
    got
}

async fn purge_case(store: &Store, retain: bool) {
    let a = common::account(store, "a", T0).await;
    let m = message(&a, "n@shop.example", T0, vec![to("a@y.example"), to("b@y.example")]);
    store
        .queue()
        .put_recipient_bodies(
            &m.id,
            &[
                ("a@y.example".to_string(), b"for a".to_vec()),
                ("b@y.example".to_string(), b"for b".to_vec()),
            ],
        )
        .await
        .expect("put bodies");
    store.queue().enqueue(m.clone()).await.expect("enqueue");
    // The worker's one read: the MIME and the personal bodies of the asked recipients that have one.
    let asked = ["a@y.example".to_string(), "c@y.example".to_string()];
    let content = store
        .queue()
        .delivery_content(&m.id, &asked)
        .await
        .expect("content")
        .expect("stored");
    assert_eq!(content.body, m.body);
    assert_eq!(content.personal, vec![("a@y.example".to_string(), b"for a".to_vec())]);
    let plain = store
        .queue()
        .delivery_content(&m.id, &[])
        .await
        .expect("content")
        .expect("stored");
    assert!(plain.personal.is_empty());
    deliver(store, T0, |r| match r {
        "a@y.example" => AttemptResult::Delivered { reply: "250 ok".into() },
        _ => AttemptResult::Deferred {
            reply: "451 later".into(),
            retry_at_ms: T0 + 60_000,
        },
    })
    .await;
    if retain {
        assert_eq!(bodies(store, &m).await, ["a@y.example", "b@y.example"]);
    } else {
        assert_eq!(
            bodies(store, &m).await,
            ["b@y.example"],
            "a is final, b will be retried"
        );
    }
    deliver(store, T0 + 60_000, |_| AttemptResult::Rejected {
        reply: "550 no".into(),
    })
    .await;
    if retain {
        assert_eq!(bodies(store, &m).await.len(), 2);
    } else {
        assert!(bodies(store, &m).await.is_empty());
    }
    let gone = store.queue().delivery_content(&m.id, &asked).await.expect("content");
    assert_eq!(
        gone.is_some(),
        retain,
        "the MIME is purged with the last final delivery"
    );
}

/// The worker's read for a whole claim: each message's MIME with the personal bodies of exactly the asked
/// (message, recipient) pairs, though one statement's IN lists cross every message with every recipient.
async fn contents_of_several_messages_in_one_read(ctx: Ctx) {
    let store = &ctx.store;
    let a = common::account(store, "a", T0).await;
    let mut m1 = message(&a, "n@shop.example", T0, vec![to("a@y.example"), to("b@y.example")]);
    m1.body = b"one".to_vec();
    let mut m2 = message(&a, "n@shop.example", T0, vec![to("a@y.example"), to("c@y.example")]);
    m2.body = b"two".to_vec();
    let m3 = message(&a, "n@shop.example", T0, vec![to("d@y.example")]);
    store
        .queue()
        .put_recipient_bodies(&m1.id, &[("b@y.example".to_string(), b"1 for b".to_vec())])
        .await
        .expect("put bodies");
    store
        .queue()
        .put_recipient_bodies(
            &m2.id,
            &[
                ("a@y.example".to_string(), b"2 for a".to_vec()),
                ("c@y.example".to_string(), b"2 for c".to_vec()),
            ],
        )
        .await
        .expect("put bodies");
    for m in [&m1, &m2] {
        store.queue().enqueue(m.clone()).await.expect("enqueue");
    }
    // m3 was never stored: it has no content.
    let wanted = vec![
        (
            m1.id.clone(),
            vec!["a@y.example".to_string(), "b@y.example".to_string()],
        ),
        (m2.id.clone(), vec!["c@y.example".to_string()]),
        (m3.id.clone(), vec!["d@y.example".to_string()]),
    ];
    let mut got = store.queue().delivery_contents(&wanted).await.expect("contents");
    assert_eq!(got.len(), 2, "no entry for a message without content");
    let c1 = got.remove(&m1.id).expect("m1");
    assert_eq!(c1.body, b"one");
    assert_eq!(c1.personal, vec![("b@y.example".to_string(), b"1 for b".to_vec())]);
    let c2 = got.remove(&m2.id).expect("m2");
    assert_eq!(c2.body, b"two");
    // a@y.example has a body in m2 and was asked for in m1 only.
    assert_eq!(c2.personal, vec![("c@y.example".to_string(), b"2 for c".to_vec())]);
    // Past one statement's chunk of messages.
    let mut many = Vec::new();
    for i in 0..130 {
        let mut m = message(&a, "n@shop.example", T0, vec![to("e@y.example")]);
        m.body = format!("body {i}").into_bytes();
        store.queue().enqueue(m.clone()).await.expect("enqueue");
        many.push(m);
    }
    let wanted: Vec<_> = many
        .iter()
        .map(|m| (m.id.clone(), vec!["e@y.example".to_string()]))
        .collect();
    let got = store.queue().delivery_contents(&wanted).await.expect("contents");
    assert_eq!(got.len(), 130);
    assert!(many.iter().all(|m| {
        got.get(&m.id)
            .is_some_and(|c| c.body == m.body && c.personal.is_empty())
    }));
}

async fn recipient_bodies_are_purged_at_the_final_state(ctx: Ctx) {
    purge_case(&ctx.store, false).await;
}

async fn recipient_bodies_are_kept_with_retain_bodies(ctx: Ctx) {
    let store = ctx
        .open(StoreOptions {
            retain_bodies: true,
            ..StoreOptions::default()
        })
        .await;
    purge_case(&store, true).await;
    store.close().await;
}

async fn template_id_reaches_callback_events(ctx: Ctx) {
    let store = &ctx.store;
    let callbacks = store.callbacks();
    let a = common::account(store, "a", T0).await;
    callbacks
        .set_callback_target(a.id, "", Some("https://hooks.example/cb"))
        .await
        .expect("target");
    let mut m = message(
        &a,
        "n@shop.example",
        T0,
        vec![rcpt("a@y.example", SendStatus::Blacklisted)],
    );
    m.template_id = 42;
    store.queue().enqueue(m.clone()).await.expect("enqueue");
    let due = callbacks.due_callbacks(T0 + 1, 10).await.expect("due");
    let ev = due
        .iter()
        .find(|e| e.event.event.message_id == m.id)
        .expect("dropped event");
    assert_eq!(ev.template_id, 42);
}

/// Events of an account without a callback URL are recorded as having no target, never due: every way an event
/// is written (admission, outcome, engagement, DSN). The dispatcher used to claim and finish each one.
async fn only_accounts_with_callbacks_have_due_events(ctx: Ctx) {
    let store = &ctx.store;
    let callbacks = store.callbacks();
    let hooked = common::account(store, "hooked", T0).await;
    let silent = common::account(store, "silent", T0).await;
    callbacks
        .set_callback_target(hooked.id, "n@shop.example", Some("https://hooks.example/cb"))
        .await
        .expect("target");
    let mut sent = Vec::new();
    for a in [&hooked, &silent] {
        let m = message(
            a,
            "n@shop.example",
            T0,
            vec![to("ok@y.example"), rcpt("blocked@y.example", SendStatus::Blacklisted)],
        );
        store.queue().enqueue(m.clone()).await.expect("enqueue");
        sent.push(m);
    }
    deliver(store, T0 + 10, |_| AttemptResult::Delivered { reply: "250 ok".into() }).await;
    let opens: Vec<NewEvent> = [&hooked, &silent]
        .iter()
        .zip(&sent)
        .map(|(a, m)| engagement(a, m, "ok@y.example", EventKind::Open, T0 + 20))
        .collect();
    store.events().record_events(&opens).await.expect("opens");
    for m in &sent {
        store
            .inbound()
            .record_async_bounce(&AsyncBounce {
                message_id: m.id.clone(),
                recipient: "ok@y.example".into(),
                at_ms: T0 + 30,
                reason: "550 5.1.1 gone".into(),
                bounce_type: BounceType::Hard,
            })
            .await
            .expect("bounce");
    }
    let due = callbacks.due_callbacks(T0 + 100, 100).await.expect("due");
    let mut kinds: Vec<EventKind> = due.iter().map(|e| e.event.event.kind).collect();
    kinds.sort_by_key(|k| k.id());
    let mut want = vec![
        EventKind::Dropped,
        EventKind::Delivered,
        EventKind::Open,
        EventKind::Bounce,
    ];
    want.sort_by_key(|k| k.id());
    assert_eq!(kinds, want, "every event of the account with a callback URL, once");
    assert!(due.iter().all(|e| e.event.event.account_id == hooked.id));
    // One claim per round: a second dispatcher that read the same events gets none of them.
    let seen: Vec<(i64, i64)> = due.iter().map(|e| (e.event.id, e.next_ms)).collect();
    let first = callbacks.claim_callbacks(&seen, T0 + 60_000).await.expect("claim");
    assert_eq!(first.len(), 4);
    assert!(
        callbacks
            .claim_callbacks(&seen, T0 + 60_000)
            .await
            .expect("claim")
            .is_empty()
    );
    assert!(
        callbacks.due_callbacks(T0 + 100, 100).await.expect("due").is_empty(),
        "leased"
    );
    let results: Vec<CallbackResult> = first
        .iter()
        .map(|&event_id| CallbackResult {
            event_id,
            state: CallbackState::Delivered,
            attempts: 1,
            next_ms: T0 + 200,
            error: None,
        })
        .collect();
    callbacks.finish_callbacks(&results).await.expect("finish");
    assert!(
        callbacks
            .due_callbacks(T0 + 120_000, 100)
            .await
            .expect("due")
            .is_empty(),
        "delivered"
    );
    // The silent account's events are all recorded, just not due.
    let silent_events = store
        .events()
        .message_events(silent.id, &sent[1].id)
        .await
        .expect("events");
    assert_eq!(silent_events.len(), 4);
}

async fn complaints_page_newest_first(ctx: Ctx) {
    let store = &ctx.store;
    let a = common::account(store, "a", T0).await;
    let b = common::account(store, "b", T0).await;
    let m = message(&a, "n@shop.example", T0, vec![to("x@y.example")]);
    store.queue().enqueue(m.clone()).await.expect("enqueue");
    let mut evs = Vec::new();
    for i in 0..5 {
        evs.push(engagement(
            &a,
            &m,
            &format!("u{i}@y.example"),
            EventKind::SpamReport,
            T0 + i,
        ));
    }
    evs.push(engagement(&a, &m, "u9@y.example", EventKind::Open, T0 + 9));
    evs.push(engagement(&b, &m, "u8@y.example", EventKind::SpamReport, T0 + 8));
    store.events().record_events(&evs).await.expect("events");
    let (page, total) = store.stats().complaints(a.id, T0, T0 + DAY, 1, 2).await.expect("page");
    assert_eq!(total, 5);
    let who: Vec<&str> = page.iter().map(|c| c.recipient.as_str()).collect();
    assert_eq!(who, ["u3@y.example", "u2@y.example"]);
    assert_eq!(page[0].from_address, "n@shop.example");
    assert_eq!(page[0].message_id, m.id);
    let (none, total) = store
        .stats()
        .complaints(a.id, T0 + DAY, T0 + 2 * DAY, 0, 10)
        .await
        .expect("none");
    assert!(none.is_empty());
    assert_eq!(total, 0);
    let stats = stats(store, &a, T0, T0, None, None).await;
    assert_eq!(stats.complained, 5);
}

async fn unsubscribe_configs_crud(ctx: Ctx) {
    let store = &ctx.store;
    let configs = store.unsubscribe_configs();
    let a = common::account(store, "a", T0).await;
    let b = common::account(store, "b", T0).await;
    let row = |addr: &str, code: &str| UnsubscribeConfigRow {
        address: addr.into(),
        unsubscribe_config: code.into(),
        status: 1,
        created_ms: T0,
    };
    configs
        .create_unsubscribe_config(a.id, &row("n@shop.example", "2"))
        .await
        .expect("create");
    configs
        .create_unsubscribe_config(a.id, &row("m@shop.example", "1"))
        .await
        .expect("create 2");
    assert!(matches!(
        configs
            .create_unsubscribe_config(a.id, &row("n@shop.example", "3"))
            .await,
        Err(StoreError::Conflict(_))
    ));
    let (page, total) = configs.list_unsubscribe_configs(a.id, 0, 10).await.expect("list");
    assert_eq!(total, 2);
    assert_eq!(page[0].address, "m@shop.example");
    configs
        .update_unsubscribe_config(a.id, "n@shop.example", "5", 0)
        .await
        .expect("update");
    let got = configs
        .unsubscribe_config(a.id, "n@shop.example")
        .await
        .expect("get")
        .expect("some");
    assert_eq!((got.unsubscribe_config.as_str(), got.status), ("5", 0));
    assert!(
        configs
            .unsubscribe_config(b.id, "n@shop.example")
            .await
            .expect("b")
            .is_none()
    );
    assert!(matches!(
        configs.update_unsubscribe_config(b.id, "n@shop.example", "1", 1).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        configs.delete_unsubscribe_config(b.id, "n@shop.example").await,
        Err(StoreError::NotFound)
    ));
    configs
        .delete_unsubscribe_config(a.id, "n@shop.example")
        .await
        .expect("delete");
    assert_eq!(configs.list_unsubscribe_configs(a.id, 0, 10).await.expect("list").1, 1);
}

async fn warnings_are_raised_once_and_cleared(ctx: Ctx) {
    let store = &ctx.store;
    let a = common::account(store, "a", T0).await;
    let w = |at: i64| NewWarning {
        account_id: a.id,
        kind: "bounce_rate".into(),
        at_ms: at,
        rate: 12.5,
        threshold: 5.0,
        delivered: 7,
        bounced: 1,
    };
    assert!(store.reputation_warnings().raise_warning(&w(T0)).await.expect("raise"));
    // A second monitor (another process) sees it in force and raises nothing.
    let other = ctx.open(StoreOptions::default()).await;
    assert!(
        !other
            .reputation_warnings()
            .raise_warning(&w(T0 + 1))
            .await
            .expect("again")
    );
    assert!(
        store
            .reputation_warnings()
            .clear_warning(a.id, "bounce_rate", T0 + 2)
            .await
            .expect("clear")
    );
    assert!(
        !store
            .reputation_warnings()
            .clear_warning(a.id, "bounce_rate", T0 + 3)
            .await
            .expect("clear again")
    );
    assert!(
        other
            .reputation_warnings()
            .raise_warning(&w(T0 + 4))
            .await
            .expect("raise anew")
    );
    let list = store.reputation_warnings().warnings(a.id, 10).await.expect("list");
    assert_eq!(list.len(), 2);
    assert_eq!(list[0].raised_ms, T0 + 4);
    assert_eq!(list[0].cleared_ms, None);
    assert_eq!(list[1].cleared_ms, Some(T0 + 2));
    assert_eq!((list[1].delivered, list[1].bounced), (7, 1));
    other.close().await;
}
