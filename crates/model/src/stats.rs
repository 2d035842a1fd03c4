//! Sending statistics: the counters of a day or a period (`GetStatisticsReport`).

/// The counters of one day, or of a period.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "sqlx", derive(sqlx::FromRow))]
pub struct StatCounters {
    /// Recipients requested (stored at enqueue, admitted or not).
    pub requested: i64,
    /// Recipients admitted to the queue (not refused at admission).
    pub accepted: i64,
    /// `delivered` events.
    pub delivered: i64,
    /// Recipients who opened (first `open` event per message and recipient).
    pub opened: i64,
    /// Recipients who clicked (first `click` event per message and recipient).
    pub clicked: i64,
    /// `bounce` events (hard and soft, synchronous and asynchronous).
    pub bounced: i64,
    /// `unsubscribe` events.
    pub unsubscribed: i64,
    /// `dropped` events (refused at admission or dropped by the worker).
    pub dropped: i64,
    /// `spamreport` events.
    pub complained: i64,
}

impl StatCounters {
    /// Adds `o` to `self`.
    pub fn add(&mut self, o: &StatCounters) {
        self.requested += o.requested;
        self.accepted += o.accepted;
        self.delivered += o.delivered;
        self.opened += o.opened;
        self.clicked += o.clicked;
        self.bounced += o.bounced;
        self.unsubscribed += o.unsubscribed;
        self.dropped += o.dropped;
        self.complained += o.complained;
    }
}
