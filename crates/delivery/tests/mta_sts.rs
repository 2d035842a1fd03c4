//! MTA-STS (RFC 8461) through the transport: `_mta-sts` TXT records from the testkit DNS, the policy file from a
//! testkit HTTPS policy host on loopback, the MX a testkit sink with STARTTLS and a chosen certificate. The policy
//! fetcher here is a small HTTPS GET over tokio-rustls trusting the policy host's test CA (mailpush's own goes
//! through the callbacks' SSRF-guarded client, tested end to end in `tests/mta_sts_e2e.rs`).

use std::{future::Future, net::Ipv4Addr, pin::Pin, sync::Arc, time::Duration};

use mailpush_delivery::{
    MtaSts, Outcome, PolicyFetcher, SendReport, SmtpTransport, TlsPolicy, TlsPolicyType, TlsReportSink,
    TlsSessionOutcome, TransportConfig,
};
use mailpush_testkit::{DnsAuthority, PolicyAnswer, PolicyServer, SinkConfig, SinkMx};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

mod common;
use common::{assert_delivered, config, envelope, resolver};

const MESSAGE: &[u8] = b"From: sender@mailpush-sender.com\r\nTo: rcpt@sts.test\r\nSubject: hi\r\n\r\nhello\r\n";
const DOMAIN: &str = "sts.test";
const MX: &str = "mx.sts.test";

/// GETs `https://mta-sts.<domain>:<port>/…` from the policy server on loopback, trusting its CA.
struct LoopbackFetcher {
    port: u16,
    ca: Vec<u8>,
}

impl PolicyFetcher for LoopbackFetcher {
    fn fetch(&self, url: String) -> Pin<Box<dyn Future<Output = Result<String, String>> + Send + 'static>> {
        let (port, ca) = (self.port, self.ca.clone());
        Box::pin(async move {
            let rest = url.strip_prefix("https://").ok_or("not https")?;
            let (authority, path) = rest.split_once('/').ok_or("no path")?;
            let host = authority.split(':').next().unwrap_or_default().to_string();
            let mut roots = rustls::RootCertStore::empty();
            roots
                .add(rustls::pki_types::CertificateDer::from(ca))
                .map_err(|e| e.to_string())?;
            let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
            let config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(|e| e.to_string())?
                .with_root_certificates(roots)
                .with_no_client_auth();
            let tcp = tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port))
                .await
                .map_err(|e| e.to_string())?;
            let name = rustls::pki_types::ServerName::try_from(host.clone()).map_err(|e| e.to_string())?;
            let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config))
                .connect(name, tcp)
                .await
                .map_err(|e| e.to_string())?;
            tls.write_all(format!("GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes())
                .await
                .map_err(|e| e.to_string())?;
            let mut raw = Vec::new();
            let _ = tls.read_to_end(&mut raw).await;
            let text = String::from_utf8_lossy(&raw).into_owned();
            let (head, body) = text.split_once("\r\n\r\n").ok_or("no HTTP answer")?;
            if !head.starts_with("HTTP/1.1 200") {
                return Err(format!("answered {}", head.lines().next().unwrap_or_default()));
            }
            Ok(body.to_string())
        })
    }
}

const ENFORCE: &str = "version: STSv1\r\nmode: enforce\r\nmx: mx.sts.test\r\nmax_age: 86400\r\n";

struct World {
    dns: DnsAuthority,
    policy_host: PolicyServer,
}

async fn world(policy: &str) -> World {
    let dns = DnsAuthority::start().await.unwrap();
    dns.add_mx(DOMAIN, 10, MX);
    dns.add_a(MX, Ipv4Addr::LOCALHOST);
    dns.add_txt(&format!("_mta-sts.{DOMAIN}"), "v=STSv1; id=20261206T000000;");
    let policy_host = PolicyServer::start(&format!("mta-sts.{DOMAIN}"), PolicyAnswer::policy(policy))
        .await
        .unwrap();
    World { dns, policy_host }
}

/// A transport towards `sink` (opportunistic TLS) applying MTA-STS, trusting `trusted`'s CA for verified TLS.
fn transport(w: &World, sink: &SinkMx, trusted: Option<&SinkMx>) -> SmtpTransport {
    let mta_sts = MtaSts::new(
        resolver(&w.dns),
        Arc::new(LoopbackFetcher {
            port: w.policy_host.port(),
            ca: w.policy_host.ca_certificate_der().to_vec(),
        }),
        w.policy_host.port(),
        Duration::from_secs(3600),
    );
    SmtpTransport::with_policies(
        TransportConfig {
            tls: TlsPolicy::Opportunistic,
            tls_trust_roots: trusted
                .map(|s| s.ca_certificate_der().expect("STARTTLS sink").to_vec())
                .into_iter()
                .collect(),
            ..config(sink.port())
        },
        resolver(&w.dns),
        None,
        Some(Arc::new(mta_sts)),
    )
}

async fn tls_sink(hostname: &str) -> SinkMx {
    SinkMx::start(SinkConfig {
        starttls: true,
        hostname: hostname.to_string(),
        ..SinkConfig::default()
    })
    .await
    .unwrap()
}

fn deferred(report: &SendReport) -> &str {
    match &report.outcomes[0].outcome {
        Outcome::Deferred { reply } => reply,
        other => panic!("expected a deferral, got {other:?}"),
    }
}

#[tokio::test]
async fn enforce_delivers_over_verified_tls_to_a_named_mx() {
    let w = world(ENFORCE).await;
    let sink = tls_sink(MX).await;
    let t = transport(&w, &sink, Some(&sink));
    let report = t.send(DOMAIN, &envelope(&["a@sts.test"]), MESSAGE).await;
    assert_delivered(&report);
    assert!(report.tls);
    assert!(sink.messages()[0].tls);
    // The policy was fetched once from its well-known place, then cached.
    let report = t.send(DOMAIN, &envelope(&["b@sts.test"]), MESSAGE).await;
    assert_delivered(&report);
    assert_eq!(
        w.policy_host.requests(),
        [(format!("mta-sts.{DOMAIN}"), "/.well-known/mta-sts.txt".to_string())]
    );
}

#[tokio::test]
async fn enforce_defers_with_a_clear_reason_on_each_failure() {
    // A certificate for another name.
    let w = world(ENFORCE).await;
    let sink = tls_sink("elsewhere.example").await;
    let t = transport(&w, &sink, Some(&sink));
    let report = t.send(DOMAIN, &envelope(&["a@sts.test"]), MESSAGE).await;
    let reply = deferred(&report);
    assert!(
        reply.starts_with("4.7.5 MTA-STS: certificate name mismatch ("),
        "{reply}"
    );
    assert_eq!(sink.message_count(), 0);

    // A certificate nobody trusts.
    let sink = tls_sink(MX).await;
    let t = transport(&w, &sink, None);
    let reply = deferred(&t.send(DOMAIN, &envelope(&["a@sts.test"]), MESSAGE).await).to_string();
    assert!(reply.starts_with("4.7.5 MTA-STS: certificate not trusted ("), "{reply}");
    assert_eq!(sink.message_count(), 0);

    // No STARTTLS: never plain text.
    let plain = SinkMx::start_default().await.unwrap();
    let t = transport(&w, &plain, None);
    let reply = deferred(&t.send(DOMAIN, &envelope(&["a@sts.test"]), MESSAGE).await).to_string();
    assert!(reply.starts_with("4.7.5 MTA-STS: STARTTLS not offered ("), "{reply}");
    assert_eq!(plain.message_count(), 0);

    // The MX is not one the policy names.
    let w = world("version: STSv1\nmode: enforce\nmx: *.other.test\nmax_age: 86400\n").await;
    let sink = tls_sink(MX).await;
    let t = transport(&w, &sink, Some(&sink));
    let reply = deferred(&t.send(DOMAIN, &envelope(&["a@sts.test"]), MESSAGE).await).to_string();
    assert_eq!(
        reply,
        "4.7.5 MTA-STS: no MX host of sts.test is one its policy names (mx: *.other.test)"
    );
    assert_eq!(sink.connection_count(), 0, "not even dialled");
}

#[tokio::test]
async fn testing_none_and_unusable_policies_change_nothing() {
    for policy in [
        "version: STSv1\nmode: testing\nmx: *.other.test\nmax_age: 86400\n",
        "version: STSv1\nmode: none\nmax_age: 86400\n",
        "this is not a policy",
    ] {
        let w = world(policy).await;
        // A certificate that would fail verification: opportunistic TLS takes it, as without a policy.
        let sink = tls_sink("elsewhere.example").await;
        let t = transport(&w, &sink, None);
        let report = t.send(DOMAIN, &envelope(&["a@sts.test"]), MESSAGE).await;
        assert_delivered(&report);
        assert!(report.tls, "{policy}");
    }

    // A policy host that answers 404: no policy.
    let w = world(ENFORCE).await;
    w.policy_host.set_answer(PolicyAnswer {
        status: 404,
        ..PolicyAnswer::policy("")
    });
    let sink = tls_sink("elsewhere.example").await;
    let t = transport(&w, &sink, None);
    assert_delivered(&t.send(DOMAIN, &envelope(&["a@sts.test"]), MESSAGE).await);
}

#[tokio::test]
async fn a_domain_without_a_record_is_looked_up_once_per_check_interval() {
    let w = world(ENFORCE).await;
    w.dns.remove_all(&format!("_mta-sts.{DOMAIN}"));
    let sink = tls_sink("elsewhere.example").await;
    let t = transport(&w, &sink, None);
    for _ in 0..3 {
        assert_delivered(&t.send(DOMAIN, &envelope(&["a@sts.test"]), MESSAGE).await);
    }
    let lookups = w
        .dns
        .queries()
        .iter()
        .filter(|(name, _)| name == &format!("_mta-sts.{DOMAIN}"))
        .count();
    // Most domains publish no policy: looking the record up for every delivery cost a DNS round trip per
    // session to every such domain.
    assert_eq!(lookups, 1, "the missing record is remembered for the check interval");
    assert!(w.policy_host.requests().is_empty(), "no record, no fetch");
}

#[tokio::test]
async fn a_cached_enforce_policy_outlives_its_record_and_its_host() {
    let w = world(ENFORCE).await;
    let good = tls_sink(MX).await;
    let mta_sts = Arc::new(MtaSts::new(
        resolver(&w.dns),
        Arc::new(LoopbackFetcher {
            port: w.policy_host.port(),
            ca: w.policy_host.ca_certificate_der().to_vec(),
        }),
        w.policy_host.port(),
        // Every send looks the record up again.
        Duration::ZERO,
    ));
    let t = SmtpTransport::with_policies(
        TransportConfig {
            tls_trust_roots: vec![good.ca_certificate_der().unwrap().to_vec()],
            ..config(good.port())
        },
        resolver(&w.dns),
        None,
        Some(mta_sts.clone()),
    );
    assert_delivered(&t.send(DOMAIN, &envelope(&["a@sts.test"]), MESSAGE).await);
    // The record goes and the host breaks: the policy stays in force until its max_age (RFC 8461 §5.1), so a
    // downgrade by an attacker who removes them does not work.
    w.dns.remove_all(&format!("_mta-sts.{DOMAIN}"));
    w.policy_host.set_answer(PolicyAnswer {
        status: 500,
        ..PolicyAnswer::policy("")
    });
    let policy = mta_sts.policy(DOMAIN).await.expect("still cached");
    assert!(policy.allows_mx(MX));
    // A new id with a changed policy is fetched again.
    w.dns.add_txt(&format!("_mta-sts.{DOMAIN}"), "v=STSv1; id=2;");
    w.policy_host
        .set_answer(PolicyAnswer::policy("version: STSv1\nmode: none\nmax_age: 86400\n"));
    assert!(mta_sts.policy(DOMAIN).await.is_none(), "withdrawn with mode: none");
}

/// Keeps every outcome the transport reports.
#[derive(Default)]
struct Collected(std::sync::Mutex<Vec<TlsSessionOutcome>>);

impl TlsReportSink for Collected {
    fn record(&self, outcome: TlsSessionOutcome) {
        self.0.lock().unwrap().push(outcome);
    }
}

impl Collected {
    fn take(&self) -> Vec<TlsSessionOutcome> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

#[tokio::test]
async fn tls_rpt_sees_each_new_session_under_its_policy() {
    // enforce, the named MX with a trusted certificate: one successful session, reused by the second mail.
    let w = world(ENFORCE).await;
    let sink = tls_sink(MX).await;
    let t = transport(&w, &sink, Some(&sink));
    let seen = Arc::new(Collected::default());
    t.report_tls_to(seen.clone());
    assert_delivered(&t.send(DOMAIN, &envelope(&["a@sts.test"]), MESSAGE).await);
    assert_delivered(&t.send(DOMAIN, &envelope(&["b@sts.test"]), MESSAGE).await);
    let outcomes = seen.take();
    assert_eq!(outcomes.len(), 1, "{outcomes:?}");
    assert_eq!(outcomes[0].policy_domain, DOMAIN);
    assert_eq!(outcomes[0].policy_type, TlsPolicyType::Sts);
    assert_eq!(outcomes[0].mx_hosts, [MX]);
    assert_eq!(outcomes[0].policy_strings[1], "mode: enforce");
    assert_eq!(outcomes[0].failure, None);

    // enforce, a certificate for another name: a failure with the MX's details.
    let sink = tls_sink("elsewhere.example").await;
    let t = transport(&w, &sink, Some(&sink));
    t.report_tls_to(seen.clone());
    deferred(&t.send(DOMAIN, &envelope(&["a@sts.test"]), MESSAGE).await);
    let outcomes = seen.take();
    assert_eq!(outcomes.len(), 1, "{outcomes:?}");
    let failure = outcomes[0].failure.as_ref().expect("a failure");
    assert_eq!(failure.result_type, "certificate-host-mismatch");
    assert_eq!(failure.receiving_mx_hostname, MX);
    assert_eq!(failure.receiving_ip, Some(Ipv4Addr::LOCALHOST.into()));
    assert!(failure.failure_reason_code.starts_with("4.7.5 "), "{failure:?}");

    // testing, the same certificate: the failure is reported and the mail still delivered.
    let w = world(&ENFORCE.replace("enforce", "testing")).await;
    let t = transport(&w, &sink, Some(&sink));
    t.report_tls_to(seen.clone());
    let report = t.send(DOMAIN, &envelope(&["a@sts.test"]), MESSAGE).await;
    assert_delivered(&report);
    assert!(report.tls);
    let outcomes = seen.take();
    assert_eq!(outcomes.len(), 1, "{outcomes:?}");
    assert_eq!(outcomes[0].policy_strings[1], "mode: testing");
    assert_eq!(
        outcomes[0].failure.as_ref().map(|f| f.result_type),
        Some("certificate-host-mismatch")
    );

    // No policy: a TLS session is a success of `no-policy-found`, a plain one has no STARTTLS.
    let dns = DnsAuthority::start().await.unwrap();
    dns.add_mx("plain.test", 10, "mx.plain.test");
    dns.add_a("mx.plain.test", Ipv4Addr::LOCALHOST);
    let plain = SinkMx::start_default().await.unwrap();
    let t = SmtpTransport::new(config(plain.port()), resolver(&dns));
    t.report_tls_to(seen.clone());
    assert_delivered(&t.send("plain.test", &envelope(&["a@plain.test"]), MESSAGE).await);
    let outcomes = seen.take();
    assert_eq!(outcomes.len(), 1, "{outcomes:?}");
    assert_eq!(outcomes[0].policy_type, TlsPolicyType::NoPolicyFound);
    assert_eq!(
        outcomes[0].failure.as_ref().map(|f| f.result_type),
        Some("starttls-not-supported")
    );
}
