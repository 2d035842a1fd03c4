//! Idle SMTP sessions kept for reuse, per (MX address, port, source address).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::session::{PoolKey, Session};

/// Idle sessions. The lock is only ever held for map operations, never across `.await`.
pub(crate) struct Pool {
    idle: Mutex<HashMap<PoolKey, Vec<Session>>>,
    /// When `put` next sweeps every key for expired sessions (taken under `idle`'s lock).
    next_sweep: Mutex<Instant>,
    max_idle_per_host: usize,
    idle_timeout: Duration,
    max_messages: usize,
}

impl Pool {
    pub(crate) fn new(max_idle_per_host: usize, idle_timeout: Duration, max_messages: usize) -> Self {
        Pool {
            idle: Mutex::new(HashMap::new()),
            next_sweep: Mutex::new(Instant::now()),
            max_idle_per_host,
            idle_timeout,
            max_messages,
        }
    }

    /// The most recently used live session for `key`; expired ones are returned in `expired`
    /// for the caller to close outside the lock.
    pub(crate) fn take(&self, key: &PoolKey, expired: &mut Vec<Session>) -> Option<Session> {
        let mut idle = self.lock();
        let list = idle.get_mut(key)?;
        let mut found = None;
        // Most recently returned last: it is the most likely to be alive still.
        while let Some(s) = list.pop() {
            if s.idle_since.elapsed() < self.idle_timeout {
                found = Some(s);
                break;
            }
            expired.push(s);
        }
        if list.is_empty() {
            idle.remove(key);
        }
        found
    }

    /// Like [`Pool::take`], but only a session that `fits` (e.g. one DANE-verified for the MX host at hand);
    /// the others stay idle for deliveries they fit.
    pub(crate) fn take_matching(
        &self,
        key: &PoolKey,
        expired: &mut Vec<Session>,
        fits: impl Fn(&Session) -> bool,
    ) -> Option<Session> {
        let mut idle = self.lock();
        let list = idle.get_mut(key)?;
        let timeout = self.idle_timeout;
        expired.extend(list.extract_if(.., |s| s.idle_since.elapsed() >= timeout));
        // Most recently returned last: it is the most likely to be alive still.
        let found = list.iter().rposition(fits).map(|i| list.remove(i));
        if list.is_empty() {
            idle.remove(key);
        }
        found
    }

    /// Offers a session back. Returns it when it must not be kept (pool full, too many messages,
    /// reuse disabled) so the caller can QUIT it; also hands back any sessions that expired.
    pub(crate) fn put(&self, mut session: Session) -> Vec<Session> {
        let mut rejected = Vec::new();
        if self.max_idle_per_host == 0 || session.messages >= self.max_messages.min(session.max_messages) {
            rejected.push(session);
            return rejected;
        }
        session.idle_since = Instant::now();
        let mut idle = self.lock();
        // Sweep every key, a few times per idle timeout (at most every second): a destination that is never sent
        // to again must not keep sockets open. Not on every put: rebuilding every list moved every idle session
        // (a `Session` is large) once per message delivered.
        let timeout = self.idle_timeout;
        let mut next_sweep = self
            .next_sweep
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if session.idle_since >= *next_sweep {
            *next_sweep = session.idle_since + timeout.min(Duration::from_secs(4)) / 4;
            idle.retain(|_, list| {
                rejected.extend(list.extract_if(.., |s| s.idle_since.elapsed() >= timeout));
                !list.is_empty()
            });
        }
        drop(next_sweep);
        let list = idle.entry(session.key).or_default();
        if list.len() < self.max_idle_per_host {
            list.push(session);
        } else {
            rejected.push(session);
        }
        rejected
    }

    /// Drops every idle session of `key` (after one of them turned out dead, the others are
    /// suspect too: the server probably restarted or timed them out together).
    pub(crate) fn purge(&self, key: &PoolKey) -> Vec<Session> {
        self.lock().remove(key).unwrap_or_default()
    }

    /// Removes the oldest idle session holding a slot of `destination`, so that a connection it needs elsewhere
    /// (another MX address or source) fits under its cap.
    pub(crate) fn evict_for(&self, destination: &str) -> Option<Session> {
        let mut idle = self.lock();
        let mut found = None;
        for (key, list) in idle.iter_mut() {
            if let Some(pos) = list
                .iter()
                .position(|s| s.slot.as_ref().is_some_and(|slot| slot.dest.domain == destination))
            {
                found = Some((*key, list.remove(pos)));
                break;
            }
        }
        let (key, session) = found?;
        if idle.get(&key).is_some_and(Vec::is_empty) {
            idle.remove(&key);
        }
        Some(session)
    }

    /// Everything idle, for shutdown.
    pub(crate) fn drain(&self) -> Vec<Session> {
        self.lock().drain().flat_map(|(_, v)| v).collect()
    }

    /// Idle sessions currently kept (for tests and metrics).
    pub(crate) fn idle_count(&self) -> usize {
        self.lock().values().map(Vec::len).sum()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<PoolKey, Vec<Session>>> {
        // A panic while holding this lock cannot leave the map inconsistent (single operations
        // only), so a poisoned lock is still usable.
        self.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
