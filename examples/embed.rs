//! mailpush inside your own Rust service: open the core on your database, send with the facade, run the
//! background services (the delivery worker among them) on your runtime, and mount mailpush's HTTP API (Tencent
//! and AWS SES v2 wire APIs, console, health) under a path of your own axum application.
//!
//! ```sh
//! MAILPUSH_DATA_DIR=./mailpush-data EMBED_ACCOUNT=shop MAIL_FROM=noreply@your.domain MAIL_TO=you@example.com \
//!     cargo run --example embed
//! ```
//!
//! Settings come from `MAILPUSH_*` variables exactly as for `mailpush serve` (README: *Configuration*). The
//! account and its verified sender address are set up beforehand (`mailpush account create`, `mailpush domain
//! add` / `verify`, `mailpush sender add`, or `mailpush serve --dev`); an account the example does not find is
//! created, and the example says which domain to verify. It sends one mail, waits until it is delivered, and
//! serves until Ctrl-C (or, with `EMBED_EXIT_WHEN_DELIVERED=1`, exits).

use std::time::Duration;

use anyhow::Context;
use axum::{Router, routing::get};
use mailpush_core::{Mailpush, SendContent, SendRequest, StatusRequest};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // 1. The core: settings, the database (created and migrated on first open), the clock.
    let settings = mailpush_core::settings::load_for_process(None).context("settings")?;
    let core = Mailpush::open(settings.clone(), settings.clock())
        .await
        .context("opening mailpush")?;

    // 2. The account to send as (created when missing: its API key is printed once).
    let name = std::env::var("EMBED_ACCOUNT").unwrap_or_else(|_| "embedded".into());
    let account = match core.list_accounts().await?.into_iter().find(|a| a.name == name) {
        Some(account) => account,
        None => {
            let creds = core.create_account(&name).await?;
            println!(
                "created account {name}: SecretId {} SecretKey {}",
                creds.secret_id, creds.secret_key
            );
            println!("verify a sending domain for it (mailpush domain add --account {name} …), then run again");
            return Ok(());
        }
    };

    // 3. The background services: delivery worker, callbacks, domain re-checks, batch runner, retention.
    let services = mailpush_services::start(&core).await.context("starting services")?;

    // 4. mailpush's HTTP API mounted under /mail beside the application's own routes.
    let app = Router::new()
        .route("/", get(|| async { "my application" }))
        .nest_service("/mail", mailpush_api::router(core.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!(
        "application listening on http://{}/ (mailpush's API under /mail/)",
        listener.local_addr()?
    );
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    // 5. A mail through the facade: the same admission rules as the API (verified sender, limits, suppression).
    let to = std::env::var("MAIL_TO").context("MAIL_TO")?;
    let id = core
        .send_email(
            &account,
            SendRequest {
                from: std::env::var("MAIL_FROM").context("MAIL_FROM")?,
                destination: vec![to.clone()],
                subject: "Hello from an embedded mailpush".into(),
                content: Some(SendContent::Simple {
                    html: Some("<p>Sent by a service that embeds <b>mailpush</b>.</p>".into()),
                    text: Some("Sent by a service that embeds mailpush.".into()),
                }),
                ..SendRequest::default()
            },
        )
        .await
        .context("sending")?;
    println!("accepted: MessageId {id}");

    // 6. Its status, as GetSendEmailStatus reports it.
    let today = mailpush_model::clock::date_of(settings.clock().now_ms());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let rows = core
            .send_status(
                &account,
                StatusRequest {
                    request_date: today.clone(),
                    message_id: Some(id.as_str().to_string()),
                    to: None,
                    offset: 0,
                    limit: 10,
                },
            )
            .await?;
        if let Some(row) = rows.iter().find(|r| r.deliver_status.is_final()) {
            println!("{}: {:?} {}", row.recipient, row.deliver_status, row.deliver_message);
            break;
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "no final status within a minute"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    if std::env::var("EMBED_EXIT_WHEN_DELIVERED").as_deref() != Ok("1") {
        tokio::signal::ctrl_c().await?;
    }
    server.abort();
    services.shutdown().await;
    Ok(())
}
