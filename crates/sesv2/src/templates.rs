//! Email templates: `CreateEmailTemplate`, `GetEmailTemplate`, `UpdateEmailTemplate`, `DeleteEmailTemplate`,
//! `ListEmailTemplates`, `TestRenderEmailTemplate`. A template's bodies are an ordinary template of the account
//! (created, reviewed and rendered by core, exactly as Tencent's `CreateEmailTemplate`); its name and Subject are
//! kept beside it.

use axum::Json;
use axum::extract::RawQuery;
use mailpush_core::{AccountContext, Mailpush, TemplateInput};
use mailpush_model::sesv2::SesTemplateRow;
use mailpush_template::{CompiledTemplate, DataPolicy, TemplateData};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::send::TemplateRef;
use crate::{AwsError, Named, Signed, epoch_seconds, paged_reply};

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct TemplateContent {
    subject: Option<String>,
    text: Option<String>,
    html: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateInput {
    template_name: String,
    template_content: TemplateContent,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UpdateInput {
    template_content: TemplateContent,
}

fn check_name(name: &str) -> Result<(), AwsError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(AwsError::bad_request(format!(
            "TemplateName {name:?} must be 1-64 letters, digits, '-' or '_'"
        )))
    }
}

async fn find(core: &Mailpush, ctx: &AccountContext, name: &str) -> Result<Option<SesTemplateRow>, AwsError> {
    let rows = core.ses_templates(ctx).await?;
    Ok(rows.into_iter().find(|r| r.name == name))
}

fn missing(name: &str) -> AwsError {
    AwsError::not_found(format!("Template {name} does not exist"))
}

/// The named template a send refers to (`TemplateName`, or the name at the end of `TemplateArn`).
pub(crate) async fn named_template(
    core: &Mailpush,
    ctx: &AccountContext,
    t: &TemplateRef,
) -> Result<SesTemplateRow, AwsError> {
    let name = t
        .template_name()
        .ok_or_else(|| AwsError::bad_request("Template.TemplateName is required"))?;
    find(core, ctx, &name).await?.ok_or_else(|| missing(&name))
}

impl TemplateRef {
    fn template_name(&self) -> Option<String> {
        self.template_name_field().or_else(|| {
            self.template_arn_field()
                .and_then(|a| a.rsplit('/').next().map(str::to_string))
        })
    }
}

pub(crate) async fn create(signed: Signed) -> Result<Json<Value>, AwsError> {
    let input: CreateInput = signed.json()?;
    let (core, ctx) = (&signed.core, &signed.ctx);
    check_name(&input.template_name)?;
    if find(core, ctx, &input.template_name).await?.is_some() {
        return Err(AwsError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "AlreadyExistsException",
            format!("Template {} already exists", input.template_name),
        ));
    }
    let c = input.template_content;
    let id = core
        .create_template(
            ctx,
            TemplateInput {
                name: Some(input.template_name.clone()),
                content: Some((c.html, c.text)),
                category: None,
            },
        )
        .await
        .map_err(AwsError::from_core)?;
    let row = SesTemplateRow {
        name: input.template_name,
        template_id: id,
        subject: c.subject.unwrap_or_default(),
        created_ms: core.now_ms(),
    };
    core.put_ses_template(ctx, &row).await?;
    Ok(Json(json!({})))
}

pub(crate) async fn get(signed: Named) -> Result<Json<Value>, AwsError> {
    let (core, ctx) = (&signed.core, &signed.ctx);
    let name = &signed.name;
    let row = find(core, ctx, name).await?.ok_or_else(|| missing(name))?;
    let t = core.template(ctx, row.template_id).await.map_err(AwsError::from_core)?;
    Ok(Json(json!({
        "TemplateName": row.name,
        "TemplateContent": { "Subject": row.subject, "Text": t.text, "Html": t.html },
    })))
}

pub(crate) async fn update(signed: Named) -> Result<Json<Value>, AwsError> {
    let input: UpdateInput = signed.json()?;
    let (core, ctx) = (&signed.core, &signed.ctx);
    let name = &signed.name;
    let mut row = find(core, ctx, name).await?.ok_or_else(|| missing(name))?;
    let c = input.template_content;
    core.update_template(
        ctx,
        row.template_id,
        TemplateInput {
            name: None,
            content: Some((c.html, c.text)),
            category: None,
        },
    )
    .await
    .map_err(AwsError::from_core)?;
    row.subject = c.subject.unwrap_or_default();
    core.put_ses_template(ctx, &row).await?;
    Ok(Json(json!({})))
}

pub(crate) async fn delete(signed: Named) -> Result<Json<Value>, AwsError> {
    let (core, ctx) = (&signed.core, &signed.ctx);
    let name = &signed.name;
    let row = find(core, ctx, name).await?.ok_or_else(|| missing(name))?;
    core.delete_template(ctx, row.template_id)
        .await
        .map_err(AwsError::from_core)?;
    core.delete_ses_template(ctx, name).await?;
    Ok(Json(json!({})))
}

pub(crate) async fn list(RawQuery(query): RawQuery, signed: Signed) -> Result<Json<Value>, AwsError> {
    let (core, ctx) = (&signed.core, &signed.ctx);
    let rows = core.ses_templates(ctx).await?;
    let list: Vec<Value> = rows
        .iter()
        .map(|r| json!({ "TemplateName": r.name, "CreatedTimestamp": epoch_seconds(r.created_ms) }))
        .collect();
    Ok(Json(paged_reply("TemplatesMetadata", list, query.as_deref())?))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RenderInput {
    template_data: String,
}

/// `TestRenderEmailTemplate`: the template rendered with `TemplateData` as a MIME message (Subject and the
/// bodies; no From/To, as SES).
pub(crate) async fn test_render(signed: Named) -> Result<Json<Value>, AwsError> {
    let input: RenderInput = signed.json()?;
    let (core, ctx) = (&signed.core, &signed.ctx);
    let name = &signed.name;
    let row = find(core, ctx, name).await?.ok_or_else(|| missing(name))?;
    let t = core.template(ctx, row.template_id).await.map_err(AwsError::from_core)?;
    let compiled = CompiledTemplate::compile(&row.subject, t.html.as_deref(), t.text.as_deref())
        .map_err(|e| AwsError::bad_request(e.to_string()))?;
    let data = TemplateData::parse(&input.template_data, &DataPolicy::default())
        .map_err(|e| AwsError::bad_request(format!("TemplateData: {e}")))?;
    let rendered = compiled
        .render(&data)
        .map_err(|e| AwsError::bad_request(format!("InvalidRenderingParameterException: {e}")))?;
    Ok(Json(json!({ "RenderedTemplate": mime_of(&rendered) })))
}

fn mime_of(r: &mailpush_template::RenderedContent) -> String {
    const BOUNDARY: &str = "mailpush-rendered";
    let mut out = format!(
        "Subject: {}\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\"{BOUNDARY}\"\r\n\r\n",
        r.subject
    );
    for (kind, body) in [("text/plain", &r.text), ("text/html", &r.html)] {
        if let Some(body) = body {
            out.push_str(&format!(
                "--{BOUNDARY}\r\nContent-Type: {kind}; charset=UTF-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{body}\r\n"
            ));
        }
    }
    out.push_str(&format!("--{BOUNDARY}--\r\n"));
    out
}
