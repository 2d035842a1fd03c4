//! `mailpush-worker`: only the delivery worker, for scaling out against a shared PostgreSQL database.

use anyhow::Context;
use mailpush_api::node::{self, Serves};
use mailpush_core::settings;

/// mimalloc: markedly cheaper than glibc malloc for the many small, cross-thread allocations of a request.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = node::settings_from_args("mailpush-worker", "mailpush delivery worker node")?;
    let core = node::open_core(
        &settings,
        Serves {
            worker: true,
            ..Serves::default()
        },
    )
    .await?;
    node::spawn_admin("mailpush-worker", &core).await?;
    let services = mailpush_services::start(&core)
        .await
        .context("starting the background services")?;
    println!("mailpush-worker: delivering");
    settings::shutdown_signal().await;
    services.shutdown().await;
    Ok(())
}
