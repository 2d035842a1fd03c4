//! The send path of the API: SendEmail's admission (every rule that can refuse or drop a recipient), the MIME,
//! the durable enqueue, and GetSendEmailStatus.

use crate::Env;
use crate::engage::{Engagement, SendOptions};
use crate::error::CoreError;
use crate::identity::Identities;
use crate::inbound::Inbound;
use crate::limits::Limits;
use crate::send::{self, AdmittedRecipient, SendContent, SendRequest};
use crate::stats::Statistics;
use crate::suppression::Suppression;
use crate::templates::Templates;
use crate::{AccountContext, MAX_STATUS_LIMIT, StatusRequest, submit};
use mailpush_model::queue::{DeliveryStatusRow, NewMessage, NewRecipient, QueueCounts, WaitingCounts};
use mailpush_model::{ErrorCode, MessageId};
use mailpush_store::StatusQuery;
use std::sync::Arc;
use tokio::sync::Notify;

/// Admission and enqueue of API mail, and its status queries.
pub struct Sending {
    pub(crate) env: Env,
    /// Wakes the delivery worker.
    pub(crate) wake: Arc<Notify>,
    pub(crate) templates: Arc<Templates>,
    pub(crate) identities: Arc<Identities>,
    pub(crate) suppression: Arc<Suppression>,
    pub(crate) engagement: Arc<Engagement>,
    pub(crate) inbound: Arc<Inbound>,
    pub(crate) limits: Arc<Limits>,
    pub(crate) statistics: Arc<Statistics>,
    pub(crate) screening: Arc<crate::screening::Screening>,
}

impl Sending {
    pub(crate) async fn send_email(&self, account: &AccountContext, req: SendRequest) -> Result<MessageId, CoreError> {
        self.send_email_with(account, req, SendOptions::default()).await
    }

    pub(crate) async fn send_email_with(
        &self,
        account: &AccountContext,
        req: SendRequest,
        opts: SendOptions,
    ) -> Result<MessageId, CoreError> {
        let (msg, shared_body) = self.prepare(account, req, opts).await?;
        let id = msg.id.clone();
        let suppressed = msg.recipients.iter().any(|r| !r.send_status.is_ok());
        let limits = self.limits.admission_limits(account).await?;
        self.enqueue_admitted(msg, limits, shared_body).await?;
        if suppressed {
            self.suppression.check_auto_suspend(account).await?;
        }
        Ok(id)
    }

    pub(crate) async fn prepare_message(
        &self,
        account: &AccountContext,
        req: SendRequest,
        opts: SendOptions,
    ) -> Result<NewMessage, CoreError> {
        Ok(self.prepare(account, req, opts).await?.0)
    }

    /// Durable enqueue of admitted mail, then the worker knows of it: handed to it in memory when every
    /// recipient gets the message's own MIME (`shared_body`) and it has room, otherwise woken to claim it.
    pub(crate) async fn enqueue_admitted(
        &self,
        msg: NewMessage,
        limits: mailpush_model::limits::AdmissionLimits,
        shared_body: bool,
    ) -> Result<(), CoreError> {
        let handed_off = if shared_body {
            self.env.store.queue().enqueue_fresh(msg, limits).await?
        } else {
            self.env.store.queue().enqueue_limited(msg, limits).await?;
            false
        };
        if !handed_off {
            self.wake.notify_one();
        }
        Ok(())
    }

    /// [`Mailpush::prepare_message`], and whether every recipient gets the message's own MIME (no
    /// per-recipient bodies).
    pub(crate) async fn prepare(
        &self,
        account: &AccountContext,
        req: SendRequest,
        opts: SendOptions,
    ) -> Result<(NewMessage, bool), CoreError> {
        if account.suspended {
            return Err(CoreError::refused(
                ErrorCode::FailedOperationHighRejectionRate,
                "the account is suspended",
            ));
        }
        // Kept on the message for callbacks (`templateId`); resolving turns the template into content.
        let template_id = match &req.content {
            Some(SendContent::Template { id, .. }) => *id,
            _ => 0,
        };
        let req = self.templates.resolve_content(account, req).await?;
        let now = self.env.clock.now_ms();
        let mail = send::admit(req, now)?;
        let mail_from = self
            .identities
            .check_sender(account, &mail.sender, &mail.spec.from.address)
            .await?;
        let tls_requirement = self
            .identities
            .tls_requirement(account.id, mail.sender.as_str(), false)
            .await?;
        let received = submit::received_header(None, &self.env.settings.helo_name, &mail.id, now, false);
        let body = submit::prepend(&received, mailpush_delivery::build_mime(&mail.spec)?);
        self.screening
            .screen_send(account, template_id == 0, &mail, &body)
            .await?;
        let mut recipients: Vec<NewRecipient> = mail.recipients.iter().map(AdmittedRecipient::queued).collect();
        self.suppression
            .screen_recipients(account, mail.sender.domain(), &mut recipients)
            .await?;
        // SendEmail's explicit Unsubscribe wins; otherwise the sender address's config (AddressUnsubscribeConfig).
        let unsubscribe = match opts.unsubscribe {
            Some(code) => code,
            None => self.statistics.default_unsubscribe(account.id, &mail.sender).await?,
        };
        let personal = self
            .engagement
            .personal_bodies(account, &mail, unsubscribe, &recipients)?;
        // Written before the enqueue commits: the worker can only claim the message once both exist.
        self.env.store.queue().put_recipient_bodies(&mail.id, &personal).await?;
        let msg = NewMessage {
            id: mail.id.clone(),
            account_id: account.id,
            envelope_from: self.inbound.return_path_at(&mail.id, &mail_from),
            from_address: mail.sender.as_str().to_string(),
            subject: mail.spec.subject.clone(),
            lane: mail.trigger.lane(),
            request_ms: now,
            not_before_ms: now,
            expires_ms: now.saturating_add(self.env.settings.max_delivery_seconds as i64 * 1000),
            body,
            recipients,
            template_id,
            tls_requirement,
        };
        Ok((msg, personal.is_empty()))
    }

    pub(crate) fn wake_worker(&self) {
        self.wake.notify_one();
    }

    pub(crate) async fn send_status(
        &self,
        account: &AccountContext,
        q: StatusRequest,
    ) -> Result<Vec<DeliveryStatusRow>, CoreError> {
        let (from_ms, to_ms) = mailpush_model::clock::day_range(&q.request_date).ok_or_else(|| {
            CoreError::refused(
                ErrorCode::InvalidParameterValueWrongDate,
                format!("RequestDate {:?} must be a date like 2026-11-26", q.request_date),
            )
        })?;
        crate::error::check_page(q.offset, q.limit, MAX_STATUS_LIMIT)?;
        let message_id = match q.message_id.as_deref().filter(|s| !s.is_empty()) {
            // A foreign-looking id cannot match anything: answer empty rather than scanning.
            Some(raw) => match MessageId::parse(raw) {
                Some(id) => Some(id),
                None => return Ok(Vec::new()),
            },
            None => None,
        };
        let to_address = match q.to.as_deref().filter(|s| !s.is_empty()) {
            Some(raw) => Some(
                mailpush_model::EmailAddress::parse(raw)
                    .map_err(|e| {
                        CoreError::refused(
                            ErrorCode::InvalidParameterValueIllegalEmailAddress,
                            format!("ToEmailAddress: {e}"),
                        )
                    })?
                    .as_str()
                    .to_string(),
            ),
            None => None,
        };
        let rows = self
            .env
            .store
            .queue()
            .status(StatusQuery {
                account_id: account.id,
                from_ms,
                to_ms,
                message_id,
                to_address,
                offset: q.offset,
                limit: q.limit,
            })
            .await?;
        Ok(rows)
    }

    pub(crate) async fn queue_counts(&self) -> Result<QueueCounts, CoreError> {
        Ok(self.env.store.queue().queue_counts().await?)
    }

    pub(crate) async fn waiting_counts(&self) -> Result<WaitingCounts, CoreError> {
        Ok(self.env.store.queue().waiting_counts().await?)
    }
}
