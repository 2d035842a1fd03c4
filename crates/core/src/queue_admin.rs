//! The operator's queue commands (`mailpush queue retry`, `mailpush queue drop`).

use mailpush_model::MessageId;
use mailpush_store::{AttemptResult, DeliveryOutcome, QueueTarget};

use crate::{CoreError, Mailpush};

/// What an operator command names: a receiving domain (normalised) or a message.
enum Target {
    Domain(String),
    Message(MessageId),
}

impl Target {
    fn new(domain: Option<&str>, message: Option<&str>) -> Result<Target, CoreError> {
        match (domain, message) {
            (Some(d), None) => Ok(Target::Domain(d.trim().trim_end_matches('.').to_ascii_lowercase())),
            (None, Some(m)) => MessageId::parse(m)
                .map(Target::Message)
                .ok_or_else(|| CoreError::Config(format!("{m} is not a MessageId"))),
            _ => Err(CoreError::Config("name either a receiving domain or a message".into())),
        }
    }

    fn queue(&self) -> QueueTarget<'_> {
        match self {
            Target::Domain(d) => QueueTarget::Domain(d),
            Target::Message(m) => QueueTarget::Message(m),
        }
    }
}

impl Mailpush {
    /// Makes the waiting deliveries of a receiving domain (`domain`) or of a message (`message`) due now and
    /// wakes this process's worker; other nodes' workers take them at their next claim. Returns how many.
    pub async fn retry_queued(&self, domain: Option<&str>, message: Option<&str>) -> Result<u64, CoreError> {
        let target = Target::new(domain, message)?;
        let n = self.inner.store.retry_now(target.queue(), self.now_ms()).await?;
        self.inner.wake.notify_one();
        Ok(n)
    }

    /// Gives up the waiting deliveries of a receiving domain or of a message: final, `Dropped`, with its event
    /// and statistics as any drop (one `record_outcomes`). Deliveries in progress on a worker are left to it.
    /// Returns how many were dropped.
    pub async fn drop_queued(&self, domain: Option<&str>, message: Option<&str>) -> Result<u64, CoreError> {
        let target = Target::new(domain, message)?;
        let now = self.now_ms();
        let leased = self
            .inner
            .store
            .lease_queued(target.queue(), "operator", now + 60_000)
            .await?;
        let outcomes = leased
            .iter()
            .map(|(id, lease)| DeliveryOutcome {
                delivery_id: *id,
                lease: *lease,
                at_ms: now,
                result: AttemptResult::Dropped {
                    reason: "dropped by the operator".into(),
                },
                remote: None,
            })
            .collect();
        let applied = self.inner.store.record_outcomes(outcomes).await?;
        Ok(applied.iter().filter(|a| **a).count() as u64)
    }
}
