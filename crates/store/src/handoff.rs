//! Hand-off: fresh deliveries leased to this process's worker in the same transaction that stores them, and
//! passed to it in memory with the message's MIME.
//!
//! Without it, every fresh mail costs the worker a claim transaction (on SQLite's one writer, where it queues
//! with the enqueues) and a read of the content it just had in memory. The lease written with the message is
//! an ordinary lease: if the worker never gets to a delivery (it stopped, the process died), the lease expires
//! and any worker claims the delivery as usual, so the hand-off can lose nothing.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use tokio::sync::mpsc;

use crate::limits::LimitRefusal;
use crate::{ClaimedDelivery, LeaseToken, NewMessage, NewRecipient, StoreError};

/// The deliveries of one message handed to the worker, leased, with the MIME to send.
#[derive(Debug)]
pub struct HandedOff {
    /// Its admitted recipients, leased to the worker (lease token 1: the first lease of a new row).
    pub deliveries: Vec<ClaimedDelivery>,
    /// The message's MIME (unsigned).
    pub body: Vec<u8>,
}

/// Where the group commit sends hand-offs, and how many deliveries may wait there.
pub(crate) struct HandOffTarget {
    pub(crate) worker: String,
    pub(crate) lease_ms: i64,
    /// Deliveries handed off and not yet started by the worker.
    pending: AtomicUsize,
    /// At most this many `pending`: beyond it, fresh mail waits in the queue and is claimed.
    room: usize,
    /// Fresh mail went to the queue for want of room, and the worker's claims have not caught up with it yet.
    /// Until they have, no mail is handed off: hand-offs would overtake the queued mail, trigger mail
    /// included, for as long as admission outpaces delivery (the worker claims only once the hand-offs stop).
    behind: AtomicBool,
    tx: mpsc::UnboundedSender<HandedOff>,
}

impl HandOffTarget {
    /// Reserves room for `n` deliveries, or says no (the worker is behind, or gone).
    pub(crate) fn reserve(&self, n: usize) -> bool {
        if self.tx.is_closed() || self.behind.load(Ordering::Acquire) {
            return false;
        }
        let reserved = self
            .pending
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |p| {
                (p + n <= self.room).then_some(p + n)
            })
            .is_ok();
        if !reserved {
            self.behind.store(true, Ordering::Release);
        }
        reserved
    }

    /// Gives back reservations that were not used (the transaction failed or the message was refused).
    pub(crate) fn release(&self, n: usize) {
        self.pending.fetch_sub(n, Ordering::AcqRel);
    }

    /// Sends committed deliveries; a worker that is gone leaves them to their lease's expiry.
    pub(crate) fn send(&self, h: HandedOff) {
        let n = h.deliveries.len();
        if self.tx.send(h).is_err() {
            self.release(n);
        }
    }
}

/// Room in the hand-off taken by received deliveries that have not started yet; given back when dropped.
pub struct HandOffRoom {
    target: Arc<HandOffTarget>,
    n: usize,
}

impl Drop for HandOffRoom {
    fn drop(&mut self) {
        self.target.release(self.n);
    }
}

/// The worker's end of the hand-off (see [`crate::Queue::take_hand_offs`]).
pub struct HandOffs {
    rx: mpsc::UnboundedReceiver<HandedOff>,
    target: Arc<HandOffTarget>,
}

impl HandOffs {
    pub(crate) fn new(worker: String, lease_ms: i64, room: usize) -> (HandOffs, Arc<HandOffTarget>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let target = Arc::new(HandOffTarget {
            worker,
            lease_ms,
            pending: AtomicUsize::new(0),
            room: room.max(1),
            behind: AtomicBool::new(false),
            tx,
        });
        (
            HandOffs {
                rx,
                target: target.clone(),
            },
            target,
        )
    }

    /// The next hand-off; `None` once the store is closed.
    pub async fn recv(&mut self) -> Option<HandedOff> {
        self.rx.recv().await
    }

    /// A hand-off that is already waiting, if any.
    pub fn try_recv(&mut self) -> Option<HandedOff> {
        self.rx.try_recv().ok()
    }

    /// Takes no more hand-offs (the store queues fresh mail for a claim from now on); the ones already sent
    /// can still be received.
    pub fn close(&mut self) {
        self.rx.close();
    }

    /// The room `n` received deliveries keep taking until they start (drop it then: room for as many new
    /// ones). While they wait for a place in the worker's slots, no more fresh mail is handed off to wait
    /// beside them: it is queued, and claimed in order.
    pub fn room_for(&self, n: usize) -> HandOffRoom {
        HandOffRoom {
            target: self.target.clone(),
            n,
        }
    }

    /// The worker's last claim took every due delivery there was: fresh mail may be handed off again.
    pub fn caught_up(&self) {
        self.target.behind.store(false, Ordering::Release);
    }

    /// Whether fresh mail is queued for a claim instead of handed off (see [`HandOffs::caught_up`]).
    pub fn is_behind(&self) -> bool {
        self.target.behind.load(Ordering::Acquire)
    }
}

/// Which messages of a group commit are leased at insert, and to whom.
pub(crate) struct LeasePlan<'a> {
    pub(crate) worker: &'a str,
    pub(crate) lease_ms: i64,
    /// Per admitted message (in insert order): lease its admitted recipients.
    pub(crate) leased: Vec<bool>,
}

impl LeasePlan<'_> {
    /// The lease of a new delivery row of `m` (its index in the admitted messages), if it is leased.
    pub(crate) fn lease_until(&self, index: usize, m: &NewMessage) -> Option<i64> {
        self.leased
            .get(index)
            .copied()
            .unwrap_or(false)
            .then(|| m.request_ms.saturating_add(self.lease_ms))
    }
}

/// A message is handed off whole or not at all: only when it is due at once and has something to deliver.
pub(crate) fn eligible(m: &NewMessage) -> usize {
    if m.not_before_ms > m.request_ms {
        return 0;
    }
    m.recipients.iter().filter(|r| r.send_status.is_ok()).count()
}

/// The deliveries a committed, leased message hands to the worker; `ids` are the new rows' ids in recipient
/// order (admitted recipients only).
pub(crate) fn handed_off(m: NewMessage, ids: &[i64]) -> HandedOff {
    let NewMessage {
        id,
        account_id,
        envelope_from,
        lane,
        request_ms,
        expires_ms,
        body,
        recipients,
        tls_requirement,
        ..
    } = m;
    let deliveries = recipients
        .into_iter()
        .filter(|r| r.send_status.is_ok())
        .zip(ids)
        .map(|(r, &delivery_id)| ClaimedDelivery {
            delivery_id,
            lease: LeaseToken(1),
            message_id: id.clone(),
            account_id,
            recipient: r.address,
            domain: r.domain,
            kind: r.kind,
            envelope_from: envelope_from.clone(),
            lane,
            attempts: 0,
            request_ms,
            expires_ms,
            tls_requirement,
        })
        .collect();
    HandedOff { deliveries, body }
}

/// What the group commit asks of an insert: lease the deliveries of the messages it reserved room for.
#[derive(Clone, Copy)]
pub(crate) struct LeaseRequest<'a> {
    pub(crate) worker: &'a str,
    pub(crate) lease_ms: i64,
    /// Per message of the batch.
    pub(crate) granted: &'a [bool],
}

impl<'a> LeaseRequest<'a> {
    /// The plan for the admitted messages (those without a refusal), in order.
    pub(crate) fn plan(&self, refusals: &[Option<LimitRefusal>]) -> LeasePlan<'a> {
        LeasePlan {
            worker: self.worker,
            lease_ms: self.lease_ms,
            leased: refusals
                .iter()
                .enumerate()
                .filter(|(_, r)| r.is_none())
                .map(|(i, _)| self.granted.get(i).copied().unwrap_or(false))
                .collect(),
        }
    }
}

/// What a group-commit insert did, per message of the batch.
pub(crate) struct InsertedBatch {
    /// `None`: stored; otherwise the refusal, and nothing of the message was stored.
    pub(crate) refusals: Vec<Option<LimitRefusal>>,
    /// The ids of the deliveries leased at insert, in recipient order (empty when not leased).
    pub(crate) leased: Vec<Vec<i64>>,
}

impl InsertedBatch {
    /// From the refusals and the leased ids of the admitted messages (in order).
    pub(crate) fn new(refusals: Vec<Option<LimitRefusal>>, admitted_ids: Vec<Vec<i64>>) -> InsertedBatch {
        let mut admitted = admitted_ids.into_iter();
        let leased = refusals
            .iter()
            .map(|r| match r {
                None => admitted.next().unwrap_or_default(),
                Some(_) => Vec::new(),
            })
            .collect();
        InsertedBatch { refusals, leased }
    }
}

/// The leased rows an insert returned (`RETURNING id, message_id, recipient, kind, state`), to be matched to
/// their deliveries by key: RETURNING promises no order.
#[derive(Default)]
pub(crate) struct ReturnedLeases(HashMap<(String, String, String), Vec<i64>>);

impl ReturnedLeases {
    /// Collects the returned rows that are leased.
    pub(crate) fn from_rows<R: sqlx::Row>(rows: &[R]) -> Result<ReturnedLeases, StoreError>
    where
        for<'r> &'r str: sqlx::ColumnIndex<R>,
        for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
        for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
        for<'r> i32: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    {
        let mut by_key: HashMap<(String, String, String), Vec<i64>> = HashMap::new();
        for row in rows {
            if row.try_get::<i32, _>("state")? == crate::deliveries::DeliveryState::Leased.code() {
                by_key
                    .entry((
                        row.try_get("message_id")?,
                        row.try_get("recipient")?,
                        row.try_get("kind")?,
                    ))
                    .or_default()
                    .push(row.try_get("id")?);
            }
        }
        for ids in by_key.values_mut() {
            ids.reverse(); // taken in insert order
        }
        Ok(ReturnedLeases(by_key))
    }

    /// The id of the leased delivery of `message` to `r`.
    pub(crate) fn take(&mut self, message: &NewMessage, r: &NewRecipient) -> Result<i64, StoreError> {
        let key = (
            message.id.as_str().to_string(),
            r.address.clone(),
            r.kind.as_str().to_string(),
        );
        self.0
            .get_mut(&key)
            .and_then(Vec::pop)
            .ok_or_else(|| StoreError::Corrupt("a leased delivery's id was not returned by its insert".into()))
    }
}
