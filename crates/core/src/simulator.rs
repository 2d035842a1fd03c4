//! The mailbox simulator, as AWS SES has it: mail to `success@`, `bounce@`, `complaint@`, `suppressionlist@`
//! and `ooto@simulator.mailpush` never leaves the machine, in dev mode and in production alike, and produces the
//! outcome a real receiver would, through the paths real outcomes and feedback take:
//!
//! - `success`: delivered;
//! - `bounce`: refused with `550 5.1.1`, which the worker records as a hard bounce (`AttemptResult::Rejected`:
//!   DeliverStatus 3, the bounce event, the global bounce blacklist);
//! - `complaint`: delivered, then a complaint recorded as the feedback loop's ARF reports are
//!   (`Inbound::record_complaint`: the spamreport event and the account's custom blacklist), once the delivered
//!   outcome is written;
//! - `suppressionlist`: treated as if on the suppression list at admission (SendStatus 1007, the dropped event;
//!   a request whose only recipient it is is refused with `FailedOperation.EmailAddrInBlacklist`);
//! - `ooto`: delivered (the event model has no out-of-office event).
//!
//! Any other address of the simulator domain is an unknown mailbox (`550 5.1.1`), as on a real domain.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use mailpush_store::{AttemptResult, DeliveryOutcome, LeaseToken, NewComplaint, Store};

/// The domain of the simulator's mailboxes.
pub const SIMULATOR_DOMAIN: &str = "simulator.mailpush";

/// What a simulator mailbox does with a mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Simulated {
    /// `success@`: delivered.
    Success,
    /// `bounce@`: a hard bounce.
    Bounce,
    /// `complaint@`: delivered, then a complaint.
    Complaint,
    /// `suppressionlist@`: on the suppression list.
    SuppressionList,
    /// `ooto@`: delivered (an out-of-office reply, which has no event of its own).
    OutOfOffice,
    /// Any other mailbox of the simulator domain: does not exist.
    Unknown,
}

/// The simulator mailbox `address` names (case-insensitive), if it is one.
pub fn simulated(address: &str) -> Option<Simulated> {
    let (local, domain) = address.trim().rsplit_once('@')?;
    if !domain.trim_end_matches('.').eq_ignore_ascii_case(SIMULATOR_DOMAIN) {
        return None;
    }
    Some(match local.to_ascii_lowercase().as_str() {
        "success" => Simulated::Success,
        "bounce" => Simulated::Bounce,
        "complaint" => Simulated::Complaint,
        "suppressionlist" => Simulated::SuppressionList,
        "ooto" => Simulated::OutOfOffice,
        _ => Simulated::Unknown,
    })
}

/// Whether `domain` (a recipient domain, ASCII) is the simulator's: its mail is never sent.
pub fn is_simulator_domain(domain: &str) -> bool {
    domain.trim_end_matches('.').eq_ignore_ascii_case(SIMULATOR_DOMAIN)
}

/// Whether `address` is the simulator's `suppressionlist@` (treated as on every suppression list).
pub fn is_suppressed(address: &str) -> bool {
    simulated(address) == Some(Simulated::SuppressionList)
}

/// The remote name recorded for simulated outcomes (where a real one records the MX).
pub(crate) const REMOTE: &str = "simulator.mailpush";

/// The outcome of an attempt towards simulator mailbox `address`.
pub(crate) fn attempt(address: &str) -> AttemptResult {
    let delivered = || AttemptResult::Delivered {
        reply: "250 2.0.0 Ok: delivered by the mailpush simulator".into(),
    };
    match simulated(address) {
        Some(Simulated::Success | Simulated::Complaint | Simulated::OutOfOffice) => delivered(),
        Some(Simulated::Bounce) => AttemptResult::Rejected {
            reply: format!("550 5.1.1 <{address}>: mailbox does not exist (mailpush simulator)"),
        },
        // Screened at admission; one that got here anyway (queued before) is dropped as a blacklisted one.
        Some(Simulated::SuppressionList) => AttemptResult::Dropped {
            reason: "the recipient is on a blacklist".into(),
        },
        Some(Simulated::Unknown) | None => AttemptResult::Rejected {
            reply: format!("550 5.1.1 <{address}>: no such simulator mailbox (mailpush simulator)"),
        },
    }
}

/// How often a simulated complaint is tried before it is given up (100 ms, then doubling: about 3 s in all).
const COMPLAINT_ATTEMPTS: u32 = 6;

/// Feedback that follows an outcome once it is written (a complaint after the delivery), keyed by the
/// delivery and its lease: an outcome fenced off records nothing, so neither does its follow-up.
#[derive(Default)]
pub(crate) struct FollowUps(Mutex<HashMap<(i64, LeaseToken), NewComplaint>>);

impl FollowUps {
    /// Records `complaint` after the outcome of delivery `id` under `lease` is written.
    pub(crate) fn complaint_after(&self, id: i64, lease: LeaseToken, complaint: NewComplaint) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert((id, lease), complaint);
    }

    /// Runs the follow-ups of `batch`'s outcomes (`applied[i]`: whether outcome i was written).
    pub(crate) async fn run(&self, store: &Store, batch: &[DeliveryOutcome], applied: &[bool]) {
        let due: Vec<NewComplaint> = {
            let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
            if map.is_empty() {
                return;
            }
            batch
                .iter()
                .zip(applied.iter().copied().chain(std::iter::repeat(false)))
                .filter_map(|(o, ok)| map.remove(&(o.delivery_id, o.lease)).filter(|_| ok))
                .collect()
        };
        for c in due {
            // A busy store (a commit timing out under load) must not lose the complaint: the sender's tests wait
            // for it, and a real receiver's feedback loop would report it again too.
            let mut delay = Duration::from_millis(100);
            for attempt in 1..=COMPLAINT_ATTEMPTS {
                match store.inbound().record_complaint(&c).await {
                    Ok(recorded) => {
                        tracing::info!(message = %c.message_id, ?recorded, "simulator: complaint");
                        break;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, message = %c.message_id, attempt, "simulator: recording a complaint failed");
                        if attempt < COMPLAINT_ATTEMPTS {
                            tokio::time::sleep(delay).await;
                            delay *= 2;
                        }
                    }
                }
            }
        }
    }

    /// Forgets the follow-ups of outcomes that were never written.
    pub(crate) fn forget(&self, batch: &[DeliveryOutcome]) {
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        for o in batch {
            map.remove(&(o.delivery_id, o.lease));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mailboxes() {
        assert_eq!(simulated("success@simulator.mailpush"), Some(Simulated::Success));
        assert_eq!(simulated("Bounce@Simulator.Mailpush"), Some(Simulated::Bounce));
        assert_eq!(simulated("complaint@simulator.mailpush"), Some(Simulated::Complaint));
        assert_eq!(
            simulated("suppressionlist@simulator.mailpush"),
            Some(Simulated::SuppressionList)
        );
        assert_eq!(simulated("ooto@simulator.mailpush"), Some(Simulated::OutOfOffice));
        assert_eq!(simulated("nobody@simulator.mailpush"), Some(Simulated::Unknown));
        assert_eq!(simulated("success@example.com"), None);
        assert_eq!(simulated("success@sub.simulator.mailpush"), None);
        assert!(is_simulator_domain("SIMULATOR.mailpush"));
        assert!(
            matches!(attempt("bounce@simulator.mailpush"), AttemptResult::Rejected { reply } if reply.starts_with("550 5.1.1"))
        );
        assert!(matches!(
            attempt("ooto@simulator.mailpush"),
            AttemptResult::Delivered { .. }
        ));
    }
}
