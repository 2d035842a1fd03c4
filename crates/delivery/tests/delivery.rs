//! Delivery against real loopback servers: the testkit DNS authority and sink MX.

use std::{
    net::{IpAddr, Ipv4Addr},
    time::Duration,
};

use mailpush_delivery::{
    DnsSettings, Envelope, MxResolver, Outcome, ResolveError, SendReport, SmtpTransport, TlsPolicy, TransportConfig,
};
use mailpush_testkit::{DnsAuthority, SinkConfig, SinkMx, SinkReply};

mod common;
use common::{assert_delivered, config, envelope, resolver, send_concurrently};

const MESSAGE: &[u8] =
    b"From: sender@mailpush-sender.com\r\nTo: rcpt@dest.com\r\nSubject: hi\r\n\r\nhello\r\n.leading dot\r\n";
const WAIT: Duration = Duration::from_secs(5);

fn transport(dns: &DnsAuthority, sink: &SinkMx) -> SmtpTransport {
    SmtpTransport::new(config(sink.port()), resolver(dns))
}

/// `domain` → MX `mx.<domain>` → 127.0.0.1.
fn simple_domain(dns: &DnsAuthority, domain: &str) {
    let mx = format!("mx.{domain}");
    dns.add_mx(domain, 10, &mx);
    dns.add_a(&mx, Ipv4Addr::LOCALHOST);
}

async fn start() -> (DnsAuthority, SinkMx) {
    (
        DnsAuthority::start().await.unwrap(),
        SinkMx::start_default().await.unwrap(),
    )
}

fn outcome<'a>(report: &'a SendReport, rcpt: &str) -> &'a Outcome {
    &report
        .outcomes
        .iter()
        .find(|o| o.rcpt == rcpt)
        .unwrap_or_else(|| panic!("no outcome for {rcpt}"))
        .outcome
}

#[tokio::test]
async fn delivers_and_reports_the_mx() {
    let (dns, sink) = start().await;
    simple_domain(&dns, "dest.com");
    let t = transport(&dns, &sink);
    let report = t.send("dest.com", &envelope(&["alice@dest.com"]), MESSAGE).await;
    assert_delivered(&report);
    assert!(
        outcome(&report, "alice@dest.com").reply().starts_with("250"),
        "{report:?}"
    );
    assert_eq!(
        report.mx.as_deref(),
        Some(format!("mx.dest.com[127.0.0.1]:{}", sink.port()).as_str())
    );
    assert!(!report.tls);

    let msgs = sink.wait_for_messages(1, WAIT).await.unwrap();
    assert_eq!(msgs[0].mail_from, "bounce@mailpush-sender.com");
    assert_eq!(msgs[0].rcpt_to, ["alice@dest.com"]);
    assert_eq!(msgs[0].helo, "out.mailpush-sender.com");
    // Dot-stuffing is transparent end to end.
    assert_eq!(msgs[0].data, MESSAGE);
}

#[tokio::test]
async fn falls_back_to_the_next_mx_by_preference() {
    let (dns, sink) = start().await;
    // Preferred MX: an address where nothing listens on the sink's port.
    dns.add_mx("pref.com", 10, "mx1.pref.com");
    dns.add_a("mx1.pref.com", Ipv4Addr::new(127, 0, 0, 2));
    dns.add_mx("pref.com", 20, "mx2.pref.com");
    dns.add_a("mx2.pref.com", Ipv4Addr::LOCALHOST);

    let routes = resolver(&dns).route("pref.com").await.unwrap();
    let names: Vec<_> = routes.iter().map(|h| (h.name.as_str(), h.preference)).collect();
    assert_eq!(names, [("mx1.pref.com", 10), ("mx2.pref.com", 20)]);
    assert_eq!(routes[0].addrs, [IpAddr::from([127, 0, 0, 2])]);

    let t = transport(&dns, &sink);
    let report = t.send("pref.com", &envelope(&["bob@pref.com"]), MESSAGE).await;
    assert_delivered(&report);
    assert!(
        report.mx.as_deref().unwrap().starts_with("mx2.pref.com[127.0.0.1]"),
        "{report:?}"
    );
    assert_eq!(
        sink.wait_for_messages(1, WAIT).await.unwrap()[0].rcpt_to,
        ["bob@pref.com"]
    );
}

#[tokio::test]
async fn all_mx_unreachable_is_deferred() {
    let (dns, sink) = start().await;
    dns.add_mx("down.com", 10, "mx1.down.com");
    dns.add_a("mx1.down.com", Ipv4Addr::new(127, 0, 0, 2));
    dns.add_mx("down.com", 20, "mx2.down.com");
    dns.add_a("mx2.down.com", Ipv4Addr::new(127, 0, 0, 3));
    let t = transport(&dns, &sink);
    let report = t
        .send("down.com", &envelope(&["a@down.com", "b@down.com"]), MESSAGE)
        .await;
    assert_eq!(report.outcomes.len(), 2);
    for o in &report.outcomes {
        match &o.outcome {
            Outcome::Deferred { reply } => {
                assert!(
                    reply.starts_with("4.4.1 connection to mx2.down.com[127.0.0.3]"),
                    "{reply}"
                )
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(report.mx, None);
    assert_eq!(sink.connection_count(), 0);
}

#[tokio::test]
async fn implicit_mx_from_the_a_record() {
    let (dns, sink) = start().await;
    dns.add_a("bare.com", Ipv4Addr::LOCALHOST);
    let routes = resolver(&dns).route("bare.com").await.unwrap();
    assert_eq!(routes.len(), 1);
    assert_eq!((routes[0].name.as_str(), routes[0].preference), ("bare.com", 0));

    let t = transport(&dns, &sink);
    let report = t.send("bare.com", &envelope(&["c@bare.com"]), MESSAGE).await;
    assert_delivered(&report);
    assert!(report.mx.unwrap().starts_with("bare.com[127.0.0.1]"));
}

#[tokio::test]
async fn resolution_failures_bounce_or_defer() {
    let (dns, sink) = start().await;
    let t = transport(&dns, &sink);
    let r = resolver(&dns);

    // NXDOMAIN.
    assert_eq!(
        r.route("nowhere.com").await,
        Err(ResolveError::NxDomain("nowhere.com".into()))
    );
    let report = t.send("nowhere.com", &envelope(&["x@nowhere.com"]), MESSAGE).await;
    assert!(
        matches!(outcome(&report, "x@nowhere.com"), Outcome::Bounced { reply } if reply.starts_with("5.1.2 ")),
        "{report:?}"
    );

    // Null MX (RFC 7505).
    dns.set_null_mx("nomail.com");
    assert_eq!(
        r.route("nomail.com").await,
        Err(ResolveError::NullMx("nomail.com".into()))
    );
    let report = t.send("nomail.com", &envelope(&["x@nomail.com"]), MESSAGE).await;
    assert!(
        matches!(outcome(&report, "x@nomail.com"), Outcome::Bounced { reply } if reply.starts_with("5.1.10 ")),
        "{report:?}"
    );

    // The name exists (it has TXT) but has neither MX nor A/AAAA.
    dns.add_txt("txtonly.com", "v=spf1 -all");
    assert!(matches!(r.route("txtonly.com").await, Err(ResolveError::NoRoute(_))));
    let report = t.send("txtonly.com", &envelope(&["x@txtonly.com"]), MESSAGE).await;
    assert!(
        matches!(outcome(&report, "x@txtonly.com"), Outcome::Bounced { .. }),
        "{report:?}"
    );

    // MX host without address.
    dns.add_mx("dangling.com", 10, "mx.missing.com");
    assert!(matches!(r.route("dangling.com").await, Err(ResolveError::NoRoute(_))));

    // SERVFAIL is temporary.
    dns.set_servfail("broken.com", true);
    assert!(matches!(r.route("broken.com").await, Err(ResolveError::Temporary(_))));
    let report = t.send("broken.com", &envelope(&["x@broken.com"]), MESSAGE).await;
    assert!(
        matches!(outcome(&report, "x@broken.com"), Outcome::Deferred { reply } if reply.starts_with("4.4.3 ")),
        "{report:?}"
    );

    assert_eq!(sink.connection_count(), 0);
}

#[tokio::test]
async fn dns_changes_are_seen_at_runtime() {
    let dns = DnsAuthority::start().await.unwrap();
    dns.add_mx("moving.com", 10, "old.moving.com");
    dns.add_a("old.moving.com", Ipv4Addr::new(127, 0, 0, 5));
    dns.add_a("new.moving.com", Ipv4Addr::new(127, 0, 0, 6));

    // Without a cache the change is visible at once.
    let r = resolver(&dns);
    assert_eq!(r.route("moving.com").await.unwrap()[0].name, "old.moving.com");
    dns.remove("moving.com", mailpush_testkit::RecordType::MX);
    dns.add_mx("moving.com", 10, "new.moving.com");
    assert_eq!(r.route("moving.com").await.unwrap()[0].name, "new.moving.com");

    // With the cache, the authority's 1 s TTL is honoured.
    let cached = MxResolver::new(&DnsSettings {
        servers: vec![dns.addr()],
        timeout: Duration::from_secs(2),
        cache: true,
        dnssec: None,
    })
    .unwrap();
    assert_eq!(cached.route("moving.com").await.unwrap()[0].name, "new.moving.com");
    dns.remove("moving.com", mailpush_testkit::RecordType::MX);
    dns.add_mx("moving.com", 10, "old.moving.com");
    assert_eq!(
        cached.route("moving.com").await.unwrap()[0].name,
        "new.moving.com",
        "within the TTL the cached route holds"
    );
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(cached.route("moving.com").await.unwrap()[0].name, "old.moving.com");
}

#[tokio::test]
async fn per_recipient_outcomes_in_one_transaction() {
    let (dns, sink) = start().await;
    simple_domain(&dns, "mixed.com");
    sink.set_reply(
        "later@mixed.com",
        SinkReply::reply(451, "4.2.1 mailbox busy, try later"),
    );
    sink.set_reply("gone@mixed.com", SinkReply::reply(550, "5.1.1 no such user"));
    let t = transport(&dns, &sink);
    let env = envelope(&["ok@mixed.com", "later@mixed.com", "gone@mixed.com", "ok2@mixed.com"]);
    let report = t.send("mixed.com", &env, MESSAGE).await;

    assert_eq!(
        report.outcomes.iter().map(|o| o.rcpt.as_str()).collect::<Vec<_>>(),
        env.rcpt_to
    );
    assert!(matches!(outcome(&report, "ok@mixed.com"), Outcome::Delivered { .. }));
    assert!(matches!(outcome(&report, "ok2@mixed.com"), Outcome::Delivered { .. }));
    assert_eq!(
        outcome(&report, "later@mixed.com"),
        &Outcome::Deferred {
            reply: "451 4.2.1 mailbox busy, try later".into()
        }
    );
    assert_eq!(
        outcome(&report, "gone@mixed.com"),
        &Outcome::Bounced {
            reply: "550 5.1.1 no such user".into()
        }
    );

    let msgs = sink.wait_for_messages(1, WAIT).await.unwrap();
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].rcpt_to, ["ok@mixed.com", "ok2@mixed.com"]);
    assert_eq!(sink.connection_count(), 1);
}

#[tokio::test]
async fn no_recipient_accepted_sends_no_data_and_keeps_the_connection() {
    let (dns, sink) = start().await;
    simple_domain(&dns, "none.com");
    sink.set_reply("a@none.com", SinkReply::reply(550, "5.1.1 unknown"));
    sink.set_reply("b@none.com", SinkReply::reply(450, "4.2.0 greylisted"));
    let t = transport(&dns, &sink);
    let report = t
        .send("none.com", &envelope(&["a@none.com", "b@none.com"]), MESSAGE)
        .await;
    assert!(matches!(outcome(&report, "a@none.com"), Outcome::Bounced { .. }));
    assert!(matches!(outcome(&report, "b@none.com"), Outcome::Deferred { .. }));
    assert_eq!(sink.message_count(), 0);
    // RSET, then the connection is reused for the next message.
    let report = t.send("none.com", &envelope(&["c@none.com"]), MESSAGE).await;
    assert_delivered(&report);
    assert_eq!(sink.connection_count(), 1);
}

#[tokio::test]
async fn data_reply_applies_to_all_accepted_recipients() {
    let (dns, sink) = start().await;
    simple_domain(&dns, "data.com");
    sink.set_reply("gone@data.com", SinkReply::reply(550, "5.1.1 no such user"));
    sink.set_data_reply(Some((451, "4.3.0 try again later".into())));
    let t = transport(&dns, &sink);
    let report = t
        .send(
            "data.com",
            &envelope(&["a@data.com", "b@data.com", "gone@data.com"]),
            MESSAGE,
        )
        .await;
    for rcpt in ["a@data.com", "b@data.com"] {
        assert_eq!(
            outcome(&report, rcpt),
            &Outcome::Deferred {
                reply: "451 4.3.0 try again later".into()
            }
        );
    }
    assert!(matches!(outcome(&report, "gone@data.com"), Outcome::Bounced { .. }));

    sink.set_data_reply(Some((554, "5.7.1 spam detected".into())));
    let report = t.send("data.com", &envelope(&["a@data.com"]), MESSAGE).await;
    assert_eq!(
        outcome(&report, "a@data.com"),
        &Outcome::Bounced {
            reply: "554 5.7.1 spam detected".into()
        }
    );
    assert_eq!(sink.message_count(), 0);
    assert_eq!(
        sink.connection_count(),
        1,
        "a refused message does not cost the connection"
    );
}

#[tokio::test]
async fn connections_are_reused() {
    let (dns, sink) = start().await;
    simple_domain(&dns, "reuse.com");
    let t = transport(&dns, &sink);
    for i in 0..3 {
        let rcpt = format!("r{i}@reuse.com");
        let report = t.send("reuse.com", &envelope(&[&rcpt]), MESSAGE).await;
        assert_delivered(&report);
    }
    assert_eq!(sink.wait_for_messages(3, WAIT).await.unwrap().len(), 3);
    assert_eq!(sink.connection_count(), 1);
    assert!(sink.messages().iter().all(|m| m.connection_id == 1));
    assert_eq!(t.idle_connections(), 1);

    t.close_idle().await;
    assert_eq!(t.idle_connections(), 0);
    let report = t.send("reuse.com", &envelope(&["again@reuse.com"]), MESSAGE).await;
    assert_delivered(&report);
    assert_eq!(sink.connection_count(), 2);
}

#[tokio::test]
async fn reuse_limits_are_honoured() {
    let (dns, sink) = start().await;
    simple_domain(&dns, "limits.com");
    // Reuse disabled.
    let t = SmtpTransport::new(
        TransportConfig {
            max_idle_per_host: 0,
            ..config(sink.port())
        },
        resolver(&dns),
    );
    for _ in 0..2 {
        assert_delivered(&t.send("limits.com", &envelope(&["a@limits.com"]), MESSAGE).await);
    }
    assert_eq!(sink.connection_count(), 2);
    assert_eq!(t.idle_connections(), 0);

    // Two messages per connection at most.
    let t = SmtpTransport::new(
        TransportConfig {
            max_messages_per_connection: 2,
            ..config(sink.port())
        },
        resolver(&dns),
    );
    for _ in 0..4 {
        assert_delivered(&t.send("limits.com", &envelope(&["a@limits.com"]), MESSAGE).await);
    }
    assert_eq!(sink.connection_count(), 4);

    // Idle timeout: an old connection is not reused.
    let t = SmtpTransport::new(
        TransportConfig {
            idle_timeout: Duration::from_millis(200),
            ..config(sink.port())
        },
        resolver(&dns),
    );
    assert_delivered(&t.send("limits.com", &envelope(&["a@limits.com"]), MESSAGE).await);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_delivered(&t.send("limits.com", &envelope(&["a@limits.com"]), MESSAGE).await);
    assert_eq!(sink.connection_count(), 6);
}

#[tokio::test]
async fn a_dead_idle_connection_is_replaced_transparently() {
    let dns = DnsAuthority::start().await.unwrap();
    // The sink closes idle connections (421) after 300 ms; the transport would keep them 30 s.
    let sink = SinkMx::start(SinkConfig {
        idle_timeout: Duration::from_millis(300),
        ..SinkConfig::default()
    })
    .await
    .unwrap();
    simple_domain(&dns, "dead.com");
    let t = transport(&dns, &sink);
    assert_delivered(&t.send("dead.com", &envelope(&["a@dead.com"]), MESSAGE).await);
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(t.idle_connections(), 1);
    let report = t.send("dead.com", &envelope(&["b@dead.com"]), MESSAGE).await;
    assert_delivered(&report);
    assert_eq!(sink.connection_count(), 2);
    assert_eq!(sink.wait_for_messages(2, WAIT).await.unwrap().len(), 2);
}

#[tokio::test]
async fn starttls_is_used_when_offered() {
    let dns = DnsAuthority::start().await.unwrap();
    let sink = SinkMx::start(SinkConfig {
        starttls: true,
        ..SinkConfig::default()
    })
    .await
    .unwrap();
    simple_domain(&dns, "tls.com");
    let t = transport(&dns, &sink);
    let report = t.send("tls.com", &envelope(&["a@tls.com"]), MESSAGE).await;
    assert_delivered(&report);
    assert!(report.tls);
    let msgs = sink.wait_for_messages(1, WAIT).await.unwrap();
    assert!(msgs[0].tls);
    // The TLS session is reused too.
    let report = t.send("tls.com", &envelope(&["b@tls.com"]), MESSAGE).await;
    assert_delivered(&report);
    assert!(sink.wait_for_messages(2, WAIT).await.unwrap().iter().all(|m| m.tls));
    assert_eq!(sink.connection_count(), 1);

    // Disabled policy: plain text even though offered.
    let t = SmtpTransport::new(
        TransportConfig {
            tls: TlsPolicy::Disabled,
            ..config(sink.port())
        },
        resolver(&dns),
    );
    let report = t.send("tls.com", &envelope(&["c@tls.com"]), MESSAGE).await;
    assert_delivered(&report);
    assert!(!report.tls);
    assert!(!sink.messages_for("c@tls.com")[0].tls);
}

#[tokio::test]
async fn plain_text_when_starttls_is_not_offered() {
    let (dns, sink) = start().await;
    simple_domain(&dns, "plain.com");
    let t = transport(&dns, &sink);
    let report = t.send("plain.com", &envelope(&["a@plain.com"]), MESSAGE).await;
    assert_delivered(&report);
    assert!(!report.tls);
    assert!(!sink.wait_for_messages(1, WAIT).await.unwrap()[0].tls);
}

#[tokio::test]
async fn required_tls_defers_without_a_verifiable_starttls() {
    let dns = DnsAuthority::start().await.unwrap();
    let plain = SinkMx::start_default().await.unwrap();
    simple_domain(&dns, "strict.com");
    let strict = |port| {
        SmtpTransport::new(
            TransportConfig {
                tls: TlsPolicy::Required,
                ..config(port)
            },
            resolver(&dns),
        )
    };

    let report = strict(plain.port())
        .send("strict.com", &envelope(&["a@strict.com"]), MESSAGE)
        .await;
    assert!(
        matches!(outcome(&report, "a@strict.com"), Outcome::Deferred { reply } if reply.starts_with("4.7.4 ")),
        "{report:?}"
    );
    assert_eq!(plain.message_count(), 0);

    // The sink's certificate comes from a test CA nobody trusts: verification fails.
    let tls = SinkMx::start(SinkConfig {
        starttls: true,
        ..SinkConfig::default()
    })
    .await
    .unwrap();
    let report = strict(tls.port())
        .send("strict.com", &envelope(&["a@strict.com"]), MESSAGE)
        .await;
    assert!(
        matches!(outcome(&report, "a@strict.com"), Outcome::Deferred { reply } if reply.starts_with("4.7.5 ")),
        "{report:?}"
    );
    assert_eq!(tls.message_count(), 0);
}

#[tokio::test]
async fn more_than_a_hundred_recipients_use_several_transactions() {
    let (dns, sink) = start().await;
    simple_domain(&dns, "many.com");
    let rcpts: Vec<String> = (0..150).map(|i| format!("user{i}@many.com")).collect();
    let refs: Vec<&str> = rcpts.iter().map(String::as_str).collect();
    sink.set_reply("user7@many.com", SinkReply::reply(550, "5.1.1 unknown"));
    let t = transport(&dns, &sink);
    let report = t.send("many.com", &envelope(&refs), MESSAGE).await;
    assert_eq!(report.outcomes.len(), 150);
    let delivered = report
        .outcomes
        .iter()
        .filter(|o| matches!(o.outcome, Outcome::Delivered { .. }))
        .count();
    assert_eq!(delivered, 149);
    assert!(matches!(outcome(&report, "user7@many.com"), Outcome::Bounced { .. }));
    let msgs = sink.wait_for_messages(2, WAIT).await.unwrap();
    assert_eq!(msgs.iter().map(|m| m.rcpt_to.len()).collect::<Vec<_>>(), [99, 50]);
    assert_eq!(sink.connection_count(), 1);
}

#[tokio::test]
async fn envelope_variants() {
    let (dns, sink) = start().await;
    simple_domain(&dns, "env.com");
    let t = transport(&dns, &sink);

    // Null sender (a bounce).
    let env = Envelope {
        mail_from: String::new(),
        ..envelope(&["a@env.com"])
    };
    assert_delivered(&t.send("env.com", &env, MESSAGE).await);
    assert_eq!(sink.wait_for_messages(1, WAIT).await.unwrap()[0].mail_from, "");

    // UTF-8 local part: SMTPUTF8 is advertised by the sink and used.
    let env = Envelope {
        smtputf8: true,
        ..envelope(&["用户@env.com"])
    };
    let utf8_body = "Subject: 你好\r\n\r\n你好\r\n".as_bytes();
    assert_delivered(&t.send("env.com", &env, utf8_body).await);
    let got = sink.wait_for_messages(2, WAIT).await.unwrap();
    assert_eq!(got[1].rcpt_to, ["用户@env.com"]);
    assert_eq!(got[1].data, utf8_body);

    // An address that would break the command line is bounced locally; the others go.
    let report = t
        .send(
            "env.com",
            &envelope(&["ok@env.com", "evil@env.com>\r\nRCPT TO:<x@env.com"]),
            MESSAGE,
        )
        .await;
    assert!(matches!(outcome(&report, "ok@env.com"), Outcome::Delivered { .. }));
    assert!(matches!(&report.outcomes[1].outcome, Outcome::Bounced { reply } if reply.starts_with("5.1.3 ")));
    assert_eq!(
        sink.wait_for_messages(3, WAIT).await.unwrap()[2].rcpt_to,
        ["ok@env.com"]
    );

    // Empty recipient list: nothing to do, nothing dialled.
    let before = sink.connection_count();
    let report = t.send("env.com", &envelope(&[]), MESSAGE).await;
    assert!(report.outcomes.is_empty() && report.mx.is_none());
    assert_eq!(sink.connection_count(), before);
}

#[tokio::test]
async fn a_server_that_drops_the_connection_defers_everyone_pending() {
    let (dns, sink) = start().await;
    simple_domain(&dns, "drop.com");
    sink.set_reply("crash@drop.com", SinkReply::Disconnect);
    sink.set_reply("gone@drop.com", SinkReply::reply(550, "5.1.1 unknown"));
    let t = transport(&dns, &sink);
    let report = t
        .send(
            "drop.com",
            &envelope(&["gone@drop.com", "a@drop.com", "crash@drop.com"]),
            MESSAGE,
        )
        .await;
    assert!(
        matches!(outcome(&report, "a@drop.com"), Outcome::Deferred { .. }),
        "{report:?}"
    );
    assert!(
        matches!(outcome(&report, "crash@drop.com"), Outcome::Deferred { .. }),
        "{report:?}"
    );
    assert_eq!(sink.message_count(), 0);
    assert_eq!(t.idle_connections(), 0);
}

#[tokio::test]
async fn concurrent_sends_share_the_transport() {
    let (dns, sink) = start().await;
    simple_domain(&dns, "busy.com");
    let t = transport(&dns, &sink);
    send_concurrently(&t, "busy.com", 20, MESSAGE).await;
    assert_eq!(sink.wait_for_messages(20, WAIT).await.unwrap().len(), 20);
    assert!(t.idle_connections() <= TransportConfig::default().max_idle_per_host);
}

/// A pool of two source addresses: connections alternate between them (the sink sees both peers).
#[tokio::test]
async fn a_source_pool_spreads_connections_over_its_members() {
    let (dns, sink) = start().await;
    simple_domain(&dns, "dest.com");
    let sources: Vec<IpAddr> = vec![Ipv4Addr::new(127, 0, 0, 2).into(), Ipv4Addr::new(127, 0, 0, 3).into()];
    let t = SmtpTransport::new(
        TransportConfig {
            source_ips: sources.clone(),
            max_idle_per_host: 0,
            ..config(sink.port())
        },
        resolver(&dns),
    );
    for i in 0..6 {
        let rcpt = format!("r{i}@dest.com");
        let report = t.send("dest.com", &envelope(&[&rcpt]), MESSAGE).await;
        assert_delivered(&report);
    }
    let peers: std::collections::BTreeSet<IpAddr> = sink.messages().iter().map(|m| m.peer.ip()).collect();
    assert_eq!(peers, sources.into_iter().collect(), "both members were used");
}

/// A member that cannot bind (192.0.2.1 is not a local address) is skipped: everything goes out through the other.
#[tokio::test]
async fn a_source_that_cannot_bind_is_skipped() {
    let (dns, sink) = start().await;
    simple_domain(&dns, "dest.com");
    let good: IpAddr = Ipv4Addr::new(127, 0, 0, 2).into();
    let t = SmtpTransport::new(
        TransportConfig {
            source_ips: vec![Ipv4Addr::new(192, 0, 2, 1).into(), good],
            max_idle_per_host: 0,
            ..config(sink.port())
        },
        resolver(&dns),
    );
    for i in 0..4 {
        let rcpt = format!("r{i}@dest.com");
        let report = t.send("dest.com", &envelope(&[&rcpt]), MESSAGE).await;
        assert_delivered(&report);
    }
    let msgs = sink.messages();
    assert_eq!(msgs.len(), 4);
    assert!(msgs.iter().all(|m| m.peer.ip() == good), "all through 127.0.0.2");
}
