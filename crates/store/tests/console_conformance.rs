//! Conformance cases for the web console's rows (migration 0022): console users and sessions, the message
//! search and timeline, and the task controls, on SQLite and (with `MAILPUSH_TEST_POSTGRES_URL`) PostgreSQL.

use mailpush_store::batch::TaskStatus;
use mailpush_store::{MessageSearch, NewMessage, Store, TaskControl};

const T0: i64 = 1_700_000_000_000;

#[macro_use]
mod common;
use common::Ctx;

conformance!(
    console_users_are_unique_and_sessions_expire,
    message_search_and_timeline_are_scoped_by_account,
    task_controls_move_only_from_their_states,
);

async fn console_users_are_unique_and_sessions_expire(ctx: Ctx) {
    let store = &ctx.store;
    let console = store.console();
    let a = common::account(store, "a", T0).await;
    let ann = console
        .create_console_user("ann", Some(a.id), "hash", T0)
        .await
        .expect("create")
        .expect("created");
    assert_eq!(ann.account_id, Some(a.id));
    assert!(
        console
            .create_console_user("ann", None, "h2", T0)
            .await
            .expect("again")
            .is_none()
    );
    let root = console
        .create_console_user("root", None, "h", T0)
        .await
        .expect("op")
        .expect("created");
    assert_eq!(root.account_id, None);
    assert_eq!(console.console_users(Some(a.id)).await.expect("list").len(), 1);
    assert_eq!(console.console_users(None).await.expect("list").len(), 2);

    console
        .create_console_session("tok", ann.id, "csrf", T0, T0 + 1000)
        .await
        .expect("session");
    let s = console
        .console_session("tok", T0 + 10)
        .await
        .expect("read")
        .expect("current");
    assert_eq!((s.user.username.as_str(), s.csrf.as_str()), ("ann", "csrf"));
    assert!(
        console.console_session("tok", T0 + 1000).await.expect("read").is_none(),
        "expired"
    );
    console
        .create_console_session("op", root.id, "c2", T0, T0 + 1000)
        .await
        .expect("session");
    console.set_console_acting_account("op", Some(a.id)).await.expect("act");
    let s = console.console_session("op", T0).await.expect("read").expect("current");
    assert_eq!(s.acting_account_id, Some(a.id));
    console.delete_console_session("op").await.expect("delete");
    assert!(console.console_session("op", T0).await.expect("read").is_none());
}

fn message(account: i64, to: &str) -> NewMessage {
    NewMessage {
        from_address: "Shop <a@x.example>".into(),
        subject: "hello".into(),
        body: b"body".to_vec(),
        ..common::message(account, "a@x.example", T0, T0 + 86_400_000, vec![common::to(to)])
    }
}

async fn message_search_and_timeline_are_scoped_by_account(ctx: Ctx) {
    let store = &ctx.store;
    let console = store.console();
    let a = common::account(store, "a", T0).await;
    let b = common::account(store, "b", T0).await;
    let m = message(a.id, "u1@example.org");
    let id = m.id.as_str().to_string();
    store.queue().enqueue(m).await.expect("enqueue");
    store
        .queue()
        .enqueue(message(b.id, "u1@example.org"))
        .await
        .expect("enqueue");
    let q = |account_id, recipient: Option<&str>, sender: Option<&str>| MessageSearch {
        account_id,
        from_ms: T0 - 1,
        to_ms: T0 + 1,
        message_id: None,
        recipient: recipient.map(str::to_string),
        sender: sender.map(str::to_string),
        limit: 10,
    };
    let hits = console
        .search_messages(&q(a.id, Some("u1@example.org"), None))
        .await
        .expect("search");
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].message_id, id);
    assert_eq!(
        console
            .search_messages(&q(a.id, None, Some("a@x")))
            .await
            .expect("by sender")
            .len(),
        1
    );
    assert!(
        console
            .search_messages(&q(a.id, None, Some("zzz")))
            .await
            .expect("none")
            .is_empty()
    );
    let (recipients, attempts, events) = console.message_timeline(a.id, &id).await.expect("timeline");
    assert_eq!(recipients.len(), 1);
    assert!(attempts.is_empty() && events.is_empty());
    let (other, _, _) = console.message_timeline(b.id, &id).await.expect("timeline of b");
    assert!(other.is_empty(), "another account's message is not found");
}

async fn task_controls_move_only_from_their_states(ctx: Ctx) {
    let store = &ctx.store;
    let a = common::account(store, "a", T0).await;
    let b = common::account(store, "b", T0).await;
    let r = store
        .batch()
        .create_receiver(a.id, "l", "", T0, 10)
        .await
        .expect("list")
        .expect("created");
    let task = common::send_task(a.id, r.id, T0);
    let id = store
        .batch()
        .create_send_task(&task, TaskStatus::ToStart)
        .await
        .expect("task")
        .expect("created");
    use TaskStatus::*;
    let control =
        |account, from: &'static [TaskStatus], to| store.console().control_send_task(account, id, from, to, T0);
    assert_eq!(
        control(b.id, &[ToStart], Some(Held)).await.expect("b"),
        TaskControl::NoSuchTask
    );
    assert_eq!(
        control(a.id, &[Held], None).await.expect("resume"),
        TaskControl::WrongState
    );
    assert_eq!(
        control(a.id, &[ToStart, Sending], Some(Held)).await.expect("pause"),
        TaskControl::Done
    );
    assert_eq!(control(a.id, &[Held], None).await.expect("resume"), TaskControl::Done);
    assert_eq!(
        task_status(store, a.id).await,
        ToStart,
        "a task that never fed waits for its start again"
    );
    assert_eq!(
        control(a.id, &[ToStart], Some(Cancelled)).await.expect("cancel"),
        TaskControl::Done
    );
    assert_eq!(task_status(store, a.id).await, Cancelled);
}

async fn task_status(store: &Store, account_id: i64) -> TaskStatus {
    let q = mailpush_store::TaskQuery {
        account_id,
        status: None,
        task_type: None,
        receiver_id: None,
        offset: 0,
        limit: 10,
    };
    store.batch().list_send_tasks(&q).await.expect("list").1[0].status
}
