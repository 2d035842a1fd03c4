//! RFC 3463 bounce classification: from an SMTP reply (basic code, enhanced code `class.subject.detail` when
//! present, text) to what it means for the recipient.
//!
//! # Rules
//!
//! 1. **Which class counts.** When both codes are present and disagree, the enhanced code's class wins
//!    (it is the more specific statement, RFC 3463 §2), with two exceptions that keep mail safe:
//!    a 2xx basic code is always [`Verdict::Delivered`] (the server took responsibility; if it fails later a
//!    DSN tells us), and a 4xx/5xx basic code with a `2.x.x` enhanced code keeps the basic class (a refusal
//!    never counts as a delivery). So `550 4.2.2` is temporary and `450 5.1.1` is permanent.
//! 2. **Temporary (class 4)** is [`Verdict::Deferred`]: retry until the deadline; whatever the reason.
//! 3. **Permanent (class 5)** is a [`Verdict::HardBounce`] only when it says the *address* is bad: the mailbox
//!    does not exist, moved or is disabled (`5.1.1`, `5.1.3`, `5.1.6`, `5.2.1`), or the domain cannot receive
//!    mail (`5.1.2`, `5.1.10` null MX, `5.4.4` no route). Only hard bounces blacklist.
//!    Every other permanent failure is a final [`Verdict::SoftBounce`] that does not blacklist: mailbox full
//!    (`5.2.2`), message too big (`5.2.3`, `5.3.4`), policy or spam rejections (`5.7.x`: a verdict on the sender
//!    or the content, not on the address), mail-system, protocol and content errors. This is what AWS SES
//!    (`Transient` / `MailboxFull`, `MessageTooLarge`, `ContentRejected`) and Postmark (`SoftBounce`) do with them.
//! 4. **No enhanced code** (or an undefined `X.0.0` one): RFC 5321's basic codes decide: `550`, `551` and `553`
//!    name an unavailable or not-allowed mailbox (hard), `552` exceeded storage (mailbox full, soft), the rest
//!    of 5xx (`554` transaction failed, `500`–`504` protocol errors) is soft. A `550` whose text speaks of spam,
//!    policy or a block list is a policy rejection (soft), as the big providers phrase them.
//! 5. **Nothing recognisable** (no code at all) is [`Verdict::Deferred`]: never lose mail on a protocol oddity.

use std::fmt;

/// An RFC 3463 enhanced status code `class.subject.detail`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EnhancedCode {
    /// 2 success, 4 persistent transient failure, 5 permanent failure.
    pub class: u8,
    /// 0–999: what the code is about (1 addressing, 2 mailbox, 3 mail system, 4 network/routing, 5 protocol,
    /// 6 content, 7 security/policy).
    pub subject: u16,
    /// 0–999: the detail within the subject.
    pub detail: u16,
}

impl EnhancedCode {
    /// Parses `X.Y.Z` (class 2, 4 or 5; subject and detail 1–3 digits), the whole of `text`.
    pub fn parse(text: &str) -> Option<EnhancedCode> {
        let mut parts = text.split('.');
        let class = parts.next()?;
        let subject = parts.next()?;
        let detail = parts.next()?;
        if parts.next().is_some() {
            return None;
        }
        let num = |s: &str| -> Option<u16> {
            (!s.is_empty() && s.len() <= 3 && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok())?
        };
        let class = match class {
            "2" => 2,
            "4" => 4,
            "5" => 5,
            _ => return None,
        };
        Some(EnhancedCode {
            class,
            subject: num(subject)?,
            detail: num(detail)?,
        })
    }
}

impl fmt::Display for EnhancedCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.class, self.subject, self.detail)
    }
}

/// What a reply means for the recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// Accepted by the receiving server.
    Delivered,
    /// Temporary failure: try again later (until the delivery deadline, then a soft bounce).
    Deferred,
    /// Permanent failure of this message, not of the address (mailbox full, too big, policy): final, no blacklisting.
    SoftBounce,
    /// The address cannot receive mail (no such mailbox or domain): final, and the address is blacklisted.
    HardBounce,
}

impl Verdict {
    /// Whether the recipient's delivery is over (delivered or bounced).
    pub fn is_final(self) -> bool {
        !matches!(self, Verdict::Deferred)
    }
}

/// The reason category of a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Category {
    /// Accepted.
    Accepted,
    /// The mailbox does not exist, moved, is disabled or its address is malformed (X.1.1, X.1.3, X.1.6, X.2.1).
    BadMailbox,
    /// The domain does not exist, has a null MX or cannot be routed to (X.1.2, X.1.10, X.4.4).
    BadDomain,
    /// The mailbox is full (X.2.2, basic 552).
    MailboxFull,
    /// The message is too big (X.2.3, X.3.4).
    MessageTooBig,
    /// Refused for policy, reputation or spam reasons (5.7.x, a 550 mentioning spam / policy / block lists).
    PolicyOrSpam,
    /// Slowed down: too many messages or connections (4.7.x, X.4.5 congestion).
    RateLimited,
    /// Connection, timeout or DNS trouble (other X.4.x).
    Network,
    /// The receiving mail system has a problem (X.3.x).
    MailSystem,
    /// Protocol or content errors (X.5.x, X.6.x).
    ProtocolOrContent,
    /// Anything else.
    Other,
}

impl Category {
    /// A short stable name (used in event reasons and docs).
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Accepted => "accepted",
            Category::BadMailbox => "bad-mailbox",
            Category::BadDomain => "bad-domain",
            Category::MailboxFull => "mailbox-full",
            Category::MessageTooBig => "message-too-big",
            Category::PolicyOrSpam => "policy-or-spam",
            Category::RateLimited => "rate-limited",
            Category::Network => "network",
            Category::MailSystem => "mail-system",
            Category::ProtocolOrContent => "protocol-or-content",
            Category::Other => "other",
        }
    }
}

/// The result of [`classify`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Classification {
    /// What happens to the recipient's delivery.
    pub verdict: Verdict,
    /// Why.
    pub category: Category,
    /// The basic reply code, when the text had one.
    pub basic: Option<u16>,
    /// The enhanced code, when the text had one.
    pub enhanced: Option<EnhancedCode>,
}

/// Classifies a reply as the transport reports it: `"550 5.1.1 <a@b>: user unknown"`, a multi-line
/// `"550-5.1.1 …"`, a DSN diagnostic `"smtp; 550 …"`, or a local reason starting with an enhanced code
/// (`"5.1.2 domain x does not exist"`). Never panics.
pub fn classify(reply: &str) -> Classification {
    let (basic, enhanced) = parse_codes(reply);
    classify_parts(basic, enhanced, reply)
}

/// Finds the basic and enhanced codes at the start of `reply` (after an optional `smtp;` diagnostic type).
fn parse_codes(reply: &str) -> (Option<u16>, Option<EnhancedCode>) {
    let mut rest = reply.trim_start();
    if let Some((kind, after)) = rest.split_once(';')
        && kind.len() <= 16
        && !kind.is_empty()
        && kind.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        rest = after.trim_start();
    }
    let mut basic = None;
    let bytes = rest.as_bytes();
    if bytes.len() >= 3
        && bytes[..3].iter().all(u8::is_ascii_digit)
        && bytes
            .get(3)
            .is_none_or(|b| matches!(b, b' ' | b'-' | b'\t' | b'\r' | b'\n'))
        && let Ok(code) = rest[..3].parse::<u16>()
        && (200..600).contains(&code)
    {
        basic = Some(code);
        rest = rest.get(4..).unwrap_or("").trim_start();
    }
    let token = rest.split(|c: char| c.is_whitespace()).next().unwrap_or("");
    let enhanced = EnhancedCode::parse(token.trim_end_matches([',', ';', ':']));
    (basic, enhanced)
}

/// Classifies a reply given as parts (e.g. a DSN's `Status` and `Diagnostic-Code`); `text` is only used for
/// the policy wording of a bare `550`. See the module documentation for the rules.
pub fn classify_parts(basic: Option<u16>, enhanced: Option<EnhancedCode>, text: &str) -> Classification {
    let basic_class = basic.map(|b| (b / 100) as u8).filter(|c| matches!(c, 2 | 4 | 5));
    let class = match (basic_class, enhanced.map(|e| e.class)) {
        (Some(2), _) => Some(2),
        (Some(b), Some(2)) => Some(b),
        (_, Some(e)) => Some(e),
        (b, None) => b,
    };
    let verdict_and_category = match class {
        Some(2) => (Verdict::Delivered, Category::Accepted),
        Some(4) => (Verdict::Deferred, category(basic, enhanced, 4, text)),
        Some(5) => {
            let c = category(basic, enhanced, 5, text);
            let v = match c {
                Category::BadMailbox | Category::BadDomain => Verdict::HardBounce,
                _ => Verdict::SoftBounce,
            };
            (v, c)
        }
        _ => (Verdict::Deferred, Category::Other),
    };
    Classification {
        verdict: verdict_and_category.0,
        category: verdict_and_category.1,
        basic,
        enhanced,
    }
}

fn category(basic: Option<u16>, enhanced: Option<EnhancedCode>, class: u8, text: &str) -> Category {
    if let Some(e) = enhanced.filter(|e| e.class != 2 && !(e.subject == 0 && e.detail == 0)) {
        return match (e.subject, e.detail) {
            (1, 1) | (1, 3) | (1, 6) | (2, 1) => Category::BadMailbox,
            (1, 2) | (1, 10) | (4, 4) => Category::BadDomain,
            (1, _) => Category::BadMailbox,
            (2, 2) => Category::MailboxFull,
            (2, 3) | (3, 4) => Category::MessageTooBig,
            (7, _) if class == 4 => Category::RateLimited,
            (7, _) => Category::PolicyOrSpam,
            (4, 5) => Category::RateLimited,
            (4, _) => Category::Network,
            (3, _) => Category::MailSystem,
            (5, _) | (6, _) => Category::ProtocolOrContent,
            _ => Category::Other,
        };
    }
    match basic {
        Some(550) if mentions_policy(text) => Category::PolicyOrSpam,
        Some(550 | 551 | 553) if class == 5 => Category::BadMailbox,
        Some(552) => Category::MailboxFull,
        Some(421) => Category::RateLimited,
        Some(500..=504) => Category::ProtocolOrContent,
        _ => Category::Other,
    }
}

fn mentions_policy(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    [
        "spam",
        "policy",
        "blocked",
        "blacklist",
        "blocklist",
        "reputation",
        "rbl",
    ]
    .iter()
    .any(|w| lower.contains(w))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(reply: &str) -> (Verdict, Category) {
        let c = classify(reply);
        (c.verdict, c.category)
    }

    #[test]
    fn common_replies() {
        use Category::*;
        use Verdict::*;
        assert_eq!(v("250 2.0.0 Ok: queued as 1234"), (Delivered, Accepted));
        assert_eq!(
            v("550 5.1.1 <a@b.example>: Recipient address rejected: User unknown"),
            (HardBounce, BadMailbox)
        );
        assert_eq!(
            v("550-5.1.1 The email account that you tried to reach does not exist."),
            (HardBounce, BadMailbox)
        );
        assert_eq!(
            v("5.1.2 domain nowhere.example does not exist (NXDOMAIN)"),
            (HardBounce, BadDomain)
        );
        assert_eq!(v("5.1.10 nomail.example publishes a null MX"), (HardBounce, BadDomain));
        assert_eq!(v("5.4.4 no route to x.example"), (HardBounce, BadDomain));
        assert_eq!(v("552 5.2.2 Mailbox full"), (SoftBounce, MailboxFull));
        assert_eq!(
            v("552 5.3.4 Message size exceeds fixed limit"),
            (SoftBounce, MessageTooBig)
        );
        assert_eq!(v("554 5.7.1 Message rejected as spam"), (SoftBounce, PolicyOrSpam));
        assert_eq!(
            v("421 4.7.28 Our system has detected an unusual rate"),
            (Deferred, RateLimited)
        );
        assert_eq!(v("451 4.7.1 Greylisted, try again later"), (Deferred, RateLimited));
        assert_eq!(v("452 4.2.2 Mailbox full"), (Deferred, MailboxFull));
        assert_eq!(v("4.4.1 connection to mx.example refused"), (Deferred, Network));
        assert_eq!(v("4.4.2 connection to mx.example timed out"), (Deferred, Network));
        assert_eq!(v("4.4.3 temporary DNS failure (SERVFAIL)"), (Deferred, Network));
        assert_eq!(v("smtp; 550 5.1.1 <x@y>... User unknown"), (HardBounce, BadMailbox));
    }

    #[test]
    fn enhanced_class_wins_except_for_deliveries() {
        use Verdict::*;
        assert_eq!(classify("550 4.2.2 over quota, try later").verdict, Deferred);
        assert_eq!(classify("450 5.1.1 no such user").verdict, HardBounce);
        assert_eq!(classify("250 5.1.1 odd but accepted").verdict, Delivered);
        assert_eq!(classify("550 2.0.0 odd refusal").verdict, HardBounce);
        assert_eq!(classify("451 2.0.0 odd deferral").verdict, Deferred);
    }

    #[test]
    fn basic_codes_alone() {
        use Category::*;
        use Verdict::*;
        assert_eq!(
            v("550 Requested action not taken: mailbox unavailable"),
            (HardBounce, BadMailbox)
        );
        assert_eq!(v("551 User not local"), (HardBounce, BadMailbox));
        assert_eq!(v("553 mailbox name not allowed"), (HardBounce, BadMailbox));
        assert_eq!(
            v("552 Requested mail action aborted: exceeded storage allocation"),
            (SoftBounce, MailboxFull)
        );
        assert_eq!(v("554 Transaction failed"), (SoftBounce, Other));
        assert_eq!(v("550 Message blocked by our spam filter"), (SoftBounce, PolicyOrSpam));
        assert_eq!(v("550 5.0.0 User unknown"), (HardBounce, BadMailbox));
        assert_eq!(v("451 Try again"), (Deferred, Other));
        assert_eq!(v("garbage"), (Deferred, Other));
        assert_eq!(v(""), (Deferred, Other));
        assert_eq!(v("999 what"), (Deferred, Other));
    }

    #[test]
    fn enhanced_code_parsing() {
        assert_eq!(
            EnhancedCode::parse("5.1.10"),
            Some(EnhancedCode {
                class: 5,
                subject: 1,
                detail: 10
            })
        );
        assert_eq!(EnhancedCode::parse("3.1.1"), None);
        assert_eq!(EnhancedCode::parse("5.1"), None);
        assert_eq!(EnhancedCode::parse("5.1.1.1"), None);
        assert_eq!(EnhancedCode::parse("5.1000.1"), None);
        assert_eq!(EnhancedCode::parse("5..1"), None);
        assert_eq!(EnhancedCode::parse("5.+1.1"), None);
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,300}") {
            let _ = classify(&s);
        }

        #[test]
        fn consistent_with_the_class_digits(basic in 200u16..600, class in proptest::sample::select(vec![2u8, 4, 5]),
                                            subject in 0u16..1000, detail in 0u16..1000, text in "[ -~]{0,40}") {
            let reply = format!("{basic} {class}.{subject}.{detail} {text}");
            let c = classify(&reply);
            proptest::prop_assert_eq!(c.basic, Some(basic));
            proptest::prop_assert_eq!(c.enhanced, Some(EnhancedCode { class, subject, detail }));
            let basic_class = (basic / 100) as u8;
            let effective = match (basic_class, class) {
                (2, _) => 2,
                (b @ (4 | 5), 2) => b,
                (_, e) => e,
            };
            let expected = match effective {
                2 => matches!(c.verdict, Verdict::Delivered),
                4 => matches!(c.verdict, Verdict::Deferred),
                _ => matches!(c.verdict, Verdict::SoftBounce | Verdict::HardBounce),
            };
            proptest::prop_assert!(expected, "{reply} -> {c:?}");
            // Only a permanent failure about the address is hard.
            if c.verdict == Verdict::HardBounce {
                proptest::prop_assert!(matches!(c.category, Category::BadMailbox | Category::BadDomain));
            }
        }
    }
}
