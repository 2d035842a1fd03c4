//! mailpush persistence: accounts and the durable delivery queue, on SQLite (embedded default: one file, WAL)
//! or PostgreSQL (scale-out: many api/worker processes on many machines sharing one database).
//!
//! # The queue
//! A message is one `messages` row plus its body, and one `deliveries` row per recipient: the queue unit.
//! Workers [`Queue::claim`] due deliveries under a lease and report each attempt with
//! [`Queue::record_outcomes`]. A lease carries a fencing token; when it expires another worker may take the
//! delivery over, and the first worker's late outcome is then ignored. When a message's last delivery becomes
//! final its body is deleted (unless [`StoreOptions::retain_bodies`]).
//!
//! # Durability
//! [`Queue::enqueue`] returns only after the message is committed and fsynced. Throughput comes from group
//! commit (concurrent enqueues share one transaction), never from weaker sync settings. An SQLite file keeps
//! bodies of 16 KB and more in a spool of segment files beside it (`<file>-spool/`), synced before the commit
//! that refers to them.
//!
//! # URLs
//! - `sqlite:/path/to/file.db` (created if missing), `sqlite::memory:` for unit tests.
//! - `postgres://user@host:port/db`. To use a schema other than the default, set the search path in the URL:
//!   `postgres://user@host/db?options=-c%20search_path%3Dmy_schema` (the schema must exist). Migrations and
//!   all tables then live in that schema; the conformance tests use this to give each test its own schema.

#![warn(missing_docs)]

mod abuse;
mod account_keys;
mod accounts;
pub mod batch;
mod body_spool;
mod callbacks;
mod committer;
mod complaints;
mod configuration_sets;
mod console;
mod contact_lists;
mod daily_statistics;
mod deliveries;
mod delivery_contents;
mod delivery_rows;
mod dmarc_reports;
mod error;
mod events;
mod handoff;
mod health;
mod identity;
mod identity_tags;
mod inbound;
mod limits;
mod pg;
mod queue;
mod queue_admin;
mod reputation_warnings;
mod retention;
mod screen;
mod screening;
mod script;
mod sesv2_names;
mod sources;
mod sql;
mod sqlite;
mod suppression;
mod templates;
mod tls_required;
mod tls_rpt;
mod unsubscribe_configs;
mod warmup;

use std::sync::{Arc, PoisonError};

use sqlx::{PgPool, SqlitePool};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

pub use abuse::{Abuse, AbuseFilter, AbuseRow};
pub use account_keys::{AccountKeys, ApiKey, RevokeOutcome};
pub use accounts::{Account, AccountId, Accounts, NewAccount};
pub use batch::{
    AddDetailsOutcome, AddDetailsRefusal, Batch, DetailPage, DetailQuery, NewReceiverDetail, NewSendTask,
    ReceiverDetailRow, ReceiverRow, SendTaskRow, TaskChunk, TaskQuery, TaskRunUpdate,
};
pub use callbacks::{CallbackEvent, CallbackResult, CallbackState, Callbacks};
pub use committer::CommitStats;
pub use complaints::ComplaintRow;
pub use configuration_sets::{ConfigurationSetRow, ConfigurationSets, EventDestinationRow, MessageTagsRow};
pub use console::{
    AttemptRow, Console, ConsoleSessionRow, ConsoleUserRow, MessageHit, MessageSearch, TaskControl, TimelineEvent,
};
pub use contact_lists::{ContactListRow, ContactLists, ContactRow};
pub use daily_statistics::{DailyStats, StatCounters, Statistics, StatsQuery, day_of, domain_of};
pub use deliveries::{
    AttemptResult, ClaimRequest, ClaimedDelivery, DeliveryAttempt, DeliveryOutcome, DeliveryStatusRow, LANES,
    LeaseToken, NewMessage, NewRecipient, QueueCounts, StatusQuery, WaitingCounts,
};
pub use delivery_contents::DeliveryContent;
pub use dmarc_reports::{DmarcDailyRow, DmarcReports, NewDmarcReport, NewDmarcRow};
pub use error::StoreError;
pub use events::{BounceType, Events, NewEvent, RecordedEvent};
pub use handoff::{HandOffRoom, HandOffs, HandedOff};
pub use health::HealthCounters;
pub use identity::{DkimKeyRow, Identities, IdentityCheck, IdentityRow, NewDkimKey, NewIdentity, NewSender, SenderRow};
pub use identity_tags::{IdentityTag, IdentityTags};
pub use inbound::{AsyncBounce, FeedbackRecorded, Inbound, InboundMessage, NewComplaint};
pub use limits::{AccountLimitOverrides, AccountUsage, AdmissionLimits, HOUR_MS, LimitRefusal, Limits};
pub use queue::Queue;
pub use queue_admin::{QueueAdmin, QueueTarget};
pub use reputation_warnings::{NewWarning, ReputationWarnings, WarningRow};
pub use retention::{
    FilePages, PruneBatch, PruneCounts, PruneCursor, ReportsPruned, Retention, VACUUM_AT_OPEN_MAX_BYTES,
};
pub use screening::{Screening, ScreeningPolicy};
pub use sesv2_names::{SesNames, SesTemplateRow};
pub use sources::{DomainSourcePool, SourceIpUsage, SourceReservation, Sources};
pub use suppression::{
    BounceBlacklistEntry, BounceBlacklistQuery, CustomBlacklistEntry, CustomStatusFilter, RecipientScreen,
    RecipientScreenQuery, Suppression, normalize as normalize_blacklist_address,
};
pub use templates::{
    AccountPolicy, NewTemplate, StoredTemplate, TemplateContent, TemplateId, TemplatePage, TemplateStatus,
    TemplateSummary, Templates,
};
pub use tls_required::{TlsRequired, TlsRequiredSettings};
pub use tls_rpt::{TlsRpt, TlsRptCount, TlsRptPending};
pub use unsubscribe_configs::{UnsubscribeConfigRow, UnsubscribeConfigs};
pub use warmup::{DomainOutcomes, DomainWarmupRow, Warmup, WarmupRamp};

/// Tuning for [`Store::open`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreOptions {
    /// PostgreSQL: pool size (at least 2; a worker's [`Queue::wake_on_queued`] holds one of them). SQLite: size
    /// of the reader pool (writes always use one connection).
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
    /// All writes go through `writer` (one connection); reads through `reader`. Large bodies of a file
    /// database live in `spool`.
    Sqlite {
        writer: SqlitePool,
        reader: SqlitePool,
        spool: Option<Arc<body_spool::BodySpool>>,
    },
    /// One pool for everything but claims and outcome batches, which go through `relaxed`.
    Postgres {
        pool: PgPool,
        /// Connections with `synchronous_commit = off`, for what a crash of the database may lose harmlessly:
        /// claims and outcome batches (see [`Db::relaxed_writer`]).
        relaxed: PgPool,
        /// In which order the next group commit writes and decides its admission limits.
        admission: Arc<pg::AdmissionOrder>,
    },
}

impl Db {
    /// The pool for reads (SQLite: the readers; they never wait for the writer).
    pub(crate) fn reader(&self) -> sql::Pool<'_> {
        match self {
            Db::Sqlite { reader, .. } => sql::Pool::Sqlite(reader),
            Db::Postgres { pool, .. } => sql::Pool::Postgres(pool),
        }
    }

    /// The pool for writes (SQLite: the one writer connection).
    pub(crate) fn writer(&self) -> sql::Pool<'_> {
        match self {
            Db::Sqlite { writer, .. } => sql::Pool::Sqlite(writer),
            Db::Postgres { pool, .. } => sql::Pool::Postgres(pool),
        }
    }

    /// The pool for writes that a crash of the database may lose harmlessly, so their commits need not wait for
    /// the disk: claims (their deliveries are simply due again) and outcome batches (their leases expire and the
    /// deliveries go out again: at-least-once). On SQLite the one writer, whose claims and outcome batches relax
    /// `synchronous` per transaction (`script::Durability::Relaxed`); on PostgreSQL connections with
    /// `synchronous_commit = off`. Either way the next durable commit (an enqueue) flushes their log records
    /// too, since the write-ahead log is written in order.
    pub(crate) fn relaxed_writer(&self) -> sql::Pool<'_> {
        match self {
            Db::Sqlite { writer, .. } => sql::Pool::Sqlite(writer),
            Db::Postgres { relaxed, .. } => sql::Pool::Postgres(relaxed),
        }
    }

    async fn insert_batch(
        &self,
        msgs: &mut [(NewMessage, Option<limits::AdmissionLimits>)],
        retain_bodies: bool,
        lease: Option<handoff::LeaseRequest<'_>>,
    ) -> Result<handoff::InsertedBatch, StoreError> {
        match self {
            Db::Sqlite { writer, spool, .. } => {
                sqlite::insert_batch(writer, spool.as_deref(), msgs, retain_bodies, lease).await
            }
            Db::Postgres { pool, admission, .. } => pg::insert_batch(pool, admission, msgs, retain_bodies, lease).await,
        }
    }

    /// The admission screens of several requests in one statement: (request index, 0 = blacklisted /
    /// 1 = unsubscribed, address) rows.
    async fn recipient_screen_rows(
        &self,
        qs: &[screen::OwnedScreenQuery],
    ) -> Result<Vec<(i64, i32, String)>, StoreError> {
        match self {
            Db::Sqlite { reader, .. } => sqlite::recipient_screen_rows(reader, qs).await,
            Db::Postgres { pool, .. } => pg::recipient_screen_rows(pool, qs).await,
        }
    }

    /// The body spool of a file SQLite database (see `body_spool`).
    pub(crate) fn spool(&self) -> Option<&body_spool::BodySpool> {
        match self {
            Db::Sqlite { spool, .. } => spool.as_deref(),
            Db::Postgres { .. } => None,
        }
    }

    async fn close(&self) {
        match self {
            Db::Sqlite { writer, reader, spool } => {
                reader.close().await;
                writer.close().await;
                if let Some(spool) = spool {
                    spool.release();
                }
            }
            Db::Postgres { pool, relaxed, .. } => {
                relaxed.close().await;
                pool.close().await;
            }
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
    /// Must be called within a Tokio runtime: it starts the group-commit task (and, for an SQLite file, the body
    /// spool's sweeper).
    pub async fn open(url: &str, opts: StoreOptions) -> Result<Store, StoreError> {
        Store::open_tuned(url, opts, body_spool::Tuning::default()).await
    }

    /// [`Store::open`] with the body spool's sizes and periods given.
    async fn open_tuned(url: &str, opts: StoreOptions, spool_tuning: body_spool::Tuning) -> Result<Store, StoreError> {
        let (db, backend) = if url.starts_with("sqlite:") {
            let (writer, reader, spool) = sqlite::open(url, &opts, spool_tuning).await?;
            let spool = spool.map(Arc::new);
            if let Some(spool) = &spool {
                tokio::spawn(body_spool::run_sweeper(Arc::downgrade(spool), writer.clone()));
            }
            (Db::Sqlite { writer, reader, spool }, Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let (pool, relaxed) = pg::open(url, &opts).await?;
            (
                Db::Postgres {
                    pool,
                    relaxed,
                    admission: Arc::default(),
                },
                Backend::Postgres,
            )
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

    /// The pool for reads (see [`Db::reader`]).
    pub(crate) fn reader(&self) -> sql::Pool<'_> {
        self.inner.db.reader()
    }

    /// The pool for writes (see [`Db::writer`]).
    pub(crate) fn writer(&self) -> sql::Pool<'_> {
        self.inner.db.writer()
    }

    /// The pool for claims and outcome batches (see [`Db::relaxed_writer`]).
    pub(crate) fn relaxed_writer(&self) -> sql::Pool<'_> {
        self.inner.db.relaxed_writer()
    }

    /// What this store's body spool holds on disk: nothing on PostgreSQL, in memory, or while another store
    /// owns the spool.
    pub fn body_spool_usage(&self) -> BodySpoolUsage {
        self.inner.db.spool().map(|s| s.usage()).unwrap_or_default()
    }

    /// Group-commit counters since open: with concurrent enqueues, `transactions` stays well below `messages`.
    pub fn commit_stats(&self) -> CommitStats {
        self.inner.stats.snapshot()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mailpush_model::{MessageId, RecipientKind};

    /// Runs `case` on a store in a PostgreSQL schema of its own, dropped afterwards; nothing without
    /// `MAILPUSH_TEST_POSTGRES_URL`.
    async fn on_postgres<F, Fut>(name: &str, case: F)
    where
        F: FnOnce(Store) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        mailpush_testkit::postgres::on_schema(name, |url| async move {
            let store = Store::open(&url, StoreOptions::default()).await.expect("open");
            case(store.clone()).await;
            store.close().await;
        })
        .await;
    }

    /// On PostgreSQL, enqueues commit durably and claims and outcome batches do not wait for the disk; the
    /// relaxed pool is opened by the first claim, so a process that only accepts mail never opens it.
    #[tokio::test]
    async fn postgres_commits_wait_for_the_disk_except_claims_and_outcomes() {
        on_postgres("mp_test_relaxed", |store| async move {
            let Db::Postgres { pool, relaxed, .. } = &store.inner.db else {
                panic!("not postgres")
            };
            let acc = account(&store, "relaxed", 1).await;
            store.queue().enqueue(probe_message(acc.id)).await.expect("enqueue");
            assert_eq!(
                relaxed.size(),
                0,
                "nothing but a claim or an outcome batch opens the relaxed pool"
            );
            let claim = ClaimRequest {
                worker: "w".into(),
                limit: 10,
                lease_ms: 100,
                now_ms: 10,
            };
            assert_eq!(store.queue().claim(claim).await.expect("claim").len(), 1);
            assert!(relaxed.size() > 0, "the claim went through the relaxed pool");
            let show = |pool, setting: &'static str| async move {
                let value: String = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SHOW {setting}")))
                    .fetch_one(pool)
                    .await
                    .expect("show");
                value
            };
            assert_eq!(show(pool, "synchronous_commit").await, "on");
            assert_eq!(show(relaxed, "synchronous_commit").await, "off");
            // The relaxed connections keep the outage bounds of the others.
            for setting in ["statement_timeout", "idle_in_transaction_session_timeout"] {
                assert_eq!(show(relaxed, setting).await, show(pool, setting).await, "{setting}");
            }
        })
        .await;
    }

    /// On a PostgreSQL server with LZ4 (as Debian's and the official images are built), bodies are stored
    /// compressed with it.
    #[tokio::test]
    async fn postgres_bodies_are_compressed_with_lz4() {
        on_postgres("mp_test_lz4", |store| async move {
            let Db::Postgres { pool, .. } = &store.inner.db else {
                panic!("not postgres")
            };
            let acc = account(&store, "lz4", 1).await;
            let mut m = probe_message(acc.id);
            m.body = "A line of a body that compresses well.\r\n".repeat(200).into_bytes();
            let id = m.id.clone();
            store.queue().enqueue(m).await.expect("enqueue");
            let method: Option<String> =
                sqlx::query_scalar("SELECT pg_column_compression(body) FROM message_bodies WHERE message_id = $1")
                    .bind(id.as_str())
                    .fetch_one(pool)
                    .await
                    .expect("read the compression");
            assert_eq!(method.as_deref(), Some("lz4"));
            for table in ["message_bodies", "recipient_bodies"] {
                let set: String = sqlx::query_scalar(
                    "SELECT attcompression::text FROM pg_attribute \
                     WHERE attrelid = to_regclass($1) AND attname = 'body'",
                )
                .bind(table)
                .fetch_one(pool)
                .await
                .expect("read the column's method");
                assert_eq!(set, "l", "{table}.body");
            }
        })
        .await;
    }

    #[tokio::test]
    async fn memory_store_round_trip() {
        let store = Store::open("sqlite::memory:", StoreOptions::default())
            .await
            .expect("open");
        assert_eq!(store.backend(), Backend::Sqlite);
        let acc = store
            .accounts()
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
            .queue()
            .enqueue(NewMessage {
                template_id: 0,
                tls_requirement: mailpush_model::TlsRequirement::None,
                id: id.clone(),
                account_id: acc.id,
                envelope_from: "b@x".into(),
                from_address: "a@x".into(),
                subject: "s".into(),
                lane: mailpush_model::Lane::Trigger,
                request_ms: 10,
                not_before_ms: 10,
                expires_ms: 1000,
                body: b"hi".to_vec(),
                recipients: vec![NewRecipient {
                    address: "r@y".into(),
                    domain: "y".into(),
                    kind: RecipientKind::To,
                    send_status: mailpush_model::SendStatus::Ok,
                    deliver_message: None,
                }],
            })
            .await
            .expect("enqueue");
        assert_eq!(
            store.queue().message_body(&id).await.expect("body"),
            Some(b"hi".to_vec())
        );
        let claimed = store
            .queue()
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
        assert!(matches!(
            store.accounts().account(acc.id).await,
            Err(StoreError::Closed)
        ));
        assert!(matches!(store.enqueue_closed_probe().await, Err(StoreError::Closed)));
    }

    #[tokio::test]
    async fn sqlite_connections_are_durable() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite:{}", dir.path().join("pragmas.db").display());
        let store = Store::open(&url, StoreOptions::default()).await.expect("open");
        let Db::Sqlite { writer, reader, .. } = &store.inner.db else {
            panic!("not sqlite")
        };
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(writer)
            .await
            .expect("pragma");
        assert_eq!(mode, "wal");
        for pool in [writer, reader] {
            assert!(
                !pool.options().get_test_before_acquire(),
                "no ping before each use of a local file"
            );
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

    /// A large body (`body_spool`) from enqueue to its final delivery, through relocation and a restart.
    #[tokio::test]
    async fn large_bodies_live_in_the_spool_until_final() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite:{}", dir.path().join("spool.db").display());
        let spool_dir = dir.path().join("spool.db-spool");
        let tuning = body_spool::Tuning {
            min_bytes: 1024,
            // Every group starts a segment of its own.
            segment_bytes: 1,
            relocate_after: std::time::Duration::ZERO,
            // The test sweeps by itself.
            sweep_every: std::time::Duration::from_secs(3600),
        };
        let store = Store::open_tuned(&url, StoreOptions::default(), tuning)
            .await
            .expect("open");
        let acc = account(&store, "spool", 3).await;
        let big = |fill: u8| {
            let mut m = probe_message(acc.id);
            m.body = vec![fill; 64 * 1024];
            m
        };
        let (m1, m2, m3, small) = (big(b'1'), big(b'2'), big(b'3'), probe_message(acc.id));
        for m in [&m1, &m2, &m3, &small] {
            store.queue().enqueue(m.clone()).await.expect("enqueue");
        }
        let segments = || -> Vec<String> {
            let mut names: Vec<String> = std::fs::read_dir(&spool_dir)
                .expect("spool dir")
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|n| n.ends_with(".seg"))
                .collect();
            names.sort();
            names
        };
        assert_eq!(
            segments().len(),
            3,
            "one segment per group, the small body in the database"
        );
        let usage = BodySpoolUsage {
            segments: 3,
            bytes: 3 * 64 * 1024,
        };
        assert_eq!(store.body_spool_usage(), usage);
        let stored = |id: MessageId| {
            let store = store.clone();
            async move {
                let Db::Sqlite { writer, .. } = &store.inner.db else {
                    panic!("not sqlite")
                };
                let row: (i64, Option<i64>) =
                    sqlx::query_as("SELECT length(body), spool_segment FROM message_bodies WHERE message_id = ?")
                        .bind(id.as_str())
                        .fetch_one(writer)
                        .await
                        .expect("row");
                row
            }
        };
        assert!(matches!(stored(m1.id.clone()).await, (0, Some(_))));
        assert_eq!(stored(small.id.clone()).await, (0, None), "an empty body stays inline");
        assert_eq!(
            store.queue().message_body(&m1.id).await.expect("body"),
            Some(m1.body.clone())
        );
        let contents = store
            .queue()
            .delivery_contents(&[(m2.id.clone(), Vec::new())])
            .await
            .expect("contents");
        assert_eq!(contents[&m2.id].body, m2.body);

        // m1 delivered: its segment goes at the next sweep, m2's is moved into the database.
        let claimed = store
            .queue()
            .claim(ClaimRequest {
                worker: "w".into(),
                limit: 10,
                lease_ms: 60_000,
                now_ms: 10,
            })
            .await
            .expect("claim");
        let c1 = claimed.iter().find(|c| c.message_id == m1.id).expect("m1 claimed");
        let applied = store
            .queue()
            .record_outcomes(vec![DeliveryOutcome {
                delivery_id: c1.delivery_id,
                lease: c1.lease,
                at_ms: 20,
                result: AttemptResult::Delivered { reply: "250 ok".into() },
                remote: None,
            }])
            .await
            .expect("outcome");
        assert_eq!(applied, [true]);
        assert_eq!(store.queue().message_body(&m1.id).await.expect("body"), None);
        let both = body_spool::Sweep {
            deleted: 1,
            relocated: 1,
        };
        assert_eq!(sweep(&store).await, both);
        assert_eq!(
            stored(m2.id.clone()).await,
            (64 * 1024, None),
            "relocated into the database"
        );
        assert_eq!(sweep(&store).await.deleted, 1, "m2's segment is empty now");
        assert_eq!(segments().len(), 1, "m3's segment, still current");
        assert_eq!(
            store.queue().message_body(&m2.id).await.expect("body"),
            Some(m2.body.clone())
        );

        // A restart: the next owner takes m3's segment over and deletes what no row points into.
        std::fs::write(
            spool_dir.join("0000000000000999.seg"),
            b"left by a crash before its commit",
        )
        .expect("orphan");
        store.close().await;
        drop(store);
        let store = Store::open_tuned(&url, StoreOptions::default(), tuning)
            .await
            .expect("reopen");
        assert_eq!(
            store.queue().message_body(&m3.id).await.expect("body"),
            Some(m3.body.clone())
        );
        assert!(store.inner.db.spool().is_some_and(|s| s.is_owner()));
        assert_eq!(sweep(&store).await, both);
        sweep(&store).await;
        assert!(segments().is_empty(), "{:?}", segments());
        assert_eq!(store.body_spool_usage(), BodySpoolUsage::default());
        assert_eq!(
            store.queue().message_body(&m3.id).await.expect("body"),
            Some(m3.body.clone())
        );
        store.close().await;
    }

    /// A new account `name` (SecretId `AKID<name>`).
    async fn account(store: &Store, name: &str, app_id: i64) -> Account {
        store
            .accounts()
            .create_account(NewAccount {
                name: name.into(),
                app_id,
                secret_id: format!("AKID{name}"),
                secret_key_sealed: vec![1],
                created_ms: 0,
            })
            .await
            .expect("account")
    }

    /// One sweep of `store`'s body spool, as its sweeper runs it.
    async fn sweep(store: &Store) -> body_spool::Sweep {
        let Db::Sqlite {
            writer,
            spool: Some(spool),
            ..
        } = &store.inner.db
        else {
            panic!("not an SQLite file store")
        };
        spool.sweep(writer).await.expect("sweep")
    }

    #[tokio::test]
    async fn sqlite_full_database_is_disk_full_and_counted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite:{}", dir.path().join("full.db").display());
        let store = Store::open(&url, StoreOptions::default()).await.expect("open");
        let acc = account(&store, "full", 2).await;
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
            // Under the body spool's threshold: the body goes into the full database.
            m.body = vec![b'x'; body_spool::Tuning::default().min_bytes - 1];
            m.recipients[0].address = format!("r{i}@y");
            if let Err(e) = store.queue().enqueue(m).await {
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
            self.queue().enqueue(probe_message(1)).await
        }
    }

    /// The query plan of a statement on SQLite, one line per step.
    async fn sqlite_plan(pool: &SqlitePool, sql: &str) -> Vec<String> {
        let rows: Vec<(i64, i64, i64, String)> =
            sqlx::query_as(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {sql}")))
                .fetch_all(pool)
                .await
                .expect("explain");
        rows.into_iter().map(|(_, _, _, detail)| detail).collect()
    }

    /// The `/metrics` refresh counts the queue from the due index alone, and claims still read due rows in order
    /// from it: neither reads every waiting row or sorts them (a million waiting deliveries cost a third of a
    /// second of CPU per refresh when the count read each row and grouped them).
    #[tokio::test]
    async fn sqlite_queue_counts_and_claims_read_the_due_index_alone() {
        let store = Store::open("sqlite::memory:", StoreOptions::default())
            .await
            .expect("open");
        let Db::Sqlite { reader, .. } = &store.inner.db else {
            panic!("not sqlite")
        };
        for sql in [queue::waiting_counts_sql(), queue::queue_counts_sql()] {
            let counts = sqlite_plan(reader, &sql).await;
            assert!(
                counts.iter().any(|s| s.contains("COVERING INDEX deliveries_due")),
                "{counts:?}"
            );
            assert!(!counts.iter().any(|s| s.contains("TEMP B-TREE")), "{counts:?}");
        }
        for order in ["d.next_attempt_ms", "d.next_attempt_ms, d.id"] {
            let claim = sqlite_plan(
                reader,
                &format!(
                    "SELECT d.id FROM deliveries d JOIN messages m ON m.id = d.message_id \
                     WHERE d.state < 2 AND d.lane = 1 AND d.next_attempt_ms <= 5 ORDER BY {order} LIMIT 64"
                ),
            )
            .await;
            assert!(claim.iter().any(|s| s.contains("INDEX deliveries_due")), "{claim:?}");
            assert!(!claim.iter().any(|s| s.contains("TEMP B-TREE")), "{order}: {claim:?}");
        }
        store.close().await;
    }

    /// On PostgreSQL too the queue counts can be answered from the due index alone (an index-only scan: it
    /// carries state and status), so a large queue is not read row by row from the table, which cost the
    /// `/metrics` refresh a parallel scan of the whole table (1.3 s of CPU with a million waiting among 11 million).
    /// Scans of the table are disabled so that the plan shows what the index can do on a table this small.
    #[tokio::test]
    async fn postgres_queue_counts_read_the_due_index_alone() {
        on_postgres("mp_test_due_counts", |store| async move {
            let Db::Postgres { pool, .. } = &store.inner.db else {
                panic!("not postgres")
            };
            let mut conn = pool.acquire().await.expect("connection");
            for off in ["enable_seqscan", "enable_bitmapscan"] {
                sqlx::query(sqlx::AssertSqlSafe(format!("SET {off} = off")))
                    .execute(&mut *conn)
                    .await
                    .expect("set");
            }
            for sql in [queue::waiting_counts_sql(), queue::queue_counts_sql()] {
                let sql = sql.replace("$1", "1").replace("$2", "3");
                let plan: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("EXPLAIN {sql}")))
                    .fetch_all(&mut *conn)
                    .await
                    .expect("explain");
                assert!(
                    plan.iter().any(|l| l.contains("Index Only Scan using deliveries_due")),
                    "{plan:#?}"
                );
            }
        })
        .await;
    }

    fn probe_message(account_id: AccountId) -> NewMessage {
        NewMessage {
            template_id: 0,
            tls_requirement: mailpush_model::TlsRequirement::None,
            id: MessageId::generate(),
            account_id,
            envelope_from: String::new(),
            from_address: String::new(),
            subject: String::new(),
            lane: mailpush_model::Lane::Trigger,
            request_ms: 0,
            not_before_ms: 0,
            expires_ms: 0,
            body: Vec::new(),
            recipients: vec![NewRecipient {
                address: "r@y".into(),
                domain: "y".into(),
                kind: RecipientKind::Bcc,
                send_status: mailpush_model::SendStatus::Ok,
                deliver_message: None,
            }],
        }
    }
}

/// What the body spool of an SQLite file holds on disk ([`Store::body_spool_usage`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BodySpoolUsage {
    /// Segment files.
    pub segments: u64,
    /// Their bytes.
    pub bytes: u64,
}

/// Which database a [`crate::Store`] runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// One SQLite file (embedded default).
    Sqlite,
    /// PostgreSQL (scale-out: many processes share one database).
    Postgres,
}
