//! mailpush's Prometheus metrics: one recorder per process (the `metrics` facade with
//! `metrics-exporter-prometheus`), the names of every metric mailpush exports, and the few helpers the crates
//! record through, so that a name and its labels are written in one place.
//!
//! Events are counted where they happen (API requests, SMTP sessions, delivery attempts, callbacks, DNS
//! lookups); database figures (queue depth, quotas, warm-up) are gauges that core refreshes on a timer, never
//! per scrape. `/metrics` is [`render`].

#![warn(missing_docs)]

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Every metric mailpush exports, by name (the Grafana dashboard in `contrib/` uses these).
pub mod names {
    /// Counter: API requests, labels `action` (unknown names folded into `unknown`) and `code` (`Success` or the
    /// Tencent error code).
    pub const API_REQUESTS: &str = "mailpush_api_requests_total";
    /// Histogram: API request latency in seconds, label `action`.
    pub const API_REQUEST_SECONDS: &str = "mailpush_api_request_duration_seconds";
    /// Counter: SMTP connections accepted, label `listener` (`submission`, `inbound`).
    pub const SMTP_SESSIONS: &str = "mailpush_smtp_sessions_total";
    /// Counter: failed SMTP AUTH attempts.
    pub const SMTP_AUTH_FAILURES: &str = "mailpush_smtp_auth_failures_total";
    /// Counter: delivery attempts by `outcome`, receiving `domain` (top N, the rest `other`) and `source_ip`.
    pub const DELIVERIES: &str = "mailpush_deliveries_total";
    /// Histogram: seconds from acceptance to the final state, label `outcome`.
    pub const DELIVERY_LATENCY_SECONDS: &str = "mailpush_delivery_latency_seconds";
    /// Gauge: deliveries by queue state (`pending`, `deferred`, `leased`, `done`).
    pub const QUEUE_DELIVERIES: &str = "mailpush_queue_deliveries";
    /// Gauge: seconds the most overdue delivery has been due (0 when nothing is overdue).
    pub const QUEUE_OLDEST_DUE_AGE_SECONDS: &str = "mailpush_queue_oldest_due_age_seconds";
    /// Gauge: signatures waiting for the DKIM signing pool.
    pub const DKIM_SIGN_QUEUE: &str = "mailpush_dkim_sign_queue_depth";
    /// Counter: callback POSTs by `outcome` (`delivered`, `failed`, `given_up`).
    pub const CALLBACKS: &str = "mailpush_callbacks_total";
    /// Counter: DNS lookups, label `kind` (`mx`, `ip`, `txt`).
    pub const DNS_LOOKUPS: &str = "mailpush_dns_lookups_total";
    /// Counter: DNS lookups that failed (not NXDOMAIN / no records: timeouts, SERVFAIL…), label `kind`.
    pub const DNS_FAILURES: &str = "mailpush_dns_lookup_failures_total";
    /// Counter: retention: rows pruned, label `table`.
    pub const RETENTION_PRUNED: &str = "mailpush_retention_pruned_total";
    /// Counter: database operations refused because the disk is full.
    pub const DB_DISK_FULL: &str = "mailpush_db_disk_full_total";
    /// Counter: database operations that failed for lack of an answer in time.
    pub const DB_UNAVAILABLE: &str = "mailpush_db_unavailable_total";
    /// Gauge: segment files of this process's body spool (SQLite in a file).
    pub const BODY_SPOOL_SEGMENTS: &str = "mailpush_body_spool_segments";
    /// Gauge: bytes of those segment files.
    pub const BODY_SPOOL_BYTES: &str = "mailpush_body_spool_bytes";
    /// Counter: bounce-rate warnings raised by this process.
    pub const BOUNCE_RATE_WARNINGS: &str = "mailpush_bounce_rate_warnings_total";
    /// Gauge: bounced / (delivered + bounced) over the reputation window, label `account`.
    pub const ACCOUNT_BOUNCE_RATE: &str = "mailpush_account_bounce_rate_percent";
    /// Gauge: 1 while the account's bounce-rate warning is in force, label `account`.
    pub const ACCOUNT_BOUNCE_WARNING: &str = "mailpush_account_bounce_warning";
    /// Gauge: recipients admitted today (UTC), label `account`.
    pub const ACCOUNT_SENT_TODAY: &str = "mailpush_account_sent_today";
    /// Gauge: today's quota in recipients, label `account`.
    pub const ACCOUNT_DAILY_QUOTA: &str = "mailpush_account_daily_quota";
    /// Gauge: mails per second allowed, label `account`.
    pub const ACCOUNT_SENDS_PER_SECOND: &str = "mailpush_account_sends_per_second";
    /// Gauge: sending domain reputation level, labels `account`, `domain`.
    pub const DOMAIN_REPUTATION_LEVEL: &str = "mailpush_domain_reputation_level";
    /// Gauge: daily quota of the domain's level, labels `account`, `domain`.
    pub const DOMAIN_DAILY_QUOTA: &str = "mailpush_domain_daily_quota";
    /// Gauge: today's warm-up allowance of a sending domain (-1 = unlimited), labels `account`, `domain`.
    pub const DOMAIN_WARMUP_ALLOWANCE: &str = "mailpush_domain_warmup_allowance";
    /// Gauge: deliveries that used today's warm-up allowance, labels `account`, `domain`.
    pub const DOMAIN_WARMUP_SENT_TODAY: &str = "mailpush_domain_warmup_sent_today";
    /// Gauge: deliveries held for a later day's warm-up allowance, labels `account`, `domain`.
    pub const DOMAIN_WARMUP_HELD: &str = "mailpush_domain_warmup_held";
    /// Gauge: recipients sent from a source address today, labels `ip`, `pool`.
    pub const SOURCE_IP_SENT_TODAY: &str = "mailpush_source_ip_sent_today";
    /// Gauge: today's warm-up allowance of a source address (+Inf = no limit), labels `ip`, `pool`.
    pub const SOURCE_IP_WARMUP_ALLOWANCE: &str = "mailpush_source_ip_warmup_allowance";
    /// Gauge: day of a source address's warm-up, labels `ip`, `pool`.
    pub const SOURCE_IP_WARMUP_DAY: &str = "mailpush_source_ip_warmup_day";
}

use names::*;

/// Latency buckets (seconds) of the request histograms: 1 ms to 10 s.
const REQUEST_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Buckets (seconds) of acceptance → final state: 100 ms to 3 days.
const DELIVERY_BUCKETS: &[f64] = &[
    0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 14_400.0, 86_400.0, 259_200.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process's recorder (once; later calls return the same handle). Every metric recorded before
/// it is lost, so binaries call it first thing.
pub fn install() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(API_REQUEST_SECONDS.into()), REQUEST_BUCKETS)
            .and_then(|b| b.set_buckets_for_metric(Matcher::Full(DELIVERY_LATENCY_SECONDS.into()), DELIVERY_BUCKETS))
            .unwrap_or_else(|_| PrometheusBuilder::new());
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        // Another recorder already installed (a test harness): keep ours for `render`, theirs records.
        let _ = metrics::set_global_recorder(recorder);
        describe();
        // Counters that exist from the start, so a scrape shows them at 0 rather than not at all.
        metrics::counter!(SMTP_AUTH_FAILURES).absolute(0);
        metrics::counter!(BOUNCE_RATE_WARNINGS).absolute(0);
        metrics::gauge!(DKIM_SIGN_QUEUE).set(0.0);
        for outcome in ["delivered", "failed", "given_up"] {
            metrics::counter!(CALLBACKS, "outcome" => outcome).absolute(0);
        }
        for kind in ["mx", "ip", "txt"] {
            metrics::counter!(DNS_LOOKUPS, "kind" => kind).absolute(0);
            metrics::counter!(DNS_FAILURES, "kind" => kind).absolute(0);
        }
        for listener in ["submission", "inbound"] {
            metrics::counter!(SMTP_SESSIONS, "listener" => listener).absolute(0);
        }
        for table in ["messages", "deliveries", "attempts", "events"] {
            metrics::counter!(RETENTION_PRUNED, "table" => table).absolute(0);
        }
        handle
    })
}

/// The Prometheus text exposition of everything recorded in this process.
pub fn render() -> String {
    let handle = install();
    handle.run_upkeep();
    handle.render()
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(API_REQUESTS, "API requests by action and reply code.");
    describe_histogram!(API_REQUEST_SECONDS, metrics::Unit::Seconds, "API request latency.");
    describe_counter!(SMTP_SESSIONS, "SMTP connections accepted, by listener.");
    describe_counter!(SMTP_AUTH_FAILURES, "Failed SMTP AUTH attempts.");
    describe_counter!(
        DELIVERIES,
        "Delivery attempts by outcome, receiving domain and source address."
    );
    describe_histogram!(
        DELIVERY_LATENCY_SECONDS,
        metrics::Unit::Seconds,
        "Acceptance to final state."
    );
    describe_gauge!(QUEUE_DELIVERIES, "Deliveries by queue state.");
    describe_gauge!(
        QUEUE_OLDEST_DUE_AGE_SECONDS,
        "How long the most overdue delivery has been due."
    );
    describe_gauge!(DKIM_SIGN_QUEUE, "Signatures waiting for the DKIM signing pool.");
    describe_counter!(CALLBACKS, "Callback POSTs by outcome.");
    describe_counter!(DNS_LOOKUPS, "DNS lookups by kind.");
    describe_counter!(DNS_FAILURES, "DNS lookups that failed (timeouts, SERVFAIL), by kind.");
    describe_counter!(RETENTION_PRUNED, "Rows deleted by retention, by table.");
    describe_counter!(DB_DISK_FULL, "Database operations refused because the disk is full.");
    describe_counter!(
        DB_UNAVAILABLE,
        "Database operations that failed for lack of an answer in time."
    );
    describe_gauge!(
        BODY_SPOOL_SEGMENTS,
        "Segment files of the body spool beside the SQLite database."
    );
    describe_gauge!(
        BODY_SPOOL_BYTES,
        metrics::Unit::Bytes,
        "Bytes of the body spool's segment files."
    );
    describe_counter!(BOUNCE_RATE_WARNINGS, "Bounce-rate warnings raised by this process.");
    describe_gauge!(
        ACCOUNT_BOUNCE_RATE,
        "Bounced / (delivered + bounced) over the reputation window."
    );
    describe_gauge!(
        ACCOUNT_BOUNCE_WARNING,
        "1 while the account's bounce-rate warning is in force."
    );
    describe_gauge!(ACCOUNT_SENT_TODAY, "Recipients admitted today (UTC).");
    describe_gauge!(ACCOUNT_DAILY_QUOTA, "Today's quota in recipients.");
    describe_gauge!(ACCOUNT_SENDS_PER_SECOND, "Mails per second allowed.");
    describe_gauge!(DOMAIN_REPUTATION_LEVEL, "Sending domain reputation level.");
    describe_gauge!(DOMAIN_DAILY_QUOTA, "Daily quota of the domain's level.");
    describe_gauge!(
        DOMAIN_WARMUP_ALLOWANCE,
        "Today's warm-up delivery allowance of the sending domain (-1 = unlimited)."
    );
    describe_gauge!(
        DOMAIN_WARMUP_SENT_TODAY,
        "Deliveries that used today's warm-up allowance."
    );
    describe_gauge!(
        DOMAIN_WARMUP_HELD,
        "Deliveries held for a later day's warm-up allowance."
    );
    describe_gauge!(
        SOURCE_IP_SENT_TODAY,
        "Recipients sent from the source address today (UTC)."
    );
    describe_gauge!(
        SOURCE_IP_WARMUP_ALLOWANCE,
        "Today's warm-up allowance of the source address (+Inf = no limit)."
    );
    describe_gauge!(
        SOURCE_IP_WARMUP_DAY,
        "Day of the source address's warm-up (1 = first day of sending)."
    );
}

/// An API request answered with `code` (`Success` or a Tencent error code) after `elapsed`.
pub fn api_request(action: &'static str, code: &'static str, elapsed: Duration) {
    metrics::counter!(API_REQUESTS, "action" => action, "code" => code).increment(1);
    metrics::histogram!(API_REQUEST_SECONDS, "action" => action).record(elapsed.as_secs_f64());
}

/// An SMTP connection accepted on `listener` (`submission` or `inbound`).
pub fn smtp_session(listener: &'static str) {
    metrics::counter!(SMTP_SESSIONS, "listener" => listener).increment(1);
}

/// A failed SMTP AUTH.
pub fn smtp_auth_failure() {
    metrics::counter!(SMTP_AUTH_FAILURES).increment(1);
}

/// One delivery attempt's outcome towards receiving domain `domain`, from `source` (`None`: the OS's choice),
/// and for a final outcome the seconds since acceptance.
pub fn delivery(outcome: &'static str, domain: &str, source: Option<std::net::IpAddr>, final_after: Option<f64>) {
    let domain = domains().label(domain);
    let source = source.map_or_else(|| "default".to_string(), |ip| ip.to_string());
    metrics::counter!(DELIVERIES, "outcome" => outcome, "domain" => domain, "source_ip" => source).increment(1);
    if let Some(secs) = final_after {
        metrics::histogram!(DELIVERY_LATENCY_SECONDS, "outcome" => outcome).record(secs.max(0.0));
    }
}

/// A callback POST's outcome (`delivered`, `failed`, `given_up`).
pub fn callback(outcome: &'static str) {
    metrics::counter!(CALLBACKS, "outcome" => outcome).increment(1);
}

/// A DNS lookup of `kind` (`mx`, `ip`, `txt`); `failed` when it got no answer (not for NXDOMAIN or no
/// records, which are answers).
pub fn dns_lookup(kind: &'static str, failed: bool) {
    metrics::counter!(DNS_LOOKUPS, "kind" => kind).increment(1);
    if failed {
        metrics::counter!(DNS_FAILURES, "kind" => kind).increment(1);
    }
}

/// The DKIM signing pool's waiting signatures.
pub fn dkim_sign_queue(depth: usize) {
    metrics::gauge!(DKIM_SIGN_QUEUE).set(depth as f64);
}

/// Rows deleted by retention from `table`.
pub fn retention_pruned(table: &'static str, rows: u64) {
    metrics::counter!(RETENTION_PRUNED, "table" => table).increment(rows);
}

/// How many receiving domains get a label of their own in [`names::DELIVERIES`].
pub const TOP_DOMAINS: usize = 20;

/// Receiving domains for labels: the [`TOP_DOMAINS`] domains with the most attempts (as of the last
/// [`DomainFolder::refresh`]) keep their name, every other is `other`, so the number of series stays bounded.
#[derive(Debug, Default)]
pub struct DomainFolder {
    inner: Mutex<FolderState>,
}

#[derive(Debug, Default)]
struct FolderState {
    counts: HashMap<String, u64>,
    top: HashSet<String>,
}

/// Most domains counted between two refreshes; past it the rarest are forgotten.
const COUNTED_DOMAINS: usize = 10 * TOP_DOMAINS;

impl DomainFolder {
    /// The label of `domain`, counting it. Until the first refresh the first [`TOP_DOMAINS`] domains seen are
    /// the top.
    pub fn label(&self, domain: &str) -> String {
        let mut s = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let domain = domain.to_ascii_lowercase();
        if s.counts.len() >= COUNTED_DOMAINS && !s.counts.contains_key(&domain) {
            Self::forget_rarest(&mut s);
        }
        *s.counts.entry(domain.clone()).or_default() += 1;
        if s.top.len() < TOP_DOMAINS {
            s.top.insert(domain.clone());
        }
        if s.top.contains(&domain) {
            domain
        } else {
            "other".to_string()
        }
    }

    /// Recomputes the top domains from the counts.
    pub fn refresh(&self) {
        let mut s = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let mut ranked: Vec<(&String, &u64)> = s.counts.iter().collect();
        ranked.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
        let top: HashSet<String> = ranked.into_iter().take(TOP_DOMAINS).map(|(d, _)| d.clone()).collect();
        s.top = top;
    }

    fn forget_rarest(s: &mut FolderState) {
        let mut ranked: Vec<(String, u64)> = s.counts.iter().map(|(d, n)| (d.clone(), *n)).collect();
        ranked.sort_by_key(|r| std::cmp::Reverse(r.1));
        ranked.truncate(COUNTED_DOMAINS / 2);
        s.counts = ranked.into_iter().collect();
    }
}

/// The process's domain folder.
pub fn domains() -> &'static DomainFolder {
    static FOLDER: OnceLock<DomainFolder> = OnceLock::new();
    FOLDER.get_or_init(DomainFolder::default)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_past_the_top_are_folded() {
        let f = DomainFolder::default();
        for i in 0..TOP_DOMAINS {
            assert_eq!(f.label(&format!("d{i}.example")), format!("d{i}.example"));
        }
        assert_eq!(f.label("late.example"), "other");
        // late.example becomes the busiest: after a refresh it has its own label and a quiet one is folded.
        for _ in 0..50 {
            f.label("late.example");
        }
        f.refresh();
        assert_eq!(f.label("Late.Example"), "late.example");
        let folded = (0..TOP_DOMAINS)
            .filter(|i| f.label(&format!("d{i}.example")) == "other")
            .count();
        assert_eq!(folded, 1);
    }

    #[test]
    fn a_scrape_shows_what_was_recorded() {
        install();
        api_request("SendEmail", "Success", Duration::from_millis(3));
        delivery("delivered", "gmail.com", None, Some(1.5));
        let text = render();
        assert!(
            text.contains("mailpush_api_requests_total{action=\"SendEmail\",code=\"Success\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE mailpush_api_request_duration_seconds histogram"),
            "{text}"
        );
        assert!(text.contains("mailpush_delivery_latency_seconds_bucket"), "{text}");
        assert!(text.contains("mailpush_smtp_auth_failures_total 0"), "{text}");
        metrics::gauge!(SOURCE_IP_WARMUP_ALLOWANCE, "ip" => "127.0.0.2", "pool" => "shared").set(f64::INFINITY);
        metrics::gauge!(DOMAIN_WARMUP_HELD, "account" => "a", "domain" => "d.example").set(3.0);
        let text = render();
        assert!(
            text.contains("mailpush_domain_warmup_held{account=\"a\",domain=\"d.example\"} 3\n"),
            "{text}"
        );
    }
}
