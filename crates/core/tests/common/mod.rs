//! Shared setup of the core integration tests: the real `Mailpush` facade on a temporary database with a
//! manual clock, an account allowed simple content and links, and verified sending domains arranged directly
//! in the store (no DNS needed).

#![allow(dead_code)]

use std::sync::Arc;

use mailpush_core::{AccountContext, Mailpush, SendContent, SendRequest, Settings};
use mailpush_model::{Clock, ManualClock, TriggerType};
use mailpush_store::{
    AttemptResult, ClaimedDelivery, DeliveryOutcome, IdentityCheck, NewIdentity, NewSender, Store, StoreOptions,
};

/// 2026-11-26 10:00:00.000 UTC.
pub const T0: i64 = 1_796_032_800_000;
pub const DAY_MS: i64 = 86_400_000;

/// A facade, the same database as a store, the clock and the account.
pub struct World {
    pub core: Mailpush,
    /// The same database, for the rows these tests arrange and inspect beyond the API.
    pub store: Store,
    pub clock: Arc<ManualClock>,
    pub account: AccountContext,
    pub dir: tempfile::TempDir,
}

/// Opens the facade at [`T0`] with `tweak`ed settings (on `database_url`, or SQLite in a temporary directory)
/// and creates the account; `senders` become verified sender addresses (`news@<domain>`).
pub async fn world(database_url: Option<String>, domains: &[&str], tweak: impl FnOnce(&mut Settings)) -> World {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut settings = Settings {
        data_dir: dir.path().to_path_buf(),
        database_url,
        master_key: Some("k".repeat(48)),
        // The tests move the clock to the next UTC midnight: the calendar is UTC.
        time_zone: "UTC".into(),
        ..Settings::default()
    };
    tweak(&mut settings);
    let clock = ManualClock::new(T0);
    let core = Mailpush::open(settings, clock.clone()).await.expect("open");
    let store = Store::open(&core.settings().database_url(), StoreOptions::default())
        .await
        .expect("store");
    let name = format!("acct{}", std::process::id());
    core.create_account_with_policy(
        &name,
        mailpush_model::templates::AccountPolicy {
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
    for domain in domains {
        verified_sender(&store, &account, domain).await;
    }
    World {
        core,
        store,
        clock,
        account,
        dir,
    }
}

/// A verified domain with the sender address `news@<domain>`, written to the store.
async fn verified_sender(store: &Store, account: &AccountContext, domain: &str) {
    let identity = store
        .identities()
        .create_identity(NewIdentity {
            account_id: account.id,
            domain: domain.into(),
            dkim_option: 0,
            created_ms: T0,
            keys: Vec::new(),
            max_per_account: 10,
        })
        .await
        .expect("identity");
    store
        .identities()
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
        .identities()
        .create_sender(NewSender {
            account_id: account.id,
            identity_id: identity.id,
            address: format!("news@{domain}"),
            sender_name: String::new(),
            created_ms: T0,
            max_per_domain: 10,
        })
        .await
        .expect("sender");
}

/// A text mail (`Simple` content) from `from` to `to`.
pub fn simple_mail(from: &str, to: &[String], trigger: TriggerType) -> SendRequest {
    SendRequest {
        from: from.into(),
        destination: to.to_vec(),
        subject: format!("hello {}", to[0]),
        content: Some(SendContent::Simple {
            html: None,
            text: Some("hi".into()),
        }),
        trigger,
        ..SendRequest::default()
    }
}

/// Records an outcome for each claimed delivery at the clock's time, as the worker does; each must apply.
pub async fn settle(
    store: &Store,
    clock: &ManualClock,
    claimed: &[ClaimedDelivery],
    result: impl Fn(&ClaimedDelivery) -> AttemptResult,
) {
    let outcomes = claimed
        .iter()
        .map(|d| DeliveryOutcome {
            delivery_id: d.delivery_id,
            lease: d.lease,
            at_ms: clock.now_ms(),
            result: result(d),
            remote: None,
        })
        .collect();
    let applied = store.queue().record_outcomes(outcomes).await.expect("outcomes");
    assert!(applied.iter().all(|a| *a));
}
