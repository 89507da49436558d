//! Applications' configuration per environment: one row per revision, its entries and
//! what it changed as JSON documents. Secrets are stored as the server sealed them.

use crate::Connection;
use ferry_domain::config::ConfigKey;
use ferry_store::{ConfigRevision, StoreError, StoreResult, StoredEntry, StoredValue};
use serde::{Deserialize, Serialize};

use crate::{backend, narrow, not_found, unreadable};

const SELECT_REVISIONS: &str = "SELECT apps.name AS app, config_revisions.env,
        config_revisions.revision, config_revisions.created_ms, config_revisions.author,
        config_revisions.entries, config_revisions.changes, config_revisions.sealed_with
     FROM config_revisions JOIN apps ON apps.id = config_revisions.app_id";

#[derive(sqlx::FromRow)]
struct RevisionRow {
    app: String,
    env: String,
    revision: i64,
    created_ms: i64,
    author: String,
    entries: String,
    changes: String,
    sealed_with: Option<String>,
}

/// One entry as its JSON document stores it: `value` in clear, or `sealed`.
#[derive(Serialize, Deserialize)]
struct EntryJson {
    key: ConfigKey,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sealed: Option<String>,
}

fn entries_json(entries: &[StoredEntry]) -> String {
    let entries: Vec<EntryJson> = entries
        .iter()
        .map(|entry| {
            let (value, sealed) = match &entry.value {
                StoredValue::Plain(value) => (Some(value.clone()), None),
                StoredValue::Sealed(sealed) => (None, Some(sealed.clone())),
            };
            EntryJson {
                key: entry.key.clone(),
                value,
                sealed,
            }
        })
        .collect();
    serde_json::to_string(&entries).expect("entries serialize")
}

impl TryFrom<RevisionRow> for ConfigRevision {
    type Error = StoreError;

    fn try_from(row: RevisionRow) -> StoreResult<ConfigRevision> {
        let unreadable = |why: String| {
            unreadable(
                format_args!(
                    "configuration revision {} of {} in {}",
                    row.revision, row.app, row.env
                ),
                why,
            )
        };
        let entries: Vec<EntryJson> =
            serde_json::from_str(&row.entries).map_err(|e| unreadable(format!("entries: {e}")))?;
        let entries = entries
            .into_iter()
            .map(|entry| {
                let value = match (entry.value, entry.sealed) {
                    (Some(value), None) => StoredValue::Plain(value),
                    (None, Some(sealed)) => StoredValue::Sealed(sealed),
                    _ => {
                        return Err(unreadable(format!(
                            "{}: neither value nor sealed",
                            entry.key
                        )))
                    }
                };
                Ok(StoredEntry {
                    key: entry.key,
                    value,
                })
            })
            .collect::<StoreResult<_>>()?;
        Ok(ConfigRevision {
            revision: narrow("revision", row.revision).map_err(unreadable)?,
            changes: serde_json::from_str(&row.changes)
                .map_err(|e| unreadable(format!("changes: {e}")))?,
            entries,
            app: row.app,
            env: row.env,
            created_ms: row.created_ms,
            author: row.author,
            sealed_with: row.sealed_with,
        })
    }
}

/// The newest revision number of `app_id` in `env`; 0 when there is none.
async fn newest(conn: &mut Connection, app_id: i64, env: &str) -> StoreResult<u64> {
    let newest: Option<i64> = sqlx::query_scalar(
        "SELECT MAX(revision) FROM config_revisions WHERE app_id = $1 AND env = $2",
    )
    .bind(app_id)
    .bind(env)
    .fetch_one(&mut *conn)
    .await
    .map_err(backend)?;
    Ok(newest.and_then(|n| u64::try_from(n).ok()).unwrap_or(0))
}

/// Inserts `revision` after the newest of its application and environment.
pub(crate) async fn insert(
    conn: &mut Connection,
    revision: &ConfigRevision,
) -> StoreResult<ConfigRevision> {
    let app_id: i64 = sqlx::query_scalar("SELECT id FROM apps WHERE name = $1")
        .bind(&revision.app)
        .fetch_optional(&mut *conn)
        .await
        .map_err(backend)?
        .ok_or_else(|| not_found("application", &revision.app))?;
    let env: Option<String> = sqlx::query_scalar("SELECT name FROM environments WHERE name = $1")
        .bind(&revision.env)
        .fetch_optional(&mut *conn)
        .await
        .map_err(backend)?;
    if env.is_none() {
        return Err(not_found("environment", &revision.env));
    }
    let newest = newest(conn, app_id, &revision.env).await?;
    if revision.revision != newest + 1 {
        return Err(StoreError::Conflict(format!(
            "the configuration of {} in {} changed meanwhile (revision {newest} now): run the command again",
            revision.app, revision.env
        )));
    }
    sqlx::query(
        "INSERT INTO config_revisions (app_id, env, revision, created_ms, author, entries,
             changes, sealed_with)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(app_id)
    .bind(&revision.env)
    .bind(i64::try_from(revision.revision).unwrap_or(i64::MAX))
    .bind(revision.created_ms)
    .bind(&revision.author)
    .bind(entries_json(&revision.entries))
    .bind(serde_json::to_string(&revision.changes).expect("changes serialize"))
    .bind(&revision.sealed_with)
    .execute(&mut *conn)
    .await
    .map_err(backend)?;
    Ok(revision.clone())
}

pub(crate) async fn by_revision(
    conn: &mut Connection,
    app: &str,
    env: &str,
    revision: Option<u64>,
) -> StoreResult<Option<ConfigRevision>> {
    let row: Option<RevisionRow> = sqlx::query_as(&format!(
        "{SELECT_REVISIONS} WHERE apps.name = $1 AND config_revisions.env = $2
             AND ($3 IS NULL OR config_revisions.revision = $3)
         ORDER BY config_revisions.revision DESC LIMIT 1"
    ))
    .bind(app)
    .bind(env)
    .bind(revision.map(|r| i64::try_from(r).unwrap_or(i64::MAX)))
    .fetch_optional(&mut *conn)
    .await
    .map_err(backend)?;
    row.map(ConfigRevision::try_from).transpose()
}

pub(crate) async fn history(
    conn: &mut Connection,
    app: &str,
    env: &str,
) -> StoreResult<Vec<ConfigRevision>> {
    let rows: Vec<RevisionRow> = sqlx::query_as(&format!(
        "{SELECT_REVISIONS} WHERE apps.name = $1 AND config_revisions.env = $2
         ORDER BY config_revisions.revision DESC"
    ))
    .bind(app)
    .bind(env)
    .fetch_all(&mut *conn)
    .await
    .map_err(backend)?;
    rows.into_iter().map(ConfigRevision::try_from).collect()
}

pub(crate) async fn sealed(conn: &mut Connection) -> StoreResult<Vec<ConfigRevision>> {
    let rows: Vec<RevisionRow> = sqlx::query_as(&format!(
        "{SELECT_REVISIONS} WHERE config_revisions.sealed_with IS NOT NULL
         ORDER BY config_revisions.app_id, config_revisions.env, config_revisions.revision"
    ))
    .fetch_all(&mut *conn)
    .await
    .map_err(backend)?;
    rows.into_iter().map(ConfigRevision::try_from).collect()
}

pub(crate) async fn secret_key_id(conn: &mut Connection) -> StoreResult<Option<String>> {
    sqlx::query_scalar("SELECT key_id FROM secret_key WHERE id = 1")
        .fetch_optional(&mut *conn)
        .await
        .map_err(backend)
}

/// Claims `key_id` when no key is claimed; the key claimed.
pub(crate) async fn claim_secret_key(conn: &mut Connection, key_id: &str) -> StoreResult<String> {
    sqlx::query("INSERT INTO secret_key (id, key_id) VALUES (1, $1) ON CONFLICT (id) DO NOTHING")
        .bind(key_id)
        .execute(&mut *conn)
        .await
        .map_err(backend)?;
    Ok(secret_key_id(conn)
        .await?
        .unwrap_or_else(|| key_id.to_owned()))
}

/// Replaces each revision's entries and key id, if it is still sealed with `previous_key`,
/// and claims `key_id` instead of `previous_key`.
pub(crate) async fn reseal(
    conn: &mut Connection,
    (previous_key, key_id): (&str, &str),
    revisions: &[ConfigRevision],
) -> StoreResult<()> {
    let claimed = sqlx::query("UPDATE secret_key SET key_id = $1 WHERE id = 1 AND key_id = $2")
        .bind(key_id)
        .bind(previous_key)
        .execute(&mut *conn)
        .await
        .map_err(backend)?;
    if claimed.rows_affected() != 1 {
        return Err(StoreError::Conflict(format!(
            "the installation's secret key is no longer {previous_key}: nothing was changed"
        )));
    }
    for revision in revisions {
        let updated = sqlx::query(
            "UPDATE config_revisions SET entries = $1, sealed_with = $2
             WHERE app_id = (SELECT id FROM apps WHERE name = $3) AND env = $4
                 AND revision = $5 AND sealed_with = $6",
        )
        .bind(entries_json(&revision.entries))
        .bind(&revision.sealed_with)
        .bind(&revision.app)
        .bind(&revision.env)
        .bind(i64::try_from(revision.revision).unwrap_or(i64::MAX))
        .bind(previous_key)
        .execute(&mut *conn)
        .await
        .map_err(backend)?;
        if updated.rows_affected() != 1 {
            return Err(StoreError::Conflict(format!(
                "configuration revision {} of {} in {} is no longer sealed with key {previous_key}: nothing was changed",
                revision.revision, revision.app, revision.env
            )));
        }
    }
    Ok(())
}
