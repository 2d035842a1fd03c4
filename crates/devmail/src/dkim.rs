//! DKIM verification of stored messages with mail-auth, against given name servers (the dev DNS).

use std::net::SocketAddr;

use hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
use mail_auth::{AuthenticatedMessage, DkimResult, MessageAuthenticator};
use serde::Serialize;

use crate::DevMailError;

/// The verdict on one DKIM signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DkimVerdict {
    /// `d=`.
    pub domain: String,
    /// `s=`.
    pub selector: String,
    /// `a=`, e.g. `RsaSha256`.
    pub algorithm: String,
    /// `pass`, `fail`, `neutral`, `temperror`, `permerror` or `none`.
    pub result: String,
    /// Why, when it did not pass.
    pub detail: String,
}

impl DkimVerdict {
    /// Whether the signature verified.
    pub fn pass(&self) -> bool {
        self.result == "pass"
    }
}

/// Verifies DKIM signatures, looking keys up at the given name servers.
pub struct DkimChecker {
    auth: MessageAuthenticator,
}

impl std::fmt::Debug for DkimChecker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DkimChecker").finish_non_exhaustive()
    }
}

impl DkimChecker {
    /// A checker asking `servers` (UDP and TCP on their own ports), never caching: the dev DNS may change.
    pub fn new(servers: &[SocketAddr]) -> Result<DkimChecker, DevMailError> {
        let name_servers = servers
            .iter()
            .map(|addr| {
                let mut ns = NameServerConfig::udp_and_tcp(addr.ip());
                for c in &mut ns.connections {
                    c.port = addr.port();
                }
                ns
            })
            .collect();
        let mut opts = ResolverOpts::default();
        opts.cache_size = 0;
        let auth = MessageAuthenticator::new(ResolverConfig::from_name_servers(name_servers), opts)
            .map_err(|e| DevMailError::Resolver(e.to_string()))?;
        Ok(DkimChecker { auth })
    }

    /// One verdict per signature of `raw`; none when it has no signature (or is no message).
    pub async fn check(&self, raw: &[u8]) -> Vec<DkimVerdict> {
        let Some(msg) = AuthenticatedMessage::parse(raw) else {
            return Vec::new();
        };
        self.auth
            .verify_dkim(&msg)
            .await
            .iter()
            .map(|o| {
                let (result, detail) = match o.result() {
                    DkimResult::Pass => ("pass", String::new()),
                    DkimResult::Neutral(e) => ("neutral", e.to_string()),
                    DkimResult::Fail(e) => ("fail", e.to_string()),
                    DkimResult::PermError(e) => ("permerror", e.to_string()),
                    DkimResult::TempError(e) => ("temperror", e.to_string()),
                    DkimResult::None => ("none", String::new()),
                };
                let sig = o.signature();
                DkimVerdict {
                    domain: sig.map(|s| s.d.clone()).unwrap_or_default(),
                    selector: sig.map(|s| s.s.clone()).unwrap_or_default(),
                    algorithm: sig.map(|s| format!("{:?}", s.a)).unwrap_or_default(),
                    result: result.to_string(),
                    detail,
                }
            })
            .collect()
    }
}
