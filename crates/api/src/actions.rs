//! One function per action: decode the wire parameters (field names and types from the SDK's `models.py`),
//! call the core, encode the reply.

use base64::Engine;
use mailpush_core::{AccountContext, AttachmentInput, Mailpush, SendContent, SendRequest, StatusRequest};
use mailpush_model::{ApiError, ErrorCode, TriggerType};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

mod batch;
mod dmarc;
mod engage;
mod identity;
mod quota;
mod screening;
mod stats;
mod suppression;
mod templates;
mod tls;

/// Routes an authenticated request to its action: the one table of every action the API answers.
///
/// Every action but SendEmail, the hot path, runs boxed: the request future is as large as its largest arm,
/// and it is moved whole on its way into the server's task.
pub(crate) async fn dispatch(
    core: &Mailpush,
    ctx: &AccountContext,
    action: &str,
    params: Value,
) -> Result<Value, ApiError> {
    match action {
        "SendEmail" => send_email(core, ctx, parse(params)?).await,
        _ => Box::pin(dispatch_other(core, ctx, action, params)).await,
    }
}

/// Every action but SendEmail (see [`dispatch`]).
async fn dispatch_other(core: &Mailpush, ctx: &AccountContext, action: &str, params: Value) -> Result<Value, ApiError> {
    match action {
        "GetSendEmailStatus" => get_send_email_status(core, ctx, parse(params)?).await,
        "GetSendQuota" => quota::get_send_quota(core, ctx).await,
        "CreateEmailTemplate" => templates::create(core, ctx, parse(params)?).await,
        "UpdateEmailTemplate" => templates::update(core, ctx, parse(params)?).await,
        "GetEmailTemplate" => templates::get(core, ctx, parse(params)?).await,
        "ListEmailTemplates" => templates::list(core, ctx, parse(params)?).await,
        "DeleteEmailTemplate" => templates::delete(core, ctx, parse(params)?).await,
        "ListBlackEmailAddress" => suppression::list_black(core, ctx, params).await,
        "DeleteBlackList" => suppression::delete_black(core, ctx, params).await,
        "CreateCustomBlacklist" => suppression::create_custom(core, ctx, params).await,
        "ListCustomBlacklist" => suppression::list_custom(core, ctx, params).await,
        "UpdateCustomBlackList" => suppression::update_custom(core, ctx, params).await,
        "DeleteCustomBlackList" => suppression::delete_custom(core, ctx, params).await,
        "CreateReceiver" => batch::create_receiver(core, ctx, parse(params)?).await,
        "CreateReceiverDetail" => batch::create_detail(core, ctx, parse(params)?).await,
        "CreateReceiverDetailWithData" => batch::create_detail_with_data(core, ctx, parse(params)?).await,
        "ListReceivers" => batch::list_receivers(core, ctx, parse(params)?).await,
        "ListReceiverDetails" => batch::list_details(core, ctx, parse(params)?).await,
        "DeleteReceiver" => batch::delete_receiver(core, ctx, parse(params)?).await,
        "BatchSendEmail" => batch::batch_send(core, ctx, parse(params)?).await,
        "ListSendTasks" => batch::list_tasks(core, ctx, parse(params)?).await,
        "GetStatisticsReport" => stats::statistics(core, ctx, params).await,
        "GetAbuseReport" => stats::abuse(core, ctx, params).await,
        "GetDmarcReport" => dmarc::get_dmarc_report(core, ctx, params).await,
        "CreateAddressUnsubscribeConfig" => stats::create_config(core, ctx, params).await,
        "UpdateAddressUnsubscribeConfig" => stats::update_config(core, ctx, params).await,
        "DeleteAddressUnsubscribeConfig" => stats::delete_config(core, ctx, params).await,
        "ListAddressUnsubscribeConfig" => stats::list_configs(core, ctx, params).await,
        "ListReputationWarnings" => stats::warnings(core, ctx).await,
        "SetCallbackUrl" => engage::set_callback_url(core, ctx, params).await,
        "GetCallbackConfig" => engage::get_callback_config(core, ctx).await,
        "ResetCallbackSecret" => engage::reset_secret(core, ctx).await,
        "CreateEmailIdentity" => identity::create_identity(core, ctx, params).await,
        "GetEmailIdentity" => identity::get_identity(core, ctx, params).await,
        "UpdateEmailIdentity" => identity::update_identity(core, ctx, params).await,
        "ListEmailIdentities" => identity::list_identities(core, ctx, params).await,
        "DeleteEmailIdentity" => identity::delete_identity(core, ctx, params).await,
        "CreateEmailAddress" => identity::create_address(core, ctx, params).await,
        "ListEmailAddress" => identity::list_addresses(core, ctx, params).await,
        "DeleteEmailAddress" => identity::delete_address(core, ctx, params).await,
        "UpdateEmailSmtpPassWord" => identity::update_password(core, ctx, params).await,
        "CheckEmailQuality" => screening::check_email_quality(core, ctx, params).await,
        "GetTlsPolicy" => tls::get_tls_policy(core, ctx).await,
        "UpdateTlsPolicy" => tls::update_tls_policy(core, ctx, params).await,
        _ => Err(ApiError::new(
            ErrorCode::InvalidAction,
            format!("the action {action} does not exist"),
        )),
    }
}

/// Deserializes parameters, naming the offending field in the error.
fn parse<T: DeserializeOwned>(params: Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(params).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        if let Some(field) = inner.strip_prefix("missing field `").and_then(|r| r.split('`').next()) {
            let at = if path == "." {
                field.to_string()
            } else {
                format!("{path}.{field}")
            };
            return ApiError::new(ErrorCode::MissingParameter, format!("the parameter {at} is required"));
        }
        if inner.starts_with("unknown field") {
            return ApiError::new(ErrorCode::UnknownParameter, format!("{path}: {inner}"));
        }
        ApiError::new(ErrorCode::InvalidParameter, format!("{path}: {inner}"))
    })
}

fn decode_base64(field: &str, raw: &str, code: ErrorCode) -> Result<Vec<u8>, ApiError> {
    // Clients wrap long base64 at 76 columns; whitespace carries no data.
    let compact: String = raw.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .map_err(|e| ApiError::new(code, format!("{field} is not valid base64: {e}")))
}

fn decode_text(field: &str, raw: Option<String>) -> Result<Option<String>, ApiError> {
    let code = ErrorCode::InvalidParameterValueEmailContentIsWrong;
    decode_base64_text(field, raw, code, "UTF-8 text")
}

/// Decodes a base64 field holding UTF-8 text (absent: `None`); refused with `code`, the message saying the
/// field must be `must_be`.
fn decode_base64_text(
    field: &str,
    raw: Option<String>,
    code: ErrorCode,
    must_be: &str,
) -> Result<Option<String>, ApiError> {
    let Some(raw) = raw else { return Ok(None) };
    let bytes = decode_base64(field, &raw, code)?;
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|_| ApiError::new(code, format!("{field} must be {must_be}")))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TemplateParam {
    #[serde(rename = "TemplateID")]
    template_id: i64,
    #[serde(rename = "TemplateData")]
    template_data: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct SimpleParam {
    html: Option<String>,
    text: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AttachmentParam {
    #[serde(rename = "FileName")]
    file_name: String,
    #[serde(rename = "Content")]
    content: Option<String>,
    #[serde(rename = "FileURL")]
    file_url: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct SendEmailParams {
    from_email_address: String,
    subject: String,
    destination: Option<Vec<String>>,
    reply_to_addresses: Option<String>,
    cc: Option<Vec<String>>,
    bcc: Option<Vec<String>>,
    template: Option<TemplateParam>,
    simple: Option<SimpleParam>,
    attachments: Option<Vec<AttachmentParam>>,
    unsubscribe: Option<String>,
    trigger_type: Option<i64>,
    smtp_message_id: Option<String>,
    smtp_headers: Option<String>,
    header_from: Option<String>,
}

async fn send_email(core: &Mailpush, ctx: &AccountContext, p: SendEmailParams) -> Result<Value, ApiError> {
    // Absent: the sender address's AddressUnsubscribeConfig decides; given (even "0"): it wins.
    let unsubscribe = match p.unsubscribe.as_deref().map(str::trim).filter(|u| !u.is_empty()) {
        None => None,
        Some(u) => Some(u.parse::<u8>().ok().filter(|c| *c <= 12).ok_or_else(|| {
            ApiError::new(
                ErrorCode::InvalidParameterValue,
                format!("Unsubscribe {u:?} must be \"0\" (none) or \"1\"-\"12\" (footer language)"),
            )
        })?),
    };
    let trigger = match p.trigger_type {
        None => TriggerType::Batch,
        Some(t) => TriggerType::from_code(t).ok_or_else(|| {
            ApiError::new(
                ErrorCode::InvalidParameterValue,
                format!("TriggerType {t} must be 0 or 1"),
            )
        })?,
    };
    let content = match (p.simple, p.template) {
        (Some(_), Some(_)) => {
            return Err(ApiError::new(
                ErrorCode::InvalidParameter,
                "give either Template or Simple, not both",
            ));
        }
        (Some(s), None) => Some(SendContent::Simple {
            html: decode_text("Simple.Html", s.html)?,
            text: decode_text("Simple.Text", s.text)?,
        }),
        (None, Some(t)) => Some(SendContent::Template {
            id: t.template_id,
            data: t.template_data,
        }),
        (None, None) => None,
    };
    let mut attachments = Vec::new();
    for (i, a) in p.attachments.unwrap_or_default().into_iter().enumerate() {
        if a.file_url.is_some() {
            return Err(ApiError::new(
                ErrorCode::FailedOperationFileURLNotExist,
                "Attachments[].FileURL is not supported; send Content",
            ));
        }
        let raw = a.content.ok_or_else(|| {
            ApiError::new(
                ErrorCode::MissingParameter,
                format!("Attachments[{i}].Content is required"),
            )
        })?;
        let content = decode_base64(
            &format!("Attachments[{i}].Content"),
            &raw,
            ErrorCode::InvalidParameterValueAttachContentIsWrong,
        )?;
        attachments.push(AttachmentInput {
            filename: a.file_name,
            content,
        });
    }
    let req = SendRequest {
        from: p.from_email_address,
        destination: p.destination.unwrap_or_default(),
        cc: p.cc.unwrap_or_default(),
        bcc: p.bcc.unwrap_or_default(),
        reply_to: p.reply_to_addresses,
        subject: p.subject,
        content,
        attachments,
        trigger,
        header_from: p.header_from,
        smtp_headers: p.smtp_headers,
        smtp_message_id: p.smtp_message_id,
    };
    let id = core
        .send_email_with(ctx, req, mailpush_core::SendOptions { unsubscribe })
        .await?;
    Ok(json!({ "MessageId": id.as_str() }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct GetSendEmailStatusParams {
    request_date: String,
    offset: Option<i64>,
    limit: i64,
    message_id: Option<String>,
    to_email_address: Option<String>,
}

async fn get_send_email_status(
    core: &Mailpush,
    ctx: &AccountContext,
    p: GetSendEmailStatusParams,
) -> Result<Value, ApiError> {
    let rows = core
        .send_status(
            ctx,
            StatusRequest {
                request_date: p.request_date,
                message_id: p.message_id,
                to: p.to_email_address,
                offset: p.offset.unwrap_or(0),
                limit: p.limit,
            },
        )
        .await?;
    let flags = core.engagement_flags(ctx, &rows).await?;
    let list: Vec<Value> = rows
        .iter()
        .map(|r| {
            let f = flags
                .get(&(r.message_id.as_str().to_string(), r.recipient.clone()))
                .copied()
                .unwrap_or_default();
            json!({
                "MessageId": r.message_id.as_str(),
                "ToEmailAddress": r.recipient,
                "FromEmailAddress": r.from_address,
                "SendStatus": r.send_status.code(),
                "DeliverStatus": r.deliver_status.code(),
                "DeliverMessage": r.deliver_message,
                "RequestTime": r.request_ms / 1000,
                "DeliverTime": r.deliver_ms.map_or(0, |t| t / 1000),
                "UserOpened": f.opened,
                "UserClicked": f.clicked,
                "UserUnsubscribed": f.unsubscribed,
                "UserComplainted": f.complained,
                "UserComplained": f.complained,
            })
        })
        .collect();
    Ok(json!({ "EmailStatusList": list }))
}
