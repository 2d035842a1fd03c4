//! Conformance cases for the per-account screening settings, run against SQLite and, when
//! `MAILPUSH_TEST_POSTGRES_URL` is set, PostgreSQL (same harness as `conformance.rs`).

use mailpush_store::ScreeningPolicy;

const T0: i64 = 1_700_000_000_000;

#[macro_use]
mod common;
use common::Ctx;

conformance!(screening_policy_defaults_and_updates);

async fn screening_policy_defaults_and_updates(ctx: Ctx) {
    let store = ctx.store.clone();
    let screening = store.screening();
    let a = common::account(&store, "a", T0).await.id;
    let b = common::account(&store, "b", T0).await.id;
    assert_eq!(
        screening.screening_policy(a).await.expect("policy"),
        ScreeningPolicy::default(),
        "no threshold and no review of custom content by default"
    );
    let p = ScreeningPolicy {
        min_score: Some(6.5),
        review_content: true,
    };
    screening.set_screening_policy(a, p).await.expect("set");
    assert_eq!(screening.screening_policy(a).await.expect("policy"), p);
    assert_eq!(
        screening.screening_policy(b).await.expect("policy"),
        ScreeningPolicy::default()
    );
    let cleared = ScreeningPolicy {
        min_score: None,
        review_content: false,
    };
    screening.set_screening_policy(a, cleared).await.expect("set again");
    assert_eq!(screening.screening_policy(a).await.expect("policy"), cleared);
}
