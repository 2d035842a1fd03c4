//! An rspamd client: the message is POSTed to the normal worker's `/checkv2`, with the envelope in request
//! headers (`From`, `Rcpt`, `Ip`, `Helo`, `Hostname`); the answer is the score, the action and the symbols.

use crate::ScreeningError;
use serde::Deserialize;
use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

/// What is sent with a message.
#[derive(Debug, Clone, Default)]
pub struct FilterRequest<'a> {
    /// The whole message (headers and body).
    pub message: &'a [u8],
    /// Envelope sender.
    pub from: Option<&'a str>,
    /// Envelope recipients.
    pub rcpts: &'a [String],
    /// The client address the message came from (mailpush's own for API mail).
    pub ip: Option<IpAddr>,
    /// HELO name and host name of that client.
    pub helo: Option<&'a str>,
}

/// One symbol rspamd matched.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct FilterSymbol {
    /// Its name (e.g. `SUBJ_ALL_CAPS`).
    pub name: String,
    /// Its weight in this answer.
    pub score: f64,
    /// rspamd's own description, when the rule has one.
    #[serde(default)]
    pub description: Option<String>,
    /// What the rule saw (URLs, addresses…).
    #[serde(default)]
    pub options: Vec<String>,
}

/// rspamd's verdict on one message.
#[derive(Debug, Clone, PartialEq)]
pub struct FilterVerdict {
    /// Total score (positive = spammy).
    pub score: f64,
    /// The score at which rspamd would reject.
    pub required_score: f64,
    /// rspamd's action (`no action`, `add header`, `rewrite subject`, `greylist`, `reject`).
    pub action: String,
    /// Every matched symbol, heaviest first.
    pub symbols: Vec<FilterSymbol>,
}

#[derive(Deserialize)]
struct Answer {
    score: f64,
    #[serde(default)]
    required_score: f64,
    #[serde(default)]
    action: String,
    #[serde(default)]
    symbols: HashMap<String, FilterSymbol>,
}

/// A client of one rspamd normal worker.
#[derive(Debug, Clone)]
pub struct RspamdClient {
    url: String,
    http: reqwest::Client,
}

impl RspamdClient {
    /// A client of rspamd at `base_url` (`http://127.0.0.1:11333`); a check must answer within `timeout`.
    pub fn new(base_url: &str, timeout: Duration) -> Result<RspamdClient, ScreeningError> {
        let base = base_url.trim().trim_end_matches('/');
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(ScreeningError::InvalidAddress(base_url.into()));
        }
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| ScreeningError::InvalidAddress(format!("{base_url}: {e}")))?;
        Ok(RspamdClient {
            url: format!("{base}/checkv2"),
            http,
        })
    }

    /// Scores one message.
    pub async fn check(&self, req: &FilterRequest<'_>) -> Result<FilterVerdict, ScreeningError> {
        let unavailable = |reason: String| ScreeningError::Unavailable {
            scanner: "rspamd",
            reason,
        };
        let mut call = self.http.post(&self.url).body(req.message.to_vec());
        if let Some(from) = req.from {
            call = call.header("From", from);
        }
        for r in req.rcpts {
            call = call.header("Rcpt", r.as_str());
        }
        if let Some(ip) = req.ip {
            call = call.header("Ip", ip.to_string());
        }
        if let Some(helo) = req.helo {
            call = call.header("Helo", helo).header("Hostname", helo);
        }
        let resp = call.send().await.map_err(|e| unavailable(e.to_string()))?;
        let status = resp.status();
        let body = resp.bytes().await.map_err(|e| unavailable(e.to_string()))?;
        if !status.is_success() {
            return Err(unavailable(format!(
                "HTTP {status}: {}",
                String::from_utf8_lossy(&body[..body.len().min(200)])
            )));
        }
        parse_answer(&body)
    }
}

/// Interprets a `/checkv2` answer.
pub fn parse_answer(body: &[u8]) -> Result<FilterVerdict, ScreeningError> {
    let a: Answer = serde_json::from_slice(body).map_err(|e| ScreeningError::Protocol {
        scanner: "rspamd",
        reply: format!("{e}: {}", String::from_utf8_lossy(&body[..body.len().min(200)])),
    })?;
    let mut symbols: Vec<FilterSymbol> = a.symbols.into_values().collect();
    symbols.sort_by(|x, y| y.score.total_cmp(&x.score).then_with(|| x.name.cmp(&y.name)));
    Ok(FilterVerdict {
        score: a.score,
        required_score: a.required_score,
        action: a.action,
        symbols,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_an_answer() {
        let body = br#"{"is_skipped":false,"score":4.1,"required_score":15.0,"action":"no action",
            "symbols":{"MIME_GOOD":{"name":"MIME_GOOD","score":-0.1,"metric_score":-0.1,"description":"Known content-type","options":["text/plain"]},
            "SUBJ_ALL_CAPS":{"name":"SUBJ_ALL_CAPS","score":4.2,"metric_score":4.2}}}"#;
        let v = parse_answer(body).unwrap();
        assert_eq!(v.score, 4.1);
        assert_eq!(v.action, "no action");
        assert_eq!(v.symbols[0].name, "SUBJ_ALL_CAPS");
        assert_eq!(v.symbols[1].options, ["text/plain"]);
        assert!(parse_answer(b"not json").is_err());
    }

    #[test]
    fn refuses_a_non_http_address() {
        assert!(RspamdClient::new("127.0.0.1:11333", Duration::from_secs(1)).is_err());
        assert!(RspamdClient::new("http://127.0.0.1:11333/", Duration::from_secs(1)).is_ok());
    }
}
