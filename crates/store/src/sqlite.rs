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

use crate::limits::{AccountState, AdmissionLimits, LimitRefusal};
use crate::{NewMessage, StoreOptions, delivery_init, outcome_effect};

crate::common::common_ops! { db = Sqlite }

/// Opens every write transaction. IMMEDIATE takes the write lock at once, so a transaction never has to upgrade
/// from reader to writer, which in WAL mode can fail with SQLITE_BUSY_SNAPSHOT whatever the busy_timeout
/// (another process may share the file).
const BEGIN_WRITE: &str = "BEGIN IMMEDIATE";

/// Leases up to `want` due deliveries of one lane, in due order.
///
/// Select, then update row by row, inside one IMMEDIATE transaction: the write lock is held from the start, so no
/// other writer (in this process or another) can claim in between. A single `UPDATE … RETURNING` cannot fetch
/// the message columns cheaply: SQLite evaluates a correlated subquery in RETURNING without its index (a scan
/// of `messages` per row), and RETURNING may not reference joined tables.
async fn claim_lane(
    pool: &SqlitePool,
    lane: i32,
    r: &ClaimRequest,
    lease_until: i64,
    want: i64,
) -> Result<Vec<ClaimedDelivery>, StoreError> {
    let mut tx = pool.begin_with(BEGIN_WRITE).await?;
    let rows = sqlx::query(
        "SELECT d.id, d.message_id, d.account_id, d.recipient, d.domain, d.kind, d.lane, d.attempts, \
         d.request_ms, d.lease_token + 1 AS lease_token, m.envelope_from, m.expires_ms \
         FROM deliveries d JOIN messages m ON m.id = d.message_id \
         WHERE d.state < 2 AND d.lane = $1 AND d.next_attempt_ms <= $2 \
         ORDER BY d.next_attempt_ms LIMIT $3",
    )
    .bind(lane)
    .bind(r.now_ms)
    .bind(want)
    .fetch_all(&mut *tx)
    .await?;
    let claimed = rows.iter().map(claimed_from_row).collect::<Result<Vec<_>, _>>()?;
    for c in &claimed {
        sqlx::query(
            "UPDATE deliveries SET state = $1, lease_token = $2, lease_owner = $3, next_attempt_ms = $4 WHERE id = $5",
        )
        .bind(state::LEASED)
        .bind(c.lease.0)
        .bind(&r.worker)
        .bind(lease_until)
        .bind(c.delivery_id)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(claimed)
}

/// Records outcomes statement by statement inside one transaction (in-process calls are cheap).
pub(crate) async fn record_outcomes(
    pool: &SqlitePool,
    outcomes: &[DeliveryOutcome],
    retain_bodies: bool,
) -> Result<Vec<bool>, StoreError> {
    let mut applied = vec![false; outcomes.len()];
    if outcomes.is_empty() {
        return Ok(applied);
    }
    // Deliveries in id order, then messages in id order (the same order as the PostgreSQL backend).
    let mut order: Vec<usize> = (0..outcomes.len()).collect();
    order.sort_by_key(|&i| outcomes[i].delivery_id);
    let mut finished: BTreeMap<String, i32> = BTreeMap::new();
    let mut delta = crate::stats::StatsDelta::default();
    let mut senders: HashMap<String, String> = HashMap::new();

    let mut tx = pool.begin_with(BEGIN_WRITE).await?;
    for i in order {
        let o = &outcomes[i];
        let effect = outcome_effect(o);
        // The fence: only the holder of the current lease may write.
        let row = sqlx::query(
            "UPDATE deliveries SET state = $1, deliver_status = $2, deliver_message = $3, \
             deliver_ms = $4, next_attempt_ms = COALESCE($5, next_attempt_ms), \
             attempts = attempts + 1, lease_owner = NULL \
             WHERE id = $6 AND lease_token = $7 AND state = $8 \
             RETURNING message_id, attempts, account_id, recipient",
        )
        .bind(effect.state)
        .bind(effect.deliver_status)
        .bind(o.result.message())
        .bind(effect.deliver_ms)
        .bind(effect.next_attempt_ms)
        .bind(o.delivery_id)
        .bind(o.lease.0)
        .bind(state::LEASED)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else { continue };
        let message_id: String = row.try_get("message_id")?;
        let attempt: i32 = row.try_get("attempts")?;
        let account_id: i64 = row.try_get("account_id")?;
        let recipient: String = row.try_get("recipient")?;
        sqlx::query(
            "INSERT INTO delivery_attempts (delivery_id, attempt, at_ms, deliver_status, reply, remote) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(o.delivery_id)
        .bind(attempt)
        .bind(o.at_ms)
        .bind(effect.deliver_status)
        .bind(o.result.message())
        .bind(o.remote.as_deref())
        .execute(&mut *tx)
        .await?;
        // The event, in the same transaction as the outcome: never lost, never invented.
        let (kind, bounce_type) = o.result.event();
        sqlx::query(
            "INSERT INTO events (account_id, message_id, recipient, kind, at_ms, reason, bounce_type) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(account_id)
        .bind(&message_id)
        .bind(&recipient)
        .bind(kind.id())
        .bind(o.at_ms)
        .bind(o.result.message())
        .bind(bounce_type.map(|b| b.as_str()))
        .execute(&mut *tx)
        .await?;
        if bounce_type == Some(crate::BounceType::Hard) {
            sqlx::query(crate::suppression::UPSERT_BOUNCE_BLACKLIST)
                .bind(crate::suppression::normalize(&recipient))
                .bind(account_id)
                .bind(o.at_ms)
                .bind(o.result.message())
                .execute(&mut *tx)
                .await?;
        }
        #[allow(clippy::map_entry)] // the entry cannot be held across the await below
        if !senders.contains_key(&message_id) {
            let from: Option<String> = sqlx::query_scalar("SELECT from_address FROM messages WHERE id = $1")
                .bind(&message_id)
                .fetch_optional(&mut *tx)
                .await?;
            senders.insert(message_id.clone(), from.unwrap_or_default());
        }
        let from = senders.get(&message_id).map(String::as_str).unwrap_or("");
        delta.event(account_id, o.at_ms, from, &recipient, kind, false);
        if effect.state == state::DONE {
            // A final recipient needs its personal body no more (tracked / unsubscribe mail).
            if !retain_bodies {
                sqlx::query("DELETE FROM recipient_bodies WHERE message_id = $1 AND recipient = $2")
                    .bind(&message_id)
                    .bind(&recipient)
                    .execute(&mut *tx)
                    .await?;
            }
            *finished.entry(message_id).or_default() += 1;
        }
        applied[i] = true;
    }
    for (message_id, n) in &finished {
        let open: i32 =
            sqlx::query_scalar("UPDATE messages SET open_count = open_count - $1 WHERE id = $2 RETURNING open_count")
                .bind(*n)
                .bind(message_id)
                .fetch_one(&mut *tx)
                .await?;
        // The last recipient is final: the service does not keep mail content.
        if open == 0 && !retain_bodies {
            sqlx::query("DELETE FROM message_bodies WHERE message_id = $1")
                .bind(message_id)
                .execute(&mut *tx)
                .await?;
        }
    }
    // Last and in key order (see `stats`).
    crate::stats::apply_sqlite(&mut tx, &delta).await?;
    tx.commit().await?;
    Ok(applied)
}

/// How long a connection waits for a lock held by another process before SQLITE_BUSY.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Opens (creating if missing) the database, applies migrations, and returns `(writer, reader)`.
/// For an in-memory database both are the same single connection: separate connections would need a shared
/// cache, whose table locks fail fast with SQLITE_LOCKED instead of waiting.
pub(crate) async fn open(url: &str, opts: &StoreOptions) -> Result<(SqlitePool, SqlitePool), crate::StoreError> {
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
    let writer_opts = base.clone().journal_mode(SqliteJournalMode::Wal);
    let writer = SqlitePoolOptions::new()
        .max_connections(1)
        .min_connections(1)
        // Keep the one connection for the life of the store (and with it an in-memory database).
        .idle_timeout(None)
        .max_lifetime(None)
        .connect_with(writer_opts)
        .await?;
    sqlx::migrate!("./migrations/sqlite").run(&writer).await?;
    let reader = if memory {
        writer.clone()
    } else {
        SqlitePoolOptions::new()
            .max_connections(opts.max_connections.max(1))
            .connect_with(base)
            .await?
    };
    Ok((writer, reader))
}

/// Writes a batch of messages in one transaction (one fsync), checking admission limits message by message
/// first (the single writer connection serializes every process on the file). Returns per message `None`
/// (stored) or the refusal (nothing of it stored).
pub(crate) async fn insert_batch(
    pool: &SqlitePool,
    msgs: &mut [(NewMessage, Option<AdmissionLimits>)],
    retain_bodies: bool,
) -> Result<Vec<Option<LimitRefusal>>, crate::StoreError> {
    let mut tx = pool.begin_with(BEGIN_WRITE).await?;
    let refusals = if msgs.iter().any(|(_, l)| l.is_some()) {
        check_limits(&mut tx, msgs).await?
    } else {
        vec![None; msgs.len()]
    };
    let mut delta = crate::stats::StatsDelta::default();
    for ((m, _), refused) in msgs.iter().zip(&refusals) {
        if refused.is_none() {
            insert_message(&mut tx, m, retain_bodies, &mut delta).await?;
        }
    }
    crate::stats::apply_sqlite(&mut tx, &delta).await?;
    tx.commit().await?;
    Ok(refusals)
}

/// Loads the limited accounts' counters and recent recipient sends, decides, and writes the counters back.
async fn check_limits(
    conn: &mut SqliteConnection,
    msgs: &mut [(NewMessage, Option<AdmissionLimits>)],
) -> Result<Vec<Option<LimitRefusal>>, crate::StoreError> {
    let mut states: HashMap<AccountId, AccountState> = HashMap::new();
    for (m, lim) in msgs.iter() {
        if lim.is_none() {
            continue;
        }
        #[allow(clippy::map_entry)] // the entry cannot be held across the awaits below
        if !states.contains_key(&m.account_id) {
            sqlx::query("INSERT OR IGNORE INTO account_limits (account_id) VALUES ($1)")
                .bind(m.account_id)
                .execute(&mut *conn)
                .await?;
            let row = sqlx::query(
                "SELECT sends_per_second, per_recipient_per_hour, daily_cap, second_ms, second_count, day_ms, \
                 day_count FROM account_limits WHERE account_id = $1",
            )
            .bind(m.account_id)
            .fetch_one(&mut *conn)
            .await?;
            let st = AccountState {
                usage: crate::limits::usage_from_row(&row)?,
                ..AccountState::default()
            };
            states.insert(m.account_id, st);
        }
        let st = states.get_mut(&m.account_id).ok_or(StoreError::Closed)?;
        for r in &m.recipients {
            if st.recent.contains_key(&r.address) {
                continue;
            }
            let times: Vec<i64> = sqlx::query_scalar(
                "SELECT at_ms FROM recipient_sends WHERE account_id = $1 AND recipient = $2 AND at_ms > $3",
            )
            .bind(m.account_id)
            .bind(&r.address)
            .bind(m.request_ms - crate::limits::HOUR_MS)
            .fetch_all(&mut *conn)
            .await?;
            st.recent.insert(r.address.clone(), times);
        }
    }
    let refusals = crate::limits::decide_batch(msgs, &mut states);
    for (account, st) in &states {
        if !st.dirty {
            continue;
        }
        let u = &st.usage;
        sqlx::query(
            "UPDATE account_limits SET second_ms = $1, second_count = $2, day_ms = $3, day_count = $4 \
             WHERE account_id = $5",
        )
        .bind(u.second_ms)
        .bind(u.second_count)
        .bind(u.day_ms)
        .bind(u.day_count)
        .bind(account)
        .execute(&mut *conn)
        .await?;
        if let Some(before) = st.prune_before {
            sqlx::query("DELETE FROM recipient_sends WHERE account_id = $1 AND at_ms <= $2")
                .bind(account)
                .bind(before)
                .execute(&mut *conn)
                .await?;
        }
        for (recipient, at) in &st.new_sends {
            sqlx::query("INSERT INTO recipient_sends (account_id, recipient, at_ms) VALUES ($1, $2, $3)")
                .bind(account)
                .bind(recipient)
                .bind(at)
                .execute(&mut *conn)
                .await?;
        }
    }
    Ok(refusals)
}

/// Writes messages inside the caller's transaction (the batch runner commits them with its task cursor).
pub(crate) async fn insert_messages(
    conn: &mut SqliteConnection,
    msgs: &[NewMessage],
    retain_bodies: bool,
) -> Result<(), crate::StoreError> {
    let mut delta = crate::stats::StatsDelta::default();
    for m in msgs {
        insert_message(conn, m, retain_bodies, &mut delta).await?;
    }
    crate::stats::apply_sqlite(conn, &delta).await
}

/// Statement by statement: in-process SQLite has no round trips to save, and cached prepared statements are cheap.
async fn insert_message(
    conn: &mut SqliteConnection,
    m: &NewMessage,
    retain_bodies: bool,
    delta: &mut crate::stats::StatsDelta,
) -> Result<(), crate::StoreError> {
    let open = crate::open_count(m);
    sqlx::query(
        "INSERT INTO messages (id, account_id, envelope_from, from_address, subject, lane, request_ms, \
         not_before_ms, expires_ms, open_count, template_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(m.id.as_str())
    .bind(m.account_id)
    .bind(&m.envelope_from)
    .bind(&m.from_address)
    .bind(&m.subject)
    .bind(m.lane)
    .bind(m.request_ms)
    .bind(m.not_before_ms)
    .bind(m.expires_ms)
    .bind(open)
    .bind(m.template_id)
    .execute(&mut *conn)
    .await?;
    if open > 0 || retain_bodies {
        sqlx::query("INSERT INTO message_bodies (message_id, body) VALUES ($1, $2)")
            .bind(m.id.as_str())
            .bind(&m.body)
            .execute(&mut *conn)
            .await?;
    }
    let sender_domain = crate::sender_domain(m);
    for r in &m.recipients {
        let init = delivery_init(m, r);
        let c = delta.at(m.account_id, m.request_ms, &m.from_address, &r.address);
        c.requested += 1;
        if r.send_status == 0 {
            c.accepted += 1;
        } else {
            c.dropped += 1;
        }
        sqlx::query(
            "INSERT INTO deliveries (message_id, account_id, recipient, domain, kind, lane, request_ms, state, \
             send_status, deliver_status, deliver_message, deliver_ms, next_attempt_ms, sender_domain) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        )
        .bind(m.id.as_str())
        .bind(m.account_id)
        .bind(&r.address)
        .bind(&r.domain)
        .bind(r.kind.as_str())
        .bind(m.lane)
        .bind(m.request_ms)
        .bind(init.state)
        .bind(r.send_status)
        .bind(init.deliver_status)
        .bind(init.deliver_message)
        .bind(init.deliver_ms)
        .bind(m.not_before_ms)
        .bind(&sender_domain)
        .execute(&mut *conn)
        .await?;
        if r.send_status != 0 {
            // Refused at admission: its `dropped` event is written with the message.
            sqlx::query(
                "INSERT INTO events (account_id, message_id, recipient, kind, at_ms, reason) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(m.account_id)
            .bind(m.id.as_str())
            .bind(&r.address)
            .bind(mailpush_model::EventKind::Dropped.id())
            .bind(m.request_ms)
            .bind(init.deliver_message)
            .execute(&mut *conn)
            .await?;
        }
    }
    Ok(())
}
crate::limits::limits_ops! { db = sqlx::Sqlite }
crate::warmup::warmup_ops! { db = sqlx::Sqlite }
