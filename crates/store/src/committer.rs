//! Group commit: one task owns the enqueue write path. It takes the first waiting request, drains whatever
//! else is queued (up to the batch limit), writes them all in one transaction (one fsync), and only then
//! answers each caller. Under load, batches grow by themselves; idle, a lone request commits at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{mpsc, oneshot};

use crate::limits::AdmissionLimits;
use crate::{CommitStats, Db, NewMessage, StoreError};

/// One enqueue waiting for its commit.
pub(crate) struct Job {
    pub(crate) msg: NewMessage,
    /// Admission limits to check inside the transaction (`None`: unlimited, e.g. internal enqueues).
    pub(crate) limits: Option<AdmissionLimits>,
    pub(crate) reply: oneshot::Sender<Result<(), StoreError>>,
}

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
pub(crate) async fn run(db: Db, mut rx: mpsc::Receiver<Job>, max_batch: usize, retain_bodies: bool, stats: Arc<Stats>) {
    let max_batch = max_batch.max(1);
    let mut jobs = Vec::with_capacity(max_batch);
    loop {
        if rx.recv_many(&mut jobs, max_batch).await == 0 {
            break;
        }
        // A caller that gave up before its batch started gets nothing written: it never saw a MessageId,
        // so sending the mail anyway would only invite a duplicate when the client retries.
        let (mut msgs, replies): (Vec<(NewMessage, Option<AdmissionLimits>)>, Vec<_>) = jobs
            .drain(..)
            .filter(|j| !j.reply.is_closed())
            .map(|j| ((j.msg, j.limits), j.reply))
            .unzip();
        if msgs.is_empty() {
            continue;
        }
        match db.insert_batch(&mut msgs, retain_bodies).await {
            Ok(refusals) => {
                stats.add(refusals.iter().filter(|r| r.is_none()).count());
                for (reply, refusal) in replies.into_iter().zip(refusals) {
                    let _ = reply.send(match refusal {
                        None => Ok(()),
                        Some(r) => Err(StoreError::Limit(r)),
                    });
                }
            }
            Err(e) if msgs.len() == 1 => {
                if let Some(reply) = replies.into_iter().next() {
                    let _ = reply.send(Err(e));
                }
            }
            Err(e) => {
                // One bad message (a duplicate id, an unknown account) must not fail the others: retry singly.
                tracing::warn!(error = %e, batch = msgs.len(), "group commit failed; retrying the batch message by message");
                for (msg, reply) in msgs.into_iter().zip(replies) {
                    let mut one = [msg];
                    let result = match db.insert_batch(&mut one, retain_bodies).await {
                        Ok(r) => match r.into_iter().next().flatten() {
                            None => {
                                stats.add(1);
                                Ok(())
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
