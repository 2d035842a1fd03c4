//! The PostgreSQL backend: many api/worker processes on many machines share one database.
//! Claims lock with `FOR UPDATE SKIP LOCKED`, so concurrent workers never take the same row and never wait for
//! each other; `synchronous_commit` stays at its default (on), so a commit is durable when it returns.

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres};

use crate::{NewMessage, StoreOptions, delivery_init, outcome_effect};

crate::common::common_ops! { db = Postgres }

/// Leases up to `want` due deliveries of one lane, in due order, in one statement.
///
/// `FOR UPDATE SKIP LOCKED` makes concurrent claimers pass over each other's rows instead of waiting or taking
/// them twice. A row another claimer leased and committed meanwhile is re-checked against the WHERE clause on
/// its new version (its next_attempt_ms is now the lease expiry, so it no longer qualifies).
async fn claim_lane(
    pool: &PgPool,
    lane: i32,
    r: &ClaimRequest,
    lease_until: i64,
    want: i64,
) -> Result<Vec<ClaimedDelivery>, StoreError> {
    let rows = sqlx::query(
        "WITH picked AS ( \
             SELECT id, next_attempt_ms AS due_ms FROM deliveries \
             WHERE state < 2 AND lane = $1 AND next_attempt_ms <= $2 \
             ORDER BY next_attempt_ms LIMIT $3 \
             FOR UPDATE SKIP LOCKED), \
         leased AS ( \
             UPDATE deliveries AS d \
             SET state = $4, lease_token = d.lease_token + 1, lease_owner = $5, next_attempt_ms = $6 \
             FROM picked, messages AS m \
             WHERE d.id = picked.id AND m.id = d.message_id \
             RETURNING d.id, d.message_id, d.account_id, d.recipient, d.domain, d.kind, d.lane, d.attempts, \
                 d.request_ms, d.lease_token, m.envelope_from, m.expires_ms, picked.due_ms) \
         SELECT * FROM leased ORDER BY due_ms, id",
    )
    .bind(lane)
    .bind(r.now_ms)
    .bind(want)
    .bind(state::LEASED)
    .bind(&r.worker)
    .bind(lease_until)
    .fetch_all(pool)
    .await?;
    rows.iter().map(claimed_from_row).collect()
}

/// Records outcomes in one transaction with a fixed number of statements whatever the batch size (each table
/// gets its rows as arrays), since every statement is a network round trip.
///
/// Rows are locked first in id order (deliveries, then messages), so concurrent batches from several workers,
/// which may finish deliveries of the same messages, cannot deadlock.
pub(crate) async fn record_outcomes(
    pool: &PgPool,
    outcomes: &[DeliveryOutcome],
    retain_bodies: bool,
) -> Result<Vec<bool>, StoreError> {
    let mut applied = vec![false; outcomes.len()];
    // Only one outcome per (delivery, lease) can apply: the first. At most one lease per delivery is current.
    let mut index: HashMap<(i64, i64), usize> = HashMap::new();
    for (i, o) in outcomes.iter().enumerate() {
        index.entry((o.delivery_id, o.lease.0)).or_insert(i);
    }
    if index.is_empty() {
        return Ok(applied);
    }
    let mut order: Vec<usize> = index.values().copied().collect();
    order.sort_by_key(|&i| (outcomes[i].delivery_id, i));
    let effects: Vec<_> = order.iter().map(|&i| outcome_effect(&outcomes[i])).collect();
    let ids: Vec<i64> = order.iter().map(|&i| outcomes[i].delivery_id).collect();
    let tokens: Vec<i64> = order.iter().map(|&i| outcomes[i].lease.0).collect();
    let states: Vec<i32> = effects.iter().map(|e| e.state).collect();
    let statuses: Vec<i32> = effects.iter().map(|e| e.deliver_status).collect();
    let messages: Vec<&str> = order.iter().map(|&i| outcomes[i].result.message()).collect();
    let deliver_mss: Vec<Option<i64>> = effects.iter().map(|e| e.deliver_ms).collect();
    let nexts: Vec<Option<i64>> = effects.iter().map(|e| e.next_attempt_ms).collect();

    let mut tx = pool.begin().await?;
    sqlx::query("SELECT id FROM deliveries WHERE id = ANY($1) ORDER BY id FOR UPDATE")
        .bind(&ids)
        .execute(&mut *tx)
        .await?;
    // The fence: only the holder of the current lease may write.
    let rows = sqlx::query(
        "UPDATE deliveries AS d \
         SET state = o.state, deliver_status = o.deliver_status, deliver_message = o.message, \
             deliver_ms = o.deliver_ms, next_attempt_ms = COALESCE(o.next_attempt_ms, d.next_attempt_ms), \
             attempts = d.attempts + 1, lease_owner = NULL \
         FROM UNNEST($1::int8[], $2::int8[], $3::int4[], $4::int4[], $5::text[], $6::int8[], $7::int8[]) \
             AS o(id, lease_token, state, deliver_status, message, deliver_ms, next_attempt_ms) \
         WHERE d.id = o.id AND d.lease_token = o.lease_token AND d.state = $8 \
         RETURNING d.id, o.lease_token, d.message_id, d.attempts, d.account_id, d.recipient",
    )
    .bind(&ids)
    .bind(&tokens)
    .bind(&states)
    .bind(&statuses)
    .bind(&messages)
    .bind(&deliver_mss)
    .bind(&nexts)
    .bind(state::LEASED)
    .fetch_all(&mut *tx)
    .await?;

    let mut a_delivery = Vec::with_capacity(rows.len());
    let mut a_attempt = Vec::with_capacity(rows.len());
    let mut a_at = Vec::with_capacity(rows.len());
    let mut a_status = Vec::with_capacity(rows.len());
    let mut a_reply = Vec::with_capacity(rows.len());
    let mut a_remote = Vec::with_capacity(rows.len());
    let mut finished: BTreeMap<String, i32> = BTreeMap::new();
    let mut e_account = Vec::with_capacity(rows.len());
    let mut e_message = Vec::with_capacity(rows.len());
    let mut e_recipient = Vec::with_capacity(rows.len());
    let mut e_kind = Vec::with_capacity(rows.len());
    let mut e_at = Vec::with_capacity(rows.len());
    let mut e_reason = Vec::with_capacity(rows.len());
    let mut e_bounce = Vec::with_capacity(rows.len());
    // Hard bounces to blacklist, one row per (address, account): ON CONFLICT may not touch a row twice.
    let mut blacklist: BTreeMap<(String, i64), (i64, &str)> = BTreeMap::new();
    for row in &rows {
        let id: i64 = row.try_get("id")?;
        let token: i64 = row.try_get("lease_token")?;
        let Some(&i) = index.get(&(id, token)) else {
            return Err(StoreError::Corrupt(format!(
                "outcome update returned an unexpected row {id}"
            )));
        };
        let o = &outcomes[i];
        let effect = outcome_effect(o);
        applied[i] = true;
        a_delivery.push(id);
        a_attempt.push(row.try_get::<i32, _>("attempts")?);
        a_at.push(o.at_ms);
        a_status.push(effect.deliver_status);
        a_reply.push(o.result.message());
        a_remote.push(o.remote.as_deref());
        let account_id: i64 = row.try_get("account_id")?;
        let recipient: String = row.try_get("recipient")?;
        let message_id: String = row.try_get("message_id")?;
        let (kind, bounce_type) = o.result.event();
        if bounce_type == Some(crate::BounceType::Hard) {
            blacklist.insert(
                (crate::suppression::normalize(&recipient), account_id),
                (o.at_ms, o.result.message()),
            );
        }
        e_account.push(account_id);
        e_message.push(message_id);
        e_recipient.push(recipient);
        e_kind.push(kind.id());
        e_at.push(o.at_ms);
        e_reason.push(o.result.message());
        e_bounce.push(bounce_type.map(|b| b.as_str()));
        if effect.state == state::DONE {
            *finished.entry(row.try_get("message_id")?).or_default() += 1;
        }
    }
    if !a_delivery.is_empty() {
        sqlx::query(
            "INSERT INTO delivery_attempts (delivery_id, attempt, at_ms, deliver_status, reply, remote) \
             SELECT * FROM UNNEST($1::int8[], $2::int4[], $3::int8[], $4::int4[], $5::text[], $6::text[])",
        )
        .bind(&a_delivery)
        .bind(&a_attempt)
        .bind(&a_at)
        .bind(&a_status)
        .bind(&a_reply)
        .bind(&a_remote)
        .execute(&mut *tx)
        .await?;
        // The events, in the same transaction as the outcomes: never lost, never invented.
        sqlx::query(
            "INSERT INTO events (account_id, message_id, recipient, kind, at_ms, reason, bounce_type) \
             SELECT * FROM UNNEST($1::int8[], $2::text[], $3::text[], $4::int4[], $5::int8[], $6::text[], \
             $7::text[])",
        )
        .bind(&e_account)
        .bind(&e_message)
        .bind(&e_recipient)
        .bind(&e_kind)
        .bind(&e_at)
        .bind(&e_reason)
        .bind(&e_bounce)
        .execute(&mut *tx)
        .await?;
    }
    if !blacklist.is_empty() {
        let mut b_address = Vec::with_capacity(blacklist.len());
        let mut b_account = Vec::with_capacity(blacklist.len());
        let mut b_at = Vec::with_capacity(blacklist.len());
        let mut b_reason = Vec::with_capacity(blacklist.len());
        for ((address, account), (at, reason)) in &blacklist {
            b_address.push(address.as_str());
            b_account.push(*account);
            b_at.push(*at);
            b_reason.push(*reason);
        }
        sqlx::query(
            "INSERT INTO bounce_blacklist (address, account_id, created_ms, reason) \
             SELECT * FROM UNNEST($1::text[], $2::int8[], $3::int8[], $4::text[]) \
             ON CONFLICT (address, account_id) DO UPDATE SET created_ms = excluded.created_ms, \
             reason = excluded.reason",
        )
        .bind(&b_address)
        .bind(&b_account)
        .bind(&b_at)
        .bind(&b_reason)
        .execute(&mut *tx)
        .await?;
    }
    if !finished.is_empty() {
        let (message_ids, counts): (Vec<&str>, Vec<i32>) = finished.iter().map(|(m, n)| (m.as_str(), *n)).unzip();
        sqlx::query("SELECT id FROM messages WHERE id = ANY($1) ORDER BY id FOR UPDATE")
            .bind(&message_ids)
            .execute(&mut *tx)
            .await?;
        let rows = sqlx::query(
            "UPDATE messages AS m SET open_count = m.open_count - c.n \
             FROM UNNEST($1::text[], $2::int4[]) AS c(id, n) WHERE m.id = c.id \
             RETURNING m.id, m.open_count",
        )
        .bind(&message_ids)
        .bind(&counts)
        .fetch_all(&mut *tx)
        .await?;
        // A message whose last recipient is final loses its body: the service does not keep mail content.
        if !retain_bodies {
            let mut done = Vec::new();
            for row in &rows {
                if row.try_get::<i32, _>("open_count")? == 0 {
                    done.push(row.try_get::<String, _>("id")?);
                }
            }
            if !done.is_empty() {
                sqlx::query("DELETE FROM message_bodies WHERE message_id = ANY($1)")
                    .bind(&done)
                    .execute(&mut *tx)
                    .await?;
            }
        }
    }
    tx.commit().await?;
    Ok(applied)
}

/// Connects and applies migrations. The schema comes from the URL's `search_path`, e.g.
/// `postgres://u@h/db?options=-c%20search_path%3Dmy_schema` (or `?options[search_path]=my_schema`).
pub(crate) async fn open(url: &str, opts: &StoreOptions) -> Result<PgPool, crate::StoreError> {
    let connect = PgConnectOptions::from_str(url)?;
    let pool = PgPoolOptions::new()
        // At least two: the group committer holds one while claims and reads use another.
        .max_connections(opts.max_connections.max(2))
        .connect_with(connect)
        .await?;
    sqlx::migrate!("./migrations/postgres").run(&pool).await?;
    Ok(pool)
}

/// Writes a batch of messages in one transaction with three statements whatever its size: each table gets
/// its rows as arrays through UNNEST, saving a network round trip per row.
pub(crate) async fn insert_batch(
    pool: &PgPool,
    msgs: &[NewMessage],
    retain_bodies: bool,
) -> Result<(), crate::StoreError> {
    let mut tx = pool.begin().await?;
    insert_messages(&mut tx, msgs, retain_bodies).await?;
    tx.commit().await?;
    Ok(())
}

/// Writes messages inside the caller's transaction (the batch runner commits them with its task cursor).
pub(crate) async fn insert_messages(
    tx: &mut sqlx::PgConnection,
    msgs: &[NewMessage],
    retain_bodies: bool,
) -> Result<(), crate::StoreError> {
    let n = msgs.len();
    let mut ids = Vec::with_capacity(n);
    let mut accounts = Vec::with_capacity(n);
    let mut envelope_froms = Vec::with_capacity(n);
    let mut from_addresses = Vec::with_capacity(n);
    let mut subjects = Vec::with_capacity(n);
    let mut lanes = Vec::with_capacity(n);
    let mut request_mss = Vec::with_capacity(n);
    let mut not_befores = Vec::with_capacity(n);
    let mut expiress = Vec::with_capacity(n);
    let mut opens = Vec::with_capacity(n);
    let mut body_ids = Vec::with_capacity(n);
    let mut bodies: Vec<&[u8]> = Vec::with_capacity(n);

    let mut d_message = Vec::new();
    let mut d_account = Vec::new();
    let mut d_recipient = Vec::new();
    let mut d_domain = Vec::new();
    let mut d_kind = Vec::new();
    let mut d_lane = Vec::new();
    let mut d_request = Vec::new();
    let mut d_state = Vec::new();
    let mut d_send_status = Vec::new();
    let mut d_deliver_status = Vec::new();
    let mut d_deliver_message = Vec::new();
    let mut d_deliver_ms = Vec::new();
    let mut d_next = Vec::new();
    // `dropped` events of the recipients refused at admission.
    let mut e_account = Vec::new();
    let mut e_message = Vec::new();
    let mut e_recipient = Vec::new();
    let mut e_at = Vec::new();
    let mut e_reason = Vec::new();

    for m in msgs {
        let open = crate::open_count(m);
        ids.push(m.id.as_str());
        accounts.push(m.account_id);
        envelope_froms.push(m.envelope_from.as_str());
        from_addresses.push(m.from_address.as_str());
        subjects.push(m.subject.as_str());
        lanes.push(m.lane);
        request_mss.push(m.request_ms);
        not_befores.push(m.not_before_ms);
        expiress.push(m.expires_ms);
        opens.push(open);
        if open > 0 || retain_bodies {
            body_ids.push(m.id.as_str());
            bodies.push(&m.body);
        }
        for r in &m.recipients {
            let init = delivery_init(m, r);
            d_message.push(m.id.as_str());
            d_account.push(m.account_id);
            d_recipient.push(r.address.as_str());
            d_domain.push(r.domain.as_str());
            d_kind.push(r.kind.as_str());
            d_lane.push(m.lane);
            d_request.push(m.request_ms);
            d_state.push(init.state);
            d_send_status.push(r.send_status);
            d_deliver_status.push(init.deliver_status);
            d_deliver_message.push(init.deliver_message);
            d_deliver_ms.push(init.deliver_ms);
            d_next.push(m.not_before_ms);
            if r.send_status != 0 {
                e_account.push(m.account_id);
                e_message.push(m.id.as_str());
                e_recipient.push(r.address.as_str());
                e_at.push(m.request_ms);
                e_reason.push(init.deliver_message);
            }
        }
    }

    sqlx::query(
        "INSERT INTO messages (id, account_id, envelope_from, from_address, subject, lane, request_ms, \
         not_before_ms, expires_ms, open_count) \
         SELECT * FROM UNNEST($1::text[], $2::int8[], $3::text[], $4::text[], $5::text[], $6::int4[], \
         $7::int8[], $8::int8[], $9::int8[], $10::int4[])",
    )
    .bind(&ids)
    .bind(&accounts)
    .bind(&envelope_froms)
    .bind(&from_addresses)
    .bind(&subjects)
    .bind(&lanes)
    .bind(&request_mss)
    .bind(&not_befores)
    .bind(&expiress)
    .bind(&opens)
    .execute(&mut *tx)
    .await?;
    if !body_ids.is_empty() {
        sqlx::query("INSERT INTO message_bodies (message_id, body) SELECT * FROM UNNEST($1::text[], $2::bytea[])")
            .bind(&body_ids)
            .bind(&bodies)
            .execute(&mut *tx)
            .await?;
    }
    sqlx::query(
        "INSERT INTO deliveries (message_id, account_id, recipient, domain, kind, lane, request_ms, state, \
         send_status, deliver_status, deliver_message, deliver_ms, next_attempt_ms) \
         SELECT * FROM UNNEST($1::text[], $2::int8[], $3::text[], $4::text[], $5::text[], $6::int4[], $7::int8[], \
         $8::int4[], $9::int4[], $10::int4[], $11::text[], $12::int8[], $13::int8[])",
    )
    .bind(&d_message)
    .bind(&d_account)
    .bind(&d_recipient)
    .bind(&d_domain)
    .bind(&d_kind)
    .bind(&d_lane)
    .bind(&d_request)
    .bind(&d_state)
    .bind(&d_send_status)
    .bind(&d_deliver_status)
    .bind(&d_deliver_message)
    .bind(&d_deliver_ms)
    .bind(&d_next)
    .execute(&mut *tx)
    .await?;
    if !e_account.is_empty() {
        sqlx::query(
            "INSERT INTO events (account_id, message_id, recipient, kind, at_ms, reason) \
             SELECT a, m, r, $6, t, why FROM UNNEST($1::int8[], $2::text[], $3::text[], $4::int8[], $5::text[]) \
             AS e(a, m, r, t, why)",
        )
        .bind(&e_account)
        .bind(&e_message)
        .bind(&e_recipient)
        .bind(&e_at)
        .bind(&e_reason)
        .bind(mailpush_model::EventKind::Dropped.id())
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}
