//! Retention and database upkeep: what a pruning run deleted, and the SQLite file's pages.

/// What one batch (or a whole run) deleted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneCounts {
    /// Messages deleted.
    pub messages: u64,
    /// Deliveries (recipients) deleted.
    pub deliveries: u64,
    /// Delivery attempts deleted.
    pub attempts: u64,
    /// Events deleted.
    pub events: u64,
    /// SES v2 message rows (`ses_message_tags`) deleted.
    pub ses_messages: u64,
}

impl PruneCounts {
    /// Adds `o` to `self` (the counts of a run are the sum of its batches').
    pub fn add(&mut self, o: &PruneCounts) {
        self.messages += o.messages;
        self.deliveries += o.deliveries;
        self.attempts += o.attempts;
        self.events += o.events;
        self.ses_messages += o.ses_messages;
    }
}

/// The SQLite file's pages: what the file holds and how many of them are free.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FilePages {
    /// Pages in the file.
    pub pages: i64,
    /// Free pages (reusable, or to give back with the store's `release_free_pages`).
    pub free: i64,
    /// Bytes per page.
    pub page_size: i64,
    /// `PRAGMA auto_vacuum`: 0 none, 1 full, 2 incremental.
    pub auto_vacuum: i64,
}
