//! Serving the router: one hyper HTTP/1.1 connection per accepted socket, instead of `axum::serve`, for the
//! limits axum does not expose:
//!
//! - a global connection cap ([`HttpLimits::max_connections`]): one more connection is answered a
//!   hand-written `503` and closed;
//! - a header timeout: a request's header must be complete within [`HttpLimits::header_timeout`] of its
//!   first byte (half a header, or a byte every few seconds, no longer holds a connection);
//! - an idle timeout: a keep-alive connection with no request in progress is closed after
//!   [`HttpLimits::idle_timeout`].
//!
//! hyper's own `header_read_timeout` is not used: it starts when hyper waits for the next request, so it would
//! also be the keep-alive timeout. Here a watcher per connection sees the socket's reads (a [`Watched`]
//! stream) and the requests in progress (a counting service) and decides which deadline applies.

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use mailpush_core::listener::{AcceptBackoff, ConnectionCap};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

/// The reply to a connection over [`HttpLimits::max_connections`].
pub const OVER_CAPACITY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n\
Content-Length: 39\r\nRetry-After: 1\r\nConnection: close\r\n\r\ntoo many connections, try again later\r\n";

/// How long connections may take to finish after shutdown was asked for.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// The connection limits of the HTTP listener.
#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    /// Simultaneous connections (0 = unlimited).
    pub max_connections: usize,
    /// A request's header must be complete within this long of its first byte.
    pub header_timeout: Duration,
    /// A connection with no request in progress and no input is closed after this long.
    pub idle_timeout: Duration,
    /// A request body must be complete within this long of its header.
    pub body_timeout: Duration,
}

impl HttpLimits {
    /// The limits the settings describe (timeouts of at least one second).
    pub fn from_settings(s: &mailpush_core::Settings) -> HttpLimits {
        HttpLimits {
            max_connections: s.api_max_connections,
            header_timeout: Duration::from_secs(s.api_header_timeout_secs.max(1)),
            idle_timeout: Duration::from_secs(s.api_idle_timeout_secs.max(1)),
            body_timeout: Duration::from_secs(s.api_body_timeout_secs.max(1)),
        }
    }
}

/// Serves `app` on `listener` with `limits` until `shutdown` resolves; then stops accepting, lets the
/// connections finish their requests (idle ones close at once) for at most 30 s, and returns.
pub async fn serve_router(
    listener: TcpListener,
    app: Router,
    limits: HttpLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    serve_router_tls(listener, app, limits, None, shutdown).await
}

/// [`serve_router`], over TLS when `tls` is given (HTTPS; its files re-read on SIGHUP). A TLS handshake must
/// end within the header timeout.
pub async fn serve_router_tls(
    listener: TcpListener,
    app: Router,
    limits: HttpLimits,
    tls: Option<Arc<crate::tls::ApiTls>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let reloader = tls.as_ref().map(|t| t.reload_on_sighup());
    let cap = ConnectionCap::new("api", limits.max_connections);
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut backoff = AcceptBackoff::new("api");
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = backoff.accept(&listener) => accepted,
        };
        let Some(permit) = cap.try_admit() else {
            cap.refuse(tcp, OVER_CAPACITY);
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let (app, stop) = (app.clone(), stop_rx.clone());
        let acceptor = tls.as_ref().map(|t| t.acceptor());
        tokio::spawn(async move {
            match acceptor {
                None => connection(tcp, peer, app, limits, stop).await,
                Some(acceptor) => match tokio::time::timeout(limits.header_timeout, acceptor.accept(tcp)).await {
                    Ok(Ok(stream)) => connection(stream, peer, app, limits, stop).await,
                    Ok(Err(e)) => tracing::debug!(error = %e, "api: TLS handshake failed"),
                    Err(_) => tracing::debug!("api: TLS handshake not complete in time"),
                },
            }
            drop(permit);
        });
    }
    if let Some(r) = reloader {
        r.abort();
    }
    drop(listener);
    let _ = stop_tx.send(true);
    if !cap.drained(SHUTDOWN_GRACE).await {
        tracing::warn!(
            open = cap.open(),
            "api: connections still open after the shutdown grace"
        );
    }
    Ok(())
}

/// What the watcher of one connection knows, in ms since `epoch` (atomics: the stream, the service and the
/// watcher touch it from the connection's task and the handler's).
struct Activity {
    epoch: Instant,
    /// Last time bytes were read or written.
    last_io: AtomicU64,
    /// When the first byte of a header not yet complete arrived, plus one (0 = none).
    head_since: AtomicU64,
    /// Requests handed to the router and not yet answered.
    in_flight: AtomicUsize,
    /// Woken when a header starts: its deadline is earlier than the idle one the watcher sleeps towards.
    header_started: Notify,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            epoch: Instant::now(),
            last_io: AtomicU64::new(0),
            head_since: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            header_started: Notify::new(),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn read(&self) {
        let now = self.now_ms();
        self.last_io.store(now, Ordering::Relaxed);
        // Input while no request is in progress starts a header (a request's body arrives while it is).
        if self.in_flight.load(Ordering::Acquire) == 0 {
            let started = self
                .head_since
                .compare_exchange(0, now + 1, Ordering::AcqRel, Ordering::Relaxed);
            if started.is_ok() {
                self.header_started.notify_one();
            }
        }
    }

    fn wrote(&self) {
        self.last_io.store(self.now_ms(), Ordering::Relaxed);
    }

    /// The header is complete: the request goes to the router.
    fn request_started(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.head_since.store(0, Ordering::Release);
        InFlight(self.clone())
    }

    /// What the connection is waiting for now, and until when (ms since `epoch`).
    fn deadline(&self, limits: &HttpLimits) -> Wait {
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        if self.in_flight.load(Ordering::Acquire) > 0 {
            // The handler bounds its own body read; look again later.
            return Wait::Busy(self.now_ms().saturating_add(ms(limits.idle_timeout)));
        }
        match self.head_since.load(Ordering::Acquire) {
            0 => Wait::Idle(
                self.last_io
                    .load(Ordering::Relaxed)
                    .saturating_add(ms(limits.idle_timeout)),
            ),
            since => Wait::Header((since - 1).saturating_add(ms(limits.header_timeout))),
        }
    }
}

enum Wait {
    Busy(u64),
    Idle(u64),
    Header(u64),
}

/// One request in progress; counted down when dropped (the handler finished or was cancelled).
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.last_io.store(self.0.now_ms(), Ordering::Relaxed);
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A socket that tells its [`Activity`] about every read and write.
struct Watched<S> {
    tcp: S,
    activity: Arc<Activity>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Watched<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.tcp).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.activity.read();
        }
        polled
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.tcp).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.wrote();
        }
        polled
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.tcp).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.wrote();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_shutdown(cx)
    }
}

/// Serves one connection until it ends, a deadline passes or shutdown.
async fn connection<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(
    tcp: S,
    peer: std::net::SocketAddr,
    app: Router,
    limits: HttpLimits,
    mut stop: watch::Receiver<bool>,
) {
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Watched {
        tcp,
        activity: activity.clone(),
    });
    let inner = TowerToHyperService::new(app);
    let counted = activity.clone();
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        // The client's address, for handlers that limit per client (the console's sign-in throttle).
        req.extensions_mut().insert(axum::extract::ConnectInfo(peer));
        let guard = counted.request_started();
        let call = hyper::service::Service::call(&inner, req);
        async move {
            let response = call.await;
            drop(guard);
            response
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    // Off: it would also cut keep-alive connections (see the module doc); the watcher below does both.
    builder.header_read_timeout(None);
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    // After a graceful shutdown was asked for, the connection gets this long to finish writing.
    let mut closing_until: Option<Instant> = None;
    loop {
        let wait = activity.deadline(&limits);
        let at = match (&wait, closing_until) {
            (_, Some(t)) => t,
            (Wait::Busy(ms) | Wait::Idle(ms) | Wait::Header(ms), None) => activity.epoch + Duration::from_millis(*ms),
        };
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "api: connection ended with an error");
                }
                return;
            }
            _ = activity.header_started.notified(), if closing_until.is_none() => {}
            _ = stop.changed(), if closing_until.is_none() => {
                conn.as_mut().graceful_shutdown();
                closing_until = Some(Instant::now() + limits.header_timeout);
            }
            _ = tokio::time::sleep_until(at) => {
                if closing_until.is_some() {
                    return; // Did not finish in time: dropped, which closes the socket.
                }
                // The deadline may have moved meanwhile (new input, a request): only act on a passed one.
                match activity.deadline(&limits) {
                    Wait::Header(ms) if activity.now_ms() >= ms => {
                        tracing::debug!("api: request header not complete in time; closing");
                        return;
                    }
                    Wait::Idle(ms) if activity.now_ms() >= ms => {
                        // Closes at once when nothing is in progress, else after the current response.
                        conn.as_mut().graceful_shutdown();
                        closing_until = Some(Instant::now() + limits.header_timeout);
                    }
                    _ => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> HttpLimits {
        HttpLimits {
            max_connections: 1,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            body_timeout: Duration::from_secs(60),
        }
    }

    #[test]
    fn the_deadline_follows_the_phase_of_the_connection() {
        let a = Arc::new(Activity::new());
        assert!(matches!(a.deadline(&limits()), Wait::Idle(60_000)));
        a.read();
        let Wait::Header(ms) = a.deadline(&limits()) else {
            panic!("a header started")
        };
        assert!((10_000..11_000).contains(&ms), "{ms}");
        // More bytes of the same header do not move its deadline (a byte every few seconds).
        a.read();
        assert!(matches!(a.deadline(&limits()), Wait::Header(m) if m == ms));
        let g = a.request_started();
        // The body arrives while the request is in progress: no header starts.
        a.read();
        assert!(matches!(a.deadline(&limits()), Wait::Busy(_)));
        drop(g);
        assert!(matches!(a.deadline(&limits()), Wait::Idle(_)));
    }

    #[test]
    fn the_refusal_is_well_formed() {
        let text = std::str::from_utf8(OVER_CAPACITY).expect("ascii");
        let (head, body) = text.split_once("\r\n\r\n").expect("head and body");
        assert!(head.starts_with("HTTP/1.1 503 "));
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .and_then(|v| v.parse().ok())
            .expect("length");
        assert_eq!(len, body.len());
    }
}
