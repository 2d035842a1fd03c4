//! The operator's hand on the queue: make waiting deliveries of a receiving domain or of one message due now
//! (`mailpush queue retry`).

use mailpush_model::MessageId;

use crate::sql::query;
use crate::{Store, StoreError};

/// Which queued deliveries an operator command acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueTarget<'a> {
    /// Every queued delivery to this receiving domain (lowercase ASCII / punycode, as stored).
    Domain(&'a str),
    /// Every queued delivery of this message.
    Message(&'a MessageId),
}

impl Store {
    /// Makes the waiting (queued or deferred, not leased) deliveries of `target` due at `now_ms`, so the next
    /// claim takes them whatever their retry schedule said; returns how many. Leased deliveries are left to
    /// their worker, and warm-up still applies at the claim.
    pub async fn retry_now(&self, target: QueueTarget<'_>, now_ms: i64) -> Result<u64, StoreError> {
        self.guarded(async {
            let writer = self.inner.db.writer();
            match target {
                QueueTarget::Domain(domain) => {
                    query("UPDATE deliveries SET next_attempt_ms = $1 WHERE state = 0 AND next_attempt_ms > $1 AND domain = $2")
                        .bind(now_ms)
                        .bind(domain)
                        .execute(writer)
                        .await
                }
                QueueTarget::Message(id) => {
                    query("UPDATE deliveries SET next_attempt_ms = $1 WHERE state = 0 AND next_attempt_ms > $1 AND message_id = $2")
                        .bind(now_ms)
                        .bind(id.as_str())
                        .execute(writer)
                        .await
                }
            }
        })
        .await
    }
}
