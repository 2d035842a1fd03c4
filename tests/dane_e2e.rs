//! DANE end to end through the real `mailpush serve` (`dane = true`, the test DNS authority's key as the trust
//! anchor): a certificate no TLSA record matches defers the mail with a "DANE: …" status until the retry deadline,
//! then it is a soft bounce that does not blacklist the address; with a matching record the mail goes out over
//! verified TLS.

use mailpush_delivery::{TlsaRecord, USAGE_DANE_EE};
use mailpush_suite::*;
use mailpush_testkit::{DnsAuthority, RecordType, SinkCertificate, SinkConfig, SinkMx};
use std::net::Ipv4Addr;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dane_mismatch_defers_then_soft_bounces_and_a_matching_record_delivers() {
    let dns = DnsAuthority::start().await.expect("dns");
    let anchor = dns.enable_dnssec().expect("dnssec");
    let sink = SinkMx::start(SinkConfig {
        starttls: true,
        hostname: "mx.example.org".into(),
        ..SinkConfig::default()
    })
    .await
    .expect("sink");
    dns.add_mx("example.org", 10, "mx.example.org");
    dns.add_a("mx.example.org", Ipv4Addr::LOCALHOST);
    let tlsa_name = format!("_{}._tcp.mx.example.org", sink.port());
    let publish = |record: &TlsaRecord| {
        dns.remove(&tlsa_name, RecordType::TLSA);
        dns.add_tlsa(&tlsa_name, record.usage, record.selector, record.matching, &record.data);
    };
    let other = SinkCertificate::issued(&["mx.example.org"], false).expect("cert");
    publish(&TlsaRecord::for_certificate(USAGE_DANE_EE, 1, 1, &other.chain[0]).expect("tlsa"));

    let dir = temp_dir();
    let anchor_file = dir.path().join("trust-anchor.keys");
    std::fs::write(&anchor_file, format!("{anchor}\n")).expect("anchor file");
    let env = base_env(
        dir.path(),
        &[
            ("MAILPUSH_DNS_SERVERS", dns.addr().to_string()),
            ("MAILPUSH_DELIVERY_PORT", sink.port().to_string()),
            ("MAILPUSH_RETRY_SCHEDULE_SECS", "1".to_string()),
            ("MAILPUSH_MAX_DELIVERY_SECONDS", "3".to_string()),
            ("MAILPUSH_DANE", "true".to_string()),
            ("MAILPUSH_DNSSEC_TRUST_ANCHOR_FILE", anchor_file.display().to_string()),
        ],
    );
    let creds = create_account(&env, "shop").await;
    let server = ServerProcess::start("mailpush", &["serve"], &env).await;
    let client = ApiClient::new(&server.api_addr, &creds);
    verified_sender(&client, &dns, "noreply@shop.example.com").await;

    let id = client
        .send_simple("noreply@shop.example.com", "someone@example.org", "Hi")
        .await;
    let row = client.wait_deliver_status(&id, 3, Duration::from_secs(40)).await;
    let msg = row["DeliverMessage"].as_str().unwrap_or("");
    assert!(
        msg.contains("gave up") && msg.contains("DANE: no TLSA record matches the certificate of mx.example.org"),
        "{row}"
    );
    assert_eq!(sink.message_count(), 0, "nothing went out in plain text");

    let events = outcomes::message_events(dir.path(), "shop", &id).await;
    outcomes::assert_deferred_then_soft_bounce(&events);

    // The receiver fixes its record: the address was not blacklisted, and the mail goes out over verified TLS.
    publish(&TlsaRecord::for_certificate(USAGE_DANE_EE, 1, 1, &sink.certificate_chain_der()[0]).expect("tlsa"));
    let next = client
        .send_simple("noreply@shop.example.com", "someone@example.org", "Hi")
        .await;
    client.wait_deliver_status(&next, 1, Duration::from_secs(30)).await;
    let received = sink.messages();
    assert_eq!(received.len(), 1);
    assert!(received[0].tls);
    server.terminate().await;
}
