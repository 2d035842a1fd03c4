//! Shares of the delivery worker's slots. A delivery (one message's recipients in one domain) holds a slot from
//! the moment it starts until its outcome is known. Without shares, the mail of one tenant towards hosts that
//! accept TCP and never greet filled every slot until the greeting timeout, and every other tenant's mail waited
//! behind it (2–4 minutes observed with 40 such domains). So one account holds at most `account_share` percent
//! of the slots, and a destination that has not greeted yet holds at most a few
//! ([`mailpush_delivery::DestinationAdmission`]).

use mailpush_model::AccountId;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use tokio::sync::Notify;

/// The deliveries of each account and towards each destination that hold or wait for a slot.
pub(crate) struct SlotShares {
    counts: Mutex<Counts>,
    account_cap: usize,
    /// Woken whenever a place is given back, so a parked delivery takes it at once.
    released: Notify,
}

#[derive(Default)]
struct Counts {
    accounts: HashMap<AccountId, usize>,
    domains: HashMap<String, usize>,
}

/// One delivery's place in the shares; given back when dropped.
pub(crate) struct ShareTicket {
    shares: Arc<SlotShares>,
    account: AccountId,
    domain: String,
}

impl SlotShares {
    /// Shares of a worker with `slots` slots, of which one account may hold `account_percent` percent (at least
    /// one slot).
    pub(crate) fn new(slots: usize, account_percent: usize) -> Arc<SlotShares> {
        Arc::new(SlotShares {
            counts: Mutex::new(Counts::default()),
            account_cap: (slots.max(1) * account_percent.clamp(1, 100)).div_ceil(100),
            released: Notify::new(),
        })
    }

    /// A place for a delivery of `account` towards `domain`, unless the account is at its share or the
    /// destination at `domain_share` (`None` = no limit).
    pub(crate) fn try_enter(
        self: &Arc<Self>,
        account: AccountId,
        domain: &str,
        domain_share: Option<usize>,
    ) -> Option<ShareTicket> {
        let mut counts = self.lock();
        let of_account = counts.accounts.get(&account).copied().unwrap_or(0);
        let of_domain = counts.domains.get(domain).copied().unwrap_or(0);
        if of_account >= self.account_cap || domain_share.is_some_and(|cap| of_domain >= cap) {
            return None;
        }
        *counts.accounts.entry(account).or_insert(0) += 1;
        *counts.domains.entry(domain.to_string()).or_insert(0) += 1;
        Some(ShareTicket {
            shares: self.clone(),
            account,
            domain: domain.to_string(),
        })
    }

    /// Resolves at the next give-back of a place after the call (one just before it is missed: callers poll too).
    pub(crate) async fn released(&self) {
        self.released.notified().await;
    }

    fn lock(&self) -> MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for ShareTicket {
    fn drop(&mut self) {
        let mut counts = self.shares.lock();
        if let Some(n) = counts.accounts.get_mut(&self.account) {
            *n -= 1;
            if *n == 0 {
                counts.accounts.remove(&self.account);
            }
        }
        if let Some(n) = counts.domains.get_mut(&self.domain) {
            *n -= 1;
            if *n == 0 {
                counts.domains.remove(&self.domain);
            }
        }
        drop(counts);
        self.shares.released.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_holds_at_most_its_share() {
        let shares = SlotShares::new(8, 75);
        let held: Vec<ShareTicket> = (0..6)
            .map(|i| {
                shares
                    .try_enter(1, &format!("d{i}.example"), None)
                    .expect("within the share")
            })
            .collect();
        assert!(
            shares.try_enter(1, "other.example", None).is_none(),
            "6 of 8 slots is 75 %"
        );
        assert!(
            shares.try_enter(2, "other.example", None).is_some(),
            "another account still gets in"
        );
        drop(held);
        assert!(
            shares.try_enter(1, "other.example", None).is_some(),
            "tickets are given back"
        );
    }

    #[test]
    fn a_destination_holds_at_most_its_share() {
        let shares = SlotShares::new(100, 100);
        let a = shares.try_enter(1, "slow.example", Some(2));
        let b = shares.try_enter(2, "slow.example", Some(2));
        assert!(a.is_some() && b.is_some());
        assert!(shares.try_enter(3, "slow.example", Some(2)).is_none());
        assert!(
            shares.try_enter(3, "slow.example", None).is_some(),
            "no share once it greeted"
        );
        assert!(shares.try_enter(3, "fast.example", Some(2)).is_some());
        drop(a);
        assert!(shares.try_enter(3, "slow.example", Some(2)).is_some());
    }
}
