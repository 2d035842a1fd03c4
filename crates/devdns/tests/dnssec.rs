//! The signed authority seen through hickory's validating resolver: secure, insecure and bogus answers.

use std::net::Ipv4Addr;
use std::sync::Arc;

use hickory_resolver::config::{NameServerConfig, ResolveHosts, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::dnssec::{Proof, TrustAnchors};
use hickory_resolver::proto::rr::{Name, RecordType};
use hickory_resolver::{Resolver, TokioResolver};
use mailpush_devdns::DnsAuthority;

fn validating(dns: &DnsAuthority, anchor: &str) -> TokioResolver {
    let mut ns = NameServerConfig::udp_and_tcp(dns.addr().ip());
    for c in &mut ns.connections {
        c.port = dns.addr().port();
    }
    let anchors: TrustAnchors = anchor.parse().expect("trust anchor");
    let mut builder = Resolver::builder_with_config(
        ResolverConfig::from_name_servers(vec![ns]),
        TokioRuntimeProvider::default(),
    )
    .with_trust_anchor(Arc::new(anchors));
    builder.options_mut().cache_size = 0;
    builder.options_mut().use_hosts_file = ResolveHosts::Never;
    builder.build().expect("resolver")
}

fn name(s: &str) -> Name {
    Name::from_ascii(s).expect("name")
}

/// The proofs of the records of `record_type` in a lookup's answers.
async fn proofs(r: &TokioResolver, owner: &str, record_type: RecordType) -> Result<Vec<Proof>, NetError> {
    let lookup = r.lookup(name(owner), record_type).await?;
    Ok(lookup
        .answers()
        .iter()
        .filter(|a| a.record_type() == record_type)
        .map(|a| a.proof)
        .collect())
}

#[tokio::test]
async fn signed_answers_are_secure_unsigned_zones_insecure_and_broken_signatures_bogus() {
    let dns = DnsAuthority::start().await.expect("dns");
    let anchor = dns.enable_dnssec().expect("dnssec");
    assert_eq!(dns.trust_anchor().as_deref(), Some(anchor.as_str()));
    dns.add_mx("signed.test", 10, "mx.signed.test");
    dns.add_a("mx.signed.test", Ipv4Addr::LOCALHOST);
    dns.add_tlsa("_25._tcp.mx.signed.test", 3, 1, 1, &[7; 32]);
    dns.add_unsigned_zone("plain.test");
    dns.add_mx("plain.test", 10, "mx.plain.test");
    dns.add_a("mx.plain.test", Ipv4Addr::LOCALHOST);
    dns.add_mx("forged.test", 10, "mx.signed.test");
    dns.set_bogus_signatures("forged.test", true);
    let r = validating(&dns, &anchor);

    assert_eq!(
        proofs(&r, "signed.test.", RecordType::MX).await.expect("mx"),
        [Proof::Secure]
    );
    assert_eq!(
        proofs(&r, "mx.signed.test.", RecordType::A).await.expect("a"),
        [Proof::Secure]
    );
    assert_eq!(
        proofs(&r, "_25._tcp.mx.signed.test.", RecordType::TLSA)
            .await
            .expect("tlsa"),
        [Proof::Secure]
    );
    assert_eq!(
        proofs(&r, "plain.test.", RecordType::MX).await.expect("mx"),
        [Proof::Insecure]
    );
    assert_eq!(
        proofs(&r, "mx.plain.test.", RecordType::A).await.expect("a"),
        [Proof::Insecure]
    );

    let forged = proofs(&r, "forged.test.", RecordType::MX).await.expect_err("bogus");
    assert!(matches!(forged, NetError::Dns(DnsError::DnssecBogus)), "{forged:?}");

    // Signed denial: a missing type and a missing name are "no records", proven.
    let missing = proofs(&r, "mx.signed.test.", RecordType::AAAA)
        .await
        .expect_err("no AAAA");
    assert!(missing.is_no_records_found(), "{missing:?}");
    let missing = proofs(&r, "_25._tcp.nowhere.signed.test.", RecordType::TLSA)
        .await
        .expect_err("none");
    assert!(missing.is_no_records_found(), "{missing:?}");
    // Unsigned denial too, without proof.
    let missing = proofs(&r, "_25._tcp.mx.plain.test.", RecordType::TLSA)
        .await
        .expect_err("none");
    assert!(missing.is_no_records_found(), "{missing:?}");
}

#[tokio::test]
async fn without_the_do_bit_answers_are_as_before() {
    let dns = DnsAuthority::start().await.expect("dns");
    dns.enable_dnssec().expect("dnssec");
    dns.add_a("host.test", Ipv4Addr::LOCALHOST);
    let mut ns = NameServerConfig::udp_and_tcp(dns.addr().ip());
    for c in &mut ns.connections {
        c.port = dns.addr().port();
    }
    let mut builder = Resolver::builder_with_config(
        ResolverConfig::from_name_servers(vec![ns]),
        TokioRuntimeProvider::default(),
    );
    builder.options_mut().cache_size = 0;
    builder.options_mut().use_hosts_file = ResolveHosts::Never;
    let r = builder.build().expect("resolver");

    let lookup = r.lookup(name("host.test."), RecordType::A).await.expect("a");
    assert!(lookup.answers().iter().all(|a| a.record_type() == RecordType::A));
    let missing = r
        .lookup(name("nowhere.test."), RecordType::A)
        .await
        .expect_err("nxdomain");
    assert!(missing.is_nx_domain(), "{missing:?}");
}
