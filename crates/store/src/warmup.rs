//! Warm-up of sending domains, enforced where deliveries are claimed (issue 5), and the per-domain figures the
//! reputation-level evaluation reads.
//!
//! # The claim with warm-up ([`crate::Store::claim_with_warmup`])
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

use mailpush_model::clock::{DAY_MS, date_of, day_start};

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
    pub fn lane_cap(&self, allowance: i64, lane: i32) -> i64 {
        if lane == 0 {
            allowance
        } else {
            let reserve =
                allowance.saturating_mul(i64::try_from(self.trigger_reserve_percent.min(100)).unwrap_or(0)) / 100;
            allowance - reserve
        }
    }
}

/// A domain's warm-up row as stored (read by `GetSendQuota` and the metrics).
#[derive(Debug, Clone, PartialEq, Eq)]
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

/// A domain's warm-up counter while a claim decides.
#[derive(Debug, Clone)]
pub(crate) struct Counter {
    pub(crate) first_day_ms: i64,
    pub(crate) day_ms: i64,
    pub(crate) day_count: i64,
    pub(crate) dirty: bool,
}

impl Counter {
    fn used_on(&self, today: i64) -> i64 {
        if self.day_ms == today { self.day_count } else { 0 }
    }
}

/// A picked delivery, as far as the decision needs it.
#[derive(Debug, Clone)]
pub(crate) struct Candidate {
    pub(crate) id: i64,
    pub(crate) account_id: i64,
    pub(crate) sender_domain: String,
    pub(crate) lane: i32,
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

/// The SQLite claim with warm-up (one IMMEDIATE transaction: the single writer serializes every claimer).
pub(crate) mod sqlite_claim {
    use std::collections::HashMap;

    use sqlx::{Row, SqlitePool};

    use super::{Candidate, Counter, Verdict, WarmupRamp, decide_all, pick_limit};
    use crate::types::state;
    use crate::{ClaimRequest, ClaimedDelivery, StoreError};
    use mailpush_model::clock::{DAY_MS, day_start};

    /// Leases up to `want` due deliveries of `lane` within their domains' allowances and holds the ones over it.
    pub(crate) async fn claim_lane(
        pool: &SqlitePool,
        lane: i32,
        r: &ClaimRequest,
        lease_until: i64,
        want: i64,
        ramp: &WarmupRamp,
    ) -> Result<Vec<ClaimedDelivery>, StoreError> {
        // Without an fsync at commit, as every claim (see `RelaxedWriter`).
        let mut writer = crate::sqlite::RelaxedWriter::acquire(pool).await?;
        let claimed = claim_lane_on(writer.conn(), lane, r, lease_until, want, ramp).await?;
        writer.release().await?;
        Ok(claimed)
    }

    async fn claim_lane_on(
        conn: &mut sqlx::SqliteConnection,
        lane: i32,
        r: &ClaimRequest,
        lease_until: i64,
        want: i64,
        ramp: &WarmupRamp,
    ) -> Result<Vec<ClaimedDelivery>, StoreError> {
        let today = day_start(r.now_ms);
        let mut tx = sqlx::Connection::begin_with(conn, "BEGIN IMMEDIATE").await?;
        // (due, id) order = acceptance order among rows due at the same time (held rows all wake at midnight).
        let rows = sqlx::query(
            "SELECT d.id, d.message_id, d.account_id, d.recipient, d.domain, d.kind, d.lane, d.attempts, \
             d.request_ms, d.lease_token + 1 AS lease_token, d.sender_domain, d.warmup_day_ms, \
             m.envelope_from, m.expires_ms \
             FROM deliveries d JOIN messages m ON m.id = d.message_id \
             WHERE d.state < 2 AND d.lane = $1 AND d.next_attempt_ms <= $2 \
             ORDER BY d.next_attempt_ms, d.id LIMIT $3",
        )
        .bind(lane)
        .bind(r.now_ms)
        .bind(pick_limit(want))
        .fetch_all(&mut *tx)
        .await?;
        if rows.is_empty() {
            tx.commit().await?;
            return Ok(Vec::new());
        }
        let mut candidates = Vec::with_capacity(rows.len());
        for row in &rows {
            candidates.push(Candidate {
                id: row.try_get("id")?,
                account_id: row.try_get("account_id")?,
                sender_domain: row.try_get("sender_domain")?,
                lane,
                warmup_day_ms: row.try_get("warmup_day_ms")?,
            });
        }
        let mut counters: HashMap<(i64, String), Counter> = HashMap::new();
        for c in &candidates {
            let key = (c.account_id, c.sender_domain.clone());
            if counters.contains_key(&key) {
                continue;
            }
            let row = sqlx::query(
                "SELECT first_day_ms, day_ms, day_count FROM domain_warmup WHERE account_id = $1 AND domain = $2",
            )
            .bind(c.account_id)
            .bind(&c.sender_domain)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(row) = row {
                counters.insert(
                    key,
                    Counter {
                        first_day_ms: row.try_get("first_day_ms")?,
                        day_ms: row.try_get("day_ms")?,
                        day_count: row.try_get("day_count")?,
                        dirty: false,
                    },
                );
            }
        }
        let want_n = usize::try_from(want).unwrap_or(usize::MAX);
        let verdicts = decide_all(&candidates, &mut counters, ramp, today, want_n);
        let mut out = Vec::new();
        for ((row, c), v) in rows.iter().zip(&candidates).zip(&verdicts) {
            match v {
                Verdict::Lease => out.push(crate::sqlite::claimed_from_row(row)?),
                Verdict::Hold(message) => {
                    sqlx::query(
                        "UPDATE deliveries SET state = $1, next_attempt_ms = $2, warmup_held = 1, \
                         deliver_message = $3 WHERE id = $4",
                    )
                    .bind(state::PENDING)
                    .bind(today + DAY_MS)
                    .bind(message)
                    .bind(c.id)
                    .execute(&mut *tx)
                    .await?;
                }
                Verdict::Skip => {}
            }
        }
        crate::sqlite::lease_claimed(&mut tx, &out, &r.worker, lease_until, Some(today)).await?;
        for ((account, domain), counter) in &counters {
            if !counter.dirty {
                continue;
            }
            sqlx::query(
                "INSERT INTO domain_warmup (account_id, domain, first_day_ms, day_ms, day_count) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (account_id, domain) DO UPDATE SET \
                 day_ms = excluded.day_ms, day_count = excluded.day_count",
            )
            .bind(account)
            .bind(domain)
            .bind(counter.first_day_ms)
            .bind(counter.day_ms)
            .bind(counter.day_count)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(out)
    }
}

/// The PostgreSQL claim with warm-up: candidates `FOR UPDATE SKIP LOCKED` (claimers never wait for each other's
/// deliveries), then the domains' counters `FOR UPDATE` in key order (claimers of one domain serialize there, so
/// together they never exceed its allowance), then array updates.
pub(crate) mod pg_claim {
    use std::collections::HashMap;

    use sqlx::{PgPool, Row};

    use super::{Candidate, Counter, Verdict, WarmupRamp, decide_all, pick_limit};
    use crate::types::state;
    use crate::{ClaimRequest, ClaimedDelivery, StoreError};
    use mailpush_model::clock::{DAY_MS, day_start};

    /// Leases up to `want` due deliveries of `lane` within their domains' allowances and holds the ones over it.
    pub(crate) async fn claim_lane(
        pool: &PgPool,
        lane: i32,
        r: &ClaimRequest,
        lease_until: i64,
        want: i64,
        ramp: &WarmupRamp,
    ) -> Result<Vec<ClaimedDelivery>, StoreError> {
        let today = day_start(r.now_ms);
        let mut tx = pool.begin().await?;
        let rows = sqlx::query(
            "SELECT id, account_id, sender_domain, warmup_day_ms FROM deliveries \
             WHERE state < 2 AND lane = $1 AND next_attempt_ms <= $2 \
             ORDER BY next_attempt_ms, id LIMIT $3 FOR UPDATE SKIP LOCKED",
        )
        .bind(lane)
        .bind(r.now_ms)
        .bind(pick_limit(want))
        .fetch_all(&mut *tx)
        .await?;
        if rows.is_empty() {
            tx.commit().await?;
            return Ok(Vec::new());
        }
        let mut candidates = Vec::with_capacity(rows.len());
        for row in &rows {
            candidates.push(Candidate {
                id: row.try_get("id")?,
                account_id: row.try_get("account_id")?,
                sender_domain: row.try_get("sender_domain")?,
                lane,
                warmup_day_ms: row.try_get("warmup_day_ms")?,
            });
        }
        let mut keys: Vec<(i64, String)> = candidates
            .iter()
            .map(|c| (c.account_id, c.sender_domain.clone()))
            .collect();
        keys.sort();
        keys.dedup();
        let k_account: Vec<i64> = keys.iter().map(|k| k.0).collect();
        let k_domain: Vec<&str> = keys.iter().map(|k| k.1.as_str()).collect();
        let k_first: Vec<i64> = vec![today; keys.len()];
        // The first sending day is recorded outside the claim transaction (autocommit): inserting new keys inside
        // it could make two claimers wait on each other's uncommitted inserts in different orders.
        sqlx::query(
            "INSERT INTO domain_warmup (account_id, domain, first_day_ms) \
             SELECT * FROM UNNEST($1::int8[], $2::text[], $3::int8[]) ON CONFLICT DO NOTHING",
        )
        .bind(&k_account)
        .bind(&k_domain)
        .bind(&k_first)
        .execute(pool)
        .await?;
        let counter_rows = sqlx::query(
            "SELECT w.account_id, w.domain, w.first_day_ms, w.day_ms, w.day_count FROM domain_warmup w \
             JOIN UNNEST($1::int8[], $2::text[]) AS k(a, d) ON w.account_id = k.a AND w.domain = k.d \
             ORDER BY w.account_id, w.domain FOR UPDATE OF w",
        )
        .bind(&k_account)
        .bind(&k_domain)
        .fetch_all(&mut *tx)
        .await?;
        let mut counters: HashMap<(i64, String), Counter> = HashMap::new();
        for row in &counter_rows {
            counters.insert(
                (row.try_get("account_id")?, row.try_get("domain")?),
                Counter {
                    first_day_ms: row.try_get("first_day_ms")?,
                    day_ms: row.try_get("day_ms")?,
                    day_count: row.try_get("day_count")?,
                    dirty: false,
                },
            );
        }
        let want_n = usize::try_from(want).unwrap_or(usize::MAX);
        let verdicts = decide_all(&candidates, &mut counters, ramp, today, want_n);
        let mut lease_ids = Vec::new();
        let (mut hold_ids, mut hold_msgs) = (Vec::new(), Vec::new());
        for (c, v) in candidates.iter().zip(&verdicts) {
            match v {
                Verdict::Lease => lease_ids.push(c.id),
                Verdict::Hold(m) => {
                    hold_ids.push(c.id);
                    hold_msgs.push(m.as_str());
                }
                Verdict::Skip => {}
            }
        }
        let mut out = Vec::with_capacity(lease_ids.len());
        if !lease_ids.is_empty() {
            let leased = sqlx::query(
                "UPDATE deliveries AS d \
                 SET state = $1, lease_token = d.lease_token + 1, lease_owner = $2, next_attempt_ms = $3, \
                     warmup_day_ms = $4, warmup_held = 0 \
                 FROM messages AS m WHERE d.id = ANY($5) AND m.id = d.message_id \
                 RETURNING d.id, d.message_id, d.account_id, d.recipient, d.domain, d.kind, d.lane, d.attempts, \
                     d.request_ms, d.lease_token, m.envelope_from, m.expires_ms",
            )
            .bind(state::LEASED)
            .bind(&r.worker)
            .bind(lease_until)
            .bind(today)
            .bind(&lease_ids)
            .fetch_all(&mut *tx)
            .await?;
            let mut by_id = HashMap::with_capacity(leased.len());
            for row in &leased {
                let c = crate::pg::claimed_from_row(row)?;
                by_id.insert(c.delivery_id, c);
            }
            // In pick order: due time, then acceptance.
            out.extend(lease_ids.iter().filter_map(|id| by_id.remove(id)));
        }
        if !hold_ids.is_empty() {
            sqlx::query(
                "UPDATE deliveries AS d SET state = $1, next_attempt_ms = $2, warmup_held = 1, deliver_message = h.msg \
                 FROM UNNEST($3::int8[], $4::text[]) AS h(id, msg) WHERE d.id = h.id",
            )
            .bind(state::PENDING)
            .bind(today + DAY_MS)
            .bind(&hold_ids)
            .bind(&hold_msgs)
            .execute(&mut *tx)
            .await?;
        }
        let (mut u_acc, mut u_dom, mut u_day, mut u_n) = (vec![], vec![], vec![], vec![]);
        for ((a, d), c) in &counters {
            if c.dirty {
                u_acc.push(*a);
                u_dom.push(d.as_str());
                u_day.push(c.day_ms);
                u_n.push(c.day_count);
            }
        }
        if !u_acc.is_empty() {
            sqlx::query(
                "UPDATE domain_warmup AS w SET day_ms = u.day, day_count = u.n \
                 FROM UNNEST($1::int8[], $2::text[], $3::int8[], $4::int8[]) AS u(a, d, day, n) \
                 WHERE w.account_id = u.a AND w.domain = u.d",
            )
            .bind(&u_acc)
            .bind(&u_dom)
            .bind(&u_day)
            .bind(&u_n)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(out)
    }
}

/// Warm-up and reputation reads, expanded once per backend (same SQL on both).
macro_rules! warmup_ops {
    (db = $DB:ty $(,)?) => {
        pub(crate) mod warmup_ops {
            use sqlx::Row;

            use crate::warmup::{DomainOutcomes, DomainWarmupRow};
            use crate::{AccountId, StoreError};

            type Pool = sqlx::Pool<$DB>;

            pub(crate) async fn domain_warmup(pool: &Pool, account: AccountId) -> Result<Vec<DomainWarmupRow>, StoreError> {
                let rows = sqlx::query(
                    "SELECT domain, first_day_ms, day_ms, day_count FROM domain_warmup WHERE account_id = $1 \
                     ORDER BY domain",
                )
                .bind(account)
                .fetch_all(pool)
                .await?;
                rows.iter()
                    .map(|r| {
                        Ok(DomainWarmupRow {
                            domain: r.try_get("domain")?,
                            first_day_ms: r.try_get("first_day_ms")?,
                            day_ms: r.try_get("day_ms")?,
                            day_count: r.try_get("day_count")?,
                        })
                    })
                    .collect()
            }

            pub(crate) async fn held_by_domain(pool: &Pool, account: AccountId) -> Result<Vec<(String, i64)>, StoreError> {
                let rows = sqlx::query(
                    "SELECT sender_domain, COUNT(*) AS n FROM deliveries \
                     WHERE account_id = $1 AND warmup_held = 1 AND state < 2 GROUP BY sender_domain",
                )
                .bind(account)
                .fetch_all(pool)
                .await?;
                rows.iter()
                    .map(|r| Ok((r.try_get("sender_domain")?, r.try_get("n")?)))
                    .collect()
            }

            pub(crate) async fn domain_volume(
                pool: &Pool,
                account: AccountId,
                from_ms: i64,
                to_ms: i64,
            ) -> Result<Vec<(String, i64)>, StoreError> {
                let rows = sqlx::query(
                    "SELECT sender_domain, COUNT(*) AS n FROM deliveries \
                     WHERE account_id = $1 AND request_ms >= $2 AND request_ms < $3 AND send_status = 0 \
                     GROUP BY sender_domain",
                )
                .bind(account)
                .bind(from_ms)
                .bind(to_ms)
                .fetch_all(pool)
                .await?;
                rows.iter()
                    .map(|r| Ok((r.try_get("sender_domain")?, r.try_get("n")?)))
                    .collect()
            }

            pub(crate) async fn domain_outcomes(
                pool: &Pool,
                account: AccountId,
                from_ms: i64,
                to_ms: i64,
            ) -> Result<Vec<DomainOutcomes>, StoreError> {
                // Grouped per From address (one index probe of messages per event row), folded per domain here.
                let rows = sqlx::query(
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
                .fetch_all(pool)
                .await?;
                let mut by_domain: std::collections::BTreeMap<String, DomainOutcomes> = Default::default();
                for r in &rows {
                    let from: String = r.try_get("from_address")?;
                    let domain = from.rsplit_once('@').map_or("", |(_, d)| d).to_ascii_lowercase();
                    let kind: i32 = r.try_get("kind")?;
                    let bad: i32 = r.try_get("bad")?;
                    let n: i64 = r.try_get("n")?;
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

            pub(crate) async fn domain_reputation_state(
                pool: &Pool,
                account: AccountId,
            ) -> Result<Vec<(String, i64, i64)>, StoreError> {
                let rows = sqlx::query(
                    "SELECT domain, level, evaluated_day_ms FROM domain_reputation WHERE account_id = $1",
                )
                .bind(account)
                .fetch_all(pool)
                .await?;
                rows.iter()
                    .map(|r| Ok((r.try_get("domain")?, r.try_get("level")?, r.try_get("evaluated_day_ms")?)))
                    .collect()
            }

            pub(crate) async fn change_domain_level(
                pool: &Pool,
                account: AccountId,
                domain: &str,
                expected: i64,
                level: i64,
                at_ms: i64,
                evaluated_day: Option<i64>,
            ) -> Result<bool, StoreError> {
                sqlx::query(
                    "INSERT INTO domain_reputation (account_id, domain, level, changed_ms) VALUES ($1, $2, 1, 0) \
                     ON CONFLICT (account_id, domain) DO NOTHING",
                )
                .bind(account)
                .bind(domain)
                .execute(pool)
                .await?;
                // Compare-and-set: of several workers evaluating at once, one changes the level.
                let done = match evaluated_day {
                    None => sqlx::query(
                        "UPDATE domain_reputation SET level = $1, changed_ms = $2 \
                         WHERE account_id = $3 AND domain = $4 AND level = $5",
                    )
                    .bind(level)
                    .bind(at_ms)
                    .bind(account)
                    .bind(domain)
                    .bind(expected)
                    .execute(pool)
                    .await?,
                    Some(day) => sqlx::query(
                        "UPDATE domain_reputation SET level = $1, \
                         changed_ms = CASE WHEN level = $1 THEN changed_ms ELSE $2 END, evaluated_day_ms = $6 \
                         WHERE account_id = $3 AND domain = $4 AND level = $5 AND evaluated_day_ms < $6",
                    )
                    .bind(level)
                    .bind(at_ms)
                    .bind(account)
                    .bind(domain)
                    .bind(expected)
                    .bind(day)
                    .execute(pool)
                    .await?,
                };
                Ok(done.rows_affected() > 0)
            }
        }
    };
}

pub(crate) use warmup_ops;

/// Runs `warmup_ops` function `$f` of the backend on the pool for writes or reads.
macro_rules! on_warmup_pool {
    ($self:ident, writer, $f:ident($($arg:expr),* $(,)?)) => {
        $self.guarded(async {
            match &$self.inner.db {
                crate::Db::Sqlite { writer, .. } => crate::sqlite::warmup_ops::$f(writer, $($arg),*).await,
                crate::Db::Postgres(pool) => crate::pg::warmup_ops::$f(pool, $($arg),*).await,
            }
        })
        .await
    };
    ($self:ident, reader, $f:ident($($arg:expr),* $(,)?)) => {
        $self.guarded(async {
            match &$self.inner.db {
                crate::Db::Sqlite { reader, .. } => crate::sqlite::warmup_ops::$f(reader, $($arg),*).await,
                crate::Db::Postgres(pool) => crate::pg::warmup_ops::$f(pool, $($arg),*).await,
            }
        })
        .await
    };
}

impl crate::Store {
    /// [`crate::Store::claim`] with warm-up: leases at most each sending domain's allowance of the day (counted per
    /// (account, domain, UTC day) inside the claim transaction, so several workers sharing the database never
    /// exceed it together) and holds the rest until the next UTC midnight, in acceptance order. Trigger lane first.
    /// See the module docs of `warmup.rs`.
    pub async fn claim_with_warmup(
        &self,
        r: &crate::ClaimRequest,
        ramp: &WarmupRamp,
    ) -> Result<Vec<crate::ClaimedDelivery>, crate::StoreError> {
        let mut out = Vec::new();
        if r.limit == 0 {
            return Ok(out);
        }
        let lease_until = r.now_ms.saturating_add(r.lease_ms.max(0));
        for lane in crate::LANES {
            let want = r.limit.saturating_sub(out.len());
            if want == 0 {
                break;
            }
            let want = i64::try_from(want).unwrap_or(i64::MAX);
            let got = match &self.inner.db {
                crate::Db::Sqlite { writer, .. } => {
                    sqlite_claim::claim_lane(writer, lane, r, lease_until, want, ramp).await?
                }
                crate::Db::Postgres(pool) => pg_claim::claim_lane(pool, lane, r, lease_until, want, ramp).await?,
            };
            out.extend(got);
        }
        Ok(out)
    }

    /// The account's sending domains' warm-up rows (first sending day, today's count), by domain.
    pub async fn domain_warmup(&self, account: crate::AccountId) -> Result<Vec<DomainWarmupRow>, crate::StoreError> {
        on_warmup_pool!(self, reader, domain_warmup(account))
    }

    /// Deliveries of the account held for warm-up, per sending domain.
    pub async fn held_by_domain(&self, account: crate::AccountId) -> Result<Vec<(String, i64)>, crate::StoreError> {
        on_warmup_pool!(self, reader, held_by_domain(account))
    }

    /// Recipients the account admitted per sending domain with request time in `[from_ms, to_ms)`.
    pub async fn domain_volume(
        &self,
        account: crate::AccountId,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<(String, i64)>, crate::StoreError> {
        on_warmup_pool!(self, reader, domain_volume(account, from_ms, to_ms))
    }

    /// Delivered / bounced / bad-address / complaint counts per sending domain from the event log, `[from_ms, to_ms)`.
    pub async fn domain_outcomes(
        &self,
        account: crate::AccountId,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<DomainOutcomes>, crate::StoreError> {
        on_warmup_pool!(self, reader, domain_outcomes(account, from_ms, to_ms))
    }

    /// `(domain, level, evaluated_day_ms)` of the account's recorded reputation rows.
    pub async fn domain_reputation_state(
        &self,
        account: crate::AccountId,
    ) -> Result<Vec<(String, i64, i64)>, crate::StoreError> {
        on_warmup_pool!(self, reader, domain_reputation_state(account))
    }

    /// Compare-and-set of a domain's level: sets `level` only if it is still `expected` and, with
    /// `evaluated_day = Some(day)`, only if that day was not evaluated yet (and marks it). True if this call changed
    /// the row, so of several workers evaluating at once exactly one acts.
    pub async fn change_domain_level(
        &self,
        account: crate::AccountId,
        domain: &str,
        expected: i64,
        level: i64,
        at_ms: i64,
        evaluated_day: Option<i64>,
    ) -> Result<bool, crate::StoreError> {
        on_warmup_pool!(
            self,
            writer,
            change_domain_level(account, domain, expected, level, at_ms, evaluated_day)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_764_115_200_000; // a UTC midnight

    fn cand(id: i64, domain: &str, lane: i32) -> Candidate {
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
        assert_eq!(ramp.lane_cap(10, 0), 10);
        assert_eq!(ramp.lane_cap(10, 1), 8);
    }

    #[test]
    fn holds_over_the_allowance_per_domain_and_counts_once_per_day() {
        let ramp = WarmupRamp {
            days: vec![2],
            trigger_reserve_percent: 0,
        };
        let mut counters = HashMap::new();
        let mut cs = vec![cand(1, "a", 1), cand(2, "a", 1), cand(3, "a", 1), cand(4, "b", 1)];
        cs.push(Candidate {
            warmup_day_ms: T0,
            ..cand(5, "a", 1)
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
