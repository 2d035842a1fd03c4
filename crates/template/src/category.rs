//! Template categories (a mailpush extension field; Tencent has none).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What a template is used for. The review's minimum visible-text length depends on it.
///
/// Parsed case-insensitively from its lowercase name (`"marketing"`), displayed as that name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TemplateCategory {
    /// Triggered by a user action: verification codes, password resets. No minimum length.
    Trigger,
    /// Service notifications (the default).
    #[default]
    Notification,
    /// Receipts, invoices, order updates.
    Transactional,
    /// Promotions and newsletters: held to the longest minimum.
    Marketing,
    /// Templates used for testing the integration.
    Test,
}

impl TemplateCategory {
    /// Every category, in declaration order.
    pub const ALL: [TemplateCategory; 5] = [
        Self::Trigger,
        Self::Notification,
        Self::Transactional,
        Self::Marketing,
        Self::Test,
    ];

    /// The stable lowercase name (`"trigger"`, `"notification"`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Trigger => "trigger",
            Self::Notification => "notification",
            Self::Transactional => "transactional",
            Self::Marketing => "marketing",
            Self::Test => "test",
        }
    }
}

impl fmt::Display for TemplateCategory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The string is not one of the category names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown template category {0:?}; expected one of trigger, notification, transactional, marketing, test")]
pub struct ParseCategoryError(pub String);

impl FromStr for TemplateCategory {
    type Err = ParseCategoryError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim();
        Self::ALL
            .into_iter()
            .find(|c| c.as_str().eq_ignore_ascii_case(wanted))
            .ok_or_else(|| ParseCategoryError(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_defaults() {
        for c in TemplateCategory::ALL {
            assert_eq!(c.to_string().parse::<TemplateCategory>(), Ok(c));
        }
        assert_eq!(" Marketing ".parse(), Ok(TemplateCategory::Marketing));
        assert_eq!(TemplateCategory::default(), TemplateCategory::Notification);
        assert!("promo".parse::<TemplateCategory>().is_err());
        assert_eq!(
            serde_json::to_string(&TemplateCategory::Trigger).ok().as_deref(),
            Some("\"trigger\"")
        );
    }
}
