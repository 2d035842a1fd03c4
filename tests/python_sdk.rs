//! The official `tencentcloud-sdk-python-ses` client talks to mailpush unchanged.
//! Skipped (with a note) when the SDK is not installed, unless MAILPUSH_REQUIRE_PYTHON_SDK=1 (CI sets it).

use mailpush_suite::*;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_python_sdk_sends_and_reads_status() {
    if !sdk_installed(
        "python3",
        &["-c", "import tencentcloud.ses.v20201002"],
        None,
        "MAILPUSH_REQUIRE_PYTHON_SDK",
        "pip install tencentcloud-sdk-python-ses",
    ) {
        return;
    }
    let MailWorld {
        dns,
        sink,
        dir: _dir,
        env,
    } = mail_world(&[]).await;
    let creds = create_account(&env, "sdk").await;
    let server = ServerProcess::start("mailpush", &["serve"], &env).await;
    verified_sender(
        &ApiClient::new(&server.api_addr, &creds),
        &dns,
        "noreply@shop.example.com",
    )
    .await;
    let sdk_dir = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sdk"));
    let v = run_sdk_script("python3", &["send_with_sdk.py"], sdk_dir, &server.api_addr, &creds, &[]).await;
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
