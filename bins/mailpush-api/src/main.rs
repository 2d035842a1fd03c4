//! `mailpush-api`: only the HTTP API, for scaling out against a shared PostgreSQL database.

use anyhow::Context;
use mailpush_api::node::{self, Serves};
use mailpush_core::settings::ShutdownSignal;

/// mimalloc: markedly cheaper than glibc malloc for the many small, cross-thread allocations of a request.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Before anything is announced: a signal during the start must not be lost.
    let signal = ShutdownSignal::listen().context("installing the signal handlers")?;
    let settings = node::settings_from_args("mailpush-api", "mailpush HTTP API node")?;
    let listen = settings.api_listen;
    let core = node::open_core(&settings, Serves::API).await?;
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
        signal.wait().await;
        draining.begin_draining();
    };
    mailpush_api::serve(listener, core, stop).await?;
    Ok(())
}
