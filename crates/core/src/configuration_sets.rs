//! SES v2 configuration sets: the sets and their event destinations (HTTP(S) endpoints, checked by the callback
//! client's SSRF guard), sending with a set and tags, and the SES event JSON the callback dispatcher posts to a
//! set's destinations (`callbacks.rs`: the same rounds, leases, signature and retries as callbacks).

use crate::engage::SendOptions;
use crate::error::CoreError;
use crate::sending::Sending;
use crate::{AccountContext, Mailpush, SendRequest};
use mailpush_model::sesv2::{ConfigurationSetRow, EventDestinationRow};
use mailpush_model::{ErrorCode, EventKind, MessageId};
use mailpush_store::{BounceType, CallbackEvent, MessageTagsRow, NewEvent, StoreError};
use serde_json::{Value, json};

/// The SES event types a destination can match (`MatchingEventTypes`).
pub const EVENT_TYPES: [&str; 10] = [
    "SEND",
    "REJECT",
    "BOUNCE",
    "COMPLAINT",
    "DELIVERY",
    "OPEN",
    "CLICK",
    "RENDERING_FAILURE",
    "DELIVERY_DELAY",
    "SUBSCRIPTION",
];

/// What a configuration-set operation found in the way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetOutcome {
    /// Done.
    Done,
    /// The set or destination exists already.
    Exists,
    /// The set or destination does not exist.
    Missing,
}

pub(crate) fn outcome(r: Result<(), StoreError>) -> Result<SetOutcome, CoreError> {
    match r {
        Ok(()) => Ok(SetOutcome::Done),
        Err(StoreError::Conflict(_)) => Ok(SetOutcome::Exists),
        Err(StoreError::NotFound) => Ok(SetOutcome::Missing),
        Err(e) => Err(e.into()),
    }
}

impl Sending {
    /// Creates a configuration set with its options (a JSON object of option names to their wire objects, see
    /// [`mailpush_model::sesv2::ConfigurationSetRow::options`]; the caller checked them).
    pub(crate) async fn create_configuration_set(
        &self,
        ctx: &AccountContext,
        name: &str,
        options: serde_json::Map<String, Value>,
    ) -> Result<SetOutcome, CoreError> {
        let sets = self.env.store.configuration_sets();
        let created = outcome(sets.create_set(ctx.id, name, self.env.clock.now_ms()).await)?;
        if created == SetOutcome::Done && !options.is_empty() {
            sets.set_options(ctx.id, name, &Value::Object(options).to_string())
                .await?;
        }
        Ok(created)
    }

    /// The account's configuration sets, by name.
    pub(crate) async fn configuration_sets(&self, ctx: &AccountContext) -> Result<Vec<ConfigurationSetRow>, CoreError> {
        Ok(self.env.store.configuration_sets().sets(ctx.id).await?)
    }

    /// One configuration set.
    pub(crate) async fn configuration_set(
        &self,
        ctx: &AccountContext,
        name: &str,
    ) -> Result<Option<ConfigurationSetRow>, CoreError> {
        Ok(self.env.store.configuration_sets().set(ctx.id, name).await?)
    }

    /// Deletes a configuration set with its event destinations.
    pub(crate) async fn delete_configuration_set(
        &self,
        ctx: &AccountContext,
        name: &str,
    ) -> Result<SetOutcome, CoreError> {
        outcome(self.env.store.configuration_sets().delete_set(ctx.id, name).await)
    }

    /// The event destinations of a set (`None` when there is no such set).
    pub(crate) async fn event_destinations(
        &self,
        ctx: &AccountContext,
        set: &str,
    ) -> Result<Option<Vec<EventDestinationRow>>, CoreError> {
        if self.configuration_set(ctx, set).await?.is_none() {
            return Ok(None);
        }
        let store = &self.env.store;
        Ok(Some(store.configuration_sets().destinations(ctx.id, Some(set)).await?))
    }

    /// Refuses an endpoint the callback client would refuse (scheme, SSRF guard): the message says why.
    pub(crate) fn check_event_endpoint(&self, url: &str) -> Result<Result<(), String>, CoreError> {
        if url.len() > 2048 {
            return Ok(Err("the endpoint URL is longer than 2048 characters".into()));
        }
        let client = crate::callbacks::client(&self.env.settings)?;
        Ok(client.check_url(url).map(|_| ()).map_err(|e| e.to_string()))
    }

    /// Adds (`create`) or replaces an event destination of an existing set (`Missing` when the set, or for a
    /// replacement the destination, does not exist).
    pub(crate) async fn put_event_destination(
        &self,
        ctx: &AccountContext,
        row: &EventDestinationRow,
        create: bool,
    ) -> Result<SetOutcome, CoreError> {
        if self.configuration_set(ctx, &row.set_name).await?.is_none() {
            return Ok(SetOutcome::Missing);
        }
        let sets = self.env.store.configuration_sets();
        outcome(if create {
            sets.create_destination(ctx.id, row).await
        } else {
            sets.update_destination(ctx.id, row).await
        })
    }

    /// Deletes an event destination.
    pub(crate) async fn delete_event_destination(
        &self,
        ctx: &AccountContext,
        set: &str,
        name: &str,
    ) -> Result<SetOutcome, CoreError> {
        let sets = self.env.store.configuration_sets();
        outcome(sets.delete_destination(ctx.id, set, name).await)
    }

    /// Replaces one option object of a set (`TrackingOptions`, `DeliveryOptions`, `ReputationOptions`,
    /// `SendingOptions`, `SuppressionOptions`; the caller checked its wire form); `Missing` without such a set.
    pub(crate) async fn put_configuration_set_option(
        &self,
        ctx: &AccountContext,
        name: &str,
        key: &str,
        value: Value,
    ) -> Result<SetOutcome, CoreError> {
        let Some(set) = self.configuration_set(ctx, name).await? else {
            return Ok(SetOutcome::Missing);
        };
        let mut options: serde_json::Map<String, Value> = serde_json::from_str(&set.options).unwrap_or_default();
        options.insert(key.to_string(), value);
        let sets = self.env.store.configuration_sets();
        outcome(
            sets.set_options(ctx.id, name, &Value::Object(options).to_string())
                .await,
        )
    }

    /// The configuration set an SES send names, as admission uses it: `Err` with the outcome when it does not
    /// exist or its sending is disabled (`SendingOptions.SendingEnabled` false).
    pub(crate) async fn ses_set_in_use(
        &self,
        ctx: &AccountContext,
        extras: &SesSendExtras,
    ) -> Result<Result<Option<SetInUse>, SesSendOutcome>, CoreError> {
        let Some(name) = &extras.set else {
            return Ok(Ok(None));
        };
        let Some(set) = self.configuration_set(ctx, name).await? else {
            return Ok(Err(SesSendOutcome::UnknownSet));
        };
        if !sending_enabled(&set.options) {
            return Ok(Err(SesSendOutcome::SendingPaused));
        }
        let destinations = self
            .env
            .store
            .configuration_sets()
            .destinations(ctx.id, Some(name))
            .await?;
        let mut wanted: Vec<String> = Vec::new();
        for d in destinations.iter().filter(|d| d.enabled != 0) {
            wanted.extend(d.event_types.split(',').map(str::to_string));
        }
        Ok(Ok(Some(SetInUse { name: set.name, wanted })))
    }

    /// Writes the SES row of a message (set, tags, sender, subject) before it is enqueued, or for a mail refused
    /// at admission before its events.
    pub(crate) async fn put_ses_message(
        &self,
        ctx: &AccountContext,
        set: &SetInUse,
        extras: &SesSendExtras,
        mail: &SesMail<'_>,
    ) -> Result<(), CoreError> {
        let row = MessageTagsRow {
            message_id: mail.id.as_str().to_string(),
            set_name: set.name.clone(),
            tags: Value::Object(extras.tags.clone()).to_string(),
            source: mail.source.to_string(),
            subject: mail.subject.to_string(),
            created_ms: self.env.clock.now_ms(),
        };
        Ok(self
            .env
            .store
            .configuration_sets()
            .put_message_tags(ctx.id, &row)
            .await?)
    }

    /// Records an SES-only event (`SEND`, `REJECT`, `RENDERING_FAILURE`) for each recipient of a mail, with the
    /// type's object as its `reason` (the callback dispatcher posts it to the set's destinations only); nothing
    /// when no enabled destination of the set matches the type.
    pub(crate) async fn record_ses_events(
        &self,
        ctx: &AccountContext,
        set: &SetInUse,
        mail: &SesMail<'_>,
        kind: EventKind,
        detail: &Value,
    ) -> Result<(), CoreError> {
        if !set.wants(kind) || mail.recipients.is_empty() {
            return Ok(());
        }
        let at_ms = self.env.clock.now_ms();
        let events: Vec<NewEvent> = mail
            .recipients
            .iter()
            .map(|r| NewEvent {
                account_id: ctx.id,
                message_id: mail.id.clone(),
                recipient: r.clone(),
                kind,
                at_ms,
                reason: detail.to_string(),
                bounce_type: None,
                link: None,
                user_agent: None,
            })
            .collect();
        Ok(self.env.store.events().record_events(&events).await?)
    }

    /// A mail of an SES send refused at admission: a refusal for its content becomes `REJECT` events, a template
    /// that could not be rendered `RENDERING_FAILURE` events, each recipient's under the mail's MessageId (which
    /// no message row has), when the set has a destination for them. Their failure is logged, never returned: the
    /// caller answers with the refusal.
    pub(crate) async fn ses_refused(
        &self,
        ctx: &AccountContext,
        set: &SetInUse,
        extras: &SesSendExtras,
        mail: &SesMail<'_>,
        refusal: &CoreError,
    ) {
        let api = refusal.to_api();
        let (kind, detail) = match api.code {
            ErrorCode::OperationDenied => (
                EventKind::Reject,
                json!({ "reason": "Bad content", "detail": api.message }),
            ),
            ErrorCode::InvalidParameterValueTemplateNotMatchData => (
                EventKind::RenderingFailure,
                json!({
                    "errorMessage": api.message,
                    "templateName": extras.template_name.clone().unwrap_or_default(),
                }),
            ),
            _ => return,
        };
        if !set.wants(kind) {
            return;
        }
        let recorded = async {
            self.put_ses_message(ctx, set, extras, mail).await?;
            self.record_ses_events(ctx, set, mail, kind, &detail).await
        };
        if let Err(e) = recorded.await {
            tracing::warn!(error = %e, message_id = %mail.id, "recording the SES events of a refused mail failed");
        }
    }

    /// [`Mailpush::send_email`] with what SES adds: a configuration set and tags (the set must exist and send; the
    /// set and tags are recorded before the message is enqueued, so its every event reaches the set's
    /// destinations; `SEND` events once it is committed, `REJECT` / `RENDERING_FAILURE` events when admission
    /// refuses it), recipients dropped at admission because they opted out of the list topic, and a one-click
    /// `List-Unsubscribe` (added when every recipient gets the message's own MIME).
    pub(crate) async fn send_email_ses(
        &self,
        ctx: &AccountContext,
        req: SendRequest,
        extras: &SesSendExtras,
    ) -> Result<SesSendOutcome, CoreError> {
        let set = match self.ses_set_in_use(ctx, extras).await? {
            Ok(set) => set,
            Err(outcome) => return Ok(outcome),
        };
        let sending = self;
        let source = req.from.clone();
        let subject = req.subject.clone();
        let rcpts = request_recipients(&req);
        let (mut msg, shared_body) = match sending.prepare(ctx, req, SendOptions::default()).await {
            Ok(prepared) => prepared,
            Err(e) => {
                if let Some(set) = &set {
                    let id = MessageId::generate();
                    let mail = SesMail {
                        id: &id,
                        source: mailbox_address(&source),
                        subject: &subject,
                        recipients: &rcpts,
                    };
                    sending.ses_refused(ctx, set, extras, &mail, &e).await;
                }
                return Err(e);
            }
        };
        drop_opted_out(&mut msg.recipients, &extras.opted_out);
        if let Some(list) = &extras.list
            && shared_body
            && let [only] = msg.recipients.as_slice()
            && let Some(url) = sending.topic_unsubscribe_url(ctx, list, &only.address, &msg.id)
        {
            msg.body.splice(0..0, list_unsubscribe_headers(&url).into_bytes());
        }
        let id = msg.id.clone();
        let suppressed = msg
            .recipients
            .iter()
            .any(|r| r.send_status != mailpush_model::SendStatus::Ok);
        let admitted: Vec<String> = msg.recipients.iter().map(|r| r.address.clone()).collect();
        let from_address = msg.from_address.clone();
        let subject = msg.subject.clone();
        let mail = SesMail {
            id: &id,
            source: &from_address,
            subject: &subject,
            recipients: &admitted,
        };
        if let Some(set) = &set {
            sending.put_ses_message(ctx, set, extras, &mail).await?;
        }
        let limits = sending.limits.admission_limits(ctx).await?;
        sending.enqueue_admitted(msg, limits, shared_body).await?;
        if let Some(set) = &set {
            sending.ses_accepted(ctx, set, &mail).await;
        }
        if suppressed {
            sending.suppression.check_auto_suspend(ctx).await?;
        }
        Ok(SesSendOutcome::Accepted(id))
    }

    /// The `SEND` events of a committed SES mail (one per recipient, suppressed ones included, as SES counts
    /// them). Recorded after the commit: a failure is logged, the mail is sent all the same.
    pub(crate) async fn ses_accepted(&self, ctx: &AccountContext, set: &SetInUse, mail: &SesMail<'_>) {
        if let Err(e) = self
            .record_ses_events(ctx, set, mail, EventKind::Send, &json!({}))
            .await
        {
            tracing::warn!(error = %e, message_id = %mail.id, "recording the SEND events of a mail failed");
        }
    }
}

impl Mailpush {
    /// Creates a configuration set with its options (a JSON object of option names to their wire objects, see
    /// [`mailpush_model::sesv2::ConfigurationSetRow::options`]; the caller checked them).
    pub async fn create_configuration_set(
        &self,
        ctx: &AccountContext,
        name: &str,
        options: serde_json::Map<String, Value>,
    ) -> Result<SetOutcome, CoreError> {
        self.inner.sending.create_configuration_set(ctx, name, options).await
    }

    /// The account's configuration sets, by name.
    pub async fn configuration_sets(&self, ctx: &AccountContext) -> Result<Vec<ConfigurationSetRow>, CoreError> {
        self.inner.sending.configuration_sets(ctx).await
    }

    /// One configuration set.
    pub async fn configuration_set(
        &self,
        ctx: &AccountContext,
        name: &str,
    ) -> Result<Option<ConfigurationSetRow>, CoreError> {
        self.inner.sending.configuration_set(ctx, name).await
    }

    /// Deletes a configuration set with its event destinations.
    pub async fn delete_configuration_set(&self, ctx: &AccountContext, name: &str) -> Result<SetOutcome, CoreError> {
        self.inner.sending.delete_configuration_set(ctx, name).await
    }

    /// The event destinations of a set (`None` when there is no such set).
    pub async fn event_destinations(
        &self,
        ctx: &AccountContext,
        set: &str,
    ) -> Result<Option<Vec<EventDestinationRow>>, CoreError> {
        self.inner.sending.event_destinations(ctx, set).await
    }

    /// Refuses an endpoint the callback client would refuse (scheme, SSRF guard): the message says why.
    pub fn check_event_endpoint(&self, url: &str) -> Result<Result<(), String>, CoreError> {
        self.inner.sending.check_event_endpoint(url)
    }

    /// Adds (`create`) or replaces an event destination of an existing set (`Missing` when the set, or for a
    /// replacement the destination, does not exist).
    pub async fn put_event_destination(
        &self,
        ctx: &AccountContext,
        row: &EventDestinationRow,
        create: bool,
    ) -> Result<SetOutcome, CoreError> {
        self.inner.sending.put_event_destination(ctx, row, create).await
    }

    /// Deletes an event destination.
    pub async fn delete_event_destination(
        &self,
        ctx: &AccountContext,
        set: &str,
        name: &str,
    ) -> Result<SetOutcome, CoreError> {
        self.inner.sending.delete_event_destination(ctx, set, name).await
    }

    /// Replaces one option object of a set (`TrackingOptions`, `DeliveryOptions`, `ReputationOptions`,
    /// `SendingOptions`, `SuppressionOptions`; the caller checked its wire form); `Missing` without such a set.
    pub async fn put_configuration_set_option(
        &self,
        ctx: &AccountContext,
        name: &str,
        key: &str,
        value: Value,
    ) -> Result<SetOutcome, CoreError> {
        self.inner
            .sending
            .put_configuration_set_option(ctx, name, key, value)
            .await
    }

    /// [`Mailpush::send_email`] with what SES adds: a configuration set and tags (the set must exist and send; the
    /// set and tags are recorded before the message is enqueued, so its every event reaches the set's
    /// destinations; `SEND` events once it is committed, `REJECT` / `RENDERING_FAILURE` events when admission
    /// refuses it), recipients dropped at admission because they opted out of the list topic, and a one-click
    /// `List-Unsubscribe` (added when every recipient gets the message's own MIME).
    pub async fn send_email_ses(
        &self,
        ctx: &AccountContext,
        req: SendRequest,
        extras: &SesSendExtras,
    ) -> Result<SesSendOutcome, CoreError> {
        self.inner.sending.send_email_ses(ctx, req, extras).await
    }

    /// [`Mailpush::submit_raw`] with what SES adds, as [`Mailpush::send_email_ses`] for `Content.Raw`: the
    /// configuration set, tags and events, the contact-list opt-outs, and the one-click `List-Unsubscribe`
    /// headers when the raw mail has no `List-Unsubscribe` of its own.
    pub async fn submit_raw_ses(
        &self,
        who: &crate::Submitter,
        sub: crate::RawSubmission,
        extras: &SesSendExtras,
    ) -> Result<SesSendOutcome, CoreError> {
        self.inner.submission.submit_raw_ses(who, sub, extras).await
    }
}

/// What an SES v2 send came to, when admission did not refuse it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SesSendOutcome {
    /// Committed: the MessageId.
    Accepted(MessageId),
    /// The `ConfigurationSetName` is not a set of the account: nothing sent.
    UnknownSet,
    /// The set's `SendingOptions.SendingEnabled` is false: nothing sent.
    SendingPaused,
}

/// The `ListManagementOptions` of an SES send.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListManagement {
    /// `ContactListName`.
    pub list: String,
    /// `TopicName` ("" = none: the list as a whole).
    pub topic: String,
}

/// The configuration set of an SES send as admission uses it: its name and the event types its enabled
/// destinations match.
#[derive(Debug, Clone)]
pub(crate) struct SetInUse {
    name: String,
    wanted: Vec<String>,
}

impl SetInUse {
    /// Whether an enabled destination of the set matches `kind`.
    fn wants(&self, kind: EventKind) -> bool {
        let t = event_type(kind);
        self.wanted.iter().any(|w| w == t)
    }
}

/// The mail an SES row and SES-only events are about.
pub(crate) struct SesMail<'a> {
    /// Its MessageId.
    pub(crate) id: &'a MessageId,
    /// Its sender address.
    pub(crate) source: &'a str,
    /// Its subject.
    pub(crate) subject: &'a str,
    /// Its recipients' addresses.
    pub(crate) recipients: &'a [String],
}

/// Whether a set's options let it send (`SendingOptions.SendingEnabled`, true unless set to false).
pub fn sending_enabled(options_json: &str) -> bool {
    let options: Value = serde_json::from_str(options_json).unwrap_or_default();
    options["SendingOptions"]["SendingEnabled"] != Value::Bool(false)
}

/// The `List-Unsubscribe` one-click headers (RFC 8058) of a contact-list topic link.
pub(crate) fn list_unsubscribe_headers(url: &str) -> String {
    format!("List-Unsubscribe: <{url}>\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n")
}

/// Marks the recipients who opted out of the send's contact-list topic as unsubscribed (not sent to).
pub(crate) fn drop_opted_out(recipients: &mut [mailpush_model::queue::NewRecipient], opted_out: &[String]) {
    for r in recipients {
        if r.send_status == mailpush_model::SendStatus::Ok
            && opted_out.iter().any(|a| a.eq_ignore_ascii_case(&r.address))
        {
            r.send_status = mailpush_model::SendStatus::Unsubscribed;
            r.deliver_message = Some("the contact is unsubscribed from the list topic".into());
        }
    }
}

/// The address of `From: Name <addr>` or a bare address (as given when it is neither).
fn mailbox_address(from: &str) -> &str {
    let from = from.trim();
    match (from.rfind('<'), from.rfind('>')) {
        (Some(open), Some(close)) if open < close => &from[open + 1..close],
        _ => from,
    }
}

/// The recipient addresses of a send (To, Cc, Bcc), lowercase; entries that are not addresses are left out.
pub fn request_recipients(req: &SendRequest) -> Vec<String> {
    req.destination
        .iter()
        .chain(&req.cc)
        .chain(&req.bcc)
        .filter_map(|r| {
            mailpush_model::Mailbox::parse(r)
                .map(|m| m.address.as_str().to_ascii_lowercase())
                .or_else(|_| mailpush_model::EmailAddress::parse(r.trim()).map(|a| a.as_str().to_ascii_lowercase()))
                .ok()
        })
        .collect()
}

/// What an SES v2 send adds to a Tencent one ([`Mailpush::send_email_ses`]).
#[derive(Debug, Clone, Default)]
pub struct SesSendExtras {
    /// `ConfigurationSetName`.
    pub set: Option<String>,
    /// `EmailTags`, name → value.
    pub tags: serde_json::Map<String, Value>,
    /// Recipients (addresses) that opted out of the `ListManagementOptions` topic: dropped at admission.
    pub opted_out: Vec<String>,
    /// `ListManagementOptions`: the list and topic of the one-click unsubscribe link.
    pub list: Option<ListManagement>,
    /// The template's name (`RENDERING_FAILURE` events name it).
    pub template_name: Option<String>,
}

/// The `MatchingEventTypes` value of an event kind.
pub(crate) fn event_type(kind: EventKind) -> &'static str {
    match kind {
        EventKind::Delivered => "DELIVERY",
        EventKind::Dropped | EventKind::Bounce => "BOUNCE",
        EventKind::Open => "OPEN",
        EventKind::Click => "CLICK",
        EventKind::SpamReport => "COMPLAINT",
        EventKind::Unsubscribe => "SUBSCRIPTION",
        EventKind::Deferred => "DELIVERY_DELAY",
        EventKind::Send => "SEND",
        EventKind::Reject => "REJECT",
        EventKind::RenderingFailure => "RENDERING_FAILURE",
        EventKind::Subscription => "SUBSCRIPTION",
    }
}

/// What the events of a message sent with a configuration set carry from its SES row.
#[derive(Debug, Clone, Default)]
pub(crate) struct MessageSes {
    /// The configuration set.
    pub(crate) set: String,
    /// `EmailTags`, name → value.
    pub(crate) tags: serde_json::Map<String, Value>,
    /// The sender, for mail without a message row (refused at admission).
    pub(crate) source: String,
    /// The subject, likewise.
    pub(crate) subject: String,
}

impl From<MessageTagsRow> for MessageSes {
    fn from(r: MessageTagsRow) -> MessageSes {
        MessageSes {
            set: r.set_name,
            tags: serde_json::from_str(&r.tags).unwrap_or_default(),
            source: r.source,
            subject: r.subject,
        }
    }
}

/// `2026-01-02T03:04:05.678Z`.
pub(crate) fn iso_ms(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// The event as SES publishes it to an event destination: `eventType`, `mail` (with the set and the message's
/// tags under `tags`, each value a one-element list as SES writes them) and the event type's own object. The
/// SES-only kinds (`Send`, `Reject`, `RenderingFailure`, `Subscription`) keep that object in the event's
/// `reason`.
pub(crate) fn ses_event_json(ev: &CallbackEvent, ses: &MessageSes) -> Value {
    let e = &ev.event.event;
    // Mail refused at admission has no message row: its SES row knows the sender and subject.
    let source = if ev.from_address.is_empty() {
        &ses.source
    } else {
        &ev.from_address
    };
    let subject = if ev.from_address.is_empty() {
        &ses.subject
    } else {
        &ev.subject
    };
    let from_domain = source.rsplit_once('@').map(|(_, d)| d).unwrap_or_default();
    let mut all_tags = serde_json::Map::new();
    all_tags.insert("ses:configuration-set".into(), json!([ses.set]));
    all_tags.insert("ses:from-domain".into(), json!([from_domain]));
    for (k, v) in &ses.tags {
        all_tags.insert(k.clone(), json!([v]));
    }
    let at = iso_ms(e.at_ms);
    let recipient = json!([e.recipient]);
    let sent_ms = if ev.request_ms > 0 { ev.request_ms } else { e.at_ms };
    let mail = json!({
        "timestamp": iso_ms(sent_ms),
        "source": source,
        "messageId": e.message_id.as_str(),
        "destination": recipient,
        "headersTruncated": false,
        "commonHeaders": { "from": [source], "to": [e.recipient], "subject": subject },
        "tags": all_tags,
    });
    let stored = || -> Value { serde_json::from_str(&e.reason).unwrap_or_else(|_| json!({})) };
    let (event_type, key, detail) = match e.kind {
        EventKind::Delivered => (
            "Delivery",
            "delivery",
            json!({
                "timestamp": at,
                "processingTimeMillis": (e.at_ms - ev.request_ms).max(0),
                "recipients": [e.recipient],
                "smtpResponse": e.reason,
            }),
        ),
        EventKind::Bounce | EventKind::Dropped => {
            let (bounce_type, sub_type) = match (e.kind, e.bounce_type) {
                (EventKind::Dropped, _) => ("Permanent", "OnSuppressionList"),
                (_, Some(BounceType::Soft)) => ("Transient", "General"),
                _ => ("Permanent", "General"),
            };
            (
                "Bounce",
                "bounce",
                json!({
                    "bounceType": bounce_type,
                    "bounceSubType": sub_type,
                    "bouncedRecipients": [{
                        "emailAddress": e.recipient,
                        "action": "failed",
                        "diagnosticCode": e.reason,
                    }],
                    "timestamp": at,
                    "feedbackId": ev.event.id.to_string(),
                }),
            )
        }
        EventKind::Deferred => (
            "DeliveryDelay",
            "deliveryDelay",
            json!({
                "timestamp": at,
                "delayType": "TransientCommunicationFailure",
                "delayedRecipients": [{ "emailAddress": e.recipient, "diagnosticCode": e.reason }],
            }),
        ),
        EventKind::Open => (
            "Open",
            "open",
            json!({ "timestamp": at, "userAgent": e.user_agent.clone().unwrap_or_default(), "ipAddress": "" }),
        ),
        EventKind::Click => (
            "Click",
            "click",
            json!({
                "timestamp": at,
                "userAgent": e.user_agent.clone().unwrap_or_default(),
                "ipAddress": "",
                "link": e.link.clone().unwrap_or_default(),
                "linkTags": {},
            }),
        ),
        EventKind::SpamReport => (
            "Complaint",
            "complaint",
            json!({
                "complainedRecipients": [{ "emailAddress": e.recipient }],
                "timestamp": at,
                "feedbackId": ev.event.id.to_string(),
                "complaintFeedbackType": "abuse",
            }),
        ),
        EventKind::Unsubscribe => (
            "Subscription",
            "subscription",
            json!({ "timestamp": at, "source": "UnsubscribeHeader" }),
        ),
        EventKind::Send => ("Send", "send", json!({})),
        EventKind::Reject => ("Reject", "reject", stored()),
        EventKind::RenderingFailure => ("Rendering Failure", "failure", stored()),
        EventKind::Subscription => {
            let mut detail = stored();
            detail["timestamp"] = json!(at);
            ("Subscription", "subscription", detail)
        }
    };
    json!({ "eventType": event_type, "mail": mail, key: detail })
}

/// Whether a destination row wants events of `kind`.
pub(crate) fn matches(row: &EventDestinationRow, kind: EventKind) -> bool {
    let t = event_type(kind);
    row.enabled != 0 && row.event_types.split(',').any(|x| x == t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mailpush_store::{NewEvent, RecordedEvent};

    /// Event `id` of `kind` for `a@example.org`, recorded at 2023-11-14T22:13:21.500Z.
    fn recorded(id: i64, kind: EventKind, reason: &str, bounce_type: Option<BounceType>) -> RecordedEvent {
        RecordedEvent {
            id,
            event: NewEvent {
                account_id: 1,
                message_id: MessageId::generate(),
                recipient: "a@example.org".into(),
                kind,
                at_ms: 1_700_000_001_500,
                reason: reason.into(),
                bounce_type,
                link: None,
                user_agent: None,
            },
        }
    }

    #[test]
    fn delivery_and_bounce_in_ses_json() {
        let ev = |kind, bounce_type| CallbackEvent {
            event: recorded(7, kind, "250 ok", bounce_type),
            attempts: 0,
            next_ms: 0,
            from_address: "n@shop.example.com".into(),
            subject: "Hi".into(),
            request_ms: 1_700_000_000_000,
            template_id: 0,
        };
        let mut tags = serde_json::Map::new();
        tags.insert("campaign".into(), json!("spring"));
        let ses = |set: &str| MessageSes {
            set: set.into(),
            tags: tags.clone(),
            ..MessageSes::default()
        };
        let v = ses_event_json(&ev(EventKind::Delivered, None), &ses("marketing"));
        assert_eq!(v["eventType"], "Delivery");
        assert_eq!(v["mail"]["tags"]["campaign"], json!(["spring"]));
        assert_eq!(v["mail"]["tags"]["ses:configuration-set"], json!(["marketing"]));
        assert_eq!(v["mail"]["timestamp"], "2023-11-14T22:13:20.000Z");
        assert_eq!(v["delivery"]["processingTimeMillis"], 1500);
        let v = ses_event_json(&ev(EventKind::Bounce, Some(BounceType::Hard)), &ses("m"));
        assert_eq!(v["bounce"]["bounceType"], "Permanent");
        assert_eq!(v["bounce"]["bouncedRecipients"][0]["emailAddress"], "a@example.org");
        let row = EventDestinationRow {
            set_name: "m".into(),
            name: "d".into(),
            enabled: 1,
            url: "https://x.example/".into(),
            event_types: "DELIVERY,BOUNCE".into(),
        };
        assert!(matches(&row, EventKind::Dropped));
        assert!(!matches(&row, EventKind::Open));
    }

    #[test]
    fn ses_only_kinds_carry_their_object_and_never_match_tencent() {
        let ev = |kind: EventKind, reason: &str, from: &str| CallbackEvent {
            event: recorded(9, kind, reason, None),
            attempts: 0,
            next_ms: 0,
            from_address: from.into(),
            subject: if from.is_empty() { String::new() } else { "Hi".into() },
            request_ms: if from.is_empty() { 0 } else { 1_700_000_000_000 },
            template_id: 0,
        };
        let ses = MessageSes {
            set: "m".into(),
            tags: serde_json::Map::new(),
            source: "n@shop.example.com".into(),
            subject: "Refused".into(),
        };
        let v = ses_event_json(&ev(EventKind::Send, "{}", "n@shop.example.com"), &ses);
        assert_eq!((v["eventType"].as_str(), &v["send"]), (Some("Send"), &json!({})));
        // A refused mail has no message row: the SES row gives the mail object its sender and subject.
        let v = ses_event_json(
            &ev(EventKind::Reject, r#"{"reason":"Bad content","detail":"virus"}"#, ""),
            &ses,
        );
        assert_eq!(v["eventType"], "Reject");
        assert_eq!(v["reject"]["reason"], "Bad content");
        assert_eq!(v["mail"]["source"], "n@shop.example.com");
        assert_eq!(v["mail"]["commonHeaders"]["subject"], "Refused");
        assert_eq!(v["mail"]["timestamp"], "2023-11-14T22:13:21.500Z");
        assert_eq!(v["mail"]["tags"]["ses:from-domain"], json!(["shop.example.com"]));
        let v = ses_event_json(
            &ev(
                EventKind::RenderingFailure,
                r#"{"errorMessage":"missing name","templateName":"welcome"}"#,
                "",
            ),
            &ses,
        );
        assert_eq!(v["eventType"], "Rendering Failure");
        assert_eq!(v["failure"]["templateName"], "welcome");
        let v = ses_event_json(
            &ev(
                EventKind::Subscription,
                r#"{"contactList":"news","source":"UnsubscribeHeader","newTopicPreferences":{},"oldTopicPreferences":{}}"#,
                "n@shop.example.com",
            ),
            &ses,
        );
        assert_eq!(v["subscription"]["contactList"], "news");
        assert_eq!(v["subscription"]["timestamp"], "2023-11-14T22:13:21.500Z");
        for kind in [
            EventKind::Send,
            EventKind::Reject,
            EventKind::RenderingFailure,
            EventKind::Subscription,
        ] {
            assert!(!kind.is_tencent(), "{kind:?}");
        }
        assert!(EventKind::Deferred.is_tencent());
        let set = SetInUse {
            name: "m".into(),
            wanted: vec!["SEND".into(), "DELIVERY".into()],
        };
        assert!(set.wants(EventKind::Send) && !set.wants(EventKind::Reject));
        assert!(sending_enabled("{}") && sending_enabled(r#"{"SendingOptions":{"SendingEnabled":true}}"#));
        assert!(!sending_enabled(r#"{"SendingOptions":{"SendingEnabled":false}}"#));
        assert_eq!(mailbox_address("Shop <n@shop.example.com>"), "n@shop.example.com");
    }
}
