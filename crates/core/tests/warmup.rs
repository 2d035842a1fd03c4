//! Domain warm-up and automatic reputation levels with a controllable clock, through the real
//! `Mailpush` facade and the store's claim, on SQLite (and on PostgreSQL when `MAILPUSH_TEST_POSTGRES_URL` is
//! set, each test in its own schema).

use std::sync::Arc;

use mailpush_core::{AccountContext, Mailpush, StatusRequest};
use mailpush_model::{Clock, DeliverStatus, ManualClock, TriggerType};
use mailpush_store::{AttemptResult, ClaimRequest, ClaimedDelivery, WarmupRamp};

mod common;
use common::{DAY_MS, T0};

struct Env {
    core: Mailpush,
    store: mailpush_store::Store,
    clock: Arc<ManualClock>,
    account: AccountContext,
    ramp: Option<WarmupRamp>,
    _dir: tempfile::TempDir,
}

async fn setup(database_url: Option<String>, ramp: &[u64]) -> Env {
    let w = common::world(database_url, &["sender.test", "other.test"], |s| {
        s.warmup_domain_ramp = ramp.to_vec();
        s.warmup_trigger_reserve_percent = 0;
        s.limit_sends_per_second = 1_000_000;
    })
    .await;
    let ramp = mailpush_core::ramp_from_settings(w.core.settings()).expect("ramp");
    Env {
        core: w.core,
        store: w.store,
        clock: w.clock,
        account: w.account,
        ramp,
        _dir: w.dir,
    }
}

async fn send(env: &Env, domain: &str, to: &[String], trigger: TriggerType) -> String {
    let req = common::simple_mail(&format!("news@{domain}"), to, trigger);
    let id = env.core.send_email(&env.account, req).await.expect("send");
    id.as_str().to_string()
}

fn rcpt(i: usize) -> String {
    format!("user{i}@dest.test")
}

async fn claim(env: &Env, worker: &str, limit: usize) -> Vec<ClaimedDelivery> {
    let r = ClaimRequest {
        worker: worker.into(),
        limit,
        lease_ms: 60_000,
        now_ms: env.clock.now_ms(),
    };
    match &env.ramp {
        Some(ramp) => env.store.warmup().claim_with_warmup(&r, ramp).await.expect("claim"),
        None => env.store.queue().claim(r).await.expect("claim"),
    }
}

async fn settle(env: &Env, claimed: &[ClaimedDelivery], result: impl Fn(&ClaimedDelivery) -> AttemptResult) {
    common::settle(&env.store, &env.clock, claimed, result).await;
}

fn delivered(_: &ClaimedDelivery) -> AttemptResult {
    AttemptResult::Delivered { reply: "250 ok".into() }
}

/// Evaluates the levels once: exactly `domain` moves, from `from` to `to`.
async fn evaluate_one_move(env: &Env, domain: &str, from: u8, to: u8) {
    let moves = env.core.evaluate_levels().await.expect("eval");
    assert_eq!(moves.len(), 1, "{moves:?}");
    assert_eq!(
        (moves[0].domain.as_str(), moves[0].from, moves[0].to),
        (domain, from, to)
    );
}

async fn warmup_of(env: &Env, domain: &str) -> mailpush_core::DomainWarmup {
    env.core
        .domain_warmup(&env.account)
        .await
        .expect("warmup")
        .into_iter()
        .find(|w| w.domain == domain)
        .expect("domain listed")
}

/// N = 5 on day 1, 8 marketing mails + 1 trigger mail behind them: the trigger goes first, 4 marketing mails
/// fill the allowance, the other 4 are held (queued, saying so) and go out the next day in acceptance order.
/// Another domain's mail is not blocked; a retry on the same day does not use allowance twice.
async fn holds_over_the_allowance(env: Env) {
    let mut marketing = Vec::new();
    for i in 0..8 {
        marketing.push(send(&env, "sender.test", &[rcpt(i)], TriggerType::Batch).await);
    }
    let trigger = send(&env, "sender.test", &[rcpt(100)], TriggerType::Trigger).await;
    let other = send(&env, "other.test", &[rcpt(200)], TriggerType::Batch).await;

    let w = warmup_of(&env, "sender.test").await;
    assert_eq!(
        (w.day, w.allowance, w.sent_today, w.held),
        (None, Some(5), 0, 0),
        "never sent yet"
    );

    let first = claim(&env, "w1", 100).await;
    let ids: Vec<&str> = first.iter().map(|d| d.message_id.as_str()).collect();
    assert_eq!(ids[0], trigger, "the trigger mail queued last goes first");
    assert_eq!(
        &ids[1..5],
        &marketing[..4].iter().map(String::as_str).collect::<Vec<_>>()[..]
    );
    assert_eq!(ids[5], other, "a held backlog does not block another domain");
    assert_eq!(first.len(), 6);
    assert!(claim(&env, "w1", 100).await.is_empty(), "held mail is not due today");

    let w = warmup_of(&env, "sender.test").await;
    assert_eq!((w.day, w.allowance, w.sent_today, w.held), (Some(1), Some(5), 5, 4));
    let rows = env
        .core
        .send_status(
            &env.account,
            StatusRequest {
                request_date: mailpush_model::clock::date_of(T0),
                limit: 100,
                ..Default::default()
            },
        )
        .await
        .expect("status");
    let held: Vec<_> = rows
        .iter()
        .filter(|r| r.deliver_message.starts_with("held for warm-up"))
        .collect();
    assert_eq!(held.len(), 4);
    assert!(
        held.iter()
            .all(|r| r.deliver_status == DeliverStatus::Queued && r.send_status.is_ok())
    );

    // One delivered, the others deferred by the MX: retried later today without using allowance again.
    settle(&env, &first, |d| {
        if d.message_id.as_str() == trigger {
            delivered(d)
        } else {
            AttemptResult::Deferred {
                reply: "451 later".into(),
                retry_at_ms: T0 + 60_000,
            }
        }
    })
    .await;
    env.clock.set(T0 + 60_000);
    let retried = claim(&env, "w1", 100).await;
    assert_eq!(retried.len(), 5, "retries of mail already counted today");
    assert_eq!(warmup_of(&env, "sender.test").await.sent_today, 5);
    settle(&env, &retried, delivered).await;

    // The next day: the held mail goes out, oldest first, within day 2's allowance (10).
    env.clock.set(T0 - T0 % DAY_MS + DAY_MS);
    let next = claim(&env, "w1", 100).await;
    let ids: Vec<&str> = next.iter().map(|d| d.message_id.as_str()).collect();
    assert_eq!(ids, marketing[4..].iter().map(String::as_str).collect::<Vec<_>>());
    let w = warmup_of(&env, "sender.test").await;
    assert_eq!((w.day, w.allowance, w.sent_today, w.held), (Some(2), Some(10), 4, 0));
    settle(&env, &next, delivered).await;
    // Day 3: the ramp is over, unlimited.
    env.clock.advance(DAY_MS);
    assert_eq!(warmup_of(&env, "sender.test").await.allowance, None);
}

/// Several claimers at once (threads here; processes on PostgreSQL share the same row locks) never lease more
/// than the allowance together.
async fn concurrent_claims_share_the_allowance(env: Env) {
    for i in 0..30 {
        send(&env, "sender.test", &[rcpt(i)], TriggerType::Batch).await;
    }
    let env = Arc::new(env);
    let mut tasks = Vec::new();
    for w in 0..8 {
        let env = env.clone();
        tasks.push(tokio::spawn(
            async move { claim(&env, &format!("w{w}"), 3).await.len() },
        ));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.expect("join");
    }
    // Rows a full claim skipped (allowance was left then) are held by the next claims.
    for _ in 0..5 {
        total += claim(&env, "late", 3).await.len();
    }
    assert_eq!(total, 5, "exactly the day-1 allowance");
    assert_eq!(warmup_of(&env, "sender.test").await.held, 25);
}

/// A new domain at level 1 goes up at once when today's recipients reach 80 % of its quota with good quality;
/// a domain whose quality drops goes down one level on the next day, once.
async fn levels_move_with_volume_and_quality(env: Env) {
    let level = |env: &Env| {
        let core = env.core.clone();
        let account = env.account.clone();
        async move {
            core.send_quota(&account)
                .await
                .expect("quota")
                .domains
                .into_iter()
                .map(|d| (d.domain, d.level))
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        level(&env).await,
        vec![("other.test".to_string(), 1), ("sender.test".to_string(), 1)]
    );
    // 400 of 500 recipients today, all delivered.
    for k in 0..8 {
        let to: Vec<String> = (0..50).map(|i| rcpt(k * 50 + i)).collect();
        send(&env, "sender.test", &to, TriggerType::Batch).await;
    }
    assert!(
        env.core.evaluate_levels().await.expect("eval").is_empty(),
        "nothing settled yet"
    );
    let claimed = claim(&env, "w", 1_000).await;
    assert_eq!(claimed.len(), 400);
    settle(&env, &claimed, delivered).await;
    evaluate_one_move(&env, "sender.test", 1, 2).await;
    assert!(
        env.core.evaluate_levels().await.expect("eval").is_empty(),
        "400 of 1,000: no second step"
    );
    assert_eq!(
        level(&env).await,
        vec![("other.test".to_string(), 1), ("sender.test".to_string(), 2)]
    );
    let listed = env
        .core
        .reputations(&env.account, &["sender.test"])
        .await
        .expect("reputations");
    assert_eq!((listed[0].level, listed[0].daily_quota), (2, 1_000));

    // other.test at level 5 bounces a third of its mail (bad addresses): down to 4 the next day, once.
    env.core.set_domain_level("other.test", 5).await.expect("level");
    for k in 0..3 {
        let to: Vec<String> = (0..50).map(|i| format!("x{}@dest.test", k * 50 + i)).collect();
        send(&env, "other.test", &to, TriggerType::Batch).await;
    }
    let claimed = claim(&env, "w", 1_000).await;
    assert_eq!(claimed.len(), 150);
    let bad: std::collections::HashSet<i64> = claimed.iter().take(50).map(|d| d.delivery_id).collect();
    settle(&env, &claimed, |d| {
        if bad.contains(&d.delivery_id) {
            AttemptResult::Rejected {
                reply: "550 5.1.1 no such user".into(),
            }
        } else {
            delivered(d)
        }
    })
    .await;
    assert!(
        env.core.evaluate_levels().await.expect("eval").is_empty(),
        "today's drop counts tomorrow"
    );
    env.clock.set(T0 - T0 % DAY_MS + DAY_MS + 3_600_000);
    evaluate_one_move(&env, "other.test", 5, 4).await;
    assert!(env.core.evaluate_levels().await.expect("eval").is_empty(), "once a day");
    env.clock.advance(DAY_MS);
    assert!(
        env.core.evaluate_levels().await.expect("eval").is_empty(),
        "a quiet day changes nothing"
    );
    assert_eq!(
        level(&env).await,
        vec![("other.test".to_string(), 4), ("sender.test".to_string(), 2)]
    );
}

async fn holds(url: Option<String>) {
    holds_over_the_allowance(setup(url, &[5, 10]).await).await;
}

async fn concurrent(url: Option<String>) {
    concurrent_claims_share_the_allowance(setup(url, &[5]).await).await;
}

async fn levels(url: Option<String>) {
    levels_move_with_volume_and_quality(setup(url, &[]).await).await;
}

macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name(None).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    mailpush_testkit::postgres::on_schema(concat!("warmup_", stringify!($name)), |url| super::$name(Some(url)))
                        .await;
                }
            )*
        }
    };
}

both_backends!(holds, concurrent, levels);
