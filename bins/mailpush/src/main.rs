//! `mailpush`: the all-in-one server (`serve`: API + worker on embedded SQLite by default) and admin commands.

use anyhow::Context;
use clap::{Parser, Subcommand};
use mailpush_core::{Mailpush, settings};
use mailpush_model::SystemClock;
use std::path::PathBuf;
use std::sync::Arc;

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
    },
    /// List accounts.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
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
    }
}

async fn serve(settings: mailpush_core::Settings) -> anyhow::Result<()> {
    let listen = settings.api_listen;
    let core = Mailpush::open(settings, Arc::new(SystemClock))
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
    worker.shutdown().await;
    Ok(())
}

async fn account(settings: mailpush_core::Settings, command: AccountCommand) -> anyhow::Result<()> {
    let core = Mailpush::open(settings, Arc::new(SystemClock))
        .await
        .context("opening mailpush")?;
    match command {
        AccountCommand::Create { name, json } => {
            let creds = core
                .create_account(&name)
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
