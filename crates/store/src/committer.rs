//! Group commit: one task owns the enqueue write path. It takes the first waiting request, drains whatever
//! else is queued (up to the batch limit), writes them all in one transaction (one fsync), and only then
//! answers each caller. Under load, batches grow by themselves; idle, a lone request commits at once.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{mpsc, oneshot};

use crate::handoff::{self, HandOffTarget, LeaseRequest};
use crate::limits::AdmissionLimits;
use crate::{Db, NewMessage, StoreError};
use mailpush_model::Lane;

/// One enqueue waiting for its commit.
pub(crate) struct Job {
    pub(crate) msg: NewMessage,
    /// Admission limits to check inside the transaction (`None`: unlimited, e.g. internal enqueues).
    pub(crate) limits: Option<AdmissionLimits>,
    /// May be leased at insert and handed to this process's worker (see `handoff`).
    pub(crate) hand_off: bool,
    /// `Ok(true)`: committed and handed off; `Ok(false)`: committed, for a worker to claim.
    pub(crate) reply: oneshot::Sender<Result<bool, StoreError>>,
}

/// Where hand-offs go, once a worker takes them.
pub(crate) type HandOffSlot = Arc<Mutex<Option<Arc<HandOffTarget>>>>;

/// Counters behind `Store::commit_stats`.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    transactions: AtomicU64,
    messages: AtomicU64,
}

impl Stats {
    fn add(&self, messages: usize) {
        self.transactions.fetch_add(1, Ordering::Relaxed);
        self.messages.fetch_add(messages as u64, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> CommitStats {
        CommitStats {
            transactions: self.transactions.load(Ordering::Relaxed),
            messages: self.messages.load(Ordering::Relaxed),
        }
    }
}

/// Runs until every sender is gone (the store was closed or dropped) and the queue is drained.
pub(crate) async fn run(
    db: Db,
    mut rx: mpsc::Receiver<Job>,
    max_batch: usize,
    retain_bodies: bool,
    deadline: std::time::Duration,
    stats: Arc<Stats>,
    hand_offs: HandOffSlot,
) {
    let max_batch = max_batch.max(1);
    let mut jobs = Vec::with_capacity(max_batch);
    // PostgreSQL: the worker nodes of other processes learn of trigger mail (codes, password resets) this
    // process's worker was not handed, and claim it at once. Not of other mail: woken for every commit, each
    // worker would claim a few mails at a time, a transaction each, and deliver less (a fifth less at
    // 1,200 mails/s with two api and two worker nodes); that mail waits at most for their idle poll.
    let announcer = match &db {
        Db::Postgres { pool, .. } => Some(crate::pg::QueuedAnnouncer::start(pool.clone())),
        Db::Sqlite { .. } => None,
    };
    let announce = |stored_unhanded: bool| {
        if stored_unhanded && let Some(a) = &announcer {
            a.announce();
        }
    };
    loop {
        if rx.recv_many(&mut jobs, max_batch).await == 0 {
            break;
        }
        // A caller that gave up before its batch started gets nothing written: it never saw a MessageId,
        // so sending the mail anyway would only invite a duplicate when the client retries.
        let mut hand_off = Vec::with_capacity(jobs.len());
        let (mut msgs, replies): (Vec<(NewMessage, Option<AdmissionLimits>)>, Vec<_>) = jobs
            .drain(..)
            .filter(|j| !j.reply.is_closed())
            .map(|j| {
                hand_off.push(j.hand_off);
                ((j.msg, j.limits), j.reply)
            })
            .unzip();
        if msgs.is_empty() {
            continue;
        }
        let target = hand_offs.lock().unwrap_or_else(PoisonError::into_inner).clone();
        // Room is reserved before the transaction, message by message while it lasts; what a refused or
        // failed message reserved is given back.
        let granted: Vec<bool> = msgs
            .iter()
            .zip(&hand_off)
            .map(|((m, _), &wanted)| {
                let n = handoff::eligible(m);
                wanted && n > 0 && target.as_ref().is_some_and(|t| t.reserve(n))
            })
            .collect();
        let lease = target.as_ref().map(|t| LeaseRequest {
            worker: &t.worker,
            lease_ms: t.lease_ms,
            granted: &granted,
        });
        // Bounded: a frozen connection must not stall the write path for as long as the network hangs.
        match crate::health::deadline(deadline, db.insert_batch(&mut msgs, retain_bodies, lease)).await {
            Ok(done) => {
                stats.add(done.refusals.iter().filter(|r| r.is_none()).count());
                let handed: Vec<bool> = done.leased.iter().map(|ids| !ids.is_empty()).collect();
                announce(
                    msgs.iter()
                        .zip(done.refusals.iter().zip(&handed))
                        .any(|((m, _), (r, h))| r.is_none() && !h && m.lane == Lane::Trigger),
                );
                // Hand-offs first: a caller told "handed off" finds its mail in the worker's channel already.
                deliver_hand_offs(target.as_deref(), msgs, &granted, done.leased);
                for (reply, (refusal, handed)) in replies.into_iter().zip(done.refusals.into_iter().zip(&handed)) {
                    let _ = reply.send(match refusal {
                        None => Ok(*handed),
                        Some(r) => Err(StoreError::Limit(r)),
                    });
                }
            }
            // Out of time or out of space: retrying message by message would only fail the same way, slower
            // (and a timed-out batch may have committed after all).
            Err(e) if msgs.len() == 1 || matches!(e, StoreError::Unavailable(_) | StoreError::DiskFull(_)) => {
                release_all(target.as_deref(), &msgs, &granted);
                let mut replies = replies;
                let last = replies.pop();
                for reply in replies {
                    let _ = reply.send(Err(same_error(&e)));
                }
                if let Some(reply) = last {
                    let _ = reply.send(Err(e));
                }
            }
            Err(e) => {
                release_all(target.as_deref(), &msgs, &granted);
                // One bad message (a duplicate id, an unknown account) must not fail the others: retry singly,
                // and without hand-off (rare enough not to matter).
                tracing::warn!(error = %e, batch = msgs.len(), "group commit failed; retrying the batch message by message");
                for (msg, reply) in msgs.into_iter().zip(replies) {
                    let trigger = msg.0.lane == Lane::Trigger;
                    let mut one = [msg];
                    let result =
                        match crate::health::deadline(deadline, db.insert_batch(&mut one, retain_bodies, None)).await {
                            Ok(r) => match r.refusals.into_iter().next().flatten() {
                                None => {
                                    stats.add(1);
                                    announce(trigger);
                                    Ok(false)
                                }
                                Some(refusal) => Err(StoreError::Limit(refusal)),
                            },
                            Err(e) => Err(e),
                        };
                    let _ = reply.send(result);
                }
            }
        }
    }
}

/// Sends the committed, leased messages to the worker and gives back the room of the others.
fn deliver_hand_offs(
    target: Option<&HandOffTarget>,
    msgs: Vec<(NewMessage, Option<AdmissionLimits>)>,
    granted: &[bool],
    leased: Vec<Vec<i64>>,
) {
    let Some(target) = target else { return };
    for (((m, _), &granted), ids) in msgs.into_iter().zip(granted).zip(leased) {
        if !granted {
            continue;
        }
        let reserved = handoff::eligible(&m);
        if ids.is_empty() {
            target.release(reserved);
            continue;
        }
        target.release(reserved - ids.len().min(reserved));
        target.send(handoff::handed_off(m, &ids));
    }
}

fn release_all(target: Option<&HandOffTarget>, msgs: &[(NewMessage, Option<AdmissionLimits>)], granted: &[bool]) {
    let Some(target) = target else { return };
    for ((m, _), _) in msgs.iter().zip(granted).filter(|(_, g)| **g) {
        target.release(handoff::eligible(m));
    }
}

/// The error of a failed batch, for each of its callers (errors are not `Clone`: the kinds callers act on are
/// kept, anything else is reported as a database failure).
fn same_error(e: &StoreError) -> StoreError {
    match e {
        StoreError::Unavailable(m) => StoreError::Unavailable(m.clone()),
        StoreError::DiskFull(m) => StoreError::DiskFull(m.clone()),
        StoreError::Conflict(m) => StoreError::Conflict(m.clone()),
        StoreError::Invalid(m) => StoreError::Invalid(m.clone()),
        StoreError::Closed => StoreError::Closed,
        other => StoreError::Corrupt(other.to_string()),
    }
}

/// Group-commit counters since open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CommitStats {
    /// Enqueue transactions committed.
    pub transactions: u64,
    /// Messages committed by them.
    pub messages: u64,
}
