//! Getting one message to the MX of one recipient domain, with per-recipient outcomes and
//! connection reuse.

use std::{
    collections::VecDeque,
    net::IpAddr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use mailpush_model::TlsRequirement;
use smtp_proto::Response;
use tokio::io::AsyncWriteExt;
use tracing::debug;

use crate::{
    dane::{self, DaneConnector, DanePolicy},
    mta_sts::{MtaSts, MtaStsMode, MtaStsPolicy, TlsFailure},
    pool::Pool,
    relay::{Relay, RelayTls},
    resolve::{MxHost, MxResolver, ResolveError},
    session::{
        ConnectError, Dial, PoolKey, Session, TlsConnectors, connect, data_payload, io_reason, reply_text,
        verified_tls_key,
    },
    shaping::{
        Dest, DestinationAdmission, DestinationState, Destinations, ShapingConfig, Suspension, is_throttle_reply,
    },
    sources::{Avoided, SourceGate, SourcePools},
    tls_report::{ReportedPolicy, TlsReportSink, TlsSessionFailure},
};

/// The start of the reason given when an MX does not offer REQUIRETLS to mail that requires it (RFC 8689 §5).
const NO_REQUIRETLS: &str = "5.7.30 REQUIRETLS support required:";

/// Most recipients sent in one SMTP transaction. RFC 5321 §4.5.3.1.8 obliges servers to accept
/// at least 100; more recipients are sent in further transactions (on the same connection when
/// reuse is enabled).
pub const MAX_RCPT_PER_TRANSACTION: usize = 100;

/// STARTTLS policy towards MX hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TlsPolicy {
    /// Upgrade with STARTTLS when offered, without verifying the certificate (as MTAs do for MX
    /// hosts without DANE or MTA-STS); plain text when not offered or when the handshake fails.
    #[default]
    Opportunistic,
    /// STARTTLS is mandatory and the certificate must verify (platform trust store) for the MX
    /// host name; otherwise the host is skipped and the delivery deferred.
    Required,
    /// Never use STARTTLS.
    Disabled,
}

/// How the SMTP client behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportConfig {
    /// Name sent in EHLO/HELO; should be the sending host's FQDN with matching reverse DNS.
    pub helo_name: String,
    /// Port dialled on MX hosts: 25 in production; tests use their sink's port.
    pub port: u16,
    /// Limit on establishing the TCP connection.
    pub connect_timeout: Duration,
    /// Limit on the greeting and on each EHLO reply. Shorter than the command timeout: a host that accepts
    /// connections and never greets (a tarpit) must not hold delivery slots for minutes.
    pub greeting_timeout: Duration,
    /// How long one delivery may spend reaching a session, over all MX addresses, before it is deferred
    /// rather than trying further addresses.
    pub delivery_deadline: Duration,
    /// Limit on each command's reply (greeting, EHLO, STARTTLS, MAIL, RCPT, DATA, RSET).
    pub command_timeout: Duration,
    /// Limit on sending the message body and receiving the reply to the final dot.
    pub data_timeout: Duration,
    /// STARTTLS policy.
    pub tls: TlsPolicy,
    /// Idle connections kept per (MX address, port, source address); 0 disables reuse.
    pub max_idle_per_host: usize,
    /// An idle connection older than this is closed instead of reused.
    pub idle_timeout: Duration,
    /// Transactions after which a connection is closed rather than kept.
    pub max_messages_per_connection: usize,
    /// The shared pool: local addresses to send from, used in turn (per address family); empty = the OS's
    /// choice.
    pub source_ips: Vec<IpAddr>,
    /// Named pools of source addresses ("dedicated IPs"); a pool named `shared` adds to `source_ips`.
    pub source_pools: Vec<(String, Vec<IpAddr>)>,
    /// How long a member that could not bind or connect is tried only after the other members.
    pub source_avoid: Duration,
    /// Per-destination limits (connections, messages per connection, messages per minute).
    pub shaping: ShapingConfig,
    /// A smarthost: when set, every message goes to it (its port, TLS policy and AUTH) instead of the
    /// recipient domain's MX hosts; `port` and `tls` then do not apply.
    pub relay: Option<Relay>,
    /// Certificates (DER) trusted as roots for verified TLS besides the platform's trust store: a private CA
    /// of the receiving MTAs (and of tests).
    pub tls_trust_roots: Vec<Vec<u8>>,
}

impl Default for TransportConfig {
    /// Port 25, opportunistic TLS, 15 s to connect, 30 s for the greeting and EHLO, 3 min to reach a session
    /// over all MX addresses, 2 min per command, 5 min for the body,
    /// up to 4 idle connections per host for 30 s and 100 messages each. `helo_name` defaults to
    /// `localhost` and must be set in production.
    fn default() -> Self {
        TransportConfig {
            helo_name: "localhost".to_string(),
            port: 25,
            connect_timeout: Duration::from_secs(15),
            greeting_timeout: Duration::from_secs(30),
            delivery_deadline: Duration::from_secs(180),
            command_timeout: Duration::from_secs(120),
            data_timeout: Duration::from_secs(300),
            tls: TlsPolicy::Opportunistic,
            max_idle_per_host: 4,
            idle_timeout: Duration::from_secs(30),
            max_messages_per_connection: 100,
            source_ips: Vec::new(),
            source_pools: Vec::new(),
            source_avoid: Duration::from_secs(300),
            shaping: ShapingConfig::default(),
            relay: None,
            tls_trust_roots: Vec::new(),
        }
    }
}

/// A message to send, in two parts sent one after the other: `head` (e.g. the DKIM-Signature fields, empty
/// for none) and `body` (the message they sign).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutgoingMessage<'a> {
    /// Sent first.
    pub head: &'a [u8],
    /// Sent after `head`.
    pub body: &'a [u8],
}

impl OutgoingMessage<'_> {
    /// Its length in bytes, as announced with SIZE.
    pub fn len(&self) -> usize {
        self.head.len() + self.body.len()
    }

    /// Whether it has no bytes at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn is_ascii(&self) -> bool {
        self.head.is_ascii() && self.body.is_ascii()
    }
}

/// The SMTP envelope of one send: one sender, recipients all in the same domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// Return path (`MAIL FROM`); empty for the null sender `<>` (bounces).
    pub mail_from: String,
    /// Recipients (`RCPT TO`), all of the domain given to [`SmtpTransport::send`].
    pub rcpt_to: Vec<String>,
    /// The message needs SMTPUTF8 (UTF-8 addresses or RFC 6532 headers). Also implied by a
    /// non-ASCII address in the envelope.
    pub smtputf8: bool,
    /// What the message demands of the connection: beyond [`TlsRequirement::None`] it goes only over
    /// STARTTLS with a certificate verified for the MX host name (whatever [`TransportConfig::tls`] says), on
    /// a session verified for that host; [`TlsRequirement::RequireTls`] also needs the receiver's `REQUIRETLS`.
    pub tls: TlsRequirement,
}

/// What happened to one recipient in this attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The MX accepted the message for this recipient (2xx after DATA).
    Delivered {
        /// The MX's reply, e.g. `250 2.0.0 Ok: queued as 1234`.
        reply: String,
    },
    /// Temporary failure: try again later (4xx, connection problems, temporary DNS failure).
    Deferred {
        /// The MX's reply, or a local reason starting with an RFC 3463 code (`4.4.1 connection …`).
        reply: String,
    },
    /// Permanent failure (5xx, NXDOMAIN, null MX, no route, invalid address).
    Bounced {
        /// The MX's reply, or a local reason starting with an RFC 3463 code (`5.1.2 domain …`).
        reply: String,
    },
    /// Not sent because of rate limiting: the receiver's ("too many connections / rate limited": 421, 4.7.x)
    /// or mailpush's own shaping towards the destination. Try again after `retry_after`; never a bounce.
    Throttled {
        /// The MX's reply, or a local reason (`4.7.0 local limit …`).
        reply: String,
        /// When to try again.
        retry_after: Duration,
    },
    /// Not sent: every source address of the pool has sent today's warm-up allowance. Try again the next UTC
    /// day; the wait is not the recipient's fault (the worker does not count it against the retry deadline).
    Held {
        /// `4.7.0 held for warm-up: …`.
        reply: String,
    },
    /// The message was sent but no reply to the final dot came (timeout, connection lost): the receiver may
    /// have it. Retried, since mail must not be lost, but only a few times, since each retry may duplicate it.
    Unknown {
        /// `4.4.2 … (status unknown)`.
        reply: String,
    },
}

impl Outcome {
    /// The reply text kept for the delivery status.
    pub fn reply(&self) -> &str {
        match self {
            Outcome::Delivered { reply }
            | Outcome::Deferred { reply }
            | Outcome::Bounced { reply }
            | Outcome::Throttled { reply, .. }
            | Outcome::Held { reply }
            | Outcome::Unknown { reply } => reply,
        }
    }

    fn from_reply(r: &Response<String>) -> Outcome {
        let reply = reply_text(r);
        match r.code {
            200..=299 => Outcome::Delivered { reply },
            500..=599 => Outcome::Bounced { reply },
            // 4xx, and anything unexpected: never lose mail on a protocol oddity.
            _ => Outcome::Deferred { reply },
        }
    }

    fn deferred(reply: impl Into<String>) -> Outcome {
        Outcome::Deferred { reply: reply.into() }
    }

    fn bounced(reply: impl Into<String>) -> Outcome {
        Outcome::Bounced { reply: reply.into() }
    }
}

/// The outcome for one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipientOutcome {
    /// The recipient, as given in [`Envelope::rcpt_to`].
    pub rcpt: String,
    /// What happened.
    pub outcome: Outcome,
}

/// The result of [`SmtpTransport::send`]: one outcome per recipient, in envelope order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendReport {
    /// One entry per envelope recipient, same order.
    pub outcomes: Vec<RecipientOutcome>,
    /// The MX that ran the (last) transaction, as `host[ip]:port`; `None` when no MX was reached.
    pub mx: Option<String>,
    /// Whether that transaction ran over TLS (STARTTLS).
    pub tls: bool,
    /// Whether that transaction's TLS certificate was authenticated by the MX host's TLSA records (DANE).
    pub dane: bool,
    /// The source address it was sent from; `None` = the OS's choice (or nothing was sent).
    pub source: Option<IpAddr>,
}

/// The SMTP client shared by all delivery tasks. Cheap to clone (an `Arc` inside); clones share
/// the idle-connection pool.
#[derive(Clone)]
pub struct SmtpTransport {
    inner: Arc<Inner>,
}

struct Inner {
    cfg: TransportConfig,
    resolver: MxResolver,
    pool: Pool,
    tls: TlsConnectors,
    next_source: AtomicUsize,
    pools: SourcePools,
    avoided: Avoided,
    destinations: Destinations,
    gate: Option<Arc<dyn SourceGate>>,
    /// MTA-STS policy discovery; `None`: not applied.
    mta_sts: Option<Arc<MtaSts>>,
    /// Where the TLS outcome of each new session goes (TLS-RPT); unset: nowhere.
    tls_reports: std::sync::OnceLock<Arc<dyn TlsReportSink>>,
}

impl std::fmt::Debug for SmtpTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpTransport")
            .field("cfg", &self.inner.cfg)
            .finish_non_exhaustive()
    }
}

/// How a transaction on a session ended.
enum Tx {
    /// Every recipient has an outcome; then the session label and whether it used TLS.
    Done(Vec<Outcome>, String, bool),
    /// A reused connection was dead before anything was accepted: retry on a fresh one.
    DeadReused(String),
}

impl SmtpTransport {
    /// A transport with an empty connection pool and no warm-up gate.
    pub fn new(cfg: TransportConfig, resolver: MxResolver) -> Self {
        Self::with_gate(cfg, resolver, None)
    }

    /// A transport whose configured source addresses are gated by `gate` (the warm-up of new source IPs).
    pub fn with_gate(cfg: TransportConfig, resolver: MxResolver, gate: Option<Arc<dyn SourceGate>>) -> Self {
        Self::with_policies(cfg, resolver, gate, None)
    }

    /// [`SmtpTransport::with_gate`] applying the receivers' MTA-STS policies (RFC 8461) discovered by `mta_sts`:
    /// towards a domain that enforces one, mail goes only to the MX hosts it names, over verified TLS.
    pub fn with_policies(
        cfg: TransportConfig,
        resolver: MxResolver,
        gate: Option<Arc<dyn SourceGate>>,
        mta_sts: Option<Arc<MtaSts>>,
    ) -> Self {
        let pool = Pool::new(
            cfg.max_idle_per_host,
            cfg.idle_timeout,
            cfg.max_messages_per_connection.max(1),
        );
        let pools = SourcePools::new(cfg.source_ips.clone(), cfg.source_pools.clone());
        let avoided = Avoided::new(cfg.source_avoid);
        let destinations = Destinations::new(cfg.shaping.clone());
        let tls = TlsConnectors::new(&cfg.tls_trust_roots);
        SmtpTransport {
            inner: Arc::new(Inner {
                cfg,
                resolver,
                pool,
                tls,
                next_source: AtomicUsize::new(0),
                pools,
                avoided,
                destinations,
                gate,
                mta_sts,
                tls_reports: std::sync::OnceLock::new(),
            }),
        }
    }

    /// Hands the TLS outcome of every new session towards an MX host (not a relay) to `sink`, from now on (TLS-RPT,
    /// RFC 8460). Under an MTA-STS `testing` policy each new session is first tried as `enforce` would, so that its
    /// failures are known; the mail then goes as the configured policy allows. Only the first sink set counts.
    pub fn report_tls_to(&self, sink: Arc<dyn TlsReportSink>) {
        let _ = self.inner.tls_reports.set(sink);
    }

    /// The configuration.
    pub fn config(&self) -> &TransportConfig {
        &self.inner.cfg
    }

    /// The resolver used for MX lookups.
    pub fn resolver(&self) -> &MxResolver {
        &self.inner.resolver
    }

    /// The source pools in force (`source_ips` as the shared pool plus the named ones).
    pub fn source_pools(&self) -> &SourcePools {
        &self.inner.pools
    }

    /// Idle connections currently kept for reuse.
    pub fn idle_connections(&self) -> usize {
        self.inner.pool.idle_count()
    }

    /// The shaping state towards `domain`, once something was sent there.
    pub fn destination(&self, domain: &str) -> Option<DestinationState> {
        self.inner.destinations.snapshot(domain)
    }

    /// The shaping state of every destination sent to, by domain.
    pub fn destinations(&self) -> Vec<DestinationState> {
        self.inner.destinations.all()
    }

    /// Whether `source` is currently avoided after failing to connect (tried after the other members).
    pub fn source_avoided(&self, source: IpAddr) -> bool {
        self.inner.avoided.is_avoided(source)
    }

    /// Whether a delivery towards `domain` may start now: suspended after timing out, or open with a share of
    /// the delivery slots while it has not greeted yet. The worker asks before giving a delivery a slot.
    pub fn admission(&self, domain: &str) -> DestinationAdmission {
        self.inner.destinations.get(domain).admission()
    }

    /// Closes every idle connection politely (QUIT), e.g. at shutdown.
    pub async fn close_idle(&self) {
        for session in self.inner.pool.drain() {
            quit(session).await;
        }
    }

    /// The port dialled: the relay's, or `port` towards MX hosts.
    fn port(&self) -> u16 {
        self.inner.cfg.relay.as_ref().map_or(self.inner.cfg.port, |r| r.port)
    }

    /// The relay host as the one "MX" of every domain. Its name not resolving is a deferral, never a bounce:
    /// the recipient is not at fault.
    async fn relay_route(&self, relay: &Relay) -> Result<Vec<MxHost>, Outcome> {
        let addrs = match relay.ip() {
            Some(ip) => vec![ip],
            None => self
                .inner
                .resolver
                .host_addresses(&relay.host)
                .await
                .map_err(|e| Outcome::deferred(format!("4.4.3 relay host {}: {e}", relay.host)))?,
        };
        // DANE never applies to a relay: it is not an MX host found through DNS.
        Ok(vec![MxHost {
            name: relay.host.clone(),
            preference: 0,
            addrs,
            secure: false,
        }])
    }

    /// [`SmtpTransport::send_from_pool`] from the shared pool.
    pub async fn send(&self, domain: &str, envelope: &Envelope, message: &[u8]) -> SendReport {
        self.send_from_pool(domain, None, envelope, message).await
    }

    /// Delivers one message to recipients that all share `domain` (ASCII form), from a member of source pool
    /// `pool` (`None` or an unknown pool: the shared pool). Never panics; every recipient gets an outcome, in
    /// envelope order.
    ///
    /// MX hosts are tried in preference order, each of their addresses in turn; connection
    /// failures, timeouts and 4xx/5xx greetings or EHLO replies move on to the next address. Once
    /// a session is established its replies decide: per-recipient RCPT replies, then the DATA
    /// reply for all accepted recipients. The members of the pool take turns; one that cannot bind or
    /// connect is avoided for a while and another takes over; one at today's warm-up allowance is skipped.
    /// Towards each destination domain the shaping limits apply (connections, messages per connection and per
    /// minute); a receiver's "too many connections / rate limited" slows the destination down.
    pub async fn send_from_pool(
        &self,
        domain: &str,
        pool: Option<&str>,
        envelope: &Envelope,
        message: &[u8],
    ) -> SendReport {
        self.send_parts_from_pool(
            domain,
            pool,
            envelope,
            OutgoingMessage {
                head: b"",
                body: message,
            },
        )
        .await
    }

    /// [`SmtpTransport::send_from_pool`] for a message in two parts sent one after the other (DKIM-Signature
    /// fields and the message they sign), so that neither is copied to join them.
    pub async fn send_parts_from_pool(
        &self,
        domain: &str,
        pool: Option<&str>,
        envelope: &Envelope,
        message: OutgoingMessage<'_>,
    ) -> SendReport {
        let mut outcomes: Vec<Option<Outcome>> = vec![None; envelope.rcpt_to.len()];
        let sender_ok = valid_path(&envelope.mail_from, true);
        let mut pending = Vec::new();
        for (slot, rcpt) in outcomes.iter_mut().zip(&envelope.rcpt_to) {
            if !sender_ok {
                *slot = Some(Outcome::bounced(format!(
                    "5.1.7 invalid sender address {:?}",
                    envelope.mail_from
                )));
            } else if !valid_path(rcpt, false) {
                *slot = Some(Outcome::bounced(format!("5.1.3 invalid recipient address {rcpt:?}")));
            }
        }
        for (i, slot) in outcomes.iter().enumerate() {
            if slot.is_none() {
                pending.push(i);
            }
        }

        let mut mx = None;
        let mut tls = false;
        let mut dane = false;
        let mut source = None;
        if !pending.is_empty() {
            let route = match &self.inner.cfg.relay {
                Some(relay) => self.relay_route(relay).await,
                None => self.inner.resolver.route(domain).await.map_err(|e| resolve_outcome(&e)),
            };
            match route {
                Err(outcome) => {
                    debug!(domain, reply = outcome.reply(), "no route");
                    for &i in &pending {
                        outcomes[i] = Some(outcome.clone());
                    }
                }
                Ok(hosts) => {
                    // MTA-STS `enforce`: only the MX hosts the policy names, only over verified TLS. A `testing`
                    // policy changes nothing but what is reported.
                    // TLS reports go out despite any TLS failure (RFC 8460 §5.3): no policy applies to them.
                    let sts = match envelope.tls.is_exempt() {
                        true => None,
                        false => self.mta_sts_policy(domain).await,
                    };
                    let enforced = sts.clone().filter(|p| p.mode == MtaStsMode::Enforce);
                    let (hosts, sts_envelope): (Vec<MxHost>, Option<Envelope>) = match &enforced {
                        Some(policy) => (
                            hosts.into_iter().filter(|h| policy.allows_mx(&h.name)).collect(),
                            Some(Envelope {
                                tls: envelope.tls.max(TlsRequirement::Verified),
                                ..envelope.clone()
                            }),
                        ),
                        None => (hosts, None),
                    };
                    let envelope = sts_envelope.as_ref().unwrap_or(envelope);
                    if let Some(policy) = enforced.as_ref().filter(|_| hosts.is_empty()) {
                        let o = Outcome::deferred(format!(
                            "4.7.5 MTA-STS: no MX host of {domain} is one its policy names (mx: {})",
                            policy.mx.join(", ")
                        ));
                        for &i in &pending {
                            outcomes[i] = Some(o.clone());
                        }
                        self.report(domain, &HostPolicy::sts(Some(policy)), None, || TlsSessionFailure {
                            result_type: TlsFailure::MxMismatch.result_type(),
                            sending_mta_ip: None,
                            receiving_mx_hostname: String::new(),
                            receiving_ip: None,
                            failure_reason_code: o.reply().to_string(),
                        });
                    }
                    let dest = self.inner.destinations.get(domain);
                    let members = self.inner.pools.members(pool);
                    let mut exhausted = Vec::new();
                    let mut queue: VecDeque<Vec<usize>> = pending
                        .chunks(MAX_RCPT_PER_TRANSACTION)
                        .filter(|_| !hosts.is_empty())
                        .map(<[usize]>::to_vec)
                        .collect();
                    while let Some(chunk) = queue.pop_front() {
                        let rcpts: Vec<&str> = chunk.iter().map(|&i| envelope.rcpt_to[i].as_str()).collect();
                        let done = self
                            .deliver(
                                &dest,
                                &hosts,
                                sts.as_ref(),
                                members,
                                &mut exhausted,
                                envelope,
                                &rcpts,
                                message,
                            )
                            .await;
                        // A member granted only part of the chunk (its warm-up allowance): the rest goes on from
                        // the other members, or is held.
                        let taken = done.outcomes.len().clamp(1, chunk.len());
                        for (&i, outcome) in chunk.iter().zip(done.outcomes) {
                            outcomes[i] = Some(match enforced {
                                Some(_) => mta_sts_outcome(outcome),
                                None => outcome,
                            });
                        }
                        if let Some(used) = done.used {
                            mx = Some(used.label);
                            tls = used.tls;
                            dane = used.dane;
                            source = used.source;
                        }
                        if taken < chunk.len() {
                            queue.push_front(chunk[taken..].to_vec());
                        }
                    }
                }
            }
        }

        let outcomes = envelope
            .rcpt_to
            .iter()
            .zip(outcomes)
            .map(|(rcpt, outcome)| RecipientOutcome {
                rcpt: rcpt.clone(),
                outcome: outcome.unwrap_or_else(|| Outcome::deferred("4.3.0 internal error: no outcome recorded")),
            })
            .collect();
        SendReport {
            outcomes,
            mx,
            tls,
            dane,
            source,
        }
    }

    /// One transaction's worth of recipients, over the MX list. Returns one outcome per recipient of a prefix of
    /// `rcpts` (all of them unless a pool member's warm-up allowance covered only part) and the session that
    /// decided them.
    #[allow(clippy::too_many_arguments)]
    async fn deliver(
        &self,
        dest: &Arc<Dest>,
        hosts: &[MxHost],
        sts: Option<&Arc<MtaStsPolicy>>,
        members: &[IpAddr],
        exhausted: &mut Vec<IpAddr>,
        envelope: &Envelope,
        rcpts: &[&str],
        message: OutgoingMessage<'_>,
    ) -> Attempt {
        let n = rcpts.len();
        let shaping = self.inner.destinations.config();
        if let Some(s) = dest.suspension() {
            return Attempt::all(n, s.outcome());
        }
        if let Err(wait) = self.wait_turn(dest).await {
            let rate = self
                .destination(&dest.domain)
                .and_then(|d| d.rate_per_minute)
                .unwrap_or(0.0);
            return Attempt::all(
                n,
                Outcome::Throttled {
                    reply: format!(
                        "4.7.0 local limit towards {}: {rate:.0} messages per minute",
                        dest.domain
                    ),
                    retry_after: shaping.retry_after.max(wait),
                },
            );
        }
        let mut last = "4.4.1 the MX hosts have no usable address".to_string();
        let mut dialled = false;
        let mut held = false;
        let mut timed_out = false;
        let deadline = tokio::time::Instant::now() + self.inner.cfg.delivery_deadline;
        'hosts: for host in hosts {
            // DANE (RFC 7672): decided per MX host; a host whose TLSA records cannot be had is skipped.
            let exempt = envelope.tls.is_exempt();
            let dane = match exempt {
                true => DanePolicy::NotApplicable,
                false => dane::policy_for(&self.inner.resolver, host, self.port()).await,
            };
            let policy = HostPolicy {
                dane: &dane,
                sts,
                exempt,
            };
            if let DanePolicy::Unusable(failure) = &dane {
                debug!(host = %host.name, %failure, "MX host skipped");
                last = failure.reply();
                self.report(&dest.domain, &policy, Some(&host.name), || TlsSessionFailure {
                    result_type: failure.kind.result_type(),
                    sending_mta_ip: None,
                    receiving_mx_hostname: host.name.clone(),
                    receiving_ip: None,
                    failure_reason_code: last.clone(),
                });
                continue;
            }
            for &ip in &host.addrs {
                if dialled && tokio::time::Instant::now() >= deadline {
                    last = format!(
                        "{last} (no further MX address tried after {} s)",
                        self.inner.cfg.delivery_deadline.as_secs()
                    );
                    break 'hosts;
                }
                let candidates = match self.candidates(ip, members, exhausted) {
                    Candidates::List(list) => list,
                    Candidates::NoneReach => {
                        last = format!("4.4.1 no configured source address can reach {}[{ip}]", host.name);
                        continue;
                    }
                    Candidates::AllExhausted => {
                        held = true;
                        continue;
                    }
                };
                // Members that failed towards this address before another one succeeded are the ones at fault.
                let mut failed: Vec<IpAddr> = Vec::new();
                for source in candidates {
                    let granted = match source {
                        None => n,
                        Some(s) => match self.reserve(s, n).await {
                            Ok(0) => {
                                exhausted.push(s);
                                held = true;
                                continue;
                            }
                            Ok(g) => g.min(n),
                            Err(reason) => {
                                dialled = true;
                                last = format!("4.3.0 warm-up counter unavailable for {s}: {reason}");
                                continue;
                            }
                        },
                    };
                    let part = &rcpts[..granted];
                    let epoch = dest.epoch();
                    match self
                        .run_on(dest, &host.name, &policy, ip, source, envelope, part, message)
                        .await
                    {
                        Run::Done(outcomes, used) => {
                            if let Some(s) = source {
                                for f in &failed {
                                    self.inner.avoided.mark(*f);
                                }
                                self.inner.avoided.clear(s);
                                if granted < n {
                                    exhausted.push(s);
                                }
                                // Recipients deferred will be sent (and counted) again.
                                let unsent = outcomes
                                    .iter()
                                    .filter(|o| matches!(o, Outcome::Deferred { .. } | Outcome::Throttled { .. }))
                                    .count();
                                self.release(s, unsent).await;
                            }
                            let outcomes = self.classify(dest, epoch, outcomes);
                            return Attempt {
                                outcomes,
                                used: Some(used),
                            };
                        }
                        Run::Failed(DialFailure {
                            reason,
                            bind,
                            timed_out: t,
                            ..
                        }) => {
                            dialled = true;
                            timed_out |= t;
                            if let Some(s) = source {
                                self.release(s, granted).await;
                                if bind {
                                    self.inner.avoided.mark(s);
                                } else {
                                    failed.push(s);
                                }
                            }
                            if is_throttle_reply(&reason) {
                                // The receiver asks us to slow down: do not hammer its other addresses now.
                                dest.throttled(epoch);
                                return Attempt::all(
                                    n,
                                    Outcome::Throttled {
                                        reply: reason,
                                        retry_after: shaping.retry_after,
                                    },
                                );
                            }
                            debug!(%reason, ?source, "MX address failed from this source");
                            last = reason;
                        }
                        Run::Suspended(s) => {
                            if let Some(source) = source {
                                self.release(source, granted).await;
                            }
                            return Attempt::all(n, s.outcome());
                        }
                        Run::Busy => {
                            if let Some(s) = source {
                                self.release(s, granted).await;
                            }
                            let cap = self.destination(&dest.domain).map_or(0, |d| d.connection_cap);
                            return Attempt::all(
                                n,
                                Outcome::Throttled {
                                    reply: format!(
                                        "4.7.0 all {cap} connections allowed towards {} are busy",
                                        dest.domain
                                    ),
                                    retry_after: shaping.retry_after,
                                },
                            );
                        }
                    }
                }
            }
        }
        if dialled && timed_out {
            // No address answered and at least one timed out: the whole destination waits (like a 421), so
            // its other mail stops taking delivery slots, and is told at once.
            dest.suspend(&last, shaping.retry_after);
        }
        if last.starts_with(NO_REQUIRETLS) {
            // The MX that answered last does not offer REQUIRETLS: the sender asked for nothing less (RFC 8689
            // §4.2.1 returns such mail at once; a soft bounce, the address is not at fault).
            return Attempt::all(n, Outcome::bounced(last));
        }
        if held && !dialled {
            let pool: Vec<String> = members.iter().map(ToString::to_string).collect();
            return Attempt::all(
                n,
                Outcome::Held {
                    reply: format!(
                        "4.7.0 held for warm-up: every source address of the pool ({}) has sent today's allowance",
                        pool.join(", ")
                    ),
                },
            );
        }
        Attempt::all(n, Outcome::deferred(last))
    }

    /// Runs the transaction on an idle or a new session from `source` to `ip` (one that fits the host's DANE
    /// policy).
    #[allow(clippy::too_many_arguments)]
    async fn run_on(
        &self,
        dest: &Arc<Dest>,
        host: &str,
        policy: &HostPolicy<'_>,
        ip: IpAddr,
        source: Option<IpAddr>,
        envelope: &Envelope,
        rcpts: &[&str],
        message: OutgoingMessage<'_>,
    ) -> Run {
        let key = PoolKey {
            ip,
            port: self.port(),
            source,
            verified_tls: self.verified_tls_for(host, envelope.tls),
        };
        let mut allow_idle = true;
        loop {
            let (session, reused) = match self.session_for(dest, host, policy, key, allow_idle).await {
                Ok(s) => s,
                Err(run) => return run,
            };
            if envelope.tls == TlsRequirement::RequireTls && !session.caps.requiretls {
                // RFC 8689 §4.2.1: such mail goes only to a server that offers REQUIRETLS; try the next MX.
                let reason = format!("{NO_REQUIRETLS} {} does not offer REQUIRETLS", session.label);
                self.release_session(session);
                return Run::Failed(DialFailure {
                    reason,
                    bind: false,
                    timed_out: false,
                    result_type: None,
                });
            }
            let dane_verified = session.dane_host.is_some();
            match self.transaction(session, envelope, rcpts, message, reused).await {
                Tx::Done(outcomes, label, tls) => {
                    return Run::Done(
                        outcomes,
                        Used {
                            label,
                            tls,
                            dane: dane_verified,
                            source,
                        },
                    );
                }
                Tx::DeadReused(reason) if reused => {
                    debug!(%reason, "idle connection was dead; retrying on a fresh one");
                    for s in self.inner.pool.purge(&key) {
                        quit_later(s);
                    }
                    allow_idle = false;
                }
                // Only reused sessions report DeadReused; kept total for safety.
                Tx::DeadReused(reason) => {
                    return Run::Done(
                        vec![Outcome::deferred(reason); rcpts.len()],
                        Used {
                            label: String::new(),
                            tls: false,
                            dane: false,
                            source,
                        },
                    );
                }
            }
        }
    }

    /// An idle session for `key` that fits `dane`, or a new one when the destination is below its connection
    /// cap; at the cap an idle session of the destination elsewhere is closed to make room, or the call waits (at
    /// most `shaping.max_wait`) for a connection to come back or close.
    async fn session_for(
        &self,
        dest: &Arc<Dest>,
        host: &str,
        policy: &HostPolicy<'_>,
        key: PoolKey,
        allow_idle: bool,
    ) -> Result<(Session, bool), Run> {
        let deadline = tokio::time::Instant::now() + self.inner.destinations.config().max_wait;
        loop {
            // Registered before looking, so a slot freed in between is not missed.
            let changed = dest.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if allow_idle && let Some(session) = self.take_idle(&key, host, policy.dane) {
                return Ok((session, true));
            }
            if let Some(s) = dest.suspension() {
                return Err(Run::Suspended(s));
            }
            if let Some(slot) = dest.try_open() {
                return match self.dial_reported(&dest.domain, host, key, policy).await {
                    Ok(mut session) => {
                        dest.greeted();
                        session.slot = Some(slot);
                        session.max_messages = dest.limits().max_messages_per_connection;
                        Ok((session, false))
                    }
                    Err(f) => Err(Run::Failed(f)),
                };
            }
            if let Some(old) = self.inner.pool.evict_for(&dest.domain) {
                quit(old).await;
                continue;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return Err(Run::Busy);
            }
        }
    }

    /// Waits for this transaction's turn under the destination's rate; `Err` when that is further away than
    /// `shaping.max_wait`.
    async fn wait_turn(&self, dest: &Dest) -> Result<(), Duration> {
        let max_wait = self.inner.destinations.config().max_wait;
        let start = std::time::Instant::now();
        loop {
            match dest.take_turn() {
                Ok(()) => return Ok(()),
                Err(wait) if start.elapsed() + wait > max_wait => return Err(wait),
                Err(wait) => tokio::time::sleep(wait).await,
            }
        }
    }

    /// Deferred replies that say "slow down" become [`Outcome::Throttled`] and slow the destination down; a
    /// delivery counts towards its recovery.
    fn classify(&self, dest: &Dest, epoch: u64, outcomes: Vec<Outcome>) -> Vec<Outcome> {
        let retry_after = self.inner.destinations.config().retry_after;
        let mut throttled = false;
        let mut delivered = false;
        let outcomes = outcomes
            .into_iter()
            .map(|o| match o {
                Outcome::Deferred { reply } if is_throttle_reply(&reply) => {
                    throttled = true;
                    Outcome::Throttled { reply, retry_after }
                }
                o => {
                    delivered |= matches!(o, Outcome::Delivered { .. });
                    o
                }
            })
            .collect();
        if throttled {
            dest.throttled(epoch);
        } else if delivered {
            dest.succeeded();
        }
        outcomes
    }

    async fn reserve(&self, source: IpAddr, wanted: usize) -> Result<usize, String> {
        match &self.inner.gate {
            None => Ok(wanted),
            Some(gate) => {
                let wanted = u32::try_from(wanted).unwrap_or(u32::MAX);
                gate.reserve(source, wanted).await.map(|g| g as usize)
            }
        }
    }

    async fn release(&self, source: IpAddr, count: usize) {
        if count == 0 {
            return;
        }
        if let Some(gate) = &self.inner.gate {
            gate.release(source, u32::try_from(count).unwrap_or(u32::MAX)).await;
        }
    }

    /// The MTA-STS policy in force for `domain` (`enforce` or `testing`); `None` without MTA-STS, towards a relay
    /// host, or when the domain has no policy.
    async fn mta_sts_policy(&self, domain: &str) -> Option<Arc<MtaStsPolicy>> {
        if self.inner.cfg.relay.is_some() {
            return None;
        }
        self.inner.mta_sts.as_ref()?.policy(domain).await
    }

    /// Hands one outcome under `policy` to the TLS-RPT sink, if there is one (the failure is built only then).
    fn report(
        &self,
        domain: &str,
        policy: &HostPolicy<'_>,
        host: Option<&str>,
        failure: impl FnOnce() -> TlsSessionFailure,
    ) {
        self.report_outcome(domain, policy, host.unwrap_or(""), Some(failure));
    }

    fn report_outcome(
        &self,
        domain: &str,
        policy: &HostPolicy<'_>,
        host: &str,
        failure: Option<impl FnOnce() -> TlsSessionFailure>,
    ) {
        if let Some(sink) = self.inner.tls_reports.get() {
            let reported = ReportedPolicy::of(host, policy.dane, policy.sts);
            sink.record(reported.outcome(domain, failure.map(|f| f())));
        }
    }

    /// [`SmtpTransport::dial`], handing the TLS outcome of the new session to the TLS-RPT sink. Under an MTA-STS
    /// `testing` policy (and no DANE) the session is first tried with verified TLS, as `enforce` would; when that
    /// fails for a TLS reason the failure is reported and the session dialled again as configured (RFC 8461 §5:
    /// testing policies deliver anyway).
    async fn dial_reported(
        &self,
        domain: &str,
        host: &str,
        key: PoolKey,
        policy: &HostPolicy<'_>,
    ) -> Result<Session, DialFailure> {
        if self.inner.cfg.relay.is_some() {
            return self.dial(host, key, policy.dane, None).await;
        }
        if policy.exempt {
            // Opportunistic whatever `outbound_tls` says, and not counted (RFC 8460 §5.3).
            return self.dial(host, key, policy.dane, Some(TlsPolicy::Opportunistic)).await;
        }
        if self.inner.tls_reports.get().is_none() {
            return self.dial(host, key, policy.dane, None).await;
        }
        let failure = |reason: &str, result_type: &'static str| TlsSessionFailure {
            result_type,
            sending_mta_ip: key.source,
            receiving_mx_hostname: host.to_string(),
            receiving_ip: Some(key.ip),
            failure_reason_code: reason.to_string(),
        };
        let testing = policy
            .sts
            .filter(|p| p.mode == MtaStsMode::Testing && !policy.dane.enforced() && key.verified_tls.is_none());
        if let Some(sts) = testing {
            if !sts.allows_mx(host) {
                let reason = format!("4.7.5 MTA-STS (testing): {host} is not an MX host the policy names");
                self.report(domain, policy, Some(host), || {
                    failure(&reason, TlsFailure::MxMismatch.result_type())
                });
                return self.dial(host, key, policy.dane, None).await;
            }
            match self.dial(host, key, policy.dane, Some(TlsPolicy::Required)).await {
                Ok(session) => {
                    self.report_outcome(domain, policy, host, None::<fn() -> TlsSessionFailure>);
                    return Ok(session);
                }
                Err(f) => match TlsFailure::from_reason(&f.reason) {
                    Some(kind) => {
                        self.report(domain, policy, Some(host), || failure(&f.reason, kind.result_type()));
                        return self.dial(host, key, policy.dane, None).await;
                    }
                    None => return Err(f),
                },
            }
        }
        let dialled = self.dial(host, key, policy.dane, None).await;
        match &dialled {
            Ok(session) if session.tls => {
                self.report_outcome(domain, policy, host, None::<fn() -> TlsSessionFailure>);
            }
            // Plain text by configuration is no TLS outcome; without it, the MX offered no (working) STARTTLS.
            Ok(_) if self.configured_policy() != TlsPolicy::Disabled => {
                let reason = format!("{host}[{}] offers no STARTTLS", key.ip);
                self.report(domain, policy, Some(host), || {
                    failure(&reason, TlsFailure::StartTlsNotSupported.result_type())
                });
            }
            Ok(_) => {}
            Err(f) => {
                let result_type = f
                    .result_type
                    .or_else(|| TlsFailure::from_reason(&f.reason).map(TlsFailure::result_type));
                if let Some(result_type) = result_type {
                    self.report(domain, policy, Some(host), || failure(&f.reason, result_type));
                }
            }
        }
        dialled
    }

    /// The TLS policy configured towards every receiver: the relay's, or [`TransportConfig::tls`].
    fn configured_policy(&self) -> TlsPolicy {
        let cfg = &self.inner.cfg;
        match &cfg.relay {
            None => cfg.tls,
            Some(relay) => match relay.tls {
                RelayTls::None => TlsPolicy::Disabled,
                RelayTls::StartTls => TlsPolicy::Opportunistic,
                RelayTls::Required => TlsPolicy::Required,
            },
        }
    }

    /// The [`PoolKey::verified_tls`] of a transaction to `host`: set when its certificate must verify, because
    /// the message requires it or the configured policy is [`TlsPolicy::Required`].
    fn verified_tls_for(&self, host: &str, requirement: TlsRequirement) -> Option<u64> {
        let configured = self.configured_policy() == TlsPolicy::Required && !requirement.is_exempt();
        (requirement.needs_verified_tls() || configured).then(|| verified_tls_key(host))
    }

    /// A fresh session; in opportunistic mode a failed TLS handshake is retried once in plain text (never under
    /// DANE). The error says whether the source address itself is unusable (bind failure).
    /// `verify` (`TlsPolicy::Required`) asks for verified TLS whatever the configuration says.
    async fn dial(
        &self,
        host: &str,
        key: PoolKey,
        dane: &DanePolicy,
        verify: Option<TlsPolicy>,
    ) -> Result<Session, DialFailure> {
        let cfg = &self.inner.cfg;
        let dane = match DaneConnector::for_policy(dane, host).transpose() {
            Ok(connector) => connector,
            Err(failure) => {
                return Err(DialFailure {
                    reason: failure.reply(),
                    bind: false,
                    timed_out: false,
                    result_type: Some(failure.kind.result_type()),
                });
            }
        };
        let policy = match (key.verified_tls, verify) {
            (Some(_), _) => TlsPolicy::Required,
            (None, Some(policy)) => policy,
            (None, None) => self.configured_policy(),
        };
        let auth = cfg
            .relay
            .as_ref()
            .and_then(|relay| relay.credentials.as_ref().map(|c| (c, relay.tls == RelayTls::None)));
        let dial = |try_tls| Dial {
            host,
            key,
            helo: &cfg.helo_name,
            connect_timeout: cfg.connect_timeout,
            greeting_timeout: cfg.greeting_timeout,
            command_timeout: cfg.command_timeout,
            policy,
            try_tls,
            tls: &self.inner.tls,
            auth,
            dane: dane.as_ref(),
        };
        let split = |e: ConnectError| {
            let (reason, bind, timed_out, result_type) = match e {
                ConnectError::Bind(r) => (r, true, false, None),
                ConnectError::TimedOut(r) => (r, false, true, None),
                ConnectError::Unreachable(r) | ConnectError::Failed(r) | ConnectError::TlsHandshake(r) => {
                    (r, false, false, None)
                }
                ConnectError::Dane(r, result_type) => (r, false, false, Some(result_type)),
            };
            DialFailure {
                reason,
                bind,
                timed_out,
                result_type,
            }
        };
        match connect(dial(true)).await {
            Ok(s) => Ok(s),
            Err(ConnectError::TlsHandshake(reason)) => {
                debug!(%reason, "retrying without STARTTLS");
                connect(dial(false)).await.map_err(split)
            }
            Err(e) => Err(split(e)),
        }
    }

    /// MAIL, RCPT…, DATA on `session`. Hands the session back to the pool (after RSET when the
    /// transaction stopped midway) or closes it.
    async fn transaction(
        &self,
        mut session: Session,
        envelope: &Envelope,
        rcpts: &[&str],
        message: OutgoingMessage<'_>,
        reused: bool,
    ) -> Tx {
        let label = session.label.clone();
        let tls = session.tls;
        let n = rcpts.len();
        let all = |o: Outcome| vec![o; n];

        if envelope.tls.needs_verified_tls() && !(tls && session.key.verified_tls.is_some()) {
            // Unreachable by construction (the pool key keeps verified sessions apart); never send it anyway.
            drop(session);
            return Tx::Done(
                all(Outcome::deferred(format!(
                    "4.7.4 TLS required: the session with {label} is not verified TLS"
                ))),
                label,
                tls,
            );
        }
        let needs_utf8 = envelope.smtputf8 || !envelope.mail_from.is_ascii() || rcpts.iter().any(|r| !r.is_ascii());
        if needs_utf8 && !session.caps.smtputf8 {
            self.release_session(session);
            return Tx::Done(
                all(Outcome::bounced(format!(
                    "5.6.7 {label} does not support SMTPUTF8, which this message needs"
                ))),
                label,
                tls,
            );
        }
        if session.caps.size > 0 && message.len() > session.caps.size {
            let limit = session.caps.size;
            self.release_session(session);
            return Tx::Done(
                all(Outcome::bounced(format!(
                    "5.3.4 the message ({} bytes) exceeds the SIZE limit of {label} ({limit} bytes)",
                    message.len()
                ))),
                label,
                tls,
            );
        }

        let mut params = String::new();
        if session.caps.size > 0 {
            params.push_str(&format!(" SIZE={}", message.len()));
        }
        if !message.is_ascii() && session.caps.eight_bit_mime {
            params.push_str(" BODY=8BITMIME");
        }
        if needs_utf8 {
            params.push_str(" SMTPUTF8");
        }
        if envelope.tls == TlsRequirement::RequireTls {
            params.push_str(" REQUIRETLS");
        }
        let mail_cmd = format!("MAIL FROM:<{}>{params}\r\n", envelope.mail_from);
        // Collected, not a lazy iterator: a closure held across `.await` makes the future
        // not `Send` for every lifetime (rustc's higher-ranked closure limitation).
        let rcpt_cmds: Vec<String> = rcpts.iter().map(|r| format!("RCPT TO:<{r}>\r\n")).collect();

        // Envelope replies: MAIL first, then one per RCPT (fewer if the connection broke).
        let (mail, rcpt_replies, broken) = if session.caps.pipelining {
            // RFC 2920: MAIL and all RCPTs in one write, replies read in order.
            match session.client.cmds(std::iter::once(mail_cmd).chain(rcpt_cmds)).await {
                Ok(mut replies) if !replies.is_empty() => {
                    let mail = replies.remove(0);
                    (mail, replies, None)
                }
                Ok(_) => {
                    return self.lost(session, reused, &label, "no reply to MAIL FROM".into(), n);
                }
                Err(e) => return self.lost(session, reused, &label, io_reason(&e), n),
            }
        } else {
            let mail = match session.client.cmd(mail_cmd).await {
                Ok(r) => r,
                Err(e) => return self.lost(session, reused, &label, io_reason(&e), n),
            };
            let mut replies = Vec::with_capacity(n);
            let mut broken = None;
            if (200..300).contains(&mail.code) {
                for cmd in rcpt_cmds {
                    match session.client.cmd(cmd).await {
                        Ok(r) => {
                            let closing = r.code == 421;
                            replies.push(r);
                            if closing {
                                break;
                            }
                        }
                        Err(e) => {
                            broken = Some(io_reason(&e));
                            break;
                        }
                    }
                }
            }
            (mail, replies, broken)
        };

        if !(200..300).contains(&mail.code) {
            if mail.code == 421 && reused {
                return Tx::DeadReused(format!("{} (reused connection to {label})", reply_text(&mail)));
            }
            let outcome = Outcome::from_reply(&mail);
            if mail.code == 421 {
                drop(session);
            } else {
                self.reset_and_release(session).await;
            }
            return Tx::Done(all(outcome), label, tls);
        }

        let mut outcomes: Vec<Option<Outcome>> = vec![None; n];
        let mut accepted = Vec::new();
        let mut closing = broken.is_some();
        for (i, r) in rcpt_replies.iter().enumerate().take(n) {
            if (200..300).contains(&r.code) {
                accepted.push(i);
            } else {
                closing |= r.code == 421;
                outcomes[i] = Some(Outcome::from_reply(r));
            }
        }
        if rcpt_replies.len() < n {
            closing = true;
        }
        if closing {
            // The session ended before DATA: nothing was delivered to anyone.
            drop(session);
            let reason = format!(
                "4.4.2 connection to {label} lost during RCPT TO: {}",
                broken.as_deref().unwrap_or("closed by the server")
            );
            return Tx::Done(
                outcomes
                    .into_iter()
                    .map(|o| match o {
                        Some(o @ (Outcome::Bounced { .. } | Outcome::Deferred { .. })) => o,
                        _ => Outcome::deferred(reason.clone()),
                    })
                    .collect(),
                label,
                tls,
            );
        }
        if accepted.is_empty() {
            self.reset_and_release(session).await;
            return Tx::Done(finish(outcomes), label, tls);
        }

        let data = match session.client.cmd(b"DATA\r\n").await {
            Ok(r) => r,
            Err(e) => {
                let o = Outcome::deferred(format!("4.4.2 connection to {label} lost at DATA: {}", io_reason(&e)));
                fill(&mut outcomes, &accepted, &o);
                return Tx::Done(finish(outcomes), label, tls);
            }
        };
        if data.code != 354 {
            let o = match Outcome::from_reply(&data) {
                // A 2xx to DATA is a protocol error, not a delivery.
                Outcome::Delivered { reply } => Outcome::Deferred { reply },
                o => o,
            };
            fill(&mut outcomes, &accepted, &o);
            if data.code == 421 || data.code < 400 {
                drop(session);
            } else {
                self.reset_and_release(session).await;
            }
            return Tx::Done(finish(outcomes), label, tls);
        }

        let payload = data_payload(message.head, message.body);
        let client = &mut session.client;
        let result = tokio::time::timeout(self.inner.cfg.data_timeout, async {
            for part in payload.parts() {
                client.stream.write_all(part).await?;
            }
            client.stream.flush().await?;
            client.read().await
        })
        .await;
        match result {
            Ok(Ok(reply)) => {
                let o = Outcome::from_reply(&reply);
                fill(&mut outcomes, &accepted, &o);
                session.messages += 1;
                if reply.code == 421 {
                    drop(session);
                } else {
                    self.release_session(session);
                }
            }
            Ok(Err(e)) => {
                let o = Outcome::Unknown {
                    reply: format!(
                        "4.4.2 connection to {label} lost after the message was sent (status unknown): {}",
                        io_reason(&e)
                    ),
                };
                fill(&mut outcomes, &accepted, &o);
            }
            Err(_) => {
                let o = Outcome::Unknown {
                    reply: format!("4.4.2 timeout waiting for {label} to accept the message (status unknown)"),
                };
                fill(&mut outcomes, &accepted, &o);
            }
        }
        Tx::Done(finish(outcomes), label, tls)
    }

    /// The connection failed before the envelope replies were in (MAIL FROM, or the pipelined batch).
    fn lost(&self, session: Session, reused: bool, label: &str, reason: String, n: usize) -> Tx {
        let tls = session.tls;
        drop(session);
        if reused {
            Tx::DeadReused(format!("reused connection to {label}: {reason}"))
        } else {
            Tx::Done(
                vec![Outcome::deferred(format!("4.4.2 connection to {label} lost before DATA: {reason}")); n],
                label.to_string(),
                tls,
            )
        }
    }

    /// RSET, then back to the pool; a failed RSET closes the connection.
    async fn reset_and_release(&self, mut session: Session) {
        match session.client.cmd(b"RSET\r\n").await {
            Ok(r) if (200..300).contains(&r.code) => self.release_session(session),
            _ => drop(session),
        }
    }

    fn release_session(&self, session: Session) {
        let dest = session.slot.as_ref().map(|s| s.dest.clone());
        for s in self.inner.pool.put(session) {
            quit_later(s);
        }
        // Waiters for a connection to this destination can take the session now.
        if let Some(dest) = dest {
            dest.notify();
        }
    }

    /// An idle session for `key` that may carry a delivery to MX `host` under `dane` ([`dane_fits`]).
    fn take_idle(&self, key: &PoolKey, host: &str, dane: &DanePolicy) -> Option<Session> {
        let mut expired = Vec::new();
        let found = match dane {
            DanePolicy::NotApplicable => self.inner.pool.take(key, &mut expired),
            _ => self
                .inner
                .pool
                .take_matching(key, &mut expired, |s| dane_fits(dane, host, s)),
        };
        for s in expired {
            quit_later(s);
        }
        found
    }

    /// The members usable towards `ip` (same family, not at today's allowance), rotated so they take turns;
    /// members that failed recently go last (hot standby).
    fn candidates(&self, ip: IpAddr, members: &[IpAddr], exhausted: &[IpAddr]) -> Candidates {
        if members.is_empty() {
            return Candidates::List(vec![None]);
        }
        let same: Vec<IpAddr> = members
            .iter()
            .filter(|s| s.is_ipv4() == ip.is_ipv4())
            .copied()
            .collect();
        if same.is_empty() {
            return Candidates::NoneReach;
        }
        let mut usable: Vec<IpAddr> = same.into_iter().filter(|s| !exhausted.contains(s)).collect();
        if usable.is_empty() {
            return Candidates::AllExhausted;
        }
        let turn = self.inner.next_source.fetch_add(1, Ordering::Relaxed) % usable.len();
        usable.rotate_left(turn);
        // Stable: the rotation order is kept within each group.
        usable.sort_by_key(|s| self.inner.avoided.is_avoided(*s));
        Candidates::List(usable.into_iter().map(Some).collect())
    }
}

/// Which sources may be tried towards one MX address.
enum Candidates {
    /// In this order (`None` = the OS's choice).
    List(Vec<Option<IpAddr>>),
    /// The pool has no member of the address's family.
    NoneReach,
    /// Every member of that family is at today's warm-up allowance.
    AllExhausted,
}

/// What one attempt on one (address, source) gave.
enum Run {
    /// A transaction ran: one outcome per recipient.
    Done(Vec<Outcome>, Used),
    /// No session with one MX address.
    Failed(DialFailure),
    /// The destination's connections stayed busy for the whole wait.
    Busy,
    /// The destination was suspended (it timed out) while this transaction waited for a connection.
    Suspended(Suspension),
}

/// Why no session could be had with one MX address: the reason, whether the source itself cannot be bound,
/// and whether the MX timed out (connect, greeting or EHLO).
struct DialFailure {
    reason: String,
    bind: bool,
    timed_out: bool,
    /// The RFC 8460 result type of a DANE failure.
    result_type: Option<&'static str>,
}

/// What applies to sessions with one MX host: its DANE policy and the domain's MTA-STS policy in force.
struct HostPolicy<'a> {
    dane: &'a DanePolicy,
    sts: Option<&'a Arc<MtaStsPolicy>>,
    /// The message is [`TlsRequirement::Exempt`]: new sessions are opportunistic and not reported.
    exempt: bool,
}

impl<'a> HostPolicy<'a> {
    /// The domain's MTA-STS policy, before any host is known.
    fn sts(sts: Option<&'a Arc<MtaStsPolicy>>) -> Self {
        HostPolicy {
            dane: &DanePolicy::NotApplicable,
            sts,
            exempt: false,
        }
    }
}

/// The session that decided a transaction.
struct Used {
    label: String,
    tls: bool,
    /// Its certificate was authenticated by DANE.
    dane: bool,
    source: Option<IpAddr>,
}

/// Whether an idle `session` may carry a delivery to MX `host` under `dane`: a DANE-verified host only reuses a
/// session verified for it, an encrypt-only one a TLS session; without DANE any session does.
fn dane_fits(dane: &DanePolicy, host: &str, session: &Session) -> bool {
    match dane {
        DanePolicy::NotApplicable => true,
        DanePolicy::EncryptOnly => session.tls,
        DanePolicy::Verify(_) => session.dane_host.as_deref() == Some(host),
        DanePolicy::Unusable(_) => false,
    }
}

/// Outcomes for a prefix of a chunk's recipients.
struct Attempt {
    outcomes: Vec<Outcome>,
    used: Option<Used>,
}

impl Attempt {
    fn all(n: usize, o: Outcome) -> Self {
        Attempt {
            outcomes: vec![o; n],
            used: None,
        }
    }
}

fn fill(outcomes: &mut [Option<Outcome>], which: &[usize], o: &Outcome) {
    for &i in which {
        if let Some(slot) = outcomes.get_mut(i) {
            *slot = Some(o.clone());
        }
    }
}

fn finish(outcomes: Vec<Option<Outcome>>) -> Vec<Outcome> {
    outcomes
        .into_iter()
        .map(|o| o.unwrap_or_else(|| Outcome::deferred("4.3.0 internal error: no outcome recorded")))
        .collect()
}

/// Under an enforced MTA-STS policy, a verified-TLS failure says so: `4.7.5 MTA-STS: certificate name mismatch
/// (…the transport's reason…)`.
fn mta_sts_outcome(outcome: Outcome) -> Outcome {
    match outcome {
        Outcome::Deferred { reply } => match TlsFailure::from_reason(&reply) {
            Some(failure) => Outcome::Deferred {
                reply: format!("4.7.5 MTA-STS: {} ({reply})", failure.describe()),
            },
            None => Outcome::Deferred { reply },
        },
        other => other,
    }
}

/// Local status for a resolution failure (RFC 3463 / RFC 7505 codes).
fn resolve_outcome(e: &ResolveError) -> Outcome {
    match e {
        ResolveError::NxDomain(_) => Outcome::bounced(format!("5.1.2 {e}")),
        ResolveError::NullMx(_) => Outcome::bounced(format!("5.1.10 {e}")),
        ResolveError::NoRoute(_) => Outcome::bounced(format!("5.4.4 {e}")),
        ResolveError::Temporary(_) => Outcome::deferred(format!("4.4.3 {e}")),
        ResolveError::Config(_) => Outcome::deferred(format!("4.3.5 {e}")),
    }
}

/// An envelope address that cannot break the command line it is put in. The model validated
/// addresses already; this guards the wire against anything else handed in.
fn valid_path(addr: &str, may_be_empty: bool) -> bool {
    if addr.is_empty() {
        return may_be_empty;
    }
    addr.len() <= 256 && addr.contains('@') && !addr.chars().any(|c| c.is_control() || c == '<' || c == '>')
}

async fn quit(mut session: Session) {
    // Do not let a slow peer hold a shutdown for the full command timeout.
    session.client.timeout = session.client.timeout.min(Duration::from_secs(5));
    let _ = session.client.quit().await;
}

/// QUIT in the background; outside a tokio runtime the connection is simply dropped.
fn quit_later(session: Session) {
    if let Ok(handle) = tokio::runtime::Handle::try_current() {
        handle.spawn(quit(session));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert!(valid_path("", true));
        assert!(!valid_path("", false));
        assert!(valid_path("a@example.com", false));
        assert!(valid_path("\"john doe\"@example.com", false));
        assert!(valid_path("用户@example.com", false));
        assert!(!valid_path("a@example.com>\r\nRCPT TO:<b@example.com", false));
        assert!(!valid_path("a<b@example.com", false));
        assert!(!valid_path("nobody", false));
    }

    #[test]
    fn resolve_outcomes() {
        assert!(
            matches!(resolve_outcome(&ResolveError::NxDomain("x.test".into())), Outcome::Bounced { reply } if reply.starts_with("5.1.2 "))
        );
        assert!(
            matches!(resolve_outcome(&ResolveError::NullMx("x.test".into())), Outcome::Bounced { reply } if reply.starts_with("5.1.10 "))
        );
        assert!(matches!(
            resolve_outcome(&ResolveError::NoRoute("x.test".into())),
            Outcome::Bounced { .. }
        ));
        assert!(matches!(
            resolve_outcome(&ResolveError::Temporary("t".into())),
            Outcome::Deferred { .. }
        ));
        assert!(matches!(
            resolve_outcome(&ResolveError::Config("c".into())),
            Outcome::Deferred { .. }
        ));
    }

    #[test]
    fn outcome_from_reply() {
        let r = |code| Response {
            code,
            esc: [0, 0, 0],
            message: "x".to_string(),
        };
        assert!(matches!(Outcome::from_reply(&r(250)), Outcome::Delivered { .. }));
        assert!(matches!(Outcome::from_reply(&r(451)), Outcome::Deferred { .. }));
        assert!(matches!(Outcome::from_reply(&r(550)), Outcome::Bounced { .. }));
        assert!(matches!(Outcome::from_reply(&r(354)), Outcome::Deferred { .. }));
        assert_eq!(Outcome::from_reply(&r(550)).reply(), "550 x");
    }
}
