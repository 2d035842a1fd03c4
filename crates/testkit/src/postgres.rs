//! A PostgreSQL schema of its own for one test case, so cases run in parallel on one database and leave nothing
//! behind.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::Connection;

/// The variable that names the test database, e.g. `postgres://root@127.0.0.1:5432/test`.
pub const POSTGRES_URL_VAR: &str = "MAILPUSH_TEST_POSTGRES_URL";

/// Runs `case` on the URL of a fresh schema of the database [`POSTGRES_URL_VAR`] names (its `search_path` set
/// to the schema), then drops the schema whether the case passed or not: the case runs in a task of its own,
/// and its panic is raised again after the drop. Without the variable it prints a notice and runs nothing.
///
/// `name` starts the schema's name (letters, digits and `_`); the process id and a counter make it unique.
pub async fn on_schema<F, Fut>(name: &str, case: F)
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let Ok(base) = std::env::var(POSTGRES_URL_VAR) else {
        eprintln!("note: {POSTGRES_URL_VAR} is not set; skipping the PostgreSQL run of {name}");
        return;
    };
    let schema = format!("{name}_{}_{}", std::process::id(), SEQ.fetch_add(1, Ordering::Relaxed));
    let mut admin = sqlx::PgConnection::connect(&base)
        .await
        .unwrap_or_else(|e| panic!("connect to {POSTGRES_URL_VAR}: {e}"));
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA IF EXISTS {schema} CASCADE")))
        .execute(&mut admin)
        .await
        .expect("drop a schema left by an earlier process of this id");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&mut admin)
        .await
        .expect("create the test schema");
    let sep = if base.contains('?') { '&' } else { '?' };
    let result = tokio::spawn(case(format!("{base}{sep}options=-c%20search_path%3D{schema}"))).await;
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
        .execute(&mut admin)
        .await
        .expect("drop the test schema");
    let _ = admin.close().await;
    if let Err(e) = result {
        if e.is_panic() {
            std::panic::resume_unwind(e.into_panic());
        }
        panic!("case task failed: {e}");
    }
}
