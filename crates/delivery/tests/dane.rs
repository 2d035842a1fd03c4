//! DANE (RFC 7672) against real peers: the testkit DNS authority signs its zone (DNSSEC) and serves TLSA records,
//! the testkit sink presents the certificates they describe (or others), and the transport validates with the
//! authority's key as its trust anchor.

mod common;

use std::net::Ipv4Addr;
use std::time::Duration;

use common::{assert_delivered, config, envelope};
use mailpush_delivery::{
    DnsSettings, MxResolver, Outcome, SendReport, SmtpTransport, TlsaRecord, TrustAnchor, USAGE_DANE_EE, USAGE_DANE_TA,
};
use mailpush_testkit::{DnsAuthority, SinkCertificate, SinkConfig, SinkMx};

const MESSAGE: &[u8] = b"From: a@mailpush-sender.com\r\nTo: b@dane.test\r\nSubject: dane\r\n\r\nhello\r\n";

/// A DNSSEC-signed authority and a transport validating with its key.
async fn signed_dns() -> (DnsAuthority, String) {
    let dns = DnsAuthority::start().await.expect("dns");
    let anchor = dns.enable_dnssec().expect("dnssec");
    (dns, anchor)
}

fn transport(dns: &DnsAuthority, anchor: &str, port: u16) -> SmtpTransport {
    let resolver = MxResolver::new(&DnsSettings {
        servers: vec![dns.addr()],
        timeout: Duration::from_secs(2),
        cache: false,
        dnssec: Some(TrustAnchor::Keys(anchor.to_string())),
    })
    .expect("resolver");
    SmtpTransport::new(config(port), resolver)
}

/// A sink named `mx.dane.test`, with STARTTLS (its generated certificate, or `certificate`) or without.
async fn sink(starttls: bool, certificate: Option<SinkCertificate>) -> SinkMx {
    SinkMx::start(SinkConfig {
        starttls,
        hostname: "mx.dane.test".into(),
        certificate,
        ..SinkConfig::default()
    })
    .await
    .expect("sink")
}

/// `domain`'s MX is `mx_host` at 127.0.0.1.
fn publish_mx(dns: &DnsAuthority, domain: &str, mx_host: &str) {
    dns.add_mx(domain, 10, mx_host);
    dns.add_a(mx_host, Ipv4Addr::LOCALHOST);
}

fn publish_tlsa(dns: &DnsAuthority, mx_host: &str, port: u16, record: &TlsaRecord) {
    dns.add_tlsa(
        &format!("_{port}._tcp.{mx_host}"),
        record.usage,
        record.selector,
        record.matching,
        &record.data,
    );
}

/// DANE-EE SPKI SHA-256 (`3 1 1`) of `cert`.
fn ee(cert: &[u8]) -> TlsaRecord {
    TlsaRecord::for_certificate(USAGE_DANE_EE, 1, 1, cert).expect("tlsa")
}

fn deferred_reply(report: &SendReport) -> String {
    match &report.outcomes[0].outcome {
        Outcome::Deferred { reply } => reply.clone(),
        other => panic!("expected a deferral: {other:?} ({report:#?})"),
    }
}

async fn send(t: &SmtpTransport, domain: &str) -> SendReport {
    t.send(domain, &envelope(&[&format!("rcpt@{domain}")]), MESSAGE).await
}

#[tokio::test]
async fn a_matching_dane_ee_record_delivers_over_verified_tls() {
    let (dns, anchor) = signed_dns().await;
    let sink = sink(true, None).await;
    publish_mx(&dns, "dane.test", "mx.dane.test");
    publish_tlsa(&dns, "mx.dane.test", sink.port(), &ee(&sink.certificate_chain_der()[0]));

    let report = send(&transport(&dns, &anchor, sink.port()), "dane.test").await;
    assert_delivered(&report);
    assert!(report.tls && report.dane, "{report:#?}");
    let received = sink.messages();
    assert_eq!(received.len(), 1);
    assert!(received[0].tls);
}

#[tokio::test]
async fn a_dane_ta_record_of_the_issuing_ca_delivers() {
    let (dns, anchor) = signed_dns().await;
    let sink = sink(true, None).await;
    publish_mx(&dns, "dane.test", "mx.dane.test");
    let ca = sink.ca_certificate_der().expect("ca");
    let ta = TlsaRecord::for_certificate(USAGE_DANE_TA, 0, 1, ca).expect("tlsa");
    publish_tlsa(&dns, "mx.dane.test", sink.port(), &ta);

    let report = send(&transport(&dns, &anchor, sink.port()), "dane.test").await;
    assert_delivered(&report);
    assert!(report.dane, "{report:#?}");
}

#[tokio::test]
async fn a_certificate_matching_no_record_defers_and_never_falls_back_to_plain_text() {
    let (dns, anchor) = signed_dns().await;
    let sink = sink(true, None).await;
    publish_mx(&dns, "dane.test", "mx.dane.test");
    let other = SinkCertificate::issued(&["mx.dane.test"], false).expect("cert");
    publish_tlsa(&dns, "mx.dane.test", sink.port(), &ee(&other.chain[0]));

    let report = send(&transport(&dns, &anchor, sink.port()), "dane.test").await;
    let reply = deferred_reply(&report);
    assert!(
        reply.starts_with("4.7.5 DANE: no TLSA record matches the certificate of mx.dane.test"),
        "{reply}"
    );
    assert_eq!(sink.message_count(), 0);
    // One connection: the failed handshake was not retried in plain text.
    assert_eq!(sink.connection_count(), 1);
}

#[tokio::test]
async fn a_dane_ta_chain_for_another_name_defers() {
    let (dns, anchor) = signed_dns().await;
    let certificate = SinkCertificate::issued(&["elsewhere.test"], false).expect("cert");
    let ta = TlsaRecord::for_certificate(USAGE_DANE_TA, 1, 1, &certificate.chain[1]).expect("tlsa");
    let sink = sink(true, Some(certificate)).await;
    publish_mx(&dns, "dane.test", "mx.dane.test");
    publish_tlsa(&dns, "mx.dane.test", sink.port(), &ta);

    let report = send(&transport(&dns, &anchor, sink.port()), "dane.test").await;
    let reply = deferred_reply(&report);
    assert!(
        reply.contains("DANE: the certificate of mx.dane.test (DANE-TA) does not name it"),
        "{reply}"
    );
    assert_eq!(sink.message_count(), 0);
}

#[tokio::test]
async fn dane_ee_accepts_an_expired_certificate_it_names() {
    // RFC 7672 §3.1.1: with DANE-EE the key is what is authenticated, not the names or dates.
    let (dns, anchor) = signed_dns().await;
    let certificate = SinkCertificate::issued(&["old.example"], true).expect("cert");
    let record = ee(&certificate.chain[0]);
    let sink = sink(true, Some(certificate)).await;
    publish_mx(&dns, "dane.test", "mx.dane.test");
    publish_tlsa(&dns, "mx.dane.test", sink.port(), &record);

    let report = send(&transport(&dns, &anchor, sink.port()), "dane.test").await;
    assert_delivered(&report);
    assert!(report.dane);
}

#[tokio::test]
async fn a_host_publishing_tlsa_records_without_starttls_is_not_sent_to() {
    let (dns, anchor) = signed_dns().await;
    let tls_sink = sink(true, None).await;
    let plain_sink = sink(false, None).await;
    publish_mx(&dns, "dane.test", "mx.dane.test");
    publish_tlsa(
        &dns,
        "mx.dane.test",
        plain_sink.port(),
        &ee(&tls_sink.certificate_chain_der()[0]),
    );

    let report = send(&transport(&dns, &anchor, plain_sink.port()), "dane.test").await;
    let reply = deferred_reply(&report);
    assert!(reply.starts_with("4.7.5 DANE: "), "{reply}");
    assert!(reply.contains("does not offer STARTTLS"), "{reply}");
    assert_eq!(plain_sink.message_count(), 0);
}

#[tokio::test]
async fn a_bogus_tlsa_signature_defers_without_dialling() {
    let (dns, anchor) = signed_dns().await;
    let sink = sink(true, None).await;
    publish_mx(&dns, "dane.test", "mx.dane.test");
    let tlsa_name = format!("_{}._tcp.mx.dane.test", sink.port());
    publish_tlsa(&dns, "mx.dane.test", sink.port(), &ee(&sink.certificate_chain_der()[0]));
    dns.set_bogus_signatures(&tlsa_name, true);

    let report = send(&transport(&dns, &anchor, sink.port()), "dane.test").await;
    let reply = deferred_reply(&report);
    assert!(reply.starts_with("4.7.5 DANE: "), "{reply}");
    assert!(reply.contains("DNSSEC bogus"), "{reply}");
    assert_eq!(sink.connection_count(), 0);
}

#[tokio::test]
async fn a_bogus_mx_answer_defers() {
    let (dns, anchor) = signed_dns().await;
    let sink = sink(true, None).await;
    publish_mx(&dns, "dane.test", "mx.dane.test");
    dns.set_bogus_signatures("dane.test", true);

    let report = send(&transport(&dns, &anchor, sink.port()), "dane.test").await;
    let reply = deferred_reply(&report);
    assert!(reply.contains("DNSSEC validation failed"), "{reply}");
    assert_eq!(sink.connection_count(), 0);
}

#[tokio::test]
async fn an_unsigned_zone_stays_opportunistic() {
    let (dns, anchor) = signed_dns().await;
    dns.add_unsigned_zone("plain.test");
    let tls_sink = sink(true, None).await;
    publish_mx(&dns, "plain.test", "mx.plain.test");
    // A TLSA record nothing matches: without DNSSEC it must not be believed.
    let other = SinkCertificate::issued(&["mx.plain.test"], false).expect("cert");
    publish_tlsa(&dns, "mx.plain.test", tls_sink.port(), &ee(&other.chain[0]));

    let report = send(&transport(&dns, &anchor, tls_sink.port()), "plain.test").await;
    assert_delivered(&report);
    assert!(report.tls && !report.dane, "{report:#?}");

    // Without STARTTLS, plain text as before.
    let plain_sink = sink(false, None).await;
    publish_tlsa(&dns, "mx.plain.test", plain_sink.port(), &ee(&other.chain[0]));
    let report = send(&transport(&dns, &anchor, plain_sink.port()), "plain.test").await;
    assert_delivered(&report);
    assert!(!report.tls);
}

#[tokio::test]
async fn an_insecure_mx_answer_does_not_enable_dane_for_a_signed_host() {
    // RFC 7672 §2.2.1: the MX host name came from an unsigned zone, so its TLSA records do not apply.
    let (dns, anchor) = signed_dns().await;
    dns.add_unsigned_zone("plain.test");
    let sink = sink(true, None).await;
    publish_mx(&dns, "plain.test", "mx.dane.test");
    let other = SinkCertificate::issued(&["mx.dane.test"], false).expect("cert");
    publish_tlsa(&dns, "mx.dane.test", sink.port(), &ee(&other.chain[0]));

    let report = send(&transport(&dns, &anchor, sink.port()), "plain.test").await;
    assert_delivered(&report);
    assert!(!report.dane);
}

#[tokio::test]
async fn a_signed_host_without_tlsa_records_stays_opportunistic() {
    let (dns, anchor) = signed_dns().await;
    let sink = sink(false, None).await;
    publish_mx(&dns, "dane.test", "mx.dane.test");

    let report = send(&transport(&dns, &anchor, sink.port()), "dane.test").await;
    assert_delivered(&report);
    assert!(!report.tls && !report.dane);
}

#[tokio::test]
async fn only_unusable_records_make_tls_mandatory_but_unauthenticated() {
    let (dns, anchor) = signed_dns().await;
    let tls_sink = sink(true, None).await;
    let plain_sink = sink(false, None).await;
    publish_mx(&dns, "dane.test", "mx.dane.test");
    // PKIX-EE (usage 1) is unusable for SMTP (RFC 7672 §3.1.3), whatever it names.
    let pkix = TlsaRecord {
        usage: 1,
        selector: 1,
        matching: 1,
        data: vec![0; 32],
    };
    publish_tlsa(&dns, "mx.dane.test", tls_sink.port(), &pkix);
    publish_tlsa(&dns, "mx.dane.test", plain_sink.port(), &pkix);

    let report = send(&transport(&dns, &anchor, tls_sink.port()), "dane.test").await;
    assert_delivered(&report);
    assert!(report.tls && !report.dane, "{report:#?}");

    let report = send(&transport(&dns, &anchor, plain_sink.port()), "dane.test").await;
    assert!(deferred_reply(&report).contains("does not offer STARTTLS"));
    assert_eq!(plain_sink.message_count(), 0);
}

#[tokio::test]
async fn a_dane_delivery_never_reuses_a_session_not_verified_for_its_mx_host() {
    let (dns, anchor) = signed_dns().await;
    dns.add_unsigned_zone("plain.test");
    let sink = sink(true, None).await;
    // Both MX hosts are the same address and port: one pool key.
    publish_mx(&dns, "plain.test", "mx.plain.test");
    publish_mx(&dns, "dane.test", "mx.dane.test");
    publish_tlsa(&dns, "mx.dane.test", sink.port(), &ee(&sink.certificate_chain_der()[0]));
    let t = transport(&dns, &anchor, sink.port());

    let report = send(&t, "plain.test").await;
    assert_delivered(&report);
    assert!(!report.dane);
    assert_eq!(t.idle_connections(), 1);

    // The idle session was not DANE-verified: a new connection.
    let report = send(&t, "dane.test").await;
    assert_delivered(&report);
    assert!(report.dane);
    assert_eq!(sink.connection_count(), 2);

    // The verified session is reused for the same MX host.
    let report = send(&t, "dane.test").await;
    assert_delivered(&report);
    assert!(report.dane);
    assert_eq!(sink.connection_count(), 2);
    assert_eq!(sink.message_count(), 3);
}
