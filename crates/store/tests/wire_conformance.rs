//! Conformance cases for what the wire APIs keep (migration 0020) and read: `GetAbuseReport`'s filtered complaints,
//! the sending domains' tags, SES v2 template names and suppression reasons; on SQLite and (with
//! `MAILPUSH_TEST_POSTGRES_URL`) PostgreSQL.

use mailpush_model::{EventKind, MessageId};
use mailpush_store::{AbuseFilter, AbuseRow, Account, IdentityTag, NewEvent, NewMessage, SesTemplateRow, Store};

const T0: i64 = 1_764_158_400_000;

#[macro_use]
mod common;
use common::{Ctx, DAY};

conformance!(
    abuse_reports_filter_and_carry_the_mail,
    identity_tags_are_replaced_per_domain,
    ses_names_and_suppression_reasons,
);

async fn sent(store: &Store, account: &Account, from: &str, to: &str, template_id: i64) -> MessageId {
    let id = MessageId::generate();
    store
        .queue()
        .enqueue(NewMessage {
            id: id.clone(),
            subject: format!("to {to}"),
            template_id,
            ..common::message(account.id, from, T0, T0 + DAY, vec![common::to(to)])
        })
        .await
        .expect("enqueue");
    store
        .events()
        .record_events(&[NewEvent {
            reason: "abuse".into(),
            ..common::event(account.id, &id, to, EventKind::SpamReport, T0 + 1000)
        }])
        .await
        .expect("complaint");
    id
}

/// The account's complaints that `filter` selects, one page, and how many in all.
async fn reports(store: &Store, account: &Account, filter: &AbuseFilter) -> (Vec<AbuseRow>, i64) {
    store.abuse().abuse_reports(account.id, filter).await.expect("report")
}

async fn abuse_reports_filter_and_carry_the_mail(ctx: Ctx) {
    let store = &ctx.store;
    let a = common::account(store, "a", T0).await;
    let b = common::account(store, "b", T0).await;
    let first = sent(store, &a, "News@Shop.example.com", "x@gmail.com", 7).await;
    sent(store, &a, "info@other.example.com", "y@qq.com", 0).await;
    sent(store, &b, "b@b.example.com", "x@gmail.com", 0).await;
    let all = AbuseFilter {
        from_ms: T0,
        to_ms: T0 + DAY,
        template_id: -1,
        limit: 10,
        ..AbuseFilter::default()
    };
    let (rows, total) = reports(store, &a, &all).await;
    assert_eq!(
        (rows.len(), total),
        (2, 2),
        "another account's complaints are not listed"
    );
    let with = |change: &dyn Fn(&mut AbuseFilter)| {
        let mut filter = all.clone();
        change(&mut filter);
        filter
    };
    for (filter, want) in [
        (with(&|f| f.from_domain = "shop.example.com".into()), 1),
        (with(&|f| f.from_address = "news@shop.example.com".into()), 1),
        (with(&|f| f.recipient_domain = "qq.com".into()), 1),
        (with(&|f| f.recipient = "x@gmail.com".into()), 1),
        (with(&|f| f.template_id = 7), 1),
        (with(&|f| f.template_id = 8), 0),
        (with(&|f| (f.from_ms, f.to_ms) = (T0 + DAY, T0 + 2 * DAY)), 0),
    ] {
        let (rows, total) = reports(store, &a, &filter).await;
        assert_eq!((rows.len() as i64, total), (want, want), "{filter:?}");
    }
    let (rows, _) = reports(store, &a, &with(&|f| f.template_id = 7)).await;
    let r = &rows[0];
    assert_eq!(r.message_id, first);
    assert_eq!(
        (r.recipient.as_str(), r.subject.as_str()),
        ("x@gmail.com", "to x@gmail.com")
    );
    assert_eq!((r.template_id, r.request_ms, r.complained_ms), (7, T0, T0 + 1000));
    assert_eq!(r.deliver_ms, None, "not delivered yet");
    let (page, total) = reports(store, &a, &with(&|f| (f.limit, f.offset) = (1, 1))).await;
    assert_eq!((page.len(), total), (1, 2));
}

async fn identity_tags_are_replaced_per_domain(ctx: Ctx) {
    let store = &ctx.store;
    let a = common::account(store, "a", T0).await;
    let b = common::account(store, "b", T0).await;
    let tag = |k: &str, v: &str| IdentityTag {
        key: k.into(),
        value: v.into(),
    };
    store
        .identity_tags()
        .set_identity_tags(
            a.id,
            "x.example.com",
            &[tag("team", "a"), tag("env", "prod"), tag("team", "b")],
        )
        .await
        .expect("set");
    store
        .identity_tags()
        .set_identity_tags(b.id, "y.example.com", &[tag("k", "v")])
        .await
        .expect("set b");
    let tags = store.identity_tags().identity_tags(a.id).await.expect("tags");
    assert_eq!(tags.len(), 1, "only the account's own domains");
    assert_eq!(
        tags["x.example.com"],
        vec![tag("env", "prod"), tag("team", "b")],
        "one value per key, the last wins"
    );
    store
        .identity_tags()
        .set_identity_tags(a.id, "x.example.com", &[])
        .await
        .expect("clear");
    assert!(
        store
            .identity_tags()
            .identity_tags(a.id)
            .await
            .expect("tags")
            .is_empty()
    );
}

async fn ses_names_and_suppression_reasons(ctx: Ctx) {
    let store = &ctx.store;
    let names = store.ses_names();
    let a = common::account(store, "a", T0).await;
    let b = common::account(store, "b", T0).await;
    let row = SesTemplateRow {
        name: "welcome".into(),
        template_id: 3,
        subject: "Hi {{name}}".into(),
        created_ms: T0,
    };
    names.put_ses_template(a.id, &row).await.expect("put");
    names
        .put_ses_template(
            a.id,
            &SesTemplateRow {
                subject: "Hello".into(),
                ..row.clone()
            },
        )
        .await
        .expect("replace");
    let rows = names.ses_templates(a.id).await.expect("list");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].subject, "Hello");
    assert!(names.ses_templates(b.id).await.expect("list b").is_empty());
    assert!(!names.delete_ses_template(b.id, "welcome").await.expect("not b's"));
    assert!(names.delete_ses_template(a.id, "welcome").await.expect("delete"));
    assert!(names.ses_templates(a.id).await.expect("list").is_empty());

    names
        .set_suppression_reason(a.id, "x@example.org", Some("BOUNCE"))
        .await
        .expect("set");
    names
        .set_suppression_reason(a.id, "x@example.org", Some("COMPLAINT"))
        .await
        .expect("replace");
    assert_eq!(
        names.suppression_reasons(a.id).await.expect("reasons"),
        vec![("x@example.org".to_string(), "COMPLAINT".to_string())]
    );
    assert!(names.suppression_reasons(b.id).await.expect("b").is_empty());
    names
        .set_suppression_reason(a.id, "x@example.org", None)
        .await
        .expect("forget");
    assert!(names.suppression_reasons(a.id).await.expect("reasons").is_empty());
}
