//! The durable queue: enqueue (group commit, fsync) and claim, on SQLite and, when
//! `MAILPUSH_TEST_POSTGRES_URL` is set, on PostgreSQL (in a schema of its own, dropped afterwards).
//! `cargo bench --bench queue`.

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mailpush_model::{MessageId, RecipientKind};
use mailpush_store::{AccountId, ClaimRequest, NewAccount, NewMessage, NewRecipient, Store, StoreOptions};
use sqlx::Connection;

/// Concurrent enqueuers in the group-commit case (what a busy API process has in flight).
const CONCURRENT: usize = 64;
/// Deliveries per claim (the worker's default `worker_batch`).
const CLAIM: usize = 256;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn message(account: AccountId, seq: usize) -> NewMessage {
    let id = MessageId::generate();
    let now = now_ms();
    let rcpt = format!("m{seq}@example.org");
    NewMessage {
        template_id: 0,
        envelope_from: format!("bounce+{id}@shop.example.com"),
        id,
        account_id: account,
        from_address: "noreply@shop.example.com".into(),
        subject: "Your order has shipped".into(),
        lane: mailpush_model::Lane::Batch,
        request_ms: now,
        not_before_ms: now,
        expires_ms: now + 72 * 3_600_000,
        // A 2 KB body, as in the load tool.
        body: vec![b'x'; 2048],
        recipients: vec![NewRecipient {
            address: rcpt,
            domain: "example.org".into(),
            kind: RecipientKind::To,
            send_status: mailpush_model::SendStatus::Ok,
            deliver_message: None,
        }],
    }
}

async fn setup(store: &Store) -> AccountId {
    store
        .accounts()
        .create_account(NewAccount {
            name: "bench".into(),
            app_id: 1_300_000_000,
            secret_id: "AKIDbench".into(),
            secret_key_sealed: b"sealed".to_vec(),
            created_ms: now_ms(),
        })
        .await
        .expect("account")
        .id
}

async fn enqueue_concurrent(store: &Store, account: AccountId, n: usize) {
    let mut set = tokio::task::JoinSet::new();
    for i in 0..n {
        let store = store.clone();
        set.spawn(async move { store.queue().enqueue(message(account, i)).await.expect("enqueue") });
    }
    while let Some(r) = set.join_next().await {
        r.expect("task");
    }
}

fn bench_backend(c: &mut Criterion, rt: &tokio::runtime::Runtime, name: &str, store: Store) {
    let account = rt.block_on(setup(&store));
    let mut group = c.benchmark_group(format!("queue_{name}"));
    group.sample_size(10).measurement_time(Duration::from_secs(10));
    group.throughput(Throughput::Elements(1));
    group.bench_function("enqueue_one_at_a_time", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let t0 = Instant::now();
                for _ in 0..iters {
                    store.queue().enqueue(message(account, 0)).await.expect("enqueue");
                }
                t0.elapsed()
            })
        })
    });
    group.throughput(Throughput::Elements(CONCURRENT as u64));
    group.bench_function(format!("enqueue_{CONCURRENT}_concurrent"), |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let t0 = Instant::now();
                for _ in 0..iters {
                    enqueue_concurrent(&store, account, CONCURRENT).await;
                }
                t0.elapsed()
            })
        })
    });
    group.throughput(Throughput::Elements(CLAIM as u64));
    group.bench_function(format!("claim_{CLAIM}"), |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    enqueue_concurrent(&store, account, CLAIM).await;
                    let t0 = Instant::now();
                    let got = store
                        .queue()
                        .claim(ClaimRequest {
                            worker: "bench".into(),
                            limit: CLAIM,
                            lease_ms: 3_600_000,
                            now_ms: now_ms(),
                        })
                        .await
                        .expect("claim");
                    total += t0.elapsed();
                    assert!(!got.is_empty());
                }
                total
            })
        })
    });
    group.finish();
    rt.block_on(store.close());
}

fn queue(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite:{}", dir.path().join("bench.db").display());
    let store = rt
        .block_on(Store::open(&url, StoreOptions::default()))
        .expect("open sqlite");
    bench_backend(c, &rt, "sqlite", store);

    if let Ok(base) = std::env::var("MAILPUSH_TEST_POSTGRES_URL") {
        let schema = format!("mp_bench_{}", std::process::id());
        rt.block_on(async {
            let mut admin = sqlx::PgConnection::connect(&base).await.expect("connect");
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
                .execute(&mut admin)
                .await
                .expect("create schema");
        });
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
        let store = rt
            .block_on(Store::open(&url, StoreOptions::default()))
            .expect("open postgres");
        bench_backend(c, &rt, "postgres", store);
        rt.block_on(async {
            let mut admin = sqlx::PgConnection::connect(&base).await.expect("connect");
            sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
                .execute(&mut admin)
                .await
                .expect("drop schema");
        });
    } else {
        eprintln!("note: MAILPUSH_TEST_POSTGRES_URL is not set; skipping the PostgreSQL queue benches");
    }
}

criterion_group!(benches, queue);
criterion_main!(benches);
