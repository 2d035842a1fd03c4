//! Finding where mail for a domain goes: MX lookup (RFC 5321 §5.1, RFC 7505 null MX) with
//! hickory-resolver.

use std::{
    collections::{HashMap, hash_map::RandomState},
    hash::{BuildHasher, Hasher},
    net::{IpAddr, SocketAddr},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use hickory_resolver::{
    TokioResolver,
    config::{LookupIpStrategy, ResolverOpts},
    net::{DnsError, NetError},
    proto::{
        dnssec::Proof,
        rr::{Name, RData, Record, RecordType},
    },
};
pub use mailpush_resolver::TrustAnchor;

/// Which DNS servers to ask and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsSettings {
    /// Recursive resolvers (or, in tests, an authority) to query; empty means the system's
    /// `/etc/resolv.conf`.
    pub servers: Vec<SocketAddr>,
    /// Timeout of one query to one server.
    pub timeout: Duration,
    /// Cache answers for their TTL. Off means every [`MxResolver::route`] asks the servers again.
    pub cache: bool,
    /// Validate answers with DNSSEC from these trust anchors, which turns DANE on (RFC 7672): an MX host whose
    /// MX and address records are secure and which publishes secure TLSA records is only sent to over TLS with a
    /// certificate matching them. `None`: no validation, no DANE.
    pub dnssec: Option<TrustAnchor>,
}

impl Default for DnsSettings {
    fn default() -> Self {
        DnsSettings {
            servers: Vec::new(),
            timeout: Duration::from_secs(5),
            cache: true,
            dnssec: None,
        }
    }
}

/// Why a domain has no usable route. [`ResolveError::is_permanent`] tells bounce from retry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// The domain does not exist (NXDOMAIN): permanent.
    #[error("domain {0} does not exist (NXDOMAIN)")]
    NxDomain(String),
    /// The domain publishes a null MX (RFC 7505): it accepts no mail. Permanent.
    #[error("domain {0} does not accept mail (null MX)")]
    NullMx(String),
    /// No MX and no A/AAAA, or no MX host has an address: permanent.
    #[error("no mail route: {0}")]
    NoRoute(String),
    /// A timeout, SERVFAIL or network error, or (validating) an answer whose DNSSEC signatures do not verify:
    /// try again later.
    #[error("temporary DNS failure: {0}")]
    Temporary(String),
    /// The resolver could not be set up (unreadable resolv.conf …).
    #[error("DNS resolver configuration: {0}")]
    Config(String),
}

impl ResolveError {
    /// True for errors that will not go away by retrying (NXDOMAIN, null MX, no route).
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            ResolveError::NxDomain(_) | ResolveError::NullMx(_) | ResolveError::NoRoute(_)
        )
    }
}

/// One mail exchanger of a domain, with its addresses resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MxHost {
    /// The exchanger's host name, without the trailing dot (the domain itself for an implicit MX).
    pub name: String,
    /// MX preference; lower is tried first. 0 for an implicit MX.
    pub preference: u16,
    /// Addresses, IPv4 first.
    pub addrs: Vec<IpAddr>,
    /// The MX records and this host's addresses were DNSSEC-validated as secure, so its TLSA records, if
    /// secure too, are to be believed (DANE, RFC 7672 §2.2). Always false without validation.
    pub secure: bool,
}

/// MX resolution. Cheap to clone: clones share the resolver and its caches.
#[derive(Clone)]
pub struct MxResolver {
    resolver: TokioResolver,
    /// Answers are DNSSEC-validated (and DANE applies).
    validating: bool,
    /// Resolved routes until the first of their records' TTLs ends (`None` when caching is off). A route is an
    /// MX lookup plus an address lookup per exchanger: even answered from hickory's cache that is a few
    /// futures, name clones and (for a host without AAAA, whose negative answer may not be cacheable) a query
    /// per delivery; here it is one map lookup.
    routes: Option<Arc<Mutex<HashMap<String, CachedRoute>>>>,
}

/// A route in [`MxResolver`]'s cache: the hosts sorted by preference, not yet shuffled.
struct CachedRoute {
    until: Instant,
    hosts: Vec<MxHost>,
}

/// Domains whose routes are cached at most; beyond, expired routes are dropped (all, if none has expired).
const MAX_CACHED_ROUTES: usize = 10_000;

impl std::fmt::Debug for MxResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MxResolver").finish_non_exhaustive()
    }
}

impl MxResolver {
    /// Builds a resolver for `settings`.
    pub fn new(settings: &DnsSettings) -> Result<Self, ResolveError> {
        let config = |e: mailpush_resolver::ResolverError| ResolveError::Config(e.to_string());
        let mut builder = mailpush_resolver::builder(&settings.servers).map_err(config)?;
        if let Some(anchor) = &settings.dnssec {
            builder = mailpush_resolver::validating(builder, anchor).map_err(config)?;
        }
        let opts: &mut ResolverOpts = builder.options_mut();
        opts.timeout = settings.timeout;
        // A first: most sending IPs have better reputation (and rDNS) on IPv4.
        opts.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
        if !settings.cache {
            opts.cache_size = 0;
            opts.positive_max_ttl = Some(Duration::ZERO);
            opts.negative_max_ttl = Some(Duration::ZERO);
        }
        let resolver = builder.build().map_err(|e| ResolveError::Config(e.to_string()))?;
        let routes = settings.cache.then(|| Arc::new(Mutex::new(HashMap::new())));
        Ok(MxResolver {
            resolver,
            validating: settings.dnssec.is_some(),
            routes,
        })
    }

    /// Whether answers are DNSSEC-validated, i.e. whether DANE applies.
    pub fn validates_dnssec(&self) -> bool {
        self.validating
    }

    /// The hickory resolver, for the TLSA lookups of DANE.
    pub(crate) fn hickory(&self) -> &TokioResolver {
        &self.resolver
    }

    /// The mail exchangers of `domain` (ASCII, IDN already converted), best first: sorted by
    /// preference with equal preferences shuffled, each with its addresses. A domain without MX
    /// records gets its own A/AAAA as an implicit MX (RFC 5321 §5.1). Hosts whose names do not
    /// resolve are left out; if none is left the route is [`ResolveError::NoRoute`]
    /// (or `Temporary` when a lookup failed temporarily).
    pub async fn route(&self, domain: &str) -> Result<Vec<MxHost>, ResolveError> {
        let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
        let cached = self.routes.as_ref().and_then(|routes| {
            let routes = routes.lock().unwrap_or_else(|p| p.into_inner());
            routes
                .get(&domain)
                .filter(|r| r.until > Instant::now())
                .map(|r| r.hosts.clone())
        });
        let mut hosts = match cached {
            Some(hosts) => hosts,
            None => {
                let (hosts, until) = self.resolve(&domain).await?;
                if let Some(routes) = &self.routes {
                    let mut routes = routes.lock().unwrap_or_else(|p| p.into_inner());
                    if routes.len() >= MAX_CACHED_ROUTES {
                        let now = Instant::now();
                        routes.retain(|_, r| r.until > now);
                        if routes.len() >= MAX_CACHED_ROUTES {
                            routes.clear();
                        }
                    }
                    routes.insert(
                        domain,
                        CachedRoute {
                            until,
                            hosts: hosts.clone(),
                        },
                    );
                }
                hosts
            }
        };
        shuffle_equal_preferences(&mut hosts, |h| h.preference);
        Ok(hosts)
    }

    /// Resolves `domain`'s route (hosts sorted by preference) and when the first of its records expires.
    async fn resolve(&self, domain: &str) -> Result<(Vec<MxHost>, Instant), ResolveError> {
        // Fully qualified so resolv.conf search domains never apply.
        let name = Name::from_ascii(format!("{domain}."))
            .map_err(|e| ResolveError::NoRoute(format!("{domain} is not a valid domain name: {e}")))?;

        let mx = self.resolver.mx_lookup(name.clone()).await;
        mailpush_telemetry::dns_lookup("mx", mailpush_resolver::lookup_failed(&mx));
        let (mut exchangers, mut until, mx_secure) = match mx {
            Ok(lookup) => (
                lookup
                    .answers()
                    .iter()
                    .filter_map(|r| match &r.data {
                        RData::MX(mx) => Some((mx.preference, mx.exchange.clone())),
                        _ => None,
                    })
                    .collect::<Vec<_>>(),
                lookup.valid_until(),
                self.validating && all_secure(lookup.answers(), RecordType::MX),
            ),
            Err(e) if e.is_nx_domain() => return Err(ResolveError::NxDomain(domain.to_string())),
            // No MX: the implicit MX's address lookup decides how long the route holds (and whether it is secure).
            Err(e) if e.is_no_records_found() => (
                Vec::new(),
                Instant::now() + Duration::from_secs(86_400),
                self.validating,
            ),
            Err(e) if is_bogus(&e) => {
                return Err(ResolveError::Temporary(format!(
                    "MX lookup for {domain}: DNSSEC validation failed (bogus answer)"
                )));
            }
            Err(e) => {
                return Err(ResolveError::Temporary(format!("MX lookup for {domain}: {e}")));
            }
        };

        if exchangers.is_empty() {
            return match self.addresses(name).await {
                Ok((addrs, valid, secure)) if !addrs.is_empty() => Ok((
                    vec![MxHost {
                        name: domain.to_string(),
                        preference: 0,
                        addrs,
                        secure: mx_secure && secure,
                    }],
                    until.min(valid),
                )),
                Ok(_) => Err(ResolveError::NoRoute(format!(
                    "{domain} has no MX and no A/AAAA records"
                ))),
                Err(e) if mailpush_resolver::no_such_records(&e) => Err(ResolveError::NoRoute(format!(
                    "{domain} has no MX and no A/AAAA records"
                ))),
                Err(e) => Err(ResolveError::Temporary(format!("address lookup for {domain}: {e}"))),
            };
        }

        // RFC 7505: a lone "." exchanger means no mail; "." beside real hosts is ignored.
        if exchangers.iter().all(|(_, x)| x.is_root()) {
            return Err(ResolveError::NullMx(domain.to_string()));
        }
        exchangers.retain(|(_, x)| !x.is_root());
        exchangers.sort_by_key(|(pref, _)| *pref);

        let mut hosts = Vec::with_capacity(exchangers.len());
        let mut temporary = None;
        for (preference, exchange) in exchangers {
            let host = exchange.to_ascii().trim_end_matches('.').to_ascii_lowercase();
            match self.addresses(exchange).await {
                Ok((addrs, valid, secure)) if !addrs.is_empty() => {
                    until = until.min(valid);
                    hosts.push(MxHost {
                        name: host,
                        preference,
                        addrs,
                        secure: mx_secure && secure,
                    });
                }
                Ok(_) => {}
                Err(e) if mailpush_resolver::no_such_records(&e) => {}
                Err(e) => temporary = Some(format!("address lookup for MX {host} of {domain}: {e}")),
            }
        }
        if hosts.is_empty() {
            return Err(match temporary {
                Some(t) => ResolveError::Temporary(t),
                None => ResolveError::NoRoute(format!("none of the MX hosts of {domain} has an address")),
            });
        }
        if temporary.is_some() {
            // An exchanger is missing for a moment: use the others now, ask again next time.
            until = Instant::now();
        }
        Ok((hosts, until))
    }

    /// The addresses of host `host` (A and AAAA, IPv4 first): e.g. a relay host's. An unknown name is
    /// [`ResolveError::NxDomain`], a name without addresses [`ResolveError::NoRoute`].
    pub async fn host_addresses(&self, host: &str) -> Result<Vec<IpAddr>, ResolveError> {
        let host = host.trim().trim_end_matches('.').to_ascii_lowercase();
        let name = Name::from_ascii(format!("{host}."))
            .map_err(|e| ResolveError::NoRoute(format!("{host} is not a valid host name: {e}")))?;
        match self.addresses(name).await {
            Ok((addrs, _, _)) if !addrs.is_empty() => Ok(addrs),
            Ok(_) => Err(ResolveError::NoRoute(format!("{host} has no A/AAAA records"))),
            Err(e) if e.is_nx_domain() => Err(ResolveError::NxDomain(host)),
            Err(e) if e.is_no_records_found() => Err(ResolveError::NoRoute(format!("{host} has no A/AAAA records"))),
            Err(e) => Err(ResolveError::Temporary(format!("address lookup for {host}: {e}"))),
        }
    }

    /// The TXT records at `name` (e.g. `_mta-sts.<domain>`, `_smtp._tls.<domain>`), each record's strings
    /// concatenated; none for a name without TXT records or that does not exist.
    pub async fn txt(&self, name: &str) -> Result<Vec<String>, ResolveError> {
        let name = name.trim().trim_end_matches('.').to_ascii_lowercase();
        let fqdn = Name::from_ascii(format!("{name}."))
            .map_err(|e| ResolveError::NoRoute(format!("{name} is not a valid name: {e}")))?;
        let answer = self.resolver.txt_lookup(fqdn).await;
        mailpush_telemetry::dns_lookup("txt", mailpush_resolver::lookup_failed(&answer));
        match answer {
            Ok(lookup) => Ok(mailpush_resolver::txt_strings(lookup.answers())),
            Err(e) if mailpush_resolver::no_such_records(&e) => Ok(Vec::new()),
            Err(e) => Err(ResolveError::Temporary(format!("TXT lookup for {name}: {e}"))),
        }
    }

    /// `name`'s addresses, until when they hold, and whether they were DNSSEC-validated as secure.
    async fn addresses(&self, name: Name) -> Result<(Vec<IpAddr>, Instant, bool), NetError> {
        let lookup = self.resolver.lookup_ip(name).await;
        mailpush_telemetry::dns_lookup("ip", mailpush_resolver::lookup_failed(&lookup));
        let lookup = lookup?;
        let mut addrs: Vec<IpAddr> = Vec::new();
        for ip in lookup.iter() {
            if !addrs.contains(&ip) {
                addrs.push(ip);
            }
        }
        let secure = self.validating
            && lookup
                .as_lookup()
                .answers()
                .iter()
                .filter(|r| matches!(r.record_type(), RecordType::A | RecordType::AAAA))
                .all(|r| r.proof == Proof::Secure);
        Ok((addrs, lookup.valid_until(), secure))
    }
}

/// Whether the records of `record_type` among `answers` are all secure (and there is at least one). RRSIGs and
/// a CNAME chain leading to them count too: an insecure alias makes the whole answer insecure.
pub(crate) fn all_secure(answers: &[Record], record_type: RecordType) -> bool {
    answers.iter().any(|r| r.record_type() == record_type)
        && answers
            .iter()
            .filter(|r| r.record_type() != RecordType::RRSIG)
            .all(|r| r.proof == Proof::Secure)
}

/// "There are no such records" (NXDOMAIN, NODATA, or a validated denial that is not bogus).
pub(crate) fn is_denial(e: &NetError) -> bool {
    mailpush_resolver::no_such_records(e)
        || matches!(e, NetError::Dns(DnsError::Nsec { proof, .. }) if *proof != Proof::Bogus)
}

/// A validating resolver's "the signatures do not verify" (bogus, RFC 4035 §4.3), as opposed to a lookup that
/// failed or found nothing.
pub(crate) fn is_bogus(e: &NetError) -> bool {
    match e {
        NetError::Dns(DnsError::DnssecBogus) => true,
        NetError::Dns(DnsError::Nsec { proof, .. }) => *proof == Proof::Bogus,
        _ => false,
    }
}

/// Shuffles runs of equal preference in a list sorted by preference (RFC 5321 §5.1: spread the
/// load over equally preferred exchangers).
fn shuffle_equal_preferences<T>(sorted: &mut [T], preference: impl Fn(&T) -> u16) {
    let mut start = 0;
    while start < sorted.len() {
        let pref = preference(&sorted[start]);
        let end = start + sorted[start..].iter().take_while(|t| preference(t) == pref).count();
        let group = &mut sorted[start..end];
        // Fisher–Yates with std's randomly keyed hasher: no RNG dependency for a load-spreading shuffle.
        for i in (1..group.len()).rev() {
            let j = (random_u64() % (i as u64 + 1)) as usize;
            group.swap(i, j);
        }
        start = end;
    }
}

fn random_u64() -> u64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u64(0x9e37_79b9_7f4a_7c15);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shuffle_keeps_preference_order_and_mixes_ties() {
        let mut seen_first = std::collections::HashSet::new();
        for _ in 0..200 {
            let mut v = vec![(10u16, "a"), (10, "b"), (10, "c"), (20, "d"), (30, "e"), (30, "f")];
            shuffle_equal_preferences(&mut v, |(p, _)| *p);
            let prefs: Vec<_> = v.iter().map(|(p, _)| *p).collect();
            assert_eq!(prefs, [10, 10, 10, 20, 30, 30]);
            assert_eq!(v[3].1, "d");
            let mut first: Vec<_> = v[..3].iter().map(|(_, n)| *n).collect();
            seen_first.insert(first[0]);
            first.sort();
            assert_eq!(first, ["a", "b", "c"]);
        }
        assert_eq!(seen_first.len(), 3, "ties should be shuffled");
    }

    #[test]
    fn permanence() {
        assert!(ResolveError::NxDomain("x".into()).is_permanent());
        assert!(ResolveError::NullMx("x".into()).is_permanent());
        assert!(ResolveError::NoRoute("x".into()).is_permanent());
        assert!(!ResolveError::Temporary("x".into()).is_permanent());
        assert!(!ResolveError::Config("x".into()).is_permanent());
    }

    #[tokio::test]
    async fn builds_with_explicit_servers() {
        let s = DnsSettings {
            servers: vec!["127.0.0.1:1".parse().unwrap()],
            timeout: Duration::from_millis(200),
            cache: false,
            dnssec: None,
        };
        let r = MxResolver::new(&s).unwrap();
        let _clone = r.clone();
        // Nobody listens on that port (UDP gets ICMP refused, TCP is refused): temporary, not a bounce.
        let err = r.route("nowhere.mailpush-test.com").await.unwrap_err();
        assert!(matches!(err, ResolveError::Temporary(_)), "{err:?}");
    }
}
