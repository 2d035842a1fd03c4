//! Retention keeps the database bounded: mail is pushed through a SQLite store day after simulated day (the
//! core's manual clock), each day's mail is delivered (claimed and recorded as a worker does), and at each
//! midnight the core's retention pass runs with `retention_days = 2`. Per day it prints the accept rate
//! (64 concurrent enqueues, group commit) and the database's size on disk, so the last days can be compared
//! with the first, fresh one.
//!
//! `cargo bench --bench retention` — 2,000,000 mails over 20 days; `MAILPUSH_BENCH_MAILS` and
//! `MAILPUSH_BENCH_DAYS` change that.

mod common;

use std::path::Path;
use std::time::Instant;

use common::{enqueue_concurrent, setup};
use mailpush_core::{Mailpush, Settings};
use mailpush_model::{Clock, ManualClock};
use mailpush_store::{AttemptResult, ClaimRequest, DeliveryOutcome, Store, StoreOptions};

/// 2026-11-26 00:00:00 UTC.
const T0: i64 = 1_796_083_200_000;
const DAY_MS: i64 = 86_400_000;
const CONCURRENT: usize = 64;
const CLAIM: usize = 256;

fn env_number(var: &str, default: usize) -> usize {
    std::env::var(var).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The database file and its write-ahead log, in bytes.
fn size_on_disk(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().starts_with("mailpush.db"))
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// The write-ahead log alone, in bytes.
fn wal_size(dir: &Path) -> u64 {
    std::fs::metadata(dir.join("mailpush.db-wal")).map_or(0, |m| m.len())
}

/// Claims and records as delivered everything due at `now`; the number delivered.
async fn deliver_all(store: &Store, now: i64) -> usize {
    let mut delivered = 0;
    loop {
        let claimed = store
            .queue()
            .claim(ClaimRequest {
                worker: "bench".into(),
                limit: CLAIM,
                lease_ms: 3_600_000,
                now_ms: now,
            })
            .await
            .expect("claim");
        if claimed.is_empty() {
            return delivered;
        }
        delivered += claimed.len();
        let outcomes = claimed
            .into_iter()
            .map(|d| DeliveryOutcome {
                delivery_id: d.delivery_id,
                lease: d.lease,
                at_ms: now + 1_000,
                result: AttemptResult::Delivered {
                    reply: "250 2.0.0 Ok: queued".into(),
                },
                remote: Some("mx.example.org".into()),
            })
            .collect();
        store.queue().record_outcomes(outcomes).await.expect("record");
    }
}

fn main() {
    let mails = env_number("MAILPUSH_BENCH_MAILS", 2_000_000);
    let days = env_number("MAILPUSH_BENCH_DAYS", 20).max(1);
    let per_day = (mails / days).div_ceil(CONCURRENT) * CONCURRENT;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    rt.block_on(async {
        let settings = Settings {
            data_dir: dir.path().to_path_buf(),
            master_key: Some("k".repeat(48)),
            retention_days: 2,
            time_zone: "UTC".into(),
            ..Settings::default()
        };
        let clock = ManualClock::new(T0);
        let core = Mailpush::open(settings, clock.clone()).await.expect("open core");
        let store = Store::open(&core.settings().database_url(), StoreOptions::default())
            .await
            .expect("open store");
        let account = setup(&store).await;
        println!("{per_day} mails a day for {days} days, retention_days = 2, SQLite");
        println!("| day | accepted | accept rate (mails/s) | pruned messages | size on disk (MiB) | of it WAL (MiB) |");
        println!("|---:|---:|---:|---:|---:|---:|");
        for day in 0..days {
            let now = clock.now_ms();
            let t0 = Instant::now();
            for _ in 0..per_day / CONCURRENT {
                enqueue_concurrent(&store, account, CONCURRENT, now).await;
            }
            let rate = per_day as f64 / t0.elapsed().as_secs_f64();
            let delivered = deliver_all(&store, now).await;
            assert_eq!(delivered, per_day, "every accepted mail is delivered");
            clock.advance(DAY_MS);
            let pass = core.run_retention(None).await.expect("retention");
            let (size, wal) = (size_on_disk(dir.path()), wal_size(dir.path()));
            println!(
                "| {} | {} | {:.0} | {} | {:.1} | {:.1} |",
                day + 1,
                (day + 1) * per_day,
                rate,
                pass.pruned.messages,
                size as f64 / (1024.0 * 1024.0),
                wal as f64 / (1024.0 * 1024.0)
            );
        }
        store.close().await;
    });
}
