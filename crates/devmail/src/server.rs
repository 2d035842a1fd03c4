//! The mailbox's SMTP listener: ESMTP without AUTH or TLS (loopback only), any sender, any recipient, every
//! message stored in the [`Mailbox`].

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::{DevMailError, Envelope, MAX_MESSAGE_BYTES, Mailbox};

/// Longest command line read.
const MAX_LINE: u64 = 4096;
/// A client silent this long is disconnected.
const IDLE: Duration = Duration::from_secs(300);

/// The running listener; stops accepting when dropped.
#[derive(Debug)]
pub struct MailboxServer {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for MailboxServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl MailboxServer {
    /// Listens on `addr` (port 0: any free port) and stores what it receives in `mailbox`.
    pub async fn start(addr: SocketAddr, mailbox: Mailbox) -> Result<MailboxServer, DevMailError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(DevMailError::io(format!("binding the dev mailbox to {addr}")))?;
        let addr = listener
            .local_addr()
            .map_err(DevMailError::io("reading the dev mailbox's address"))?;
        let task = tokio::spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((stream, peer)) => {
                        let mailbox = mailbox.clone();
                        tokio::spawn(async move {
                            if let Err(e) = session(stream, &mailbox).await {
                                tracing::debug!(%peer, error = %e, "dev mailbox connection ended");
                            }
                        });
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "dev mailbox accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
        });
        Ok(MailboxServer { addr, task })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// `<path>` of `FROM:<path> params` / `TO:<path>`, or `None`.
fn path_of(arg: &str, keyword: &str) -> Option<String> {
    let rest = arg.get(..keyword.len())?;
    if !rest.eq_ignore_ascii_case(keyword) {
        return None;
    }
    let rest = arg[keyword.len()..].trim_start();
    let inner = rest.strip_prefix('<')?;
    let end = inner.find('>')?;
    Some(inner[..end].to_string())
}

async fn session(stream: TcpStream, mailbox: &Mailbox) -> std::io::Result<()> {
    let _ = stream.set_nodelay(true);
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    write
        .write_all(b"220 mailbox.dev.mailpush ESMTP mailpush dev mailbox\r\n")
        .await?;
    let mut mail_from: Option<String> = None;
    let mut rcpts: Vec<String> = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        let n = tokio::time::timeout(IDLE, (&mut reader).take(MAX_LINE).read_line(&mut line))
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "idle"))??;
        if n == 0 {
            return Ok(());
        }
        let command = line.trim_end_matches(['\r', '\n']);
        let (verb, arg) = command.split_once(' ').unwrap_or((command, ""));
        let reply: String = match verb.to_ascii_uppercase().as_str() {
            "EHLO" => format!(
                "250-mailbox.dev.mailpush\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250-ENHANCEDSTATUSCODES\r\n250 SIZE {MAX_MESSAGE_BYTES}\r\n"
            ),
            "HELO" => "250 mailbox.dev.mailpush\r\n".into(),
            "MAIL" => match path_of(arg.trim(), "FROM:") {
                Some(p) => {
                    mail_from = Some(p);
                    rcpts.clear();
                    "250 2.1.0 Ok\r\n".into()
                }
                None => "501 5.5.4 Syntax: MAIL FROM:<address>\r\n".into(),
            },
            "RCPT" if mail_from.is_none() => "503 5.5.1 MAIL first\r\n".into(),
            "RCPT" => match path_of(arg.trim(), "TO:") {
                Some(p) if !p.is_empty() => {
                    rcpts.push(p);
                    "250 2.1.5 Ok\r\n".into()
                }
                _ => "501 5.5.4 Syntax: RCPT TO:<address>\r\n".into(),
            },
            "DATA" if rcpts.is_empty() => "503 5.5.1 RCPT first\r\n".into(),
            "DATA" => {
                write.write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n").await?;
                let body = read_data(&mut reader).await?;
                let envelope = Envelope {
                    mail_from: mail_from.take().unwrap_or_default(),
                    rcpt_to: std::mem::take(&mut rcpts),
                    received_at_ms: now_ms(),
                };
                match body {
                    None => "552 5.3.4 Message too big\r\n".into(),
                    Some(raw) => match mailbox.store(&envelope, &raw).await {
                        Ok(id) => format!("250 2.0.0 Ok: stored as {id}\r\n"),
                        Err(e) => {
                            tracing::warn!(error = %e, "dev mailbox could not store a message");
                            "451 4.3.0 cannot store the message\r\n".into()
                        }
                    },
                }
            }
            "RSET" => {
                mail_from = None;
                rcpts.clear();
                "250 2.0.0 Ok\r\n".into()
            }
            "NOOP" => "250 2.0.0 Ok\r\n".into(),
            "QUIT" => {
                write.write_all(b"221 2.0.0 Bye\r\n").await?;
                return Ok(());
            }
            _ => "502 5.5.2 Command not implemented\r\n".into(),
        };
        write.write_all(reply.as_bytes()).await?;
    }
}

/// Reads DATA up to the lone dot, dot-unstuffed, with CRLF line ends; `None` when it is over the size limit (the
/// rest is still read, so the session stays in step).
async fn read_data<R: tokio::io::AsyncBufRead + Unpin>(reader: &mut R) -> std::io::Result<Option<Vec<u8>>> {
    let mut out = Vec::new();
    let mut too_big = false;
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = tokio::time::timeout(IDLE, reader.read_until(b'\n', &mut line))
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "idle in DATA"))??;
        if n == 0 {
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "closed in DATA"));
        }
        let content = line.strip_suffix(b"\n").unwrap_or(&line);
        let content = content.strip_suffix(b"\r").unwrap_or(content);
        if content == b"." {
            return Ok((!too_big).then_some(out));
        }
        let content = content.strip_prefix(b".").unwrap_or(content);
        if out.len() + content.len() + 2 > MAX_MESSAGE_BYTES {
            too_big = true;
            out.clear();
        }
        if !too_big {
            out.extend_from_slice(content);
            out.extend_from_slice(b"\r\n");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncBufReadExt;

    async fn expect<R: tokio::io::AsyncBufRead + Unpin>(r: &mut R, code: &str) {
        let mut reply = String::new();
        loop {
            reply.clear();
            r.read_line(&mut reply).await.unwrap();
            assert!(reply.starts_with(code), "{reply}");
            if reply.as_bytes().get(3) == Some(&b' ') {
                break;
            }
        }
    }

    #[tokio::test]
    async fn receives_and_stores_over_a_socket() {
        let dir = tempfile::tempdir().unwrap();
        let mailbox = Mailbox::open(dir.path()).unwrap();
        let server = MailboxServer::start("127.0.0.1:0".parse().unwrap(), mailbox.clone())
            .await
            .unwrap();
        let stream = TcpStream::connect(server.addr()).await.unwrap();
        let (r, mut w) = stream.into_split();
        let mut r = BufReader::new(r);
        expect(&mut r, "220").await;
        for (cmd, code) in [
            ("EHLO me\r\n", "250"),
            ("MAIL FROM:<a@x.test>\r\n", "250"),
            ("RCPT TO:<b@y.test>\r\n", "250"),
            ("DATA\r\n", "354"),
            ("Subject: hi\r\n\r\n..dot\r\n.\r\n", "250"),
            ("QUIT\r\n", "221"),
        ] {
            w.write_all(cmd.as_bytes()).await.unwrap();
            expect(&mut r, code).await;
        }
        let list = mailbox.list(10).await.unwrap();
        assert_eq!(list.len(), 1);
        let m = mailbox.get(&list[0].id).await.unwrap();
        assert_eq!(m.raw, b"Subject: hi\r\n\r\n.dot\r\n");
        assert_eq!(m.envelope.rcpt_to, vec!["b@y.test".to_string()]);
    }
}
