//! Liveness and readiness: whether this process can serve requests now. Readiness asks the database
//! (`SELECT 1` and a one-row write, each within `db_probe_timeout_secs`), remembers a recent disk-full
//! refusal, and turns false while the process shuts down.

use crate::Env;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde::Serialize;

/// A disk-full refusal this recent keeps readiness false even when the tiny probe write fits (a message
/// written since clears it: there is room again).
pub const DISK_FULL_MEMORY: Duration = Duration::from_secs(60);

/// What the readiness probe found; `ready` only when every check passed.
#[derive(Debug, Clone, Serialize)]
pub struct Readiness {
    /// All checks passed.
    pub ready: bool,
    /// The database answered `SELECT 1` (`ok`, or why not).
    pub database: String,
    /// The database took the probe write (`ok`, `skipped` when unreachable, or why not).
    pub write: String,
    /// `ok`, or `full` when a write was refused for lack of space within the last minute and no message
    /// was written since.
    pub disk: String,
    /// `ok`, or `shutting down`.
    pub process: String,
}

/// Readiness, draining and database gauges.
pub struct Health {
    pub(crate) env: Env,
    /// Set when the process begins to shut down: readiness then answers 503.
    pub(crate) draining: std::sync::atomic::AtomicBool,
}

impl Health {
    pub(crate) fn begin_draining(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }

    pub(crate) async fn readiness(&self) -> Readiness {
        let within = Duration::from_secs(self.env.settings.db_probe_timeout_secs.max(1));
        let store = &self.env.store;
        let (database, write) = match store.probe_read(within).await {
            Err(e) => {
                tracing::warn!(error = %e, "readiness: database unreachable");
                (e.to_string(), "skipped".to_string())
            }
            Ok(()) => match store
                .probe_write(&self.env.settings.helo_name, self.env.clock.now_ms(), within)
                .await
            {
                Ok(()) => ("ok".to_string(), "ok".to_string()),
                Err(e) => {
                    tracing::warn!(error = %e, "readiness: database write failed");
                    ("ok".to_string(), e.to_string())
                }
            },
        };
        let counters = store.health_counters();
        let disk = if write.contains("disk is full") || counters.since_disk_full.is_some_and(|d| d < DISK_FULL_MEMORY) {
            "full"
        } else {
            "ok"
        };
        let process = if self.draining.load(Ordering::Relaxed) {
            "shutting down"
        } else {
            "ok"
        };
        Readiness {
            ready: database == "ok" && write == "ok" && disk == "ok" && process == "ok",
            database,
            write,
            disk: disk.to_string(),
            process: process.to_string(),
        }
    }

    pub(crate) fn database_metrics(&self) -> String {
        let c = self.env.store.health_counters();
        format!(
            "# HELP mailpush_db_disk_full_total Database operations refused because the disk is full.\n\
             # TYPE mailpush_db_disk_full_total counter\nmailpush_db_disk_full_total {}\n\
             # HELP mailpush_db_unavailable_total Database operations that failed for lack of an answer in time.\n\
             # TYPE mailpush_db_unavailable_total counter\nmailpush_db_unavailable_total {}\n",
            c.disk_full_errors, c.unavailable_errors
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Settings;
    use mailpush_model::clock::SystemClock;

    #[tokio::test]
    async fn ready_on_a_working_database_and_not_while_draining() {
        let dir = tempfile::tempdir().expect("tempdir");
        let settings = Settings {
            data_dir: dir.path().to_path_buf(),
            ..Settings::default()
        };
        let store = mailpush_store::Store::open(&settings.database_url(), mailpush_store::StoreOptions::default())
            .await
            .expect("store");
        let health = Health {
            env: Env {
                store: store.clone(),
                settings: std::sync::Arc::new(settings),
                clock: std::sync::Arc::new(SystemClock),
            },
            draining: Default::default(),
        };
        let r = health.readiness().await;
        assert!(r.ready, "{r:?}");
        assert!(health.database_metrics().contains("mailpush_db_disk_full_total 0"));
        health.begin_draining();
        let r = health.readiness().await;
        assert!(!r.ready);
        assert_eq!(r.process, "shutting down");
        store.close().await;
        let r = health.readiness().await;
        assert!(!r.ready);
        assert_ne!(r.database, "ok");
    }
}
