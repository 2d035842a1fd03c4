//! Configuration sets and their event destinations: `CreateConfigurationSet`, `GetConfigurationSet`,
//! `ListConfigurationSets`, `DeleteConfigurationSet`, `CreateConfigurationSetEventDestination`,
//! `GetConfigurationSetEventDestinations`, `UpdateConfigurationSetEventDestination`,
//! `DeleteConfigurationSetEventDestination`; and the `ConfigurationSetName` / `EmailTags` of the sends.
//!
//! mailpush posts events to HTTP(S) endpoints, not to SNS, Firehose, CloudWatch or EventBridge. A destination's
//! endpoint is given as `SnsDestination.TopicArn` holding the URL (the SDKs validate request shapes, so an
//! endpoint has to travel in a field they know; an SNS topic with an HTTPS subscription is what it stands for),
//! or as mailpush's own `HttpEndpoint {Url}` (for clients that send JSON themselves). Other destination kinds and
//! real ARNs are refused with `BadRequestException`. Events are SES's event JSON, signed as mailpush's callbacks.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use mailpush_core::configuration_sets::{EVENT_TYPES, SesSendExtras, SetOutcome};
use mailpush_core::contact_lists::receives;
use mailpush_core::{AccountContext, Mailpush, SendRequest};
use mailpush_store::EventDestinationRow;
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

/// `POST /v2/email/configuration-sets`. The options (tracking, delivery, reputation, sending, suppression, VDM)
/// are accepted and not kept.
pub(crate) async fn create(State(state): State<AppState>, signed: Signed) -> Result<Json<Value>, AwsError> {
    let input: CreateSetInput = signed.json()?;
    check_name("ConfigurationSetName", &input.configuration_set_name)?;
    match state
        .core
        .create_configuration_set(&signed.ctx, &input.configuration_set_name)
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
    Ok(Json(json!({
        "ConfigurationSetName": set.name,
        "SendingOptions": { "SendingEnabled": true },
        "Tags": [],
    })))
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

/// The recipient addresses of a send, lowercase.
fn recipients(req: &SendRequest) -> Vec<String> {
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

/// Sends `req` with the set, tags and list management of `tagging`: an unknown set, contact list or topic is a
/// `NotFoundException`, as AWS answers. A recipient who is a contact of the list and opted out of the topic
/// (explicitly, or by the topic's default) or of the whole list is not sent to: the request succeeds and the
/// recipient is dropped (as SES, which accepts the mail and does not deliver it).
pub(crate) async fn send(
    core: &Mailpush,
    ctx: &AccountContext,
    req: SendRequest,
    tagging: &Tagging,
) -> Result<String, AwsError> {
    let mut extras = SesSendExtras {
        set: tagging.set.clone(),
        tags: tagging.tags.clone(),
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
        let rcpts = recipients(&req);
        for r in &rcpts {
            let contact = core.contact(ctx, &list.name, r).await?;
            if !receives(&list, contact.as_ref(), topic) {
                extras.opted_out.push(r.clone());
            }
        }
        if let [only] = rcpts.as_slice() {
            extras.list_unsubscribe = core.topic_unsubscribe_url(ctx, &list.name, topic.unwrap_or(""), only);
        }
    }
    match core.send_email_ses(ctx, req, &extras).await? {
        Some(id) => Ok(id.as_str().to_string()),
        None => Err(no_set(extras.set.as_deref().unwrap_or_default())),
    }
}
