//! Warm-up of sending domains, enforced where deliveries are claimed, and the per-domain figures the
//! reputation-level evaluation reads.
//!
//! # The claim with warm-up ([`crate::Warmup::claim_with_warmup`])
//! Each (account, sending domain) has a `domain_warmup` row: its first sending day and how many deliveries used
//! the allowance of the current UTC day. One claim transaction, per lane (trigger lane 0 first):
//! 1. picks up to 4 × the wanted number of due deliveries in (due time, id) order — id order is acceptance
//!    order, so held mail keeps FIFO order when it becomes due at the next midnight;
//! 2. reads (PostgreSQL: locks `FOR UPDATE`, in (account, domain) order, so concurrent claimers serialize per
//!    domain and cannot deadlock) the counters of the picked deliveries' domains;
//! 3. decides in memory, in pick order ([`decide`]): a delivery whose domain still has allowance today is
//!    leased and counted; one whose domain used it up is *held* — it stays pending (state 0, its DeliverStatus
//!    unchanged), becomes due at the next UTC midnight and says why in `deliver_message`;
//! 4. writes the leases, the holds and the counters back, and commits.
//!
//! Held rows are moved out of the due range, so a held backlog is skipped once per day and never scanned again
//! by later claims: it cannot block trigger mail (its own lane, claimed first) nor other domains' mail.
//! Counting is per recipient per UTC day: a delivery counts when it is first leased on a day
//! (`deliveries.warmup_day_ms`), so a lease that expires and is claimed again, or a retry later the same day,
//! does not use allowance twice; a retry on a later day counts on that day.
//! Trigger mail may use the whole allowance, other mail all of it but `trigger_reserve_percent`, so codes and
//! password resets still find room after a day of marketing mail.

use std::collections::HashMap;

use mailpush_model::Lane;
use mailpush_model::clock::{DAY_MS, date_of, day_start};

use crate::sql::query;
use crate::{AccountId, Store, StoreError};

/// A warm-up ramp as the claim applies it: the allowance of each day since a domain's first sending day (index 0
/// = that day); after the last day, unlimited. Core builds it from `mailpush_warmup::WarmupPlan`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WarmupRamp {
    /// Daily allowances, positive and non-decreasing (validated by the warmup crate).
    pub days: Vec<u64>,
    /// Share of each day's allowance (percent, 0–100) only trigger mail (lane 0) may use.
    pub trigger_reserve_percent: u64,
}

impl WarmupRamp {
    /// The allowance on UTC day `day_ms` of a domain that first sent on UTC day `first_day_ms`; `None` = unlimited.
    pub fn allowance(&self, first_day_ms: i64, day_ms: i64) -> Option<i64> {
        let day = (day_ms.div_euclid(DAY_MS) - first_day_ms.div_euclid(DAY_MS)).max(0);
        let day = usize::try_from(day).ok()?;
        self.days.get(day).map(|a| i64::try_from(*a).unwrap_or(i64::MAX))
    }

    /// The part of `allowance` mail of `lane` may use: all of it for trigger mail, the rest minus the reserve.
    pub fn lane_cap(&self, allowance: i64, lane: Lane) -> i64 {
        if lane == Lane::Trigger {
            allowance
        } else {
            let reserve =
                allowance.saturating_mul(i64::try_from(self.trigger_reserve_percent.min(100)).unwrap_or(0)) / 100;
            allowance - reserve
        }
    }
}

/// A domain's warm-up row as stored (read by `GetSendQuota` and the metrics).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DomainWarmupRow {
    /// The sending domain.
    pub domain: String,
    /// UTC midnight of its first sending day, Unix ms.
    pub first_day_ms: i64,
    /// The counted UTC day, Unix ms.
    pub day_ms: i64,
    /// Deliveries that used that day's allowance.
    pub day_count: i64,
}

impl DomainWarmupRow {
    /// Deliveries that used the allowance of the UTC day containing `now_ms`.
    pub fn sent_on_day_of(&self, now_ms: i64) -> i64 {
        if self.day_ms == day_start(now_ms) {
            self.day_count
        } else {
            0
        }
    }
}

/// One sending domain's outcomes in a time range, from the event log (the reputation evaluation's input).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DomainOutcomes {
    /// The sending domain.
    pub domain: String,
    /// Delivered recipients.
    pub delivered: i64,
    /// Bounced recipients (hard and soft).
    pub bounced: i64,
    /// Hard bounces naming a bad address (enhanced code 5.1.x: no such user, bad domain).
    pub bad_address: i64,
    /// Complaints (spamreport events).
    pub complaints: i64,
}

/// A domain's warm-up counter while a claim decides (a `domain_warmup` row, not yet changed).
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct Counter {
    pub(crate) first_day_ms: i64,
    pub(crate) day_ms: i64,
    pub(crate) day_count: i64,
    #[sqlx(skip)]
    pub(crate) dirty: bool,
}

/// A `domain_warmup` row with its key.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct CounterRow {
    pub(crate) account_id: i64,
    pub(crate) domain: String,
    #[sqlx(flatten)]
    pub(crate) counter: Counter,
}

impl Counter {
    fn used_on(&self, today: i64) -> i64 {
        if self.day_ms == today { self.day_count } else { 0 }
    }
}

/// A picked delivery, as far as the decision needs it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct Candidate {
    pub(crate) id: i64,
    pub(crate) account_id: i64,
    pub(crate) sender_domain: String,
    #[sqlx(try_from = "i32")]
    pub(crate) lane: Lane,
    pub(crate) warmup_day_ms: i64,
}

/// What the claim does with one picked delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Lease it (its allowance is counted).
    Lease,
    /// Its domain used up today's allowance: keep it pending until the next UTC midnight, with this message.
    Hold(String),
    /// Leave it as it is (the claim is full; another claim takes it).
    Skip,
}

/// Decides one candidate against its domain's counter, in pick order. `room`: the claim still wants deliveries.
pub(crate) fn decide(c: &Candidate, counter: &mut Counter, ramp: &WarmupRamp, today: i64, room: bool) -> Verdict {
    // Already counted today (an expired lease claimed again, a retry later the same day): never twice.
    if c.warmup_day_ms == today {
        return if room { Verdict::Lease } else { Verdict::Skip };
    }
    let used = counter.used_on(today);
    if let Some(allowance) = ramp.allowance(counter.first_day_ms, today)
        && used >= ramp.lane_cap(allowance, c.lane)
    {
        return Verdict::Hold(format!(
            "held for warm-up: {} used today's allowance of {allowance}; queued for {} (UTC)",
            c.sender_domain,
            date_of(today + DAY_MS)
        ));
    }
    if !room {
        return Verdict::Skip;
    }
    counter.day_ms = today;
    counter.day_count = used + 1;
    counter.dirty = true;
    Verdict::Lease
}

/// Most candidates one lane's claim looks at: enough to move a held backlog out of the way quickly, bounded so
/// that one claim transaction stays short.
pub(crate) fn pick_limit(want: i64) -> i64 {
    want.saturating_mul(4).min(want.saturating_add(2_048))
}

/// Decides every candidate in order; returns the verdicts (same order).
pub(crate) fn decide_all(
    candidates: &[Candidate],
    counters: &mut HashMap<(i64, String), Counter>,
    ramp: &WarmupRamp,
    today: i64,
    want: usize,
) -> Vec<Verdict> {
    let mut leased = 0usize;
    candidates
        .iter()
        .map(|c| {
            let key = (c.account_id, c.sender_domain.clone());
            let counter = counters.entry(key).or_insert_with(|| Counter {
                first_day_ms: today,
                day_ms: today,
                day_count: 0,
                dirty: true,
            });
            let v = decide(c, counter, ramp, today, leased < want);
            if v == Verdict::Lease {
                leased += 1;
            }
            v
        })
        .collect()
}

/// Domain warm-up and reputation state ([`Store::warmup`]).
#[derive(Debug, Clone, Copy)]
pub struct Warmup<'a> {
    pub(crate) store: &'a Store,
}

impl Store {
    /// Warm-up: the warm-up claim, per-domain counters and levels.
    pub fn warmup(&self) -> Warmup<'_> {
        Warmup { store: self }
    }
}

impl Warmup<'_> {
    /// [`crate::Queue::claim`] with warm-up: leases at most each sending domain's allowance of the day (counted per
    /// (account, domain, UTC day) inside the claim transaction, so several workers sharing the database never
    /// exceed it together) and holds the rest until the next UTC midnight, in acceptance order. Trigger lane first.
    /// See the module docs of `warmup.rs`.
    pub async fn claim_with_warmup(
        self,
        r: &crate::ClaimRequest,
        ramp: &WarmupRamp,
    ) -> Result<Vec<crate::ClaimedDelivery>, StoreError> {
        self.store
            .guarded(crate::queue::claim(self.store.relaxed_writer(), r, Some(ramp)))
            .await
    }

    /// The account's sending domains' warm-up rows (first sending day, today's count), by domain.
    pub async fn domain_warmup(self, account: AccountId) -> Result<Vec<DomainWarmupRow>, StoreError> {
        query("SELECT domain, first_day_ms, day_ms, day_count FROM domain_warmup WHERE account_id = $1 ORDER BY domain")
            .bind(account)
            .fetch_all(self.store.guarded_reader())
            .await
    }

    /// Deliveries of the account held for warm-up, per sending domain.
    pub async fn held_by_domain(self, account: AccountId) -> Result<Vec<(String, i64)>, StoreError> {
        query(
            "SELECT sender_domain, COUNT(*) AS n FROM deliveries \
             WHERE account_id = $1 AND warmup_held = 1 AND state < 2 GROUP BY sender_domain",
        )
        .bind(account)
        .fetch_all(self.store.guarded_reader())
        .await
    }

    /// Recipients the account admitted per sending domain with request time in `[from_ms, to_ms)`.
    pub async fn domain_volume(
        self,
        account: AccountId,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        query(
            "SELECT sender_domain, COUNT(*) AS n FROM deliveries \
             WHERE account_id = $1 AND request_ms >= $2 AND request_ms < $3 AND send_status = 0 \
             GROUP BY sender_domain",
        )
        .bind(account)
        .bind(from_ms)
        .bind(to_ms)
        .fetch_all(self.store.guarded_reader())
        .await
    }

    /// Delivered / bounced / bad-address / complaint counts per sending domain from the event log, `[from_ms, to_ms)`.
    pub async fn domain_outcomes(
        self,
        account: AccountId,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<DomainOutcomes>, StoreError> {
        // Grouped per From address (one index probe of messages per event row), folded per domain here.
        let rows: Vec<(String, i32, i32, i64)> = query(
            "SELECT m.from_address, e.kind, \
             CASE WHEN e.bounce_type = 'hard_bounce' AND e.reason LIKE '%5.1._%' THEN 1 ELSE 0 END AS bad, \
             COUNT(*) AS n FROM events e JOIN messages m ON m.id = e.message_id \
             WHERE e.account_id = $1 AND e.at_ms >= $2 AND e.at_ms < $3 AND e.kind IN (1, 3, 6) \
             GROUP BY m.from_address, e.kind, \
             CASE WHEN e.bounce_type = 'hard_bounce' AND e.reason LIKE '%5.1._%' THEN 1 ELSE 0 END",
        )
        .bind(account)
        .bind(from_ms)
        .bind(to_ms)
        .fetch_all(self.store.guarded_reader())
        .await?;
        let mut by_domain: std::collections::BTreeMap<String, DomainOutcomes> = Default::default();
        for (from, kind, bad, n) in rows {
            let domain = from.rsplit_once('@').map_or("", |(_, d)| d).to_ascii_lowercase();
            let o = by_domain.entry(domain.clone()).or_insert_with(|| DomainOutcomes {
                domain,
                ..DomainOutcomes::default()
            });
            match kind {
                1 => o.delivered += n,
                3 => {
                    o.bounced += n;
                    if bad == 1 {
                        o.bad_address += n;
                    }
                }
                _ => o.complaints += n,
            }
        }
        Ok(by_domain.into_values().collect())
    }

    /// `(domain, level, evaluated_day_ms)` of the account's recorded reputation rows.
    pub async fn domain_reputation_state(self, account: AccountId) -> Result<Vec<(String, i64, i64)>, StoreError> {
        query("SELECT domain, level, evaluated_day_ms FROM domain_reputation WHERE account_id = $1")
            .bind(account)
            .fetch_all(self.store.guarded_reader())
            .await
    }

    /// Compare-and-set of a domain's level: sets `level` only if it is still `expected` and, with
    /// `evaluated_day = Some(day)`, only if that day was not evaluated yet (and marks it). True if this call changed
    /// the row, so of several workers evaluating at once exactly one acts.
    pub async fn change_domain_level(
        self,
        account: AccountId,
        domain: &str,
        expected: i64,
        level: i64,
        at_ms: i64,
        evaluated_day: Option<i64>,
    ) -> Result<bool, StoreError> {
        self.store
            .guarded(async {
                let writer = self.store.writer();
                query(
                    "INSERT INTO domain_reputation (account_id, domain, level, changed_ms) VALUES ($1, $2, 1, 0) \
                     ON CONFLICT (account_id, domain) DO NOTHING",
                )
                .bind(account)
                .bind(domain)
                .execute(writer)
                .await?;
                // Compare-and-set: of several workers evaluating at once, one changes the level.
                let sql = match evaluated_day {
                    None => {
                        "UPDATE domain_reputation SET level = $1, changed_ms = $2 \
                         WHERE account_id = $3 AND domain = $4 AND level = $5"
                    }
                    Some(_) => {
                        "UPDATE domain_reputation SET level = $1, \
                         changed_ms = CASE WHEN level = $1 THEN changed_ms ELSE $2 END, evaluated_day_ms = $6 \
                         WHERE account_id = $3 AND domain = $4 AND level = $5 AND evaluated_day_ms < $6"
                    }
                };
                let mut set = query(sql)
                    .bind(level)
                    .bind(at_ms)
                    .bind(account)
                    .bind(domain)
                    .bind(expected);
                if let Some(day) = evaluated_day {
                    set = set.bind(day);
                }
                set.execute_changed(writer).await
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_764_115_200_000; // a UTC midnight

    fn cand(id: i64, domain: &str, lane: Lane) -> Candidate {
        Candidate {
            id,
            account_id: 1,
            sender_domain: domain.into(),
            lane,
            warmup_day_ms: -1,
        }
    }

    #[test]
    fn allowance_and_reserve() {
        let ramp = WarmupRamp {
            days: vec![5, 10],
            trigger_reserve_percent: 20,
        };
        assert_eq!(ramp.allowance(T0, T0 + 5), Some(5));
        assert_eq!(ramp.allowance(T0, T0 + DAY_MS), Some(10));
        assert_eq!(ramp.allowance(T0, T0 + 2 * DAY_MS), None);
        assert_eq!(ramp.lane_cap(10, Lane::Trigger), 10);
        assert_eq!(ramp.lane_cap(10, Lane::Batch), 8);
    }

    #[test]
    fn holds_over_the_allowance_per_domain_and_counts_once_per_day() {
        let ramp = WarmupRamp {
            days: vec![2],
            trigger_reserve_percent: 0,
        };
        let mut counters = HashMap::new();
        let mut cs = vec![
            cand(1, "a", Lane::Batch),
            cand(2, "a", Lane::Batch),
            cand(3, "a", Lane::Batch),
            cand(4, "b", Lane::Batch),
        ];
        cs.push(Candidate {
            warmup_day_ms: T0,
            ..cand(5, "a", Lane::Batch)
        });
        let v = decide_all(&cs, &mut counters, &ramp, T0, 10);
        assert_eq!(v[0], Verdict::Lease);
        assert_eq!(v[1], Verdict::Lease);
        assert!(matches!(v[2], Verdict::Hold(_)));
        assert_eq!(v[3], Verdict::Lease, "another domain is not blocked");
        assert_eq!(v[4], Verdict::Lease, "already counted today");
        assert_eq!(counters[&(1, "a".to_string())].day_count, 2);
        // The claim is full: over-allowance rows are still held, the rest skipped uncounted.
        let mut counters = HashMap::new();
        let v = decide_all(&cs[..4], &mut counters, &ramp, T0, 1);
        assert_eq!(v[0], Verdict::Lease);
        assert_eq!(v[1], Verdict::Skip);
        assert_eq!(v[3], Verdict::Skip);
        assert_eq!(counters[&(1, "a".to_string())].day_count, 1);
    }
}
