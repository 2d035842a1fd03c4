//! `mailpush`: the all-in-one server (`serve`: API + worker on embedded SQLite by default) and admin commands.

mod dev;

use anyhow::Context;
use clap::{Parser, Subcommand};
use mailpush_admin::{
    Report, accounts, batch, console_users, database, dmarc, domains, messages, receivers, screening, stats,
    suppression, templates,
};
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

/// `mailpush serve` options.
#[derive(clap::Args)]
struct ServeArgs {
    /// Dev mode: an account, a verified sending domain and a sender are created (printed at every start), DNS is
    /// served in-process and every mail lands in a local mailbox (`/dev/mailbox/messages`, console "Mailbox").
    #[arg(long)]
    dev: bool,
    /// Let dev mode listen on non-loopback addresses.
    #[arg(long, requires = "dev")]
    dev_allow_remote: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Run the API, the delivery worker and (when smtp_listen / smtps_listen is set) SMTP in one process.
    Serve(ServeArgs),
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
    /// The configuration in force (file, then MAILPUSH_* variables, over the defaults).
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Sender addresses.
    Sender {
        #[command(subcommand)]
        command: SenderCommand,
    },
    /// Send a test mail (trigger mail, text only) from a sender address of an account.
    Send {
        /// The account sending.
        #[arg(long)]
        account: String,
        /// The sender address (a created sender of a verified domain).
        #[arg(long)]
        from: String,
        /// The recipient.
        #[arg(long)]
        to: String,
        /// The subject.
        #[arg(long, default_value = "mailpush test mail")]
        subject: String,
        /// The text body.
        #[arg(long, default_value = "This is a test mail sent with `mailpush send`.")]
        text: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// What became of a mail.
    Message {
        #[command(subcommand)]
        command: MessageCommand,
    },
    /// The delivery queue.
    Queue {
        #[command(subcommand)]
        command: QueueCommand,
    },
    /// An account's custom blacklist and the bounce blacklist entries its mail caused.
    Suppression {
        #[command(subcommand)]
        command: SuppressionCommand,
    },
    /// Score a mail 0-10 (10 best) with the spam filter and mailpush's checks: a MIME FILE, or a template.
    Check(CheckArgs),
    /// An account's screening of custom and SMTP mail: minimum score, content review.
    Screening {
        /// The account.
        account: String,
        /// Refuse custom and SMTP mail scoring below this (0-10), or `none`.
        #[arg(long)]
        min_score: Option<String>,
        /// Apply the template review's content rules to custom and SMTP mail.
        #[arg(long)]
        review_content: Option<bool>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// People who sign in to the web console (/console/ on the API listener).
    ConsoleUser {
        #[command(subcommand)]
        command: ConsoleUserCommand,
    },
    /// An account's sending statistics per UTC day (as GetStatisticsReport).
    Stats {
        /// The account.
        #[arg(long)]
        account: String,
        /// First UTC day (YYYY-MM-DD); default six days before --to.
        #[arg(long)]
        from: Option<String>,
        /// Last UTC day (YYYY-MM-DD); default today.
        #[arg(long)]
        to: Option<String>,
        /// Only mail from this sending domain.
        #[arg(long)]
        domain: Option<String>,
        /// Only mail to this receiving domain, e.g. gmail.com.
        #[arg(long)]
        receiving: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// DMARC aggregate reports received by the inbound MX (rua=mailto:dmarc@<bounce_mx_host>).
    Dmarc {
        #[command(subcommand)]
        command: DmarcCommand,
    },
    /// Batch tasks (BatchSendEmail) and their progress.
    Batch {
        #[command(subcommand)]
        command: BatchCommand,
    },
    /// Database maintenance: retention and space.
    Db {
        #[command(subcommand)]
        command: DbCommand,
    },
}

#[derive(Subcommand)]
enum DmarcCommand {
    /// One domain's reported mail per UTC day and source IP (as GetDmarcReport).
    Report {
        /// The account.
        #[arg(long)]
        account: String,
        /// The account's sending domain.
        #[arg(long)]
        domain: String,
        /// One UTC day (YYYY-MM-DD).
        #[arg(long, conflicts_with_all = ["from", "to"])]
        date: Option<String>,
        /// First UTC day (YYYY-MM-DD); default six days before --to.
        #[arg(long)]
        from: Option<String>,
        /// Last UTC day (YYYY-MM-DD); default today.
        #[arg(long)]
        to: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum BatchCommand {
    /// The account's batch tasks, newest first.
    List {
        /// The account.
        #[arg(long)]
        account: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// One task's progress; with --follow, a progress bar until the task is done.
    Status {
        /// The account.
        #[arg(long)]
        account: String,
        /// TaskId.
        id: i64,
        /// Follow the task with a progress bar until it is done (or failed).
        #[arg(long)]
        follow: bool,
        /// Print JSON (the final state, with --follow).
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum DbCommand {
    /// Prune now what the retention service prunes (mail final more than retention_days ago).
    Prune {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// SQLite: rewrite the file in incremental auto-vacuum mode (once, for files created by older versions;
    /// run it with mailpush stopped: it needs free disk for a copy of the file). PostgreSQL: nothing to do.
    Vacuum {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum ConsoleUserCommand {
    /// Add a console user of an account (--account) or an operator (--operator: every account, template review).
    Add {
        /// The sign-in name.
        username: String,
        /// The account whose data the user sees.
        #[arg(long, required_unless_present = "operator", conflicts_with = "operator")]
        account: Option<String>,
        /// An operator: sees every account.
        #[arg(long)]
        operator: bool,
        /// The password (10 to 128 characters); without it one is generated and printed once.
        #[arg(long)]
        password: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List console users.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `mailpush check FILE | --template ID --data JSON`.
#[derive(clap::Args)]
struct CheckArgs {
    /// A MIME message (.eml).
    #[arg(required_unless_present = "template", conflicts_with = "template")]
    file: Option<PathBuf>,
    /// The account whose identities, templates and permissions apply.
    #[arg(long)]
    account: String,
    /// A TemplateID of the account.
    #[arg(long, requires_all = ["data", "from"])]
    template: Option<i64>,
    /// The TemplateData (a JSON object).
    #[arg(long)]
    data: Option<String>,
    /// The sender address (with --template).
    #[arg(long)]
    from: Option<String>,
    /// The Subject (with --template).
    #[arg(long, default_value = "mailpush quality check")]
    subject: String,
    /// Judge it as marketing mail (List-Unsubscribe required).
    #[arg(long)]
    marketing: bool,
    /// Exit with status 2 when the score is below this.
    #[arg(long, default_value_t = 0.0)]
    min_score: f64,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum SenderCommand {
    /// Add a sender address on one of the account's domains.
    Add {
        /// The account.
        #[arg(long)]
        account: String,
        /// The address, e.g. noreply@mail.example.com.
        address: String,
        /// The display name.
        #[arg(long)]
        name: Option<String>,
        /// An SMTP password for submission with this address.
        #[arg(long)]
        smtp_password: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Change a sender address's settings.
    Set {
        /// The account.
        #[arg(long)]
        account: String,
        /// The address.
        address: String,
        /// Mail from this address goes only over STARTTLS with a verified certificate, never in plain text.
        #[arg(long, value_name = "true|false", action = clap::ArgAction::Set)]
        require_tls: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum MessageCommand {
    /// Each recipient's status, attempts and the receiver's last reply.
    Show {
        /// The account that sent it.
        #[arg(long)]
        account: String,
        /// The UTC day it was accepted (YYYY-MM-DD).
        #[arg(long)]
        date: String,
        /// The MessageId.
        id: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum QueueCommand {
    /// Deliveries pending, deferred, in delivery and final.
    Summary {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Give up the waiting deliveries of a receiving domain or of one message (final: dropped, with an event;
    /// deliveries in progress finish).
    Drop(QueuedDeliveries),
    /// Make the waiting deliveries of a receiving domain or of one message due now (their retry schedule
    /// skipped).
    Retry(QueuedDeliveries),
}

// The waiting deliveries `queue drop` and `queue retry` act on (a plain comment: the help text of each is its
// variant's doc comment).
#[derive(clap::Args)]
struct QueuedDeliveries {
    /// The receiving domain, e.g. gmail.com.
    #[arg(long)]
    domain: Option<String>,
    /// The MessageId.
    #[arg(long)]
    message: Option<String>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum SuppressionCommand {
    /// The account's custom blacklist in force.
    List {
        /// The account.
        #[arg(long)]
        account: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Blacklist an address for the account (until the end of the UTC day --expire, else forever).
    Add {
        /// The account.
        #[arg(long)]
        account: String,
        /// The address.
        email: String,
        /// YYYY-MM-DD.
        #[arg(long)]
        expire: Option<String>,
    },
    /// Remove an address from the account's custom blacklist and clear the bounce blacklist entry its mail caused.
    Delete {
        /// The account.
        #[arg(long)]
        account: String,
        /// The address.
        email: String,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Check the configuration: errors name the key; warnings name unknown MAILPUSH_* variables and
    /// placeholders that mail to the internet cannot work with. Exit status 1 on an error.
    Check,
    /// Print every setting in force as TOML, secrets redacted.
    Show,
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
    /// Add a sending domain to an account: DKIM keys are generated and the records to publish are shown.
    Add {
        /// The account.
        #[arg(long)]
        account: String,
        /// The domain, e.g. mail.example.com.
        domain: String,
        /// DKIMOption: 0 RSA-1024, 1 RSA-2048 (default), 2 both, 3 ed25519, 4 RSA-2048 + ed25519.
        #[arg(long)]
        dkim_option: Option<i64>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Check an account's sending domain in DNS now (exit status 2 while it is not verified).
    Verify {
        /// The account.
        #[arg(long)]
        account: String,
        /// The domain.
        domain: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Set where a domain's return path lives (SPF and the bounce MX): a sub-domain, by default
    /// bounce.<domain>; then check it now (exit status 2 while the domain is not verified).
    MailFrom {
        /// The account.
        #[arg(long)]
        account: String,
        /// The sending domain.
        domain: String,
        /// The return-path domain, e.g. bounce.mail.example.com; omitted = bounce.<domain>.
        mail_from: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// An account's sending domains.
    List {
        /// The account.
        #[arg(long)]
        account: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Look up every record a sending domain must publish and show expected vs found (whichever account holds it).
    Check {
        /// The domain, e.g. mail.example.com.
        domain: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Send a domain's mail from a source pool of `source_pools` ("dedicated IPs"); `shared` = the default pool.
    Pool {
        /// The sending domain (whichever account holds it).
        domain: String,
        /// The pool name, as declared in `source_pools`.
        pool: String,
    },
    /// List the source addresses per pool with today's sends and warm-up allowance, and the domains' pools.
    Pools {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum AccountCommand {
    /// Replace every active API key of an account by a new SecretId and SecretKey (the AppId stays) and print the new pair (shown only once).
    RotateKey {
        /// The account.
        name: String,
        /// Print {"AppId","SecretId","SecretKey"} as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List an account's API keys (SecretId, created, last used, revoked; never the secrets).
    Keys {
        /// The account.
        #[arg(long)]
        account: String,
        /// Print the keys as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Add a second API key to an account and print it (the SecretKey is shown only once).
    CreateKey {
        /// The account.
        #[arg(long)]
        account: String,
        /// Print {"AppId","SecretId","SecretKey"} as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revoke one of an account's API keys (refused for its last active key).
    RevokeKey {
        /// The account.
        #[arg(long)]
        account: String,
        /// The SecretId to revoke.
        #[arg(long)]
        secret_id: String,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
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
        /// Every mail of the account goes only over STARTTLS with a verified certificate, never in plain text.
        #[arg(long, value_name = "true|false")]
        require_tls: Option<bool>,
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

/// mimalloc: markedly cheaper than glibc malloc for the many small, cross-thread allocations of a request.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let settings = settings::load_for_process(cli.config.as_deref())?;
    mailpush_core::logging::init(&settings)?;
    match cli.command {
        Command::Serve(args) => serve(settings, args).await,
        Command::Account { command } => account(settings, command).await,
        Command::Template { command } => template(settings, command).await,
        Command::Domain { command } => domain(settings, command).await,
        Command::Receivers { command } => receivers(settings, command).await,
        Command::Config { command } => config(settings, command),
        Command::Sender { command } => sender(settings, command).await,
        Command::Send {
            account,
            from,
            to,
            subject,
            text,
            json,
        } => {
            let core = open(settings).await?;
            print(messages::send(&core, &account, &from, &to, &subject, &text).await, json)
        }
        Command::Message {
            command:
                MessageCommand::Show {
                    account,
                    date,
                    id,
                    json,
                },
        } => {
            let core = open(settings).await?;
            print(messages::show(&core, &account, &id, &date).await, json)
        }
        Command::Queue {
            command: QueueCommand::Summary { json },
        } => print(messages::queue_summary(&open(settings).await?).await, json),
        Command::Queue {
            command: QueueCommand::Drop(QueuedDeliveries { domain, message, json }),
        } => print(
            messages::queue_drop(&open(settings).await?, domain.as_deref(), message.as_deref()).await,
            json,
        ),
        Command::Queue {
            command: QueueCommand::Retry(QueuedDeliveries { domain, message, json }),
        } => print(
            messages::queue_retry(&open(settings).await?, domain.as_deref(), message.as_deref()).await,
            json,
        ),
        Command::Suppression { command } => suppressions(settings, command).await,
        Command::Stats {
            account,
            from,
            to,
            domain,
            receiving,
            json,
        } => {
            let core = open(settings).await?;
            let report = stats::stats(
                &core,
                &account,
                from.as_deref(),
                to.as_deref(),
                domain.as_deref(),
                receiving.as_deref(),
            )
            .await;
            print(report, json)
        }
        Command::Dmarc {
            command:
                DmarcCommand::Report {
                    account,
                    domain,
                    date,
                    from,
                    to,
                    json,
                },
        } => {
            let days = dmarc::Days { date, from, to };
            print(
                dmarc::report(&open(settings).await?, &account, &domain, &days).await,
                json,
            )
        }
        Command::Batch { command } => batches(settings, command).await,
        Command::Db {
            command: DbCommand::Prune { json },
        } => print(database::prune(&open(settings).await?).await, json),
        Command::Db {
            command: DbCommand::Vacuum { json },
        } => print(database::vacuum(&open(settings).await?).await, json),
        Command::Check(a) => {
            let source = match (a.file, a.template) {
                (Some(file), _) => screening::CheckSource::File(file),
                (None, id) => screening::CheckSource::Template {
                    id: id.unwrap_or_default(),
                    data: a.data.unwrap_or_default(),
                    from: a.from.unwrap_or_default(),
                    subject: a.subject,
                },
            };
            let core = open(settings).await?;
            print(
                screening::check(&core, &a.account, source, a.marketing, a.min_score).await,
                a.json,
            )
        }
        Command::Screening {
            account,
            min_score,
            review_content,
            json,
        } => {
            let min_score = min_score.as_deref().map(screening::parse_min_score).transpose()?;
            let core = open(settings).await?;
            print(
                screening::settings(&core, &account, min_score, review_content).await,
                json,
            )
        }
        Command::ConsoleUser { command } => {
            let core = open(settings).await?;
            match command {
                ConsoleUserCommand::Add {
                    username,
                    account,
                    operator: _,
                    password,
                    json,
                } => print(
                    console_users::add(&core, &username, account.as_deref(), password.as_deref()).await,
                    json,
                ),
                ConsoleUserCommand::List { json } => print(console_users::list(&core).await, json),
            }
        }
    }
}

async fn serve(mut settings: mailpush_core::Settings, args: ServeArgs) -> anyhow::Result<()> {
    // Before anything is announced: a signal during the start must not be lost.
    let signal = settings::ShutdownSignal::listen().context("installing the signal handlers")?;
    let dev = if args.dev {
        println!("mailpush: DEV MODE: local accounts, DNS and mailbox for trying mailpush; not for production");
        tracing::warn!("DEV MODE: local accounts, DNS and mailbox for trying mailpush; not for production");
        Some(dev::prepare(&mut settings, args.dev_allow_remote).await?)
    } else {
        None
    };
    let listen = settings.api_listen;
    let serves = mailpush_api::node::Serves {
        api: true,
        smtp: true,
        worker: true,
    };
    let core = mailpush_api::node::open_core(&settings, serves).await?;
    if let Some(servers) = &dev {
        let creds = dev::bootstrap(&core, servers).await.context("setting up dev mode")?;
        for line in dev::announce(&creds, core.settings(), servers) {
            println!("{line}");
        }
    }
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
    let scheme = if core.settings().api_tls_cert.is_some() {
        "https"
    } else {
        "http"
    };
    println!("mailpush: api listening on {scheme}://{addr}");
    println!("mailpush: database {}", core.settings().database_url());
    if dev.is_some() {
        println!("mailpush: DEV MODE: mailbox http://{addr}/dev/mailbox/messages and http://{addr}/console/mailbox");
    }
    // Readiness turns 503 at once, so a load balancer stops sending while in-flight requests finish.
    let draining = core.clone();
    let stop = async move {
        signal.wait().await;
        draining.begin_draining();
    };
    mailpush_api::serve(listener, core.clone(), stop).await?;
    if let Some(smtp) = smtp {
        smtp.stop();
    }
    tracing::info!("stopping: finishing in-flight deliveries");
    services.shutdown().await;
    Ok(())
}

/// Opens the core for one admin command.
async fn open(settings: mailpush_core::Settings) -> anyhow::Result<Mailpush> {
    Mailpush::open(settings.clone(), settings.clock())
        .await
        .context("opening mailpush")
}

/// Prints a report (JSON with `json`); an unsuccessful report exits with status 2.
fn print(report: Result<Report, mailpush_admin::AdminError>, json: bool) -> anyhow::Result<()> {
    let report = report?;
    if json {
        println!("{}", report.json);
    } else if !report.text.is_empty() {
        println!("{}", report.text);
    }
    if !report.success {
        std::process::exit(2);
    }
    Ok(())
}

async fn account(settings: mailpush_core::Settings, command: AccountCommand) -> anyhow::Result<()> {
    let core = open(settings).await?;
    match command {
        AccountCommand::RotateKey { name, json } => print(accounts::rotate_key(&core, &name).await, json),
        AccountCommand::Keys { account, json } => print(accounts::keys(&core, &account).await, json),
        AccountCommand::CreateKey { account, json } => print(accounts::create_key(&core, &account).await, json),
        AccountCommand::RevokeKey {
            account,
            secret_id,
            json,
        } => print(accounts::revoke_key(&core, &account, &secret_id).await, json),
        AccountCommand::Create {
            name,
            json,
            allow_simple_content,
            allow_links,
        } => {
            let policy = mailpush_core::model::templates::AccountPolicy {
                allow_simple_content,
                allow_links,
            };
            print(accounts::create(&core, &name, policy).await, json)
        }
        AccountCommand::Set {
            name,
            allow_simple_content,
            allow_links,
            sends_per_second,
            per_recipient_per_hour,
            daily_cap,
            domain_level,
            require_tls,
        } => {
            let limit = |v: Option<String>| v.as_deref().map(accounts::LimitArg::parse).transpose();
            let changes = accounts::AccountChanges {
                allow_simple_content,
                allow_links,
                sends_per_second: limit(sends_per_second)?,
                per_recipient_per_hour: limit(per_recipient_per_hour)?,
                daily_cap: limit(daily_cap)?,
                domain_level,
                require_tls,
            };
            print(accounts::set(&core, &name, changes).await, false)
        }
        AccountCommand::Resume { name } => print(accounts::set_suspended(&core, &name, false).await, false),
        AccountCommand::Suspend { name } => print(accounts::set_suspended(&core, &name, true).await, false),
        AccountCommand::List { json } => print(accounts::list(&core).await, json),
    }
}

async fn template(settings: mailpush_core::Settings, command: TemplateCommand) -> anyhow::Result<()> {
    let core = open(settings).await?;
    match command {
        TemplateCommand::List { pending, json } => print(templates::list(&core, pending).await, json),
        TemplateCommand::Show { id } => print(templates::show(&core, id).await, false),
        TemplateCommand::Approve { id, version } => print(templates::approve(&core, id, version).await, false),
        TemplateCommand::Reject { id, reason, version } => {
            print(templates::reject(&core, id, version, &reason).await, false)
        }
    }
}

async fn domain(settings: mailpush_core::Settings, command: DomainCommand) -> anyhow::Result<()> {
    let core = open(settings).await?;
    match command {
        DomainCommand::Pool { domain, pool } => print(domains::set_pool(&core, &domain, &pool).await, false),
        DomainCommand::Pools { json } => print(domains::pools(&core).await, json),
        DomainCommand::Check { domain, json } => print(domains::check(&core, &domain).await, json),
        DomainCommand::Add {
            account,
            domain,
            dkim_option,
            json,
        } => print(domains::add(&core, &account, &domain, dkim_option).await, json),
        DomainCommand::Verify { account, domain, json } => print(domains::verify(&core, &account, &domain).await, json),
        DomainCommand::List { account, json } => print(domains::list(&core, &account).await, json),
        DomainCommand::MailFrom {
            account,
            domain,
            mail_from,
            json,
        } => print(
            domains::set_mail_from(&core, &account, &domain, mail_from.as_deref()).await,
            json,
        ),
    }
}

async fn receivers(settings: mailpush_core::Settings, command: ReceiversCommand) -> anyhow::Result<()> {
    let core = open(settings).await?;
    match command {
        ReceiversCommand::Import { account, list, file } => {
            // The total for the bar and its ETA: one cheap pass over the file's lines first.
            let lines = std::fs::read(&file)
                .map(|b| b.iter().filter(|c| **c == b'\n').count() as u64)
                .unwrap_or(0);
            let bar = indicatif::ProgressBar::new(lines.max(1)).with_style(
                indicatif::ProgressStyle::with_template(
                    "{bar:40} {pos}/{len} lines, {per_sec}, ETA {eta} ({msg} valid)",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            let report = receivers::import(&core, &account, &list, &file, |t| {
                bar.set_position(t.total as u64);
                bar.set_message(t.valid.to_string());
            })
            .await;
            bar.finish();
            print(report, false)
        }
    }
}

async fn batches(settings: mailpush_core::Settings, command: BatchCommand) -> anyhow::Result<()> {
    let core = open(settings).await?;
    match command {
        BatchCommand::List { account, json } => print(batch::list(&core, &account).await, json),
        BatchCommand::Status {
            account,
            id,
            follow,
            json,
        } => {
            let mut task = batch::task(&core, &account, id).await?;
            if follow {
                let bar = indicatif::ProgressBar::new(task.request_count.max(1) as u64).with_style(
                    indicatif::ProgressStyle::with_template(
                        "task {prefix}: {bar:40} {pos}/{len} recipients, {per_sec}, ETA {eta} {msg}",
                    )
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
                );
                bar.set_prefix(id.to_string());
                loop {
                    bar.set_length(task.request_count.max(1) as u64);
                    bar.set_position((task.send_count + task.skip_count) as u64);
                    bar.set_message(batch::status(&task).text);
                    if batch::finished(&task) {
                        break;
                    }
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    task = batch::task(&core, &account, id).await?;
                }
                bar.finish();
            }
            print(Ok(batch::status(&task)), json)
        }
    }
}

fn config(settings: mailpush_core::Settings, command: ConfigCommand) -> anyhow::Result<()> {
    match command {
        ConfigCommand::Check => {
            for warning in settings.warnings(&settings::process_variables()) {
                println!("warning: {warning}");
            }
            println!("configuration valid");
        }
        ConfigCommand::Show => print!("{}", settings.to_toml_redacted()?),
    }
    Ok(())
}

async fn sender(settings: mailpush_core::Settings, command: SenderCommand) -> anyhow::Result<()> {
    let core = open(settings).await?;
    match command {
        SenderCommand::Add {
            account,
            address,
            name,
            smtp_password,
            json,
        } => print(
            domains::add_sender(&core, &account, &address, name.as_deref(), smtp_password.as_deref()).await,
            json,
        ),
        SenderCommand::Set {
            account,
            address,
            require_tls,
            json,
        } => print(domains::set_sender(&core, &account, &address, require_tls).await, json),
    }
}

async fn suppressions(settings: mailpush_core::Settings, command: SuppressionCommand) -> anyhow::Result<()> {
    let core = open(settings).await?;
    match command {
        SuppressionCommand::List { account, json } => print(suppression::list(&core, &account).await, json),
        SuppressionCommand::Add { account, email, expire } => print(
            suppression::add(&core, &account, &email, expire.as_deref()).await,
            false,
        ),
        SuppressionCommand::Delete { account, email } => {
            print(suppression::delete(&core, &account, &email).await, false)
        }
    }
}
