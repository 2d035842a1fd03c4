//! The vocabulary of mailpush: addresses, ids, the message spec, statuses and event kinds, time,
//! the Tencent error-code enum, and the records the store keeps and the facade hands out (templates, batch
//! tasks, queue statuses, suppression lists, statistics, identities, SES v2 names, …). No I/O; every other
//! crate depends on this one.
//!
//! With the `sqlx` feature (enabled by `mailpush-store`) the records also derive `sqlx::FromRow` and the status
//! enums `sqlx::Type`, so the store reads them straight from its queries.

#![warn(missing_docs)]

pub mod account;
pub mod address;
pub mod batch;
pub mod clock;
pub mod console;
pub mod error_code;
pub mod identity;
pub mod ids;
pub mod limits;
pub mod message;
pub mod queue;
pub mod reputation;
pub mod retention;
pub mod sesv2;
pub mod sources;
pub mod stats;
pub mod status;
pub mod suppression;
pub mod templates;
pub mod text_scan;
pub mod time_zone;

pub use address::{AddressError, EmailAddress, Mailbox};
pub use clock::{Clock, ManualClock, OffsetFileClock, SharedClock, SystemClock};
pub use error_code::{ApiError, ErrorCode};
pub use ids::{AccountId, MessageId, TemplateId};
pub use message::{Attachment, MessageSpec};
pub use status::{DeliverStatus, EventKind, Lane, RecipientKind, SendStatus, TlsRequirement, TriggerType, UnknownCode};
pub use time_zone::{TimeZone, TimeZoneError};
