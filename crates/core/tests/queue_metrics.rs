//! The queue gauges of `/metrics` through the real `Mailpush` facade with a controllable clock, on SQLite (and
//! on PostgreSQL when `MAILPUSH_TEST_POSTGRES_URL` is set, in a schema of its own): every refresh counts the
//! waiting deliveries; the final ones, whose count reads the whole retained history, are counted at the first
//! refresh and then every five minutes.

use mailpush_model::{Clock, TriggerType};
use mailpush_store::{AttemptResult, ClaimRequest};

mod common;
use common::World;

async fn send(w: &World, to: &str) {
    let req = common::simple_mail("news@sender.test", &[to.to_string()], TriggerType::Trigger);
    w.core.send_email(&w.account, req).await.expect("send");
}

/// Claims every due delivery and records it as delivered.
async fn deliver_all(w: &World) {
    let claimed = w
        .store
        .queue()
        .claim(ClaimRequest {
            worker: "w".into(),
            limit: 100,
            lease_ms: 60_000,
            now_ms: w.clock.now_ms(),
        })
        .await
        .expect("claim");
    assert!(!claimed.is_empty());
    common::settle(&w.store, &w.clock, &claimed, |_| AttemptResult::Delivered {
        reply: "250 ok".into(),
    })
    .await;
}

/// `mailpush_queue_deliveries{state}` as the last refresh set it.
async fn gauges(w: &World) -> (f64, f64) {
    w.core.refresh_metrics().await.expect("refresh");
    let scrape = mailpush_telemetry::render();
    let gauge = |state: &str| -> f64 {
        let prefix = format!("mailpush_queue_deliveries{{state=\"{state}\"}} ");
        scrape
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("no {prefix} in\n{scrape}"))
            .parse()
            .expect("a number")
    };
    (gauge("pending"), gauge("done"))
}

async fn final_count_every_five_minutes(url: Option<String>) {
    mailpush_telemetry::install();
    let w = common::world(url, &["sender.test"], |_| {}).await;
    send(&w, "a@dest.test").await;
    deliver_all(&w).await;
    send(&w, "b@dest.test").await;
    assert_eq!(gauges(&w).await, (1.0, 1.0), "the first refresh counts both");

    deliver_all(&w).await;
    send(&w, "c@dest.test").await;
    send(&w, "d@dest.test").await;
    w.clock.advance(299_999);
    assert_eq!(
        gauges(&w).await,
        (2.0, 1.0),
        "the waiting ones are counted again, the final ones not yet"
    );

    w.clock.advance(1);
    assert_eq!(gauges(&w).await, (2.0, 2.0), "five minutes on, the final ones too");
}

/// One test for both backends: the gauges live in the process's one recorder, so two tests run side by side in
/// one process (`cargo test`) would read each other's refreshes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_final_count_runs_every_five_minutes_on_both_backends() {
    final_count_every_five_minutes(None).await;
    mailpush_testkit::postgres::on_schema("queue_metrics", |url| final_count_every_five_minutes(Some(url))).await;
}
