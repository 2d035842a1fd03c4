//! The quality score of a mail, in mail-tester's sense: 10 is best; the spam filter's points and every failed
//! check of mailpush's own are taken off. The report says, per symbol and per check, what it means in a
//! sentence and, first of all, what to fix.

use crate::content::ContentFacts;
use crate::rspamd::FilterVerdict;
use serde::Serialize;

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum CheckStatus {
    /// Nothing to improve.
    Pass,
    /// Costs points.
    Fail,
    /// Could not be judged (no data); costs nothing.
    Skipped,
}

/// One of mailpush's own checks.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    /// Stable name (`dkim`, `spf`, `dmarc`, `list_unsubscribe`, `html_well_formed`, `text_html_ratio`,
    /// `images`, `links`, `content_review`).
    pub name: &'static str,
    /// Outcome.
    pub status: CheckStatus,
    /// Points taken off the score.
    pub penalty: f64,
    /// What was found, in a sentence.
    pub message: String,
    /// What to do about it (failures only).
    pub fix: Option<String>,
}

impl Check {
    /// A passed check.
    pub fn pass(name: &'static str, message: impl Into<String>) -> Check {
        Check {
            name,
            status: CheckStatus::Pass,
            penalty: 0.0,
            message: message.into(),
            fix: None,
        }
    }

    /// A failed check costing `penalty`.
    pub fn fail(name: &'static str, penalty: f64, message: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            name,
            status: CheckStatus::Fail,
            penalty,
            message: message.into(),
            fix: Some(fix.into()),
        }
    }

    /// A check that could not be made.
    pub fn skipped(name: &'static str, message: impl Into<String>) -> Check {
        Check {
            name,
            status: CheckStatus::Skipped,
            penalty: 0.0,
            message: message.into(),
            fix: None,
        }
    }
}

/// A filter symbol with a sentence a person understands.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExplainedSymbol {
    /// rspamd's symbol name.
    pub name: String,
    /// Its weight (positive = spammy).
    pub weight: f64,
    /// What it means.
    pub sentence: String,
}

/// The whole judgement of one mail.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QualityReport {
    /// 0–10, one decimal; 10 is best.
    pub score: f64,
    /// The filter's own score, when it answered.
    pub filter_score: Option<f64>,
    /// The filter's action (`no action`, `add header`, `reject`…).
    pub filter_action: Option<String>,
    /// Why the filter gave no verdict (not configured, down).
    pub filter_error: Option<String>,
    /// The filter's symbols with a weight, heaviest first.
    pub symbols: Vec<ExplainedSymbol>,
    /// mailpush's own checks.
    pub checks: Vec<Check>,
    /// What to fix first: the costliest problems, most expensive first (at most five).
    pub fix_first: Vec<String>,
}

/// Link shorteners: filters and providers distrust them because they hide the destination.
const SHORTENERS: &[&str] = &[
    "bit.ly",
    "tinyurl.com",
    "goo.gl",
    "t.co",
    "ow.ly",
    "is.gd",
    "buff.ly",
    "cutt.ly",
    "rebrand.ly",
    "shorturl.at",
    "t.cn",
    "dwz.cn",
    "tiny.cc",
    "rb.gy",
    "s.id",
];

fn link_host(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = authority.rsplit('@').next()?;
    let host = if host.starts_with('[') {
        host.split(']').next().map(|h| format!("{h}]"))?
    } else {
        host.split(':').next()?.to_string()
    };
    Some(host.to_ascii_lowercase())
}

/// mailpush's checks of the content itself. `marketing`: the mail is marketing (TriggerType 0), which needs
/// `List-Unsubscribe`; `links_allowed`: the account may send links (its content permission).
pub fn content_checks(facts: &ContentFacts, marketing: bool, links_allowed: bool) -> Vec<Check> {
    let mut checks = Vec::new();
    checks.push(match (marketing, facts.list_unsubscribe) {
        (false, _) => Check::pass("list_unsubscribe", "transactional mail: List-Unsubscribe is not required"),
        (true, true) => Check::pass("list_unsubscribe", "List-Unsubscribe is present"),
        (true, false) => Check::fail(
            "list_unsubscribe",
            1.0,
            "marketing mail without a List-Unsubscribe header",
            "send marketing mail with Unsubscribe set (or an AddressUnsubscribeConfig) so mailpush adds List-Unsubscribe and one-click unsubscribe",
        ),
    });
    checks.push(if !facts.has_html {
        Check::skipped("html_well_formed", "no HTML part")
    } else if facts.html_problems.is_empty() {
        Check::pass("html_well_formed", "the HTML is well formed")
    } else {
        Check::fail(
            "html_well_formed",
            0.5,
            format!("the HTML is broken: {}", facts.html_problems.join("; ")),
            "close every element you open; broken markup renders differently in each mailbox and filters score it",
        )
    });
    checks.push(text_html_ratio(facts));
    checks.push(images(facts));
    checks.push(links(facts, links_allowed));
    checks
}

fn text_html_ratio(f: &ContentFacts) -> Check {
    const NAME: &str = "text_html_ratio";
    if !f.has_html {
        return Check::pass(NAME, "plain-text mail");
    }
    if !f.has_text {
        return Check::fail(
            NAME,
            0.5,
            "the mail has HTML but no plain-text part",
            "add a plain-text version (Simple.Text or the template's Text) saying the same as the HTML",
        );
    }
    let markup_ratio = f.html_visible_chars as f64 / f.html_bytes.max(1) as f64;
    if f.html_bytes > 2000 && markup_ratio < 0.05 {
        return Check::fail(
            NAME,
            0.5,
            format!(
                "only {:.0}% of the HTML is visible text ({} of {} bytes)",
                markup_ratio * 100.0,
                f.html_visible_chars,
                f.html_bytes
            ),
            "write more text and less markup; mail that is mostly code looks machine-made",
        );
    }
    if f.html_visible_chars > 100 && f.text_chars * 10 < f.html_visible_chars * 3 {
        return Check::fail(
            NAME,
            0.3,
            format!(
                "the plain-text part ({} characters) says much less than the HTML ({} characters)",
                f.text_chars, f.html_visible_chars
            ),
            "make the plain-text part carry the same message as the HTML",
        );
    }
    Check::pass(NAME, "the text and HTML parts match in length")
}

fn images(f: &ContentFacts) -> Check {
    const NAME: &str = "images";
    if f.images > 0 && f.html_visible_chars < 200 && f.text_chars < 200 {
        return Check::fail(
            NAME,
            1.5,
            format!("{} image(s) and almost no text", f.images),
            "do not send image-only mail: put the message in text and use images to illustrate it",
        );
    }
    if f.images > 15 {
        return Check::fail(
            NAME,
            0.5,
            format!("{} images", f.images),
            "use fewer images; many remote images look like a newsletter from a bulk sender",
        );
    }
    Check::pass(NAME, format!("{} image(s)", f.images))
}

fn links(f: &ContentFacts, links_allowed: bool) -> Check {
    const NAME: &str = "links";
    let web: Vec<&String> = f
        .links
        .iter()
        .filter(|l| l.starts_with("http://") || l.starts_with("https://"))
        .collect();
    let mut problems = Vec::new();
    let mut penalty: f64 = 0.0;
    let hosts: Vec<String> = web.iter().filter_map(|l| link_host(l)).collect();
    let short: Vec<&String> = hosts
        .iter()
        .filter(|h| SHORTENERS.iter().any(|s| *h == s || h.ends_with(&format!(".{s}"))))
        .collect();
    if !short.is_empty() {
        penalty += 1.5;
        problems.push(format!("URL shorteners hide the destination ({})", join(&short)));
    }
    let ips: Vec<&String> = hosts
        .iter()
        .filter(|h| h.parse::<std::net::IpAddr>().is_ok() || h.starts_with('['))
        .collect();
    if !ips.is_empty() {
        penalty += 1.0;
        problems.push(format!("links point at IP addresses ({})", join(&ips)));
    }
    if !links_allowed && !web.is_empty() {
        penalty += 1.0;
        problems.push("the account may not send links (content permission)".to_string());
    }
    if web.len() > 25 {
        penalty += 0.5;
        problems.push(format!("{} links", web.len()));
    }
    if problems.is_empty() {
        return Check::pass(NAME, format!("{} link(s), none suspicious", web.len()));
    }
    Check::fail(
        NAME,
        penalty,
        problems.join("; "),
        "link to your own domain with full URLs (no shorteners, no IP addresses)",
    )
}

fn join(items: &[&String]) -> String {
    let mut v: Vec<&str> = items.iter().map(|s| s.as_str()).collect();
    v.dedup();
    v.truncate(3);
    v.join(", ")
}

/// A sentence for a filter symbol: mailpush's own for the common ones, else rspamd's description.
pub fn explain_symbol(name: &str, description: Option<&str>) -> String {
    let known = match name {
        "SUBJ_ALL_CAPS" => "the Subject is written in capital letters",
        "SUBJECT_HAS_CURRENCY" => "the Subject contains a currency sign",
        "SUBJECT_HAS_EXCLAIM" => "the Subject contains an exclamation mark",
        "MIME_HTML_ONLY" => "the mail has HTML but no plain-text part",
        "R_PARTS_DIFFER" => "the text and HTML parts say different things",
        "HTML_SHORT_LINK_IMG_1" | "HTML_SHORT_LINK_IMG_2" | "HTML_SHORT_LINK_IMG_3" => {
            "the HTML is little more than a linked image"
        }
        "R_EMPTY_IMAGE" => "the mail is an image with no text",
        "HTTP_TO_IP" => "a link points at an IP address instead of a domain",
        "PHISHING" => "a link's text shows another address than the one it goes to (phishing pattern)",
        "R_SUSPICIOUS_URL" => "a link looks obfuscated",
        "SURBL_MULTI" | "URIBL_BLACK" | "DBL_SPAM" => "a link's domain is on a spam blocklist",
        "URL_SHORTENER" | "HAS_URL_SHORTENER" | "SHORT_URL" => "a link goes through a URL shortener",
        "MISSING_DATE" => "the Date header is missing",
        "MISSING_MID" => "the Message-ID header is missing",
        "MISSING_TO" => "the To header is missing",
        "MISSING_SUBJECT" | "EMPTY_SUBJECT" => "the Subject is missing or empty",
        "R_MISSING_CHARSET" => "a text part does not say its character set",
        "FORGED_SENDER" => "the envelope sender and the From header differ",
        "R_DKIM_REJECT" => "the DKIM signature does not verify",
        "R_SPF_FAIL" | "R_SPF_SOFTFAIL" => "the sending host is not allowed by the domain's SPF record",
        "DMARC_POLICY_REJECT" | "DMARC_POLICY_QUARANTINE" => "the mail fails the domain's DMARC policy",
        "BAYES_SPAM" => "the text resembles mail the filter learned as spam",
        "FUZZY_DENIED" => "the mail matches known spam (fuzzy hashes)",
        "MANY_INVISIBLE_PARTS" => "parts of the HTML are hidden from the reader",
        "ZERO_FONT" => "the HTML hides text with a zero font size",
        "HTML_META_REFRESH_URL" => "the HTML redirects the reader with a meta refresh",
        "DATE_IN_FUTURE" => "the Date header is in the future",
        "DATE_IN_PAST" => "the Date header is far in the past",
        "FREEMAIL_FROM" => "the sender is a free mailbox address",
        "FROM_NEQ_ENVFROM" => "the From header differs from the envelope sender",
        "MV_CASE" => "the MIME-Version header is written in an unusual case",
        "BROKEN_CONTENT_TYPE" => "a Content-Type header is malformed",
        "CTYPE_MISSING_DISPOSITION" => "an attachment has no Content-Disposition",
        "R_BAD_CTE_7BIT" => "8-bit characters are sent as 7-bit",
        _ => "",
    };
    if !known.is_empty() {
        return known.to_string();
    }
    match description.map(str::trim).filter(|d| !d.is_empty()) {
        Some(d) => d.to_string(),
        None => format!("the filter's rule {name} matched"),
    }
}

/// The report of a mail: `filter` is rspamd's verdict (or why there is none), `checks` mailpush's own.
pub fn report(filter: Result<FilterVerdict, String>, checks: Vec<Check>) -> QualityReport {
    let (filter_score, filter_action, filter_error, symbols) = match filter {
        Ok(v) => {
            let symbols: Vec<ExplainedSymbol> = v
                .symbols
                .iter()
                .filter(|s| s.score != 0.0)
                .map(|s| ExplainedSymbol {
                    name: s.name.clone(),
                    weight: (s.score * 100.0).round() / 100.0,
                    sentence: explain_symbol(&s.name, s.description.as_deref()),
                })
                .collect();
            (Some(v.score), Some(v.action), None, symbols)
        }
        Err(e) => (None, None, Some(e), Vec::new()),
    };
    let penalties: f64 = checks.iter().map(|c| c.penalty).sum();
    let raw = 10.0 - filter_score.unwrap_or(0.0).max(0.0) - penalties;
    let score = (raw.clamp(0.0, 10.0) * 10.0).round() / 10.0;
    // The costliest problems first, whoever found them.
    let mut costs: Vec<(f64, String)> = symbols
        .iter()
        .filter(|s| s.weight > 0.0)
        .map(|s| {
            (
                s.weight,
                format!("{} ({}, -{})", capitalize(&s.sentence), s.name, s.weight),
            )
        })
        .collect();
    costs.extend(checks.iter().filter(|c| c.penalty > 0.0).map(|c| {
        let fix = c.fix.as_deref().unwrap_or(&c.message);
        (c.penalty, format!("{} ({}, -{})", capitalize(fix), c.name, c.penalty))
    }));
    costs.sort_by(|a, b| b.0.total_cmp(&a.0));
    QualityReport {
        score,
        filter_score,
        filter_action,
        filter_error,
        symbols,
        checks,
        fix_first: costs.into_iter().take(5).map(|(_, s)| s).collect(),
    }
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rspamd::FilterSymbol;

    fn facts() -> ContentFacts {
        ContentFacts {
            subject: "Your order".into(),
            has_text: true,
            has_html: true,
            text_chars: 300,
            html_visible_chars: 320,
            html_bytes: 900,
            images: 1,
            links: vec!["https://shop.example.com/o/1".into()],
            ..Default::default()
        }
    }

    #[test]
    fn a_clean_mail_passes_every_check() {
        let checks = content_checks(&facts(), false, true);
        assert!(checks.iter().all(|c| c.status != CheckStatus::Fail), "{checks:?}");
        let r = report(
            Ok(FilterVerdict {
                score: -0.1,
                required_score: 15.0,
                action: "no action".into(),
                symbols: vec![],
            }),
            checks,
        );
        assert_eq!(r.score, 10.0);
        assert!(r.fix_first.is_empty());
    }

    #[test]
    fn a_spammy_mail_loses_points_and_says_what_to_fix() {
        let f = ContentFacts {
            has_text: false,
            text_chars: 0,
            html_visible_chars: 20,
            images: 2,
            links: vec!["http://bit.ly/x".into(), "http://198.51.100.7/win".into()],
            html_problems: vec!["<div> is never closed".into()],
            ..facts()
        };
        let checks = content_checks(&f, true, false);
        let failed: Vec<_> = checks
            .iter()
            .filter(|c| c.status == CheckStatus::Fail)
            .map(|c| c.name)
            .collect();
        assert_eq!(
            failed,
            [
                "list_unsubscribe",
                "html_well_formed",
                "text_html_ratio",
                "images",
                "links"
            ]
        );
        let r = report(
            Ok(FilterVerdict {
                score: 2.85,
                required_score: 15.0,
                action: "no action".into(),
                symbols: vec![FilterSymbol {
                    name: "SUBJ_ALL_CAPS".into(),
                    score: 2.85,
                    description: None,
                    options: vec![],
                }],
            }),
            checks,
        );
        assert!(r.score < 5.0, "{r:?}");
        assert!(
            r.fix_first[0].starts_with("Link to your own domain"),
            "{:?}",
            r.fix_first
        );
        assert_eq!(r.symbols[0].sentence, "the Subject is written in capital letters");
    }

    #[test]
    fn no_filter_still_scores_the_checks() {
        let r = report(
            Err("rspamd is not configured".into()),
            content_checks(&facts(), true, true),
        );
        assert_eq!(r.score, 9.0);
        assert_eq!(r.filter_error.as_deref(), Some("rspamd is not configured"));
    }

    #[test]
    fn hosts_of_links() {
        assert_eq!(link_host("https://User@Bit.ly:443/x?y").as_deref(), Some("bit.ly"));
        assert_eq!(link_host("http://[2001:db8::1]/x").as_deref(), Some("[2001:db8::1]"));
        assert_eq!(link_host("mailto:x@y"), None);
        assert_eq!(explain_symbol("X_NEW", Some("Some rule")), "Some rule");
        assert_eq!(explain_symbol("X_NEW", None), "the filter's rule X_NEW matched");
    }
}
