//! Submit a mail to mailpush over SMTP from Rust with `lettre`: STARTTLS, AUTH with a sender address and its
//! SMTP password, and the `250 … queued as <MessageId>` reply read back.
//!
//! ```sh
//! SMTP_HOST=127.0.0.1 SMTP_PORT=587 SMTP_USER=noreply@your.domain SMTP_PASSWORD=… MAIL_TO=you@example.com \
//!     [SMTP_CA=ca.pem] cargo run --example smtp_lettre
//! ```
//!
//! `SMTP_CA` adds a root certificate (e.g. the self-signed one `mailpush serve` generates in its data directory
//! when no `smtp_tls_cert` is configured); without it the system's roots are used. `SMTP_TLS_NAME` is the name
//! the certificate must carry (default: `SMTP_HOST`). Prints the MessageId.

use anyhow::Context;
use lettre::message::{Message, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

fn var(name: &str) -> anyhow::Result<String> {
    std::env::var(name).with_context(|| format!("set {name}"))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let host = std::env::var("SMTP_HOST").unwrap_or_else(|_| "127.0.0.1".into());
    let port: u16 = std::env::var("SMTP_PORT").unwrap_or_else(|_| "587".into()).parse()?;
    let user = var("SMTP_USER")?;

    let mut tls = TlsParameters::builder(std::env::var("SMTP_TLS_NAME").unwrap_or_else(|_| host.clone()));
    if let Ok(ca) = std::env::var("SMTP_CA") {
        let pem = std::fs::read(&ca).with_context(|| format!("reading {ca}"))?;
        tls = tls.add_root_certificate(Certificate::from_pem(&pem)?);
    }
    let mailer = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&host)
        .port(port)
        .tls(Tls::Required(tls.build()?))
        .credentials(Credentials::new(user.clone(), var("SMTP_PASSWORD")?))
        .build();

    let mail = Message::builder()
        .from(user.parse()?)
        .to(var("MAIL_TO")?.parse()?)
        .subject("Hello from lettre")
        .multipart(MultiPart::alternative_plain_html(
            "Your first mail through mailpush, submitted with lettre.".to_string(),
            "<p>Your first mail through <b>mailpush</b>, submitted with lettre.</p>".to_string(),
        ))?;
    let reply = mailer.send(mail).await.context("submitting")?;
    // mailpush's DATA reply: `2.0.0 Ok: queued as <MessageId>`.
    let text: String = reply.message().collect::<Vec<_>>().join(" ");
    let id = text
        .split("queued as ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .with_context(|| format!("no MessageId in the reply {text:?}"))?;
    println!("{id}");
    Ok(())
}
