//! Accounts and the queue operations whose SQL is the same on both backends (the claim's per-lane statements and
//! outcome batches differ: they are [`crate::sql::Dialect`] methods in `sqlite.rs` and `pg.rs`), and the row
//! mapping both backends' claims share ([`claimed_from_row`]).

use mailpush_model::{DeliverStatus, MessageId, RecipientKind};
use sqlx::{AssertSqlSafe, FromRow, Postgres, Sqlite};

use crate::sql::{Dialect, Pool, builder, query};
use crate::types::DeliveryState;
use crate::{
    Account, AccountId, ClaimRequest, ClaimedDelivery, DeliveryAttempt, DeliveryStatusRow, LANES, LeaseToken,
    NewAccount, QueueCounts, StatusQuery, StoreError,
};

const ACCOUNT_COLUMNS: &str = "id, name, app_id, secret_id, secret_key_sealed, created_ms, suspended";

fn deliver_status(code: i32) -> Result<DeliverStatus, StoreError> {
    DeliverStatus::from_code(code).ok_or_else(|| StoreError::Corrupt(format!("unknown deliver_status {code}")))
}

/// A claimed delivery as read: the columns of `deliveries` plus the message's `envelope_from` and `expires_ms`.
#[derive(FromRow)]
pub(crate) struct ClaimedRow {
    id: i64,
    lease_token: i64,
    message_id: String,
    account_id: AccountId,
    recipient: String,
    domain: String,
    kind: String,
    envelope_from: String,
    lane: i32,
    attempts: i32,
    request_ms: i64,
    expires_ms: i64,
}

impl TryFrom<ClaimedRow> for ClaimedDelivery {
    type Error = StoreError;

    fn try_from(r: ClaimedRow) -> Result<Self, StoreError> {
        Ok(ClaimedDelivery {
            delivery_id: r.id,
            lease: LeaseToken(r.lease_token),
            message_id: MessageId::from_stored(r.message_id),
            account_id: r.account_id,
            recipient: r.recipient,
            domain: r.domain,
            kind: RecipientKind::parse(&r.kind)
                .ok_or_else(|| StoreError::Corrupt(format!("unknown recipient kind {:?}", r.kind)))?,
            envelope_from: r.envelope_from,
            lane: r.lane,
            attempts: r.attempts,
            request_ms: r.request_ms,
            expires_ms: r.expires_ms,
        })
    }
}

/// Reads a claimed delivery from a row of either backend (see [`ClaimedRow`]).
pub(crate) fn claimed_from_row<R: sqlx::Row>(row: &R) -> Result<ClaimedDelivery, StoreError>
where
    ClaimedRow: for<'r> FromRow<'r, R>,
{
    ClaimedRow::from_row(row)?.try_into()
}

pub(crate) async fn create_account(pool: Pool<'_>, a: NewAccount) -> Result<Account, StoreError> {
    let id: i64 = query(
        "INSERT INTO accounts (name, app_id, secret_id, secret_key_sealed, created_ms, suspended) \
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(&a.name)
    .bind(a.app_id)
    .bind(&a.secret_id)
    .bind(&a.secret_key_sealed)
    .bind(a.created_ms)
    .bind(false)
    .scalar(pool)
    .await?;
    Ok(Account {
        id,
        name: a.name,
        app_id: a.app_id,
        secret_id: a.secret_id,
        secret_key_sealed: a.secret_key_sealed,
        created_ms: a.created_ms,
        suspended: false,
    })
}

pub(crate) async fn account_by_secret_id(pool: Pool<'_>, secret_id: &str) -> Result<Option<Account>, StoreError> {
    query(AssertSqlSafe(format!(
        "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE secret_id = $1"
    )))
    .bind(secret_id)
    .fetch_optional(pool)
    .await
}

pub(crate) async fn account_by_name(pool: Pool<'_>, name: &str) -> Result<Option<Account>, StoreError> {
    query(AssertSqlSafe(format!(
        "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE name = $1"
    )))
    .bind(name)
    .fetch_optional(pool)
    .await
}

pub(crate) async fn account(pool: Pool<'_>, id: AccountId) -> Result<Option<Account>, StoreError> {
    query(AssertSqlSafe(format!(
        "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(pool)
    .await
}

pub(crate) async fn list_accounts(pool: Pool<'_>) -> Result<Vec<Account>, StoreError> {
    query(AssertSqlSafe(format!(
        "SELECT {ACCOUNT_COLUMNS} FROM accounts ORDER BY id"
    )))
    .fetch_all(pool)
    .await
}

pub(crate) async fn set_account_suspended(pool: Pool<'_>, id: AccountId, suspended: bool) -> Result<(), StoreError> {
    let changed = query("UPDATE accounts SET suspended = $1 WHERE id = $2")
        .bind(suspended)
        .bind(id)
        .execute(pool)
        .await?;
    if changed == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

pub(crate) async fn claim(pool: Pool<'_>, r: &ClaimRequest) -> Result<Vec<ClaimedDelivery>, StoreError> {
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
        out.extend(match pool {
            Pool::Sqlite(p) => Sqlite::claim_lane(p, lane, r, lease_until, want).await?,
            Pool::Postgres(p) => Postgres::claim_lane(p, lane, r, lease_until, want).await?,
        });
    }
    Ok(out)
}

pub(crate) async fn message_body(pool: Pool<'_>, id: &MessageId) -> Result<Option<Vec<u8>>, StoreError> {
    query("SELECT body FROM message_bodies WHERE message_id = $1")
        .bind(id.as_str())
        .scalar_optional(pool)
        .await
}

/// A `status` row as read (`deliver_status` still a code).
#[derive(FromRow)]
struct StatusRow {
    message_id: String,
    recipient: String,
    from_address: String,
    send_status: i32,
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

pub(crate) async fn queue_counts(pool: Pool<'_>) -> Result<QueueCounts, StoreError> {
    let mut counts = QueueCounts::default();
    // Non-final rows through the partial index.
    let rows: Vec<(DeliveryState, i32, i64)> = query(
        "SELECT state, deliver_status, COUNT(*) AS n FROM deliveries WHERE state < 2 \
         GROUP BY state, deliver_status",
    )
    .fetch_all(pool)
    .await?;
    for (st, ds, n) in rows {
        match st {
            DeliveryState::Leased => counts.leased += n,
            _ if ds == DeliverStatus::Deferred.code() => counts.deferred += n,
            _ => counts.pending += n,
        }
    }
    counts.done = query("SELECT COUNT(*) FROM deliveries WHERE state = 2")
        .scalar(pool)
        .await?;
    Ok(counts)
}

pub(crate) async fn release_leases(pool: Pool<'_>, now_ms: i64) -> Result<u64, StoreError> {
    query("UPDATE deliveries SET state = 0, next_attempt_ms = $1 WHERE state = 1")
        .bind(now_ms)
        .execute(pool)
        .await
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
