//! Admission limits with a controllable clock: the 21st send in one second, the 11th mail to one
//! recipient in an hour and the 501st recipient of a level-1 domain's day each get their code, and pass again in
//! the next second / hour / day. Runs the real `Mailpush` facade on SQLite (and on PostgreSQL when
//! `MAILPUSH_TEST_POSTGRES_URL` is set, in its own schema).

use std::sync::Arc;

use mailpush_core::{AccountContext, Mailpush};
use mailpush_model::{ErrorCode, ManualClock, TriggerType};

mod common;
use common::{DAY_MS, T0};

struct Env {
    core: Mailpush,
    clock: Arc<ManualClock>,
    account: AccountContext,
    _dir: tempfile::TempDir,
}

async fn setup(database_url: Option<String>) -> Env {
    let w = common::world(database_url, &["sender.test"], |_| {}).await;
    Env {
        core: w.core,
        clock: w.clock,
        account: w.account,
        _dir: w.dir,
    }
}

async fn send(env: &Env, to: &[String]) -> Result<(), ErrorCode> {
    env.core
        .send_email(
            &env.account,
            common::simple_mail("news@sender.test", to, TriggerType::Batch),
        )
        .await
        .map(|_| ())
        .map_err(|e| e.to_api().code)
}

fn rcpt(i: usize) -> String {
    format!("user{i}@dest.test")
}

async fn rate_limit(env: Env) {
    for i in 0..20 {
        assert_eq!(send(&env, &[rcpt(i)]).await, Ok(()), "send {i}");
    }
    assert_eq!(send(&env, &[rcpt(20)]).await, Err(ErrorCode::RequestLimitExceeded));
    env.clock.advance(999);
    assert_eq!(send(&env, &[rcpt(20)]).await, Err(ErrorCode::RequestLimitExceeded));
    env.clock.advance(1);
    assert_eq!(send(&env, &[rcpt(20)]).await, Ok(()), "a new second");
}

async fn recipient_hour(env: Env) {
    let to = vec!["same@dest.test".to_string()];
    for i in 0..10 {
        assert_eq!(send(&env, &to).await, Ok(()), "mail {i}");
        env.clock.advance(60_000);
    }
    assert_eq!(send(&env, &to).await, Err(ErrorCode::FailedOperationFrequencyLimit));
    // With another recipient the mail goes, and the capped one is stored refused (SendStatus 1006).
    assert_eq!(send(&env, &[to[0].clone(), rcpt(1)]).await, Ok(()));
    let date = mailpush_model::clock::date_of(T0);
    let rows = env
        .core
        .send_status(
            &env.account,
            mailpush_core::StatusRequest {
                request_date: date,
                to: Some(to[0].clone()),
                limit: 100,
                ..Default::default()
            },
        )
        .await
        .expect("status");
    assert_eq!(rows.len(), 11);
    assert_eq!(
        rows.last().map(|r| r.send_status),
        Some(mailpush_model::SendStatus::FrequencyLimit)
    );
    // The first mail (at T0) leaves the sliding hour at T0 + 1 h.
    env.clock.set(T0 + 3_599_999);
    assert_eq!(send(&env, &to).await, Err(ErrorCode::FailedOperationFrequencyLimit));
    env.clock.set(T0 + 3_600_000);
    assert_eq!(send(&env, &to).await, Ok(()), "the oldest mail left the hour");
}

async fn daily_quota(env: Env) {
    // Level 1 = 500 recipients a day; 50 per mail, each mail in its own second.
    let batch = |k: usize| (0..50).map(|i| rcpt(k * 50 + i)).collect::<Vec<_>>();
    for k in 0..10 {
        assert_eq!(send(&env, &batch(k)).await, Ok(()), "mail {k}");
        env.clock.advance(1_000);
    }
    let q = env.core.send_quota(&env.account).await.expect("quota");
    assert_eq!((q.sent_today, q.daily_quota, q.remaining_today), (500, 500, 0));
    assert_eq!(
        send(&env, &[rcpt(501)]).await,
        Err(ErrorCode::FailedOperationExceedSendLimit)
    );
    env.clock.set(T0 - T0 % DAY_MS + DAY_MS);
    assert_eq!(send(&env, &[rcpt(501)]).await, Ok(()), "a new day");
    // A higher level raises the quota.
    env.core.set_domain_level("sender.test", 2).await.expect("level");
    let q = env.core.send_quota(&env.account).await.expect("quota");
    assert_eq!((q.sent_today, q.daily_quota), (1, 1_000));
}

async fn overrides(env: Env) {
    let name = env.account.name.clone();
    env.core
        .set_account_limits(&name, Some(Some(2)), None, None)
        .await
        .expect("set");
    assert_eq!(send(&env, &[rcpt(1)]).await, Ok(()));
    assert_eq!(send(&env, &[rcpt(2)]).await, Ok(()));
    assert_eq!(send(&env, &[rcpt(3)]).await, Err(ErrorCode::RequestLimitExceeded));
    env.core
        .set_account_limits(&name, Some(None), None, Some(Some(3)))
        .await
        .expect("set");
    assert_eq!(send(&env, &[rcpt(3)]).await, Ok(()));
    assert_eq!(
        send(&env, &[rcpt(4)]).await,
        Err(ErrorCode::FailedOperationExceedSendLimit)
    );
}

macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(super::setup(None).await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    mailpush_testkit::postgres::on_schema(concat!("limits_", stringify!($name)), |url| async move {
                        super::$name(super::setup(Some(url)).await).await
                    })
                    .await;
                }
            )*
        }
    };
}

both_backends!(rate_limit, recipient_hour, daily_quota, overrides);
