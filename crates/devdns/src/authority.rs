//! An in-process authoritative DNS server over UDP and TCP whose records its owner changes at runtime.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use hickory_server::Server;
use hickory_server::net::runtime::Time;
use hickory_server::proto::op::{Edns, Header, HeaderCounts, LowerQuery, MessageType, Metadata, OpCode, ResponseCode};
use hickory_server::proto::rr::rdata::tlsa::{CertUsage, Matching, Selector};
use hickory_server::proto::rr::rdata::{A, AAAA, CNAME, MX, NS, TLSA, TXT};
use hickory_server::proto::rr::{Name, RData, Record, RecordType};
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use tokio::net::{TcpListener, UdpSocket};

use crate::DevDnsError;
use crate::dnssec::{ZoneSigner, nsec_at};

/// Longest character-string in a TXT record (RFC 1035 §3.3).
const TXT_CHUNK: usize = 255;
/// Bounds CNAME chasing so a loop set up by a test cannot hang the server.
const MAX_CNAME_CHAIN: usize = 8;
/// Attempts at finding a port free for both UDP and TCP.
const PORT_ATTEMPTS: usize = 20;
/// The query log keeps the most recent queries only, so long benchmarks do not grow it.
const QUERY_LOG_CAP: usize = 10_000;

/// An authoritative DNS server for any name, answering from an in-memory map.
///
/// Every answer has TTL [`DnsAuthority::TTL`] (1 s) and negative answers carry no SOA, so a
/// resolver caches positives for at most a second and negatives not at all. Tests that change
/// records and query again at once should build their resolver with the cache off (or call
/// `clear_cache()` after each change); with hickory-resolver 0.26:
///
/// ```ignore
/// use hickory_resolver::config::{NameServerConfig, ResolveHosts, ResolverConfig};
/// use hickory_resolver::net::runtime::TokioRuntimeProvider;
///
/// let mut ns = NameServerConfig::udp_and_tcp(dns.addr().ip()); // or ::udp / ::tcp
/// for c in &mut ns.connections {
///     c.port = dns.addr().port();
/// }
/// let mut builder = hickory_resolver::Resolver::builder_with_config(
///     ResolverConfig::from_name_servers(vec![ns]),
///     TokioRuntimeProvider::default(),
/// );
/// builder.options_mut().cache_size = 0; // every lookup reaches the authority
/// builder.options_mut().use_hosts_file = ResolveHosts::Never;
/// let resolver = builder.build()?;
/// ```
///
/// With [`DnsAuthority::enable_dnssec`] the answers are DNSSEC-signed (for queries with the DO bit), so a
/// validating resolver given [`DnsAuthority::trust_anchor`] sees them as secure, insecure or bogus as the test
/// arranges.
///
/// Stops serving when dropped.
pub struct DnsAuthority {
    addr: SocketAddr,
    zone: Arc<Mutex<Zone>>,
    server: Server<Handler>,
}

/// A second address serving the records of a [`DnsAuthority`] ([`DnsAuthority::mirror_on`]).
pub struct DnsMirror {
    addr: SocketAddr,
    _server: Server<Handler>,
}

impl std::fmt::Debug for DnsMirror {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DnsMirror")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl DnsMirror {
    /// The address it serves on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl std::fmt::Debug for DnsAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DnsAuthority")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Zone {
    /// Keyed by lower-case ASCII name without the trailing dot.
    records: HashMap<String, Vec<RData>>,
    servfail: HashSet<String>,
    queries: VecDeque<(String, RecordType)>,
    query_count: usize,
    /// Set by [`DnsAuthority::enable_dnssec`]: answers are signed as the root zone.
    signer: Option<Arc<ZoneSigner>>,
    /// Apexes of the unsigned zones delegated from the signed tree (keys, as `records`).
    unsigned_zones: HashSet<String>,
    /// Names whose signatures are served broken (keys, as `records`).
    bogus: HashSet<String>,
}

impl Zone {
    /// An empty non-terminal (a name with records only below it) exists: NOERROR, not NXDOMAIN.
    fn has_descendant(&self, key: &str) -> bool {
        if key.is_empty() {
            // The root is above every name.
            return !self.records.is_empty();
        }
        let suffix = format!(".{key}");
        self.records.keys().any(|k| k.ends_with(&suffix))
    }

    /// The apex of the unsigned zone `key` lies in (itself or an ancestor), if any.
    fn unsigned_apex(&self, key: &str) -> Option<&str> {
        self.unsigned_zones
            .iter()
            .filter(|apex| key == apex.as_str() || key.ends_with(&format!(".{apex}")))
            .max_by_key(|apex| apex.len())
            .map(String::as_str)
    }

    /// The record types present at `key`.
    fn types_at(&self, key: &str) -> Vec<RecordType> {
        let mut types: Vec<RecordType> = self
            .records
            .get(key)
            .map(|set| set.iter().map(RData::record_type).collect())
            .unwrap_or_default();
        types.sort();
        types.dedup();
        types
    }
}

/// Lower-case ASCII (punycode for IDNs), no trailing dot: how names are compared.
fn key_of(name: &str) -> String {
    let trimmed = name.trim().trim_end_matches('.');
    if trimmed.is_ascii() {
        return trimmed.to_ascii_lowercase();
    }
    match Name::from_utf8(trimmed) {
        Ok(parsed) => parsed.to_ascii().trim_end_matches('.').to_ascii_lowercase(),
        Err(_) => trimmed.to_lowercase(),
    }
}

/// Parses a name that goes into RDATA (MX exchange, CNAME target).
///
/// # Panics
/// If `name` is not a valid domain name: callers pass names they built (a bug otherwise), never outside input.
fn rdata_name(name: &str) -> Name {
    let trimmed = name.trim();
    if trimmed.is_empty() || trimmed == "." {
        return Name::root();
    }
    let parsed = if trimmed.is_ascii() {
        Name::from_ascii(trimmed)
    } else {
        Name::from_utf8(trimmed)
    };
    let mut parsed = parsed.unwrap_or_else(|e| panic!("invalid DNS name {name:?}: {e}"));
    parsed.set_fqdn(true);
    parsed
}

impl DnsAuthority {
    /// TTL of every record served.
    pub const TTL: u32 = 1;

    /// Starts serving on 127.0.0.1, UDP and TCP on the same free port. Must be called inside a
    /// tokio runtime.
    pub async fn start() -> Result<DnsAuthority, DevDnsError> {
        Self::start_on(IpAddr::V4(Ipv4Addr::LOCALHOST)).await
    }

    /// Like [`DnsAuthority::start`] on another local address (e.g. `127.0.0.53` or `::1`).
    pub async fn start_on(ip: IpAddr) -> Result<DnsAuthority, DevDnsError> {
        let (udp, tcp) = bind_same_port(ip).await?;
        let addr = udp.local_addr()?;
        let zone = Arc::new(Mutex::new(Zone::default()));
        let mut server = Server::new(Handler { zone: zone.clone() });
        server.register_socket(udp);
        // hickory closes TCP connections idle this long; resolvers reconnect transparently.
        server.register_listener(tcp, Duration::from_secs(30), 64);
        Ok(DnsAuthority { addr, zone, server })
    }

    /// The address (UDP and TCP) to point a resolver at.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves the same records on `addr` too (UDP and TCP), e.g. on port 53 for a program that can only use a
    /// system resolver; stops when the returned mirror is dropped.
    pub async fn mirror_on(&self, addr: SocketAddr) -> Result<DnsMirror, DevDnsError> {
        let udp = UdpSocket::bind(addr)
            .await
            .map_err(|source| DevDnsError::Bind { addr, source })?;
        let tcp = TcpListener::bind(addr)
            .await
            .map_err(|source| DevDnsError::Bind { addr, source })?;
        let mut server = Server::new(Handler {
            zone: self.zone.clone(),
        });
        server.register_socket(udp);
        server.register_listener(tcp, Duration::from_secs(30), 64);
        Ok(DnsMirror { addr, _server: server })
    }

    fn zone(&self) -> MutexGuard<'_, Zone> {
        self.zone.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn add(&self, name: &str, rdata: RData) {
        let mut zone = self.zone();
        let set = zone.records.entry(key_of(name)).or_default();
        // An RRset is a set: adding the same record twice keeps one.
        if !set.contains(&rdata) {
            set.push(rdata);
        }
    }

    /// Adds an A record.
    pub fn add_a(&self, name: &str, ip: Ipv4Addr) {
        self.add(name, RData::A(A(ip)));
    }

    /// Adds an AAAA record.
    pub fn add_aaaa(&self, name: &str, ip: Ipv6Addr) {
        self.add(name, RData::AAAA(AAAA(ip)));
    }

    /// Adds an MX record. `exchange` `"."` is the RFC 7505 null MX (see [`Self::set_null_mx`]).
    ///
    /// # Panics
    /// If `exchange` is not a valid domain name.
    pub fn add_mx(&self, name: &str, preference: u16, exchange: &str) {
        self.add(name, RData::MX(MX::new(preference, rdata_name(exchange))));
    }

    /// Replaces every MX of `name` with the RFC 7505 null MX (`MX 0 .`): "accepts no mail".
    pub fn set_null_mx(&self, name: &str) {
        self.remove(name, RecordType::MX);
        self.add(name, RData::MX(MX::new(0, Name::root())));
    }

    /// Adds a TXT record, split into 255-byte character-strings as real zone tooling does for
    /// long values such as 2048-bit DKIM keys. A resolver's client joins them back.
    pub fn add_txt(&self, name: &str, text: &str) {
        let chunks: Vec<&[u8]> = if text.is_empty() {
            vec![&[][..]]
        } else {
            text.as_bytes().chunks(TXT_CHUNK).collect()
        };
        self.add(name, RData::TXT(TXT::from_bytes(chunks)));
    }

    /// Adds a TXT record made of exactly these character-strings (each must be ≤ 255 bytes),
    /// for tests of how a verifier joins split records.
    ///
    /// # Panics
    /// If a string is longer than 255 bytes: it could not be encoded.
    pub fn add_txt_strings(&self, name: &str, strings: Vec<String>) {
        if let Some(long) = strings.iter().find(|s| s.len() > TXT_CHUNK) {
            panic!("TXT character-string longer than 255 bytes: {} bytes", long.len());
        }
        self.add(name, RData::TXT(TXT::new(strings)));
    }

    /// Adds a CNAME. Queries for other types at `name` get the CNAME plus, when the target is
    /// served here too, the target's records.
    ///
    /// # Panics
    /// If `target` is not a valid domain name.
    pub fn add_cname(&self, name: &str, target: &str) {
        self.add(name, RData::CNAME(CNAME(rdata_name(target))));
    }

    /// Adds a TLSA record (RFC 6698), e.g. at `_25._tcp.mx.example.com`: certificate usage, selector and
    /// matching type as their numbers (DANE-EE SPKI SHA-256 is `3 1 1`), then the association data.
    pub fn add_tlsa(&self, name: &str, usage: u8, selector: u8, matching: u8, data: &[u8]) {
        self.add(
            name,
            RData::TLSA(TLSA::new(
                CertUsage::from(usage),
                Selector::from(selector),
                Matching::from(matching),
                data.to_vec(),
            )),
        );
    }

    /// Removes the records of one type; the name becomes NXDOMAIN once it has none left.
    pub fn remove(&self, name: &str, record_type: RecordType) {
        let key = key_of(name);
        let mut zone = self.zone();
        if let Some(set) = zone.records.get_mut(&key) {
            set.retain(|r| r.record_type() != record_type);
            if set.is_empty() {
                zone.records.remove(&key);
            }
        }
    }

    /// Removes every record of `name` (it becomes NXDOMAIN unless names below it exist).
    pub fn remove_all(&self, name: &str) {
        self.zone().records.remove(&key_of(name));
    }

    /// While `on`, every query for `name` (any type) gets SERVFAIL, as from a broken server.
    pub fn set_servfail(&self, name: &str, on: bool) {
        let key = key_of(name);
        let mut zone = self.zone();
        if on {
            zone.servfail.insert(key);
        } else {
            zone.servfail.remove(&key);
        }
    }

    /// Removes every record, SERVFAIL flag, logged query, unsigned delegation and broken signature; DNSSEC
    /// stays on with the same key once enabled.
    pub fn clear(&self) {
        let mut zone = self.zone();
        let signer = zone.signer.take();
        *zone = Zone {
            signer,
            ..Zone::default()
        };
    }

    /// Signs every answer from now on (DNSSEC, RFC 4033–4035) with a fresh ECDSA P-256 key, as the root zone
    /// `.`: a validating resolver given [`Self::trust_anchor`] as its trust anchor finds every answer *secure*,
    /// except below [`Self::add_unsigned_zone`] delegations (*insecure*) and for names given to
    /// [`Self::set_bogus_signatures`] (*bogus*). Signatures are only sent to queries with the DO bit, so
    /// non-validating resolvers see the same answers as before. A name that does not exist is answered as
    /// NODATA with a signed NSEC record denying every type at it (compact denial, RFC 9824) rather than
    /// NXDOMAIN. Returns the trust anchor; calling it again keeps the key.
    pub fn enable_dnssec(&self) -> Result<String, DevDnsError> {
        let mut zone = self.zone();
        let signer = match &zone.signer {
            Some(signer) => signer.clone(),
            None => {
                let signer = Arc::new(ZoneSigner::generate()?);
                zone.signer = Some(signer.clone());
                signer
            }
        };
        Ok(signer.trust_anchor())
    }

    /// The DNSKEY of the signed root zone as a trust-anchor line (`. 3600 IN DNSKEY 257 3 13 <base64>`), the
    /// format resolvers read trust anchors in; `None` until [`Self::enable_dnssec`].
    pub fn trust_anchor(&self) -> Option<String> {
        self.zone().signer.as_ref().map(|s| s.trust_anchor())
    }

    /// Makes `apex` and everything below it an unsigned zone delegated from the signed tree: its records are
    /// served without signatures, an NS query at the apex gets an NS record, and a DS query there gets the
    /// signed proof that no DS exists, so a validating resolver finds its answers *insecure* (DNSSEC off for
    /// that domain, as for most of the Internet).
    pub fn add_unsigned_zone(&self, apex: &str) {
        self.zone().unsigned_zones.insert(key_of(apex));
    }

    /// While `on`, the signatures of `name`'s records are served with a flipped bit, so a validating resolver
    /// finds them *bogus* (a forged or corrupted answer).
    pub fn set_bogus_signatures(&self, name: &str, on: bool) {
        let key = key_of(name);
        let mut zone = self.zone();
        if on {
            zone.bogus.insert(key);
        } else {
            zone.bogus.remove(&key);
        }
    }

    /// The most recent queries (up to 10,000) as (lower-case name without trailing dot, type),
    /// oldest first: lets a test tell a cached answer from a fresh one.
    pub fn queries(&self) -> Vec<(String, RecordType)> {
        self.zone().queries.iter().cloned().collect()
    }

    /// Number of queries received since start or the last [`Self::clear`].
    pub fn query_count(&self) -> usize {
        self.zone().query_count
    }
}

impl Drop for DnsAuthority {
    fn drop(&mut self) {
        // Dropping `server` aborts its tasks as well; cancelling first lets them end cleanly.
        self.server.shutdown_token().cancel();
    }
}

async fn bind_same_port(ip: IpAddr) -> Result<(UdpSocket, TcpListener), DevDnsError> {
    for _ in 0..PORT_ATTEMPTS {
        let wanted = SocketAddr::new(ip, 0);
        let udp = UdpSocket::bind(wanted)
            .await
            .map_err(|source| DevDnsError::Bind { addr: wanted, source })?;
        let port = udp.local_addr()?.port();
        // The UDP port may be taken for TCP by someone else: just try another one.
        if let Ok(tcp) = TcpListener::bind(SocketAddr::new(ip, port)).await {
            return Ok((udp, tcp));
        }
    }
    Err(DevDnsError::NoSharedPort {
        ip,
        attempts: PORT_ATTEMPTS,
    })
}

struct Handler {
    zone: Arc<Mutex<Zone>>,
}

/// What one query gets.
struct Answer {
    code: ResponseCode,
    answers: Vec<Record>,
    authorities: Vec<Record>,
}

impl Answer {
    fn of(code: ResponseCode, answers: Vec<Record>) -> Answer {
        Answer {
            code,
            answers,
            authorities: Vec::new(),
        }
    }
}

impl Handler {
    /// Looks the query up (and signs the answer when DNSSEC is on and the query has the DO bit); the lock is
    /// released before any `.await`.
    fn answer(&self, query: &LowerQuery, dnssec_ok: bool) -> Answer {
        let qtype = query.query_type();
        // The original (not lower-cased) name is echoed so 0x20 case randomization still matches.
        let owner = query.original().name().clone();
        let key = key_of(&owner.to_ascii());
        let mut zone = self.zone.lock().unwrap_or_else(|e| e.into_inner());
        if zone.queries.len() == QUERY_LOG_CAP {
            zone.queries.pop_front();
        }
        zone.queries.push_back((key.clone(), qtype));
        zone.query_count += 1;
        if zone.servfail.contains(&key) {
            return Answer::of(ResponseCode::ServFail, Vec::new());
        }
        let Some(signer) = zone.signer.clone() else {
            let (code, answers) = lookup(&zone, owner, key, qtype);
            return Answer::of(code, answers);
        };

        if let Some(apex) = zone.unsigned_apex(&key) {
            let at_apex = apex == key;
            if at_apex && qtype == RecordType::NS {
                let ns = owner.prepend_label("ns").unwrap_or_else(|_| owner.clone());
                let record = Record::from_rdata(owner, Self::ttl(), RData::NS(NS(ns)));
                return Answer::of(ResponseCode::NoError, vec![record]);
            }
            if at_apex && qtype == RecordType::DS {
                // The parent's side of the delegation: a signed proof that the child has no DS (it is unsigned).
                let authorities = if dnssec_ok {
                    let nsec = nsec_at(&owner, [RecordType::NS], Self::ttl());
                    signer.sign_all(vec![nsec], |_| false, |_| true)
                } else {
                    Vec::new()
                };
                return Answer {
                    code: ResponseCode::NoError,
                    answers: Vec::new(),
                    authorities,
                };
            }
            let (code, answers) = lookup(&zone, owner, key, qtype);
            return Answer::of(code, answers);
        }

        let (code, answers) = if key.is_empty() && qtype == RecordType::DNSKEY {
            (ResponseCode::NoError, vec![signer.dnskey_record(Self::ttl())])
        } else {
            lookup(&zone, owner.clone(), key.clone(), qtype)
        };
        if !dnssec_ok {
            return Answer::of(code, answers);
        }
        let broken = |name: &Name| zone.bogus.contains(&key_of(&name.to_ascii()));
        let signed = |name: &Name| zone.unsigned_apex(&key_of(&name.to_ascii())).is_none();
        if answers.is_empty() && matches!(code, ResponseCode::NoError | ResponseCode::NXDomain) {
            let mut present = zone.types_at(&key);
            if key.is_empty() {
                present.push(RecordType::DNSKEY);
            }
            let nsec = nsec_at(&owner, present, Self::ttl());
            return Answer {
                code: ResponseCode::NoError,
                answers: Vec::new(),
                authorities: signer.sign_all(vec![nsec], broken, signed),
            };
        }
        Answer::of(code, signer.sign_all(answers, broken, signed))
    }

    fn ttl() -> u32 {
        DnsAuthority::TTL
    }
}

/// The records of `qtype` at `key` (whose name as asked is `owner`), following CNAMEs served here.
fn lookup(zone: &Zone, mut owner: Name, mut key: String, qtype: RecordType) -> (ResponseCode, Vec<Record>) {
    let mut answers = Vec::new();
    for _ in 0..MAX_CNAME_CHAIN {
        let Some(set) = zone.records.get(&key) else {
            let code = if answers.is_empty() && !zone.has_descendant(&key) {
                ResponseCode::NXDomain
            } else {
                ResponseCode::NoError
            };
            return (code, answers);
        };
        let before = answers.len();
        answers.extend(
            set.iter()
                .filter(|r| qtype == RecordType::ANY || r.record_type() == qtype)
                .map(|r| Record::from_rdata(owner.clone(), Handler::ttl(), r.clone())),
        );
        if answers.len() > before {
            return (ResponseCode::NoError, answers);
        }
        let target = set.iter().find_map(|r| match r {
            RData::CNAME(cname) => Some(cname.0.clone()),
            _ => None,
        });
        let Some(target) = target else {
            return (ResponseCode::NoError, answers);
        };
        answers.push(Record::from_rdata(
            owner.clone(),
            Handler::ttl(),
            RData::CNAME(CNAME(target.clone())),
        ));
        key = key_of(&target.to_ascii());
        owner = target;
    }
    (ResponseCode::NoError, answers)
}

#[async_trait::async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        // RFC 6891: a request with OPT gets OPT back.
        let mut edns = request.edns.as_ref().map(|req| {
            let mut edns = Edns::new();
            edns.set_max_payload(req.max_payload().max(512));
            edns.set_version(0);
            edns
        });
        let mut metadata = Metadata::response_from_request(&request.metadata);
        metadata.authoritative = true;
        let dnssec_ok = request.edns.as_ref().is_some_and(|e| e.flags().dnssec_ok);
        if let Some(edns) = edns.as_mut() {
            edns.set_dnssec_ok(dnssec_ok);
        }
        let answer = if request.metadata.message_type != MessageType::Query {
            Answer::of(ResponseCode::FormErr, Vec::new())
        } else if request.metadata.op_code != OpCode::Query {
            Answer::of(ResponseCode::NotImp, Vec::new())
        } else {
            match request.request_info() {
                Ok(info) => self.answer(info.query, dnssec_ok),
                Err(_) => Answer::of(ResponseCode::FormErr, Vec::new()),
            }
        };
        metadata.response_code = answer.code;
        let response = MessageResponseBuilder::new(&request.queries, edns.as_ref()).build(
            metadata,
            answer.answers.iter(),
            answer.authorities.iter(),
            std::iter::empty(),
            std::iter::empty(),
        );
        match response_handle.send_response(response).await {
            Ok(info) => info,
            Err(error) => {
                tracing::debug!(%error, "dns authority could not send a response");
                metadata.response_code = ResponseCode::ServFail;
                ResponseInfo::from(Header {
                    metadata,
                    counts: HeaderCounts::default(),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_ignore_case_and_trailing_dot() {
        assert_eq!(key_of("Example.COM."), "example.com");
        assert_eq!(key_of("example.com"), "example.com");
        assert_eq!(key_of("bücher.example"), "xn--bcher-kva.example");
    }
}
