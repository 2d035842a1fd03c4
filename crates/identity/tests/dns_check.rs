//! Verification against a real DNS server on loopback (the testkit authority): records added one by one,
//! split TXT strings, a merged SPF record, two SPF records, a removed record.

use mailpush_identity::records::{self, PublishedKey, RecordConfig};
use mailpush_identity::{DkimOption, DnsChecker, keys};
use mailpush_testkit::{DnsAuthority, RecordType};
use std::time::Duration;

#[tokio::test]
async fn records_pass_as_they_are_published_and_fail_when_removed() {
    let dns = DnsAuthority::start().await.expect("dns");
    let checker = DnsChecker::new(&[dns.addr()], Duration::from_secs(2)).expect("checker");
    let cfg = RecordConfig {
        spf_include: "_spf.mp.test".into(),
        bounce_mx_host: "bounce.mp.test".into(),
    };
    let domain = "news.example.com";
    let pairs = keys::generate_for(DkimOption::Rsa2048Ed25519, "mp", "t1").expect("keys");
    let published: Vec<PublishedKey> = pairs
        .iter()
        .map(|k| PublishedKey {
            algorithm: k.algorithm,
            selector: k.selector.clone(),
            public_key: k.public_key.clone(),
        })
        .collect();
    let specs = records::expected_records(domain, &published, &cfg);
    assert_eq!(specs.len(), 5);

    let check = || records::check_records(&checker, &specs, &cfg);
    let c = check().await;
    assert!(c.iter().all(|r| !r.pass && r.current.is_empty()), "{c:?}");
    assert!(!records::all_required_pass(&c));

    // The RSA key record is longer than 255 bytes: the authority splits it into several strings.
    for (spec, pair) in specs.iter().zip(&pairs) {
        dns.add_txt(&spec.name, &pair.record_value());
    }
    dns.add_txt(domain, "v=spf1 ip4:192.0.2.1 include:_spf.mp.test ~all");
    let c = check().await;
    assert!(c[0].pass && c[1].pass && c[2].pass, "{c:?}");
    assert!(!records::all_required_pass(&c), "MX is still missing");
    dns.add_mx(domain, 10, "bounce.mp.test.");
    let c = check().await;
    assert!(records::all_required_pass(&c), "{c:?}");
    assert!(!c[4].pass, "DMARC not published, but optional");
    dns.add_txt(&format!("_dmarc.{domain}"), "v=DMARC1; p=quarantine");
    assert!(check().await.iter().all(|r| r.pass));

    dns.add_txt(domain, "v=spf1 include:_spf.other.test ~all");
    let c = check().await;
    assert!(!c[2].pass);
    assert!(records::failure_reason(&c).unwrap().contains("2 SPF records"));

    dns.remove(domain, RecordType::TXT);
    dns.add_txt(domain, "v=spf1 include:_spf.mp.test ~all");
    dns.remove(&specs[1].name, RecordType::TXT);
    let c = check().await;
    assert!(!records::all_required_pass(&c));
    assert!(records::failure_reason(&c).unwrap().contains(&specs[1].name));
}
