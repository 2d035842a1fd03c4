//! Database outages: `mailpush serve` on PostgreSQL reached through a TCP proxy that the test can **freeze**
//! (stop forwarding bytes: the connections stay open and silent, as on a dead network path) or **cut** (close
//! every connection and refuse new ones). While the database is out of reach a SendEmail answers an error
//! instead of hanging and `/readyz` turns 503; once the proxy forwards again, sends succeed and every mail
//! that was accepted (a MessageId returned) is delivered. Needs `MAILPUSH_TEST_POSTGRES_URL`.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mailpush_suite::*;
use mailpush_testkit::DnsAuthority;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::AbortHandle;

/// What the proxy does with bytes and connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Forward,
    Freeze,
    Cut,
}

/// A TCP proxy in front of PostgreSQL whose forwarding the test switches.
struct ChaosProxy {
    addr: SocketAddr,
    mode: watch::Sender<Mode>,
    conns: Arc<Mutex<Vec<AbortHandle>>>,
}

impl ChaosProxy {
    async fn start(upstream: SocketAddr) -> ChaosProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr");
        let (mode, _) = watch::channel(Mode::Forward);
        let conns: Arc<Mutex<Vec<AbortHandle>>> = Arc::default();
        let (m, c) = (mode.clone(), conns.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if *m.borrow() == Mode::Cut {
                    drop(client); // refused: closed at once
                    continue;
                }
                let rx = m.subscribe();
                let task = tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    let (cr, cw) = client.into_split();
                    let (sr, sw) = server.into_split();
                    tokio::select! {
                        _ = pump(cr, sw, rx.clone()) => {}
                        _ = pump(sr, cw, rx) => {}
                    }
                });
                c.lock().expect("conns").push(task.abort_handle());
            }
        });
        ChaosProxy { addr, mode, conns }
    }

    fn set(&self, mode: Mode) {
        self.mode.send_replace(mode);
        if mode == Mode::Cut {
            // Dropping the sockets closes both sides.
            for c in self.conns.lock().expect("conns").drain(..) {
                c.abort();
            }
        }
    }
}

/// Copies `from` to `to` while the mode allows it; holds the bytes (reads nothing) while frozen.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut mode: watch::Receiver<Mode>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        if !forwarding(&mut mode).await {
            return;
        }
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        // Bytes read just before a freeze are held too.
        if !forwarding(&mut mode).await {
            return;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// Waits out a freeze; false once the proxy cuts.
async fn forwarding(mode: &mut watch::Receiver<Mode>) -> bool {
    matches!(
        mode.wait_for(|m| *m != Mode::Freeze).await.map(|m| *m),
        Ok(Mode::Forward)
    )
}

fn mail(to: &str) -> Value {
    json!({
        "FromEmailAddress": "news@brand.example.com",
        "Destination": [to],
        "Subject": "outage",
        "Simple": { "Text": b64(b"hello") },
        "TriggerType": 1,
    })
}

/// Sends one mail; returns its MessageId or the error code, and how long the answer took.
async fn send(client: &ApiClient, to: &str) -> (Result<String, String>, Duration) {
    let started = Instant::now();
    let r = tokio::time::timeout(Duration::from_secs(60), client.call("SendEmail", &mail(to)))
        .await
        .expect("SendEmail answered within 60 s");
    let out = match ApiClient::error_code(&r) {
        Some(code) => Err(code),
        None => Ok(r["MessageId"].as_str().expect("MessageId").to_string()),
    };
    (out, started.elapsed())
}

async fn probe(http: &reqwest::Client, api: &str, path: &str) -> (u16, Value) {
    let resp = http
        .get(format!("http://{api}{path}"))
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .expect("probe answered");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Polls `/readyz` until it answers `want`; returns the body and how long it took, or panics after `within`.
async fn ready_becomes(http: &reqwest::Client, api: &str, want: u16, within: Duration) -> (Value, Duration) {
    let started = Instant::now();
    loop {
        let (status, body) = probe(http, api, "/readyz").await;
        if status == want {
            return (body, started.elapsed());
        }
        assert!(
            started.elapsed() < within,
            "/readyz still {status} after {within:?}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Sends until one is accepted (the database is back); returns its MessageId.
async fn send_until_accepted(client: &ApiClient, to: &str, within: Duration) -> String {
    let started = Instant::now();
    loop {
        match send(client, to).await.0 {
            Ok(id) => return id,
            Err(code) => assert!(started.elapsed() < within, "sends still fail after {within:?}: {code}"),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// While the outage lasts: a send answers an error in bounded time, `/readyz` turns 503 and `/livez` stays 200.
async fn during_outage(client: &ApiClient, http: &reqwest::Client, api: &str, what: &str, to: &str) {
    let (r, took) = send(client, to).await;
    eprintln!("{what}: SendEmail answered {r:?} after {took:?}");
    assert!(took < Duration::from_secs(20), "{what}: SendEmail took {took:?}");
    let code = r.expect_err("no database: the send cannot be accepted");
    assert_eq!(code, "FailedOperation.ServiceNotAvailable", "{what}");
    let (body, took) = ready_becomes(http, api, 503, Duration::from_secs(15)).await;
    eprintln!("{what}: /readyz 503 after {took:?}: {body}");
    assert_eq!(body["status"], "unavailable", "{body}");
    assert_ne!(body["checks"]["database"], "ok", "{body}");
    let (live, _) = probe(http, api, "/livez").await;
    assert_eq!(live, 200, "{what}: the process itself is alive");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn database_freeze_and_cut_fail_fast_and_lose_nothing() {
    let Ok(base) = std::env::var("MAILPUSH_TEST_POSTGRES_URL") else {
        say_skipped("database_freeze_and_cut_fail_fast_and_lose_nothing needs MAILPUSH_TEST_POSTGRES_URL");
        return;
    };
    let schema = format!("db_outage_{}", std::process::id());
    let pool = sqlx::PgPool::connect(&base).await.expect("connect");
    for sql in [
        format!("DROP SCHEMA IF EXISTS {schema} CASCADE"),
        format!("CREATE SCHEMA {schema}"),
    ] {
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&pool)
            .await
            .expect("schema");
    }
    // The proxy stands where the database is: same user and database, its own port.
    let parsed = reqwest::Url::parse(&base).expect("postgres URL");
    let host = parsed.host_str().expect("host");
    let upstream: SocketAddr = tokio::net::lookup_host((host, parsed.port().unwrap_or(5432)))
        .await
        .expect("resolve database host")
        .next()
        .expect("an address");
    let proxy = ChaosProxy::start(upstream).await;
    let mut via = parsed.clone();
    via.set_host(Some("127.0.0.1")).expect("host");
    via.set_port(Some(proxy.addr.port())).expect("port");
    let via = via.to_string();
    let sep = if via.contains('?') { '&' } else { '?' };
    let url = format!("{via}{sep}options=-c%20search_path%3D{schema}");

    let dns = DnsAuthority::start().await.expect("dns");
    let sink = mailpush_testkit::SinkMx::start_default().await.expect("sink");
    dns.add_mx("dest.example.net", 10, "mx.dest.example.net");
    dns.add_a("mx.dest.example.net", std::net::Ipv4Addr::LOCALHOST);
    let dir = temp_dir();
    let env = base_env(
        dir.path(),
        &[
            ("MAILPUSH_DATABASE_URL", url),
            ("MAILPUSH_DNS_SERVERS", dns.addr().to_string()),
            ("MAILPUSH_DELIVERY_PORT", sink.addr().port().to_string()),
            ("MAILPUSH_RETRY_SCHEDULE_SECS", "1,2".into()),
            ("MAILPUSH_DB_ACQUIRE_TIMEOUT_SECS", "2".into()),
            ("MAILPUSH_DB_STATEMENT_TIMEOUT_SECS", "4".into()),
            ("MAILPUSH_DB_OPERATION_TIMEOUT_SECS", "5".into()),
            ("MAILPUSH_DB_PROBE_TIMEOUT_SECS", "2".into()),
            ("MAILPUSH_LEASE_SECONDS", "10".into()),
        ],
    );
    let creds = create_account(&env, "brand").await;
    let server = ServerProcess::start("mailpush", &["serve"], &env).await;
    let client = ApiClient::new(&server.api_addr, &creds);
    let http = reqwest::Client::new();
    verified_sender(&client, &dns, "news@brand.example.com").await;

    let mut accepted: Vec<(String, String)> = Vec::new();
    let mut n = 0;
    let mut next_rcpt = || {
        n += 1;
        format!("r{n}@dest.example.net")
    };
    for _ in 0..3 {
        let to = next_rcpt();
        let id = send(&client, &to).await.0.expect("healthy database accepts");
        accepted.push((id, to));
    }
    assert_eq!(probe(&http, &server.api_addr, "/readyz").await.0, 200);
    assert_eq!(probe(&http, &server.api_addr, "/healthz").await.0, 200);

    for (mode, what) in [(Mode::Freeze, "frozen"), (Mode::Cut, "cut")] {
        // A burst in flight when the outage starts: each answers in bounded time; those accepted must arrive.
        let burst: Vec<_> = (0..8)
            .map(|_| {
                let (c, to) = (client.clone(), next_rcpt());
                tokio::spawn(async move { (send(&c, &to).await, to) })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(20)).await;
        proxy.set(mode);
        for b in burst {
            let ((r, took), to) = b.await.expect("send task");
            eprintln!("{what}: in-flight SendEmail answered {r:?} after {took:?}");
            assert!(
                took < Duration::from_secs(20),
                "{what}: in-flight SendEmail took {took:?}"
            );
            if let Ok(id) = r {
                accepted.push((id, to));
            }
        }
        during_outage(&client, &http, &server.api_addr, what, &next_rcpt()).await;
        proxy.set(Mode::Forward);
        let (_, took) = ready_becomes(&http, &server.api_addr, 200, Duration::from_secs(60)).await;
        eprintln!("{what}: /readyz 200 again {took:?} after the proxy resumed");
        let to = next_rcpt();
        let id = send_until_accepted(&client, &to, Duration::from_secs(60)).await;
        accepted.push((id, to));
        for _ in 0..3 {
            let to = next_rcpt();
            let id = send(&client, &to).await.0.expect("accepted after recovery");
            accepted.push((id, to));
        }
    }

    // Nothing accepted is lost: every MessageId returned reaches the MX.
    let started = Instant::now();
    loop {
        let missing: Vec<&(String, String)> = accepted.iter().filter(|(_, to)| !sink.has_rcpt_any(to)).collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "accepted but never delivered: {missing:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    server.terminate().await;
    let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA IF EXISTS {schema} CASCADE")))
        .execute(&pool)
        .await;
}

/// Whether the sink received a message for `rcpt`.
trait SinkExt {
    fn has_rcpt_any(&self, rcpt: &str) -> bool;
}

impl SinkExt for mailpush_testkit::SinkMx {
    fn has_rcpt_any(&self, rcpt: &str) -> bool {
        !self.messages_for(rcpt).is_empty()
    }
}
