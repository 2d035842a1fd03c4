//! Statistics and the rest of the feedback loop, end to end through the real `mailpush serve`:
//! GetStatisticsReport adds up to the events recorded (delivered, bounced, dropped, opened, clicked,
//! unsubscribed; filters by Domain and ReceivingMailboxType; a period excluding a day, on the test clock),
//! GetAbuseReport lists complaints, the AddressUnsubscribeConfig actions set the default Unsubscribe option,
//! callbacks carry templateId, and a bounce rate above 5 % raises a warning.

use mail_parser::MessageParser;
use mailpush_model::EventKind;
use mailpush_model::clock::{DAY_MS, date_of};
use mailpush_store::{NewEvent, Store, StoreOptions};
use mailpush_suite::*;
use mailpush_testkit::{DnsAuthority, SinkMx, SinkReply};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const BASE: &str = "https://track.mailpush.test";

struct World {
    dir: tempfile::TempDir,
    dns: DnsAuthority,
    sink: SinkMx,
    server: ServerProcess,
    client: ApiClient,
    clock: TestClock,
}

async fn world(extra: &[(&str, String)]) -> World {
    let dns = DnsAuthority::start().await.expect("dns");
    let sink = SinkMx::start_default().await.expect("sink");
    for domain in ["example.org", "example.net"] {
        dns.add_mx(domain, 10, &format!("mx.{domain}"));
        dns.add_a(&format!("mx.{domain}"), Ipv4Addr::LOCALHOST);
    }
    let dir = temp_dir();
    let clock = TestClock::new(dir.path());
    let mut vars = vec![
        ("MAILPUSH_DNS_SERVERS", dns.addr().to_string()),
        ("MAILPUSH_DELIVERY_PORT", sink.addr().port().to_string()),
        ("MAILPUSH_RETRY_SCHEDULE_SECS", "1".to_string()),
        ("MAILPUSH_PUBLIC_BASE_URL", BASE.to_string()),
        ("MAILPUSH_CALLBACK_ALLOW_CIDRS", "127.0.0.0/8".to_string()),
        ("MAILPUSH_CALLBACK_TIMEOUT_SECS", "5".to_string()),
        clock.env(),
    ];
    vars.extend(extra.iter().cloned());
    let env = base_env(dir.path(), &vars);
    let creds = create_account_with(&env, "shop", &["--allow-simple-content", "--allow-links"]).await;
    let server = ServerProcess::start("mailpush", &["serve"], &env).await;
    let client = ApiClient::new(&server.api_addr, &creds).on_clock(&clock);
    verified_sender(&client, &dns, "noreply@shop.example.com").await;
    World {
        dir,
        dns,
        sink,
        server,
        client,
        clock,
    }
}

impl World {
    /// The server's database, opened as a second process would.
    async fn store(&self) -> Store {
        let url = format!("sqlite:{}", self.dir.path().join("mailpush.db").display());
        Store::open(&url, StoreOptions::default())
            .await
            .expect("open the server's database")
    }

    fn local(&self, url: &str) -> String {
        format!(
            "http://{}{}",
            self.server.api_addr,
            url.strip_prefix(BASE).expect("a mailpush link")
        )
    }
}

async fn ok(client: &ApiClient, action: &str, params: Value) -> Value {
    let r = client.call(action, &params).await;
    assert!(r.get("Error").is_none(), "{action} {params}: {r}");
    r
}

fn code(r: &Value) -> String {
    ApiClient::error_code(r).unwrap_or_else(|| "OK".into())
}

async fn send(c: &ApiClient, from: &str, to: &[&str], html: &str, unsubscribe: Option<&str>) -> String {
    let mut p = json!({
        "FromEmailAddress": from,
        "Destination": to,
        "Subject": "News",
        "Simple": { "Html": b64(html.as_bytes()), "Text": b64(b"News in text") },
    });
    if let Some(u) = unsubscribe {
        p["Unsubscribe"] = json!(u);
    }
    let r = ok(c, "SendEmail", p).await;
    r["MessageId"].as_str().expect("MessageId").to_string()
}

/// Links `BASE/<prefix>…` in `text`, in order.
fn links(text: &str, prefix: &str) -> Vec<String> {
    let needle = format!("{BASE}/{prefix}");
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find(&needle) {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| c == '"' || c == '\'' || c == '>' || c.is_whitespace())
            .unwrap_or(tail.len());
        out.push(tail[..end].to_string());
        rest = &tail[end..];
    }
    out
}

/// The HTML and `List-Unsubscribe` of the last mail the sink got for `rcpt`.
fn mail_for(sink: &SinkMx, rcpt: &str) -> (String, Option<String>) {
    let msgs = sink.messages_for(rcpt);
    let m = msgs.last().unwrap_or_else(|| panic!("no mail for {rcpt}"));
    let parsed = MessageParser::default().parse(&m.data).expect("mime");
    (
        parsed.body_html(0).map(|h| h.to_string()).unwrap_or_default(),
        parsed.header_raw("List-Unsubscribe").map(|h| h.trim().to_string()),
    )
}

async fn report(c: &ApiClient, start: &str, end: &str, domain: Option<&str>, mailbox: Option<&str>) -> Value {
    let mut p = json!({ "StartDate": start, "EndDate": end });
    if let Some(d) = domain {
        p["Domain"] = json!(d);
    }
    if let Some(m) = mailbox {
        p["ReceivingMailboxType"] = json!(m);
    }
    ok(c, "GetStatisticsReport", p).await
}

/// (Request, Accepted, Delivered, Opened, Clicked, Bounce, Unsubscribe) of a Volume.
fn counts(v: &Value) -> [i64; 7] {
    [
        "RequestCount",
        "AcceptedCount",
        "DeliveredCount",
        "OpenedCount",
        "ClickedCount",
        "BounceCount",
        "UnsubscribeCount",
    ]
    .map(|k| v[k].as_i64().unwrap_or_else(|| panic!("{k} in {v}")))
}

/// Waits until `f` holds for the report of `start..=end`.
async fn wait_report(c: &ApiClient, start: &str, end: &str, f: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let r = report(c, start, end, None, None).await;
        if f(&r) {
            return r;
        }
        assert!(tokio::time::Instant::now() < deadline, "report never got there: {r}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// What the event log says for one UTC day: the same 7 counts, computed from the rows (requests from
/// GetSendEmailStatus, opens and clicks as distinct recipients' first ones).
async fn counts_from_events(w: &World, store: &Store, day_start: i64, sender_domain: Option<&str>) -> [i64; 7] {
    let acc = store
        .accounts()
        .account_by_name("shop")
        .await
        .expect("account")
        .expect("shop");
    let all = store
        .events()
        .account_events(acc.id, 0, i64::MAX, 100_000)
        .await
        .expect("events");
    let in_day = |at: i64| at >= day_start && at < day_start + DAY_MS;
    // Sender of each message, from the status rows of every day that has mail.
    let mut sender: HashMap<String, String> = HashMap::new();
    let mut requested = 0;
    let mut accepted = 0;
    for d in [day_start - DAY_MS, day_start, day_start + DAY_MS] {
        let r = ok(
            &w.client,
            "GetSendEmailStatus",
            json!({ "RequestDate": date_of(d), "Offset": 0, "Limit": 100 }),
        )
        .await;
        for row in r["EmailStatusList"].as_array().cloned().unwrap_or_default() {
            let id = row["MessageId"].as_str().unwrap_or_default().to_string();
            let from = row["FromEmailAddress"].as_str().unwrap_or_default().to_string();
            let domain = from.rsplit_once('@').map(|(_, d)| d.to_string()).unwrap_or_default();
            if d == day_start && sender_domain.is_none_or(|s| s == domain) {
                requested += 1;
                if row["SendStatus"] == 0 {
                    accepted += 1;
                }
            }
            sender.insert(id, domain);
        }
    }
    let ours =
        |e: &NewEvent| sender_domain.is_none_or(|s| sender.get(e.message_id.as_str()).map(String::as_str) == Some(s));
    let mut c = [requested, accepted, 0, 0, 0, 0, 0];
    let mut dropped = 0;
    let mut first_seen: HashSet<(String, String, i32)> = HashSet::new();
    let mut events: Vec<&NewEvent> = all.iter().map(|e| &e.event).collect();
    events.sort_by_key(|e| e.at_ms);
    for e in events {
        let first = first_seen.insert((e.message_id.as_str().to_string(), e.recipient.clone(), e.kind.id()));
        if !in_day(e.at_ms) || !ours(e) {
            continue;
        }
        match e.kind {
            EventKind::Delivered => c[2] += 1,
            EventKind::Open if first => c[3] += 1,
            EventKind::Click if first => c[4] += 1,
            EventKind::Bounce => c[5] += 1,
            EventKind::Unsubscribe => c[6] += 1,
            EventKind::Dropped => dropped += 1,
            _ => {}
        }
    }
    assert_eq!(
        requested - accepted,
        dropped,
        "each recipient dropped at admission has its dropped event"
    );
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statistics_add_up_to_the_events_recorded() {
    let w = world(&[]).await;
    let c = &w.client;
    verified_sender(c, &w.dns, "news@other.example.com").await;
    w.sink
        .set_reply("gone@example.org", SinkReply::reply(550, "5.1.1 no such user"));
    let html = "<html><body><p>See <a href=\"https://shop.example.com/sale\">the sale</a></p></body></html>";
    let day0 = w.clock.now_ms() - w.clock.now_ms().rem_euclid(DAY_MS);
    let (d0, d1, dm1) = (date_of(day0), date_of(day0 + DAY_MS), date_of(day0 - DAY_MS));

    // Day 0: delivered, bounced (550), then that address dropped (blacklisted); two sending domains.
    send(
        c,
        "noreply@shop.example.com",
        &["ok1@example.org", "gone@example.org", "net1@example.net"],
        html,
        Some("2"),
    )
    .await;
    wait_report(c, &d0, &d0, |r| {
        r["OverallVolume"]["DeliveredCount"] == 2 && r["OverallVolume"]["BounceCount"] == 1
    })
    .await;
    send(
        c,
        "noreply@shop.example.com",
        &["gone@example.org", "ok2@example.org"],
        html,
        None,
    )
    .await;
    send(c, "news@other.example.com", &["net2@example.net"], html, None).await;
    wait_report(c, &d0, &d0, |r| r["OverallVolume"]["DeliveredCount"] == 4).await;

    // Engagement: net1 opens twice, clicks and unsubscribes (one-click POST); ok1 opens once.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let (net1_html, net1_unsub) = mail_for(&w.sink, "net1@example.net");
    let pixel = w.local(&links(&net1_html, "t/o/").remove(0));
    for _ in 0..2 {
        assert_eq!(http.get(&pixel).send().await.unwrap().status(), 200);
    }
    let click = w.local(&links(&net1_html, "t/c/").remove(0));
    assert!(http.get(&click).send().await.unwrap().status().is_redirection());
    let unsub = w.local(&links(&net1_unsub.expect("List-Unsubscribe"), "u/").remove(0));
    let resp = http
        .post(&unsub)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let (ok1_html, _) = mail_for(&w.sink, "ok1@example.org");
    let ok1_pixel = w.local(&links(&ok1_html, "t/o/").remove(0));
    assert_eq!(http.get(&ok1_pixel).send().await.unwrap().status(), 200);

    let r = wait_report(c, &d0, &d0, |r| r["OverallVolume"]["UnsubscribeCount"] == 1).await;
    //                              Req Acc Del Opn Clk Bnc Uns
    assert_eq!(counts(&r["OverallVolume"]), [6, 5, 4, 2, 1, 1, 1], "{r}");
    let daily = r["DailyVolumes"].as_array().expect("DailyVolumes");
    assert_eq!(daily.len(), 1);
    assert_eq!(daily[0]["SendDate"], d0.as_str());

    // Day 1 (test clock): one more mail; ok1 opens again (not a new opener), ok2 opens for the first time.
    w.clock.advance(DAY_MS).await;
    send(c, "noreply@shop.example.com", &["late@example.org"], html, None).await;
    assert_eq!(http.get(&ok1_pixel).send().await.unwrap().status(), 200);
    let (ok2_html, _) = mail_for(&w.sink, "ok2@example.org");
    let ok2_pixel = w.local(&links(&ok2_html, "t/o/").remove(0));
    assert_eq!(http.get(&ok2_pixel).send().await.unwrap().status(), 200);
    let r = wait_report(c, &d1, &d1, |r| {
        r["OverallVolume"]["DeliveredCount"] == 1 && r["OverallVolume"]["OpenedCount"] == 1
    })
    .await;
    // A period excluding day 0.
    assert_eq!(counts(&r["OverallVolume"]), [1, 1, 1, 1, 0, 0, 0], "{r}");

    // Both days, and the day before (nothing): one Volume per day, Overall their sum.
    let r = report(c, &dm1, &d1, None, None).await;
    let daily = r["DailyVolumes"].as_array().expect("DailyVolumes").clone();
    let dates: Vec<&str> = daily.iter().map(|v| v["SendDate"].as_str().unwrap()).collect();
    assert_eq!(dates, [dm1.as_str(), d0.as_str(), d1.as_str()]);
    assert_eq!(counts(&daily[0]), [0; 7]);
    assert_eq!(counts(&daily[1]), [6, 5, 4, 2, 1, 1, 1]);
    assert_eq!(counts(&daily[2]), [1, 1, 1, 1, 0, 0, 0]);
    assert_eq!(counts(&r["OverallVolume"]), [7, 6, 5, 3, 1, 1, 1]);

    // Every count equals what the event log recorded for that day.
    let store = w.store().await;
    for (day, vol) in [(day0, &daily[1]), (day0 + DAY_MS, &daily[2])] {
        assert_eq!(
            counts(vol),
            counts_from_events(&w, &store, day, None).await,
            "day {}",
            date_of(day)
        );
    }

    // Filters: the sending domain, the recipients' mailbox domain, both.
    let shop = report(c, &d0, &d0, Some("shop.example.com"), None).await;
    assert_eq!(counts(&shop["OverallVolume"]), [5, 4, 3, 2, 1, 1, 1], "{shop}");
    assert_eq!(
        counts(&shop["OverallVolume"]),
        counts_from_events(&w, &store, day0, Some("shop.example.com")).await
    );
    let other = report(c, &d0, &d0, Some("other.example.com"), None).await;
    assert_eq!(counts(&other["OverallVolume"]), [1, 1, 1, 0, 0, 0, 0], "{other}");
    let net = report(c, &d0, &d0, None, Some("example.net")).await;
    assert_eq!(counts(&net["OverallVolume"]), [2, 2, 2, 1, 1, 0, 1], "{net}");
    let shop_net = report(c, &d0, &d0, Some("SHOP.example.com"), Some("example.net")).await;
    assert_eq!(counts(&shop_net["OverallVolume"]), [1, 1, 1, 1, 1, 0, 1], "{shop_net}");
    let org = report(c, &d0, &d1, None, Some("example.org")).await;
    assert_eq!(counts(&org["OverallVolume"]), [5, 4, 3, 2, 0, 1, 0], "{org}");

    // Complaints written straight to the event log (as the inbound MX does) show in GetAbuseReport.
    let net1_id = store
        .queue()
        .status(mailpush_store::StatusQuery {
            account_id: store.accounts().account_by_name("shop").await.unwrap().unwrap().id,
            from_ms: day0,
            to_ms: day0 + DAY_MS,
            message_id: None,
            to_address: Some("net1@example.net".into()),
            offset: 0,
            limit: 10,
        })
        .await
        .expect("status")[0]
        .message_id
        .clone();
    let acc = store.accounts().account_by_name("shop").await.unwrap().unwrap();
    store
        .events()
        .record_events(&[NewEvent {
            account_id: acc.id,
            message_id: net1_id.clone(),
            recipient: "net1@example.net".into(),
            kind: EventKind::SpamReport,
            at_ms: w.clock.now_ms(),
            reason: "abuse".into(),
            bounce_type: None,
            link: None,
            user_agent: None,
        }])
        .await
        .expect("spamreport");
    let abuse = ok(
        c,
        "GetAbuseReport",
        json!({ "StartTime": d0, "EndTime": d1, "Offset": 0, "Limit": 10 }),
    )
    .await;
    assert_eq!(abuse["TotalCount"], 1, "{abuse}");
    let a = &abuse["Data"][0];
    assert_eq!(a["OriginalRcptTo"], "net1@example.net");
    assert_eq!(a["OriginalMailFrom"], "noreply@shop.example.com");
    assert_eq!(a["FromDomain"], "shop.example.com");
    assert_eq!(a["Mta"], "example.net");
    assert_eq!(a["MessageId"], net1_id.as_str());
    // The filters of the SDK's request model narrow the list.
    for (filter, want) in [
        (json!({ "Mta": "example.net" }), 1),
        (json!({ "Mta": "example.org" }), 0),
        (json!({ "ToAddress": "NET1@example.net" }), 1),
        (json!({ "FromDomain": "other.example.com" }), 0),
        (json!({ "FromAddress": "noreply@shop.example.com" }), 1),
        (json!({ "TemplateId": "999" }), 0),
    ] {
        let mut params = json!({ "StartTime": d0, "EndTime": d1 });
        for (k, v) in filter.as_object().expect("object") {
            params[k] = v.clone();
        }
        let r = ok(c, "GetAbuseReport", params.clone()).await;
        assert_eq!(r["TotalCount"], want, "{params}: {r}");
    }
    let none = ok(c, "GetAbuseReport", json!({ "StartTime": d0, "EndTime": d0 })).await;
    assert_eq!(none["TotalCount"], 0, "{none}");
    store.close().await;

    // Bad dates and ranges get Tencent's codes.
    for (start, end, want) in [
        ("2026-13-01", d0.as_str(), "InvalidParameterValue.WrongDate"),
        (d1.as_str(), d0.as_str(), "InvalidParameterValue.WrongDate"),
        ("2020-01-01", d0.as_str(), "FailedOperation.NotSupportDate"),
    ] {
        let r = c
            .call("GetStatisticsReport", &json!({ "StartDate": start, "EndDate": end }))
            .await;
        assert_eq!(code(&r), want, "{start}..{end}: {r}");
    }
    let r = c.call("GetStatisticsReport", &json!({ "StartDate": d0 })).await;
    assert_eq!(code(&r), "MissingParameter", "{r}");
    let r = c
        .call(
            "GetAbuseReport",
            &json!({ "StartTime": d0, "EndTime": d0, "Limit": 1001 }),
        )
        .await;
    assert_eq!(code(&r), "FailedOperation.InvalidLimit", "{r}");
    drop(w.dir);
}

/// A minimal HTTP receiver that answers 200 and records the bodies it got.
#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<Value>>>,
}

impl Receiver {
    async fn start(&self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut s, _)) = listener.accept().await else {
                    return;
                };
                let me = me.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    loop {
                        let Ok(n) = s.read(&mut chunk).await else { return };
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                            continue;
                        };
                        let head = String::from_utf8_lossy(&buf[..i]).to_ascii_lowercase();
                        let len: usize = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse().ok())
                            .unwrap_or(0);
                        if buf.len() < i + 4 + len {
                            continue;
                        }
                        if let Ok(v) = serde_json::from_slice(&buf[i + 4..i + 4 + len]) {
                            me.got.lock().unwrap().push(v);
                        }
                        let _ = s
                            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                            .await;
                        return;
                    }
                });
            }
        });
        format!("http://{addr}/hook")
    }
}

/// Submits one plain mail over SMTP (a trusted network: no AUTH), reading each reply.
async fn smtp_submit(addr: &str, from: &str, to: &str) {
    use tokio::io::AsyncBufReadExt;
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect smtp");
    let (read, mut write) = stream.into_split();
    let mut lines = tokio::io::BufReader::new(read).lines();
    async fn reply(lines: &mut tokio::io::Lines<tokio::io::BufReader<tokio::net::tcp::OwnedReadHalf>>) -> String {
        loop {
            let line = lines.next_line().await.expect("read").expect("a reply");
            if line.as_bytes().get(3) != Some(&b'-') {
                return line;
            }
        }
    }
    assert!(reply(&mut lines).await.starts_with("220"));
    let data =
        format!("From: {from}\r\nTo: {to}\r\nSubject: Via SMTP\r\nContent-Type: text/plain\r\n\r\nPlain body\r\n.");
    for (cmd, want) in [
        ("EHLO client.test".to_string(), "250"),
        (format!("MAIL FROM:<{from}>"), "250"),
        (format!("RCPT TO:<{to}>"), "250"),
        ("DATA".to_string(), "354"),
        (data, "250"),
        ("QUIT".to_string(), "221"),
    ] {
        write.write_all(format!("{cmd}\r\n").as_bytes()).await.expect("write");
        let r = reply(&mut lines).await;
        assert!(r.starts_with(want), "{cmd:?} → {r}");
    }
}

/// Passes every review rule as a notification: ~40 words of text around a placeholder.
const TEMPLATE_HTML: &str = "<p>Dear {{name}}, your order has shipped. It left our warehouse this morning and should arrive within three working days. Thank you for shopping with us, and have a pleasant day.</p>";
const TEMPLATE_TEXT: &str = "Dear {{name}}, your order has shipped. It left our warehouse this morning and should arrive within three working days. Thank you for shopping with us.";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsubscribe_configs_set_the_default_and_callbacks_carry_the_template_id() {
    let w = world(&[
        ("MAILPUSH_SMTP_LISTEN", "127.0.0.1:0".to_string()),
        ("MAILPUSH_SMTP_TRUSTED_NETWORKS", "127.0.0.0/8".to_string()),
        ("MAILPUSH_SMTP_TRUSTED_ACCOUNT", "shop".to_string()),
    ])
    .await;
    let c = &w.client;
    let html = "<html><body><p>Hello</p></body></html>";

    // CRUD with the SDK's fields and codes.
    let r = c
        .call(
            "CreateAddressUnsubscribeConfig",
            &json!({ "Address": "nobody@shop.example.com", "UnsubscribeConfig": "2", "Status": 1 }),
        )
        .await;
    assert_eq!(code(&r), "InvalidParameterValue.NoSuchSender", "{r}");
    let r = c
        .call(
            "CreateAddressUnsubscribeConfig",
            &json!({ "Address": "noreply@shop.example.com", "UnsubscribeConfig": "13", "Status": 1 }),
        )
        .await;
    assert_eq!(code(&r), "InvalidParameterValue", "{r}");
    ok(
        c,
        "CreateAddressUnsubscribeConfig",
        json!({ "Address": "noreply@shop.example.com", "UnsubscribeConfig": "2", "Status": 1 }),
    )
    .await;
    let r = c
        .call(
            "CreateAddressUnsubscribeConfig",
            &json!({ "Address": "noreply@shop.example.com", "UnsubscribeConfig": "1", "Status": 1 }),
        )
        .await;
    assert_eq!(code(&r), "InvalidParameterValue.RepeatCreation", "{r}");
    let list = ok(c, "ListAddressUnsubscribeConfig", json!({ "Offset": 0, "Limit": "10" })).await;
    assert_eq!(list["Total"], 1, "{list}");
    assert_eq!(
        list["AddressUnsubscribeConfigList"][0],
        json!({ "Address": "noreply@shop.example.com", "UnsubscribeConfig": "2", "Status": 1 })
    );

    // No Unsubscribe in the request: the config adds the footer and List-Unsubscribe.
    send(c, "noreply@shop.example.com", &["a@example.org"], html, None).await;
    w.sink
        .wait_for_count(1, Duration::from_secs(30))
        .await
        .expect("delivered");
    let (body, header) = mail_for(&w.sink, "a@example.org");
    assert!(
        header.is_some_and(|h| h.contains(&format!("<{BASE}/u/"))),
        "default applied"
    );
    assert!(body.contains("unsubscribe</a>"), "English footer: {body}");
    // An explicit Unsubscribe wins, even "0".
    send(c, "noreply@shop.example.com", &["b@example.org"], html, Some("0")).await;
    w.sink
        .wait_for_count(2, Duration::from_secs(30))
        .await
        .expect("delivered");
    assert_eq!(mail_for(&w.sink, "b@example.org").1, None, "explicit 0 wins");
    // SMTP submission from the address: the List-Unsubscribe headers (no footer: the MIME is kept as sent).
    smtp_submit(
        &w.server.announced_addr("smtp").expect("smtp listener"),
        "noreply@shop.example.com",
        "s@example.org",
    )
    .await;
    w.sink
        .wait_for_count(3, Duration::from_secs(30))
        .await
        .expect("delivered");
    let smtp_mail = w.sink.messages_for("s@example.org").pop().expect("smtp mail");
    let parsed = MessageParser::default().parse(&smtp_mail.data).expect("mime");
    assert!(
        parsed
            .header_raw("List-Unsubscribe")
            .is_some_and(|h| h.contains(&format!("<{BASE}/u/"))),
        "{}",
        String::from_utf8_lossy(&smtp_mail.data)
    );
    assert_eq!(
        parsed.header_raw("List-Unsubscribe-Post").map(str::trim),
        Some("List-Unsubscribe=One-Click")
    );
    assert!(parsed.body_text(0).is_some_and(|t| t.contains("Plain body")));
    // Status 0 turns the default off.
    ok(
        c,
        "UpdateAddressUnsubscribeConfig",
        json!({ "Address": "noreply@shop.example.com", "UnsubscribeConfig": "2", "Status": 0 }),
    )
    .await;
    send(c, "noreply@shop.example.com", &["c@example.org"], html, None).await;
    w.sink
        .wait_for_count(4, Duration::from_secs(30))
        .await
        .expect("delivered");
    assert_eq!(mail_for(&w.sink, "c@example.org").1, None, "config off");
    ok(
        c,
        "UpdateAddressUnsubscribeConfig",
        json!({ "Address": "noreply@shop.example.com", "UnsubscribeConfig": "1", "Status": 1 }),
    )
    .await;
    send(c, "noreply@shop.example.com", &["d@example.org"], html, None).await;
    w.sink
        .wait_for_count(5, Duration::from_secs(30))
        .await
        .expect("delivered");
    assert!(mail_for(&w.sink, "d@example.org").1.is_some(), "config on again");
    ok(
        c,
        "DeleteAddressUnsubscribeConfig",
        json!({ "Address": "noreply@shop.example.com" }),
    )
    .await;
    let r = c
        .call(
            "DeleteAddressUnsubscribeConfig",
            &json!({ "Address": "noreply@shop.example.com" }),
        )
        .await;
    assert_eq!(code(&r), "InvalidParameterValue", "{r}");
    let list = ok(c, "ListAddressUnsubscribeConfig", json!({})).await;
    assert_eq!(list["Total"], 0, "{list}");
    send(c, "noreply@shop.example.com", &["e@example.org"], html, None).await;
    w.sink
        .wait_for_count(6, Duration::from_secs(30))
        .await
        .expect("delivered");
    assert_eq!(mail_for(&w.sink, "e@example.org").1, None, "config deleted");

    // templateId in callbacks: a templated mail's delivered event names its template.
    let receiver = Receiver::default();
    let url = receiver.start().await;
    ok(c, "SetCallbackUrl", json!({ "CallbackUrl": url })).await;
    let t = ok(
        c,
        "CreateEmailTemplate",
        json!({
            "TemplateName": "shipped",
            "TemplateContent": { "Html": b64(TEMPLATE_HTML.as_bytes()), "Text": b64(TEMPLATE_TEXT.as_bytes()) },
        }),
    )
    .await;
    let template_id = t["TemplateID"].as_i64().expect("TemplateID");
    let r = ok(
        c,
        "SendEmail",
        json!({
            "FromEmailAddress": "noreply@shop.example.com",
            "Destination": ["t@example.org"],
            "Subject": "Shipped",
            "Template": { "TemplateID": template_id, "TemplateData": "{\"name\":\"Ann\"}" },
        }),
    )
    .await;
    let templated = r["MessageId"].as_str().unwrap().to_string();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let got = receiver.got.lock().unwrap().clone();
        let hit = got
            .iter()
            .find(|v| v["bulkId"] == templated.as_str() && v["event"] == "delivered");
        if let Some(v) = hit {
            assert_eq!(v["templateId"], template_id, "{v}");
            // Mail without a template reports 0.
            assert!(
                got.iter()
                    .filter(|v| v["bulkId"] != templated.as_str())
                    .all(|v| v["templateId"] == 0),
                "{got:?}"
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no callback for the templated mail: {got:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(w.dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bounce_rate_above_five_percent_raises_a_warning() {
    let w = world(&[
        ("MAILPUSH_REPUTATION_MIN_SENDS", "4".to_string()),
        ("MAILPUSH_BOUNCE_CHECK_SECS", "1".to_string()),
    ])
    .await;
    let c = &w.client;
    let html = "<p>Hello</p>";
    w.sink
        .set_reply("gone@example.org", SinkReply::reply(550, "5.1.1 no such user"));
    // 19 delivered + 1 bounced = 5 %: not above the threshold, no warning.
    let to: Vec<String> = (0..19).map(|i| format!("ok{i}@example.org")).collect();
    let mut all: Vec<&str> = to.iter().map(String::as_str).collect();
    all.push("gone@example.org");
    send(c, "noreply@shop.example.com", &all, html, Some("0")).await;
    let d0 = date_of(w.clock.now_ms());
    wait_report(c, &d0, &d0, |r| {
        r["OverallVolume"]["DeliveredCount"] == 19 && r["OverallVolume"]["BounceCount"] == 1
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let r = ok(c, "ListReputationWarnings", json!({})).await;
    assert_eq!(
        r["Warnings"].as_array().map(Vec::len),
        Some(0),
        "5 % is not above 5 %: {r}"
    );

    // One more bounce: 2 / 21 > 5 %.
    w.sink
        .set_reply("gone2@example.org", SinkReply::reply(550, "5.1.1 no such user"));
    send(c, "noreply@shop.example.com", &["gone2@example.org"], html, Some("0")).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let warning = loop {
        let r = ok(c, "ListReputationWarnings", json!({})).await;
        if let Some(w) = r["Warnings"].as_array().and_then(|a| a.first()).cloned() {
            break w;
        }
        assert!(tokio::time::Instant::now() < deadline, "no warning raised");
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert_eq!(warning["Kind"], "bounce_rate");
    assert_eq!(warning["InForce"], true);
    assert_eq!(
        (warning["DeliveredCount"].clone(), warning["BounceCount"].clone()),
        (json!(19), json!(2))
    );
    assert!(warning["BounceRate"].as_f64().unwrap() > 9.0, "{warning}");
    assert_eq!(warning["Threshold"], 5.0);
    // Metrics: the counter and the account's gauges.
    let metrics = metrics_until(&w.server.api_addr, |m| {
        m.contains("mailpush_bounce_rate_warnings_total 1")
            && m.contains("mailpush_account_bounce_warning{account=\"shop\"} 1")
            && m.contains("mailpush_account_bounce_rate_percent{account=\"shop\"} 9.52")
    })
    .await;
    assert!(metrics.contains("mailpush_bounce_rate_warnings_total 1"), "{metrics}");
    assert!(
        metrics.contains("mailpush_account_bounce_warning{account=\"shop\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("mailpush_account_bounce_rate_percent{account=\"shop\"} 9.52"),
        "{metrics}"
    );
    // Raised once, however often the monitor runs.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let r = ok(c, "ListReputationWarnings", json!({})).await;
    assert_eq!(r["Warnings"].as_array().map(Vec::len), Some(1), "{r}");
    drop(w.dir);
}
