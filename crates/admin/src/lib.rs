//! The operator's commands of mailpush, as a library: accounts, the template review queue, sending domains and
//! their source pools, recipient-list imports. Each command runs against a [`mailpush_core::Mailpush`] and
//! returns a [`Report`]: the text a person reads and the JSON a program reads. The `mailpush` binary only
//! parses its command line, calls one of these and prints the report.

#![warn(missing_docs)]

pub mod accounts;
pub mod batch;
pub mod console_users;
pub mod database;
pub mod dmarc;
pub mod domains;
pub mod messages;
pub mod receivers;
pub mod screening;
pub mod stats;
pub mod suppression;
mod table;
pub mod templates;

use mailpush_core::{AccountContext, CoreError, Mailpush};

/// The account named `name`, for the commands that act for one.
pub async fn account_context(core: &Mailpush, name: &str) -> Result<AccountContext, AdminError> {
    core.list_accounts()
        .await?
        .into_iter()
        .find(|a| a.name == name)
        .ok_or_else(|| AdminError::Invalid(format!("no account named {name}")))
}

/// A Unix time in ms as `YYYY-MM-DD HH:MM:SS` (calendar zone, `time_zone`), as the API writes times.
pub(crate) fn datetime(ms: i64) -> String {
    mailpush_core::format_time(ms)
}

/// What a command shows.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// For a person, one or more lines.
    pub text: String,
    /// For a program (`--json`).
    pub json: serde_json::Value,
    /// False when the command ran but found a problem the exit status must show (e.g. a domain that is not
    /// sendable).
    pub success: bool,
}

impl Report {
    fn new(text: String, json: serde_json::Value) -> Report {
        Report {
            text,
            json,
            success: true,
        }
    }
}

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The core refused the request, or failed; the message is the one API clients get.
    #[error("{0}")]
    Refused(String),
    /// A command-line value is unusable.
    #[error("{0}")]
    Invalid(String),
    /// A file could not be read.
    #[error("reading {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

impl From<CoreError> for AdminError {
    fn from(e: CoreError) -> Self {
        AdminError::Refused(e.to_api().message)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn datetimes_are_utc_civil_time() {
        mailpush_model::time_zone::set_current(mailpush_model::TimeZone::utc());
        assert_eq!(super::datetime(0), "1970-01-01 00:00:00");
        assert_eq!(super::datetime(1_796_524_088_000), "2026-12-06 02:28:08");
        assert_eq!(super::datetime(951_782_400_000), "2000-02-29 00:00:00");
    }
}
