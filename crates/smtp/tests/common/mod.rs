//! Shared setup of the SMTP integration tests: a real `Mailpush` on a temporary SQLite database whose DNS is
//! a testkit authority, the sending domain `shop.example.com` verified through core's identity API (records
//! published in that authority), the sender address [`LOGIN`] with its SMTP password, and the SMTP server
//! on loopback with a generated certificate over the production [`CoreBackend`].

#![allow(dead_code)]

use mailpush_core::{AccountContext, Mailpush, Settings, StatusRequest};
use mailpush_model::SystemClock;
use mailpush_smtp::{CoreBackend, SmtpConfig, SmtpServer};
use mailpush_testkit::DnsAuthority;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls;

/// A sender address of `shop` in its verified domain, with an SMTP password: the AUTH username.
pub const LOGIN: &str = "app@shop.example.com";
/// Its SMTP password (Tencent's policy: 10-20 characters, upper, lower, digit).
pub const PASSWORD: &str = "SmtpPassw0rd42";

pub struct World {
    pub _dir: tempfile::TempDir,
    pub dns: DnsAuthority,
    pub core: Mailpush,
    /// The same database, for what the tests inspect beyond the API.
    pub store: mailpush_store::Store,
    pub account: AccountContext,
    pub addr: SocketAddr,
    pub tls_addr: SocketAddr,
    pub cert: PathBuf,
}

pub fn base_settings(dir: &std::path::Path) -> Settings {
    Settings {
        data_dir: dir.to_path_buf(),
        master_key: Some("smtp-test-master-key-0123456789".into()),
        ..Settings::default()
    }
}

/// Starts everything; `tweak` adjusts the settings and the SMTP config.
pub async fn world(tweak: impl FnOnce(&mut Settings), tweak_config: impl FnOnce(&mut SmtpConfig)) -> World {
    let dir = tempfile::tempdir().expect("tempdir");
    let dns = DnsAuthority::start().await.expect("dns");
    let mut settings = base_settings(dir.path());
    settings.dns_servers = vec![dns.addr()];
    tweak(&mut settings);
    let core = Mailpush::open(settings.clone(), Arc::new(SystemClock))
        .await
        .expect("open");
    let store = mailpush_store::Store::open(&settings.database_url(), mailpush_store::StoreOptions::default())
        .await
        .expect("store");
    core.create_account("shop").await.expect("account");
    let account = core
        .list_accounts()
        .await
        .expect("accounts")
        .into_iter()
        .find(|a| a.name == "shop")
        .expect("shop");
    verified_sender(&core, &account, &dns, LOGIN).await;
    core.update_smtp_password(&account, LOGIN, PASSWORD)
        .await
        .expect("SMTP password");
    let (acceptor, _) = mailpush_smtp::tls::acceptor_for(&settings).expect("tls");
    let mut config = SmtpConfig::from_settings(&settings, Some(acceptor));
    tweak_config(&mut config);
    let backend = CoreBackend::new(core.clone()).expect("backend");
    let server = SmtpServer::new(config, Arc::new(backend));
    let plain = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let tls = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let (addr, tls_addr) = (plain.local_addr().expect("addr"), tls.local_addr().expect("addr"));
    let s1 = server.clone();
    tokio::spawn(async move { s1.serve(plain, false, std::future::pending()).await });
    tokio::spawn(async move { server.serve(tls, true, std::future::pending()).await });
    World {
        cert: dir.path().join(mailpush_smtp::tls::GENERATED_CERT),
        _dir: dir,
        dns,
        core,
        store,
        account,
        addr,
        tls_addr,
    }
}

/// Makes `address` a sender `account` may send from, through core's identity API as `CreateEmailIdentity`,
/// `UpdateEmailIdentity` and `CreateEmailAddress` would: creates its domain (ed25519, DKIMOption 3: instant
/// to generate), publishes the returned records in `dns`, re-checks until verified, creates the address.
pub async fn verified_sender(core: &Mailpush, account: &AccountContext, dns: &DnsAuthority, address: &str) {
    let domain = address.rsplit_once('@').map(|(_, d)| d).expect("an address");
    let view = core
        .create_identity(account, domain, Some(3))
        .await
        .expect("create identity");
    // The required records only: the optional DMARC record with reports would be a second one at `_dmarc`.
    for r in view.records.iter().filter(|r| r.spec.required) {
        match r.spec.record_type.as_str() {
            "MX" => dns.add_mx(&r.spec.name, 10, &r.spec.expected),
            _ => dns.add_txt(&r.spec.name, &r.spec.expected),
        }
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let view = core
            .update_identity(account, domain, None)
            .await
            .expect("update identity");
        if view.verified {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{domain} never verified: {:?}",
            view.reason
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    core.create_sender(account, address, None).await.expect("create sender");
}

impl World {
    /// Every MessageId of the account today, each once.
    pub async fn message_ids(&self) -> Vec<String> {
        let rows = self
            .core
            .send_status(
                &self.account,
                StatusRequest {
                    request_date: mailpush_model::clock::date_of(self.core.now_ms()),
                    limit: 100,
                    ..StatusRequest::default()
                },
            )
            .await
            .expect("status");
        let mut ids: Vec<String> = rows.iter().map(|r| r.message_id.to_string()).collect();
        ids.sort();
        ids.dedup();
        ids
    }
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A line-level SMTP client for protocol tests.
pub struct Client {
    io: Option<BufReader<Box<dyn Io>>>,
    cert: PathBuf,
}

pub fn tls_connector(cert: &std::path::Path) -> tokio_rustls::TlsConnector {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(cert).expect("cert") {
        roots.add(c.expect("pem")).expect("root");
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

impl Client {
    /// Connects and reads the greeting.
    pub async fn connect(addr: SocketAddr, cert: &std::path::Path) -> (Client, u16) {
        let tcp = TcpStream::connect(addr).await.expect("connect");
        let mut c = Client {
            io: Some(BufReader::new(Box::new(tcp) as Box<dyn Io>)),
            cert: cert.to_path_buf(),
        };
        let (code, _) = c.reply().await;
        (c, code)
    }

    /// Connects from the local address `from` (e.g. `127.0.0.2`: a distinct client host on loopback) and
    /// reads the greeting.
    pub async fn connect_from(addr: SocketAddr, cert: &std::path::Path, from: std::net::IpAddr) -> (Client, u16) {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.bind(SocketAddr::new(from, 0)).expect("bind the client address");
        let tcp = socket.connect(addr).await.expect("connect");
        let mut c = Client {
            io: Some(BufReader::new(Box::new(tcp) as Box<dyn Io>)),
            cert: cert.to_path_buf(),
        };
        let (code, _) = c.reply().await;
        (c, code)
    }

    /// Connects with implicit TLS.
    pub async fn connect_tls(addr: SocketAddr, cert: &std::path::Path) -> (Client, u16) {
        let tcp = TcpStream::connect(addr).await.expect("connect");
        let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
        let tls = tls_connector(cert).connect(name, tcp).await.expect("handshake");
        let mut c = Client {
            io: Some(BufReader::new(Box::new(tls) as Box<dyn Io>)),
            cert: cert.to_path_buf(),
        };
        let (code, _) = c.reply().await;
        (c, code)
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        let io = self.io.as_mut().expect("open");
        io.get_mut().write_all(bytes).await.expect("write");
        io.get_mut().flush().await.expect("flush");
    }

    /// Reads one (possibly multi-line) reply: code and the text of all lines. `(0, "")` on EOF.
    pub async fn reply(&mut self) -> (u16, String) {
        let io = self.io.as_mut().expect("open");
        let mut text = String::new();
        loop {
            let mut line = String::new();
            let n = tokio::time::timeout(Duration::from_secs(30), io.read_line(&mut line))
                .await
                .expect("reply in time")
                .unwrap_or(0);
            if n == 0 {
                return (0, text);
            }
            let code = line.get(..3).and_then(|c| c.parse().ok()).unwrap_or(0);
            text.push_str(line.get(4..).unwrap_or("").trim_end());
            text.push('\n');
            if line.as_bytes().get(3) != Some(&b'-') {
                return (code, text);
            }
        }
    }

    /// Sends a command line and returns the reply.
    pub async fn cmd(&mut self, line: &str) -> (u16, String) {
        self.send(format!("{line}\r\n").as_bytes()).await;
        self.reply().await
    }

    /// EHLO, STARTTLS, EHLO.
    pub async fn starttls(&mut self) {
        assert_eq!(self.cmd("EHLO client.test").await.0, 250);
        let (code, _) = self.cmd("STARTTLS").await;
        assert_eq!(code, 220);
        let io = self.io.take().expect("open");
        // Anything buffered but unread would be lost here; after 220 the server sends nothing before TLS.
        let inner = io.into_inner();
        let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
        let tls = tls_connector(&self.cert)
            .connect(name, inner)
            .await
            .expect("STARTTLS handshake");
        self.io = Some(BufReader::new(Box::new(tls) as Box<dyn Io>));
        assert_eq!(self.cmd("EHLO client.test").await.0, 250);
    }

    /// STARTTLS then AUTH PLAIN.
    pub async fn login(&mut self, user: &str, pass: &str) -> (u16, String) {
        use base64::Engine;
        let token = base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{pass}"));
        self.cmd(&format!("AUTH PLAIN {token}")).await
    }
}

/// A small valid message from `from` to `to`.
pub fn message(from: &str, to: &str, subject: &str) -> String {
    format!("From: App <{from}>\r\nTo: <{to}>\r\nSubject: {subject}\r\n\r\nHello from SMTP\r\n")
}
