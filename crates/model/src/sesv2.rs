//! The AWS SES v2 vocabulary beside the Tencent one: named templates, configuration sets with their event
//! destinations, contact lists and contacts.

/// A named SES template.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "sqlx", derive(sqlx::FromRow))]
pub struct SesTemplateRow {
    /// `TemplateName`.
    pub name: String,
    /// The account's template holding the bodies.
    pub template_id: i64,
    /// The Subject part.
    pub subject: String,
    /// Unix ms.
    pub created_ms: i64,
}

/// A configuration set.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "sqlx", derive(sqlx::FromRow))]
pub struct ConfigurationSetRow {
    /// `ConfigurationSetName`.
    pub name: String,
    /// When it was created, Unix ms.
    pub created_ms: i64,
    /// The options (`TrackingOptions`, `DeliveryOptions`, `ReputationOptions`, `SendingOptions`,
    /// `SuppressionOptions`) as a JSON object of those names to their wire objects; `{}` = the defaults.
    pub options: String,
}

/// An event destination of a configuration set.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "sqlx", derive(sqlx::FromRow))]
pub struct EventDestinationRow {
    /// The configuration set.
    pub set_name: String,
    /// `EventDestinationName`.
    pub name: String,
    /// 1 = enabled, 0 = disabled.
    pub enabled: i64,
    /// The HTTP(S) endpoint events are POSTed to.
    pub url: String,
    /// `MatchingEventTypes`, comma-separated (`DELIVERY,BOUNCE`).
    pub event_types: String,
}

/// A contact list.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "sqlx", derive(sqlx::FromRow))]
pub struct ContactListRow {
    /// `ContactListName`.
    pub name: String,
    /// `Description`.
    pub description: String,
    /// `Topics` as a JSON array.
    pub topics: String,
    /// Unix ms.
    pub created_ms: i64,
    /// Unix ms.
    pub updated_ms: i64,
}

/// A contact of a list.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "sqlx", derive(sqlx::FromRow))]
pub struct ContactRow {
    /// The list.
    pub list_name: String,
    /// `EmailAddress` (lowercase).
    pub email: String,
    /// `TopicPreferences` as a JSON object of topic names to `OPT_IN` / `OPT_OUT`.
    pub preferences: String,
    /// `UnsubscribeAll`: 1 or 0.
    pub unsubscribe_all: i64,
    /// `AttributesData` as given.
    pub attributes: String,
    /// Unix ms.
    pub created_ms: i64,
    /// Unix ms.
    pub updated_ms: i64,
}
