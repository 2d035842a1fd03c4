//! Every action of the official Tencent Cloud SES Node.js SDK (`tencentcloud-sdk-nodejs-ses`, installed into
//! tests/node by `npm ci`) against a real `mailpush serve` on Tencent's calendar (Beijing time), with every field
//! its TypeScript models declare present in every response. Skipped (with a note) when the SDK is not installed,
//! unless MAILPUSH_REQUIRE_NODE_SDK=1 (CI sets it).

use mailpush_model::TimeZone;
use mailpush_suite::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_action_of_the_node_sdk_fills_every_response_field() {
    let node_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/node");
    if !sdk_installed(
        "node",
        &["-e", "require('tencentcloud-sdk-nodejs-ses')"],
        Some(std::path::Path::new(node_dir)),
        "MAILPUSH_REQUIRE_NODE_SDK",
        "npm ci --prefix tests/node",
    ) {
        return;
    }
    let MailWorld {
        dns,
        sink: _sink,
        dir: _dir,
        env,
    } = mail_world(&[("MAILPUSH_TIME_ZONE", "Asia/Shanghai".to_string())]).await;
    let creds = create_account(&env, "node").await;
    let server = ServerProcess::start("mailpush", &["serve"], &env).await;
    verified_sender(
        &ApiClient::new(&server.api_addr, &creds),
        &dns,
        "noreply@shop.example.com",
    )
    .await;

    let extra = [("REQUEST_DATE", TimeZone::default().date_of(unix_now() * 1000))];
    let dir = std::path::Path::new(node_dir);
    let v = run_sdk_script(
        "node",
        &["tencent_every_action.js"],
        dir,
        &server.api_addr,
        &creds,
        &extra,
    )
    .await;
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
