use std::net::SocketAddr;
use std::time::Duration;

/// Errors from starting or observing the test servers.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TestkitError {
    /// A listening socket could not be bound.
    #[error("cannot bind {addr}: {source}")]
    Bind {
        /// The address that was requested.
        addr: SocketAddr,
        /// The underlying socket error.
        #[source]
        source: std::io::Error,
    },

    /// The DNS authority could not start.
    #[error("DNS authority: {0}")]
    Dns(#[from] mailpush_devdns::DevDnsError),

    /// Any other socket error.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),

    /// Generating the self-signed certificate or building the TLS configuration failed.
    #[error("TLS setup failed: {0}")]
    Tls(String),

    /// `wait_for_*` gave up before enough messages arrived.
    #[error("timed out after {timeout:?} waiting for {wanted} messages (have {got})")]
    Timeout {
        /// How many messages the caller waited for.
        wanted: usize,
        /// How many had arrived when the wait gave up.
        got: usize,
        /// The timeout that elapsed.
        timeout: Duration,
    },
}
