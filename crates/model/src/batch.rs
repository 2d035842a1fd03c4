//! Batch sending: recipient lists (`CreateReceiver`, `ListReceiverDetails`) and send tasks (`BatchSendEmail`,
//! `ListSendTasks`) as stored and listed, and what the batch runner feeds the queue.

use crate::ids::AccountId;
use crate::queue::NewMessage;

/// A recipient list's `ReceiversStatus`, stored as its wire value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "sqlx", derive(sqlx::Type))]
#[repr(i32)]
pub enum ReceiverStatus {
    /// Created, nothing uploaded yet.
    Pending = 1,
    /// An upload (CSV import) is running.
    Uploading = 2,
    /// Uploaded.
    Done = 3,
}

impl ReceiverStatus {
    /// The wire value.
    pub fn code(self) -> i32 {
        self as i32
    }
}

/// A send task's `TaskStatus`, stored as its wire value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "sqlx", derive(sqlx::Type))]
#[repr(i32)]
pub enum TaskStatus {
    /// Waiting for its start time.
    ToStart = 1,
    /// Feeding the queue.
    Sending = 5,
    /// Today's quota is used up; resumes the next (UTC) day.
    Paused = 6,
    /// Stopped on an error (`ErrMsg`).
    Error = 7,
    /// Paused from the console (mailpush extension); resumed from there.
    Held = 8,
    /// Cancelled from the console (mailpush extension): never fed again.
    Cancelled = 9,
    /// Every recipient fed (or the recurring task terminated).
    Done = 10,
}

impl TaskStatus {
    /// The wire value.
    pub fn code(self) -> i32 {
        self as i32
    }
}

/// A recipient list.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "sqlx", derive(sqlx::FromRow))]
pub struct ReceiverRow {
    /// `ReceiverId`.
    pub id: i64,
    /// Owner.
    pub account_id: AccountId,
    /// `ReceiversName`.
    pub name: String,
    /// `Desc`.
    pub description: String,
    /// `ReceiversStatus`.
    pub status: ReceiverStatus,
    /// Valid addresses (`Count`).
    pub valid_count: i64,
    /// Invalid addresses (`InvalidCount`).
    pub invalid_count: i64,
    /// Creation, Unix ms.
    pub created_ms: i64,
}

/// One address to add to a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewReceiverDetail {
    /// The address (normalised when valid, as given when invalid).
    pub email: String,
    /// Per-recipient TemplateData (JSON object text).
    pub template_data: Option<String>,
    /// `None` = valid; `Some(reason)` = invalid, stored and counted but never sent to.
    pub invalid_reason: Option<String>,
}

/// One address of a list, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "sqlx", derive(sqlx::FromRow))]
pub struct ReceiverDetailRow {
    /// `EmailId`.
    pub id: i64,
    /// `Email`.
    pub email: String,
    /// `TemplateData`.
    pub template_data: Option<String>,
    /// 1 valid, 2 invalid.
    pub status: i32,
    /// `Reason` (invalid ones).
    pub reason: String,
    /// Unix ms.
    pub created_ms: i64,
}

/// A page of list details with the list's totals.
#[derive(Debug, Clone, Default)]
pub struct DetailPage {
    /// Rows matching the filter.
    pub total: i64,
    /// Valid addresses matching the filter.
    pub valid: i64,
    /// Invalid addresses matching the filter.
    pub invalid: i64,
    /// The page.
    pub rows: Vec<ReceiverDetailRow>,
}

/// A task to create.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "sqlx", derive(sqlx::FromRow))]
pub struct NewSendTask {
    /// Owner.
    pub account_id: AccountId,
    /// List.
    pub receiver_id: i64,
    /// `FromEmailAddress`.
    pub from_address: String,
    /// `Subject`.
    pub subject: String,
    /// `ReplyToAddresses`.
    pub reply_to: Option<String>,
    /// 1 immediate / 2 scheduled / 3 recurring.
    pub task_type: i32,
    /// `Template.TemplateID`.
    pub template_id: i64,
    /// `Template.TemplateData` (merged under each recipient's data).
    pub template_data: String,
    /// `Unsubscribe`.
    pub unsubscribe: String,
    /// `ADLocation`.
    pub ad_location: i32,
    /// First run, Unix ms.
    pub begin_ms: i64,
    /// Recurring: hours between runs.
    pub interval_hours: i32,
    /// Recurring: 1 = terminate after the current run.
    pub term_cycle: i32,
    /// Creation, Unix ms.
    pub created_ms: i64,
}

/// A stored task.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "sqlx", derive(sqlx::FromRow))]
pub struct SendTaskRow {
    /// `TaskId`.
    pub id: i64,
    /// What it was created with.
    #[cfg_attr(feature = "sqlx", sqlx(flatten))]
    pub task: NewSendTask,
    /// `TaskStatus`.
    pub status: TaskStatus,
    /// `RequestCount`: recipients this task is to send to (all runs so far).
    pub request_count: i64,
    /// `SendCount`: mails handed to the queue.
    pub send_count: i64,
    /// `CacheCount`: recipients waiting for the next day's quota.
    pub cache_count: i64,
    /// Recipients skipped (suppressed, unsubscribed, refused by admission).
    pub skip_count: i64,
    /// `ErrMsg`.
    pub err_msg: String,
    /// The last `receiver_details.id` fed.
    pub cursor: i64,
    /// Runs started (recurring tasks).
    pub runs: i32,
    /// When the runner looks at it next, Unix ms.
    pub next_run_ms: i64,
    /// Last change, Unix ms.
    pub updated_ms: i64,
    /// The list's name (empty if the list is gone).
    pub receivers_name: String,
}

/// A chunk the runner feeds: messages plus the counters and cursor they move.
#[derive(Debug, Clone)]
pub struct TaskChunk {
    /// Task.
    pub task_id: i64,
    /// The cursor the runner read (compare-and-swap).
    pub expected_cursor: i64,
    /// The cursor after this chunk.
    pub new_cursor: i64,
    /// Messages to enqueue (may be empty when every recipient of the chunk was skipped).
    pub messages: Vec<NewMessage>,
    /// Added to `send_count`.
    pub sent: i64,
    /// Added to `skip_count`.
    pub skipped: i64,
    /// Unix ms.
    pub now_ms: i64,
    /// The most recipients the account may have admitted on `now_ms`'s UTC day, this chunk's included, on every
    /// path (the counter `SendEmail` and SMTP admission count against); `None` = not limited.
    pub daily_limit: Option<i64>,
}

/// What feeding a [`TaskChunk`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkFeed {
    /// Messages stored, cursor and counters moved.
    Fed,
    /// Another runner moved the cursor first: nothing written.
    CursorMoved,
    /// The chunk's recipients would take the account past [`TaskChunk::daily_limit`]: nothing written.
    OverDailyLimit,
}

/// A state change of a task, applied only if its cursor is still `expected_cursor`.
#[derive(Debug, Clone)]
pub struct TaskRunUpdate {
    /// Task.
    pub task_id: i64,
    /// Compare-and-swap guard.
    pub expected_cursor: i64,
    /// New status.
    pub status: TaskStatus,
    /// New cursor (0 restarts the list).
    pub cursor: i64,
    /// Added to `request_count` (a run starting adds the list size).
    pub add_requests: i64,
    /// New `cache_count`.
    pub cache_count: i64,
    /// New `err_msg`.
    pub err_msg: String,
    /// Added to `runs`.
    pub add_runs: i32,
    /// When the runner looks again.
    pub next_run_ms: i64,
    /// Unix ms.
    pub now_ms: i64,
}
