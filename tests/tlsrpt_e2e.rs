//! TLS-RPT (RFC 8460) through the real `mailpush serve`: mail goes to three receiving domains with MTA-STS
//! policies served by a testkit HTTPS policy host — `good.example` (enforce, its MX presents a certificate for its
//! name), `bad.example` (enforce, its MX presents a certificate for another name: deferred) and `testing.example`
//! (testing, the same wrong certificate: delivered anyway). Each publishes `_smtp._tls` TXT in the testkit DNS
//! naming an `https:` rua (the policy host again, which records what is POSTed to it) and/or a `mailto:` rua (a
//! testkit sink, whose own domain enforces a policy its MX fails: reports are delivered despite TLS failures). The
//! test clock then moves past midnight UTC and the reports of the day are checked: the gunzipped
//! JSON with its counts, the POST's media type, the report mail's subject, headers, attachment and DKIM signature
//! (the reports' sender domain is verified under the account `tls-rpt` they are sent as).

use mail_parser::MimeHeaders;
use mailpush_suite::*;
use mailpush_testkit::{DnsAuthority, PolicyAnswer, PolicyServer, ReceivedMessage, SinkConfig, SinkMx};
use serde_json::Value;
use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

const SENDER: &str = "noreply@shop.example.com";
const DAY_MS: i64 = 86_400_000;

fn policy(mode: &str, mx: &str) -> PolicyAnswer {
    PolicyAnswer::policy(format!(
        "version: STSv1\r\nmode: {mode}\r\nmx: {mx}\r\nmax_age: 86400\r\n"
    ))
}

fn gunzip(bytes: &[u8]) -> Value {
    let mut json = String::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_string(&mut json)
        .expect("gzip");
    serde_json::from_str(&json).expect("report JSON")
}

/// Waits until the status of `id` says `what` (a deferral reason, say).
async fn wait_reason(client: &ApiClient, id: &str, what: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let r = client
            .call(
                "GetSendEmailStatus",
                &serde_json::json!({ "RequestDate": today(), "MessageId": id, "Offset": 0, "Limit": 10 }),
            )
            .await;
        let row = r["EmailStatusList"][0].clone();
        if row["DeliverMessage"].as_str().is_some_and(|m| m.contains(what)) {
            return row;
        }
        assert!(tokio::time::Instant::now() < deadline, "{id} never said {what:?}: {r}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Report mails the sink received so far.
fn report_mails(sink: &SinkMx) -> Vec<ReceivedMessage> {
    sink.messages()
        .into_iter()
        .filter(|m| m.rcpt_to.iter().any(|r| r == "tls@reports.example"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_day_after_each_domain_gets_its_report_by_https_and_by_mail() {
    // Two MX hosts on one port: the good one (and the report mailbox) on 127.0.0.1, the one presenting a
    // certificate for another name on 127.0.0.2.
    let good = SinkMx::start(SinkConfig {
        starttls: true,
        hostname: "mx.good.example".into(),
        ..SinkConfig::default()
    })
    .await
    .expect("good sink");
    let port = good.addr().port();
    let bad = SinkMx::start(SinkConfig {
        starttls: true,
        hostname: "elsewhere.example".into(),
        bind: SocketAddr::from(([127, 0, 0, 2], port)),
        ..SinkConfig::default()
    })
    .await
    .expect("bad sink");
    let https = PolicyServer::start_for(
        &[
            "mta-sts.good.example",
            "mta-sts.bad.example",
            "mta-sts.testing.example",
            "mta-sts.reports.example",
            "reports.example",
        ],
        PolicyAnswer {
            status: 200,
            content_type: "text/plain".into(),
            body: "ok".into(),
        },
    )
    .await
    .expect("https server");
    https.set_answer_for("mta-sts.good.example", policy("enforce", "mx.good.example"));
    https.set_answer_for("mta-sts.bad.example", policy("enforce", "mx.bad.example"));
    https.set_answer_for("mta-sts.testing.example", policy("testing", "mx.testing.example"));
    // The report mailbox's domain enforces a policy its own MX fails: reports go out all the same (RFC 8460
    // §5.3), where any other mail to it would be deferred.
    https.set_answer_for("mta-sts.reports.example", policy("enforce", "mx.elsewhere.example"));
    let rua_https = format!("https://reports.example:{}/tlsrpt", https.port());

    let dns = DnsAuthority::start().await.expect("dns");
    for (domain, mx, ip) in [
        ("good.example", "mx.good.example", Ipv4Addr::LOCALHOST),
        ("bad.example", "mx.bad.example", Ipv4Addr::new(127, 0, 0, 2)),
        ("testing.example", "mx.testing.example", Ipv4Addr::new(127, 0, 0, 2)),
        ("reports.example", "mx.reports.example", Ipv4Addr::LOCALHOST),
    ] {
        dns.add_mx(domain, 10, mx);
        dns.add_a(mx, ip);
        dns.add_txt(&format!("_mta-sts.{domain}"), "v=STSv1; id=20261206;");
        dns.add_a(&format!("mta-sts.{domain}"), Ipv4Addr::LOCALHOST);
    }
    dns.add_a("reports.example", Ipv4Addr::LOCALHOST);
    dns.add_txt(
        "_smtp._tls.good.example",
        &format!("v=TLSRPTv1; rua={rua_https},mailto:tls@reports.example"),
    );
    dns.add_txt("_smtp._tls.bad.example", &format!("v=TLSRPTv1; rua={rua_https}"));
    dns.add_txt(
        "_smtp._tls.testing.example",
        "v=TLSRPTv1;rua=mailto:tls@reports.example",
    );

    let dir = temp_dir();
    let clock = TestClock::new(dir.path());
    let ca_file = dir.path().join("outbound-ca.pem");
    std::fs::write(
        &ca_file,
        pem_certificate(good.ca_certificate_der().expect("CA"))
            + &pem_certificate(bad.ca_certificate_der().expect("CA"))
            + &pem_certificate(https.ca_certificate_der()),
    )
    .expect("CA file");
    let env = base_env(
        dir.path(),
        &[
            ("MAILPUSH_DNS_SERVERS", dns.addr().to_string()),
            ("MAILPUSH_DELIVERY_PORT", port.to_string()),
            // One attempt a day: the deferred mail adds no further sessions to the day reported.
            ("MAILPUSH_RETRY_SCHEDULE_SECS", "3600".to_string()),
            ("MAILPUSH_MTA_STS_POLICY_PORT", https.port().to_string()),
            ("MAILPUSH_CALLBACK_ALLOW_CIDRS", "127.0.0.0/8".to_string()),
            ("MAILPUSH_OUTBOUND_TLS_CA_FILE", ca_file.display().to_string()),
            ("MAILPUSH_HELO_NAME", "mta.sender.example".to_string()),
            ("MAILPUSH_TLS_RPT_ORGANIZATION", "Sender Example".to_string()),
            ("MAILPUSH_TLS_RPT_CHECK_SECS", "1".to_string()),
            clock.env(),
        ],
    );
    let creds = create_account(&env, "shop").await;
    let report_creds = create_account(&env, "tls-rpt").await;
    let server = ServerProcess::start("mailpush", &["serve"], &env).await;
    let client = ApiClient::new(&server.api_addr, &creds).on_clock(&clock);
    verified_sender(&client, &dns, SENDER).await;
    // The reports' sender domain, verified under the account they are sent as, so that report mail is DKIM-signed
    // (RFC 8460 §5.3: receivers ignore unsigned reports).
    let reporter = ApiClient::new(&server.api_addr, &report_creds).on_clock(&clock);
    verified_sender(&reporter, &dns, "tlsrpt-noreply@mta.sender.example").await;

    let ok = client.send_simple(SENDER, "a@good.example", "Hi").await;
    client.wait_deliver_status(&ok, 1, Duration::from_secs(30)).await;
    let deferred = client.send_simple(SENDER, "a@bad.example", "Hi").await;
    wait_reason(&client, &deferred, "MTA-STS: certificate name mismatch").await;
    let testing = client.send_simple(SENDER, "a@testing.example", "Hi").await;
    client.wait_deliver_status(&testing, 1, Duration::from_secs(30)).await;
    assert_eq!(bad.message_count(), 1, "a testing policy's failure still delivers");
    let day = today();
    assert!(
        https.received().iter().all(|r| r.method == "GET"),
        "nothing reported during the day"
    );

    clock.advance(DAY_MS).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while https.received().iter().filter(|r| r.method == "POST").count() < 2 || report_mails(&good).len() < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "reports missing: POSTs {:?}, mails {}",
            https
                .received()
                .iter()
                .map(|r| (&r.method, &r.path))
                .collect::<Vec<_>>(),
            report_mails(&good).len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // By HTTPS: one POST per domain publishing an https rua.
    let posts: Vec<_> = https.received().into_iter().filter(|r| r.method == "POST").collect();
    let mut reports: Vec<Value> = Vec::new();
    for post in &posts {
        assert_eq!(post.path, "/tlsrpt");
        assert_eq!(post.content_type, "application/tlsrpt+gzip");
        reports.push(gunzip(&post.body));
    }
    let by_domain = |reports: &[Value], domain: &str| -> Value {
        reports
            .iter()
            .find(|r| r["policies"][0]["policy"]["policy-domain"] == domain)
            .cloned()
            .unwrap_or_else(|| panic!("no report for {domain}: {reports:?}"))
    };
    let good_report = by_domain(&reports, "good.example");
    assert_eq!(good_report["organization-name"], "Sender Example");
    assert_eq!(good_report["contact-info"], "tlsrpt-noreply@mta.sender.example");
    assert_eq!(good_report["date-range"]["start-datetime"], format!("{day}T00:00:00Z"));
    assert_eq!(good_report["date-range"]["end-datetime"], format!("{day}T23:59:59Z"));
    assert_eq!(
        good_report["report-id"],
        format!("{day}_good.example@mta.sender.example")
    );
    let policies = good_report["policies"].as_array().expect("policies");
    assert_eq!(policies.len(), 1, "{good_report}");
    let p = &policies[0];
    assert_eq!(p["policy"]["policy-type"], "sts");
    assert_eq!(p["policy"]["mx-host"], serde_json::json!(["mx.good.example"]));
    assert_eq!(
        p["policy"]["policy-string"],
        serde_json::json!([
            "version: STSv1",
            "mode: enforce",
            "mx: mx.good.example",
            "max_age: 86400"
        ])
    );
    assert_eq!(p["summary"]["total-successful-session-count"], 1);
    assert_eq!(p["summary"]["total-failure-session-count"], 0);
    assert!(p.get("failure-details").is_none());

    let bad_report = by_domain(&reports, "bad.example");
    let p = &bad_report["policies"][0];
    assert_eq!(p["policy"]["policy-type"], "sts");
    assert_eq!(p["summary"]["total-successful-session-count"], 0);
    assert_eq!(p["summary"]["total-failure-session-count"], 1);
    let detail = &p["failure-details"][0];
    assert_eq!(detail["result-type"], "certificate-host-mismatch", "{bad_report}");
    assert_eq!(detail["receiving-mx-hostname"], "mx.bad.example");
    assert_eq!(detail["receiving-ip"], "127.0.0.2");
    assert_eq!(detail["failed-session-count"], 1);

    // By mail, through the queue: good.example's and testing.example's, to the mailto rua.
    let mails = report_mails(&good);
    let mut mailed: Vec<(String, Value)> = Vec::new();
    for m in &mails {
        let parsed = m.parsed().expect("report mail parses");
        let domain = parsed
            .header_raw("TLS-Report-Domain")
            .map(|v| v.trim().to_string())
            .expect("TLS-Report-Domain");
        assert_eq!(
            parsed.header_raw("TLS-Report-Submitter").map(str::trim),
            Some("mta.sender.example")
        );
        assert_eq!(
            parsed.subject(),
            Some(
                format!(
                    "Report Domain: {domain} Submitter: mta.sender.example Report-ID: <{day}_{domain}@mta.sender.example>"
                )
                .as_str()
            )
        );
        let ct = parsed.content_type().expect("Content-Type");
        assert_eq!((ct.ctype(), ct.subtype()), ("multipart", Some("report")));
        assert_eq!(ct.attribute("report-type"), Some("tlsrpt"));
        assert_eq!(m.mail_from, "tlsrpt-noreply@mta.sender.example");
        assert!(
            parsed
                .header_raw("DKIM-Signature")
                .is_some_and(|s| s.contains("d=mta.sender.example")),
            "report mail is signed by the reporting domain"
        );
        assert_dkim_verifies_everywhere(&dns, &[&m.data]).await;
        let part = parsed.attachment(0).expect("the report part");
        let pct = part.content_type().expect("part type");
        assert_eq!((pct.ctype(), pct.subtype()), ("application", Some("tlsrpt+gzip")));
        mailed.push((domain, gunzip(part.contents())));
    }
    mailed.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        mailed.iter().map(|(d, _)| d.as_str()).collect::<Vec<_>>(),
        ["good.example", "testing.example"]
    );
    assert_eq!(mailed[0].1, good_report, "the same report by both ways");
    let testing_report = &mailed[1].1;
    let p = &testing_report["policies"][0];
    assert_eq!(p["policy"]["policy-string"][1], "mode: testing", "{testing_report}");
    assert_eq!(p["summary"]["total-successful-session-count"], 0);
    assert_eq!(p["summary"]["total-failure-session-count"], 1);
    assert_eq!(p["failure-details"][0]["result-type"], "certificate-host-mismatch");
    assert_eq!(p["failure-details"][0]["receiving-mx-hostname"], "mx.testing.example");

    // Each domain's day is reported once.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(https.received().iter().filter(|r| r.method == "POST").count(), 2);
    assert_eq!(report_mails(&good).len(), 2);
    server.terminate().await;
}
