//! TC3-HMAC-SHA256, Tencent Cloud's request signature, exactly as the official SDKs compute it:
//! canonical request → string to sign with the credential scope `date/service/tc3_request` → HMAC chain
//! `TC3<key>` → date → service → `tc3_request`. Both halves live here so the test and load tools sign
//! with the same code the server verifies with.

use aws_lc_rs::{constant_time, digest, hmac};

/// The only algorithm Tencent's v3 signature defines.
pub const ALGORITHM: &str = "TC3-HMAC-SHA256";

/// Why a request's signature was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No Authorization header, or it does not have the TC3 shape.
    #[error("the Authorization header is missing or malformed: {0}")]
    Malformed(&'static str),
    /// X-TC-Timestamp missing or not a number.
    #[error("X-TC-Timestamp is missing or not a Unix timestamp")]
    BadTimestamp,
    /// The timestamp is outside the allowed skew.
    #[error("the request timestamp {timestamp} is more than {skew} seconds away from the server time {now}")]
    Expired {
        /// The request's timestamp.
        timestamp: i64,
        /// The server's time.
        now: i64,
        /// The allowed skew.
        skew: i64,
    },
    /// The signature does not match.
    #[error("the signature does not match")]
    Mismatch,
}

/// The parsed `Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    /// SecretId from the credential.
    pub secret_id: String,
    /// Date part of the credential scope (`YYYY-MM-DD`).
    pub date: String,
    /// Service part of the credential scope.
    pub service: String,
    /// Lower-case header names, in signing order.
    pub signed_headers: Vec<String>,
    /// Hex signature.
    pub signature: String,
}

impl Authorization {
    /// Parses `TC3-HMAC-SHA256 Credential=ID/DATE/SERVICE/tc3_request, SignedHeaders=a;b, Signature=hex`.
    pub fn parse(header: &str) -> Result<Self, SignatureError> {
        let rest = header
            .trim()
            .strip_prefix(ALGORITHM)
            .ok_or(SignatureError::Malformed("the algorithm must be TC3-HMAC-SHA256"))?;
        let (mut credential, mut signed, mut signature) = (None, None, None);
        for part in rest.split(',') {
            let (k, v) = part
                .trim()
                .split_once('=')
                .ok_or(SignatureError::Malformed("expected key=value parts"))?;
            match k.trim() {
                "Credential" => credential = Some(v.trim()),
                "SignedHeaders" => signed = Some(v.trim()),
                "Signature" => signature = Some(v.trim()),
                _ => {}
            }
        }
        let credential = credential.ok_or(SignatureError::Malformed("no Credential"))?;
        let mut scope = credential.split('/');
        let (Some(secret_id), Some(date), Some(service), Some("tc3_request"), None) =
            (scope.next(), scope.next(), scope.next(), scope.next(), scope.next())
        else {
            return Err(SignatureError::Malformed(
                "Credential must be SecretId/date/service/tc3_request",
            ));
        };
        let signed_headers: Vec<String> = signed
            .ok_or(SignatureError::Malformed("no SignedHeaders"))?
            .split(';')
            .map(|h| h.trim().to_ascii_lowercase())
            .filter(|h| !h.is_empty())
            .collect();
        if signed_headers.is_empty() {
            return Err(SignatureError::Malformed("SignedHeaders is empty"));
        }
        let signature = signature.ok_or(SignatureError::Malformed("no Signature"))?;
        if signature.len() != 64 || !signature.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(SignatureError::Malformed("Signature must be 64 hex digits"));
        }
        if secret_id.is_empty() {
            return Err(SignatureError::Malformed("empty SecretId"));
        }
        Ok(Authorization {
            secret_id: secret_id.to_string(),
            date: date.to_string(),
            service: service.to_string(),
            signed_headers,
            signature: signature.to_ascii_lowercase(),
        })
    }
}

/// What a signature covers.
#[derive(Debug, Clone)]
pub struct SignedRequest<'a> {
    /// HTTP method, upper case.
    pub method: &'a str,
    /// Path, e.g. `/`.
    pub uri: &'a str,
    /// Raw query string (GET requests), else empty.
    pub query: &'a str,
    /// `(lower-case name, value)` of each signed header, in `SignedHeaders` order.
    pub headers: Vec<(String, String)>,
    /// The exact body bytes; `None` when the client sent `X-TC-Content-SHA256: UNSIGNED-PAYLOAD`.
    pub payload: Option<&'a [u8]>,
    /// X-TC-Timestamp.
    pub timestamp: i64,
    /// Credential scope date.
    pub date: &'a str,
    /// Credential scope service.
    pub service: &'a str,
}

impl<'a> SignedRequest<'a> {
    /// A `POST /` whose signed headers are `content-type` and `host`, as the SDKs send an action.
    pub fn post(
        service: &'a str,
        host: &str,
        content_type: &str,
        payload: &'a [u8],
        timestamp: i64,
        date: &'a str,
    ) -> Self {
        SignedRequest {
            method: "POST",
            uri: "/",
            query: "",
            headers: vec![
                ("content-type".into(), content_type.into()),
                ("host".into(), host.into()),
            ],
            payload: Some(payload),
            timestamp,
            date,
            service,
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

fn sha256_hex(data: &[u8]) -> String {
    hex(digest::digest(&digest::SHA256, data).as_ref())
}

fn hmac_sha256(key: &[u8], msg: &[u8]) -> hmac::Tag {
    hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), msg)
}

/// Computes the hex signature; `lowercase_values` lowercases header values (Tencent's documentation asks for it,
/// the SDKs do not: the verifier accepts either).
pub fn signature(req: &SignedRequest<'_>, secret_key: &str, lowercase_values: bool) -> String {
    let mut canonical_headers = String::new();
    let mut names = Vec::with_capacity(req.headers.len());
    for (name, value) in &req.headers {
        let v = value.trim();
        canonical_headers.push_str(name);
        canonical_headers.push(':');
        if lowercase_values {
            canonical_headers.push_str(&v.to_ascii_lowercase());
        } else {
            canonical_headers.push_str(v);
        }
        canonical_headers.push('\n');
        names.push(name.as_str());
    }
    let payload_hash = match req.payload {
        Some(p) => sha256_hex(p),
        None => sha256_hex(b"UNSIGNED-PAYLOAD"),
    };
    let canonical_request = format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        req.method,
        req.uri,
        req.query,
        canonical_headers,
        names.join(";"),
        payload_hash
    );
    let scope = format!("{}/{}/tc3_request", req.date, req.service);
    let string_to_sign = format!(
        "{ALGORITHM}\n{}\n{scope}\n{}",
        req.timestamp,
        sha256_hex(canonical_request.as_bytes())
    );
    let k_date = hmac_sha256(format!("TC3{secret_key}").as_bytes(), req.date.as_bytes());
    let k_service = hmac_sha256(k_date.as_ref(), req.service.as_bytes());
    let k_signing = hmac_sha256(k_service.as_ref(), b"tc3_request");
    hex(hmac_sha256(k_signing.as_ref(), string_to_sign.as_bytes()).as_ref())
}

/// Checks the timestamp window, then the signature, in constant time.
pub fn verify(
    req: &SignedRequest<'_>,
    auth: &Authorization,
    secret_key: &str,
    now: i64,
    skew: i64,
) -> Result<(), SignatureError> {
    if (now - req.timestamp).abs() > skew {
        return Err(SignatureError::Expired {
            timestamp: req.timestamp,
            now,
            skew,
        });
    }
    for lowercase in [false, true] {
        let expected = signature(req, secret_key, lowercase);
        if constant_time::verify_slices_are_equal(expected.as_bytes(), auth.signature.as_bytes()).is_ok() {
            return Ok(());
        }
    }
    Err(SignatureError::Mismatch)
}

/// The UTC date of a Unix timestamp, as the credential scope wants it.
pub fn scope_date(timestamp: i64) -> String {
    mailpush_model::time_zone::utc_date_of(timestamp.saturating_mul(1000))
}

/// Signs a JSON POST the way `tencentcloud-sdk-python` does; returns the headers to send
/// (Authorization, Content-Type, Host, X-TC-Action, X-TC-Timestamp, X-TC-Version).
pub fn sign_post(
    host: &str,
    action: &str,
    version: &str,
    body: &[u8],
    secret_id: &str,
    secret_key: &str,
    timestamp: i64,
) -> Vec<(&'static str, String)> {
    let date = scope_date(timestamp);
    let req = SignedRequest::post("ses", host, "application/json", body, timestamp, &date);
    let sig = signature(&req, secret_key, false);
    vec![
        (
            "Authorization",
            format!(
                "{ALGORITHM} Credential={secret_id}/{date}/ses/tc3_request, SignedHeaders=content-type;host, Signature={sig}"
            ),
        ),
        ("Content-Type", "application/json".into()),
        ("Host", host.into()),
        ("X-TC-Action", action.into()),
        ("X-TC-Timestamp", timestamp.to_string()),
        ("X-TC-Version", version.into()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The worked example of Tencent's TC3 documentation (CVM DescribeInstances), whose published signature
    /// pins the whole algorithm.
    #[test]
    fn matches_tencent_documented_example() {
        let body = br#"{"Limit": 1, "Filters": [{"Values": ["\u672a\u547d\u540d"], "Name": "instance-name"}]}"#;
        let req = SignedRequest::post(
            "cvm",
            "cvm.tencentcloudapi.com",
            "application/json; charset=utf-8",
            body,
            1551113065,
            "2019-02-25",
        );
        let sig = signature(&req, "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE", false);
        assert_eq!(sig, "72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168");
    }

    #[test]
    fn sign_and_verify_round_trip() {
        let headers = sign_post(
            "127.0.0.1:8080",
            "SendEmail",
            "2020-10-02",
            b"{}",
            "AKIDx",
            "key",
            1_700_000_000,
        );
        let auth = Authorization::parse(&headers[0].1).unwrap();
        assert_eq!(auth.secret_id, "AKIDx");
        assert_eq!(auth.service, "ses");
        let date = scope_date(1_700_000_000);
        let req = SignedRequest::post("ses", "127.0.0.1:8080", "application/json", b"{}", 1_700_000_000, &date);
        assert!(verify(&req, &auth, "key", 1_700_000_100, 300).is_ok());
        assert_eq!(
            verify(&req, &auth, "wrong", 1_700_000_100, 300),
            Err(SignatureError::Mismatch)
        );
        assert!(matches!(
            verify(&req, &auth, "key", 1_700_000_400, 300),
            Err(SignatureError::Expired { .. })
        ));
        let tampered = SignedRequest {
            payload: Some(b"{\"x\":1}"),
            ..req.clone()
        };
        assert_eq!(
            verify(&tampered, &auth, "key", 1_700_000_000, 300),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn malformed_headers() {
        assert!(Authorization::parse("Basic abc").is_err());
        assert!(
            Authorization::parse("TC3-HMAC-SHA256 Credential=a/b/c/tc3_request, SignedHeaders=host, Signature=xyz")
                .is_err()
        );
        assert!(
            Authorization::parse("TC3-HMAC-SHA256 Credential=a/b/tc3_request, SignedHeaders=host, Signature=00")
                .is_err()
        );
    }
}
