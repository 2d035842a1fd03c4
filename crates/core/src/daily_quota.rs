//! THE daily-allowance seam of batch sending: how many more recipients an account may send today.
//!
//! The batch runner asks [`Mailpush::remaining_today`] before every chunk and pauses a task (status 6, the
//! rest cached) at 0. The answer is the account's daily quota (its domains' reputation levels, capped — see
//! `limits.rs`), further capped by the optional `batch_daily_quota` setting, minus the recipients the account
//! requested this UTC day on every path (API, SMTP, batch). The runner also treats an admission refusal
//! `FailedOperation.ExceedSendLimit` as "quota used up".
//!
//! Known gap: the API's in-transaction daily check counts only limited enqueues, so API sends made after a
//! batch on the same day are not yet reduced by the batch's recipients.

use crate::limits::Limits;
use crate::{AccountContext, CoreError};
use mailpush_model::clock::{DAY_MS, day_start};

impl Limits {
    pub(crate) async fn remaining_today(
        &self,
        account: &AccountContext,
        sender_domain: &str,
    ) -> Result<Option<u64>, CoreError> {
        let _ = sender_domain;
        // Recipients requested today on every path (API, SMTP, batch): batch chunks are stored with their task
        // cursor outside the limited enqueue, so the store's admission counters do not see them; this count does.
        let start = day_start(self.env.clock.now_ms());
        let used = u64::try_from(
            self.env
                .store
                .batch()
                .count_requests(account.id, start, start + DAY_MS)
                .await?,
        )
        .unwrap_or(0);
        let quota = u64::try_from(self.send_quota(account).await?.daily_quota).unwrap_or(0);
        let mut remaining = quota.saturating_sub(used);
        let cap = self.env.settings.batch_daily_quota;
        if cap != 0 {
            remaining = remaining.min(cap.saturating_sub(used));
        }
        Ok(Some(remaining))
    }
}
