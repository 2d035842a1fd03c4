//! The background services of a mailpush node, started and stopped as one: the delivery worker, the callback
//! dispatcher (with the bounce-rate monitor), the periodic DNS re-check of sending domains, the reputation-level
//! evaluation, the batch-task runner, data retention (pruning mail older than `retention_days`) and TLS-RPT (the
//! daily reports of outbound TLS outcomes to receiving domains).
//!
//! Every binary that runs them (`mailpush serve`, `mailpush-worker`) calls [`start`], so a service added here
//! runs on every such node; before, each binary kept its own list, and a task missing from one list failed
//! silently.

#![warn(missing_docs)]

use mailpush_core::{CallbackHandle, CoreError, Mailpush, RecheckHandle};

/// The running services of one node; [`Services::shutdown`] stops them.
pub struct Services {
    worker: mailpush_core::WorkerHandle,
    callbacks: CallbackHandle,
    recheck: RecheckHandle,
    levels: mailpush_core::LevelEvaluatorHandle,
    batch: mailpush_batch::RunnerHandle,
    retention: mailpush_core::RetentionHandle,
    tls_reports: mailpush_core::BackgroundTask,
}

/// Starts every background service of a node on the current tokio runtime.
pub async fn start(core: &Mailpush) -> Result<Services, CoreError> {
    let worker = core.start_worker().await?;
    let callbacks = core.start_callback_dispatcher()?;
    let recheck = core.start_identity_rechecker();
    let levels = core.start_level_evaluator();
    let batch = mailpush_batch::start(core.clone(), mailpush_batch::RunnerConfig::from_core(core)).await?;
    let retention = core.start_retention();
    let tls_reports = core.start_tls_reports()?;
    Ok(Services {
        worker,
        callbacks,
        recheck,
        levels,
        batch,
        retention,
        tls_reports,
    })
}

impl Services {
    /// Stops the services: the batch runner first (it feeds the queue), the worker after its in-flight deliveries
    /// finish and their outcomes are written, then TLS-RPT, which writes the worker's last session counts.
    pub async fn shutdown(self) {
        self.batch.shutdown().await;
        self.retention.shutdown().await;
        self.recheck.shutdown().await;
        self.levels.shutdown().await;
        self.callbacks.shutdown().await;
        self.worker.shutdown().await;
        // After the worker: the TLS outcomes of its last sessions are written too.
        self.tls_reports.shutdown().await;
    }
}
