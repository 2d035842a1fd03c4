//! The SQLite backend: one file in WAL mode, one writer connection, a pool of readers.
//!
//! SQLite admits one writer at a time. Every write (enqueue batches, claims, outcomes, accounts) goes through a
//! pool of exactly one connection, so writers queue in-process (fair, FIFO) instead of spinning on SQLITE_BUSY;
//! reads go through a separate pool and, thanks to WAL, never wait for the writer.

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqlitePool};

use crate::body_spool::{BodySpool, SpoolRef, Tuning};
use crate::delivery_rows::{delivery_init, outcome_effect};
use crate::handoff::{InsertedBatch, LeasePlan, LeaseRequest, ReturnedLeases};
use crate::limits::{AccountState, AdmissionLimits, LimitRefusal};
use crate::script::{Durability, Script, ScriptRows, Stmt, WriteTx};
use crate::{NewMessage, NewRecipient, StoreOptions};

use crate::warmup::{Candidate, Counter, Verdict, WarmupRamp, decide_all, pick_limit};
use mailpush_model::Lane;
use mailpush_model::clock::{DAY_MS, day_start};
use sqlx::{FromRow, Row};

use crate::deliveries::DeliveryState;
use crate::delivery_rows::claimed_from_row;
use crate::{AccountId, ClaimRequest, ClaimedDelivery, DeliveryOutcome, StoreError};

impl crate::sql::Dialect for Sqlite {
    // IMMEDIATE takes the write lock at once; it also serialises these transactions across processes.
    const BEGIN_WRITE: &'static str = "BEGIN IMMEDIATE";
    const LOCK_ROWS: &'static str = "";

    /// Writes messages inside the caller's transaction (the batch runner commits them with its task cursor), in
    /// one hand-off.
    async fn insert_messages(
        conn: &mut SqliteConnection,
        msgs: &[NewMessage],
        retain_bodies: bool,
    ) -> Result<(), crate::StoreError> {
        let mut delta = crate::daily_statistics::StatsDelta::default();
        let msgs: Vec<&NewMessage> = msgs.iter().collect();
        let mut script = Script::default();
        push_rows(&mut script, &msgs, retain_bodies, &HashMap::new(), &mut delta, None);
        crate::daily_statistics::push_sqlite(&mut script, &delta);
        script.run(conn).await.map(|_| ())
    }

    /// Leases up to `want` due deliveries of one lane, in due order.
    ///
    /// Select, then update, inside one IMMEDIATE transaction (two hand-offs, see `script`): the write lock is held
    /// from the start, so no other writer (in this process or another) can claim in between. A single
    /// `UPDATE … RETURNING` cannot fetch the message columns cheaply: SQLite evaluates a correlated subquery in
    /// RETURNING without its index (a scan of `messages` per row), and RETURNING may not reference joined tables.
    async fn claim_lane(
        pool: &SqlitePool,
        lane: Lane,
        r: &ClaimRequest,
        lease_until: i64,
        want: i64,
    ) -> Result<Vec<ClaimedDelivery>, StoreError> {
        let mut tx = WriteTx::begin(pool, Durability::Relaxed).await?;
        let due = tx.push(
            "SELECT d.id, d.message_id, d.account_id, d.recipient, d.domain, d.kind, d.lane, d.attempts, \
             d.request_ms, d.lease_token + 1 AS lease_token, m.envelope_from, m.expires_ms, m.tls_requirement \
             FROM deliveries d JOIN messages m ON m.id = d.message_id \
             WHERE d.state < 2 AND d.lane = ",
        );
        tx.sql()
            .push_bind(lane.code())
            .push(" AND d.next_attempt_ms <= ")
            .push_bind(r.now_ms)
            .push(" ORDER BY d.next_attempt_ms LIMIT ")
            .push_bind(want);
        let rows = tx.flush().await?.take(due);
        let claimed = rows.iter().map(claimed_from_row).collect::<Result<Vec<_>, _>>()?;
        push_lease(tx.script(), &claimed, &r.worker, lease_until, None);
        tx.commit().await?;
        Ok(claimed)
    }

    /// Records outcomes in one transaction with a handful of multi-row statements for the whole batch, sent in two
    /// hand-offs (see `script`): the lease fence and the senders' addresses, then the writes and the COMMIT.
    async fn record_outcomes(
        pool: &SqlitePool,
        outcomes: &[DeliveryOutcome],
        retain_bodies: bool,
    ) -> Result<Vec<bool>, StoreError> {
        let mut applied = vec![false; outcomes.len()];
        if outcomes.is_empty() {
            return Ok(applied);
        }
        // Deliveries in id order, then messages in id order (the same order as the PostgreSQL backend). A repeated
        // (delivery, lease) is applied once, as the fence did statement by statement.
        let mut order: Vec<usize> = (0..outcomes.len()).collect();
        order.sort_by_key(|&i| outcomes[i].delivery_id);
        let mut seen = std::collections::HashSet::new();
        order.retain(|&i| seen.insert((outcomes[i].delivery_id, outcomes[i].lease.0)));

        let tx = WriteTx::begin(pool, Durability::Relaxed).await?;
        record_outcomes_on(tx, outcomes, retain_bodies, order, &mut applied).await?;
        Ok(applied)
    }

    async fn claim_lane_with_warmup(
        pool: &sqlx::Pool<Self>,
        lane: Lane,
        r: &ClaimRequest,
        lease_until: i64,
        want: i64,
        ramp: &WarmupRamp,
    ) -> Result<Vec<ClaimedDelivery>, StoreError> {
        // One IMMEDIATE transaction (the single writer serializes every claimer), without an fsync at commit, as
        // every claim (see `RelaxedWriter`).
        let mut writer = RelaxedWriter::acquire(pool).await?;
        let claimed = warmup_claim_lane_on(writer.conn(), lane, r, lease_until, want, ramp).await?;
        writer.release().await?;
        Ok(claimed)
    }
}

/// Rows one multi-row statement carries at most: far below SQLite's 32,766 bound parameters at 14 columns.
const MAX_ROWS_PER_STATEMENT: usize = 500;

/// The writer connection for a transaction whose loss to a power failure is harmless, so it commits with
/// `synchronous = NORMAL` (no fsync) for the length of one transaction, then back to FULL:
/// - a claim: its deliveries are simply due again;
/// - delivery outcomes: the leases expire and the deliveries are attempted again, so the recipient may get
///   a mail twice, never none (at-least-once; Postfix does not fsync the removal of a delivered queue file
///   either). The events, statistics and blacklist entries of those outcomes come again with the new attempt.
///
/// WAL frames are written in order, so the next FULL commit (an enqueue, which must be durable before its
/// caller hears of it) fsyncs these too. It saved an fsync per claim and per outcome batch on the one writer,
/// where every enqueue waits for them.
pub(crate) struct RelaxedWriter {
    conn: sqlx::pool::PoolConnection<Sqlite>,
    relaxed: bool,
}

impl RelaxedWriter {
    /// Takes the writer connection and relaxes it, except for an in-memory database (nothing to sync, and its
    /// one connection must never be closed).
    pub(crate) async fn acquire(pool: &SqlitePool) -> Result<RelaxedWriter, StoreError> {
        // `sqlite::memory:` is the only in-memory form `open` documents (and what its tests use).
        let memory = pool.connect_options().get_filename() == std::path::Path::new(":memory:");
        let conn = pool.acquire().await?;
        let mut w = RelaxedWriter { conn, relaxed: false };
        if !memory {
            // Marked before the pragma: if anything below fails or is cancelled, Drop closes the connection
            // rather than let a relaxed one serve a FULL transaction.
            w.relaxed = true;
            sqlx::query("PRAGMA synchronous = NORMAL").execute(&mut *w.conn).await?;
        }
        Ok(w)
    }

    /// The connection, to begin the claim transaction on.
    pub(crate) fn conn(&mut self) -> &mut SqliteConnection {
        &mut self.conn
    }

    /// Restores `synchronous = FULL` and returns the connection to the pool.
    pub(crate) async fn release(mut self) -> Result<(), StoreError> {
        if self.relaxed {
            sqlx::query("PRAGMA synchronous = FULL")
                .execute(&mut *self.conn)
                .await?;
            self.relaxed = false;
        }
        Ok(())
    }
}

impl Drop for RelaxedWriter {
    fn drop(&mut self) {
        if self.relaxed {
            self.conn.close_on_drop();
        }
    }
}

/// Leases `claimed` to `worker` until `lease_until` (and, with warm-up, counts them on `warmup_day`), in one
/// hand-off.
pub(crate) async fn lease_claimed(
    conn: &mut SqliteConnection,
    claimed: &[ClaimedDelivery],
    worker: &str,
    lease_until: i64,
    warmup_day: Option<i64>,
) -> Result<(), StoreError> {
    let mut script = Script::default();
    push_lease(&mut script, claimed, worker, lease_until, warmup_day);
    script.run(conn).await.map(|_| ())
}

/// Adds [`lease_claimed`]'s updates to `script`, one statement per chunk.
/// `lease_token + 1` equals what the claim's SELECT returned: its IMMEDIATE transaction holds the write lock.
fn push_lease(
    script: &mut Script,
    claimed: &[ClaimedDelivery],
    worker: &str,
    lease_until: i64,
    warmup_day: Option<i64>,
) {
    for chunk in claimed.chunks(MAX_ROWS_PER_STATEMENT) {
        script.push("UPDATE deliveries SET state = ");
        let qb = script.sql();
        qb.push_bind(DeliveryState::Leased)
            .push(", lease_token = lease_token + 1, lease_owner = ")
            .push_bind(worker)
            .push(", next_attempt_ms = ")
            .push_bind(lease_until);
        if let Some(day) = warmup_day {
            qb.push(", warmup_day_ms = ").push_bind(day).push(", warmup_held = 0");
        }
        qb.push(" WHERE id IN (");
        let mut ids = qb.separated(", ");
        for c in chunk {
            ids.push_bind(c.delivery_id);
        }
        ids.push_unseparated(")");
    }
}

/// What the lease fence returned for one applied outcome.
struct FencedDelivery {
    message_id: String,
    attempt: i32,
    account_id: i64,
    recipient: String,
}

/// [`record_outcomes`] in `tx`, for the deduplicated outcomes `order` (indexes).
async fn record_outcomes_on(
    mut tx: WriteTx,
    outcomes: &[DeliveryOutcome],
    retain_bodies: bool,
    mut order: Vec<usize>,
    applied: &mut [bool],
) -> Result<(), StoreError> {
    let effects: Vec<_> = outcomes.iter().map(outcome_effect).collect();
    // The fence: only the holder of the current lease may write.
    let mut fences = Vec::new();
    let mut sender_reads = Vec::new();
    for chunk in order.chunks(MAX_ROWS_PER_STATEMENT) {
        fences.push(tx.push("WITH o(id, token, st, ds, dm, dms, nat) AS ("));
        tx.sql().push_values(chunk, |mut b, &i| {
            let (o, e) = (&outcomes[i], &effects[i]);
            b.push_bind(o.delivery_id)
                .push_bind(o.lease.0)
                .push_bind(e.state)
                .push_bind(e.deliver_status)
                .push_bind(o.result.message())
                .push_bind(e.deliver_ms)
                .push_bind(e.next_attempt_ms);
        });
        tx.sql().push(
            ") UPDATE deliveries SET state = o.st, deliver_status = o.ds, deliver_message = o.dm, \
             deliver_ms = o.dms, next_attempt_ms = COALESCE(o.nat, deliveries.next_attempt_ms), \
             attempts = deliveries.attempts + 1, lease_owner = NULL \
             FROM o WHERE deliveries.id = o.id AND deliveries.lease_token = o.token AND deliveries.state = ",
        );
        tx.sql().push_bind(DeliveryState::Leased).push(
            " RETURNING deliveries.id AS id, deliveries.lease_token AS token, deliveries.message_id AS message_id, \
             deliveries.attempts AS attempts, deliveries.account_id AS account_id, deliveries.recipient AS recipient",
        );
        // Sender addresses of the messages (statistics are kept per sender domain), in the same hand-off.
        sender_reads.push(tx.push(
            "SELECT id, from_address FROM messages WHERE id IN (SELECT message_id FROM deliveries WHERE id IN (",
        ));
        let mut ids = tx.sql().separated(", ");
        for &i in chunk {
            ids.push_bind(outcomes[i].delivery_id);
        }
        ids.push_unseparated("))");
    }
    let mut rows = tx.flush().await?;
    let mut fenced: HashMap<(i64, i64), FencedDelivery> = HashMap::new();
    for fence in fences {
        for row in rows.take(fence) {
            fenced.insert(
                (row.try_get("id")?, row.try_get("token")?),
                FencedDelivery {
                    message_id: row.try_get("message_id")?,
                    attempt: row.try_get("attempts")?,
                    account_id: row.try_get("account_id")?,
                    recipient: row.try_get("recipient")?,
                },
            );
        }
    }
    let mut senders: HashMap<String, String> = HashMap::new();
    for read in sender_reads {
        for row in rows.take(read) {
            senders.insert(row.try_get("id")?, row.try_get("from_address")?);
        }
    }
    order.retain(|&i| fenced.contains_key(&(outcomes[i].delivery_id, outcomes[i].lease.0)));
    if order.is_empty() {
        tx.commit().await?;
        return Ok(());
    }
    let fence_of = |i: usize| &fenced[&(outcomes[i].delivery_id, outcomes[i].lease.0)];

    for chunk in order.chunks(MAX_ROWS_PER_STATEMENT) {
        tx.push("INSERT INTO delivery_attempts (delivery_id, attempt, at_ms, deliver_status, reply, remote) ");
        tx.sql().push_values(chunk, |mut b, &i| {
            let o = &outcomes[i];
            b.push_bind(o.delivery_id)
                .push_bind(fence_of(i).attempt)
                .push_bind(o.at_ms)
                .push_bind(effects[i].deliver_status)
                .push_bind(o.result.message())
                .push_bind(o.remote.as_deref());
        });
        // The events, in the same transaction as the outcomes: never lost, never invented.
        tx.push("INSERT INTO events (account_id, message_id, recipient, kind, at_ms, reason, bounce_type, cb_state) ");
        tx.sql().push_values(chunk, |mut b, &i| {
            let (o, f) = (&outcomes[i], fence_of(i));
            let (kind, bounce_type) = o.result.event();
            b.push_bind(f.account_id)
                .push_bind(&f.message_id)
                .push_bind(&f.recipient)
                .push_bind(kind.id())
                .push_bind(o.at_ms)
                .push_bind(o.result.message())
                .push_bind(bounce_type.map(|b| b.as_str()));
            crate::callbacks::push_initial_cb_state(&mut b, f.account_id);
        });
    }
    // Hard bounces blacklist their address; rows in outcome order, so the last of an address wins, as one
    // upsert per outcome did (SQLite resolves a multi-row upsert's conflicts row by row).
    let hard: Vec<usize> = order
        .iter()
        .copied()
        .filter(|&i| outcomes[i].result.event().1 == Some(crate::BounceType::Hard))
        .collect();
    for chunk in hard.chunks(MAX_ROWS_PER_STATEMENT) {
        tx.push("INSERT INTO bounce_blacklist (address, account_id, created_ms, reason) ");
        tx.sql().push_values(chunk, |mut b, &i| {
            let (o, f) = (&outcomes[i], fence_of(i));
            b.push_bind(crate::suppression::normalize(&f.recipient))
                .push_bind(f.account_id)
                .push_bind(o.at_ms)
                .push_bind(o.result.message());
        });
        tx.sql().push(crate::suppression::BOUNCE_BLACKLIST_REFRESH);
    }

    let mut delta = crate::daily_statistics::StatsDelta::default();
    let mut finished: BTreeMap<&str, i32> = BTreeMap::new();
    let mut final_recipients: Vec<(&str, &str)> = Vec::new();
    for &i in &order {
        let (o, f) = (&outcomes[i], fence_of(i));
        let from = senders.get(&f.message_id).map(String::as_str).unwrap_or("");
        delta.event(f.account_id, o.at_ms, from, &f.recipient, o.result.event().0, false);
        if effects[i].state == DeliveryState::Done {
            final_recipients.push((&f.message_id, &f.recipient));
            *finished.entry(&f.message_id).or_default() += 1;
        }
        applied[i] = true;
    }
    if !retain_bodies {
        // A final recipient needs its personal body no more (tracked / unsubscribe mail).
        for chunk in final_recipients.chunks(MAX_ROWS_PER_STATEMENT) {
            tx.push("DELETE FROM recipient_bodies WHERE (message_id, recipient) IN (");
            tx.sql().push_values(chunk, |mut b, (m, r)| {
                b.push_bind(*m).push_bind(*r);
            });
            tx.sql().push(")");
        }
    }
    let finished: Vec<(&str, i32)> = finished.into_iter().collect();
    for chunk in finished.chunks(MAX_ROWS_PER_STATEMENT) {
        tx.push("WITH f(id, n) AS (");
        tx.sql().push_values(chunk, |mut b, (id, n)| {
            b.push_bind(*id).push_bind(*n);
        });
        tx.sql()
            .push(") UPDATE messages SET open_count = messages.open_count - f.n FROM f WHERE messages.id = f.id");
        // A message whose last recipient is final: the service does not keep mail content. Decided in SQL, after
        // the update above, so that this needs no round trip of its own.
        if !retain_bodies {
            tx.push("DELETE FROM message_bodies WHERE message_id IN (SELECT id FROM messages WHERE open_count = 0 AND id IN (");
            let mut ids = tx.sql().separated(", ");
            for (id, _) in chunk {
                ids.push_bind(*id);
            }
            ids.push_unseparated("))");
        }
    }
    // Last and in key order (see `stats`).
    crate::daily_statistics::push_sqlite(tx.script(), &delta);
    tx.commit().await?;
    Ok(())
}

/// One request of a batched screen, as the SQLite statement reads it from its JSON argument.
#[derive(serde::Serialize)]
struct ScreenDoc<'a> {
    /// Account.
    a: crate::AccountId,
    /// Sending domain (unsubscribes).
    d: &'a str,
    /// Bounce blacklist entries count from this time on.
    b: i64,
    /// Now (custom blacklist expiry).
    n: i64,
    /// Normalised addresses (blacklists).
    k: &'a [String],
    /// Addresses as sent (unsubscribes).
    r: &'a [String],
}

/// The batched admission screen (`screen`) on SQLite: one statement of fixed text whatever the batch's shape, its requests passed as
/// one JSON array, so the reader connections prepare it once and keep it. Each `json_each` drives the index
/// lookups (`CROSS JOIN` keeps SQLite from scanning an account's rows instead).
pub(crate) async fn recipient_screen_rows(
    reader: &sqlx::SqlitePool,
    qs: &[crate::screen::OwnedScreenQuery],
) -> Result<Vec<(i64, i32, String)>, StoreError> {
    const SCREEN: &str = "\
        SELECT q.key, 0, b.address FROM json_each($1) AS q CROSS JOIN json_each(q.value, '$.k') AS k \
        CROSS JOIN bounce_blacklist AS b WHERE b.address = k.value AND b.created_ms >= q.value ->> 'b' \
        UNION ALL \
        SELECT q.key, 0, c.address FROM json_each($1) AS q CROSS JOIN json_each(q.value, '$.k') AS k \
        CROSS JOIN custom_blacklist AS c WHERE c.account_id = q.value ->> 'a' AND c.address = k.value \
        AND (c.expire_ms IS NULL OR c.expire_ms > q.value ->> 'n') \
        UNION ALL \
        SELECT q.key, 1, u.recipient FROM json_each($1) AS q CROSS JOIN json_each(q.value, '$.r') AS r \
        CROSS JOIN unsubscribes AS u WHERE u.account_id = q.value ->> 'a' AND u.domain = q.value ->> 'd' \
        AND u.recipient = r.value";
    let docs: Vec<ScreenDoc<'_>> = qs
        .iter()
        .map(|q| ScreenDoc {
            a: q.account,
            d: &q.sender_domain,
            b: q.bounce_since_ms,
            n: q.now_ms,
            k: &q.blacklist_keys,
            r: &q.recipients,
        })
        .collect();
    let doc = serde_json::to_string(&docs).map_err(|e| StoreError::Invalid(format!("screen request: {e}")))?;
    Ok(sqlx::query_as(SCREEN).bind(doc).fetch_all(reader).await?)
}

/// The writer's page cache: negative = KiB (SQLite's convention).
const WRITER_CACHE_KIB: &str = "-65536";

/// Prepared statements the writer keeps. Its scripts (`script`) are cached whole, by their text, and a group
/// commit's or an outcome batch's text changes with the number of rows: with sqlx's default of 100 the variants
/// evicted each other and the writer spent a fifth of its time parsing SQL again (a tenth with 512, a twentieth
/// with 2,048). The price is memory: a cached multi-row script holds its program and parameters, about 70 MB
/// more resident at 512 under a steady HTTP load, 95 MB at 2,048.
const WRITER_STATEMENT_CACHE: usize = 512;

/// How long a connection waits for a lock held by another process before SQLITE_BUSY.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Opens (creating if missing) the database, applies migrations, and returns `(writer, reader, spool)`: the
/// body spool (`<file>-spool/`) of a database in a file. For an in-memory database writer and reader are the
/// same single connection (separate connections would need a shared cache, whose table locks fail fast with
/// SQLITE_LOCKED instead of waiting), and there is no spool.
pub(crate) async fn open(
    url: &str,
    opts: &StoreOptions,
    spool_tuning: Tuning,
) -> Result<(SqlitePool, SqlitePool, Option<BodySpool>), crate::StoreError> {
    let memory = url.contains(":memory:") || url.contains("mode=memory");
    let base = SqliteConnectOptions::from_str(url)?
        .create_if_missing(true)
        .foreign_keys(true)
        .busy_timeout(BUSY_TIMEOUT)
        // FULL: fsync the WAL on every commit. With NORMAL, WAL mode only syncs at checkpoints, so a power loss
        // can drop the last commits, i.e. messages whose MessageId (or SMTP 250) was already returned.
        // Group commit is what makes FULL affordable: one fsync covers a whole batch.
        .synchronous(SqliteSynchronous::Full);
    // WAL: readers do not block the writer and vice versa; persistent in the file once set.
    // A page cache of 64 MB on the writer (the default is 2 MB): the queue's indexes and tables outgrow 2 MB
    // with a large backlog, and then every insert read its B-tree pages back from the OS with a syscall.
    let writer_opts = base
        .clone()
        .journal_mode(SqliteJournalMode::Wal)
        // Incremental: a new file gives pruned pages back (`retention`); takes effect before the first table.
        .auto_vacuum(sqlx::sqlite::SqliteAutoVacuum::Incremental)
        .pragma("cache_size", WRITER_CACHE_KIB)
        // `wal_autocheckpoint` stays at SQLite's 1,000 frames. At 4,000 a checkpoint copies fewer rewritten pages
        // per mail (100 KB mail over SMTP +11 %, HTTP RSA +6–10 %), but it runs on this connection and stalls every
        // write while it copies and fsyncs: trigger mail's accept → sink p99 rose from a median of ~65 ms to ~115.
        .statement_cache_capacity(WRITER_STATEMENT_CACHE);
    let writer = SqlitePoolOptions::new()
        .max_connections(1)
        .min_connections(1)
        // No ping before each use: a connection to a local file has no peer to lose, and the ping was one
        // more round trip to the connection's thread (a wake-up) per operation. sqlx still pings on release.
        .test_before_acquire(false)
        // Keep the one connection for the life of the store (and with it an in-memory database).
        .idle_timeout(None)
        .max_lifetime(None)
        // The one writer is a FIFO queue: waiting for it is bounded by the operation deadline, not the
        // (short) acquire timeout meant for a pool of peers.
        .acquire_timeout(opts.operation_timeout)
        .connect_with(writer_opts)
        .await?;
    sqlx::migrate!("./migrations/sqlite").run(&writer).await?;
    crate::retention::ensure_incremental_auto_vacuum(&writer).await?;
    let reader = if memory {
        writer.clone()
    } else {
        SqlitePoolOptions::new()
            .max_connections(opts.max_connections.max(1))
            .acquire_timeout(opts.acquire_timeout)
            // As the writer's: no ping before each read.
            .test_before_acquire(false)
            .connect_with(base.clone())
            .await?
    };
    let spool = if memory {
        None
    } else {
        let mut dir = base.get_filename().as_os_str().to_owned();
        dir.push("-spool");
        Some(BodySpool::open(std::path::Path::new(&dir), spool_tuning)?)
    };
    Ok((writer, reader, spool))
}

/// Writes a batch of messages in one transaction (one fsync), checking admission limits message by message
/// first (the single writer connection serializes every process on the file). Per message: `None` (stored) or
/// the refusal (nothing of it stored); and the ids of the deliveries leased at insert (`lease`, see
/// `handoff`), in recipient order.
///
/// One hand-off to the connection's thread for the whole transaction, two when limits are checked (their reads
/// decide the writes): see `script`.
///
/// Large bodies go to the spool (`body_spool`): written before the transaction waits for the writer, synced
/// while it waits and checks limits, and on disk before the commit.
pub(crate) async fn insert_batch(
    pool: &SqlitePool,
    spool: Option<&BodySpool>,
    msgs: &mut [(NewMessage, Option<AdmissionLimits>)],
    retain_bodies: bool,
    lease: Option<LeaseRequest<'_>>,
) -> Result<InsertedBatch, crate::StoreError> {
    // Retained bodies stay: they would outlive their segments and only be moved into the database later.
    // Indices into `msgs` (ids are read again after `check_limits`, which borrows `msgs` mutably).
    let (mut to_spool, mut appending) = (Vec::new(), None);
    if let Some(s) = spool.filter(|_| !retain_bodies) {
        to_spool = (0..msgs.len())
            .filter(|&i| {
                let m = &msgs[i].0;
                m.body.len() >= s.tuning().min_bytes && crate::delivery_rows::open_count(m) > 0
            })
            .collect();
        if !to_spool.is_empty() {
            let bodies: Vec<&[u8]> = to_spool.iter().map(|&i| msgs[i].0.body.as_slice()).collect();
            appending = s.append(&bodies)?;
        }
    }
    let mut tx = WriteTx::begin(pool, Durability::Full).await?;
    let refusals = if msgs.iter().any(|(_, l)| l.is_some()) {
        check_limits(&mut tx, msgs).await?
    } else {
        vec![None; msgs.len()]
    };
    let admitted = crate::limits::admitted(msgs, &refusals);
    let plan = lease.map(|l| l.plan(&refusals));
    let mut spooled = HashMap::new();
    if let Some(appending) = appending {
        for (&i, r) in to_spool.iter().zip(appending.durable().await?) {
            spooled.insert(msgs[i].0.id.as_str(), r);
        }
    }
    let mut delta = crate::daily_statistics::StatsDelta::default();
    let leases = push_rows(
        tx.script(),
        &admitted,
        retain_bodies,
        &spooled,
        &mut delta,
        plan.as_ref(),
    );
    crate::daily_statistics::push_sqlite(tx.script(), &delta);
    let mut rows = tx.commit().await?;
    let ids = leases.ids(&mut rows, &admitted)?;
    Ok(InsertedBatch::new(refusals, ids))
}

/// Loads the limited accounts' counters and recent recipient sends (sent at once, with the BEGIN), decides, and
/// adds the counters' write-back to the pending script.
async fn check_limits(
    tx: &mut WriteTx,
    msgs: &mut [(NewMessage, Option<AdmissionLimits>)],
) -> Result<Vec<Option<LimitRefusal>>, crate::StoreError> {
    let accounts = crate::limits::limited_accounts(msgs);
    let mut states: HashMap<AccountId, AccountState> = HashMap::new();
    let mut usage_reads = Vec::new();
    for chunk in accounts.chunks(MAX_ROWS_PER_STATEMENT) {
        tx.push("INSERT OR IGNORE INTO account_limits (account_id) ");
        tx.sql().push_values(chunk, |mut b, a| {
            b.push_bind(*a);
        });
        usage_reads.push(tx.push(
            "SELECT account_id, sends_per_second, per_recipient_per_hour, daily_cap, second_ms, second_count, \
             day_ms, day_count FROM account_limits WHERE account_id IN (",
        ));
        let mut list = tx.sql().separated(", ");
        for a in chunk {
            list.push_bind(*a);
        }
        list.push_unseparated(")");
    }
    // Per-second counts from the batch's oldest second on (every second `decide` may count a mail in).
    let oldest_second = crate::limits::oldest_checked_second(msgs);
    let mut second_reads = Vec::new();
    for account in &accounts {
        second_reads.push((
            *account,
            tx.push("SELECT second_ms, sends FROM account_send_seconds WHERE account_id = "),
        ));
        tx.sql()
            .push_bind(*account)
            .push(" AND second_ms >= ")
            .push_bind(oldest_second);
    }
    // Recent sends of every recipient in the batch, one query per account (and chunk). The window starts an
    // hour before the batch's earliest request: `decide` filters each message's own hour.
    let since = msgs.iter().map(|(m, _)| m.request_ms).min().unwrap_or(0) - crate::limits::HOUR_MS;
    let mut recent_reads = Vec::new();
    for account in &accounts {
        let st = states.entry(*account).or_default();
        let mut wanted: Vec<&str> = msgs
            .iter()
            .filter(|(m, lim)| lim.is_some() && m.account_id == *account)
            .flat_map(|(m, _)| m.recipients.iter().map(|r| r.address.as_str()))
            .collect();
        wanted.sort_unstable();
        wanted.dedup();
        for chunk in wanted.chunks(MAX_ROWS_PER_STATEMENT) {
            recent_reads.push((
                *account,
                tx.push("SELECT recipient, at_ms FROM recipient_sends WHERE account_id = "),
            ));
            tx.sql()
                .push_bind(*account)
                .push(" AND at_ms > ")
                .push_bind(since)
                .push(" AND recipient IN (");
            let mut list = tx.sql().separated(", ");
            for r in chunk {
                list.push_bind(*r);
            }
            list.push_unseparated(")");
            for r in chunk {
                st.recent.insert((*r).to_string(), Vec::new());
            }
        }
    }
    let mut rows = tx.flush().await?;
    for read in usage_reads {
        for row in rows.take(read) {
            let account: AccountId = row.try_get("account_id")?;
            if let Some(st) = states.get_mut(&account) {
                st.usage = <crate::limits::AccountUsage as sqlx::FromRow<_>>::from_row(&row)?;
            }
        }
    }
    for (account, read) in second_reads {
        let Some(st) = states.get_mut(&account) else { continue };
        for row in rows.take(read) {
            st.seconds.insert(row.try_get("second_ms")?, row.try_get("sends")?);
        }
    }
    for (account, read) in recent_reads {
        let Some(st) = states.get_mut(&account) else { continue };
        for row in rows.take(read) {
            let recipient: String = row.try_get("recipient")?;
            st.recent.entry(recipient).or_default().push(row.try_get("at_ms")?);
        }
    }
    let refusals = crate::limits::decide_batch(msgs, &mut states);
    for (account, st) in &states {
        if !st.dirty {
            continue;
        }
        let u = &st.usage;
        tx.push("UPDATE account_limits SET second_ms = ");
        tx.sql()
            .push_bind(u.second_ms)
            .push(", second_count = ")
            .push_bind(u.second_count)
            .push(", day_ms = ")
            .push_bind(u.day_ms)
            .push(", day_count = ")
            .push_bind(u.day_count)
            .push(" WHERE account_id = ")
            .push_bind(*account);
        if let Some(before) = st.prune_before {
            tx.push("DELETE FROM recipient_sends WHERE account_id = ");
            tx.sql().push_bind(*account).push(" AND at_ms <= ").push_bind(before);
            tx.push("DELETE FROM account_send_seconds WHERE account_id = ");
            tx.sql()
                .push_bind(*account)
                .push(" AND second_ms < ")
                .push_bind(st.seconds_kept_from());
        }
        let writes: Vec<(i64, i64)> = st.second_writes().collect();
        for chunk in writes.chunks(MAX_ROWS_PER_STATEMENT) {
            tx.push("INSERT INTO account_send_seconds (account_id, second_ms, sends) ");
            tx.sql().push_values(chunk, |mut b, (second, n)| {
                b.push_bind(*account).push_bind(*second).push_bind(*n);
            });
            tx.sql()
                .push(" ON CONFLICT (account_id, second_ms) DO UPDATE SET sends = excluded.sends");
        }
        for chunk in st.new_sends.chunks(MAX_ROWS_PER_STATEMENT) {
            tx.push("INSERT INTO recipient_sends (account_id, recipient, at_ms) ");
            tx.sql().push_values(chunk, |mut b, (recipient, at)| {
                b.push_bind(*account).push_bind(recipient).push_bind(*at);
            });
        }
    }
    Ok(refusals)
}

/// Most body bytes one multi-row `INSERT INTO message_bodies` carries (bound values are copied).
const MAX_BODY_BYTES_PER_STATEMENT: usize = 8 << 20;

/// The deliveries an insert script writes leased, to read their ids from its rows once it ran.
struct PendingLeases<'m> {
    /// (message index, recipient) of every delivery, in insert order.
    deliveries: Vec<(usize, &'m NewRecipient, bool)>,
    /// The statements that return leased rows, with the range of `deliveries` each inserted.
    returning: Vec<(Stmt, std::ops::Range<usize>)>,
}

impl PendingLeases<'_> {
    /// The leased deliveries' ids per message (in recipient order; empty when not leased).
    fn ids(self, rows: &mut ScriptRows, msgs: &[&NewMessage]) -> Result<Vec<Vec<i64>>, crate::StoreError> {
        let mut leased_ids: Vec<Vec<i64>> = vec![Vec::new(); msgs.len()];
        for (stmt, range) in self.returning {
            // Matched by key, since RETURNING promises no order.
            let mut returned = ReturnedLeases::from_rows(&rows.take(stmt))?;
            for &(i, r, leased) in &self.deliveries[range] {
                if leased {
                    leased_ids[i].push(returned.take(msgs[i], r)?);
                }
            }
        }
        Ok(leased_ids)
    }
}

/// Adds to `script` the inserts of the messages, their bodies (of those in `spooled`, where they are),
/// deliveries and admission-time `dropped` events, with one multi-row statement per table (per chunk). The
/// deliveries of messages `plan` leases are written leased, their statements returning them.
fn push_rows<'m>(
    script: &mut Script,
    msgs: &[&'m NewMessage],
    retain_bodies: bool,
    spooled: &HashMap<&str, SpoolRef>,
    delta: &mut crate::daily_statistics::StatsDelta,
    plan: Option<&LeasePlan<'_>>,
) -> PendingLeases<'m> {
    let mut pending = PendingLeases {
        deliveries: Vec::new(),
        returning: Vec::new(),
    };
    if msgs.is_empty() {
        return pending;
    }
    for chunk in msgs.chunks(MAX_ROWS_PER_STATEMENT) {
        script.push(
            "INSERT INTO messages (id, account_id, envelope_from, from_address, subject, lane, request_ms, \
             not_before_ms, expires_ms, open_count, template_id, tls_requirement) ",
        );
        script.sql().push_values(chunk, |mut b, m| {
            b.push_bind(m.id.as_str())
                .push_bind(m.account_id)
                .push_bind(&m.envelope_from)
                .push_bind(&m.from_address)
                .push_bind(&m.subject)
                .push_bind(m.lane.code())
                .push_bind(m.request_ms)
                .push_bind(m.not_before_ms)
                .push_bind(m.expires_ms)
                .push_bind(crate::delivery_rows::open_count(m))
                .push_bind(m.template_id)
                .push_bind(m.tls_requirement.code());
        });
    }
    // Bodies of messages with something to deliver, in statements of bounded size.
    let with_body: Vec<&NewMessage> = msgs
        .iter()
        .copied()
        .filter(|m| retain_bodies || crate::delivery_rows::open_count(m) > 0)
        .collect();
    let inline_len = |m: &NewMessage| {
        if spooled.contains_key(m.id.as_str()) {
            0
        } else {
            m.body.len()
        }
    };
    let mut start = 0;
    while start < with_body.len() {
        let (mut end, mut bytes) = (start, 0usize);
        while end < with_body.len()
            && (end == start
                || (end - start < MAX_ROWS_PER_STATEMENT
                    && bytes + inline_len(with_body[end]) <= MAX_BODY_BYTES_PER_STATEMENT))
        {
            bytes += inline_len(with_body[end]);
            end += 1;
        }
        script.push("INSERT INTO message_bodies (message_id, body, spool_segment, spool_offset, spool_length) ");
        script.sql().push_values(&with_body[start..end], |mut b, m| {
            b.push_bind(m.id.as_str());
            match spooled.get(m.id.as_str()) {
                Some(r) => b
                    .push_bind(&m.body[..0])
                    .push_bind(r.segment)
                    .push_bind(r.offset)
                    .push_bind(r.length),
                None => b
                    .push_bind(&m.body)
                    .push_bind(None::<i64>)
                    .push_bind(None::<i64>)
                    .push_bind(None::<i64>),
            };
        });
        start = end;
    }
    // (message index, recipient, sender domain, lease expiry when leased at insert)
    let mut deliveries: Vec<(usize, &NewRecipient, String, Option<i64>)> = Vec::new();
    for (i, &m) in msgs.iter().enumerate() {
        let sender_domain = crate::delivery_rows::sender_domain(m);
        let lease_until = plan.and_then(|p| p.lease_until(i, m));
        for r in &m.recipients {
            let leased = lease_until.filter(|_| r.send_status.is_ok());
            deliveries.push((i, r, sender_domain.clone(), leased));
        }
    }
    for (i, r, _, _) in &deliveries {
        delta.request(msgs[*i], r);
    }
    let worker = plan.map(|p| p.worker);
    for (n, chunk) in deliveries.chunks(MAX_ROWS_PER_STATEMENT).enumerate() {
        let stmt = script.push(
            "INSERT INTO deliveries (message_id, account_id, recipient, domain, kind, lane, request_ms, state, \
             send_status, deliver_status, deliver_message, deliver_ms, next_attempt_ms, sender_domain, lease_token, \
             lease_owner) ",
        );
        script.sql().push_values(chunk, |mut b, (i, r, sender_domain, leased)| {
            let m = msgs[*i];
            let init = delivery_init(m, r);
            b.push_bind(m.id.as_str())
                .push_bind(m.account_id)
                .push_bind(&r.address)
                .push_bind(&r.domain)
                .push_bind(r.kind.as_str())
                .push_bind(m.lane.code())
                .push_bind(m.request_ms)
                .push_bind(if leased.is_some() {
                    DeliveryState::Leased
                } else {
                    init.state
                })
                .push_bind(r.send_status.code())
                .push_bind(init.deliver_status)
                .push_bind(init.deliver_message)
                .push_bind(init.deliver_ms)
                .push_bind(leased.unwrap_or(m.not_before_ms))
                .push_bind(sender_domain.as_str())
                .push_bind(i64::from(leased.is_some()))
                .push_bind(leased.and(worker));
        });
        if chunk.iter().any(|d| d.3.is_some()) {
            // The leased rows' ids, for the hand-off.
            script.sql().push(" RETURNING id, message_id, recipient, kind, state");
            let first = n * MAX_ROWS_PER_STATEMENT;
            pending.returning.push((stmt, first..first + chunk.len()));
        }
    }
    // Recipients refused at admission: their `dropped` events are written with the message.
    let dropped: Vec<(&NewMessage, &NewRecipient)> = deliveries
        .iter()
        .filter(|(_, r, _, _)| !r.send_status.is_ok())
        .map(|(i, r, _, _)| (msgs[*i], *r))
        .collect();
    for chunk in dropped.chunks(MAX_ROWS_PER_STATEMENT) {
        script.push("INSERT INTO events (account_id, message_id, recipient, kind, at_ms, reason, cb_state) ");
        script.sql().push_values(chunk, |mut b, (m, r)| {
            b.push_bind(m.account_id)
                .push_bind(m.id.as_str())
                .push_bind(&r.address)
                .push_bind(mailpush_model::EventKind::Dropped.id())
                .push_bind(m.request_ms)
                .push_bind(delivery_init(m, r).deliver_message);
            crate::callbacks::push_initial_cb_state(&mut b, m.account_id);
        });
    }
    pending.deliveries = deliveries
        .into_iter()
        .map(|(i, r, _, leased)| (i, r, leased.is_some()))
        .collect();
    pending
}

/// The SQLite claim with warm-up on the writer: leases up to `want` due deliveries of `lane` within their domains'
/// allowances and holds the ones over it.
async fn warmup_claim_lane_on(
    conn: &mut sqlx::SqliteConnection,
    lane: Lane,
    r: &ClaimRequest,
    lease_until: i64,
    want: i64,
    ramp: &WarmupRamp,
) -> Result<Vec<ClaimedDelivery>, StoreError> {
    let today = day_start(r.now_ms);
    let mut tx = sqlx::Connection::begin_with(conn, "BEGIN IMMEDIATE").await?;
    // (due, id) order = acceptance order among rows due at the same time (held rows all wake at midnight).
    let rows = sqlx::query(
        "SELECT d.id, d.message_id, d.account_id, d.recipient, d.domain, d.kind, d.lane, d.attempts, \
         d.request_ms, d.lease_token + 1 AS lease_token, d.sender_domain, d.warmup_day_ms, \
         m.envelope_from, m.expires_ms, m.tls_requirement \
         FROM deliveries d JOIN messages m ON m.id = d.message_id \
         WHERE d.state < 2 AND d.lane = $1 AND d.next_attempt_ms <= $2 \
         ORDER BY d.next_attempt_ms, d.id LIMIT $3",
    )
    .bind(lane.code())
    .bind(r.now_ms)
    .bind(pick_limit(want))
    .fetch_all(&mut *tx)
    .await?;
    if rows.is_empty() {
        tx.commit().await?;
        return Ok(Vec::new());
    }
    let candidates = rows
        .iter()
        .map(Candidate::from_row)
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    let mut counters: HashMap<(i64, String), Counter> = HashMap::new();
    for c in &candidates {
        let key = (c.account_id, c.sender_domain.clone());
        if counters.contains_key(&key) {
            continue;
        }
        let counter: Option<Counter> = sqlx::query_as(
            "SELECT first_day_ms, day_ms, day_count FROM domain_warmup WHERE account_id = $1 AND domain = $2",
        )
        .bind(c.account_id)
        .bind(&c.sender_domain)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(counter) = counter {
            counters.insert(key, counter);
        }
    }
    let want_n = usize::try_from(want).unwrap_or(usize::MAX);
    let verdicts = decide_all(&candidates, &mut counters, ramp, today, want_n);
    let mut out = Vec::new();
    for ((row, c), v) in rows.iter().zip(&candidates).zip(&verdicts) {
        match v {
            Verdict::Lease => out.push(claimed_from_row(row)?),
            Verdict::Hold(message) => {
                sqlx::query(
                    "UPDATE deliveries SET state = $1, next_attempt_ms = $2, warmup_held = 1, \
                     deliver_message = $3 WHERE id = $4",
                )
                .bind(DeliveryState::Pending)
                .bind(today + DAY_MS)
                .bind(message)
                .bind(c.id)
                .execute(&mut *tx)
                .await?;
            }
            Verdict::Skip => {}
        }
    }
    lease_claimed(&mut tx, &out, &r.worker, lease_until, Some(today)).await?;
    for ((account, domain), counter) in &counters {
        if !counter.dirty {
            continue;
        }
        sqlx::query(
            "INSERT INTO domain_warmup (account_id, domain, first_day_ms, day_ms, day_count) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (account_id, domain) DO UPDATE SET \
             day_ms = excluded.day_ms, day_count = excluded.day_count",
        )
        .bind(account)
        .bind(domain)
        .bind(counter.first_day_ms)
        .bind(counter.day_ms)
        .bind(counter.day_count)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(out)
}
