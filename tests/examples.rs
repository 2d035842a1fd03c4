//! Every program under `examples/` runs here against a real `mailpush serve` (testkit DNS and sink MX), as its
//! header tells a user to run it: the official SDKs (Python, Node.js), curl with a hand-made TC3 signature,
//! SMTP with swaks, smtplib and lettre, a batch task, a callback receiver that checks signatures, and mailpush
//! embedded in an axum service. Each mail must arrive at the sink. A missing tool skips its example with a
//! `SKIPPED:` line, unless CI's `MAILPUSH_REQUIRE_*` variable for it is set.

use mailpush_suite::*;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::AsyncBufReadExt;

const FROM: &str = "noreply@shop.example.com";
const TO: &str = "reader@example.org";
const SMTP_PASSWORD: &str = "SmtpPassw0rd42";

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples")
}

/// An example binary of this package (`target/<profile>/examples/<name>`, built with the tests).
fn example_bin(name: &str) -> PathBuf {
    bin_path("examples").join(name)
}

/// A served account `shop` with the verified sender [`FROM`] (SMTP password [`SMTP_PASSWORD`]), an SMTP
/// listener, and `extra` settings.
struct Served {
    world: MailWorld,
    server: ServerProcess,
    client: ApiClient,
    creds: Credentials,
}

async fn served(extra: &[(&str, String)]) -> Served {
    let mut vars = vec![("MAILPUSH_SMTP_LISTEN", "127.0.0.1:0".to_string())];
    vars.extend(extra.iter().cloned());
    let world = mail_world(&vars).await;
    let creds = create_account(&world.env, "shop").await;
    let server = ServerProcess::start("mailpush", &["serve"], &world.env).await;
    let client = ApiClient::new(&server.api_addr, &creds);
    verified_sender(&client, &world.dns, FROM).await;
    let r = client
        .call(
            "UpdateEmailSmtpPassWord",
            &json!({ "EmailAddress": FROM, "Password": SMTP_PASSWORD }),
        )
        .await;
    assert!(r.get("Error").is_none(), "{r}");
    Served {
        world,
        server,
        client,
        creds,
    }
}

impl Served {
    /// What the examples read: the endpoint, the key, the sender and the recipient.
    fn api_env(&self) -> HashMap<&'static str, String> {
        HashMap::from([
            ("MAILPUSH_ENDPOINT", self.server.api_addr.clone()),
            ("SECRET_ID", self.creds.secret_id.clone()),
            ("SECRET_KEY", self.creds.secret_key.clone()),
            ("MAIL_FROM", FROM.to_string()),
            ("MAIL_TO", TO.to_string()),
        ])
    }

    /// The SMTP examples' settings, the CA being the certificate `serve` generated.
    fn smtp_env(&self) -> HashMap<&'static str, String> {
        let smtp = self.server.announced_addr("smtp").expect("smtp address announced");
        let (host, port) = smtp.rsplit_once(':').expect("host:port");
        let ca = self.world.dir.path().join("smtp-selfsigned-cert.pem");
        HashMap::from([
            ("SMTP_HOST", host.to_string()),
            ("SMTP_PORT", port.to_string()),
            ("SMTP_USER", FROM.to_string()),
            ("SMTP_PASSWORD", SMTP_PASSWORD.to_string()),
            ("SMTP_CA", ca.display().to_string()),
            ("MAIL_TO", TO.to_string()),
        ])
    }

    /// Waits for `n` mails at the sink, checks their DKIM signatures with every verifier, returns them.
    async fn delivered(&self, n: usize) -> Vec<mailpush_testkit::ReceivedMessage> {
        let msgs = self
            .world
            .sink
            .wait_for_messages(n, Duration::from_secs(60))
            .await
            .expect("delivered to the sink");
        let data: Vec<&[u8]> = msgs.iter().map(|m| m.data.as_slice()).collect();
        assert_dkim_verifies_everywhere(&self.world.dns, &data).await;
        msgs
    }
}

/// Runs `program args…` with `env`; its stdout (the test fails with stderr when it fails).
async fn run<K: AsRef<std::ffi::OsStr>>(program: &Path, args: &[&str], env: &HashMap<K, String>) -> String {
    let out = tokio::process::Command::new(program)
        .args(args)
        .envs(env)
        .output()
        .await
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
    assert!(
        out.status.success(),
        "{} {args:?} failed:\n{}\n{}",
        program.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn json_line(stdout: &str) -> Value {
    let line = stdout.lines().rev().find(|l| l.starts_with('{')).unwrap_or("");
    serde_json::from_str(line).unwrap_or_else(|e| panic!("no JSON ({e}) in {stdout:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_example_sends_and_sees_it_delivered() {
    if !python_sdk_available() {
        return;
    }
    let s = served(&[]).await;
    let script = examples_dir().join("python/send_email.py");
    let out = run(Path::new("python3"), &[&script.display().to_string()], &s.api_env()).await;
    let v = json_line(&out);
    assert!(v["MessageId"].is_string(), "{v}");
    assert_eq!(v["Statuses"][0]["DeliverStatus"], 1, "{v}");
    assert_eq!(v["Statuses"][0]["ToEmailAddress"], TO, "{v}");
    let msgs = s.delivered(1).await;
    assert_eq!(msgs[0].rcpt_to, [TO]);
    s.server.terminate().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_sdk_example_sends() {
    let dir = examples_dir().join("node");
    if !sdk_installed(
        "node",
        &["-e", "require('tencentcloud-sdk-nodejs-ses')"],
        Some(&dir),
        "MAILPUSH_REQUIRE_NODE_SDK",
        "npm ci --prefix examples/node",
    ) {
        return;
    }
    let s = served(&[]).await;
    let out = run(
        Path::new("node"),
        &[&dir.join("send_email.js").display().to_string()],
        &s.api_env(),
    )
    .await;
    let v = json_line(&out);
    assert!(v["MessageId"].as_str().is_some_and(|id| !id.is_empty()), "{v}");
    let msgs = s.delivered(1).await;
    assert!(String::from_utf8_lossy(&msgs[0].data).contains("Hello from Node.js"));
    s.server.terminate().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_example_signs_by_hand_and_sends() {
    for tool in ["curl", "openssl"] {
        if !tool_available(
            tool,
            &["--version"],
            "MAILPUSH_REQUIRE_SWAKS",
            "apt-get install curl openssl",
        ) {
            return;
        }
    }
    let s = served(&[]).await;
    let out = run(&examples_dir().join("curl/send_email.sh"), &[], &s.api_env()).await;
    let v = json_line(&out);
    assert!(v["Response"]["MessageId"].is_string(), "{v}");
    assert!(v["Response"].get("Error").is_none(), "{v}");
    let msgs = s.delivered(1).await;
    assert!(String::from_utf8_lossy(&msgs[0].data).contains("Hello from curl"));
    s.server.terminate().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_examples_submit_with_swaks_smtplib_and_lettre() {
    let s = served(&[]).await;
    let env = s.smtp_env();
    let mut sent = 0;
    if tool_available(
        "swaks",
        &["--version"],
        "MAILPUSH_REQUIRE_SWAKS",
        "apt-get install swaks",
    ) {
        let out = run(&examples_dir().join("smtp/swaks.sh"), &[], &env).await;
        assert!(out.contains("queued as "), "{out}");
        sent += 1;
    }
    if python3_available() {
        let script = examples_dir().join("smtp/smtplib_send.py");
        let out = run(Path::new("python3"), &[&script.display().to_string()], &env).await;
        assert!(!out.trim().is_empty() && !out.contains(' '), "a MessageId: {out:?}");
        sent += 1;
    }
    let out = run(&example_bin("smtp_lettre"), &[], &env).await;
    let id = out.trim().to_string();
    assert!(!id.is_empty(), "a MessageId: {out:?}");
    sent += 1;
    let msgs = s.delivered(sent).await;
    assert!(msgs.iter().all(|m| m.rcpt_to == [TO]));
    let r = s
        .client
        .call(
            "GetSendEmailStatus",
            &json!({ "RequestDate": today(), "MessageId": id, "Offset": 0, "Limit": 10 }),
        )
        .await;
    assert_eq!(r["EmailStatusList"][0]["ToEmailAddress"], TO, "{r}");
    s.server.terminate().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_example_runs_a_task_to_the_end() {
    if !python_sdk_available() {
        return;
    }
    let s = served(&[("MAILPUSH_BATCH_POLL_MS", "100".to_string())]).await;
    let mut env = s.api_env();
    env.insert("MAIL_TO", "ann@example.org,bob@example.org".into());
    let script = examples_dir().join("python/batch_send.py");
    let v = json_line(&run(Path::new("python3"), &[&script.display().to_string()], &env).await);
    assert_eq!(v["TaskStatus"], 10, "{v}");
    assert_eq!(v["RequestCount"], 2, "{v}");
    let msgs = s.delivered(2).await;
    let bodies: Vec<String> = msgs
        .iter()
        .map(|m| String::from_utf8_lossy(&m.data).into_owned())
        .collect();
    assert!(
        bodies.iter().any(|b| b.contains("Dear ann, your order A-1001")),
        "{bodies:?}"
    );
    assert!(
        bodies.iter().any(|b| b.contains("Dear bob, your order A-1001")),
        "{bodies:?}"
    );
    s.server.terminate().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callback_receiver_example_accepts_signed_events_only() {
    if !python3_available() {
        return;
    }
    let s = served(&[("MAILPUSH_CALLBACK_ALLOW_CIDRS", "127.0.0.0/8".to_string())]).await;
    let config = s.client.call("GetCallbackConfig", &json!({})).await;
    let secret = config["CallbackSecret"].as_str().expect("CallbackSecret").to_string();
    let script = examples_dir().join("python/callback_receiver.py");
    let mut receiver = tokio::process::Command::new("python3")
        .args([script.display().to_string(), "127.0.0.1:0".into()])
        .env("CALLBACK_SECRET", &secret)
        .env("EXIT_AFTER", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start the receiver");
    let mut announced = tokio::io::BufReader::new(receiver.stderr.take().expect("stderr")).lines();
    let url = tokio::time::timeout(Duration::from_secs(20), announced.next_line())
        .await
        .expect("the receiver announces itself")
        .expect("stderr")
        .and_then(|l| l.strip_prefix("listening on ").map(str::to_string))
        .expect("its address");
    // A forgery is refused.
    let forged = reqwest::Client::new()
        .post(&url)
        .header("X-Mailpush-Timestamp", unix_now().to_string())
        .header("X-Mailpush-Signature", "v1=00")
        .body("{}")
        .send()
        .await
        .expect("post");
    assert_eq!(forged.status(), 401);
    let r = s
        .client
        .call("SetCallbackUrl", &json!({ "CallbackUrl": format!("{url}mailpush") }))
        .await;
    assert!(r.get("Error").is_none(), "{r}");
    let sent = s
        .client
        .call(
            "SendEmail",
            &json!({ "FromEmailAddress": FROM, "Destination": [TO], "Subject": "callback",
                     "Simple": { "Text": b64(b"hello") } }),
        )
        .await;
    let id = sent["MessageId"].as_str().expect("MessageId").to_string();
    let out = tokio::time::timeout(Duration::from_secs(60), receiver.wait_with_output())
        .await
        .expect("an event within a minute")
        .expect("receiver output");
    assert!(out.status.success());
    let event = json_line(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(event["event"], "delivered", "{event}");
    assert_eq!(event["bulkId"], id.as_str(), "{event}");
    assert_eq!(event["email"], TO, "{event}");
    s.server.terminate().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedding_example_sends_from_its_own_process() {
    let s = served(&[]).await;
    // The example opens the same database: the server that set the account up stops first.
    s.server.terminate().await;
    // Its settings are the server's (`MAILPUSH_*`: data directory, DNS, delivery port, master key).
    let mut env = s.world.env.clone();
    for (k, v) in [
        ("EMBED_ACCOUNT", "shop"),
        ("EMBED_EXIT_WHEN_DELIVERED", "1"),
        ("MAIL_FROM", FROM),
        ("MAIL_TO", TO),
    ] {
        env.insert(k.to_string(), v.to_string());
    }
    let out = run(&example_bin("embed"), &[], &env).await;
    assert!(out.contains("accepted: MessageId "), "{out}");
    assert!(out.contains(&format!("{TO}: Delivered")), "{out}");
    assert!(out.contains("(mailpush's API under /mail/)"), "{out}");
    let msgs = s
        .world
        .sink
        .wait_for_messages(1, Duration::from_secs(30))
        .await
        .expect("delivered");
    assert_dkim_verifies_everywhere(&s.world.dns, &[&msgs[0].data]).await;
}
