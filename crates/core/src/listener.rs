//! What every listener of a mailpush process shares (HTTP API, SMTP submission, inbound MX):
//!
//! - [`raise_fd_limit`]: every binary raises its soft `RLIMIT_NOFILE` to the hard limit at start, so that
//!   the connection caps, not the common default of 1,024 descriptors, decide how many clients are served.
//! - [`ConnectionCap`]: a global cap on a listener's simultaneous connections. A connection over it gets a
//!   short refusal (HTTP `503`, SMTP `421`) and is closed, so slow or idle clients can hold at most the cap,
//!   never every descriptor of the process.
//! - [`AcceptBackoff`]: an accept loop that sleeps (10 ms, growing to 100 ms) after an accept error such as
//!   `EMFILE` instead of spinning on it, and logs the errors at most once a second.

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The soft descriptor limit before and after [`raise_fd_limit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FdLimit {
    /// The soft limit the process started with.
    pub before: u64,
    /// The soft limit now (the hard limit when raising worked).
    pub now: u64,
}

/// Raises the soft `RLIMIT_NOFILE` of the process to its hard limit and returns both values. Each binary
/// calls it once at start (before opening listeners); it is idempotent.
#[cfg(unix)]
#[allow(clippy::unnecessary_cast)] // `rlim_t` is u64 on Linux, not on every unix.
pub fn raise_fd_limit() -> io::Result<FdLimit> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own; no other memory is involved.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let before = lim.rlim_cur as u64;
    if lim.rlim_cur >= lim.rlim_max {
        return Ok(FdLimit { before, now: before });
    }
    let raised = libc::rlimit {
        rlim_cur: lim.rlim_max,
        rlim_max: lim.rlim_max,
    };
    // SAFETY: setrlimit only reads the struct we pass.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(FdLimit {
        before,
        now: lim.rlim_max as u64,
    })
}

/// Not on this platform: the limit is left as it is.
#[cfg(not(unix))]
pub fn raise_fd_limit() -> io::Result<FdLimit> {
    Err(io::Error::new(io::ErrorKind::Unsupported, "no RLIMIT_NOFILE here"))
}

/// [`raise_fd_limit`], logged: the new limit at debug, a warning when it stays below `needed` (the
/// descriptors the process's connection caps, worker and database pool may use together).
pub fn raise_fd_limit_logged(needed: u64) {
    match raise_fd_limit() {
        Ok(l) => {
            tracing::debug!(before = l.before, now = l.now, "file descriptor limit");
            if l.now < needed {
                tracing::warn!(
                    limit = l.now,
                    needed,
                    "the file descriptor limit is below what the connection caps allow; lower the caps \
                     (api_max_connections, smtp_max_connections, inbound_max_connections) or raise the hard limit"
                );
            }
        }
        Err(e) => tracing::warn!(error = %e, "could not raise the file descriptor limit"),
    }
}

/// Refusals being written at once per cap; beyond that an over-cap connection is closed without a word
/// (a refusal holds a descriptor for up to [`REFUSAL_TIME`] too).
const REFUSALS_IN_FLIGHT: usize = 16;
/// Longest a refusal may take: writing it and reading what the client already sent.
const REFUSAL_TIME: Duration = Duration::from_secs(2);

/// "Unlimited": more connections than any descriptor limit allows, small enough for `acquire_many`.
const UNLIMITED: usize = 1 << 30;

/// A global cap on one listener's (or a group of listeners') simultaneous connections. Cheap to clone.
#[derive(Clone, Debug)]
pub struct ConnectionCap {
    slots: Arc<Semaphore>,
    max: usize,
    refusing: Arc<Semaphore>,
    name: &'static str,
    /// Last refusal logged and the refusals since (a flood must not become a flood of log lines).
    log: Arc<std::sync::Mutex<(Option<Instant>, u64)>>,
}

impl ConnectionCap {
    /// At most `max` simultaneous connections (0 = unlimited); `name` appears in logs.
    pub fn new(name: &'static str, max: usize) -> ConnectionCap {
        let max = if max == 0 { UNLIMITED } else { max.min(UNLIMITED) };
        ConnectionCap {
            slots: Arc::new(Semaphore::new(max)),
            max,
            refusing: Arc::new(Semaphore::new(REFUSALS_IN_FLIGHT)),
            name,
            log: Arc::default(),
        }
    }

    /// A slot for one connection, held until the permit is dropped; `None` at the cap.
    pub fn try_admit(&self) -> Option<OwnedSemaphorePermit> {
        self.slots.clone().try_acquire_owned().ok()
    }

    /// Connections admitted and not yet closed.
    pub fn open(&self) -> usize {
        self.max - self.slots.available_permits()
    }

    /// Whether at least three quarters of the cap are in use (never when unlimited): listeners then shorten
    /// their timeouts, as Postfix does under stress, so idle clients give their slots back sooner.
    pub fn under_stress(&self) -> bool {
        self.max < UNLIMITED && self.open() * 4 >= self.max * 3
    }

    /// Answers `reply` on an over-cap connection and closes it, in the background. The client's first
    /// bytes (an HTTP request) are read and dropped before closing: closing with unread input resets the
    /// connection, and the client would likely see the reset instead of the reply. At most
    /// `REFUSALS_IN_FLIGHT` at once: beyond that the connection is just closed.
    /// Refusals are logged at most once a second (with the number since the last line).
    pub fn refuse(&self, mut tcp: TcpStream, reply: &'static [u8]) {
        self.log_refusal(Instant::now());
        let Ok(slot) = self.refusing.clone().try_acquire_owned() else {
            return;
        };
        tokio::spawn(async move {
            let _slot = slot;
            let _ = tokio::time::timeout(REFUSAL_TIME, async {
                tcp.write_all(reply).await?;
                tcp.shutdown().await?;
                let mut sink = [0u8; 4096];
                let mut left = 64 * 1024usize;
                while left > 0 {
                    let n = tcp.read(&mut sink).await?;
                    if n == 0 {
                        break;
                    }
                    left = left.saturating_sub(n);
                }
                io::Result::Ok(())
            })
            .await;
        });
    }

    /// Closes an over-cap connection without a reply (e.g. on an implicit-TLS port, where clear text would
    /// not be understood); logged like [`ConnectionCap::refuse`].
    pub fn drop_refused(&self, tcp: TcpStream) {
        self.log_refusal(Instant::now());
        drop(tcp);
    }

    fn log_refusal(&self, now: Instant) -> bool {
        let mut log = self.log.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        log.1 += 1;
        if log.0.is_some_and(|t| now.duration_since(t) < Duration::from_secs(1)) {
            return false;
        }
        tracing::warn!(
            listener = self.name,
            max = self.max,
            refused = log.1,
            "connections refused at the connection cap"
        );
        *log = (Some(now), 0);
        true
    }

    /// Waits until every admitted connection has closed, at most `within`; whether they all did.
    pub async fn drained(&self, within: Duration) -> bool {
        let all = u32::try_from(self.max).unwrap_or(u32::MAX);
        matches!(
            tokio::time::timeout(within, self.slots.acquire_many(all)).await,
            Ok(Ok(_))
        )
    }
}

/// Backs an accept loop off after errors; see the module doc.
#[derive(Debug)]
pub struct AcceptBackoff {
    name: &'static str,
    delay: Duration,
    last_log: Option<Instant>,
    unlogged: u64,
}

/// First sleep after an accept error.
const BACKOFF_MIN: Duration = Duration::from_millis(10);
/// Longest sleep between accepts while errors go on.
const BACKOFF_MAX: Duration = Duration::from_millis(100);

impl AcceptBackoff {
    /// A backoff for the listener called `name` (in logs).
    pub fn new(name: &'static str) -> AcceptBackoff {
        AcceptBackoff {
            name,
            delay: BACKOFF_MIN,
            last_log: None,
            unlogged: 0,
        }
    }

    /// The next accepted connection. Errors of one connection (reset before it was accepted) are skipped;
    /// others (`EMFILE`, `ENFILE`, `ENOBUFS`, …) sleep, growing from 10 to 100 ms, then try again.
    /// Cancel-safe, like [`TcpListener::accept`].
    pub async fn accept(&mut self, listener: &TcpListener) -> (TcpStream, std::net::SocketAddr) {
        loop {
            match listener.accept().await {
                Ok(accepted) => {
                    self.delay = BACKOFF_MIN;
                    return accepted;
                }
                Err(e) if is_connection_error(&e) => continue,
                Err(e) => {
                    self.log(&e, Instant::now());
                    tokio::time::sleep(self.delay).await;
                    self.delay = next_delay(self.delay);
                }
            }
        }
    }

    /// Logs `e` unless a line was logged less than a second ago (then it is counted for the next line).
    fn log(&mut self, e: &io::Error, now: Instant) -> bool {
        if self
            .last_log
            .is_some_and(|t| now.duration_since(t) < Duration::from_secs(1))
        {
            self.unlogged += 1;
            return false;
        }
        tracing::warn!(listener = self.name, error = %e, also = self.unlogged, "accept failed; backing off");
        self.last_log = Some(now);
        self.unlogged = 0;
        true
    }
}

fn next_delay(d: Duration) -> Duration {
    (d * 2).min(BACKOFF_MAX)
}

/// Errors that concern one connection only (hyper and tokio treat them alike): accept again at once.
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let mut d = BACKOFF_MIN;
        let mut seen = vec![d];
        for _ in 0..6 {
            d = next_delay(d);
            seen.push(d);
        }
        assert_eq!(seen[1], Duration::from_millis(20));
        assert_eq!(*seen.last().expect("delays"), BACKOFF_MAX);
        assert!(seen.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn accept_errors_are_logged_at_most_once_a_second() {
        let mut b = AcceptBackoff::new("test");
        let e = io::Error::from_raw_os_error(24); // EMFILE
        let t0 = Instant::now();
        assert!(b.log(&e, t0));
        assert!(!b.log(&e, t0 + Duration::from_millis(10)));
        assert!(!b.log(&e, t0 + Duration::from_millis(990)));
        assert_eq!(b.unlogged, 2);
        assert!(b.log(&e, t0 + Duration::from_millis(1001)));
        assert_eq!(b.unlogged, 0);
    }

    #[test]
    fn one_connection_errors_do_not_back_off() {
        assert!(is_connection_error(&io::Error::from(io::ErrorKind::ConnectionAborted)));
        assert!(!is_connection_error(&io::Error::from_raw_os_error(24)));
    }

    #[cfg(unix)]
    #[test]
    fn the_soft_limit_reaches_the_hard_limit() {
        let l = raise_fd_limit().expect("rlimit");
        assert!(l.now >= l.before);
        let again = raise_fd_limit().expect("rlimit");
        assert_eq!(again.before, l.now, "idempotent");
    }

    #[tokio::test]
    async fn the_cap_counts_and_gives_slots_back() {
        let cap = ConnectionCap::new("test", 2);
        let a = cap.try_admit().expect("first");
        let _b = cap.try_admit().expect("second");
        assert!(cap.try_admit().is_none());
        assert_eq!(cap.open(), 2);
        assert!(cap.under_stress());
        drop(a);
        assert!(!cap.under_stress(), "1 of 2 is below three quarters");
        assert_eq!(cap.open(), 1);
        assert!(!cap.drained(Duration::from_millis(10)).await);
        drop(_b);
        assert!(cap.drained(Duration::from_secs(1)).await);
        assert_eq!(ConnectionCap::new("unlimited", 0).open(), 0);
        let t0 = Instant::now();
        assert!(cap.log_refusal(t0));
        assert!(
            !cap.log_refusal(t0 + Duration::from_millis(500)),
            "at most one line a second"
        );
        assert!(cap.log_refusal(t0 + Duration::from_millis(1500)));
    }

    #[tokio::test]
    async fn an_over_cap_connection_reads_the_refusal() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let cap = ConnectionCap::new("test", 1);
        let client = tokio::spawn(async move {
            let mut c = TcpStream::connect(addr).await.expect("connect");
            c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await.expect("write");
            let mut got = Vec::new();
            c.read_to_end(&mut got).await.expect("read");
            got
        });
        let (tcp, _) = AcceptBackoff::new("test").accept(&listener).await;
        cap.refuse(tcp, b"HTTP/1.1 503 Service Unavailable\r\n\r\n");
        let got = client.await.expect("client");
        assert!(got.starts_with(b"HTTP/1.1 503"), "{got:?}");
    }
}
