//! The delivery worker: takes fresh mail handed off by the group commit (already leased, MIME in memory) and
//! claims due deliveries with a lease, groups them per message and destination domain, hands each group to
//! the SMTP transport, and records every recipient's outcome in batches.
//!
//! Durability: an outcome is written only after the remote answered; a crash before that leaves the lease
//! to expire and the delivery is tried again (at-least-once towards the MX, never lost).

use crate::Env;
use crate::error::CoreError;
use crate::identity::MessageSigner;
use crate::slot_shares::{FullShare, ShareTicket, SlotShares};
use crate::{source_ips, warmup};
use mailpush_delivery::{
    DestinationAdmission, DnsSettings, Envelope, MxResolver, Outcome, RetryPolicy, SmtpTransport, TlsPolicy,
    TransportConfig,
};
use mailpush_model::{MessageId, SharedClock};
use mailpush_store::Backend;
use mailpush_store::{
    AttemptResult, ClaimRequest, ClaimedDelivery, DeliveryContent, DeliveryOutcome, HandOffRoom, HandOffs, HandedOff,
    LeaseToken, Store,
};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc, watch};

/// At most one wake-up by other processes' trigger mail (PostgreSQL) per this long: it is claimed together.
const QUEUED_GATHER: Duration = Duration::from_millis(20);

/// Longest wait for a batch of permits when every one is busy, before claiming for the few that are free.
const CLAIM_GATHER: Duration = Duration::from_millis(5);

/// How long a delivery whose account or destination is at its share of the slots waits for a place before it
/// is deferred ([`SHARE_RETRY`]); it holds no slot meanwhile. One whose account's mail moves fast enough waits
/// another such period instead (see [`crate::slot_shares::ParkedPlace::account_moves`]).
const SHARE_PARK: Duration = Duration::from_secs(1);

/// How often a parked delivery looks for a place again.
const SHARE_POLL: Duration = Duration::from_millis(20);

/// When a delivery deferred for want of a share is tried again.
const SHARE_RETRY: Duration = Duration::from_secs(5);

/// How a worker behaves; built from `Settings` by the facade.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Identifies this worker's leases.
    pub worker_id: String,
    /// Concurrent SMTP transactions.
    pub concurrency: usize,
    /// Percent of `concurrency` one account's deliveries may hold at once.
    pub account_share: usize,
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

/// A running worker: `shutdown` stops claiming, lets in-flight transactions finish (bounded by their timeouts) and flushes outcomes.
pub type WorkerHandle = crate::background::BackgroundTask;

struct Shared {
    store: Store,
    signer: crate::identity::MessageSigner,
    transport: SmtpTransport,
    clock: SharedClock,
    cfg: WorkerConfig,
    /// Simulated feedback waiting for its delivery's outcome to be written.
    follow_ups: Arc<crate::simulator::FollowUps>,
}

/// The worker's delivery slots: a permit per transaction running, and the shares of accounts and destinations
/// with the deliveries parked for them (they hold a lease, so claims leave room for them).
struct Slots {
    permits: Arc<Semaphore>,
    shares: Arc<SlotShares>,
    /// The worker stops: parked deliveries wait no longer than their first period.
    stopping: AtomicBool,
}

impl Slots {
    /// Slots free for new claims.
    fn free(&self) -> usize {
        self.permits.available_permits().saturating_sub(self.shares.parked())
    }
}

/// The leases of the deliveries this worker holds, from their claim (or hand-off) until their outcome is
/// written. They are renewed every third of the lease, so no lease expires under a transaction still running
/// (a receiver that takes 5 minutes to answer the final dot used to get the message again from another claim
/// every lease period), and a short lease is safe: a dead worker's mail is taken over soon.
#[derive(Default)]
struct HeldLeases(Mutex<HashMap<i64, LeaseToken>>);

impl HeldLeases {
    fn hold(&self, deliveries: &[ClaimedDelivery]) {
        let mut held = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        held.extend(deliveries.iter().map(|d| (d.delivery_id, d.lease)));
    }

    /// Forgets these leases; one the delivery no longer has (claimed again since, with a new token) stays.
    fn release(&self, leases: impl IntoIterator<Item = (i64, LeaseToken)>) {
        let mut held = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        for (id, lease) in leases {
            if held.get(&id) == Some(&lease) {
                held.remove(&id);
            }
        }
    }

    fn snapshot(&self) -> Vec<(i64, LeaseToken)> {
        let held = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        held.iter().map(|(id, lease)| (*id, *lease)).collect()
    }
}

/// Renews the held leases every third of the lease until the worker stops.
async fn renew_leases(shared: Arc<Shared>, held: Arc<HeldLeases>) {
    let every = (shared.cfg.lease / 3).max(Duration::from_millis(100));
    loop {
        tokio::time::sleep(every).await;
        let leases = held.snapshot();
        if leases.is_empty() {
            continue;
        }
        let until = shared
            .clock
            .now_ms()
            .saturating_add(shared.cfg.lease.as_millis() as i64);
        if let Err(e) = shared.store.queue().renew_leases(&leases, until).await {
            tracing::error!(error = %e, leases = leases.len(), "renewing the leases of deliveries in progress failed");
        }
    }
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
        follow_ups: Arc::default(),
    });
    let task = tokio::spawn(run(shared, wake, stop_rx));
    WorkerHandle::new(stop, task)
}

async fn run(shared: Arc<Shared>, wake: Arc<Notify>, mut stop: watch::Receiver<bool>) {
    let permits = Arc::new(Semaphore::new(shared.cfg.concurrency.max(1)));
    let slots = Arc::new(Slots {
        permits: permits.clone(),
        shares: SlotShares::new(shared.cfg.concurrency, shared.cfg.account_share),
        stopping: AtomicBool::new(false),
    });
    let (outcome_tx, outcome_rx) = mpsc::unbounded_channel::<DeliveryOutcome>();
    let held = Arc::new(HeldLeases::default());
    let writer = tokio::spawn(write_outcomes(
        shared.store.clone(),
        outcome_rx,
        held.clone(),
        shared.follow_ups.clone(),
    ));
    let renewer = tokio::spawn(renew_leases(shared.clone(), held.clone()));
    // Fresh mail comes leased straight from the group commit. Not with warm-up: its allowances are counted
    // at claim.
    let mut hand_offs = shared.cfg.warmup.is_none().then(|| {
        shared.store.queue().take_hand_offs(
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
            held.hold(&h.deliveries);
            start_hand_off(&shared, &slots, hand_offs.as_ref(), h, &outcome_tx).await;
        }
        // Claim only what we can start now: a claimed delivery waiting for a permit burns its lease.
        let free = slots.free();
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
            Some(ramp) => shared.store.warmup().claim_with_warmup(&req, ramp).await,
            None => shared.store.queue().claim(req).await,
        };
        let claimed = match claimed {
            Ok(c) => {
                held.hold(&c);
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
            let sleep = match shared.store.queue().next_due_ms().await {
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
                        Some(h) => {
                            held.hold(&h.deliveries);
                            start_hand_off(&shared, &slots, hand_offs.as_ref(), h, &outcome_tx).await
                        }
                        None => hand_offs = None,
                    },
                }
            }
            continue;
        }
        let groups = group_by_message_and_domain(claimed);
        let Some(mut contents) = ClaimContents::load(&shared, &groups).await else {
            // Leave the leases to expire; another round will retry the read.
            held.release(groups.iter().flatten().map(|d| (d.delivery_id, d.lease)));
            continue;
        };
        for group in groups {
            let content = contents.take(&group);
            start_group(&shared, &slots, group, content, None, &outcome_tx).await;
        }
    }
    slots.stopping.store(true, Ordering::Release);
    // No more hand-offs; the ones already leased to us go out now rather than wait for their lease to expire.
    if let Some(mut h) = hand_offs.take() {
        h.close();
        while let Some(one) = h.try_recv() {
            held.hold(&one.deliveries);
            start_hand_off(&shared, &slots, Some(&h), one, &outcome_tx).await;
        }
    }
    // Parked deliveries start or are deferred within SHARE_PARK.
    while slots.shares.parked() > 0 {
        tokio::time::sleep(SHARE_POLL).await;
    }
    // Wait for in-flight transactions: taking every permit means every task has finished.
    let _ = permits.acquire_many(shared.cfg.concurrency.max(1) as u32).await;
    drop(outcome_tx);
    let _ = writer.await;
    renewer.abort();
}

/// The next hand-off; never, without a receiver.
async fn next_hand_off(hand_offs: &mut Option<HandOffs>) -> Option<HandedOff> {
    match hand_offs {
        Some(h) => h.recv().await,
        None => std::future::pending().await,
    }
}

/// Starts the deliveries of a handed-off message, one per destination domain, as [`start_group`] does.
async fn start_hand_off(
    shared: &Arc<Shared>,
    slots: &Arc<Slots>,
    hand_offs: Option<&HandOffs>,
    h: HandedOff,
    outcome_tx: &mpsc::UnboundedSender<DeliveryOutcome>,
) {
    let groups = group_by_message_and_domain(h.deliveries);
    let last = groups.len().saturating_sub(1);
    let mut body = Some(h.body);
    for (i, group) in groups.into_iter().enumerate() {
        let n = group.len();
        // Copied only for a message with several destination domains; the last group takes the MIME itself.
        let body = if i == last { body.take() } else { body.clone() }.unwrap_or_default();
        let content = DeliveryContent {
            body,
            personal: Vec::new(),
        };
        let room = hand_offs.map(|h| h.room_for(n));
        start_group(shared, slots, group, Some(content), room, outcome_tx).await;
    }
}

/// What a delivery may do now.
enum Admission {
    /// Take a slot, with this place in the shares.
    Start(ShareTicket),
    /// Its account or destination is at its share: wait a little without a slot.
    Park(FullShare),
    /// Its destination is backed off (it timed out): defer.
    Defer { reply: String, retry_after: Duration },
}

fn admission(shared: &Shared, slots: &Slots, d: &ClaimedDelivery) -> Admission {
    match shared.transport.admission(&d.domain) {
        DestinationAdmission::Suspended { reply, retry_after } => Admission::Defer { reply, retry_after },
        DestinationAdmission::Open { share } => match slots.shares.try_enter(d.account_id, &d.domain, share) {
            Ok(ticket) => Admission::Start(ticket),
            Err(full) => Admission::Park(full),
        },
    }
}

/// Gives one delivery (a message's recipients in one domain) a slot and runs it. A delivery whose account or
/// destination is at its share is parked for up to [`SHARE_PARK`] without a slot, then deferred, unless its
/// account's mail moves fast enough to give it a place soon; one towards a backed-off destination is deferred
/// at once. Returns when the delivery has started, parked or been deferred. A handed-off delivery keeps its
/// `room` in the hand-off until then, parked included, so that fresh mail is queued rather than parked beside it.
async fn start_group(
    shared: &Arc<Shared>,
    slots: &Arc<Slots>,
    group: Vec<ClaimedDelivery>,
    content: Option<DeliveryContent>,
    room: Option<HandOffRoom>,
    tx: &mpsc::UnboundedSender<DeliveryOutcome>,
) {
    let Some(first) = group.first() else { return };
    match admission(shared, slots, first) {
        Admission::Start(ticket) => {
            let Ok(permit) = slots.permits.clone().acquire_owned().await else {
                return;
            };
            drop(room);
            spawn_delivery(shared, group, content, tx, ticket, permit);
        }
        Admission::Defer { reply, retry_after } => defer_group(shared, &group, &reply, retry_after, tx),
        Admission::Park(_) => {
            let mut place = slots.shares.park(first.account_id);
            let (shared, slots, tx) = (shared.clone(), slots.clone(), tx.clone());
            tokio::spawn(async move {
                let mut deadline = tokio::time::Instant::now() + SHARE_PARK;
                let started = loop {
                    let Some(first) = group.first() else { break None };
                    match admission(&shared, &slots, first) {
                        Admission::Start(ticket) => break Some(ticket),
                        Admission::Defer { reply, retry_after } => {
                            defer_group(&shared, &group, &reply, retry_after, &tx);
                            break None;
                        }
                        // A busy account, not a stalled one: its places come back, so this one waits its turn
                        // instead of being sent to the back of the queue.
                        Admission::Park(FullShare::Account)
                            if tokio::time::Instant::now() >= deadline
                                && !slots.stopping.load(Ordering::Acquire)
                                && place.account_moves() =>
                        {
                            deadline += SHARE_PARK;
                        }
                        Admission::Park(_) if tokio::time::Instant::now() >= deadline => {
                            let reply = format!(
                                "4.7.0 deferred: the delivery slots this account or {} may hold are busy",
                                first.domain
                            );
                            defer_group(&shared, &group, &reply, SHARE_RETRY, &tx);
                            break None;
                        }
                        // Woken when a place is given back; the poll catches a destination that greeted meanwhile.
                        Admission::Park(_) => {
                            let _ = tokio::time::timeout(SHARE_POLL, slots.shares.released()).await;
                        }
                    }
                };
                let permit = match started {
                    Some(ticket) => slots.permits.clone().acquire_owned().await.ok().map(|p| (ticket, p)),
                    None => None,
                };
                drop((place, room));
                if let Some((ticket, permit)) = permit {
                    deliver_group(&shared, group, content, &tx).await;
                    drop((ticket, permit));
                }
            });
        }
    }
}

fn spawn_delivery(
    shared: &Arc<Shared>,
    group: Vec<ClaimedDelivery>,
    content: Option<DeliveryContent>,
    tx: &mpsc::UnboundedSender<DeliveryOutcome>,
    ticket: ShareTicket,
    permit: OwnedSemaphorePermit,
) {
    let (shared, tx) = (shared.clone(), tx.clone());
    tokio::spawn(async move {
        deliver_group(&shared, group, content, &tx).await;
        drop((ticket, permit));
    });
}

/// Defers every recipient of a group without sending (a backed-off destination, no share free): tried again
/// after `retry_after`, within the retry deadline.
fn defer_group(
    shared: &Shared,
    group: &[ClaimedDelivery],
    reply: &str,
    retry_after: Duration,
    tx: &mpsc::UnboundedSender<DeliveryOutcome>,
) {
    let now = shared.clock.now_ms();
    for d in group {
        let _ = tx.send(outcome(d, now, defer_after(d, now, reply, retry_after), None));
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
        match shared.store.queue().delivery_contents(&wanted).await {
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
    if crate::simulator::is_simulator_domain(&first.domain) {
        return simulate(shared, &group, tx);
    }
    // Signed once per message: the other domain groups of the same message reuse the signature.
    let signed = shared
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
        tls: first.tls_requirement,
    };
    let pool = shared
        .cfg
        .source_pools
        .pool_for(first.account_id, &first.envelope_from)
        .await;
    let started = std::time::Instant::now();
    let report = shared
        .transport
        .send_parts_from_pool(&first.domain, pool.as_deref(), &envelope, signed.outgoing())
        .await;
    let took = started.elapsed();
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
            Some(Outcome::Unknown { reply }) => unknown_status(shared, d, now, reply),
            Some(Outcome::Throttled { reply, retry_after }) => defer_after(d, now, reply, *retry_after),
            // Not an attempt that failed: every source address is at today's warm-up allowance. Until tomorrow,
            // whatever the retry deadline (`hold_deadlines` moved it by the time held).
            Some(Outcome::Held { reply }) => AttemptResult::Deferred {
                reply: reply.clone(),
                retry_at_ms: crate::source_ips::warmup_retry_at(now),
            },
            None => defer_or_give_up(shared, d, now, "no outcome reported by the transport"),
        };
        crate::telemetry::delivery_attempt(
            d,
            now,
            &result,
            crate::telemetry::AttemptTransport {
                mx: report.mx.as_deref(),
                source: report.source,
                tls: report.tls,
                took,
            },
        );
        let _ = tx.send(outcome(d, now, result, report.mx.clone()));
    }
}

/// The simulator's mailboxes (`crate::simulator`): nothing is sent; each recipient gets the outcome its mailbox
/// stands for, recorded like a real one, and a complaint follows the delivered outcome of `complaint@`.
fn simulate(shared: &Shared, group: &[ClaimedDelivery], tx: &mpsc::UnboundedSender<DeliveryOutcome>) {
    use crate::simulator::{self, Simulated};
    let now = shared.clock.now_ms();
    for d in group {
        let result = simulator::attempt(&d.recipient);
        if simulator::simulated(&d.recipient) == Some(Simulated::Complaint) {
            shared.follow_ups.complaint_after(
                d.delivery_id,
                d.lease,
                mailpush_store::NewComplaint {
                    message_id: d.message_id.clone(),
                    recipient: d.recipient.clone(),
                    at_ms: now,
                    reason: "abuse report from the mailpush simulator".into(),
                },
            );
        }
        crate::telemetry::delivery_attempt(
            d,
            now,
            &result,
            crate::telemetry::AttemptTransport {
                mx: Some(simulator::REMOTE),
                source: None,
                tls: false,
                took: std::time::Duration::ZERO,
            },
        );
        let _ = tx.send(outcome(d, now, result, Some(simulator::REMOTE.to_string())));
    }
}

/// Trigger mail's signatures jump the signing pool's queue, as its deliveries jump the queue's.
fn sign_priority(lane: mailpush_model::Lane) -> mailpush_identity::SignPriority {
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

/// Attempts after which a send whose final dot went unanswered is not repeated: the receiver may have each copy.
const MAX_UNKNOWN_ATTEMPTS: u32 = 3;

/// The message went out and the receiver never answered the final dot: it may have it. Retried on the schedule
/// (never lost), but once the delivery has been tried [`MAX_UNKNOWN_ATTEMPTS`] times it is not sent again, so a
/// receiver that swallows the dot gets a few copies at most, not one per retry for three days.
fn unknown_status(shared: &Shared, d: &ClaimedDelivery, now: i64, reply: &str) -> AttemptResult {
    let attempts = (d.attempts.max(0) as u32).saturating_add(1);
    if attempts >= MAX_UNKNOWN_ATTEMPTS {
        return AttemptResult::Expired {
            reply: format!(
                "not sent again after {attempts} attempts, the last with no reply to the message: the receiver may \
                 have it; last reply: {reply}"
            ),
        };
    }
    defer_or_give_up(shared, d, now, reply)
}

fn defer_or_give_up(shared: &Shared, d: &ClaimedDelivery, now: i64, reply: &str) -> AttemptResult {
    let attempts = (d.attempts.max(0) as u32).saturating_add(1);
    let delay = shared.cfg.retry.delay_after(attempts);
    defer_until(d, now, delay, reply, || {
        format!("gave up after {attempts} attempts; last reply: {reply}")
    })
}

/// Deferred by rate limiting (the receiver's or our shaping): again after `retry_after`, within the deadline.
fn defer_after(d: &ClaimedDelivery, now: i64, reply: &str, retry_after: Duration) -> AttemptResult {
    defer_until(d, now, retry_after, reply, || {
        format!("gave up at the retry deadline; last reply: {reply}")
    })
}

/// Deferred until `delay` from now, or expired with `gave_up` when that is past the delivery's deadline.
fn defer_until(
    d: &ClaimedDelivery,
    now: i64,
    delay: Duration,
    reply: &str,
    gave_up: impl FnOnce() -> String,
) -> AttemptResult {
    let retry_at = now.saturating_add(delay.as_millis() as i64);
    if retry_at > d.expires_ms {
        AttemptResult::Expired { reply: gave_up() }
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
        .sources()
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
async fn write_outcomes(
    store: Store,
    mut rx: mpsc::UnboundedReceiver<DeliveryOutcome>,
    held: Arc<HeldLeases>,
    follow_ups: Arc<crate::simulator::FollowUps>,
) {
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
        let mut written = None;
        for attempt in 0..20 {
            match store.queue().record_outcomes(batch.clone()).await {
                Ok(applied) => {
                    let lost = applied.iter().filter(|a| !**a).count();
                    if lost > 0 {
                        tracing::warn!(lost, "outcomes ignored because their lease was taken over");
                    }
                    written = Some(applied);
                    break;
                }
                Err(e) => {
                    tracing::error!(error = %e, attempt, "recording delivery outcomes failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(10));
                }
            }
        }
        match written {
            Some(applied) => follow_ups.run(&store, &batch, &applied).await,
            None => follow_ups.forget(&batch),
        }
        // Written (or given up on after every retry): the leases need no renewing any more.
        held.release(batch.iter().map(|o| (o.delivery_id, o.lease)));
        batch.clear();
    }
}

/// The DNSSEC trust anchor of DANE (`dane`, `dnssec_trust_anchor_file`); `None` when DANE is off.
pub(crate) fn dnssec_from_settings(s: &crate::Settings) -> Result<Option<mailpush_delivery::TrustAnchor>, CoreError> {
    if !s.dane {
        return Ok(None);
    }
    match &s.dnssec_trust_anchor_file {
        None => Ok(Some(mailpush_delivery::TrustAnchor::Root)),
        Some(path) => std::fs::read_to_string(path)
            .map(|keys| Some(mailpush_delivery::TrustAnchor::Keys(keys)))
            .map_err(|e| CoreError::Config(format!("dnssec_trust_anchor_file {}: {e}", path.display()))),
    }
}

/// The smarthost of `relay_host`, when one is set.
pub(crate) fn relay_from_settings(s: &crate::Settings) -> Result<Option<mailpush_delivery::Relay>, CoreError> {
    match &s.relay_host {
        None => Ok(None),
        Some(host) => mailpush_delivery::Relay::from_settings(
            host,
            &s.relay_tls,
            s.relay_username.as_deref(),
            s.relay_password.as_deref(),
        )
        .map(Some)
        .map_err(|e| CoreError::Config(format!("relay_host: {e}"))),
    }
}

/// What starting the delivery worker needs: the store, the settings, the wake-up signal of admission, the
/// source IP gate and the DKIM keys.
/// The CA certificates of `outbound_tls_ca_file` (DER), trusted besides the system's for verified outbound TLS.
/// The resolver of delivery (MX, MTA-STS and TLS-RPT records): the configured servers, cached, validating DNSSEC
/// with `dane`.
pub(crate) fn delivery_resolver(s: &crate::Settings) -> Result<MxResolver, CoreError> {
    MxResolver::new(&DnsSettings {
        servers: s.dns_servers.clone(),
        timeout: Duration::from_secs(5),
        cache: true,
        dnssec: dnssec_from_settings(s)?,
    })
    .map_err(|e| CoreError::Config(format!("DNS: {e}")))
}

pub(crate) fn outbound_trust_roots(s: &crate::Settings) -> Result<Vec<Vec<u8>>, CoreError> {
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    let Some(path) = &s.outbound_tls_ca_file else {
        return Ok(Vec::new());
    };
    let bad = |e: &dyn std::fmt::Display| CoreError::Config(format!("outbound_tls_ca_file {}: {e}", path.display()));
    let roots = CertificateDer::pem_file_iter(path)
        .map_err(|e| bad(&e))?
        .map(|c| c.map(|c| c.to_vec()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(&e))?;
    if roots.is_empty() {
        return Err(bad(&"no certificate found"));
    }
    Ok(roots)
}

pub(crate) struct Delivery {
    pub(crate) env: Env,
    pub(crate) wake: Arc<Notify>,
    pub(crate) source_ips: Arc<crate::source_ips::SourceIps>,
    pub(crate) identities: Arc<crate::identity::Identities>,
    /// Where the transport counts TLS outcomes (TLS-RPT); `None` when reporting is off.
    pub(crate) tls_recorder: Option<Arc<crate::tls_rpt::Recorder>>,
}

impl Delivery {
    /// Starts the delivery worker on the current runtime.
    pub(crate) async fn start(&self) -> Result<WorkerHandle, CoreError> {
        let s = &self.env.settings;
        let resolver = delivery_resolver(s)?;
        let tls = match s.outbound_tls.as_str() {
            "opportunistic" => TlsPolicy::Opportunistic,
            "required" => TlsPolicy::Required,
            "disabled" => TlsPolicy::Disabled,
            other => {
                return Err(CoreError::Config(format!(
                    "outbound_tls {other:?}: use opportunistic, required or disabled"
                )));
            }
        };
        let trust_roots = outbound_trust_roots(s)?;
        let mta_sts = crate::mta_sts::discovery(s, resolver.clone(), &trust_roots)?;
        let transport = SmtpTransport::with_policies(
            TransportConfig {
                helo_name: s.helo_name.clone(),
                port: s.delivery_port,
                connect_timeout: Duration::from_secs(s.connect_timeout_secs),
                greeting_timeout: Duration::from_secs(s.greeting_timeout_secs),
                delivery_deadline: Duration::from_secs(s.delivery_deadline_secs),
                data_timeout: Duration::from_secs(s.data_timeout_secs),
                command_timeout: Duration::from_secs(s.command_timeout_secs),
                tls,
                source_ips: s.source_ips.clone(),
                source_pools: source_ips::named_pools(s)?,
                source_avoid: Duration::from_secs(s.source_avoid_secs),
                shaping: source_ips::shaping(s)?,
                // Keep as many idle connections per MX as deliveries can run at once: with the default 4, all
                // but 4 of `worker_concurrency` concurrent transactions opened (and QUIT) a connection each.
                max_idle_per_host: s.worker_concurrency.max(1),
                relay: relay_from_settings(s)?,
                tls_trust_roots: trust_roots,
                ..TransportConfig::default()
            },
            resolver,
            Some(self.source_ips.warmup_gate()?),
            mta_sts,
        );
        if let Some(recorder) = &self.tls_recorder {
            transport.report_tls_to(recorder.clone());
        }
        let retry = RetryPolicy {
            schedule: s.retry_schedule(),
            max_age: Duration::from_secs(s.max_delivery_seconds),
        };
        if self.env.store.backend() == Backend::Sqlite {
            // An embedded database has exactly one worker: leases left by a previous (killed) run are ours.
            let released = self.env.store.queue().release_leases(self.env.clock.now_ms()).await?;
            if released > 0 {
                tracing::info!(released, "took over deliveries leased by a previous run");
            }
        }
        // By default one thread per CPU, growing to two per CPU while signatures wait (see
        // `mailpush_identity::pool`): where signing is slow, the extra threads win it the CPU it lacks behind the
        // runtime threads; where it is fast, they would only take CPU from admission.
        let size = match s.dkim_sign_threads {
            0 => {
                let cpus = std::thread::available_parallelism().map_or(1, usize::from);
                mailpush_identity::PoolSize {
                    base: cpus,
                    max: 2 * cpus,
                }
            }
            n => mailpush_identity::PoolSize::fixed(n),
        };
        let signing_pool = mailpush_identity::SigningPool::start(size, s.dkim_sign_nice)?;
        let cfg = WorkerConfig {
            worker_id: format!("{}-{}", s.helo_name, std::process::id()),
            concurrency: s.worker_concurrency,
            account_share: usize::from(s.worker_account_share.clamp(1, 100)),
            batch: s.worker_batch,
            lease: Duration::from_secs(s.lease_seconds),
            retry,
            idle_poll: Duration::from_millis(500),
            warmup: warmup::ramp_from_settings(s)?,
            source_pools: source_ips::PoolAssignments::new(self.env.store.clone()),
        };
        // Other processes sharing a PostgreSQL database enqueue too; they wake this worker through it.
        let listener = self
            .env
            .store
            .queue()
            .wake_on_queued(self.wake.clone(), QUEUED_GATHER)
            .await?;
        let worker = spawn(
            self.env.store.clone(),
            transport,
            self.env.clock.clone(),
            cfg,
            self.wake.clone(),
            MessageSigner::new(self.identities.clone(), signing_pool),
        );
        Ok(match listener {
            Some(listener) => worker.with_helper(listener),
            None => worker,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claimed(id: i64, lease: i64) -> ClaimedDelivery {
        ClaimedDelivery {
            delivery_id: id,
            lease: LeaseToken(lease),
            message_id: MessageId::generate(),
            account_id: 1,
            recipient: "r@example.org".into(),
            domain: "example.org".into(),
            kind: mailpush_model::RecipientKind::To,
            envelope_from: "s@example.com".into(),
            lane: mailpush_model::Lane::Trigger,
            attempts: 0,
            request_ms: 0,
            expires_ms: 0,
            tls_requirement: mailpush_model::TlsRequirement::None,
        }
    }

    #[test]
    fn a_lease_taken_again_is_not_forgotten_with_the_old_one() {
        let held = HeldLeases::default();
        held.hold(&[claimed(1, 1), claimed(2, 1)]);
        // Delivery 1 was claimed again (token 2) before the outcome of its first claim was written.
        held.hold(&[claimed(1, 2)]);
        held.release([(1, LeaseToken(1)), (2, LeaseToken(1))]);
        assert_eq!(held.snapshot(), vec![(1, LeaseToken(2))]);
        held.release([(1, LeaseToken(2))]);
        assert!(held.snapshot().is_empty());
    }
}
