//! Configuration: one flat TOML table whose every key can be overridden by the environment variable
//! `MAILPUSH_<KEY IN UPPER CASE>` (lists comma-separated). Flat on purpose: the env name of a key is obvious.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Every setting of every mailpush process. Unknown keys in the file are an error (typos must not pass silently).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Where the embedded database, the generated master key and certificates live.
    pub data_dir: PathBuf,
    /// `sqlite:PATH` or `postgres://…`; default: SQLite file `mailpush.db` in `data_dir`.
    pub database_url: Option<String>,
    /// HTTP API listen address (port 0 picks a free port; the process prints the one it got).
    pub api_listen: SocketAddr,
    /// `mailpush-worker` and `mailpush-smtp`: an HTTP listener for `/livez`, `/readyz`, `/healthz` and
    /// `/metrics` (none by default; the API listener serves them on the other binaries).
    pub admin_listen: Option<SocketAddr>,
    /// Simultaneous HTTP API connections; one more is answered `503` and closed (0 = unlimited).
    pub api_max_connections: usize,
    /// A request's header must arrive in full within this many seconds of its first byte, or the connection
    /// is closed (slowloris).
    pub api_header_timeout_secs: u64,
    /// A keep-alive HTTP connection with no request in progress is closed after this many seconds.
    pub api_idle_timeout_secs: u64,
    /// A request body must arrive in full within this many seconds of its header, or it is refused and the
    /// connection closed.
    pub api_body_timeout_secs: u64,
    /// SMTP submission listen address (STARTTLS offered); none = no SMTP endpoint.
    pub smtp_listen: Option<SocketAddr>,
    /// SMTP submission with implicit TLS (port 465 style); none = off.
    pub smtps_listen: Option<SocketAddr>,
    /// Inbound MX address (port 25 style, no AUTH): accepts only DSNs, complaint reports and mailto
    /// unsubscribes for mailpush's own addresses; `None` = not started.
    pub inbound_listen: Option<SocketAddr>,
    /// PEM certificate chain for SMTP TLS; with `smtp_tls_key`. None = a self-signed one in `data_dir`.
    pub smtp_tls_cert: Option<PathBuf>,
    /// PEM private key for SMTP TLS.
    pub smtp_tls_key: Option<PathBuf>,
    /// PEM certificate chain of the HTTP API listener; with `api_tls_key` the API speaks HTTPS (TLS 1.3 and 1.2),
    /// both files re-read on SIGHUP. None = plain HTTP.
    pub api_tls_cert: Option<PathBuf>,
    /// PEM private key of `api_tls_cert`.
    pub api_tls_key: Option<PathBuf>,
    /// Allow AUTH without TLS from loopback clients (local relays, tests). Never from other addresses.
    pub smtp_allow_plaintext_auth_loopback: bool,
    /// Client networks (CIDR, like Postfix `mynetworks`) whose mail is accepted without AUTH for
    /// `smtp_trusted_account`.
    pub smtp_trusted_networks: Vec<String>,
    /// The account mail from `smtp_trusted_networks` is submitted for.
    pub smtp_trusted_account: Option<String>,
    /// Simultaneous SMTP connections allowed from one client IP (clients in `smtp_trusted_networks` are exempt).
    pub smtp_max_connections_per_ip: usize,
    /// Simultaneous SMTP submission connections (`smtp_listen` and `smtps_listen` together); one more is
    /// answered `421 4.3.2` and closed (0 = unlimited).
    pub smtp_max_connections: usize,
    /// Simultaneous inbound MX connections (`inbound_listen`); one more gets `421 4.3.2` (0 = unlimited).
    pub inbound_max_connections: usize,
    /// An SMTP client silent for this long gets `421` and is disconnected, seconds.
    pub smtp_timeout_secs: u64,
    /// Leave the client's HELO name and IP address out of the `Received:` header of authenticated SMTP
    /// submissions (the submitting host stays private; trusted-network mail is always traced).
    pub received_hide_client_ip: bool,
    /// Failed AUTH attempts allowed per (client IP, username) within `smtp_auth_window_secs`; then AUTH as that
    /// username from that IP gets `454` until the window passes. Never a lock of the username from other IPs.
    pub smtp_auth_max_failures: u32,
    /// Failed AUTH attempts allowed per client IP (IPv6: per /64), whatever the usernames, within the window.
    pub smtp_auth_max_failures_per_ip: u32,
    /// The window of `smtp_auth_max_failures` and `smtp_auth_max_failures_per_ip`, seconds.
    pub smtp_auth_window_secs: u64,
    /// Delay before a failed AUTH's reply, ms: none for the client IP's first failure in the window, then this,
    /// doubling with each further failure of that IP, up to `smtp_auth_delay_max_ms`.
    pub smtp_auth_delay_ms: u64,
    /// The cap of `smtp_auth_delay_ms`'s growth, ms.
    pub smtp_auth_delay_max_ms: u64,
    /// DNS servers (ip:port) used for every lookup; empty = the system resolver configuration.
    pub dns_servers: Vec<SocketAddr>,
    /// The port dialled on MX hosts (25 in production; tests point it at a sink).
    pub delivery_port: u16,
    /// A smarthost (`host:port`, IPv6 in brackets): every mail is handed to this MTA instead of the recipients'
    /// MX hosts (no MX lookup; `delivery_port` and `outbound_tls` do not apply). DKIM signing is unchanged.
    pub relay_host: Option<String>,
    /// SMTP AUTH username for `relay_host` (with `relay_password`).
    pub relay_username: Option<String>,
    /// SMTP AUTH password for `relay_host`.
    pub relay_password: Option<String>,
    /// TLS towards `relay_host`: `none` (plain text), `starttls` (when offered, certificate not verified;
    /// credentials only inside TLS) or `required` (STARTTLS with a verified certificate).
    pub relay_tls: String,
    /// Master key protecting secrets at rest (any string of ≥ 16 characters; hashed to a 256-bit key).
    /// When absent, `mailpush serve` generates one in `data_dir/master.key`.
    pub master_key: Option<String>,
    /// The name mailpush gives in EHLO.
    pub helo_name: String,
    /// Concurrent SMTP transactions of one worker (256: at 64 the queue fell behind a loopback MX; per-destination
    /// limits still bound what one domain gets).
    pub worker_concurrency: usize,
    /// Deliveries claimed per queue round trip.
    pub worker_batch: usize,
    /// Threads computing RSA DKIM signatures off the async runtime (0 = one per CPU, growing to two per CPU while
    /// signatures wait). ed25519 signs inline: it costs less than the hand-off.
    pub dkim_sign_threads: usize,
    /// Nice steps (0–19) the signing threads run below the process: under overload, admission (which answers
    /// clients) gets the CPU first and delivery catches up after.
    pub dkim_sign_nice: u8,
    /// How long a claim is held before another worker may take the delivery over. The worker renews the leases
    /// of deliveries in progress every third of it, so it may be short: a dead worker's mail waits at most this.
    pub lease_seconds: u64,
    /// Delay before each retry of a deferred delivery, in seconds; the last value repeats.
    pub retry_schedule_secs: Vec<u64>,
    /// How long after acceptance mailpush keeps retrying before it gives up (Tencent: 72 h).
    pub max_delivery_seconds: u64,
    /// TCP connect timeout towards MX hosts, seconds.
    pub connect_timeout_secs: u64,
    /// SMTP command timeout towards MX hosts, seconds.
    pub command_timeout_secs: u64,
    /// Limit on an MX host's greeting and EHLO reply, seconds: a host that accepts connections and never greets
    /// is a tarpit, and its destination is backed off as a whole.
    pub greeting_timeout_secs: u64,
    /// How long one delivery may spend reaching a session over all MX addresses of its domain, seconds.
    pub delivery_deadline_secs: u64,
    /// Limit on sending a message body and receiving the reply to its final dot, seconds (RFC 5321: 10 minutes
    /// for the reply). Without a reply the mail's status is unknown: it is retried a few times at most.
    pub data_timeout_secs: u64,
    /// Percent of the worker's delivery slots one account's mail may hold at once, so that one tenant's slow
    /// receivers never stall another tenant's mail (100 = no limit).
    pub worker_account_share: u8,
    /// `opportunistic` (default), `required` or `disabled`.
    pub outbound_tls: String,
    /// DANE (RFC 7672): validate MX, address and TLSA answers with DNSSEC, and send to an MX host with secure
    /// TLSA records only over TLS with a certificate matching them (a failure defers the mail). The
    /// `dns_servers` must pass DNSSEC records through (any recursive resolver does).
    pub dane: bool,
    /// A file of DNSKEY records in zone-file format trusted as DNSSEC anchors instead of the root zone's keys
    /// built in (e.g. a private or test root). None = the built-in root keys.
    pub dnssec_trust_anchor_file: Option<PathBuf>,
    /// PEM file of CA certificates trusted for verified outbound TLS besides the system's (mail that requires
    /// TLS, `outbound_tls = required`): receivers with certificates of a private CA. None = the system's only.
    pub outbound_tls_ca_file: Option<PathBuf>,
    /// Apply the receivers' MTA-STS policies (RFC 8461): towards a domain whose policy is `enforce`, mail goes
    /// only to the MX hosts it names, over verified TLS.
    pub mta_sts: bool,
    /// The HTTPS port MTA-STS policy files are fetched from (443; tests use their server's port).
    pub mta_sts_policy_port: u16,
    /// TLS-RPT (RFC 8460): count the TLS outcome of every outbound session per receiving domain and UTC day, and
    /// send each domain publishing `_smtp._tls` TXT its daily report. Active only with `mta_sts` or `dane` on.
    pub tls_rpt: bool,
    /// The `organization-name` of the reports; empty = `helo_name`.
    pub tls_rpt_organization: String,
    /// The `contact-info` of the reports; empty = `tls_rpt_from`.
    pub tls_rpt_contact: String,
    /// The sender of reports mailed to a `mailto:` rua; empty = `tlsrpt-noreply@<helo_name>`.
    pub tls_rpt_from: String,
    /// How often the counts are written to the database and ended days are reported, seconds.
    pub tls_rpt_check_secs: u64,
    /// Source IP addresses outgoing connections bind to: the shared pool (empty = the OS chooses).
    pub source_ips: Vec<std::net::IpAddr>,
    /// Named source pools ("dedicated IPs"), `name=ip,ip;name=ip`; a pool named `shared` adds to `source_ips`.
    /// A sending domain is assigned one with `mailpush domain pool DOMAIN POOL`.
    pub source_pools: String,
    /// How long a source address that could not bind or connect is tried only after its pool's other members, s.
    pub source_avoid_secs: u64,
    /// Daily warm-up ramp of each new source IP (recipients per UTC day from its first day of sending; full
    /// volume after the last day). Empty = no IP warm-up. The OS's choice of source (no `source_ips`) is never
    /// warmed up.
    pub warmup_ip_ramp: Vec<u64>,
    /// Limits towards receiving domains without their own entry: `connections/messages-per-connection/per-minute`
    /// (per minute 0 = unlimited).
    pub destination_default_limits: String,
    /// Per receiving domain limits, `domain=c/m/r;domain=c/m/r` (an entry covers the domain's subdomains too).
    pub destination_limits: String,
    /// Longest a delivery waits for a free connection or its turn under a destination's rate before it is
    /// deferred, seconds.
    pub destination_max_wait_secs: u64,
    /// Delay before a delivery deferred by shaping or by a receiver's rate limiting is tried again, seconds.
    pub destination_retry_secs: u64,
    /// Keep message bodies after their final state (default: purge; the service does not keep mail content).
    pub retain_bodies: bool,
    /// Days mail is kept after its final state (messages, recipients, attempts, events); 0 = forever.
    pub retention_days: u64,
    /// How often the retention pass runs, seconds (0 = never).
    pub retention_check_secs: u64,
    /// How often the database gauges of `/metrics` are computed, seconds (0 = never).
    pub metrics_refresh_secs: u64,
    /// Allowed clock skew of signed API requests, seconds (Tencent: 300).
    pub api_clock_skew_secs: i64,
    /// Database connections per process.
    pub db_max_connections: u32,
    /// Longest wait for a free database connection before a request fails, seconds.
    pub db_acquire_timeout_secs: u64,
    /// PostgreSQL `statement_timeout`: the server cancels a statement running longer, seconds.
    pub db_statement_timeout_secs: u64,
    /// Client-side limit of one database operation, seconds: a frozen connection (which no server-side timeout
    /// ends) fails the request after this instead of hanging it.
    pub db_operation_timeout_secs: u64,
    /// Limit of each readiness probe (`SELECT 1` and a one-row write), seconds.
    pub db_probe_timeout_secs: u64,
    /// `tracing` filter, e.g. `info` or `mailpush_core=debug,info`.
    pub log: String,
    /// `text` (default) or `json`: one JSON object per log record, for log pipelines.
    pub log_format: String,
    /// Template review: `auto` (the automatic review decides at once) or `manual` (templates that pass it
    /// wait for `mailpush template approve`).
    pub template_review: String,
    /// Most templates one account may have.
    pub template_max_per_account: usize,
    /// Largest template content (Html + Text, decoded), bytes.
    pub template_max_bytes: usize,
    /// Largest `TemplateData` of one send, bytes.
    pub template_data_max_bytes: usize,
    /// Accept HTML markup in TemplateData values (rendered escaped in Html, verbatim in Text). Default `false`:
    /// refused with `InvalidParameterValue.InValidTemplateData`, as Tencent does.
    pub template_data_allow_html: bool,
    /// Compiled templates kept in memory per process.
    pub template_cache_entries: usize,
    /// A TOML lexicon of forbidden terms replacing (or, with `extend_default = true`, extending) the built-in one.
    pub template_lexicon_file: Option<PathBuf>,
    /// clamd's socket (`unix:/run/clamav/clamd.ctl`, `/path`, or `host:port`): every mail with attachments is
    /// scanned at admission. None = no virus scanning.
    pub clamd_address: Option<String>,
    /// Longest wait for one clamd scan, seconds.
    pub clamd_timeout_secs: u64,
    /// When clamd cannot scan: `refuse` (a retryable error: `FailedOperation.ServiceNotAvailable`, SMTP 451) or
    /// `accept` (the mail goes out unscanned, logged and counted in `mailpush_virus_unscanned_total`).
    pub clamd_unavailable: String,
    /// rspamd's normal worker (`http://127.0.0.1:11333`): scores mail for `CheckEmailQuality` and for accounts
    /// with a minimum score. None = scores from mailpush's own checks only.
    pub rspamd_url: Option<String>,
    /// Longest wait for one rspamd answer, seconds.
    pub rspamd_timeout_secs: u64,
    /// When rspamd cannot score a mail of an account with a minimum score: `accept` (logged and counted in
    /// `mailpush_spam_unscored_total`) or `refuse` (retryable, as for clamd).
    pub rspamd_unavailable: String,
    /// SPF domain tenants include in their SPF record (`v=spf1 include:<spf_include> ~all`).
    pub spf_include: String,
    /// Host the sending domains' MX record points at (bounces and complaints); empty = `helo_name`.
    pub bounce_mx_host: String,
    /// Prefix of generated DKIM selectors.
    pub dkim_selector_prefix: String,
    /// How often verified domains are re-checked in DNS, seconds (0 = never).
    pub identity_recheck_secs: u64,
    /// Most sending domains per account (Tencent: 10).
    pub max_domains_per_account: u32,
    /// Most sender addresses per domain (Tencent: 10).
    pub max_senders_per_domain: u32,
    /// Batch sending: a cap below the account's daily quota while batch tasks send (0 = the quota alone): a
    /// task pauses once the account's recipients of the UTC day, on every path, reach it.
    pub batch_daily_quota: u64,
    /// Most recipient lists per account.
    pub batch_max_receivers_per_account: u32,
    /// Most addresses in one recipient list (Tencent: 50,000).
    pub batch_max_receiver_details: u32,
    /// Recipients the batch runner admits and enqueues per transaction.
    pub batch_chunk: u32,
    /// The batch runner tops an account's queue up only while it holds fewer open deliveries than this.
    pub batch_queue_window: u32,
    /// How often the batch runner looks for work when idle, ms.
    pub batch_poll_ms: u64,
    /// The calendar zone of every day boundary (RequestDate, report periods, daily quotas and their reset,
    /// warm-up days) and every formatted time: an IANA name or a fixed offset. Default `Asia/Shanghai`, because
    /// Tencent's days are Beijing time (see `mailpush_model::time_zone`).
    pub time_zone: String,
    /// TEST ONLY: a file holding a clock offset in ms (see `OffsetFileClock`); tests move a process's clock with it.
    pub test_clock_file: Option<PathBuf>,
    /// How long a hard-bounced address stays on the global bounce blacklist, days (Tencent: 180).
    pub blacklist_days: u64,
    /// The window of auto-suspend and of the bounce-rate warning, seconds.
    pub reputation_window_secs: u64,
    /// Auto-suspend: an account whose blacklist hits reach this percentage of its recipients in the window is
    /// suspended until an operator resumes it (Tencent: 8).
    pub suspend_blacklist_percent: f64,
    /// Fewest recipients in the window before auto-suspend and the warning apply (small samples are noise).
    pub reputation_min_sends: u64,
    /// Absolute base URL of the public tracking and unsubscribe endpoints (`/t/o/…`, `/t/c/…`, `/u/…`), e.g.
    /// `https://mail.example.com`. Empty = no tracking, and SendEmail's `Unsubscribe` option is refused.
    pub public_base_url: String,
    /// Open pixel and click redirects in HTML mail (needs `public_base_url`).
    pub tracking: bool,
    /// How long a callback is retried (with backoff) before it is given up, seconds (at least 8 hours).
    pub callback_retry_secs: u64,
    /// Timeout of one callback POST, seconds.
    pub callback_timeout_secs: u64,
    /// Networks (CIDR) callback targets may resolve to although they are loopback/private/link-local.
    pub callback_allow_cidrs: Vec<String>,
    /// Default messages (SendEmail calls / SMTP messages) per second per account (Tencent: 20).
    pub limit_sends_per_second: i64,
    /// Default mails per recipient address per account in any sliding hour (Tencent: 10).
    pub limit_per_recipient_per_hour: i64,
    /// Default cap of an account's daily quota (recipients per UTC day), whatever its domains' levels add up to.
    pub limit_daily_cap: i64,
    // ---- statistics and feedback ----
    /// Bounce-rate warning: raised when an account's bounces exceed this percentage of its delivered + bounced
    /// mail over the reputation window (`reputation_window_secs`, at least `reputation_min_sends` of them).
    pub bounce_warn_percent: f64,
    /// How often the bounce-rate monitor evaluates every account, seconds (0 = never).
    pub bounce_check_secs: u64,
    /// Warm-up of new sending domains: the daily delivery allowance from a domain's first sending day (day 1,
    /// day 2, …), unlimited after the last day. A TOML array or a comma list (`"50,100,200"`); empty = no
    /// warm-up. Default: `mailpush_warmup::DEFAULT_RAMP` (50 → 350,000 in 29 days, unlimited from day 30).
    #[serde(deserialize_with = "ramp_list")]
    pub warmup_domain_ramp: Vec<u64>,
    /// Share of each day's warm-up allowance (percent) kept for trigger mail (TriggerType 1); marketing mail may
    /// use the rest.
    pub warmup_trigger_reserve_percent: u64,
    /// How often the reputation levels of sending domains are evaluated, seconds (0 = never).
    pub level_eval_secs: u64,
    /// A domain goes up a level when today's recipients reach this percentage of its level's quota (with good
    /// quality).
    pub level_min_quota_use_percent: f64,
    /// Quality: at least this percentage of settled recipients delivered.
    pub level_min_delivered_percent: f64,
    /// Quality: at most this percentage of settled recipients bounced as bad addresses (5.1.x).
    pub level_max_invalid_percent: f64,
    /// Quality: at most this percentage of settled recipients bounced (hard or soft).
    pub level_max_bounce_percent: f64,
    /// Quality: at most this percentage of settled recipients complained.
    pub level_max_complaint_percent: f64,
    /// Fewest settled recipients (delivered + bounced) in the window before quality can move a level.
    pub level_min_sample: u64,
    /// Set by `mailpush serve --dev` only (never read from a file or the environment): the dev mailbox's JSON API
    /// and console page are served.
    #[serde(skip)]
    pub dev_mode: bool,
}

/// Reads `warmup_domain_ramp` from an array of numbers or a comma list.
fn ramp_list<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Ramp {
        List(Vec<u64>),
        Text(String),
        One(u64),
    }
    match Ramp::deserialize(d)? {
        Ramp::List(v) => Ok(v),
        Ramp::One(n) => Ok(vec![n]),
        Ramp::Text(t) => t
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| p.parse::<u64>().map_err(serde::de::Error::custom))
            .collect(),
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            data_dir: PathBuf::from("./mailpush-data"),
            database_url: None,
            api_listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            admin_listen: None,
            api_max_connections: 512,
            api_header_timeout_secs: 10,
            api_idle_timeout_secs: 60,
            api_body_timeout_secs: 60,
            smtp_listen: None,
            smtps_listen: None,
            inbound_listen: None,
            smtp_tls_cert: None,
            smtp_tls_key: None,
            api_tls_cert: None,
            api_tls_key: None,
            smtp_allow_plaintext_auth_loopback: false,
            smtp_trusted_networks: Vec::new(),
            smtp_trusted_account: None,
            smtp_max_connections_per_ip: 20,
            smtp_max_connections: 256,
            inbound_max_connections: 128,
            smtp_timeout_secs: 300,
            received_hide_client_ip: false,
            smtp_auth_max_failures: 5,
            smtp_auth_max_failures_per_ip: 20,
            smtp_auth_window_secs: 900,
            smtp_auth_delay_ms: 500,
            smtp_auth_delay_max_ms: 8_000,
            dns_servers: Vec::new(),
            delivery_port: 25,
            relay_host: None,
            relay_username: None,
            relay_password: None,
            relay_tls: "starttls".to_string(),
            master_key: None,
            helo_name: "mailpush.localdomain".to_string(),
            worker_concurrency: 256,
            worker_batch: 256,
            dkim_sign_threads: 0,
            dkim_sign_nice: 0,
            lease_seconds: 30,
            retry_schedule_secs: vec![60, 300, 900, 1800, 3600, 7200, 14400],
            max_delivery_seconds: 72 * 3600,
            connect_timeout_secs: 15,
            command_timeout_secs: 120,
            greeting_timeout_secs: 30,
            delivery_deadline_secs: 180,
            data_timeout_secs: 300,
            worker_account_share: 75,
            outbound_tls: "opportunistic".to_string(),
            dane: false,
            dnssec_trust_anchor_file: None,
            outbound_tls_ca_file: None,
            mta_sts: true,
            mta_sts_policy_port: 443,
            tls_rpt: true,
            tls_rpt_organization: String::new(),
            tls_rpt_contact: String::new(),
            tls_rpt_from: String::new(),
            tls_rpt_check_secs: 300,
            source_ips: Vec::new(),
            source_pools: String::new(),
            source_avoid_secs: 300,
            warmup_ip_ramp: mailpush_warmup::DEFAULT_RAMP.to_vec(),
            destination_default_limits: "10/100/0".to_string(),
            destination_limits: String::new(),
            destination_max_wait_secs: 10,
            destination_retry_secs: 60,
            retain_bodies: false,
            retention_days: 30,
            retention_check_secs: 3600,
            metrics_refresh_secs: 15,
            api_clock_skew_secs: 300,
            db_max_connections: 16,
            db_acquire_timeout_secs: 5,
            db_statement_timeout_secs: 15,
            db_operation_timeout_secs: 20,
            db_probe_timeout_secs: 3,
            log: "info".to_string(),
            log_format: "text".into(),
            template_review: "auto".to_string(),
            template_max_per_account: 100,
            template_max_bytes: 1024 * 1024,
            template_data_max_bytes: 8 * 1024,
            template_data_allow_html: false,
            template_cache_entries: 1024,
            template_lexicon_file: None,
            clamd_address: None,
            clamd_timeout_secs: 30,
            clamd_unavailable: "refuse".into(),
            rspamd_url: None,
            rspamd_timeout_secs: 10,
            rspamd_unavailable: "accept".into(),
            spf_include: "_spf.mailpush.localdomain".to_string(),
            bounce_mx_host: String::new(),
            dkim_selector_prefix: "mp".to_string(),
            identity_recheck_secs: 3600,
            max_domains_per_account: 10,
            max_senders_per_domain: 10,
            batch_daily_quota: 0,
            batch_max_receivers_per_account: 100,
            batch_max_receiver_details: 50_000,
            batch_chunk: 200,
            batch_queue_window: 2_000,
            batch_poll_ms: 500,
            time_zone: mailpush_model::TimeZone::DEFAULT_NAME.to_string(),
            test_clock_file: None,
            blacklist_days: 180,
            reputation_window_secs: 86_400,
            suspend_blacklist_percent: 8.0,
            reputation_min_sends: 100,
            public_base_url: String::new(),
            tracking: true,
            callback_retry_secs: 24 * 3600,
            callback_timeout_secs: 10,
            callback_allow_cidrs: Vec::new(),
            limit_sends_per_second: 20,
            limit_per_recipient_per_hour: 10,
            limit_daily_cap: 300_000,
            bounce_warn_percent: 5.0,
            bounce_check_secs: 60,
            warmup_domain_ramp: mailpush_warmup::DEFAULT_RAMP.to_vec(),
            warmup_trigger_reserve_percent: 10,
            level_eval_secs: 300,
            level_min_quota_use_percent: 80.0,
            level_min_delivered_percent: 95.0,
            level_max_invalid_percent: 3.0,
            level_max_bounce_percent: 3.0,
            level_max_complaint_percent: 0.1,
            level_min_sample: 100,
            dev_mode: false,
        }
    }
}

/// Why settings could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML.
    #[error("{path} is not valid TOML: {message}")]
    Toml {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// A value has the wrong type or an unknown key was given.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl Settings {
    /// Loads defaults, then the TOML file (if any), then `MAILPUSH_*` variables from `env`.
    pub fn load(file: Option<&Path>, env: &HashMap<String, String>) -> Result<Settings, SettingsError> {
        let mut table = serde_json::Map::new();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|source| SettingsError::Read {
                path: path.into(),
                source,
            })?;
            let parsed: toml::Table = toml::from_str(&text).map_err(|e| SettingsError::Toml {
                path: path.into(),
                message: e.to_string(),
            })?;
            let as_json = serde_json::to_value(parsed).map_err(|e| SettingsError::Invalid(e.to_string()))?;
            if let serde_json::Value::Object(m) = as_json {
                table = m;
            }
        }
        // The defaults tell each key's shape, so an env string can be turned into the right JSON type.
        let defaults = serde_json::to_value(Settings::default()).map_err(|e| SettingsError::Invalid(e.to_string()))?;
        if let serde_json::Value::Object(defaults) = defaults {
            for (key, default) in defaults {
                let var = format!("MAILPUSH_{}", key.to_ascii_uppercase());
                if let Some(raw) = env.get(&var) {
                    table.insert(key.clone(), env_value(&default, raw));
                }
            }
        }
        serde_json::from_value(serde_json::Value::Object(table)).map_err(|e| SettingsError::Invalid(e.to_string()))
    }

    /// The database URL in force: the configured one or the SQLite file under `data_dir`.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(u) => u.clone(),
            None => format!("sqlite:{}", self.data_dir.join("mailpush.db").display()),
        }
    }

    /// The calendar zone of `time_zone`.
    pub fn calendar_zone(&self) -> Result<mailpush_model::TimeZone, SettingsError> {
        mailpush_model::TimeZone::parse(&self.time_zone).map_err(|e| SettingsError::Invalid(e.to_string()))
    }

    /// The clock the process runs on: the system clock, or the test offset clock when `test_clock_file` is set.
    pub fn clock(&self) -> mailpush_model::SharedClock {
        match &self.test_clock_file {
            Some(path) => mailpush_model::OffsetFileClock::new(path.clone()),
            None => std::sync::Arc::new(mailpush_model::SystemClock),
        }
    }

    /// File descriptors a process may need at once with these settings: the connection caps of the listeners
    /// it runs (`api`, `smtp`: submission and inbound MX), the worker's connections, the database pool and a
    /// margin. Compared with the descriptor limit at start ([`crate::listener::raise_fd_limit_logged`]).
    pub fn fd_needed(&self, api: bool, smtp: bool, worker: bool) -> u64 {
        let mut n = 64 + u64::from(self.db_max_connections);
        if api {
            n += self.api_max_connections as u64;
        }
        if smtp && (self.smtp_listen.is_some() || self.smtps_listen.is_some()) {
            n += self.smtp_max_connections as u64;
        }
        if smtp && self.inbound_listen.is_some() {
            n += self.inbound_max_connections as u64;
        }
        if worker {
            n += self.worker_concurrency as u64;
        }
        n
    }

    /// `retry_schedule_secs` as durations.
    pub fn retry_schedule(&self) -> Vec<Duration> {
        self.retry_schedule_secs
            .iter()
            .map(|s| Duration::from_secs(*s))
            .collect()
    }
}

fn scalar(raw: &str) -> serde_json::Value {
    let raw = raw.trim();
    if let Ok(i) = raw.parse::<i64>() {
        return i.into();
    }
    if let Ok(f) = raw.parse::<f64>() {
        return f.into();
    }
    match raw {
        "true" => true.into(),
        "false" => false.into(),
        _ => raw.into(),
    }
}

fn env_value(default: &serde_json::Value, raw: &str) -> serde_json::Value {
    use serde_json::Value;
    match default {
        Value::Array(_) => Value::Array(raw.split(',').filter(|s| !s.trim().is_empty()).map(scalar).collect()),
        Value::String(_) | Value::Null => Value::String(raw.to_string()),
        Value::Bool(_) => match raw.trim() {
            "1" | "true" | "yes" | "on" => Value::Bool(true),
            "0" | "false" | "no" | "off" => Value::Bool(false),
            other => Value::String(other.to_string()),
        },
        _ => scalar(raw),
    }
}

/// `MAILPUSH_*` variables that configure something other than a setting: the binaries' `--config` flag and the
/// test harness's switches, which the processes it starts inherit.
fn known_variable(var: &str) -> bool {
    var == "MAILPUSH_CONFIG"
        || var == "MAILPUSH_BIN_DIR"
        || var.starts_with("MAILPUSH_TEST_")
        || var.starts_with("MAILPUSH_REQUIRE_")
}

/// Setting placeholders that work on one machine but not on the internet, with what each needs.
const PLACEHOLDERS: &[(&str, &str)] = &[
    ("helo_name", "the host's public name, matching its reverse DNS"),
    ("spf_include", "the SPF domain that lists your sending IPs"),
    ("bounce_mx_host", "the public name of the inbound MX"),
];

impl Settings {
    /// What an operator should hear at start: `MAILPUSH_*` variables of `env` that name no setting (a typo
    /// would otherwise be ignored), and settings still at a placeholder default that mail to the internet cannot
    /// work with.
    pub fn warnings(&self, env: &HashMap<String, String>) -> Vec<String> {
        let mut out = Vec::new();
        let keys = serde_json::to_value(Settings::default()).unwrap_or_default();
        let mut unknown: Vec<&String> = env
            .keys()
            .filter(|var| var.starts_with("MAILPUSH_") && !known_variable(var))
            .filter(|var| {
                let key = var["MAILPUSH_".len()..].to_ascii_lowercase();
                keys.get(&key).is_none()
            })
            .collect();
        unknown.sort();
        for var in unknown {
            out.push(format!(
                "{var} is set but is not a setting (see the configuration table of README.md)"
            ));
        }
        let defaults = Settings::default();
        for (key, needs) in PLACEHOLDERS {
            let value = |s: &Settings| serde_json::to_value(s).ok().and_then(|v| v.get(*key).cloned());
            if value(self) == value(&defaults) {
                out.push(format!("{key} is still its placeholder default: set it to {needs}"));
            }
        }
        out
    }

    /// The settings as TOML, secrets redacted (the master key, a database password): `mailpush config show`.
    pub fn to_toml_redacted(&self) -> Result<String, SettingsError> {
        let mut shown = self.clone();
        if shown.master_key.is_some() {
            shown.master_key = Some("<redacted>".into());
        }
        if shown.relay_password.is_some() {
            shown.relay_password = Some("<redacted>".into());
        }
        if let Some(url) = &shown.database_url {
            shown.database_url = Some(redact_password(url));
        }
        toml::to_string(&shown).map_err(|e| SettingsError::Invalid(e.to_string()))
    }
}

/// `scheme://user:password@host…` with the password replaced.
fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    match rest.split_once('@') {
        Some((credentials, host)) if credentials.contains(':') => {
            let user = credentials.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:<redacted>@{host}")
        }
        _ => url.to_string(),
    }
}

/// The process's `MAILPUSH_*` variables.
pub fn process_variables() -> HashMap<String, String> {
    std::env::vars().filter(|(k, _)| k.starts_with("MAILPUSH_")).collect()
}

/// Loads settings for a process: the optional file, then the process environment.
pub fn load_for_process(file: Option<&Path>) -> Result<Settings, SettingsError> {
    Settings::load(file, &process_variables())
}

/// The process's request to stop (Ctrl-C or SIGTERM), listened for from the moment it is created.
///
/// Create it once, first thing in `main`, and hand clones to everything that stops on it. Listeners made
/// later, each for itself, would miss a signal that arrives while the node is still starting: once one
/// handler is installed the default action (exit) is gone, and a signal nobody was waiting for yet is lost.
#[derive(Debug, Clone)]
pub struct ShutdownSignal {
    received: tokio::sync::watch::Receiver<bool>,
}

impl ShutdownSignal {
    /// Installs the handlers now (inside a Tokio runtime) and remembers the first signal for every clone.
    pub fn listen() -> std::io::Result<Self> {
        let (notify, received) = tokio::sync::watch::channel(false);
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let mut term = signal(SignalKind::terminate())?;
            let mut interrupt = signal(SignalKind::interrupt())?;
            tokio::spawn(async move {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = interrupt.recv() => {}
                }
                let _ = notify.send(true);
            });
        }
        #[cfg(not(unix))]
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                let _ = notify.send(true);
            }
        });
        Ok(ShutdownSignal { received })
    }

    /// Resolves once the process has been asked to stop, at once if it already has been.
    pub async fn wait(&self) {
        let mut received = self.received.clone();
        // An error means the listening task is gone without a signal: never resolve.
        if received.wait_for(|stop| *stop).await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// [`ShutdownSignal::wait`] as an owned future, for servers that take their shutdown by value.
    pub async fn stopped(self) {
        self.wait().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[tokio::test]
    async fn a_signal_that_arrives_before_anyone_waits_is_not_lost() {
        let signal = ShutdownSignal::listen().expect("signal handlers");
        let status = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(std::process::id().to_string())
            .status()
            .expect("kill");
        assert!(status.success());
        // Nobody waits yet; a listener made now, after the signal, must still see it.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let late = signal.clone();
        tokio::time::timeout(Duration::from_secs(10), late.wait())
            .await
            .expect("the earlier SIGTERM is remembered");
        tokio::time::timeout(Duration::from_secs(10), signal.stopped())
            .await
            .expect("and seen by every clone");
    }

    #[test]
    fn warnings_name_unknown_variables_and_placeholders() {
        let env: HashMap<String, String> = [
            ("MAILPUSH_HELO_NAME", "mx1.example.com"),
            ("MAILPUSH_WORKER_CONCURENCY", "8"),
            ("MAILPUSH_TEST_POSTGRES_URL", "postgres://x"),
            ("MAILPUSH_CONFIG", "/etc/mailpush.toml"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let s = Settings::load(None, &env).unwrap();
        let w = s.warnings(&env);
        assert!(
            w.iter().any(|l| l.starts_with("MAILPUSH_WORKER_CONCURENCY is set but")),
            "{w:?}"
        );
        assert!(
            !w.iter()
                .any(|l| l.contains("POSTGRES") || l.contains("MAILPUSH_CONFIG")),
            "{w:?}"
        );
        assert!(w.iter().any(|l| l.starts_with("spf_include is still")), "{w:?}");
        assert!(!w.iter().any(|l| l.starts_with("helo_name")), "{w:?}");
    }

    #[test]
    fn shown_settings_hide_secrets_and_load_back() {
        let s = Settings {
            master_key: Some("a-very-secret-master-key".into()),
            database_url: Some("postgres://mail:hunter2@db:5432/mail".into()),
            ..Settings::default()
        };
        let text = s.to_toml_redacted().unwrap();
        assert!(!text.contains("a-very-secret") && !text.contains("hunter2"), "{text}");
        assert!(text.contains("postgres://mail:<redacted>@db:5432/mail"), "{text}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shown.toml");
        std::fs::write(&path, &text).unwrap();
        let back = Settings::load(Some(&path), &HashMap::new()).unwrap();
        assert_eq!(back.worker_concurrency, s.worker_concurrency);
        assert_eq!(
            redact_password("sqlite:/var/lib/mailpush.db"),
            "sqlite:/var/lib/mailpush.db"
        );
    }

    #[test]
    fn env_overrides_file_and_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("m.toml");
        std::fs::write(&file, "delivery_port = 2525\nhelo_name = \"mx.example.com\"\n").unwrap();
        let env: HashMap<String, String> = [
            ("MAILPUSH_DNS_SERVERS", "127.0.0.1:5353, 127.0.0.2:53"),
            ("MAILPUSH_DELIVERY_PORT", "2626"),
            ("MAILPUSH_DATABASE_URL", "postgres://root@127.0.0.1/test"),
            ("MAILPUSH_RETAIN_BODIES", "1"),
            ("MAILPUSH_RETRY_SCHEDULE_SECS", "1,2"),
            ("MAILPUSH_TEST_POSTGRES_URL", "ignored"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let s = Settings::load(Some(&file), &env).unwrap();
        assert_eq!(s.delivery_port, 2626);
        assert_eq!(s.helo_name, "mx.example.com");
        assert_eq!(s.dns_servers.len(), 2);
        assert_eq!(s.database_url(), "postgres://root@127.0.0.1/test");
        assert!(s.retain_bodies);
        assert_eq!(s.retry_schedule_secs, vec![1, 2]);
        assert_eq!(s.warmup_domain_ramp, mailpush_warmup::DEFAULT_RAMP.to_vec());
    }

    #[test]
    fn warmup_ramp_takes_a_list_a_comma_string_or_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("m.toml");
        std::fs::write(&file, "warmup_domain_ramp = [5, 10]\n").unwrap();
        assert_eq!(
            Settings::load(Some(&file), &HashMap::new()).unwrap().warmup_domain_ramp,
            vec![5, 10]
        );
        std::fs::write(&file, "warmup_domain_ramp = \"5, 10,20\"\n").unwrap();
        assert_eq!(
            Settings::load(Some(&file), &HashMap::new()).unwrap().warmup_domain_ramp,
            vec![5, 10, 20]
        );
        let env = |v: &str| -> HashMap<String, String> {
            [("MAILPUSH_WARMUP_DOMAIN_RAMP".to_string(), v.to_string())]
                .into_iter()
                .collect()
        };
        assert!(Settings::load(None, &env("")).unwrap().warmup_domain_ramp.is_empty());
        assert_eq!(Settings::load(None, &env("7")).unwrap().warmup_domain_ramp, vec![7]);
        assert_eq!(
            Settings::load(None, &env("3,6")).unwrap().warmup_domain_ramp,
            vec![3, 6]
        );
    }

    #[test]
    fn source_pool_and_shaping_keys() {
        let env: HashMap<String, String> = [
            (
                "MAILPUSH_SOURCE_POOLS",
                "shared=127.0.0.2,127.0.0.3;vip=127.0.0.4,127.0.0.5",
            ),
            ("MAILPUSH_WARMUP_IP_RAMP", ""),
            ("MAILPUSH_DESTINATION_LIMITS", "gmail.com=20/100/600"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let s = Settings::load(None, &env).unwrap();
        assert!(s.warmup_ip_ramp.is_empty(), "an empty value turns IP warm-up off");
        assert_eq!(s.source_pools, "shared=127.0.0.2,127.0.0.3;vip=127.0.0.4,127.0.0.5");
        assert_eq!(
            Settings::default().warmup_ip_ramp,
            mailpush_warmup::DEFAULT_RAMP.to_vec()
        );
    }

    #[test]
    fn bad_values_are_errors() {
        let env: HashMap<String, String> = [("MAILPUSH_DELIVERY_PORT".to_string(), "many".to_string())]
            .into_iter()
            .collect();
        assert!(Settings::load(None, &env).is_err());
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("m.toml");
        std::fs::write(&file, "no_such_key = 1\n").unwrap();
        assert!(Settings::load(Some(&file), &HashMap::new()).is_err());
    }
}
