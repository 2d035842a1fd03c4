//! The AWS SES v2 API driven by boto3's `sesv2` client against a real `mailpush serve`, end to end with the
//! testkit DNS and sink: identity → records → verification → sends of every kind (Simple with attachment,
//! Template, Raw, bulk) → delivered with a DKIM signature three outside verifiers accept; a hard bounce → its
//! suppression-list entry; templates, the suppression list, the account and AWS-shaped errors. Skipped (with a
//! note) when boto3 is not installed, unless MAILPUSH_REQUIRE_BOTO3=1 (CI sets it). The AWS CLI (`aws sesv2`,
//! pip's `awscli`) does the same with identity → verification → `send-email`, under the same rule.

use mailpush_suite::*;
use mailpush_testkit::SinkReply;
use serde_json::json;
use std::time::Duration;

async fn run_script(step: &str, server: &ServerProcess, creds: &Credentials) -> serde_json::Value {
    let sdk_dir = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sdk"));
    run_sdk_script(
        "python3",
        &["sesv2_boto3.py", step],
        sdk_dir,
        &server.api_addr,
        creds,
        &[],
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boto3_sesv2_sends_through_mailpush_end_to_end() {
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
    } = mail_world(&[]).await;
    let creds = create_account(&env, "aws").await;
    let server = ServerProcess::start("mailpush", &["serve"], &env).await;

    let created = run_script("create", &server, &creds).await;
    assert_eq!(created["type"], "DOMAIN", "{created}");
    assert_eq!(created["verified"], false, "{created}");
    assert_eq!(created["dkim_status"], "PENDING", "{created}");
    assert!(!created["tokens"].as_array().expect("tokens").is_empty(), "{created}");
    assert_eq!(created["again"], json!(["AlreadyExistsException", 400]), "{created}");

    // The records to publish, as the Tencent API lists them for the same domain.
    let tencent = ApiClient::new(&server.api_addr, &creds);
    let identity = tencent
        .call("GetEmailIdentity", &json!({ "EmailIdentity": "shop.example.com" }))
        .await;
    publish_records(&dns, &identity, "shop.example.com");

    sink.set_reply("gone@example.org", SinkReply::reply(550, "5.1.1 no such user here"));
    let v = run_script("rest", &server, &creds).await;
    assert_eq!(v["verified"], true, "{v}");
    assert_eq!(v["verification_status"], "SUCCESS", "{v}");
    assert_eq!(v["dkim_status"], "SUCCESS", "{v}");
    assert_eq!(v["tags"], json!([{ "Key": "team", "Value": "growth" }]), "{v}");
    assert!(
        v["identities"]
            .as_array()
            .expect("list")
            .contains(&json!("shop.example.com")),
        "{v}"
    );
    assert_eq!(v["unknown_identity"], json!(["NotFoundException", 404]), "{v}");
    assert_eq!(v["bad_secret"], json!(["SignatureDoesNotMatch", 403]), "{v}");
    assert_eq!(v["sending_enabled"], true, "{v}");
    assert!(v["quota"]["Max24HourSend"].as_f64().is_some_and(|q| q > 0.0), "{v}");
    assert_eq!(v["template_again"], json!(["AlreadyExistsException", 400]), "{v}");
    assert_eq!(v["template_subject"], "Welcome, {{name}}", "{v}");
    assert_eq!(v["templates"], json!(["welcome"]), "{v}");
    assert_eq!(v["rendered_has_name"], true, "{v}");
    assert_eq!(v["bulk"], json!(["SUCCESS", "SUCCESS"]), "{v}");
    assert_eq!(v["unknown_template"], json!(["NotFoundException", 404]), "{v}");
    assert_eq!(v["unverified_sender"], json!(["MessageRejected", 400]), "{v}");
    assert_eq!(v["suppressed_reason"], "COMPLAINT", "{v}");
    assert_eq!(v["suppressed"], json!(["blocked@example.org"]), "{v}");
    let bounce_list = v["suppressed_bounce"].as_array().expect("list");
    assert!(
        !bounce_list.contains(&json!("blocked@example.org")),
        "the Reasons filter: {v}"
    );
    assert_eq!(
        v["bounced_suppressed"],
        json!(["gone@example.org"]),
        "a hard bounce is suppressed: {v}"
    );
    assert_eq!(v["bounced_reason"], "BOUNCE", "{v}");
    assert_eq!(v["suppressed_after_delete"], json!(["NotFoundException", 404]), "{v}");
    assert_eq!(v["bad_reason"], json!(["BadRequestException", 400]), "{v}");
    assert_eq!(v["template_after_delete"], json!(["NotFoundException", 404]), "{v}");
    assert_eq!(
        v["mail_from_default"]["MailFromDomain"], "bounce.shop.example.com",
        "{v}"
    );
    assert_eq!(v["mail_from_default"]["MailFromDomainStatus"], "SUCCESS", "{v}");
    assert_eq!(v["mail_from_custom"]["MailFromDomain"], "mail.shop.example.com", "{v}");
    assert_eq!(v["mail_from_custom"]["MailFromDomainStatus"], "PENDING", "{v}");
    assert_eq!(v["mail_from_outside"], json!(["BadRequestException", 400]), "{v}");
    assert_eq!(v["mail_from_back"], json!(["bounce.shop.example.com", true]), "{v}");

    // Simple, Template, Raw and two bulk entries: five mails, each DKIM-signed for shop.example.com.
    let msgs = sink
        .wait_for_messages(5, Duration::from_secs(20))
        .await
        .expect("delivered");
    let text: Vec<String> = msgs
        .iter()
        .map(|m| String::from_utf8_lossy(&m.data).into_owned())
        .collect();
    for subject in [
        "Simple from boto3",
        "Welcome, Bo",
        "Raw from boto3",
        "Welcome, Cy",
        "Welcome, all",
    ] {
        assert!(
            text.iter().any(|t| t.contains(&format!("Subject: {subject}"))),
            "no mail with Subject {subject}"
        );
    }
    let simple = text
        .iter()
        .find(|t| t.contains("Subject: Simple from boto3"))
        .expect("simple");
    assert!(simple.contains("note.txt"), "the attachment is in the mail");
    assert!(
        text.iter().all(|t| t.contains("d=shop.example.com")),
        "every mail is DKIM-signed"
    );
    let data: Vec<&[u8]> = msgs.iter().map(|m| m.data.as_slice()).collect();
    assert_dkim_verifies_everywhere(&dns, &data).await;
    server.terminate().await;
}

/// Runs `aws sesv2 ARGS… --endpoint-url http://API` as the account (its key through `AWS_ACCESS_KEY_ID` /
/// `AWS_SECRET_ACCESS_KEY`, nothing read from the user's AWS files, no instance metadata) and parses the JSON it
/// prints (`{}` when it prints nothing); a failing command fails the test with its stderr.
async fn aws_cli(
    server: &ServerProcess,
    creds: &Credentials,
    dir: &std::path::Path,
    args: &[&str],
) -> serde_json::Value {
    let endpoint = format!("http://{}", server.api_addr);
    let out = tokio::process::Command::new("aws")
        .arg("sesv2")
        .args(args)
        .args(["--endpoint-url", &endpoint, "--output", "json"])
        .env("AWS_ACCESS_KEY_ID", &creds.secret_id)
        .env("AWS_SECRET_ACCESS_KEY", &creds.secret_key)
        .env("AWS_DEFAULT_REGION", "eu-central-1")
        .env("AWS_CONFIG_FILE", dir.join("aws-config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", dir.join("aws-credentials"))
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN")
        .output()
        .await
        .expect("run aws");
    assert!(
        out.status.success(),
        "aws sesv2 {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    if out.stdout.iter().all(u8::is_ascii_whitespace) {
        return json!({});
    }
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "aws sesv2 {args:?} printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_cli_send_email_is_delivered() {
    if !sdk_installed(
        "aws",
        &["--version"],
        None,
        "MAILPUSH_REQUIRE_BOTO3",
        "pip install awscli",
    ) {
        return;
    }
    let MailWorld { dns, sink, dir, env } = mail_world(&[]).await;
    let creds = create_account(&env, "cli").await;
    let server = ServerProcess::start("mailpush", &["serve"], &env).await;
    let created = aws_cli(
        &server,
        &creds,
        dir.path(),
        &["create-email-identity", "--email-identity", "mail.example.com"],
    )
    .await;
    assert_eq!(created["IdentityType"], "DOMAIN", "{created}");
    let tencent = ApiClient::new(&server.api_addr, &creds);
    let identity = tencent
        .call("GetEmailIdentity", &json!({ "EmailIdentity": "mail.example.com" }))
        .await;
    publish_records(&dns, &identity, "mail.example.com");
    let got = aws_cli(
        &server,
        &creds,
        dir.path(),
        &["get-email-identity", "--email-identity", "mail.example.com"],
    )
    .await;
    assert_eq!(got["VerifiedForSendingStatus"], true, "{got}");

    // The command README shows, word for word.
    let sent = aws_cli(
        &server,
        &creds,
        dir.path(),
        &[
            "send-email",
            "--from-email-address",
            "noreply@mail.example.com",
            "--destination",
            "ToAddresses=alice@example.org",
            "--content",
            r#"Simple={Subject={Data="Your receipt"},Body={Text={Data="Thanks for your order"}}}"#,
        ],
    )
    .await;
    let id = sent["MessageId"].as_str().expect("MessageId").to_string();
    let msgs = sink
        .wait_for_messages(1, Duration::from_secs(20))
        .await
        .expect("delivered");
    let mail = String::from_utf8_lossy(&msgs[0].data).into_owned();
    assert!(mail.contains("Subject: Your receipt"), "{mail}");
    assert!(mail.contains("Thanks for your order"), "{mail}");
    assert!(mail.contains("d=mail.example.com"), "DKIM-signed: {mail}");
    assert_eq!(msgs[0].rcpt_to, ["alice@example.org"]);
    // The CLI's MessageId is mailpush's: the Tencent API reports the delivery under it.
    let status = tencent
        .call(
            "GetSendEmailStatus",
            &json!({ "MessageId": id, "RequestDate": today(), "Offset": 0, "Limit": 10 }),
        )
        .await;
    assert!(status.get("Error").is_none(), "{status}");
    assert_eq!(
        status["EmailStatusList"][0]["ToEmailAddress"], "alice@example.org",
        "{status}"
    );
    server.terminate().await;
}
