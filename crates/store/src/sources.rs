//! Source IPs (migration 0013): the source pool each sending domain is assigned to, and the warm-up counters of
//! each source address (first-use day, recipients sent per UTC day). The counters live in the store so that
//! every worker sharing the database agrees on what an address has sent today: a worker reserves its sends
//! before a transaction ([`Sources::reserve_source_sends`], atomic) and gives back what it could not use.

use sqlx::AssertSqlSafe;

use crate::sql::query;
use crate::{AccountId, Store, StoreError};

pub use mailpush_model::sources::DomainSourcePool;

fn day_of(ms: i64) -> i64 {
    mailpush_model::clock::day_start(ms)
}

/// The warm-up counters of one source address.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SourceIpUsage {
    /// The address, as text (`127.0.0.2`, `2001:db8::1`).
    pub ip: String,
    /// Start of the UTC day the address first sent (day 1 of its warm-up), Unix ms.
    pub first_day_ms: i64,
    /// Start of the UTC day `day_count` counts, Unix ms.
    pub day_ms: i64,
    /// Recipients sent from the address that day.
    pub day_count: i64,
}

impl SourceIpUsage {
    /// Recipients sent on the UTC day containing `now_ms`.
    pub fn sent_on_day_of(&self, now_ms: i64) -> i64 {
        if self.day_ms == day_of(now_ms) {
            self.day_count
        } else {
            0
        }
    }
}

/// The answer to [`Sources::reserve_source_sends`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceReservation {
    /// Sends granted (0 = the address is at today's allowance).
    pub granted: u32,
    /// The counters after the reservation.
    pub usage: SourceIpUsage,
}

/// Source IPs and their daily sends ([`Store::sources`]).
#[derive(Debug, Clone, Copy)]
pub struct Sources<'a> {
    pub(crate) store: &'a Store,
}

impl Store {
    /// Source IPs: pools per domain, daily reservations.
    pub fn sources(&self) -> Sources<'_> {
        Sources { store: self }
    }
}

impl Sources<'_> {
    /// Assigns a sending domain of `account` to source pool `pool`; `None` = back to the shared pool.
    pub async fn set_domain_source_pool(
        self,
        account: AccountId,
        domain: &str,
        pool: Option<&str>,
        at_ms: i64,
    ) -> Result<(), StoreError> {
        let q = match pool {
            Some(p) => query(
                "INSERT INTO domain_source_pools (account_id, domain, pool, changed_ms) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (account_id, domain) DO UPDATE SET pool = excluded.pool, \
                 changed_ms = excluded.changed_ms",
            )
            .bind(account)
            .bind(domain)
            .bind(p)
            .bind(at_ms),
            None => query("DELETE FROM domain_source_pools WHERE account_id = $1 AND domain = $2")
                .bind(account)
                .bind(domain),
        };
        q.execute(self.store.guarded_writer()).await?;
        Ok(())
    }

    /// Every pool assignment (domains without one use the shared pool).
    pub async fn domain_source_pools(self) -> Result<Vec<DomainSourcePool>, StoreError> {
        query("SELECT account_id, domain, pool FROM domain_source_pools ORDER BY account_id, domain")
            .fetch_all(self.store.guarded_reader())
            .await
    }

    /// Reserves up to `wanted` sends from source address `ip` on the UTC day of `now_ms`, atomically across
    /// workers: `allowance(first_day_ms)` gives the address's allowance for today from the day it first sent
    /// (recorded now if it never did; `None` = unlimited). Grants what is left of it, at most `wanted`.
    pub async fn reserve_source_sends<F>(
        self,
        ip: &str,
        now_ms: i64,
        wanted: u32,
        allowance: F,
    ) -> Result<SourceReservation, StoreError>
    where
        F: FnOnce(i64) -> Option<u64> + Send,
    {
        self.store
            .guarded(async {
                let today = day_of(now_ms);
                let mut tx = self.store.writer().begin().await?;
                let mut conn = tx.conn();
                query(
                    "INSERT INTO source_ip_warmup (ip, first_day_ms, day_ms, day_count) VALUES ($1, $2, $2, 0) \
                 ON CONFLICT (ip) DO NOTHING",
                )
                .bind(ip)
                .bind(today)
                .execute(&mut conn)
                .await?;
                // PostgreSQL: the row lock makes concurrent workers reserve one after the other (SQLite: the one writer
                // connection serialises the transaction with every other write).
                let mut usage: SourceIpUsage = query(AssertSqlSafe(format!(
                    "SELECT ip, first_day_ms, day_ms, day_count FROM source_ip_warmup WHERE ip = $1{}",
                    conn.lock_rows()
                )))
                .bind(ip)
                .fetch_one(&mut conn)
                .await?;
                let sent = u64::try_from(usage.sent_on_day_of(now_ms)).unwrap_or(0);
                let granted = match allowance(usage.first_day_ms) {
                    None => u64::from(wanted),
                    Some(a) => a.saturating_sub(sent).min(u64::from(wanted)),
                };
                let granted = u32::try_from(granted).unwrap_or(wanted);
                usage.day_ms = today;
                usage.day_count = i64::try_from(sent + u64::from(granted)).unwrap_or(i64::MAX);
                query("UPDATE source_ip_warmup SET day_ms = $2, day_count = $3 WHERE ip = $1")
                    .bind(ip)
                    .bind(usage.day_ms)
                    .bind(usage.day_count)
                    .execute(&mut conn)
                    .await?;
                tx.commit().await?;
                Ok(SourceReservation { granted, usage })
            })
            .await
    }

    /// Gives back `count` sends reserved today from `ip` that were not used.
    pub async fn release_source_sends(self, ip: &str, now_ms: i64, count: u32) -> Result<(), StoreError> {
        query(
            "UPDATE source_ip_warmup SET day_count = CASE WHEN day_count > $3 THEN day_count - $3 ELSE 0 END \
             WHERE ip = $1 AND day_ms = $2",
        )
        .bind(ip)
        .bind(day_of(now_ms))
        .bind(i64::from(count))
        .execute(self.store.guarded_writer())
        .await?;
        Ok(())
    }

    /// The warm-up counters of every source address that has sent.
    pub async fn source_ip_usage(self) -> Result<Vec<SourceIpUsage>, StoreError> {
        query("SELECT ip, first_day_ms, day_ms, day_count FROM source_ip_warmup ORDER BY ip")
            .fetch_all(self.store.guarded_reader())
            .await
    }

    /// Moves a message's retry deadline to at least `at_least_ms` (time held for warm-up does not count against
    /// it).
    pub async fn extend_message_expiry(self, message_id: &str, at_least_ms: i64) -> Result<(), StoreError> {
        query("UPDATE messages SET expires_ms = $2 WHERE id = $1 AND expires_ms < $2")
            .bind(message_id)
            .bind(at_least_ms)
            .execute(self.store.guarded_writer())
            .await?;
        Ok(())
    }
}
