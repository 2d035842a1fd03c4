//! Content safety at admission and the quality check, over `mailpush-screening`'s clients:
//! - every mail with attachments (SendEmail, batch, SMTP) is scanned by clamd (`clamd_address`); a signature
//!   refuses it (`OperationDenied`, SMTP `550 5.7.1`, naming the signature); clamd down refuses it for a retry
//!   (`FailedOperation.ServiceNotAvailable`, SMTP `451 4.3.0`) or, with `clamd_unavailable = "accept"`, lets it
//!   through unscanned (counted, logged);
//! - custom (`Simple`) and SMTP mail of an account with a minimum score is scored (rspamd `rspamd_url` + the
//!   content checks) and refused below it (`OperationDenied`, `550 5.7.1` with the reasons); rspamd down lets it
//!   through (counted, logged) unless `rspamd_unavailable = "refuse"`;
//! - the template review's content rules (lexicon, link permission, redirects, unsafe links) apply to custom
//!   and SMTP mail of accounts that turned `review_content` on, refusing with the review's reasons;
//! - `CheckEmailQuality` / `mailpush check`: the 0–10 report of a template with data, Simple content or raw MIME.

use crate::Env;
use crate::accounts::AccountContext;
use crate::cache::TtlCache;
use crate::error::CoreError;
use crate::send::{self, SendContent, SendRequest};
use crate::settings::Settings;
use mailpush_identity::RecordKind;
use mailpush_model::account::ScreeningPolicy;
use mailpush_model::{Attachment, ErrorCode, Mailbox, TriggerType};
pub use mailpush_screening::{Check, CheckStatus, ExplainedSymbol, QualityReport};
use mailpush_screening::{ClamdAddress, ClamdClient, FilterRequest, RspamdClient, ScanVerdict, ScreeningError};
use mailpush_template::{ReviewInput, ReviewOutcome, ReviewPolicy, ReviewRule, TemplateCategory};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The best quality score (scores run from 0 to this).
pub const MAX_SCORE: f64 = 10.0;

/// The review rules that screen custom content: what the content says and where it links, not the template
/// shape rules (length, placeholders).
const CONTENT_RULES: [ReviewRule; 4] = [
    ReviewRule::ForbiddenContent,
    ReviewRule::LinkNotAllowed,
    ReviewRule::RedirectLink,
    ReviewRule::UnsafeLink,
];

/// The scanners of this process and what they counted.
pub(crate) struct Scanners {
    clamd: Option<ClamdClient>,
    refuse_unscanned: bool,
    rspamd: Option<RspamdClient>,
    refuse_unscored: bool,
    policies: TtlCache<i64, ScreeningPolicy>,
    counters: Counters,
}

#[derive(Default)]
struct Counters {
    scanned: AtomicU64,
    viruses: AtomicU64,
    unscanned_accepted: AtomicU64,
    unscanned_refused: AtomicU64,
    scored: AtomicU64,
    unscored: AtomicU64,
    score_refused: AtomicU64,
    review_refused: AtomicU64,
}

fn policy_choice(key: &str, value: &str) -> Result<bool, CoreError> {
    match value {
        "refuse" => Ok(true),
        "accept" => Ok(false),
        other => Err(CoreError::Config(format!("{key} {other:?}: use refuse or accept"))),
    }
}

impl Scanners {
    pub(crate) fn from_settings(s: &Settings) -> Result<Scanners, CoreError> {
        let clamd = match s.clamd_address.as_deref().map(str::trim).filter(|a| !a.is_empty()) {
            None => None,
            Some(raw) => {
                let address: ClamdAddress = raw
                    .parse()
                    .map_err(|e: ScreeningError| CoreError::Config(format!("clamd_address: {e}")))?;
                Some(ClamdClient::new(
                    address,
                    Duration::from_secs(s.clamd_timeout_secs.max(1)),
                ))
            }
        };
        let rspamd = match s.rspamd_url.as_deref().map(str::trim).filter(|a| !a.is_empty()) {
            None => None,
            Some(url) => Some(
                RspamdClient::new(url, Duration::from_secs(s.rspamd_timeout_secs.max(1)))
                    .map_err(|e| CoreError::Config(format!("rspamd_url: {e}")))?,
            ),
        };
        Ok(Scanners {
            clamd,
            refuse_unscanned: policy_choice("clamd_unavailable", &s.clamd_unavailable)?,
            rspamd,
            refuse_unscored: policy_choice("rspamd_unavailable", &s.rspamd_unavailable)?,
            policies: TtlCache::new(Duration::from_secs(1)),
            counters: Counters::default(),
        })
    }
}

/// What the quality check judges.
#[derive(Debug, Clone)]
pub enum QualityInput {
    /// A whole MIME message as SMTP would submit it.
    Raw(Vec<u8>),
    /// A SendEmail request (Template with TemplateData, or Simple).
    Send(Box<SendRequest>),
}

/// A quality check request.
#[derive(Debug, Clone)]
pub struct QualityRequest {
    /// The mail.
    pub input: QualityInput,
    /// Marketing mail (needs List-Unsubscribe); default: a SendEmail's TriggerType 0, for raw MIME `false`.
    pub marketing: Option<bool>,
    /// SendEmail's `Unsubscribe` would be set (mailpush then adds List-Unsubscribe).
    pub unsubscribe: bool,
}

fn refuse(code: ErrorCode, message: impl Into<String>) -> CoreError {
    CoreError::refused(code, message)
}

/// The mail of one admission as screening sees it.
struct Candidate<'a> {
    /// The built MIME (API) or the submitted message (SMTP).
    mime: &'a [u8],
    subject: &'a str,
    html: Option<&'a str>,
    text: Option<&'a str>,
    /// Decoded attachments: `(name, bytes)`.
    attachments: Vec<(&'a str, &'a [u8])>,
    envelope_from: &'a str,
    recipients: Vec<String>,
    custom: bool,
}

/// Content safety at admission and the quality check.
pub struct Screening {
    pub(crate) env: Env,
    pub(crate) scanners: Scanners,
    pub(crate) templates: Arc<crate::templates::Templates>,
    pub(crate) identities: Arc<crate::identity::Identities>,
}

impl Screening {
    pub(crate) async fn screening_policy(&self, account: &AccountContext) -> Result<ScreeningPolicy, CoreError> {
        if let Some(p) = self.scanners.policies.get(&account.id) {
            return Ok(p);
        }
        let p = self.env.store.screening().screening_policy(account.id).await?;
        self.scanners.policies.put(account.id, p);
        Ok(p)
    }

    pub(crate) async fn set_screening_policy(
        &self,
        account: &AccountContext,
        policy: ScreeningPolicy,
    ) -> Result<(), CoreError> {
        if let Some(s) = policy.min_score
            && !(0.0..=MAX_SCORE).contains(&s)
        {
            return Err(refuse(
                ErrorCode::InvalidParameterValue,
                format!("the minimum score {s} must lie between 0 and 10"),
            ));
        }
        self.env
            .store
            .screening()
            .set_screening_policy(account.id, policy)
            .await?;
        self.scanners.policies.remove(&account.id);
        Ok(())
    }

    /// SendEmail admission (called with the built MIME): virus scan of the attachments, then, for custom
    /// content (`custom`), the account's content review and score threshold.
    pub(crate) async fn screen_send(
        &self,
        account: &AccountContext,
        custom: bool,
        mail: &send::AdmittedMail,
        mime: &[u8],
    ) -> Result<(), CoreError> {
        // Nothing to look at: build no candidate (this runs for every API mail).
        if self.scanners.clamd.is_none()
            && (!custom || self.screening_policy(account).await? == ScreeningPolicy::default())
        {
            return Ok(());
        }
        let c = Candidate {
            mime,
            subject: &mail.spec.subject,
            html: mail.spec.html.as_deref(),
            text: mail.spec.text.as_deref(),
            attachments: mail
                .spec
                .attachments
                .iter()
                .map(|a: &Attachment| (a.filename.as_str(), a.content.as_slice()))
                .collect(),
            envelope_from: mail.sender.as_str(),
            recipients: mail.recipients.iter().map(|r| r.address.as_str().to_string()).collect(),
            custom,
        };
        self.screen(account, c).await
    }

    /// SMTP admission: the same screens over the submitted message.
    pub(crate) async fn screen_submission(
        &self,
        account: &AccountContext,
        mail: &crate::submit::AdmittedRaw,
    ) -> Result<(), CoreError> {
        // Parsing the MIME costs: only when something will look at it.
        if self.scanners.clamd.is_none() && self.screening_policy(account).await? == ScreeningPolicy::default() {
            return Ok(());
        }
        let mime = mail.body.as_slice();
        let attachments = mailpush_screening::attachments(mime);
        let (subject, html, text) = parts_of(mime);
        let c = Candidate {
            mime,
            subject: &subject,
            html: html.as_deref(),
            text: text.as_deref(),
            attachments: attachments
                .iter()
                .map(|a| (a.name.as_str(), a.content.as_slice()))
                .collect(),
            envelope_from: mail.envelope_from.as_str(),
            recipients: mail.recipients.iter().map(|r| r.address.as_str().to_string()).collect(),
            custom: true,
        };
        self.screen(account, c).await
    }

    async fn screen(&self, account: &AccountContext, c: Candidate<'_>) -> Result<(), CoreError> {
        self.scan_attachments(account, &c.attachments).await?;
        if !c.custom {
            return Ok(());
        }
        let policy = self.screening_policy(account).await?;
        if policy.review_content {
            let outcome = self.review_custom(account, c.subject, c.html, c.text).await?;
            if !outcome.findings.is_empty() {
                self.scanners.counters.review_refused.fetch_add(1, Ordering::Relaxed);
                return Err(refuse(
                    ErrorCode::OperationDenied,
                    format!(
                        "the content was refused by the content review: {}",
                        crate::templates::review_reason(&outcome).replace('\n', "; ")
                    ),
                ));
            }
        }
        if let Some(min) = policy.min_score {
            self.enforce_min_score(account, &c, min).await?;
        }
        Ok(())
    }

    async fn scan_attachments(&self, account: &AccountContext, attachments: &[(&str, &[u8])]) -> Result<(), CoreError> {
        let Some(clamd) = &self.scanners.clamd else {
            return Ok(());
        };
        let counters = &self.scanners.counters;
        for (name, content) in attachments {
            match clamd.scan(content).await {
                Ok(ScanVerdict::Clean) => {
                    counters.scanned.fetch_add(1, Ordering::Relaxed);
                }
                Ok(ScanVerdict::Found(signature)) => {
                    counters.scanned.fetch_add(1, Ordering::Relaxed);
                    counters.viruses.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(account = %account.name, attachment = %name, %signature, "virus found: mail refused");
                    return Err(refuse(
                        ErrorCode::OperationDenied,
                        format!("the attachment {name:?} contains a virus ({signature}); the mail was not accepted"),
                    ));
                }
                Err(ScreeningError::TooLarge) => {
                    return Err(refuse(
                        ErrorCode::FailedOperationAttachContentToolarge,
                        format!(
                            "the attachment {name:?} is larger than the virus scanner accepts (clamd StreamMaxLength)"
                        ),
                    ));
                }
                Err(e) if self.scanners.refuse_unscanned => {
                    counters.unscanned_refused.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(error = %e, account = %account.name, "virus scanner unavailable: mail refused for a retry");
                    return Err(refuse(
                        ErrorCode::FailedOperationServiceNotAvailable,
                        "the virus scanner is unavailable; the mail was not accepted, retry later",
                    ));
                }
                Err(e) => {
                    counters.unscanned_accepted.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(error = %e, account = %account.name, "virus scanner unavailable: mail accepted unscanned (clamd_unavailable = accept)");
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// The account's link permission (`allow_links`).
    async fn links_allowed(&self, account: &AccountContext) -> Result<bool, CoreError> {
        let policy = self.env.store.templates().account_policy(account.id).await?;
        Ok(policy.unwrap_or_default().allow_links)
    }

    /// The template review's content rules over custom content, with the account's link permission.
    async fn review_custom(
        &self,
        account: &AccountContext,
        subject: &str,
        html: Option<&str>,
        text: Option<&str>,
    ) -> Result<ReviewOutcome, CoreError> {
        let allow_links = self.links_allowed(account).await?;
        let input = ReviewInput {
            subject: Some(subject).filter(|s| !s.is_empty()),
            html,
            text: text.or(if html.is_none() { Some("") } else { None }),
            category: TemplateCategory::default(),
        };
        let policy = ReviewPolicy {
            allow_links,
            allow_redirect_links: false,
        };
        let mut outcome = self.templates.engine.reviewer().review(&input, &policy);
        outcome.findings.retain(|f| CONTENT_RULES.contains(&f.rule));
        outcome.approved = outcome.findings.is_empty();
        Ok(outcome)
    }

    async fn enforce_min_score(&self, account: &AccountContext, c: &Candidate<'_>, min: f64) -> Result<(), CoreError> {
        let counters = &self.scanners.counters;
        let verdict = self.filter(c.mime, c.envelope_from, &c.recipients).await;
        if let Err(e) = &verdict {
            counters.unscored.fetch_add(1, Ordering::Relaxed);
            if self.scanners.refuse_unscored && self.scanners.rspamd.is_some() {
                tracing::error!(error = %e, account = %account.name, "spam filter unavailable: mail refused for a retry");
                return Err(refuse(
                    ErrorCode::FailedOperationServiceNotAvailable,
                    "the spam filter is unavailable; the mail was not accepted, retry later",
                ));
            }
            tracing::warn!(error = %e, account = %account.name, "spam filter unavailable: mail accepted unscored");
            return Ok(());
        }
        counters.scored.fetch_add(1, Ordering::Relaxed);
        // At admission mailpush adds List-Unsubscribe itself where configured and links are the review's
        // business: the score judges the content.
        let checks = mailpush_screening::analyze(c.mime)
            .map(|f| mailpush_screening::content_checks(&f, false, true))
            .unwrap_or_default();
        let report = mailpush_screening::quality::report(verdict, checks);
        if report.score < min {
            counters.score_refused.fetch_add(1, Ordering::Relaxed);
            let why = if report.fix_first.is_empty() {
                String::new()
            } else {
                format!(": {}", report.fix_first.join("; "))
            };
            return Err(refuse(
                ErrorCode::OperationDenied,
                format!(
                    "the mail scores {:.1}/10, below this account's minimum of {min:.1}{why}",
                    report.score
                ),
            ));
        }
        Ok(())
    }

    async fn filter(
        &self,
        mime: &[u8],
        from: &str,
        rcpts: &[String],
    ) -> Result<mailpush_screening::FilterVerdict, String> {
        let Some(rspamd) = &self.scanners.rspamd else {
            return Err("no spam filter is configured (rspamd_url)".into());
        };
        let req = FilterRequest {
            message: mime,
            from: Some(from).filter(|f| !f.is_empty()),
            rcpts,
            // The filter judges the content, not the submitting host (a tenant's application server, or
            // mailpush itself for API mail): it is told the mail comes from a local client.
            ip: Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            helo: Some(self.env.settings.helo_name.as_str()),
        };
        rspamd.check(&req).await.map_err(|e| e.to_string())
    }

    pub(crate) async fn check_email_quality(
        &self,
        account: &AccountContext,
        req: QualityRequest,
    ) -> Result<QualityReport, CoreError> {
        let (mime, from, rcpts, marketing, subject, html, text) = match req.input {
            QualityInput::Raw(raw) => {
                let from = header_from(&raw).ok_or_else(|| {
                    refuse(
                        ErrorCode::InvalidParameterValueEmailContentIsWrong,
                        "RawMessage has no valid From header",
                    )
                })?;
                let (subject, html, text) = parts_of(&raw);
                (
                    raw,
                    from,
                    Vec::new(),
                    req.marketing.unwrap_or(false),
                    subject,
                    html,
                    text,
                )
            }
            QualityInput::Send(send_req) => {
                let mut send_req = *send_req;
                if send_req.destination.is_empty() && send_req.cc.is_empty() && send_req.bcc.is_empty() {
                    send_req.destination.push("recipient@example.com".into());
                }
                let marketing = req.marketing.unwrap_or(send_req.trigger == TriggerType::Batch);
                if matches!(send_req.content, Some(SendContent::Simple { .. })) {
                    // Scoring is not sending: the Simple-content permission is checked when the mail is sent.
                } else {
                    send_req = self.templates.resolve_content(account, send_req).await?;
                }
                let mail = send::admit(send_req, self.env.clock.now_ms())?;
                let mime = mailpush_delivery::build_mime(&mail.spec)?;
                let from = mail.spec.from.address.as_str().to_string();
                let rcpts = mail.recipients.iter().map(|r| r.address.as_str().to_string()).collect();
                (
                    mime,
                    from,
                    rcpts,
                    marketing,
                    mail.spec.subject.clone(),
                    mail.spec.html.clone(),
                    mail.spec.text.clone(),
                )
            }
        };
        let allow_links = self.links_allowed(account).await?;
        let mut checks = Vec::new();
        checks.extend(self.domain_checks(account, &from).await?);
        if let Some(facts) = mailpush_screening::analyze(&mime) {
            let mut facts = facts;
            facts.list_unsubscribe |= req.unsubscribe;
            checks.extend(mailpush_screening::content_checks(&facts, marketing, allow_links));
        }
        let review = self
            .review_custom(account, &subject, html.as_deref(), text.as_deref())
            .await?;
        let review: Vec<_> = review
            .findings
            .iter()
            .filter(|f| f.rule != ReviewRule::LinkNotAllowed)
            .collect();
        checks.push(if review.is_empty() {
            Check::pass("content_review", "no forbidden terms, redirects or unsafe links")
        } else {
            Check::fail(
                "content_review",
                (review.len() as f64).min(3.0),
                review
                    .iter()
                    .map(|f| format!("{}: {}", f.rule.as_str(), f.reason))
                    .collect::<Vec<_>>()
                    .join("; "),
                "remove the terms and links the content review names; accounts with content review on cannot send them",
            )
        });
        let verdict = self.filter(&mime, &from, &rcpts).await;
        if let Err(e) = &verdict
            && self.scanners.rspamd.is_some()
        {
            self.scanners.counters.unscored.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(error = %e, "spam filter unavailable: quality report without it");
        }
        Ok(mailpush_screening::quality::report(verdict, checks))
    }

    /// DKIM, SPF and DMARC of the sender's domain, from the account's last DNS check of that identity.
    async fn domain_checks(&self, account: &AccountContext, from: &str) -> Result<Vec<Check>, CoreError> {
        let domain = from.rsplit_once('@').map_or("", |(_, d)| d).to_ascii_lowercase();
        let kinds = [
            ("dkim", "DKIM", 1.0, RecordKind::Dkim),
            ("spf", "SPF", 1.0, RecordKind::Spf),
            ("dmarc", "DMARC", 0.5, RecordKind::Dmarc),
        ];
        let view = match self.identities.get_identity(account, &domain).await {
            Ok(v) => v,
            Err(CoreError::Refused(_)) => {
                return Ok(kinds
                    .iter()
                    .map(|(name, label, penalty, _)| {
                        Check::fail(
                            name,
                            *penalty,
                            format!(
                                "{domain} is not a sending domain of this account, so its {label} record is unknown"
                            ),
                            format!("add {domain} with CreateEmailIdentity and publish its records"),
                        )
                    })
                    .collect());
            }
            Err(e) => return Err(e),
        };
        Ok(kinds
            .iter()
            .map(|(name, label, penalty, kind)| {
                let records: Vec<_> = view.records.iter().filter(|r| r.spec.kind == *kind).collect();
                if records.is_empty() {
                    Check::skipped(name, format!("mailpush publishes no {label} record for {domain}"))
                } else if records.iter().all(|r| r.pass) {
                    Check::pass(name, format!("the {label} record of {domain} is published"))
                } else {
                    let why = records.iter().find_map(|r| r.reason.clone()).unwrap_or_default();
                    Check::fail(
                        name,
                        *penalty,
                        format!("the {label} record of {domain} does not pass: {why}"),
                        format!("publish the {label} record GetEmailIdentity shows for {domain}"),
                    )
                }
            })
            .collect())
    }

    pub(crate) fn screening_metrics(&self) -> String {
        let c = &self.scanners.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        format!(
            "# HELP mailpush_virus_scans_total Attachments scanned by clamd at admission.\n\
             # TYPE mailpush_virus_scans_total counter\nmailpush_virus_scans_total {}\n\
             # HELP mailpush_virus_found_total Mails refused because clamd found a virus in an attachment.\n\
             # TYPE mailpush_virus_found_total counter\nmailpush_virus_found_total {}\n\
             # HELP mailpush_virus_unscanned_total Mails with attachments clamd could not scan, by what was done.\n\
             # TYPE mailpush_virus_unscanned_total counter\n\
             mailpush_virus_unscanned_total{{outcome=\"accepted\"}} {}\nmailpush_virus_unscanned_total{{outcome=\"refused\"}} {}\n\
             # HELP mailpush_spam_scored_total Mails scored by rspamd at admission.\n\
             # TYPE mailpush_spam_scored_total counter\nmailpush_spam_scored_total {}\n\
             # HELP mailpush_spam_unscored_total Mails rspamd could not score (unavailable or not configured).\n\
             # TYPE mailpush_spam_unscored_total counter\nmailpush_spam_unscored_total {}\n\
             # HELP mailpush_screening_refused_total Mails refused by screening, by reason.\n\
             # TYPE mailpush_screening_refused_total counter\n\
             mailpush_screening_refused_total{{reason=\"score\"}} {}\nmailpush_screening_refused_total{{reason=\"review\"}} {}\n",
            get(&c.scanned),
            get(&c.viruses),
            get(&c.unscanned_accepted),
            get(&c.unscanned_refused),
            get(&c.scored),
            get(&c.unscored),
            get(&c.score_refused),
            get(&c.review_refused),
        )
    }
}

/// The header From address of a raw message.
fn header_from(raw: &[u8]) -> Option<String> {
    let msg = mail_parser::MessageParser::default().parse(raw)?;
    let addr = msg.from()?.first()?.address()?.to_string();
    Mailbox::parse(&addr).ok().map(|m| m.address.as_str().to_string())
}

/// Subject, first HTML part and first text part of a raw message (for the content review).
fn parts_of(raw: &[u8]) -> (String, Option<String>, Option<String>) {
    let Some(msg) = mail_parser::MessageParser::default().parse(raw) else {
        return (String::new(), None, None);
    };
    let subject = msg.subject().unwrap_or_default().to_string();
    let mut html = None;
    let mut text = None;
    for part in &msg.parts {
        match &part.body {
            mail_parser::PartType::Html(h) if html.is_none() => html = Some(h.to_string()),
            mail_parser::PartType::Text(t) if text.is_none() => text = Some(t.to_string()),
            _ => {}
        }
    }
    (subject, html, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config_error(s: Settings) -> String {
        match Scanners::from_settings(&s) {
            Err(CoreError::Config(m)) => m,
            Err(e) => panic!("not a configuration error: {e}"),
            Ok(_) => panic!("accepted"),
        }
    }

    #[test]
    fn settings_are_checked_at_start() {
        let s = Scanners::from_settings(&Settings::default()).expect("defaults");
        assert!(s.clamd.is_none() && s.rspamd.is_none());
        assert!(s.refuse_unscanned && !s.refuse_unscored);
        let ok = Settings {
            clamd_address: Some("unix:/run/clamav/clamd.ctl".into()),
            rspamd_url: Some("http://127.0.0.1:11333".into()),
            clamd_unavailable: "accept".into(),
            ..Settings::default()
        };
        let s = Scanners::from_settings(&ok).expect("valid");
        assert!(s.clamd.is_some() && s.rspamd.is_some() && !s.refuse_unscanned);
        let bad = |f: fn(&mut Settings)| {
            let mut s = Settings::default();
            f(&mut s);
            config_error(s)
        };
        assert!(bad(|s| s.clamd_unavailable = "maybe".into()).starts_with("clamd_unavailable"));
        assert!(bad(|s| s.rspamd_unavailable = "".into()).starts_with("rspamd_unavailable"));
        assert!(bad(|s| s.clamd_address = Some("clamd".into())).starts_with("clamd_address"));
        assert!(bad(|s| s.rspamd_url = Some("127.0.0.1:11333".into())).starts_with("rspamd_url"));
    }

    #[test]
    fn parts_and_sender_of_a_raw_message() {
        let raw = b"From: Shop <App@Shop.example.com>\r\nSubject: Hi\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nHello\r\n\
--b\r\nContent-Type: text/html\r\n\r\n<p>Hello</p>\r\n--b--\r\n";
        assert_eq!(header_from(raw).as_deref(), Some("App@shop.example.com"));
        let (subject, html, text) = parts_of(raw);
        assert_eq!(subject, "Hi");
        assert_eq!(html.as_deref().map(str::trim), Some("<p>Hello</p>"));
        assert_eq!(text.as_deref().map(str::trim), Some("Hello"));
        assert_eq!(header_from(b"Subject: no sender\r\n\r\nx"), None);
    }
}
