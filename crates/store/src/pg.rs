//! The PostgreSQL backend: many api/worker processes on many machines share one database.
//! Claims lock with `FOR UPDATE SKIP LOCKED`, so concurrent workers never take the same row and never wait for
//! each other. `synchronous_commit` stays at its default (on), so a commit is durable when it returns, except on
//! the connections of claims and outcome batches, whose loss to a crash is harmless (`Db::relaxed_writer`).

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicBool, Ordering};

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgConnection, PgPool, Postgres};

use crate::delivery_rows::{delivery_init, outcome_effect};
use crate::handoff::ReturnedLeases;
use crate::limits::{AccountState, AdmissionLimits, LimitRefusal};
use crate::{NewMessage, NewRecipient, StoreOptions};

use crate::warmup::{Candidate, Counter, CounterRow, Verdict, WarmupRamp, decide_all, pick_limit};
use mailpush_model::Lane;
use mailpush_model::clock::{DAY_MS, day_start};
use sqlx::{FromRow, Row};

use crate::deliveries::DeliveryState;
use crate::delivery_rows::claimed_from_row;
use crate::{ClaimRequest, ClaimedDelivery, DeliveryOutcome, StoreError};

/// An outcome batch's events (columns of UNNEST arrays), with their initial callback state.
static INSERT_OUTCOME_EVENTS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT INTO events (account_id, message_id, recipient, kind, at_ms, reason, bounce_type, cb_state) \
         SELECT u.*, {} FROM UNNEST($1::int8[], $2::text[], $3::text[], $4::int4[], $5::int8[], $6::text[], \
         $7::text[]) AS u(a, m, r, k, t, why, bt)",
        crate::callbacks::initial_cb_state("u.a")
    )
});

/// An outcome batch's hard bounces into the global blacklist (UNNEST arrays).
static INSERT_BOUNCE_BLACKLIST: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT INTO bounce_blacklist (address, account_id, created_ms, reason) \
         SELECT * FROM UNNEST($1::text[], $2::int8[], $3::int8[], $4::text[]){}",
        crate::suppression::BOUNCE_BLACKLIST_REFRESH
    )
});

/// The Dropped events of recipients refused at admission (UNNEST arrays; `$6` the Dropped kind).
static INSERT_DROPPED_EVENTS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT INTO events (account_id, message_id, recipient, kind, at_ms, reason, cb_state) \
         SELECT a, m, r, $6, t, why, {} FROM UNNEST($1::int8[], $2::text[], $3::text[], $4::int8[], $5::text[]) \
         AS e(a, m, r, t, why)",
        crate::callbacks::initial_cb_state("e.a")
    )
});

impl crate::sql::Dialect for Postgres {
    const BEGIN_WRITE: &'static str = "BEGIN";
    const LOCK_ROWS: &'static str = " FOR UPDATE";

    /// Writes messages with three statements whatever their number: each table gets its rows as arrays through
    /// UNNEST, saving a network round trip per row. Runs inside the caller's transaction (the group commit, or the
    /// batch runner committing them with its task cursor).
    async fn insert_messages(
        conn: &mut PgConnection,
        msgs: &[NewMessage],
        retain_bodies: bool,
    ) -> Result<(), StoreError> {
        let (_, stats) = insert_leased(conn, msgs, retain_bodies, None).await?;
        crate::daily_statistics::apply_pg(conn, &stats).await
    }

    /// Leases up to `want` due deliveries of one lane, in due order, in one statement.
    ///
    /// `FOR UPDATE SKIP LOCKED` makes concurrent claimers pass over each other's rows instead of waiting or taking
    /// them twice. A row another claimer leased and committed meanwhile is re-checked against the WHERE clause on
    /// its new version (its next_attempt_ms is now the lease expiry, so it no longer qualifies).
    async fn claim_lane(
        pool: &PgPool,
        lane: Lane,
        r: &ClaimRequest,
        lease_until: i64,
        want: i64,
    ) -> Result<Vec<ClaimedDelivery>, StoreError> {
        let rows = sqlx::query(
            "WITH picked AS ( \
                 SELECT id, next_attempt_ms AS due_ms FROM deliveries \
                 WHERE state < 2 AND lane = $1 AND next_attempt_ms <= $2 \
                 ORDER BY next_attempt_ms LIMIT $3 \
                 FOR UPDATE SKIP LOCKED), \
             leased AS ( \
                 UPDATE deliveries AS d \
                 SET state = $4, lease_token = d.lease_token + 1, lease_owner = $5, next_attempt_ms = $6 \
                 FROM picked, messages AS m \
                 WHERE d.id = picked.id AND m.id = d.message_id \
                 RETURNING d.id, d.message_id, d.account_id, d.recipient, d.domain, d.kind, d.lane, d.attempts, \
                     d.request_ms, d.lease_token, m.envelope_from, m.expires_ms, m.tls_requirement, picked.due_ms) \
             SELECT * FROM leased ORDER BY due_ms, id",
        )
        .bind(lane.code())
        .bind(r.now_ms)
        .bind(want)
        .bind(DeliveryState::Leased)
        .bind(&r.worker)
        .bind(lease_until)
        .fetch_all(pool)
        .await?;
        rows.iter().map(claimed_from_row).collect()
    }

    /// Records outcomes in one transaction with a fixed number of statements whatever the batch size (each table
    /// gets its rows as arrays), since every statement is a network round trip.
    ///
    /// Rows are locked first in id order (deliveries, then messages), so concurrent batches from several workers,
    /// which may finish deliveries of the same messages, cannot deadlock.
    async fn record_outcomes(
        pool: &PgPool,
        outcomes: &[DeliveryOutcome],
        retain_bodies: bool,
    ) -> Result<Vec<bool>, StoreError> {
        let mut applied = vec![false; outcomes.len()];
        // Only one outcome per (delivery, lease) can apply: the first. At most one lease per delivery is current.
        let mut index: HashMap<(i64, i64), usize> = HashMap::new();
        for (i, o) in outcomes.iter().enumerate() {
            index.entry((o.delivery_id, o.lease.0)).or_insert(i);
        }
        if index.is_empty() {
            return Ok(applied);
        }
        let mut order: Vec<usize> = index.values().copied().collect();
        order.sort_by_key(|&i| (outcomes[i].delivery_id, i));
        let effects: Vec<_> = order.iter().map(|&i| outcome_effect(&outcomes[i])).collect();
        let ids: Vec<i64> = order.iter().map(|&i| outcomes[i].delivery_id).collect();
        let tokens: Vec<i64> = order.iter().map(|&i| outcomes[i].lease.0).collect();
        let states: Vec<i32> = effects.iter().map(|e| e.state.code()).collect();
        let statuses: Vec<i32> = effects.iter().map(|e| e.deliver_status).collect();
        let messages: Vec<&str> = order.iter().map(|&i| outcomes[i].result.message()).collect();
        let deliver_mss: Vec<Option<i64>> = effects.iter().map(|e| e.deliver_ms).collect();
        let nexts: Vec<Option<i64>> = effects.iter().map(|e| e.next_attempt_ms).collect();

        let mut tx = pool.begin().await?;
        sqlx::query("SELECT id FROM deliveries WHERE id = ANY($1) ORDER BY id FOR UPDATE")
            .bind(&ids)
            .execute(&mut *tx)
            .await?;
        // The fence: only the holder of the current lease may write.
        let rows = sqlx::query(
            "UPDATE deliveries AS d \
             SET state = o.state, deliver_status = o.deliver_status, deliver_message = o.message, \
                 deliver_ms = o.deliver_ms, next_attempt_ms = COALESCE(o.next_attempt_ms, d.next_attempt_ms), \
                 attempts = d.attempts + 1, lease_owner = NULL \
             FROM UNNEST($1::int8[], $2::int8[], $3::int4[], $4::int4[], $5::text[], $6::int8[], $7::int8[]) \
                 AS o(id, lease_token, state, deliver_status, message, deliver_ms, next_attempt_ms), messages AS m \
             WHERE d.id = o.id AND d.lease_token = o.lease_token AND d.state = $8 AND m.id = d.message_id \
             RETURNING d.id, o.lease_token, d.message_id, d.attempts, d.account_id, d.recipient, m.from_address",
        )
        .bind(&ids)
        .bind(&tokens)
        .bind(&states)
        .bind(&statuses)
        .bind(&messages)
        .bind(&deliver_mss)
        .bind(&nexts)
        .bind(DeliveryState::Leased)
        .fetch_all(&mut *tx)
        .await?;

        let mut a_delivery = Vec::with_capacity(rows.len());
        let mut a_attempt = Vec::with_capacity(rows.len());
        let mut a_at = Vec::with_capacity(rows.len());
        let mut a_status = Vec::with_capacity(rows.len());
        let mut a_reply = Vec::with_capacity(rows.len());
        let mut a_remote = Vec::with_capacity(rows.len());
        let mut finished: BTreeMap<String, i32> = BTreeMap::new();
        let mut e_account = Vec::with_capacity(rows.len());
        let mut e_message = Vec::with_capacity(rows.len());
        let mut e_recipient = Vec::with_capacity(rows.len());
        let mut e_kind = Vec::with_capacity(rows.len());
        let mut e_at = Vec::with_capacity(rows.len());
        let mut e_reason = Vec::with_capacity(rows.len());
        let mut e_bounce = Vec::with_capacity(rows.len());
        // Hard bounces to blacklist, one row per (address, account): ON CONFLICT may not touch a row twice.
        let mut blacklist: BTreeMap<(String, i64), (i64, &str)> = BTreeMap::new();
        let mut delta = crate::daily_statistics::StatsDelta::default();
        // Recipients whose personal bodies go with their final state.
        let mut purge_message: Vec<String> = Vec::new();
        let mut purge_recipient: Vec<String> = Vec::new();
        for row in &rows {
            let id: i64 = row.try_get("id")?;
            let token: i64 = row.try_get("lease_token")?;
            let Some(&i) = index.get(&(id, token)) else {
                return Err(StoreError::Corrupt(format!(
                    "outcome update returned an unexpected row {id}"
                )));
            };
            let o = &outcomes[i];
            let effect = outcome_effect(o);
            applied[i] = true;
            a_delivery.push(id);
            a_attempt.push(row.try_get::<i32, _>("attempts")?);
            a_at.push(o.at_ms);
            a_status.push(effect.deliver_status);
            a_reply.push(o.result.message());
            a_remote.push(o.remote.as_deref());
            let account_id: i64 = row.try_get("account_id")?;
            let recipient: String = row.try_get("recipient")?;
            let message_id: String = row.try_get("message_id")?;
            let (kind, bounce_type) = o.result.event();
            if bounce_type == Some(crate::BounceType::Hard) {
                blacklist.insert(
                    (crate::suppression::normalize(&recipient), account_id),
                    (o.at_ms, o.result.message()),
                );
            }
            let from_address: String = row.try_get("from_address")?;
            delta.event(account_id, o.at_ms, &from_address, &recipient, kind, false);
            if effect.state == DeliveryState::Done && !retain_bodies {
                purge_message.push(message_id.clone());
                purge_recipient.push(recipient.clone());
            }
            e_account.push(account_id);
            e_message.push(message_id);
            e_recipient.push(recipient);
            e_kind.push(kind.id());
            e_at.push(o.at_ms);
            e_reason.push(o.result.message());
            e_bounce.push(bounce_type.map(|b| b.as_str()));
            if effect.state == DeliveryState::Done {
                *finished.entry(row.try_get("message_id")?).or_default() += 1;
            }
        }
        if !a_delivery.is_empty() {
            sqlx::query(
                "INSERT INTO delivery_attempts (delivery_id, attempt, at_ms, deliver_status, reply, remote) \
                 SELECT * FROM UNNEST($1::int8[], $2::int4[], $3::int8[], $4::int4[], $5::text[], $6::text[])",
            )
            .bind(&a_delivery)
            .bind(&a_attempt)
            .bind(&a_at)
            .bind(&a_status)
            .bind(&a_reply)
            .bind(&a_remote)
            .execute(&mut *tx)
            .await?;
            // The events, in the same transaction as the outcomes: never lost, never invented.
            sqlx::query(INSERT_OUTCOME_EVENTS.as_str())
                .bind(&e_account)
                .bind(&e_message)
                .bind(&e_recipient)
                .bind(&e_kind)
                .bind(&e_at)
                .bind(&e_reason)
                .bind(&e_bounce)
                .execute(&mut *tx)
                .await?;
        }
        if !blacklist.is_empty() {
            let mut b_address = Vec::with_capacity(blacklist.len());
            let mut b_account = Vec::with_capacity(blacklist.len());
            let mut b_at = Vec::with_capacity(blacklist.len());
            let mut b_reason = Vec::with_capacity(blacklist.len());
            for ((address, account), (at, reason)) in &blacklist {
                b_address.push(address.as_str());
                b_account.push(*account);
                b_at.push(*at);
                b_reason.push(*reason);
            }
            sqlx::query(INSERT_BOUNCE_BLACKLIST.as_str())
                .bind(&b_address)
                .bind(&b_account)
                .bind(&b_at)
                .bind(&b_reason)
                .execute(&mut *tx)
                .await?;
        }
        if !purge_message.is_empty() {
            sqlx::query(
                "DELETE FROM recipient_bodies b USING UNNEST($1::text[], $2::text[]) AS p(m, r) \
                 WHERE b.message_id = p.m AND b.recipient = p.r",
            )
            .bind(&purge_message)
            .bind(&purge_recipient)
            .execute(&mut *tx)
            .await?;
        }
        if !finished.is_empty() {
            let (message_ids, counts): (Vec<&str>, Vec<i32>) = finished.iter().map(|(m, n)| (m.as_str(), *n)).unzip();
            sqlx::query("SELECT id FROM messages WHERE id = ANY($1) ORDER BY id FOR UPDATE")
                .bind(&message_ids)
                .execute(&mut *tx)
                .await?;
            let rows = sqlx::query(
                "UPDATE messages AS m SET open_count = m.open_count - c.n \
                 FROM UNNEST($1::text[], $2::int4[]) AS c(id, n) WHERE m.id = c.id \
                 RETURNING m.id, m.open_count",
            )
            .bind(&message_ids)
            .bind(&counts)
            .fetch_all(&mut *tx)
            .await?;
            // A message whose last recipient is final loses its body: the service does not keep mail content.
            if !retain_bodies {
                let mut done = Vec::new();
                for row in &rows {
                    if row.try_get::<i32, _>("open_count")? == 0 {
                        done.push(row.try_get::<String, _>("id")?);
                    }
                }
                if !done.is_empty() {
                    sqlx::query("DELETE FROM message_bodies WHERE message_id = ANY($1)")
                        .bind(&done)
                        .execute(&mut *tx)
                        .await?;
                }
            }
        }
        // Last and in key order (see `stats`).
        crate::daily_statistics::apply_pg(&mut tx, &delta).await?;
        tx.commit().await?;
        Ok(applied)
    }

    /// The PostgreSQL claim with warm-up: candidates `FOR UPDATE SKIP LOCKED` (claimers never wait for each other's
    /// deliveries), then the domains' counters `FOR UPDATE` in key order (claimers of one domain serialize there, so
    /// together they never exceed its allowance), then array updates.
    /// Leases up to `want` due deliveries of `lane` within their domains' allowances and holds the ones over it.
    async fn claim_lane_with_warmup(
        pool: &PgPool,
        lane: Lane,
        r: &ClaimRequest,
        lease_until: i64,
        want: i64,
        ramp: &WarmupRamp,
    ) -> Result<Vec<ClaimedDelivery>, StoreError> {
        let today = day_start(r.now_ms);
        let mut tx = pool.begin().await?;
        let rows = sqlx::query(
            "SELECT id, account_id, sender_domain, lane, warmup_day_ms FROM deliveries \
             WHERE state < 2 AND lane = $1 AND next_attempt_ms <= $2 \
             ORDER BY next_attempt_ms, id LIMIT $3 FOR UPDATE SKIP LOCKED",
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
        let mut keys: Vec<(i64, String)> = candidates
            .iter()
            .map(|c| (c.account_id, c.sender_domain.clone()))
            .collect();
        keys.sort();
        keys.dedup();
        let k_account: Vec<i64> = keys.iter().map(|k| k.0).collect();
        let k_domain: Vec<&str> = keys.iter().map(|k| k.1.as_str()).collect();
        let k_first: Vec<i64> = vec![today; keys.len()];
        // The first sending day is recorded outside the claim transaction (autocommit): inserting new keys inside
        // it could make two claimers wait on each other's uncommitted inserts in different orders.
        sqlx::query(
            "INSERT INTO domain_warmup (account_id, domain, first_day_ms) \
             SELECT * FROM UNNEST($1::int8[], $2::text[], $3::int8[]) ON CONFLICT DO NOTHING",
        )
        .bind(&k_account)
        .bind(&k_domain)
        .bind(&k_first)
        .execute(pool)
        .await?;
        let counter_rows: Vec<CounterRow> = sqlx::query_as(
            "SELECT w.account_id, w.domain, w.first_day_ms, w.day_ms, w.day_count FROM domain_warmup w \
             JOIN UNNEST($1::int8[], $2::text[]) AS k(a, d) ON w.account_id = k.a AND w.domain = k.d \
             ORDER BY w.account_id, w.domain FOR UPDATE OF w",
        )
        .bind(&k_account)
        .bind(&k_domain)
        .fetch_all(&mut *tx)
        .await?;
        let counters: HashMap<(i64, String), Counter> = counter_rows
            .into_iter()
            .map(|r| ((r.account_id, r.domain), r.counter))
            .collect();
        let want_n = usize::try_from(want).unwrap_or(usize::MAX);
        let mut counters = counters;
        let verdicts = decide_all(&candidates, &mut counters, ramp, today, want_n);
        let mut lease_ids = Vec::new();
        let (mut hold_ids, mut hold_msgs) = (Vec::new(), Vec::new());
        for (c, v) in candidates.iter().zip(&verdicts) {
            match v {
                Verdict::Lease => lease_ids.push(c.id),
                Verdict::Hold(m) => {
                    hold_ids.push(c.id);
                    hold_msgs.push(m.as_str());
                }
                Verdict::Skip => {}
            }
        }
        let mut out = Vec::with_capacity(lease_ids.len());
        if !lease_ids.is_empty() {
            let leased = sqlx::query(
                "UPDATE deliveries AS d \
                 SET state = $1, lease_token = d.lease_token + 1, lease_owner = $2, next_attempt_ms = $3, \
                     warmup_day_ms = $4, warmup_held = 0 \
                 FROM messages AS m WHERE d.id = ANY($5) AND m.id = d.message_id \
                 RETURNING d.id, d.message_id, d.account_id, d.recipient, d.domain, d.kind, d.lane, d.attempts, \
                     d.request_ms, d.lease_token, m.envelope_from, m.expires_ms, m.tls_requirement",
            )
            .bind(DeliveryState::Leased)
            .bind(&r.worker)
            .bind(lease_until)
            .bind(today)
            .bind(&lease_ids)
            .fetch_all(&mut *tx)
            .await?;
            let mut by_id = HashMap::with_capacity(leased.len());
            for row in &leased {
                let c = claimed_from_row(row)?;
                by_id.insert(c.delivery_id, c);
            }
            // In pick order: due time, then acceptance.
            out.extend(lease_ids.iter().filter_map(|id| by_id.remove(id)));
        }
        if !hold_ids.is_empty() {
            sqlx::query(
                "UPDATE deliveries AS d SET state = $1, next_attempt_ms = $2, warmup_held = 1, deliver_message = h.msg \
                 FROM UNNEST($3::int8[], $4::text[]) AS h(id, msg) WHERE d.id = h.id",
            )
            .bind(DeliveryState::Pending)
            .bind(today + DAY_MS)
            .bind(&hold_ids)
            .bind(&hold_msgs)
            .execute(&mut *tx)
            .await?;
        }
        let (mut u_acc, mut u_dom, mut u_day, mut u_n) = (vec![], vec![], vec![], vec![]);
        for ((a, d), c) in &counters {
            if c.dirty {
                u_acc.push(*a);
                u_dom.push(d.as_str());
                u_day.push(c.day_ms);
                u_n.push(c.day_count);
            }
        }
        if !u_acc.is_empty() {
            sqlx::query(
                "UPDATE domain_warmup AS w SET day_ms = u.day, day_count = u.n \
                 FROM UNNEST($1::int8[], $2::text[], $3::int8[], $4::int8[]) AS u(a, d, day, n) \
                 WHERE w.account_id = u.a AND w.domain = u.d",
            )
            .bind(&u_acc)
            .bind(&u_dom)
            .bind(&u_day)
            .bind(&u_n)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(out)
    }
}

/// Connects and applies migrations; returns the pool for everything and the pool of relaxed writes (see
/// `Db::relaxed_writer`). The schema comes from the URL's `search_path`, e.g.
/// `postgres://u@h/db?options=-c%20search_path%3Dmy_schema` (or `?options[search_path]=my_schema`).
pub(crate) async fn open(url: &str, opts: &StoreOptions) -> Result<(PgPool, PgPool), crate::StoreError> {
    let base = PgConnectOptions::from_str(url)?;
    // Migrations on a connection of their own, without the statement timeout: a migration of a large table
    // may rightly run longer than any request should.
    let migrator = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(base.clone())
        .await?;
    sqlx::migrate!("./migrations/postgres").run(&migrator).await?;
    migrator.close().await;
    let statement_ms = opts.statement_timeout.as_millis().max(1);
    // A transaction left idle (its client frozen or gone) would hold its row locks until TCP gives up.
    let idle_tx_ms = (statement_ms * 2).max(30_000);
    let connect = base.options([
        ("statement_timeout", format!("{statement_ms}")),
        ("idle_in_transaction_session_timeout", format!("{idle_tx_ms}")),
    ]);
    // At least two: the group committer holds one while claims and reads use another.
    let pool = pool_options(opts, opts.max_connections.max(2))
        .connect_with(connect.clone())
        .await?;
    // A worker claims and records outcomes one batch at a time (its lease renewals use the other pool), so a
    // few connections serve it. Opened on first use: an api-only process never claims.
    let relaxed =
        pool_options(opts, RELAXED_CONNECTIONS).connect_lazy_with(connect.options([("synchronous_commit", "off")]));
    Ok((pool, relaxed))
}

/// The connections of the relaxed pool at most.
const RELAXED_CONNECTIONS: u32 = 4;

/// The options both pools share.
fn pool_options(opts: &StoreOptions, max_connections: u32) -> PgPoolOptions {
    let ping_within = opts.acquire_timeout;
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(opts.acquire_timeout)
        // A connection given back after an abandoned (timed-out) operation is pinged by the pool without a
        // limit; over a frozen network that ping would hold its slot for as long as the network hangs. Ping it
        // here within a bound first, and close it when it does not answer.
        .after_release(move |conn, _meta| {
            Box::pin(async move {
                Ok(matches!(
                    tokio::time::timeout(ping_within, sqlx::Connection::ping(conn)).await,
                    Ok(Ok(()))
                ))
            })
        })
}

/// Which comes first in the next group commit that checks admission limits: writing the messages or deciding
/// the limits (see [`insert_batch`]).
#[derive(Debug, Default)]
pub(crate) struct AdmissionOrder {
    /// The last such commit refused a message or marked a recipient over its hourly limit.
    decide_first: AtomicBool,
}

/// Writes a batch of messages in one transaction with their admission limits checked message by message.
/// Returns per message `None` (stored) or the refusal (nothing of it stored), and the ids of the deliveries
/// leased at insert (`lease`, see `handoff`).
///
/// The limits lock the accounts' `account_limits` rows until the commit, so api nodes sharing the database
/// admit one batch at a time per account. The messages are therefore written first and the limits decided
/// last, just before the commit: the rows stay locked for the decision and the commit, not for the writes.
/// When the decision refuses anything or marks recipients over their hourly limit, that transaction is rolled
/// back and the batch written again in the other order (decide, then write what was admitted), as the next
/// batches are until one passes whole again: mail over its limits costs one wasted write, not one per batch.
pub(crate) async fn insert_batch(
    pool: &PgPool,
    order: &AdmissionOrder,
    msgs: &mut [(NewMessage, Option<AdmissionLimits>)],
    retain_bodies: bool,
    lease: Option<crate::handoff::LeaseRequest<'_>>,
) -> Result<crate::handoff::InsertedBatch, crate::StoreError> {
    let checked = msgs.iter().any(|(_, l)| l.is_some());
    // Recipients the limits mark change this count; a refused message changes `refusals`.
    let refused_before = refused_recipients(msgs);
    if checked && !order.decide_first.load(Ordering::Relaxed) {
        let unrefused = vec![None; msgs.len()];
        let mut tx = pool.begin().await?;
        let all: Vec<&NewMessage> = msgs.iter().map(|(m, _)| m).collect();
        let plan = lease.as_ref().map(|l| l.plan(&unrefused));
        let (ids, stats) = insert_leased(&mut tx, &all, retain_bodies, plan.as_ref()).await?;
        let refusals = check_limits(&mut tx, msgs).await?;
        if refusals.iter().all(Option::is_none) && refused_recipients(msgs) == refused_before {
            // After the account rows, as in the other order, so the two orders never wait for each other.
            crate::daily_statistics::apply_pg(&mut tx, &stats).await?;
            tx.commit().await?;
            return Ok(crate::handoff::InsertedBatch::new(refusals, ids));
        }
        tx.rollback().await?;
        order.decide_first.store(true, Ordering::Relaxed);
    }
    let mut tx = pool.begin().await?;
    let refusals = if checked {
        check_limits(&mut tx, msgs).await?
    } else {
        vec![None; msgs.len()]
    };
    if checked && refusals.iter().all(Option::is_none) && refused_recipients(msgs) == refused_before {
        order.decide_first.store(false, Ordering::Relaxed);
    }
    let admitted = crate::limits::admitted(msgs, &refusals);
    let plan = lease.map(|l| l.plan(&refusals));
    let ids = if admitted.is_empty() {
        Vec::new()
    } else {
        let (ids, stats) = insert_leased(&mut tx, &admitted, retain_bodies, plan.as_ref()).await?;
        crate::daily_statistics::apply_pg(&mut tx, &stats).await?;
        ids
    };
    tx.commit().await?;
    Ok(crate::handoff::InsertedBatch::new(refusals, ids))
}

/// Recipients of a batch refused at admission (the limits only ever add to them).
fn refused_recipients(msgs: &[(NewMessage, Option<AdmissionLimits>)]) -> usize {
    msgs.iter()
        .flat_map(|(m, _)| &m.recipients)
        .filter(|r| !r.send_status.is_ok())
        .count()
}

/// The channel of [`QueuedAnnouncer`] (the same expression is in its statement): one per schema, so that
/// stores sharing a database in different schemas do not wake each other. PostgreSQL refuses channel names of
/// 64 bytes or more.
const QUEUED_CHANNEL: &str = "SELECT left('mailpush_queued:' || current_schema(), 63)";

/// Tells the workers listening on this schema's channel ([`queued_listener`]) that mail is due, in a
/// statement of its own after the enqueue committed: PostgreSQL serializes the commits of notifying
/// transactions database-wide, which inside the enqueue would hold every other api node's commit (and its
/// fsync) back. Announcements asked for while one is sent fold into the next.
pub(crate) struct QueuedAnnouncer {
    asked: std::sync::Arc<tokio::sync::Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl QueuedAnnouncer {
    /// Starts the task that sends the announcements on `pool`.
    pub(crate) fn start(pool: PgPool) -> QueuedAnnouncer {
        let asked = std::sync::Arc::new(tokio::sync::Notify::new());
        let waiting = asked.clone();
        let task = tokio::spawn(async move {
            loop {
                waiting.notified().await;
                match sqlx::query("SELECT pg_notify(left('mailpush_queued:' || current_schema(), 63), '')")
                    .execute(&pool)
                    .await
                {
                    Ok(_) => {}
                    Err(sqlx::Error::PoolClosed) => break,
                    // The workers' idle poll still finds the mail.
                    Err(e) => tracing::warn!(error = %e, "announcing queued mail failed"),
                }
            }
        });
        QueuedAnnouncer { asked, task }
    }

    /// Asks for an announcement (returns at once).
    pub(crate) fn announce(&self) {
        self.asked.notify_one();
    }
}

impl Drop for QueuedAnnouncer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A listener on the channel of [`QueuedAnnouncer`], on a connection of its own from `pool`.
pub(crate) async fn queued_listener(pool: &PgPool) -> Result<sqlx::postgres::PgListener, sqlx::Error> {
    let channel: String = sqlx::query_scalar(QUEUED_CHANNEL).fetch_one(pool).await?;
    let mut listener = sqlx::postgres::PgListener::connect_with(pool).await?;
    listener.listen(&channel).await?;
    Ok(listener)
}

/// The admission screens of several requests in one statement whose text is fixed whatever the batch, so each
/// connection parses and plans it once: the requests travel as arrays, an element per blacklist key and one per
/// recipient, each tagged with its request's index. Returns (request index, 0 = blacklisted / 1 = unsubscribed,
/// address) rows. Each lookup stays on its index: `bounce_blacklist`'s key starts with the address,
/// `custom_blacklist` is unique on (account, address), `unsubscribes` keyed by (account, domain, recipient).
pub(crate) async fn recipient_screen_rows(
    pool: &PgPool,
    qs: &[crate::screen::OwnedScreenQuery],
) -> Result<Vec<(i64, i32, String)>, StoreError> {
    const SCREEN: &str = "\
        SELECT k.q, 0 AS list, b.address FROM UNNEST($1::int4[], $2::text[], $3::int8[]) AS k(q, key, since) \
        JOIN bounce_blacklist AS b ON b.address = k.key AND b.created_ms >= k.since \
        UNION ALL \
        SELECT k.q, 0, c.address FROM UNNEST($1::int4[], $2::text[], $4::int8[], $5::int8[]) AS k(q, key, a, now) \
        JOIN custom_blacklist AS c ON c.account_id = k.a AND c.address = k.key \
        AND (c.expire_ms IS NULL OR c.expire_ms > k.now) \
        UNION ALL \
        SELECT r.q, 1, u.recipient FROM UNNEST($6::int4[], $7::text[], $8::int8[], $9::text[]) AS r(q, rcpt, a, d) \
        JOIN unsubscribes AS u ON u.account_id = r.a AND u.domain = r.d AND u.recipient = r.rcpt";
    let keys: usize = qs.iter().map(|q| q.blacklist_keys.len()).sum();
    let (mut k_q, mut k_key, mut k_since, mut k_account, mut k_now) = (
        Vec::with_capacity(keys),
        Vec::with_capacity(keys),
        Vec::with_capacity(keys),
        Vec::with_capacity(keys),
        Vec::with_capacity(keys),
    );
    let recipients: usize = qs.iter().map(|q| q.recipients.len()).sum();
    let (mut r_q, mut r_rcpt, mut r_account, mut r_domain) = (
        Vec::with_capacity(recipients),
        Vec::with_capacity(recipients),
        Vec::with_capacity(recipients),
        Vec::with_capacity(recipients),
    );
    for (i, q) in qs.iter().enumerate() {
        let i = i32::try_from(i).map_err(|_| StoreError::Invalid("too many screens in one batch".into()))?;
        for key in &q.blacklist_keys {
            k_q.push(i);
            k_key.push(key.as_str());
            k_since.push(q.bounce_since_ms);
            k_account.push(q.account);
            k_now.push(q.now_ms);
        }
        for rcpt in &q.recipients {
            r_q.push(i);
            r_rcpt.push(rcpt.as_str());
            r_account.push(q.account);
            r_domain.push(q.sender_domain.as_str());
        }
    }
    let rows: Vec<(i32, i32, String)> = sqlx::query_as(SCREEN)
        .bind(&k_q)
        .bind(&k_key)
        .bind(&k_since)
        .bind(&k_account)
        .bind(&k_now)
        .bind(&r_q)
        .bind(&r_rcpt)
        .bind(&r_account)
        .bind(&r_domain)
        .fetch_all(pool)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(i, list, address)| (i64::from(i), list, address))
        .collect())
}

/// Admission limits for a batch with a fixed number of statements: the accounts' counter rows are locked
/// `FOR UPDATE` in id order (so api processes sharing the database serialize per account and never deadlock),
/// their per-second counts and the recipients' sends of the last hour read in one query each, the decision made in memory in batch order, and
/// the counters and new sends written back as arrays.
async fn check_limits(
    conn: &mut PgConnection,
    msgs: &mut [(NewMessage, Option<AdmissionLimits>)],
) -> Result<Vec<Option<LimitRefusal>>, crate::StoreError> {
    let accounts = crate::limits::limited_accounts(msgs);
    sqlx::query("INSERT INTO account_limits (account_id) SELECT * FROM UNNEST($1::int8[]) ON CONFLICT DO NOTHING")
        .bind(&accounts)
        .execute(&mut *conn)
        .await?;
    let rows = sqlx::query(
        "SELECT account_id, sends_per_second, per_recipient_per_hour, daily_cap, second_ms, second_count, \
         day_ms, day_count FROM account_limits WHERE account_id = ANY($1) ORDER BY account_id FOR UPDATE",
    )
    .bind(&accounts)
    .fetch_all(&mut *conn)
    .await?;
    let mut states: HashMap<i64, AccountState> = HashMap::new();
    for row in &rows {
        let st = AccountState {
            usage: <crate::limits::AccountUsage as sqlx::FromRow<_>>::from_row(row)?,
            ..AccountState::default()
        };
        states.insert(row.try_get("account_id")?, st);
    }
    // Per-second counts from the batch's oldest second on (every second `decide` may count a mail in).
    let oldest_second = crate::limits::oldest_checked_second(msgs);
    let seconds = sqlx::query(
        "SELECT account_id, second_ms, sends FROM account_send_seconds WHERE account_id = ANY($1) AND second_ms >= $2",
    )
    .bind(&accounts)
    .bind(oldest_second)
    .fetch_all(&mut *conn)
    .await?;
    for row in &seconds {
        let a: i64 = row.try_get("account_id")?;
        if let Some(st) = states.get_mut(&a) {
            st.seconds.insert(row.try_get("second_ms")?, row.try_get("sends")?);
        }
    }
    let mut pair_accounts = Vec::new();
    let mut pair_recipients = Vec::new();
    let mut oldest = i64::MAX;
    for (m, lim) in msgs.iter() {
        if lim.is_none() {
            continue;
        }
        oldest = oldest.min(m.request_ms);
        for r in &m.recipients {
            pair_accounts.push(m.account_id);
            pair_recipients.push(r.address.as_str());
        }
    }
    let recent = sqlx::query(
        "SELECT r.account_id, r.recipient, r.at_ms FROM recipient_sends r \
         JOIN (SELECT DISTINCT * FROM UNNEST($1::int8[], $2::text[])) AS p(a, rc) \
         ON r.account_id = p.a AND r.recipient = p.rc WHERE r.at_ms > $3",
    )
    .bind(&pair_accounts)
    .bind(&pair_recipients)
    .bind(oldest.saturating_sub(crate::limits::HOUR_MS))
    .fetch_all(&mut *conn)
    .await?;
    for (a, rc) in pair_accounts.iter().zip(&pair_recipients) {
        if let Some(st) = states.get_mut(a) {
            st.recent.entry((*rc).to_string()).or_default();
        }
    }
    for row in &recent {
        let a: i64 = row.try_get("account_id")?;
        if let Some(st) = states.get_mut(&a) {
            st.recent
                .entry(row.try_get("recipient")?)
                .or_default()
                .push(row.try_get("at_ms")?);
        }
    }
    let refusals = crate::limits::decide_batch(msgs, &mut states);

    let (mut u_acc, mut u_sms, mut u_sc, mut u_dms, mut u_dc) = (vec![], vec![], vec![], vec![], vec![]);
    let (mut p_acc, mut p_before, mut p_kept) = (vec![], vec![], vec![]);
    let (mut n_acc, mut n_rc, mut n_at) = (vec![], vec![], vec![]);
    let (mut s_acc, mut s_sec, mut s_n) = (vec![], vec![], vec![]);
    for (a, st) in &states {
        if !st.dirty {
            continue;
        }
        u_acc.push(*a);
        u_sms.push(st.usage.second_ms);
        u_sc.push(st.usage.second_count);
        u_dms.push(st.usage.day_ms);
        u_dc.push(st.usage.day_count);
        if let Some(b) = st.prune_before {
            p_acc.push(*a);
            p_before.push(b);
            p_kept.push(st.seconds_kept_from());
        }
        for (second, n) in st.second_writes() {
            s_acc.push(*a);
            s_sec.push(second);
            s_n.push(n);
        }
        for (rc, at) in &st.new_sends {
            n_acc.push(*a);
            n_rc.push(rc.as_str());
            n_at.push(*at);
        }
    }
    if !u_acc.is_empty() {
        sqlx::query(
            "UPDATE account_limits AS l SET second_ms = u.sms, second_count = u.sc, day_ms = u.dms, day_count = u.dc \
             FROM UNNEST($1::int8[], $2::int8[], $3::int8[], $4::int8[], $5::int8[]) AS u(a, sms, sc, dms, dc) \
             WHERE l.account_id = u.a",
        )
        .bind(&u_acc)
        .bind(&u_sms)
        .bind(&u_sc)
        .bind(&u_dms)
        .bind(&u_dc)
        .execute(&mut *conn)
        .await?;
    }
    if !p_acc.is_empty() {
        sqlx::query(
            "DELETE FROM recipient_sends r USING UNNEST($1::int8[], $2::int8[]) AS p(a, b) \
             WHERE r.account_id = p.a AND r.at_ms <= p.b",
        )
        .bind(&p_acc)
        .bind(&p_before)
        .execute(&mut *conn)
        .await?;
    }
    if !p_acc.is_empty() {
        sqlx::query(
            "DELETE FROM account_send_seconds s USING UNNEST($1::int8[], $2::int8[]) AS p(a, kept) \
             WHERE s.account_id = p.a AND s.second_ms < p.kept",
        )
        .bind(&p_acc)
        .bind(&p_kept)
        .execute(&mut *conn)
        .await?;
    }
    if !s_acc.is_empty() {
        sqlx::query(
            "INSERT INTO account_send_seconds (account_id, second_ms, sends) \
             SELECT * FROM UNNEST($1::int8[], $2::int8[], $3::int8[]) \
             ON CONFLICT (account_id, second_ms) DO UPDATE SET sends = excluded.sends",
        )
        .bind(&s_acc)
        .bind(&s_sec)
        .bind(&s_n)
        .execute(&mut *conn)
        .await?;
    }
    if !n_acc.is_empty() {
        sqlx::query(
            "INSERT INTO recipient_sends (account_id, recipient, at_ms) \
             SELECT * FROM UNNEST($1::int8[], $2::text[], $3::int8[])",
        )
        .bind(&n_acc)
        .bind(&n_rc)
        .bind(&n_at)
        .execute(&mut *conn)
        .await?;
    }
    Ok(refusals)
}

/// [`Dialect::insert_messages`](crate::sql::Dialect::insert_messages), with the deliveries of the messages `plan`
/// leases written leased; their ids are returned per message (in recipient order; empty when not leased). The
/// statistics are returned for the caller to write last, in key order (see `stats`): their rows are the ones
/// other transactions wait for.
async fn insert_leased<M: std::borrow::Borrow<NewMessage>>(
    conn: &mut PgConnection,
    msgs: &[M],
    retain_bodies: bool,
    plan: Option<&crate::handoff::LeasePlan<'_>>,
) -> Result<(Vec<Vec<i64>>, crate::daily_statistics::StatsDelta), crate::StoreError> {
    let n = msgs.len();
    let mut ids = Vec::with_capacity(n);
    let mut accounts = Vec::with_capacity(n);
    let mut envelope_froms = Vec::with_capacity(n);
    let mut from_addresses = Vec::with_capacity(n);
    let mut subjects = Vec::with_capacity(n);
    let mut lanes = Vec::with_capacity(n);
    let mut request_mss = Vec::with_capacity(n);
    let mut not_befores = Vec::with_capacity(n);
    let mut expiress = Vec::with_capacity(n);
    let mut opens = Vec::with_capacity(n);
    let mut template_ids = Vec::with_capacity(n);
    let mut tls_requirements = Vec::with_capacity(n);
    let mut body_ids = Vec::with_capacity(n);
    let mut bodies: Vec<&[u8]> = Vec::with_capacity(n);

    let mut d_message = Vec::new();
    let mut d_account = Vec::new();
    let mut d_recipient = Vec::new();
    let mut d_domain = Vec::new();
    let mut d_kind = Vec::new();
    let mut d_lane = Vec::new();
    let mut d_request = Vec::new();
    let mut d_state = Vec::new();
    let mut d_send_status = Vec::new();
    let mut d_deliver_status = Vec::new();
    let mut d_deliver_message = Vec::new();
    let mut d_deliver_ms = Vec::new();
    let mut d_next = Vec::new();
    let mut d_sender_domain = Vec::new();
    let mut d_token: Vec<i64> = Vec::new();
    let mut d_owner: Vec<Option<&str>> = Vec::new();
    // (message index, recipient) of the deliveries leased at insert
    let mut leased: Vec<(usize, &NewRecipient)> = Vec::new();
    // `dropped` events of the recipients refused at admission.
    let mut e_account = Vec::new();
    let mut e_message = Vec::new();
    let mut e_recipient = Vec::new();
    let mut e_at = Vec::new();
    let mut e_reason = Vec::new();
    let mut delta = crate::daily_statistics::StatsDelta::default();

    for (i, m) in msgs.iter().enumerate() {
        let m: &NewMessage = m.borrow();
        let lease_until = plan.and_then(|p| p.lease_until(i, m));
        let open = crate::delivery_rows::open_count(m);
        ids.push(m.id.as_str());
        accounts.push(m.account_id);
        envelope_froms.push(m.envelope_from.as_str());
        from_addresses.push(m.from_address.as_str());
        subjects.push(m.subject.as_str());
        lanes.push(m.lane.code());
        request_mss.push(m.request_ms);
        not_befores.push(m.not_before_ms);
        expiress.push(m.expires_ms);
        opens.push(open);
        template_ids.push(m.template_id);
        tls_requirements.push(m.tls_requirement.code());
        if open > 0 || retain_bodies {
            body_ids.push(m.id.as_str());
            bodies.push(&m.body);
        }
        let sender_domain = crate::delivery_rows::sender_domain(m);
        for r in &m.recipients {
            let init = delivery_init(m, r);
            d_sender_domain.push(sender_domain.clone());
            delta.request(m, r);
            d_message.push(m.id.as_str());
            d_account.push(m.account_id);
            d_recipient.push(r.address.as_str());
            d_domain.push(r.domain.as_str());
            d_kind.push(r.kind.as_str());
            d_lane.push(m.lane.code());
            d_request.push(m.request_ms);
            let lease = lease_until.filter(|_| r.send_status.is_ok());
            d_state.push(
                if lease.is_some() {
                    DeliveryState::Leased
                } else {
                    init.state
                }
                .code(),
            );
            d_send_status.push(r.send_status.code());
            d_deliver_status.push(init.deliver_status);
            d_deliver_message.push(init.deliver_message);
            d_deliver_ms.push(init.deliver_ms);
            d_next.push(lease.unwrap_or(m.not_before_ms));
            d_token.push(i64::from(lease.is_some()));
            d_owner.push(lease.and(plan.map(|p| p.worker)));
            if lease.is_some() {
                leased.push((i, r));
            }
            if !r.send_status.is_ok() {
                e_account.push(m.account_id);
                e_message.push(m.id.as_str());
                e_recipient.push(r.address.as_str());
                e_at.push(m.request_ms);
                e_reason.push(init.deliver_message);
            }
        }
    }

    sqlx::query(
        "INSERT INTO messages (id, account_id, envelope_from, from_address, subject, lane, request_ms, \
         not_before_ms, expires_ms, open_count, template_id, tls_requirement) \
         SELECT * FROM UNNEST($1::text[], $2::int8[], $3::text[], $4::text[], $5::text[], $6::int4[], \
         $7::int8[], $8::int8[], $9::int8[], $10::int4[], $11::int8[], $12::int4[])",
    )
    .bind(&ids)
    .bind(&accounts)
    .bind(&envelope_froms)
    .bind(&from_addresses)
    .bind(&subjects)
    .bind(&lanes)
    .bind(&request_mss)
    .bind(&not_befores)
    .bind(&expiress)
    .bind(&opens)
    .bind(&template_ids)
    .bind(&tls_requirements)
    .execute(&mut *conn)
    .await?;
    if !body_ids.is_empty() {
        sqlx::query("INSERT INTO message_bodies (message_id, body) SELECT * FROM UNNEST($1::text[], $2::bytea[])")
            .bind(&body_ids)
            .bind(&bodies)
            .execute(&mut *conn)
            .await?;
    }
    let insert_deliveries = sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO deliveries (message_id, account_id, recipient, domain, kind, lane, request_ms, state, \
         send_status, deliver_status, deliver_message, deliver_ms, next_attempt_ms, sender_domain, lease_token, \
         lease_owner) \
         SELECT * FROM UNNEST($1::text[], $2::int8[], $3::text[], $4::text[], $5::text[], $6::int4[], $7::int8[], \
         $8::int4[], $9::int4[], $10::int4[], $11::text[], $12::int8[], $13::int8[], $14::text[], $15::int8[], \
         $16::text[]){}",
        // The leased rows' ids, for the hand-off.
        if leased.is_empty() {
            ""
        } else {
            " RETURNING id, message_id, recipient, kind, state"
        }
    )))
    .bind(&d_message)
    .bind(&d_account)
    .bind(&d_recipient)
    .bind(&d_domain)
    .bind(&d_kind)
    .bind(&d_lane)
    .bind(&d_request)
    .bind(&d_state)
    .bind(&d_send_status)
    .bind(&d_deliver_status)
    .bind(&d_deliver_message)
    .bind(&d_deliver_ms)
    .bind(&d_next)
    .bind(&d_sender_domain)
    .bind(&d_token)
    .bind(&d_owner);
    let mut leased_ids: Vec<Vec<i64>> = vec![Vec::new(); n];
    if leased.is_empty() {
        insert_deliveries.execute(&mut *conn).await?;
    } else {
        let mut returned = ReturnedLeases::from_rows(&insert_deliveries.fetch_all(&mut *conn).await?)?;
        for (i, r) in leased {
            leased_ids[i].push(returned.take(msgs[i].borrow(), r)?);
        }
    }
    if !e_account.is_empty() {
        sqlx::query(INSERT_DROPPED_EVENTS.as_str())
            .bind(&e_account)
            .bind(&e_message)
            .bind(&e_recipient)
            .bind(&e_at)
            .bind(&e_reason)
            .bind(mailpush_model::EventKind::Dropped.id())
            .execute(&mut *conn)
            .await?;
    }
    Ok((leased_ids, delta))
}
