//! The operator's hand on the queue: make waiting deliveries of a receiving domain or of one message due now
//! (`mailpush queue retry`), or lease them to give them up (`mailpush queue drop`, which then records a
//! `Dropped` outcome through [`Store::record_outcomes`], so events, statistics and body purging follow the one
//! path every outcome takes).

use mailpush_model::MessageId;
use sqlx::AssertSqlSafe;

use crate::sql::query;
use crate::{LeaseToken, Store, StoreError};

/// Which queued deliveries an operator command acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueTarget<'a> {
    /// Every queued delivery to this receiving domain (lowercase ASCII / punycode, as stored).
    Domain(&'a str),
    /// Every queued delivery of this message.
    Message(&'a MessageId),
}

/// The operator's queue actions: retry now, lease for a drop.
#[derive(Clone, Copy)]
pub struct QueueAdmin<'a> {
    store: &'a Store,
}

impl Store {
    /// The operator's queue actions: retry now, lease for a drop.
    pub fn queue_admin(&self) -> QueueAdmin<'_> {
        QueueAdmin { store: self }
    }
}

impl<'a> QueueTarget<'a> {
    /// The `deliveries` column that names the target, and its value.
    fn column(self) -> (&'static str, &'a str) {
        match self {
            QueueTarget::Domain(domain) => ("domain", domain),
            QueueTarget::Message(id) => ("message_id", id.as_str()),
        }
    }
}

impl QueueAdmin<'_> {
    /// Makes the waiting (queued or deferred, not leased) deliveries of `target` due at `now_ms`, so the next
    /// claim takes them whatever their retry schedule said; returns how many. Leased deliveries are left to
    /// their worker, and warm-up still applies at the claim.
    pub async fn retry_now(self, target: QueueTarget<'_>, now_ms: i64) -> Result<u64, StoreError> {
        let (column, value) = target.column();
        query(AssertSqlSafe(format!(
            "UPDATE deliveries SET next_attempt_ms = $1 WHERE state = 0 AND next_attempt_ms > $1 AND {column} = $2"
        )))
        .bind(now_ms)
        .bind(value)
        .execute(self.store.guarded_writer())
        .await
    }

    /// Leases the waiting (not leased) deliveries of `target` to `owner` until `lease_until_ms`, as a claim
    /// would, and returns them with their lease tokens: what [`crate::Queue::record_outcomes`] needs to give them up.
    pub async fn lease_queued(
        self,
        target: QueueTarget<'_>,
        owner: &str,
        lease_until_ms: i64,
    ) -> Result<Vec<(i64, LeaseToken)>, StoreError> {
        let (column, value) = target.column();
        let rows: Vec<(i64, i64)> = query(AssertSqlSafe(format!(
            "UPDATE deliveries SET state = 1, lease_token = lease_token + 1, lease_owner = $1, \
             next_attempt_ms = $2 WHERE state = 0 AND {column} = $3 RETURNING id, lease_token"
        )))
        .bind(owner)
        .bind(lease_until_ms)
        .bind(value)
        .fetch_all(self.store.guarded_writer())
        .await?;
        Ok(rows.into_iter().map(|(id, token)| (id, LeaseToken(token))).collect())
    }
}
