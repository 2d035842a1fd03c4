//! Conformance cases for feedback from the inbound MX (asynchronous bounces, delays, complaints) and the soft
//! bounce outcome, on SQLite and (with `MAILPUSH_TEST_POSTGRES_URL`) PostgreSQL.

use mailpush_model::{DeliverStatus, EventKind, MessageId};
use mailpush_store::{
    Account, AsyncBounce, AttemptResult, BounceType, CustomStatusFilter, FeedbackRecorded, NewComplaint, NewMessage,
    StatusQuery, Store,
};

const T0: i64 = 1_700_000_000_000;

#[macro_use]
mod common;
use common::{Ctx, delivered};

conformance!(
    inbound_message_lists_the_recipients,
    a_late_hard_bounce_blacklists_and_rejects_a_delivered_mail,
    a_soft_async_bounce_changes_nothing_but_the_event,
    delays_record_deferred_events,
    complaints_suppress_the_recipient_for_the_account,
    soft_bounced_outcomes_do_not_blacklist,
);

fn message(account: &Account, recipients: &[&str]) -> NewMessage {
    NewMessage {
        envelope_from: "mpb-x@shop.example".into(),
        ..common::message(
            account.id,
            "news@shop.example",
            T0,
            T0 + 1_000_000,
            common::to_all(recipients),
        )
    }
}

/// Enqueues `m` and records `result(recipient)` for each of its deliveries.
async fn deliver(store: &Store, m: &NewMessage, result: impl Fn(&str) -> AttemptResult) {
    store.queue().enqueue(m.clone()).await.expect("enqueue");
    common::deliver_due(store, 10, T0, T0 + 5, None, result).await;
}

async fn status_of(store: &Store, a: &Account, m: &NewMessage, rcpt: &str) -> (DeliverStatus, String) {
    let rows = store
        .queue()
        .status(StatusQuery {
            account_id: a.id,
            from_ms: T0 - 1,
            to_ms: T0 + 1,
            message_id: Some(m.id.clone()),
            to_address: Some(rcpt.to_string()),
            offset: 0,
            limit: 10,
        })
        .await
        .expect("status");
    (rows[0].deliver_status, rows[0].deliver_message.clone())
}

async fn kinds(store: &Store, a: &Account, m: &NewMessage) -> Vec<(String, EventKind, Option<BounceType>)> {
    store
        .events()
        .message_events(a.id, &m.id)
        .await
        .expect("events")
        .into_iter()
        .map(|e| (e.event.recipient, e.event.kind, e.event.bounce_type))
        .collect()
}

async fn inbound_message_lists_the_recipients(ctx: Ctx) {
    let store = &ctx.store;
    let inbound = store.inbound();
    let a = common::account(store, "a", T0).await;
    let m = message(&a, &["one@y.example", "Two@y.example"]);
    store.queue().enqueue(m.clone()).await.expect("enqueue");
    let got = inbound.inbound_message(&m.id).await.expect("lookup").expect("found");
    assert_eq!(got.account_id, a.id);
    assert_eq!(got.from_address, "news@shop.example");
    assert_eq!(
        got.recipients,
        vec!["one@y.example".to_string(), "Two@y.example".to_string()]
    );
    assert_eq!(
        inbound.inbound_message(&MessageId::generate()).await.expect("lookup"),
        None
    );
}

async fn a_late_hard_bounce_blacklists_and_rejects_a_delivered_mail(ctx: Ctx) {
    let store = &ctx.store;
    let inbound = store.inbound();
    let a = common::account(store, "a", T0).await;
    let m = message(&a, &["Gone@y.example", "ok@y.example"]);
    deliver(store, &m, delivered).await;
    let bounce = AsyncBounce {
        message_id: m.id.clone(),
        recipient: "gone@Y.example".into(),
        at_ms: T0 + 100,
        reason: "550 5.1.1 user unknown".into(),
        bounce_type: BounceType::Hard,
    };
    assert_eq!(
        inbound.record_async_bounce(&bounce).await.expect("bounce"),
        FeedbackRecorded::Recorded
    );
    // Providers retransmit: the second copy records nothing.
    assert_eq!(
        inbound.record_async_bounce(&bounce).await.expect("again"),
        FeedbackRecorded::Duplicate
    );
    let unknown = AsyncBounce {
        recipient: "stranger@y.example".into(),
        ..bounce.clone()
    };
    assert_eq!(
        inbound.record_async_bounce(&unknown).await.expect("unknown"),
        FeedbackRecorded::Unknown
    );

    assert_eq!(
        status_of(store, &a, &m, "Gone@y.example").await,
        (DeliverStatus::Rejected, "550 5.1.1 user unknown".to_string())
    );
    assert_eq!(
        status_of(store, &a, &m, "ok@y.example").await.0,
        DeliverStatus::Delivered
    );
    let bounces: Vec<_> = kinds(store, &a, &m)
        .await
        .into_iter()
        .filter(|k| k.1 == EventKind::Bounce)
        .collect();
    assert_eq!(
        bounces,
        vec![("Gone@y.example".to_string(), EventKind::Bounce, Some(BounceType::Hard))]
    );
    // Blacklisted for every account.
    let b = common::account(store, "b", T0).await;
    let hit = common::blacklisted(store, b.id, &["gone@y.example".to_string()], T0, T0 + 200).await;
    assert_eq!(hit, vec!["gone@y.example".to_string()]);
}

async fn a_soft_async_bounce_changes_nothing_but_the_event(ctx: Ctx) {
    let store = &ctx.store;
    let a = common::account(store, "a", T0).await;
    let m = message(&a, &["full@y.example"]);
    deliver(store, &m, delivered).await;
    let bounce = AsyncBounce {
        message_id: m.id.clone(),
        recipient: "full@y.example".into(),
        at_ms: T0 + 100,
        reason: "552 5.2.2 mailbox full".into(),
        bounce_type: BounceType::Soft,
    };
    assert_eq!(
        store.inbound().record_async_bounce(&bounce).await.expect("bounce"),
        FeedbackRecorded::Recorded
    );
    assert_eq!(
        status_of(store, &a, &m, "full@y.example").await.0,
        DeliverStatus::Delivered
    );
    let hit = common::blacklisted(store, a.id, &["full@y.example".to_string()], T0, T0 + 200).await;
    assert!(hit.is_empty());
    assert!(kinds(store, &a, &m).await.contains(&(
        "full@y.example".to_string(),
        EventKind::Bounce,
        Some(BounceType::Soft)
    )));
}

async fn delays_record_deferred_events(ctx: Ctx) {
    let store = &ctx.store;
    let a = common::account(store, "a", T0).await;
    let m = message(&a, &["slow@y.example"]);
    deliver(store, &m, delivered).await;
    let rec = store
        .inbound()
        .record_async_delay(&m.id, "SLOW@y.example", T0 + 100, "4.4.1 no answer from host")
        .await
        .expect("delay");
    assert_eq!(rec, FeedbackRecorded::Recorded);
    assert_eq!(
        status_of(store, &a, &m, "slow@y.example").await.0,
        DeliverStatus::Delivered
    );
    assert_eq!(
        kinds(store, &a, &m).await.last(),
        Some(&("slow@y.example".to_string(), EventKind::Deferred, None))
    );
}

async fn complaints_suppress_the_recipient_for_the_account(ctx: Ctx) {
    let store = &ctx.store;
    let inbound = store.inbound();
    let a = common::account(store, "a", T0).await;
    let m = message(&a, &["Angry@y.example"]);
    deliver(store, &m, delivered).await;
    let c = NewComplaint {
        message_id: m.id.clone(),
        recipient: "angry@y.example".into(),
        at_ms: T0 + 100,
        reason: "abuse report from Yahoo! Mail".into(),
    };
    assert_eq!(
        inbound.record_complaint(&c).await.expect("complaint"),
        FeedbackRecorded::Recorded
    );
    assert_eq!(
        inbound.record_complaint(&c).await.expect("again"),
        FeedbackRecorded::Duplicate
    );
    let kinds = kinds(store, &a, &m).await;
    assert_eq!(
        kinds.iter().filter(|k| k.1 == EventKind::SpamReport).count(),
        1,
        "{kinds:?}"
    );
    let flags = store
        .events()
        .engagement_kinds(a.id, std::slice::from_ref(&m.id))
        .await
        .expect("flags");
    assert!(
        flags
            .iter()
            .any(|(_, r, k)| r == "Angry@y.example" && *k == EventKind::SpamReport.id())
    );
    // Suppressed for this account (custom blacklist, no expiry), not for others.
    let (rows, total) = store
        .suppression()
        .list_custom_blacklist(a.id, CustomStatusFilter::Active, None, T0 + 200, 0, 10)
        .await
        .expect("list");
    assert_eq!(total, 1);
    assert_eq!(rows[0].address, "angry@y.example");
    assert_eq!(rows[0].expire_ms, None);
    let b = common::account(store, "b", T0).await;
    let hit = common::blacklisted(store, b.id, &["angry@y.example".to_string()], T0, T0 + 200).await;
    assert!(hit.is_empty());
}

async fn soft_bounced_outcomes_do_not_blacklist(ctx: Ctx) {
    let store = &ctx.store;
    let a = common::account(store, "a", T0).await;
    let m = message(&a, &["full@y.example"]);
    deliver(store, &m, |_| AttemptResult::SoftBounced {
        reply: "552 5.2.2 mailbox full".into(),
    })
    .await;
    assert_eq!(
        status_of(store, &a, &m, "full@y.example").await.0,
        DeliverStatus::Rejected
    );
    assert_eq!(
        kinds(store, &a, &m).await,
        vec![("full@y.example".to_string(), EventKind::Bounce, Some(BounceType::Soft))]
    );
    let hit = common::blacklisted(store, a.id, &["full@y.example".to_string()], T0, T0 + 200).await;
    assert!(hit.is_empty());
}
