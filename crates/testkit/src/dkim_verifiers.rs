//! Three DKIM verifiers that mailpush did not write, run on a delivered message against the records a
//! [`DnsAuthority`] serves: Python's dkimpy, Perl's Mail::DKIM and OpenDKIM's `opendkim-testmsg`. They disagree
//! on corner cases of the signature's syntax, so a signature that passes all three passes at receivers.
//!
//! dkimpy and Mail::DKIM are pointed at the authority's port. `opendkim-testmsg` can only use the system
//! resolver, so it runs in a private mount namespace (`unshare -m`, root only) whose `/etc/resolv.conf` names a
//! mirror of the authority on port 53 of a loopback address of its own.

use crate::{DnsAuthority, DnsMirror, TestkitError};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::Stdio;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

/// One verifier's judgement of every DKIM signature of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DkimVerdict {
    /// `dkimpy`, `Mail::DKIM` or `opendkim`.
    pub verifier: &'static str,
    /// Every signature verified (and there was at least one).
    pub pass: bool,
    /// The verifier cannot check any signature of the message (Mail::DKIM before ed25519 support, with only
    /// ed25519 signatures); such a verifier ignores them, as RFC 8463 asks, so this is neither pass nor fail.
    pub unsupported: bool,
    /// What the verifier said.
    pub detail: String,
}

/// The three verifiers, ready to run against one [`DnsAuthority`].
#[derive(Debug)]
pub struct ExternalDkimVerifiers {
    dns: SocketAddr,
    opendkim: Option<OpenDkim>,
}

#[derive(Debug)]
struct OpenDkim {
    _mirror: DnsMirror,
    resolv_conf: PathBuf,
}

impl Drop for OpenDkim {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.resolv_conf);
    }
}

const DKIMPY: &str = r#"
import sys, logging, dkim, dns.message, dns.query, dns.rdatatype
logging.basicConfig(stream=sys.stdout, level=logging.DEBUG, format="%(message)s")
ip, port = sys.argv[1], int(sys.argv[2])
def txt(name, timeout=5, **_):
    name = name.decode() if isinstance(name, bytes) else name
    # TCP: a 2048-bit key does not fit a plain UDP answer.
    answer = dns.query.tcp(dns.message.make_query(name, dns.rdatatype.TXT), ip, port=port, timeout=timeout)
    for rrset in answer.answer:
        for rd in rrset:
            if rd.rdtype == dns.rdatatype.TXT:
                return b"".join(rd.strings)
    return None
msg = sys.stdin.buffer.read()
n = sum(1 for line in msg.split(b"\r\n\r\n", 1)[0].split(b"\r\n") if line.lower().startswith(b"dkim-signature:"))
d = dkim.DKIM(msg, logger=logging.getLogger("dkimpy"))
results = [d.verify(idx=i, dnsfunc=txt) for i in range(n)]
print("signatures=%d results=%s" % (n, results))
sys.exit(0 if n > 0 and all(results) else 1)
"#;

const MAIL_DKIM: &str = r#"
use strict; use warnings;
use Mail::DKIM::Verifier; use Mail::DKIM::DNS; use Net::DNS::Resolver;
my ($ip, $port) = @ARGV;
Mail::DKIM::DNS::resolver(Net::DNS::Resolver->new(nameservers => [$ip], port => $port, recurse => 0,
    tcp_timeout => 5, udp_timeout => 5));
my $dkim = Mail::DKIM::Verifier->new();
binmode STDIN;
while (my $line = <STDIN>) { $line =~ s/\015?\012\z/\015\012/; $dkim->PRINT($line); }
$dkim->CLOSE;
my ($pass, $bad, $unsupported) = (0, 0, 0);
for my $sig ($dkim->signatures) {
    print $sig->domain, " ", ($sig->selector // ""), ": ", $sig->result_detail, "\n";
    if ($sig->result eq "pass") { $pass++ }
    elsif ($sig->result_detail =~ /unsupported algorithm ed25519/) { $unsupported++ }
    else { $bad++ }
}
# 3: nothing this version can check (Debian 12's Mail::DKIM predates ed25519, RFC 8463).
exit($bad ? 1 : $pass ? 0 : $unsupported ? 3 : 1);
"#;

impl ExternalDkimVerifiers {
    /// The tools missing on this machine (Debian packages / pip modules to install); empty when all three run.
    pub async fn missing() -> Vec<&'static str> {
        let mut missing = Vec::new();
        if !succeeds("python3", &["-c", "import dkim, dns.query, nacl.signing"]).await {
            missing.push("dkimpy with ed25519 (pip install dkimpy pynacl)");
        }
        if !succeeds("perl", &["-MMail::DKIM::Verifier", "-MNet::DNS::Resolver", "-e1"]).await {
            missing.push("Mail::DKIM (apt-get install libmail-dkim-perl)");
        }
        if !std::path::Path::new("/usr/sbin/opendkim-testmsg").exists() {
            missing.push("opendkim-testmsg (apt-get install opendkim-tools)");
        }
        if !succeeds("unshare", &["-m", "true"]).await {
            missing.push("a private mount namespace for opendkim-testmsg (unshare -m, as root)");
        }
        missing
    }

    /// Prepares the verifiers for the records of `dns`. Fails when the port-53 mirror for `opendkim-testmsg`
    /// cannot be bound (not root).
    pub async fn start(dns: &DnsAuthority) -> Result<ExternalDkimVerifiers, TestkitError> {
        let mut last: TestkitError = mailpush_devdns::DevDnsError::NoSharedPort {
            ip: IpAddr::V4(Ipv4Addr::new(127, 53, 0, 0)),
            attempts: 16,
        }
        .into();
        for attempt in 0..16u32 {
            // A loopback address of its own per attempt: tests run in parallel processes.
            let seed = std::process::id()
                .wrapping_mul(2_654_435_761)
                .wrapping_add(attempt * 7919);
            let ip = Ipv4Addr::new(127, 53, (seed >> 8) as u8, (seed as u8).max(2));
            match dns.mirror_on(SocketAddr::new(IpAddr::V4(ip), 53)).await {
                Ok(mirror) => {
                    let resolv_conf =
                        std::env::temp_dir().join(format!("mailpush-resolv-{}-{attempt}.conf", std::process::id()));
                    std::fs::write(&resolv_conf, format!("nameserver {ip}\noptions timeout:3 attempts:2\n"))?;
                    return Ok(ExternalDkimVerifiers {
                        dns: dns.addr(),
                        opendkim: Some(OpenDkim {
                            _mirror: mirror,
                            resolv_conf,
                        }),
                    });
                }
                Err(e) => last = e.into(),
            }
        }
        Err(last)
    }

    /// Runs the three verifiers on `raw` (the message as delivered, CRLF line ends).
    pub async fn verify(&self, raw: &[u8]) -> Vec<DkimVerdict> {
        let ip = self.dns.ip().to_string();
        let port = self.dns.port().to_string();
        let mut verdicts = vec![
            run("dkimpy", "python3", &["-c", DKIMPY, &ip, &port], raw).await,
            run("Mail::DKIM", "perl", &["-e", MAIL_DKIM, &ip, &port], raw).await,
        ];
        if let Some(o) = &self.opendkim {
            let resolv = o.resolv_conf.to_string_lossy().into_owned();
            let script = "mount --bind \"$1\" /etc/resolv.conf && exec /usr/sbin/opendkim-testmsg";
            let mut v = run("opendkim", "unshare", &["-m", "sh", "-c", script, "sh", &resolv], raw).await;
            // It says nothing when every signature verified.
            v.pass &= v.detail.trim().is_empty();
            verdicts.push(v);
        }
        verdicts
    }
}

async fn succeeds(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await
        .is_ok_and(|s| s.success())
}

async fn run(verifier: &'static str, program: &str, args: &[&str], input: &[u8]) -> DkimVerdict {
    let failed = |detail: String| DkimVerdict {
        verifier,
        pass: false,
        unsupported: false,
        detail,
    };
    let child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => return failed(format!("cannot run {program}: {e}")),
    };
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(input).await;
    }
    match tokio::time::timeout(std::time::Duration::from_secs(60), child.wait_with_output()).await {
        Ok(Ok(out)) => DkimVerdict {
            verifier,
            pass: out.status.success(),
            unsupported: out.status.code() == Some(3),
            detail: format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        },
        Ok(Err(e)) => failed(format!("{program} failed: {e}")),
        Err(_) => failed(format!("{program} did not finish within 60 s")),
    }
}
