//! `mailpush-worker`: only the delivery worker, for scaling out against a shared PostgreSQL database.

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
    let core = node::open_admin_node(
        "mailpush-worker",
        "mailpush delivery worker node",
        Serves::WORKER,
        &stop,
    )
    .await?;
    let services = mailpush_services::start(&core)
        .await
        .context("starting the background services")?;
    println!("mailpush-worker: delivering");
    stop.wait().await;
    services.shutdown().await;
    Ok(())
}
