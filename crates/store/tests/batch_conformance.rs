//! Conformance cases for batch sending (migration 0009): recipient lists and send tasks, including the
//! atomic chunk feed (messages + cursor in one transaction, compare-and-swap), on SQLite and PostgreSQL.

use mailpush_model::Lane;
use mailpush_model::batch::ChunkFeed;
use mailpush_model::limits::AdmissionLimits;
use mailpush_store::LimitRefusal;
use mailpush_store::batch::{ReceiverStatus, TaskStatus};
use mailpush_store::{
    AddDetailsRefusal, DetailQuery, NewMessage, NewReceiverDetail, NewRecipient, NewSendTask, ReceiverRow, Store,
    TaskChunk, TaskQuery, TaskRunUpdate,
};

const T0: i64 = 1_700_000_000_000;

#[macro_use]
mod common;
use common::Ctx;

conformance!(
    receivers_scoped_counted_and_limited,
    chunk_feed_is_atomic_and_compare_and_swap,
    chunks_and_admission_share_the_daily_limit_across_processes,
    receiver_in_use_cannot_be_deleted,
);

/// Creates the recipient list `name` (at most 2 lists per account): its row, or `Err(true)` for a taken name and
/// `Err(false)` over the limit.
async fn receiver(store: &Store, account: i64, name: &str) -> Result<ReceiverRow, bool> {
    store
        .batch()
        .create_receiver(account, name, "", T0, 2)
        .await
        .expect("create receiver")
}

fn detail(email: &str, invalid: bool) -> NewReceiverDetail {
    NewReceiverDetail {
        email: email.into(),
        template_data: Some("{\"name\":\"x\"}".into()),
        invalid_reason: invalid.then(|| "bad".to_string()),
    }
}

fn task(account: i64, receiver: i64) -> NewSendTask {
    common::send_task(account, receiver, T0)
}

fn message(account: i64, to: &str) -> NewMessage {
    let recipient = NewRecipient {
        domain: "example.org".into(),
        ..common::to(to)
    };
    NewMessage {
        lane: Lane::Batch,
        ..common::message(account, "a@x.example", T0, T0 + 1000, vec![recipient])
    }
}

/// The list "list" of `account` holding the valid addresses `emails`, and a task to start sending to it: the
/// list and the task's id.
async fn list_with_task(store: &Store, account: i64, emails: &[&str]) -> (ReceiverRow, i64) {
    let batch = store.batch();
    let r = batch
        .create_receiver(account, "list", "", T0, 10)
        .await
        .expect("create")
        .expect("created");
    let details: Vec<_> = emails.iter().map(|e| detail(e, false)).collect();
    batch
        .add_receiver_details(account, r.id, &details, 10, T0)
        .await
        .expect("add")
        .expect("added");
    let id = batch
        .create_send_task(&task(account, r.id), TaskStatus::ToStart)
        .await
        .expect("task")
        .expect("created");
    (r, id)
}

async fn receivers_scoped_counted_and_limited(ctx: Ctx) {
    let store = ctx.store.clone();
    let batch = store.batch();
    let a = common::account(&store, "a", T0).await;
    let b = common::account(&store, "b", T0).await;
    let r = receiver(&store, a.id, "list").await.expect("created");
    assert_eq!(receiver(&store, a.id, "list").await, Err(true));
    receiver(&store, b.id, "list").await.expect("same name ok");
    receiver(&store, a.id, "two").await.expect("created");
    assert_eq!(receiver(&store, a.id, "three").await, Err(false));
    let out = batch
        .add_receiver_details(
            a.id,
            r.id,
            &[
                detail("u1@example.org", false),
                detail("u2@example.org", false),
                detail("u1@example.org", false),
                detail("bad", true),
            ],
            10,
            T0,
        )
        .await
        .expect("add")
        .expect("added");
    assert_eq!((out.valid, out.invalid, out.repeated), (2, 1, 1));
    let row = batch.receiver(a.id, r.id).await.expect("get").expect("exists");
    assert_eq!(
        (row.valid_count, row.invalid_count, row.status),
        (2, 1, ReceiverStatus::Done)
    );
    assert!(
        batch.receiver(b.id, r.id).await.expect("get").is_none(),
        "scoped by account"
    );
    let refused = batch
        .add_receiver_details(b.id, r.id, &[detail("z@example.org", false)], 10, T0)
        .await
        .expect("add");
    assert_eq!(refused, Err(AddDetailsRefusal::NotFound));
    let many: Vec<_> = (0..8).map(|i| detail(&format!("m{i}@example.org"), false)).collect();
    assert_eq!(
        batch
            .add_receiver_details(a.id, r.id, &many, 10, T0)
            .await
            .expect("add"),
        Err(AddDetailsRefusal::TooMany(3))
    );
    let page = batch
        .list_receiver_details(&DetailQuery {
            account_id: a.id,
            receiver_id: r.id,
            email_contains: Some("u".into()),
            offset: 0,
            limit: 10,
            ..DetailQuery::default()
        })
        .await
        .expect("details");
    assert_eq!((page.total, page.valid, page.invalid), (2, 2, 0));
    let (total, rows) = batch.list_receivers(a.id, None, Some("li"), 0, 10).await.expect("list");
    assert_eq!((total, rows.len()), (1, 1));
    let walk = batch.receiver_walk(r.id, 0, 10).await.expect("walk");
    assert_eq!(walk.len(), 2, "only valid addresses are walked");
    assert_eq!(batch.count_receiver_after(r.id, walk[0].id).await.expect("count"), 1);
}

async fn chunk_feed_is_atomic_and_compare_and_swap(ctx: Ctx) {
    let store = ctx.store.clone();
    let batch = store.batch();
    let a = common::account(&store, "a", T0).await;
    let (r, id) = list_with_task(&store, a.id, &["u1@example.org", "u2@example.org"]).await;
    let walk = batch.receiver_walk(r.id, 0, 10).await.expect("walk");
    let chunk = TaskChunk {
        task_id: id,
        expected_cursor: 0,
        new_cursor: walk[0].id,
        messages: vec![message(a.id, "u1@example.org")],
        sent: 1,
        skipped: 0,
        now_ms: T0,
        daily_limit: None,
    };
    assert_eq!(batch.feed_task_chunk(&chunk).await.expect("feed"), ChunkFeed::Fed);
    // A second runner that read the same cursor cannot feed the same chunk again.
    let again = TaskChunk {
        messages: vec![message(a.id, "u1@example.org")],
        ..chunk.clone()
    };
    assert_eq!(
        batch.feed_task_chunk(&again).await.expect("feed again"),
        ChunkFeed::CursorMoved
    );
    assert_eq!(
        batch.count_requests(a.id, T0, T0 + 1).await.expect("count"),
        1,
        "nothing written twice"
    );
    assert_eq!(batch.open_deliveries(a.id).await.expect("open"), 1);
    let t = batch.send_task(id).await.expect("get").expect("exists");
    assert_eq!((t.cursor, t.send_count), (walk[0].id, 1));
    // Status changes are guarded by the cursor too.
    let u = TaskRunUpdate {
        task_id: id,
        expected_cursor: 0,
        status: TaskStatus::Paused,
        cursor: 0,
        add_requests: 0,
        cache_count: 1,
        err_msg: String::new(),
        add_runs: 0,
        next_run_ms: T0,
        now_ms: T0,
    };
    assert!(!batch.update_task_run(&u).await.expect("stale update"));
    let u = TaskRunUpdate {
        expected_cursor: walk[0].id,
        cursor: walk[0].id,
        ..u
    };
    assert!(batch.update_task_run(&u).await.expect("update"));
    let (total, rows) = batch
        .list_send_tasks(&TaskQuery {
            account_id: a.id,
            status: Some(TaskStatus::Paused.code()),
            offset: 0,
            limit: 10,
            ..TaskQuery::default()
        })
        .await
        .expect("list");
    assert_eq!(total, 1);
    assert_eq!((rows[0].cache_count, rows[0].receivers_name.as_str()), (1, "list"));
    // Leases: one runner at a time.
    assert!(batch.lease_task(id, "r1", T0, T0 + 100).await.expect("lease"));
    assert!(!batch.lease_task(id, "r2", T0 + 50, T0 + 150).await.expect("held"));
    assert!(
        batch
            .runnable_tasks(T0 + 50, "r2", 10)
            .await
            .expect("runnable")
            .is_empty()
    );
    assert_eq!(
        batch.runnable_tasks(T0 + 50, "r1", 10).await.expect("runnable").len(),
        1
    );
    assert!(
        batch
            .lease_task(id, "r2", T0 + 100, T0 + 200)
            .await
            .expect("expired lease taken over")
    );
}

/// Two runners (two stores on one database, as two processes) feed chunks of two tasks of one account at the
/// same time against a daily limit of 10: exactly 10 recipients are admitted, every refused chunk left nothing
/// behind, and admission on the API path counts against the same counter.
async fn chunks_and_admission_share_the_daily_limit_across_processes(ctx: Ctx) {
    let store = ctx.store.clone();
    let other = ctx.open(mailpush_store::StoreOptions::default()).await;
    let a = common::account(&store, "a", T0).await;
    let emails: Vec<String> = (0..8).map(|i| format!("u{i}@example.org")).collect();
    let emails: Vec<&str> = emails.iter().map(String::as_str).collect();
    let (r, first) = list_with_task(&store, a.id, &emails).await;
    let walk = store.batch().receiver_walk(r.id, 0, 10).await.expect("walk");
    let second = store
        .batch()
        .create_send_task(&task(a.id, r.id), TaskStatus::ToStart)
        .await
        .expect("task")
        .expect("created");
    // Each task feeds its chunks of 3 recipients in order; both tasks race chunk for chunk.
    let account_id = a.id;
    let feed = |store: Store, id: i64| {
        let walk = walk.clone();
        async move {
            let mut cursor = 0;
            let mut fed = 0;
            let mut refused = 0;
            for part in walk.chunks(3) {
                let last = part.last().expect("non-empty chunk").id;
                let chunk = TaskChunk {
                    task_id: id,
                    expected_cursor: cursor,
                    new_cursor: last,
                    messages: part.iter().map(|d| message(account_id, &d.email)).collect(),
                    sent: i64::try_from(part.len()).expect("small"),
                    skipped: 0,
                    now_ms: T0,
                    daily_limit: Some(10),
                };
                match store.batch().feed_task_chunk(&chunk).await.expect("feed") {
                    ChunkFeed::Fed => {
                        fed += part.len();
                        cursor = last;
                    }
                    ChunkFeed::OverDailyLimit => refused += 1,
                    ChunkFeed::CursorMoved => panic!("only this runner moves its task's cursor"),
                }
            }
            (fed, refused, cursor)
        }
    };
    let ((fed_a, refused_a, cursor_a), (fed_b, refused_b, cursor_b)) =
        tokio::join!(feed(store.clone(), first), feed(other.clone(), second));
    // 8 + 8 recipients offered in chunks of 3, 3, 2: at most 10 fit, and chunks are whole, so 8 to 10.
    let fed = fed_a + fed_b;
    assert!((8..=10).contains(&fed), "fed {fed_a} + {fed_b}");
    assert!(refused_a + refused_b >= 1, "some chunk must have been refused");
    let stored = store.batch().count_requests(a.id, T0, T0 + 1).await.expect("count");
    assert_eq!(
        stored,
        i64::try_from(fed).expect("small"),
        "a refused chunk stores nothing"
    );
    for (id, cursor) in [(first, cursor_a), (second, cursor_b)] {
        let t = store.batch().send_task(id).await.expect("get").expect("exists");
        assert_eq!(t.cursor, cursor, "a refused chunk does not move the cursor");
    }
    let usage = store.limits().account_usage(a.id).await.expect("usage");
    assert_eq!(usage.sent_on_day_of(T0), i64::try_from(fed).expect("small"));
    // The API path sees the batch's recipients: with the limit at 10, three more do not fit.
    let limits = AdmissionLimits {
        sends_per_second: 1_000,
        per_recipient_per_hour: 0,
        daily_cap: 10,
        level_quota: 10,
    };
    let api = common::message(
        a.id,
        "a@x.example",
        T0,
        T0 + 1000,
        common::to_all(&["v1@example.org", "v2@example.org", "v3@example.org"]),
    );
    let refused = other.queue().enqueue_limited(api, limits).await;
    assert!(
        matches!(
            &refused,
            Err(mailpush_store::StoreError::Limit(LimitRefusal::Daily { .. }))
        ),
        "{refused:?}"
    );
    // What still fits is admitted, and the counter then stands at the limit: no chunk fits any more.
    let left = 10 - i64::try_from(fed).expect("small");
    if left > 0 {
        let addresses: Vec<String> = (0..left).map(|i| format!("w{i}@example.org")).collect();
        let addresses: Vec<&str> = addresses.iter().map(String::as_str).collect();
        let api = common::message(a.id, "a@x.example", T0, T0 + 1000, common::to_all(&addresses));
        other
            .queue()
            .enqueue_limited(api, limits)
            .await
            .expect("what fits is admitted");
    }
    let one_more = TaskChunk {
        task_id: first,
        expected_cursor: cursor_a,
        new_cursor: cursor_a + 1_000,
        messages: vec![message(a.id, "late@example.org")],
        sent: 1,
        skipped: 0,
        now_ms: T0,
        daily_limit: Some(10),
    };
    assert_eq!(
        store.batch().feed_task_chunk(&one_more).await.expect("feed"),
        ChunkFeed::OverDailyLimit
    );
    // The next UTC day starts from zero.
    let tomorrow = TaskChunk {
        now_ms: T0 + 86_400_000,
        ..one_more
    };
    assert_eq!(
        store.batch().feed_task_chunk(&tomorrow).await.expect("feed"),
        ChunkFeed::Fed
    );
    let usage = store.limits().account_usage(a.id).await.expect("usage");
    assert_eq!(usage.sent_on_day_of(T0 + 86_400_000), 1);
    other.close().await;
}

async fn receiver_in_use_cannot_be_deleted(ctx: Ctx) {
    let store = ctx.store.clone();
    let batch = store.batch();
    let a = common::account(&store, "a", T0).await;
    let (r, id) = list_with_task(&store, a.id, &["u1@example.org"]).await;
    assert_eq!(batch.delete_receiver(a.id, r.id).await.expect("delete"), Err(true));
    let u = TaskRunUpdate {
        task_id: id,
        expected_cursor: 0,
        status: TaskStatus::Done,
        cursor: 0,
        add_requests: 0,
        cache_count: 0,
        err_msg: String::new(),
        add_runs: 0,
        next_run_ms: T0,
        now_ms: T0,
    };
    assert!(batch.update_task_run(&u).await.expect("done"));
    assert_eq!(batch.delete_receiver(a.id, r.id).await.expect("delete"), Ok(()));
    assert_eq!(batch.delete_receiver(a.id, r.id).await.expect("again"), Err(false));
    assert!(batch.receiver_walk(r.id, 0, 10).await.expect("walk").is_empty());
}
