//! Complaint reports for `GetAbuseReport` as the Tencent SDK models them: one row per complaint (`spamreport`
//! event) with what is known of the mail complained about (sender, subject, template, when it was delivered),
//! filterable by sending domain, sender, recipient domain, recipient and template.

use mailpush_model::MessageId;

use crate::sql::page;
use crate::{AccountId, Store, StoreError};

pub use mailpush_model::reputation::AbuseRow;

/// Which complaints a report lists. Empty strings and a negative template id mean "any".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AbuseFilter {
    /// Complaints recorded at or after this instant, Unix ms.
    pub from_ms: i64,
    /// Complaints recorded before this instant, Unix ms.
    pub to_ms: i64,
    /// The sending domain of the mail (lowercase), or empty.
    pub from_domain: String,
    /// The sender address of the mail (lowercase), or empty.
    pub from_address: String,
    /// The recipient's domain (lowercase), or empty.
    pub recipient_domain: String,
    /// The recipient (lowercase), or empty.
    pub recipient: String,
    /// The template the mail was rendered from, or negative.
    pub template_id: i64,
    /// Rows skipped.
    pub offset: i64,
    /// Most rows returned.
    pub limit: i64,
}

type Row = (String, String, String, String, i64, i64, Option<i64>, i64);

const FILTER: &str = "FROM events e \
     LEFT JOIN messages m ON m.id = e.message_id \
     LEFT JOIN deliveries d ON d.message_id = e.message_id AND d.recipient = e.recipient \
     WHERE e.account_id = $1 AND e.kind = 6 AND e.at_ms >= $2 AND e.at_ms < $3 \
     AND ($4 = '' OR LOWER(COALESCE(m.from_address, '')) LIKE '%@' || $4) \
     AND ($5 = '' OR LOWER(COALESCE(m.from_address, '')) = $5) \
     AND ($6 = '' OR LOWER(e.recipient) LIKE '%@' || $6) \
     AND ($7 = '' OR LOWER(e.recipient) = $7) \
     AND ($8 < 0 OR COALESCE(m.template_id, 0) = $8)";

/// Abuse reports: complaints with their messages.
#[derive(Clone, Copy)]
pub struct Abuse<'a> {
    store: &'a Store,
}

impl Store {
    /// Abuse reports: complaints with their messages.
    pub fn abuse(&self) -> Abuse<'_> {
        Abuse { store: self }
    }
}

impl Abuse<'_> {
    /// The account's complaints matching `filter`, newest first, one page; and how many match in all.
    pub async fn abuse_reports(self, account: AccountId, f: &AbuseFilter) -> Result<(Vec<AbuseRow>, i64), StoreError> {
        let (rows, total) = self
            .store
            .guarded(page::<Row>(
                self.store.reader(),
                "e.message_id, e.recipient, COALESCE(m.from_address, ''), COALESCE(m.subject, ''), \
                 COALESCE(m.template_id, 0), COALESCE(m.request_ms, e.at_ms), d.deliver_ms, e.at_ms",
                FILTER,
                // $1..$8 of FILTER, in order.
                &[
                    account.into(),
                    f.from_ms.into(),
                    f.to_ms.into(),
                    f.from_domain.as_str().into(),
                    f.from_address.as_str().into(),
                    f.recipient_domain.as_str().into(),
                    f.recipient.as_str().into(),
                    f.template_id.into(),
                ],
                "ORDER BY e.at_ms DESC, e.id DESC",
                f.limit,
                f.offset,
            ))
            .await?;
        let list = rows
            .into_iter()
            .map(
                |(message_id, recipient, from_address, subject, template_id, request_ms, deliver_ms, complained_ms)| {
                    AbuseRow {
                        message_id: MessageId::from_stored(message_id),
                        recipient,
                        from_address,
                        subject,
                        template_id,
                        request_ms,
                        deliver_ms,
                        complained_ms,
                    }
                },
            )
            .collect();
        Ok((list, total))
    }
}
