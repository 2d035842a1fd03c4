//! Domain names of sending identities and the host names records are published at.
//!
//! DNS providers ask for a record's host relative to the zone the customer bought (the registrable domain):
//! for `abc.example.com` the SPF host is `abc`, the DKIM host `sel._domainkey.abc`; for the apex itself `@`.
//! Without the full public-suffix list, the registrable domain is taken as the last two labels, or three when
//! the last two form a well-known public suffix (`com.cn`, `co.uk`, …).

use crate::IdentityError;

/// Two-label public suffixes under which a registrable domain has three labels. Deliberately short: the
/// common ones for the markets mailpush serves; anything else falls back to "last two labels".
const TWO_LABEL_SUFFIXES: &[&str] = &[
    "com.cn", "net.cn", "org.cn", "gov.cn", "edu.cn", "ac.cn", "com.hk", "com.tw", "org.tw", "co.uk", "org.uk",
    "ac.uk", "gov.uk", "co.jp", "ne.jp", "or.jp", "com.au", "net.au", "org.au", "co.nz", "co.kr", "com.sg", "com.br",
    "com.mx", "co.in", "co.za", "com.tr", "com.my",
];

/// Lower-case ASCII (punycode for IDNs) without trailing dot; refuses what cannot be a sending domain.
pub fn normalize_domain(raw: &str) -> Result<String, IdentityError> {
    let raw = raw.trim();
    if raw.contains('@') {
        return Err(IdentityError::InvalidDomain(format!(
            "{raw:?} is an address; give the domain only"
        )));
    }
    mailpush_model::address::normalize_domain(raw).map_err(|e| IdentityError::InvalidDomain(format!("{raw:?}: {e}")))
}

/// The registrable domain (the zone a customer bought) of a normalized domain.
pub fn registrable_domain(domain: &str) -> &str {
    let labels: Vec<&str> = domain.split('.').collect();
    let n = labels.len();
    if n <= 2 {
        return domain;
    }
    let last_two = &domain[domain.len() - labels[n - 2].len() - labels[n - 1].len() - 1..];
    let keep = if TWO_LABEL_SUFFIXES.contains(&last_two) { 3 } else { 2 };
    if n <= keep {
        return domain;
    }
    let cut: usize = labels[..n - keep].iter().map(|l| l.len() + 1).sum();
    &domain[cut..]
}

/// The host to enter at the DNS provider for a record at `fqdn` under `domain`'s registrable domain:
/// `@` for the apex, else the labels in front of it (`_dmarc.abc` for `_dmarc.abc.example.com`).
pub fn relative_host(fqdn: &str, domain: &str) -> String {
    let apex = registrable_domain(domain);
    if fqdn == apex {
        return "@".to_string();
    }
    match fqdn.strip_suffix(apex).and_then(|h| h.strip_suffix('.')) {
        Some(host) if !host.is_empty() => host.to_string(),
        _ => fqdn.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apex_and_sub_domains() {
        assert_eq!(registrable_domain("example.com"), "example.com");
        assert_eq!(registrable_domain("abc.example.com"), "example.com");
        assert_eq!(registrable_domain("a.b.example.com"), "example.com");
        assert_eq!(registrable_domain("shop.example.com.cn"), "example.com.cn");
        assert_eq!(registrable_domain("example.co.uk"), "example.co.uk");
        assert_eq!(relative_host("abc.example.com", "abc.example.com"), "abc");
        assert_eq!(relative_host("example.com", "example.com"), "@");
        assert_eq!(relative_host("_dmarc.example.com", "example.com"), "_dmarc");
        assert_eq!(
            relative_host("s1._domainkey.mail.abc.example.com", "mail.abc.example.com"),
            "s1._domainkey.mail.abc"
        );
    }

    #[test]
    fn normalizes() {
        assert_eq!(normalize_domain(" Shop.Example.COM. ").unwrap(), "shop.example.com");
        assert_eq!(normalize_domain("bücher.example").unwrap(), "xn--bcher-kva.example");
        assert!(normalize_domain("a@b.com").is_err());
        assert!(normalize_domain("localhost").is_err());
        assert!(normalize_domain("bad_label.example.com").is_err());
    }
}
