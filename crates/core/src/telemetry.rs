//! Metrics of the core: the database gauges, refreshed on a timer (`metrics_refresh_secs`) instead of per
//! scrape, and the record of each delivery attempt (counter, latency, one structured log line).
//!
//! The names are `mailpush_telemetry::names`; `/metrics` renders the process's recorder.

use std::net::IpAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use crate::background::{FirstPass, spawn_periodic};
use mailpush_store::{AttemptResult, ClaimedDelivery};
use mailpush_telemetry::names::*;

use crate::{CoreError, Env};

/// The running metrics refresher; `shutdown` stops it.
pub type MetricsRefresherHandle = crate::background::BackgroundTask;

/// The label of an attempt's outcome in `mailpush_deliveries_total`, and whether it is final.
pub fn outcome_label(result: &AttemptResult) -> (&'static str, bool) {
    match result {
        AttemptResult::Delivered { .. } => ("delivered", true),
        AttemptResult::Rejected { .. } => ("bounced", true),
        AttemptResult::SoftBounced { .. } => ("soft_bounced", true),
        AttemptResult::Dropped { .. } => ("dropped", true),
        AttemptResult::Expired { .. } => ("expired", true),
        AttemptResult::Deferred { .. } => ("deferred", false),
    }
}

/// How one attempt went on the wire.
pub(crate) struct AttemptTransport<'a> {
    /// The MX host talked to, if one was reached.
    pub mx: Option<&'a str>,
    /// The source address used (`None`: the operating system's choice).
    pub source: Option<IpAddr>,
    /// Whether the session was encrypted.
    pub tls: bool,
    /// From the first connection attempt to the last reply.
    pub took: std::time::Duration,
}

/// Records one delivery attempt: `mailpush_deliveries_total`, for a final outcome the latency since
/// acceptance, and one log record with what an operator looks for.
pub(crate) fn delivery_attempt(d: &ClaimedDelivery, now_ms: i64, result: &AttemptResult, wire: AttemptTransport<'_>) {
    let AttemptTransport { mx, source, tls, took } = wire;
    let (outcome, final_state) = outcome_label(result);
    let latency = final_state.then(|| (now_ms - d.request_ms) as f64 / 1000.0);
    mailpush_telemetry::delivery(outcome, &d.domain, source, latency);
    tracing::info!(
        target: "mailpush::delivery",
        message_id = %d.message_id,
        domain = %d.domain,
        mx = mx.unwrap_or("-"),
        source_ip = %source.map_or_else(|| "default".to_string(), |ip| ip.to_string()),
        tls,
        outcome,
        attempt = d.attempts + 1,
        reply = result.message(),
        duration_ms = took.as_millis() as u64,
        "delivery attempt"
    );
}

/// When the refresh next counts the final deliveries (`mailpush_queue_deliveries{state="done"}`). That count
/// reads the whole retained history on PostgreSQL (10 million deliveries: about a second, in three processes), so
/// it runs every five minutes, and never oftener than a hundred times its own duration, while the waiting
/// deliveries are counted from the due index at every refresh. The gauge keeps its last value in between.
#[derive(Debug)]
pub(crate) struct FinalCountSchedule {
    /// Unix ms; `i64::MIN` until the first count.
    due_ms: AtomicI64,
}

impl FinalCountSchedule {
    /// At least this long between two counts.
    const EVERY_MS: i64 = 300_000;
    /// And at least this many times the last count's duration.
    const MAX_SHARE: i64 = 100;

    pub(crate) fn new() -> Self {
        Self {
            due_ms: AtomicI64::new(i64::MIN),
        }
    }

    fn is_due(&self, now_ms: i64) -> bool {
        now_ms >= self.due_ms.load(Ordering::Relaxed)
    }

    fn counted(&self, now_ms: i64, took: Duration) {
        let took_ms = i64::try_from(took.as_millis()).unwrap_or(i64::MAX / Self::MAX_SHARE);
        let wait = Self::EVERY_MS.max(took_ms.saturating_mul(Self::MAX_SHARE));
        self.due_ms.store(now_ms.saturating_add(wait), Ordering::Relaxed);
    }
}

/// The database gauges of `/metrics`, refreshed on a timer from the services that own the figures.
pub struct Telemetry {
    pub(crate) env: Env,
    pub(crate) accounts: std::sync::Arc<crate::accounts::Accounts>,
    pub(crate) sending: std::sync::Arc<crate::sending::Sending>,
    pub(crate) statistics: std::sync::Arc<crate::stats::Statistics>,
    pub(crate) limits: std::sync::Arc<crate::limits::Limits>,
    pub(crate) warmup: std::sync::Arc<crate::warmup::Warmup>,
    pub(crate) source_ips: std::sync::Arc<crate::source_ips::SourceIps>,
    pub(crate) final_count: FinalCountSchedule,
}

impl Telemetry {
    pub(crate) fn start_metrics_refresher(self: &std::sync::Arc<Self>) -> MetricsRefresherHandle {
        mailpush_telemetry::install();
        spawn_periodic(
            self,
            self.env.settings.metrics_refresh_secs,
            FirstPass::Now,
            |core, _| async move {
                if let Err(e) = core.refresh_metrics().await {
                    tracing::warn!(error = %e, "refreshing the database metrics failed");
                }
            },
        )
    }

    pub(crate) async fn refresh_metrics(&self) -> Result<(), CoreError> {
        let c = self.env.store.health_counters();
        metrics::counter!(DB_DISK_FULL).absolute(c.disk_full_errors);
        metrics::counter!(DB_UNAVAILABLE).absolute(c.unavailable_errors);
        let spool = self.env.store.body_spool_usage();
        metrics::gauge!(BODY_SPOOL_SEGMENTS).set(spool.segments as f64);
        metrics::gauge!(BODY_SPOOL_BYTES).set(spool.bytes as f64);
        mailpush_telemetry::domains().refresh();

        let (raised, rates) = self.statistics.feedback.bounce_rates();
        metrics::counter!(BOUNCE_RATE_WARNINGS).absolute(raised);
        for (name, (rate, over)) in rates {
            metrics::gauge!(ACCOUNT_BOUNCE_RATE, "account" => name.clone()).set(rate);
            metrics::gauge!(ACCOUNT_BOUNCE_WARNING, "account" => name).set(f64::from(u8::from(over)));
        }

        let now = self.env.clock.now_ms();
        let waiting = if self.final_count.is_due(now) {
            let started = Instant::now();
            let q = self.sending.queue_counts().await?;
            self.final_count.counted(now, started.elapsed());
            metrics::gauge!(QUEUE_DELIVERIES, "state" => "done").set(q.done as f64);
            q.waiting()
        } else {
            self.sending.waiting_counts().await?
        };
        for (state, n) in [
            ("pending", waiting.pending),
            ("deferred", waiting.deferred),
            ("leased", waiting.leased),
        ] {
            metrics::gauge!(QUEUE_DELIVERIES, "state" => state).set(n as f64);
        }
        let age = match self.env.store.queue().next_due_ms().await? {
            Some(due) if due < now => (now - due) as f64 / 1000.0,
            _ => 0.0,
        };
        metrics::gauge!(QUEUE_OLDEST_DUE_AGE_SECONDS).set(age);

        for account in self.accounts.list_accounts().await? {
            let a = account.name.clone();
            let quota = self.limits.send_quota(&account).await?;
            metrics::gauge!(ACCOUNT_SENT_TODAY, "account" => a.clone()).set(quota.sent_today as f64);
            metrics::gauge!(ACCOUNT_DAILY_QUOTA, "account" => a.clone()).set(quota.daily_quota as f64);
            metrics::gauge!(ACCOUNT_SENDS_PER_SECOND, "account" => a.clone()).set(quota.sends_per_second as f64);
            for d in &quota.domains {
                let labels = [("account", a.clone()), ("domain", d.domain.clone())];
                metrics::gauge!(DOMAIN_REPUTATION_LEVEL, &labels).set(f64::from(d.level));
                metrics::gauge!(DOMAIN_DAILY_QUOTA, &labels).set(d.daily_quota as f64);
            }
            for w in self.warmup.domain_warmup(&account).await? {
                let labels = [("account", a.clone()), ("domain", w.domain.clone())];
                metrics::gauge!(DOMAIN_WARMUP_ALLOWANCE, &labels).set(w.allowance.unwrap_or(-1) as f64);
                metrics::gauge!(DOMAIN_WARMUP_SENT_TODAY, &labels).set(w.sent_today as f64);
                metrics::gauge!(DOMAIN_WARMUP_HELD, &labels).set(w.held as f64);
            }
        }
        for ip in self.source_ips.all_source_ip_quota().await? {
            let labels = [("ip", ip.address.to_string()), ("pool", ip.pool.clone())];
            metrics::gauge!(SOURCE_IP_SENT_TODAY, &labels).set(ip.sent_today as f64);
            metrics::gauge!(SOURCE_IP_WARMUP_ALLOWANCE, &labels)
                .set(ip.warmup_allowance.map_or(f64::INFINITY, |a| a as f64));
            metrics::gauge!(SOURCE_IP_WARMUP_DAY, &labels).set(ip.warmup_day as f64);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_final_deliveries_are_counted_at_first_then_every_five_minutes() {
        let schedule = FinalCountSchedule::new();
        assert!(schedule.is_due(0));
        schedule.counted(1_000, Duration::from_millis(20));
        assert!(!schedule.is_due(1_000));
        assert!(!schedule.is_due(1_000 + FinalCountSchedule::EVERY_MS - 1));
        assert!(schedule.is_due(1_000 + FinalCountSchedule::EVERY_MS));
    }

    #[test]
    fn a_slow_count_waits_a_hundred_times_its_duration() {
        let schedule = FinalCountSchedule::new();
        schedule.counted(0, Duration::from_secs(10));
        assert!(!schedule.is_due(999_999));
        assert!(schedule.is_due(1_000_000));
        schedule.counted(0, Duration::MAX);
        assert!(!schedule.is_due(i64::MAX / 2));
    }
}
