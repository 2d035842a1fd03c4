//! Retention keeps the database bounded: mail is pushed through a SQLite store day after simulated day (the
//! core's manual clock), each day's mail is delivered (claimed and recorded as a worker does), and at each
//! midnight the core's retention pass runs with `retention_days = 2`. Per day it prints the accept rate
//! (64 concurrent enqueues, group commit) and the database's size on disk, and beside it the accept rate of a
//! brand-new store taking the same day's mail right before or after (alternating): the VM's disk and CPU drift
//! by tens of percent within minutes, so only rates measured side by side compare.
//!
//! `cargo bench --bench retention` — 2,000,000 mails over 20 days; `MAILPUSH_BENCH_MAILS` and
//! `MAILPUSH_BENCH_DAYS` change that.

mod common;

use std::path::Path;
use std::time::Instant;

use common::{enqueue_concurrent, setup};
use mailpush_core::{Mailpush, Settings};
use mailpush_model::{Clock, ManualClock};
use mailpush_store::{AccountId, AttemptResult, ClaimRequest, DeliveryOutcome, Store, StoreOptions};

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

/// Accepts `mails` into a brand-new store (an empty file of its own) and returns the accept rate: the reference
/// the store that has pushed days of mail is compared with.
async fn fresh_store_rate(mails: usize, now: i64) -> f64 {
    let dir = tempfile::tempdir().expect("tempdir");
    // Opened as the long-lived store is (the core's handle beside the one mail is pushed through), so that the
    // two differ only in what they hold.
    let (core, store, account) = open_stores(dir.path(), ManualClock::new(now)).await;
    let rate = accept(&store, account, mails, now).await;
    store.close().await;
    drop(core);
    rate
}

/// A core with `retention_days = 2` on a SQLite file in `dir`, a second store handle on the same file that mail
/// is pushed through, and the sending account.
async fn open_stores(dir: &Path, clock: std::sync::Arc<ManualClock>) -> (Mailpush, Store, AccountId) {
    let settings = Settings {
        data_dir: dir.to_path_buf(),
        master_key: Some("k".repeat(48)),
        retention_days: 2,
        time_zone: "UTC".into(),
        ..Settings::default()
    };
    let core = Mailpush::open(settings, clock).await.expect("open core");
    let store = Store::open(&core.settings().database_url(), StoreOptions::default())
        .await
        .expect("open store");
    let account = setup(&store).await;
    (core, store, account)
}

/// Enqueues `mails`, `CONCURRENT` at a time, and returns the rate in mails per second.
async fn accept(store: &Store, account: AccountId, mails: usize, now: i64) -> f64 {
    let t0 = Instant::now();
    for _ in 0..mails / CONCURRENT {
        enqueue_concurrent(store, account, CONCURRENT, now).await;
    }
    mails as f64 / t0.elapsed().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
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
        let clock = ManualClock::new(T0);
        let (core, store, account) = open_stores(dir.path(), clock.clone()).await;
        println!("{per_day} mails a day for {days} days, retention_days = 2, SQLite");
        println!(
            "| day | accepted | accept rate (mails/s) | a fresh store beside it (mails/s) | ratio | pruned messages | size on disk (MiB) | of it WAL (MiB) |"
        );
        println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
        let mut ratios = Vec::new();
        for day in 0..days {
            let now = clock.now_ms();
            // Alternate which goes first, so that neither always meets a disk still busy with the other's writes.
            let (rate, fresh) = if day % 2 == 0 {
                let rate = accept(&store, account, per_day, now).await;
                (rate, fresh_store_rate(per_day, now).await)
            } else {
                let fresh = fresh_store_rate(per_day, now).await;
                (accept(&store, account, per_day, now).await, fresh)
            };
            if day > 0 {
                ratios.push(rate / fresh);
            }
            let delivered = deliver_all(&store, now).await;
            assert_eq!(delivered, per_day, "every accepted mail is delivered");
            clock.advance(DAY_MS);
            let pass = core.run_retention(None).await.expect("retention");
            let (size, wal) = (size_on_disk(dir.path()), wal_size(dir.path()));
            println!(
                "| {} | {} | {:.0} | {:.0} | {:.2} | {} | {:.1} | {:.1} |",
                day + 1,
                (day + 1) * per_day,
                rate,
                fresh,
                rate / fresh,
                pass.pruned.messages,
                size as f64 / (1024.0 * 1024.0),
                wal as f64 / (1024.0 * 1024.0)
            );
        }
        store.close().await;
        // From day 2 the store holds a day of mail; from day 3 on retention prunes a day each midnight.
        for first in [2, 3] {
            let tail: Vec<f64> = ratios.iter().skip(first - 2).copied().collect();
            if !tail.is_empty() {
                println!(
                    "days {first}-{days}: accept rate / a fresh store's, median {:.3} (min {:.3}, max {:.3})",
                    median(tail.clone()),
                    tail.iter().copied().fold(f64::INFINITY, f64::min),
                    tail.iter().copied().fold(0.0, f64::max)
                );
            }
        }
    });
}
