//! The official `tencentcloud-sdk-python-ses` client talks to mailpush unchanged.
//! Skipped (with a note) when the SDK is not installed, unless MAILPUSH_REQUIRE_PYTHON_SDK=1 (CI sets it).

use mailpush_suite::*;
use mailpush_testkit::{DnsAuthority, SinkMx};
use std::net::Ipv4Addr;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_python_sdk_sends_and_reads_status() {
    if !python_sdk_available() {
        return;
    }
    let dns = DnsAuthority::start().await.expect("dns");
    let sink = SinkMx::start_default().await.expect("sink");
    dns.add_mx("example.org", 10, "mx.example.org");
    dns.add_a("mx.example.org", Ipv4Addr::LOCALHOST);
    let dir = temp_dir();
    let env = base_env(
        dir.path(),
        &[
            ("MAILPUSH_DNS_SERVERS", dns.addr().to_string()),
            ("MAILPUSH_DELIVERY_PORT", sink.addr().port().to_string()),
        ],
    );
    let creds = create_account(&env, "sdk").await;
    let server = ServerProcess::start("mailpush", &["serve"], &env).await;
    verified_sender(
        &ApiClient::new(&server.api_addr, &creds),
        &dns,
        "noreply@shop.example.com",
    )
    .await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sdk/send_with_sdk.py");
    let out = tokio::process::Command::new("python3")
        .arg(script)
        .env("MAILPUSH_ENDPOINT", &server.api_addr)
        .env("SECRET_ID", &creds.secret_id)
        .env("SECRET_KEY", &creds.secret_key)
        .env("TO", "reader@example.org")
        .output()
        .await
        .expect("run python");
    assert!(
        out.status.success(),
        "SDK script failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("script prints JSON");
    assert_eq!(v["ErrorCode"], "FailedOperation.TooManyRecipients");
    let statuses = v["Statuses"].as_array().expect("statuses");
    assert_eq!(statuses.len(), 1, "{v}");
    assert_eq!(statuses[0]["DeliverStatus"], 1, "{v}");
    assert_eq!(statuses[0]["ToEmailAddress"], "reader@example.org");
    let msgs = sink
        .wait_for_messages(1, Duration::from_secs(10))
        .await
        .expect("delivered");
    assert_eq!(msgs[0].rcpt_to, ["reader@example.org"]);
    assert_dkim_verifies_everywhere(&dns, &[&msgs[0].data]).await;
    server.terminate().await;
}
