//! An embedded authoritative DNS server (hickory-server, UDP and TCP on loopback) answering from an in-memory
//! zone that its owner changes at runtime. `mailpush serve --dev` publishes its sending domain's records here
//! and points mailpush's own resolver (`dns_servers`) at it, so the normal verification, MX and DKIM code paths
//! run without real DNS; the test kit re-exports it for the end-to-end tests. With
//! [`DnsAuthority::enable_dnssec`] it signs its answers (as the root zone, under its own key), so DNSSEC
//! validation and DANE run against it too.

#![warn(missing_docs)]

mod authority;
mod dnssec;

pub use authority::{DnsAuthority, DnsMirror};

/// Re-exported so callers can name record types for [`DnsAuthority::remove`] without depending on
/// hickory-proto themselves.
pub use hickory_proto::rr::RecordType;

use std::net::SocketAddr;

/// Why the DNS server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DevDnsError {
    /// A listening socket could not be bound.
    #[error("cannot bind {addr}: {source}")]
    Bind {
        /// The address that was requested.
        addr: SocketAddr,
        /// The underlying socket error.
        #[source]
        source: std::io::Error,
    },
    /// No port was free for both UDP and TCP after several attempts.
    #[error("no port free for both UDP and TCP on {ip} after {attempts} attempts")]
    NoSharedPort {
        /// The address the DNS server was to listen on.
        ip: std::net::IpAddr,
        /// How many ports were tried.
        attempts: usize,
    },
    /// Any other socket error.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The DNSSEC signing key could not be made.
    #[error("DNSSEC: {0}")]
    Dnssec(String),
}
