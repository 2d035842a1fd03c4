//! Contact lists and topics: `CreateContactList`, `GetContactList`, `UpdateContactList`, `ListContactLists`,
//! `DeleteContactList`,
//! `CreateContact`, `GetContact`, `ListContacts`, `UpdateContact`, `DeleteContact`; the one-click topic
//! unsubscribe page (`/v2/email/list-unsubscribe/{token}`, unsigned: the token is the credential).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use mailpush_core::SetOutcome;
use mailpush_model::sesv2::{ContactListRow, ContactRow};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{AppState, AwsError, Signed, decode_component, epoch_seconds, page};

fn no_list(name: &str) -> AwsError {
    AwsError::not_found(format!("List with name {name} does not exist."))
}

fn check_list_name(name: &str) -> Result<(), AwsError> {
    if name.is_empty() || name.len() > 64 || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        return Err(AwsError::bad_request(
            "ContactListName must be 1 to 64 characters: letters, numbers, hyphens (-) and underscores (_)",
        ));
    }
    Ok(())
}

fn check_status(field: &str, s: &str) -> Result<(), AwsError> {
    match s {
        "OPT_IN" | "OPT_OUT" => Ok(()),
        other => Err(AwsError::bad_request(format!(
            "{field} {other:?} must be OPT_IN or OPT_OUT"
        ))),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Topic {
    topic_name: String,
    display_name: String,
    #[serde(default)]
    description: String,
    default_subscription_status: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateListInput {
    contact_list_name: String,
    #[serde(default)]
    topics: Vec<Topic>,
    #[serde(default)]
    description: String,
}

/// The stored form of a list's `Topics`: at most 20, each with a name, a display name and a default status, no
/// name twice.
fn checked_topics(input: &[Topic]) -> Result<Vec<Value>, AwsError> {
    if input.len() > 20 {
        return Err(AwsError::bad_request("a contact list has at most 20 topics"));
    }
    let mut topics = Vec::new();
    for t in input {
        if t.topic_name.is_empty() || t.display_name.is_empty() {
            return Err(AwsError::bad_request("every topic needs a TopicName and a DisplayName"));
        }
        check_status("DefaultSubscriptionStatus", &t.default_subscription_status)?;
        if topics.iter().any(|x: &Value| x["TopicName"] == t.topic_name.as_str()) {
            return Err(AwsError::bad_request(format!(
                "the topic {} is named twice",
                t.topic_name
            )));
        }
        topics.push(json!({
            "TopicName": t.topic_name,
            "DisplayName": t.display_name,
            "Description": t.description,
            "DefaultSubscriptionStatus": t.default_subscription_status,
        }));
    }
    Ok(topics)
}

/// `POST /v2/email/contact-lists`. `Tags` are accepted and not kept.
pub(crate) async fn create_list(State(state): State<AppState>, signed: Signed) -> Result<Json<Value>, AwsError> {
    let input: CreateListInput = signed.json()?;
    check_list_name(&input.contact_list_name)?;
    let topics = checked_topics(&input.topics)?;
    let now = state.core.now_ms();
    let row = ContactListRow {
        name: input.contact_list_name.clone(),
        description: input.description,
        topics: Value::Array(topics).to_string(),
        created_ms: now,
        updated_ms: now,
    };
    match state.core.create_contact_list(&signed.ctx, &row).await? {
        SetOutcome::Exists => Err(AwsError::new(
            StatusCode::BAD_REQUEST,
            "AlreadyExistsException",
            format!("List with name {} already exists.", row.name),
        )),
        _ => Ok(Json(json!({}))),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UpdateListInput {
    topics: Option<Vec<Topic>>,
    description: Option<String>,
}

/// `PUT /v2/email/contact-lists/{name}`: `Topics` (when given) replace the list's topics, `Description` (when
/// given) its description. Contacts keep their preferences; one for a topic no longer in the list is ignored.
pub(crate) async fn update_list(
    State(state): State<AppState>,
    Path(name): Path<String>,
    signed: Signed,
) -> Result<Json<Value>, AwsError> {
    let name = decode_component(&name);
    let input: UpdateListInput = signed.json()?;
    let mut row = list_of(&state, &signed, &name).await?;
    if let Some(topics) = &input.topics {
        row.topics = Value::Array(checked_topics(topics)?).to_string();
    }
    if let Some(description) = input.description {
        row.description = description;
    }
    row.updated_ms = state.core.now_ms();
    match state.core.update_contact_list(&signed.ctx, &row).await? {
        SetOutcome::Missing => Err(no_list(&name)),
        _ => Ok(Json(json!({}))),
    }
}

fn topics_of(row: &ContactListRow) -> Vec<Value> {
    serde_json::from_str(&row.topics).unwrap_or_default()
}

/// `GET /v2/email/contact-lists/{name}`.
pub(crate) async fn get_list(
    State(state): State<AppState>,
    Path(name): Path<String>,
    signed: Signed,
) -> Result<Json<Value>, AwsError> {
    let name = decode_component(&name);
    let row = list_of(&state, &signed, &name).await?;
    Ok(Json(json!({
        "ContactListName": row.name,
        "Topics": topics_of(&row),
        "Description": row.description,
        "CreatedTimestamp": epoch_seconds(row.created_ms),
        "LastUpdatedTimestamp": epoch_seconds(row.updated_ms),
        "Tags": [],
    })))
}

/// `GET /v2/email/contact-lists`.
pub(crate) async fn list_lists(
    State(state): State<AppState>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
    signed: Signed,
) -> Result<Json<Value>, AwsError> {
    let items: Vec<Value> = state
        .core
        .contact_lists(&signed.ctx)
        .await?
        .into_iter()
        .map(|r| json!({ "ContactListName": r.name, "LastUpdatedTimestamp": epoch_seconds(r.updated_ms) }))
        .collect();
    Ok(Json(crate::paged_reply("ContactLists", items, query.as_deref())?))
}

/// `DELETE /v2/email/contact-lists/{name}`.
pub(crate) async fn delete_list(
    State(state): State<AppState>,
    Path(name): Path<String>,
    signed: Signed,
) -> Result<Json<Value>, AwsError> {
    let name = decode_component(&name);
    match state.core.delete_contact_list(&signed.ctx, &name).await? {
        SetOutcome::Missing => Err(no_list(&name)),
        _ => Ok(Json(json!({}))),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TopicPreference {
    topic_name: String,
    subscription_status: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct ContactInput {
    email_address: String,
    topic_preferences: Vec<TopicPreference>,
    unsubscribe_all: bool,
    attributes_data: String,
}

impl ContactInput {
    /// The stored contact `email` of list `list` (stored as `row`) that this input describes.
    fn into_row(
        self,
        row: &ContactListRow,
        list: &str,
        email: &str,
        created_ms: i64,
        updated_ms: i64,
    ) -> Result<ContactRow, AwsError> {
        Ok(ContactRow {
            list_name: list.to_string(),
            email: email.to_string(),
            preferences: preferences(row, &self.topic_preferences)?,
            unsubscribe_all: i64::from(self.unsubscribe_all),
            attributes: self.attributes_data,
            created_ms,
            updated_ms,
        })
    }
}

/// The list, or its `NotFoundException`.
async fn list_of(state: &AppState, signed: &Signed, name: &str) -> Result<ContactListRow, AwsError> {
    state
        .core
        .contact_list(&signed.ctx, name)
        .await?
        .ok_or_else(|| no_list(name))
}

/// The stored preferences of `prefs`, each naming a topic of `list`.
fn preferences(list: &ContactListRow, prefs: &[TopicPreference]) -> Result<String, AwsError> {
    let topics = topics_of(list);
    let mut out = serde_json::Map::new();
    for p in prefs {
        if !topics.iter().any(|t| t["TopicName"] == p.topic_name.as_str()) {
            return Err(AwsError::bad_request(format!(
                "the topic {} is not a topic of the list {}",
                p.topic_name, list.name
            )));
        }
        check_status("SubscriptionStatus", &p.subscription_status)?;
        out.insert(p.topic_name.clone(), json!(p.subscription_status));
    }
    Ok(Value::Object(out).to_string())
}

fn email_of(raw: &str) -> Result<String, AwsError> {
    mailpush_model::EmailAddress::parse(raw.trim())
        .map(|a| a.as_str().to_ascii_lowercase())
        .map_err(|e| AwsError::bad_request(format!("EmailAddress {raw:?}: {e}")))
}

/// The list name and the contact's address of a `/v2/email/contact-lists/{name}/contacts/{email}` path.
fn contact_path(list: &str, email: &str) -> Result<(String, String), AwsError> {
    Ok((decode_component(list), email_of(&decode_component(email))?))
}

/// `POST /v2/email/contact-lists/{name}/contacts`.
pub(crate) async fn create_contact(
    State(state): State<AppState>,
    Path(list): Path<String>,
    signed: Signed,
) -> Result<Json<Value>, AwsError> {
    let list = decode_component(&list);
    let input: ContactInput = signed.json()?;
    let email = email_of(&input.email_address)?;
    let row = list_of(&state, &signed, &list).await?;
    let now = state.core.now_ms();
    let contact = input.into_row(&row, &list, &email, now, now)?;
    match state.core.put_contact(&signed.ctx, &contact, true).await? {
        SetOutcome::Exists => Err(AwsError::new(
            StatusCode::BAD_REQUEST,
            "AlreadyExistsException",
            format!("Contact already exists in list {list}: {email}"),
        )),
        _ => Ok(Json(json!({}))),
    }
}

/// `PUT /v2/email/contact-lists/{name}/contacts/{email}`.
pub(crate) async fn update_contact(
    State(state): State<AppState>,
    Path((list, email)): Path<(String, String)>,
    signed: Signed,
) -> Result<Json<Value>, AwsError> {
    let (list, email) = contact_path(&list, &email)?;
    let input: ContactInput = signed.json()?;
    let row = list_of(&state, &signed, &list).await?;
    let contact = input.into_row(&row, &list, &email, 0, state.core.now_ms())?;
    match state.core.put_contact(&signed.ctx, &contact, false).await? {
        SetOutcome::Missing => Err(no_contact(&list, &email)),
        _ => Ok(Json(json!({}))),
    }
}

fn no_contact(list: &str, email: &str) -> AwsError {
    AwsError::not_found(format!("Contact {email} does not exist in list {list}."))
}

/// A contact as `GetContact` and `ListContacts` show it: its explicit preferences and the defaults of the
/// topics it has none for.
fn contact_json(list: &ContactListRow, c: &ContactRow) -> Value {
    let prefs: serde_json::Map<String, Value> = serde_json::from_str(&c.preferences).unwrap_or_default();
    let explicit: Vec<Value> = prefs
        .iter()
        .map(|(k, v)| json!({ "TopicName": k, "SubscriptionStatus": v }))
        .collect();
    let defaults: Vec<Value> = topics_of(list)
        .iter()
        .filter(|t| t["TopicName"].as_str().is_some_and(|n| !prefs.contains_key(n)))
        .map(|t| json!({ "TopicName": t["TopicName"], "SubscriptionStatus": t["DefaultSubscriptionStatus"] }))
        .collect();
    json!({
        "ContactListName": c.list_name,
        "EmailAddress": c.email,
        "TopicPreferences": explicit,
        "TopicDefaultPreferences": defaults,
        "UnsubscribeAll": c.unsubscribe_all != 0,
        "AttributesData": c.attributes,
        "CreatedTimestamp": epoch_seconds(c.created_ms),
        "LastUpdatedTimestamp": epoch_seconds(c.updated_ms),
    })
}

/// `GET /v2/email/contact-lists/{name}/contacts/{email}`.
pub(crate) async fn get_contact(
    State(state): State<AppState>,
    Path((list, email)): Path<(String, String)>,
    signed: Signed,
) -> Result<Json<Value>, AwsError> {
    let (list, email) = contact_path(&list, &email)?;
    let row = list_of(&state, &signed, &list).await?;
    let c = state
        .core
        .contact(&signed.ctx, &list, &email)
        .await?
        .ok_or_else(|| no_contact(&list, &email))?;
    Ok(Json(contact_json(&row, &c)))
}

/// `DELETE /v2/email/contact-lists/{name}/contacts/{email}`.
pub(crate) async fn delete_contact(
    State(state): State<AppState>,
    Path((list, email)): Path<(String, String)>,
    signed: Signed,
) -> Result<Json<Value>, AwsError> {
    let (list, email) = contact_path(&list, &email)?;
    list_of(&state, &signed, &list).await?;
    match state.core.delete_contact(&signed.ctx, &list, &email).await? {
        SetOutcome::Missing => Err(no_contact(&list, &email)),
        _ => Ok(Json(json!({}))),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TopicFilter {
    topic_name: Option<String>,
    #[serde(default)]
    use_default_if_preference_unavailable: bool,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct Filter {
    filtered_status: Option<String>,
    topic_filter: Option<TopicFilter>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct ListContactsInput {
    filter: Filter,
    page_size: Option<i64>,
    next_token: Option<String>,
}

/// `GET` (as AWS defines it, with a JSON body) or `POST /v2/email/contact-lists/{name}/contacts/list`.
/// `Filter.FilteredStatus` keeps the contacts whose status for `TopicFilter.TopicName` is that one (their
/// explicit preference, or with `UseDefaultIfPreferenceUnavailable` the topic's default); without a topic, the
/// status is `OPT_OUT` for contacts that unsubscribed from everything and `OPT_IN` for the others.
pub(crate) async fn list_contacts(
    State(state): State<AppState>,
    Path(list): Path<String>,
    signed: Signed,
) -> Result<Json<Value>, AwsError> {
    let list = decode_component(&list);
    let input: ListContactsInput = signed.json()?;
    let row = list_of(&state, &signed, &list).await?;
    if let Some(s) = input.filter.filtered_status.as_deref() {
        check_status("FilteredStatus", s)?;
    }
    let topic = input.filter.topic_filter.as_ref().and_then(|t| t.topic_name.clone());
    let use_default = input
        .filter
        .topic_filter
        .as_ref()
        .is_some_and(|t| t.use_default_if_preference_unavailable);
    let topics = topics_of(&row);
    if let Some(t) = &topic
        && !topics.iter().any(|x| x["TopicName"] == t.as_str())
    {
        return Err(AwsError::bad_request(format!(
            "the topic {t} is not a topic of the list {list}"
        )));
    }
    let contacts = state.core.contacts(&signed.ctx, &list).await?;
    let mut items = Vec::new();
    for c in &contacts {
        let status: Option<String> = match &topic {
            None => Some(if c.unsubscribe_all != 0 { "OPT_OUT" } else { "OPT_IN" }.to_string()),
            Some(t) => {
                let prefs: serde_json::Map<String, Value> = serde_json::from_str(&c.preferences).unwrap_or_default();
                match prefs.get(t).and_then(|v| v.as_str()) {
                    Some(s) => Some(s.to_string()),
                    None if use_default => topics
                        .iter()
                        .find(|x| x["TopicName"] == t.as_str())
                        .and_then(|x| x["DefaultSubscriptionStatus"].as_str())
                        .map(str::to_string),
                    None => None,
                }
            }
        };
        let keep = match (input.filter.filtered_status.as_deref(), topic.is_some()) {
            (Some(want), _) => status.as_deref() == Some(want),
            (None, true) => status.is_some(),
            (None, false) => true,
        };
        if keep {
            let mut v = contact_json(&row, c);
            if let Some(o) = v.as_object_mut() {
                o.remove("ContactListName");
                o.remove("AttributesData");
                o.remove("CreatedTimestamp");
            }
            items.push(v);
        }
    }
    let size = input.page_size.map(|n| n.to_string());
    let (page_items, next) = page(items, input.next_token.as_deref(), size.as_deref())?;
    let mut reply = json!({ "Contacts": page_items });
    if let Some(next) = next {
        reply["NextToken"] = json!(next);
    }
    Ok(Json(reply))
}

fn html_page(status: StatusCode, body: &str) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        format!(
            "<!doctype html><html><head><meta charset=\"utf-8\"><meta name=\"robots\" content=\"noindex\">\
             <title>Unsubscribe</title></head><body style=\"font-family:sans-serif;max-width:36em;margin:3em auto\">\
             {body}</body></html>"
        ),
    )
        .into_response()
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `GET /v2/email/list-unsubscribe/{token}`: a confirmation page (a GET never unsubscribes: link scanners
/// follow links).
pub(crate) async fn unsubscribe_page(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    match state.core.topic_unsubscribe_info(&token) {
        Some((_, info)) => html_page(
            StatusCode::OK,
            &format!(
                "<p>Unsubscribe <b>{}</b> from <b>{}</b>?</p>\
                 <form method=\"post\"><input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\">\
                 <button type=\"submit\">Unsubscribe</button></form>",
                escape(&info.email),
                escape(if info.topic.is_empty() { &info.list } else { &info.topic })
            ),
        ),
        None => html_page(StatusCode::NOT_FOUND, "<p>This link is not valid.</p>"),
    }
}

/// `POST /v2/email/list-unsubscribe/{token}` (RFC 8058 one-click, or the page's button).
pub(crate) async fn unsubscribe(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    match state.core.topic_unsubscribe(&token).await {
        Ok(Some(info)) => html_page(
            StatusCode::OK,
            &format!(
                "<p><b>{}</b> is unsubscribed from <b>{}</b>.</p>",
                escape(&info.email),
                escape(if info.topic.is_empty() { &info.list } else { &info.topic })
            ),
        ),
        Ok(None) => html_page(StatusCode::NOT_FOUND, "<p>This link is not valid.</p>"),
        Err(e) => AwsError::from_core(e).into_response(),
    }
}
