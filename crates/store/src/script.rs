//! SQLite statements sent to the connection's thread as scripts: several statements, separated by `;`, in one
//! hand-off and back.
//!
//! sqlx runs every statement as a round trip between the calling task and the connection's own thread (a
//! channel send, a wake-up of that thread, a wake-up of the task for the result). A group commit or an outcome
//! batch was a dozen such round trips, and on the single writer every enqueue waits for them. A script runs its
//! statements back to back on the connection's thread (sqlx binds the arguments of each statement from where the
//! previous one stopped), so a whole transaction takes one or two hand-offs: one for the reads whose results
//! decide the writes, one for the writes and the COMMIT.
//!
//! Scripts use `?` placeholders only (`push_bind`): sqlx binds `$N` by its absolute number in the script's
//! arguments, which would not be the statement's own `$N`.

use std::future::poll_fn;

use sqlx::pool::PoolConnection;
use sqlx::sqlite::{SqliteConnection, SqliteRow};
use sqlx::{Either, Executor, QueryBuilder, Sqlite, SqlitePool};

use crate::StoreError;

/// Statements to send in one hand-off.
pub(crate) struct Script {
    sql: QueryBuilder<Sqlite>,
    statements: usize,
}

/// A statement's place in its script: which rows of [`ScriptRows`] are its.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stmt(usize);

/// The rows each statement of a script returned, by [`Stmt`].
pub(crate) struct ScriptRows(Vec<Vec<SqliteRow>>);

impl ScriptRows {
    /// The rows of `stmt` (each statement's rows can be taken once; later takes are empty).
    pub(crate) fn take(&mut self, stmt: Stmt) -> Vec<SqliteRow> {
        self.0.get_mut(stmt.0).map(std::mem::take).unwrap_or_default()
    }
}

impl Default for Script {
    fn default() -> Self {
        Script {
            sql: QueryBuilder::new(""),
            statements: 0,
        }
    }
}

impl Script {
    /// Starts the script's next statement with `sql`; the rest of it (binds, more text) goes on [`Script::sql`].
    pub(crate) fn push(&mut self, sql: &str) -> Stmt {
        if self.statements > 0 {
            self.sql.push("; ");
        }
        self.sql.push(sql);
        self.statements += 1;
        Stmt(self.statements - 1)
    }

    /// The statement `push` started, to continue.
    pub(crate) fn sql(&mut self) -> &mut QueryBuilder<Sqlite> {
        &mut self.sql
    }

    /// Runs the statements in order, in one hand-off; stops at the first that fails.
    pub(crate) async fn run(mut self, conn: &mut SqliteConnection) -> Result<ScriptRows, StoreError> {
        let mut rows: Vec<Vec<SqliteRow>> = Vec::with_capacity(self.statements + 1);
        if self.statements == 0 {
            return Ok(ScriptRows(rows));
        }
        rows.push(Vec::new());
        // Prepared once per text and kept: sqlx caches a script whole, so each shape of batch is a statement of
        // its own in the writer's cache, which is sized for them (`sqlite::WRITER_STATEMENT_CACHE`).
        let mut stream = Executor::fetch_many(&mut *conn, self.sql.build().persistent(true));
        while let Some(item) = poll_fn(|cx| stream.as_mut().poll_next(cx)).await {
            match item? {
                // Every statement ends with its result, after its rows.
                Either::Left(_) => rows.push(Vec::new()),
                Either::Right(row) => {
                    if let Some(current) = rows.last_mut() {
                        current.push(row);
                    }
                }
            }
        }
        rows.pop();
        if rows.len() != self.statements {
            return Err(StoreError::Invalid(format!(
                "a script of {} statements ran {}",
                self.statements,
                rows.len()
            )));
        }
        Ok(ScriptRows(rows))
    }
}

/// How a [`WriteTx`] commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Durability {
    /// `synchronous = FULL`: fsynced before COMMIT returns (an enqueue is acknowledged after it).
    Full,
    /// `synchronous = NORMAL` for this transaction only, for what a power failure may lose harmlessly (claims,
    /// outcomes; see `sqlite::RelaxedWriter`). The next FULL commit fsyncs its WAL frames too.
    Relaxed,
}

/// One write transaction on the writer connection, sent as scripts: the first opens it (`BEGIN IMMEDIATE`),
/// [`WriteTx::commit`] sends what is pending with the `COMMIT`.
///
/// sqlx knows nothing of a transaction opened by a script, so this type closes it: a failed script is rolled
/// back here, and a `WriteTx` dropped with its transaction open (its future cancelled) closes the connection,
/// which rolls it back, rather than return it to the pool inside a transaction (or relaxed).
pub(crate) struct WriteTx {
    conn: PoolConnection<Sqlite>,
    relaxed: bool,
    /// The connection is in a state sqlx does not know of (a transaction, or relaxed).
    open: bool,
    /// An in-memory database is lost with its one connection: never closed, only rolled back.
    memory: bool,
    pending: Script,
}

impl WriteTx {
    /// Takes the writer connection; nothing is sent until the first [`WriteTx::flush`] or [`WriteTx::commit`].
    pub(crate) async fn begin(pool: &SqlitePool, durability: Durability) -> Result<WriteTx, StoreError> {
        // `sqlite::memory:` is the only in-memory form `open` documents (and what its tests use).
        let memory = pool.connect_options().get_filename() == std::path::Path::new(":memory:");
        let conn = pool.acquire().await?;
        let relaxed = durability == Durability::Relaxed && !memory;
        let mut tx = WriteTx {
            conn,
            relaxed,
            open: false,
            memory,
            pending: Script::default(),
        };
        if relaxed {
            tx.pending.push("PRAGMA synchronous = NORMAL");
        }
        // IMMEDIATE takes the write lock at once, so a transaction never has to upgrade from reader to writer,
        // which in WAL mode can fail with SQLITE_BUSY_SNAPSHOT whatever the busy_timeout (another process may
        // share the file).
        tx.pending.push("BEGIN IMMEDIATE");
        Ok(tx)
    }

    /// Starts the next pending statement (see [`Script::push`]).
    pub(crate) fn push(&mut self, sql: &str) -> Stmt {
        self.pending.push(sql)
    }

    /// The pending statement, to continue.
    pub(crate) fn sql(&mut self) -> &mut QueryBuilder<Sqlite> {
        self.pending.sql()
    }

    /// The pending script, for helpers that push onto any script.
    pub(crate) fn script(&mut self) -> &mut Script {
        &mut self.pending
    }

    /// Sends the pending statements (the transaction stays open) and returns their rows.
    pub(crate) async fn flush(&mut self) -> Result<ScriptRows, StoreError> {
        let script = std::mem::take(&mut self.pending);
        self.open = true;
        match script.run(&mut self.conn).await {
            Ok(rows) => Ok(rows),
            Err(e) => {
                self.roll_back().await;
                Err(e)
            }
        }
    }

    /// Sends the pending statements with the COMMIT; their rows once committed.
    pub(crate) async fn commit(mut self) -> Result<ScriptRows, StoreError> {
        self.pending.push("COMMIT");
        if self.relaxed {
            self.pending.push("PRAGMA synchronous = FULL");
        }
        let rows = self.flush().await?;
        self.open = false;
        Ok(rows)
    }

    /// After a failed script: ends the transaction and restores FULL; the connection is closed at drop if that
    /// fails too.
    async fn roll_back(&mut self) {
        // "no transaction is active" when the failure was the BEGIN or the COMMIT's own: nothing to undo.
        let ended = match sqlx::raw_sql("ROLLBACK").execute(&mut *self.conn).await {
            Ok(_) => true,
            Err(e) => e.to_string().contains("no transaction is active"),
        };
        let restored = !self.relaxed
            || sqlx::raw_sql("PRAGMA synchronous = FULL")
                .execute(&mut *self.conn)
                .await
                .is_ok();
        self.open = !(ended && restored);
    }
}

impl Drop for WriteTx {
    fn drop(&mut self) {
        if self.open && !self.memory {
            self.conn.close_on_drop();
        }
    }
}

#[cfg(test)]
mod tests {
    use sqlx::Row;
    use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

    use super::*;

    /// A file database with the writer's settings and one table.
    async fn writer(dir: &tempfile::TempDir) -> SqlitePool {
        let opts = SqliteConnectOptions::new()
            .filename(dir.path().join("t.db"))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(opts)
            .await
            .expect("open");
        sqlx::raw_sql("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)")
            .execute(&pool)
            .await
            .expect("create");
        pool
    }

    async fn values(pool: &SqlitePool) -> Vec<String> {
        sqlx::query("SELECT v FROM t ORDER BY id")
            .fetch_all(pool)
            .await
            .expect("select")
            .iter()
            .map(|r| r.get("v"))
            .collect()
    }

    async fn synchronous(pool: &SqlitePool) -> i64 {
        sqlx::query("PRAGMA synchronous")
            .fetch_one(pool)
            .await
            .expect("pragma")
            .get(0)
    }

    fn insert(tx: &mut WriteTx, id: i64, v: &str) {
        tx.push("INSERT INTO t (id, v) VALUES (");
        tx.sql().push_bind(id).push(", ").push_bind(v.to_string()).push(")");
    }

    #[tokio::test]
    async fn each_statement_gets_its_own_rows_and_binds() {
        let dir = tempfile::tempdir().expect("dir");
        let pool = writer(&dir).await;
        let mut tx = WriteTx::begin(&pool, Durability::Relaxed).await.expect("begin");
        insert(&mut tx, 1, "a");
        insert(&mut tx, 2, "b");
        let first = tx.push("SELECT v FROM t WHERE id = ");
        tx.sql().push_bind(2_i64);
        let none = tx.push("SELECT v FROM t WHERE id = ");
        tx.sql().push_bind(9_i64);
        let both = tx.push("SELECT v FROM t WHERE id IN (");
        tx.sql()
            .push_bind(1_i64)
            .push(", ")
            .push_bind(2_i64)
            .push(") ORDER BY id");
        let mut rows = tx.flush().await.expect("flush");
        let v = |rows: Vec<SqliteRow>| rows.iter().map(|r| r.get::<String, _>("v")).collect::<Vec<_>>();
        assert_eq!(v(rows.take(first)), ["b"]);
        assert!(rows.take(none).is_empty());
        assert_eq!(v(rows.take(both)), ["a", "b"]);
        insert(&mut tx, 3, "c");
        tx.commit().await.expect("commit");
        assert_eq!(values(&pool).await, ["a", "b", "c"]);
        assert_eq!(synchronous(&pool).await, 2, "FULL again after a relaxed transaction");
    }

    #[tokio::test]
    async fn a_failed_script_is_rolled_back_and_the_writer_still_works() {
        let dir = tempfile::tempdir().expect("dir");
        let pool = writer(&dir).await;
        let mut tx = WriteTx::begin(&pool, Durability::Relaxed).await.expect("begin");
        insert(&mut tx, 1, "a");
        tx.flush().await.expect("first script");
        insert(&mut tx, 2, "b");
        insert(&mut tx, 1, "duplicate");
        assert!(matches!(tx.commit().await, Err(StoreError::Conflict(_))));
        assert!(values(&pool).await.is_empty(), "the whole transaction is undone");
        assert_eq!(synchronous(&pool).await, 2);

        let mut tx = WriteTx::begin(&pool, Durability::Full).await.expect("begin again");
        insert(&mut tx, 1, "a");
        tx.commit().await.expect("commit");
        assert_eq!(values(&pool).await, ["a"]);
    }

    #[tokio::test]
    async fn a_transaction_dropped_midway_leaves_nothing_behind() {
        let dir = tempfile::tempdir().expect("dir");
        let pool = writer(&dir).await;
        let mut tx = WriteTx::begin(&pool, Durability::Relaxed).await.expect("begin");
        insert(&mut tx, 1, "a");
        tx.flush().await.expect("flush");
        drop(tx); // as a cancelled future would: the connection is closed, its transaction rolled back

        let mut tx = WriteTx::begin(&pool, Durability::Full)
            .await
            .expect("a new writer connection");
        insert(&mut tx, 2, "b");
        tx.commit().await.expect("commit");
        assert_eq!(values(&pool).await, ["b"]);
        assert_eq!(synchronous(&pool).await, 2);
    }
}
