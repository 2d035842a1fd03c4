//! `mailpush-smtp`: only the SMTP submission endpoint, for scaling out against a shared PostgreSQL database.

use anyhow::Context;
use mailpush_api::node::{self, Serves};
use mailpush_core::settings::ShutdownSignal;

/// mimalloc: markedly cheaper than glibc malloc for the many small, cross-thread allocations of a request.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Before anything is announced: a signal during the start must not be lost.
    let stop = ShutdownSignal::listen().context("installing the signal handlers")?;
    let core = node::open_admin_node("mailpush-smtp", "mailpush SMTP submission node", Serves::SMTP, &stop).await?;
    let launched = mailpush_smtp::launch(core)
        .await
        .context("starting SMTP")?
        .context("set smtp_listen (MAILPUSH_SMTP_LISTEN), smtps_listen and/or inbound_listen")?;
    launched.tls.log();
    for (name, addr) in &launched.listening {
        println!("mailpush-smtp: {name} listening on {addr}");
    }
    stop.wait().await;
    launched.stop();
    Ok(())
}
