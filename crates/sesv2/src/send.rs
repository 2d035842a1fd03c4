//! `SendEmail` (Simple with text / HTML / attachments, Raw, Template) and `SendBulkEmail`, through core's
//! `send_email_ses` (Simple, Template) and `submit_raw_ses` (Raw): the same admission as the Tencent API and SMTP,
//! with the configuration set, tags and list management of SES applied to every kind of content.

use axum::Json;
use base64::Engine;
use mailpush_core::{AccountContext, AttachmentInput, Mailpush, SendContent, SendRequest};
use mailpush_core::{RawSubmission, Submitter};
use mailpush_model::{EmailAddress, Mailbox, TriggerType};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::configuration_sets::{ListManagementOptions, MessageTag, Tagging};
use crate::templates::named_template;
use crate::{AwsError, Signed};

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct Destination {
    to_addresses: Vec<String>,
    cc_addresses: Vec<String>,
    bcc_addresses: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct Text {
    data: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct Body {
    text: Option<Text>,
    html: Option<Text>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Header {
    name: String,
    value: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Attachment {
    raw_content: String,
    file_name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Simple {
    subject: Text,
    body: Body,
    #[serde(default)]
    headers: Vec<Header>,
    #[serde(default)]
    attachments: Vec<Attachment>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Raw {
    data: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct TemplateRef {
    template_name: Option<String>,
    template_arn: Option<String>,
    template_data: Option<String>,
    #[serde(default)]
    headers: Vec<Header>,
}

impl TemplateRef {
    pub(crate) fn template_name_field(&self) -> Option<String> {
        self.template_name.clone().filter(|n| !n.is_empty())
    }

    pub(crate) fn template_arn_field(&self) -> Option<&str> {
        self.template_arn.as_deref().filter(|a| !a.is_empty())
    }
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct Content {
    simple: Option<Simple>,
    raw: Option<Raw>,
    template: Option<TemplateRef>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SendEmailInput {
    from_email_address: Option<String>,
    destination: Option<Destination>,
    #[serde(default)]
    reply_to_addresses: Vec<String>,
    content: Content,
    configuration_set_name: Option<String>,
    #[serde(default)]
    email_tags: Vec<MessageTag>,
    list_management_options: Option<ListManagementOptions>,
}

fn b64(field: &str, raw: &str) -> Result<Vec<u8>, AwsError> {
    let compact: String = raw.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .map_err(|e| AwsError::bad_request(format!("{field} is not valid base64: {e}")))
}

fn headers_json(headers: &[Header]) -> Option<String> {
    if headers.is_empty() {
        return None;
    }
    let map: serde_json::Map<String, Value> = headers
        .iter()
        .map(|h| (h.name.clone(), Value::String(h.value.clone())))
        .collect();
    Some(Value::Object(map).to_string())
}

/// SES sends from any address of a verified identity; mailpush admits only created sender addresses, so the
/// sender is created on first use (core refuses it unless its domain is the account's verified identity).
async fn ensure_sender(core: &Mailpush, ctx: &AccountContext, from: &str) -> Result<(), AwsError> {
    let address = Mailbox::parse(from)
        .map(|m| m.address.as_str().to_ascii_lowercase())
        .or_else(|_| EmailAddress::parse(from.trim()).map(|a| a.as_str().to_ascii_lowercase()))
        .map_err(|e| AwsError::bad_request(format!("FromEmailAddress {from:?}: {e}")))?;
    let senders = core.list_senders(ctx).await.map_err(AwsError::from_core)?;
    if senders.iter().any(|s| s.address.eq_ignore_ascii_case(&address)) {
        return Ok(());
    }
    let domain = address.rsplit_once('@').map(|(_, d)| d).unwrap_or_default();
    match core.get_identity(ctx, domain).await {
        Ok(v) if v.verified => {}
        _ => {
            return Err(AwsError::new(
                axum::http::StatusCode::BAD_REQUEST,
                "MessageRejected",
                format!("Email address is not verified. The following identities failed the check: {address}"),
            ));
        }
    }
    core.create_sender(ctx, &address, None)
        .await
        .map_err(AwsError::from_core)?;
    Ok(())
}

async fn send_one(
    core: &Mailpush,
    ctx: &AccountContext,
    from: &str,
    destination: Destination,
    reply_to: &[String],
    content: Content,
    tagging: &Tagging,
) -> Result<String, AwsError> {
    if let Some(raw) = content.raw {
        return send_raw(
            core,
            ctx,
            Some(from).filter(|f| !f.is_empty()),
            destination,
            &raw,
            tagging,
        )
        .await;
    }
    ensure_sender(core, ctx, from).await?;
    let mut req = SendRequest {
        from: from.to_string(),
        destination: destination.to_addresses,
        cc: destination.cc_addresses,
        bcc: destination.bcc_addresses,
        reply_to: (!reply_to.is_empty()).then(|| reply_to.join(",")),
        trigger: TriggerType::Trigger,
        ..SendRequest::default()
    };
    let mut template_name = None;
    match (content.simple, content.template) {
        (Some(simple), None) => {
            req.subject = simple.subject.data;
            req.content = Some(SendContent::Simple {
                html: simple.body.html.map(|t| t.data),
                text: simple.body.text.map(|t| t.data),
            });
            req.smtp_headers = headers_json(&simple.headers);
            for (i, a) in simple.attachments.iter().enumerate() {
                req.attachments.push(AttachmentInput {
                    filename: a.file_name.clone(),
                    content: b64(&format!("Attachments[{i}].RawContent"), &a.raw_content)?,
                });
            }
        }
        (None, Some(template)) => {
            let t = named_template(core, ctx, &template).await?;
            template_name = Some(t.name.clone());
            req.subject = t.subject;
            req.content = Some(SendContent::Template {
                id: t.template_id,
                data: template.template_data.unwrap_or_else(|| "{}".into()),
            });
            req.smtp_headers = headers_json(&template.headers);
        }
        _ => {
            return Err(AwsError::bad_request(
                "Content must hold exactly one of Simple, Raw and Template",
            ));
        }
    }
    crate::configuration_sets::send(core, ctx, req, tagging, template_name).await
}

async fn send_raw(
    core: &Mailpush,
    ctx: &AccountContext,
    from: Option<&str>,
    destination: Destination,
    raw: &Raw,
    tagging: &Tagging,
) -> Result<String, AwsError> {
    let mut data = b64("Content.Raw.Data", &raw.data)?;
    // SMTP line endings: the queue stores CRLF mail.
    if !data.windows(2).any(|w| w == b"\r\n") {
        let mut crlf = Vec::with_capacity(data.len() + data.len() / 40);
        for &b in &data {
            if b == b'\n' {
                crlf.push(b'\r');
            }
            crlf.push(b);
        }
        data = crlf;
    }
    let parsed = mail_parser::MessageParser::default()
        .parse_headers(&data)
        .ok_or_else(|| AwsError::bad_request("Content.Raw.Data is not a MIME message"))?;
    let first = |addr: Option<&mail_parser::Address>| {
        addr.and_then(|a| a.first())
            .and_then(|a| a.address())
            .map(str::to_string)
    };
    let envelope_from = match from {
        Some(f) => Mailbox::parse(f)
            .map(|m| m.address.as_str().to_string())
            .unwrap_or_else(|_| f.trim().to_string()),
        None => first(parsed.from()).ok_or_else(|| {
            AwsError::bad_request("the raw message has no From address and FromEmailAddress is absent")
        })?,
    };
    let mut recipients: Vec<String> = destination
        .to_addresses
        .into_iter()
        .chain(destination.cc_addresses)
        .chain(destination.bcc_addresses)
        .collect();
    if recipients.is_empty() {
        for list in [parsed.to(), parsed.cc(), parsed.bcc()].into_iter().flatten() {
            recipients.extend(list.iter().filter_map(|a| a.address()).map(str::to_string));
        }
    }
    if recipients.is_empty() {
        return Err(AwsError::bad_request(
            "no recipients: give Destination or To/Cc/Bcc headers",
        ));
    }
    ensure_sender(core, ctx, &envelope_from).await?;
    let who = Submitter {
        account: ctx.clone(),
        login: None,
    };
    let sub = RawSubmission {
        envelope_from,
        recipients,
        data,
        trigger: TriggerType::Trigger,
        trace: None,
        requiretls: false,
    };
    crate::configuration_sets::send_raw(core, &who, sub, tagging).await
}

pub(crate) async fn send_email(signed: Signed) -> Result<Json<Value>, AwsError> {
    let input: SendEmailInput = signed.json()?;
    let from = input.from_email_address.unwrap_or_default();
    if from.is_empty() && input.content.raw.is_none() {
        return Err(AwsError::bad_request("FromEmailAddress is required"));
    }
    let tagging =
        Tagging::new(input.configuration_set_name, &[&input.email_tags])?.with_list(input.list_management_options);
    let id = send_one(
        &signed.core,
        &signed.ctx,
        &from,
        input.destination.unwrap_or_default(),
        &input.reply_to_addresses,
        input.content,
        &tagging,
    )
    .await?;
    Ok(Json(json!({ "MessageId": id })))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct BulkEntry {
    destination: Destination,
    replacement_email_content: Option<ReplacementContent>,
    #[serde(default)]
    replacement_tags: Vec<MessageTag>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ReplacementContent {
    replacement_template: Option<ReplacementTemplate>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ReplacementTemplate {
    replacement_template_data: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct BulkContent {
    template: TemplateRef,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SendBulkInput {
    from_email_address: String,
    #[serde(default)]
    reply_to_addresses: Vec<String>,
    default_content: BulkContent,
    bulk_email_entries: Vec<BulkEntry>,
    configuration_set_name: Option<String>,
    #[serde(default)]
    default_email_tags: Vec<MessageTag>,
}

/// Merges a replacement TemplateData object over the default one (the entry's keys win).
fn merged_data(default: Option<&str>, replacement: Option<&str>) -> String {
    let parse = |s: Option<&str>| -> serde_json::Map<String, Value> {
        s.and_then(|s| serde_json::from_str::<Value>(s).ok())
            .and_then(|v| v.as_object().cloned())
            .unwrap_or_default()
    };
    let mut data = parse(default);
    data.extend(parse(replacement));
    Value::Object(data).to_string()
}

pub(crate) async fn send_bulk_email(signed: Signed) -> Result<Json<Value>, AwsError> {
    let input: SendBulkInput = signed.json()?;
    if input.bulk_email_entries.is_empty() || input.bulk_email_entries.len() > 50 {
        return Err(AwsError::bad_request("BulkEmailEntries must hold 1 to 50 entries"));
    }
    if let Some(set) = input.configuration_set_name.as_deref().filter(|s| !s.is_empty()) {
        match signed.core.configuration_set(&signed.ctx, set).await? {
            None => {
                return Err(AwsError::not_found(format!(
                    "Configuration set <{set}> does not exist."
                )));
            }
            Some(row) if !mailpush_core::sending_enabled(&row.options) => {
                return Err(crate::configuration_sets::sending_paused(set));
            }
            Some(_) => {}
        }
    }
    let default = &input.default_content.template;
    let mut results = Vec::with_capacity(input.bulk_email_entries.len());
    for entry in input.bulk_email_entries {
        let replacement = entry
            .replacement_email_content
            .and_then(|c| c.replacement_template)
            .and_then(|t| t.replacement_template_data);
        let template = TemplateRef {
            template_name: default.template_name.clone(),
            template_arn: default.template_arn.clone(),
            template_data: Some(merged_data(default.template_data.as_deref(), replacement.as_deref())),
            headers: Vec::new(),
        };
        let content = Content {
            template: Some(template),
            ..Content::default()
        };
        let tagging = Tagging::new(
            input.configuration_set_name.clone(),
            &[&input.default_email_tags, &entry.replacement_tags],
        )?;
        let outcome = send_one(
            &signed.core,
            &signed.ctx,
            &input.from_email_address,
            entry.destination,
            &input.reply_to_addresses,
            content,
            &tagging,
        )
        .await;
        results.push(match outcome {
            Ok(id) => json!({ "Status": "SUCCESS", "MessageId": id }),
            Err(e) => json!({ "Status": bulk_status(&e), "Error": e.message }),
        });
    }
    Ok(Json(json!({ "BulkEmailEntryResults": results })))
}

/// The `BulkEmailStatus` of a refused entry (a template that cannot be rendered with the entry's data is
/// `INVALID_PARAMETER`).
fn bulk_status(e: &AwsError) -> &'static str {
    match e.kind {
        "MessageRejected" => "MESSAGE_REJECTED",
        "NotFoundException" => "TEMPLATE_NOT_FOUND",
        "TooManyRequestsException" => "TRANSIENT_FAILURE",
        "SendingPausedException" => "ACCOUNT_SENDING_PAUSED",
        "BadRequestException" => "INVALID_PARAMETER",
        _ => "FAILED",
    }
}
