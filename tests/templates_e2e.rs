//! Templates end to end through the real `mailpush serve`: the five template actions, the automatic review
//! and the operator's manual queue (CLI), and SendEmail with `Template` rendered into what the MX receives.

use mailpush_suite::*;
use mailpush_testkit::{DnsAuthority, SinkMx};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::time::Duration;

struct World {
    _dir: tempfile::TempDir,
    _dns: DnsAuthority,
    sink: SinkMx,
    _server: ServerProcess,
    client: ApiClient,
    env: HashMap<String, String>,
}

/// An account `shop` WITHOUT the Simple-content permission, and `mailpush serve` with `extra` settings.
async fn world(extra: &[(&str, String)]) -> World {
    let dns = DnsAuthority::start().await.expect("dns");
    let sink = SinkMx::start_default().await.expect("sink");
    dns.add_mx("example.org", 10, "mx.example.org");
    dns.add_a("mx.example.org", Ipv4Addr::LOCALHOST);
    let dir = temp_dir();
    let mut vars = vec![
        ("MAILPUSH_DNS_SERVERS", dns.addr().to_string()),
        ("MAILPUSH_DELIVERY_PORT", sink.addr().port().to_string()),
    ];
    vars.extend(extra.iter().cloned());
    let env = base_env(dir.path(), &vars);
    let creds = create_account_with(&env, "shop", &[]).await;
    let server = ServerProcess::start("mailpush", &["serve"], &env).await;
    let client = ApiClient::new(&server.api_addr, &creds);
    // SendEmail requires a created sender address in a verified domain: set it up as a customer would.
    verified_sender(&client, &dns, "noreply@shop.example.com").await;
    World {
        _dir: dir,
        _dns: dns,
        sink,
        _server: server,
        client,
        env,
    }
}

/// Passes every review rule as a notification: ~40 words of text around 2 placeholders.
const GOOD_HTML: &str = "<p>Dear {{name}}, your order {{order}} has shipped. It left our warehouse this morning and should arrive within three working days. Thank you for shopping with us, and have a pleasant day.</p>";
const GOOD_TEXT: &str = "Dear {{name}}, your order {{order}} has shipped. It left our warehouse this morning and should arrive within three working days. Thank you for shopping with us.";

fn content(html: &str, text: &str) -> Value {
    json!({ "Html": b64(html.as_bytes()), "Text": b64(text.as_bytes()) })
}

fn code(resp: &Value) -> String {
    ApiClient::error_code(resp).unwrap_or_else(|| "OK".into())
}

async fn ok(client: &ApiClient, action: &str, params: Value) -> Value {
    let r = client.call(action, &params).await;
    assert!(r.get("Error").is_none(), "{action} {params}: {r}");
    r
}

async fn create(client: &ApiClient, name: &str, html: &str, text: &str) -> i64 {
    let r = ok(
        client,
        "CreateEmailTemplate",
        json!({ "TemplateName": name, "TemplateContent": content(html, text) }),
    )
    .await;
    r["TemplateID"].as_i64().expect("TemplateID")
}

async fn status(client: &ApiClient, id: i64) -> i64 {
    let r = ok(client, "GetEmailTemplate", json!({ "TemplateID": id })).await;
    r["TemplateStatus"].as_i64().expect("TemplateStatus")
}

async fn metadata(client: &ApiClient, id: i64) -> Value {
    let r = ok(client, "ListEmailTemplates", json!({ "Offset": 0, "Limit": 100 })).await;
    r["TemplatesMetadata"]
        .as_array()
        .and_then(|l| l.iter().find(|t| t["TemplateID"].as_i64() == Some(id)).cloned())
        .unwrap_or_else(|| panic!("template {id} not listed: {r}"))
}

async fn send(client: &ApiClient, subject: &str, id: i64, data: &str) -> Value {
    client
        .call(
            "SendEmail",
            &json!({
                "FromEmailAddress": "Shop <noreply@shop.example.com>",
                "Destination": ["alice@example.org"],
                "Subject": subject,
                "Template": { "TemplateID": id, "TemplateData": data },
            }),
        )
        .await
}

const DATA: &str = r#"{"name":"张三","order":"A-1001"}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_review_actions_rendering_and_refusals() {
    let w = world(&[("MAILPUSH_TEMPLATE_MAX_PER_ACCOUNT", "4".into())]).await;
    let c = &w.client;

    // Without the permission, custom content is refused; templates are the way to send.
    let r = c
        .call(
            "SendEmail",
            &json!({ "FromEmailAddress": "noreply@shop.example.com", "Destination": ["alice@example.org"],
                     "Subject": "Hi", "Simple": content("<p>hi</p>", "hi") }),
        )
        .await;
    assert_eq!(code(&r), "FailedOperation.WithOutPermission");

    // Create → approved at once; Get returns the content as sent.
    let good = create(c, "订单发货 shipped", GOOD_HTML, GOOD_TEXT).await;
    let got = ok(c, "GetEmailTemplate", json!({ "TemplateID": good })).await;
    assert_eq!(got["TemplateStatus"], 0);
    assert_eq!(got["TemplateName"], "订单发货 shipped");
    assert_eq!(got["TemplateContent"]["Html"], b64(GOOD_HTML.as_bytes()));
    assert_eq!(got["TemplateContent"]["Text"], b64(GOOD_TEXT.as_bytes()));
    let meta = metadata(c, good).await;
    assert_eq!(meta["TemplateStatus"], 0);
    assert_eq!(meta["ReviewReason"], "");
    assert!(meta["CreatedTimestamp"].as_i64().unwrap_or(0) > 1_700_000_000);

    // A template failing two rules is rejected with both reasons, and cannot send.
    let bad = create(
        c,
        "bad",
        "<p>Hi {{name}}, see <a href=\"https://shop.example.com/deal\">this</a></p>",
        "",
    )
    .await;
    let meta = metadata(c, bad).await;
    assert_eq!(meta["TemplateStatus"], 2);
    let reason = meta["ReviewReason"].as_str().unwrap_or("");
    assert!(reason.contains("min_text_length"), "{reason}");
    assert!(reason.contains("link_not_allowed"), "{reason}");
    assert_eq!(
        code(&send(c, "Hi", bad, DATA).await),
        "OperationDenied.TemplateStatusError"
    );

    // Wire-level refusals of the template actions.
    for (params, want) in [
        (
            json!({ "TemplateName": " ", "TemplateContent": content(GOOD_HTML, "") }),
            "InvalidParameterValue.TemplateNameIsNULL",
        ),
        (
            json!({ "TemplateName": "x".repeat(65), "TemplateContent": content(GOOD_HTML, "") }),
            "InvalidParameterValue.TemplateNameIllegal",
        ),
        (
            json!({ "TemplateName": "n" }),
            "InvalidParameterValue.TemplateContentIsNULL",
        ),
        (
            json!({ "TemplateName": "n", "TemplateContent": { "Html": "***" } }),
            "InvalidParameterValue.TemplateContentIsWrong",
        ),
        (
            json!({ "TemplateName": "n", "TemplateContent": content(GOOD_HTML, ""), "TemplateCategory": "spam" }),
            "InvalidParameterValue",
        ),
    ] {
        assert_eq!(code(&c.call("CreateEmailTemplate", &params).await), want, "{params}");
    }
    let r = c
        .call("ListEmailTemplates", &json!({ "Offset": 0, "Limit": 101 }))
        .await;
    assert_eq!(code(&r), "FailedOperation.InvalidLimit");

    // Rendering: the Subject's variables too; what the MX receives is filled in.
    let r = send(c, "Order {{order}} for {{name}}", good, DATA).await;
    assert!(r.get("Error").is_none(), "{r}");
    let msgs = w
        .sink
        .wait_for_messages(1, Duration::from_secs(20))
        .await
        .expect("delivered");
    let parsed = mail_parser::MessageParser::default()
        .parse(&msgs[0].data)
        .expect("parse");
    assert_eq!(parsed.subject(), Some("Order A-1001 for 张三"));
    let html = parsed.body_html(0).expect("html").to_string();
    assert!(html.contains("Dear 张三, your order A-1001 has shipped"), "{html}");
    let text = parsed.body_text(0).expect("text").to_string();
    assert!(text.contains("Dear 张三, your order A-1001"), "{text}");

    // TemplateData refusals: a missing variable is an error, never an empty string.
    for (subject, data, want) in [
        ("Hi", r#"{"name":"张三"}"#, "InvalidParameterValue.TemplateNotMatchData"),
        ("Hi {{coupon}}", DATA, "InvalidParameterValue.TemplateNotMatchData"),
        ("Hi", "{not json", "FailedOperation.WrongContentJson"),
        (
            "Hi",
            r#"{"name":"<script>alert(1)</script>","order":"1"}"#,
            "InvalidParameterValue.InValidTemplateData",
        ),
        (
            "Hi",
            r#"{"name":null,"order":"1"}"#,
            "InvalidParameterValue.InValidTemplateData",
        ),
    ] {
        assert_eq!(code(&send(c, subject, good, data).await), want, "{subject} {data}");
    }
    let long = format!(r#"{{"name":"{}","order":"1"}}"#, "x".repeat(9000));
    assert_eq!(
        code(&send(c, "Hi", good, &long).await),
        "InvalidParameterValue.TemplateDataLenLimit"
    );
    let long_subject = format!(r#"{{"name":"{}","order":"1"}}"#, "x".repeat(995));
    assert_eq!(
        code(&send(c, "Hello {{name}}", good, &long_subject).await),
        "InvalidParameterValue.SubjectLengthError",
        "the Subject is checked after rendering"
    );
    assert_eq!(
        code(&send(c, "Hi", 999_999, DATA).await),
        "FailedOperation.InvalidTemplateID"
    );

    // Editing an approved template re-reviews it (auto mode): bad content → rejected and unusable…
    ok(
        c,
        "UpdateEmailTemplate",
        json!({ "TemplateID": good, "TemplateName": "订单发货 shipped", "TemplateContent": content("<p>{{name}}</p>", "") }),
    )
    .await;
    assert_eq!(status(c, good).await, 2);
    assert_eq!(
        code(&send(c, "Hi", good, DATA).await),
        "OperationDenied.TemplateStatusError"
    );
    // …good content again → approved, and the new version is what renders (not a cached old one).
    let v3 = GOOD_HTML.replace("has shipped", "is on its way");
    ok(
        c,
        "UpdateEmailTemplate",
        json!({ "TemplateID": good, "TemplateName": "订单发货 shipped", "TemplateContent": content(&v3, GOOD_TEXT) }),
    )
    .await;
    assert_eq!(status(c, good).await, 0);
    let r = send(c, "Hi", good, DATA).await;
    assert!(r.get("Error").is_none(), "{r}");
    let msgs = w
        .sink
        .wait_for_messages(2, Duration::from_secs(20))
        .await
        .expect("delivered");
    let parsed = mail_parser::MessageParser::default()
        .parse(&msgs[1].data)
        .expect("parse");
    let html = parsed.body_html(0).expect("html").to_string();
    assert!(html.contains("A-1001 is on its way"), "{html}");

    // Links need the account permission, granted by the operator.
    let link_html = GOOD_HTML.replace(
        "</p>",
        " <a href=\"https://shop.example.com/orders\">Your orders</a></p>",
    );
    let linked = create(c, "with link", &link_html, GOOD_TEXT).await;
    assert_eq!(status(c, linked).await, 2);
    mailpush_cli(&w.env, &["account", "set", "shop", "--allow-links", "true"]).await;
    ok(
        c,
        "UpdateEmailTemplate",
        json!({ "TemplateID": linked, "TemplateContent": content(&link_html, GOOD_TEXT) }),
    )
    .await;
    assert_eq!(status(c, linked).await, 0);

    // Per-account limit (4): good, bad, linked + one more; the fifth is refused.
    create(c, "fourth", GOOD_HTML, GOOD_TEXT).await;
    let r = c
        .call(
            "CreateEmailTemplate",
            &json!({ "TemplateName": "fifth", "TemplateContent": content(GOOD_HTML, GOOD_TEXT) }),
        )
        .await;
    assert_eq!(code(&r), "FailedOperation.ExceedTemplateLimit");
    let r = ok(c, "ListEmailTemplates", json!({ "Offset": 0, "Limit": 2 })).await;
    assert_eq!(r["TotalCount"], 4);
    assert_eq!(r["TemplatesMetadata"].as_array().map(Vec::len), Some(2));

    // Delete.
    ok(c, "DeleteEmailTemplate", json!({ "TemplateID": bad })).await;
    for action in ["GetEmailTemplate", "DeleteEmailTemplate"] {
        let r = c.call(action, &json!({ "TemplateID": bad })).await;
        assert_eq!(code(&r), "InvalidParameterValue.TemplateNotExist", "{action}");
    }
    assert_eq!(
        code(&send(c, "Hi", bad, DATA).await),
        "FailedOperation.InvalidTemplateID"
    );

    // Another account sees none of it.
    let other = create_account_with(&w.env, "other", &[]).await;
    let oc = ApiClient::new(&c.addr, &other);
    let r = oc.call("GetEmailTemplate", &json!({ "TemplateID": good })).await;
    assert_eq!(code(&r), "InvalidParameterValue.TemplateNotExist");
    assert_eq!(
        code(&send(&oc, "Hi", good, DATA).await),
        "FailedOperation.InvalidTemplateID"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn script_in_template_data_is_escaped_in_html_when_allowed() {
    let w = world(&[("MAILPUSH_TEMPLATE_DATA_ALLOW_HTML", "true".into())]).await;
    let good = create(&w.client, "shipped", GOOD_HTML, GOOD_TEXT).await;
    let r = send(
        &w.client,
        "Order {{order}}",
        good,
        r#"{"name":"<script>alert(1)</script>","order":"A&B"}"#,
    )
    .await;
    assert!(r.get("Error").is_none(), "{r}");
    let msgs = w
        .sink
        .wait_for_messages(1, Duration::from_secs(20))
        .await
        .expect("delivered");
    let parsed = mail_parser::MessageParser::default()
        .parse(&msgs[0].data)
        .expect("parse");
    let html = parsed.body_html(0).expect("html").to_string();
    assert!(html.contains("Dear &lt;script&gt;alert(1)&lt;/script&gt;"), "{html}");
    assert!(!html.contains("<script>"), "{html}");
    assert!(html.contains("A&amp;B"), "{html}");
    // Text and Subject are not HTML: verbatim.
    let text = parsed.body_text(0).expect("text").to_string();
    assert!(text.contains("Dear <script>alert(1)</script>"), "{text}");
    assert_eq!(parsed.subject(), Some("Order A&B"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_review_queue_through_the_cli() {
    let w = world(&[("MAILPUSH_TEMPLATE_REVIEW", "manual".into())]).await;
    let c = &w.client;
    let id = create(c, "shipped", GOOD_HTML, GOOD_TEXT).await;
    // Passed the automatic review, waits for the operator: cannot send yet.
    assert_eq!(status(c, id).await, 1);
    assert_eq!(
        code(&send(c, "Hi", id, DATA).await),
        "OperationDenied.TemplateStatusError"
    );
    // A template failing the automatic review is rejected at once, even in manual mode.
    let bad = create(c, "bad", "<p>{{name}}</p>", "").await;
    assert_eq!(status(c, bad).await, 2);

    let pending: Value =
        serde_json::from_str(&mailpush_cli(&w.env, &["template", "list", "--pending", "--json"]).await).expect("JSON");
    let ids: Vec<i64> = pending
        .as_array()
        .map(|l| l.iter().filter_map(|t| t["TemplateID"].as_i64()).collect())
        .unwrap_or_default();
    assert_eq!(ids, vec![id]);
    let shown = mailpush_cli(&w.env, &["template", "show", &id.to_string()]).await;
    assert!(shown.contains("version 1") && shown.contains("{{order}}"), "{shown}");

    mailpush_cli(&w.env, &["template", "approve", &id.to_string(), "--version", "1"]).await;
    assert_eq!(status(c, id).await, 0);
    let r = send(c, "Order {{order}}", id, DATA).await;
    assert!(r.get("Error").is_none(), "{r}");
    w.sink
        .wait_for_messages(1, Duration::from_secs(20))
        .await
        .expect("delivered");

    // Editing an approved template puts it back under review.
    ok(
        c,
        "UpdateEmailTemplate",
        json!({ "TemplateID": id, "TemplateName": "shipped v2", "TemplateContent": content(GOOD_HTML, GOOD_TEXT) }),
    )
    .await;
    assert_eq!(status(c, id).await, 1);
    assert_eq!(
        code(&send(c, "Hi", id, DATA).await),
        "OperationDenied.TemplateStatusError"
    );
    // Approving the version the operator saw earlier is refused: the content changed since.
    let stale = bin_output(&w.env, &["template", "approve", &id.to_string(), "--version", "1"]).await;
    assert!(!stale, "approving a stale version must fail");
    mailpush_cli(
        &w.env,
        &[
            "template",
            "reject",
            &id.to_string(),
            "--reason",
            "不允许的内容 / not allowed",
        ],
    )
    .await;
    let meta = metadata(c, id).await;
    assert_eq!(meta["TemplateStatus"], 2);
    assert_eq!(meta["ReviewReason"], "不允许的内容 / not allowed");
    assert_eq!(
        code(&send(c, "Hi", id, DATA).await),
        "OperationDenied.TemplateStatusError"
    );
    // A rejected template is not in the queue and cannot be approved without an edit.
    assert!(!bin_output(&w.env, &["template", "approve", &id.to_string()]).await);
    let pending = mailpush_cli(&w.env, &["template", "list", "--pending", "--json"]).await;
    assert_eq!(pending.trim(), "[]");
}

/// Whether `mailpush ARGS…` succeeded.
async fn bin_output(env: &HashMap<String, String>, args: &[&str]) -> bool {
    tokio::process::Command::new(bin_path("mailpush"))
        .args(args)
        .envs(env)
        .output()
        .await
        .map(|o| o.status.success())
        .unwrap_or(false)
}
