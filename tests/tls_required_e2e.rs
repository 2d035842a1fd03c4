//! "TLS required" per account and per sender address through the real `mailpush serve`: set with
//! `UpdateTlsPolicy` and the CLI, mail goes only over STARTTLS with a certificate verified for the MX host name
//! (the sink's test CA trusted through `outbound_tls_ca_file`) while other mail follows `outbound_tls`; a
//! receiver without STARTTLS defers the mail with a clear reason and, at the retry deadline, it becomes a soft
//! bounce that blacklists nobody.

use mailpush_suite::*;
use mailpush_testkit::{DnsAuthority, SinkConfig, SinkMx};
use serde_json::{Value, json};
use std::net::Ipv4Addr;
use std::time::Duration;

const SENDER: &str = "noreply@shop.example.com";
const MX: &str = "mx.example.org";

struct World {
    dir: tempfile::TempDir,
    _dns: DnsAuthority,
    sink: SinkMx,
    server: ServerProcess,
    client: ApiClient,
    env: std::collections::HashMap<String, String>,
}

/// The sink's CA as a PEM file mailpush trusts.
fn write_ca(dir: &std::path::Path, sink: &SinkMx) -> std::path::PathBuf {
    let pem = pem_certificate(sink.ca_certificate_der().expect("a STARTTLS sink has a CA"));
    let path = dir.join("outbound-ca.pem");
    std::fs::write(&path, pem).expect("write the CA");
    path
}

/// `mailpush serve` delivering to `sink` as `example.org`'s MX, with plain text for mail that requires nothing.
async fn world(sink: SinkMx, extra: &[(&str, String)]) -> World {
    let dns = DnsAuthority::start().await.expect("dns");
    dns.add_mx("example.org", 10, MX);
    dns.add_a(MX, Ipv4Addr::LOCALHOST);
    let dir = temp_dir();
    let mut vars = vec![
        ("MAILPUSH_DNS_SERVERS", dns.addr().to_string()),
        ("MAILPUSH_DELIVERY_PORT", sink.addr().port().to_string()),
        ("MAILPUSH_RETRY_SCHEDULE_SECS", "1".to_string()),
        ("MAILPUSH_OUTBOUND_TLS", "disabled".to_string()),
    ];
    if sink.ca_certificate_der().is_some() {
        vars.push((
            "MAILPUSH_OUTBOUND_TLS_CA_FILE",
            write_ca(dir.path(), &sink).display().to_string(),
        ));
    }
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
        server,
        client,
        env,
    }
}

/// Whether the sink received the mail with `subject` over TLS.
fn received_over_tls(sink: &SinkMx, subject: &str) -> bool {
    let got = sink.messages();
    let m = got
        .iter()
        .find(|m| m.text().contains(&format!("Subject: {subject}")))
        .unwrap_or_else(|| panic!("{subject} not received"));
    m.tls
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_required_per_sender_and_per_account_goes_over_verified_tls() {
    let sink = SinkMx::start(SinkConfig {
        starttls: true,
        hostname: MX.to_string(),
        ..SinkConfig::default()
    })
    .await
    .expect("sink");
    let w = world(sink, &[]).await;
    let c = &w.client;

    let policy = c.call("GetTlsPolicy", &json!({})).await;
    assert_eq!(policy["RequireTls"], false, "{policy}");
    assert_eq!(policy["RequireTlsAddresses"], json!([]), "{policy}");

    // Nothing required: `outbound_tls = disabled`, plain text.
    let id = c.send_simple(SENDER, "a@example.org", "plain").await;
    c.wait_deliver_status(&id, 1, Duration::from_secs(30)).await;
    assert!(!received_over_tls(&w.sink, "plain"));

    // The sender address requires TLS.
    let policy = c
        .call(
            "UpdateTlsPolicy",
            &json!({ "EmailAddress": SENDER, "RequireTls": true }),
        )
        .await;
    assert_eq!(policy["RequireTlsAddresses"], json!([SENDER]), "{policy}");
    let id = c.send_simple(SENDER, "b@example.org", "sender-requires").await;
    c.wait_deliver_status(&id, 1, Duration::from_secs(30)).await;
    assert!(received_over_tls(&w.sink, "sender-requires"));

    // An address that is not the account's.
    let refused = c
        .call(
            "UpdateTlsPolicy",
            &json!({ "EmailAddress": "nobody@shop.example.com", "RequireTls": true }),
        )
        .await;
    assert_eq!(
        ApiClient::error_code(&refused).as_deref(),
        Some("InvalidParameterValue.NoSuchSender"),
        "{refused}"
    );

    // The whole account, through the CLI; the sender's own setting is cleared first.
    c.call(
        "UpdateTlsPolicy",
        &json!({ "EmailAddress": SENDER, "RequireTls": false }),
    )
    .await;
    let out = mailpush_cli(&w.env, &["account", "set", "shop", "--require-tls", "true"]).await;
    assert!(out.contains("shop: require-tls true"), "{out}");
    let policy = c.call("GetTlsPolicy", &json!({})).await;
    assert_eq!(policy["RequireTls"], true, "{policy}");
    assert_eq!(policy["RequireTlsAddresses"], json!([]), "{policy}");
    // The server caches the settings for a second.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let id = c.send_simple(SENDER, "c@example.org", "account-requires").await;
    c.wait_deliver_status(&id, 1, Duration::from_secs(30)).await;
    assert!(received_over_tls(&w.sink, "account-requires"));

    let out = mailpush_cli(
        &w.env,
        &[
            "sender",
            "set",
            "--account",
            "shop",
            SENDER,
            "--require-tls",
            "true",
            "--json",
        ],
    )
    .await;
    let v: Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(v["RequireTlsAddresses"], json!([SENDER]), "{v}");
    w.server.terminate().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_starttls_required_mail_is_deferred_then_soft_bounced_and_never_sent_in_plain_text() {
    let sink = SinkMx::start_default().await.expect("sink");
    let w = world(sink, &[("MAILPUSH_MAX_DELIVERY_SECONDS", "3".to_string())]).await;
    let c = &w.client;
    c.call(
        "UpdateTlsPolicy",
        &json!({ "EmailAddress": SENDER, "RequireTls": true }),
    )
    .await;
    let id = c.send_simple(SENDER, "busy@example.org", "must-be-encrypted").await;
    let row = c.wait_deliver_status(&id, 3, Duration::from_secs(40)).await;
    let reason = row["DeliverMessage"].as_str().unwrap_or("");
    assert!(
        reason.contains("gave up") && reason.contains("4.7.4 TLS is required"),
        "{row}"
    );
    assert_eq!(w.sink.message_count(), 0, "never in plain text");

    // Deferred on each attempt, then a soft bounce.
    let events = outcomes::message_events(w.dir.path(), "shop", &id).await;
    outcomes::assert_deferred_then_soft_bounce(&events);

    // Not blacklisted: once TLS is no longer required, the same address gets mail.
    c.call(
        "UpdateTlsPolicy",
        &json!({ "EmailAddress": SENDER, "RequireTls": false }),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let id = c.send_simple(SENDER, "busy@example.org", "now-plain").await;
    c.wait_deliver_status(&id, 1, Duration::from_secs(30)).await;
    w.server.terminate().await;
}
