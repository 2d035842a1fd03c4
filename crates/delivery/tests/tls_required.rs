//! Mail that requires TLS (an account's or sender's "TLS required", or `REQUIRETLS` at submission): it goes only
//! over STARTTLS with a certificate that verifies for the MX host name, never in plain text and never on a pooled
//! session that was not verified; `REQUIRETLS` mail only to a receiver that offers it. The receivers are testkit
//! sinks on loopback whose test CA is trusted through `tls_trust_roots`.

use std::net::Ipv4Addr;

use mailpush_delivery::{Envelope, Outcome, SendReport, SmtpTransport, TlsPolicy, TlsRequirement, TransportConfig};
use mailpush_testkit::{DnsAuthority, SinkConfig, SinkMx};

mod common;
use common::{assert_delivered, config, envelope, resolver};

const MESSAGE: &[u8] = b"From: sender@mailpush-sender.com\r\nTo: rcpt@dest.com\r\nSubject: hi\r\n\r\nhello\r\n";

/// The sink's certificate names its hostname: the MX record points there.
const MX_NAME: &str = "mx.secure.test";

async fn tls_sink(hostname: &str, requiretls: bool) -> SinkMx {
    SinkMx::start(SinkConfig {
        starttls: true,
        hostname: hostname.to_string(),
        requiretls,
        ..SinkConfig::default()
    })
    .await
    .unwrap()
}

/// `domain`'s MX is `mx_name` on loopback.
fn publish(dns: &DnsAuthority, domain: &str, mx_name: &str) {
    dns.add_mx(domain, 10, mx_name);
    dns.add_a(mx_name, Ipv4Addr::LOCALHOST);
}

fn transport(dns: &DnsAuthority, sink: &SinkMx, trusted: &[&SinkMx], tls: TlsPolicy) -> SmtpTransport {
    SmtpTransport::new(
        TransportConfig {
            tls,
            tls_trust_roots: trusted
                .iter()
                .map(|s| s.ca_certificate_der().expect("a STARTTLS sink has a CA").to_vec())
                .collect(),
            ..config(sink.port())
        },
        resolver(dns),
    )
}

/// The DNS authority every case uses: `secure.test`'s MX is [`MX_NAME`] on loopback.
async fn secure_dns() -> DnsAuthority {
    let dns = DnsAuthority::start().await.unwrap();
    publish(&dns, "secure.test", MX_NAME);
    dns
}

/// Sends [`MESSAGE`] to `rcpt` (at `secure.test`) requiring `tls`.
async fn send_requiring(t: &SmtpTransport, rcpt: &str, tls: TlsRequirement) -> SendReport {
    let envelope = Envelope {
        tls,
        ..envelope(&[rcpt])
    };
    t.send("secure.test", &envelope, MESSAGE).await
}

fn deferred_reply(report: &SendReport) -> &str {
    match &report.outcomes[0].outcome {
        Outcome::Deferred { reply } => reply,
        other => panic!("expected a deferral, got {other:?} in {report:#?}"),
    }
}

#[tokio::test]
async fn required_mail_goes_over_verified_tls_even_when_the_transport_would_not_use_tls() {
    let dns = secure_dns().await;
    let sink = tls_sink(MX_NAME, false).await;
    // `outbound_tls = disabled` for everyone else: the message's requirement wins.
    let t = transport(&dns, &sink, &[&sink], TlsPolicy::Disabled);

    let report = send_requiring(&t, "a@secure.test", TlsRequirement::Verified).await;
    assert_delivered(&report);
    assert!(report.tls, "{report:?}");
    let got = sink.messages();
    assert_eq!(got.len(), 1);
    assert!(got[0].tls);
    assert!(
        !got[0].requiretls,
        "REQUIRETLS is only passed on for mail submitted with it"
    );

    // Other mail of the same transport still follows its policy: plain text.
    let report = t.send("secure.test", &envelope(&["b@secure.test"]), MESSAGE).await;
    assert_delivered(&report);
    assert!(!report.tls);
}

#[tokio::test]
async fn required_mail_never_reuses_a_plain_pooled_session_and_reuses_a_verified_one() {
    let dns = secure_dns().await;
    let sink = tls_sink(MX_NAME, false).await;
    let t = transport(&dns, &sink, &[&sink], TlsPolicy::Disabled);

    // A plain session is left idle in the pool…
    assert_delivered(&t.send("secure.test", &envelope(&["a@secure.test"]), MESSAGE).await);
    assert_eq!(t.idle_connections(), 1);
    // …and required mail dials its own, verified one.
    let report = send_requiring(&t, "b@secure.test", TlsRequirement::Verified).await;
    assert_delivered(&report);
    assert!(report.tls);
    assert_eq!(sink.connection_count(), 2);
    // The verified session is reused by the next required mail.
    let report = send_requiring(&t, "c@secure.test", TlsRequirement::Verified).await;
    assert_delivered(&report);
    assert_eq!(sink.connection_count(), 2);
    let got = sink.messages();
    assert_eq!(
        got.iter().map(|m| (m.tls, m.connection_id)).collect::<Vec<_>>(),
        [(false, 1), (true, 2), (true, 2)]
    );
}

#[tokio::test]
async fn required_mail_is_deferred_and_not_sent_without_a_verifiable_certificate() {
    let dns = secure_dns().await;

    // A certificate from a CA nobody trusts.
    let untrusted = tls_sink(MX_NAME, false).await;
    let t = transport(&dns, &untrusted, &[], TlsPolicy::Opportunistic);
    let report = send_requiring(&t, "a@secure.test", TlsRequirement::Verified).await;
    let reply = deferred_reply(&report);
    assert!(reply.starts_with("4.7.5 TLS handshake"), "{reply}");
    assert_eq!(untrusted.message_count(), 0);
    // Opportunistic mail to the same MX still goes (encrypted, unverified).
    let report = t.send("secure.test", &envelope(&["b@secure.test"]), MESSAGE).await;
    assert_delivered(&report);
    assert!(report.tls);

    // A trusted CA, but the certificate names another host than the MX.
    let elsewhere = tls_sink("other-host.example", false).await;
    let t = transport(&dns, &elsewhere, &[&elsewhere], TlsPolicy::Opportunistic);
    let report = send_requiring(&t, "c@secure.test", TlsRequirement::Verified).await;
    let reply = deferred_reply(&report);
    assert!(reply.starts_with("4.7.5 TLS handshake"), "{reply}");
    assert!(reply.to_ascii_lowercase().contains("certificate"), "{reply}");
    assert_eq!(elsewhere.message_count(), 0);

    // No STARTTLS at all: never plain text.
    let plain = SinkMx::start_default().await.unwrap();
    let t = SmtpTransport::new(config(plain.port()), resolver(&dns));
    let report = send_requiring(&t, "d@secure.test", TlsRequirement::Verified).await;
    let reply = deferred_reply(&report);
    assert!(reply.starts_with("4.7.4 TLS is required"), "{reply}");
    assert_eq!(plain.message_count(), 0);
}

#[tokio::test]
async fn requiretls_mail_goes_only_to_a_receiver_offering_requiretls_and_passes_the_parameter_on() {
    let dns = secure_dns().await;

    let supporting = tls_sink(MX_NAME, true).await;
    let t = transport(&dns, &supporting, &[&supporting], TlsPolicy::Opportunistic);
    let report = send_requiring(&t, "a@secure.test", TlsRequirement::RequireTls).await;
    assert_delivered(&report);
    let got = supporting.messages();
    assert!(got[0].tls && got[0].requiretls, "{got:?}");

    // Verified TLS, but no REQUIRETLS offered: returned (RFC 8689 §4.2.1), nothing sent.
    let lacking = tls_sink(MX_NAME, false).await;
    let t = transport(&dns, &lacking, &[&lacking], TlsPolicy::Opportunistic);
    let report = send_requiring(&t, "b@secure.test", TlsRequirement::RequireTls).await;
    match &report.outcomes[0].outcome {
        Outcome::Bounced { reply } => {
            assert!(reply.starts_with("5.7.30 REQUIRETLS support required:"), "{reply}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(lacking.message_count(), 0);
}
