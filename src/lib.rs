//! The shared harness of mailpush's end-to-end tests, benchmarks and load tool: start the real binaries on
//! free ports, create accounts through the CLI, and call the API with TC3-signed requests.

pub mod content_filters;
pub mod outcomes;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub mod browser;

/// Says on the terminal that (part of) a test was skipped, and why: `SKIPPED: …` on stderr, written past the test
/// harness's output capture so that `cargo test` shows it as nextest (which shows these tests' output, see
/// `.config/nextest.toml`) does.
pub fn say_skipped(why: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "SKIPPED: {why}");
}

/// The master key the harness gives every process it starts (processes sharing a database need the same key).
pub const TEST_MASTER_KEY: &str = "mailpush-test-master-key-0123456789";

/// Path of a workspace binary built next to the running test (`target/<profile>/<name>`).
/// `MAILPUSH_BIN_DIR` overrides the directory.
pub fn bin_path(name: &str) -> PathBuf {
    if let Ok(dir) = std::env::var("MAILPUSH_BIN_DIR") {
        return Path::new(&dir).join(name);
    }
    let exe = std::env::current_exe().unwrap_or_default();
    // target/<profile>/deps/<test> → target/<profile>/<name>
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_default();
    profile_dir.join(name)
}

/// Credentials printed by `mailpush account create --json`.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// AppId.
    pub app_id: i64,
    /// SecretId.
    pub secret_id: String,
    /// SecretKey.
    pub secret_key: String,
}

/// Environment for a mailpush process using `data_dir`, plus `extra` overrides. Domain warm-up and the level
/// evaluation are off unless `extra` turns them on.
pub fn base_env(data_dir: &Path, extra: &[(&str, String)]) -> HashMap<String, String> {
    let mut env = HashMap::new();
    env.insert("MAILPUSH_DATA_DIR".into(), data_dir.display().to_string());
    env.insert("MAILPUSH_MASTER_KEY".into(), TEST_MASTER_KEY.into());
    env.insert("MAILPUSH_API_LISTEN".into(), "127.0.0.1:0".into());
    env.insert("MAILPUSH_LOG".into(), "warn".into());
    // The tests send many mails from brand-new domains: no domain warm-up unless a test configures a ramp
    // (pass `MAILPUSH_WARMUP_DOMAIN_RAMP` in `extra`), and no automatic level changes.
    env.insert("MAILPUSH_WARMUP_DOMAIN_RAMP".into(), String::new());
    env.insert("MAILPUSH_LEVEL_EVAL_SECS".into(), "0".into());
    // The tests name UTC days (`today()`, clock moves to the next UTC midnight); a test of the calendar zone
    // passes its own `MAILPUSH_TIME_ZONE` in `extra`.
    env.insert("MAILPUSH_TIME_ZONE".into(), "UTC".into());
    // The database gauges of /metrics are refreshed on a timer: every second in tests (see `metrics_until`).
    env.insert("MAILPUSH_METRICS_REFRESH_SECS".into(), "1".into());
    for (k, v) in extra {
        env.insert((*k).to_string(), v.clone());
    }
    // This process computes days (a store opened beside the server, `today()`) in the server's calendar.
    if let Some(zone) = env
        .get("MAILPUSH_TIME_ZONE")
        .and_then(|z| mailpush_model::TimeZone::parse(z).ok())
    {
        mailpush_model::time_zone::set_current(zone);
    }
    env
}

/// Runs `mailpush account create NAME --json --allow-simple-content` and parses the credentials. Most
/// end-to-end tests send custom content (`Simple`), which needs that permission; use [`create_account_with`]
/// for an account without it.
pub async fn create_account(env: &HashMap<String, String>, name: &str) -> Credentials {
    create_account_with(env, name, &["--allow-simple-content"]).await
}

/// Runs `mailpush account create NAME --json FLAGS…` (e.g. `--allow-links`) and parses the credentials.
pub async fn create_account_with(env: &HashMap<String, String>, name: &str, flags: &[&str]) -> Credentials {
    let out = Command::new(bin_path("mailpush"))
        .args(["account", "create", name, "--json"])
        .args(flags)
        .envs(env)
        .output()
        .await
        .expect("run mailpush account create");
    assert!(
        out.status.success(),
        "account create failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("account create prints JSON");
    Credentials {
        app_id: v["AppId"].as_i64().expect("AppId"),
        secret_id: v["SecretId"].as_str().expect("SecretId").to_string(),
        secret_key: v["SecretKey"].as_str().expect("SecretKey").to_string(),
    }
}

/// Runs `mailpush ARGS…` with `env` (admin commands); returns stdout, panicking with stderr on failure.
pub async fn mailpush_cli(env: &HashMap<String, String>, args: &[&str]) -> String {
    let out = Command::new(bin_path("mailpush"))
        .args(args)
        .envs(env)
        .output()
        .await
        .expect("run mailpush");
    assert!(
        out.status.success(),
        "mailpush {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A running `mailpush serve` (or another server binary) whose API address was read from its stdout.
pub struct ServerProcess {
    /// The child; killed on drop.
    pub child: Child,
    /// `127.0.0.1:port` of the API.
    pub api_addr: String,
    /// Every stdout line printed up to and including the API line (e.g. `mailpush: smtp listening on …`).
    pub announced: Vec<String>,
}

impl ServerProcess {
    /// Starts `binary args…` with `env` and waits for the line announcing the API address.
    pub async fn start(binary: &str, args: &[&str], env: &HashMap<String, String>) -> ServerProcess {
        Self::start_command(binary, Command::new(bin_path(binary)).args(args), env).await
    }

    /// [`ServerProcess::start`] with soft and hard `RLIMIT_NOFILE` both set to `nofile` (`ulimit -n` in a shell
    /// that then execs the binary, so the pid is the server's): a process that cannot raise its limit.
    pub async fn start_with_fd_limit(
        binary: &str,
        args: &[&str],
        env: &HashMap<String, String>,
        nofile: u64,
    ) -> ServerProcess {
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(format!("ulimit -n {nofile} && exec \"$0\" \"$@\""))
            .arg(bin_path(binary))
            .args(args);
        Self::start_command(binary, &mut cmd, env).await
    }

    async fn start_command(binary: &str, cmd: &mut Command, env: &HashMap<String, String>) -> ServerProcess {
        let mut child = cmd
            .envs(env)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {binary}: {e}"));
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let mut announced = Vec::new();
        let api_addr = tokio::time::timeout(Duration::from_secs(60), async {
            while let Ok(Some(line)) = lines.next_line().await {
                announced.push(line.clone());
                if let Some(addr) = line
                    .split("listening on http://")
                    .nth(1)
                    .or_else(|| line.split("listening on https://").nth(1))
                {
                    return addr.trim().to_string();
                }
            }
            panic!("{binary} exited before announcing its API address");
        })
        .await
        .expect("server did not start within 60 s");
        // Keep draining stdout so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        ServerProcess {
            child,
            api_addr,
            announced,
        }
    }

    /// The address announced as `<name> listening on ADDR` (e.g. `smtp`, `smtps`), if any.
    pub fn announced_addr(&self, name: &str) -> Option<String> {
        let marker = format!("{name} listening on ");
        self.announced
            .iter()
            .find_map(|l| l.split(&marker).nth(1).map(|a| a.trim().to_string()))
    }

    /// SIGKILL: no chance to flush anything.
    pub async fn kill(mut self) {
        let _ = self.child.kill().await;
        let _ = self.child.wait().await;
    }

    /// SIGTERM and wait for a clean exit.
    pub async fn terminate(mut self) -> std::process::ExitStatus {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .arg("-TERM")
                .arg(pid.to_string())
                .status();
        }
        tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("server did not stop within 30 s")
            .expect("wait")
    }
}

/// A TC3-signing client of the action API.
#[derive(Clone)]
pub struct ApiClient {
    http: reqwest::Client,
    /// `host:port`.
    pub addr: String,
    /// SecretId used to sign.
    pub secret_id: String,
    /// SecretKey used to sign.
    pub secret_key: String,
    /// Shared with a [`TestClock`] (see [`ApiClient::on_clock`]): requests are signed at the server's time.
    clock_offset_ms: std::sync::Arc<std::sync::atomic::AtomicI64>,
}

/// Seconds since the epoch.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl ApiClient {
    /// Sends a small Simple mail (HTML `<b>hi</b>`, text `hi`) from `from` to `to`; its MessageId.
    pub async fn send_simple(&self, from: &str, to: &str, subject: &str) -> String {
        let r = self
            .call(
                "SendEmail",
                &serde_json::json!({
                    "FromEmailAddress": from,
                    "Destination": [to],
                    "Subject": subject,
                    "Simple": { "Html": b64(b"<b>hi</b>"), "Text": b64(b"hi") },
                }),
            )
            .await;
        r["MessageId"]
            .as_str()
            .unwrap_or_else(|| panic!("no MessageId: {r}"))
            .to_string()
    }

    /// Polls `GetSendEmailStatus` until the first recipient of `id` has `DeliverStatus` `wanted`; its row. Panics
    /// after `timeout`.
    pub async fn wait_deliver_status(&self, id: &str, wanted: i64, timeout: Duration) -> serde_json::Value {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let r = self
                .call(
                    "GetSendEmailStatus",
                    &serde_json::json!({ "RequestDate": today(), "MessageId": id, "Offset": 0, "Limit": 100 }),
                )
                .await;
            let rows = r["EmailStatusList"].as_array().cloned().unwrap_or_default();
            if let Some(row) = rows.first()
                && row["DeliverStatus"].as_i64() == Some(wanted)
            {
                return row.clone();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{id} never reached {wanted}: {r}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A client for the API at `addr` with these credentials.
    pub fn new(addr: &str, creds: &Credentials) -> ApiClient {
        ApiClient {
            http: reqwest::Client::new(),
            addr: addr.to_string(),
            secret_id: creds.secret_id.clone(),
            secret_key: creds.secret_key.clone(),
            clock_offset_ms: Default::default(),
        }
    }

    /// Signs requests at `clock`'s time from now on (a server on a moved [`TestClock`] would otherwise refuse the
    /// signature as expired).
    pub fn on_clock(mut self, clock: &TestClock) -> ApiClient {
        self.clock_offset_ms = clock.offset_ms.clone();
        self
    }

    /// Calls `action` with `params`; returns the `Response` object (which holds `Error` on failure).
    pub async fn call(&self, action: &str, params: &serde_json::Value) -> serde_json::Value {
        let body = params.to_string().into_bytes();
        let offset_s = self.clock_offset_ms.load(std::sync::atomic::Ordering::SeqCst) / 1000;
        self.call_raw(action, body, unix_now() + offset_s, &self.secret_key)
            .await
    }

    /// Calls with full control of body, timestamp and signing key (for tests of refusals).
    pub async fn call_raw(&self, action: &str, body: Vec<u8>, timestamp: i64, sign_key: &str) -> serde_json::Value {
        let headers = mailpush_api::tc3::sign_post(
            &self.addr,
            action,
            mailpush_api::API_VERSION,
            &body,
            &self.secret_id,
            sign_key,
            timestamp,
        );
        let mut req = self.http.post(format!("http://{}/", self.addr)).body(body);
        for (k, v) in headers {
            req = req.header(k, v);
        }
        let resp = req.send().await.expect("HTTP request");
        assert_eq!(resp.status(), 200, "the API answers 200 even for errors");
        let ct = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        assert_eq!(
            ct, "application/json",
            "the Tencent SDK only parses exactly application/json"
        );
        let v: serde_json::Value = resp.json().await.expect("JSON reply");
        assert!(
            v["Response"]["RequestId"].is_string(),
            "every reply carries a RequestId: {v}"
        );
        v["Response"].clone()
    }

    /// The error code of a reply, if it is an error.
    pub fn error_code(resp: &serde_json::Value) -> Option<String> {
        resp["Error"]["Code"].as_str().map(str::to_string)
    }
}

/// Base64 of `data`, as the API wants content.
pub fn b64(data: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// Today's date in the calendar zone of the servers this process started (UTC unless a test set
/// `MAILPUSH_TIME_ZONE`), as `GetSendEmailStatus` wants it.
pub fn today() -> String {
    mailpush_model::clock::date_of(unix_now() * 1000)
}

/// A temporary data directory.
pub fn temp_dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

/// The fully qualified name of a record the API lists with host `host` (relative to the registrable domain)
/// for sending domain `domain`. The DMARC record's host is `_dmarc.` + the domain's own host, which tells where
/// the registrable domain starts.
pub fn record_fqdn(identity_reply: &serde_json::Value, domain: &str, host: &str) -> String {
    let dmarc_host = identity_reply["Attributes"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|a| a["ExpectedValue"].as_str().is_some_and(|v| v.starts_with("v=DMARC1")))
        .and_then(|a| a["SendDomain"].as_str())
        .unwrap_or("_dmarc");
    let apex = match dmarc_host.strip_prefix("_dmarc.") {
        Some(own) => domain.strip_prefix(&format!("{own}.")).unwrap_or(domain).to_string(),
        None => domain.to_string(),
    };
    if host == "@" { apex } else { format!("{host}.{apex}") }
}

/// Publishes every record of an identity reply (`CreateEmailIdentity` / `GetEmailIdentity`) in the testkit DNS.
/// A name holds one DMARC record: of the plain policy and its optional variant with aggregate reports
/// (`rua=`), the variant is published, as a customer who wants reports would.
pub fn publish_records(dns: &mailpush_testkit::DnsAuthority, identity_reply: &serde_json::Value, domain: &str) {
    let attributes = identity_reply["Attributes"].as_array().cloned().unwrap_or_default();
    let has_rua = |a: &serde_json::Value| a["ExpectedValue"].as_str().is_some_and(|v| v.contains("rua="));
    let is_dmarc = |a: &serde_json::Value| a["ExpectedValue"].as_str().is_some_and(|v| v.starts_with("v=DMARC1"));
    let rua_offered = attributes.iter().any(|a| is_dmarc(a) && has_rua(a));
    for a in &attributes {
        if rua_offered && is_dmarc(a) && !has_rua(a) {
            continue;
        }
        let host = a["SendDomain"].as_str().expect("SendDomain");
        let value = a["ExpectedValue"].as_str().expect("ExpectedValue");
        let name = record_fqdn(identity_reply, domain, host);
        match a["Type"].as_str() {
            Some("MX") => dns.add_mx(&name, 10, value),
            _ => dns.add_txt(&name, value),
        }
    }
}

/// Calls `UpdateEmailIdentity` until the domain is verified (or 20 s pass); returns the last reply.
pub async fn verify_domain(client: &ApiClient, domain: &str) -> serde_json::Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let r = client
            .call("UpdateEmailIdentity", &serde_json::json!({ "EmailIdentity": domain }))
            .await;
        if r["VerifiedForSendingStatus"] == true {
            return r;
        }
        assert!(tokio::time::Instant::now() < deadline, "{domain} never verified: {r}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Makes `address` a sender the API lets this client send from, as a customer would: creates its domain
/// (ed25519 key, DKIMOption 3: instant to generate), publishes the returned records in the testkit DNS,
/// calls `UpdateEmailIdentity` until verified, and creates the sender address. Idempotent per domain and
/// address. Returns the domain's last identity reply.
pub async fn verified_sender(
    client: &ApiClient,
    dns: &mailpush_testkit::DnsAuthority,
    address: &str,
) -> serde_json::Value {
    verified_sender_with(client, dns, address, 3).await
}

/// [`verified_sender`] with a chosen `DKIMOption`.
pub async fn verified_sender_with(
    client: &ApiClient,
    dns: &mailpush_testkit::DnsAuthority,
    address: &str,
    dkim_option: i64,
) -> serde_json::Value {
    let domain = address.rsplit_once('@').map(|(_, d)| d).expect("an address");
    let mut reply = client
        .call(
            "CreateEmailIdentity",
            &serde_json::json!({ "EmailIdentity": domain, "DKIMOption": dkim_option }),
        )
        .await;
    if ApiClient::error_code(&reply).as_deref() == Some("InvalidParameterValue.RepeatCreation") {
        reply = client
            .call("GetEmailIdentity", &serde_json::json!({ "EmailIdentity": domain }))
            .await;
    }
    assert!(reply.get("Error").is_none(), "{reply}");
    if reply["VerifiedForSendingStatus"] != true {
        publish_records(dns, &reply, domain);
        reply = verify_domain(client, domain).await;
    }
    let r = client
        .call("CreateEmailAddress", &serde_json::json!({ "EmailAddress": address }))
        .await;
    let code = ApiClient::error_code(&r);
    assert!(
        code.is_none() || code.as_deref() == Some("InvalidParameterValue.RepeatEmailAddress"),
        "{r}"
    );
    reply
}

/// A DER certificate as PEM: what `outbound_tls_ca_file` (and other PEM settings) hold.
pub fn pem_certificate(der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in b64.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    pem
}

/// A controllable clock for a real `mailpush` process: pass [`TestClock::env`] to [`base_env`]'s extras (every
/// process of a test that should share the clock gets the same file), then move time with [`TestClock::advance`].
/// The process sees a change within `OffsetFileClock::RECHECK_MS`; `advance` waits a little longer than that.
pub struct TestClock {
    path: PathBuf,
    offset_ms: std::sync::Arc<std::sync::atomic::AtomicI64>,
}

impl TestClock {
    /// A clock at offset 0 whose file lives in `dir`.
    pub fn new(dir: &Path) -> TestClock {
        let path = dir.join("test-clock-offset");
        mailpush_model::OffsetFileClock::write_offset(&path, 0).expect("write test clock");
        TestClock {
            path,
            offset_ms: Default::default(),
        }
    }

    /// The `MAILPUSH_TEST_CLOCK_FILE` entry for [`base_env`].
    pub fn env(&self) -> (&'static str, String) {
        ("MAILPUSH_TEST_CLOCK_FILE", self.path.display().to_string())
    }

    /// The offset now in force, ms.
    pub fn offset_ms(&self) -> i64 {
        self.offset_ms.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The processes' current time, Unix ms.
    pub fn now_ms(&self) -> i64 {
        unix_now() * 1000 + self.offset_ms()
    }

    /// Moves every process on this clock forward by `ms` and waits until they see it.
    pub async fn advance(&self, ms: i64) {
        let offset = self.offset_ms.fetch_add(ms, std::sync::atomic::Ordering::SeqCst) + ms;
        mailpush_model::OffsetFileClock::write_offset(&self.path, offset).expect("write test clock");
        tokio::time::sleep(std::time::Duration::from_millis(
            4 * mailpush_model::OffsetFileClock::RECHECK_MS as u64,
        ))
        .await;
    }
}

/// The verdicts of the three external DKIM verifiers (dkimpy, Mail::DKIM, OpenDKIM) on `raw`, against the records
/// `dns` serves; `None` when a verifier is missing on this machine, after saying so loudly on stderr. With
/// `MAILPUSH_REQUIRE_DKIM_VERIFIERS=1` (CI sets it) a missing verifier fails the test instead.
pub async fn external_dkim_verdicts(
    dns: &mailpush_testkit::DnsAuthority,
    raw: &[u8],
) -> Option<Vec<mailpush_testkit::DkimVerdict>> {
    use mailpush_testkit::ExternalDkimVerifiers;
    let required = std::env::var("MAILPUSH_REQUIRE_DKIM_VERIFIERS").as_deref() == Ok("1");
    let missing = ExternalDkimVerifiers::missing().await;
    if !missing.is_empty() {
        assert!(!required, "DKIM verifiers missing: {missing:?}");
        say_skipped(&format!("external DKIM verification (missing: {})", missing.join(", ")));
        return None;
    }
    let verifiers = match ExternalDkimVerifiers::start(dns).await {
        Ok(v) => v,
        Err(e) => {
            assert!(!required, "the DKIM verifiers could not start: {e}");
            say_skipped(&format!("external DKIM verification ({e})"));
            return None;
        }
    };
    Some(verifiers.verify(raw).await)
}

/// Asserts that every DKIM signature of each message passes dkimpy, Mail::DKIM and OpenDKIM against the records
/// `dns` serves (see [`external_dkim_verdicts`] for machines without them). A verifier that supports none of
/// the message's algorithms (Debian 12's Mail::DKIM and ed25519) ignores the signatures, as receivers do.
pub async fn assert_dkim_verifies_everywhere(dns: &mailpush_testkit::DnsAuthority, messages: &[&[u8]]) {
    for raw in messages {
        let Some(verdicts) = external_dkim_verdicts(dns, raw).await else {
            return;
        };
        for v in &verdicts {
            assert!(
                v.pass || v.unsupported,
                "{} rejects the signature: {}\n--- message ---\n{}",
                v.verifier,
                v.detail,
                String::from_utf8_lossy(raw)
            );
        }
    }
}

/// A PostgreSQL schema of a test's own, from `MAILPUSH_TEST_POSTGRES_URL`; [`PgSchema::drop_schema`] removes it.
pub struct PgSchema {
    /// The database URL whose connections use the schema (`search_path`).
    pub url: String,
    base: String,
    name: String,
}

impl PgSchema {
    /// A fresh schema (dropped first if it exists); `None`, with a loud `SKIPPED:` line on stderr naming
    /// `test`, when `MAILPUSH_TEST_POSTGRES_URL` is unset.
    pub async fn create(test: &str) -> Option<PgSchema> {
        let Ok(base) = std::env::var("MAILPUSH_TEST_POSTGRES_URL") else {
            say_skipped(&format!("{test} needs MAILPUSH_TEST_POSTGRES_URL (PostgreSQL)"));
            return None;
        };
        let name = format!(
            "{}_{}",
            test.replace(|c: char| !c.is_ascii_alphanumeric(), "_"),
            std::process::id()
        );
        let schema = PgSchema {
            url: format!(
                "{base}{}options=-c%20search_path%3D{name}",
                if base.contains('?') { '&' } else { '?' }
            ),
            base,
            name,
        };
        schema
            .run(&[
                &format!("DROP SCHEMA IF EXISTS {} CASCADE", schema.name),
                &format!("CREATE SCHEMA {}", schema.name),
            ])
            .await;
        Some(schema)
    }

    /// Drops the schema and everything in it.
    pub async fn drop_schema(self) {
        self.run(&[&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name)])
            .await;
    }

    async fn run(&self, statements: &[&str]) {
        let pool = sqlx::PgPool::connect(&self.base).await.expect("connect to PostgreSQL");
        for statement in statements {
            sqlx::query(sqlx::AssertSqlSafe(statement.to_string()))
                .execute(&pool)
                .await
                .expect("schema statement");
        }
        pool.close().await;
    }
}

/// Whether the outside tool `program` runs (`program args…` exits at all). When it does not, the test says so
/// loudly (`SKIPPED: …` on stderr, with `install`) and should return; with the environment variable `require`
/// set to `1` (CI sets each), a missing tool fails the test instead.
pub fn tool_available(program: &str, args: &[&str], require: &str, install: &str) -> bool {
    if std::process::Command::new(program).args(args).output().is_ok() {
        return true;
    }
    assert!(
        std::env::var(require).as_deref() != Ok("1"),
        "{program} is required ({require}=1) but does not run: {install}"
    );
    say_skipped(&format!("{program} is not installed ({install})"));
    false
}

/// The command-line checks every server binary passes (its `tests/cli.rs` calls this with
/// `env!("CARGO_BIN_EXE_<name>")`, which also makes a clean test build produce the executable the end-to-end
/// tests start): `--help` names it, and an invalid `log` filter stops it at start with the key named.
pub fn check_server_cli(exe: &str, name: &str) {
    let out = std::process::Command::new(exe)
        .arg("--help")
        .output()
        .unwrap_or_else(|e| panic!("run {name}: {e}"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains(name));
    let out = std::process::Command::new(exe)
        .env("MAILPUSH_LOG", "not[a]filter")
        .env(
            "MAILPUSH_DATA_DIR",
            std::env::temp_dir().join(format!("{name}-cli-test")),
        )
        .output()
        .unwrap_or_else(|e| panic!("run {name}: {e}"));
    assert!(
        !out.status.success(),
        "{name} must not start with an invalid log filter"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("log") && stderr.contains("not a valid filter"),
        "{stderr}"
    );
}

/// Whether an official SDK a test drives is installed: `program args…` (run in `dir`) exits successfully. When it
/// is not, the test is skipped with a note on stderr and should return; with the environment variable `require` set
/// to `1` (CI sets each), a missing SDK fails the test instead.
pub fn sdk_installed(program: &str, args: &[&str], dir: Option<&Path>, require: &str, install: &str) -> bool {
    let mut cmd = std::process::Command::new(program);
    cmd.args(args).stdout(Stdio::null()).stderr(Stdio::null());
    if let Some(dir) = dir {
        cmd.current_dir(dir);
    }
    if cmd.status().is_ok_and(|s| s.success()) {
        return true;
    }
    assert!(
        std::env::var(require).as_deref() != Ok("1"),
        "the SDK is required ({require}=1) but not installed: {install}"
    );
    say_skipped(&format!("{install} to run this test"));
    false
}

/// A recording sink MX for `example.org` (MX `mx.example.org` → 127.0.0.1 in the testkit DNS) and the environment
/// of a server delivering there, with `extra` settings.
pub struct MailWorld {
    /// The DNS authority the server resolves with.
    pub dns: mailpush_testkit::DnsAuthority,
    /// Where `…@example.org` mail is delivered.
    pub sink: mailpush_testkit::SinkMx,
    /// The server's data directory.
    pub dir: tempfile::TempDir,
    /// The server's environment ([`base_env`] plus the DNS, delivery port and `extra`).
    pub env: HashMap<String, String>,
}

/// Starts the DNS authority and the sink of a [`MailWorld`].
pub async fn mail_world(extra: &[(&str, String)]) -> MailWorld {
    let dns = mailpush_testkit::DnsAuthority::start().await.expect("dns");
    let sink = mailpush_testkit::SinkMx::start_default().await.expect("sink");
    dns.add_mx("example.org", 10, "mx.example.org");
    dns.add_a("mx.example.org", std::net::Ipv4Addr::LOCALHOST);
    let dir = temp_dir();
    let mut all = vec![
        ("MAILPUSH_DNS_SERVERS", dns.addr().to_string()),
        ("MAILPUSH_DELIVERY_PORT", sink.addr().port().to_string()),
    ];
    all.extend(extra.iter().cloned());
    let env = base_env(dir.path(), &all);
    MailWorld { dns, sink, dir, env }
}

/// Runs an SDK script, `program args…` in `dir`, against the API at `api_addr` as `creds` (environment
/// `MAILPUSH_ENDPOINT`, `SECRET_ID`, `SECRET_KEY`, `TO=reader@example.org`, plus `extra`) and parses the JSON it
/// prints; a failing script fails the test with its stderr.
pub async fn run_sdk_script(
    program: &str,
    args: &[&str],
    dir: &Path,
    api_addr: &str,
    creds: &Credentials,
    extra: &[(&str, String)],
) -> serde_json::Value {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .env("MAILPUSH_ENDPOINT", api_addr)
        .env("SECRET_ID", &creds.secret_id)
        .env("SECRET_KEY", &creds.secret_key)
        .env("TO", "reader@example.org")
        .envs(extra.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .await
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{program} {args:?} printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// `GET http://ADDR/metrics` until `ready(text)` holds (30 s at most), then the text. The database gauges are
/// refreshed on a timer, so a scrape right after an action may not show it yet.
pub async fn metrics_until(addr: &str, ready: impl Fn(&str) -> bool) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let text = reqwest::get(format!("http://{addr}/metrics"))
            .await
            .expect("metrics")
            .text()
            .await
            .expect("metrics text");
        if ready(&text) || tokio::time::Instant::now() >= deadline {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Whether `python3` runs (the smtplib tests and examples need nothing more); else the test is skipped with a
/// `SKIPPED:` line, unless `MAILPUSH_REQUIRE_PYTHON_SDK=1` (CI), which fails it.
pub fn python3_available() -> bool {
    tool_available(
        "python3",
        &["--version"],
        "MAILPUSH_REQUIRE_PYTHON_SDK",
        "install Python 3",
    )
}

/// Whether the official Tencent Cloud SES Python SDK is importable. When it is not, the test is skipped with a
/// note, unless `MAILPUSH_REQUIRE_PYTHON_SDK=1` (CI sets it), which fails it.
pub fn python_sdk_available() -> bool {
    sdk_installed(
        "python3",
        &["-c", "import tencentcloud.ses.v20201002"],
        None,
        "MAILPUSH_REQUIRE_PYTHON_SDK",
        "pip install tencentcloud-sdk-python-ses",
    )
}

/// One HTTP request read from `s` as the callback receivers of the tests take it: the header lines (names lower
/// case) and as much body as `Content-Length` says; `None` when the peer closes first.
pub async fn read_http_request(s: &mut tokio::net::TcpStream) -> Option<(Vec<(String, String)>, Vec<u8>)> {
    use tokio::io::AsyncReadExt;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let (head_end, headers) = loop {
        let n = s.read(&mut chunk).await.ok().filter(|n| *n > 0)?;
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..i]).to_string();
            let headers: Vec<(String, String)> = head
                .lines()
                .skip(1)
                .filter_map(|l| l.split_once(':'))
                .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
                .collect();
            break (i + 4, headers);
        }
    };
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let n = s.read(&mut chunk).await.ok().filter(|n| *n > 0)?;
        buf.extend_from_slice(&chunk[..n]);
    }
    Some((headers, buf[head_end..head_end + len].to_vec()))
}
