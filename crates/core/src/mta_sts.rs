//! MTA-STS (RFC 8461) for the delivery worker: policy discovery with the worker's resolver, the policy files
//! fetched over HTTPS through the callbacks' SSRF-guarded client (`callback_allow_cidrs` opens private
//! networks to it, as to callbacks), trusting `outbound_tls_ca_file` besides the system's roots.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use mailpush_delivery::{MtaSts, MxResolver, PolicyFetcher};
use mailpush_webhook::CallbackClient;

use crate::{CoreError, Settings};

/// RFC 8461 §3.3: senders may refuse policy files larger than 64 KiB.
const MAX_POLICY_BYTES: usize = 64 * 1024;

/// How long a domain's `_mta-sts` TXT record is trusted before it is looked up again: a changed record (a new
/// policy) is seen within this time.
const TXT_CHECK: Duration = Duration::from_secs(3600);

/// Fetches policy files with the guarded client.
struct GuardedFetcher(CallbackClient);

impl PolicyFetcher for GuardedFetcher {
    fn fetch(&self, url: String) -> Pin<Box<dyn Future<Output = Result<String, String>> + Send + 'static>> {
        let client = self.0.clone();
        Box::pin(async move { client.get_text(&url, MAX_POLICY_BYTES).await.map_err(|e| e.to_string()) })
    }
}

/// The worker's MTA-STS discovery, `None` when `mta_sts` is off.
pub(crate) fn discovery(
    s: &Settings,
    resolver: MxResolver,
    trust_roots: &[Vec<u8>],
) -> Result<Option<Arc<MtaSts>>, CoreError> {
    if !s.mta_sts {
        return Ok(None);
    }
    let client = crate::callbacks::client_trusting(s, trust_roots)?;
    Ok(Some(Arc::new(MtaSts::new(
        resolver,
        Arc::new(GuardedFetcher(client)),
        s.mta_sts_policy_port,
        TXT_CHECK,
    ))))
}
