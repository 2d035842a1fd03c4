//! Complaints (`spamreport` events, partial index `events_complaints`) for `GetAbuseReport`.

use mailpush_model::MessageId;

use crate::daily_statistics::Statistics;
use crate::sql::page;
use crate::{AccountId, StoreError};

pub use mailpush_model::reputation::ComplaintRow;

impl Statistics<'_> {
    /// The account's complaints (`spamreport` events) recorded in `[from_ms, to_ms)`, newest first, one page;
    /// and how many there are in all.
    pub async fn complaints(
        self,
        account: AccountId,
        from_ms: i64,
        to_ms: i64,
        offset: i64,
        limit: i64,
    ) -> Result<(Vec<ComplaintRow>, i64), StoreError> {
        let (rows, total) = self
            .store
            .guarded(page::<(String, String, i64, String, String)>(
                self.store.reader(),
                "e.message_id, e.recipient, e.at_ms, e.reason, COALESCE(m.from_address, '') AS from_address",
                "FROM events e LEFT JOIN messages m ON m.id = e.message_id \
                 WHERE e.account_id = $1 AND e.kind = 6 AND e.at_ms >= $2 AND e.at_ms < $3",
                &[account.into(), from_ms.into(), to_ms.into()],
                "ORDER BY e.at_ms DESC, e.id DESC",
                limit,
                offset,
            ))
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
}
