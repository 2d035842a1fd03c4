//! A recording sink MX: a real ESMTP server on loopback that stores what it accepts and answers
//! each recipient the way a test scripted it.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;

use crate::TestkitError;

/// The SIZE the sink advertises and enforces unless [`SinkConfig::max_message_size`] says otherwise.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 52_428_800;

/// RFC 5321 §4.5.3.1.4 allows 512 octets per command line; leave room for long parameters.
const MAX_COMMAND_LINE: usize = 4096;
/// A client that keeps sending garbage is cut off instead of looping forever.
const MAX_ERRORS: u32 = 50;
/// Large enough that a pipelined batch or a body chunk rarely needs two reads.
const READ_BUFFER: usize = 64 * 1024;

/// How a [`SinkMx`] listens and behaves.
#[derive(Debug, Clone)]
pub struct SinkConfig {
    /// Address to listen on; port 0 picks a free port. Default `127.0.0.1:0`.
    pub bind: SocketAddr,
    /// Advertise and accept STARTTLS with a freshly generated certificate. Default `false`.
    pub starttls: bool,
    /// Name used in the greeting, the EHLO reply and the certificate. Default `sink.mailpush.test`.
    pub hostname: String,
    /// Keep every accepted message (envelope and body). When `false` only the counters advance
    /// (and [`SinkMx::rcpt_attempts`] only for scripted addresses), so a benchmark can push
    /// millions of messages without the sink growing. Default `true`.
    pub record_bodies: bool,
    /// Advertised SIZE; larger messages get `552 5.3.4`. Default [`DEFAULT_MAX_MESSAGE_SIZE`].
    pub max_message_size: usize,
    /// A connection idle this long gets `421 4.4.2` and is closed. Default 5 minutes.
    pub idle_timeout: Duration,
    /// Connections served at once at most; one more gets `421 4.7.0 Too many connections` at the greeting and
    /// is closed (as a receiver limiting a sender does). Default `None` (no limit).
    pub max_connections: Option<usize>,
    /// Username and password the sink requires (`AUTH PLAIN` / `AUTH LOGIN` advertised, `530 5.7.0` to
    /// `MAIL` before AUTH, `535 5.7.8` to wrong credentials), as a relay host does. Default `None`: no AUTH.
    pub auth: Option<(String, String)>,
    /// Advertise `REQUIRETLS` (RFC 8689) inside STARTTLS and accept the MAIL FROM parameter; without it a
    /// `REQUIRETLS` parameter gets `555 5.5.4`, as a server that does not know it answers. Default `false`.
    pub requiretls: bool,
    /// The certificate chain STARTTLS presents (with `starttls`). Default `None`: a fresh CA and a leaf it issued
    /// for `hostname`, localhost and 127.0.0.1.
    pub certificate: Option<SinkCertificate>,
}

/// A certificate chain and its key for the sink's STARTTLS ([`SinkConfig::certificate`]), e.g. to present the
/// certificate a DANE or MTA-STS test publishes, or an expired one.
#[derive(Clone)]
pub struct SinkCertificate {
    /// DER certificates: the sink's own first, then the chain (its issuer last).
    pub chain: Vec<Vec<u8>>,
    /// The private key of the first certificate, PKCS#8 DER.
    pub key_pkcs8: Vec<u8>,
}

impl std::fmt::Debug for SinkCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SinkCertificate")
            .field("chain", &self.chain.len())
            .finish_non_exhaustive()
    }
}

impl SinkCertificate {
    /// A fresh CA and a leaf it issued for `names` (DNS names or IP addresses), valid now, or when `expired` only
    /// during 2020: `chain` is `[leaf, ca]`.
    pub fn issued(names: &[&str], expired: bool) -> Result<SinkCertificate, TestkitError> {
        use rcgen::{
            BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
            KeyUsagePurpose, date_time_ymd,
        };

        let tls_err = |e: &dyn std::fmt::Display| TestkitError::Tls(e.to_string());
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(|e| tls_err(&e))?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "mailpush testkit CA");
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_key = KeyPair::generate().map_err(|e| tls_err(&e))?;
        let ca = CertifiedIssuer::self_signed(ca_params, ca_key).map_err(|e| tls_err(&e))?;

        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut leaf_params = CertificateParams::new(names.clone()).map_err(|e| tls_err(&e))?;
        if let Some(first) = names.first() {
            leaf_params.distinguished_name.push(DnType::CommonName, first.as_str());
        }
        leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        if expired {
            leaf_params.not_before = date_time_ymd(2020, 1, 1);
            leaf_params.not_after = date_time_ymd(2021, 1, 1);
        }
        let leaf_key = KeyPair::generate().map_err(|e| tls_err(&e))?;
        let leaf = leaf_params.signed_by(&leaf_key, &ca).map_err(|e| tls_err(&e))?;
        Ok(SinkCertificate {
            chain: vec![leaf.der().to_vec(), ca.der().to_vec()],
            key_pkcs8: leaf_key.serialize_der(),
        })
    }
}

impl Default for SinkConfig {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            starttls: false,
            hostname: "sink.mailpush.test".to_owned(),
            record_bodies: true,
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            idle_timeout: Duration::from_secs(300),
            max_connections: None,
            auth: None,
            requiretls: false,
            certificate: None,
        }
    }
}

/// What the sink answers to `RCPT TO` for a given recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SinkReply {
    /// `250 2.1.5 Ok`: the recipient is added to the transaction.
    Accept,
    /// Answer with this code and text, e.g. `451` / `"4.3.0 try later"`. A 2xx code accepts the
    /// recipient; anything else rejects it. A text with `\n` becomes a multi-line reply.
    Reply {
        /// Three-digit SMTP reply code.
        code: u16,
        /// Reply text after the code, usually starting with an enhanced status code.
        text: String,
    },
    /// Close the TCP connection without answering, as a crashing or overloaded MX would.
    Disconnect,
}

impl SinkReply {
    /// Shorthand for [`SinkReply::Reply`].
    pub fn reply(code: u16, text: impl Into<String>) -> Self {
        Self::Reply {
            code,
            text: text.into(),
        }
    }
}

/// One message the sink accepted (final `250` after DATA).
#[derive(Debug, Clone)]
pub struct ReceivedMessage {
    /// Reverse path from `MAIL FROM`, without angle brackets; empty for the null sender `<>`.
    pub mail_from: String,
    /// Accepted recipients in the order given, as the client spelled them.
    pub rcpt_to: Vec<String>,
    /// The DATA payload, dot-unstuffed, without the final `.` line. The CRLF before the dot is
    /// kept because it ends the last line of the message.
    pub data: Vec<u8>,
    /// The client's address: tests of source-IP pools look at `peer.ip()`.
    pub peer: SocketAddr,
    /// The EHLO/HELO argument in force for this transaction.
    pub helo: String,
    /// Whether the transaction ran inside STARTTLS.
    pub tls: bool,
    /// Which TCP connection carried it (1 for the first connection the sink accepted).
    pub connection_id: u64,
    /// When the final dot was received.
    pub received_at: SystemTime,
    /// The username the client authenticated as (sinks with [`SinkConfig::auth`]).
    pub auth_user: Option<String>,
    /// `MAIL FROM` carried the `REQUIRETLS` parameter (sinks with [`SinkConfig::requiretls`]).
    pub requiretls: bool,
}

impl ReceivedMessage {
    /// Parses [`Self::data`] as an RFC 5322 message; `None` if mail-parser finds no message.
    pub fn parsed(&self) -> Option<mail_parser::Message<'_>> {
        mail_parser::MessageParser::default().parse(&self.data)
    }

    /// The raw data as text (lossy), handy for `contains` assertions.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.data).into_owned()
    }

    /// Whether `rcpt` (case-insensitive) is among the accepted recipients.
    pub fn has_rcpt(&self, rcpt: &str) -> bool {
        let wanted = normalize(rcpt);
        self.rcpt_to.iter().any(|r| normalize(r) == wanted)
    }
}

/// A recording SMTP server on a real socket. Stops listening and drops every open connection
/// when dropped.
pub struct SinkMx {
    addr: SocketAddr,
    shared: Arc<Shared>,
    ca_der: Option<Vec<u8>>,
    /// The STARTTLS certificate chain presented, own certificate first.
    chain_der: Vec<Vec<u8>>,
    accept_task: JoinHandle<()>,
}

impl std::fmt::Debug for SinkMx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SinkMx")
            .field("addr", &self.addr)
            .field("starttls", &self.ca_der.is_some())
            .finish_non_exhaustive()
    }
}

struct Shared {
    hostname: String,
    record_bodies: bool,
    max_size: usize,
    idle_timeout: Duration,
    max_connections: Option<usize>,
    auth: Option<(String, String)>,
    tls: Option<TlsAcceptor>,
    requiretls: bool,
    state: Mutex<State>,
    /// Number of accepted messages since the last `clear`; waiters subscribe instead of polling.
    count: watch::Sender<usize>,
    next_connection_id: AtomicU64,
    connections: AtomicUsize,
    active: AtomicUsize,
    peak: AtomicUsize,
    refused: AtomicUsize,
}

#[derive(Default)]
struct State {
    messages: Vec<ReceivedMessage>,
    accepted: usize,
    scripts: HashMap<String, Script>,
    rcpt_attempts: HashMap<String, usize>,
    data_reply: Option<(u16, String)>,
    silent_after_data: bool,
    data_delay: Duration,
    greetings: VecDeque<(u16, String)>,
}

struct Script {
    replies: Vec<SinkReply>,
    used: usize,
}

impl Script {
    fn next(&mut self) -> SinkReply {
        let idx = self.used.min(self.replies.len().saturating_sub(1));
        self.used += 1;
        self.replies.get(idx).cloned().unwrap_or(SinkReply::Accept)
    }
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        // A panicking test thread must not take every later assertion down with it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Addresses are compared case-insensitively, as the tests' scripting expects.
fn normalize(addr: &str) -> String {
    addr.trim().to_lowercase()
}

impl SinkMx {
    /// Binds the listener and starts accepting connections. Must be called inside a tokio runtime.
    pub async fn start(config: SinkConfig) -> Result<SinkMx, TestkitError> {
        let (tls, ca_der, chain_der) = if config.starttls {
            let certificate = match config.certificate.clone() {
                Some(certificate) => certificate,
                None => {
                    let mut names = vec![config.hostname.as_str()];
                    for extra in ["localhost", "127.0.0.1"] {
                        if !names.contains(&extra) {
                            names.push(extra);
                        }
                    }
                    SinkCertificate::issued(&names, false)?
                }
            };
            let acceptor = tls_acceptor(&certificate)?;
            let ca = certificate.chain.last().cloned();
            (Some(acceptor), ca, certificate.chain)
        } else {
            (None, None, Vec::new())
        };
        let listener = TcpListener::bind(config.bind)
            .await
            .map_err(|source| TestkitError::Bind {
                addr: config.bind,
                source,
            })?;
        let addr = listener.local_addr()?;
        let (count, _) = watch::channel(0);
        let shared = Arc::new(Shared {
            hostname: config.hostname,
            record_bodies: config.record_bodies,
            max_size: config.max_message_size,
            idle_timeout: config.idle_timeout,
            max_connections: config.max_connections,
            auth: config.auth,
            tls,
            requiretls: config.requiretls,
            state: Mutex::new(State::default()),
            count,
            next_connection_id: AtomicU64::new(1),
            connections: AtomicUsize::new(0),
            active: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            refused: AtomicUsize::new(0),
        });
        let accept_task = tokio::spawn(accept_loop(listener, shared.clone()));
        Ok(SinkMx {
            addr,
            shared,
            ca_der,
            chain_der,
            accept_task,
        })
    }

    /// [`SinkMx::start`] with [`SinkConfig::default`]: plain SMTP on `127.0.0.1`, any port.
    pub async fn start_default() -> Result<SinkMx, TestkitError> {
        Self::start(SinkConfig::default()).await
    }

    /// The address the sink listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The port the sink listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// DER of the CA that issued the STARTTLS certificate (the last of the chain; `None` without STARTTLS), for
    /// tests of strict TLS policies that trust it as a root.
    pub fn ca_certificate_der(&self) -> Option<&[u8]> {
        self.ca_der.as_deref()
    }

    /// The DER certificates STARTTLS presents, the sink's own first (empty without STARTTLS): what a DANE test
    /// publishes TLSA records for.
    pub fn certificate_chain_der(&self) -> &[Vec<u8>] {
        &self.chain_der
    }

    /// Every later `RCPT TO` for `rcpt` (case-insensitive) gets `reply`.
    pub fn set_reply(&self, rcpt: &str, reply: SinkReply) {
        self.set_reply_sequence(rcpt, vec![reply]);
    }

    /// The n-th `RCPT TO` for `rcpt` from now on gets the n-th reply; the last one repeats.
    /// An empty sequence means accept.
    pub fn set_reply_sequence(&self, rcpt: &str, replies: Vec<SinkReply>) {
        self.shared
            .state()
            .scripts
            .insert(normalize(rcpt), Script { replies, used: 0 });
    }

    /// Answer the final dot of DATA with this code and text instead of `250`. A non-2xx reply
    /// means the message is not recorded. `None` restores the default.
    pub fn set_data_reply(&self, reply: Option<(u16, String)>) {
        self.shared.state().data_reply = reply;
    }

    /// With `true`, the sink records each message it receives but never answers the final dot: it keeps the
    /// connection open, silent, until the client closes it (a receiver that swallows the reply).
    pub fn set_silent_after_data(&self, silent: bool) {
        self.shared.state().silent_after_data = silent;
    }

    /// Answer the final dot only after this pause, as a receiver that scans each message before accepting it
    /// does. `Duration::ZERO` (the default) answers at once.
    pub fn set_data_delay(&self, delay: Duration) {
        self.shared.state().data_delay = delay;
    }

    /// The next connections are greeted with these replies in turn (e.g. `421` / `"4.7.0 Too many
    /// connections"`) and closed; the connections after them are served normally.
    pub fn set_greeting_replies(&self, replies: Vec<(u16, String)>) {
        self.shared.state().greetings = replies.into();
    }

    /// Forgets every per-recipient script, the DATA reply and its delay, and scripted greetings: everything is
    /// accepted again at once.
    pub fn clear_replies(&self) {
        let mut state = self.shared.state();
        state.scripts.clear();
        state.data_reply = None;
        state.silent_after_data = false;
        state.data_delay = Duration::ZERO;
        state.greetings.clear();
    }

    /// Removes and returns the messages recorded since the last call (the counters keep counting), so a
    /// long benchmark can look at receipt times without the sink holding every body.
    pub fn take_messages(&self) -> Vec<ReceivedMessage> {
        std::mem::take(&mut self.shared.state().messages)
    }

    /// All messages accepted so far (empty when `record_bodies` is off).
    pub fn messages(&self) -> Vec<ReceivedMessage> {
        self.shared.state().messages.clone()
    }

    /// Accepted messages that had `rcpt` (case-insensitive) among their recipients.
    pub fn messages_for(&self, rcpt: &str) -> Vec<ReceivedMessage> {
        self.shared
            .state()
            .messages
            .iter()
            .filter(|m| m.has_rcpt(rcpt))
            .cloned()
            .collect()
    }

    /// Number of messages accepted since start or the last [`SinkMx::clear`]; advances even
    /// when `record_bodies` is off.
    pub fn message_count(&self) -> usize {
        self.shared.state().accepted
    }

    /// Waits until at least `n` messages have been accepted, then returns the recorded ones.
    pub async fn wait_for_messages(&self, n: usize, timeout: Duration) -> Result<Vec<ReceivedMessage>, TestkitError> {
        self.wait_for_count(n, timeout).await?;
        Ok(self.messages())
    }

    /// Waits until at least `n` messages have been accepted and returns the count; the
    /// benchmark-friendly form of [`SinkMx::wait_for_messages`].
    pub async fn wait_for_count(&self, n: usize, timeout: Duration) -> Result<usize, TestkitError> {
        let mut rx = self.shared.count.subscribe();
        let waited = tokio::time::timeout(timeout, async {
            // The borrow is copied out at once: holding it would block the writer, which
            // publishes while holding the state lock.
            rx.wait_for(|count| *count >= n).await.map(|count| *count)
        })
        .await;
        match waited {
            Ok(Ok(count)) => Ok(count),
            // The sender lives in `shared`, which `self` keeps alive, so only a timeout is possible.
            Ok(Err(_)) | Err(_) => Err(TestkitError::Timeout {
                wanted: n,
                got: self.message_count(),
                timeout,
            }),
        }
    }

    /// Total TCP connections accepted since start, for asserting connection reuse.
    pub fn connection_count(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// Connections currently being served. A connection stops counting when the client sends `QUIT` (before
    /// the `221` reply, so a client that waits for it never sees itself counted twice) or when it closes.
    pub fn active_connections(&self) -> usize {
        self.shared.active.load(Ordering::SeqCst)
    }

    /// The most connections served at once since start (connections refused by a scripted greeting or by
    /// [`SinkConfig::max_connections`] do not count).
    pub fn peak_connections(&self) -> usize {
        self.shared.peak.load(Ordering::SeqCst)
    }

    /// Connections answered `421` at the greeting (scripted or over [`SinkConfig::max_connections`]).
    pub fn refused_connections(&self) -> usize {
        self.shared.refused.load(Ordering::SeqCst)
    }

    /// How many `RCPT TO` were seen for `rcpt` (case-insensitive), accepted or not. With
    /// `record_bodies` off only addresses that have a reply script are counted.
    pub fn rcpt_attempts(&self, rcpt: &str) -> usize {
        self.shared
            .state()
            .rcpt_attempts
            .get(&normalize(rcpt))
            .copied()
            .unwrap_or(0)
    }

    /// Forgets recorded messages, the message count and the RCPT attempt counters. Scripts
    /// and the connection count are kept.
    pub fn clear(&self) {
        let mut state = self.shared.state();
        state.messages.clear();
        state.accepted = 0;
        state.rcpt_attempts.clear();
        self.shared.count.send_replace(0);
    }
}

impl Drop for SinkMx {
    fn drop(&mut self) {
        // The connection tasks live in the accept task's JoinSet, so they are aborted too.
        self.accept_task.abort();
    }
}

/// The STARTTLS acceptor presenting `certificate`.
pub(crate) fn tls_acceptor(certificate: &SinkCertificate) -> Result<TlsAcceptor, TestkitError> {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

    let tls_err = |e: &dyn std::fmt::Display| TestkitError::Tls(e.to_string());
    let chain = certificate
        .chain
        .iter()
        .map(|der| CertificateDer::from(der.clone()))
        .collect();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certificate.key_pkcs8.clone()));
    // An explicit provider: the process default panics if another crate in the test binary
    // enables a second rustls provider.
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_err(&e))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| tls_err(&e))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let id = shared.next_connection_id.fetch_add(1, Ordering::SeqCst);
                    shared.connections.fetch_add(1, Ordering::SeqCst);
                    connections.spawn(handle_connection(shared.clone(), stream, peer, id));
                }
                Err(error) => {
                    // Typically EMFILE under load: back off instead of spinning.
                    tracing::warn!(%error, "sink accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            },
            // Reap finished connection tasks so the set does not grow without bound.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// Keeps `active_connections` right even when the task is aborted.
struct ActiveGuard(Arc<Shared>);

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn handle_connection(shared: Arc<Shared>, mut stream: TcpStream, peer: SocketAddr, id: u64) {
    let now_active = shared.active.fetch_add(1, Ordering::SeqCst) + 1;
    let guard = ActiveGuard(shared.clone());
    // Replies are small; without this Nagle and delayed ACKs add 40 ms stalls.
    let _ = stream.set_nodelay(true);
    let scripted = shared.state().greetings.pop_front();
    let over_limit = shared.max_connections.is_some_and(|max| now_active > max);
    if scripted.is_some() || over_limit {
        drop(guard);
        shared.refused.fetch_add(1, Ordering::SeqCst);
        let (code, text) = scripted.unwrap_or_else(|| (421, "4.7.0 Too many connections, try again later".to_owned()));
        let mut out = Vec::new();
        push_reply(&mut out, code, &text);
        let _ = flush(&mut stream, &mut out).await;
        let _ = stream.shutdown().await;
        return;
    }
    shared.peak.fetch_max(now_active, Ordering::SeqCst);
    let mut session = Session {
        active: Some(guard),
        shared,
        peer,
        connection_id: id,
        helo: None,
        tls: false,
        txn: None,
        errors: 0,
        queued: 0,
        authed: None,
    };
    if let Err(error) = session.serve(stream).await {
        tracing::debug!(%peer, %error, "sink connection ended with an error");
    }
}

enum Outcome {
    Closed,
    StartTls,
}

enum LineStatus {
    Line,
    TooLong,
    Eof,
    Timeout,
}

struct Txn {
    mail_from: String,
    rcpts: Vec<String>,
    requiretls: bool,
}

struct Session {
    /// Counts this connection as served until QUIT or the end.
    active: Option<ActiveGuard>,
    shared: Arc<Shared>,
    peer: SocketAddr,
    connection_id: u64,
    helo: Option<String>,
    tls: bool,
    txn: Option<Txn>,
    errors: u32,
    queued: u64,
    /// The username AUTH accepted on this connection.
    authed: Option<String>,
}

fn push_reply(out: &mut Vec<u8>, code: u16, text: &str) {
    let mut lines = text.split('\n').map(|l| l.trim_end_matches('\r')).peekable();
    while let Some(line) = lines.next() {
        let sep = if lines.peek().is_some() { '-' } else { ' ' };
        out.extend_from_slice(format!("{code}{sep}{line}\r\n").as_bytes());
    }
}

async fn flush<S: AsyncWrite + Unpin>(writer: &mut S, out: &mut Vec<u8>) -> io::Result<()> {
    if !out.is_empty() {
        writer.write_all(out).await?;
        writer.flush().await?;
        out.clear();
    }
    Ok(())
}

/// Reads one line (through `\n`) into `line`, keeping at most `limit` bytes.
///
/// Pending replies are written only when no complete command is buffered: that is what makes
/// PIPELINING work (one write per batch) without ever leaving a waiting client unanswered.
async fn read_line<S: AsyncRead + AsyncWrite + Unpin>(
    reader: &mut BufReader<S>,
    out: &mut Vec<u8>,
    line: &mut Vec<u8>,
    limit: usize,
    idle: Duration,
) -> io::Result<LineStatus> {
    line.clear();
    let mut too_long = false;
    loop {
        if !reader.buffer().contains(&b'\n') {
            flush(reader.get_mut(), out).await?;
        }
        let available = if reader.buffer().is_empty() {
            match tokio::time::timeout(idle, reader.fill_buf()).await {
                Ok(result) => result?,
                Err(_) => return Ok(LineStatus::Timeout),
            }
        } else {
            reader.fill_buf().await?
        };
        if available.is_empty() {
            return Ok(LineStatus::Eof);
        }
        let (used, done) = match available.iter().position(|&b| b == b'\n') {
            Some(pos) => (pos + 1, true),
            None => (available.len(), false),
        };
        if line.len() + used > limit {
            too_long = true;
        } else if !too_long {
            line.extend_from_slice(&available[..used]);
        }
        reader.consume(used);
        if done {
            return Ok(if too_long {
                LineStatus::TooLong
            } else {
                LineStatus::Line
            });
        }
    }
}

/// Parses `FROM:<path> params` / `TO:<path> params` (keyword already checked by the caller).
/// Returns the path and the parameter string, or `None` on a syntax error.
fn parse_path(rest: &str) -> Option<(String, &str)> {
    let rest = rest.trim_start();
    if let Some(inner) = rest.strip_prefix('<') {
        let end = inner.find('>')?;
        let path = &inner[..end];
        let params = &inner[end + 1..];
        if !params.is_empty() && !params.starts_with(' ') {
            return None;
        }
        // Drop an RFC 5321 source route (`@a,@b:user@host`), which servers must accept.
        let path = if path.starts_with('@') {
            path.split_once(':').map(|(_, p)| p)?
        } else {
            path
        };
        if path.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return None;
        }
        Some((path.to_owned(), params.trim()))
    } else {
        // Lenient: some clients omit the brackets.
        let (path, params) = rest.split_once(' ').unwrap_or((rest, ""));
        if path.is_empty() || path.chars().any(|c| c.is_control()) {
            return None;
        }
        Some((path.to_owned(), params.trim()))
    }
}

/// Checks `KEY[=VALUE]` parameters of MAIL FROM; unknown keywords are accepted on purpose so
/// clients under test can send DSN or other extension parameters.
fn check_mail_params(params: &str, max_size: usize) -> Result<(), (u16, &'static str)> {
    for param in params.split_ascii_whitespace() {
        let (key, value) = param.split_once('=').unwrap_or((param, ""));
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err((501, "5.5.4 Bad parameter syntax"));
        }
        if key.eq_ignore_ascii_case("SIZE") {
            let size: usize = value.parse().map_err(|_| (501, "5.5.4 Bad SIZE parameter"))?;
            if size > max_size {
                return Err((552, "5.3.4 Message size exceeds fixed limit"));
            }
        } else if key.eq_ignore_ascii_case("BODY")
            && !(value.eq_ignore_ascii_case("7BIT") || value.eq_ignore_ascii_case("8BITMIME"))
        {
            return Err((501, "5.5.4 Unsupported BODY type"));
        }
    }
    Ok(())
}

impl Session {
    async fn serve(&mut self, stream: TcpStream) -> io::Result<()> {
        let mut out = Vec::with_capacity(1024);
        push_reply(
            &mut out,
            220,
            &format!("{} ESMTP mailpush testkit sink", self.shared.hostname),
        );
        let mut reader = BufReader::with_capacity(READ_BUFFER, stream);
        if let Outcome::Closed = self.run(&mut reader, &mut out).await? {
            return Ok(());
        }
        let Some(acceptor) = self.shared.tls.clone() else {
            return Ok(());
        };
        // Whatever the client pipelined after STARTTLS is thrown away with the plaintext
        // buffer: acting on it would allow command injection (RFC 3207 §6).
        let stream = reader.into_inner();
        let tls_stream = match tokio::time::timeout(self.shared.idle_timeout, acceptor.accept(stream)).await {
            Ok(result) => result?,
            Err(_) => return Ok(()),
        };
        // RFC 3207 §4.2: the session starts over, the client must EHLO again.
        self.tls = true;
        self.helo = None;
        self.txn = None;
        out.clear();
        let mut reader = BufReader::with_capacity(READ_BUFFER, tls_stream);
        self.run(&mut reader, &mut out).await?;
        Ok(())
    }

    fn error(&mut self, out: &mut Vec<u8>, code: u16, text: &str) {
        self.errors += 1;
        push_reply(out, code, text);
    }

    async fn run<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        reader: &mut BufReader<S>,
        out: &mut Vec<u8>,
    ) -> io::Result<Outcome> {
        let mut line = Vec::with_capacity(512);
        loop {
            if self.errors >= MAX_ERRORS {
                push_reply(out, 421, "4.7.0 Too many errors, closing connection");
                flush(reader.get_mut(), out).await?;
                return Ok(Outcome::Closed);
            }
            let idle = self.shared.idle_timeout;
            match read_line(reader, out, &mut line, MAX_COMMAND_LINE, idle).await? {
                LineStatus::Line => {}
                LineStatus::TooLong => {
                    self.error(out, 500, "5.5.2 Line too long");
                    continue;
                }
                LineStatus::Eof => return Ok(Outcome::Closed),
                LineStatus::Timeout => {
                    push_reply(out, 421, "4.4.2 Idle timeout, closing connection");
                    flush(reader.get_mut(), out).await?;
                    return Ok(Outcome::Closed);
                }
            }
            let text = String::from_utf8_lossy(&line).into_owned();
            let command = text.trim_end_matches(['\r', '\n']);
            let (verb, arg) = command.split_once(' ').unwrap_or((command, ""));
            let arg = arg.trim();
            match verb.to_ascii_uppercase().as_str() {
                "EHLO" | "HELO" if arg.is_empty() => self.error(out, 501, "5.5.4 Syntax: EHLO hostname"),
                "EHLO" => {
                    self.helo = Some(arg.to_owned());
                    self.txn = None;
                    let mut lines = vec![
                        format!("{} Hello {arg}", self.shared.hostname),
                        "PIPELINING".to_owned(),
                        "8BITMIME".to_owned(),
                        "SMTPUTF8".to_owned(),
                        "ENHANCEDSTATUSCODES".to_owned(),
                        format!("SIZE {}", self.shared.max_size),
                    ];
                    if self.shared.tls.is_some() && !self.tls {
                        lines.push("STARTTLS".to_owned());
                    }
                    if self.shared.requiretls && self.tls {
                        lines.push("REQUIRETLS".to_owned());
                    }
                    if self.shared.auth.is_some() {
                        lines.push("AUTH PLAIN LOGIN".to_owned());
                    }
                    push_reply(out, 250, &lines.join("\n"));
                }
                "HELO" => {
                    self.helo = Some(arg.to_owned());
                    self.txn = None;
                    push_reply(out, 250, &self.shared.hostname);
                }
                "MAIL" if self.shared.auth.is_some() && self.authed.is_none() => {
                    self.error(out, 530, "5.7.0 Authentication required")
                }
                "MAIL" => self.mail(out, arg),
                "AUTH" => self.auth(reader, out, &mut line, arg).await?,
                "RCPT" => {
                    if self.rcpt(out, arg) {
                        // Scripted disconnect: send what was already answered, then hang up.
                        flush(reader.get_mut(), out).await?;
                        return Ok(Outcome::Closed);
                    }
                }
                "DATA" => {
                    if !arg.is_empty() {
                        self.error(out, 501, "5.5.4 Syntax: DATA");
                    } else if self.txn.is_none() {
                        self.error(out, 503, "5.5.1 Error: need MAIL command");
                    } else if self.txn.as_ref().is_some_and(|t| t.rcpts.is_empty()) {
                        self.error(out, 554, "5.5.1 Error: no valid recipients");
                    } else {
                        push_reply(out, 354, "End data with <CR><LF>.<CR><LF>");
                        if let Some(outcome) = self.data(reader, out, &mut line).await? {
                            return Ok(outcome);
                        }
                    }
                }
                "RSET" => {
                    self.txn = None;
                    push_reply(out, 250, "2.0.0 Ok");
                }
                "NOOP" => push_reply(out, 250, "2.0.0 Ok"),
                "QUIT" => {
                    self.active = None;
                    push_reply(out, 221, "2.0.0 Bye");
                    flush(reader.get_mut(), out).await?;
                    // Gives a TLS client its close_notify; errors do not matter any more.
                    let _ = reader.get_mut().shutdown().await;
                    return Ok(Outcome::Closed);
                }
                "STARTTLS" => {
                    if self.shared.tls.is_none() {
                        self.error(out, 502, "5.5.1 Error: command not implemented");
                    } else if self.tls {
                        self.error(out, 503, "5.5.1 Error: TLS already active");
                    } else if !arg.is_empty() {
                        self.error(out, 501, "5.5.4 Syntax: STARTTLS");
                    } else {
                        push_reply(out, 220, "2.0.0 Ready to start TLS");
                        flush(reader.get_mut(), out).await?;
                        return Ok(Outcome::StartTls);
                    }
                }
                "VRFY" => push_reply(out, 252, "2.0.0 Cannot VRFY user"),
                "HELP" => push_reply(out, 214, "2.0.0 See RFC 5321"),
                "" => self.error(out, 500, "5.5.2 Error: bad syntax"),
                _ => self.error(out, 500, "5.5.2 Error: command not recognized"),
            }
        }
    }

    /// AUTH PLAIN (with or without an initial response) and AUTH LOGIN.
    async fn auth<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        reader: &mut BufReader<S>,
        out: &mut Vec<u8>,
        line: &mut Vec<u8>,
        arg: &str,
    ) -> io::Result<()> {
        use base64::Engine as _;
        let Some((user, pass)) = self.shared.auth.clone() else {
            self.error(out, 502, "5.5.1 Error: command not implemented");
            return Ok(());
        };
        if self.authed.is_some() {
            self.error(out, 503, "5.5.1 Error: already authenticated");
            return Ok(());
        }
        let decode = |s: &str| base64::engine::general_purpose::STANDARD.decode(s.trim()).ok();
        let idle = self.shared.idle_timeout;
        let (mechanism, initial) = arg.split_once(' ').unwrap_or((arg, ""));
        let given = match mechanism.to_ascii_uppercase().as_str() {
            "PLAIN" => {
                let response = if initial.is_empty() {
                    push_reply(out, 334, "");
                    if !matches!(
                        read_line(reader, out, line, MAX_COMMAND_LINE, idle).await?,
                        LineStatus::Line
                    ) {
                        return Ok(());
                    }
                    String::from_utf8_lossy(line).into_owned()
                } else {
                    initial.to_owned()
                };
                decode(&response).and_then(|raw| {
                    let mut parts = raw.split(|b| *b == 0).skip(1);
                    let u = String::from_utf8(parts.next()?.to_vec()).ok()?;
                    let p = String::from_utf8(parts.next()?.to_vec()).ok()?;
                    Some((u, p))
                })
            }
            "LOGIN" => {
                let mut answers = Vec::new();
                for prompt in ["VXNlcm5hbWU6", "UGFzc3dvcmQ6"] {
                    push_reply(out, 334, prompt);
                    if !matches!(
                        read_line(reader, out, line, MAX_COMMAND_LINE, idle).await?,
                        LineStatus::Line
                    ) {
                        return Ok(());
                    }
                    answers.push(decode(&String::from_utf8_lossy(line)).and_then(|b| String::from_utf8(b).ok()));
                }
                match (answers[0].take(), answers[1].take()) {
                    (Some(u), Some(p)) => Some((u, p)),
                    _ => None,
                }
            }
            _ => {
                self.error(out, 504, "5.5.4 Unrecognized authentication type");
                return Ok(());
            }
        };
        match given {
            Some((u, p)) if u == user && p == pass => {
                self.authed = Some(u);
                push_reply(out, 235, "2.7.0 Authentication successful");
            }
            Some(_) => self.error(out, 535, "5.7.8 Authentication credentials invalid"),
            None => self.error(out, 501, "5.5.2 Cannot decode response"),
        }
        Ok(())
    }

    fn mail(&mut self, out: &mut Vec<u8>, arg: &str) {
        if self.helo.is_none() {
            return self.error(out, 503, "5.5.1 Error: send HELO/EHLO first");
        }
        if self.txn.is_some() {
            return self.error(out, 503, "5.5.1 Error: nested MAIL command");
        }
        let Some(rest) = strip_keyword(arg, "FROM:") else {
            return self.error(out, 501, "5.5.4 Syntax: MAIL FROM:<address>");
        };
        let Some((path, params)) = parse_path(rest) else {
            return self.error(out, 501, "5.1.7 Bad sender address syntax");
        };
        if let Err((code, text)) = check_mail_params(params, self.shared.max_size) {
            return self.error(out, code, text);
        }
        let requiretls = params
            .split_ascii_whitespace()
            .any(|p| p.eq_ignore_ascii_case("REQUIRETLS"));
        if requiretls && !(self.shared.requiretls && self.tls) {
            return self.error(out, 555, "5.5.4 REQUIRETLS not supported here");
        }
        self.txn = Some(Txn {
            mail_from: path,
            rcpts: Vec::new(),
            requiretls,
        });
        push_reply(out, 250, "2.1.0 Ok");
    }

    /// Handles RCPT TO; returns `true` when the script says to drop the connection.
    fn rcpt(&mut self, out: &mut Vec<u8>, arg: &str) -> bool {
        if self.txn.is_none() {
            self.error(out, 503, "5.5.1 Error: need MAIL command");
            return false;
        }
        let Some(rest) = strip_keyword(arg, "TO:") else {
            self.error(out, 501, "5.5.4 Syntax: RCPT TO:<address>");
            return false;
        };
        let Some((path, _params)) = parse_path(rest) else {
            self.error(out, 501, "5.1.3 Bad recipient address syntax");
            return false;
        };
        if path.is_empty() {
            self.error(out, 501, "5.1.3 Bad recipient address syntax");
            return false;
        }
        let reply = {
            let key = normalize(&path);
            let mut state = self.shared.state();
            let reply = state.scripts.get_mut(&key).map(Script::next);
            // Without recording, only scripted addresses are counted: a benchmark with
            // millions of distinct recipients must not grow the map.
            if self.shared.record_bodies || reply.is_some() {
                *state.rcpt_attempts.entry(key).or_default() += 1;
            }
            reply.unwrap_or(SinkReply::Accept)
        };
        let accepted = match reply {
            SinkReply::Accept => {
                push_reply(out, 250, "2.1.5 Ok");
                true
            }
            SinkReply::Reply { code, text } => {
                push_reply(out, code, &text);
                (200..300).contains(&code)
            }
            SinkReply::Disconnect => return true,
        };
        if let (true, Some(txn)) = (accepted, self.txn.as_mut()) {
            txn.rcpts.push(path);
        }
        false
    }

    /// The record of a message this connection received now.
    fn received(&self, txn: Txn, data: Vec<u8>) -> ReceivedMessage {
        ReceivedMessage {
            mail_from: txn.mail_from,
            rcpt_to: txn.rcpts,
            data,
            peer: self.peer,
            helo: self.helo.clone().unwrap_or_default(),
            tls: self.tls,
            connection_id: self.connection_id,
            received_at: SystemTime::now(),
            auth_user: self.authed.clone(),
            requiretls: txn.requiretls,
        }
    }

    /// Reads the body after `354`; returns `Some` when the connection ended meanwhile.
    async fn data<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        reader: &mut BufReader<S>,
        out: &mut Vec<u8>,
        line: &mut Vec<u8>,
    ) -> io::Result<Option<Outcome>> {
        let record = self.shared.record_bodies;
        let max = self.shared.max_size;
        let idle = self.shared.idle_timeout;
        let mut data = Vec::new();
        let mut size = 0usize;
        let mut oversize = false;
        loop {
            match read_line(reader, out, line, max.saturating_add(3), idle).await? {
                LineStatus::Line => {}
                LineStatus::TooLong => {
                    oversize = true;
                    continue;
                }
                LineStatus::Eof => return Ok(Some(Outcome::Closed)),
                LineStatus::Timeout => {
                    push_reply(out, 421, "4.4.2 Idle timeout, closing connection");
                    flush(reader.get_mut(), out).await?;
                    return Ok(Some(Outcome::Closed));
                }
            }
            // Only CRLF.CRLF ends the data: a bare-LF dot is content (SMTP smuggling defence).
            if line.as_slice() == b".\r\n" {
                break;
            }
            let content = match line.first() {
                Some(b'.') => &line[1..],
                _ => &line[..],
            };
            size += content.len();
            if size > max {
                oversize = true;
            }
            if record && !oversize {
                data.extend_from_slice(content);
            }
        }
        let Some(txn) = self.txn.take() else {
            return Ok(None);
        };
        if oversize {
            push_reply(out, 552, "5.3.4 Message size exceeds fixed limit");
            return Ok(None);
        }
        let silent = self.shared.state().silent_after_data;
        if silent {
            {
                let mut state = self.shared.state();
                state.accepted += 1;
                self.shared.count.send_replace(state.accepted);
                state.messages.push(self.received(txn, data));
            }
            flush(reader.get_mut(), out).await?;
            // No reply, ever: wait for the client to give up.
            let mut buf = [0u8; 512];
            loop {
                match tokio::io::AsyncReadExt::read(reader, &mut buf).await {
                    Ok(0) | Err(_) => return Ok(Some(Outcome::Closed)),
                    Ok(_) => {}
                }
            }
        }
        let delay = self.shared.state().data_delay;
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let mut state = self.shared.state();
        let (code, text) = match &state.data_reply {
            Some((code, text)) => (*code, text.clone()),
            None => {
                self.queued += 1;
                (
                    250,
                    format!("2.0.0 Ok: queued as {}.{}", self.connection_id, self.queued),
                )
            }
        };
        if (200..300).contains(&code) {
            if record {
                state.messages.push(self.received(txn, data));
            }
            state.accepted += 1;
            // Published under the lock so concurrent connections never make the count go back.
            self.shared.count.send_replace(state.accepted);
        }
        drop(state);
        push_reply(out, code, &text);
        Ok(None)
    }
}

/// Case-insensitive `FROM:` / `TO:` prefix, tolerating a space before the colon's argument.
fn strip_keyword<'a>(arg: &'a str, keyword: &str) -> Option<&'a str> {
    let head = arg.get(..keyword.len())?;
    head.eq_ignore_ascii_case(keyword).then(|| &arg[keyword.len()..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_paths_and_params() {
        assert_eq!(
            parse_path("<a@b.c> SIZE=10 BODY=8BITMIME"),
            Some(("a@b.c".to_owned(), "SIZE=10 BODY=8BITMIME"))
        );
        assert_eq!(parse_path(" <>"), Some((String::new(), "")));
        assert_eq!(parse_path("<@relay:user@host>"), Some(("user@host".to_owned(), "")));
        assert_eq!(parse_path("<a@b"), None);
        assert_eq!(parse_path("<a@b>x"), None);
        assert!(check_mail_params("SIZE=10 BODY=8BITMIME SMTPUTF8", 100).is_ok());
        assert_eq!(check_mail_params("SIZE=1000", 100).unwrap_err().0, 552);
        assert_eq!(check_mail_params("SIZE=x", 100).unwrap_err().0, 501);
        assert_eq!(check_mail_params("BODY=BINARYMIME", 100).unwrap_err().0, 501);
    }

    #[test]
    fn multiline_replies() {
        let mut out = Vec::new();
        push_reply(&mut out, 250, "a\nb\nc");
        assert_eq!(out, b"250-a\r\n250-b\r\n250 c\r\n");
    }

    #[test]
    fn scripts_repeat_the_last_reply() {
        let mut script = Script {
            replies: vec![SinkReply::reply(451, "x"), SinkReply::Accept],
            used: 0,
        };
        assert_eq!(script.next(), SinkReply::reply(451, "x"));
        assert_eq!(script.next(), SinkReply::Accept);
        assert_eq!(script.next(), SinkReply::Accept);
        let mut empty = Script {
            replies: vec![],
            used: 0,
        };
        assert_eq!(empty.next(), SinkReply::Accept);
    }
}
