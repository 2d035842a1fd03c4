//! Suppression and auto-suspend: the admission check against the global bounce blacklist and the account's custom
//! blacklist, the blacklist actions, and the account's automatic suspension when too many of its recipients are
//! blacklisted.
//!
//! Admission makes ONE store round trip per request (all recipients, blacklists and unsubscribes at once). When every recipient is blocked the
//! request fails with `FailedOperation.EmailAddrInBlacklist`; otherwise the blocked ones are recorded with
//! SendStatus 1007 (final, never queued, with a `dropped` event).

use crate::Env;
use std::collections::HashSet;
use std::sync::Arc;

use mailpush_model::clock::DAY_MS;
use mailpush_model::{EmailAddress, ErrorCode, SendStatus};
use mailpush_model::{
    queue::NewRecipient,
    suppression::{BounceBlacklistEntry, CustomBlacklistEntry},
};
use mailpush_store::{BounceBlacklistQuery, CustomStatusFilter, RecipientScreenQuery, normalize_blacklist_address};

use crate::{AccountContext, CoreError};

/// Most addresses one blacklist request may carry.
pub const MAX_BLACKLIST_ADDRESSES: usize = 100;
/// Longest address accepted into a custom blacklist (`TooLongCount` beyond it).
pub const MAX_ADDRESS_LEN: usize = 254;

/// `CreateCustomBlacklist`'s counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CustomBlacklistCreated {
    /// Addresses in the request.
    pub total: u64,
    /// Newly listed.
    pub valid: u64,
    /// Longer than `MAX_ADDRESS_LEN`.
    pub too_long: u64,
    /// Already listed, or repeated in the request.
    pub repeat: u64,
    /// Not an email address.
    pub invalid: u64,
}

fn bad_date(field: &str, raw: &str) -> CoreError {
    CoreError::refused(
        ErrorCode::InvalidParameterValueWrongDate,
        format!("{field} {raw:?} must be a date like 2026-11-26"),
    )
}

/// `ExpireDate` (`YYYY-MM-DD`, empty = never) → the end of that UTC day, Unix ms.
fn expire_ms(raw: Option<&str>) -> Result<Option<i64>, CoreError> {
    match raw.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(d) => mailpush_model::clock::day_range(d)
            .map(|(_, end)| Some(end))
            .ok_or_else(|| bad_date("ExpireDate", d)),
    }
}

/// Refuses a list of addresses that is empty or longer than [`MAX_BLACKLIST_ADDRESSES`].
fn check_address_count(field: &str, raw: &[String]) -> Result<(), CoreError> {
    if raw.is_empty() || raw.len() > MAX_BLACKLIST_ADDRESSES {
        return Err(CoreError::refused(
            ErrorCode::InvalidParameterValue,
            format!("{field} must hold 1 to {MAX_BLACKLIST_ADDRESSES} addresses"),
        ));
    }
    Ok(())
}

fn parse_addresses(field: &str, raw: &[String]) -> Result<Vec<String>, CoreError> {
    check_address_count(field, raw)?;
    raw.iter()
        .map(|a| {
            EmailAddress::parse(a.trim())
                .map(|e| normalize_blacklist_address(e.as_str()))
                .map_err(|e| {
                    CoreError::refused(
                        ErrorCode::InvalidParameterValueIllegalEmailAddress,
                        format!("{field}: {a:?}: {e}"),
                    )
                })
        })
        .collect()
}

/// A listing's optional address filter: blank is none, any other is matched as a blacklist key.
fn address_filter(email: Option<&str>) -> Option<String> {
    email
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(normalize_blacklist_address)
}

/// The filters of a `ListBlackEmailAddress` request, as the API gives them.
pub(crate) struct BounceBlacklistFilter<'a> {
    /// `StartDate`, a UTC day.
    pub(crate) start_date: &'a str,
    /// `EndDate`, a UTC day (inclusive).
    pub(crate) end_date: &'a str,
    /// `EmailAddress` (blank: any).
    pub(crate) email: Option<&'a str>,
}

/// The filters of a `ListCustomBlacklist` request, as the API gives them.
pub(crate) struct CustomBlacklistFilter<'a> {
    /// `Status`: 0 expired, 1 in force, 2 (or absent) all.
    pub(crate) status: Option<i64>,
    /// `Email` (blank: any).
    pub(crate) email: Option<&'a str>,
}

/// The new values of one custom blacklist row (`UpdateCustomBlackList`), as the API gives them.
pub(crate) struct CustomBlacklistEdit<'a> {
    /// `Email`.
    pub(crate) email: &'a str,
    /// `ExpireDate` (empty: forever).
    pub(crate) expire_date: Option<&'a str>,
}

/// Blacklists, the admission screen of recipients and account suspension.
pub struct Suppression {
    pub(crate) env: Env,
    pub(crate) accounts: Arc<crate::accounts::Accounts>,
    pub(crate) engagement: Arc<crate::engage::Engagement>,
}

impl Suppression {
    fn suppression_store(&self) -> mailpush_store::Suppression<'_> {
        self.env.store.suppression()
    }

    /// The admission screen, called once per request by `send_email`, `submit_raw` and the batch runner, in
    /// one store round trip:
    /// - blacklists: blocked recipients get SendStatus 1007; when every recipient is blocked the request is
    ///   refused (`FailedOperation.EmailAddrInBlacklist`);
    /// - unsubscribes from the sending domain: those recipients get SendStatus 1013; when that is every
    ///   recipient the request is refused (`FailedOperation.ReceiverHasUnsubscribed`).
    pub(crate) async fn screen_recipients(
        &self,
        account: &AccountContext,
        sender_domain: &str,
        recipients: &mut [NewRecipient],
    ) -> Result<(), CoreError> {
        let now = self.env.clock.now_ms();
        let keys: Vec<String> = recipients
            .iter()
            .map(|r| normalize_blacklist_address(&r.address))
            .collect();
        let addresses: Vec<String> = recipients.iter().map(|r| r.address.clone()).collect();
        let since = now.saturating_sub((self.env.settings.blacklist_days as i64).saturating_mul(DAY_MS));
        let screen = self
            .suppression_store()
            .recipient_screen(RecipientScreenQuery {
                account: account.id,
                sender_domain,
                recipients: &addresses,
                blacklist_keys: &keys,
                bounce_since_ms: since,
                now_ms: now,
            })
            .await?;
        let mut hits: HashSet<String> = screen.blacklisted.into_iter().collect();
        // The simulator's `suppressionlist@` is on every suppression list (`crate::simulator`).
        hits.extend(keys.iter().filter(|k| crate::simulator::is_suppressed(k)).cloned());
        if !hits.is_empty() {
            if keys.iter().all(|k| hits.contains(k)) {
                return Err(CoreError::refused(
                    ErrorCode::FailedOperationEmailAddrInBlacklist,
                    "every recipient is on a blacklist",
                ));
            }
            for (r, k) in recipients.iter_mut().zip(&keys) {
                if hits.contains(k) {
                    r.send_status = SendStatus::Blacklisted;
                    r.deliver_message = Some("the recipient is on a blacklist".into());
                }
            }
        }
        self.engagement
            .mark_unsubscribed(sender_domain, &screen.unsubscribed, recipients)
    }

    /// Auto-suspend, checked after a request that had blacklisted recipients was stored: when the account's
    /// blacklist hits reach `suspend_blacklist_percent` of its recipients within `reputation_window_secs`
    /// (and there were at least `reputation_min_sends`), the account is suspended until an operator resumes it.
    pub(crate) async fn check_auto_suspend(&self, account: &AccountContext) -> Result<(), CoreError> {
        let s = &self.env.settings;
        let since = self
            .env
            .clock
            .now_ms()
            .saturating_sub((s.reputation_window_secs as i64).saturating_mul(1000));
        let (hits, sends) = self.suppression_store().blacklist_hits(account.id, since).await?;
        if sends < s.reputation_min_sends as i64 || sends == 0 {
            return Ok(());
        }
        let percent = hits as f64 * 100.0 / sends as f64;
        if percent >= s.suspend_blacklist_percent {
            self.env
                .store
                .accounts()
                .set_account_suspended(account.id, true)
                .await?;
            self.accounts.credentials.clear();
            tracing::warn!(
                account = %account.name, hits, sends, percent,
                "account suspended: too many blacklisted recipients (resume with `mailpush account resume`)"
            );
        }
        Ok(())
    }

    /// Suspends or resumes an account by name (operator CLI).
    pub async fn set_account_suspended_by_name(&self, name: &str, suspended: bool) -> Result<(), CoreError> {
        let Some(acc) = self.env.store.accounts().account_by_name(name).await? else {
            return Err(CoreError::refused(
                ErrorCode::InvalidParameterValue,
                format!("there is no account named {name}"),
            ));
        };
        self.env
            .store
            .accounts()
            .set_account_suspended(acc.id, suspended)
            .await?;
        self.accounts.credentials.clear();
        Ok(())
    }

    pub(crate) async fn list_black_email_address(
        &self,
        account: &AccountContext,
        filter: BounceBlacklistFilter<'_>,
        offset: i64,
        limit: i64,
    ) -> Result<(Vec<BounceBlacklistEntry>, i64), CoreError> {
        crate::error::check_page(offset, limit, 100)?;
        let BounceBlacklistFilter {
            start_date,
            end_date,
            email,
        } = filter;
        let (from_ms, _) =
            mailpush_model::clock::day_range(start_date).ok_or_else(|| bad_date("StartDate", start_date))?;
        let (_, to_ms) = mailpush_model::clock::day_range(end_date).ok_or_else(|| bad_date("EndDate", end_date))?;
        let address = address_filter(email);
        Ok(self
            .suppression_store()
            .list_bounce_blacklist(&BounceBlacklistQuery {
                account_id: account.id,
                from_ms,
                to_ms,
                address,
                offset,
                limit,
            })
            .await?)
    }

    pub(crate) async fn delete_black_list(
        &self,
        account: &AccountContext,
        emails: &[String],
    ) -> Result<u64, CoreError> {
        let addresses = parse_addresses("EmailAddressList", emails)?;
        Ok(self
            .suppression_store()
            .delete_bounce_blacklist(account.id, &addresses)
            .await?)
    }

    pub(crate) async fn create_custom_blacklist(
        &self,
        account: &AccountContext,
        emails: &[String],
        expire_date: Option<&str>,
    ) -> Result<CustomBlacklistCreated, CoreError> {
        check_address_count("Emails", emails)?;
        let expire = expire_ms(expire_date)?;
        let mut out = CustomBlacklistCreated {
            total: emails.len() as u64,
            ..Default::default()
        };
        let mut seen = HashSet::new();
        let mut good = Vec::new();
        for raw in emails {
            let raw = raw.trim();
            if raw.len() > MAX_ADDRESS_LEN {
                out.too_long += 1;
            } else if let Ok(a) = EmailAddress::parse(raw) {
                let key = normalize_blacklist_address(a.as_str());
                if seen.insert(key.clone()) {
                    good.push(key);
                } else {
                    out.repeat += 1;
                }
            } else {
                out.invalid += 1;
            }
        }
        let inserted = if good.is_empty() {
            0
        } else {
            self.suppression_store()
                .create_custom_blacklist(account.id, &good, self.env.clock.now_ms(), expire)
                .await?
        };
        out.valid = inserted;
        out.repeat += good.len() as u64 - inserted;
        Ok(out)
    }

    pub(crate) async fn list_custom_blacklist(
        &self,
        account: &AccountContext,
        filter: CustomBlacklistFilter<'_>,
        offset: i64,
        limit: i64,
    ) -> Result<(Vec<CustomBlacklistEntry>, i64), CoreError> {
        crate::error::check_page(offset, limit, 100)?;
        let CustomBlacklistFilter { status, email } = filter;
        let filter = match status {
            Some(0) => CustomStatusFilter::Expired,
            Some(1) => CustomStatusFilter::Active,
            None | Some(2) => CustomStatusFilter::All,
            Some(other) => {
                return Err(CoreError::refused(
                    ErrorCode::InvalidParameterValue,
                    format!("Status {other} must be 0 (expired), 1 (in force) or 2 (all)"),
                ));
            }
        };
        let email = address_filter(email);
        Ok(self
            .suppression_store()
            .list_custom_blacklist(
                account.id,
                filter,
                email.as_deref(),
                self.env.clock.now_ms(),
                offset,
                limit,
            )
            .await?)
    }

    pub(crate) async fn update_custom_blacklist(
        &self,
        account: &AccountContext,
        id: i64,
        edit: CustomBlacklistEdit<'_>,
    ) -> Result<(), CoreError> {
        let address = parse_addresses("Email", &[edit.email.to_string()])?.remove(0);
        let expire = expire_ms(edit.expire_date)?;
        match self
            .suppression_store()
            .update_custom_blacklist(account.id, id, &address, expire)
            .await
        {
            Err(mailpush_store::StoreError::NotFound) => Err(CoreError::refused(
                ErrorCode::InvalidParameterValue,
                format!("the custom blacklist has no entry {id}"),
            )),
            other => Ok(other?),
        }
    }

    pub(crate) async fn delete_custom_blacklist(
        &self,
        account: &AccountContext,
        emails: &[String],
    ) -> Result<u64, CoreError> {
        let addresses = parse_addresses("Emails", emails)?;
        Ok(self
            .suppression_store()
            .delete_custom_blacklist(account.id, &addresses)
            .await?)
    }
}
