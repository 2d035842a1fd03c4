//! API keys through the real `Mailpush` facade: two active keys both authenticate, a third is refused, the
//! last active key cannot be revoked, a revoked key is refused at once in this process, rotation leaves one
//! key. On SQLite (and on PostgreSQL when `MAILPUSH_TEST_POSTGRES_URL` is set, in its own schema).

use mailpush_core::CoreError;
use mailpush_model::ErrorCode;

mod common;

fn code(r: Result<impl std::fmt::Debug, CoreError>) -> ErrorCode {
    match r {
        Err(CoreError::Refused(e)) => e.code,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

async fn two_keys_authenticate_and_revocation_is_guarded(database_url: Option<String>) {
    let w = common::world(database_url, &[], |_| {}).await;
    let (core, account) = (&w.core, &w.account);
    let keys = core.list_api_keys(account).await.expect("list");
    assert_eq!(keys.len(), 1);
    let first = keys[0].secret_id.clone();
    let (ctx, _) = core.credential(&first).await.expect("lookup").expect("first key");
    assert_eq!(ctx.id, account.id);

    let second = core.create_api_key(account).await.expect("second key");
    assert_eq!(second.app_id, account.app_id);
    let (ctx, key) = core
        .credential(&second.secret_id)
        .await
        .expect("lookup")
        .expect("second key");
    assert_eq!((ctx.id, key.as_str()), (account.id, second.secret_key.as_str()));
    assert!(
        core.credential(&first).await.expect("lookup").is_some(),
        "the first key still works"
    );
    assert_eq!(code(core.create_api_key(account).await), ErrorCode::LimitExceeded);

    // Listing never carries a secret; the use just recorded shows as today's date.
    let listed = core.list_api_keys(account).await.expect("list");
    assert_eq!(listed.len(), 2);
    let today = mailpush_model::time_zone::utc_date_of(common::T0);
    assert_eq!(listed[1].last_used.as_deref(), Some(today.as_str()));
    assert!(!format!("{listed:?}").contains(&second.secret_key));

    core.revoke_api_key(account, &first).await.expect("revoke first");
    assert!(
        core.credential(&first).await.expect("lookup").is_none(),
        "a revoked key is refused at once in this process"
    );
    assert_eq!(
        code(core.revoke_api_key(account, &second.secret_id).await),
        ErrorCode::FailedOperation,
        "the last active key stays"
    );
    assert_eq!(
        code(core.revoke_api_key(account, &first).await),
        ErrorCode::ResourceNotFound
    );
    assert!(core.credential(&second.secret_id).await.expect("lookup").is_some());

    // Rotation (the CLI's rotate-key): one new key, the others refused.
    let third = core.create_api_key(account).await.expect("a second key again");
    let rotated = core.rotate_account_key(&account.name).await.expect("rotate");
    for old in [&second.secret_id, &third.secret_id] {
        assert!(core.credential(old).await.expect("lookup").is_none(), "{old}");
    }
    let (_, key) = core
        .credential(&rotated.secret_id)
        .await
        .expect("lookup")
        .expect("rotated");
    assert_eq!(key, rotated.secret_key);
    let active = core
        .list_api_keys(account)
        .await
        .expect("list")
        .into_iter()
        .filter(|k| k.is_active())
        .count();
    assert_eq!(active, 1);
}

#[tokio::test]
async fn api_keys_sqlite() {
    two_keys_authenticate_and_revocation_is_guarded(None).await;
}

#[tokio::test]
async fn api_keys_postgres() {
    mailpush_testkit::postgres::on_schema("api_keys", |url| {
        two_keys_authenticate_and_revocation_is_guarded(Some(url))
    })
    .await;
}
