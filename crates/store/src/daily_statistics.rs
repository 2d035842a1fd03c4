//! Statistics (migration 0011): the daily rollup behind `GetStatisticsReport`.
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
use std::sync::LazyLock;

use mailpush_model::EventKind;

use crate::sql::{Pool, builder};
use crate::{AccountId, Store, StoreError};

pub use mailpush_model::stats::StatCounters;

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

    /// Counts recipient `r` of `m` as requested, and as accepted or, when its send status refused it, dropped.
    pub(crate) fn request(&mut self, m: &crate::NewMessage, r: &crate::NewRecipient) {
        let c = self.at(m.account_id, m.request_ms, &m.from_address, &r.address);
        c.requested += 1;
        if r.send_status.is_ok() {
            c.accepted += 1;
        } else {
            c.dropped += 1;
        }
    }

    /// Counts an event of `kind`. Opens and clicks count only when `first` (the recipient's first of the
    /// message); deferrals and the SES-only kinds are not a statistic.
    pub(crate) fn event(
        &mut self,
        account: AccountId,
        at_ms: i64,
        from_address: &str,
        recipient: &str,
        kind: EventKind,
        first: bool,
    ) {
        // The SES-only kinds (send, reject, rendering failure, subscription) are no Tencent statistic.
        if !kind.is_tencent() {
            return;
        }
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

/// The rollup upsert's conflict clause: add the increments to the existing row (both backends' statements end
/// with it).
const STATS_UPSERT_ADD: &str = " ON CONFLICT (account_id, day, send_domain, recv_domain) DO UPDATE SET \
     requested = stats_daily.requested + excluded.requested, accepted = stats_daily.accepted + excluded.accepted, \
     delivered = stats_daily.delivered + excluded.delivered, opened = stats_daily.opened + excluded.opened, \
     clicked = stats_daily.clicked + excluded.clicked, bounced = stats_daily.bounced + excluded.bounced, \
     unsubscribed = stats_daily.unsubscribed + excluded.unsubscribed, \
     dropped = stats_daily.dropped + excluded.dropped, complained = stats_daily.complained + excluded.complained";

/// The rollup upsert of PostgreSQL: one statement over UNNEST arrays, `$1`–`$4` the key, `$5`–`$13` the counters.
static STATS_UPSERT_UNNEST: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT INTO stats_daily (account_id, day, send_domain, recv_domain, requested, accepted, delivered, \
         opened, clicked, bounced, unsubscribed, dropped, complained) \
         SELECT * FROM UNNEST($1::int8[], $2::int8[], $3::text[], $4::text[], $5::int8[], $6::int8[], $7::int8[], \
         $8::int8[], $9::int8[], $10::int8[], $11::int8[], $12::int8[], $13::int8[]){STATS_UPSERT_ADD}"
    )
});

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
        script.sql().push(STATS_UPSERT_ADD);
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
    let mut q = sqlx::query(STATS_UPSERT_UNNEST.as_str())
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

/// Statistics: the daily rollup and complaints ([`Store::stats`]).
#[derive(Debug, Clone, Copy)]
pub struct Statistics<'a> {
    pub(crate) store: &'a Store,
}

impl Store {
    /// Statistics: the daily rollup (`GetStatisticsReport`) and complaints (`GetAbuseReport`).
    pub fn stats(&self) -> Statistics<'_> {
        Statistics { store: self }
    }
}

impl Statistics<'_> {
    /// The account's counters per UTC day of the query's range (days without mail are absent), from the rollup.
    pub async fn daily_stats(self, q: &StatsQuery) -> Result<Vec<DailyStats>, StoreError> {
        self.store.guarded(daily_stats(self.store.reader(), q)).await
    }
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
