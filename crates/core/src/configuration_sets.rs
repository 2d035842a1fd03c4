//! SES v2 configuration sets: the sets and their event destinations (HTTP(S) endpoints, checked by the callback
//! client's SSRF guard), sending with a set and tags, and the SES event JSON the callback dispatcher posts to a
//! set's destinations (`callbacks.rs`: the same rounds, leases, signature and retries as callbacks).

use crate::engage::SendOptions;
use crate::error::CoreError;
use crate::sending::Sending;
use crate::{AccountContext, Mailpush, SendRequest};
use mailpush_model::{EventKind, MessageId};
use mailpush_store::{BounceType, CallbackEvent, ConfigurationSetRow, EventDestinationRow, StoreError};
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
    /// Creates a configuration set.
    pub(crate) async fn create_configuration_set(
        &self,
        ctx: &AccountContext,
        name: &str,
    ) -> Result<SetOutcome, CoreError> {
        let store = &self.env.store;
        outcome(
            store
                .configuration_sets()
                .create_set(ctx.id, name, self.env.clock.now_ms())
                .await,
        )
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

    /// [`Mailpush::send_email`] with what SES adds: a configuration set and tags (the set must exist: `Ok(None)`
    /// otherwise, nothing sent; the set and tags are recorded before the message is enqueued, so its every event
    /// reaches the set's destinations), recipients dropped at admission because they opted out of the list
    /// topic, and a one-click `List-Unsubscribe` (added when every recipient gets the message's own MIME).
    pub(crate) async fn send_email_ses(
        &self,
        ctx: &AccountContext,
        req: SendRequest,
        extras: &SesSendExtras,
    ) -> Result<Option<MessageId>, CoreError> {
        if let Some(set) = &extras.set
            && self.configuration_set(ctx, set).await?.is_none()
        {
            return Ok(None);
        }
        let sending = self;
        let (mut msg, shared_body) = sending.prepare(ctx, req, SendOptions::default()).await?;
        for r in &mut msg.recipients {
            if r.send_status == mailpush_model::SendStatus::Ok
                && extras.opted_out.iter().any(|a| a.eq_ignore_ascii_case(&r.address))
            {
                r.send_status = mailpush_model::SendStatus::Unsubscribed;
                r.deliver_message = Some("the contact is unsubscribed from the list topic".into());
            }
        }
        if let Some(url) = extras.list_unsubscribe.as_deref().filter(|_| shared_body) {
            let head = format!("List-Unsubscribe: <{url}>\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n");
            msg.body.splice(0..0, head.into_bytes());
        }
        let id = msg.id.clone();
        let suppressed = msg
            .recipients
            .iter()
            .any(|r| r.send_status != mailpush_model::SendStatus::Ok);
        if let Some(set) = &extras.set {
            sending
                .env
                .store
                .configuration_sets()
                .put_message_tags(
                    ctx.id,
                    id.as_str(),
                    set,
                    &Value::Object(extras.tags.clone()).to_string(),
                )
                .await?;
        }
        let limits = sending.limits.admission_limits(ctx).await?;
        sending.enqueue_admitted(msg, limits, shared_body).await?;
        if suppressed {
            sending.suppression.check_auto_suspend(ctx).await?;
        }
        Ok(Some(id))
    }
}

impl Mailpush {
    /// Creates a configuration set.
    pub async fn create_configuration_set(&self, ctx: &AccountContext, name: &str) -> Result<SetOutcome, CoreError> {
        self.inner.sending.create_configuration_set(ctx, name).await
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

    /// [`Mailpush::send_email`] with what SES adds: a configuration set and tags (the set must exist: `Ok(None)`
    /// otherwise, nothing sent; the set and tags are recorded before the message is enqueued, so its every event
    /// reaches the set's destinations), recipients dropped at admission because they opted out of the list
    /// topic, and a one-click `List-Unsubscribe` (added when every recipient gets the message's own MIME).
    pub async fn send_email_ses(
        &self,
        ctx: &AccountContext,
        req: SendRequest,
        extras: &SesSendExtras,
    ) -> Result<Option<MessageId>, CoreError> {
        self.inner.sending.send_email_ses(ctx, req, extras).await
    }
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
    /// The one-click unsubscribe URL of the list topic.
    pub list_unsubscribe: Option<String>,
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
/// tags under `tags`, each value a one-element list as SES writes them) and the event type's own object.
pub(crate) fn ses_event_json(ev: &CallbackEvent, set: &str, tags: &serde_json::Map<String, Value>) -> Value {
    let e = &ev.event.event;
    let from_domain = ev.from_address.rsplit_once('@').map(|(_, d)| d).unwrap_or_default();
    let mut all_tags = serde_json::Map::new();
    all_tags.insert("ses:configuration-set".into(), json!([set]));
    all_tags.insert("ses:from-domain".into(), json!([from_domain]));
    for (k, v) in tags {
        all_tags.insert(k.clone(), json!([v]));
    }
    let at = iso_ms(e.at_ms);
    let recipient = json!([e.recipient]);
    let mail = json!({
        "timestamp": iso_ms(ev.request_ms),
        "source": ev.from_address,
        "messageId": e.message_id.as_str(),
        "destination": recipient,
        "headersTruncated": false,
        "commonHeaders": { "from": [ev.from_address], "to": [e.recipient], "subject": ev.subject },
        "tags": all_tags,
    });
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

    #[test]
    fn delivery_and_bounce_in_ses_json() {
        let ev = |kind, bounce_type| CallbackEvent {
            event: RecordedEvent {
                id: 7,
                event: NewEvent {
                    account_id: 1,
                    message_id: MessageId::generate(),
                    recipient: "a@example.org".into(),
                    kind,
                    at_ms: 1_700_000_001_500,
                    reason: "250 ok".into(),
                    bounce_type,
                    link: None,
                    user_agent: None,
                },
            },
            attempts: 0,
            next_ms: 0,
            from_address: "n@shop.example.com".into(),
            subject: "Hi".into(),
            request_ms: 1_700_000_000_000,
            template_id: 0,
        };
        let mut tags = serde_json::Map::new();
        tags.insert("campaign".into(), json!("spring"));
        let v = ses_event_json(&ev(EventKind::Delivered, None), "marketing", &tags);
        assert_eq!(v["eventType"], "Delivery");
        assert_eq!(v["mail"]["tags"]["campaign"], json!(["spring"]));
        assert_eq!(v["mail"]["tags"]["ses:configuration-set"], json!(["marketing"]));
        assert_eq!(v["mail"]["timestamp"], "2023-11-14T22:13:20.000Z");
        assert_eq!(v["delivery"]["processingTimeMillis"], 1500);
        let v = ses_event_json(&ev(EventKind::Bounce, Some(BounceType::Hard)), "m", &tags);
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
}
