//! Source pools (named pools, hot standby, the warm-up gate) and per-destination shaping, against the testkit
//! DNS authority and sink MX on loopback. Sources are 127.0.0.x (all local on Linux); 192.0.2.1 (TEST-NET-1) is
//! used as a member that cannot bind: binding fails locally, so nothing is ever sent to it.

use std::{
    collections::{BTreeSet, HashMap},
    net::{IpAddr, Ipv4Addr},
    sync::{Arc, Mutex},
    time::Duration,
};

use mailpush_delivery::{
    DestinationLimits, GateFuture, Outcome, ShapingConfig, SmtpTransport, SourceGate, TransportConfig,
};
use mailpush_testkit::{DnsAuthority, SinkMx, SinkReply};

mod common;
use common::{assert_delivered, config, envelope, resolver, send_concurrently};

const MESSAGE: &[u8] = b"From: sender@mailpush-sender.com\r\nTo: rcpt@dest.com\r\nSubject: hi\r\n\r\nhello\r\n";

fn ip(last: u8) -> IpAddr {
    Ipv4Addr::new(127, 0, 0, last).into()
}

fn unbindable() -> IpAddr {
    Ipv4Addr::new(192, 0, 2, 1).into()
}

async fn start(domain: &str) -> (DnsAuthority, SinkMx) {
    let dns = DnsAuthority::start().await.unwrap();
    let sink = SinkMx::start_default().await.unwrap();
    let mx = format!("mx.{domain}");
    dns.add_mx(domain, 10, &mx);
    dns.add_a(&mx, Ipv4Addr::LOCALHOST);
    (dns, sink)
}

/// A transport towards the sink whose per-destination shaping is `shaping`.
fn shaped(dns: &DnsAuthority, sink: &SinkMx, shaping: ShapingConfig) -> SmtpTransport {
    SmtpTransport::new(
        TransportConfig {
            shaping,
            ..config(sink.port())
        },
        resolver(dns),
    )
}

fn peers(sink: &SinkMx) -> BTreeSet<IpAddr> {
    sink.messages().iter().map(|m| m.peer.ip()).collect()
}

/// A test gate: fixed allowances per address, counts what was reserved and released.
#[derive(Default)]
struct CountingGate {
    allowance: HashMap<IpAddr, u32>,
    used: Mutex<HashMap<IpAddr, u32>>,
}

impl CountingGate {
    fn used(&self, source: IpAddr) -> u32 {
        self.used.lock().unwrap().get(&source).copied().unwrap_or(0)
    }
}

impl SourceGate for CountingGate {
    fn reserve(&self, source: IpAddr, wanted: u32) -> GateFuture<'_, Result<u32, String>> {
        Box::pin(async move {
            let mut used = self.used.lock().unwrap();
            let u = used.entry(source).or_default();
            let left = self
                .allowance
                .get(&source)
                .copied()
                .unwrap_or(u32::MAX)
                .saturating_sub(*u);
            let granted = left.min(wanted);
            *u += granted;
            Ok(granted)
        })
    }

    fn release(&self, source: IpAddr, count: u32) -> GateFuture<'_, ()> {
        Box::pin(async move {
            let mut used = self.used.lock().unwrap();
            let u = used.entry(source).or_default();
            *u = u.saturating_sub(count);
        })
    }
}

/// A domain's pool decides the sources: the dedicated pool's members only, spread over both; the shared pool
/// (and an unknown pool name) use `source_ips`.
#[tokio::test]
async fn a_dedicated_pool_sends_only_from_its_members() {
    let (dns, sink) = start("dest.com").await;
    let t = SmtpTransport::new(
        TransportConfig {
            source_ips: vec![ip(2), ip(3)],
            source_pools: vec![("vip".into(), vec![ip(4), ip(5)])],
            max_idle_per_host: 0,
            ..config(sink.port())
        },
        resolver(&dns),
    );
    for i in 0..6 {
        let rcpt = format!("vip{i}@dest.com");
        let report = t
            .send_from_pool("dest.com", Some("vip"), &envelope(&[&rcpt]), MESSAGE)
            .await;
        assert_delivered(&report);
        assert!(
            matches!(report.source, Some(s) if s == ip(4) || s == ip(5)),
            "{report:?}"
        );
    }
    assert_eq!(
        peers(&sink),
        BTreeSet::from([ip(4), ip(5)]),
        "spread over the dedicated pool"
    );

    sink.clear();
    for i in 0..4 {
        let rcpt = format!("shared{i}@dest.com");
        assert_delivered(&t.send("dest.com", &envelope(&[&rcpt]), MESSAGE).await);
        assert_delivered(
            &t.send_from_pool("dest.com", Some("nosuchpool"), &envelope(&[&rcpt]), MESSAGE)
                .await,
        );
    }
    assert_eq!(peers(&sink), BTreeSet::from([ip(2), ip(3)]), "the shared pool");
}

/// A member that cannot bind is skipped (the other takes over) and then avoided: it is no longer tried first.
#[tokio::test]
async fn a_member_that_cannot_bind_is_avoided_and_the_other_takes_over() {
    let (dns, sink) = start("dest.com").await;
    let gate = Arc::new(CountingGate::default());
    let t = SmtpTransport::with_gate(
        TransportConfig {
            source_ips: vec![unbindable(), ip(2)],
            max_idle_per_host: 0,
            ..config(sink.port())
        },
        resolver(&dns),
        Some(gate.clone()),
    );
    for i in 0..6 {
        let rcpt = format!("r{i}@dest.com");
        let report = t.send("dest.com", &envelope(&[&rcpt]), MESSAGE).await;
        assert_delivered(&report);
        assert_eq!(report.source, Some(ip(2)));
    }
    assert_eq!(peers(&sink), BTreeSet::from([ip(2)]));
    assert!(t.source_avoided(unbindable()));
    assert!(!t.source_avoided(ip(2)));
    assert_eq!(
        gate.used(unbindable()),
        0,
        "sends reserved for the failing member were given back"
    );
    assert_eq!(gate.used(ip(2)), 6);
}

/// Warm-up: a member at its allowance is not used while another has some; a transaction larger than what is left
/// is split; once every member is at its allowance the rest is held (not deferred, not bounced).
#[tokio::test]
async fn members_at_their_warmup_allowance_are_skipped_then_mail_is_held() {
    let (dns, sink) = start("dest.com").await;
    let gate = Arc::new(CountingGate {
        allowance: HashMap::from([(ip(2), 2), (ip(3), 3)]),
        ..CountingGate::default()
    });
    let t = SmtpTransport::with_gate(
        TransportConfig {
            source_ips: vec![ip(2), ip(3)],
            ..config(sink.port())
        },
        resolver(&dns),
        Some(gate.clone()),
    );
    // Four recipients in one message: 2 + 2 from the two members (or 3 + 1), in two transactions.
    let report = t
        .send(
            "dest.com",
            &envelope(&["a@dest.com", "b@dest.com", "c@dest.com", "d@dest.com"]),
            MESSAGE,
        )
        .await;
    assert_delivered(&report);
    assert_eq!(sink.message_count(), 2, "split over the members");
    assert_eq!(gate.used(ip(2)) + gate.used(ip(3)), 4);

    // One left in total (on whichever member has it), then nothing.
    let report = t.send("dest.com", &envelope(&["e@dest.com"]), MESSAGE).await;
    assert_delivered(&report);
    let report = t
        .send("dest.com", &envelope(&["f@dest.com", "g@dest.com"]), MESSAGE)
        .await;
    for o in &report.outcomes {
        assert!(
            matches!(&o.outcome, Outcome::Held { reply } if reply.contains("held for warm-up")),
            "{report:?}"
        );
    }
    assert_eq!((gate.used(ip(2)), gate.used(ip(3))), (2, 3));
    assert_eq!(sink.message_count(), 3);
    let got: usize = sink.messages().iter().map(|m| m.rcpt_to.len()).sum();
    assert_eq!(got, 5);
}

/// The cap on simultaneous connections towards a destination holds under many concurrent sends (the sink counts
/// the connections it serves at once), and messages per connection are limited.
#[tokio::test]
async fn the_connection_cap_of_a_destination_is_never_exceeded() {
    let (dns, sink) = start("capped.com").await;
    let limits = DestinationLimits {
        max_connections: 3,
        max_messages_per_connection: 2,
        max_per_minute: 0,
    };
    let t = shaped(
        &dns,
        &sink,
        ShapingConfig {
            domains: [("capped.com".to_string(), limits)].into(),
            max_wait: Duration::from_secs(60),
            ..ShapingConfig::default()
        },
    );
    send_concurrently(&t, "capped.com", 40, MESSAGE).await;
    assert_eq!(sink.message_count(), 40);
    assert!(sink.peak_connections() <= 3, "peak {}", sink.peak_connections());
    assert!(sink.connection_count() >= 20, "2 messages per connection at most");
    let state = t.destination("capped.com").unwrap();
    assert!(state.peak_connections <= 3 && state.peak_connections >= 1, "{state:?}");
    let per_connection = sink.messages().iter().fold(HashMap::<u64, usize>::new(), |mut m, msg| {
        *m.entry(msg.connection_id).or_default() += 1;
        m
    });
    assert!(per_connection.values().all(|n| *n <= 2), "{per_connection:?}");
}

/// "Too many connections" at the greeting and a 4.7.x rate-limit reply slow the destination down (concurrency and
/// rate halved), the recipients are throttled (retried soon, not bounced), and successes bring it back.
#[tokio::test]
async fn rate_limit_replies_slow_the_destination_down_and_successes_bring_it_back() {
    let (dns, sink) = start("busy.com").await;
    let limits = DestinationLimits {
        max_connections: 8,
        max_messages_per_connection: 100,
        max_per_minute: 6_000,
    };
    let t = shaped(
        &dns,
        &sink,
        ShapingConfig {
            domains: [("busy.com".to_string(), limits)].into(),
            ..ShapingConfig::default()
        },
    );
    sink.set_greeting_replies(vec![(421, "4.7.0 Too many connections from your IP".into())]);
    let report = t.send("busy.com", &envelope(&["a@busy.com"]), MESSAGE).await;
    assert!(
        matches!(&report.outcomes[0].outcome, Outcome::Throttled { reply, .. } if reply.starts_with("421 4.7.0")),
        "{report:?}"
    );
    assert_eq!(sink.refused_connections(), 1);
    let s = t.destination("busy.com").unwrap();
    assert_eq!(
        (s.connection_cap, s.rate_per_minute, s.slowdowns),
        (4, Some(3_000.0), 1)
    );

    // A rate-limit reply to RCPT: that recipient is throttled, the other delivered; slowed down again.
    sink.set_reply("slow@busy.com", SinkReply::reply(451, "4.7.1 Rate limited, slow down"));
    let report = t
        .send("busy.com", &envelope(&["slow@busy.com", "ok@busy.com"]), MESSAGE)
        .await;
    assert!(
        matches!(report.outcomes[0].outcome, Outcome::Throttled { .. }),
        "{report:?}"
    );
    assert!(
        matches!(report.outcomes[1].outcome, Outcome::Delivered { .. }),
        "{report:?}"
    );
    let s = t.destination("busy.com").unwrap();
    assert_eq!(
        (s.connection_cap, s.rate_per_minute, s.slowdowns),
        (2, Some(1_500.0), 2)
    );
    assert_eq!(s.throttle_signals, 2);

    // Successes: one step back every 10.
    sink.clear_replies();
    for i in 0..10 {
        let rcpt = format!("r{i}@busy.com");
        assert_delivered(&t.send("busy.com", &envelope(&[&rcpt]), MESSAGE).await);
    }
    let s = t.destination("busy.com").unwrap();
    assert_eq!(s.connection_cap, 3, "{s:?}");
    assert!(s.rate_per_minute.unwrap() > 1_500.0, "{s:?}");
}

/// The sink refusing connections over its limit (421 at the greeting) is a throttle signal too.
#[tokio::test]
async fn a_receiver_over_its_connection_limit_slows_us_down() {
    let dns = DnsAuthority::start().await.unwrap();
    let sink = SinkMx::start(mailpush_testkit::SinkConfig {
        max_connections: Some(1),
        ..mailpush_testkit::SinkConfig::default()
    })
    .await
    .unwrap();
    dns.add_mx("one.com", 10, "mx.one.com");
    dns.add_a("mx.one.com", Ipv4Addr::LOCALHOST);
    let t = SmtpTransport::new(config(sink.port()), resolver(&dns));
    // Hold one connection open (idle in the pool), then force a second one from another source.
    assert_delivered(&t.send("one.com", &envelope(&["a@one.com"]), MESSAGE).await);
    let other = SmtpTransport::new(
        TransportConfig {
            source_ips: vec![ip(7)],
            ..config(sink.port())
        },
        resolver(&dns),
    );
    let report = other.send("one.com", &envelope(&["b@one.com"]), MESSAGE).await;
    assert!(
        matches!(report.outcomes[0].outcome, Outcome::Throttled { .. }),
        "{report:?}"
    );
    assert_eq!(other.destination("one.com").unwrap().slowdowns, 1);
    assert_eq!(other.destination("one.com").unwrap().connection_cap, 5);
}

/// mailpush's own per-minute limit: a transaction whose turn is further away than the wait allowed is throttled
/// locally (nothing dialled).
#[tokio::test]
async fn the_per_minute_limit_defers_what_does_not_fit() {
    let (dns, sink) = start("slow.com").await;
    let t = shaped(
        &dns,
        &sink,
        ShapingConfig {
            default: DestinationLimits {
                max_per_minute: 1,
                ..DestinationLimits::default()
            },
            max_wait: Duration::from_millis(200),
            retry_after: Duration::from_secs(30),
            ..ShapingConfig::default()
        },
    );
    assert_delivered(&t.send("slow.com", &envelope(&["a@slow.com"]), MESSAGE).await);
    let report = t.send("slow.com", &envelope(&["b@slow.com"]), MESSAGE).await;
    match &report.outcomes[0].outcome {
        Outcome::Throttled { reply, retry_after } => {
            assert!(reply.contains("local limit"), "{reply}");
            assert!(*retry_after >= Duration::from_secs(30));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(sink.connection_count(), 1);
}
