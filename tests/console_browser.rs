//! The web console in a real browser: headless Chromium (Debian's `chromium` + `chromium-driver`) driven over
//! WebDriver against the real `mailpush serve`, with the testkit DNS authority and sink MX. A tenant signs in,
//! adds a domain, publishes its records (read from the console's table) in the test DNS, verifies it, creates a
//! sender and a template (live preview), sends a test mail and sees it delivered in the timeline, uploads a
//! recipient list, starts a batch task and watches its progress bar reach 100 %, and sees the statistics
//! change. Another tenant sees none of it, also by URL; a form without its CSRF token is refused; the operator
//! sees every account. Screenshots of each page go to `target/console-screenshots/` (not committed).

use mailpush_suite::browser::{Browser, browser_available};
use mailpush_suite::*;
use mailpush_testkit::{DnsAuthority, SinkMx};
use serde_json::json;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

const DOMAIN: &str = "shop.example.com";
const SENDER: &str = "noreply@shop.example.com";
const HTML: &str = "<p>Dear {{name}}, your order {{order}} has shipped. It left our warehouse this morning and should arrive within three working days. Thank you for shopping with us, and have a pleasant day.</p>";
const TEXT: &str = "Dear {{name}}, your order {{order}} has shipped. It left our warehouse this morning and should arrive within three working days. Thank you for shopping with us.";
const ANN_PASSWORD: &str = "ann-console-password";
const BOB_PASSWORD: &str = "bob-console-password";
const ROOT_PASSWORD: &str = "root-console-password";

/// An HTTP endpoint on loopback that answers 200 to every request and passes on each request's body.
async fn callback_receiver() -> (std::net::SocketAddr, tokio::sync::mpsc::UnboundedReceiver<String>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                // Read the head, then as much body as Content-Length says.
                loop {
                    let Ok(n) = conn.read(&mut chunk).await else { return };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some((head, body)) = text.split_once("\r\n\r\n") {
                        let len = head
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                            })
                            .unwrap_or(0);
                        if body.len() >= len {
                            let _ = tx.send(body.to_string());
                            let _ = conn
                                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                                .await;
                            return;
                        }
                    }
                }
            });
        }
    });
    (addr, rx)
}

fn screenshots() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    // target/<profile>/deps/<test> → target/console-screenshots
    exe.ancestors()
        .nth(3)
        .map(|t| t.join("console-screenshots"))
        .unwrap_or_else(|| PathBuf::from("console-screenshots"))
}

async fn shot(b: &Browser, name: &str) {
    b.screenshot(&screenshots().join(format!("{name}.png"))).await;
}

async fn sign_in(b: &Browser, base: &str, user: &str, password: &str) {
    b.clear_cookies().await;
    b.goto(&format!("{base}/login")).await;
    b.fill("#username", user).await;
    b.fill("#password", password).await;
    b.click_on("#sign-in").await;
    b.find("#sign-out").await;
}

/// Waits for the page a form led to to show a message containing `needle` (the page before it may still show
/// its own message for a moment).
async fn flash_with(b: &Browser, needle: &str) {
    b.wait(
        &format!("a message with {needle:?}"),
        Duration::from_secs(10),
        || async {
            let e = b.try_find("#flash").await?;
            b.text(&e).await.contains(needle).then_some(())
        },
    )
    .await
}

/// The one-shot message of the page a form led to (waiting until it is there: a click does not wait for the
/// next page).
async fn flash(b: &Browser) -> String {
    b.wait("the page's message", Duration::from_secs(10), || async {
        let e = b.try_find("#flash").await?;
        let text = b.text(&e).await;
        (!text.is_empty()).then_some(text)
    })
    .await
}

/// The statistics page's total of one series.
async fn stat_total(b: &Browser, base: &str, series: &str) -> i64 {
    b.goto(&format!("{base}/stats")).await;
    b.text_of(&format!("#total-{series}"))
        .await
        .trim()
        .parse()
        .expect("a number")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_in_a_real_browser() {
    if !browser_available() {
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
            ("MAILPUSH_BATCH_POLL_MS", "100".to_string()),
            // Small chunks: the progress bar has steps to show.
            ("MAILPUSH_BATCH_CHUNK", "5".to_string()),
            // The test mail and the first task fit; a second task pauses for today's quota.
            ("MAILPUSH_BATCH_DAILY_QUOTA", "45".to_string()),
            // Templates wait for the operator's review queue.
            ("MAILPUSH_TEMPLATE_REVIEW", "manual".to_string()),
            // The settings page's test event goes to a receiver on loopback.
            ("MAILPUSH_CALLBACK_ALLOW_CIDRS", "127.0.0.0/8".to_string()),
        ],
    );
    create_account(&env, "shop").await;
    create_account(&env, "other").await;
    mailpush_cli(
        &env,
        &[
            "console-user",
            "add",
            "ann",
            "--account",
            "shop",
            "--password",
            ANN_PASSWORD,
        ],
    )
    .await;
    mailpush_cli(
        &env,
        &[
            "console-user",
            "add",
            "bob",
            "--account",
            "other",
            "--password",
            BOB_PASSWORD,
        ],
    )
    .await;
    let root = mailpush_cli(
        &env,
        &[
            "console-user",
            "add",
            "root",
            "--operator",
            "--password",
            ROOT_PASSWORD,
            "--json",
        ],
    )
    .await;
    assert!(root.contains("\"Username\":\"root\""), "{root}");
    let server = ServerProcess::start("mailpush", &["serve"], &env).await;
    let base = format!("http://{}/console", server.api_addr);
    let b = Browser::start("en-US").await;

    // Sign-in: a wrong password is refused, the right one opens the console.
    b.goto(&format!("{base}/")).await;
    b.find("#username").await;
    assert!(b.url().await.ends_with("/console/login"), "{}", b.url().await);
    shot(&b, "01-login").await;
    b.fill("#username", "ann").await;
    b.fill("#password", "not-the-password").await;
    b.click_on("#sign-in").await;
    assert!(flash(&b).await.contains("Wrong username or password"));
    sign_in(&b, &base, "ann", ANN_PASSWORD).await;
    let delivered_before = stat_total(&b, &base, "delivered").await;
    assert_eq!(delivered_before, 0);

    // Domains: add, read the records table, publish them in the test DNS, verify now.
    b.goto(&format!("{base}/domains")).await;
    b.fill("#domain", DOMAIN).await;
    b.click_on("#add-domain button").await;
    b.find("#records").await;
    assert!(b.url().await.ends_with(&format!("/domains/{DOMAIN}")));
    assert!(b.text_of("#domain-status").await.contains("Not verified"));
    let rows = b.find_all("#records tbody tr").await;
    assert!(rows.len() >= 4, "DKIM, SPF, MX and DMARC rows");
    let records = b
        .execute(
            "return [...document.querySelectorAll('#records tbody tr')].map(r => [r.dataset.type, r.dataset.name, r.dataset.expected]);",
            json!([]),
            false,
        )
        .await;
    for r in records.as_array().expect("rows") {
        let (kind, name, value) = (r[0].as_str().unwrap(), r[1].as_str().unwrap(), r[2].as_str().unwrap());
        // A name holds one DMARC record: the optional variant with rua= is published instead of the plain one.
        if value.starts_with("v=DMARC1") && !value.contains("rua=") {
            continue;
        }
        match kind {
            "MX" => dns.add_mx(name, 10, value),
            _ => dns.add_txt(name, value),
        }
    }
    assert_eq!(
        b.find_all("#records button.copy").await.len(),
        rows.len() * 2,
        "copy buttons for host and value"
    );
    shot(&b, "02-domain-records").await;
    b.click_on("#verify").await;
    b.wait("the domain verified", Duration::from_secs(20), || async {
        let status = b.text_of("#domain-status").await;
        if status.contains("Verified") && !status.contains("Not") {
            return Some(());
        }
        b.click_on("#verify").await;
        None
    })
    .await;
    assert_eq!(
        b.find_all("#records .badge.ok").await.len(),
        rows.len(),
        "every record passes"
    );
    shot(&b, "03-domain-verified").await;

    // A sender address with an SMTP password.
    b.goto(&format!("{base}/domains")).await;
    b.fill("#sender-address", SENDER).await;
    b.fill("#sender-name", "Shop").await;
    b.fill("#sender-password", "Smtp-Pass-2026").await;
    b.click_on("#add-sender button").await;
    assert!(flash(&b).await.contains(SENDER));
    assert!(b.text_of("#senders").await.contains(SENDER));
    shot(&b, "04-domains").await;

    // A template, with the live preview rendering the sample data.
    b.goto(&format!("{base}/templates/new")).await;
    b.fill("#template-name", "shipped").await;
    b.fill("#preview-subject", "Order {{order}}").await;
    b.fill("#template-html", HTML).await;
    b.fill("#template-text", TEXT).await;
    b.fill("#template-data", r#"{"name": "Ann", "order": "A-1001"}"#).await;
    b.wait("the preview", Duration::from_secs(10), || async {
        b.text_of("#preview-text")
            .await
            .contains("Dear Ann, your order A-1001")
            .then_some(())
    })
    .await;
    shot(&b, "05-template-preview").await;
    b.click_on("#save-template").await;
    b.find("#review-status").await;
    assert!(
        b.text_of("#review-status").await.contains("under review"),
        "{}",
        b.text_of("main").await
    );
    let template_url = b.url().await;
    let template_id: i64 = template_url.rsplit('/').next().unwrap().parse().expect("template id");

    // The operator's review queue: approve it.
    sign_in(&b, &base, "root", ROOT_PASSWORD).await;
    b.goto(&format!("{base}/review")).await;
    assert!(b.text_of(&format!("#review-{template_id}")).await.contains("shipped"));
    shot(&b, "06-review-queue").await;
    b.click_on(&format!("#approve-{template_id}")).await;
    assert!(flash(&b).await.contains("approved"));
    sign_in(&b, &base, "ann", ANN_PASSWORD).await;
    b.goto(&template_url).await;
    assert!(b.text_of("#review-status").await.contains("approved"));
    shot(&b, "06-template").await;

    // A test mail: delivered in its timeline.
    b.goto(&format!("{base}/send")).await;
    b.fill("#send-to", "alice@example.org").await;
    b.fill("#send-subject", "Your order {{order}}").await;
    b.execute(
        "document.getElementById('send-template').value = arguments[0];",
        json!([template_id.to_string()]),
        false,
    )
    .await;
    b.fill("#send-data", r#"{"name": "Alice", "order": "A-2002"}"#).await;
    shot(&b, "07-send").await;
    b.click_on("#send").await;
    b.find("#timeline").await;
    let message_id = b.text_of("#message-id").await;
    assert!(b.url().await.ends_with(&format!("/messages/{message_id}")));
    b.wait("delivered in the timeline", Duration::from_secs(30), || async {
        // The page reloads itself while the mail is in delivery.
        let status = b.try_find("#recipients [data-status]").await?;
        (b.attr(&status, "textContent")
            .await
            .unwrap_or_default()
            .contains("delivered"))
        .then_some(())
    })
    .await;
    let timeline = b.text_of("#timeline").await;
    assert!(
        timeline.contains("Accepted") && timeline.contains("Delivery attempt #1"),
        "{timeline}"
    );
    assert!(timeline.contains("250"), "the receiver's reply: {timeline}");
    let got = sink
        .wait_for_messages(1, Duration::from_secs(10))
        .await
        .expect("the sink got the mail");
    assert!(got[0].text().contains("Dear Alice, your order A-2002"));
    shot(&b, "08-message-timeline").await;
    b.goto(&format!("{base}/messages?recipient=alice@example.org")).await;
    assert!(b.text_of("#messages").await.contains(&message_id));
    shot(&b, "09-messages").await;

    // The quality check (邮件质量评分): the template with its data, scored without sending; then a pasted
    // message shouting in capitals, which scores lower and says what to fix first.
    let sent_before = sink.messages().len();
    b.goto(&format!("{base}/check")).await;
    b.fill("#check-subject", "Your order {{order}}").await;
    b.execute(
        "document.getElementById('check-template').value = arguments[0];",
        json!([template_id.to_string()]),
        false,
    )
    .await;
    b.fill("#check-data", r#"{"name": "Alice", "order": "A-2002"}"#).await;
    b.click_on("#check").await;
    b.find("#check-report").await;
    let clean: f64 = b.text_of("#check-score").await.trim().parse().expect("a score");
    assert!((0.0..=10.0).contains(&clean), "{clean}");
    let checks = b.text_of("#check-checks").await;
    assert!(
        checks.contains("dkim") && checks.to_lowercase().contains("pass"),
        "{checks}"
    );
    shot(&b, "09-quality-check").await;
    let shouting = format!(
        "From: {SENDER}\nTo: alice@example.org\nSubject: FREE MONEY!!! ACT NOW!!!\nMIME-Version: 1.0\n\
         Content-Type: text/html; charset=utf-8\n\n<html><body><img src=\"https://x.example/a.png\">\
         <a href=\"https://bit.ly/x\">CLICK</a></body></html>\n"
    );
    b.fill("#check-raw", &shouting).await;
    // The report of the first check must not be mistaken for the second's.
    b.execute("document.getElementById('check-report').remove();", json!([]), false)
        .await;
    b.click_on("#check").await;
    b.find("#check-report").await;
    let spammy: f64 = b.text_of("#check-score").await.trim().parse().expect("a score");
    assert!(spammy < clean, "the shouting mail scores lower: {spammy} vs {clean}");
    assert!(!b.text_of("#check-fix").await.is_empty());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(sink.messages().len(), sent_before, "a check sends nothing");

    // A recipient list uploaded from a CSV file: valid and invalid counts.
    let csv = dir.path().join("customers.csv");
    let mut lines = vec!["email,TemplateData".to_string()];
    for i in 0..40 {
        lines.push(format!(
            "user{i}@example.org,\"{{\"\"name\"\":\"\"U{i}\"\",\"\"order\"\":\"\"B-{i}\"\"}}\""
        ));
    }
    lines.push("not-an-address".into());
    lines.push("also@bad@example.org".into());
    std::fs::write(&csv, lines.join("\n")).expect("csv");
    b.goto(&format!("{base}/lists")).await;
    b.fill("#list-name", "customers").await;
    b.type_into("#csv-file", csv.to_str().unwrap()).await;
    b.wait("the file read into the form", Duration::from_secs(10), || async {
        let t = b.find("#csv-text").await;
        b.attr(&t, "value")
            .await
            .unwrap_or_default()
            .contains("user39@example.org")
            .then_some(())
    })
    .await;
    b.click_on("#upload").await;
    let f = flash(&b).await;
    assert!(f.contains("Valid 40") && f.contains("Invalid 2"), "{f}");
    shot(&b, "10-lists").await;

    // A batch task: the bar advances while we watch and reaches 100 %.
    b.goto(&format!("{base}/tasks")).await;
    b.fill("#task-subject", "Order {{order}} shipped").await;
    b.click_on("#start-task").await;
    b.find("#tasks tbody tr[data-task]").await;
    let seen = std::sync::Mutex::new(Vec::<String>::new());
    b.wait("the progress bar at 100 %", Duration::from_secs(60), || {
        let (seen, b) = (&seen, &b);
        async move {
            let pct = b.text_of("#tasks tbody tr[data-task] .pct").await;
            {
                let mut seen = seen.lock().expect("seen");
                if seen.last() != Some(&pct) {
                    seen.push(pct.clone());
                }
            }
            let state = b.text_of("#tasks tbody tr[data-task] .state").await;
            (pct == "100%" && state == "done").then_some(())
        }
    })
    .await;
    assert_eq!(b.text_of("#tasks tbody tr[data-task] .count").await, "40 / 40");
    eprintln!("progress seen: {:?}", seen.lock().expect("seen"));
    shot(&b, "11-tasks").await;
    sink.wait_for_messages(41, Duration::from_secs(30))
        .await
        .expect("the batch delivered");

    // A second task stops at today's quota; pause, resume and cancel it.
    b.goto(&format!("{base}/tasks")).await;
    assert!(b.try_find("#flash").await.is_none());
    b.fill("#task-subject", "Order {{order}} shipped again").await;
    b.click_on("#start-task").await;
    let created = flash(&b).await;
    let task: i64 = created
        .trim_start_matches('#')
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("task id in {created:?}"));
    let row = format!("#task-{task}");
    b.wait("paused for today's quota", Duration::from_secs(30), || async {
        (b.text_of(&format!("{row} .state")).await == "paused: today's quota used").then_some(())
    })
    .await;
    let count = b.text_of(&format!("{row} .count")).await;
    assert_ne!(count, "40 / 40", "the quota stopped it part way");
    shot(&b, "11-tasks-quota").await;
    for (action, expect) in [
        ("pause", "paused"),
        ("resume", "paused: today's quota used"),
        ("cancel", "cancelled"),
    ] {
        b.click_on(&format!("#{action}-{task}")).await;
        b.wait(expect, Duration::from_secs(10), || async {
            (b.text_of(&format!("{row} .state")).await == expect).then_some(())
        })
        .await;
    }
    shot(&b, "11-tasks-cancelled").await;

    // Statistics: the chart and totals changed.
    b.wait("delivered counted", Duration::from_secs(20), || async {
        (stat_total(&b, &base, "delivered").await >= 41).then_some(())
    })
    .await;
    let chart = b.find("#chart svg polyline").await;
    assert!(
        b.attr(&chart, "outerHTML")
            .await
            .unwrap_or_default()
            .contains("data-total")
    );
    assert!(b.text_of("#reputation").await.contains(DOMAIN));
    shot(&b, "12-stats").await;
    b.goto(&format!("{base}/suppression")).await;
    shot(&b, "13-suppression").await;
    // Settings: a callback URL and its test event, signed, received by a real HTTP endpoint.
    let (hook, mut bodies) = callback_receiver().await;
    b.goto(&format!("{base}/settings")).await;
    b.fill("input[name=url]", &format!("http://{hook}/events")).await;
    b.click_on("form:has(input[name=url]) button").await;
    flash_with(&b, "Saved").await;
    b.click_on("#test-event button").await;
    flash_with(&b, "Test event delivered").await;
    let body = tokio::time::timeout(Duration::from_secs(10), bodies.recv())
        .await
        .expect("a callback")
        .expect("a body");
    assert!(
        body.contains("mailpush-test-event") && body.contains("\"event\":\"delivered\""),
        "{body}"
    );
    shot(&b, "14-settings").await;

    // Settings → API keys: a second key is shown once, then revoked after a confirmation.
    b.click_on("#manage-keys").await;
    b.find("#api-keys").await;
    assert_eq!(
        b.execute(
            "return document.querySelectorAll('#api-keys tbody tr').length;",
            json!([]),
            false
        )
        .await,
        json!(1)
    );
    b.click_on("#create-key button").await;
    let secret_key = b.text_of("#new-secret-key").await;
    let secret_id = b.text_of("#new-secret-id").await;
    assert_eq!(secret_key.trim().len(), 32, "{secret_key}");
    assert!(b.text_of("#new-key").await.contains("shown only this once"));
    assert!(b.text_of("#api-keys").await.contains(secret_id.trim()));
    assert!(
        b.try_find("#create-key").await.is_none(),
        "two keys are active: no third"
    );
    shot(&b, "14b-api-key-created").await;
    b.goto(&format!("{base}/settings/keys")).await;
    assert!(
        !b.text_of("body").await.contains(secret_key.trim()),
        "the SecretKey is shown only once"
    );
    b.execute(
        "window.confirm = function (m) { window.__asked = m; return true; };",
        json!([]),
        false,
    )
    .await;
    b.click_on(&format!("#api-keys tr[data-secret-id='{}'] button", secret_id.trim()))
        .await;
    flash_with(&b, "key revoked").await;
    let row = b
        .text_of(&format!("#api-keys tr[data-secret-id='{}']", secret_id.trim()))
        .await;
    assert!(row.contains("Revoked"), "{row}");
    b.find("#create-key").await;
    // Revoking the last active key is refused with a message.
    b.execute("window.confirm = function () { return true; };", json!([]), false)
        .await;
    b.click_on("#api-keys form button").await;
    flash_with(&b, "last active API key").await;
    // An unsubscribe default of the sender address.
    b.execute(
        "const f = document.querySelector('#unsubscribe-defaults form'); f.code.value = '3'; f.status.checked = true;",
        json!([]),
        false,
    )
    .await;
    b.click_on("#unsubscribe-defaults form button").await;
    // Unsubscribe links need public_base_url, which this server lacks: the refusal is the page's message.
    flash_with(&b, "public_base_url").await;
    b.execute(
        "const f = document.querySelector('#unsubscribe-defaults form'); f.code.value = '0'; f.status.checked = true;",
        json!([]),
        false,
    )
    .await;
    b.click_on("#unsubscribe-defaults form button").await;
    flash_with(&b, "Saved").await;
    assert_eq!(
        b.execute(
            "return document.querySelector('#unsubscribe-defaults form').code.value;",
            json!([]),
            false
        )
        .await,
        json!("0")
    );
    assert_eq!(
        b.execute(
            "return document.querySelector('#unsubscribe-defaults form').status.checked;",
            json!([]),
            false
        )
        .await,
        json!(true)
    );
    assert!(b.text_of("#unsubscribe-defaults").await.contains(SENDER));
    shot(&b, "14c-api-keys").await;

    // Another tenant sees none of it, by URL either.
    sign_in(&b, &base, "bob", BOB_PASSWORD).await;
    b.goto(&format!("{base}/domains")).await;
    assert!(!b.text_of("main").await.contains(DOMAIN));
    for path in [
        format!("/messages/{message_id}"),
        format!("/templates/{template_id}"),
        format!("/domains/{DOMAIN}"),
    ] {
        b.goto(&format!("{base}{path}")).await;
        let body = b.text_of("body").await;
        assert!(body.contains("not found") && !body.contains(SENDER), "{path}: {body}");
    }
    b.goto(&format!("{base}/messages?recipient=alice@example.org")).await;
    assert!(!b.text_of("#messages").await.contains(&message_id));
    b.goto(&format!("{base}/tasks/progress")).await;
    assert_eq!(b.text_of("body").await.trim(), "[]");
    b.goto(&format!("{base}/review")).await;
    assert!(
        b.text_of("body").await.contains("not found"),
        "the review queue is the operator's"
    );

    // A form post without its CSRF token is refused, and changes nothing.
    b.goto(&format!("{base}/domains")).await;
    let status = b
        .execute(
            "const done = arguments[arguments.length - 1];
             fetch(arguments[0], { method: 'POST', credentials: 'same-origin',
               headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: 'domain=evil.example.net' })
               .then(r => done(r.status));",
            json!([format!("{base}/domains")]),
            true,
        )
        .await;
    assert_eq!(status, json!(403));
    b.goto(&format!("{base}/domains")).await;
    assert!(!b.text_of("main").await.contains("evil.example.net"));
    shot(&b, "15-other-tenant").await;

    // The operator sees every account.
    sign_in(&b, &base, "root", ROOT_PASSWORD).await;
    let shop_id = b
        .execute(
            "return [...document.querySelectorAll('#account-switch option')].find(o => o.textContent === 'shop').value;",
            json!([]),
            false,
        )
        .await;
    b.execute(
        "document.getElementById('account-switch').value = arguments[0]; document.getElementById('account-switch').form.submit();",
        json!([shop_id]),
        false,
    )
    .await;
    b.find("#domains").await;
    b.goto(&format!("{base}/domains")).await;
    assert!(b.text_of("#domains").await.contains(DOMAIN));
    shot(&b, "17-operator").await;
    // The operator adds a console user of the account shown, who then sees that account.
    b.goto(&format!("{base}/settings")).await;
    b.fill("#add-user input[name=username]", "carol").await;
    b.fill("#add-user input[name=password]", "carol-console-password").await;
    b.click_on("#add-user button").await;
    assert!(flash(&b).await.contains("carol"));
    sign_in(&b, &base, "carol", "carol-console-password").await;
    b.goto(&format!("{base}/domains")).await;
    assert!(b.text_of("#domains").await.contains(DOMAIN));
    b.goto(&format!("{base}/settings")).await;
    b.find("#console-users").await;
    assert!(
        b.try_find("#add-user").await.is_none(),
        "only the operator adds console users"
    );
    b.quit().await;

    // Chinese UI for a Chinese browser.
    let zh_browser = Browser::start("zh-CN").await;
    sign_in(&zh_browser, &base, "ann", ANN_PASSWORD).await;
    zh_browser.goto(&format!("{base}/domains")).await;
    assert!(zh_browser.text_of("#nav-domains").await.contains("发信域名"));
    assert!(zh_browser.text_of("#domains").await.contains("已验证"));
    shot(&zh_browser, "18-zh-domains").await;
    zh_browser.goto(&format!("{base}/tasks")).await;
    assert!(zh_browser.text_of("#tasks").await.contains("发送完成"));
    shot(&zh_browser, "19-zh-tasks").await;
    zh_browser.quit().await;
    let zh = reqwest::Client::new()
        .get(format!("{base}/login"))
        .header("Accept-Language", "zh-CN,zh;q=0.9,en;q=0.5")
        .send()
        .await
        .expect("login page")
        .text()
        .await
        .expect("body");
    assert!(zh.contains("登录") && zh.contains("lang=\"zh-CN\""));
    // Cookies: HttpOnly and SameSite=Strict.
    let r = reqwest::Client::new()
        .get(format!("{base}/login"))
        .send()
        .await
        .expect("login page");
    let cookie = r.headers()["set-cookie"].to_str().unwrap_or_default().to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    server.kill().await;
}
