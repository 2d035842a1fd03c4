//! `mailpush serve --dev`: everything to try mailpush on one machine, with no DNS and no port 25.
//!
//! Before the core opens, [`prepare`] starts an embedded DNS authority (`mailpush-devdns`) and the catch-all
//! mailbox (`mailpush-devmail`) on loopback and points the settings at them: `dns_servers` (so domain
//! verification, DKIM and relay lookups run their normal code paths against it) and `relay_host` (every mail is
//! handed to the mailbox). After it opens, [`bootstrap`] creates — on the first start — an account, a sending
//! domain with its records published in the dev DNS and verified the normal way, a sender address with an SMTP
//! password and a console user, and keeps their secrets in `dev-credentials.json` (mode 0600) in the data
//! directory, so later starts print them again.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use mailpush_core::{Mailpush, Settings};
use mailpush_devdns::DnsAuthority;
use mailpush_devmail::{Mailbox, MailboxServer};
use serde::{Deserialize, Serialize};

/// The dev account's name.
pub const ACCOUNT: &str = "dev";
/// The dev sending domain (`.test` is reserved: it never exists on the internet).
pub const DOMAIN: &str = "dev.mailpush.test";
/// The dev sender address.
pub const SENDER: &str = "noreply@dev.mailpush.test";
/// Where SMTP submission listens in dev mode unless `smtp_listen` says otherwise.
const DEFAULT_SMTP: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 2525);
/// The file holding the dev secrets, in the data directory.
const CREDENTIALS_FILE: &str = "dev-credentials.json";

/// The servers dev mode runs beside mailpush; they stop when this is dropped.
pub struct DevServers {
    /// The embedded DNS authority.
    pub dns: DnsAuthority,
    /// The catch-all mailbox's SMTP listener.
    pub mailbox: MailboxServer,
}

/// What dev mode created, printed at every start.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DevCredentials {
    /// The account.
    pub account: String,
    /// Its AppId.
    pub app_id: i64,
    /// Its SecretId (also the AWS access key id).
    pub secret_id: String,
    /// Its SecretKey.
    pub secret_key: String,
    /// The verified sending domain.
    pub domain: String,
    /// The sender address (also the SMTP username).
    pub sender: String,
    /// The sender's SMTP password.
    pub smtp_password: String,
    /// The console user.
    pub console_user: String,
    /// Its password.
    pub console_password: String,
}

/// Refuses non-loopback listeners (unless `allow_remote`), starts the dev DNS and mailbox and points `settings`
/// at them.
pub async fn prepare(settings: &mut Settings, allow_remote: bool) -> anyhow::Result<DevServers> {
    let listeners = [
        ("api_listen", Some(settings.api_listen)),
        ("smtp_listen", settings.smtp_listen),
        ("smtps_listen", settings.smtps_listen),
        ("inbound_listen", settings.inbound_listen),
        ("admin_listen", settings.admin_listen),
    ];
    for (key, addr) in listeners {
        if let Some(addr) = addr
            && !addr.ip().is_loopback()
            && !allow_remote
        {
            bail!(
                "dev mode listens on loopback only, and {key} is {addr}: its accounts and secrets are for trying \
                 mailpush, not for a network (start with --dev-allow-remote to accept it anyway)"
            );
        }
    }
    let dns = DnsAuthority::start().await.context("starting the dev DNS")?;
    let mailbox = Mailbox::open(settings.data_dir.join("mailbox")).context("opening the dev mailbox")?;
    let server = MailboxServer::start(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), mailbox)
        .await
        .context("starting the dev mailbox")?;
    settings.dev_mode = true;
    settings.dns_servers = vec![dns.addr()];
    settings.relay_host = Some(server.addr().to_string());
    settings.relay_tls = "none".into();
    settings.relay_username = None;
    settings.relay_password = None;
    settings.smtp_listen = settings.smtp_listen.or(Some(DEFAULT_SMTP));
    settings.smtp_allow_plaintext_auth_loopback = true;
    // New domains start at 50 mails a day: not what one wants when trying things out.
    settings.warmup_domain_ramp = Vec::new();
    Ok(DevServers { dns, mailbox: server })
}

/// The credentials file of `data_dir`.
pub fn credentials_path(data_dir: &Path) -> PathBuf {
    data_dir.join(CREDENTIALS_FILE)
}

/// Creates (first start) or reads (later starts) the dev account, domain, sender and console user; publishes the
/// domain's records in the dev DNS and verifies it through the normal check.
pub async fn bootstrap(core: &Mailpush, servers: &DevServers) -> anyhow::Result<DevCredentials> {
    let path = credentials_path(&core.settings().data_dir);
    let creds = match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice::<DevCredentials>(&bytes).with_context(|| {
            format!(
                "{} is not the dev credentials file; delete it to start over",
                path.display()
            )
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let creds = create(core).await?;
            write_private(&path, &serde_json::to_vec_pretty(&creds)?)?;
            creds
        }
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let ctx = mailpush_admin::account_context(core, &creds.account).await?;
    let identity = match core.get_identity(&ctx, &creds.domain).await {
        Ok(v) => v,
        Err(_) => core.create_identity(&ctx, &creds.domain, None).await?,
    };
    // The DNS authority lives in memory: its records are published again at every start. Only the required ones:
    // the optional DMARC record with reports sits at the same name as the required one.
    for r in identity.records.iter().filter(|r| r.spec.required) {
        match r.spec.record_type.as_str() {
            "MX" => servers.dns.add_mx(&r.spec.name, 10, &r.spec.expected),
            _ => servers.dns.add_txt(&r.spec.name, &r.spec.expected),
        }
    }
    let checked = core.update_identity(&ctx, &creds.domain, None).await?;
    if !checked.verified {
        bail!(
            "the dev domain {} did not verify against the dev DNS: {}",
            creds.domain,
            checked.reason.unwrap_or_default()
        );
    }
    if !core.list_senders(&ctx).await?.iter().any(|s| s.address == creds.sender) {
        core.create_sender(&ctx, &creds.sender, Some("mailpush dev")).await?;
        core.update_smtp_password(&ctx, &creds.sender, &creds.smtp_password)
            .await?;
    }
    Ok(creds)
}

/// The first start: the account (or a new key for it, when the file was deleted) and the console user.
async fn create(core: &Mailpush) -> anyhow::Result<DevCredentials> {
    use mailpush_core::{ALPHANUMERIC, random_string};
    let exists = core.list_accounts().await?.iter().any(|a| a.name == ACCOUNT);
    let account = if exists {
        core.rotate_account_key(ACCOUNT).await?
    } else {
        core.create_account_with_policy(
            ACCOUNT,
            mailpush_core::model::templates::AccountPolicy {
                allow_simple_content: true,
                allow_links: true,
            },
        )
        .await?
    };
    let ctx = mailpush_admin::account_context(core, ACCOUNT).await?;
    let console_password = random_string(20, ALPHANUMERIC);
    if core.console_users(None).await?.iter().all(|u| u.username != ACCOUNT) {
        core.create_console_user(ACCOUNT, Some(&ctx), &console_password).await?;
    }
    Ok(DevCredentials {
        account: ACCOUNT.into(),
        app_id: account.app_id,
        secret_id: account.secret_id,
        secret_key: account.secret_key,
        domain: DOMAIN.into(),
        sender: SENDER.into(),
        // The SMTP password policy wants upper case, lower case and digits: guaranteed by the suffix.
        smtp_password: format!("{}Dv7", random_string(17, ALPHANUMERIC)),
        console_user: ACCOUNT.into(),
        console_password,
    })
}

/// Writes `bytes` to `path`, readable by the owner only.
fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(bytes)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// The lines printed at every start.
pub fn announce(creds: &DevCredentials, settings: &Settings, servers: &DevServers) -> Vec<String> {
    let json = serde_json::to_string(creds).unwrap_or_default();
    let smtp = settings.smtp_listen.map(|a| a.to_string()).unwrap_or_default();
    vec![
        format!(
            "mailpush: DEV MODE: account {} (AppId {}), SecretId {} SecretKey {}",
            creds.account, creds.app_id, creds.secret_id, creds.secret_key
        ),
        format!(
            "mailpush: DEV MODE: send from {} (domain {} verified against the dev DNS); SMTP {smtp} user {} password {}",
            creds.sender, creds.domain, creds.sender, creds.smtp_password
        ),
        format!(
            "mailpush: DEV MODE: console user {} password {}; every mail lands in the dev mailbox (SMTP {}, files in {})",
            creds.console_user,
            creds.console_password,
            servers.mailbox.addr(),
            settings.data_dir.join("mailbox").display()
        ),
        format!("mailpush: dev credentials {json}"),
    ]
}
