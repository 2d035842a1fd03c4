//! `mailpush-api`: only the HTTP API, for scaling out against a shared PostgreSQL database.

use anyhow::Context;
use clap::Parser;
use mailpush_core::{Mailpush, settings};
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "mailpush-api", version, about = "mailpush HTTP API node")]
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
    mailpush_core::listener::raise_fd_limit_logged(settings.fd_needed(true, false, false));
    let listen = settings.api_listen;
    let core = Mailpush::open(settings.clone(), settings.clock())
        .await
        .context("opening mailpush")?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding the API to {listen}"))?;
    let scheme = if settings.api_tls_cert.is_some() {
        "https"
    } else {
        "http"
    };
    println!("mailpush-api: listening on {scheme}://{}", listener.local_addr()?);
    // Readiness turns 503 at once, so a load balancer stops sending while in-flight requests finish.
    let draining = core.clone();
    let stop = async move {
        settings::shutdown_signal().await;
        draining.begin_draining();
    };
    mailpush_api::serve(listener, core, stop).await?;
    Ok(())
}
