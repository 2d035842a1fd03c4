//! Conformance of "TLS required" (accounts and sender addresses) and of the TLS requirement each message carries
//! to the worker, on SQLite and, when `MAILPUSH_TEST_POSTGRES_URL` is set, PostgreSQL.

use mailpush_model::TlsRequirement;
use mailpush_store::{NewDkimKey, NewIdentity, NewMessage, NewSender, Store, StoreError, TlsRequiredSettings};

const T0: i64 = 1_700_000_000_000;

#[macro_use]
mod common;
use common::Ctx;

conformance!(
    account_and_sender_settings,
    the_requirement_travels_with_each_claimed_delivery
);

async fn account_with_sender(store: &Store, name: &str, domain: &str, senders: &[&str]) -> i64 {
    let account = common::account(store, name, T0).await.id;
    let identity = store
        .identities()
        .create_identity(NewIdentity {
            account_id: account,
            domain: domain.into(),
            dkim_option: 3,
            created_ms: T0,
            keys: vec![NewDkimKey {
                selector: "s1".into(),
                algorithm: "ed25519".into(),
                public_key: "PUB".into(),
                private_key_sealed: b"sealed".to_vec(),
            }],
            max_per_account: 10,
        })
        .await
        .expect("identity");
    for address in senders {
        store
            .identities()
            .create_sender(NewSender {
                account_id: account,
                identity_id: identity.id,
                address: (*address).into(),
                sender_name: String::new(),
                created_ms: T0,
                max_per_domain: 10,
            })
            .await
            .expect("sender");
    }
    account
}

async fn account_and_sender_settings(ctx: Ctx) {
    let store = ctx.store.clone();
    let a = account_with_sender(&store, "a", "a.example", &["news@a.example", "bills@a.example"]).await;
    let b = account_with_sender(&store, "b", "b.example", &["news@b.example"]).await;
    let t = store.tls_required();

    assert_eq!(t.settings(a).await.unwrap(), TlsRequiredSettings::default());
    assert!(!t.required_for(a, "news@a.example").await.unwrap());

    // One sender address.
    t.set_sender(a, "bills@a.example", true).await.unwrap();
    assert!(t.required_for(a, "bills@a.example").await.unwrap());
    assert!(!t.required_for(a, "news@a.example").await.unwrap());
    // An envelope sender that is no sender address (SMTP checks the domain only) follows the account.
    assert!(!t.required_for(a, "other@a.example").await.unwrap());
    assert_eq!(
        t.settings(a).await.unwrap(),
        TlsRequiredSettings {
            account: false,
            senders: vec!["bills@a.example".into()],
        }
    );
    // Another account's address is not the account's to change.
    assert!(matches!(
        t.set_sender(b, "bills@a.example", true).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        t.set_sender(a, "nobody@a.example", true).await,
        Err(StoreError::NotFound)
    ));

    // The whole account: every sender, known or not.
    t.set_account(a, true).await.unwrap();
    for sender in ["news@a.example", "bills@a.example", "other@a.example"] {
        assert!(t.required_for(a, sender).await.unwrap(), "{sender}");
    }
    assert!(
        !t.required_for(b, "news@b.example").await.unwrap(),
        "accounts are apart"
    );
    t.set_account(a, false).await.unwrap();
    t.set_sender(a, "bills@a.example", false).await.unwrap();
    assert_eq!(t.settings(a).await.unwrap(), TlsRequiredSettings::default());

    assert!(matches!(t.set_account(9_999, true).await, Err(StoreError::NotFound)));
    assert!(matches!(t.settings(9_999).await, Err(StoreError::NotFound)));
    assert!(!t.required_for(9_999, "x@a.example").await.unwrap());
}

async fn the_requirement_travels_with_each_claimed_delivery(ctx: Ctx) {
    let store = ctx.store.clone();
    let a = common::account(&store, "a", T0).await.id;
    let message = |to: &str, tls_requirement| NewMessage {
        tls_requirement,
        ..common::message(a, "news@a.example", T0, T0 + 3_600_000, vec![common::to(to)])
    };
    for (to, requirement) in [
        ("plain@x.example", TlsRequirement::None),
        ("verified@x.example", TlsRequirement::Verified),
        ("requiretls@x.example", TlsRequirement::RequireTls),
    ] {
        store.queue().enqueue(message(to, requirement)).await.expect("enqueue");
    }
    let mut claimed: Vec<(String, TlsRequirement)> = common::claim(&store, "w", 10, 60_000, T0)
        .await
        .into_iter()
        .map(|c| (c.recipient, c.tls_requirement))
        .collect();
    claimed.sort();
    assert_eq!(
        claimed,
        [
            ("plain@x.example".to_string(), TlsRequirement::None),
            ("requiretls@x.example".to_string(), TlsRequirement::RequireTls),
            ("verified@x.example".to_string(), TlsRequirement::Verified),
        ]
    );
}
