//! Queries the in-process DNS authority with the real hickory-resolver over UDP and TCP.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use hickory_resolver::config::{NameServerConfig, ResolveHosts, ResolverConfig};
use hickory_resolver::net::NetError;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RData;
use hickory_resolver::{Resolver, TokioResolver};
use mailpush_testkit::{DnsAuthority, RecordType};

#[derive(Clone, Copy)]
enum Transport {
    Udp,
    Tcp,
}

/// The recommended way to point hickory 0.26 at the authority: one name server whose
/// connection(s) carry the authority's port, the response cache disabled, and /etc/hosts
/// ignored, so every lookup reaches the server and sees the records as they are now.
fn resolver(addr: SocketAddr, transport: Transport) -> TokioResolver {
    let mut server = match transport {
        Transport::Udp => NameServerConfig::udp(addr.ip()),
        Transport::Tcp => NameServerConfig::tcp(addr.ip()),
    };
    for connection in &mut server.connections {
        connection.port = addr.port();
    }
    let config = ResolverConfig::from_name_servers(vec![server]);
    let mut builder = Resolver::builder_with_config(config, TokioRuntimeProvider::default());
    let options = builder.options_mut();
    options.cache_size = 0;
    options.use_hosts_file = ResolveHosts::Never;
    options.attempts = 1;
    builder.build().expect("resolver")
}

fn mx_of(lookup: &hickory_resolver::lookup::Lookup) -> Vec<(u16, String)> {
    let mut mx: Vec<(u16, String)> = lookup
        .answers()
        .iter()
        .filter_map(|r| match &r.data {
            RData::MX(mx) => Some((mx.preference, mx.exchange.to_ascii())),
            _ => None,
        })
        .collect();
    mx.sort();
    mx
}

fn txt_strings(lookup: &hickory_resolver::lookup::Lookup) -> Vec<Vec<Vec<u8>>> {
    lookup
        .answers()
        .iter()
        .filter_map(|r| match &r.data {
            RData::TXT(txt) => Some(txt.txt_data.iter().map(|s| s.to_vec()).collect()),
            _ => None,
        })
        .collect()
}

fn assert_nxdomain(result: Result<hickory_resolver::lookup::Lookup, NetError>) {
    match result {
        Err(e) => assert!(e.is_nx_domain(), "expected NXDOMAIN, got {e:?}"),
        Ok(lookup) => panic!("expected NXDOMAIN, got {:?}", lookup.answers()),
    }
}

fn assert_noerror_empty(result: Result<hickory_resolver::lookup::Lookup, NetError>) {
    match result {
        Err(e) => assert!(
            e.is_no_records_found() && !e.is_nx_domain(),
            "expected NOERROR with no records, got {e:?}"
        ),
        Ok(lookup) => panic!("expected no records, got {:?}", lookup.answers()),
    }
}

async fn exercise(transport: Transport) {
    let dns = DnsAuthority::start().await.unwrap();
    let resolver = resolver(dns.addr(), transport);

    dns.add_mx("Example.TEST", 20, "mx2.example.test");
    dns.add_mx("example.test.", 10, "mx1.example.test.");
    dns.add_a("mx1.example.test", Ipv4Addr::new(127, 0, 0, 2));
    dns.add_aaaa("mx1.example.test", Ipv6Addr::LOCALHOST);

    let mx = resolver.mx_lookup("example.test.").await.unwrap();
    assert_eq!(
        mx_of(&mx),
        vec![
            (10, "mx1.example.test.".to_owned()),
            (20, "mx2.example.test.".to_owned())
        ]
    );
    assert!(mx.answers().iter().all(|r| r.ttl == DnsAuthority::TTL));

    // Case-insensitive, with or without the trailing dot.
    let a = resolver.ipv4_lookup("MX1.example.test").await.unwrap();
    let ips: Vec<_> = a
        .answers()
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(a.0),
            _ => None,
        })
        .collect();
    assert_eq!(ips, vec![Ipv4Addr::new(127, 0, 0, 2)]);
    let ips = resolver.lookup_ip("mx1.example.test.").await.unwrap();
    assert!(ips.iter().any(|ip| ip == Ipv4Addr::new(127, 0, 0, 2)));

    // A 600-byte TXT (like a DKIM RSA-2048 key plus tags) arrives as 255 + 255 + 90.
    let long = "v=DKIM1; k=rsa; p=".to_owned() + &"A".repeat(582);
    dns.add_txt("sel._domainkey.example.test", &long);
    let txt = resolver.txt_lookup("sel._domainkey.example.test.").await.unwrap();
    let strings = txt_strings(&txt);
    assert_eq!(strings.len(), 1);
    let lens: Vec<usize> = strings[0].iter().map(Vec::len).collect();
    assert_eq!(lens, vec![255, 255, 90]);
    assert_eq!(strings[0].concat(), long.as_bytes());

    // Explicit split.
    dns.add_txt_strings(
        "example.test",
        vec!["v=spf1 ip4:127.0.0.2 ".to_owned(), "-all".to_owned()],
    );
    let txt = resolver.txt_lookup("example.test.").await.unwrap();
    assert_eq!(
        txt_strings(&txt),
        vec![vec![b"v=spf1 ip4:127.0.0.2 ".to_vec(), b"-all".to_vec()]]
    );

    // NXDOMAIN for an unknown name, NOERROR-empty for a known name without that type and for
    // an empty non-terminal.
    assert_nxdomain(resolver.mx_lookup("nowhere.test.").await);
    assert_noerror_empty(resolver.txt_lookup("mx1.example.test.").await);
    assert_noerror_empty(resolver.txt_lookup("_domainkey.example.test.").await);

    // Runtime changes are seen by the very next query.
    dns.remove("example.test", RecordType::MX);
    assert_noerror_empty(resolver.mx_lookup("example.test.").await);
    // example.test has names below it, so emptying it leaves an empty non-terminal...
    dns.remove_all("example.test");
    assert_noerror_empty(resolver.txt_lookup("example.test.").await);
    // ...while a leaf without records is gone entirely.
    dns.remove_all("mx1.example.test");
    assert_nxdomain(resolver.ipv4_lookup("mx1.example.test.").await);
    dns.add_mx("example.test", 5, "mx9.example.test");
    let mx = resolver.mx_lookup("example.test.").await.unwrap();
    assert_eq!(mx_of(&mx), vec![(5, "mx9.example.test.".to_owned())]);

    // RFC 7505 null MX.
    dns.set_null_mx("example.test");
    let mx = resolver.mx_lookup("example.test.").await.unwrap();
    assert_eq!(mx_of(&mx), vec![(0, ".".to_owned())]);

    // SERVFAIL on demand, and back.
    dns.set_servfail("example.test", true);
    let err = resolver.mx_lookup("example.test.").await.unwrap_err();
    assert!(
        !err.is_no_records_found(),
        "SERVFAIL must not look like NXDOMAIN: {err:?}"
    );
    dns.set_servfail("example.test", false);
    assert!(resolver.mx_lookup("example.test.").await.is_ok());
}

#[tokio::test]
async fn resolver_over_udp() {
    exercise(Transport::Udp).await;
}

#[tokio::test]
async fn resolver_over_tcp() {
    exercise(Transport::Tcp).await;
}

#[tokio::test]
async fn cache_disabled_means_every_lookup_reaches_the_server() {
    let dns = DnsAuthority::start().await.unwrap();
    let resolver = resolver(dns.addr(), Transport::Udp);
    dns.add_a("host.example.test", Ipv4Addr::new(127, 0, 0, 3));
    for _ in 0..3 {
        resolver.ipv4_lookup("host.example.test.").await.unwrap();
    }
    let seen = dns
        .queries()
        .into_iter()
        .filter(|(name, ty)| name == "host.example.test" && *ty == RecordType::A)
        .count();
    assert_eq!(seen, 3);
}

#[tokio::test]
async fn default_cache_needs_clear_cache_after_a_change() {
    // With hickory's default cache a positive answer is kept for its TTL (1 s here); tests that
    // keep the cache must call clear_cache() after changing records.
    let dns = DnsAuthority::start().await.unwrap();
    let mut server = NameServerConfig::udp(dns.addr().ip());
    server.connections[0].port = dns.addr().port();
    let mut builder = Resolver::builder_with_config(
        ResolverConfig::from_name_servers(vec![server]),
        TokioRuntimeProvider::default(),
    );
    builder.options_mut().use_hosts_file = ResolveHosts::Never;
    let resolver = builder.build().unwrap();

    dns.add_a("host.example.test", Ipv4Addr::new(127, 0, 0, 3));
    resolver.ipv4_lookup("host.example.test.").await.unwrap();
    dns.remove_all("host.example.test");
    resolver.clear_cache();
    assert_nxdomain(resolver.ipv4_lookup("host.example.test.").await);
    // Negative answers carry no SOA, so they are not cached at all.
    dns.add_a("host.example.test", Ipv4Addr::new(127, 0, 0, 4));
    assert!(resolver.ipv4_lookup("host.example.test.").await.is_ok());
}

#[tokio::test]
async fn cname_is_followed_inside_the_authority() {
    let dns = DnsAuthority::start().await.unwrap();
    let resolver = resolver(dns.addr(), Transport::Udp);
    dns.add_cname("alias.example.test", "real.example.test");
    dns.add_a("real.example.test", Ipv4Addr::new(127, 0, 0, 5));
    let lookup = resolver.ipv4_lookup("alias.example.test.").await.unwrap();
    assert!(
        lookup
            .answers()
            .iter()
            .any(|r| r.data == RData::A(Ipv4Addr::new(127, 0, 0, 5).into()))
    );
}

#[tokio::test]
async fn large_answers_fall_back_to_tcp() {
    // 40 TXT records of 255 bytes do not fit a UDP answer: hickory sees TC and retries on TCP,
    // which works because the authority listens on both at the same port.
    let dns = DnsAuthority::start().await.unwrap();
    let mut server = NameServerConfig::udp_and_tcp(dns.addr().ip());
    for connection in &mut server.connections {
        connection.port = dns.addr().port();
    }
    let mut builder = Resolver::builder_with_config(
        ResolverConfig::from_name_servers(vec![server]),
        TokioRuntimeProvider::default(),
    );
    builder.options_mut().cache_size = 0;
    let resolver = builder.build().unwrap();
    for i in 0..40 {
        dns.add_txt("big.example.test", &format!("{i:03}{}", "x".repeat(252)));
    }
    let txt = resolver.txt_lookup("big.example.test.").await.unwrap();
    assert_eq!(txt.answers().len(), 40);
    // One truncated UDP answer, then the TCP retry.
    assert!(dns.query_count() >= 2, "queries: {:?}", dns.queries());
}
