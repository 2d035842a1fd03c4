//! The catch-all mailbox of `mailpush serve --dev`: every mail mailpush delivers in dev mode goes (through
//! `relay_host`) to [`MailboxServer`], an SMTP listener on loopback that accepts any recipient and stores each
//! message as a file under the data directory ([`Mailbox`]). [`MessageView`] parses a stored message (headers,
//! text, HTML), [`DkimChecker`] verifies its DKIM signatures with mail-auth against the dev DNS, and
//! [`router`] serves both as JSON under `/dev/mailbox/`.
//!
//! Nothing here is for production: no AUTH, no TLS, no size quota beyond [`MAX_MESSAGE_BYTES`].

#![warn(missing_docs)]

mod api;
mod dkim;
mod server;
mod store;
mod view;

pub use api::{ROUTE_PREFIX, router};
pub use dkim::{DkimChecker, DkimVerdict};
pub use server::MailboxServer;
pub use store::{Envelope, Mailbox, MessageDetail, MessageSummary, StoredMessage};
pub use view::{Header, MessageView};

/// Largest message the mailbox accepts (`552` beyond it).
pub const MAX_MESSAGE_BYTES: usize = 25 * 1024 * 1024;

/// What can go wrong with the dev mailbox.
#[derive(Debug, thiserror::Error)]
pub enum DevMailError {
    /// Reading or writing the mailbox directory, or a socket.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// An id that names no message of this mailbox (or is not an id at all).
    #[error("no message {0:?} in the mailbox")]
    NotFound(String),
    /// A stored envelope that is not the JSON the mailbox writes.
    #[error("envelope of {id}: {message}")]
    Corrupt {
        /// The message id.
        id: String,
        /// The parser's message.
        message: String,
    },
    /// The DKIM resolver could not be built.
    #[error("DKIM resolver: {0}")]
    Resolver(String),
}

impl DevMailError {
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> DevMailError {
        let what = what.into();
        move |source| DevMailError::Io { what, source }
    }
}
