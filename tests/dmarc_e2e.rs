//! DMARC aggregate reports end to end through the real `mailpush serve`: a gzip and a zip report delivered over
//! SMTP to `dmarc@<bounce_mx_host>` on the inbound MX are stored (a resent one once, one about a domain nobody
//! owns not at all, a malformed one refused without harm; an XML one sent to the complaint address is recognised
//! by its attachment) and read back with a TC3-signed `GetDmarcReport` and
//! with `mailpush dmarc report`.

use mailpush_suite::*;
use mailpush_testkit::DnsAuthority;
use serde_json::{Value, json};
use std::io::Write;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const MX_HOST: &str = "mx.mailpush.test";
const DOMAIN: &str = "shop.example.com";

type Reader = BufReader<tokio::net::tcp::OwnedReadHalf>;

async fn read_reply(r: &mut Reader) -> String {
    let mut all = String::new();
    loop {
        let mut line = String::new();
        let n = r.read_line(&mut line).await.expect("read reply");
        assert!(n > 0, "connection closed after {all:?}");
        all.push_str(&line);
        if line.len() < 4 || line.as_bytes()[3] == b' ' {
            return all.trim_end().to_string();
        }
    }
}

async fn cmd(wr: &mut tokio::net::tcp::OwnedWriteHalf, rd: &mut Reader, line: &str) -> String {
    wr.write_all(line.as_bytes()).await.expect("write");
    read_reply(rd).await
}

/// Delivers `data` to `rcpt` over SMTP; returns the reply to the end of DATA.
async fn deliver(addr: &str, rcpt: &str, data: &[u8]) -> String {
    let tcp = TcpStream::connect(addr).await.expect("connect to the inbound MX");
    let (rd, mut wr) = tcp.into_split();
    let mut rd = BufReader::new(rd);
    assert!(read_reply(&mut rd).await.starts_with("220"));
    assert!(
        cmd(&mut wr, &mut rd, "EHLO mail-reports.google.com\r\n")
            .await
            .starts_with("250")
    );
    let mail = cmd(&mut wr, &mut rd, "MAIL FROM:<noreply-dmarc-support@google.com>\r\n").await;
    assert!(mail.starts_with("250"), "{mail}");
    let rcpt_reply = cmd(&mut wr, &mut rd, &format!("RCPT TO:<{rcpt}>\r\n")).await;
    assert!(rcpt_reply.starts_with("250"), "{rcpt_reply}");
    assert!(cmd(&mut wr, &mut rd, "DATA\r\n").await.starts_with("354"));
    let mut body = Vec::new();
    for line in String::from_utf8_lossy(data).split_inclusive('\n') {
        if line.starts_with('.') {
            body.push(b'.');
        }
        body.extend_from_slice(line.as_bytes());
    }
    body.extend_from_slice(b".\r\n");
    wr.write_all(&body).await.expect("write body");
    let reply = read_reply(&mut rd).await;
    let _ = wr.write_all(b"QUIT\r\n").await;
    reply
}

/// An RFC 7489 appendix C report of `domain` from `org`, for the UTC day starting at `begin` (Unix seconds).
fn feedback(org: &str, report_id: &str, domain: &str, begin: i64, rows: &[(&str, i64, &str, &str)]) -> String {
    let records: String = rows
        .iter()
        .map(|(ip, count, dkim, spf)| {
            format!(
                "<record><row><source_ip>{ip}</source_ip><count>{count}</count><policy_evaluated>\
                 <disposition>none</disposition><dkim>{dkim}</dkim><spf>{spf}</spf></policy_evaluated></row>\
                 <identifiers><header_from>{domain}</header_from></identifiers><auth_results><dkim><domain>{domain}\
                 </domain><result>{dkim}</result></dkim><spf><domain>bounce.{domain}</domain><result>{spf}</result>\
                 </spf></auth_results></record>"
            )
        })
        .collect();
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\" ?>\n<feedback><report_metadata><org_name>{org}</org_name>\
         <email>dmarc@{org}</email><report_id>{report_id}</report_id><date_range><begin>{begin}</begin>\
         <end>{}</end></date_range></report_metadata><policy_published><domain>{domain}</domain><p>none</p>\
         </policy_published>{records}</feedback>\n",
        begin + 86_399
    )
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).expect("gzip");
    e.finish().expect("gzip")
}

fn zip_of(name: &str, bytes: &[u8]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    w.start_file(name, options).expect("zip");
    w.write_all(bytes).expect("zip");
    w.finish().expect("zip").into_inner()
}

/// A report mail as mailbox providers send them: a short text part and the compressed report attached.
fn report_mail(org: &str, content_type: &str, name: &str, attachment: &[u8]) -> Vec<u8> {
    let encoded = b64(attachment);
    let wrapped: Vec<String> = encoded
        .as_bytes()
        .chunks(76)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    format!(
        "From: noreply-dmarc-support@{org}\r\nTo: dmarc@{MX_HOST}\r\nSubject: Report domain: {DOMAIN} Submitter: {org}\r\n\
         Message-ID: <{name}@{org}>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"r\"\r\n\r\n\
         --r\r\nContent-Type: text/plain\r\n\r\nThis is an aggregate report from {org}.\r\n\
         --r\r\nContent-Type: {content_type}; name=\"{name}\"\r\nContent-Disposition: attachment; filename=\"{name}\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{}\r\n--r--\r\n",
        wrapped.join("\r\n")
    )
    .into_bytes()
}

fn date_of(secs: i64) -> String {
    let out = std::process::Command::new("date")
        .args(["-u", "-d", &format!("@{secs}"), "+%Y-%m-%d"])
        .output()
        .expect("date");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gzip_and_zip_reports_over_smtp_are_read_back_by_the_api_and_the_cli() {
    let dns = DnsAuthority::start().await.expect("dns");
    let dir = temp_dir();
    let vars = vec![
        ("MAILPUSH_DNS_SERVERS", dns.addr().to_string()),
        ("MAILPUSH_INBOUND_LISTEN", "127.0.0.1:0".to_string()),
        ("MAILPUSH_BOUNCE_MX_HOST", MX_HOST.to_string()),
    ];
    let env = base_env(dir.path(), &vars);
    let creds = create_account(&env, "shop").await;
    let server = ServerProcess::start("mailpush", &["serve"], &env).await;
    let inbound = server.announced_addr("inbound").expect("inbound listener announced");
    let client = ApiClient::new(&server.api_addr, &creds);
    let identity = verified_sender(&client, &dns, &format!("noreply@{DOMAIN}")).await;
    // The optional record that sends the reports here: published by verified_sender, and passing.
    let rua = identity["Attributes"]
        .as_array()
        .expect("Attributes")
        .iter()
        .find(|a| a["ExpectedValue"].as_str().is_some_and(|v| v.contains("rua=")))
        .unwrap_or_else(|| panic!("no rua record in {identity}"))
        .clone();
    assert_eq!(
        rua["ExpectedValue"],
        format!("v=DMARC1; p=none; rua=mailto:dmarc@{MX_HOST}")
    );
    assert_eq!(rua["Status"], true, "{rua}");

    let day = (unix_now() / 86_400 - 1) * 86_400;
    let date = date_of(day);
    let google = feedback(
        "google.com",
        "g-1",
        DOMAIN,
        day,
        &[("192.0.2.10", 12, "pass", "pass"), ("198.51.100.7", 3, "fail", "fail")],
    );
    let yahoo = feedback("yahoo.com", "y-1", DOMAIN, day, &[("192.0.2.10", 5, "fail", "pass")]);
    let to = format!("dmarc@{MX_HOST}");
    let gz = report_mail(
        "google.com",
        "application/gzip",
        "google.com!shop.xml.gz",
        &gzip(google.as_bytes()),
    );
    let zipped = report_mail(
        "yahoo.com",
        "application/zip",
        "yahoo.com!shop.zip",
        &zip_of("y.xml", yahoo.as_bytes()),
    );
    for mail in [&gz, &zipped, &gz] {
        let reply = deliver(&inbound, &to, mail).await;
        assert!(reply.starts_with("250"), "{reply}");
    }
    // Sent to the complaint address instead: recognised by its attachment.
    let outlook = feedback("outlook.com", "o-1", DOMAIN, day, &[("203.0.113.5", 4, "pass", "fail")]);
    let reply = deliver(
        &inbound,
        &format!("fbl@{MX_HOST}"),
        &report_mail("outlook.com", "text/xml", "o.xml", outlook.as_bytes()),
    )
    .await;
    assert!(reply.starts_with("250"), "{reply}");
    // About a domain no account owns: accepted and ignored. Malformed: accepted and refused without harm.
    let stranger = feedback(
        "google.com",
        "g-2",
        "nobody.example",
        day,
        &[("192.0.2.99", 7, "pass", "pass")],
    );
    let reply = deliver(
        &inbound,
        &to,
        &report_mail("google.com", "application/gzip", "n.xml.gz", &gzip(stranger.as_bytes())),
    )
    .await;
    assert!(reply.starts_with("250"), "{reply}");
    let reply = deliver(
        &inbound,
        &to,
        &report_mail("google.com", "application/gzip", "bad.xml.gz", b"\x1f\x8bbroken"),
    )
    .await;
    assert!(reply.starts_with("250") || reply.starts_with('5'), "{reply}");

    let r = client
        .call(
            "GetDmarcReport",
            &json!({ "EmailIdentity": DOMAIN, "StartDate": date, "EndDate": date }),
        )
        .await;
    assert!(r.get("Error").is_none(), "{r}");
    assert_eq!(r["EmailIdentity"], DOMAIN);
    assert_eq!(r["TotalCount"], 3, "{r}");
    let first: &Value = &r["Data"][0];
    assert_eq!(first["Date"], date);
    assert_eq!(first["SourceIp"], "192.0.2.10");
    assert_eq!(first["MessageCount"], 17, "the resent gzip report counted once: {r}");
    assert_eq!(first["DkimPassCount"], 12);
    assert_eq!(first["SpfPassCount"], 17);
    assert_eq!(first["DmarcPassCount"], 17);
    assert_eq!(first["ReportingOrgs"], json!(["google.com", "yahoo.com"]));
    let second = &r["Data"][1];
    assert_eq!(second["SourceIp"], "198.51.100.7");
    assert_eq!(second["MessageCount"], 3);
    assert_eq!(second["DmarcFailCount"], 3);
    assert_eq!(second["ReportingOrgs"], json!(["google.com"]));
    let third = &r["Data"][2];
    assert_eq!(third["SourceIp"], "203.0.113.5");
    assert_eq!(
        (third["MessageCount"].as_i64(), third["DmarcPassCount"].as_i64()),
        (Some(4), Some(4))
    );
    assert_eq!(third["ReportingOrgs"], json!(["outlook.com"]));

    // Bad input: Tencent's codes.
    let bad_date = client
        .call(
            "GetDmarcReport",
            &json!({ "EmailIdentity": DOMAIN, "StartDate": "2026-13-01", "EndDate": date }),
        )
        .await;
    assert_eq!(
        ApiClient::error_code(&bad_date).as_deref(),
        Some("InvalidParameterValue.WrongDate")
    );
    let not_ours = client
        .call(
            "GetDmarcReport",
            &json!({ "EmailIdentity": "nobody.example", "StartDate": date, "EndDate": date }),
        )
        .await;
    assert_eq!(
        ApiClient::error_code(&not_ours).as_deref(),
        Some("InvalidParameterValue.NotExistDomain")
    );
    let missing = client
        .call("GetDmarcReport", &json!({ "EmailIdentity": DOMAIN, "StartDate": date }))
        .await;
    assert_eq!(ApiClient::error_code(&missing).as_deref(), Some("MissingParameter"));

    let out = mailpush_cli(
        &env,
        &[
            "dmarc",
            "report",
            "--account",
            "shop",
            "--domain",
            DOMAIN,
            "--date",
            &date,
            "--json",
        ],
    )
    .await;
    let cli: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(cli["EmailIdentity"], DOMAIN);
    assert_eq!(cli["Data"].as_array().map(Vec::len), Some(3), "{out}");
    for field in [
        "Date",
        "SourceIp",
        "MessageCount",
        "DkimPassCount",
        "SpfPassCount",
        "DmarcPassCount",
        "ReportingOrgs",
    ] {
        assert_eq!(cli["Data"][0][field], first[field], "{field}: {out}");
        assert_eq!(cli["Data"][1][field], second[field], "{field}: {out}");
    }
    let text = mailpush_cli(
        &env,
        &[
            "dmarc",
            "report",
            "--account",
            "shop",
            "--domain",
            DOMAIN,
            "--from",
            &date,
            "--to",
            &date,
        ],
    )
    .await;
    assert!(
        text.contains("192.0.2.10") && text.contains("google.com,yahoo.com"),
        "{text}"
    );
    server.kill().await;
}
