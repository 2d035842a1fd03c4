//! The inbound MX mode over real sockets with a real core: no AUTH, any sender, only mailpush's feedback
//! addresses as recipients (no relay), reports accepted with a summary.

mod common;

use common::*;
use mailpush_model::MessageId;

const MX: &str = "mx.mailpush.test";

async fn inbound_world() -> World {
    world(|s| s.bounce_mx_host = MX.to_string(), |c| c.inbound = true).await
}

#[tokio::test]
async fn only_feedback_addresses_are_accepted_and_there_is_no_auth() {
    let w = inbound_world().await;
    let (mut c, code) = Client::connect(w.addr, &w.cert).await;
    assert_eq!(code, 220);
    let (code, ehlo) = c.cmd("EHLO reporter.example").await;
    assert_eq!(code, 250);
    assert!(!ehlo.contains("AUTH"), "{ehlo}");
    assert!(ehlo.contains("STARTTLS"), "{ehlo}");
    let (code, _) = c
        .cmd("AUTH PLAIN AGFwcEBzaG9wLmV4YW1wbGUuY29tAFNtdHBQYXNzdzByZDQy")
        .await;
    assert_eq!(code, 502);
    // DSNs come from the null sender.
    assert_eq!(c.cmd("MAIL FROM:<>").await.0, 250);
    for refused in [
        "alice@example.org",
        "postmaster@shop.example.com",
        "fbl@shop.example.com",
        "mpb-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@shop.example.com",
        // A well-formed unsubscribe token for a message that does not exist.
        "mpu-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@mx.mailpush.test",
    ] {
        let (code, text) = c.cmd(&format!("RCPT TO:<{refused}>")).await;
        assert_eq!(code, 550, "{refused}: {text}");
        assert!(text.starts_with("5.1.1"), "{text}");
    }
    assert_eq!(c.cmd("DATA").await.0, 554, "no DATA without an accepted recipient");
    let verp = w.core.return_path(&MessageId::generate(), "noreply@shop.example.com");
    assert!(
        verp.starts_with("mpb-") && verp.ends_with("@shop.example.com"),
        "{verp}"
    );
    assert_eq!(c.cmd(&format!("RCPT TO:<{verp}>")).await.0, 250);
    assert_eq!(c.cmd(&format!("RCPT TO:<FBL@{}>", MX.to_uppercase())).await.0, 250);
    assert_eq!(c.cmd("DATA").await.0, 354);
    c.send(b"From: someone@example.org\r\nSubject: Out of office\r\n\r\nI am away.\r\n.\r\n")
        .await;
    let (code, text) = c.reply().await;
    assert_eq!(code, 250, "{text}");
    assert!(text.contains("1 ignored"), "{text}");
}

#[tokio::test]
async fn the_inbound_mx_has_its_own_connection_cap() {
    let w = world(
        |s| s.bounce_mx_host = MX.to_string(),
        |c| {
            c.inbound = true;
            c.max_connections = 1;
        },
    )
    .await;
    let (mut held, code) = Client::connect(w.addr, &w.cert).await;
    assert_eq!(code, 220);
    let (mut over, code) = Client::connect(w.addr, &w.cert).await;
    assert_eq!(code, 421);
    assert_eq!(over.reply().await.0, 0, "closed after the refusal");
    assert_eq!(
        held.cmd("EHLO reporter.example").await.0,
        250,
        "the admitted one is served"
    );
}
