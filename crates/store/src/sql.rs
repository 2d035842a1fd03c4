//! SQL written once for both backends, without generic bounds and without macros.
//!
//! A statement is a [`Query`]: its text (`$N` placeholders, PostgreSQL's syntax, which SQLite also accepts)
//! and its values as [`Arg`]s, which keep the Rust type they were bound with, so each backend binds exactly
//! what `sqlx::query(..).bind(..)` would have bound. The query runs on an [`Ex`]: a pool ([`Pool`], from
//! `Db::reader`/`Db::writer`), a connection ([`Conn`], e.g. of a [`Tx`]), or a pool on which the statement is a
//! store operation of its own ([`Guarded`], from `Store::guarded_reader`/`guarded_writer`: under the deadline,
//! as `Store::guarded` runs an operation of several statements); the one `match` on the backend is in this
//! file. Rows map through `#[derive(sqlx::FromRow)]` ([`Record`]) and single values through [`Scalar`]; both
//! are implemented for every type that decodes on both backends.
//!
//! What really differs between the backends sits behind [`Dialect`], implemented once in `sqlite.rs` and once
//! in `pg.rs`. No module here imports from a backend file.

use std::future::Future;

use sqlx::postgres::{PgArguments, PgRow};
use sqlx::sqlite::{SqliteArguments, SqliteRow};
use sqlx::{AssertSqlSafe, SqlSafeStr, SqlStr, Type};
use sqlx::{Decode, Executor, FromRow, PgConnection, PgPool, Postgres, Sqlite, SqliteConnection, SqlitePool};

use crate::{Store, StoreError};

/// What differs between the backends: one implementation in `sqlite.rs`, one in `pg.rs`.
pub(crate) trait Dialect: sqlx::Database {
    /// Opens a write transaction. SQLite: `BEGIN IMMEDIATE` takes the write lock at once, so a transaction that
    /// reads before it writes cannot fail to upgrade, and it serialises such transactions across processes too.
    const BEGIN_WRITE: &'static str;
    /// Appended to a `SELECT` to lock its rows until the transaction ends: PostgreSQL `FOR UPDATE`; nothing on
    /// SQLite, where the write transaction already excludes every other writer.
    const LOCK_ROWS: &'static str;

    /// Leases up to `want` due deliveries of `lane` to `r.worker` until `lease_until`, in due order (one step of
    /// [`crate::Queue::claim`]; the claim hot path, tuned per backend).
    async fn claim_lane(
        pool: &sqlx::Pool<Self>,
        lane: mailpush_model::Lane,
        r: &crate::ClaimRequest,
        lease_until: i64,
        want: i64,
    ) -> Result<Vec<crate::ClaimedDelivery>, StoreError>;

    /// Records attempt outcomes in one transaction (see [`crate::Queue::record_outcomes`]); per outcome,
    /// whether its lease was still current and it was applied.
    async fn record_outcomes(
        pool: &sqlx::Pool<Self>,
        outcomes: &[crate::DeliveryOutcome],
        retain_bodies: bool,
    ) -> Result<Vec<bool>, StoreError>;

    /// Leases up to `want` due deliveries of `lane` within their sending domains' warm-up allowances and holds
    /// the ones over it, in one transaction (see `warmup.rs`).
    async fn claim_lane_with_warmup(
        pool: &sqlx::Pool<Self>,
        lane: mailpush_model::Lane,
        r: &crate::ClaimRequest,
        lease_until: i64,
        want: i64,
        ramp: &crate::WarmupRamp,
    ) -> Result<Vec<crate::ClaimedDelivery>, StoreError>;

    /// Inserts messages with their deliveries (queued, not leased), events and statistics, inside the
    /// transaction of `conn` (the enqueue path's statements; used by batch tasks).
    async fn insert_messages(
        conn: &mut Self::Connection,
        msgs: &[crate::NewMessage],
        retain_bodies: bool,
    ) -> Result<(), StoreError>;
}

/// A value bound to a statement, with the Rust type it was bound as (`None` binds a typed NULL).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Arg<'a> {
    I64(Option<i64>),
    I32(Option<i32>),
    Bool(Option<bool>),
    F64(Option<f64>),
    Str(Option<&'a str>),
    Bytes(Option<&'a [u8]>),
}

/// A value type that binds as one [`Arg`] (and, as `Option`, as a typed NULL).
pub(crate) trait Bind: Copy {
    fn arg<'a>(v: Option<Self>) -> Arg<'a>;
}

impl Bind for i64 {
    fn arg<'a>(v: Option<Self>) -> Arg<'a> {
        Arg::I64(v)
    }
}
impl Bind for i32 {
    fn arg<'a>(v: Option<Self>) -> Arg<'a> {
        Arg::I32(v)
    }
}
impl Bind for bool {
    fn arg<'a>(v: Option<Self>) -> Arg<'a> {
        Arg::Bool(v)
    }
}
impl Bind for f64 {
    fn arg<'a>(v: Option<Self>) -> Arg<'a> {
        Arg::F64(v)
    }
}

/// A status stored as its `i32` value (a `#[repr(i32)]` enum): it binds as that value.
pub(crate) trait StoredCode: Copy {
    fn stored(self) -> i32;
}

impl<T: StoredCode> Bind for T {
    fn arg<'a>(v: Option<Self>) -> Arg<'a> {
        Arg::I32(v.map(T::stored))
    }
}

impl StoredCode for mailpush_model::Lane {
    fn stored(self) -> i32 {
        self.code()
    }
}
impl StoredCode for mailpush_model::SendStatus {
    fn stored(self) -> i32 {
        self.code()
    }
}
impl StoredCode for mailpush_model::TlsRequirement {
    fn stored(self) -> i32 {
        self.code()
    }
}

impl<T: Bind> From<T> for Arg<'_> {
    fn from(v: T) -> Self {
        T::arg(Some(v))
    }
}
impl<T: Bind> From<Option<T>> for Arg<'_> {
    fn from(v: Option<T>) -> Self {
        T::arg(v)
    }
}
impl<'a> From<&'a str> for Arg<'a> {
    fn from(v: &'a str) -> Self {
        Arg::Str(Some(v))
    }
}
impl<'a> From<&'a String> for Arg<'a> {
    fn from(v: &'a String) -> Self {
        Arg::Str(Some(v))
    }
}
impl<'a> From<Option<&'a str>> for Arg<'a> {
    fn from(v: Option<&'a str>) -> Self {
        Arg::Str(v)
    }
}
impl<'a> From<&'a [u8]> for Arg<'a> {
    fn from(v: &'a [u8]) -> Self {
        Arg::Bytes(Some(v))
    }
}
impl<'a> From<&'a Vec<u8>> for Arg<'a> {
    fn from(v: &'a Vec<u8>) -> Self {
        Arg::Bytes(Some(v))
    }
}
impl<'a> From<Option<&'a [u8]>> for Arg<'a> {
    fn from(v: Option<&'a [u8]>) -> Self {
        Arg::Bytes(v)
    }
}

/// A row type both backends can build (`#[derive(sqlx::FromRow)]`, tuples).
pub(crate) trait Record: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin {}
impl<T> Record for T where T: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin {}

/// A single column value both backends can decode (`query_scalar`).
pub(crate) trait Scalar:
    for<'r> Decode<'r, Sqlite> + Type<Sqlite> + for<'r> Decode<'r, Postgres> + Type<Postgres> + Send + Unpin
{
}
impl<T> Scalar for T where
    T: for<'r> Decode<'r, Sqlite> + Type<Sqlite> + for<'r> Decode<'r, Postgres> + Type<Postgres> + Send + Unpin
{
}

/// A pool of either backend.
#[derive(Clone, Copy)]
pub(crate) enum Pool<'p> {
    Sqlite(&'p SqlitePool),
    Postgres(&'p PgPool),
}

impl Pool<'_> {
    /// Opens a transaction with the backend's plain `BEGIN` (SQLite: deferred, the write lock is taken by the
    /// first write).
    pub(crate) async fn begin(self) -> Result<Tx, StoreError> {
        Ok(match self {
            Pool::Sqlite(p) => Tx::Sqlite(p.begin().await?),
            Pool::Postgres(p) => Tx::Postgres(p.begin().await?),
        })
    }

    /// Opens a write transaction ([`Dialect::BEGIN_WRITE`]).
    pub(crate) async fn begin_write(self) -> Result<Tx, StoreError> {
        Ok(match self {
            Pool::Sqlite(p) => Tx::Sqlite(p.begin_with(<Sqlite as Dialect>::BEGIN_WRITE).await?),
            Pool::Postgres(p) => Tx::Postgres(p.begin_with(<Postgres as Dialect>::BEGIN_WRITE).await?),
        })
    }

    /// Deletes a row and, first, the rows that belong to it, in one write transaction: `children` and `parent`
    /// are `DELETE` statements over the same values `args`. [`StoreError::NotFound`] if `parent` deleted nothing.
    pub(crate) async fn delete_with_children(
        self,
        children: &'static str,
        parent: &'static str,
        args: &[Arg<'_>],
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        let mut conn = tx.conn();
        query(children).bind_all(args).execute(&mut conn).await?;
        query(parent).bind_all(args).execute_found(&mut conn).await?;
        tx.commit().await
    }
}

/// A connection of either backend.
pub(crate) enum Conn<'c> {
    Sqlite(&'c mut SqliteConnection),
    Postgres(&'c mut PgConnection),
}

impl Conn<'_> {
    /// Writes a transaction's statistics increments (see `daily_statistics`) inside this connection's transaction.
    pub(crate) async fn apply_stats(&mut self, d: &crate::daily_statistics::StatsDelta) -> Result<(), StoreError> {
        match self {
            Conn::Sqlite(c) => crate::daily_statistics::apply_sqlite(c, d).await,
            Conn::Postgres(c) => crate::daily_statistics::apply_pg(c, d).await,
        }
    }

    /// [`Dialect::insert_messages`] of this connection's backend.
    pub(crate) async fn insert_messages(
        &mut self,
        msgs: &[crate::NewMessage],
        retain_bodies: bool,
    ) -> Result<(), StoreError> {
        match self {
            Conn::Sqlite(c) => Sqlite::insert_messages(c, msgs, retain_bodies).await,
            Conn::Postgres(c) => Postgres::insert_messages(c, msgs, retain_bodies).await,
        }
    }

    /// [`Dialect::LOCK_ROWS`] of this connection's backend.
    pub(crate) fn lock_rows(&self) -> &'static str {
        match self {
            Conn::Sqlite(_) => <Sqlite as Dialect>::LOCK_ROWS,
            Conn::Postgres(_) => <Postgres as Dialect>::LOCK_ROWS,
        }
    }
}

/// A transaction of either backend; dropped without [`Tx::commit`], it rolls back.
pub(crate) enum Tx {
    Sqlite(sqlx::Transaction<'static, Sqlite>),
    Postgres(sqlx::Transaction<'static, Postgres>),
}

impl Tx {
    /// The transaction's connection, to run statements in it.
    pub(crate) fn conn(&mut self) -> Conn<'_> {
        match self {
            Tx::Sqlite(tx) => Conn::Sqlite(tx),
            Tx::Postgres(tx) => Conn::Postgres(tx),
        }
    }

    pub(crate) async fn commit(self) -> Result<(), StoreError> {
        match self {
            Tx::Sqlite(tx) => tx.commit().await?,
            Tx::Postgres(tx) => tx.commit().await?,
        }
        Ok(())
    }
}

/// Where a [`Query`] runs: a pool or a transaction's connection, and, for a statement that is a store
/// operation of its own ([`Guarded`]), the store whose deadline and health counters it runs under.
pub(crate) struct Ex<'e> {
    on: On<'e>,
    operation: Option<&'e Store>,
}

/// A pool or a connection of either backend.
enum On<'e> {
    Sqlite(&'e SqlitePool),
    Postgres(&'e PgPool),
    SqliteConn(&'e mut SqliteConnection),
    PgConn(&'e mut PgConnection),
}

impl<'e> From<Pool<'e>> for Ex<'e> {
    fn from(p: Pool<'e>) -> Self {
        let on = match p {
            Pool::Sqlite(p) => On::Sqlite(p),
            Pool::Postgres(p) => On::Postgres(p),
        };
        Ex { on, operation: None }
    }
}

impl<'e> From<&'e mut Conn<'_>> for Ex<'e> {
    fn from(c: &'e mut Conn<'_>) -> Self {
        let on = match c {
            Conn::Sqlite(c) => On::SqliteConn(c),
            Conn::Postgres(c) => On::PgConn(c),
        };
        Ex { on, operation: None }
    }
}

/// A pool on which each statement is a whole store operation: it runs under the client-side deadline and its
/// disk-full or unavailable failure is counted, as [`Store::guarded`] runs an operation of several statements.
#[derive(Clone, Copy)]
pub(crate) struct Guarded<'s> {
    store: &'s Store,
    pool: Pool<'s>,
}

impl<'e> From<Guarded<'e>> for Ex<'e> {
    fn from(g: Guarded<'e>) -> Self {
        Ex {
            operation: Some(g.store),
            ..Ex::from(g.pool)
        }
    }
}

impl Store {
    /// The readers, each statement an operation of its own ([`Guarded`]).
    pub(crate) fn guarded_reader(&self) -> Guarded<'_> {
        Guarded {
            store: self,
            pool: self.reader(),
        }
    }

    /// The writer, each statement an operation of its own ([`Guarded`]).
    pub(crate) fn guarded_writer(&self) -> Guarded<'_> {
        Guarded {
            store: self,
            pool: self.writer(),
        }
    }
}

/// Runs `fut` as the operation of `store` if there is one ([`Store::guarded`]), else as it is.
async fn as_operation<T>(
    store: Option<&Store>,
    fut: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    match store {
        Some(store) => store.guarded(fut).await,
        None => fut.await,
    }
}

/// One statement and its values: `query(SQL).bind(a).bind(b).fetch_optional::<Row>(db.reader())`.
#[must_use = "a query does nothing until it is run"]
pub(crate) struct Query<'a> {
    sql: SqlStr,
    args: Vec<Arg<'a>>,
    persistent: bool,
}

/// A statement to run on either backend.
pub(crate) fn query<'a>(sql: impl SqlSafeStr) -> Query<'a> {
    Query {
        sql: sql.into_sql_str(),
        args: Vec::new(),
        persistent: true,
    }
}

/// A statement whose text depends on its values (`IN` lists, unions of parts): sqlx's `QueryBuilder`, with
/// `$N` placeholders on both backends.
pub(crate) struct Builder<'a> {
    sql: String,
    args: Vec<Arg<'a>>,
}

/// The values of one `VALUES` tuple ([`Builder::push_values`]), separated by commas.
pub(crate) struct Values<'b, 'a> {
    builder: &'b mut Builder<'a>,
    first: bool,
}

impl<'a> Values<'_, 'a> {
    fn separate(&mut self) {
        if !self.first {
            self.builder.sql.push_str(", ");
        }
        self.first = false;
    }

    /// The next value: a placeholder for `value`.
    pub(crate) fn push_bind(&mut self, value: impl Into<Arg<'a>>) -> &mut Self {
        self.separate();
        self.builder.push_bind(value);
        self
    }

    /// The next value: SQL text.
    pub(crate) fn push(&mut self, sql: &str) -> &mut Self {
        self.separate();
        self.builder.push(sql);
        self
    }

    /// A placeholder for `value`, as part of the current value.
    pub(crate) fn push_bind_unseparated(&mut self, value: impl Into<Arg<'a>>) -> &mut Self {
        self.builder.push_bind(value);
        self
    }

    /// SQL text, as part of the current value.
    pub(crate) fn push_unseparated(&mut self, sql: &str) -> &mut Self {
        self.builder.push(sql);
        self
    }
}

/// Starts a [`Builder`] with `sql`.
pub(crate) fn builder<'a>(sql: &str) -> Builder<'a> {
    Builder {
        sql: sql.to_string(),
        args: Vec::new(),
    }
}

impl<'a> Builder<'a> {
    /// Appends SQL text.
    pub(crate) fn push(&mut self, sql: &str) -> &mut Self {
        self.sql.push_str(sql);
        self
    }

    /// Appends a placeholder for `value`.
    pub(crate) fn push_bind(&mut self, value: impl Into<Arg<'a>>) -> &mut Self {
        self.args.push(value.into());
        self.sql.push('$');
        self.sql.push_str(&self.args.len().to_string());
        self
    }

    /// Appends one placeholder per value, separated by commas (the inside of an `IN (…)`).
    pub(crate) fn push_binds<T: Into<Arg<'a>>>(&mut self, values: impl IntoIterator<Item = T>) -> &mut Self {
        for (i, v) in values.into_iter().enumerate() {
            if i > 0 {
                self.sql.push_str(", ");
            }
            self.push_bind(v);
        }
        self
    }

    /// Appends `VALUES (…), (…)`: one tuple per item, whose values `row` pushes (as `QueryBuilder::push_values`).
    pub(crate) fn push_values<T>(
        &mut self,
        items: impl IntoIterator<Item = T>,
        mut row: impl FnMut(&mut Values<'_, 'a>, T),
    ) -> &mut Self {
        self.sql.push_str("VALUES ");
        for (i, item) in items.into_iter().enumerate() {
            if i > 0 {
                self.sql.push_str(", ");
            }
            self.sql.push('(');
            row(
                &mut Values {
                    builder: self,
                    first: true,
                },
                item,
            );
            self.sql.push(')');
        }
        self
    }

    /// The statement.
    pub(crate) fn build(self) -> Query<'a> {
        Query {
            sql: AssertSqlSafe(self.sql).into_sql_str(),
            args: self.args,
            persistent: true,
        }
    }
}

impl<'a> Query<'a> {
    /// Whether the prepared statement is kept in the connection's cache (default `true`). A statement whose
    /// text changes with every call should not be, or it fills the caches with one-off statements.
    pub(crate) fn persistent(mut self, persistent: bool) -> Self {
        self.persistent = persistent;
        self
    }

    /// Binds the next placeholder.
    pub(crate) fn bind(mut self, value: impl Into<Arg<'a>>) -> Self {
        self.args.push(value.into());
        self
    }

    /// Binds the next placeholders, in order.
    pub(crate) fn bind_all(mut self, values: &[Arg<'a>]) -> Self {
        self.args.extend_from_slice(values);
        self
    }

    /// Runs the statement; when it touched no row, [`StoreError::NotFound`] (an update or delete of a row that is
    /// not there, or not the caller's).
    pub(crate) async fn execute_found<'e>(self, ex: impl Into<Ex<'e>>) -> Result<(), StoreError> {
        match self.execute(ex).await? {
            0 => Err(StoreError::NotFound),
            _ => Ok(()),
        }
    }

    /// Runs an `INSERT … ON CONFLICT DO NOTHING`; when it inserted nothing, [`StoreError::Conflict`] saying
    /// `conflict` (the row exists).
    pub(crate) async fn execute_new<'e>(self, ex: impl Into<Ex<'e>>, conflict: String) -> Result<(), StoreError> {
        match self.execute(ex).await? {
            0 => Err(StoreError::Conflict(conflict)),
            _ => Ok(()),
        }
    }

    /// Runs the statement; returns whether it changed any row.
    pub(crate) async fn execute_changed<'e>(self, ex: impl Into<Ex<'e>>) -> Result<bool, StoreError> {
        Ok(self.execute(ex).await? > 0)
    }

    /// Runs the statement; returns the number of rows it changed.
    pub(crate) async fn execute<'e>(self, ex: impl Into<Ex<'e>>) -> Result<u64, StoreError> {
        let Ex { on, operation } = ex.into();
        as_operation(operation, self.execute_unguarded(on)).await
    }

    async fn execute_unguarded(self, on: On<'_>) -> Result<u64, StoreError> {
        let Query { sql, args, persistent } = self;
        Ok(match on {
            On::Sqlite(p) => execute_on(sqlx::query_with(sql, sqlite_args(&args)?), persistent, p)
                .await?
                .rows_affected(),
            On::SqliteConn(c) => execute_on(sqlx::query_with(sql, sqlite_args(&args)?), persistent, c)
                .await?
                .rows_affected(),
            On::Postgres(p) => execute_on(sqlx::query_with(sql, pg_args(&args)?), persistent, p)
                .await?
                .rows_affected(),
            On::PgConn(c) => execute_on(sqlx::query_with(sql, pg_args(&args)?), persistent, c)
                .await?
                .rows_affected(),
        })
    }

    /// The first row, if any.
    pub(crate) async fn fetch_optional<'e, T: Record>(self, ex: impl Into<Ex<'e>>) -> Result<Option<T>, StoreError> {
        Ok(self.rows(ex, Rows::First).await?.into_iter().next())
    }

    /// The first row; no row is an error.
    pub(crate) async fn fetch_one<'e, T: Record>(self, ex: impl Into<Ex<'e>>) -> Result<T, StoreError> {
        Ok(self.fetch_optional(ex).await?.ok_or(sqlx::Error::RowNotFound)?)
    }

    /// Every row.
    pub(crate) async fn fetch_all<'e, T: Record>(self, ex: impl Into<Ex<'e>>) -> Result<Vec<T>, StoreError> {
        self.rows(ex, Rows::All).await
    }

    async fn rows<'e, T: Record>(self, ex: impl Into<Ex<'e>>, rows: Rows) -> Result<Vec<T>, StoreError> {
        let Ex { on, operation } = ex.into();
        as_operation(operation, self.rows_unguarded(on, rows)).await
    }

    async fn rows_unguarded<T: Record>(self, on: On<'_>, rows: Rows) -> Result<Vec<T>, StoreError> {
        let Query { sql, args, persistent } = self;
        Ok(match on {
            On::Sqlite(p) => fetch_on(sqlx::query_as_with(sql, sqlite_args(&args)?), persistent, p, rows).await?,
            On::SqliteConn(c) => fetch_on(sqlx::query_as_with(sql, sqlite_args(&args)?), persistent, c, rows).await?,
            On::Postgres(p) => fetch_on(sqlx::query_as_with(sql, pg_args(&args)?), persistent, p, rows).await?,
            On::PgConn(c) => fetch_on(sqlx::query_as_with(sql, pg_args(&args)?), persistent, c, rows).await?,
        })
    }

    /// The first column of the first row, if there is a row.
    pub(crate) async fn scalar_optional<'e, T: Scalar>(self, ex: impl Into<Ex<'e>>) -> Result<Option<T>, StoreError> {
        Ok(self.fetch_optional::<(T,)>(ex).await?.map(|(v,)| v))
    }

    /// The first column of the first row; no row is an error.
    pub(crate) async fn scalar<'e, T: Scalar>(self, ex: impl Into<Ex<'e>>) -> Result<T, StoreError> {
        Ok(self.fetch_one::<(T,)>(ex).await?.0)
    }

    /// The first column of every row.
    pub(crate) async fn scalars<'e, T: Scalar>(self, ex: impl Into<Ex<'e>>) -> Result<Vec<T>, StoreError> {
        Ok(self.fetch_all::<(T,)>(ex).await?.into_iter().map(|(v,)| v).collect())
    }
}

/// A paged listing's two statements: how many rows `from` (`FROM … WHERE …`, its placeholders bound to `args`)
/// selects, and the page of them, as `columns`, that `order` (`ORDER BY …`), `limit` and `offset` pick.
pub(crate) async fn page<T: Record>(
    pool: Pool<'_>,
    columns: &str,
    from: &str,
    args: &[Arg<'_>],
    order: &str,
    limit: i64,
    offset: i64,
) -> Result<(Vec<T>, i64), StoreError> {
    let total: i64 = query(AssertSqlSafe(format!("SELECT COUNT(*) {from}")))
        .bind_all(args)
        .scalar(pool)
        .await?;
    let (limit_at, offset_at) = (args.len() + 1, args.len() + 2);
    let rows = query(AssertSqlSafe(format!(
        "SELECT {columns} {from} {order} LIMIT ${limit_at} OFFSET ${offset_at}"
    )))
    .bind_all(args)
    .bind(limit)
    .bind(offset)
    .fetch_all(pool)
    .await?;
    Ok((rows, total))
}

/// How many rows a fetch reads.
#[derive(Clone, Copy)]
enum Rows {
    First,
    All,
}

/// Runs `q` on one backend's executor.
async fn execute_on<'c, DB, E>(
    q: sqlx::query::Query<'static, DB, DB::Arguments>,
    persistent: bool,
    ex: E,
) -> Result<DB::QueryResult, sqlx::Error>
where
    DB: sqlx::Database + sqlx::database::HasStatementCache,
    DB::Arguments: sqlx::IntoArguments<DB>,
    E: Executor<'c, Database = DB>,
{
    q.persistent(persistent).execute(ex).await
}

/// Runs `q` on one backend's executor: its first row (if any) or every row.
async fn fetch_on<'c, DB, T, E>(
    q: sqlx::query::QueryAs<'static, DB, T, DB::Arguments>,
    persistent: bool,
    ex: E,
    rows: Rows,
) -> Result<Vec<T>, sqlx::Error>
where
    DB: sqlx::Database + sqlx::database::HasStatementCache,
    DB::Arguments: sqlx::IntoArguments<DB>,
    T: Send + Unpin + for<'r> FromRow<'r, DB::Row>,
    E: Executor<'c, Database = DB>,
{
    let q = q.persistent(persistent);
    match rows {
        Rows::First => Ok(q.fetch_optional(ex).await?.into_iter().collect()),
        Rows::All => q.fetch_all(ex).await,
    }
}

fn sqlite_args(args: &[Arg<'_>]) -> Result<SqliteArguments, sqlx::Error> {
    arguments(args)
}

fn pg_args(args: &[Arg<'_>]) -> Result<PgArguments, sqlx::Error> {
    arguments(args)
}

/// The values as one backend's arguments.
fn arguments<A>(args: &[Arg<'_>]) -> Result<A, sqlx::Error>
where
    A: sqlx::Arguments,
    for<'t> Option<i64>: sqlx::Encode<'t, A::Database> + Type<A::Database>,
    for<'t> Option<i32>: sqlx::Encode<'t, A::Database> + Type<A::Database>,
    for<'t> Option<bool>: sqlx::Encode<'t, A::Database> + Type<A::Database>,
    for<'t> Option<f64>: sqlx::Encode<'t, A::Database> + Type<A::Database>,
    for<'t> Option<&'t str>: sqlx::Encode<'t, A::Database> + Type<A::Database>,
    for<'t> Option<&'t [u8]>: sqlx::Encode<'t, A::Database> + Type<A::Database>,
{
    let mut out = A::default();
    for a in args {
        match *a {
            Arg::I64(v) => out.add(v),
            Arg::I32(v) => out.add(v),
            Arg::Bool(v) => out.add(v),
            Arg::F64(v) => out.add(v),
            Arg::Str(v) => out.add(v),
            Arg::Bytes(v) => out.add(v),
        }
        .map_err(sqlx::Error::Encode)?;
    }
    Ok(out)
}
