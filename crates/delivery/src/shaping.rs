//! Per-destination shaping: towards each receiving domain at most N connections, M messages per connection and
//! R messages per minute, enforced in-process. A receiver that answers "too many connections / rate limited"
//! slows its destination down (concurrency and rate halved, floor 1); successes bring it back gradually.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, Instant},
};

use tokio::sync::Notify;

/// Why a shaping specification is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShapingError {
    /// Limits are not `connections/messages-per-connection/per-minute`.
    #[error("destination limits {0:?} are not connections/messages-per-connection/per-minute (e.g. 10/100/0)")]
    Limits(String),
    /// A per-domain entry is not `domain=limits`.
    #[error("destination entry {0:?} is not domain=connections/messages-per-connection/per-minute")]
    Entry(String),
}

/// The limits towards one receiving domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DestinationLimits {
    /// Simultaneous connections (active or idle) at most; at least 1.
    pub max_connections: usize,
    /// Messages (transactions) on one connection before it is closed; at least 1.
    pub max_messages_per_connection: usize,
    /// Messages per minute at most; 0 = unlimited.
    pub max_per_minute: u32,
}

impl Default for DestinationLimits {
    /// 10 connections, 100 messages per connection, no per-minute limit.
    fn default() -> Self {
        DestinationLimits {
            max_connections: 10,
            max_messages_per_connection: 100,
            max_per_minute: 0,
        }
    }
}

impl DestinationLimits {
    /// Parses `connections/messages-per-connection/per-minute`, e.g. `10/100/0` (0 per minute = unlimited).
    pub fn parse(text: &str) -> Result<Self, ShapingError> {
        let bad = || ShapingError::Limits(text.to_string());
        let parts: Vec<&str> = text.split('/').map(str::trim).collect();
        let [c, m, r] = parts.as_slice() else {
            return Err(bad());
        };
        let limits = DestinationLimits {
            max_connections: c.parse().map_err(|_| bad())?,
            max_messages_per_connection: m.parse().map_err(|_| bad())?,
            max_per_minute: r.parse().map_err(|_| bad())?,
        };
        if limits.max_connections == 0 || limits.max_messages_per_connection == 0 {
            return Err(bad());
        }
        Ok(limits)
    }
}

/// Shaping of every destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShapingConfig {
    /// Limits of a domain without its own entry.
    pub default: DestinationLimits,
    /// Per receiving domain (lower case); an entry also covers its subdomains.
    pub domains: BTreeMap<String, DestinationLimits>,
    /// Longest a transaction waits for a connection slot or for its turn under the rate before its recipients
    /// are deferred (as [`crate::Outcome::Throttled`]).
    pub max_wait: Duration,
    /// When recipients deferred by shaping or by a receiver's rate limiting are tried again.
    pub retry_after: Duration,
}

impl Default for ShapingConfig {
    /// [`DestinationLimits::default`] for every domain, wait at most 10 s, retry after 60 s.
    fn default() -> Self {
        ShapingConfig {
            default: DestinationLimits::default(),
            domains: BTreeMap::new(),
            max_wait: Duration::from_secs(10),
            retry_after: Duration::from_secs(60),
        }
    }
}

impl ShapingConfig {
    /// Parses per-domain entries `domain=c/m/r;domain=c/m/r` (whitespace ignored; empty = none).
    pub fn parse_domains(spec: &str) -> Result<BTreeMap<String, DestinationLimits>, ShapingError> {
        let mut out = BTreeMap::new();
        for entry in spec.split(';').map(str::trim).filter(|e| !e.is_empty()) {
            let (domain, limits) = entry
                .split_once('=')
                .ok_or_else(|| ShapingError::Entry(entry.to_string()))?;
            let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
            if domain.is_empty() || domain.contains(char::is_whitespace) {
                return Err(ShapingError::Entry(entry.to_string()));
            }
            out.insert(domain, DestinationLimits::parse(limits)?);
        }
        Ok(out)
    }

    /// The limits towards `domain`: its own entry, else its closest parent's, else the default.
    pub fn limits_for(&self, domain: &str) -> DestinationLimits {
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        let mut rest = domain.as_str();
        loop {
            if let Some(l) = self.domains.get(rest) {
                return *l;
            }
            match rest.split_once('.') {
                Some((_, parent)) if !parent.is_empty() => rest = parent,
                _ => return self.default,
            }
        }
    }
}

/// What the transport currently does towards one destination (for tests, metrics and operators).
#[derive(Debug, Clone, PartialEq)]
pub struct DestinationState {
    /// The receiving domain.
    pub domain: String,
    /// The configured limits.
    pub limits: DestinationLimits,
    /// Connections allowed now (the configured maximum, lowered after the receiver throttled us).
    pub connection_cap: usize,
    /// Connections open now (active or idle).
    pub open_connections: usize,
    /// Most connections that were open at once.
    pub peak_connections: usize,
    /// Messages per minute allowed now; `None` = unlimited.
    pub rate_per_minute: Option<f64>,
    /// Replies seen that said "too many connections / rate limited".
    pub throttle_signals: u64,
    /// Times the destination was slowed down (at most once per signal of the current regime).
    pub slowdowns: u64,
    /// Transactions that delivered to at least one recipient.
    pub successes: u64,
    /// A session was established since the destination last timed out (or ever): it is not a tarpit.
    pub greeted: bool,
    /// How much longer the destination is backed off after timing out; `None` when it is not.
    pub suspended_for: Option<Duration>,
}

/// Whether a delivery towards a destination may start now ([`crate::SmtpTransport::admission`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DestinationAdmission {
    /// It may. With `share`, at most that many deliveries towards it should hold delivery slots at once: a
    /// destination that has not greeted yet (new, or timed out before) gets a few slots until it proves
    /// responsive, so hosts that never answer cannot fill the worker.
    Open {
        /// Deliveries at once; `None` = no limit beyond the connection cap.
        share: Option<usize>,
    },
    /// The destination timed out and is backed off as a whole: defer until `retry_after`.
    Suspended {
        /// The reason (`4.4.2 … timeout …`), for the delivery's status.
        reply: String,
        /// How long the back-off lasts.
        retry_after: Duration,
    },
}

/// Deliveries at once towards a destination that has not greeted yet.
const UNPROVEN_SHARE: usize = 4;

/// Longest back-off of a destination that keeps timing out.
const MAX_SUSPENSION: Duration = Duration::from_secs(30 * 60);

/// A destination's back-off, as the transactions waiting for it learn it.
#[derive(Debug, Clone)]
pub(crate) struct Suspension {
    reply: String,
    remaining: Duration,
}

impl Suspension {
    /// Deferred for the rest of the back-off; not a bounce, never counted against the recipient.
    pub(crate) fn outcome(&self) -> crate::Outcome {
        crate::Outcome::Throttled {
            reply: self.reply.clone(),
            retry_after: self.remaining,
        }
    }
}

/// Successful transactions after which a slowed-down destination gets one step back.
const RECOVER_EVERY: u32 = 10;

/// Runtime shaping state of every destination seen.
pub(crate) struct Destinations {
    cfg: ShapingConfig,
    map: Mutex<HashMap<String, Arc<Dest>>>,
}

impl Destinations {
    pub(crate) fn new(cfg: ShapingConfig) -> Self {
        Destinations {
            cfg,
            map: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn config(&self) -> &ShapingConfig {
        &self.cfg
    }

    pub(crate) fn get(&self, domain: &str) -> Arc<Dest> {
        let key = domain.trim_end_matches('.').to_ascii_lowercase();
        let mut map = self.lock();
        map.entry(key.clone())
            .or_insert_with(|| Arc::new(Dest::new(key.clone(), self.cfg.limits_for(&key))))
            .clone()
    }

    pub(crate) fn snapshot(&self, domain: &str) -> Option<DestinationState> {
        let key = domain.trim_end_matches('.').to_ascii_lowercase();
        self.lock().get(&key).map(|d| d.snapshot())
    }

    pub(crate) fn all(&self) -> Vec<DestinationState> {
        let mut v: Vec<DestinationState> = self.lock().values().map(|d| d.snapshot()).collect();
        v.sort_by(|a, b| a.domain.cmp(&b.domain));
        v
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Arc<Dest>>> {
        self.map.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// One destination: its limits, counters and a notification for waiters (a slot freed, a session returned).
pub(crate) struct Dest {
    pub(crate) domain: String,
    limits: DestinationLimits,
    state: Mutex<DestState>,
    pub(crate) changed: Notify,
}

struct DestState {
    open: usize,
    peak: usize,
    cap: usize,
    /// Messages per minute allowed now; `None` = unlimited.
    rate: Option<f64>,
    /// The rate to return to when recovered (`None` = unlimited again).
    ceiling: Option<f64>,
    tokens: f64,
    refilled: Instant,
    /// Messages counted in the current and the previous minute (the observed rate, for slowing down from
    /// "unlimited").
    window_start: Instant,
    window_count: u64,
    previous_count: u64,
    /// Incremented at every slowdown: a throttle signal from a transaction started under an older regime does
    /// not slow the destination down again (many connections hit by one overload halve it once).
    epoch: u64,
    since_change: u32,
    throttle_signals: u64,
    slowdowns: u64,
    successes: u64,
    greeted: bool,
    suspended_until: Option<Instant>,
    suspend_reason: String,
    /// Suspensions in a row (each doubles the next back-off); reset by a greeting.
    suspensions: u32,
}

impl Dest {
    fn new(domain: String, limits: DestinationLimits) -> Self {
        let rate = (limits.max_per_minute > 0).then_some(f64::from(limits.max_per_minute));
        let now = Instant::now();
        Dest {
            domain,
            limits,
            state: Mutex::new(DestState {
                open: 0,
                peak: 0,
                cap: limits.max_connections.max(1),
                rate,
                ceiling: rate,
                tokens: rate.map_or(0.0, burst),
                refilled: now,
                window_start: now,
                window_count: 0,
                previous_count: 0,
                epoch: 0,
                since_change: 0,
                throttle_signals: 0,
                slowdowns: 0,
                successes: 0,
                greeted: false,
                suspended_until: None,
                suspend_reason: String::new(),
                suspensions: 0,
            }),
            changed: Notify::new(),
        }
    }

    pub(crate) fn limits(&self) -> DestinationLimits {
        self.limits
    }

    /// The back-off in force, if any.
    pub(crate) fn suspension(&self) -> Option<Suspension> {
        let st = self.lock();
        let remaining = st.suspended_until?.checked_duration_since(Instant::now())?;
        (!remaining.is_zero()).then(|| Suspension {
            reply: format!(
                "{} (deliveries to {} deferred for {} s)",
                st.suspend_reason,
                self.domain,
                remaining.as_secs().max(1)
            ),
            remaining,
        })
    }

    /// Backs the destination off after it timed out: `base`, doubled for each suspension in a row (at most
    /// [`MAX_SUSPENSION`]). Transactions waiting for one of its connections are woken to learn it.
    pub(crate) fn suspend(&self, reason: &str, base: Duration) {
        {
            let mut st = self.lock();
            let backoff = base
                .saturating_mul(1 << st.suspensions.min(10))
                .min(MAX_SUSPENSION)
                .max(Duration::from_secs(1));
            st.suspensions = st.suspensions.saturating_add(1);
            st.greeted = false;
            st.suspended_until = Some(Instant::now() + backoff);
            st.suspend_reason = reason.to_string();
        }
        self.changed.notify_waiters();
    }

    /// A session was established: the destination is responsive.
    pub(crate) fn greeted(&self) {
        let mut st = self.lock();
        if !st.greeted {
            st.greeted = true;
            st.suspensions = 0;
            st.suspended_until = None;
        }
    }

    /// Whether a delivery towards the destination may start now.
    pub(crate) fn admission(&self) -> DestinationAdmission {
        if let Some(s) = self.suspension() {
            return DestinationAdmission::Suspended {
                reply: s.reply,
                retry_after: s.remaining,
            };
        }
        let greeted = self.lock().greeted;
        DestinationAdmission::Open {
            share: (!greeted).then(|| self.limits.max_connections.clamp(1, UNPROVEN_SHARE)),
        }
    }

    /// A connection slot, if the destination is below its current cap.
    pub(crate) fn try_open(self: &Arc<Self>) -> Option<ConnSlot> {
        let mut st = self.lock();
        if st.open >= st.cap {
            return None;
        }
        st.open += 1;
        st.peak = st.peak.max(st.open);
        Some(ConnSlot { dest: self.clone() })
    }

    /// Takes this transaction's turn under the rate, or says how long until there is one.
    pub(crate) fn take_turn(&self) -> Result<(), Duration> {
        let mut st = self.lock();
        let now = Instant::now();
        let elapsed = now.duration_since(st.window_start);
        if elapsed >= Duration::from_secs(60) {
            st.previous_count = if elapsed < Duration::from_secs(120) {
                st.window_count
            } else {
                0
            };
            st.window_count = 0;
            st.window_start = now;
        }
        if let Some(rate) = st.rate {
            let per_sec = rate / 60.0;
            let gained = now.duration_since(st.refilled).as_secs_f64() * per_sec;
            st.tokens = (st.tokens + gained).min(burst(rate));
            st.refilled = now;
            if st.tokens < 1.0 {
                let wait = (1.0 - st.tokens) / per_sec;
                return Err(Duration::from_secs_f64(wait.min(3600.0)));
            }
            st.tokens -= 1.0;
        }
        st.window_count += 1;
        Ok(())
    }

    /// The current regime, taken when a transaction starts (see [`Dest::throttled`]).
    pub(crate) fn epoch(&self) -> u64 {
        self.lock().epoch
    }

    /// The receiver said "too many connections / rate limited" to a transaction started in `epoch`: halve the
    /// concurrency and the rate (floor 1), once per regime.
    pub(crate) fn throttled(&self, epoch: u64) {
        let mut st = self.lock();
        st.throttle_signals += 1;
        if epoch != st.epoch {
            return;
        }
        st.epoch += 1;
        st.slowdowns += 1;
        st.since_change = 0;
        st.cap = (st.cap / 2).max(1);
        let current = st
            .rate
            .unwrap_or_else(|| st.window_count.max(st.previous_count).max(1) as f64);
        st.rate = Some((current / 2.0).max(1.0));
        st.tokens = 0.0;
        st.refilled = Instant::now();
    }

    /// A transaction delivered: every [`RECOVER_EVERY`] successes one step back towards the configured limits
    /// (one more connection, rate × 1.5).
    pub(crate) fn succeeded(&self) {
        let mut st = self.lock();
        st.successes += 1;
        st.since_change += 1;
        if st.since_change < RECOVER_EVERY {
            return;
        }
        st.since_change = 0;
        let max = self.limits.max_connections.max(1);
        let was_capped = st.cap < max;
        if was_capped {
            st.cap += 1;
        }
        if let Some(rate) = st.rate {
            let next = (rate * 1.5).max(rate + 1.0);
            st.rate = match st.ceiling {
                Some(c) if next >= c => Some(c),
                Some(_) => Some(next),
                // Configured unlimited: unlimited again once the concurrency is back.
                None if st.cap >= max => None,
                None => Some(next),
            };
        }
        if was_capped || st.rate != st.ceiling {
            drop(st);
            self.changed.notify_waiters();
        }
    }

    /// Wakes waiters (a session of this destination went back to the pool).
    pub(crate) fn notify(&self) {
        self.changed.notify_waiters();
    }

    fn snapshot(&self) -> DestinationState {
        let st = self.lock();
        DestinationState {
            domain: self.domain.clone(),
            limits: self.limits,
            connection_cap: st.cap,
            open_connections: st.open,
            peak_connections: st.peak,
            rate_per_minute: st.rate,
            throttle_signals: st.throttle_signals,
            slowdowns: st.slowdowns,
            successes: st.successes,
            greeted: st.greeted,
            suspended_for: st
                .suspended_until
                .and_then(|u| u.checked_duration_since(Instant::now()))
                .filter(|d| !d.is_zero()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, DestState> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Tokens kept at most: one second's worth, at least one message.
fn burst(rate_per_minute: f64) -> f64 {
    (rate_per_minute / 60.0).max(1.0)
}

/// A connection counted against its destination's cap; released (and waiters woken) when dropped with the session.
pub(crate) struct ConnSlot {
    pub(crate) dest: Arc<Dest>,
}

impl Drop for ConnSlot {
    fn drop(&mut self) {
        {
            let mut st = self.dest.lock();
            st.open = st.open.saturating_sub(1);
        }
        self.dest.changed.notify_waiters();
    }
}

/// Whether a reply (formatted `CODE [ESC] text`) says the receiver is limiting us: 421 at any stage, 451/452 with
/// an enhanced code 4.7.x, or 4xx text about rate limits / too many connections (but not 4.5.3 "too many
/// recipients", which is about one transaction).
pub fn is_throttle_reply(reply: &str) -> bool {
    let mut words = reply.split_whitespace();
    let Some(code) = words.next().and_then(|w| w.parse::<u16>().ok()) else {
        return false;
    };
    if !(400..500).contains(&code) {
        return false;
    }
    if code == 421 {
        return true;
    }
    let esc = words.next().unwrap_or("");
    if matches!(code, 451 | 452) && esc.starts_with("4.7.") {
        return true;
    }
    if esc == "4.5.3" {
        return false;
    }
    let text = reply.to_ascii_lowercase();
    [
        "rate limit",
        "rate-limit",
        "ratelimit",
        "too many",
        "throttl",
        "slow down",
    ]
    .iter()
    .any(|p| text.contains(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_limits_and_entries() {
        assert_eq!(
            DestinationLimits::parse("5/50/120").unwrap(),
            DestinationLimits {
                max_connections: 5,
                max_messages_per_connection: 50,
                max_per_minute: 120
            }
        );
        assert!(DestinationLimits::parse("0/50/120").is_err());
        assert!(DestinationLimits::parse("5/0/120").is_err());
        assert!(DestinationLimits::parse("5/50").is_err());
        assert!(DestinationLimits::parse("a/b/c").is_err());
        let d = ShapingConfig::parse_domains(" gmail.com = 20/100/600 ; QQ.com=5/50/120;").unwrap();
        assert_eq!(d.len(), 2);
        assert_eq!(d["qq.com"].max_connections, 5);
        assert!(ShapingConfig::parse_domains("gmail.com").is_err());
        assert!(ShapingConfig::parse_domains("=1/1/1").is_err());
        let cfg = ShapingConfig {
            domains: d,
            ..ShapingConfig::default()
        };
        assert_eq!(cfg.limits_for("gmail.com").max_connections, 20);
        assert_eq!(cfg.limits_for("Mail.GMAIL.com.").max_connections, 20, "subdomains");
        assert_eq!(cfg.limits_for("example.com"), DestinationLimits::default());
        assert_eq!(cfg.limits_for("com"), DestinationLimits::default());
    }

    #[test]
    fn throttle_replies() {
        assert!(is_throttle_reply("421 4.7.0 Too many connections"));
        assert!(is_throttle_reply("421 Service not available"));
        assert!(is_throttle_reply("451 4.7.1 Please slow down"));
        assert!(is_throttle_reply("452 4.7.28 rate"));
        assert!(is_throttle_reply(
            "450 4.2.1 The user you are trying to contact is receiving mail at a rate limit"
        ));
        assert!(is_throttle_reply("451 Too many messages from your IP"));
        assert!(!is_throttle_reply("452 4.5.3 Too many recipients"));
        assert!(!is_throttle_reply(
            "454 4.7.0 TLS not available (STARTTLS refused, TLS required)"
        ));
        assert!(!is_throttle_reply("451 4.3.0 try later"));
        assert!(!is_throttle_reply("550 5.7.1 rate limit"));
        assert!(!is_throttle_reply("4.4.1 connection failed: too many open files"));
        assert!(!is_throttle_reply(""));
    }

    #[test]
    fn slots_are_capped_and_released() {
        let d = Arc::new(Dest::new(
            "x.com".into(),
            DestinationLimits {
                max_connections: 2,
                ..DestinationLimits::default()
            },
        ));
        let a = d.try_open().unwrap();
        let _b = d.try_open().unwrap();
        assert!(d.try_open().is_none());
        drop(a);
        let _c = d.try_open().unwrap();
        let s = d.snapshot();
        assert_eq!((s.open_connections, s.peak_connections, s.connection_cap), (2, 2, 2));
    }

    #[test]
    fn throttling_halves_once_per_regime_and_recovers() {
        let d = Dest::new(
            "x.com".into(),
            DestinationLimits {
                max_connections: 8,
                max_messages_per_connection: 100,
                max_per_minute: 600,
            },
        );
        let e = d.epoch();
        d.throttled(e);
        d.throttled(e); // the same overload seen by a second connection
        let s = d.snapshot();
        assert_eq!(
            (s.connection_cap, s.rate_per_minute, s.slowdowns, s.throttle_signals),
            (4, Some(300.0), 1, 2)
        );
        d.throttled(d.epoch());
        assert_eq!(d.snapshot().connection_cap, 2);
        for _ in 0..3 {
            d.throttled(d.epoch());
        }
        let s = d.snapshot();
        assert_eq!(s.connection_cap, 1, "floor 1");
        assert!(s.rate_per_minute.unwrap() >= 1.0);
        for _ in 0..RECOVER_EVERY {
            d.succeeded();
        }
        assert_eq!(d.snapshot().connection_cap, 2);
        for _ in 0..RECOVER_EVERY * 20 {
            d.succeeded();
        }
        let s = d.snapshot();
        assert_eq!(
            (s.connection_cap, s.rate_per_minute),
            (8, Some(600.0)),
            "fully recovered"
        );
    }

    #[test]
    fn unlimited_rate_slows_from_the_observed_rate_and_recovers_to_unlimited() {
        let d = Dest::new("x.com".into(), DestinationLimits::default());
        for _ in 0..40 {
            d.take_turn().unwrap();
        }
        d.throttled(d.epoch());
        let s = d.snapshot();
        assert_eq!(s.rate_per_minute, Some(20.0));
        assert_eq!(s.connection_cap, 5);
        assert!(d.take_turn().is_err(), "the bucket was emptied");
        for _ in 0..RECOVER_EVERY * 10 {
            d.succeeded();
        }
        let s = d.snapshot();
        assert_eq!((s.connection_cap, s.rate_per_minute), (10, None));
    }

    #[test]
    fn rate_turns() {
        let d = Dest::new(
            "x.com".into(),
            DestinationLimits {
                max_per_minute: 120,
                ..DestinationLimits::default()
            },
        );
        // One second's worth (2 messages) may go at once, then one every 0.5 s.
        assert!(d.take_turn().is_ok());
        assert!(d.take_turn().is_ok());
        let wait = d.take_turn().unwrap_err();
        assert!(wait <= Duration::from_millis(500), "{wait:?}");
    }
}
