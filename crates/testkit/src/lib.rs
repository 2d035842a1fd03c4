//! Test-only servers for mailpush integration tests and benchmarks.
//!
//! Everything here listens on real loopback sockets so the crates under test use their real
//! client libraries (mail-send, hickory-resolver) end to end; nothing is mocked.
//!
//! - [`SinkMx`]: a recording ESMTP server (STARTTLS with a generated or chosen certificate
//!   ([`SinkCertificate`]), PIPELINING, per-recipient scripted replies).
//! - [`DnsAuthority`]: an authoritative DNS server over UDP and TCP whose records tests change
//!   at runtime, DNSSEC-signed on request (`mailpush-devdns`, which dev mode runs too, re-exported).
//! - [`Tarpit`]: a receiver that accepts connections and never speaks.
//! - [`PolicyServer`]: an HTTPS host serving an MTA-STS policy file.
//! - [`ExternalDkimVerifiers`]: dkimpy, Mail::DKIM and OpenDKIM's verifier run on a message against the
//!   records a [`DnsAuthority`] serves.
//! - [`postgres::on_schema`]: a test case in a PostgreSQL schema of its own, dropped after it.
//!
//! Both servers are started from inside a tokio runtime and stop when dropped.

#![warn(missing_docs)]

mod dkim_verifiers;
mod error;
mod policy_server;
pub mod postgres;
mod sink;
mod tarpit;

pub use dkim_verifiers::{DkimVerdict, ExternalDkimVerifiers};
pub use error::TestkitError;
pub use mailpush_devdns::{DevDnsError, DnsAuthority, DnsMirror};
pub use policy_server::{PolicyAnswer, PolicyServer, ReceivedRequest};
pub use sink::{DEFAULT_MAX_MESSAGE_SIZE, ReceivedMessage, SinkCertificate, SinkConfig, SinkMx, SinkReply};
pub use tarpit::Tarpit;

/// Re-exported so tests can name record types for [`DnsAuthority::remove`] without depending
/// on hickory-proto themselves.
pub use mailpush_devdns::RecordType;
