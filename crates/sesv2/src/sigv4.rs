//! AWS Signature Version 4 verification (`AWS4-HMAC-SHA256`), as the AWS SDKs and CLI sign SES v2 requests:
//! the canonical request is rebuilt from the request as received and its signature recomputed with the secret
//! of the credential's access key id. Checked against AWS's published test-suite vectors (see the tests).

use aws_lc_rs::{constant_time, digest, hmac};

/// Why a signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigV4Error {
    /// No or a malformed `Authorization` header.
    #[error("the Authorization header is missing or not AWS4-HMAC-SHA256: {0}")]
    Malformed(String),
    /// `X-Amz-Date` is missing or malformed, or does not match the credential scope.
    #[error("X-Amz-Date {0:?} is missing, malformed or not the credential scope's date")]
    BadDate(String),
    /// The credential scope names another service.
    #[error("the credential scope's service is {0:?}; SES requests are signed for \"ses\"")]
    WrongService(String),
    /// A header the signature covers is missing, or `host` is not signed.
    #[error("the signed header {0} is missing from the request")]
    MissingHeader(String),
    /// `X-Amz-Content-SHA256` does not match the body.
    #[error("X-Amz-Content-SHA256 does not match the request body")]
    PayloadHash,
    /// The recomputed signature differs.
    #[error("the request signature we calculated does not match the signature you provided")]
    Mismatch,
}

/// The parsed `Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    /// The access key id (mailpush: the account's SecretId).
    pub access_key_id: String,
    /// `YYYYMMDD` of the credential scope.
    pub date: String,
    /// Region of the scope (any).
    pub region: String,
    /// Service of the scope.
    pub service: String,
    /// Lower-case signed header names, in the order given.
    pub signed_headers: Vec<String>,
    /// Hex signature.
    pub signature: String,
}

impl Authorization {
    /// Parses `AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/ses/aws4_request, SignedHeaders=a;b, Signature=…`.
    pub fn parse(header: &str) -> Result<Authorization, SigV4Error> {
        let bad = |why: &str| SigV4Error::Malformed(why.to_string());
        let rest = header
            .trim()
            .strip_prefix("AWS4-HMAC-SHA256")
            .ok_or_else(|| bad("algorithm"))?;
        let (mut credential, mut signed, mut signature) = (None, None, None);
        for part in rest.split(',') {
            let part = part.trim();
            if let Some(v) = part.strip_prefix("Credential=") {
                credential = Some(v);
            } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
                signed = Some(v);
            } else if let Some(v) = part.strip_prefix("Signature=") {
                signature = Some(v);
            }
        }
        let credential = credential.ok_or_else(|| bad("no Credential"))?;
        let scope: Vec<&str> = credential.rsplitn(5, '/').collect();
        let [terminator, service, region, date, access_key_id] = scope.as_slice() else {
            return Err(bad("Credential is not AKID/date/region/service/aws4_request"));
        };
        if *terminator != "aws4_request" || access_key_id.is_empty() {
            return Err(bad("Credential scope"));
        }
        let signed_headers: Vec<String> = signed
            .ok_or_else(|| bad("no SignedHeaders"))?
            .split(';')
            .map(|h| h.trim().to_ascii_lowercase())
            .filter(|h| !h.is_empty())
            .collect();
        let signature = signature
            .ok_or_else(|| bad("no Signature"))?
            .trim()
            .to_ascii_lowercase();
        if signed_headers.is_empty() || signature.len() != 64 {
            return Err(bad("SignedHeaders or Signature"));
        }
        Ok(Authorization {
            access_key_id: access_key_id.to_string(),
            date: date.to_string(),
            region: region.to_string(),
            service: service.to_string(),
            signed_headers,
            signature,
        })
    }
}

/// What a signature covers, as received.
#[derive(Debug, Clone)]
pub struct SignedRequest<'a> {
    /// `GET`, `POST`, …
    pub method: &'a str,
    /// The path as sent (still percent-encoded).
    pub raw_path: &'a str,
    /// The query string as sent, without `?`.
    pub raw_query: &'a str,
    /// Every header (name, value); names in any case, repeated names allowed.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: &'a [u8],
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn sha256_hex(data: &[u8]) -> String {
    hex(digest::digest(&digest::SHA256, data).as_ref())
}

fn hmac_sha256(key: &[u8], msg: &[u8]) -> Vec<u8> {
    hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), msg)
        .as_ref()
        .to_vec()
}

/// RFC 3986 percent-encoding as SigV4 wants it: unreserved characters kept, everything else `%XX` (upper case).
fn uri_encode(input: &[u8], keep_slash: bool) -> String {
    let mut out = String::with_capacity(input.len());
    for &b in input {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            b'/' if keep_slash => out.push('/'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Percent-decodes `input` (malformed escapes are kept as they are).
pub(crate) fn percent_decode(input: &str) -> Vec<u8> {
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(v) = u8::from_str_radix(&input[i + 1..i + 3], 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

/// The canonical query: each name and value decoded, then encoded strictly, sorted by name then value.
fn canonical_query(raw: &str) -> String {
    let mut pairs: Vec<(String, String)> = raw
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let k = percent_decode(&k.replace('+', "%20"));
            let v = percent_decode(&v.replace('+', "%20"));
            (uri_encode(&k, false), uri_encode(&v, false))
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// The canonical request of `req` over `signed_headers` with `payload_hash`.
pub fn canonical_request(
    req: &SignedRequest<'_>,
    signed_headers: &[String],
    payload_hash: &str,
) -> Result<String, SigV4Error> {
    // Services other than S3 encode the (already encoded) path once more.
    let path = if req.raw_path.is_empty() { "/" } else { req.raw_path };
    let canonical_path = uri_encode(path.as_bytes(), true);
    let mut canonical_headers = String::new();
    for name in signed_headers {
        let values: Vec<String> = req
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        if values.is_empty() {
            return Err(SigV4Error::MissingHeader(name.clone()));
        }
        canonical_headers.push_str(&format!("{name}:{}\n", values.join(",")));
    }
    Ok(format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        req.method,
        canonical_path,
        canonical_query(req.raw_query),
        canonical_headers,
        signed_headers.join(";"),
        payload_hash
    ))
}

/// The signature of `canonical` for the scope `date/region/service` at `amz_date` with `secret`.
pub fn signature(secret: &str, amz_date: &str, date: &str, region: &str, service: &str, canonical: &str) -> String {
    let scope = format!("{date}/{region}/{service}/aws4_request");
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        sha256_hex(canonical.as_bytes())
    );
    let k_date = hmac_sha256(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k_region = hmac_sha256(&k_date, region.as_bytes());
    let k_service = hmac_sha256(&k_region, service.as_bytes());
    let k_signing = hmac_sha256(&k_service, b"aws4_request");
    hex(&hmac_sha256(&k_signing, string_to_sign.as_bytes()))
}

/// `X-Amz-Date` (`20150830T123600Z`) as Unix seconds.
pub fn parse_amz_date(value: &str) -> Option<i64> {
    let v = value.trim();
    if v.len() != 16 || v.as_bytes()[8] != b'T' || !v.ends_with('Z') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| v.get(r).and_then(|s| s.parse::<i64>().ok());
    let (y, mo, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (h, mi, s) = (num(9..11)?, num(11..13)?, num(13..15)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y2 = if mo <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + mi * 60 + s)
}

/// Verifies `req` signed as `auth` with `secret`: the scope's date is `X-Amz-Date`'s, the service is `ses`,
/// `host` is signed, the payload hash matches the body.
pub fn verify(req: &SignedRequest<'_>, auth: &Authorization, secret: &str) -> Result<(), SigV4Error> {
    if auth.service != "ses" {
        return Err(SigV4Error::WrongService(auth.service.clone()));
    }
    let header = |name: &str| {
        req.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_string())
    };
    let amz_date = header("x-amz-date").unwrap_or_default();
    if parse_amz_date(&amz_date).is_none() || !amz_date.starts_with(&auth.date) || auth.date.len() != 8 {
        return Err(SigV4Error::BadDate(amz_date));
    }
    if !auth.signed_headers.iter().any(|h| h == "host") {
        return Err(SigV4Error::MissingHeader("host".into()));
    }
    let body_hash = sha256_hex(req.body);
    let payload_hash = match header("x-amz-content-sha256") {
        Some(h) if h == "UNSIGNED-PAYLOAD" => h,
        Some(h) if !h.eq_ignore_ascii_case(&body_hash) => return Err(SigV4Error::PayloadHash),
        _ => body_hash,
    };
    let canonical = canonical_request(req, &auth.signed_headers, &payload_hash)?;
    let expected = signature(secret, &amz_date, &auth.date, &auth.region, &auth.service, &canonical);
    constant_time::verify_slices_are_equal(expected.as_bytes(), auth.signature.as_bytes())
        .map_err(|_| SigV4Error::Mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    // AWS's SigV4 test suite (aws-sig-v4-test-suite): credentials, scope and date of every vector.
    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    const AMZ_DATE: &str = "20150830T123600Z";

    fn suite_request<'a>(method: &'a str, query: &'a str) -> SignedRequest<'a> {
        SignedRequest {
            method,
            raw_path: "/",
            raw_query: query,
            headers: vec![
                ("Host".into(), "example.amazonaws.com".into()),
                ("X-Amz-Date".into(), AMZ_DATE.into()),
            ],
            body: b"",
        }
    }

    fn suite_signature(req: &SignedRequest<'_>) -> String {
        let signed = vec!["host".to_string(), "x-amz-date".to_string()];
        let canonical = canonical_request(req, &signed, &sha256_hex(req.body)).expect("canonical");
        signature(SECRET, AMZ_DATE, "20150830", "us-east-1", "service", &canonical)
    }

    #[test]
    fn published_vectors() {
        assert_eq!(
            suite_signature(&suite_request("GET", "")),
            "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
            "get-vanilla"
        );
        assert_eq!(
            suite_signature(&suite_request("POST", "")),
            "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
            "post-vanilla"
        );
        assert_eq!(
            suite_signature(&suite_request("GET", "Param2=value2&Param1=value1")),
            "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
            "get-vanilla-query-order-key-case"
        );
    }

    #[test]
    fn the_canonical_request_of_get_vanilla() {
        let signed = vec!["host".to_string(), "x-amz-date".to_string()];
        let canonical = canonical_request(&suite_request("GET", ""), &signed, &sha256_hex(b"")).expect("canonical");
        assert_eq!(
            canonical,
            "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n\
             e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    fn signed_ses_request(body: &'static [u8]) -> (SignedRequest<'static>, Authorization) {
        let mut req = SignedRequest {
            method: "GET",
            raw_path: "/v2/email/identities/a%40example.com",
            raw_query: "PageSize=10",
            headers: vec![
                ("host".into(), "127.0.0.1:8080".into()),
                ("x-amz-date".into(), AMZ_DATE.into()),
            ],
            body,
        };
        let signed = vec!["host".to_string(), "x-amz-date".to_string()];
        let canonical = canonical_request(&req, &signed, &sha256_hex(body)).expect("canonical");
        let sig = signature(SECRET, AMZ_DATE, "20150830", "eu-west-1", "ses", &canonical);
        let header = format!(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/eu-west-1/ses/aws4_request, \
             SignedHeaders=host;x-amz-date, Signature={sig}"
        );
        let auth = Authorization::parse(&header).expect("parse");
        req.headers.push(("authorization".into(), header));
        (req, auth)
    }

    #[test]
    fn verification_accepts_the_right_secret_only() {
        let (req, auth) = signed_ses_request(b"");
        assert_eq!(auth.access_key_id, "AKIDEXAMPLE");
        assert_eq!(auth.region, "eu-west-1");
        verify(&req, &auth, SECRET).expect("verifies");
        assert_eq!(verify(&req, &auth, "other"), Err(SigV4Error::Mismatch));
        let mut tampered = req.clone();
        tampered.raw_query = "PageSize=11";
        assert_eq!(verify(&tampered, &auth, SECRET), Err(SigV4Error::Mismatch));
        let mut wrong_service = auth.clone();
        wrong_service.service = "s3".into();
        assert!(matches!(
            verify(&req, &wrong_service, SECRET),
            Err(SigV4Error::WrongService(_))
        ));
        let mut no_date = req.clone();
        no_date.headers.retain(|(n, _)| n != "x-amz-date");
        assert!(matches!(verify(&no_date, &auth, SECRET), Err(SigV4Error::BadDate(_))));
        let mut bad_hash = req.clone();
        bad_hash.headers.push(("x-amz-content-sha256".into(), "00".repeat(32)));
        assert_eq!(verify(&bad_hash, &auth, SECRET), Err(SigV4Error::PayloadHash));
    }

    #[test]
    fn malformed_headers_and_dates() {
        assert!(Authorization::parse("TC3-HMAC-SHA256 Credential=x").is_err());
        assert!(
            Authorization::parse("AWS4-HMAC-SHA256 Credential=a/b/c/d/e, SignedHeaders=host, Signature=00").is_err()
        );
        assert_eq!(parse_amz_date("20150830T123600Z"), Some(1_440_938_160));
        assert_eq!(parse_amz_date("19700101T000000Z"), Some(0));
        assert!(parse_amz_date("2015-08-30T12:36:00Z").is_none());
        assert!(parse_amz_date("20151330T123600Z").is_none());
        assert_eq!(canonical_query("b=2&a=1&a=0"), "a=0&a=1&b=2");
        assert_eq!(canonical_query("k=a%20b&x=%2F"), "k=a%20b&x=%2F");
        assert_eq!(
            uri_encode(b"/v2/email/identities/a%40b.com", true),
            "/v2/email/identities/a%2540b.com"
        );
    }
}
