//! A ClamAV `clamd` client: `zINSTREAM` over a unix or TCP socket. The data goes in chunks, each preceded by
//! its length (4 bytes, network order), and a zero-length chunk ends it; clamd answers `stream: OK`,
//! `stream: <signature> FOUND`, or `INSTREAM size limit exceeded. ERROR` when the data passes its
//! `StreamMaxLength` (it may close the socket before reading everything, so a failed write is followed by a
//! read of that answer).

use crate::ScreeningError;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Where clamd listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClamdAddress {
    /// A unix socket (`LocalSocket`).
    Unix(PathBuf),
    /// `host:port` (`TCPSocket` / `TCPAddr`).
    Tcp(String),
}

impl FromStr for ClamdAddress {
    type Err = ScreeningError;

    /// `unix:/run/clamav/clamd.ctl`, `/run/clamav/clamd.ctl`, `tcp:127.0.0.1:3310` or `127.0.0.1:3310`.
    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let raw = raw.trim();
        if let Some(path) = raw.strip_prefix("unix:") {
            return (!path.is_empty())
                .then(|| ClamdAddress::Unix(path.into()))
                .ok_or_else(|| ScreeningError::InvalidAddress(raw.into()));
        }
        if raw.starts_with('/') {
            return Ok(ClamdAddress::Unix(raw.into()));
        }
        let hostport = raw.strip_prefix("tcp:").unwrap_or(raw);
        match hostport.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {
                Ok(ClamdAddress::Tcp(hostport.into()))
            }
            _ => Err(ScreeningError::InvalidAddress(raw.into())),
        }
    }
}

impl std::fmt::Display for ClamdAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClamdAddress::Unix(p) => write!(f, "unix:{}", p.display()),
            ClamdAddress::Tcp(a) => write!(f, "{a}"),
        }
    }
}

/// What clamd found in the data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanVerdict {
    /// Nothing.
    Clean,
    /// A signature matched: its name (e.g. `Eicar-Test-Signature`).
    Found(String),
}

/// A clamd client; cheap to clone, one connection per scan.
#[derive(Debug, Clone)]
pub struct ClamdClient {
    address: ClamdAddress,
    timeout: Duration,
    chunk_bytes: usize,
}

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// Longest answer read from clamd.
const MAX_REPLY: u64 = 4096;

impl ClamdClient {
    /// A client of clamd at `address`; every scan (connect, send, answer) must finish within `timeout`.
    pub fn new(address: ClamdAddress, timeout: Duration) -> ClamdClient {
        ClamdClient {
            address,
            timeout,
            chunk_bytes: 64 * 1024,
        }
    }

    /// The same client sending chunks of `bytes` (at least 1).
    pub fn with_chunk_bytes(mut self, bytes: usize) -> ClamdClient {
        self.chunk_bytes = bytes.max(1);
        self
    }

    /// Where it connects.
    pub fn address(&self) -> &ClamdAddress {
        &self.address
    }

    fn unavailable(reason: impl Into<String>) -> ScreeningError {
        ScreeningError::Unavailable {
            scanner: "clamd",
            reason: reason.into(),
        }
    }

    async fn connect(&self) -> Result<Box<dyn Stream>, ScreeningError> {
        let conn: std::io::Result<Box<dyn Stream>> = match &self.address {
            ClamdAddress::Unix(path) => tokio::net::UnixStream::connect(path)
                .await
                .map(|s| Box::new(s) as Box<dyn Stream>),
            ClamdAddress::Tcp(addr) => tokio::net::TcpStream::connect(addr.as_str())
                .await
                .map(|s| Box::new(s) as Box<dyn Stream>),
        };
        conn.map_err(|e| Self::unavailable(format!("cannot connect to {}: {e}", self.address)))
    }

    /// `zPING`: whether clamd answers `PONG`.
    pub async fn ping(&self) -> Result<(), ScreeningError> {
        let work = async {
            let mut s = self.connect().await?;
            s.write_all(b"zPING\0")
                .await
                .map_err(|e| Self::unavailable(e.to_string()))?;
            let reply = read_reply(&mut s).await?;
            if reply == "PONG" {
                Ok(())
            } else {
                Err(ScreeningError::Protocol {
                    scanner: "clamd",
                    reply,
                })
            }
        };
        tokio::time::timeout(self.timeout, work)
            .await
            .map_err(|_| Self::unavailable(format!("no answer within {:?}", self.timeout)))?
    }

    /// Scans `data` with `zINSTREAM`.
    pub async fn scan(&self, data: &[u8]) -> Result<ScanVerdict, ScreeningError> {
        tokio::time::timeout(self.timeout, self.scan_inner(data))
            .await
            .map_err(|_| Self::unavailable(format!("no answer within {:?}", self.timeout)))?
    }

    async fn scan_inner(&self, data: &[u8]) -> Result<ScanVerdict, ScreeningError> {
        let mut s = self.connect().await?;
        let sent = send_stream(&mut s, data, self.chunk_bytes).await;
        // Even when a write failed, clamd may have said why (the size limit) before closing.
        let reply = read_reply(&mut s).await;
        match (sent, reply) {
            (_, Ok(reply)) if !reply.is_empty() => parse_reply(&reply),
            (Err(e), _) => Err(Self::unavailable(format!("sending to {} failed: {e}", self.address))),
            (Ok(()), Ok(_)) => Err(Self::unavailable(format!("{} closed without an answer", self.address))),
            (Ok(()), Err(e)) => Err(e),
        }
    }
}

async fn send_stream(s: &mut Box<dyn Stream>, data: &[u8], chunk_bytes: usize) -> std::io::Result<()> {
    s.write_all(b"zINSTREAM\0").await?;
    for chunk in data.chunks(chunk_bytes) {
        let len = u32::try_from(chunk.len()).unwrap_or(u32::MAX);
        s.write_all(&len.to_be_bytes()).await?;
        s.write_all(chunk).await?;
    }
    s.write_all(&0u32.to_be_bytes()).await?;
    s.flush().await
}

/// Reads one NUL-terminated (or connection-terminated) answer.
async fn read_reply(s: &mut Box<dyn Stream>) -> Result<String, ScreeningError> {
    let mut buf = Vec::new();
    let mut limited = s.take(MAX_REPLY);
    loop {
        let mut byte = [0u8; 256];
        let n = match limited.read(&mut byte).await {
            Ok(n) => n,
            // A reset after the answer was read still leaves the answer.
            Err(_) if !buf.is_empty() => 0,
            Err(e) => {
                return Err(ClamdClient::unavailable(format!("reading the answer failed: {e}")));
            }
        };
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&byte[..n]);
        if buf.contains(&0) {
            break;
        }
    }
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    Ok(String::from_utf8_lossy(&buf[..end]).trim().to_string())
}

/// Interprets an `INSTREAM` answer.
pub fn parse_reply(reply: &str) -> Result<ScanVerdict, ScreeningError> {
    // Sessions prefix answers with a request number (`1: stream: OK`); z-commands do not, but accept both.
    let body = reply.split_once("stream:").map_or(reply, |(_, rest)| rest).trim();
    if body == "OK" {
        return Ok(ScanVerdict::Clean);
    }
    if let Some(sig) = body.strip_suffix(" FOUND") {
        return Ok(ScanVerdict::Found(sig.trim().to_string()));
    }
    if reply.contains("size limit exceeded") {
        return Err(ScreeningError::TooLarge);
    }
    Err(ScreeningError::Protocol {
        scanner: "clamd",
        reply: reply.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(
            "unix:/run/clamav/clamd.ctl".parse::<ClamdAddress>().unwrap(),
            ClamdAddress::Unix("/run/clamav/clamd.ctl".into())
        );
        assert_eq!(
            "/tmp/c.sock".parse::<ClamdAddress>().unwrap(),
            ClamdAddress::Unix("/tmp/c.sock".into())
        );
        assert_eq!(
            "tcp:127.0.0.1:3310".parse::<ClamdAddress>().unwrap(),
            ClamdAddress::Tcp("127.0.0.1:3310".into())
        );
        assert_eq!(
            "localhost:3310".parse::<ClamdAddress>().unwrap(),
            ClamdAddress::Tcp("localhost:3310".into())
        );
        for bad in ["", "unix:", "localhost", "host:port", ":3310"] {
            assert!(bad.parse::<ClamdAddress>().is_err(), "{bad}");
        }
    }

    #[test]
    fn replies() {
        assert_eq!(parse_reply("stream: OK").unwrap(), ScanVerdict::Clean);
        assert_eq!(
            parse_reply("stream: Eicar-Test-Signature FOUND").unwrap(),
            ScanVerdict::Found("Eicar-Test-Signature".into())
        );
        assert_eq!(
            parse_reply("1: stream: Win.Test.EICAR_HDB-1 FOUND").unwrap(),
            ScanVerdict::Found("Win.Test.EICAR_HDB-1".into())
        );
        assert!(matches!(
            parse_reply("INSTREAM size limit exceeded. ERROR"),
            Err(ScreeningError::TooLarge)
        ));
        assert!(matches!(
            parse_reply("UNKNOWN COMMAND"),
            Err(ScreeningError::Protocol { .. })
        ));
    }

    #[tokio::test]
    async fn a_closed_socket_is_unavailable() {
        let dir = std::env::temp_dir().join(format!("mailpush-clamd-none-{}", std::process::id()));
        let c = ClamdClient::new(ClamdAddress::Unix(dir.join("none.sock")), Duration::from_secs(2));
        assert!(matches!(c.scan(b"x").await, Err(ScreeningError::Unavailable { .. })));
        assert!(matches!(c.ping().await, Err(ScreeningError::Unavailable { .. })));
    }
}
