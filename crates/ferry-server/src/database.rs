//! Which database the server keeps its state in: SQLite in the data directory (the
//! default, nothing to set up) or PostgreSQL (`--database postgres://…`), which several
//! servers can share.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use ferry_store::Store;
use ferry_store_postgres::PostgresStore;
use ferry_store_sqlite::SqliteStore;

/// Where the state lives, as `--database` (or `FERRY_DATABASE`) names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Database {
    /// `DATA/ferry.db`: the default.
    Sqlite(PathBuf),
    /// `postgres://USER:PASSWORD@HOST:PORT/DATABASE` (or `postgresql://…`).
    Postgres(String),
}

/// Whether `url` names a PostgreSQL database (`postgres://…` or `postgresql://…`).
pub fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

impl Database {
    /// The database `--database` names, or SQLite in `data_dir` without one.
    pub fn from_flag(flag: Option<&str>, data_dir: &Path) -> Result<Database, String> {
        match flag {
            None => Ok(Database::Sqlite(data_dir.join("ferry.db"))),
            Some(url) if is_postgres_url(url) => Ok(Database::Postgres(url.to_owned())),
            Some(other) => Err(format!(
                "--database {other:?} is not a PostgreSQL URL: give postgres://USER:PASSWORD@HOST:PORT/DATABASE, or leave it out to keep the state in SQLite in the data directory"
            )),
        }
    }

    /// Whether the database holds ferry's state already (an audit trail, at least).
    pub async fn exists(&self) -> anyhow::Result<bool> {
        Ok(match self {
            Database::Sqlite(path) => path.exists() || crate::migrate::moved_name(path).exists(),
            Database::Postgres(url) => PostgresStore::holds_state(url)
                .await
                .with_context(|| format!("reading {}", self.describe()))?,
        })
    }

    /// What a server of this build would do to the database's schema when it starts on it,
    /// read without changing anything.
    pub async fn schema_plan(&self) -> anyhow::Result<ferry_store::SchemaPlan> {
        let plan = match self {
            Database::Sqlite(path) => SqliteStore::schema_plan(path).await,
            Database::Postgres(url) => PostgresStore::schema_plan(url).await,
        };
        plan.with_context(|| format!("reading {}", self.describe()))
    }

    /// The database as it may be shown: a PostgreSQL URL without its password.
    pub fn describe(&self) -> String {
        match self {
            Database::Sqlite(path) => format!("SQLite {}", path.display()),
            Database::Postgres(url) => {
                format!("PostgreSQL {}", ferry_store_postgres::redacted(url))
            }
        }
    }
}

/// An open store of either kind.
pub enum OpenStore {
    Sqlite(Arc<SqliteStore>),
    Postgres(Arc<PostgresStore>),
}

impl OpenStore {
    /// Opens (creating or migrating) the database.
    pub async fn open(database: &Database, audit_key: [u8; 32]) -> anyhow::Result<OpenStore> {
        let context = || format!("opening the database ({})", database.describe());
        let store = match database {
            Database::Sqlite(path)
                if !path.exists() && crate::migrate::moved_name(path).exists() =>
            {
                anyhow::bail!(
                    "the state in {} moved to PostgreSQL (`ferry server migrate`): start with --database (or FERRY_DATABASE) naming that database. To go back to SQLite as it was before the move, rename {}",
                    path.parent().unwrap_or(path).display(),
                    crate::migrate::way_back(path)
                )
            }
            Database::Sqlite(path) => OpenStore::Sqlite(Arc::new(
                SqliteStore::open(path, audit_key)
                    .await
                    .with_context(context)?,
            )),
            Database::Postgres(url) => OpenStore::Postgres(Arc::new(
                PostgresStore::open(url, audit_key)
                    .await
                    .with_context(context)?,
            )),
        };
        let upgraded = match &store {
            OpenStore::Sqlite(store) => store.upgraded(),
            OpenStore::Postgres(store) => store.upgraded(),
        };
        for change in upgraded {
            tracing::info!(
                "upgraded {}: schema change {}: {}",
                database.describe(),
                change.version,
                change.what
            );
        }
        Ok(store)
    }

    /// The store, for the server's state.
    pub fn store(&self) -> Arc<dyn Store> {
        match self {
            OpenStore::Sqlite(store) => store.clone(),
            OpenStore::Postgres(store) => store.clone(),
        }
    }

    /// Closes the connections, waiting for running queries.
    pub async fn close(&self) {
        match self {
            OpenStore::Sqlite(store) => store.close().await,
            OpenStore::Postgres(store) => store.close().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flag_names_the_database() {
        let data = Path::new("/var/lib/ferry");
        let cases: &[(Option<&str>, Result<Database, &str>)] = &[
            (None, Ok(Database::Sqlite(data.join("ferry.db")))),
            (
                Some("postgres://ferry@db:5432/ferry"),
                Ok(Database::Postgres("postgres://ferry@db:5432/ferry".into())),
            ),
            (
                Some("postgresql://db/ferry"),
                Ok(Database::Postgres("postgresql://db/ferry".into())),
            ),
            (Some("mysql://db/ferry"), Err("is not a PostgreSQL URL")),
            (Some("ferry.db"), Err("is not a PostgreSQL URL")),
        ];
        for (flag, expected) in cases {
            let got = Database::from_flag(*flag, data);
            match (expected, &got) {
                (Ok(want), Ok(got)) => assert_eq!(want, got, "{flag:?}"),
                (Err(want), Err(got)) => assert!(got.contains(want), "{flag:?}: {got}"),
                _ => panic!("{flag:?}: {got:?}"),
            }
        }
    }

    #[test]
    fn a_password_is_never_shown() {
        let shown = Database::Postgres("postgres://ferry:s3cret@db/ferry".into()).describe();
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("db"), "{shown}");
    }
}
