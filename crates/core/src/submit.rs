//! Submission of ready-made MIME (the SMTP endpoint): who may submit, what a raw message must look like, and
//! the durable enqueue. The rules are the API's where they apply to raw MIME: the same size and recipient
//! limits, the same sender rule, the same error codes. Apart from a `Message-ID` and `Date` added when
//! missing, the MIME is stored as sent.
//!
//! # Sending identities
//! Who may submit and as whom comes from sending identities (`identity.rs`):
//! - [`Mailpush::smtp_login`] checks a sender address's SMTP password (`UpdateEmailSmtpPassWord`);
//! - [`Mailpush::sender_identity_allowed`] requires the sender's domain to be a verified sending domain of
//!   the account (domain level: Postfix-style clients send from many local parts).

use crate::Env;
use crate::accounts::AccountContext;
use crate::configuration_sets::{
    SesMail, SesSendExtras, SesSendOutcome, SetInUse, drop_opted_out, list_unsubscribe_headers,
};
use crate::error::CoreError;
use crate::send::AdmittedRecipient;
use mailpush_model::message::{MAX_MAIL_BYTES, MAX_SUBJECT_BYTES, MAX_TO};
use mailpush_model::queue::{NewMessage, NewRecipient};
use mailpush_model::{EmailAddress, ErrorCode, MessageId, RecipientKind, TriggerType};
use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;

/// Most recipients of one raw submission (the API's limit on `Destination`).
pub const MAX_RAW_RECIPIENTS: usize = MAX_TO;
/// Largest header section of a raw submission. Generous for DKIM/ARC chains, small enough that a header
/// flood cannot tie up the parser.
pub const MAX_HEADER_BYTES: usize = 128 * 1024;
/// Longest line of a raw submission without its CRLF (RFC 5322 §2.1.1).
pub const MAX_LINE_BYTES: usize = 998;

/// Who submits: the account mail is charged to and, for a login with a sender address's SMTP password,
/// that address (the only one it may send as).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submitter {
    /// The account.
    pub account: AccountContext,
    /// The sender address authenticated as; `None` for trusted networks (any verified sender of the account).
    pub login: Option<EmailAddress>,
}

/// One raw submission, as an SMTP transaction carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawSubmission {
    /// `MAIL FROM` (without angle brackets).
    pub envelope_from: String,
    /// `RCPT TO` addresses.
    pub recipients: Vec<String>,
    /// The message, CRLF line endings, already dot-unstuffed.
    pub data: Vec<u8>,
    /// Queue lane.
    pub trigger: TriggerType,
    /// The SMTP session it came through: a `Received:` header is prepended from it (none: no header).
    pub trace: Option<SubmissionTrace>,
    /// `MAIL FROM` carried `REQUIRETLS` (RFC 8689): the mail goes only over verified TLS to receivers that offer
    /// REQUIRETLS.
    pub requiretls: bool,
}

/// The SMTP session facts the `Received:` trace header (RFC 5321 §4.4) is written from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SubmissionTrace {
    /// The client's EHLO/HELO name (as given: sanitized when written).
    pub helo: String,
    /// The client's address.
    pub ip: Option<IpAddr>,
    /// The session ran over TLS.
    pub tls: bool,
    /// The client authenticated (AUTH).
    pub authenticated: bool,
}

/// A client-supplied name reduced to what may stand in a trace header: no spaces, parentheses, semicolons
/// or control characters (a header line a client could otherwise shape), at most 255 characters.
fn trace_token(s: &str) -> String {
    let t: String = s
        .chars()
        .filter(|c| c.is_ascii_graphic() && !matches!(c, '(' | ')' | ';' | '\\'))
        .take(255)
        .collect();
    if t.is_empty() { "unknown".to_string() } else { t }
}

/// The `Received:` header (CRLF-terminated) for mail entering through SMTP (`trace`) or the API (`None`).
/// `hide_client` leaves out the client's name and address of an authenticated submission.
pub(crate) fn received_header(
    trace: Option<&SubmissionTrace>,
    by: &str,
    id: &MessageId,
    now_ms: i64,
    hide_client: bool,
) -> String {
    let by = trace_token(by);
    let date = rfc2822_date(now_ms);
    match trace {
        None => format!("Received: by {by} (mailpush) with HTTP id {id};\r\n\t{date}\r\n"),
        Some(t) => {
            let protocol = match (t.tls, t.authenticated) {
                (true, true) => "ESMTPSA",
                (false, true) => "ESMTPA",
                (true, false) => "ESMTPS",
                (false, false) => "ESMTP",
            };
            let from = if hide_client && t.authenticated {
                String::new()
            } else {
                let ip = t.ip.map(|ip| match ip {
                    IpAddr::V4(v4) => format!("[{v4}]"),
                    IpAddr::V6(v6) => format!("[IPv6:{v6}]"),
                });
                format!(
                    "from {} ({})\r\n\t",
                    trace_token(&t.helo),
                    ip.unwrap_or_else(|| "unknown".to_string())
                )
            };
            format!("Received: {from}by {by} (mailpush) with {protocol} id {id};\r\n\t{date}\r\n")
        }
    }
}

/// Whether the header section of `raw` has a field `name` (case-insensitive).
pub(crate) fn has_header_field(raw: &[u8], name: &str) -> bool {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(raw.len());
    raw[..end].split(|b| *b == b'\n').any(|line| {
        line.len() > name.len() && line[name.len()] == b':' && line[..name.len()].eq_ignore_ascii_case(name.as_bytes())
    })
}

/// `body` with `header` in front.
pub(crate) fn prepend(header: &str, body: Vec<u8>) -> Vec<u8> {
    let mut out = Vec::with_capacity(header.len() + body.len());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(&body);
    out
}

/// A raw message that passed admission, ready to be stored.
#[derive(Debug, Clone)]
pub struct AdmittedRaw {
    /// The new MessageId.
    pub id: MessageId,
    /// `MAIL FROM`.
    pub envelope_from: EmailAddress,
    /// The address of the header `From`.
    pub header_from: EmailAddress,
    /// The decoded subject (for status), at most 998 bytes.
    pub subject: String,
    /// Each recipient once; kind from the To/Cc headers, Bcc otherwise.
    pub recipients: Vec<AdmittedRecipient>,
    /// The MIME to store: as sent, with `Message-ID` / `Date` prepended when missing.
    pub body: Vec<u8>,
}

fn refuse(code: ErrorCode, message: impl Into<String>) -> CoreError {
    CoreError::refused(code, message)
}

fn content_error(message: impl Into<String>) -> CoreError {
    refuse(ErrorCode::InvalidParameterValueEmailContentIsWrong, message)
}

/// Parses an envelope address; `field` names it in the refusal.
fn parse_sender(field: &str, raw: &str) -> Result<EmailAddress, CoreError> {
    if raw.trim().is_empty() {
        return Err(refuse(
            ErrorCode::FailedOperationIncorrectSender,
            format!("{field}: a null sender (<>) cannot submit mail"),
        ));
    }
    EmailAddress::parse(raw).map_err(|e| {
        refuse(
            ErrorCode::FailedOperationIncorrectSender,
            format!("{field} {raw:?}: {e}"),
        )
    })
}

/// Where the header section ends: the index of the blank line's CRLF (body starts 2 bytes later), or the
/// whole message when it has no body.
fn header_end(data: &[u8]) -> usize {
    if data.starts_with(b"\r\n") {
        return 0;
    }
    data.windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(data.len(), |p| p + 2)
}

/// Line structure: CRLF only (a bare CR or LF is how header injection and SMTP smuggling start), no NUL
/// in the header, lines of at most 998 bytes; every header line a `name: value` or a continuation.
fn check_structure(data: &[u8], header_len: usize) -> Result<(), CoreError> {
    if header_len > MAX_HEADER_BYTES {
        return Err(content_error(format!(
            "the header section is {header_len} bytes; at most {MAX_HEADER_BYTES} are allowed"
        )));
    }
    check_lines(data, header_len)?;
    for (n, line) in data[..header_len].split(|b| *b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        if line[0] == b' ' || line[0] == b'\t' {
            if n == 0 {
                return Err(content_error("the message starts with a header continuation line"));
            }
            continue;
        }
        let name_ok = line
            .iter()
            .position(|b| *b == b':')
            .is_some_and(|c| c > 0 && line[..c].iter().all(|b| (33..=126).contains(b)));
        if !name_ok {
            return Err(content_error(format!("header line {} is not \"Name: value\"", n + 1)));
        }
    }
    Ok(())
}

/// The line ends and lengths of `data`, and NUL in its first `header_len` bytes: the first problem in byte
/// order. Jumps from line end to line end with `memchr` rather than looking at every byte: a 100 KB body has
/// about 1,300 lines and 100,000 bytes.
fn check_lines(data: &[u8], header_len: usize) -> Result<(), CoreError> {
    let nul = memchr::memchr(0, &data[..header_len.min(data.len())]);
    let mut ends = memchr::memchr2_iter(b'\r', b'\n', data);
    let mut line_no = 1usize;
    let mut start = 0usize;
    loop {
        // The LF of a CRLF was taken with its CR.
        let end = ends.by_ref().find(|&i| i >= start);
        let stop = end.unwrap_or(data.len());
        // A NUL is reported where it stands, unless the line was too long already there.
        if nul.is_some_and(|p| p >= start && p < stop && p <= start + MAX_LINE_BYTES) {
            return Err(content_error(format!("header line {line_no} contains NUL")));
        }
        if stop - start > MAX_LINE_BYTES {
            return Err(content_error(format!(
                "line {line_no} is longer than {MAX_LINE_BYTES} bytes"
            )));
        }
        let Some(i) = end else { return Ok(()) };
        if data[i] != b'\r' || data.get(i + 1) != Some(&b'\n') {
            return Err(content_error(format!("line {line_no} has a bare CR or LF")));
        }
        line_no += 1;
        start = i + 2;
    }
}

/// The values of every header named `name` (case-insensitive), raw.
fn header_count(header: &[u8], name: &str) -> usize {
    header
        .split(|b| *b == b'\n')
        .filter(|line| {
            line.len() > name.len()
                && line[name.len()] == b':'
                && line[..name.len()].eq_ignore_ascii_case(name.as_bytes())
        })
        .count()
}

pub(crate) fn rfc2822_date(now_ms: i64) -> String {
    let at = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(now_ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    at.format(&time::format_description::well_known::Rfc2822)
        .unwrap_or_else(|_| "Thu, 01 Jan 1970 00:00:00 +0000".to_string())
}

fn truncate_utf8(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

/// Runs every admission rule that applies to raw MIME and prepares the body to store. `now_ms` stamps a
/// missing `Date`; `top` gives the header fields that go on top and depend on the message's id (the
/// `Received:` trace field): they and the fields admission adds go in front of the body in one copy of it.
pub(crate) fn admit_raw(
    sub: RawSubmission,
    now_ms: i64,
    top: impl FnOnce(&MessageId) -> String,
) -> Result<AdmittedRaw, CoreError> {
    if sub.data.len() > MAX_MAIL_BYTES {
        return Err(refuse(
            ErrorCode::FailedOperationEmailContentToolarge,
            format!("the message is {} bytes; at most 4 MB are allowed", sub.data.len()),
        ));
    }
    let envelope_from = parse_sender("MAIL FROM", &sub.envelope_from)?;
    if sub.recipients.is_empty() {
        return Err(refuse(
            ErrorCode::MissingParameter,
            "at least one recipient is required",
        ));
    }
    if sub.recipients.len() > MAX_RAW_RECIPIENTS {
        return Err(refuse(
            ErrorCode::FailedOperationTooManyRecipients,
            format!(
                "{} recipients; at most {MAX_RAW_RECIPIENTS} are allowed",
                sub.recipients.len()
            ),
        ));
    }
    let mut seen = HashSet::new();
    let mut rcpts = Vec::with_capacity(sub.recipients.len());
    for raw in &sub.recipients {
        let a = EmailAddress::parse(raw).map_err(|e| {
            refuse(
                ErrorCode::InvalidParameterValueIllegalEmailAddress,
                format!("RCPT TO {raw:?}: {e}"),
            )
        })?;
        // SMTP clients may repeat a recipient; it still gets one copy.
        if seen.insert(a.normalized()) {
            rcpts.push(a);
        }
    }

    let hend = header_end(&sub.data);
    check_structure(&sub.data, hend)?;
    let header = &sub.data[..hend];
    if header_count(header, "from") != 1 {
        return Err(content_error("the message must have exactly one From header"));
    }
    // The parsed view borrows the data: keep it in this scope, the data moves into the body below.
    let (header_from, subject, recipients) = {
        // The header only: parsing the body too decoded every text part (~6 % of the server's CPU for 100 KB
        // mail) for nothing admission looks at.
        let parsed = mail_parser::MessageParser::default()
            .parse_headers(&sub.data)
            .ok_or_else(|| content_error("the message is not parseable MIME"))?;
        let from_list = parsed
            .from()
            .ok_or_else(|| content_error("the From header is not a parseable address"))?;
        let mut from_addrs = from_list.iter();
        let (Some(first), None) = (from_addrs.next(), from_addrs.next()) else {
            return Err(content_error("the From header must name exactly one address"));
        };
        let header_from = first
            .address()
            .ok_or_else(|| content_error("the From header has no address"))
            .and_then(|a| parse_sender("header From", a))?;

        let in_header = |list: Option<&mail_parser::Address<'_>>| -> HashSet<String> {
            list.map(|l| {
                l.iter()
                    .filter_map(|a| a.address())
                    .filter_map(|a| EmailAddress::parse(a).ok())
                    .map(|a| a.normalized())
                    .collect()
            })
            .unwrap_or_default()
        };
        let to = in_header(parsed.to());
        let cc = in_header(parsed.cc());
        let recipients: Vec<AdmittedRecipient> = rcpts
            .into_iter()
            .map(|address| {
                let key = address.normalized();
                let kind = if to.contains(&key) {
                    RecipientKind::To
                } else if cc.contains(&key) {
                    RecipientKind::Cc
                } else {
                    RecipientKind::Bcc
                };
                AdmittedRecipient { address, kind }
            })
            .collect();
        let subject = truncate_utf8(parsed.subject().unwrap_or(""), MAX_SUBJECT_BYTES);
        (header_from, subject, recipients)
    };

    let id = MessageId::generate();
    let mut prefix = top(&id);
    if header_count(header, "message-id") == 0 {
        prefix.push_str(&format!("Message-ID: {}\r\n", id.header_value(header_from.domain())));
    }
    if header_count(header, "date") == 0 {
        prefix.push_str(&format!("Date: {}\r\n", rfc2822_date(now_ms)));
    }
    let body = if prefix.is_empty() {
        sub.data
    } else {
        let mut b = Vec::with_capacity(prefix.len() + sub.data.len());
        b.extend_from_slice(prefix.as_bytes());
        b.extend_from_slice(&sub.data);
        b
    };
    Ok(AdmittedRaw {
        id,
        envelope_from,
        header_from,
        subject,
        recipients,
        body,
    })
}

/// Parses `smtp_trusted_networks`.
pub fn trusted_networks(list: &[String]) -> Result<Vec<ipnet::IpNet>, CoreError> {
    list.iter()
        .map(|raw| {
            let raw = raw.trim();
            raw.parse::<ipnet::IpNet>()
                .or_else(|_| raw.parse::<IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| {
                    CoreError::Config(format!(
                        "smtp_trusted_networks: {raw:?} is not a network like 127.0.0.0/8"
                    ))
                })
        })
        .collect()
}

/// SMTP submission: login, envelope checks and the raw enqueue.
pub struct Submission {
    pub(crate) env: Env,
    pub(crate) accounts: Arc<crate::accounts::Accounts>,
    pub(crate) sending: Arc<crate::sending::Sending>,
    pub(crate) identities: Arc<crate::identity::Identities>,
    pub(crate) inbound: Arc<crate::inbound::Inbound>,
    pub(crate) limits: Arc<crate::limits::Limits>,
    pub(crate) statistics: Arc<crate::stats::Statistics>,
    pub(crate) suppression: Arc<crate::suppression::Suppression>,
    pub(crate) screening: Arc<crate::screening::Screening>,
}

impl Submission {
    pub(crate) fn check_smtp_settings(&self) -> Result<(), CoreError> {
        let s = &self.env.settings;
        let nets = trusted_networks(&s.smtp_trusted_networks)?;
        if !nets.is_empty() && s.smtp_trusted_account.as_deref().is_none_or(str::is_empty) {
            return Err(CoreError::Config(
                "smtp_trusted_networks needs smtp_trusted_account (the account the mail is sent for)".into(),
            ));
        }
        Ok(())
    }

    pub(crate) async fn smtp_login(&self, username: &str, password: &str) -> Result<Option<Submitter>, CoreError> {
        let Some((account, _sender)) = self.identities.verify_smtp_credentials(username, password).await? else {
            return Ok(None);
        };
        let login = EmailAddress::parse(username).ok();
        Ok(login.map(|login| Submitter {
            account,
            login: Some(login),
        }))
    }

    pub(crate) async fn smtp_trusted_submitter(&self, client: IpAddr) -> Result<Option<Submitter>, CoreError> {
        let s = &self.env.settings;
        let Some(name) = s.smtp_trusted_account.as_deref().filter(|n| !n.is_empty()) else {
            return Ok(None);
        };
        // Compare IPv4-mapped IPv6 clients (dual-stack listeners) as the IPv4 address they are.
        let client = match client {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(client, IpAddr::V4),
            v4 => v4,
        };
        if !trusted_networks(&s.smtp_trusted_networks)?
            .iter()
            .any(|n| n.contains(&client))
        {
            return Ok(None);
        }
        let account = match self.accounts.credentials.trusted_account(name) {
            Some(account) => account,
            None => {
                let Some(account) = self.env.store.accounts().account_by_name(name).await? else {
                    tracing::warn!(
                        account = name,
                        "smtp_trusted_account does not exist; trusted client refused"
                    );
                    return Ok(None);
                };
                let account = AccountContext::from(&account);
                self.accounts.credentials.put_trusted_account(name, account.clone());
                account
            }
        };
        Ok(Some(Submitter { account, login: None }))
    }

    pub(crate) async fn check_submission_sender(
        &self,
        who: &Submitter,
        field: &str,
        address: &str,
    ) -> Result<String, CoreError> {
        let addr = parse_sender(field, address)?;
        if let Some(login) = &who.login
            && login.normalized() != addr.normalized()
        {
            return Err(refuse(
                ErrorCode::FailedOperationNotAuthenticatedSender,
                format!("{field} {addr} is not the address authenticated as ({login})"),
            ));
        }
        self.identities.check_sending_domain(&who.account, &addr).await
    }

    pub(crate) async fn sender_identity_allowed(
        &self,
        account: &AccountContext,
        address: &EmailAddress,
    ) -> Result<(), CoreError> {
        self.identities.check_sending_domain(account, address).await.map(|_| ())
    }

    pub(crate) async fn check_submission_recipient(
        &self,
        who: &Submitter,
        rcpt: &str,
    ) -> Result<EmailAddress, CoreError> {
        let _ = who;
        EmailAddress::parse(rcpt).map_err(|e| {
            refuse(
                ErrorCode::InvalidParameterValueIllegalEmailAddress,
                format!("RCPT TO {rcpt:?}: {e}"),
            )
        })
    }

    pub(crate) async fn submit_raw(&self, who: &Submitter, sub: RawSubmission) -> Result<MessageId, CoreError> {
        self.submit_raw_with(who, sub, None).await
    }

    /// An SES v2 `Content.Raw` send: [`Submission::submit_raw`] with the configuration set (which must exist and
    /// send), its tags and events, the contact-list opt-outs and one-click `List-Unsubscribe` of `extras`.
    pub(crate) async fn submit_raw_ses(
        &self,
        who: &Submitter,
        sub: RawSubmission,
        extras: &SesSendExtras,
    ) -> Result<SesSendOutcome, CoreError> {
        let set = match self.sending.ses_set_in_use(&who.account, extras).await? {
            Ok(set) => set,
            Err(outcome) => return Ok(outcome),
        };
        let id = self.submit_raw_with(who, sub, Some((extras, set.as_ref()))).await?;
        Ok(SesSendOutcome::Accepted(id))
    }

    async fn submit_raw_with(
        &self,
        who: &Submitter,
        mut sub: RawSubmission,
        ses: Option<(&SesSendExtras, Option<&SetInUse>)>,
    ) -> Result<MessageId, CoreError> {
        if who.account.suspended {
            return Err(refuse(
                ErrorCode::FailedOperationHighRejectionRate,
                "the account is suspended",
            ));
        }
        // The envelope sender's domain decides the return path (its return-path domain).
        let mail_from = self
            .check_submission_sender(who, "MAIL FROM", &sub.envelope_from)
            .await?;
        let now = self.env.clock.now_ms();
        let trigger = sub.trigger;
        let trace = sub.trace.take();
        let requiretls = sub.requiretls;
        // The trace header goes on top, outside the DKIM-signed header list (`SIGNED_HEADERS`).
        let mut mail = admit_raw(sub, now, |id| match &trace {
            Some(t) => {
                let s = &self.env.settings;
                received_header(Some(t), &s.helo_name, id, now, s.received_hide_client_ip)
            }
            None => String::new(),
        })?;
        self.check_submission_sender(who, "header From", mail.header_from.as_str())
            .await?;
        // The sender address's "TLS required" may be set on the header From (the address the API sends as) or on
        // the envelope sender: either one requires it.
        let tls_requirement = self
            .identities
            .tls_requirement(who.account.id, mail.header_from.as_str(), requiretls)
            .await?
            .max(
                self.identities
                    .tls_requirement(who.account.id, mail.envelope_from.as_str(), requiretls)
                    .await?,
            );
        let addresses: Vec<String> = mail.recipients.iter().map(|r| r.address.as_str().to_string()).collect();
        if let Err(refusal) = self.screening.screen_submission(&who.account, &mail).await {
            if let Some((extras, Some(set))) = ses {
                let refused = SesMail {
                    id: &mail.id,
                    source: mail.header_from.as_str(),
                    subject: &mail.subject,
                    recipients: &addresses,
                };
                self.sending
                    .ses_refused(&who.account, set, extras, &refused, &refusal)
                    .await;
            }
            return Err(refusal);
        }
        let mut recipients: Vec<NewRecipient> = mail.recipients.iter().map(AdmittedRecipient::queued).collect();
        self.suppression
            .screen_recipients(&who.account, mail.header_from.domain(), &mut recipients)
            .await?;
        if let Some((extras, _)) = ses {
            drop_opted_out(&mut recipients, &extras.opted_out);
        }
        let suppressed = recipients.iter().any(|r| !r.send_status.is_ok());
        // The sender address's AddressUnsubscribeConfig: List-Unsubscribe headers per recipient.
        let unsubscribe = self
            .statistics
            .default_unsubscribe(who.account.id, &mail.header_from)
            .await?;
        let personal = self.statistics.raw_unsubscribe_bodies(
            who.account.id,
            &mail.id,
            &mail.body,
            mail.header_from.domain(),
            unsubscribe,
            &recipients,
        );
        // SES list management: the one-click link of the contact-list topic, unless the mail has its own
        // List-Unsubscribe (the sender's choice is kept), per-recipient bodies carry one, or the sender signed the
        // mail itself (as SES, which does not add its links to mail signed before it).
        if let Some((extras, _)) = ses
            && let Some(list) = &extras.list
            && personal.is_empty()
            && let [only] = recipients.as_slice()
            && !crate::stats::has_list_unsubscribe(&mail.body)
            && !has_header_field(&mail.body, "DKIM-Signature")
            && let Some(url) = self
                .sending
                .topic_unsubscribe_url(&who.account, list, &only.address, &mail.id)
        {
            mail.body = prepend(&list_unsubscribe_headers(&url), std::mem::take(&mut mail.body));
        }
        // Written before the enqueue commits: the worker can only claim the message once both exist.
        self.env.store.queue().put_recipient_bodies(&mail.id, &personal).await?;
        let ses_mail = SesMail {
            id: &mail.id,
            source: mail.header_from.as_str(),
            subject: &mail.subject,
            recipients: &addresses,
        };
        if let Some((extras, Some(set))) = ses {
            self.sending
                .put_ses_message(&who.account, set, extras, &ses_mail)
                .await?;
        }
        let msg = NewMessage {
            template_id: 0,
            tls_requirement,
            id: mail.id.clone(),
            account_id: who.account.id,
            envelope_from: self.inbound.return_path_at(&mail.id, &mail_from),
            from_address: mail.header_from.as_str().to_string(),
            subject: mail.subject.clone(),
            lane: trigger.lane(),
            request_ms: now,
            not_before_ms: now,
            expires_ms: now.saturating_add(self.env.settings.max_delivery_seconds as i64 * 1000),
            body: std::mem::take(&mut mail.body),
            recipients,
        };
        let limits = self.limits.admission_limits(&who.account).await?;
        self.sending.enqueue_admitted(msg, limits, personal.is_empty()).await?;
        if let Some((_, Some(set))) = ses {
            self.sending.ses_accepted(&who.account, set, &ses_mail).await;
        }
        if suppressed {
            self.suppression.check_auto_suspend(&who.account).await?;
        }
        Ok(mail.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The line check as it was written first, byte by byte: what `check_lines` must answer.
    fn check_lines_bytewise(data: &[u8], header_len: usize) -> Result<(), String> {
        let mut line_no = 1usize;
        let mut line_len = 0usize;
        let mut i = 0;
        while i < data.len() {
            match data[i] {
                b'\r' if data.get(i + 1) == Some(&b'\n') => {
                    line_no += 1;
                    line_len = 0;
                    i += 2;
                    continue;
                }
                b'\r' | b'\n' => return Err(format!("line {line_no} has a bare CR or LF")),
                0 if i < header_len => return Err(format!("header line {line_no} contains NUL")),
                _ => {}
            }
            line_len += 1;
            if line_len > MAX_LINE_BYTES {
                return Err(format!("line {line_no} is longer than {MAX_LINE_BYTES} bytes"));
            }
            i += 1;
        }
        Ok(())
    }

    /// Text made of the pieces the line check cares about, long lines included.
    fn line_soup() -> impl Strategy<Value = Vec<u8>> {
        let piece = prop_oneof![
            Just(b"\r\n".to_vec()),
            Just(b"\r".to_vec()),
            Just(b"\n".to_vec()),
            Just(vec![0u8]),
            "[a-z ]{0,40}".prop_map(String::into_bytes),
            (990usize..1010).prop_map(|n| vec![b'x'; n]),
        ];
        proptest::collection::vec(piece, 0..40).prop_map(|parts| parts.concat())
    }

    proptest! {
        #[test]
        fn check_lines_answers_as_the_bytewise_check(data in line_soup(), header_frac in 0usize..=100) {
            let header_len = data.len() * header_frac / 100;
            let fast = check_lines(&data, header_len).map_err(|e| e.to_string());
            let slow = check_lines_bytewise(&data, header_len);
            match (&fast, &slow) {
                (Ok(()), Ok(())) => {}
                (Err(f), Err(s)) => prop_assert!(f.contains(s.as_str()), "{f} against {s}"),
                _ => prop_assert!(false, "{fast:?} against {slow:?}"),
            }
        }
    }

    fn sub(data: &str) -> RawSubmission {
        RawSubmission {
            envelope_from: "app@shop.example.com".into(),
            recipients: vec!["alice@example.org".into(), "bob@example.org".into()],
            data: data.as_bytes().to_vec(),
            trigger: TriggerType::Trigger,
            trace: None,
            requiretls: false,
        }
    }

    #[test]
    fn received_headers_name_the_client_unless_hidden() {
        let id = MessageId::generate();
        let t = SubmissionTrace {
            helo: "laptop (evil); x".into(),
            ip: Some("192.0.2.7".parse().unwrap()),
            tls: true,
            authenticated: true,
        };
        let h = received_header(Some(&t), "mx.mailpush.test", &id, 0, false);
        assert!(
            h.starts_with("Received: from laptopevilx ([192.0.2.7])\r\n\tby mx.mailpush.test"),
            "{h}"
        );
        assert!(h.contains(&format!("with ESMTPSA id {id};\r\n\t")), "{h}");
        assert!(h.ends_with("Thu, 01 Jan 1970 00:00:00 +0000\r\n"), "{h}");
        let hidden = received_header(Some(&t), "mx.mailpush.test", &id, 0, true);
        assert!(!hidden.contains("192.0.2.7") && !hidden.contains("laptop"), "{hidden}");
        assert!(
            hidden.starts_with("Received: by mx.mailpush.test (mailpush) with ESMTPSA"),
            "{hidden}"
        );
        // A trusted-network client (no AUTH) is always named.
        let trusted = SubmissionTrace {
            authenticated: false,
            tls: false,
            ..t
        };
        let h = received_header(Some(&trusted), "mx", &id, 0, true);
        assert!(h.contains("192.0.2.7") && h.contains("with ESMTP id"), "{h}");
        let v6 = SubmissionTrace {
            ip: Some("2001:db8::1".parse().unwrap()),
            ..trusted
        };
        assert!(received_header(Some(&v6), "mx", &id, 0, false).contains("([IPv6:2001:db8::1])"));
        let api = received_header(None, "mx", &id, 0, false);
        assert!(api.starts_with("Received: by mx (mailpush) with HTTP id"), "{api}");
        for h in [&h, &api, &hidden] {
            for line in h.split("\r\n").filter(|l| !l.is_empty()) {
                assert!(line.len() < 998, "{line}");
            }
        }
    }

    /// Admission without trace fields.
    fn admit(sub: RawSubmission, now_ms: i64) -> Result<AdmittedRaw, CoreError> {
        admit_raw(sub, now_ms, |_| String::new())
    }

    fn code(r: Result<AdmittedRaw, CoreError>) -> ErrorCode {
        match r {
            Err(e) => e.to_api().code,
            Ok(_) => panic!("expected a refusal"),
        }
    }

    const OK: &str = "From: Shop <app@shop.example.com>\r\nTo: alice@example.org\r\nSubject: Hi\r\n\r\nHello\r\n";

    #[test]
    fn header_fields_are_found_by_name() {
        let raw =
            b"From: a@example.org\r\nDKIM-Signature: v=1; a=rsa-sha256\r\nSubject: x\r\n\r\nDKIM-Signature: body\r\n";
        assert!(has_header_field(raw, "dkim-signature"));
        assert!(!has_header_field(raw, "List-Unsubscribe"));
        assert!(!has_header_field(
            b"Subject: x\r\n\r\nList-Unsubscribe: <x>\r\n",
            "List-Unsubscribe"
        ));
    }

    #[test]
    fn admits_and_adds_missing_headers() {
        let m = admit(sub(OK), 0).unwrap();
        assert_eq!(m.header_from.as_str(), "app@shop.example.com");
        assert_eq!(m.subject, "Hi");
        let kinds: Vec<_> = m.recipients.iter().map(|r| r.kind).collect();
        assert_eq!(kinds, [RecipientKind::To, RecipientKind::Bcc]);
        let body = String::from_utf8(m.body).unwrap();
        assert!(body.starts_with(&format!(
            "Message-ID: <{}@shop.example.com>\r\nDate: Thu, 01 Jan 1970",
            m.id
        )));
        assert!(body.ends_with(OK), "the MIME is otherwise kept as sent");
    }

    #[test]
    fn fields_on_top_precede_the_added_ones_in_one_body() {
        let m = admit_raw(sub(OK), 0, |id| format!("Received: by test; {id}\r\n")).unwrap();
        let body = String::from_utf8(m.body).unwrap();
        assert!(body.starts_with(&format!(
            "Received: by test; {}\r\nMessage-ID: <{}@shop.example.com>\r\nDate: ",
            m.id, m.id
        )));
        assert!(body.ends_with(OK));
    }

    #[test]
    fn keeps_present_message_id_and_date() {
        let data = format!("Message-ID: <x@y>\r\nDate: Mon, 2 Jan 2006 15:04:05 +0000\r\n{OK}");
        let m = admit(sub(&data), 0).unwrap();
        assert_eq!(m.body, data.as_bytes());
    }

    #[test]
    fn refusals_carry_their_codes() {
        let mut s = sub(OK);
        s.recipients = (0..51).map(|i| format!("u{i}@example.org")).collect();
        assert_eq!(code(admit(s, 0)), ErrorCode::FailedOperationTooManyRecipients);

        let mut s = sub(OK);
        s.data.resize(MAX_MAIL_BYTES + 1, b'a');
        assert_eq!(code(admit(s, 0)), ErrorCode::FailedOperationEmailContentToolarge);

        let mut s = sub(OK);
        s.envelope_from = String::new();
        assert_eq!(code(admit(s, 0)), ErrorCode::FailedOperationIncorrectSender);

        let bad = [
            "To: alice@example.org\r\nSubject: no from\r\n\r\nx\r\n",
            "From: a@shop.example.com\r\nFrom: b@shop.example.com\r\n\r\nx\r\n",
            "From: a@shop.example.com, b@shop.example.com\r\n\r\nx\r\n",
            "From: a@shop.example.com\nBcc: injected@example.org\r\n\r\nx\r\n",
            "From: a@shop.example.com\r\nX: a\rBcc: injected@example.org\r\n\r\nx\r\n",
            "From: a@shop.example.com\r\nnot a header\r\n\r\nx\r\n",
            " continued\r\nFrom: a@shop.example.com\r\n\r\nx\r\n",
        ];
        for data in bad {
            assert_eq!(
                code(admit(sub(data), 0)),
                ErrorCode::InvalidParameterValueEmailContentIsWrong,
                "{data:?}"
            );
        }
        let long = format!("{OK}{}\r\n", "a".repeat(999));
        assert_eq!(
            code(admit(sub(&long), 0)),
            ErrorCode::InvalidParameterValueEmailContentIsWrong
        );
        let big_header = format!("X-Pad: {}\r\n", "a".repeat(900)).repeat(200) + OK;
        assert_eq!(
            code(admit(sub(&big_header), 0)),
            ErrorCode::InvalidParameterValueEmailContentIsWrong
        );
    }

    #[test]
    fn trusted_network_parsing() {
        let nets = trusted_networks(&["127.0.0.0/8".into(), "::1".into()]).unwrap();
        assert!(nets[0].contains(&"127.1.2.3".parse::<IpAddr>().unwrap()));
        assert!(nets[1].contains(&"::1".parse::<IpAddr>().unwrap()));
        assert!(trusted_networks(&["localhost".into()]).is_err());
    }
}
