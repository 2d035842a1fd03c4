//! Group read for admission: the recipient screens (blacklists and unsubscribes) of requests that arrive at
//! the same moment run as one statement.
//!
//! Every statement costs two thread hand-offs with sqlx's SQLite driver (and a round trip with PostgreSQL),
//! more than the index lookups themselves. A lone request is screened at once; while `MAX_IN_FLIGHT`
//! statements run, the requests that arrive wait and go together in the next one.

use std::sync::Arc;

use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::suppression::{RecipientScreen, RecipientScreenQuery};
use crate::{AccountId, Db, StoreError};

/// Screen statements running at once: enough to overlap one with the reader pool's work, few enough that
/// requests under load gather into batches.
const MAX_IN_FLIGHT: usize = 2;
/// Requests per statement at most.
const MAX_QUERIES: usize = 16;
/// Bound parameters per statement at most (SQLite's limit is 32,766; PostgreSQL's 65,535).
const MAX_PARAMS: usize = 30_000;

/// A [`RecipientScreenQuery`] that can wait in a queue.
pub(crate) struct OwnedScreenQuery {
    pub(crate) account: AccountId,
    pub(crate) sender_domain: String,
    pub(crate) recipients: Vec<String>,
    pub(crate) blacklist_keys: Vec<String>,
    pub(crate) bounce_since_ms: i64,
    pub(crate) now_ms: i64,
}

impl From<&RecipientScreenQuery<'_>> for OwnedScreenQuery {
    fn from(q: &RecipientScreenQuery<'_>) -> Self {
        OwnedScreenQuery {
            account: q.account,
            sender_domain: q.sender_domain.to_string(),
            recipients: q.recipients.to_vec(),
            blacklist_keys: q.blacklist_keys.to_vec(),
            bounce_since_ms: q.bounce_since_ms,
            now_ms: q.now_ms,
        }
    }
}

impl OwnedScreenQuery {
    fn params(&self) -> usize {
        2 * self.blacklist_keys.len() + self.recipients.len() + 5
    }
}

struct Job {
    query: OwnedScreenQuery,
    reply: oneshot::Sender<Result<RecipientScreen, StoreError>>,
}

/// The batcher's inbox.
pub(crate) struct Screens {
    tx: mpsc::UnboundedSender<Job>,
}

impl Screens {
    /// Starts the batcher on `db` (on the current Tokio runtime).
    /// Each statement is abandoned after `deadline` (a frozen connection must not hold a slot for ever).
    pub(crate) fn start(db: Db, deadline: std::time::Duration) -> Screens {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(db, rx, deadline));
        Screens { tx }
    }

    pub(crate) async fn screen(&self, query: OwnedScreenQuery) -> Result<RecipientScreen, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.tx.send(Job { query, reply }).map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }
}

/// Runs until the inbox's sender (the store) is gone.
async fn run(db: Db, mut rx: mpsc::UnboundedReceiver<Job>, deadline: std::time::Duration) {
    let in_flight = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let mut waiting: Vec<Job> = Vec::new();
    loop {
        // A slot first, then the jobs: while every slot is busy, jobs gather in the inbox.
        let Ok(permit) = in_flight.clone().acquire_owned().await else {
            return;
        };
        if waiting.is_empty() && rx.recv_many(&mut waiting, MAX_QUERIES).await == 0 {
            return;
        }
        while waiting.len() < MAX_QUERIES {
            match rx.try_recv() {
                Ok(j) => waiting.push(j),
                Err(_) => break,
            }
        }
        let mut params = 0;
        let take = waiting
            .iter()
            .take_while(|j| {
                params += j.query.params();
                params <= MAX_PARAMS
            })
            .count()
            .max(1);
        let batch: Vec<Job> = waiting.drain(..take).collect();
        let db = db.clone();
        tokio::spawn(async move {
            answer(&db, batch, deadline).await;
            drop(permit);
        });
    }
}

async fn answer(db: &Db, batch: Vec<Job>, deadline: std::time::Duration) {
    let (queries, replies): (Vec<OwnedScreenQuery>, Vec<_>) = batch.into_iter().map(|j| (j.query, j.reply)).unzip();
    match crate::health::deadline(deadline, crate::Suppression::recipient_screens_now(db, &queries)).await {
        Ok(screens) => {
            for (reply, screen) in replies.into_iter().zip(screens) {
                let _ = reply.send(Ok(screen));
            }
        }
        // Each request gets its own error (or answer): retried alone.
        Err(e) if queries.len() == 1 => {
            if let Some(reply) = replies.into_iter().next() {
                let _ = reply.send(Err(e));
            }
        }
        Err(e @ (StoreError::Unavailable(_) | StoreError::DiskFull(_))) => {
            // The database is out of reach: asking again query by query would only take longer.
            let reason = e.to_string();
            for reply in replies {
                let _ = reply.send(Err(StoreError::Unavailable(reason.clone())));
            }
        }
        Err(_) => {
            for (q, reply) in queries.into_iter().zip(replies) {
                let one = [q];
                let r = crate::health::deadline(deadline, crate::Suppression::recipient_screens_now(db, &one))
                    .await
                    .map(|mut s| s.pop().unwrap_or_default());
                let _ = reply.send(r);
            }
        }
    }
}
