//! Data retention: the periodic pass that keeps the database bounded.
//!
//! Every `retention_check_secs`, mail whose final state is older than `retention_days` (by the core's clock)
//! is pruned through the store in small batches with a pause between them, then the SQLite file gives its
//! freed pages back a bounded number at a time. The SES v2 rows of each message (its configuration set and tags)
//! go with it, and those of SES mail refused at admission (no message, only `REJECT` / `RENDERING_FAILURE`
//! events) once they are older than the cutoff. Received DMARC aggregate reports whose period ended before the
//! cutoff go too, and the TLS-RPT counters and report marks of UTC days before it. The daily statistics rollup, the blacklists and the
//! suppression lists are not touched (see `mailpush_store`'s `retention`).

use std::time::Duration;

use crate::background::{FirstPass, spawn_periodic};
use mailpush_model::retention::{FilePages, PruneCounts};
use tokio::sync::watch;

use crate::{CoreError, Env};

/// Messages examined per write transaction: small, so that the SQLite writer is never held for long.
pub const PRUNE_BATCH: u32 = 200;
/// Pause between two batches, during which other writers (enqueues, outcomes) take their turn.
pub const PRUNE_PAUSE: Duration = Duration::from_millis(20);
/// Free pages given back per step (4 KiB pages: 8 MiB).
pub const RELEASE_PAGES: u32 = 2_048;

const DAY_MS: i64 = 86_400_000;

/// What one retention pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionPass {
    /// Rows pruned.
    pub pruned: PruneCounts,
    /// Received DMARC aggregate reports pruned (their period ended before the cutoff).
    pub dmarc_reports: u64,
    /// TLS-RPT counter rows and report marks pruned (of UTC days before the cutoff's).
    pub tls_rpt_rows: u64,
    /// SQLite pages given back to the file system.
    pub pages_released: u64,
}

/// The running retention task; `shutdown` stops it (between two batches of a pass in progress).
pub type RetentionHandle = crate::background::BackgroundTask;

/// The retention pass and its timer.
pub struct Retention {
    pub(crate) env: Env,
}

impl Retention {
    pub(crate) async fn vacuum_database(&self) -> Result<Option<(FilePages, FilePages)>, CoreError> {
        let retention = self.env.store.retention();
        let Some(before) = retention.file_pages().await? else {
            return Ok(None);
        };
        retention.vacuum().await?;
        let after = retention.file_pages().await?.unwrap_or(before);
        Ok(Some((before, after)))
    }

    pub(crate) fn retention_cutoff_ms(&self) -> Option<i64> {
        let days = i64::try_from(self.env.settings.retention_days).ok()?;
        (days > 0).then(|| self.env.clock.now_ms().saturating_sub(days.saturating_mul(DAY_MS)))
    }

    pub(crate) async fn run_retention(&self, stop: Option<&watch::Receiver<bool>>) -> Result<RetentionPass, CoreError> {
        let mut pass = RetentionPass::default();
        let Some(cutoff) = self.retention_cutoff_ms() else {
            return Ok(pass);
        };
        let stopped = || stop.is_some_and(|s| *s.borrow());
        let store = &self.env.store;
        let mut cursor = None;
        loop {
            let batch = store
                .retention()
                .prune_batch(cutoff, cursor.as_ref(), PRUNE_BATCH)
                .await?;
            pass.pruned.messages += batch.deleted.messages;
            pass.pruned.deliveries += batch.deleted.deliveries;
            pass.pruned.attempts += batch.deleted.attempts;
            pass.pruned.events += batch.deleted.events;
            pass.pruned.ses_messages += batch.deleted.ses_messages;
            count_pruned(&batch.deleted);
            let Some(next) = batch.next else { break };
            if stopped() {
                return Ok(pass);
            }
            cursor = Some(next);
            tokio::time::sleep(PRUNE_PAUSE).await;
        }
        loop {
            let orphans = store.retention().prune_ses_orphans(cutoff, PRUNE_BATCH).await?;
            pass.pruned.events += orphans.events;
            pass.pruned.ses_messages += orphans.ses_messages;
            count_pruned(&orphans);
            if orphans.ses_messages < u64::from(PRUNE_BATCH) || stopped() {
                break;
            }
            tokio::time::sleep(PRUNE_PAUSE).await;
        }
        loop {
            let reports = store.retention().prune_reports(cutoff, PRUNE_BATCH).await?;
            pass.dmarc_reports += reports.dmarc_reports;
            pass.tls_rpt_rows += reports.tls_rpt_rows;
            mailpush_telemetry::retention_pruned("dmarc_reports", reports.dmarc_reports);
            mailpush_telemetry::retention_pruned("tls_rpt", reports.tls_rpt_rows);
            if reports.dmarc_reports + reports.tls_rpt_rows == 0 || stopped() {
                break;
            }
            tokio::time::sleep(PRUNE_PAUSE).await;
        }
        loop {
            let released = store.retention().release_free_pages(RELEASE_PAGES).await?;
            pass.pages_released += released;
            if released < u64::from(RELEASE_PAGES) || stopped() {
                break;
            }
            tokio::time::sleep(PRUNE_PAUSE).await;
        }
        Ok(pass)
    }

    pub(crate) fn start_retention(self: &std::sync::Arc<Self>) -> RetentionHandle {
        let s = &self.env.settings;
        let secs = if s.retention_days > 0 {
            s.retention_check_secs
        } else {
            0
        };
        spawn_periodic(self, secs, FirstPass::AfterPeriod, |core, stop_rx| async move {
            match core.run_retention(Some(&stop_rx)).await {
                Ok(pass) if pass != RetentionPass::default() => tracing::info!(
                    messages = pass.pruned.messages,
                    deliveries = pass.pruned.deliveries,
                    attempts = pass.pruned.attempts,
                    events = pass.pruned.events,
                    ses_messages = pass.pruned.ses_messages,
                    dmarc_reports = pass.dmarc_reports,
                    tls_rpt_rows = pass.tls_rpt_rows,
                    pages_released = pass.pages_released,
                    "retention pass pruned old mail"
                ),
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "retention pass failed"),
            }
        })
    }
}

/// Counts a batch's deletions on `/metrics`, by table.
fn count_pruned(deleted: &PruneCounts) {
    for (table, rows) in [
        ("messages", deleted.messages),
        ("deliveries", deleted.deliveries),
        ("attempts", deleted.attempts),
        ("events", deleted.events),
        ("ses_messages", deleted.ses_messages),
    ] {
        mailpush_telemetry::retention_pruned(table, rows);
    }
}
