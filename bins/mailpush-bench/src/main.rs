//! `mailpush-bench`: the load tool.
//!
//! `run` is self-contained: it starts the testkit DNS authority and sink MX, a `mailpush serve` whose MX
//! lookups point at the sink, sets up a verified sending domain and a template as a customer would, then
//! pushes `--mails` messages with `--clients` concurrent clients over the HTTP API (TC3-signed `SendEmail`
//! with a template) or SMTP submission (AUTH PLAIN), and reports accepted/s, API latency, delivered/s end to
//! end, acceptance→sink latency (trigger mail separately), CPU seconds per 1,000 mails and the server's peak
//! RSS. Every mail has its own recipient (`m<N>@example.org`, `t<N>@…` for trigger mail) so the sink's receipt
//! time is matched to the client's acceptance time.
//!
//! With `--api-nodes N` (HTTP mode) the server is scaled out instead: `N` `mailpush-api` and `--worker-nodes`
//! `mailpush-worker` processes on one PostgreSQL database (`--database-url`, a schema of the run's own), the
//! clients taking the API addresses in turn (client `i` sends to node `i mod N`); CPU and peak RSS are then
//! summed over the nodes.
//!
//! `serve` sets up the same server delivering to an external MX port (e.g. Postfix's `smtp-sink`) with
//! loopback as a trusted SMTP network, prints `SMTP_ADDR=…` and `SERVER_PID=…`, and runs until its stdin
//! closes: `benches/postfix_compare.sh` uses it.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};
use mailpush_suite::{
    ApiClient, ServerProcess, b64, base_env, create_account_with, mailpush_cli, temp_dir, verified_sender_with,
};
use mailpush_testkit::{DnsAuthority, SinkConfig, SinkMx};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

#[derive(Parser)]
#[command(name = "mailpush-bench", about = "Load tool for mailpush")]
struct Cli {
    /// Directory holding the `mailpush` binary (default: this binary's directory).
    #[arg(long, global = true)]
    bin_dir: Option<PathBuf>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Start everything, push mail, wait for delivery, report.
    Run(RunArgs),
    /// Start mailpush relaying to an external MX port; print its SMTP address; run until stdin closes.
    Serve(ServeArgs),
    /// The queue alone (no server): enqueue and claim rates of the store, optionally behind a prefilled
    /// backlog of waiting messages.
    Queue(QueueArgs),
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum, Debug)]
enum Mode {
    /// TC3-signed SendEmail with a template.
    Http,
    /// SMTP submission with AUTH PLAIN (plaintext allowed on loopback).
    Smtp,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum, Debug)]
enum Dkim {
    /// ed25519 (DKIMOption 3).
    Ed25519,
    /// RSA-2048 (DKIMOption 1).
    Rsa2048,
}

impl Dkim {
    fn option(self) -> i64 {
        match self {
            Dkim::Ed25519 => 3,
            Dkim::Rsa2048 => 1,
        }
    }
}

#[derive(clap::Args)]
struct RunArgs {
    /// How mail is submitted.
    #[arg(long, value_enum, default_value = "http")]
    mode: Mode,
    /// Mails to send (marketing + trigger).
    #[arg(long, default_value_t = 10_000)]
    mails: u64,
    /// Concurrent clients (HTTP requests in flight / SMTP sessions).
    #[arg(long, default_value_t = 32)]
    clients: u64,
    /// Every Nth mail is trigger mail (TriggerType 1); 0 = none. HTTP mode only.
    #[arg(long, default_value_t = 0)]
    trigger_every: u64,
    /// Total submission rate limit, mails/s (0 = as fast as the server accepts).
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
    /// DKIM key of the sending domain.
    #[arg(long, value_enum, default_value = "ed25519")]
    dkim: Dkim,
    /// Approximate size of the rendered mail body, bytes.
    #[arg(long, default_value_t = 2048)]
    body_bytes: usize,
    /// SMTP mode: open a new session (connect, EHLO, AUTH, one mail, QUIT) for every mail, as most application
    /// SMTP libraries send, instead of reusing each client's session.
    #[arg(long)]
    new_connection: bool,
    /// Give up waiting for delivery after this many seconds.
    #[arg(long, default_value_t = 600)]
    drain_timeout_secs: u64,
    /// Extra `KEY=VALUE` environment for `mailpush serve` (e.g. `MAILPUSH_WORKER_CONCURRENCY=128`).
    #[arg(long = "env")]
    env: Vec<String>,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
    /// Also write every mail's timings to this CSV file (`recipient,trigger,accepted_ms,e2e_ms`: acceptance
    /// since the run's start, acceptance → sink; `e2e_ms` empty for a mail that never arrived), to see when in a
    /// run the slow ones were accepted.
    #[arg(long)]
    latencies: Option<PathBuf>,
    /// Before the server starts, store this many waiting messages (due in 30 days, to another domain) in its
    /// database: the run then measures accepting and claiming with a large queue behind.
    #[arg(long, default_value_t = 0)]
    prefill: u64,
    /// Body size of each prefilled message, bytes.
    #[arg(long, default_value_t = 2048)]
    prefill_body_bytes: usize,
    /// Scale out: run this many `mailpush-api` processes (HTTP mode only, with `--database-url`) instead of
    /// one `mailpush serve`; the clients spread their requests over their addresses in turn.
    #[arg(long, default_value_t = 0)]
    api_nodes: usize,
    /// With `--api-nodes`: how many `mailpush-worker` processes deliver.
    #[arg(long, default_value_t = 1)]
    worker_nodes: usize,
    /// PostgreSQL URL: one `mailpush serve`, or the `--api-nodes` and `--worker-nodes`, on it, in a schema of the
    /// run's own that is dropped after.
    #[arg(long)]
    database_url: Option<String>,
}

#[derive(clap::Args)]
struct QueueArgs {
    /// Store URL (default: a SQLite file in a temporary directory). A `postgres://` URL gets a schema of its
    /// own, dropped afterwards.
    #[arg(long)]
    url: Option<String>,
    /// Waiting messages (due in 30 days) stored before measuring.
    #[arg(long, default_value_t = 0)]
    prefill: u64,
    /// Body size of each prefilled message, bytes.
    #[arg(long, default_value_t = 2048)]
    prefill_body_bytes: usize,
    /// Due messages enqueued, then claimed, in the measured phase.
    #[arg(long, default_value_t = 20_000)]
    mails: u64,
    /// Concurrent enqueuers (group commit batches grow with them).
    #[arg(long, default_value_t = 64)]
    concurrency: u64,
    /// Deliveries per claim (the worker's `worker_batch`).
    #[arg(long, default_value_t = 256)]
    claim_batch: usize,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Port of the MX every recipient domain resolves to (on 127.0.0.1).
    #[arg(long)]
    mx_port: u16,
    /// DKIM key of the sending domain `bench.example.com`.
    #[arg(long, value_enum, default_value = "ed25519")]
    dkim: Dkim,
    /// SMTP submission address of the server.
    #[arg(long, default_value = "127.0.0.1:0")]
    smtp_listen: String,
    /// Recipient domains published with an MX pointing at 127.0.0.1.
    #[arg(long, default_value = "example.org")]
    domains: Vec<String>,
    /// Extra `KEY=VALUE` environment for `mailpush serve`.
    #[arg(long = "env")]
    env: Vec<String>,
}

/// The sending address every mail comes from.
const SENDER: &str = "bench@bench.example.com";
/// SMTP password of [`SENDER`].
const SMTP_PASSWORD: &str = "BenchPassw0rd42";

/// mimalloc, as in the servers: the load tool and its sink share the machine with the server they measure, and
/// the less CPU they take (glibc malloc's paths were about a sixth of theirs), the less they take from the server.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    let bin_dir = match cli.bin_dir {
        Some(d) => d,
        None => std::env::current_exe()?
            .parent()
            .context("binary directory")?
            .to_path_buf(),
    };
    if !bin_dir.join("mailpush").exists() {
        bail!(
            "no mailpush binary in {} (build it or pass --bin-dir)",
            bin_dir.display()
        );
    }
    // The harness finds binaries through this variable. Set before any thread of ours reads the environment.
    // SAFETY: no other thread reads or writes the environment yet (the runtime's workers only run our tasks).
    unsafe { std::env::set_var("MAILPUSH_BIN_DIR", &bin_dir) };
    match cli.cmd {
        Cmd::Run(a) => run(a).await,
        Cmd::Serve(a) => serve(a).await,
        Cmd::Queue(a) => queue(a).await,
    }
}

fn parse_env(pairs: &[String]) -> Result<Vec<(&str, String)>> {
    pairs
        .iter()
        .map(|p| {
            p.split_once('=')
                .map(|(k, v)| (k, v.to_string()))
                .with_context(|| format!("--env {p}: expected KEY=VALUE"))
        })
        .collect()
}

/// A started `mailpush serve` (or the scaled-out nodes) with a verified sender, and what it needs alive.
struct Server {
    _dir: tempfile::TempDir,
    _dns: DnsAuthority,
    /// `mailpush serve`, or the `mailpush-api` nodes followed by the `mailpush-worker` nodes.
    processes: Vec<ServerProcess>,
    /// One client per API address, in node order.
    clients: Vec<ApiClient>,
}

impl Server {
    /// The first process: `mailpush serve` (or the first API node).
    fn main_process(&self) -> &ServerProcess {
        &self.processes[0]
    }

    /// The process ids of every node.
    fn pids(&self) -> Vec<u32> {
        self.processes.iter().filter_map(|p| p.child.id()).collect()
    }

    async fn terminate(self) {
        for p in self.processes {
            p.terminate().await;
        }
    }
}

/// How the server is laid out: one `mailpush serve`, or API and worker nodes on a shared database.
#[derive(Clone, Copy)]
struct Layout {
    api_nodes: usize,
    worker_nodes: usize,
}

impl Layout {
    const ALL_IN_ONE: Layout = Layout {
        api_nodes: 0,
        worker_nodes: 0,
    };
}

async fn start_server(
    mx_port: u16,
    domains: &[String],
    dkim: Dkim,
    smtp_listen: &str,
    extra: &[(&str, String)],
    prefill: Option<(u64, usize)>,
    layout: Layout,
) -> Result<Server> {
    let dns = DnsAuthority::start().await.context("start DNS authority")?;
    for d in domains {
        dns.add_mx(d, 10, &format!("mx.{d}"));
        dns.add_a(&format!("mx.{d}"), Ipv4Addr::LOCALHOST);
    }
    let dir = temp_dir();
    let mut vars = vec![
        ("MAILPUSH_DNS_SERVERS", dns.addr().to_string()),
        ("MAILPUSH_DELIVERY_PORT", mx_port.to_string()),
        ("MAILPUSH_SMTP_LISTEN", smtp_listen.to_string()),
        ("MAILPUSH_SMTP_ALLOW_PLAINTEXT_AUTH_LOOPBACK", "true".to_string()),
        ("MAILPUSH_SMTP_TRUSTED_NETWORKS", "127.0.0.0/8".to_string()),
        ("MAILPUSH_SMTP_TRUSTED_ACCOUNT", "bench".to_string()),
        // Every mail goes to 127.0.0.1: the per-IP cap would otherwise limit the clients.
        ("MAILPUSH_SMTP_MAX_CONNECTIONS_PER_IP", "1000".to_string()),
        // A load test measures the engine, not the sending policy: lift the per-account admission limits
        // (the daily quota is lifted below by putting the domain at the top reputation level).
        ("MAILPUSH_LIMIT_SENDS_PER_SECOND", "1000000000".to_string()),
        ("MAILPUSH_LIMIT_PER_RECIPIENT_PER_HOUR", "0".to_string()), // 0 = no per-recipient limit
        ("MAILPUSH_LIMIT_DAILY_CAP", "1000000000".to_string()),
        // ... and the domain warm-up (a new domain would otherwise deliver 50 mails on its first day).
        ("MAILPUSH_WARMUP_DOMAIN_RAMP", String::new()),
        ("MAILPUSH_LEVEL_EVAL_SECS", "0".to_string()),
        // Nor the per-destination shaping (10 connections per receiving domain by default): every transaction
        // the worker can run goes out. Sources stay the OS's choice, which is never warmed up.
        ("MAILPUSH_DESTINATION_DEFAULT_LIMITS", "100000/1000/0".to_string()),
    ];
    vars.extend(extra.iter().cloned());
    let env = base_env(dir.path(), &vars);
    let creds = create_account_with(&env, "bench", &[]).await;
    if let Some((n, body_bytes)) = prefill.filter(|(n, _)| *n > 0) {
        let url = env
            .get("MAILPUSH_DATABASE_URL")
            .cloned()
            .unwrap_or_else(|| format!("sqlite:{}", dir.path().join("mailpush.db").display()));
        let store = mailpush_store::Store::open(&url, mailpush_store::StoreOptions::default())
            .await
            .context("open the server's store for prefilling")?;
        let account = store
            .accounts()
            .account_by_name("bench")
            .await?
            .context("the bench account is missing")?
            .id;
        let t0 = Instant::now();
        prefill_waiting(&store, &url, account, n, body_bytes).await?;
        eprintln!(
            "mailpush-bench: prefilled {n} waiting messages in {:.1} s",
            t0.elapsed().as_secs_f64()
        );
        store.close().await;
    }
    let mut processes = Vec::new();
    if layout.api_nodes == 0 {
        processes.push(ServerProcess::start("mailpush", &["serve"], &env).await);
    } else {
        for _ in 0..layout.api_nodes {
            processes.push(ServerProcess::start("mailpush-api", &[], &env).await);
        }
        // A worker node announces its admin listener, which is how the harness sees it up.
        let mut worker_env = env.clone();
        worker_env.insert("MAILPUSH_ADMIN_LISTEN".into(), "127.0.0.1:0".into());
        for _ in 0..layout.worker_nodes {
            processes.push(ServerProcess::start("mailpush-worker", &[], &worker_env).await);
        }
    }
    let clients: Vec<ApiClient> = processes[..layout.api_nodes.max(1)]
        .iter()
        .map(|p| ApiClient::new(&p.api_addr, &creds))
        .collect();
    let client = &clients[0];
    verified_sender_with(client, &dns, SENDER, dkim.option()).await;
    let domain = SENDER.rsplit('@').next().unwrap_or_default();
    mailpush_cli(
        &env,
        &["account", "set", "bench", "--domain-level", &format!("{domain}=20")],
    )
    .await;
    let r = client
        .call(
            "UpdateEmailSmtpPassWord",
            &json!({ "EmailAddress": SENDER, "Password": SMTP_PASSWORD }),
        )
        .await;
    if let Some(e) = r.get("Error") {
        bail!("UpdateEmailSmtpPassWord: {e}");
    }
    Ok(Server {
        _dir: dir,
        _dns: dns,
        processes,
        clients,
    })
}

// ------------------------------------------------------------------------------------------------------
// /proc of the server

/// CPU seconds (user + system) of process `pid` so far.
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the `(comm)`: state is field 3, utime 14, stime 15 (1-based).
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) / clock_ticks())
}

/// CPU seconds of every process in `pids` together (NaN when one cannot be read).
fn nodes_cpu_seconds(pids: &[u32]) -> f64 {
    pids.iter().map(|p| cpu_seconds(*p).unwrap_or(f64::NAN)).sum()
}

fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// A `kB` field of /proc/PID/status (`VmHWM`, `VmRSS`), in MB.
fn status_mb(pid: u32, field: &str) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

// ------------------------------------------------------------------------------------------------------
// run

/// What a client observed for one mail.
struct Sent {
    /// Recipient (unique per mail).
    rcpt: String,
    trigger: bool,
    accepted_at: SystemTime,
    latency: Duration,
}

/// Sentences the template body is made of (varied, so the review engine sees ordinary prose).
const SENTENCES: [&str; 8] = [
    "Your order has left our warehouse this morning and is now on its way to you.",
    "It should arrive within three working days; the carrier will call before delivery.",
    "If you are not at home, the parcel will wait for you at the nearest pick-up point.",
    "You can change the delivery address by replying to this message with the new one.",
    "Thank you for shopping with us, we hope the products meet your expectations.",
    "Our support team answers every question within one working day, in English or Chinese.",
    "Keep this message as your receipt: it lists everything you paid for in this order.",
    "We wish you a pleasant week and look forward to seeing you again soon.",
];

fn template_html(bytes: usize) -> String {
    let mut html = String::from("<p>Dear {{name}}, here is the news about your order {{order}}.</p>\n");
    let mut i = 0;
    while html.len() < bytes.saturating_sub(40) {
        html.push_str("<p>");
        html.push_str(SENTENCES[i % SENTENCES.len()]);
        html.push_str("</p>\n");
        i += 1;
    }
    html.push_str("<p>Order {{order}}, {{name}}.</p>");
    html
}

fn template_text(bytes: usize) -> String {
    let mut text = String::from("Dear {{name}}, here is the news about your order {{order}}.\n");
    let mut i = 0;
    while text.len() < bytes / 2 {
        text.push_str(SENTENCES[i % SENTENCES.len()]);
        text.push('\n');
        i += 1;
    }
    text
}

async fn create_template(client: &ApiClient, body_bytes: usize) -> Result<i64> {
    // Html and Text together make about `body_bytes` once rendered.
    let html = template_html(body_bytes * 2 / 3);
    let text = template_text(body_bytes * 2 / 3);
    let r = client
        .call(
            "CreateEmailTemplate",
            &json!({
                "TemplateName": "bench",
                "TemplateContent": { "Html": b64(html.as_bytes()), "Text": b64(text.as_bytes()) },
            }),
        )
        .await;
    let id = r["TemplateID"]
        .as_i64()
        .with_context(|| format!("CreateEmailTemplate: {r}"))?;
    let r = client.call("GetEmailTemplate", &json!({ "TemplateID": id })).await;
    if r["TemplateStatus"] != 0 {
        bail!("the bench template was not approved: {r}");
    }
    Ok(id)
}

/// Waits until mail number `seq` may start under `--rate`.
async fn pace(start: Instant, rate: f64, seq: u64) {
    if rate > 0.0 {
        let due = start + Duration::from_secs_f64(seq as f64 / rate);
        tokio::time::sleep_until(due.into()).await;
    }
}

async fn http_client(
    client: ApiClient,
    template_id: i64,
    next: Arc<AtomicU64>,
    args: Arc<RunArgs>,
    start: Instant,
) -> (Vec<Sent>, u64) {
    let mut sent = Vec::new();
    let mut errors = 0;
    loop {
        let seq = next.fetch_add(1, Ordering::Relaxed);
        if seq >= args.mails {
            break;
        }
        pace(start, args.rate, seq).await;
        let trigger = args.trigger_every > 0 && seq.is_multiple_of(args.trigger_every);
        let rcpt = format!("{}{seq}@example.org", if trigger { "t" } else { "m" });
        let data = json!({ "name": format!("客户 {seq}"), "order": format!("A-{seq}") }).to_string();
        let params = json!({
            "FromEmailAddress": format!("Bench <{SENDER}>"),
            "Destination": [rcpt],
            "Subject": "Order {{order}} has shipped",
            "Template": { "TemplateID": template_id, "TemplateData": data },
            "TriggerType": if trigger { 1 } else { 0 },
        });
        let t0 = Instant::now();
        let r = client.call("SendEmail", &params).await;
        let latency = t0.elapsed();
        if r["MessageId"].is_string() {
            sent.push(Sent {
                rcpt,
                trigger,
                accepted_at: SystemTime::now(),
                latency,
            });
        } else {
            errors += 1;
            if errors <= 3 {
                eprintln!("mailpush-bench: SendEmail refused: {r}");
            }
        }
    }
    (sent, errors)
}

/// Reads one (possibly multi-line) SMTP reply; returns its code and last line.
async fn smtp_reply(r: &mut BufReader<tokio::net::tcp::OwnedReadHalf>) -> Result<(u16, String)> {
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line).await? == 0 {
            bail!("server closed the connection");
        }
        if line.len() < 4 {
            bail!("short reply {line:?}");
        }
        if line.as_bytes()[3] != b'-' {
            let code = line[..3].parse().with_context(|| format!("bad reply {line:?}"))?;
            return Ok((code, line.trim_end().to_string()));
        }
    }
}

async fn smtp_expect(
    r: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
    w: &mut tokio::net::tcp::OwnedWriteHalf,
    cmd: &[u8],
    want: u16,
) -> Result<String> {
    if !cmd.is_empty() {
        w.write_all(cmd).await?;
    }
    let (code, line) = smtp_reply(r).await?;
    if code != want {
        bail!("{} → {line}", String::from_utf8_lossy(cmd).trim_end());
    }
    Ok(line)
}

fn smtp_body(rcpt: &str, seq: u64, bytes: usize) -> Vec<u8> {
    let mut m = format!(
        "From: Bench <{SENDER}>\r\nTo: <{rcpt}>\r\nSubject: Order A-{seq} has shipped\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
    );
    let mut i = 0;
    while m.len() < bytes {
        m.push_str(SENTENCES[i % SENTENCES.len()]);
        m.push_str("\r\n");
        i += 1;
    }
    m.push_str(".\r\n");
    m.into_bytes()
}

async fn smtp_client(addr: String, next: Arc<AtomicU64>, args: Arc<RunArgs>, start: Instant) -> (Vec<Sent>, u64) {
    let mut sent = Vec::new();
    let mut errors = 0;
    if let Err(e) = smtp_session(&addr, &next, &args, start, &mut sent).await {
        errors += 1;
        eprintln!("mailpush-bench: SMTP session failed: {e:#}");
    }
    (sent, errors)
}

async fn smtp_session(
    addr: &str,
    next: &AtomicU64,
    args: &RunArgs,
    start: Instant,
    sent: &mut Vec<Sent>,
) -> Result<()> {
    let mut session = None;
    loop {
        let seq = next.fetch_add(1, Ordering::Relaxed);
        if seq >= args.mails {
            break;
        }
        pace(start, args.rate, seq).await;
        let rcpt = format!("m{seq}@example.org");
        // With a new connection per mail, its set-up is part of the mail's latency.
        let t0 = Instant::now();
        let (r, w) = match &mut session {
            Some(open) => open,
            None => session.insert(smtp_open(addr).await?),
        };
        smtp_expect(r, w, format!("MAIL FROM:<{SENDER}>\r\n").as_bytes(), 250).await?;
        smtp_expect(r, w, format!("RCPT TO:<{rcpt}>\r\n").as_bytes(), 250).await?;
        smtp_expect(r, w, b"DATA\r\n", 354).await?;
        smtp_expect(r, w, &smtp_body(&rcpt, seq, args.body_bytes), 250).await?;
        sent.push(Sent {
            rcpt,
            trigger: false,
            accepted_at: SystemTime::now(),
            latency: t0.elapsed(),
        });
        if args.new_connection
            && let Some((r, w)) = session.take()
        {
            smtp_quit(r, w).await;
        }
    }
    if let Some((r, w)) = session {
        smtp_quit(r, w).await;
    }
    Ok(())
}

/// A session after AUTH: its reply reader and its writer.
type SmtpConnection = (
    BufReader<tokio::net::tcp::OwnedReadHalf>,
    tokio::net::tcp::OwnedWriteHalf,
);

/// Connects, greets and authenticates as the bench sender.
async fn smtp_open(addr: &str) -> Result<SmtpConnection> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r);
    smtp_expect(&mut r, &mut w, b"", 220).await?;
    smtp_expect(&mut r, &mut w, b"EHLO bench.client\r\n", 250).await?;
    let plain = b64(format!("\0{SENDER}\0{SMTP_PASSWORD}").as_bytes());
    smtp_expect(&mut r, &mut w, format!("AUTH PLAIN {plain}\r\n").as_bytes(), 235).await?;
    Ok((r, w))
}

/// Ends a session politely, waiting briefly for the server to close it.
async fn smtp_quit(mut r: BufReader<tokio::net::tcp::OwnedReadHalf>, mut w: tokio::net::tcp::OwnedWriteHalf) {
    let _ = w.write_all(b"QUIT\r\n").await;
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(2), r.read_to_end(&mut rest)).await;
}

/// Writes each mail's acceptance time and acceptance → sink latency, in milliseconds, as CSV.
fn write_latencies(
    path: &std::path::Path,
    sent: &[Sent],
    receipts: &HashMap<String, SystemTime>,
    start: SystemTime,
) -> Result<()> {
    let ms = |later: SystemTime, earlier: SystemTime| {
        later.duration_since(earlier).unwrap_or_default().as_secs_f64() * 1000.0
    };
    let mut out = String::from("recipient,trigger,accepted_ms,e2e_ms\n");
    for s in sent {
        let e2e = receipts
            .get(&s.rcpt)
            .map(|at| format!("{:.1}", ms(*at, s.accepted_at)))
            .unwrap_or_default();
        out.push_str(&format!(
            "{},{},{:.1},{e2e}\n",
            s.rcpt,
            s.trigger,
            ms(s.accepted_at, start)
        ));
    }
    std::fs::write(path, out).with_context(|| format!("write {}", path.display()))
}

/// The `p`-quantile (0..=1) of sorted values.
fn quantile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(f64::total_cmp);
    v
}

/// The machine's RSA-2048 signing ceiling, signatures per second on every core together, as `openssl speed`
/// measures it (`-multi` one process per core); `None` without `openssl` or when its output is not understood.
fn openssl_rsa2048_ceiling() -> Option<f64> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let out = std::process::Command::new("openssl")
        .args(["speed", "-seconds", "2", "-multi", &cores.to_string(), "rsa2048"])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    parse_openssl_rsa_sign_rate(&String::from_utf8_lossy(&out.stdout))
}

/// `sign/s` of the `rsa 2048 bits` row of `openssl speed` output: its first number that is not a time (times
/// end in `s`).
fn parse_openssl_rsa_sign_rate(output: &str) -> Option<f64> {
    let row = output
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with("rsa") && l.contains("2048 bits"))?;
    row.split("bits")
        .nth(1)?
        .split_whitespace()
        .find(|t| !t.ends_with('s'))
        .and_then(|t| t.parse().ok())
}

async fn run(args: RunArgs) -> Result<()> {
    // Measured before any server starts, on the idle machine of this run.
    let ceiling = match args.dkim {
        Dkim::Rsa2048 => openssl_rsa2048_ceiling(),
        Dkim::Ed25519 => None,
    };
    if args.api_nodes == 0 && args.database_url.is_none() {
        return run_on(args, None, ceiling).await;
    }
    if args.api_nodes > 0 && args.mode != Mode::Http {
        bail!("--api-nodes spreads HTTP load: use --mode http");
    }
    if args.api_nodes > 0 && args.worker_nodes == 0 {
        bail!("--api-nodes needs at least one --worker-nodes to deliver");
    }
    let Some(base) = args.database_url.clone().filter(|u| u.starts_with("postgres")) else {
        bail!("--api-nodes needs --database-url postgres://… (the nodes share one PostgreSQL database)");
    };
    for node in ["mailpush-api", "mailpush-worker"] {
        if args.api_nodes > 0 && !mailpush_suite::bin_path(node).exists() {
            bail!("--api-nodes needs the {node} binary beside mailpush (build the workspace)");
        }
    }
    let schema = format!("mp_bench_run_{}", std::process::id());
    let url = create_pg_schema(&base, &schema).await?;
    let result = run_on(args, Some(url), ceiling).await;
    drop_pg_schema(&base, &schema).await?;
    result
}

/// [`run`] on one `mailpush serve` (its own SQLite file when `database_url` is `None`) or, with `--api-nodes`, on
/// scaled-out nodes sharing `database_url`; `ceiling` is the machine's RSA signing rate measured before.
async fn run_on(args: RunArgs, database_url: Option<String>, ceiling: Option<f64>) -> Result<()> {
    let mut extra = parse_env(&args.env)?;
    let layout = match &database_url {
        Some(url) if args.api_nodes > 0 => {
            extra.push(("MAILPUSH_DATABASE_URL", url.clone()));
            Layout {
                api_nodes: args.api_nodes,
                worker_nodes: args.worker_nodes,
            }
        }
        Some(url) => {
            extra.push(("MAILPUSH_DATABASE_URL", url.clone()));
            Layout::ALL_IN_ONE
        }
        None => Layout::ALL_IN_ONE,
    };
    let sink = SinkMx::start(SinkConfig::default()).await.context("start sink")?;
    let server = start_server(
        sink.port(),
        &["example.org".to_string()],
        args.dkim,
        "127.0.0.1:0",
        &extra,
        Some((args.prefill, args.prefill_body_bytes)),
        layout,
    )
    .await?;
    let pids = server.pids();
    let template_id = create_template(&server.clients[0], args.body_bytes).await?;
    // Setup traffic (none reaches the sink, but be sure).
    sink.take_messages();
    let base_count = sink.message_count() as u64;

    // Collect receipt times while mail flows, so the sink never holds every body.
    let receipts: Arc<std::sync::Mutex<HashMap<String, SystemTime>>> = Arc::default();
    let sink = Arc::new(sink);
    let collector = {
        let sink = sink.clone();
        let receipts = receipts.clone();
        tokio::spawn(async move {
            loop {
                let got = sink.take_messages();
                if !got.is_empty() {
                    let mut map = receipts.lock().unwrap_or_else(|e| e.into_inner());
                    for m in got {
                        for r in m.rcpt_to {
                            map.insert(r, m.received_at);
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };

    let cpu0 = nodes_cpu_seconds(&pids);
    let args = Arc::new(args);
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let start_wall = SystemTime::now();
    let mut tasks = Vec::new();
    let smtp_addr = server.main_process().announced_addr("smtp").unwrap_or_default();
    for c in 0..args.clients {
        let (next, a) = (next.clone(), args.clone());
        // Client `c` sends to API node `c mod N`: the load is spread over the nodes in turn.
        let api = server.clients[c as usize % server.clients.len()].clone();
        tasks.push(match args.mode {
            Mode::Http => tokio::spawn(http_client(api, template_id, next, a, start)),
            Mode::Smtp => tokio::spawn(smtp_client(smtp_addr.clone(), next, a, start)),
        });
    }
    let mut sent = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (s, e) = t.await?;
        sent.extend(s);
        errors += e;
    }
    let submit_secs = start.elapsed().as_secs_f64();
    let accepted = sent.len() as u64;

    // Wait for delivery.
    let deadline = Instant::now() + Duration::from_secs(args.drain_timeout_secs);
    let mut peak_rss_mid = 0.0f64;
    loop {
        let delivered = sink.message_count() as u64 - base_count;
        peak_rss_mid = peak_rss_mid.max(pids.iter().filter_map(|p| status_mb(*p, "VmRSS:")).sum());
        if delivered >= accepted || Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let cpu1 = nodes_cpu_seconds(&pids);
    // Summed over the nodes (each peak is its own; their sum bounds what they held at once).
    let hwm: f64 = pids.iter().map(|p| status_mb(*p, "VmHWM:").unwrap_or(f64::NAN)).sum();
    // Let the collector take the last receipts.
    tokio::time::sleep(Duration::from_millis(100)).await;
    collector.abort();
    let receipts = std::mem::take(&mut *receipts.lock().unwrap_or_else(|e| e.into_inner()));

    let mut e2e_all = Vec::new();
    let mut e2e_trigger = Vec::new();
    let mut e2e_bulk = Vec::new();
    let mut last_receipt = start_wall;
    for s in &sent {
        if let Some(at) = receipts.get(&s.rcpt) {
            let d = at.duration_since(s.accepted_at).unwrap_or_default().as_secs_f64() * 1000.0;
            e2e_all.push(d);
            if s.trigger {
                e2e_trigger.push(d);
            } else {
                e2e_bulk.push(d);
            }
            last_receipt = last_receipt.max(*at);
        }
    }
    if let Some(path) = &args.latencies {
        write_latencies(path, &sent, &receipts, start_wall)?;
    }
    let delivered = e2e_all.len() as u64;
    let e2e_secs = last_receipt
        .duration_since(start_wall)
        .unwrap_or_default()
        .as_secs_f64();
    let api = sorted(sent.iter().map(|s| s.latency.as_secs_f64() * 1000.0).collect());
    let (e2e_all, e2e_trigger, e2e_bulk) = (sorted(e2e_all), sorted(e2e_trigger), sorted(e2e_bulk));
    let cpu = cpu1 - cpu0;
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load = load.split_whitespace().take(3).collect::<Vec<_>>().join(" ");
    let report = json!({
        "mode": format!("{:?}", args.mode).to_lowercase(),
        "dkim": format!("{:?}", args.dkim).to_lowercase(),
        "mails": args.mails,
        "clients": args.clients,
        "rate_limit": args.rate,
        "trigger_every": args.trigger_every,
        "accepted": accepted,
        "refused_or_failed": errors,
        "delivered": delivered,
        "submit_seconds": submit_secs,
        "accepted_per_sec": accepted as f64 / submit_secs,
        "api_latency_ms_p50": quantile(&api, 0.5),
        "api_latency_ms_p99": quantile(&api, 0.99),
        "delivered_per_sec": if e2e_secs > 0.0 { delivered as f64 / e2e_secs } else { 0.0 },
        "e2e_ms_p50": quantile(&e2e_all, 0.5),
        "e2e_ms_p99": quantile(&e2e_all, 0.99),
        "e2e_bulk_ms_p50": quantile(&e2e_bulk, 0.5),
        "e2e_bulk_ms_p99": quantile(&e2e_bulk, 0.99),
        "trigger_mails": e2e_trigger.len(),
        "e2e_trigger_ms_p50": quantile(&e2e_trigger, 0.5),
        "e2e_trigger_ms_p99": quantile(&e2e_trigger, 0.99),
        "server_cpu_seconds": cpu,
        "cpu_seconds_per_1000": if accepted > 0 { cpu * 1000.0 / accepted as f64 } else { f64::NAN },
        "server_peak_rss_mb": hwm,
        "prefilled_waiting": args.prefill,
        "api_nodes": layout.api_nodes,
        "worker_nodes": layout.worker_nodes,
        "loadavg_at_end": load,
        "openssl_rsa2048_signs_per_sec": ceiling,
        "delivered_share_of_signing_ceiling": ceiling.filter(|c| *c > 0.0 && e2e_secs > 0.0)
            .map(|c| delivered as f64 / e2e_secs / c),
    });
    if args.json {
        println!("{report}");
    } else {
        println!(
            "mailpush-bench: {} mode, DKIM {}, {} mails, {} clients, {} waiting in the queue (load avg at end: {load})",
            report["mode"].as_str().unwrap_or(""),
            report["dkim"].as_str().unwrap_or(""),
            args.mails,
            args.clients,
            args.prefill
        );
        if layout.api_nodes > 0 {
            println!(
                "  nodes           {} mailpush-api, {} mailpush-worker on PostgreSQL (CPU and RSS summed)",
                layout.api_nodes, layout.worker_nodes
            );
        }
        let f = |k: &str| report[k].as_f64().map(|v| format!("{v:.1}")).unwrap_or("-".into());
        println!(
            "  accepted        {accepted} ({} refused/failed) in {:.2} s = {} /s",
            errors,
            submit_secs,
            f("accepted_per_sec")
        );
        println!(
            "  API latency     p50 {} ms, p99 {} ms",
            f("api_latency_ms_p50"),
            f("api_latency_ms_p99")
        );
        println!(
            "  delivered       {delivered} = {} /s end to end",
            f("delivered_per_sec")
        );
        if let (Some(c), Some(share)) = (
            report["openssl_rsa2048_signs_per_sec"].as_f64(),
            report["delivered_share_of_signing_ceiling"].as_f64(),
        ) {
            println!(
                "  RSA ceiling     openssl speed: {c:.0} signatures/s on all cores; delivered = {:.0} % of it",
                share * 100.0
            );
        }
        println!(
            "  accept→sink     p50 {} ms, p99 {} ms",
            f("e2e_ms_p50"),
            f("e2e_ms_p99")
        );
        if !e2e_trigger.is_empty() {
            println!(
                "    trigger ({})  p50 {} ms, p99 {} ms; marketing p50 {} ms, p99 {} ms",
                e2e_trigger.len(),
                f("e2e_trigger_ms_p50"),
                f("e2e_trigger_ms_p99"),
                f("e2e_bulk_ms_p50"),
                f("e2e_bulk_ms_p99")
            );
        }
        println!(
            "  server CPU      {:.2} s = {} s per 1,000 mails; peak RSS {:.1} MB",
            cpu,
            f("cpu_seconds_per_1000"),
            hwm
        );
    }
    server.terminate().await;
    if delivered < accepted {
        bail!("only {delivered} of {accepted} accepted mails reached the sink");
    }
    Ok(())
}

// ------------------------------------------------------------------------------------------------------
// serve

async fn serve(args: ServeArgs) -> Result<()> {
    let extra = parse_env(&args.env)?;
    let server = start_server(
        args.mx_port,
        &args.domains,
        args.dkim,
        &args.smtp_listen,
        &extra,
        None,
        Layout::ALL_IN_ONE,
    )
    .await?;
    let pid = server.main_process().child.id().context("server pid")?;
    let smtp = server
        .main_process()
        .announced_addr("smtp")
        .context("the server announced no SMTP address")?;
    println!("SMTP_ADDR={smtp}");
    println!("API_ADDR={}", server.main_process().api_addr);
    println!("SERVER_PID={pid}");
    println!("SENDER={SENDER}");
    println!("READY");
    // Run until stdin closes (the script keeps a pipe open) or Ctrl-C.
    let stdin_closed = tokio::task::spawn_blocking(|| {
        use std::io::Read;
        let mut buf = [0u8; 64];
        while let Ok(n) = std::io::stdin().read(&mut buf) {
            if n == 0 {
                break;
            }
        }
    });
    tokio::select! {
        _ = stdin_closed => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    let cpu = cpu_seconds(pid).unwrap_or(f64::NAN);
    let hwm = status_mb(pid, "VmHWM:").unwrap_or(f64::NAN);
    eprintln!("mailpush-bench: server CPU {cpu:.2} s, peak RSS {hwm:.1} MB");
    server.terminate().await;
    Ok(())
}

// ------------------------------------------------------------------------------------------------------
// the queue alone, and prefilling

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A one-recipient message of `body_bytes`, due `delay_ms` from now.
fn queue_message(
    account: mailpush_model::AccountId,
    rcpt: String,
    domain: &str,
    lane: mailpush_model::Lane,
    delay_ms: i64,
    body_bytes: usize,
) -> mailpush_model::queue::NewMessage {
    let now = now_ms();
    mailpush_model::queue::NewMessage {
        id: mailpush_model::MessageId::generate(),
        account_id: account,
        envelope_from: SENDER.to_string(),
        from_address: SENDER.to_string(),
        subject: "Your order has shipped".into(),
        lane,
        template_id: 0,
        tls_requirement: mailpush_model::TlsRequirement::None,
        request_ms: now,
        not_before_ms: now + delay_ms,
        expires_ms: now + delay_ms + 72 * 3_600_000,
        body: vec![b'x'; body_bytes],
        recipients: vec![mailpush_model::queue::NewRecipient {
            address: rcpt,
            domain: domain.to_string(),
            kind: mailpush_model::RecipientKind::To,
            send_status: mailpush_model::SendStatus::Ok,
            deliver_message: None,
        }],
    }
}

/// Enqueues `n` messages from `tasks` concurrent enqueuers (so the store's group commit batches them);
/// `make(i)` builds message `i`.
async fn enqueue_many<F>(store: &mailpush_store::Store, n: u64, tasks: u64, make: F) -> Result<()>
where
    F: Fn(u64) -> mailpush_model::queue::NewMessage + Send + Sync + 'static,
{
    let make = Arc::new(make);
    let next = Arc::new(AtomicU64::new(0));
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..tasks.max(1) {
        let (store, make, next) = (store.clone(), make.clone(), next.clone());
        set.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return Ok::<(), mailpush_store::StoreError>(());
                }
                store.queue().enqueue(make(i)).await?;
            }
        });
    }
    while let Some(r) = set.join_next().await {
        r??;
    }
    Ok(())
}

/// Copies of the first prefilled message, made by SQLite itself: every row is the store's own (written by its
/// enqueue) but for the message id (`<first id>-<i>`) and the recipient (`w<i>@waiting.example.net`).
const PREFILL_SQLITE: [&str; 3] = [
    "WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < $1) \
     INSERT INTO messages (id, account_id, envelope_from, from_address, subject, lane, request_ms, not_before_ms, \
     expires_ms, open_count) SELECT $2 || '-' || i, account_id, envelope_from, from_address, subject, lane, \
     request_ms, not_before_ms, expires_ms, open_count FROM messages, seq WHERE id = $2",
    "WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < $1) \
     INSERT INTO message_bodies (message_id, body, spool_segment, spool_offset, spool_length) \
     SELECT $2 || '-' || i, body, spool_segment, spool_offset, spool_length FROM message_bodies, seq \
     WHERE message_id = $2",
    "WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < $1) \
     INSERT INTO deliveries (message_id, account_id, recipient, domain, kind, lane, request_ms, state, send_status, \
     deliver_status, deliver_message, deliver_ms, next_attempt_ms) SELECT $2 || '-' || i, account_id, \
     'w' || i || '@waiting.example.net', domain, kind, lane, request_ms, state, send_status, deliver_status, \
     deliver_message, deliver_ms, next_attempt_ms FROM deliveries, seq WHERE message_id = $2",
];

/// Stores `n` waiting marketing messages (due in 30 days, to `waiting.example.net`). The first goes through
/// the store's ordinary enqueue; on SQLite (`url`) the rest are copies of it made in one transaction
/// ([`PREFILL_SQLITE`]: a million in seconds rather than minutes), elsewhere they are enqueued too, 512 per
/// group-commit transaction.
async fn prefill_waiting(
    store: &mailpush_store::Store,
    url: &str,
    account: mailpush_model::AccountId,
    n: u64,
    body_bytes: usize,
) -> Result<()> {
    const THIRTY_DAYS_MS: i64 = 30 * 24 * 3_600_000;
    if url.starts_with("sqlite:") && n > 1 {
        use sqlx::{ConnectOptions, Connection};
        use std::str::FromStr;
        let first = queue_message(
            account,
            "w0@waiting.example.net".into(),
            "waiting.example.net",
            mailpush_model::Lane::Batch,
            THIRTY_DAYS_MS,
            body_bytes,
        );
        let id = first.id.as_str().to_string();
        store.queue().enqueue(first).await?;
        let mut conn = sqlx::sqlite::SqliteConnectOptions::from_str(url)?
            .busy_timeout(Duration::from_secs(30))
            .connect()
            .await?;
        let mut tx = conn.begin().await?;
        for sql in PREFILL_SQLITE {
            sqlx::query(sql)
                .bind(i64::try_from(n - 1)?)
                .bind(&id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        conn.close().await?;
        return Ok(());
    }
    enqueue_many(store, n, 1024, move |i| {
        queue_message(
            account,
            format!("w{i}@waiting.example.net"),
            "waiting.example.net",
            mailpush_model::Lane::Batch,
            THIRTY_DAYS_MS,
            body_bytes,
        )
    })
    .await
}

/// A PostgreSQL schema of our own (dropped by [`drop_pg_schema`]); returns the URL that uses it.
async fn create_pg_schema(base: &str, schema: &str) -> Result<String> {
    use sqlx::Connection;
    let mut admin = sqlx::PgConnection::connect(base).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&mut admin)
        .await?;
    let sep = if base.contains('?') { '&' } else { '?' };
    Ok(format!("{base}{sep}options=-c%20search_path%3D{schema}"))
}

async fn drop_pg_schema(base: &str, schema: &str) -> Result<()> {
    use sqlx::Connection;
    let mut admin = sqlx::PgConnection::connect(base).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
        .execute(&mut admin)
        .await?;
    Ok(())
}

async fn queue(args: QueueArgs) -> Result<()> {
    let dir = temp_dir();
    let pg_base = args.url.clone().filter(|u| u.starts_with("postgres"));
    let schema = format!("mp_bench_queue_{}", std::process::id());
    let url = match (&args.url, &pg_base) {
        (_, Some(base)) => create_pg_schema(base, &schema).await?,
        (Some(u), None) => u.clone(),
        (None, None) => format!("sqlite:{}", dir.path().join("queue.db").display()),
    };
    let result = queue_measure(&args, &url).await;
    if let Some(base) = &pg_base {
        drop_pg_schema(base, &schema).await?;
    }
    result
}

async fn queue_measure(args: &QueueArgs, url: &str) -> Result<()> {
    use mailpush_store::{AttemptResult, ClaimRequest, DeliveryOutcome, NewAccount, Store, StoreOptions};
    let store = Store::open(url, StoreOptions::default()).await?;
    let account = store
        .accounts()
        .create_account(NewAccount {
            name: "bench".into(),
            app_id: 1_300_000_000,
            secret_id: format!("AKIDbench{}", std::process::id()),
            secret_key_sealed: b"sealed".to_vec(),
            created_ms: now_ms(),
        })
        .await?
        .id;
    let mut prefill_secs = 0.0;
    if args.prefill > 0 {
        let t0 = Instant::now();
        prefill_waiting(&store, url, account, args.prefill, args.prefill_body_bytes).await?;
        prefill_secs = t0.elapsed().as_secs_f64();
    }
    // Enqueue: due now, 2 KB, group commit from `concurrency` enqueuers.
    let t0 = Instant::now();
    enqueue_many(&store, args.mails, args.concurrency, move |i| {
        queue_message(
            account,
            format!("m{i}@example.org"),
            "example.org",
            mailpush_model::Lane::Batch,
            0,
            2048,
        )
    })
    .await?;
    let enqueue_secs = t0.elapsed().as_secs_f64();
    // Claim everything due, recording an outcome per claimed delivery as the worker does.
    let (mut claimed, mut claims) = (0u64, 0u64);
    let (mut claim_secs, mut outcome_secs) = (0.0, 0.0);
    loop {
        let t = Instant::now();
        let got = store
            .queue()
            .claim(ClaimRequest {
                worker: "bench".into(),
                limit: args.claim_batch,
                lease_ms: 600_000,
                now_ms: now_ms(),
            })
            .await?;
        claim_secs += t.elapsed().as_secs_f64();
        if got.is_empty() {
            break;
        }
        claims += 1;
        claimed += got.len() as u64;
        let at = now_ms();
        let outcomes = got
            .iter()
            .map(|d| DeliveryOutcome {
                delivery_id: d.delivery_id,
                lease: d.lease,
                at_ms: at,
                result: AttemptResult::Delivered {
                    reply: "250 2.0.0 Ok".into(),
                },
                remote: None,
            })
            .collect();
        let t = Instant::now();
        store.queue().record_outcomes(outcomes).await?;
        outcome_secs += t.elapsed().as_secs_f64();
    }
    let stats = store.commit_stats();
    store.close().await;
    let rss = status_mb(std::process::id(), "VmHWM:").unwrap_or(f64::NAN);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load = load.split_whitespace().take(3).collect::<Vec<_>>().join(" ");
    let backend = if url.starts_with("postgres") {
        "postgres"
    } else {
        "sqlite"
    };
    let report = json!({
        "backend": backend,
        "prefilled_waiting": args.prefill,
        "prefill_seconds": prefill_secs,
        "mails": args.mails,
        "concurrency": args.concurrency,
        "enqueue_per_sec": args.mails as f64 / enqueue_secs,
        "group_commit_transactions": stats.transactions,
        "claimed": claimed,
        "claims": claims,
        "claim_per_sec": claimed as f64 / claim_secs,
        "claim_and_outcome_per_sec": claimed as f64 / (claim_secs + outcome_secs),
        "peak_rss_mb": rss,
        "loadavg_at_end": load,
    });
    if args.json {
        println!("{report}");
    } else {
        println!(
            "mailpush-bench queue: {backend}, {} waiting, {} mails, {} enqueuers (load avg at end: {load})",
            args.prefill, args.mails, args.concurrency
        );
        if args.prefill > 0 {
            println!("  prefill         {prefill_secs:.1} s");
        }
        println!(
            "  enqueue         {:.0} /s ({} transactions in all)",
            args.mails as f64 / enqueue_secs,
            stats.transactions
        );
        println!(
            "  claim           {claimed} in {claims} claims: {:.0} /s; with outcomes {:.0} /s",
            claimed as f64 / claim_secs,
            claimed as f64 / (claim_secs + outcome_secs)
        );
        println!("  peak RSS        {rss:.1} MB (this process, the store in it)");
    }
    if claimed != args.mails {
        bail!("claimed {claimed} of {} due messages", args.mails);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_openssl_rsa_sign_rate;

    #[test]
    fn the_sign_rate_is_read_from_openssl_speed() {
        let out = "version: 3.0.19\n                  sign    verify    sign/s verify/s\n\
                   rsa 2048 bits 0.000260s 0.000008s   3846.2 129032.3\n";
        assert_eq!(parse_openssl_rsa_sign_rate(out), Some(3846.2));
        let openssl_3_2 = "                   sign    verify    encrypt   decrypt   sign/s verify/s  encr./s  decr./s\n\
                           rsa  2048 bits 0.000682s 0.000049s 0.000050s 0.000700s   1465.5  20345.0  20000.0   1428.6\n";
        assert_eq!(parse_openssl_rsa_sign_rate(openssl_3_2), Some(1465.5));
        assert_eq!(parse_openssl_rsa_sign_rate("nothing here"), None);
    }
}
