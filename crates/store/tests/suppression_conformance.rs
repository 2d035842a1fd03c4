//! Conformance cases for suppression (migration 0007) and for the events the queue writes with its outcomes,
//! on SQLite and (with `MAILPUSH_TEST_POSTGRES_URL`) PostgreSQL.

use mailpush_model::{EventKind, SendStatus};
use mailpush_store::{
    Account, AttemptResult, BounceBlacklistQuery, BounceType, CustomStatusFilter, DeliveryOutcome, NewMessage,
    NewRecipient, RecipientScreen, RecipientScreenQuery, Store, StoreError,
};

const T0: i64 = 1_700_000_000_000;

#[macro_use]
mod common;
use common::{Ctx, rcpt, to};

conformance!(
    outcomes_write_events_and_hard_bounces_blacklist,
    dropped_recipients_get_an_event_at_enqueue,
    custom_blacklist_crud_and_lookup,
    bounce_blacklist_list_and_delete_are_scoped,
    recipient_screen_finds_blacklists_and_unsubscribes_at_once,
    screens_at_the_same_moment_each_get_their_own_answer,
);

async fn recipient_screen_finds_blacklists_and_unsubscribes_at_once(ctx: Ctx) {
    let store = &ctx.store;
    let suppression = store.suppression();
    let (a, _) = seed_screened_lists(store).await;
    let (recipients, keys) = addresses_and_keys(&[
        "Bounced@y.example",
        "listed@y.example",
        "other@y.example",
        "Gone@y.example",
        "free@y.example",
    ]);
    let screen = |since| RecipientScreenQuery {
        account: a.id,
        sender_domain: "shop.example",
        recipients: &recipients,
        blacklist_keys: &keys,
        bounce_since_ms: since,
        now_ms: T0 + 10,
    };
    let mut got = suppression.recipient_screen(screen(T0)).await.expect("screen");
    got.blacklisted.sort();
    // The global bounce list counts for every account; a custom list only for its own; an unsubscribe only
    // from the domain it names, matched as sent.
    assert_eq!(got.blacklisted, ["bounced@y.example", "listed@y.example"]);
    assert_eq!(got.unsubscribed, ["Gone@y.example"]);
    let later = suppression.recipient_screen(screen(T0 + 1)).await.expect("screen");
    assert_eq!(
        later.blacklisted,
        ["listed@y.example"],
        "bounce rows older than the period expired"
    );
    assert_eq!(
        suppression
            .recipient_screen(RecipientScreenQuery {
                recipients: &[],
                blacklist_keys: &[],
                ..screen(T0)
            })
            .await
            .expect("empty"),
        RecipientScreen::default()
    );
}

/// Many screens at once go to the database together (one statement per gathered batch): each request still gets
/// exactly its own account's lists, its own sending domain's unsubscribes, its own bounce period and its own
/// moment for expiring custom entries.
async fn screens_at_the_same_moment_each_get_their_own_answer(ctx: Ctx) {
    let store = &ctx.store;
    let (a, b) = seed_screened_lists(store).await;
    let (recipients, keys) = addresses_and_keys(&[
        "Bounced@y.example",
        "listed@y.example",
        "brief@y.example",
        "other@y.example",
        "Gone@y.example",
        "Left@y.example",
        "free@y.example",
    ]);
    // (account, sending domain, bounce period start, now) of each request, and what it must see.
    let cases = |i: i64| {
        let (account, domain) = if i % 2 == 0 {
            (a.id, "shop.example")
        } else {
            (b.id, "news.example")
        };
        let since = if i % 3 == 0 { T0 } else { T0 + 1 };
        let now = if i % 4 < 2 { T0 + 1 } else { T0 + 10 };
        let mut blacklisted = Vec::new();
        if since <= T0 {
            blacklisted.push("bounced@y.example");
        }
        if account == a.id {
            blacklisted.push("listed@y.example");
            if now < T0 + 5 {
                blacklisted.push("brief@y.example");
            }
        } else {
            blacklisted.push("other@y.example");
        }
        blacklisted.sort_unstable();
        let unsubscribed = if account == a.id {
            "Gone@y.example"
        } else {
            "Left@y.example"
        };
        ((account, domain, since, now), blacklisted, vec![unsubscribed])
    };
    let mut screens = tokio::task::JoinSet::new();
    for i in 0..48 {
        let ((account, domain, since, now), blacklisted, unsubscribed) = cases(i);
        let (store, recipients, keys) = (store.clone(), recipients.clone(), keys.clone());
        screens.spawn(async move {
            let mut got = store
                .suppression()
                .recipient_screen(RecipientScreenQuery {
                    account,
                    sender_domain: domain,
                    recipients: &recipients,
                    blacklist_keys: &keys,
                    bounce_since_ms: since,
                    now_ms: now,
                })
                .await
                .expect("screen");
            got.blacklisted.sort();
            assert_eq!(got.blacklisted, blacklisted, "request {i}");
            assert_eq!(got.unsubscribed, unsubscribed, "request {i}");
        });
    }
    while let Some(done) = screens.join_next().await {
        done.expect("screen task");
    }
}

/// Accounts `a` and `b` and what the screens find: a bounce blacklist row (global, from `b`), custom entries of
/// both (one of `a`'s expiring at T0 + 5), and unsubscribes from `a`'s two domains and `b`'s one.
async fn seed_screened_lists(store: &Store) -> (Account, Account) {
    let suppression = store.suppression();
    let a = common::account(store, "a", T0).await;
    let b = common::account(store, "b", T0).await;
    suppression
        .add_bounce_blacklist(b.id, "bounced@y.example", T0, "550 5.1.1")
        .await
        .expect("bounce");
    for (account, address, expire) in [
        (a.id, "listed@y.example", None),
        (a.id, "brief@y.example", Some(T0 + 5)),
        (b.id, "other@y.example", None),
    ] {
        suppression
            .create_custom_blacklist(account, &[address.to_string()], T0, expire)
            .await
            .expect("custom");
    }
    for (account, domain, who) in [
        (a.id, "shop.example", "Gone@y.example"),
        (a.id, "other.example", "free@y.example"),
        (b.id, "news.example", "Left@y.example"),
    ] {
        assert!(
            suppression
                .unsubscribe(account, domain, who, T0)
                .await
                .expect("unsubscribe")
        );
    }
    (a, b)
}

/// Recipients as sent, and their blacklist keys.
fn addresses_and_keys(addresses: &[&str]) -> (Vec<String>, Vec<String>) {
    let recipients: Vec<String> = addresses.iter().map(|s| s.to_string()).collect();
    let keys = recipients
        .iter()
        .map(|r| mailpush_store::normalize_blacklist_address(r))
        .collect();
    (recipients, keys)
}

fn message(account: &Account, recipients: Vec<NewRecipient>) -> NewMessage {
    NewMessage {
        envelope_from: "b@shop.example".into(),
        ..common::message(account.id, "a@shop.example", T0, T0 + 1_000_000, recipients)
    }
}

async fn outcomes_write_events_and_hard_bounces_blacklist(ctx: Ctx) {
    let store = &ctx.store;
    let a = common::account(store, "a", T0).await;
    let m = message(
        &a,
        vec![
            to("ok@y.example"),
            to("Gone@y.example"),
            to("late@y.example"),
            to("slow@y.example"),
        ],
    );
    store.queue().enqueue(m.clone()).await.expect("enqueue");
    let claimed = common::claim(store, "w", 10, 60_000, T0).await;
    assert_eq!(claimed.len(), 4);
    let result = |r: &str| match r {
        "ok@y.example" => AttemptResult::Delivered { reply: "250 ok".into() },
        "Gone@y.example" => AttemptResult::Rejected {
            reply: "550 5.1.1 no such user".into(),
        },
        "late@y.example" => AttemptResult::Expired {
            reply: "gave up after 3 attempts; last reply: 451 later".into(),
        },
        _ => AttemptResult::Deferred {
            reply: "451 later".into(),
            retry_at_ms: T0 + 60_000,
        },
    };
    let outcomes: Vec<DeliveryOutcome> = claimed
        .iter()
        .map(|c| common::outcome(c, T0 + 5, result(&c.recipient), None))
        .collect();
    // The same batch twice: the second is fenced off and must write no events.
    assert!(
        store
            .queue()
            .record_outcomes(outcomes.clone())
            .await
            .expect("record")
            .iter()
            .all(|a| *a)
    );
    assert!(
        store
            .queue()
            .record_outcomes(outcomes)
            .await
            .expect("again")
            .iter()
            .all(|a| !*a)
    );

    let events = store.events().message_events(a.id, &m.id).await.expect("events");
    let mut got: Vec<(String, EventKind, Option<BounceType>)> = events
        .iter()
        .map(|e| (e.event.recipient.clone(), e.event.kind, e.event.bounce_type))
        .collect();
    got.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(
        got,
        vec![
            ("Gone@y.example".to_string(), EventKind::Bounce, Some(BounceType::Hard)),
            ("late@y.example".to_string(), EventKind::Bounce, Some(BounceType::Soft)),
            ("ok@y.example".to_string(), EventKind::Delivered, None),
            ("slow@y.example".to_string(), EventKind::Deferred, None),
        ]
    );
    let bounce = events
        .iter()
        .find(|e| e.event.recipient == "Gone@y.example")
        .expect("bounce");
    assert_eq!(bounce.event.reason, "550 5.1.1 no such user");

    // Only the hard bounce is blacklisted, normalized, and for every account.
    let b = common::account(store, "b", T0).await;
    let wanted = vec![
        "gone@y.example".to_string(),
        "late@y.example".to_string(),
        "ok@y.example".to_string(),
    ];
    assert_eq!(
        common::blacklisted(store, b.id, &wanted, T0, T0 + 10).await,
        vec!["gone@y.example"]
    );
    // Older than the period: no longer blocked.
    assert!(
        common::blacklisted(store, b.id, &wanted, T0 + 6, T0 + 10)
            .await
            .is_empty()
    );
}

async fn dropped_recipients_get_an_event_at_enqueue(ctx: Ctx) {
    let store = &ctx.store;
    let suppression = store.suppression();
    let a = common::account(store, "a", T0).await;
    let m = message(
        &a,
        vec![to("ok@y.example"), rcpt("black@y.example", SendStatus::Blacklisted)],
    );
    store.queue().enqueue(m.clone()).await.expect("enqueue");
    let events = store.events().message_events(a.id, &m.id).await.expect("events");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event.kind, EventKind::Dropped);
    assert_eq!(events[0].event.recipient, "black@y.example");
    assert_eq!(events[0].event.at_ms, T0);
    assert_eq!(events[0].event.reason, "the recipient is on a blacklist");
    let (hits, sends) = suppression.blacklist_hits(a.id, T0).await.expect("hits");
    assert_eq!((hits, sends), (1, 2));
    assert_eq!(suppression.blacklist_hits(a.id, T0 + 1).await.expect("hits"), (0, 0));
}

async fn custom_blacklist_crud_and_lookup(ctx: Ctx) {
    let store = &ctx.store;
    let suppression = store.suppression();
    let a = common::account(store, "a", T0).await;
    let b = common::account(store, "b", T0).await;
    let list = vec!["x@y.example".to_string(), "z@y.example".to_string()];
    assert_eq!(
        suppression
            .create_custom_blacklist(a.id, &list, T0, None)
            .await
            .expect("create"),
        2
    );
    assert_eq!(
        suppression
            .create_custom_blacklist(a.id, &list[..1], T0, None)
            .await
            .expect("again"),
        0
    );
    assert_eq!(
        suppression
            .create_custom_blacklist(a.id, &["old@y.example".to_string()], T0, Some(T0 + 100))
            .await
            .expect("expiring"),
        1
    );
    let probe = vec![
        "x@y.example".to_string(),
        "old@y.example".to_string(),
        "free@y.example".to_string(),
    ];
    let mut hits = common::blacklisted(store, a.id, &probe, T0, T0 + 50).await;
    hits.sort();
    assert_eq!(hits, vec!["old@y.example", "x@y.example"]);
    // Expired entries no longer block; other accounts are not affected.
    assert_eq!(
        common::blacklisted(store, a.id, &probe, T0, T0 + 100).await,
        vec!["x@y.example"]
    );
    assert!(common::blacklisted(store, b.id, &probe, T0, T0 + 50).await.is_empty());

    let (all, total) = suppression
        .list_custom_blacklist(a.id, CustomStatusFilter::All, None, T0 + 200, 0, 10)
        .await
        .expect("list");
    assert_eq!((all.len(), total), (3, 3));
    let (expired, total) = suppression
        .list_custom_blacklist(a.id, CustomStatusFilter::Expired, None, T0 + 200, 0, 10)
        .await
        .expect("list");
    assert_eq!(total, 1);
    assert_eq!(expired[0].address, "old@y.example");
    let (active, total) = suppression
        .list_custom_blacklist(a.id, CustomStatusFilter::Active, Some("z@y.example"), T0 + 200, 0, 10)
        .await
        .expect("list");
    assert_eq!((active.len(), total), (1, 1));
    let (page, total) = suppression
        .list_custom_blacklist(a.id, CustomStatusFilter::All, None, T0, 1, 1)
        .await
        .expect("page");
    assert_eq!((page.len(), total), (1, 3));

    let id = expired[0].id;
    suppression
        .update_custom_blacklist(a.id, id, "new@y.example", None)
        .await
        .expect("update");
    assert!(matches!(
        suppression
            .update_custom_blacklist(b.id, id, "other@y.example", None)
            .await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        suppression.update_custom_blacklist(a.id, id, "x@y.example", None).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        common::blacklisted(store, a.id, &["new@y.example".to_string()], T0, T0 + 10_000).await,
        vec!["new@y.example"]
    );
    assert_eq!(
        suppression
            .delete_custom_blacklist(b.id, &list)
            .await
            .expect("foreign delete"),
        0
    );
    assert_eq!(
        suppression.delete_custom_blacklist(a.id, &list).await.expect("delete"),
        2
    );
    assert_eq!(
        suppression
            .list_custom_blacklist(a.id, CustomStatusFilter::All, None, T0, 0, 10)
            .await
            .expect("list")
            .1,
        1
    );
}

async fn bounce_blacklist_list_and_delete_are_scoped(ctx: Ctx) {
    let store = &ctx.store;
    let suppression = store.suppression();
    let a = common::account(store, "a", T0).await;
    let b = common::account(store, "b", T0).await;
    suppression
        .add_bounce_blacklist(a.id, "One@y.example", T0, "550 a")
        .await
        .expect("add");
    suppression
        .add_bounce_blacklist(a.id, "two@y.example", T0 + 10, "550 b")
        .await
        .expect("add");
    suppression
        .add_bounce_blacklist(b.id, "one@y.example", T0 + 20, "550 c")
        .await
        .expect("add");
    // Refreshing an entry moves its time.
    suppression
        .add_bounce_blacklist(a.id, "two@y.example", T0 + 30, "550 d")
        .await
        .expect("refresh");
    let q = |account, address: Option<&str>| BounceBlacklistQuery {
        account_id: account,
        from_ms: T0,
        to_ms: T0 + 1000,
        address: address.map(str::to_string),
        offset: 0,
        limit: 10,
    };
    let (rows, total) = suppression.list_bounce_blacklist(&q(a.id, None)).await.expect("list");
    assert_eq!(total, 2);
    assert_eq!(rows[0].address, "two@y.example");
    assert_eq!(rows[0].created_ms, T0 + 30);
    assert_eq!(rows[0].reason, "550 d");
    assert_eq!(rows[1].address, "one@y.example");
    assert_eq!(
        suppression
            .list_bounce_blacklist(&q(a.id, Some("one@y.example")))
            .await
            .expect("one")
            .1,
        1
    );
    // a lifts its own entry; b's entry for the same address still blocks everyone.
    assert_eq!(
        suppression
            .delete_bounce_blacklist(a.id, &["one@y.example".to_string()])
            .await
            .expect("delete"),
        1
    );
    assert_eq!(
        suppression.list_bounce_blacklist(&q(a.id, None)).await.expect("list").1,
        1
    );
    assert_eq!(
        common::blacklisted(store, a.id, &["one@y.example".to_string()], T0, T0).await,
        vec!["one@y.example"]
    );
    suppression
        .delete_bounce_blacklist(b.id, &["one@y.example".to_string()])
        .await
        .expect("delete");
    assert!(
        common::blacklisted(store, a.id, &["one@y.example".to_string()], T0, T0)
            .await
            .is_empty()
    );
}
