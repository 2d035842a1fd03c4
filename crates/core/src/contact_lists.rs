//! SES v2 contact lists and topics: the lists and contacts (rows in `store/src/contact_lists.rs`), and the
//! one-click topic unsubscribe of mail sent with `ListManagementOptions`: a token of `mailpush_tracking` (sealed
//! with a key of its own) naming the recipient and `ses-topic:<list>\n<topic>`, served under
//! `public_base_url`, which sets the contact's preference for the topic to `OPT_OUT` and, when the mail was sent
//! with a configuration set (the token names the message), records a `SUBSCRIPTION` event for the set's
//! destinations with the contact's preferences before and after.

use crate::configuration_sets::ListManagement;
use crate::error::CoreError;
use crate::sending::Sending;
use crate::{AccountContext, Mailpush};
use mailpush_model::sesv2::{ContactListRow, ContactRow};
use mailpush_model::{EventKind, MessageId};
use mailpush_store::NewEvent;
use mailpush_tracking::{Token, TokenKind};

/// What precedes `<list>\n<topic>` in a topic unsubscribe token's kind.
const TOPIC_PREFIX: &str = "ses-topic:";

/// A followed topic unsubscribe link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicUnsubscribe {
    /// The contact.
    pub email: String,
    /// The contact list.
    pub list: String,
    /// The topic (empty: every topic of the list).
    pub topic: String,
}

/// Master-key context of the topic unsubscribe tokens' key: a key of their own, so that the tracking endpoints
/// never accept a topic token, nor the topic endpoint a tracking one.
const TOPIC_TOKEN_KEY_CONTEXT: &str = "ses-topic-unsubscribe-token";

impl Sending {
    fn topic_token_key(&self) -> mailpush_tracking::TokenKey {
        mailpush_tracking::TokenKey::new(&self.engagement.secrets.subkey(TOPIC_TOKEN_KEY_CONTEXT))
    }

    fn contact_store(&self) -> mailpush_store::ContactLists<'_> {
        self.env.store.contact_lists()
    }

    /// Creates a contact list.
    pub(crate) async fn create_contact_list(
        &self,
        ctx: &AccountContext,
        row: &ContactListRow,
    ) -> Result<crate::configuration_sets::SetOutcome, CoreError> {
        crate::configuration_sets::outcome(self.contact_store().create_list(ctx.id, row).await)
    }

    /// Replaces a contact list's description and topics (`Missing` when there is no such list).
    pub(crate) async fn update_contact_list(
        &self,
        ctx: &AccountContext,
        row: &ContactListRow,
    ) -> Result<crate::configuration_sets::SetOutcome, CoreError> {
        crate::configuration_sets::outcome(self.contact_store().update_list(ctx.id, row).await)
    }

    /// The account's contact lists.
    pub(crate) async fn contact_lists(&self, ctx: &AccountContext) -> Result<Vec<ContactListRow>, CoreError> {
        Ok(self.contact_store().lists(ctx.id).await?)
    }

    /// One contact list.
    pub(crate) async fn contact_list(
        &self,
        ctx: &AccountContext,
        name: &str,
    ) -> Result<Option<ContactListRow>, CoreError> {
        Ok(self.contact_store().list(ctx.id, name).await?)
    }

    /// Deletes a contact list with its contacts.
    pub(crate) async fn delete_contact_list(
        &self,
        ctx: &AccountContext,
        name: &str,
    ) -> Result<crate::configuration_sets::SetOutcome, CoreError> {
        crate::configuration_sets::outcome(self.contact_store().delete_list(ctx.id, name).await)
    }

    /// Adds (`create`) or replaces a contact.
    pub(crate) async fn put_contact(
        &self,
        ctx: &AccountContext,
        row: &ContactRow,
        create: bool,
    ) -> Result<crate::configuration_sets::SetOutcome, CoreError> {
        let store = self.contact_store();
        crate::configuration_sets::outcome(if create {
            store.create_contact(ctx.id, row).await
        } else {
            store.update_contact(ctx.id, row).await
        })
    }

    /// One contact.
    pub(crate) async fn contact(
        &self,
        ctx: &AccountContext,
        list: &str,
        email: &str,
    ) -> Result<Option<ContactRow>, CoreError> {
        Ok(self.contact_store().contact(ctx.id, list, email).await?)
    }

    /// The contacts of a list.
    pub(crate) async fn contacts(&self, ctx: &AccountContext, list: &str) -> Result<Vec<ContactRow>, CoreError> {
        Ok(self.contact_store().contacts(ctx.id, list).await?)
    }

    /// Deletes a contact.
    pub(crate) async fn delete_contact(
        &self,
        ctx: &AccountContext,
        list: &str,
        email: &str,
    ) -> Result<crate::configuration_sets::SetOutcome, CoreError> {
        crate::configuration_sets::outcome(self.contact_store().delete_contact(ctx.id, list, email).await)
    }

    /// The one-click unsubscribe URL of `email` for the topic of `list` in message `message` (`None` without
    /// `public_base_url`).
    pub(crate) fn topic_unsubscribe_url(
        &self,
        ctx: &AccountContext,
        list: &ListManagement,
        email: &str,
        message: &MessageId,
    ) -> Option<String> {
        let base = self
            .env
            .settings
            .public_base_url
            .trim()
            .trim_end_matches('/')
            .to_string();
        if base.is_empty() {
            return None;
        }
        let token = Token {
            kind: TokenKind::Unsubscribe(format!("{TOPIC_PREFIX}{}\n{}", list.list, list.topic)),
            account_id: ctx.id,
            message_id: message.as_str().to_string(),
            recipient: email.to_ascii_lowercase(),
        };
        let text = self.topic_token_key().encode(&token);
        Some(format!("{base}/v2/email/list-unsubscribe/{text}"))
    }

    /// What a topic unsubscribe token names, if it is one of ours.
    pub(crate) fn topic_unsubscribe_info(&self, token: &str) -> Option<(i64, TopicUnsubscribe)> {
        self.topic_token(token).map(|(account, info, _)| (account, info))
    }

    /// A topic unsubscribe token's account, what it names and the message it was sent in ("" for links issued
    /// before tokens named it).
    fn topic_token(&self, token: &str) -> Option<(i64, TopicUnsubscribe, String)> {
        let t = self.topic_token_key().decode(token)?;
        let TokenKind::Unsubscribe(what) = t.kind else {
            return None;
        };
        let (list, topic) = what.strip_prefix(TOPIC_PREFIX)?.split_once('\n')?;
        Some((
            t.account_id,
            TopicUnsubscribe {
                email: t.recipient,
                list: list.to_string(),
                topic: topic.to_string(),
            },
            t.message_id,
        ))
    }

    /// Follows a topic unsubscribe link: the contact's preference for the topic becomes `OPT_OUT` (for no topic:
    /// `UnsubscribeAll`); a recipient who is not a contact yet becomes one. `None` for a token that is not ours or
    /// a list that is gone.
    pub(crate) async fn topic_unsubscribe(&self, token: &str) -> Result<Option<TopicUnsubscribe>, CoreError> {
        let Some((account, info, message)) = self.topic_token(token) else {
            return Ok(None);
        };
        let store = self.contact_store();
        let Some(list) = store.list(account, &info.list).await? else {
            return Ok(None);
        };
        let now = self.env.clock.now_ms();
        let existing = store.contact(account, &info.list, &info.email).await?;
        let mut row = existing.clone().unwrap_or(ContactRow {
            list_name: info.list.clone(),
            email: info.email.clone(),
            preferences: "{}".into(),
            unsubscribe_all: 0,
            attributes: String::new(),
            created_ms: now,
            updated_ms: now,
        });
        if info.topic.is_empty() {
            row.unsubscribe_all = 1;
        } else {
            let mut prefs: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(&row.preferences).unwrap_or_default();
            prefs.insert(info.topic.clone(), serde_json::json!("OPT_OUT"));
            row.preferences = serde_json::Value::Object(prefs).to_string();
        }
        row.updated_ms = now;
        let old = topic_preferences(&list, existing.as_ref());
        let new = topic_preferences(&list, Some(&row));
        match existing {
            Some(_) => store.update_contact(account, &row).await?,
            None => store.create_contact(account, &row).await?,
        }
        if old != new && !message.is_empty() {
            self.record_subscription(account, &message, &info, old, new, now)
                .await?;
        }
        Ok(Some(info))
    }

    /// The `SUBSCRIPTION` event of a followed topic link, when its message was sent with a configuration set
    /// (the dispatcher posts it to the set's destinations that match `SUBSCRIPTION`; never to the Tencent
    /// callback).
    async fn record_subscription(
        &self,
        account: i64,
        message: &str,
        info: &TopicUnsubscribe,
        old: serde_json::Value,
        new: serde_json::Value,
        now: i64,
    ) -> Result<(), CoreError> {
        let store = &self.env.store;
        if store.configuration_sets().message_tags(&[message]).await?.is_empty() {
            return Ok(());
        }
        let detail = serde_json::json!({
            "contactList": info.list,
            "source": "UnsubscribeHeader",
            "newTopicPreferences": new,
            "oldTopicPreferences": old,
        });
        let event = NewEvent {
            account_id: account,
            message_id: MessageId::from_stored(message.to_string()),
            recipient: info.email.clone(),
            kind: EventKind::Subscription,
            at_ms: now,
            reason: detail.to_string(),
            bounce_type: None,
            link: None,
            user_agent: None,
        };
        Ok(store.events().record_events(&[event]).await?)
    }
}

impl Mailpush {
    /// Creates a contact list.
    pub async fn create_contact_list(
        &self,
        ctx: &AccountContext,
        row: &ContactListRow,
    ) -> Result<crate::configuration_sets::SetOutcome, CoreError> {
        self.inner.sending.create_contact_list(ctx, row).await
    }

    /// The account's contact lists.
    pub async fn contact_lists(&self, ctx: &AccountContext) -> Result<Vec<ContactListRow>, CoreError> {
        self.inner.sending.contact_lists(ctx).await
    }

    /// One contact list.
    pub async fn contact_list(&self, ctx: &AccountContext, name: &str) -> Result<Option<ContactListRow>, CoreError> {
        self.inner.sending.contact_list(ctx, name).await
    }

    /// Deletes a contact list with its contacts.
    pub async fn delete_contact_list(
        &self,
        ctx: &AccountContext,
        name: &str,
    ) -> Result<crate::configuration_sets::SetOutcome, CoreError> {
        self.inner.sending.delete_contact_list(ctx, name).await
    }

    /// Adds (`create`) or replaces a contact.
    pub async fn put_contact(
        &self,
        ctx: &AccountContext,
        row: &ContactRow,
        create: bool,
    ) -> Result<crate::configuration_sets::SetOutcome, CoreError> {
        self.inner.sending.put_contact(ctx, row, create).await
    }

    /// One contact.
    pub async fn contact(
        &self,
        ctx: &AccountContext,
        list: &str,
        email: &str,
    ) -> Result<Option<ContactRow>, CoreError> {
        self.inner.sending.contact(ctx, list, email).await
    }

    /// The contacts of a list.
    pub async fn contacts(&self, ctx: &AccountContext, list: &str) -> Result<Vec<ContactRow>, CoreError> {
        self.inner.sending.contacts(ctx, list).await
    }

    /// Deletes a contact.
    pub async fn delete_contact(
        &self,
        ctx: &AccountContext,
        list: &str,
        email: &str,
    ) -> Result<crate::configuration_sets::SetOutcome, CoreError> {
        self.inner.sending.delete_contact(ctx, list, email).await
    }

    /// The one-click unsubscribe URL of `email` for `topic` of `list` in message `message` (`None` without
    /// `public_base_url`).
    pub fn topic_unsubscribe_url(
        &self,
        ctx: &AccountContext,
        list: &str,
        topic: &str,
        email: &str,
        message: &MessageId,
    ) -> Option<String> {
        let list = ListManagement {
            list: list.to_string(),
            topic: topic.to_string(),
        };
        self.inner.sending.topic_unsubscribe_url(ctx, &list, email, message)
    }

    /// Replaces a contact list's description and topics (`Missing` when there is no such list).
    pub async fn update_contact_list(
        &self,
        ctx: &AccountContext,
        row: &ContactListRow,
    ) -> Result<crate::configuration_sets::SetOutcome, CoreError> {
        self.inner.sending.update_contact_list(ctx, row).await
    }

    /// What a topic unsubscribe token names, if it is one of ours.
    pub fn topic_unsubscribe_info(&self, token: &str) -> Option<(i64, TopicUnsubscribe)> {
        self.inner.sending.topic_unsubscribe_info(token)
    }

    /// Follows a topic unsubscribe link: the contact's preference for the topic becomes `OPT_OUT` (for no topic:
    /// `UnsubscribeAll`); a recipient who is not a contact yet becomes one. `None` for a token that is not ours or
    /// a list that is gone.
    pub async fn topic_unsubscribe(&self, token: &str) -> Result<Option<TopicUnsubscribe>, CoreError> {
        self.inner.sending.topic_unsubscribe(token).await
    }
}

/// A contact's topic preferences as SES events show them: `unsubscribeAll`, `topicSubscriptionStatus` (its explicit
/// preferences) and `topicDefaultSubscriptionStatus` (the list's defaults), statuses written `OptIn` / `OptOut`.
pub fn topic_preferences(list: &ContactListRow, contact: Option<&ContactRow>) -> serde_json::Value {
    let status = |s: &str| if s == "OPT_OUT" { "OptOut" } else { "OptIn" };
    let prefs: serde_json::Map<String, serde_json::Value> = contact
        .and_then(|c| serde_json::from_str(&c.preferences).ok())
        .unwrap_or_default();
    let explicit: Vec<serde_json::Value> = prefs
        .iter()
        .map(|(topic, s)| serde_json::json!({ "topicName": topic, "subscriptionStatus": status(s.as_str().unwrap_or("")) }))
        .collect();
    let topics: Vec<serde_json::Value> = serde_json::from_str(&list.topics).unwrap_or_default();
    let defaults: Vec<serde_json::Value> = topics
        .iter()
        .map(|t| {
            serde_json::json!({
                "topicName": t["TopicName"],
                "subscriptionStatus": status(t["DefaultSubscriptionStatus"].as_str().unwrap_or("")),
            })
        })
        .collect();
    serde_json::json!({
        "unsubscribeAll": contact.is_some_and(|c| c.unsubscribe_all != 0),
        "topicSubscriptionStatus": explicit,
        "topicDefaultSubscriptionStatus": defaults,
    })
}

/// Whether `contact` (if any) receives mail of `topic` (`None`: the list as a whole) of `list`: not when it
/// unsubscribed from everything, nor when its preference for the topic, or the topic's default without one, is
/// `OPT_OUT`. Someone who is not a contact of the list receives the mail.
pub fn receives(list: &ContactListRow, contact: Option<&ContactRow>, topic: Option<&str>) -> bool {
    let Some(c) = contact else {
        return true;
    };
    if c.unsubscribe_all != 0 {
        return false;
    }
    let Some(topic) = topic else {
        return true;
    };
    let prefs: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&c.preferences).unwrap_or_default();
    if let Some(p) = prefs.get(topic).and_then(|v| v.as_str()) {
        return p != "OPT_OUT";
    }
    let topics: Vec<serde_json::Value> = serde_json::from_str(&list.topics).unwrap_or_default();
    topics
        .iter()
        .find(|t| t["TopicName"] == topic)
        .is_none_or(|t| t["DefaultSubscriptionStatus"] != "OPT_OUT")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_preferences_and_defaults_decide() {
        let list = ContactListRow {
            name: "news".into(),
            description: String::new(),
            topics: r#"[{"TopicName":"weekly","DefaultSubscriptionStatus":"OPT_IN"},
                        {"TopicName":"offers","DefaultSubscriptionStatus":"OPT_OUT"}]"#
                .into(),
            created_ms: 0,
            updated_ms: 0,
        };
        let contact = |prefs: &str, all: i64| ContactRow {
            list_name: "news".into(),
            email: "a@example.org".into(),
            preferences: prefs.into(),
            unsubscribe_all: all,
            attributes: String::new(),
            created_ms: 0,
            updated_ms: 0,
        };
        assert!(receives(&list, None, Some("offers")), "not a contact");
        assert!(receives(&list, Some(&contact("{}", 0)), Some("weekly")));
        assert!(!receives(&list, Some(&contact("{}", 0)), Some("offers")), "the default");
        assert!(receives(
            &list,
            Some(&contact(r#"{"offers":"OPT_IN"}"#, 0)),
            Some("offers")
        ));
        assert!(!receives(
            &list,
            Some(&contact(r#"{"weekly":"OPT_OUT"}"#, 0)),
            Some("weekly")
        ));
        assert!(
            !receives(&list, Some(&contact("{}", 1)), Some("weekly")),
            "unsubscribed from all"
        );
        assert!(!receives(&list, Some(&contact("{}", 1)), None));
        assert!(receives(&list, Some(&contact("{}", 0)), None));
        let before = topic_preferences(&list, None);
        assert_eq!(before["unsubscribeAll"], false);
        assert_eq!(before["topicSubscriptionStatus"], serde_json::json!([]));
        assert_eq!(
            before["topicDefaultSubscriptionStatus"],
            serde_json::json!([
                { "topicName": "weekly", "subscriptionStatus": "OptIn" },
                { "topicName": "offers", "subscriptionStatus": "OptOut" }
            ])
        );
        let after = topic_preferences(&list, Some(&contact(r#"{"weekly":"OPT_OUT"}"#, 0)));
        assert_eq!(
            after["topicSubscriptionStatus"],
            serde_json::json!([{ "topicName": "weekly", "subscriptionStatus": "OptOut" }])
        );
        assert_ne!(before, after);
    }
}
