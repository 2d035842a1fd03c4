//! One SMTP connection: the ESMTP state machine over a plain or TLS stream.
//!
//! Replies are buffered and flushed only before the session waits for input, which is what PIPELINING
//! needs. Every read has the idle timeout (shorter while the server is under stress); every error reply counts
//! towards `max_errors`.

use crate::backend::{Envelope, Principal, SubmissionBackend};
use crate::data::{BodyMode, BodyProblem, BodyReader};
use crate::reply::Reply;
use crate::{Shared, Stream};
use base64::Engine;
use smtp_proto::request::receiver::MAX_LINE_LENGTH;
use smtp_proto::{AUTH_LOGIN, AUTH_PLAIN, Error as ProtoError, Request};
use std::collections::HashSet;
use std::io;
use std::net::SocketAddr;
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Longest command line, CRLF included (RFC 5321 allows 512; room for SMTPUTF8 and AUTH lines).
pub const MAX_COMMAND_LINE: usize = 1000;
/// Longest body line without CRLF (RFC 5322 §2.1.1).
pub const MAX_BODY_LINE: usize = 998;
const READ_CHUNK: usize = 16 * 1024;
const _: () = assert!(MAX_COMMAND_LINE < MAX_LINE_LENGTH);

/// Why a session ends.
#[derive(Debug)]
pub(crate) enum End {
    /// The client closed the connection or an I/O error happened.
    Closed,
    /// The client was silent for too long (`421` was sent).
    Timeout,
    /// The session decided to close (after `221` or `421`).
    Done,
}

enum Line {
    Text(Vec<u8>),
    TooLong,
}

struct Transaction {
    envelope: Envelope,
    rcpt_keys: HashSet<String>,
    /// BDAT chunks so far.
    chunks: Option<BodyReader>,
    /// Once a BDAT chunk is refused, later chunks of the transaction get the same reply.
    chunk_failure: Option<Reply>,
}

pub(crate) struct Session<'a, B: SubmissionBackend> {
    shared: &'a Shared<B>,
    stream: Stream,
    peer: SocketAddr,
    rbuf: Vec<u8>,
    rpos: usize,
    discarding: bool,
    out: Vec<u8>,
    helo: Option<String>,
    /// Set by AUTH.
    authenticated: Option<Principal>,
    /// The trusted-network lookup, done once per connection.
    trusted: Option<Option<Principal>>,
    tx: Option<Transaction>,
    errors: u32,
}

fn reply(code: u16, enhanced: &'static str, text: impl Into<String>) -> Reply {
    Reply::new(code, enhanced, text)
}

impl<'a, B: SubmissionBackend> Session<'a, B> {
    pub(crate) fn new(shared: &'a Shared<B>, stream: Stream, peer: SocketAddr) -> Self {
        Session {
            shared,
            stream,
            peer,
            rbuf: Vec::with_capacity(READ_CHUNK),
            rpos: 0,
            discarding: false,
            out: Vec::with_capacity(1024),
            helo: None,
            authenticated: None,
            trusted: None,
            tx: None,
            errors: 0,
        }
    }

    fn is_tls(&self) -> bool {
        matches!(self.stream, Stream::Tls(_))
    }

    /// The session facts a transaction carries (see [`crate::backend::ClientTrace`]).
    fn client_trace(&self, from: &smtp_proto::MailFrom<String>) -> crate::backend::ClientTrace {
        crate::backend::ClientTrace {
            helo: self.helo.clone().unwrap_or_default(),
            ip: Some(self.peer.ip()),
            tls: self.is_tls(),
            authenticated: self.authenticated.is_some(),
            smtputf8: from.flags & smtp_proto::MAIL_SMTPUTF8 != 0,
            requiretls: from.flags & smtp_proto::MAIL_REQUIRETLS != 0,
        }
    }

    /// REQUIRETLS (RFC 8689) is offered on submission inside TLS only: mail that must travel encrypted is not
    /// accepted in plain text in the first place.
    fn requiretls_offered(&self) -> bool {
        !self.shared.config.inbound && self.is_tls()
    }

    fn push(&mut self, r: &Reply) {
        self.out.extend_from_slice(r.to_wire().as_bytes());
    }

    /// Queues an error reply; `Err(Done)` once the client has made too many errors (after `421`).
    fn error(&mut self, r: Reply) -> Result<(), End> {
        self.push(&r);
        self.errors += 1;
        if self.errors >= self.shared.config.max_errors {
            self.push(&reply(421, "4.7.0", "Too many errors; closing connection"));
            return Err(End::Done);
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), End> {
        if self.out.is_empty() {
            return Ok(());
        }
        let out = std::mem::take(&mut self.out);
        let write = async {
            self.stream.write_all(&out).await?;
            self.stream.flush().await
        };
        match tokio::time::timeout(self.shared.timeout(), write).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(End::Closed),
            Err(_) => Err(End::Timeout),
        }
    }

    /// Flushes pending replies, then reads more input.
    async fn fill(&mut self) -> Result<(), End> {
        self.flush().await?;
        if self.rpos > 0 {
            self.rbuf.drain(..self.rpos);
            self.rpos = 0;
        }
        // Read into spare capacity: zeroing a chunk before every read cost a 16 KB memset per command line.
        self.rbuf.reserve(READ_CHUNK);
        match self.timed_read().await {
            Ok(Ok(0)) | Ok(Err(_)) => Err(End::Closed),
            Ok(Ok(_)) => Ok(()),
            Err(_) => {
                self.push(&reply(421, "4.4.2", "Timeout; closing connection"));
                let _ = self.flush().await;
                Err(End::Timeout)
            }
        }
    }

    /// Appends what the client sent to `rbuf` within the idle timeout. The wait is cut into slices of at most
    /// [`crate::STRESS_TIMEOUT`] and the timeout looked up again after each, so a client already waiting
    /// when the server comes under stress gets the shorter one too (reads are cancel-safe).
    async fn timed_read(&mut self) -> Result<io::Result<usize>, tokio::time::error::Elapsed> {
        let started = tokio::time::Instant::now();
        loop {
            let left = self.shared.timeout().saturating_sub(started.elapsed());
            let slice = left.min(crate::STRESS_TIMEOUT);
            match tokio::time::timeout(slice, self.stream.read_buf(&mut self.rbuf)).await {
                Ok(done) => return Ok(done),
                Err(elapsed) if slice == left => return Err(elapsed),
                Err(_) => {}
            }
        }
    }

    async fn read_line(&mut self) -> Result<Line, End> {
        loop {
            let pending = &self.rbuf[self.rpos..];
            if let Some(nl) = pending.iter().position(|b| *b == b'\n') {
                let line = pending[..=nl].to_vec();
                self.rpos += nl + 1;
                if std::mem::take(&mut self.discarding) || line.len() > MAX_COMMAND_LINE {
                    return Ok(Line::TooLong);
                }
                return Ok(Line::Text(line));
            }
            if pending.len() > MAX_COMMAND_LINE {
                // Drop what we have and skip to the end of the line; memory stays bounded.
                self.rpos = self.rbuf.len();
                self.discarding = true;
            }
            self.fill().await?;
        }
    }

    /// Runs the session to its end.
    pub(crate) async fn run(mut self) -> End {
        // No enhanced status code in the greeting: RFC 2034 uses them only once EHLO has negotiated them.
        let greeting = format!("220 {} ESMTP mailpush\r\n", self.shared.config.hostname);
        self.out.extend_from_slice(greeting.as_bytes());
        let end = loop {
            let line = match self.read_line().await {
                Ok(l) => l,
                Err(e) => break e,
            };
            let step = match line {
                Line::TooLong => self.error(reply(500, "5.5.2", "Line too long")),
                Line::Text(l) => self.command(&l).await,
            };
            if let Err(e) = step {
                break e;
            }
        };
        let _ = self.flush().await;
        let _ = self.stream.shutdown().await;
        end
    }

    async fn command(&mut self, line: &[u8]) -> Result<(), End> {
        let parsed = Request::parse(&mut line.iter()).map(Request::into_owned);
        let req = match parsed {
            Ok(r) => r,
            Err(e) => {
                let r = match e {
                    ProtoError::UnknownCommand => reply(500, "5.5.1", "Unrecognized command"),
                    ProtoError::InvalidSenderAddress => reply(501, "5.1.7", "Invalid sender address"),
                    ProtoError::InvalidRecipientAddress => reply(501, "5.1.3", "Invalid recipient address"),
                    ProtoError::SyntaxError { syntax } => reply(501, "5.5.4", format!("Syntax: {syntax}")),
                    ProtoError::InvalidParameter { param } => reply(501, "5.5.4", format!("Invalid parameter {param}")),
                    ProtoError::UnsupportedParameter { param } => {
                        reply(504, "5.5.4", format!("Unsupported parameter {param}"))
                    }
                    _ => reply(500, "5.5.2", "Syntax error"),
                };
                return self.error(r);
            }
        };
        match req {
            Request::Ehlo { host } => self.ehlo(host, true),
            Request::Helo { host } => self.ehlo(host, false),
            Request::StartTls => self.starttls().await,
            Request::Auth {
                mechanism,
                initial_response,
            } => self.auth(mechanism, initial_response).await,
            Request::Mail { from } => self.mail(from).await,
            Request::Rcpt { to } => self.rcpt(to.address).await,
            Request::Data => self.data().await,
            Request::Bdat { chunk_size, is_last } => self.bdat(chunk_size, is_last).await,
            Request::Rset => {
                self.tx = None;
                self.push(&reply(250, "2.0.0", "Ok"));
                Ok(())
            }
            Request::Noop { .. } => {
                self.push(&reply(250, "2.0.0", "Ok"));
                Ok(())
            }
            Request::Quit => {
                self.push(&reply(221, "2.0.0", "Bye"));
                Err(End::Done)
            }
            Request::Vrfy { .. } => {
                self.push(&reply(252, "2.5.0", "Cannot VRFY user"));
                Ok(())
            }
            Request::Help { .. } => {
                self.push(&reply(214, "2.0.0", "See RFC 5321"));
                Ok(())
            }
            Request::Expn { .. }
            | Request::Etrn { .. }
            | Request::Atrn { .. }
            | Request::Burl { .. }
            | Request::Lhlo { .. } => self.error(reply(502, "5.5.1", "Command not implemented")),
        }
    }

    fn auth_allowed(&self) -> bool {
        !self.shared.config.inbound
            && (self.is_tls() || (self.shared.config.allow_plaintext_auth_loopback && self.peer.ip().is_loopback()))
    }

    fn ehlo(&mut self, host: String, extended: bool) -> Result<(), End> {
        self.helo = Some(host);
        self.tx = None;
        let name = &self.shared.config.hostname;
        if !extended {
            self.out.extend_from_slice(format!("250 {name} Hello\r\n").as_bytes());
            return Ok(());
        }
        let mut lines = vec![
            format!("{name} Hello"),
            "PIPELINING".to_string(),
            format!("SIZE {}", self.shared.config.max_message_bytes),
            "8BITMIME".to_string(),
            "SMTPUTF8".to_string(),
            "ENHANCEDSTATUSCODES".to_string(),
            "CHUNKING".to_string(),
        ];
        if !self.is_tls() && self.shared.config.tls.is_some() {
            lines.push("STARTTLS".to_string());
        }
        if self.auth_allowed() {
            lines.push("AUTH PLAIN LOGIN".to_string());
        }
        if self.requiretls_offered() {
            lines.push("REQUIRETLS".to_string());
        }
        let last = lines.len() - 1;
        for (i, l) in lines.iter().enumerate() {
            let sep = if i == last { ' ' } else { '-' };
            self.out.extend_from_slice(format!("250{sep}{l}\r\n").as_bytes());
        }
        Ok(())
    }

    async fn starttls(&mut self) -> Result<(), End> {
        if self.is_tls() {
            return self.error(reply(503, "5.5.1", "TLS already active"));
        }
        let Some(acceptor) = self.shared.config.tls.clone() else {
            return self.error(reply(502, "5.5.1", "TLS not available"));
        };
        self.push(&reply(220, "2.0.0", "Ready to start TLS"));
        self.flush().await?;
        // Anything pipelined after STARTTLS was sent in clear text: it must not be executed inside TLS
        // (CVE-2011-0411 family).
        self.rbuf.clear();
        self.rpos = 0;
        self.discarding = false;
        let Stream::Plain(tcp) = std::mem::replace(&mut self.stream, Stream::Closed) else {
            return Err(End::Closed);
        };
        match tokio::time::timeout(self.shared.timeout(), acceptor.accept(tcp)).await {
            Ok(Ok(tls)) => {
                self.stream = Stream::Tls(Box::new(tls));
                // RFC 3207 §4.2: forget everything learnt before TLS.
                self.helo = None;
                self.authenticated = None;
                self.tx = None;
                Ok(())
            }
            Ok(Err(e)) => {
                tracing::debug!(peer = %self.peer, error = %e, "smtp: TLS handshake failed");
                Err(End::Closed)
            }
            Err(_) => Err(End::Timeout),
        }
    }

    /// Reads one AUTH continuation line (base64), `None` when the client cancelled with `*`.
    async fn auth_line(&mut self, challenge: &str) -> Result<Option<Vec<u8>>, Result<Reply, End>> {
        self.out.extend_from_slice(format!("334 {challenge}\r\n").as_bytes());
        let line = match self.read_line().await.map_err(Err)? {
            Line::Text(l) => l,
            Line::TooLong => return Err(Ok(reply(500, "5.5.2", "Line too long"))),
        };
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches(['\r', '\n']);
        if text == "*" {
            return Ok(None);
        }
        decode_b64(text).map(Some).map_err(Ok)
    }

    async fn auth(&mut self, mechanism: u64, initial: String) -> Result<(), End> {
        if self.shared.config.inbound {
            return self.error(reply(502, "5.5.1", "AUTH not available on this MX"));
        }
        if self.helo.is_none() {
            return self.error(reply(503, "5.5.1", "Send EHLO first"));
        }
        if self.authenticated.is_some() {
            return self.error(reply(503, "5.5.1", "Already authenticated"));
        }
        if self.tx.is_some() {
            return self.error(reply(503, "5.5.1", "AUTH not allowed during a mail transaction"));
        }
        if !self.auth_allowed() {
            return self.error(reply(530, "5.7.0", "Must issue a STARTTLS command first"));
        }
        let initial = initial.trim();
        let creds = if mechanism == AUTH_PLAIN {
            let raw = if initial == "=" {
                Vec::new()
            } else {
                let Some(raw) = self.auth_response(initial, "").await? else {
                    return Ok(());
                };
                raw
            };
            // authzid NUL authcid NUL password; acting for another identity is not supported.
            let parts: Vec<&[u8]> = raw.split(|b| *b == 0).collect();
            match parts.as_slice() {
                [authz, user, pass] if authz.is_empty() || authz == user => (user.to_vec(), pass.to_vec()),
                _ => return self.error(reply(501, "5.5.2", "Malformed AUTH PLAIN response")),
            }
        } else if mechanism == AUTH_LOGIN {
            let Some(user) = self.auth_response(initial, "VXNlcm5hbWU6").await? else {
                return Ok(());
            };
            let Some(pass) = self.auth_response("", "UGFzc3dvcmQ6").await? else {
                return Ok(());
            };
            (user, pass)
        } else {
            return self.error(reply(504, "5.5.4", "Unrecognized authentication mechanism"));
        };
        let (Ok(user), Ok(pass)) = (String::from_utf8(creds.0), String::from_utf8(creds.1)) else {
            return self.error(reply(501, "5.5.2", "Credentials must be UTF-8"));
        };
        let ip = self.peer.ip();
        let now = Instant::now();
        let throttle = &self.shared.auth;
        if throttle.is_blocked(ip, &user, now) {
            // This address only (for this username, or for all once it sprays): never the username elsewhere.
            tracing::warn!(peer = %self.peer, user, "smtp: AUTH throttled after repeated failures");
            return self.error(reply(
                454,
                "4.7.0",
                "Too many failed authentication attempts; try again later",
            ));
        }
        match self.shared.backend.authenticate(&user, &pass).await {
            Ok(Some(p)) => {
                tracing::info!(peer = %self.peer, user, account = %p.account.name, "smtp: authenticated");
                self.authenticated = Some(p);
                self.push(&reply(235, "2.7.0", "Authentication successful"));
                Ok(())
            }
            Ok(None) => {
                mailpush_telemetry::smtp_auth_failure();
                let wait = throttle.record_failure(ip, &user, Instant::now());
                tracing::info!(peer = %self.peer, user, wait_ms = wait.as_millis() as u64, "smtp: AUTH failed");
                // Slows guessing down without refusing anyone else: the delay grows with this IP's failures.
                tokio::time::sleep(wait).await;
                self.error(reply(535, "5.7.8", "Authentication credentials invalid"))
            }
            Err(r) => {
                self.push(&r);
                Ok(())
            }
        }
    }

    /// The principal this session submits for: AUTH, else a trusted network, else none.
    async fn principal(&mut self) -> Result<Option<Principal>, Reply> {
        if let Some(p) = &self.authenticated {
            return Ok(Some(p.clone()));
        }
        if self.trusted.is_none() {
            let p = self.shared.backend.trusted_principal(self.peer.ip()).await?;
            self.trusted = Some(p);
        }
        Ok(self.trusted.clone().flatten())
    }

    /// An AUTH response: the client's initial response when it sent one (base64), else its answer to the
    /// challenge `prompt`. `None` once the client has its reply (cancelled, or not base64).
    async fn auth_response(&mut self, initial: &str, prompt: &str) -> Result<Option<Vec<u8>>, End> {
        let refusal = if initial.is_empty() {
            match self.auth_line(prompt).await {
                Ok(Some(raw)) => return Ok(Some(raw)),
                Ok(None) => reply(501, "5.7.0", "Authentication cancelled"),
                Err(Ok(r)) => r,
                Err(Err(e)) => return Err(e),
            }
        } else {
            match decode_b64(initial) {
                Ok(raw) => return Ok(Some(raw)),
                Err(r) => r,
            }
        };
        self.error(refusal).map(|()| None)
    }

    /// The principal mail is submitted for; `None` when there is none, once the client has its reply (`530`, or
    /// the backend's failure).
    async fn submitter(&mut self) -> Result<Option<Principal>, End> {
        match self.principal().await {
            Ok(Some(p)) => Ok(Some(p)),
            Ok(None) => self
                .error(reply(530, "5.7.0", "Authentication required"))
                .map(|()| None),
            Err(r) => {
                self.push(&r);
                Ok(None)
            }
        }
    }

    /// Whether a `MAIL FROM` declares a size over the limit; the client then has its `552`.
    fn oversize(&mut self, size: usize) -> bool {
        let max = self.shared.config.max_message_bytes;
        if size > max {
            self.push(&reply(
                552,
                "5.3.4",
                format!("Message size exceeds the maximum of {max} bytes"),
            ));
        }
        size > max
    }

    /// Opens the transaction of an accepted `MAIL FROM` (`250`).
    fn open_transaction(&mut self, from: smtp_proto::MailFrom<String>) {
        self.tx = Some(Transaction {
            envelope: Envelope {
                client: self.client_trace(&from),
                mail_from: from.address,
                rcpt_to: Vec::new(),
            },
            rcpt_keys: HashSet::new(),
            chunks: None,
            chunk_failure: None,
        });
        self.push(&reply(250, "2.1.0", "Ok"));
    }

    async fn mail(&mut self, from: smtp_proto::MailFrom<String>) -> Result<(), End> {
        if self.helo.is_none() {
            return self.error(reply(503, "5.5.1", "Send EHLO first"));
        }
        if self.tx.is_some() {
            return self.error(reply(503, "5.5.1", "Nested MAIL command"));
        }
        if from.flags & smtp_proto::MAIL_REQUIRETLS != 0 && !self.requiretls_offered() {
            return self.error(if self.shared.config.inbound {
                reply(555, "5.5.4", "REQUIRETLS is not supported here")
            } else {
                reply(530, "5.7.10", "REQUIRETLS needs TLS: send STARTTLS first")
            });
        }
        if self.shared.config.inbound {
            return self.inbound_mail(from);
        }
        let Some(p) = self.submitter().await? else {
            return Ok(());
        };
        if self.oversize(from.size) {
            return Ok(());
        }
        if let Err(r) = self.shared.backend.check_sender(&p, &from.address).await {
            self.push(&r);
            return Ok(());
        }
        self.open_transaction(from);
        Ok(())
    }

    async fn rcpt(&mut self, to: String) -> Result<(), End> {
        let max = self.shared.config.max_recipients;
        let Some(tx) = &self.tx else {
            return self.error(reply(503, "5.5.1", "Need MAIL command"));
        };
        let key = to.to_lowercase();
        if tx.rcpt_keys.contains(&key) {
            self.push(&reply(250, "2.1.5", "Ok (duplicate recipient)"));
            return Ok(());
        }
        if tx.envelope.rcpt_to.len() >= max {
            self.push(&reply(
                452,
                "4.5.3",
                format!("Too many recipients; at most {max} per message"),
            ));
            return Ok(());
        }
        if self.shared.config.inbound {
            return self.inbound_rcpt(key, to).await;
        }
        let Some(p) = self.submitter().await? else {
            return Ok(());
        };
        if let Err(r) = self.shared.backend.check_recipient(&p, &to).await {
            self.push(&r);
            return Ok(());
        }
        if let Some(tx) = &mut self.tx {
            tx.rcpt_keys.insert(key);
            tx.envelope.rcpt_to.push(to);
        }
        self.push(&reply(250, "2.1.5", "Ok"));
        Ok(())
    }

    /// Inbound MX `MAIL FROM`: any sender, the null one included (DSNs are sent from `<>`).
    fn inbound_mail(&mut self, from: smtp_proto::MailFrom<String>) -> Result<(), End> {
        if self.oversize(from.size) {
            return Ok(());
        }
        self.open_transaction(from);
        Ok(())
    }

    /// Inbound MX `RCPT TO`: only mailpush's own feedback addresses; anything else is refused (never a relay).
    async fn inbound_rcpt(&mut self, key: String, to: String) -> Result<(), End> {
        match self.shared.backend.inbound_recipient(&to).await {
            Ok(true) => {
                if let Some(tx) = &mut self.tx {
                    tx.rcpt_keys.insert(key);
                    tx.envelope.rcpt_to.push(to);
                }
                self.push(&reply(250, "2.1.5", "Ok"));
                Ok(())
            }
            Ok(false) => {
                tracing::info!(peer = %self.peer, rcpt = to, "smtp inbound: recipient refused");
                self.error(reply(550, "5.1.1", "No such recipient here; this MX accepts no relay"))
            }
            Err(r) => {
                self.push(&r);
                Ok(())
            }
        }
    }

    fn body_reader(&self, mode: BodyMode) -> BodyReader {
        BodyReader::new(mode, self.shared.config.max_message_bytes, MAX_BODY_LINE)
    }

    fn problem_reply(&self, p: BodyProblem) -> Reply {
        match p {
            BodyProblem::TooBig => reply(
                552,
                "5.3.4",
                format!(
                    "Message too big; at most {} bytes are accepted",
                    self.shared.config.max_message_bytes
                ),
            ),
            BodyProblem::LineTooLong => reply(
                554,
                "5.6.0",
                format!("Message has a line longer than {MAX_BODY_LINE} octets"),
            ),
        }
    }

    async fn data(&mut self) -> Result<(), End> {
        match &self.tx {
            None => return self.error(reply(503, "5.5.1", "Need MAIL command")),
            Some(tx) if tx.chunks.is_some() || tx.chunk_failure.is_some() => {
                return self.error(reply(503, "5.5.1", "DATA cannot follow BDAT"));
            }
            Some(tx) if tx.envelope.rcpt_to.is_empty() => {
                return self.error(reply(554, "5.5.1", "No valid recipients"));
            }
            Some(_) => {}
        }
        self.push(&reply(354, "2.0.0", "End data with <CR><LF>.<CR><LF>"));
        let mut reader = self.body_reader(BodyMode::Dot);
        loop {
            if let Some(n) = reader.feed(&self.rbuf[self.rpos..]) {
                self.rpos += n;
                break;
            }
            self.rpos = self.rbuf.len();
            self.fill().await?;
        }
        if reader.normalised_line_ends() > 0 {
            tracing::info!(peer = %self.peer, count = reader.normalised_line_ends(), "smtp: bare CR/LF normalised in DATA");
        }
        let result = reader.finish();
        self.finish_message(result).await;
        Ok(())
    }

    async fn finish_message(&mut self, body: Result<Vec<u8>, BodyProblem>) {
        let Some(tx) = self.tx.take() else { return };
        let data = match body {
            Ok(d) => d,
            Err(p) => {
                let r = self.problem_reply(p);
                self.push(&r);
                return;
            }
        };
        if self.shared.config.inbound {
            match self.shared.backend.receive_inbound(&tx.envelope, data).await {
                Ok(text) => {
                    tracing::info!(peer = %self.peer, from = tx.envelope.mail_from, text, "smtp inbound: received");
                    self.push(&reply(250, "2.0.0", text));
                }
                Err(r) => self.push(&r),
            }
            return;
        }
        let p = match self.principal().await {
            Ok(Some(p)) => p,
            Ok(None) => {
                self.push(&reply(530, "5.7.0", "Authentication required"));
                return;
            }
            Err(r) => {
                self.push(&r);
                return;
            }
        };
        match self.shared.backend.submit(&p, &tx.envelope, data).await {
            Ok(id) => {
                tracing::info!(peer = %self.peer, message_id = %id, rcpts = tx.envelope.rcpt_to.len(), "smtp: queued");
                self.push(&reply(250, "2.0.0", format!("Ok: queued as {id}")));
            }
            Err(r) => self.push(&r),
        }
    }

    async fn bdat(&mut self, size: usize, last: bool) -> Result<(), End> {
        // The chunk is read whatever happens: its bytes must never be taken for commands.
        let refusal = match &self.tx {
            None => Some(reply(503, "5.5.1", "Need MAIL command")),
            Some(tx) if tx.envelope.rcpt_to.is_empty() => Some(reply(554, "5.5.1", "No valid recipients")),
            Some(tx) => tx.chunk_failure.clone(),
        };
        let mut reader = match (&refusal, self.tx.as_mut()) {
            (None, Some(tx)) => Some(tx.chunks.take().unwrap_or_else(|| {
                BodyReader::new(BodyMode::Chunked, self.shared.config.max_message_bytes, MAX_BODY_LINE)
            })),
            _ => None,
        };
        let mut left = size;
        while left > 0 {
            if self.rpos == self.rbuf.len() {
                self.fill().await?;
            }
            let take = left.min(self.rbuf.len() - self.rpos);
            if let Some(r) = reader.as_mut() {
                r.feed(&self.rbuf[self.rpos..self.rpos + take]);
            }
            self.rpos += take;
            left -= take;
        }
        if let Some(r) = refusal {
            if self.tx.is_some() && last {
                self.tx = None;
            }
            return self.error(r);
        }
        let Some(reader) = reader else { return Ok(()) };
        if last {
            let result = reader.finish();
            self.finish_message(result).await;
            return Ok(());
        }
        match reader.problem() {
            Some(p) => {
                let r = self.problem_reply(p);
                if let Some(tx) = &mut self.tx {
                    tx.chunk_failure = Some(r.clone());
                }
                self.push(&r);
            }
            None => {
                if let Some(tx) = &mut self.tx {
                    tx.chunks = Some(reader);
                }
                self.push(&reply(250, "2.0.0", format!("{size} octets received")));
            }
        }
        Ok(())
    }
}

fn decode_b64(text: &str) -> Result<Vec<u8>, Reply> {
    base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|_| reply(501, "5.5.2", "Invalid base64"))
}
