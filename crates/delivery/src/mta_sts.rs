//! MTA-STS (RFC 8461): a receiving domain publishes `_mta-sts.<domain>` TXT (`v=STSv1; id=…`) and a policy file
//! at `https://mta-sts.<domain>/.well-known/mta-sts.txt` naming its MX hosts and a mode. Under `mode: enforce`
//! mail goes only to an MX host the policy names, over STARTTLS with a certificate that verifies for that host;
//! `testing` only reports (TLS-RPT), `none` withdraws a policy.
//!
//! [`MtaSts`] discovers and caches policies: the TXT record is looked up at most once per
//! [`MtaSts::txt_check`] per domain, the policy file fetched again only when the record's `id` changes, and a
//! cached policy stays in force until its `max_age` runs out, even when the record disappears or the policy host
//! cannot be reached (RFC 8461 §3.3, §5.1). The HTTPS fetch is the caller's ([`PolicyFetcher`]): mailpush's goes
//! through the callbacks' SSRF guard.

use std::{
    collections::HashMap,
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use crate::resolve::MxResolver;

/// Longest `max_age` a policy may give (RFC 8461 §3.2: 31557600 seconds, about a year).
pub const MAX_POLICY_AGE: Duration = Duration::from_secs(31_557_600);

/// Why a policy file or record is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MtaStsError {
    /// A required field (`version`, `mode`, `max_age`, or `mx` outside `mode: none`) is missing.
    #[error("MTA-STS policy: no {0} field")]
    Missing(&'static str),
    /// A field's value is not what RFC 8461 allows.
    #[error("MTA-STS policy: invalid {field} {value:?}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// Its value.
        value: String,
    },
    /// A line that is not `key: value`.
    #[error("MTA-STS policy: line {0:?} is not key: value")]
    Syntax(String),
}

/// What a policy asks of senders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MtaStsMode {
    /// Deliver only to a named MX host over verified TLS; otherwise do not deliver.
    Enforce,
    /// Check as `enforce` would and report failures, but deliver anyway.
    Testing,
    /// No policy (a domain withdrawing one).
    None,
}

/// A parsed policy file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MtaStsPolicy {
    /// The mode.
    pub mode: MtaStsMode,
    /// MX host patterns: a host name, or `*.` and a domain for any one label in front of it.
    pub mx: Vec<String>,
    /// How long the policy may be cached.
    pub max_age: Duration,
}

impl MtaStsPolicy {
    /// Parses a policy file (RFC 8461 §3.2): `key: value` lines ended by CRLF or LF, `version: STSv1`, `mode`,
    /// `max_age` (seconds, at most [`MAX_POLICY_AGE`]) and one `mx` line per pattern (at least one unless the mode
    /// is `none`). Unknown keys are ignored; of a repeated key other than `mx`, the first counts.
    pub fn parse(text: &str) -> Result<MtaStsPolicy, MtaStsError> {
        let mut version = None;
        let mut mode = None;
        let mut max_age = None;
        let mut mx = Vec::new();
        for line in text.split('\n') {
            let line = line.strip_suffix('\r').unwrap_or(line).trim();
            if line.is_empty() {
                continue;
            }
            let (key, value) = line
                .split_once(':')
                .ok_or_else(|| MtaStsError::Syntax(line.chars().take(80).collect()))?;
            let (key, value) = (key.trim(), value.trim());
            let invalid = |field: &'static str| MtaStsError::Invalid {
                field,
                value: value.chars().take(80).collect(),
            };
            match key.to_ascii_lowercase().as_str() {
                "version" if version.is_none() => {
                    if value != "STSv1" {
                        return Err(invalid("version"));
                    }
                    version = Some(());
                }
                "mode" if mode.is_none() => {
                    mode = Some(match value.to_ascii_lowercase().as_str() {
                        "enforce" => MtaStsMode::Enforce,
                        "testing" => MtaStsMode::Testing,
                        "none" => MtaStsMode::None,
                        _ => return Err(invalid("mode")),
                    });
                }
                "max_age" if max_age.is_none() => {
                    let secs: u64 =
                        (!value.is_empty() && value.len() <= 10 && value.bytes().all(|b| b.is_ascii_digit()))
                            .then(|| value.parse().ok())
                            .flatten()
                            .filter(|s| *s <= MAX_POLICY_AGE.as_secs())
                            .ok_or_else(|| invalid("max_age"))?;
                    max_age = Some(Duration::from_secs(secs));
                }
                "mx" => {
                    if !valid_mx_pattern(value) {
                        return Err(invalid("mx"));
                    }
                    mx.push(value.trim_end_matches('.').to_ascii_lowercase());
                }
                _ => {}
            }
        }
        version.ok_or(MtaStsError::Missing("version"))?;
        let mode = mode.ok_or(MtaStsError::Missing("mode"))?;
        let max_age = max_age.ok_or(MtaStsError::Missing("max_age"))?;
        if mx.is_empty() && mode != MtaStsMode::None {
            return Err(MtaStsError::Missing("mx"));
        }
        Ok(MtaStsPolicy { mode, mx, max_age })
    }

    /// Whether the MX host `host` is one the policy names.
    pub fn allows_mx(&self, host: &str) -> bool {
        self.mx.iter().any(|p| mx_pattern_matches(p, host))
    }
}

/// A host name, possibly with a leading `*.` (RFC 8461 §3.2 `mx` values): labels of letters, digits and hyphens.
fn valid_mx_pattern(p: &str) -> bool {
    let name = p.strip_prefix("*.").unwrap_or(p).trim_end_matches('.');
    !name.is_empty()
        && name.len() <= 253
        && name
            .split('.')
            .all(|l| !l.is_empty() && l.len() <= 63 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
}

/// RFC 8461 §4.1: `pattern` matches `host` when equal (case-insensitive, a trailing dot ignored), or when the
/// pattern is `*.` and a domain and the host is exactly one label more than that domain.
pub fn mx_pattern_matches(pattern: &str, host: &str) -> bool {
    let pattern = pattern.trim_end_matches('.').to_ascii_lowercase();
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    match pattern.strip_prefix("*.") {
        Some(domain) => host
            .split_once('.')
            .is_some_and(|(label, rest)| !label.is_empty() && rest == domain),
        None => host == pattern,
    }
}

/// The `id` of an `_mta-sts` TXT record (`v=STSv1; id=…`), read with mail-auth's record parser.
pub fn parse_sts_record(text: &str) -> Option<String> {
    use mail_auth::common::parse::TxtRecordParser;
    mail_auth::mta_sts::MtaSts::parse(text.as_bytes())
        .ok()
        .map(|r| r.id)
        .filter(|id| !id.is_empty() && id.len() <= 32 && id.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// Fetches a policy file: `Ok` with its text for a 2xx `text/plain` answer, `Err` with the reason otherwise.
/// Implementations follow no redirects and verify the server's certificate.
pub trait PolicyFetcher: Send + Sync + 'static {
    /// GETs `url`.
    fn fetch(&self, url: String) -> Pin<Box<dyn Future<Output = Result<String, String>> + Send + 'static>>;
}

/// Where a domain's policy stands in the cache.
struct Cached {
    /// The record's `id` the policy was fetched for.
    id: String,
    /// The policy; `None` when none could be had (the record is still remembered, so it is not refetched at once).
    policy: Option<Arc<MtaStsPolicy>>,
    /// When the policy stops being usable (`max_age` after it was fetched).
    expires: Instant,
    /// When the TXT record was last looked up.
    checked: Instant,
}

/// Policy discovery and cache, shared by every delivery of a transport.
pub struct MtaSts {
    resolver: MxResolver,
    fetcher: Arc<dyn PolicyFetcher>,
    /// The HTTPS port of policy hosts: 443; tests point it at their server.
    policy_port: u16,
    /// How long a TXT lookup is trusted before the next one.
    txt_check: Duration,
    cache: Mutex<HashMap<String, Cached>>,
}

impl std::fmt::Debug for MtaSts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MtaSts")
            .field("policy_port", &self.policy_port)
            .field("txt_check", &self.txt_check)
            .finish_non_exhaustive()
    }
}

impl MtaSts {
    /// Discovery through `resolver` (the `_mta-sts` TXT records) and `fetcher` (the policy files on
    /// `policy_port`), looking a domain's record up again at most every `txt_check`.
    pub fn new(resolver: MxResolver, fetcher: Arc<dyn PolicyFetcher>, policy_port: u16, txt_check: Duration) -> Self {
        MtaSts {
            resolver,
            fetcher,
            policy_port,
            txt_check,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// How long a domain's TXT record is trusted before it is looked up again.
    pub fn txt_check(&self) -> Duration {
        self.txt_check
    }

    /// The URL of `domain`'s policy file.
    pub fn policy_url(&self, domain: &str) -> String {
        match self.policy_port {
            443 => format!("https://mta-sts.{domain}/.well-known/mta-sts.txt"),
            port => format!("https://mta-sts.{domain}:{port}/.well-known/mta-sts.txt"),
        }
    }

    fn cached(&self) -> std::sync::MutexGuard<'_, HashMap<String, Cached>> {
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The policy in force for `domain` (lower-case ASCII), `None` when it has none (or `mode: none`). Never fails:
    /// DNS and fetch trouble leave a cached policy in force until its `max_age`, and without one the domain is
    /// treated as having no policy (RFC 8461 §5).
    pub async fn policy(&self, domain: &str) -> Option<Arc<MtaStsPolicy>> {
        let now = Instant::now();
        let (known_id, cached_policy) = {
            let cache = self.cached();
            match cache.get(domain) {
                Some(c) if now.duration_since(c.checked) < self.txt_check => {
                    return c.policy.clone().filter(|_| now < c.expires).filter(in_force);
                }
                Some(c) => (Some(c.id.clone()), c.policy.clone().filter(|_| now < c.expires)),
                None => (None, None),
            }
        };
        let id = match self.resolver.txt(&format!("_mta-sts.{domain}")).await {
            Ok(records) => {
                let ids: Vec<String> = records.iter().filter_map(|r| parse_sts_record(r)).collect();
                // RFC 8461 §3.1: more than one STSv1 record is as none.
                if ids.len() == 1 { ids.into_iter().next() } else { None }
            }
            Err(_) => None,
        };
        let Some(id) = id else {
            // No usable record (or DNS trouble): a cached policy stays in force until it expires.
            self.touch(domain, now);
            return cached_policy.filter(in_force);
        };
        if known_id.as_deref() == Some(id.as_str()) && cached_policy.is_some() {
            self.touch(domain, now);
            return cached_policy.filter(in_force);
        }
        let fetched = match self.fetcher.fetch(self.policy_url(domain)).await {
            Ok(text) => MtaStsPolicy::parse(&text).map_err(|e| e.to_string()),
            Err(e) => Err(e),
        };
        match fetched {
            Ok(policy) => {
                let policy = Arc::new(policy);
                self.cached().insert(
                    domain.to_string(),
                    Cached {
                        id,
                        expires: now + policy.max_age,
                        policy: Some(policy.clone()),
                        checked: now,
                    },
                );
                Some(policy).filter(in_force)
            }
            Err(reason) => {
                tracing::debug!(domain, %reason, "MTA-STS policy fetch failed");
                // Keep the previous policy (if any) until it expires; try the fetch again after `txt_check`.
                self.touch(domain, now);
                cached_policy.filter(in_force)
            }
        }
    }

    /// Notes that `domain`'s record was looked up now. A domain seen for the first time is remembered without
    /// a policy: a domain that publishes no record (most of them) is then looked up once per `txt_check` too,
    /// not once per delivery.
    fn touch(&self, domain: &str, now: Instant) {
        self.cached()
            .entry(domain.to_string())
            .and_modify(|c| c.checked = now)
            .or_insert(Cached {
                id: String::new(),
                policy: None,
                expires: now,
                checked: now,
            });
    }
}

/// A policy that asks anything of senders (`enforce` or `testing`).
fn in_force(p: &Arc<MtaStsPolicy>) -> bool {
    p.mode != MtaStsMode::None
}

/// The kinds of TLS failure RFC 8460 (TLS-RPT) reports, told from a transport's deferral text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TlsFailure {
    /// The MX offers no STARTTLS (or refused it).
    StartTlsNotSupported,
    /// The certificate does not name the MX host.
    CertificateHostMismatch,
    /// The certificate chain does not lead to a trusted root.
    CertificateNotTrusted,
    /// The certificate has expired (or is not yet valid).
    CertificateExpired,
    /// Any other handshake or validation failure.
    ValidationFailure,
    /// No MX host of the domain is one the MTA-STS policy names.
    MxMismatch,
}

impl TlsFailure {
    /// The RFC 8460 §4.3 result type.
    pub fn result_type(self) -> &'static str {
        match self {
            TlsFailure::StartTlsNotSupported => "starttls-not-supported",
            TlsFailure::CertificateHostMismatch => "certificate-host-mismatch",
            TlsFailure::CertificateNotTrusted => "certificate-not-trusted",
            TlsFailure::CertificateExpired => "certificate-expired",
            TlsFailure::ValidationFailure => "validation-failure",
            TlsFailure::MxMismatch => "validation-failure",
        }
    }

    /// A short phrase for delivery status text.
    pub fn describe(self) -> &'static str {
        match self {
            TlsFailure::StartTlsNotSupported => "STARTTLS not offered",
            TlsFailure::CertificateHostMismatch => "certificate name mismatch",
            TlsFailure::CertificateNotTrusted => "certificate not trusted",
            TlsFailure::CertificateExpired => "certificate expired",
            TlsFailure::ValidationFailure => "TLS validation failure",
            TlsFailure::MxMismatch => "MX host not in the policy",
        }
    }

    /// Tells a verified-TLS failure from the reason the transport gave (`4.7.4 …` / `4.7.5 …`); `None` for other
    /// reasons (connection trouble, a receiver's reply).
    pub fn from_reason(reason: &str) -> Option<TlsFailure> {
        let lower = reason.to_ascii_lowercase();
        if lower.starts_with("4.7.4 ") || lower.contains("starttls refused") {
            return Some(TlsFailure::StartTlsNotSupported);
        }
        if !lower.starts_with("4.7.5 ") {
            return None;
        }
        Some(
            if lower.contains("notvalidforname") || lower.contains("not valid for name") {
                TlsFailure::CertificateHostMismatch
            } else if lower.contains("expired") || lower.contains("notvalidyet") {
                TlsFailure::CertificateExpired
            } else if lower.contains("unknownissuer")
                || lower.contains("unknown issuer")
                || lower.contains("badsignature")
            {
                TlsFailure::CertificateNotTrusted
            } else {
                TlsFailure::ValidationFailure
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_rfc_example_and_line_ending_variants() {
        let text = "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.example.net\r\nmx: backupmx.example.com\r\nmax_age: 604800\r\n";
        let p = MtaStsPolicy::parse(text).unwrap();
        assert_eq!(p.mode, MtaStsMode::Enforce);
        assert_eq!(p.mx, ["mail.example.com", "*.example.net", "backupmx.example.com"]);
        assert_eq!(p.max_age, Duration::from_secs(604_800));
        assert_eq!(MtaStsPolicy::parse(&text.replace("\r\n", "\n")).unwrap(), p);
        // Unknown keys are ignored; case of keys and modes does not matter; spaces around values are.
        let p =
            MtaStsPolicy::parse("Version: STSv1\nMODE: Testing\nmx:  MX.Example.org. \nmax_age:86400\nextension: x\n")
                .unwrap();
        assert_eq!(
            (p.mode, p.mx.as_slice()),
            (MtaStsMode::Testing, &["mx.example.org".to_string()][..])
        );
        // `none` needs no mx.
        assert_eq!(
            MtaStsPolicy::parse("version: STSv1\nmode: none\nmax_age: 0\n")
                .unwrap()
                .mode,
            MtaStsMode::None
        );
    }

    #[test]
    fn refuses_what_rfc_8461_does_not_allow() {
        let ok = "version: STSv1\nmode: enforce\nmx: mx.example.com\nmax_age: 86400\n";
        assert!(MtaStsPolicy::parse(ok).is_ok());
        for (bad, what) in [
            (ok.replace("STSv1", "STSv2"), "version"),
            (ok.replace("enforce", "strict"), "mode"),
            (ok.replace("86400", "31557601"), "max_age"),
            (ok.replace("86400", "-1"), "max_age"),
            (ok.replace("86400", "12345678901"), "max_age"),
            (ok.replace("mx.example.com", "mx example.com"), "mx"),
            (ok.replace("mx.example.com", "*.*.example.com"), "mx"),
        ] {
            assert!(
                matches!(MtaStsPolicy::parse(&bad), Err(MtaStsError::Invalid { field, .. }) if field == what),
                "{bad}"
            );
        }
        assert_eq!(
            MtaStsPolicy::parse("mode: enforce\nmx: a.example\nmax_age: 1\n"),
            Err(MtaStsError::Missing("version"))
        );
        assert_eq!(
            MtaStsPolicy::parse("version: STSv1\nmode: enforce\nmax_age: 1\n"),
            Err(MtaStsError::Missing("mx"))
        );
        assert_eq!(
            MtaStsPolicy::parse("version: STSv1\nmode: testing\nmx: a.example\n"),
            Err(MtaStsError::Missing("max_age"))
        );
        assert!(matches!(
            MtaStsPolicy::parse("version: STSv1\n<html>\n"),
            Err(MtaStsError::Syntax(_))
        ));
    }

    #[test]
    fn mx_patterns_match_as_rfc_8461_section_4_1_says() {
        assert!(mx_pattern_matches("mail.example.com", "MAIL.example.com."));
        assert!(!mx_pattern_matches("mail.example.com", "mail2.example.com"));
        assert!(mx_pattern_matches("*.example.net", "mx1.example.net"));
        assert!(!mx_pattern_matches("*.example.net", "example.net"));
        assert!(!mx_pattern_matches("*.example.net", "a.b.example.net"));
        assert!(!mx_pattern_matches("*.example.net", "mx1.example.network"));
        assert!(!mx_pattern_matches("*.example.net", ".example.net"));
    }

    #[test]
    fn sts_records() {
        assert_eq!(
            parse_sts_record("v=STSv1; id=20160831085700Z;").as_deref(),
            Some("20160831085700Z")
        );
        assert_eq!(parse_sts_record("v=STSv1; id=abc").as_deref(), Some("abc"));
        assert_eq!(parse_sts_record("v=STSv2; id=abc"), None);
        assert_eq!(parse_sts_record("id=abc"), None);
        assert_eq!(parse_sts_record("v=STSv1; id=a_b"), None);
    }

    #[test]
    fn tls_failures_are_told_from_transport_reasons() {
        let cases = [
            (
                "4.7.4 TLS is required but mx[1.2.3.4]:25 does not offer STARTTLS",
                Some(TlsFailure::StartTlsNotSupported),
            ),
            (
                "4.7.5 TLS handshake with mx[1.2.3.4]:25 failed: invalid peer certificate: NotValidForName",
                Some(TlsFailure::CertificateHostMismatch),
            ),
            (
                "4.7.5 TLS handshake with mx failed: invalid peer certificate: certificate not valid for name \"mx\"",
                Some(TlsFailure::CertificateHostMismatch),
            ),
            (
                "4.7.5 TLS handshake with mx failed: invalid peer certificate: UnknownIssuer",
                Some(TlsFailure::CertificateNotTrusted),
            ),
            (
                "4.7.5 TLS handshake with mx failed: invalid peer certificate: Expired",
                Some(TlsFailure::CertificateExpired),
            ),
            (
                "4.7.5 TLS handshake with mx failed: connection reset",
                Some(TlsFailure::ValidationFailure),
            ),
            ("4.4.1 connection to mx refused", None),
            ("451 4.7.1 try later", None),
        ];
        for (reason, want) in cases {
            assert_eq!(TlsFailure::from_reason(reason), want, "{reason}");
        }
        assert_eq!(
            TlsFailure::CertificateHostMismatch.result_type(),
            "certificate-host-mismatch"
        );
    }

    proptest::proptest! {
        /// A policy written from parts parses back to those parts, whatever the line endings and spacing.
        #[test]
        fn written_policies_parse_back(
            mode in proptest::sample::select(vec!["enforce", "testing"]),
            mx in proptest::collection::vec("(\\*\\.)?[a-z0-9]{1,10}(\\.[a-z0-9]{1,10}){1,3}", 1..5),
            max_age in 0u64..=31_557_600,
            crlf in proptest::bool::ANY,
            pad in "[ \t]{0,2}",
        ) {
            let eol = if crlf { "\r\n" } else { "\n" };
            let mut text = format!("version:{pad}STSv1{eol}mode:{pad}{mode}{eol}");
            for m in &mx {
                text.push_str(&format!("mx:{pad}{m}{pad}{eol}"));
            }
            text.push_str(&format!("max_age: {max_age}{eol}"));
            let p = MtaStsPolicy::parse(&text).unwrap();
            proptest::prop_assert_eq!(&p.mx, &mx);
            proptest::prop_assert_eq!(p.max_age, Duration::from_secs(max_age));
            for m in &mx {
                let host = m.strip_prefix("*.").map_or_else(|| m.clone(), |d| format!("mx1.{d}"));
                proptest::prop_assert!(p.allows_mx(&host));
            }
        }

        /// Parsing never panics, whatever the bytes.
        #[test]
        fn parsing_arbitrary_text_never_panics(text in "\\PC{0,200}") {
            let _ = MtaStsPolicy::parse(&text);
        }

        /// A wildcard never matches the bare domain or a host two labels deeper.
        #[test]
        fn wildcards_cover_exactly_one_label(label in "[a-z0-9-]{1,20}", domain in "[a-z0-9]{1,10}\\.[a-z]{2,5}") {
            let pattern = format!("*.{domain}");
            let one_label = format!("{label}.{domain}");
            let two_labels = format!("x.{label}.{domain}");
            proptest::prop_assert!(mx_pattern_matches(&pattern, &one_label));
            proptest::prop_assert!(!mx_pattern_matches(&pattern, &domain));
            proptest::prop_assert!(!mx_pattern_matches(&pattern, &two_labels));
        }
    }
}
