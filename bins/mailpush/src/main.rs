//! `mailpush`: the all-in-one server (`serve`: API + worker on embedded SQLite by default) and admin commands.

use anyhow::Context;
use clap::{Parser, Subcommand};
use mailpush_core::{Mailpush, settings};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "mailpush",
    version,
    about = "Self-hosted email push service, Tencent Cloud SES compatible"
)]
struct Cli {
    /// TOML configuration file; every key can also be set as MAILPUSH_<KEY>.
    #[arg(long, global = true, env = "MAILPUSH_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the API, the delivery worker and (when smtp_listen / smtps_listen is set) SMTP in one process.
    Serve,
    /// Manage accounts.
    Account {
        #[command(subcommand)]
        command: AccountCommand,
    },
    /// Review templates (the manual queue of `template_review = "manual"`).
    Template {
        #[command(subcommand)]
        command: TemplateCommand,
    },
    /// Inspect sending domains.
    Domain {
        #[command(subcommand)]
        command: DomainCommand,
    },
    /// Recipient lists for batch sending.
    Receivers {
        #[command(subcommand)]
        command: ReceiversCommand,
    },
}

#[derive(Subcommand)]
enum ReceiversCommand {
    /// Import a CSV file into a recipient list (created if missing), streaming, in chunks. One recipient per
    /// line: `email` or `email,TemplateData` where TemplateData is a JSON object, optionally CSV-quoted
    /// (`"{""name"":""Ann""}"`). A first line starting with `email` is taken as a header and skipped.
    Import {
        /// The account owning the list.
        #[arg(long)]
        account: String,
        /// The list name (`ReceiversName`).
        list: String,
        /// The CSV file.
        file: std::path::PathBuf,
    },
}

#[derive(Subcommand)]
enum DomainCommand {
    /// Look up every record a sending domain must publish and show expected vs found (whichever account holds it).
    Check {
        /// The domain, e.g. mail.example.com.
        domain: String,
    },
    /// Send a domain's mail from a source pool of `source_pools` ("dedicated IPs"); `shared` = the default pool.
    Pool {
        /// The sending domain (whichever account holds it).
        domain: String,
        /// The pool name, as declared in `source_pools`.
        pool: String,
    },
    /// List the source addresses per pool with today's sends and warm-up allowance, and the domains' pools.
    Pools,
}

#[derive(Subcommand)]
enum AccountCommand {
    /// Create an account and print its credentials (shown only once).
    Create {
        /// Account name: letters, digits, '.', '_', '-'.
        name: String,
        /// Print {"AppId","SecretId","SecretKey"} as JSON.
        #[arg(long)]
        json: bool,
        /// Allow custom content (`Simple`); without it the account may only send approved templates.
        #[arg(long)]
        allow_simple_content: bool,
        /// Allow links (other than the unsubscribe link) in the account's templates.
        #[arg(long)]
        allow_links: bool,
    },
    /// Change an account's content permissions (prints them; with no option, only prints them).
    Set {
        /// Account name.
        name: String,
        /// Custom content (`Simple`) allowed.
        #[arg(long, value_name = "true|false")]
        allow_simple_content: Option<bool>,
        /// Links allowed in templates.
        #[arg(long, value_name = "true|false")]
        allow_links: Option<bool>,
        /// Messages per second (`default` = the `limit_sends_per_second` setting).
        #[arg(long, value_name = "N|default")]
        sends_per_second: Option<String>,
        /// Mails per recipient address in any sliding hour (`default` = `limit_per_recipient_per_hour`; 0 = no limit).
        #[arg(long, value_name = "N|default")]
        per_recipient_per_hour: Option<String>,
        /// Cap of the daily quota (`default` = `limit_daily_cap`).
        #[arg(long, value_name = "N|default")]
        daily_cap: Option<String>,
        /// Set the reputation level (1–20) of one of the account's domains: `DOMAIN=LEVEL`.
        #[arg(long, value_name = "DOMAIN=LEVEL")]
        domain_level: Option<String>,
    },
    /// List accounts.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Resume an account suspended (automatically, for too many blacklisted recipients, or by hand).
    Resume {
        /// Account name.
        name: String,
    },
    /// Suspend an account: its sends fail with FailedOperation.HighRejectionRate until resumed.
    Suspend {
        /// Account name.
        name: String,
    },
}

#[derive(Subcommand)]
enum TemplateCommand {
    /// List templates of every account.
    List {
        /// Only templates waiting for review.
        #[arg(long)]
        pending: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print one template with its content, to review it.
    Show {
        /// TemplateID.
        id: i64,
    },
    /// Approve a template waiting for review.
    Approve {
        /// TemplateID.
        id: i64,
        /// Only if its content is still this version (as shown by `template show`).
        #[arg(long)]
        version: Option<i64>,
    },
    /// Reject a template; the reason is shown to the account as ReviewReason.
    Reject {
        /// TemplateID.
        id: i64,
        /// Why (shown to the account).
        #[arg(long)]
        reason: String,
        /// Only if its content is still this version (as shown by `template show`).
        #[arg(long)]
        version: Option<i64>,
    },
}

fn init_tracing(filter: &str) {
    let filter =
        tracing_subscriber::EnvFilter::try_new(filter).unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Logs go to stderr: stdout carries machine-readable output (JSON credentials, the listen line).
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// mimalloc: markedly cheaper than glibc malloc for the many small, cross-thread allocations of a request.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let settings = settings::load_for_process(cli.config.as_deref())?;
    init_tracing(&settings.log);
    match cli.command {
        Command::Serve => serve(settings).await,
        Command::Account { command } => account(settings, command).await,
        Command::Template { command } => template(settings, command).await,
        Command::Domain { command } => domain(settings, command).await,
        Command::Receivers { command } => receivers(settings, command).await,
    }
}

async fn serve(settings: mailpush_core::Settings) -> anyhow::Result<()> {
    let listen = settings.api_listen;
    let core = Mailpush::open(settings.clone(), settings.clock())
        .await
        .context("opening mailpush")?;
    let services = mailpush_services::start(&core)
        .await
        .context("starting the background services")?;
    let smtp = mailpush_smtp::launch(core.clone()).await.context("starting SMTP")?;
    if let Some(smtp) = &smtp {
        smtp.tls.log();
        for (name, addr) in &smtp.listening {
            println!("mailpush: {name} listening on {addr}");
        }
    }
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding the API to {listen}"))?;
    let addr = listener.local_addr()?;
    println!("mailpush: api listening on http://{addr}");
    println!("mailpush: database {}", core.settings().database_url());
    mailpush_api::serve(listener, core.clone(), settings::shutdown_signal()).await?;
    if let Some(smtp) = smtp {
        smtp.stop();
    }
    tracing::info!("stopping: finishing in-flight deliveries");
    services.shutdown().await;
    Ok(())
}

async fn account(settings: mailpush_core::Settings, command: AccountCommand) -> anyhow::Result<()> {
    let core = Mailpush::open(settings.clone(), settings.clock())
        .await
        .context("opening mailpush")?;
    match command {
        AccountCommand::Create {
            name,
            json,
            allow_simple_content,
            allow_links,
        } => {
            let policy = mailpush_core::templates::AccountPolicy {
                allow_simple_content,
                allow_links,
            };
            let creds = core
                .create_account_with_policy(&name, policy)
                .await
                .map_err(|e| anyhow::anyhow!(e.to_api().message))?;
            if json {
                println!("{}", serde_json::to_string(&creds)?);
            } else {
                println!(
                    "account:   {}\nAppId:     {}\nSecretId:  {}\nSecretKey: {}",
                    creds.name, creds.app_id, creds.secret_id, creds.secret_key
                );
                println!("Keep the SecretKey now: it is stored encrypted and cannot be shown again.");
            }
        }
        AccountCommand::Set {
            name,
            allow_simple_content,
            allow_links,
            sends_per_second,
            per_recipient_per_hour,
            daily_cap,
            domain_level,
        } => {
            if sends_per_second.is_some() || per_recipient_per_hour.is_some() || daily_cap.is_some() {
                let o = core
                    .set_account_limits(
                        &name,
                        limit_arg(sends_per_second)?,
                        limit_arg(per_recipient_per_hour)?,
                        limit_arg(daily_cap)?,
                    )
                    .await
                    .map_err(|e| anyhow::anyhow!(e.to_api().message))?;
                let show = |v: Option<i64>| v.map_or("default".to_string(), |n| n.to_string());
                println!(
                    "{name}: sends-per-second {}, per-recipient-per-hour {}, daily-cap {}",
                    show(o.sends_per_second),
                    show(o.per_recipient_per_hour),
                    show(o.daily_cap)
                );
            }
            if let Some(spec) = domain_level {
                let (domain, level) = spec
                    .split_once('=')
                    .and_then(|(d, l)| Some((d, l.parse::<u8>().ok().filter(|l| (1..=20).contains(l))?)))
                    .ok_or_else(|| anyhow::anyhow!("--domain-level takes DOMAIN=LEVEL with LEVEL 1-20"))?;
                core.set_domain_level(domain, level)
                    .await
                    .map_err(|e| anyhow::anyhow!(e.to_string()))?;
                println!("{domain}: reputation level {level}");
            }
            let p = core
                .set_account_policy(&name, allow_simple_content, allow_links)
                .await
                .map_err(|e| anyhow::anyhow!(e.to_api().message))?;
            println!(
                "{name}: allow-simple-content {}, allow-links {}",
                p.allow_simple_content, p.allow_links
            );
        }
        AccountCommand::Resume { name } => {
            core.set_account_suspended_by_name(&name, false)
                .await
                .map_err(|e| anyhow::anyhow!(e.to_api().message))?;
            println!("{name}: resumed");
        }
        AccountCommand::Suspend { name } => {
            core.set_account_suspended_by_name(&name, true)
                .await
                .map_err(|e| anyhow::anyhow!(e.to_api().message))?;
            println!("{name}: suspended");
        }
        AccountCommand::List { json } => {
            let accounts = core.list_accounts().await?;
            if json {
                let list: Vec<_> = accounts
                    .iter()
                    .map(|a| serde_json::json!({"Name": a.name, "AppId": a.app_id, "Suspended": a.suspended}))
                    .collect();
                println!("{}", serde_json::Value::Array(list));
            } else {
                for a in accounts {
                    println!(
                        "{}\t{}{}",
                        a.app_id,
                        a.name,
                        if a.suspended { "\t(suspended)" } else { "" }
                    );
                }
            }
        }
    }
    Ok(())
}

/// `--sends-per-second` & co.: `None` = unchanged, `Some(None)` = back to the default, `Some(Some(n))` = n.
fn limit_arg(v: Option<String>) -> anyhow::Result<Option<Option<i64>>> {
    match v.as_deref() {
        None => Ok(None),
        Some("default") => Ok(Some(None)),
        Some(n) => n
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .map(|n| Some(Some(n)))
            .ok_or_else(|| anyhow::anyhow!("{n:?}: give a non-negative number or `default`")),
    }
}

fn status_name(status: mailpush_core::templates::TemplateStatus) -> &'static str {
    match status {
        mailpush_core::templates::TemplateStatus::Approved => "approved",
        mailpush_core::templates::TemplateStatus::Reviewing => "pending",
        mailpush_core::templates::TemplateStatus::Rejected => "rejected",
    }
}

async fn template(settings: mailpush_core::Settings, command: TemplateCommand) -> anyhow::Result<()> {
    let core = Mailpush::open(settings.clone(), settings.clock())
        .await
        .context("opening mailpush")?;
    let refused = |e: mailpush_core::CoreError| anyhow::anyhow!(e.to_api().message);
    match command {
        TemplateCommand::List { pending, json } => {
            let list = core.admin_templates(pending).await?;
            if json {
                let list: Vec<_> = list
                    .iter()
                    .map(|t| {
                        serde_json::json!({
                            "TemplateID": t.id, "AccountId": t.account_id, "TemplateName": t.name,
                            "TemplateCategory": t.category, "TemplateStatus": t.status.code(),
                            "ReviewReason": t.review_reason, "Version": t.version,
                            "CreatedTimestamp": t.created_ms / 1000,
                        })
                    })
                    .collect();
                println!("{}", serde_json::Value::Array(list));
            } else {
                for t in list {
                    println!(
                        "{}\tv{}\taccount {}\t{}\t{}\t{}",
                        t.id,
                        t.version,
                        t.account_id,
                        status_name(t.status),
                        t.category,
                        t.name
                    );
                }
            }
        }
        TemplateCommand::Show { id } => {
            let t = core.admin_template(id).await.map_err(refused)?;
            println!(
                "template {} version {} (account {}): {}\nstatus: {}\ncategory: {}",
                t.id,
                t.version,
                t.account_id,
                t.name,
                status_name(t.status),
                t.category
            );
            if !t.review_reason.is_empty() {
                println!("review reason:\n{}", t.review_reason);
            }
            if let Some(html) = &t.html {
                println!("--- Html ---\n{html}");
            }
            if let Some(text) = &t.text {
                println!("--- Text ---\n{text}");
            }
        }
        TemplateCommand::Approve { id, version } => {
            let t = core.approve_template(id, version).await.map_err(refused)?;
            println!("template {} version {} approved", t.id, t.version);
        }
        TemplateCommand::Reject { id, reason, version } => {
            let t = core.reject_template(id, version, &reason).await.map_err(refused)?;
            println!("template {} version {} rejected", t.id, t.version);
        }
    }
    Ok(())
}

async fn domain(settings: mailpush_core::Settings, command: DomainCommand) -> anyhow::Result<()> {
    let core = Mailpush::open(settings.clone(), settings.clock())
        .await
        .context("opening mailpush")?;
    match command {
        DomainCommand::Pool { domain, pool } => {
            core.set_domain_pool(&domain, Some(pool.as_str()))
                .await
                .map_err(|e| anyhow::anyhow!(e.to_api().message))?;
            println!("{domain} now sends from source pool {pool}");
        }
        DomainCommand::Pools => {
            println!(
                "{:<12}  {:<40}  {:>10}  {:>4}  {:>10}",
                "POOL", "ADDRESS", "SENT TODAY", "DAY", "ALLOWANCE"
            );
            for q in core
                .all_source_ip_quota()
                .await
                .map_err(|e| anyhow::anyhow!(e.to_api().message))?
            {
                let allowance = q
                    .warmup_allowance
                    .map_or_else(|| "unlimited".to_string(), |a| a.to_string());
                println!(
                    "{:<12}  {:<40}  {:>10}  {:>4}  {:>10}",
                    q.pool, q.address, q.sent_today, q.warmup_day, allowance
                );
            }
            for a in core.store().domain_source_pools().await? {
                println!("domain {} (account {}) -> pool {}", a.domain, a.account_id, a.pool);
            }
        }
        DomainCommand::Check { domain } => {
            let found = core
                .admin_check_domain(&domain)
                .await
                .map_err(|e| anyhow::anyhow!(e.to_api().message))?;
            let Some((row, records)) = found else {
                anyhow::bail!("no account has the sending domain {domain}");
            };
            let account = core
                .store()
                .account(row.account_id)
                .await?
                .map_or_else(|| row.account_id.to_string(), |a| a.name);
            println!(
                "domain {}  account {}  stored status: {}",
                row.domain,
                account,
                if row.verified { "verified" } else { "not verified" }
            );
            let header = ["TYPE", "HOST", "EXPECTED", "FOUND", "RESULT"];
            let rows: Vec<[String; 5]> = records
                .iter()
                .map(|r| {
                    let result = match (r.pass, r.spec.required) {
                        (true, _) => "pass".to_string(),
                        (false, true) => format!("FAIL: {}", r.reason.clone().unwrap_or_default()),
                        (false, false) => format!("fail (optional): {}", r.reason.clone().unwrap_or_default()),
                    };
                    let found = if r.current.is_empty() {
                        "-".to_string()
                    } else {
                        r.current.clone()
                    };
                    [
                        r.spec.record_type.clone(),
                        r.spec.name.clone(),
                        r.spec.expected.clone(),
                        found,
                        result,
                    ]
                })
                .collect();
            let width = |i: usize| {
                rows.iter()
                    .map(|r| r[i].chars().count())
                    .chain([header[i].len()])
                    .max()
                    .unwrap_or(0)
                    .min(60)
            };
            let widths: Vec<usize> = (0..4).map(width).collect();
            println!(
                "{:<w0$}  {:<w1$}  {:<w2$}  {:<w3$}  {}",
                header[0],
                header[1],
                header[2],
                header[3],
                header[4],
                w0 = widths[0],
                w1 = widths[1],
                w2 = widths[2],
                w3 = widths[3]
            );
            for r in &rows {
                println!(
                    "{:<w0$}  {:<w1$}  {:<w2$}  {:<w3$}  {}",
                    r[0],
                    r[1],
                    r[2],
                    r[3],
                    r[4],
                    w0 = widths[0],
                    w1 = widths[1],
                    w2 = widths[2],
                    w3 = widths[3]
                );
            }
            let sendable = records.iter().all(|r| r.pass || !r.spec.required);
            println!(
                "{}",
                if sendable {
                    "result: sendable"
                } else {
                    "result: NOT sendable"
                }
            );
            if !sendable {
                std::process::exit(2);
            }
        }
    }
    Ok(())
}

/// Splits one CSV line into the address and the optional TemplateData (unquoting a quoted second field).
fn csv_recipient(line: &str) -> (String, Option<String>) {
    let line = line.trim_end_matches(['\r', '\n']);
    let Some((email, rest)) = line.split_once(',') else {
        return (line.trim().trim_matches('"').to_string(), None);
    };
    let rest = rest.trim();
    let data = match rest.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
        Some(inner) => inner.replace("\"\"", "\""),
        None => rest.to_string(),
    };
    (
        email.trim().trim_matches('"').to_string(),
        Some(data).filter(|d| !d.is_empty()),
    )
}

async fn receivers(settings: mailpush_core::Settings, command: ReceiversCommand) -> anyhow::Result<()> {
    use std::io::{BufRead, Write};
    let core = Mailpush::open(settings.clone(), settings.clock())
        .await
        .context("opening mailpush")?;
    let refused = |e: mailpush_core::CoreError| anyhow::anyhow!(e.to_api().message);
    match command {
        ReceiversCommand::Import { account, list, file } => {
            let ctx = core
                .list_accounts()
                .await?
                .into_iter()
                .find(|a| a.name == account)
                .ok_or_else(|| anyhow::anyhow!("no account named {account}"))?;
            let id = match core.receiver_named(&ctx, &list).await? {
                Some(r) => r.id,
                None => core.create_receiver(&ctx, &list, None).await.map_err(refused)?,
            };
            let reader = std::io::BufReader::new(
                std::fs::File::open(&file).with_context(|| format!("opening {}", file.display()))?,
            );
            core.set_receiver_status(&ctx, id, mailpush_core::batch::ReceiverStatus::Uploading)
                .await
                .map_err(refused)?;
            const CHUNK: usize = 5_000;
            let mut total = mailpush_core::batch::AddDetailsReport::default();
            let mut chunk = Vec::with_capacity(CHUNK);
            let mut first = true;
            let flush = async |chunk: &mut Vec<mailpush_core::batch::ReceiverDetailInput>,
                               total: &mut mailpush_core::batch::AddDetailsReport|
                   -> anyhow::Result<()> {
                if chunk.is_empty() {
                    return Ok(());
                }
                let r = core
                    .add_receiver_details(&ctx, id, std::mem::take(chunk))
                    .await
                    .map_err(refused)?;
                total.total += r.total;
                total.valid += r.valid;
                total.invalid += r.invalid;
                total.too_long += r.too_long;
                total.empty += r.empty;
                total.repeated += r.repeated;
                eprint!("\rimported {} lines ({} valid)", total.total, total.valid);
                let _ = std::io::stderr().flush();
                Ok(())
            };
            for line in reader.lines() {
                let line = line.context("reading the CSV file")?;
                if std::mem::take(&mut first) && line.trim_start().to_ascii_lowercase().starts_with("email") {
                    continue;
                }
                if line.trim().is_empty() {
                    continue;
                }
                let (email, template_data) = csv_recipient(&line);
                chunk.push(mailpush_core::batch::ReceiverDetailInput { email, template_data });
                if chunk.len() == CHUNK
                    && let Err(e) = flush(&mut chunk, &mut total).await
                {
                    let _ = core
                        .set_receiver_status(&ctx, id, mailpush_core::batch::ReceiverStatus::Done)
                        .await;
                    return Err(e);
                }
            }
            let result = flush(&mut chunk, &mut total).await;
            core.set_receiver_status(&ctx, id, mailpush_core::batch::ReceiverStatus::Done)
                .await
                .map_err(refused)?;
            result?;
            eprintln!();
            println!(
                "{}",
                serde_json::json!({
                    "ReceiverId": id, "TotalCount": total.total, "ValidCount": total.valid,
                    "InvalidCount": total.invalid, "TooLongCount": total.too_long,
                    "EmptyEmailCount": total.empty, "RepeatCount": total.repeated,
                })
            );
        }
    }
    Ok(())
}
