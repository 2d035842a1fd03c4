//! Drives the sink MX over real sockets with mail-send 0.6.2 (the client the delivery worker
//! uses) and with raw TCP where the exact bytes matter.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use mail_builder::MessageBuilder;
use mail_send::smtp::message::{Address, Message, Parameters};
use mail_send::{SmtpClient, SmtpClientBuilder};
use mailpush_testkit::{SinkConfig, SinkMx, SinkReply, TestkitError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const WAIT: Duration = Duration::from_secs(10);

fn builder(sink: &SinkMx) -> SmtpClientBuilder<String> {
    SmtpClientBuilder::new("127.0.0.1".to_owned(), sink.port())
        .unwrap()
        .helo_host("client.test")
        // mail-send's default is one hour: a broken test would hang instead of failing.
        .timeout(WAIT)
}

fn mail(to: &str, subject: &str) -> MessageBuilder<'static> {
    MessageBuilder::new()
        .from(("Sender", "sender@example.test"))
        .to(to.to_owned())
        .subject(subject.to_owned())
        .text_body(format!("Body of {subject}\r\n"))
}

/// The codes of the final lines of every reply in `raw` (continuation lines skipped).
fn reply_codes(raw: &str) -> Vec<u16> {
    raw.split("\r\n")
        .filter(|l| l.len() >= 4 && l.as_bytes()[3] == b' ')
        .map(|l| l[..3].parse().unwrap())
        .collect()
}

/// Writes `input` in one go, half-closes, and returns everything the sink answered.
async fn raw_session(addr: SocketAddr, input: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(input).await.unwrap();
    stream.shutdown().await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut out))
        .await
        .unwrap()
        .unwrap();
    String::from_utf8(out).unwrap()
}

fn unexpected_code(err: mail_send::Error) -> (u16, String) {
    match err {
        mail_send::Error::UnexpectedReply(r) => (r.code, r.message),
        other => panic!("expected an SMTP reply error, got {other:?}"),
    }
}

#[tokio::test]
async fn two_messages_share_one_connection() {
    let sink = SinkMx::start_default().await.unwrap();
    let mut client = builder(&sink).connect_plain().await.unwrap();
    client.send(mail("one@dest.test", "first")).await.unwrap();
    client.send(mail("two@dest.test", "second")).await.unwrap();
    client.quit().await.unwrap();

    let messages = sink.wait_for_messages(2, WAIT).await.unwrap();
    assert_eq!(sink.connection_count(), 1);
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0].mail_from, "sender@example.test");
    assert_eq!(messages[0].rcpt_to, vec!["one@dest.test"]);
    assert_eq!(messages[1].rcpt_to, vec!["two@dest.test"]);
    assert_eq!(messages[0].helo, "client.test");
    assert!(!messages[0].tls);
    assert_eq!(messages[0].connection_id, messages[1].connection_id);
    assert_eq!(messages[0].peer.ip(), IpAddr::V4(Ipv4Addr::LOCALHOST));
    let parsed = messages[1].parsed().unwrap();
    assert_eq!(parsed.subject(), Some("second"));
    assert_eq!(sink.messages_for("ONE@dest.test").len(), 1);
}

#[tokio::test]
async fn per_recipient_replies_reach_the_client() {
    let sink = SinkMx::start_default().await.unwrap();
    sink.set_reply("bad@dest.test", SinkReply::reply(550, "5.1.1 no such user"));
    sink.set_reply("Later@Dest.test", SinkReply::reply(451, "4.3.0 try later"));

    let mut client = builder(&sink).connect_plain().await.unwrap();
    let none = Parameters::new();
    client.mail_from("sender@example.test", &none).await.unwrap();
    client.rcpt_to("good@dest.test", &none).await.unwrap();
    let (code, text) = unexpected_code(client.rcpt_to("BAD@dest.test", &none).await.unwrap_err());
    assert_eq!(code, 550);
    assert!(text.contains("no such user"), "{text}");
    let (code, _) = unexpected_code(client.rcpt_to("later@dest.test", &none).await.unwrap_err());
    assert_eq!(code, 451);
    client.data(b"Subject: partial\r\n\r\nonly good\r\n").await.unwrap();

    let messages = sink.wait_for_messages(1, WAIT).await.unwrap();
    assert_eq!(messages[0].rcpt_to, vec!["good@dest.test"]);
    assert_eq!(sink.rcpt_attempts("bad@dest.test"), 1);
    assert_eq!(sink.rcpt_attempts("later@dest.test"), 1);
    assert_eq!(sink.rcpt_attempts("good@dest.test"), 1);
    assert_eq!(sink.rcpt_attempts("unknown@dest.test"), 0);
}

#[tokio::test]
async fn reply_sequence_defers_then_accepts() {
    let sink = SinkMx::start_default().await.unwrap();
    sink.set_reply_sequence(
        "flaky@dest.test",
        vec![SinkReply::reply(451, "4.3.0 try later"), SinkReply::Accept],
    );
    let mut client = builder(&sink).connect_plain().await.unwrap();
    let (code, _) = unexpected_code(client.send(mail("flaky@dest.test", "attempt")).await.unwrap_err());
    assert_eq!(code, 451);
    // mail-send leaves the transaction open after a rejected RCPT: reset before retrying.
    client.rset().await.unwrap();
    client.send(mail("flaky@dest.test", "attempt")).await.unwrap();
    // The last reply repeats.
    client.send(mail("flaky@dest.test", "attempt")).await.unwrap();
    assert_eq!(sink.wait_for_messages(2, WAIT).await.unwrap().len(), 2);
    assert_eq!(sink.rcpt_attempts("flaky@dest.test"), 3);
    assert_eq!(sink.connection_count(), 1);
}

#[tokio::test]
async fn data_reply_and_clear_replies() {
    let sink = SinkMx::start_default().await.unwrap();
    sink.set_data_reply(Some((554, "5.7.1 rejected as spam".to_owned())));
    sink.set_reply("x@dest.test", SinkReply::reply(550, "5.1.1 no"));
    let mut client = builder(&sink).connect_plain().await.unwrap();
    let (code, _) = unexpected_code(client.send(mail("ok@dest.test", "spam")).await.unwrap_err());
    assert_eq!(code, 554);
    assert_eq!(sink.message_count(), 0);

    sink.clear_replies();
    client.send(mail("ok@dest.test", "ham")).await.unwrap();
    client.send(mail("x@dest.test", "ham")).await.unwrap();
    assert_eq!(sink.wait_for_messages(2, WAIT).await.unwrap().len(), 2);

    sink.clear();
    assert!(sink.messages().is_empty());
    assert_eq!(sink.message_count(), 0);
    assert_eq!(sink.rcpt_attempts("x@dest.test"), 0);
}

#[tokio::test]
async fn starttls_upgrade_with_mail_send() {
    let sink = SinkMx::start(SinkConfig {
        starttls: true,
        ..SinkConfig::default()
    })
    .await
    .unwrap();
    // implicit_tls(false) makes mail-send require STARTTLS.
    let mut client = builder(&sink)
        .implicit_tls(false)
        .allow_invalid_certs()
        .connect()
        .await
        .unwrap();
    client.send(mail("tls@dest.test", "secure")).await.unwrap();
    client.quit().await.unwrap();

    let messages = sink.wait_for_messages(1, WAIT).await.unwrap();
    assert!(messages[0].tls);
    assert_eq!(messages[0].helo, "client.test");
}

#[tokio::test]
async fn starttls_certificate_verifies_against_the_sink_ca() {
    let sink = SinkMx::start(SinkConfig {
        starttls: true,
        hostname: "mx.dest.test".to_owned(),
        ..SinkConfig::default()
    })
    .await
    .unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from(
            sink.ca_certificate_der().unwrap().to_vec(),
        ))
        .unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));

    let connect = || async {
        let mut client = SmtpClient::connect(sink.addr(), WAIT).await.unwrap();
        assert_eq!(client.read().await.unwrap().code, 220);
        client.ehlo("client.test").await.unwrap();
        client
    };
    // The right name verifies strictly...
    let mut tls = connect().await.start_tls(&connector, "mx.dest.test").await.unwrap();
    tls.ehlo("client.test").await.unwrap();
    tls.send(mail("strict@dest.test", "verified")).await.unwrap();
    assert!(sink.wait_for_messages(1, WAIT).await.unwrap()[0].tls);
    // ...a wrong one does not.
    assert!(connect().await.start_tls(&connector, "other.test").await.is_err());
}

#[tokio::test]
async fn pipelined_commands_with_mail_send() {
    let sink = SinkMx::start_default().await.unwrap();
    sink.set_reply("bad@dest.test", SinkReply::reply(550, "5.1.1 no such user"));
    let mut client = builder(&sink).connect_plain().await.unwrap();
    let replies = client
        .cmds([
            "MAIL FROM:<sender@example.test> BODY=8BITMIME SMTPUTF8 SIZE=100\r\n",
            "RCPT TO:<a@dest.test>\r\n",
            "RCPT TO:<bad@dest.test>\r\n",
            "RCPT TO:<b@dest.test> NOTIFY=NEVER\r\n",
            "DATA\r\n",
        ])
        .await
        .unwrap();
    let codes: Vec<u16> = replies.iter().map(|r| r.code).collect();
    assert_eq!(codes, vec![250, 250, 550, 250, 354]);
    client
        .write_message(b"Subject: pipelined\r\n\r\nhello\r\n")
        .await
        .unwrap();
    assert_eq!(client.read().await.unwrap().code, 250);

    let messages = sink.wait_for_messages(1, WAIT).await.unwrap();
    assert_eq!(messages[0].rcpt_to, vec!["a@dest.test", "b@dest.test"]);
}

#[tokio::test]
async fn whole_transactions_in_one_write() {
    let sink = SinkMx::start_default().await.unwrap();
    let input = b"EHLO raw.test\r\n\
        MAIL FROM:<a@example.test>\r\nRCPT TO:<b@dest.test>\r\nDATA\r\n\
        Subject: one\r\n\r\nfirst\r\n.\r\n\
        MAIL FROM:<>\r\nRCPT TO:<c@dest.test>\r\nDATA\r\n\
        Subject: two\r\n\r\nsecond\r\n.\r\n\
        RSET\r\nNOOP\r\nQUIT\r\n";
    let out = raw_session(sink.addr(), input).await;
    assert_eq!(
        reply_codes(&out),
        vec![220, 250, 250, 250, 354, 250, 250, 250, 354, 250, 250, 250, 221],
        "{out}"
    );
    let messages = sink.wait_for_messages(2, WAIT).await.unwrap();
    assert_eq!(messages[0].data, b"Subject: one\r\n\r\nfirst\r\n");
    assert_eq!(messages[1].mail_from, "");
    assert_eq!(messages[1].helo, "raw.test");
}

#[tokio::test]
async fn dot_stuffing_round_trip() {
    let sink = SinkMx::start_default().await.unwrap();
    let body = b"Subject: dots\r\n\r\n.leading dot\r\n..two dots\r\n.\r\nafter a lone dot\r\n. space\r\nend";
    let mut client = builder(&sink).connect_plain().await.unwrap();
    client
        .send(Message::new("sender@example.test", ["dots@dest.test"], &body[..]))
        .await
        .unwrap();
    let messages = sink.wait_for_messages(1, WAIT).await.unwrap();
    // mail-send always writes CRLF before the final dot; that CRLF ends the last line.
    let mut expected = body.to_vec();
    expected.extend_from_slice(b"\r\n");
    assert_eq!(messages[0].data, expected);

    // And on the wire, byte for byte.
    let out = raw_session(
        sink.addr(),
        b"HELO raw\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\n..x\r\n...\r\n.\r\nQUIT\r\n",
    )
    .await;
    assert_eq!(reply_codes(&out), vec![220, 250, 250, 250, 354, 250, 221]);
    let messages = sink.wait_for_messages(2, WAIT).await.unwrap();
    assert_eq!(messages[1].data, b".x\r\n..\r\n");
}

#[tokio::test]
async fn mail_parameters_are_accepted() {
    let sink = SinkMx::start_default().await.unwrap();
    let mut client = builder(&sink).connect_plain().await.unwrap();
    let mut params = Parameters::new();
    params.add("BODY=8BITMIME");
    params.add("SMTPUTF8");
    let message = Message::empty()
        .from(Address::new("sender@example.test", params))
        .to("utf8@dest.test")
        .body(&b"Subject: params\r\n\r\n\xc3\xa9t\xc3\xa9\r\n"[..]);
    client.send(message).await.unwrap();
    let messages = sink.wait_for_messages(1, WAIT).await.unwrap();
    assert!(messages[0].text().contains("été"));
}

#[tokio::test]
async fn malformed_commands_get_5xx() {
    let sink = SinkMx::start_default().await.unwrap();
    let input = b"HELO\r\n\
        MAIL FROM:<a@x.test>\r\n\
        EHLO client\r\n\
        RCPT TO:<a@b.test>\r\n\
        MAIL FROM <a@b.test>\r\n\
        MAIL FROM:<a@b.test> SIZE=abc\r\n\
        DATA\r\n\
        MAIL FROM:<a@b.test> SIZE=999999999999\r\n\
        BOGUS\r\n\
        STARTTLS\r\n\
        \r\n\
        MAIL FROM:<a@b.test>\r\n\
        MAIL FROM:<a@b.test>\r\n\
        RCPT TO:<>\r\n\
        DATA\r\n\
        \xff\xfe garbage\r\n\
        QUIT\r\n";
    let out = raw_session(sink.addr(), input).await;
    assert_eq!(
        reply_codes(&out),
        vec![
            220, 501, 503, 250, 503, 501, 501, 503, 552, 500, 502, 500, 250, 503, 501, 554, 500, 221
        ],
        "{out}"
    );
    // The server is still fine afterwards.
    let mut client = builder(&sink).connect_plain().await.unwrap();
    client.send(mail("after@dest.test", "fine")).await.unwrap();
    assert_eq!(sink.wait_for_messages(1, WAIT).await.unwrap().len(), 1);
}

#[tokio::test]
async fn dropped_connections_do_not_hurt_the_sink() {
    let sink = SinkMx::start_default().await.unwrap();
    {
        let mut stream = TcpStream::connect(sink.addr()).await.unwrap();
        stream
            .write_all(b"EHLO c\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\npartial body")
            .await
            .unwrap();
    }
    let _ = TcpStream::connect(sink.addr()).await.unwrap();
    let mut client = builder(&sink).connect_plain().await.unwrap();
    client.send(mail("ok@dest.test", "survivor")).await.unwrap();
    let messages = sink.wait_for_messages(1, WAIT).await.unwrap();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].rcpt_to, vec!["ok@dest.test"]);
    assert_eq!(sink.connection_count(), 3);
}

#[tokio::test]
async fn scripted_disconnect_closes_the_connection() {
    let sink = SinkMx::start_default().await.unwrap();
    sink.set_reply("crash@dest.test", SinkReply::Disconnect);
    let mut client = builder(&sink).connect_plain().await.unwrap();
    assert!(client.send(mail("crash@dest.test", "boom")).await.is_err());
    assert_eq!(sink.rcpt_attempts("crash@dest.test"), 1);
    let mut client = builder(&sink).connect_plain().await.unwrap();
    client.send(mail("ok@dest.test", "next")).await.unwrap();
    assert_eq!(sink.connection_count(), 2);
}

#[tokio::test]
async fn source_ip_is_recorded() {
    let sink = SinkMx::start_default().await.unwrap();
    let local = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
    let mut client = SmtpClient::connect_using(local, sink.addr(), WAIT).await.unwrap();
    assert_eq!(client.read().await.unwrap().code, 220);
    client.ehlo("pool-2.test").await.unwrap();
    client.send(mail("ip@dest.test", "from .2")).await.unwrap();
    let messages = sink.wait_for_messages(1, WAIT).await.unwrap();
    assert_eq!(messages[0].peer.ip(), local);
}

#[tokio::test]
async fn wait_times_out_without_messages() {
    let sink = SinkMx::start_default().await.unwrap();
    match sink.wait_for_messages(1, Duration::from_millis(50)).await {
        Err(TestkitError::Timeout { wanted, got, .. }) => assert_eq!((wanted, got), (1, 0)),
        other => panic!("expected a timeout, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_connections_counts_only() {
    let sink = SinkMx::start(SinkConfig {
        record_bodies: false,
        ..SinkConfig::default()
    })
    .await
    .unwrap();
    sink.set_reply("r3-42@dest.test", SinkReply::Accept);
    let addr = sink.addr();
    let mut tasks = Vec::new();
    for c in 0..8 {
        tasks.push(tokio::spawn(async move {
            let mut client = SmtpClientBuilder::new("127.0.0.1".to_owned(), addr.port())
                .unwrap()
                .helo_host(format!("client{c}.test"))
                .timeout(WAIT)
                .connect_plain()
                .await
                .unwrap();
            // mail-send writes the body and the final dot separately and does not disable
            // Nagle: without this every message waits for a delayed ACK (~40 ms).
            client.stream.set_nodelay(true).unwrap();
            for i in 0..100 {
                client.send(mail(&format!("r{c}-{i}@dest.test"), "load")).await.unwrap();
            }
            client.quit().await.unwrap();
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(sink.wait_for_count(800, WAIT).await.unwrap(), 800);
    assert!(sink.messages().is_empty());
    assert_eq!(sink.connection_count(), 8);
    // Without recording only scripted addresses are counted.
    assert_eq!(sink.rcpt_attempts("r3-42@dest.test"), 1);
    assert_eq!(sink.rcpt_attempts("r3-41@dest.test"), 0);
}

#[tokio::test]
async fn drop_stops_the_listener_and_open_connections() {
    let sink = SinkMx::start_default().await.unwrap();
    let addr = sink.addr();
    let mut open = builder(&sink).connect_plain().await.unwrap();
    drop(sink);
    // Abort is asynchronous: the task is torn down the next time the runtime gets to it.
    let mut refused = false;
    for _ in 0..100 {
        if TcpStream::connect(addr).await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(refused, "listener still accepting after drop");
    assert!(open.noop().await.is_err());
}
