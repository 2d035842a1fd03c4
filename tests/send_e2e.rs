//! End to end through the real `mailpush serve` process: TC3-signed HTTP in, SMTP out to the testkit sink
//! found through the testkit DNS authority.

use mail_parser::MimeHeaders;
use mailpush_suite::outcomes::{status_of, wait_status};
use mailpush_suite::*;
use mailpush_testkit::{DnsAuthority, SinkMx, SinkReply};
use serde_json::{Value, json};
use std::net::Ipv4Addr;
use std::time::Duration;

struct World {
    _dir: tempfile::TempDir,
    dns: DnsAuthority,
    sink: SinkMx,
    server: ServerProcess,
    client: ApiClient,
    env: std::collections::HashMap<String, String>,
}

/// DNS: example.org and example.net have their MX on 127.0.0.1 where the sink listens.
async fn world(extra: &[(&str, String)]) -> World {
    let dns = DnsAuthority::start().await.expect("dns");
    let sink = SinkMx::start_default().await.expect("sink");
    for domain in ["example.org", "example.net"] {
        dns.add_mx(domain, 10, &format!("mx.{domain}"));
        dns.add_a(&format!("mx.{domain}"), Ipv4Addr::LOCALHOST);
    }
    let dir = temp_dir();
    let mut vars = vec![
        ("MAILPUSH_DNS_SERVERS", dns.addr().to_string()),
        ("MAILPUSH_DELIVERY_PORT", sink.addr().port().to_string()),
        ("MAILPUSH_RETRY_SCHEDULE_SECS", "1".to_string()),
    ];
    vars.extend(extra.iter().cloned());
    let env = base_env(dir.path(), &vars);
    let creds = create_account(&env, "shop").await;
    let server = ServerProcess::start("mailpush", &["serve"], &env).await;
    let client = ApiClient::new(&server.api_addr, &creds);
    verified_sender(&client, &dns, "noreply@shop.example.com").await;
    World {
        _dir: dir,
        dns,
        sink,
        server,
        client,
        env,
    }
}

fn simple(html: &str, text: &str) -> Value {
    json!({ "Html": b64(html.as_bytes()), "Text": b64(text.as_bytes()) })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mail_reaches_the_mx_with_every_header_and_part() {
    let w = world(&[]).await;
    let attachment = b"%PDF-1.4 receipt bytes \x00\x01\x02";
    let resp = w
        .client
        .call(
            "SendEmail",
            &json!({
                "FromEmailAddress": "Shop Team <noreply@shop.example.com>",
                "Destination": ["alice@example.org"],
                "Cc": ["carol@example.net"],
                "Bcc": ["bob@example.org"],
                "ReplyToAddresses": "support@shop.example.com",
                "Subject": "Your receipt 收据 #42",
                "Simple": simple("<p>Thanks for your order</p>", "Thanks for your order"),
                "Attachments": [{ "FileName": "receipt.pdf", "Content": b64(attachment) }],
                "TriggerType": 1,
            }),
        )
        .await;
    assert!(resp.get("Error").is_none(), "{resp}");
    let id = resp["MessageId"].as_str().expect("MessageId").to_string();

    // alice + bob share example.org (one transaction); carol is on example.net.
    let msgs = w
        .sink
        .wait_for_messages(2, Duration::from_secs(20))
        .await
        .expect("two transactions");
    let mut rcpts: Vec<String> = msgs.iter().flat_map(|m| m.rcpt_to.clone()).collect();
    rcpts.sort();
    assert_eq!(rcpts, ["alice@example.org", "bob@example.org", "carol@example.net"]);
    assert_dkim_verifies_everywhere(&w.dns, &msgs.iter().map(|m| m.data.as_slice()).collect::<Vec<_>>()).await;
    for m in &msgs {
        // Traced where it entered (RFC 5321 §4.4): the API, under the MessageId.
        let text = m.text();
        assert!(text.contains("Received: by "), "{text}");
        assert!(text.contains(&format!("(mailpush) with HTTP id {id};")), "{text}");
        // The VERP return path at the sending domain's return-path domain; both domain groups of the message
        // share it.
        assert!(
            m.mail_from.starts_with("mpb-") && m.mail_from.ends_with("@bounce.shop.example.com"),
            "{}",
            m.mail_from
        );
        assert_eq!(m.mail_from, msgs[0].mail_from);
        let raw = String::from_utf8_lossy(&m.data);
        assert!(
            !raw.to_ascii_lowercase().contains("bob@example.org"),
            "Bcc must not appear in any header:\n{raw}"
        );
        let p = mail_parser::MessageParser::default().parse(&m.data).expect("parse");
        assert_eq!(p.subject(), Some("Your receipt 收据 #42"));
        let from = p.from().and_then(|a| a.first()).expect("From");
        assert_eq!(from.name(), Some("Shop Team"));
        assert_eq!(from.address(), Some("noreply@shop.example.com"));
        assert_eq!(
            p.to().and_then(|a| a.first()).and_then(|a| a.address()),
            Some("alice@example.org")
        );
        assert_eq!(
            p.cc().and_then(|a| a.first()).and_then(|a| a.address()),
            Some("carol@example.net")
        );
        assert_eq!(
            p.reply_to().and_then(|a| a.first()).and_then(|a| a.address()),
            Some("support@shop.example.com")
        );
        assert!(p.body_html(0).expect("html").contains("Thanks for your order"));
        assert!(p.body_text(0).expect("text").contains("Thanks for your order"));
        let att = p.attachments().next().expect("attachment");
        assert_eq!(att.attachment_name(), Some("receipt.pdf"));
        assert_eq!(att.contents(), attachment);
        let ct = att.content_type().expect("content type");
        assert_eq!((ct.ctype(), ct.subtype()), ("application", Some("pdf")));
        assert!(p.message_id().is_some_and(|m| m.ends_with("@shop.example.com")));
    }
    let rows = wait_status(&w.client, &id, &[1], Duration::from_secs(20)).await;
    assert_eq!(rows.len(), 3);
    for r in &rows {
        assert_eq!(r["MessageId"], id.as_str());
        assert_eq!(r["SendStatus"], 0);
        assert_eq!(r["FromEmailAddress"], "noreply@shop.example.com");
        assert!(r["DeliverTime"].as_i64().unwrap() >= r["RequestTime"].as_i64().unwrap());
        assert!(r["RequestTime"].as_i64().unwrap() > 0);
    }
    // Filter by recipient.
    let r = w
        .client
        .call(
            "GetSendEmailStatus",
            &json!({ "RequestDate": today(), "ToEmailAddress": "carol@example.net", "Limit": 10 }),
        )
        .await;
    assert_eq!(r["EmailStatusList"].as_array().unwrap().len(), 1);
    w.server.terminate().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_451_is_retried_and_a_550_is_final() {
    let w = world(&[]).await;
    w.sink.set_reply_sequence(
        "later@example.org",
        vec![
            SinkReply::Reply {
                code: 451,
                text: "4.3.0 greylisted, try again".into(),
            },
            SinkReply::Accept,
        ],
    );
    w.sink.set_reply(
        "nobody@example.org",
        SinkReply::Reply {
            code: 550,
            text: "5.1.1 no such user here".into(),
        },
    );
    let send = |to: &'static str| {
        let c = w.client.clone();
        async move {
            let r = c
                .call(
                    "SendEmail",
                    &json!({ "FromEmailAddress": "noreply@shop.example.com", "Destination": [to], "Subject": "Hi", "Simple": simple("<b>hi</b>", "hi") }),
                )
                .await;
            r["MessageId"].as_str().unwrap_or_else(|| panic!("{r}")).to_string()
        }
    };
    let later = send("later@example.org").await;
    let nobody = send("nobody@example.org").await;

    // The greylisted one is first deferred (8) with the remote's reply, then delivered (1).
    let deferred = wait_status(&w.client, &later, &[8, 1], Duration::from_secs(20)).await;
    let delivered = wait_status(&w.client, &later, &[1], Duration::from_secs(30)).await;
    assert_eq!(delivered[0]["DeliverStatus"], 1);
    if deferred[0]["DeliverStatus"] == 8 {
        assert!(
            deferred[0]["DeliverMessage"].as_str().unwrap().contains("451"),
            "{deferred:?}"
        );
    }
    assert_eq!(
        w.sink.rcpt_attempts("later@example.org"),
        2,
        "one refusal, one acceptance"
    );
    assert_eq!(w.sink.messages_for("later@example.org").len(), 1);

    let rejected = wait_status(&w.client, &nobody, &[3], Duration::from_secs(20)).await;
    let msg = rejected[0]["DeliverMessage"].as_str().unwrap();
    assert!(msg.contains("550") && msg.contains("no such user here"), "{msg}");
    // A 5xx is final: no retry even after the retry interval.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(w.sink.rcpt_attempts("nobody@example.org"), 1);
    w.server.terminate().await;
}

/// Sends only the head of a request whose `Content-Length` is 1 GB, then reads what the server answers.
async fn declare_huge_body(addr: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let head = format!(
        "POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        1u64 << 30
    );
    tcp.write_all(head.as_bytes()).await.expect("write");
    let mut reply = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut reply))
        .await
        .expect("answered without waiting for the body")
        .expect("read");
    String::from_utf8_lossy(&reply).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_their_codes_and_the_server_keeps_serving() {
    let w = world(&[]).await;
    let c = &w.client;
    let good = json!({ "FromEmailAddress": "noreply@shop.example.com", "Destination": ["alice@example.org"], "Subject": "Hi", "Simple": simple("<b>hi</b>", "hi") });
    let body = good.to_string().into_bytes();

    let r = c.call_raw("SendEmail", body.clone(), unix_now(), "not-the-key").await;
    assert_eq!(
        ApiClient::error_code(&r).as_deref(),
        Some("AuthFailure.SignatureFailure")
    );

    let mut stranger = c.clone();
    stranger.secret_id = "AKIDdoesnotexist0000000000000000000".into();
    let r = stranger.call("SendEmail", &good).await;
    assert_eq!(
        ApiClient::error_code(&r).as_deref(),
        Some("AuthFailure.SecretIdNotFound")
    );

    let r = c
        .call_raw("SendEmail", body.clone(), unix_now() - 600, &c.secret_key)
        .await;
    assert_eq!(
        ApiClient::error_code(&r).as_deref(),
        Some("AuthFailure.SignatureExpire")
    );

    let r = c.call("SendEmails", &good).await;
    assert_eq!(ApiClient::error_code(&r).as_deref(), Some("InvalidAction"));

    let r = c
        .call_raw(
            "SendEmail",
            b"{\"FromEmailAddress\": ".to_vec(),
            unix_now(),
            &c.secret_key,
        )
        .await;
    assert_eq!(ApiClient::error_code(&r).as_deref(), Some("InvalidParameter"));

    // A repeated key is refused, not resolved silently in favour of the last one.
    let duplicated = br#"{"FromEmailAddress": "noreply@shop.example.com", "Destination": ["alice@example.org"],
        "Subject": "Hi", "Simple": {"Text": "aGk="}, "Destination": ["mallory@example.org"]}"#;
    let r = c
        .call_raw("SendEmail", duplicated.to_vec(), unix_now(), &c.secret_key)
        .await;
    assert_eq!(ApiClient::error_code(&r).as_deref(), Some("InvalidParameter"), "{r}");
    assert!(
        r["Error"]["Message"].as_str().unwrap_or("").contains("Destination"),
        "{r}"
    );

    let mut wrong_type = good.clone();
    wrong_type["Destination"] = json!("alice@example.org");
    let r = c.call("SendEmail", &wrong_type).await;
    assert_eq!(ApiClient::error_code(&r).as_deref(), Some("InvalidParameter"));
    assert!(r["Error"]["Message"].as_str().unwrap().contains("Destination"), "{r}");

    let mut missing = good.clone();
    missing.as_object_mut().unwrap().remove("Subject");
    let r = c.call("SendEmail", &missing).await;
    assert_eq!(ApiClient::error_code(&r).as_deref(), Some("MissingParameter"));
    assert!(r["Error"]["Message"].as_str().unwrap().contains("Subject"), "{r}");

    let mut bad_b64 = good.clone();
    bad_b64["Simple"]["Html"] = json!("***not base64***");
    let r = c.call("SendEmail", &bad_b64).await;
    assert_eq!(
        ApiClient::error_code(&r).as_deref(),
        Some("InvalidParameterValue.EmailContentIsWrong")
    );

    let mut bad_att = good.clone();
    bad_att["Attachments"] = json!([{ "FileName": "a.txt", "Content": "%%%" }]);
    let r = c.call("SendEmail", &bad_att).await;
    assert_eq!(
        ApiClient::error_code(&r).as_deref(),
        Some("InvalidParameterValue.AttachContentIsWrong")
    );

    let mut big = good.clone();
    big["Attachments"] = json!([{ "FileName": "big.bin", "Content": b64(&vec![7u8; 4 * 1024 * 1024 + 1]) }]);
    let r = c.call("SendEmail", &big).await;
    assert_eq!(
        ApiClient::error_code(&r).as_deref(),
        Some("FailedOperation.AttachContentToolarge")
    );

    let mut crlf = good.clone();
    crlf["Subject"] = json!("Hello\r\nBcc: victim@example.net");
    let r = c.call("SendEmail", &crlf).await;
    assert_eq!(
        ApiClient::error_code(&r).as_deref(),
        Some("InvalidParameterValue.SubjectLengthError")
    );

    let mut long_subject = good.clone();
    long_subject["Subject"] = json!("邮".repeat(333));
    let r = c.call("SendEmail", &long_subject).await;
    assert_eq!(
        ApiClient::error_code(&r).as_deref(),
        Some("InvalidParameterValue.SubjectLengthError")
    );

    let mut many = good.clone();
    many["Destination"] = json!((0..51).map(|i| format!("user{i}@example.org")).collect::<Vec<_>>());
    let r = c.call("SendEmail", &many).await;
    assert_eq!(
        ApiClient::error_code(&r).as_deref(),
        Some("FailedOperation.TooManyRecipients")
    );

    let r = c
        .call(
            "GetSendEmailStatus",
            &json!({ "RequestDate": "26/11/2026", "Limit": 10 }),
        )
        .await;
    assert_eq!(
        ApiClient::error_code(&r).as_deref(),
        Some("InvalidParameterValue.WrongDate")
    );
    let r = c
        .call("GetSendEmailStatus", &json!({ "RequestDate": today(), "Limit": 101 }))
        .await;
    assert_eq!(
        ApiClient::error_code(&r).as_deref(),
        Some("FailedOperation.InvalidLimit")
    );

    // An oversize request body (> 8 MB) is refused with a JSON error, not a dropped connection.
    let mut huge = good.clone();
    huge["Simple"]["Text"] = json!("A".repeat(9 * 1024 * 1024));
    let r = c.call("SendEmail", &huge).await;
    assert_eq!(ApiClient::error_code(&r).as_deref(), Some("RequestSizeLimitExceeded"));
    // A body declared far beyond what the server drains is refused at once, before it is sent.
    let reply = declare_huge_body(&w.server.api_addr).await;
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(reply.contains("RequestSizeLimitExceeded"), "{reply}");

    // Still serving.
    let r = c.call("SendEmail", &good).await;
    assert!(r["MessageId"].is_string(), "{r}");
    w.server.terminate().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_account_never_sees_another_accounts_mail() {
    let w = world(&[]).await;
    let other = create_account(&w.env, "other").await;
    let other = ApiClient::new(&w.server.api_addr, &other);
    let r = w
        .client
        .call(
            "SendEmail",
            &json!({ "FromEmailAddress": "noreply@shop.example.com", "Destination": ["alice@example.org"], "Subject": "Hi", "Simple": simple("<b>hi</b>", "hi") }),
        )
        .await;
    let id = r["MessageId"].as_str().unwrap().to_string();
    assert_eq!(status_of(&w.client, &id).await.len(), 1);
    let theirs = other
        .call(
            "GetSendEmailStatus",
            &json!({ "RequestDate": today(), "MessageId": id, "Limit": 100 }),
        )
        .await;
    assert_eq!(theirs["EmailStatusList"], json!([]));
    let theirs = other
        .call("GetSendEmailStatus", &json!({ "RequestDate": today(), "Limit": 100 }))
        .await;
    assert_eq!(theirs["EmailStatusList"], json!([]));
    w.server.terminate().await;
}
