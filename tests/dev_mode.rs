//! `mailpush serve --dev` end to end: the printed credentials, a TC3-signed SendEmail and an SMTP submission
//! that both land in the dev mailbox with a passing DKIM signature (verified against the dev DNS), a simulator
//! address that never does, the credentials printed again after a restart, and the refusal of a non-loopback
//! listener; and the README's "Send your first mail" walk-through run as written (swaks, the Python SDK, curl).

use mailpush_suite::*;
use serde_json::{Value, json};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const WAIT: Duration = Duration::from_secs(30);

fn dev_env(dir: &std::path::Path) -> std::collections::HashMap<String, String> {
    base_env(dir, &[("MAILPUSH_SMTP_LISTEN", "127.0.0.1:0".to_string())])
}

/// The JSON line `mailpush: dev credentials {…}`.
fn printed_credentials(server: &ServerProcess) -> Value {
    let line = server
        .announced
        .iter()
        .find_map(|l| l.strip_prefix("mailpush: dev credentials "))
        .unwrap_or_else(|| panic!("no credentials printed: {:?}", server.announced));
    serde_json::from_str(line).expect("credentials JSON")
}

type Reader = BufReader<tokio::net::tcp::OwnedReadHalf>;

async fn reply(r: &mut Reader) -> String {
    let mut all = String::new();
    loop {
        let mut line = String::new();
        r.read_line(&mut line).await.expect("SMTP reply");
        all.push_str(&line);
        if line.len() < 4 || line.as_bytes()[3] == b' ' {
            return all;
        }
    }
}

/// Submits `data` over SMTP with AUTH PLAIN; panics on any unexpected reply.
async fn smtp_submit(addr: &str, user: &str, password: &str, from: &str, to: &str, data: &str) {
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect SMTP");
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r);
    assert!(reply(&mut r).await.starts_with("220"));
    let auth = b64(format!("\0{user}\0{password}").as_bytes());
    for (cmd, code) in [
        ("EHLO client.test\r\n".to_string(), "250"),
        (format!("AUTH PLAIN {auth}\r\n"), "235"),
        (format!("MAIL FROM:<{from}>\r\n"), "250"),
        (format!("RCPT TO:<{to}>\r\n"), "250"),
        ("DATA\r\n".to_string(), "354"),
        (format!("{data}\r\n.\r\n"), "250"),
        ("QUIT\r\n".to_string(), "221"),
    ] {
        w.write_all(cmd.as_bytes()).await.expect("write");
        let got = reply(&mut r).await;
        assert!(got.starts_with(code), "{cmd:?} → {got}");
    }
}

async fn get_json(url: &str) -> Value {
    let r = reqwest::get(url).await.expect("GET");
    assert!(r.status().is_success(), "{url}: {}", r.status());
    r.json().await.expect("JSON")
}

/// `name=value` of a `Set-Cookie` named `name`.
fn set_cookie(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(|v| v.split(';').next().unwrap_or_default().to_string())
}

/// Signs in to the console; returns the session cookie (`mp_session=…`).
async fn console_session(console: &str, user: &str, password: &str) -> String {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let form = http.get(format!("{console}/login")).send().await.expect("login form");
    let csrf = set_cookie(&form, "mp_login_csrf").expect("login CSRF cookie");
    let token = csrf.trim_start_matches("mp_login_csrf=").to_string();
    let r = http
        .post(format!("{console}/login"))
        .header("cookie", &csrf)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("username={user}&password={password}&_csrf={token}"))
        .send()
        .await
        .expect("sign in");
    set_cookie(&r, "mp_session").unwrap_or_else(|| panic!("no session: {}", r.status()))
}

async fn console_get(url: &str, session: &str) -> String {
    let r = reqwest::Client::new()
        .get(url)
        .header("cookie", session)
        .header("accept-language", "zh-CN")
        .send()
        .await
        .expect("console page");
    assert!(r.status().is_success(), "{url}: {}", r.status());
    r.text().await.expect("page")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_mode_sends_into_its_mailbox_with_dkim() {
    let dir = temp_dir();
    let env = dev_env(dir.path());
    let server = ServerProcess::start("mailpush", &["serve", "--dev"], &env).await;
    assert!(
        server.announced[0].contains("DEV MODE"),
        "the first line says dev mode: {:?}",
        server.announced
    );
    let printed = printed_credentials(&server);
    let creds = Credentials {
        app_id: printed["AppId"].as_i64().expect("AppId"),
        secret_id: printed["SecretId"].as_str().expect("SecretId").into(),
        secret_key: printed["SecretKey"].as_str().expect("SecretKey").into(),
    };
    let sender = printed["Sender"].as_str().expect("Sender").to_string();
    let client = ApiClient::new(&server.api_addr, &creds);

    // 1. The Tencent API, TC3-signed.
    let sent = client
        .call(
            "SendEmail",
            &json!({
                "FromEmailAddress": sender,
                "Destination": ["alice@example.com", "success@simulator.mailpush"],
                "Subject": "API hello",
                "Simple": { "Html": b64(b"<p>hello from the API</p>"), "Text": b64(b"hello from the API") },
            }),
        )
        .await;
    assert!(sent["MessageId"].is_string(), "{sent}");

    // 2. SMTP submission with the printed sender password.
    let smtp = server.announced_addr("smtp").expect("smtp address");
    let body = format!(
        "From: {sender}\r\nTo: bob@example.net\r\nSubject: SMTP hello\r\nMessage-ID: <smtp-1@client.test>\r\n\r\nhello over SMTP"
    );
    smtp_submit(
        &smtp,
        &sender,
        printed["SmtpPassword"].as_str().expect("SmtpPassword"),
        &sender,
        "bob@example.net",
        &body,
    )
    .await;

    // 3. Both in the mailbox (and nothing for the simulator address), DKIM passing against the dev DNS.
    let base = format!("http://{}/dev/mailbox/messages", server.api_addr);
    let deadline = tokio::time::Instant::now() + WAIT;
    let messages = loop {
        let list = get_json(&base).await;
        let messages = list["messages"].as_array().cloned().unwrap_or_default();
        if messages.len() >= 2 {
            break messages;
        }
        assert!(tokio::time::Instant::now() < deadline, "mailbox: {list}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(messages.len(), 2, "{messages:?}");
    for (subject, rcpt) in [("API hello", "alice@example.com"), ("SMTP hello", "bob@example.net")] {
        let m = messages
            .iter()
            .find(|m| m["subject"] == subject)
            .unwrap_or_else(|| panic!("no {subject:?} in {messages:?}"));
        assert_eq!(m["rcpt_to"], json!([rcpt]), "{m}");
        let full = get_json(&format!("{base}/{}", m["id"].as_str().expect("id"))).await;
        assert_eq!(full["dkim_pass"], true, "{}", full["dkim"]);
        assert_eq!(full["dkim"][0]["domain"], "dev.mailpush.test", "{}", full["dkim"]);
        assert!(full["raw"].as_str().unwrap_or_default().contains("DKIM-Signature:"));
        assert!(full["headers"].as_array().is_some_and(|h| !h.is_empty()));
    }
    let api = messages.iter().find(|m| m["subject"] == "API hello").expect("API mail");
    let full = get_json(&format!("{base}/{}", api["id"].as_str().expect("id"))).await;
    assert!(
        full["html"].as_str().unwrap_or_default().contains("hello from the API"),
        "{full}"
    );
    assert!(
        full["text"].as_str().unwrap_or_default().contains("hello from the API"),
        "{full}"
    );
    let missing = reqwest::get(format!("{base}/..%2Fmailpush.db")).await.expect("GET");
    assert_eq!(missing.status(), 404);

    // The console's Mailbox page, in Chinese, signed in as the printed console user.
    let console = format!("http://{}/console", server.api_addr);
    let session = console_session(
        &console,
        printed["ConsoleUser"].as_str().expect("ConsoleUser"),
        printed["ConsolePassword"].as_str().expect("ConsolePassword"),
    )
    .await;
    let page = console_get(&format!("{console}/mailbox"), &session).await;
    assert!(page.contains("nav-mailbox") && page.contains("收件箱"), "{page}");
    assert!(page.contains("API hello") && page.contains("SMTP hello"), "{page}");
    for view in ["html", "text", "raw", "headers"] {
        let page = console_get(
            &format!("{console}/mailbox/{}?view={view}", api["id"].as_str().expect("id")),
            &session,
        )
        .await;
        assert!(page.contains("data-dkim=\"pass\""), "{view}: {page}");
        assert!(page.contains(&format!("id=\"mailbox-{view}\"")), "{view}: {page}");
    }

    // The simulator address was delivered without reaching the mailbox.
    let statuses = client
        .call(
            "GetSendEmailStatus",
            &json!({ "RequestDate": today(), "MessageId": sent["MessageId"], "Offset": 0, "Limit": 10 }),
        )
        .await;
    let rows = statuses["EmailStatusList"].as_array().cloned().unwrap_or_default();
    assert!(
        rows.iter()
            .any(|r| r["ToEmailAddress"] == "success@simulator.mailpush" && r["DeliverStatus"] == 1),
        "{statuses}"
    );

    // 4. The secrets stay in the data directory, readable by the owner only, and are printed again.
    let file = dir.path().join("dev-credentials.json");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).expect("credentials file").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    server.kill().await;
    let again = ServerProcess::start("mailpush", &["serve", "--dev"], &env).await;
    assert_eq!(printed_credentials(&again)["SecretId"], printed["SecretId"]);
    let client = ApiClient::new(&again.api_addr, &creds);
    let sent = client
        .call(
            "SendEmail",
            &json!({
                "FromEmailAddress": sender, "Destination": ["carol@example.com"], "Subject": "after restart",
                "Simple": { "Text": b64(b"again") },
            }),
        )
        .await;
    assert!(sent["MessageId"].is_string(), "{sent}");
    again.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_mode_refuses_a_non_loopback_listener() {
    let dir = temp_dir();
    let mut env = dev_env(dir.path());
    env.insert("MAILPUSH_API_LISTEN".into(), "0.0.0.0:0".into());
    let out = tokio::process::Command::new(bin_path("mailpush"))
        .args(["serve", "--dev"])
        .envs(&env)
        .output()
        .await
        .expect("run mailpush");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--dev-allow-remote"), "{stderr}");
}

/// The README's section "Send your first mail (dev mode)" with its blocks in the order a reader meets them.
fn readme_walk_through() -> String {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README.md");
    let start = readme
        .find("### Send your first mail (dev mode)")
        .expect("README has the dev-mode walk-through");
    let rest = &readme[start..];
    let end = rest[4..].find("\n### ").map_or(rest.len(), |i| i + 4);
    rest[..end].to_string()
}

/// The first fenced ```sh block of `section` whose text contains `needle`, continuation lines joined.
fn shell_block<'a>(section: &'a str, needle: &str) -> &'a str {
    section
        .split("```sh\n")
        .skip(1)
        .filter_map(|b| b.split("```").next())
        .find(|b| b.contains(needle))
        .unwrap_or_else(|| panic!("no sh block with {needle:?} in the walk-through"))
}

/// Runs `command` with `sh -c`; panics with its output unless it succeeds. Returns stdout.
async fn sh(command: &str) -> String {
    let out = tokio::process::Command::new("sh")
        .args(["-c", command])
        .output()
        .await
        .expect("run sh");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{command}\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The walk-through as the README writes it: `serve --dev`, then the README's own swaks command and its Python SDK
/// program (the printed credentials, port and sender put in), then the README's `curl` commands read both mails
/// back from the mailbox.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_walk_through_works_as_written() {
    if !tool_available(
        "swaks",
        &["--version"],
        "MAILPUSH_REQUIRE_SWAKS",
        "apt-get install swaks",
    ) || !tool_available("curl", &["--version"], "MAILPUSH_REQUIRE_SWAKS", "apt-get install curl")
        || !python_sdk_available()
    {
        return;
    }
    let section = readme_walk_through();
    let dir = temp_dir();
    let server = ServerProcess::start("mailpush", &["serve", "--dev"], &dev_env(dir.path())).await;
    let printed = printed_credentials(&server);
    let field = |k: &str| {
        printed[k]
            .as_str()
            .unwrap_or_else(|| panic!("{k} in {printed}"))
            .to_string()
    };
    let smtp = server.announced_addr("smtp").expect("smtp address");
    let api = server.api_addr.clone();
    // What the reader types in: the printed values where the README shows `…`, this run's ports.
    let fill = |text: &str| {
        text.replace("127.0.0.1:2525", &smtp)
            .replace("127.0.0.1:8080", &api)
            .replace("'…'", &format!("'{}'", field("SmtpPassword")))
    };

    // SMTP with swaks, the README's command.
    let swaks = shell_block(&section, "swaks ");
    assert!(
        swaks.contains(&field("Sender")),
        "the README's swaks sends as the dev sender: {swaks}"
    );
    sh(&fill(swaks)).await;

    // The official Python SDK: the README's program, pointed at dev mode as the walk-through says.
    let sdk_section = &readme_walk_through_sdk_program();
    let program = sdk_section
        .replace(
            "\"AKID…\", \"…\"",
            &format!("{:?}, {:?}", field("SecretId"), field("SecretKey")),
        )
        .replace("127.0.0.1:8080", &api)
        .replace("Shop <noreply@mail.example.com>", &field("Sender"));
    let out = tokio::process::Command::new("python3")
        .args(["-c", &program])
        .output()
        .await
        .expect("python3");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // Read both back with the README's curl commands.
    let list_cmd = section
        .split('`')
        .find(|s| s.starts_with("curl ") && s.ends_with("/dev/mailbox/messages"))
        .expect("the README lists the mailbox with curl");
    let one_cmd = section
        .split('`')
        .find(|s| s.starts_with("curl ") && s.ends_with("/dev/mailbox/messages/ID"))
        .expect("the README shows one message with curl");
    let deadline = tokio::time::Instant::now() + WAIT;
    let messages = loop {
        let list: Value = serde_json::from_str(&sh(&fill(list_cmd)).await).expect("mailbox JSON");
        let messages = list["messages"].as_array().cloned().unwrap_or_default();
        if messages.len() >= 2 {
            break messages;
        }
        assert!(tokio::time::Instant::now() < deadline, "mailbox: {list}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    for (subject, rcpt) in [("hello", "alice@example.com"), ("Your receipt", "alice@example.org")] {
        let m = messages
            .iter()
            .find(|m| m["subject"] == subject)
            .unwrap_or_else(|| panic!("no {subject:?} in {messages:?}"));
        assert_eq!(m["rcpt_to"], json!([rcpt]), "{m}");
        let id = m["id"].as_str().expect("id");
        let full: Value =
            serde_json::from_str(&sh(&fill(&one_cmd.replace("/ID", &format!("/{id}")))).await).expect("message JSON");
        assert_eq!(full["dkim_pass"], true, "{}", full["dkim"]);
    }
    server.kill().await;
}

/// The Python program of the README's next section ("Create an account and send a first mail"), which the
/// walk-through tells the reader to use with the dev credentials.
fn readme_walk_through_sdk_program() -> String {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README.md");
    let start = readme
        .find("### Create an account and send a first mail")
        .expect("README has the first-mail section");
    readme[start..]
        .split("```python\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("a python block")
        .to_string()
}
