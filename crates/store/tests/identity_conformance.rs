//! Conformance of the identity repositories (domains, DKIM keys, sender addresses) on SQLite and, when
//! `MAILPUSH_TEST_POSTGRES_URL` is set, PostgreSQL. Same harness as `conformance.rs` (copied so the two
//! suites stay independent files).

#![allow(dead_code)]

use mailpush_store::{IdentityCheck, IdentityRow, NewDkimKey, NewIdentity, NewSender, Store, StoreError, StoreOptions};

const T0: i64 = 1_700_000_000_000;

#[macro_use]
mod common;
use common::Ctx;

conformance!(
    identities_scoped_by_account,
    keys_replaced_and_cascaded,
    senders_and_passwords,
    recheck_list,
    limits_hold_under_concurrent_creates
);

fn key(selector: &str) -> NewDkimKey {
    NewDkimKey {
        selector: selector.into(),
        algorithm: "ed25519".into(),
        public_key: format!("PUB{selector}"),
        private_key_sealed: format!("sealed{selector}").into_bytes(),
    }
}

fn identity(account: i64, domain: &str) -> NewIdentity {
    NewIdentity {
        account_id: account,
        domain: domain.into(),
        dkim_option: 3,
        created_ms: T0,
        keys: vec![key("s1")],
        max_per_account: 10,
    }
}

/// Creates the domain `n`.
async fn create(store: &Store, n: NewIdentity) -> IdentityRow {
    store.identities().create_identity(n).await.expect("create identity")
}

async fn identities_scoped_by_account(ctx: Ctx) {
    let store = &ctx.store;
    let identities = store.identities();
    let a = common::account(store, "a", T0).await.id;
    let b = common::account(store, "b", T0).await.id;
    let row = create(store, identity(a, "a.example.com")).await;
    assert!(!row.verified);
    assert!(matches!(
        identities.create_identity(identity(b, "a.example.com")).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(identities.identity_owner("a.example.com").await.unwrap(), Some(a));
    assert_eq!(identities.identity_owner("none.example.com").await.unwrap(), None);
    assert!(identities.identity(b, "a.example.com").await.unwrap().is_none());
    assert_eq!(identities.identity(a, "a.example.com").await.unwrap().unwrap(), row);
    assert_eq!(
        identities
            .identity_for_admin("a.example.com")
            .await
            .unwrap()
            .unwrap()
            .account_id,
        a
    );
    create(store, identity(a, "b.example.com")).await;
    assert_eq!(identities.count_identities(a).await.unwrap(), 2);
    assert_eq!(identities.count_identities(b).await.unwrap(), 0);
    let page = identities.list_identities(a, 1, 10).await.unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].domain, "b.example.com");
    let check = IdentityCheck {
        verified: true,
        checks: "[]".into(),
        reason: String::new(),
        checked_ms: T0 + 5,
    };
    assert!(matches!(
        identities.record_identity_check(b, row.id, &check).await,
        Err(StoreError::NotFound)
    ));
    identities.record_identity_check(a, row.id, &check).await.unwrap();
    let got = identities.identity(a, "a.example.com").await.unwrap().unwrap();
    assert!(got.verified);
    assert_eq!(got.checked_ms, T0 + 5);
    assert!(matches!(
        identities.delete_identity(b, "a.example.com").await,
        Err(StoreError::NotFound)
    ));
    identities.delete_identity(a, "a.example.com").await.unwrap();
    assert!(identities.identity(a, "a.example.com").await.unwrap().is_none());
}

async fn keys_replaced_and_cascaded(ctx: Ctx) {
    let store = &ctx.store;
    let identities = store.identities();
    let a = common::account(store, "a", T0).await.id;
    let b = common::account(store, "b", T0).await.id;
    let row = create(store, identity(a, "k.example.com")).await;
    let keys = identities.dkim_keys(a, row.id).await.unwrap();
    assert_eq!(keys, vec![key("s1")]);
    assert!(identities.dkim_keys(b, row.id).await.unwrap().is_empty());
    assert!(matches!(
        identities.replace_dkim_keys(b, row.id, 4, vec![key("x")], T0).await,
        Err(StoreError::NotFound)
    ));
    identities
        .replace_dkim_keys(a, row.id, 4, vec![key("s2"), key("s3")], T0 + 1)
        .await
        .unwrap();
    let keys = identities.dkim_keys(a, row.id).await.unwrap();
    assert_eq!(
        keys.iter().map(|k| k.selector.as_str()).collect::<Vec<_>>(),
        ["s2", "s3"]
    );
    assert_eq!(
        identities
            .identity(a, "k.example.com")
            .await
            .unwrap()
            .unwrap()
            .dkim_option,
        4
    );
    identities.delete_identity(a, "k.example.com").await.unwrap();
    assert!(identities.dkim_keys(a, row.id).await.unwrap().is_empty());
}

async fn senders_and_passwords(ctx: Ctx) {
    let store = &ctx.store;
    let identities = store.identities();
    let a = common::account(store, "a", T0).await.id;
    let b = common::account(store, "b", T0).await.id;
    let row = create(store, identity(a, "s.example.com")).await;
    let new = |acc, addr: &str| NewSender {
        account_id: acc,
        identity_id: row.id,
        address: addr.into(),
        sender_name: "N".into(),
        created_ms: T0,
        max_per_domain: 10,
    };
    // Another account cannot attach an address to the domain.
    assert!(matches!(
        identities.create_sender(new(b, "x@s.example.com")).await,
        Err(StoreError::NotFound)
    ));
    let sender = identities.create_sender(new(a, "x@s.example.com")).await.unwrap();
    assert_eq!(sender.smtp_password_hash, None);
    assert!(matches!(
        identities.create_sender(new(a, "x@s.example.com")).await,
        Err(StoreError::Conflict(_))
    ));
    identities.create_sender(new(a, "y@s.example.com")).await.unwrap();
    assert_eq!(identities.count_senders(a, row.id).await.unwrap(), 2);
    assert_eq!(identities.count_senders(b, row.id).await.unwrap(), 0);
    assert_eq!(identities.list_senders(a).await.unwrap().len(), 2);
    assert!(identities.list_senders(b).await.unwrap().is_empty());
    assert!(identities.sender(b, "x@s.example.com").await.unwrap().is_none());
    // The database refuses to delete a domain with senders.
    assert!(identities.delete_identity(a, "s.example.com").await.is_err());
    assert!(matches!(
        identities.set_sender_password(b, "x@s.example.com", "h").await,
        Err(StoreError::NotFound)
    ));
    identities
        .set_sender_password(a, "x@s.example.com", "$argon2id$h")
        .await
        .unwrap();
    let login = identities.sender_for_login("x@s.example.com").await.unwrap().unwrap();
    assert_eq!(login.account_id, a);
    assert_eq!(login.smtp_password_hash.as_deref(), Some("$argon2id$h"));
    assert!(matches!(
        identities.delete_sender(b, "x@s.example.com").await,
        Err(StoreError::NotFound)
    ));
    identities.delete_sender(a, "x@s.example.com").await.unwrap();
    identities.delete_sender(a, "y@s.example.com").await.unwrap();
    identities.delete_identity(a, "s.example.com").await.unwrap();
}

async fn recheck_list(ctx: Ctx) {
    let store = &ctx.store;
    let identities = store.identities();
    let a = common::account(store, "a", T0).await.id;
    let b = common::account(store, "b", T0).await.id;
    let one = create(store, identity(a, "one.example.com")).await;
    let two = create(store, identity(b, "two.example.com")).await;
    create(store, identity(a, "never.example.com")).await;
    for (acc, row, at) in [(a, &one, T0), (b, &two, T0 + 10)] {
        let c = IdentityCheck {
            verified: true,
            checks: String::new(),
            reason: String::new(),
            checked_ms: at,
        };
        identities.record_identity_check(acc, row.id, &c).await.unwrap();
    }
    // Only verified domains, oldest check first, whatever the account.
    let due = identities.identities_to_recheck(T0 + 100, 10).await.unwrap();
    assert_eq!(
        due.iter().map(|r| r.domain.as_str()).collect::<Vec<_>>(),
        ["one.example.com", "two.example.com"]
    );
    let due = identities.identities_to_recheck(T0 + 5, 10).await.unwrap();
    assert_eq!(due.len(), 1);
}

/// Two "processes" (stores on one database) creating domains and senders at once never exceed the caps:
/// the count and the insert are one transaction under a lock.
async fn limits_hold_under_concurrent_creates(ctx: Ctx) {
    let a = common::account(&ctx.store, "a", T0).await.id;
    let other = ctx.open(StoreOptions::default()).await;
    let mut tasks = Vec::new();
    for i in 0..12 {
        let store = if i % 2 == 0 { ctx.store.clone() } else { other.clone() };
        tasks.push(tokio::spawn(async move {
            let mut n = identity(a, &format!("d{i}.example.com"));
            n.max_per_account = 3;
            store.identities().create_identity(n).await
        }));
    }
    let mut created = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            Ok(row) => created.push(row),
            Err(StoreError::LimitReached(_)) => {}
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert_eq!(created.len(), 3);
    assert_eq!(ctx.store.identities().count_identities(a).await.unwrap(), 3);

    let domain = created[0].id;
    let mut tasks = Vec::new();
    for i in 0..12 {
        let store = if i % 2 == 0 { ctx.store.clone() } else { other.clone() };
        tasks.push(tokio::spawn(async move {
            store
                .identities()
                .create_sender(NewSender {
                    account_id: a,
                    identity_id: domain,
                    address: format!("u{i}@x.example.com"),
                    sender_name: String::new(),
                    created_ms: T0,
                    max_per_domain: 4,
                })
                .await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(StoreError::LimitReached(_)) => {}
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert_eq!(ok, 4);
    assert_eq!(ctx.store.identities().count_senders(a, domain).await.unwrap(), 4);
    other.close().await;
}
