//! What the SMTP server needs from the rest of mailpush, as a trait, and its implementation over the core
//! facade ([`CoreBackend`]). The trait keeps the session testable against other backends.

use crate::reply::{Reply, reply_for_core};
use mailpush_core::{Mailpush, RawSubmission, Submitter};
use mailpush_model::{MessageId, TriggerType};
use std::future::Future;
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
    /// The session the transaction came through (trace header, SMTPUTF8 rule).
    pub client: ClientTrace,
}

/// What a transaction's session says about its client: the `Received:` trace header (RFC 5321 §4.4) is
/// written from it, and `MAIL FROM … SMTPUTF8` decides whether 8-bit headers are allowed (RFC 6531).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClientTrace {
    /// The EHLO/HELO name the client gave.
    pub helo: String,
    /// The client's address.
    pub ip: Option<IpAddr>,
    /// The session runs over TLS.
    pub tls: bool,
    /// The client authenticated (AUTH), as opposed to a trusted network.
    pub authenticated: bool,
    /// `MAIL FROM` carried the SMTPUTF8 parameter.
    pub smtputf8: bool,
    /// `MAIL FROM` carried the REQUIRETLS parameter (RFC 8689; accepted only inside TLS).
    pub requiretls: bool,
}

/// Whether the header section of `data` (up to the first empty line) has a byte outside ASCII.
fn has_8bit_header(data: &[u8]) -> bool {
    let end = data.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(data.len());
    data[..end].iter().any(|b| !b.is_ascii())
}

/// What the SMTP server asks of mailpush. Refusals are SMTP replies (built with
/// [`crate::reply::reply_for`] from mailpush's error codes); internal failures are `451 4.3.0` replies.
///
/// The methods return their futures unboxed (no `async_trait`): the session awaits four of them per message,
/// and boxing each moved its whole state to the heap.
pub trait SubmissionBackend: Send + Sync + 'static {
    /// AUTH: the principal behind (username = sender address, password = its SMTP password), `Ok(None)` when
    /// they do not match.
    fn authenticate(
        &self,
        username: &str,
        password: &str,
    ) -> impl Future<Output = Result<Option<Principal>, Reply>> + Send;
    /// The principal for a client in a trusted network (submits without AUTH), or `None`.
    fn trusted_principal(&self, client: IpAddr) -> impl Future<Output = Result<Option<Principal>, Reply>> + Send;
    /// May `p` use `mail_from` as envelope sender?
    fn check_sender(&self, p: &Principal, mail_from: &str) -> impl Future<Output = Result<(), Reply>> + Send;
    /// May `p` send to `rcpt`?
    fn check_recipient(&self, p: &Principal, rcpt: &str) -> impl Future<Output = Result<(), Reply>> + Send;
    /// Admission and durable enqueue of one message; the MessageId is returned only once it is committed.
    fn submit(
        &self,
        p: &Principal,
        envelope: &Envelope,
        data: Vec<u8>,
    ) -> impl Future<Output = Result<MessageId, Reply>> + Send;
    /// Inbound MX: is `rcpt` one of mailpush's feedback addresses? (Default: no address is.)
    fn inbound_recipient(&self, _rcpt: &str) -> impl Future<Output = Result<bool, Reply>> + Send {
        async { Ok(false) }
    }
    /// Inbound MX: processes a mail accepted for `envelope.rcpt_to`; `Ok` is answered `250` with the text.
    fn receive_inbound(
        &self,
        _envelope: &Envelope,
        _data: Vec<u8>,
    ) -> impl Future<Output = Result<String, Reply>> + Send {
        async { Err(Reply::new(554, "5.7.1", "Inbound mail is not accepted here")) }
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
        // RFC 6531: UTF-8 in headers only in an SMTPUTF8 transaction; relaying it raw would hand 8-bit headers
        // to receivers that never agreed to them.
        if !envelope.client.smtputf8 && has_8bit_header(&data) {
            return Err(Reply::new(
                554,
                "5.6.7",
                "Non-ASCII header without SMTPUTF8: use MAIL FROM ... SMTPUTF8 or RFC 2047 encoded words",
            ));
        }
        let c = &envelope.client;
        let sub = RawSubmission {
            trace: Some(mailpush_core::SubmissionTrace {
                helo: c.helo.clone(),
                ip: c.ip,
                tls: c.tls,
                authenticated: c.authenticated,
            }),
            envelope_from: envelope.mail_from.clone(),
            recipients: envelope.rcpt_to.clone(),
            data,
            // Mail submitted over SMTP comes from applications sending one mail at a time: the fast lane.
            trigger: TriggerType::Trigger,
            requiretls: c.requiretls,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eight_bit_is_looked_for_in_the_header_only() {
        assert!(has_8bit_header("Subject: caf\u{e9}\r\n\r\nbody".as_bytes()));
        assert!(!has_8bit_header("Subject: cafe\r\n\r\nbod\u{e9}".as_bytes()));
        assert!(has_8bit_header("Subject: caf\u{e9}".as_bytes()));
    }
}
