//! TXT and MX lookups for verification, through hickory-resolver against the configured servers (or the
//! system configuration), with the cache off: a customer who just fixed a record must see it at once.

use hickory_resolver::TokioResolver;
use hickory_resolver::proto::rr::{Name, RData};
use std::net::SocketAddr;
use std::time::Duration;

/// The resolver could not be built.
#[derive(Debug, thiserror::Error)]
#[error("DNS resolver configuration: {0}")]
pub struct DnsError(String);

/// The result of one lookup: records (none when the name or the type does not exist), or a failure that
/// says nothing about the records (timeout, SERVFAIL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup<T> {
    /// What DNS holds (possibly nothing).
    Found(T),
    /// The lookup failed.
    Error(String),
}

/// Uncached TXT/MX lookups. Cheap to clone.
#[derive(Clone)]
pub struct DnsChecker {
    resolver: TokioResolver,
}

impl std::fmt::Debug for DnsChecker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DnsChecker").finish_non_exhaustive()
    }
}

impl DnsChecker {
    /// A checker asking `servers` (ip:port; empty = the system's resolv.conf), `timeout` per query.
    pub fn new(servers: &[SocketAddr], timeout: Duration) -> Result<DnsChecker, DnsError> {
        let mut builder = mailpush_resolver::builder(servers).map_err(|e| DnsError(e.to_string()))?;
        let opts = builder.options_mut();
        opts.timeout = timeout;
        opts.cache_size = 0;
        opts.positive_max_ttl = Some(Duration::ZERO);
        opts.negative_max_ttl = Some(Duration::ZERO);
        let resolver = builder.build().map_err(|e| DnsError(e.to_string()))?;
        Ok(DnsChecker { resolver })
    }

    fn name(name: &str) -> Result<Name, String> {
        // Fully qualified so resolv.conf search domains never apply.
        Name::from_ascii(format!("{}.", name.trim_end_matches('.'))).map_err(|e| format!("{name}: {e}"))
    }

    /// TXT records at `name`, each record's character-strings concatenated (RFC 7208 §3.3, RFC 6376 §3.6.2.2).
    pub async fn txt(&self, name: &str) -> Lookup<Vec<String>> {
        let n = match Self::name(name) {
            Ok(n) => n,
            Err(e) => return Lookup::Error(e),
        };
        let answer = self.resolver.txt_lookup(n).await;
        mailpush_telemetry::dns_lookup("txt", mailpush_resolver::lookup_failed(&answer));
        match answer {
            Ok(lookup) => Lookup::Found(mailpush_resolver::txt_strings(lookup.answers())),
            Err(e) if mailpush_resolver::no_such_records(&e) => Lookup::Found(Vec::new()),
            Err(e) => Lookup::Error(e.to_string()),
        }
    }

    /// MX records at `name` as (preference, exchange without trailing dot), in preference order.
    pub async fn mx(&self, name: &str) -> Lookup<Vec<(u16, String)>> {
        let n = match Self::name(name) {
            Ok(n) => n,
            Err(e) => return Lookup::Error(e),
        };
        let answer = self.resolver.mx_lookup(n).await;
        mailpush_telemetry::dns_lookup("mx", mailpush_resolver::lookup_failed(&answer));
        match answer {
            Ok(lookup) => {
                let mut v: Vec<(u16, String)> = lookup
                    .answers()
                    .iter()
                    .filter_map(|r| match &r.data {
                        RData::MX(mx) => Some((
                            mx.preference,
                            mx.exchange.to_ascii().trim_end_matches('.').to_ascii_lowercase(),
                        )),
                        _ => None,
                    })
                    .collect();
                v.sort();
                Lookup::Found(v)
            }
            Err(e) if mailpush_resolver::no_such_records(&e) => Lookup::Found(Vec::new()),
            Err(e) => Lookup::Error(e.to_string()),
        }
    }
}
