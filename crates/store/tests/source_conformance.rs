//! Conformance cases for source IPs (migration 0013): domain pool assignments, the warm-up counters of source
//! addresses (atomic across stores sharing a database), and moving a held message's retry deadline; on SQLite
//! and (with `MAILPUSH_TEST_POSTGRES_URL`) PostgreSQL.

use mailpush_store::StoreOptions;

/// A UTC midnight.
const T0: i64 = 1_764_115_200_000;

#[macro_use]
mod common;
use common::{Ctx, DAY};

conformance!(
    domain_pools_are_assigned_and_cleared,
    reservations_follow_the_ramp_and_roll_over_daily,
    concurrent_reservations_never_exceed_the_allowance,
    held_messages_get_a_later_deadline,
);

/// Day n (0-based) of a [2, 4] ramp, unlimited after.
fn ramp(first_day: i64, now: i64) -> Option<u64> {
    [2u64, 4].get(((now - first_day) / DAY) as usize).copied()
}

async fn domain_pools_are_assigned_and_cleared(ctx: Ctx) {
    let store = &ctx.store;
    let sources = store.sources();
    let a = common::account(store, "a", T0).await;
    sources
        .set_domain_source_pool(a.id, "vip.example.com", Some("vip"), T0)
        .await
        .unwrap();
    sources
        .set_domain_source_pool(a.id, "x.example.com", Some("vip"), T0)
        .await
        .unwrap();
    sources
        .set_domain_source_pool(a.id, "x.example.com", Some("other"), T0 + 1)
        .await
        .unwrap();
    let all = sources.domain_source_pools().await.unwrap();
    let pairs: Vec<(&str, &str)> = all.iter().map(|p| (p.domain.as_str(), p.pool.as_str())).collect();
    assert_eq!(pairs, [("vip.example.com", "vip"), ("x.example.com", "other")]);
    assert!(all.iter().all(|p| p.account_id == a.id));
    sources
        .set_domain_source_pool(a.id, "x.example.com", None, T0 + 2)
        .await
        .unwrap();
    assert_eq!(sources.domain_source_pools().await.unwrap().len(), 1);
}

async fn reservations_follow_the_ramp_and_roll_over_daily(ctx: Ctx) {
    let store = &ctx.store;
    let sources = store.sources();
    let now = T0 + 3_600_000;
    let r = sources
        .reserve_source_sends("127.0.0.2", now, 1, |f| ramp(f, now))
        .await
        .unwrap();
    assert_eq!((r.granted, r.usage.first_day_ms, r.usage.day_count), (1, T0, 1));
    let r = sources
        .reserve_source_sends("127.0.0.2", now, 5, |f| ramp(f, now))
        .await
        .unwrap();
    assert_eq!(r.granted, 1, "what is left of day 1's 2");
    let r = sources
        .reserve_source_sends("127.0.0.2", now, 5, |f| ramp(f, now))
        .await
        .unwrap();
    assert_eq!(r.granted, 0);
    sources.release_source_sends("127.0.0.2", now, 1).await.unwrap();
    let r = sources
        .reserve_source_sends("127.0.0.2", now, 5, |f| ramp(f, now))
        .await
        .unwrap();
    assert_eq!(r.granted, 1, "a released send can be used again");
    // Another address has its own counters.
    let r = sources
        .reserve_source_sends("127.0.0.3", now, 5, |f| ramp(f, now))
        .await
        .unwrap();
    assert_eq!(r.granted, 2);

    // Day 2: 4; day 3: unlimited. The first day stays.
    let day2 = now + DAY;
    let r = sources
        .reserve_source_sends("127.0.0.2", day2, 10, |f| ramp(f, day2))
        .await
        .unwrap();
    assert_eq!((r.granted, r.usage.first_day_ms, r.usage.day_count), (4, T0, 4));
    let day3 = now + 2 * DAY;
    let r = sources
        .reserve_source_sends("127.0.0.2", day3, 1000, |f| ramp(f, day3))
        .await
        .unwrap();
    assert_eq!(r.granted, 1000);
    // A release of yesterday's sends does not touch today's count.
    sources.release_source_sends("127.0.0.2", day2, 4).await.unwrap();
    let usage = sources.source_ip_usage().await.unwrap();
    let two = usage.iter().find(|u| u.ip == "127.0.0.2").unwrap();
    assert_eq!(two.sent_on_day_of(day3), 1000);
    assert_eq!(two.sent_on_day_of(day3 + DAY), 0);
    assert_eq!(usage.len(), 2);
}

async fn concurrent_reservations_never_exceed_the_allowance(ctx: Ctx) {
    // Two stores on one database: two worker processes.
    let other = ctx.open(StoreOptions::default()).await;
    let stores = [ctx.store.clone(), other.clone()];
    let now = T0 + 1_000;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..24 {
        let store = stores[i % 2].clone();
        tasks.spawn(async move {
            store
                .sources()
                .reserve_source_sends("127.0.0.9", now, 3, |_| Some(25))
                .await
                .expect("reserve")
                .granted
        });
    }
    let mut total = 0;
    while let Some(g) = tasks.join_next().await {
        total += g.unwrap();
    }
    assert_eq!(total, 25, "exactly the allowance, never more");
    other.close().await;
}

async fn held_messages_get_a_later_deadline(ctx: Ctx) {
    let store = &ctx.store;
    let sources = store.sources();
    let a = common::account(store, "h", T0).await;
    let m = common::message(a.id, "b@x.example", T0, T0 + 1_000, vec![common::to("r@y.example")]);
    let id = m.id.clone();
    store.queue().enqueue(m).await.unwrap();
    sources.extend_message_expiry(id.as_str(), T0 + DAY).await.unwrap();
    // Never moved back.
    sources.extend_message_expiry(id.as_str(), T0 + 5).await.unwrap();
    let claimed = common::claim(store, "w", 10, 60_000, T0).await;
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].expires_ms, T0 + DAY);
}
