//! SES v2 contact lists (migration 0034): the lists with their topics (a JSON array, written and read whole) and
//! their contacts with their topic preferences (a JSON object). Every query is scoped by the account.

use sqlx::AssertSqlSafe;

use crate::sql::{Arg, query};
use crate::{AccountId, Store, StoreError};

pub use mailpush_model::sesv2::{ContactListRow, ContactRow};

/// Contact lists and contacts ([`Store::contact_lists`]).
#[derive(Debug, Clone, Copy)]
pub struct ContactLists<'a> {
    store: &'a Store,
}

impl Store {
    /// SES v2 contact lists and their contacts.
    pub fn contact_lists(&self) -> ContactLists<'_> {
        ContactLists { store: self }
    }
}

/// The columns of [`ContactListRow`].
const LIST_COLUMNS: &str = "name, description, topics, created_ms, updated_ms";
/// The columns of [`ContactRow`].
const CONTACT_COLUMNS: &str = "list_name, email, preferences, unsubscribe_all, attributes, created_ms, updated_ms";

impl ContactLists<'_> {
    /// Creates a list; [`StoreError::Conflict`] if the account has one of that name.
    pub async fn create_list(self, account: AccountId, row: &ContactListRow) -> Result<(), StoreError> {
        query(
            "INSERT INTO ses_contact_lists (account_id, name, description, topics, created_ms, updated_ms) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        )
        .bind(account)
        .bind(row.name.as_str())
        .bind(row.description.as_str())
        .bind(row.topics.as_str())
        .bind(row.created_ms)
        .bind(row.updated_ms)
        .execute_new(self.store.guarded_writer(), format!("contact list {} exists", row.name))
        .await
    }

    /// Replaces a list's description and topics; [`StoreError::NotFound`] if there is no such list. Contacts keep
    /// their preferences (a preference for a topic no longer in the list is kept and ignored).
    pub async fn update_list(self, account: AccountId, row: &ContactListRow) -> Result<(), StoreError> {
        self.store
            .guarded(async {
                let n = query(
                    "UPDATE ses_contact_lists SET description = $3, topics = $4, updated_ms = $5 \
                     WHERE account_id = $1 AND name = $2",
                )
                .bind(account)
                .bind(row.name.as_str())
                .bind(row.description.as_str())
                .bind(row.topics.as_str())
                .bind(row.updated_ms)
                .execute(self.store.writer())
                .await?;
                if n == 0 {
                    return Err(StoreError::NotFound);
                }
                Ok(())
            })
            .await
    }

    /// The account's lists, by name.
    pub async fn lists(self, account: AccountId) -> Result<Vec<ContactListRow>, StoreError> {
        query(AssertSqlSafe(format!(
            "SELECT {LIST_COLUMNS} FROM ses_contact_lists WHERE account_id = $1 ORDER BY name"
        )))
        .bind(account)
        .fetch_all(self.store.guarded_reader())
        .await
    }

    /// One list.
    pub async fn list(self, account: AccountId, name: &str) -> Result<Option<ContactListRow>, StoreError> {
        query(AssertSqlSafe(format!(
            "SELECT {LIST_COLUMNS} FROM ses_contact_lists WHERE account_id = $1 AND name = $2"
        )))
        .bind(account)
        .bind(name)
        .fetch_optional(self.store.guarded_reader())
        .await
    }

    /// Deletes a list and its contacts; [`StoreError::NotFound`] if there is no such list.
    pub async fn delete_list(self, account: AccountId, name: &str) -> Result<(), StoreError> {
        self.store
            .guarded(self.store.writer().delete_with_children(
                "DELETE FROM ses_contacts WHERE account_id = $1 AND list_name = $2",
                "DELETE FROM ses_contact_lists WHERE account_id = $1 AND name = $2",
                &[account.into(), name.into()],
            ))
            .await
    }

    /// Adds a contact; [`StoreError::Conflict`] if the list has it.
    pub async fn create_contact(self, account: AccountId, c: &ContactRow) -> Result<(), StoreError> {
        query(
            "INSERT INTO ses_contacts (account_id, list_name, email, preferences, unsubscribe_all, \
             attributes, created_ms, updated_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT DO NOTHING",
        )
        .bind_all(&contact_values(account, c))
        .bind(c.created_ms)
        .bind(c.updated_ms)
        .execute_new(self.store.guarded_writer(), format!("contact {} exists", c.email))
        .await
    }

    /// Replaces a contact's preferences, `UnsubscribeAll` and attributes; [`StoreError::NotFound`] if the list
    /// does not have it.
    pub async fn update_contact(self, account: AccountId, c: &ContactRow) -> Result<(), StoreError> {
        query(
            "UPDATE ses_contacts SET preferences = $4, unsubscribe_all = $5, attributes = $6, \
             updated_ms = $7 WHERE account_id = $1 AND list_name = $2 AND email = $3",
        )
        .bind_all(&contact_values(account, c))
        .bind(c.updated_ms)
        .execute_found(self.store.guarded_writer())
        .await
    }

    /// One contact.
    pub async fn contact(self, account: AccountId, list: &str, email: &str) -> Result<Option<ContactRow>, StoreError> {
        query(AssertSqlSafe(format!(
            "SELECT {CONTACT_COLUMNS} FROM ses_contacts WHERE account_id = $1 AND list_name = $2 AND email = $3"
        )))
        .bind(account)
        .bind(list)
        .bind(email)
        .fetch_optional(self.store.guarded_reader())
        .await
    }

    /// The contacts of a list, by address.
    pub async fn contacts(self, account: AccountId, list: &str) -> Result<Vec<ContactRow>, StoreError> {
        query(AssertSqlSafe(format!(
            "SELECT {CONTACT_COLUMNS} FROM ses_contacts WHERE account_id = $1 AND list_name = $2 ORDER BY email"
        )))
        .bind(account)
        .bind(list)
        .fetch_all(self.store.guarded_reader())
        .await
    }

    /// Deletes a contact; [`StoreError::NotFound`] if the list does not have it.
    pub async fn delete_contact(self, account: AccountId, list: &str, email: &str) -> Result<(), StoreError> {
        query("DELETE FROM ses_contacts WHERE account_id = $1 AND list_name = $2 AND email = $3")
            .bind(account)
            .bind(list)
            .bind(email)
            .execute_found(self.store.guarded_writer())
            .await
    }
}

/// A contact's values that both its insert and its update bind first: account, list, address, preferences,
/// `UnsubscribeAll`, attributes.
fn contact_values<'a>(account: AccountId, c: &'a ContactRow) -> [Arg<'a>; 6] {
    [
        account.into(),
        c.list_name.as_str().into(),
        c.email.as_str().into(),
        c.preferences.as_str().into(),
        c.unsubscribe_all.into(),
        c.attributes.as_str().into(),
    ]
}
