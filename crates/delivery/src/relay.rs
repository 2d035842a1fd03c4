//! A smarthost ("relay host"): every message is handed to one MTA instead of the recipients' MX hosts, with
//! optional SMTP AUTH and a TLS policy of its own.

use std::net::IpAddr;

/// Why a relay setting is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RelayError {
    /// `host:port` could not be read.
    #[error("relay host {0:?} is not host:port (e.g. smtp.example.com:587 or [2001:db8::1]:25)")]
    Address(String),
    /// The TLS mode is none of `none`, `starttls`, `required`.
    #[error("relay TLS mode {0:?}: use none, starttls or required")]
    TlsMode(String),
    /// A username without a password or a password without a username.
    #[error("relay credentials need both a username and a password")]
    Credentials,
}

/// How the connection to the relay is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RelayTls {
    /// Plain text only, never STARTTLS (a relay on loopback). Credentials are sent in plain text.
    None,
    /// STARTTLS when the relay offers it, without verifying its certificate; credentials are only ever sent
    /// inside TLS, so a relay that needs AUTH and offers no STARTTLS defers the mail.
    #[default]
    StartTls,
    /// STARTTLS is mandatory and the relay's certificate must verify (platform trust store) for its host name.
    Required,
}

impl RelayTls {
    /// Reads `none`, `starttls` or `required`.
    pub fn parse(mode: &str) -> Result<RelayTls, RelayError> {
        match mode.trim().to_ascii_lowercase().as_str() {
            "none" => Ok(RelayTls::None),
            "starttls" => Ok(RelayTls::StartTls),
            "required" => Ok(RelayTls::Required),
            _ => Err(RelayError::TlsMode(mode.to_string())),
        }
    }
}

/// The SMTP AUTH identity given to the relay (PLAIN, or LOGIN when the relay offers only that).
#[derive(Clone, PartialEq, Eq)]
pub struct RelayCredentials {
    /// The username.
    pub username: String,
    /// The password.
    pub password: String,
}

impl std::fmt::Debug for RelayCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayCredentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// The smarthost every message goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relay {
    /// Host name or IP address literal.
    pub host: String,
    /// Port (25, 587, or a local relay's).
    pub port: u16,
    /// TLS policy towards it.
    pub tls: RelayTls,
    /// AUTH, when the relay wants it.
    pub credentials: Option<RelayCredentials>,
}

impl Relay {
    /// Builds a relay from its settings: `host:port` (IPv6 in brackets), the TLS mode and the optional
    /// username and password (both or neither).
    pub fn from_settings(
        host_port: &str,
        tls: &str,
        username: Option<&str>,
        password: Option<&str>,
    ) -> Result<Relay, RelayError> {
        let (host, port) = split_host_port(host_port)?;
        let credentials = match (username, password) {
            (None, None) => None,
            (Some(u), Some(p)) if !u.is_empty() => Some(RelayCredentials {
                username: u.to_string(),
                password: p.to_string(),
            }),
            _ => return Err(RelayError::Credentials),
        };
        Ok(Relay {
            host,
            port,
            tls: RelayTls::parse(tls)?,
            credentials,
        })
    }

    /// The host as an IP address, when it is a literal.
    pub fn ip(&self) -> Option<IpAddr> {
        self.host.parse().ok()
    }
}

/// `host:port` or `[v6]:port` → (host, port).
fn split_host_port(s: &str) -> Result<(String, u16), RelayError> {
    let bad = || RelayError::Address(s.to_string());
    let s = s.trim();
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (host, port) = rest.split_once("]:").ok_or_else(bad)?;
        host.parse::<std::net::Ipv6Addr>().map_err(|_| bad())?;
        (host, port)
    } else {
        let (host, port) = s.rsplit_once(':').ok_or_else(bad)?;
        // An IPv6 literal must be bracketed: `::1:25` is ambiguous.
        if host.contains(':') {
            return Err(bad());
        }
        (host, port)
    };
    let port: u16 = port.parse().map_err(|_| bad())?;
    let host_ok = !host.is_empty()
        && host.len() <= 253
        && (host.parse::<IpAddr>().is_ok()
            || host
                .split('.')
                .all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')));
    if port == 0 || !host_ok {
        return Err(bad());
    }
    Ok((host.trim_end_matches('.').to_ascii_lowercase(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_host_port_and_modes() {
        let r = Relay::from_settings("Smtp.Example.com:587", "starttls", Some("u"), Some("p")).unwrap();
        assert_eq!(
            (r.host.as_str(), r.port, r.tls),
            ("smtp.example.com", 587, RelayTls::StartTls)
        );
        assert!(r.ip().is_none());
        let r = Relay::from_settings("[::1]:2525", "none", None, None).unwrap();
        assert_eq!(r.ip(), Some("::1".parse().unwrap()));
        let r = Relay::from_settings("127.0.0.1:25", "REQUIRED", None, None).unwrap();
        assert_eq!(r.tls, RelayTls::Required);
        assert!(
            format!(
                "{:?}",
                Relay::from_settings("h:1", "none", Some("u"), Some("secret")).unwrap()
            )
            .contains("<redacted>")
        );
    }

    #[test]
    fn refuses_bad_input() {
        for bad in [
            "",
            "host",
            "host:",
            "host:0",
            "host:99999",
            ":25",
            "a b:25",
            "::1:25",
            "[::1]25",
        ] {
            assert!(
                matches!(
                    Relay::from_settings(bad, "none", None, None),
                    Err(RelayError::Address(_))
                ),
                "{bad}"
            );
        }
        assert!(matches!(
            Relay::from_settings("h:25", "tls", None, None),
            Err(RelayError::TlsMode(_))
        ));
        assert_eq!(
            Relay::from_settings("h:25", "none", Some("u"), None),
            Err(RelayError::Credentials)
        );
        assert_eq!(
            Relay::from_settings("h:25", "none", None, Some("p")),
            Err(RelayError::Credentials)
        );
    }
}
