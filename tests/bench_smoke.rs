//! The load tool must not rot: `mailpush-bench run` in self-contained mode (its own `mailpush serve`, testkit
//! DNS and sink) pushes a few hundred mails over the HTTP API (with trigger mail mixed in) and over SMTP, and
//! every one reaches the sink. Nothing here is about speed: no figure is asserted, only that the report is
//! complete. The scaled-out run (two `mailpush-api`, two `mailpush-worker` on PostgreSQL) needs
//! `MAILPUSH_TEST_POSTGRES_URL` and is skipped with a notice without it.

use mailpush_suite::{bin_path, say_skipped};

async fn run_bench(args: &[&str]) -> serde_json::Value {
    let out = tokio::process::Command::new(bin_path("mailpush-bench"))
        .env("MAILPUSH_BIN_DIR", bin_path("mailpush").parent().expect("bin dir"))
        .arg("run")
        .args(args)
        .arg("--json")
        .kill_on_drop(true)
        .output()
        .await
        .expect("run mailpush-bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "mailpush-bench {args:?} failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout.lines().last().expect("a report line");
    serde_json::from_str(line).expect("the report is JSON")
}

fn assert_complete(r: &serde_json::Value, mails: u64) {
    assert_eq!(r["accepted"], mails, "{r}");
    assert_eq!(r["delivered"], mails, "{r}");
    assert_eq!(r["refused_or_failed"], 0, "{r}");
    for key in [
        "accepted_per_sec",
        "api_latency_ms_p99",
        "delivered_per_sec",
        "e2e_ms_p99",
        "cpu_seconds_per_1000",
        "server_peak_rss_mb",
    ] {
        assert!(r[key].as_f64().is_some_and(|v| v.is_finite() && v >= 0.0), "{key}: {r}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_tool_http_with_trigger_mail_end_to_end() {
    let r = run_bench(&[
        "--mode",
        "http",
        "--mails",
        "300",
        "--clients",
        "8",
        "--trigger-every",
        "10",
    ])
    .await;
    assert_complete(&r, 300);
    assert_eq!(r["trigger_mails"], 30, "{r}");
    assert!(r["e2e_trigger_ms_p99"].as_f64().is_some_and(f64::is_finite), "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_tool_smtp_end_to_end_with_rsa_dkim() {
    let r = run_bench(&[
        "--mode",
        "smtp",
        "--mails",
        "200",
        "--clients",
        "4",
        "--dkim",
        "rsa2048",
    ])
    .await;
    assert_complete(&r, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_tool_smtp_with_a_new_connection_per_mail_and_big_mail() {
    let r = run_bench(&[
        "--mode",
        "smtp",
        "--mails",
        "100",
        "--clients",
        "4",
        "--new-connection",
        "--body-bytes",
        "102400",
    ])
    .await;
    assert_complete(&r, 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_tool_spreads_http_over_two_api_nodes_on_postgres() {
    let Ok(url) = std::env::var("MAILPUSH_TEST_POSTGRES_URL") else {
        say_skipped("the scaled-out load tool run needs MAILPUSH_TEST_POSTGRES_URL (PostgreSQL)");
        return;
    };
    let r = run_bench(&[
        "--mode",
        "http",
        "--mails",
        "200",
        "--clients",
        "4",
        "--api-nodes",
        "2",
        "--worker-nodes",
        "2",
        "--database-url",
        &url,
    ])
    .await;
    assert_complete(&r, 200);
    assert_eq!(
        (r["api_nodes"].as_u64(), r["worker_nodes"].as_u64()),
        (Some(2), Some(2)),
        "{r}"
    );
}
