//! PostgreSQL for tests: the cluster scripts/env.d/postgres.sh starts
//! (`JAMZ_TEST_POSTGRES_URL`) and a fresh database on it per test, so that tests run in
//! parallel without seeing each other's rows. Shared by the unit tests (`src/lib.rs`
//! includes it) and the integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use sqlx::Connection;

/// The cluster's superuser URL. Without one the test is skipped (it says so on stderr)
/// unless `JAMZ_REQUIRE_POSTGRES` is set (CI): then it fails.
pub fn admin_url(test: &str) -> Option<String> {
    match std::env::var("JAMZ_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var_os("JAMZ_REQUIRE_POSTGRES").is_some_and(|v| !v.is_empty()) => panic!(
            "{test}: JAMZ_REQUIRE_POSTGRES is set but JAMZ_TEST_POSTGRES_URL is not: \
             source scripts/env.d/postgres.sh first"
        ),
        _ => {
            eprintln!(
                "{test}: skipped: no PostgreSQL (JAMZ_TEST_POSTGRES_URL unset; \
                 source scripts/env.d/postgres.sh)"
            );
            None
        }
    }
}

/// A new, empty database on the cluster of `admin`; its URL.
pub async fn fresh_database(admin: &str) -> String {
    let name = format!("jamz_t_{:016x}", rand::random::<u64>());
    let mut c = sqlx::PgConnection::connect(admin)
        .await
        .unwrap_or_else(|e| panic!("connect to {admin}: {e}"));
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut c)
        .await
        .unwrap();
    c.close().await.unwrap();
    database_url(admin, &name)
}

/// `admin` with its database replaced by `name`.
pub fn database_url(admin: &str, name: &str) -> String {
    let base = admin.split('?').next().unwrap_or(admin);
    let slash = base.rfind('/').expect("a URL with a path");
    format!("{}/{name}", &base[..slash])
}
