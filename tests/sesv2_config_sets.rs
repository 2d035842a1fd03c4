//! SES v2 configuration sets driven by boto3 against a real `mailpush serve`: the set and event destination
//! operations with their AWS errors, then mail sent with `ConfigurationSetName` and `EmailTags` whose DELIVERY
//! and BOUNCE events reach the set's HTTP endpoint (a receiver in this test) in SES's event JSON, signed with the
//! account's CallbackSecret. Skipped (with a note) when boto3 is not installed, unless MAILPUSH_REQUIRE_BOTO3=1.

use mailpush_suite::*;
use mailpush_testkit::SinkReply;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

type Posts = Arc<Mutex<Vec<(Vec<(String, String)>, Vec<u8>)>>>;

/// A minimal HTTP receiver on loopback: keeps every POST's headers and body, answers 200.
async fn receiver() -> (String, Posts) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let got: Posts = Arc::default();
    let posts = got.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let got = got.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let (head_end, headers) = loop {
                    let Ok(n) = s.read(&mut chunk).await else { return };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..i]).to_string();
                        let headers: Vec<(String, String)> = head
                            .lines()
                            .skip(1)
                            .filter_map(|l| l.split_once(':'))
                            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
                            .collect();
                        break (i + 4, headers);
                    }
                };
                let len: usize = headers
                    .iter()
                    .find(|(k, _)| k == "content-length")
                    .and_then(|(_, v)| v.parse().ok())
                    .unwrap_or(0);
                while buf.len() < head_end + len {
                    let Ok(n) = s.read(&mut chunk).await else { return };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
                got.lock()
                    .unwrap()
                    .push((headers, buf[head_end..head_end + len].to_vec()));
                let _ = s
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    .await;
            });
        }
    });
    (format!("http://{addr}/ses-events"), posts)
}

async fn run_script(step: &str, server: &ServerProcess, creds: &Credentials, hook: &str) -> Value {
    let sdk_dir = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sdk"));
    run_sdk_script(
        "python3",
        &["sesv2_config_sets.py", step],
        sdk_dir,
        &server.api_addr,
        creds,
        &[("HOOK", hook.to_string())],
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configuration_set_events_reach_the_endpoint_in_ses_json() {
    if !sdk_installed(
        "python3",
        &["-c", "import boto3"],
        None,
        "MAILPUSH_REQUIRE_BOTO3",
        "pip install boto3",
    ) {
        return;
    }
    let MailWorld {
        dns,
        sink,
        dir: _dir,
        env,
    } = mail_world(&[("MAILPUSH_CALLBACK_ALLOW_CIDRS", "127.0.0.0/8".to_string())]).await;
    let creds = create_account(&env, "aws").await;
    let server = ServerProcess::start("mailpush", &["serve"], &env).await;
    let (hook, posts) = receiver().await;

    run_script("create", &server, &creds, &hook).await;
    let tencent = ApiClient::new(&server.api_addr, &creds);
    let identity = tencent
        .call("GetEmailIdentity", &json!({ "EmailIdentity": "shop.example.com" }))
        .await;
    publish_records(&dns, &identity, "shop.example.com");
    let secret = tencent.call("GetCallbackConfig", &json!({})).await["CallbackSecret"]
        .as_str()
        .expect("CallbackSecret")
        .to_string();
    sink.set_reply("gone@example.org", SinkReply::reply(550, "5.1.1 no such user here"));

    let v = run_script("sets", &server, &creds, &hook).await;
    assert_eq!(v["verified"], true, "{v}");
    assert_eq!(v["set_again"], json!(["AlreadyExistsException", 400]), "{v}");
    assert_eq!(v["bad_name"], json!(["BadRequestException", 400]), "{v}");
    assert_eq!(v["set_name"], "marketing", "{v}");
    assert_eq!(v["unknown_set"], json!(["NotFoundException", 404]), "{v}");
    assert_eq!(v["sets"], json!(["marketing", "temp"]), "{v}");
    assert_eq!(v["deleted_set"], json!(["NotFoundException", 404]), "{v}");
    assert_eq!(v["delete_again"], json!(["NotFoundException", 404]), "{v}");
    assert_eq!(v["dest_again"], json!(["AlreadyExistsException", 400]), "{v}");
    assert_eq!(v["dest_private"], json!(["BadRequestException", 400]), "{v}");
    assert_eq!(v["dest_arn"], json!(["BadRequestException", 400]), "{v}");
    assert_eq!(v["dest_bad_type"], json!(["BadRequestException", 400]), "{v}");
    assert_eq!(v["dest_unknown_set"], json!(["NotFoundException", 404]), "{v}");
    assert_eq!(
        v["dests"],
        json!([
            ["hook", true, ["DELIVERY", "BOUNCE"], true],
            ["off", false, ["OPEN", "CLICK"], true]
        ]),
        "{v}"
    );
    assert_eq!(v["delete_dest_again"], json!(["NotFoundException", 404]), "{v}");
    assert_eq!(v["update_missing"], json!(["NotFoundException", 404]), "{v}");
    assert_eq!(v["send_unknown_set"], json!(["NotFoundException", 404]), "{v}");
    assert_eq!(v["bad_tag"], json!(["BadRequestException", 400]), "{v}");
    let delivered_id = v["delivered_id"].as_str().expect("id").to_string();
    let bounced_id = v["bounced_id"].as_str().expect("id").to_string();

    // The DELIVERY of the one and the BOUNCE of the other, each signed.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    let events = loop {
        let events: Vec<Value> = posts
            .lock()
            .unwrap()
            .iter()
            .map(|(headers, body)| {
                let h = |n: &str| {
                    headers
                        .iter()
                        .find(|(k, _)| k == n)
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default()
                };
                let ts: i64 = h("x-mailpush-timestamp").parse().expect("timestamp");
                assert!(
                    mailpush_webhook::verify(secret.as_bytes(), ts, body, &h("x-mailpush-signature")),
                    "the signature verifies"
                );
                serde_json::from_slice(body).expect("json")
            })
            .collect();
        let has = |t: &str, id: &str| {
            events
                .iter()
                .any(|e| e["eventType"] == t && e["mail"]["messageId"] == id)
        };
        if has("Delivery", &delivered_id) && has("Bounce", &bounced_id) {
            break events;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the events never arrived: {events:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    for e in &events {
        assert_eq!(e["mail"]["tags"]["campaign"], json!(["spring"]), "{e}");
        assert_eq!(e["mail"]["tags"]["batch"], json!(["b-1"]), "{e}");
        assert_eq!(e["mail"]["tags"]["ses:configuration-set"], json!(["marketing"]), "{e}");
        assert_eq!(e["mail"]["source"], "noreply@shop.example.com", "{e}");
        assert!(
            e["eventType"] == "Delivery" || e["eventType"] == "Bounce",
            "only the matching types: {e}"
        );
    }
    let delivery = events.iter().find(|e| e["eventType"] == "Delivery").expect("delivery");
    assert_eq!(
        delivery["mail"]["destination"],
        json!(["reader@example.org"]),
        "{delivery}"
    );
    assert_eq!(
        delivery["delivery"]["recipients"],
        json!(["reader@example.org"]),
        "{delivery}"
    );
    let bounce = events.iter().find(|e| e["eventType"] == "Bounce").expect("bounce");
    assert_eq!(bounce["bounce"]["bounceType"], "Permanent", "{bounce}");
    assert_eq!(
        bounce["bounce"]["bouncedRecipients"][0]["emailAddress"], "gone@example.org",
        "{bounce}"
    );
    server.terminate().await;
}
