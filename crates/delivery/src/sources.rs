//! Source addresses of outgoing connections: named pools ("dedicated IPs"), hot standby between the members of a
//! pool, and the warm-up gate that says whether a member may carry more mail today.

use std::{
    collections::{BTreeMap, HashMap},
    future::Future,
    net::IpAddr,
    pin::Pin,
    sync::Mutex,
    time::{Duration, Instant},
};

/// The pool every sending domain uses unless it is assigned another one.
pub const SHARED_POOL: &str = "shared";

/// Why a pool specification is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourcePoolError {
    /// An entry is not `name=ip[,ip…]`.
    #[error("source pool entry {0:?} is not name=ip[,ip…]")]
    Syntax(String),
    /// A pool name with characters other than letters, digits, `_`, `-`, `.`.
    #[error("source pool name {0:?} may only hold letters, digits, '_', '-' and '.'")]
    Name(String),
    /// A member is not an IP address.
    #[error("source pool {pool}: {member:?} is not an IP address")]
    Address {
        /// The pool.
        pool: String,
        /// The bad member.
        member: String,
    },
    /// The same pool is declared twice.
    #[error("source pool {0} is declared twice")]
    Duplicate(String),
}

/// Named pools of source addresses. The shared pool (`source_ips` plus a pool named `shared`, if declared) is the
/// default; a domain assigned to an unknown pool also uses it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SourcePools {
    pools: BTreeMap<String, Vec<IpAddr>>,
}

impl SourcePools {
    /// The shared pool `shared` plus the named pools (a named pool `shared` is merged into the shared one).
    pub fn new(shared: Vec<IpAddr>, named: impl IntoIterator<Item = (String, Vec<IpAddr>)>) -> Self {
        let mut pools = BTreeMap::new();
        pools.insert(SHARED_POOL.to_string(), Vec::new());
        for (name, members) in std::iter::once((SHARED_POOL.to_string(), shared)).chain(named) {
            let list: &mut Vec<IpAddr> = pools.entry(name).or_default();
            for m in members {
                if !list.contains(&m) {
                    list.push(m);
                }
            }
        }
        SourcePools { pools }
    }

    /// Parses `name=ip,ip;name=ip` (whitespace ignored, empty = no named pool).
    pub fn parse_named(spec: &str) -> Result<Vec<(String, Vec<IpAddr>)>, SourcePoolError> {
        let mut out: Vec<(String, Vec<IpAddr>)> = Vec::new();
        for entry in spec.split(';').map(str::trim).filter(|e| !e.is_empty()) {
            let (name, members) = entry
                .split_once('=')
                .ok_or_else(|| SourcePoolError::Syntax(entry.to_string()))?;
            let name = name.trim();
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
            {
                return Err(SourcePoolError::Name(name.to_string()));
            }
            if out.iter().any(|(n, _)| n == name) {
                return Err(SourcePoolError::Duplicate(name.to_string()));
            }
            let mut ips = Vec::new();
            for m in members.split(',').map(str::trim).filter(|m| !m.is_empty()) {
                let ip: IpAddr = m.parse().map_err(|_| SourcePoolError::Address {
                    pool: name.to_string(),
                    member: m.to_string(),
                })?;
                ips.push(ip);
            }
            if ips.is_empty() {
                return Err(SourcePoolError::Syntax(entry.to_string()));
            }
            out.push((name.to_string(), ips));
        }
        Ok(out)
    }

    /// The members of `pool`; `None` or an unknown pool gives the shared pool's. Empty = the OS chooses.
    pub fn members(&self, pool: Option<&str>) -> &[IpAddr] {
        pool.and_then(|p| self.pools.get(p))
            .or_else(|| self.pools.get(SHARED_POOL))
            .map_or(&[], Vec::as_slice)
    }

    /// Whether `pool` is declared (`shared` always is).
    pub fn contains(&self, pool: &str) -> bool {
        self.pools.contains_key(pool)
    }

    /// Every pool with its members, by name.
    pub fn pools(&self) -> impl Iterator<Item = (&str, &[IpAddr])> {
        self.pools.iter().map(|(n, m)| (n.as_str(), m.as_slice()))
    }

    /// True when no pool has a member (every connection uses the OS's choice of source).
    pub fn is_empty(&self) -> bool {
        self.pools.values().all(Vec::is_empty)
    }
}

/// A boxed future returned by [`SourceGate`] methods.
pub type GateFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Decides whether a source address may carry more mail today (the warm-up of new source IPs). Implemented by the
/// service on its shared store, so that several workers agree; the transport asks before every transaction it
/// sends from a configured source (never for the OS's choice).
pub trait SourceGate: Send + Sync {
    /// Reserves up to `wanted` recipients' sends from `source` today and returns how many were granted (0: the
    /// source is at today's allowance). An error defers the mail briefly.
    fn reserve(&self, source: IpAddr, wanted: u32) -> GateFuture<'_, Result<u32, String>>;
    /// Gives back `count` reserved sends that were not used (the connection from `source` could not be made).
    fn release(&self, source: IpAddr, count: u32) -> GateFuture<'_, ()>;
}

/// Members that failed to connect recently: they are tried last until `period` has passed.
pub(crate) struct Avoided {
    period: Duration,
    until: Mutex<HashMap<IpAddr, Instant>>,
}

impl Avoided {
    pub(crate) fn new(period: Duration) -> Self {
        Avoided {
            period,
            until: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn mark(&self, ip: IpAddr) {
        let until = Instant::now() + self.period;
        self.lock().insert(ip, until);
    }

    pub(crate) fn clear(&self, ip: IpAddr) {
        self.lock().remove(&ip);
    }

    pub(crate) fn is_avoided(&self, ip: IpAddr) -> bool {
        let mut map = self.lock();
        match map.get(&ip) {
            Some(until) if *until > Instant::now() => true,
            Some(_) => {
                map.remove(&ip);
                false
            }
            None => false,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Instant>> {
        self.until.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn parses_named_pools() {
        let named = SourcePools::parse_named(" shared=127.0.0.2, 127.0.0.3 ; vip=127.0.0.4,::1;").unwrap();
        assert_eq!(named.len(), 2);
        let pools = SourcePools::new(vec![ip("127.0.0.9"), ip("127.0.0.2")], named);
        assert_eq!(pools.members(None), [ip("127.0.0.9"), ip("127.0.0.2"), ip("127.0.0.3")]);
        assert_eq!(pools.members(Some("vip")), [ip("127.0.0.4"), ip("::1")]);
        assert_eq!(pools.members(Some("nope")), pools.members(None));
        assert!(pools.contains("shared") && pools.contains("vip") && !pools.contains("nope"));
        assert!(SourcePools::parse_named("").unwrap().is_empty());
        assert!(SourcePools::default().members(None).is_empty());
        assert!(SourcePools::new(vec![], vec![]).is_empty());
    }

    #[test]
    fn rejects_bad_specs() {
        assert!(matches!(
            SourcePools::parse_named("vip"),
            Err(SourcePoolError::Syntax(_))
        ));
        assert!(matches!(
            SourcePools::parse_named("vip="),
            Err(SourcePoolError::Syntax(_))
        ));
        assert!(matches!(
            SourcePools::parse_named("v ip=127.0.0.1"),
            Err(SourcePoolError::Name(_))
        ));
        assert!(matches!(
            SourcePools::parse_named("vip=127.0.0.300"),
            Err(SourcePoolError::Address { .. })
        ));
        assert!(matches!(
            SourcePools::parse_named("a=127.0.0.1;a=127.0.0.2"),
            Err(SourcePoolError::Duplicate(_))
        ));
    }

    #[test]
    fn avoidance_expires() {
        let a = Avoided::new(Duration::from_secs(3600));
        assert!(!a.is_avoided(ip("127.0.0.2")));
        a.mark(ip("127.0.0.2"));
        assert!(a.is_avoided(ip("127.0.0.2")));
        a.clear(ip("127.0.0.2"));
        assert!(!a.is_avoided(ip("127.0.0.2")));
        let short = Avoided::new(Duration::ZERO);
        short.mark(ip("127.0.0.3"));
        assert!(!short.is_avoided(ip("127.0.0.3")));
    }
}
