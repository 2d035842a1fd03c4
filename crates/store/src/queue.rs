//! The delivery queue: enqueue (group commit), claim under a lease, outcomes, statuses. The per-lane claim and
//! outcome batches differ per backend: they are [`crate::sql::Dialect`] methods in `sqlite.rs` and `pg.rs`.

use std::sync::{Arc, PoisonError};

use mailpush_model::DeliverStatus;
use mailpush_model::{MessageId, SendStatus};
use sqlx::{AssertSqlSafe, FromRow, Postgres, Sqlite};
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinHandle;

use crate::deliveries::DeliveryState;
use crate::delivery_rows::deliver_status;
use crate::sql::{Dialect, Pool, builder, query};
use crate::{
    AccountId, AdmissionLimits, ClaimRequest, ClaimedDelivery, DeliveryAttempt, DeliveryOutcome, DeliveryStatusRow,
    HandOffs, LANES, LeaseToken, NewMessage, QueueCounts, StatusQuery, Store, StoreError, WaitingCounts, WarmupRamp,
    committer, handoff,
};
use crate::{Db, pg};

/// The delivery queue ([`Store::queue`]).
#[derive(Debug, Clone, Copy)]
pub struct Queue<'a> {
    pub(crate) store: &'a Store,
}

impl Store {
    /// The delivery queue: enqueue, claim, outcomes, statuses.
    pub fn queue(&self) -> Queue<'_> {
        Queue { store: self }
    }
}

impl Queue<'_> {
    // ---- queue ----

    /// Stores a message and its deliveries, durably (committed and fsynced) before it returns `Ok`.
    /// Concurrent enqueues share one transaction (group commit). A duplicate MessageId is
    /// [`StoreError::Conflict`]; an unknown account, a lane outside [`LANES`] or no recipients is
    /// [`StoreError::Invalid`]. If the caller is cancelled after its batch started, the message may still be stored.
    pub async fn enqueue(self, m: NewMessage) -> Result<(), StoreError> {
        self.store
            .guarded(async { self.enqueue_inner(m, None, false).await.map(drop) })
            .await
    }

    /// [`Queue::enqueue`] checked against admission limits inside the same transaction, so that every
    /// process sharing the database agrees: the account's messages per second, each recipient's mails in the
    /// sliding hour and today's recipients against the quota. A refused message is
    /// [`StoreError::Limit`] and nothing of it is stored; recipients over their hourly limit in a message with
    /// other admissible recipients are stored refused (send status 1006) instead.
    pub async fn enqueue_limited(self, m: NewMessage, limits: AdmissionLimits) -> Result<(), StoreError> {
        self.store
            .guarded(async { self.enqueue_inner(m, Some(limits), false).await.map(drop) })
            .await
    }

    /// [`Queue::enqueue_limited`] for fresh mail whose recipients all get the message's own MIME: if this
    /// process's worker takes hand-offs ([`Queue::take_hand_offs`]) and has room, and the message is due now
    /// (`not_before_ms <= request_ms`), its deliveries are leased to the worker in the same transaction and
    /// handed to it with the MIME once committed. Returns whether it was handed off (if so, the worker needs
    /// no wake-up).
    pub async fn enqueue_fresh(self, m: NewMessage, limits: AdmissionLimits) -> Result<bool, StoreError> {
        self.store
            .guarded(async { self.enqueue_inner(m, Some(limits), true).await })
            .await
    }

    /// Makes this process's worker the receiver of hand-offs ([`Queue::enqueue_fresh`]), leased to `worker`
    /// for `lease_ms`, with at most `room` deliveries waiting for it to start them. A second call replaces
    /// the first receiver; dropping the receiver stops hand-offs.
    pub fn take_hand_offs(self, worker: &str, lease_ms: i64, room: usize) -> HandOffs {
        let (receiver, target) = handoff::HandOffs::new(worker.to_string(), lease_ms, room);
        *self
            .store
            .inner
            .hand_offs
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(target);
        receiver
    }

    /// PostgreSQL: a task that calls `wake.notify_one()` when a process sharing the database (this one
    /// included) commits trigger mail that it handed to no worker of its own, so that the worker nodes of a
    /// split deployment start on it at once rather than at their next idle poll. At most one wake-up per
    /// `gather`: what is announced meanwhile is claimed together. `None` on SQLite, where the only enqueuer is
    /// this process. Notifications lost while the connection is down are made up for by one wake-up after
    /// each reconnect; the task ends when the store closes.
    pub async fn wake_on_queued(
        self,
        wake: Arc<Notify>,
        gather: std::time::Duration,
    ) -> Result<Option<JoinHandle<()>>, StoreError> {
        let Db::Postgres { pool, .. } = &self.store.inner.db else {
            return Ok(None);
        };
        let mut listener = pg::queued_listener(pool).await?;
        Ok(Some(tokio::spawn(async move {
            loop {
                match listener.try_recv().await {
                    // `None`: reconnected, and what was announced meanwhile is lost.
                    Ok(_) => {}
                    Err(sqlx::Error::PoolClosed) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "listening for queued mail failed; retrying in a second");
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                        continue;
                    }
                }
                // What is announced within `gather` of a wake-up is claimed by one more wake-up at its end.
                loop {
                    wake.notify_one();
                    let until = tokio::time::Instant::now() + gather;
                    let mut more = false;
                    while let Ok(received) = tokio::time::timeout_at(until, listener.try_recv()).await {
                        match received {
                            Ok(_) => more = true,
                            Err(sqlx::Error::PoolClosed) => return,
                            Err(_) => break,
                        }
                    }
                    if !more {
                        break;
                    }
                }
            }
        })))
    }

    async fn enqueue_inner(
        self,
        m: NewMessage,
        limits: Option<AdmissionLimits>,
        hand_off: bool,
    ) -> Result<bool, StoreError> {
        validate(&m)?;
        // The caller's wait is bounded too: a committer stuck on a frozen connection must not hang it. A caller
        // that gives up before its batch starts gets nothing written (see `committer`).
        let r = self.store.guarded(self.enqueue_wait(m, limits, hand_off)).await;
        if r.is_ok() {
            self.store.inner.health.write_succeeded();
        }
        r
    }

    async fn enqueue_wait(
        self,
        m: NewMessage,
        limits: Option<AdmissionLimits>,
        hand_off: bool,
    ) -> Result<bool, StoreError> {
        let sender = self
            .store
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
    pub async fn claim(self, r: ClaimRequest) -> Result<Vec<ClaimedDelivery>, StoreError> {
        self.store.guarded(claim(self.store.relaxed_writer(), &r, None)).await
    }

    /// The MIME of a message, until it is purged.
    pub async fn message_body(self, id: &MessageId) -> Result<Option<Vec<u8>>, StoreError> {
        let stored: Option<crate::delivery_contents::StoredBody> =
            query("SELECT body, spool_segment, spool_offset, spool_length FROM message_bodies WHERE message_id = $1")
                .bind(id.as_str())
                .fetch_optional(self.store.guarded_reader())
                .await?;
        match stored {
            Some(stored) => crate::delivery_contents::resolve_body(self.store.inner.db.spool(), stored),
            None => Ok(None),
        }
    }

    /// Records attempt outcomes, all in one transaction. Returns, per outcome and in order, whether it was
    /// applied: `false` means its lease was no longer current (taken over after expiry, or already reported),
    /// and nothing was written for it.
    pub async fn record_outcomes(self, o: Vec<DeliveryOutcome>) -> Result<Vec<bool>, StoreError> {
        self.store
            .guarded(async {
                let retain = self.store.inner.opts.retain_bodies;
                match self.store.relaxed_writer() {
                    Pool::Sqlite(p) => Sqlite::record_outcomes(p, &o, retain).await,
                    Pool::Postgres(p) => Postgres::record_outcomes(p, &o, retain).await,
                }
            })
            .await
    }

    /// Per-recipient status of one account's messages requested in `[from_ms, to_ms)`, in request order.
    pub async fn status(self, q: StatusQuery) -> Result<Vec<DeliveryStatusRow>, StoreError> {
        self.store.guarded(status(self.store.reader(), &q)).await
    }

    /// The attempt history of one recipient of one message, oldest first.
    pub async fn attempts(
        self,
        account: AccountId,
        message: &MessageId,
        recipient: &str,
    ) -> Result<Vec<DeliveryAttempt>, StoreError> {
        self.store
            .guarded(attempts(self.store.reader(), account, message, recipient))
            .await
    }

    /// Deliveries by queue state, the final ones included: on PostgreSQL that count reads every retained
    /// delivery (about a second per 10 million), so periodic callers use [`Queue::waiting_counts`].
    pub async fn queue_counts(self) -> Result<QueueCounts, StoreError> {
        self.store.guarded(queue_counts(self.store.reader())).await
    }

    /// The waiting deliveries by state, counted from the due index: the cost of the queue's size, whatever the
    /// history holds.
    pub async fn waiting_counts(self) -> Result<WaitingCounts, StoreError> {
        self.store.guarded(waiting_counts(self.store.reader())).await
    }

    /// Makes every leased delivery due at `now_ms`, as if its lease had expired. For the embedded database,
    /// whose single worker calls it at start-up: leases left by a killed predecessor are its own, and waiting
    /// for them to expire would only delay mail. (The lease token is kept, so a stale outcome stays fenced.)
    pub async fn release_leases(self, now_ms: i64) -> Result<u64, StoreError> {
        query("UPDATE deliveries SET state = 0, next_attempt_ms = $1 WHERE state = 1")
            .bind(now_ms)
            .execute(self.store.guarded_writer())
            .await
    }

    /// Extends the leases still held (same token, still leased) to `until_ms`: a worker renews the leases of
    /// deliveries in progress, so a lease may be short (a dead worker's mail is taken over soon) and still never
    /// expire under a transaction that is running. Returns how many were renewed.
    pub async fn renew_leases(self, leases: &[(i64, LeaseToken)], until_ms: i64) -> Result<u64, StoreError> {
        self.store
            .guarded(async {
                if leases.is_empty() {
                    return Ok(0);
                }
                renew_leases(self.store.writer(), leases, until_ms).await
            })
            .await
    }

    /// The earliest `next_attempt_ms` among non-final deliveries (a due time, a retry time or a lease expiry),
    /// so an idle worker can sleep until then. `None` when nothing is left to do.
    pub async fn next_due_ms(self) -> Result<Option<i64>, StoreError> {
        self.store.guarded(next_due_ms(self.store.reader())).await
    }
}

fn validate(m: &NewMessage) -> Result<(), StoreError> {
    if m.recipients.is_empty() {
        return Err(StoreError::Invalid("a message needs at least one recipient".into()));
    }
    if m.id.as_str().is_empty() {
        return Err(StoreError::Invalid("empty MessageId".into()));
    }
    Ok(())
}

/// Leases up to `r.limit` due deliveries, lane by lane, within the sending domains' warm-up allowances when
/// there is a `ramp` ([`crate::Warmup::claim_with_warmup`]).
pub(crate) async fn claim(
    pool: Pool<'_>,
    r: &ClaimRequest,
    ramp: Option<&WarmupRamp>,
) -> Result<Vec<ClaimedDelivery>, StoreError> {
    let mut out = Vec::new();
    let lease_until = r.now_ms.saturating_add(r.lease_ms.max(0));
    // Lane by lane: each lookup is a pure range scan of the due index (no skipping over rows of lane 0
    // that are not due yet), and lane 0 is served first.
    for lane in LANES {
        let want = r.limit.saturating_sub(out.len());
        if want == 0 {
            break;
        }
        let want = i64::try_from(want).unwrap_or(i64::MAX);
        out.extend(match (pool, ramp) {
            (Pool::Sqlite(p), None) => Sqlite::claim_lane(p, lane, r, lease_until, want).await?,
            (Pool::Postgres(p), None) => Postgres::claim_lane(p, lane, r, lease_until, want).await?,
            (Pool::Sqlite(p), Some(ramp)) => {
                Sqlite::claim_lane_with_warmup(p, lane, r, lease_until, want, ramp).await?
            }
            (Pool::Postgres(p), Some(ramp)) => {
                Postgres::claim_lane_with_warmup(p, lane, r, lease_until, want, ramp).await?
            }
        });
    }
    Ok(out)
}

/// A `status` row as read (`deliver_status` still a code).
#[derive(FromRow)]
struct StatusRow {
    message_id: String,
    recipient: String,
    from_address: String,
    #[sqlx(try_from = "i32")]
    send_status: SendStatus,
    deliver_status: i32,
    deliver_message: String,
    request_ms: i64,
    deliver_ms: Option<i64>,
    attempts: i32,
}

pub(crate) async fn status(pool: Pool<'_>, q: &StatusQuery) -> Result<Vec<DeliveryStatusRow>, StoreError> {
    // Built per filter combination rather than `($n IS NULL OR col = $n)`, which hides the index from
    // PostgreSQL's generic plans.
    let mut qb = builder(
        "SELECT d.message_id, d.recipient, m.from_address, d.send_status, d.deliver_status, \
         d.deliver_message, d.request_ms, d.deliver_ms, d.attempts \
         FROM deliveries d JOIN messages m ON m.id = d.message_id WHERE d.account_id = ",
    );
    qb.push_bind(q.account_id);
    qb.push(" AND d.request_ms >= ").push_bind(q.from_ms);
    qb.push(" AND d.request_ms < ").push_bind(q.to_ms);
    if let Some(id) = &q.message_id {
        qb.push(" AND d.message_id = ").push_bind(id.as_str());
    }
    if let Some(to) = &q.to_address {
        qb.push(" AND d.recipient = ").push_bind(to);
    }
    qb.push(" ORDER BY d.request_ms, d.id LIMIT ").push_bind(q.limit.max(0));
    qb.push(" OFFSET ").push_bind(q.offset.max(0));
    let rows: Vec<StatusRow> = qb.build().fetch_all(pool).await?;
    rows.into_iter()
        .map(|r| {
            Ok(DeliveryStatusRow {
                message_id: MessageId::from_stored(r.message_id),
                recipient: r.recipient,
                from_address: r.from_address,
                send_status: r.send_status,
                deliver_status: deliver_status(r.deliver_status)?,
                deliver_message: r.deliver_message,
                request_ms: r.request_ms,
                deliver_ms: r.deliver_ms,
                attempts: r.attempts,
            })
        })
        .collect()
}

pub(crate) async fn attempts(
    pool: Pool<'_>,
    account: AccountId,
    message: &MessageId,
    recipient: &str,
) -> Result<Vec<DeliveryAttempt>, StoreError> {
    let rows: Vec<(i64, i32, String, Option<String>)> = query(
        "SELECT a.at_ms, a.deliver_status, a.reply, a.remote \
         FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id \
         WHERE d.message_id = $1 AND d.recipient = $2 AND d.account_id = $3 \
         ORDER BY a.delivery_id, a.attempt",
    )
    .bind(message.as_str())
    .bind(recipient)
    .bind(account)
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|(at_ms, status, reply, remote)| {
            Ok(DeliveryAttempt {
                at_ms,
                deliver_status: deliver_status(status)?,
                reply,
                remote,
            })
        })
        .collect()
}

/// The waiting deliveries, the leased ones and the deferred ones, counted from the due index alone (on SQLite it
/// holds state and status) without grouping, so nothing is sorted. `$1` = leased, `$2` = deferred.
const WAITING_COUNTS: &str = "COUNT(*), \
     COALESCE(SUM(CASE WHEN state = $1 THEN 1 ELSE 0 END), 0), \
     COALESCE(SUM(CASE WHEN state <> $1 AND deliver_status = $2 THEN 1 ELSE 0 END), 0) \
     FROM deliveries WHERE state < 2";

pub(crate) fn waiting_counts_sql() -> String {
    format!("SELECT {WAITING_COUNTS}")
}

/// The waiting counts with every delivery before them: one statement, one snapshot, so the final ones are the
/// difference. On SQLite the total is a count over the smallest index; on PostgreSQL it reads the whole table.
pub(crate) fn queue_counts_sql() -> String {
    format!("SELECT (SELECT COUNT(*) FROM deliveries), {WAITING_COUNTS}")
}

/// The waiting deliveries by state from their count and the leased and deferred ones among them.
fn waiting_by_state(count: i64, leased: i64, deferred: i64) -> WaitingCounts {
    WaitingCounts {
        pending: count - leased - deferred,
        deferred,
        leased,
    }
}

pub(crate) async fn waiting_counts(pool: Pool<'_>) -> Result<WaitingCounts, StoreError> {
    let (count, leased, deferred): (i64, i64, i64) = query(AssertSqlSafe(waiting_counts_sql()))
        .bind(DeliveryState::Leased)
        .bind(DeliverStatus::Deferred.code())
        .fetch_one(pool)
        .await?;
    Ok(waiting_by_state(count, leased, deferred))
}

pub(crate) async fn queue_counts(pool: Pool<'_>) -> Result<QueueCounts, StoreError> {
    let (total, count, leased, deferred): (i64, i64, i64, i64) = query(AssertSqlSafe(queue_counts_sql()))
        .bind(DeliveryState::Leased)
        .bind(DeliverStatus::Deferred.code())
        .fetch_one(pool)
        .await?;
    Ok(QueueCounts::new(
        waiting_by_state(count, leased, deferred),
        total - count,
    ))
}

pub(crate) async fn renew_leases(
    pool: Pool<'_>,
    leases: &[(i64, LeaseToken)],
    until_ms: i64,
) -> Result<u64, StoreError> {
    let mut renewed = 0;
    for chunk in leases.chunks(100) {
        let mut qb = builder("UPDATE deliveries SET next_attempt_ms = ");
        qb.push_bind(until_ms)
            .push(" WHERE state = ")
            .push_bind(DeliveryState::Leased)
            .push(" AND next_attempt_ms < ")
            .push_bind(until_ms)
            .push(" AND (");
        for (i, (id, token)) in chunk.iter().enumerate() {
            if i > 0 {
                qb.push(" OR ");
            }
            qb.push("(id = ")
                .push_bind(*id)
                .push(" AND lease_token = ")
                .push_bind(token.0)
                .push(")");
        }
        qb.push(")");
        renewed += qb.build().execute(pool).await?;
    }
    Ok(renewed)
}

pub(crate) async fn next_due_ms(pool: Pool<'_>) -> Result<Option<i64>, StoreError> {
    let mut due: Option<i64> = None;
    // One index probe per lane (a MIN over all lanes could not use the (lane, next_attempt_ms) index).
    for lane in LANES {
        let lane_due: Option<i64> = query("SELECT MIN(next_attempt_ms) FROM deliveries WHERE state < 2 AND lane = $1")
            .bind(lane)
            .scalar(pool)
            .await?;
        due = match (due, lane_due) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
    Ok(due)
}
