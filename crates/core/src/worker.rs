//! The delivery worker: takes fresh mail handed off by the group commit (already leased, MIME in memory) and
//! claims due deliveries with a lease, groups them per message and destination domain, hands each group to
//! the SMTP transport, and records every recipient's outcome in batches.
//!
//! Durability: an outcome is written only after the remote answered; a crash before that leaves the lease
//! to expire and the delivery is tried again (at-least-once towards the MX, never lost).

use mailpush_delivery::{Envelope, Outcome, RetryPolicy, SmtpTransport};
use mailpush_model::{MessageId, SharedClock};
use mailpush_store::{
    AttemptResult, ClaimRequest, ClaimedDelivery, DeliveryContent, DeliveryOutcome, HandOffs, HandedOff, Store,
};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, Semaphore, mpsc, watch};

/// Longest wait for a batch of permits when every one is busy, before claiming for the few that are free.
const CLAIM_GATHER: Duration = Duration::from_millis(5);

/// How a worker behaves; built from `Settings` by the facade.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Identifies this worker's leases.
    pub worker_id: String,
    /// Concurrent SMTP transactions.
    pub concurrency: usize,
    /// Deliveries claimed per round trip.
    pub batch: usize,
    /// Lease length.
    pub lease: Duration,
    /// Retry schedule and maximum age.
    pub retry: RetryPolicy,
    /// Longest sleep when the queue looks empty (other processes may enqueue without waking us).
    pub idle_poll: Duration,
    /// Domain warm-up ramp enforced at claim (`None` = no warm-up; see `core::warmup`).
    pub warmup: Option<mailpush_store::WarmupRamp>,
    /// Which source pool each sending domain goes out from.
    pub source_pools: crate::source_ips::PoolAssignments,
}

/// A running worker; dropping the handle does not stop it, `shutdown` does.
pub struct WorkerHandle {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl WorkerHandle {
    /// Stops claiming, lets in-flight transactions finish (bounded by their timeouts), flushes outcomes.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

struct Shared {
    store: Store,
    signer: crate::identity::MessageSigner,
    transport: SmtpTransport,
    clock: SharedClock,
    cfg: WorkerConfig,
}

/// Starts a worker on the current tokio runtime. `wake` is notified by in-process admissions; `signer`
/// DKIM-signs each message once, before its first transaction.
pub fn spawn(
    store: Store,
    transport: SmtpTransport,
    clock: SharedClock,
    cfg: WorkerConfig,
    wake: Arc<Notify>,
    signer: crate::identity::MessageSigner,
) -> WorkerHandle {
    let (stop, stop_rx) = watch::channel(false);
    let shared = Arc::new(Shared {
        store,
        signer,
        transport,
        clock,
        cfg,
    });
    let task = tokio::spawn(run(shared, wake, stop_rx));
    WorkerHandle { stop, task }
}

async fn run(shared: Arc<Shared>, wake: Arc<Notify>, mut stop: watch::Receiver<bool>) {
    let permits = Arc::new(Semaphore::new(shared.cfg.concurrency.max(1)));
    let (outcome_tx, outcome_rx) = mpsc::unbounded_channel::<DeliveryOutcome>();
    let writer = tokio::spawn(write_outcomes(shared.store.clone(), outcome_rx));
    // Fresh mail comes leased straight from the group commit. Not with warm-up: its allowances are counted
    // at claim.
    let mut hand_offs = shared.cfg.warmup.is_none().then(|| {
        shared.store.take_hand_offs(
            &shared.cfg.worker_id,
            shared.cfg.lease.as_millis() as i64,
            shared.cfg.concurrency.max(1),
        )
    });
    let mut backoff = Duration::from_millis(50);
    loop {
        if *stop.borrow() {
            break;
        }
        while let Some(h) = hand_offs.as_mut().and_then(HandOffs::try_recv) {
            start_hand_off(&shared, &permits, hand_offs.as_ref(), h, &outcome_tx).await;
        }
        // Claim only what we can start now: a claimed delivery waiting for a permit burns its lease.
        let free = permits.available_permits();
        if free == 0 {
            // Under load, wait for a quarter of the permits (or a moment) rather than one: claiming one
            // delivery per freed permit costs a write transaction (and an fsync) per mail.
            let refill = (shared.cfg.concurrency / 4).clamp(1, shared.cfg.batch.max(1)) as u32;
            tokio::select! {
                p = permits.clone().acquire_many_owned(refill) => drop(p),
                _ = tokio::time::sleep(CLAIM_GATHER) => {}
                _ = stop.changed() => {}
            }
            continue;
        }
        let now = shared.clock.now_ms();
        let req = ClaimRequest {
            worker: shared.cfg.worker_id.clone(),
            limit: shared.cfg.batch.min(free.max(1)),
            lease_ms: shared.cfg.lease.as_millis() as i64,
            now_ms: now,
        };
        let limit = req.limit;
        let claimed = match &shared.cfg.warmup {
            Some(ramp) => shared.store.claim_with_warmup(&req, ramp).await,
            None => shared.store.claim(req).await,
        };
        let claimed = match claimed {
            Ok(c) => {
                backoff = Duration::from_millis(50);
                // Fewer than asked: every due delivery is taken, so fresh mail no longer overtakes any.
                if c.len() < limit
                    && let Some(h) = &hand_offs
                {
                    h.caught_up();
                }
                c
            }
            Err(e) => {
                tracing::error!(error = %e, "claiming deliveries failed; backing off");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = stop.changed() => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        if claimed.is_empty() {
            let sleep = match shared.store.next_due_ms().await {
                Ok(Some(due)) => Duration::from_millis((due - shared.clock.now_ms()).clamp(1, i64::MAX) as u64),
                _ => shared.cfg.idle_poll,
            }
            .min(shared.cfg.idle_poll);
            let deadline = tokio::time::Instant::now() + sleep;
            // Hand-offs are served while waiting: they need no claim, so they do not end the wait.
            loop {
                tokio::select! {
                    _ = wake.notified() => break,
                    _ = tokio::time::sleep_until(deadline) => break,
                    _ = stop.changed() => break,
                    h = next_hand_off(&mut hand_offs) => match h {
                        Some(h) => start_hand_off(&shared, &permits, hand_offs.as_ref(), h, &outcome_tx).await,
                        None => hand_offs = None,
                    },
                }
            }
            continue;
        }
        let groups = group_by_message_and_domain(claimed);
        let Some(mut contents) = ClaimContents::load(&shared, &groups).await else {
            // Leave the leases to expire; another round will retry the read.
            continue;
        };
        for group in groups {
            let Ok(permit) = permits.clone().acquire_owned().await else {
                break;
            };
            let content = contents.take(&group);
            let shared = shared.clone();
            let tx = outcome_tx.clone();
            tokio::spawn(async move {
                deliver_group(&shared, group, content, &tx).await;
                drop(permit);
            });
        }
    }
    // No more hand-offs; the ones already leased to us go out now rather than wait for their lease to expire.
    if let Some(mut h) = hand_offs.take() {
        h.close();
        while let Some(one) = h.try_recv() {
            start_hand_off(&shared, &permits, Some(&h), one, &outcome_tx).await;
        }
    }
    // Wait for in-flight transactions: taking every permit means every task has finished.
    let _ = permits.acquire_many(shared.cfg.concurrency.max(1) as u32).await;
    drop(outcome_tx);
    let _ = writer.await;
}

/// The next hand-off; never, without a receiver.
async fn next_hand_off(hand_offs: &mut Option<HandOffs>) -> Option<HandedOff> {
    match hand_offs {
        Some(h) => h.recv().await,
        None => std::future::pending().await,
    }
}

/// Starts the deliveries of a handed-off message, one task per destination domain, as permits free up.
async fn start_hand_off(
    shared: &Arc<Shared>,
    permits: &Arc<Semaphore>,
    hand_offs: Option<&HandOffs>,
    h: HandedOff,
    outcome_tx: &mpsc::UnboundedSender<DeliveryOutcome>,
) {
    let groups = group_by_message_and_domain(h.deliveries);
    let last = groups.len().saturating_sub(1);
    let mut body = Some(h.body);
    for (i, group) in groups.into_iter().enumerate() {
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        if let Some(h) = hand_offs {
            h.started(group.len());
        }
        let shared = shared.clone();
        let tx = outcome_tx.clone();
        // Copied only for a message with several destination domains; the last group takes the MIME itself.
        let body = if i == last { body.take() } else { body.clone() }.unwrap_or_default();
        let content = DeliveryContent {
            body,
            personal: Vec::new(),
        };
        tokio::spawn(async move {
            deliver_group(&shared, group, Some(content), &tx).await;
            drop(permit);
        });
    }
}

fn group_by_message_and_domain(claimed: Vec<ClaimedDelivery>) -> Vec<Vec<ClaimedDelivery>> {
    let mut index: HashMap<(MessageId, String), usize> = HashMap::new();
    let mut groups: Vec<Vec<ClaimedDelivery>> = Vec::new();
    for d in claimed {
        let key = (d.message_id.clone(), d.domain.clone());
        match index.get(&key) {
            Some(&i) => groups[i].push(d),
            None => {
                index.insert(key, groups.len());
                groups.push(vec![d]);
            }
        }
    }
    groups
}

/// The content of a claim's messages, read in one round trip (a statement per 100 messages) rather than one
/// per message, and handed to their domain groups.
struct ClaimContents {
    contents: HashMap<MessageId, DeliveryContent>,
    /// Groups of each message not yet given their content: the last one takes it, the others get a copy.
    groups_left: HashMap<MessageId, usize>,
}

impl ClaimContents {
    /// `None` when the read failed (logged).
    async fn load(shared: &Shared, groups: &[Vec<ClaimedDelivery>]) -> Option<ClaimContents> {
        let mut wanted: Vec<(MessageId, Vec<String>)> = Vec::new();
        let mut index: HashMap<&MessageId, usize> = HashMap::new();
        let mut groups_left: HashMap<MessageId, usize> = HashMap::new();
        for group in groups {
            let Some(first) = group.first() else { continue };
            let i = *index.entry(&first.message_id).or_insert_with(|| {
                wanted.push((first.message_id.clone(), Vec::new()));
                wanted.len() - 1
            });
            wanted[i].1.extend(group.iter().map(|d| d.recipient.clone()));
            *groups_left.entry(first.message_id.clone()).or_insert(0) += 1;
        }
        match shared.store.delivery_contents(&wanted).await {
            Ok(contents) => Some(ClaimContents { contents, groups_left }),
            Err(e) => {
                tracing::error!(error = %e, messages = wanted.len(), "loading the content of claimed mail failed");
                None
            }
        }
    }

    /// The content for `group` (`None`: the message has none any more).
    fn take(&mut self, group: &[ClaimedDelivery]) -> Option<DeliveryContent> {
        let id = &group.first()?.message_id;
        let left = self.groups_left.get_mut(id)?;
        *left = left.saturating_sub(1);
        if *left == 0 {
            self.contents.remove(id)
        } else {
            self.contents.get(id).cloned()
        }
    }
}

/// Delivers one group with its message's `content` (`None`: the content is gone, the deliveries are dropped).
async fn deliver_group(
    shared: &Shared,
    group: Vec<ClaimedDelivery>,
    content: Option<DeliveryContent>,
    tx: &mpsc::UnboundedSender<DeliveryOutcome>,
) {
    let Some(first) = group.first() else { return };
    // Tracked mail and mail with an unsubscribe link has a body per recipient (see core::engage): each such
    // recipient gets its own transaction and signature; the others share the message body.
    let (body, personal) = match content {
        Some(c) => (c.body, c.personal.into_iter().collect::<HashMap<String, Vec<u8>>>()),
        None => {
            // The body is purged only when every recipient is final, so this is damage, not a race.
            let now = shared.clock.now_ms();
            for d in group {
                let _ = tx.send(outcome(
                    &d,
                    now,
                    AttemptResult::Dropped {
                        reason: "message content is missing".into(),
                    },
                    None,
                ));
            }
            return;
        }
    };
    if !personal.is_empty() {
        let (mine, rest): (Vec<ClaimedDelivery>, Vec<ClaimedDelivery>) =
            group.into_iter().partition(|d| personal.contains_key(&d.recipient));
        for d in mine {
            let sign_id = MessageId::from_stored(format!("{}/{}", d.message_id.as_str(), d.recipient));
            let own = personal.get(&d.recipient).cloned().unwrap_or_default();
            transmit(shared, vec![d], &sign_id, own, tx).await;
        }
        if let Some(first) = rest.first() {
            let id = first.message_id.clone();
            transmit(shared, rest, &id, body, tx).await;
        }
        return;
    }
    let id = first.message_id.clone();
    transmit(shared, group, &id, body, tx).await;
}

/// Signs `body` (cached under `sign_id`), sends it to the group's recipients in one transaction and queues
/// their outcomes.
async fn transmit(
    shared: &Shared,
    group: Vec<ClaimedDelivery>,
    sign_id: &MessageId,
    body: Vec<u8>,
    tx: &mpsc::UnboundedSender<DeliveryOutcome>,
) {
    let Some(first) = group.first() else { return };
    // Signed once per message: the other domain groups of the same message reuse the signature.
    let body = shared
        .signer
        .sign(
            sign_id,
            first.account_id,
            &first.envelope_from,
            &body,
            sign_priority(first.lane),
        )
        .await;
    let envelope = Envelope {
        mail_from: first.envelope_from.clone(),
        rcpt_to: group.iter().map(|d| d.recipient.clone()).collect(),
        smtputf8: group.iter().any(|d| !d.recipient.is_ascii()) || !first.envelope_from.is_ascii(),
    };
    let pool = shared
        .cfg
        .source_pools
        .pool_for(first.account_id, &first.envelope_from)
        .await;
    let report = shared
        .transport
        .send_from_pool(&first.domain, pool.as_deref(), &envelope, &body)
        .await;
    let now = shared.clock.now_ms();
    hold_deadlines(shared, &group, &report, now).await;
    let mut by_rcpt: HashMap<&str, &Outcome> = HashMap::new();
    for r in &report.outcomes {
        by_rcpt.insert(r.rcpt.as_str(), &r.outcome);
    }
    for d in &group {
        let result = match by_rcpt.get(d.recipient.as_str()) {
            Some(Outcome::Delivered { reply }) => AttemptResult::Delivered { reply: reply.clone() },
            Some(Outcome::Bounced { reply }) => refused(shared, d, now, reply),
            Some(Outcome::Deferred { reply }) => defer_or_give_up(shared, d, now, reply),
            Some(Outcome::Throttled { reply, retry_after }) => defer_after(d, now, reply, *retry_after),
            // Not an attempt that failed: every source address is at today's warm-up allowance. Until tomorrow,
            // whatever the retry deadline (`hold_deadlines` moved it by the time held).
            Some(Outcome::Held { reply }) => AttemptResult::Deferred {
                reply: reply.clone(),
                retry_at_ms: crate::source_ips::warmup_retry_at(now),
            },
            None => defer_or_give_up(shared, d, now, "no outcome reported by the transport"),
        };
        let _ = tx.send(outcome(d, now, result, report.mx.clone()));
    }
}

/// Trigger mail's signatures jump the signing pool's queue, as its deliveries jump the queue's.
fn sign_priority(lane: i32) -> mailpush_identity::SignPriority {
    if lane == mailpush_model::TriggerType::Trigger.lane() {
        mailpush_identity::SignPriority::Urgent
    } else {
        mailpush_identity::SignPriority::Normal
    }
}

/// A refusal, classified by RFC 3463 (`mailpush_reputation::classify`): only an address the remote says cannot
/// receive mail is a hard bounce (blacklisted); other permanent refusals (mailbox full, too big, policy) are
/// soft bounces, and a 5xx reply carrying a 4.x.x enhanced code is retried. The transport's deferrals are never
/// escalated: it also defers session-level 5xx replies (a 554 greeting) that say nothing about the recipient.
fn refused(shared: &Shared, d: &ClaimedDelivery, now: i64, reply: &str) -> AttemptResult {
    use mailpush_reputation::Verdict;
    match mailpush_reputation::classify(reply).verdict {
        Verdict::HardBounce => AttemptResult::Rejected {
            reply: reply.to_string(),
        },
        Verdict::Deferred => defer_or_give_up(shared, d, now, reply),
        Verdict::SoftBounce | Verdict::Delivered => AttemptResult::SoftBounced {
            reply: reply.to_string(),
        },
    }
}

fn defer_or_give_up(shared: &Shared, d: &ClaimedDelivery, now: i64, reply: &str) -> AttemptResult {
    let attempts = (d.attempts.max(0) as u32).saturating_add(1);
    let retry_at = now.saturating_add(shared.cfg.retry.delay_after(attempts).as_millis() as i64);
    if retry_at > d.expires_ms {
        AttemptResult::Expired {
            reply: format!("gave up after {attempts} attempts; last reply: {reply}"),
        }
    } else {
        AttemptResult::Deferred {
            reply: reply.to_string(),
            retry_at_ms: retry_at,
        }
    }
}

/// Deferred by rate limiting (the receiver's or our shaping): again after `retry_after`, within the deadline.
fn defer_after(d: &ClaimedDelivery, now: i64, reply: &str, retry_after: Duration) -> AttemptResult {
    let retry_at = now.saturating_add(retry_after.as_millis() as i64);
    if retry_at > d.expires_ms {
        AttemptResult::Expired {
            reply: format!("gave up at the retry deadline; last reply: {reply}"),
        }
    } else {
        AttemptResult::Deferred {
            reply: reply.to_string(),
            retry_at_ms: retry_at,
        }
    }
}

/// Mail held for warm-up waits until the next UTC day: its message's retry deadline moves by that wait, so the
/// hold never makes it expire. Done before the outcome is recorded (a crash in between only extends it).
async fn hold_deadlines(shared: &Shared, group: &[ClaimedDelivery], report: &mailpush_delivery::SendReport, now: i64) {
    let held = report
        .outcomes
        .iter()
        .any(|o| matches!(o.outcome, Outcome::Held { .. }));
    let Some(first) = group.first() else { return };
    if !held {
        return;
    }
    let wait = crate::source_ips::warmup_retry_at(now) - now;
    let expires = group.iter().map(|d| d.expires_ms).max().unwrap_or(first.expires_ms);
    if let Err(e) = shared
        .store
        .extend_message_expiry(first.message_id.as_str(), expires.saturating_add(wait))
        .await
    {
        tracing::warn!(error = %e, message = %first.message_id, "moving the retry deadline of held mail failed");
    }
}

fn outcome(d: &ClaimedDelivery, at_ms: i64, result: AttemptResult, remote: Option<String>) -> DeliveryOutcome {
    DeliveryOutcome {
        delivery_id: d.delivery_id,
        lease: d.lease,
        at_ms,
        result,
        remote,
    }
}

/// How long the outcome writer waits, after the first outcome of a batch, for more to join it.
const OUTCOME_LINGER: Duration = Duration::from_millis(10);

/// Batches outcomes into few transactions; on a database error it retries the same batch, because an
/// unrecorded delivered mail would be sent again when its lease expires.
async fn write_outcomes(store: Store, mut rx: mpsc::UnboundedReceiver<DeliveryOutcome>) {
    const MAX_BATCH: usize = 512;
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = rx.recv().await {
        batch.push(first);
        // Linger, unless a full batch is already waiting: every commit rewrites the pages it touches (table
        // tails, index leaves, the day's statistics row) into the WAL, so a commit of 20 outcomes costs little
        // more than one of 5. Nobody waits on an outcome's commit; a few milliseconds more before
        // GetSendEmailStatus shows it cost nothing. Measured (SMTP relay, 20 sessions): WAL writes per mail
        // −23 %, server CPU per mail −6 %.
        if rx.len() + 1 < MAX_BATCH {
            tokio::time::sleep(OUTCOME_LINGER).await;
        }
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(o) => batch.push(o),
                Err(_) => break,
            }
        }
        let mut delay = Duration::from_millis(100);
        for attempt in 0..20 {
            match store.record_outcomes(batch.clone()).await {
                Ok(applied) => {
                    let lost = applied.iter().filter(|a| !**a).count();
                    if lost > 0 {
                        tracing::warn!(lost, "outcomes ignored because their lease was taken over");
                    }
                    break;
                }
                Err(e) => {
                    tracing::error!(error = %e, attempt, "recording delivery outcomes failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(10));
                }
            }
        }
        batch.clear();
    }
}
