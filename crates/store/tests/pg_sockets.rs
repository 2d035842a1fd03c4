//! The PostgreSQL store's connections must not wait on Nagle's algorithm.
//!
//! sqlx 0.9.0 stopped setting TCP_NODELAY on its sockets (sqlx issue #4335, fixed in 0.9.1). A statement
//! sent as several small writes then waited for the server's delayed ACK, about 40 ms on Linux. That cut the
//! PostgreSQL backend's group-commit enqueue to 1,100–5,000/s and its outcome batches to 2,200/s, against
//! 9,400–10,700/s and 6,200–8,800/s with the option set (`mailpush-bench queue --url postgres://…`). The test
//! reads the option off this process's sockets, so it needs no timing.

use std::os::fd::{BorrowedFd, RawFd};
use std::str::FromStr;

use sqlx::postgres::PgConnectOptions;

#[allow(unused_macros)] // the conformance macro is for the other suites
mod common;

/// This process's open TCP sockets whose peer is `port`, each with whether TCP_NODELAY is set on it.
fn nodelay_of_sockets_to(port: u16) -> Vec<(RawFd, bool)> {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for entry in dir.flatten() {
        let Some(fd) = entry.file_name().to_str().and_then(|s| s.parse::<RawFd>().ok()) else {
            continue;
        };
        let is_socket = std::fs::read_link(entry.path())
            .map(|p| p.to_string_lossy().starts_with("socket:"))
            .unwrap_or(false);
        if !is_socket {
            continue;
        }
        // SAFETY: the fd was open a moment ago, and nothing in this test closes sockets while it looks (the
        // store holds its connections until the case ends).
        let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
        let sock = socket2::SockRef::from(&borrowed);
        let peer_port = sock.peer_addr().ok().and_then(|a| a.as_socket()).map(|a| a.port());
        if peer_port == Some(port) {
            found.push((fd, sock.tcp_nodelay().expect("read TCP_NODELAY")));
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_connections_set_tcp_nodelay() {
    common::run_postgres(|ctx| async move {
        let port = PgConnectOptions::from_str(&ctx.url).expect("parse the URL").get_port();
        // Reads at once, so that the pool opens more than one connection.
        let (a, b, c) = tokio::join!(
            ctx.store.queue().queue_counts(),
            ctx.store.queue().queue_counts(),
            ctx.store.queue().queue_counts()
        );
        for r in [a, b, c] {
            r.expect("count the queue");
        }
        let sockets = nodelay_of_sockets_to(port);
        assert!(!sockets.is_empty(), "no socket to PostgreSQL's port {port} found");
        for (fd, nodelay) in sockets {
            assert!(
                nodelay,
                "socket {fd} to PostgreSQL waits on Nagle's algorithm (TCP_NODELAY is off)"
            );
        }
    })
    .await;
}
