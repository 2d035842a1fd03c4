//! Sending identities in the facade: domains (keys sealed at rest, DNS verification, the periodic
//! re-check), sender addresses with SMTP passwords, the send gate, and the DKIM signing stage of the worker.
//!
//! Send-gate codes: a sender address that was not created → `InvalidParameterValue.NoSuchSender`; a created
//! address whose domain is not (or no longer) verified, or a `HeaderFrom` outside that domain →
//! `FailedOperation.NotAuthenticatedSender` (the SDK's wording: "the sender is not authenticated and cannot
//! send"). Sender addresses may be created before their domain is verified, as with Tencent.

use crate::Env;
use crate::accounts::AccountContext;
use crate::background::{FirstPass, spawn_periodic};
use crate::cache::TtlCache;
use crate::error::CoreError;
use crate::secrets;
use aws_lc_rs::hmac;
use mailpush_identity::records::{self, CheckedRecord, PublishedKey, RecordConfig};
use mailpush_identity::{DkimOption, DnsChecker, KeyAlgorithm, SignPriority, SigningKey, SigningPool, keys, password};
use mailpush_model::{AccountId, identity::IdentityRow};
use mailpush_model::{EmailAddress, ErrorCode, Mailbox, MessageId};
use mailpush_store::{IdentityCheck, NewDkimKey, NewIdentity, NewSender, SenderRow, StoreError};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::OnceCell;

/// Sealing context of DKIM private keys.
pub const DKIM_KEY_CONTEXT: &str = "dkim-private-key";

/// `IdentityType` of every identity (Tencent: only domains).
pub const IDENTITY_TYPE: &str = "DOMAIN";

/// DKIMOption when the request has none: RSA-2048 (Tencent's 1024 default is too weak to be a default).
pub const DEFAULT_DKIM_OPTION: DkimOption = DkimOption::Rsa2048;

/// How long loaded signing keys are reused by the worker before they are read again.
const KEY_CACHE_TTL: Duration = Duration::from_secs(60);
/// Messages whose signature the worker remembers (their other domain groups reuse it).
const SIGNATURE_CACHE: usize = 4096;

/// Loaded signing keys per (account, domain), with when they were loaded.
type KeyCache = HashMap<(AccountId, String), (Instant, Arc<Vec<SigningKey>>)>;

/// How long the send gate trusts what it read about senders, domains and levels (see [`crate::cache`]).
const SEND_GATE_TTL: Duration = Duration::from_secs(1);
/// How long a successful SMTP login is remembered (the password itself is checked against it every time).
const LOGIN_CACHE_TTL: Duration = Duration::from_secs(600);

/// Per-process identity state kept in the facade.
pub(crate) struct IdentityState {
    dns: OnceLock<DnsChecker>,
    keys: Mutex<KeyCache>,
    /// The sending domain behind a return-path domain, by (account, return-path domain): which keys sign.
    return_paths: TtlCache<(AccountId, String), String>,
    /// Sender addresses known to exist, by (account, address). Only positive answers are kept, so a sender
    /// created elsewhere can send at once.
    senders: TtlCache<(AccountId, String), ()>,
    /// Domains known to be verified, by (account, lower-case domain), with their return-path domain; positive
    /// answers only, as above.
    verified_domains: TtlCache<(AccountId, String), String>,
    /// Whether mail of (account, envelope sender) requires TLS (see `crate::tls_required`).
    pub(crate) tls_required: TtlCache<(AccountId, String), bool>,
    /// Each account's verified domains with their reputation levels (the admission's level quota).
    pub(crate) domain_levels: TtlCache<AccountId, Arc<Vec<(String, i64)>>>,
    /// SMTP logins argon2 accepted recently: sender address → HMAC(`login_key`, stored hash, password). A
    /// client that opens a connection per mail would otherwise pay a ~20 ms, 19 MiB argon2 run per mail.
    /// The stored hash is part of the MAC, so a password change invalidates the entry everywhere.
    logins: TtlCache<String, hmac::Tag>,
    /// Random per process: the cached MACs are useless outside it.
    login_key: hmac::Key,
}

impl Default for IdentityState {
    fn default() -> Self {
        IdentityState {
            dns: OnceLock::new(),
            keys: Mutex::new(KeyCache::new()),
            return_paths: TtlCache::new(KEY_CACHE_TTL),
            senders: TtlCache::new(SEND_GATE_TTL),
            verified_domains: TtlCache::new(SEND_GATE_TTL),
            tls_required: TtlCache::new(SEND_GATE_TTL),
            domain_levels: TtlCache::new(SEND_GATE_TTL),
            logins: TtlCache::new(LOGIN_CACHE_TTL),
            login_key: hmac::Key::new(
                hmac::HMAC_SHA256,
                secrets::random_string(32, secrets::ALPHANUMERIC).as_bytes(),
            ),
        }
    }
}

/// A domain as the API shows it.
#[derive(Debug, Clone)]
pub struct IdentityView {
    /// The domain.
    pub domain: String,
    /// `DKIMOption`.
    pub dkim_option: i64,
    /// `VerifiedForSendingStatus` / `SendingEnabled`.
    pub verified: bool,
    /// The records to publish with what DNS held at the last check.
    pub records: Vec<CheckedRecord>,
    /// Why the domain may not send (`None` when it may).
    pub reason: Option<String>,
    /// Last DNS check, Unix ms (0 = never).
    pub checked_ms: i64,
    /// Unix ms.
    pub created_ms: i64,
    /// The return-path (custom MAIL FROM) domain: the envelope sender's domain, where SPF and the bounce MX live.
    pub mail_from_domain: String,
}

/// A sender address as the API shows it.
#[derive(Debug, Clone)]
pub struct SenderView {
    /// `EmailAddress`.
    pub address: String,
    /// `EmailSenderName`.
    pub sender_name: String,
    /// Unix ms.
    pub created_ms: i64,
    /// Whether an SMTP password is set (`SmtpPwdType` 1).
    pub has_smtp_password: bool,
}

fn refuse(code: ErrorCode, message: impl Into<String>) -> CoreError {
    CoreError::refused(code, message)
}

fn parse_domain(field: &str, raw: &str) -> Result<String, CoreError> {
    mailpush_identity::normalize_domain(raw)
        .map_err(|e| refuse(ErrorCode::InvalidParameterValue, format!("{field}: {e}")))
}

fn parse_option(raw: Option<i64>) -> Result<Option<DkimOption>, CoreError> {
    raw.map(|code| {
        DkimOption::from_code(code).ok_or_else(|| {
            refuse(
                ErrorCode::InvalidParameterValue,
                format!("DKIMOption {code} must be 0 (RSA-1024), 1 (RSA-2048), 2 (dual RSA), 3 (ed25519) or 4 (RSA-2048 + ed25519)"),
            )
        })
    })
    .transpose()
}

fn not_found(domain: &str) -> CoreError {
    refuse(
        ErrorCode::InvalidParameterValueNotExistDomain,
        format!("EmailIdentity {domain} has not been created by this account"),
    )
}

/// A short random token for selectors, lower-case so DNS tooling never trips on case.
fn selector_stem() -> String {
    secrets::random_string(6, b"abcdefghijklmnopqrstuvwxyz0123456789")
}

/// What a remembered SMTP login's MAC covers: the stored hash, then the password (NUL cannot occur in the first).
fn login_mac_input(stored_hash: &str, password: &str) -> Vec<u8> {
    [stored_hash.as_bytes(), b"\0", password.as_bytes()].concat()
}

/// Concurrent argon2 password verifications (SMTP AUTH): one per core.
static PASSWORD_VERIFICATIONS: std::sync::LazyLock<tokio::sync::Semaphore> = std::sync::LazyLock::new(|| {
    tokio::sync::Semaphore::new(std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get))
});

/// Sending domains, sender addresses, SMTP passwords, the send gate and DKIM keys.
pub struct Identities {
    pub(crate) env: Env,
    pub(crate) secrets: Arc<crate::secrets::Secrets>,
    pub(crate) state: IdentityState,
}

impl Identities {
    fn record_config(&self) -> RecordConfig {
        let s = &self.env.settings;
        RecordConfig {
            spf_include: s.spf_include.clone(),
            bounce_mx_host: if s.bounce_mx_host.trim().is_empty() {
                s.helo_name.clone()
            } else {
                s.bounce_mx_host.clone()
            },
        }
    }

    fn dns_checker(&self) -> Result<&DnsChecker, CoreError> {
        if let Some(d) = self.state.dns.get() {
            return Ok(d);
        }
        let d = DnsChecker::new(&self.env.settings.dns_servers, Duration::from_secs(5))
            .map_err(mailpush_identity::IdentityError::from)?;
        Ok(self.state.dns.get_or_init(|| d))
    }

    async fn generate_keys(&self, option: DkimOption) -> Result<Vec<NewDkimKey>, CoreError> {
        let prefix = self.env.settings.dkim_selector_prefix.clone();
        // RSA generation takes a noticeable fraction of a second: off the async threads.
        let pairs = tokio::task::spawn_blocking(move || keys::generate_for(option, &prefix, &selector_stem()))
            .await
            .map_err(|e| CoreError::Config(format!("key generation task: {e}")))??;
        pairs
            .into_iter()
            .map(|kp| {
                Ok(NewDkimKey {
                    selector: kp.selector.clone(),
                    algorithm: kp.algorithm.as_str().to_string(),
                    public_key: kp.public_key.clone(),
                    private_key_sealed: self.secrets.seal(DKIM_KEY_CONTEXT, &kp.private_der)?,
                })
            })
            .collect()
    }

    async fn published_keys(&self, row: &IdentityRow) -> Result<Vec<PublishedKey>, CoreError> {
        Ok(self
            .env
            .store
            .identities()
            .dkim_keys(row.account_id, row.id)
            .await?
            .into_iter()
            .filter_map(|k| {
                Some(PublishedKey {
                    algorithm: KeyAlgorithm::parse(&k.algorithm)?,
                    selector: k.selector,
                    public_key: k.public_key,
                })
            })
            .collect())
    }

    /// The view of a stored domain: its current records, with the last check's findings where they still apply.
    async fn view(&self, row: &IdentityRow) -> Result<IdentityView, CoreError> {
        let expected = records::expected_records(
            &row.domain,
            &mail_from_of(row),
            &self.published_keys(row).await?,
            &self.record_config(),
        );
        let last: Vec<CheckedRecord> = serde_json::from_str(&row.checks).unwrap_or_default();
        let records = expected
            .into_iter()
            .map(|spec| {
                last.iter()
                    .find(|c| c.spec == spec)
                    .cloned()
                    .unwrap_or_else(|| CheckedRecord {
                        spec,
                        current: String::new(),
                        pass: false,
                        reason: Some("not checked yet".into()),
                    })
            })
            .collect();
        Ok(IdentityView {
            domain: row.domain.clone(),
            dkim_option: row.dkim_option,
            verified: row.verified,
            records,
            reason: (!row.verified).then(|| row.reason.clone()),
            checked_ms: row.checked_ms,
            created_ms: row.created_ms,
            mail_from_domain: mail_from_of(row),
        })
    }

    /// Sets the return-path domain of `domain` (`None` = `bounce.<domain>`), then checks its records at once:
    /// the domain sends again as soon as SPF and MX pass at the new name.
    pub(crate) async fn set_mail_from_domain(
        &self,
        account: &AccountContext,
        domain: &str,
        mail_from: Option<&str>,
    ) -> Result<IdentityView, CoreError> {
        let domain = parse_domain("EmailIdentity", domain)?;
        let row = self.own_identity(account, &domain).await?;
        let stored = match mail_from.map(str::trim).filter(|m| !m.is_empty()) {
            None => String::new(),
            Some(raw) => {
                let m = parse_domain("MailFromDomain", raw)?;
                // A sub-domain of the identity (AWS SES's rule): its MX then never competes with the domain's
                // own mail server, and SPF on it aligns with the From domain under relaxed alignment.
                if !m.ends_with(&format!(".{domain}")) {
                    return Err(refuse(
                        ErrorCode::InvalidParameterValue,
                        format!("MailFromDomain {m} must be a sub-domain of {domain}, e.g. bounce.{domain}"),
                    ));
                }
                if m == records::default_mail_from(&domain) {
                    String::new()
                } else {
                    m
                }
            }
        };
        self.env
            .store
            .identities()
            .set_mail_from_domain(account.id, row.id, &stored)
            .await?;
        self.forget_send_gate();
        let row = self.own_identity(account, &domain).await?;
        let row = self.check_now(&row).await?;
        self.view(&row).await
    }

    /// Checks a domain's records in DNS now and records the outcome.
    async fn check_now(&self, row: &IdentityRow) -> Result<IdentityRow, CoreError> {
        let cfg = self.record_config();
        let specs = records::expected_records(&row.domain, &mail_from_of(row), &self.published_keys(row).await?, &cfg);
        let checked = records::check_records(self.dns_checker()?, &specs, &cfg).await;
        let verified = records::all_required_pass(&checked);
        let check = IdentityCheck {
            verified,
            checks: serde_json::to_string(&checked).unwrap_or_default(),
            reason: records::failure_reason(&checked).unwrap_or_default(),
            checked_ms: self.env.clock.now_ms(),
        };
        self.env
            .store
            .identities()
            .record_identity_check(row.account_id, row.id, &check)
            .await?;
        self.forget_send_gate();
        if row.verified && !verified {
            tracing::warn!(domain = %row.domain, reason = %check.reason, "a verified domain failed its DNS re-check: sending from it stops");
        }
        Ok(IdentityRow {
            verified,
            checks: check.checks,
            reason: check.reason,
            checked_ms: check.checked_ms,
            ..row.clone()
        })
    }

    async fn own_identity(&self, account: &AccountContext, domain: &str) -> Result<IdentityRow, CoreError> {
        self.env
            .store
            .identities()
            .identity(account.id, domain)
            .await?
            .ok_or_else(|| not_found(domain))
    }

    pub(crate) async fn create_identity(
        &self,
        account: &AccountContext,
        domain: &str,
        dkim_option: Option<i64>,
    ) -> Result<IdentityView, CoreError> {
        let domain = parse_domain("EmailIdentity", domain)?;
        let option = parse_option(dkim_option)?.unwrap_or(DEFAULT_DKIM_OPTION);
        match self.env.store.identities().identity_owner(&domain).await? {
            Some(owner) if owner == account.id => {
                return Err(refuse(
                    ErrorCode::InvalidParameterValueRepeatCreation,
                    format!("EmailIdentity {domain} has already been created"),
                ));
            }
            Some(_) => {
                return Err(refuse(
                    ErrorCode::InvalidParameterValueCreatedByOther,
                    format!("EmailIdentity {domain} belongs to another account"),
                ));
            }
            None => {}
        }
        let max = i64::from(self.env.settings.max_domains_per_account);
        let over_limit = || {
            refuse(
                ErrorCode::OperationDeniedExceedDomainLimit,
                format!("an account may have at most {max} sending domains"),
            )
        };
        // Checked here to spare key generation, and again atomically by the store.
        if self.env.store.identities().count_identities(account.id).await? >= max {
            return Err(over_limit());
        }
        let keys = self.generate_keys(option).await?;
        let row = match self
            .env
            .store
            .identities()
            .create_identity(NewIdentity {
                account_id: account.id,
                domain: domain.clone(),
                dkim_option: option.code(),
                created_ms: self.env.clock.now_ms(),
                keys,
                max_per_account: max,
            })
            .await
        {
            Ok(r) => r,
            // Created concurrently since the ownership check.
            Err(StoreError::Conflict(_)) => {
                return Err(refuse(
                    ErrorCode::InvalidParameterValueRepeatCreation,
                    format!("EmailIdentity {domain} has already been created"),
                ));
            }
            Err(StoreError::LimitReached(_)) => return Err(over_limit()),
            Err(e) => return Err(e.into()),
        };
        self.view(&row).await
    }

    pub(crate) async fn get_identity(&self, account: &AccountContext, domain: &str) -> Result<IdentityView, CoreError> {
        let domain = parse_domain("EmailIdentity", domain)?;
        let row = self.own_identity(account, &domain).await?;
        self.view(&row).await
    }

    pub(crate) async fn update_identity(
        &self,
        account: &AccountContext,
        domain: &str,
        dkim_option: Option<i64>,
    ) -> Result<IdentityView, CoreError> {
        let domain = parse_domain("EmailIdentity", domain)?;
        let option = parse_option(dkim_option)?;
        let mut row = self.own_identity(account, &domain).await?;
        if let Some(option) = option.filter(|o| o.code() != row.dkim_option) {
            let keys = self.generate_keys(option).await?;
            self.env
                .store
                .identities()
                .replace_dkim_keys(account.id, row.id, option.code(), keys, self.env.clock.now_ms())
                .await?;
            self.forget_keys(account.id, &domain);
            row = self.own_identity(account, &domain).await?;
        }
        let row = self.check_now(&row).await?;
        self.view(&row).await
    }

    pub(crate) async fn list_identities(
        &self,
        account: &AccountContext,
        offset: i64,
        limit: i64,
    ) -> Result<(Vec<IdentityView>, i64), CoreError> {
        if offset < 0 || limit < 0 {
            return Err(refuse(
                ErrorCode::InvalidParameterValue,
                "Offset and Limit must not be negative",
            ));
        }
        let rows = self
            .env
            .store
            .identities()
            .list_identities(account.id, offset, limit)
            .await?;
        let total = self.env.store.identities().count_identities(account.id).await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            out.push(self.view(r).await?);
        }
        Ok((out, total))
    }

    pub(crate) async fn delete_identity(&self, account: &AccountContext, domain: &str) -> Result<(), CoreError> {
        let domain = parse_domain("EmailIdentity", domain)?;
        let row = self.own_identity(account, &domain).await?;
        if self.env.store.identities().count_senders(account.id, row.id).await? > 0 {
            return Err(refuse(
                ErrorCode::OperationDeniedSenderWithDomainIsNotEmpty,
                format!("EmailIdentity {domain} still has sender addresses; delete them first"),
            ));
        }
        match self.env.store.identities().delete_identity(account.id, &domain).await {
            Ok(()) => {}
            Err(StoreError::NotFound) => return Err(not_found(&domain)),
            // A sender address created meanwhile: the foreign key refuses the delete.
            Err(StoreError::Invalid(_)) => {
                return Err(refuse(
                    ErrorCode::OperationDeniedSenderWithDomainIsNotEmpty,
                    format!("EmailIdentity {domain} still has sender addresses; delete them first"),
                ));
            }
            Err(e) => return Err(e.into()),
        }
        self.forget_keys(account.id, &domain);
        self.forget_send_gate();
        Ok(())
    }

    pub(crate) async fn create_sender(
        &self,
        account: &AccountContext,
        address: &str,
        sender_name: Option<&str>,
    ) -> Result<SenderView, CoreError> {
        let addr = EmailAddress::parse(address).map_err(|e| {
            refuse(
                ErrorCode::InvalidParameterValueIllegalEmailAddress,
                format!("EmailAddress {address:?}: {e}"),
            )
        })?;
        let name = sender_name.map(str::trim).unwrap_or_default().to_string();
        if !name.is_empty() {
            // The same rules as the alias of FromEmailAddress (no ':', no brackets or control characters).
            Mailbox::parse(&format!("{name} <{}>", addr.as_str())).map_err(|e| {
                refuse(
                    ErrorCode::InvalidParameterValueIllegalSenderName,
                    format!("EmailSenderName {name:?}: {e}"),
                )
            })?;
        }
        let row = self.own_identity(account, addr.domain()).await?;
        let max = i64::from(self.env.settings.max_senders_per_domain);
        let s = self
            .env
            .store
            .identities()
            .create_sender(NewSender {
                account_id: account.id,
                identity_id: row.id,
                address: addr.as_str().to_string(),
                sender_name: name,
                created_ms: self.env.clock.now_ms(),
                max_per_domain: max,
            })
            .await
            .map_err(|e| match e {
                StoreError::Conflict(_) => refuse(
                    ErrorCode::InvalidParameterValueRepeatEmailAddress,
                    format!("EmailAddress {} has already been created", addr.as_str()),
                ),
                StoreError::NotFound => not_found(addr.domain()),
                StoreError::LimitReached(_) => refuse(
                    ErrorCode::OperationDeniedExceedSenderLimit,
                    format!("a domain may have at most {max} sender addresses"),
                ),
                e => e.into(),
            })?;
        Ok(sender_view(&s))
    }

    pub(crate) async fn list_senders(&self, account: &AccountContext) -> Result<Vec<SenderView>, CoreError> {
        Ok(self
            .env
            .store
            .identities()
            .list_senders(account.id)
            .await?
            .iter()
            .map(sender_view)
            .collect())
    }

    pub(crate) fn parse_sender(address: &str) -> Result<EmailAddress, CoreError> {
        EmailAddress::parse(address).map_err(|e| {
            refuse(
                ErrorCode::InvalidParameterValueIllegalEmailAddress,
                format!("EmailAddress {address:?}: {e}"),
            )
        })
    }

    pub(crate) fn no_such_sender(address: &str) -> CoreError {
        refuse(
            ErrorCode::InvalidParameterValueNoSuchSender,
            format!("EmailAddress {address} has not been created by this account"),
        )
    }

    /// A store error about a sender address: `NotFound` is the API's NoSuchSender.
    fn sender_error(e: StoreError, address: &str) -> CoreError {
        match e {
            StoreError::NotFound => Self::no_such_sender(address),
            e => e.into(),
        }
    }

    pub(crate) async fn delete_sender(&self, account: &AccountContext, address: &str) -> Result<(), CoreError> {
        let addr = Self::parse_sender(address)?;
        let deleted = self
            .env
            .store
            .identities()
            .delete_sender(account.id, addr.as_str())
            .await;
        self.forget_send_gate();
        deleted.map_err(|e| Self::sender_error(e, addr.as_str()))
    }

    pub(crate) async fn update_smtp_password(
        &self,
        account: &AccountContext,
        address: &str,
        new_password: &str,
    ) -> Result<(), CoreError> {
        let addr = Self::parse_sender(address)?;
        if !password::acceptable(new_password) {
            return Err(refuse(
                ErrorCode::InvalidParameterValueInvalidSmtpPassWord,
                format!("Password: {}", password::POLICY),
            ));
        }
        let sender = self
            .env
            .store
            .identities()
            .sender(account.id, addr.as_str())
            .await?
            .ok_or_else(|| Self::no_such_sender(addr.as_str()))?;
        let pw = new_password.to_string();
        let old = sender.smtp_password_hash.clone();
        // argon2 is deliberately slow: off the async threads.
        let hash = tokio::task::spawn_blocking(move || {
            if let Some(old) = old
                && password::verify(&pw, &old).unwrap_or(false)
            {
                return Ok(None);
            }
            password::hash(&pw).map(Some)
        })
        .await
        .map_err(|e| CoreError::Config(format!("password hashing task: {e}")))??;
        let Some(hash) = hash else {
            return Err(refuse(
                ErrorCode::OperationDeniedRepeatPassWord,
                "Password must differ from the current SMTP password",
            ));
        };
        self.env
            .store
            .identities()
            .set_sender_password(account.id, addr.as_str(), &hash)
            .await
            .map_err(|e| Self::sender_error(e, addr.as_str()))
    }

    /// SMTP AUTH: the account and sender address behind (address, password), or `None` when they do not
    /// match (unknown address, no password set, wrong password: indistinguishable to the caller). The
    /// comparison is argon2's (constant-time).
    pub async fn verify_smtp_credentials(
        &self,
        address: &str,
        smtp_password: &str,
    ) -> Result<Option<(AccountContext, SenderView)>, CoreError> {
        let Ok(addr) = EmailAddress::parse(address) else {
            return Ok(None);
        };
        let Some(sender) = self.env.store.identities().sender_for_login(addr.as_str()).await? else {
            return Ok(None);
        };
        let Some(hash) = sender.smtp_password_hash.clone() else {
            return Ok(None);
        };
        if !self.login_remembered(addr.as_str(), &hash, smtp_password) {
            // argon2id takes ~19 MiB per verification: bounded to one per core, a burst of logins (20 SMTP
            // sessions connecting at once) costs ~40 MB instead of ~400 MB, and no throughput (it is CPU-bound).
            let _permit = PASSWORD_VERIFICATIONS
                .acquire()
                .await
                .map_err(|e| CoreError::Config(format!("password hashing permit: {e}")))?;
            // Sessions of one client log in together: the first verification usually answers the rest.
            if !self.login_remembered(addr.as_str(), &hash, smtp_password) {
                let (pw, stored) = (smtp_password.to_string(), hash.clone());
                let ok = tokio::task::spawn_blocking(move || password::verify(&pw, &stored))
                    .await
                    .map_err(|e| CoreError::Config(format!("password hashing task: {e}")))??;
                if !ok {
                    return Ok(None);
                }
                let id = &self.state;
                let tag = hmac::sign(&id.login_key, &login_mac_input(&hash, smtp_password));
                id.logins.put(addr.as_str().to_string(), tag);
            }
        }
        let Some(account) = self.env.store.accounts().account(sender.account_id).await? else {
            return Ok(None);
        };
        Ok(Some((AccountContext::from(&account), sender_view(&sender))))
    }

    /// Whether argon2 accepted this password for `address` (with this stored hash) within the cache's TTL.
    fn login_remembered(&self, address: &str, stored_hash: &str, password: &str) -> bool {
        let id = &self.state;
        id.logins.get(address).is_some_and(|tag| {
            hmac::verify(&id.login_key, &login_mac_input(stored_hash, password), tag.as_ref()).is_ok()
        })
    }

    /// The send gate: `sender` must be a created sender address of the account, its domain verified, and the
    /// header From (if it differs) in the same domain.
    pub(crate) async fn check_sender(
        &self,
        account: &AccountContext,
        sender: &EmailAddress,
        header_from: &EmailAddress,
    ) -> Result<String, CoreError> {
        let key = (account.id, sender.as_str().to_string());
        if self.state.senders.get(&key).is_none() {
            if self
                .env
                .store
                .identities()
                .sender(account.id, sender.as_str())
                .await?
                .is_none()
            {
                return Err(Self::no_such_sender(sender.as_str()));
            }
            self.state.senders.put(key, ());
        }
        let mail_from = self.check_sending_domain(account, sender).await?;
        if !header_from.domain().eq_ignore_ascii_case(sender.domain()) {
            return Err(refuse(
                ErrorCode::FailedOperationNotAuthenticatedSender,
                format!(
                    "HeaderFrom {} must be in the sender's verified domain {}",
                    header_from.as_str(),
                    sender.domain()
                ),
            ));
        }
        Ok(mail_from)
    }

    /// The domain gate alone: `address`'s domain must be a verified sending domain of the account. Returns its
    /// return-path domain, where the envelope sender of its mail lives.
    /// (SMTP submission checks envelope and header senders at domain level, as Postfix-style clients send
    /// from many local parts.)
    pub(crate) async fn check_sending_domain(
        &self,
        account: &AccountContext,
        sender: &EmailAddress,
    ) -> Result<String, CoreError> {
        let key = (account.id, sender.domain().to_ascii_lowercase());
        if let Some(mail_from) = self.state.verified_domains.get(&key) {
            return Ok(mail_from);
        }
        let identity = self
            .env
            .store
            .identities()
            .identity(account.id, sender.domain())
            .await?;
        match identity {
            Some(i) if i.verified => {
                let mail_from = mail_from_of(&i);
                self.state.verified_domains.put(key, mail_from.clone());
                Ok(mail_from)
            }
            Some(i) => Err(refuse(
                ErrorCode::FailedOperationNotAuthenticatedSender,
                format!(
                    "FromEmailAddress: the domain {} is not verified ({}); publish its records and call UpdateEmailIdentity",
                    i.domain, i.reason
                ),
            )),
            None => Err(refuse(
                ErrorCode::FailedOperationNotAuthenticatedSender,
                format!("{} is not a sending domain of this account", sender.domain()),
            )),
        }
    }

    pub(crate) async fn admin_check_domain(
        &self,
        domain: &str,
    ) -> Result<Option<(IdentityRow, Vec<CheckedRecord>)>, CoreError> {
        let domain = parse_domain("domain", domain)?;
        let Some(row) = self.env.store.identities().identity_for_admin(&domain).await? else {
            return Ok(None);
        };
        let cfg = self.record_config();
        let specs = records::expected_records(
            &row.domain,
            &mail_from_of(&row),
            &self.published_keys(&row).await?,
            &cfg,
        );
        let checked = records::check_records(self.dns_checker()?, &specs, &cfg).await;
        Ok(Some((row, checked)))
    }

    pub(crate) async fn recheck_due_identities(&self) -> Result<usize, CoreError> {
        let every = self.env.settings.identity_recheck_secs;
        if every == 0 {
            return Ok(0);
        }
        let before = self
            .env
            .clock
            .now_ms()
            .saturating_sub((every as i64).saturating_mul(1000));
        let mut done = 0;
        loop {
            let due = self.env.store.identities().identities_to_recheck(before, 100).await?;
            if due.is_empty() {
                return Ok(done);
            }
            for row in &due {
                let checked = self.check_now(row).await?;
                if !checked.verified {
                    self.forget_keys(row.account_id, &row.domain);
                }
                done += 1;
            }
        }
    }

    pub(crate) fn start_identity_rechecker(self: &Arc<Self>) -> RecheckHandle {
        let every = self.env.settings.identity_recheck_secs;
        // Wake at least once a minute so a short interval (tests) is honoured promptly.
        let tick = if every == 0 { 0 } else { every.clamp(1, 60) };
        spawn_periodic(self, tick, FirstPass::Now, |core, _| async move {
            if let Err(e) = core.recheck_due_identities().await {
                tracing::error!(error = %e, "re-checking sending domains failed");
            }
        })
    }

    /// Forgets what the send gate cached (after this process changed a sender, a domain or a level), so the
    /// next send reads the store.
    pub(crate) fn forget_send_gate(&self) {
        let id = &self.state;
        id.senders.clear();
        id.verified_domains.clear();
        id.domain_levels.clear();
        id.return_paths.clear();
    }

    fn forget_keys(&self, account: AccountId, domain: &str) {
        self.state
            .keys
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&(account, domain.to_string()));
    }

    pub(crate) async fn signing_keys(
        &self,
        account: AccountId,
        domain: &str,
    ) -> Result<Arc<Vec<SigningKey>>, CoreError> {
        let key = (account, domain.to_string());
        if let Some((at, keys)) = self.state.keys.lock().unwrap_or_else(PoisonError::into_inner).get(&key)
            && at.elapsed() < KEY_CACHE_TTL
        {
            return Ok(keys.clone());
        }
        let mut loaded = Vec::new();
        if let Some(row) = self.env.store.identities().identity(account, domain).await?
            && row.verified
        {
            for k in self.env.store.identities().dkim_keys(account, row.id).await? {
                let Some(alg) = KeyAlgorithm::parse(&k.algorithm) else {
                    tracing::warn!(domain, algorithm = %k.algorithm, "unknown DKIM key algorithm; key skipped");
                    continue;
                };
                let der = self.secrets.open(DKIM_KEY_CONTEXT, &k.private_key_sealed)?;
                loaded.push(SigningKey::from_der(domain, &k.selector, alg, &der)?);
            }
        }
        let loaded = Arc::new(loaded);
        self.state
            .keys
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key, (Instant::now(), loaded.clone()));
        Ok(loaded)
    }
}

/// The return-path (custom MAIL FROM) domain of an identity: its own, or `bounce.<domain>`.
pub(crate) fn mail_from_of(row: &IdentityRow) -> String {
    if row.mail_from_domain.is_empty() {
        records::default_mail_from(&row.domain)
    } else {
        row.mail_from_domain.clone()
    }
}

fn sender_view(s: &SenderRow) -> SenderView {
    SenderView {
        address: s.address.clone(),
        sender_name: s.sender_name.clone(),
        created_ms: s.created_ms,
        has_smtp_password: s.smtp_password_hash.is_some(),
    }
}

/// The running re-check task; `shutdown` stops it (a check in progress finishes first).
pub type RecheckHandle = crate::background::BackgroundTask;

type SignatureCell = Arc<OnceCell<Option<Arc<Vec<u8>>>>>;
/// Signature cells by message, and the insertion order for eviction.
type SignatureCache = (HashMap<MessageId, SignatureCell>, VecDeque<MessageId>);

/// The worker's DKIM stage: signs each message once (its domain groups share the signature) with its
/// sender domain's keys.
#[derive(Clone)]
pub struct MessageSigner {
    identities: Arc<Identities>,
    cache: Arc<Mutex<SignatureCache>>,
    /// Where RSA signatures are computed (see `mailpush_identity::pool`).
    pool: Arc<SigningPool>,
}

impl MessageSigner {
    pub(crate) fn new(identities: Arc<Identities>, pool: SigningPool) -> MessageSigner {
        MessageSigner {
            identities,
            cache: Arc::default(),
            pool: Arc::new(pool),
        }
    }

    fn cell(&self, id: &MessageId) -> SignatureCell {
        let mut guard = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        let (map, order) = &mut *guard;
        if let Some(c) = map.get(id) {
            return c.clone();
        }
        let c = SignatureCell::default();
        map.insert(id.clone(), c.clone());
        order.push_back(id.clone());
        while order.len() > SIGNATURE_CACHE {
            if let Some(old) = order.pop_front() {
                map.remove(&old);
            }
        }
        c
    }

    /// The sending domain of mail whose envelope sender is at `envelope_domain`: the account's identity whose
    /// return-path domain it is (its parent `shop.example.com` for `bounce.shop.example.com`; itself for domains
    /// with the return path at the apex). Its keys sign, so `d=` aligns with the From domain.
    async fn sending_domain(&self, account: AccountId, envelope_domain: &str) -> Result<String, CoreError> {
        let key = (account, envelope_domain.to_string());
        if let Some(d) = self.identities.state.return_paths.get(&key) {
            return Ok(d);
        }
        let mut candidate = envelope_domain;
        let found = loop {
            if let Some(row) = self
                .identities
                .env
                .store
                .identities()
                .identity(account, candidate)
                .await?
                && mail_from_of(&row).eq_ignore_ascii_case(envelope_domain)
            {
                break row.domain;
            }
            match candidate.split_once('.') {
                Some((_, parent)) if parent.contains('.') => candidate = parent,
                _ => break envelope_domain.to_string(),
            }
        };
        self.identities.state.return_paths.put(key, found.clone());
        Ok(found)
    }

    /// `body` (the whole message) in the form every DKIM verifier hashes alike (`normalize_message`: CRLF line
    /// ends, no whitespace on blank lines at the end of the body; unchanged for nearly every mail) with its
    /// DKIM-Signature headers to send before it (none when the domain has no usable key): what to deliver.
    /// Concurrent calls for one message wait for a single signing, on the signing pool (`priority` orders its
    /// queue; ed25519 is signed on the calling thread).
    pub async fn sign<'b>(
        &self,
        id: &MessageId,
        account: AccountId,
        envelope_from: &str,
        body: &'b [u8],
        priority: SignPriority,
    ) -> SignedMessage<'b> {
        // Signed and delivered alike: what the signature covers is exactly what is sent.
        let normalized = mailpush_identity::normalize_message(body);
        let body = &*normalized;
        let cell = self.cell(id);
        let headers = cell
            .get_or_init(|| async {
                let envelope_domain = envelope_from.rsplit_once('@').map(|(_, d)| d.to_ascii_lowercase())?;
                let domain = match self.sending_domain(account, &envelope_domain).await {
                    Ok(d) => d,
                    Err(e) => {
                        tracing::error!(error = %e, domain = %envelope_domain, "finding the sending domain failed; sending unsigned");
                        return None;
                    }
                };
                let keys = match self.identities.signing_keys(account, &domain).await {
                    Ok(k) => k,
                    Err(e) => {
                        tracing::error!(error = %e, %domain, "loading DKIM keys failed; sending unsigned");
                        return None;
                    }
                };
                if keys.is_empty() {
                    tracing::warn!(%domain, message = %id, "no DKIM key for the sender domain; sending unsigned");
                    return None;
                }
                match self.pool.sign(body, keys, priority).await {
                    Ok(h) => Some(Arc::new(h)),
                    Err(e) => {
                        tracing::error!(error = %e, %domain, "DKIM signing failed; sending unsigned");
                        None
                    }
                }
            })
            .await
            .clone();
        SignedMessage {
            headers,
            body: normalized,
        }
    }
}

/// A message as [`MessageSigner::sign`] leaves it: its DKIM-Signature header fields, then the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedMessage<'b> {
    /// The DKIM-Signature fields, each ending in CRLF (`None`: unsigned).
    pub headers: Option<Arc<Vec<u8>>>,
    /// The message they sign, normalised (borrowed when it needed no change).
    pub body: std::borrow::Cow<'b, [u8]>,
}

impl SignedMessage<'_> {
    /// What the transport sends: the fields, then the message, without joining them.
    pub fn outgoing(&self) -> mailpush_delivery::OutgoingMessage<'_> {
        mailpush_delivery::OutgoingMessage {
            head: self.headers.as_deref().map_or(&[][..], |h| h.as_slice()),
            body: &self.body,
        }
    }
}
