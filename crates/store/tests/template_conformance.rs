//! Conformance cases for templates and account content permissions, run against SQLite (a fresh file per
//! test) and, when `MAILPUSH_TEST_POSTGRES_URL` is set, PostgreSQL in a schema of its own. Same harness as
//! `conformance.rs` (tests/common), cases kept in their own file so the suites grow independently.

use mailpush_store::{AccountPolicy, NewTemplate, Store, StoreError, StoredTemplate, TemplateContent, TemplateStatus};

const T0: i64 = 1_700_000_000_000;

#[macro_use]
mod common;
use common::Ctx;

conformance!(
    account_policy_defaults_and_updates,
    template_crud_scoped_by_account,
    template_limit_per_account,
    template_ids_never_reused,
    admin_review_queue_fenced_by_version,
);

/// Creates `t` under a limit of 10 templates per account; it must be created.
async fn create(store: &Store, t: NewTemplate) -> StoredTemplate {
    store
        .templates()
        .create_template(t, 10)
        .await
        .expect("create")
        .expect("created under the limit")
}

fn new_template(account: i64, name: &str, status: TemplateStatus) -> NewTemplate {
    NewTemplate {
        account_id: account,
        content: TemplateContent {
            name: name.into(),
            category: "notification".into(),
            html: Some(format!("<p>{name} {{{{x}}}}</p>")),
            text: None,
            status,
            review_reason: String::new(),
            now_ms: T0,
        },
    }
}

async fn account_policy_defaults_and_updates(ctx: Ctx) {
    let store = ctx.store.clone();
    let templates = store.templates();
    let a = common::account(&store, "a", T0).await;
    assert_eq!(
        templates.account_policy(a.id).await.expect("policy"),
        Some(AccountPolicy::default()),
        "no Simple content and no links by default"
    );
    let p = AccountPolicy {
        allow_simple_content: true,
        allow_links: false,
    };
    templates.set_account_policy(a.id, p).await.expect("set");
    assert_eq!(templates.account_policy(a.id).await.expect("policy"), Some(p));
    assert_eq!(templates.account_policy(a.id + 100).await.expect("policy"), None);
    assert!(matches!(
        templates.set_account_policy(a.id + 100, p).await,
        Err(StoreError::NotFound)
    ));
    // The existing account columns are untouched.
    assert!(
        !store
            .accounts()
            .account(a.id)
            .await
            .expect("account")
            .expect("exists")
            .suspended
    );
}

async fn template_crud_scoped_by_account(ctx: Ctx) {
    let store = ctx.store.clone();
    let templates = store.templates();
    let a = common::account(&store, "a", T0).await;
    let b = common::account(&store, "b", T0).await;
    let t1 = create(&store, new_template(a.id, "one", TemplateStatus::Approved)).await;
    assert_eq!((t1.version, t1.created_ms, t1.updated_ms), (1, T0, T0));
    assert_eq!(t1.html.as_deref(), Some("<p>one {{x}}</p>"));
    assert_eq!(t1.text, None);
    let mut t2 = new_template(a.id, "两个", TemplateStatus::Rejected);
    t2.content.review_reason = "[min_text_length] too short".into();
    t2.content.text = Some("纯文本".into());
    let t2 = create(&store, t2).await;
    create(&store, new_template(b.id, "other", TemplateStatus::Approved)).await;

    // Reads are scoped: b cannot see a's template.
    assert_eq!(templates.template(a.id, t1.id).await.expect("get"), Some(t1.clone()));
    assert_eq!(templates.template(b.id, t1.id).await.expect("get"), None);
    assert_eq!(templates.template_summary(b.id, t1.id).await.expect("get"), None);
    let s = templates
        .template_summary(a.id, t2.id)
        .await
        .expect("get")
        .expect("exists");
    assert_eq!((s.name.as_str(), s.status), ("两个", TemplateStatus::Rejected));
    assert_eq!(s.review_reason, "[min_text_length] too short");

    // Listing: newest first, paged, total over all pages.
    let page = templates.list_templates(a.id, 0, 1).await.expect("list");
    assert_eq!(page.total, 2);
    assert_eq!(page.templates.iter().map(|t| t.id).collect::<Vec<_>>(), vec![t2.id]);
    let page = templates.list_templates(a.id, 1, 100).await.expect("list");
    assert_eq!(page.templates.iter().map(|t| t.id).collect::<Vec<_>>(), vec![t1.id]);
    assert_eq!(templates.list_templates(b.id, 0, 100).await.expect("list").total, 1);

    // Update: scoped, bumps the version, replaces the review state.
    let edit = TemplateContent {
        name: "one v2".into(),
        category: "marketing".into(),
        html: None,
        text: Some("text only".into()),
        status: TemplateStatus::Reviewing,
        review_reason: String::new(),
        now_ms: T0 + 5,
    };
    assert_eq!(
        templates
            .update_template(b.id, t1.id, edit.clone())
            .await
            .expect("update"),
        None
    );
    let u = templates
        .update_template(a.id, t1.id, edit)
        .await
        .expect("update")
        .expect("exists");
    assert_eq!((u.version, u.created_ms, u.updated_ms), (2, T0, T0 + 5));
    assert_eq!((u.html, u.text.as_deref()), (None, Some("text only")));
    assert_eq!(
        (u.status, u.category.as_str()),
        (TemplateStatus::Reviewing, "marketing")
    );

    // Delete: scoped.
    assert!(!templates.delete_template(b.id, t1.id).await.expect("delete"));
    assert!(templates.delete_template(a.id, t1.id).await.expect("delete"));
    assert!(!templates.delete_template(a.id, t1.id).await.expect("delete again"));
    assert_eq!(templates.template(a.id, t1.id).await.expect("get"), None);
    assert_eq!(templates.list_templates(a.id, 0, 100).await.expect("list").total, 1);
}

async fn template_limit_per_account(ctx: Ctx) {
    let store = ctx.store.clone();
    let templates = store.templates();
    let a = common::account(&store, "a", T0).await;
    let b = common::account(&store, "b", T0).await;
    // Concurrent creates never exceed the limit.
    let mut tasks = Vec::new();
    for i in 0..12 {
        let store = store.clone();
        let t = new_template(a.id, &format!("t{i}"), TemplateStatus::Approved);
        tasks.push(tokio::spawn(
            async move { store.templates().create_template(t, 5).await },
        ));
    }
    let mut created = 0;
    for t in tasks {
        if t.await.expect("task").expect("create").is_some() {
            created += 1;
        }
    }
    assert_eq!(created, 5);
    assert_eq!(templates.list_templates(a.id, 0, 100).await.expect("list").total, 5);
    // The limit is per account.
    assert!(
        templates
            .create_template(new_template(b.id, "b", TemplateStatus::Approved), 5)
            .await
            .expect("create")
            .is_some()
    );
    // Unknown account.
    assert!(matches!(
        templates
            .create_template(new_template(a.id + 100, "x", TemplateStatus::Approved), 5)
            .await,
        Err(StoreError::Invalid(_))
    ));
}

async fn template_ids_never_reused(ctx: Ctx) {
    let store = ctx.store.clone();
    let a = common::account(&store, "a", T0).await;
    let t = create(&store, new_template(a.id, "x", TemplateStatus::Approved)).await;
    assert!(store.templates().delete_template(a.id, t.id).await.expect("delete"));
    let t2 = create(&store, new_template(a.id, "y", TemplateStatus::Approved)).await;
    assert!(t2.id > t.id, "an id (a cache key) must never come back after a delete");
}

async fn admin_review_queue_fenced_by_version(ctx: Ctx) {
    let store = ctx.store.clone();
    let templates = store.templates();
    let a = common::account(&store, "a", T0).await;
    let b = common::account(&store, "b", T0).await;
    let pa = create(&store, new_template(a.id, "pa", TemplateStatus::Reviewing)).await;
    let pb = create(&store, new_template(b.id, "pb", TemplateStatus::Reviewing)).await;
    create(&store, new_template(b.id, "ok", TemplateStatus::Approved)).await;
    let pending = templates
        .admin_list_templates(Some(TemplateStatus::Reviewing))
        .await
        .expect("pending");
    assert_eq!(pending.iter().map(|t| t.id).collect::<Vec<_>>(), vec![pa.id, pb.id]);
    assert_eq!(templates.admin_list_templates(None).await.expect("all").len(), 3);
    assert_eq!(
        templates
            .admin_template(pb.id)
            .await
            .expect("get")
            .map(|t| t.account_id),
        Some(b.id)
    );

    // Approve the version the operator saw.
    assert!(
        templates
            .admin_set_template_review(pa.id, 1, TemplateStatus::Approved, "")
            .await
            .expect("approve")
    );
    // The account edits pb after the operator looked: approving the old version does nothing.
    templates
        .update_template(
            b.id,
            pb.id,
            TemplateContent {
                name: "pb".into(),
                category: "notification".into(),
                html: Some("<p>new</p>".into()),
                text: None,
                status: TemplateStatus::Reviewing,
                review_reason: String::new(),
                now_ms: T0 + 1,
            },
        )
        .await
        .expect("update")
        .expect("exists");
    assert!(
        !templates
            .admin_set_template_review(pb.id, 1, TemplateStatus::Approved, "")
            .await
            .expect("stale approve")
    );
    assert!(
        templates
            .admin_set_template_review(pb.id, 2, TemplateStatus::Rejected, "links to a phishing page")
            .await
            .expect("reject")
    );
    let pb = templates.template(b.id, pb.id).await.expect("get").expect("exists");
    assert_eq!(pb.status, TemplateStatus::Rejected);
    assert_eq!(pb.review_reason, "links to a phishing page");
    assert!(
        templates
            .admin_list_templates(Some(TemplateStatus::Reviewing))
            .await
            .expect("pending")
            .is_empty()
    );
}
