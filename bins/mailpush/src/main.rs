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
}

#[derive(Subcommand)]
enum DomainCommand {
    /// Look up every record a sending domain must publish and show expected vs found (whichever account holds it).
    Check {
        /// The domain, e.g. mail.example.com.
        domain: String,
    },
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
        /// Mails per recipient address in any sliding hour (`default` = `limit_per_recipient_per_hour`).
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
    }
}

async fn serve(settings: mailpush_core::Settings) -> anyhow::Result<()> {
    let listen = settings.api_listen;
    let core = Mailpush::open(settings.clone(), settings.clock())
        .await
        .context("opening mailpush")?;
    let worker = core.start_worker().await.context("starting the delivery worker")?;
    let smtp = mailpush_smtp::launch(core.clone()).await.context("starting SMTP")?;
    if let Some(smtp) = &smtp {
        smtp.tls.log();
        for (name, addr) in &smtp.listening {
            println!("mailpush: {name} listening on {addr}");
        }
    }
    let recheck = core.start_identity_rechecker();
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
    recheck.shutdown().await;
    worker.shutdown().await;
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

fn status_name(status: i32) -> &'static str {
    match status {
        0 => "approved",
        1 => "pending",
        2 => "rejected",
        _ => "unavailable",
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
                            "TemplateCategory": t.category, "TemplateStatus": t.status,
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
