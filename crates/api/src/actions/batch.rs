//! Batch sending actions: CreateReceiver, CreateReceiverDetail, CreateReceiverDetailWithData, ListReceivers,
//! ListReceiverDetails, DeleteReceiver, BatchSendEmail, ListSendTasks (fields from the SDK's `models.py`).

use mailpush_core::{AccountContext, Mailpush};
use mailpush_core::{AddDetailsReport, BatchRequest, ReceiverDetailInput, TaskSchedule, format_time};
use mailpush_model::{ApiError, ErrorCode};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub(super) struct CreateReceiverParams {
    receivers_name: String,
    desc: Option<String>,
}

pub(super) async fn create_receiver(
    core: &Mailpush,
    ctx: &AccountContext,
    p: CreateReceiverParams,
) -> Result<Value, ApiError> {
    let id = core.create_receiver(ctx, &p.receivers_name, p.desc.as_deref()).await?;
    Ok(json!({ "ReceiverId": id }))
}

fn report(r: AddDetailsReport) -> Value {
    json!({
        "TotalCount": r.total,
        "ValidCount": r.valid,
        "TooLongCount": r.too_long,
        "EmptyEmailCount": r.empty,
        "RepeatCount": r.repeated,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub(super) struct CreateDetailParams {
    receiver_id: i64,
    emails: Vec<String>,
}

pub(super) async fn create_detail(
    core: &Mailpush,
    ctx: &AccountContext,
    p: CreateDetailParams,
) -> Result<Value, ApiError> {
    let items = p
        .emails
        .into_iter()
        .map(|email| ReceiverDetailInput {
            email,
            template_data: None,
        })
        .collect();
    add_details(core, ctx, p.receiver_id, items).await
}

/// Adds `items` to the receiver list and reports what was added and what refused.
async fn add_details(
    core: &Mailpush,
    ctx: &AccountContext,
    receiver_id: i64,
    items: Vec<ReceiverDetailInput>,
) -> Result<Value, ApiError> {
    let r = core.add_receiver_details(ctx, receiver_id, items).await?;
    Ok(report(r))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub(super) struct ReceiverInputData {
    email: String,
    template_data: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub(super) struct CreateDetailWithDataParams {
    receiver_id: i64,
    datas: Vec<ReceiverInputData>,
}

pub(super) async fn create_detail_with_data(
    core: &Mailpush,
    ctx: &AccountContext,
    p: CreateDetailWithDataParams,
) -> Result<Value, ApiError> {
    let items = p
        .datas
        .into_iter()
        .map(|d| ReceiverDetailInput {
            email: d.email,
            template_data: d.template_data,
        })
        .collect();
    add_details(core, ctx, p.receiver_id, items).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub(super) struct ListReceiversParams {
    offset: i64,
    limit: i64,
    status: Option<i32>,
    key_word: Option<String>,
}

pub(super) async fn list_receivers(
    core: &Mailpush,
    ctx: &AccountContext,
    p: ListReceiversParams,
) -> Result<Value, ApiError> {
    let (total, rows) = core
        .list_receivers(ctx, p.status, p.key_word.as_deref(), p.offset, p.limit)
        .await?;
    let data: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "ReceiverId": r.id,
                "ReceiversName": r.name,
                "Count": r.valid_count + r.invalid_count,
                "Desc": r.description,
                "ReceiversStatus": r.status.code(),
                "CreateTime": format_time(r.created_ms),
                "InvalidCount": r.invalid_count,
            })
        })
        .collect();
    Ok(json!({ "TotalCount": total, "Data": data }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub(super) struct ListDetailsParams {
    receiver_id: i64,
    offset: i64,
    limit: i64,
    email: Option<String>,
    create_time_begin: Option<String>,
    create_time_end: Option<String>,
    status: Option<i32>,
}

pub(super) async fn list_details(
    core: &Mailpush,
    ctx: &AccountContext,
    p: ListDetailsParams,
) -> Result<Value, ApiError> {
    let page = core
        .list_receiver_details(
            ctx,
            p.receiver_id,
            p.email.as_deref(),
            p.create_time_begin.as_deref(),
            p.create_time_end.as_deref(),
            p.status,
            p.offset,
            p.limit,
        )
        .await?;
    let data: Vec<Value> = page
        .rows
        .iter()
        .map(|d| {
            json!({
                "EmailId": d.id,
                "Email": d.email,
                "CreateTime": format_time(d.created_ms),
                "TemplateData": d.template_data.clone().unwrap_or_default(),
                "Reason": d.reason,
                "Status": d.status,
            })
        })
        .collect();
    Ok(json!({
        "TotalCount": page.total,
        "Data": data,
        "ValidCount": page.valid,
        "InvalidCount": page.invalid,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub(super) struct DeleteReceiverParams {
    receiver_id: i64,
}

pub(super) async fn delete_receiver(
    core: &Mailpush,
    ctx: &AccountContext,
    p: DeleteReceiverParams,
) -> Result<Value, ApiError> {
    core.delete_receiver(ctx, p.receiver_id).await?;
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TemplateParam {
    #[serde(rename = "TemplateID")]
    template_id: i64,
    #[serde(rename = "TemplateData")]
    template_data: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub(super) struct TimedParam {
    begin_time: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub(super) struct CycleParam {
    begin_time: Option<String>,
    interval_time: Option<i64>,
    term_cycle: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub(super) struct BatchSendParams {
    from_email_address: String,
    receiver_id: Option<i64>,
    subject: String,
    task_type: i64,
    reply_to_addresses: Option<String>,
    template: Option<TemplateParam>,
    simple: Option<Value>,
    attachments: Option<Vec<Value>>,
    cycle_param: Option<CycleParam>,
    timed_param: Option<TimedParam>,
    unsubscribe: Option<String>,
    #[serde(rename = "ADLocation")]
    ad_location: Option<i64>,
}

pub(super) async fn batch_send(core: &Mailpush, ctx: &AccountContext, p: BatchSendParams) -> Result<Value, ApiError> {
    if p.simple.is_some() {
        return Err(ApiError::new(
            ErrorCode::InvalidParameter,
            "Simple is deprecated for BatchSendEmail; send Template",
        ));
    }
    if p.attachments.as_ref().is_some_and(|a| !a.is_empty()) {
        return Err(ApiError::new(
            ErrorCode::InvalidParameter,
            "Attachments are not supported for BatchSendEmail",
        ));
    }
    let schedule = match p.task_type {
        1 => TaskSchedule::Immediate,
        2 => TaskSchedule::Timed {
            begin: p.timed_param.and_then(|t| t.begin_time),
        },
        3 => {
            let c = p.cycle_param.ok_or_else(|| {
                ApiError::new(
                    ErrorCode::MissingParameterCycleParamNecessary,
                    "CycleParam is required for TaskType 3",
                )
            })?;
            TaskSchedule::Cycle {
                begin: c.begin_time,
                interval_hours: c.interval_time,
                term_cycle: c.term_cycle,
            }
        }
        other => {
            return Err(ApiError::new(
                ErrorCode::InvalidParameterValue,
                format!("TaskType {other} must be 1 (immediate), 2 (scheduled) or 3 (recurring)"),
            ));
        }
    };
    let (template_id, template_data) = match p.template {
        Some(t) => (Some(t.template_id), t.template_data.unwrap_or_default()),
        None => (None, String::new()),
    };
    let req = BatchRequest {
        from: p.from_email_address,
        receiver_id: p.receiver_id,
        subject: p.subject,
        reply_to: p.reply_to_addresses,
        template_id,
        template_data,
        schedule,
        unsubscribe: p.unsubscribe,
        ad_location: p.ad_location.unwrap_or(0),
    };
    let id = core.batch_send_email(ctx, req).await?;
    Ok(json!({ "TaskId": id }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub(super) struct ListTasksParams {
    offset: i64,
    limit: i64,
    status: Option<i32>,
    receiver_id: Option<i64>,
    task_type: Option<i32>,
}

pub(super) async fn list_tasks(core: &Mailpush, ctx: &AccountContext, p: ListTasksParams) -> Result<Value, ApiError> {
    let (total, rows) = core
        .list_send_tasks(ctx, p.status, p.task_type, p.receiver_id, p.offset, p.limit)
        .await?;
    let data: Vec<Value> = rows
        .iter()
        .map(|t| {
            let task = &t.task;
            let begin = format_time(task.begin_ms);
            json!({
                "TaskId": t.id,
                "FromEmailAddress": task.from_address,
                "ReceiverId": task.receiver_id,
                "TaskStatus": t.status.code(),
                "TaskType": task.task_type,
                "RequestCount": t.request_count,
                "SendCount": t.send_count,
                "CacheCount": t.cache_count,
                "CreateTime": format_time(task.created_ms),
                "UpdateTime": format_time(t.updated_ms),
                "Subject": task.subject,
                "Template": { "TemplateID": task.template_id, "TemplateData": task.template_data },
                "CycleParam": if task.task_type == 3 {
                    json!({ "BeginTime": begin, "IntervalTime": task.interval_hours, "TermCycle": task.term_cycle })
                } else { Value::Null },
                "TimedParam": if task.task_type == 2 { json!({ "BeginTime": begin }) } else { Value::Null },
                "ErrMsg": t.err_msg,
                "ReceiversName": t.receivers_name,
                // mailpush extension: recipients skipped (suppressed, unsubscribed, bad data).
                "SkipCount": t.skip_count,
            })
        })
        .collect();
    Ok(json!({ "TotalCount": total, "Data": data }))
}
