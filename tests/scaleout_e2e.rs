//! Scale-out on one PostgreSQL: two `mailpush-api` and two `mailpush-worker` processes share a fresh database
//! (a schema of the test's own) and deliver to a real SMTP sink. Sends are spread over both APIs at once, and
//!
//! - every accepted mail reaches the sink exactly once (counted by recipient and by Message-ID), none is lost,
//!   no refused one arrives;
//! - the limits hold exactly across the processes: with a daily quota of N, exactly N of M > N sends are
//!   accepted (the rest `FailedOperation.ExceedSendLimit`); with a per-recipient hourly cap of K, exactly K mails
//!   to one address (the rest `FailedOperation.FrequencyLimit`); with a rate of R per second, no second of request
//!   time admits more than R and a second that refused a send (`RequestLimitExceeded`) admitted exactly R.
//!
//! The bursts straddle a second boundary, where mails of two seconds commit out of request-time order; whether
//! a run sees a late mail of a full second is up to the scheduler, so that case is pinned deterministically by the
//! store's conformance case `rate_counts_each_second_of_request_time` (it used to reset the second's count).
//!
//! Nothing here is timed: the rate check reads the accepted mails' request times from the database and the
//! refusals' seconds from the client's clock (same host), and only judges refusals whose request started and
//! was answered within one second.
//!
//! Needs `MAILPUSH_TEST_POSTGRES_URL` (skipped with a notice when unset) and the workspace's binaries
//! (`mailpush-api`, `mailpush-worker`, `mailpush` for the CLI), which `cargo nextest run --workspace` builds.

use mailpush_suite::*;
use mailpush_testkit::DnsAuthority;
use serde_json::json;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, SystemTime};

/// Mails of the delivery check (distinct recipients, spread over both APIs).
const BULK: usize = 200;
/// Concurrent requests in flight per burst.
const CLIENTS: usize = 16;
/// Daily quota (recipients) of the quota account, and the sends tried against it.
const QUOTA: usize = 30;
const QUOTA_TRIES: usize = 60;
/// Per-recipient hourly cap of the cap account, and the sends tried to one address.
const CAP: usize = 4;
const CAP_TRIES: usize = 30;
/// Sends per second of the rate account, and the sends of one burst.
const RATE: usize = 5;
const RATE_BURST: usize = 40;

/// What one send observed.
struct Sent {
    /// Recipient (one per mail).
    to: String,
    /// `Ok(MessageId)` or `Err(error code)`.
    result: Result<String, String>,
    /// Client clock, Unix ms, when the request left and when the reply came.
    started_ms: i64,
    answered_ms: i64,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Sends one mail from `from` to each of `to`, `CLIENTS` at a time, alternating between `clients` (the APIs).
async fn spread(clients: &[ApiClient], from: &str, to: Vec<String>) -> Vec<Sent> {
    let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(CLIENTS));
    let mut tasks = tokio::task::JoinSet::new();
    for (i, to) in to.into_iter().enumerate() {
        let client = clients[i % clients.len()].clone();
        let sem = sem.clone();
        let body = json!({
            "FromEmailAddress": from,
            "Destination": [to],
            "Subject": format!("scale-out {i}"),
            "Simple": { "Text": b64(format!("mail {i} to {to}").as_bytes()) },
        });
        tasks.spawn(async move {
            let _permit = sem.acquire_owned().await.expect("semaphore");
            let started_ms = now_ms();
            let r = client.call("SendEmail", &body).await;
            let answered_ms = now_ms();
            let result = match (r["MessageId"].as_str(), ApiClient::error_code(&r)) {
                (Some(id), None) => Ok(id.to_string()),
                (_, Some(code)) => Err(code),
                _ => panic!("neither MessageId nor error: {r}"),
            };
            Sent {
                to,
                result,
                started_ms,
                answered_ms,
            }
        });
    }
    let mut out = Vec::new();
    while let Some(r) = tasks.join_next().await {
        out.push(r.expect("send task"));
    }
    out
}

/// The accepted ones of `sent` (MessageId by recipient) and the error codes of the others.
fn split(sent: &[Sent]) -> (HashMap<String, String>, Vec<String>) {
    let mut ok = HashMap::new();
    let mut codes = Vec::new();
    for s in sent {
        match &s.result {
            Ok(id) => {
                ok.insert(s.to.clone(), id.clone());
            }
            Err(code) => codes.push(code.clone()),
        }
    }
    (ok, codes)
}

/// An account with a verified sender `news@<domain>` and the given `account set` options.
async fn sender(
    env: &HashMap<String, String>,
    dns: &DnsAuthority,
    api: &str,
    name: &str,
    set: &[&str],
) -> (Credentials, String) {
    let creds = create_account(env, name).await;
    let domain = format!("{name}.example.com");
    let from = format!("news@{domain}");
    verified_sender(&ApiClient::new(api, &creds), dns, &from).await;
    let mut args = vec!["account", "set", name];
    args.extend_from_slice(set);
    mailpush_cli(env, &args).await;
    (creds, from)
}

/// A fresh schema `name` (`None` without PostgreSQL), and the DNS authority, the sink and the nodes' environment
/// on its database, plus `extra` settings.
async fn world_on(name: &str, extra: &[(&str, String)]) -> Option<(PgSchema, MailWorld)> {
    let schema = PgSchema::create(name).await?;
    let mut settings = vec![
        ("MAILPUSH_DATABASE_URL", schema.url.clone()),
        // The worker nodes announce their admin listener, which is how the harness sees them up.
        ("MAILPUSH_ADMIN_LISTEN", "127.0.0.1:0".to_string()),
    ];
    settings.extend(extra.iter().cloned());
    let world = mail_world(&settings).await;
    Some((schema, world))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_apis_and_two_workers_on_one_postgres() {
    let Some((schema, world)) = world_on("scaleout_e2e", &[]).await else {
        return;
    };
    let (dns, sink, env) = (&world.dns, &world.sink, &world.env);
    // The database and its schema first (the CLI migrates it), then the nodes.
    let bulk_creds = create_account(env, "bulk").await;
    let api_a = ServerProcess::start("mailpush-api", &[], env).await;
    let api_b = ServerProcess::start("mailpush-api", &[], env).await;
    let worker_a = ServerProcess::start("mailpush-worker", &[], env).await;
    let worker_b = ServerProcess::start("mailpush-worker", &[], env).await;
    let apis = [api_a.api_addr.clone(), api_b.api_addr.clone()];
    let clients_of = |creds: &Credentials| apis.iter().map(|a| ApiClient::new(a, creds)).collect::<Vec<_>>();

    // The bulk account: no rate limit, a high level; the other accounts each have one limit under test.
    let bulk_from = "news@bulk.example.com".to_string();
    verified_sender(&ApiClient::new(&apis[0], &bulk_creds), dns, &bulk_from).await;
    mailpush_cli(
        env,
        &[
            "account",
            "set",
            "bulk",
            "--sends-per-second",
            "1000000",
            "--domain-level",
            "bulk.example.com=20",
        ],
    )
    .await;
    let quota_cap = QUOTA.to_string();
    let (quota_creds, quota_from) = sender(
        env,
        dns,
        &apis[1],
        "quota",
        &["--sends-per-second", "1000000", "--daily-cap", &quota_cap],
    )
    .await;
    let per_hour = CAP.to_string();
    let (cap_creds, cap_from) = sender(
        env,
        dns,
        &apis[0],
        "cap",
        &["--sends-per-second", "1000000", "--per-recipient-per-hour", &per_hour],
    )
    .await;
    let rate = RATE.to_string();
    let (rate_creds, rate_from) = sender(env, dns, &apis[1], "rate", &["--sends-per-second", &rate]).await;

    // Delivery: every accepted mail once, spread over both APIs, delivered by whichever worker claims it.
    let bulk = spread(
        &clients_of(&bulk_creds),
        &bulk_from,
        (0..BULK).map(|i| format!("bulk{i}@example.org")).collect(),
    )
    .await;
    let (mut accepted, codes) = split(&bulk);
    assert!(codes.is_empty(), "bulk sends refused: {codes:?}");

    // Daily quota: exactly QUOTA of QUOTA_TRIES distinct recipients, over both APIs at once.
    let sent = spread(
        &clients_of(&quota_creds),
        &quota_from,
        (0..QUOTA_TRIES).map(|i| format!("quota{i}@example.org")).collect(),
    )
    .await;
    let (ok, codes) = split(&sent);
    assert_eq!(ok.len(), QUOTA, "daily quota across two APIs: {codes:?}");
    assert!(
        codes.iter().all(|c| c == "FailedOperation.ExceedSendLimit"),
        "{codes:?}"
    );
    let q = ApiClient::new(&apis[0], &quota_creds)
        .call("GetSendQuota", &json!({}))
        .await;
    assert_eq!(q["SentToday"], QUOTA, "{q}");
    assert_eq!(q["RemainingToday"], 0, "{q}");
    accepted.extend(ok);

    // Per-recipient hourly cap: exactly CAP of CAP_TRIES mails to one address.
    let cap_to = "capped@example.org".to_string();
    let sent = spread(&clients_of(&cap_creds), &cap_from, vec![cap_to.clone(); CAP_TRIES]).await;
    let cap_ids: Vec<String> = sent.iter().filter_map(|s| s.result.clone().ok()).collect();
    let codes: Vec<&String> = sent.iter().filter_map(|s| s.result.as_ref().err()).collect();
    assert_eq!(cap_ids.len(), CAP, "per-recipient cap across two APIs: {codes:?}");
    assert!(
        codes.iter().all(|c| *c == "FailedOperation.FrequencyLimit"),
        "{codes:?}"
    );

    // Rate: bursts started shortly before a second ends, so that requests of both seconds are in flight at once
    // and commit out of request-time order (a late mail of the first second after mails of the next one), until
    // a refusal fell entirely inside one second (the first burst, unless the machine is very slow).
    let rate_clients = clients_of(&rate_creds);
    let mut rate_sent = Vec::new();
    for burst in 0..5 {
        let wait = (1_000 - now_ms().rem_euclid(1_000) + 850) % 1_000;
        tokio::time::sleep(Duration::from_millis(wait as u64)).await;
        let to = (0..RATE_BURST)
            .map(|i| format!("rate{burst}-{i}@example.org"))
            .collect();
        rate_sent.extend(spread(&rate_clients, &rate_from, to).await);
        if rate_sent
            .iter()
            .any(|s| s.result.is_err() && s.started_ms / 1000 == s.answered_ms / 1000)
        {
            break;
        }
    }
    let (rate_ok, codes) = split(&rate_sent);
    assert!(codes.iter().all(|c| c == "RequestLimitExceeded"), "{codes:?}");
    let full_seconds: HashSet<i64> = rate_sent
        .iter()
        .filter(|s| s.result.is_err() && s.started_ms / 1000 == s.answered_ms / 1000)
        .map(|s| s.started_ms / 1000)
        .collect();
    assert!(
        !full_seconds.is_empty(),
        "no refusal within one second in 5 bursts of {RATE_BURST} (codes: {codes:?})"
    );
    // The accepted mails' request times, as the API processes took them.
    let pool = sqlx::PgPool::connect(&schema.url).await.expect("connect");
    let times: Vec<(String, i64)> = sqlx::query_as(
        "SELECT m.id, m.request_ms FROM messages m JOIN accounts a ON a.id = m.account_id WHERE a.name = 'rate'",
    )
    .fetch_all(&pool)
    .await
    .expect("request times");
    assert_eq!(times.len(), rate_ok.len(), "every accepted rate mail is stored");
    let mut per_second: BTreeMap<i64, usize> = BTreeMap::new();
    for (_, at) in &times {
        *per_second.entry(at.div_euclid(1000)).or_default() += 1;
    }
    for (second, n) in &per_second {
        assert!(*n <= RATE, "second {second} admitted {n} > {RATE}: {per_second:?}");
    }
    for second in &full_seconds {
        assert_eq!(
            per_second.get(second).copied().unwrap_or(0),
            RATE,
            "second {second} refused a send, so it admitted exactly {RATE}: {per_second:?}"
        );
    }
    accepted.extend(rate_ok);

    // Every accepted mail arrives once; nothing refused arrives. The cap account's mails share one recipient.
    let expected = accepted.len() + CAP;
    sink.wait_for_count(expected, Duration::from_secs(60))
        .await
        .unwrap_or_else(|e| panic!("{e}: {} of {expected} delivered", sink.message_count()));
    // Every delivery reaches its final state with one attempt: a delivery claimed by both workers would show
    // here as two attempts, or at the sink as a second copy.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (open,): (i64,) = sqlx::query_as("SELECT count(*) FROM deliveries WHERE state < 2")
            .fetch_one(&pool)
            .await
            .expect("open deliveries");
        if open == 0 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{open} deliveries never final");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (rows, delivered, once): (i64, i64, i64) = sqlx::query_as(
        "SELECT count(*), count(*) FILTER (WHERE deliver_status = 1), count(*) FILTER (WHERE attempts = 1) \
         FROM deliveries",
    )
    .fetch_one(&pool)
    .await
    .expect("delivery rows");
    assert_eq!(
        (rows, delivered, once),
        (expected as i64, expected as i64, expected as i64)
    );
    pool.close().await;
    let messages = sink.messages();
    let mut by_rcpt: HashMap<String, usize> = HashMap::new();
    let mut by_message_id: HashMap<String, usize> = HashMap::new();
    for m in &messages {
        for r in &m.rcpt_to {
            *by_rcpt.entry(r.to_ascii_lowercase()).or_default() += 1;
        }
        let header = m
            .parsed()
            .and_then(|p| p.message_id().map(str::to_string))
            .unwrap_or_else(|| panic!("no Message-ID: {}", m.text()));
        *by_message_id.entry(header).or_default() += 1;
    }
    let twice: Vec<_> = by_message_id.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "delivered more than once: {twice:?}");
    for (to, id) in &accepted {
        assert_eq!(by_rcpt.get(to).copied(), Some(1), "{to} ({id})");
        assert!(
            by_message_id.keys().any(|h| h.contains(id.as_str())),
            "no mail with Message-ID of {id}"
        );
    }
    for id in &cap_ids {
        assert!(by_message_id.keys().any(|h| h.contains(id.as_str())), "{id} lost");
    }
    assert_eq!(by_rcpt.get(&cap_to).copied(), Some(CAP), "{cap_to}");
    assert_eq!(
        messages.len(),
        expected,
        "mails refused at admission must never arrive: {by_rcpt:?}"
    );

    for node in [api_a, api_b, worker_a, worker_b] {
        node.terminate().await;
    }
    schema.drop_schema().await;
}

const BATCH_QUOTA: usize = 25;
const BATCH_LIST: usize = 20;
const BATCH_API_TRIES: usize = 20;

/// Batch tasks fed by the runners of both worker nodes, in small chunks, while SendEmail calls arrive over both
/// APIs: with a daily quota of N, exactly N recipients are admitted over all paths together, the tasks pause
/// with the rest, and exactly those N mails arrive.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn batch_runners_and_apis_share_the_daily_quota_exactly() {
    // Small chunks and quick rounds: the two runners and the API sends interleave many times.
    let quick = [
        ("MAILPUSH_BATCH_CHUNK", "3".to_string()),
        ("MAILPUSH_BATCH_POLL_MS", "20".to_string()),
    ];
    let Some((schema, world)) = world_on("scaleout_batch_e2e", &quick).await else {
        return;
    };
    let (dns, sink, env) = (&world.dns, &world.sink, &world.env);
    let creds = create_account(env, "bq").await;
    let api_a = ServerProcess::start("mailpush-api", &[], env).await;
    let api_b = ServerProcess::start("mailpush-api", &[], env).await;
    let apis = [api_a.api_addr.clone(), api_b.api_addr.clone()];
    let clients: Vec<ApiClient> = apis.iter().map(|a| ApiClient::new(a, &creds)).collect();
    let from = "news@bq.example.com".to_string();
    verified_sender(&clients[0], dns, &from).await;
    let quota = BATCH_QUOTA.to_string();
    mailpush_cli(
        env,
        &[
            "account",
            "set",
            "bq",
            "--sends-per-second",
            "1000000",
            "--daily-cap",
            &quota,
        ],
    )
    .await;
    let call = |client: &ApiClient, action: &'static str, params: serde_json::Value| {
        let client = client.clone();
        async move {
            let r = client.call(action, &params).await;
            assert!(r.get("Error").is_none(), "{action}: {r}");
            r
        }
    };
    let r = call(
        &clients[0],
        "CreateEmailTemplate",
        json!({ "TemplateName": "t", "TemplateContent": { "Text": b64(b"Hello {{name}}, this is the weekly news of our shop: new arrivals, opening hours and offers.") } }),
    )
    .await;
    let template = r["TemplateID"].as_i64().expect("TemplateID");
    let mut tasks = Vec::new();
    for list in ["one", "two"] {
        let r = call(
            &clients[0],
            "CreateReceiver",
            json!({ "ReceiversName": list, "Desc": "" }),
        )
        .await;
        let receiver = r["ReceiverId"].as_i64().expect("ReceiverId");
        let datas: Vec<serde_json::Value> = (0..BATCH_LIST)
            .map(|i| json!({ "Email": format!("{list}{i}@example.org"), "TemplateData": json!({ "name": i }).to_string() }))
            .collect();
        call(
            &clients[1],
            "CreateReceiverDetailWithData",
            json!({ "ReceiverId": receiver, "Datas": datas }),
        )
        .await;
        tasks.push((receiver, list));
    }
    // Nodes with batch runners start now, so both runners find both tasks at once.
    let worker_a = ServerProcess::start("mailpush-worker", &[], env).await;
    let worker_b = ServerProcess::start("mailpush-worker", &[], env).await;
    let mut ids = Vec::new();
    for (receiver, _) in &tasks {
        let r = call(
            &clients[0],
            "BatchSendEmail",
            json!({
                "FromEmailAddress": from,
                "ReceiverId": receiver,
                "Subject": "batch",
                "TaskType": 1,
                "Template": { "TemplateID": template, "TemplateData": "{}" },
            }),
        )
        .await;
        ids.push(r["TaskId"].as_i64().expect("TaskId"));
    }
    let sent = spread(
        &clients,
        &from,
        (0..BATCH_API_TRIES).map(|i| format!("api{i}@example.org")).collect(),
    )
    .await;
    let (api_ok, codes) = split(&sent);
    assert!(
        codes.iter().all(|c| c == "FailedOperation.ExceedSendLimit"),
        "{codes:?}"
    );
    // Each task ends paused (the quota ran out) or done (its whole list fed).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    let fed: i64 = loop {
        let r = call(&clients[1], "ListSendTasks", json!({ "Offset": 0, "Limit": 10 })).await;
        let listed = r["Data"].as_array().cloned().unwrap_or_default();
        let mine: Vec<&serde_json::Value> = listed
            .iter()
            .filter(|t| ids.contains(&t["TaskId"].as_i64().unwrap_or(0)))
            .collect();
        if mine.len() == ids.len() && mine.iter().all(|t| t["TaskStatus"] == 6 || t["TaskStatus"] == 10) {
            assert!(
                mine.iter().any(|t| t["TaskStatus"] == 6),
                "40 + 20 recipients cannot fit {BATCH_QUOTA}: {r}"
            );
            break mine.iter().map(|t| t["SendCount"].as_i64().unwrap_or(0)).sum();
        }
        assert!(tokio::time::Instant::now() < deadline, "tasks never settled: {r}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let admitted = api_ok.len() + usize::try_from(fed).expect("count");
    assert_eq!(admitted, BATCH_QUOTA, "{} by API + {fed} by batch", api_ok.len());
    let q = call(&clients[0], "GetSendQuota", json!({})).await;
    assert_eq!(q["SentToday"], BATCH_QUOTA, "{q}");
    assert_eq!(q["RemainingToday"], 0, "{q}");
    sink.wait_for_count(BATCH_QUOTA, Duration::from_secs(60))
        .await
        .unwrap_or_else(|e| panic!("{e}: {} of {BATCH_QUOTA} delivered", sink.message_count()));
    // Nothing beyond the quota arrives later.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(sink.message_count(), BATCH_QUOTA);
    for to in api_ok.keys() {
        assert_eq!(sink.messages_for(to).len(), 1, "{to}");
    }
    for node in [api_a, api_b, worker_a, worker_b] {
        node.terminate().await;
    }
    schema.drop_schema().await;
}
