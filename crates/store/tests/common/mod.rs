//! The harness shared by the store's conformance suites: every case is an async fn taking a [`Ctx`] and runs
//! against SQLite (a fresh file per test) and, when `MAILPUSH_TEST_POSTGRES_URL` is set, against PostgreSQL in
//! a schema of its own (created for the test, dropped after it), so tests run in parallel and leave nothing.

#![allow(dead_code)] // each test file uses a different part of the harness

use std::future::Future;

use mailpush_model::{EventKind, Lane, MessageId, RecipientKind, SendStatus};
use mailpush_store::{
    Account, AccountId, AttemptResult, Backend, ClaimRequest, ClaimedDelivery, DeliveryOutcome, NewAccount, NewEvent,
    NewMessage, NewRecipient, NewSendTask, StatCounters, StatsQuery, Store, StoreOptions, day_of,
};

/// What a case gets: a store, and the URL to open more stores on the same database (other "processes").
pub struct Ctx {
    pub store: Store,
    pub url: String,
    pub _dir: Option<tempfile::TempDir>,
}

impl Ctx {
    pub async fn open(&self, opts: StoreOptions) -> Store {
        Store::open(&self.url, opts)
            .await
            .expect("open another store on the same database")
    }
}

pub async fn run_sqlite<F, Fut>(case: F)
where
    F: FnOnce(Ctx) -> Fut,
    Fut: Future<Output = ()>,
{
    // The cases name UTC days (T0 is a UTC midnight): the calendar zone is UTC.
    mailpush_model::time_zone::set_current(mailpush_model::TimeZone::utc());
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite:{}", dir.path().join("mailpush.db").display());
    let store = Store::open(&url, StoreOptions::default())
        .await
        .expect("open sqlite store");
    assert_eq!(store.backend(), Backend::Sqlite);
    case(Ctx {
        store,
        url,
        _dir: Some(dir),
    })
    .await;
}

pub async fn run_postgres<F, Fut>(case: F)
where
    F: FnOnce(Ctx) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    mailpush_model::time_zone::set_current(mailpush_model::TimeZone::utc());
    mailpush_testkit::postgres::on_schema("mp_test", |url| async move {
        let store = Store::open(&url, StoreOptions::default())
            .await
            .expect("open postgres store");
        assert_eq!(store.backend(), Backend::Postgres);
        case(Ctx {
            store: store.clone(),
            url,
            _dir: None,
        })
        .await;
        store.close().await;
    })
    .await;
}

// ---------------------------------------------------------------------------------------------------------
// Fixtures the suites share

/// One day in Unix ms.
pub const DAY: i64 = 86_400_000;

/// Creates the account `name` (SecretId `AKID{name}`) at `created_ms`.
pub async fn account(store: &Store, name: &str, created_ms: i64) -> Account {
    store
        .accounts()
        .create_account(NewAccount {
            name: name.into(),
            app_id: 1,
            secret_id: format!("AKID{name}"),
            secret_key_sealed: vec![1, 2, 3],
            created_ms,
        })
        .await
        .expect("create account")
}

/// A `To` recipient (domain after the `@`): admitted with [`SendStatus::Ok`], else refused as blacklisted.
pub fn rcpt(address: &str, send_status: SendStatus) -> NewRecipient {
    NewRecipient {
        address: address.into(),
        domain: address.split('@').nth(1).unwrap_or("x").into(),
        kind: RecipientKind::To,
        send_status,
        deliver_message: (!send_status.is_ok()).then(|| "the recipient is on a blacklist".to_string()),
    }
}

/// An admitted `To` recipient (see [`rcpt`]).
pub fn to(address: &str) -> NewRecipient {
    rcpt(address, SendStatus::Ok)
}

/// Admitted `To` recipients, one per address.
pub fn to_all(addresses: &[&str]) -> Vec<NewRecipient> {
    addresses.iter().map(|a| to(a)).collect()
}

/// A trigger-lane message of `account` from `from` (envelope and header), accepted and due at `at`.
pub fn message(account: AccountId, from: &str, at: i64, expires_ms: i64, recipients: Vec<NewRecipient>) -> NewMessage {
    NewMessage {
        id: MessageId::generate(),
        account_id: account,
        envelope_from: from.into(),
        from_address: from.into(),
        subject: "s".into(),
        lane: Lane::Trigger,
        request_ms: at,
        not_before_ms: at,
        expires_ms,
        body: b"hi".to_vec(),
        recipients,
        template_id: 0,
        tls_requirement: mailpush_model::TlsRequirement::None,
    }
}

/// A one-off send task of template 1 from `a@x.example` to the list `receiver`, starting at `at_ms`.
pub fn send_task(account: AccountId, receiver: i64, at_ms: i64) -> NewSendTask {
    NewSendTask {
        account_id: account,
        receiver_id: receiver,
        from_address: "a@x.example".into(),
        subject: "s".into(),
        reply_to: None,
        task_type: 1,
        template_id: 1,
        template_data: String::new(),
        unsubscribe: String::new(),
        ad_location: 0,
        begin_ms: at_ms,
        interval_hours: 0,
        term_cycle: 0,
        created_ms: at_ms,
    }
}

/// An event of `kind` for `recipient` of message `id` at `at_ms`, with no reason, link or user agent.
pub fn event(account: AccountId, id: &MessageId, recipient: &str, kind: EventKind, at_ms: i64) -> NewEvent {
    NewEvent {
        account_id: account,
        message_id: id.clone(),
        recipient: recipient.into(),
        kind,
        at_ms,
        reason: String::new(),
        bounce_type: None,
        link: None,
        user_agent: None,
    }
}

/// Enqueues each of `messages`, in order.
pub async fn enqueue_all(store: &Store, messages: &[&NewMessage]) {
    for m in messages {
        store.queue().enqueue((*m).clone()).await.expect("enqueue");
    }
}

/// Leases up to `limit` deliveries due at `now_ms` to `worker` for `lease_ms`.
pub async fn claim(store: &Store, worker: &str, limit: usize, lease_ms: i64, now_ms: i64) -> Vec<ClaimedDelivery> {
    store
        .queue()
        .claim(ClaimRequest {
            worker: worker.into(),
            limit,
            lease_ms,
            now_ms,
        })
        .await
        .expect("claim")
}

/// The outcome `result` of the attempt at `c` that ended at `at_ms`, at the MX `remote`.
pub fn outcome(c: &ClaimedDelivery, at_ms: i64, result: AttemptResult, remote: Option<String>) -> DeliveryOutcome {
    DeliveryOutcome {
        delivery_id: c.delivery_id,
        lease: c.lease,
        at_ms,
        result,
        remote,
    }
}

/// A `250 ok` delivery, whatever the recipient: the `result` of [`deliver_due`] where every attempt succeeds.
pub fn delivered(_: &str) -> AttemptResult {
    AttemptResult::Delivered { reply: "250 ok".into() }
}

/// Claims up to `limit` deliveries due at `now_ms` (worker "w", 60 s lease) and reports `result(recipient)` for
/// each at `at_ms`, at the MX `remote`; returns, per outcome, whether it was applied.
pub async fn deliver_due(
    store: &Store,
    limit: usize,
    now_ms: i64,
    at_ms: i64,
    remote: Option<&str>,
    result: impl Fn(&str) -> AttemptResult,
) -> Vec<bool> {
    let outcomes = claim(store, "w", limit, 60_000, now_ms)
        .await
        .iter()
        .map(|c| outcome(c, at_ms, result(&c.recipient), remote.map(str::to_string)))
        .collect();
    store.queue().record_outcomes(outcomes).await.expect("record")
}

/// Which of `addresses` the blacklists block for `account`: bounces since `bounce_since_ms`, custom entries in
/// force at `now_ms`.
pub async fn blacklisted(
    store: &Store,
    account: AccountId,
    addresses: &[String],
    bounce_since_ms: i64,
    now_ms: i64,
) -> Vec<String> {
    store
        .suppression()
        .blacklisted(account, addresses, bounce_since_ms, now_ms)
        .await
        .expect("blacklisted")
}

/// The account's counters summed over the UTC days of `[from_ms, to_ms]`, optionally of one sending and one
/// receiving domain.
pub async fn stats(
    store: &Store,
    account: &Account,
    from: i64,
    to: i64,
    send: Option<&str>,
    recv: Option<&str>,
) -> StatCounters {
    let rows = store
        .stats()
        .daily_stats(&StatsQuery {
            account_id: account.id,
            from_day: day_of(from),
            to_day: day_of(to),
            send_domain: send.map(str::to_string),
            recv_domain: recv.map(str::to_string),
        })
        .await
        .expect("stats");
    let mut total = StatCounters::default();
    for r in rows {
        total.add(&r.counters);
    }
    total
}

macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    crate::common::run_sqlite(crate::$case).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    crate::common::run_postgres(crate::$case).await;
                }
            )*
        }
    };
}
