//! THE daily-allowance seam of batch sending: how many more recipients an account may send today.
//!
//! The batch runner asks [`Mailpush::remaining_today`] before every chunk and pauses a task (status 6, the
//! rest cached) at 0. Today's answer comes from the `batch_daily_quota` setting against the recipients the
//! account requested this UTC day (every path: API, SMTP, batch). When the reputation quota (issue 5) lands,
//! this one function is pointed at it; the runner also treats an admission refusal
//! `FailedOperation.ExceedSendLimit` as "quota used up", so a quota enforced inside `prepare_message` pauses
//! tasks the same way.

use crate::{AccountContext, CoreError, Mailpush};
use mailpush_model::clock::{DAY_MS, day_start};

impl Mailpush {
    /// Recipients `account` may still send today; `None` = no daily limit. `sender_domain` is the domain the
    /// mail goes out from (quotas per domain plug in here).
    pub async fn remaining_today(
        &self,
        account: &AccountContext,
        sender_domain: &str,
    ) -> Result<Option<u64>, CoreError> {
        let _ = sender_domain;
        let cap = self.settings().batch_daily_quota;
        if cap == 0 {
            return Ok(None);
        }
        let start = day_start(self.now_ms());
        let used = self.store().count_requests(account.id, start, start + DAY_MS).await?;
        Ok(Some(cap.saturating_sub(u64::try_from(used).unwrap_or(0))))
    }
}
