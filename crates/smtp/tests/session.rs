//! The SMTP endpoint over real sockets with a real core (SQLite): protocol, AUTH, admission, limits,
//! smuggling. Everything is core's: AUTH uses a real sender address's SMTP password and senders must be in
//! the account's verified domain (see `common`).

mod common;

use common::*;
use std::time::Duration;

const RCPT: &str = "alice@example.org";

async fn authed(w: &World) -> Client {
    let (mut c, code) = Client::connect(w.addr, &w.cert).await;
    assert_eq!(code, 220);
    c.starttls().await;
    let (code, text) = c.login(LOGIN, PASSWORD).await;
    assert_eq!(code, 235, "{text}");
    c
}

async fn send_one(c: &mut Client, from: &str, rcpts: &[&str], data: &str) -> (u16, String) {
    assert_eq!(c.cmd(&format!("MAIL FROM:<{from}>")).await.0, 250);
    for r in rcpts {
        assert_eq!(c.cmd(&format!("RCPT TO:<{r}>")).await.0, 250);
    }
    assert_eq!(c.cmd("DATA").await.0, 354);
    c.send(data.as_bytes()).await;
    c.send(b"\r\n.\r\n").await;
    c.reply().await
}

fn queued_id(text: &str) -> String {
    text.split("queued as ")
        .nth(1)
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| panic!("no id in {text:?}"))
}

#[tokio::test]
async fn authenticated_submission_is_committed_and_found_by_status() {
    let w = world(|_| {}, |_| {}).await;
    let mut c = authed(&w).await;
    let (code, text) = send_one(&mut c, LOGIN, &[RCPT, "bob@example.org"], &message(LOGIN, RCPT, "Hi")).await;
    assert_eq!(code, 250, "{text}");
    assert!(text.starts_with("2.0.0 Ok: queued as "), "{text}");
    let id = queued_id(&text);
    assert_eq!(w.message_ids().await, std::slice::from_ref(&id));
    let body = w
        .store
        .queue()
        .message_body(&mailpush_model::MessageId::parse(&id).expect("id"))
        .await
        .expect("body")
        .expect("stored");
    let body = String::from_utf8(body).expect("utf8");
    // Traced on top (RFC 5321 §4.4), then the headers added for the missing Message-ID and Date.
    assert!(
        body.starts_with("Received: from client.test ([127.0.0.1])\r\n\tby "),
        "{body}"
    );
    assert!(body.contains(&format!("with ESMTPSA id {id};\r\n\t")), "{body}");
    assert!(
        body.contains(&format!("\r\nMessage-ID: <{id}@shop.example.com>\r\nDate: ")),
        "{body}"
    );
    // send_one ends the data with CRLF . CRLF after the message's own last CRLF: one empty line more.
    assert!(
        body.ends_with(&format!("{}\r\n", message(LOGIN, RCPT, "Hi"))),
        "kept as sent: {body}"
    );
    // The session goes on: a second message on the same connection, then QUIT.
    let (code, _) = send_one(&mut c, LOGIN, &[RCPT], &message(LOGIN, RCPT, "Again")).await;
    assert_eq!(code, 250);
    assert_eq!(c.cmd("QUIT").await.0, 221);
}

#[tokio::test]
async fn ehlo_advertises_the_extensions() {
    let w = world(|_| {}, |_| {}).await;
    let (mut c, _) = Client::connect(w.addr, &w.cert).await;
    let (code, text) = c.cmd("EHLO client.test").await;
    assert_eq!(code, 250);
    for ext in [
        "PIPELINING",
        "SIZE 4194304",
        "8BITMIME",
        "SMTPUTF8",
        "ENHANCEDSTATUSCODES",
        "CHUNKING",
        "STARTTLS",
    ] {
        assert!(text.lines().any(|l| l == ext), "{ext} missing in {text}");
    }
    assert!(!text.contains("AUTH"), "AUTH is not offered before TLS: {text}");
    c.starttls().await;
    let (_, text) = c.cmd("EHLO client.test").await;
    assert!(text.lines().any(|l| l == "AUTH PLAIN LOGIN"), "{text}");
    assert!(!text.contains("STARTTLS"), "{text}");
}

/// The TLS requirement each message of the account carries to the worker, by subject, from a claim.
async fn claimed_tls_requirements(w: &World) -> Vec<(String, mailpush_model::TlsRequirement)> {
    let claimed = w
        .store
        .queue()
        .claim(mailpush_store::ClaimRequest {
            worker: "test".into(),
            limit: 100,
            lease_ms: 60_000,
            now_ms: w.core.now_ms() + 1_000,
        })
        .await
        .expect("claim");
    let mut out: Vec<(String, mailpush_model::TlsRequirement)> = Vec::new();
    for c in claimed {
        let body = w
            .store
            .queue()
            .message_body(&c.message_id)
            .await
            .expect("body")
            .expect("stored");
        let body = String::from_utf8_lossy(&body).into_owned();
        let subject = body
            .lines()
            .find_map(|l| l.strip_prefix("Subject: "))
            .unwrap_or_default()
            .to_string();
        out.push((subject, c.tls_requirement));
    }
    out.sort();
    out
}

#[tokio::test]
async fn requiretls_is_offered_inside_tls_only_and_travels_with_the_message() {
    use mailpush_model::TlsRequirement;
    let w = world(|s| s.smtp_allow_plaintext_auth_loopback = true, |_| {}).await;

    // In plain text REQUIRETLS is neither offered nor accepted (RFC 8689 §4).
    let (mut c, _) = Client::connect(w.addr, &w.cert).await;
    let (_, text) = c.cmd("EHLO client.test").await;
    assert!(!text.lines().any(|l| l == "REQUIRETLS"), "{text}");
    assert_eq!(c.login(LOGIN, PASSWORD).await.0, 235);
    let (code, text) = c.cmd(&format!("MAIL FROM:<{LOGIN}> REQUIRETLS")).await;
    assert_eq!(
        (code, text.trim()),
        (530, "5.7.10 REQUIRETLS needs TLS: send STARTTLS first")
    );
    assert_eq!(c.cmd("NOOP").await.0, 250, "the session stays usable");

    // Inside TLS it is offered, and a message submitted with it is kept with it.
    let mut c = authed(&w).await;
    let (_, text) = c.cmd("EHLO client.test").await;
    assert!(text.lines().any(|l| l == "REQUIRETLS"), "{text}");
    assert_eq!(c.cmd(&format!("MAIL FROM:<{LOGIN}> REQUIRETLS")).await.0, 250);
    assert_eq!(c.cmd(&format!("RCPT TO:<{RCPT}>")).await.0, 250);
    assert_eq!(c.cmd("DATA").await.0, 354);
    c.send(message(LOGIN, RCPT, "requiretls").as_bytes()).await;
    c.send(b"\r\n.\r\n").await;
    assert_eq!(c.reply().await.0, 250);
    // Without the parameter: the sender address's "TLS required" decides.
    let (code, _) = send_one(&mut c, LOGIN, &[RCPT], &message(LOGIN, RCPT, "plain")).await;
    assert_eq!(code, 250);
    w.core
        .set_tls_required(&w.account, Some(LOGIN), true)
        .await
        .expect("require TLS for the sender");
    let (code, _) = send_one(&mut c, LOGIN, &[RCPT], &message(LOGIN, RCPT, "verified")).await;
    assert_eq!(code, 250);

    assert_eq!(
        claimed_tls_requirements(&w).await,
        [
            ("plain".to_string(), TlsRequirement::None),
            ("requiretls".to_string(), TlsRequirement::RequireTls),
            ("verified".to_string(), TlsRequirement::Verified),
        ]
    );
}

#[tokio::test]
async fn auth_before_tls_is_refused_and_the_session_stays_usable() {
    let w = world(|_| {}, |_| {}).await;
    let (mut c, _) = Client::connect(w.addr, &w.cert).await;
    assert_eq!(c.cmd("EHLO client.test").await.0, 250);
    let (code, text) = c.login(LOGIN, PASSWORD).await;
    assert_eq!((code, text.trim()), (530, "5.7.0 Must issue a STARTTLS command first"));
    assert_eq!(c.cmd("MAIL FROM:<app@shop.example.com>").await.0, 530);
    assert_eq!(c.cmd("NOOP").await.0, 250);
    c.starttls().await;
    assert_eq!(c.login(LOGIN, PASSWORD).await.0, 235);
}

#[tokio::test]
async fn plaintext_auth_on_loopback_when_allowed() {
    let w = world(|s| s.smtp_allow_plaintext_auth_loopback = true, |_| {}).await;
    let (mut c, _) = Client::connect(w.addr, &w.cert).await;
    let (_, text) = c.cmd("EHLO client.test").await;
    assert!(text.contains("AUTH PLAIN LOGIN"));
    // AUTH LOGIN, step by step.
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    assert_eq!(c.cmd("AUTH LOGIN").await, (334, "VXNlcm5hbWU6\n".into()));
    assert_eq!(c.cmd(&b64(LOGIN)).await.0, 334);
    assert_eq!(c.cmd(&b64(PASSWORD)).await.0, 235);
}

#[tokio::test]
async fn wrong_passwords_are_refused_then_throttled() {
    let w = world(|s| s.smtp_auth_max_failures = 3, |_| {}).await;
    let (mut c, _) = Client::connect(w.addr, &w.cert).await;
    c.starttls().await;
    for _ in 0..3 {
        let (code, text) = c.login(LOGIN, "wrong").await;
        assert_eq!((code, text.trim()), (535, "5.7.8 Authentication credentials invalid"));
    }
    // Now even the right password waits, from this IP: this (IP, username) pair is throttled.
    let (code, text) = c.login(LOGIN, PASSWORD).await;
    assert_eq!(code, 454, "{text}");
    assert!(text.starts_with("4.7.0"), "{text}");
    assert_eq!(c.cmd("NOOP").await.0, 250, "the session stays usable");
    // A new connection from the same IP is throttled too.
    let (mut c2, _) = Client::connect(w.addr, &w.cert).await;
    c2.starttls().await;
    assert_eq!(c2.login(LOGIN, PASSWORD).await.0, 454);
}

fn host(last: u8) -> std::net::IpAddr {
    std::net::IpAddr::from([127, 0, 0, last])
}

/// Connects from `from`, STARTTLS, AUTH PLAIN; the AUTH reply.
async fn login_from(w: &World, from: std::net::IpAddr, user: &str, pass: &str) -> (Client, u16, String) {
    let (mut c, code) = Client::connect_from(w.addr, &w.cert, from).await;
    assert_eq!(code, 220);
    c.starttls().await;
    let (code, text) = c.login(user, pass).await;
    (c, code, text)
}

#[tokio::test]
async fn wrong_passwords_from_one_address_do_not_lock_the_user_out_from_another() {
    // Sender addresses are public: a stranger's guesses must not keep their owner out of SMTP.
    let w = world(
        |s| {
            s.smtp_auth_max_failures = 3;
            s.smtp_auth_delay_ms = 10;
        },
        |_| {},
    )
    .await;
    let (mut stranger, _, _) = login_from(&w, host(2), LOGIN, "wrong-1").await;
    for i in 2..=6 {
        let (code, _) = stranger.login(LOGIN, &format!("wrong-{i}")).await;
        assert!(code == 535 || code == 454, "{code}");
    }
    // The stranger's address is throttled for this username, even with the right password…
    let (_, code, text) = login_from(&w, host(2), LOGIN, PASSWORD).await;
    assert_eq!(code, 454, "{text}");
    // …but the owner, from another address, logs in and submits.
    let (mut owner, code, text) = login_from(&w, host(3), LOGIN, PASSWORD).await;
    assert_eq!(code, 235, "{text}");
    let (code, text) = send_one(&mut owner, LOGIN, &[RCPT], &message(LOGIN, RCPT, "Hi")).await;
    assert_eq!(code, 250, "{text}");
}

#[tokio::test]
async fn an_address_guessing_many_usernames_is_refused_and_slowed_down() {
    let w = world(
        |s| {
            s.smtp_auth_max_failures = 3;
            s.smtp_auth_max_failures_per_ip = 4;
            s.smtp_auth_delay_ms = 200;
            s.smtp_auth_delay_max_ms = 400;
        },
        |_| {},
    )
    .await;
    let (mut c, code, _) = login_from(&w, host(4), "nobody-0@shop.example.com", "Wr0ngPassword1").await;
    assert_eq!(code, 535);
    for i in 1..4 {
        let started = std::time::Instant::now();
        let (code, _) = c.login(&format!("nobody-{i}@shop.example.com"), "Wr0ngPassword1").await;
        assert_eq!(code, 535);
        // The reply to each further failure of this address waits (at least the configured delay).
        assert!(
            started.elapsed() >= Duration::from_millis(200),
            "failure {i} not delayed"
        );
    }
    // Four failures from this address: any username, even the right password, is refused from it.
    let (_, code, text) = login_from(&w, host(4), LOGIN, PASSWORD).await;
    assert_eq!(code, 454, "{text}");
    // Other addresses are not affected.
    let (_, code, text) = login_from(&w, host(5), LOGIN, PASSWORD).await;
    assert_eq!(code, 235, "{text}");
}

#[tokio::test]
async fn over_the_connection_cap_clients_get_421_and_a_freed_slot_serves_again() {
    let w = world(|s| s.smtp_max_connections = 3, |_| {}).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        let (c, code) = Client::connect(w.addr, &w.cert).await;
        assert_eq!(code, 220);
        held.push(c);
    }
    // The cap covers the server's listeners together (STARTTLS and implicit TLS ports).
    let (mut over, code) = Client::connect(w.addr, &w.cert).await;
    assert_eq!(code, 421);
    assert_eq!(over.reply().await.0, 0, "closed after the refusal");
    let mut refused = tokio::net::TcpStream::connect(w.tls_addr).await.expect("connect");
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(
        Duration::from_secs(10),
        tokio::io::AsyncReadExt::read(&mut refused, &mut buf),
    )
    .await
    .expect("closed in time")
    .unwrap_or(0);
    assert_eq!(n, 0, "the implicit-TLS port closes without a clear-text reply");
    let mut q = held.pop().expect("held");
    assert_eq!(q.cmd("QUIT").await.0, 221);
    drop(q);
    // The slot comes back once the session has ended.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (mut c, code) = Client::connect(w.addr, &w.cert).await;
        if code == 220 {
            assert_eq!(c.cmd("EHLO client.test").await.0, 250);
            assert_eq!(c.cmd("QUIT").await.0, 221);
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no slot freed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_421_text_over_the_cap() {
    let w = world(|s| s.smtp_max_connections = 1, |_| {}).await;
    let (_held, code) = Client::connect(w.addr, &w.cert).await;
    assert_eq!(code, 220);
    let tcp = tokio::net::TcpStream::connect(w.addr).await.expect("connect");
    let mut line = String::new();
    tokio::io::AsyncBufReadExt::read_line(&mut tokio::io::BufReader::new(tcp), &mut line)
        .await
        .expect("read");
    assert_eq!(line, "421 4.3.2 too many connections, try again later\r\n");
}

#[tokio::test]
async fn near_the_cap_silent_clients_are_timed_out_sooner() {
    // smtp_timeout_secs stays 300; with 3 of 4 slots taken the server is under stress (10 s, like Postfix).
    let w = world(|s| s.smtp_max_connections = 4, |_| {}).await;
    let mut silent = Vec::new();
    for _ in 0..3 {
        let (c, code) = Client::connect(w.addr, &w.cert).await;
        assert_eq!(code, 220);
        silent.push(c);
    }
    for mut c in silent {
        // `reply` waits up to 30 s: far less than the configured 300 s.
        let (code, text) = c.reply().await;
        assert_eq!((code, text.trim()), (421, "4.4.2 Timeout; closing connection"));
    }
    let (mut c, code) = Client::connect(w.addr, &w.cert).await;
    assert_eq!(code, 220);
    assert_eq!(c.cmd("QUIT").await.0, 221);
}

#[tokio::test]
async fn trusted_networks_are_exempt_from_the_per_ip_limit() {
    let w = world(
        |s| {
            s.smtp_max_connections_per_ip = 2;
            s.smtp_trusted_networks = vec!["127.0.0.6/32".into()];
            s.smtp_trusted_account = Some("shop".into());
        },
        |_| {},
    )
    .await;
    let mut held = Vec::new();
    for _ in 0..5 {
        let (c, code) = Client::connect_from(w.addr, &w.cert, host(6)).await;
        assert_eq!(code, 220, "a trusted relay may open many connections");
        held.push(c);
    }
    for _ in 0..2 {
        let (c, code) = Client::connect_from(w.addr, &w.cert, host(7)).await;
        assert_eq!(code, 220);
        held.push(c);
    }
    let (_, code) = Client::connect_from(w.addr, &w.cert, host(7)).await;
    assert_eq!(code, 421, "an untrusted address keeps its per-IP limit");
}

#[tokio::test]
async fn foreign_senders_are_refused() {
    let w = world(|_| {}, |_| {}).await;
    let mut c = authed(&w).await;
    let (code, text) = c.cmd("MAIL FROM:<ceo@other.example>").await;
    assert_eq!(code, 550, "{text}");
    assert!(text.starts_with("5.7.1"), "{text}");
    // Envelope fine, header From foreign: refused at the end of DATA.
    let (code, text) = send_one(&mut c, LOGIN, &[RCPT], &message("ceo@other.example", RCPT, "x")).await;
    assert_eq!(code, 550, "{text}");
    assert!(text.starts_with("5.7.1"), "{text}");
    assert!(w.message_ids().await.is_empty());
    // Still usable.
    assert_eq!(
        send_one(&mut c, LOGIN, &[RCPT], &message(LOGIN, RCPT, "ok")).await.0,
        250
    );
}

#[tokio::test]
async fn the_51st_recipient_is_deferred() {
    let w = world(|_| {}, |_| {}).await;
    let mut c = authed(&w).await;
    assert_eq!(c.cmd(&format!("MAIL FROM:<{LOGIN}>")).await.0, 250);
    for i in 0..50 {
        assert_eq!(c.cmd(&format!("RCPT TO:<u{i}@example.org>")).await.0, 250);
    }
    let (code, text) = c.cmd("RCPT TO:<u50@example.org>").await;
    assert_eq!(code, 452, "{text}");
    assert!(text.starts_with("4.5.3"), "{text}");
    assert_eq!(c.cmd("DATA").await.0, 354);
    c.send(message(LOGIN, RCPT, "fifty").as_bytes()).await;
    c.send(b".\r\n").await;
    assert_eq!(c.reply().await.0, 250, "the first 50 are sent");
}

#[tokio::test]
async fn oversize_mail_is_refused_by_size_and_while_reading() {
    let w = world(|_| {}, |_| {}).await;
    let mut c = authed(&w).await;
    let (code, text) = c.cmd(&format!("MAIL FROM:<{LOGIN}> SIZE=5242880")).await;
    assert_eq!(code, 552, "{text}");
    assert!(text.starts_with("5.3.4"));
    // No SIZE given: 5 MB of data, refused after the terminator; the session stays in step.
    assert_eq!(c.cmd(&format!("MAIL FROM:<{LOGIN}>")).await.0, 250);
    assert_eq!(c.cmd(&format!("RCPT TO:<{RCPT}>")).await.0, 250);
    assert_eq!(c.cmd("DATA").await.0, 354);
    c.send(message(LOGIN, RCPT, "big").as_bytes()).await;
    let line = format!("{}\r\n", "x".repeat(98));
    let chunk = line.repeat(1000);
    for _ in 0..(5 * 1024 * 1024 / chunk.len() + 1) {
        c.send(chunk.as_bytes()).await;
    }
    c.send(b".\r\n").await;
    let (code, text) = c.reply().await;
    assert_eq!(code, 552, "{text}");
    assert!(text.starts_with("5.3.4"));
    assert_eq!(
        send_one(&mut c, LOGIN, &[RCPT], &message(LOGIN, RCPT, "small")).await.0,
        250
    );
    assert_eq!(w.message_ids().await.len(), 1);
}

#[tokio::test]
async fn smuggling_yields_exactly_one_message() {
    let w = world(|_| {}, |_| {}).await;
    for evil in ["\n.\n", "\r\n.\n", "\n.\r\n", "\r.\r\n"] {
        let mut c = authed(&w).await;
        let before = w.message_ids().await.len();
        assert_eq!(c.cmd(&format!("MAIL FROM:<{LOGIN}>")).await.0, 250);
        assert_eq!(c.cmd(&format!("RCPT TO:<{RCPT}>")).await.0, 250);
        assert_eq!(c.cmd("DATA").await.0, 354);
        let smuggled = format!(
            "{}first{evil}MAIL FROM:<{LOGIN}>\r\nRCPT TO:<victim@example.net>\r\nDATA\r\n{}smuggled\r\n.\r\n",
            message(LOGIN, RCPT, "one"),
            message(LOGIN, "victim@example.net", "two")
        );
        c.send(smuggled.as_bytes()).await;
        let (code, text) = c.reply().await;
        assert_eq!(code, 250, "{evil:?}: {text}");
        // Nothing else may come back: the smuggled commands were message content.
        assert_eq!(c.cmd("NOOP").await.0, 250, "{evil:?}");
        let ids = w.message_ids().await;
        assert_eq!(ids.len(), before + 1, "{evil:?}: exactly one message");
        let id = mailpush_model::MessageId::parse(&queued_id(&text)).expect("id");
        let rows = w
            .store
            .queue()
            .status(mailpush_store_query(&w, id.clone()))
            .await
            .expect("status");
        let rcpts: Vec<_> = rows.iter().map(|r| r.recipient.as_str()).collect();
        assert_eq!(rcpts, [RCPT], "{evil:?}: the victim never became a recipient");
        let body = w.store.queue().message_body(&id).await.expect("body").expect("stored");
        assert!(
            !body
                .windows(2)
                .enumerate()
                .any(|(i, p)| p[1] == b'\n' && (i == 0 || p[0] != b'\r')),
            "stored with CRLF only"
        );
    }
}

fn mailpush_store_query(w: &World, id: mailpush_model::MessageId) -> mailpush_store::StatusQuery {
    mailpush_store::StatusQuery {
        account_id: w.account.id,
        from_ms: 0,
        to_ms: i64::MAX,
        message_id: Some(id),
        to_address: None,
        offset: 0,
        limit: 100,
    }
}

#[tokio::test]
async fn pipelining_and_chunking() {
    let w = world(|_| {}, |_| {}).await;
    let mut c = authed(&w).await;
    let msg = message(LOGIN, RCPT, "chunked");
    let (a, b) = msg.split_at(20);
    let batch = format!(
        "MAIL FROM:<{LOGIN}>\r\nRCPT TO:<{RCPT}>\r\nRCPT TO:<carol@example.net>\r\nBDAT {}\r\n{a}BDAT {} LAST\r\n{b}",
        a.len(),
        b.len()
    );
    c.send(batch.as_bytes()).await;
    for want in [250, 250, 250, 250] {
        let (code, text) = c.reply().await;
        assert_eq!(code, want, "{text}");
    }
    let (code, text) = c.reply().await;
    assert_eq!(code, 250, "{text}");
    assert!(text.contains("queued as"));
    // BDAT without a transaction still consumes its bytes: they never become commands.
    c.send(b"BDAT 6 LAST\r\nQUIT\r\n").await;
    assert_eq!(c.reply().await.0, 503);
    assert_eq!(c.cmd("NOOP").await.0, 250);
    assert_eq!(w.message_ids().await.len(), 1);
}

#[tokio::test]
async fn implicit_tls_listener() {
    let w = world(|_| {}, |_| {}).await;
    let (mut c, code) = Client::connect_tls(w.tls_addr, &w.cert).await;
    assert_eq!(code, 220);
    let (_, text) = c.cmd("EHLO client.test").await;
    assert!(
        text.contains("AUTH PLAIN LOGIN") && !text.contains("STARTTLS"),
        "{text}"
    );
    assert_eq!(c.login(LOGIN, PASSWORD).await.0, 235);
    assert_eq!(
        send_one(&mut c, LOGIN, &[RCPT], &message(LOGIN, RCPT, "465")).await.0,
        250
    );
}

#[tokio::test]
async fn trusted_networks_submit_without_auth() {
    let w = world(
        |s| {
            s.smtp_trusted_networks = vec!["127.0.0.0/8".into()];
            s.smtp_trusted_account = Some("shop".into());
        },
        |_| {},
    )
    .await;
    let (mut c, _) = Client::connect(w.addr, &w.cert).await;
    assert_eq!(c.cmd("EHLO client.test").await.0, 250);
    let (code, text) = send_one(
        &mut c,
        "any@shop.example.com",
        &[RCPT],
        &message("any@shop.example.com", RCPT, "t"),
    )
    .await;
    assert_eq!(code, 250, "{text}");
    assert_eq!(w.message_ids().await.len(), 1);
    // Trusted, but only for the account's verified domains: a created domain whose records are not
    // published yet, and a domain the account never created, are both refused at MAIL FROM.
    w.core
        .create_identity(&w.account, "pending.example.com", Some(3))
        .await
        .expect("create identity");
    for from in ["app@pending.example.com", "ceo@other.example"] {
        let (code, text) = c.cmd(&format!("MAIL FROM:<{from}>")).await;
        assert_eq!(code, 550, "{from}: {text}");
        assert!(text.starts_with("5.7.1"), "{from}: {text}");
    }
    assert_eq!(w.message_ids().await.len(), 1);
}

#[tokio::test]
async fn without_auth_or_trust_mail_is_refused() {
    let w = world(|_| {}, |_| {}).await;
    let (mut c, _) = Client::connect(w.addr, &w.cert).await;
    assert_eq!(c.cmd("EHLO client.test").await.0, 250);
    assert_eq!(c.cmd(&format!("MAIL FROM:<{LOGIN}>")).await.0, 530);
}

/// A world whose loopback clients submit without AUTH as the account `shop`.
async fn trusted_world() -> World {
    world(
        |s| {
            s.smtp_trusted_networks = vec!["127.0.0.1/32".into()];
            s.smtp_trusted_account = Some("shop".into());
        },
        |_| {},
    )
    .await
}

/// One mail in a session of its own, without AUTH: the reply to its DATA.
async fn trusted_session_send(w: &World, subject: &str) -> (u16, String) {
    let (mut c, _) = Client::connect(w.addr, &w.cert).await;
    assert_eq!(c.cmd("EHLO client.test").await.0, 250);
    send_one(&mut c, LOGIN, &[RCPT], &message(LOGIN, RCPT, subject)).await
}

#[tokio::test]
async fn suspended_accounts_are_refused() {
    let w = trusted_world().await;
    w.store
        .accounts()
        .set_account_suspended(w.account.id, true)
        .await
        .expect("suspend");
    let (code, text) = trusted_session_send(&w, "x").await;
    assert_eq!(code, 550, "{text}");
    assert!(text.starts_with("5.7.1") && text.contains("suspended"), "{text}");
}

#[tokio::test]
async fn a_suspension_reaches_the_next_trusted_session_at_once() {
    let w = trusted_world().await;
    // The first session reads the trusted account (and the process remembers it).
    let (code, text) = trusted_session_send(&w, "x").await;
    assert_eq!(code, 250, "{text}");
    w.core
        .set_account_suspended_by_name("shop", true)
        .await
        .expect("suspend");
    let (code, text) = trusted_session_send(&w, "y").await;
    assert_eq!(code, 550, "{text}");
    assert!(text.contains("suspended"), "{text}");
}

#[tokio::test]
async fn malformed_input_gets_errors_then_421() {
    let w = world(|_| {}, |_| {}).await;
    let (mut c, _) = Client::connect(w.addr, &w.cert).await;
    assert_eq!(c.cmd("HELLO").await.0, 500);
    assert_eq!(c.cmd("MAIL FROM:<a@b.example>").await.0, 503, "MAIL before EHLO");
    assert_eq!(c.cmd("EHLO client.test").await.0, 250);
    let (code, _) = c.cmd(&"A".repeat(5000)).await;
    assert_eq!(code, 500, "line too long");
    assert_eq!(c.cmd("RCPT TO:<x@example.org>").await.0, 503);
    assert!(c.cmd("\u{0}\u{1}\u{2}").await.0 >= 500);
    // Ten errors in all: the tenth reply is followed by 421 and the close.
    for _ in 0..5 {
        assert_eq!(c.cmd("BOGUS").await.0, 500);
    }
    let (code, text) = c.reply().await;
    assert_eq!(code, 421, "{text}");
    assert_eq!(c.reply().await.0, 0, "connection closed");
}

#[tokio::test]
async fn idle_clients_get_421() {
    let w = world(|_| {}, |cfg| cfg.timeout = Duration::from_millis(300)).await;
    let (mut c, _) = Client::connect(w.addr, &w.cert).await;
    let (code, text) = c.reply().await;
    assert_eq!(code, 421, "{text}");
    assert!(text.starts_with("4.4.2"));
}

#[tokio::test]
async fn connections_per_ip_are_limited() {
    let w = world(|_| {}, |cfg| cfg.max_connections_per_ip = 2).await;
    let (_a, ca) = Client::connect(w.addr, &w.cert).await;
    let (_b, cb) = Client::connect(w.addr, &w.cert).await;
    assert_eq!((ca, cb), (220, 220));
    let (mut c, code) = Client::connect(w.addr, &w.cert).await;
    assert_eq!(code, 421);
    assert_eq!(c.reply().await.0, 0);
}

#[tokio::test]
async fn remembered_logins_follow_password_changes() {
    let w = world(|_| {}, |_| {}).await;
    let ok = |r: Option<_>| r.is_some();
    assert!(ok(w
        .core
        .verify_smtp_credentials(LOGIN, PASSWORD)
        .await
        .expect("verify")));
    // The second login is answered from memory (no argon2 run), with the same verdicts.
    assert!(ok(w
        .core
        .verify_smtp_credentials(LOGIN, PASSWORD)
        .await
        .expect("again")));
    assert!(!ok(w
        .core
        .verify_smtp_credentials(LOGIN, "WrongPassw0rd1")
        .await
        .expect("wrong")));
    w.core
        .update_smtp_password(&w.account, LOGIN, "NewSmtpPassw0rd")
        .await
        .expect("change");
    assert!(
        !ok(w.core.verify_smtp_credentials(LOGIN, PASSWORD).await.expect("old")),
        "a remembered login ends with its password"
    );
    assert!(ok(w
        .core
        .verify_smtp_credentials(LOGIN, "NewSmtpPassw0rd")
        .await
        .expect("new")));
    let mut c = authed_with(&w, "NewSmtpPassw0rd").await;
    let (code, text) = send_one(&mut c, LOGIN, &[RCPT], &message(LOGIN, RCPT, "x")).await;
    assert_eq!(code, 250, "{text}");
}

#[tokio::test]
async fn a_deleted_sender_stops_sending_at_once() {
    let w = world(|_| {}, |_| {}).await;
    let mut c = authed(&w).await;
    // A first mail puts the sender and its domain in the send gate's cache.
    let (code, text) = send_one(&mut c, LOGIN, &[RCPT], &message(LOGIN, RCPT, "before")).await;
    assert_eq!(code, 250, "{text}");
    w.core.delete_sender(&w.account, LOGIN).await.expect("delete");
    w.core
        .delete_identity(&w.account, "shop.example.com")
        .await
        .expect("delete domain");
    assert_eq!(
        c.cmd(&format!("MAIL FROM:<{LOGIN}>")).await.0,
        550,
        "refused at once, not after the TTL"
    );
}

async fn authed_with(w: &World, password: &str) -> Client {
    let (mut c, code) = Client::connect(w.addr, &w.cert).await;
    assert_eq!(code, 220);
    c.starttls().await;
    let (code, text) = c.login(LOGIN, password).await;
    assert_eq!(code, 235, "{text}");
    c
}
