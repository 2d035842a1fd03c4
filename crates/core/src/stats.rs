//! Statistics and the rest of the feedback loop: `GetStatisticsReport` (from the store's daily rollup),
//! `GetAbuseReport` (complaint events), the `*AddressUnsubscribeConfig` actions (a sender address's default
//! `Unsubscribe` option, applied by SendEmail, BatchSendEmail and SMTP when the request gives none) and the
//! bounce-rate monitor (warning + metrics).

use crate::Env;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use crate::background::{BackgroundTask, FirstPass, spawn_periodic};
use mailpush_model::AccountId;
use mailpush_model::clock::{DAY_MS, date_of_day, day_range};
use mailpush_model::{EmailAddress, ErrorCode};
use mailpush_model::{account::UnsubscribeConfigRow, reputation::WarningRow, stats::StatCounters};
use mailpush_store::{NewWarning, StatsQuery, StoreError, day_of};

use crate::cache::TtlCache;
use crate::{AccountContext, CoreError};

/// Longest period one statistics or abuse report may span, days (Tencent keeps 90 days of records).
pub const MAX_REPORT_DAYS: i64 = 90;
/// Warning kind of the bounce-rate monitor.
pub const BOUNCE_RATE_WARNING: &str = "bounce_rate";
/// How long a sender address's unsubscribe default is cached in a process (writes here clear it at once).
const UNSUBSCRIBE_DEFAULT_TTL: Duration = Duration::from_secs(30);

/// Process state of the feedback features (in `Mailpush`).
pub(crate) struct FeedbackState {
    /// (account, sender address) → Unsubscribe code.
    unsubscribe_defaults: TtlCache<(AccountId, String), u8>,
    /// Bounce-rate warnings raised by this process.
    warnings_raised: AtomicU64,
    /// Last evaluation per account name: (bounce rate %, warning in force).
    last_rates: Mutex<BTreeMap<String, (f64, bool)>>,
}

impl FeedbackState {
    /// The warnings raised by this process and the last evaluated rate per account (for `/metrics`).
    pub(crate) fn bounce_rates(&self) -> (u64, BTreeMap<String, (f64, bool)>) {
        let rates = self.last_rates.lock().unwrap_or_else(PoisonError::into_inner).clone();
        (self.warnings_raised.load(Ordering::Relaxed), rates)
    }
}

impl Default for FeedbackState {
    fn default() -> Self {
        FeedbackState {
            unsubscribe_defaults: TtlCache::new(UNSUBSCRIBE_DEFAULT_TTL),
            warnings_raised: AtomicU64::new(0),
            last_rates: Mutex::new(BTreeMap::new()),
        }
    }
}

/// A `GetStatisticsReport` request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatisticsRequest {
    /// `StartDate`, `YYYY-MM-DD` (UTC), inclusive.
    pub start_date: String,
    /// `EndDate`, `YYYY-MM-DD` (UTC), inclusive.
    pub end_date: String,
    /// `Domain`: only mail sent from this domain.
    pub domain: Option<String>,
    /// `ReceivingMailboxType`: only mail to this recipient domain, e.g. `gmail.com`.
    pub receiving_mailbox_type: Option<String>,
}

/// A `GetStatisticsReport` answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatisticsReport {
    /// One entry per day of the period, in order (days without mail count zero).
    pub daily: Vec<(String, StatCounters)>,
    /// The whole period.
    pub overall: StatCounters,
}

/// The bounce rate of an account over the reputation window.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct BounceRate {
    /// Delivered mail in the window.
    pub delivered: i64,
    /// Bounced mail in the window.
    pub bounced: i64,
    /// `bounced / (delivered + bounced)`, percent (0 without mail).
    pub percent: f64,
}

fn refuse(code: ErrorCode, message: impl Into<String>) -> CoreError {
    CoreError::refused(code, message)
}

/// Parses an inclusive `StartDate`..`EndDate` pair into the half-open ms range and the day numbers.
fn date_range(start: &str, end: &str) -> Result<(i64, i64), CoreError> {
    let bad = |field: &str, raw: &str| {
        refuse(
            ErrorCode::InvalidParameterValueWrongDate,
            format!("{field} {raw:?} must be a date like 2026-11-26"),
        )
    };
    let (from_ms, _) = day_range(start).ok_or_else(|| bad("StartDate", start))?;
    let (_, to_ms) = day_range(end).ok_or_else(|| bad("EndDate", end))?;
    if to_ms <= from_ms {
        return Err(refuse(
            ErrorCode::InvalidParameterValueWrongDate,
            format!("EndDate {end} is before StartDate {start}"),
        ));
    }
    if (to_ms - from_ms) / DAY_MS > MAX_REPORT_DAYS {
        return Err(refuse(
            ErrorCode::FailedOperationNotSupportDate,
            format!("a report spans at most {MAX_REPORT_DAYS} days"),
        ));
    }
    Ok((from_ms, to_ms))
}

fn filter_domain(raw: Option<&str>) -> Option<String> {
    raw.map(|d| {
        d.trim()
            .trim_start_matches('@')
            .trim_end_matches('.')
            .to_ascii_lowercase()
    })
    .filter(|d| !d.is_empty())
}

/// `UnsubscribeConfig` ("0"–"12", SendEmail's `Unsubscribe` codes) → the code.
fn parse_unsubscribe_code(raw: &str) -> Result<u8, CoreError> {
    raw.trim().parse::<u8>().ok().filter(|c| *c <= 12).ok_or_else(|| {
        refuse(
            ErrorCode::InvalidParameterValue,
            format!("UnsubscribeConfig {raw:?} must be \"0\" (no link) or \"1\"-\"12\" (footer language)"),
        )
    })
}

/// Whether the header section of `raw` has a `List-Unsubscribe` field.
pub(crate) fn has_list_unsubscribe(raw: &[u8]) -> bool {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(raw.len());
    raw[..end]
        .split(|b| *b == b'\n')
        .any(|line| line.len() >= 17 && line[..17].eq_ignore_ascii_case(b"list-unsubscribe:"))
}

/// The `Address` of an unsubscribe config request, parsed (not yet checked against the account's senders).
fn parse_config_address(raw: &str) -> Result<EmailAddress, CoreError> {
    EmailAddress::parse(raw.trim()).map_err(|e| {
        refuse(
            ErrorCode::InvalidParameterValueIllegalEmailAddress,
            format!("Address {raw:?}: {e}"),
        )
    })
}

fn parse_status(status: Option<i64>) -> Result<i32, CoreError> {
    match status {
        None | Some(1) => Ok(1),
        Some(0) => Ok(0),
        Some(other) => Err(refuse(
            ErrorCode::InvalidParameterValue,
            format!("Status {other} must be 0 (off) or 1 (on)"),
        )),
    }
}

/// Statistics, abuse reports, unsubscribe defaults and the bounce-rate monitor.
pub struct Statistics {
    pub(crate) env: Env,
    pub(crate) feedback: FeedbackState,
    pub(crate) engagement: Arc<crate::engage::Engagement>,
}

impl Statistics {
    pub(crate) async fn statistics_report(
        &self,
        account: &AccountContext,
        req: &StatisticsRequest,
    ) -> Result<StatisticsReport, CoreError> {
        let (from_ms, to_ms) = date_range(&req.start_date, &req.end_date)?;
        let (from_day, to_day) = (day_of(from_ms), day_of(to_ms - 1));
        let rows = self
            .env
            .store
            .stats()
            .daily_stats(&StatsQuery {
                account_id: account.id,
                from_day,
                to_day,
                send_domain: filter_domain(req.domain.as_deref()),
                recv_domain: filter_domain(req.receiving_mailbox_type.as_deref()),
            })
            .await?;
        let by_day: HashMap<i64, StatCounters> = rows.into_iter().map(|r| (r.day, r.counters)).collect();
        let mut report = StatisticsReport::default();
        for day in from_day..=to_day {
            let c = by_day.get(&day).copied().unwrap_or_default();
            report.overall.add(&c);
            report.daily.push((date_of_day(day), c));
        }
        Ok(report)
    }

    /// The sender address of an unsubscribe config: valid, and a created sender of the account.
    async fn config_address(&self, account: &AccountContext, raw: &str) -> Result<String, CoreError> {
        let address = parse_config_address(raw)?;
        if self
            .env
            .store
            .identities()
            .sender(account.id, address.as_str())
            .await?
            .is_none()
        {
            return Err(refuse(
                ErrorCode::InvalidParameterValueNoSuchSender,
                format!("{address} is not a sender address of this account; create it with CreateEmailAddress"),
            ));
        }
        Ok(address.as_str().to_ascii_lowercase())
    }

    fn check_unsubscribe_possible(&self, code: u8, status: i32) -> Result<(), CoreError> {
        if code != 0 && status == 1 && self.env.settings.public_base_url.trim().is_empty() {
            return Err(refuse(
                ErrorCode::InvalidParameterValue,
                "unsubscribe links need the public_base_url setting; use UnsubscribeConfig \"0\"",
            ));
        }
        Ok(())
    }

    fn forget_unsubscribe_default(&self, account: AccountId, address: &str) {
        self.feedback
            .unsubscribe_defaults
            .remove(&(account, address.to_string()));
    }

    /// Answers a change of `address`'s config, the store's `result`, after forgetting its cached default: a
    /// config that is not there is refused ("… has no unsubscribe config", then `hint`).
    fn config_changed(
        &self,
        account: &AccountContext,
        address: &str,
        result: Result<(), StoreError>,
        hint: &str,
    ) -> Result<(), CoreError> {
        self.forget_unsubscribe_default(account.id, address);
        match result {
            Err(StoreError::NotFound) => Err(refuse(
                ErrorCode::InvalidParameterValue,
                format!("{address} has no unsubscribe config{hint}"),
            )),
            other => Ok(other?),
        }
    }

    /// The sender address, footer code and status of a Create/UpdateAddressUnsubscribeConfig request, checked.
    async fn checked_config(
        &self,
        account: &AccountContext,
        address: &str,
        unsubscribe_config: &str,
        status: Option<i64>,
    ) -> Result<(String, u8, i32), CoreError> {
        let address = self.config_address(account, address).await?;
        let code = parse_unsubscribe_code(unsubscribe_config)?;
        let status = parse_status(status)?;
        self.check_unsubscribe_possible(code, status)?;
        Ok((address, code, status))
    }

    /// `CreateAddressUnsubscribeConfig`: the default `Unsubscribe` option of one sender address.
    pub(crate) async fn create_unsubscribe_config(
        &self,
        account: &AccountContext,
        address: &str,
        unsubscribe_config: &str,
        status: Option<i64>,
    ) -> Result<(), CoreError> {
        let (address, code, status) = self
            .checked_config(account, address, unsubscribe_config, status)
            .await?;
        let row = UnsubscribeConfigRow {
            address: address.clone(),
            unsubscribe_config: code.to_string(),
            status,
            created_ms: self.env.clock.now_ms(),
        };
        match self
            .env
            .store
            .unsubscribe_configs()
            .create_unsubscribe_config(account.id, &row)
            .await
        {
            Err(StoreError::Conflict(_)) => Err(refuse(
                ErrorCode::InvalidParameterValueRepeatCreation,
                format!("{address} already has an unsubscribe config; use UpdateAddressUnsubscribeConfig"),
            )),
            other => {
                self.forget_unsubscribe_default(account.id, &address);
                Ok(other?)
            }
        }
    }

    /// `UpdateAddressUnsubscribeConfig`.
    pub(crate) async fn update_unsubscribe_config(
        &self,
        account: &AccountContext,
        address: &str,
        unsubscribe_config: &str,
        status: Option<i64>,
    ) -> Result<(), CoreError> {
        let (address, code, status) = self
            .checked_config(account, address, unsubscribe_config, status)
            .await?;
        let result = self
            .env
            .store
            .unsubscribe_configs()
            .update_unsubscribe_config(account.id, &address, &code.to_string(), status)
            .await;
        self.config_changed(
            account,
            &address,
            result,
            "; create it with CreateAddressUnsubscribeConfig",
        )
    }

    pub(crate) async fn delete_unsubscribe_config(
        &self,
        account: &AccountContext,
        address: &str,
    ) -> Result<(), CoreError> {
        let address = parse_config_address(address)?.as_str().to_ascii_lowercase();
        let result = self
            .env
            .store
            .unsubscribe_configs()
            .delete_unsubscribe_config(account.id, &address)
            .await;
        self.config_changed(account, &address, result, "")
    }

    pub(crate) async fn list_unsubscribe_configs(
        &self,
        account: &AccountContext,
        offset: i64,
        limit: i64,
    ) -> Result<(Vec<UnsubscribeConfigRow>, i64), CoreError> {
        crate::error::check_page(offset, limit, 100)?;
        Ok(self
            .env
            .store
            .unsubscribe_configs()
            .list_unsubscribe_configs(account.id, offset, limit)
            .await?)
    }

    /// The `Unsubscribe` code to use for mail from `sender` when the request gives none: the address's config
    /// in force, else 0. Cached per process for [`UNSUBSCRIBE_DEFAULT_TTL`]. A config whose links cannot be
    /// built (no `public_base_url`) is ignored rather than refusing mail.
    pub(crate) async fn default_unsubscribe(&self, account: AccountId, sender: &EmailAddress) -> Result<u8, CoreError> {
        let key = (account, sender.as_str().to_ascii_lowercase());
        if let Some(code) = self.feedback.unsubscribe_defaults.get(&key) {
            return Ok(code);
        }
        let code = match self
            .env
            .store
            .unsubscribe_configs()
            .unsubscribe_config(account, &key.1)
            .await?
        {
            Some(c) if c.status == 1 => c.unsubscribe_config.trim().parse::<u8>().unwrap_or(0),
            _ => 0,
        };
        let code = if self.env.settings.public_base_url.trim().is_empty() {
            0
        } else {
            code
        };
        self.feedback.unsubscribe_defaults.put(key, code);
        Ok(code)
    }

    /// Per-recipient bodies of an SMTP submission whose sender address has an unsubscribe default: the raw MIME
    /// with `List-Unsubscribe` (https + mailto) and `List-Unsubscribe-Post` prepended (covered by the worker's
    /// DKIM signature). No footer: mailpush does not rewrite a submitted MIME body. Empty when the code is 0,
    /// there is no `public_base_url`, or the message already has its own `List-Unsubscribe`.
    pub(crate) fn raw_unsubscribe_bodies(
        &self,
        account: AccountId,
        message_id: &mailpush_model::MessageId,
        raw: &[u8],
        sender_domain: &str,
        code: u8,
        recipients: &[mailpush_model::queue::NewRecipient],
    ) -> Vec<(String, Vec<u8>)> {
        let base = self.env.settings.public_base_url.trim().trim_end_matches('/');
        if code == 0 || base.is_empty() || has_list_unsubscribe(raw) {
            return Vec::new();
        }
        let mailto_host = if self.env.settings.bounce_mx_host.trim().is_empty() {
            self.env.settings.helo_name.clone()
        } else {
            self.env.settings.bounce_mx_host.trim().to_string()
        };
        let key = self.engagement.token_key();
        recipients
            .iter()
            .filter(|r| r.send_status.is_ok())
            .map(|r| {
                let token = key.encode(&mailpush_tracking::Token {
                    kind: mailpush_tracking::TokenKind::Unsubscribe(sender_domain.to_string()),
                    account_id: account,
                    message_id: message_id.as_str().to_string(),
                    recipient: r.address.clone(),
                });
                let mut body = format!(
                    "List-Unsubscribe: <{base}/u/{token}>, <mailto:unsubscribe@{mailto_host}?subject=unsubscribe>\r\n\
                     List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
                )
                .into_bytes();
                body.extend_from_slice(raw);
                (r.address.clone(), body)
            })
            .collect()
    }

    pub(crate) async fn bounce_rate(&self, account: AccountId) -> Result<BounceRate, CoreError> {
        let now = self.env.clock.now_ms();
        let window = (self.env.settings.reputation_window_secs as i64).saturating_mul(1000);
        let rows = self
            .env
            .store
            .stats()
            .daily_stats(&StatsQuery {
                account_id: account,
                from_day: day_of(now.saturating_sub(window)),
                to_day: day_of(now),
                send_domain: None,
                recv_domain: None,
            })
            .await?;
        let mut r = BounceRate::default();
        for d in rows {
            r.delivered += d.counters.delivered;
            r.bounced += d.counters.bounced;
        }
        let total = r.delivered + r.bounced;
        if total > 0 {
            r.percent = r.bounced as f64 * 100.0 / total as f64;
        }
        Ok(r)
    }

    pub(crate) async fn check_bounce_rates(&self) -> Result<usize, CoreError> {
        let s = &self.env.settings;
        let mut raised = 0;
        for account in self.env.store.accounts().list_accounts().await? {
            let rate = self.bounce_rate(account.id).await?;
            let enough = (rate.delivered + rate.bounced) as u64 >= s.reputation_min_sends.max(1);
            let over = enough && rate.percent > s.bounce_warn_percent;
            let now = self.env.clock.now_ms();
            if over {
                let new = self
                    .env
                    .store
                    .reputation_warnings()
                    .raise_warning(&NewWarning {
                        account_id: account.id,
                        kind: BOUNCE_RATE_WARNING.to_string(),
                        at_ms: now,
                        rate: rate.percent,
                        threshold: s.bounce_warn_percent,
                        delivered: rate.delivered,
                        bounced: rate.bounced,
                    })
                    .await?;
                if new {
                    raised += 1;
                    self.feedback.warnings_raised.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(
                        account = %account.name, bounce_rate = rate.percent, threshold = s.bounce_warn_percent,
                        delivered = rate.delivered, bounced = rate.bounced,
                        "bounce rate above the warning threshold"
                    );
                }
            } else if self
                .env
                .store
                .reputation_warnings()
                .clear_warning(account.id, BOUNCE_RATE_WARNING, now)
                .await?
            {
                tracing::info!(account = %account.name, bounce_rate = rate.percent, "bounce-rate warning cleared");
            }
            self.feedback
                .last_rates
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(account.name.clone(), (rate.percent, over));
        }
        Ok(raised)
    }

    /// Starts the bounce-rate monitor (every `bounce_check_secs`; started with the callback dispatcher).
    pub(crate) fn start_bounce_monitor(self: &Arc<Self>) -> BackgroundTask {
        spawn_periodic(
            self,
            self.env.settings.bounce_check_secs,
            FirstPass::Now,
            |core, _| async move {
                if let Err(e) = core.check_bounce_rates().await {
                    tracing::error!(error = %e, "bounce-rate check failed");
                }
            },
        )
    }

    pub(crate) async fn reputation_warnings(&self, account: &AccountContext) -> Result<Vec<WarningRow>, CoreError> {
        Ok(self.env.store.reputation_warnings().warnings(account.id, 100).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_ranges_are_checked() {
        let code = |r: Result<(i64, i64), CoreError>| r.err().map(|e| e.to_api().code);
        assert!(date_range("2026-11-01", "2026-11-01").is_ok());
        assert_eq!(
            code(date_range("2026-11-1x", "2026-11-01")),
            Some(ErrorCode::InvalidParameterValueWrongDate)
        );
        assert_eq!(
            code(date_range("2026-11-02", "2026-11-01")),
            Some(ErrorCode::InvalidParameterValueWrongDate)
        );
        assert_eq!(
            code(date_range("2026-01-01", "2026-11-01")),
            Some(ErrorCode::FailedOperationNotSupportDate)
        );
        let (a, b) = date_range("2026-11-01", "2026-11-03").unwrap();
        assert_eq!((b - a) / DAY_MS, 3);
    }

    #[test]
    fn unsubscribe_codes_and_domains() {
        assert_eq!(parse_unsubscribe_code(" 2 ").ok(), Some(2));
        assert!(parse_unsubscribe_code("13").is_err());
        assert!(parse_unsubscribe_code("en").is_err());
        assert_eq!(parse_status(None).ok(), Some(1));
        assert!(parse_status(Some(2)).is_err());
        assert_eq!(filter_domain(Some(" @Gmail.COM ")), Some("gmail.com".to_string()));
        assert_eq!(filter_domain(Some("")), None);
        assert!(has_list_unsubscribe(b"From: a@b\r\nlist-UNSUBSCRIBE: <x>\r\n\r\nbody"));
        assert!(!has_list_unsubscribe(b"From: a@b\r\n\r\nList-Unsubscribe: in the body"));
    }
}
