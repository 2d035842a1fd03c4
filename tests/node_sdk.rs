//! Every action of the official Tencent Cloud SES Node.js SDK (`tencentcloud-sdk-nodejs-ses`, installed into
//! tests/node by `npm ci`) against a real `mailpush serve` on Tencent's calendar (Beijing time), with every field
//! its TypeScript models declare present in every response. Skipped (with a note) when the SDK is not installed,
//! unless MAILPUSH_REQUIRE_NODE_SDK=1 (CI sets it).

use mailpush_model::TimeZone;
use mailpush_suite::*;
use mailpush_testkit::{DnsAuthority, SinkMx};
use serde_json::json;
use std::net::Ipv4Addr;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_action_of_the_node_sdk_fills_every_response_field() {
    let node_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/node");
    let have_sdk = std::process::Command::new("node")
        .args(["-e", "require('tencentcloud-sdk-nodejs-ses')"])
        .current_dir(node_dir)
        .status()
        .is_ok_and(|s| s.success());
    if !have_sdk {
        assert!(
            std::env::var("MAILPUSH_REQUIRE_NODE_SDK").as_deref() != Ok("1"),
            "tencentcloud-sdk-nodejs-ses is required but not installed (npm ci --prefix tests/node)"
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
            ("MAILPUSH_TIME_ZONE", "Asia/Shanghai".to_string()),
        ],
    );
    let creds = create_account(&env, "node").await;
    let server = ServerProcess::start("mailpush", &["serve"], &env).await;
    verified_sender(
        &ApiClient::new(&server.api_addr, &creds),
        &dns,
        "noreply@shop.example.com",
    )
    .await;

    let out = tokio::process::Command::new("node")
        .arg("tencent_every_action.js")
        .current_dir(node_dir)
        .env("MAILPUSH_ENDPOINT", &server.api_addr)
        .env("SECRET_ID", &creds.secret_id)
        .env("SECRET_KEY", &creds.secret_key)
        .env("TO", "reader@example.org")
        .env("REQUEST_DATE", TimeZone::default().date_of(unix_now() * 1000))
        .output()
        .await
        .expect("run node");
    assert!(
        out.status.success(),
        "Node SDK script failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("script prints JSON");
    assert_eq!(
        v["actions"], v["sdkActions"],
        "every action of the SDK's client is driven: {v}"
    );
    assert!(v["actions"].as_array().map(Vec::len).unwrap_or(0) >= 35, "{v}");
    assert_eq!(v["missing"], json!([]), "response fields left out: {v}");
    let c = &v["checks"];
    assert_eq!(c["tags"], json!([{ "TagKey": "team", "TagValue": "node" }]), "{c}");
    assert_eq!(c["tagged"], json!(["node.example.com"]), "{c}");
    assert_eq!(c["deliverStatus"], json!([1]), "{c}");
    assert_eq!(c["fileUrlError"], "FailedOperation.FileURLNotExist", "{c}");
    assert_eq!(c["requested"], 1, "{c}");
    assert_eq!(c["customValid"], 1, "{c}");
    server.terminate().await;
}
