//! Behaviour against a minimal hand-written SMTP peer: servers without PIPELINING, servers that
//! only know HELO, and bad greetings — shapes the testkit sink does not take.

use std::{
    net::Ipv4Addr,
    sync::{Arc, Mutex},
    time::Duration,
};

use mailpush_delivery::{
    DnsSettings, Envelope, MxResolver, Outcome, SmtpTransport, TlsPolicy, TlsRequirement, TransportConfig,
};
use mailpush_testkit::DnsAuthority;
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    net::TcpListener,
};

#[derive(Clone, Copy)]
enum Flavour {
    /// EHLO without PIPELINING: commands one by one.
    NoPipelining,
    /// EHLO answered `502`: the client must fall back to HELO.
    HeloOnly,
    /// Greets with `554`: the client must move on.
    Refuses,
    /// Offers STARTTLS, says `220` to it, then hangs up instead of a handshake.
    BrokenTls,
    /// Offers STARTTLS but answers it with `454`.
    TlsRefused,
}

/// Serves every connection; records the command lines it receives.
async fn peer(ip: Ipv4Addr, port: u16, flavour: Flavour) -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind((ip, port)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let log = Arc::new(Mutex::new(Vec::new()));
    let seen = log.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let log = log.clone();
            tokio::spawn(async move {
                let (r, mut w) = stream.into_split();
                let mut r = BufReader::new(r);
                let greeting: &[u8] = if matches!(flavour, Flavour::Refuses) {
                    b"554 5.3.2 go away\r\n"
                } else {
                    b"220 peer ESMTP\r\n"
                };
                if w.write_all(greeting).await.is_err() {
                    return;
                }
                let mut line = String::new();
                loop {
                    line.clear();
                    if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let cmd = line.trim_end().to_string();
                    log.lock().unwrap().push(cmd.clone());
                    let upper = cmd.to_ascii_uppercase();
                    let reply: &[u8] = if upper.starts_with("EHLO") {
                        match flavour {
                            Flavour::HeloOnly => b"502 5.5.1 EHLO not implemented\r\n",
                            Flavour::BrokenTls | Flavour::TlsRefused => b"250-peer\r\n250-STARTTLS\r\n250 8BITMIME\r\n",
                            _ => b"250-peer\r\n250-8BITMIME\r\n250 ENHANCEDSTATUSCODES\r\n",
                        }
                    } else if upper.starts_with("HELO") || upper.starts_with("MAIL") || upper.starts_with("RSET") {
                        b"250 2.0.0 ok\r\n"
                    } else if upper.starts_with("RCPT") {
                        if upper.contains("BAD") {
                            b"550 5.1.1 unknown user\r\n"
                        } else {
                            b"250 2.1.5 ok\r\n"
                        }
                    } else if upper.starts_with("DATA") {
                        if w.write_all(b"354 go ahead\r\n").await.is_err() {
                            return;
                        }
                        // Read up to the terminating dot.
                        let mut body = Vec::new();
                        let mut buf = [0u8; 4096];
                        while !body.ends_with(b"\r\n.\r\n") {
                            match r.read(&mut buf).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => body.extend_from_slice(&buf[..n]),
                            }
                        }
                        b"250 2.0.0 queued\r\n"
                    } else if upper.starts_with("STARTTLS") {
                        if matches!(flavour, Flavour::BrokenTls) {
                            let _ = w.write_all(b"220 2.0.0 ready\r\n").await;
                            return;
                        }
                        b"454 4.7.0 TLS not available\r\n"
                    } else if upper.starts_with("QUIT") {
                        let _ = w.write_all(b"221 bye\r\n").await;
                        return;
                    } else {
                        b"500 5.5.2 what?\r\n"
                    };
                    if w.write_all(reply).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (port, seen)
}

fn transport(dns: &DnsAuthority, port: u16) -> SmtpTransport {
    let resolver = MxResolver::new(&DnsSettings {
        servers: vec![dns.addr()],
        timeout: Duration::from_secs(2),
        cache: false,
        dnssec: None,
    })
    .unwrap();
    SmtpTransport::new(
        TransportConfig {
            helo_name: "out.example.com".into(),
            port,
            connect_timeout: Duration::from_secs(2),
            command_timeout: Duration::from_secs(5),
            data_timeout: Duration::from_secs(5),
            ..TransportConfig::default()
        },
        resolver,
    )
}

fn envelope(rcpts: &[&str]) -> Envelope {
    Envelope {
        mail_from: "from@example.com".into(),
        rcpt_to: rcpts.iter().map(|s| s.to_string()).collect(),
        smtputf8: false,
        tls: TlsRequirement::None,
    }
}

fn commands(log: &Arc<Mutex<Vec<String>>>) -> Vec<String> {
    log.lock().unwrap().clone()
}

#[tokio::test]
async fn without_pipelining_commands_go_one_by_one() {
    let dns = DnsAuthority::start().await.unwrap();
    let (port, log) = peer(Ipv4Addr::LOCALHOST, 0, Flavour::NoPipelining).await;
    dns.add_a("serial.com", Ipv4Addr::LOCALHOST);
    let t = transport(&dns, port);

    let body = "Subject: x\r\n\r\nnon-ASCII body: é\r\n".as_bytes();
    let report = t
        .send(
            "serial.com",
            &envelope(&["a@serial.com", "bad@serial.com", "b@serial.com"]),
            body,
        )
        .await;
    assert!(
        matches!(report.outcomes[0].outcome, Outcome::Delivered { .. }),
        "{report:?}"
    );
    assert_eq!(
        report.outcomes[1].outcome,
        Outcome::Bounced {
            reply: "550 5.1.1 unknown user".into()
        }
    );
    assert!(matches!(report.outcomes[2].outcome, Outcome::Delivered { .. }));

    // Only bad recipients: no DATA, RSET, connection kept.
    let report = t.send("serial.com", &envelope(&["bad2@serial.com"]), body).await;
    assert!(matches!(report.outcomes[0].outcome, Outcome::Bounced { .. }));

    let cmds = commands(&log);
    assert_eq!(
        cmds,
        [
            "EHLO out.example.com",
            "MAIL FROM:<from@example.com> BODY=8BITMIME",
            "RCPT TO:<a@serial.com>",
            "RCPT TO:<bad@serial.com>",
            "RCPT TO:<b@serial.com>",
            "DATA",
            "MAIL FROM:<from@example.com> BODY=8BITMIME",
            "RCPT TO:<bad2@serial.com>",
            "RSET",
        ]
    );
}

#[tokio::test]
async fn helo_fallback_when_ehlo_is_unknown() {
    let dns = DnsAuthority::start().await.unwrap();
    let (port, log) = peer(Ipv4Addr::LOCALHOST, 0, Flavour::HeloOnly).await;
    dns.add_a("old.com", Ipv4Addr::LOCALHOST);
    let t = transport(&dns, port);
    let report = t
        .send("old.com", &envelope(&["a@old.com"]), b"Subject: x\r\n\r\nhi\r\n")
        .await;
    assert!(
        matches!(report.outcomes[0].outcome, Outcome::Delivered { .. }),
        "{report:?}"
    );
    let cmds = commands(&log);
    assert_eq!(
        &cmds[..3],
        [
            "EHLO out.example.com",
            "HELO out.example.com",
            "MAIL FROM:<from@example.com>"
        ]
    );

    // Without SMTPUTF8 support a UTF-8 envelope cannot be delivered: bounced, nothing sent.
    let env = Envelope {
        smtputf8: true,
        ..envelope(&["用户@old.com"])
    };
    let report = t.send("old.com", &env, b"Subject: x\r\n\r\nhi\r\n").await;
    assert!(
        matches!(&report.outcomes[0].outcome, Outcome::Bounced { reply } if reply.starts_with("5.6.7 ")),
        "{report:?}"
    );
}

#[tokio::test]
async fn a_refusing_greeting_moves_on_to_the_next_mx() {
    let dns = DnsAuthority::start().await.unwrap();
    let (port, _) = peer(Ipv4Addr::new(127, 0, 0, 7), 0, Flavour::Refuses).await;
    let (_, log) = peer(Ipv4Addr::new(127, 0, 0, 8), port, Flavour::NoPipelining).await;
    dns.add_mx("greet.com", 5, "refuse.greet.com");
    dns.add_a("refuse.greet.com", Ipv4Addr::new(127, 0, 0, 7));
    dns.add_mx("greet.com", 50, "good.greet.com");
    dns.add_a("good.greet.com", Ipv4Addr::new(127, 0, 0, 8));
    let t = transport(&dns, port);
    let report = t
        .send("greet.com", &envelope(&["a@greet.com"]), b"Subject: x\r\n\r\nhi\r\n")
        .await;
    assert!(
        matches!(report.outcomes[0].outcome, Outcome::Delivered { .. }),
        "{report:?}"
    );
    assert!(report.mx.unwrap().starts_with("good.greet.com[127.0.0.8]"));
    assert!(commands(&log).contains(&"DATA".to_string()));

    // Only the refusing MX: deferred with its greeting as the reason.
    dns.remove("greet.com", mailpush_testkit::RecordType::MX);
    dns.add_mx("greet.com", 5, "refuse.greet.com");
    let report = t
        .send("greet.com", &envelope(&["b@greet.com"]), b"Subject: x\r\n\r\nhi\r\n")
        .await;
    match &report.outcomes[0].outcome {
        Outcome::Deferred { reply } => assert!(reply.starts_with("554 5.3.2 go away"), "{reply}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn opportunistic_tls_falls_back_to_plain_text() {
    let dns = DnsAuthority::start().await.unwrap();
    dns.add_a("broken.com", Ipv4Addr::LOCALHOST);

    // The handshake fails: the same address is dialled again without STARTTLS.
    let (port, log) = peer(Ipv4Addr::LOCALHOST, 0, Flavour::BrokenTls).await;
    let t = transport(&dns, port);
    let report = t
        .send("broken.com", &envelope(&["a@broken.com"]), b"Subject: x\r\n\r\nhi\r\n")
        .await;
    assert!(
        matches!(report.outcomes[0].outcome, Outcome::Delivered { .. }),
        "{report:?}"
    );
    assert!(!report.tls);
    let cmds = commands(&log);
    assert_eq!(
        &cmds[..4],
        [
            "EHLO out.example.com",
            "STARTTLS",
            "EHLO out.example.com",
            "MAIL FROM:<from@example.com>"
        ]
    );

    // Required TLS does not fall back.
    let strict = SmtpTransport::new(
        TransportConfig {
            tls: TlsPolicy::Required,
            ..t.config().clone()
        },
        t.resolver().clone(),
    );
    let report = strict
        .send("broken.com", &envelope(&["b@broken.com"]), b"Subject: x\r\n\r\nhi\r\n")
        .await;
    assert!(
        matches!(&report.outcomes[0].outcome, Outcome::Deferred { reply } if reply.starts_with("4.7.5 ")),
        "{report:?}"
    );

    // STARTTLS refused with 454: the session simply continues in plain text.
    let (port, log) = peer(Ipv4Addr::LOCALHOST, 0, Flavour::TlsRefused).await;
    let t = transport(&dns, port);
    let report = t
        .send("broken.com", &envelope(&["c@broken.com"]), b"Subject: x\r\n\r\nhi\r\n")
        .await;
    assert!(
        matches!(report.outcomes[0].outcome, Outcome::Delivered { .. }),
        "{report:?}"
    );
    assert_eq!(
        &commands(&log)[..3],
        ["EHLO out.example.com", "STARTTLS", "MAIL FROM:<from@example.com>"]
    );
}
