//! Shares of the delivery worker's slots. A delivery (one message's recipients in one domain) holds a slot from
//! the moment it starts until its outcome is known. Without shares, the mail of one tenant towards hosts that
//! accept TCP and never greet filled every slot until the greeting timeout, and every other tenant's mail waited
//! behind it (2–4 minutes observed with 40 such domains). So one account holds at most `account_share` percent
//! of the slots, and a destination that has not greeted yet holds at most a few
//! ([`mailpush_delivery::DestinationAdmission`]).

use mailpush_model::AccountId;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use tokio::sync::Notify;

/// The deliveries of each account and towards each destination that hold or wait for a slot.
pub(crate) struct SlotShares {
    counts: Mutex<Counts>,
    account_cap: usize,
    /// Deliveries parked, of every account: claims leave room for them.
    parked: AtomicUsize,
    /// Woken whenever a place is given back, so a parked delivery takes it at once.
    released: Notify,
}

#[derive(Default)]
struct Counts {
    accounts: HashMap<AccountId, AccountSlots>,
    domains: HashMap<String, usize>,
}

/// One account's places: kept while it holds or waits for any.
#[derive(Default)]
struct AccountSlots {
    held: usize,
    parked: usize,
    /// Places given back since the entry was made: how fast the account's mail moves.
    given_back: u64,
}

impl AccountSlots {
    fn is_unused(&self) -> bool {
        self.held == 0 && self.parked == 0
    }
}

/// Which share a delivery found full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FullShare {
    /// Its account holds its share of the slots.
    Account,
    /// Its destination has not greeted yet and holds its few slots.
    Destination,
}

/// One delivery's place in the shares; given back when dropped.
pub(crate) struct ShareTicket {
    shares: Arc<SlotShares>,
    account: AccountId,
    domain: String,
}

/// A delivery waiting, without a slot, for a place of its account; counted until dropped.
pub(crate) struct ParkedPlace {
    shares: Arc<SlotShares>,
    account: AccountId,
    /// The account's `given_back` when the current wait began.
    given_back_at: u64,
}

impl SlotShares {
    /// Shares of a worker with `slots` slots, of which one account may hold `account_percent` percent (at least
    /// one slot).
    pub(crate) fn new(slots: usize, account_percent: usize) -> Arc<SlotShares> {
        Arc::new(SlotShares {
            counts: Mutex::new(Counts::default()),
            account_cap: (slots.max(1) * account_percent.clamp(1, 100)).div_ceil(100),
            parked: AtomicUsize::new(0),
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
    ) -> Result<ShareTicket, FullShare> {
        let mut counts = self.lock();
        let of_account = counts.accounts.get(&account).map_or(0, |a| a.held);
        if of_account >= self.account_cap {
            return Err(FullShare::Account);
        }
        let of_domain = counts.domains.get(domain).copied().unwrap_or(0);
        if domain_share.is_some_and(|cap| of_domain >= cap) {
            return Err(FullShare::Destination);
        }
        counts.accounts.entry(account).or_default().held += 1;
        *counts.domains.entry(domain.to_string()).or_insert(0) += 1;
        Ok(ShareTicket {
            shares: self.clone(),
            account,
            domain: domain.to_string(),
        })
    }

    /// Counts a delivery of `account` as waiting for a place until the returned value is dropped.
    pub(crate) fn park(self: &Arc<Self>, account: AccountId) -> ParkedPlace {
        let mut counts = self.lock();
        let slots = counts.accounts.entry(account).or_default();
        slots.parked += 1;
        self.parked.fetch_add(1, Ordering::AcqRel);
        ParkedPlace {
            shares: self.clone(),
            account,
            given_back_at: slots.given_back,
        }
    }

    /// How many deliveries are parked.
    pub(crate) fn parked(&self) -> usize {
        self.parked.load(Ordering::Acquire)
    }

    /// Resolves at the next give-back of a place after the call (one just before it is missed: callers poll too).
    pub(crate) async fn released(&self) {
        self.released.notified().await;
    }

    fn lock(&self) -> MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl ParkedPlace {
    /// Whether the account's mail moves fast enough to keep waiting: since the last call (or the park) it gave
    /// back at least half as many places as it has deliveries waiting, so at that pace every one of them gets a
    /// place within twice as long again. An account whose slots are held by receivers that do not answer gives
    /// none back. Starts the next period.
    pub(crate) fn account_moves(&mut self) -> bool {
        let counts = self.shares.lock();
        let Some(slots) = counts.accounts.get(&self.account) else {
            return false;
        };
        let given_back = slots.given_back.wrapping_sub(self.given_back_at);
        self.given_back_at = slots.given_back;
        given_back > 0 && 2 * given_back >= slots.parked as u64
    }
}

impl Drop for ParkedPlace {
    fn drop(&mut self) {
        self.shares.parked.fetch_sub(1, Ordering::AcqRel);
        let mut counts = self.shares.lock();
        if let Some(slots) = counts.accounts.get_mut(&self.account) {
            slots.parked = slots.parked.saturating_sub(1);
            if slots.is_unused() {
                counts.accounts.remove(&self.account);
            }
        }
    }
}

impl Drop for ShareTicket {
    fn drop(&mut self) {
        let mut counts = self.shares.lock();
        if let Some(slots) = counts.accounts.get_mut(&self.account) {
            slots.held = slots.held.saturating_sub(1);
            slots.given_back = slots.given_back.wrapping_add(1);
            if slots.is_unused() {
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
            matches!(shares.try_enter(1, "other.example", None), Err(FullShare::Account)),
            "6 of 8 slots is 75 %"
        );
        assert!(
            shares.try_enter(2, "other.example", None).is_ok(),
            "another account still gets in"
        );
        drop(held);
        assert!(
            shares.try_enter(1, "other.example", None).is_ok(),
            "tickets are given back"
        );
    }

    #[test]
    fn a_destination_holds_at_most_its_share() {
        let shares = SlotShares::new(100, 100);
        let a = shares.try_enter(1, "slow.example", Some(2));
        let b = shares.try_enter(2, "slow.example", Some(2));
        assert!(a.is_ok() && b.is_ok());
        assert!(matches!(
            shares.try_enter(3, "slow.example", Some(2)),
            Err(FullShare::Destination)
        ));
        assert!(
            shares.try_enter(3, "slow.example", None).is_ok(),
            "no share once it greeted"
        );
        assert!(shares.try_enter(3, "fast.example", Some(2)).is_ok());
        drop(a);
        assert!(shares.try_enter(3, "slow.example", Some(2)).is_ok());
    }

    #[test]
    fn a_parked_delivery_waits_on_while_its_account_gives_places_back_fast_enough() {
        let shares = SlotShares::new(4, 50);
        let mut held: Vec<ShareTicket> = (0..2)
            .map(|_| shares.try_enter(1, "d.example", None).expect("within the share"))
            .collect();
        let mut first = shares.park(1);
        let _others = [shares.park(1), shares.park(1)];
        assert!(!first.account_moves(), "nothing given back: stalled");
        // One place given back (and taken again) for three deliveries waiting: too slow.
        held.pop();
        held.push(shares.try_enter(1, "d.example", None).expect("the place given back"));
        assert!(!first.account_moves());
        // Two given back for three waiting: every one gets a place within two periods.
        for _ in 0..2 {
            held.pop();
            held.push(shares.try_enter(1, "d.example", None).expect("the place given back"));
        }
        assert!(first.account_moves());
        assert!(!first.account_moves(), "each call starts a new period");
    }

    #[test]
    fn an_account_is_forgotten_once_it_holds_and_waits_for_nothing() {
        let shares = SlotShares::new(2, 50);
        let ticket = shares.try_enter(7, "d.example", None).expect("within the share");
        let parked = shares.park(7);
        drop(ticket);
        assert!(shares.lock().accounts.contains_key(&7), "still waiting");
        assert_eq!(shares.parked(), 1);
        drop(parked);
        assert_eq!(shares.parked(), 0);
        assert!(shares.lock().accounts.is_empty());
        assert!(shares.lock().domains.is_empty());
    }
}
