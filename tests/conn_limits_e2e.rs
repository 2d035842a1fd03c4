//! Connection limits end to end: the real `mailpush serve` started with `RLIMIT_NOFILE` 256, soft and hard
//! (it cannot raise it), small connection caps and short timeouts, flooded with slowloris connections: half
//! HTTP headers, and SMTP clients that never say a word. Before the caps and timeouts such a flood used every
//! descriptor ("Too many open files") and both the API and SMTP submission stopped answering.
//!
//! Asserted: over-cap connections get `503` / `421 4.3.2`; legitimate clients (a TC3-signed API call, an
//! SMTP EHLO + QUIT) are served during the other listener's flood and after the slow connections are reaped;
//! the slow HTTP connections are closed by the header timeout, the silent SMTP ones by the SMTP timeout; the
//! server never holds more descriptors than its limit. Bounds are generous; no timing is asserted.

use mailpush_suite::*;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const FD_LIMIT: u64 = 256;
const API_CAP: usize = 48;
const SMTP_CAP: usize = 24;
/// Generous bound for what should happen "soon".
const SOON: Duration = Duration::from_secs(60);

struct World {
    _dir: tempfile::TempDir,
    server: ServerProcess,
    client: ApiClient,
    smtp: String,
}

async fn world(extra: &[(&str, String)]) -> World {
    let dir = temp_dir();
    let mut vars = vec![
        ("MAILPUSH_SMTP_LISTEN", "127.0.0.1:0".to_string()),
        ("MAILPUSH_API_MAX_CONNECTIONS", API_CAP.to_string()),
        ("MAILPUSH_SMTP_MAX_CONNECTIONS", SMTP_CAP.to_string()),
        ("MAILPUSH_API_HEADER_TIMEOUT_SECS", "3".to_string()),
        ("MAILPUSH_SMTP_TIMEOUT_SECS", "5".to_string()),
        // Every client here is 127.0.0.1: only the global caps are under test.
        ("MAILPUSH_SMTP_MAX_CONNECTIONS_PER_IP", "0".to_string()),
        ("MAILPUSH_DB_MAX_CONNECTIONS", "4".to_string()),
    ];
    vars.extend(extra.iter().cloned());
    let env = base_env(dir.path(), &vars);
    let creds = create_account(&env, "shop").await;
    let server = ServerProcess::start_with_fd_limit("mailpush", &["serve"], &env, FD_LIMIT).await;
    let smtp = server.announced_addr("smtp").expect("smtp listener");
    let client = ApiClient::new(&server.api_addr, &creds);
    World {
        _dir: dir,
        server,
        client,
        smtp,
    }
}

impl World {
    fn open_fds(&self) -> usize {
        let pid = self.server.child.id().expect("running");
        std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
    }

    /// A TC3-signed call answered without error.
    async fn api_served(&self) {
        let r = self.client.call("GetSendQuota", &serde_json::json!({})).await;
        assert_eq!(ApiClient::error_code(&r), None, "{r}");
    }

    /// EHLO + QUIT on a new SMTP connection; the greeting's code when it was not 220.
    async fn smtp_session(&self) -> Result<(), String> {
        let tcp = TcpStream::connect(&self.smtp).await.map_err(|e| e.to_string())?;
        let mut io = BufReader::new(tcp);
        let greeting = line(&mut io).await;
        if !greeting.starts_with("220 ") {
            return Err(greeting);
        }
        io.get_mut()
            .write_all(b"EHLO client.test\r\n")
            .await
            .map_err(|e| e.to_string())?;
        loop {
            let l = line(&mut io).await;
            assert!(l.starts_with("250"), "{l}");
            if l.starts_with("250 ") {
                break;
            }
        }
        io.get_mut().write_all(b"QUIT\r\n").await.map_err(|e| e.to_string())?;
        let bye = line(&mut io).await;
        assert!(bye.starts_with("221 "), "{bye}");
        Ok(())
    }
}

async fn line(io: &mut BufReader<TcpStream>) -> String {
    let mut l = String::new();
    let _ = tokio::time::timeout(SOON, io.read_line(&mut l))
        .await
        .expect("a line in time");
    l
}

/// Reads until the server closes (or resets) the connection; what it sent.
async fn until_closed(tcp: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(SOON, tcp.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return got,
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => panic!("the server did not close the connection"),
        }
    }
}

/// A connection that sends half a request header and nothing more.
async fn slowloris(addr: &str) -> Option<TcpStream> {
    let mut tcp = TcpStream::connect(addr).await.ok()?;
    tcp.write_all(b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-TC-Action: Send")
        .await
        .ok()?;
    Some(tcp)
}

#[tokio::test]
async fn slowloris_floods_do_not_take_the_api_or_smtp_down() {
    let w = world(&[]).await;
    w.api_served().await;

    // HTTP: the cap is filled with half headers; the next connections are answered 503.
    let mut slow = Vec::new();
    // The API client keeps its keep-alive connection from the call above: it holds one slot.
    for _ in 0..API_CAP - 1 {
        slow.push(slowloris(&w.server.api_addr).await.expect("admitted"));
    }
    for _ in 0..5 {
        let mut over = slowloris(&w.server.api_addr).await.expect("connect");
        let got = String::from_utf8_lossy(&until_closed(&mut over).await).into_owned();
        assert!(got.starts_with("HTTP/1.1 503 "), "over the cap: {got:?}");
    }
    // Far more connections than the server has descriptors for: refused, never accepted into EMFILE.
    let mut flood = Vec::new();
    for _ in 0..(FD_LIMIT as usize + 100) {
        if let Some(tcp) = slowloris(&w.server.api_addr).await {
            flood.push(tcp);
        }
    }
    assert!(w.open_fds() < FD_LIMIT as usize, "{} descriptors open", w.open_fds());
    // SMTP is served meanwhile: its descriptors are not the API's to take.
    w.smtp_session().await.expect("SMTP during the HTTP flood");
    drop(flood);
    // The header timeout closes every slow connection (no reply: the request never came).
    for mut tcp in slow {
        let got = until_closed(&mut tcp).await;
        assert!(got.is_empty() || got.starts_with(b"HTTP/1.1 4"), "{got:?}");
    }
    // And the API serves again (a slot may take a moment to come back after the flood).
    let deadline = tokio::time::Instant::now() + SOON;
    loop {
        match reqwest::get(format!("http://{}/healthz", w.server.api_addr)).await {
            Ok(r) if r.status() == 200 => break,
            other => assert!(tokio::time::Instant::now() < deadline, "API not back: {other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    w.api_served().await;

    // SMTP: the cap is filled with silent clients; the next ones get 421 4.3.2.
    let mut silent = Vec::new();
    for _ in 0..SMTP_CAP {
        let mut io = BufReader::new(TcpStream::connect(&w.smtp).await.expect("connect"));
        assert!(line(&mut io).await.starts_with("220 "));
        silent.push(io);
    }
    for _ in 0..5 {
        match w.smtp_session().await {
            Err(greeting) => assert_eq!(greeting, "421 4.3.2 too many connections, try again later\r\n"),
            Ok(()) => panic!("served over the SMTP cap"),
        }
    }
    // The API is served meanwhile.
    w.api_served().await;
    // The SMTP timeout closes the silent clients…
    for mut io in silent {
        let l = line(&mut io).await;
        assert!(l.is_empty() || l.starts_with("421 4.4.2"), "{l}");
        assert!(until_closed(io.get_mut()).await.is_empty());
    }
    // …and a legitimate client is served again.
    let deadline = tokio::time::Instant::now() + SOON;
    while let Err(greeting) = w.smtp_session().await {
        assert!(tokio::time::Instant::now() < deadline, "SMTP not back: {greeting}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(w.open_fds() < FD_LIMIT as usize);
}

#[tokio::test]
async fn a_request_body_trickling_in_is_refused_and_its_connection_closed() {
    let w = world(&[("MAILPUSH_API_BODY_TIMEOUT_SECS", "2".to_string())]).await;
    let mut tcp = TcpStream::connect(&w.server.api_addr).await.expect("connect");
    tcp.write_all(
        b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"a\":",
    )
    .await
    .expect("write");
    let got = String::from_utf8_lossy(&until_closed(&mut tcp).await).into_owned();
    assert!(got.starts_with("HTTP/1.1 200 OK\r\n"), "{got}");
    assert!(got.contains("did not arrive within 2 s"), "{got}");
    w.api_served().await;
}
