//! Metrics and health on every node: `mailpush-api`, `mailpush-smtp` and `mailpush-worker`, each started as its
//! own process against one PostgreSQL database, take a mail through (API → queue → worker → sink MX, plus an
//! SMTP session); each answers `/livez`, `/readyz` and `/metrics`, the scrapes carry what each node did, and
//! every metric the Grafana dashboard in `contrib/` names exists in them.

use std::collections::BTreeSet;
use std::time::Duration;

use mailpush_suite::*;
use mailpush_testkit::{DnsAuthority, SinkMx};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

async fn get(addr: &str, path: &str) -> (u16, String) {
    let r = reqwest::get(format!("http://{addr}{path}")).await.expect("GET");
    let status = r.status().as_u16();
    (status, r.text().await.expect("body"))
}

/// The metric names of a scrape (histograms appear as `_bucket`, `_sum`, `_count`).
fn names(scrape: &str) -> BTreeSet<String> {
    scrape
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_string)
        .collect()
}

/// Every `mailpush_…` metric named in the dashboard's queries.
fn dashboard_metrics() -> BTreeSet<String> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/contrib/grafana-dashboard.json"))
        .expect("contrib/grafana-dashboard.json");
    let dashboard: serde_json::Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    let mut found = BTreeSet::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().expect("targets") {
            let expr = target["expr"].as_str().expect("expr");
            let mut rest = expr;
            while let Some(at) = rest.find("mailpush_") {
                let tail = &rest[at..];
                let end = tail
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(tail.len());
                found.insert(tail[..end].to_string());
                rest = &tail[end..];
            }
        }
    }
    assert!(found.len() >= 15, "{found:?}");
    found
}

/// Scrapes `addr` until `wanted` is in the text (database gauges come on a timer, events when they happen).
async fn scrape_until(addr: &str, node: &str, wanted: &str) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = get(addr, "/metrics").await;
        assert_eq!(status, 200, "{node} /metrics");
        if body.contains(wanted) {
            return body;
        }
        assert!(tokio::time::Instant::now() < deadline, "{node}: no {wanted} in\n{body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_node_exports_health_and_the_dashboards_metrics() {
    let Some(schema) = PgSchema::create("metrics_e2e").await else {
        return;
    };
    let dns = DnsAuthority::start().await.expect("dns");
    let sink = SinkMx::start_default().await.expect("sink");
    dns.add_mx("dest.example.net", 10, "mx.dest.example.net");
    dns.add_a("mx.dest.example.net", std::net::Ipv4Addr::LOCALHOST);
    let dir = temp_dir();
    // mailpush-smtp announces its admin listener first: give the submission listener a known free port.
    let smtp_addr = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .to_string();
    let env = base_env(
        dir.path(),
        &[
            ("MAILPUSH_DATABASE_URL", schema.url.clone()),
            ("MAILPUSH_DNS_SERVERS", dns.addr().to_string()),
            ("MAILPUSH_DELIVERY_PORT", sink.addr().port().to_string()),
            ("MAILPUSH_METRICS_REFRESH_SECS", "1".to_string()),
            ("MAILPUSH_ADMIN_LISTEN", "127.0.0.1:0".to_string()),
            ("MAILPUSH_SMTP_LISTEN", smtp_addr.clone()),
        ],
    );
    let creds = create_account(&env, "shop").await;
    let api = ServerProcess::start("mailpush-api", &[], &env).await;
    let smtp = ServerProcess::start("mailpush-smtp", &[], &env).await;
    let worker = ServerProcess::start("mailpush-worker", &[], &env).await;

    let client = ApiClient::new(&api.api_addr, &creds);
    verified_sender(&client, &dns, "news@shop.example").await;
    let sent = client
        .call(
            "SendEmail",
            &json!({
                "FromEmailAddress": "news@shop.example",
                "Destination": ["ann@dest.example.net"],
                "Subject": "metrics",
                "Simple": { "Text": b64(b"hello") },
            }),
        )
        .await;
    assert!(sent["MessageId"].is_string(), "{sent}");
    // An SMTP session on the submission listener: greeting, QUIT.
    let tcp = tokio::net::TcpStream::connect(&smtp_addr).await.expect("connect smtp");
    let (r, mut w) = tcp.into_split();
    let mut lines = tokio::io::BufReader::new(r).lines();
    let greeting = lines.next_line().await.expect("greeting").expect("a line");
    assert!(greeting.starts_with("220"), "{greeting}");
    w.write_all(b"QUIT\r\n").await.expect("QUIT");

    let mut all = BTreeSet::new();
    for (node, addr, wanted) in [
        (
            "mailpush-api",
            &api.api_addr,
            "mailpush_api_requests_total{action=\"SendEmail\",code=\"Success\"} 1",
        ),
        (
            "mailpush-worker",
            &worker.api_addr,
            "mailpush_deliveries_total{outcome=\"delivered\",domain=\"dest.example.net\",source_ip=\"default\"} 1",
        ),
        (
            "mailpush-smtp",
            &smtp.api_addr,
            "mailpush_smtp_sessions_total{listener=\"submission\"} 1",
        ),
    ] {
        let (status, body) = get(addr, "/livez").await;
        assert_eq!(status, 200, "{node} /livez: {body}");
        let (status, body) = get(addr, "/readyz").await;
        assert_eq!(status, 200, "{node} /readyz: {body}");
        scrape_until(addr, node, wanted).await;
        // The database gauges are refreshed on every node, on a timer.
        let scrape = scrape_until(addr, node, "mailpush_account_sent_today{account=\"shop\"} 1").await;
        assert!(
            scrape.contains("mailpush_queue_deliveries{state=\"pending\"}"),
            "{node}: {scrape}"
        );
        all.extend(names(&scrape));
    }
    let worker_scrape = scrape_until(
        &worker.api_addr,
        "mailpush-worker",
        "mailpush_delivery_latency_seconds_bucket",
    )
    .await;
    assert!(
        worker_scrape.contains("mailpush_dns_lookups_total{kind=\"mx\"}"),
        "{worker_scrape}"
    );
    all.extend(names(&worker_scrape));

    let missing: Vec<String> = dashboard_metrics().into_iter().filter(|m| !all.contains(m)).collect();
    assert!(
        missing.is_empty(),
        "the dashboard names metrics no node exports: {missing:?}\nexported: {all:?}"
    );

    api.terminate().await;
    smtp.terminate().await;
    worker.terminate().await;
    schema.drop_schema().await;
}
