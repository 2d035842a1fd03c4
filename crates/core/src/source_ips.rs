//! Source IPs: named source pools ("dedicated IPs") and the assignment of sending domains to them, the
//! automatic warm-up of each new source address (a daily ramp counted per address and UTC day in the store, so
//! every worker agrees), per-destination shaping settings, and the per-IP usage behind `GetSendQuota` and
//! `/metrics`.
//!
//! The transport (`mailpush-delivery`) picks the member of a pool for each transaction and asks [`WarmupGate`]
//! before it sends from it; mail every member of its pool has no allowance left for is held until the next UTC
//! day ([`warmup_retry_at`]), and the time it waits is added to its retry deadline, so warm-up never makes mail
//! expire.

use crate::Env;
use std::{
    collections::{BTreeSet, HashMap},
    net::IpAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use mailpush_delivery::{DestinationLimits, GateFuture, SHARED_POOL, ShapingConfig, SourceGate, SourcePools};
use mailpush_model::AccountId;
use mailpush_model::{
    SharedClock,
    clock::{DAY_MS, day_start},
};
use mailpush_store::Store;
use mailpush_warmup::WarmupPlan;

use crate::{AccountContext, CoreError, Settings};

/// The named pools of `source_pools`, parsed.
pub fn named_pools(s: &Settings) -> Result<Vec<(String, Vec<IpAddr>)>, CoreError> {
    SourcePools::parse_named(&s.source_pools).map_err(|e| CoreError::Config(format!("source_pools: {e}")))
}

/// Every pool of the settings: `source_ips` as the shared pool plus `source_pools`.
pub fn source_pools(s: &Settings) -> Result<SourcePools, CoreError> {
    Ok(SourcePools::new(s.source_ips.clone(), named_pools(s)?))
}

/// The per-destination shaping of the settings.
pub fn shaping(s: &Settings) -> Result<ShapingConfig, CoreError> {
    let default = DestinationLimits::parse(&s.destination_default_limits)
        .map_err(|e| CoreError::Config(format!("destination_default_limits: {e}")))?;
    let domains = ShapingConfig::parse_domains(&s.destination_limits)
        .map_err(|e| CoreError::Config(format!("destination_limits: {e}")))?;
    Ok(ShapingConfig {
        default,
        domains,
        max_wait: Duration::from_secs(s.destination_max_wait_secs),
        retry_after: Duration::from_secs(s.destination_retry_secs.max(1)),
    })
}

/// The warm-up ramp of new source IPs (`warmup_ip_ramp`; empty = none).
pub fn ip_warmup_plan(s: &Settings) -> Result<WarmupPlan, CoreError> {
    WarmupPlan::new(s.warmup_ip_ramp.clone()).map_err(|e| CoreError::Config(format!("warmup_ip_ramp: {e}")))
}

/// When mail held for warm-up is tried again: the next UTC midnight, when every address has a new allowance.
pub fn warmup_retry_at(now_ms: i64) -> i64 {
    day_start(now_ms) + DAY_MS
}

/// How long the worker trusts its copy of the pool assignments.
const ASSIGNMENTS_TTL: Duration = Duration::from_secs(10);

type AssignmentMap = HashMap<(AccountId, String), String>;
/// The assignments with the time they were loaded.
type CachedAssignments = Option<(Instant, Arc<AssignmentMap>)>;

/// The sending domains' pool assignments, read from the store and cached for a few seconds.
#[derive(Clone)]
pub struct PoolAssignments {
    store: Store,
    cache: Arc<Mutex<CachedAssignments>>,
}

impl std::fmt::Debug for PoolAssignments {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PoolAssignments").finish_non_exhaustive()
    }
}

impl PoolAssignments {
    /// Assignments read from `store`.
    pub fn new(store: Store) -> Self {
        PoolAssignments {
            store,
            cache: Arc::new(Mutex::new(None)),
        }
    }

    /// The pool of the sending domain of `envelope_from` (its own assignment, else its closest parent's);
    /// `None` = the shared pool.
    pub async fn pool_for(&self, account: AccountId, envelope_from: &str) -> Option<String> {
        let (_, domain) = envelope_from.rsplit_once('@')?;
        let domain = domain.to_ascii_lowercase();
        let map = self.current().await;
        if map.is_empty() {
            return None;
        }
        let mut rest = domain.as_str();
        loop {
            if let Some(pool) = map.get(&(account, rest.to_string())) {
                return Some(pool.clone());
            }
            match rest.split_once('.') {
                Some((_, parent)) if parent.contains('.') => rest = parent,
                _ => return None,
            }
        }
    }

    async fn current(&self) -> Arc<AssignmentMap> {
        let stale = {
            let cache = self.cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            match &*cache {
                Some((at, map)) if at.elapsed() < ASSIGNMENTS_TTL => return map.clone(),
                Some((_, map)) => Some(map.clone()),
                None => None,
            }
        };
        match self.store.sources().domain_source_pools().await {
            Ok(rows) => {
                let map: Arc<AssignmentMap> = Arc::new(
                    rows.into_iter()
                        .map(|r| ((r.account_id, r.domain.to_ascii_lowercase()), r.pool))
                        .collect(),
                );
                *self.cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner) =
                    Some((Instant::now(), map.clone()));
                map
            }
            Err(e) => {
                tracing::warn!(error = %e, "reading source pool assignments failed; using the last known ones");
                stale.unwrap_or_default()
            }
        }
    }
}

/// The warm-up gate of the transport: reserves each transaction's recipients against the address's allowance of
/// today in the store (atomically, so workers sharing the database agree), and counts what every address sent.
pub struct WarmupGate {
    store: Store,
    plan: WarmupPlan,
    clock: SharedClock,
}

impl WarmupGate {
    /// A gate with `plan` on `store`, reading days from `clock`.
    pub fn new(store: Store, plan: WarmupPlan, clock: SharedClock) -> Self {
        WarmupGate { store, plan, clock }
    }
}

impl SourceGate for WarmupGate {
    fn reserve(&self, source: IpAddr, wanted: u32) -> GateFuture<'_, Result<u32, String>> {
        Box::pin(async move {
            let now = self.clock.now_ms();
            let plan = &self.plan;
            self.store
                .sources()
                .reserve_source_sends(&source.to_string(), now, wanted, move |first| {
                    plan.allowance(first, now)
                })
                .await
                .map(|r| r.granted)
                .map_err(|e| e.to_string())
        })
    }

    fn release(&self, source: IpAddr, count: u32) -> GateFuture<'_, ()> {
        Box::pin(async move {
            let now = self.clock.now_ms();
            if let Err(e) = self
                .store
                .sources()
                .release_source_sends(&source.to_string(), now, count)
                .await
            {
                tracing::warn!(error = %e, %source, "giving back unused warm-up sends failed");
            }
        })
    }
}

/// One source address as `GetSendQuota` (`SourceIps`) and `/metrics` show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceIpQuota {
    /// The address.
    pub address: IpAddr,
    /// The pool it belongs to (an address in several pools is listed once per pool).
    pub pool: String,
    /// Recipients sent from it today (UTC), by every account.
    pub sent_today: u64,
    /// The day of its warm-up it is in today (1 = its first day; also 1 for an address that never sent).
    pub warmup_day: u64,
    /// Today's warm-up allowance; `None` = no limit (ramp over, or no IP warm-up).
    pub warmup_allowance: Option<u64>,
    /// What is left of it today; `None` = no limit.
    pub remaining_today: Option<u64>,
    /// Start of the UTC day it first sent, Unix ms; `None` = never.
    pub first_used_ms: Option<i64>,
}

/// Source IP pools, their assignment to domains and their warm-up gate.
pub struct SourceIps {
    pub(crate) env: Env,
}

impl SourceIps {
    pub(crate) async fn source_ip_quota(&self, account: &AccountContext) -> Result<Vec<SourceIpQuota>, CoreError> {
        let mut pools: BTreeSet<String> = BTreeSet::from([SHARED_POOL.to_string()]);
        for a in self.env.store.sources().domain_source_pools().await? {
            if a.account_id == account.id {
                pools.insert(a.pool);
            }
        }
        let all = self.all_source_ip_quota().await?;
        Ok(all.into_iter().filter(|q| pools.contains(&q.pool)).collect())
    }

    pub(crate) async fn domain_pool_assignments(
        &self,
    ) -> Result<Vec<mailpush_model::sources::DomainSourcePool>, CoreError> {
        Ok(self.env.store.sources().domain_source_pools().await?)
    }

    pub(crate) async fn all_source_ip_quota(&self) -> Result<Vec<SourceIpQuota>, CoreError> {
        let s = &self.env.settings;
        let pools = source_pools(s)?;
        let plan = ip_warmup_plan(s)?;
        let now = self.env.clock.now_ms();
        let usage: HashMap<String, mailpush_store::SourceIpUsage> = self
            .env
            .store
            .sources()
            .source_ip_usage()
            .await?
            .into_iter()
            .map(|u| (u.ip.clone(), u))
            .collect();
        let mut out = Vec::new();
        for (pool, members) in pools.pools() {
            for ip in members {
                let u = usage.get(&ip.to_string());
                let first = u.map(|u| u.first_day_ms);
                let started = first.unwrap_or_else(|| day_start(now));
                let sent_today = u.map_or(0, |u| u64::try_from(u.sent_on_day_of(now)).unwrap_or(0));
                let allowance = plan.allowance(started, now);
                out.push(SourceIpQuota {
                    address: *ip,
                    pool: pool.to_string(),
                    sent_today,
                    warmup_day: u64::try_from((day_start(now) - day_start(started)) / DAY_MS).unwrap_or(0) + 1,
                    warmup_allowance: allowance,
                    remaining_today: allowance.map(|a| a.saturating_sub(sent_today)),
                    first_used_ms: first,
                });
            }
        }
        Ok(out)
    }

    pub(crate) async fn set_domain_pool(&self, domain: &str, pool: Option<&str>) -> Result<AccountId, CoreError> {
        let pools = source_pools(&self.env.settings)?;
        let pool = pool.filter(|p| *p != SHARED_POOL);
        if let Some(p) = pool
            && !pools.contains(p)
        {
            let known: Vec<&str> = pools.pools().map(|(n, _)| n).collect();
            return Err(CoreError::Config(format!(
                "no source pool named {p} (source_pools declares: {})",
                known.join(", ")
            )));
        }
        let Some(row) = self.env.store.identities().identity_for_admin(domain).await? else {
            return Err(CoreError::Config(format!("no sending domain {domain}")));
        };
        self.env
            .store
            .sources()
            .set_domain_source_pool(row.account_id, &row.domain, pool, self.env.clock.now_ms())
            .await?;
        Ok(row.account_id)
    }

    /// The transport gate counting (and, with a ramp, limiting) each source address's sends.
    pub(crate) fn warmup_gate(&self) -> Result<Arc<dyn SourceGate>, CoreError> {
        let plan = ip_warmup_plan(&self.env.settings)?;
        Ok(Arc::new(WarmupGate::new(
            self.env.store.clone(),
            plan,
            self.env.clock.clone(),
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_parse() {
        mailpush_model::time_zone::set_current(mailpush_model::TimeZone::utc()); // the assertions name UTC midnights
        let s = Settings {
            source_ips: vec!["127.0.0.9".parse().unwrap()],
            source_pools: "vip=127.0.0.4,127.0.0.5".into(),
            destination_limits: "gmail.com=2/5/60".into(),
            ..Settings::default()
        };
        let pools = source_pools(&s).unwrap();
        assert_eq!(pools.members(Some("vip")).len(), 2);
        assert_eq!(pools.members(None).len(), 1);
        let shaped = shaping(&s).unwrap();
        assert_eq!(shaped.limits_for("gmail.com").max_connections, 2);
        assert_eq!(shaped.limits_for("qq.com"), DestinationLimits::default());
        assert_eq!(ip_warmup_plan(&s).unwrap().days()[0], 50);
        let bad = Settings {
            source_pools: "vip".into(),
            ..Settings::default()
        };
        assert!(source_pools(&bad).is_err());
        let bad = Settings {
            destination_default_limits: "x".into(),
            ..Settings::default()
        };
        assert!(shaping(&bad).is_err());
        assert_eq!(warmup_retry_at(1_764_115_200_000 + 5), 1_764_115_200_000 + DAY_MS);
    }
}
