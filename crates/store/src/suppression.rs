//! Suppression (migration 0007): the global bounce blacklist, fed by hard bounces in the same transaction as
//! the outcome, and each account's custom blacklist. Admission asks [`Suppression::blacklisted`] once per request.
//!
//! The global list keeps one row per (address, account whose mail bounced): admission matches the address across
//! all accounts, while `ListBlackEmailAddress` / `DeleteBlackList` only see the caller's own rows (an account
//! never learns another account's recipients, nor lifts a block another account's bounce caused).

use std::sync::LazyLock;

use crate::sql::{builder, page, query};
use crate::{AccountId, Store, StoreError};

pub use mailpush_model::suppression::{BounceBlacklistEntry, CustomBlacklistEntry};

/// What a blacklist insert does when the (address, account) row exists: refresh it. Every form of the insert
/// (one row, multi-row, UNNEST) ends with this one clause.
pub(crate) const BOUNCE_BLACKLIST_REFRESH: &str =
    " ON CONFLICT (address, account_id) DO UPDATE SET created_ms = excluded.created_ms, reason = excluded.reason";

/// Inserts or refreshes a global blacklist row: `$1` address (normalized), `$2` account, `$3` time, `$4` reason.
pub(crate) static UPSERT_BOUNCE_BLACKLIST: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT INTO bounce_blacklist (address, account_id, created_ms, reason) VALUES ($1, $2, $3, $4)\
         {BOUNCE_BLACKLIST_REFRESH}"
    )
});

/// The form addresses take in the blacklists: ASCII-lowercased (mailbox providers treat local parts
/// case-insensitively in practice; over-matching a case variant is the safe side for suppression).
pub fn normalize(address: &str) -> String {
    address.trim().to_ascii_lowercase()
}

/// A `ListBlackEmailAddress` query (the caller's rows only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BounceBlacklistQuery {
    /// The account.
    pub account_id: AccountId,
    /// Blacklisted at or after this time, Unix ms.
    pub from_ms: i64,
    /// Blacklisted before this time, Unix ms.
    pub to_ms: i64,
    /// Only this address.
    pub address: Option<String>,
    /// Rows to skip.
    pub offset: i64,
    /// Most rows.
    pub limit: i64,
}

/// The admission-time lookups of one request's recipients ([`Suppression::recipient_screen`]).
#[derive(Debug, Clone, Copy)]
pub struct RecipientScreenQuery<'a> {
    /// The sending account (custom blacklist and unsubscribes are per account).
    pub account: AccountId,
    /// The sending domain (unsubscribes are per sending domain).
    pub sender_domain: &'a str,
    /// The recipients as sent (matched against unsubscribes).
    pub recipients: &'a [String],
    /// The recipients normalised for the blacklists ([`normalize`]).
    pub blacklist_keys: &'a [String],
    /// Bounce blacklist rows older than this have expired.
    pub bounce_since_ms: i64,
    /// Custom blacklist rows expiring before this are no longer in force.
    pub now_ms: i64,
}

/// Which of a request's recipients admission must hold back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecipientScreen {
    /// Blacklist keys found on the bounce blacklist or the account's custom blacklist.
    pub blacklisted: Vec<String>,
    /// Recipients who unsubscribed from the sending domain.
    pub unsubscribed: Vec<String>,
}

/// Which custom blacklist rows to list, as `ListCustomBlacklist`'s `Status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CustomStatusFilter {
    /// 0: expired.
    Expired,
    /// 1: in force.
    Active,
    /// 2: all.
    All,
}

/// The suppression lists ([`Store::suppression`]).
#[derive(Debug, Clone, Copy)]
pub struct Suppression<'a> {
    pub(crate) store: &'a Store,
}

impl Store {
    /// Suppression: the bounce and custom blacklists, unsubscribes, the admission screen.
    pub fn suppression(&self) -> Suppression<'_> {
        Suppression { store: self }
    }
}

impl Suppression<'_> {
    /// Which of `addresses` (normalized with [`normalize`]) are blocked for `account`: on the global bounce
    /// blacklist since `bounce_since_ms`, or on the account's custom blacklist and not expired at `now_ms`.
    /// One statement for the whole request.
    pub async fn blacklisted(
        self,
        account: AccountId,
        addresses: &[String],
        bounce_since_ms: i64,
        now_ms: i64,
    ) -> Result<Vec<String>, StoreError> {
        if addresses.is_empty() {
            return Ok(Vec::new());
        }
        // One statement, both lists, each an index range lookup per address.
        let mut qb = builder("SELECT address FROM bounce_blacklist WHERE created_ms >= ");
        qb.push_bind(bounce_since_ms).push(" AND address IN (");
        qb.push_binds(addresses);
        qb.push(") UNION SELECT address FROM custom_blacklist WHERE account_id = ");
        qb.push_bind(account)
            .push(" AND (expire_ms IS NULL OR expire_ms > ")
            .push_bind(now_ms)
            .push(") AND address IN (");
        qb.push_binds(addresses);
        qb.push(")");
        qb.build().scalars(self.store.guarded_reader()).await
    }

    /// The blacklists ([`Suppression::blacklisted`]) and the unsubscribes from the sending domain for one request, in a
    /// single round trip, shared with the requests screened at the same moment (see `screen`).
    pub async fn recipient_screen(self, q: RecipientScreenQuery<'_>) -> Result<RecipientScreen, StoreError> {
        if q.recipients.is_empty() {
            return Ok(RecipientScreen::default());
        }
        self.store
            .guarded(
                self.store
                    .inner
                    .screens
                    .screen(crate::screen::OwnedScreenQuery::from(&q)),
            )
            .await
    }

    /// Screens run as one statement (the batcher's unit of work): each part is tagged with its request's index,
    /// so the answer is exactly what each request's own statement would return.
    pub(crate) async fn recipient_screens_now(
        db: &crate::Db,
        qs: &[crate::screen::OwnedScreenQuery],
    ) -> Result<Vec<RecipientScreen>, StoreError> {
        let mut out: Vec<RecipientScreen> = qs.iter().map(|_| RecipientScreen::default()).collect();
        if qs.is_empty() {
            return Ok(out);
        }
        let rows = db.recipient_screen_rows(qs).await?;
        for (i, list, address) in rows {
            let i = usize::try_from(i)
                .ok()
                .filter(|i| *i < out.len())
                .ok_or_else(|| StoreError::Corrupt("a screen row names no request".into()))?;
            if list == 0 {
                out[i].blacklisted.push(address);
            } else {
                out[i].unsubscribed.push(address);
            }
        }
        Ok(out)
    }
}

impl Suppression<'_> {
    /// Adds (or refreshes) a global bounce blacklist row attributed to `account`, e.g. from an asynchronous DSN.
    pub async fn add_bounce_blacklist(
        self,
        account: AccountId,
        address: &str,
        at_ms: i64,
        reason: &str,
    ) -> Result<(), StoreError> {
        query(UPSERT_BOUNCE_BLACKLIST.as_str())
            .bind(&normalize(address))
            .bind(account)
            .bind(at_ms)
            .bind(reason)
            .execute(self.store.guarded_writer())
            .await?;
        Ok(())
    }

    /// `ListBlackEmailAddress`: the account's global blacklist rows in a time range, newest first, and their total.
    pub async fn list_bounce_blacklist(
        self,
        q: &BounceBlacklistQuery,
    ) -> Result<(Vec<BounceBlacklistEntry>, i64), StoreError> {
        self.store
            .guarded(page(
                self.store.reader(),
                "address, created_ms, reason",
                "FROM bounce_blacklist WHERE account_id = $1 AND created_ms >= $2 AND created_ms < $3 \
                 AND ($4 = '' OR address = $4)",
                &[
                    q.account_id.into(),
                    q.from_ms.into(),
                    q.to_ms.into(),
                    q.address.as_deref().unwrap_or_default().into(),
                ],
                "ORDER BY created_ms DESC, address",
                q.limit,
                q.offset,
            ))
            .await
    }

    /// `DeleteBlackList`: removes the account's global blacklist rows for these (normalized) addresses.
    pub async fn delete_bounce_blacklist(self, account: AccountId, addresses: &[String]) -> Result<u64, StoreError> {
        self.delete_listed("bounce_blacklist", account, addresses).await
    }

    /// `CreateCustomBlacklist`: adds addresses (normalized) to the account's list; returns how many were new
    /// (an address already listed is left as it is).
    pub async fn create_custom_blacklist(
        self,
        account: AccountId,
        addresses: &[String],
        now_ms: i64,
        expire_ms: Option<i64>,
    ) -> Result<u64, StoreError> {
        self.store
            .guarded(async {
                let mut inserted = 0;
                let mut tx = self.store.writer().begin().await?;
                let mut conn = tx.conn();
                for a in addresses {
                    inserted += query(
                        "INSERT INTO custom_blacklist (account_id, address, created_ms, expire_ms) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT (account_id, address) DO NOTHING",
                    )
                    .bind(account)
                    .bind(a)
                    .bind(now_ms)
                    .bind(expire_ms)
                    .execute(&mut conn)
                    .await?;
                }
                tx.commit().await?;
                Ok(inserted)
            })
            .await
    }

    /// `ListCustomBlacklist`: the account's rows by id, and their total.
    #[allow(clippy::too_many_arguments)]
    pub async fn list_custom_blacklist(
        self,
        account: AccountId,
        status: CustomStatusFilter,
        address: Option<&str>,
        now_ms: i64,
        offset: i64,
        limit: i64,
    ) -> Result<(Vec<CustomBlacklistEntry>, i64), StoreError> {
        let state = match status {
            CustomStatusFilter::Expired => "expire_ms IS NOT NULL AND expire_ms <= $2",
            CustomStatusFilter::Active => "(expire_ms IS NULL OR expire_ms > $2)",
            CustomStatusFilter::All => "$2 = $2",
        };
        let from = format!("FROM custom_blacklist WHERE account_id = $1 AND {state} AND ($3 = '' OR address = $3)");
        self.store
            .guarded(page(
                self.store.reader(),
                "id, address, created_ms, expire_ms",
                &from,
                &[account.into(), now_ms.into(), address.unwrap_or("").into()],
                "ORDER BY id",
                limit,
                offset,
            ))
            .await
    }

    /// `UpdateCustomBlackList`: changes one of the account's rows; [`StoreError::NotFound`] if it has no such id,
    /// [`StoreError::Conflict`] if the new address is already listed.
    pub async fn update_custom_blacklist(
        self,
        account: AccountId,
        id: i64,
        address: &str,
        expire_ms: Option<i64>,
    ) -> Result<(), StoreError> {
        query("UPDATE custom_blacklist SET address = $1, expire_ms = $2 WHERE id = $3 AND account_id = $4")
            .bind(address)
            .bind(expire_ms)
            .bind(id)
            .bind(account)
            .execute_found(self.store.guarded_writer())
            .await
    }

    /// `DeleteCustomBlackList`: removes these (normalized) addresses from the account's list.
    pub async fn delete_custom_blacklist(self, account: AccountId, addresses: &[String]) -> Result<u64, StoreError> {
        self.delete_listed("custom_blacklist", account, addresses).await
    }

    /// Removes the account's rows of the blacklist `table` for these (normalized) addresses; how many.
    async fn delete_listed(self, table: &str, account: AccountId, addresses: &[String]) -> Result<u64, StoreError> {
        if addresses.is_empty() {
            return Ok(0);
        }
        let mut qb = builder(&format!("DELETE FROM {table} WHERE account_id = "));
        qb.push_bind(account).push(" AND address IN (");
        qb.push_binds(addresses);
        qb.push(")");
        qb.build().execute(self.store.guarded_writer()).await
    }

    /// For auto-suspend: `(blacklist hits, recipients)` of the account's requests since `since_ms`, where a hit
    /// is a recipient refused at admission with SendStatus 1007.
    pub async fn blacklist_hits(self, account: AccountId, since_ms: i64) -> Result<(i64, i64), StoreError> {
        let (sends, hits): (i64, i64) = query(
            "SELECT COUNT(*) AS sends, COALESCE(SUM(CASE WHEN send_status = 1007 THEN 1 ELSE 0 END), 0) AS hits \
             FROM deliveries WHERE account_id = $1 AND request_ms >= $2",
        )
        .bind(account)
        .bind(since_ms)
        .fetch_one(self.store.guarded_reader())
        .await?;
        Ok((hits, sends))
    }

    /// Records that `recipient` unsubscribed from mail of `domain` (the account's sending domain); `true` if new.
    pub async fn unsubscribe(
        self,
        account: AccountId,
        domain: &str,
        recipient: &str,
        at_ms: i64,
    ) -> Result<bool, StoreError> {
        query(
            "INSERT INTO unsubscribes (account_id, domain, recipient, at_ms) VALUES ($1, $2, $3, $4) \
             ON CONFLICT DO NOTHING",
        )
        .bind(account)
        .bind(domain)
        .bind(recipient)
        .bind(at_ms)
        .execute_changed(self.store.guarded_writer())
        .await
    }
}
