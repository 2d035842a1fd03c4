//! An HTTPS server on loopback serving an MTA-STS policy file (RFC 8461 §3.3) with a certificate of its own test
//! CA, for tests of policy discovery: its answer (status, media type, body) can be changed at runtime, per host
//! name too, and the requests it got are recorded with their bodies (so it also receives TLS-RPT reports POSTed
//! to an `https:` rua, RFC 8460 §5.4).

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex, PoisonError},
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
    task::JoinHandle,
};
use tokio_rustls::TlsAcceptor;

use crate::TestkitError;

/// What the server answers to every request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyAnswer {
    /// HTTP status code. Default 200.
    pub status: u16,
    /// `Content-Type`. Default `text/plain`.
    pub content_type: String,
    /// The body: the policy file.
    pub body: String,
}

impl PolicyAnswer {
    /// A 200 `text/plain` answer with `body`.
    pub fn policy(body: impl Into<String>) -> PolicyAnswer {
        PolicyAnswer {
            status: 200,
            content_type: "text/plain".into(),
            body: body.into(),
        }
    }
}

/// One request the server received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedRequest {
    /// `GET`, `POST`, …
    pub method: String,
    /// The `Host` header.
    pub host: String,
    /// The request target.
    pub path: String,
    /// The `Content-Type` header (empty when none).
    pub content_type: String,
    /// The body (`Content-Length` bytes).
    pub body: Vec<u8>,
}

struct Shared {
    answer: Mutex<PolicyAnswer>,
    /// Answers for requests to one host name (the `Host` header without its port), before `answer`.
    answers: Mutex<HashMap<String, PolicyAnswer>>,
    /// Each request, in order.
    requests: Mutex<Vec<ReceivedRequest>>,
}

/// Largest request body kept.
const MAX_BODY: usize = 1024 * 1024;

/// A policy host (`mta-sts.<domain>`) on a loopback port. Stops when dropped.
pub struct PolicyServer {
    addr: SocketAddr,
    ca_der: Vec<u8>,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for PolicyServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl PolicyServer {
    /// Listens on `127.0.0.1:0` with a certificate for `hostname` (e.g. `mta-sts.example.org`) and answers every
    /// request with `answer`.
    pub async fn start(hostname: &str, answer: PolicyAnswer) -> Result<PolicyServer, TestkitError> {
        Self::start_for(&[hostname], answer).await
    }

    /// [`PolicyServer::start`] with a certificate naming every one of `hostnames`: one server for the policy hosts
    /// of several domains (answers per host with [`PolicyServer::set_answer_for`]) or a report receiver.
    pub async fn start_for(hostnames: &[&str], answer: PolicyAnswer) -> Result<PolicyServer, TestkitError> {
        let mut names = hostnames.to_vec();
        names.extend(["localhost", "127.0.0.1"]);
        let certificate = crate::sink::SinkCertificate::issued(&names, false)?;
        let acceptor = crate::sink::tls_acceptor(&certificate)?;
        let ca_der = certificate.chain.last().cloned().unwrap_or_default();
        let bind = SocketAddr::from(([127, 0, 0, 1], 0));
        let listener = TcpListener::bind(bind)
            .await
            .map_err(|source| TestkitError::Bind { addr: bind, source })?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            answer: Mutex::new(answer),
            answers: Mutex::new(HashMap::new()),
            requests: Mutex::new(Vec::new()),
        });
        let task = tokio::spawn(serve(listener, acceptor, shared.clone()));
        Ok(PolicyServer {
            addr,
            ca_der,
            shared,
            task,
        })
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The listening port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// DER of the CA that issued the server's certificate: what a client must trust.
    pub fn ca_certificate_der(&self) -> &[u8] {
        &self.ca_der
    }

    /// Answers `answer` from now on.
    pub fn set_answer(&self, answer: PolicyAnswer) {
        *self.shared.answer.lock().unwrap_or_else(PoisonError::into_inner) = answer;
    }

    /// Answers `answer` to requests for `hostname` from now on (other hosts keep the general answer).
    pub fn set_answer_for(&self, hostname: &str, answer: PolicyAnswer) {
        self.shared
            .answers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(hostname.to_ascii_lowercase(), answer);
    }

    /// `(Host, path)` of every request received so far.
    pub fn requests(&self) -> Vec<(String, String)> {
        self.received().into_iter().map(|r| (r.host, r.path)).collect()
    }

    /// Every request received so far, with its method, media type and body.
    pub fn received(&self) -> Vec<ReceivedRequest> {
        self.shared
            .requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Drop for PolicyServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(listener: TcpListener, acceptor: TlsAcceptor, shared: Arc<Shared>) {
    while let Ok((tcp, _)) = listener.accept().await {
        let (acceptor, shared) = (acceptor.clone(), shared.clone());
        tokio::spawn(async move {
            let Ok(mut tls) = acceptor.accept(tcp).await else {
                return;
            };
            // One request per connection: read the head and the body, answer, close.
            let mut head = Vec::new();
            let mut buf = [0u8; 2048];
            let end = loop {
                if let Some(i) = head.windows(4).position(|w| w == b"\r\n\r\n") {
                    break i + 4;
                }
                if head.len() >= 16 * 1024 {
                    return;
                }
                match tls.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            };
            let mut body = head.split_off(end);
            let text = String::from_utf8_lossy(&head).into_owned();
            let mut request_line = text.lines().next().unwrap_or_default().split_whitespace();
            let method = request_line.next().unwrap_or_default().to_string();
            let path = request_line.next().unwrap_or_default().to_string();
            let header = |name: &str| {
                text.lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_string())
                    })
                    .unwrap_or_default()
            };
            let (host, content_type) = (header("host"), header("content-type"));
            let length = header("content-length").parse::<usize>().unwrap_or(0).min(MAX_BODY);
            while body.len() < length {
                match tls.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => body.extend_from_slice(&buf[..n]),
                }
            }
            body.truncate(length);
            let hostname = host
                .rsplit_once(':')
                .map_or(host.as_str(), |(h, _)| h)
                .to_ascii_lowercase();
            shared
                .requests
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(ReceivedRequest {
                    method,
                    host,
                    path,
                    content_type,
                    body,
                });
            let answer = shared
                .answers
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get(&hostname)
                .cloned()
                .unwrap_or_else(|| shared.answer.lock().unwrap_or_else(PoisonError::into_inner).clone());
            let response = format!(
                "HTTP/1.1 {} X\r\ncontent-type: {}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{}",
                answer.status,
                answer.content_type,
                answer.body.len(),
                answer.body
            );
            let _ = tls.write_all(response.as_bytes()).await;
            let _ = tls.shutdown().await;
        });
    }
}
