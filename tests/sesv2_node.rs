//! The AWS SES v2 API driven by the official AWS SDK for JavaScript v3 (`@aws-sdk/client-sesv2`, installed into
//! tests/node by `npm ci`): identity → records → verification → SendEmail → delivered with a DKIM signature.
//! Skipped (with a note) when the SDK is not installed, unless MAILPUSH_REQUIRE_NODE_SDK=1 (CI sets it).

use mailpush_suite::*;
use mailpush_testkit::{DnsAuthority, SinkMx};
use serde_json::json;
use std::net::Ipv4Addr;
use std::time::Duration;

const NODE_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/node");

async fn run(step: &str, server: &ServerProcess, creds: &Credentials) -> serde_json::Value {
    let out = tokio::process::Command::new("node")
        .args(["aws_sesv2.js", step])
        .current_dir(NODE_DIR)
        .env("MAILPUSH_ENDPOINT", &server.api_addr)
        .env("SECRET_ID", &creds.secret_id)
        .env("SECRET_KEY", &creds.secret_key)
        .env("TO", "reader@example.org")
        .output()
        .await
        .expect("run node");
    assert!(
        out.status.success(),
        "AWS JS SDK script ({step}) failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("script prints JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_aws_javascript_sdk_sends_through_mailpush() {
    let have_sdk = std::process::Command::new("node")
        .args(["-e", "require('@aws-sdk/client-sesv2')"])
        .current_dir(NODE_DIR)
        .status()
        .is_ok_and(|s| s.success());
    if !have_sdk {
        assert!(
            std::env::var("MAILPUSH_REQUIRE_NODE_SDK").as_deref() != Ok("1"),
            "@aws-sdk/client-sesv2 is required but not installed (npm ci --prefix tests/node)"
        );
        eprintln!("skipped: npm ci --prefix tests/node to run this test");
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
    let creds = create_account(&env, "js").await;
    let server = ServerProcess::start("mailpush", &["serve"], &env).await;
    let created = run("create", &server, &creds).await;
    assert_eq!(created["type"], "DOMAIN", "{created}");
    let identity = ApiClient::new(&server.api_addr, &creds)
        .call("GetEmailIdentity", &json!({ "EmailIdentity": "js.example.com" }))
        .await;
    publish_records(&dns, &identity, "js.example.com");
    let v = run("send", &server, &creds).await;
    assert_eq!(v["verified"], true, "{v}");
    assert_eq!(v["sendingEnabled"], true, "{v}");
    assert_eq!(v["missing"], json!(["NotFoundException", 404]), "{v}");
    let msgs = sink
        .wait_for_messages(1, Duration::from_secs(20))
        .await
        .expect("delivered");
    assert!(String::from_utf8_lossy(&msgs[0].data).contains("Subject: Simple from the AWS JS SDK"));
    assert_dkim_verifies_everywhere(&dns, &[&msgs[0].data]).await;
    server.terminate().await;
}
