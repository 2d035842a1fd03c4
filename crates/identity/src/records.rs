//! The DNS records a sending domain publishes, and how what DNS holds is judged, record by record.
//!
//! | record | at | value | passes when |
//! |---|---|---|---|
//! | DKIM TXT (one per key) | `<selector>._domainkey.<domain>` | `v=DKIM1; k=…; p=…` | a TXT there has our `p=` (whitespace and string splitting ignored) |
//! | SPF TXT | `<mail from>` | `v=spf1 include:<spf_include> ~all` | exactly one `v=spf1` record, and it has `include:<spf_include>` (other mechanisms may be merged in) |
//! | MX | `<mail from>` | `<bounce_mx_host>.` | an MX exchange there is the bounce host (trailing dot optional) |
//! | DMARC TXT | `_dmarc.<domain>` | `v=DMARC1; p=none` | exactly one record starting `v=DMARC1` with a `p=` tag, at the domain or else at its organisational domain |
//! | DMARC reports TXT (optional) | `_dmarc.<domain>` | `v=DMARC1; p=none; rua=mailto:dmarc@<bounce_mx_host>` | the domain's DMARC record sends aggregate reports to mailpush's inbound MX (`rua=` lists `mailto:dmarc@<bounce_mx_host>`) |
//!
//! `<mail from>` is the return-path domain (AWS SES: custom MAIL FROM domain), `bounce.<domain>` by default: the
//! envelope sender lives there, so bounces reach mailpush while the domain's own MX keeps pointing at the
//! company's mail server, and SPF passes for a domain aligned with the From domain under DMARC's relaxed
//! alignment. All four are required. The DMARC reports record is the DMARC record with `rua=` added, published
//! *instead of* the plain one (a name holds one DMARC record); it is never required. A sub-domain without its
//! own `_dmarc` record inherits its organisational domain's policy (RFC 7489 §6.6.3), found through the public
//! suffix list.
//!
//! Domains verified before return-path domains existed keep their scheme: their return-path domain is the
//! domain itself (SPF and MX at the apex) and DMARC stays advisory for them, so an upgrade changes nothing
//! they published.

use crate::dns::{DnsChecker, Lookup};
use crate::domain::relative_host;
use crate::keys::{KeyAlgorithm, dkim_record_value};
use serde::{Deserialize, Serialize};

/// Deployment-wide values that go into the records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordConfig {
    /// The SPF domain tenants include (`include:<spf_include>`).
    pub spf_include: String,
    /// The host receiving bounces and complaints (the MX value).
    pub bounce_mx_host: String,
}

/// What a record is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RecordKind {
    /// A DKIM public key.
    Dkim,
    /// The SPF policy.
    Spf,
    /// The bounce/complaint MX.
    Mx,
    /// The DMARC policy.
    Dmarc,
    /// The DMARC policy sending aggregate reports (`rua=`) to the inbound MX: optional.
    DmarcReports,
}

/// One record to publish.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordSpec {
    /// What it is for.
    pub kind: RecordKind,
    /// `TXT` or `MX`.
    pub record_type: String,
    /// Fully qualified name, without trailing dot.
    pub name: String,
    /// The host to enter at the DNS provider (relative to the registrable domain; `@` for the apex).
    pub host: String,
    /// The value to publish.
    pub expected: String,
    /// Whether sending needs it to pass.
    pub required: bool,
    /// DKIM: the `p=` value it must carry.
    #[serde(default)]
    pub public_key: Option<String>,
}

/// One record after a DNS check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckedRecord {
    /// The record.
    pub spec: RecordSpec,
    /// What DNS holds now at that name for that type (several records joined with ` | `; empty if none).
    pub current: String,
    /// Whether it passes.
    pub pass: bool,
    /// Why it fails; `None` when it passes.
    pub reason: Option<String>,
}

/// A public DKIM key of the domain, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedKey {
    /// Algorithm.
    pub algorithm: KeyAlgorithm,
    /// Selector.
    pub selector: String,
    /// `p=` value.
    pub public_key: String,
}

/// The return-path domain a domain gets unless another is configured.
pub fn default_mail_from(domain: &str) -> String {
    format!("bounce.{domain}")
}

/// The organisational domain of `domain` (its registrable domain under the public suffix list), where a DMARC
/// policy is looked up when the domain has none of its own; `None` when it is the domain itself or unknown.
pub fn organisational_domain(domain: &str) -> Option<String> {
    let org = psl::domain_str(domain)?;
    (!org.eq_ignore_ascii_case(domain)).then(|| org.to_ascii_lowercase())
}

/// The records `domain` must publish for its keys and its return-path domain `mail_from`, DKIM first, then SPF,
/// MX, DMARC, and last the optional DMARC record with aggregate reports (`rua=`) to the inbound MX. With
/// `mail_from` equal to `domain` (the scheme of domains verified before return-path domains existed) DMARC is
/// advisory.
pub fn expected_records(domain: &str, mail_from: &str, keys: &[PublishedKey], cfg: &RecordConfig) -> Vec<RecordSpec> {
    let mut out = Vec::with_capacity(keys.len() + 4);
    let spec = |kind, record_type: &str, name: String, expected: String, required, public_key| RecordSpec {
        kind,
        record_type: record_type.to_string(),
        host: relative_host(&name, domain),
        name,
        expected,
        required,
        public_key,
    };
    for k in keys {
        out.push(spec(
            RecordKind::Dkim,
            "TXT",
            format!("{}._domainkey.{domain}", k.selector),
            dkim_record_value(k.algorithm, &k.public_key),
            true,
            Some(k.public_key.clone()),
        ));
    }
    out.push(spec(
        RecordKind::Spf,
        "TXT",
        mail_from.to_string(),
        format!("v=spf1 include:{} ~all", trim_dot(&cfg.spf_include)),
        true,
        None,
    ));
    out.push(spec(
        RecordKind::Mx,
        "MX",
        mail_from.to_string(),
        format!("{}.", trim_dot(&cfg.bounce_mx_host)),
        true,
        None,
    ));
    out.push(spec(
        RecordKind::Dmarc,
        "TXT",
        format!("_dmarc.{domain}"),
        "v=DMARC1; p=none".to_string(),
        !mail_from.eq_ignore_ascii_case(domain),
        None,
    ));
    out.push(spec(
        RecordKind::DmarcReports,
        "TXT",
        format!("_dmarc.{domain}"),
        format!("v=DMARC1; p=none; rua={}", dmarc_report_uri(cfg)),
        false,
        None,
    ));
    out
}

/// The `rua=` URI of the inbound MX: `mailto:dmarc@<bounce_mx_host>`.
pub fn dmarc_report_uri(cfg: &RecordConfig) -> String {
    format!("mailto:dmarc@{}", trim_dot(&cfg.bounce_mx_host).to_ascii_lowercase())
}

fn trim_dot(s: &str) -> &str {
    s.trim().trim_end_matches('.')
}

/// What a lookup found at a record's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// TXT records, each with its character-strings concatenated.
    Txt(Vec<String>),
    /// MX records as (preference, exchange).
    Mx(Vec<(u16, String)>),
    /// The lookup failed (timeout, SERVFAIL): not the same as "no record".
    Error(String),
}

/// `tag=value` pairs of a DKIM/DMARC record, names lower-cased, whitespace inside values removed.
fn tags(record: &str) -> Vec<(String, String)> {
    record
        .split(';')
        .filter_map(|part| {
            let (k, v) = part.split_once('=')?;
            Some((
                k.trim().to_ascii_lowercase(),
                v.chars().filter(|c| !c.is_whitespace()).collect(),
            ))
        })
        .collect()
}

fn is_spf(record: &str) -> bool {
    let r = record.trim_start();
    // get(): the text is arbitrary, byte 6 may fall inside a character.
    r.get(..6).is_some_and(|v| v.eq_ignore_ascii_case("v=spf1"))
        && r.get(6..)
            .is_some_and(|rest| rest.chars().next().is_none_or(char::is_whitespace))
}

fn is_dmarc(record: &str) -> bool {
    tags(record)
        .first()
        .is_some_and(|(k, v)| k == "v" && v.eq_ignore_ascii_case("DMARC1"))
}

/// Judges one record against what DNS holds. Pure: the DNS part is [`check_records`].
pub fn judge(spec: &RecordSpec, found: &Found, cfg: &RecordConfig) -> CheckedRecord {
    let (current, verdict): (String, Result<(), String>) = match found {
        Found::Error(e) => (String::new(), Err(format!("DNS lookup of {} failed: {e}", spec.name))),
        Found::Mx(list) => {
            let current = list
                .iter()
                .map(|(p, h)| format!("{p} {}.", trim_dot(h)))
                .collect::<Vec<_>>()
                .join(" | ");
            let want = trim_dot(&cfg.bounce_mx_host).to_ascii_lowercase();
            let verdict = if list.is_empty() {
                Err(format!("no MX record at {}", spec.name))
            } else if list.iter().any(|(_, h)| trim_dot(h).eq_ignore_ascii_case(&want)) {
                Ok(())
            } else {
                Err(format!("no MX record at {} points at {want}", spec.name))
            };
            (current, verdict)
        }
        Found::Txt(records) => {
            let verdict = match spec.kind {
                RecordKind::Dkim => judge_dkim(spec, records),
                RecordKind::Spf => judge_spf(spec, records, cfg),
                RecordKind::Dmarc => judge_dmarc(spec, records),
                RecordKind::DmarcReports => judge_dmarc(spec, records).and_then(|()| judge_rua(spec, records, cfg)),
                RecordKind::Mx => Err("an MX record was looked up as TXT".to_string()),
            };
            // Only the records that concern this check: the SPF name also holds verification tokens etc.
            let shown: Vec<&String> = match spec.kind {
                RecordKind::Spf => records.iter().filter(|r| is_spf(r)).collect(),
                _ => records.iter().collect(),
            };
            (
                shown.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" | "),
                verdict,
            )
        }
    };
    CheckedRecord {
        spec: spec.clone(),
        current,
        pass: verdict.is_ok(),
        reason: verdict.err(),
    }
}

fn judge_dkim(spec: &RecordSpec, records: &[String]) -> Result<(), String> {
    if records.is_empty() {
        return Err(format!("no TXT record at {}", spec.name));
    }
    let want: String = spec
        .public_key
        .as_deref()
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let matches = records
        .iter()
        .any(|r| tags(r).iter().any(|(k, v)| k == "p" && *v == want));
    if matches {
        Ok(())
    } else {
        Err(format!(
            "the TXT record at {} does not carry mailpush's public key (p=)",
            spec.name
        ))
    }
}

fn judge_spf(spec: &RecordSpec, records: &[String], cfg: &RecordConfig) -> Result<(), String> {
    let spf: Vec<&String> = records.iter().filter(|r| is_spf(r)).collect();
    match spf.len() {
        0 => Err(format!("no SPF record (v=spf1) at {}", spec.name)),
        1 => {
            let want = format!("include:{}", trim_dot(&cfg.spf_include).to_ascii_lowercase());
            let included = spf[0].split_whitespace().any(|term| {
                let t = term.strip_prefix('+').unwrap_or(term).to_ascii_lowercase();
                t.trim_end_matches('.') == want
            });
            if included {
                Ok(())
            } else {
                Err(format!("the SPF record at {} lacks {want}", spec.name))
            }
        }
        n => Err(format!(
            "{n} SPF records at {}: RFC 7208 allows exactly one (receivers answer permerror); merge them into one",
            spec.name
        )),
    }
}

/// The (one) DMARC record's `rua=` lists the inbound MX's report address (a `!size` limit allowed).
fn judge_rua(spec: &RecordSpec, records: &[String], cfg: &RecordConfig) -> Result<(), String> {
    let want = dmarc_report_uri(cfg);
    let listed = records
        .iter()
        .filter(|r| is_dmarc(r))
        .flat_map(|r| tags(r))
        .filter(|(k, _)| k == "rua")
        .flat_map(|(_, v)| {
            v.split(',')
                .map(|u| u.split('!').next().unwrap_or("").to_string())
                .collect::<Vec<_>>()
        })
        .any(|u| u.eq_ignore_ascii_case(&want));
    if listed {
        Ok(())
    } else {
        Err(format!(
            "the DMARC record at {} does not send aggregate reports to {want} (rua=)",
            spec.name
        ))
    }
}

fn judge_dmarc(spec: &RecordSpec, records: &[String]) -> Result<(), String> {
    let dmarc: Vec<&String> = records.iter().filter(|r| is_dmarc(r)).collect();
    match dmarc.len() {
        0 => Err(format!("no DMARC record (v=DMARC1) at {}", spec.name)),
        1 if tags(dmarc[0]).iter().any(|(k, v)| k == "p" && !v.is_empty()) => Ok(()),
        1 => Err(format!("the DMARC record at {} has no p= policy", spec.name)),
        n => Err(format!("{n} DMARC records at {}: there must be exactly one", spec.name)),
    }
}

/// Looks every record up and judges it (one after the other: a handful of lookups per domain).
pub async fn check_records(dns: &DnsChecker, specs: &[RecordSpec], cfg: &RecordConfig) -> Vec<CheckedRecord> {
    let mut out = Vec::with_capacity(specs.len());
    for spec in specs {
        let found = match spec.record_type.as_str() {
            "MX" => match dns.mx(&spec.name).await {
                Lookup::Found(v) => Found::Mx(v),
                Lookup::Error(e) => Found::Error(e),
            },
            _ => match dns.txt(&spec.name).await {
                Lookup::Found(v) => Found::Txt(v),
                Lookup::Error(e) => Found::Error(e),
            },
        };
        let mut checked = judge(spec, &found, cfg);
        // RFC 7489 §6.6.3: the organisational domain's policy applies only where the domain has none.
        let has_own_dmarc = matches!(&found, Found::Txt(r) if r.iter().any(|r| is_dmarc(r)));
        if spec.kind == RecordKind::Dmarc && !checked.pass && !has_own_dmarc {
            checked = inherited_dmarc(dns, spec, cfg).await.unwrap_or(checked);
        }
        out.push(checked);
    }
    out
}

/// A DMARC record inherited from the organisational domain, when the domain has none of its own.
async fn inherited_dmarc(dns: &DnsChecker, spec: &RecordSpec, cfg: &RecordConfig) -> Option<CheckedRecord> {
    let domain = spec.name.strip_prefix("_dmarc.")?;
    let org = organisational_domain(domain)?;
    let name = format!("_dmarc.{org}");
    let Lookup::Found(records) = dns.txt(&name).await else {
        return None;
    };
    let inherited = RecordSpec {
        name: name.clone(),
        ..spec.clone()
    };
    let mut checked = judge(&inherited, &Found::Txt(records), cfg);
    if !checked.pass {
        return None;
    }
    checked.spec = spec.clone();
    checked.current = format!("{} (inherited from {name})", checked.current);
    Some(checked)
}

/// True when every required record passes.
pub fn all_required_pass(checked: &[CheckedRecord]) -> bool {
    checked.iter().all(|c| c.pass || !c.spec.required)
}

/// A one-line summary of what keeps a domain from sending (`None` when nothing does).
pub fn failure_reason(checked: &[CheckedRecord]) -> Option<String> {
    let reasons: Vec<String> = checked
        .iter()
        .filter(|c| c.spec.required && !c.pass)
        .filter_map(|c| c.reason.clone())
        .collect();
    if reasons.is_empty() {
        None
    } else {
        Some(reasons.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> RecordConfig {
        RecordConfig {
            spf_include: "_spf.mailpush.test".into(),
            bounce_mx_host: "bounce.mailpush.test".into(),
        }
    }

    /// The scheme of domains verified before return-path domains: SPF and MX at the apex.
    fn specs() -> Vec<RecordSpec> {
        specs_with_mail_from("abc.example.com")
    }

    fn specs_with_mail_from(mail_from: &str) -> Vec<RecordSpec> {
        expected_records(
            "abc.example.com",
            mail_from,
            &[PublishedKey {
                algorithm: KeyAlgorithm::Ed25519,
                selector: "mp1ed".into(),
                public_key: "AAAAKEY".into(),
            }],
            &cfg(),
        )
    }

    fn txt(v: &[&str]) -> Found {
        Found::Txt(v.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn records_and_hosts() {
        let s = specs();
        assert_eq!(s.len(), 5);
        assert_eq!(s[0].name, "mp1ed._domainkey.abc.example.com");
        assert_eq!(s[0].host, "mp1ed._domainkey.abc");
        assert_eq!(s[0].expected, "v=DKIM1; k=ed25519; p=AAAAKEY");
        assert_eq!(s[1].host, "abc");
        assert_eq!(s[1].expected, "v=spf1 include:_spf.mailpush.test ~all");
        assert_eq!(s[2].expected, "bounce.mailpush.test.");
        assert_eq!(s[3].host, "_dmarc.abc");
        assert!(!s[3].required);
        assert_eq!(s[4].host, "_dmarc.abc");
        assert_eq!(s[4].expected, "v=DMARC1; p=none; rua=mailto:dmarc@bounce.mailpush.test");
        assert!(!s[4].required);
    }

    #[test]
    fn the_dmarc_reports_record_passes_with_our_rua() {
        let s = specs();
        let rua = &s[4];
        assert!(
            judge(
                rua,
                &txt(&["v=DMARC1; p=none; rua=mailto:DMARC@bounce.mailpush.test"]),
                &cfg()
            )
            .pass
        );
        assert!(
            judge(
                rua,
                &txt(&["v=DMARC1; p=reject; rua=mailto:a@b.example,mailto:dmarc@bounce.mailpush.test!10m"]),
                &cfg()
            )
            .pass
        );
        assert!(!judge(rua, &txt(&["v=DMARC1; p=none"]), &cfg()).pass);
        assert!(
            !judge(
                rua,
                &txt(&["v=DMARC1; p=none; ruf=mailto:dmarc@bounce.mailpush.test"]),
                &cfg()
            )
            .pass
        );
        // The reports variant is a valid DMARC record for the required check too.
        assert!(judge(&s[3], &txt(&[&rua.expected]), &cfg()).pass);
    }

    #[test]
    fn a_return_path_domain_takes_spf_and_mx_and_dmarc_becomes_required() {
        let s = specs_with_mail_from(&default_mail_from("abc.example.com"));
        assert_eq!(s.len(), 5);
        assert_eq!(s[1].name, "bounce.abc.example.com");
        assert_eq!(s[1].host, "bounce.abc");
        assert_eq!(s[2].name, "bounce.abc.example.com");
        assert_eq!(s[2].record_type, "MX");
        assert_eq!(s[3].name, "_dmarc.abc.example.com");
        assert!(s[..4].iter().all(|r| r.required));
        assert!(!s[4].required, "the rua record is optional");
    }

    #[test]
    fn organisational_domains_follow_the_public_suffix_list() {
        assert_eq!(organisational_domain("abc.example.com").as_deref(), Some("example.com"));
        assert_eq!(
            organisational_domain("a.b.example.co.uk").as_deref(),
            Some("example.co.uk")
        );
        assert_eq!(organisational_domain("example.com"), None);
    }

    #[test]
    fn dkim_ignores_whitespace_and_splitting() {
        let s = &specs()[0];
        assert!(judge(s, &txt(&["v=DKIM1; k=ed25519; p=AAAA KEY"]), &cfg()).pass);
        assert!(judge(s, &txt(&["v=DKIM1;k=ed25519;p=AAAAKEY"]), &cfg()).pass);
        let bad = judge(s, &txt(&["v=DKIM1; p=OTHER"]), &cfg());
        assert!(!bad.pass);
        assert_eq!(bad.current, "v=DKIM1; p=OTHER");
        assert!(!judge(s, &txt(&[]), &cfg()).pass);
    }

    #[test]
    fn spf_rules() {
        let s = &specs()[1];
        assert!(judge(s, &txt(&["v=spf1 include:_spf.mailpush.test ~all"]), &cfg()).pass);
        let merged = judge(
            s,
            &txt(&[
                "google-site-verification=x",
                "v=spf1 include:_spf.google.com +include:_spf.mailpush.test. -all",
            ]),
            &cfg(),
        );
        assert!(merged.pass, "{merged:?}");
        assert!(!merged.current.contains("google-site"));
        let two = judge(
            s,
            &txt(&["v=spf1 include:_spf.mailpush.test ~all", "v=spf1 include:other ~all"]),
            &cfg(),
        );
        assert!(!two.pass);
        assert!(two.reason.unwrap().contains("2 SPF records"));
        assert!(!judge(s, &txt(&["v=spf1 include:other ~all"]), &cfg()).pass);
        assert!(!judge(s, &txt(&["v=spf10 include:_spf.mailpush.test"]), &cfg()).pass);
    }

    #[test]
    fn mx_and_dmarc_rules() {
        let s = specs();
        assert!(judge(&s[2], &Found::Mx(vec![(10, "bounce.mailpush.test.".into())]), &cfg()).pass);
        assert!(judge(&s[2], &Found::Mx(vec![(10, "BOUNCE.mailpush.test".into())]), &cfg()).pass);
        assert!(!judge(&s[2], &Found::Mx(vec![(10, "mx.other.test".into())]), &cfg()).pass);
        assert!(!judge(&s[2], &Found::Error("timeout".into()), &cfg()).pass);
        assert!(judge(&s[3], &txt(&["v=DMARC1; p=reject; rua=mailto:x@y"]), &cfg()).pass);
        assert!(!judge(&s[3], &txt(&["v=DMARC1; rua=mailto:x@y"]), &cfg()).pass);
        assert!(!judge(&s[3], &txt(&["p=none; v=DMARC1"]), &cfg()).pass);
    }

    proptest::proptest! {
        #[test]
        fn judging_never_panics(records in proptest::collection::vec(".{0,80}", 0..4)) {
            for s in specs() {
                let found = if s.record_type == "MX" {
                    Found::Mx(records.iter().enumerate().map(|(i, r)| (i as u16, r.clone())).collect())
                } else {
                    Found::Txt(records.clone())
                };
                let c = judge(&s, &found, &cfg());
                proptest::prop_assert_eq!(c.pass, c.reason.is_none());
            }
        }
    }
}
