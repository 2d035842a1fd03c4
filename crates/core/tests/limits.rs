//! Admission limits with a controllable clock: the 21st send in one second, the 11th mail to one
//! recipient in an hour and the 501st recipient of a level-1 domain's day each get their code, and pass again in
//! the next second / hour / day. Runs the real `Mailpush` facade on SQLite (and on PostgreSQL when
//! `MAILPUSH_TEST_POSTGRES_URL` is set, in its own schema).

use std::sync::Arc;

use mailpush_core::{AccountContext, Mailpush, SendContent, SendRequest, Settings};
use mailpush_model::{ErrorCode, ManualClock, TriggerType};
use mailpush_store::{IdentityCheck, NewIdentity, NewSender};

/// 2026-11-26 10:00:00.000 UTC.
const T0: i64 = 1_796_032_800_000;
const DAY_MS: i64 = 86_400_000;

struct Env {
    core: Mailpush,
    clock: Arc<ManualClock>,
    account: AccountContext,
    _dir: tempfile::TempDir,
}

async fn setup(database_url: Option<String>) -> Env {
    let dir = tempfile::tempdir().expect("tempdir");
    let settings = Settings {
        data_dir: dir.path().to_path_buf(),
        database_url,
        master_key: Some("k".repeat(48)),
        // The tests move the clock to the next UTC midnight: the calendar is UTC.
        time_zone: "UTC".into(),
        ..Settings::default()
    };
    let clock = ManualClock::new(T0);
    let core = Mailpush::open(settings, clock.clone()).await.expect("open");
    let name = format!("acct{}", std::process::id());
    core.create_account_with_policy(
        &name,
        mailpush_core::templates::AccountPolicy {
            allow_simple_content: true,
            allow_links: true,
        },
    )
    .await
    .expect("account");
    let account = core
        .list_accounts()
        .await
        .expect("list")
        .into_iter()
        .find(|a| a.name == name)
        .expect("account listed");
    let store = core.store();
    let identity = store
        .create_identity(NewIdentity {
            account_id: account.id,
            domain: "sender.test".into(),
            dkim_option: 0,
            created_ms: T0,
            keys: Vec::new(),
            max_per_account: 10,
        })
        .await
        .expect("identity");
    store
        .record_identity_check(
            account.id,
            identity.id,
            &IdentityCheck {
                verified: true,
                checks: String::new(),
                reason: String::new(),
                checked_ms: T0,
            },
        )
        .await
        .expect("verify");
    store
        .create_sender(NewSender {
            account_id: account.id,
            identity_id: identity.id,
            address: "news@sender.test".into(),
            sender_name: String::new(),
            created_ms: T0,
            max_per_domain: 10,
        })
        .await
        .expect("sender");
    Env {
        core,
        clock,
        account,
        _dir: dir,
    }
}

fn mail(to: &[String]) -> SendRequest {
    SendRequest {
        from: "news@sender.test".into(),
        destination: to.to_vec(),
        subject: "hello".into(),
        content: Some(SendContent::Simple {
            html: None,
            text: Some("hi".into()),
        }),
        trigger: TriggerType::Batch,
        ..SendRequest::default()
    }
}

async fn send(env: &Env, to: &[String]) -> Result<(), ErrorCode> {
    env.core
        .send_email(&env.account, mail(to))
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
    assert_eq!(rows.last().map(|r| r.send_status), Some(1006));
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
                    let Some(url) = super::pg_url(stringify!($name)).await else { return };
                    super::$name(super::setup(Some(url)).await).await;
                }
            )*
        }
    };
}

both_backends!(rate_limit, recipient_hour, daily_quota, overrides);

/// A fresh schema for one test, or `None` (with a notice) when PostgreSQL is not configured.
async fn pg_url(test: &str) -> Option<String> {
    let Ok(base) = std::env::var("MAILPUSH_TEST_POSTGRES_URL") else {
        eprintln!("MAILPUSH_TEST_POSTGRES_URL not set: skipping the PostgreSQL run of {test}");
        return None;
    };
    let schema = format!("limits_{test}_{}", std::process::id());
    let pool = sqlx::PgPool::connect(&base).await.expect("connect");
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA IF EXISTS {schema} CASCADE")))
        .execute(&pool)
        .await
        .expect("drop");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&pool)
        .await
        .expect("schema");
    let sep = if base.contains('?') { '&' } else { '?' };
    Some(format!("{base}{sep}options=-c%20search_path%3D{schema}"))
}
