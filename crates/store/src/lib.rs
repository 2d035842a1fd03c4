//! mailpush persistence: accounts and the durable delivery queue, on SQLite (embedded default: one file, WAL)
//! or PostgreSQL (scale-out: many api/worker processes on many machines sharing one database).
//!
//! # The queue
//! A message is one `messages` row plus its body, and one `deliveries` row per recipient: the queue unit.
//! Workers [`Store::claim`] due deliveries under a lease and report each attempt with
//! [`Store::record_outcomes`]. A lease carries a fencing token; when it expires another worker may take the
//! delivery over, and the first worker's late outcome is then ignored. When a message's last delivery becomes
//! final its body is deleted (unless [`StoreOptions::retain_bodies`]).
//!
//! # Durability
//! [`Store::enqueue`] returns only after the message is committed and fsynced. Throughput comes from group
//! commit (concurrent enqueues share one transaction), never from weaker sync settings.
//!
//! # URLs
//! - `sqlite:/path/to/file.db` (created if missing), `sqlite::memory:` for unit tests.
//! - `postgres://user@host:port/db`. To use a schema other than the default, set the search path in the URL:
//!   `postgres://user@host/db?options=-c%20search_path%3Dmy_schema` (the schema must exist). Migrations and
//!   all tables then live in that schema; the conformance tests use this to give each test its own schema.

mod account_keys;
pub mod batch;
mod committer;
mod common;
mod engage;
mod error;
mod events;
mod handoff;
mod health;
mod identity;
mod inbound;
mod limits;
mod pg;
mod queue_admin;
mod retention;
mod screen;
mod script;
mod sources;
mod sql;
mod sqlite;
mod stats;
mod suppression;
mod templates;
mod types;
mod warmup;

use std::sync::{Arc, PoisonError};

use mailpush_model::{DeliverStatus, MessageId};
use sqlx::{PgPool, SqlitePool};

use sql::Dialect as _;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

pub use batch::{
    AddDetailsOutcome, AddDetailsRefusal, DetailPage, DetailQuery, NewReceiverDetail, NewSendTask, ReceiverDetailRow,
    ReceiverRow, SendTaskRow, TaskChunk, TaskQuery, TaskRunUpdate,
};
pub use engage::{CallbackEvent, CallbackResult, CallbackState, DeliveryContent};
pub use error::StoreError;
pub use events::{BounceType, NewEvent, RecordedEvent};
pub use handoff::{HandOffs, HandedOff};
pub use health::HealthCounters;
pub use identity::{DkimKeyRow, IdentityCheck, IdentityRow, NewDkimKey, NewIdentity, NewSender, SenderRow};
pub use inbound::{AsyncBounce, FeedbackRecorded, InboundMessage, NewComplaint};
pub use limits::{
    AccountLimitOverrides, AccountUsage, AdmissionLimits, HOUR_MS, LimitRefusal, SEND_STATUS_FREQUENCY_LIMIT,
};
pub use queue_admin::QueueTarget;
pub use retention::{FilePages, PruneBatch, PruneCounts, PruneCursor, VACUUM_AT_OPEN_MAX_BYTES};
pub use sources::{DomainSourcePool, SourceIpUsage, SourceReservation};
pub use stats::{
    ComplaintRow, DailyStats, NewWarning, StatCounters, StatsQuery, UnsubscribeConfigRow, WarningRow, day_of, domain_of,
};
pub use suppression::{
    BounceBlacklistEntry, BounceBlacklistQuery, CustomBlacklistEntry, CustomStatusFilter, RecipientScreen,
    RecipientScreenQuery, normalize as normalize_blacklist_address,
};
pub use templates::{
    AccountPolicy, NewTemplate, StoredTemplate, TemplateId, TemplatePage, TemplateStatus, TemplateSummary,
    TemplateUpdate,
};
pub use types::{
    Account, AccountId, AttemptResult, Backend, ClaimRequest, ClaimedDelivery, CommitStats, DeliveryAttempt,
    DeliveryOutcome, DeliveryStatusRow, LANES, LeaseToken, NewAccount, NewMessage, NewRecipient, QueueCounts,
    StatusQuery,
};

pub use warmup::{DomainOutcomes, DomainWarmupRow, WarmupRamp};

use types::DeliveryState;

/// Tuning for [`Store::open`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreOptions {
    /// PostgreSQL: pool size (at least 2). SQLite: size of the reader pool (writes always use one connection).
    pub max_connections: u32,
    /// Most enqueues written by one group-commit transaction.
    pub group_commit_max_batch: usize,
    /// Keep message bodies after the last delivery is final (default: purge them).
    pub retain_bodies: bool,
    /// Longest wait for a pooled connection (PostgreSQL, SQLite readers) before the operation fails with
    /// [`StoreError::Unavailable`]. The single SQLite writer is a queue, so it waits up to `operation_timeout`.
    pub acquire_timeout: std::time::Duration,
    /// PostgreSQL `statement_timeout` of every connection: the server cancels a statement running longer.
    pub statement_timeout: std::time::Duration,
    /// Client-side deadline of one store operation (connection, statements, group commit included): past it
    /// the operation is abandoned with [`StoreError::Unavailable`], so that a frozen connection, which no
    /// server-side timeout can end, does not hang the request.
    pub operation_timeout: std::time::Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            max_connections: 10,
            group_commit_max_batch: 512,
            retain_bodies: false,
            acquire_timeout: std::time::Duration::from_secs(5),
            statement_timeout: std::time::Duration::from_secs(15),
            operation_timeout: std::time::Duration::from_secs(20),
        }
    }
}

/// The connection pools of one backend.
#[derive(Clone)]
pub(crate) enum Db {
    /// All writes go through `writer` (one connection); reads through `reader`.
    Sqlite { writer: SqlitePool, reader: SqlitePool },
    /// One pool for everything.
    Postgres(PgPool),
}

impl Db {
    /// The pool for reads (SQLite: the readers; they never wait for the writer).
    pub(crate) fn reader(&self) -> sql::Pool<'_> {
        match self {
            Db::Sqlite { reader, .. } => sql::Pool::Sqlite(reader),
            Db::Postgres(pool) => sql::Pool::Postgres(pool),
        }
    }

    /// The pool for writes (SQLite: the one writer connection).
    pub(crate) fn writer(&self) -> sql::Pool<'_> {
        match self {
            Db::Sqlite { writer, .. } => sql::Pool::Sqlite(writer),
            Db::Postgres(pool) => sql::Pool::Postgres(pool),
        }
    }

    async fn insert_batch(
        &self,
        msgs: &mut [(NewMessage, Option<limits::AdmissionLimits>)],
        retain_bodies: bool,
        lease: Option<handoff::LeaseRequest<'_>>,
    ) -> Result<handoff::InsertedBatch, StoreError> {
        match self {
            Db::Sqlite { writer, .. } => sqlite::insert_batch(writer, msgs, retain_bodies, lease).await,
            Db::Postgres(pool) => pg::insert_batch(pool, msgs, retain_bodies, lease).await,
        }
    }

    async fn close(&self) {
        match self {
            Db::Sqlite { writer, reader } => {
                reader.close().await;
                writer.close().await;
            }
            Db::Postgres(pool) => pool.close().await,
        }
    }
}

/// The store: accounts and the delivery queue. Cheap to clone (all clones share the pools and the committer).
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    db: Db,
    backend: Backend,
    opts: StoreOptions,
    /// The committer's inbox; `None` once closed.
    enqueue: std::sync::Mutex<Option<mpsc::Sender<committer::Job>>>,
    committer: tokio::sync::Mutex<Option<JoinHandle<()>>>,
    stats: Arc<committer::Stats>,
    hand_offs: committer::HandOffSlot,
    screens: screen::Screens,
    health: health::Health,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.inner.backend)
            .field("opts", &self.inner.opts)
            .finish()
    }
}

impl Store {
    /// Opens the store at `url` (see the crate docs for the forms) and applies pending migrations.
    /// Must be called within a Tokio runtime: it starts the group-commit task.
    pub async fn open(url: &str, opts: StoreOptions) -> Result<Store, StoreError> {
        let (db, backend) = if url.starts_with("sqlite:") {
            let (writer, reader) = sqlite::open(url, &opts).await?;
            (Db::Sqlite { writer, reader }, Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (Db::Postgres(pg::open(url, &opts).await?), Backend::Postgres)
        } else {
            return Err(StoreError::Invalid(
                "the store URL must start with sqlite: or postgres://".into(),
            ));
        };
        let max_batch = opts.group_commit_max_batch.max(1);
        // Bounded: when the database falls behind, enqueuers wait here instead of piling up memory.
        let (tx, rx) = mpsc::channel(max_batch.saturating_mul(2));
        let stats = Arc::new(committer::Stats::default());
        let hand_offs = committer::HandOffSlot::default();
        let screens = screen::Screens::start(db.clone(), opts.operation_timeout);
        let handle = tokio::spawn(committer::run(
            db.clone(),
            rx,
            max_batch,
            opts.retain_bodies,
            opts.operation_timeout,
            stats.clone(),
            hand_offs.clone(),
        ));
        Ok(Store {
            inner: Arc::new(Inner {
                db,
                backend,
                opts,
                enqueue: std::sync::Mutex::new(Some(tx)),
                committer: tokio::sync::Mutex::new(Some(handle)),
                stats,
                hand_offs,
                screens,
                health: health::Health::default(),
            }),
        })
    }

    /// Which database this store runs on.
    pub fn backend(&self) -> Backend {
        self.inner.backend
    }

    /// The options the store was opened with.
    pub fn options(&self) -> &StoreOptions {
        &self.inner.opts
    }

    /// Stops accepting enqueues, lets the committer finish what it already received, and closes the pools.
    /// Afterwards every operation fails with [`StoreError::Closed`].
    pub async fn close(&self) {
        let sender = self.inner.enqueue.lock().unwrap_or_else(PoisonError::into_inner).take();
        // The committer ends once the last sender is gone and its inbox is drained.
        drop(sender);
        let handle = self.inner.committer.lock().await.take();
        if let Some(handle) = handle {
            let _ = handle.await;
        }
        self.inner.db.close().await;
    }

    /// Group-commit counters since open: with concurrent enqueues, `transactions` stays well below `messages`.
    pub fn commit_stats(&self) -> CommitStats {
        self.inner.stats.snapshot()
    }

    // ---- accounts ----

    /// Creates an account. A taken name or SecretId is [`StoreError::Conflict`].
    pub async fn create_account(&self, a: NewAccount) -> Result<Account, StoreError> {
        self.guarded(async { common::create_account(self.inner.db.writer(), a).await })
            .await
    }

    /// The account with this SecretId.
    pub async fn account_by_secret_id(&self, secret_id: &str) -> Result<Option<Account>, StoreError> {
        self.guarded(async { common::account_by_secret_id(self.inner.db.reader(), secret_id).await })
            .await
    }

    /// The account with this name.
    pub async fn account_by_name(&self, name: &str) -> Result<Option<Account>, StoreError> {
        self.guarded(async { common::account_by_name(self.inner.db.reader(), name).await })
            .await
    }

    /// The account with this id.
    pub async fn account(&self, id: AccountId) -> Result<Option<Account>, StoreError> {
        self.guarded(async { common::account(self.inner.db.reader(), id).await })
            .await
    }

    /// All accounts, by id.
    pub async fn list_accounts(&self) -> Result<Vec<Account>, StoreError> {
        self.guarded(async { common::list_accounts(self.inner.db.reader()).await })
            .await
    }

    /// Suspends or reinstates an account; [`StoreError::NotFound`] if there is none with this id.
    pub async fn set_account_suspended(&self, id: AccountId, suspended: bool) -> Result<(), StoreError> {
        self.guarded(async { common::set_account_suspended(self.inner.db.writer(), id, suspended).await })
            .await
    }

    // ---- queue ----

    /// Stores a message and its deliveries, durably (committed and fsynced) before it returns `Ok`.
    /// Concurrent enqueues share one transaction (group commit). A duplicate MessageId is
    /// [`StoreError::Conflict`]; an unknown account, a lane outside [`LANES`] or no recipients is
    /// [`StoreError::Invalid`]. If the caller is cancelled after its batch started, the message may still be stored.
    pub async fn enqueue(&self, m: NewMessage) -> Result<(), StoreError> {
        self.guarded(async { self.enqueue_inner(m, None, false).await.map(drop) })
            .await
    }

    /// [`Store::enqueue`] checked against admission limits inside the same transaction, so that every
    /// process sharing the database agrees: the account's messages per second, each recipient's mails in the
    /// sliding hour and today's recipients against the quota. A refused message is
    /// [`StoreError::Limit`] and nothing of it is stored; recipients over their hourly limit in a message with
    /// other admissible recipients are stored refused (send status 1006) instead.
    pub async fn enqueue_limited(&self, m: NewMessage, limits: AdmissionLimits) -> Result<(), StoreError> {
        self.guarded(async { self.enqueue_inner(m, Some(limits), false).await.map(drop) })
            .await
    }

    /// [`Store::enqueue_limited`] for fresh mail whose recipients all get the message's own MIME: if this
    /// process's worker takes hand-offs ([`Store::take_hand_offs`]) and has room, and the message is due now
    /// (`not_before_ms <= request_ms`), its deliveries are leased to the worker in the same transaction and
    /// handed to it with the MIME once committed. Returns whether it was handed off (if so, the worker needs
    /// no wake-up).
    pub async fn enqueue_fresh(&self, m: NewMessage, limits: AdmissionLimits) -> Result<bool, StoreError> {
        self.guarded(async { self.enqueue_inner(m, Some(limits), true).await })
            .await
    }

    /// Makes this process's worker the receiver of hand-offs ([`Store::enqueue_fresh`]), leased to `worker`
    /// for `lease_ms`, with at most `room` deliveries waiting for it to start them. A second call replaces
    /// the first receiver; dropping the receiver stops hand-offs.
    pub fn take_hand_offs(&self, worker: &str, lease_ms: i64, room: usize) -> HandOffs {
        let (receiver, target) = handoff::HandOffs::new(worker.to_string(), lease_ms, room);
        *self.inner.hand_offs.lock().unwrap_or_else(PoisonError::into_inner) = Some(target);
        receiver
    }

    async fn enqueue_inner(
        &self,
        m: NewMessage,
        limits: Option<AdmissionLimits>,
        hand_off: bool,
    ) -> Result<bool, StoreError> {
        validate(&m)?;
        // The caller's wait is bounded too: a committer stuck on a frozen connection must not hang it. A caller
        // that gives up before its batch starts gets nothing written (see `committer`).
        let r = self.guarded(self.enqueue_wait(m, limits, hand_off)).await;
        if r.is_ok() {
            self.inner.health.write_succeeded();
        }
        r
    }

    async fn enqueue_wait(
        &self,
        m: NewMessage,
        limits: Option<AdmissionLimits>,
        hand_off: bool,
    ) -> Result<bool, StoreError> {
        let sender = self
            .inner
            .enqueue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let sender = sender.ok_or(StoreError::Closed)?;
        let (reply, answer) = oneshot::channel();
        sender
            .send(committer::Job {
                msg: m,
                limits,
                hand_off,
                reply,
            })
            .await
            .map_err(|_| StoreError::Closed)?;
        // Do not keep the channel open while waiting: close() waits for every sender to go.
        drop(sender);
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Leases up to `limit` due deliveries to `worker` until `now_ms + lease_ms`, lane 0 first, then by due time.
    /// A delivery whose lease expired is due again. Several claimers (threads, processes, machines) never get
    /// the same delivery under the same lease.
    pub async fn claim(&self, r: ClaimRequest) -> Result<Vec<ClaimedDelivery>, StoreError> {
        self.guarded(async {
            if r.limit == 0 {
                return Ok(Vec::new());
            }
            common::claim(self.inner.db.writer(), &r).await
        })
        .await
    }

    /// The MIME of a message, until it is purged.
    pub async fn message_body(&self, id: &MessageId) -> Result<Option<Vec<u8>>, StoreError> {
        self.guarded(async { common::message_body(self.inner.db.reader(), id).await })
            .await
    }

    /// Records attempt outcomes, all in one transaction. Returns, per outcome and in order, whether it was
    /// applied: `false` means its lease was no longer current (taken over after expiry, or already reported),
    /// and nothing was written for it.
    pub async fn record_outcomes(&self, o: Vec<DeliveryOutcome>) -> Result<Vec<bool>, StoreError> {
        self.guarded(async {
            let retain = self.inner.opts.retain_bodies;
            match self.inner.db.writer() {
                sql::Pool::Sqlite(p) => sqlx::Sqlite::record_outcomes(p, &o, retain).await,
                sql::Pool::Postgres(p) => sqlx::Postgres::record_outcomes(p, &o, retain).await,
            }
        })
        .await
    }

    /// Per-recipient status of one account's messages requested in `[from_ms, to_ms)`, in request order.
    pub async fn status(&self, q: StatusQuery) -> Result<Vec<DeliveryStatusRow>, StoreError> {
        self.guarded(async { common::status(self.inner.db.reader(), &q).await })
            .await
    }

    /// The attempt history of one recipient of one message, oldest first.
    pub async fn attempts(
        &self,
        account: AccountId,
        message: &MessageId,
        recipient: &str,
    ) -> Result<Vec<DeliveryAttempt>, StoreError> {
        self.guarded(async { common::attempts(self.inner.db.reader(), account, message, recipient).await })
            .await
    }

    /// Deliveries by queue state.
    pub async fn queue_counts(&self) -> Result<QueueCounts, StoreError> {
        self.guarded(async { common::queue_counts(self.inner.db.reader()).await })
            .await
    }

    /// Makes every leased delivery due at `now_ms`, as if its lease had expired. For the embedded database,
    /// whose single worker calls it at start-up: leases left by a killed predecessor are its own, and waiting
    /// for them to expire would only delay mail. (The lease token is kept, so a stale outcome stays fenced.)
    pub async fn release_leases(&self, now_ms: i64) -> Result<u64, StoreError> {
        self.guarded(async { common::release_leases(self.inner.db.writer(), now_ms).await })
            .await
    }

    /// Extends the leases still held (same token, still leased) to `until_ms`: a worker renews the leases of
    /// deliveries in progress, so a lease may be short (a dead worker's mail is taken over soon) and still never
    /// expire under a transaction that is running. Returns how many were renewed.
    pub async fn renew_leases(&self, leases: &[(i64, LeaseToken)], until_ms: i64) -> Result<u64, StoreError> {
        self.guarded(async {
            if leases.is_empty() {
                return Ok(0);
            }
            common::renew_leases(self.inner.db.writer(), leases, until_ms).await
        })
        .await
    }

    /// The earliest `next_attempt_ms` among non-final deliveries (a due time, a retry time or a lease expiry),
    /// so an idle worker can sleep until then. `None` when nothing is left to do.
    pub async fn next_due_ms(&self) -> Result<Option<i64>, StoreError> {
        self.guarded(async { common::next_due_ms(self.inner.db.reader()).await })
            .await
    }
}

// ---- admission limits and reputation ----
impl Store {
    /// Replaces an account's limit overrides (`None` fields = the configured defaults).
    pub async fn set_account_limits(
        &self,
        account: AccountId,
        overrides: AccountLimitOverrides,
    ) -> Result<(), StoreError> {
        self.guarded(async { limits::set_account_limits(self.inner.db.writer(), account, overrides).await })
            .await
    }

    /// An account's overrides and admission counters (all defaults and zero before its first send).
    pub async fn account_usage(&self, account: AccountId) -> Result<AccountUsage, StoreError> {
        self.guarded(async { limits::account_usage(self.inner.db.reader(), account).await })
            .await
    }

    /// Reputation levels recorded for the account's domains (a domain without a row is at level 1).
    pub async fn domain_levels(&self, account: AccountId) -> Result<Vec<(String, i64)>, StoreError> {
        self.guarded(async { limits::domain_levels(self.inner.db.reader(), account).await })
            .await
    }

    /// The account's verified domains with their reputation level (1 when none is recorded), by domain.
    pub async fn verified_domain_levels(&self, account: AccountId) -> Result<Vec<(String, i64)>, StoreError> {
        self.guarded(async { limits::verified_domain_levels(self.inner.db.reader(), account).await })
            .await
    }

    /// Records a domain's reputation level.
    pub async fn set_domain_level(
        &self,
        account: AccountId,
        domain: &str,
        level: i64,
        at_ms: i64,
    ) -> Result<(), StoreError> {
        self.guarded(async { limits::set_domain_level(self.inner.db.writer(), account, domain, level, at_ms).await })
            .await
    }
}

fn validate(m: &NewMessage) -> Result<(), StoreError> {
    if !LANES.contains(&m.lane) {
        return Err(StoreError::Invalid(format!("lane {} is not one of {LANES:?}", m.lane)));
    }
    if m.recipients.is_empty() {
        return Err(StoreError::Invalid("a message needs at least one recipient".into()));
    }
    if m.id.as_str().is_empty() {
        return Err(StoreError::Invalid("empty MessageId".into()));
    }
    Ok(())
}

/// The sending domain of `m` (its From address's domain, lower case): the key of warm-up and reputation.
pub(crate) fn sender_domain(m: &NewMessage) -> String {
    m.from_address
        .rsplit_once('@')
        .map_or("", |(_, d)| d)
        .to_ascii_lowercase()
}

/// Deliveries of `m` that still have to be attempted.
pub(crate) fn open_count(m: &NewMessage) -> i32 {
    i32::try_from(m.recipients.iter().filter(|r| r.send_status == 0).count()).unwrap_or(i32::MAX)
}

/// The initial state of one delivery row.
pub(crate) struct DeliveryInit<'a> {
    pub(crate) state: DeliveryState,
    pub(crate) deliver_status: i32,
    pub(crate) deliver_message: &'a str,
    pub(crate) deliver_ms: Option<i64>,
}

/// Admitted recipients start queued; refused ones are final (Dropped) from the start, decided at request time.
pub(crate) fn delivery_init<'a>(m: &NewMessage, r: &'a NewRecipient) -> DeliveryInit<'a> {
    let deliver_message = r.deliver_message.as_deref().unwrap_or("");
    if r.send_status == 0 {
        DeliveryInit {
            state: DeliveryState::Pending,
            deliver_status: DeliverStatus::Queued.code(),
            deliver_message,
            deliver_ms: None,
        }
    } else {
        DeliveryInit {
            state: DeliveryState::Done,
            deliver_status: DeliverStatus::Dropped.code(),
            deliver_message,
            deliver_ms: Some(m.request_ms),
        }
    }
}

/// What an outcome writes to its delivery row.
pub(crate) struct OutcomeEffect {
    pub(crate) state: DeliveryState,
    pub(crate) deliver_status: i32,
    /// Deferred: the retry time (the row is due again then). Final: unchanged.
    pub(crate) next_attempt_ms: Option<i64>,
    /// Final: when it became final.
    pub(crate) deliver_ms: Option<i64>,
}

pub(crate) fn outcome_effect(o: &DeliveryOutcome) -> OutcomeEffect {
    let deliver_status = o.result.deliver_status().code();
    match &o.result {
        AttemptResult::Deferred { retry_at_ms, .. } => OutcomeEffect {
            state: DeliveryState::Pending,
            deliver_status,
            next_attempt_ms: Some(*retry_at_ms),
            deliver_ms: None,
        },
        _ => OutcomeEffect {
            state: DeliveryState::Done,
            deliver_status,
            next_attempt_ms: None,
            deliver_ms: Some(o.at_ms),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mailpush_model::RecipientKind;

    #[tokio::test]
    async fn memory_store_round_trip() {
        let store = Store::open("sqlite::memory:", StoreOptions::default())
            .await
            .expect("open");
        assert_eq!(store.backend(), Backend::Sqlite);
        let acc = store
            .create_account(NewAccount {
                name: "a".into(),
                app_id: 1,
                secret_id: "AKID".into(),
                secret_key_sealed: vec![1, 2, 3],
                created_ms: 5,
            })
            .await
            .expect("account");
        let id = MessageId::generate();
        store
            .enqueue(NewMessage {
                template_id: 0,
                id: id.clone(),
                account_id: acc.id,
                envelope_from: "b@x".into(),
                from_address: "a@x".into(),
                subject: "s".into(),
                lane: 0,
                request_ms: 10,
                not_before_ms: 10,
                expires_ms: 1000,
                body: b"hi".to_vec(),
                recipients: vec![NewRecipient {
                    address: "r@y".into(),
                    domain: "y".into(),
                    kind: RecipientKind::To,
                    send_status: 0,
                    deliver_message: None,
                }],
            })
            .await
            .expect("enqueue");
        assert_eq!(store.message_body(&id).await.expect("body"), Some(b"hi".to_vec()));
        let claimed = store
            .claim(ClaimRequest {
                worker: "w".into(),
                limit: 10,
                lease_ms: 100,
                now_ms: 10,
            })
            .await
            .expect("claim");
        assert_eq!(claimed.len(), 1);
        store.close().await;
        assert!(matches!(store.account(acc.id).await, Err(StoreError::Closed)));
        assert!(matches!(store.enqueue_closed_probe().await, Err(StoreError::Closed)));
    }

    #[tokio::test]
    async fn sqlite_connections_are_durable() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite:{}", dir.path().join("pragmas.db").display());
        let store = Store::open(&url, StoreOptions::default()).await.expect("open");
        let Db::Sqlite { writer, reader } = &store.inner.db else {
            panic!("not sqlite")
        };
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(writer)
            .await
            .expect("pragma");
        assert_eq!(mode, "wal");
        for pool in [writer, reader] {
            let sync: i64 = sqlx::query_scalar("PRAGMA synchronous")
                .fetch_one(pool)
                .await
                .expect("pragma");
            assert_eq!(sync, 2, "synchronous=FULL");
            let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
                .fetch_one(pool)
                .await
                .expect("pragma");
            assert_eq!(fk, 1);
            let busy: i64 = sqlx::query_scalar("PRAGMA busy_timeout")
                .fetch_one(pool)
                .await
                .expect("pragma");
            assert!(busy >= 1000);
        }
        store.close().await;
    }

    #[tokio::test]
    async fn sqlite_full_database_is_disk_full_and_counted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite:{}", dir.path().join("full.db").display());
        let store = Store::open(&url, StoreOptions::default()).await.expect("open");
        let acc = store
            .create_account(NewAccount {
                name: "full".into(),
                app_id: 2,
                secret_id: "AKIDfull".into(),
                secret_key_sealed: vec![1],
                created_ms: 0,
            })
            .await
            .expect("account");
        let within = std::time::Duration::from_secs(3);
        store.probe_read(within).await.expect("read probe");
        store.probe_write("node-a", 1, within).await.expect("write probe");
        // No room beyond the pages in use: what SQLite answers on a full disk (SQLITE_FULL).
        let Db::Sqlite { writer, .. } = &store.inner.db else {
            panic!("not sqlite")
        };
        let pages: i64 = sqlx::query_scalar("PRAGMA page_count")
            .fetch_one(writer)
            .await
            .expect("page_count");
        sqlx::query(sqlx::AssertSqlSafe(format!("PRAGMA max_page_count = {pages}")))
            .execute(writer)
            .await
            .expect("cap");
        let mut big = None;
        for i in 0..20 {
            let mut m = probe_message(acc.id);
            m.body = vec![b'x'; 64 * 1024];
            m.recipients[0].address = format!("r{i}@y");
            if let Err(e) = store.enqueue(m).await {
                big = Some(e);
                break;
            }
        }
        let err = big.expect("a full database refuses the write");
        assert!(err.is_disk_full(), "{err:?}");
        let c = store.health_counters();
        assert!(c.disk_full_errors >= 1, "{c:?}");
        assert!(c.since_disk_full.is_some());
        // The readiness write of a new row does not fit either.
        let probe = store.probe_write(&"n".repeat(8000), 2, within).await;
        assert!(matches!(probe, Err(StoreError::DiskFull(_))), "{probe:?}");
        store.close().await;
    }

    #[tokio::test]
    async fn operations_past_their_deadline_are_unavailable() {
        // Opened with the default deadline: the pools' own acquire timeouts derive from it, and a 1 ms one made
        // opening the store itself time out on a busy machine.
        let store = Store::open("sqlite::memory:", StoreOptions::default())
            .await
            .expect("open");
        let slow = store
            .guarded_within(std::time::Duration::from_millis(1), async {
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                Ok(())
            })
            .await;
        assert!(matches!(slow, Err(StoreError::Unavailable(_))), "{slow:?}");
        assert_eq!(store.health_counters().unavailable_errors, 1);
        store.close().await;
    }

    impl Store {
        async fn enqueue_closed_probe(&self) -> Result<(), StoreError> {
            self.enqueue(probe_message(1)).await
        }
    }

    fn probe_message(account_id: AccountId) -> NewMessage {
        NewMessage {
            template_id: 0,
            id: MessageId::generate(),
            account_id,
            envelope_from: String::new(),
            from_address: String::new(),
            subject: String::new(),
            lane: 0,
            request_ms: 0,
            not_before_ms: 0,
            expires_ms: 0,
            body: Vec::new(),
            recipients: vec![NewRecipient {
                address: "r@y".into(),
                domain: "y".into(),
                kind: RecipientKind::Bcc,
                send_status: 0,
                deliver_message: None,
            }],
        }
    }
}
