//! Data retention: deleting the mail whose final state is older than the retention period, and giving the space
//! back.
//!
//! A message goes once all its recipients reached their final state before the cutoff and none of its events
//! is newer or still waiting for its callback; with it go its deliveries, their attempts, its events, its
//! bodies, its first-open/first-click marks and its SES v2 row (configuration set and tags, `ses_message_tags`).
//! SES mail refused at admission (`REJECT`, `RENDERING_FAILURE`) has events and an SES row but no message: those
//! go once the row is older than the cutoff and none of its events is newer or waiting
//! ([`Retention::prune_ses_orphans`]). The daily statistics rollup, the blacklists and the suppression
//! lists are not touched: they keep their own rules.
//!
//! The pruner walks messages by request time (index `messages_by_request`, migration 0023) behind a cursor, a
//! small batch per write transaction, so it never holds the one SQLite writer for long: enqueues queue behind
//! at most one batch. SQLite files are in incremental auto-vacuum mode, and [`Store::release_free_pages`]
//! returns freed pages to the file system a bounded number at a time; PostgreSQL reuses the space once
//! autovacuum has passed.

use std::time::Duration;

use sqlx::SqlitePool;

use crate::sql::{builder, query};
use crate::{Db, Store, StoreError};

pub use mailpush_model::retention::{FilePages, PruneCounts};

/// Where the previous batch stopped: the last message examined, in walk order (request time, then id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PruneCursor {
    request_ms: i64,
    id: String,
}

/// What one [`Retention::prune_reports`] call deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReportsPruned {
    /// Received DMARC aggregate reports (`dmarc_reports`; their rows go with them).
    pub dmarc_reports: u64,
    /// TLS-RPT counter rows (`tls_rpt_counts`) and report marks (`tls_rpt_reports`).
    pub tls_rpt_rows: u64,
}

/// One batch's result: what it deleted and where the next batch starts (`None`: the walk reached the cutoff).
#[derive(Debug, Clone, Default)]
pub struct PruneBatch {
    /// Rows deleted.
    pub deleted: PruneCounts,
    /// The cursor for the next batch; `None` when no message older than the cutoff is left to examine.
    pub next: Option<PruneCursor>,
}

/// A message candidate of the walk, with whether it may go.
#[derive(sqlx::FromRow)]
struct Candidate {
    id: String,
    request_ms: i64,
    prunable: i32,
}

/// The walk: messages requested before the cutoff (`$1`), after the cursor (`$2`, `$3`), in order, each with
/// whether it is prunable: no open recipient, every final state before the cutoff, no event newer than the
/// cutoff or waiting for its callback (`cb_state` 0).
const WALK: &str = "SELECT m.id, m.request_ms, \
       (CASE WHEN m.open_count = 0 \
         AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.message_id = m.id \
              AND (d.state < 2 OR COALESCE(d.deliver_ms, d.request_ms) >= $1)) \
         AND NOT EXISTS (SELECT 1 FROM events e WHERE e.message_id = m.id \
              AND (e.cb_state = 0 OR e.at_ms >= $1)) \
        THEN 1 ELSE 0 END) AS prunable \
     FROM messages m \
     WHERE m.request_ms < $1 AND (m.request_ms > $2 OR (m.request_ms = $2 AND m.id > $3)) \
     ORDER BY m.request_ms, m.id LIMIT $4";

/// The deletions of one batch, children first (foreign keys), each followed by the batch's ids.
const DELETES: [(&str, &str); 8] = [
    (
        "attempts",
        "DELETE FROM delivery_attempts WHERE delivery_id IN (SELECT id FROM deliveries WHERE message_id IN (",
    ),
    ("events", "DELETE FROM events WHERE message_id IN ("),
    ("", "DELETE FROM stats_firsts WHERE message_id IN ("),
    ("", "DELETE FROM recipient_bodies WHERE message_id IN ("),
    ("", "DELETE FROM message_bodies WHERE message_id IN ("),
    ("ses_messages", "DELETE FROM ses_message_tags WHERE message_id IN ("),
    ("deliveries", "DELETE FROM deliveries WHERE message_id IN ("),
    ("messages", "DELETE FROM messages WHERE id IN ("),
];

/// SES v2 rows without a message (mail refused at admission, or a send refused after its row was written)
/// written before the cutoff (`$1`) whose events are all older and delivered to their callbacks, oldest first, at
/// most `$2`.
const SES_ORPHANS: &str = "SELECT t.message_id FROM ses_message_tags t \
     WHERE t.created_ms < $1 \
       AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.id = t.message_id) \
       AND NOT EXISTS (SELECT 1 FROM events e WHERE e.message_id = t.message_id \
            AND (e.cb_state = 0 OR e.at_ms >= $1)) \
     ORDER BY t.created_ms, t.message_id LIMIT $2";

/// Above this size, an SQLite file still without incremental auto-vacuum is not converted at open (the
/// conversion is a `VACUUM`: it rewrites the whole file under the write lock and needs as much free disk
/// again); `mailpush db vacuum` does it on request.
pub const VACUUM_AT_OPEN_MAX_BYTES: i64 = 256 * 1024 * 1024;

/// Retention: pruning final mail in small batches and giving SQLite pages back.
#[derive(Clone, Copy)]
pub struct Retention<'a> {
    store: &'a Store,
}

impl Store {
    /// Retention: pruning final mail in small batches and giving SQLite pages back.
    pub fn retention(&self) -> Retention<'_> {
        Retention { store: self }
    }
}

impl Retention<'_> {
    /// Deletes, in one short write transaction, the prunable messages among the next `limit` messages
    /// requested before `cutoff_ms` (after `after`, from the oldest when `None`), with everything that belongs
    /// to them (see the module docs).
    pub async fn prune_batch(
        self,
        cutoff_ms: i64,
        after: Option<&PruneCursor>,
        limit: u32,
    ) -> Result<PruneBatch, StoreError> {
        self.store
            .guarded(async {
                let mut tx = self.store.writer().begin_write().await?;
                let (after_ms, after_id) = after.map_or((i64::MIN, ""), |c| (c.request_ms, c.id.as_str()));
                let walked: Vec<Candidate> = query(WALK)
                    .bind(cutoff_ms)
                    .bind(after_ms)
                    .bind(after_id)
                    .bind(i64::from(limit.max(1)))
                    .fetch_all(&mut tx.conn())
                    .await?;
                let next = match walked.last() {
                    Some(last) if walked.len() >= limit.max(1) as usize => Some(PruneCursor {
                        request_ms: last.request_ms,
                        id: last.id.clone(),
                    }),
                    _ => None,
                };
                let ids: Vec<&str> = walked
                    .iter()
                    .filter(|c| c.prunable == 1)
                    .map(|c| c.id.as_str())
                    .collect();
                let mut deleted = PruneCounts::default();
                if !ids.is_empty() {
                    for (counted, head) in DELETES {
                        let mut qb = builder(head);
                        qb.push_binds(ids.iter().copied());
                        qb.push(if counted == "attempts" { "))" } else { ")" });
                        let n = qb.build().persistent(false).execute(&mut tx.conn()).await?;
                        match counted {
                            "attempts" => deleted.attempts = n,
                            "events" => deleted.events = n,
                            "deliveries" => deleted.deliveries = n,
                            "messages" => deleted.messages = n,
                            "ses_messages" => deleted.ses_messages = n,
                            _ => {}
                        }
                    }
                }
                tx.commit().await?;
                Ok(PruneBatch { deleted, next })
            })
            .await
    }

    /// Deletes, in one short write transaction, up to `limit` SES v2 rows that have no message (mail refused at
    /// admission) written before `cutoff_ms`, with their events, when none of those events is newer or waiting
    /// for its callback. Fewer than `limit` rows deleted means none is left.
    pub async fn prune_ses_orphans(self, cutoff_ms: i64, limit: u32) -> Result<PruneCounts, StoreError> {
        self.store
            .guarded(async {
                let mut tx = self.store.writer().begin_write().await?;
                let ids: Vec<String> = query(SES_ORPHANS)
                    .bind(cutoff_ms)
                    .bind(i64::from(limit.max(1)))
                    .scalars(&mut tx.conn())
                    .await?;
                let mut deleted = PruneCounts::default();
                if !ids.is_empty() {
                    for (head, counter) in [
                        ("DELETE FROM events WHERE message_id IN (", &mut deleted.events),
                        (
                            "DELETE FROM ses_message_tags WHERE message_id IN (",
                            &mut deleted.ses_messages,
                        ),
                    ] {
                        let mut qb = builder(head);
                        qb.push_binds(ids.iter().map(String::as_str));
                        qb.push(")");
                        *counter = qb.build().persistent(false).execute(&mut tx.conn()).await?;
                    }
                }
                tx.commit().await?;
                Ok(deleted)
            })
            .await
    }

    /// Prunes everything whose final state is older than `cutoff_ms`, batch after batch of `batch` messages,
    /// pausing `pause` between batches so that other writers take their turn; then the SES rows of mail refused
    /// at admission older than the cutoff ([`Retention::prune_ses_orphans`]). Returns the totals.
    pub async fn prune_final_before(
        self,
        cutoff_ms: i64,
        batch: u32,
        pause: Duration,
    ) -> Result<PruneCounts, StoreError> {
        let mut total = PruneCounts::default();
        let mut cursor = None;
        loop {
            let b = self.prune_batch(cutoff_ms, cursor.as_ref(), batch).await?;
            total.add(&b.deleted);
            match b.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
            if !pause.is_zero() {
                tokio::time::sleep(pause).await;
            }
        }
        loop {
            let b = self.prune_ses_orphans(cutoff_ms, batch).await?;
            total.add(&b);
            if b.ses_messages < u64::from(batch.max(1)) {
                return Ok(total);
            }
            if !pause.is_zero() {
                tokio::time::sleep(pause).await;
            }
        }
    }

    /// Deletes, in one short write transaction, up to `limit` received DMARC aggregate reports whose period ended
    /// before `cutoff_ms` (with their rows) and the TLS-RPT counters and report marks of the oldest UTC day before
    /// the cutoff's day. Call again while it deletes anything.
    pub async fn prune_reports(self, cutoff_ms: i64, limit: u32) -> Result<ReportsPruned, StoreError> {
        let cutoff_day = cutoff_ms.div_euclid(86_400_000);
        self.store
            .guarded(async {
                let mut tx = self.store.writer().begin_write().await?;
                let mut conn = tx.conn();
                // The rows first: on SQLite the cascade would otherwise visit them one report at a time. Both
                // statements pick the same reports (the oldest ids of those ended before the cutoff).
                let mut dmarc_reports = 0;
                for delete in [
                    "DELETE FROM dmarc_report_rows WHERE report IN \
                     (SELECT id FROM dmarc_reports WHERE end_ms < $1 ORDER BY id LIMIT $2)",
                    "DELETE FROM dmarc_reports WHERE id IN \
                     (SELECT id FROM dmarc_reports WHERE end_ms < $1 ORDER BY id LIMIT $2)",
                ] {
                    dmarc_reports = query(delete)
                        .bind(cutoff_ms)
                        .bind(i64::from(limit.max(1)))
                        .execute(&mut conn)
                        .await?;
                }
                let oldest: Option<i64> = query("SELECT day FROM tls_rpt_counts WHERE day < $1 ORDER BY day LIMIT 1")
                    .bind(cutoff_day)
                    .scalar_optional(&mut conn)
                    .await?;
                let mut tls_rpt_rows = 0;
                if let Some(day) = oldest {
                    tls_rpt_rows += query("DELETE FROM tls_rpt_counts WHERE day = $1")
                        .bind(day)
                        .execute(&mut conn)
                        .await?;
                }
                // A mark goes only with its day's counters, or the day would look unreported and be sent again.
                tls_rpt_rows += query(
                    "DELETE FROM tls_rpt_reports WHERE day < $1 \
                     AND NOT EXISTS (SELECT 1 FROM tls_rpt_counts c WHERE c.day = tls_rpt_reports.day)",
                )
                .bind(cutoff_day)
                .execute(&mut conn)
                .await?;
                tx.commit().await?;
                Ok(ReportsPruned {
                    dmarc_reports,
                    tls_rpt_rows,
                })
            })
            .await
    }

    /// SQLite: gives up to `max_pages` free pages back to the file system (`PRAGMA incremental_vacuum`, one
    /// short write) and returns how many it gave. PostgreSQL: nothing to do here (autovacuum), 0.
    pub async fn release_free_pages(self, max_pages: u32) -> Result<u64, StoreError> {
        let Db::Sqlite { writer, .. } = &self.store.inner.db else {
            return Ok(0);
        };
        self.store
            .guarded(async {
                let before = file_pages(writer).await?;
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                    "PRAGMA incremental_vacuum({})",
                    max_pages.max(1)
                )))
                .execute(writer)
                .await?;
                let after = file_pages(writer).await?;
                Ok(u64::try_from(before.free - after.free).unwrap_or(0))
            })
            .await
    }

    /// SQLite: the file's pages (size, free pages, auto-vacuum mode); `None` on PostgreSQL.
    pub async fn file_pages(self) -> Result<Option<FilePages>, StoreError> {
        let Db::Sqlite { writer, .. } = &self.store.inner.db else {
            return Ok(None);
        };
        self.store.guarded(async { file_pages(writer).await.map(Some) }).await
    }

    /// SQLite: switches the file to incremental auto-vacuum and rewrites it (`VACUUM`), whatever its size.
    /// It holds the write lock for as long as the rewrite takes and needs free disk for a copy of the file:
    /// run it with mailpush stopped. PostgreSQL: nothing (autovacuum).
    pub async fn vacuum(self) -> Result<(), StoreError> {
        let Db::Sqlite { writer, .. } = &self.store.inner.db else {
            return Ok(());
        };
        convert_to_incremental(writer).await
    }
}

async fn file_pages(pool: &SqlitePool) -> Result<FilePages, StoreError> {
    async fn pragma(pool: &SqlitePool, name: &'static str) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar::<_, i64>(name).fetch_one(pool).await?)
    }
    Ok(FilePages {
        pages: pragma(pool, "PRAGMA page_count").await?,
        free: pragma(pool, "PRAGMA freelist_count").await?,
        page_size: pragma(pool, "PRAGMA page_size").await?,
        auto_vacuum: pragma(pool, "PRAGMA auto_vacuum").await?,
    })
}

async fn convert_to_incremental(pool: &SqlitePool) -> Result<(), StoreError> {
    // The mode is set on the connection that rewrites the file: a VACUUM then writes it into the header.
    let mut conn = pool.acquire().await?;
    sqlx::raw_sql("PRAGMA auto_vacuum = INCREMENTAL")
        .execute(&mut *conn)
        .await?;
    sqlx::raw_sql("VACUUM").execute(&mut *conn).await?;
    Ok(())
}

/// SQLite at open (after migrations): a file created by this version is already in incremental auto-vacuum
/// mode (set before its first table); an older file is converted now when it is small, since the conversion
/// is a full rewrite. A failed conversion (e.g. no disk for the copy) leaves the file as it was and is only
/// logged: the store works without it, pruned pages are then reused instead of given back.
pub(crate) async fn ensure_incremental_auto_vacuum(pool: &SqlitePool) -> Result<(), StoreError> {
    let pages = file_pages(pool).await?;
    if pages.auto_vacuum == 2 {
        return Ok(());
    }
    let bytes = pages.pages.saturating_mul(pages.page_size);
    if bytes > VACUUM_AT_OPEN_MAX_BYTES {
        tracing::warn!(
            bytes,
            "the SQLite database is not in incremental auto-vacuum mode, so pruned pages are reused but not \
             given back; run `mailpush db vacuum` once while mailpush is stopped (it rewrites the file and needs \
             as much free disk again)"
        );
        return Ok(());
    }
    match convert_to_incremental(pool).await {
        Ok(()) => tracing::info!(bytes, "SQLite database converted to incremental auto-vacuum"),
        Err(e) => tracing::warn!(error = %e, bytes, "could not convert the SQLite database to incremental \
            auto-vacuum; it keeps working, pruned pages are reused but not given back"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deletes_reach_every_table_keyed_by_message() {
        let tables: Vec<&str> = DELETES
            .iter()
            .map(|(_, sql)| sql.split_whitespace().nth(2).unwrap_or(""))
            .collect();
        assert_eq!(
            tables,
            [
                "delivery_attempts",
                "events",
                "stats_firsts",
                "recipient_bodies",
                "message_bodies",
                "ses_message_tags",
                "deliveries",
                "messages"
            ]
        );
        // Children before parents: messages last.
        assert_eq!(tables.last(), Some(&"messages"));
    }
}
