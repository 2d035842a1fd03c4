//! Feedback policy without storage: what an SMTP reply means for the recipient ([`classify`], RFC 3463),
//! the signed VERP return paths and mailto-unsubscribe addresses that let asynchronous feedback be matched to
//! the message it is about ([`verp`]), and the parsers of the reports mailbox providers send back
//! ([`report`]: delivery status notifications, RFC 3464, and abuse feedback reports, RFC 5965; [`dmarc`]: DMARC
//! aggregate reports, RFC 7489).
//!
//! The store and the worker act on the results (events, blacklisting); this crate only decides.

#![warn(missing_docs)]

pub mod classify;
pub mod dmarc;
pub mod report;
pub mod verp;

pub use classify::{Category, Classification, EnhancedCode, Verdict, classify, classify_parts};
pub use dmarc::{AggregateReport, DmarcReportError, ReportRecord};
pub use report::{Complaint, DsnAction, DsnRecipient, InboundReport, Original, parse_report};
pub use verp::{InboundAddress, VerpKey};
