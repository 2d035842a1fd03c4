//! THE daily-allowance seam of batch sending: how many more recipients an account may send today.
//!
//! The batch runner asks [`Mailpush::batch_allowance`] before every chunk and pauses a task (status 6, the rest
//! cached) at 0. The limit is the account's daily quota (its domains' reputation levels, capped — see
//! `limits.rs`), further capped by the optional `batch_daily_quota` setting; what is used is the account's
//! daily counter, which admission on every path (API, SMTP) and every fed batch chunk add to. The runner hands
//! the limit to the store with each chunk, which counts the chunk against it in the chunk's own transaction, so
//! several runners and API processes sharing a database never take an account past it.

use crate::limits::Limits;
use crate::{AccountContext, CoreError};

/// How many recipients batch sending may still admit for an account today.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchAllowance {
    /// The most recipients the account may have admitted today, on every path.
    pub daily_limit: i64,
    /// Recipients admitted today so far.
    pub used: i64,
}

impl BatchAllowance {
    /// Recipients that still fit today.
    pub fn remaining(&self) -> u64 {
        u64::try_from(self.daily_limit.saturating_sub(self.used)).unwrap_or(0)
    }
}

impl Limits {
    pub(crate) async fn batch_allowance(&self, account: &AccountContext) -> Result<BatchAllowance, CoreError> {
        let quota = self.send_quota(account).await?;
        let cap = i64::try_from(self.env.settings.batch_daily_quota).unwrap_or(i64::MAX);
        let daily_limit = if cap == 0 {
            quota.daily_quota
        } else {
            quota.daily_quota.min(cap)
        };
        Ok(BatchAllowance {
            daily_limit,
            used: quota.sent_today,
        })
    }
}
