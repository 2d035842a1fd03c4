//! The callback dispatcher: delivers every event of the `events` table (whoever recorded it) to the account's
//! callback URL, signed, at least once. State is per event (`events.cb_*`, migration 0008), never a
//! high-water mark: on PostgreSQL id order is not commit order, so a cursor would skip late commits.
//!
//! Each round reads due events, leases them with one conditional update (`cb_next_ms` pushed forward; two
//! dispatchers never post the same event at the same time), posts them and records the results in one
//! transaction: delivered, no target, retry later with backoff, or given up once `callback_retry_secs` have
//! passed since the event. Events of accounts without a callback URL are recorded with no target at once
//! (`mailpush_store`), so they never reach a round. The kinds Tencent's callback does not know (SES v2's `SEND`,
//! `REJECT`, `RENDERING_FAILURE`, `SUBSCRIPTION`) go to configuration-set event destinations only.

use crate::Env;
use crate::error::CoreError;
use crate::settings::Settings;
use mailpush_model::AccountId;
use mailpush_store::{CallbackEvent, CallbackResult, CallbackState};
use mailpush_webhook::{CallbackClient, CallbackPayload, SsrfGuard};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Events read per round.
const BATCH: i64 = 200;
/// Concurrent POSTs.
const CONCURRENCY: usize = 16;

/// The HTTP client with the SSRF guard from settings.
pub(crate) fn client(s: &Settings) -> Result<CallbackClient, CoreError> {
    client_trusting(s, &[])
}

/// [`client`] trusting `extra_roots` (DER) for HTTPS besides the system's roots: the MTA-STS policy fetches,
/// which go through the same guard.
pub(crate) fn client_trusting(s: &Settings, extra_roots: &[Vec<u8>]) -> Result<CallbackClient, CoreError> {
    let mut allow = Vec::new();
    for c in &s.callback_allow_cidrs {
        allow.push(
            c.trim()
                .parse::<ipnet::IpNet>()
                .map_err(|e| CoreError::Config(format!("callback_allow_cidrs {c:?}: {e}")))?,
        );
    }
    // The same DNS servers as delivery: a deployment that configures its resolvers means all of its lookups.
    CallbackClient::with_roots(
        SsrfGuard::new(allow),
        Duration::from_secs(s.callback_timeout_secs.max(1)),
        &s.dns_servers,
        extra_roots,
    )
    .map_err(|e| CoreError::Config(e.to_string()))
}

/// A running dispatcher (and the bounce-rate monitor started with it); `shutdown` stops both after their
/// current round.
pub struct CallbackHandle {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    monitor: crate::background::BackgroundTask,
}

impl CallbackHandle {
    /// Stops the dispatcher and the monitor.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = tokio::join!(self.task, self.monitor.shutdown());
    }
}

struct AccountInfo {
    name: String,
    secret: Vec<u8>,
    targets: HashMap<String, String>,
    /// The SES event destinations of the account's configuration sets (`configuration_sets.rs`).
    destinations: Vec<mailpush_model::sesv2::EventDestinationRow>,
}

/// Where one event goes: the account's callback URL with mailpush's JSON, and the matching event destinations
/// of the message's configuration set with SES's.
struct Posts {
    callback: Option<String>,
    ses: Vec<(String, String)>,
}

/// The callback dispatcher: signed event POSTs to the accounts' URLs.
pub struct Callbacks {
    pub(crate) env: Env,
    pub(crate) engagement: Arc<crate::engage::Engagement>,
    pub(crate) statistics: Arc<crate::stats::Statistics>,
}

impl Callbacks {
    pub(crate) fn start_callback_dispatcher(self: &Arc<Self>) -> Result<CallbackHandle, CoreError> {
        if self.env.settings.callback_retry_secs < 8 * 3600 {
            return Err(CoreError::Config(
                "callback_retry_secs must be at least 28800 (8 hours)".into(),
            ));
        }
        let client = client(&self.env.settings)?;
        let (stop, mut stop_rx) = watch::channel(false);
        let core = self.clone();
        let task = tokio::spawn(async move {
            loop {
                if *stop_rx.borrow() {
                    break;
                }
                let busy = match core.dispatch_round(&client).await {
                    Ok(n) => n as i64 >= BATCH,
                    Err(e) => {
                        tracing::error!(error = %e, "callback round failed");
                        false
                    }
                };
                if !busy {
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                        _ = stop_rx.changed() => {}
                    }
                }
            }
        });
        let monitor = self.statistics.start_bounce_monitor();
        Ok(CallbackHandle { stop, task, monitor })
    }

    async fn account_info(&self, id: AccountId) -> Result<Option<AccountInfo>, CoreError> {
        let Some(account) = self.env.store.accounts().account(id).await? else {
            return Ok(None);
        };
        let targets: HashMap<String, String> = self
            .env
            .store
            .callbacks()
            .callback_targets(id)
            .await?
            .into_iter()
            .collect();
        let destinations = self
            .env
            .store
            .configuration_sets()
            .destinations(id, None)
            .await?
            .into_iter()
            .filter(|d| d.enabled != 0)
            .collect::<Vec<_>>();
        let secret = if targets.is_empty() && destinations.is_empty() {
            Vec::new()
        } else {
            self.engagement.callback_secret(id, false).await?
        };
        Ok(Some(AccountInfo {
            name: account.name,
            secret,
            targets,
            destinations,
        }))
    }

    /// One round: returns how many due events were seen. The round's events are claimed in one statement and
    /// their results recorded in one transaction, so a round costs two commits however many events it holds.
    async fn dispatch_round(self: &Arc<Self>, client: &CallbackClient) -> Result<usize, CoreError> {
        let now = self.env.clock.now_ms();
        let due = self.env.store.callbacks().due_callbacks(now, BATCH).await?;
        let seen = due.len();
        let lease = now + (self.env.settings.callback_timeout_secs as i64 + 30) * 1000;
        let claims: Vec<(i64, i64)> = due.iter().map(|ev| (ev.event.id, ev.next_ms)).collect();
        let claimed: std::collections::HashSet<i64> = self
            .env
            .store
            .callbacks()
            .claim_callbacks(&claims, lease)
            .await?
            .into_iter()
            .collect();
        let mut accounts: HashMap<AccountId, Option<std::sync::Arc<AccountInfo>>> = HashMap::new();
        let ids: Vec<&str> = due
            .iter()
            .filter(|ev| claimed.contains(&ev.event.id))
            .map(|ev| ev.event.event.message_id.as_str())
            .collect();
        let message_tags: HashMap<String, crate::configuration_sets::MessageSes> = self
            .env
            .store
            .configuration_sets()
            .message_tags(&ids)
            .await?
            .into_iter()
            .map(|r| (r.message_id.clone(), r.into()))
            .collect();
        let mut results = Vec::new();
        let mut jobs = tokio::task::JoinSet::new();
        for ev in due.into_iter().filter(|ev| claimed.contains(&ev.event.id)) {
            let acc = ev.event.event.account_id;
            let info = match accounts.get(&acc) {
                Some(info) => info.clone(),
                None => {
                    let info = self.account_info(acc).await?.map(std::sync::Arc::new);
                    accounts.insert(acc, info.clone());
                    info
                }
            };
            // The Tencent callback carries the kinds its contract knows (eventid 1–8), never the SES-only ones.
            let tencent = ev.event.event.kind.is_tencent();
            let target = info.as_ref().filter(|_| tencent).and_then(|i| {
                i.targets
                    .get(&ev.from_address.to_ascii_lowercase())
                    .or_else(|| i.targets.get(&ev.from_address))
                    .or_else(|| i.targets.get(""))
                    .cloned()
            });
            let ses: Vec<(String, String)> = match (&info, message_tags.get(ev.event.event.message_id.as_str())) {
                (Some(info), Some(ses)) => {
                    let body = crate::configuration_sets::ses_event_json(&ev, ses).to_string();
                    info.destinations
                        .iter()
                        .filter(|d| d.set_name == ses.set && crate::configuration_sets::matches(d, ev.event.event.kind))
                        .map(|d| (d.url.clone(), body.clone()))
                        .collect()
                }
                _ => Vec::new(),
            };
            let posts = Posts { callback: target, ses };
            let Some(info) = info.filter(|_| posts.callback.is_some() || !posts.ses.is_empty()) else {
                results.push(CallbackResult {
                    event_id: ev.event.id,
                    state: CallbackState::NoTarget,
                    attempts: ev.attempts,
                    next_ms: now,
                    error: None,
                });
                continue;
            };
            while jobs.len() >= CONCURRENCY {
                if let Some(Ok(r)) = jobs.join_next().await {
                    results.push(r);
                }
            }
            let core = self.clone();
            let client = client.clone();
            jobs.spawn(async move { core.deliver_callback(&client, &info, &posts, ev).await });
        }
        while let Some(r) = jobs.join_next().await {
            if let Ok(r) = r {
                results.push(r);
            }
        }
        if let Err(err) = self.env.store.callbacks().finish_callbacks(&results).await {
            // The leases expire and the events are posted again: at-least-once.
            tracing::error!(error = %err, "recording callback results failed");
        }
        Ok(seen)
    }

    /// Posts one event to each of its targets; the result to record (delivered when every target took it, else
    /// every target gets it again at the retry: at-least-once).
    async fn deliver_callback(
        &self,
        client: &CallbackClient,
        info: &AccountInfo,
        posts: &Posts,
        ev: CallbackEvent,
    ) -> CallbackResult {
        let e = &ev.event.event;
        let payload = CallbackPayload {
            event: e.kind.as_str().to_string(),
            event_id: e.kind.id(),
            email: e.recipient.clone(),
            link: e.link.clone().unwrap_or_default(),
            message_id: e.message_id.as_str().to_string(),
            timestamp: e.at_ms / 1000,
            reason: e.reason.clone(),
            bounce_type: e.bounce_type.map(|b| b.as_str().to_string()).unwrap_or_default(),
            username: info.name.clone(),
            from: ev.from_address.clone(),
            from_domain: ev
                .from_address
                .rsplit_once('@')
                .map(|(_, d)| d.to_string())
                .unwrap_or_default(),
            template_id: ev.template_id,
            user_agent: e.user_agent.clone().unwrap_or_default(),
            subject: ev.subject.clone(),
            sent_timestamp: ev.request_ms / 1000,
        };
        let now = self.env.clock.now_ms();
        let event_ref = ev.event.id.to_string();
        let mut result = Ok(());
        if let Some(url) = &posts.callback {
            result = client
                .post(url, &info.secret, &event_ref, now / 1000, payload.to_json())
                .await;
        }
        for (url, body) in &posts.ses {
            let r = client
                .post(url, &info.secret, &event_ref, now / 1000, body.clone())
                .await;
            if result.is_ok() {
                result = r;
            }
        }
        let attempts = ev.attempts.saturating_add(1);
        let (state, next_ms, error) = match result {
            Ok(()) => (CallbackState::Delivered, now, None),
            Err(err) => {
                let retry_at = now + mailpush_webhook::retry_delay(attempts as u32).as_millis() as i64;
                let deadline = e.at_ms + self.env.settings.callback_retry_secs as i64 * 1000;
                tracing::info!(event = ev.event.id, attempts, error = %err, "callback not delivered");
                if retry_at > deadline {
                    (CallbackState::GaveUp, now, Some(err.to_string()))
                } else {
                    (CallbackState::Pending, retry_at, Some(err.to_string()))
                }
            }
        };
        mailpush_telemetry::callback(match state {
            CallbackState::Delivered => "delivered",
            CallbackState::GaveUp => "given_up",
            _ => "failed",
        });
        CallbackResult {
            event_id: ev.event.id,
            state,
            attempts,
            next_ms,
            error,
        }
    }
}
