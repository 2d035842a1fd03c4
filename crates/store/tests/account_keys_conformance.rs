//! Conformance cases for accounts' API keys (migration 0035): up to two active keys, lookups by any active
//! SecretId, revocation refusing the last key, rotation, last-use days; on SQLite and (with
//! `MAILPUSH_TEST_POSTGRES_URL`) PostgreSQL.

use mailpush_store::{Account, RevokeOutcome, Store, StoreError};

const T0: i64 = 1_700_000_000_000;

#[macro_use]
mod common;
use common::Ctx;

conformance!(
    a_new_account_has_its_first_key_active,
    a_second_key_authenticates_and_a_third_is_refused,
    revoking_refuses_the_last_key_and_stops_lookups,
    rotation_replaces_every_active_key,
    last_use_is_recorded_by_day,
);

/// The account an API request presenting `secret_id` authenticates as.
async fn lookup(store: &Store, secret_id: &str) -> Option<Account> {
    store.accounts().account_by_secret_id(secret_id).await.expect("lookup")
}

async fn a_new_account_has_its_first_key_active(ctx: Ctx) {
    let store = &ctx.store;
    let a = common::account(store, "a", T0).await;
    let keys = store.account_keys().list_keys(a.id).await.expect("list");
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].secret_id, a.secret_id);
    assert!(keys[0].is_active());
    assert_eq!(keys[0].created_ms, T0);
    let found = lookup(store, &a.secret_id).await.expect("found");
    assert_eq!(found.id, a.id);
    assert_eq!(found.secret_key_sealed, a.secret_key_sealed);
}

async fn a_second_key_authenticates_and_a_third_is_refused(ctx: Ctx) {
    let store = &ctx.store;
    let a = common::account(store, "a", T0).await;
    let b = common::account(store, "b", T0).await;
    let k2 = store
        .account_keys()
        .add_key(a.id, "AKIDsecond", b"sealed2", T0 + 1, 2)
        .await
        .expect("second key");
    assert!(k2.is_active());
    let found = lookup(store, "AKIDsecond").await.expect("found");
    assert_eq!(found.id, a.id);
    assert_eq!(found.secret_id, "AKIDsecond");
    assert_eq!(found.secret_key_sealed, b"sealed2".to_vec());
    // The first key still works.
    assert!(lookup(store, &a.secret_id).await.is_some());
    let third = store.account_keys().add_key(a.id, "AKIDthird", b"s3", T0 + 2, 2).await;
    assert!(matches!(third, Err(StoreError::LimitReached(_))), "{third:?}");
    // A SecretId is unique across accounts.
    let taken = store.account_keys().add_key(b.id, "AKIDsecond", b"s", T0, 2).await;
    assert!(matches!(taken, Err(StoreError::Conflict(_))), "{taken:?}");
    let unknown = store.account_keys().add_key(9999, "AKIDnobody", b"s", T0, 2).await;
    assert!(matches!(unknown, Err(StoreError::NotFound)), "{unknown:?}");
    assert_eq!(store.account_keys().list_keys(a.id).await.expect("list").len(), 2);
    assert_eq!(store.account_keys().list_keys(b.id).await.expect("list").len(), 1);
}

async fn revoking_refuses_the_last_key_and_stops_lookups(ctx: Ctx) {
    let store = &ctx.store;
    let a = common::account(store, "a", T0).await;
    let b = common::account(store, "b", T0).await;
    let keys = store.account_keys();
    assert_eq!(
        keys.revoke_key(a.id, &a.secret_id, T0).await.expect("revoke"),
        RevokeOutcome::LastKey
    );
    keys.add_key(a.id, "AKIDsecond", b"s2", T0, 2).await.expect("second");
    // Another account's key is not this account's to revoke.
    assert_eq!(
        keys.revoke_key(a.id, &b.secret_id, T0).await.expect("revoke"),
        RevokeOutcome::NotFound
    );
    assert_eq!(
        keys.revoke_key(a.id, &a.secret_id, T0 + 5).await.expect("revoke"),
        RevokeOutcome::Revoked
    );
    assert!(lookup(store, &a.secret_id).await.is_none());
    assert!(lookup(store, "AKIDsecond").await.is_some());
    let listed = keys.list_keys(a.id).await.expect("list");
    assert_eq!(listed[0].revoked_ms, Some(T0 + 5));
    assert!(listed[1].is_active());
    // Revoked keys are not revoked again, and the one left is the last.
    assert_eq!(
        keys.revoke_key(a.id, &a.secret_id, T0).await.expect("revoke"),
        RevokeOutcome::NotFound
    );
    assert_eq!(
        keys.revoke_key(a.id, "AKIDsecond", T0).await.expect("revoke"),
        RevokeOutcome::LastKey
    );
    // With one revoked and one active, a new second key may be added.
    keys.add_key(a.id, "AKIDthird", b"s3", T0, 2).await.expect("third");
}

async fn rotation_replaces_every_active_key(ctx: Ctx) {
    let store = &ctx.store;
    let a = common::account(store, "a", T0).await;
    let keys = store.account_keys();
    keys.add_key(a.id, "AKIDsecond", b"s2", T0, 2).await.expect("second");
    let new = keys.rotate_key(a.id, "AKIDnew", b"sn", T0 + 9).await.expect("rotate");
    assert!(new.is_active());
    assert!(lookup(store, &a.secret_id).await.is_none());
    assert!(lookup(store, "AKIDsecond").await.is_none());
    let found = lookup(store, "AKIDnew").await.expect("found");
    assert_eq!(found.id, a.id);
    let active: Vec<_> = keys
        .list_keys(a.id)
        .await
        .expect("list")
        .into_iter()
        .filter(|k| k.is_active())
        .collect();
    assert_eq!(active.len(), 1);
    assert!(matches!(
        keys.rotate_key(9999, "AKIDx", b"s", T0).await,
        Err(StoreError::NotFound)
    ));
}

async fn last_use_is_recorded_by_day(ctx: Ctx) {
    let store = &ctx.store;
    let a = common::account(store, "a", T0).await;
    let keys = store.account_keys();
    keys.touch_key(&a.secret_id, 19_700).await.expect("touch");
    keys.touch_key(&a.secret_id, 19_699).await.expect("older day leaves it");
    keys.touch_key("AKIDunknown", 19_700).await.expect("unknown is a no-op");
    let listed = keys.list_keys(a.id).await.expect("list");
    assert_eq!(listed[0].last_used_day, Some(19_700));
}

/// An account created before migration 0035 keeps its key: the migration moves it into `account_api_keys`.
#[tokio::test]
async fn the_migration_moves_every_existing_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("mailpush.db");
    let url = format!("sqlite:{}", path.display());
    {
        let mut before = sqlx::migrate!("./migrations/sqlite");
        let older: Vec<_> = before.migrations.iter().filter(|m| m.version < 35).cloned().collect();
        before.migrations = older.into();
        let opts = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true);
        let pool = sqlx::SqlitePool::connect_with(opts).await.expect("pool");
        before.run(&pool).await.expect("migrations before 0035");
        sqlx::query(
            "INSERT INTO accounts (name, app_id, secret_id, secret_key_sealed, created_ms, suspended) \
             VALUES ('old', 7, 'AKIDold', x'0102', 1234, 0)",
        )
        .execute(&pool)
        .await
        .expect("an account of the older schema");
        pool.close().await;
    }
    let store = Store::open(&url, mailpush_store::StoreOptions::default())
        .await
        .expect("open, applying 0035");
    let found = lookup(&store, "AKIDold")
        .await
        .expect("the old key still authenticates");
    assert_eq!(
        (found.name.as_str(), found.secret_key_sealed.as_slice()),
        ("old", &[1u8, 2][..])
    );
    let keys = store.account_keys().list_keys(found.id).await.expect("list");
    assert_eq!(keys.len(), 1);
    assert_eq!((keys[0].created_ms, keys[0].is_active()), (1234, true));
}
