//! What the web console asks beyond the Tencent actions: the message search and one message's timeline, the
//! batch-task controls (pause, resume, cancel) and a template preview of unsaved content. Each is scoped by
//! the account like every other query, and the preview renders with the engine and data rules `SendEmail` uses.

use crate::accounts::AccountContext;
use crate::batch::Batch;
use crate::error::CoreError;
use crate::sending::Sending;
use crate::templates::Templates;
use mailpush_model::ErrorCode;
use mailpush_model::batch::TaskStatus;
use mailpush_model::console::{AttemptRow, MessageHit, TimelineEvent};
use mailpush_store::{MessageSearch, TaskControl};
use mailpush_template::{CompiledTemplate, RenderedContent, TemplateData};

/// Most rows one console message search returns.
pub const MAX_MESSAGE_SEARCH: i64 = 200;

/// A console message search.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageQuery {
    /// The UTC day, `YYYY-MM-DD`.
    pub date: String,
    /// Only this MessageId.
    pub message_id: Option<String>,
    /// Only this recipient.
    pub recipient: Option<String>,
    /// Only From addresses containing this.
    pub sender: Option<String>,
}

/// One message: its recipients, each delivery attempt and each event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageTimeline {
    /// One per recipient.
    pub recipients: Vec<MessageHit>,
    /// Every delivery attempt, in time order.
    pub attempts: Vec<AttemptRow>,
    /// Every event (delivered, deferred, bounce, open, click, unsubscribe, complaint), in time order.
    pub events: Vec<TimelineEvent>,
}

/// A console control of a batch task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskAction {
    /// Stop feeding it until resumed.
    Pause,
    /// Feed it again.
    Resume,
    /// Never feed it again.
    Cancel,
}

fn non_empty(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

impl Sending {
    pub(crate) async fn search_messages(
        &self,
        account: &AccountContext,
        q: &MessageQuery,
    ) -> Result<Vec<MessageHit>, CoreError> {
        let (from_ms, to_ms) = mailpush_model::clock::day_range(&q.date).ok_or_else(|| {
            CoreError::refused(
                ErrorCode::InvalidParameterValueWrongDate,
                format!("date {:?} must be a date like 2026-11-26", q.date),
            )
        })?;
        Ok(self
            .env
            .store
            .console()
            .search_messages(&MessageSearch {
                account_id: account.id,
                from_ms,
                to_ms,
                message_id: non_empty(&q.message_id),
                recipient: non_empty(&q.recipient).map(|r| r.to_ascii_lowercase()),
                sender: non_empty(&q.sender),
                limit: MAX_MESSAGE_SEARCH,
            })
            .await?)
    }

    pub(crate) async fn message_timeline(
        &self,
        account: &AccountContext,
        message_id: &str,
    ) -> Result<MessageTimeline, CoreError> {
        let (recipients, attempts, events) = self
            .env
            .store
            .console()
            .message_timeline(account.id, message_id.trim())
            .await?;
        if recipients.is_empty() {
            return Err(CoreError::refused(
                ErrorCode::ResourceNotFound,
                format!("no message {message_id}"),
            ));
        }
        Ok(MessageTimeline {
            recipients,
            attempts,
            events,
        })
    }
}

impl Batch {
    pub(crate) async fn control_send_task(
        &self,
        account: &AccountContext,
        task_id: i64,
        action: TaskAction,
    ) -> Result<(), CoreError> {
        use TaskStatus::*;
        let (from, to): (&[TaskStatus], Option<TaskStatus>) = match action {
            TaskAction::Pause => (&[ToStart, Sending, Paused], Some(Held)),
            TaskAction::Resume => (&[Held], None),
            TaskAction::Cancel => (&[ToStart, Sending, Paused, Held], Some(Cancelled)),
        };
        match self
            .env
            .store
            .console()
            .control_send_task(account.id, task_id, from, to, self.env.clock.now_ms())
            .await?
        {
            TaskControl::Done => {
                if action == TaskAction::Resume {
                    self.batch_wake.notify_one();
                }
                Ok(())
            }
            TaskControl::NoSuchTask => Err(CoreError::refused(
                ErrorCode::ResourceNotFound,
                format!("no batch task {task_id}"),
            )),
            TaskControl::WrongState => Err(CoreError::refused(
                ErrorCode::OperationDenied,
                format!("batch task {task_id} cannot be {action:?}d in its current state").to_lowercase(),
            )),
        }
    }
}

impl Templates {
    pub(crate) fn preview_template(
        &self,
        subject: &str,
        html: Option<&str>,
        text: Option<&str>,
        data: &str,
    ) -> Result<RenderedContent, CoreError> {
        let engine = &self.engine;
        let data = if data.trim().is_empty() { "{}" } else { data };
        let data = TemplateData::parse(data, &engine.data_policy).map_err(crate::templates::data_error)?;
        let compiled = CompiledTemplate::compile(subject, html, text)
            .map_err(|e| CoreError::refused(ErrorCode::InvalidParameterValueTemplateContentIsWrong, e.to_string()))?;
        compiled.render(&data).map_err(crate::templates::render_error)
    }
}
