//! What the store benches share: the account they send as and the mail they enqueue (one recipient, a 2 KB
//! body, as the load tool sends).

#![allow(dead_code)]

use mailpush_model::{
    AccountId,
    queue::{NewMessage, NewRecipient},
};
use mailpush_model::{MessageId, RecipientKind};
use mailpush_store::{NewAccount, Store};

/// The system clock in Unix ms.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A trigger mail to `m<seq>@example.org`, accepted at `now` (Unix ms).
pub fn message(account: AccountId, seq: usize, now: i64) -> NewMessage {
    let id = MessageId::generate();
    let rcpt = format!("m{seq}@example.org");
    NewMessage {
        template_id: 0,
        tls_requirement: mailpush_model::TlsRequirement::None,
        envelope_from: format!("bounce+{id}@shop.example.com"),
        id,
        account_id: account,
        from_address: "noreply@shop.example.com".into(),
        subject: "Your order has shipped".into(),
        lane: mailpush_model::Lane::Batch,
        request_ms: now,
        not_before_ms: now,
        expires_ms: now + 72 * 3_600_000,
        // A 2 KB body, as in the load tool.
        body: vec![b'x'; 2048],
        recipients: vec![NewRecipient {
            address: rcpt,
            domain: "example.org".into(),
            kind: RecipientKind::To,
            send_status: mailpush_model::SendStatus::Ok,
            deliver_message: None,
        }],
    }
}

/// The account `bench`.
pub async fn setup(store: &Store) -> AccountId {
    store
        .accounts()
        .create_account(NewAccount {
            name: "bench".into(),
            app_id: 1_300_000_000,
            secret_id: "AKIDbench".into(),
            secret_key_sealed: b"sealed".to_vec(),
            created_ms: now_ms(),
        })
        .await
        .expect("account")
        .id
}

/// Enqueues `n` mails at once (what a busy API process has in flight: the store commits them in groups).
pub async fn enqueue_concurrent(store: &Store, account: AccountId, n: usize, now: i64) {
    let mut set = tokio::task::JoinSet::new();
    for i in 0..n {
        let store = store.clone();
        set.spawn(async move { store.queue().enqueue(message(account, i, now)).await.expect("enqueue") });
    }
    while let Some(r) = set.join_next().await {
        r.expect("task");
    }
}
