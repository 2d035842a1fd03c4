//! The vocabulary of mailpush: addresses, ids, the message spec, statuses and event kinds, time,
//! and the Tencent error-code enum. No I/O; every other crate depends on this one.

#![warn(missing_docs)]

pub mod address;
pub mod clock;
pub mod error_code;
pub mod ids;
pub mod message;
pub mod status;
pub mod time_zone;

pub use address::{AddressError, EmailAddress, Mailbox};
pub use clock::{Clock, ManualClock, OffsetFileClock, SharedClock, SystemClock};
pub use error_code::{ApiError, ErrorCode};
pub use ids::MessageId;
pub use message::{Attachment, MessageSpec};
pub use status::{DeliverStatus, EventKind, Lane, RecipientKind, SendStatus, TlsRequirement, TriggerType, UnknownCode};
pub use time_zone::{TimeZone, TimeZoneError};
