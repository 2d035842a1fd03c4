//! Verification against a real DNS server on loopback (the testkit authority): records added one by one,
//! split TXT strings, a merged SPF record, two SPF records, a removed record.

use mailpush_identity::records::{self, PublishedKey, RecordConfig};
use mailpush_identity::{DkimOption, DnsChecker, keys};
use mailpush_testkit::{DnsAuthority, RecordType};
use std::time::Duration;

/// A DNS authority on loopback, a checker asking it, the records' configuration, and keys generated for `option`
/// (selector stem `stem`) with their published form.
async fn setup(
    option: DkimOption,
    stem: &str,
) -> (
    DnsAuthority,
    DnsChecker,
    RecordConfig,
    Vec<keys::DkimKeyPair>,
    Vec<PublishedKey>,
) {
    let dns = DnsAuthority::start().await.expect("dns");
    let checker = DnsChecker::new(&[dns.addr()], Duration::from_secs(2)).expect("checker");
    let cfg = RecordConfig {
        spf_include: "_spf.mp.test".into(),
        bounce_mx_host: "bounce.mp.test".into(),
    };
    let pairs = keys::generate_for(option, "mp", stem).expect("keys");
    let published: Vec<PublishedKey> = pairs
        .iter()
        .map(|k| PublishedKey {
            algorithm: k.algorithm,
            selector: k.selector.clone(),
            public_key: k.public_key.clone(),
        })
        .collect();
    (dns, checker, cfg, pairs, published)
}

#[tokio::test]
async fn records_pass_as_they_are_published_and_fail_when_removed() {
    let domain = "news.example.com";
    let (dns, checker, cfg, pairs, published) = setup(DkimOption::Rsa2048Ed25519, "t1").await;
    // The scheme of domains verified before return-path domains: SPF and MX at the apex, DMARC advisory.
    let specs = records::expected_records(domain, domain, &published, &cfg);
    assert_eq!(specs.len(), 6);

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
    let c = check().await;
    assert!(c[..5].iter().all(|r| r.pass), "{c:?}");
    assert!(!c[5].pass, "no rua=: the optional reports record is pending");
    dns.remove(&format!("_dmarc.{domain}"), RecordType::TXT);
    dns.add_txt(
        &format!("_dmarc.{domain}"),
        "v=DMARC1; p=quarantine; rua=mailto:dmarc@bounce.mp.test",
    );
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

/// A domain whose own MX points at the company's mail server: SPF and MX go to its return-path domain, and
/// it verifies only once a DMARC policy exists, its own or its organisational domain's.
#[tokio::test]
async fn return_path_domains_leave_the_apex_mx_alone_and_dmarc_is_required() {
    let domain = "mail.corp.example.com";
    let mail_from = records::default_mail_from(domain);
    let (dns, checker, cfg, pairs, published) = setup(DkimOption::Ed25519, "t2").await;
    let specs = records::expected_records(domain, &mail_from, &published, &cfg);
    dns.add_mx(domain, 10, "mx.corp.example.com.");
    dns.add_txt(domain, "v=spf1 mx -all");
    dns.add_txt(&specs[0].name, &pairs[0].record_value());
    dns.add_txt(&mail_from, "v=spf1 include:_spf.mp.test ~all");
    dns.add_mx(&mail_from, 10, "bounce.mp.test.");
    let check = || records::check_records(&checker, &specs, &cfg);
    let c = check().await;
    assert!(c[..3].iter().all(|r| r.pass), "{c:?}");
    assert!(!records::all_required_pass(&c), "no DMARC record anywhere");
    let reason = records::failure_reason(&c).expect("a reason");
    assert!(
        reason.contains("DMARC") && reason.contains("_dmarc.mail.corp.example.com"),
        "{reason}"
    );

    // The organisational domain's policy covers the sub-domain.
    dns.add_txt("_dmarc.example.com", "v=DMARC1; p=reject; rua=mailto:d@example.com");
    let c = check().await;
    assert!(records::all_required_pass(&c), "{c:?}");
    assert!(c[3].current.contains("inherited from _dmarc.example.com"), "{:?}", c[3]);

    // A policy of its own wins; one without p= does not pass, and the inherited one does not rescue it
    // (RFC 7489 §6.6.3 falls back only when the domain has no DMARC record).
    dns.add_txt(&format!("_dmarc.{domain}"), "v=DMARC1; rua=mailto:d@example.com");
    let c = check().await;
    assert!(!c[3].pass, "{:?}", c[3]);
}
