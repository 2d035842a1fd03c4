//! Batch sending end to end through the real `mailpush serve`: recipient lists, BatchSendEmail tasks (immediate,
//! scheduled, recurring), the daily-quota pause and next-day continuation on the test clock, ListSendTasks counts.

use mailpush_suite::*;
use mailpush_testkit::{DnsAuthority, SinkMx};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::time::Duration;

struct World {
    _dir: tempfile::TempDir,
    _dns: DnsAuthority,
    sink: SinkMx,
    server: Option<ServerProcess>,
    env: std::collections::HashMap<String, String>,
    creds: Credentials,
    client: ApiClient,
    clock: TestClock,
    template: i64,
}

const SENDER: &str = "news@shop.example.com";
const HTML: &str = "<p>Dear {{name}}, your order {{order}} has shipped. It left our warehouse this morning and should arrive within three working days. Thank you for shopping with us, and have a pleasant day.</p>";
const TEXT: &str = "Dear {{name}}, your order {{order}} has shipped. It left our warehouse this morning and should arrive within three working days. Thank you for shopping with us.";

async fn world(extra: &[(&str, String)]) -> World {
    let dns = DnsAuthority::start().await.expect("dns");
    let sink = SinkMx::start_default().await.expect("sink");
    dns.add_mx("example.org", 10, "mx.example.org");
    dns.add_a("mx.example.org", Ipv4Addr::LOCALHOST);
    let dir = temp_dir();
    let clock = TestClock::new(dir.path());
    let mut vars = vec![
        ("MAILPUSH_DNS_SERVERS", dns.addr().to_string()),
        ("MAILPUSH_DELIVERY_PORT", sink.addr().port().to_string()),
        ("MAILPUSH_BATCH_POLL_MS", "100".to_string()),
        clock.env(),
    ];
    vars.extend(extra.iter().cloned());
    let env = base_env(dir.path(), &vars);
    let creds = create_account_with(&env, "shop", &[]).await;
    let server = ServerProcess::start("mailpush", &["serve"], &env).await;
    let client = ApiClient::new(&server.api_addr, &creds).on_clock(&clock);
    verified_sender(&client, &dns, SENDER).await;
    // A new domain's level-1 quota (500/day) would pause the 20,000-recipient task: start at the top level.
    mailpush_cli(
        &env,
        &["account", "set", "shop", "--domain-level", "shop.example.com=20"],
    )
    .await;
    let r = ok(
        &client,
        "CreateEmailTemplate",
        json!({ "TemplateName": "shipped", "TemplateContent": { "Html": b64(HTML.as_bytes()), "Text": b64(TEXT.as_bytes()) } }),
    )
    .await;
    let template = r["TemplateID"].as_i64().expect("TemplateID");
    World {
        _dir: dir,
        _dns: dns,
        sink,
        server: Some(server),
        env,
        creds,
        client,
        clock,
        template,
    }
}

async fn ok(client: &ApiClient, action: &str, params: Value) -> Value {
    let r = client.call(action, &params).await;
    assert!(r.get("Error").is_none(), "{action}: {r}");
    r
}

fn code(resp: &Value) -> String {
    ApiClient::error_code(resp).unwrap_or_else(|| "OK".into())
}

fn rcpt(i: usize) -> String {
    format!("user{i}@example.org")
}

/// A list of `n` recipients with per-recipient data, uploaded in requests of at most 20,000.
async fn list_of(w: &World, name: &str, n: usize) -> i64 {
    let r = ok(
        &w.client,
        "CreateReceiver",
        json!({ "ReceiversName": name, "Desc": "test" }),
    )
    .await;
    let id = r["ReceiverId"].as_i64().expect("ReceiverId");
    let all: Vec<Value> = (0..n)
        .map(|i| json!({ "Email": rcpt(i), "TemplateData": json!({ "name": format!("N{i}") }).to_string() }))
        .collect();
    for chunk in all.chunks(20_000) {
        let r = ok(
            &w.client,
            "CreateReceiverDetailWithData",
            json!({ "ReceiverId": id, "Datas": chunk }),
        )
        .await;
        assert_eq!(r["ValidCount"], chunk.len() as i64, "{r}");
    }
    id
}

/// `YYYY-MM-DD HH:MM:SS` (UTC) of Unix ms.
fn fmt_time(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil from days (Howard Hinnant).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

async fn batch(w: &World, receiver: i64, task_type: i64, extra: Value) -> i64 {
    let mut p = json!({
        "FromEmailAddress": SENDER,
        "ReceiverId": receiver,
        "Subject": "Order for {{name}}",
        "TaskType": task_type,
        "Template": { "TemplateID": w.template, "TemplateData": json!({ "order": "A-1" }).to_string() },
    });
    if let (Some(p), Some(e)) = (p.as_object_mut(), extra.as_object()) {
        p.extend(e.clone());
    }
    let r = ok(&w.client, "BatchSendEmail", p).await;
    r["TaskId"].as_i64().expect("TaskId")
}

async fn task(w: &World, id: i64) -> Value {
    let r = ok(&w.client, "ListSendTasks", json!({ "Offset": 0, "Limit": 100 })).await;
    r["Data"]
        .as_array()
        .and_then(|d| d.iter().find(|t| t["TaskId"] == id).cloned())
        .unwrap_or_else(|| panic!("task {id} not listed: {r}"))
}

/// Polls until the task satisfies `pred` (240 s: the 20,000-recipient task runs in a debug build on a loaded machine).
async fn wait_task(w: &World, id: i64, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(240);
    loop {
        let t = task(w, id).await;
        if pred(&t) {
            return t;
        }
        assert!(tokio::time::Instant::now() < deadline, "task {id} never {what}: {t}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_thousand_recipients_each_get_one_personalised_mail() {
    const N: usize = 20_000;
    let w = world(&[]).await;
    let list = list_of(&w, "everyone", N).await;
    let started = std::time::Instant::now();
    let id = batch(&w, list, 1, json!({})).await;
    let t = wait_task(&w, id, "done", |t| t["TaskStatus"] == 10).await;
    assert_eq!(t["RequestCount"], N as i64, "{t}");
    assert_eq!(t["SendCount"], N as i64, "{t}");
    assert_eq!(t["CacheCount"], 0, "{t}");
    assert_eq!(t["ReceiversName"], "everyone");
    w.sink
        .wait_for_count(N, Duration::from_secs(200))
        .await
        .expect("all delivered");
    eprintln!("20k task fed and delivered in {:?}", started.elapsed());
    let msgs = w.sink.messages();
    assert_eq!(msgs.len(), N, "exactly one mail per recipient");
    let mut seen = HashSet::new();
    for m in &msgs {
        assert_eq!(m.rcpt_to.len(), 1);
        assert!(
            seen.insert(m.rcpt_to[0].to_ascii_lowercase()),
            "duplicate {}",
            m.rcpt_to[0]
        );
    }
    // Personalisation: every mail carries its own recipient's name (checked on a sample; all are stored).
    for i in (0..N).step_by(997) {
        let m = w.sink.messages_for(&rcpt(i));
        assert_eq!(m.len(), 1, "{}", rcpt(i));
        let text = m[0].text();
        let parsed = m[0].parsed().expect("parse");
        assert_eq!(parsed.subject(), Some(format!("Order for N{i}").as_str()));
        assert!(text.contains(&format!("Dear N{i},")), "{text}");
        assert!(text.contains("A-1"), "task-level TemplateData merged: {text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daily_quota_pauses_the_task_and_it_completes_the_next_day() {
    let w = world(&[
        ("MAILPUSH_BATCH_DAILY_QUOTA", "30".into()),
        ("MAILPUSH_BATCH_CHUNK", "7".into()),
    ])
    .await;
    let list = list_of(&w, "fifty", 50).await;
    let id = batch(&w, list, 1, json!({ "ADLocation": 1 })).await;
    let t = wait_task(&w, id, "paused", |t| t["TaskStatus"] == 6).await;
    assert_eq!(t["SendCount"], 30, "{t}");
    assert_eq!(t["CacheCount"], 20, "{t}");
    assert_eq!(t["RequestCount"], 50, "{t}");
    w.sink
        .wait_for_count(30, Duration::from_secs(30))
        .await
        .expect("30 delivered");
    // Still paused while the day lasts.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(task(&w, id).await["TaskStatus"], 6);
    assert_eq!(w.sink.message_count(), 30);
    w.clock.advance(86_400_000).await;
    let t = wait_task(&w, id, "done", |t| t["TaskStatus"] == 10).await;
    assert_eq!(t["SendCount"], 50, "{t}");
    assert_eq!(t["CacheCount"], 0, "{t}");
    // The operator's view of the same task: the listing, and --follow, which ends at once on a finished task.
    let listed: Value = serde_json::from_str(
        mailpush_cli(&w.env, &["batch", "list", "--account", "shop", "--json"])
            .await
            .trim(),
    )
    .expect("batch list JSON");
    assert_eq!(listed["Data"][0]["TaskId"], id, "{listed}");
    let followed: Value = serde_json::from_str(
        mailpush_cli(
            &w.env,
            &[
                "batch",
                "status",
                "--account",
                "shop",
                &id.to_string(),
                "--follow",
                "--json",
            ],
        )
        .await
        .trim(),
    )
    .expect("batch status JSON");
    assert_eq!(
        (followed["TaskStatus"].clone(), followed["SendCount"].clone()),
        (json!(10), json!(50)),
        "{followed}"
    );
    w.sink
        .wait_for_count(50, Duration::from_secs(30))
        .await
        .expect("50 delivered");
    let msgs = w.sink.messages();
    let unique: HashSet<_> = msgs.iter().map(|m| m.rcpt_to[0].clone()).collect();
    assert_eq!(unique.len(), 50);
    let m = w.sink.messages_for(&rcpt(0));
    assert_eq!(m[0].parsed().expect("parse").subject(), Some("<AD>Order for N0"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_and_recurring_tasks_start_at_their_times() {
    let w = world(&[]).await;
    let list = list_of(&w, "five", 5).await;
    let hour = 3_600_000;
    let begin = fmt_time(w.clock.now_ms() + hour);
    let timed = batch(&w, list, 2, json!({ "TimedParam": { "BeginTime": begin } })).await;
    let cycle = batch(
        &w,
        list,
        3,
        json!({ "CycleParam": { "BeginTime": begin, "IntervalTime": 2, "TermCycle": 0 } }),
    )
    .await;
    let once = batch(
        &w,
        list,
        3,
        json!({ "CycleParam": { "BeginTime": begin, "IntervalTime": 2, "TermCycle": 1 } }),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    for id in [timed, cycle, once] {
        let t = task(&w, id).await;
        assert_eq!(t["TaskStatus"], 1, "not started before BeginTime: {t}");
        assert_eq!(t["SendCount"], 0);
    }
    assert_eq!(w.sink.message_count(), 0);
    // A list in use by unfinished tasks cannot be deleted.
    let r = w.client.call("DeleteReceiver", &json!({ "ReceiverId": list })).await;
    assert_eq!(code(&r), "OperationDenied.ReceiverIsOperating");

    w.clock.advance(hour + 1_000).await;
    let t = wait_task(&w, timed, "done", |t| t["TaskStatus"] == 10).await;
    assert_eq!(t["SendCount"], 5);
    let t = wait_task(&w, once, "done", |t| t["TaskStatus"] == 10).await;
    assert_eq!(t["SendCount"], 5, "TermCycle 1 runs once: {t}");
    let t = wait_task(&w, cycle, "waiting for its next cycle", |t| {
        t["TaskStatus"] == 1 && t["SendCount"] == 5
    })
    .await;
    assert_eq!(t["RequestCount"], 5);
    w.sink
        .wait_for_count(15, Duration::from_secs(30))
        .await
        .expect("first runs");
    // The next cycle starts IntervalTime hours later.
    w.clock.advance(2 * hour).await;
    let t = wait_task(&w, cycle, "ran twice", |t| t["TaskStatus"] == 1 && t["SendCount"] == 10).await;
    assert_eq!(t["RequestCount"], 10);
    w.sink
        .wait_for_count(20, Duration::from_secs(30))
        .await
        .expect("second run");
    for i in 0..5 {
        assert_eq!(w.sink.messages_for(&rcpt(i)).len(), 4, "timed + once + two cycles");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receiver_lists_validate_and_count() {
    let w = world(&[("MAILPUSH_BATCH_MAX_RECEIVER_DETAILS", "10".into())]).await;
    let c = &w.client;
    let r = ok(c, "CreateReceiver", json!({ "ReceiversName": "vip" })).await;
    let id = r["ReceiverId"].as_i64().expect("id");
    let r = c.call("CreateReceiver", &json!({ "ReceiversName": "vip" })).await;
    assert_eq!(code(&r), "InvalidParameterValue.RepeatReceiverName");
    let r = c.call("CreateReceiver", &json!({ "ReceiversName": "" })).await;
    assert_eq!(code(&r), "InvalidParameterValue.ReceiverNameIllegal");
    // An empty list cannot be sent to.
    let r = c
        .call(
            "BatchSendEmail",
            &json!({ "FromEmailAddress": SENDER, "ReceiverId": id, "Subject": "s", "TaskType": 1,
                     "Template": { "TemplateID": w.template, "TemplateData": "{}" } }),
        )
        .await;
    assert_eq!(code(&r), "OperationDenied.ReceiverStatusError");
    let long = format!("{{\"name\":\"{}\"}}", "x".repeat(900));
    let r = ok(
        c,
        "CreateReceiverDetailWithData",
        json!({ "ReceiverId": id, "Datas": [
            { "Email": "a@example.org", "TemplateData": "{\"name\":\"A\"}" },
            { "Email": "A@example.org" },
            { "Email": "not-an-address" },
            { "Email": "" },
            { "Email": "b@example.org", "TemplateData": long },
            { "Email": "c@example.org", "TemplateData": "[1,2]" },
        ] }),
    )
    .await;
    assert_eq!(r["TotalCount"], 6, "{r}");
    assert_eq!(r["ValidCount"], 1, "{r}");
    assert_eq!(r["RepeatCount"], 1, "{r}");
    assert_eq!(r["EmptyEmailCount"], 1, "{r}");
    assert_eq!(r["TooLongCount"], 1, "{r}");
    let r = ok(c, "ListReceivers", json!({ "Offset": 0, "Limit": 10 })).await;
    assert_eq!(r["TotalCount"], 1);
    assert_eq!(r["Data"][0]["ReceiversStatus"], 3, "{r}");
    assert_eq!(r["Data"][0]["InvalidCount"], 3, "{r}");
    assert_eq!(r["Data"][0]["Count"], 4, "{r}");
    let r = ok(
        c,
        "ListReceiverDetails",
        json!({ "ReceiverId": id, "Offset": 0, "Limit": 10, "Status": 2 }),
    )
    .await;
    assert_eq!(r["TotalCount"], 3, "{r}");
    assert!(
        r["Data"]
            .as_array()
            .expect("data")
            .iter()
            .all(|d| !d["Reason"].as_str().unwrap_or("").is_empty())
    );
    // Limits: the list's maximum (10 here) and the per-request maximum.
    let many: Vec<Value> = (0..7).map(|i| json!(format!("m{i}@example.org"))).collect();
    let r = c
        .call("CreateReceiverDetail", &json!({ "ReceiverId": id, "Emails": many }))
        .await;
    assert_eq!(code(&r), "LimitExceeded.ReceiverDetailCountLimit");
    let huge: Vec<Value> = (0..20_001).map(|i| json!(format!("h{i}@example.org"))).collect();
    let r = c
        .call("CreateReceiverDetail", &json!({ "ReceiverId": id, "Emails": huge }))
        .await;
    assert_eq!(code(&r), "LimitExceeded.ReceiverDetailRequestLimit");
    let r = c
        .call(
            "CreateReceiverDetail",
            &json!({ "ReceiverId": 999_999, "Emails": ["z@example.org"] }),
        )
        .await;
    assert_eq!(code(&r), "OperationDenied.ReceiverNotExist");
    // Task validation.
    let base = json!({ "FromEmailAddress": SENDER, "ReceiverId": id, "Subject": "s",
                       "Template": { "TemplateID": w.template, "TemplateData": "{}" } });
    let with = |extra: Value| {
        let mut p = base.clone();
        if let (Some(p), Some(e)) = (p.as_object_mut(), extra.as_object()) {
            p.extend(e.clone());
        }
        p
    };
    let r = c.call("BatchSendEmail", &with(json!({ "TaskType": 2 }))).await;
    assert_eq!(code(&r), "MissingParameter.TimedParamNecessary");
    // Unsubscribe: the SendEmail codes; a footer language needs public_base_url, which this server lacks.
    let r = c
        .call("BatchSendEmail", &with(json!({ "TaskType": 1, "Unsubscribe": "13" })))
        .await;
    assert_eq!(code(&r), "InvalidParameterValue", "{r}");
    let r = c
        .call("BatchSendEmail", &with(json!({ "TaskType": 1, "Unsubscribe": "1" })))
        .await;
    assert_eq!(code(&r), "InvalidParameterValue", "{r}");
    let r = c
        .call(
            "BatchSendEmail",
            &with(json!({ "TaskType": 3, "CycleParam": { "BeginTime": fmt_time(w.clock.now_ms() + 3_600_000) } })),
        )
        .await;
    assert_eq!(code(&r), "MissingParameter.CycleParamNecessary");
    let r = c
        .call(
            "BatchSendEmail",
            &with(json!({ "TaskType": 2, "TimedParam": { "BeginTime": "2001-01-01 00:00:00" } })),
        )
        .await;
    assert_eq!(code(&r), "InvalidParameterValue.BeginTimeBeforeNow");
    let r = c
        .call("BatchSendEmail", &with(json!({ "TaskType": 1, "ReceiverId": 0 })))
        .await;
    assert_eq!(code(&r), "MissingParameter.ReceiverIdNecessary");
    let r = c
        .call(
            "BatchSendEmail",
            &with(json!({ "TaskType": 1, "FromEmailAddress": "x@unknown.example.net" })),
        )
        .await;
    assert_ne!(code(&r), "OK");
    // Nothing uses the list: it can be deleted.
    ok(c, "DeleteReceiver", json!({ "ReceiverId": id })).await;
    let r = ok(c, "ListReceivers", json!({ "Offset": 0, "Limit": 10 })).await;
    assert_eq!(r["TotalCount"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_runner_resumes_where_it_stopped_without_resending() {
    const N: usize = 3_000;
    const WINDOW: usize = 300;
    let mut w = world(&[
        ("MAILPUSH_BATCH_CHUNK", "50".to_string()),
        ("MAILPUSH_BATCH_QUEUE_WINDOW", WINDOW.to_string()),
    ])
    .await;
    let list = list_of(&w, "crash", N).await;
    let id = batch(&w, list, 1, json!({})).await;
    w.sink
        .wait_for_count(300, Duration::from_secs(120))
        .await
        .expect("the task got going");
    w.server.take().expect("server").kill().await;
    let at_kill = w.sink.messages().len();
    assert!(
        at_kill < N,
        "the kill must interrupt the task ({at_kill} of {N} already delivered)"
    );

    let server = ServerProcess::start("mailpush", &["serve"], &w.env).await;
    w.client = ApiClient::new(&server.api_addr, &w.creds).on_clock(&w.clock);
    w.server = Some(server);
    let t = wait_task(&w, id, "done", |t| t["TaskStatus"] == 10).await;
    assert_eq!(t["SendCount"], N as i64, "{t}");
    w.sink
        .wait_for_count(N, Duration::from_secs(200))
        .await
        .expect("all delivered");
    // Let stragglers (redeliveries) arrive before counting.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut per_rcpt: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for m in w.sink.messages() {
        for r in &m.rcpt_to {
            *per_rcpt.entry(r.to_ascii_lowercase()).or_default() += 1;
        }
    }
    for i in 0..N {
        assert!(per_rcpt.contains_key(&rcpt(i)), "{} never got its mail", rcpt(i));
    }
    let duplicates: usize = per_rcpt.values().map(|c| c - 1).sum();
    // Fed chunks commit with the task cursor, so only mail in flight at the kill (at most the account's open
    // window) can go out twice (at-least-once delivery); nothing is fed twice.
    assert!(
        duplicates <= WINDOW,
        "{duplicates} duplicates: more than the {WINDOW} that could be in flight"
    );
    if let Some(server) = w.server.take() {
        server.kill().await;
    }
}

/// `mailpush receivers import`: a CSV file with a header, quoted and unquoted TemplateData and a bad address
/// becomes a recipient list the API lists, with the counts the import reports.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_csv_file_is_imported_into_a_recipient_list() {
    let w = world(&[]).await;
    let csv = w._dir.path().join("list.csv");
    std::fs::write(
        &csv,
        "email,TemplateData\r\n\
         ann@example.org,\"{\"\"name\"\":\"\"Ann, Jr.\"\",\"\"order\"\":\"\"1\"\"}\"\r\n\
         bob@example.org,{\"name\":\"Bob\",\"order\":\"2\"}\n\
         \n\
         not-an-address,{\"name\":\"X\",\"order\":\"3\"}\n",
    )
    .expect("write the CSV file");
    let out = mailpush_cli(
        &w.env,
        &[
            "receivers",
            "import",
            "--account",
            "shop",
            "customers",
            csv.to_str().expect("utf-8 path"),
        ],
    )
    .await;
    let report: Value = serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(report["TotalCount"], 3, "{report}");
    assert_eq!(report["ValidCount"], 2, "{report}");
    assert_eq!(report["InvalidCount"], 1, "{report}");
    let id = report["ReceiverId"].as_i64().expect("ReceiverId");
    let r = ok(
        &w.client,
        "ListReceiverDetails",
        json!({ "ReceiverId": id, "Offset": 0, "Limit": 10 }),
    )
    .await;
    let details = r["Data"].as_array().expect("Data");
    let data_of = |email: &str| {
        details
            .iter()
            .find(|d| d["Email"] == email)
            .map(|d| d["TemplateData"].as_str().unwrap_or_default().to_string())
            .unwrap_or_else(|| panic!("{email} missing: {r}"))
    };
    assert_eq!(data_of("ann@example.org"), "{\"name\":\"Ann, Jr.\",\"order\":\"1\"}");
    assert_eq!(data_of("bob@example.org"), "{\"name\":\"Bob\",\"order\":\"2\"}");
}
