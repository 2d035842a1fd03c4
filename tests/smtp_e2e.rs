//! SMTP submission end to end through the real `mailpush serve` process, with real clients: Python's
//! smtplib and swaks, over STARTTLS (with the certificate `serve` generated) and over implicit TLS. The mail
//! reaches the testkit sink and `GetSendEmailStatus` finds the MessageId from the `250 … queued as` reply.
//!
//! The sending domain `shop.example.com` is set up as a customer would: `CreateEmailIdentity`, its records
//! published in the testkit DNS authority, `UpdateEmailIdentity` until verified, `CreateEmailAddress`. Two
//! ways to be allowed to submit are covered: a trusted network (`127.0.0.0/8` for account `shop`), and AUTH
//! PLAIN with the SMTP password a sender address got from `UpdateEmailSmtpPassWord`. Either way a sender
//! outside the account's verified domains is refused with 550 5.7.1.
//! swaks and python3 are skipped with a `SKIPPED:` line when missing, unless MAILPUSH_REQUIRE_SWAKS=1 /
//! MAILPUSH_REQUIRE_PYTHON_SDK=1 (CI sets both).

use mailpush_suite::*;
use mailpush_testkit::{DnsAuthority, SinkMx};
use serde_json::json;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

struct World {
    dir: tempfile::TempDir,
    dns: DnsAuthority,
    sink: SinkMx,
    server: ServerProcess,
    client: ApiClient,
}

/// SMTP password of `app@shop.example.com` (Tencent's policy: 10-20 characters, upper, lower, digit).
const SMTP_PASSWORD: &str = "SmtpPassw0rd42";

/// `mailpush serve` with SMTP and SMTPS listeners and the verified sender `app@shop.example.com`. With
/// `trusted`, loopback submits for `shop` without AUTH; without it, AUTH is the only way in.
async fn world(trusted: bool) -> World {
    let dns = DnsAuthority::start().await.expect("dns");
    let sink = SinkMx::start_default().await.expect("sink");
    for domain in ["example.org", "example.net"] {
        dns.add_mx(domain, 10, &format!("mx.{domain}"));
        dns.add_a(&format!("mx.{domain}"), Ipv4Addr::LOCALHOST);
    }
    let dir = temp_dir();
    let mut vars = vec![
        ("MAILPUSH_DNS_SERVERS", dns.addr().to_string()),
        ("MAILPUSH_DELIVERY_PORT", sink.addr().port().to_string()),
        ("MAILPUSH_SMTP_LISTEN", "127.0.0.1:0".to_string()),
        ("MAILPUSH_SMTPS_LISTEN", "127.0.0.1:0".to_string()),
    ];
    if trusted {
        vars.push(("MAILPUSH_SMTP_TRUSTED_NETWORKS", "127.0.0.0/8".to_string()));
        vars.push(("MAILPUSH_SMTP_TRUSTED_ACCOUNT", "shop".to_string()));
    }
    let env = base_env(dir.path(), &vars);
    let creds = create_account(&env, "shop").await;
    let server = ServerProcess::start("mailpush", &["serve"], &env).await;
    let client = ApiClient::new(&server.api_addr, &creds);
    // Submission requires the sender's domain to be a verified sending domain of the account.
    verified_sender(&client, &dns, "app@shop.example.com").await;
    let r = client
        .call(
            "UpdateEmailSmtpPassWord",
            &json!({ "EmailAddress": "app@shop.example.com", "Password": SMTP_PASSWORD }),
        )
        .await;
    assert!(r.get("Error").is_none(), "{r}");
    World {
        dir,
        dns,
        sink,
        server,
        client,
    }
}

impl World {
    fn smtp(&self) -> String {
        self.server.announced_addr("smtp").expect("smtp address announced")
    }
    fn smtps(&self) -> String {
        self.server.announced_addr("smtps").expect("smtps address announced")
    }
    fn cert(&self) -> PathBuf {
        self.dir.path().join("smtp-selfsigned-cert.pem")
    }

    /// Waits until `GetSendEmailStatus` shows every recipient of `id` delivered; returns the recipients.
    async fn delivered(&self, id: &str) -> Vec<String> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let r = self
                .client
                .call(
                    "GetSendEmailStatus",
                    &json!({ "RequestDate": today(), "MessageId": id, "Offset": 0, "Limit": 100 }),
                )
                .await;
            assert!(r.get("Error").is_none(), "{r}");
            let rows = r["EmailStatusList"].as_array().cloned().unwrap_or_default();
            if !rows.is_empty() && rows.iter().all(|row| row["DeliverStatus"] == 1) {
                return rows
                    .iter()
                    .map(|row| row["ToEmailAddress"].as_str().unwrap_or("").to_string())
                    .collect();
            }
            assert!(tokio::time::Instant::now() < deadline, "{id} not delivered: {rows:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn queued_id(text: &str) -> String {
    text.split("queued as ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap_or_else(|| panic!("no MessageId in {text:?}"))
        .to_string()
}

const SMTPLIB: &str = r#"
import os, smtplib, ssl, sys
ctx = ssl.create_default_context(cafile=os.environ["CA"])
host, port = os.environ["ADDR"].rsplit(":", 1)
if os.environ["MODE"] == "starttls":
    s = smtplib.SMTP(host, int(port), local_hostname="client.test", timeout=30)
    s.starttls(context=ctx)
else:
    s = smtplib.SMTP_SSL(host, int(port), local_hostname="client.test", context=ctx, timeout=30)
s.ehlo()
assert s.has_extn("auth") and s.has_extn("size") and s.has_extn("pipelining"), s.esmtp_features
try:
    s.login("app@shop.example.com", "not-the-password")
    sys.exit("AUTH with a wrong password succeeded")
except smtplib.SMTPAuthenticationError as e:
    assert e.smtp_code == 535, e
# Trusted, but only for the account's verified domains: the domain gate refuses a foreign sender.
code, resp = s.mail("ceo@other.example"); assert code == 550 and resp.startswith(b"5.7.1"), (code, resp)
code, _ = s.rset(); assert code == 250, code
msg = ("From: App <app@shop.example.com>\r\nTo: alice@example.org\r\nSubject: via smtplib "
       + os.environ["MODE"] + "\r\n\r\nhello from smtplib\r\n")
code, _ = s.mail("app@shop.example.com"); assert code == 250, code
code, _ = s.rcpt("alice@example.org"); assert code == 250, code
code, _ = s.rcpt("carol@example.net"); assert code == 250, code
code, resp = s.data(msg.encode())
assert code == 250, (code, resp)
print(resp.decode())
s.quit()
"#;

async fn smtplib(addr: &str, mode: &str, ca: &std::path::Path) -> String {
    let out = tokio::process::Command::new("python3")
        .args(["-c", SMTPLIB])
        .env("ADDR", addr)
        .env("MODE", mode)
        .env("CA", ca)
        .output()
        .await
        .expect("python3");
    assert!(
        out.status.success(),
        "smtplib {mode} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_smtplib_over_starttls_and_implicit_tls() {
    if !python3_available() {
        return;
    }
    let w = world(true).await;
    for (mode, addr) in [("starttls", w.smtp()), ("implicit", w.smtps())] {
        let reply = smtplib(&addr, mode, &w.cert()).await;
        let id = queued_id(&reply);
        let mut rcpts = w.delivered(&id).await;
        rcpts.sort();
        assert_eq!(rcpts, ["alice@example.org", "carol@example.net"], "{mode}");
        let subject = format!("via smtplib {mode}");
        let got = w
            .sink
            .messages()
            .into_iter()
            .filter(|m| m.text().contains(&subject))
            .count();
        assert_eq!(got, 2, "{mode}: one transaction per recipient domain");
        let signed: Vec<Vec<u8>> = w
            .sink
            .messages()
            .into_iter()
            .filter(|m| m.text().contains(&subject))
            .map(|m| m.data)
            .collect();
        assert_dkim_verifies_everywhere(&w.dns, &signed.iter().map(Vec::as_slice).collect::<Vec<_>>()).await;
    }
    w.server.terminate().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swaks_over_starttls_and_implicit_tls() {
    if !tool_available(
        "swaks",
        &["--version"],
        "MAILPUSH_REQUIRE_SWAKS",
        "apt-get install swaks",
    ) {
        return;
    }
    let w = world(true).await;
    for (flag, addr) in [("--tls", w.smtp()), ("--tls-on-connect", w.smtps())] {
        let (host, port) = addr.rsplit_once(':').expect("host:port");
        let subject = format!("via swaks {flag}");
        let out = tokio::process::Command::new("swaks")
            .args([
                "--server",
                host,
                "--port",
                port,
                flag,
                "--helo",
                "client.test",
                "--from",
                "app@shop.example.com",
                "--to",
                "bob@example.org",
                "--header",
                &format!("Subject: {subject}"),
                "--body",
                "hello from swaks",
            ])
            .output()
            .await
            .expect("swaks");
        let transcript = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(out.status.success(), "swaks {flag} failed:\n{transcript}");
        let id = queued_id(&transcript);
        assert_eq!(w.delivered(&id).await, ["bob@example.org"]);
        assert!(
            w.sink.messages().iter().any(|m| m.text().contains(&subject)),
            "{flag}: reached the sink"
        );
    }
    w.server.terminate().await;
}

const SMTPLIB_AUTH: &str = r#"
import os, smtplib, ssl, sys
ctx = ssl.create_default_context(cafile=os.environ["CA"])
host, port = os.environ["ADDR"].rsplit(":", 1)
s = smtplib.SMTP(host, int(port), local_hostname="client.test", timeout=30)
s.starttls(context=ctx)
s.ehlo()
# No trusted network here: without AUTH, mail is refused.
code, resp = s.mail("app@shop.example.com"); assert code == 530, (code, resp)
try:
    s.login("app@shop.example.com", "Wrong" + os.environ["PASSWORD"])
    sys.exit("AUTH with a wrong password succeeded")
except smtplib.SMTPAuthenticationError as e:
    assert e.smtp_code == 535, e
# AUTH PLAIN explicitly (smtplib would pick it anyway from "AUTH PLAIN LOGIN").
s.user, s.password = "app@shop.example.com", os.environ["PASSWORD"]
code, resp = s.auth("PLAIN", s.auth_plain)
assert code == 235, (code, resp)
# A foreign domain is refused at MAIL FROM.
code, resp = s.mail("ceo@other.example"); assert code == 550 and resp.startswith(b"5.7.1"), (code, resp)
code, _ = s.rset(); assert code == 250, code
msg = ("From: App <app@shop.example.com>\r\nTo: alice@example.org\r\nSubject: via smtplib AUTH\r\n\r\n"
       "hello with an SMTP password\r\n")
code, _ = s.mail("app@shop.example.com"); assert code == 250, code
code, _ = s.rcpt("alice@example.org"); assert code == 250, code
code, resp = s.data(msg.encode())
assert code == 250, (code, resp)
print(resp.decode())
s.quit()
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_plain_with_a_sender_smtp_password() {
    if !python3_available() {
        return;
    }
    let w = world(false).await;
    let out = tokio::process::Command::new("python3")
        .args(["-c", SMTPLIB_AUTH])
        .env("ADDR", w.smtp())
        .env("CA", w.cert())
        .env("PASSWORD", SMTP_PASSWORD)
        .output()
        .await
        .expect("python3");
    assert!(
        out.status.success(),
        "smtplib AUTH failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = queued_id(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(w.delivered(&id).await, ["alice@example.org"]);
    let got: Vec<_> = w
        .sink
        .messages()
        .into_iter()
        .filter(|m| m.text().contains("via smtplib AUTH"))
        .collect();
    assert_eq!(got.len(), 1, "exactly one message reached the sink");
    assert_dkim_verifies_everywhere(&w.dns, &[&got[0].data]).await;
    // RFC 5321 §4.4: the submission is traced, on top, naming the client and the authenticated TLS session.
    let text = got[0].text();
    let received = text
        .split("\r\n")
        .skip_while(|l| !l.starts_with("Received: "))
        .take(3)
        .collect::<Vec<_>>()
        .join(" ");
    assert!(received.contains("([127.0.0.1])"), "{received}");
    assert!(received.contains(&format!("with ESMTPSA id {id};")), "{received}");
    // The client's MAIL FROM is replaced by the VERP return path at its domain's return-path domain.
    assert!(
        got[0].mail_from.starts_with("mpb-") && got[0].mail_from.ends_with("@bounce.shop.example.com"),
        "{}",
        got[0].mail_from
    );
    w.server.terminate().await;
}

const SMTPLIB_8BIT: &str = r#"
import os, smtplib
host, port = os.environ["ADDR"].rsplit(":", 1)
s = smtplib.SMTP(host, int(port), local_hostname="client.test", timeout=30)
s.ehlo()
assert s.has_extn("smtputf8"), s.esmtp_features
msg = ("From: app@shop.example.com\r\nTo: alice@example.org\r\nSubject: caf\u00e9 8bit header\r\n\r\nhello\r\n").encode()
try:
    s.sendmail("app@shop.example.com", ["alice@example.org"], msg)
    print("ACCEPTED without SMTPUTF8")
except smtplib.SMTPDataError as e:
    print("REFUSED", e.smtp_code, e.smtp_error.decode())
s.sendmail("app@shop.example.com", ["alice@example.org"], msg, mail_options=["SMTPUTF8"])
print("ACCEPTED with SMTPUTF8")
s.quit()
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_bit_headers_need_smtputf8() {
    if !python3_available() {
        return;
    }
    let w = world(true).await;
    let out = tokio::process::Command::new("python3")
        .args(["-c", SMTPLIB_8BIT])
        .env("ADDR", w.smtp())
        .output()
        .await
        .expect("python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("REFUSED 554 5.6.7"), "{stdout}");
    assert!(stdout.contains("ACCEPTED with SMTPUTF8"), "{stdout}");
    w.server.terminate().await;
}
