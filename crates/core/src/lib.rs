//! The mailpush facade. `Mailpush` composes the store, delivery and (as they land) identity, template,
//! quota and reputation crates; the HTTP API, the SMTP server and the binaries all go through it, so a rule
//! is enforced once for every front end.

mod account_keys;
pub mod accounts;
pub mod batch;
mod cache;
pub mod callbacks;
pub mod daily_quota;
pub mod engage;
pub mod error;
pub mod health;
pub mod identity;
pub mod inbound;
pub mod levels;
pub mod limits;
pub mod listener;
pub mod logging;
mod queue_admin;
pub mod retention;
pub mod secrets;
pub mod send;
pub mod settings;
mod slot_shares;
pub mod source_ips;
pub mod stats;
pub mod submit;
pub mod suppression;
pub mod telemetry;
pub mod templates;
pub mod tls;
pub mod warmup;
pub mod worker;

pub use accounts::{AccountContext, AccountCredentials};
pub use callbacks::CallbackHandle;
pub use engage::{CallbackConfig, EngagementFlags, SendOptions, UnsubscribeInfo};
pub use error::CoreError;
pub use identity::{IdentityView, MessageSigner, RecheckHandle, SenderView};
pub use inbound::InboundSummary;
pub use send::{AttachmentInput, SendContent, SendRequest};
pub use settings::Settings;
pub use submit::{RawSubmission, SubmissionTrace, Submitter};
pub use templates::{ReviewMode, TemplateInput};

use mailpush_delivery::{DnsSettings, MxResolver, RetryPolicy, SmtpTransport, TlsPolicy, TransportConfig};
use mailpush_model::{ErrorCode, MessageId, SharedClock};
use mailpush_store::{
    Backend, DeliveryStatusRow, NewMessage, NewRecipient, QueueCounts, StatusQuery, Store, StoreOptions,
};
use secrets::MasterKey;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// The service: one per process, cheap to clone.
#[derive(Clone)]
pub struct Mailpush {
    inner: Arc<Inner>,
}

struct Inner {
    settings: Settings,
    store: Store,
    master: MasterKey,
    clock: SharedClock,
    credentials: accounts::CredentialCache,
    wake: Arc<Notify>,
    /// Wakes the batch runner when a task is created.
    batch_wake: Arc<Notify>,
    templates: templates::TemplateEngine,
    identity: identity::IdentityState,
    /// Statistics / feedback process state (unsubscribe-default cache, bounce-rate metrics).
    feedback: stats::FeedbackState,
    /// Set when the process begins to shut down: readiness then answers 503.
    draining: std::sync::atomic::AtomicBool,
}

/// A `GetSendEmailStatus` query.
#[derive(Debug, Clone, Default)]
pub struct StatusRequest {
    /// `RequestDate`, `YYYY-MM-DD` (UTC).
    pub request_date: String,
    /// `MessageId`.
    pub message_id: Option<String>,
    /// `ToEmailAddress`.
    pub to: Option<String>,
    /// `Offset`.
    pub offset: i64,
    /// `Limit` (1–100).
    pub limit: i64,
}

/// Most rows one status query returns (Tencent: 100).
pub const MAX_STATUS_LIMIT: i64 = 100;

fn master_key_from(settings: &Settings, database_url: &str) -> Result<MasterKey, CoreError> {
    if let Some(text) = &settings.master_key {
        return Ok(MasterKey::from_text(text)?);
    }
    if !database_url.starts_with("sqlite:") {
        // Several machines share a PostgreSQL database: a key generated on one would be unknown to the others.
        return Err(CoreError::Config(
            "MAILPUSH_MASTER_KEY (master_key) is required with PostgreSQL".into(),
        ));
    }
    let path = settings.data_dir.join("master.key");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let t = secrets::random_string(48, secrets::ALPHANUMERIC);
            write_private(&path, &t).map_err(|e| CoreError::Config(format!("cannot write {}: {e}", path.display())))?;
            tracing::warn!(path = %path.display(), "no master key configured: generated one; back it up with the database");
            t
        }
        Err(e) => return Err(CoreError::Config(format!("cannot read {}: {e}", path.display()))),
    };
    Ok(MasterKey::from_text(&text)?)
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()
}

impl Mailpush {
    /// Opens the database (creating the data directory for SQLite), applies migrations and loads the master key.
    pub async fn open(settings: Settings, clock: SharedClock) -> Result<Mailpush, CoreError> {
        // The metrics recorder, before anything records.
        mailpush_telemetry::install();
        let url = settings.database_url();
        if url.starts_with("sqlite:") {
            std::fs::create_dir_all(&settings.data_dir)
                .map_err(|e| CoreError::Config(format!("cannot create {}: {e}", settings.data_dir.display())))?;
        }
        let master = master_key_from(&settings, &url)?;
        let templates = templates::TemplateEngine::from_settings(&settings)?;
        let opts = StoreOptions {
            max_connections: settings.db_max_connections,
            retain_bodies: settings.retain_bodies,
            acquire_timeout: Duration::from_secs(settings.db_acquire_timeout_secs.max(1)),
            statement_timeout: Duration::from_secs(settings.db_statement_timeout_secs.max(1)),
            operation_timeout: Duration::from_secs(settings.db_operation_timeout_secs.max(1)),
            ..StoreOptions::default()
        };
        let store = Store::open(&url, opts).await?;
        Ok(Mailpush {
            inner: Arc::new(Inner {
                settings,
                store,
                master,
                clock,
                credentials: Default::default(),
                wake: Arc::new(Notify::new()),
                batch_wake: Arc::new(Notify::new()),
                templates,
                identity: Default::default(),
                feedback: Default::default(),
                draining: Default::default(),
            }),
        })
    }

    /// The settings in force.
    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    /// The store, for tools and tests.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The clock every rule reads.
    pub fn now_ms(&self) -> i64 {
        self.inner.clock.now_ms()
    }

    /// Creates an account and returns its credentials; the SecretKey is stored sealed and never shown again.
    pub async fn create_account(&self, name: &str) -> Result<AccountCredentials, CoreError> {
        accounts::validate_account_name(name)?;
        if self.inner.store.account_by_name(name).await?.is_some() {
            return Err(CoreError::refused(
                ErrorCode::InvalidParameterValueRepeatCreation,
                format!("an account named {name} already exists"),
            ));
        }
        let creds = accounts::new_credentials(name);
        let sealed = self
            .inner
            .master
            .seal(accounts::SECRET_KEY_CONTEXT, creds.secret_key.as_bytes())?;
        self.inner
            .store
            .create_account(accounts::new_account_row(&creds, sealed, self.now_ms()))
            .await?;
        Ok(creds)
    }

    /// All accounts (for the admin CLI).
    pub async fn list_accounts(&self) -> Result<Vec<AccountContext>, CoreError> {
        Ok(self
            .inner
            .store
            .list_accounts()
            .await?
            .iter()
            .map(AccountContext::from)
            .collect())
    }

    /// The account and SecretKey behind a SecretId, for signature verification; `None` if unknown.
    pub async fn credential(&self, secret_id: &str) -> Result<Option<(AccountContext, String)>, CoreError> {
        if let Some(hit) = self.inner.credentials.get(secret_id) {
            return Ok(Some(hit));
        }
        let Some(account) = self.inner.store.account_by_secret_id(secret_id).await? else {
            return Ok(None);
        };
        let key = self
            .inner
            .master
            .open(accounts::SECRET_KEY_CONTEXT, &account.secret_key_sealed)?;
        let key = String::from_utf8(key).map_err(|_| CoreError::Secret(secrets::SecretError::CannotOpen))?;
        let ctx = AccountContext::from(&account);
        self.inner.credentials.put(secret_id, ctx.clone(), key.clone());
        Ok(Some((ctx, key)))
    }

    /// `SendEmail`: admission, MIME, durable enqueue. Returns the MessageId only once the mail is committed.
    pub async fn send_email(&self, account: &AccountContext, req: SendRequest) -> Result<MessageId, CoreError> {
        self.send_email_with(account, req, SendOptions::default()).await
    }

    /// [`Mailpush::send_email`] with the engagement options (`Unsubscribe`).
    pub async fn send_email_with(
        &self,
        account: &AccountContext,
        req: SendRequest,
        opts: SendOptions,
    ) -> Result<MessageId, CoreError> {
        let (msg, shared_body) = self.prepare(account, req, opts).await?;
        let id = msg.id.clone();
        let suppressed = msg.recipients.iter().any(|r| r.send_status != 0);
        let limits = self.admission_limits(account).await?;
        self.enqueue_admitted(msg, limits, shared_body).await?;
        if suppressed {
            self.check_auto_suspend(account).await?;
        }
        Ok(id)
    }

    /// SendEmail's admission path up to (not including) the enqueue: every rule that can refuse or drop a
    /// recipient, the MIME (and per-recipient bodies for tracked / unsubscribe mail, stored now), and the queue
    /// row to store. The batch runner stores what this returns in its own transaction (with its task cursor), so
    /// batch mail passes exactly the checks `SendEmail` does.
    pub async fn prepare_message(
        &self,
        account: &AccountContext,
        req: SendRequest,
        opts: SendOptions,
    ) -> Result<NewMessage, CoreError> {
        Ok(self.prepare(account, req, opts).await?.0)
    }

    /// Durable enqueue of admitted mail, then the worker knows of it: handed to it in memory when every
    /// recipient gets the message's own MIME (`shared_body`) and it has room, otherwise woken to claim it.
    async fn enqueue_admitted(
        &self,
        msg: NewMessage,
        limits: mailpush_store::AdmissionLimits,
        shared_body: bool,
    ) -> Result<(), CoreError> {
        let handed_off = if shared_body {
            self.inner.store.enqueue_fresh(msg, limits).await?
        } else {
            self.inner.store.enqueue_limited(msg, limits).await?;
            false
        };
        if !handed_off {
            self.inner.wake.notify_one();
        }
        Ok(())
    }

    /// [`Mailpush::prepare_message`], and whether every recipient gets the message's own MIME (no
    /// per-recipient bodies).
    async fn prepare(
        &self,
        account: &AccountContext,
        req: SendRequest,
        opts: SendOptions,
    ) -> Result<(NewMessage, bool), CoreError> {
        if account.suspended {
            return Err(CoreError::refused(
                ErrorCode::FailedOperationHighRejectionRate,
                "the account is suspended",
            ));
        }
        // Kept on the message for callbacks (`templateId`); resolving turns the template into content.
        let template_id = match &req.content {
            Some(SendContent::Template { id, .. }) => *id,
            _ => 0,
        };
        let req = self.resolve_content(account, req).await?;
        let now = self.now_ms();
        let mail = send::admit(req, now)?;
        self.check_sender(account, &mail.sender, &mail.spec.from.address)
            .await?;
        let received = submit::received_header(None, &self.inner.settings.helo_name, &mail.id, now, false);
        let body = submit::prepend(&received, mailpush_delivery::build_mime(&mail.spec)?);
        let mut recipients: Vec<NewRecipient> = mail
            .recipients
            .iter()
            .map(|r| NewRecipient {
                address: r.address.as_str().to_string(),
                domain: r.address.domain().to_string(),
                kind: r.kind,
                send_status: 0,
                deliver_message: None,
            })
            .collect();
        self.screen_recipients(account, mail.sender.domain(), &mut recipients)
            .await?;
        // SendEmail's explicit Unsubscribe wins; otherwise the sender address's config (AddressUnsubscribeConfig).
        let unsubscribe = match opts.unsubscribe {
            Some(code) => code,
            None => self.default_unsubscribe(account.id, &mail.sender).await?,
        };
        let personal = self.personal_bodies(account, &mail, unsubscribe, &recipients)?;
        // Written before the enqueue commits: the worker can only claim the message once both exist.
        self.inner.store.put_recipient_bodies(&mail.id, &personal).await?;
        let msg = NewMessage {
            id: mail.id.clone(),
            account_id: account.id,
            envelope_from: self.return_path(&mail.id, mail.sender.as_str()),
            from_address: mail.sender.as_str().to_string(),
            subject: mail.spec.subject.clone(),
            lane: mail.trigger.lane(),
            request_ms: now,
            not_before_ms: now,
            expires_ms: now.saturating_add(self.inner.settings.max_delivery_seconds as i64 * 1000),
            body,
            recipients,
            template_id,
        };
        Ok((msg, personal.is_empty()))
    }

    /// Wakes the delivery worker (after messages were stored outside `send_email`).
    pub fn wake_worker(&self) {
        self.inner.wake.notify_one();
    }

    /// `GetSendEmailStatus`: one day's per-recipient statuses of the account's mail.
    pub async fn send_status(
        &self,
        account: &AccountContext,
        q: StatusRequest,
    ) -> Result<Vec<DeliveryStatusRow>, CoreError> {
        let (from_ms, to_ms) = mailpush_model::clock::day_range(&q.request_date).ok_or_else(|| {
            CoreError::refused(
                ErrorCode::InvalidParameterValueWrongDate,
                format!("RequestDate {:?} must be a date like 2026-11-26", q.request_date),
            )
        })?;
        if !(1..=MAX_STATUS_LIMIT).contains(&q.limit) {
            return Err(CoreError::refused(
                ErrorCode::FailedOperationInvalidLimit,
                "Limit must be between 1 and 100",
            ));
        }
        if q.offset < 0 {
            return Err(CoreError::refused(
                ErrorCode::InvalidParameterValue,
                "Offset must not be negative",
            ));
        }
        let message_id = match q.message_id.as_deref().filter(|s| !s.is_empty()) {
            // A foreign-looking id cannot match anything: answer empty rather than scanning.
            Some(raw) => match MessageId::parse(raw) {
                Some(id) => Some(id),
                None => return Ok(Vec::new()),
            },
            None => None,
        };
        let to_address = match q.to.as_deref().filter(|s| !s.is_empty()) {
            Some(raw) => Some(
                mailpush_model::EmailAddress::parse(raw)
                    .map_err(|e| {
                        CoreError::refused(
                            ErrorCode::InvalidParameterValueIllegalEmailAddress,
                            format!("ToEmailAddress: {e}"),
                        )
                    })?
                    .as_str()
                    .to_string(),
            ),
            None => None,
        };
        let rows = self
            .inner
            .store
            .status(StatusQuery {
                account_id: account.id,
                from_ms,
                to_ms,
                message_id,
                to_address,
                offset: q.offset,
                limit: q.limit,
            })
            .await?;
        Ok(rows)
    }

    /// Queue depth by state, for health and metrics.
    pub async fn queue_counts(&self) -> Result<QueueCounts, CoreError> {
        Ok(self.inner.store.queue_counts().await?)
    }

    /// Starts the delivery worker on the current runtime.
    pub async fn start_worker(&self) -> Result<worker::WorkerHandle, CoreError> {
        let s = &self.inner.settings;
        let resolver = MxResolver::new(&DnsSettings {
            servers: s.dns_servers.clone(),
            timeout: Duration::from_secs(5),
            cache: true,
        })
        .map_err(|e| CoreError::Config(format!("DNS: {e}")))?;
        let tls = match s.outbound_tls.as_str() {
            "opportunistic" => TlsPolicy::Opportunistic,
            "required" => TlsPolicy::Required,
            "disabled" => TlsPolicy::Disabled,
            other => {
                return Err(CoreError::Config(format!(
                    "outbound_tls {other:?}: use opportunistic, required or disabled"
                )));
            }
        };
        let transport = SmtpTransport::with_gate(
            TransportConfig {
                helo_name: s.helo_name.clone(),
                port: s.delivery_port,
                connect_timeout: Duration::from_secs(s.connect_timeout_secs),
                greeting_timeout: Duration::from_secs(s.greeting_timeout_secs),
                delivery_deadline: Duration::from_secs(s.delivery_deadline_secs),
                data_timeout: Duration::from_secs(s.data_timeout_secs),
                command_timeout: Duration::from_secs(s.command_timeout_secs),
                tls,
                source_ips: s.source_ips.clone(),
                source_pools: source_ips::named_pools(s)?,
                source_avoid: Duration::from_secs(s.source_avoid_secs),
                shaping: source_ips::shaping(s)?,
                // Keep as many idle connections per MX as deliveries can run at once: with the default 4, all
                // but 4 of `worker_concurrency` concurrent transactions opened (and QUIT) a connection each.
                max_idle_per_host: s.worker_concurrency.max(1),
                ..TransportConfig::default()
            },
            resolver,
            Some(self.warmup_gate()?),
        );
        let retry = RetryPolicy {
            schedule: s.retry_schedule(),
            max_age: Duration::from_secs(s.max_delivery_seconds),
        };
        if self.inner.store.backend() == Backend::Sqlite {
            // An embedded database has exactly one worker: leases left by a previous (killed) run are ours.
            let released = self.inner.store.release_leases(self.now_ms()).await?;
            if released > 0 {
                tracing::info!(released, "took over deliveries leased by a previous run");
            }
        }
        let threads = match s.dkim_sign_threads {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            n => n,
        };
        let signing_pool = mailpush_identity::SigningPool::start(threads, s.dkim_sign_nice)?;
        let cfg = worker::WorkerConfig {
            worker_id: format!("{}-{}", s.helo_name, std::process::id()),
            concurrency: s.worker_concurrency,
            account_share: usize::from(s.worker_account_share.clamp(1, 100)),
            batch: s.worker_batch,
            lease: Duration::from_secs(s.lease_seconds),
            retry,
            idle_poll: Duration::from_millis(500),
            warmup: warmup::ramp_from_settings(s)?,
            source_pools: source_ips::PoolAssignments::new(self.inner.store.clone()),
        };
        Ok(worker::spawn(
            self.inner.store.clone(),
            transport,
            self.inner.clock.clone(),
            cfg,
            self.inner.wake.clone(),
            MessageSigner::new(self.clone(), signing_pool),
        ))
    }
}
