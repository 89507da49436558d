//! Releases and blob reference counts.

use std::collections::HashSet;

use crate::Connection;
use ferry_store::{NewRelease, Release, ReleaseOutcome, StoreError, StoreResult};

use crate::{backend, narrow, not_found, unreadable};

const SELECT_RELEASES: &str =
    "SELECT apps.name AS app, releases.version, releases.digest, releases.manifest_blob, releases.files,
        releases.bytes, releases.source, releases.notes, releases.created_ms, releases.created_by,
        releases.hotfix_of, releases.incident_id
     FROM releases JOIN apps ON apps.id = releases.app_id";

/// A row of `SELECT_RELEASES`. The source stays JSON text, as the record carries it.
#[derive(sqlx::FromRow)]
struct ReleaseRow {
    app: String,
    version: String,
    digest: String,
    manifest_blob: String,
    files: i64,
    bytes: i64,
    source: String,
    notes: Option<String>,
    created_ms: i64,
    created_by: String,
    hotfix_of: Option<String>,
    incident_id: Option<i64>,
}

impl TryFrom<ReleaseRow> for Release {
    type Error = StoreError;

    fn try_from(row: ReleaseRow) -> StoreResult<Release> {
        let unreadable =
            |why: String| unreadable(format_args!("release {} {}", row.app, row.version), why);
        Ok(Release {
            files: narrow("files", row.files).map_err(unreadable)?,
            bytes: narrow("bytes", row.bytes).map_err(unreadable)?,
            app: row.app,
            version: row.version,
            digest: row.digest,
            manifest_blob: row.manifest_blob,
            source: row.source,
            notes: row.notes,
            created_ms: row.created_ms,
            created_by: row.created_by,
            hotfix_of: row.hotfix_of,
            incident: row.incident_id,
        })
    }
}

pub(crate) async fn by_version(
    conn: &mut Connection,
    app: &str,
    version: &str,
) -> StoreResult<Option<Release>> {
    let row: Option<ReleaseRow> = sqlx::query_as(&format!(
        "{SELECT_RELEASES} WHERE apps.name = $1 AND releases.version = $2"
    ))
    .bind(app)
    .bind(version)
    .fetch_optional(&mut *conn)
    .await
    .map_err(backend)?;
    row.map(Release::try_from).transpose()
}

pub(crate) async fn list(conn: &mut Connection, app: &str) -> StoreResult<Vec<Release>> {
    let rows: Vec<ReleaseRow> = sqlx::query_as(&format!(
        "{SELECT_RELEASES} WHERE apps.name = $1 ORDER BY releases.id DESC"
    ))
    .bind(app)
    .fetch_all(&mut *conn)
    .await
    .map_err(backend)?;
    rows.into_iter().map(Release::try_from).collect()
}

/// Inserts the release and its blob references, or reports the existing one. Returns
/// `None` for "created" so the caller writes the audit event only then.
pub(crate) async fn insert(
    conn: &mut Connection,
    new: &NewRelease,
) -> StoreResult<Option<ReleaseOutcome>> {
    let release = &new.release;
    if let Some(existing) = by_version(conn, &release.app, &release.version).await? {
        if existing.digest == release.digest {
            return Ok(Some(ReleaseOutcome::Identical(existing)));
        }
        return Err(StoreError::Refused(format!(
            "release {} {} already exists with different content (digest {}): releases are immutable, create a new version",
            release.app, release.version, existing.digest
        )));
    }
    let app_id: i64 = sqlx::query_scalar("SELECT id FROM apps WHERE name = $1")
        .bind(&release.app)
        .fetch_optional(&mut *conn)
        .await
        .map_err(backend)?
        .ok_or_else(|| not_found("application", &release.app))?;
    sqlx::query(
        "INSERT INTO releases (app_id, version, digest, manifest_blob, files, bytes, source, notes, created_ms, created_by, hotfix_of, incident_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(app_id)
    .bind(&release.version)
    .bind(&release.digest)
    .bind(&release.manifest_blob)
    .bind(release.files as i64)
    .bind(release.bytes as i64)
    .bind(&release.source)
    .bind(&release.notes)
    .bind(release.created_ms)
    .bind(&release.created_by)
    .bind(&release.hotfix_of)
    .bind(release.incident)
    .execute(&mut *conn)
    .await
    .map_err(backend)?;
    crate::dialect::count_blob_refs(conn, &new.blobs).await?;
    Ok(None)
}

pub(crate) async fn referenced_blobs(conn: &mut Connection) -> StoreResult<HashSet<String>> {
    let hashes: Vec<String> = sqlx::query_scalar("SELECT hash FROM blob_refs")
        .fetch_all(&mut *conn)
        .await
        .map_err(backend)?;
    Ok(hashes.into_iter().collect())
}

/// Deletes releases and drops their blob references.
pub(crate) async fn delete(
    conn: &mut Connection,
    app: &str,
    releases: &[(String, Vec<String>)],
) -> StoreResult<()> {
    for (version, blobs) in releases {
        let deleted = sqlx::query(
            "DELETE FROM releases WHERE version = $1 AND app_id = (SELECT id FROM apps WHERE name = $2)",
        )
        .bind(version)
        .bind(app)
        .execute(&mut *conn)
        .await
        .map_err(backend)?;
        if deleted.rows_affected() == 0 {
            return Err(not_found("release", &format!("{app} {version}")));
        }
        crate::dialect::drop_blob_refs(conn, blobs).await?;
    }
    Ok(())
}
