//! One way to build a DNS resolver for every crate that resolves names (MX lookups in delivery, the DKIM/SPF
//! checks of identities, the SSRF-guarded callback client): the configured name servers, each over UDP and TCP
//! on its own port and never the hosts file, or the system's resolv.conf when none is configured; and, for
//! DANE, the same resolver validating its answers with DNSSEC ([`validating`]); and the readings of an answer
//! those crates share ([`no_such_records`], [`lookup_failed`], [`txt_strings`]).

#![warn(missing_docs)]

use std::net::SocketAddr;
use std::sync::Arc;

use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig};
use hickory_resolver::net::NetError;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::dnssec::TrustAnchors;
use hickory_resolver::proto::rr::{RData, Record};
use hickory_resolver::{Resolver, ResolverBuilder, TokioResolver};

/// The resolver could not be configured (no usable resolv.conf).
#[derive(Debug, thiserror::Error)]
#[error("DNS resolver: {0}")]
pub struct ResolverError(pub String);

/// A resolver builder asking exactly `servers` (ip:port, UDP and TCP), never the hosts file; with no `servers`,
/// the system's resolv.conf. Callers set their own options (timeout, caching, address families) before
/// `build()`.
pub fn builder(servers: &[SocketAddr]) -> Result<ResolverBuilder<TokioRuntimeProvider>, ResolverError> {
    if servers.is_empty() {
        return TokioResolver::builder_tokio().map_err(|e| ResolverError(e.to_string()));
    }
    let configs = servers
        .iter()
        .map(|addr| {
            let mut ns = NameServerConfig::udp_and_tcp(addr.ip());
            ns.connections = [ConnectionConfig::udp(), ConnectionConfig::tcp()]
                .into_iter()
                .map(|mut c| {
                    c.port = addr.port();
                    c
                })
                .collect();
            ns
        })
        .collect();
    let mut b = Resolver::builder_with_config(
        ResolverConfig::from_name_servers(configs),
        TokioRuntimeProvider::default(),
    );
    // Explicit servers: answers come from them only, never from /etc/hosts.
    b.options_mut().use_hosts_file = ResolveHosts::Never;
    Ok(b)
}

/// Where DNSSEC validation starts: the keys a validating resolver trusts without proof.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum TrustAnchor {
    /// The root zone's key-signing keys built into hickory (KSK-2017 and KSK-2024): validation on the Internet.
    #[default]
    Root,
    /// DNSKEY records in presentation format, one per line (`. 3600 IN DNSKEY 257 3 13 <base64>`): a private
    /// root such as the test DNS authority's, or the keys of particular zones.
    Keys(String),
}

impl TrustAnchor {
    /// The anchors as hickory holds them; an error when `Keys` holds no parseable DNSKEY record.
    fn anchors(&self) -> Result<TrustAnchors, ResolverError> {
        match self {
            TrustAnchor::Root => Ok(TrustAnchors::default()),
            TrustAnchor::Keys(text) => {
                if !text.lines().any(|l| l.to_ascii_uppercase().contains("DNSKEY")) {
                    return Err(ResolverError("DNSSEC trust anchor: no DNSKEY record given".into()));
                }
                text.parse()
                    .map_err(|e| ResolverError(format!("DNSSEC trust anchor: {e}")))
            }
        }
    }
}

/// `builder` made to validate every answer with DNSSEC (RFC 4035) from `anchor`: each record then carries its
/// proof (`Record::proof`: secure, insecure), and a bogus answer is the error `DnsError::DnssecBogus`.
pub fn validating(
    builder: ResolverBuilder<TokioRuntimeProvider>,
    anchor: &TrustAnchor,
) -> Result<ResolverBuilder<TokioRuntimeProvider>, ResolverError> {
    Ok(builder.with_trust_anchor(Arc::new(anchor.anchors()?)))
}

/// Whether `e` is the answer "no such records" (NXDOMAIN, or the name without records of the type) rather than a
/// lookup that got no answer (timeout, SERVFAIL).
pub fn no_such_records(e: &NetError) -> bool {
    e.is_nx_domain() || e.is_no_records_found()
}

/// Whether a lookup's `result` failed for lack of an answer: what the DNS failure metric counts, so NXDOMAIN
/// and empty answers are not failures.
pub fn lookup_failed<T>(result: &Result<T, NetError>) -> bool {
    result.as_ref().is_err_and(|e| !no_such_records(e))
}

/// The TXT records among `answers`, each record's character-strings concatenated (RFC 7208 §3.3,
/// RFC 6376 §3.6.2.2); other record types are skipped.
pub fn txt_strings(answers: &[Record]) -> Vec<String> {
    answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::TXT(txt) => Some(
                txt.txt_data
                    .iter()
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .collect::<String>(),
            ),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_servers_never_read_the_hosts_file() {
        let server: SocketAddr = "127.0.0.1:5353".parse().expect("addr");
        let mut b = builder(&[server]).expect("builder");
        assert!(matches!(b.options_mut().use_hosts_file, ResolveHosts::Never));
    }

    #[test]
    fn txt_records_join_their_strings_and_skip_other_types() {
        use hickory_resolver::proto::rr::Name;
        use hickory_resolver::proto::rr::rdata::{A, TXT};

        let name = Name::from_ascii("example.com.").expect("name");
        let answers = [
            Record::from_rdata(
                name.clone(),
                60,
                RData::TXT(TXT::new(vec!["v=spf1 ".into(), "-all".into()])),
            ),
            Record::from_rdata(name.clone(), 60, RData::A(A::new(192, 0, 2, 1))),
            Record::from_rdata(name, 60, RData::TXT(TXT::new(vec!["second".into()]))),
        ];
        assert_eq!(txt_strings(&answers), ["v=spf1 -all", "second"]);
        assert!(txt_strings(&[]).is_empty());
    }

    #[test]
    fn only_a_missing_answer_is_a_failed_lookup() {
        assert!(lookup_failed::<()>(&Err(NetError::Timeout)));
        assert!(!no_such_records(&NetError::Timeout));
        assert!(!lookup_failed(&Ok(())));
    }

    #[test]
    fn trust_anchors_parse_or_say_why_not() {
        use hickory_resolver::proto::dnssec::crypto::EcdsaSigningKey;
        use hickory_resolver::proto::dnssec::rdata::DNSKEY;
        use hickory_resolver::proto::dnssec::{Algorithm, SigningKey};

        assert!(TrustAnchor::Root.anchors().is_ok());
        let algorithm = Algorithm::ECDSAP256SHA256;
        let pkcs8 = EcdsaSigningKey::generate_pkcs8(algorithm).expect("key");
        let key = EcdsaSigningKey::from_pkcs8(&pkcs8, algorithm).expect("key");
        let dnskey = DNSKEY::new(true, true, false, key.to_public_key().expect("public key"));
        let anchors = TrustAnchor::Keys(format!(". 3600 IN DNSKEY {dnskey}"))
            .anchors()
            .expect("parses");
        assert!(anchors.contains(dnskey.public_key()));
        assert!(TrustAnchor::Keys(String::new()).anchors().is_err());
        assert!(
            TrustAnchor::Keys(". IN DNSKEY 257 3 13 not-base64!".into())
                .anchors()
                .is_err()
        );
    }
}
