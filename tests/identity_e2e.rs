//! Sending identities end to end through the real `mailpush serve`: domains verified against the testkit DNS
//! authority record by record, the periodic re-check, the send gate and limits, account isolation, SMTP
//! passwords, and DKIM signatures checked by mail-auth's verifier against the published keys.

use mail_auth::hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
use mail_auth::{AuthenticatedMessage, DkimResult, MessageAuthenticator};
use mailpush_suite::*;
use mailpush_testkit::{DnsAuthority, SinkMx};
use serde_json::{Value, json};
use std::net::Ipv4Addr;
use std::time::Duration;

struct World {
    _dir: tempfile::TempDir,
    dns: DnsAuthority,
    sink: SinkMx,
    server: ServerProcess,
    client: ApiClient,
    env: std::collections::HashMap<String, String>,
}

async fn world(extra: &[(&str, String)]) -> World {
    let dns = DnsAuthority::start().await.expect("dns");
    let sink = SinkMx::start_default().await.expect("sink");
    dns.add_mx("example.org", 10, "mx.example.org");
    dns.add_a("mx.example.org", Ipv4Addr::LOCALHOST);
    let dir = temp_dir();
    let mut vars = vec![
        ("MAILPUSH_DNS_SERVERS", dns.addr().to_string()),
        ("MAILPUSH_DELIVERY_PORT", sink.addr().port().to_string()),
        ("MAILPUSH_RETRY_SCHEDULE_SECS", "1".to_string()),
        ("MAILPUSH_SPF_INCLUDE", "_spf.mailpush.test".to_string()),
        ("MAILPUSH_BOUNCE_MX_HOST", "bounce.mailpush.test".to_string()),
    ];
    vars.extend(extra.iter().cloned());
    let env = base_env(dir.path(), &vars);
    let creds = create_account(&env, "shop").await;
    let server = ServerProcess::start("mailpush", &["serve"], &env).await;
    let client = ApiClient::new(&server.api_addr, &creds);
    World {
        _dir: dir,
        dns,
        sink,
        server,
        client,
        env,
    }
}

fn code(r: &Value) -> String {
    ApiClient::error_code(r).unwrap_or_else(|| format!("no error: {r}"))
}

fn mail(from: &str) -> Value {
    json!({ "FromEmailAddress": from, "Destination": ["alice@example.org"], "Subject": "Hi", "Simple": { "Text": b64(b"hello") } })
}

fn attribute<'a>(reply: &'a Value, ty: &str, starts: &str) -> &'a Value {
    reply["Attributes"]
        .as_array()
        .expect("Attributes")
        .iter()
        .find(|a| a["Type"] == ty && a["ExpectedValue"].as_str().is_some_and(|v| v.starts_with(starts)))
        .unwrap_or_else(|| panic!("no {ty} {starts}… in {reply}"))
}

async fn update(client: &ApiClient, domain: &str) -> Value {
    client
        .call("UpdateEmailIdentity", &json!({ "EmailIdentity": domain }))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_domain_is_verified_record_by_record_and_loses_it_when_dns_breaks() {
    let w = world(&[("MAILPUSH_IDENTITY_RECHECK_SECS", "1".to_string())]).await;
    let domain = "mail.shop.example.com";
    let created = w
        .client
        .call(
            "CreateEmailIdentity",
            &json!({ "EmailIdentity": domain, "DKIMOption": 3 }),
        )
        .await;
    assert!(created.get("Error").is_none(), "{created}");
    assert_eq!(created["IdentityType"], "DOMAIN");
    assert_eq!(created["VerifiedForSendingStatus"], false);
    assert_eq!(created["DKIMOption"], 3);
    let attrs = created["Attributes"].as_array().unwrap();
    assert_eq!(attrs.len(), 5, "{created}");
    let dkim = attribute(&created, "TXT", "v=DKIM1");
    assert!(
        dkim["SendDomain"].as_str().unwrap().ends_with("._domainkey.mail.shop"),
        "{dkim}"
    );
    assert!(dkim["ExpectedValue"].as_str().unwrap().contains("k=ed25519; p="));
    // SPF and the bounce MX live at the return-path domain: the domain's own MX stays with its mail server.
    assert_eq!(created["MailFromDomain"], "bounce.mail.shop.example.com");
    let return_path = "bounce.mail.shop.example.com";
    let spf = attribute(&created, "TXT", "v=spf1");
    assert_eq!(spf["SendDomain"], "bounce.mail.shop");
    assert_eq!(spf["ExpectedValue"], "v=spf1 include:_spf.mailpush.test ~all");
    let mx = attribute(&created, "MX", "bounce");
    assert_eq!(mx["SendDomain"], "bounce.mail.shop");
    assert_eq!(mx["ExpectedValue"], "bounce.mailpush.test.");
    let dmarc = attribute(&created, "TXT", "v=DMARC1");
    assert_eq!(dmarc["SendDomain"], "_dmarc.mail.shop");
    assert!(attrs.iter().all(|a| a["Status"] == false && a["CurrentValue"] == ""));

    // A created address on an unverified domain cannot send yet.
    let r = w
        .client
        .call(
            "CreateEmailAddress",
            &json!({ "EmailAddress": format!("news@{domain}"), "EmailSenderName": "News" }),
        )
        .await;
    assert!(r.get("Error").is_none(), "{r}");
    let r = w.client.call("SendEmail", &mail(&format!("news@{domain}"))).await;
    assert_eq!(code(&r), "FailedOperation.NotAuthenticatedSender");

    // DKIM alone: not enough; the DKIM record shows what DNS holds (split into strings, with spaces).
    let dkim_name = record_fqdn(&created, domain, dkim["SendDomain"].as_str().unwrap());
    let key = dkim["ExpectedValue"].as_str().unwrap().to_string();
    let (head, tail) = key.split_at(30);
    w.dns
        .add_txt_strings(&dkim_name, vec![head.to_string(), format!(" {tail}")]);
    let r = update(&w.client, domain).await;
    assert_eq!(r["VerifiedForSendingStatus"], false, "{r}");
    assert_eq!(attribute(&r, "TXT", "v=DKIM1")["Status"], true, "{r}");
    assert_eq!(attribute(&r, "TXT", "v=spf1")["Status"], false);
    assert!(r["SendingDisabledReason"].as_str().unwrap().contains("SPF"), "{r}");

    // A merged SPF record (another include beside ours) passes; MX with the trailing dot omitted passes; the
    // domain's own MX points at its own mail server.
    w.dns.add_txt(
        return_path,
        "v=spf1 include:_spf.google.com include:_spf.mailpush.test -all",
    );
    w.dns.add_txt(return_path, "some-site-verification=abc");
    w.dns.add_mx(return_path, 10, "bounce.mailpush.test");
    w.dns.add_mx(domain, 10, "mx.shop.example.com");
    let r = update(&w.client, domain).await;
    assert_eq!(attribute(&r, "TXT", "v=spf1")["Status"], true, "{r}");
    assert_eq!(attribute(&r, "MX", "bounce")["Status"], true, "{r}");
    // DMARC is required: without a policy at the domain or its organisational domain it does not verify.
    assert_eq!(r["VerifiedForSendingStatus"], false, "{r}");
    assert!(
        r["SendingDisabledReason"]
            .as_str()
            .unwrap()
            .contains("no DMARC record (v=DMARC1) at _dmarc.mail.shop.example.com"),
        "{r}"
    );
    w.dns.add_txt("_dmarc.example.com", "v=DMARC1; p=none");
    let r = update(&w.client, domain).await;
    assert_eq!(r["VerifiedForSendingStatus"], true, "{r}");
    assert_eq!(r["SendingDisabledReason"], "");
    assert_eq!(
        attribute(&r, "TXT", "v=spf1")["CurrentValue"],
        "v=spf1 include:_spf.google.com include:_spf.mailpush.test -all"
    );
    assert_eq!(
        attribute(&r, "MX", "bounce")["CurrentValue"],
        "10 bounce.mailpush.test."
    );
    // The organisational domain's policy covers the sub-domain.
    assert_eq!(attribute(&r, "TXT", "v=DMARC1")["Status"], true, "{r}");
    assert!(
        attribute(&r, "TXT", "v=DMARC1")["CurrentValue"]
            .as_str()
            .unwrap()
            .contains("inherited from _dmarc.example.com"),
        "{r}"
    );
    let r = w
        .client
        .call("SendEmail", &mail(&format!("News <news@{domain}>")))
        .await;
    assert!(r["MessageId"].is_string(), "{r}");

    // A second SPF record breaks it, with the reason given; the scheduled re-check notices by itself.
    w.dns.add_txt(return_path, "v=spf1 include:other.example ~all");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let got = loop {
        let g = w
            .client
            .call("GetEmailIdentity", &json!({ "EmailIdentity": domain }))
            .await;
        if g["VerifiedForSendingStatus"] == false {
            break g;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the re-check never noticed: {g}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let reason = got["SendingDisabledReason"].as_str().unwrap();
    assert!(reason.contains("2 SPF records"), "{got}");
    assert!(
        attribute(&got, "TXT", "v=spf1")["CurrentValue"]
            .as_str()
            .unwrap()
            .contains("other.example")
    );
    let list = w.client.call("ListEmailIdentities", &json!({})).await;
    assert_eq!(list["Total"], 1);
    assert_eq!(list["EmailIdentities"][0]["IdentityName"], domain);
    assert_eq!(list["EmailIdentities"][0]["SendingEnabled"], false);
    assert!(
        list["EmailIdentities"][0]["SendingDisabledReason"]
            .as_str()
            .unwrap()
            .contains("SPF")
    );
    let r = w.client.call("SendEmail", &mail(&format!("news@{domain}"))).await;
    assert_eq!(code(&r), "FailedOperation.NotAuthenticatedSender");
    assert!(r["Error"]["Message"].as_str().unwrap().contains("SPF"), "{r}");

    // Removing the extra record and re-verifying restores sending.
    w.dns.remove(return_path, mailpush_testkit::RecordType::TXT);
    w.dns.add_txt(return_path, "v=spf1 include:_spf.mailpush.test ~all");
    assert_eq!(update(&w.client, domain).await["VerifiedForSendingStatus"], true);

    // The operator's view of the same domain.
    let out = tokio::process::Command::new(bin_path("mailpush"))
        .args(["domain", "check", domain])
        .envs(&w.env)
        .output()
        .await
        .expect("run mailpush domain check");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        text.contains(&dkim_name) && text.contains("pass") && text.contains("result: sendable"),
        "{text}"
    );
    w.dns.remove(&dkim_name, mailpush_testkit::RecordType::TXT);
    let out = tokio::process::Command::new(bin_path("mailpush"))
        .args(["domain", "check", domain])
        .envs(&w.env)
        .output()
        .await
        .expect("run mailpush domain check");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(
        text.contains("FAIL: no TXT record at") && text.contains("NOT sendable"),
        "{text}"
    );
    w.server.terminate().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apex_domains_publish_at_the_apex() {
    let w = world(&[]).await;
    let r = w
        .client
        .call(
            "CreateEmailIdentity",
            &json!({ "EmailIdentity": "ShopApex.COM", "DKIMOption": 3 }),
        )
        .await;
    assert_eq!(attribute(&r, "TXT", "v=spf1")["SendDomain"], "bounce", "{r}");
    assert_eq!(attribute(&r, "MX", "bounce")["SendDomain"], "bounce", "{r}");
    assert_eq!(attribute(&r, "TXT", "v=DMARC1")["SendDomain"], "_dmarc");
    assert!(
        attribute(&r, "TXT", "v=DKIM1")["SendDomain"]
            .as_str()
            .unwrap()
            .ends_with("._domainkey")
    );
    // Default DKIMOption is RSA-2048.
    let r = w
        .client
        .call("CreateEmailIdentity", &json!({ "EmailIdentity": "rsa.shopapex.com" }))
        .await;
    assert_eq!(r["DKIMOption"], 1, "{r}");
    assert!(
        attribute(&r, "TXT", "v=DKIM1")["ExpectedValue"]
            .as_str()
            .unwrap()
            .contains("k=rsa; p=MII")
    );
    w.server.terminate().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gates_limits_and_ownership_answer_with_their_codes() {
    let w = world(&[
        ("MAILPUSH_MAX_DOMAINS_PER_ACCOUNT", "2".to_string()),
        ("MAILPUSH_MAX_SENDERS_PER_DOMAIN", "2".to_string()),
    ])
    .await;
    let a = &w.client;
    let b = ApiClient::new(&w.server.api_addr, &create_account(&w.env, "other").await);

    // Not a created sender.
    assert_eq!(
        code(&a.call("SendEmail", &mail("noreply@shop.example.com")).await),
        "InvalidParameterValue.NoSuchSender"
    );
    verified_sender(a, &w.dns, "noreply@shop.example.com").await;
    let r = a.call("SendEmail", &mail("noreply@shop.example.com")).await;
    assert!(r["MessageId"].is_string(), "{r}");
    // Another address of a verified domain still has to be created first.
    assert_eq!(
        code(&a.call("SendEmail", &mail("sales@shop.example.com")).await),
        "InvalidParameterValue.NoSuchSender"
    );
    // HeaderFrom outside the verified domain.
    let mut m = mail("noreply@shop.example.com");
    m["HeaderFrom"] = json!("ceo@bank.example");
    assert_eq!(
        code(&a.call("SendEmail", &m).await),
        "FailedOperation.NotAuthenticatedSender"
    );
    m["HeaderFrom"] = json!("Shop <billing@shop.example.com>");
    assert!(a.call("SendEmail", &m).await["MessageId"].is_string());

    // Repeat creation, another account's domain, the domain limit, bad options and names.
    let again = json!({ "EmailIdentity": "shop.example.com" });
    assert_eq!(
        code(&a.call("CreateEmailIdentity", &again).await),
        "InvalidParameterValue.RepeatCreation"
    );
    assert_eq!(
        code(&b.call("CreateEmailIdentity", &again).await),
        "InvalidParameterValue.CreatedByOther"
    );
    assert_eq!(
        code(
            &a.call(
                "CreateEmailIdentity",
                &json!({ "EmailIdentity": "x.example.com", "DKIMOption": 9 })
            )
            .await
        ),
        "InvalidParameterValue"
    );
    assert_eq!(
        code(
            &a.call("CreateEmailIdentity", &json!({ "EmailIdentity": "not a domain" }))
                .await
        ),
        "InvalidParameterValue"
    );
    assert_eq!(
        code(&a.call("CreateEmailIdentity", &json!({})).await),
        "MissingParameter"
    );
    let r = a
        .call(
            "CreateEmailIdentity",
            &json!({ "EmailIdentity": "second.example.com", "DKIMOption": 3 }),
        )
        .await;
    assert!(r.get("Error").is_none(), "{r}");
    assert_eq!(
        code(
            &a.call(
                "CreateEmailIdentity",
                &json!({ "EmailIdentity": "third.example.com", "DKIMOption": 3 })
            )
            .await
        ),
        "OperationDenied.ExceedDomainLimit"
    );

    // Account B can neither read, verify, delete, nor send from A's domain, nor add an address to it.
    let dom = json!({ "EmailIdentity": "shop.example.com" });
    assert_eq!(
        code(&b.call("GetEmailIdentity", &dom).await),
        "InvalidParameterValue.NotExistDomain"
    );
    assert_eq!(
        code(&b.call("UpdateEmailIdentity", &dom).await),
        "InvalidParameterValue.NotExistDomain"
    );
    assert_eq!(
        code(&b.call("DeleteEmailIdentity", &dom).await),
        "InvalidParameterValue.NotExistDomain"
    );
    assert_eq!(
        code(&b.call("SendEmail", &mail("noreply@shop.example.com")).await),
        "InvalidParameterValue.NoSuchSender"
    );
    assert_eq!(
        code(
            &b.call("CreateEmailAddress", &json!({ "EmailAddress": "b@shop.example.com" }))
                .await
        ),
        "InvalidParameterValue.NotExistDomain"
    );
    assert_eq!(b.call("ListEmailIdentities", &json!({})).await["Total"], 0);
    assert_eq!(b.call("ListEmailAddress", &json!({})).await["EmailSenders"], json!([]));

    // Sender addresses: alias rules, repeat, the per-domain limit, deletion order.
    assert_eq!(
        code(
            &a.call(
                "CreateEmailAddress",
                &json!({ "EmailAddress": "x@shop.example.com", "EmailSenderName": "Bad: Name" })
            )
            .await
        ),
        "InvalidParameterValue.IllegalSenderName"
    );
    assert_eq!(
        code(
            &a.call(
                "CreateEmailAddress",
                &json!({ "EmailAddress": "noreply@shop.example.com" })
            )
            .await
        ),
        "InvalidParameterValue.RepeatEmailAddress"
    );
    let r = a
        .call(
            "CreateEmailAddress",
            &json!({ "EmailAddress": "sales@shop.example.com", "EmailSenderName": "Sales" }),
        )
        .await;
    assert!(r.get("Error").is_none(), "{r}");
    assert_eq!(
        code(
            &a.call(
                "CreateEmailAddress",
                &json!({ "EmailAddress": "third@shop.example.com" })
            )
            .await
        ),
        "OperationDenied.ExceedSenderLimit"
    );
    assert_eq!(
        code(&a.call("DeleteEmailIdentity", &dom).await),
        "OperationDenied.SenderWithDomainIsNotEmpty"
    );
    let list = a.call("ListEmailAddress", &json!({})).await;
    let senders = list["EmailSenders"].as_array().unwrap();
    assert_eq!(senders.len(), 2, "{list}");
    assert_eq!(senders[1]["EmailAddress"], "sales@shop.example.com");
    assert_eq!(senders[1]["EmailSenderName"], "Sales");
    assert_eq!(senders[1]["SmtpPwdType"], 0);

    // SMTP passwords.
    let pw = |p: &str| json!({ "EmailAddress": "sales@shop.example.com", "Password": p });
    assert_eq!(
        code(&a.call("UpdateEmailSmtpPassWord", &pw("short1A")).await),
        "InvalidParameterValue.InvalidSmtpPassWord"
    );
    assert_eq!(
        code(&a.call("UpdateEmailSmtpPassWord", &pw("alllowercase123")).await),
        "InvalidParameterValue.InvalidSmtpPassWord"
    );
    assert!(
        a.call("UpdateEmailSmtpPassWord", &pw("GoodPassw0rd"))
            .await
            .get("Error")
            .is_none()
    );
    assert_eq!(
        code(&a.call("UpdateEmailSmtpPassWord", &pw("GoodPassw0rd")).await),
        "OperationDenied.RepeatPassWord"
    );
    assert!(
        a.call("UpdateEmailSmtpPassWord", &pw("BetterPassw0rd"))
            .await
            .get("Error")
            .is_none()
    );
    assert_eq!(
        code(&b.call("UpdateEmailSmtpPassWord", &pw("OtherPassw0rd")).await),
        "InvalidParameterValue.NoSuchSender"
    );
    let list = a.call("ListEmailAddress", &json!({})).await;
    assert_eq!(list["EmailSenders"][1]["SmtpPwdType"], 1);

    // Deleting the addresses frees the domain.
    for addr in ["noreply@shop.example.com", "sales@shop.example.com"] {
        assert_eq!(
            code(&b.call("DeleteEmailAddress", &json!({ "EmailAddress": addr })).await),
            "InvalidParameterValue.NoSuchSender"
        );
        let r = a.call("DeleteEmailAddress", &json!({ "EmailAddress": addr })).await;
        assert!(r.get("Error").is_none(), "{r}");
    }
    assert!(a.call("DeleteEmailIdentity", &dom).await.get("Error").is_none());
    assert_eq!(
        code(&a.call("GetEmailIdentity", &dom).await),
        "InvalidParameterValue.NotExistDomain"
    );
    // Now B may take it.
    assert!(
        b.call(
            "CreateEmailIdentity",
            &json!({ "EmailIdentity": "shop.example.com", "DKIMOption": 3 })
        )
        .await
        .get("Error")
        .is_none()
    );
    w.server.terminate().await;
}

fn authenticator(dns: &DnsAuthority) -> MessageAuthenticator {
    let mut ns = NameServerConfig::udp_and_tcp(dns.addr().ip());
    for c in &mut ns.connections {
        c.port = dns.addr().port();
    }
    let mut opts = ResolverOpts::default();
    opts.cache_size = 0;
    MessageAuthenticator::new(ResolverConfig::from_name_servers(vec![ns]), opts).expect("resolver")
}

async fn dkim_results(auth: &MessageAuthenticator, raw: &[u8]) -> Vec<(String, bool)> {
    let msg = AuthenticatedMessage::parse(raw).expect("parsable mail");
    auth.verify_dkim(&msg)
        .await
        .iter()
        .map(|o| {
            (
                o.signature().map(|s| format!("{:?}", s.a)).unwrap_or_default(),
                *o.result() == DkimResult::Pass,
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivered_mail_verifies_with_the_published_keys_and_tampering_fails() {
    let w = world(&[]).await;
    let auth = authenticator(&w.dns);
    // (DKIMOption, signatures expected)
    let cases = [(0, 1), (1, 1), (2, 2), (3, 1), (4, 2)];
    for (i, (option, signatures)) in cases.into_iter().enumerate() {
        let from = format!("noreply@k{option}.shop.example.com");
        verified_sender_with(&w.client, &w.dns, &from, option).await;
        let to = format!("dkim{option}@example.org");
        let r = w
            .client
            .call(
                "SendEmail",
                &json!({
                    "FromEmailAddress": format!("Shop <{from}>"),
                    "Destination": [to],
                    "Cc": [format!("cc{option}@example.org")],
                    "ReplyToAddresses": "help@example.org",
                    "Subject": format!("Signed {option} — 签名"),
                    "Simple": { "Html": b64("<p>Hello 世界</p>".as_bytes()), "Text": b64(b"Hello") },
                    "Attachments": [{ "FileName": "a.txt", "Content": b64(b"attachment") }],
                }),
            )
            .await;
        assert!(r["MessageId"].is_string(), "{r}");
        let msgs = w
            .sink
            .wait_for_messages(i + 1, Duration::from_secs(30))
            .await
            .expect("delivered");
        let m = msgs
            .iter()
            .find(|m| m.rcpt_to.contains(&to))
            .expect("the mail of this case");
        let raw = String::from_utf8_lossy(&m.data);
        assert_eq!(raw.matches("DKIM-Signature:").count(), signatures, "{raw}");
        assert!(raw.contains("c=relaxed/relaxed"));
        assert!(raw.contains(&format!("d=k{option}.shop.example.com")));
        let results = dkim_results(&auth, &m.data).await;
        assert_eq!(results.len(), signatures, "{results:?}");
        assert!(results.iter().all(|(_, pass)| *pass), "option {option}: {results:?}");
        assert_dkim_verifies_everywhere(&w.dns, &[&m.data]).await;

        // The body altered after signing: no signature passes.
        let text = String::from_utf8_lossy(&m.data).into_owned();
        let tampered = text.replacen("Hello", "Jello", 1);
        assert_ne!(tampered, text);
        let results = dkim_results(&auth, tampered.as_bytes()).await;
        assert!(
            results.iter().all(|(_, pass)| !*pass),
            "option {option} tampered: {results:?}"
        );
        if let Some(verdicts) = external_dkim_verdicts(&w.dns, tampered.as_bytes()).await {
            assert!(
                verdicts.iter().all(|v| !v.pass),
                "option {option} tampered: {verdicts:?}"
            );
        }
    }
    w.server.terminate().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_text_with_bare_crs_is_signed_as_delivered_and_verifies_everywhere() {
    // mail-builder sends such a text in 7bit with its bare CRs; the DATA writer turns them into CRLF. Signed as
    // built, the signature failed everywhere (mail-auth had dropped the CRs, the others kept them).
    let w = world(&[]).await;
    let auth = authenticator(&w.dns);
    for (option, signatures) in [(1, 1), (4, 2)] {
        let from = format!("noreply@cr{option}.shop.example.com");
        verified_sender_with(&w.client, &w.dns, &from, option).await;
        let to = format!("bare-cr{option}@example.org");
        let r = w
            .client
            .call(
                "SendEmail",
                &json!({
                    "FromEmailAddress": from,
                    "Destination": [to],
                    "Subject": "Bare CR",
                    "Simple": { "Text": b64(b"Dear customer \rbare CR\r\n\tindented \r\r text\r\n") },
                }),
            )
            .await;
        assert!(r["MessageId"].is_string(), "{r}");
        let msgs = w
            .sink
            .wait_for_messages(if option == 1 { 1 } else { 2 }, Duration::from_secs(30))
            .await
            .expect("delivered");
        let m = msgs.iter().find(|m| m.rcpt_to.contains(&to)).expect("the mail");
        assert!(
            !m.data.windows(2).any(|p| p[0] == b'\r' && p[1] != b'\n'),
            "bare CR delivered"
        );
        let results = dkim_results(&auth, &m.data).await;
        assert_eq!(results.len(), signatures, "{results:?}");
        assert!(results.iter().all(|(_, pass)| *pass), "option {option}: {results:?}");
        assert_dkim_verifies_everywhere(&w.dns, &[&m.data]).await;
    }
    w.server.terminate().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_to_several_domains_is_signed_once() {
    let w = world(&[]).await;
    w.dns.add_mx("example.net", 10, "mx.example.net");
    w.dns.add_a("mx.example.net", Ipv4Addr::LOCALHOST);
    verified_sender_with(&w.client, &w.dns, "noreply@shop.example.com", 1).await;
    let r = w
        .client
        .call(
            "SendEmail",
            &json!({ "FromEmailAddress": "noreply@shop.example.com", "Destination": ["a@example.org", "b@example.net"], "Subject": "Hi", "Simple": { "Text": b64(b"hello") } }),
        )
        .await;
    assert!(r["MessageId"].is_string(), "{r}");
    let msgs = w
        .sink
        .wait_for_messages(2, Duration::from_secs(30))
        .await
        .expect("two transactions");
    let sig = |m: &mailpush_testkit::ReceivedMessage| {
        let raw = String::from_utf8_lossy(&m.data).into_owned();
        let start = raw.find("DKIM-Signature:").expect("signed");
        // The whole field: its first line and the folded ones after it.
        let mut lines = raw[start..].split("\r\n");
        let mut field = lines.next().unwrap_or_default().to_string();
        for line in lines.take_while(|l| l.starts_with([' ', '\t'])) {
            field.push_str(line);
        }
        assert!(field.contains("b="), "{field}");
        field
    };
    // One signing per message: both transactions carry the identical header (same t= and b=).
    assert_eq!(sig(&msgs[0]), sig(&msgs[1]));
    w.server.terminate().await;
}
