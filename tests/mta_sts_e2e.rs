//! MTA-STS through the real `mailpush serve`: the receiving domain publishes `_mta-sts` TXT in the testkit DNS
//! and its policy on a testkit HTTPS policy host on loopback, fetched through the callbacks' SSRF-guarded client
//! (loopback opened with `callback_allow_cidrs`, as the callback tests do). Under `enforce`, mail goes over
//! verified TLS to the named MX; a certificate for another name defers it ("MTA-STS: certificate name
//! mismatch") and at the retry deadline it is a soft bounce that blacklists nobody.

use mailpush_model::EventKind;
use mailpush_store::BounceType;
use mailpush_suite::*;
use mailpush_testkit::{DnsAuthority, PolicyAnswer, PolicyServer, SinkConfig, SinkMx};
use serde_json::json;
use std::net::Ipv4Addr;
use std::time::Duration;

const SENDER: &str = "noreply@shop.example.com";
const MX: &str = "mx.example.org";
const POLICY: &str = "version: STSv1\r\nmode: enforce\r\nmx: mx.example.org\r\nmax_age: 86400\r\n";

struct World {
    dir: tempfile::TempDir,
    _dns: DnsAuthority,
    sink: SinkMx,
    policy_host: PolicyServer,
    server: ServerProcess,
    client: ApiClient,
}

/// `mailpush serve` delivering `example.org` to a sink whose certificate names `sink_name`.
async fn world(sink_name: &str, extra: &[(&str, String)]) -> World {
    let sink = SinkMx::start(SinkConfig {
        starttls: true,
        hostname: sink_name.to_string(),
        ..SinkConfig::default()
    })
    .await
    .expect("sink");
    let policy_host = PolicyServer::start("mta-sts.example.org", PolicyAnswer::policy(POLICY))
        .await
        .expect("policy host");
    let dns = DnsAuthority::start().await.expect("dns");
    dns.add_mx("example.org", 10, MX);
    dns.add_a(MX, Ipv4Addr::LOCALHOST);
    dns.add_txt("_mta-sts.example.org", "v=STSv1; id=20261206;");
    dns.add_a("mta-sts.example.org", Ipv4Addr::LOCALHOST);
    let dir = temp_dir();
    // Both test CAs: the MX's (verified TLS) and the policy host's (the HTTPS fetch).
    let ca_file = dir.path().join("outbound-ca.pem");
    std::fs::write(
        &ca_file,
        pem_certificate(sink.ca_certificate_der().expect("CA")) + &pem_certificate(policy_host.ca_certificate_der()),
    )
    .expect("CA file");
    let mut vars = vec![
        ("MAILPUSH_DNS_SERVERS", dns.addr().to_string()),
        ("MAILPUSH_DELIVERY_PORT", sink.addr().port().to_string()),
        ("MAILPUSH_RETRY_SCHEDULE_SECS", "1".to_string()),
        ("MAILPUSH_MTA_STS_POLICY_PORT", policy_host.port().to_string()),
        ("MAILPUSH_CALLBACK_ALLOW_CIDRS", "127.0.0.0/8".to_string()),
        ("MAILPUSH_OUTBOUND_TLS_CA_FILE", ca_file.display().to_string()),
    ];
    vars.extend(extra.iter().cloned());
    let env = base_env(dir.path(), &vars);
    let creds = create_account(&env, "shop").await;
    let server = ServerProcess::start("mailpush", &["serve"], &env).await;
    let client = ApiClient::new(&server.api_addr, &creds);
    verified_sender(&client, &dns, SENDER).await;
    World {
        dir,
        _dns: dns,
        sink,
        policy_host,
        server,
        client,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_enforced_policy_is_fetched_through_the_guard_and_mail_goes_over_verified_tls() {
    let w = world(MX, &[]).await;
    let id = w.client.send_simple(SENDER, "a@example.org", "Hi").await;
    w.client.wait_deliver_status(&id, 1, Duration::from_secs(30)).await;
    assert!(w.sink.messages()[0].tls);
    assert_eq!(
        w.policy_host.requests(),
        [(
            format!("mta-sts.example.org:{}", w.policy_host.port()),
            "/.well-known/mta-sts.txt".to_string()
        )]
    );
    w.server.terminate().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_name_mismatch_defers_then_soft_bounces_without_blacklisting() {
    let w = world(
        "elsewhere.example",
        &[("MAILPUSH_MAX_DELIVERY_SECONDS", "3".to_string())],
    )
    .await;
    let id = w.client.send_simple(SENDER, "a@example.org", "Hi").await;
    let row = w.client.wait_deliver_status(&id, 3, Duration::from_secs(40)).await;
    let reason = row["DeliverMessage"].as_str().unwrap_or("");
    assert!(
        reason.contains("gave up") && reason.contains("MTA-STS: certificate name mismatch"),
        "{row}"
    );
    assert_eq!(w.sink.message_count(), 0);

    let events = outcomes::message_events(w.dir.path(), "shop", &id).await;
    let deferred: Vec<&str> = events
        .iter()
        .filter(|e| e.event.kind == EventKind::Deferred)
        .map(|e| e.event.reason.as_str())
        .collect();
    assert!(!deferred.is_empty(), "{events:?}");
    assert!(
        deferred
            .iter()
            .all(|r| r.starts_with("4.7.5 MTA-STS: certificate name mismatch")),
        "{deferred:?}"
    );
    let last = events.last().expect("events");
    assert_eq!(last.event.kind, EventKind::Bounce);
    assert_eq!(last.event.bounce_type, Some(BounceType::Soft));

    // A soft bounce: the address is not blacklisted.
    let list = w
        .client
        .call(
            "ListBlackEmailAddress",
            &json!({ "StartDate": today(), "EndDate": today(), "Offset": 0, "Limit": 10 }),
        )
        .await;
    assert_eq!(list["TotalCount"], 0, "{list}");
    w.server.terminate().await;
}
