//! The store conformance suite: every case is written once as an async fn taking a [`Ctx`], and runs against
//! SQLite (a fresh file per test) and, when `MAILPUSH_TEST_POSTGRES_URL` is set, against PostgreSQL in a
//! schema of its own (created for the test, dropped after it), so tests run in parallel and leave nothing.

use std::collections::HashSet;

use mailpush_model::{DeliverStatus, Lane, MessageId, RecipientKind, SendStatus};
use mailpush_store::{
    Account, AccountId, AdmissionLimits, AttemptResult, ClaimRequest, ClaimedDelivery, DeliveryAttempt,
    DeliveryOutcome, DeliveryStatusRow, LeaseToken, LimitRefusal, NewAccount, NewMessage, QueueCounts, StatusQuery,
    Store, StoreError, StoreOptions,
};

/// A fixed "now" (2023-11-14): the queue only ever sees the times the tests pass in.
const T0: i64 = 1_700_000_000_000;
const HOUR: i64 = 3_600_000;

#[macro_use]
mod common;
use common::{Ctx, claim};

conformance!(
    accounts,
    enqueue_claim_deliver,
    hand_off_leases_fresh_mail_in_its_commit,
    other_processes_are_woken_by_queued_mail,
    claim_order,
    not_claimable_before_due,
    deferred_retried_delivered,
    expired_lease_taken_over,
    renewed_lease_holds,
    concurrent_claimers,
    admission_dropped_never_claimed,
    body_purged_after_last_final,
    final_outcomes_and_fencing_per_item,
    status_filters,
    group_commit,
    bad_message_does_not_fail_its_batch,
    invalid_messages,
    closed_store,
    rate_counts_each_second_of_request_time,
    batches_over_their_limits_store_exactly_what_the_limits_admit,
);

// ---------------------------------------------------------------------------------------------------------
// Fixtures

fn new_account(name: &str, secret_id: &str) -> NewAccount {
    NewAccount {
        name: name.into(),
        app_id: 1_300_000_000,
        secret_id: secret_id.into(),
        secret_key_sealed: format!("sealed:{secret_id}").into_bytes(),
        created_ms: T0,
    }
}

async fn account(store: &Store, name: &str) -> Account {
    store
        .accounts()
        .create_account(new_account(name, &format!("AKID{name}")))
        .await
        .expect("create account")
}

fn message(account: AccountId, lane: Lane, request_ms: i64, not_before_ms: i64, to: &[&str]) -> NewMessage {
    let m = common::message(
        account,
        "news@sender.example",
        request_ms,
        request_ms + 72 * HOUR,
        common::to_all(to),
    );
    NewMessage {
        envelope_from: format!("bounce+{}@mail.sender.example", m.id),
        subject: "Hello".into(),
        lane,
        not_before_ms,
        body: b"From: news@sender.example\r\nSubject: Hello\r\n\r\nHi!\r\n".to_vec(),
        ..m
    }
}

/// Admission limits with this rate and per-recipient hourly limit (0 = none), and a daily quota out of reach.
fn limits(sends_per_second: i64, per_recipient_per_hour: i64) -> AdmissionLimits {
    AdmissionLimits {
        sends_per_second,
        per_recipient_per_hour,
        daily_cap: 1_000_000,
        level_quota: 1_000_000,
    }
}

fn outcome(c: &ClaimedDelivery, at_ms: i64, result: AttemptResult) -> DeliveryOutcome {
    common::outcome(c, at_ms, result, Some(format!("mx.{}", c.domain)))
}

fn delivered() -> AttemptResult {
    AttemptResult::Delivered {
        reply: "250 2.0.0 Ok: queued".into(),
    }
}

fn query(account: AccountId, from_ms: i64, to_ms: i64) -> StatusQuery {
    StatusQuery {
        account_id: account,
        from_ms,
        to_ms,
        message_id: None,
        to_address: None,
        offset: 0,
        limit: 1000,
    }
}

fn by_message(account: AccountId, id: &MessageId) -> StatusQuery {
    StatusQuery {
        message_id: Some(id.clone()),
        ..query(account, 0, i64::MAX)
    }
}

/// The statuses of the account's mail requested in `[from_ms, to_ms)`.
async fn statuses(store: &Store, account: AccountId, from_ms: i64, to_ms: i64) -> Vec<DeliveryStatusRow> {
    store
        .queue()
        .status(query(account, from_ms, to_ms))
        .await
        .expect("status")
}

/// The statuses of the recipients of the account's message `id`.
async fn message_statuses(store: &Store, account: AccountId, id: &MessageId) -> Vec<DeliveryStatusRow> {
    store.queue().status(by_message(account, id)).await.expect("status")
}

/// The attempts at `recipient` of the account's message `id`, oldest first.
async fn attempts(store: &Store, account: AccountId, id: &MessageId, recipient: &str) -> Vec<DeliveryAttempt> {
    store.queue().attempts(account, id, recipient).await.expect("attempts")
}

/// Records `outcomes`; per outcome, whether it was applied.
async fn record(store: &Store, outcomes: Vec<DeliveryOutcome>) -> Vec<bool> {
    store.queue().record_outcomes(outcomes).await.expect("record outcomes")
}

/// Deliveries by queue state; the waiting counts alone (what `/metrics` reads) agree with them.
async fn queue_counts(store: &Store) -> QueueCounts {
    let counts = store.queue().queue_counts().await.expect("counts");
    let waiting = store.queue().waiting_counts().await.expect("waiting counts");
    assert_eq!(waiting, counts.waiting());
    counts
}

// ---------------------------------------------------------------------------------------------------------
// Cases

async fn accounts(ctx: Ctx) {
    let store = &ctx.store;
    let a = store
        .accounts()
        .create_account(new_account("alpha", "AKIDalpha"))
        .await
        .expect("alpha");
    let b = store
        .accounts()
        .create_account(new_account("beta", "AKIDbeta"))
        .await
        .expect("beta");
    assert_ne!(a.id, b.id);
    assert!(!a.suspended);
    assert_eq!(a.secret_key_sealed, b"sealed:AKIDalpha");

    assert_eq!(
        store
            .accounts()
            .account_by_secret_id("AKIDalpha")
            .await
            .expect("by secret"),
        Some(a.clone())
    );
    assert_eq!(
        store.accounts().account_by_name("beta").await.expect("by name"),
        Some(b.clone())
    );
    assert_eq!(store.accounts().account(a.id).await.expect("by id"), Some(a.clone()));
    assert_eq!(
        store.accounts().account_by_name("nobody").await.expect("missing name"),
        None
    );
    assert_eq!(
        store
            .accounts()
            .account_by_secret_id("AKIDnobody")
            .await
            .expect("missing secret"),
        None
    );
    assert_eq!(
        store.accounts().account(a.id + b.id + 1000).await.expect("missing id"),
        None
    );
    assert_eq!(
        store.accounts().list_accounts().await.expect("list"),
        vec![a.clone(), b.clone()]
    );

    let taken_name = store.accounts().create_account(new_account("alpha", "AKIDother")).await;
    assert!(matches!(taken_name, Err(StoreError::Conflict(_))), "{taken_name:?}");
    let taken_secret = store.accounts().create_account(new_account("gamma", "AKIDalpha")).await;
    assert!(matches!(taken_secret, Err(StoreError::Conflict(_))), "{taken_secret:?}");
    assert_eq!(store.accounts().list_accounts().await.expect("list").len(), 2);

    store
        .accounts()
        .set_account_suspended(a.id, true)
        .await
        .expect("suspend");
    assert!(
        store
            .accounts()
            .account(a.id)
            .await
            .expect("by id")
            .expect("exists")
            .suspended
    );
    assert!(
        !store
            .accounts()
            .account(b.id)
            .await
            .expect("by id")
            .expect("exists")
            .suspended
    );
    assert!(matches!(
        store.accounts().set_account_suspended(a.id + b.id + 1000, true).await,
        Err(StoreError::NotFound)
    ));
}

async fn enqueue_claim_deliver(ctx: Ctx) {
    let store = &ctx.store;
    let acc = account(store, "a").await;
    let m = message(acc.id, Lane::Batch, T0, T0, &["x@one.example", "y@two.example"]);
    store.queue().enqueue(m.clone()).await.expect("enqueue");

    let counts = queue_counts(store).await;
    assert_eq!(
        (counts.pending, counts.deferred, counts.leased, counts.done),
        (2, 0, 0, 0)
    );
    assert_eq!(store.queue().next_due_ms().await.expect("next due"), Some(T0));
    assert_eq!(
        store.queue().message_body(&m.id).await.expect("body"),
        Some(m.body.clone())
    );

    let claimed = claim(store, "w1", 10, 30_000, T0).await;
    assert_eq!(claimed.len(), 2);
    let mut recipients: Vec<_> = claimed.iter().map(|c| c.recipient.as_str()).collect();
    recipients.sort();
    assert_eq!(recipients, ["x@one.example", "y@two.example"]);
    for c in &claimed {
        assert_eq!(c.message_id, m.id);
        assert_eq!(c.account_id, acc.id);
        assert_eq!(c.domain, c.recipient.rsplit('@').next().expect("domain"));
        assert_eq!(c.kind, RecipientKind::To);
        assert_eq!(c.envelope_from, m.envelope_from);
        assert_eq!(c.lane, Lane::Batch);
        assert_eq!(c.attempts, 0);
        assert_eq!(c.request_ms, T0);
        assert_eq!(c.expires_ms, T0 + 72 * HOUR);
    }
    let counts = queue_counts(store).await;
    assert_eq!((counts.pending, counts.leased), (0, 2));
    // While leased, the next due time is the lease expiry.
    assert_eq!(store.queue().next_due_ms().await.expect("next due"), Some(T0 + 30_000));
    assert!(
        claim(store, "w2", 10, 30_000, T0 + 1).await.is_empty(),
        "leased deliveries are not claimable"
    );

    let outcomes: Vec<_> = claimed.iter().map(|c| outcome(c, T0 + 100, delivered())).collect();
    assert_eq!(record(store, outcomes.clone()).await, vec![true, true]);

    let rows = message_statuses(store, acc.id, &m.id).await;
    assert_eq!(rows.len(), 2);
    for row in &rows {
        assert_eq!(row.message_id, m.id);
        assert_eq!(row.from_address, "news@sender.example");
        assert_eq!(row.send_status, SendStatus::Ok);
        assert_eq!(row.deliver_status, DeliverStatus::Delivered);
        assert_eq!(row.deliver_message, "250 2.0.0 Ok: queued");
        assert_eq!(row.request_ms, T0);
        assert_eq!(row.deliver_ms, Some(T0 + 100));
        assert_eq!(row.attempts, 1);
    }
    let history = attempts(store, acc.id, &m.id, "x@one.example").await;
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].at_ms, T0 + 100);
    assert_eq!(history[0].deliver_status, DeliverStatus::Delivered);
    assert_eq!(history[0].remote.as_deref(), Some("mx.one.example"));

    let counts = queue_counts(store).await;
    assert_eq!(
        (counts.pending, counts.deferred, counts.leased, counts.done),
        (0, 0, 0, 2)
    );
    assert_eq!(store.queue().next_due_ms().await.expect("next due"), None);
    assert_eq!(
        store.queue().message_body(&m.id).await.expect("body"),
        None,
        "body purged after the last final outcome"
    );
    // Reporting again is fenced off: the lease ended with the outcome.
    assert_eq!(record(store, outcomes).await, vec![false, false]);
    assert_eq!(attempts(store, acc.id, &m.id, "x@one.example").await.len(), 1);
}

/// `enqueue_fresh` with a worker taking hand-offs: the deliveries are leased in the commit and handed over
/// with the MIME; they are not claimable, their lease records outcomes like a claim's, and without room the
/// mail is queued for a claim instead.
/// Trigger mail committed by one process (an API node) wakes the workers of the others sharing the database,
/// so a split deployment does not wait for its workers' idle poll. SQLite has one process: nothing to listen to.
async fn other_processes_are_woken_by_queued_mail(ctx: Ctx) {
    let api_node = &ctx.store;
    let acc = account(api_node, "a").await;
    let worker_node = ctx.open(StoreOptions::default()).await;
    let wake = std::sync::Arc::new(tokio::sync::Notify::new());
    let listener = worker_node
        .queue()
        .wake_on_queued(wake.clone(), std::time::Duration::from_millis(20))
        .await
        .expect("listen");
    if api_node.backend() == mailpush_store::Backend::Sqlite {
        assert!(listener.is_none());
        return;
    }
    let listener = listener.expect("a listener on PostgreSQL");
    for round in 0..2 {
        let m = message(acc.id, Lane::Trigger, T0, T0, &["x@one.example"]);
        api_node.queue().enqueue(m).await.expect("enqueue");
        // Bounded so that a missing notification fails the test instead of hanging it.
        tokio::time::timeout(std::time::Duration::from_secs(30), wake.notified())
            .await
            .unwrap_or_else(|_| panic!("round {round}: the other store was not woken"));
    }
    worker_node.close().await;
    // Closing the store ends the listener.
    tokio::time::timeout(std::time::Duration::from_secs(30), listener)
        .await
        .expect("the listener ends with its store")
        .expect("the listener task");
}

async fn hand_off_leases_fresh_mail_in_its_commit(ctx: Ctx) {
    let store = &ctx.store;
    let acc = account(store, "a").await;
    let unlimited = limits(1_000, 0);
    // Without a receiver nothing is handed off.
    let m = message(acc.id, Lane::Trigger, T0, T0, &["solo@one.example"]);
    assert!(!store.queue().enqueue_fresh(m, unlimited).await.expect("enqueue"));
    assert_eq!(claim(store, "w0", 10, 30_000, T0).await.len(), 1);

    let mut hand_offs = store.queue().take_hand_offs("w1", 30_000, 3);
    let m = message(acc.id, Lane::Batch, T0, T0, &["x@one.example", "y@two.example"]);
    assert!(
        store
            .queue()
            .enqueue_fresh(m.clone(), unlimited)
            .await
            .expect("enqueue")
    );
    let h = hand_offs.try_recv().expect("a hand-off after the commit");
    assert_eq!(h.body, m.body);
    assert_eq!(h.deliveries.len(), 2);
    for (d, r) in h.deliveries.iter().zip(["x@one.example", "y@two.example"]) {
        assert_eq!(d.recipient, r);
        assert_eq!(
            (d.message_id.clone(), d.lane, d.attempts, d.lease),
            (m.id.clone(), Lane::Batch, 0, LeaseToken(1))
        );
        assert_eq!(
            (d.envelope_from.as_str(), d.expires_ms),
            (m.envelope_from.as_str(), T0 + 72 * HOUR)
        );
    }
    let counts = queue_counts(store).await;
    assert_eq!(
        (counts.pending, counts.leased),
        (0, 3),
        "the two and the solo claimed before"
    );
    assert!(
        claim(store, "w2", 10, 30_000, T0 + 1).await.is_empty(),
        "leased at insert"
    );

    // Room is 3 deliveries and 2 are waiting: a two-recipient message is queued instead. From then on fresh
    // mail is queued behind it, even a one-recipient message that would fit: a hand-off would overtake the
    // queued mail (trigger mail included) for as long as admission outpaces the worker.
    let two = message(acc.id, Lane::Batch, T0, T0, &["p@one.example", "q@one.example"]);
    assert!(!store.queue().enqueue_fresh(two, unlimited).await.expect("enqueue"));
    assert!(hand_offs.is_behind());
    let one = message(acc.id, Lane::Batch, T0, T0, &["r@one.example"]);
    assert!(!store.queue().enqueue_fresh(one, unlimited).await.expect("enqueue"));
    // Started deliveries make room again, but only a claim that caught up with the queue resumes hand-offs;
    // mail due later is never handed off.
    drop(hand_offs.room_for(2));
    let later = message(acc.id, Lane::Batch, T0, T0 + HOUR, &["later@one.example"]);
    assert!(!store.queue().enqueue_fresh(later, unlimited).await.expect("enqueue"));
    let queued = message(acc.id, Lane::Batch, T0, T0, &["s@one.example"]);
    assert!(!store.queue().enqueue_fresh(queued, unlimited).await.expect("enqueue"));
    assert_eq!(
        claim(store, "w2", 10, 30_000, T0 + 1).await.len(),
        4,
        "the queued two, one and one"
    );
    hand_offs.caught_up();
    assert!(!hand_offs.is_behind());
    let one = message(acc.id, Lane::Batch, T0, T0, &["t@one.example"]);
    assert!(store.queue().enqueue_fresh(one, unlimited).await.expect("enqueue"));

    let outcomes: Vec<_> = h.deliveries.iter().map(|c| outcome(c, T0 + 100, delivered())).collect();
    assert_eq!(record(store, outcomes).await, vec![true, true]);
    let rows = message_statuses(store, acc.id, &m.id).await;
    assert!(
        rows.iter()
            .all(|r| r.deliver_status == DeliverStatus::Delivered && r.attempts == 1)
    );
    // An expired hand-off lease is claimed like any other.
    let r = hand_offs.try_recv().expect("the one-recipient hand-off");
    let taken = claim(store, "w3", 10, 30_000, T0 + 30_001).await;
    assert!(
        taken
            .iter()
            .any(|c| c.delivery_id == r.deliveries[0].delivery_id && c.lease == LeaseToken(2))
    );
}

async fn claim_order(ctx: Ctx) {
    let store = &ctx.store;
    let acc = account(store, "a").await;
    // (lane, due offset); enqueued in this order, so ids do not follow due times.
    let (t, b) = (Lane::Trigger, Lane::Batch);
    let spec = [(b, 100), (t, 200), (b, 50), (t, 150), (b, 10), (t, 900), (b, 20)];
    let mut ids = Vec::new();
    for (lane, due) in spec {
        let m = message(acc.id, lane, T0, T0 + due, &["r@x.example"]);
        ids.push(m.id.clone());
        store.queue().enqueue(m).await.expect("enqueue");
    }
    let [a, b, c, d, e, f, g] = <[MessageId; 7]>::try_from(ids).expect("seven");

    // Only lane 1 has something due at +120; the earliest goes first.
    let got = claim(store, "w", 1, 60_000, T0 + 120).await;
    assert_eq!(got.iter().map(|c| &c.message_id).collect::<Vec<_>>(), [&e]);
    // Later, lane 0 goes first, by due time.
    let got = claim(store, "w", 1, 60_000, T0 + 1000).await;
    assert_eq!(got.iter().map(|c| &c.message_id).collect::<Vec<_>>(), [&d]);
    let got = claim(store, "w", 1, 60_000, T0 + 1000).await;
    assert_eq!(got.iter().map(|c| &c.message_id).collect::<Vec<_>>(), [&b]);
    // A batch spanning lanes: the last of lane 0, then the earliest of lane 1.
    let got = claim(store, "w", 2, 60_000, T0 + 1000).await;
    assert_eq!(
        got.iter().map(|c| (&c.message_id, c.lane)).collect::<Vec<_>>(),
        [(&f, Lane::Trigger), (&g, Lane::Batch)]
    );
    let got = claim(store, "w", 10, 60_000, T0 + 1000).await;
    assert_eq!(
        got.iter().map(|c| &c.message_id).collect::<Vec<_>>(),
        [&c, &a],
        "a batch comes in due order"
    );
    assert!(claim(store, "w", 10, 60_000, T0 + 1000).await.is_empty());
}

async fn not_claimable_before_due(ctx: Ctx) {
    let store = &ctx.store;
    let acc = account(store, "a").await;
    store
        .queue()
        .enqueue(message(acc.id, Lane::Trigger, T0, T0 + 1000, &["r@x.example"]))
        .await
        .expect("enqueue");
    assert!(
        claim(store, "w", 10, 60_000, T0 + 999).await.is_empty(),
        "not before not_before_ms"
    );
    assert_eq!(store.queue().next_due_ms().await.expect("next due"), Some(T0 + 1000));
    assert_eq!(claim(store, "w", 10, 60_000, T0 + 1000).await.len(), 1);
    assert_eq!(
        claim(store, "w", 0, 60_000, T0 + 1000).await.len(),
        0,
        "limit 0 claims nothing"
    );
}

async fn deferred_retried_delivered(ctx: Ctx) {
    let store = &ctx.store;
    let acc = account(store, "a").await;
    let m = message(acc.id, Lane::Batch, T0, T0, &["r@x.example"]);
    store.queue().enqueue(m.clone()).await.expect("enqueue");

    let first = claim(store, "w", 10, 60_000, T0).await;
    assert_eq!(first.len(), 1);
    let deferred = AttemptResult::Deferred {
        reply: "451 4.7.1 try again later".into(),
        retry_at_ms: T0 + 5000,
    };
    assert_eq!(
        record(store, vec![outcome(&first[0], T0 + 10, deferred)]).await,
        vec![true]
    );

    let row = &message_statuses(store, acc.id, &m.id).await[0];
    assert_eq!(row.deliver_status, DeliverStatus::Deferred);
    assert_eq!(row.deliver_message, "451 4.7.1 try again later");
    assert_eq!(row.attempts, 1);
    assert_eq!(row.deliver_ms, None);
    let counts = queue_counts(store).await;
    assert_eq!(
        (counts.pending, counts.deferred, counts.leased, counts.done),
        (0, 1, 0, 0)
    );
    assert_eq!(store.queue().next_due_ms().await.expect("next due"), Some(T0 + 5000));
    assert!(
        store.queue().message_body(&m.id).await.expect("body").is_some(),
        "a deferred message keeps its body"
    );

    assert!(
        claim(store, "w", 10, 60_000, T0 + 4999).await.is_empty(),
        "not before the retry time"
    );
    let second = claim(store, "w", 10, 60_000, T0 + 5000).await;
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].delivery_id, first[0].delivery_id);
    assert_eq!(second[0].attempts, 1, "attempts made before this claim");
    assert_ne!(second[0].lease, first[0].lease);
    assert_eq!(
        record(store, vec![outcome(&second[0], T0 + 5010, delivered())]).await,
        vec![true]
    );

    let row = &message_statuses(store, acc.id, &m.id).await[0];
    assert_eq!(row.deliver_status, DeliverStatus::Delivered);
    assert_eq!(row.attempts, 2);
    assert_eq!(row.deliver_ms, Some(T0 + 5010));
    let history = attempts(store, acc.id, &m.id, "r@x.example").await;
    let summary: Vec<_> = history
        .iter()
        .map(|h| (h.at_ms, h.deliver_status, h.reply.as_str()))
        .collect();
    assert_eq!(
        summary,
        [
            (T0 + 10, DeliverStatus::Deferred, "451 4.7.1 try again later"),
            (T0 + 5010, DeliverStatus::Delivered, "250 2.0.0 Ok: queued"),
        ]
    );
    assert_eq!(store.queue().message_body(&m.id).await.expect("body"), None);
}

/// A lease renewed while its delivery runs is not taken over when its first term ends; only the current lease
/// is renewed, and an expired one that another worker took over stays theirs.
async fn renewed_lease_holds(ctx: Ctx) {
    let store = &ctx.store;
    let acc = account(store, "a").await;
    store
        .queue()
        .enqueue(message(acc.id, Lane::Trigger, T0, T0, &["r@x.example", "q@x.example"]))
        .await
        .expect("enqueue");
    let a = claim(store, "worker-a", 10, 1000, T0).await;
    assert_eq!(a.len(), 2);
    let held: Vec<(i64, LeaseToken)> = a.iter().map(|d| (d.delivery_id, d.lease)).collect();
    assert_eq!(store.queue().renew_leases(&held, T0 + 5000).await.expect("renew"), 2);
    assert!(
        claim(store, "worker-b", 10, 1000, T0 + 1000).await.is_empty(),
        "renewed leases hold past their first term"
    );
    assert_eq!(store.queue().next_due_ms().await.expect("next due"), Some(T0 + 5000));
    // Renewing never shortens a lease.
    assert_eq!(store.queue().renew_leases(&held, T0 + 2000).await.expect("renew"), 0);

    // A stale token renews nothing: after expiry worker-b takes one over, and worker-a's renewal leaves it.
    let b = claim(store, "worker-b", 1, 1000, T0 + 5000).await;
    assert_eq!(b.len(), 1);
    assert_eq!(
        store.queue().renew_leases(&held, T0 + 60_000).await.expect("renew"),
        1,
        "only the one still held"
    );
    assert_eq!(
        record(store, vec![outcome(&b[0], T0 + 5500, delivered())]).await,
        vec![true],
        "the new holder's outcome counts"
    );
    let other = a.iter().find(|d| d.delivery_id != b[0].delivery_id).expect("the other");
    assert_eq!(
        record(store, vec![outcome(other, T0 + 50_000, delivered())]).await,
        vec![true],
        "a renewed lease's outcome counts long after its first term"
    );
}

async fn expired_lease_taken_over(ctx: Ctx) {
    let store = &ctx.store;
    let acc = account(store, "a").await;
    let m = message(acc.id, Lane::Trigger, T0, T0, &["r@x.example"]);
    store.queue().enqueue(m.clone()).await.expect("enqueue");

    let a = claim(store, "worker-a", 10, 1000, T0).await;
    assert_eq!(a.len(), 1);
    assert!(
        claim(store, "worker-b", 10, 1000, T0 + 999).await.is_empty(),
        "the lease still holds"
    );
    assert_eq!(store.queue().next_due_ms().await.expect("next due"), Some(T0 + 1000));

    // worker-a went quiet; its lease expires and worker-b takes over.
    let b = claim(store, "worker-b", 10, 1000, T0 + 1000).await;
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].delivery_id, a[0].delivery_id);
    assert_ne!(b[0].lease, a[0].lease);
    assert_eq!(b[0].attempts, 0);

    // worker-a's late report is ignored: nothing written.
    assert_eq!(
        record(store, vec![outcome(&a[0], T0 + 1500, delivered())]).await,
        vec![false]
    );
    let row = &message_statuses(store, acc.id, &m.id).await[0];
    assert_eq!((row.deliver_status, row.attempts), (DeliverStatus::Queued, 0));
    assert!(attempts(store, acc.id, &m.id, "r@x.example").await.is_empty());

    let rejected = AttemptResult::Rejected {
        reply: "550 5.1.1 no such user".into(),
    };
    assert_eq!(
        record(store, vec![outcome(&b[0], T0 + 1600, rejected)]).await,
        vec![true]
    );
    let row = &message_statuses(store, acc.id, &m.id).await[0];
    assert_eq!(row.deliver_status, DeliverStatus::Rejected);
    assert_eq!(row.deliver_message, "550 5.1.1 no such user");
    assert_eq!(row.deliver_ms, Some(T0 + 1600));
    assert_eq!(row.attempts, 1);
    assert_eq!(attempts(store, acc.id, &m.id, "r@x.example").await.len(), 1);
    // Neither lease is current any more.
    let again = vec![
        outcome(&a[0], T0 + 1700, delivered()),
        outcome(&b[0], T0 + 1700, delivered()),
    ];
    assert_eq!(record(store, again).await, vec![false, false]);
    assert!(
        claim(store, "worker-c", 10, 1000, T0 + 10 * HOUR).await.is_empty(),
        "a final delivery is never claimed"
    );
}

async fn concurrent_claimers(ctx: Ctx) {
    let store = ctx.store.clone();
    let acc = account(&store, "a").await;
    let mut messages = Vec::new();
    for i in 0..50 {
        let to: Vec<String> = (0..4).map(|j| format!("r{i}-{j}@d{j}.example")).collect();
        let to: Vec<&str> = to.iter().map(String::as_str).collect();
        let m = message(acc.id, Lane::ALL[i % 2], T0, T0, &to);
        messages.push(m.id.clone());
        store.queue().enqueue(m).await.expect("enqueue");
    }
    // Two stores on one database stand for two worker processes (on PostgreSQL: two machines).
    let other = ctx.open(StoreOptions::default()).await;
    let mut tasks = Vec::new();
    for w in 0..4 {
        let store = if w % 2 == 0 { store.clone() } else { other.clone() };
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let got = claim(&store, &format!("w{w}"), 7, 60_000, T0).await;
                if got.is_empty() {
                    break;
                }
                let outcomes: Vec<_> = got.iter().map(|c| outcome(c, T0 + 1, delivered())).collect();
                let applied = record(&store, outcomes).await;
                assert!(applied.iter().all(|a| *a), "a claimer's own leases are current");
                mine.extend(got.iter().map(|c| c.delivery_id));
                tokio::task::yield_now().await;
            }
            mine
        }));
    }
    let mut all = Vec::new();
    let mut busy_workers = 0;
    for t in tasks {
        let mine = t.await.expect("claimer task");
        busy_workers += usize::from(!mine.is_empty());
        all.extend(mine);
    }
    let unique: HashSet<_> = all.iter().copied().collect();
    assert_eq!(unique.len(), all.len(), "a delivery was claimed twice");
    assert_eq!(all.len(), 200);
    assert!(busy_workers >= 1);
    let counts = queue_counts(&store).await;
    assert_eq!((counts.pending, counts.leased, counts.done), (0, 0, 200));
    for id in &messages {
        assert_eq!(store.queue().message_body(id).await.expect("body"), None);
    }
    other.close().await;
}

async fn admission_dropped_never_claimed(ctx: Ctx) {
    let store = &ctx.store;
    let acc = account(store, "a").await;
    let mut m = message(
        acc.id,
        Lane::Batch,
        T0,
        T0,
        &["ok1@x.example", "bad@y.example", "ok2@x.example"],
    );
    m.recipients[1].send_status = SendStatus::Blacklisted;
    m.recipients[1].deliver_message = Some("the address is blacklisted".into());
    store.queue().enqueue(m.clone()).await.expect("enqueue");

    let mut all_dropped = message(acc.id, Lane::Batch, T0, T0, &["gone@z.example"]);
    all_dropped.recipients[0].send_status = SendStatus::Unsubscribed;
    store.queue().enqueue(all_dropped.clone()).await.expect("enqueue");
    assert_eq!(
        store.queue().message_body(&all_dropped.id).await.expect("body"),
        None,
        "nothing to send, nothing kept"
    );

    let counts = queue_counts(store).await;
    assert_eq!((counts.pending, counts.done), (2, 2));
    let claimed = claim(store, "w", 10, 60_000, T0 + HOUR).await;
    let mut got: Vec<_> = claimed.iter().map(|c| c.recipient.as_str()).collect();
    got.sort();
    assert_eq!(got, ["ok1@x.example", "ok2@x.example"]);

    let rows = message_statuses(store, acc.id, &m.id).await;
    let bad = rows.iter().find(|r| r.recipient == "bad@y.example").expect("bad row");
    assert_eq!(bad.send_status, SendStatus::Blacklisted);
    assert_eq!(bad.deliver_status, DeliverStatus::Dropped);
    assert_eq!(bad.deliver_message, "the address is blacklisted");
    assert_eq!(bad.attempts, 0);
    let gone = &message_statuses(store, acc.id, &all_dropped.id).await[0];
    assert_eq!(
        (gone.send_status, gone.deliver_status),
        (SendStatus::Unsubscribed, DeliverStatus::Dropped)
    );

    let outcomes: Vec<_> = claimed.iter().map(|c| outcome(c, T0 + HOUR, delivered())).collect();
    assert_eq!(record(store, outcomes).await, vec![true, true]);
    assert_eq!(store.queue().message_body(&m.id).await.expect("body"), None);
    assert!(claim(store, "w", 10, 60_000, T0 + 100 * HOUR).await.is_empty());
    assert_eq!(store.queue().next_due_ms().await.expect("next due"), None);
}

async fn body_purged_after_last_final(ctx: Ctx) {
    let store = &ctx.store;
    let acc = account(store, "a").await;
    let m = message(acc.id, Lane::Batch, T0, T0, &["r1@x.example", "r2@x.example"]);
    store.queue().enqueue(m.clone()).await.expect("enqueue");
    let claimed = claim(store, "w", 10, 60_000, T0).await;
    let r1 = claimed.iter().find(|c| c.recipient == "r1@x.example").expect("r1");
    let r2 = claimed.iter().find(|c| c.recipient == "r2@x.example").expect("r2");

    let defer = AttemptResult::Deferred {
        reply: "421 busy".into(),
        retry_at_ms: T0 + 1000,
    };
    record(
        store,
        vec![outcome(r1, T0 + 1, defer), outcome(r2, T0 + 1, delivered())],
    )
    .await;
    assert_eq!(
        store.queue().message_body(&m.id).await.expect("body"),
        Some(m.body.clone()),
        "r1 still needs it"
    );

    let again = claim(store, "w", 10, 60_000, T0 + 1000).await;
    assert_eq!(again.len(), 1);
    let dropped = AttemptResult::Dropped {
        reason: "expired".into(),
    };
    record(store, vec![outcome(&again[0], T0 + 1001, dropped)]).await;
    assert_eq!(store.queue().message_body(&m.id).await.expect("body"), None);

    // With retention configured, bodies stay.
    let keep = ctx
        .open(StoreOptions {
            retain_bodies: true,
            ..StoreOptions::default()
        })
        .await;
    let kept = message(acc.id, Lane::Trigger, T0, T0, &["k@x.example"]);
    keep.queue().enqueue(kept.clone()).await.expect("enqueue");
    let mut none_to_send = message(acc.id, Lane::Trigger, T0, T0, &["n@x.example"]);
    none_to_send.recipients[0].send_status = SendStatus::FrequencyLimit;
    keep.queue().enqueue(none_to_send.clone()).await.expect("enqueue");
    let c = claim(&keep, "w", 10, 60_000, T0).await;
    assert_eq!(c.len(), 1);
    keep.queue()
        .record_outcomes(vec![outcome(&c[0], T0 + 1, delivered())])
        .await
        .expect("outcome");
    assert_eq!(
        keep.queue().message_body(&kept.id).await.expect("body"),
        Some(kept.body.clone())
    );
    assert_eq!(
        keep.queue().message_body(&none_to_send.id).await.expect("body"),
        Some(none_to_send.body.clone())
    );
    keep.close().await;
}

async fn final_outcomes_and_fencing_per_item(ctx: Ctx) {
    let store = &ctx.store;
    let acc = account(store, "a").await;
    let m = message(
        acc.id,
        Lane::Trigger,
        T0,
        T0,
        &["d@x.example", "r@x.example", "x@x.example", "f@x.example"],
    );
    store.queue().enqueue(m.clone()).await.expect("enqueue");
    let claimed = claim(store, "w", 10, 60_000, T0).await;
    let by = |addr: &str| claimed.iter().find(|c| c.recipient == addr).expect("claimed").clone();
    let mut forged = outcome(&by("f@x.example"), T0 + 5, delivered());
    forged.lease = LeaseToken(forged.lease.0 + 1000);
    let applied = record(
        store,
        vec![
            outcome(&by("d@x.example"), T0 + 5, delivered()),
            forged,
            outcome(
                &by("r@x.example"),
                T0 + 6,
                AttemptResult::Rejected { reply: "550 no".into() },
            ),
            outcome(
                &by("x@x.example"),
                T0 + 7,
                AttemptResult::Dropped {
                    reason: "expired after 72 h".into(),
                },
            ),
        ],
    )
    .await;
    assert_eq!(applied, vec![true, false, true, true], "results follow the input order");

    let rows = message_statuses(store, acc.id, &m.id).await;
    let row = |addr: &str| rows.iter().find(|r| r.recipient == addr).expect("row").clone();
    assert_eq!(
        (row("d@x.example").deliver_status, row("d@x.example").deliver_ms),
        (DeliverStatus::Delivered, Some(T0 + 5))
    );
    assert_eq!(
        (row("r@x.example").deliver_status, row("r@x.example").deliver_ms),
        (DeliverStatus::Rejected, Some(T0 + 6))
    );
    assert_eq!(row("x@x.example").deliver_status, DeliverStatus::Dropped);
    assert_eq!(row("x@x.example").deliver_message, "expired after 72 h");
    assert_eq!(
        (row("f@x.example").deliver_status, row("f@x.example").attempts),
        (DeliverStatus::Queued, 0)
    );
    assert!(
        store.queue().message_body(&m.id).await.expect("body").is_some(),
        "f is still open"
    );
    assert_eq!(record(store, Vec::new()).await, Vec::<bool>::new());

    // The same delivery twice in one batch: a stale lease first, then the current one twice; only one applies.
    let f = by("f@x.example");
    let mut stale = outcome(&f, T0 + 8, delivered());
    stale.lease = LeaseToken(f.lease.0 - 1);
    let current = outcome(
        &f,
        T0 + 8,
        AttemptResult::Deferred {
            reply: "452 full".into(),
            retry_at_ms: T0 + 60,
        },
    );
    let applied = record(store, vec![stale, current.clone(), current]).await;
    assert_eq!(applied, vec![false, true, false]);
    assert_eq!(attempts(store, acc.id, &m.id, "f@x.example").await.len(), 1);
    let again = claim(store, "w", 10, 60_000, T0 + 60).await;
    assert_eq!(again.len(), 1);
    record(store, vec![outcome(&again[0], T0 + 61, delivered())]).await;
    assert_eq!(store.queue().message_body(&m.id).await.expect("body"), None);
}

async fn status_filters(ctx: Ctx) {
    let store = &ctx.store;
    let a = account(store, "a").await;
    let b = account(store, "b").await;
    let m1 = message(a.id, Lane::Batch, T0, T0, &["a1@x.example", "a2@y.example"]);
    let m2 = message(a.id, Lane::Batch, T0 + 1000, T0, &["a1@x.example"]);
    let m3 = message(a.id, Lane::Batch, T0 + 2000, T0, &["a3@z.example"]);
    let mb = message(b.id, Lane::Batch, T0 + 1000, T0, &["b1@x.example", "a1@x.example"]);
    for m in [&m1, &m2, &m3, &mb] {
        store.queue().enqueue(m.clone()).await.expect("enqueue");
    }
    let keys = |rows: &[DeliveryStatusRow]| -> Vec<(MessageId, String)> {
        rows.iter()
            .map(|r| (r.message_id.clone(), r.recipient.clone()))
            .collect()
    };
    let k = |m: &NewMessage, r: &str| (m.id.clone(), r.to_string());

    let all_a = statuses(store, a.id, T0, T0 + 3000).await;
    assert_eq!(
        keys(&all_a),
        [
            k(&m1, "a1@x.example"),
            k(&m1, "a2@y.example"),
            k(&m2, "a1@x.example"),
            k(&m3, "a3@z.example")
        ]
    );
    // Account isolation.
    let all_b = statuses(store, b.id, T0, T0 + 3000).await;
    assert_eq!(keys(&all_b), [k(&mb, "b1@x.example"), k(&mb, "a1@x.example")]);
    assert!(
        message_statuses(store, b.id, &m1.id).await.is_empty(),
        "B must not see A's message"
    );
    assert!(attempts(store, b.id, &m1.id, "a1@x.example").await.is_empty());
    // Half-open date range.
    let mid = statuses(store, a.id, T0 + 1000, T0 + 2000).await;
    assert_eq!(keys(&mid), [k(&m2, "a1@x.example")]);
    let first = statuses(store, a.id, T0, T0 + 1000).await;
    assert_eq!(keys(&first), [k(&m1, "a1@x.example"), k(&m1, "a2@y.example")]);
    assert!(statuses(store, a.id, T0 + 3000, T0 + 9000).await.is_empty());
    // By message, by recipient, both.
    let q = StatusQuery {
        message_id: Some(m1.id.clone()),
        ..query(a.id, T0, T0 + 3000)
    };
    assert_eq!(
        keys(&store.queue().status(q).await.expect("status")),
        [k(&m1, "a1@x.example"), k(&m1, "a2@y.example")]
    );
    let q = StatusQuery {
        to_address: Some("a1@x.example".into()),
        ..query(a.id, T0, T0 + 3000)
    };
    assert_eq!(
        keys(&store.queue().status(q).await.expect("status")),
        [k(&m1, "a1@x.example"), k(&m2, "a1@x.example")]
    );
    let q = StatusQuery {
        message_id: Some(m2.id.clone()),
        to_address: Some("a1@x.example".into()),
        ..query(a.id, T0, T0 + 3000)
    };
    assert_eq!(
        keys(&store.queue().status(q).await.expect("status")),
        [k(&m2, "a1@x.example")]
    );
    // Paging.
    let page = |offset, limit| StatusQuery {
        offset,
        limit,
        ..query(a.id, T0, T0 + 3000)
    };
    let p1 = store.queue().status(page(0, 2)).await.expect("status");
    let p2 = store.queue().status(page(2, 2)).await.expect("status");
    let p3 = store.queue().status(page(4, 2)).await.expect("status");
    assert_eq!(p1.len(), 2);
    assert!(p3.is_empty());
    assert_eq!([keys(&p1), keys(&p2)].concat(), keys(&all_a));
    assert!(store.queue().status(page(0, 0)).await.expect("status").is_empty());
}

async fn group_commit(ctx: Ctx) {
    let store = ctx.store.clone();
    let acc = account(&store, "a").await;
    let before = store.commit_stats();
    enqueue_many(&store, acc.id, 500).await;
    let after = store.commit_stats();
    let (transactions, messages) = (
        after.transactions - before.transactions,
        after.messages - before.messages,
    );
    assert_eq!(messages, 500);
    assert!(
        transactions < messages,
        "no batching happened: {transactions} transactions for {messages} messages"
    );
    eprintln!("group commit: {messages} messages in {transactions} transactions");
    assert_eq!(queue_counts(&store).await.pending, 500);
    assert_eq!(statuses(&store, acc.id, T0, T0 + 500).await.len(), 500);
}

async fn bad_message_does_not_fail_its_batch(ctx: Ctx) {
    let store = ctx.store.clone();
    let acc = account(&store, "a").await;
    let first = message(acc.id, Lane::Batch, T0, T0, &["r@x.example"]);
    store.queue().enqueue(first.clone()).await.expect("enqueue");

    let mut tasks = Vec::new();
    for i in 0..60 {
        let mut m = message(acc.id, Lane::Batch, T0 + 1 + i, T0, &["r@x.example"]);
        match i {
            20 => m.id = first.id.clone(),
            40 => m.account_id = acc.id + 10_000,
            _ => {}
        }
        let store = store.clone();
        tasks.push(tokio::spawn(async move { (i, store.queue().enqueue(m).await) }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.expect("task") {
            (20, r) => assert!(matches!(r, Err(StoreError::Conflict(_))), "duplicate id: {r:?}"),
            (40, r) => assert!(matches!(r, Err(StoreError::Invalid(_))), "unknown account: {r:?}"),
            (_, r) => {
                r.expect("a good message in a batch with a bad one");
                ok += 1;
            }
        }
    }
    assert_eq!(ok, 58);
    assert_eq!(statuses(&store, acc.id, T0, T0 + 1000).await.len(), 59);
}

async fn invalid_messages(ctx: Ctx) {
    let store = &ctx.store;
    let acc = account(store, "a").await;
    // A lane is a `Lane`: an unknown one (2) cannot be built, and is refused where integers come in.
    let unknown = Lane::try_from(2).expect_err("unknown lane");
    assert_eq!(unknown.to_string(), "unknown lane 2");
    let mut m = message(acc.id, Lane::Trigger, T0, T0, &["r@x.example"]);
    m.recipients.clear();
    assert!(
        matches!(store.queue().enqueue(m.clone()).await, Err(StoreError::Invalid(_))),
        "no recipients"
    );
    assert_eq!(queue_counts(store).await, Default::default());
}

async fn closed_store(ctx: Ctx) {
    let store = ctx.open(StoreOptions::default()).await;
    let acc = account(&store, "a").await;
    store
        .queue()
        .enqueue(message(acc.id, Lane::Trigger, T0, T0, &["r@x.example"]))
        .await
        .expect("enqueue");
    store.close().await;
    let r = store
        .queue()
        .enqueue(message(acc.id, Lane::Trigger, T0, T0, &["r@x.example"]))
        .await;
    assert!(matches!(r, Err(StoreError::Closed)), "{r:?}");
    let r = store
        .queue()
        .claim(ClaimRequest {
            worker: "w".into(),
            limit: 1,
            lease_ms: 1,
            now_ms: T0,
        })
        .await;
    assert!(matches!(r, Err(StoreError::Closed)), "{r:?}");
    // The shared database is untouched: the test's own store still sees the message.
    assert_eq!(queue_counts(&ctx.store).await.pending, 1);
}

// ---------------------------------------------------------------------------------------------------------
// SQLite durability: what enqueue acknowledged survives the process.

async fn enqueue_many(store: &Store, account: AccountId, n: i64) {
    let mut tasks = Vec::new();
    for i in 0..n {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .queue()
                .enqueue(message(account, Lane::Batch, T0 + i, T0, &[&format!("r{i}@x.example")]))
                .await
        }));
    }
    for t in tasks {
        t.await.expect("task").expect("enqueue");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_durable_when_dropped_without_close() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite:{}", dir.path().join("durable.db").display());
    let store = Store::open(&url, StoreOptions::default()).await.expect("open");
    let acc = account(&store, "a").await;
    enqueue_many(&store, acc.id, 300).await;
    drop(store);

    let reopened = Store::open(&url, StoreOptions::default()).await.expect("reopen");
    assert_eq!(statuses(&reopened, acc.id, T0, T0 + 1000).await.len(), 300);
    assert_eq!(queue_counts(&reopened).await.pending, 300);
    reopened.close().await;
}

const ABORT_CHILD_ENV: &str = "MAILPUSH_STORE_ABORT_CHILD_URL";

/// Runs itself in a child process that enqueues, prints how many were acknowledged, and aborts (no destructors,
/// no close): every acknowledged message must be in the file afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_durable_across_process_abort() {
    if let Ok(url) = std::env::var(ABORT_CHILD_ENV) {
        let store = Store::open(&url, StoreOptions::default()).await.expect("open");
        let acc = account(&store, "a").await;
        enqueue_many(&store, acc.id, 300).await;
        println!("ACKED 300");
        use std::io::Write;
        let _ = std::io::stdout().flush();
        std::process::abort();
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite:{}", dir.path().join("crash.db").display());
    let exe = std::env::current_exe().expect("current exe");
    let out = std::process::Command::new(exe)
        .args([
            "sqlite_durable_across_process_abort",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ABORT_CHILD_ENV, &url)
        .output()
        .expect("run child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "the child should have aborted");
    assert!(
        stdout.contains("ACKED 300"),
        "child did not finish enqueueing: {stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let store = Store::open(&url, StoreOptions::default()).await.expect("reopen");
    let acc = store
        .accounts()
        .account_by_name("a")
        .await
        .expect("account")
        .expect("exists");
    assert_eq!(statuses(&store, acc.id, T0, T0 + 1000).await.len(), 300);
    store.close().await;
}

/// The per-account rate counts mails by the second of their request time, whatever order they commit in: a
/// mail of a full second is refused after a later second committed (it used to reset the counter), the later
/// second keeps its own count, and the day's count never goes back.
async fn rate_counts_each_second_of_request_time(ctx: Ctx) {
    let store = &ctx.store;
    let acc = account(store, "a").await;
    let limits = limits(2, 0);
    let send = |at: i64, to: &str| {
        let m = message(acc.id, Lane::Batch, at, at, &[to]);
        async move { store.queue().enqueue_limited(m, limits).await }
    };
    let rate_refused = |r: Result<(), StoreError>| matches!(r, Err(StoreError::Limit(LimitRefusal::Rate { limit: 2 })));
    send(T0, "a@one.example").await.expect("first of second 0");
    send(T0 + 10, "b@one.example").await.expect("second of second 0");
    send(T0 + 1_000, "c@one.example").await.expect("first of second 1");
    assert!(
        rate_refused(send(T0 + 500, "late@one.example").await),
        "second 0 is full"
    );
    send(T0 + 1_001, "d@one.example").await.expect("second of second 1");
    assert!(
        rate_refused(send(T0 + 1_002, "e@one.example").await),
        "second 1 is full"
    );
    let usage = store.limits().account_usage(acc.id).await.expect("usage");
    assert_eq!((usage.second_ms, usage.second_count), (T0 + 1_000, 2));
    assert_eq!(usage.day_count, 4);
}

/// Sends `msgs` at once, so that they share group commits; their results in order.
async fn send_together(store: &Store, msgs: Vec<NewMessage>, limits: AdmissionLimits) -> Vec<Result<(), StoreError>> {
    let mut sends = tokio::task::JoinSet::new();
    for (i, m) in msgs.into_iter().enumerate() {
        let store = store.clone();
        sends.spawn(async move { (i, store.queue().enqueue_limited(m, limits).await) });
    }
    let mut results = sends.join_all().await;
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

/// Group commits in which the limits refuse messages, or mark recipients over their hourly limit, store exactly
/// what the limits admit, and the batches within the limits after them are stored whole. (On PostgreSQL the
/// messages are written before the limits are decided, and such a batch is written again in the other order.)
async fn batches_over_their_limits_store_exactly_what_the_limits_admit(ctx: Ctx) {
    let store = &ctx.store;
    let acc = account(store, "a").await;
    let limits = limits(5, 1);
    let second = |s: i64| T0 + s * 1_000;

    // 30 mails in one second: 5 pass the rate.
    let burst = (0..30)
        .map(|i| {
            message(
                acc.id,
                Lane::Batch,
                second(0) + i,
                second(0) + i,
                &[&format!("r{i}@one.example")],
            )
        })
        .collect();
    let results = send_together(store, burst, limits).await;
    let refused = results
        .iter()
        .filter(|r| matches!(r, Err(StoreError::Limit(LimitRefusal::Rate { limit: 5 }))))
        .count();
    assert_eq!((results.iter().filter(|r| r.is_ok()).count(), refused), (5, 25));
    assert_eq!(statuses(store, acc.id, second(0), second(1)).await.len(), 5);

    // 4 mails to a recipient already sent to this hour each, and to one new recipient each: every mail is
    // admitted, and the repeated recipient gets one of them.
    let marked = (0..4)
        .map(|i| {
            message(
                acc.id,
                Lane::Batch,
                second(2) + i,
                second(2) + i,
                &["again@one.example", &format!("n{i}@one.example")],
            )
        })
        .collect();
    assert!(send_together(store, marked, limits).await.iter().all(Result::is_ok));
    let rows = statuses(store, acc.id, second(2), second(3)).await;
    assert_eq!(rows.len(), 8);
    let again: Vec<SendStatus> = rows
        .iter()
        .filter(|r| r.recipient == "again@one.example")
        .map(|r| r.send_status)
        .collect();
    assert_eq!(again.iter().filter(|s| s.is_ok()).count(), 1, "{again:?}");
    assert_eq!(
        again.iter().filter(|s| **s == SendStatus::FrequencyLimit).count(),
        3,
        "{again:?}"
    );
    assert!(
        rows.iter()
            .filter(|r| r.recipient != "again@one.example")
            .all(|r| r.send_status.is_ok())
    );

    // Within the limits again, twice: both batches stored whole.
    for s in [4, 6] {
        let fine = (0..5)
            .map(|i| {
                message(
                    acc.id,
                    Lane::Batch,
                    second(s) + i,
                    second(s) + i,
                    &[&format!("f{s}-{i}@one.example")],
                )
            })
            .collect();
        assert!(send_together(store, fine, limits).await.iter().all(Result::is_ok));
        assert_eq!(statuses(store, acc.id, second(s), second(s + 1)).await.len(), 5);
    }
    let usage = store.limits().account_usage(acc.id).await.expect("usage");
    // 5 + (2 + 1 + 1 + 1) + 5 + 5 recipients admitted.
    assert_eq!(usage.day_count, 20);
}
