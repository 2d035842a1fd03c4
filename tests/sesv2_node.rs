//! The AWS SES v2 API driven by the official AWS SDK for JavaScript v3 (`@aws-sdk/client-sesv2`, installed into
//! tests/node by `npm ci`): identity → records → verification → SendEmail → delivered with a DKIM signature.
//! Skipped (with a note) when the SDK is not installed, unless MAILPUSH_REQUIRE_NODE_SDK=1 (CI sets it).

use mailpush_suite::*;
use serde_json::json;
use std::time::Duration;

const NODE_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/node");

async fn run(step: &str, server: &ServerProcess, creds: &Credentials) -> serde_json::Value {
    let dir = std::path::Path::new(NODE_DIR);
    run_sdk_script("node", &["aws_sesv2.js", step], dir, &server.api_addr, creds, &[]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_aws_javascript_sdk_sends_through_mailpush() {
    if !sdk_installed(
        "node",
        &["-e", "require('@aws-sdk/client-sesv2')"],
        Some(std::path::Path::new(NODE_DIR)),
        "MAILPUSH_REQUIRE_NODE_SDK",
        "npm ci --prefix tests/node",
    ) {
        return;
    }
    let MailWorld {
        dns,
        sink,
        dir: _dir,
        env,
    } = mail_world(&[]).await;
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
