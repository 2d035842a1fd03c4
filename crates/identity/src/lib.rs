//! Sending identities for mailpush: a tenant may only send from a domain it has proven it owns, and every
//! mail it sends is DKIM-signed with that domain's key.
//!
//! - [`domain`]: domain names, and the host names to publish records at (relative to the registrable domain).
//! - [`keys`]: DKIM key generation ([`DkimOption`]: Tencent's RSA-1024 / RSA-2048 / dual plus mailpush's
//!   ed25519 and RSA-2048 + ed25519) and DKIM signing ([`keys::sign`]).
//! - [`body_hash`]: the DKIM body hash (relaxed canonicalisation, SHA-256) over whole runs of the body.
//! - [`normalize`]: the form a message is signed and delivered in (CRLF line ends, no blank lines with
//!   whitespace at the end of the body), where mail-auth's canonicalisation and RFC 6376's agree.
//! - [`records`]: the DNS records a domain must publish (DKIM, SPF, MX, DMARC) and how what DNS holds is judged.
//! - [`dns`]: the TXT/MX lookups, through hickory-resolver against the configured servers, no cache.
//! - [`pool`]: RSA DKIM signing on threads of its own (optionally at a lower CPU priority), trigger mail first.
//! - [`password`]: SMTP passwords of sender addresses (policy, argon2 hashing and verification).
//!
//! No storage here: `mailpush-store` keeps identities, `mailpush-core` wires the rules.

#![warn(missing_docs)]

pub mod body_hash;
pub mod dns;
pub mod domain;
pub mod keys;
pub mod normalize;
pub mod password;
pub mod pool;
pub mod records;
mod signature_header;

pub use dns::{DnsChecker, DnsError};
pub use domain::{normalize_domain, relative_host};
pub use keys::{DkimKeyPair, DkimOption, KeyAlgorithm, SigningKey, sign};
pub use normalize::{normalize_body, normalize_message};
pub use pool::{PoolSize, SignPriority, SigningPool};
pub use records::{
    CheckedRecord, PublishedKey, RecordConfig, RecordKind, RecordSpec, all_required_pass, check_records,
    expected_records, failure_reason,
};

/// Why an identity operation failed.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The domain name is not a usable host name.
    #[error("invalid domain: {0}")]
    InvalidDomain(String),
    /// Key generation, loading or signing failed.
    #[error("DKIM key: {0}")]
    Key(String),
    /// A password could not be hashed or a stored hash is unreadable.
    #[error("password hashing: {0}")]
    Password(String),
    /// DNS lookups could not be set up.
    #[error(transparent)]
    Dns(#[from] DnsError),
}
