//! Batch sending, request side: recipient lists (CreateReceiver, CreateReceiverDetail[WithData],
//! ListReceivers, ListReceiverDetails, DeleteReceiver) and tasks (BatchSendEmail, ListSendTasks). The runner
//! that feeds tasks into the queue lives in the `mailpush-batch` crate; it admits every mail through
//! [`Mailpush::prepare_message`] (SendEmail's admission) and asks [`Mailpush::batch_allowance`] for the allowance.

use crate::Env;
use crate::{AccountContext, CoreError};
use mailpush_model::batch::{DetailPage, NewReceiverDetail, NewSendTask, ReceiverRow, SendTaskRow};
use mailpush_model::batch::{ReceiverStatus, TaskStatus};
use mailpush_model::{EmailAddress, ErrorCode};
use mailpush_store::Store;
use mailpush_store::{AddDetailsRefusal, DetailQuery, TaskQuery};
use std::sync::Arc;
use tokio::sync::Notify;

/// Largest TemplateData of one list address, bytes.
pub const MAX_DETAIL_DATA_BYTES: usize = 800;
/// Most addresses one CreateReceiverDetail[WithData] request may carry.
pub const MAX_DETAILS_PER_REQUEST: usize = 20_000;
/// Most rows one list query returns.
pub const MAX_LIST_LIMIT: i64 = 100;
/// Longest list name, characters.
pub const MAX_RECEIVER_NAME_CHARS: usize = 200;
/// Longest list description, characters.
pub const MAX_RECEIVER_DESC_CHARS: usize = 300;
/// What `ADLocation` adds to the subject.
pub const AD_MARK: &str = "<AD>";

fn refuse(code: ErrorCode, message: impl Into<String>) -> CoreError {
    CoreError::refused(code, message)
}

/// One address of a `CreateReceiverDetail[WithData]` request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReceiverDetailInput {
    /// `Email`.
    pub email: String,
    /// `TemplateData` (WithData only).
    pub template_data: Option<String>,
}

/// The reply of `CreateReceiverDetail[WithData]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AddDetailsReport {
    /// `TotalCount`: addresses in the request.
    pub total: i64,
    /// `ValidCount`: valid addresses added.
    pub valid: i64,
    /// Invalid addresses added (kept and counted in the list's `InvalidCount`, never sent to).
    pub invalid: i64,
    /// `TooLongCount`: addresses or TemplateData over their limits (stored as invalid).
    pub too_long: i64,
    /// `EmptyEmailCount`: empty addresses (not stored).
    pub empty: i64,
    /// `RepeatCount`: already in the list or repeated in the request.
    pub repeated: i64,
}

/// A `TimedParam` / `CycleParam` after decoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskSchedule {
    /// TaskType 1.
    Immediate,
    /// TaskType 2: `TimedParam.BeginTime`.
    Timed {
        /// `BeginTime`, `YYYY-MM-DD HH:MM:SS` (UTC).
        begin: Option<String>,
    },
    /// TaskType 3: `CycleParam`.
    Cycle {
        /// `BeginTime`.
        begin: Option<String>,
        /// `IntervalTime`, hours.
        interval_hours: Option<i64>,
        /// `TermCycle`: 1 = run once more and stop.
        term_cycle: Option<i64>,
    },
}

/// A `BatchSendEmail` request after wire decoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchRequest {
    /// `FromEmailAddress`.
    pub from: String,
    /// `ReceiverId`.
    pub receiver_id: Option<i64>,
    /// `Subject`.
    pub subject: String,
    /// `ReplyToAddresses`.
    pub reply_to: Option<String>,
    /// `Template.TemplateID`.
    pub template_id: Option<i64>,
    /// `Template.TemplateData`: defaults under each recipient's own data.
    pub template_data: String,
    /// When.
    pub schedule: TaskSchedule,
    /// `Unsubscribe` (passed to each mail's SendEmail field).
    pub unsubscribe: Option<String>,
    /// `ADLocation`.
    pub ad_location: i64,
}

/// `YYYY-MM-DD HH:MM:SS` (calendar zone) of a Unix ms instant, the format of `CreateTime` fields.
pub fn format_time(ms: i64) -> String {
    mailpush_model::clock::datetime_of(ms)
}

/// Parses `YYYY-MM-DD HH:MM:SS` (calendar zone) into Unix ms.
pub fn parse_time(s: &str) -> Option<i64> {
    mailpush_model::time_zone::current().parse_datetime(s)
}

fn check_label(value: &str, max: usize) -> bool {
    let n = value.chars().count();
    n >= 1 && n <= max && !value.chars().any(char::is_control)
}

/// Checks a TemplateData text is a JSON object; the parsed object.
pub fn parse_data_object(raw: &str) -> Result<serde_json::Map<String, serde_json::Value>, String> {
    if raw.trim().is_empty() {
        return Ok(serde_json::Map::new());
    }
    match serde_json::from_str::<serde_json::Value>(raw) {
        Ok(serde_json::Value::Object(m)) => Ok(m),
        Ok(_) => Err("TemplateData must be a JSON object".into()),
        Err(e) => Err(format!("TemplateData is not JSON: {e}")),
    }
}

/// The task's TemplateData with one recipient's on top (the recipient's keys win).
pub fn merge_data(base: &str, recipient: Option<&str>) -> Result<String, String> {
    let mut merged = parse_data_object(base)?;
    if let Some(r) = recipient {
        merged.extend(parse_data_object(r)?);
    }
    Ok(serde_json::Value::Object(merged).to_string())
}

/// The subject with the ad mark `ADLocation` asks for: 0 none, 1 before (`<AD>Subject`), 2 after (`Subject<AD>`).
pub fn subject_with_ad(subject: &str, ad_location: i32) -> String {
    match ad_location {
        1 => format!("{AD_MARK}{subject}"),
        2 => format!("{subject}{AD_MARK}"),
        _ => subject.to_string(),
    }
}

/// The filters of a `ListReceivers` request, as the API gives them.
pub(crate) struct ReceiverFilter<'a> {
    /// `Status`: 1, 2 or 3 (none: any).
    pub(crate) status: Option<i32>,
    /// `KeyWord` (empty: any).
    pub(crate) keyword: Option<&'a str>,
}

/// The filters of a `ListReceiverDetails` request, as the API gives them.
pub(crate) struct DetailFilter<'a> {
    /// `Email`: part of the address (empty: any).
    pub(crate) email: Option<&'a str>,
    /// `CreateTimeBegin`, like `2026-11-26 08:00:00` (blank: none).
    pub(crate) create_time_begin: Option<&'a str>,
    /// `CreateTimeEnd`, like `CreateTimeBegin`.
    pub(crate) create_time_end: Option<&'a str>,
    /// `Status`: 1 or 2 (none: any).
    pub(crate) status: Option<i32>,
}

/// The filters of a `ListSendTasks` request.
pub(crate) struct TaskFilter {
    /// `Status` (none: any).
    pub(crate) status: Option<i32>,
    /// `TaskType` (none: any).
    pub(crate) task_type: Option<i32>,
    /// `ReceiverId` (none: any).
    pub(crate) receiver_id: Option<i64>,
}

/// Recipient lists (receivers) and batch send tasks.
pub struct Batch {
    pub(crate) env: Env,
    /// Wakes the batch runner when a task is created.
    pub(crate) batch_wake: Arc<Notify>,
    pub(crate) identities: Arc<crate::identity::Identities>,
}

impl Batch {
    pub(crate) async fn create_receiver(
        &self,
        account: &AccountContext,
        name: &str,
        description: Option<&str>,
    ) -> Result<i64, CoreError> {
        let name = name.trim();
        if !check_label(name, MAX_RECEIVER_NAME_CHARS) {
            return Err(refuse(
                ErrorCode::InvalidParameterValueReceiverNameIllegal,
                format!("ReceiversName must be 1 to {MAX_RECEIVER_NAME_CHARS} characters without control characters"),
            ));
        }
        let description = description.unwrap_or("").trim();
        if !description.is_empty() && !check_label(description, MAX_RECEIVER_DESC_CHARS) {
            return Err(refuse(
                ErrorCode::InvalidParameterValueReceiverDescIllegal,
                format!("Desc must be at most {MAX_RECEIVER_DESC_CHARS} characters without control characters"),
            ));
        }
        let max = i64::from(self.env.settings.batch_max_receivers_per_account);
        match self
            .env
            .store
            .batch()
            .create_receiver(account.id, name, description, self.env.clock.now_ms(), max)
            .await?
        {
            Ok(row) => Ok(row.id),
            Err(true) => Err(refuse(
                ErrorCode::InvalidParameterValueRepeatReceiverName,
                format!("a recipient list named {name:?} already exists"),
            )),
            Err(false) => Err(refuse(
                ErrorCode::LimitExceededExceedReceiverLimit,
                format!("an account may have at most {max} recipient lists"),
            )),
        }
    }

    async fn receiver_of(&self, account: &AccountContext, id: i64) -> Result<ReceiverRow, CoreError> {
        self.env.store.batch().receiver(account.id, id).await?.ok_or_else(|| {
            refuse(
                ErrorCode::OperationDeniedReceiverNotExist,
                format!("recipient list {id} does not exist"),
            )
        })
    }

    pub(crate) async fn add_receiver_details(
        &self,
        account: &AccountContext,
        receiver_id: i64,
        items: Vec<ReceiverDetailInput>,
    ) -> Result<AddDetailsReport, CoreError> {
        if items.len() > MAX_DETAILS_PER_REQUEST {
            return Err(refuse(
                ErrorCode::LimitExceededReceiverDetailRequestLimit,
                format!(
                    "{} addresses in one request; at most {MAX_DETAILS_PER_REQUEST} are allowed",
                    items.len()
                ),
            ));
        }
        self.receiver_of(account, receiver_id).await?;
        let mut report = AddDetailsReport {
            total: items.len() as i64,
            ..AddDetailsReport::default()
        };
        let details = self.classify_details(items, &mut report);
        let max = i64::from(self.env.settings.batch_max_receiver_details);
        match self
            .env
            .store
            .batch()
            .add_receiver_details(account.id, receiver_id, &details, max, self.env.clock.now_ms())
            .await?
        {
            Ok(out) => {
                report.valid = out.valid;
                report.invalid = out.invalid;
                report.repeated = out.repeated;
                Ok(report)
            }
            Err(AddDetailsRefusal::NotFound) => Err(refuse(
                ErrorCode::OperationDeniedReceiverNotExist,
                format!("recipient list {receiver_id} does not exist"),
            )),
            Err(AddDetailsRefusal::TooMany(size)) => Err(refuse(
                ErrorCode::LimitExceededReceiverDetailCountLimit,
                format!(
                    "the list holds {size} addresses; {} more would exceed its limit of {max}",
                    details.len()
                ),
            )),
        }
    }

    pub(crate) fn classify_details(
        &self,
        items: Vec<ReceiverDetailInput>,
        report: &mut AddDetailsReport,
    ) -> Vec<NewReceiverDetail> {
        let data_max = self.env.settings.template_data_max_bytes.min(MAX_DETAIL_DATA_BYTES);
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            let raw = item.email.trim();
            if raw.is_empty() {
                report.empty += 1;
                continue;
            }
            let data = item.template_data.filter(|d| !d.trim().is_empty());
            let (email, mut invalid) = match EmailAddress::parse(raw) {
                // Lists compare addresses case-insensitively (A@x and a@x are one recipient), as users expect;
                // the stored form is lower-case.
                Ok(a) => (a.as_str().to_lowercase(), None),
                Err(e) => (raw.chars().take(320).collect(), Some(format!("invalid address: {e}"))),
            };
            if raw.len() > 254 {
                report.too_long += 1;
                invalid = Some("the address is longer than 254 bytes".into());
            } else if let Some(d) = &data {
                if d.len() > data_max {
                    report.too_long += 1;
                    invalid = Some(format!(
                        "TemplateData is {} bytes; at most {data_max} are allowed",
                        d.len()
                    ));
                } else if let Err(e) = parse_data_object(d) {
                    invalid.get_or_insert(e);
                }
            }
            out.push(NewReceiverDetail {
                email,
                template_data: data,
                invalid_reason: invalid,
            });
        }
        out
    }

    pub(crate) async fn set_receiver_status(
        &self,
        account: &AccountContext,
        receiver_id: i64,
        status: ReceiverStatus,
    ) -> Result<(), CoreError> {
        if !self
            .env
            .store
            .batch()
            .set_receiver_status(account.id, receiver_id, status)
            .await?
        {
            return Err(refuse(
                ErrorCode::OperationDeniedReceiverNotExist,
                format!("recipient list {receiver_id} does not exist"),
            ));
        }
        Ok(())
    }

    pub(crate) async fn receiver_named(
        &self,
        account: &AccountContext,
        name: &str,
    ) -> Result<Option<ReceiverRow>, CoreError> {
        let (_, rows) = self
            .env
            .store
            .batch()
            .list_receivers(account.id, None, Some(name), 0, 1000)
            .await?;
        Ok(rows.into_iter().find(|r| r.name == name))
    }

    pub(crate) async fn list_receivers(
        &self,
        account: &AccountContext,
        filter: ReceiverFilter<'_>,
        offset: i64,
        limit: i64,
    ) -> Result<(i64, Vec<ReceiverRow>), CoreError> {
        crate::error::check_page(offset, limit, MAX_LIST_LIMIT)?;
        let ReceiverFilter { status, keyword } = filter;
        if let Some(s) = status
            && !(1..=3).contains(&s)
        {
            return Err(refuse(ErrorCode::InvalidParameterValue, "Status must be 1, 2 or 3"));
        }
        let keyword = keyword.filter(|k| !k.is_empty());
        Ok(self
            .env
            .store
            .batch()
            .list_receivers(account.id, status, keyword, offset, limit)
            .await?)
    }

    pub(crate) async fn list_receiver_details(
        &self,
        account: &AccountContext,
        receiver_id: i64,
        filter: DetailFilter<'_>,
        offset: i64,
        limit: i64,
    ) -> Result<DetailPage, CoreError> {
        crate::error::check_page(offset, limit, MAX_LIST_LIMIT)?;
        let DetailFilter {
            email,
            create_time_begin,
            create_time_end,
            status,
        } = filter;
        self.receiver_of(account, receiver_id).await?;
        let time = |field: &str, v: Option<&str>| -> Result<Option<i64>, CoreError> {
            match v.filter(|s| !s.trim().is_empty()) {
                None => Ok(None),
                Some(s) => parse_time(s).map(Some).ok_or_else(|| {
                    refuse(
                        ErrorCode::InvalidParameterValue,
                        format!("{field} {s:?} must look like 2026-11-26 08:00:00"),
                    )
                }),
            }
        };
        if let Some(s) = status
            && !(1..=2).contains(&s)
        {
            return Err(refuse(ErrorCode::InvalidParameterValue, "Status must be 1 or 2"));
        }
        let q = DetailQuery {
            account_id: account.id,
            receiver_id,
            email_contains: email.filter(|e| !e.is_empty()).map(str::to_string),
            from_ms: time("CreateTimeBegin", create_time_begin)?,
            to_ms: time("CreateTimeEnd", create_time_end)?,
            status,
            offset,
            limit,
        };
        Ok(self.env.store.batch().list_receiver_details(&q).await?)
    }

    pub(crate) async fn delete_receiver(&self, account: &AccountContext, receiver_id: i64) -> Result<(), CoreError> {
        match self.env.store.batch().delete_receiver(account.id, receiver_id).await? {
            Ok(()) => Ok(()),
            Err(false) => Err(refuse(
                ErrorCode::OperationDeniedReceiverNotExist,
                format!("recipient list {receiver_id} does not exist"),
            )),
            Err(true) => Err(refuse(
                ErrorCode::OperationDeniedReceiverIsOperating,
                format!("recipient list {receiver_id} is used by a send task that has not finished"),
            )),
        }
    }

    pub(crate) async fn batch_send_email(&self, account: &AccountContext, req: BatchRequest) -> Result<i64, CoreError> {
        if account.suspended {
            return Err(refuse(
                ErrorCode::FailedOperationHighRejectionRate,
                "the account is suspended",
            ));
        }
        let now = self.env.clock.now_ms();
        let receiver_id = req
            .receiver_id
            .filter(|&id| id > 0)
            .ok_or_else(|| refuse(ErrorCode::MissingParameterReceiverIdNecessary, "ReceiverId is required"))?;
        let receiver = self.receiver_of(account, receiver_id).await?;
        if receiver.status != ReceiverStatus::Done || receiver.valid_count == 0 {
            return Err(refuse(
                ErrorCode::OperationDeniedReceiverStatusError,
                format!("recipient list {receiver_id} is empty or still uploading"),
            ));
        }
        let from = mailpush_model::Mailbox::parse(&req.from).map_err(|e| {
            refuse(
                ErrorCode::InvalidParameterValueIllegalEmailAddress,
                format!("FromEmailAddress: {e}"),
            )
        })?;
        self.identities
            .check_sender(account, &from.address, &from.address)
            .await?;
        if req.subject.trim().is_empty() {
            return Err(refuse(
                ErrorCode::InvalidParameterValueSubjectLengthError,
                "Subject is required",
            ));
        }
        if !(0..=2).contains(&req.ad_location) {
            return Err(refuse(ErrorCode::InvalidParameterValue, "ADLocation must be 0, 1 or 2"));
        }
        let unsubscribe = req.unsubscribe.unwrap_or_default().trim().to_string();
        // The same option as SendEmail's: "0" none, "1"-"12" the footer's language (needs public_base_url).
        let code: u8 = match unsubscribe.as_str() {
            "" => 0,
            u => u.parse().ok().filter(|c| *c <= 12).ok_or_else(|| {
                refuse(
                    ErrorCode::InvalidParameterValue,
                    format!("Unsubscribe {u:?} must be \"0\" (none) or \"1\"-\"12\" (footer language)"),
                )
            })?,
        };
        if code != 0 && self.env.settings.public_base_url.is_empty() {
            return Err(refuse(
                ErrorCode::InvalidParameterValue,
                "Unsubscribe links need the public_base_url setting; use Unsubscribe 0",
            ));
        }
        let template_id = req.template_id.ok_or_else(|| {
            refuse(
                ErrorCode::MissingParameter,
                "Template is required (Simple content is not supported for batch tasks)",
            )
        })?;
        let summary = self
            .env
            .store
            .templates()
            .template_summary(account.id, template_id)
            .await?
            .ok_or_else(|| {
                refuse(
                    ErrorCode::FailedOperationInvalidTemplateID,
                    format!("Template.TemplateID {template_id} does not exist"),
                )
            })?;
        crate::templates::check_sendable(&summary)?;
        if req.template_data.len() > self.env.settings.template_data_max_bytes {
            return Err(refuse(
                ErrorCode::InvalidParameterValueTemplateDataLenLimit,
                "Template.TemplateData is too long",
            ));
        }
        parse_data_object(&req.template_data)
            .map_err(|e| refuse(ErrorCode::FailedOperationWrongContentJson, format!("Template.{e}")))?;
        let begin_of = |begin: Option<String>, missing: ErrorCode, field: &str| -> Result<i64, CoreError> {
            let raw = begin
                .filter(|b| !b.trim().is_empty())
                .ok_or_else(|| refuse(missing, format!("{field}.BeginTime is required")))?;
            let ms = parse_time(&raw).ok_or_else(|| {
                refuse(
                    ErrorCode::InvalidParameterValue,
                    format!("{field}.BeginTime {raw:?} must look like 2026-11-26 08:00:00 (UTC)"),
                )
            })?;
            // A minute of slack for clocks and round trips.
            if ms < now - 60_000 {
                return Err(refuse(
                    ErrorCode::InvalidParameterValueBeginTimeBeforeNow,
                    format!("{field}.BeginTime {raw} is in the past"),
                ));
            }
            Ok(ms)
        };
        let (task_type, begin_ms, interval_hours, term_cycle) = match req.schedule {
            TaskSchedule::Immediate => (1, now, 0, 0),
            TaskSchedule::Timed { begin } => (
                2,
                begin_of(begin, ErrorCode::MissingParameterTimedParamNecessary, "TimedParam")?,
                0,
                0,
            ),
            TaskSchedule::Cycle {
                begin,
                interval_hours,
                term_cycle,
            } => {
                let begin = begin_of(begin, ErrorCode::MissingParameterCycleParamNecessary, "CycleParam")?;
                let interval = interval_hours.filter(|&h| h > 0).ok_or_else(|| {
                    refuse(
                        ErrorCode::MissingParameterCycleParamNecessary,
                        "CycleParam.IntervalTime (hours, at least 1) is required",
                    )
                })?;
                let interval = i32::try_from(interval)
                    .ok()
                    .filter(|&h| h <= 24 * 366)
                    .ok_or_else(|| refuse(ErrorCode::InvalidParameterValue, "CycleParam.IntervalTime is too large"))?;
                let term = term_cycle.unwrap_or(0);
                if !(0..=1).contains(&term) {
                    return Err(refuse(
                        ErrorCode::InvalidParameterValue,
                        "CycleParam.TermCycle must be 0 or 1",
                    ));
                }
                (3, begin, interval, term as i32)
            }
        };
        let task = NewSendTask {
            account_id: account.id,
            receiver_id,
            from_address: req.from.trim().to_string(),
            subject: req.subject,
            reply_to: req.reply_to.filter(|r| !r.trim().is_empty()),
            task_type,
            template_id,
            template_data: req.template_data,
            unsubscribe,
            ad_location: req.ad_location as i32,
            begin_ms,
            interval_hours,
            term_cycle,
            created_ms: now,
        };
        let id = self
            .env
            .store
            .batch()
            .create_send_task(&task, TaskStatus::ToStart)
            .await?
            .ok_or_else(|| {
                refuse(
                    ErrorCode::OperationDeniedReceiverNotExist,
                    format!("recipient list {receiver_id} does not exist"),
                )
            })?;
        self.batch_wake.notify_one();
        Ok(id)
    }

    pub(crate) async fn list_send_tasks(
        &self,
        account: &AccountContext,
        filter: TaskFilter,
        offset: i64,
        limit: i64,
    ) -> Result<(i64, Vec<SendTaskRow>), CoreError> {
        crate::error::check_page(offset, limit, MAX_LIST_LIMIT)?;
        let q = TaskQuery {
            account_id: account.id,
            status: filter.status,
            task_type: filter.task_type,
            receiver_id: filter.receiver_id,
            offset,
            limit,
        };
        Ok(self.env.store.batch().list_send_tasks(&q).await?)
    }

    pub(crate) fn batch_notify(&self) -> std::sync::Arc<tokio::sync::Notify> {
        self.batch_wake.clone()
    }
}

/// What the batch runner (crate `mailpush-batch`) reads and writes of its tasks: a narrow view, so the runner
/// never holds the whole store. Admission goes through [`crate::Mailpush::prepare_message`] as for SendEmail.
pub struct TaskRuns<'a> {
    store: &'a Store,
}

impl TaskRuns<'_> {
    /// On the embedded database (one process) drops task leases left by a killed predecessor.
    pub async fn release_stale_leases(&self) -> Result<(), CoreError> {
        if self.store.backend() == mailpush_store::Backend::Sqlite {
            self.store.batch().release_task_leases().await?;
        }
        Ok(())
    }

    /// Tasks due at `now_ms` and not leased by another runner.
    pub async fn runnable(&self, now_ms: i64, owner: &str, limit: i64) -> Result<Vec<SendTaskRow>, CoreError> {
        Ok(self.store.batch().runnable_tasks(now_ms, owner, limit).await?)
    }

    /// Leases a task to `owner` until `until_ms`; `false` if another runner holds it.
    pub async fn lease(&self, id: i64, owner: &str, now_ms: i64, until_ms: i64) -> Result<bool, CoreError> {
        Ok(self.store.batch().lease_task(id, owner, now_ms, until_ms).await?)
    }

    /// The task's account, `None` once deleted.
    pub async fn account(&self, id: mailpush_model::AccountId) -> Result<Option<AccountContext>, CoreError> {
        Ok(self
            .store
            .accounts()
            .account(id)
            .await?
            .as_ref()
            .map(AccountContext::from))
    }

    /// Recipients of a list after `after_id`.
    pub async fn count_receivers_after(&self, receiver_id: i64, after_id: i64) -> Result<i64, CoreError> {
        Ok(self.store.batch().count_receiver_after(receiver_id, after_id).await?)
    }

    /// Up to `limit` list details after `after_id`, in id order.
    pub async fn receiver_walk(
        &self,
        receiver_id: i64,
        after_id: i64,
        limit: i64,
    ) -> Result<Vec<mailpush_model::batch::ReceiverDetailRow>, CoreError> {
        Ok(self.store.batch().receiver_walk(receiver_id, after_id, limit).await?)
    }

    /// The account's deliveries not yet final.
    pub async fn open_deliveries(&self, account: mailpush_model::AccountId) -> Result<i64, CoreError> {
        Ok(self.store.batch().open_deliveries(account).await?)
    }

    /// Enqueues a chunk's messages, advances the cursor and counts the recipients against the daily limit in one
    /// transaction; nothing is written if the cursor moved or the limit would be passed.
    pub async fn feed_chunk(
        &self,
        chunk: &mailpush_model::batch::TaskChunk,
    ) -> Result<mailpush_model::batch::ChunkFeed, CoreError> {
        Ok(self.store.batch().feed_task_chunk(chunk).await?)
    }

    /// Records a run's progress; `false` if the cursor moved meanwhile.
    pub async fn update_run(&self, update: &mailpush_model::batch::TaskRunUpdate) -> Result<bool, CoreError> {
        Ok(self.store.batch().update_task_run(update).await?)
    }
}

impl Batch {
    pub(crate) fn task_runs(&self) -> TaskRuns<'_> {
        TaskRuns { store: &self.env.store }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip() {
        let ms = parse_time("2026-11-26 08:30:05").expect("parse");
        assert_eq!(format_time(ms), "2026-11-26 08:30:05");
        assert!(parse_time("2026-11-26").is_none());
        assert!(parse_time("yesterday").is_none());
    }

    #[test]
    fn data_merge_lets_the_recipient_win() {
        let m = merge_data(r#"{"a":"base","b":"base"}"#, Some(r#"{"b":"mine"}"#)).expect("merge");
        let v: serde_json::Value = serde_json::from_str(&m).expect("json");
        assert_eq!(v["a"], "base");
        assert_eq!(v["b"], "mine");
        assert!(merge_data("", None).is_ok());
        assert!(merge_data("[1]", None).is_err());
        assert!(merge_data("", Some("nope")).is_err());
    }

    #[test]
    fn ad_mark_positions() {
        assert_eq!(subject_with_ad("Sale", 0), "Sale");
        assert_eq!(subject_with_ad("Sale", 1), "<AD>Sale");
        assert_eq!(subject_with_ad("Sale", 2), "Sale<AD>");
    }
}
