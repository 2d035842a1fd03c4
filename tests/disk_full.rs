//! A full disk under the embedded database: `mailpush serve` keeps its data directory on a small tmpfs that
//! the test fills. SendEmail then answers `ResourceInsufficient` ("the database disk is full") instead of a
//! generic database error, `/readyz` says so (503, `checks.disk = full`), `/metrics` counts it, and once
//! space is freed sends are accepted and readiness returns; whether the body that does not fit goes into
//! SQLite or into the body spool. Mounting a tmpfs needs root: without it the tests are skipped with a notice.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mailpush_suite::*;
use mailpush_testkit::DnsAuthority;
use serde_json::{Value, json};

/// A tmpfs mounted for the test, unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(at).ok()?;
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Tmpfs(at.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Writes `path` until the file system refuses for lack of space.
fn fill(path: &Path) {
    use std::io::Write;
    let mut f = std::fs::File::create(path).expect("filler");
    let chunk = vec![0u8; 16 * 1024];
    while f.write_all(&chunk).and_then(|_| f.sync_data()).is_ok() {}
}

fn mail(to: &str, kb: usize) -> Value {
    json!({
        "FromEmailAddress": "news@brand.example.com",
        "Destination": [to],
        "Subject": "disk",
        "Simple": { "Text": b64("x".repeat(kb * 1024).as_bytes()) },
        "TriggerType": 1,
    })
}

async fn get(http: &reqwest::Client, api: &str, path: &str) -> (u16, String) {
    let r = http
        .get(format!("http://{api}{path}"))
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .expect("answered");
    (r.status().as_u16(), r.text().await.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_is_named_counted_and_reported_by_readiness() {
    full_disk_is_named_counted_and_reported("a_full_disk_is_named_counted_and_reported_by_readiness", true).await;
}

/// The same when the body that does not fit goes to the body spool (large, and not retained), not into SQLite.
#[tokio::test]
async fn a_full_disk_under_the_body_spool_is_named_counted_and_reported_too() {
    full_disk_is_named_counted_and_reported(
        "a_full_disk_under_the_body_spool_is_named_counted_and_reported_too",
        false,
    )
    .await;
}

/// Fills the disk under `mailpush serve` and checks the answers; `retain_bodies` keeps every body in SQLite.
async fn full_disk_is_named_counted_and_reported(test: &str, retain_bodies: bool) {
    let dir = temp_dir();
    let Some(mnt) = Tmpfs::mount(&dir.path().join("data"), "24m") else {
        say_skipped(&format!("{test} needs to mount a tmpfs (root)"));
        return;
    };
    let dns = DnsAuthority::start().await.expect("dns");
    let sink = mailpush_testkit::SinkMx::start_default().await.expect("sink");
    dns.add_mx("dest.example.net", 10, "mx.dest.example.net");
    dns.add_a("mx.dest.example.net", std::net::Ipv4Addr::LOCALHOST);
    let env = base_env(
        &mnt.0,
        &[
            ("MAILPUSH_DNS_SERVERS", dns.addr().to_string()),
            ("MAILPUSH_DELIVERY_PORT", sink.addr().port().to_string()),
            ("MAILPUSH_RETAIN_BODIES", if retain_bodies { "1" } else { "0" }.into()),
        ],
    );
    let creds = create_account(&env, "brand").await;
    mailpush_cli(&env, &["account", "set", "brand", "--sends-per-second", "100000"]).await;
    let server = ServerProcess::start("mailpush", &["serve"], &env).await;
    let client = ApiClient::new(&server.api_addr, &creds);
    let http = reqwest::Client::new();
    verified_sender(&client, &dns, "news@brand.example.com").await;
    let r = client.call("SendEmail", &mail("first@dest.example.net", 1)).await;
    assert!(r.get("Error").is_none(), "{r}");
    assert_eq!(get(&http, &server.api_addr, "/readyz").await.0, 200);

    let filler = mnt.0.join("filler");
    fill(&filler);
    // Writes fail once the database's own free pages and WAL room are used up.
    let mut refusal = None;
    for i in 0..200 {
        let r = client
            .call("SendEmail", &mail(&format!("r{i}@dest.example.net"), 256))
            .await;
        if let Some(code) = ApiClient::error_code(&r) {
            refusal = Some((code, r["Error"]["Message"].as_str().unwrap_or("").to_string()));
            break;
        }
    }
    let (code, message) = refusal.expect("a full disk refuses a send");
    assert_eq!(code, "ResourceInsufficient", "{message}");
    assert!(message.contains("the database disk is full"), "{message}");

    let started = Instant::now();
    loop {
        let (status, body) = get(&http, &server.api_addr, "/readyz").await;
        if status == 503 {
            let v: Value = serde_json::from_str(&body).expect("JSON");
            assert_eq!(v["checks"]["disk"], "full", "{body}");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "/readyz still {status}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let metrics = metrics_until(&server.api_addr, |m| !m.contains("mailpush_db_disk_full_total 0")).await;
    let count: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("mailpush_db_disk_full_total "))
        .and_then(|n| n.trim().parse().ok())
        .expect("the disk-full counter is exported");
    assert!(count >= 1, "{metrics}");

    // Room again: sends are accepted and readiness returns.
    std::fs::remove_file(&filler).expect("free space");
    let r = client.call("SendEmail", &mail("after@dest.example.net", 1)).await;
    assert!(r.get("Error").is_none(), "{r}");
    if !retain_bodies {
        // The bodies that did not fit were 256 KB: the spool's, as this one's is.
        let r = client.call("SendEmail", &mail("large@dest.example.net", 256)).await;
        assert!(r.get("Error").is_none(), "{r}");
        let segments = std::fs::read_dir(mnt.0.join("mailpush.db-spool"))
            .expect("the body spool beside the database")
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".seg"))
            .count();
        assert!(segments >= 1, "a large body is in a spool segment");
        // And `/metrics` shows the spool's segments and bytes.
        let gauge = |m: &str, name: &str| -> f64 {
            m.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
                .unwrap_or(0.0)
        };
        let metrics = metrics_until(&server.api_addr, |m| {
            gauge(m, "mailpush_body_spool_bytes") >= 256.0 * 1024.0
        })
        .await;
        assert!(gauge(&metrics, "mailpush_body_spool_segments") >= 1.0, "{metrics}");
        assert!(
            gauge(&metrics, "mailpush_body_spool_bytes") >= 256.0 * 1024.0,
            "{metrics}"
        );
    }
    let started = Instant::now();
    while get(&http, &server.api_addr, "/readyz").await.0 != 200 {
        assert!(started.elapsed() < Duration::from_secs(15), "/readyz did not recover");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    server.terminate().await;
}
