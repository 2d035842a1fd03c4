//! DMARC aggregate reports (RFC 7489 §7.2 and appendix C): what receivers send to a domain's `rua=` address.
//!
//! A report is a mail with one attachment holding a `<feedback>` XML document, compressed or not:
//! `application/zip` (one `.xml` member, deflated or stored), `application/gzip` or `text/xml`. The kind is told by
//! the content's first bytes (the zip and gzip magic numbers), so a mislabelled attachment is still read.
//!
//! Hostile input is refused with a [`DmarcReportError`], never a panic: the decompressed document is capped at
//! [`MAX_DECOMPRESSED_BYTES`] (reading stops there, so a zip or gzip bomb costs at most that much memory), the
//! records at [`MAX_RECORDS`], element nesting at [`MAX_DEPTH`] and each text field at [`MAX_FIELD_CHARS`].
//! The XML parser (quick-xml) expands no custom entities.

use flate2::read::MultiGzDecoder;
use mail_parser::{MessageParser, MimeHeaders, PartType};
use quick_xml::Reader;
use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::Event;
use std::io::{Cursor, Read};
use std::net::IpAddr;

/// Largest decompressed report document accepted.
pub const MAX_DECOMPRESSED_BYTES: usize = 20 * 1024 * 1024;
/// Most `<record>` elements accepted in one report.
pub const MAX_RECORDS: usize = 100_000;
/// Deepest element nesting accepted (a report needs 5).
pub const MAX_DEPTH: usize = 32;
/// Longest text of one element kept (longer text is refused).
pub const MAX_FIELD_CHARS: usize = 1024;

/// The local part of the address reports are sent to: `dmarc@<bounce MX host>`.
pub const REPORT_LOCAL_PART: &str = "dmarc";

/// Why a report was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DmarcReportError {
    /// The decompressed document is larger than [`MAX_DECOMPRESSED_BYTES`].
    #[error("report larger than {MAX_DECOMPRESSED_BYTES} bytes once decompressed")]
    TooLarge,
    /// More than [`MAX_RECORDS`] records.
    #[error("report with more than {MAX_RECORDS} records")]
    TooManyRecords,
    /// A zip or gzip container that could not be read.
    #[error("unreadable archive: {0}")]
    Archive(String),
    /// Not well-formed XML, or not UTF-8.
    #[error("malformed XML: {0}")]
    Xml(String),
    /// Well-formed, but not an aggregate report (a required field is missing or invalid).
    #[error("not a DMARC aggregate report: {0}")]
    Invalid(String),
}

/// One aggregate report: who reported, the period, the domain and its rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AggregateReport {
    /// `report_metadata/org_name`: the reporting organisation (e.g. `google.com`).
    pub org_name: String,
    /// `report_metadata/email`: the reporter's contact address (may be empty).
    pub org_email: String,
    /// `report_metadata/report_id`: unique per reporting organisation.
    pub report_id: String,
    /// `date_range/begin`, seconds since the Unix epoch (UTC).
    pub begin_secs: i64,
    /// `date_range/end`, seconds since the Unix epoch (UTC).
    pub end_secs: i64,
    /// `policy_published/domain`, lowercase.
    pub policy_domain: String,
    /// The rows (`<record>`), in document order.
    pub records: Vec<ReportRecord>,
}

/// One `<record>`: mail from one source IP with one set of results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportRecord {
    /// `row/source_ip`.
    pub source_ip: IpAddr,
    /// `row/count`: messages.
    pub count: i64,
    /// `policy_evaluated/disposition`: `none`, `quarantine` or `reject` (lowercase; empty when absent).
    pub disposition: String,
    /// `policy_evaluated/dkim`: DKIM passed **aligned** with the From domain.
    pub dkim_aligned: bool,
    /// `policy_evaluated/spf`: SPF passed **aligned** with the From domain.
    pub spf_aligned: bool,
    /// `auth_results/dkim/result` (first signature; lowercase, e.g. `pass`, `fail`; empty when none).
    pub dkim_result: String,
    /// `auth_results/spf/result` (lowercase, e.g. `pass`, `softfail`; empty when none).
    pub spf_result: String,
    /// `identifiers/header_from`, lowercase (the policy domain when the report omits it).
    pub header_from: String,
}

impl ReportRecord {
    /// The DMARC outcome: pass when DKIM or SPF passed aligned (RFC 7489 §6.6.2).
    pub fn dmarc_pass(&self) -> bool {
        self.dkim_aligned || self.spf_aligned
    }
}

/// Whether `address` is the report address `dmarc@<host>` of one of `hosts` (case-insensitive).
pub fn is_report_address(address: &str, hosts: &[&str]) -> bool {
    let Some((local, domain)) = address.trim().rsplit_once('@') else {
        return false;
    };
    local.eq_ignore_ascii_case(REPORT_LOCAL_PART)
        && hosts
            .iter()
            .any(|h| !h.is_empty() && h.eq_ignore_ascii_case(domain.trim_end_matches('.')))
}

/// The aggregate report a mail carries: `Ok(None)` when no part looks like one (no zip, gzip or XML attachment),
/// an error when one does but cannot be read.
pub fn parse_report_mail(mail: &[u8]) -> Result<Option<AggregateReport>, DmarcReportError> {
    let Some(message) = MessageParser::default().parse(mail) else {
        return Ok(None);
    };
    let mut first_error = None;
    for part in &message.parts {
        if matches!(part.body, PartType::Multipart(_) | PartType::Message(_)) {
            continue;
        }
        let is_candidate = ["zip", "x-zip-compressed", "x-zip", "gzip", "x-gzip", "xml"]
            .iter()
            .any(|sub| part.is_content_type("application", sub))
            || part.is_content_type("text", "xml")
            || part.attachment_name().is_some_and(|n| {
                let n = n.to_ascii_lowercase();
                n.ends_with(".zip") || n.ends_with(".gz") || n.ends_with(".xml")
            });
        if !is_candidate {
            continue;
        }
        match parse_attachment(part.contents()) {
            Ok(report) => return Ok(Some(report)),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    first_error.map_or(Ok(None), Err)
}

/// A report from the bytes of its attachment: zip, gzip or plain XML, told by the magic numbers.
pub fn parse_attachment(bytes: &[u8]) -> Result<AggregateReport, DmarcReportError> {
    if bytes.starts_with(b"PK\x03\x04") {
        parse_xml(&unzip(bytes)?)
    } else if bytes.starts_with(&[0x1f, 0x8b]) {
        parse_xml(&gunzip(bytes)?)
    } else if bytes.len() > MAX_DECOMPRESSED_BYTES {
        Err(DmarcReportError::TooLarge)
    } else {
        parse_xml(bytes)
    }
}

/// Reads at most [`MAX_DECOMPRESSED_BYTES`] from `reader`; one byte more is [`DmarcReportError::TooLarge`].
fn read_capped(reader: impl Read) -> Result<Vec<u8>, DmarcReportError> {
    let mut out = Vec::new();
    reader
        .take(MAX_DECOMPRESSED_BYTES as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| DmarcReportError::Archive(e.to_string()))?;
    if out.len() > MAX_DECOMPRESSED_BYTES {
        return Err(DmarcReportError::TooLarge);
    }
    Ok(out)
}

fn gunzip(bytes: &[u8]) -> Result<Vec<u8>, DmarcReportError> {
    read_capped(MultiGzDecoder::new(bytes))
}

/// The archive's first `.xml` member (or its only member).
fn unzip(bytes: &[u8]) -> Result<Vec<u8>, DmarcReportError> {
    let archive_error = |e: zip::result::ZipError| DmarcReportError::Archive(e.to_string());
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).map_err(archive_error)?;
    let index = (0..archive.len())
        .find(|&i| {
            archive
                .name_for_index(i)
                .is_some_and(|n| n.to_ascii_lowercase().ends_with(".xml"))
        })
        .or((archive.len() == 1).then_some(0))
        .ok_or_else(|| DmarcReportError::Archive("no .xml member".to_string()))?;
    let file = archive.by_index(index).map_err(archive_error)?;
    if file.size() > MAX_DECOMPRESSED_BYTES as u64 {
        return Err(DmarcReportError::TooLarge);
    }
    read_capped(file)
}

/// Where a text belongs, from the path of local element names below `<feedback>`.
fn field_of(path: &[String]) -> Option<Field> {
    let p: Vec<&str> = path.iter().map(String::as_str).collect();
    Some(match p.as_slice() {
        ["feedback", "report_metadata", "org_name"] => Field::OrgName,
        ["feedback", "report_metadata", "email"] => Field::Email,
        ["feedback", "report_metadata", "report_id"] => Field::ReportId,
        ["feedback", "report_metadata", "date_range", "begin"] => Field::Begin,
        ["feedback", "report_metadata", "date_range", "end"] => Field::End,
        ["feedback", "policy_published", "domain"] => Field::PolicyDomain,
        ["feedback", "record", "row", "source_ip"] => Field::SourceIp,
        ["feedback", "record", "row", "count"] => Field::Count,
        ["feedback", "record", "row", "policy_evaluated", "disposition"] => Field::Disposition,
        ["feedback", "record", "row", "policy_evaluated", "dkim"] => Field::DkimAligned,
        ["feedback", "record", "row", "policy_evaluated", "spf"] => Field::SpfAligned,
        ["feedback", "record", "identifiers", "header_from"] => Field::HeaderFrom,
        ["feedback", "record", "auth_results", "dkim", "result"] => Field::DkimResult,
        ["feedback", "record", "auth_results", "spf", "result"] => Field::SpfResult,
        _ => return None,
    })
}

#[derive(Debug, Clone, Copy)]
enum Field {
    OrgName,
    Email,
    ReportId,
    Begin,
    End,
    PolicyDomain,
    SourceIp,
    Count,
    Disposition,
    DkimAligned,
    SpfAligned,
    HeaderFrom,
    DkimResult,
    SpfResult,
}

/// A record as read, before validation.
#[derive(Default)]
struct RawRecord {
    source_ip: Option<String>,
    count: Option<String>,
    disposition: String,
    dkim: String,
    spf: String,
    header_from: String,
    dkim_result: Option<String>,
    spf_result: Option<String>,
}

#[derive(Default)]
struct RawReport {
    org_name: String,
    email: String,
    report_id: String,
    begin: Option<String>,
    end: Option<String>,
    policy_domain: String,
    records: Vec<RawRecord>,
}

impl RawReport {
    fn set(&mut self, field: Field, text: String) {
        let record = self.records.last_mut();
        match (field, record) {
            (Field::OrgName, _) => self.org_name = text,
            (Field::Email, _) => self.email = text,
            (Field::ReportId, _) => self.report_id = text,
            (Field::Begin, _) => self.begin = Some(text),
            (Field::End, _) => self.end = Some(text),
            (Field::PolicyDomain, _) => self.policy_domain = text,
            (_, None) => {}
            (Field::SourceIp, Some(r)) => r.source_ip = Some(text),
            (Field::Count, Some(r)) => r.count = Some(text),
            (Field::Disposition, Some(r)) => r.disposition = text,
            (Field::DkimAligned, Some(r)) => r.dkim = text,
            (Field::SpfAligned, Some(r)) => r.spf = text,
            (Field::HeaderFrom, Some(r)) => r.header_from = text,
            // The first signature's result: a report may list several.
            (Field::DkimResult, Some(r)) => {
                r.dkim_result.get_or_insert(text);
            }
            (Field::SpfResult, Some(r)) => {
                r.spf_result.get_or_insert(text);
            }
        }
    }

    fn finish(self) -> Result<AggregateReport, DmarcReportError> {
        let invalid = |what: &str| DmarcReportError::Invalid(what.to_string());
        let org_name = self.org_name.trim().to_string();
        let report_id = self.report_id.trim().to_string();
        let policy_domain = self.policy_domain.trim().trim_end_matches('.').to_ascii_lowercase();
        if org_name.is_empty() {
            return Err(invalid("no org_name"));
        }
        if report_id.is_empty() {
            return Err(invalid("no report_id"));
        }
        if policy_domain.is_empty() {
            return Err(invalid("no policy_published/domain"));
        }
        let secs = |v: Option<String>, what: &str| -> Result<i64, DmarcReportError> {
            v.and_then(|s| s.trim().parse::<i64>().ok())
                .filter(|s| (0..=253_402_300_799).contains(s))
                .ok_or_else(|| invalid(what))
        };
        let begin_secs = secs(self.begin, "bad date_range/begin")?;
        let end_secs = secs(self.end, "bad date_range/end")?;
        if end_secs < begin_secs {
            return Err(invalid("date_range ends before it begins"));
        }
        let mut records = Vec::with_capacity(self.records.len());
        for r in self.records {
            let source_ip = r
                .source_ip
                .and_then(|s| s.trim().parse::<IpAddr>().ok())
                .ok_or_else(|| invalid("bad row/source_ip"))?;
            let count = r
                .count
                .and_then(|s| s.trim().parse::<i64>().ok())
                .filter(|c| *c >= 0)
                .ok_or_else(|| invalid("bad row/count"))?;
            let header_from = match r.header_from.trim().trim_end_matches('.') {
                "" => policy_domain.clone(),
                h => h.to_ascii_lowercase(),
            };
            let lower = |s: &str| s.trim().to_ascii_lowercase();
            records.push(ReportRecord {
                source_ip,
                count,
                disposition: lower(&r.disposition),
                dkim_aligned: r.dkim.trim().eq_ignore_ascii_case("pass"),
                spf_aligned: r.spf.trim().eq_ignore_ascii_case("pass"),
                dkim_result: lower(r.dkim_result.as_deref().unwrap_or("")),
                spf_result: lower(r.spf_result.as_deref().unwrap_or("")),
                header_from,
            });
        }
        Ok(AggregateReport {
            org_name,
            org_email: self.email.trim().to_string(),
            report_id,
            begin_secs,
            end_secs,
            policy_domain,
            records,
        })
    }
}

/// A report from its XML document (RFC 7489 appendix C). Unknown elements are skipped; namespace prefixes are
/// ignored.
pub fn parse_xml(bytes: &[u8]) -> Result<AggregateReport, DmarcReportError> {
    if bytes.len() > MAX_DECOMPRESSED_BYTES {
        return Err(DmarcReportError::TooLarge);
    }
    let xml_error = |e: &dyn std::fmt::Display| DmarcReportError::Xml(e.to_string());
    let text = std::str::from_utf8(bytes).map_err(|e| xml_error(&e))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = Reader::from_str(text);
    let mut path: Vec<String> = Vec::new();
    let mut current = String::new();
    let mut report = RawReport::default();
    let mut saw_feedback = false;
    loop {
        let event = reader.read_event().map_err(|e| xml_error(&e))?;
        match event {
            Event::Start(start) => {
                if path.len() >= MAX_DEPTH {
                    return Err(DmarcReportError::Xml("elements nested too deep".to_string()));
                }
                let name = String::from_utf8_lossy(start.local_name().as_ref()).into_owned();
                if path.is_empty() {
                    if name != "feedback" {
                        return Err(DmarcReportError::Invalid(format!("root element <{name}>")));
                    }
                    saw_feedback = true;
                }
                path.push(name);
                if path.len() == 2 && path[1] == "record" {
                    if report.records.len() >= MAX_RECORDS {
                        return Err(DmarcReportError::TooManyRecords);
                    }
                    report.records.push(RawRecord::default());
                }
                current.clear();
            }
            // An empty element carries no text (`<feedback/>` alone is refused below).
            Event::Empty(_) => {}
            Event::Text(t) => push_text(&mut current, &t.decode().map_err(|e| xml_error(&e))?)?,
            Event::CData(t) => push_text(&mut current, &t.decode().map_err(|e| xml_error(&e))?)?,
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref().map_err(|e| xml_error(&e))? {
                    Some(c) => c.to_string(),
                    None => {
                        let name = r.decode().map_err(|e| xml_error(&e))?;
                        resolve_predefined_entity(&name)
                            .ok_or_else(|| DmarcReportError::Xml(format!("unknown entity &{name};")))?
                            .to_string()
                    }
                };
                push_text(&mut current, &resolved)?;
            }
            Event::End(_) => {
                if let Some(field) = field_of(&path) {
                    report.set(field, std::mem::take(&mut current));
                }
                current.clear();
                path.pop();
            }
            Event::Eof => break,
            Event::Comment(_) | Event::Decl(_) | Event::PI(_) | Event::DocType(_) => {}
        }
    }
    if !saw_feedback || !path.is_empty() {
        return Err(DmarcReportError::Invalid("no complete <feedback> element".to_string()));
    }
    report.finish()
}

fn push_text(current: &mut String, s: &str) -> Result<(), DmarcReportError> {
    if current.len() + s.len() > MAX_FIELD_CHARS * 4 {
        return Err(DmarcReportError::Invalid("text field too long".to_string()));
    }
    current.push_str(s);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// A two-record report of `domain`, as Google sends them.
    pub(crate) fn sample_xml(domain: &str, report_id: &str) -> String {
        format!(
            r#"<?xml version="1.0" encoding="UTF-8" ?>
<feedback>
  <report_metadata>
    <org_name>google.com</org_name>
    <email>noreply-dmarc-support@google.com</email>
    <report_id>{report_id}</report_id>
    <date_range><begin>1764979200</begin><end>1765065599</end></date_range>
  </report_metadata>
  <policy_published><domain>{domain}</domain><adkim>r</adkim><aspf>r</aspf><p>none</p><pct>100</pct></policy_published>
  <record>
    <row><source_ip>192.0.2.10</source_ip><count>12</count>
      <policy_evaluated><disposition>none</disposition><dkim>pass</dkim><spf>fail</spf></policy_evaluated></row>
    <identifiers><header_from>{domain}</header_from></identifiers>
    <auth_results><dkim><domain>{domain}</domain><result>pass</result><selector>mp1</selector></dkim>
      <spf><domain>bounce.{domain}</domain><result>pass</result></spf></auth_results>
  </record>
  <record>
    <row><source_ip>2001:db8::7</source_ip><count>3</count>
      <policy_evaluated><disposition>quarantine</disposition><dkim>fail</dkim><spf>fail</spf></policy_evaluated></row>
    <identifiers><header_from>{domain}</header_from></identifiers>
    <auth_results><spf><domain>elsewhere.example</domain><result>softfail</result></spf></auth_results>
  </record>
</feedback>
"#
        )
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    fn zip_of(name: &str, bytes: &[u8]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        w.start_file(name, options).unwrap();
        w.write_all(bytes).unwrap();
        w.finish().unwrap().into_inner()
    }

    fn mail_with(content_type: &str, name: &str, body: &[u8]) -> Vec<u8> {
        use base64_like::encode;
        format!(
            "From: noreply-dmarc-support@google.com\r\nTo: dmarc@mx.example\r\nSubject: Report domain: example.com\r\n\
MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\n\
This is an aggregate report.\r\n--b1\r\nContent-Type: {content_type}; name=\"{name}\"\r\n\
Content-Disposition: attachment; filename=\"{name}\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n--b1--\r\n",
            encode(body)
        )
        .into_bytes()
    }

    /// A small base64 encoder for the tests (the crate has no base64 dependency).
    mod base64_like {
        pub fn encode(data: &[u8]) -> String {
            const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
            let mut out = String::new();
            for (i, chunk) in data.chunks(3).enumerate() {
                if i > 0 && i % 19 == 0 {
                    out.push_str("\r\n");
                }
                let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
                let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
                for j in 0..4 {
                    if j <= chunk.len() {
                        out.push(T[((n >> (18 - 6 * j)) & 63) as usize] as char);
                    } else {
                        out.push('=');
                    }
                }
            }
            out
        }
    }

    #[test]
    fn parses_the_fields_of_a_report() {
        let r = parse_xml(sample_xml("Example.COM", "r-1").as_bytes()).unwrap();
        assert_eq!(r.org_name, "google.com");
        assert_eq!(r.org_email, "noreply-dmarc-support@google.com");
        assert_eq!(r.report_id, "r-1");
        assert_eq!((r.begin_secs, r.end_secs), (1_764_979_200, 1_765_065_599));
        assert_eq!(r.policy_domain, "example.com");
        assert_eq!(r.records.len(), 2);
        let a = &r.records[0];
        assert_eq!(a.source_ip, "192.0.2.10".parse::<IpAddr>().unwrap());
        assert_eq!(a.count, 12);
        assert_eq!(a.disposition, "none");
        assert!(a.dkim_aligned && !a.spf_aligned && a.dmarc_pass());
        assert_eq!((a.dkim_result.as_str(), a.spf_result.as_str()), ("pass", "pass"));
        assert_eq!(a.header_from, "example.com");
        let b = &r.records[1];
        assert_eq!(b.source_ip, "2001:db8::7".parse::<IpAddr>().unwrap());
        assert!(!b.dmarc_pass());
        assert_eq!((b.dkim_result.as_str(), b.spf_result.as_str()), ("", "softfail"));
        assert_eq!(b.disposition, "quarantine");
    }

    #[test]
    fn namespaced_and_escaped_reports_parse() {
        let xml = r#"<?xml version="1.0"?><d:feedback xmlns:d="urn:ietf:params:xml:ns:dmarc-2.0">
<d:report_metadata><d:org_name>A &amp; B</d:org_name><d:report_id><![CDATA[x<1>]]></d:report_id>
<d:date_range><d:begin>10</d:begin><d:end>20</d:end></d:date_range></d:report_metadata>
<d:policy_published><d:domain>example.org.</d:domain></d:policy_published></d:feedback>"#;
        let r = parse_xml(xml.as_bytes()).unwrap();
        assert_eq!(r.org_name, "A & B");
        assert_eq!(r.report_id, "x<1>");
        assert_eq!(r.policy_domain, "example.org");
        assert!(r.records.is_empty());
    }

    #[test]
    fn gzip_and_zip_attachments_are_read_by_their_magic_numbers() {
        let xml = sample_xml("example.com", "r-2");
        let from_gz = parse_attachment(&gzip(xml.as_bytes())).unwrap();
        let from_zip = parse_attachment(&zip_of("google.com!example.com!1!2.xml", xml.as_bytes())).unwrap();
        assert_eq!(from_gz, from_zip);
        assert_eq!(from_gz.records.len(), 2);
    }

    #[test]
    fn reports_are_found_in_mail() {
        let xml = sample_xml("example.com", "r-3");
        for (ct, name, body) in [
            ("application/gzip", "r.xml.gz", gzip(xml.as_bytes())),
            ("application/zip", "r.zip", zip_of("r.xml", xml.as_bytes())),
            ("text/xml", "r.xml", xml.clone().into_bytes()),
            // Mislabelled: the name and magic number decide.
            ("application/octet-stream", "r.zip", zip_of("r.xml", xml.as_bytes())),
        ] {
            let r = parse_report_mail(&mail_with(ct, name, &body)).unwrap().unwrap();
            assert_eq!(r.report_id, "r-3", "{ct}");
        }
        let plain = b"From: a@b.example\r\nSubject: hi\r\n\r\nno report here\r\n";
        assert_eq!(parse_report_mail(plain), Ok(None));
        let broken = mail_with("application/gzip", "r.xml.gz", b"\x1f\x8bnot really gzip");
        assert!(matches!(parse_report_mail(&broken), Err(DmarcReportError::Archive(_))));
    }

    #[test]
    fn bombs_are_refused_at_the_cap() {
        let zeros = vec![b' '; MAX_DECOMPRESSED_BYTES + 10];
        assert_eq!(parse_attachment(&gzip(&zeros)), Err(DmarcReportError::TooLarge));
        assert_eq!(
            parse_attachment(&zip_of("r.xml", &zeros)),
            Err(DmarcReportError::TooLarge)
        );
    }

    #[test]
    fn malformed_reports_are_refused() {
        let good = sample_xml("example.com", "r-4");
        for bad in [
            good.replace("<report_id>r-4</report_id>", ""),
            good.replace("192.0.2.10", "not-an-ip"),
            good.replace("<count>12</count>", "<count>-1</count>"),
            good.replace("<begin>1764979200</begin>", "<begin>x</begin>"),
            good.replace("</feedback>", ""),
            good.replace("<feedback>", "<other>").replace("</feedback>", "</other>"),
            "<feedback>&lol;</feedback>".to_string(),
            format!("{}{}", "<a>".repeat(40), "</a>".repeat(40)),
        ] {
            assert!(parse_xml(bad.as_bytes()).is_err(), "{bad}");
        }
        assert!(parse_xml(&[0xff, 0xfe, 0x00]).is_err());
    }

    #[test]
    fn the_report_address_is_dmarc_at_the_mx_host() {
        assert!(is_report_address("DMARC@MX.example.", &["mx.example"]));
        assert!(!is_report_address("dmarc@other.example", &["mx.example"]));
        assert!(!is_report_address("fbl@mx.example", &["mx.example"]));
        assert!(!is_report_address("dmarc@", &[""]));
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(s in proptest::collection::vec(proptest::num::u8::ANY, 0..800)) {
            let _ = parse_report_mail(&s);
            let _ = parse_attachment(&s);
            let mut zipped = b"PK\x03\x04".to_vec();
            zipped.extend_from_slice(&s);
            let _ = parse_attachment(&zipped);
            let mut gz = vec![0x1f, 0x8b];
            gz.extend_from_slice(&s);
            let _ = parse_attachment(&gz);
        }

        #[test]
        fn report_like_xml_never_panics(s in "(<(feedback|record|row|count|source_ip|report_id|org_name|begin|end|domain)>[ -~]{0,12}){0,20}") {
            let _ = parse_xml(s.as_bytes());
        }
    }
}
