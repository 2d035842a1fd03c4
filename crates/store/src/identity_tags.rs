//! Tags of sending domains (`TagList` of the Tencent identity actions): key/value pairs per (account, domain).

use std::collections::BTreeMap;

use crate::sql::query;
use crate::{AccountId, Store, StoreError};

pub use mailpush_model::identity::IdentityTag;

/// Tags of sending domains.
#[derive(Clone, Copy)]
pub struct IdentityTags<'a> {
    store: &'a Store,
}

impl Store {
    /// Tags of sending domains.
    pub fn identity_tags(&self) -> IdentityTags<'_> {
        IdentityTags { store: self }
    }
}

impl IdentityTags<'_> {
    /// Replaces the tags of `domain` (lowercase) with `tags` (one value per key: the last one given wins).
    pub async fn set_identity_tags(
        self,
        account: AccountId,
        domain: &str,
        tags: &[IdentityTag],
    ) -> Result<(), StoreError> {
        self.store
            .guarded(async {
                let mut tx = self.store.writer().begin_write().await?;
                let mut conn = tx.conn();
                query("DELETE FROM identity_tags WHERE account_id = $1 AND domain = $2")
                    .bind(account)
                    .bind(domain)
                    .execute(&mut conn)
                    .await?;
                let unique: BTreeMap<&str, &str> = tags.iter().map(|t| (t.key.as_str(), t.value.as_str())).collect();
                for (key, value) in unique {
                    query("INSERT INTO identity_tags (account_id, domain, tag_key, tag_value) VALUES ($1, $2, $3, $4)")
                        .bind(account)
                        .bind(domain)
                        .bind(key)
                        .bind(value)
                        .execute(&mut conn)
                        .await?;
                }
                tx.commit().await
            })
            .await
    }

    /// Every tagged domain of the account with its tags, in key order.
    pub async fn identity_tags(self, account: AccountId) -> Result<BTreeMap<String, Vec<IdentityTag>>, StoreError> {
        let rows: Vec<(String, String, String)> = query(
            "SELECT domain, tag_key, tag_value FROM identity_tags WHERE account_id = $1 ORDER BY domain, tag_key",
        )
        .bind(account)
        .fetch_all(self.store.guarded_reader())
        .await?;
        let mut out: BTreeMap<String, Vec<IdentityTag>> = BTreeMap::new();
        for (domain, key, value) in rows {
            out.entry(domain).or_default().push(IdentityTag { key, value });
        }
        Ok(out)
    }
}
