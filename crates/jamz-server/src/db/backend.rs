//! Where the server's data lives and opening it: SQLite (a file: the default, the
//! embedded server's) or PostgreSQL (a `postgres://` URL: several server processes
//! share one). Each has its own migrations (`migrations/sqlite`, `migrations/postgres`),
//! applied at start-up; the queries are shared ([`super::Db`]), written once with `?`
//! placeholders and the SQL both engines accept, and renumbered for PostgreSQL here.
use std::borrow::Cow;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection, PgPool, SqlitePool};

/// How long a writer waits for another one before giving up; SQLite has one
/// writer at a time and a burst of joins must queue, not fail.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections in the pool: SQLite serializes writers anyway; a few readers help.
const SQLITE_MAX_CONNECTIONS: u32 = 4;
/// PostgreSQL runs writers side by side; each server process keeps this many.
const PG_MAX_CONNECTIONS: u32 = 16;
/// How long a request waits for a PostgreSQL connection before it is answered 503:
/// with the database gone, a request fails within this, it never hangs.
const PG_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);
/// How long the first connection at start-up may take.
const PG_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The database the server opens: `--db` (docs/architecture.md, "Storage").
#[derive(Clone, PartialEq, Eq)]
pub enum DbLocation {
    /// A SQLite file, created if missing.
    Sqlite(PathBuf),
    /// A PostgreSQL URL (`postgres://user:password@host:port/database`); the database
    /// must exist, its tables are created by the migrations.
    Postgres(String),
}

impl DbLocation {
    /// A `postgres://` or `postgresql://` URL is PostgreSQL; anything else a SQLite file.
    pub fn parse(s: &str) -> Self {
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            Self::Postgres(s.to_string())
        } else {
            Self::Sqlite(PathBuf::from(s))
        }
    }
}

impl FromStr for DbLocation {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self::parse(s))
    }
}

impl From<PathBuf> for DbLocation {
    fn from(path: PathBuf) -> Self {
        Self::Sqlite(path)
    }
}

impl From<&Path> for DbLocation {
    fn from(path: &Path) -> Self {
        Self::Sqlite(path.to_path_buf())
    }
}

/// The file, or the URL with its password left out: what logs and errors show.
impl fmt::Display for DbLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sqlite(path) => write!(f, "{}", path.display()),
            Self::Postgres(url) => f.write_str(&redact_password(url)),
        }
    }
}

impl fmt::Debug for DbLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DbLocation({self})")
    }
}

/// `scheme://user:secret@host/db` -> `scheme://user:***@host/db`.
fn redact_password(url: &str) -> Cow<'_, str> {
    let Some(start) = url.find("://").map(|i| i + 3) else {
        return Cow::Borrowed(url);
    };
    let authority_end = url[start..].find('/').map_or(url.len(), |i| start + i);
    let Some(at) = url[start..authority_end].rfind('@').map(|i| start + i) else {
        return Cow::Borrowed(url);
    };
    match url[start..at].find(':').map(|i| start + i) {
        Some(colon) => Cow::Owned(format!("{}:***{}", &url[..colon], &url[at..])),
        None => Cow::Borrowed(url),
    }
}

/// The open pool of one engine.
#[derive(Clone)]
pub(super) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl Pool {
    pub(super) async fn open(location: &DbLocation) -> Result<Self, sqlx::Error> {
        match location {
            DbLocation::Sqlite(path) => open_sqlite(path).await.map(Self::Sqlite),
            DbLocation::Postgres(url) => open_postgres(url).await.map(Self::Postgres),
        }
    }

    /// `sql` (written with `?` placeholders) as this engine takes it.
    pub(super) fn sql(&self, sql: &'static str) -> sqlx::SqlStr {
        match self {
            Self::Sqlite(_) => sqlx::SqlStr::from_static(sql),
            Self::Postgres(_) => {
                sqlx::SqlSafeStr::into_sql_str(sqlx::AssertSqlSafe(numbered_placeholders(sql)))
            }
        }
    }

    /// The one of two texts of a query this engine needs, where their SQL differs.
    pub(super) fn sql_for(&self, sqlite: &'static str, postgres: &'static str) -> sqlx::SqlStr {
        match self {
            Self::Sqlite(_) => self.sql(sqlite),
            Self::Postgres(_) => self.sql(postgres),
        }
    }

    /// Connections open and idle.
    pub(super) fn figures(&self) -> (u32, usize) {
        match self {
            Self::Sqlite(p) => (p.size(), p.num_idle()),
            Self::Postgres(p) => (p.size(), p.num_idle()),
        }
    }
}

/// `?` -> `$1`, `$2`, ... (PostgreSQL's placeholders). The shared queries hold no `?`
/// inside string literals.
fn numbered_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut n = 0;
    for c in sql.chars() {
        if c == '?' {
            n += 1;
            out.push('$');
            out.push_str(&n.to_string());
        } else {
            out.push(c);
        }
    }
    out
}

async fn open_sqlite(path: &Path) -> Result<SqlitePool, sqlx::Error> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        crate::fsperm::create_private_dir(dir).map_err(sqlx::Error::Io)?;
    }
    // Created (or tightened) as 0600 before SQLite opens it: SQLite gives
    // the -wal and -shm files the database file's mode.
    crate::fsperm::private_file()
        .create(true)
        .append(true)
        .open(path)
        .map_err(sqlx::Error::Io)?;
    for suffix in ["", "-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        crate::fsperm::make_private(Path::new(&name)).map_err(sqlx::Error::Io)?;
    }
    let options = SqliteConnectOptions::from_str("sqlite://")?
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        // FULL: a committed change survives power loss too, not only kill -9.
        .synchronous(SqliteSynchronous::Full)
        .foreign_keys(true)
        .busy_timeout(BUSY_TIMEOUT);
    let pool = SqlitePoolOptions::new()
        .max_connections(SQLITE_MAX_CONNECTIONS)
        .connect_with(options)
        .await?;
    sqlx::migrate!("./migrations/sqlite")
        .run(&pool)
        .await
        .map_err(|e| sqlx::Error::Migrate(Box::new(e)))?;
    Ok(pool)
}

async fn open_postgres(url: &str) -> Result<PgPool, sqlx::Error> {
    let options = PgConnectOptions::from_str(url)?;
    // One connection first, on its own: its error (refused, no such database, wrong
    // password) is the one to tell, where the pool would only say it timed out.
    let first = tokio::time::timeout(PG_CONNECT_TIMEOUT, options.connect())
        .await
        .map_err(|_| {
            sqlx::Error::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no answer within {} s", PG_CONNECT_TIMEOUT.as_secs()),
            ))
        })??;
    first.close().await?;
    let pool = PgPoolOptions::new()
        .max_connections(PG_MAX_CONNECTIONS)
        .acquire_timeout(PG_ACQUIRE_TIMEOUT)
        .connect_with(options)
        .await?;
    // Several processes starting at once: sqlx holds an advisory lock while migrating.
    sqlx::migrate!("./migrations/postgres")
        .run(&pool)
        .await
        .map_err(|e| sqlx::Error::Migrate(Box::new(e)))?;
    Ok(pool)
}

/// Whether `e` says the database cannot be reached (gone, restarting, out of
/// connections) rather than that a query is wrong: such requests get 503 and may be
/// retried.
pub fn is_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => true,
        // PostgreSQL shutting down (class 57: operator intervention, e.g. 57P01
        // admin_shutdown) or refusing connections (class 08, 53300 too many).
        sqlx::Error::Database(d) => d
            .code()
            .is_some_and(|c| c.starts_with("57") || c.starts_with("08") || c == "53300"),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_postgres_url_picks_postgres_anything_else_is_a_sqlite_file() {
        for url in ["postgres://u@h/db", "postgresql://h/db"] {
            assert_eq!(DbLocation::parse(url), DbLocation::Postgres(url.into()));
        }
        for path in ["jamz-data/jamz.db", "/var/lib/jamz/jamz.db", "postgres.db"] {
            assert_eq!(DbLocation::parse(path), DbLocation::Sqlite(path.into()));
        }
    }

    #[test]
    fn a_password_is_never_shown() {
        let shown = DbLocation::parse("postgres://jamz:s3cret@db.example:5432/jamz").to_string();
        assert_eq!(shown, "postgres://jamz:***@db.example:5432/jamz");
        let shown = DbLocation::parse("postgres://jamz@db.example/jamz").to_string();
        assert_eq!(shown, "postgres://jamz@db.example/jamz");
    }

    #[test]
    fn placeholders_are_numbered_for_postgres() {
        assert_eq!(
            numbered_placeholders("UPDATE t SET a = ?, b = ? WHERE id = ?"),
            "UPDATE t SET a = $1, b = $2 WHERE id = $3"
        );
    }
}
