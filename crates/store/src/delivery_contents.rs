//! What the worker sends: a message's MIME and the per-recipient bodies of tracked mail (migration 0008).

use std::collections::{HashMap, HashSet};

use mailpush_model::MessageId;

use crate::StoreError;
use crate::body_spool::{BodySpool, SpoolRef};
use crate::queue::Queue;
use crate::sql::{Pool, builder};

/// What the worker sends for a claimed message: its MIME and the per-recipient bodies of tracked mail.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeliveryContent {
    /// The message's MIME (sent to recipients without a body of their own).
    pub body: Vec<u8>,
    /// (recipient, body) of the asked recipients that have their own body.
    pub personal: Vec<(String, Vec<u8>)>,
}

/// Messages whose content one statement of [`Queue::delivery_contents`] reads: with up to 50 recipients each,
/// far below SQLite's 32,766 bound parameters.
pub(crate) const CONTENT_READ_CHUNK: usize = 100;

impl Queue<'_> {
    /// Stores per-recipient bodies of a message (written before the message is enqueued).
    pub async fn put_recipient_bodies(
        self,
        message: &mailpush_model::MessageId,
        bodies: &[(String, Vec<u8>)],
    ) -> Result<(), StoreError> {
        self.store
            .guarded(async {
                if bodies.is_empty() {
                    return Ok(());
                }
                put_recipient_bodies(self.store.writer(), message, bodies).await
            })
            .await
    }

    /// The per-recipient bodies stored for these recipients of `message` (absent ones use the message body).
    pub async fn recipient_bodies(
        self,
        message: &mailpush_model::MessageId,
        recipients: &[String],
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.store
            .guarded(async {
                if recipients.is_empty() {
                    return Ok(Vec::new());
                }
                recipient_bodies(self.store.reader(), message, recipients).await
            })
            .await
    }

    /// A claimed message's content for delivery: its MIME and the per-recipient bodies of those of `recipients`
    /// that have one, in one round trip. `None` when the message body is gone (purged after the last final
    /// delivery, so never for a delivery still leased).
    pub async fn delivery_content(
        self,
        message: &mailpush_model::MessageId,
        recipients: &[String],
    ) -> Result<Option<DeliveryContent>, StoreError> {
        self.store
            .guarded(async {
                let mut all = self
                    .delivery_contents(&[(message.clone(), recipients.to_vec())])
                    .await?;
                Ok(all.remove(message))
            })
            .await
    }

    /// [`Queue::delivery_content`] of several messages in one read (a statement per 100 messages): the MIME of
    /// each message that still has one, with the personal bodies of its asked recipients. A message missing from
    /// the map has no content any more.
    pub async fn delivery_contents(
        self,
        wanted: &[(mailpush_model::MessageId, Vec<String>)],
    ) -> Result<std::collections::HashMap<mailpush_model::MessageId, DeliveryContent>, StoreError> {
        let spool = self.store.inner.db.spool();
        self.store
            .guarded(delivery_contents(self.store.reader(), spool, wanted))
            .await
    }
}

async fn put_recipient_bodies(
    pool: Pool<'_>,
    message: &MessageId,
    bodies: &[(String, Vec<u8>)],
) -> Result<(), StoreError> {
    for chunk in bodies.chunks(100) {
        let mut qb = builder("INSERT INTO recipient_bodies (message_id, recipient, body) ");
        qb.push_values(chunk, |b, (r, body)| {
            b.push_bind(message.as_str()).push_bind(r).push_bind(body);
        });
        qb.push(" ON CONFLICT DO NOTHING");
        qb.build().execute(pool).await?;
    }
    Ok(())
}

async fn recipient_bodies(
    pool: Pool<'_>,
    message: &MessageId,
    recipients: &[String],
) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
    let mut qb = builder("SELECT recipient, body FROM recipient_bodies WHERE message_id = ");
    qb.push_bind(message.as_str()).push(" AND recipient IN (");
    qb.push_binds(recipients);
    qb.push(")");
    qb.build().fetch_all(pool).await
}

/// A stored message body: in `body`, or, spooled (see `body_spool`), at the place the other columns give.
pub(crate) type StoredBody = (Vec<u8>, Option<i64>, Option<i64>, Option<i64>);

/// The bytes of a stored body; `None` when it was spooled and its segment is gone (the message is final).
pub(crate) fn resolve_body(spool: Option<&BodySpool>, stored: StoredBody) -> Result<Option<Vec<u8>>, StoreError> {
    match stored {
        (body, None, _, _) => Ok(Some(body)),
        (_, Some(segment), Some(offset), Some(length)) => match spool {
            Some(spool) => spool.read(SpoolRef {
                segment,
                offset,
                length,
            }),
            None => Err(StoreError::Corrupt(format!(
                "a body in spool segment {segment}, and the store has no spool"
            ))),
        },
        (_, Some(segment), _, _) => Err(StoreError::Corrupt(format!(
            "a body in spool segment {segment} without its offset and length"
        ))),
    }
}

async fn delivery_contents(
    pool: Pool<'_>,
    spool: Option<&BodySpool>,
    wanted: &[(MessageId, Vec<String>)],
) -> Result<HashMap<MessageId, DeliveryContent>, StoreError> {
    let mut out: HashMap<MessageId, DeliveryContent> = HashMap::new();
    // One statement per chunk of messages for both tables: the worker reads a whole claim's content in
    // a round trip or two, not one per message.
    for chunk in wanted.chunks(CONTENT_READ_CHUNK) {
        let asked: HashSet<(&str, &str)> = chunk
            .iter()
            .flat_map(|(m, rs)| rs.iter().map(move |r| (m.as_str(), r.as_str())))
            .collect();
        let mut qb = builder(
            "SELECT message_id, 0 AS part, '' AS recipient, body, spool_segment, spool_offset, spool_length \
             FROM message_bodies WHERE message_id IN (",
        );
        qb.push_binds(chunk.iter().map(|(m, _)| m.as_str()));
        qb.push(")");
        if !asked.is_empty() {
            qb.push(
                " UNION ALL SELECT message_id, 1 AS part, recipient, body, NULL, NULL, NULL FROM recipient_bodies \
                 WHERE message_id IN (",
            );
            qb.push_binds(chunk.iter().filter(|(_, rs)| !rs.is_empty()).map(|(m, _)| m.as_str()));
            qb.push(") AND recipient IN (");
            let recipients: HashSet<&str> = asked.iter().map(|(_, r)| *r).collect();
            qb.push_binds(recipients);
            qb.push(")");
        }
        let mut personal: Vec<(String, String, Vec<u8>)> = Vec::new();
        type ContentRow = (String, i32, String, Vec<u8>, Option<i64>, Option<i64>, Option<i64>);
        let rows: Vec<ContentRow> = qb.build().fetch_all(pool).await?;
        for (message, part, recipient, body, segment, offset, length) in rows {
            if part == 0 {
                // A spooled body whose segment is gone: the message is final, as if its row were.
                if let Some(body) = resolve_body(spool, (body, segment, offset, length))? {
                    out.entry(MessageId::from_stored(message)).or_default().body = body;
                }
            } else if asked.contains(&(message.as_str(), recipient.as_str())) {
                // The IN lists cross messages with recipients: only the asked pairs are kept.
                personal.push((message, recipient, body));
            }
        }
        for (message, recipient, body) in personal {
            // Personal bodies of a message whose MIME is gone are useless (the message is purged).
            if let Some(c) = out.get_mut(&MessageId::from_stored(message)) {
                c.personal.push((recipient, body));
            }
        }
    }
    Ok(out)
}
