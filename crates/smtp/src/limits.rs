//! In-process limits: simultaneous connections per client IP, and failed AUTH attempts per IP and per
//! username in a sliding window (a true count: a burst of guesses cannot exceed the limit).

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
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

    /// Records one failure of `key`.
    pub fn record(&self, key: &str, now: Instant) {
        let mut map = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        if map.len() >= SWEEP_AT {
            let window = self.window;
            map.retain(|_, q| q.back().is_some_and(|t| now.duration_since(*t) < window));
        }
        let q = map.entry(key.to_string()).or_default();
        q.push_back(now);
        // Only the last `max` matter.
        while q.len() > self.max.max(1) as usize {
            q.pop_front();
        }
    }
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
