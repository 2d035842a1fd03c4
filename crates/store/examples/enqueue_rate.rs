//! Measures durable enqueue throughput with group commit: N concurrent enqueues, each a 5 KB message with one
//! recipient, then claims and records outcomes for all of them.
//!
//! `cargo run --release -p mailpush-store --example enqueue_rate -- [N] [URL] [MAX_BATCH]`
//! (default: 2000 messages into a new SQLite file under the system temp dir, batch limit 512; an empty URL
//! means the default).

use std::time::Instant;

use mailpush_model::{MessageId, RecipientKind};
use mailpush_store::{
    AttemptResult, ClaimRequest, DeliveryOutcome, NewAccount, NewMessage, NewRecipient, Store, StoreOptions,
};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let n: i64 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(2000);
    let dir = tempfile::tempdir()?;
    let url = args
        .next()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| format!("sqlite:{}", dir.path().join("rate.db").display()));
    let max_batch: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(512);
    let store = Store::open(
        &url,
        StoreOptions {
            group_commit_max_batch: max_batch,
            ..StoreOptions::default()
        },
    )
    .await?;
    let name = format!("rate-{}", MessageId::generate());
    let acc = store
        .accounts()
        .create_account(NewAccount {
            name: name.clone(),
            app_id: 1,
            secret_id: name,
            secret_key_sealed: vec![0; 32],
            created_ms: 0,
        })
        .await?;
    let body = vec![b'x'; 5 * 1024];

    let start = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..n {
        let (store, body) = (store.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            store
                .queue()
                .enqueue(NewMessage {
                    template_id: 0,
                    tls_requirement: mailpush_model::TlsRequirement::None,
                    id: MessageId::generate(),
                    account_id: acc.id,
                    envelope_from: "bounce@sender.example".into(),
                    from_address: "news@sender.example".into(),
                    subject: "rate".into(),
                    lane: mailpush_model::Lane::Batch,
                    request_ms: i,
                    not_before_ms: 0,
                    expires_ms: i64::MAX,
                    body,
                    recipients: vec![NewRecipient {
                        address: format!("r{i}@x.example"),
                        domain: "x.example".into(),
                        kind: RecipientKind::To,
                        send_status: mailpush_model::SendStatus::Ok,
                        deliver_message: None,
                    }],
                })
                .await
        }));
    }
    for t in tasks {
        t.await??;
    }
    let enqueue = start.elapsed();
    let stats = store.commit_stats();
    println!(
        "{:?}: {n} durable enqueues in {:.3} s = {:.0}/s ({} transactions, {:.1} messages each)",
        store.backend(),
        enqueue.as_secs_f64(),
        n as f64 / enqueue.as_secs_f64(),
        stats.transactions,
        stats.messages as f64 / stats.transactions.max(1) as f64
    );

    let start = Instant::now();
    let mut done = 0;
    loop {
        let claimed = store
            .queue()
            .claim(ClaimRequest {
                worker: "rate".into(),
                limit: 100,
                lease_ms: 60_000,
                now_ms: 1,
            })
            .await?;
        if claimed.is_empty() {
            break;
        }
        let outcomes = claimed
            .iter()
            .map(|c| DeliveryOutcome {
                delivery_id: c.delivery_id,
                lease: c.lease,
                at_ms: 2,
                result: AttemptResult::Delivered { reply: "250 ok".into() },
                remote: None,
            })
            .collect();
        done += store.queue().record_outcomes(outcomes).await?.len();
    }
    let work = start.elapsed();
    println!(
        "claim(100) + record_outcomes: {done} deliveries in {:.3} s = {:.0}/s",
        work.as_secs_f64(),
        done as f64 / work.as_secs_f64()
    );
    store.close().await;
    Ok(())
}
