//! mailpush's SMTP submission endpoint: applications that speak SMTP submit mail here, with the same
//! admission as the HTTP API.
//!
//! - ESMTP with STARTTLS, AUTH PLAIN/LOGIN, SIZE, PIPELINING, 8BITMIME, SMTPUTF8, ENHANCEDSTATUSCODES and
//!   CHUNKING (BDAT); implicit TLS on a second listener (port 465 style). Commands are parsed by smtp-proto.
//! - Who may submit: a login (sender address + its SMTP password), or a client in a trusted network.
//!   What they may submit is decided by core through [`SubmissionBackend`] ([`CoreBackend`] in production).
//! - `250` only after the message is committed (group commit, fsync); the reply carries the MessageId.
//! - A second mode, the **inbound MX** (`inbound_listen`, [`SmtpConfig::inbound`]): the host the sending
//!   domains' MX records point at. No AUTH; it accepts mail only for mailpush's VERP return paths, mailto
//!   unsubscribe addresses and the complaint address, and hands it to core (DSNs, ARF reports, unsubscribes).
//! - Robustness: only `<CRLF>.<CRLF>` ends DATA (SMTP smuggling), bounded lines and sizes, idle timeouts,
//!   a global connection cap per server (`421 4.3.2` over it) and per-IP limits (trusted networks exempt),
//!   accept errors backed off, AUTH failures throttled per (IP, username) and per IP (never a lock of the
//!   username from every address), `421` after too many errors.

#![warn(missing_docs)]

pub mod backend;
pub mod data;
pub mod limits;
pub mod reply;
mod session;
pub mod tls;

pub use backend::{ClientTrace, CoreBackend, Envelope, Principal, SubmissionBackend};
pub use reply::{Reply, reply_for, reply_for_core, smtp_code_for};
pub use session::{MAX_BODY_LINE, MAX_COMMAND_LINE};

use limits::{AuthThrottle, ConnectionLimiter};
use mailpush_core::Settings;
use mailpush_core::listener::{AcceptBackoff, ConnectionCap};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

/// What can go wrong starting the SMTP endpoint.
#[derive(Debug, thiserror::Error)]
pub enum SmtpError {
    /// Certificates or keys could not be loaded or generated.
    #[error("TLS: {0}")]
    Tls(String),
    /// The settings are unusable.
    #[error("configuration: {0}")]
    Config(String),
    /// A socket failed.
    #[error("I/O: {0}")]
    Io(#[from] io::Error),
}

/// How the SMTP endpoint behaves.
#[derive(Clone)]
pub struct SmtpConfig {
    /// Name in the greeting and EHLO reply.
    pub hostname: String,
    /// Largest message accepted (advertised as SIZE).
    pub max_message_bytes: usize,
    /// Most recipients per message; the next `RCPT` gets `452 4.5.3`.
    pub max_recipients: usize,
    /// STARTTLS (and implicit TLS) acceptor; `None` = no TLS.
    pub tls: Option<TlsAcceptor>,
    /// Allow AUTH without TLS from loopback clients.
    pub allow_plaintext_auth_loopback: bool,
    /// Idle / command timeout.
    pub timeout: Duration,
    /// Simultaneous connections per client IP; clients in `trusted_networks` are exempt.
    pub max_connections_per_ip: usize,
    /// Simultaneous connections of the server, all its listeners together (0 = unlimited); one more gets
    /// [`OVER_CAPACITY`] (implicit TLS: closed without a word) and is closed.
    pub max_connections: usize,
    /// Client networks exempt from `max_connections_per_ip` (`smtp_trusted_networks`: a local relay may
    /// open many connections, as Postfix exempts `mynetworks`).
    pub trusted_networks: Vec<ipnet::IpNet>,
    /// Error replies before `421` and close.
    pub max_errors: u32,
    /// Failed AUTH attempts per (client IP, username) within `auth_window` (see [`limits`]).
    pub auth_max_failures: u32,
    /// Failed AUTH attempts per client IP (IPv6: /64) within `auth_window`.
    pub auth_max_failures_per_ip: u32,
    /// See `auth_max_failures`.
    pub auth_window: Duration,
    /// Delay before the reply to a client IP's second failure in the window; doubles per further failure.
    pub auth_delay: Duration,
    /// The cap of `auth_delay`'s growth.
    pub auth_delay_max: Duration,
    /// Inbound MX mode (port 25 style): no AUTH, any sender (DSNs come from `<>`), recipients only
    /// mailpush's own feedback addresses ([`SubmissionBackend::inbound_recipient`]), the mail handed to
    /// [`SubmissionBackend::receive_inbound`]. Never a relay.
    pub inbound: bool,
}

impl SmtpConfig {
    /// The configuration the settings describe, with `tls` as the acceptor.
    pub fn from_settings(s: &Settings, tls: Option<TlsAcceptor>) -> SmtpConfig {
        SmtpConfig {
            hostname: s.helo_name.clone(),
            max_message_bytes: mailpush_model::message::MAX_MAIL_BYTES,
            max_recipients: mailpush_core::MAX_RAW_RECIPIENTS,
            tls,
            allow_plaintext_auth_loopback: s.smtp_allow_plaintext_auth_loopback,
            timeout: Duration::from_secs(s.smtp_timeout_secs.max(1)),
            max_connections_per_ip: s.smtp_max_connections_per_ip,
            max_connections: s.smtp_max_connections,
            // Malformed entries are refused at start by `CoreBackend::new` (check_smtp_settings).
            trusted_networks: mailpush_core::trusted_networks(&s.smtp_trusted_networks).unwrap_or_default(),
            max_errors: 10,
            auth_max_failures: s.smtp_auth_max_failures,
            auth_max_failures_per_ip: s.smtp_auth_max_failures_per_ip,
            auth_window: Duration::from_secs(s.smtp_auth_window_secs),
            auth_delay: Duration::from_millis(s.smtp_auth_delay_ms),
            auth_delay_max: Duration::from_millis(s.smtp_auth_delay_max_ms),
            inbound: false,
        }
    }

    /// The inbound MX's configuration: named after `inbound_host`, STARTTLS offered with `tls`, no AUTH.
    pub fn inbound_from_settings(s: &Settings, inbound_host: String, tls: Option<TlsAcceptor>) -> SmtpConfig {
        SmtpConfig {
            hostname: inbound_host,
            max_recipients: INBOUND_MAX_RECIPIENTS,
            max_connections: s.inbound_max_connections,
            inbound: true,
            ..SmtpConfig::from_settings(s, tls)
        }
    }
}

/// The reply to a connection over [`SmtpConfig::max_connections`] (before the greeting, then closed).
pub const OVER_CAPACITY: &[u8] = b"421 4.3.2 too many connections, try again later\r\n";

/// Most recipients of one inbound mail (a report goes to one return path; a little room for odd senders).
pub const INBOUND_MAX_RECIPIENTS: usize = 20;

pub(crate) struct Shared<B: SubmissionBackend> {
    pub(crate) config: SmtpConfig,
    pub(crate) backend: Arc<B>,
    pub(crate) connections: Arc<ConnectionLimiter>,
    pub(crate) cap: ConnectionCap,
    pub(crate) auth: AuthThrottle,
}

/// The timeout of reads, writes and handshakes while the server is under stress (see
/// [`ConnectionCap::under_stress`]; Postfix: `smtpd_timeout = ${stress?{10}:{300}}s`).
pub const STRESS_TIMEOUT: Duration = Duration::from_secs(10);

impl<B: SubmissionBackend> Shared<B> {
    /// The idle / command timeout now: [`SmtpConfig::timeout`], or at most [`STRESS_TIMEOUT`] while three
    /// quarters of the connection cap are in use, so silent clients cannot hold the cap for long.
    pub(crate) fn timeout(&self) -> Duration {
        if self.cap.under_stress() {
            self.config.timeout.min(STRESS_TIMEOUT)
        } else {
            self.config.timeout
        }
    }
}

/// The SMTP server: one per process and mode; its listeners share the connection limits and AUTH throttling.
pub struct SmtpServer<B: SubmissionBackend> {
    shared: Arc<Shared<B>>,
}

impl<B: SubmissionBackend> Clone for SmtpServer<B> {
    fn clone(&self) -> Self {
        SmtpServer {
            shared: self.shared.clone(),
        }
    }
}

impl<B: SubmissionBackend> SmtpServer<B> {
    /// A server answering with `config` and submitting through `backend`.
    pub fn new(config: SmtpConfig, backend: Arc<B>) -> SmtpServer<B> {
        SmtpServer {
            shared: Arc::new(Shared {
                connections: Arc::new(ConnectionLimiter::new(config.max_connections_per_ip)),
                cap: ConnectionCap::new(if config.inbound { "inbound" } else { "smtp" }, config.max_connections),
                auth: AuthThrottle::new(
                    config.auth_max_failures,
                    config.auth_max_failures_per_ip,
                    config.auth_window,
                    config.auth_delay,
                    config.auth_delay_max,
                ),
                config,
                backend,
            }),
        }
    }

    /// Accepts connections on `listener` until `shutdown` resolves. With `implicit_tls` every connection
    /// starts with a TLS handshake (port 465 style); that needs [`SmtpConfig::tls`].
    pub async fn serve(
        &self,
        listener: TcpListener,
        implicit_tls: bool,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), SmtpError> {
        if implicit_tls && self.shared.config.tls.is_none() {
            return Err(SmtpError::Config("implicit TLS needs a certificate".into()));
        }
        tokio::pin!(shutdown);
        let mut backoff = AcceptBackoff::new(if self.shared.config.inbound { "inbound" } else { "smtp" });
        loop {
            let (tcp, peer) = tokio::select! {
                _ = &mut shutdown => return Ok(()),
                accepted = backoff.accept(&listener) => accepted,
            };
            // The global cap comes first and costs no task: slow clients can hold at most the cap.
            let Some(slot) = self.shared.cap.try_admit() else {
                // Logged by the cap, at most once a second.
                if implicit_tls {
                    // No clear-text reply on a TLS port.
                    self.shared.cap.drop_refused(tcp);
                } else {
                    self.shared.cap.refuse(tcp, OVER_CAPACITY);
                }
                continue;
            };
            mailpush_telemetry::smtp_session(if self.shared.config.inbound {
                "inbound"
            } else {
                "submission"
            });
            let shared = self.shared.clone();
            tokio::spawn(async move {
                connection(shared, tcp, peer, implicit_tls).await;
                drop(slot);
            });
        }
    }

    /// Connections open now, all listeners of this server together.
    pub fn open_connections(&self) -> usize {
        self.shared.cap.open()
    }
}

async fn connection<B: SubmissionBackend>(
    shared: Arc<Shared<B>>,
    mut tcp: TcpStream,
    peer: SocketAddr,
    implicit_tls: bool,
) {
    let _ = tcp.set_nodelay(true);
    let trusted = shared
        .config
        .trusted_networks
        .iter()
        .any(|n| n.contains(&peer.ip().to_canonical()));
    let permit = if trusted {
        None
    } else {
        let Some(permit) = shared.connections.acquire(peer.ip()) else {
            tracing::warn!(%peer, "smtp: too many connections from this address");
            if !implicit_tls {
                let _ = tcp
                    .write_all(b"421 4.7.0 Too many connections from your address; try again later\r\n")
                    .await;
            }
            let _ = tcp.shutdown().await;
            return;
        };
        Some(permit)
    };
    let _permit = permit;
    let stream = if implicit_tls {
        let Some(acceptor) = shared.config.tls.clone() else {
            return;
        };
        match tokio::time::timeout(shared.timeout(), acceptor.accept(tcp)).await {
            Ok(Ok(tls)) => Stream::Tls(Box::new(tls)),
            Ok(Err(e)) => {
                tracing::debug!(%peer, error = %e, "smtp: TLS handshake failed");
                return;
            }
            Err(_) => return,
        }
    } else {
        Stream::Plain(tcp)
    };
    let end = session::Session::new(&shared, stream, peer).run().await;
    tracing::debug!(%peer, ?end, "smtp: session ended");
}

/// A client connection, before or after TLS.
pub(crate) enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
    /// Between taking the TCP stream for the handshake and getting the TLS stream back.
    Closed,
}

fn closed() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "connection closed")
}

impl AsyncRead for Stream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Stream::Closed => Poll::Ready(Err(closed())),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Stream::Closed => Poll::Ready(Err(closed())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Stream::Closed => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Stream::Closed => Poll::Ready(Ok(())),
        }
    }
}

/// The SMTP listeners one process runs, started by [`launch`].
pub struct Launched {
    /// `("smtp" | "smtps" | "inbound", address)` of each listener.
    pub listening: Vec<(&'static str, SocketAddr)>,
    /// Where the certificate came from.
    pub tls: tls::TlsSource,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Launched {
    /// Stops accepting connections (sessions in progress are dropped with the runtime).
    pub fn stop(self) {
        for t in self.tasks {
            t.abort();
        }
    }
}

/// Starts the SMTP endpoints the settings of `core` ask for (`smtp_listen`, `smtps_listen`, and the inbound
/// MX `inbound_listen`), or returns `None` when none is set. Loads or generates the certificate, binds, and
/// serves on the current runtime.
pub async fn launch(core: mailpush_core::Mailpush) -> Result<Option<Launched>, SmtpError> {
    let settings = core.settings().clone();
    if settings.smtp_listen.is_none() && settings.smtps_listen.is_none() && settings.inbound_listen.is_none() {
        return Ok(None);
    }
    let inbound_host = core.inbound_mx_host();
    let backend = Arc::new(CoreBackend::new(core).map_err(|e| SmtpError::Config(e.to_string()))?);
    let (acceptor, source) = tls::acceptor_for(&settings)?;
    let server = SmtpServer::new(
        SmtpConfig::from_settings(&settings, Some(acceptor.clone())),
        backend.clone(),
    );
    // Its own server: other limits and replies, and its connections do not count against submission's.
    let inbound = SmtpServer::new(
        SmtpConfig::inbound_from_settings(&settings, inbound_host, Some(acceptor)),
        backend,
    );
    let mut listening = Vec::new();
    let mut tasks = Vec::new();
    for (name, addr, implicit) in [
        ("smtp", settings.smtp_listen, false),
        ("smtps", settings.smtps_listen, true),
        ("inbound", settings.inbound_listen, false),
    ] {
        let Some(addr) = addr else { continue };
        let server = if name == "inbound" {
            inbound.clone()
        } else {
            server.clone()
        };
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| SmtpError::Config(format!("binding {name} to {addr}: {e}")))?;
        listening.push((name, listener.local_addr()?));
        tasks.push(tokio::spawn(async move {
            if let Err(e) = server.serve(listener, implicit, std::future::pending()).await {
                tracing::error!(error = %e, "smtp: listener stopped");
            }
        }));
    }
    Ok(Some(Launched {
        listening,
        tls: source,
        tasks,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn submission_and_inbound_caps_come_from_their_own_settings() {
        let s = Settings {
            smtp_max_connections: 7,
            inbound_max_connections: 3,
            smtp_trusted_networks: vec!["10.0.0.0/8".into(), "::1".into()],
            ..Settings::default()
        };
        let submission = SmtpConfig::from_settings(&s, None);
        assert_eq!(submission.max_connections, 7);
        assert_eq!(submission.trusted_networks.len(), 2);
        let inbound = SmtpConfig::inbound_from_settings(&s, "mx.example".into(), None);
        assert_eq!((inbound.max_connections, inbound.inbound), (3, true));
    }
}
