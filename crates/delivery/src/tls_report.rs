//! What a TLS-RPT (RFC 8460) reporter learns from the transport: the TLS outcome of each new SMTP session
//! towards a receiving domain, under the policy that applied to it (MTA-STS, DANE, or none).
//!
//! The transport hands every outcome to a [`TlsReportSink`] as it happens; counting and reporting are the sink's
//! (mailpush-core folds them per domain and day in memory). Only sessions whose TLS negotiation was decided are
//! reported: a refused connection or a silent host is not a TLS outcome.

use std::net::IpAddr;
use std::sync::Arc;

use crate::{
    dane::{DanePolicy, TlsaRecord},
    mta_sts::{MtaStsMode, MtaStsPolicy},
};

/// The RFC 8460 §4.4 `policy-type` of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TlsPolicyType {
    /// An MTA-STS policy (`enforce` or `testing`).
    Sts,
    /// DANE: the MX host's TLSA records.
    Tlsa,
    /// Neither.
    NoPolicyFound,
}

impl TlsPolicyType {
    /// The report's spelling: `sts`, `tlsa`, `no-policy-found`.
    pub fn as_str(self) -> &'static str {
        match self {
            TlsPolicyType::Sts => "sts",
            TlsPolicyType::Tlsa => "tlsa",
            TlsPolicyType::NoPolicyFound => "no-policy-found",
        }
    }
}

/// Why a session's TLS failed, with the failure details RFC 8460 §4.4 asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSessionFailure {
    /// The RFC 8460 §4.3 result type (`certificate-host-mismatch`, `starttls-not-supported`, …).
    pub result_type: &'static str,
    /// The address the session was sent from, when a source address was chosen.
    pub sending_mta_ip: Option<IpAddr>,
    /// The MX host.
    pub receiving_mx_hostname: String,
    /// The MX address, when one was dialled.
    pub receiving_ip: Option<IpAddr>,
    /// What went wrong, as the transport said it.
    pub failure_reason_code: String,
}

/// The TLS outcome of one new session (or of an MX host not tried because of its policy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSessionOutcome {
    /// The receiving domain (the recipients' domain): whose `_smtp._tls` record says where reports go.
    pub policy_domain: String,
    /// The policy that applied.
    pub policy_type: TlsPolicyType,
    /// The policy's strings: the MTA-STS policy's lines, or the TLSA records in presentation form.
    pub policy_strings: Vec<String>,
    /// The MX host patterns of the MTA-STS policy, or the MX host the TLSA records are for.
    pub mx_hosts: Vec<String>,
    /// `None` for a successful session.
    pub failure: Option<TlsSessionFailure>,
}

/// Receives the TLS outcome of every new session; called on the delivery path, so it must be cheap and never block
/// for long (fold in memory, write elsewhere).
pub trait TlsReportSink: Send + Sync + 'static {
    /// One session's outcome.
    fn record(&self, outcome: TlsSessionOutcome);
}

impl MtaStsPolicy {
    /// The policy file's lines as a TLS-RPT report shows them (RFC 8460 §4.4 `policy-string`).
    pub fn policy_strings(&self) -> Vec<String> {
        let mode = match self.mode {
            MtaStsMode::Enforce => "enforce",
            MtaStsMode::Testing => "testing",
            MtaStsMode::None => "none",
        };
        let mut lines = vec!["version: STSv1".to_string(), format!("mode: {mode}")];
        lines.extend(self.mx.iter().map(|m| format!("mx: {m}")));
        lines.push(format!("max_age: {}", self.max_age.as_secs()));
        lines
    }
}

impl TlsaRecord {
    /// The record in presentation form: `3 1 1 <hex>`.
    pub fn presentation(&self) -> String {
        let mut s = format!("{} {} {} ", self.usage, self.selector, self.matching);
        for b in &self.data {
            s.push_str(&format!("{b:02x}"));
        }
        s
    }
}

/// Where a domain wants its TLS reports (RFC 8460 §3 `rua`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportUri {
    /// `mailto:` a mailbox: the address (without the scheme).
    Mail(String),
    /// An `https:` URL to POST the report to (the whole URL).
    Https(String),
}

/// Parses a `_smtp._tls` TXT record (RFC 8460 §3): `v=TLSRPTv1` first, then `rua=` with one or more
/// comma-separated `mailto:` or `https:` URIs; other fields are ignored. `None` when the record is not a TLSRPTv1
/// one or names no URI mailpush can use. A `mailto:` URI's query (`?subject=…`) is dropped and `%40` read as `@`.
pub fn parse_tlsrpt_record(text: &str) -> Option<Vec<ReportUri>> {
    let mut fields = text.split(';').map(str::trim);
    let version = fields.next()?;
    let (k, v) = version.split_once('=')?;
    if !k.trim().eq_ignore_ascii_case("v") || v.trim() != "TLSRPTv1" {
        return None;
    }
    let mut rua = None;
    for field in fields {
        let Some((k, v)) = field.split_once('=') else {
            continue;
        };
        if k.trim().eq_ignore_ascii_case("rua") && rua.is_none() {
            rua = Some(v.trim());
        }
    }
    let uris: Vec<ReportUri> = rua?.split(',').filter_map(|u| report_uri(u.trim())).collect();
    (!uris.is_empty()).then_some(uris)
}

/// One `rua` URI, `None` when its scheme is neither `mailto` nor `https` or it is malformed.
fn report_uri(uri: &str) -> Option<ReportUri> {
    let (scheme, rest) = uri.split_once(':')?;
    if rest.is_empty() || rest.len() > 2048 || rest.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return None;
    }
    match scheme.to_ascii_lowercase().as_str() {
        "mailto" => {
            let address = rest.split('?').next().unwrap_or(rest).replace("%40", "@");
            let (local, domain) = address.rsplit_once('@')?;
            (!local.is_empty() && !domain.is_empty() && !address.contains(['<', '>', ',', '"']))
                .then_some(ReportUri::Mail(address))
        }
        "https" => rest
            .strip_prefix("//")
            .filter(|r| !r.is_empty() && !r.starts_with('/'))
            .map(|_| ReportUri::Https(format!("https:{rest}"))),
        _ => None,
    }
}

/// The policy a session to one MX host ran under, as reported.
#[derive(Debug, Clone)]
pub(crate) enum ReportedPolicy {
    /// DANE applies to the host (it takes precedence over MTA-STS, RFC 8461 §2).
    Tlsa { host: String, records: Vec<String> },
    /// The domain's MTA-STS policy (`enforce` or `testing`).
    Sts(Arc<MtaStsPolicy>),
    /// Neither.
    None,
}

impl ReportedPolicy {
    /// The policy of a session to `host`: DANE when its TLSA records make TLS mandatory (or could not be had), else
    /// the domain's MTA-STS policy in force, else none.
    pub(crate) fn of(host: &str, dane: &DanePolicy, sts: Option<&Arc<MtaStsPolicy>>) -> ReportedPolicy {
        match dane {
            DanePolicy::Verify(records) => ReportedPolicy::Tlsa {
                host: host.to_string(),
                records: records.iter().map(TlsaRecord::presentation).collect(),
            },
            DanePolicy::EncryptOnly | DanePolicy::Unusable(_) => ReportedPolicy::Tlsa {
                host: host.to_string(),
                records: Vec::new(),
            },
            DanePolicy::NotApplicable => match sts {
                Some(p) => ReportedPolicy::Sts(p.clone()),
                None => ReportedPolicy::None,
            },
        }
    }

    /// The outcome under this policy towards `domain`.
    pub(crate) fn outcome(&self, domain: &str, failure: Option<TlsSessionFailure>) -> TlsSessionOutcome {
        let (policy_type, policy_strings, mx_hosts) = match self {
            ReportedPolicy::Tlsa { host, records } => (TlsPolicyType::Tlsa, records.clone(), vec![host.clone()]),
            ReportedPolicy::Sts(p) => (TlsPolicyType::Sts, p.policy_strings(), p.mx.clone()),
            ReportedPolicy::None => (TlsPolicyType::NoPolicyFound, Vec::new(), Vec::new()),
        };
        TlsSessionOutcome {
            policy_domain: domain.to_string(),
            policy_type,
            policy_strings,
            mx_hosts,
            failure,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn tlsrpt_records_as_rfc_8460_writes_them() {
        assert_eq!(
            parse_tlsrpt_record("v=TLSRPTv1; rua=mailto:reports@example.com"),
            Some(vec![ReportUri::Mail("reports@example.com".into())])
        );
        assert_eq!(
            parse_tlsrpt_record("v=TLSRPTv1;rua=https://reporting.example.com/v1/tlsrpt"),
            Some(vec![ReportUri::Https("https://reporting.example.com/v1/tlsrpt".into())])
        );
        assert_eq!(
            parse_tlsrpt_record("v=TLSRPTv1; rua=mailto:tls%40example.com?subject=x, https://r.example/p ;x=y;"),
            Some(vec![
                ReportUri::Mail("tls@example.com".into()),
                ReportUri::Https("https://r.example/p".into())
            ])
        );
        // Unusable schemes are skipped; a record with none left is no record.
        assert_eq!(
            parse_tlsrpt_record("v=TLSRPTv1; rua=http://r.example/p,https://r.example/q"),
            Some(vec![ReportUri::Https("https://r.example/q".into())])
        );
        for bad in [
            "v=TLSRPTv2; rua=mailto:a@example.com",
            "rua=mailto:a@example.com; v=TLSRPTv1",
            "v=TLSRPTv1",
            "v=TLSRPTv1; rua=",
            "v=TLSRPTv1; rua=mailto:nobody",
            "v=TLSRPTv1; rua=ftp://r.example/",
            "v=STSv1; id=1",
        ] {
            assert_eq!(parse_tlsrpt_record(bad), None, "{bad}");
        }
    }

    proptest::proptest! {
        /// A record written from parts parses back to those parts, whatever the spacing.
        #[test]
        fn written_tlsrpt_records_parse_back(
            mailboxes in proptest::collection::vec("[a-z0-9.+-]{1,12}@[a-z0-9]{1,10}\\.[a-z]{2,5}", 0..3),
            urls in proptest::collection::vec("[a-z0-9]{1,10}\\.[a-z]{2,5}(/[a-z0-9._-]{0,12}){0,3}", 0..3),
            pad in "[ ]{0,2}",
        ) {
            proptest::prop_assume!(!mailboxes.is_empty() || !urls.is_empty());
            let mut uris: Vec<String> = mailboxes.iter().map(|m| format!("mailto:{m}")).collect();
            uris.extend(urls.iter().map(|u| format!("https://{u}")));
            let text = format!("v=TLSRPTv1;{pad}rua={}{pad};", uris.join(&format!(",{pad}")));
            let mut want: Vec<ReportUri> = mailboxes.iter().cloned().map(ReportUri::Mail).collect();
            want.extend(urls.iter().map(|u| ReportUri::Https(format!("https://{u}"))));
            proptest::prop_assert_eq!(parse_tlsrpt_record(&text), Some(want));
        }

        /// Parsing never panics, and what it returns is only mailto addresses and https URLs.
        #[test]
        fn parsing_arbitrary_records_never_panics(text in "(v=TLSRPTv1; ?)?\\PC{0,120}") {
            for uri in parse_tlsrpt_record(&text).unwrap_or_default() {
                match uri {
                    ReportUri::Mail(a) => proptest::prop_assert!(a.contains('@')),
                    ReportUri::Https(u) => proptest::prop_assert!(u.starts_with("https://")),
                }
            }
        }
    }

    #[test]
    fn policies_are_shown_as_rfc_8460_reports_show_them() {
        let sts = MtaStsPolicy {
            mode: MtaStsMode::Testing,
            mx: vec!["mx.example.com".into(), "*.example.net".into()],
            max_age: Duration::from_secs(86_400),
        };
        assert_eq!(
            sts.policy_strings(),
            [
                "version: STSv1",
                "mode: testing",
                "mx: mx.example.com",
                "mx: *.example.net",
                "max_age: 86400"
            ]
        );
        let tlsa = TlsaRecord {
            usage: 3,
            selector: 1,
            matching: 1,
            data: vec![0xab, 0x01],
        };
        assert_eq!(tlsa.presentation(), "3 1 1 ab01");
        let o = ReportedPolicy::of("mx.example.com", &DanePolicy::Verify(Arc::from(vec![tlsa])), None)
            .outcome("example.com", None);
        assert_eq!(
            (o.policy_type.as_str(), o.policy_strings, o.mx_hosts),
            (
                "tlsa",
                vec!["3 1 1 ab01".to_string()],
                vec!["mx.example.com".to_string()]
            )
        );
        let o = ReportedPolicy::of("mx.example.com", &DanePolicy::NotApplicable, Some(&Arc::new(sts)))
            .outcome("example.com", None);
        assert_eq!((o.policy_type, o.mx_hosts.len()), (TlsPolicyType::Sts, 2));
        let o = ReportedPolicy::of("mx.example.com", &DanePolicy::NotApplicable, None).outcome("example.com", None);
        assert_eq!(o.policy_type.as_str(), "no-policy-found");
    }
}
