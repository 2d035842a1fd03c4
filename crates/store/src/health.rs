//! Database health: a client-side deadline on every store operation (a frozen connection must not hang a
//! request), counters of disk-full and unavailable answers, and the cheap probes behind readiness.

use std::future::Future;
use std::sync::Mutex;
use std::sync::PoisonError;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::sql::query;
use crate::{Store, StoreError};

/// Counters of what the database answered, since the store opened.
#[derive(Debug, Default)]
pub(crate) struct Health {
    disk_full: AtomicU64,
    unavailable: AtomicU64,
    last_disk_full: Mutex<Option<Instant>>,
}

impl Health {
    /// Counts `result`'s error if it is one readiness and metrics report.
    pub(crate) fn note<T>(&self, result: &Result<T, StoreError>) {
        match result {
            Err(StoreError::DiskFull(_)) => {
                self.disk_full.fetch_add(1, Ordering::Relaxed);
                *self.last_disk_full.lock().unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
            }
            Err(StoreError::Unavailable(_)) => {
                self.unavailable.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
    }

    /// A message write succeeded: the disk has room again, so an earlier disk-full refusal no longer counts
    /// as recent.
    pub(crate) fn write_succeeded(&self) {
        let mut last = self.last_disk_full.lock().unwrap_or_else(PoisonError::into_inner);
        if last.is_some() {
            *last = None;
        }
    }
}

/// A snapshot of the health counters (for `/metrics` and readiness).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthCounters {
    /// Operations refused because the database disk is full.
    pub disk_full_errors: u64,
    /// Operations that failed because the database did not answer in time.
    pub unavailable_errors: u64,
    /// How long ago the last disk-full refusal happened, if no message was written since.
    pub since_disk_full: Option<Duration>,
}

/// Runs `fut` for at most `within`; past it the operation is abandoned (its connection is dropped and tested
/// before reuse) and [`StoreError::Unavailable`] answered.
pub(crate) async fn deadline<T>(
    within: Duration,
    fut: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    match tokio::time::timeout(within, fut).await {
        Ok(r) => r,
        Err(_) => Err(StoreError::Unavailable(format!(
            "no answer from the database within {} ms",
            within.as_millis()
        ))),
    }
}

impl Store {
    /// Runs one store operation under the client-side deadline (`StoreOptions::operation_timeout`) and counts
    /// its disk-full or unavailable failure.
    pub(crate) async fn guarded<T>(&self, fut: impl Future<Output = Result<T, StoreError>>) -> Result<T, StoreError> {
        self.guarded_within(self.inner.opts.operation_timeout, fut).await
    }

    /// [`Store::guarded`] with another deadline.
    pub(crate) async fn guarded_within<T>(
        &self,
        within: Duration,
        fut: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let r = deadline(within, fut).await;
        self.inner.health.note(&r);
        r
    }

    /// Readiness, read side: `SELECT 1` on a pooled connection within `within`.
    pub async fn probe_read(&self, within: Duration) -> Result<(), StoreError> {
        self.guarded_within(within, query("SELECT 1").execute(self.reader()))
            .await
            .map(drop)
    }

    /// Readiness, write side: upserts `node`'s row of the health table within `within`. A full disk, a
    /// read-only database or a frozen connection fails it.
    pub async fn probe_write(&self, node: &str, now_ms: i64, within: Duration) -> Result<(), StoreError> {
        let upsert = query(
            "INSERT INTO health_probe (node, at_ms) VALUES ($1, $2) \
             ON CONFLICT (node) DO UPDATE SET at_ms = excluded.at_ms",
        )
        .bind(node)
        .bind(now_ms);
        self.guarded_within(within, upsert.execute(self.writer()))
            .await
            .map(drop)
    }

    /// The health counters since open.
    pub fn health_counters(&self) -> HealthCounters {
        let h = &self.inner.health;
        HealthCounters {
            disk_full_errors: h.disk_full.load(Ordering::Relaxed),
            unavailable_errors: h.unavailable.load(Ordering::Relaxed),
            since_disk_full: h
                .last_disk_full
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .map(|at| at.elapsed()),
        }
    }
}
