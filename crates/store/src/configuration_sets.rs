//! SES v2 configuration sets (migrations 0033 and 0040): the sets with their options, their event destinations
//! (HTTP(S) endpoints with the event types they receive) and, per message sent with a set, the set's name, the
//! message's `EmailTags`, its sender and subject. Every query is scoped by the account.
//!
//! A message's row is written before the message is enqueued (as its recipient bodies are), so the callback
//! dispatcher finds it for the message's first event. A mail refused at admission (`REJECT`,
//! `RENDERING_FAILURE`) has a row and events but no `messages` row: the row's sender and subject fill the events'
//! `mail` object, and retention prunes such rows by their `created_ms`.

use crate::sql::{Arg, builder, query};
use crate::{AccountId, Store, StoreError};

pub use mailpush_model::sesv2::{ConfigurationSetRow, EventDestinationRow};

/// The configuration set and tags of one message.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct MessageTagsRow {
    /// The message.
    pub message_id: String,
    /// Its configuration set.
    pub set_name: String,
    /// Its `EmailTags` as a JSON object of names to values.
    pub tags: String,
    /// The sender (`From` address) of the mail.
    pub source: String,
    /// The subject of the mail.
    pub subject: String,
    /// When the row was written (the mail's admission), Unix ms.
    pub created_ms: i64,
}

/// Configuration sets, event destinations and message tags ([`Store::configuration_sets`]).
#[derive(Debug, Clone, Copy)]
pub struct ConfigurationSets<'a> {
    store: &'a Store,
}

impl Store {
    /// SES v2 configuration sets, their event destinations and the tags of the mail sent with them.
    pub fn configuration_sets(&self) -> ConfigurationSets<'_> {
        ConfigurationSets { store: self }
    }
}

impl ConfigurationSets<'_> {
    /// Creates a set; [`StoreError::Conflict`] if the account has one of that name.
    pub async fn create_set(self, account: AccountId, name: &str, created_ms: i64) -> Result<(), StoreError> {
        query(
            "INSERT INTO ses_configuration_sets (account_id, name, created_ms) VALUES ($1, $2, $3) \
             ON CONFLICT DO NOTHING",
        )
        .bind(account)
        .bind(name)
        .bind(created_ms)
        .execute_new(self.store.guarded_writer(), format!("configuration set {name} exists"))
        .await
    }

    /// The account's sets, by name.
    pub async fn sets(self, account: AccountId) -> Result<Vec<ConfigurationSetRow>, StoreError> {
        query("SELECT name, created_ms, options FROM ses_configuration_sets WHERE account_id = $1 ORDER BY name")
            .bind(account)
            .fetch_all(self.store.guarded_reader())
            .await
    }

    /// One set.
    pub async fn set(self, account: AccountId, name: &str) -> Result<Option<ConfigurationSetRow>, StoreError> {
        query("SELECT name, created_ms, options FROM ses_configuration_sets WHERE account_id = $1 AND name = $2")
            .bind(account)
            .bind(name)
            .fetch_optional(self.store.guarded_reader())
            .await
    }

    /// Replaces a set's options (a JSON object, see [`ConfigurationSetRow::options`]); [`StoreError::NotFound`] if
    /// there is no such set.
    pub async fn set_options(self, account: AccountId, name: &str, options_json: &str) -> Result<(), StoreError> {
        let n = query("UPDATE ses_configuration_sets SET options = $3 WHERE account_id = $1 AND name = $2")
            .bind(account)
            .bind(name)
            .bind(options_json)
            .execute(self.store.guarded_writer())
            .await?;
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Deletes a set and its event destinations; [`StoreError::NotFound`] if there is no such set. Mail sent
    /// with it keeps its tags, but its events go nowhere any more.
    pub async fn delete_set(self, account: AccountId, name: &str) -> Result<(), StoreError> {
        self.store
            .guarded(self.store.writer().delete_with_children(
                "DELETE FROM ses_event_destinations WHERE account_id = $1 AND set_name = $2",
                "DELETE FROM ses_configuration_sets WHERE account_id = $1 AND name = $2",
                &[account.into(), name.into()],
            ))
            .await
    }

    /// Adds an event destination to an existing set; [`StoreError::Conflict`] if the set has one of that name.
    pub async fn create_destination(self, account: AccountId, d: &EventDestinationRow) -> Result<(), StoreError> {
        query(
            "INSERT INTO ses_event_destinations (account_id, set_name, name, enabled, url, event_types) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        )
        .bind_all(&destination_values(account, d))
        .execute_new(
            self.store.guarded_writer(),
            format!("event destination {} exists", d.name),
        )
        .await
    }

    /// Replaces an event destination; [`StoreError::NotFound`] if there is none of that name.
    pub async fn update_destination(self, account: AccountId, d: &EventDestinationRow) -> Result<(), StoreError> {
        query(
            "UPDATE ses_event_destinations SET enabled = $4, url = $5, event_types = $6 \
             WHERE account_id = $1 AND set_name = $2 AND name = $3",
        )
        .bind_all(&destination_values(account, d))
        .execute_found(self.store.guarded_writer())
        .await
    }

    /// Deletes an event destination; [`StoreError::NotFound`] if there is none of that name.
    pub async fn delete_destination(self, account: AccountId, set_name: &str, name: &str) -> Result<(), StoreError> {
        query("DELETE FROM ses_event_destinations WHERE account_id = $1 AND set_name = $2 AND name = $3")
            .bind(account)
            .bind(set_name)
            .bind(name)
            .execute_found(self.store.guarded_writer())
            .await
    }

    /// The event destinations of one set (`Some`) or of all the account's sets (`None`), by set and name.
    pub async fn destinations(
        self,
        account: AccountId,
        set_name: Option<&str>,
    ) -> Result<Vec<EventDestinationRow>, StoreError> {
        let q = match set_name {
            Some(set) => query(
                "SELECT set_name, name, enabled, url, event_types FROM ses_event_destinations \
                 WHERE account_id = $1 AND set_name = $2 ORDER BY name",
            )
            .bind(account)
            .bind(set),
            None => query(
                "SELECT set_name, name, enabled, url, event_types FROM ses_event_destinations \
                 WHERE account_id = $1 ORDER BY set_name, name",
            )
            .bind(account),
        };
        q.fetch_all(self.store.guarded_reader()).await
    }

    /// Records the set, tags, sender and subject of a message about to be enqueued (or refused at admission).
    pub async fn put_message_tags(self, account: AccountId, row: &MessageTagsRow) -> Result<(), StoreError> {
        query(
            "INSERT INTO ses_message_tags (message_id, account_id, set_name, tags, source, subject, created_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(row.message_id.as_str())
        .bind(account)
        .bind(row.set_name.as_str())
        .bind(row.tags.as_str())
        .bind(row.source.as_str())
        .bind(row.subject.as_str())
        .bind(row.created_ms)
        .execute(self.store.guarded_writer())
        .await?;
        Ok(())
    }

    /// The sets and tags of those of `message_ids` that were sent with a set.
    pub async fn message_tags(self, message_ids: &[&str]) -> Result<Vec<MessageTagsRow>, StoreError> {
        if message_ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut b = builder(
            "SELECT message_id, set_name, tags, source, subject, created_ms FROM ses_message_tags \
             WHERE message_id IN (",
        );
        b.push_binds(message_ids.iter().copied()).push(")");
        b.build().fetch_all(self.store.guarded_reader()).await
    }
}

/// An event destination's values in column order: account, set, name, enabled, URL, event types.
fn destination_values<'a>(account: AccountId, d: &'a EventDestinationRow) -> [Arg<'a>; 6] {
    [
        account.into(),
        d.set_name.as_str().into(),
        d.name.as_str().into(),
        d.enabled.into(),
        d.url.as_str().into(),
        d.event_types.as_str().into(),
    ]
}
