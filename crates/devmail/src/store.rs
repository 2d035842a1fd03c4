//! The mailbox on disk: `<id>.eml` (the raw message as received) and `<id>.json` (its envelope), written in that
//! order so that a listed message is always complete. Ids are the reception time in ms and a counter, so their
//! order is the order of arrival.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use crate::DevMailError;
use crate::dkim::{DkimChecker, DkimVerdict};
use crate::view::{Header, MessageView};

/// The SMTP envelope of a received message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// `MAIL FROM` (empty for `<>`).
    pub mail_from: String,
    /// Every `RCPT TO`.
    pub rcpt_to: Vec<String>,
    /// When the final dot was received, Unix ms.
    pub received_at_ms: i64,
}

/// One message as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MessageSummary {
    /// The mailbox id (for [`Mailbox::get`]).
    pub id: String,
    /// The envelope.
    #[serde(flatten)]
    pub envelope: Envelope,
    /// `From:`.
    pub from: String,
    /// `To:`.
    pub to: String,
    /// `Subject:`.
    pub subject: String,
    /// `Message-ID:`.
    pub message_id: String,
    /// Size of the raw message, bytes.
    pub size: usize,
}

/// One stored message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    /// The mailbox id.
    pub id: String,
    /// Its envelope.
    pub envelope: Envelope,
    /// The message as received (CRLF line ends, dot-unstuffed).
    pub raw: Vec<u8>,
}

/// One message in full: what the JSON API answers and the console shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MessageDetail {
    /// The listing fields.
    #[serde(flatten)]
    pub summary: MessageSummary,
    /// Every header field, in order.
    pub headers: Vec<Header>,
    /// The text body.
    pub text: String,
    /// The HTML body.
    pub html: String,
    /// The message as received (lossy UTF-8).
    pub raw: String,
    /// One verdict per DKIM signature.
    pub dkim: Vec<DkimVerdict>,
    /// Every signature passed, and there is at least one.
    pub dkim_pass: bool,
}

/// The catch-all mailbox: a directory of messages. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Mailbox {
    dir: Arc<PathBuf>,
    counter: Arc<AtomicU64>,
}

/// An id as the mailbox writes them: digits and one `-`; anything else (a path) names nothing.
fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 40 && id.bytes().all(|b| b.is_ascii_digit() || b == b'-')
}

impl Mailbox {
    /// The mailbox in `dir`, created when missing.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Mailbox, DevMailError> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(DevMailError::io(format!("creating {}", dir.display())))?;
        Ok(Mailbox {
            dir: Arc::new(dir),
            counter: Arc::new(AtomicU64::new(0)),
        })
    }

    /// The directory it lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Stores a message; returns its id.
    pub async fn store(&self, envelope: &Envelope, raw: &[u8]) -> Result<String, DevMailError> {
        let n = self.counter.fetch_add(1, Ordering::Relaxed) % 1_000_000;
        // The process id keeps ids apart across restarts within one millisecond.
        let id = format!(
            "{:013}-{:07}{n:06}",
            envelope.received_at_ms.max(0),
            std::process::id() % 10_000_000
        );
        let eml = self.dir.join(format!("{id}.eml"));
        tokio::fs::write(&eml, raw)
            .await
            .map_err(DevMailError::io(format!("writing {}", eml.display())))?;
        let json = serde_json::to_vec_pretty(envelope).map_err(|e| DevMailError::Corrupt {
            id: id.clone(),
            message: e.to_string(),
        })?;
        let meta = self.dir.join(format!("{id}.json"));
        tokio::fs::write(&meta, json)
            .await
            .map_err(DevMailError::io(format!("writing {}", meta.display())))?;
        Ok(id)
    }

    /// The message `id`.
    pub async fn get(&self, id: &str) -> Result<StoredMessage, DevMailError> {
        if !valid_id(id) {
            return Err(DevMailError::NotFound(id.to_string()));
        }
        let meta = match tokio::fs::read(self.dir.join(format!("{id}.json"))).await {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(DevMailError::NotFound(id.to_string())),
            Err(e) => return Err(DevMailError::io(format!("reading message {id}"))(e)),
        };
        let envelope: Envelope = serde_json::from_slice(&meta).map_err(|e| DevMailError::Corrupt {
            id: id.to_string(),
            message: e.to_string(),
        })?;
        let raw = tokio::fs::read(self.dir.join(format!("{id}.eml")))
            .await
            .map_err(DevMailError::io(format!("reading message {id}")))?;
        Ok(StoredMessage {
            id: id.to_string(),
            envelope,
            raw,
        })
    }

    /// The message `id` parsed, with its DKIM signatures verified by `dkim`.
    pub async fn detail(&self, id: &str, dkim: &DkimChecker) -> Result<MessageDetail, DevMailError> {
        let m = self.get(id).await?;
        let view = MessageView::parse(&m.raw);
        let verdicts = dkim.check(&m.raw).await;
        Ok(MessageDetail {
            summary: m.summary(),
            headers: view.headers,
            text: view.text,
            html: view.html,
            raw: String::from_utf8_lossy(&m.raw).into_owned(),
            dkim_pass: !verdicts.is_empty() && verdicts.iter().all(DkimVerdict::pass),
            dkim: verdicts,
        })
    }

    /// The newest `limit` messages, newest first.
    pub async fn list(&self, limit: usize) -> Result<Vec<MessageSummary>, DevMailError> {
        let mut ids = Vec::new();
        let mut entries = tokio::fs::read_dir(self.dir.as_path())
            .await
            .map_err(DevMailError::io(format!("listing {}", self.dir.display())))?;
        while let Some(entry) = entries
            .next_entry()
            .await
            .map_err(DevMailError::io(format!("listing {}", self.dir.display())))?
        {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(id) = name.strip_suffix(".json")
                && valid_id(id)
            {
                ids.push(id.to_string());
            }
        }
        ids.sort_unstable_by(|a, b| b.cmp(a));
        let mut out = Vec::new();
        for id in ids.into_iter().take(limit) {
            match self.get(&id).await {
                Ok(m) => out.push(m.summary()),
                // Deleted meanwhile: not listed.
                Err(DevMailError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }
}

impl StoredMessage {
    /// The message as listed.
    pub fn summary(&self) -> MessageSummary {
        let view = MessageView::parse(&self.raw);
        MessageSummary {
            id: self.id.clone(),
            envelope: self.envelope.clone(),
            from: view.header("From").unwrap_or_default(),
            to: view.header("To").unwrap_or_default(),
            subject: view.header("Subject").unwrap_or_default(),
            message_id: view.header("Message-ID").unwrap_or_default(),
            size: self.raw.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stores_lists_newest_first_and_refuses_paths() {
        let dir = tempfile::tempdir().unwrap();
        let mb = Mailbox::open(dir.path().join("mailbox")).unwrap();
        let env = |ms| Envelope {
            mail_from: "a@x.test".into(),
            rcpt_to: vec!["b@y.test".into()],
            received_at_ms: ms,
        };
        let first = mb.store(&env(1_000), b"Subject: one\r\n\r\nbody\r\n").await.unwrap();
        let second = mb.store(&env(2_000), b"Subject: two\r\n\r\nbody\r\n").await.unwrap();
        let list = mb.list(10).await.unwrap();
        assert_eq!(
            list.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(),
            vec![second.as_str(), first.as_str()]
        );
        assert_eq!(list[0].subject, "two");
        assert_eq!(mb.get(&first).await.unwrap().raw, b"Subject: one\r\n\r\nbody\r\n");
        for bad in ["../mailbox", "", "1/2", "x"] {
            assert!(matches!(mb.get(bad).await, Err(DevMailError::NotFound(_))), "{bad}");
        }
    }
}
