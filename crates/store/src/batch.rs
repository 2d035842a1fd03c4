//! Batch sending (migration 0009): recipient lists (`receivers`, `receiver_details`) and send tasks
//! (`send_tasks`). Every request-facing query is scoped by account; the runner's queries (`runnable_tasks`,
//! `receiver_walk`, `feed_task_chunk`, `update_task_run`, `lease_task`) are system lookups by task id.
//!
//! Crash safety: [`Batch::feed_task_chunk`] inserts a chunk of messages and advances the task's cursor in ONE
//! transaction, conditional on the cursor still being where the runner read it (compare-and-swap). A runner
//! killed before the commit left nothing; after it, the cursor says so. Two runners on one database can never
//! both commit the same chunk.

use sqlx::AssertSqlSafe;

use crate::accounts::lock_known_account;
use crate::sql::{Conn, builder, page, query};
use crate::{AccountId, Store, StoreError};

pub use mailpush_model::batch::{
    ChunkFeed, DetailPage, NewReceiverDetail, NewSendTask, ReceiverDetailRow, ReceiverRow, ReceiverStatus, SendTaskRow,
    TaskChunk, TaskRunUpdate, TaskStatus,
};

/// What [`Batch::add_receiver_details`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AddDetailsOutcome {
    /// Valid addresses inserted.
    pub valid: i64,
    /// Invalid addresses inserted.
    pub invalid: i64,
    /// Addresses already in the list (or repeated in the request): not inserted.
    pub repeated: i64,
}

/// Why [`Batch::add_receiver_details`] refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddDetailsRefusal {
    /// No such list for this account.
    NotFound,
    /// The list would exceed its maximum size; carries the current size.
    TooMany(i64),
}

/// A `ListReceiverDetails` filter.
#[derive(Debug, Clone, Default)]
pub struct DetailQuery {
    /// Owner.
    pub account_id: AccountId,
    /// List.
    pub receiver_id: i64,
    /// Substring of the address.
    pub email_contains: Option<String>,
    /// Created at or after, Unix ms.
    pub from_ms: Option<i64>,
    /// Created before, Unix ms.
    pub to_ms: Option<i64>,
    /// 1 valid / 2 invalid.
    pub status: Option<i32>,
    /// Offset.
    pub offset: i64,
    /// Limit.
    pub limit: i64,
}

/// A `ListSendTasks` filter.
#[derive(Debug, Clone, Default)]
pub struct TaskQuery {
    /// Owner.
    pub account_id: AccountId,
    /// `Status`.
    pub status: Option<i32>,
    /// `TaskType`.
    pub task_type: Option<i32>,
    /// `ReceiverId`.
    pub receiver_id: Option<i64>,
    /// Offset.
    pub offset: i64,
    /// Limit.
    pub limit: i64,
}

const RECEIVER_COLUMNS: &str = "id, account_id, name, description, status, valid_count, invalid_count, created_ms";
const TASK_COLUMNS: &str = "t.id, t.account_id, t.receiver_id, t.from_address, t.subject, t.reply_to, \
     t.task_type, t.template_id, t.template_data, t.unsubscribe, t.ad_location, t.begin_ms, \
     t.interval_hours, t.term_cycle, t.status, t.request_count, t.send_count, t.cache_count, t.skip_count, \
     t.err_msg, t.cursor, t.runs, t.next_run_ms, t.created_ms, t.updated_ms, \
     COALESCE(r.name, '') AS receivers_name";

/// Locks one of the account's lists until the transaction ends (SQLite: the write transaction already excludes
/// other writers) and reads its `(valid_count, invalid_count)`; `None` if the account has no such list.
async fn lock_receiver(conn: &mut Conn<'_>, account: AccountId, id: i64) -> Result<Option<(i64, i64)>, StoreError> {
    let lock = format!(
        "SELECT valid_count, invalid_count FROM receivers WHERE account_id = $1 AND id = $2{}",
        conn.lock_rows()
    );
    query(AssertSqlSafe(lock))
        .bind(account)
        .bind(id)
        .fetch_optional(conn)
        .await
}

/// `%`, `_` and `\` match themselves in a LIKE pattern built from user text.
fn escape_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Receiver lists and batch send tasks ([`Store::batch`]).
#[derive(Debug, Clone, Copy)]
pub struct Batch<'a> {
    pub(crate) store: &'a Store,
}

impl Store {
    /// Batch sending: receiver lists and send tasks.
    pub fn batch(&self) -> Batch<'_> {
        Batch { store: self }
    }
}

impl Batch<'_> {
    /// Creates a recipient list. `Ok(Err(true))`: the account already has a list with this name;
    /// `Ok(Err(false))`: it has `max_per_account` lists. Checked under a per-account lock.
    pub async fn create_receiver(
        self,
        account: AccountId,
        name: &str,
        description: &str,
        now_ms: i64,
        max_per_account: i64,
    ) -> Result<Result<ReceiverRow, bool>, StoreError> {
        self.store
            .guarded(async {
                let mut tx = self.store.writer().begin_write().await?;
                let mut conn = tx.conn();
                lock_known_account(&mut conn, account).await?;
                let taken: i64 = query("SELECT COUNT(*) FROM receivers WHERE account_id = $1 AND name = $2")
                    .bind(account)
                    .bind(name)
                    .scalar(&mut conn)
                    .await?;
                if taken > 0 {
                    return Ok(Err(true));
                }
                let n: i64 = query("SELECT COUNT(*) FROM receivers WHERE account_id = $1")
                    .bind(account)
                    .scalar(&mut conn)
                    .await?;
                if n >= max_per_account {
                    return Ok(Err(false));
                }
                let id: i64 = query(
                    "INSERT INTO receivers (account_id, name, description, status, created_ms) \
                     VALUES ($1, $2, $3, $4, $5) RETURNING id",
                )
                .bind(account)
                .bind(name)
                .bind(description)
                .bind(ReceiverStatus::Pending.code())
                .bind(now_ms)
                .scalar(&mut conn)
                .await?;
                tx.commit().await?;
                Ok(Ok(ReceiverRow {
                    id,
                    account_id: account,
                    name: name.to_string(),
                    description: description.to_string(),
                    status: ReceiverStatus::Pending,
                    valid_count: 0,
                    invalid_count: 0,
                    created_ms: now_ms,
                }))
            })
            .await
    }

    /// One list of the account.
    pub async fn receiver(self, account: AccountId, id: i64) -> Result<Option<ReceiverRow>, StoreError> {
        query(AssertSqlSafe(format!(
            "SELECT {RECEIVER_COLUMNS} FROM receivers WHERE account_id = $1 AND id = $2"
        )))
        .bind(account)
        .bind(id)
        .fetch_optional(self.store.guarded_reader())
        .await
    }

    /// Sets a list's `ReceiversStatus` (the CSV import marks it uploading, then done); false if there is none.
    pub async fn set_receiver_status(
        self,
        account: AccountId,
        id: i64,
        status: ReceiverStatus,
    ) -> Result<bool, StoreError> {
        query("UPDATE receivers SET status = $1 WHERE account_id = $2 AND id = $3")
            .bind(status.code())
            .bind(account)
            .bind(id)
            .execute_changed(self.store.guarded_writer())
            .await
    }

    /// The account's lists, newest first, with the total matching the filter.
    pub async fn list_receivers(
        self,
        account: AccountId,
        status: Option<i32>,
        keyword: Option<&str>,
        offset: i64,
        limit: i64,
    ) -> Result<(i64, Vec<ReceiverRow>), StoreError> {
        let pattern = keyword.map(|k| format!("%{}%", escape_like(k)));
        let (rows, total) = self
            .store
            .guarded(page(
                self.store.reader(),
                RECEIVER_COLUMNS,
                "FROM receivers WHERE account_id = $1 AND ($2 IS NULL OR status = $2) \
                 AND ($3 IS NULL OR name LIKE $3 ESCAPE '\\')",
                &[account.into(), status.into(), pattern.as_deref().into()],
                "ORDER BY id DESC",
                limit,
                offset,
            ))
            .await?;
        Ok((total, rows))
    }

    /// Adds addresses to a list in one transaction (all or nothing); repeats are counted, not inserted.
    /// A list left uploading (an import running) stays so; otherwise it becomes done.
    pub async fn add_receiver_details(
        self,
        account: AccountId,
        receiver_id: i64,
        details: &[NewReceiverDetail],
        max_per_list: i64,
        now_ms: i64,
    ) -> Result<Result<AddDetailsOutcome, AddDetailsRefusal>, StoreError> {
        self.store
            .guarded(async {
                let mut tx = self.store.writer().begin_write().await?;
                let mut conn = tx.conn();
                let counts = lock_receiver(&mut conn, account, receiver_id).await?;
                let Some((valid_now, invalid_now)) = counts else {
                    return Ok(Err(AddDetailsRefusal::NotFound));
                };
                let size = valid_now + invalid_now;
                // Refuse before inserting anything: the whole request or nothing. Repeats cannot be known without
                // inserting, so the check counts every submitted address.
                if size + details.len() as i64 > max_per_list {
                    return Ok(Err(AddDetailsRefusal::TooMany(size)));
                }
                let mut out = AddDetailsOutcome::default();
                for chunk in details.chunks(500) {
                    let mut qb = builder(
                        "INSERT INTO receiver_details \
                         (receiver_id, account_id, email, template_data, status, reason, created_ms) ",
                    );
                    qb.push_values(chunk, |b, d| {
                        b.push_bind(receiver_id)
                            .push_bind(account)
                            .push_bind(&d.email)
                            .push_bind(d.template_data.as_deref())
                            .push_bind(if d.invalid_reason.is_some() { 2i32 } else { 1i32 })
                            .push_bind(d.invalid_reason.as_deref().unwrap_or_default())
                            .push_bind(now_ms);
                    });
                    qb.push(" ON CONFLICT (receiver_id, email) DO NOTHING RETURNING status");
                    let rows: Vec<i32> = qb.build().scalars(&mut conn).await?;
                    for st in &rows {
                        if *st == 1 {
                            out.valid += 1;
                        } else {
                            out.invalid += 1;
                        }
                    }
                    out.repeated += chunk.len() as i64 - rows.len() as i64;
                }
                query(
                    "UPDATE receivers SET valid_count = valid_count + $1, invalid_count = invalid_count + $2, \
                     status = CASE WHEN status = $3 THEN $3 ELSE $4 END WHERE id = $5",
                )
                .bind(out.valid)
                .bind(out.invalid)
                .bind(ReceiverStatus::Uploading.code())
                .bind(ReceiverStatus::Done.code())
                .bind(receiver_id)
                .execute(&mut conn)
                .await?;
                tx.commit().await?;
                Ok(Ok(out))
            })
            .await
    }

    /// A page of a list's addresses.
    pub async fn list_receiver_details(self, q: &DetailQuery) -> Result<DetailPage, StoreError> {
        self.store
            .guarded(async {
                let reader = self.store.reader();
                let pattern = q.email_contains.as_deref().map(|k| format!("%{}%", escape_like(k)));
                let filter = "account_id = $1 AND receiver_id = $2 AND ($3 IS NULL OR email LIKE $3 ESCAPE '\\') \
                     AND ($4 IS NULL OR created_ms >= $4) AND ($5 IS NULL OR created_ms < $5) \
                     AND ($6 IS NULL OR status = $6)";
                let (total, valid): (i64, i64) = query(AssertSqlSafe(format!(
                    "SELECT COUNT(*) AS total, COALESCE(SUM(CASE WHEN status = 1 THEN 1 ELSE 0 END), 0) AS valid \
                     FROM receiver_details WHERE {filter}"
                )))
                .bind(q.account_id)
                .bind(q.receiver_id)
                .bind(pattern.as_deref())
                .bind(q.from_ms)
                .bind(q.to_ms)
                .bind(q.status)
                .fetch_one(reader)
                .await?;
                let rows = query(AssertSqlSafe(format!(
                    "SELECT id, email, template_data, status, reason, created_ms FROM receiver_details \
                     WHERE {filter} ORDER BY id LIMIT $7 OFFSET $8"
                )))
                .bind(q.account_id)
                .bind(q.receiver_id)
                .bind(pattern.as_deref())
                .bind(q.from_ms)
                .bind(q.to_ms)
                .bind(q.status)
                .bind(q.limit)
                .bind(q.offset)
                .fetch_all(reader)
                .await?;
                Ok(DetailPage {
                    total,
                    valid,
                    invalid: total - valid,
                    rows,
                })
            })
            .await
    }

    /// Deletes a list and its addresses. `Ok(Err(false))`: no such list; `Ok(Err(true))`: a task that is not
    /// finished uses it.
    pub async fn delete_receiver(self, account: AccountId, id: i64) -> Result<Result<(), bool>, StoreError> {
        self.store
            .guarded(async {
                let mut tx = self.store.writer().begin_write().await?;
                let mut conn = tx.conn();
                let counts = lock_receiver(&mut conn, account, id).await?;
                if counts.is_none() {
                    return Ok(Err(false));
                }
                let busy: i64 = query(
                    "SELECT COUNT(*) FROM send_tasks WHERE account_id = $1 AND receiver_id = $2 \
                     AND status IN (1, 5, 6, 8)",
                )
                .bind(account)
                .bind(id)
                .scalar(&mut conn)
                .await?;
                if busy > 0 {
                    return Ok(Err(true));
                }
                query("DELETE FROM receiver_details WHERE receiver_id = $1")
                    .bind(id)
                    .execute(&mut conn)
                    .await?;
                query("DELETE FROM receivers WHERE id = $1")
                    .bind(id)
                    .execute(&mut conn)
                    .await?;
                tx.commit().await?;
                Ok(Ok(()))
            })
            .await
    }

    /// Creates a task in `status`; `None` if the account has no such list.
    pub async fn create_send_task(self, t: &NewSendTask, status: TaskStatus) -> Result<Option<i64>, StoreError> {
        self.store
            .guarded(async {
                let mut tx = self.store.writer().begin_write().await?;
                let mut conn = tx.conn();
                // The list is locked so a concurrent DeleteReceiver cannot slip in between the check and the insert.
                if lock_receiver(&mut conn, t.account_id, t.receiver_id).await?.is_none() {
                    return Ok(None);
                }
                let id: i64 = query(
                    "INSERT INTO send_tasks (account_id, receiver_id, from_address, subject, reply_to, task_type, \
                     template_id, template_data, unsubscribe, ad_location, begin_ms, interval_hours, term_cycle, \
                     status, next_run_ms, created_ms, updated_ms) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $16) RETURNING id",
                )
                .bind(t.account_id)
                .bind(t.receiver_id)
                .bind(&t.from_address)
                .bind(&t.subject)
                .bind(t.reply_to.as_deref())
                .bind(t.task_type)
                .bind(t.template_id)
                .bind(&t.template_data)
                .bind(&t.unsubscribe)
                .bind(t.ad_location)
                .bind(t.begin_ms)
                .bind(t.interval_hours)
                .bind(t.term_cycle)
                .bind(status.code())
                .bind(t.begin_ms)
                .bind(t.created_ms)
                .scalar(&mut conn)
                .await?;
                tx.commit().await?;
                Ok(Some(id))
            })
            .await
    }

    /// The account's tasks, newest first, with the total matching the filter.
    pub async fn list_send_tasks(self, q: &TaskQuery) -> Result<(i64, Vec<SendTaskRow>), StoreError> {
        let (rows, total) = self
            .store
            .guarded(page(
                self.store.reader(),
                TASK_COLUMNS,
                "FROM send_tasks t LEFT JOIN receivers r ON r.id = t.receiver_id \
                 WHERE t.account_id = $1 AND ($2 IS NULL OR t.status = $2) AND ($3 IS NULL OR t.task_type = $3) \
                 AND ($4 IS NULL OR t.receiver_id = $4)",
                &[
                    q.account_id.into(),
                    q.status.into(),
                    q.task_type.into(),
                    q.receiver_id.into(),
                ],
                "ORDER BY t.id DESC",
                q.limit,
                q.offset,
            ))
            .await?;
        Ok((total, rows))
    }

    /// System lookup (the runner): one task by id.
    pub async fn send_task(self, id: i64) -> Result<Option<SendTaskRow>, StoreError> {
        query(AssertSqlSafe(format!(
            "SELECT {TASK_COLUMNS} FROM send_tasks t LEFT JOIN receivers r ON r.id = t.receiver_id WHERE t.id = $1"
        )))
        .bind(id)
        .fetch_optional(self.store.guarded_writer())
        .await
    }

    /// System lookup (the runner): tasks to start, sending, or paused, due by `now_ms` and not leased by
    /// another runner than `owner`.
    pub async fn runnable_tasks(self, now_ms: i64, owner: &str, limit: i64) -> Result<Vec<SendTaskRow>, StoreError> {
        query(AssertSqlSafe(format!(
            "SELECT {TASK_COLUMNS} FROM send_tasks t LEFT JOIN receivers r ON r.id = t.receiver_id \
             WHERE t.status IN (1, 5, 6) AND t.next_run_ms <= $1 \
             AND (t.lease_until_ms <= $1 OR t.lease_owner = $2) ORDER BY t.id LIMIT $3"
        )))
        .bind(now_ms)
        .bind(owner)
        .bind(limit)
        .fetch_all(self.store.guarded_writer())
        .await
    }

    /// Leases a task to one runner until `until_ms` (renewable by the same owner); false if another holds it.
    pub async fn lease_task(self, id: i64, owner: &str, now_ms: i64, until_ms: i64) -> Result<bool, StoreError> {
        query(
            "UPDATE send_tasks SET lease_owner = $1, lease_until_ms = $2 \
             WHERE id = $3 AND (lease_until_ms <= $4 OR lease_owner = $1)",
        )
        .bind(owner)
        .bind(until_ms)
        .bind(id)
        .bind(now_ms)
        .execute_changed(self.store.guarded_writer())
        .await
    }

    /// Gives a task's lease up.
    pub async fn release_task(self, id: i64, owner: &str) -> Result<(), StoreError> {
        query("UPDATE send_tasks SET lease_owner = NULL, lease_until_ms = 0 WHERE id = $1 AND lease_owner = $2")
            .bind(id)
            .bind(owner)
            .execute(self.store.guarded_writer())
            .await?;
        Ok(())
    }

    /// Drops every task lease: for the embedded database, whose single runner calls it at start-up (leases
    /// left by a killed predecessor are its own).
    pub async fn release_task_leases(self) -> Result<u64, StoreError> {
        query("UPDATE send_tasks SET lease_owner = NULL, lease_until_ms = 0 WHERE lease_owner IS NOT NULL")
            .execute(self.store.guarded_writer())
            .await
    }

    /// Up to `limit` valid addresses of a list after detail id `after_id`, in id order.
    pub async fn receiver_walk(
        self,
        receiver_id: i64,
        after_id: i64,
        limit: i64,
    ) -> Result<Vec<ReceiverDetailRow>, StoreError> {
        query(
            "SELECT id, email, template_data, status, reason, created_ms FROM receiver_details \
             WHERE receiver_id = $1 AND status = 1 AND id > $2 ORDER BY id LIMIT $3",
        )
        .bind(receiver_id)
        .bind(after_id)
        .bind(limit)
        .fetch_all(self.store.guarded_writer())
        .await
    }

    /// Valid addresses of a list after detail id `after_id`.
    pub async fn count_receiver_after(self, receiver_id: i64, after_id: i64) -> Result<i64, StoreError> {
        query("SELECT COUNT(*) FROM receiver_details WHERE receiver_id = $1 AND status = 1 AND id > $2")
            .bind(receiver_id)
            .bind(after_id)
            .scalar(self.store.guarded_writer())
            .await
    }

    /// Enqueues a chunk's messages and advances the task's cursor and counters in one transaction, if the
    /// cursor is still `expected_cursor` and the chunk fits the account's [`TaskChunk::daily_limit`]; nothing is
    /// written otherwise.
    ///
    /// The chunk's admitted recipients are added to the account's daily counter (`account_limits`, the one
    /// admission checks) in the same transaction, by an update conditional on the limit: runners and API
    /// processes sharing the database serialize on that row, so no interleaving takes the account past it.
    pub async fn feed_task_chunk(self, c: &TaskChunk) -> Result<ChunkFeed, StoreError> {
        self.store
            .guarded(async {
                let mut tx = self.store.writer().begin_write().await?;
                let mut conn = tx.conn();
                let moved = query(
                    "UPDATE send_tasks SET cursor = $1, send_count = send_count + $2, skip_count = skip_count + $3, \
                     updated_ms = $4 WHERE id = $5 AND cursor = $6 AND status IN (1, 5, 6)",
                )
                .bind(c.new_cursor)
                .bind(c.sent)
                .bind(c.skipped)
                .bind(c.now_ms)
                .bind(c.task_id)
                .bind(c.expected_cursor)
                .execute_changed(&mut conn)
                .await?;
                if !moved {
                    // Another runner moved the cursor: its chunk stands, ours is dropped.
                    return Ok(ChunkFeed::CursorMoved);
                }
                if !count_towards_daily_limit(&mut conn, c).await? {
                    return Ok(ChunkFeed::OverDailyLimit);
                }
                if !c.messages.is_empty() {
                    conn.insert_messages(&c.messages, self.store.inner.opts.retain_bodies)
                        .await?;
                }
                tx.commit().await?;
                Ok(ChunkFeed::Fed)
            })
            .await
    }

    /// Changes a task's status, cursor and counters, if its cursor is still `expected_cursor`.
    pub async fn update_task_run(self, u: &TaskRunUpdate) -> Result<bool, StoreError> {
        query(
            "UPDATE send_tasks SET status = $1, cursor = $2, request_count = request_count + $3, \
             cache_count = $4, err_msg = $5, runs = runs + $6, next_run_ms = $7, updated_ms = $8 \
             WHERE id = $9 AND cursor = $10 AND status IN (1, 5, 6)",
        )
        .bind(u.status.code())
        .bind(u.cursor)
        .bind(u.add_requests)
        .bind(u.cache_count)
        .bind(&u.err_msg)
        .bind(u.add_runs)
        .bind(u.next_run_ms)
        .bind(u.now_ms)
        .bind(u.task_id)
        .bind(u.expected_cursor)
        .execute_changed(self.store.guarded_writer())
        .await
    }

    /// Deliveries (recipients) the account requested in `[from_ms, to_ms)`, whatever their path.
    pub async fn count_requests(self, account: AccountId, from_ms: i64, to_ms: i64) -> Result<i64, StoreError> {
        query("SELECT COUNT(*) FROM deliveries WHERE account_id = $1 AND request_ms >= $2 AND request_ms < $3")
            .bind(account)
            .bind(from_ms)
            .bind(to_ms)
            .scalar(self.store.guarded_reader())
            .await
    }

    /// The account's deliveries not yet final (queued, deferred or leased).
    pub async fn open_deliveries(self, account: AccountId) -> Result<i64, StoreError> {
        query("SELECT COUNT(*) FROM deliveries WHERE state < 2 AND account_id = $1")
            .bind(account)
            .scalar(self.store.guarded_reader())
            .await
    }
}

/// Adds a chunk's admitted recipients to each account's daily counter, unless that takes one past the chunk's
/// limit; `false` (counters unchanged) then. Like admission, a counter of an earlier day starts again from zero
/// and one of a later day (another process's clock ahead) is never moved back.
async fn count_towards_daily_limit(conn: &mut Conn<'_>, c: &TaskChunk) -> Result<bool, StoreError> {
    let mut per_account: Vec<(AccountId, i64)> = Vec::new();
    for m in &c.messages {
        let admitted = m.recipients.iter().filter(|r| r.send_status.is_ok()).count();
        let admitted = i64::try_from(admitted).unwrap_or(i64::MAX);
        match per_account.iter_mut().find(|(a, _)| *a == m.account_id) {
            Some((_, n)) => *n += admitted,
            None => per_account.push((m.account_id, admitted)),
        }
    }
    let day = mailpush_model::clock::day_start(c.now_ms);
    let limit = c.daily_limit.unwrap_or(i64::MAX);
    for (account, admitted) in per_account.into_iter().filter(|(_, n)| *n > 0) {
        query("INSERT INTO account_limits (account_id) VALUES ($1) ON CONFLICT (account_id) DO NOTHING")
            .bind(account)
            .execute(&mut *conn)
            .await?;
        let counted = query(
            "UPDATE account_limits SET \
             day_count = (CASE WHEN day_ms >= $1 THEN day_count ELSE 0 END) + $2, \
             day_ms = CASE WHEN day_ms > $1 THEN day_ms ELSE $1 END \
             WHERE account_id = $3 AND (CASE WHEN day_ms >= $1 THEN day_count ELSE 0 END) + $2 <= $4",
        )
        .bind(day)
        .bind(admitted)
        .bind(account)
        .bind(limit)
        .execute_changed(&mut *conn)
        .await?;
        if !counted {
            return Ok(false);
        }
    }
    Ok(true)
}
