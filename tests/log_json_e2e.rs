//! Structured logs: with `log_format = "json"` every line on stderr is a JSON object, an API request gives one
//! record carrying the RequestId the client got (with the action, account and code), and a delivery attempt
//! one record with the message id, receiving domain, MX, TLS, reply and duration.

use mailpush_suite::*;
use mailpush_testkit::{DnsAuthority, SinkMx};
use serde_json::{Value, json};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_and_delivery_attempts_are_logged_as_json_records() {
    let dns = DnsAuthority::start().await.expect("dns");
    let sink = SinkMx::start_default().await.expect("sink");
    dns.add_mx("example.org", 10, "mx.example.org");
    dns.add_a("mx.example.org", std::net::Ipv4Addr::LOCALHOST);
    let dir = temp_dir();
    let env = base_env(
        dir.path(),
        &[
            ("MAILPUSH_DNS_SERVERS", dns.addr().to_string()),
            ("MAILPUSH_DELIVERY_PORT", sink.addr().port().to_string()),
            ("MAILPUSH_LOG", "info".to_string()),
            ("MAILPUSH_LOG_FORMAT", "json".to_string()),
        ],
    );
    let creds = create_account(&env, "logs").await;
    let mut child = tokio::process::Command::new(bin_path("mailpush"))
        .arg("serve")
        .envs(&env)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn mailpush serve");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let addr = tokio::time::timeout(Duration::from_secs(60), async {
        while let Ok(Some(line)) = stdout.next_line().await {
            if let Some(a) = line.split("listening on http://").nth(1) {
                return a.trim().to_string();
            }
        }
        panic!("no API address announced");
    })
    .await
    .expect("started");
    // Collect stderr as it comes.
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    tokio::spawn(async move {
        while let Ok(Some(line)) = stderr.next_line().await {
            let _ = tx.send(line);
        }
    });

    let client = ApiClient::new(&addr, &creds);
    verified_sender(&client, &dns, "news@shop.example.com").await;
    let sent = client
        .call(
            "SendEmail",
            &json!({
                "FromEmailAddress": "news@shop.example.com",
                "Destination": ["ann@example.org"],
                "Subject": "logs",
                "Simple": { "Text": b64(b"hello") },
            }),
        )
        .await;
    let request_id = sent["RequestId"].as_str().expect("RequestId").to_string();
    let message_id = sent["MessageId"].as_str().expect("MessageId").to_string();
    sink.wait_for_messages(1, Duration::from_secs(20))
        .await
        .expect("delivered");

    let (mut request, mut attempt) = (None, None);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while request.is_none() || attempt.is_none() {
        let line = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .expect("the records arrive")
            .expect("stderr open");
        let record: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        if record["request_id"] == request_id.as_str() {
            request = Some(record);
        } else if record["message"] == "delivery attempt" && record["message_id"] == message_id.as_str() {
            attempt = Some(record);
        }
    }
    let request = request.expect("request record");
    assert_eq!(request["target"], "mailpush::api", "{request}");
    assert_eq!(request["action"], "SendEmail", "{request}");
    assert_eq!(request["account"], "logs", "{request}");
    assert_eq!(request["code"], "Success", "{request}");
    assert!(request["duration_ms"].is_number(), "{request}");
    let attempt = attempt.expect("attempt record");
    assert_eq!(attempt["domain"], "example.org", "{attempt}");
    assert_eq!(attempt["outcome"], "delivered", "{attempt}");
    assert!(
        attempt["mx"].as_str().is_some_and(|m| m.contains("mx.example.org")),
        "{attempt}"
    );
    assert!(
        attempt["reply"].as_str().is_some_and(|r| r.starts_with("250")),
        "{attempt}"
    );
    assert!(attempt["tls"].is_boolean(), "{attempt}");
    assert!(attempt["duration_ms"].is_u64(), "{attempt}");
    let _ = child.kill().await;
}
