//! In-process limits: simultaneous connections per client IP, and failed AUTH attempts in sliding windows
//! (a true count: a burst of guesses cannot exceed the limit).
//!
//! AUTH failures are counted per (client IP, username) and per client IP, never per username alone: sender
//! addresses are public, so a lock of the username would let anyone keep its owner out of SMTP submission.
//! A guessing client is slowed down instead (a delay before each failure reply, growing with its IP's
//! failures) and, past the limits, refused `454` from its own address only.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Counts connections per IP; a [`ConnectionPermit`] gives its slot back when dropped.
#[derive(Debug, Default)]
pub struct ConnectionLimiter {
    max_per_ip: usize,
    counts: Mutex<HashMap<IpAddr, usize>>,
}

/// One admitted connection.
#[derive(Debug)]
pub struct ConnectionPermit {
    limiter: Arc<ConnectionLimiter>,
    ip: IpAddr,
}

impl ConnectionLimiter {
    /// At most `max_per_ip` simultaneous connections per IP (0 = unlimited).
    pub fn new(max_per_ip: usize) -> ConnectionLimiter {
        ConnectionLimiter {
            max_per_ip,
            counts: Mutex::default(),
        }
    }

    /// A permit for `ip`, or `None` when it already has the maximum.
    pub fn acquire(self: &Arc<Self>, ip: IpAddr) -> Option<ConnectionPermit> {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        let n = counts.entry(ip).or_insert(0);
        if self.max_per_ip > 0 && *n >= self.max_per_ip {
            return None;
        }
        *n += 1;
        Some(ConnectionPermit {
            limiter: self.clone(),
            ip,
        })
    }
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        let mut counts = self.limiter.counts.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = counts.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

/// Failed attempts per key within a sliding window.
#[derive(Debug)]
pub struct FailureWindow {
    max: u32,
    window: Duration,
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

/// Entries kept before expired ones are swept (bounds memory under a spray of usernames).
const SWEEP_AT: usize = 10_000;
/// Failures kept per key at least, whatever `max`: enough to count an IP's failures for the delay.
const MIN_KEPT: usize = 32;

impl FailureWindow {
    /// Blocks a key after `max` failures within `window` (0 = never).
    pub fn new(max: u32, window: Duration) -> FailureWindow {
        FailureWindow {
            max,
            window,
            failures: Mutex::default(),
        }
    }

    /// Whether `key` has used up its failures.
    pub fn is_blocked(&self, key: &str, now: Instant) -> bool {
        if self.max == 0 {
            return false;
        }
        let mut map = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(q) = map.get_mut(key) else { return false };
        while q.front().is_some_and(|t| now.duration_since(*t) >= self.window) {
            q.pop_front();
        }
        q.len() >= self.max as usize
    }

    /// Records one failure of `key`; returns its failures within the window, this one included (counted up
    /// to `max(max, 32)`).
    pub fn record(&self, key: &str, now: Instant) -> usize {
        let mut map = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        if map.len() >= SWEEP_AT {
            let window = self.window;
            map.retain(|_, q| q.back().is_some_and(|t| now.duration_since(*t) < window));
        }
        let q = map.entry(key.to_string()).or_default();
        while q.front().is_some_and(|t| now.duration_since(*t) >= self.window) {
            q.pop_front();
        }
        q.push_back(now);
        // Only the last few matter.
        while q.len() > (self.max as usize).max(MIN_KEPT) {
            q.pop_front();
        }
        q.len()
    }
}

/// The AUTH failure policy of one SMTP server; see the module doc.
#[derive(Debug)]
pub struct AuthThrottle {
    /// Per (client IP, username).
    pair: FailureWindow,
    /// Per client IP (IPv6: per /64).
    ip: FailureWindow,
    delay: Duration,
    delay_max: Duration,
}

impl AuthThrottle {
    /// At most `per_pair` failures per (IP, username) and `per_ip` per IP within `window` (0 = no limit);
    /// failure replies wait `delay`, doubling per further failure of the IP, up to `delay_max`.
    pub fn new(per_pair: u32, per_ip: u32, window: Duration, delay: Duration, delay_max: Duration) -> AuthThrottle {
        AuthThrottle {
            pair: FailureWindow::new(per_pair, window),
            ip: FailureWindow::new(per_ip, window),
            delay,
            delay_max,
        }
    }

    /// Whether AUTH as `user` from `ip` is refused for now (that pair, or that IP, used up its failures).
    pub fn is_blocked(&self, ip: IpAddr, user: &str, now: Instant) -> bool {
        self.ip.is_blocked(&ip_key(ip), now) || self.pair.is_blocked(&pair_key(ip, user), now)
    }

    /// Records a failed AUTH as `user` from `ip`; returns how long to wait before the failure reply.
    pub fn record_failure(&self, ip: IpAddr, user: &str, now: Instant) -> Duration {
        self.pair.record(&pair_key(ip, user), now);
        let n = self.ip.record(&ip_key(ip), now);
        failure_delay(n, self.delay, self.delay_max)
    }
}

/// The wait before the reply to an IP's `n`th failure in the window: none for the first (a typo costs
/// nothing), then `base`, doubling, at most `max`.
pub fn failure_delay(n: usize, base: Duration, max: Duration) -> Duration {
    if n <= 1 {
        return Duration::ZERO;
    }
    let doublings = u32::try_from(n - 2).unwrap_or(u32::MAX).min(20);
    base.saturating_mul(1u32 << doublings).min(max)
}

/// The key of a client address: itself for IPv4, its /64 for IPv6 (one host usually has a whole /64, so
/// per-address counts would be free to dodge).
fn ip_key(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => format!("ip:{v4}"),
        IpAddr::V6(v6) => {
            let net = u128::from(v6) & !((1u128 << 64) - 1);
            format!("ip:{}/64", Ipv6Addr::from(net))
        }
    }
}

fn pair_key(ip: IpAddr, user: &str) -> String {
    format!("{} user:{}", ip_key(ip), user.to_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permits_are_counted_and_returned() {
        let l = Arc::new(ConnectionLimiter::new(2));
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let a = l.acquire(ip).unwrap();
        let _b = l.acquire(ip).unwrap();
        assert!(l.acquire(ip).is_none());
        assert!(l.acquire("192.0.2.2".parse().unwrap()).is_some());
        drop(a);
        assert!(l.acquire(ip).is_some());
    }

    #[test]
    fn a_username_is_never_locked_from_other_addresses() {
        let t = AuthThrottle::new(3, 20, Duration::from_secs(60), Duration::ZERO, Duration::ZERO);
        let (bad, good): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        let t0 = Instant::now();
        for _ in 0..10 {
            t.record_failure(bad, "App@Shop.example", t0);
        }
        assert!(t.is_blocked(bad, "app@shop.example", t0), "the pair, case-insensitive");
        assert!(!t.is_blocked(good, "app@shop.example", t0), "another address is not");
        assert!(!t.is_blocked(bad, "other@shop.example", t0), "under the IP limit");
    }

    #[test]
    fn an_address_spraying_usernames_is_blocked_for_all() {
        let t = AuthThrottle::new(3, 5, Duration::from_secs(60), Duration::ZERO, Duration::ZERO);
        let ip: IpAddr = "2001:db8::1".parse().unwrap();
        let t0 = Instant::now();
        for i in 0..5 {
            t.record_failure(ip, &format!("user{i}@x.example"), t0);
        }
        assert!(t.is_blocked(ip, "fresh@x.example", t0));
        // The same /64 is the same client; another /64 is not.
        assert!(t.is_blocked("2001:db8::2".parse().unwrap(), "fresh@x.example", t0));
        assert!(!t.is_blocked("2001:db8:0:1::1".parse().unwrap(), "fresh@x.example", t0));
        assert!(!t.is_blocked(ip, "fresh@x.example", t0 + Duration::from_secs(61)));
    }

    #[test]
    fn the_failure_delay_grows_with_the_failures_of_the_address_and_is_capped() {
        let (base, max) = (Duration::from_millis(500), Duration::from_secs(8));
        let d: Vec<u64> = (1..=8)
            .map(|n| failure_delay(n, base, max).as_millis() as u64)
            .collect();
        assert_eq!(d, [0, 500, 1000, 2000, 4000, 8000, 8000, 8000]);
        assert_eq!(failure_delay(usize::MAX, base, max), max);
        let t = AuthThrottle::new(0, 0, Duration::from_secs(60), base, max);
        let ip: IpAddr = "192.0.2.9".parse().unwrap();
        let t0 = Instant::now();
        let waits: Vec<Duration> = (0..3).map(|i| t.record_failure(ip, &format!("u{i}"), t0)).collect();
        assert_eq!(waits, [Duration::ZERO, base, base * 2], "per IP, whatever the username");
        assert!(!t.is_blocked(ip, "u0", t0), "0 = no limit, only the delay");
    }

    #[test]
    fn failures_block_within_the_window_only() {
        let w = FailureWindow::new(3, Duration::from_secs(60));
        let t0 = Instant::now();
        for _ in 0..2 {
            w.record("user:a@b", t0);
        }
        assert!(!w.is_blocked("user:a@b", t0));
        w.record("user:a@b", t0);
        assert!(w.is_blocked("user:a@b", t0));
        assert!(!w.is_blocked("user:c@d", t0));
        assert!(!w.is_blocked("user:a@b", t0 + Duration::from_secs(61)));
    }
}
