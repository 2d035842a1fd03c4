//! Shared setup of the SMTP integration tests: a real `Mailpush` on a temporary SQLite database, the SMTP
//! server on loopback with a generated certificate, and a backend that adds SMTP credentials (sending
//! identities, which own them in production, are not on this branch).

#![allow(dead_code)]

use async_trait::async_trait;
use mailpush_core::{AccountContext, Mailpush, Settings, StatusRequest, Submitter};
use mailpush_model::{EmailAddress, MessageId, SystemClock};
use mailpush_smtp::{CoreBackend, Envelope, Principal, Reply, SmtpConfig, SmtpServer, SubmissionBackend};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls;

/// The login the test backend knows.
pub const LOGIN: &str = "app@shop.example.com";
/// Its password.
pub const PASSWORD: &str = "correct horse battery staple";

/// [`CoreBackend`] plus one (sender address, password) pair standing in for identities' SMTP passwords.
pub struct TestBackend {
    pub inner: CoreBackend,
    pub logins: HashMap<String, (String, AccountContext)>,
}

#[async_trait]
impl SubmissionBackend for TestBackend {
    async fn authenticate(&self, username: &str, password: &str) -> Result<Option<Principal>, Reply> {
        Ok(self
            .logins
            .get(&username.to_lowercase())
            .filter(|(p, _)| p == password)
            .map(|(_, account)| Submitter {
                account: account.clone(),
                login: EmailAddress::parse(username).ok(),
            }))
    }
    async fn trusted_principal(&self, client: IpAddr) -> Result<Option<Principal>, Reply> {
        self.inner.trusted_principal(client).await
    }
    async fn check_sender(&self, p: &Principal, mail_from: &str) -> Result<(), Reply> {
        self.inner.check_sender(p, mail_from).await
    }
    async fn check_recipient(&self, p: &Principal, rcpt: &str) -> Result<(), Reply> {
        self.inner.check_recipient(p, rcpt).await
    }
    async fn submit(&self, p: &Principal, envelope: &Envelope, data: Vec<u8>) -> Result<MessageId, Reply> {
        self.inner.submit(p, envelope, data).await
    }
}

pub struct World {
    pub _dir: tempfile::TempDir,
    pub core: Mailpush,
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
    let mut settings = base_settings(dir.path());
    tweak(&mut settings);
    let core = Mailpush::open(settings.clone(), Arc::new(SystemClock))
        .await
        .expect("open");
    core.create_account("shop").await.expect("account");
    let account = core
        .list_accounts()
        .await
        .expect("accounts")
        .into_iter()
        .find(|a| a.name == "shop")
        .expect("shop");
    let (acceptor, _) = mailpush_smtp::tls::acceptor_for(&settings).expect("tls");
    let mut config = SmtpConfig::from_settings(&settings, Some(acceptor));
    tweak_config(&mut config);
    let backend = TestBackend {
        inner: CoreBackend::new(core.clone()).expect("backend"),
        logins: [(LOGIN.to_string(), (PASSWORD.to_string(), account.clone()))].into(),
    };
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
        core,
        account,
        addr,
        tls_addr,
    }
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
