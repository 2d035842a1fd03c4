//! Callbacks: the JSON body Tencent posts for each event, its signature, the SSRF guard and the HTTP client.
//!
//! Signature: `X-Mailpush-Signature: v1=<hex HMAC-SHA256(secret, timestamp + "." + body)>` with
//! `X-Mailpush-Timestamp: <unix seconds>` (the receiver recomputes it over the raw body and compares in
//! constant time, and refuses old timestamps to stop replays).

#![warn(missing_docs)]

use aws_lc_rs::hmac;
use hickory_resolver::TokioResolver;
use hickory_resolver::config::LookupIpStrategy;
use ipnet::IpNet;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// Header carrying the Unix time (seconds) the signature covers.
pub const TIMESTAMP_HEADER: &str = "X-Mailpush-Timestamp";
/// Header carrying `v1=<hex signature>`.
pub const SIGNATURE_HEADER: &str = "X-Mailpush-Signature";
/// Header carrying the event's id (stable across retries: receivers deduplicate with it).
pub const EVENT_ID_HEADER: &str = "X-Mailpush-Event-Id";

/// Why a callback was not delivered.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The URL is not an absolute http(s) URL.
    #[error("callback URL {0:?} must be an absolute http or https URL")]
    BadUrl(String),
    /// The target resolves only to refused addresses (loopback, private, link-local, metadata …).
    #[error("callback target {0} resolves to a refused address (loopback, private, link-local or metadata)")]
    Refused(String),
    /// The request failed (connect, timeout, TLS, refused by the guard while resolving).
    #[error("callback request failed: {0}")]
    Http(String),
    /// The receiver answered but not with 2xx.
    #[error("callback receiver answered HTTP {0}")]
    Status(u16),
}

/// The fields of one callback (Tencent's callback JSON).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallbackPayload {
    /// `delivered`, `dropped`, `bounce`, `open`, `click`, `spamreport`, `unsubscribe`, `deferred`.
    pub event: String,
    /// 1–8.
    pub event_id: i32,
    /// The recipient.
    pub email: String,
    /// For clicks: the link.
    pub link: String,
    /// The MessageId (Tencent's `bulkId`, also `messageId`).
    pub message_id: String,
    /// Event time, Unix seconds.
    pub timestamp: i64,
    /// The reason (remote reply, DSN diagnostic …).
    pub reason: String,
    /// `soft_bounce` / `hard_bounce` for bounces, else empty.
    pub bounce_type: String,
    /// The account name.
    pub username: String,
    /// The sender address.
    pub from: String,
    /// The sender's domain.
    pub from_domain: String,
    /// The template id (0 when not known).
    pub template_id: i64,
    /// The client's User-Agent (opens, clicks).
    pub user_agent: String,
    /// The subject.
    pub subject: String,
    /// When the mail was accepted, Unix seconds.
    pub sent_timestamp: i64,
}

impl CallbackPayload {
    /// The JSON body (Tencent's field names).
    pub fn to_json(&self) -> String {
        serde_json::json!({
            "event": self.event,
            "eventid": self.event_id,
            "email": self.email,
            "link": self.link,
            "bulkId": self.message_id,
            "timestamp": self.timestamp,
            "reason": self.reason,
            "bounceType": self.bounce_type,
            "username": self.username,
            "from": self.from,
            "fromDomain": self.from_domain,
            "templateId": self.template_id,
            "useragent": self.user_agent,
            "subject": self.subject,
            "messageId": self.message_id,
            "sentTimestamp": self.sent_timestamp,
        })
        .to_string()
    }
}

/// `v1=<hex HMAC-SHA256(secret, timestamp "." body)>`.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(timestamp.to_string().as_bytes());
    ctx.update(b".");
    ctx.update(body);
    let tag = ctx.sign();
    let mut hex = String::with_capacity(64 + 3);
    hex.push_str("v1=");
    for b in tag.as_ref() {
        hex.push_str(&format!("{b:02x}"));
    }
    hex
}

/// Verifies a signature made by [`sign`] (constant time); what a receiver does.
pub fn verify(secret: &[u8], timestamp: i64, body: &[u8], signature: &str) -> bool {
    let Some(hex) = signature.strip_prefix("v1=") else {
        return false;
    };
    if hex.len() != 64 {
        return false;
    }
    let mut tag = Vec::with_capacity(32);
    for i in (0..64).step_by(2) {
        match u8::from_str_radix(&hex[i..i + 2], 16) {
            Ok(b) => tag.push(b),
            Err(_) => return false,
        }
    }
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let mut msg = timestamp.to_string().into_bytes();
    msg.push(b'.');
    msg.extend_from_slice(body);
    hmac::verify(&key, &msg, &tag).is_ok()
}

/// Which addresses callbacks may reach.
#[derive(Debug, Clone, Default)]
pub struct SsrfGuard {
    allow: Vec<IpNet>,
}

impl SsrfGuard {
    /// A guard refusing internal addresses except those in `allow`.
    pub fn new(allow: Vec<IpNet>) -> SsrfGuard {
        SsrfGuard { allow }
    }

    /// Whether a connection to `ip` is allowed.
    pub fn allows(&self, ip: IpAddr) -> bool {
        if self.allow.iter().any(|n| n.contains(&ip)) {
            return true;
        }
        !is_internal(ip)
    }
}

/// Loopback, private (RFC 1918, ULA), link-local (incl. 169.254.169.254 metadata), CGNAT, unspecified,
/// multicast, broadcast, documentation and the IPv4-mapped forms of those.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_documentation()
                || o[0] == 0
                || (o[0] == 100 && (o[1] & 0xc0) == 64)
                || (o[0] == 198 && (o[1] & 0xfe) == 18)
                || o[0] >= 240
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_internal(IpAddr::V4(v4));
            }
            let s = v6.segments();
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || (s[0] == 0xfd00 && s[1] == 0x0ec2) // AWS IMDS IPv6 (fd00:ec2::254)
        }
    }
}

/// Builds a hickory resolver asking exactly `servers` (ip:port, as delivery's `dns_servers`), never the hosts
/// file; `None` when `servers` is empty (the system resolver is used then).
fn custom_resolver(servers: &[SocketAddr], timeout: Duration) -> Result<Option<TokioResolver>, WebhookError> {
    if servers.is_empty() {
        return Ok(None);
    }
    let mut b = mailpush_resolver::builder(servers).map_err(|e| WebhookError::Http(e.to_string()))?;
    b.options_mut().timeout = timeout;
    b.options_mut().ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
    b.build()
        .map(Some)
        .map_err(|e| WebhookError::Http(format!("DNS resolver: {e}")))
}

/// A resolver that drops refused addresses, so a host name cannot smuggle an internal target past the guard
/// (the check happens on the addresses actually connected to: no rebinding window).
struct GuardedResolver {
    guard: Arc<SsrfGuard>,
    /// The configured DNS servers (`dns_servers`); `None`: the system resolver.
    dns: Option<TokioResolver>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let guard = self.guard.clone();
        let dns = self.dns.clone();
        Box::pin(async move {
            let host = name.as_str().to_string();
            let addrs: Vec<SocketAddr> = match dns {
                Some(dns) => dns
                    .lookup_ip(host.as_str())
                    .await
                    .map_err(|e| Box::new(WebhookError::Http(format!("resolving {host}: {e}"))))?
                    .iter()
                    .map(|ip| SocketAddr::new(ip, 0))
                    .collect(),
                None => tokio::net::lookup_host((host.as_str(), 0)).await?.collect(),
            };
            let allowed: Vec<SocketAddr> = addrs.into_iter().filter(|a| guard.allows(a.ip())).collect();
            if allowed.is_empty() {
                return Err(Box::new(WebhookError::Refused(host)) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

/// Posts callbacks.
#[derive(Clone)]
pub struct CallbackClient {
    client: reqwest::Client,
    guard: Arc<SsrfGuard>,
}

impl CallbackClient {
    /// A client with `timeout` per request; redirects are not followed (a redirect could lead past the guard).
    /// Host names resolve with the system resolver; see [`CallbackClient::with_dns`].
    pub fn new(guard: SsrfGuard, timeout: Duration) -> Result<CallbackClient, WebhookError> {
        Self::with_dns(guard, timeout, &[])
    }

    /// [`CallbackClient::new`] resolving host names through `dns_servers` (ip:port; empty = the system
    /// resolver), as delivery does; the guard still checks every resolved address.
    pub fn with_dns(
        guard: SsrfGuard,
        timeout: Duration,
        dns_servers: &[SocketAddr],
    ) -> Result<CallbackClient, WebhookError> {
        Self::with_roots(guard, timeout, dns_servers, &[])
    }

    /// [`CallbackClient::with_dns`] trusting the certificates `extra_roots` (DER) as roots for HTTPS besides the
    /// system's: servers under a private CA (MTA-STS policy hosts, tests).
    pub fn with_roots(
        guard: SsrfGuard,
        timeout: Duration,
        dns_servers: &[SocketAddr],
        extra_roots: &[Vec<u8>],
    ) -> Result<CallbackClient, WebhookError> {
        let guard = Arc::new(guard);
        let dns = custom_resolver(dns_servers, timeout)?;
        let roots = extra_roots
            .iter()
            .map(|der| reqwest::Certificate::from_der(der))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| WebhookError::Http(format!("trust roots: {e}")))?;
        let client = reqwest::Client::builder()
            .tls_certs_merge(roots)
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .user_agent(concat!("mailpush-callback/", env!("CARGO_PKG_VERSION")))
            .dns_resolver(Arc::new(GuardedResolver {
                guard: guard.clone(),
                dns,
            }))
            .build()
            .map_err(|e| WebhookError::Http(e.to_string()))?;
        Ok(CallbackClient { client, guard })
    }

    /// Checks a URL's form and, for an IP literal host, the guard (host names are checked when resolved).
    pub fn check_url(&self, url: &str) -> Result<reqwest::Url, WebhookError> {
        let parsed = reqwest::Url::parse(url).map_err(|_| WebhookError::BadUrl(url.to_string()))?;
        if !matches!(parsed.scheme(), "http" | "https") || !parsed.username().is_empty() {
            return Err(WebhookError::BadUrl(url.to_string()));
        }
        let host = parsed
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| WebhookError::BadUrl(url.to_string()))?;
        let literal = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = literal.parse::<IpAddr>()
            && !self.guard.allows(ip)
        {
            return Err(WebhookError::Refused(ip.to_string()));
        }
        Ok(parsed)
    }

    /// POSTs one signed callback; `Ok` only for a 2xx answer.
    pub async fn post(
        &self,
        url: &str,
        secret: &[u8],
        event_ref: &str,
        timestamp: i64,
        body: String,
    ) -> Result<(), WebhookError> {
        let parsed = self.check_url(url)?;
        let signature = sign(secret, timestamp, body.as_bytes());
        let resp = self
            .client
            .post(parsed)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(TIMESTAMP_HEADER, timestamp.to_string())
            .header(SIGNATURE_HEADER, signature)
            .header(EVENT_ID_HEADER, event_ref)
            .body(body)
            .send()
            .await
            .map_err(|e| http_error(&e))?;
        answered(resp.status())
    }

    /// POSTs `body` as `content_type` to `url` (https only, checked by the guard like every request); `Ok` only for
    /// a 2xx answer. TLS-RPT reports (RFC 8460 §5.4) go this way.
    pub async fn post_https(&self, url: &str, content_type: &str, body: Vec<u8>) -> Result<(), WebhookError> {
        let parsed = self.check_url(url)?;
        if parsed.scheme() != "https" {
            return Err(WebhookError::BadUrl(url.to_string()));
        }
        let resp = self
            .client
            .post(parsed)
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body)
            .send()
            .await
            .map_err(|e| http_error(&e))?;
        answered(resp.status())
    }
}

impl CallbackClient {
    /// GETs `url` (https only: the server's certificate verified, redirects not followed, every address checked by
    /// the guard) and returns the body when the answer is 2xx, `text/plain` and at most `max_bytes` long (an
    /// MTA-STS policy file, RFC 8461 §3.3).
    pub async fn get_text(&self, url: &str, max_bytes: usize) -> Result<String, WebhookError> {
        let parsed = self.check_url(url)?;
        if parsed.scheme() != "https" {
            return Err(WebhookError::BadUrl(url.to_string()));
        }
        let mut resp = self.client.get(parsed).send().await.map_err(|e| http_error(&e))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(WebhookError::Status(status.as_u16()));
        }
        let media_type = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|v| v.trim().to_ascii_lowercase());
        if media_type.as_deref() != Some("text/plain") {
            return Err(WebhookError::Http(format!(
                "{url} answered {} instead of text/plain",
                media_type.as_deref().unwrap_or("no Content-Type")
            )));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| http_error(&e))? {
            if body.len() + chunk.len() > max_bytes {
                return Err(WebhookError::Http(format!("{url} is larger than {max_bytes} bytes")));
            }
            body.extend_from_slice(&chunk);
        }
        String::from_utf8(body).map_err(|_| WebhookError::Http(format!("{url} is not UTF-8 text")))
    }
}

/// `Ok` for a 2xx answer, else the status.
fn answered(status: reqwest::StatusCode) -> Result<(), WebhookError> {
    if status.is_success() {
        Ok(())
    } else {
        Err(WebhookError::Status(status.as_u16()))
    }
}

/// A request error with its causes (the guard's refusal surfaces as a connect error's cause: keep it visible).
fn http_error(e: &reqwest::Error) -> WebhookError {
    let mut msg = e.to_string();
    let mut src: Option<&dyn std::error::Error> = std::error::Error::source(e);
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    WebhookError::Http(msg)
}

/// Delay before retry number `attempts` (1-based): 10 s doubling to at most one hour.
pub fn retry_delay(attempts: u32) -> Duration {
    let secs = 10u64.saturating_mul(1u64 << attempts.saturating_sub(1).min(12));
    Duration::from_secs(secs.min(3600))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_round_trip_and_tamper() {
        let s = sign(b"secret", 1_700_000_000, b"{\"a\":1}");
        assert!(s.starts_with("v1=") && s.len() == 67);
        assert!(verify(b"secret", 1_700_000_000, b"{\"a\":1}", &s));
        assert!(!verify(b"secret", 1_700_000_001, b"{\"a\":1}", &s));
        assert!(!verify(b"secret", 1_700_000_000, b"{\"a\":2}", &s));
        assert!(!verify(b"other", 1_700_000_000, b"{\"a\":1}", &s));
        assert!(!verify(b"secret", 1_700_000_000, b"{\"a\":1}", "v1=zz"));
    }

    #[test]
    fn guard_refuses_internal_addresses_unless_allowed() {
        let g = SsrfGuard::default();
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(!g.allows(ip.parse().unwrap()), "{ip}");
        }
        assert!(g.allows("93.184.216.34".parse().unwrap()));
        assert!(g.allows("2606:2800:220:1::1".parse().unwrap()));
        let g = SsrfGuard::new(vec!["127.0.0.0/8".parse().unwrap()]);
        assert!(g.allows("127.0.0.1".parse().unwrap()));
        assert!(!g.allows("10.0.0.1".parse().unwrap()));
    }

    #[tokio::test]
    async fn client_refuses_internal_targets_before_connecting() {
        let c = CallbackClient::new(SsrfGuard::default(), Duration::from_secs(5)).unwrap();
        for url in [
            "http://127.0.0.1:9/x",
            "http://[::1]:9/",
            "http://169.254.169.254/latest/meta-data",
        ] {
            assert!(matches!(c.check_url(url), Err(WebhookError::Refused(_))), "{url}");
        }
        // A name resolving to loopback is refused by the resolver.
        let err = c
            .post("http://localhost:9/x", b"k", "1", 1, "{}".into())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("refused address"), "{err}");
        assert!(matches!(
            c.check_url("ftp://example.com/"),
            Err(WebhookError::BadUrl(_))
        ));
    }

    #[tokio::test]
    async fn names_resolve_through_the_configured_dns_servers_and_stay_guarded() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        // A receiver on loopback, known only to the test's DNS authority (the system resolver has never heard
        // of `hooks.mailpush-test.example`).
        let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = http.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = http.accept().await {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let _ = s
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                    .await;
            }
        });
        let dns = mailpush_testkit::DnsAuthority::start().await.unwrap();
        dns.add_a("hooks.mailpush-test.example", std::net::Ipv4Addr::LOCALHOST);
        let url = format!("http://hooks.mailpush-test.example:{port}/hook");
        let allow_loopback = || SsrfGuard::new(vec!["127.0.0.0/8".parse().unwrap()]);
        let c = CallbackClient::with_dns(allow_loopback(), Duration::from_secs(5), &[dns.addr()]).unwrap();
        c.post(&url, b"k", "1", 1, "{}".into())
            .await
            .expect("delivered through the configured DNS");
        // The guard still applies to what the configured servers answer.
        let guarded = CallbackClient::with_dns(SsrfGuard::default(), Duration::from_secs(5), &[dns.addr()]).unwrap();
        let err = guarded.post(&url, b"k", "1", 1, "{}".into()).await.unwrap_err();
        assert!(err.to_string().contains("refused address"), "{err}");
    }

    #[tokio::test]
    async fn policy_files_are_fetched_over_verified_https_and_stay_guarded() {
        use mailpush_testkit::{DnsAuthority, PolicyAnswer, PolicyServer};
        let host = PolicyServer::start(
            "mta-sts.mailpush-test.example",
            PolicyAnswer::policy("version: STSv1\n"),
        )
        .await
        .unwrap();
        let dns = DnsAuthority::start().await.unwrap();
        dns.add_a("mta-sts.mailpush-test.example", std::net::Ipv4Addr::LOCALHOST);
        let url = format!(
            "https://mta-sts.mailpush-test.example:{}/.well-known/mta-sts.txt",
            host.port()
        );
        let allow_loopback = || SsrfGuard::new(vec!["127.0.0.0/8".parse().unwrap()]);
        let roots = [host.ca_certificate_der().to_vec()];
        let c = CallbackClient::with_roots(allow_loopback(), Duration::from_secs(5), &[dns.addr()], &roots).unwrap();
        assert_eq!(c.get_text(&url, 1024).await.unwrap(), "version: STSv1\n");
        // Too large, or not text/plain: refused.
        assert!(c.get_text(&url, 4).await.is_err());
        host.set_answer(PolicyAnswer {
            content_type: "text/html".into(),
            ..PolicyAnswer::policy("<html>")
        });
        let err = c.get_text(&url, 1024).await.unwrap_err();
        assert!(err.to_string().contains("text/plain"), "{err}");
        // Plain http is not a policy URL.
        assert!(matches!(
            c.get_text("http://mta-sts.mailpush-test.example/x", 1024).await,
            Err(WebhookError::BadUrl(_))
        ));
        // The guard still applies, and the CA must be trusted.
        let guarded =
            CallbackClient::with_roots(SsrfGuard::default(), Duration::from_secs(5), &[dns.addr()], &roots).unwrap();
        let err = guarded.get_text(&url, 1024).await.unwrap_err();
        assert!(err.to_string().contains("refused address"), "{err}");
        let untrusting = CallbackClient::with_dns(allow_loopback(), Duration::from_secs(5), &[dns.addr()]).unwrap();
        assert!(untrusting.get_text(&url, 1024).await.is_err());
    }

    #[test]
    fn payload_has_tencent_field_names() {
        let p = CallbackPayload {
            event: "open".into(),
            event_id: 4,
            message_id: "m".into(),
            ..Default::default()
        };
        let v: serde_json::Value = serde_json::from_str(&p.to_json()).unwrap();
        for k in [
            "event",
            "eventid",
            "email",
            "link",
            "bulkId",
            "timestamp",
            "reason",
            "bounceType",
            "username",
            "from",
            "fromDomain",
            "templateId",
            "useragent",
            "subject",
            "messageId",
            "sentTimestamp",
        ] {
            assert!(v.get(k).is_some(), "{k}");
        }
        assert_eq!(v["bulkId"], "m");
        assert_eq!(v["eventid"], 4);
    }

    #[test]
    fn backoff_grows_to_an_hour() {
        assert_eq!(retry_delay(1), Duration::from_secs(10));
        assert_eq!(retry_delay(2), Duration::from_secs(20));
        assert_eq!(retry_delay(50), Duration::from_secs(3600));
    }
}
