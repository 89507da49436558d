//! A fresh, empty PostgreSQL database for one test, dropped when the test ends: tests of
//! the PostgreSQL store and of the server on it.
//!
//! The server to create it on is `FERRY_TEST_POSTGRES` (an administrator's URL), by default
//! `postgres://postgres@127.0.0.1:5432/postgres`. Where no server answers, [`fresh`] says
//! so on stderr and returns `None`, so the test can pass without it; with
//! `FERRY_TEST_REQUIRE_POSTGRES=1` (as CI sets it) it panics instead, so CI never skips.

use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::{Connection, PgConnection};

/// The administrator's URL used when `FERRY_TEST_POSTGRES` is not set.
const DEFAULT_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// The prefix of every test database's name; the rest is the creating process's id and a
/// counter, so databases a killed test run left behind can be told apart and dropped.
const PREFIX: &str = "ferry_test_";

/// A database created for one test; dropping it drops the database.
pub struct TestDatabase {
    admin_url: String,
    name: String,
    /// The URL to connect to the database with.
    pub url: String,
}

/// A fresh database, or `None` (said on stderr) where no PostgreSQL server answers and
/// `FERRY_TEST_REQUIRE_POSTGRES` is not set.
pub async fn fresh(test: &str) -> Option<TestDatabase> {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let admin_url =
        std::env::var("FERRY_TEST_POSTGRES").unwrap_or_else(|_| DEFAULT_ADMIN_URL.to_owned());
    let mut admin = match PgConnection::connect(&admin_url).await {
        Ok(conn) => conn,
        Err(e) if std::env::var_os("FERRY_TEST_REQUIRE_POSTGRES").is_some() => {
            panic!("{test}: PostgreSQL is required (FERRY_TEST_REQUIRE_POSTGRES) but {admin_url} does not answer: {e}")
        }
        Err(e) => {
            eprintln!("SKIPPED {test} on PostgreSQL: {admin_url} does not answer ({e}); set FERRY_TEST_POSTGRES to a server's administrator URL to run it");
            return None;
        }
    };
    drop_abandoned(&mut admin).await;
    let name = format!(
        "{PREFIX}{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    );
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .unwrap_or_else(|e| panic!("creating the test database {name}: {e}"));
    let mut url = url::Url::parse(&admin_url).expect("FERRY_TEST_POSTGRES is a URL");
    url.set_path(&name);
    Some(TestDatabase {
        admin_url,
        name,
        url: url.to_string(),
    })
}

impl TestDatabase {
    /// What a database restart looks like to its clients: every connection to this
    /// database is closed and new ones are refused for `down`, then accepted again. Other
    /// databases on the server (other tests') are left alone.
    pub async fn outage(&self, down: std::time::Duration) {
        let mut admin = PgConnection::connect(&self.admin_url)
            .await
            .expect("the administrator's connection");
        let name = &self.name;
        sqlx::query(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false"))
            .execute(&mut admin)
            .await
            .expect("refusing connections");
        sqlx::query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE datname = $1 AND pid != pg_backend_pid()",
        )
        .bind(name)
        .execute(&mut admin)
        .await
        .expect("closing connections");
        tokio::time::sleep(down).await;
        sqlx::query(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true"))
            .execute(&mut admin)
            .await
            .expect("accepting connections again");
    }
}

/// Drops the test databases of processes that no longer run (a killed test run's).
async fn drop_abandoned(admin: &mut PgConnection) {
    let names: Vec<String> =
        sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE $1")
            .bind(format!("{PREFIX}%"))
            .fetch_all(&mut *admin)
            .await
            .unwrap_or_default();
    for name in names {
        let pid = name[PREFIX.len()..].split('_').next().unwrap_or("");
        let alive = !pid.is_empty() && std::path::Path::new("/proc").join(pid).exists();
        if !alive {
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut *admin)
                .await;
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // Drop runs inside the test's runtime, which cannot be blocked on.
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        let dropped = on_own_runtime(move || async move {
            let mut admin = PgConnection::connect(&admin_url).await?;
            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut admin)
                .await?;
            Ok::<_, sqlx::Error>(())
        });
        if let Err(e) = dropped {
            eprintln!("dropping the test database {}: {e}", self.name);
        }
    }
}

/// Runs a future to its end on a runtime of its own, in a thread of its own: for code that
/// runs inside a runtime it cannot block on (a `Drop`, a synchronous test's helper).
pub fn on_own_runtime<F, T>(future: impl FnOnce() -> F + Send + 'static) -> T
where
    F: std::future::Future<Output = T>,
    T: Send + 'static,
{
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime for a test's database work")
            .block_on(future())
    })
    .join()
    .expect("the test's database work did not panic")
}
