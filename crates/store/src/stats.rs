//! Statistics and the rest of the feedback loop (migration 0011): the daily rollup behind
//! `GetStatisticsReport`, complaints for `GetAbuseReport`, the per-sender-address unsubscribe defaults and the
//! bounce-rate warnings.
//!
//! # The rollup
//! `stats_daily` holds one row per (account, UTC day, sending domain, recipient domain) with one counter per
//! statistic. Every writer of the facts it counts bumps it in the SAME transaction: the enqueue (requested,
//! accepted, dropped at admission), `record_outcomes` (delivered, bounced, dropped) and `record_events`
//! (opens, clicks, unsubscribes, complaints, asynchronous bounces). A report therefore reads a handful of rows
//! per day whatever the volume, and always agrees with the event log. Each transaction folds its increments in
//! memory first ([`StatsDelta`]) and writes them last, in key order: on PostgreSQL the rollup rows are the last
//! locks a transaction takes, always in the same order, so concurrent writers queue on a hot row but never
//! deadlock.

use std::collections::BTreeMap;

use mailpush_model::{EventKind, MessageId};

use crate::sql::{Pool, builder, query};
use crate::{AccountId, Store, StoreError};

/// The counters of one day, or of a period.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct StatCounters {
    /// Recipients requested (stored at enqueue, admitted or not).
    pub requested: i64,
    /// Recipients admitted to the queue (not refused at admission).
    pub accepted: i64,
    /// `delivered` events.
    pub delivered: i64,
    /// Recipients who opened (first `open` event per message and recipient).
    pub opened: i64,
    /// Recipients who clicked (first `click` event per message and recipient).
    pub clicked: i64,
    /// `bounce` events (hard and soft, synchronous and asynchronous).
    pub bounced: i64,
    /// `unsubscribe` events.
    pub unsubscribed: i64,
    /// `dropped` events (refused at admission or dropped by the worker).
    pub dropped: i64,
    /// `spamreport` events.
    pub complained: i64,
}

impl StatCounters {
    /// Adds `o` to `self`.
    pub fn add(&mut self, o: &StatCounters) {
        self.requested += o.requested;
        self.accepted += o.accepted;
        self.delivered += o.delivered;
        self.opened += o.opened;
        self.clicked += o.clicked;
        self.bounced += o.bounced;
        self.unsubscribed += o.unsubscribed;
        self.dropped += o.dropped;
        self.complained += o.complained;
    }
}

/// One day's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct DailyStats {
    /// Days since 1970-01-01 (UTC).
    pub day: i64,
    /// The counters.
    #[sqlx(flatten)]
    pub counters: StatCounters,
}

/// A statistics query: UTC days `from_day..=to_day`, optionally one sending domain and one recipient domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsQuery {
    /// The account.
    pub account_id: AccountId,
    /// First day (days since 1970-01-01).
    pub from_day: i64,
    /// Last day, inclusive.
    pub to_day: i64,
    /// Only mail sent from this domain (lowercase).
    pub send_domain: Option<String>,
    /// Only mail to this recipient domain (lowercase), e.g. `gmail.com`.
    pub recv_domain: Option<String>,
}

/// The calendar day number of `ms` (in the `time_zone` of the process).
pub fn day_of(ms: i64) -> i64 {
    mailpush_model::clock::day_number(ms)
}

/// The lowercase domain of an address (empty when it has none).
pub fn domain_of(address: &str) -> String {
    address
        .rsplit_once('@')
        .map(|(_, d)| d.to_ascii_lowercase())
        .unwrap_or_default()
}

/// Rollup increments of one transaction, by (account, day, sending domain, recipient domain), in key order.
#[derive(Debug, Default)]
pub(crate) struct StatsDelta {
    rows: BTreeMap<(AccountId, i64, String, String), StatCounters>,
}

impl StatsDelta {
    /// The counters to bump for mail of `account` from `from_address` to `recipient`, on the day of `at_ms`.
    pub(crate) fn at(
        &mut self,
        account: AccountId,
        at_ms: i64,
        from_address: &str,
        recipient: &str,
    ) -> &mut StatCounters {
        self.rows
            .entry((account, day_of(at_ms), domain_of(from_address), domain_of(recipient)))
            .or_default()
    }

    /// Counts an event of `kind`. Opens and clicks count only when `first` (the recipient's first of the
    /// message); deferrals are not a statistic.
    pub(crate) fn event(
        &mut self,
        account: AccountId,
        at_ms: i64,
        from_address: &str,
        recipient: &str,
        kind: EventKind,
        first: bool,
    ) {
        let c = self.at(account, at_ms, from_address, recipient);
        match kind {
            EventKind::Delivered => c.delivered += 1,
            EventKind::Dropped => c.dropped += 1,
            EventKind::Bounce => c.bounced += 1,
            EventKind::Open if first => c.opened += 1,
            EventKind::Click if first => c.clicked += 1,
            EventKind::SpamReport => c.complained += 1,
            EventKind::Unsubscribe => c.unsubscribed += 1,
            _ => {}
        }
    }
}

/// The rollup upsert's conflict clause: add the increments to the existing row. A macro, so that both backends'
/// statements are one `concat!` of literals with the same clause.
macro_rules! stats_upsert_add {
    () => {
        " ON CONFLICT (account_id, day, send_domain, recv_domain) DO UPDATE SET \
         requested = stats_daily.requested + excluded.requested, accepted = stats_daily.accepted + excluded.accepted, \
         delivered = stats_daily.delivered + excluded.delivered, opened = stats_daily.opened + excluded.opened, \
         clicked = stats_daily.clicked + excluded.clicked, bounced = stats_daily.bounced + excluded.bounced, \
         unsubscribed = stats_daily.unsubscribed + excluded.unsubscribed, \
         dropped = stats_daily.dropped + excluded.dropped, complained = stats_daily.complained + excluded.complained"
    };
}

/// Rows of one multi-row upsert at most (13 bound values each, far below SQLite's 32,766).
const UPSERT_ROWS_PER_STATEMENT: usize = 500;

/// Adds the increments to a script of the caller's SQLite transaction: multi-row upserts, rows in key order.
/// SQLite inserts a multi-row `VALUES` row by row, so each row's conflict is resolved as by its own statement.
pub(crate) fn push_sqlite(script: &mut crate::script::Script, d: &StatsDelta) {
    let rows: Vec<_> = d.rows.iter().collect();
    for chunk in rows.chunks(UPSERT_ROWS_PER_STATEMENT) {
        script.push(
            "INSERT INTO stats_daily (account_id, day, send_domain, recv_domain, requested, accepted, delivered, \
             opened, clicked, bounced, unsubscribed, dropped, complained) ",
        );
        script
            .sql()
            .push_values(chunk, |mut b, ((account, day, send, recv), c)| {
                b.push_bind(*account)
                    .push_bind(*day)
                    .push_bind(send)
                    .push_bind(recv)
                    .push_bind(c.requested)
                    .push_bind(c.accepted)
                    .push_bind(c.delivered)
                    .push_bind(c.opened)
                    .push_bind(c.clicked)
                    .push_bind(c.bounced)
                    .push_bind(c.unsubscribed)
                    .push_bind(c.dropped)
                    .push_bind(c.complained);
            });
        script.sql().push(stats_upsert_add!());
    }
}

/// Writes the increments inside the caller's SQLite transaction, in one hand-off (see [`push_sqlite`]).
pub(crate) async fn apply_sqlite(conn: &mut sqlx::SqliteConnection, d: &StatsDelta) -> Result<(), StoreError> {
    let mut script = crate::script::Script::default();
    push_sqlite(&mut script, d);
    script.run(conn).await.map(|_| ())
}

/// Writes the increments inside the caller's PostgreSQL transaction: one statement, rows in key order.
pub(crate) async fn apply_pg(conn: &mut sqlx::PgConnection, d: &StatsDelta) -> Result<(), StoreError> {
    if d.rows.is_empty() {
        return Ok(());
    }
    let n = d.rows.len();
    let (mut acc, mut day, mut send, mut recv) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let mut cols: [Vec<i64>; 9] = Default::default();
    for ((a, dd, s, r), c) in &d.rows {
        acc.push(*a);
        day.push(*dd);
        send.push(s.as_str());
        recv.push(r.as_str());
        for (col, v) in cols.iter_mut().zip([
            c.requested,
            c.accepted,
            c.delivered,
            c.opened,
            c.clicked,
            c.bounced,
            c.unsubscribed,
            c.dropped,
            c.complained,
        ]) {
            col.push(v);
        }
    }
    let mut q = sqlx::query(concat!(
        "INSERT INTO stats_daily (account_id, day, send_domain, recv_domain, requested, accepted, delivered, \
         opened, clicked, bounced, unsubscribed, dropped, complained) \
         SELECT * FROM UNNEST($1::int8[], $2::int8[], $3::text[], $4::text[], $5::int8[], $6::int8[], $7::int8[], \
         $8::int8[], $9::int8[], $10::int8[], $11::int8[], $12::int8[], $13::int8[])",
        stats_upsert_add!()
    ))
    .bind(&acc)
    .bind(&day)
    .bind(&send)
    .bind(&recv);
    for col in &cols {
        q = q.bind(col);
    }
    q.execute(&mut *conn).await?;
    Ok(())
}

/// One complaint (`spamreport` event) for `GetAbuseReport`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComplaintRow {
    /// The message complained about.
    pub message_id: MessageId,
    /// The recipient who complained.
    pub recipient: String,
    /// The message's sender address (empty if unknown).
    pub from_address: String,
    /// When the complaint was recorded, Unix ms.
    pub at_ms: i64,
    /// What the report said (feedback type, user agent, …), as recorded.
    pub reason: String,
}

/// A sender address's default `Unsubscribe` option.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct UnsubscribeConfigRow {
    /// The sender address (lowercase).
    pub address: String,
    /// The `Unsubscribe` code as given ("0"–"12").
    pub unsubscribe_config: String,
    /// 1 = in force, 0 = off.
    pub status: i32,
    /// When it was created, Unix ms.
    pub created_ms: i64,
}

/// A bounce-rate (or other reputation) warning.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct WarningRow {
    /// Row id.
    pub id: i64,
    /// The account.
    pub account_id: AccountId,
    /// What it is about (`bounce_rate`).
    pub kind: String,
    /// Raised at, Unix ms.
    pub raised_ms: i64,
    /// Cleared at (the rate fell back), Unix ms; `None` while in force.
    pub cleared_ms: Option<i64>,
    /// The measured rate, percent.
    pub rate: f64,
    /// The threshold it exceeded, percent.
    pub threshold: f64,
    /// Delivered mail in the window when raised.
    pub delivered: i64,
    /// Bounced mail in the window when raised.
    pub bounced: i64,
}

/// A warning to raise.
#[derive(Debug, Clone, PartialEq)]
pub struct NewWarning {
    /// The account.
    pub account_id: AccountId,
    /// What it is about (`bounce_rate`).
    pub kind: String,
    /// Now, Unix ms.
    pub at_ms: i64,
    /// The measured rate, percent.
    pub rate: f64,
    /// The threshold, percent.
    pub threshold: f64,
    /// Delivered mail in the window.
    pub delivered: i64,
    /// Bounced mail in the window.
    pub bounced: i64,
}

async fn daily_stats(pool: Pool<'_>, q: &StatsQuery) -> Result<Vec<DailyStats>, StoreError> {
    let mut qb = builder(
        "SELECT day, CAST(SUM(requested) AS BIGINT) AS requested, CAST(SUM(accepted) AS BIGINT) AS accepted, \
         CAST(SUM(delivered) AS BIGINT) AS delivered, CAST(SUM(opened) AS BIGINT) AS opened, \
         CAST(SUM(clicked) AS BIGINT) AS clicked, CAST(SUM(bounced) AS BIGINT) AS bounced, \
         CAST(SUM(unsubscribed) AS BIGINT) AS unsubscribed, CAST(SUM(dropped) AS BIGINT) AS dropped, \
         CAST(SUM(complained) AS BIGINT) AS complained FROM stats_daily WHERE account_id = ",
    );
    qb.push_bind(q.account_id);
    qb.push(" AND day >= ").push_bind(q.from_day);
    qb.push(" AND day <= ").push_bind(q.to_day);
    if let Some(d) = &q.send_domain {
        qb.push(" AND send_domain = ").push_bind(d);
    }
    if let Some(d) = &q.recv_domain {
        qb.push(" AND recv_domain = ").push_bind(d);
    }
    qb.push(" GROUP BY day ORDER BY day");
    qb.build().fetch_all(pool).await
}

async fn complaints(
    pool: Pool<'_>,
    account: AccountId,
    from_ms: i64,
    to_ms: i64,
    offset: i64,
    limit: i64,
) -> Result<(Vec<ComplaintRow>, i64), StoreError> {
    let total: i64 =
        query("SELECT COUNT(*) FROM events WHERE account_id = $1 AND kind = 6 AND at_ms >= $2 AND at_ms < $3")
            .bind(account)
            .bind(from_ms)
            .bind(to_ms)
            .scalar(pool)
            .await?;
    let rows: Vec<(String, String, i64, String, String)> = query(
        "SELECT e.message_id, e.recipient, e.at_ms, e.reason, COALESCE(m.from_address, '') AS from_address \
         FROM events e LEFT JOIN messages m ON m.id = e.message_id \
         WHERE e.account_id = $1 AND e.kind = 6 AND e.at_ms >= $2 AND e.at_ms < $3 \
         ORDER BY e.at_ms DESC, e.id DESC LIMIT $4 OFFSET $5",
    )
    .bind(account)
    .bind(from_ms)
    .bind(to_ms)
    .bind(limit)
    .bind(offset)
    .fetch_all(pool)
    .await?;
    let list = rows
        .into_iter()
        .map(|(message_id, recipient, at_ms, reason, from_address)| ComplaintRow {
            message_id: MessageId::from_stored(message_id),
            recipient,
            from_address,
            at_ms,
            reason,
        })
        .collect();
    Ok((list, total))
}

async fn create_unsubscribe_config(
    pool: Pool<'_>,
    account: AccountId,
    c: &UnsubscribeConfigRow,
) -> Result<(), StoreError> {
    let changed = query(
        "INSERT INTO address_unsubscribe_configs (account_id, address, unsubscribe_config, status, \
         created_ms) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
    )
    .bind(account)
    .bind(&c.address)
    .bind(&c.unsubscribe_config)
    .bind(c.status)
    .bind(c.created_ms)
    .execute(pool)
    .await?;
    if changed == 0 {
        return Err(StoreError::Conflict(format!(
            "{} already has an unsubscribe config",
            c.address
        )));
    }
    Ok(())
}

async fn update_unsubscribe_config(
    pool: Pool<'_>,
    account: AccountId,
    address: &str,
    config: &str,
    status: i32,
) -> Result<(), StoreError> {
    let changed = query(
        "UPDATE address_unsubscribe_configs SET unsubscribe_config = $1, status = $2 \
         WHERE account_id = $3 AND address = $4",
    )
    .bind(config)
    .bind(status)
    .bind(account)
    .bind(address)
    .execute(pool)
    .await?;
    if changed == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

async fn delete_unsubscribe_config(pool: Pool<'_>, account: AccountId, address: &str) -> Result<(), StoreError> {
    let changed = query("DELETE FROM address_unsubscribe_configs WHERE account_id = $1 AND address = $2")
        .bind(account)
        .bind(address)
        .execute(pool)
        .await?;
    if changed == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

async fn list_unsubscribe_configs(
    pool: Pool<'_>,
    account: AccountId,
    offset: i64,
    limit: i64,
) -> Result<(Vec<UnsubscribeConfigRow>, i64), StoreError> {
    let total: i64 = query("SELECT COUNT(*) FROM address_unsubscribe_configs WHERE account_id = $1")
        .bind(account)
        .scalar(pool)
        .await?;
    let list = query(
        "SELECT address, unsubscribe_config, status, created_ms FROM address_unsubscribe_configs \
         WHERE account_id = $1 ORDER BY address LIMIT $2 OFFSET $3",
    )
    .bind(account)
    .bind(limit)
    .bind(offset)
    .fetch_all(pool)
    .await?;
    Ok((list, total))
}

async fn unsubscribe_config(
    pool: Pool<'_>,
    account: AccountId,
    address: &str,
) -> Result<Option<UnsubscribeConfigRow>, StoreError> {
    query(
        "SELECT address, unsubscribe_config, status, created_ms FROM address_unsubscribe_configs \
         WHERE account_id = $1 AND address = $2",
    )
    .bind(account)
    .bind(address)
    .fetch_optional(pool)
    .await
}

async fn raise_warning(pool: Pool<'_>, w: &NewWarning) -> Result<bool, StoreError> {
    let changed = query(
        "INSERT INTO reputation_warnings (account_id, kind, raised_ms, rate, threshold, delivered, bounced) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
    )
    .bind(w.account_id)
    .bind(&w.kind)
    .bind(w.at_ms)
    .bind(w.rate)
    .bind(w.threshold)
    .bind(w.delivered)
    .bind(w.bounced)
    .execute(pool)
    .await?;
    Ok(changed > 0)
}

async fn clear_warning(pool: Pool<'_>, account: AccountId, kind: &str, at_ms: i64) -> Result<bool, StoreError> {
    let changed = query(
        "UPDATE reputation_warnings SET cleared_ms = $1 \
         WHERE account_id = $2 AND kind = $3 AND cleared_ms IS NULL",
    )
    .bind(at_ms)
    .bind(account)
    .bind(kind)
    .execute(pool)
    .await?;
    Ok(changed > 0)
}

async fn warnings(pool: Pool<'_>, account: AccountId, limit: i64) -> Result<Vec<WarningRow>, StoreError> {
    query(
        "SELECT id, account_id, kind, raised_ms, cleared_ms, rate, threshold, delivered, bounced \
         FROM reputation_warnings WHERE account_id = $1 ORDER BY raised_ms DESC, id DESC LIMIT $2",
    )
    .bind(account)
    .bind(limit)
    .fetch_all(pool)
    .await
}

impl Store {
    /// The account's counters per UTC day of the query's range (days without mail are absent), from the rollup.
    pub async fn daily_stats(&self, q: &StatsQuery) -> Result<Vec<DailyStats>, StoreError> {
        self.guarded(async { daily_stats(self.inner.db.reader(), q).await })
            .await
    }

    /// The account's complaints (`spamreport` events) recorded in `[from_ms, to_ms)`, newest first, one page;
    /// and how many there are in all.
    pub async fn complaints(
        &self,
        account: AccountId,
        from_ms: i64,
        to_ms: i64,
        offset: i64,
        limit: i64,
    ) -> Result<(Vec<ComplaintRow>, i64), StoreError> {
        self.guarded(async { complaints(self.inner.db.reader(), account, from_ms, to_ms, offset, limit).await })
            .await
    }

    /// Creates a sender address's unsubscribe default; [`StoreError::Conflict`] if it has one.
    pub async fn create_unsubscribe_config(
        &self,
        account: AccountId,
        config: &UnsubscribeConfigRow,
    ) -> Result<(), StoreError> {
        self.guarded(async { create_unsubscribe_config(self.inner.db.writer(), account, config).await })
            .await
    }

    /// Changes a sender address's unsubscribe default; [`StoreError::NotFound`] if it has none.
    pub async fn update_unsubscribe_config(
        &self,
        account: AccountId,
        address: &str,
        config: &str,
        status: i32,
    ) -> Result<(), StoreError> {
        self.guarded(async {
            update_unsubscribe_config(self.inner.db.writer(), account, address, config, status).await
        })
        .await
    }

    /// Deletes a sender address's unsubscribe default; [`StoreError::NotFound`] if it has none.
    pub async fn delete_unsubscribe_config(&self, account: AccountId, address: &str) -> Result<(), StoreError> {
        self.guarded(async { delete_unsubscribe_config(self.inner.db.writer(), account, address).await })
            .await
    }

    /// One page of the account's unsubscribe defaults, by address; and their total.
    pub async fn list_unsubscribe_configs(
        &self,
        account: AccountId,
        offset: i64,
        limit: i64,
    ) -> Result<(Vec<UnsubscribeConfigRow>, i64), StoreError> {
        self.guarded(async { list_unsubscribe_configs(self.inner.db.reader(), account, offset, limit).await })
            .await
    }

    /// The unsubscribe default of one sender address (lowercase), if any.
    pub async fn unsubscribe_config(
        &self,
        account: AccountId,
        address: &str,
    ) -> Result<Option<UnsubscribeConfigRow>, StoreError> {
        self.guarded(async { unsubscribe_config(self.inner.db.reader(), account, address).await })
            .await
    }

    /// Raises a warning unless one of its kind is already in force for the account; `true` if raised now.
    pub async fn raise_warning(&self, w: &NewWarning) -> Result<bool, StoreError> {
        self.guarded(async { raise_warning(self.inner.db.writer(), w).await })
            .await
    }

    /// Clears the account's warning of `kind` in force, if any; `true` if one was cleared.
    pub async fn clear_warning(&self, account: AccountId, kind: &str, at_ms: i64) -> Result<bool, StoreError> {
        self.guarded(async { clear_warning(self.inner.db.writer(), account, kind, at_ms).await })
            .await
    }

    /// The account's most recent warnings, newest first.
    pub async fn warnings(&self, account: AccountId, limit: i64) -> Result<Vec<WarningRow>, StoreError> {
        self.guarded(async { warnings(self.inner.db.reader(), account, limit).await })
            .await
    }
}
