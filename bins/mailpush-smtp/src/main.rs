//! `mailpush-smtp`: only the SMTP submission endpoint, for scaling out against a shared PostgreSQL database.

use anyhow::Context;
use clap::Parser;
use mailpush_core::{Mailpush, settings};
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "mailpush-smtp", version, about = "mailpush SMTP submission node")]
struct Cli {
    /// TOML configuration file; every key can also be set as MAILPUSH_<KEY>.
    #[arg(long, env = "MAILPUSH_CONFIG")]
    config: Option<PathBuf>,
}

/// mimalloc: markedly cheaper than glibc malloc for the many small, cross-thread allocations of a request.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let settings = settings::load_for_process(cli.config.as_deref())?;
    mailpush_core::logging::init(&settings)?;
    mailpush_core::logging::warn_about(&settings);
    // Before any socket: the connection caps, not the default soft limit (often 1,024), bound the clients.
    mailpush_core::listener::raise_fd_limit_logged(settings.fd_needed(false, true, false));
    let core = Mailpush::open(settings.clone(), settings.clock())
        .await
        .context("opening mailpush")?;
    if let Some(addr) = settings.admin_listen {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding the admin listener to {addr}"))?;
        println!("mailpush-smtp: admin listening on http://{}", listener.local_addr()?);
        tokio::spawn(mailpush_api::serve_admin(
            listener,
            core.clone(),
            settings::shutdown_signal(),
        ));
    }
    let launched = mailpush_smtp::launch(core)
        .await
        .context("starting SMTP")?
        .context("set smtp_listen (MAILPUSH_SMTP_LISTEN), smtps_listen and/or inbound_listen")?;
    launched.tls.log();
    for (name, addr) in &launched.listening {
        println!("mailpush-smtp: {name} listening on {addr}");
    }
    settings::shutdown_signal().await;
    launched.stop();
    Ok(())
}
