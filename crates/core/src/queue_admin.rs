//! The operator's queue commands (`mailpush queue retry`).

use mailpush_model::MessageId;
use mailpush_store::QueueTarget;

use crate::{CoreError, Mailpush};

impl Mailpush {
    /// Makes the waiting deliveries of a receiving domain (`domain`) or of a message (`message`) due now and
    /// wakes this process's worker; other nodes' workers take them at their next claim. Returns how many.
    pub async fn retry_queued(&self, domain: Option<&str>, message: Option<&str>) -> Result<u64, CoreError> {
        let id;
        let target = match (domain, message) {
            (Some(d), None) => QueueTarget::Domain(d),
            (None, Some(m)) => {
                id = MessageId::parse(m).ok_or_else(|| CoreError::Config(format!("{m} is not a MessageId")))?;
                QueueTarget::Message(&id)
            }
            _ => return Err(CoreError::Config("name either a receiving domain or a message".into())),
        };
        let domain_lower;
        let target = match target {
            QueueTarget::Domain(d) => {
                domain_lower = d.trim().trim_end_matches('.').to_ascii_lowercase();
                QueueTarget::Domain(&domain_lower)
            }
            t => t,
        };
        let n = self.inner.store.retry_now(target, self.now_ms()).await?;
        self.inner.wake.notify_one();
        Ok(n)
    }
}
