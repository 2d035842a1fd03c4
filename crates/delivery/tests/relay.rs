//! A relay host (smarthost): every domain's mail goes to one MTA, here the testkit sink on loopback, with AUTH
//! and the relay's TLS policy; the recipient domains' MX records are never looked at.

use std::net::Ipv4Addr;

use mailpush_delivery::{Outcome, Relay, SmtpTransport, TransportConfig};
use mailpush_testkit::{DnsAuthority, SinkConfig, SinkMx};

mod common;
use common::{assert_delivered, config, envelope, resolver};

const MESSAGE: &[u8] = b"From: sender@mailpush-sender.com\r\nTo: rcpt@dest.com\r\nSubject: hi\r\n\r\nhello\r\n";

fn relayed(dns: &DnsAuthority, relay: Relay) -> SmtpTransport {
    SmtpTransport::new(
        TransportConfig {
            relay: Some(relay),
            // Never dialled: the relay's port applies.
            ..config(1)
        },
        resolver(dns),
    )
}

fn relay(host_port: &str, tls: &str, auth: Option<(&str, &str)>) -> Relay {
    Relay::from_settings(host_port, tls, auth.map(|a| a.0), auth.map(|a| a.1)).unwrap()
}

async fn auth_sink(starttls: bool) -> SinkMx {
    SinkMx::start(SinkConfig {
        starttls,
        auth: Some(("relay-user".into(), "relay-pass".into())),
        ..SinkConfig::default()
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn every_domain_goes_to_the_relay_with_auth_inside_starttls() {
    // The DNS knows nothing of the recipient domains: no MX lookup may decide anything.
    let dns = DnsAuthority::start().await.unwrap();
    let sink = auth_sink(true).await;
    let t = relayed(
        &dns,
        relay(&sink.addr().to_string(), "starttls", Some(("relay-user", "relay-pass"))),
    );
    for domain in ["dest.com", "elsewhere.example"] {
        let rcpt = format!("alice@{domain}");
        let report = t.send(domain, &envelope(&[&rcpt]), MESSAGE).await;
        assert_delivered(&report);
        assert!(report.tls, "{report:?}");
    }
    let got = sink.messages();
    assert_eq!(got.len(), 2);
    for m in &got {
        assert_eq!(m.auth_user.as_deref(), Some("relay-user"));
        assert!(m.tls);
        assert_eq!(m.mail_from, "bounce@mailpush-sender.com");
    }
}

#[tokio::test]
async fn a_relay_named_in_dns_and_plain_auth_when_tls_is_none() {
    let dns = DnsAuthority::start().await.unwrap();
    dns.add_a("smarthost.example.net", Ipv4Addr::LOCALHOST);
    let sink = auth_sink(false).await;
    let t = relayed(
        &dns,
        relay(
            &format!("smarthost.example.net:{}", sink.port()),
            "none",
            Some(("relay-user", "relay-pass")),
        ),
    );
    let report = t.send("dest.com", &envelope(&["bob@dest.com"]), MESSAGE).await;
    assert_delivered(&report);
    assert!(!report.tls);
    assert_eq!(
        report.mx.as_deref(),
        Some(format!("smarthost.example.net[127.0.0.1]:{}", sink.port()).as_str())
    );
    assert_eq!(sink.messages()[0].auth_user.as_deref(), Some("relay-user"));
}

#[tokio::test]
async fn wrong_credentials_or_no_tls_for_them_defer_and_send_nothing() {
    let dns = DnsAuthority::start().await.unwrap();
    let sink = auth_sink(false).await;
    let addr = sink.addr().to_string();
    // Wrong password: the relay's 535 defers the mail (the recipient is not at fault).
    let t = relayed(&dns, relay(&addr, "none", Some(("relay-user", "wrong"))));
    let report = t.send("dest.com", &envelope(&["carol@dest.com"]), MESSAGE).await;
    match &report.outcomes[0].outcome {
        Outcome::Deferred { reply } => assert!(reply.starts_with("535"), "{reply}"),
        other => panic!("{other:?}"),
    }
    // `starttls` and a relay without STARTTLS: the password is not sent in plain text.
    let t = relayed(&dns, relay(&addr, "starttls", Some(("relay-user", "relay-pass"))));
    let report = t.send("dest.com", &envelope(&["carol@dest.com"]), MESSAGE).await;
    match &report.outcomes[0].outcome {
        Outcome::Deferred { reply } => assert!(reply.contains("not sent in plain text"), "{reply}"),
        other => panic!("{other:?}"),
    }
    // No credentials at all: the relay refuses MAIL with 530, a 5xx of the relay, not of the recipient.
    let t = relayed(&dns, relay(&addr, "none", None));
    let report = t.send("dest.com", &envelope(&["carol@dest.com"]), MESSAGE).await;
    assert!(report.outcomes[0].outcome.reply().starts_with("530"), "{report:?}");
    assert_eq!(sink.message_count(), 0);
}

#[tokio::test]
async fn an_unknown_relay_name_defers() {
    let dns = DnsAuthority::start().await.unwrap();
    let t = relayed(&dns, relay("nowhere.example.net:25", "none", None));
    let report = t.send("dest.com", &envelope(&["dave@dest.com"]), MESSAGE).await;
    assert!(
        matches!(&report.outcomes[0].outcome, Outcome::Deferred { reply } if reply.starts_with("4.4.3 relay host")),
        "{report:?}"
    );
}
