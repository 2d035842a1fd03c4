//! `CheckEmailQuality` (mailpush extension): the 0–10 quality report of a template with data, Simple content or
//! a raw MIME message. Nothing is sent or stored.

use super::{SimpleParam, TemplateParam, decode_base64, decode_text, parse};
use mailpush_core::{AccountContext, Mailpush, SendContent, SendRequest};
use mailpush_core::{QualityInput, QualityRequest};
use mailpush_model::{ApiError, ErrorCode, TriggerType};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct CheckEmailQualityParams {
    from_email_address: Option<String>,
    subject: Option<String>,
    destination: Option<Vec<String>>,
    template: Option<TemplateParam>,
    simple: Option<SimpleParam>,
    raw_message: Option<String>,
    trigger_type: Option<i64>,
    unsubscribe: Option<String>,
}

pub(super) async fn check_email_quality(
    core: &Mailpush,
    ctx: &AccountContext,
    params: Value,
) -> Result<Value, ApiError> {
    let p: CheckEmailQualityParams = parse(params)?;
    let trigger = match p.trigger_type {
        None => None,
        Some(t) => Some(TriggerType::from_code(t).ok_or_else(|| {
            ApiError::new(
                ErrorCode::InvalidParameterValue,
                format!("TriggerType {t} must be 0 or 1"),
            )
        })?),
    };
    let unsubscribe = p
        .unsubscribe
        .as_deref()
        .map(str::trim)
        .is_some_and(|u| !u.is_empty() && u != "0");
    let given = [p.template.is_some(), p.simple.is_some(), p.raw_message.is_some()];
    if given.iter().filter(|g| **g).count() != 1 {
        return Err(ApiError::new(
            ErrorCode::InvalidParameter,
            "give exactly one of Template, Simple and RawMessage",
        ));
    }
    let input = if let Some(raw) = p.raw_message {
        QualityInput::Raw(decode_base64(
            "RawMessage",
            &raw,
            ErrorCode::InvalidParameterValueEmailContentIsWrong,
        )?)
    } else {
        let content = match (p.simple, p.template) {
            (Some(s), _) => SendContent::Simple {
                html: decode_text("Simple.Html", s.html)?,
                text: decode_text("Simple.Text", s.text)?,
            },
            (None, Some(t)) => SendContent::Template {
                id: t.template_id,
                data: t.template_data,
            },
            (None, None) => {
                return Err(ApiError::new(
                    ErrorCode::InvalidParameter,
                    "give exactly one of Template, Simple and RawMessage",
                ));
            }
        };
        let required = |v: Option<String>, name: &str| {
            v.ok_or_else(|| ApiError::new(ErrorCode::MissingParameter, format!("the parameter {name} is required")))
        };
        QualityInput::Send(Box::new(SendRequest {
            from: required(p.from_email_address, "FromEmailAddress")?,
            subject: required(p.subject, "Subject")?,
            destination: p.destination.unwrap_or_default(),
            content: Some(content),
            trigger: trigger.unwrap_or(TriggerType::Batch),
            ..Default::default()
        }))
    };
    let report = core
        .check_email_quality(
            ctx,
            QualityRequest {
                input,
                marketing: trigger.map(|t| t == TriggerType::Batch),
                unsubscribe,
            },
        )
        .await?;
    Ok(quality_json(&report))
}

/// The wire form of a quality report.
fn quality_json(r: &mailpush_core::QualityReport) -> Value {
    json!({
        "Score": r.score,
        "FilterScore": r.filter_score,
        "FilterAction": r.filter_action,
        "FilterError": r.filter_error,
        "Symbols": r.symbols.iter().map(|s| json!({
            "Name": s.name, "Weight": s.weight, "Description": s.sentence,
        })).collect::<Vec<_>>(),
        "Checks": r.checks.iter().map(|c| json!({
            "Name": c.name,
            "Status": match c.status {
                mailpush_core::CheckStatus::Pass => "pass",
                mailpush_core::CheckStatus::Fail => "fail",
                mailpush_core::CheckStatus::Skipped => "skipped",
            },
            "Penalty": c.penalty,
            "Message": c.message,
            "Fix": c.fix,
        })).collect::<Vec<_>>(),
        "FixFirst": r.fix_first,
    })
}
