//! One way to build a DNS resolver for every crate that resolves names (MX lookups in delivery, the DKIM/SPF
//! checks of identities, the SSRF-guarded callback client): the configured name servers, each over UDP and TCP
//! on its own port and never the hosts file, or the system's resolv.conf when none is configured.

#![warn(missing_docs)]

use std::net::SocketAddr;

use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::{Resolver, ResolverBuilder, TokioResolver};

/// The resolver could not be configured (no usable resolv.conf).
#[derive(Debug, thiserror::Error)]
#[error("DNS resolver: {0}")]
pub struct ResolverError(pub String);

/// A resolver builder asking exactly `servers` (ip:port, UDP and TCP), never the hosts file; with no `servers`,
/// the system's resolv.conf. Callers set their own options (timeout, caching, address families) before
/// `build()`.
pub fn builder(servers: &[SocketAddr]) -> Result<ResolverBuilder<TokioRuntimeProvider>, ResolverError> {
    if servers.is_empty() {
        return TokioResolver::builder_tokio().map_err(|e| ResolverError(e.to_string()));
    }
    let configs = servers
        .iter()
        .map(|addr| {
            let mut ns = NameServerConfig::udp_and_tcp(addr.ip());
            ns.connections = [ConnectionConfig::udp(), ConnectionConfig::tcp()]
                .into_iter()
                .map(|mut c| {
                    c.port = addr.port();
                    c
                })
                .collect();
            ns
        })
        .collect();
    let mut b = Resolver::builder_with_config(
        ResolverConfig::from_name_servers(configs),
        TokioRuntimeProvider::default(),
    );
    // Explicit servers: answers come from them only, never from /etc/hosts.
    b.options_mut().use_hosts_file = ResolveHosts::Never;
    Ok(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_servers_never_read_the_hosts_file() {
        let server: SocketAddr = "127.0.0.1:5353".parse().expect("addr");
        let mut b = builder(&[server]).expect("builder");
        assert!(matches!(b.options_mut().use_hosts_file, ResolveHosts::Never));
    }
}
