//! Feedback after delivery: the VERP return path every message is sent with, the mailto-unsubscribe
//! address of `List-Unsubscribe`, and what the inbound MX (crates/smtp, inbound mode) does with the mail it
//! accepts for them: DSNs become bounce / deferred events, ARF abuse reports become spamreport events, mail to a
//! mailto-unsubscribe address unsubscribes its recipient from the sending domain.
//!
//! Matching: the VERP token (signed, see `mailpush_reputation::verp`) names the message; the recipient is the
//! DSN's `Original-Recipient` / `Final-Recipient` (or the ARF's `Original-Rcpt-To`, or the original's `To`),
//! checked against the message's recipients, or the message's only recipient when the report does not say
//! (mailbox providers redact complainants). Complaints sent to `fbl@<bounce MX host>` rather than the return
//! path are matched through the original's `Return-Path` (VERP) or `Message-ID` (`<mp-…@domain>`).

use crate::CoreError;
use crate::Env;
use crate::dmarc_reports::DmarcReceived;
use mailpush_model::{EventKind, MessageId};
use mailpush_reputation::report::Original;
use mailpush_reputation::{DsnAction, InboundAddress, InboundReport, Verdict, VerpKey};
use mailpush_store::{AsyncBounce, BounceType, FeedbackRecorded, InboundMessage, NewComplaint, NewEvent};
use std::sync::Arc;

/// Subkey context of VERP and mailto-unsubscribe tokens.
const VERP_KEY_CONTEXT: &str = "verp-token";

/// What the inbound MX did with one mail.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InboundSummary {
    /// Bounce events recorded.
    pub bounces: usize,
    /// Deferred events recorded (DSN `Action: delayed`).
    pub delays: usize,
    /// Spamreport events recorded.
    pub complaints: usize,
    /// Recipients unsubscribed.
    pub unsubscribes: usize,
    /// Reports or report entries that matched nothing (or repeated earlier ones).
    pub ignored: usize,
    /// DMARC aggregate reports stored.
    pub dmarc_reports: usize,
}

/// The inbound MX: VERP return paths, DSNs, ARF complaints and unsubscribe mail.
pub struct Inbound {
    pub(crate) env: Env,
    pub(crate) secrets: Arc<crate::secrets::Secrets>,
}

impl Inbound {
    fn verp_key(&self) -> VerpKey {
        VerpKey::new(&self.secrets.subkey(VERP_KEY_CONTEXT))
    }

    pub(crate) fn inbound_mx_host(&self) -> String {
        let host = self.env.settings.bounce_mx_host.trim();
        if host.is_empty() {
            self.env.settings.helo_name.clone()
        } else {
            host.to_string()
        }
    }

    /// The VERP envelope sender of message `id` at the return-path domain `mail_from`.
    pub(crate) fn return_path_at(&self, id: &MessageId, mail_from: &str) -> String {
        self.verp_key()
            .return_path(id, mail_from)
            .unwrap_or_else(|| format!("postmaster@{mail_from}"))
    }

    pub(crate) fn return_path(&self, id: &MessageId, sender: &str) -> String {
        let Some((_, domain)) = sender.rsplit_once('@') else {
            return sender.to_string();
        };
        self.verp_key()
            .return_path(id, domain)
            .unwrap_or_else(|| sender.to_string())
    }

    /// The `mailto:` address of `List-Unsubscribe` for `recipient` of message `id`.
    pub(crate) fn unsubscribe_mailto(&self, id: &MessageId, recipient: &str) -> Option<String> {
        self.verp_key()
            .unsubscribe_address(id, recipient, &self.inbound_mx_host())
    }

    fn parse_inbound_address(&self, rcpt: &str) -> Option<InboundAddress> {
        let host = self.inbound_mx_host();
        self.verp_key().parse_address(rcpt, &[host.as_str()])
    }

    fn is_dmarc_report_address(&self, rcpt: &str) -> bool {
        mailpush_reputation::dmarc::is_report_address(rcpt, &[self.inbound_mx_host().as_str()])
    }

    pub(crate) async fn inbound_recipient_accepted(&self, rcpt: &str) -> Result<bool, CoreError> {
        if self.is_dmarc_report_address(rcpt) {
            return Ok(true);
        }
        Ok(match self.parse_inbound_address(rcpt) {
            None => false,
            Some(InboundAddress::ReturnPath(_) | InboundAddress::Complaints) => true,
            Some(InboundAddress::Unsubscribe { message_id, tag }) => {
                self.unsubscribe_target(&message_id, &tag).await?.is_some()
            }
        })
    }

    async fn unsubscribe_target(
        &self,
        id: &MessageId,
        tag: &[u8; 10],
    ) -> Result<Option<(InboundMessage, String)>, CoreError> {
        let Some(m) = self.env.store.inbound().inbound_message(id).await? else {
            return Ok(None);
        };
        let key = self.verp_key();
        let found = m
            .recipients
            .iter()
            .find(|r| key.unsubscribe_matches(id, tag, r))
            .cloned();
        Ok(found.map(|r| (m, r)))
    }

    pub(crate) async fn receive_inbound(&self, rcpts: &[String], data: &[u8]) -> Result<InboundSummary, CoreError> {
        let mut summary = InboundSummary::default();
        if rcpts.iter().any(|r| self.is_dmarc_report_address(r)) {
            self.dmarc_report(data, &mut summary).await?;
        }
        let mut report_targets: Vec<Option<MessageId>> = Vec::new();
        for rcpt in rcpts {
            match self.parse_inbound_address(rcpt) {
                Some(InboundAddress::Unsubscribe { message_id, tag }) => {
                    if self.unsubscribe_by_mail(&message_id, &tag).await? {
                        summary.unsubscribes += 1;
                    } else {
                        summary.ignored += 1;
                    }
                }
                Some(InboundAddress::ReturnPath(id)) => report_targets.push(Some(id)),
                Some(InboundAddress::Complaints) => report_targets.push(None),
                None => {}
            }
        }
        if report_targets.is_empty() {
            return Ok(summary);
        }
        // One report, however many of our addresses it was sent to: the first return path names the message.
        let via_return_path = report_targets.into_iter().flatten().next();
        let report = mailpush_reputation::parse_report(data);
        let now = self.env.clock.now_ms();
        match report {
            InboundReport::Dsn { recipients, original } => {
                let Some(m) = self.report_message(via_return_path, &original, None).await? else {
                    summary.ignored += recipients.len().max(1);
                    return Ok(summary);
                };
                for r in &recipients {
                    let Some(rcpt) = match_recipient(&m, r.address()) else {
                        summary.ignored += 1;
                        continue;
                    };
                    let reason = r.reason();
                    let recorded = match r.action {
                        DsnAction::Failed => {
                            let bounce_type = if r.classification.verdict == Verdict::HardBounce {
                                BounceType::Hard
                            } else {
                                BounceType::Soft
                            };
                            let b = AsyncBounce {
                                message_id: m.id.clone(),
                                recipient: rcpt,
                                at_ms: now,
                                reason,
                                bounce_type,
                            };
                            let rec = self.env.store.inbound().record_async_bounce(&b).await?;
                            if rec == FeedbackRecorded::Recorded {
                                summary.bounces += 1;
                            }
                            rec
                        }
                        DsnAction::Delayed => {
                            let rec = self
                                .env
                                .store
                                .inbound()
                                .record_async_delay(&m.id, &rcpt, now, &reason)
                                .await?;
                            if rec == FeedbackRecorded::Recorded {
                                summary.delays += 1;
                            }
                            rec
                        }
                        // Positive DSNs: the delivered event was recorded when the MX accepted the mail.
                        _ => FeedbackRecorded::Duplicate,
                    };
                    if recorded != FeedbackRecorded::Recorded {
                        summary.ignored += 1;
                    }
                    tracing::info!(message = %m.id, action = ?r.action, ?recorded, "inbound: DSN");
                }
            }
            InboundReport::Complaint { complaint, original } => {
                let from_verp =
                    complaint
                        .original_mail_from
                        .as_deref()
                        .and_then(|a| match self.parse_inbound_address(a) {
                            Some(InboundAddress::ReturnPath(id)) => Some(id),
                            _ => None,
                        });
                let Some(m) = self.report_message(via_return_path, &original, from_verp).await? else {
                    summary.ignored += 1;
                    return Ok(summary);
                };
                let named = complaint.original_rcpt_to.as_deref().or(original.to.as_deref());
                let Some(rcpt) = match_recipient(&m, named) else {
                    summary.ignored += 1;
                    return Ok(summary);
                };
                let reason = match &complaint.reporter {
                    Some(by) => format!("{} report from {by}", complaint.feedback_type),
                    None => format!("{} report", complaint.feedback_type),
                };
                let c = NewComplaint {
                    message_id: m.id.clone(),
                    recipient: rcpt,
                    at_ms: now,
                    reason,
                };
                let recorded = self.env.store.inbound().record_complaint(&c).await?;
                tracing::info!(message = %m.id, ?recorded, "inbound: complaint");
                if recorded == FeedbackRecorded::Recorded {
                    summary.complaints += 1;
                } else {
                    summary.ignored += 1;
                }
            }
            InboundReport::NotAComplaint => summary.ignored += 1,
            InboundReport::Other { subject, .. } => {
                // A DMARC aggregate report sent to a feedback address, recognised by its attachment.
                match crate::dmarc_reports::receive_report(&self.env, data).await? {
                    DmarcReceived::NotAReport => {}
                    DmarcReceived::Stored { .. } => {
                        summary.dmarc_reports += 1;
                        return Ok(summary);
                    }
                    _ => {
                        summary.ignored += 1;
                        return Ok(summary);
                    }
                }
                // Autoresponders and non-standard bounces: without a DSN there is no reliable verdict.
                tracing::info!(message = ?via_return_path, subject, "inbound: not a DSN or ARF report; ignored");
                summary.ignored += 1;
            }
        }
        Ok(summary)
    }

    /// A mail to `dmarc@<inbound MX host>`: an aggregate report, stored once; anything else is ignored.
    async fn dmarc_report(&self, data: &[u8], summary: &mut InboundSummary) -> Result<(), CoreError> {
        match crate::dmarc_reports::receive_report(&self.env, data).await? {
            DmarcReceived::Stored { .. } => summary.dmarc_reports += 1,
            _ => summary.ignored += 1,
        }
        Ok(())
    }

    /// The message a report is about: the return path it was sent to, else the VERP it quotes, else the
    /// original's `Return-Path` (VERP) or `Message-ID`.
    async fn report_message(
        &self,
        via_return_path: Option<MessageId>,
        original: &Original,
        quoted_verp: Option<MessageId>,
    ) -> Result<Option<InboundMessage>, CoreError> {
        let from_return_path = original
            .return_path
            .as_deref()
            .and_then(|a| match self.parse_inbound_address(a) {
                Some(InboundAddress::ReturnPath(id)) => Some(id),
                _ => None,
            });
        let candidates = [
            via_return_path,
            quoted_verp,
            from_return_path,
            original.message_id.clone(),
        ];
        for id in candidates.into_iter().flatten() {
            if let Some(m) = self.env.store.inbound().inbound_message(&id).await? {
                return Ok(Some(m));
            }
        }
        Ok(None)
    }

    async fn unsubscribe_by_mail(&self, id: &MessageId, tag: &[u8; 10]) -> Result<bool, CoreError> {
        let Some((m, recipient)) = self.unsubscribe_target(id, tag).await? else {
            return Ok(false);
        };
        let Some((_, domain)) = m.from_address.rsplit_once('@') else {
            return Ok(false);
        };
        let domain = domain.to_ascii_lowercase();
        let now = self.env.clock.now_ms();
        let new = self
            .env
            .store
            .suppression()
            .unsubscribe(m.account_id, &domain, &recipient, now)
            .await?;
        if new {
            self.env
                .store
                .events()
                .record_events(&[NewEvent {
                    account_id: m.account_id,
                    message_id: m.id.clone(),
                    recipient: recipient.clone(),
                    kind: EventKind::Unsubscribe,
                    at_ms: now,
                    reason: "mailto unsubscribe (List-Unsubscribe)".to_string(),
                    bounce_type: None,
                    link: None,
                    user_agent: None,
                }])
                .await?;
        }
        tracing::info!(message = %m.id, domain, new, "inbound: mailto unsubscribe");
        Ok(true)
    }
}

/// The message's recipient a report names (case-insensitively), or its only recipient when the report names
/// none or one that is not among them (a forwarded `Final-Recipient`, a redacted complainant).
fn match_recipient(m: &InboundMessage, named: Option<&str>) -> Option<String> {
    if let Some(named) = named
        && let Some(r) = m.recipients.iter().find(|r| r.eq_ignore_ascii_case(named.trim()))
    {
        return Some(r.clone());
    }
    match m.recipients.as_slice() {
        [only] => Some(only.clone()),
        _ => None,
    }
}
