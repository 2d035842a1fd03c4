//! The mailpush facade. [`Mailpush`] composes the store, delivery, identity, template, quota and reputation
//! crates; the HTTP API, the SMTP server and the binaries all go through it, so a rule is enforced once for every
//! front end. A Rust service embeds mailpush the same way: open the facade on a database, send through it, and
//! run its background services (the delivery worker among them) on the service's own Tokio runtime.
//!
//! # Embedding
//!
//! [`Mailpush::open`] takes [`Settings`] (the same keys as `mailpush serve`'s configuration file and
//! `MAILPUSH_*` variables; [`settings::load_for_process`] reads them) and a clock. It creates and migrates the
//! database: SQLite in `data_dir` by default, PostgreSQL when `database_url` says so. Everything else is a method
//! of the facade, which is cheap to clone.
//!
//! The records the facade hands out (templates, tasks, statuses, suppression entries, statistics, …) are the
//! shared vocabulary of [`mailpush_model`], re-exported as [`model`]; the store itself stays an implementation
//! detail.
//!
//! The example opens mailpush on a temporary SQLite database, creates an account, verifies a sending domain
//! (against an in-process DNS server instead of real DNS), sends a mail and reads its status, then runs the
//! delivery worker for a moment.
//!
//! ```
//! use mailpush_core::model::templates::AccountPolicy;
//! use mailpush_core::model::{DeliverStatus, SystemClock};
//! use mailpush_core::{Mailpush, SendContent, SendRequest, Settings, StatusRequest};
//! use std::sync::Arc;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // A DNS server in this process that publishes the domain's records (a real deployment uses real DNS).
//! let dns = mailpush_devdns::DnsAuthority::start().await?;
//! let dir = tempfile::tempdir()?;
//! let settings = Settings {
//!     data_dir: dir.path().to_path_buf(),
//!     dns_servers: vec![dns.addr()],
//!     ..Settings::default()
//! };
//! let core = Mailpush::open(settings, Arc::new(SystemClock)).await?;
//!
//! // An account that may send its own content (not only approved templates).
//! let policy = AccountPolicy { allow_simple_content: true, allow_links: false };
//! let credentials = core.create_account_with_policy("shop", policy).await?;
//! println!("API key of shop: {}", credentials.secret_id);
//! let shop = core.account_named("shop").await?;
//!
//! // A sending domain (DKIMOption 3: ed25519): publish the records it asks for, check them, add a sender.
//! let identity = core.create_identity(&shop, "shop.example", Some(3)).await?;
//! for record in identity.records.iter().filter(|r| r.spec.required) {
//!     match record.spec.record_type.as_str() {
//!         "MX" => dns.add_mx(&record.spec.name, 10, &record.spec.expected),
//!         _ => dns.add_txt(&record.spec.name, &record.spec.expected),
//!     }
//! }
//! assert!(core.update_identity(&shop, "shop.example", None).await?.verified);
//! core.create_sender(&shop, "news@shop.example", Some("Shop")).await?;
//!
//! // A mail: admitted (sender, limits, suppression) and durably queued before the MessageId comes back.
//! let request = SendRequest {
//!     from: "news@shop.example".into(),
//!     destination: vec!["customer@example.org".into()],
//!     subject: "Your order".into(),
//!     content: Some(SendContent::Simple {
//!         html: Some("<p>It has shipped.</p>".into()),
//!         text: Some("It has shipped.".into()),
//!     }),
//!     ..SendRequest::default()
//! };
//! let id = core.send_email(&shop, request).await?;
//!
//! // Its status, as `GetSendEmailStatus` reports it: queued for delivery.
//! let today = mailpush_core::model::clock::date_of(core.now_ms());
//! let status = StatusRequest {
//!     request_date: today,
//!     message_id: Some(id.to_string()),
//!     limit: 10,
//!     ..StatusRequest::default()
//! };
//! let rows = core.send_status(&shop, status).await?;
//! assert_eq!(rows.len(), 1);
//! assert_eq!(rows[0].deliver_status, DeliverStatus::Queued);
//! assert_eq!(core.queue_counts().await?.pending, 1);
//!
//! // The delivery worker (`mailpush-services` starts it with the other background services).
//! let worker = core.start_worker().await?;
//! worker.shutdown().await;
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]
// Every type of the public API is exported (no type that callers can get but not name).
#![warn(unnameable_types)]

mod abuse;
mod account_keys;
mod accounts;
mod background;
mod batch;
mod cache;
mod callback_test;
mod callbacks;
mod configuration_sets;
mod console_queries;
mod console_users;
mod contact_lists;
mod daily_quota;
mod dmarc_reports;
mod engage;
mod error;
mod health;
mod identity;
mod identity_tags;
mod inbound;
mod levels;
mod limits;
pub mod listener;
pub mod logging;
mod mta_sts;
mod queue_admin;
mod retention;
mod screening;
mod secrets;
mod send;
mod sending;
mod ses_names;
pub mod settings;
mod simulator;
mod slot_shares;
mod source_ips;
mod stats;
mod submit;
mod suppression;
mod telemetry;
mod templates;
pub mod tls;
mod tls_required;
mod tls_rpt;
mod warmup;
mod worker;

/// The shared vocabulary (ids, statuses, the records the facade hands out), so that an embedding service needs no
/// second dependency to name them.
pub use mailpush_model as model;

pub use abuse::{AbuseQuery, MAX_ABUSE_LIMIT};
pub use account_keys::{ApiKeyInfo, MAX_ACTIVE_KEYS};
pub use accounts::{AccountContext, AccountCredentials};
pub use background::BackgroundTask;
pub use batch::{
    AddDetailsReport, BatchRequest, ReceiverDetailInput, TaskRuns, TaskSchedule, format_time, merge_data,
    subject_with_ad,
};
pub use callbacks::CallbackHandle;
pub use configuration_sets::{
    EVENT_TYPES, ListManagement, SesSendExtras, SesSendOutcome, SetOutcome, request_recipients, sending_enabled,
};
pub use console_queries::{MessageQuery, MessageTimeline, TaskAction};
pub use console_users::{ConsoleSession, ConsoleUser};
pub use contact_lists::{TopicUnsubscribe, receives};
pub use daily_quota::BatchAllowance;
pub use dmarc_reports::{DmarcReport, DmarcReportRequest, DmarcSourceDay};
pub use engage::{CallbackConfig, EngagementFlags, SendOptions, UnsubscribeInfo};
pub use error::{CoreError, StorageError};
pub use health::Readiness;
pub use identity::{IDENTITY_TYPE, IdentityView, MessageSigner, RecheckHandle, SenderView, SignedMessage};
pub use identity_tags::tags_match;
pub use inbound::InboundSummary;
pub use levels::{LevelEvaluatorHandle, LevelMove};
pub use limits::{DomainReputation, MAX_LEVEL, SendQuota};
pub use retention::{RetentionHandle, RetentionPass};
pub use screening::{Check, CheckStatus, ExplainedSymbol, QualityInput, QualityReport, QualityRequest};
pub use secrets::{ALPHANUMERIC, SecretError, random_string};
pub use send::{AttachmentInput, SendContent, SendRequest};
pub use settings::Settings;
pub use source_ips::SourceIpQuota;
pub use stats::{BounceRate, StatisticsReport, StatisticsRequest};
pub use submit::{MAX_RAW_RECIPIENTS, RawSubmission, SubmissionTrace, Submitter, trusted_networks};
pub use suppression::CustomBlacklistCreated;
pub use telemetry::MetricsRefresherHandle;
pub use templates::{ReviewMode, TemplateBodies, TemplateInput};
pub use warmup::{DomainWarmup, ramp_from_settings};
pub use worker::WorkerHandle;

use mailpush_identity::SigningKey;
use mailpush_identity::records::CheckedRecord;
use mailpush_model::EmailAddress;
use mailpush_model::account::TlsRequiredSettings;
use mailpush_model::batch::ReceiverStatus;
use mailpush_model::console::MessageHit;
use mailpush_model::queue::{DeliveryStatusRow, NewMessage, QueueCounts};
use mailpush_model::retention::FilePages;
use mailpush_model::{
    AccountId, TemplateId,
    account::{ScreeningPolicy, UnsubscribeConfigRow},
    batch::{DetailPage, NewReceiverDetail, ReceiverRow, SendTaskRow},
    identity::IdentityRow,
    limits::{AccountLimitOverrides, AdmissionLimits},
    reputation::WarningRow,
    suppression::{BounceBlacklistEntry, CustomBlacklistEntry},
    templates::{AccountPolicy, StoredTemplate, TemplatePage, TemplateSummary},
};
use mailpush_model::{MessageId, SharedClock};
use mailpush_model::{identity::IdentityTag, reputation::AbuseRow, sesv2::SesTemplateRow};
use mailpush_quota::LevelPolicy;
use mailpush_store::{Store, StoreOptions};
use mailpush_template::RenderedContent;
use secrets::Secrets;
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::sync::watch;

/// The service: one per process, cheap to clone. Every method is a one-line delegation to the service that
/// owns the rule; the services take their dependencies explicitly (see [`Mailpush::open`] for the graph).
#[derive(Clone)]
pub struct Mailpush {
    inner: Arc<Services>,
}

/// What every service reads: the database, the settings in force and the clock every rule reads.
#[derive(Clone)]
pub(crate) struct Env {
    pub(crate) store: Store,
    pub(crate) settings: Arc<Settings>,
    pub(crate) clock: SharedClock,
}

impl Env {
    /// The account an operator command names; a name that does not exist is a configuration error.
    pub(crate) async fn operator_account(&self, name: &str) -> Result<mailpush_store::Account, CoreError> {
        self.store
            .accounts()
            .account_by_name(name)
            .await?
            .ok_or_else(|| CoreError::Config(format!("no account named {name}")))
    }
}

/// Every service of the process, each built once with exactly the dependencies it uses.
struct Services {
    settings: Arc<Settings>,
    clock: SharedClock,
    accounts: Arc<accounts::Accounts>,
    identities: Arc<identity::Identities>,
    templates: Arc<templates::Templates>,
    inbound: Arc<inbound::Inbound>,
    dmarc_reports: Arc<dmarc_reports::DmarcReports>,
    engagement: Arc<engage::Engagement>,
    suppression: Arc<suppression::Suppression>,
    statistics: Arc<stats::Statistics>,
    limits: Arc<limits::Limits>,
    levels: Arc<levels::Levels>,
    warmup: Arc<warmup::Warmup>,
    source_ips: Arc<source_ips::SourceIps>,
    sending: Arc<sending::Sending>,
    submission: Arc<submit::Submission>,
    batch: Arc<batch::Batch>,
    callbacks: Arc<callbacks::Callbacks>,
    health: Arc<health::Health>,
    screening: Arc<screening::Screening>,
    retention: Arc<retention::Retention>,
    telemetry: Arc<telemetry::Telemetry>,
    tls_reports: Arc<tls_rpt::TlsReports>,
    delivery: worker::Delivery,
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

impl Mailpush {
    /// Opens the database (creating the data directory for SQLite), applies migrations, loads the master key
    /// and builds the services.
    pub async fn open(settings: Settings, clock: SharedClock) -> Result<Mailpush, CoreError> {
        // The metrics recorder, before anything records.
        mailpush_telemetry::install();
        let url = settings.database_url();
        if url.starts_with("sqlite:") {
            std::fs::create_dir_all(&settings.data_dir)
                .map_err(|e| CoreError::Config(format!("cannot create {}: {e}", settings.data_dir.display())))?;
        }
        mailpush_model::time_zone::set_current(settings.calendar_zone().map_err(|e| CoreError::Config(e.to_string()))?);
        let secrets = Arc::new(Secrets::load(&settings, &url)?);
        let engine = templates::TemplateEngine::from_settings(&settings)?;
        let opts = StoreOptions {
            max_connections: settings.db_max_connections,
            retain_bodies: settings.retain_bodies,
            acquire_timeout: Duration::from_secs(settings.db_acquire_timeout_secs.max(1)),
            statement_timeout: Duration::from_secs(settings.db_statement_timeout_secs.max(1)),
            operation_timeout: Duration::from_secs(settings.db_operation_timeout_secs.max(1)),
            ..StoreOptions::default()
        };
        let store = Store::open(&url, opts).await?;
        let settings = Arc::new(settings);
        let env = Env {
            store,
            settings: settings.clone(),
            clock: clock.clone(),
        };
        let wake = Arc::new(Notify::new());
        let accounts = Arc::new(accounts::Accounts {
            env: env.clone(),
            secrets: secrets.clone(),
            credentials: Default::default(),
        });
        let identities = Arc::new(identity::Identities {
            env: env.clone(),
            secrets: secrets.clone(),
            state: Default::default(),
        });
        let templates = Arc::new(templates::Templates {
            env: env.clone(),
            engine,
            accounts: accounts.clone(),
        });
        let inbound = Arc::new(inbound::Inbound {
            env: env.clone(),
            secrets: secrets.clone(),
        });
        let dmarc_reports = Arc::new(dmarc_reports::DmarcReports { env: env.clone() });
        let engagement = Arc::new(engage::Engagement {
            env: env.clone(),
            secrets,
            inbound: inbound.clone(),
        });
        let suppression = Arc::new(suppression::Suppression {
            env: env.clone(),
            accounts: accounts.clone(),
            engagement: engagement.clone(),
        });
        let statistics = Arc::new(stats::Statistics {
            env: env.clone(),
            feedback: Default::default(),
            engagement: engagement.clone(),
        });
        let limits = Arc::new(limits::Limits {
            env: env.clone(),
            identities: identities.clone(),
        });
        let levels = Arc::new(levels::Levels {
            env: env.clone(),
            accounts: accounts.clone(),
            identities: identities.clone(),
        });
        let warmup = Arc::new(warmup::Warmup { env: env.clone() });
        let source_ips = Arc::new(source_ips::SourceIps { env: env.clone() });
        let screening = Arc::new(screening::Screening {
            env: env.clone(),
            scanners: screening::Scanners::from_settings(&settings)?,
            templates: templates.clone(),
            identities: identities.clone(),
        });
        let sending = Arc::new(sending::Sending {
            env: env.clone(),
            wake: wake.clone(),
            templates: templates.clone(),
            identities: identities.clone(),
            suppression: suppression.clone(),
            engagement: engagement.clone(),
            inbound: inbound.clone(),
            limits: limits.clone(),
            statistics: statistics.clone(),
            screening: screening.clone(),
        });
        let submission = Arc::new(submit::Submission {
            env: env.clone(),
            accounts: accounts.clone(),
            sending: sending.clone(),
            identities: identities.clone(),
            inbound: inbound.clone(),
            limits: limits.clone(),
            statistics: statistics.clone(),
            suppression: suppression.clone(),
            screening: screening.clone(),
        });
        let batch = Arc::new(batch::Batch {
            env: env.clone(),
            batch_wake: Arc::new(Notify::new()),
            identities: identities.clone(),
        });
        let callbacks = Arc::new(callbacks::Callbacks {
            env: env.clone(),
            engagement: engagement.clone(),
            statistics: statistics.clone(),
        });
        let health = Arc::new(health::Health {
            env: env.clone(),
            draining: Default::default(),
        });
        let retention = Arc::new(retention::Retention { env: env.clone() });
        let telemetry = Arc::new(telemetry::Telemetry {
            env: env.clone(),
            accounts: accounts.clone(),
            sending: sending.clone(),
            statistics: statistics.clone(),
            limits: limits.clone(),
            warmup: warmup.clone(),
            source_ips: source_ips.clone(),
            final_count: telemetry::FinalCountSchedule::new(),
        });
        let tls_reports = Arc::new(tls_rpt::TlsReports {
            env: env.clone(),
            recorder: Arc::new(tls_rpt::Recorder::new(clock.clone())),
            accounts: accounts.clone(),
            wake: wake.clone(),
        });
        let delivery = worker::Delivery {
            tls_recorder: tls_rpt::active(&settings).then(|| tls_reports.recorder.clone()),
            env,
            wake,
            source_ips: source_ips.clone(),
            identities: identities.clone(),
        };
        Ok(Mailpush {
            inner: Arc::new(Services {
                settings,
                clock,
                accounts,
                identities,
                templates,
                inbound,
                dmarc_reports,
                engagement,
                suppression,
                statistics,
                limits,
                levels,
                warmup,
                source_ips,
                sending,
                submission,
                batch,
                callbacks,
                health,
                screening,
                retention,
                telemetry,
                tls_reports,
                delivery,
            }),
        })
    }

    /// The settings in force.
    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    /// The clock every rule reads.
    pub fn now_ms(&self) -> i64 {
        self.inner.clock.now_ms()
    }

    /// The batch runner's view of its tasks.
    pub fn task_runs(&self) -> batch::TaskRuns<'_> {
        self.inner.batch.task_runs()
    }

    /// Starts the delivery worker on the current runtime.
    pub async fn start_worker(&self) -> Result<worker::WorkerHandle, CoreError> {
        self.inner.delivery.start().await
    }

    // Accounts
    /// Creates an account and returns its credentials; the SecretKey is stored sealed and never shown again.
    pub async fn create_account(&self, name: &str) -> Result<AccountCredentials, CoreError> {
        self.inner.accounts.create_account(name).await
    }

    /// All accounts (for the admin CLI).
    pub async fn list_accounts(&self) -> Result<Vec<AccountContext>, CoreError> {
        self.inner.accounts.list_accounts().await
    }

    /// The account and SecretKey behind a SecretId, for signature verification; `None` if unknown.
    pub async fn credential(&self, secret_id: &str) -> Result<Option<(AccountContext, String)>, CoreError> {
        self.inner.accounts.credential(secret_id).await
    }

    // Sending
    /// `SendEmail`: admission, MIME, durable enqueue. Returns the MessageId only once the mail is committed.
    pub async fn send_email(&self, account: &AccountContext, req: SendRequest) -> Result<MessageId, CoreError> {
        self.inner.sending.send_email(account, req).await
    }

    /// [`Mailpush::send_email`] with the engagement options (`Unsubscribe`).
    pub async fn send_email_with(
        &self,
        account: &AccountContext,
        req: SendRequest,
        opts: SendOptions,
    ) -> Result<MessageId, CoreError> {
        self.inner.sending.send_email_with(account, req, opts).await
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
        self.inner.sending.prepare_message(account, req, opts).await
    }

    /// Wakes the delivery worker (after messages were stored outside `send_email`).
    pub fn wake_worker(&self) {
        self.inner.sending.wake_worker()
    }

    /// `GetSendEmailStatus`: one day's per-recipient statuses of the account's mail.
    pub async fn send_status(
        &self,
        account: &AccountContext,
        q: StatusRequest,
    ) -> Result<Vec<DeliveryStatusRow>, CoreError> {
        self.inner.sending.send_status(account, q).await
    }

    /// Queue depth by state, for health and metrics.
    pub async fn queue_counts(&self) -> Result<QueueCounts, CoreError> {
        self.inner.sending.queue_counts().await
    }

    // Batch
    /// `CreateReceiver`: a new, empty list; its `ReceiverId`.
    pub async fn create_receiver(
        &self,
        account: &AccountContext,
        name: &str,
        description: Option<&str>,
    ) -> Result<i64, CoreError> {
        self.inner.batch.create_receiver(account, name, description).await
    }

    /// `CreateReceiverDetail` / `CreateReceiverDetailWithData`: adds addresses to a list. Invalid ones are
    /// stored as invalid with a reason and counted; empty ones are counted only.
    pub async fn add_receiver_details(
        &self,
        account: &AccountContext,
        receiver_id: i64,
        items: Vec<ReceiverDetailInput>,
    ) -> Result<AddDetailsReport, CoreError> {
        self.inner.batch.add_receiver_details(account, receiver_id, items).await
    }

    /// Turns request items into rows: empty addresses are only counted; invalid addresses and over-long data
    /// become invalid rows with a reason.
    pub fn classify_details(
        &self,
        items: Vec<ReceiverDetailInput>,
        report: &mut AddDetailsReport,
    ) -> Vec<NewReceiverDetail> {
        self.inner.batch.classify_details(items, report)
    }

    /// Marks a list uploading (a CSV import starts) or done (it ended).
    pub async fn set_receiver_status(
        &self,
        account: &AccountContext,
        receiver_id: i64,
        status: ReceiverStatus,
    ) -> Result<(), CoreError> {
        self.inner.batch.set_receiver_status(account, receiver_id, status).await
    }

    /// The list with this name, for the CSV import.
    pub async fn receiver_named(&self, account: &AccountContext, name: &str) -> Result<Option<ReceiverRow>, CoreError> {
        self.inner.batch.receiver_named(account, name).await
    }

    /// `ListReceivers`.
    pub async fn list_receivers(
        &self,
        account: &AccountContext,
        status: Option<i32>,
        keyword: Option<&str>,
        offset: i64,
        limit: i64,
    ) -> Result<(i64, Vec<ReceiverRow>), CoreError> {
        self.inner
            .batch
            .list_receivers(account, batch::ReceiverFilter { status, keyword }, offset, limit)
            .await
    }

    /// `ListReceiverDetails`.
    #[allow(clippy::too_many_arguments)]
    pub async fn list_receiver_details(
        &self,
        account: &AccountContext,
        receiver_id: i64,
        email: Option<&str>,
        create_time_begin: Option<&str>,
        create_time_end: Option<&str>,
        status: Option<i32>,
        offset: i64,
        limit: i64,
    ) -> Result<DetailPage, CoreError> {
        self.inner
            .batch
            .list_receiver_details(
                account,
                receiver_id,
                batch::DetailFilter {
                    email,
                    create_time_begin,
                    create_time_end,
                    status,
                },
                offset,
                limit,
            )
            .await
    }

    /// `DeleteReceiver`: refused while a task that is not finished uses the list.
    pub async fn delete_receiver(&self, account: &AccountContext, receiver_id: i64) -> Result<(), CoreError> {
        self.inner.batch.delete_receiver(account, receiver_id).await
    }

    /// `BatchSendEmail`: validates everything that can be checked up front and stores the task; the runner
    /// does the rest. Returns the `TaskId`.
    pub async fn batch_send_email(&self, account: &AccountContext, req: BatchRequest) -> Result<i64, CoreError> {
        self.inner.batch.batch_send_email(account, req).await
    }

    /// `ListSendTasks`.
    pub async fn list_send_tasks(
        &self,
        account: &AccountContext,
        status: Option<i32>,
        task_type: Option<i32>,
        receiver_id: Option<i64>,
        offset: i64,
        limit: i64,
    ) -> Result<(i64, Vec<SendTaskRow>), CoreError> {
        self.inner
            .batch
            .list_send_tasks(
                account,
                batch::TaskFilter {
                    status,
                    task_type,
                    receiver_id,
                },
                offset,
                limit,
            )
            .await
    }

    /// Wakes the batch runner (a task was created).
    pub fn batch_notify(&self) -> std::sync::Arc<tokio::sync::Notify> {
        self.inner.batch.batch_notify()
    }

    // Callbacks
    /// Starts the callback dispatcher on the current runtime (with the worker: `serve`, `mailpush-worker`), and
    /// with it the bounce-rate monitor (`crate::stats`), the other consumer of delivery feedback.
    pub fn start_callback_dispatcher(&self) -> Result<CallbackHandle, CoreError> {
        self.inner.callbacks.start_callback_dispatcher()
    }

    // Limits
    /// How many recipients batch sending may still admit for `account` today, and the limit each chunk is
    /// counted against.
    pub async fn batch_allowance(&self, account: &AccountContext) -> Result<BatchAllowance, CoreError> {
        self.inner.limits.batch_allowance(account).await
    }

    // Engagement
    /// The open pixel was loaded: records an open event. `false` for a forged or foreign token.
    pub async fn track_open(&self, token: &str, user_agent: Option<&str>) -> Result<bool, CoreError> {
        self.inner.engagement.track_open(token, user_agent).await
    }

    /// A tracked link was followed: records a click event and returns the signed URL to redirect to
    /// (`None` for a forged or foreign token: never a redirect to an unsigned URL).
    pub async fn track_click(&self, token: &str, user_agent: Option<&str>) -> Result<Option<String>, CoreError> {
        self.inner.engagement.track_click(token, user_agent).await
    }

    /// What an unsubscribe token is about, without acting (the confirmation page).
    pub fn unsubscribe_info(&self, token: &str) -> Option<UnsubscribeInfo> {
        self.inner.engagement.unsubscribe_info(token)
    }

    /// Unsubscribes the token's recipient from its sending domain (RFC 8058 one-click POST or the page's
    /// button); records one unsubscribe event the first time. `None` for a forged or foreign token.
    pub async fn unsubscribe(&self, token: &str) -> Result<Option<UnsubscribeInfo>, CoreError> {
        self.inner.engagement.unsubscribe(token).await
    }

    /// Engagement flags of status rows, by (MessageId, recipient): one query for the rows' messages.
    pub async fn engagement_flags(
        &self,
        account: &AccountContext,
        rows: &[DeliveryStatusRow],
    ) -> Result<HashMap<(String, String), EngagementFlags>, CoreError> {
        self.inner.engagement.engagement_flags(account, rows).await
    }

    /// Sets (`Some`) or removes (`None`) the callback URL of the account (`sender` None) or of one of its
    /// sender addresses (which wins over the account's).
    pub async fn set_callback_url(
        &self,
        account: &AccountContext,
        sender: Option<&str>,
        url: Option<&str>,
    ) -> Result<(), CoreError> {
        self.inner.engagement.set_callback_url(account, sender, url).await
    }

    /// The account's callback URLs and signing secret (created on first use).
    pub async fn callback_config(&self, account: &AccountContext) -> Result<CallbackConfig, CoreError> {
        self.inner.engagement.callback_config(account).await
    }

    /// Replaces the account's callback secret; returns the new one.
    pub async fn reset_callback_secret(&self, account: &AccountContext) -> Result<String, CoreError> {
        self.inner.engagement.reset_callback_secret(account).await
    }

    // Health
    /// Marks the process as shutting down: readiness answers false from now on, so load balancers stop
    /// sending requests while the ones in flight finish.
    pub fn begin_draining(&self) {
        self.inner.health.begin_draining()
    }

    /// Runs the readiness checks; bounded by twice `db_probe_timeout_secs`.
    pub async fn readiness(&self) -> Readiness {
        self.inner.health.readiness().await
    }

    /// Prometheus text of the database health counters.
    pub fn database_metrics(&self) -> String {
        self.inner.health.database_metrics()
    }

    // Identities
    /// `CreateEmailIdentity`: generates the keys and returns the records to publish (not yet verified).
    pub async fn create_identity(
        &self,
        account: &AccountContext,
        domain: &str,
        dkim_option: Option<i64>,
    ) -> Result<IdentityView, CoreError> {
        self.inner
            .identities
            .create_identity(account, domain, dkim_option)
            .await
    }

    /// `GetEmailIdentity`: the records with the last check's findings (no DNS query).
    pub async fn get_identity(&self, account: &AccountContext, domain: &str) -> Result<IdentityView, CoreError> {
        self.inner.identities.get_identity(account, domain).await
    }

    /// Sets the return-path (custom MAIL FROM) domain of `domain` (`None` = `bounce.<domain>`; a sub-domain of
    /// it otherwise) and checks its records at once (mailpush extension `MailFromDomain` of
    /// Create/UpdateEmailIdentity; AWS SES's `PutEmailIdentityMailFromAttributes`).
    pub async fn set_mail_from_domain(
        &self,
        account: &AccountContext,
        domain: &str,
        mail_from: Option<&str>,
    ) -> Result<IdentityView, CoreError> {
        self.inner
            .identities
            .set_mail_from_domain(account, domain, mail_from)
            .await
    }

    /// `UpdateEmailIdentity`: re-checks DNS now (after replacing the keys if `dkim_option` differs).
    pub async fn update_identity(
        &self,
        account: &AccountContext,
        domain: &str,
        dkim_option: Option<i64>,
    ) -> Result<IdentityView, CoreError> {
        self.inner
            .identities
            .update_identity(account, domain, dkim_option)
            .await
    }

    /// `ListEmailIdentities`: the account's domains (paged) and their total.
    pub async fn list_identities(
        &self,
        account: &AccountContext,
        offset: i64,
        limit: i64,
    ) -> Result<(Vec<IdentityView>, i64), CoreError> {
        self.inner.identities.list_identities(account, offset, limit).await
    }

    /// `DeleteEmailIdentity`: refused while the domain has sender addresses.
    pub async fn delete_identity(&self, account: &AccountContext, domain: &str) -> Result<(), CoreError> {
        self.inner.identities.delete_identity(account, domain).await
    }

    /// `CreateEmailAddress`: a sender address on one of the account's domains (verified or not yet).
    pub async fn create_sender(
        &self,
        account: &AccountContext,
        address: &str,
        sender_name: Option<&str>,
    ) -> Result<SenderView, CoreError> {
        self.inner.identities.create_sender(account, address, sender_name).await
    }

    /// `ListEmailAddress`.
    pub async fn list_senders(&self, account: &AccountContext) -> Result<Vec<SenderView>, CoreError> {
        self.inner.identities.list_senders(account).await
    }

    /// `GetTlsPolicy` (a mailpush extension): whether the account's mail requires TLS, and which of its sender
    /// addresses require it.
    pub async fn tls_required(&self, account: &AccountContext) -> Result<TlsRequiredSettings, CoreError> {
        self.inner.identities.tls_required(account).await
    }

    /// `UpdateTlsPolicy` (a mailpush extension): mail of the whole account (`address` `None`) or of one of its
    /// sender addresses goes only over verified TLS (`required`), or as `outbound_tls` says again. Applies to mail
    /// accepted from then on; returns the account's settings after the change. An address that is not the
    /// account's is `InvalidParameterValue.NoSuchSender`.
    pub async fn set_tls_required(
        &self,
        account: &AccountContext,
        address: Option<&str>,
        required: bool,
    ) -> Result<TlsRequiredSettings, CoreError> {
        self.inner.identities.set_tls_required(account, address, required).await
    }

    /// [`Mailpush::set_tls_required`] for the operator, by account name (`mailpush account set --require-tls`,
    /// `mailpush sender require-tls`).
    pub async fn set_tls_required_by_name(
        &self,
        name: &str,
        address: Option<&str>,
        required: bool,
    ) -> Result<TlsRequiredSettings, CoreError> {
        let account = self.inner.accounts.account_named(name).await?;
        self.set_tls_required(&account, address, required).await
    }

    /// [`Mailpush::tls_required`] for the operator, by account name.
    pub async fn tls_required_by_name(&self, name: &str) -> Result<TlsRequiredSettings, CoreError> {
        let account = self.inner.accounts.account_named(name).await?;
        self.tls_required(&account).await
    }

    /// `DeleteEmailAddress`.
    pub async fn delete_sender(&self, account: &AccountContext, address: &str) -> Result<(), CoreError> {
        self.inner.identities.delete_sender(account, address).await
    }

    /// `UpdateEmailSmtpPassWord`: sets the SMTP password of a sender address (stored as argon2id).
    pub async fn update_smtp_password(
        &self,
        account: &AccountContext,
        address: &str,
        new_password: &str,
    ) -> Result<(), CoreError> {
        self.inner
            .identities
            .update_smtp_password(account, address, new_password)
            .await
    }

    /// SMTP AUTH: the account and sender address behind (address, password), or `None` when they do not
    /// match (unknown address, no password set, wrong password: indistinguishable to the caller). The
    /// comparison is argon2's (constant-time).
    pub async fn verify_smtp_credentials(
        &self,
        address: &str,
        smtp_password: &str,
    ) -> Result<Option<(AccountContext, SenderView)>, CoreError> {
        self.inner
            .identities
            .verify_smtp_credentials(address, smtp_password)
            .await
    }

    /// Operator view (`mailpush domain check`): checks any account's domain in DNS now, without recording.
    pub async fn admin_check_domain(
        &self,
        domain: &str,
    ) -> Result<Option<(IdentityRow, Vec<CheckedRecord>)>, CoreError> {
        self.inner.identities.admin_check_domain(domain).await
    }

    /// Re-checks every verified domain whose last check is older than `identity_recheck_secs`; returns how
    /// many were checked. A domain whose DNS broke stops being sendable, with the reason recorded.
    pub async fn recheck_due_identities(&self) -> Result<usize, CoreError> {
        self.inner.identities.recheck_due_identities().await
    }

    /// Starts the periodic re-check of verified domains (with the worker, or with `serve`).
    pub fn start_identity_rechecker(&self) -> RecheckHandle {
        self.inner.identities.start_identity_rechecker()
    }

    /// The signing keys of the account's domain (unsealed), cached for a minute. Empty when the domain is
    /// gone or no longer verified: such mail goes out unsigned rather than signed with a key whose record
    /// may be missing.
    pub async fn signing_keys(&self, account: AccountId, domain: &str) -> Result<Arc<Vec<SigningKey>>, CoreError> {
        self.inner.identities.signing_keys(account, domain).await
    }

    // Inbound
    /// The host of the inbound MX (`bounce_mx_host`, else `helo_name`): mailto-unsubscribe and complaint
    /// addresses live there.
    pub fn inbound_mx_host(&self) -> String {
        self.inner.inbound.inbound_mx_host()
    }

    /// The `MAIL FROM` of message `id` sent from `sender` (`mpb-<token>@<sender's domain>`); the sender itself
    /// for an id mailpush did not generate.
    pub fn return_path(&self, id: &MessageId, sender: &str) -> String {
        self.inner.inbound.return_path(id, sender)
    }

    /// Whether the inbound MX accepts `RCPT TO:<rcpt>`: a valid VERP return path, a mailto-unsubscribe address
    /// of an existing message's recipient, or the complaint address. Everything else is refused (no relay).
    pub async fn inbound_recipient_accepted(&self, rcpt: &str) -> Result<bool, CoreError> {
        self.inner.inbound.inbound_recipient_accepted(rcpt).await
    }

    /// Processes one mail the inbound MX accepted for `rcpts` (each accepted by
    /// [`Mailpush::inbound_recipient_accepted`]). Unmatched reports are dropped silently (never bounced back).
    pub async fn receive_inbound(&self, rcpts: &[String], data: &[u8]) -> Result<InboundSummary, CoreError> {
        self.inner.inbound.receive_inbound(rcpts, data).await
    }

    // Levels
    /// The level policy from the settings.
    pub fn level_policy(&self) -> LevelPolicy {
        self.inner.levels.level_policy()
    }

    /// Starts the periodic evaluation (every `level_eval_secs`; with 0 the task only waits to be stopped).
    pub fn start_level_evaluator(&self) -> LevelEvaluatorHandle {
        self.inner.levels.start_level_evaluator()
    }

    /// One evaluation pass over every account's verified domains; returns the changes this call made.
    pub async fn evaluate_levels(&self) -> Result<Vec<LevelMove>, CoreError> {
        self.inner.levels.evaluate_levels().await
    }

    /// [`Mailpush::evaluate_levels`] for one account.
    pub async fn evaluate_account_levels(&self, account: &AccountContext) -> Result<Vec<LevelMove>, CoreError> {
        self.inner.levels.evaluate_account_levels(account).await
    }

    // Limits
    /// The limits a send of `account` is checked against now: the configured defaults (stored per-account
    /// overrides replace them inside the enqueue transaction) and the sum of its verified domains' level quotas.
    pub async fn admission_limits(&self, account: &AccountContext) -> Result<AdmissionLimits, CoreError> {
        self.inner.limits.admission_limits(account).await
    }

    /// Today's usage and limits of the account (`GetSendQuota`, metrics, batch planning).
    pub async fn send_quota(&self, account: &AccountContext) -> Result<SendQuota, CoreError> {
        self.inner.limits.send_quota(account).await
    }

    /// The level of each of `domains` (1 when none is recorded), in the same order.
    pub async fn reputations(
        &self,
        account: &AccountContext,
        domains: &[&str],
    ) -> Result<Vec<DomainReputation>, CoreError> {
        self.inner.limits.reputations(account, domains).await
    }

    /// Reputation of one of the account's domains (level 1 when none is recorded).
    pub async fn domain_reputation(
        &self,
        account: &AccountContext,
        domain: &str,
    ) -> Result<DomainReputation, CoreError> {
        self.inner.limits.domain_reputation(account, domain).await
    }

    /// Operator: sets an account's limit overrides. `Some(None)` clears a field (back to the default), `None`
    /// leaves it as it is. Returns the overrides in force.
    pub async fn set_account_limits(
        &self,
        name: &str,
        sends_per_second: Option<Option<i64>>,
        per_recipient_per_hour: Option<Option<i64>>,
        daily_cap: Option<Option<i64>>,
    ) -> Result<AccountLimitOverrides, CoreError> {
        self.inner
            .limits
            .set_account_limits(
                name,
                limits::LimitChanges {
                    sends_per_second,
                    per_recipient_per_hour,
                    daily_cap,
                },
            )
            .await
    }

    /// Operator: sets a domain's reputation level (1–20).
    pub async fn set_domain_level(&self, domain: &str, level: u8) -> Result<(), CoreError> {
        self.inner.limits.set_domain_level(domain, level).await
    }

    // SourceIps
    /// The source addresses `account`'s mail can go out from (the shared pool and the pools its domains are
    /// assigned to) with today's sends and warm-up allowance.
    pub async fn source_ip_quota(&self, account: &AccountContext) -> Result<Vec<SourceIpQuota>, CoreError> {
        self.inner.source_ips.source_ip_quota(account).await
    }

    /// Every sending domain's source pool assignment (domains without one send from the shared pool).
    pub async fn domain_pool_assignments(&self) -> Result<Vec<mailpush_model::sources::DomainSourcePool>, CoreError> {
        self.inner.source_ips.domain_pool_assignments().await
    }

    /// Every configured source address, per pool, with today's sends and warm-up allowance.
    pub async fn all_source_ip_quota(&self) -> Result<Vec<SourceIpQuota>, CoreError> {
        self.inner.source_ips.all_source_ip_quota().await
    }

    /// Operator: assigns sending domain `domain` (whichever account holds it) to source pool `pool`, which must
    /// be declared in `source_pools` (`shared` or `None` = back to the shared pool). Returns the account id.
    pub async fn set_domain_pool(&self, domain: &str, pool: Option<&str>) -> Result<AccountId, CoreError> {
        self.inner.source_ips.set_domain_pool(domain, pool).await
    }

    // Statistics
    /// `GetStatisticsReport`: the account's counters per day of `StartDate..=EndDate` and in all, optionally for
    /// one sending domain and one recipient mailbox domain. Reads the daily rollup: a few rows per day.
    pub async fn statistics_report(
        &self,
        account: &AccountContext,
        req: &StatisticsRequest,
    ) -> Result<StatisticsReport, CoreError> {
        self.inner.statistics.statistics_report(account, req).await
    }

    /// `GetDmarcReport` (mailpush extension): the DMARC aggregate reports received about one of the account's
    /// domains, per UTC day and source IP.
    pub async fn dmarc_report(
        &self,
        account: &AccountContext,
        req: &dmarc_reports::DmarcReportRequest,
    ) -> Result<dmarc_reports::DmarcReport, CoreError> {
        self.inner.dmarc_reports.report(account, req).await
    }

    /// `CreateAddressUnsubscribeConfig`: the default `Unsubscribe` option of one sender address.
    pub async fn create_unsubscribe_config(
        &self,
        account: &AccountContext,
        address: &str,
        unsubscribe_config: &str,
        status: Option<i64>,
    ) -> Result<(), CoreError> {
        self.inner
            .statistics
            .create_unsubscribe_config(account, address, unsubscribe_config, status)
            .await
    }

    /// `UpdateAddressUnsubscribeConfig`.
    pub async fn update_unsubscribe_config(
        &self,
        account: &AccountContext,
        address: &str,
        unsubscribe_config: &str,
        status: Option<i64>,
    ) -> Result<(), CoreError> {
        self.inner
            .statistics
            .update_unsubscribe_config(account, address, unsubscribe_config, status)
            .await
    }

    /// `DeleteAddressUnsubscribeConfig`.
    pub async fn delete_unsubscribe_config(&self, account: &AccountContext, address: &str) -> Result<(), CoreError> {
        self.inner.statistics.delete_unsubscribe_config(account, address).await
    }

    /// `ListAddressUnsubscribeConfig`: one page (`Limit` 1–100) by address, and the total.
    pub async fn list_unsubscribe_configs(
        &self,
        account: &AccountContext,
        offset: i64,
        limit: i64,
    ) -> Result<(Vec<UnsubscribeConfigRow>, i64), CoreError> {
        self.inner
            .statistics
            .list_unsubscribe_configs(account, offset, limit)
            .await
    }

    /// The account's bounce rate over the reputation window, from the rollup (whole UTC days: the days the
    /// window touches).
    pub async fn bounce_rate(&self, account: AccountId) -> Result<BounceRate, CoreError> {
        self.inner.statistics.bounce_rate(account).await
    }

    /// One pass of the bounce-rate monitor over every account: raises a `bounce_rate` warning (warn log line,
    /// metrics, a row listed by `ListReputationWarnings`) when the rate exceeds `bounce_warn_percent` with at
    /// least `reputation_min_sends` outcomes in the window, and clears it when the rate is back at or below.
    /// Returns how many warnings this pass raised.
    pub async fn check_bounce_rates(&self) -> Result<usize, CoreError> {
        self.inner.statistics.check_bounce_rates().await
    }

    /// The account's reputation warnings, newest first (`ListReputationWarnings`).
    pub async fn reputation_warnings(&self, account: &AccountContext) -> Result<Vec<WarningRow>, CoreError> {
        self.inner.statistics.reputation_warnings(account).await
    }

    // Submission
    /// Checks the SMTP submission settings (trusted networks and account); call once at start-up so that
    /// a typo stops the process instead of silently refusing mail.
    pub fn check_smtp_settings(&self) -> Result<(), CoreError> {
        self.inner.submission.check_smtp_settings()
    }

    /// SMTP AUTH: the submitter behind (username = a sender address, password = its SMTP password set by
    /// `UpdateEmailSmtpPassWord`, argon2), or `None` when they do not match.
    pub async fn smtp_login(&self, username: &str, password: &str) -> Result<Option<Submitter>, CoreError> {
        self.inner.submission.smtp_login(username, password).await
    }

    /// The submitter for a client in `smtp_trusted_networks` (mail accepted without AUTH for
    /// `smtp_trusted_account`), or `None`.
    pub async fn smtp_trusted_submitter(&self, client: IpAddr) -> Result<Option<Submitter>, CoreError> {
        self.inner.submission.smtp_trusted_submitter(client).await
    }

    /// May `who` send with `address` as envelope sender or header From (`field` names which)? A login may
    /// only use its own address; every address must also be one the account may send from.
    pub async fn check_submission_sender(&self, who: &Submitter, field: &str, address: &str) -> Result<(), CoreError> {
        self.inner
            .submission
            .check_submission_sender(who, field, address)
            .await
            .map(|_| ())
    }

    /// May `account` send from `address`?
    ///
    /// The envelope or header sender of a submission must be in one of the account's verified sending
    /// domains (`FailedOperation.NotAuthenticatedSender` → 550 5.7.1).
    pub async fn sender_identity_allowed(
        &self,
        account: &AccountContext,
        address: &EmailAddress,
    ) -> Result<(), CoreError> {
        self.inner.submission.sender_identity_allowed(account, address).await
    }

    /// May `who` send to `rcpt`? Checked at `RCPT TO` so that a refusal names the recipient. Today: the
    /// address must be valid; suppression lists join here when they land.
    pub async fn check_submission_recipient(&self, who: &Submitter, rcpt: &str) -> Result<EmailAddress, CoreError> {
        self.inner.submission.check_submission_recipient(who, rcpt).await
    }

    /// Raw MIME submission (SMTP): admission, then durable enqueue (group commit, fsync). Returns the
    /// MessageId only once the message is committed; `GetSendEmailStatus` finds it under the account.
    pub async fn submit_raw(&self, who: &Submitter, sub: RawSubmission) -> Result<MessageId, CoreError> {
        self.inner.submission.submit_raw(who, sub).await
    }

    // Suppression
    /// Suspends or resumes an account by name (operator CLI).
    pub async fn set_account_suspended_by_name(&self, name: &str, suspended: bool) -> Result<(), CoreError> {
        self.inner
            .suppression
            .set_account_suspended_by_name(name, suspended)
            .await
    }

    /// `ListBlackEmailAddress`: the global bounce blacklist rows the account's mail caused, blacklisted between
    /// `StartDate` and `EndDate` (UTC days, inclusive), newest first; and their total.
    pub async fn list_black_email_address(
        &self,
        account: &AccountContext,
        start_date: &str,
        end_date: &str,
        email: Option<&str>,
        offset: i64,
        limit: i64,
    ) -> Result<(Vec<BounceBlacklistEntry>, i64), CoreError> {
        self.inner
            .suppression
            .list_black_email_address(
                account,
                suppression::BounceBlacklistFilter {
                    start_date,
                    end_date,
                    email,
                },
                offset,
                limit,
            )
            .await
    }

    /// `DeleteBlackList`: lifts the account's own global blacklist rows for these addresses.
    pub async fn delete_black_list(&self, account: &AccountContext, emails: &[String]) -> Result<u64, CoreError> {
        self.inner.suppression.delete_black_list(account, emails).await
    }

    /// `CreateCustomBlacklist`: lists addresses until `ExpireDate` (end of that UTC day; none = forever).
    pub async fn create_custom_blacklist(
        &self,
        account: &AccountContext,
        emails: &[String],
        expire_date: Option<&str>,
    ) -> Result<CustomBlacklistCreated, CoreError> {
        self.inner
            .suppression
            .create_custom_blacklist(account, emails, expire_date)
            .await
    }

    /// `ListCustomBlacklist`: `Status` 0 expired, 1 in force, 2 (or absent) all.
    pub async fn list_custom_blacklist(
        &self,
        account: &AccountContext,
        status: Option<i64>,
        email: Option<&str>,
        offset: i64,
        limit: i64,
    ) -> Result<(Vec<CustomBlacklistEntry>, i64), CoreError> {
        self.inner
            .suppression
            .list_custom_blacklist(
                account,
                suppression::CustomBlacklistFilter { status, email },
                offset,
                limit,
            )
            .await
    }

    /// `UpdateCustomBlackList`: changes the address and expiry of one row (an empty `ExpireDate` = forever).
    pub async fn update_custom_blacklist(
        &self,
        account: &AccountContext,
        id: i64,
        email: &str,
        expire_date: Option<&str>,
    ) -> Result<(), CoreError> {
        self.inner
            .suppression
            .update_custom_blacklist(account, id, suppression::CustomBlacklistEdit { email, expire_date })
            .await
    }

    /// `DeleteCustomBlackList`: removes these addresses from the account's custom blacklist.
    pub async fn delete_custom_blacklist(&self, account: &AccountContext, emails: &[String]) -> Result<u64, CoreError> {
        self.inner.suppression.delete_custom_blacklist(account, emails).await
    }

    // Templates
    /// The review mode in force (`template_review`).
    pub fn template_review_mode(&self) -> ReviewMode {
        self.inner.templates.template_review_mode()
    }

    /// `CreateEmailTemplate`: validates, reviews and stores a template; returns its TemplateID.
    pub async fn create_template(
        &self,
        account: &AccountContext,
        input: TemplateInput,
    ) -> Result<TemplateId, CoreError> {
        self.inner.templates.create_template(account, input).await
    }

    /// `UpdateEmailTemplate`: replaces name/content/category and reviews the template again (an approved
    /// template goes back under review in manual mode).
    pub async fn update_template(
        &self,
        account: &AccountContext,
        id: TemplateId,
        input: TemplateInput,
    ) -> Result<StoredTemplate, CoreError> {
        self.inner.templates.update_template(account, id, input).await
    }

    /// `GetEmailTemplate`: one of the account's templates with its content.
    pub async fn template(&self, account: &AccountContext, id: TemplateId) -> Result<StoredTemplate, CoreError> {
        self.inner.templates.template(account, id).await
    }

    /// `ListEmailTemplates`: a page (Limit 1–100) of the account's templates, newest first, and the total.
    pub async fn list_templates(
        &self,
        account: &AccountContext,
        offset: i64,
        limit: i64,
    ) -> Result<TemplatePage, CoreError> {
        self.inner.templates.list_templates(account, offset, limit).await
    }

    /// `DeleteEmailTemplate`.
    pub async fn delete_template(&self, account: &AccountContext, id: TemplateId) -> Result<(), CoreError> {
        self.inner.templates.delete_template(account, id).await
    }

    /// Creates an account with these content permissions.
    pub async fn create_account_with_policy(
        &self,
        name: &str,
        policy: AccountPolicy,
    ) -> Result<accounts::AccountCredentials, CoreError> {
        self.inner.templates.create_account_with_policy(name, policy).await
    }

    /// An account's content permissions, by account name.
    pub async fn account_policy(&self, name: &str) -> Result<AccountPolicy, CoreError> {
        self.inner.templates.account_policy(name).await
    }

    /// Changes an account's content permissions (`None` keeps a permission as it is); returns the result.
    /// Takes effect on the next send: permissions are read per request, never cached.
    pub async fn set_account_policy(
        &self,
        name: &str,
        allow_simple_content: Option<bool>,
        allow_links: Option<bool>,
    ) -> Result<AccountPolicy, CoreError> {
        self.inner
            .templates
            .set_account_policy(name, allow_simple_content, allow_links)
            .await
    }

    /// Templates of every account, optionally only those waiting for review.
    pub async fn admin_templates(&self, pending_only: bool) -> Result<Vec<TemplateSummary>, CoreError> {
        self.inner.templates.admin_templates(pending_only).await
    }

    /// Any account's template, with content (for the operator to read before deciding).
    pub async fn admin_template(&self, id: TemplateId) -> Result<StoredTemplate, CoreError> {
        self.inner.templates.admin_template(id).await
    }

    /// Approves a template waiting for review. With `version`, only if its content is still that version.
    pub async fn approve_template(&self, id: TemplateId, version: Option<i64>) -> Result<StoredTemplate, CoreError> {
        self.inner.templates.approve_template(id, version).await
    }

    /// Rejects a template (under review or approved) with a reason shown as its ReviewReason.
    pub async fn reject_template(
        &self,
        id: TemplateId,
        version: Option<i64>,
        reason: &str,
    ) -> Result<StoredTemplate, CoreError> {
        self.inner.templates.reject_template(id, version, reason).await
    }

    // Warmup
    /// Today's warm-up of each of the account's verified domains (and of any other domain it sent from or has
    /// mail held for), by domain.
    pub async fn domain_warmup(&self, account: &AccountContext) -> Result<Vec<DomainWarmup>, CoreError> {
        self.inner.warmup.domain_warmup(account).await
    }

    // Screening
    /// The account's screening settings (cached a second).
    pub async fn screening_policy(&self, account: &AccountContext) -> Result<ScreeningPolicy, CoreError> {
        self.inner.screening.screening_policy(account).await
    }

    /// Replaces the account's screening settings (operator CLI). `min_score` must lie in 0–10.
    pub async fn set_screening_policy(
        &self,
        account: &AccountContext,
        policy: ScreeningPolicy,
    ) -> Result<(), CoreError> {
        self.inner.screening.set_screening_policy(account, policy).await
    }

    /// `CheckEmailQuality` / `mailpush check`: the 0–10 report of a mail (nothing is sent or stored).
    pub async fn check_email_quality(
        &self,
        account: &AccountContext,
        req: screening::QualityRequest,
    ) -> Result<screening::QualityReport, CoreError> {
        self.inner.screening.check_email_quality(account, req).await
    }

    /// Prometheus text of the screening counters of this process.
    pub fn screening_metrics(&self) -> String {
        self.inner.screening.screening_metrics()
    }

    // Wire API fidelity: abuse reports, identity tags, send IPs
    /// Replaces the tags of the account's sending domain `domain`.
    pub async fn set_identity_tags(
        &self,
        account: &AccountContext,
        domain: &str,
        tags: &[IdentityTag],
    ) -> Result<(), CoreError> {
        self.inner.identities.set_identity_tags(account, domain, tags).await
    }

    /// The tags of every tagged domain of the account.
    pub async fn identity_tags(
        &self,
        account: &AccountContext,
    ) -> Result<BTreeMap<String, Vec<IdentityTag>>, CoreError> {
        self.inner.identities.identity_tags(account).await
    }

    /// The configured source addresses `domain` sends from: the members of its pool (its own assignment, else its
    /// closest parent's, else the shared pool). Empty when the operating system chooses the source.
    pub async fn identity_send_ips(&self, account: &AccountContext, domain: &str) -> Result<Vec<String>, CoreError> {
        self.inner.source_ips.identity_send_ips(account, domain).await
    }

    /// `GetAbuseReport`: the account's complaints in the period matching the filters, newest first, one page;
    /// and how many match.
    pub async fn abuse_reports(
        &self,
        account: &AccountContext,
        q: &AbuseQuery,
    ) -> Result<(Vec<AbuseRow>, i64), CoreError> {
        self.inner.statistics.abuse_reports(account, q).await
    }

    // AWS SES v2 names
    /// The AWS SES v2 template names of the account (each bound to a template id).
    pub async fn ses_templates(&self, account: &AccountContext) -> Result<Vec<SesTemplateRow>, CoreError> {
        self.inner.templates.ses_templates(account).await
    }

    /// Binds an AWS SES v2 template name to a template (replacing an earlier binding of the name).
    pub async fn put_ses_template(&self, account: &AccountContext, row: &SesTemplateRow) -> Result<(), CoreError> {
        self.inner.templates.put_ses_template(account, row).await
    }

    /// Forgets an AWS SES v2 template name; whether it existed.
    pub async fn delete_ses_template(&self, account: &AccountContext, name: &str) -> Result<bool, CoreError> {
        self.inner.templates.delete_ses_template(account, name).await
    }

    /// The AWS suppression-list reasons (`BOUNCE` / `COMPLAINT`) recorded per address.
    pub async fn suppression_reasons(&self, account: &AccountContext) -> Result<Vec<(String, String)>, CoreError> {
        self.inner.suppression.suppression_reasons(account).await
    }

    /// Records (`Some`) or forgets (`None`) the AWS suppression-list reason of an address.
    pub async fn set_suppression_reason(
        &self,
        account: &AccountContext,
        address: &str,
        reason: Option<&str>,
    ) -> Result<(), CoreError> {
        self.inner
            .suppression
            .set_suppression_reason(account, address, reason)
            .await
    }

    // The web console: users, sessions, message search and timelines, task controls, previews
    /// The account with row id `id`.
    pub async fn account_by_id(&self, id: i64) -> Result<AccountContext, CoreError> {
        self.inner.accounts.account_by_id(id).await
    }

    /// Adds a console user for `account` (`None`: an operator). The password is stored as argon2id.
    pub async fn create_console_user(
        &self,
        username: &str,
        account: Option<&AccountContext>,
        password: &str,
    ) -> Result<ConsoleUser, CoreError> {
        self.inner
            .accounts
            .create_console_user(username, account, password)
            .await
    }

    /// The console users of `account` (`None`: every one).
    pub async fn console_users(&self, account: Option<&AccountContext>) -> Result<Vec<ConsoleUser>, CoreError> {
        self.inner.accounts.console_users(account).await
    }

    /// Checks a sign-in; `None` when the user is unknown or the password wrong (the same answer, and argon2
    /// runs either way, so timing does not tell which).
    pub async fn console_sign_in(&self, username: &str, password: &str) -> Result<Option<ConsoleUser>, CoreError> {
        self.inner.accounts.console_sign_in(username, password).await
    }

    /// Starts a session for `user`: returns the cookie value (shown once, stored hashed).
    pub async fn open_console_session(&self, user: &ConsoleUser) -> Result<String, CoreError> {
        self.inner.accounts.open_console_session(user).await
    }

    /// The session of a cookie value, if it is current.
    pub async fn console_session(&self, token: &str) -> Result<Option<ConsoleSession>, CoreError> {
        self.inner.accounts.console_session(token).await
    }

    /// The operator chooses the account the session shows (`None`: none).
    pub async fn set_console_account(&self, token: &str, account: Option<i64>) -> Result<(), CoreError> {
        self.inner.accounts.set_console_account(token, account).await
    }

    /// Signs a session out.
    pub async fn close_console_session(&self, token: &str) -> Result<(), CoreError> {
        self.inner.accounts.close_console_session(token).await
    }

    /// The account's recipients of messages accepted on `q.date` matching the filters, newest first.
    pub async fn search_messages(
        &self,
        account: &AccountContext,
        q: &MessageQuery,
    ) -> Result<Vec<MessageHit>, CoreError> {
        self.inner.sending.search_messages(account, q).await
    }

    /// One of the account's messages, start to end; `ResourceNotFound` when the account has no such message.
    pub async fn message_timeline(
        &self,
        account: &AccountContext,
        message_id: &str,
    ) -> Result<MessageTimeline, CoreError> {
        self.inner.sending.message_timeline(account, message_id).await
    }

    /// Pauses, resumes or cancels one of the account's batch tasks.
    pub async fn control_send_task(
        &self,
        account: &AccountContext,
        task_id: i64,
        action: TaskAction,
    ) -> Result<(), CoreError> {
        self.inner.batch.control_send_task(account, task_id, action).await
    }

    /// Renders unsaved template content with sample `data` as a send would (HTML values escaped, strict on
    /// missing variables, TemplateData checked by the same rules).
    pub fn preview_template(
        &self,
        subject: &str,
        html: Option<&str>,
        text: Option<&str>,
        data: &str,
    ) -> Result<RenderedContent, CoreError> {
        self.inner.templates.preview_template(subject, html, text, data)
    }

    /// Posts a sample signed `delivered` callback to the account's callback URL now; the error says what the
    /// endpoint answered (or why it could not be reached).
    pub async fn send_test_callback(&self, account: &AccountContext) -> Result<(), CoreError> {
        self.inner.engagement.send_test_callback(account).await
    }

    // Operations: key rotation, queue retry/drop, retention, metrics
    /// Gives the account named `name` a new SecretId and SecretKey (its AppId stays) and returns them; the
    /// SecretKey is stored sealed and never shown again.
    pub async fn rotate_account_key(&self, name: &str) -> Result<AccountCredentials, CoreError> {
        self.inner.accounts.rotate_account_key(name).await
    }

    /// The account's API keys, active and revoked, oldest first (never their secrets).
    pub async fn list_api_keys(&self, account: &AccountContext) -> Result<Vec<ApiKeyInfo>, CoreError> {
        self.inner.accounts.list_api_keys(account).await
    }

    /// Adds an API key to the account and returns it; the SecretKey is shown only now. Refused
    /// (`LimitExceeded`) when the account has [`MAX_ACTIVE_KEYS`] active keys already.
    pub async fn create_api_key(&self, account: &AccountContext) -> Result<AccountCredentials, CoreError> {
        self.inner.accounts.create_api_key(account).await
    }

    /// Revokes one of the account's active API keys: refused at once by this process, by others within the
    /// credential cache's 30 seconds. Refused when it is the account's last active key.
    pub async fn revoke_api_key(&self, account: &AccountContext, secret_id: &str) -> Result<(), CoreError> {
        self.inner.accounts.revoke_api_key(account, secret_id).await
    }

    /// The account named `name` (operator commands).
    pub async fn account_named(&self, name: &str) -> Result<AccountContext, CoreError> {
        self.inner.accounts.account_named(name).await
    }

    /// Makes the waiting deliveries of a receiving domain (`domain`) or of a message (`message`) due now and
    /// wakes this process's worker; other nodes' workers take them at their next claim. Returns how many.
    pub async fn retry_queued(&self, domain: Option<&str>, message: Option<&str>) -> Result<u64, CoreError> {
        self.inner.sending.retry_queued(domain, message).await
    }

    /// Gives up the waiting deliveries of a receiving domain or of a message: final, `Dropped`, with its event
    /// and statistics as any drop (one `record_outcomes`). Deliveries in progress on a worker are left to it.
    /// Returns how many were dropped.
    pub async fn drop_queued(&self, domain: Option<&str>, message: Option<&str>) -> Result<u64, CoreError> {
        self.inner.sending.drop_queued(domain, message).await
    }

    /// The cutoff of the retention period now: mail final before it is pruned; `None` when kept forever.
    pub fn retention_cutoff_ms(&self) -> Option<i64> {
        self.inner.retention.retention_cutoff_ms()
    }

    /// One retention pass: prunes everything final before [`Mailpush::retention_cutoff_ms`], then gives the
    /// SQLite file's free pages back. `stop` ends it early between two steps.
    pub async fn run_retention(&self, stop: Option<&watch::Receiver<bool>>) -> Result<RetentionPass, CoreError> {
        self.inner.retention.run_retention(stop).await
    }

    /// Starts TLS-RPT (RFC 8460) reporting: every `tls_rpt_check_secs` the TLS outcomes the worker counted are
    /// written to the database and each receiving domain publishing `_smtp._tls` TXT gets its report of every UTC
    /// day that ended. With `tls_rpt` off (or neither `mta_sts` nor `dane` on) the task does nothing.
    pub fn start_tls_reports(&self) -> Result<background::BackgroundTask, CoreError> {
        self.inner.tls_reports.start()
    }

    /// Starts the periodic retention pass (every `retention_check_secs`; with 0, or `retention_days` 0, the
    /// task only waits to be stopped). Several nodes may run it on one database: batches are transactions
    /// whose walk re-checks every row, so two passes at once only delete each row once.
    pub fn start_retention(&self) -> RetentionHandle {
        self.inner.retention.start_retention()
    }

    /// Starts the timer that refreshes the database gauges every `metrics_refresh_secs` (first at once).
    /// Every process serving `/metrics` runs one; with 0 they are never computed.
    pub fn start_metrics_refresher(&self) -> MetricsRefresherHandle {
        self.inner.telemetry.start_metrics_refresher()
    }

    /// Computes every database gauge once: queue depth and oldest due age, per-account quotas and bounce
    /// rates, domain and source-address warm-up, database health counters.
    pub async fn refresh_metrics(&self) -> Result<(), CoreError> {
        self.inner.telemetry.refresh_metrics().await
    }

    /// SQLite: rewrites the file in incremental auto-vacuum mode (run with mailpush stopped: it holds the write
    /// lock throughout and needs free disk for a copy) and answers its size before and after, in pages.
    /// PostgreSQL: `None` (autovacuum reclaims space).
    pub async fn vacuum_database(&self) -> Result<Option<(FilePages, FilePages)>, CoreError> {
        self.inner.retention.vacuum_database().await
    }
}
