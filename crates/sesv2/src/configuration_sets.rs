//! Configuration sets and their event destinations: `CreateConfigurationSet`, `GetConfigurationSet`,
//! `ListConfigurationSets`, `DeleteConfigurationSet`, `CreateConfigurationSetEventDestination`,
//! `GetConfigurationSetEventDestinations`, `UpdateConfigurationSetEventDestination`,
//! `DeleteConfigurationSetEventDestination`, the `PutConfigurationSet…Options` operations; and the
//! `ConfigurationSetName` / `EmailTags` / `ListManagementOptions` of the sends (every kind of content).
//!
//! mailpush posts events to HTTP(S) endpoints, not to SNS, Firehose, CloudWatch or EventBridge. A destination's
//! endpoint is given as `SnsDestination.TopicArn` holding the URL (the SDKs validate request shapes, so an
//! endpoint has to travel in a field they know; an SNS topic with an HTTPS subscription is what it stands for),
//! or as mailpush's own `HttpEndpoint {Url}` (for clients that send JSON themselves). Other destination kinds and
//! real ARNs are refused with `BadRequestException`. Events are SES's event JSON, signed as mailpush's callbacks.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use mailpush_core::receives;
use mailpush_core::{AccountContext, Mailpush, RawSubmission, SendRequest, Submitter};
use mailpush_core::{EVENT_TYPES, ListManagement, SesSendExtras, SesSendOutcome, SetOutcome, request_recipients};
use mailpush_model::sesv2::EventDestinationRow;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{AppState, AwsError, Signed, decode_component, paged_reply};

/// AWS's rule for configuration set and event destination names: 1–64 letters, digits, `-` and `_`.
fn check_name(field: &str, name: &str) -> Result<(), AwsError> {
    if name.is_empty() || name.len() > 64 || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        return Err(AwsError::bad_request(format!(
            "{field} must be 1 to 64 characters: letters, numbers, hyphens (-) and underscores (_)"
        )));
    }
    Ok(())
}

fn no_set(name: &str) -> AwsError {
    AwsError::not_found(format!("Configuration set <{name}> does not exist."))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateSetInput {
    configuration_set_name: String,
}

/// The options a configuration set keeps, by their names in `CreateConfigurationSet` / `GetConfigurationSet`.
const OPTIONS: [&str; 5] = [
    "TrackingOptions",
    "DeliveryOptions",
    "ReputationOptions",
    "SendingOptions",
    "SuppressionOptions",
];

/// Checks one option object's wire form (`key` one of [`OPTIONS`]) and returns what is kept: its known fields.
fn option_value(key: &str, input: &Value) -> Result<Value, AwsError> {
    let bad = |what: String| AwsError::bad_request(format!("{key}: {what}"));
    let Some(obj) = input.as_object() else {
        return Err(bad("must be an object".into()));
    };
    let one_of = |field: &str, allowed: &[&str]| -> Result<Option<Value>, AwsError> {
        match obj.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(v)) if allowed.contains(&v.as_str()) => Ok(Some(json!(v))),
            Some(v) => Err(bad(format!("{field} {v} is not one of {}", allowed.join(", ")))),
        }
    };
    let boolean = |field: &str| -> Result<Option<Value>, AwsError> {
        match obj.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(json!(b))),
            Some(v) => Err(bad(format!("{field} {v} is not a boolean"))),
        }
    };
    let mut out = serde_json::Map::new();
    let mut keep = |field: &str, v: Option<Value>| {
        if let Some(v) = v {
            out.insert(field.to_string(), v);
        }
    };
    match key {
        "TrackingOptions" => {
            let domain = match obj.get("CustomRedirectDomain") {
                None | Some(Value::Null) => None,
                Some(Value::String(d)) if d.is_empty() => None,
                Some(Value::String(d)) => {
                    mailpush_model::EmailAddress::parse(&format!("x@{d}"))
                        .map_err(|_| bad(format!("CustomRedirectDomain {d:?} is not a domain name")))?;
                    Some(json!(d))
                }
                Some(v) => return Err(bad(format!("CustomRedirectDomain {v} is not a domain name"))),
            };
            keep("CustomRedirectDomain", domain);
            keep(
                "HttpsPolicy",
                one_of("HttpsPolicy", &["REQUIRE", "REQUIRE_OPEN_ONLY", "OPTIONAL"])?,
            );
        }
        "DeliveryOptions" => {
            keep("TlsPolicy", one_of("TlsPolicy", &["REQUIRE", "OPTIONAL"])?);
            match obj.get("SendingPoolName") {
                None | Some(Value::Null) => {}
                Some(Value::String(p)) => keep("SendingPoolName", Some(json!(p))),
                Some(v) => return Err(bad(format!("SendingPoolName {v} is not a name"))),
            }
            match obj.get("MaxDeliverySeconds") {
                None | Some(Value::Null) => {}
                Some(v) => match v.as_i64().filter(|n| (300..=50_400).contains(n)) {
                    Some(n) => keep("MaxDeliverySeconds", Some(json!(n))),
                    None => return Err(bad(format!("MaxDeliverySeconds {v} is not between 300 and 50400"))),
                },
            }
        }
        "ReputationOptions" => {
            keep("ReputationMetricsEnabled", boolean("ReputationMetricsEnabled")?);
            match obj.get("LastFreshStart") {
                None | Some(Value::Null) => {}
                Some(v) if v.is_number() => keep("LastFreshStart", Some(v.clone())),
                Some(v) => return Err(bad(format!("LastFreshStart {v} is not a time"))),
            }
        }
        "SendingOptions" => keep("SendingEnabled", boolean("SendingEnabled")?),
        "SuppressionOptions" => {
            match obj.get("SuppressedReasons") {
                None | Some(Value::Null) => {}
                Some(Value::Array(reasons)) => {
                    let mut kept: Vec<Value> = Vec::new();
                    for r in reasons {
                        match r.as_str() {
                            Some(x @ ("BOUNCE" | "COMPLAINT")) => {
                                if !kept.contains(&json!(x)) {
                                    kept.push(json!(x));
                                }
                            }
                            _ => return Err(bad(format!("SuppressedReasons: {r} is not BOUNCE or COMPLAINT"))),
                        }
                    }
                    keep("SuppressedReasons", Some(Value::Array(kept)));
                }
                Some(v) => return Err(bad(format!("SuppressedReasons {v} is not a list"))),
            }
            if let Some(v) = obj.get("ValidationOptions").filter(|v| v.is_object()) {
                keep("ValidationOptions", Some(v.clone()));
            }
        }
        _ => return Err(bad("is not an option mailpush keeps".into())),
    }
    Ok(Value::Object(out))
}

/// `POST /v2/email/configuration-sets`. `TrackingOptions`, `DeliveryOptions`, `ReputationOptions`,
/// `SendingOptions` and `SuppressionOptions` are checked and kept (`GetConfigurationSet` answers them); `Tags`,
/// `VdmOptions` and `ArchivingOptions` are accepted and not kept.
pub(crate) async fn create(State(state): State<AppState>, signed: Signed) -> Result<Json<Value>, AwsError> {
    let input: CreateSetInput = signed.json()?;
    check_name("ConfigurationSetName", &input.configuration_set_name)?;
    let body: Value = signed.json()?;
    let mut options = serde_json::Map::new();
    for key in OPTIONS {
        if let Some(v) = body.get(key).filter(|v| !v.is_null()) {
            options.insert(key.to_string(), option_value(key, v)?);
        }
    }
    match state
        .core
        .create_configuration_set(&signed.ctx, &input.configuration_set_name, options)
        .await?
    {
        SetOutcome::Exists => Err(AwsError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "AlreadyExistsException",
            format!("Configuration set <{}> already exists.", input.configuration_set_name),
        )),
        _ => Ok(Json(json!({}))),
    }
}

/// `GET /v2/email/configuration-sets/{name}`.
pub(crate) async fn get(
    State(state): State<AppState>,
    Path(name): Path<String>,
    signed: Signed,
) -> Result<Json<Value>, AwsError> {
    let name = decode_component(&name);
    let set = state
        .core
        .configuration_set(&signed.ctx, &name)
        .await?
        .ok_or_else(|| no_set(&name))?;
    Ok(Json(set_reply(&set.name, &set.options)))
}

/// `GetConfigurationSet`'s reply: the kept options, with SES's defaults for those never set (TLS `OPTIONAL`,
/// reputation metrics off, sending enabled).
fn set_reply(name: &str, options_json: &str) -> Value {
    let options: Value = serde_json::from_str(options_json).unwrap_or_else(|_| json!({}));
    let with_default = |key: &str, field: &str, default: Value| {
        let mut v = options
            .get(key)
            .cloned()
            .filter(Value::is_object)
            .unwrap_or_else(|| json!({}));
        if v.get(field).is_none() {
            v[field] = default;
        }
        v
    };
    let mut reply = json!({
        "ConfigurationSetName": name,
        "DeliveryOptions": with_default("DeliveryOptions", "TlsPolicy", json!("OPTIONAL")),
        "ReputationOptions": with_default("ReputationOptions", "ReputationMetricsEnabled", json!(false)),
        "SendingOptions": with_default("SendingOptions", "SendingEnabled", json!(true)),
        "Tags": [],
    });
    if let Some(t) = options
        .get("TrackingOptions")
        .filter(|t| t.get("CustomRedirectDomain").is_some())
    {
        reply["TrackingOptions"] = t.clone();
    }
    if let Some(s) = options.get("SuppressionOptions").filter(|s| s.is_object()) {
        reply["SuppressionOptions"] = s.clone();
    }
    reply
}

/// `PUT /v2/email/configuration-sets/{name}/{tracking-options | delivery-options | reputation-options | sending |
/// suppression-options}`: the body (less the name) is the option object, which replaces the kept one.
async fn put_option(state: &AppState, name: &str, signed: &Signed, key: &str) -> Result<Json<Value>, AwsError> {
    let name = decode_component(name);
    let body: Value = signed.json()?;
    let value = option_value(key, &body)?;
    match state
        .core
        .put_configuration_set_option(&signed.ctx, &name, key, value)
        .await?
    {
        SetOutcome::Missing => Err(no_set(&name)),
        _ => Ok(Json(json!({}))),
    }
}

/// `PutConfigurationSetTrackingOptions`: kept and answered; tracking links use `public_base_url` (the custom
/// redirect domain is not used).
pub(crate) async fn put_tracking(
    State(state): State<AppState>,
    Path(name): Path<String>,
    signed: Signed,
) -> Result<Json<Value>, AwsError> {
    put_option(&state, &name, &signed, "TrackingOptions").await
}

/// `PutConfigurationSetDeliveryOptions`: kept and answered; delivery keeps mailpush's own TLS policy, source
/// pools and retry period.
pub(crate) async fn put_delivery(
    State(state): State<AppState>,
    Path(name): Path<String>,
    signed: Signed,
) -> Result<Json<Value>, AwsError> {
    put_option(&state, &name, &signed, "DeliveryOptions").await
}

/// `PutConfigurationSetReputationOptions`: kept and answered.
pub(crate) async fn put_reputation(
    State(state): State<AppState>,
    Path(name): Path<String>,
    signed: Signed,
) -> Result<Json<Value>, AwsError> {
    put_option(&state, &name, &signed, "ReputationOptions").await
}

/// `PutConfigurationSetSendingOptions`: enforced — with `SendingEnabled` false, sends naming the set are refused
/// (`SendingPausedException`).
pub(crate) async fn put_sending(
    State(state): State<AppState>,
    Path(name): Path<String>,
    signed: Signed,
) -> Result<Json<Value>, AwsError> {
    put_option(&state, &name, &signed, "SendingOptions").await
}

/// `PutConfigurationSetSuppressionOptions`: kept and answered; mailpush's suppression lists apply to every send.
pub(crate) async fn put_suppression(
    State(state): State<AppState>,
    Path(name): Path<String>,
    signed: Signed,
) -> Result<Json<Value>, AwsError> {
    put_option(&state, &name, &signed, "SuppressionOptions").await
}

/// `GET /v2/email/configuration-sets`.
pub(crate) async fn list(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    signed: Signed,
) -> Result<Json<Value>, AwsError> {
    let names: Vec<Value> = state
        .core
        .configuration_sets(&signed.ctx)
        .await?
        .into_iter()
        .map(|s| json!(s.name))
        .collect();
    Ok(Json(paged_reply("ConfigurationSets", names, query.as_deref())?))
}

/// `DELETE /v2/email/configuration-sets/{name}`.
pub(crate) async fn delete(
    State(state): State<AppState>,
    Path(name): Path<String>,
    signed: Signed,
) -> Result<Json<Value>, AwsError> {
    let name = decode_component(&name);
    match state.core.delete_configuration_set(&signed.ctx, &name).await? {
        SetOutcome::Missing => Err(no_set(&name)),
        _ => Ok(Json(json!({}))),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SnsDestination {
    topic_arn: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct HttpEndpoint {
    url: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct Definition {
    enabled: Option<bool>,
    matching_event_types: Vec<String>,
    sns_destination: Option<SnsDestination>,
    http_endpoint: Option<HttpEndpoint>,
    kinesis_firehose_destination: Option<Value>,
    cloud_watch_destination: Option<Value>,
    pinpoint_destination: Option<Value>,
    event_bridge_destination: Option<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateDestinationInput {
    event_destination_name: String,
    event_destination: Definition,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UpdateDestinationInput {
    event_destination: Definition,
}

/// The stored row of a destination definition, or the AWS error of a bad one.
fn destination_row(core: &Mailpush, set: &str, name: &str, d: Definition) -> Result<EventDestinationRow, AwsError> {
    check_name("EventDestinationName", name)?;
    if d.kinesis_firehose_destination.is_some()
        || d.cloud_watch_destination.is_some()
        || d.pinpoint_destination.is_some()
        || d.event_bridge_destination.is_some()
    {
        return Err(AwsError::bad_request(
            "mailpush posts events to HTTP(S) endpoints only: give SnsDestination.TopicArn (or HttpEndpoint.Url) \
             as the endpoint's URL",
        ));
    }
    let url = match (d.sns_destination, d.http_endpoint) {
        (Some(sns), None) => sns.topic_arn,
        (None, Some(http)) => http.url,
        _ => {
            return Err(AwsError::bad_request(
                "EventDestination needs exactly one destination: SnsDestination.TopicArn (or HttpEndpoint.Url) \
                 holding an http(s) URL",
            ));
        }
    };
    if let Err(why) = core.check_event_endpoint(&url)? {
        return Err(AwsError::bad_request(format!(
            "the event destination {url:?} is not an endpoint mailpush may post to: {why}"
        )));
    }
    if d.matching_event_types.is_empty() {
        return Err(AwsError::bad_request(
            "MatchingEventTypes must hold at least one event type",
        ));
    }
    let mut types: Vec<&str> = Vec::new();
    for t in &d.matching_event_types {
        let known = EVENT_TYPES.iter().find(|k| k == &t).ok_or_else(|| {
            AwsError::bad_request(format!(
                "MatchingEventTypes: {t:?} is not one of {}",
                EVENT_TYPES.join(", ")
            ))
        })?;
        if !types.contains(known) {
            types.push(known);
        }
    }
    Ok(EventDestinationRow {
        set_name: set.to_string(),
        name: name.to_string(),
        enabled: i64::from(d.enabled.unwrap_or(false)),
        url,
        event_types: types.join(","),
    })
}

/// `POST /v2/email/configuration-sets/{name}/event-destinations`.
pub(crate) async fn create_destination(
    State(state): State<AppState>,
    Path(set): Path<String>,
    signed: Signed,
) -> Result<Json<Value>, AwsError> {
    let set = decode_component(&set);
    let input: CreateDestinationInput = signed.json()?;
    let row = destination_row(
        &state.core,
        &set,
        &input.event_destination_name,
        input.event_destination,
    )?;
    match state.core.put_event_destination(&signed.ctx, &row, true).await? {
        SetOutcome::Missing => Err(no_set(&set)),
        SetOutcome::Exists => Err(AwsError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "AlreadyExistsException",
            format!("Event destination <{}> already exists in <{set}>.", row.name),
        )),
        SetOutcome::Done => Ok(Json(json!({}))),
    }
}

/// `PUT /v2/email/configuration-sets/{name}/event-destinations/{dest}`.
pub(crate) async fn update_destination(
    State(state): State<AppState>,
    Path((set, name)): Path<(String, String)>,
    signed: Signed,
) -> Result<Json<Value>, AwsError> {
    let (set, name) = (decode_component(&set), decode_component(&name));
    let input: UpdateDestinationInput = signed.json()?;
    let row = destination_row(&state.core, &set, &name, input.event_destination)?;
    if state.core.configuration_set(&signed.ctx, &set).await?.is_none() {
        return Err(no_set(&set));
    }
    match state.core.put_event_destination(&signed.ctx, &row, false).await? {
        SetOutcome::Missing => Err(AwsError::not_found(format!(
            "Event destination <{name}> does not exist in <{set}>."
        ))),
        _ => Ok(Json(json!({}))),
    }
}

/// `DELETE /v2/email/configuration-sets/{name}/event-destinations/{dest}`.
pub(crate) async fn delete_destination(
    State(state): State<AppState>,
    Path((set, name)): Path<(String, String)>,
    signed: Signed,
) -> Result<Json<Value>, AwsError> {
    let (set, name) = (decode_component(&set), decode_component(&name));
    if state.core.configuration_set(&signed.ctx, &set).await?.is_none() {
        return Err(no_set(&set));
    }
    match state.core.delete_event_destination(&signed.ctx, &set, &name).await? {
        SetOutcome::Missing => Err(AwsError::not_found(format!(
            "Event destination <{name}> does not exist in <{set}>."
        ))),
        _ => Ok(Json(json!({}))),
    }
}

/// `GET /v2/email/configuration-sets/{name}/event-destinations`.
pub(crate) async fn get_destinations(
    State(state): State<AppState>,
    Path(set): Path<String>,
    signed: Signed,
) -> Result<Json<Value>, AwsError> {
    let set = decode_component(&set);
    let rows = state
        .core
        .event_destinations(&signed.ctx, &set)
        .await?
        .ok_or_else(|| no_set(&set))?;
    let list: Vec<Value> = rows
        .into_iter()
        .map(|d| {
            json!({
                "Name": d.name,
                "Enabled": d.enabled != 0,
                "MatchingEventTypes": d.event_types.split(',').collect::<Vec<_>>(),
                "SnsDestination": { "TopicArn": d.url },
            })
        })
        .collect();
    Ok(Json(json!({ "EventDestinations": list })))
}

/// A `MessageTag` of `EmailTags`, `DefaultEmailTags` or `ReplacementTags`.
#[derive(Deserialize, Clone)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct MessageTag {
    name: String,
    value: String,
}

/// AWS's rule for tag names and values: 1–256 ASCII letters, digits, `_`, `-`; `ses:` names are SES's own.
fn check_tags(tags: &[MessageTag]) -> Result<serde_json::Map<String, Value>, AwsError> {
    let ok = |s: &str| {
        !s.is_empty() && s.len() <= 256 && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    };
    let mut out = serde_json::Map::new();
    for t in tags {
        if !ok(&t.name) || !ok(&t.value) {
            return Err(AwsError::bad_request(format!(
                "the message tag {:?}={:?} is not valid: names and values are 1 to 256 characters, letters, \
                 numbers, underscores (_) and dashes (-)",
                t.name, t.value
            )));
        }
        out.insert(t.name.clone(), json!(t.value));
    }
    Ok(out)
}

/// `ListManagementOptions` of a send.
#[derive(Deserialize, Clone)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ListManagementOptions {
    contact_list_name: String,
    topic_name: Option<String>,
}

/// The configuration set, tags and list management of one send.
#[derive(Default, Clone)]
pub(crate) struct Tagging {
    /// `ConfigurationSetName` (empty = none).
    pub(crate) set: Option<String>,
    /// `EmailTags`, validated.
    pub(crate) tags: serde_json::Map<String, Value>,
    /// `ListManagementOptions`.
    pub(crate) list: Option<ListManagementOptions>,
}

impl Tagging {
    /// From a request's `ConfigurationSetName` and tags (the later lists win over the earlier).
    pub(crate) fn new(set: Option<String>, lists: &[&[MessageTag]]) -> Result<Tagging, AwsError> {
        let mut tags = serde_json::Map::new();
        for list in lists {
            tags.extend(check_tags(list)?);
        }
        Ok(Tagging {
            set: set.filter(|s| !s.is_empty()),
            tags,
            list: None,
        })
    }

    /// With `ListManagementOptions`.
    pub(crate) fn with_list(mut self, list: Option<ListManagementOptions>) -> Tagging {
        self.list = list;
        self
    }
}

/// The SES additions of a send to `rcpts` with `tagging`: an unknown contact list or topic is a
/// `NotFoundException`, as AWS answers. A recipient who is a contact of the list and opted out of the topic
/// (explicitly, or by the topic's default) or of the whole list is not sent to: the request succeeds and the
/// recipient is dropped (as SES, which accepts the mail and does not deliver it).
async fn extras(
    core: &Mailpush,
    ctx: &AccountContext,
    tagging: &Tagging,
    rcpts: &[String],
    template_name: Option<String>,
) -> Result<SesSendExtras, AwsError> {
    let mut extras = SesSendExtras {
        set: tagging.set.clone(),
        tags: tagging.tags.clone(),
        template_name,
        ..SesSendExtras::default()
    };
    if let Some(opts) = &tagging.list {
        let list = core
            .contact_list(ctx, &opts.contact_list_name)
            .await?
            .ok_or_else(|| AwsError::not_found(format!("List with name {} does not exist.", opts.contact_list_name)))?;
        let topic = opts.topic_name.as_deref().filter(|t| !t.is_empty());
        if let Some(t) = topic {
            let topics: Vec<Value> = serde_json::from_str(&list.topics).unwrap_or_default();
            if !topics.iter().any(|x| x["TopicName"] == t) {
                return Err(AwsError::not_found(format!(
                    "Topic {t} does not exist in list {}.",
                    list.name
                )));
            }
        }
        for r in rcpts {
            let contact = core.contact(ctx, &list.name, &r.to_ascii_lowercase()).await?;
            if !receives(&list, contact.as_ref(), topic) {
                extras.opted_out.push(r.clone());
            }
        }
        extras.list = Some(ListManagement {
            list: list.name,
            topic: topic.unwrap_or("").to_string(),
        });
    }
    Ok(extras)
}

/// The reply to an SES send that admission did not refuse.
fn answer(outcome: SesSendOutcome, extras: &SesSendExtras) -> Result<String, AwsError> {
    let set = extras.set.as_deref().unwrap_or_default();
    match outcome {
        SesSendOutcome::Accepted(id) => Ok(id.as_str().to_string()),
        SesSendOutcome::UnknownSet => Err(no_set(set)),
        SesSendOutcome::SendingPaused => Err(sending_paused(set)),
    }
}

/// SES's refusal of a send with a configuration set whose sending is disabled.
pub(crate) fn sending_paused(set: &str) -> AwsError {
    AwsError::new(
        axum::http::StatusCode::BAD_REQUEST,
        "SendingPausedException",
        format!("Sending is paused for configuration set <{set}>: its SendingOptions.SendingEnabled is false."),
    )
}

/// Sends `req` (Simple or Template content) with the set, tags and list management of `tagging`.
pub(crate) async fn send(
    core: &Mailpush,
    ctx: &AccountContext,
    req: SendRequest,
    tagging: &Tagging,
    template_name: Option<String>,
) -> Result<String, AwsError> {
    let rcpts = request_recipients(&req);
    let extras = extras(core, ctx, tagging, &rcpts, template_name).await?;
    let outcome = core.send_email_ses(ctx, req, &extras).await?;
    answer(outcome, &extras)
}

/// Sends raw MIME with the set, tags and list management of `tagging` (the one-click `List-Unsubscribe` headers
/// are added when the mail has no `List-Unsubscribe` of its own).
pub(crate) async fn send_raw(
    core: &Mailpush,
    who: &Submitter,
    sub: RawSubmission,
    tagging: &Tagging,
) -> Result<String, AwsError> {
    let rcpts: Vec<String> = sub
        .recipients
        .iter()
        .filter_map(|r| mailpush_model::EmailAddress::parse(r.trim()).ok())
        .map(|a| a.as_str().to_ascii_lowercase())
        .collect();
    let extras = extras(core, &who.account, tagging, &rcpts, None).await?;
    let outcome = core.submit_raw_ses(who, sub, &extras).await?;
    answer(outcome, &extras)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_checked_kept_and_answered_with_defaults() {
        let kept = option_value(
            "DeliveryOptions",
            &json!({ "TlsPolicy": "REQUIRE", "MaxDeliverySeconds": 600, "Unknown": 1 }),
        )
        .expect("valid");
        assert_eq!(kept, json!({ "TlsPolicy": "REQUIRE", "MaxDeliverySeconds": 600 }));
        for (key, bad) in [
            ("DeliveryOptions", json!({ "TlsPolicy": "MAYBE" })),
            ("DeliveryOptions", json!({ "MaxDeliverySeconds": 60 })),
            ("SendingOptions", json!({ "SendingEnabled": "no" })),
            ("SuppressionOptions", json!({ "SuppressedReasons": ["SPAM"] })),
            ("TrackingOptions", json!({ "CustomRedirectDomain": "not a domain" })),
            (
                "TrackingOptions",
                json!({ "CustomRedirectDomain": "t.example.com", "HttpsPolicy": "ALWAYS" }),
            ),
        ] {
            let e = option_value(key, &bad).expect_err("refused");
            assert_eq!(e.kind, "BadRequestException", "{key} {bad}");
        }
        let reply = set_reply("m", "{}");
        assert_eq!(reply["SendingOptions"]["SendingEnabled"], true);
        assert_eq!(reply["DeliveryOptions"]["TlsPolicy"], "OPTIONAL");
        assert_eq!(reply["ReputationOptions"]["ReputationMetricsEnabled"], false);
        assert!(reply.get("TrackingOptions").is_none() && reply.get("SuppressionOptions").is_none());
        let reply = set_reply(
            "m",
            r#"{"SendingOptions":{"SendingEnabled":false},"TrackingOptions":{"CustomRedirectDomain":"t.example.com"},
                "SuppressionOptions":{"SuppressedReasons":["BOUNCE"]}}"#,
        );
        assert_eq!(reply["SendingOptions"]["SendingEnabled"], false);
        assert_eq!(reply["TrackingOptions"]["CustomRedirectDomain"], "t.example.com");
        assert_eq!(reply["SuppressionOptions"]["SuppressedReasons"], json!(["BOUNCE"]));
    }
}
