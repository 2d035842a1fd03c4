//! What the SMTP server needs from the rest of mailpush, as a trait, and its implementation over the core
//! facade ([`CoreBackend`]). The trait keeps the session testable against other backends.

use crate::reply::{Reply, reply_for_core};
use async_trait::async_trait;
use mailpush_core::{Mailpush, RawSubmission, Submitter};
use mailpush_model::{MessageId, TriggerType};
use std::net::IpAddr;

/// Who a session submits for; see [`Submitter`].
pub type Principal = Submitter;

/// One SMTP transaction's envelope.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Envelope {
    /// `MAIL FROM` address, without angle brackets.
    pub mail_from: String,
    /// Accepted `RCPT TO` addresses, in order, each once.
    pub rcpt_to: Vec<String>,
}

/// What the SMTP server asks of mailpush. Refusals are SMTP replies (built with
/// [`crate::reply::reply_for`] from mailpush's error codes); internal failures are `451 4.3.0` replies.
#[async_trait]
pub trait SubmissionBackend: Send + Sync + 'static {
    /// AUTH: the principal behind (username = sender address, password = its SMTP password), `Ok(None)` when
    /// they do not match.
    async fn authenticate(&self, username: &str, password: &str) -> Result<Option<Principal>, Reply>;
    /// The principal for a client in a trusted network (submits without AUTH), or `None`.
    async fn trusted_principal(&self, client: IpAddr) -> Result<Option<Principal>, Reply>;
    /// May `p` use `mail_from` as envelope sender?
    async fn check_sender(&self, p: &Principal, mail_from: &str) -> Result<(), Reply>;
    /// May `p` send to `rcpt`?
    async fn check_recipient(&self, p: &Principal, rcpt: &str) -> Result<(), Reply>;
    /// Admission and durable enqueue of one message; the MessageId is returned only once it is committed.
    async fn submit(&self, p: &Principal, envelope: &Envelope, data: Vec<u8>) -> Result<MessageId, Reply>;
    /// Inbound MX: is `rcpt` one of mailpush's feedback addresses? (Default: no address is.)
    async fn inbound_recipient(&self, _rcpt: &str) -> Result<bool, Reply> {
        Ok(false)
    }
    /// Inbound MX: processes a mail accepted for `envelope.rcpt_to`; `Ok` is answered `250` with the text.
    async fn receive_inbound(&self, _envelope: &Envelope, _data: Vec<u8>) -> Result<String, Reply> {
        Err(Reply::new(554, "5.7.1", "Inbound mail is not accepted here"))
    }
}

/// [`SubmissionBackend`] over [`Mailpush`]: every rule is core's.
#[derive(Clone)]
pub struct CoreBackend {
    core: Mailpush,
}

impl CoreBackend {
    /// The backend for `core`; fails when the SMTP settings are unusable (e.g. a malformed trusted network).
    pub fn new(core: Mailpush) -> Result<CoreBackend, mailpush_core::CoreError> {
        core.check_smtp_settings()?;
        Ok(CoreBackend { core })
    }

    /// The facade.
    pub fn core(&self) -> &Mailpush {
        &self.core
    }
}

#[async_trait]
impl SubmissionBackend for CoreBackend {
    async fn authenticate(&self, username: &str, password: &str) -> Result<Option<Principal>, Reply> {
        self.core
            .smtp_login(username, password)
            .await
            .map_err(|e| reply_for_core(&e))
    }

    async fn trusted_principal(&self, client: IpAddr) -> Result<Option<Principal>, Reply> {
        self.core
            .smtp_trusted_submitter(client)
            .await
            .map_err(|e| reply_for_core(&e))
    }

    async fn check_sender(&self, p: &Principal, mail_from: &str) -> Result<(), Reply> {
        self.core
            .check_submission_sender(p, "MAIL FROM", mail_from)
            .await
            .map_err(|e| reply_for_core(&e))
    }

    async fn check_recipient(&self, p: &Principal, rcpt: &str) -> Result<(), Reply> {
        self.core
            .check_submission_recipient(p, rcpt)
            .await
            .map(|_| ())
            .map_err(|e| reply_for_core(&e))
    }

    async fn submit(&self, p: &Principal, envelope: &Envelope, data: Vec<u8>) -> Result<MessageId, Reply> {
        let sub = RawSubmission {
            envelope_from: envelope.mail_from.clone(),
            recipients: envelope.rcpt_to.clone(),
            data,
            // Mail submitted over SMTP comes from applications sending one mail at a time: the fast lane.
            trigger: TriggerType::Trigger,
        };
        self.core.submit_raw(p, sub).await.map_err(|e| reply_for_core(&e))
    }

    async fn inbound_recipient(&self, rcpt: &str) -> Result<bool, Reply> {
        self.core
            .inbound_recipient_accepted(rcpt)
            .await
            .map_err(|e| reply_for_core(&e))
    }

    async fn receive_inbound(&self, envelope: &Envelope, data: Vec<u8>) -> Result<String, Reply> {
        let s = self
            .core
            .receive_inbound(&envelope.rcpt_to, &data)
            .await
            .map_err(|e| reply_for_core(&e))?;
        Ok(format!(
            "Ok: {} bounces, {} delays, {} complaints, {} unsubscribes, {} ignored",
            s.bounces, s.delays, s.complaints, s.unsubscribes, s.ignored
        ))
    }
}
