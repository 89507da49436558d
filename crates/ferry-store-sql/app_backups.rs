//! Backups of applications' data, with their blob references, and the applications'
//! backup schedules.

use crate::Connection;
use ferry_domain::app_backup::BackupReason;
use ferry_store::{AppBackup, BackupSchedule, NewAppBackup, StoreResult};

use crate::{backend, narrow, not_found, unreadable};

const SELECT_BACKUPS: &str = "SELECT app_backups.id, apps.name AS app, app_backups.env,
        app_backups.target, app_backups.version, app_backups.reason, app_backups.paths,
        app_backups.requested_by, app_backups.created_ms, app_backups.digest,
        app_backups.manifest_blob, app_backups.files, app_backups.bytes, app_backups.new_bytes
     FROM app_backups JOIN apps ON apps.id = app_backups.app_id";

#[derive(sqlx::FromRow)]
struct BackupRow {
    id: i64,
    app: String,
    env: String,
    target: String,
    version: Option<String>,
    reason: String,
    paths: String,
    requested_by: String,
    created_ms: i64,
    digest: String,
    manifest_blob: String,
    files: i64,
    bytes: i64,
    new_bytes: i64,
}

impl TryFrom<BackupRow> for AppBackup {
    type Error = ferry_store::StoreError;

    fn try_from(row: BackupRow) -> StoreResult<AppBackup> {
        let unreadable = |why: String| unreadable(format_args!("backup {}", row.id), why);
        Ok(AppBackup {
            reason: BackupReason::parse(&row.reason).map_err(|e| unreadable(e.to_string()))?,
            paths: serde_json::from_str(&row.paths)
                .map_err(|e| unreadable(format!("paths: {e}")))?,
            files: narrow("files", row.files).map_err(unreadable)?,
            bytes: narrow("bytes", row.bytes).map_err(unreadable)?,
            new_bytes: narrow("new_bytes", row.new_bytes).map_err(unreadable)?,
            id: row.id,
            app: row.app,
            env: row.env,
            target: row.target,
            version: row.version,
            requested_by: row.requested_by,
            created_ms: row.created_ms,
            digest: row.digest,
            manifest_blob: row.manifest_blob,
        })
    }
}

async fn app_id(conn: &mut Connection, app: &str) -> StoreResult<i64> {
    sqlx::query_scalar("SELECT id FROM apps WHERE name = $1")
        .bind(app)
        .fetch_optional(&mut *conn)
        .await
        .map_err(backend)?
        .ok_or_else(|| not_found("application", app))
}

/// Inserts the backup and counts its blob references; returns it with its id.
pub(crate) async fn insert(conn: &mut Connection, new: &NewAppBackup) -> StoreResult<AppBackup> {
    let backup = &new.backup;
    let app_id = app_id(conn, &backup.app).await?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO app_backups (app_id, env, target, version, reason, paths, requested_by,
             created_ms, digest, manifest_blob, files, bytes, new_bytes)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
         RETURNING id",
    )
    .bind(app_id)
    .bind(&backup.env)
    .bind(&backup.target)
    .bind(&backup.version)
    .bind(backup.reason.as_str())
    .bind(serde_json::to_string(&backup.paths).expect("paths serialize"))
    .bind(&backup.requested_by)
    .bind(backup.created_ms)
    .bind(&backup.digest)
    .bind(&backup.manifest_blob)
    .bind(i64::try_from(backup.files).unwrap_or(i64::MAX))
    .bind(i64::try_from(backup.bytes).unwrap_or(i64::MAX))
    .bind(i64::try_from(backup.new_bytes).unwrap_or(i64::MAX))
    .fetch_one(&mut *conn)
    .await
    .map_err(backend)?;
    crate::dialect::count_blob_refs(conn, &new.blobs).await?;
    Ok(AppBackup {
        id,
        ..backup.clone()
    })
}

pub(crate) async fn list(conn: &mut Connection, app: Option<&str>) -> StoreResult<Vec<AppBackup>> {
    let rows: Vec<BackupRow> = sqlx::query_as(&format!(
        "{SELECT_BACKUPS} WHERE $1 IS NULL OR apps.name = $1
         ORDER BY app_backups.created_ms DESC, app_backups.id DESC"
    ))
    .bind(app)
    .fetch_all(&mut *conn)
    .await
    .map_err(backend)?;
    rows.into_iter().map(AppBackup::try_from).collect()
}

pub(crate) async fn by_id(conn: &mut Connection, id: i64) -> StoreResult<Option<AppBackup>> {
    let row: Option<BackupRow> =
        sqlx::query_as(&format!("{SELECT_BACKUPS} WHERE app_backups.id = $1"))
            .bind(id)
            .fetch_optional(&mut *conn)
            .await
            .map_err(backend)?;
    row.map(AppBackup::try_from).transpose()
}

/// Deletes backups of `app` and drops their blob references.
pub(crate) async fn delete(
    conn: &mut Connection,
    app: &str,
    backups: &[(i64, Vec<String>)],
) -> StoreResult<()> {
    let app_id = app_id(conn, app).await?;
    for (id, blobs) in backups {
        let deleted = sqlx::query("DELETE FROM app_backups WHERE id = $1 AND app_id = $2")
            .bind(id)
            .bind(app_id)
            .execute(&mut *conn)
            .await
            .map_err(backend)?;
        if deleted.rows_affected() == 0 {
            return Err(not_found("backup", &format!("{app} {id}")));
        }
        crate::dialect::drop_blob_refs(conn, blobs).await?;
    }
    Ok(())
}

pub(crate) async fn set_schedule(
    conn: &mut Connection,
    app: &str,
    schedule: &BackupSchedule,
) -> StoreResult<()> {
    let app_id = app_id(conn, app).await?;
    sqlx::query(
        "INSERT INTO app_backup_schedules (app_id, every_ms, keep) VALUES ($1, $2, $3)
         ON CONFLICT (app_id) DO UPDATE SET every_ms = excluded.every_ms, keep = excluded.keep",
    )
    .bind(app_id)
    .bind(schedule.every_ms)
    .bind(&schedule.keep)
    .execute(&mut *conn)
    .await
    .map_err(backend)?;
    Ok(())
}

pub(crate) async fn schedules(conn: &mut Connection) -> StoreResult<Vec<(String, BackupSchedule)>> {
    let rows: Vec<(String, Option<i64>, String)> = sqlx::query_as(
        "SELECT apps.name, app_backup_schedules.every_ms, app_backup_schedules.keep
         FROM app_backup_schedules JOIN apps ON apps.id = app_backup_schedules.app_id
         ORDER BY apps.name",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(backend)?;
    Ok(rows
        .into_iter()
        .map(|(app, every_ms, keep)| (app, BackupSchedule { every_ms, keep }))
        .collect())
}
