//! HTTPS on the API listener (`api_tls_cert` / `api_tls_key`): the official Python SDK, left on its default
//! protocol (https) and given the test's certificate as its CA bundle, signs and sends requests; the listener
//! negotiates TLS 1.2 and 1.3; after the files are replaced and the process gets SIGHUP, new connections get
//! the new certificate. Skipped (with a note) when the SDK is not installed, unless
//! MAILPUSH_REQUIRE_PYTHON_SDK=1 (CI sets it).

use mailpush_suite::*;
use std::path::Path;
use std::time::Duration;

/// A self-signed certificate for `localhost`, written as PEM to `cert` and `key`.
fn write_certificate(cert: &Path, key: &Path) {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("generate certificate");
    std::fs::write(cert, ck.cert.pem()).expect("write cert");
    std::fs::write(key, ck.signing_key.serialize_pem()).expect("write key");
}

async fn run_sdk(endpoint: &str, ca: &Path, creds: &Credentials) -> Result<serde_json::Value, String> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sdk/https_with_sdk.py");
    let out = tokio::process::Command::new("python3")
        .arg(script)
        .env("MAILPUSH_ENDPOINT", endpoint)
        .env("CA", ca)
        .env("SECRET_ID", &creds.secret_id)
        .env("SECRET_KEY", &creds.secret_key)
        .output()
        .await
        .expect("run python");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_sdk_talks_https_and_a_new_certificate_is_taken_on_sighup() {
    if !python_sdk_available() {
        return;
    }
    let dir = temp_dir();
    let (cert, key) = (dir.path().join("api-cert.pem"), dir.path().join("api-key.pem"));
    write_certificate(&cert, &key);
    let first_ca = dir.path().join("first-ca.pem");
    std::fs::copy(&cert, &first_ca).expect("keep the first certificate");
    let env = base_env(
        dir.path(),
        &[
            ("MAILPUSH_API_TLS_CERT", cert.display().to_string()),
            ("MAILPUSH_API_TLS_KEY", key.display().to_string()),
        ],
    );
    let creds = create_account(&env, "tls").await;
    let server = ServerProcess::start("mailpush", &["serve"], &env).await;
    assert!(
        server.announced.iter().any(|l| l.contains("listening on https://")),
        "{:?}",
        server.announced
    );
    let port = server.api_addr.rsplit(':').next().expect("port").to_string();
    let endpoint = format!("localhost:{port}");

    let v = run_sdk(&endpoint, &first_ca, &creds).await.expect("the SDK over HTTPS");
    assert_eq!(v["Identities"], 0, "{v}");
    assert!(
        v["ErrorCode"].as_str().is_some_and(|c| !c.is_empty()),
        "a refusal keeps its code: {v}"
    );
    assert_eq!(v["Tls"], serde_json::json!(["TLSv1.2", "TLSv1.3"]), "{v}");
    // Plain HTTP gets no API answer on the TLS listener.
    let plain = reqwest::Client::new()
        .get(format!("http://{}/livez", server.api_addr))
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    assert!(plain.is_err() || !plain.is_ok_and(|r| r.status().is_success()));

    // A renewed certificate: replace the files, SIGHUP, and new connections present it.
    write_certificate(&cert, &key);
    let pid = server.child.id().expect("pid").to_string();
    let status = std::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .expect("kill -HUP");
    assert!(status.success());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        match run_sdk(&endpoint, &cert, &creds).await {
            Ok(v) => {
                assert_eq!(v["Identities"], 0, "{v}");
                break;
            }
            Err(e) => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "the new certificate is not served: {e}"
                );
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        }
    }
    let old = run_sdk(&endpoint, &first_ca, &creds).await;
    assert!(old.is_err(), "the old certificate is no longer served: {old:?}");
    // The process is still serving after the reload.
    let v = run_sdk(&endpoint, &cert, &creds).await.expect("still serving");
    assert_eq!(v["Identities"], 0);
    server.terminate().await;
}
