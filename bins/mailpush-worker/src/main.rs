//! `mailpush-worker`: only the delivery worker, for scaling out against a shared PostgreSQL database.

use anyhow::Context;
use mailpush_api::node::{self, Serves};
use mailpush_core::settings;

/// mimalloc: markedly cheaper than glibc malloc for the many small, cross-thread allocations of a request.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let core = node::open_admin_node("mailpush-worker", "mailpush delivery worker node", Serves::WORKER).await?;
    let services = mailpush_services::start(&core)
        .await
        .context("starting the background services")?;
    println!("mailpush-worker: delivering");
    settings::shutdown_signal().await;
    services.shutdown().await;
    Ok(())
}
