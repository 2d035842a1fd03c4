//! Fixtures shared by the delivery suites that send through the testkit DNS authority and sink MX.

#![allow(dead_code)] // each suite uses a different part

use std::time::Duration;

use mailpush_delivery::{
    DnsSettings, Envelope, MxResolver, Outcome, SendReport, SmtpTransport, TlsRequirement, TransportConfig,
};
use mailpush_testkit::DnsAuthority;

pub fn assert_delivered(report: &SendReport) {
    for o in &report.outcomes {
        assert!(matches!(o.outcome, Outcome::Delivered { .. }), "{report:#?}");
    }
}

pub fn config(port: u16) -> TransportConfig {
    TransportConfig {
        helo_name: "out.mailpush-sender.com".into(),
        port,
        connect_timeout: Duration::from_secs(2),
        command_timeout: Duration::from_secs(5),
        data_timeout: Duration::from_secs(5),
        ..TransportConfig::default()
    }
}

pub fn resolver(dns: &DnsAuthority) -> MxResolver {
    MxResolver::new(&DnsSettings {
        servers: vec![dns.addr()],
        timeout: Duration::from_secs(2),
        cache: false,
        dnssec: None,
    })
    .unwrap()
}

pub fn envelope(rcpts: &[&str]) -> Envelope {
    Envelope {
        mail_from: "bounce@mailpush-sender.com".into(),
        rcpt_to: rcpts.iter().map(|s| s.to_string()).collect(),
        smtputf8: false,
        tls: TlsRequirement::None,
    }
}

/// Sends `message` to `u0@domain` … `u{n-1}@domain` at once, one task each, and asserts every one delivered.
pub async fn send_concurrently(t: &SmtpTransport, domain: &str, n: usize, message: &'static [u8]) {
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        let (t, domain) = (t.clone(), domain.to_string());
        tasks.spawn(async move {
            let rcpt = format!("u{i}@{domain}");
            t.send(&domain, &envelope(&[&rcpt]), message).await
        });
    }
    while let Some(report) = tasks.join_next().await {
        assert_delivered(&report.unwrap());
    }
}
