//! Every action of the official `tencentcloud-sdk-python-ses` typed client against a real `mailpush serve`, with
//! every field of every response model filled. The server keeps Tencent's calendar (Beijing time), so
//! `RequestDate` and report dates are Beijing days. Skipped (with a note) when the SDK is not installed, unless
//! MAILPUSH_REQUIRE_PYTHON_SDK=1 (CI sets it).

use mailpush_model::{EventKind, TimeZone};
use mailpush_store::{NewEvent, Store, StoreOptions};
use mailpush_suite::*;
use serde_json::json;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_action_of_the_python_sdk_fills_every_response_field() {
    if !sdk_installed(
        "python3",
        &["-c", "import tencentcloud.ses.v20201002"],
        None,
        "MAILPUSH_REQUIRE_PYTHON_SDK",
        "pip install tencentcloud-sdk-python-ses",
    ) {
        return;
    }
    let MailWorld { dns, sink, dir, env } = mail_world(&[
        ("MAILPUSH_TIME_ZONE", "Asia/Shanghai".to_string()),
        ("MAILPUSH_SOURCE_IPS", "127.0.0.1".to_string()),
    ])
    .await;
    let creds = create_account(&env, "sdk").await;
    let server = ServerProcess::start("mailpush", &["serve"], &env).await;
    let api = ApiClient::new(&server.api_addr, &creds);
    verified_sender(&api, &dns, "noreply@shop.example.com").await;

    // A delivered mail with a complaint recorded against it (as the inbound MX records an ARF report).
    let sent = api
        .call(
            "SendEmail",
            &json!({
                "FromEmailAddress": "noreply@shop.example.com",
                "Destination": ["complainer@example.org"],
                "Subject": "You will complain",
                "Simple": { "Text": b64(b"hello") },
            }),
        )
        .await;
    let complained_id = sent["MessageId"].as_str().expect("MessageId").to_string();
    sink.wait_for_messages(1, Duration::from_secs(10))
        .await
        .expect("delivered");
    let url = format!("sqlite:{}", dir.path().join("mailpush.db").display());
    let store = Store::open(&url, StoreOptions::default())
        .await
        .expect("open the server's database");
    let account = store
        .accounts()
        .account_by_name("sdk")
        .await
        .expect("account")
        .expect("exists");
    store
        .events()
        .record_events(&[NewEvent {
            account_id: account.id,
            message_id: mailpush_model::MessageId::from_stored(complained_id.clone()),
            recipient: "complainer@example.org".into(),
            kind: EventKind::SpamReport,
            at_ms: unix_now() * 1000,
            reason: "abuse".into(),
            bounce_type: None,
            link: None,
            user_agent: None,
        }])
        .await
        .expect("complaint");
    store.close().await;

    let beijing_today = TimeZone::default().date_of(unix_now() * 1000);
    let sdk_dir = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sdk"));
    let extra = [("REQUEST_DATE", beijing_today)];
    let v = run_sdk_script(
        "python3",
        &["every_action.py"],
        sdk_dir,
        &server.api_addr,
        &creds,
        &extra,
    )
    .await;
    assert_eq!(
        v["actions"], v["sdk_actions"],
        "every action of the SDK's client is driven"
    );
    assert_eq!(v["actions"].as_array().map(Vec::len), Some(36), "{v}");
    assert_eq!(v["missing"], json!([]), "response fields left out: {v}");
    let c = &v["checks"];
    assert_eq!(c["get_identity_tags"], json!([["team", "growth"]]), "{c}");
    assert_eq!(c["identities"], json!(["news.example.com", "shop.example.com"]), "{c}");
    assert_eq!(c["identities_tagged"], json!(["news.example.com"]), "{c}");
    assert_eq!(c["identities_tagged_after_delete"], json!([]), "{c}");
    assert_eq!(c["shop_send_ip"], json!(["127.0.0.1"]), "{c}");
    assert_eq!(c["file_url_error"], "FailedOperation.FileURLNotExist", "{c}");
    assert_eq!(c["deliver_status"], json!([1]), "{c}");
    assert_eq!(c["requested_today"], 2, "the Beijing day holds both mails: {c}");
    assert_eq!(c["abuse_total"], 1, "{c}");
    assert_eq!(c["abuse_message_ids"], json!([complained_id]), "{c}");
    assert_eq!(c["abuse_filtered_total"], 0, "{c}");
    assert_eq!(c["custom_valid"], 1, "{c}");
    assert_eq!(
        c["senders"],
        json!(["info@shop.example.com", "noreply@shop.example.com"]),
        "{c}"
    );
    server.terminate().await;
}
