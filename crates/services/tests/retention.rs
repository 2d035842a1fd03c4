//! The retention service started by `mailpush_services::start`, on the core's test clock: mail final more than
//! `retention_days` ago disappears, younger mail and the statistics rollup stay. On SQLite, and on PostgreSQL
//! (its own schema) when `MAILPUSH_TEST_POSTGRES_URL` is set.

use std::sync::Arc;
use std::time::Duration;

use mailpush_core::{Mailpush, Settings};
use mailpush_model::{
    AccountId,
    queue::{NewMessage, NewRecipient},
};
use mailpush_model::{ManualClock, MessageId, RecipientKind};
use mailpush_store::{AttemptResult, ClaimRequest, DeliveryOutcome, StatusQuery, Store};

/// 2026-11-26 10:00:00.000 UTC.
const T0: i64 = 1_796_032_800_000;
const DAY: i64 = 86_400_000;

async fn open(database_url: Option<String>, dir: &tempfile::TempDir, clock: Arc<ManualClock>) -> Mailpush {
    let settings = Settings {
        data_dir: dir.path().to_path_buf(),
        database_url,
        master_key: Some("k".repeat(48)),
        retention_days: 30,
        retention_check_secs: 1,
        // Nothing else runs on its own during the test.
        identity_recheck_secs: 0,
        level_eval_secs: 0,
        bounce_check_secs: 0,
        ..Settings::default()
    };
    Mailpush::open(settings, clock).await.expect("open")
}

async fn send_and_deliver(store: &Store, account: AccountId, at: i64) -> MessageId {
    let id = MessageId::generate();
    store
        .queue()
        .enqueue(NewMessage {
            id: id.clone(),
            account_id: account,
            envelope_from: "news@shop.example".into(),
            from_address: "news@shop.example".into(),
            subject: "s".into(),
            lane: mailpush_model::Lane::Trigger,
            request_ms: at,
            not_before_ms: at,
            expires_ms: at + 3 * DAY,
            body: b"hello".to_vec(),
            recipients: vec![NewRecipient {
                address: "ok@gmail.com".into(),
                domain: "gmail.com".into(),
                kind: RecipientKind::To,
                send_status: mailpush_model::SendStatus::Ok,
                deliver_message: None,
            }],
            template_id: 0,
            tls_requirement: mailpush_model::TlsRequirement::None,
        })
        .await
        .expect("enqueue");
    let claimed = store
        .queue()
        .claim(ClaimRequest {
            worker: "test".into(),
            limit: 10,
            lease_ms: 60_000,
            now_ms: at,
        })
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 1);
    store
        .queue()
        .record_outcomes(vec![DeliveryOutcome {
            delivery_id: claimed[0].delivery_id,
            lease: claimed[0].lease,
            at_ms: at + 1,
            result: AttemptResult::Delivered { reply: "250 ok".into() },
            remote: None,
        }])
        .await
        .expect("outcome");
    id
}

async fn recipients(store: &Store, account: AccountId, at: i64) -> usize {
    store
        .queue()
        .status(StatusQuery {
            account_id: account,
            from_ms: at - DAY,
            to_ms: at + DAY,
            message_id: None,
            to_address: None,
            offset: 0,
            limit: 100,
        })
        .await
        .expect("status")
        .len()
}

async fn retention_service_prunes_old_mail(database_url: Option<String>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::new(T0);
    let core = open(database_url, &dir, clock.clone()).await;
    // The same database, for the rows this test arranges and inspects beyond the API.
    let store = Store::open(&core.settings().database_url(), mailpush_store::StoreOptions::default())
        .await
        .expect("store");
    let account = core.create_account("shop").await.expect("account");
    let account = store
        .accounts()
        .account_by_secret_id(&account.secret_id)
        .await
        .expect("lookup")
        .expect("account")
        .id;
    send_and_deliver(&store, account, T0).await;
    send_and_deliver(&store, account, T0 + 10 * DAY).await;
    assert_eq!(recipients(&store, account, T0).await, 1);

    // Day 35: the first mail's final state is 35 days old, the second's 25.
    clock.set(T0 + 35 * DAY);
    assert_eq!(core.retention_cutoff_ms(), Some(T0 + 5 * DAY));
    let services = mailpush_services::start(&core).await.expect("services");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while recipients(&store, account, T0).await > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the retention service did not prune the old mail"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        recipients(&store, account, T0 + 10 * DAY).await,
        1,
        "younger mail stays"
    );
    services.shutdown().await;

    // The explicit pass finds nothing more; 0 days keeps everything.
    let pass = core.run_retention(None).await.expect("pass");
    assert_eq!(pass.pruned.messages, 0);
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_service_prunes_old_mail_sqlite() {
    retention_service_prunes_old_mail(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_service_prunes_old_mail_postgres() {
    let Ok(base) = std::env::var("MAILPUSH_TEST_POSTGRES_URL") else {
        eprintln!("MAILPUSH_TEST_POSTGRES_URL not set: skipping the PostgreSQL run");
        return;
    };
    let schema = format!("retention_{}", std::process::id());
    let pool = sqlx::PgPool::connect(&base).await.expect("connect");
    for sql in [
        format!("DROP SCHEMA IF EXISTS {schema} CASCADE"),
        format!("CREATE SCHEMA {schema}"),
    ] {
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&pool)
            .await
            .expect("schema");
    }
    let sep = if base.contains('?') { '&' } else { '?' };
    retention_service_prunes_old_mail(Some(format!("{base}{sep}options=-c%20search_path%3D{schema}"))).await;
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
        .execute(&pool)
        .await
        .expect("drop");
}
