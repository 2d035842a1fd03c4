//! What the Tencent identity models carry beyond DNS: the domains' tags (`TagList`: stored, returned,
//! filterable) and the source addresses a domain sends from (`SendIp`: the members of its source pool).

use std::collections::BTreeMap;

use mailpush_model::ErrorCode;
use mailpush_model::identity::IdentityTag;

use crate::identity::Identities;
use crate::source_ips::SourceIps;
use crate::source_ips::source_pools;
use crate::{AccountContext, CoreError};

/// Most tags one domain carries.
pub const MAX_TAGS: usize = 50;

fn check_tags(tags: &[IdentityTag]) -> Result<(), CoreError> {
    if tags.len() > MAX_TAGS {
        return Err(CoreError::refused(
            ErrorCode::InvalidParameterValue,
            format!("TagList holds at most {MAX_TAGS} tags"),
        ));
    }
    for t in tags {
        let key_ok = !t.key.trim().is_empty() && t.key.chars().count() <= 127;
        let value_ok = t.value.chars().count() <= 255;
        if !key_ok || !value_ok || t.key.chars().chain(t.value.chars()).any(char::is_control) {
            return Err(CoreError::refused(
                ErrorCode::InvalidParameterValue,
                format!(
                    "tag {:?}={:?}: TagKey must be 1-127 characters, TagValue at most 255",
                    t.key, t.value
                ),
            ));
        }
    }
    Ok(())
}

impl Identities {
    pub(crate) async fn set_identity_tags(
        &self,
        account: &AccountContext,
        domain: &str,
        tags: &[IdentityTag],
    ) -> Result<(), CoreError> {
        check_tags(tags)?;
        let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
        Ok(self
            .env
            .store
            .identity_tags()
            .set_identity_tags(account.id, &domain, tags)
            .await?)
    }

    pub(crate) async fn identity_tags(
        &self,
        account: &AccountContext,
    ) -> Result<BTreeMap<String, Vec<IdentityTag>>, CoreError> {
        Ok(self.env.store.identity_tags().identity_tags(account.id).await?)
    }
}

impl SourceIps {
    pub(crate) async fn identity_send_ips(
        &self,
        account: &AccountContext,
        domain: &str,
    ) -> Result<Vec<String>, CoreError> {
        let pools = source_pools(&self.env.settings)?;
        let assignments: BTreeMap<String, String> = self
            .domain_pool_assignments()
            .await?
            .into_iter()
            .filter(|a| a.account_id == account.id)
            .map(|a| (a.domain.to_ascii_lowercase(), a.pool))
            .collect();
        let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
        let mut rest = domain.as_str();
        let pool = loop {
            if let Some(pool) = assignments.get(rest) {
                break Some(pool.as_str());
            }
            match rest.split_once('.') {
                Some((_, parent)) if parent.contains('.') => rest = parent,
                _ => break None,
            }
        };
        Ok(pools.members(pool).iter().map(ToString::to_string).collect())
    }
}

/// Whether `tags` holds every (key, value) pair of `wanted` (an empty `wanted` matches everything).
pub fn tags_match(tags: &[IdentityTag], wanted: &[IdentityTag]) -> bool {
    wanted
        .iter()
        .all(|w| tags.iter().any(|t| t.key == w.key && t.value == w.value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(k: &str, v: &str) -> IdentityTag {
        IdentityTag {
            key: k.into(),
            value: v.into(),
        }
    }

    #[test]
    fn a_filter_matches_domains_with_every_pair() {
        let tags = [tag("team", "growth"), tag("env", "prod")];
        assert!(tags_match(&tags, &[]));
        assert!(tags_match(&tags, &[tag("env", "prod")]));
        assert!(tags_match(&tags, &[tag("env", "prod"), tag("team", "growth")]));
        assert!(!tags_match(&tags, &[tag("env", "test")]));
        assert!(!tags_match(&tags, &[tag("env", "prod"), tag("owner", "x")]));
        assert!(!tags_match(&[], &[tag("env", "prod")]));
    }

    #[test]
    fn bad_tags_are_refused() {
        assert!(check_tags(&[tag("team", "")]).is_ok());
        assert!(check_tags(&[tag("", "x")]).is_err());
        assert!(check_tags(&[tag(&"k".repeat(128), "x")]).is_err());
        assert!(check_tags(&[tag("k", &"v".repeat(256))]).is_err());
        assert!(check_tags(&[tag("k\n", "x")]).is_err());
        let many: Vec<IdentityTag> = (0..=MAX_TAGS).map(|i| tag(&format!("k{i}"), "v")).collect();
        assert!(check_tags(&many).is_err());
    }
}
