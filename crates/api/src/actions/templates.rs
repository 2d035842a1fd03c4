//! The template actions: CreateEmailTemplate, UpdateEmailTemplate, GetEmailTemplate, ListEmailTemplates,
//! DeleteEmailTemplate (fields from the SDK's `models.py`, plus the `TemplateCategory` extension).

use super::decode_base64_text;
use base64::Engine;
use mailpush_core::TemplateBodies;
use mailpush_core::{AccountContext, Mailpush, TemplateInput};
use mailpush_model::{ApiError, ErrorCode};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub(super) struct TemplateContentParam {
    html: Option<String>,
    text: Option<String>,
}

fn decode_part(field: &str, raw: Option<String>) -> Result<Option<String>, ApiError> {
    let code = ErrorCode::InvalidParameterValueTemplateContentIsWrong;
    decode_base64_text(field, raw, code, "base64 of UTF-8 text")
}

fn decode_content(c: Option<TemplateContentParam>) -> Result<Option<TemplateBodies>, ApiError> {
    c.map(|c| {
        Ok((
            decode_part("TemplateContent.Html", c.html)?,
            decode_part("TemplateContent.Text", c.text)?,
        ))
    })
    .transpose()
}

fn encode(part: Option<&str>) -> Value {
    part.map_or(Value::Null, |p| {
        Value::String(base64::engine::general_purpose::STANDARD.encode(p.as_bytes()))
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub(super) struct CreateParams {
    template_name: Option<String>,
    template_content: Option<TemplateContentParam>,
    /// mailpush extension.
    template_category: Option<String>,
}

pub(super) async fn create(core: &Mailpush, ctx: &AccountContext, p: CreateParams) -> Result<Value, ApiError> {
    let input = TemplateInput {
        name: Some(p.template_name.unwrap_or_default()),
        content: decode_content(p.template_content)?,
        category: p.template_category,
    };
    let id = core.create_template(ctx, input).await?;
    Ok(json!({ "TemplateID": id }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub(super) struct UpdateParams {
    #[serde(rename = "TemplateID")]
    template_id: i64,
    template_name: Option<String>,
    template_content: Option<TemplateContentParam>,
    /// mailpush extension.
    template_category: Option<String>,
}

pub(super) async fn update(core: &Mailpush, ctx: &AccountContext, p: UpdateParams) -> Result<Value, ApiError> {
    let input = TemplateInput {
        name: p.template_name,
        content: decode_content(p.template_content)?,
        category: p.template_category,
    };
    core.update_template(ctx, p.template_id, input).await?;
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct IdParams {
    #[serde(rename = "TemplateID")]
    template_id: i64,
}

pub(super) async fn get(core: &Mailpush, ctx: &AccountContext, p: IdParams) -> Result<Value, ApiError> {
    let t = core.template(ctx, p.template_id).await?;
    Ok(json!({
        "TemplateContent": { "Html": encode(t.html.as_deref()), "Text": encode(t.text.as_deref()) },
        "TemplateStatus": t.status.code(),
        "TemplateName": t.name,
    }))
}

pub(super) async fn delete(core: &Mailpush, ctx: &AccountContext, p: IdParams) -> Result<Value, ApiError> {
    core.delete_template(ctx, p.template_id).await?;
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub(super) struct ListParams {
    limit: i64,
    offset: Option<i64>,
}

pub(super) async fn list(core: &Mailpush, ctx: &AccountContext, p: ListParams) -> Result<Value, ApiError> {
    let page = core.list_templates(ctx, p.offset.unwrap_or(0), p.limit).await?;
    let list: Vec<Value> = page
        .templates
        .iter()
        .map(|t| {
            json!({
                "TemplateID": t.id,
                "TemplateName": t.name,
                "TemplateStatus": t.status.code(),
                "ReviewReason": t.review_reason,
                "CreatedTimestamp": t.created_ms / 1000,
            })
        })
        .collect();
    Ok(json!({ "TemplatesMetadata": list, "TotalCount": page.total }))
}
