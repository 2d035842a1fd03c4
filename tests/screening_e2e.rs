//! Content safety end to end through the real `mailpush serve`, with a real clamd and a real rspamd that the
//! test starts itself (`mailpush_suite::content_filters`): the EICAR test virus is refused over the API and
//! over SMTP (swaks) naming its signature; clamd down refuses for a retry or accepts unscanned, per
//! `clamd_unavailable`; `CheckEmailQuality` and `mailpush check` score a clean transactional mail ≥ 8 and a
//! spammy one < 5; an account's minimum score and content review refuse Simple and SMTP mail with reasons.
//! Without clamd/rspamd the tests say `SKIPPED:`; with MAILPUSH_REQUIRE_CONTENT_FILTERS=1 (CI) they fail.

use mailpush_suite::content_filters::{self, Clamd, EICAR, Rspamd};
use mailpush_suite::*;
use mailpush_testkit::{DnsAuthority, SinkMx};
use serde_json::{Value, json};
use std::net::Ipv4Addr;

struct World {
    _dir: tempfile::TempDir,
    _dns: DnsAuthority,
    _sink: SinkMx,
    env: std::collections::HashMap<String, String>,
    server: ServerProcess,
    client: ApiClient,
}

const SENDER: &str = "app@shop.example.com";

/// `mailpush serve` for account `shop` (Simple content and links allowed, SMTP from loopback without AUTH)
/// with the verified sender `app@shop.example.com` and the given screening settings.
async fn world(vars: &[(&str, String)]) -> World {
    let dns = DnsAuthority::start().await.expect("dns");
    let sink = SinkMx::start_default().await.expect("sink");
    dns.add_mx("example.org", 10, "mx.example.org");
    dns.add_a("mx.example.org", Ipv4Addr::LOCALHOST);
    let dir = temp_dir();
    let mut all = vec![
        ("MAILPUSH_DNS_SERVERS", dns.addr().to_string()),
        ("MAILPUSH_DELIVERY_PORT", sink.addr().port().to_string()),
        ("MAILPUSH_SMTP_LISTEN", "127.0.0.1:0".to_string()),
        ("MAILPUSH_SMTP_TRUSTED_NETWORKS", "127.0.0.0/8".to_string()),
        ("MAILPUSH_SMTP_TRUSTED_ACCOUNT", "shop".to_string()),
    ];
    all.extend(vars.iter().cloned());
    let env = base_env(dir.path(), &all);
    let creds = create_account_with(&env, "shop", &["--allow-simple-content", "--allow-links"]).await;
    let server = ServerProcess::start("mailpush", &["serve"], &env).await;
    let client = ApiClient::new(&server.api_addr, &creds);
    verified_sender(&client, &dns, SENDER).await;
    World {
        _dir: dir,
        _dns: dns,
        _sink: sink,
        env,
        server,
        client,
    }
}

const CLEAN_TEXT: &str = "Hello Alice,\n\nthank you for your order 1234 at the Example Shop. It left our warehouse \
today and should arrive on Monday. You can follow the parcel on your order page at \
https://shop.example.com/orders/1234.\n\nIf anything is wrong with your order, reply to this mail and we will \
sort it out.\n\nKind regards,\nthe Example Shop team\n";

const CLEAN_HTML: &str = "<html><body><p>Hello Alice,</p><p>thank you for your order 1234 at the Example Shop. It \
left our warehouse today and should arrive on Monday. You can follow the parcel on \
<a href=\"https://shop.example.com/orders/1234\">your order page</a>.</p><p>If anything is wrong with your order, \
reply to this mail and we will sort it out.</p><p>Kind regards,<br>the Example Shop team</p></body></html>";

const SPAM_SUBJECT: &str = "FREE MONEY!!! CLAIM YOUR $$$ PRIZE NOW";
const SPAM_HTML: &str = "<html><body><a href=\"http://bit.ly/claim-now\"><img src=\"http://198.51.100.7/win.jpg\">\
</a><div><p>CLICK HERE to claim your FREE casino prize!!! 100% GUARANTEED winner. \
<a href=\"http://198.51.100.7/claim\">http://www.paypal.com/login</a></body></html>";

fn simple(subject: &str, html: Option<&str>, text: Option<&str>, trigger: i64) -> Value {
    let mut simple = json!({});
    if let Some(h) = html {
        simple["Html"] = json!(b64(h.as_bytes()));
    }
    if let Some(t) = text {
        simple["Text"] = json!(b64(t.as_bytes()));
    }
    json!({
        "FromEmailAddress": SENDER,
        "Destination": ["alice@example.org"],
        "Subject": subject,
        "Simple": simple,
        "TriggerType": trigger,
    })
}

/// The server keeps an account's screening settings a second: a change by the CLI (another process) is seen
/// after that.
async fn settings_seen() {
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
}

fn score(r: &Value) -> f64 {
    r["Score"].as_f64().unwrap_or_else(|| panic!("no Score in {r}"))
}

fn spammy_mime() -> String {
    format!(
        "From: WINNER <{SENDER}>\r\nTo: alice@example.org\r\nSubject: {SPAM_SUBJECT}\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/html; charset=utf-8\r\n\r\n{SPAM_HTML}\r\n"
    )
}

/// swaks from loopback (a trusted network) to the submission port; returns its whole transcript.
async fn swaks(w: &World, subject: &str, body: &str, attach: Option<&std::path::Path>) -> String {
    let addr = w.server.announced_addr("smtp").expect("smtp address announced");
    let (host, port) = addr.rsplit_once(':').expect("host:port");
    let mut cmd = tokio::process::Command::new("swaks");
    cmd.args([
        "--server",
        host,
        "--port",
        port,
        "--helo",
        "client.test",
        "--from",
        SENDER,
    ])
    .args([
        "--to",
        "alice@example.org",
        "--header",
        &format!("Subject: {subject}"),
        "--body",
        body,
    ]);
    if let Some(path) = attach {
        cmd.args(["--attach-type", "application/octet-stream", "--attach"])
            .arg(format!("@{}", path.display()));
    }
    let out = cmd.output().await.expect("run swaks");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn swaks_available() -> bool {
    tool_available(
        "swaks",
        &["--version"],
        "MAILPUSH_REQUIRE_SWAKS",
        "apt-get install swaks",
    )
}

/// The Prometheus text of the server's `/metrics`.
async fn metrics(w: &World) -> String {
    let resp = reqwest::get(format!("http://{}/metrics", w.server.api_addr)).await;
    resp.expect("metrics").text().await.expect("metrics text")
}

fn with_attachment(name: &str, content: &[u8]) -> Value {
    let mut req = simple("Your invoice", None, Some(CLEAN_TEXT), 1);
    req["Attachments"] = json!([{ "FileName": name, "Content": b64(content) }]);
    req
}

#[tokio::test]
async fn viruses_are_refused_over_the_api_and_smtp() {
    if !content_filters::available() || !swaks_available() {
        return;
    }
    let clamd = Clamd::start().await;
    let w = world(&[("MAILPUSH_CLAMD_ADDRESS", format!("unix:{}", clamd.socket.display()))]).await;

    // A clean attachment passes the scan.
    let r = w
        .client
        .call("SendEmail", &with_attachment("invoice.pdf", b"%PDF-1.4 an invoice"))
        .await;
    assert!(r.get("Error").is_none(), "{r}");

    // EICAR as a file and inside a zip: refused, naming the signature.
    let zip = content_filters::stored_zip("eicar.com", EICAR);
    for (name, content, signature) in [
        ("eicar.txt", EICAR.to_vec(), "Mailpush-Test-EICAR"),
        ("report.zip", zip.clone(), "Mailpush-Test-EICAR"),
    ] {
        let r = w.client.call("SendEmail", &with_attachment(name, &content)).await;
        assert_eq!(ApiClient::error_code(&r).as_deref(), Some("OperationDenied"), "{r}");
        let message = r["Error"]["Message"].as_str().unwrap_or("");
        assert!(message.contains(signature) && message.contains(name), "{message}");
    }

    // Over SMTP: 550 5.7.1 with the signature.
    let dir = temp_dir();
    let file = dir.path().join("eicar.txt");
    std::fs::write(&file, EICAR).expect("write eicar");
    let transcript = swaks(&w, "Your invoice", CLEAN_TEXT, Some(&file)).await;
    let refusal = transcript
        .lines()
        .find(|l| l.contains("<** 550"))
        .unwrap_or_else(|| panic!("no 550 refusal in:\n{transcript}"));
    assert!(
        refusal.contains("550 5.7.1") && refusal.contains("Mailpush-Test-EICAR"),
        "{refusal}"
    );
    let clean = swaks(&w, "Your invoice", CLEAN_TEXT, None).await;
    assert!(clean.contains("queued as"), "{clean}");

    let metrics = metrics(&w).await;
    assert!(metrics.contains("mailpush_virus_found_total 3"), "{metrics}");
}

#[tokio::test]
async fn clamd_down_refuses_for_a_retry_or_accepts_unscanned() {
    if !content_filters::available() {
        return;
    }
    let clamd = Clamd::start().await;
    let tcp = clamd.tcp.clone();
    // Through TCP this time; then clamd goes away.
    let refusing = world(&[("MAILPUSH_CLAMD_ADDRESS", tcp.clone())]).await;
    let r = refusing
        .client
        .call("SendEmail", &with_attachment("eicar.txt", EICAR))
        .await;
    assert_eq!(ApiClient::error_code(&r).as_deref(), Some("OperationDenied"), "{r}");
    clamd.stop().await;
    let r = refusing
        .client
        .call("SendEmail", &with_attachment("invoice.pdf", b"%PDF-1.4"))
        .await;
    assert_eq!(
        ApiClient::error_code(&r).as_deref(),
        Some("FailedOperation.ServiceNotAvailable"),
        "{r}"
    );
    assert!(r["Error"]["Message"].as_str().unwrap_or("").contains("retry"), "{r}");
    // Mail without attachments never needs the scanner.
    let r = refusing
        .client
        .call("SendEmail", &simple("Hello", None, Some(CLEAN_TEXT), 1))
        .await;
    assert!(r.get("Error").is_none(), "{r}");
    if tool_available(
        "swaks",
        &["--version"],
        "MAILPUSH_REQUIRE_SWAKS",
        "apt-get install swaks",
    ) {
        let dir = temp_dir();
        let file = dir.path().join("invoice.pdf");
        std::fs::write(&file, b"%PDF-1.4").expect("write");
        let transcript = swaks(&refusing, "Your invoice", CLEAN_TEXT, Some(&file)).await;
        assert!(transcript.contains("<** 451 4.3.0"), "{transcript}");
    }

    let accepting = world(&[
        ("MAILPUSH_CLAMD_ADDRESS", tcp),
        ("MAILPUSH_CLAMD_UNAVAILABLE", "accept".to_string()),
    ])
    .await;
    let r = accepting
        .client
        .call("SendEmail", &with_attachment("invoice.pdf", b"%PDF-1.4"))
        .await;
    assert!(r.get("Error").is_none(), "{r}");
    let metrics = metrics(&accepting).await;
    assert!(
        metrics.contains("mailpush_virus_unscanned_total{outcome=\"accepted\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn quality_scores_and_admission_thresholds() {
    if !content_filters::available() || !swaks_available() {
        return;
    }
    let rspamd = Rspamd::start().await;
    let w = world(&[("MAILPUSH_RSPAMD_URL", rspamd.url.clone())]).await;

    // A clean transactional mail scores at least 8, a spammy one below 5, with the filter's symbols explained.
    let html = CLEAN_HTML;
    let clean = w
        .client
        .call(
            "CheckEmailQuality",
            &simple("Your order 1234 has shipped", Some(html), Some(CLEAN_TEXT), 1),
        )
        .await;
    assert!(clean.get("Error").is_none(), "{clean}");
    assert!(clean["FilterScore"].is_number(), "the filter answered: {clean}");
    assert!(score(&clean) >= 8.0, "{clean}");
    let checks = clean["Checks"].as_array().cloned().unwrap_or_default();
    for name in ["dkim", "spf", "dmarc", "html_well_formed", "links"] {
        assert!(
            checks.iter().any(|c| c["Name"] == name && c["Status"] == "pass"),
            "{name} passes: {clean}"
        );
    }

    let spam = w
        .client
        .call("CheckEmailQuality", &simple(SPAM_SUBJECT, Some(SPAM_HTML), None, 0))
        .await;
    assert!(spam.get("Error").is_none(), "{spam}");
    assert!(score(&spam) < 5.0, "{spam}");
    let symbols = spam["Symbols"].as_array().cloned().unwrap_or_default();
    assert!(
        symbols
            .iter()
            .any(|s| s["Name"] == "SUBJ_ALL_CAPS" && s["Description"] == "the Subject is written in capital letters"),
        "{spam}"
    );
    assert!(
        !spam["FixFirst"].as_array().cloned().unwrap_or_default().is_empty(),
        "{spam}"
    );

    // Raw MIME over the API, and a template with data.
    let raw = w
        .client
        .call(
            "CheckEmailQuality",
            &json!({ "RawMessage": b64(spammy_mime().as_bytes()) }),
        )
        .await;
    assert!(score(&raw) < 5.0, "{raw}");
    let t = w
        .client
        .call(
            "CreateEmailTemplate",
            &json!({
                "TemplateName": "shipped",
                "TemplateContent": { "Html": b64(html.replace("Alice", "{{name}}").as_bytes()),
                                     "Text": b64(CLEAN_TEXT.replace("Alice", "{{name}}").as_bytes()) },
                "TemplateCategory": "transactional",
            }),
        )
        .await;
    let template_id = t["TemplateID"].as_i64().unwrap_or_else(|| panic!("{t}"));
    let templated = w
        .client
        .call(
            "CheckEmailQuality",
            &json!({
                "FromEmailAddress": SENDER,
                "Subject": "Your order 1234 has shipped",
                "Template": { "TemplateID": template_id, "TemplateData": "{\"name\":\"Alice\"}" },
                "TriggerType": 1,
            }),
        )
        .await;
    assert!(score(&templated) >= 8.0, "{templated}");

    // The CLI: a MIME file, and the template.
    let dir = temp_dir();
    let file = dir.path().join("spam.eml");
    std::fs::write(&file, spammy_mime()).expect("write eml");
    let out = mailpush_cli(
        &w.env,
        &["check", file.to_str().expect("path"), "--account", "shop", "--json"],
    )
    .await;
    let cli: Value = serde_json::from_str(out.trim()).expect("check --json prints JSON");
    assert!(cli["score"].as_f64().expect("score") < 5.0, "{cli}");
    let out = mailpush_cli(
        &w.env,
        &[
            "check",
            "--account",
            "shop",
            "--template",
            &template_id.to_string(),
            "--data",
            "{\"name\":\"Alice\"}",
            "--from",
            SENDER,
            "--subject",
            "Your order 1234 has shipped",
        ],
    )
    .await;
    assert!(out.starts_with("score: "), "{out}");
    let cli_score: f64 = out["score: ".len()..]
        .split('/')
        .next()
        .and_then(|s| s.parse().ok())
        .expect("a score");
    assert!(cli_score >= 8.0, "{out}");
    let below = tokio::process::Command::new(bin_path("mailpush"))
        .args([
            "check",
            file.to_str().expect("path"),
            "--account",
            "shop",
            "--min-score",
            "5",
        ])
        .envs(&w.env)
        .output()
        .await
        .expect("run mailpush check");
    assert_eq!(below.status.code(), Some(2), "a score below --min-score exits 2");

    // Admission: with a minimum score, spammy Simple and SMTP mail is refused with the reasons; clean mail passes.
    mailpush_cli(&w.env, &["screening", "shop", "--min-score", "6"]).await;
    settings_seen().await;
    let r = w
        .client
        .call("SendEmail", &simple(SPAM_SUBJECT, Some(SPAM_HTML), None, 0))
        .await;
    assert_eq!(ApiClient::error_code(&r).as_deref(), Some("OperationDenied"), "{r}");
    let message = r["Error"]["Message"].as_str().unwrap_or("");
    assert!(message.contains("below this account's minimum of 6.0"), "{message}");
    let r = w
        .client
        .call(
            "SendEmail",
            &simple("Your order 1234 has shipped", Some(html), Some(CLEAN_TEXT), 1),
        )
        .await;
    assert!(r.get("Error").is_none(), "{r}");
    let transcript = swaks(
        &w,
        SPAM_SUBJECT,
        "CLICK HERE http://bit.ly/claim-now FREE casino prize!!!",
        None,
    )
    .await;
    assert!(transcript.contains("<** 550 5.7.1"), "{transcript}");
    assert!(transcript.contains("below this account's minimum"), "{transcript}");

    // Content review: the template review's lexicon applies to Simple and SMTP mail.
    mailpush_cli(
        &w.env,
        &["screening", "shop", "--min-score", "none", "--review-content", "true"],
    )
    .await;
    settings_seen().await;
    let casino = format!("{CLEAN_TEXT}\nP.S. Visit our online casino for a bonus.\n");
    let r = w
        .client
        .call("SendEmail", &simple("Your order", None, Some(&casino), 1))
        .await;
    assert_eq!(ApiClient::error_code(&r).as_deref(), Some("OperationDenied"), "{r}");
    assert!(
        r["Error"]["Message"]
            .as_str()
            .unwrap_or("")
            .contains("forbidden_content"),
        "{r}"
    );
    let transcript = swaks(&w, "Your order", &casino, None).await;
    assert!(
        transcript.contains("<** 550 5.7.1") && transcript.contains("forbidden_content"),
        "{transcript}"
    );
    let r = w
        .client
        .call("SendEmail", &simple("Your order", None, Some(CLEAN_TEXT), 1))
        .await;
    assert!(r.get("Error").is_none(), "{r}");
}

#[tokio::test]
async fn the_clamd_client_streams_in_chunks_and_reads_the_size_limit_answer() {
    use mailpush_screening::{ClamdAddress, ClamdClient, ScanVerdict, ScreeningError};
    if !content_filters::available() {
        return;
    }
    let clamd = Clamd::start_with_stream_max("1M").await;
    let timeout = std::time::Duration::from_secs(20);
    for address in [
        ClamdAddress::Unix(clamd.socket.clone()),
        ClamdAddress::Tcp(clamd.tcp.clone()),
    ] {
        // Tiny chunks: the signature spans many of them.
        let client = ClamdClient::new(address, timeout).with_chunk_bytes(7);
        client.ping().await.expect("PONG");
        match client.scan(EICAR).await {
            Ok(ScanVerdict::Found(sig)) => assert!(sig.starts_with("Mailpush-Test-EICAR"), "{sig}"),
            other => panic!("EICAR not found: {other:?}"),
        }
        assert_eq!(client.scan(b"just an invoice").await.expect("scan"), ScanVerdict::Clean);
        // Over StreamMaxLength clamd answers "INSTREAM size limit exceeded" and closes mid-stream.
        let big = vec![b'a'; 3 * 1024 * 1024];
        let client = client.with_chunk_bytes(64 * 1024);
        assert!(
            matches!(client.scan(&big).await, Err(ScreeningError::TooLarge)),
            "the size limit answer is read"
        );
    }
}

#[tokio::test]
async fn rspamd_down_fails_open_by_default_or_refuses_for_a_retry() {
    // No filter runs at the configured address: nothing to install for this test.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", closed.local_addr().expect("addr"));
    drop(closed);
    let open = world(&[("MAILPUSH_RSPAMD_URL", url.clone())]).await;
    mailpush_cli(&open.env, &["screening", "shop", "--min-score", "9"]).await;
    let r = open
        .client
        .call("SendEmail", &simple(SPAM_SUBJECT, Some(SPAM_HTML), None, 0))
        .await;
    assert!(r.get("Error").is_none(), "accepted unscored: {r}");
    assert!(metrics(&open).await.contains("mailpush_spam_unscored_total 1"));
    // CheckEmailQuality still answers, from mailpush's own checks, and says why the filter is missing.
    let q = open
        .client
        .call("CheckEmailQuality", &simple(SPAM_SUBJECT, Some(SPAM_HTML), None, 0))
        .await;
    assert!(q["FilterScore"].is_null() && q["FilterError"].is_string(), "{q}");
    assert!(score(&q) < 5.0, "{q}");

    let refusing = world(&[
        ("MAILPUSH_RSPAMD_URL", url),
        ("MAILPUSH_RSPAMD_UNAVAILABLE", "refuse".to_string()),
    ])
    .await;
    mailpush_cli(&refusing.env, &["screening", "shop", "--min-score", "9"]).await;
    let r = refusing
        .client
        .call("SendEmail", &simple(SPAM_SUBJECT, Some(SPAM_HTML), None, 0))
        .await;
    assert_eq!(
        ApiClient::error_code(&r).as_deref(),
        Some("FailedOperation.ServiceNotAvailable"),
        "{r}"
    );
}
