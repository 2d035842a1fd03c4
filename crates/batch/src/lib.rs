//! The batch runner: turns `BatchSendEmail` tasks into queued mail.
//!
//! One loop per process (started by `mailpush serve` and `mailpush-worker`). Each round it takes the runnable
//! tasks (to start and due, sending, or paused from a previous day) and gives each ONE chunk, so several tasks
//! of one account or domain share its allowance fairly (round-robin). A chunk is:
//! 1. the account's open deliveries below `batch_queue_window` (the queue is topped up, never flooded);
//! 2. [`Mailpush::batch_allowance`] above 0, else the task pauses (status 6, the rest counted in CacheCount)
//!    until the next UTC day, when it resumes by itself where it stopped;
//! 3. each recipient admitted through [`Mailpush::prepare_message`], SendEmail's admission path (template
//!    rendered with the task's TemplateData under the recipient's own, sender gate, and whatever quota and
//!    suppression rules admission applies; recipients admission drops, e.g. SendStatus 1007/1013, are counted
//!    as skipped);
//! 4. the messages enqueued, their recipients counted against the account's daily limit and the task's cursor
//!    (last list detail id) advanced in ONE transaction ([`mailpush_core::TaskRuns::feed_chunk`], a
//!    compare-and-swap on the cursor, a conditional update of the daily counter). A kill before the commit
//!    leaves nothing, after it the cursor says so: a restart never feeds anyone twice, two runners on one
//!    PostgreSQL database never both feed the same chunk, and no mix of runners and API processes takes an
//!    account past its daily limit (a chunk that no longer fits is prepared again, smaller, or the task
//!    pauses). Tasks are also leased to one runner at a time, so they do not waste work racing.
//!
//! Recurring tasks (type 3) restart the list every `IntervalTime` hours from `BeginTime` until `TermCycle`.

#![warn(missing_docs)]

use std::time::Duration;

use mailpush_core::{CoreError, Mailpush, SendContent, SendRequest};
use mailpush_core::{merge_data, subject_with_ad};
use mailpush_model::batch::TaskStatus;
use mailpush_model::clock::{DAY_MS, day_start};
use mailpush_model::{ErrorCode, TriggerType};
use mailpush_model::{
    batch::{ChunkFeed, SendTaskRow, TaskChunk, TaskRunUpdate},
    queue::NewMessage,
};
use tokio::sync::watch;

/// How the runner paces itself.
#[derive(Debug, Clone)]
pub struct RunnerConfig {
    /// Lease owner name (unique per process).
    pub owner: String,
    /// Recipients per chunk (one transaction).
    pub chunk: i64,
    /// Most open deliveries of an account before the runner stops topping up.
    pub window: i64,
    /// Idle poll interval.
    pub poll: Duration,
    /// How long a task lease lasts, ms of the service clock.
    pub lease_ms: i64,
}

impl RunnerConfig {
    /// From the settings in force.
    pub fn from_core(core: &Mailpush) -> RunnerConfig {
        let s = core.settings();
        RunnerConfig {
            owner: format!("{}-{}-batch", s.helo_name, std::process::id()),
            chunk: i64::from(s.batch_chunk.max(1)),
            window: i64::from(s.batch_queue_window.max(1)),
            poll: Duration::from_millis(s.batch_poll_ms.max(10)),
            lease_ms: 60_000,
        }
    }
}

/// The running loop; `shutdown` stops it after the current chunk.
pub type RunnerHandle = mailpush_core::BackgroundTask;

/// Starts the runner on the current runtime. On the embedded database (one process) task leases left by a
/// killed predecessor are dropped first.
pub async fn start(core: Mailpush, cfg: RunnerConfig) -> Result<RunnerHandle, CoreError> {
    core.task_runs().release_stale_leases().await?;
    let (stop, mut stopped) = watch::channel(false);
    let wake = core.batch_notify();
    let task = tokio::spawn(async move {
        let runner = Runner { core, cfg };
        loop {
            if *stopped.borrow() {
                break;
            }
            let progressed = match runner.round().await {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(error = %e, "batch runner round failed");
                    false
                }
            };
            if !progressed {
                tokio::select! {
                    _ = tokio::time::sleep(runner.cfg.poll) => {}
                    _ = wake.notified() => {}
                    _ = stopped.changed() => {}
                }
            }
        }
    });
    Ok(RunnerHandle::new(stop, task))
}

/// Error codes that concern one recipient (its data or address): the recipient is skipped and counted.
fn recipient_level(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::InvalidParameterValueTemplateDataLenLimit
            | ErrorCode::FailedOperationWrongContentJson
            | ErrorCode::InvalidParameterValueInValidTemplateData
            | ErrorCode::InvalidParameterValueTemplateNotMatchData
            | ErrorCode::InvalidParameterValueSubjectLengthError
            | ErrorCode::InvalidParameterValueIllegalEmailAddress
            | ErrorCode::FailedOperationReceiverHasUnsubscribed
            | ErrorCode::FailedOperationFrequencyLimit
    )
}

/// What one chunk ended with.
enum ChunkEnd {
    /// Keep going.
    More,
    /// The daily quota ran out (admission said so).
    Quota,
    /// A task-level refusal.
    Error(String),
}

struct Runner {
    core: Mailpush,
    cfg: RunnerConfig,
}

impl Runner {
    /// One chunk for every runnable task; whether anything moved.
    async fn round(&self) -> Result<bool, CoreError> {
        let now = self.core.now_ms();
        let tasks = self.core.task_runs().runnable(now, &self.cfg.owner, 1000).await?;
        let mut progressed = false;
        for task in tasks {
            match self.step(task).await {
                Ok(p) => progressed |= p,
                Err(e) => tracing::warn!(error = %e, "batch task step failed"),
            }
        }
        Ok(progressed)
    }

    fn update(&self, task: &SendTaskRow, status: TaskStatus, cursor: i64, next_run_ms: i64) -> TaskRunUpdate {
        TaskRunUpdate {
            task_id: task.id,
            expected_cursor: task.cursor,
            status,
            cursor,
            add_requests: 0,
            cache_count: 0,
            err_msg: String::new(),
            add_runs: 0,
            next_run_ms,
            now_ms: self.core.now_ms(),
        }
    }

    async fn fail(&self, task: &SendTaskRow, message: String) -> Result<bool, CoreError> {
        tracing::warn!(task = task.id, %message, "batch task stopped");
        let mut u = self.update(task, TaskStatus::Error, task.cursor, task.next_run_ms);
        u.err_msg = message;
        self.core.task_runs().update_run(&u).await?;
        Ok(true)
    }

    async fn pause(&self, task: &SendTaskRow) -> Result<bool, CoreError> {
        let now = self.core.now_ms();
        let rest = self
            .core
            .task_runs()
            .count_receivers_after(task.task.receiver_id, task.cursor)
            .await?;
        let mut u = self.update(task, TaskStatus::Paused, task.cursor, day_start(now) + DAY_MS);
        u.cache_count = rest;
        self.core.task_runs().update_run(&u).await?;
        tracing::info!(
            task = task.id,
            cached = rest,
            "daily quota used up: task paused until tomorrow"
        );
        Ok(true)
    }

    /// Advances one task by at most one chunk; whether anything moved.
    async fn step(&self, mut task: SendTaskRow) -> Result<bool, CoreError> {
        let runs = self.core.task_runs();
        let now = self.core.now_ms();
        if !runs
            .lease(task.id, &self.cfg.owner, now, now + self.cfg.lease_ms)
            .await?
        {
            return Ok(false);
        }
        let Some(account) = runs.account(task.task.account_id).await? else {
            return self.fail(&task, "the account no longer exists".into()).await;
        };
        if task.status == TaskStatus::ToStart {
            let count = runs.count_receivers_after(task.task.receiver_id, 0).await?;
            if count == 0 {
                return self
                    .fail(&task, "the recipient list is empty or was deleted".into())
                    .await;
            }
            let mut u = self.update(&task, TaskStatus::Sending, 0, now);
            u.add_requests = count;
            u.add_runs = 1;
            if !runs.update_run(&u).await? {
                return Ok(false);
            }
            tracing::info!(task = task.id, recipients = count, "batch task run started");
            return Ok(true);
        }
        if task.status == TaskStatus::Paused {
            // Runnable again: a new day has begun (next_run_ms was the next day's start).
            let u = self.update(&task, TaskStatus::Sending, task.cursor, now);
            if !runs.update_run(&u).await? {
                return Ok(false);
            }
            task.status = TaskStatus::Sending;
            tracing::info!(task = task.id, "new day: paused batch task resumes");
        }
        // Top the queue up only while the account's backlog is below the window.
        let open = runs.open_deliveries(account.id).await?;
        if open >= self.cfg.window {
            return Ok(false);
        }
        let allowance = self.core.batch_allowance(&account).await?;
        let remaining = allowance.remaining();
        if remaining == 0 {
            return self.pause(&task).await;
        }
        let want = self
            .cfg
            .chunk
            .min(self.cfg.window - open)
            .min(i64::try_from(remaining).unwrap_or(i64::MAX));
        let details = runs.receiver_walk(task.task.receiver_id, task.cursor, want).await?;
        if details.is_empty() {
            return self.finish_run(&task).await;
        }
        let subject = subject_with_ad(&task.task.subject, task.task.ad_location);
        let mut messages: Vec<NewMessage> = Vec::with_capacity(details.len());
        let (mut sent, mut skipped) = (0i64, 0i64);
        let mut cursor = task.cursor;
        let mut end = ChunkEnd::More;
        for d in &details {
            let data = match merge_data(&task.task.template_data, d.template_data.as_deref()) {
                Ok(data) => data,
                Err(e) => {
                    tracing::debug!(task = task.id, recipient = %d.email, error = %e, "recipient skipped");
                    skipped += 1;
                    cursor = d.id;
                    continue;
                }
            };
            let req = SendRequest {
                from: task.task.from_address.clone(),
                destination: vec![d.email.clone()],
                reply_to: task.task.reply_to.clone(),
                subject: subject.clone(),
                content: Some(SendContent::Template {
                    id: task.task.template_id,
                    data,
                }),
                trigger: TriggerType::Batch,
                ..SendRequest::default()
            };
            match self
                .core
                .prepare_message(
                    &account,
                    req,
                    mailpush_core::SendOptions {
                        // Empty = not given: the sender address's AddressUnsubscribeConfig decides.
                        unsubscribe: task.task.unsubscribe.trim().parse().ok(),
                    },
                )
                .await
            {
                Ok(msg) => {
                    if msg.recipients.iter().all(|r| !r.send_status.is_ok()) {
                        skipped += 1;
                    } else {
                        sent += 1;
                    }
                    messages.push(msg);
                }
                Err(CoreError::Refused(e)) if e.code == ErrorCode::FailedOperationExceedSendLimit => {
                    end = ChunkEnd::Quota;
                    break;
                }
                Err(CoreError::Refused(e)) if recipient_level(e.code) => {
                    tracing::debug!(task = task.id, recipient = %d.email, error = %e, "recipient skipped");
                    skipped += 1;
                }
                Err(CoreError::Refused(e)) => {
                    end = ChunkEnd::Error(format!("{}: {}", e.code.as_str(), e.message));
                    break;
                }
                Err(e) => return Err(e),
            }
            cursor = d.id;
        }
        let mut progressed = false;
        if cursor != task.cursor {
            let chunk = TaskChunk {
                task_id: task.id,
                expected_cursor: task.cursor,
                new_cursor: cursor,
                messages,
                sent,
                skipped,
                now_ms: self.core.now_ms(),
                daily_limit: Some(allowance.daily_limit),
            };
            match runs.feed_chunk(&chunk).await? {
                ChunkFeed::Fed => {}
                // Another runner's chunk stands; or other sends used the allowance meanwhile: the next round
                // reads it again and feeds what still fits, or pauses.
                ChunkFeed::CursorMoved | ChunkFeed::OverDailyLimit => return Ok(false),
            }
            self.core.wake_worker();
            task.cursor = cursor;
            progressed = true;
        }
        match end {
            ChunkEnd::More => Ok(progressed),
            ChunkEnd::Quota => self.pause(&task).await,
            ChunkEnd::Error(m) => self.fail(&task, m).await,
        }
    }

    /// The list is exhausted: done, or (recurring, not terminated) wait for the next cycle.
    async fn finish_run(&self, task: &SendTaskRow) -> Result<bool, CoreError> {
        let now = self.core.now_ms();
        let t = &task.task;
        let u = if t.task_type == 3 && t.term_cycle == 0 && t.interval_hours > 0 {
            let interval = i64::from(t.interval_hours) * 3_600_000;
            // The next cycle boundary after now (missed cycles are not replayed).
            let elapsed = (now - t.begin_ms).max(0);
            let next = t.begin_ms + (elapsed / interval + 1) * interval;
            self.update(task, TaskStatus::ToStart, 0, next)
        } else {
            self.update(task, TaskStatus::Done, task.cursor, now)
        };
        self.core.task_runs().update_run(&u).await?;
        tracing::info!(task = task.id, status = u.status.code(), "batch task run finished");
        Ok(true)
    }
}
