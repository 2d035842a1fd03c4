//! Operations whose SQL is the same on both backends, written once and expanded per backend by
//! `common_ops!` (sqlx needs the concrete database type; a macro is lighter than a wall of generic bounds).
//! Placeholders are `$N` everywhere: PostgreSQL's syntax, which SQLite also accepts.

/// Defines the shared operations for one backend: `db` is the sqlx database type. The backend module itself
/// provides `claim_lane`, which leases the due deliveries of one lane and returns them in due order, as rows
/// that `claimed_from_row` reads, and `record_outcomes`.
macro_rules! common_ops {
    (db = $DB:ty $(,)?) => {
        use mailpush_model::{DeliverStatus, MessageId, RecipientKind};
        use sqlx::{QueryBuilder, Row};

        use crate::types::state;
        use crate::{
            Account, AccountId, ClaimRequest, ClaimedDelivery, DeliveryAttempt, DeliveryOutcome, DeliveryStatusRow,
            LANES, LeaseToken, NewAccount, QueueCounts, StatusQuery, StoreError,
        };

        type Pool = sqlx::Pool<$DB>;
        type DbRow = <$DB as sqlx::Database>::Row;

        const ACCOUNT_COLUMNS: &str = "id, name, app_id, secret_id, secret_key_sealed, created_ms, suspended";

        fn account_from_row(row: &DbRow) -> Result<Account, StoreError> {
            Ok(Account {
                id: row.try_get("id")?,
                name: row.try_get("name")?,
                app_id: row.try_get("app_id")?,
                secret_id: row.try_get("secret_id")?,
                secret_key_sealed: row.try_get("secret_key_sealed")?,
                created_ms: row.try_get("created_ms")?,
                suspended: row.try_get("suspended")?,
            })
        }

        fn deliver_status(code: i32) -> Result<DeliverStatus, StoreError> {
            DeliverStatus::from_code(code).ok_or_else(|| StoreError::Corrupt(format!("unknown deliver_status {code}")))
        }

        pub(crate) async fn create_account(pool: &Pool, a: NewAccount) -> Result<Account, StoreError> {
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO accounts (name, app_id, secret_id, secret_key_sealed, created_ms, suspended) \
                 VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            )
            .bind(&a.name)
            .bind(a.app_id)
            .bind(&a.secret_id)
            .bind(&a.secret_key_sealed)
            .bind(a.created_ms)
            .bind(false)
            .fetch_one(pool)
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

        pub(crate) async fn account_by_secret_id(pool: &Pool, secret_id: &str) -> Result<Option<Account>, StoreError> {
            let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE secret_id = $1"
            )))
            .bind(secret_id)
            .fetch_optional(pool)
            .await?;
            row.as_ref().map(account_from_row).transpose()
        }

        pub(crate) async fn account_by_name(pool: &Pool, name: &str) -> Result<Option<Account>, StoreError> {
            let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE name = $1"
            )))
            .bind(name)
            .fetch_optional(pool)
            .await?;
            row.as_ref().map(account_from_row).transpose()
        }

        pub(crate) async fn account(pool: &Pool, id: AccountId) -> Result<Option<Account>, StoreError> {
            let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = $1"
            )))
            .bind(id)
            .fetch_optional(pool)
            .await?;
            row.as_ref().map(account_from_row).transpose()
        }

        pub(crate) async fn list_accounts(pool: &Pool) -> Result<Vec<Account>, StoreError> {
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {ACCOUNT_COLUMNS} FROM accounts ORDER BY id"
            )))
            .fetch_all(pool)
            .await?;
            rows.iter().map(account_from_row).collect()
        }

        pub(crate) async fn set_account_suspended(
            pool: &Pool,
            id: AccountId,
            suspended: bool,
        ) -> Result<(), StoreError> {
            let done = sqlx::query("UPDATE accounts SET suspended = $1 WHERE id = $2")
                .bind(suspended)
                .bind(id)
                .execute(pool)
                .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            Ok(())
        }

        pub(crate) async fn claim(pool: &Pool, r: &ClaimRequest) -> Result<Vec<ClaimedDelivery>, StoreError> {
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
                out.extend(claim_lane(pool, lane, r, lease_until, want).await?);
            }
            Ok(out)
        }

        /// Reads a claimed delivery from a row with the columns of `deliveries` plus `envelope_from`, `expires_ms`.
        pub(crate) fn claimed_from_row(row: &DbRow) -> Result<ClaimedDelivery, StoreError> {
            let kind: String = row.try_get("kind")?;
            Ok(ClaimedDelivery {
                delivery_id: row.try_get("id")?,
                lease: LeaseToken(row.try_get("lease_token")?),
                message_id: MessageId::from_stored(row.try_get("message_id")?),
                account_id: row.try_get("account_id")?,
                recipient: row.try_get("recipient")?,
                domain: row.try_get("domain")?,
                kind: RecipientKind::parse(&kind)
                    .ok_or_else(|| StoreError::Corrupt(format!("unknown recipient kind {kind:?}")))?,
                envelope_from: row.try_get("envelope_from")?,
                lane: row.try_get("lane")?,
                attempts: row.try_get("attempts")?,
                request_ms: row.try_get("request_ms")?,
                expires_ms: row.try_get("expires_ms")?,
            })
        }

        pub(crate) async fn message_body(pool: &Pool, id: &MessageId) -> Result<Option<Vec<u8>>, StoreError> {
            Ok(
                sqlx::query_scalar("SELECT body FROM message_bodies WHERE message_id = $1")
                    .bind(id.as_str())
                    .fetch_optional(pool)
                    .await?,
            )
        }

        pub(crate) async fn status(pool: &Pool, q: &StatusQuery) -> Result<Vec<DeliveryStatusRow>, StoreError> {
            // Built per filter combination rather than `($n IS NULL OR col = $n)`, which hides the index from
            // PostgreSQL's generic plans.
            let mut qb = QueryBuilder::<$DB>::new(
                "SELECT d.message_id, d.recipient, m.from_address, d.send_status, d.deliver_status, \
                 d.deliver_message, d.request_ms, d.deliver_ms, d.attempts \
                 FROM deliveries d JOIN messages m ON m.id = d.message_id WHERE d.account_id = ",
            );
            qb.push_bind(q.account_id);
            qb.push(" AND d.request_ms >= ").push_bind(q.from_ms);
            qb.push(" AND d.request_ms < ").push_bind(q.to_ms);
            if let Some(id) = &q.message_id {
                qb.push(" AND d.message_id = ").push_bind(id.as_str().to_owned());
            }
            if let Some(to) = &q.to_address {
                qb.push(" AND d.recipient = ").push_bind(to.clone());
            }
            qb.push(" ORDER BY d.request_ms, d.id LIMIT ")
                .push_bind(q.limit.max(0));
            qb.push(" OFFSET ").push_bind(q.offset.max(0));
            let rows = qb.build().fetch_all(pool).await?;
            rows.iter()
                .map(|row| {
                    Ok(DeliveryStatusRow {
                        message_id: MessageId::from_stored(row.try_get("message_id")?),
                        recipient: row.try_get("recipient")?,
                        from_address: row.try_get("from_address")?,
                        send_status: row.try_get("send_status")?,
                        deliver_status: deliver_status(row.try_get("deliver_status")?)?,
                        deliver_message: row.try_get("deliver_message")?,
                        request_ms: row.try_get("request_ms")?,
                        deliver_ms: row.try_get("deliver_ms")?,
                        attempts: row.try_get("attempts")?,
                    })
                })
                .collect()
        }

        pub(crate) async fn attempts(
            pool: &Pool,
            account: AccountId,
            message: &MessageId,
            recipient: &str,
        ) -> Result<Vec<DeliveryAttempt>, StoreError> {
            let rows = sqlx::query(
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
            rows.iter()
                .map(|row| {
                    Ok(DeliveryAttempt {
                        at_ms: row.try_get("at_ms")?,
                        deliver_status: deliver_status(row.try_get("deliver_status")?)?,
                        reply: row.try_get("reply")?,
                        remote: row.try_get("remote")?,
                    })
                })
                .collect()
        }

        pub(crate) async fn queue_counts(pool: &Pool) -> Result<QueueCounts, StoreError> {
            let mut counts = QueueCounts::default();
            // Non-final rows through the partial index.
            let rows = sqlx::query(
                "SELECT state, deliver_status, COUNT(*) AS n FROM deliveries WHERE state < 2 \
                 GROUP BY state, deliver_status",
            )
            .fetch_all(pool)
            .await?;
            for row in &rows {
                let st: i32 = row.try_get("state")?;
                let ds: i32 = row.try_get("deliver_status")?;
                let n: i64 = row.try_get("n")?;
                match st {
                    state::LEASED => counts.leased += n,
                    _ if ds == DeliverStatus::Deferred.code() => counts.deferred += n,
                    _ => counts.pending += n,
                }
            }
            counts.done = sqlx::query_scalar("SELECT COUNT(*) FROM deliveries WHERE state = 2")
                .fetch_one(pool)
                .await?;
            Ok(counts)
        }

        pub(crate) async fn release_leases(pool: &Pool, now_ms: i64) -> Result<u64, StoreError> {
            let done = sqlx::query("UPDATE deliveries SET state = 0, next_attempt_ms = $1 WHERE state = 1")
                .bind(now_ms)
                .execute(pool)
                .await?;
            Ok(done.rows_affected())
        }

        pub(crate) async fn renew_leases(
            pool: &Pool,
            leases: &[(i64, LeaseToken)],
            until_ms: i64,
        ) -> Result<u64, StoreError> {
            let mut renewed = 0;
            for chunk in leases.chunks(100) {
                let mut qb = QueryBuilder::<$DB>::new("UPDATE deliveries SET next_attempt_ms = ");
                qb.push_bind(until_ms)
                    .push(" WHERE state = ")
                    .push_bind(state::LEASED)
                    .push(" AND next_attempt_ms < ")
                    .push_bind(until_ms)
                    .push(" AND (");
                let mut each = qb.separated(" OR ");
                for (id, token) in chunk {
                    each.push("(id = ")
                        .push_bind_unseparated(*id)
                        .push_unseparated(" AND lease_token = ")
                        .push_bind_unseparated(token.0)
                        .push_unseparated(")");
                }
                qb.push(")");
                renewed += qb.build().execute(pool).await?.rows_affected();
            }
            Ok(renewed)
        }

        pub(crate) async fn next_due_ms(pool: &Pool) -> Result<Option<i64>, StoreError> {
            let mut due: Option<i64> = None;
            // One index probe per lane (a MIN over all lanes could not use the (lane, next_attempt_ms) index).
            for lane in LANES {
                let lane_due: Option<i64> =
                    sqlx::query_scalar("SELECT MIN(next_attempt_ms) FROM deliveries WHERE state < 2 AND lane = $1")
                        .bind(lane)
                        .fetch_one(pool)
                        .await?;
                due = match (due, lane_due) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
            }
            Ok(due)
        }
    };
}

pub(crate) use common_ops;
