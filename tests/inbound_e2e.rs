//! The feedback loop after delivery, end to end through the real `mailpush serve`: every mail leaves
//! with a signed VERP return path; DSNs and ARF reports sent over SMTP to the inbound MX (`inbound_listen`)
//! become bounce and spamreport events on the right message; mail to the List-Unsubscribe mailto address
//! unsubscribes; anything else is refused. And the RFC 3463 classification of synchronous failures: NXDOMAIN
//! and null MX are hard bounces, connection refused, timeouts and SERVFAIL are deferrals, a full mailbox is a
//! soft bounce that does not blacklist.

use mailpush_model::EventKind;
use mailpush_store::{BounceType, RecordedEvent};
use mailpush_suite::outcomes::{message_id, status_of};
use mailpush_suite::*;
use mailpush_testkit::{DnsAuthority, SinkMx, SinkReply};
use serde_json::{Value, json};
use std::net::Ipv4Addr;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const MX_HOST: &str = "mx.mailpush.test";
const WAIT: Duration = Duration::from_secs(30);

struct World {
    dir: tempfile::TempDir,
    dns: DnsAuthority,
    sink: SinkMx,
    server: ServerProcess,
    client: ApiClient,
    inbound: String,
}

async fn world(extra: &[(&str, String)]) -> World {
    let dns = DnsAuthority::start().await.expect("dns");
    let sink = SinkMx::start_default().await.expect("sink");
    dns.add_mx("example.org", 10, "mx.example.org");
    dns.add_a("mx.example.org", Ipv4Addr::LOCALHOST);
    let dir = temp_dir();
    let mut vars = vec![
        ("MAILPUSH_DNS_SERVERS", dns.addr().to_string()),
        ("MAILPUSH_DELIVERY_PORT", sink.addr().port().to_string()),
        ("MAILPUSH_RETRY_SCHEDULE_SECS", "1".to_string()),
        ("MAILPUSH_INBOUND_LISTEN", "127.0.0.1:0".to_string()),
        ("MAILPUSH_BOUNCE_MX_HOST", MX_HOST.to_string()),
        ("MAILPUSH_PUBLIC_BASE_URL", "https://track.mailpush.test".to_string()),
    ];
    vars.extend(extra.iter().cloned());
    let env = base_env(dir.path(), &vars);
    let creds = create_account(&env, "shop").await;
    let server = ServerProcess::start("mailpush", &["serve"], &env).await;
    let inbound = server.announced_addr("inbound").expect("inbound listener announced");
    let client = ApiClient::new(&server.api_addr, &creds);
    verified_sender(&client, &dns, "noreply@shop.example.com").await;
    World {
        dir,
        dns,
        sink,
        server,
        client,
        inbound,
    }
}

async fn send(client: &ApiClient, to: &[&str], unsubscribe: &str) -> Value {
    client
        .call(
            "SendEmail",
            &json!({
                "FromEmailAddress": "noreply@shop.example.com",
                "Destination": to,
                "Subject": "Hi",
                "Simple": { "Text": b64(b"hello") },
                "Unsubscribe": unsubscribe,
            }),
        )
        .await
}

async fn wait_status(client: &ApiClient, id: &str, wanted: i64) -> Vec<Value> {
    outcomes::wait_status(client, id, &[wanted], WAIT).await
}

/// The events of one message, read from the server's database (a second connection; WAL lets both work).
async fn events_of(w: &World, id: &str) -> Vec<RecordedEvent> {
    outcomes::message_events(w.dir.path(), "shop", id).await
}

/// Waits until the message has an event of `kind` and returns the events.
async fn wait_event(w: &World, id: &str, kind: EventKind) -> Vec<RecordedEvent> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let events = events_of(w, id).await;
        if events.iter().any(|e| e.event.kind == kind) {
            return events;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{id} never got {kind:?}: {events:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A minimal SMTP client: the replies to EHLO, MAIL, each RCPT and (when some RCPT was accepted) DATA + body.
struct Smtp {
    replies: Vec<String>,
}

type Reader = BufReader<tokio::net::tcp::OwnedReadHalf>;

async fn read_reply(r: &mut Reader) -> String {
    let mut all = String::new();
    loop {
        let mut line = String::new();
        let n = r.read_line(&mut line).await.expect("read reply");
        assert!(n > 0, "connection closed after {all:?}");
        all.push_str(&line);
        if line.len() < 4 || line.as_bytes()[3] == b' ' {
            return all.trim_end().to_string();
        }
    }
}

async fn cmd(wr: &mut tokio::net::tcp::OwnedWriteHalf, rd: &mut Reader, line: String) -> String {
    wr.write_all(line.as_bytes()).await.expect("write");
    read_reply(rd).await
}

async fn smtp_send(addr: &str, mail_from: &str, rcpts: &[&str], data: &[u8]) -> Smtp {
    let tcp = TcpStream::connect(addr).await.expect("connect to the inbound MX");
    let (rd, mut wr) = tcp.into_split();
    let mut rd = BufReader::new(rd);
    let mut replies = vec![read_reply(&mut rd).await];
    replies.push(cmd(&mut wr, &mut rd, "EHLO reporter.example\r\n".into()).await);
    replies.push(cmd(&mut wr, &mut rd, format!("MAIL FROM:<{mail_from}>\r\n")).await);
    let mut accepted = false;
    for r in rcpts {
        let reply = cmd(&mut wr, &mut rd, format!("RCPT TO:<{r}>\r\n")).await;
        accepted |= reply.starts_with("250");
        replies.push(reply);
    }
    if accepted {
        replies.push(cmd(&mut wr, &mut rd, "DATA\r\n".into()).await);
        let mut body = Vec::new();
        for line in String::from_utf8_lossy(data).split_inclusive('\n') {
            if line.starts_with('.') {
                body.push(b'.');
            }
            body.extend_from_slice(line.as_bytes());
        }
        body.extend_from_slice(b".\r\n");
        wr.write_all(&body).await.expect("write body");
        replies.push(read_reply(&mut rd).await);
    }
    let _ = wr.write_all(b"QUIT\r\n").await;
    Smtp { replies }
}

fn crlf(s: &str) -> Vec<u8> {
    s.replace("\r\n", "\n").replace('\n', "\r\n").into_bytes()
}

fn postfix_dsn(verp: &str, rcpt: &str, message_id_header: &str) -> Vec<u8> {
    crlf(&format!(
        r#"Date: Tue,  1 Dec 2026 19:50:01 +0000 (UTC)
From: MAILER-DAEMON@mx.example.org (Mail Delivery System)
Subject: Undelivered Mail Returned to Sender
To: {verp}
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
	boundary="4XyzAbC.1733082601/mx.example.org"
Message-Id: <20261201195001.4XyzAbC@mx.example.org>

This is a MIME-encapsulated message.

--4XyzAbC.1733082601/mx.example.org
Content-Description: Notification
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mx.example.org.

<{rcpt}>: host mailstore.example.org[10.0.0.5] said: 550 5.1.1 <{rcpt}>:
    Recipient address rejected: User unknown in virtual mailbox table

--4XyzAbC.1733082601/mx.example.org
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.org
X-Postfix-Queue-ID: 4XyzAbC
X-Postfix-Sender: rfc822; {verp}
Arrival-Date: Tue,  1 Dec 2026 19:50:00 +0000 (UTC)

Final-Recipient: rfc822; {rcpt}
Original-Recipient: rfc822;{rcpt}
Action: failed
Status: 5.1.1
Remote-MTA: dns; mailstore.example.org
Diagnostic-Code: smtp; 550 5.1.1 <{rcpt}>: Recipient address rejected: User
    unknown in virtual mailbox table

--4XyzAbC.1733082601/mx.example.org
Content-Description: Undelivered Message Headers
Content-Type: text/rfc822-headers

Return-Path: <{verp}>
Message-ID: {message_id_header}
From: noreply@shop.example.com
To: {rcpt}
Subject: Hi

--4XyzAbC.1733082601/mx.example.org--
"#
    ))
}

/// A Yahoo-style abuse report: the complainant redacted, the original attached (matched by its Message-ID).
fn yahoo_arf(original_headers: &str) -> Vec<u8> {
    crlf(&format!(
        r#"From: Yahoo! Mail AntiSpam Feedback <feedback@arf.mail.yahoo.com>
To: fbl@{MX_HOST}
Subject: FW: Hi
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="----=_Part_1_2.3"

------=_Part_1_2.3
Content-Type: text/plain; charset="us-ascii"

This is an email abuse report for an email message received from IP 127.0.0.1.

------=_Part_1_2.3
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: Yahoo!-Mail-Feedback/2.0
Version: 1
Arrival-Date: Tue, 1 Dec 2026 19:50:00 +0000
Reporting-MTA: dns; mta1.mail.yahoo.com
Source-IP: 127.0.0.1

------=_Part_1_2.3
Content-Type: message/rfc822
Content-Disposition: inline

{original_headers}
hello
------=_Part_1_2.3--
"#
    ))
}

/// The delivered copy for `rcpt` (waits for it).
async fn delivered_to(sink: &SinkMx, rcpt: &str) -> mailpush_testkit::ReceivedMessage {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(m) = sink
            .messages()
            .into_iter()
            .find(|m| m.rcpt_to.iter().any(|r| r == rcpt))
        {
            return m;
        }
        assert!(tokio::time::Instant::now() < deadline, "nothing delivered to {rcpt}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn header(data: &[u8], name: &str) -> String {
    let parsed = mail_parser::MessageParser::default().parse(data).expect("mime");
    parsed
        .header_raw(name)
        .unwrap_or_else(|| panic!("no {name}"))
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dsn_and_arf_reports_become_bounce_and_spamreport_events() {
    let w = world(&[]).await;

    // 1. Delivered with a VERP return path at the sending domain's return-path domain.
    let first = message_id(&send(&w.client, &["alice@example.org"], "0").await);
    wait_status(&w.client, &first, 1).await;
    let copy = delivered_to(&w.sink, "alice@example.org").await;
    let verp = copy.mail_from.clone();
    let (local, domain) = verp.split_once('@').expect("an address");
    assert_eq!(domain, "bounce.shop.example.com");
    assert!(local.starts_with("mpb-") && local.len() <= 64, "{verp}");
    assert!(!verp.contains(&first), "the token is opaque: {verp}");

    // 2. The MX accepted, then bounced: a Postfix DSN to the return path.
    let message_id_header = header(&copy.data, "Message-ID");
    let dsn = postfix_dsn(&verp, "alice@example.org", &message_id_header);
    let s = smtp_send(&w.inbound, "", &[&verp], &dsn).await;
    assert!(
        s.replies[2].starts_with("250"),
        "MAIL FROM:<> accepted: {:?}",
        s.replies
    );
    assert!(s.replies.last().unwrap().starts_with("250"), "{:?}", s.replies);
    assert!(!s.replies[1].contains("AUTH"), "no AUTH on the MX: {:?}", s.replies);
    let events = wait_event(&w, &first, EventKind::Bounce).await;
    let bounce = events.iter().find(|e| e.event.kind == EventKind::Bounce).unwrap();
    assert_eq!(bounce.event.bounce_type, Some(BounceType::Hard));
    assert!(bounce.event.reason.contains("5.1.1"), "{bounce:?}");
    // Delivered → rejected, and the address is blacklisted like after a synchronous hard bounce.
    let rows = wait_status(&w.client, &first, 3).await;
    assert!(
        rows[0]["DeliverMessage"].as_str().unwrap().contains("User unknown"),
        "{rows:?}"
    );
    let again = send(&w.client, &["alice@example.org"], "0").await;
    assert_eq!(
        ApiClient::error_code(&again).as_deref(),
        Some("FailedOperation.EmailAddrInBlacklist"),
        "{again}"
    );
    // The same DSN again (providers retransmit): no second event.
    let s = smtp_send(&w.inbound, "", &[&verp], &dsn).await;
    assert!(s.replies.last().unwrap().starts_with("250"), "{:?}", s.replies);
    let bounces = events_of(&w, &first)
        .await
        .into_iter()
        .filter(|e| e.event.kind == EventKind::Bounce)
        .count();
    assert_eq!(bounces, 1);

    // 3. A complaint to the feedback-loop address, matched by the attached original's Message-ID.
    let second = message_id(&send(&w.client, &["carol@example.org"], "0").await);
    wait_status(&w.client, &second, 1).await;
    let copy = delivered_to(&w.sink, "carol@example.org").await;
    let original = format!(
        "Message-ID: {}\nFrom: noreply@shop.example.com\nTo: redacted@yahoo.com\nSubject: Hi\n",
        header(&copy.data, "Message-ID")
    );
    let s = smtp_send(
        &w.inbound,
        "feedback@arf.mail.yahoo.com",
        &[&format!("fbl@{MX_HOST}")],
        &yahoo_arf(&original),
    )
    .await;
    assert!(s.replies.last().unwrap().starts_with("250"), "{:?}", s.replies);
    let events = wait_event(&w, &second, EventKind::SpamReport).await;
    let report = events.iter().find(|e| e.event.kind == EventKind::SpamReport).unwrap();
    assert_eq!(report.event.recipient, "carol@example.org");
    let rows = status_of(&w.client, &second).await;
    assert_eq!(rows[0]["UserComplainted"], true, "{rows:?}");
    assert_eq!(
        rows[0]["DeliverStatus"], 1,
        "a complaint does not undo the delivery: {rows:?}"
    );
    // Suppressed for this account, as SES does: the next send to the complainant is refused.
    let again = send(&w.client, &["carol@example.org"], "0").await;
    assert_eq!(
        ApiClient::error_code(&again).as_deref(),
        Some("FailedOperation.EmailAddrInBlacklist"),
        "{again}"
    );

    // 4. No relay, no forged tokens.
    let forged = format!("mpb-{}@shop.example.com", "a".repeat(42));
    let s = smtp_send(
        &w.inbound,
        "spammer@evil.example",
        &[
            "someone@example.org",
            "postmaster@shop.example.com",
            &forged,
            "fbl@shop.example.com",
        ],
        b"Subject: relay me\r\n\r\nhi\r\n",
    )
    .await;
    for r in &s.replies[3..] {
        assert!(r.starts_with("550 5.1.1"), "refused: {:?}", s.replies);
    }
    assert_eq!(s.replies.len(), 7, "no DATA without a recipient: {:?}", s.replies);
    w.server.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_to_the_list_unsubscribe_mailto_address_unsubscribes() {
    let w = world(&[]).await;
    let first = message_id(&send(&w.client, &["dave@example.org"], "1").await);
    wait_status(&w.client, &first, 1).await;
    let copy = delivered_to(&w.sink, "dave@example.org").await;
    let list = header(&copy.data, "List-Unsubscribe").replace(' ', "");
    let mailto = list
        .split("<mailto:")
        .nth(1)
        .and_then(|s| s.split(['?', '>']).next())
        .unwrap_or_else(|| panic!("no mailto in {list}"))
        .to_string();
    assert!(
        mailto.starts_with("mpu-") && mailto.ends_with(&format!("@{MX_HOST}")),
        "{mailto}"
    );
    // Some MTAs uppercase local parts: the token still works.
    let s = smtp_send(
        &w.inbound,
        "dave@example.org",
        &[&mailto.to_ascii_uppercase()],
        b"Subject: unsubscribe\r\n\r\n",
    )
    .await;
    assert!(s.replies.last().unwrap().starts_with("250"), "{:?}", s.replies);
    wait_event(&w, &first, EventKind::Unsubscribe).await;
    let again = send(&w.client, &["dave@example.org"], "0").await;
    assert_eq!(
        ApiClient::error_code(&again).as_deref(),
        Some("FailedOperation.ReceiverHasUnsubscribed"),
        "{again}"
    );
    w.server.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc3463_classes_of_synchronous_failures() {
    let w = world(&[("MAILPUSH_COMMAND_TIMEOUT_SECS", "1".to_string())]).await;
    let port = w.sink.addr().port();
    // Null MX (RFC 7505) and NXDOMAIN ("nowhere.example" has no records at all).
    w.dns.set_null_mx("nomail.example");
    // SERVFAIL.
    w.dns.set_servfail("broken.example", true);
    // Connection refused: an MX address where nothing listens on the delivery port.
    w.dns.add_mx("refused.example", 10, "mx.refused.example");
    w.dns.add_a("mx.refused.example", Ipv4Addr::new(127, 0, 0, 9));
    // Timeout: an MX that accepts the connection and never greets.
    let silent = tokio::net::TcpListener::bind((Ipv4Addr::new(127, 0, 0, 10), port))
        .await
        .expect("bind the silent MX");
    let _hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            held.push(s);
        }
    });
    w.dns.add_mx("silent.example", 10, "mx.silent.example");
    w.dns.add_a("mx.silent.example", Ipv4Addr::new(127, 0, 0, 10));
    // A full mailbox: permanent for this message, not a bad address.
    w.sink
        .set_reply("full@example.org", SinkReply::reply(552, "5.2.2 Mailbox full"));

    let mut hard = Vec::new();
    for to in ["x@nowhere.example", "x@nomail.example"] {
        let id = message_id(&send(&w.client, &[to], "0").await);
        hard.push((to, id));
    }
    let mut soft = Vec::new();
    for to in ["x@broken.example", "x@refused.example", "x@silent.example"] {
        let id = message_id(&send(&w.client, &[to], "0").await);
        soft.push((to, id));
    }
    let full = message_id(&send(&w.client, &["full@example.org"], "0").await);

    for (to, id) in &hard {
        wait_status(&w.client, id, 3).await;
        let events = events_of(&w, id).await;
        assert_eq!(events.len(), 1, "{to}: {events:?}");
        assert_eq!(events[0].event.bounce_type, Some(BounceType::Hard), "{to}: {events:?}");
        let again = send(&w.client, &[to], "0").await;
        assert_eq!(
            ApiClient::error_code(&again).as_deref(),
            Some("FailedOperation.EmailAddrInBlacklist"),
            "{to}: {again}"
        );
    }
    for (to, id) in &soft {
        let events = wait_event(&w, id, EventKind::Deferred).await;
        assert!(
            events.iter().all(|e| e.event.kind == EventKind::Deferred),
            "{to} is only deferred: {events:?}"
        );
        let reason = &events[0].event.reason;
        assert!(reason.starts_with("4."), "{to}: {reason}");
    }
    wait_status(&w.client, &full, 3).await;
    let events = events_of(&w, &full).await;
    assert_eq!(events[0].event.kind, EventKind::Bounce);
    assert_eq!(events[0].event.bounce_type, Some(BounceType::Soft), "{events:?}");
    // Not blacklisted: the next mail to the full mailbox is accepted.
    let again = send(&w.client, &["full@example.org"], "0").await;
    assert!(again.get("Error").is_none(), "{again}");
    w.server.kill().await;
}
