//! Conformance cases for data retention (migration 0023): what is pruned and what is kept, batch by batch, on
//! SQLite and (with `MAILPUSH_TEST_POSTGRES_URL`) PostgreSQL; and, on SQLite, incremental auto-vacuum.
//! Time is the test's: every timestamp is explicit, a month and more apart.

use std::time::Duration;

use mailpush_model::{EventKind, MessageId};
use mailpush_store::{
    Account, AttemptResult, Backend, BounceBlacklistQuery, ClaimRequest, DeliveryOutcome, MessageTagsRow,
    NewDmarcReport, NewDmarcRow, NewEvent, NewMessage, PruneCounts, ReportsPruned, Store, StoreOptions, TlsRptCount,
};

const T0: i64 = 1_764_158_400_000;

#[macro_use]
mod common;
use common::{Ctx, DAY, delivered};

conformance!(
    prunes_only_mail_final_before_the_cutoff,
    batches_walk_past_mail_that_stays,
    events_awaiting_callbacks_keep_their_message,
    ses_rows_go_with_their_message_and_refused_mail_ages_out,
    received_reports_and_tls_rpt_counts_age_out,
);

/// An account whose events are called back (to a URL nobody serves): they stay until their callbacks are done.
async fn hooked_account(store: &Store, name: &str) -> Account {
    let a = common::account(store, name, T0).await;
    store
        .callbacks()
        .set_callback_target(a.id, "", Some("https://hooks.example/x"))
        .await
        .expect("callback url");
    a
}

/// Prunes the mail final before `cutoff_ms`, `batch` messages at a time, without pausing between batches.
async fn prune(store: &Store, cutoff_ms: i64, batch: u32) -> PruneCounts {
    store
        .retention()
        .prune_final_before(cutoff_ms, batch, Duration::ZERO)
        .await
        .expect("prune")
}

fn message(account: &Account, at: i64, recipients: &[&str]) -> NewMessage {
    NewMessage {
        body: vec![b'x'; 2_000],
        ..common::message(
            account.id,
            "news@shop.example",
            at,
            at + 90 * DAY,
            common::to_all(recipients),
        )
    }
}

/// Claims everything due at `now` and reports `result(recipient)` for each.
async fn deliver(store: &Store, now: i64, result: impl Fn(&str) -> AttemptResult) {
    common::deliver_due(store, 1_000, now, now + 1, Some("mx.example"), result).await;
}

fn event(account: &Account, m: &NewMessage, recipient: &str, kind: EventKind, at: i64) -> NewEvent {
    common::event(account.id, &m.id, recipient, kind, at)
}

/// Rows of `table` that belong to message `id` (delivery_attempts through its deliveries).
async fn rows(ctx: &Ctx, table: &str, id: &MessageId) -> i64 {
    let sql = match table {
        "messages" => "SELECT COUNT(*) FROM messages WHERE id = $1".to_string(),
        "delivery_attempts" => "SELECT COUNT(*) FROM delivery_attempts WHERE delivery_id IN \
             (SELECT id FROM deliveries WHERE message_id = $1)"
            .to_string(),
        t => format!("SELECT COUNT(*) FROM {t} WHERE message_id = $1"),
    };
    let sql = sqlx::AssertSqlSafe(sql);
    match ctx.store.backend() {
        Backend::Sqlite => count::<sqlx::Sqlite>(&ctx.url, sql, id).await,
        Backend::Postgres => count::<sqlx::Postgres>(&ctx.url, sql, id).await,
    }
}

/// The count `sql` answers with `id` bound to `$1`, on a pool of its own to the database at `url`.
async fn count<DB: sqlx::Database>(url: &str, sql: sqlx::AssertSqlSafe<String>, id: &MessageId) -> i64
where
    (i64,): for<'r> sqlx::FromRow<'r, DB::Row>,
    for<'q> &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'c> &'c sqlx::Pool<DB>: sqlx::Executor<'c, Database = DB>,
    DB::Arguments: sqlx::IntoArguments<DB>,
{
    let pool = sqlx::Pool::<DB>::connect(url).await.expect("connect");
    let n = sqlx::query_scalar::<DB, i64>(sql)
        .bind(id.as_str())
        .fetch_one(&pool)
        .await
        .expect("count");
    pool.close().await;
    n
}

async fn all_rows(ctx: &Ctx, id: &MessageId) -> [i64; 5] {
    [
        rows(ctx, "messages", id).await,
        rows(ctx, "deliveries", id).await,
        rows(ctx, "delivery_attempts", id).await,
        rows(ctx, "events", id).await,
        rows(ctx, "message_bodies", id).await,
    ]
}

/// How many bounce blacklist rows the account has from the test's months.
async fn blacklisted_rows(store: &Store, account: &Account) -> i64 {
    let q = BounceBlacklistQuery {
        account_id: account.id,
        from_ms: T0 - DAY,
        to_ms: T0 + 90 * DAY,
        address: None,
        offset: 0,
        limit: 100,
    };
    store
        .suppression()
        .list_bounce_blacklist(&q)
        .await
        .expect("blacklist")
        .1
}

async fn prunes_only_mail_final_before_the_cutoff(ctx: Ctx) {
    let store = &ctx.store;
    let a = common::account(store, "a", T0).await;
    // old: final on its first day, with an open the same day and a hard bounce (which blacklists).
    let old = message(&a, T0, &["ok@gmail.com", "gone@gmail.com"]);
    // late: requested the same day, final only 40 days later (deferred until then).
    let late = message(&a, T0, &["slow@yahoo.com"]);
    // open: requested the same day, never final.
    let open = message(&a, T0, &["stuck@qq.com"]);
    for m in [&old, &late, &open] {
        store.queue().enqueue(m.clone()).await.expect("enqueue");
    }
    deliver(store, T0, |r| match r {
        "gone@gmail.com" => AttemptResult::Rejected {
            reply: "550 5.1.1 no such user".into(),
        },
        "slow@yahoo.com" => AttemptResult::Deferred {
            reply: "451 later".into(),
            retry_at_ms: T0 + 40 * DAY,
        },
        "stuck@qq.com" => AttemptResult::Deferred {
            reply: "451 later".into(),
            retry_at_ms: T0 + 80 * DAY,
        },
        _ => AttemptResult::Delivered { reply: "250 ok".into() },
    })
    .await;
    store
        .events()
        .record_events(&[event(&a, &old, "ok@gmail.com", EventKind::Open, T0 + 3_600_000)])
        .await
        .expect("open event");
    deliver(store, T0 + 40 * DAY, delivered).await;
    // recent: requested after the cutoff.
    let recent = message(&a, T0 + 45 * DAY, &["new@gmail.com"]);
    store.queue().enqueue(recent.clone()).await.expect("enqueue recent");
    deliver(store, T0 + 45 * DAY, delivered).await;

    let stats_before = common::stats(store, &a, T0, T0 + 60 * DAY, None, None).await;
    let blacklist_before = blacklisted_rows(store, &a).await;
    assert_eq!(blacklist_before, 1, "the hard bounce is blacklisted");
    assert_eq!(
        all_rows(&ctx, &old.id).await,
        [1, 2, 2, 3, 0],
        "before: message, 2 recipients, 2 attempts, 3 events (delivered, bounce, open), body purged at final state"
    );

    // Retention of 30 days at T0 + 45 days: the cutoff is T0 + 15 days.
    let pruned = prune(store, T0 + 15 * DAY, 2).await;
    assert_eq!(
        pruned,
        PruneCounts {
            messages: 1,
            deliveries: 2,
            attempts: 2,
            events: 3,
            ses_messages: 0,
        }
    );
    assert_eq!(
        all_rows(&ctx, &old.id).await,
        [0; 5],
        "everything of the old message is gone"
    );
    assert_eq!(rows(&ctx, "stats_firsts", &old.id).await, 0);
    for kept in [&late, &open, &recent] {
        assert_eq!(rows(&ctx, "messages", &kept.id).await, 1, "{} stays", kept.id);
        assert!(rows(&ctx, "deliveries", &kept.id).await > 0);
    }
    // The rollup and the blacklist keep their own rules.
    assert_eq!(
        common::stats(store, &a, T0, T0 + 60 * DAY, None, None).await,
        stats_before
    );
    let blacklist_after = blacklisted_rows(store, &a).await;
    assert_eq!(blacklist_after, 1);

    // A second run finds nothing more; a later cutoff takes the late one.
    assert_eq!(prune(store, T0 + 15 * DAY, 2).await, PruneCounts::default());
    let later = prune(store, T0 + 41 * DAY, 2).await;
    assert_eq!(later.messages, 1);
    assert_eq!(rows(&ctx, "messages", &late.id).await, 0);
    assert_eq!(
        rows(&ctx, "messages", &open.id).await,
        1,
        "a message still in the queue is never pruned"
    );
    assert_eq!(rows(&ctx, "messages", &recent.id).await, 1);
}

async fn batches_walk_past_mail_that_stays(ctx: Ctx) {
    let store = &ctx.store;
    let a = common::account(store, "walk", T0).await;
    let mut gone = Vec::new();
    let mut stay = Vec::new();
    for i in 0..30 {
        let (m, list) = if i % 6 == 0 {
            (message(&a, T0 + i, &["stuck@qq.com"]), &mut stay)
        } else {
            (message(&a, T0 + i, &[&format!("r{i}@gmail.com")]), &mut gone)
        };
        store.queue().enqueue(m.clone()).await.expect("enqueue");
        list.push(m);
    }
    deliver(store, T0 + 100, |r| {
        if r.starts_with("stuck") {
            AttemptResult::Deferred {
                reply: "451 later".into(),
                retry_at_ms: T0 + 80 * DAY,
            }
        } else {
            AttemptResult::Delivered { reply: "250 ok".into() }
        }
    })
    .await;
    // One batch at a time: each examines at most 4 messages and says where the next starts.
    let mut cursor = None;
    let mut batches = 0;
    let mut total = 0;
    loop {
        let b = store
            .retention()
            .prune_batch(T0 + DAY, cursor.as_ref(), 4)
            .await
            .expect("batch");
        assert!(b.deleted.messages <= 4);
        total += b.deleted.messages;
        batches += 1;
        match b.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(total, 25);
    assert!(batches >= 8, "30 messages in batches of 4: {batches}");
    for m in &gone {
        assert_eq!(rows(&ctx, "messages", &m.id).await, 0);
    }
    for m in &stay {
        assert_eq!(rows(&ctx, "messages", &m.id).await, 1);
    }
}

async fn events_awaiting_callbacks_keep_their_message(ctx: Ctx) {
    let store = &ctx.store;
    let a = hooked_account(store, "cb").await;
    let quiet = common::account(store, "quiet", T0).await;
    let m = message(&a, T0, &["ok@gmail.com"]);
    let late_open = message(&quiet, T0, &["ok@gmail.com"]);
    store.queue().enqueue(m.clone()).await.expect("enqueue");
    store.queue().enqueue(late_open.clone()).await.expect("enqueue");
    deliver(store, T0, delivered).await;
    // An open recorded after the cutoff keeps the other message too.
    store
        .events()
        .record_events(&[event(
            &quiet,
            &late_open,
            "ok@gmail.com",
            EventKind::Open,
            T0 + 20 * DAY,
        )])
        .await
        .expect("late open");
    let pruned = prune(store, T0 + 10 * DAY, 10).await;
    assert_eq!(pruned, PruneCounts::default());
    assert_eq!(
        rows(&ctx, "messages", &m.id).await,
        1,
        "its delivered event still awaits its callback"
    );
    assert_eq!(rows(&ctx, "messages", &late_open.id).await, 1);
}

/// The SES v2 row of `id` (a message sent with a configuration set, or one refused at admission) written at `at`.
fn ses_row(id: &MessageId, at: i64) -> MessageTagsRow {
    MessageTagsRow {
        message_id: id.as_str().to_string(),
        set_name: "marketing".into(),
        tags: r#"{"campaign":"spring"}"#.into(),
        source: "news@shop.example".into(),
        subject: "Spring".into(),
        created_ms: at,
    }
}

async fn ses_rows_go_with_their_message_and_refused_mail_ages_out(ctx: Ctx) {
    let store = &ctx.store;
    let a = common::account(store, "ses", T0).await;
    let hooked = hooked_account(store, "hooked").await;
    let sets = store.configuration_sets();
    // A message sent with a set: its SES row goes with it.
    let sent = message(&a, T0, &["ok@gmail.com"]);
    sets.put_message_tags(a.id, &ses_row(&sent.id, T0)).await.expect("row");
    store.queue().enqueue(sent.clone()).await.expect("enqueue");
    deliver(store, T0, delivered).await;
    // Mail refused at admission: an SES row and a REJECT event, no message. The old one goes, the recent one
    // stays, and so does an old one whose event still awaits its callback.
    let refused = |account: &Account, at: i64| {
        let id = MessageId::generate();
        let ev = NewEvent {
            reason: r#"{"reason":"Bad content"}"#.into(),
            ..common::event(account.id, &id, "ok@gmail.com", EventKind::Reject, at)
        };
        (id, ev)
    };
    let (old_id, old_ev) = refused(&a, T0);
    let (recent_id, recent_ev) = refused(&a, T0 + 20 * DAY);
    let (waiting_id, waiting_ev) = refused(&hooked, T0);
    sets.put_message_tags(a.id, &ses_row(&old_id, T0)).await.expect("row");
    sets.put_message_tags(a.id, &ses_row(&recent_id, T0 + 20 * DAY))
        .await
        .expect("row");
    sets.put_message_tags(hooked.id, &ses_row(&waiting_id, T0))
        .await
        .expect("row");
    store
        .events()
        .record_events(&[old_ev, recent_ev, waiting_ev])
        .await
        .expect("reject events");

    let pruned = prune(store, T0 + 10 * DAY, 2).await;
    assert_eq!(
        pruned,
        PruneCounts {
            messages: 1,
            deliveries: 1,
            attempts: 1,
            events: 2,
            ses_messages: 2,
        },
        "the sent message with its row and delivered event; the old refused mail's row and event"
    );
    assert_eq!(all_rows(&ctx, &sent.id).await, [0; 5]);
    assert_eq!(rows(&ctx, "ses_message_tags", &sent.id).await, 0);
    for (id, kept) in [(&old_id, 0), (&recent_id, 1), (&waiting_id, 1)] {
        assert_eq!(rows(&ctx, "ses_message_tags", id).await, kept, "{id}");
        assert_eq!(rows(&ctx, "events", id).await, kept, "{id}");
    }
    // Batches: many refused mails older than the cutoff go a batch at a time.
    for i in 0..5 {
        let (id, ev) = refused(&a, T0 + i);
        sets.put_message_tags(a.id, &ses_row(&id, T0 + i)).await.expect("row");
        store.events().record_events(&[ev]).await.expect("event");
    }
    let first = store
        .retention()
        .prune_ses_orphans(T0 + 10 * DAY, 2)
        .await
        .expect("one batch");
    assert_eq!((first.ses_messages, first.events), (2, 2));
    let rest = prune(store, T0 + 10 * DAY, 2).await;
    assert_eq!((rest.ses_messages, rest.events), (3, 3));
    assert_eq!(rows(&ctx, "ses_message_tags", &recent_id).await, 1);
}

// ---- SQLite files: incremental auto-vacuum ----

async fn sqlite_store(dir: &tempfile::TempDir, opts: StoreOptions) -> (Store, String) {
    let url = format!("sqlite:{}", dir.path().join("mailpush.db").display());
    (Store::open(&url, opts).await.expect("open"), url)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_file_gives_pruned_pages_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, _) = sqlite_store(
        &dir,
        StoreOptions {
            retain_bodies: true,
            ..StoreOptions::default()
        },
    )
    .await;
    let pages = store.retention().file_pages().await.expect("pages").expect("sqlite");
    assert_eq!(pages.auto_vacuum, 2, "a new file is in incremental auto-vacuum mode");
    let a = common::account(&store, "big", T0).await;
    for i in 0..300 {
        let mut m = message(&a, T0 + i, &["ok@gmail.com"]);
        m.body = vec![b'y'; 20_000];
        store.queue().enqueue(m).await.expect("enqueue");
    }
    deliver(&store, T0 + 1_000, delivered).await;
    let full = store.retention().file_pages().await.expect("pages").expect("sqlite");
    let pruned = store
        .retention()
        .prune_final_before(T0 + DAY, 50, Duration::from_millis(1))
        .await
        .expect("prune");
    assert_eq!(pruned.messages, 300);
    let freed = store.retention().file_pages().await.expect("pages").expect("sqlite");
    assert!(freed.free > 1_000, "the bodies' pages are free: {freed:?}");
    let mut given = 0;
    loop {
        let n = store.retention().release_free_pages(500).await.expect("release");
        assert!(n <= 500, "at most the pages asked for at a time");
        if n == 0 {
            break;
        }
        given += n;
    }
    let after = store.retention().file_pages().await.expect("pages").expect("sqlite");
    assert!(given > 1_000, "{given} pages given back");
    assert!(after.pages < full.pages / 2, "the file shrank: {full:?} → {after:?}");
    assert_eq!(after.free, 0);
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_file_without_auto_vacuum_is_converted_at_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite:{}", dir.path().join("mailpush.db").display());
    // A file as an older mailpush left it: tables created without auto-vacuum.
    {
        let opts = <sqlx::sqlite::SqliteConnectOptions as std::str::FromStr>::from_str(&url)
            .expect("url")
            .create_if_missing(true)
            .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal);
        let pool = sqlx::SqlitePool::connect_with(opts).await.expect("create");
        sqlx::raw_sql("CREATE TABLE older (x BLOB); INSERT INTO older VALUES (zeroblob(100000))")
            .execute(&pool)
            .await
            .expect("fill");
        let mode: i64 = sqlx::query_scalar("PRAGMA auto_vacuum")
            .fetch_one(&pool)
            .await
            .expect("mode");
        assert_eq!(mode, 0);
        pool.close().await;
    }
    let store = Store::open(&url, StoreOptions::default()).await.expect("open");
    let retention = store.retention();
    let pages = retention.file_pages().await.expect("pages").expect("sqlite");
    assert_eq!(pages.auto_vacuum, 2, "a small file is converted at open");
    // And the explicit conversion (`mailpush db vacuum`) is harmless on a converted file.
    retention.vacuum().await.expect("vacuum");
    assert_eq!(
        retention
            .file_pages()
            .await
            .expect("pages")
            .expect("sqlite")
            .auto_vacuum,
        2
    );
    store.close().await;
}

// ---- the operator's retry (`mailpush queue retry`), on both backends ----

mod retry {
    conformance!(deferred_mail_of_a_domain_or_message_is_due_again);
}

async fn deferred_mail_of_a_domain_or_message_is_due_again(ctx: Ctx) {
    let store = &ctx.store;
    let a = common::account(store, "retry", T0).await;
    let slow = message(&a, T0, &["a@slow.example", "b@slow.example"]);
    let other = message(&a, T0, &["c@other.example"]);
    common::enqueue_all(store, &[&slow, &other]).await;
    deliver(store, T0, |_| AttemptResult::Deferred {
        reply: "451 later".into(),
        retry_at_ms: T0 + DAY,
    })
    .await;
    let now = T0 + 60_000;
    let due = |n: i64| ClaimRequest {
        worker: "w".into(),
        limit: 100,
        lease_ms: 60_000,
        now_ms: n,
    };
    assert!(
        store.queue().claim(due(now)).await.expect("claim").is_empty(),
        "nothing due yet"
    );
    assert_eq!(
        retry_now(store, mailpush_store::QueueTarget::Domain("slow.example"), now).await,
        2
    );
    let claimed = store.queue().claim(due(now)).await.expect("claim");
    assert_eq!(claimed.len(), 2);
    assert!(claimed.iter().all(|c| c.domain == "slow.example"));
    // Leased deliveries are not touched; a message's queued ones are.
    assert_eq!(
        retry_now(store, mailpush_store::QueueTarget::Message(&slow.id), now).await,
        0
    );
    assert_eq!(
        retry_now(store, mailpush_store::QueueTarget::Message(&other.id), now).await,
        1
    );
}

/// Makes the queued deliveries of `target` due at `now_ms`; how many.
async fn retry_now(store: &Store, target: mailpush_store::QueueTarget<'_>, now_ms: i64) -> u64 {
    store.queue_admin().retry_now(target, now_ms).await.expect("retry")
}

mod drop {
    conformance!(queued_mail_is_leased_for_the_operator_to_drop);
}

async fn queued_mail_is_leased_for_the_operator_to_drop(ctx: Ctx) {
    let store = &ctx.store;
    let a = common::account(store, "drop", T0).await;
    let m = message(&a, T0, &["a@gone.example", "b@gone.example"]);
    let keep = message(&a, T0, &["c@kept.example"]);
    common::enqueue_all(store, &[&m, &keep]).await;
    let leased = store
        .queue_admin()
        .lease_queued(
            mailpush_store::QueueTarget::Domain("gone.example"),
            "operator",
            T0 + 60_000,
        )
        .await
        .expect("lease");
    assert_eq!(leased.len(), 2);
    // Leased: a second lease finds nothing, and a claim does not take them.
    assert!(
        store
            .queue_admin()
            .lease_queued(mailpush_store::QueueTarget::Message(&m.id), "operator", T0 + 60_000)
            .await
            .expect("lease again")
            .is_empty()
    );
    let outcomes = leased
        .iter()
        .map(|(id, lease)| DeliveryOutcome {
            delivery_id: *id,
            lease: *lease,
            at_ms: T0 + 1,
            result: AttemptResult::Dropped {
                reason: "dropped by the operator".into(),
            },
            remote: None,
        })
        .collect();
    assert!(
        store
            .queue()
            .record_outcomes(outcomes)
            .await
            .expect("record")
            .iter()
            .all(|a| *a)
    );
    let claimed = common::claim(store, "w", 100, 60_000, T0 + 2).await;
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].domain, "kept.example");
    assert_eq!(rows(&ctx, "events", &m.id).await, 2, "a dropped event per recipient");
}

/// A DMARC aggregate report received about `account`'s domain for the day starting at `begin_ms`.
fn dmarc_report(account: &Account, id: &str, begin_ms: i64) -> NewDmarcReport {
    NewDmarcReport {
        org_name: "receiver.example".into(),
        org_email: "dmarc@receiver.example".into(),
        report_id: id.into(),
        policy_domain: "shop.example".into(),
        begin_ms,
        end_ms: begin_ms + DAY,
        received_ms: begin_ms + DAY + 3_600_000,
        rows: vec![NewDmarcRow {
            account_id: account.id,
            domain: "shop.example".into(),
            day: begin_ms / DAY,
            source_ip: "192.0.2.1".into(),
            count: 3,
            disposition: "none".into(),
            dkim_aligned: true,
            spf_aligned: true,
            dkim_result: "pass".into(),
            spf_result: "pass".into(),
            header_from: "shop.example".into(),
        }],
    }
}

fn tls_rpt_count(day: i64) -> TlsRptCount {
    TlsRptCount {
        day,
        policy_domain: "example.com".into(),
        policy_type: "no-policy-found".into(),
        policy_strings: String::new(),
        mx_hosts: String::new(),
        result_type: String::new(),
        sending_ip: String::new(),
        receiving_mx: String::new(),
        receiving_ip: String::new(),
        reason_code: String::new(),
        sessions: 1,
    }
}

async fn received_reports_and_tls_rpt_counts_age_out(ctx: Ctx) {
    let store = &ctx.store;
    let a = common::account(store, "reports", T0).await;
    for (id, begin) in [("old-1", T0), ("old-2", T0 + DAY), ("new", T0 + 20 * DAY)] {
        assert!(
            store
                .dmarc_reports()
                .record(&dmarc_report(&a, id, begin))
                .await
                .expect("record")
        );
    }
    let first_day = T0 / DAY;
    let days = [first_day, first_day + 1, first_day + 20];
    store.tls_rpt().add(&days.map(tls_rpt_count)).await.expect("counts");
    for day in days {
        assert!(
            store
                .tls_rpt()
                .claim_report(day, "example.com", "r", T0)
                .await
                .expect("claim")
        );
    }
    let dmarc_days = |store: &Store| {
        let store = store.clone();
        async move {
            store
                .dmarc_reports()
                .daily(a.id, "shop.example", first_day - 1, first_day + 30)
                .await
                .expect("daily")
                .len()
        }
    };
    assert_eq!(dmarc_days(store).await, 3);

    // A cutoff at T0 + 10 days: the reports of the first two days go, one report (and one TLS-RPT day) per call.
    let cutoff = T0 + 10 * DAY;
    let mut total = ReportsPruned::default();
    let mut calls = 0;
    loop {
        let pruned = store.retention().prune_reports(cutoff, 1).await.expect("prune");
        calls += 1;
        if pruned == ReportsPruned::default() {
            break;
        }
        total.dmarc_reports += pruned.dmarc_reports;
        total.tls_rpt_rows += pruned.tls_rpt_rows;
        assert!(pruned.dmarc_reports <= 1);
    }
    assert_eq!(
        total,
        ReportsPruned {
            dmarc_reports: 2,
            tls_rpt_rows: 4,
        },
        "two reports; two days of counters and their report marks"
    );
    assert_eq!(calls, 3);
    assert_eq!(dmarc_days(store).await, 1, "the recent report stays");
    assert_eq!(
        store.tls_rpt().counts(first_day, "example.com").await.expect("counts"),
        vec![]
    );
    assert_eq!(
        store
            .tls_rpt()
            .report(first_day + 1, "example.com")
            .await
            .expect("mark"),
        None
    );
    assert_eq!(
        store
            .tls_rpt()
            .counts(first_day + 20, "example.com")
            .await
            .expect("counts")
            .len(),
        1
    );
    assert!(
        store
            .tls_rpt()
            .report(first_day + 20, "example.com")
            .await
            .expect("mark")
            .is_some()
    );
    assert_eq!(
        store
            .tls_rpt()
            .unreported(first_day + 30, 10)
            .await
            .expect("unreported"),
        vec![],
        "pruned days do not come back as unreported"
    );
}
