//! TLS-RPT (RFC 8460): mailpush reports to receiving domains how its TLS sessions with their MX hosts went.
//!
//! The delivery transport hands the outcome of every new session to the [`Recorder`], which folds them in memory
//! per UTC day, policy domain, policy and result (a hash-map bump on the delivery path, never a write per mail);
//! every `tls_rpt_check_secs` the reporter adds the folded counts to the store (`tls_rpt_counts`, summed over
//! every node) and reports each day that has ended: it looks up `_smtp._tls.<domain>` TXT with delivery's resolver,
//! builds the RFC 8460 §4.4 JSON, gzips it and delivers it to every `rua` — `https:` URLs by POST
//! (`application/tlsrpt+gzip`) through the callbacks' SSRF-guarded client, `mailto:` addresses as a
//! `multipart/report` mail (§5.3) through mailpush's own queue, sent as the account `tls-rpt` (created at the first
//! such report) and DKIM-signed by the worker when the sender's domain is verified under that account (receivers
//! ignore unsigned reports). A domain's day is claimed once in the store, so it is reported once even by several nodes.
//! Counts reach the store a check period after they happen, so a day is reported only two periods after it ended.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use mailpush_delivery::{MxResolver, ReportUri, TlsReportSink, TlsSessionOutcome, parse_tlsrpt_record};
use mailpush_model::{Lane, MessageId, RecipientKind, SendStatus, SharedClock, TimeZone, TlsRequirement};
use mailpush_store::{NewMessage, NewRecipient, Store, TlsRptCount};
use mailpush_webhook::CallbackClient;
use serde_json::{Value, json};
use tokio::sync::Notify;

use crate::background::{BackgroundTask, FirstPass, spawn_periodic};
use crate::{CoreError, Env, Settings};

const DAY_MS: i64 = 86_400_000;

/// The account report mail is queued as.
pub(crate) const REPORT_ACCOUNT: &str = "tls-rpt";

/// The media type of a gzipped report (RFC 8460 §6.4).
pub(crate) const REPORT_MEDIA_TYPE: &str = "application/tlsrpt+gzip";

/// Reports looked at per pass; the rest wait for the next one.
const REPORTS_PER_PASS: u32 = 200;

/// Waits between the attempts to POST a report (so three attempts in all).
const POST_RETRY: [Duration; 2] = [Duration::from_secs(5), Duration::from_secs(30)];

/// Longest `failure-reason-code` kept: transport reasons name the host and the handshake error, never more.
const MAX_REASON: usize = 300;

/// Whether TLS-RPT runs with these settings: `tls_rpt`, and a transport policy to report on (MTA-STS or DANE).
pub(crate) fn active(s: &Settings) -> bool {
    s.tls_rpt && (s.mta_sts || s.dane)
}

/// What one counter is kept under.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    day: i64,
    policy_domain: String,
    policy_type: &'static str,
    policy_strings: String,
    mx_hosts: String,
    result_type: &'static str,
    sending_ip: String,
    receiving_mx: String,
    receiving_ip: String,
    reason_code: String,
}

impl Key {
    /// The counter row of `sessions` under this key.
    fn row(&self, sessions: i64) -> TlsRptCount {
        TlsRptCount {
            day: self.day,
            policy_domain: self.policy_domain.clone(),
            policy_type: self.policy_type.to_string(),
            policy_strings: self.policy_strings.clone(),
            mx_hosts: self.mx_hosts.clone(),
            result_type: self.result_type.to_string(),
            sending_ip: self.sending_ip.clone(),
            receiving_mx: self.receiving_mx.clone(),
            receiving_ip: self.receiving_ip.clone(),
            reason_code: self.reason_code.clone(),
            sessions,
        }
    }
}

/// Session outcomes folded in memory until the next flush.
pub(crate) struct Recorder {
    clock: SharedClock,
    counts: Mutex<HashMap<Key, i64>>,
}

impl TlsReportSink for Recorder {
    fn record(&self, o: TlsSessionOutcome) {
        let day = self.clock.now_ms().div_euclid(DAY_MS);
        let failure = o.failure.as_ref();
        let key = Key {
            day,
            policy_domain: o.policy_domain.to_ascii_lowercase(),
            policy_type: o.policy_type.as_str(),
            policy_strings: o.policy_strings.join("\n"),
            mx_hosts: o.mx_hosts.join("\n"),
            result_type: failure.map_or("", |f| f.result_type),
            sending_ip: failure
                .and_then(|f| f.sending_mta_ip)
                .map(|ip| ip.to_string())
                .unwrap_or_default(),
            receiving_mx: failure.map(|f| f.receiving_mx_hostname.clone()).unwrap_or_default(),
            receiving_ip: failure
                .and_then(|f| f.receiving_ip)
                .map(|ip| ip.to_string())
                .unwrap_or_default(),
            reason_code: failure
                .map(|f| f.failure_reason_code.chars().take(MAX_REASON).collect())
                .unwrap_or_default(),
        };
        *self.locked().entry(key).or_insert(0) += 1;
    }
}

impl Recorder {
    pub(crate) fn new(clock: SharedClock) -> Recorder {
        Recorder {
            clock,
            counts: Mutex::new(HashMap::new()),
        }
    }

    fn locked(&self) -> std::sync::MutexGuard<'_, HashMap<Key, i64>> {
        self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds what was counted since the last flush to the store; kept for the next flush when the store fails.
    pub(crate) async fn flush(&self, store: &Store) -> Result<(), CoreError> {
        let taken: Vec<(Key, i64)> = self.locked().drain().collect();
        if taken.is_empty() {
            return Ok(());
        }
        let rows: Vec<TlsRptCount> = taken.iter().map(|(k, n)| k.row(*n)).collect();
        if let Err(e) = store.tls_rpt().add(&rows).await {
            let mut counts = self.locked();
            for (k, n) in taken {
                *counts.entry(k).or_insert(0) += n;
            }
            return Err(e.into());
        }
        Ok(())
    }
}

/// The report of one policy domain and day, as RFC 8460 §4.4 JSON.
pub(crate) struct ReportMeta<'a> {
    pub organization: &'a str,
    pub contact: &'a str,
    pub report_id: &'a str,
    pub day: i64,
}

/// A policy of a report: its type, strings and MX hosts as stored.
type PolicyKey<'a> = (&'a str, &'a str, &'a str);

/// The RFC 8460 §4.4 report of `rows` (the counters of one policy domain on `meta.day`): one `policies` entry per
/// distinct policy, its successes and failures summed, each distinct failure a `failure-details` entry.
pub(crate) fn report_json(meta: &ReportMeta<'_>, policy_domain: &str, rows: &[TlsRptCount]) -> Value {
    // Per (policy type, strings, MX hosts): successful sessions, failed sessions, failure details.
    let mut policies: BTreeMap<PolicyKey<'_>, (i64, i64, Vec<Value>)> = BTreeMap::new();
    for r in rows {
        let entry = policies
            .entry((r.policy_type.as_str(), r.policy_strings.as_str(), r.mx_hosts.as_str()))
            .or_default();
        if r.result_type.is_empty() {
            entry.0 += r.sessions;
            continue;
        }
        entry.1 += r.sessions;
        let mut detail = serde_json::Map::new();
        detail.insert("result-type".into(), json!(r.result_type));
        for (field, value) in [
            ("sending-mta-ip", &r.sending_ip),
            ("receiving-mx-hostname", &r.receiving_mx),
            ("receiving-ip", &r.receiving_ip),
        ] {
            if !value.is_empty() {
                detail.insert(field.into(), json!(value));
            }
        }
        detail.insert("failed-session-count".into(), json!(r.sessions));
        if !r.reason_code.is_empty() {
            detail.insert("failure-reason-code".into(), json!(r.reason_code));
        }
        entry.2.push(Value::Object(detail));
    }
    let lines = |text: &str| -> Vec<String> { text.lines().map(str::to_string).collect() };
    let policies: Vec<Value> = policies
        .into_iter()
        .map(|((policy_type, strings, mx), (ok, failed, details))| {
            let mut policy = serde_json::Map::new();
            policy.insert("policy-type".into(), json!(policy_type));
            if !strings.is_empty() {
                policy.insert("policy-string".into(), json!(lines(strings)));
            }
            policy.insert("policy-domain".into(), json!(policy_domain));
            if !mx.is_empty() {
                policy.insert("mx-host".into(), json!(lines(mx)));
            }
            let mut entry = json!({
                "policy": policy,
                "summary": {
                    "total-successful-session-count": ok,
                    "total-failure-session-count": failed,
                },
            });
            if !details.is_empty() {
                entry["failure-details"] = Value::Array(details);
            }
            entry
        })
        .collect();
    let date = TimeZone::utc().date_of_day(meta.day);
    json!({
        "organization-name": meta.organization,
        "date-range": {
            "start-datetime": format!("{date}T00:00:00Z"),
            "end-datetime": format!("{date}T23:59:59Z"),
        },
        "contact-info": meta.contact,
        "report-id": meta.report_id,
        "policies": policies,
    })
}

/// `json` gzipped (RFC 8460 §5.1).
pub(crate) fn gzip(json: &[u8]) -> Result<Vec<u8>, std::io::Error> {
    let mut e = flate2::write::GzEncoder::new(Vec::with_capacity(json.len() / 4 + 64), flate2::Compression::default());
    e.write_all(json)?;
    e.finish()
}

/// Who sends, for the report mail (RFC 8460 §5.3).
pub(crate) struct MailParts<'a> {
    pub from: &'a str,
    pub to: &'a str,
    pub submitter: &'a str,
    pub policy_domain: &'a str,
    pub report_id: &'a str,
    pub day: i64,
    pub now_ms: i64,
}

/// The report mail (RFC 8460 §5.3): `multipart/report; report-type="tlsrpt"` with a short text part and the
/// gzipped report as `application/tlsrpt+gzip`, named `submitter!domain!begin!end!id.json.gz`.
pub(crate) fn report_mail(p: &MailParts<'_>, gzipped: &[u8]) -> Vec<u8> {
    use base64::Engine as _;
    let begin = p.day.saturating_mul(DAY_MS) / 1000;
    let end = begin + 86_399;
    let boundary = format!("tlsrpt-{}", MessageId::generate().as_str());
    let mut encoded = base64::engine::general_purpose::STANDARD.encode(gzipped);
    let mut body = String::with_capacity(encoded.len() + encoded.len() / 76 * 2 + 1024);
    body.push_str(&format!(
        "From: <{from}>\r\nTo: <{to}>\r\nDate: {date}\r\nMessage-ID: <{id}@{submitter}>\r\n\
         Subject: Report Domain: {domain} Submitter: {submitter} Report-ID: <{report_id}>\r\n\
         TLS-Report-Domain: {domain}\r\nTLS-Report-Submitter: {submitter}\r\nAuto-Submitted: auto-generated\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=\"tlsrpt\"; boundary=\"{boundary}\"\r\n\
         \r\n--{boundary}\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n\
         This is an aggregate TLS report (RFC 8460) from {submitter} for {domain}.\r\n\r\n\
         --{boundary}\r\nContent-Type: {media}\r\nContent-Transfer-Encoding: base64\r\n\
         Content-Disposition: attachment; filename=\"{submitter}!{domain}!{begin}!{end}!{report_id}.json.gz\"\r\n\r\n",
        from = p.from,
        to = p.to,
        date = crate::submit::rfc2822_date(p.now_ms),
        id = MessageId::generate().as_str(),
        submitter = p.submitter,
        domain = p.policy_domain,
        report_id = p.report_id,
        media = REPORT_MEDIA_TYPE,
    ));
    while !encoded.is_empty() {
        let rest = encoded.split_off(encoded.len().min(76));
        body.push_str(&encoded);
        body.push_str("\r\n");
        encoded = rest;
    }
    body.push_str(&format!("--{boundary}--\r\n"));
    body.into_bytes()
}

/// The TLS-RPT service: the recorder and the daily reporter.
pub(crate) struct TlsReports {
    pub(crate) env: Env,
    pub(crate) recorder: Arc<Recorder>,
    pub(crate) accounts: Arc<crate::accounts::Accounts>,
    pub(crate) wake: Arc<Notify>,
}

/// What a reporter pass needs besides the service.
struct Reporter {
    service: Arc<TlsReports>,
    resolver: MxResolver,
    client: CallbackClient,
}

impl TlsReports {
    /// The `organization-name`, `contact-info`, sender and submitter of the reports.
    fn identity(&self) -> (String, String, String, String) {
        let s = &self.env.settings;
        let from = if s.tls_rpt_from.is_empty() {
            format!("tlsrpt-noreply@{}", s.helo_name)
        } else {
            s.tls_rpt_from.clone()
        };
        let organization = if s.tls_rpt_organization.is_empty() {
            s.helo_name.clone()
        } else {
            s.tls_rpt_organization.clone()
        };
        let contact = if s.tls_rpt_contact.is_empty() {
            from.clone()
        } else {
            s.tls_rpt_contact.clone()
        };
        (organization, contact, from, s.helo_name.clone())
    }

    /// Starts the periodic flush and report pass (every `tls_rpt_check_secs`; no pass when TLS-RPT is off); its
    /// shutdown writes the counts still in memory.
    pub(crate) fn start(self: &Arc<Self>) -> Result<BackgroundTask, CoreError> {
        let s = &self.env.settings;
        let secs = if active(s) { s.tls_rpt_check_secs } else { 0 };
        let reporter = Arc::new(Reporter {
            service: self.clone(),
            resolver: crate::worker::delivery_resolver(s)?,
            client: crate::callbacks::client_trusting(s, &crate::worker::outbound_trust_roots(s)?)?,
        });
        let periodic = spawn_periodic(&reporter, secs, FirstPass::AfterPeriod, |r, _stop| async move {
            if let Err(e) = r.pass().await {
                tracing::error!(error = %e, "TLS-RPT pass failed");
            }
        });
        // At the stop, what was counted since the last pass is written too: it would go with the process.
        let (stop, mut stop_rx) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(async move {
            let _ = stop_rx.changed().await;
            periodic.shutdown().await;
            let service = &reporter.service;
            if let Err(e) = service.recorder.flush(&service.env.store).await {
                tracing::error!(error = %e, "TLS-RPT counts not written at shutdown");
            }
        });
        Ok(BackgroundTask::new(stop, task))
    }
}

impl Reporter {
    /// Flushes the counts, then reports every (domain, day) whose day ended at least two check periods ago.
    async fn pass(&self) -> Result<(), CoreError> {
        let env = &self.service.env;
        self.service.recorder.flush(&env.store).await?;
        let grace = i64::try_from(env.settings.tls_rpt_check_secs.saturating_mul(2_000)).unwrap_or(i64::MAX);
        let before_day = env.clock.now_ms().saturating_sub(grace).div_euclid(DAY_MS);
        for pending in env.store.tls_rpt().unreported(before_day, REPORTS_PER_PASS).await? {
            self.report(pending.day, &pending.policy_domain, before_day).await?;
        }
        Ok(())
    }

    /// Reports `domain`'s `day` to the addresses its `_smtp._tls` record names, once.
    async fn report(&self, day: i64, domain: &str, before_day: i64) -> Result<(), CoreError> {
        let env = &self.service.env;
        let (organization, contact, from, submitter) = self.service.identity();
        let date = TimeZone::utc().date_of_day(day);
        let report_id = format!("{date}_{domain}@{submitter}");
        let rua = match self.resolver.txt(&format!("_smtp._tls.{domain}")).await {
            Ok(records) => {
                // RFC 8460 §3: other records are discarded; more than one TLSRPTv1 record is as none.
                let mut found: Vec<Vec<ReportUri>> = records
                    .iter()
                    .filter(|r| r.trim_start().starts_with("v=TLSRPTv1"))
                    .map(|r| parse_tlsrpt_record(r).unwrap_or_default())
                    .collect();
                if found.len() == 1 {
                    found.pop().unwrap_or_default()
                } else {
                    Vec::new()
                }
            }
            // DNS trouble: try again next pass, unless the day is long past.
            Err(e) if day + 2 >= before_day => {
                tracing::debug!(domain, error = %e, "TLS-RPT record lookup failed; trying again later");
                return Ok(());
            }
            Err(_) => Vec::new(),
        };
        let now = env.clock.now_ms();
        if !env.store.tls_rpt().claim_report(day, domain, &report_id, now).await? {
            return Ok(());
        }
        if rua.is_empty() {
            env.store.tls_rpt().finish_report(day, domain, "no policy").await?;
            return Ok(());
        }
        let rows = env.store.tls_rpt().counts(day, domain).await?;
        let meta = ReportMeta {
            organization: &organization,
            contact: &contact,
            report_id: &report_id,
            day,
        };
        let json = report_json(&meta, domain, &rows).to_string();
        let gzipped = gzip(json.as_bytes()).map_err(|e| CoreError::Config(format!("gzip: {e}")))?;
        let mut outcomes = Vec::new();
        for uri in &rua {
            let outcome = match uri {
                ReportUri::Https(url) => self.post(url, &gzipped, domain).await,
                ReportUri::Mail(to) => {
                    let parts = MailParts {
                        from: &from,
                        to,
                        submitter: &submitter,
                        policy_domain: domain,
                        report_id: &report_id,
                        day,
                        now_ms: now,
                    };
                    self.mail(&parts, &gzipped).await
                }
            };
            outcomes.push(match outcome {
                Ok(()) => "sent".to_string(),
                Err(e) => e,
            });
        }
        env.store
            .tls_rpt()
            .finish_report(day, domain, &outcomes.join("; "))
            .await?;
        Ok(())
    }

    /// POSTs the report, trying again a few times; the error of the last attempt when all fail.
    async fn post(&self, url: &str, gzipped: &[u8], domain: &str) -> Result<(), String> {
        let mut waits = POST_RETRY.iter();
        loop {
            match self.client.post_https(url, REPORT_MEDIA_TYPE, gzipped.to_vec()).await {
                Ok(()) => return Ok(()),
                Err(e) => match waits.next() {
                    Some(wait) => tokio::time::sleep(*wait).await,
                    None => {
                        tracing::warn!(domain, url, error = %e, "TLS-RPT report not delivered; giving up");
                        return Err(format!("{url}: {e}"));
                    }
                },
            }
        }
    }

    /// Receivers ignore report mail the reporting domain has not DKIM-signed (RFC 8460 §5.3). The worker signs
    /// it as any mail, when the sender's domain is a verified domain of the reports' account; says so when not.
    async fn warn_if_unsigned(&self, account: mailpush_model::AccountId, from: &str) -> Result<(), CoreError> {
        let domain = from.rsplit_once('@').map_or("", |(_, d)| d).to_ascii_lowercase();
        let identity = self.service.env.store.identities().identity(account, &domain).await?;
        if !identity.is_some_and(|row| row.verified) {
            tracing::warn!(
                from,
                "TLS-RPT report mail goes out without a DKIM signature and receivers ignore it: add {domain} to the \
                 account {REPORT_ACCOUNT} and verify it"
            );
        }
        Ok(())
    }

    /// Queues the report mail to `parts.to`.
    async fn mail(&self, parts: &MailParts<'_>, gzipped: &[u8]) -> Result<(), String> {
        let queued = async {
            let env = &self.service.env;
            let account = self.service.accounts.system_account(REPORT_ACCOUNT).await?;
            self.warn_if_unsigned(account, parts.from).await?;
            let recipient = mailpush_model::EmailAddress::parse(parts.to)
                .map_err(|e| CoreError::Config(format!("rua mailto:{}: {e}", parts.to)))?;
            let now = parts.now_ms;
            let msg = NewMessage {
                id: MessageId::generate(),
                account_id: account,
                envelope_from: parts.from.to_string(),
                from_address: parts.from.to_string(),
                subject: format!(
                    "Report Domain: {} Submitter: {} Report-ID: <{}>",
                    parts.policy_domain, parts.submitter, parts.report_id
                ),
                lane: Lane::Batch,
                request_ms: now,
                not_before_ms: now,
                expires_ms: now.saturating_add(
                    i64::try_from(env.settings.max_delivery_seconds.saturating_mul(1000)).unwrap_or(i64::MAX),
                ),
                body: report_mail(parts, gzipped),
                recipients: vec![NewRecipient {
                    address: recipient.as_str().to_string(),
                    domain: recipient.domain().to_string(),
                    kind: RecipientKind::To,
                    send_status: SendStatus::Ok,
                    deliver_message: None,
                }],
                template_id: 0,
                tls_requirement: TlsRequirement::Exempt,
            };
            env.store.queue().enqueue(msg).await?;
            self.service.wake.notify_one();
            Ok::<(), CoreError>(())
        };
        queued.await.map_err(|e| {
            tracing::warn!(to = parts.to, error = %e, "TLS-RPT report mail not queued");
            format!("mailto:{}: {e}", parts.to)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mail_parser::MimeHeaders;
    use mailpush_delivery::{TlsPolicyType, TlsSessionFailure};
    use mailpush_model::ManualClock;

    fn outcome(domain: &str, failure: Option<&'static str>) -> TlsSessionOutcome {
        TlsSessionOutcome {
            policy_domain: domain.to_string(),
            policy_type: TlsPolicyType::Sts,
            policy_strings: vec!["version: STSv1".into(), "mode: enforce".into()],
            mx_hosts: vec!["mx.example.com".into()],
            failure: failure.map(|result_type| TlsSessionFailure {
                result_type,
                sending_mta_ip: Some("192.0.2.1".parse().unwrap()),
                receiving_mx_hostname: "mx.example.com".into(),
                receiving_ip: Some("198.51.100.7".parse().unwrap()),
                failure_reason_code: "4.7.5 TLS handshake failed: UnknownIssuer".into(),
            }),
        }
    }

    fn rows(recorder: &Recorder) -> Vec<TlsRptCount> {
        let mut rows: Vec<TlsRptCount> = recorder.locked().iter().map(|(k, n)| k.row(*n)).collect();
        rows.sort_by(|a, b| a.result_type.cmp(&b.result_type));
        rows
    }

    #[test]
    fn sessions_fold_per_day_domain_and_result() {
        let clock = ManualClock::new(20_000 * DAY_MS + 5);
        let recorder = Recorder::new(clock.clone());
        for _ in 0..3 {
            recorder.record(outcome("Example.COM", None));
        }
        recorder.record(outcome("example.com", Some("certificate-not-trusted")));
        recorder.record(outcome("example.com", Some("certificate-not-trusted")));
        let rows = rows(&recorder);
        assert_eq!(rows.len(), 2, "{rows:?}");
        assert_eq!(
            (rows[0].day, rows[0].sessions, rows[0].result_type.as_str()),
            (20_000, 3, "")
        );
        assert_eq!((rows[1].sessions, rows[1].receiving_ip.as_str()), (2, "198.51.100.7"));
        clock.advance(DAY_MS);
        recorder.record(outcome("example.com", None));
        assert_eq!(recorder.locked().len(), 3);
    }

    #[test]
    fn the_report_follows_rfc_8460_section_4_4() {
        let clock = ManualClock::new(20_000 * DAY_MS);
        let recorder = Recorder::new(clock);
        for _ in 0..4 {
            recorder.record(outcome("example.com", None));
        }
        recorder.record(outcome("example.com", Some("certificate-not-trusted")));
        recorder.record(TlsSessionOutcome {
            policy_type: TlsPolicyType::NoPolicyFound,
            policy_strings: Vec::new(),
            mx_hosts: Vec::new(),
            ..outcome("example.com", None)
        });
        let meta = ReportMeta {
            organization: "Example Sender",
            contact: "tls@sender.example",
            report_id: "2024-10-04_example.com@mx.sender.example",
            day: 20_000,
        };
        let report = report_json(&meta, "example.com", &rows(&recorder));
        assert_eq!(report["organization-name"], "Example Sender");
        assert_eq!(report["contact-info"], "tls@sender.example");
        assert_eq!(report["report-id"], "2024-10-04_example.com@mx.sender.example");
        assert_eq!(report["date-range"]["start-datetime"], "2024-10-04T00:00:00Z");
        assert_eq!(report["date-range"]["end-datetime"], "2024-10-04T23:59:59Z");
        let policies = report["policies"].as_array().unwrap();
        assert_eq!(policies.len(), 2);
        let none = &policies[0];
        assert_eq!(none["policy"]["policy-type"], "no-policy-found");
        assert!(none["policy"].get("policy-string").is_none());
        assert_eq!(none["summary"]["total-successful-session-count"], 1);
        let sts = &policies[1];
        assert_eq!(sts["policy"]["policy-type"], "sts");
        assert_eq!(sts["policy"]["policy-domain"], "example.com");
        assert_eq!(
            sts["policy"]["policy-string"],
            json!(["version: STSv1", "mode: enforce"])
        );
        assert_eq!(sts["policy"]["mx-host"], json!(["mx.example.com"]));
        assert_eq!(sts["summary"]["total-successful-session-count"], 4);
        assert_eq!(sts["summary"]["total-failure-session-count"], 1);
        let detail = &sts["failure-details"][0];
        assert_eq!(detail["result-type"], "certificate-not-trusted");
        assert_eq!(detail["sending-mta-ip"], "192.0.2.1");
        assert_eq!(detail["receiving-mx-hostname"], "mx.example.com");
        assert_eq!(detail["receiving-ip"], "198.51.100.7");
        assert_eq!(detail["failed-session-count"], 1);
        assert_eq!(
            detail["failure-reason-code"],
            "4.7.5 TLS handshake failed: UnknownIssuer"
        );
    }

    #[test]
    fn the_mail_is_a_multipart_report_with_the_gzipped_json() {
        let json = br#"{"report-id":"r1"}"#;
        let gzipped = gzip(json).unwrap();
        let parts = MailParts {
            from: "tlsrpt-noreply@mx.sender.example",
            to: "tls@example.com",
            submitter: "mx.sender.example",
            policy_domain: "example.com",
            report_id: "r1",
            day: 20_000,
            now_ms: 20_001 * DAY_MS,
        };
        let mail = report_mail(&parts, &gzipped);
        let parsed = mail_parser::MessageParser::default().parse(&mail).unwrap();
        assert_eq!(
            parsed.subject(),
            Some("Report Domain: example.com Submitter: mx.sender.example Report-ID: <r1>")
        );
        assert_eq!(
            parsed.header_raw("TLS-Report-Domain").map(str::trim),
            Some("example.com")
        );
        assert_eq!(
            parsed.header_raw("TLS-Report-Submitter").map(str::trim),
            Some("mx.sender.example")
        );
        let ct = parsed.content_type().unwrap();
        assert_eq!((ct.ctype(), ct.subtype()), ("multipart", Some("report")));
        assert_eq!(ct.attribute("report-type"), Some("tlsrpt"));
        let attachment = parsed.attachment(0).unwrap();
        let act = attachment.content_type().unwrap();
        assert_eq!((act.ctype(), act.subtype()), ("application", Some("tlsrpt+gzip")));
        assert_eq!(
            attachment.attachment_name(),
            Some("mx.sender.example!example.com!1728000000!1728086399!r1.json.gz")
        );
        let mut unzipped = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(attachment.contents()), &mut unzipped).unwrap();
        assert_eq!(unzipped, json);
    }
}
