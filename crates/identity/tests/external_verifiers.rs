//! Signatures over bodies that relaxed canonicalisation rewrites verify with dkimpy, Mail::DKIM and
//! `opendkim-testmsg` (testkit's `ExternalDkimVerifiers`, keys served by the testkit DNS authority) and with
//! mail-auth (asking the same authority): the body hash of `body_hash` is the one verifiers that mailpush did
//! not write compute. Bodies where mail-auth's canonicalisation and RFC 6376's part (bare CRs, whitespace-only
//! lines at the end) verify everywhere once put in the form of `normalize_message`, as the worker sends them.

use std::io::Write as _;
use std::net::SocketAddr;

use hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
use mail_auth::{AuthenticatedMessage, DkimResult, MessageAuthenticator};
use mailpush_identity::{KeyAlgorithm, SigningKey, keys, normalize_message};
use mailpush_testkit::{DnsAuthority, ExternalDkimVerifiers};

/// mail-auth's verifier (the one of Stalwart-based receivers), looking keys up at `dns` without a cache.
fn mail_auth_verifier(dns: SocketAddr) -> MessageAuthenticator {
    let mut ns = NameServerConfig::udp_and_tcp(dns.ip());
    for c in &mut ns.connections {
        c.port = dns.port();
    }
    let mut opts = ResolverOpts::default();
    opts.cache_size = 0;
    MessageAuthenticator::new(ResolverConfig::from_name_servers(vec![ns]), opts).expect("mail-auth resolver")
}

/// Asserts that every signature of `signed` verifies with mail-auth (`keys` of them) and with the external
/// verifiers (or is one they cannot check).
async fn assert_verifies(
    verifiers: &ExternalDkimVerifiers,
    mail_auth: &MessageAuthenticator,
    keys: usize,
    signed: &[u8],
    body: &str,
) {
    let shown = &body[..body.len().min(80)];
    let parsed = AuthenticatedMessage::parse(signed).expect("a parsable message");
    let results = mail_auth.verify_dkim(&parsed).await;
    assert_eq!(results.len(), keys, "mail-auth on body {shown:?}");
    for r in &results {
        assert_eq!(r.result(), &DkimResult::Pass, "mail-auth on body {shown:?}");
    }
    for verdict in verifiers.verify(signed).await {
        assert!(
            verdict.pass || verdict.unsupported,
            "{} on body {:?}: {}",
            verdict.verifier,
            shown,
            verdict.detail
        );
    }
}

/// A message of `body` under the headers every case shares, with its own Subject and Message-ID local part.
/// With Date: opendkim-testmsg calls a message without one a syntax error.
fn message_with_body(subject: &str, id: &str, body: &str) -> String {
    format!(
        "From: Shop <a@example.com>\r\nTo: b@example.org\r\nSubject: {subject}\r\n\
         Date: Sun, 6 Dec 2026 16:00:00 +0000\r\nMessage-ID: <{id}@example.com>\r\n\
         MIME-Version: 1.0\r\n\r\n{body}"
    )
}

#[tokio::test]
async fn rewritten_bodies_verify_with_external_verifiers() {
    // As the end-to-end harness (`external_dkim_verdicts`): skipped with a notice where the verifiers are
    // missing or cannot start, unless CI requires them.
    let required = std::env::var("MAILPUSH_REQUIRE_DKIM_VERIFIERS").as_deref() == Ok("1");
    let skip = |why: String| {
        assert!(!required, "external DKIM verifiers: {why}");
        // Past the harness's capture, as the workspace's other SKIPPED notices.
        let _ = writeln!(std::io::stderr().lock(), "SKIPPED: external DKIM verification ({why})");
    };
    let missing = ExternalDkimVerifiers::missing().await;
    if !missing.is_empty() {
        return skip(format!("missing: {}", missing.join(", ")));
    }
    let dns = DnsAuthority::start().await.expect("dns");
    let verifiers = match ExternalDkimVerifiers::start(&dns).await {
        Ok(v) => v,
        Err(e) => return skip(e.to_string()),
    };
    let mail_auth = mail_auth_verifier(dns.addr());
    let mut signing = Vec::new();
    for a in [KeyAlgorithm::Rsa2048, KeyAlgorithm::Rsa1024, KeyAlgorithm::Ed25519] {
        let selector = format!("ext{}", a.as_str().replace('-', ""));
        let pair = keys::generate(a, selector.clone()).expect("generate");
        dns.add_txt(&format!("{selector}._domainkey.example.com"), &pair.record_value());
        signing.push(SigningKey::from_der("example.com", &selector, a, &pair.private_der).expect("key"));
    }
    let long_line = format!("{}\r\n", "word ".repeat(400));
    let big: String = (0..2_000)
        .map(|i| format!("line {i}:  two spaces,\ta tab, a trailing space \r\n"))
        .collect();
    // Signed as they are. Not here (but below, normalised): bare CRs and whitespace-only lines at the end of
    // the body, where mail-auth's canonicalisation (which `body_hash` reproduces) departs from RFC 6376 and
    // these verifiers (see `normalize`); nor a last line with trailing whitespace and no line end, which dkimpy
    // alone keeps (SMTP never delivers a body so: DATA ends with CRLF before the dot).
    for body in [
        "",
        "plain text\r\n",
        "\r\n\r\n\r\n",
        "no final line end",
        "a  b\t\tc \t d\r\n\t indented\r\n\r\nafter an empty line  \r\n\r\n\r\n",
        long_line.as_str(),
        big.as_str(),
    ] {
        let message = message_with_body("body hash", "body-hash", body);
        let mut signed = keys::sign(message.as_bytes(), &signing).expect("sign");
        signed.extend_from_slice(message.as_bytes());
        assert_verifies(&verifiers, &mail_auth, signing.len(), &signed, body).await;
    }

    // Where the canonicalisations part, and a last line with trailing whitespace and no line end: normalised
    // first, as the worker's signer does, then signed and sent as normalised.
    let bare_crs: String = (0..500)
        .map(|i| format!("line {i}: a bare CR \rthen text,\ta tab \r\r and a bare LF\n"))
        .collect();
    let blank_tail = format!("{big}\r\n \r\n\t\t\r\n \t ");
    for body in [
        "a\r\n \r\n",
        " \r\n",
        " ",
        "a \rb",
        "a \rb\r\n",
        "text\r\n\t \r\n  \r\n\r\n \t",
        "middle\r\n \r\nblank\r\n\t\r\n",
        "bare\rCRs \r\rand\nbare LFs  \n \n",
        "\r\r\n\n \r",
        "trailing whitespace, no line end \t",
        bare_crs.as_str(),
        blank_tail.as_str(),
    ] {
        let message = message_with_body("normalised body", "normalised", body);
        let normal = normalize_message(message.as_bytes());
        assert!(
            !normal.windows(2).any(|w| w[0] == b'\r' && w[1] != b'\n'),
            "a bare CR is left"
        );
        let mut signed = keys::sign(&normal, &signing).expect("sign");
        signed.extend_from_slice(&normal);
        assert_verifies(&verifiers, &mail_auth, signing.len(), &signed, body).await;
    }
}
