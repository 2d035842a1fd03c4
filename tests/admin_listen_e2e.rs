//! The nodes without the API (`mailpush-worker`, `mailpush-smtp`) answer liveness, readiness and metrics on
//! their `admin_listen` address, each started as its own process.

use mailpush_suite::*;

async fn get(addr: &str, path: &str) -> (u16, String) {
    let r = reqwest::get(format!("http://{addr}{path}")).await.expect("GET");
    let status = r.status().as_u16();
    (status, r.text().await.expect("body"))
}

async fn scrape_node(binary: &str, extra: &[(&str, String)]) {
    let dir = temp_dir();
    let mut vars = vec![("MAILPUSH_ADMIN_LISTEN", "127.0.0.1:0".to_string())];
    vars.extend(extra.iter().cloned());
    let env = base_env(dir.path(), &vars);
    let node = ServerProcess::start(binary, &[], &env).await;
    let admin = node.api_addr.clone();
    assert!(
        node.announced.iter().any(|l| l.contains("admin listening on http://")),
        "{binary}: {:?}",
        node.announced
    );
    let (status, body) = get(&admin, "/livez").await;
    assert_eq!(status, 200, "{binary} /livez: {body}");
    let (status, body) = get(&admin, "/readyz").await;
    assert_eq!(status, 200, "{binary} /readyz: {body}");
    assert!(body.contains("\"ok\""), "{binary} /readyz: {body}");
    let (status, body) = get(&admin, "/metrics").await;
    assert_eq!(status, 200, "{binary} /metrics");
    assert!(body.contains("mailpush_"), "{binary} /metrics: {body}");
    // Only health and metrics: the action API is not served here.
    let r = reqwest::Client::new()
        .post(format!("http://{admin}/"))
        .body("{}")
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status().as_u16(), 404, "{binary}: no action API");
    node.terminate().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_node_answers_health_and_metrics() {
    scrape_node("mailpush-worker", &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_smtp_node_answers_health_and_metrics() {
    scrape_node("mailpush-smtp", &[("MAILPUSH_SMTP_LISTEN", "127.0.0.1:0".to_string())]).await;
}
