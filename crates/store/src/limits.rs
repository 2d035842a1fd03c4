//! Admission limits, enforced inside the enqueue transaction so that every process sharing the database agrees
//!: the per-account request rate (fixed one-second windows of request time, one `account_send_seconds` row per
//! second with sends), the per-recipient sliding hour (one `recipient_sends` row per admitted recipient) and the
//! daily quota (recipients per calendar day).
//!
//! The decision itself is [`decide`], pure and shared by both backends; the backends load the state of the
//! accounts in a batch (PostgreSQL: `SELECT … FOR UPDATE`, accounts in id order, so that two api processes
//! serialize on the account row), run it message by message in batch order, and write the counters back in the
//! same transaction as the admitted messages.
//!
//! Batches do not commit in request-time order: a mail's request time is taken before its admission work
//! (rendering, screening, the suppression query) and another api process may commit in between. So each second
//! keeps its own count (a mail of an earlier second is counted in that second, never resetting a later one), and
//! the day never moves backwards (a late mail of yesterday counts against today, the stricter reading).

use std::collections::HashMap;

use mailpush_model::SendStatus;

use crate::sql::query;
use crate::{AccountId, NewMessage, Store, StoreError};

pub use mailpush_model::limits::{AccountLimitOverrides, AdmissionLimits};

/// Milliseconds in the per-recipient window.
pub const HOUR_MS: i64 = 3_600_000;

/// How far back per-second send counts are kept (`account_send_seconds`), behind the newest second with sends.
/// A mail whose request time is older still (it spent longer than this between its request and the commit)
/// counts against the oldest kept second, so no second ever admits more than the rate. The same margin keeps
/// `recipient_sends` rows a little past the hour, for such late mails' windows.
pub const RATE_HISTORY_MS: i64 = 60_000;

#[cfg(test)]
const DAY_MS: i64 = 86_400_000;

/// Why the store refused a message at admission. Core maps each to its Tencent code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitRefusal {
    /// The account already sent `limit` messages in this second (RequestLimitExceeded).
    #[error("more than {limit} sends in one second")]
    Rate {
        /// Messages per second allowed.
        limit: i64,
    },
    /// Every admissible recipient already got `limit` mails in the last hour (FailedOperation.FrequencyLimit).
    #[error("{recipient} already received {limit} mails in the last hour")]
    RecipientHourly {
        /// The (first) recipient over the limit.
        recipient: String,
        /// Mails per recipient per hour allowed.
        limit: i64,
    },
    /// The message's recipients do not fit in what is left of today's quota (FailedOperation.ExceedSendLimit).
    #[error("the daily quota of {quota} recipients is used up ({used} sent today, this mail has {wanted})")]
    Daily {
        /// Today's quota.
        quota: i64,
        /// Recipients already admitted today.
        used: i64,
        /// Recipients of the refused message.
        wanted: i64,
    },
}

/// An account's admission counters as stored (read by `GetSendQuota`): an `account_limits` row.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct AccountUsage {
    /// Overrides in force.
    #[sqlx(flatten)]
    pub overrides: AccountLimitOverrides,
    /// Start of the counted second, Unix ms.
    pub second_ms: i64,
    /// Messages admitted in that second.
    pub second_count: i64,
    /// Start of the counted UTC day, Unix ms.
    pub day_ms: i64,
    /// Recipients admitted that day.
    pub day_count: i64,
}

impl AccountUsage {
    /// Recipients admitted on the UTC day containing `now_ms`.
    pub fn sent_on_day_of(&self, now_ms: i64) -> i64 {
        if self.day_ms == mailpush_model::clock::day_start(now_ms) {
            self.day_count
        } else {
            0
        }
    }
}

/// What [`decide`] works on for one account: its stored row plus the recent sends of the recipients seen.
#[derive(Debug, Default)]
pub(crate) struct AccountState {
    pub(crate) usage: AccountUsage,
    /// (recipient → admission times within the last hour of the batch's oldest message), loaded on demand.
    pub(crate) recent: HashMap<String, Vec<i64>>,
    /// Rows to insert into `recipient_sends`.
    pub(crate) new_sends: Vec<(String, i64)>,
    /// (second start → mails admitted in it) of `account_send_seconds`, loaded from the batch's oldest second on.
    pub(crate) seconds: HashMap<i64, i64>,
    /// Seconds whose count this batch changed (to upsert), each once.
    pub(crate) touched_seconds: Vec<i64>,
    /// The newest second moved forward in this batch: prune the account's `recipient_sends` rows up to this
    /// time, and its `account_send_seconds` rows before [`AccountState::seconds_kept_from`].
    pub(crate) prune_before: Option<i64>,
    /// Something changed: write the row back.
    pub(crate) dirty: bool,
}

impl AccountState {
    /// Mails admitted in the second starting at `second`. Before the account's first per-second row (a database
    /// older than `account_send_seconds`) the newest second's count is the row's `second_count`.
    fn sends_in(&self, second: i64) -> i64 {
        match self.seconds.get(&second) {
            Some(n) => *n,
            None if second == self.usage.second_ms => self.usage.second_count,
            None => 0,
        }
    }

    /// The oldest second whose count is kept ([`RATE_HISTORY_MS`] behind the newest).
    pub(crate) fn seconds_kept_from(&self) -> i64 {
        self.usage.second_ms.saturating_sub(RATE_HISTORY_MS)
    }

    /// (second, count) of every second this batch changed, to write back.
    pub(crate) fn second_writes(&self) -> impl Iterator<Item = (i64, i64)> + '_ {
        self.touched_seconds.iter().map(|s| (*s, self.sends_in(*s)))
    }
}

/// Checks one message against its account's state, in batch order. On success the state is updated and
/// recipients over their hourly limit are marked refused (send status 1006: stored final, never delivered).
pub(crate) fn decide(m: &mut NewMessage, lim: &AdmissionLimits, st: &mut AccountState) -> Result<(), LimitRefusal> {
    let o = st.usage.overrides;
    let per_second = o.sends_per_second.unwrap_or(lim.sends_per_second);
    let per_hour = o.per_recipient_per_hour.unwrap_or(lim.per_recipient_per_hour);
    let quota = lim.level_quota.min(o.daily_cap.unwrap_or(lim.daily_cap));
    let now = m.request_ms;

    // The second of the request, or the oldest one still counted for a mail that took longer than that.
    let second = (now.div_euclid(1000) * 1000).max(st.seconds_kept_from());
    let second_count = st.sends_in(second);
    if second_count >= per_second {
        return Err(LimitRefusal::Rate { limit: per_second });
    }

    let window_start = now - HOUR_MS;
    let mut over = Vec::new();
    let mut admitted_now: HashMap<&str, i64> = HashMap::new();
    // 0 = no per-recipient limit: nothing to check and no `recipient_sends` row to keep.
    let per_recipient_limited = per_hour > 0;
    for (i, r) in m.recipients.iter().enumerate() {
        if !r.send_status.is_ok() {
            continue;
        }
        if !per_recipient_limited {
            *admitted_now.entry(r.address.as_str()).or_insert(0) += 1;
            continue;
        }
        let before = st
            .recent
            .get(&r.address)
            .map_or(0, |v| v.iter().filter(|&&t| t > window_start).count() as i64);
        let mine = admitted_now.entry(r.address.as_str()).or_insert(0);
        if before + *mine >= per_hour {
            over.push(i);
        } else {
            *mine += 1;
        }
    }
    let admitted: i64 = admitted_now.values().sum();
    if let (0, Some(&i)) = (admitted, over.first()) {
        return Err(LimitRefusal::RecipientHourly {
            recipient: m.recipients[i].address.clone(),
            limit: per_hour,
        });
    }

    // Never back to an earlier day: a late mail of yesterday would reset today's count.
    let day = mailpush_model::clock::day_start(now).max(st.usage.day_ms);
    let used = if st.usage.day_ms == day { st.usage.day_count } else { 0 };
    if admitted > 0 && used + admitted > quota {
        return Err(LimitRefusal::Daily {
            quota,
            used,
            wanted: admitted,
        });
    }

    // Admitted: mark the refused recipients and count.
    for &i in &over {
        let r = &mut m.recipients[i];
        r.send_status = SendStatus::FrequencyLimit;
        r.deliver_message = Some(format!(
            "{} already received {per_hour} mails in the last hour",
            r.address
        ));
    }
    if second > st.usage.second_ms {
        // Rows a little past the hour stay: a late mail's hour starts before this one's.
        st.prune_before = Some(window_start.saturating_sub(RATE_HISTORY_MS));
        st.usage.second_ms = second;
    }
    st.seconds.insert(second, second_count + 1);
    if !st.touched_seconds.contains(&second) {
        st.touched_seconds.push(second);
    }
    // The row's own counter keeps the newest second's count (read before the first per-second row exists).
    st.usage.second_count = st.sends_in(st.usage.second_ms);
    st.usage.day_ms = day;
    st.usage.day_count = used + admitted;
    for r in m
        .recipients
        .iter()
        .filter(|r| per_recipient_limited && r.send_status.is_ok())
    {
        st.recent.entry(r.address.clone()).or_default().push(now);
        st.new_sends.push((r.address.clone(), now));
    }
    st.dirty = true;
    Ok(())
}

/// The accounts whose admission limits a batch checks, in id order (each once).
pub(crate) fn limited_accounts(msgs: &[(NewMessage, Option<AdmissionLimits>)]) -> Vec<AccountId> {
    let mut accounts: Vec<AccountId> = msgs
        .iter()
        .filter(|(_, lim)| lim.is_some())
        .map(|(m, _)| m.account_id)
        .collect();
    accounts.sort_unstable();
    accounts.dedup();
    accounts
}

/// The oldest second a batch's checked messages were requested in: the per-second counts `decide` may need are
/// those from it on.
pub(crate) fn oldest_checked_second(msgs: &[(NewMessage, Option<AdmissionLimits>)]) -> i64 {
    msgs.iter()
        .filter(|(_, lim)| lim.is_some())
        .map(|(m, _)| m.request_ms.div_euclid(1000) * 1000)
        .min()
        .unwrap_or(0)
}

/// The messages of a batch that [`decide_batch`] admitted (`refusals` in batch order), in batch order.
pub(crate) fn admitted<'m>(
    msgs: &'m [(NewMessage, Option<AdmissionLimits>)],
    refusals: &[Option<LimitRefusal>],
) -> Vec<&'m NewMessage> {
    msgs.iter()
        .zip(refusals)
        .filter(|(_, refused)| refused.is_none())
        .map(|((m, _), _)| m)
        .collect()
}

/// Runs [`decide`] over a batch whose account states are loaded; returns per message `None` (admitted) or
/// the refusal.
pub(crate) fn decide_batch(
    msgs: &mut [(NewMessage, Option<AdmissionLimits>)],
    states: &mut HashMap<AccountId, AccountState>,
) -> Vec<Option<LimitRefusal>> {
    msgs.iter_mut()
        .map(|(m, lim)| {
            let lim = (*lim)?;
            let st = states.entry(m.account_id).or_default();
            decide(m, &lim, st).err()
        })
        .collect()
}

/// Admission limits and domain reputation levels ([`Store::limits`]).
#[derive(Debug, Clone, Copy)]
pub struct Limits<'a> {
    pub(crate) store: &'a Store,
}

impl Store {
    /// Admission limits: overrides, usage counters, domain reputation levels.
    pub fn limits(&self) -> Limits<'_> {
        Limits { store: self }
    }
}

impl Limits<'_> {
    /// Replaces an account's limit overrides (`None` fields = the configured defaults).
    pub async fn set_account_limits(self, account: AccountId, o: AccountLimitOverrides) -> Result<(), StoreError> {
        query(
            "INSERT INTO account_limits (account_id, sends_per_second, per_recipient_per_hour, daily_cap) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (account_id) DO UPDATE SET \
             sends_per_second = excluded.sends_per_second, \
             per_recipient_per_hour = excluded.per_recipient_per_hour, daily_cap = excluded.daily_cap",
        )
        .bind(account)
        .bind(o.sends_per_second)
        .bind(o.per_recipient_per_hour)
        .bind(o.daily_cap)
        .execute(self.store.guarded_writer())
        .await?;
        Ok(())
    }

    /// An account's overrides and admission counters (all defaults and zero before its first send).
    pub async fn account_usage(self, account: AccountId) -> Result<AccountUsage, StoreError> {
        let usage = query(
            "SELECT sends_per_second, per_recipient_per_hour, daily_cap, second_ms, second_count, day_ms, \
             day_count FROM account_limits WHERE account_id = $1",
        )
        .bind(account)
        .fetch_optional(self.store.guarded_reader())
        .await?;
        Ok(usage.unwrap_or_default())
    }

    /// Reputation levels recorded for the account's domains (a domain without a row is at level 1).
    pub async fn domain_levels(self, account: AccountId) -> Result<Vec<(String, i64)>, StoreError> {
        query("SELECT domain, level FROM domain_reputation WHERE account_id = $1")
            .bind(account)
            .fetch_all(self.store.guarded_reader())
            .await
    }

    /// The account's verified domains with their reputation level (1 when none is recorded), by domain.
    pub async fn verified_domain_levels(self, account: AccountId) -> Result<Vec<(String, i64)>, StoreError> {
        query(
            "SELECT i.domain, COALESCE(r.level, 1) AS level FROM email_identities i \
             LEFT JOIN domain_reputation r ON r.account_id = i.account_id AND r.domain = i.domain \
             WHERE i.account_id = $1 AND i.verified ORDER BY i.domain",
        )
        .bind(account)
        .fetch_all(self.store.guarded_reader())
        .await
    }

    /// Records a domain's reputation level.
    pub async fn set_domain_level(
        self,
        account: AccountId,
        domain: &str,
        level: i64,
        at_ms: i64,
    ) -> Result<(), StoreError> {
        query(
            "INSERT INTO domain_reputation (account_id, domain, level, changed_ms) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (account_id, domain) DO UPDATE SET level = excluded.level, \
             changed_ms = excluded.changed_ms",
        )
        .bind(account)
        .bind(domain)
        .bind(level)
        .bind(at_ms)
        .execute(self.store.guarded_writer())
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NewRecipient;
    use mailpush_model::{Lane, MessageId, RecipientKind};

    fn msg(at: i64, to: &[&str]) -> NewMessage {
        NewMessage {
            template_id: 0,
            tls_requirement: mailpush_model::TlsRequirement::None,
            id: MessageId::generate(),
            account_id: 1,
            envelope_from: "a@x".into(),
            from_address: "a@x".into(),
            subject: String::new(),
            lane: Lane::Batch,
            request_ms: at,
            not_before_ms: at,
            expires_ms: at + 1,
            body: Vec::new(),
            recipients: to
                .iter()
                .map(|a| NewRecipient {
                    address: (*a).into(),
                    domain: "y".into(),
                    kind: RecipientKind::To,
                    send_status: SendStatus::Ok,
                    deliver_message: None,
                })
                .collect(),
        }
    }

    const LIM: AdmissionLimits = AdmissionLimits {
        sends_per_second: 3,
        per_recipient_per_hour: 2,
        daily_cap: 300_000,
        level_quota: 5,
    };

    #[test]
    fn rate_is_per_second() {
        let mut st = AccountState::default();
        for i in 0..3 {
            assert!(decide(&mut msg(1_000 + i, &[&format!("r{i}@y")]), &LIM, &mut st).is_ok());
        }
        assert_eq!(
            decide(&mut msg(1_999, &["z@y"]), &LIM, &mut st),
            Err(LimitRefusal::Rate { limit: 3 })
        );
        assert!(decide(&mut msg(2_000, &["z@y"]), &LIM, &mut st).is_ok());
    }

    #[test]
    fn a_late_mail_of_an_earlier_second_counts_in_its_own_second() {
        const LIM: AdmissionLimits = AdmissionLimits {
            level_quota: 100,
            ..super::tests::LIM
        };
        let mut st = AccountState::default();
        for i in 0..3 {
            assert!(decide(&mut msg(1_000 + i, &[&format!("r{i}@y")]), &LIM, &mut st).is_ok());
        }
        // A mail of the next second commits first, then one of the full second (request times are taken before
        // the admission work, and another process may commit in between): the full second stays full.
        assert!(decide(&mut msg(2_000, &["n@y"]), &LIM, &mut st).is_ok());
        assert_eq!(
            decide(&mut msg(1_500, &["late@y"]), &LIM, &mut st),
            Err(LimitRefusal::Rate { limit: 3 })
        );
        // ... and the later second kept its count.
        assert!(decide(&mut msg(2_001, &["n1@y"]), &LIM, &mut st).is_ok());
        assert!(decide(&mut msg(2_002, &["n2@y"]), &LIM, &mut st).is_ok());
        assert_eq!(
            decide(&mut msg(2_003, &["n3@y"]), &LIM, &mut st),
            Err(LimitRefusal::Rate { limit: 3 })
        );
        assert_eq!((st.usage.second_ms, st.usage.second_count), (2_000, 3));
        let mut writes: Vec<_> = st.second_writes().collect();
        writes.sort_unstable();
        assert_eq!(writes, vec![(1_000, 3), (2_000, 3)]);
        // A mail older than the kept history counts against the oldest kept second.
        let mut st = AccountState::default();
        assert!(decide(&mut msg(RATE_HISTORY_MS + 10_000, &["a@y"]), &LIM, &mut st).is_ok());
        assert!(decide(&mut msg(0, &["b@y"]), &LIM, &mut st).is_ok());
        assert_eq!(st.seconds.get(&10_000), Some(&1));
    }

    #[test]
    fn the_newest_second_of_an_older_database_keeps_its_count() {
        let mut st = AccountState {
            usage: AccountUsage {
                second_ms: 5_000,
                second_count: 3,
                ..AccountUsage::default()
            },
            ..AccountState::default()
        };
        assert_eq!(
            decide(&mut msg(5_500, &["a@y"]), &LIM, &mut st),
            Err(LimitRefusal::Rate { limit: 3 })
        );
    }

    #[test]
    fn zero_per_recipient_limit_means_none_and_keeps_no_history() {
        let lim = AdmissionLimits {
            per_recipient_per_hour: 0,
            sends_per_second: 1_000,
            ..LIM
        };
        let mut st = AccountState::default();
        for i in 0..5 {
            let mut m = msg(i, &["a@y"]);
            assert!(decide(&mut m, &lim, &mut st).is_ok(), "mail {i}");
            assert_eq!(m.recipients[0].send_status, SendStatus::Ok);
        }
        assert!(
            st.new_sends.is_empty() && st.recent.is_empty(),
            "no recipient_sends rows"
        );
        assert_eq!(st.usage.day_count, 5, "the daily quota still counts them");
    }

    #[test]
    fn recipient_hour_slides_and_marks_partial() {
        let mut st = AccountState::default();
        assert!(decide(&mut msg(0, &["a@y"]), &LIM, &mut st).is_ok());
        assert!(decide(&mut msg(10_000, &["a@y"]), &LIM, &mut st).is_ok());
        assert!(matches!(
            decide(&mut msg(20_000, &["a@y"]), &LIM, &mut st),
            Err(LimitRefusal::RecipientHourly { .. })
        ));
        let mut m = msg(30_000, &["a@y", "b@y"]);
        assert!(decide(&mut m, &LIM, &mut st).is_ok());
        assert_eq!(m.recipients[0].send_status, SendStatus::FrequencyLimit);
        assert_eq!(m.recipients[1].send_status, SendStatus::Ok);
        // The first send leaves the window an hour later.
        assert!(decide(&mut msg(HOUR_MS + 1, &["a@y"]), &LIM, &mut st).is_ok());
    }

    #[test]
    fn daily_quota_counts_recipients_and_resets() {
        let mut st = AccountState::default();
        assert!(decide(&mut msg(0, &["a@y", "b@y", "c@y"]), &LIM, &mut st).is_ok());
        assert!(matches!(
            decide(&mut msg(5_000, &["d@y", "e@y", "f@y"]), &LIM, &mut st),
            Err(LimitRefusal::Daily {
                quota: 5,
                used: 3,
                wanted: 3
            })
        ));
        assert!(decide(&mut msg(6_000, &["d@y", "e@y"]), &LIM, &mut st).is_ok());
        assert!(decide(&mut msg(DAY_MS, &["g@y"]), &LIM, &mut st).is_ok());
        assert_eq!(st.usage.day_count, 1);
        // A late mail of the day before counts against the new day instead of resetting it.
        let today = mailpush_model::clock::day_start(DAY_MS);
        assert!(decide(&mut msg(today - 1, &["h@y"]), &LIM, &mut st).is_ok());
        assert_eq!((st.usage.day_ms, st.usage.day_count), (today, 2));
    }
}
