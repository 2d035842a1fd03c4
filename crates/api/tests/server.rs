//! The HTTP listener's connection limits over real sockets on loopback: the header timeout (half a header,
//! a header dripping in), the keep-alive idle timeout, a slow handler not cut by it, and the connection cap's
//! `503`. A plain router stands in for the API: the limits are the listener's, not the actions'.

use axum::Router;
use axum::routing::get;
use mailpush_api::{HttpLimits, serve_router};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Generous bound for anything the server should do "soon" (never asserted as a performance figure).
const SOON: Duration = Duration::from_secs(30);

async fn start(limits: HttpLimits) -> SocketAddr {
    let app = Router::new().route("/ok", get(|| async { "ok" })).route(
        "/slow",
        get(|| async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            "slow"
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(serve_router(listener, app, limits, std::future::pending()));
    addr
}

fn limits(max: usize, header_secs: u64, idle_secs: u64) -> HttpLimits {
    HttpLimits {
        max_connections: max,
        header_timeout: Duration::from_secs(header_secs),
        idle_timeout: Duration::from_secs(idle_secs),
        body_timeout: Duration::from_secs(60),
    }
}

/// Reads until the server closes (or resets) the connection; what it sent.
async fn read_until_closed(tcp: &mut TcpStream) -> Vec<u8> {
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

/// One `GET path` on `tcp` (keep-alive); the response head and body as text.
async fn get_on(tcp: &mut TcpStream, path: &str) -> String {
    tcp.write_all(format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes())
        .await
        .expect("write");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains("\r\n\r\n") || !got.ends_with(&path.as_bytes()[1..]) {
        let n = tokio::time::timeout(SOON, tcp.read(&mut buf))
            .await
            .expect("response in time")
            .expect("read");
        assert!(n > 0, "closed before the response: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&got).into_owned()
}

#[tokio::test]
async fn half_a_header_is_closed_after_the_header_timeout_and_others_are_served() {
    let addr = start(limits(0, 1, 60)).await;
    let mut slow = TcpStream::connect(addr).await.expect("connect");
    slow.write_all(b"GET /ok HTTP/1.1\r\nHost: t\r\nX-Half: ")
        .await
        .expect("write");
    // Meanwhile another client is served.
    let mut good = TcpStream::connect(addr).await.expect("connect");
    assert!(get_on(&mut good, "/ok").await.starts_with("HTTP/1.1 200"));
    let got = read_until_closed(&mut slow).await;
    assert!(got.is_empty() || got.starts_with(b"HTTP/1.1 4"), "{got:?}");
}

#[tokio::test]
async fn a_header_dripping_in_does_not_hold_the_connection() {
    let addr = start(limits(0, 2, 60)).await;
    let mut slow = TcpStream::connect(addr).await.expect("connect");
    slow.write_all(b"GET /ok HTTP/1.1\r\n").await.expect("write");
    let started = tokio::time::Instant::now();
    let mut buf = [0u8; 1024];
    // A byte every 300 ms: each one is progress, but the header never completes.
    let closed = loop {
        assert!(started.elapsed() < SOON, "the dripping connection stayed open");
        if slow.write_all(b"x").await.is_err() {
            break true;
        }
        match tokio::time::timeout(Duration::from_millis(300), slow.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break true,
            Ok(Ok(_)) => {}
            Err(_) => {}
        }
    };
    assert!(closed);
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_but_a_slow_handler_is_not_cut() {
    let addr = start(limits(0, 1, 4)).await;
    let mut c = TcpStream::connect(addr).await.expect("connect");
    assert!(get_on(&mut c, "/ok").await.starts_with("HTTP/1.1 200"));
    // Kept alive past the header timeout: waiting for the next request is idle time, not a slow header.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(get_on(&mut c, "/ok").await.starts_with("HTTP/1.1 200"));
    // A handler taking longer than the idle timeout finishes and answers.
    assert!(get_on(&mut c, "/slow").await.contains("slow"));
    // Then, with nothing more asked, the connection is closed.
    assert!(read_until_closed(&mut c).await.is_empty());
}

#[tokio::test]
async fn over_the_cap_connections_get_503_and_a_freed_slot_serves_again() {
    let addr = start(limits(2, 30, 60)).await;
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut c = TcpStream::connect(addr).await.expect("connect");
        assert!(get_on(&mut c, "/ok").await.starts_with("HTTP/1.1 200"));
        held.push(c);
    }
    for _ in 0..3 {
        let mut over = TcpStream::connect(addr).await.expect("connect");
        over.write_all(b"GET /ok HTTP/1.1\r\nHost: t\r\n\r\n")
            .await
            .expect("write");
        let got = String::from_utf8_lossy(&read_until_closed(&mut over).await).into_owned();
        assert!(got.starts_with("HTTP/1.1 503 Service Unavailable\r\n"), "{got}");
        assert!(got.ends_with("too many connections, try again later\r\n"), "{got}");
    }
    drop(held.pop());
    let deadline = tokio::time::Instant::now() + SOON;
    loop {
        let mut c = TcpStream::connect(addr).await.expect("connect");
        c.write_all(b"GET /ok HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            .await
            .expect("write");
        let got = read_until_closed(&mut c).await;
        if got.starts_with(b"HTTP/1.1 200") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the slot never came back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
