//! The operator's queue commands (`mailpush queue retry`, `mailpush queue drop`).

use mailpush_model::MessageId;
use mailpush_store::{AttemptResult, DeliveryOutcome, QueueTarget};

use crate::CoreError;
use crate::sending::Sending;

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

impl Sending {
    pub(crate) async fn retry_queued(&self, domain: Option<&str>, message: Option<&str>) -> Result<u64, CoreError> {
        let target = Target::new(domain, message)?;
        let n = self
            .env
            .store
            .queue_admin()
            .retry_now(target.queue(), self.env.clock.now_ms())
            .await?;
        self.wake.notify_one();
        Ok(n)
    }

    pub(crate) async fn drop_queued(&self, domain: Option<&str>, message: Option<&str>) -> Result<u64, CoreError> {
        let target = Target::new(domain, message)?;
        let now = self.env.clock.now_ms();
        let leased = self
            .env
            .store
            .queue_admin()
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
        let applied = self.env.store.queue().record_outcomes(outcomes).await?;
        Ok(applied.iter().filter(|a| **a).count() as u64)
    }
}
