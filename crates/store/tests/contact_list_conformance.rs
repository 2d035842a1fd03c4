//! Conformance cases for SES v2 contact lists (migration 0034): lists, contacts and their preferences, scoped by
//! account; on SQLite and (with `MAILPUSH_TEST_POSTGRES_URL`) PostgreSQL.

use mailpush_store::{ContactListRow, ContactRow, StoreError};

const T0: i64 = 1_764_158_400_000;

#[macro_use]
mod common;
use common::Ctx;

conformance!(lists_and_contacts,);

fn list(name: &str) -> ContactListRow {
    ContactListRow {
        name: name.into(),
        description: "News".into(),
        topics: r#"[{"TopicName":"weekly","DefaultSubscriptionStatus":"OPT_IN"}]"#.into(),
        created_ms: T0,
        updated_ms: T0,
    }
}

fn contact(list: &str, email: &str, prefs: &str, all: i64) -> ContactRow {
    ContactRow {
        list_name: list.into(),
        email: email.into(),
        preferences: prefs.into(),
        unsubscribe_all: all,
        attributes: String::new(),
        created_ms: T0,
        updated_ms: T0,
    }
}

async fn lists_and_contacts(ctx: Ctx) {
    let store = &ctx.store;
    let a = common::account(store, "a", T0).await;
    let b = common::account(store, "b", T0).await;
    let lists = store.contact_lists();
    lists.create_list(a.id, &list("news")).await.expect("create");
    lists.create_list(b.id, &list("news")).await.expect("another account");
    assert!(matches!(
        lists.create_list(a.id, &list("news")).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(lists.list(a.id, "news").await.expect("get"), Some(list("news")));
    assert_eq!(lists.lists(a.id).await.expect("all").len(), 1);
    // UpdateContactList: description and topics replaced, the other account's list untouched.
    let mut updated = list("news");
    updated.description = "Weekly news".into();
    updated.topics = r#"[{"TopicName":"daily","DefaultSubscriptionStatus":"OPT_OUT"}]"#.into();
    updated.updated_ms = T0 + 9;
    lists.update_list(a.id, &updated).await.expect("update list");
    assert_eq!(lists.list(a.id, "news").await.expect("get"), Some(updated.clone()));
    assert_eq!(lists.list(b.id, "news").await.expect("b's"), Some(list("news")));
    assert!(matches!(
        lists.update_list(a.id, &list("ghost")).await,
        Err(StoreError::NotFound)
    ));

    lists
        .create_contact(a.id, &contact("news", "r@example.org", "{}", 0))
        .await
        .expect("contact");
    lists
        .create_contact(a.id, &contact("news", "q@example.org", r#"{"weekly":"OPT_OUT"}"#, 0))
        .await
        .expect("contact");
    assert!(matches!(
        lists
            .create_contact(a.id, &contact("news", "r@example.org", "{}", 0))
            .await,
        Err(StoreError::Conflict(_))
    ));
    let mut changed = contact("news", "r@example.org", r#"{"weekly":"OPT_OUT"}"#, 1);
    changed.updated_ms = T0 + 5;
    lists.update_contact(a.id, &changed).await.expect("update");
    let got = lists
        .contact(a.id, "news", "r@example.org")
        .await
        .expect("get")
        .expect("some");
    assert_eq!((got.unsubscribe_all, got.updated_ms, got.created_ms), (1, T0 + 5, T0));
    assert!(matches!(
        lists
            .update_contact(a.id, &contact("news", "z@example.org", "{}", 0))
            .await,
        Err(StoreError::NotFound)
    ));
    let emails: Vec<String> = lists
        .contacts(a.id, "news")
        .await
        .expect("list")
        .into_iter()
        .map(|c| c.email)
        .collect();
    assert_eq!(emails, ["q@example.org", "r@example.org"]);
    assert!(lists.contacts(b.id, "news").await.expect("b").is_empty());
    lists
        .delete_contact(a.id, "news", "q@example.org")
        .await
        .expect("delete");
    assert!(matches!(
        lists.delete_contact(a.id, "news", "q@example.org").await,
        Err(StoreError::NotFound)
    ));
    lists.delete_list(a.id, "news").await.expect("delete list");
    assert!(
        lists
            .contact(a.id, "news", "r@example.org")
            .await
            .expect("gone")
            .is_none()
    );
    assert!(matches!(
        lists.delete_list(a.id, "news").await,
        Err(StoreError::NotFound)
    ));
    assert!(lists.list(b.id, "news").await.expect("b's").is_some());
}
